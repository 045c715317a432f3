"""The language reference as tables of (program, expected)."""

from __future__ import annotations

import pytest
import sympy

import paramsym
from paramsym.language.syntax import parse_program, symbol

C, k, C_in, C_out = (symbol(n) for n in ("C", "k", "C_in", "C_out"))

# LANGUAGE.md section 5, the examples that do not use section 4.
WORKED = [
    ("conv3x3(32->64, bias)", {"params": 18496, "fan_in": 288}),
    ("input(50x50x2) > conv5x5(->20, bias)", {"params": 1020, "shape": ["46", "46", "20"]}),
    ("input(24x24x3) > conv3x3(->10, bias)", {"params": 280, "shape": ["22", "22", "10"]}),
    ("conv3x3(32->64,bias) > pool > conv5x5(->40)", {"params": 82496, "per_layer": [18496, 0, 64000]}),
    ("conv2d(C_in->C_out, k=k, bias)", {"formula": k**2 * C_in * C_out + C_out}),
    ("input(32x32x32) > conv3x3(->64, bias, stride=2, pad=1)", {"shape": ["16", "16", "64"], "macs": 4718592}),
    ("conv3x3(64->128, groups=4, bias)", {"params": 18560}),
    ("input(112x112x32) > dwconv3x3(pad=1)", {"params": 288, "shape": ["112", "112", "32"]}),
    ("conv3x3(3->16) > bn", {"params": 464, "state": 32, "keras_total": 496}),
    ("input(4x4x50) > flatten > dense(->500, bias)", {"params": 400500}),
    (
        "conv3x3(3->C, bias) > conv3x3(->2C, bias) > conv3x3(->4C, bias) > gap > dense(->10, bias)",
        {"formula": 90 * C**2 + 74 * C + 10},
    ),
]


@pytest.mark.parametrize("program, expected", WORKED, ids=[w[0] for w in WORKED])
def test_worked_examples(program, expected):
    network = paramsym.parse(program)
    data = network.to_dict()
    for key, want in expected.items():
        if key == "params":
            assert data["params"]["value"] == want
        elif key == "state":
            assert data["state"]["value"] == want
        elif key == "macs":
            assert data["macs"]["value"] == want
        elif key == "fan_in":
            assert data["layers"][0]["fan_in"]["value"] == want
        elif key == "shape":
            assert data["output_shape"] == want
        elif key == "per_layer":
            assert [layer["params"]["value"] for layer in data["layers"]] == want
        elif key == "formula":
            assert sympy.expand(network.params - want) == 0
        elif key == "keras_total":
            assert paramsym.parse(program, convention="keras").evaluate()["total"] == want


# Expressions: what each text means, built without the parser.
EXPRESSIONS = [
    ("2C", 2 * C),
    ("4(C+1)", 4 * C + 4),
    ("2C^2", 2 * C**2),
    ("C**2", C**2),
    ("2^3^2", sympy.Integer(512)),
    ("-2^2", sympy.Integer(-4)),
    ("1_000_000", sympy.Integer(10**6)),
    ("0.5", sympy.Rational(1, 2)),
    ("C/2", C / 2),
    ("floor(C/3)", sympy.floor(C / 3)),
    ("ceil(7/2)", sympy.Integer(4)),
    ("min(C, 64)", sympy.Min(C, 64)),
    ("max(3, 2, 5)", sympy.Integer(5)),
    ("(C - 1) * 2", 2 * C - 2),
    ("2 * 3 + 4 / 2", sympy.Integer(8)),
    (".25", sympy.Rational(1, 4)),
    ("3(2)", sympy.Integer(6)),
    ("2max(C, 4)", 2 * sympy.Max(C, 4)),
    ("k*k*C_in", k**2 * C_in),
]


@pytest.mark.parametrize("text, expected", EXPRESSIONS, ids=[e[0] for e in EXPRESSIONS])
def test_expressions(text, expected):
    program = parse_program(f"let Z = 1\ninput(Z) > dense(->{text})")
    assert sympy.simplify(program.network.stages[1].args[0].cout - expected) == 0


