"""`evonorm(groups=G)` (docs/language.md, EvoNorm): EvoNorm-S0 (Liu et al. 2020, "Evolving Normalization-Activation
Layers"), a norm and an activation in one, on a map: x·σ(v·x) / std_G(x) · γ + β, where std_G(x) is the standard
deviation of each group of C/G channels over the positions (biased, plus eps), and v, γ, β are learnt per channel:
3C parameters, no state. `evonorm(groups=G, noact)` leaves out the activation (timm's EvoNorm2dS0a without it):
x / std_G(x) · γ + β, 2C parameters. Its products are elementwise: FlopCounterMode counts no MACs for it.

PyTorch: paramsym's `EvoNorm` module in an export; timm's `EvoNorm2dS0` and `EvoNorm2dS0a` import as it (with the
activation both compute the same; timm's EvoNorm2dS0 without it normalises nothing and is `scale(bias)`). Keras has
no counterpart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.records import Layer, Options, TorchSpec
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
    check_divides,
    known,
    same_layer,
    stated_channels,
)


@dataclass(frozen=True)
class EvoNormOptions(Options):
    groups: Expr  # the groups of channels whose standard deviation divides them
    act: bool  # the sigmoid gate x·σ(v·x), with v learnt per channel (not noact)


class EvoNorm(Kind):
    key = "evonorm"
    names = ("evonorm",)
    keywords = frozenset({"groups", "eps"})
    flags = frozenset({"noact"})
    positional = 1  # evonorm(64, groups=8): the channels, when nothing before says them
    torch_modules = ("EvoNorm", "timm.layers.evo_norm.EvoNorm2dS0", "timm.layers.evo_norm.EvoNorm2dS0a")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        from .rmsnorm import _check_eps  # eps= counts nothing

        _check_eps(args)
        spatial = flow.shape.spatial
        if spatial is not None and len(spatial) != 2:
            raise ParamsymShapeError(
                f"{call.name} normalises groups of channels over the positions of a map, but its input is "
                f"{flow.shape.describe()}",
                pos=call.pos,
                hint="evonorm comes after a layer that gives a map H x W x C",
            )
        channels = stated_channels(call, flow, args)
        groups = args.scalar("groups")
        if groups is None:
            raise ParamsymArgumentError(
                f"{call.name} needs its number of groups: write {call.name}(groups=8)", pos=call.pos
            )
        constraints = check_divides(call, groups, channels, "", args.keywords["groups"].pos)
        options = EvoNormOptions(groups, "noact" not in args.flags)
        return same_layer(call, self, flow, channels, options=options, constraints=tuple(constraints))

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        return {"params": (3 if EvoNormOptions.of(layer).act else 2) * known(layer.cout)}

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return (3 if EvoNormOptions.of(layer).act else 2) * t.c

    def header(self, layer: Layer, w: Words) -> str:
        return f", {w(EvoNormOptions.of(layer).groups)} groups"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = EvoNormOptions.of(layer)
        divided = (
            f"each channel is divided by the standard deviation of its group ({w(o.groups)} groups of channels, "
            f"over the positions)"
        )
        if o.act:
            return [
                f"EvoNorm-S0: x·sigmoid(v·x), {divided}, then scaled and shifted; v, the scale and the shift are "
                f"learnt per channel: {w.product(3, layer.cout)} parameters. Its products are elementwise: no MACs."
            ]
        return [
            f"EvoNorm-S0 without its activation (noact): {divided}, then scaled and shifted per channel: "
            f"{w.product(2, layer.cout)} parameters. Its products are elementwise: no MACs."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = EvoNormOptions.of(layer)
        return TorchSpec("EvoNorm", (num(layer.cout), num(o.groups)), {} if o.act else {"act": False})

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        where = f"{ctx.node_name} ({type(module).__name__})"
        channels = module.weight.numel()
        if len(ctx.in_shape) != 4 or ctx.in_shape[1] != channels or module.bias.numel() != channels:
            raise ImportRefused(f"{where} of {channels} channels does not act on the channels of a map")
        act = module.v is not None
        if not act and type(module).__name__ == "EvoNorm2dS0":
            return "scale(bias)"  # timm's S0 without its activation normalises nothing: x·γ + β
        return f"evonorm(groups={module.groups}{'' if act else ', noact'})"


KINDS = (EvoNorm(),)
