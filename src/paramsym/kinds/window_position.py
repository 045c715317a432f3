"""`winposembed(A x B, window=w)` (docs/language.md, Sequences; a paramsym extension for HieraDet and SAM2's image
encoder): windowed learned positions ("Window Attention is Bugged", Bolya et al. 2023) added to a map H x W x d: a
table of A x B vectors resized to H x W (bicubic interpolation, as timm's HieraDet does with F.interpolate), plus a
table of w x w vectors repeated over the map's w x w windows (w divides H and W). Parameters `(A·B + w²)·d`; no MACs
(the resize weighs fixed coefficients, which FlopCounterMode counts as none; the sums are additions). The output is
the input's shape. PyTorch: paramsym's `WindowedPositionEmbedding`; Keras: none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.records import KerasSpec, Layer, Options, TorchSpec
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError
from .base import (
    Args,
    Call,
    Constraint,
    Counts,
    Expr,
    Flow,
    ImportContext,
    Kind,
    NameMatch,
    Numbers,
    Words,
    check_or_defer,
    make_layer,
    refuse_keras,
    whole_number,
)


@dataclass(frozen=True)
class WindowedPositionOptions(Options):
    table: tuple[Expr, Expr]  # A x B vectors, resized to the map
    window: Expr  # w x w vectors, repeated over the map's windows


class WindowedPositionEmbedding(Kind):
    key = "winposembed"
    names = ("winposembed",)
    positional = 1
    keywords = frozenset({"window"})
    torch_modules = ("WindowedPositionEmbedding",)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        arg = args.required("the size of its table of positions", "7x7, window=8", "A x B, window=w")
        if len(arg.value) != 2:
            raise ParamsymArgumentError(
                f"{call.name} takes the rows and columns of its table, A x B (it is resized to the map)", pos=arg.pos
            )
        constraints: list[Constraint] = list(args.constraints)
        for value in arg.value:
            if value.is_number and not (value.is_integer and value >= 1):
                raise ParamsymArgumentError(
                    f"the table of {call.name} has a positive whole number of rows and columns, not {value}",
                    pos=arg.pos,
                )
            constraints += whole_number(value, f"a table size of {call.name}", arg.pos)
        if "window" not in args.keywords:
            raise ParamsymArgumentError(
                f"{call.name} needs window=: the side of the table repeated over the map's windows",
                pos=call.pos,
                hint=f"write {call.name}({'x'.join(map(str, arg.value))}, window=8)",
            )
        window = args.scalar("window")
        assert window is not None
        shape = flow.shape
        if shape.rank != 2 or shape.channels is None:
            raise ParamsymShapeError(
                f"{call.name} adds positions to a map H x W x d, but its input is {shape.describe()}",
                pos=call.pos,
                hint="on a sequence, posembed(N) adds a learned table",
            )
        for n in shape.spatial or ():
            if n is not None:
                constraints += check_or_defer(
                    n / window,
                    "integer",
                    f"window={window} does not divide the map's side {n}: the window table repeats a whole number "
                    f"of times",
                    args.keywords["window"].pos,
                    shown=n,
                )
        options = WindowedPositionOptions((arg.value[0], arg.value[1]), window)
        width = shape.channels
        return make_layer(call, self, flow, shape, width, width, options=options, constraints=tuple(constraints))

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = WindowedPositionOptions.of(layer)
        return {"params": (o.table[0] * o.table[1] + o.window**2) * layer.cout}  # additions: no MACs

    def header(self, layer: Layer, w: Words) -> str:
        o = WindowedPositionOptions.of(layer)
        return f", tables of {w(o.table[0])}x{w(o.table[1])} (resized) and {w(o.window)}x{w(o.window)} (tiled)"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = WindowedPositionOptions.of(layer)
        a, b = o.table
        return [
            f"Windowed learned positions (a paramsym extension, HieraDet's): a table of {w(a)}x{w(b)} vectors of "
            f"{w(layer.cout)} resized to the map (bicubic), plus a table of {w(o.window)}x{w(o.window)} vectors "
            f"repeated over its windows: ({w(a)}·{w(b)} + {w(o.window)}²)·{w(layer.cout)} = {w(counts.params)} "
            f"parameters.",
            "The resize and the sums: no multiply-accumulate of learned values.",
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = WindowedPositionOptions.of(layer)
        return TorchSpec("WindowedPositionEmbedding", (num(layer.cout), num.each(o.table), num(o.window)))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "keras.layers has no layer that adds resized and tiled tables of positions")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        table, window = getattr(module, "table", None), getattr(module, "window", None)
        if table is None or window is None or len(tuple(ctx.in_shape)) != 4:
            raise ImportRefused(f"{ctx.node_name} ({type(module).__name__}) is not paramsym's windowed positions")
        return text(tuple(table.shape[2:]), window.shape[-1])


def text(table: tuple[int, ...], window: int) -> str:
    return f"winposembed({'x'.join(map(str, table))}, window={window})"


KINDS = (WindowedPositionEmbedding(),)
