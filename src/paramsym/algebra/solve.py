"""Solving for an unknown under a budget, exactly.

"The widest C that fits in 5M parameters" is the largest positive integer n
with f(n) <= B, where f is the total with every other symbol at its value. A
rounded real root is wrong near integers, so the real roots of f - B only say
where to look: every candidate is decided by evaluating f exactly. Totals that
are not polynomials (floor and ceil from strides, symbolic kernels) are solved
by an exponential and binary integer search on exact values, checked beyond
the answer. The answer must also give a valid network (groups that divide the
channels, output sizes of at least 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

import sympy

from ..core.evaluate import Evaluator
from ..core.formatting import exact, human, listed, quantity_unit, readable
from ..core.quantities import BY_NAME, budget_formula, budgets
from ..errors import ParamsymError, ParamsymEvaluationError, ParamsymUsageError
from ..language.syntax import parse_count
from ..model.network import Network, expect_network, whole_number

MODES = ("at-most", "at-least", "exact")
SEARCH_LIMIT = 2**62  # no width or depth is larger than this
CHECK_BEYOND = 1_000  # values checked past the answer of an integer search
MAX_EXACT_SOLUTIONS = 1_000


@dataclass(frozen=True)
class Solution:
    """The answer of `solve`, with the evidence for it."""

    symbol: str
    on: str
    mode: str
    budget: int
    value: int | None
    values: tuple = ()  # every solution, for mode "exact"
    total_at_value: int | None = None
    total_at_next: int | Fraction | None = None  # a fraction where the network is not valid (C/2 at odd C)
    total_at_previous: int | Fraction | None = None
    formula: sympy.Expr = field(default=sympy.Integer(0))
    method: str = ""
    relations: dict = field(default_factory=dict)
    # at-most of a total that falls as the unknown grows (memory per GPU over --gpus N): the smallest value
    decreasing: bool = False

    def to_dict(self) -> dict:
        data = {
            "symbol": self.symbol,
            "value": self.value,
            "total_at_value": _plain(self.total_at_value),
            "total_at_next": _plain(self.total_at_next),
            "total_at_previous": _plain(self.total_at_previous),
            "on": self.on,
            "mode": self.mode,
            "budget": self.budget,
            "formula": str(self.formula),
            "method": self.method,
        }
        if self.mode == "exact":
            data["values"] = list(self.values)
        if self.relations:
            data["relations"] = {name: str(expr) for name, expr in self.relations.items()}
        if self.decreasing:
            data["decreasing"] = True
        return data

    def describe(self) -> str:
        """What `paramsym solve` prints: the answer, the totals either side, the formula and the method.
        A large budget also as people read it: `85,899,345,920 (85.9 GB, 80 GiB)`; the totals exactly (two
        figures a byte apart would round alike)."""
        name, on, budget = self.symbol, self.on, self.budget
        lines = []
        readable = _readable(on)
        if self.mode == "exact":
            shown = ", ".join(str(v) for v in self.values)
            lines.append(f"{name} with {on} exactly {readable(budget)}: {name} = {shown}")
        elif self.mode == "at-most" and self.decreasing:
            lines.append(
                f"smallest {name} with {on} <= {readable(budget)} ({on} falls as {name} grows): {name} = {self.value}"
            )
            lines.append(f"  {on} at {name} = {self.value}: {readable(self.total_at_value)}")
            if self.total_at_previous is not None and self.value is not None:
                over = "over the budget" if self.total_at_previous > budget else "within it, but no valid setup"
                lines.append(f"  {on} at {name} = {self.value - 1}: {readable(self.total_at_previous)} ({over})")
        elif self.mode == "at-most":
            lines.append(f"largest {name} with {on} <= {readable(budget)}: {name} = {self.value}")
            lines.append(f"  {on} at {name} = {self.value}: {exact(self.total_at_value)}")
            beyond = "over the budget" if self.total_at_next > budget else "within it, but no valid network"
            lines.append(f"  {on} at {name} = {self.value + 1}: {exact(self.total_at_next)} ({beyond})")
        else:
            lines.append(f"smallest {name} with {on} >= {readable(budget)}: {name} = {self.value}")
            lines.append(f"  {on} at {name} = {self.value}: {exact(self.total_at_value)}")
            if self.total_at_previous is not None:
                short = "short of it" if self.total_at_previous < budget else "reaches it, but no valid network"
                lines.append(f"  {on} at {name} = {self.value - 1}: {exact(self.total_at_previous)} ({short})")
        lines.append(f"  {on} = {human(self.formula)}")
        for other, expr in self.relations.items():
            lines.append(f"  with {other} = {human(expr)}")
        lines.append(f"  method: {self.method}")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.describe()

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(self.describe()) + "</pre>"

    def _repr_latex_(self) -> str:
        name = sympy.latex(sympy.Symbol(self.symbol))
        if self.mode == "exact":
            shown = ", ".join(str(v) for v in self.values) or r"\varnothing"
            return f"$\\{{{name} : {sympy.latex(self.formula)} = {self.budget}\\}} = \\{{{shown}\\}}$"
        relation = r"\le" if self.mode == "at-most" else r"\ge"
        return (
            f"${name} = {self.value}$, the {'largest' if self.mode == 'at-most' else 'smallest'} with "
            f"${sympy.latex(self.formula)} {relation} {self.budget}$"
        )


def budget_unit(on: str) -> str:
    """What a budget on `on` is: "bytes" for a quantity in bytes, else "count", "flops" or "seconds"."""
    return quantity_unit(on)


def parse_budget(text: str, on: str, option: str = "--budget") -> int:
    """`--budget` for `--on on`: a count (`5M`, `7B`, `4Ki`); a number of bytes (`16GB`, `80GiB`) only when
    `on` is a quantity in bytes."""
    unit = budget_unit(on)
    q = BY_NAME.get(on)
    what = q.long_title or q.title if q is not None else on
    in_bytes = [name for name in budgets() if budget_unit(name) == "bytes"]
    asked = f"--on {on} is a {'count' if unit == 'count' else 'number of ' + unit} ({what}), not bytes" + (
        f": budget bytes with --on {' or --on '.join(in_bytes)}" if in_bytes else ""
    )
    return parse_count(text, option, unit=unit, asked=asked)


def _readable(on: str):
    """How a total of `on` is written: exactly, and when large also in units people read (`16.0 GB`)."""
    unit = budget_unit(on)
    return lambda value: readable(value, unit)


def _plain(value):
    """JSON: an int, or a fraction as text ("2025/2"), as in `count --format json`."""
    return str(value) if isinstance(value, Fraction) else value


def quantity(network: Network, on: str) -> sympy.Expr | None:
    """The formula a budget is about."""
    if on not in budgets():
        raise ParamsymUsageError(f"unknown quantity {on!r}; use one of {', '.join(budgets())}")
    return budget_formula(network, on)


class _Problem:
    """f(n) and the validity of the network at n, evaluated exactly."""

    def __init__(self, network: Network, name: str, on: str):
        name = name.name if isinstance(name, sympy.Symbol) else name  # net.symbols["C"] as well as "C"
        if name not in network.symbols:
            known = listed(network.symbols)
            raise ParamsymUsageError(f"the program has no symbol {name!r} (its symbols: {known})")
        self.name = name
        self.unknown = network.symbols[name]
        self.network = network.without_values(name)
        expr = quantity(self.network, on)
        if expr is None:
            raise ParamsymUsageError(f"{on} needs the input shape: start the program with input(...)")
        self.formula = self.network.bind(expr, free=[self.unknown])
        others = sorted(s.name for s in self.formula.free_symbols if s != self.unknown)
        if others:
            raise ParamsymUsageError(
                f"{', '.join(others)} {'has' if len(others) == 1 else 'have'} no value: give "
                f"{'it' if len(others) == 1 else 'them'} with --set (or a let), or tie "
                f"{'it' if len(others) == 1 else 'them'} to {name} with --set {others[0]}=2{name}"
            )
        if self.unknown not in self.formula.free_symbols:
            raise ParamsymUsageError(f"{on} does not depend on {name}: it is {self.formula} whatever {name} is")
        self.constraints = [c for lc in self.network.layers for c in lc.layer.constraints]
        # --gpus N with --tp t --pp p: N must be a multiple of t p (core/training.py)
        setup = self.network.setup
        self.gpus = setup.gpus if setup.train and self.unknown in setup.gpus.free_symbols else None
        self.model_parallel = setup.tp * setup.pp
        self._cache: dict[int, int] = {}

    def f(self, n: int) -> int | Fraction:
        """The total at n, exactly: a fraction where n gives no valid network (C/2 channels at an odd C)."""
        if n not in self._cache:
            try:
                self._cache[n] = Evaluator({self.unknown: n}).number(self.formula)
            except ParamsymEvaluationError:
                # undefined (a stride S-1 at S=1): the layer's own condition says where and why
                try:
                    evaluator = self.network.evaluator(**{self.name: n})
                    for constraint in self.constraints:
                        evaluator.check(constraint)
                except ParamsymError as error:
                    raise error.with_source(self.network.source) from None
                raise
        return self._cache[n]

    def valid(self, n: int) -> bool:
        """The network is well formed at n (groups divide channels, sizes stay >= 1, relations are whole)."""
        try:
            evaluator = self.network.evaluator(**{self.name: n})
            for constraint in self.constraints:
                evaluator.check(constraint)
        except ParamsymError:
            return False
        if self.gpus is not None:
            gpus = Evaluator({self.unknown: n}).number(self.gpus)
            return isinstance(gpus, int) and gpus % self.model_parallel == 0
        return True

    def polynomial(self) -> sympy.Poly | None:
        if self.formula.is_polynomial(self.unknown):
            return sympy.Poly(self.formula, self.unknown)
        return None


def solve(network: Network, name: str, budget: int, *, on: str = "params", mode: str = "at-most") -> Solution:
    """The largest (at-most), smallest (at-least) or every (exact) positive integer value of
    `name` for which `on` is within, reaches or equals `budget`."""
    expect_network(network, "solve")
    if mode not in MODES:
        raise ParamsymUsageError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    number = whole_number(budget)
    if number is None or number < 0:
        raise ParamsymUsageError(f"the budget must be a whole number, not {budget!r}")
    budget = number
    problem = _Problem(network, name, on)
    poly = problem.polynomial()
    if poly is not None:
        method = "exact: integers next to the real roots of the polynomial, each checked"
        candidates = _candidates(poly, budget)
    else:
        method = "exact integer search (the total is not a polynomial)"
        candidates = None
    finder = {"at-most": _at_most, "at-least": _at_least, "exact": _exact}[mode]
    return finder(problem, budget, on, poly, candidates, method)


def _candidates(poly: sympy.Poly, budget: int) -> list[int]:
    """1 and the integers next to each real root of poly - budget, in increasing order."""
    shifted = poly - budget
    found = {1}
    if shifted.degree() > 0:
        for root in sympy.real_roots(shifted):
            approx = root.evalf(40)
            if approx < 0:
                continue
            base = int(sympy.floor(approx))
            found.update(n for n in range(base - 1, base + 3) if n >= 1)
    return sorted(found)


def _solution(problem: _Problem, budget, on, mode, value, method, values=()) -> Solution:
    return Solution(
        symbol=problem.name,
        on=on,
        mode=mode,
        budget=budget,
        value=value,
        values=tuple(values),
        total_at_value=problem.f(value) if value is not None else None,
        total_at_next=problem.f(value + 1) if value is not None else None,
        total_at_previous=problem.f(value - 1) if value is not None and value > 1 else None,
        formula=problem.formula,
        method=method,
        relations=dict(problem.network.relations()),
    )


def _at_most(problem: _Problem, budget, on, poly, candidates, method) -> Solution:
    f, name = problem.f, problem.name
    if f(1) > budget and poly is None and f(2) <= f(1):
        return _fewest(problem, budget, on, method)
    if f(1) > budget and (poly is None or all(f(c) > budget for c in candidates)):
        raise ParamsymUsageError(
            f"no positive {name} keeps {on} within {budget:,}: at {name}=1 it is already {exact(f(1))}"
        )
    if poly is not None:
        if poly.LC() <= 0:
            raise ParamsymUsageError(f"{on} = {problem.formula} does not grow with {name}: no largest value")
        best = max(c for c in candidates if f(c) <= budget)
    else:
        best = _last_within(f, budget, name, on)
    # a width the network cannot have (groups, sizes) does not count: step down to a valid one
    start = best
    while not problem.valid(best) or f(best) > budget:
        best -= 1
        if best < 1 or start - best > 100_000:
            raise ParamsymUsageError(f"no valid {name} at most {start} keeps {on} within {budget:,}")
    return _solution(problem, budget, on, "at-most", best, method)


def _fewest(problem: _Problem, budget, on, method) -> Solution:
    """The smallest n with f(n) <= budget, for a total that falls as n grows (the memory of a device as
    the GPUs grow): doubling, then bisection; the values past the answer are checked to stay within."""
    f, name = problem.f, problem.name
    high = 1
    while f(high) > budget:
        high *= 2
        if high > SEARCH_LIMIT:
            raise ParamsymUsageError(
                f"no positive {name} keeps {on} within {budget:,}: at {name}={high // 2:,} it is still "
                f"{exact(f(high // 2))}"
            )
    low = high // 2  # f(low) > budget (f(1) is over it)
    while low + 1 < high:
        middle = (low + high) // 2
        if f(middle) <= budget:
            high = middle
        else:
            low = middle
    for n in range(high + 1, high + 1 + CHECK_BEYOND):
        if f(n) > budget:
            raise ParamsymUsageError(
                f"{on} does not fall steadily as {name} grows ({name}={n} is over the budget again): "
                f"give {name} directly"
            )
    best = high
    while not problem.valid(best):  # --gpus a multiple of --tp x --pp
        best += 1
        if best - high > 100_000:
            raise ParamsymUsageError(f"no valid {name} from {high} on keeps {on} within {budget:,}")
    solution = _solution(problem, budget, on, "at-most", best, method + "; the total falls as " + name + " grows")
    return replace(solution, decreasing=True)


def _last_within(f, budget, name, on) -> int:
    """Largest n with f(n) <= budget for a total that grows with n, checked past the answer."""
    high = 1
    while f(high) <= budget:
        high *= 2
        if high > SEARCH_LIMIT:
            raise ParamsymUsageError(f"{on} stays within {budget:,} however large {name} is")
    low = high // 2 if high > 1 else 1
    while low + 1 < high:
        middle = (low + high) // 2
        if f(middle) <= budget:
            low = middle
        else:
            high = middle
    for n in range(low + 1, low + 1 + CHECK_BEYOND):
        if f(n) <= budget:
            raise ParamsymUsageError(
                f"{on} does not grow steadily with {name} ({name}={n} is within the budget again): "
                f"use --exact or give {name} directly"
            )
    return low


def _at_least(problem: _Problem, budget, on, poly, candidates, method) -> Solution:
    f, name = problem.f, problem.name
    if poly is not None:
        reaching = [c for c in candidates if f(c) >= budget]
        if not reaching or (poly.LC() <= 0 and f(1) < budget):
            raise ParamsymUsageError(f"no positive {name} makes {on} reach {budget:,}")
        best = min(reaching)
    else:
        best = _first_reaching(f, budget, name, on)
    start = best
    while not problem.valid(best) or f(best) < budget:
        best += 1
        if best - start > 100_000:
            raise ParamsymUsageError(f"no valid {name} from {start} on makes {on} reach {budget:,}")
    return _solution(problem, budget, on, "at-least", best, method)


def _exact(problem: _Problem, budget, on, poly, candidates, method) -> Solution:
    f = problem.f
    if poly is not None:
        if poly.degree() == 0:
            raise ParamsymUsageError(f"{on} does not depend on {problem.name}")
        values = [c for c in candidates if f(c) == budget and problem.valid(c)]
    else:
        values = []
        n = _first_reaching(f, budget, problem.name, on)
        while f(n) == budget and len(values) < MAX_EXACT_SOLUTIONS:
            if problem.valid(n):
                values.append(n)
            n += 1
    if not values:
        raise ParamsymUsageError(f"no positive {problem.name} makes {on} exactly {budget:,}")
    return _solution(problem, budget, on, "exact", values[0], method, values)


def _first_reaching(f, budget, name, on) -> int:
    """Smallest n with f(n) >= budget for a total that grows with n: doubling, then bisection."""
    high = 1
    while f(high) < budget:
        high *= 2
        if high > SEARCH_LIMIT:
            raise ParamsymUsageError(f"no positive {name} makes {on} reach {budget:,}")
    low = high // 2
    while low + 1 < high:
        middle = (low + high) // 2
        if f(middle) >= budget:
            high = middle
        else:
            low = middle
    return high
