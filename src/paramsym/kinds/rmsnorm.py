"""`rmsnorm`: root-mean-square normalization over the last axis (docs/language.md, Layers),
as in Llama and T5. It learns one scale per channel and no shift; `rmsnorm(noaffine)`
learns nothing. PyTorch `nn.RMSNorm(C)`, Keras `RMSNormalization()`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.records import ZERO, KerasSpec, Layer, Options, TorchSpec
from ..errors import ParamsymArgumentError
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
    names = ("rmsnorm",)
    keywords = frozenset({"eps"})
    flags = frozenset({"noaffine"})
    positional = 1  # rmsnorm(512): the channels, when nothing before says them
    # torch.nn's, and timm's (the same computation; the Fp32 one in float32 whatever the input's dtype)
    torch_modules = ("RMSNorm", "timm.layers.norm.RmsNorm", "timm.layers.norm.RmsNormFp32")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        _check_eps(args)
        channels = stated_channels(call, flow, args)
        return same_layer(call, self, flow, channels, options=RMSNormOptions(affine="noaffine" not in args.flags))

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
        require_channels_of_a_vector(module, ctx)
        return "rmsnorm" if module.elementwise_affine else "rmsnorm(noaffine)"


def _check_eps(args: Args) -> None:
    """eps= (added to the mean square) counts nothing, but must be one number of at least 0."""
    arg = args.keywords.get("eps")
    if arg is not None and (len(arg.value) != 1 or not arg.value[0].is_number or arg.value[0] < 0):
        raise ParamsymArgumentError("eps must be one number of at least 0, such as eps=0.00001", pos=arg.pos)


KINDS = (RMSNorm(),)
