"""What-if sweeps: the totals at every point of a grid of symbol values,
computed by exact vectorised functions (paramsym.vectorize)."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field

import numpy as np
import sympy

from ..core.formatting import listed
from ..core.quantities import BY_NAME, applies, budgets
from ..errors import ParamsymUsageError
from ..language.syntax import MAX_NUMBER_BITS, looks_like_count, parse_count, too_large
from ..model.network import Network, expect_network
from .solve import quantity
from .vectorize import compile_condition, compile_exact

MAX_POINTS = 20_000_000
MAX_GRID_AXES = 32  # NumPy arrays have at most 32 (64 in NumPy 2) axes


def parse_grid(text: str) -> tuple[str, list[int]]:
    """`C=16:256:16` (start:stop:step, stop included), `k=3,5,7` or `C=64`; each number as in
    --set (`1_000`, `1k`, `4Ki`, `1e3`; docs/cli.md, "Units")."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ParamsymUsageError(f"--grid takes NAME=VALUES, such as C=16:256:16 or k=3,5,7, not {text!r}")
    if ":" in values:
        parts = values.split(":")
        if len(parts) not in (2, 3) or not all(looks_like_count(p) for p in parts):
            raise ParamsymUsageError(
                f"--grid {name}={values}: a range is start:stop or start:stop:step, such as 16:256:16"
            )
        start, stop, step = (parse_count(p, f"--grid {name}") for p in (*parts, "1")[:3])
        if step < 1 or stop < start or start < 1:
            raise ParamsymUsageError(
                f"--grid {name}={values}: a range is start:stop:step with 1 <= start <= stop and step >= 1"
            )
        if (stop - start) // step + 1 > MAX_POINTS:
            raise ParamsymUsageError(f"--grid {name}={values} has more than {MAX_POINTS:,} values")
        return name, list(range(start, stop + 1, step))
    parts = values.split(",")
    if not all(looks_like_count(p) for p in parts):
        raise ParamsymUsageError(f"--grid {name}={values}: give whole numbers (3,5,7) or a range (16:256:16)")
    numbers = [parse_count(p, f"--grid {name}") for p in parts]
    if any(n < 1 for n in numbers):
        raise ParamsymUsageError(f"--grid {name}={values}: symbols stand for positive whole numbers")
    return name, numbers


def check_grid(grid) -> dict[str, list[int]]:
    """The grid of `sweep(network, grid)`: a dict of symbol names to non-empty lists of positive whole numbers."""
    if not isinstance(grid, dict):
        raise ParamsymUsageError(
            f"the grid is a dict of symbol names to lists of values, such as "
            f"{{'C': [16, 32, 64]}}, not a {type(grid).__name__}"
        )
    if len(grid) > MAX_GRID_AXES:
        raise ParamsymUsageError(f"the grid has {len(grid)} symbols; at most {MAX_GRID_AXES} are swept at once")
    checked = {}
    for name, values in grid.items():
        if not isinstance(name, str):
            raise ParamsymUsageError(f"the grid's keys are symbol names (str), not {name!r}")
        if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
            raise ParamsymUsageError(
                f"the values of {name} are a list of whole numbers, such as [16, 32, 64], not {values!r}"
            )
        if hasattr(values, "__len__") and len(values) > MAX_POINTS:  # before list(range(10**12))
            raise ParamsymUsageError(f"{name} has {len(values):,} values; at most {MAX_POINTS:,} are swept at once")
        values = list(values)
        if not values:
            raise ParamsymUsageError(f"the values of {name} are an empty list; give at least one")
        numbers = []
        for value in values:
            number = _whole(value)
            if number is None or number < 1:
                raise ParamsymUsageError(
                    f"the values of {name} must be positive whole numbers (symbols stand for them), not {value!r}"
                )
            if number.bit_length() > MAX_NUMBER_BITS:
                raise too_large(f"a value of {name}", number.bit_length())
            numbers.append(number)
        checked[name] = numbers
    return checked


