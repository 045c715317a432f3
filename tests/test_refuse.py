"""Issue 9, "Refuse what is not a network": channels and sizes are positive whole
numbers in count, solve, sweep and the API (refused where they are written when
they are numbers, checked once the symbols have values when they are formulas),
and the configurations PyTorch refuses are refused with PyTorch's rule."""

from __future__ import annotations

import collections
import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from torch import nn

import paramsym
from helpers.cli_helpers import run
from helpers.frameworks import torch_params, torch_run
from helpers.strategies import edge_cases

E = paramsym.ParamsymError
ARG, EVAL = paramsym.ParamsymArgumentError, paramsym.ParamsymEvaluationError

# (program, --set values, error class, words in the message, line, column)
REFUSED = [
    # 1. channels: numbers at parse time, where they are written
    ("conv3x3(3->-4, bias)", {}, ARG, "output channels must be a positive whole number, not -4", 1, 12),
    ("conv3x3(0->8)", {}, ARG, "input channels must be a positive whole number, not 0", 1, 9),
    ("input(8x8x3) > dense(->0, bias)", {}, ARG, "output channels must be a positive whole number, not 0", 1, 24),
    ("input(8x8x3) > conv3x3(->-C)", {}, ARG, "output channels must be a positive whole number, not -C", 1, 26),
    ("input(8x8x3) > dwconv3x3(->3 - 3)", {}, ARG, "output channels must be a positive whole number, not 0", 1, 28),
    ("bn(2.5) > conv3x3(->4)", {}, ARG, "channels must be a positive whole number, not 5/2", 1, 4),
    ("input(8x8x3) > deconv2x2(3->1/3)", {}, ARG, "output channels must be a positive whole number, not 1/3", 1, 29),
    # ... and formulas once the symbols have values (--set, let, the API)
    (
        "conv3x3(3->C-10)",
        {"C": 4},
        EVAL,
        "output channels C - 10 must be a positive whole number: with C=4 it is -6",
        1,
        12,
    ),
    (
        "let C = 3\ninput(8x8x3) > conv3x3(->C/2)",
        {},
        EVAL,
        "output channels C/2 must be a positive whole number: with C=3 it is 3/2",
        2,
        26,
    ),
    ("input(8x8x3) > conv3x3(->C/2)", {"C": 3}, EVAL, "with C=3 it is 3/2", 1, 26),
    ("conv1x1(C-2->8)", {"C": 2}, EVAL, "input channels C - 2 must be a positive whole number: with C=2 it is 0", 1, 9),
    (
        "prelu(C/4) > dense(->2)",
        {"C": 6},
        EVAL,
        "channels C/4 must be a positive whole number: with C=6 it is 3/2",
        1,
        7,
    ),
    # sizes: input(...), stride, kernel, padding
    (
        "input(H-3 x 8 x 3) > conv1x1(->4)",
        {"H": 3},
        EVAL,
        "the input size H - 3 must be a positive whole number: with H=3 it is 0",
        1,
        7,
    ),
    ("input(-H x 8 x 3) > conv1x1(->4)", {}, ARG, "the input size must be a positive whole number, not -H", 1, 7),
    (
        "input(9x9x3) > conv3x3(->8, stride=S-1)",
        {"S": 1},
        EVAL,
        "stride S - 1 must be a positive whole number: with S=1 it is 0",
        1,
        29,
    ),
    (
        "input(9x9x3) > conv3x3(->8, pad=P/2)",
        {"P": 1},
        EVAL,
        "pad P/2 must be a whole number of at least 0: with P=1 it is 1/2",
        1,
        29,
    ),
    (
        "input(9x9x3) > conv2d(->8, k=K-2)",
        {"K": 2},
        EVAL,
        "k K - 2 must be a positive whole number: with K=2 it is 0",
        1,
        28,
    ),
    (
        "input(9x9x3) > (conv3x3(->3, pad=1)) * (L/2)",
        {"L": 3},
        EVAL,
        "the repeat count L/2 must be a positive whole number: with L=3 it is 3/2",
        1,
        16,
    ),
    # 4. what PyTorch refuses, with its rule
    (
        "input(8x8x3) > deconv3x3(->4, stride=2, outpad=2)",
        {},
        ARG,
        "outpad 2 must be smaller than the stride 2 or the dilation 1 (PyTorch: output padding must be smaller than "
        "either stride or dilation)",
        1,
        41,
    ),
    (
        "input(8x8x3) > deconv3x3(->4, stride=2x1, outpad=1)",
        {},
        ARG,
        "outpad 1 must be smaller than the stride 1 or the dilation 1",
        1,
        43,
    ),
    (
        "input(8x8x3) > deconv3x3(->4, stride=S, outpad=1)",
        {"S": 1},
        EVAL,
        "outpad 1 must be smaller than the stride S or the dilation 1 (PyTorch: output padding must be smaller than "
        "either stride or dilation): with S=1 it is 1",
        1,
        41,
    ),
    (
        "input(8x8x3) > maxpool2x2(pad=3)",
        {},
        ARG,
        "pad 3 must be at most half of the kernel size 2 (PyTorch: pad should be at most half of kernel size)",
        1,
        27,
    ),
    (
        "input(8x8x3) > maxpool3x3(pad=2, dilation=2)",
        {},
        ARG,
        "pad 2 must be at most half of the kernel size 3 (PyTorch: pad should be at most half of kernel size; a "
        "dilation does not change that)",
        1,
        27,
    ),
    ("input(8x8x3) > avgpool3x3(stride=1, pad=2)", {}, ARG, "pad 2 must be at most half of the kernel size 3", 1, 37),
    ("input(8x9) > maxpool4(pad=1x3)", {}, ARG, "1 spatial axes", 1, 23),
    (
        "input(8x8x3) > maxpool3x3(pad=P)",
        {"P": 2},
        EVAL,
        "pad P must be at most half of the kernel size 3 (PyTorch: pad should be at most half of kernel size): with "
        "P=2 it is 2",
        1,
        27,
    ),
    (
        "input(3x8x8x2) > avgpool4x1x1(pad=2x0x0)",
        {},
        ARG,
        "avgpool4x1x1 needs an input of at least its kernel size on each axis, padding aside, but an input size is 3 "
        "and the kernel 4 (PyTorch's AvgPool3d: input image smaller than kernel size)",
        1,
        18,
    ),
    ("input(D x 8 x 8 x 2) > avgpool3x3x3(pad=1)", {"D": 2}, EVAL, "with D=2 it is 2", 1, 24),
    (
        "input(8x8x3) > dropout(2)",
        {},
        ARG,
        "dropout(2): the probability must be between 0 and 1 (PyTorch: dropout probability has to be between 0 and 1)",
        1,
        24,
    ),
    ("input(8x8x3) > dropout(-0.5)", {}, ARG, "dropout(-0.5): the probability must be between 0 and 1", 1, 24),
    ("input(8x8x3) > dropout(p)", {}, ARG, "dropout takes one number, such as dropout(0.5), not p", 1, 24),
    ("input(8x8x3) > leakyrelu(C)", {}, ARG, "leakyrelu takes one number, such as leakyrelu(0.5), not C", 1, 26),
    # a kernel size in the name and another in k= contradict each other
    (
        "input(9x9x4) > conv3x3(->4, k=5, pad=2)",
        {},
        ARG,
        "conv3x3 has the kernel size 3x3 from its name, but k=5 gives another",
        1,
        29,
    ),
    ("input(9x9x4) > conv3x3(->4, k=3x5)", {}, ARG, "conv3x3 has the kernel size 3x3 from its name", 1, 29),
    ("input(9x9x4) > dwconv1x7(k=K)", {}, ARG, "dwconv1x7 has the kernel size 1x7 from its name, but k=K", 1, 26),
    ("input(9x9x4) > pool(k=3)", {}, ARG, "pool has the kernel size 2x2 from its name, but k=3 gives another", 1, 21),
]


