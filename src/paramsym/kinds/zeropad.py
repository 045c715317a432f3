"""`zeropad(P)`, `zeropad(PxQ)` and `zeropad(t, b, l, r)` (docs/language.md, Zero padding): zeros added around
each spatial axis of a sequence, map or volume, as a layer of its own; channels unchanged, no parameters, no
MACs. The amounts are written first axis first, before then after on each axis: `zeropad(before, after)` on
a sequence, `zeropad(top, bottom, left, right)` on a map, `zeropad(front, back, top, bottom, left, right)` on
a volume (Keras' order; PyTorch's ZeroPad2d lists the last axis first: (left, right, top, bottom)). A
negative amount crops, as in PyTorch (NASNet's `ZeroPad2d((-1, 1, -1, 1))` shifts a map by one position).

PyTorch: `nn.ZeroPad1d/2d/3d`, its export, imported from them, from `nn.ConstantPad1d/2d/3d` with value 0 and
from `F.pad` with zeros that no convolution or pooling after it takes as its padding (frameworks/importer.py);
Keras: `ZeroPadding1D/2D/3D`, after `Cropping1D/2D/3D` for negative amounts.

Padding computes no weighted sum of learnt values: no MACs, and PyTorch's FlopCounterMode counts none for it
either (tests/test_kind_zeropad.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..core import saved as saved_tensors
from ..core.records import ONE, KerasSpec, Layer, Options, Shape, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError
from .base import (
    Args,
    Call,
    Counts,
    Expr,
    Field,
    Flow,
    ImportContext,
    Kind,
    NameMatch,
    Numbers,
    Words,
    check_or_defer,
    make_layer,
    times,
    whole_number,
)

_AXES = {1: ("before", "after"), 2: ("top", "bottom", "left", "right")}
_AXES[3] = ("front", "back", *_AXES[2])


@dataclass(frozen=True)
class ZeroPadOptions(Options):
    pads: tuple[tuple[Expr, Expr], ...]  # (before, after) per spatial axis, first axis first; negative crops


class ZeroPad(Kind):
    key = "zeropad"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Nothing (the gradient is cut out of the padded one)."""
        return saved_tensors.NOTHING

    names = ("zeropad",)
    positional = 6  # zeropad(P), zeropad(PxQ), or (before, after) per axis: up to 3 axes
    torch_modules = ("ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d")
    # F.pad (and aten's constant_pad_nd) with zeros: the importer gives a convolution or a pooling after it the
    # padding as its own where that pooling or convolution can say it, and leaves the others to this kind
    torch_functions = ("pad", "constant_pad_nd")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        args.required("its padding", "1", "P", "PxQ", "t, b, l, r")
        sizes = flow.shape.spatial
        if sizes == ():
            raise ParamsymShapeError(
                f"{call.name} pads the spatial axes of a sequence, a map or a volume, but its input is a vector "
                f"({flow.shape.describe()})",
                pos=call.pos,
            )
        pads = self._pairs(call, args, None if sizes is None else len(sizes))
        for pair, arg in pads:
            for amount in pair:
                if not isinstance(amount, sympy.Expr) or (amount.is_number and not amount.is_integer):
                    raise ParamsymArgumentError(
                        f"{call.name}: the amount {float(amount):g} is not a whole number", pos=arg.pos
                    )
                if not amount.is_number:  # a symbolic amount pads (a negative one crops: numbers only)
                    args.constraints += whole_number(amount, "the padding", arg.pos, least=0)
        pairs = tuple(pair for pair, _ in pads)
        spatial = None
        if sizes is not None:
            spatial = tuple(None if n is None else n + before + after for n, (before, after) in zip(sizes, pairs))
            for size in spatial:
                if size is not None:
                    args.constraints += check_or_defer(
                        size,
                        "positive",
                        f"{call.name} crops more than it pads: an output size would be {size}",
                        call.pos,
                    )
        out = Shape(spatial, flow.shape.channels)
        channels = flow.shape.channels
        return make_layer(call, self, flow, out, channels, channels, options=ZeroPadOptions(pairs))

    def _pairs(self, call: Call, args: Args, rank: int | None) -> list[tuple[tuple[Expr, Expr], Any]]:
        """(before, after) per axis, with the argument that gives it (for messages)."""
        given = args.positional
        if len(given) == 1:  # zeropad(P) on every axis, zeropad(PxQ) per axis, symmetric
            arg = given[0]
            values = tuple(arg.value)
            if rank is None:
                rank = len(values)
            if len(values) == 1:
                values = values * rank
            if len(values) != rank:
                raise ParamsymArgumentError(
                    f"{call.name} gives {len(arg.value)} amounts but its input has {rank} spatial axes",
                    pos=arg.pos,
                )
            return [((v, v), arg) for v in values]
        for arg in given:
            if len(arg.value) != 1:
                raise ParamsymArgumentError(
                    f"{call.name} takes one amount per place when it lists them (before, after per axis)",
                    pos=arg.pos,
                    hint=_usage(call.name, rank),
                )
        if rank is None:
            rank = len(given) // 2
        if len(given) != 2 * rank:
            raise ParamsymArgumentError(
                f"{call.name} lists {len(given)} amounts but its input has {rank} spatial "
                f"{'axis' if rank == 1 else 'axes'}: it takes one amount, one per axis (PxQ), or before and "
                f"after on each axis",
                pos=given[0].pos,
                hint=_usage(call.name, rank),
            )
        return [((given[2 * i].value[0], given[2 * i + 1].value[0]), given[2 * i]) for i in range(rank)]

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        # each input value that is not cropped is copied to one output value; the zeros are connected to none
        spatial = layer.in_shape.spatial
        pads = ZeroPadOptions.of(layer).pads
        kept = None
        if spatial is not None and all(n is not None for n in spatial) and layer.in_shape.channels is not None:
            kept = times(*(_kept(n, pair) for n, pair in zip(spatial, pads)), layer.in_shape.channels)
        return {"fan_in": ONE, "connections": kept}

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        if field is None:
            return None
        # the first output position is `before` positions ahead of the first input position
        return tuple(
            (r, j, start - before * j) for (r, j, start), (before, _) in zip(field, ZeroPadOptions.of(layer).pads)
        )

    def header(self, layer: Layer, w: Words) -> str:
        return f", {_described(layer, w)}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            f"No parameters and no MACs: it adds zeros around each spatial axis ({_described(layer, w)}; a "
            f"negative amount crops), so the output is {w.shape(layer.out_shape)}."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        pads = ZeroPadOptions.of(layer).pads
        flat = tuple(num(amount) for pair in reversed(pads) for amount in pair)  # PyTorch: last axis first
        return TorchSpec(f"nn.ZeroPad{len(pads)}d", (flat,))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        pads = [(num(a), num(b)) for a, b in ZeroPadOptions.of(layer).pads]
        rank = len(pads)
        crops = [(max(-a, 0), max(-b, 0)) for a, b in pads]
        grows = [(max(a, 0), max(b, 0)) for a, b in pads]
        layers = []
        for cls, pairs in (("Cropping", crops), ("ZeroPadding", grows)):
            if any(a or b for a, b in pairs):
                key = "cropping" if cls == "Cropping" else "padding"
                layers.append(KerasSpec(f"{cls}{rank}D", {key: pairs[0] if rank == 1 else tuple(pairs)}))
        return layers or [KerasSpec(f"ZeroPadding{rank}D", {"padding": pads[0] if rank == 1 else tuple(pads)})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        value = getattr(module, "value", 0.0)
        if value != 0:
            raise ImportRefused(
                f"{ctx.node_name} ({type(module).__name__}) pads with {value}; the language pads with zeros"
            )
        return self._text(
            ctx, tuple(module.padding), f"{ctx.node_name} ({type(module).__name__}{tuple(module.padding)})"
        )

    def from_torch_function(self, name: str, node: Any, ctx: ImportContext) -> str:
        names = ("input", "pad", "mode", "value") if name == "pad" else ("input", "pad", "value")
        values = dict(zip(names, node.args))
        values.update(node.kwargs)
        pads, mode, value = values.get("pad", ()), values.get("mode", "constant"), values.get("value")
        where = f"{ctx.node_name} (amounts {list(pads)})"
        if mode != "constant" or not (value is None or value == 0):
            raise ImportRefused(f"{where} pads by {mode!r} with value {value}: the language pads with zeros")
        if any(not isinstance(p, int) for p in pads):
            raise ImportRefused(f"{where} pads by amounts computed in forward; the language cannot follow them")
        return self._text(ctx, tuple(pads), where)

    def _text(self, ctx: ImportContext, flat: tuple[int, ...], where: str) -> str:
        """The layer for PyTorch's padding amounts (last axis first, before and after each)."""
        rank = ctx.rank
        if rank < 1 or len(flat) % 2 or len(flat) > 2 * rank:
            raise ImportRefused(
                f"{where} pads more than the spatial axes of a {tuple(ctx.in_shape)} value; the language pads "
                f"the spatial axes only"
            )
        flat = flat + (0,) * (2 * rank - len(flat))
        pairs = [(flat[2 * i], flat[2 * i + 1]) for i in range(rank)][::-1]  # first axis first
        amounts = [a for a, _ in pairs]
        if all(a == b for a, b in pairs) and (len(set(amounts)) == 1 or min(amounts) >= 0):
            return f"zeropad({amounts[0] if len(set(amounts)) == 1 else 'x'.join(map(str, amounts))})"
        return f"zeropad({', '.join(str(v) for pair in pairs for v in pair)})"


def _kept(n: Expr, pair: tuple[Expr, Expr]) -> Expr:
    """The input positions of an axis that the output keeps: all but the cropped ones."""
    return n + sum((amount for amount in pair if amount.is_number and amount < 0), sympy.Integer(0))


def _described(layer: Layer, w: Words) -> str:
    pads = ZeroPadOptions.of(layer).pads
    places = _AXES.get(len(pads))
    amounts = [amount for pair in pads for amount in pair]
    if places is None:
        return "padding " + ", ".join(w(a) for a in amounts)
    return ", ".join(f"{place} {w(amount)}" for place, amount in zip(places, amounts))


def _usage(name: str, rank: int | None) -> str:
    if rank in _AXES:
        return f"write {name}(P), or {name}({', '.join(p[0] for p in _AXES[rank])}) for {', '.join(_AXES[rank])}"
    return f"write {name}(P) or {name}(before, after, ...) with two amounts per spatial axis"


KINDS = (ZeroPad(),)
