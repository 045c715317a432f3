"""`mla(heads=h, kv_rank=r, rope_dim=p, nope_dim=n, v_dim=v[, q_rank=q][, bias])` (docs/language.md,
Multi-head latent attention): DeepSeek-V2's and V3's attention (transformers' DeepseekV2Attention and
DeepseekV3Attention), causal, on a sequence T x d.

Every position's d channels are projected to a latent of r channels and one rotary key of p channels
(kv_a_proj_with_mqa, d -> r + p); the latent is normalised (kv_a_layernorm, an RMSNorm of r) and expanded to
every head's key without positions (n) and value (v) (kv_b_proj, r -> h·(n + v)); the rotary key is shared by
the h heads. The queries are h heads of n + p (q_proj, d -> h·(n + p); with `q_rank=q` a low-rank pair d -> q,
an RMSNorm of q, q -> h·(n + p): q_a_proj, q_a_layernorm, q_b_proj). Rotary positions turn the p channels of
the queries and of the shared key; the heads' values (h·v) are projected back to d (o_proj). `bias`
(transformers' attention_bias): biases on q_a_proj (or none on q_proj), kv_a_proj_with_mqa and o_proj, none on
q_b_proj and kv_b_proj, as transformers builds them.

    params = Q + d·(r + p) + r + r·h·(n + v) + h·v·d    [+ (q) + (r + p) + d with bias]
             Q = d·h·(n + p), or with q_rank: d·q + q + q·h·(n + p)
    MACs   = T·(Q' + d·(r + p) + r·h·(n + v) + h·v·d) + T²·h·(n + p) + T²·h·v
             Q' = Q without the norm's q
    KV cache = T·(r + p): the latent and the rotary key of every position, the architecture's cache (the keys and
               values are recomputed from them); transformers 5.23 keeps the same (k_nope and k_pe per layer)

The norms and the rotary turn are element-wise (no MACs that FlopCounterMode counts); the scores and weighted sums
cover all T x T pairs, the masked ones included, as FlopCounterMode counts scaled-dot-product attention
(tests/test_kind_mla.py compares all of it with transformers' module).

PyTorch: paramsym's `MultiHeadLatentAttention` (torch_modules, transformers' parameter names); transformers'
DeepseekV2Attention and DeepseekV3Attention are read whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

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
    Words,
    check_or_defer,
    known,
    make_layer,
    refuse_keras,
    times,
    whole_input_field,
    whole_number,
)

_REQUIRED = (("heads", "16"), ("kv_rank", "512"), ("rope_dim", "64"), ("nope_dim", "128"), ("v_dim", "128"))
_EXAMPLE = "mla(heads=16, kv_rank=512, rope_dim=64, nope_dim=128, v_dim=128)"


@dataclass(frozen=True)
class LatentAttentionOptions(Options):
    heads: Expr
    kv_rank: Expr  # r: the latent that the cache keeps
    rope_dim: Expr  # p: the rotary part of a query and key head (one key shared by the heads)
    nope_dim: Expr  # n: the part of a query and key head without positions
    v_dim: Expr  # v: a value head
    q_rank: Expr | None = None  # q: the low-rank query projection (q_lora_rank), or None for one projection


class LatentAttention(Kind):
    key = "mla"
    names = ("mla",)
    keywords = frozenset({"heads", "kv_rank", "rope_dim", "nope_dim", "v_dim", "q_rank"})
    flags = frozenset({"bias", "nobias"})
    torch_modules = (
        "paramsym.frameworks.torch_modules.MultiHeadLatentAttention",
        "transformers.models.deepseek_v2.modeling_deepseek_v2.DeepseekV2Attention",
        "transformers.models.deepseek_v3.modeling_deepseek_v3.DeepseekV3Attention",
    )

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        for key, example in _REQUIRED:
            if key not in args.keywords:
                raise ParamsymArgumentError(
                    f"{call.name} needs {key}=: write e.g. {_EXAMPLE} (DeepSeek-V2-Lite's)",
                    pos=call.pos,
                    hint=f"give {key}={example}",
                )
        shape = flow.shape
        if shape.rank != 1 or shape.channels is None:
            raise ParamsymShapeError(
                f"{call.name} is causal attention over a sequence, but its input is "
                f"{shape.describe() if shape.rank is not None else 'of unknown shape'}",
                pos=call.pos,
                hint="give it a sequence T x d, e.g. input(T) > embed(V->d) > mla(...)",
            )
        constraints = list(args.constraints)
        values = {}
        for key in (*(k for k, _ in _REQUIRED), "q_rank"):
            if key not in args.keywords:
                continue
            value = known(args.scalar(key))
            constraints += whole_number(value, f"{key}=", args.keywords[key].pos)
            values[key] = value
        # the rotary part turns pairs of channels (transformers' rotate_half; PyTorch refuses an odd one)
        constraints += check_or_defer(
            values["rope_dim"] / 2,
            "integer",
            f"rope_dim={values['rope_dim']}: rotary positions turn pairs of channels, but it is odd",
            args.keywords["rope_dim"].pos,
            shown=values["rope_dim"],
            hint="give an even rope_dim= (DeepSeek's is 64)",
        )
        options = LatentAttentionOptions(
            heads=values["heads"],
            kv_rank=values["kv_rank"],
            rope_dim=values["rope_dim"],
            nope_dim=values["nope_dim"],
            v_dim=values["v_dim"],
            q_rank=values.get("q_rank"),
        )
        d = shape.channels
        return make_layer(
            call,
            self,
            flow,
            Shape(shape.spatial, d),
            d,
            d,
            bias=args.bias,
            options=options,
            constraints=tuple(constraints),
        )

    @staticmethod
    def parts(layer: Layer) -> dict[str, Expr]:
        """The weights of each projection (without norms and biases), per position = their MACs."""
        o = LatentAttentionOptions.of(layer)
        d, h, r, p, n, v = known(layer.cin), o.heads, o.kv_rank, o.rope_dim, o.nope_dim, o.v_dim
        query = d * h * (n + p) if o.q_rank is None else d * o.q_rank + o.q_rank * h * (n + p)
        return {"query": query, "latent": d * (r + p), "expand": r * h * (n + v), "output": h * v * d}

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = LatentAttentionOptions.of(layer)
        d, h = known(layer.cin), o.heads
        weights = sympy.Add(*self.parts(layer).values())
        norms = o.kv_rank + (o.q_rank if o.q_rank is not None else 0)
        biases = (o.q_rank if o.q_rank is not None else 0) + o.kv_rank + o.rope_dim + d if layer.bias else 0
        T = layer.in_shape.positions
        projections = times(T, weights)
        scores = times(T, T, h * (o.nope_dim + o.rope_dim + o.v_dim))
        # the widths the projections that read the input give: the queries (or their rank) and the latent's r + p
        read = (h * (o.nope_dim + o.rope_dim) if o.q_rank is None else o.q_rank) + o.kv_rank + o.rope_dim
        return {
            "params": sympy.expand(weights + norms + biases),
            "fan_in": d,
            "macs": None if projections is None or scores is None else sympy.expand(projections + scores),
            "connections": times(layer.out_shape.elements, d),
            "kv_cache": times(T, o.kv_rank + o.rope_dim),
            # core/compute.py: the score and value products, of which a fused causal kernel computes the T(T+1)/2
            # unmasked pairs; with an input that needs no gradient, no gradient of the input through the
            # projections that read it (q_proj or q_a_proj, kv_a_proj_with_mqa)
            "attention_macs": scores,
            "fused_skip": None if T is None or scores is None else sympy.expand(scores - scores * (T + 1) / (2 * T)),
            "backward_first": None
            if T is None or projections is None or scores is None
            else sympy.expand(2 * (projections + scores) - T * d * read),
        }

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)

    def header(self, layer: Layer, words: Words) -> str:
        o = LatentAttentionOptions.of(layer)
        return (
            f", {words(o.heads)} heads, causal, a latent of {words(o.kv_rank)} and a rotary key of {words(o.rope_dim)}"
        )

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = LatentAttentionOptions.of(layer)
        d, h, r, p, n, v = known(layer.cin), o.heads, o.kv_rank, o.rope_dim, o.nope_dim, o.v_dim
        parts = self.parts(layer)
        query = (
            f"The queries: {w(h)} heads of {w(n)} + {w(p)} channels from the {w(d)} inputs, "
            f"{w(parts['query'])} weights."
            if o.q_rank is None
            else f"The queries through a rank of {w(o.q_rank)}: {w(d)} -> {w(o.q_rank)}, an RMSNorm "
            f"({w(o.q_rank)} weights), then {w(h)} heads of {w(n)} + {w(p)} channels: "
            f"{w(parts['query'])} weights and {w(o.q_rank)} of the norm."
        )
        lines = [
            "Multi-head latent attention (DeepSeek-V2/V3), causal: each position is compressed to a latent that "
            "the cache keeps and the heads' keys and values are expanded from.",
            query,
            f"The latent and the shared rotary key: {w(d)} -> {w(r)} + {w(p)} ({w(parts['latent'])} weights), an "
            f"RMSNorm of the latent ({w(r)} weights), then the latent expanded to {w(h)} keys of {w(n)} and values "
            f"of {w(v)} ({w(parts['expand'])} weights).",
            f"The heads' {w(h * v)} values back to {w(d)} channels: {w(parts['output'])} weights.",
        ]
        if layer.bias:
            lines.append(
                "Biases on "
                + ("the first query projection, " if o.q_rank is not None else "")
                + f"the latent projection and the output (not on the query{' expansion' if o.q_rank else ''} or "
                f"the key-value expansion), as transformers' attention_bias."
            )
        lines += [
            f"Together {w(counts.params)} parameters. MACs: the projections at every position, and the scores "
            f"and weighted sums of every pair of positions (the masked ones too, as FlopCounterMode counts).",
            f"KV cache: the latent and the rotary key of every position, {w(r + p)} values each "
            f"({w(counts.kv_cache)}); the keys and values of all heads would be {w(h * (n + p + v))}.",
        ]
        return lines

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = LatentAttentionOptions.of(layer)
        args = (num(layer.cin), num(o.heads), num(o.kv_rank), num(o.rope_dim), num(o.nope_dim), num(o.v_dim))
        kwargs: dict[str, Any] = {"bias": layer.bias}
        if o.q_rank is not None:
            kwargs["q_rank"] = num(o.q_rank)
        return TorchSpec("MultiHeadLatentAttention", args, kwargs)

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "multi-head latent attention (mla) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return latent_attention_text(module, f"{ctx.node_name} ({type(module).__name__})")


def latent_attention_text(module: Any, where: str) -> str:
    """`mla(...)` for transformers' DeepseekV2Attention / DeepseekV3Attention or paramsym's
    MultiHeadLatentAttention (the same attribute names), or refused where its projections are not that layout."""
    h, r, p = module.num_heads, module.kv_lora_rank, module.qk_rope_head_dim
    n, v, q = module.qk_nope_head_dim, module.v_head_dim, module.q_lora_rank
    d = module.kv_a_proj_with_mqa.in_features
    bias = module.o_proj.bias is not None
    linears = {
        "kv_a_proj_with_mqa": (d, r + p, bias),
        "kv_b_proj": (r, h * (n + v), False),
        "o_proj": (h * v, d, bias),
        **(
            {"q_proj": (d, h * (n + p), False)}
            if q is None
            else {"q_a_proj": (d, q, bias), "q_b_proj": (q, h * (n + p), False)}
        ),
    }
    norms = {"kv_a_layernorm": r, **({"q_a_layernorm": q} if q is not None else {})}
    for name, (cin, cout, has_bias) in linears.items():
        layer: Any = getattr(module, name, None)
        if (
            type(layer).__name__ != "Linear"
            or (layer.in_features, layer.out_features) != (cin, cout)
            or (layer.bias is not None) != has_bias
        ):
            raise ImportRefused(
                f"{where}: {name} is not Linear({cin}, {cout}{', bias' if has_bias else ', no bias'}), the layout "
                f"of multi-head latent attention that mla counts"
            )
    for name, width in norms.items():
        norm = getattr(module, name, None)
        weights = [tuple(t.shape) for t in norm.parameters()] if norm is not None else None
        if norm is None or "RMSNorm" not in type(norm).__name__ or weights != [(width,)]:
            raise ImportRefused(f"{where}: {name} is not an RMSNorm of {width} with its weight")
    if q is None and getattr(module, "q_a_proj", None) is not None:
        raise ImportRefused(f"{where}: both q_proj and q_a_proj: not a layout that mla counts")
    options = [f"heads={h}", f"kv_rank={r}", f"rope_dim={p}", f"nope_dim={n}", f"v_dim={v}"]
    options += [f"q_rank={q}"] if q is not None else []
    options += ["bias"] if bias else []
    return f"mla({', '.join(options)})"


KINDS = (LatentAttention(),)
