"""`sdpa(heads=h, head_dim=e)` (docs/language.md, Attention core; a paramsym extension): the attention itself and
nothing around it, on queries, keys and values that layers before it computed: its input's channels are the
queries (h heads of e), the keys (h heads of e) and the values (h heads of c/h), in that order, C = 2·h·e + c; at
every position it gives the heads' weighted sums of the values, c channels. No parameters; MACs `h·T²·e + T²·c`
(the scores and the weighted sums, T the positions), what FlopCounterMode counts on the two products (or on
F.scaled_dot_product_attention). With slices, concatenations and gates around it, it writes the attention of
models whose projections carry norms or gates that `attn` does not have: timm's SHViT (SHSA: a GroupNorm, then
conv1x1 > BatchNorm for q, k, v, one head on part of the channels) and iFormer (SHMA: q and k by conv1x1 >
BatchNorm, v and a sigmoid gate by one conv1x1 > BatchNorm, the attention times the gate); both are read whole.

PyTorch: paramsym's `ScaledDotProductAttention` (F.scaled_dot_product_attention on the channel groups).
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
    Words,
    check_or_defer,
    known,
    make_layer,
    refuse_keras,
    times,
    whole_input_field,
    whole_number,
)


@dataclass(frozen=True)
class SdpaOptions(Options):
    heads: Expr
    head_dim: Expr  # the width of a query or key head


class AttentionCore(Kind):
    key = "sdpa"
    names = ("sdpa",)
    keywords = frozenset({"heads", "head_dim"})
    torch_modules = ("ScaledDotProductAttention", "timm.models.shvit.SHSA", "timm.models.iformer.SHMA")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        for key, example in (("heads", "heads=1"), ("head_dim", "head_dim=16")):
            if key not in args.keywords:
                raise ParamsymArgumentError(
                    f"{call.name} needs {key}=: write {call.name}(heads=1, head_dim=16) (its input is the queries and "
                    f"keys of heads x head_dim channels each, then the values)",
                    pos=call.pos,
                    hint=f"give {example}",
                )
        shape = flow.shape
        if shape.rank is None or shape.rank == 0 or shape.channels is None:
            raise ParamsymShapeError(
                f"{call.name} attends over positions, but its input is "
                f"{'a vector' if shape.rank == 0 else 'of unknown shape'}",
                pos=call.pos,
                hint="its input is a sequence T x C or a map H x W x C of queries, keys and values",
            )
        heads, head_dim = known(args.scalar("heads")), known(args.scalar("head_dim"))
        constraints = list(args.constraints)
        constraints += whole_number(heads, "heads", args.keywords["heads"].pos)
        constraints += whole_number(head_dim, "head_dim", args.keywords["head_dim"].pos)
        c = shape.channels - 2 * heads * head_dim
        constraints += check_or_defer(
            c,
            "positive",
            f"{call.name}: the {shape.channels} input channels leave no values after the queries and keys "
            f"(2 x {heads} x {head_dim})",
            args.keywords["head_dim"].pos,
            shown=shape.channels,
        )
        constraints += check_or_defer(
            c / heads,
            "integer",
            f"{call.name}: heads={heads} does not divide the {c} value channels",
            args.keywords["heads"].pos,
            shown=c,
        )
        options = SdpaOptions(heads=heads, head_dim=head_dim)
        return make_layer(
            call,
            self,
            flow,
            Shape(shape.spatial, c),
            shape.channels,
            c,
            options=options,
            constraints=tuple(constraints),
        )

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = SdpaOptions.of(layer)
        T, c = layer.in_shape.positions, known(layer.cout)
        scores, sums = times(o.heads, T, T, o.head_dim), times(T, T, c)
        return {
            "params": 0,
            "fan_in": known(layer.cin),
            "macs": None if scores is None or sums is None else scores + sums,
            "attention_macs": None if scores is None or sums is None else scores + sums,  # core/compute.py
            "connections": times(layer.out_shape.elements, layer.cin),
            "kv_cache": times(T, o.heads * o.head_dim + c),
        }

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)

    def header(self, layer: Layer, words: Words) -> str:
        o = SdpaOptions.of(layer)
        return f", {words(o.heads)} heads, queries and keys of width {words(o.head_dim)}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = SdpaOptions.of(layer)
        h, e, c = o.heads, o.head_dim, known(layer.cout)
        return [
            f"The attention alone (a paramsym extension): its {w(layer.cin)} input channels are the queries and the "
            f"keys ({w(h)} heads of {w(e)} each) and the values ({w(c)} channels); softmax(q·k/√e) weighs the values "
            f"of every position, {w(c)} channels out. No parameters.",
            f"MACs: the scores of every pair of positions and the weighted sums, {w(counts.macs)}."
            if counts.macs is not None
            else "MACs: unknown until the positions are.",
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = SdpaOptions.of(layer)
        return TorchSpec("ScaledDotProductAttention", (num(o.heads), num(o.head_dim)))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "the attention core (sdpa) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        name = type(module).__name__
        if name == "SHSA":
            return _shsa_text(module, ctx)
        if name == "SHMA":
            return _shma_text(module, ctx)
        return f"sdpa(heads={module.heads}, head_dim={module.head_dim})"


def _conv_norm(module: Any, cin: int, where: str) -> int:
    """The output channels of a conv1x1 (no bias) > BatchNorm2d pair (timm's Conv2dNorm, ConvNorm), or refused."""
    children = list(module.children())
    conv, bn = (children + [None, None])[:2]
    if (
        len(children) != 2
        or type(conv).__name__ != "Conv2d"
        or type(bn).__name__ != "BatchNorm2d"
        or conv.in_channels != cin
        or set(conv.kernel_size) != {1}
        or set(conv.stride) != {1}
        or conv.groups != 1
        or conv.padding not in ((0, 0), "valid")
        or conv.bias is not None
        or bn.num_features != conv.out_channels
        or not bn.affine
        or not bn.track_running_stats
    ):
        raise ImportRefused(f"{where}: a projection other than conv1x1 (no bias) > BatchNorm2d has no counterpart")
    return int(conv.out_channels)


def _shsa_text(module: Any, ctx: ImportContext) -> str:
    """timm's SHViT SHSA on a map (N, C, H, W): the first p channels through GroupNorm(1) > conv1x1 > BatchNorm
    (q, k of qk_dim, v of p) and one head of attention, concatenated with the other channels, then ReLU >
    conv1x1 > BatchNorm."""
    where = f"{ctx.node_name} (SHSA)"
    dim, p, qk = module.dim, module.pdim, module.qk_dim
    norm = module.pre_norm
    proj = list(module.proj.children())
    if (
        len(tuple(ctx.in_shape)) != 4
        or ctx.in_shape[1] != dim
        or not 0 < p < dim
        or type(norm).__name__ not in ("GroupNorm1", "GroupNorm")
        or norm.num_groups != 1
        or norm.num_channels != p
        or not norm.affine
        or _conv_norm(module.qkv, p, where) != 2 * qk + p
        or len(proj) != 2
        or type(proj[0]).__name__ != "ReLU"
        or _conv_norm(proj[1], dim, where) != dim
    ):
        raise ImportRefused(
            f"{where} is not SHViT's single-head attention as the language writes it (GroupNorm(1) > conv1x1 > "
            f"BatchNorm for q, k, v on the first channels of a map, ReLU > conv1x1 > BatchNorm after)"
        )
    return (
        f"concat(slice(0, {p}) > gn(groups=1) > conv1x1(->{2 * qk + p}) > bn > sdpa(heads=1, head_dim={qk}) "
        f"| slice({p}, {dim})) > relu > conv1x1(->{dim}) > bn"
    )


def _shma_text(module: Any, ctx: ImportContext) -> str:
    """timm's iFormer SHMA on a map (N, C, H, W), without windows: q and k by conv1x1 > BatchNorm, v and a gate by
    one conv1x1 > BatchNorm > sigmoid, one head of attention times the gate, then conv1x1 > BatchNorm."""
    where = f"{ctx.node_name} (SHMA)"
    shape = tuple(ctx.in_shape)
    if len(shape) != 4:
        raise ImportRefused(f"{where} attends over a value of shape {shape}, not a map (N, C, H, W)")
    if getattr(module, "window_size", None):
        raise ImportRefused(f"{where} attends inside windows (window_size > 0): the language's sdpa has no windows")
    dim = shape[1]
    a = _conv_norm(module.q, dim, where)
    gate2 = _conv_norm(module.v_gate, dim, where)
    if (
        _conv_norm(module.k, dim, where) != a
        or gate2 % 2
        or type(module.gate_act).__name__ != "Sigmoid"
        or _conv_norm(module.proj, gate2 // 2, where) != dim
    ):
        raise ImportRefused(
            f"{where} is not iFormer's single-head modulation attention as the language writes it (q, k, v and a "
            f"sigmoid gate by conv1x1 > BatchNorm, the attention times the gate, conv1x1 > BatchNorm after)"
        )
    m = gate2 // 2
    return (
        f"concat(conv1x1(->{a}) > bn | conv1x1(->{a}) > bn | conv1x1(->{gate2}) > bn > sigmoid) "
        f"> mul(slice(0, {2 * a + m}) > sdpa(heads=1, head_dim={a}) | slice({2 * a + m}, {2 * a + gate2})) "
        f"> conv1x1(->{dim}) > bn"
    )


KINDS = (AttentionCore(),)
