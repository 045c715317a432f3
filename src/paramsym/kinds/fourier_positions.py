"""`fourierpos(H x W)` (docs/language.md, Fourier positions; a paramsym extension): XCiT's and EdgeNeXt's
positional encoding (timm's `PositionalEncodingFourier`): a fixed sin/cos encoding of the H x W grid, 2·k values
per position (k = `hidden=`, 32 by default: k sines and cosines of the row, k of the column, at temperature
10000), projected by a 1x1 convolution 2k -> d with bias, and added to the H·W positions of the sequence (row
by row) or of the map H x W x d.

Params: `2k·d + d`. MACs: `H·W·2k·d`, the projection of the grid's encoding, which the model computes once per
forward whatever the batch (timm repeats it over the batch): per sample, the count of a batch of one, which is
what FlopCounterMode counts on timm's module. The encoding does not depend on the input.

PyTorch: paramsym's `FourierPositions`; timm's `PositionalEncodingFourier` (xcit and edgenext) is read whole
where forward adds its output to the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..core.records import KerasSpec, Layer, Options, TorchSpec
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError
from .base import (
    Args,
    Call,
    Counts,
    Expr,
    Flow,
    ImportContext,
    Kind,
    NameMatch,
    Numbers,
    Template,
    Words,
    check_or_defer,
    known,
    make_layer,
    refuse_keras,
    times,
    whole_number,
)

DEFAULT_HIDDEN = sympy.Integer(32)
TEMPERATURE = 10000


@dataclass(frozen=True)
class FourierPositionsOptions(Options):
    grid: tuple[Expr, Expr]  # H, W
    hidden: Expr  # k: sines and cosines per axis


class FourierPositions(Kind):
    key = "fourierpos"
    names = ("fourierpos",)
    positional = 1
    keywords = frozenset({"hidden"})
    torch_modules = (
        "FourierPositions",
        "timm.models.xcit.PositionalEncodingFourier",
        "timm.models.edgenext.PositionalEncodingFourier",
    )
    # its module makes a table from sizes alone (forward(B, H, W)); the importer reads it where it is added
    generates_table = True

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        arg = args.required("the grid whose positions it encodes", "14x14", "H x W")
        if len(arg.value) != 2:
            raise ParamsymArgumentError(
                f"{call.name} encodes a grid of rows and columns: write {call.name}(H x W), e.g. {call.name}(14x14)",
                pos=arg.pos,
            )
        H, W = arg.value
        for value in (H, W):
            if value.is_number and not (value.is_integer and value >= 1):
                raise ParamsymArgumentError(f"the grid of {call.name} must be whole numbers, not {value}", pos=arg.pos)
            args.constraints += whole_number(value, f"the grid of {call.name}", arg.pos)
        hidden = args.scalar("hidden", DEFAULT_HIDDEN)
        if "hidden" in args.keywords:
            args.constraints += whole_number(hidden, "hidden", args.keywords["hidden"].pos)
        shape = flow.shape
        if shape.spatial is None or shape.channels is None or len(shape.spatial) not in (1, 2):
            what = "nothing known" if shape.spatial is None else f"the input {shape.describe()}"
            raise ParamsymShapeError(
                f"{call.name} adds an encoding to each position of a sequence or a map, but it has {what}",
                pos=call.pos,
                hint="e.g. input(224x224x3) > conv16x16(->192, stride=16) > tokens > fourierpos(14x14)",
            )
        if len(shape.spatial) == 2:
            for side, given, name in ((shape.spatial[0], H, "rows"), (shape.spatial[1], W, "columns")):
                if side is not None:
                    args.constraints += check_or_defer(
                        side - given,
                        "zero",
                        f"{call.name}({H}x{W}) encodes {given} {name}, but the map {shape.describe()} has {side}",
                        arg.pos,
                    )
        elif shape.spatial[0] is not None:
            args.constraints += check_or_defer(
                shape.spatial[0] - H * W,
                "zero",
                f"{call.name}({H}x{W}) adds to {H}·{W} positions, but the sequence has {shape.spatial[0]}",
                arg.pos,
            )
        d = shape.channels
        options = FourierPositionsOptions(grid=(H, W), hidden=hidden)
        return make_layer(call, self, flow, shape, d, d, options=options)

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = FourierPositionsOptions.of(layer)
        d = known(layer.cout)
        H, W = o.grid
        return {
            "params": 2 * o.hidden * d + d,
            "fan_in": 2 * o.hidden,
            "macs": times(H * W, 2 * o.hidden * d),
            # the product reads the constant Fourier features: its backward is the weight gradient alone, whether
            # or not the input needs a gradient (core/compute.py)
            "backward_macs": times(H * W, 2 * o.hidden * d),
            "backward_first": times(H * W, 2 * o.hidden * d),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        k = t.named("k", FourierPositionsOptions.of(layer).hidden)
        return 2 * k * t.c + t.c

    def header(self, layer: Layer, w: Words) -> str:
        o = FourierPositionsOptions.of(layer)
        return f", a {w(o.grid[0])}x{w(o.grid[1])} grid, {w(o.hidden)} frequencies per axis"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = FourierPositionsOptions.of(layer)
        d, k = known(layer.cout), o.hidden
        H, W = o.grid
        return [
            f"Fixed Fourier positions (XCiT's, a paramsym extension): each of the {w(H)}x{w(W)} grid's positions is "
            f"encoded by {w(k)} sines and cosines of its row and {w(k)} of its column ({w(2 * k)} values), "
            f"projected to {w(d)} by a 1x1 convolution with bias ({w.product(2 * k, d)} + {w(d)} parameters), "
            "and added to the position.",
            f"MACs: the projection of the grid, once whatever the input: {w(counts.macs)}.",
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = FourierPositionsOptions.of(layer)
        return TorchSpec("FourierPositions", (num(o.grid[0]), num(o.grid[1]), num(layer.cout), num(o.hidden)))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "keras.layers has no fixed Fourier encoding of positions")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        """timm's PositionalEncodingFourier (read where its output is added: ctx.out_shape is the map it makes,
        (N, d, H, W)) or paramsym's FourierPositions (on the value it adds to)."""
        where = f"{ctx.node_name} ({type(module).__name__})"
        projection: Any = getattr(module, "token_projection", None)
        hidden = getattr(module, "hidden_dim", None)
        if (
            type(projection).__name__ != "Conv2d"
            or not isinstance(hidden, int)
            or projection.in_channels != 2 * hidden
            or tuple(projection.kernel_size) != (1, 1)
            or projection.groups != 1
            or projection.bias is None
            or getattr(module, "temperature", None) != TEMPERATURE
        ):
            raise ImportRefused(
                f"{where} is not the Fourier encoding the language writes (sines and cosines at temperature "
                f"{TEMPERATURE}, a biased 1x1 convolution 2k -> d)"
            )
        grid = getattr(module, "grid", None) or tuple(ctx.out_shape[2:])
        if len(grid) != 2:
            raise ImportRefused(f"{where} encodes a grid of shape {grid}, not rows and columns")
        return f"fourierpos({grid[0]}x{grid[1]}" + ("" if hidden == DEFAULT_HIDDEN else f", hidden={hidden}") + ")"


KINDS = (FourierPositions(),)