def _values(values: dict) -> list[str]:
    return [arg for name, value in values.items() for arg in ("--set", f"{name}={value}")]


@pytest.mark.parametrize("program, values, cls, words, line, column", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_with_a_located_message(program, values, cls, words, line, column):
    with pytest.raises(cls) as caught:
        paramsym.parse(program, **values)
    error = caught.value
    text = str(error)
    assert words in text
    assert (error.line, error.column) == (line, column), text
    source_line = program.splitlines()[line - 1]
    lines = text.splitlines()
    caret = lines[lines.index(f"{line} | {source_line}") + 1]
    assert caret.index("^") == len(f"{line} | ") + column - 1


@pytest.mark.parametrize("program, values, cls, words, line, column", REFUSED, ids=[r[0] for r in REFUSED])
def test_cli_refuses_with_one_message_and_status_2(program, values, cls, words, line, column):
    result = run("count", program, *_values(values))
    assert result.returncode == 2, result.stdout
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0].startswith(f"{cls.kind}: ")
    assert words in result.stderr
    assert result.stderr.count("  --> line ") == 1 and f"  --> line {line}, column {column}" in result.stderr


# The edges that stay accepted: (program, --set values, params)
ACCEPTED = [
    ("conv3x3(3->C-10)", {"C": 11}, 27),
    ("input(8x8x3) > conv3x3(->C/2)", {"C": 4}, 54),
    ("input(8x8x3) > conv3x3(->4, k=3)", {}, 108),
    ("input(8x8x3) > conv1x3(->4, k=1x3)", {}, 36),
    ("input(8x8x3) > deconv3x3(->4, stride=2, outpad=1)", {}, 108),
    ("input(8x8x3) > deconv3x3(->4, stride=1, dilation=2, outpad=1)", {}, 108),
    ("input(8x8x3) > maxpool2x2(pad=1)", {}, 0),
    ("input(9x9x3) > maxpool3x3(pad=1, dilation=2)", {}, 0),
    ("input(8x8x3) > maxpool3x3(pad=P)", {"P": 1}, 0),
    ("input(8x8x3) > avgpool3x3(pad=same)", {}, 0),
    ("input(8x8x3) > dropout(0) > dropout(1) > dropout(0.25)", {}, 0),
    ("input(8x8x3) > leakyrelu(-1) > elu(0) > elu(3)", {}, 0),
    ("input(9x9x3) > conv3x3(->8, stride=S-1)", {"S": 2}, 216),
    ("input(H-3 x 8 x 3) > conv1x1(->4)", {"H": 4}, 12),
    ("let C = 64\ninput(8x8x3) > conv3x3(->C) > conv3x3(->2C) > conv1x1(->C^2 - C)", {}, 1728 + 73728 + 516096),
]