def _whole(value) -> int | None:
    """An int for whole numbers of any integer type (int, NumPy, SymPy); None for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, sympy.Basic):
        return int(value) if value.is_Integer else None
    try:
        return operator.index(value)
    except TypeError:
        return None


@dataclass
class Sweep:
    """Columns of a sweep: the grid values, then one array per quantity."""

    grid: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    formulas: dict = field(default_factory=dict)
    budget: int | None = None
    on: str = "params"
    within: np.ndarray | None = None
    valid: np.ndarray | None = None  # None when every point gives a well-formed network

    @property
    def size(self) -> int:
        return len(next(iter(self.grid.values())))

    def __repr__(self) -> str:
        # short: the columns are arrays of every point (rows() and columns() give them)
        text = f"<Sweep: {self.size:,} points of {', '.join(self.grid)}; columns {', '.join(self.values)}"
        if self.within is not None:
            text += f"; {int(self.within.sum()):,} with {self.on} <= {self.budget:,}"
        if self.valid is not None:
            text += f"; {int(self.valid.sum()):,} valid"
        return text + ">"

    def rows(self):
        names, columns = self.column_names(), self.columns()
        for i in range(self.size):
            yield dict(zip(names, (_plain(c[i]) for c in columns)))

    def column_names(self) -> list[str]:
        return (
            [*self.grid, *self.values]
            + (["within"] if self.within is not None else [])
            + (["valid"] if self.valid is not None else [])
        )

    def columns(self) -> list:
        return (
            [*self.grid.values(), *self.values.values()]
            + ([self.within] if self.within is not None else [])
            + ([self.valid] if self.valid is not None else [])
        )


def _plain(value):
    return bool(value) if isinstance(value, np.bool_) else int(value)


def sweep(
    network: Network,
    grid: dict[str, list[int]],
    *,
    on: str = "params",
    budget: int | None = None,
    quantities: tuple = (),
) -> Sweep:
    """Evaluate the totals at every point of the grid (the Cartesian product of the values)."""
    expect_network(network, "sweep")
    grid = check_grid(grid)
    if budget is not None and (_whole(budget) is None or budget < 0):
        raise ParamsymUsageError(f"the budget must be a whole number of at least 0, not {budget!r}")
    budget = None if budget is None else _whole(budget)
    if not grid:
        raise ParamsymUsageError("give at least one --grid NAME=VALUES")
    for name in grid:
        if name not in network.symbols:
            known = listed(network.symbols)
            raise ParamsymUsageError(f"the program has no symbol {name!r} (its symbols: {known})")
    points = int(np.prod([len(v) for v in grid.values()], dtype=object))
    if points > MAX_POINTS:
        raise ParamsymUsageError(f"the grid has {points:,} points; at most {MAX_POINTS:,} are swept at once")
    free_network = network.without_values(*grid)
    symbols = [network.symbols[name] for name in grid]
    # int64 while every value fits; Python integers beyond (compile_exact then works in Python integers)
    axes = [np.asarray(v, dtype=np.int64 if max(v) < 2**63 else object) for v in grid.values()]
    shape = tuple(len(axis) for axis in axes)
    # each symbol along its own axis: the formulas broadcast, and a part in one symbol is
    # computed once per value of it; the columns are the points in order, the last symbol fastest
    grid_axes = dict(zip(grid, np.meshgrid(*axes, indexing="ij", sparse=True)))
    columns = {name: np.broadcast_to(axis, shape).ravel() for name, axis in grid_axes.items()}

    def points(array):
        return np.broadcast_to(array, shape).ravel()

    # by default every budget that applies as the network is run (training with --train; serving to a decoder)
    names = tuple(quantities) or tuple(name for name in budgets() if applies(BY_NAME[name], network))
    exprs = {name: quantity(free_network, name) for name in (*names, on) if quantities or name == on}
    for name in names:  # the default columns: one not known here (training memory without its activations) is left out
        if name not in exprs:
            try:
                exprs[name] = quantity(free_network, name)
            except ParamsymUsageError:
                exprs[name] = None
    # By default each budget quantity once (the total is the params again when there is no state), and
    # not a quantity that is 0 everywhere (the KV cache of a network without attention).
    wanted = (
        list(names)
        if quantities
        else [
            name
            for i, name in enumerate(names)
            if exprs[name] != 0 and all(exprs[name] != exprs[other] for other in names[:i])
        ]
    )
    if on not in wanted:
        wanted.append(on)
    valid = _validity(free_network, symbols, grid_axes)
    values, formulas = {}, {}
    for name in wanted:
        expr = exprs[name]
        if expr is None:
            if name == on:
                raise ParamsymUsageError(f"{on} needs the input shape: start the program with input(...)")
            continue
        bound = free_network.bind(expr, free=symbols)
        others = sorted(s.name for s in bound.free_symbols if s not in symbols)
        if others:
            raise ParamsymUsageError(f"{', '.join(others)} has no value: add it to the grid or give it with --set")
        formulas[name] = bound
        values[name] = points(compile_exact(bound, symbols)(grid_axes, where=valid))
        if values[name].dtype == object:  # Python integers: bounded as every number paramsym makes
            bits = max(abs(int(v)).bit_length() for v in values[name])
            if bits > MAX_NUMBER_BITS:
                raise too_large(f"the {name}", bits)
    valid = None if valid is None else points(valid)
    within = None if budget is None else values[on] <= budget
    if within is not None and valid is not None:
        within = within & valid
    return Sweep(columns, values, formulas, budget, on, within, valid)


def _validity(network: Network, symbols, columns) -> np.ndarray | None:
    """Which points give a well-formed network (groups divide channels, sizes >= 1, whole positive
    channels, PyTorch's rules on arguments); None if all."""
    mask = None
    seen = set()
    for lc in network.layers:
        for constraint in lc.layer.constraints:
            if (constraint.expr, constraint.requirement) in seen:
                continue  # ->C/2 in every block: one condition, compiled once
            seen.add((constraint.expr, constraint.requirement))
            bound = network.bind(constraint.expr, free=symbols)
            if not bound.free_symbols & set(symbols):
                continue
            if bound.free_symbols - set(symbols):
                continue  # depends on a symbol without a value: nothing to check here
            ok = compile_condition(bound, constraint.requirement, symbols)(columns)
            mask = ok if mask is None else mask & ok
    # a relation such as D = C/2 must give a positive whole number at every point
    for _name, expr in network.assignments.items():
        bound = network.bind(expr, free=symbols)
        if not bound.free_symbols or bound.free_symbols - set(symbols):
            continue
        for requirement in ("integer", "positive"):
            ok = compile_condition(bound, requirement, symbols)(columns)
            mask = ok if mask is None else mask & ok
    if mask is not None and bool(np.all(mask)):
        return None
    return mask  # broadcasts against the grid (a condition in C alone is a column)
