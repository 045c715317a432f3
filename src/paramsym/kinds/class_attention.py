"""`clsattn(heads=h)` (docs/language.md, Class attention; a paramsym extension): attention in which only the first
position (the class token) asks: CaiT's class attention (Touvron et al. 2021; timm's `ClassAttn`) and CrossViT's
cross-attention between one branch's class token and the other branch's tokens (timm's `CrossAttention`); VOLO's
class attention (timm's `volo.ClassAttention`: its keys and values from one Linear d -> 2d, the same counts).

On a sequence T x d, three Linears d -> d (biased with `bias`) give the query of the first position and the keys
and values of all T; each of the h heads has e = d/h channels; the query's softmax over the T keys weighs the
values, and a biased Linear d -> d projects. The output is that one position, `1 x d`.

Params: `4d² + d` (`+ 3d` with `bias`). MACs: `d²` (the query) `+ 2·T·d²` (the keys and values) `+ 2·T·d` (q·kᵀ
and the weighted values, T·e per head each) `+ d²` (the projection): what FlopCounterMode counts on timm's modules
(the softmax and the scale are element-wise). KV cache: the keys and values, `2·T·d`.

PyTorch: paramsym's `ClassAttention` (the operations of timm's modules on (N, d, T)); timm's `ClassAttn` and
crossvit's `CrossAttention` are imported whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sympy import Integer

from ..core.records import KerasSpec, Layer, Options, Shape, TorchSpec
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
class ClassAttentionOptions(Options):
    heads: Expr


class ClassAttention(Kind):
    key = "clsattn"
    names = ("clsattn",)
    keywords = frozenset({"heads"})
    flags = frozenset({"bias", "nobias"})
    torch_modules = (
        "ClassAttention",
        "timm.models.cait.ClassAttn",
        "timm.models.crossvit.CrossAttention",
        "timm.models.volo.ClassAttention",
    )

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        if "heads" not in args.keywords:
            raise ParamsymArgumentError(
                f"{call.name} needs its number of heads: write {call.name}(heads=8)", pos=call.pos
            )
        shape = flow.shape
        if shape.spatial is None or shape.channels is None or len(shape.spatial) != 1:
            what = "nothing known" if shape.spatial is None else f"the input {shape.describe()}"
            raise ParamsymShapeError(
                f"{call.name}: the first position of a sequence (T x d) attends to all of them, but it has {what}",
                pos=call.pos,
                hint="make a map a sequence first: ... > tokens > cls > clsattn(heads=8)",
            )
        d = shape.channels
        heads = args.scalar("heads")
        pos = args.keywords["heads"].pos
        args.constraints += whole_number(heads, "heads", pos)
        args.constraints += check_or_defer(
            d / heads, "integer", f"heads={heads} does not divide the {d} channels (each head has d/h of them)", pos
        )
        options = ClassAttentionOptions(heads=heads)
        return make_layer(call, self, flow, Shape((Integer(1),), d), d, d, bias=args.bias, options=options)

    # ---- quantities
    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        d = known(layer.cin)
        T = layer.in_shape.spatial[0] if layer.in_shape.spatial else None
        params = 4 * d * d + d + (3 * d if layer.bias else 0)
        parts = (times(T, 2 * d * d), times(T, 2 * d))
        macs = None if any(p is None for p in parts) else 2 * d * d + sum(p for p in parts if p is not None)
        return {
            "params": params,
            "fan_in": d,
            "macs": macs,
            "connections": times(layer.out_shape.elements, d),
            "kv_cache": times(T, 2 * d),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        """In textbook symbols: C the channels."""
        return 4 * t.c * t.c + t.c + (3 * t.c if layer.bias else 0)

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        h = ClassAttentionOptions.of(layer).heads
        return f", {words(h)} heads, the first position asking" + (", with bias" if layer.bias else "")

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        h = ClassAttentionOptions.of(layer).heads
        d = known(layer.cin)
        bias = f" + {w(3 * d)} biases" if layer.bias else ""
        lines = [
            f"Class attention (a paramsym extension; CaiT, CrossViT): three Linears give the first position's query "
            f"and every position's keys and values, {w(3)}·{w.product(d, d)} weights{bias}; {w(h)} heads of "
            f"{w(d / h)} channels; the query's softmax over the keys weighs the values, a Linear projects: "
            f"{w.product(d, d)} weights + {w(d)} biases. The output is the one position.",
            f"{w(counts.params)} parameters.",
        ]
        if counts.macs is not None:
            lines.append(
                "MACs: the query, the keys and values of every position, q·kᵀ and the weighted values, and the "
                f"projection: {w(counts.macs)}."
            )
        return lines

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        h = ClassAttentionOptions.of(layer).heads
        return TorchSpec("ClassAttention", (num(layer.cin), num(h)), {"qkv_bias": layer.bias})

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "class attention (clsattn) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        where = f"{ctx.node_name} ({type(module).__name__})"
        fused = hasattr(module, "kv") and not hasattr(module, "k")  # VOLO's: one Linear d -> 2d for the keys and values
        names = ("wq", "wk", "wv") if hasattr(module, "wq") else ("q", "kv") if fused else ("q", "k", "v")
        linears: list[Any] = [getattr(module, n, None) for n in names]
        proj: Any = getattr(module, "proj", None)
        h = getattr(module, "num_heads", None)
        d: Any = ctx.in_shape[1] if len(ctx.in_shape) > 1 else None  # (N, d) or (N, d, T)
        widths = [(d, d), (d, 2 * d)] if fused else [(d, d)] * 3
        if (
            any(type(m).__name__ != "Linear" for m in (*linears, proj))
            or not isinstance(h, int)
            or any((m.in_features, m.out_features) != width for m, width in zip(linears, widths))
            or (proj.in_features, proj.out_features) != (d, d)
            or (fused and getattr(module, "head_dim", None) != d // h)
            or proj.bias is None
            or len({m.bias is None for m in linears}) != 1
            or d % h
        ):
            raise ImportRefused(
                f"{where} is not class attention as the language writes it (three Linears d -> d for the query, "
                f"the keys and the values, or VOLO's one Linear d -> 2d for both, a biased Linear d -> d)"
            )
        return f"clsattn(heads={h}{', bias' if linears[0].bias is not None else ''})"


KINDS = (ClassAttention(),)