@pytest.mark.parametrize("program, values, params", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_edges_that_stay_accepted(program, values, params):
    assert paramsym.parse(program, **values).evaluate()["params"] == params


def test_a_symbol_alone_adds_no_condition():
    # C, 2C, C^2 are positive whole numbers for every value: nothing to check later
    network = paramsym.parse("input(8x8x3) > conv3x3(->C) > conv3x3(->2C, stride=S) > dense(->C^2 + 1)")
    assert all(
        not lc.layer.constraints or all("output size" in c.message for c in lc.layer.constraints)
        for lc in network.layers
    )


def test_the_api_checks_values_before_counting():
    network = paramsym.parse("input(8x8x3) > conv3x3(->C/2)")
    assert network.evaluate(C=4)["params"] == 54
    for call in (lambda: network.evaluate(C=3), lambda: network.to_dict(C=3), lambda: network.with_values(C=3)):
        with pytest.raises(EVAL, match="output channels C/2 must be a positive whole number: with C=3 it is 3/2"):
            call()


# ---- 2. solve returns only values that give a valid network ------------------------


def test_solve_skips_channels_that_are_not_whole():
    network = paramsym.parse("input(8x8x3) > conv3x3(->C/2)")
    solution = paramsym.solve(network, "C", 1013)
    assert (solution.value, solution.total_at_value) == (74, 999)
    assert str(solution).splitlines()[:3] == [
        "largest C with params <= 1,013: C = 74",
        "  params at C = 74: 999",
        "  params at C = 75: 1,012.5 (within it, but no valid network)",
    ]
    assert paramsym.solve(network, "C", 1013, mode="at-least").value == 76
    assert paramsym.solve(network, "C", 999, mode="exact").values == (74,)
    with pytest.raises(paramsym.ParamsymUsageError, match="exactly"):
        paramsym.solve(network, "C", 1026 - 27 // 2 - 1, mode="exact")


def test_solve_skips_channels_below_1():
    network = paramsym.parse("conv3x3(3->C-10)")
    with pytest.raises(paramsym.ParamsymUsageError, match="no valid C at most 10 keeps params within 10"):
        paramsym.solve(network, "C", 10)
    assert paramsym.solve(network, "C", 100).value == 13
    assert paramsym.solve(network, "C", 1, mode="at-least").value == 11


def test_solve_agrees_with_brute_force_over_valid_values():
    from paramsym.algebra.solve import _Problem

    network = paramsym.parse("input(8x8x3) > conv3x3(->C/3 - 2, pad=1) > deconv3x3(->4, stride=2, outpad=1)")
    problem = _Problem(network, "C", "params")
    for budget in (100, 1000, 10000):
        hits = [n for n in range(1, 2000) if problem.f(n) <= budget and problem.valid(n)]
        assert paramsym.solve(network, "C", budget).value == max(hits)
        assert all((n % 3 == 0 and n >= 9) for n in hits)


def test_cli_solve_json_shows_an_invalid_neighbour_exactly():
    result = run("solve", "input(8x8x3) > conv3x3(->C/2)", "--for", "C", "--budget", "1013", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["value"], data["total_at_value"], data["total_at_next"]) == (74, 999, "2025/2")


def test_cli_solve_refuses_when_no_value_gives_a_network():
    result = run("solve", "conv3x3(3->C-10)", "--for", "C", "--budget", "10")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("usage error: no valid C at most 10 keeps params within 10")


# ---- 2. sweeps mark the points that give no network, and do not stop -----------------


def test_sweep_marks_channels_that_are_not_whole_or_below_1():
    network = paramsym.parse("input(8x8x3) > conv3x3(->C/2)")
    result = paramsym.sweep(network, {"C": [73, 74, 75, 76]}, budget=1013)
    assert [bool(v) for v in result.valid] == [False, True, False, True]
    assert [bool(v) for v in result.within] == [False, True, False, False]
    result = paramsym.sweep(paramsym.parse("conv3x3(3->C-10)"), {"C": [9, 10, 11, 12]})
    assert [bool(v) for v in result.valid] == [False, False, True, True]
    result = paramsym.sweep(paramsym.parse("input(8x8x3) > deconv3x3(->4, stride=S, outpad=1)"), {"S": [1, 2, 3]})
    assert [bool(v) for v in result.valid] == [False, True, True]


def test_cli_sweep_marks_invalid_points_and_exits_0():
    result = run("sweep", "input(8x8x3) > conv3x3(->C/2)", "--grid", "C=73:76")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:2] in ("73", "74", "75", "76")]
    assert [(row[0], row[-1]) for row in rows] == [("73", "no"), ("74", "yes"), ("75", "no"), ("76", "yes")]
    assert "2 points give no valid network (valid = no)" in result.stdout
    data = json.loads(run("sweep", "input(8x8x3) > conv3x3(->C/2)", "--grid", "C=73:76", "--format", "json").stdout)
    assert data["columns"]["valid"] == [False, True, False, True]


