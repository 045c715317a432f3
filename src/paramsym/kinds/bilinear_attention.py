"""`bat(groups=g, block=b)` (docs/language.md, Bilinear attention transform; a paramsym extension): the bilinear
attention transform of BAT (Chi et al. 2020, timm's `BilinearAttnTransform`) on a map H x W x C. A 1x1
convolution with BatchNorm and ReLU reduces the map to g channels; their maxima over b row bands and b column bands
feed a (b x 1) and a (1 x b) convolution (with bias) that give, per group, a b x b row matrix P and column matrix Q
(sigmoid, normalised), each widened to H x H and W x W (block-diagonal, H/b and W/b copies). The map is multiplied
on both sides, P·X·Q for each channel (the groups' matrices shared by C/g channels), then a 1x1 convolution with
BatchNorm and ReLU keeps the C channels.

Params `C·g + 2·g` (the reduction and its BatchNorm) `+ 2·(g·b·b²·g + b²·g)` (the two convolutions) `+ C² + 2·C`;
BatchNorm state `2·g + 2·C`; MACs `H·W·C·g + 2·b²·g·g·b + C·H²·W + C·H·W² + H·W·C²`: what FlopCounterMode counts
on timm's module (the widening multiplies by an identity matrix elementwise, no MACs).

PyTorch: paramsym's `BilinearTransform` (timm's operations, attribute names alike); timm's `BilinearAttnTransform`
is imported whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    Shape,
    Template,
    Words,
    check_or_defer,
    known,
    make_layer,
    refuse_keras,
    times,
    whole_input_field,
)


@dataclass(frozen=True)
class BilinearOptions(Options):
    groups: Expr
    block: Expr


class BilinearTransform(Kind):
    key = "bat"
    names = ("bat",)
    keywords = frozenset({"groups", "block"})
    torch_modules = ("BilinearTransform", "timm.layers.non_local_attn.BilinearAttnTransform")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        for needed in ("groups", "block"):
            if needed not in args.keywords:
                raise ParamsymArgumentError(
                    f"{call.name} needs {needed}=: write {call.name}(groups=2, block=8)", pos=call.pos
                )
        shape = flow.shape
        if shape.rank is not None and shape.rank != 2:
            what = "a vector" if shape.rank == 0 else f"an input with {shape.rank} spatial axes"
            raise ParamsymShapeError(
                f"{call.name} multiplies the rows and columns of a map (H x W x C), but its input is {what}",
                pos=call.pos,
            )
        C = shape.channels
        if C is None or shape.spatial is None:
            raise ParamsymShapeError(
                f"{call.name} needs the size and channels of the map before it",
                pos=call.pos,
                hint="start the network with input(H x W x d)",
            )
        g, b = args.scalar("groups"), args.scalar("block")
        constraints = list(args.constraints)
        constraints += check_or_defer(
            C / g, "integer", f"groups={g} does not divide the {C} channels", args.keywords["groups"].pos
        )
        for side, axis in zip(shape.spatial, ("height", "width")):
            if side is not None:
                constraints += check_or_defer(
                    side / b,
                    "integer",
                    f"block={b} does not divide the map's {axis} {side} (the matrices are widened by whole copies)",
                    args.keywords["block"].pos,
                )
        options = BilinearOptions(groups=g, block=b)
        return make_layer(
            call, self, flow, Shape(shape.spatial, C), C, C, options=options, constraints=tuple(constraints)
        )

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = BilinearOptions.of(layer)
        C, g, b = known(layer.cin), o.groups, o.block
        H, W = layer.in_shape.spatial or (None, None)
        T = layer.in_shape.positions
        params = C * g + 2 * g + 2 * (g * b * b * g * b + b * b * g) + C * C + 2 * C
        parts = (times(T, C, g), 2 * b * b * g * g * b, times(C, H, H, W), times(C, H, W, W), times(T, C, C))
        macs = None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
        return {
            "params": params,
            "state": 2 * g + 2 * C,
            "fan_in": C,
            "macs": macs,
            "connections": times(layer.out_shape.elements, C),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        """In textbook symbols: C, the groups g and the block b."""
        o = BilinearOptions.of(layer)
        g, b = t.named("g", o.groups), t.named("b", o.block)
        return t.c_in * g + 2 * g + 2 * (g * b**3 * g + b * b * g) + t.c_in**2 + 2 * t.c_in

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)  # the matrices mix whole rows and whole columns

    def header(self, layer: Layer, words: Words) -> str:
        o = BilinearOptions.of(layer)
        return f", {words(o.groups)} groups, blocks of {words(o.block)}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = BilinearOptions.of(layer)
        C, g, b = known(layer.cin), o.groups, o.block
        lines = [
            f"BAT's bilinear attention transform (a paramsym extension): a 1x1 convolution with BatchNorm and ReLU "
            f"reduces the {w(C)} channels to {w(g)} ({w(C * g + 2 * g)} parameters); their maxima over {w(b)} row "
            f"and column bands feed a ({w(b)} x 1) and a (1 x {w(b)}) convolution giving a {w(b)} x {w(b)} matrix "
            f"per group for the rows and for the columns ({w(2 * (g * b**3 * g + b * b * g))} parameters).",
            "Each channel is multiplied by its group's row matrix on the left and column matrix on the right "
            f"(widened to the map), then a 1x1 convolution with BatchNorm and ReLU ({w(C * C + 2 * C)} parameters).",
            f"{w(counts.params)} parameters.",
        ]
        if counts.macs is not None:
            lines.append(f"MACs: the convolutions and the two matrix products: {w(counts.macs)}.")
        return lines

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = BilinearOptions.of(layer)
        return TorchSpec("BilinearTransform", (num(known(layer.cin)), num(o.block), num(o.groups)), {})

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "BAT's bilinear attention transform (bat) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return bilinear_text(module, ctx)


def _conv_norm_relu(unit: Any, cin: int, cout: int) -> bool:
    """timm's ConvNormAct (or paramsym's conv, bn, relu): a 1x1 convolution without bias, BatchNorm, ReLU."""
    conv: Any = getattr(unit, "conv", None)
    bn: Any = getattr(unit, "bn", None)
    act = getattr(bn, "act", None) if hasattr(bn, "act") else getattr(unit, "act", None)
    drop = getattr(bn, "drop", None)
    return (
        type(conv).__name__ == "Conv2d"
        and conv.in_channels == cin
        and conv.out_channels == cout
        and set(conv.kernel_size) == {1}
        and set(conv.stride) == {1}
        and set(conv.padding) == {0}
        and conv.groups == 1
        and conv.bias is None
        and type(bn).__name__ in ("BatchNorm2d", "BatchNormAct2d")
        and bn.num_features == cout
        and bn.affine
        and bn.track_running_stats
        and type(act).__name__ == "ReLU"
        and type(drop).__name__ in ("Identity", "NoneType")
        and len(list(unit.children())) == (2 if type(bn).__name__ == "BatchNormAct2d" else 3)
    )


def bilinear_text(module: Any, ctx: ImportContext) -> str:
    where = f"{ctx.node_name} ({type(module).__name__})"
    shape = tuple(ctx.in_shape)
    if len(shape) != 4:
        raise ImportRefused(f"{where} acts on a value of shape {shape}, not a map (N, C, H, W)")
    C, H, W = shape[1], shape[2], shape[3]
    g, b = module.groups, module.block_size
    p, q = module.conv_p, module.conv_q

    def band(conv: Any, kernel: tuple[int, int]) -> bool:
        return (
            type(conv).__name__ == "Conv2d"
            and conv.in_channels == g
            and conv.out_channels == b * b * g
            and tuple(conv.kernel_size) == kernel
            and set(conv.stride) == {1}
            and set(conv.padding) == {0}
            and set(conv.dilation) == {1}
            and conv.groups == 1
            and conv.bias is not None
        )

    if not (
        _conv_norm_relu(module.conv1, C, g)
        and _conv_norm_relu(module.conv2, C, C)
        and band(p, (b, 1))
        and band(q, (1, b))
        and C % g == 0
    ):
        raise ImportRefused(
            f"{where} is not BAT's transform as the language writes it (1x1 conv, BatchNorm, ReLU to the groups; "
            "(b x 1) and (1 x b) convolutions with bias; 1x1 conv, BatchNorm, ReLU)"
        )
    if H % b or W % b:
        raise ImportRefused(f"{where} widens blocks of {b} to a {H}x{W} map, which they do not divide")
    return f"bat(groups={g}, block={b})"


KINDS = (BilinearTransform(),)
