"""The values of `--set NAME=VALUE` (and of the playground's value boxes): a whole number or a
formula in the program's symbols. Kept apart from the CLI so that it needs no click."""

from __future__ import annotations

import re

from ..errors import ParamsymError, ParamsymUsageError
from .syntax import UNITS, count_unit, parse_count, parse_expression

SET_HINT = "a value is a whole number (64, 1_000, 25.6k, 4Ki, 7B, 1e3) or a formula in the program's symbols (2C)"


def parse_assignments(assignments, symbols=None) -> dict:
    """`--set C=64`, `--set C=25.6k`, `--set T=4Ki`, `--set C=1e3`, or a relation `--set D=2C` (a formula
    in other symbols of the program; the network checks that they are its symbols). `symbols` are the
    program's symbol names, when known: `2T` with a symbol T is refused as ambiguous (two trillion, or
    twice T?), and `2b` with a symbol b is a formula, not a misspelt 2B."""
    symbols = set(symbols or ())
    values = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ParamsymUsageError(f"--set takes NAME=VALUE, such as --set C=64, not {item!r}")
        if name in values:
            raise ParamsymUsageError(f"--set {name}=... is given twice; give each symbol one value")
        unit = count_unit(value)
        if unit and unit in symbols:
            if unit in UNITS:
                number = value.strip()[: -len(unit)].strip()
                raise ParamsymUsageError(
                    f"--set {name}={value.strip()} is ambiguous: {unit} is a symbol of the program and the "
                    f"unit {UNITS[unit][2]}",
                    hint=f"write {number}*{unit} for the formula, or the number without a unit "
                    f"({parse_count(value, f'--set {name}', 'bytes'):_})",
                )
            unit = None  # `2b` with a symbol b: the formula
        if unit is not None:
            values[name] = parse_count(value, f"--set {name}")
        else:
            try:
                values[name] = parse_expression(value)
            except ParamsymError as error:
                raise ParamsymUsageError(f"--set {name}=...: {error.message}", hint=error.hint or SET_HINT) from None
    return values