# Layers and arguments: (program, params, state, output shape).
LAYERS = [
    ("input(224x224x3) > conv7x7(->64, stride=2, pad=3)", 9408, 0, ["112", "112", "64"]),
    ("input(224, 224, 3) > conv3x3(->8)", 216, 0, ["222", "222", "8"]),
    ("input(H x W x 3) > conv3x3(->16, pad=1)", 432, 0, ["H", "W", "16"]),
    ("input(H x W x 3) > conv3x3(->16, pad=same, stride=2)", 432, 0, ["ceiling(H/2)", "ceiling(W/2)", "16"]),
    ("input(100x16) > conv5(->32, bias)", 2592, 0, ["96", "32"]),
    ("input(16x16x16x1) > conv3x3x3(->8, pad=valid)", 216, 0, ["14", "14", "14", "8"]),
    ("input(9x9x4) > conv2d(->4, k=5, pad=2)", 400, 0, ["9", "9", "4"]),  # conv3x3(k=5) is refused (issue 9)
    ("input(10x10x4) > conv2d(->8, k=3x1)", 96, 0, ["8", "10", "8"]),
    ("input(8x8x32) > conv1x1(->64, nobias)", 2048, 0, ["8", "8", "64"]),
    ("input(8x8x8) > sepconv3x3(->16, bias)", 72 + 128 + 16, 0, ["6", "6", "16"]),
    ("input(4x4x8) > deconv4x4(->4, stride=2, pad=1, bias)", 516, 0, ["8", "8", "4"]),
    ("input(10x10x3) > gap", 0, 0, ["3"]),
    ("input(10x10x3) > gmp > dense(->2)", 6, 0, ["2"]),
    ("input(8x8x16) > bn(noaffine)", 0, 32, ["8", "8", "16"]),
    ("input(8x8x16) > gn(groups=4) > ln > prelu", 80, 0, ["8", "8", "16"]),
    ("input(8x8x16) > prelu(shared)", 1, 0, ["8", "8", "16"]),
    ("input(5x5x3) > avgpool2x2(stride=1)", 0, 0, ["4", "4", "3"]),
    ("input(12) > dense(->6, bias) > dropout(0.1) > dense(->3)", 96, 0, ["3"]),
    ("input(12)\n> relu\n| 1 > 0", None, None, None),  # '|' outside a composite: a syntax error
]


@pytest.mark.parametrize(
    "program, params, state, shape",
    [c for c in LAYERS if c[1] is not None],
    ids=[c[0] for c in LAYERS if c[1] is not None],
)
def test_layers(program, params, state, shape):
    network = paramsym.parse(program)
    assert network.evaluate()["params"] == params
    assert network.evaluate()["state"] == state
    assert network.to_dict()["output_shape"] == shape


# Statements, comments, separators and continuation lines.
PROGRAMS = [
    ("# a comment\nconv3x3(3->8) # trailing\n", 216),
    ("let C = 8; conv3x3(3->C)", 216),
    ("let C = 8\n\n\nconv3x3(3->C)\n\n", 216),
    ("conv3x3(3->8) >\n  relu >\n  conv1x1(->2)", 232),
    ("conv3x3(3->8)\n  > relu\n  > conv1x1(->2)", 232),
    ("conv3x3(\n  3->8,\n  bias\n)", 224),
    ("let W = 4\nlet C = 2W\nconv1x1(W->C)", 32),
    ("conv1x1(3->8) ; ", 24),
]


@pytest.mark.parametrize("program, params", PROGRAMS, ids=[repr(p[0]) for p in PROGRAMS])
def test_program_layout(program, params):
    assert paramsym.parse(program).evaluate()["params"] == params


def test_let_defaults_and_values():
    net = paramsym.parse("let C = 64\ninput(32x32x3) > conv3x3(->C, pad=1, bias)")
    assert net.params == 28 * C
    assert net.evaluate()["params"] == 1792
    assert net.evaluate(C=10)["params"] == 280
    assert net.with_values(C=10).to_dict()["symbols"] == {"C": {"default": 10}}
    assert net.to_dict()["layers"][0]["out_shape"] == ["32", "32", "C"]


def test_free_symbols_are_positive_integers():
    net = paramsym.parse("input(H x W x C) > conv3x3(->D, pad=1)")
    assert set(net.symbols) == {"C", "D", "H", "W"}
    assert all(s.is_integer and s.is_positive for s in net.symbols.values())
    assert net.to_dict()["params"]["value"] is None


def test_symbolic_kernel_and_groups_checked_when_values_arrive():
    net = paramsym.parse("input(32x32x C) > conv3x3(->64, groups=G)")
    assert net.evaluate(C=64, G=4)["params"] == 9 * 16 * 64
    with pytest.raises(paramsym.ParamsymEvaluationError, match="groups=G must divide"):
        net.with_values(C=64, G=3)


def test_ceil_mode_with_symbolic_size_is_exact():
    net = paramsym.parse("input(N x 3) > maxpool3(stride=2, pad=1, ceil)")
    for n in range(3, 40):
        torch_size = -(-(n + 2 - 3) // 2) + 1
        if (torch_size - 1) * 2 >= n + 1:
            torch_size -= 1
        assert net.value(net.output_shape.spatial[0], N=n) == torch_size
