"""`xca(heads=h)` (docs/language.md, Cross-covariance attention; a paramsym extension): XCiT's attention across
the channels rather than the positions (El-Nouby et al. 2021; timm's `XCA`, and EdgeNeXt's `CrossCovarianceAttn`).

On a sequence T x d, one Linear gives q, k, v (d -> 3d, biased with `bias`); each of the h heads has e = d/h
channels; q and k are L2-normalised along the positions, their e x e cross-covariance q·kᵀ (times a learned
temperature per head) goes through a softmax, weighs the value channels, and a biased Linear d -> d projects.

Params: `3d² + d² + d + h` (`+ 3d` with `bias`). MACs: `T·3d²` (q, k, v) `+ 2·T·d²/h` (q·kᵀ and the weighted
values, e·e·T per head each) `+ T·d²` (the projection): what FlopCounterMode counts on timm's module (the
normalisations and the temperature are element-wise). KV cache: the keys and values, `2·T·d`.

PyTorch: paramsym's `CrossCovarianceAttention` (the operations of timm's XCA on (N, d, T)); timm's `XCA` and
`CrossCovarianceAttn` are imported whole.
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
class CrossCovarianceOptions(Options):
    heads: Expr


class CrossCovarianceAttention(Kind):
    key = "xca"
    names = ("xca",)
    keywords = frozenset({"heads"})
    flags = frozenset({"bias", "nobias"})
    torch_modules = (
        "CrossCovarianceAttention",
        "timm.models.xcit.XCA",
        "timm.models.edgenext.CrossCovarianceAttn",
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
                f"{call.name} attends across the channels of a sequence (T x d), but it has {what}",
                pos=call.pos,
                hint="make a map a sequence first: ... > tokens > xca(heads=8)",
            )
        d = shape.channels
        heads = args.scalar("heads")
        pos = args.keywords["heads"].pos
        args.constraints += whole_number(heads, "heads", pos)
        args.constraints += check_or_defer(
            d / heads, "integer", f"heads={heads} does not divide the {d} channels (each head has d/h of them)", pos
        )
        options = CrossCovarianceOptions(heads=heads)
        return make_layer(call, self, flow, shape, d, d, bias=args.bias, options=options)

    # ---- quantities
    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        h = CrossCovarianceOptions.of(layer).heads
        d = known(layer.cin)
        T = layer.in_shape.spatial[0] if layer.in_shape.spatial else None
        params = 4 * d * d + d + h + (3 * d if layer.bias else 0)
        parts = (times(T, 3 * d * d), times(T, 2 * d * d / h), times(T, d * d))
        macs = None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
        return {
            "params": params,
            "fan_in": d,
            "macs": macs,
            "connections": times(layer.out_shape.elements, d),
            "kv_cache": times(T, 2 * d),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        """In textbook symbols: C the channels, h the heads (one temperature each)."""
        h = t.named("h", CrossCovarianceOptions.of(layer).heads)
        return 4 * t.c * t.c + t.c + h + (3 * t.c if layer.bias else 0)

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        h = CrossCovarianceOptions.of(layer).heads
        return f", {words(h)} heads across the channels" + (", with bias" if layer.bias else "")

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        h = CrossCovarianceOptions.of(layer).heads
        d = known(layer.cin)
        lines = [
            f"XCiT's cross-covariance attention (a paramsym extension): a Linear gives queries, keys and values, "
            f"{w.product(d, 3 * d)} weights" + (f" + {w(3 * d)} biases" if layer.bias else "") + f"; {w(h)} heads "
            f"of {w(d / h)} channels attend across the channels (an e x e map per head, from q and k normalised "
            f"along the positions), with a learned temperature each ({w(h)} parameters); a Linear projects: "
            f"{w.product(d, d)} weights + {w(d)} biases.",
            f"{w(counts.params)} parameters.",
        ]
        if counts.macs is not None:
            lines.append(
                "MACs: the three projections, q·kᵀ and the weighted values (e·e per position and head each), and "
                f"the output projection: {w(counts.macs)}."
            )
        return lines

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        h = CrossCovarianceOptions.of(layer).heads
        return TorchSpec("CrossCovarianceAttention", (num(layer.cin), num(h)), {"qkv_bias": layer.bias})

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "cross-covariance attention (xca) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        where = f"{ctx.node_name} ({type(module).__name__})"
        qkv: Any = getattr(module, "qkv", None)
        proj: Any = getattr(module, "proj", None)
        temperature = getattr(module, "temperature", None)
        h = getattr(module, "num_heads", None)
        d: Any = ctx.in_shape[1] if len(ctx.in_shape) > 1 else None  # (N, d) or (N, d, T)
        if (
            type(qkv).__name__ != "Linear"
            or type(proj).__name__ != "Linear"
            or temperature is None
            or not isinstance(h, int)
            or (qkv.in_features, qkv.out_features) != (d, 3 * d)
            or (proj.in_features, proj.out_features) != (d, d)
            or proj.bias is None
            or tuple(temperature.shape) != (h, 1, 1)
            or d % h
        ):
            raise ImportRefused(
                f"{where} is not cross-covariance attention as the language writes it (a Linear d -> 3d for q, k, v, "
                f"a temperature per head, a biased Linear d -> d)"
            )
        return f"xca(heads={h}{', bias' if qkv.bias is not None else ''})"


KINDS = (CrossCovarianceAttention(),)
