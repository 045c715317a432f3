"""Formulas and numbers as text, the way every printer shows them."""

from __future__ import annotations

from fractions import Fraction


def human(expr) -> str:
    """A formula as people write it: `90*C^2 + 74*C + 10`."""
    if expr is None:
        return "?"
    return str(expr).replace("**", "^")


def grouped(value) -> str:
    """`1,234,567` for an int; anything else as it prints."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def exact(value) -> str:
    """`1,012`, or a fraction exactly (a total where the network is not valid): `1,012.5`, or `3037/3`
    when it has no finite decimal."""
    if not isinstance(value, Fraction) or value.denominator == 1:
        return grouped(int(value)) if isinstance(value, Fraction) else grouped(value)
    for places in range(1, 19):
        scaled = value * 10**places
        if scaled.denominator == 1:
            whole, part = divmod(abs(int(scaled)), 10**places)
            return f"{'-' if value < 0 else ''}{whole:,}.{part:0{places}d}"
    return f"{value.numerator}/{value.denominator}"
