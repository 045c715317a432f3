"""Formulas and numbers as text, the way every printer shows them."""
from __future__ import annotations


def human(expr) -> str:
    """A formula as people write it: `90*C^2 + 74*C + 10`."""
    if expr is None:
        return "?"
    return str(expr).replace("**", "^")


def grouped(value) -> str:
    """`1,234,567` for an int; anything else as it prints."""
    return f"{value:,}" if isinstance(value, int) else str(value)
