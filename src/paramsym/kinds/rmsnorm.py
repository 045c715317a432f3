"""`rmsnorm`: root-mean-square normalization over the last axis (docs/language.md, Layers),
as in Llama and T5. It learns one scale per channel and no shift; `rmsnorm(noaffine)`
learns nothing. PyTorch `nn.RMSNorm(C)`, Keras `RMSNormalization()`. On a map it normalises
each position's channels (timm's RmsNorm2d, RmsNormAct2d).

`simplenorm`: timm's SimpleNorm (x / sqrt(var(x) + eps) over the channels, the variance unbiased and the mean
not subtracted), with the same counts: a scale per channel, no shift (docs/language.md, Norms over the channels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import saved as saved_tensors
from ..core.records import ZERO, KerasSpec, Layer, Options, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused, ParamsymArgumentError
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
    Value,
    Words,
    refuse_keras,
    require_channels_of_a_vector,
    same_layer,
    stated_channels,
    vector_or_channels_last,
)


@dataclass(frozen=True)
class RMSNormOptions(Options):
    affine: bool  # learns its scale (not noaffine)


class RMSNorm(Kind):
    key = "rmsnorm"
    per_position = True

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """As Hugging Face's RMSNorm (Llama's) computes: in fp32, its fp32 input (the input itself in fp32, a copy
        otherwise) and the inverse root mean square of each position (fp32), then the normalised values in the
        activations' format (which the scale keeps). torch.nn.RMSNorm keeps the normalised values in fp32 instead:
        the same in fp32, 2 bytes a value more in bf16. Declared for fp32 and bf16 activations, with a scale."""
        positions, elements = layer.in_shape.positions, layer.in_shape.elements
        if positions is None or elements is None or type(self) is not RMSNorm or not RMSNormOptions.of(layer).affine:
            return None
        extras = [saved_tensors.Extra(positions, 4, what="inverse RMS"), saved_tensors.Extra(elements, 4)]
        if setup.activations.name == "fp32":
            return saved_tensors.Saved(input=True, extras=tuple(extras))
        if setup.activations.name == "bf16":  # the normalised values back in the activations' format
            extras[1] = saved_tensors.Extra(elements, what="normalised")
            return saved_tensors.Saved(extras=(saved_tensors.Extra(elements, 4, what="fp32 input"), *extras))
        return None

    names = ("rmsnorm",)
    keywords = frozenset({"eps"})
    flags = frozenset({"noaffine"})
    positional = 1  # rmsnorm(512): the channels, when nothing before says them
    # torch.nn's, and timm's (the same computation; the Fp32 one in float32 whatever the input's dtype); timm's 2d
    # ones over the channels of (N, C, H, W), and those followed by drop and act (norm_act)
    torch_modules: tuple[str, ...] = (
        "RMSNorm",
        "timm.layers.norm.RmsNorm",
        "timm.layers.norm.RmsNormFp32",
        "timm.layers.norm.RmsNorm2d",
        "timm.layers.norm.RmsNorm2dFp32",
        "timm.layers.norm_act.RmsNormAct",
        "timm.layers.norm_act.RmsNormActFp32",
        "timm.layers.norm_act.RmsNormAct2d",
        "timm.layers.norm_act.RmsNormAct2dFp32",
    )

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        _check_eps(args)
        channels = stated_channels(call, flow, args)
        return same_layer(call, self, flow, channels, options=RMSNormOptions(affine="noaffine" not in args.flags))

    def tensor_parallel(self, layer: Layer, params: Expr, t: int, value: Value) -> Expr:
        return params  # replicated on every tensor-parallel rank (Megatron-LM)

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        return {"params": layer.cout if RMSNormOptions.of(layer).affine else ZERO}

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return t.c if RMSNormOptions.of(layer).affine else ZERO

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        if not RMSNormOptions.of(layer).affine:
            return ["RMSNorm without affine part (noaffine) learns nothing."]
        return [f"RMSNorm learns a scale per channel and no shift: {w(layer.cout)} parameters."]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        flags = {} if RMSNormOptions.of(layer).affine else {"elementwise_affine": False}
        return vector_or_channels_last(layer, TorchSpec("nn.RMSNorm", (num(layer.cout),), flags))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        if not RMSNormOptions.of(layer).affine:
            refuse_keras(layer, "Keras RMSNormalization always learns its scale")
        return [KerasSpec("RMSNormalization", {"axis": -1})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return _imported(module, ctx, "rmsnorm" if module.elementwise_affine else "rmsnorm(noaffine)")


def _imported(module: Any, ctx: ImportContext, text: str) -> str:
    """A norm over the channels: of a vector (or channels last), or of a map (N, C, ...) for timm's 2d classes
    (their forward normalises dim 1), then what timm's norm_act classes apply after it."""
    from .normalization import then_drop_and_act  # a kind module of the same stage

    if "2d" in type(module).__name__:
        shape = tuple(module.normalized_shape)
        # a map (N, C, H, W), or a pooled one the importer reads as the vector (N, C) (ConvNeXt's head.norm)
        pooled = len(ctx.in_shape) == 2 and tuple(ctx.out_shape[1:]) in (shape, (*shape, 1, 1))
        if not (len(ctx.in_shape) == 4 or pooled) or shape != (ctx.in_shape[1],):
            raise ImportRefused(
                f"{ctx.node_name} ({type(module).__name__}{shape}) does not normalise the channels of a map"
            )
    else:
        require_channels_of_a_vector(module, ctx)
    return then_drop_and_act(module, ctx, text)


def _check_eps(args: Args) -> None:
    """eps= (added to the mean square) counts nothing, but must be one number of at least 0."""
    arg = args.keywords.get("eps")
    if arg is not None and (len(arg.value) != 1 or not arg.value[0].is_number or arg.value[0] < 0):
        raise ParamsymArgumentError("eps must be one number of at least 0, such as eps=0.00001", pos=arg.pos)


class SimpleNorm(RMSNorm):
    """timm's SimpleNorm: each position's channels divided by their standard deviation (not centred), then scaled
    per channel; counted as rmsnorm, exported as paramsym's SimpleNorm."""

    key = "simplenorm"
    names = ("simplenorm",)
    torch_modules = (
        "SimpleNorm",
        "timm.layers.norm.SimpleNorm",
        "timm.layers.norm.SimpleNormFp32",
        "timm.layers.norm.SimpleNorm2d",
        "timm.layers.norm.SimpleNorm2dFp32",
    )

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        divided = "Each position's channels are divided by their standard deviation (the mean is not subtracted)"
        if not RMSNormOptions.of(layer).affine:
            return [f"{divided}; without affine part (noaffine) it learns nothing."]
        return [f"{divided}, then scaled per channel, with no shift: {w(layer.cout)} parameters."]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        flags = {} if RMSNormOptions.of(layer).affine else {"affine": False}
        return vector_or_channels_last(layer, TorchSpec("SimpleNorm", (num(layer.cout),), flags))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "Keras has no norm by the standard deviation without centring")

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return _imported(module, ctx, "simplenorm" if module.elementwise_affine else "simplenorm(noaffine)")


KINDS = (RMSNorm(), SimpleNorm())
