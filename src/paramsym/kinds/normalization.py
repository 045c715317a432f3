"""Normalization with a scale and a shift per channel: batch norm (which also
keeps running statistics), layer norm over the last axis, group norm."""

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
    Constraint,
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
    check_divides,
    known,
    require_channels_of_a_vector,
    same_layer,
    stated_channels,
    vector_or_channels_last,
)


@dataclass(frozen=True)
class NormalizationOptions(Options):
    affine: bool  # learns a scale (and a shift): not noaffine
    shift: bool = True  # learns the shift too: not nobias (ln only)
    groups: Expr | None = None  # gn's groups
    frozen: bool = False  # bn(frozen): scale, shift, mean and variance all fixed buffers, nothing learnt


class _Normalization(Kind):
    keywords = frozenset({"groups", "eps", "momentum"})
    flags = frozenset({"noaffine", "nobias"})
    positional = 1  # bn(64): the channels, when nothing before says them
    title = ""  # BatchNorm, LayerNorm, GroupNorm
    keeps_statistics = False  # running mean and variance (non-learnable state)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        channels = stated_channels(call, flow, args)
        shift = "nobias" not in args.flags
        if not shift:
            self.without_shift(call, args)
        groups, constraints = self.groups(call, args, channels)
        frozen = "frozen" in args.flags
        if frozen and "noaffine" in args.flags:
            raise ParamsymArgumentError(
                f"both 'noaffine' and 'frozen' are given: {call.name}(frozen) keeps a fixed scale and shift",
                pos=args.flags["frozen"].pos,
            )
        options = NormalizationOptions(affine="noaffine" not in args.flags, shift=shift, groups=groups, frozen=frozen)
        return same_layer(call, self, flow, channels, options=options, constraints=tuple(constraints))

    def without_shift(self, call: Call, args: Args) -> None:
        """`nobias`: a scale and no shift; PyTorch's BatchNorm and GroupNorm have no such option."""
        raise ParamsymArgumentError(
            f"{call.name} has no 'nobias': PyTorch's {self.title} learns a scale and a shift together, or neither",
            pos=args.flags["nobias"].pos,
            hint=f"write {call.name}(noaffine) to learn neither; ln(nobias) and gn(nobias) learn a scale alone",
        )

    def groups(self, call: Call, args: Args, channels: Expr) -> tuple[Expr | None, list[Constraint]]:
        """The groups (gn's) and the conditions on them."""
        if "groups" in args.keywords:
            raise ParamsymArgumentError(f"{call.name} has no groups (that is gn)", pos=args.keywords["groups"].pos)
        return None, []

    def tensor_parallel(self, layer: Layer, params: Expr, t: int, value: Value) -> Expr:
        return params  # replicated on every tensor-parallel rank (Megatron-LM)

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        channels = known(layer.cout)
        if NormalizationOptions.of(layer).frozen:  # weight, bias, running mean and variance: buffers
            return {"params": ZERO, "state": 4 * channels}
        return {
            "params": _terms(layer) * channels if NormalizationOptions.of(layer).affine else ZERO,
            "state": 2 * channels if self.keeps_statistics else ZERO,
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        o = NormalizationOptions.of(layer)
        return _terms(layer) * t.c if o.affine and not o.frozen else ZERO

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = NormalizationOptions.of(layer)
        if o.frozen:
            return [
                f"{self.title} (frozen): its scale, shift, mean and variance per channel are fixed "
                f"buffers, {w.product(4, layer.cout)} non-learnable values, and it learns nothing (PyTorch's "
                f"parameters() counts none of them, Keras' non-trainable weights all four)."
            ]
        if o.affine and not o.shift:
            lines = [
                f"{self.title} without bias (nobias) learns a scale per channel and no shift: "
                f"{w(layer.cout)} parameters."
            ]
        elif o.affine:
            lines = [f"{self.title} learns a scale and a shift per channel: {w.product(2, layer.cout)} parameters."]
        else:
            lines = [f"{self.title} without affine part (noaffine) learns nothing."]
        if self.keeps_statistics:
            lines.append(
                f"It also keeps a running mean and variance per channel: {w.product(2, layer.cout)} "
                f"non-learnable values (Keras counts them in its total, PyTorch's parameters() does not)."
            )
        return lines

    def keras_flags(self, layer: Layer) -> dict[str, bool]:
        o = NormalizationOptions.of(layer)
        if not o.affine:
            return {"center": False, "scale": False}
        return {} if o.shift else {"center": False}


def _then(module: Any, ctx: ImportContext, text: str) -> str:
    """`text` followed by what timm's norm + activation modules (BatchNormAct2d, GroupNormAct, LayerNormAct,
    ...) apply after the norm in their forward: `drop`, then `act`, each imported by its own kind (nothing for
    an Identity); a module the language lacks is refused by name."""
    from . import for_torch_module  # the registry, which imports this module

    if not any(f"{cls.__module__}.{cls.__qualname__}".startswith(_TIMM_ACT) for cls in type(module).__mro__):
        return text  # a norm of torch.nn: its forward applies nothing after the norm, whatever it holds
    stages = [text]
    for part in ("drop", "act"):
        sub = getattr(module, part, None)
        if sub is None:
            continue
        kind = for_torch_module(sub)
        if kind is None:
            raise ImportRefused(
                f"{ctx.node_name} ({type(module).__name__}) applies {part} {type(sub).__name__} "
                f"after the norm, which has no counterpart in the language"
            )
        written = kind.from_torch(sub, ctx)
        if written and not kind.identity:
            stages.append(written)
    return " > ".join(stages)


then_drop_and_act = _then  # for the norms of other modules (rmsnorm's timm RmsNormAct2d)

# timm's norm + activation modules: the norm's own computation, then drop and act (_then)
_TIMM_ACT = "timm.layers.norm_act."


def _terms(layer: Layer) -> int:
    """A scale and a shift per channel, or the scale alone (ln(nobias))."""
    return 2 if NormalizationOptions.of(layer).shift else 1


class BatchNorm(_Normalization):
    key = "bn"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Its input, and the batch's mean and inverse standard deviation per channel (in the activation format
        on the CPU); a frozen batch norm (fixed buffers) is not declared."""
        if NormalizationOptions.of(layer).frozen or layer.cout is None:
            return None
        stat = saved_tensors.Extra(layer.cout, per_sample=False, what="batch statistic")
        return saved_tensors.Saved(input=True, extras=(stat, stat))

    names = ("bn", "batchnorm")
    title = "BatchNorm"
    flags = _Normalization.flags | {"frozen"}
    keeps_statistics = True
    torch_modules = (
        # bn(frozen): torchvision's FrozenBatchNorm2d (timm's is the same class), timm's with its activation,
        # paramsym's own export
        "torchvision.ops.misc.FrozenBatchNorm2d",
        f"{_TIMM_ACT}FrozenBatchNormAct2d",
        "FrozenBatchNorm",
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
        "SyncBatchNorm",
        f"{_TIMM_ACT}BatchNormAct2d",
        f"{_TIMM_ACT}SyncBatchNormAct",
    )

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        if NormalizationOptions.of(layer).frozen:
            return TorchSpec("FrozenBatchNorm", (num(layer.cout),))
        dims = max(layer.in_shape.rank or 1, 1)
        return TorchSpec(
            f"nn.BatchNorm{dims}d",
            (num(layer.cout),),
            {} if NormalizationOptions.of(layer).affine else {"affine": False},
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        if NormalizationOptions.of(layer).frozen:
            return [KerasSpec("BatchNormalization", {"trainable": False})]
        return [KerasSpec("BatchNormalization", self.keras_flags(layer))]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        buffers = {name for name, _ in module.named_buffers(recurse=False)}
        if not hasattr(module, "track_running_stats"):  # a frozen BatchNorm: its four vectors are buffers
            if not {"weight", "bias", "running_mean", "running_var"} <= buffers:
                raise ImportRefused(
                    f"{ctx.node_name} ({type(module).__name__}) does not keep a fixed scale, shift, mean and "
                    f"variance as buffers"
                )
            return _then(module, ctx, "bn(frozen)")
        if not module.track_running_stats:
            raise ImportRefused(f"{ctx.node_name} ({type(module).__name__}) keeps no running statistics")
        return _then(module, ctx, "bn" if module.affine else "bn(noaffine)")


def _scale_alone(call: Call, args: Args) -> None:
    """`nobias` (ln, gn): a scale and no shift, which `noaffine` contradicts."""
    if "noaffine" in args.flags:
        raise ParamsymArgumentError(
            f"both 'noaffine' and 'nobias' are given: {call.name}(noaffine) learns nothing already",
            pos=args.flags["nobias"].pos,
        )


def _a_parameter(node: Any, size: int) -> bool:
    """Whether a traced value is a parameter of the model (not a buffer, nor computed) with `size` values."""
    if getattr(node, "op", None) != "get_attr":
        return False
    try:
        parameter = node.graph.owning_module.get_parameter(node.target)
    except AttributeError:
        return False
    return bool(parameter.numel() == size and parameter.dim() == 1)


class LayerNorm(_Normalization):
    key = "ln"
    per_position = True

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Its input, and the mean and inverse standard deviation of each position (activation format)."""
        positions = layer.in_shape.positions
        if positions is None:
            return None
        stat = saved_tensors.Extra(positions, what="statistic per position")
        return saved_tensors.Saved(input=True, extras=(stat, stat))

    names = ("ln", "layernorm")
    title = "LayerNorm"
    torch_functions = ("layer_norm",)
    # LayerNorm2d (torchvision's, timm's, and subclasses that keep its forward: timm's LayerNorm2dNoBias, whose bias
    # is None): over the channels of (N, C, H, W), as the importer reads them
    torch_modules = (
        "LayerNorm",
        "timm.layers.norm.LayerNorm",
        "timm.layers.norm.LayerNorm2d",
        "torchvision.models.convnext.LayerNorm2d",
        f"{_TIMM_ACT}LayerNormAct",
        f"{_TIMM_ACT}LayerNormAct2d",
        # the same computation in float32 (its numbers are the same)
        "timm.layers.norm.LayerNormFp32",
        "timm.layers.norm.LayerNorm2dFp32",
        f"{_TIMM_ACT}LayerNormActFp32",
        f"{_TIMM_ACT}LayerNormAct2dFp32",
    )

    def without_shift(self, call: Call, args: Args) -> None:
        _scale_alone(call, args)

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = NormalizationOptions.of(layer)
        flags = {} if o.affine else {"elementwise_affine": False}
        if not o.shift:
            flags = {"bias": False}
        return vector_or_channels_last(layer, TorchSpec("nn.LayerNorm", (num(layer.cout),), flags))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        return [KerasSpec("LayerNormalization", self.keras_flags(layer))]

    def from_torch_function(self, name: str, node: Any, ctx: ImportContext) -> str:
        """F.layer_norm(x, (C,), weight, bias) over the channels (of a vector, or of a map permuted to channels
        last: a LayerNorm2d of one's own), with weight and bias parameters of the model, or None."""
        values = dict(zip(("input", "normalized_shape", "weight", "bias", "eps"), node.args))
        values.update(node.kwargs)
        shape = values.get("normalized_shape")
        shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        if len(shape) != 1 or len(ctx.in_shape) != 2 or ctx.in_shape[-1] != shape[0]:
            raise ImportRefused(f"{ctx.node_name} (F.layer_norm over {shape}) does not normalise the channels")
        weight, bias = values.get("weight"), values.get("bias")
        for part, value in (("weight", weight), ("bias", bias)):
            if value is not None and not _a_parameter(value, shape[0]):
                raise ImportRefused(
                    f"{ctx.node_name} (F.layer_norm) takes a {part} that is not a parameter of {shape[0]} values"
                )
        if weight is None:
            if bias is not None:
                raise ImportRefused(f"{ctx.node_name} (F.layer_norm) shifts without a scale")
            return "ln(noaffine)"
        return "ln" if bias is not None else "ln(nobias)"

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        require_channels_of_a_vector(module, ctx)
        if not module.elementwise_affine:
            return _then(module, ctx, "ln(noaffine)")
        return _then(module, ctx, "ln" if module.bias is not None else "ln(nobias)")