def test_cli_sweep_shows_invalid_points_exactly():
    result = run("sweep", "input(8x8x3) > conv3x3(->C/2)", "--grid", "C=73:76")
    rows = {
        line.split()[0]: line.split()[1]
        for line in result.stdout.splitlines()
        if line.strip()[:2] in ("73", "74", "75", "76")
    }
    assert rows == {"73": "985.5", "74": "999", "75": "1,012.5", "76": "1,026"}


def test_sweep_over_a_stride_that_reaches_0_marks_it_and_does_not_divide_by_zero():
    network = paramsym.parse("input(9x9x3) > conv3x3(->8, stride=S-1)")
    result = paramsym.sweep(network, {"S": [1, 2, 3]}, on="macs")
    assert [bool(v) for v in result.valid] == [False, True, True]
    assert [int(v) for v in result.values["macs"]][1:] == [network.evaluate(S=2)["macs"], network.evaluate(S=3)["macs"]]
    table = run("sweep", "input(9x9x3) > conv3x3(->8, stride=S-1)", "--grid", "S=1:3")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[2].split() == [
        "1",
        "216",
        "?",
        "?",
        "?",
        "no",
    ]  # S, params, macs, flops, memory, valid


def test_vectorised_division_by_zero_is_undefined_not_an_error():
    from paramsym.algebra.vectorize import compile_condition, compile_exact, compile_pair
    from paramsym.language.syntax import symbol

    s = symbol("S")
    num, den = compile_pair(12 / (s - 2), [s])({"S": [1, 2, 3, 5]})
    assert [int(d) for d in den] == [1, 0, 1, 3]  # 0: undefined; the denominator stays positive
    assert [int(num[i]) for i in (0, 2, 3)] == [-12, 12, 12]
    assert list(compile_condition(12 / (s - 2), "positive", [s])({"S": [1, 2, 3]})) == [False, False, True]
    with pytest.raises(EVAL, match="divides by zero at S=2"):
        compile_exact(12 / (s - 2), [s])({"S": [1, 2, 3]})
    assert list(compile_exact(12 / (s - 2), [s])({"S": [2, 3]}, where=[False, True]))[1:] == [12]


