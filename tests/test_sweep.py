"""Sweeps: the exact vectorised evaluation against the exact scalar one, grids,
budgets, validity, and the command line."""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import paramsym
from helpers.cli_helpers import run
from paramsym.algebra.sweeps import parse_grid
from paramsym.algebra.vectorize import compile_exact, compile_pair
from paramsym.core.evaluate import Evaluator
from paramsym.language.syntax import symbol

C, H, K = symbol("C"), symbol("H"), symbol("k")

FORMULAS = [
    90 * C**2 + 74 * C + 10,
    sympy.floor((H - 1) / 2) + 1,
    sympy.ceiling(H / 3) * C,
    C * (C + 1) / 2,
    sympy.Min(C, 7) * H + sympy.Max(K, 2),
    sympy.floor((H + 2 - K) / 2) ** 2 * C * K**2,
    10**30 * C**3 + H,  # beyond int64: Python integers
    sympy.Piecewise((C, C >= H), (H - 1, True)),
    sympy.floor(sympy.floor((H + C) / 3) / 2),
    # sums of terms with different denominators (a relation D = C/2 gives C^2/2 + 3C)
    C**2 / 2 + 3 * C,
    C / 3 + H / 2 + K / 6,
    sympy.floor(C / 4 + H / 6) + C * H / 10,
]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 10**6), st.integers(1, 50)), min_size=1, max_size=30),
    st.sampled_from(range(len(FORMULAS))),
)
def test_vectorised_equals_exact_scalar(points, which):
    expr = FORMULAS[which]
    values = {"C": [p[0] for p in points], "H": [p[1] for p in points], "k": [p[2] for p in points]}
    num, den = compile_pair(expr, [C, H, K])(values)
    for i, (c, h, k) in enumerate(points):
        assert Fraction(int(num[i]), int(den[i])) == Evaluator({C: c, H: h, K: k}).number(expr)
    integral = [i for i, (c, h, k) in enumerate(points) if num[i] % den[i] == 0]
    if len(integral) == len(points):
        got = compile_exact(expr, [C, H, K])(values)
        assert [int(g) for g in got] == [int(num[i]) // int(den[i]) for i in range(len(points))]


def test_large_values_switch_to_python_integers():
    got = compile_exact(10**30 * C**3, [C])({"C": [10**6]})
    assert got.dtype == object and int(got[0]) == 10**48


@pytest.mark.parametrize(
    "text, expected",
    [
        ("C=16:64:16", ("C", [16, 32, 48, 64])),
        ("k=3,5,7", ("k", [3, 5, 7])),
        ("C=64", ("C", [64])),
        ("L=1:3", ("L", [1, 2, 3])),
        ("C=1_000", ("C", [1000])),
    ],
)
def test_grid_parsing(text, expected):
    assert parse_grid(text) == expected


@pytest.mark.parametrize("text", ["C", "C=8:4", "C=a,b", "C=0,1", "C=1:10:0", "1C=3"])
def test_bad_grids(text):
    with pytest.raises(paramsym.ParamsymUsageError):
        parse_grid(text)


def test_sweep_matches_evaluate_at_every_point():
    network = paramsym.parse(
        "input(32x32x3) > conv2d(->C, k=k, pad=1, bias) > bn > conv3x3(->2C, stride=2) > gap > dense(->10, bias)"
    )
    result = paramsym.sweep(network, {"C": [8, 16, 24], "k": [1, 3, 5]}, budget=20_000)
    assert result.size == 9
    for row in result.rows():
        values = network.evaluate(C=row["C"], k=row["k"])
        assert row["params"] == values["params"] and row["macs"] == values["macs"]
        assert row["within"] == (values["params"] <= 20_000)


def test_validity_marks_impossible_points():
    network = paramsym.parse("input(16x16x8) > conv3x3(->C, groups=4)")
    result = paramsym.sweep(network, {"C": list(range(1, 13))}, budget=10**6)
    assert [bool(v) for v in result.valid] == [c % 4 == 0 for c in range(1, 13)]
    assert [bool(v) for v in result.within] == [c % 4 == 0 for c in range(1, 13)]


def test_cli_sweep_csv_json_and_table(tmp_path):
    program = "conv3x3(3->C, bias) > conv3x3(->2C, bias) > conv3x3(->4C, bias) > gap > dense(->10, bias)"
    table = run("sweep", program, "--grid", "C=70:80:2", "--budget", "500k")
    assert table.returncode == 0
    assert "the largest params within the budget: 498,326 at C=74" in table.stdout
    rows = list(csv.DictReader(io.StringIO(run("sweep", program, "--grid", "C=1:100", "--format", "csv").stdout)))
    assert len(rows) == 100 and rows[73] == {"C": "74", "params": "498326"}
    data = json.loads(run("sweep", program, "--grid", "C=74,75", "--format", "json", "--budget", "500000").stdout)
    assert data["columns"]["params"] == [498326, 511810] and data["columns"]["within"] == [True, False]
    out = tmp_path / "big.csv"
    result = run("sweep", program, "--grid", "C=1:200000", "--format", "csv", "-o", str(out))
    assert result.returncode == 0 and len(out.read_text().splitlines()) == 200001


@pytest.mark.parametrize(
    "args, words",
    [
        (["relu > dense(4->C)", "--grid", "D=1:3"], "no symbol 'D'"),
        (["relu > dense(4->C) > dense(->D)", "--grid", "C=1:3"], "D has no value"),
        (["relu > dense(4->C)", "--grid", "C=1:100000", "--grid", "C2=1:1000"], "no symbol 'C2'"),
        (["relu > dense(4->C)", "--grid", "C=1:3", "--on", "macs"], "input shape"),
        (["conv1x1(4->C)", "--grid", "C=1:3", "--on", "macs"], "input shape"),
    ],
)
def test_sweep_errors(args, words):
    result = run("sweep", *args)
    if words is None:
        assert result.returncode == 0
    else:
        assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_too_many_points():
    network = paramsym.parse("input(8x8x3) > conv1x1(->C) > conv1x1(->D) > conv1x1(->E)")
    with pytest.raises(paramsym.ParamsymUsageError, match="at most"):
        paramsym.sweep(network, {"C": list(range(1, 1001)), "D": list(range(1, 1001)), "E": list(range(1, 101))})


def test_relations_that_are_not_whole_numbers_are_invalid_points():
    network = paramsym.parse("input(8x8x3) > conv1x1(->C) > conv1x1(->D)").with_values(D=symbol("C") / 2)
    result = paramsym.sweep(network, {"C": [1, 2, 3, 4]})
    assert [bool(v) for v in result.valid] == [False, True, False, True]
    assert [int(v) for v in result.values["params"]][1::2] == [
        network.evaluate(C=2)["params"],
        network.evaluate(C=4)["params"],
    ]


def test_a_symbol_in_a_denominator_sweeps_exactly():
    # groups=G puts G in the denominator of every count: the vectorised sums must not take the
    # denominators for numbers (this was an internal error from math.gcd)
    net = paramsym.parse("input(8x8x8) > conv3x3(->8, groups=G) > conv1x1(->16, groups=G, bias)")
    result = paramsym.sweep(net, {"G": [1, 2, 3, 4, 8]})
    valid = result.valid if result.valid is not None else [True] * result.size
    for i, g in enumerate(result.grid["G"]):
        if valid[i]:
            assert int(result.values["params"][i]) == net.evaluate(G=int(g))["params"]
    assert list(valid) == [True, True, False, True, True]
    done = run("sweep", "input(8x8x8) > conv3x3(->8, groups=G)", "--grid", "G=1,2,4,8", "--format", "csv")
    assert done.returncode == 0 and done.stdout.splitlines()[1:] == [
        "1,576,20736,41472,3456",  # G, params, macs, flops, memory
        "2,288,10368,20736,2304",
        "4,144,5184,10368,1728",
        "8,72,2592,5184,1440",
    ]
