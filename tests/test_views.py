"""Views of a formula: expanded, factored, collected, per layer, generic, derivatives."""

from __future__ import annotations

import sympy

import paramsym
from helpers.cli_helpers import run
from paramsym.language.syntax import symbol

C, D = symbol("C"), symbol("D")
PROGRAM = (
    "let C = 74\ninput(32x32x3) > conv3x3(->C, bias) > conv3x3(->2C, bias) > conv3x3(->4C, bias) > gap > "
    "dense(->10, bias)"
)


def test_views_are_the_same_formula():
    network = paramsym.parse("input(8x8x3) > conv1x1(->C) > conv3x3(->D, pad=1) > dense(->C)")
    for how, by in (("expanded", None), ("factored", None), ("collected", "C"), ("collected", "D")):
        shown = paramsym.view(network.params, how, by, network)
        assert sympy.expand(shown - network.params) == 0
    assert paramsym.view(network.params, "collected", "C", network) == sympy.collect(sympy.expand(network.params), C)


def test_per_layer_shares_add_up():
    network = paramsym.parse(PROGRAM)
    shares = paramsym.per_layer(network)
    assert [path for path, _ in shares] == ["conv3x3", "conv3x3", "conv3x3", "gap", "dense"]
    assert sympy.expand(sum(s for _, s in shares) - network.params) == 0


def test_generic_forms_instantiate_to_the_counts():
    network = paramsym.parse(
        "input(8x8x16) > conv3x3(->32, groups=4, bias) > dwconv3x3 > sepconv3x3(->8, bias)"
        " > deconv2x2(->4, stride=2) > bn > prelu > gap > dense(->3, bias)"
    )
    rows = paramsym.generic(network)
    assert len(rows) == 7
    for path, template, values, count in rows:
        assert sympy.expand(template.xreplace(values) - count) == 0, path
    assert str(rows[0][1]) == "C_in*C_out*k_h*k_w/g + C_out"


def test_marginal_cost_of_one_more_channel():
    network = paramsym.parse(PROGRAM)
    m = paramsym.marginal(network, "C")
    assert m.derivative == 180 * C + 74
    assert m.one_more == network.evaluate(C=75)["params"] - network.evaluate(C=74)["params"] == 13484
    assert m.derivative_at == 13394


def test_formula_command():
    out = run("formula", PROGRAM, "--view", "factored", "--diff", "C").stdout
    assert "params = 2*(45*C^2 + 37*C + 5) = 498,326" in out
    assert "one more (C = 75) costs exactly 13,484" in out
    generic = run("formula", PROGRAM, "--view", "generic").stdout
    assert "conv3x3: C_in*C_out*k_h*k_w + C_out  with k_h = 3, k_w = 3, C_in = C, C_out = 2*C" in generic
    per_layer = run("formula", PROGRAM, "--view", "per-layer", "--on", "macs").stdout
    assert per_layer.splitlines()[-1] == "total: 62784*C^2 + 24340*C = 345,606,344"
    bad = run("formula", PROGRAM, "--view", "collected")
    assert bad.returncode == 2 and "--by" in bad.stderr
