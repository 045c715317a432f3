"""The registry of layer kinds.

Every module of this package (except `base`, `windows` and `traced_attention`, which kinds share)
defines `KINDS`, a tuple of `Kind` instances; the registry collects them all, so
a new kind is one new module. The builder, the counting, `explain`, both
exports and the importer find a layer's kind here and nowhere else.
"""

from __future__ import annotations

import copyreg
import importlib
import pkgutil
import sys
from functools import lru_cache
from typing import Any

from .base import Kind, NameMatch

_SHARED = {"base", "windows", "traced_attention"}
# Names the composition itself reserves: input(...) is the network's first stage, not a layer kind.
RESERVED = ("input",)


def _collect() -> tuple[Kind, ...]:
    kinds: list[Kind] = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name in _SHARED or module.ispkg:  # combinators: the structure's registry, not layer kinds
            continue
        kinds.extend(importlib.import_module(f"{__name__}.{module.name}").KINDS)
    return tuple(kinds)


KINDS: tuple[Kind, ...] = _collect()

_BY_NAME: dict[str, Kind] = {}
for _kind in KINDS:
    for _name in _kind.names:
        if _name in _BY_NAME or _name in RESERVED:
            raise RuntimeError(f"layer name {_name!r} belongs to two kinds: {_BY_NAME.get(_name)} and {_kind}")
        _BY_NAME[_name] = _kind
_FAMILIES = tuple((kind, kind.pattern) for kind in KINDS if kind.pattern is not None)
_BY_KEY = {kind.key: kind for kind in KINDS}


def registered(key: str) -> Kind:
    """The registered kind of a key (what a pickled kind comes back as)."""
    return _BY_KEY[key]


def _reduce(kind: Kind) -> Any:
    # a registered kind is one instance: pickled by its key and found again here (some kinds hold lambdas, which
    # pickle cannot write), so that a network pickles, and copies, with the registry's kinds
    if _BY_KEY.get(kind.key) is kind:
        return (registered, (kind.key,))
    return object.__reduce_ex__(kind, 2)


for _class in {type(kind) for kind in KINDS}:
    copyreg.pickle(_class, _reduce)


@lru_cache(maxsize=4096)
def lookup(name: str) -> tuple[Kind, NameMatch] | None:
    """(kind, match) for a layer name (the match of a family's pattern, or True), or None."""
    kind = _BY_NAME.get(name)
    if kind is not None:
        return kind, True
    for kind, pattern in _FAMILIES:
        match = pattern.fullmatch(name)
        if match:
            return kind, match
    return None


def is_layer_name(name: str) -> bool:
    return name in RESERVED or lookup(name) is not None


def known_names() -> list[str]:
    """Names offered in "did you mean" hints."""
    names = set(RESERVED) | set(_BY_NAME)
    for kind in KINDS:
        names.update(kind.suggestions)
    return sorted(names)


def suggest(name: str, blocks: tuple[str, ...] | list[str] | frozenset[str] | set[str] = ()) -> str | None:
    """The known name (a layer's, or one of the program's `blocks`) closest to a name that is neither."""
    import difflib  # only for the hint

    close = difflib.get_close_matches(name, sorted({*known_names(), *blocks}), n=1, cutoff=0.6)
    return close[0] if close else None


def identity_name() -> str:
    """The name of the layer that passes its input on: what an empty branch is written as."""
    return next(kind.names[0] for kind in KINDS if kind.identity)


# Methods whose replacement in a subclass changes what a claimed module computes
_BEHAVIOUR = ("forward", "_conv_forward", "__call__")


def _claims(kind: Kind, cls: type) -> bool:
    """Whether `kind` imports modules of class `cls`: named in `torch_modules` by its qualified name
    (`timm.layers.conv2d_same.Conv2dSame`, one library's class), or by its bare name. A bare name of a
    torch.nn class (`LayerNorm`) names that class only, not another library's class of the same name
    (timm's `LayerNorm`, with its own forward): such a class is claimed by its qualified name or not at all."""
    if f"{cls.__module__}.{cls.__qualname__}" in kind.torch_modules:
        return True
    if cls.__name__ not in kind.torch_modules:
        return False
    if cls.__module__.startswith("torch."):
        return True
    nn = sys.modules.get("torch.nn")
    return not (
        nn is not None
        and isinstance(getattr(nn, cls.__name__, None), type)
        and any(base.__name__ == "Module" and base.__module__.startswith("torch.") for base in cls.__mro__)
    )


# What else imports PyTorch modules whole besides the kinds: combinators that claim classes (`sk`, timm's
# SelectiveKernel), each added by its own module with `imports_modules`
_IMPORTERS: list[Any] = []


def imports_modules(importer: Any) -> None:
    """Let `importer` (a combinator with a kind's `torch_modules`, `takes_pad` and `from_torch`) import the modules
    it claims, after the kinds."""
    if importer not in _IMPORTERS:
        _IMPORTERS.append(importer)


def _claimed(module: Any) -> tuple[Kind | None, type | None]:
    """The kind and the class it claims: the first class of the module's MRO that a kind names (or one of the
    `_IMPORTERS`)."""
    for cls in type(module).__mro__:
        for kind in (*KINDS, *_IMPORTERS):
            if _claims(kind, cls):
                return kind, cls
    return None, None


def overridden(module: Any) -> str | None:
    """The name of the claimed class whose computation `module` replaces (a subclass that defines its own
    forward, as timm's BatchNormAct2d does over BatchNorm2d), or None. Such a module is not the class it
    derives from: no kind imports it unless one claims its own class."""
    kind, claimed = _claimed(module)
    if kind is None or claimed is None:
        return None
    if any(name in getattr(module, "__dict__", {}) for name in _BEHAVIOUR):
        return claimed.__name__  # forward set on the instance
    for cls in type(module).__mro__:
        if cls is claimed:
            return None
        if any(name in vars(cls) for name in _BEHAVIOUR):
            return claimed.__name__
    return None


def for_torch_module(module: Any) -> Kind | None:
    """The kind that imports a PyTorch module: the kind that claims its class or a base class whose
    computation it keeps (see `overridden`)."""
    kind, _ = _claimed(module)
    if kind is None or overridden(module) is not None:
        return None
    return kind


def for_torch_function(name: str) -> Kind | None:
    """The kind that imports a call of a torch function or tensor method of that name."""
    for kind in KINDS:
        if name in kind.torch_functions:
            return kind
    return None


__all__ = [
    "KINDS",
    "RESERVED",
    "Kind",
    "for_torch_function",
    "for_torch_module",
    "identity_name",
    "is_layer_name",
    "known_names",
    "lookup",
    "overridden",
    "suggest",
]
