"""The registry of combinators: the structure the layers are put together with.

Every module of this package (except `base`) defines `COMBINATORS`, a tuple of
`Combinator` instances; the registry collects them all, so a new combinator is
one new module (and, for a new keyword, the grammar's rule that writes it). The
builder finds a composite's combinator here by its keyword; `Node.kind` is the
combinator, whose methods every later stage calls.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import MAX_LAYERS, Combinator, Merge, output_shape
from .layer import LAYER
from .repeat import REPEAT
from .seq import SEQ

_SHARED = {"base"}


def _collect() -> tuple[Combinator, ...]:
    found: list[Combinator] = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name not in _SHARED:
            found.extend(importlib.import_module(f"{__name__}.{module.name}").COMBINATORS)
    return tuple(found)


# in the order of their explain sentences (`explain_order`), then by name
COMBINATORS: tuple[Combinator, ...] = ()
_BY_KEYWORD: dict[str, Combinator] = {}


def register(combinator: Combinator) -> None:
    """Add a combinator to the registry (the modules of this package are added when it is imported)."""
    global COMBINATORS
    keyword = combinator.keyword
    if keyword is not None:
        if keyword in _BY_KEYWORD:
            raise RuntimeError(
                f"the keyword {keyword!r} belongs to two combinators: {_BY_KEYWORD[keyword]} and {combinator}"
            )
        _BY_KEYWORD[keyword] = combinator
    COMBINATORS = tuple(sorted((*COMBINATORS, combinator), key=lambda c: (c.explain_order, c.key)))


def unregister(combinator: Combinator) -> None:
    """Remove a combinator registered with `register` (a test's own)."""
    global COMBINATORS
    if combinator.keyword is not None and _BY_KEYWORD.get(combinator.keyword) is combinator:
        del _BY_KEYWORD[combinator.keyword]
    COMBINATORS = tuple(c for c in COMBINATORS if c is not combinator)


for _combinator in _collect():
    register(_combinator)


def lookup(keyword: str) -> Combinator:
    """The combinator the language writes with `keyword` (res, add, concat, mul, aux, moe, ...)."""
    return _BY_KEYWORD[keyword]


def keywords() -> tuple[str, ...]:
    return tuple(_BY_KEYWORD)


__all__ = [
    "COMBINATORS",
    "LAYER",
    "MAX_LAYERS",
    "REPEAT",
    "SEQ",
    "Combinator",
    "Merge",
    "keywords",
    "lookup",
    "output_shape",
    "register",
    "unregister",
]
