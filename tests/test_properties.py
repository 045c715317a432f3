"""Property-based tests: strategies mirror the grammar.

* expressions: random expression trees printed as text parse to the SymPy
  expression built directly from the tree;
* convolution and pooling layers: any configuration counts and shapes exactly
  as PyTorch does;
* symbolic formulas agree with numeric programs at every point;
* any text at all gives an answer or a ParamsymError, nothing else.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

import paramsym
from helpers.frameworks import torch_params, torch_run
from paramsym.core.evaluate import Evaluator
from paramsym.language.syntax import parse_program, symbol

NAMES = ["C", "D", "k", "C_in", "w2"]


# ---- expressions -------------------------------------------------------------------


def _leaf():
    numbers = st.integers(0, 10_000).map(lambda n: (str(n), sympy.Integer(n)))
    decimals = st.tuples(st.integers(0, 99), st.integers(1, 99)).map(
        lambda p: (f"{p[0]}.{p[1]:02d}", sympy.Rational(p[0] * 100 + p[1], 100))
    )
    names = st.sampled_from(NAMES).map(lambda n: (n, symbol(n)))
    return numbers | decimals | names


def _extend(children):
    def binary(op, build):
        return st.tuples(children, children).map(lambda p: (f"({p[0][0]} {op} {p[1][0]})", build(p[0][1], p[1][1])))

    def implicit(pair):
        (number, value), (text, expr) = pair
        return f"{number}({text})", value * expr

    return st.one_of(
        binary("+", lambda a, b: a + b),
        binary("-", lambda a, b: a - b),
        binary("*", lambda a, b: a * b),
        st.tuples(children, st.integers(1, 50)).map(lambda p: (f"({p[0][0]}) / {p[1]}", p[0][1] / p[1])),
        st.tuples(children, st.integers(0, 3)).map(lambda p: (f"({p[0][0]})^{p[1]}", p[0][1] ** p[1])),
        children.map(lambda c: (f"floor({c[0]})", sympy.floor(c[1]))),
        children.map(lambda c: (f"ceil({c[0]})", sympy.ceiling(c[1]))),
        st.tuples(children, children).map(lambda p: (f"min({p[0][0]}, {p[1][0]})", sympy.Min(p[0][1], p[1][1]))),
        st.tuples(children, children).map(lambda p: (f"max({p[0][0]}, {p[1][0]})", sympy.Max(p[0][1], p[1][1]))),
        st.tuples(st.integers(1, 9).map(lambda n: (str(n), n)), children).map(implicit),
    )


EXPRESSIONS = st.recursive(_leaf(), _extend, max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(EXPRESSIONS, st.lists(st.integers(1, 30), min_size=len(NAMES), max_size=len(NAMES)))
def test_expression_text_means_the_tree(expression, values):
    text, expected = expression
    # the syntax tree only: a layer refuses channels that are not positive whole numbers (dense(->0))
    program = parse_program(f"input(1) > dense(->{text})")
    parsed = program.network.stages[1].args[0].cout
    point = {symbol(n): v for n, v in zip(NAMES, values)}
    exact = Evaluator(point)
    # same value at a random point, computed by our evaluator and by SymPy's own substitution
    value = expected.xreplace({s: sympy.Integer(v) for s, v in point.items()})
    assert value.is_Rational
    assert exact.number(parsed) == Fraction(int(value.p), int(value.q))


# ---- convolution and pooling configurations against PyTorch ---------------------------------


@st.composite
def conv_configs(draw):
    rank = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 4))
    cout = groups * draw(st.integers(1, 4))
    kernel = [draw(st.integers(1, 4)) for _ in range(rank)]
    stride = [draw(st.integers(1, 3)) for _ in range(rank)]
    dilation = [draw(st.integers(1, 2)) for _ in range(rank)]
    pad = [draw(st.integers(0, 2)) for _ in range(rank)]
    size = [draw(st.integers(1, 12)) + dilation[i] * (kernel[i] - 1) for i in range(rank)]
    bias = draw(st.booleans())
    return rank, cin, cout, groups, kernel, stride, dilation, pad, size, bias


def _x(values):
    return "x".join(str(v) for v in values)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_configs())
def test_any_convolution_matches_pytorch(config):
    rank, cin, cout, groups, kernel, stride, dilation, pad, size, bias = config
    program = (
        f"input({_x(size + [cin])}) > conv{_x(kernel)}(->{cout}, stride={_x(stride)}, pad={_x(pad)}, "
        f"dilation={_x(dilation)}, groups={groups}{', bias' if bias else ''})"
    )
    conv = getattr(nn, f"Conv{rank}d")(cin, cout, kernel, stride, pad, dilation, groups, bias)
    network = paramsym.parse(program)
    shape, macs = torch_run(conv, size + [cin], "cf")
    assert network.evaluate()["params"] == torch_params(conv)
    assert [int(d) for d in network.output_shape.dims()] == shape
    assert network.evaluate()["macs"] == macs


@settings(max_examples=60, deadline=None)
@given(conv_configs(), st.booleans())
def test_any_transposed_convolution_matches_pytorch(config, use_outpad):
    rank, cin, cout, groups, kernel, stride, dilation, pad, size, bias = config
    outpad = [min(s, d) - 1 if use_outpad else 0 for s, d in zip(stride, dilation)]
    assume(
        all(
            (n - 1) * s - 2 * p + d * (k - 1) + 1 + o >= 1
            for n, s, p, d, k, o in zip(size, stride, pad, dilation, kernel, outpad)
        )
    )
    program = (
        f"input({_x(size + [cin])}) > deconv{_x(kernel)}(->{cout}, stride={_x(stride)}, pad={_x(pad)}, "
        f"dilation={_x(dilation)}, groups={groups}, outpad={_x(outpad)}{', bias' if bias else ''})"
    )
    deconv = getattr(nn, f"ConvTranspose{rank}d")(cin, cout, kernel, stride, pad, outpad, groups, bias, dilation)
    network = paramsym.parse(program)
    shape, macs = torch_run(deconv, size + [cin], "cf")
    assert network.evaluate()["params"] == torch_params(deconv)
    assert [int(d) for d in network.output_shape.dims()] == shape
    assert network.evaluate()["macs"] == macs


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 3), st.data())
def test_any_pooling_matches_pytorch(rank, data):
    op = data.draw(st.sampled_from(["max", "avg"]))
    kernel = [data.draw(st.integers(1, 4)) for _ in range(rank)]
    stride = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    pad = [data.draw(st.integers(0, k // 2)) for k in kernel]
    ceil = data.draw(st.booleans())
    size = [data.draw(st.integers(k, 14)) for k in kernel]
    if op == "avg" and rank == 1:
        module = nn.AvgPool1d(kernel, stride, pad, ceil_mode=ceil)
    elif op == "avg":
        module = getattr(nn, f"AvgPool{rank}d")(kernel, stride, pad, ceil_mode=ceil)
    else:
        module = getattr(nn, f"MaxPool{rank}d")(kernel, stride, pad, ceil_mode=ceil)
    program = (
        f"input({_x(size + [2])}) > {op}pool{_x(kernel)}(stride={_x(stride)}, pad={_x(pad)}{', ceil' if ceil else ''})"
    )
    shape, _ = torch_run(module, size + [2], "cf")
    assert [int(d) for d in paramsym.parse(program).output_shape.dims()] == shape


# ---- symbolic formulas agree with numbers ------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 7),
    st.integers(1, 3),
    st.integers(0, 3),
    st.integers(1, 64),
    st.integers(1, 64),
    st.integers(8, 64),
    st.booleans(),
)
def test_symbolic_formula_equals_numeric_program(k, s, p, cin, cout, n, bias):
    assume(n + 2 * p >= k)
    layer = f"conv{k}x{k}(->{{cout}}, stride={s}, pad={p}{', bias' if bias else ''}) > bn > relu"
    symbolic = paramsym.parse(f"input(H x H x C) > {layer.format(cout='D')} > gap > dense(->10, bias)")
    numeric = paramsym.parse(f"input({n}x{n}x{cin}) > {layer.format(cout=cout)} > gap > dense(->10, bias)")
    assert symbolic.evaluate(H=n, C=cin, D=cout) == numeric.evaluate()


# ---- whatever the text, only paramsym's own errors ---------------------------------------------

TOKENS = [
    "conv3x3",
    "dense",
    "bn",
    "relu",
    "input",
    "pool",
    "res",
    "add",
    "concat",
    "let",
    "def",
    "x",
    "C",
    "(",
    ")",
    "->",
    ">",
    "|",
    ",",
    "=",
    "*",
    "^",
    "+",
    "-",
    "/",
    ";",
    "\n",
    "#",
    "3x3",
    "0",
    "64",
    "2.5",
    "bias",
    "stride",
    "pad",
    "same",
    "groups",
    "k",
    "floor",
    "min",
    "@",
    "'",
    "\t",
    "1_0",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=30), st.sampled_from(["", " "]))
def test_any_token_soup_gives_an_answer_or_a_paramsym_error(tokens, joiner):
    try:
        network = paramsym.parse(joiner.join(tokens))
        network.to_dict()
    except paramsym.ParamsymError as error:
        assert str(error)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_an_answer_or_a_paramsym_error(text):
    try:
        paramsym.parse(text).to_dict()
    except paramsym.ParamsymError:
        pass


# ---- layout does not change meaning ----------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from([" > ", " >\n  ", "\n  > ", " > # note\n  ", ">"]), min_size=4, max_size=4),
    st.sampled_from(["", "\n", "# header\n\n"]),
)
def test_layout_does_not_change_counts(joins, header):
    stages = ["input(16x16x3)", "conv3x3(->8, pad=1)", "bn", "relu", "dense(->4, bias)"]
    text = header + stages[0] + "".join(j + s for j, s in zip(joins, stages[1:]))
    # conv 3*3*3*8 = 216, bn 2*8 = 16 (+16 state), dense on the last axis 8*4 + 4 = 36;
    # MACs: 16*16 positions * 8 * 27 = 55,296 for the conv, 16*16 * 8 * 4 = 8,192 for the dense
    assert paramsym.parse(text).evaluate() == {
        "params": 268,
        "state": 16,
        "active": 268,
        "kv_cache": 0,
        "total": 268,
        "macs": 63488,
    }


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_long_chains_count_linearly(n):
    network = paramsym.parse("input(8x8x4) > " + " > ".join(["conv3x3(->4, pad=1, bias)"] * n))
    assert network.evaluate()["params"] == n * 148
    assert math.prod(int(d) for d in network.output_shape.dims()) == 256
