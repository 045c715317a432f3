"""`untokens(HxW)` (docs/language.md, Token mixing): the positions of a sequence become a map, T x C -> H x W x C
(row by row, H·W = T): the inverse of `tokens`, as CAFormer's attention stages lay their map out as a sequence and
back (x.transpose(1, 2).reshape(B, C, H, W)). No parameters, no MACs; fan-in 1. PyTorch: paramsym's
`Untokens(sizes)` (x.unflatten(2, sizes) of the export's (N, C, T)); Keras: `Reshape((H, W, C))`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..core import saved as saved_tensors
from ..core.records import KerasSpec, Layer, Options, Shape, TorchSpec
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
    whole_number,
)


@dataclass(frozen=True)
class UntokensOptions(Options):
    sizes: tuple[Expr, ...]  # the map's spatial sizes, first axis first


class Untokens(Kind):
    key = "untokens"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Nothing: a view of its input."""
        return saved_tensors.VIEW

    names = ("untokens",)
    positional = 1
    torch_modules = ("Untokens",)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        arg = args.required("the sizes of the map", "14x14", "HxW", "H x W")
        sizes = tuple(arg.value)
        if len(sizes) < 2:
            raise ParamsymArgumentError(
                f"{call.name} makes a map of 2 or 3 spatial axes: write its sizes, such as {call.name}(14x14), "
                f"not {call.name}({sizes[0]})",
                pos=arg.pos,
            )
        if len(sizes) > 3:
            raise ParamsymArgumentError(
                f"{call.name} makes a map of 2 or 3 spatial axes, not {len(sizes)}", pos=arg.pos
            )
        for size in sizes:
            args.constraints += whole_number(size, "a size of the map", arg.pos)
        shape = flow.shape
        if shape.spatial is None or len(shape.spatial) != 1:
            what = (
                "nothing before it says its shape"
                if shape.spatial is None
                else f"its input is {'the vector' if shape.spatial == () else 'the map'} {shape.describe()}"
            )
            raise ParamsymShapeError(
                f"{call.name} makes the positions of a sequence (T x C) a map, but {what}",
                pos=call.pos,
                hint="e.g. input(14x14x64) > tokens > attn(heads=2) > untokens(14x14)",
            )
        length = shape.spatial[0]
        product = sympy.Mul(*sizes)
        constraints = []
        if length is not None:
            difference = sympy.expand(product - length)
            if difference.is_number and difference != 0:
                raise ParamsymShapeError(
                    f"{call.name}({'x'.join(str(s) for s in sizes)}) makes a map of {product} positions, but the "
                    f"sequence has {length}",
                    pos=arg.pos,
                    notes=((f"the sequence comes from {flow.source[0]}", flow.source[1]),) if flow.source else (),
                )
            constraints = check_or_defer(
                difference,
                "zero",
                f"{call.name}: the sizes of the map must multiply to the length of the sequence ({length})",
                arg.pos,
            )
        out = Shape(sizes, shape.channels)
        return make_layer(
            call,
            self,
            flow,
            out,
            shape.channels,
            shape.channels,
            options=UntokensOptions(sizes),
            constraints=tuple(constraints),
        )

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return None  # the positions of a sequence read as a map: no window of the map's axes

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            f"No parameters: the {layer.in_shape.describe()} sequence becomes the {layer.out_shape.describe()} map, "
            f"its positions laid out row by row (the inverse of tokens)."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("Untokens", (tuple(num(s) for s in UntokensOptions.of(layer).sizes),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        sizes = tuple(num(s) for s in UntokensOptions.of(layer).sizes)
        return [KerasSpec("Reshape", {"target_shape": (*sizes, num(layer.cout))})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        sizes = tuple(getattr(module, "sizes", ()))
        if len(ctx.in_shape) != 3 or len(sizes) < 2:
            raise ImportRefused(f"{ctx.node_name} ({type(module).__name__}) does not make a map of a sequence")
        return f"untokens({'x'.join(str(int(s)) for s in sizes)})"


KINDS = (Untokens(),)
