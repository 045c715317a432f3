"""`gc(R)` (docs/language.md, Global context): GCNet's global context block (Cao et al. 2019), read whole, on a
map H x W x C. The context is an attention pooling: a 1x1 convolution to one channel (C + 1 parameters) gives a
score per position, a softmax over the H·W positions weights them, and the weighted sum of the positions is the
vector of C channels (`gc(R, mean)`: the mean of the positions, timm's use_attn=False). The transform is a 1x1
convolution C -> R with bias, a layer norm over the R channels, an activation (ReLU, `silu` for SiLU), and a 1x1
convolution R -> C with bias. The fusion multiplies the map by the sigmoid of the transform (a gate per channel,
the default) or adds the transform to every position (`additive`, timm's fuse_add).

Counts, per sample: params (C + 1) + (C·R + R) + 2R + (R·C + C) (without the attention pooling, no C + 1); no
state; MACs C·H·W for the score convolution and C·H·W for the weighted sum (FlopCounterMode's conv and bmm), and
C·R + R·C for the transform; the softmax, the norm, the gate and the sum are elementwise and count none.

PyTorch: paramsym's `GlobalContext` module in an export, timm's `GlobalContext` (gcresnet, gcresnext,
gc_efficientnetv2) imports as it. Keras has no counterpart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..core.records import Layer, Options, TorchSpec
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
    Template,
    Words,
    known,
    same_layer,
    times,
    whole_input_field,
    whole_number,
)


@dataclass(frozen=True)
class GlobalContextOptions(Options):
    reduced: Expr  # R, the channels of the transform
    attention: bool  # the context is an attention pooling (not `mean`)
    add: bool  # fused by adding the transform (`additive`), else by a sigmoid gate
    act: str  # the transform's activation: "relu" or "silu"


_ACTS = {"ReLU": "relu", "SiLU": "silu"}


class GlobalContext(Kind):
    key = "gc"
    names = ("gc",)
    flags = frozenset({"mean", "additive", "silu"})
    positional = 1
    torch_modules = ("GlobalContext", "timm.layers.global_context.GlobalContext")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        arg = args.required("the channels of its transform", "16", "R")
        reduced = args.one_value(arg, "channel count")
        if not isinstance(reduced, sympy.Expr):
            raise ParamsymArgumentError(f"{call.name}: {reduced} is not a channel count", pos=arg.pos)
        args.constraints += whole_number(reduced, "the channels of the transform", arg.pos)
        spatial = flow.shape.spatial
        if spatial is not None and len(spatial) != 2:
            raise ParamsymShapeError(
                f"{call.name} pools the positions of a map, but its input is {flow.shape.describe()}",
                pos=call.pos,
                hint="gc comes after a layer that gives a map H x W x C",
            )
        if flow.shape.channels is None:
            raise ParamsymShapeError(
                f"{call.name} needs its channels: nothing before it says how many there are",
                pos=call.pos,
                hint="start the network with input(...)",
            )
        options = GlobalContextOptions(
            reduced, "mean" not in args.flags, "additive" in args.flags, "silu" if "silu" in args.flags else "relu"
        )
        return same_layer(call, self, flow, options=options)

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = GlobalContextOptions.of(layer)
        c, r = known(layer.cout), o.reduced
        pooling = c + 1 if o.attention else sympy.Integer(0)
        values = layer.in_shape.elements  # H·W·C: the score convolution's MACs, and the weighted sum's
        return {
            "params": pooling + (c * r + r) + 2 * r + (r * c + c),
            "macs": _plus(times(2, values) if o.attention else sympy.Integer(0), 2 * c * r),
            "fan_in": values,  # each output value depends on every input value
        }

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return whole_input_field(layer, field)  # every position sees the context of the whole map

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        o = GlobalContextOptions.of(layer)
        r = t.named("r", o.reduced)
        return (t.c + 1 if o.attention else 0) + 2 * t.c * r + 3 * r + t.c

    def header(self, layer: Layer, w: Words) -> str:
        return f", {w(layer.cout)} channels through {w(GlobalContextOptions.of(layer).reduced)}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = GlobalContextOptions.of(layer)
        c, r = known(layer.cout), o.reduced
        if o.attention:
            pooling = (
                f"A 1x1 convolution to one channel ({w(c)} weights and a bias) scores each position; a softmax "
                f"over the positions weights them, and their weighted sum is the context, a vector of {w(c)} "
                f"channels (each costs {w(layer.in_shape.elements)} multiply-accumulates)."
            )
        else:
            pooling = f"The mean of the positions is the context, a vector of {w(c)} channels."
        fusion = "is added to every position" if o.add else "gates each channel through a sigmoid"
        return [
            pooling,
            f"The transform, a 1x1 convolution {w(c)} -> {w(r)} with bias, a layer norm, {o.act}, and a 1x1 "
            f"convolution {w(r)} -> {w(c)} with bias ({w.product(2, c, r)} multiply-accumulates), {fusion}: "
            f"{w(counts.params)} parameters in all.",
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = GlobalContextOptions.of(layer)
        flags: dict[str, Any] = {}
        if not o.attention:
            flags["use_attn"] = False
        if o.add:
            flags.update(fuse_add=True, fuse_scale=False)
        if o.act != "relu":
            flags["silu"] = True
        return TorchSpec("GlobalContext", (num(known(layer.cout)), num(o.reduced)), flags)

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        where = f"{ctx.node_name} ({type(module).__name__})"
        if len(ctx.in_shape) != 4:
            raise ImportRefused(f"{where} acts on a {len(ctx.in_shape) - 2}-D input; the language's gc on a map")
        channels = ctx.in_shape[1]
        mlps = [m for m in (module.mlp_scale, module.mlp_add) if m is not None]
        if len(mlps) != 1:
            raise ImportRefused(
                f"{where} fuses its context {'both by a gate and by a sum' if mlps else 'in no way'}: the "
                f"language's gc does one of the two"
            )
        (mlp,) = mlps
        attn = module.conv_attn
        reduced = mlp.fc1.out_channels
        act = _ACTS.get(type(mlp.act).__name__)
        norm = mlp.norm
        if not (
            (attn is None or _conv1x1(attn, channels, 1))
            and _conv1x1(mlp.fc1, channels, reduced)
            and _conv1x1(mlp.fc2, reduced, channels)
            and type(norm).__name__ in ("LayerNorm2d", "LayerNorm")
            and tuple(norm.normalized_shape) == (reduced,)
            and norm.weight is not None
            and norm.bias is not None
            and act is not None
            and type(module.gate).__name__ == "Sigmoid"
        ):
            raise ImportRefused(
                f"{where} is not a 1x1 convolution to one channel (or none), then a 1x1 convolution with bias, "
                f"a LayerNorm2d, ReLU or SiLU and a 1x1 convolution with bias, with a sigmoid gate: the "
                f"language's gc has no counterpart"
            )
        flags = ["mean"] if attn is None else []
        flags += ["additive"] if module.mlp_add is not None else []
        flags += [act] if act != "relu" else []
        return f"gc({', '.join([str(reduced), *flags])})"


def _plus(a: Expr | None, b: Expr) -> Expr | None:
    """A sum whose first term may be unknown (the input's size)."""
    return None if a is None else a + b


def _conv1x1(conv: Any, cin: int, cout: int) -> bool:
    """A 1x1 convolution cin -> cout with a bias and nothing else (stride, dilation, groups, padding)."""
    return (
        type(conv).__name__ == "Conv2d"
        and (conv.in_channels, conv.out_channels) == (cin, cout)
        and tuple(conv.kernel_size) == (1, 1)
        and tuple(conv.stride) == (1, 1)
        and tuple(conv.dilation) == (1, 1)
        and conv.groups == 1
        and tuple(conv.padding) == (0, 0)
        and conv.bias is not None
    )


KINDS = (GlobalContext(),)
