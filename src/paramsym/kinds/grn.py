"""`grn` (docs/language.md, Norms over the channels): ConvNeXt V2's global response normalization (Woo et al.
2023). On a map, each channel's L2 norm over the positions, divided by the mean of those norms over the channels,
gives a response per channel; the output is x + γ·(x·response) + β, with a learnt γ and β per channel: 2C
parameters, no state. Its products are elementwise: FlopCounterMode counts no MACs for it (`x.norm`, `addcmul`),
and neither does paramsym.

PyTorch: paramsym's `GlobalResponseNorm` module in an export; timm's `GlobalResponseNorm` (channels last, in
ConvNeXt V2's MLP, or channels first) imports as it. Keras has no counterpart."""

from __future__ import annotations

from typing import Any

from ..core.records import Layer, TorchSpec
from ..errors import ImportRefused, ParamsymShapeError
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
    known,
    same_layer,
    stated_channels,
)


class GlobalResponseNorm(Kind):
    key = "grn"
    names = ("grn",)
    keywords = frozenset({"eps"})
    positional = 1  # grn(64): the channels, when nothing before says them
    torch_modules = ("GlobalResponseNorm", "timm.layers.grn.GlobalResponseNorm")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        from .rmsnorm import _check_eps  # eps= counts nothing

        _check_eps(args)
        spatial = flow.shape.spatial
        if spatial is not None and len(spatial) != 2:
            raise ParamsymShapeError(
                f"{call.name} normalises each channel over the positions of a map, but its input is "
                f"{flow.shape.describe()}",
                pos=call.pos,
                hint="grn comes after a layer that gives a map H x W x C",
            )
        channels = stated_channels(call, flow, args)
        return same_layer(call, self, flow, channels)

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        return {"params": 2 * known(layer.cout)}

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return 2 * t.c

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            f"Global response normalization: each channel's L2 norm over the positions, divided by the mean of "
            f"those norms over the channels, scales the input; the output is x + γ·(x·response) + β with a γ and "
            f"a β per channel: {w.product(2, layer.cout)} parameters. Its products are elementwise: no MACs."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("GlobalResponseNorm", (num(layer.cout),))

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        where = f"{ctx.node_name} ({type(module).__name__})"
        channels = module.weight.numel()
        if type(module).__name__ == "GlobalResponseNorm" and not hasattr(module, "channel_dim"):
            last = False  # paramsym's own: channels first
        else:
            last = module.channel_dim == -1
            expected = ((1, 2), -1, (1, 1, 1, -1)) if last else ((2, 3), 1, (1, -1, 1, 1))
            if (tuple(module.spatial_dim), module.channel_dim, tuple(module.wb_shape)) != expected:
                raise ImportRefused(f"{where} normalises over axes the language's grn does not")
        out = tuple(ctx.out_shape)
        # channels last: the importer gives the channels as a vector (N, C); the value itself is (N, H, W, C)
        on_a_map = (
            len(out) == 4 and out[-1] == channels and ctx.in_shape == (out[0], channels)
            if last
            else len(ctx.in_shape) == 4 and ctx.in_shape[1] == channels
        )
        if not on_a_map or module.bias.numel() != channels:
            raise ImportRefused(f"{where} of {channels} channels does not act on the channels of a map")
        return "grn"


KINDS = (GlobalResponseNorm(),)
