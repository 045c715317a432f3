"""The values of `--set NAME=VALUE` (and of the playground's value boxes): a whole number or a
formula in the program's symbols. Kept apart from the CLI so that it needs no click."""

from __future__ import annotations

import re

from ..errors import ParamsymError, ParamsymUsageError
from .syntax import looks_like_count, parse_count, parse_expression

SET_HINT = "a value is a whole number (64, 1_000, 25.6k, 1e3) or a formula in the program's symbols (2C)"


def parse_assignments(assignments) -> dict:
    """`--set C=64`, `--set C=25.6k`, `--set C=1e3`, or a relation `--set D=2C` (a formula in other
    symbols of the program; the network checks that they are its symbols)."""
    values = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ParamsymUsageError(f"--set takes NAME=VALUE, such as --set C=64, not {item!r}")
        if name in values:
            raise ParamsymUsageError(f"--set {name}=... is given twice; give each symbol one value")
        if looks_like_count(value):
            values[name] = parse_count(value, f"the value of {name}")
        else:
            try:
                values[name] = parse_expression(value)
            except ParamsymError as error:
                raise ParamsymUsageError(f"--set {name}=...: {error.message}", hint=error.hint or SET_HINT) from None
    return values