# ---- 4. each refusal is PyTorch's: torch refuses the same module --------------------

# (program, the PyTorch module, its input shape channels-last)
TORCH_REFUSES = [
    (
        "input(8x8x3) > deconv3x3(->4, stride=2, outpad=2)",
        lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2),
        (8, 8, 3),
    ),
    (
        "input(8x8x3) > deconv3x3(->4, dilation=2, outpad=2)",
        lambda: nn.ConvTranspose2d(3, 4, 3, dilation=2, output_padding=2),
        (8, 8, 3),
    ),
    (
        "input(8x3) > deconv3(->4, stride=3, dilation=2, outpad=3)",
        lambda: nn.ConvTranspose1d(3, 4, 3, stride=3, dilation=2, output_padding=3),
        (8, 3),
    ),
    ("input(8x8x3) > maxpool2x2(pad=3)", lambda: nn.MaxPool2d(2, padding=3), (8, 8, 3)),
    (
        "input(9x9x3) > maxpool3x3(stride=1, pad=2, dilation=2)",
        lambda: nn.MaxPool2d(3, stride=1, padding=2, dilation=2),
        (9, 9, 3),
    ),
    ("input(9x3) > maxpool3(pad=2, dilation=3)", lambda: nn.MaxPool1d(3, padding=2, dilation=3), (9, 3)),
    ("input(6x6x6x2) > maxpool2x2x2(pad=2)", lambda: nn.MaxPool3d(2, padding=2), (6, 6, 6, 2)),
    ("input(8x8x3) > avgpool3x3(pad=2)", lambda: nn.AvgPool2d(3, padding=2), (8, 8, 3)),
    ("input(8x3) > avgpool2(pad=2)", lambda: nn.AvgPool1d(2, padding=2), (8, 3)),
    ("input(3x8x8x2) > avgpool4x1x1(pad=2x0x0)", lambda: nn.AvgPool3d((4, 1, 1), padding=(2, 0, 0)), (3, 8, 8, 2)),
    ("input(8x8x3) > dropout(2)", lambda: nn.Dropout(2.0), (8, 8, 3)),
    ("input(8x8x3) > dropout(-0.5)", lambda: nn.Dropout(-0.5), (8, 8, 3)),
    ("input(8x8x3) > conv3x3(->-4)", lambda: nn.Conv2d(3, -4, 3), (8, 8, 3)),
    ("input(8x8x3) > conv3x3(->5/2)", lambda: nn.Conv2d(3, 2.5, 3), (8, 8, 3)),
    ("input(8x8x3) > conv3x3(->0)", lambda: nn.Conv2d(3, 0, 3), (8, 8, 3)),
]

# ... and accepts the modules just inside the rules
TORCH_ACCEPTS = [
    (
        "input(8x8x3) > deconv3x3(->4, stride=2, outpad=1)",
        lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=1, bias=False),
        (8, 8, 3),
    ),
    (
        "input(8x8x3) > deconv3x3(->4, dilation=3, outpad=2)",
        lambda: nn.ConvTranspose2d(3, 4, 3, dilation=3, output_padding=2, bias=False),
        (8, 8, 3),
    ),
    (
        "input(8x3) > deconv3(->4, stride=3, dilation=2, outpad=2)",
        lambda: nn.ConvTranspose1d(3, 4, 3, stride=3, dilation=2, output_padding=2, bias=False),
        (8, 3),
    ),
    ("input(8x8x3) > maxpool2x2(pad=1)", lambda: nn.MaxPool2d(2, padding=1), (8, 8, 3)),
    (
        "input(9x9x3) > maxpool3x3(stride=1, pad=1, dilation=2)",
        lambda: nn.MaxPool2d(3, stride=1, padding=1, dilation=2),
        (9, 9, 3),
    ),
    ("input(8x8x3) > avgpool3x3(pad=1, ceil)", lambda: nn.AvgPool2d(3, padding=1, ceil_mode=True), (8, 8, 3)),
    ("input(3x8x8x2) > maxpool4x1x1(pad=2x0x0)", lambda: nn.MaxPool3d((4, 1, 1), padding=(2, 0, 0)), (3, 8, 8, 2)),
    ("input(3x8x2) > avgpool4x1(pad=2x0)", lambda: nn.AvgPool2d((4, 1), padding=(2, 0)), (3, 8, 2)),
    (
        "input(3x8x8x2) > avgpool4x1x1(pad=same)",
        lambda: nn.Sequential(nn.ZeroPad3d((0, 0, 0, 0, 1, 2)), nn.AvgPool3d((4, 1, 1), stride=(4, 1, 1))),
        (3, 8, 8, 2),
    ),
    ("input(8x8x3) > dropout(1)", lambda: nn.Dropout(1.0), (8, 8, 3)),
    ("input(8x8x3) > dropout(0)", lambda: nn.Dropout(0.0), (8, 8, 3)),
    ("input(8x3) > leakyrelu(-2)", lambda: nn.LeakyReLU(-2.0), (8, 3)),
]


