"""`talkattn(heads=h)` (docs/language.md, Talking heads and class-attention blocks; a paramsym extension): CaiT's
talking-heads attention (Touvron et al. 2021, after Shazeer et al. 2020; timm's `TalkingHeadAttn`).

On a sequence T x d: one Linear gives q, k, v (d -> 3d, biased with `bias`); each of the h heads has e = d/h
channels; the scores q·kᵀ of the h heads are mixed by a biased Linear h -> h over the head axis (`proj_l`) before
the softmax and by another (`proj_w`) after it, then weigh the values; a biased Linear d -> d projects.

Params: `3d² + d² + d + 2(h² + h)` (`+ 3d` with `bias`). MACs: `T·3d²` (q, k, v) `+ 2·T²·d` (q·kᵀ and the
weighted values) `+ 2·T²·h²` (the two head-mixing Linear layers, h·h per pair of positions each) `+ T·d²` (the
projection): what FlopCounterMode counts on timm's module. KV cache: the keys and values, `2·T·d`.

PyTorch: paramsym's `TalkingHeadAttention` (timm's operations on (N, d, T)); timm's `TalkingHeadAttn` is imported
whole.
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
    Template,
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
class TalkingHeadsOptions(Options):
    heads: Expr


class TalkingHeadsAttention(Kind):
    key = "talkattn"
    names = ("talkattn",)
    keywords = frozenset({"heads"})
    flags = frozenset({"bias", "nobias"})
    torch_modules = ("TalkingHeadAttention", "timm.models.cait.TalkingHeadAttn")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        if "heads" not in args.keywords:
            raise ParamsymArgumentError(
                f"{call.name} needs its number of heads: write {call.name}(heads=8)", pos=call.pos
            )
        shape = flow.shape
        if shape.spatial is None or shape.channels is None or len(shape.spatial) != 1:
            what = "nothing known" if shape.spatial is None else f"the input {shape.describe()}"
            raise ParamsymShapeError(
                f"{call.name} attends over the positions of a sequence (T x d), but it has {what}",
                pos=call.pos,
                hint="make a map a sequence first: ... > tokens > talkattn(heads=8)",
            )
        d = shape.channels
        heads = args.scalar("heads")
        pos = args.keywords["heads"].pos
        args.constraints += whole_number(heads, "heads", pos)
        args.constraints += check_or_defer(
            d / heads, "integer", f"heads={heads} does not divide the {d} channels (each head has d/h of them)", pos
        )
        return make_layer(call, self, flow, shape, d, d, bias=args.bias, options=TalkingHeadsOptions(heads=heads))

    # ---- quantities
    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        h = TalkingHeadsOptions.of(layer).heads
        d = known(layer.cin)
        T = layer.in_shape.spatial[0] if layer.in_shape.spatial else None
        params = 4 * d * d + d + 2 * (h * h + h) + (3 * d if layer.bias else 0)
        pairs = times(T, T)
        parts = (times(T, 4 * d * d), times(pairs, 2 * d), times(pairs, 2 * h * h))
        macs = None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
        return {
            "params": params,
            "fan_in": d,
            "macs": macs,
            "connections": times(layer.out_shape.elements, d),
            "kv_cache": times(T, 2 * d),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        """In textbook symbols: C the channels, h the heads (two h x h head-mixing Linear layers with biases)."""
        h = t.named("h", TalkingHeadsOptions.of(layer).heads)
        return 4 * t.c * t.c + t.c + 2 * (h * h + h) + (3 * t.c if layer.bias else 0)

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        h = TalkingHeadsOptions.of(layer).heads
        return f", {words(h)} talking heads" + (", with bias" if layer.bias else "")

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        h = TalkingHeadsOptions.of(layer).heads
        d = known(layer.cin)
        lines = [
            f"CaiT's talking-heads attention (a paramsym extension): a Linear gives queries, keys and values, "
            f"{w.product(d, 3 * d)} weights" + (f" + {w(3 * d)} biases" if layer.bias else "") + f"; the scores of "
            f"the {w(h)} heads are mixed across the heads by a Linear before the softmax and another after it "
            f"({w.product(h, h)} weights + {w(h)} biases each); a Linear projects: {w.product(d, d)} weights + "
            f"{w(d)} biases.",
            f"{w(counts.params)} parameters.",
        ]
        if counts.macs is not None:
            lines.append(
                "MACs: the three projections, q·kᵀ and the weighted values, the two head-mixing Linear layers "
                f"(h·h per pair of positions each) and the output projection: {w(counts.macs)}."
            )
        return lines

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        h = TalkingHeadsOptions.of(layer).heads
        return TorchSpec("TalkingHeadAttention", (num(layer.cin), num(h)), {"qkv_bias": layer.bias})

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "talking-heads attention (talkattn) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        where = f"{ctx.node_name} ({type(module).__name__})"
        qkv: Any = getattr(module, "qkv", None)
        proj: Any = getattr(module, "proj", None)
        mix: list[Any] = [getattr(module, name, None) for name in ("proj_l", "proj_w")]
        h = getattr(module, "num_heads", None)
        d: Any = ctx.in_shape[1] if len(ctx.in_shape) > 1 else None  # (N, d) or (N, d, T)
        if (
            type(qkv).__name__ != "Linear"
            or type(proj).__name__ != "Linear"
            or not isinstance(h, int)
            or any(type(m).__name__ != "Linear" or (m.in_features, m.out_features) != (h, h) for m in mix)
            or any(m.bias is None for m in mix)
            or (qkv.in_features, qkv.out_features) != (d, 3 * d)
            or (proj.in_features, proj.out_features) != (d, d)
            or proj.bias is None
            or d % h
        ):
            raise ImportRefused(
                f"{where} is not talking-heads attention as the language writes it (a Linear d -> 3d for q, k, v, "
                f"two biased Linear h -> h over the heads, a biased Linear d -> d)"
            )
        return f"talkattn(heads={h}{', bias' if qkv.bias is not None else ''})"


KINDS = (TalkingHeadsAttention(),)
