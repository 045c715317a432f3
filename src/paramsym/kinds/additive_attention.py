"""`additiveattn` (docs/language.md, Additive attention; a paramsym extension): SwiftFormer's efficient additive
attention (Shaker et al. 2023; timm's `EfficientAdditiveAttention`), on a map H x W x d, its positions as T = H·W
tokens.

Two biased Linears d -> d give q and k, each L2-normalised along the channels; a learned vector w_g (d values)
scores each query (q·w_g, times d^-1/2), the scores are L2-normalised along the positions and weigh the queries'
sum into one global query g; g times each key (element-wise) goes through a biased Linear d -> d, q is added, and
a biased Linear d -> d gives the output, a map of the input's shape.

Params: `4d² + 5d`. MACs: `T·(4d² + d)` (q, k, the scores q·w_g, the two Linears after): what FlopCounterMode
counts on timm's module (the normalisations, the weighted sum and the products with g are element-wise).

PyTorch: paramsym's `AdditiveAttention` (timm's operations); timm's `EfficientAdditiveAttention` is imported whole
(one head, its token dimension the input's channels, as SwiftFormer builds it).
"""

from __future__ import annotations

from typing import Any

from ..core.records import KerasSpec, Layer, TorchSpec
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
    make_layer,
    refuse_keras,
    times,
    whole_input_field,
)


class AdditiveAttention(Kind):
    key = "additiveattn"
    names = ("additiveattn",)
    torch_modules = ("AdditiveAttention", "timm.models.swiftformer.EfficientAdditiveAttention")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        shape = flow.shape
        if shape.spatial is None or shape.channels is None or len(shape.spatial) != 2:
            what = "nothing known" if shape.spatial is None else f"the input {shape.describe()}"
            raise ParamsymShapeError(
                f"{call.name} attends over the positions of a map (H x W x d), but it has {what}",
                pos=call.pos,
                hint="SwiftFormer's attention reads a map: input(56x56x48) > additiveattn",
            )
        d = shape.channels
        return make_layer(call, self, flow, shape, d, d, bias=True)

    # ---- quantities
    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        d = known(layer.cin)
        T = layer.in_shape.positions
        return {
            "params": 4 * d * d + 5 * d,
            "fan_in": d,
            "macs": times(T, 4 * d * d + d),
            "connections": times(layer.out_shape.elements, d),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        """In textbook symbols: C the channels (four Linears C -> C with biases, and w_g)."""
        return 4 * t.c * t.c + 5 * t.c

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        return ", one global query from all positions"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        d = known(layer.cin)
        lines = [
            f"SwiftFormer's additive attention (a paramsym extension): Linears give queries and keys "
            f"({w.product(d, d)} weights + {w(d)} biases each), normalised; a learned vector ({w(d)} values) scores "
            f"each query, and the scores weigh the queries' sum into one global query; it multiplies each key, a "
            f"Linear projects and the queries are added, and a last Linear gives the output ({w.product(d, d)} "
            f"weights + {w(d)} biases each).",
            f"{w(counts.params)} parameters.",
        ]
        if counts.macs is not None:
            lines.append(f"MACs: the four Linears and the scores, at each position: {w(counts.macs)}.")
        return lines

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("AdditiveAttention", (num(layer.cin),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "SwiftFormer's additive attention (additiveattn) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        where = f"{ctx.node_name} ({type(module).__name__})"
        d: Any = ctx.in_shape[1] if len(ctx.in_shape) == 4 else None  # (N, d, H, W)
        linears = [getattr(module, n, None) for n in ("to_query", "to_key", "proj", "final")]
        w_g = getattr(module, "w_g", None)
        if (
            not isinstance(d, int)
            or any(type(m).__name__ != "Linear" or m.bias is None for m in linears)
            or any((m.in_features, m.out_features) != (d, d) for m in linears)
            or w_g is None
            or tuple(w_g.shape) != (d, 1)
            or abs(float(getattr(module, "scale_factor", 0.0)) - d**-0.5) > 1e-12
        ):
            raise ImportRefused(
                f"{where} is not additive attention as the language writes it (one head: biased Linears d -> d for "
                f"q, k, the projection and the output, a vector w_g of d, scores scaled by d^-1/2, on a map of d "
                f"channels)"
            )
        return "additiveattn"


KINDS = (AdditiveAttention(),)