def _torch_refuses(factory, shape) -> bool:
    try:
        torch_run(factory(), shape, "cf")
    except (RuntimeError, ValueError, TypeError):
        return True
    return False


@pytest.mark.parametrize("program, factory, shape", TORCH_REFUSES, ids=[c[0] for c in TORCH_REFUSES])
def test_what_torch_refuses_paramsym_refuses(program, factory, shape):
    assert _torch_refuses(factory, shape)
    with pytest.raises(ARG):
        paramsym.parse(program)


@pytest.mark.parametrize("program, factory, shape", TORCH_ACCEPTS, ids=[c[0] for c in TORCH_ACCEPTS])
def test_what_torch_accepts_at_the_edge_paramsym_counts_alike(program, factory, shape):
    module = factory()
    out_shape, _ = torch_run(module, shape, "cf")
    network = paramsym.parse(program)
    assert [int(d) for d in network.output_shape.dims()] == out_shape
    assert network.evaluate()["params"] == torch_params(module)
    exported = paramsym.to_torch(network)
    assert torch_run(exported, shape, "cf")[0] == out_shape


@pytest.mark.parametrize(
    "program, hint",
    [
        ("input(9x9x4) > conv3x3(->4, k=5)", "hint: write conv5x5(...), or conv2d(k=5, ...)"),
        ("input(9x4) > maxpool2(k=3)", "hint: write maxpool3(...), or maxpool1d(k=3, ...)"),
        ("input(9x9x4) > conv3x3(->4, k=K)", "hint: write conv2d(k=K, ...)"),
    ],
)
def test_a_contradicting_kernel_suggests_one_name(program, hint):
    with pytest.raises(ARG) as caught:
        paramsym.parse(program)
    assert hint in str(caught.value)


# ---- 5. both directions, on generated programs at the edges ------------------------------


@pytest.fixture
def outcomes():
    """The outcomes of one run of the property below (shared by its examples, on purpose): after the run, both
    sides of the line must have been tried, or a strategy that drifted to one side would test nothing across it."""
    seen = collections.Counter()
    yield seen
    assert seen["both refuse"] > 0 and seen["both accept"] > 0, dict(seen)


@settings(suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.function_scoped_fixture])
@given(case=edge_cases())
def test_property_paramsym_accepts_what_torch_runs_and_refuses_what_torch_refuses(outcomes, case):
    """paramsym refuses ⇔ PyTorch refuses (to build or to run the module); paramsym accepts ⇒ PyTorch's counts
    and shape are paramsym's. The outcomes are Hypothesis events: --hypothesis-show-statistics shows how many
    programs fell on each side, and for each edge layer."""
    program, factory, shape = case
    try:
        network = paramsym.parse(program)
    except paramsym.ParamsymError as error:
        assert str(error).count("  --> line ") == 1, program
        network = None
    try:
        module = factory()
        out_shape, macs = torch_run(module, shape, "cf")
    except (RuntimeError, ValueError, TypeError) as error:
        assert network is None, f"torch refuses {program!r} ({error}), paramsym counts it"
        outcome = "both refuse"
    else:
        assert network is not None, f"paramsym refuses {program!r}, torch builds and runs it"
        outcome = "both accept"
        values = network.evaluate()
        assert [int(d) for d in network.output_shape.dims()] == out_shape, program
        assert (values["params"], values["macs"]) == (torch_params(module), macs), program
        assert torch_run(paramsym.to_torch(network), shape, "cf")[0] == out_shape, program
    event(outcome)
    event(f"{outcome}: {program.split(' > ')[1].split('(')[0].rstrip('0123456789x')}")
    outcomes[outcome] += 1
