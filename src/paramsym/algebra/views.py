"""Views of a formula: expanded, factored, collected by a symbol, per layer,
the generic form beside the instantiated one, and derivatives ("what one more
channel costs")."""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .. import expansion
from ..core.formatting import listed
from ..core.quantities import budget_formula, generic_params, layer_share, per_layer_names, viewable
from ..errors import ParamsymLimitError, ParamsymUsageError
from ..model.network import Network, expect_network

MAX_FACTOR_TERMS = 150
VIEWS = ("expanded", "factored", "collected", "per-layer", "generic")


@dataclass(frozen=True)
class Marginal:
    """d total / d symbol, and the exact cost of one more unit at the symbol's value."""

    symbol: str
    derivative: sympy.Expr
    at: int | None
    derivative_at: sympy.Expr | None
    one_more: int | None


def formula(network: Network, on: str = "params") -> sympy.Expr:
    if on not in viewable():
        raise ParamsymUsageError(f"unknown quantity {on!r}; use one of {', '.join(viewable())}")
    expr = budget_formula(network, on)
    if expr is None:
        raise ParamsymUsageError(f"{on} needs the input shape: start the program with input(...)")
    return expr


def view(expr: sympy.Expr, how: str, by: str | None = None, network: Network | None = None) -> sympy.Expr:
    """A formula (such as `net.params`) expanded, factored, or collected by the symbol `by` of `network`."""
    if isinstance(expr, int) and not isinstance(expr, bool):
        expr = sympy.Integer(expr)
    if not isinstance(expr, sympy.Expr):  # a str would reach sympify, which runs it as Python
        raise ParamsymUsageError(
            f"view takes a formula (a SymPy expression such as net.params), not a {type(expr).__name__}"
        )
    if how == "expanded":
        return expansion.expand(expr)
    if how == "factored":
        # factoring takes SymPy minutes on a few hundred terms of high degree: only short formulas
        terms = len(sympy.Add.make_args(expansion.expand(expr)))
        if terms > MAX_FACTOR_TERMS:
            raise ParamsymLimitError(
                f"the factored view is for formulas of at most {MAX_FACTOR_TERMS} terms; this one has {terms:,}",
                hint="use --view expanded, or collected --by NAME",
            )
        return sympy.factor(expr)
    if how == "collected":
        if by is None:
            raise ParamsymUsageError("--view collected needs --by NAME, the symbol to collect by")
        if network is None:
            raise ParamsymUsageError("the collected view needs network=, the network whose symbol `by` is")
        if by not in network.symbols:
            raise ParamsymUsageError(f"the program has no symbol {by!r}")
        return sympy.collect(expansion.expand(expr), network.symbols[by])
    raise ParamsymUsageError(f"unknown view {how!r}; use one of {', '.join(VIEWS)}")


def per_layer(network: Network, on: str = "params") -> list[tuple[str, sympy.Expr]]:
    """Each layer's share of the quantity (parameters, state, MACs, ...)."""
    expect_network(network, "per_layer")
    if on not in per_layer_names():
        raise ParamsymUsageError(f"the per-layer view is for {', '.join(per_layer_names())}")
    return [(lc.layer.path, layer_share(lc.counts, on)) for lc in network.layers]


def generic(network: Network, avoid=()) -> list[tuple[str, sympy.Expr, dict, sympy.Expr]]:
    """(path, textbook formula, what its symbols stand for, instantiated formula) for each learnable layer.

    A textbook symbol named like a symbol of the program (or in `avoid`) is primed: `bn` after
    `conv3x3(3->C)` is 2 C' with C' = C. Relations (`--set D=2C`) are applied to what the symbols
    stand for, as they are to the counts."""
    taken = frozenset(expect_network(network, "generic").symbols) | frozenset(avoid)
    rows = []
    for lc in network.layers:
        template, values = generic_params(lc.layer, taken)
        if template != 0:
            values = {s: network.apply_relations(v) for s, v in values.items()}
            rows.append((lc.layer.path, template, values, lc.counts.params))
    return rows


def marginal(network: Network, name: str, on: str = "params") -> Marginal:
    """How `on` grows with the symbol `name`: its derivative, and at the default value of `name` (when every
    other symbol has one) the derivative there and the exact change of one more."""
    expect_network(network, "marginal")
    name = name.name if isinstance(name, sympy.Symbol) else name  # net.symbols["C"] as well as "C"
    if name not in network.symbols:
        raise ParamsymUsageError(f"the program has no symbol {name!r} (its symbols: {listed(network.symbols)})")
    unknown = network.symbols[name]
    free = network.without_values(name)
    expr = free.bind(formula(free, on), free=[unknown])
    derivative = sympy.diff(expr, unknown)
    at = network.defaults.get(name)
    if at is None or expr.free_symbols - {unknown}:
        return Marginal(name, derivative, None, None, None)
    evaluator_now = free.evaluator(**{name: at})
    evaluator_next = free.evaluator(**{name: at + 1})
    one_more = evaluator_next.integer(expr) - evaluator_now.integer(expr)
    return Marginal(name, derivative, at, derivative.xreplace({unknown: at}), one_more)
