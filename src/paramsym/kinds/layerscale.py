"""`scale` (docs/language.md, modern networks): layer scale, a learned factor per channel (ConvNeXt's gamma,
CaiT, Swin-V2). Params C, output unchanged. PyTorch: our `LayerScale(C)` (channels first); Keras: a
1-wide depthwise convolution without bias, which is the same function with the same C weights."""

from __future__ import annotations

from typing import Any

from ..core.records import KerasSpec, Layer, TorchSpec
from ..errors import ImportRefused
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
    refuse_keras,
    same_layer,
    stated_channels,
)


class LayerScale(Kind):
    key = "scale"
    names = ("scale",)
    positional = 1  # scale(96): the channels, when nothing before says them
    # paramsym's own (weight), timm's on channels last and on (N, C, H, W) maps (gamma)
    torch_modules = ("LayerScale", "timm.layers.layer_scale.LayerScale", "timm.layers.layer_scale.LayerScale2d")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        channels = stated_channels(call, flow, args)
        return same_layer(call, self, flow, channels)

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        # MACs 0, as for bn and prelu (and FlopCounterMode): an element-wise product is not counted
        return {"params": layer.cout}

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return t.c

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            f"Layer scale learns one factor per channel and multiplies each channel by it: {w(layer.cout)} parameters."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("LayerScale", (num(layer.cout),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        rank = layer.in_shape.rank
        if rank not in (1, 2):
            refuse_keras(
                layer,
                "Keras has no per-channel scale layer, and no depthwise convolution "
                f"for {'a vector' if rank == 0 else f'{rank} spatial axes'} to stand for one",
            )
        return [KerasSpec(f"DepthwiseConv{rank}D", {"kernel_size": 1, "use_bias": False})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        weight = module.weight if hasattr(module, "weight") else module.gamma
        if weight.dim() != 1 or len(ctx.in_shape) < 2 or ctx.in_shape[1] != weight.shape[0]:
            raise ImportRefused(f"{ctx.node_name} ({type(module).__name__}) does not scale channels")
        return "scale"


KINDS = (LayerScale(),)
