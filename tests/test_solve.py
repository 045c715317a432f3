"""Solving under a budget: exact answers (checked against brute force), the
near-integer trap, relations, budgets on other quantities, and the errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import paramsym
from helpers.cli_helpers import run

SECTION_5 = "conv3x3(3->C, bias) > conv3x3(->2C, bias) > conv3x3(->4C, bias) > gap > dense(->10, bias)"


def brute_force(network, name, budget, on="params", mode="at-most", upto=5000):
    """The answer by evaluating every value from 1 (what solve must agree with)."""
    from paramsym.algebra.solve import _Problem

    problem = _Problem(network, name, on)
    ok = {
        "at-most": lambda n: problem.f(n) <= budget,
        "at-least": lambda n: problem.f(n) >= budget,
        "exact": lambda n: problem.f(n) == budget,
    }[mode]
    hits = [n for n in range(1, upto) if ok(n) and problem.valid(n)]
    if mode == "at-most":
        return max(hits) if hits else None
    if mode == "at-least":
        return min(hits) if hits else None
    return hits


def test_section_5_answer_through_the_cli_contract():
    result = run("solve", SECTION_5, "--for", "C", "--budget", "500000", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {k: data[k] for k in ("symbol", "value", "total_at_value", "total_at_next")} == {
        "symbol": "C",
        "value": 74,
        "total_at_value": 498326,
        "total_at_next": 511810,
    }


def test_budget_suffixes():
    assert (
        json.loads(run("solve", SECTION_5, "--for", "C", "--budget", "0.5M", "--format", "json").stdout)["value"] == 74
    )


@pytest.mark.parametrize("n", [10**8, 10**9 + 7, 2**40 + 1])
def test_near_integer_trap(n):
    # params = C^2: with a budget of n^2 - 1 the real root sqrt(n^2 - 1) is within 1e-9 of n,
    # and floating point rounds it up to n, which would be over the budget.
    network = paramsym.parse("conv1x1(C->C)")
    import math

    assert math.floor(math.sqrt(n * n - 1)) == n  # the trap is real in floating point
    solution = paramsym.solve(network, "C", n * n - 1)
    assert solution.value == n - 1
    assert solution.total_at_value <= n * n - 1 < solution.total_at_next
    assert paramsym.solve(network, "C", n * n).value == n  # an exact integer root


def test_at_least_and_exact():
    network = paramsym.parse(SECTION_5)
    assert paramsym.solve(network, "C", 498326, mode="at-least").value == 74
    assert paramsym.solve(network, "C", 498327, mode="at-least").value == 75
    assert paramsym.solve(network, "C", 498326, mode="exact").values == (74,)
    with pytest.raises(paramsym.ParamsymUsageError, match="exactly"):
        paramsym.solve(network, "C", 498327, mode="exact")


def test_exact_returns_every_solution_of_a_floor():
    # params depend on floor((H - 3)/2): two sizes of H give each count
    network = paramsym.parse("input(H x H x 1) > conv3x3(->1, stride=2) > flatten > dense(->1)")
    solution = paramsym.solve(network, "H", 9 + 25, mode="exact")
    assert solution.values == tuple(brute_force(network, "H", 34, mode="exact", upto=100))
    assert len(solution.values) == 2


def test_relations_tie_unknowns():
    tied = paramsym.parse("input(8x8x3) > conv1x1(->C) > conv1x1(->D)").with_values(
        D=paramsym.language.syntax.symbol("C") * 2
    )
    assert paramsym.solve(tied, "C", 10**6).value == 706
    let = paramsym.parse("let D = 2C\ninput(8x8x3) > conv1x1(->C) > conv1x1(->D)")
    assert paramsym.solve(let, "C", 10**6).value == 706
    out = run(
        "solve", "input(8x8x3) > conv1x1(->C) > conv1x1(->D)", "--for", "C", "--budget", "1M", "--set", "D=2C"
    ).stdout
    assert "C = 706" in out and "with D = 2*C" in out


def test_other_quantities():
    program = "let C = 8\ninput(32x32x3) > conv3x3(->C, pad=1) > bn > relu > gap > dense(->10, bias)"
    network = paramsym.parse(program)
    for on in ("params", "total", "macs", "memory"):
        budget = 50_000
        solution = paramsym.solve(network, "C", budget, on=on)
        assert solution.value == brute_force(network, "C", budget, on=on, upto=3000), on
    # total (keras) counts BatchNorm's running statistics: a smaller C fits
    assert paramsym.solve(network, "C", 5000, on="total").value < paramsym.solve(network, "C", 5000).value


def test_widths_that_break_groups_are_skipped():
    network = paramsym.parse("input(16x16x8) > conv3x3(->C, groups=4)")
    solution = paramsym.solve(network, "C", 1000)
    assert solution.value == 52 and solution.value % 4 == 0  # 18*55 = 990 fits, but 55 is not a multiple of 4
    assert paramsym.solve(network, "C", 1000, mode="at-least").value == 56


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 3),
    st.sampled_from([1, 2]),
    st.booleans(),
    st.integers(50, 400_000),
    st.sampled_from(["at-most", "at-least"]),
)
def test_polynomial_totals_agree_with_brute_force(a, k, stride, bias, budget, mode):
    program = (
        f"input(24x24x3) > conv{k}x{k}(->C{', bias' if bias else ''}) > conv3x3(->{a}C, stride={stride}) "
        f"> gap > dense(->10)"
    )
    network = paramsym.parse(program)
    expected = brute_force(network, "C", budget, mode=mode, upto=700)
    if expected is None:
        with pytest.raises(paramsym.ParamsymUsageError):
            paramsym.solve(network, "C", budget, mode=mode)
    else:
        assert paramsym.solve(network, "C", budget, mode=mode).value == expected


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 1), st.integers(20, 20_000))
def test_non_polynomial_totals_agree_with_brute_force(stride, kernel, pad, budget):
    # the input size H enters through floor(): solved by integer search
    program = (
        f"input(H x H x 2) > conv{kernel}x{kernel}(->4, stride={stride}, pad={pad}) > maxpool2x2(ceil)"
        f" > flatten > dense(->3, bias)"
    )
    network = paramsym.parse(program)
    expected = brute_force(network, "H", budget, upto=400)
    if expected is None:
        with pytest.raises(paramsym.ParamsymUsageError):
            paramsym.solve(network, "H", budget)
    else:
        solution = paramsym.solve(network, "H", budget)
        assert solution.value == expected and "search" in solution.method


@pytest.mark.parametrize(
    "args, words",
    [
        ([SECTION_5, "--for", "C", "--budget", "5"], "no positive C keeps params within 5"),
        ([SECTION_5, "--for", "D", "--budget", "5"], "no symbol 'D'"),
        (["input(8x8x3) > conv1x1(->C) > conv1x1(->D)", "--for", "C", "--budget", "1M"], "D has no value"),
        (["let C = 4\ninput(8x8x3) > conv1x1(->8) > dense(->C)", "--for", "C", "--budget", "1M", "--on", "macs"], None),
        (["conv1x1(3->C) > conv1x1(->C)", "--for", "C", "--budget", "1M", "--on", "macs"], "input shape"),
        ([SECTION_5, "--for", "C", "--budget", "1M", "--at-least", "--exact"], "cannot be used together"),
        ([SECTION_5, "--for", "C", "--budget", "lots"], "--budget must be a whole number"),
        # --for left out: only a program with one free symbol says which
        (["input(8x8x3) > conv1x1(->C) > conv1x1(->D)", "--budget", "1M"], "which symbol? the program has 2: C, D"),
        (["conv1x1(3->8)", "--budget", "1M"], "solve needs a symbol to solve for"),
        (["conv1x1(3->C)", "--budget", "1M", "--set", "C=4"], "solve needs a symbol to solve for"),
        (
            ["input(8x8x3) > conv1x1(->8) > dense(->C)", "--for", "C", "--budget", "1", "--at-least", "--on", "state"],
            "Invalid value for '--on'",
        ),
        # undefined at S=1 (stride 0): the stride's own condition, located, not "division by zero"
        (
            ["input(32x32x3) > conv3x3(->8, stride=S-1)", "--for", "S", "--budget", "1000", "--on", "macs"],
            "stride S - 1 must be a positive whole number: with S=1 it is 0\n  --> line 1, column 31",
        ),
    ],
)
def test_solve_errors_exit_2(args, words):
    result = run("solve", *args)
    if words is None:
        assert result.returncode == 0
        return
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_total_that_does_not_depend_on_the_unknown():
    network = paramsym.parse("let C = 4\ninput(8x8x3) > conv1x1(->8) > dense(->10)\n")
    with pytest.raises(paramsym.ParamsymUsageError, match="params does not depend on C: it is 104"):
        paramsym.solve(network, "C", 100)
    network = paramsym.parse("input(H x 8 x 3) > conv1x1(->8) > gap > dense(->10)")
    with pytest.raises(paramsym.ParamsymUsageError, match="does not depend on H"):
        paramsym.solve(network, "H", 100)


def test_solution_renders_for_jupyter():
    solution = paramsym.solve(paramsym.parse(SECTION_5), "C", 500000)
    assert "C = 74" in solution._repr_latex_() and "90 C^{2}" in solution._repr_latex_()
    assert "<pre>" in solution._repr_html_() and "C = 74" in str(solution)


def test_network_renders_for_jupyter():
    network = paramsym.parse("let C = 8; input(8x8x3) > conv3x3(->C, pad=1, bias) > relu")
    html = network._repr_html_()
    assert html.startswith("<table>") and "<td>conv3x3</td>" in html and "28*C = 224" in html
    assert network._repr_latex_() == "$\\mathrm{params} = 28 C$"
    assert repr(network) == "<Network: 2 layers, params 224>"


@pytest.mark.parametrize(
    "args",
    [
        [SECTION_5],
        # the other symbol given by --set leaves one free
        ["input(8x8x3) > conv1x1(->C) > conv1x1(->D)", "--set", "D=2C"],
    ],
)
def test_the_only_free_symbol_is_the_unknown_without_for(args):
    program, rest = args[0], args[1:]
    without = run("solve", program, "--budget", "500000", "--format", "json", *rest)
    named = run("solve", program, "--for", "C", "--budget", "500000", "--format", "json", *rest)
    assert without.returncode == named.returncode == 0, without.stderr
    assert json.loads(without.stdout) == json.loads(named.stdout) and json.loads(named.stdout)["symbol"] == "C"
