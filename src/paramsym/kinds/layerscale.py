"""`scale` (docs/language.md, modern networks): layer scale, a learned factor per channel (ConvNeXt's gamma, CaiT,
Swin-V2). Params C, output unchanged. `scale(shared)`: one learned factor for every channel (NF-ResNet's and NFNet's
skipinit gain, a parameter of shape ()); `bias` adds a learned shift, per channel or shared (hgnetv2's
LearnableAffineBlock is `scale(shared, bias)`: 2 parameters). PyTorch: our `LayerScale(C)` (channels first);
Keras: a 1-wide depthwise convolution (with `bias`, its bias), which is the same function with the same weights;
a shared factor has no Keras layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import saved as saved_tensors
from ..core.records import NO_OPTIONS, ONE, KerasSpec, Layer, Options, TorchSpec
from ..core.setup import Setup
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
    known,
    refuse_keras,
    same_layer,
    stated_channels,
)


@dataclass(frozen=True)
class SharedScale(Options):
    """`scale(shared)`: one factor (and with `bias` one shift) for every channel; a per-channel scale keeps
    NO_OPTIONS."""


SHARED = SharedScale()


def _values(layer: Layer) -> Expr:
    """The factors (and shifts) of one kind: C per channel, 1 shared."""
    return ONE if isinstance(layer.options, SharedScale) else known(layer.cout)


class LayerScale(Kind):
    key = "scale"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Its input (for the factors' gradient)."""
        return saved_tensors.INPUT

    names = ("scale",)
    positional = 1  # scale(96): the channels, when nothing before says them
    flags = frozenset({"shared", "bias"})
    # paramsym's own (weight), timm's on channels last and on (N, C, H, W) maps (gamma), hgnetv2's
    # LearnableAffineBlock (a factor and a shift of shape (1,)), ResMLP's Affine (alpha and beta per channel)
    torch_modules = (
        "LayerScale",
        "timm.layers.layer_scale.LayerScale",
        "timm.layers.layer_scale.LayerScale2d",
        "timm.models.hgnet.LearnableAffineBlock",
        "timm.models.mlp_mixer.Affine",
    )

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        channels = stated_channels(call, flow, args)
        options = SHARED if "shared" in args.flags else NO_OPTIONS
        return same_layer(call, self, flow, channels, bias=args.bias, options=options)

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        # MACs 0, as for bn and prelu (and FlopCounterMode): an element-wise product is not counted
        return {"params": _values(layer) * (2 if layer.bias else 1)}

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        values = ONE if isinstance(layer.options, SharedScale) else t.c
        return values * (2 if layer.bias else 1)

    def header(self, layer: Layer, words: Words) -> str:
        return (", one factor for every channel" if isinstance(layer.options, SharedScale) else "") + (
            ", with a shift" if layer.bias else ""
        )

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        shift = " and adds a learned shift" if layer.bias else ""
        if isinstance(layer.options, SharedScale):
            return [
                f"Scale learns one factor for all {w(layer.cout)} channels and multiplies every value by it{shift}: "
                f"{w(counts.params)} parameter{'s' if layer.bias else ''}."
            ]
        return [
            f"Layer scale learns one factor per channel and multiplies each channel by it{shift.replace('a ', 'one ')}"
            f"{' per channel' if layer.bias else ''}: {w(counts.params)} parameters."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        kwargs = {"shared": True} if isinstance(layer.options, SharedScale) else {}
        return TorchSpec("LayerScale", (num(layer.cout),), {**kwargs, **({"bias": True} if layer.bias else {})})

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        if isinstance(layer.options, SharedScale):
            refuse_keras(layer, "Keras has no layer that learns one factor for every channel")
        rank = layer.in_shape.rank
        if rank not in (1, 2):
            refuse_keras(
                layer,
                "Keras has no per-channel scale layer, and no depthwise convolution "
                f"for {'a vector' if rank == 0 else f'{rank} spatial axes'} to stand for one",
            )
        return [KerasSpec(f"DepthwiseConv{rank}D", {"kernel_size": 1, "use_bias": layer.bias})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        """paramsym's LayerScale, timm's LayerScale and LayerScale2d (gamma), hgnetv2's LearnableAffineBlock (scale
        and bias of shape (1,)), ResMLP's Affine (alpha and beta of shape (1, 1, C)), or a product by a parameter that
        the importer reads as one (`weight`: one factor per channel, or a single one)."""
        if type(module).__name__ == "LearnableAffineBlock":
            weight = module.scale
        elif type(module).__name__ == "Affine":  # ResMLP's: torch.addcmul(beta, alpha, x), both of shape (1, 1, C)
            weight = module.alpha.flatten()
        else:
            weight = module.weight if hasattr(module, "weight") else module.gamma
        bias = module.beta.flatten() if type(module).__name__ == "Affine" else getattr(module, "bias", None)
        shared = weight.numel() == 1
        if not shared and (weight.dim() != 1 or len(ctx.in_shape) < 2 or ctx.in_shape[1] != weight.shape[0]):
            raise ImportRefused(f"{ctx.node_name} ({type(module).__name__}) does not scale channels")
        if bias is not None and bias.numel() != weight.numel():
            raise ImportRefused(
                f"{ctx.node_name} ({type(module).__name__}) has {weight.numel()} factors but {bias.numel()} shifts"
            )
        flags = [flag for flag, on in (("shared", shared), ("bias", bias is not None)) if on]
        return f"scale({', '.join(flags)})" if flags else "scale"


KINDS = (LayerScale(),)
