"""Formulas that grow (issue 17): powers of sums, chains of lets, ceil-mode pooling after a symbolic
stride or pad, thousands of symbols. Each ends in seconds with an answer or a located limit error.

The CLI cases run the real command in a subprocess under a timeout (a guard against a hang, not a
timing: speed is measured in benchmarks/bench.py); the property runs generated programs under an alarm.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import paramsym
from helpers.cli_helpers import run
from helpers.strategies import growing_programs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GUARD = 60  # seconds: far beyond what any of these takes now; before the fixes each ran for minutes


def _run(*args, timeout=GUARD):
    try:
        return run(*args, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"paramsym {' '.join(a[:80] for a in args)} did not end within {timeout} s")


def _file(tmp_path, text: str) -> str:
    path = tmp_path / "program.psym"
    path.write_text(text)
    return str(path)


def _chain(n: int) -> str:
    return (
        "let A0 = 1\n"
        + "".join(f"let A{i} = A{i - 1} + 1\n" for i in range(1, n + 1))
        + f"input(8x8x3) > dense(->A{n})\n"
    )


def _nested(n: int) -> str:
    return (
        "let A0 = C\n"
        + "".join(f"let A{i} = A{i - 1} * (A{i - 1} + B)\n" for i in range(1, n + 1))
        + f"input(8x8x3) > dense(->A{n})\n"
    )


POOLS = "input(224x224x3) > conv7x7(->8, stride=S)" + " > maxpool3x3(stride=2, ceil)" * 2

# (arguments, words in the message, line, column): each a limit error, exit 2, no traceback
REFUSED = [
    (("formula", "dense(3->(A+B+C+D+E+F)^16)"), "this formula is too large", 1, 11),
    (("formula", "dense(3->(A+B+C+D+E+F)^64)"), "this formula is too large", 1, 11),
    (("count", "let X=(A+B+C+D)^64; dense(3->X^64)"), "up to 47,905 terms", 1, 8),
    # each let is small; put into the layer's count, X^4 is (A+B+C)^80
    (("count", "let X = (A+B+C)^20\ninput(3) > dense(->X^4)"), "this layer's count", 2, 12),
    # channels of 220 terms each: the MAC count multiplies them
    (("count", "input(8x8x((A+B+C)^9)) > conv3x3(->(D+E+F)^9)"), "the params formula of this conv3x3", 1, 26),
    (("count", _nested(15)), "the formula of A5 is too large", 6, 5),
    (("count", "def b(c) = dense(->c^64)\ninput(3) > b(A+B+C+D)"), "with the block's arguments put in", 1, 20),
    (
        ("count", "input(8x8x3) > flatten > " + " > ".join(f"dense(->C{i})" for i in range(10_000))),
        "more than 1,000 different symbols",
        1,
        None,
    ),
]


@pytest.mark.parametrize("args, words, line, column", REFUSED, ids=[c[1] + str(i) for i, c in enumerate(REFUSED)])
def test_growing_formula_is_refused_where_it_is_written(args, words, line, column, tmp_path):
    command, program = args
    result = _run(command, _file(tmp_path, program) if len(program) > 200 else program)
    assert result.returncode == 2, result.stderr[-800:]
    assert result.stderr.startswith("limit error:") and words in result.stderr, result.stderr[-800:]
    assert "Traceback" not in result.stderr
    where = f"line {line}, column {column}" if column else f"line {line}, column "
    assert where in result.stderr and "^" in result.stderr and "hint:" in result.stderr


def test_a_chain_of_5000_lets_is_counted(tmp_path):
    result = _run("count", _file(tmp_path, _chain(5000)), "--format", "json")
    assert result.returncode == 0, result.stderr[-800:]
    assert '"value": 15003' in result.stdout  # dense(->5001) on 3 channels


def test_relations_in_a_circle_are_still_found():
    # lets are put in order in one pass now; a circle (through --set) is still found and named
    from paramsym.language.syntax import parse_expression

    net = paramsym.parse("let A = 2\nlet B = 3\ninput(3) > dense(->A + B)")
    with pytest.raises(paramsym.ParamsymUsageError, match="depends on A itself"):
        net.with_values(A=parse_expression("B + 1"), B=parse_expression("A + 1"))
    tied = net.with_values(A=parse_expression("2*B"))  # a relation: counted in B
    assert str(tied.params) == "9*B" and tied.evaluate()["params"] == 27


@pytest.mark.parametrize("pools", [2, 3, 5])
def test_ceil_pools_after_a_symbolic_stride_answer(pools):
    program = "input(224x224x3) > conv7x7(->8, stride=S)" + " > maxpool3x3(stride=2, ceil)" * pools
    result = _run("count", program, "--set", "S=2")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-800:]


@pytest.mark.parametrize(
    "args",
    [
        (
            "count",
            "input(224x224x3) > conv7x7(->8, stride=2, pad=D) > maxpool3x3(stride=2, ceil) > "
            "maxpool3x3(stride=2, ceil)",
            "--format",
            "latex",
        ),
        (
            "count",
            "input(224x224x3) > conv7x7(->8, stride=2, pad=D) > maxpool3x3(stride=2, ceil) > "
            "maxpool3x3(stride=2, ceil)",
            "--set",
            "D=3",
        ),
        (
            "latex",
            "input(224x224x3) > conv7x7(->8, stride=2) > maxpool3x3(stride=S, pad=P, ceil) > "
            "maxpool3x3(stride=S, ceil) > maxpool3x3(stride=S, ceil)",
        ),
    ],
)
def test_ceil_pools_with_a_symbolic_pad_answer(args):
    result = _run(*args)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-800:]


@pytest.mark.parametrize(
    "example, old, new, values",
    [
        ("squeezenet1_0", "stride=2", "stride=C-1", "C=3"),
        ("squeezenet1_1", "stride=2", "stride=C-1", "C=3"),
        ("googlenet", "stride=2, pad=3)", "stride=2, pad=D)", "D=3"),
        ("googlenet", "maxpool3x3(stride=2, ceil)", "maxpool3x3(stride=D+1, pad=D-1, ceil)", "D=1"),
    ],
)
def test_zoo_with_a_symbolic_stride_or_pad_equals_the_zoo(example, old, new, values, tmp_path):
    text = (EXAMPLES / f"{example}.psym").read_text()
    assert old in text
    program = _file(tmp_path, text.replace(old, new))
    symbolic = _run("count", program, "--set", values, "--format", "json")
    plain = _run("count", str(EXAMPLES / f"{example}.psym"), "--format", "json")
    assert symbolic.returncode == 0, symbolic.stderr[-800:]
    got, want = json.loads(symbolic.stdout), json.loads(plain.stdout)
    for key in ("params", "macs", "output_shape"):
        assert (got[key]["value"] if isinstance(got[key], dict) else got[key]) == (
            want[key]["value"] if isinstance(want[key], dict) else want[key]
        )
    latex = _run("latex", program)
    assert latex.returncode == 0 and "Traceback" not in latex.stderr, latex.stderr[-800:]


# ---- the ceil-mode rule against PyTorch, with symbolic size, stride and pad ----------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.integers(1, 3), st.data())
def test_ceil_mode_pooling_with_symbols_matches_pytorch(kernel, stride, dilation, data):
    torch = pytest.importorskip("torch")
    pad = data.draw(st.integers(0, kernel // 2))
    n = data.draw(
        st.integers(dilation * (kernel - 1) + 1 - 2 * pad if dilation * (kernel - 1) + 1 > 2 * pad else 1, 40)
    )
    symbolic = {"size": "N", "stride": "S", "pad": "P"}
    chosen = {k: data.draw(st.booleans()) for k in symbolic}
    chosen["pad"] = chosen["pad"] and pad > 0  # a symbol stands for a positive number
    text = (
        f"input({'N' if chosen['size'] else n} x 2) > maxpool{kernel}("
        f"stride={'S' if chosen['stride'] else stride}, pad={'P' if chosen['pad'] else pad}, "
        f"dilation={dilation}, ceil)"
    )
    values = {
        name: v
        for name, v, on in (("N", n, chosen["size"]), ("S", stride, chosen["stride"]), ("P", pad, chosen["pad"]))
        if on
    }
    module = torch.nn.MaxPool1d(kernel, stride, pad, dilation, ceil_mode=True)
    try:
        expected = module(torch.zeros(1, 2, n)).shape[-1]
    except RuntimeError:
        return  # PyTorch refuses these sizes
    net = paramsym.parse(text)
    values = {name: v for name, v in values.items() if name in net.symbols}  # n=1: the size is 1, whatever S
    assert net.value(net.output_shape.spatial[0], **values) == expected


@pytest.mark.parametrize("stride, pad, pools", [(1, 1, 2), (2, 1, 2), (3, 1, 3), (2, 3, 5), (4, 2, 4)])
def test_ceil_pools_after_a_symbolic_stride_match_pytorch(stride, pad, pools):
    torch = pytest.importorskip("torch")
    net = paramsym.parse("input(96x96x3) > conv7x7(->4, stride=S, pad=D)" + " > maxpool3x3(stride=2, ceil)" * pools)
    layers = [torch.nn.Conv2d(3, 4, 7, stride, pad)] + [torch.nn.MaxPool2d(3, 2, ceil_mode=True)] * pools
    with torch.no_grad():
        shape = torch.nn.Sequential(*layers)(torch.zeros(1, 3, 96, 96)).shape
    assert [net.value(d, S=stride, D=pad) for d in net.output_shape.dims()] == [shape[2], shape[3], 4]


# ---- the bound on multiplying out ------------------------------------------------------------------

_A, _B, _C = sympy.symbols("A B C", positive=True, integer=True)
_LEAVES = st.sampled_from([_A, _B, _C, sympy.Integer(2), sympy.Integer(3)])
_FORMULAS = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: sympy.Add(*xs)),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: sympy.Mul(*xs)),
        st.tuples(inner, st.integers(-3, 5)).map(lambda p: sympy.Pow(p[0], p[1])),
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(_FORMULAS)
def test_the_bound_is_never_below_the_terms_multiplied_out(expr):
    from paramsym import expansion

    assert expansion.terms(expr) >= len(sympy.Add.make_args(sympy.expand(expr)))


# ---- generated programs answer in time --------------------------------------------------------------


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


# seconds for one generated program: most take a fraction of one, and a formula that really grows takes
# minutes; the margin is for a loaded machine late in a long test process (a 1.3 s program once took over 10)
BOUND = 30


@settings(max_examples=max(5, settings.default.max_examples // 10), deadline=None)
@given(growing_programs())
def test_property_growing_programs_answer_in_time(program):
    """Every generated program with powers, let chains and symbolic strides and pads is counted,
    printed and typeset, or refused with a ParamsymError, within BOUND seconds (`make fuzz` runs many)."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, BOUND)
    try:
        net = paramsym.parse(program)
        net.to_dict()
        str(net)
        paramsym.latex(net)
        values = {name: 2 for name in net.symbols if name not in net.defaults}
        if values:
            net.with_values(**values).evaluate()
    except paramsym.ParamsymError:
        pass
    except _Hang:
        pytest.fail(f"no answer within {BOUND} s:\n{program}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---- found by benchmarks/cli_audit.py: a sweep put the lets together again for every condition -------------


def _chained_sweep_program(n: int) -> str:
    # the chain ends in a channel count; the swept C is a width that every dense must check (whole, positive)
    return _chain(n).replace(f"dense(->A{n})", f"dense(->A{n}) > dense(->C/2) > dense(->C)")


def test_a_sweep_closes_the_lets_once(monkeypatch):
    from paramsym.algebra.sweeps import sweep
    from paramsym.model import network as module

    calls = []
    real = module._closed
    monkeypatch.setattr(module, "_closed", lambda *args: calls.append(1) or real(*args))
    net = paramsym.parse(_chained_sweep_program(300))
    calls.clear()
    result = sweep(net, {"C": [2, 4]})
    assert [row["params"] for row in result.rows()] == [net.evaluate(C=c)["params"] for c in (2, 4)]
    assert len(calls) <= 2  # before: once for each condition and each let, 600 times


def test_a_sweep_after_3000_lets_answers(tmp_path):
    result = _run("sweep", _file(tmp_path, _chained_sweep_program(3000)), "--grid", "C=2:8:2", "--format", "json")
    assert result.returncode == 0, result.stderr[-800:]
    assert json.loads(result.stdout)["columns"]["params"] == [
        3 * 3001 + 3001 * c // 2 + c * c // 2 for c in (2, 4, 6, 8)
    ]