class GroupNorm(_Normalization):
    key = "gn"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Its input, and the mean and inverse standard deviation of each group of a sample (activation format)."""
        groups = NormalizationOptions.of(layer).groups
        if groups is None:
            return None
        stat = saved_tensors.Extra(groups, what="statistic per group")
        return saved_tensors.Saved(input=True, extras=(stat, stat))

    names = ("gn", "groupnorm")
    title = "GroupNorm"
    torch_modules = (
        "GroupNorm",
        "timm.layers.norm.GroupNorm",
        "timm.layers.norm.GroupNorm1",
        f"{_TIMM_ACT}GroupNormAct",
        f"{_TIMM_ACT}GroupNorm1Act",
    )

    def groups(self, call: Call, args: Args, channels: Expr) -> tuple[Expr | None, list[Constraint]]:
        groups = args.scalar("groups")
        if groups is None:
            raise ParamsymArgumentError(
                f"{call.name} needs its number of groups: write {call.name}(groups=32)", pos=call.pos
            )
        return groups, check_divides(call, groups, channels, "", args.keywords["groups"].pos)

    def without_shift(self, call: Call, args: Args) -> None:
        _scale_alone(call, args)  # gn(nobias): timm's GroupNorm1NoBias (poolformerv2)

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = NormalizationOptions.of(layer)
        flags = {"bias": False} if not o.shift else {} if o.affine else {"affine": False}
        return TorchSpec("nn.GroupNorm", (num(o.groups), num(layer.cout)), flags)

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        return [
            KerasSpec(
                "GroupNormalization", {"groups": num(NormalizationOptions.of(layer).groups), **self.keras_flags(layer)}
            )
        ]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        # nn.GroupNorm(..., bias=False) and timm's GroupNorm1NoBias (bias set to None) learn the scale alone
        flag = "" if module.affine and module.bias is not None else ", noaffine" if not module.affine else ", nobias"
        return _then(module, ctx, f"gn(groups={module.num_groups}{flag})")


KINDS = (BatchNorm(), LayerNorm(), GroupNorm())
