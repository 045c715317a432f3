"""`clsblock(heads=h)` (docs/language.md, Talking heads and class-attention blocks; a paramsym extension): a
class-attention block (CaiT, Touvron et al. 2021; XCiT), on a sequence T x d whose first position is the class
token.

Class attention: one Linear d -> d gives the query of the class token alone, two more the keys and values of all
T positions (biased with `bias`); h heads of e = d/h channels; softmax over the T keys; a biased Linear d -> d
gives one vector. CaiT's block (timm's `LayerScaleBlockClassAttn`, the default): the class token c becomes
c + γ₁·attn(LN₁(x)), then c + γ₂·MLP(LN₂(c)) (a biased Linear d -> H, GELU, a biased Linear H -> d; H = 4d
unless `hidden=H`), the other positions pass unchanged. With `xcit`, XCiT's `ClassAttentionBlock` as timm computes
it: the other positions also take LN₁ and the residuals, LN₂ acts on all positions with `tokensnorm`, on the class
token alone without; the MLP acts on the class token alone either way.

Params: `4d² + d (+ 3d with bias)` (class attention) `+ 4d` (two LayerNorms) `+ 2dH + H + d` (the MLP) `+ 2d` (γ₁,
γ₂). MACs: `d²` (the class token's query) `+ 2·T·d²` (keys and values) `+ 2·T·d` (the scores and the weighted
values, e per key and head each) `+ d²` (the projection) `+ 2dH` (the MLP on one position): what FlopCounterMode
counts on timm's modules (norms, scales and additions are element-wise). KV cache: `2·T·d`.

PyTorch: paramsym's `ClassTokenBlock` on (N, d, T). Import: timm's XCiT `ClassAttentionBlock` whole; CaiT's
`LayerScaleBlockClassAttn` (which takes the patches and the class token apart, `blk(x, cls)`) is read by the
importer with the class token it runs on (`cls > clsblock(...) > clsblock(...)`).
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

# the class attention inside the blocks the kind imports: timm's (CaiT's, which XCiT uses too) and paramsym's
_CLASS_ATTENTION = ("timm.models.cait.ClassAttn", "paramsym.frameworks.torch_modules._ClassAttention")


@dataclass(frozen=True)
class ClassBlockOptions(Options):
    heads: Expr
    hidden: Expr
    xcit: bool
    tokens_norm: bool


class ClassAttentionBlock(Kind):
    key = "clsblock"
    names = ("clsblock",)
    keywords = frozenset({"heads", "hidden"})
    flags = frozenset({"bias", "nobias", "xcit", "tokensnorm"})
    torch_modules = (
        "ClassTokenBlock",
        "timm.models.xcit.ClassAttentionBlock",
        "timm.models.cait.LayerScaleBlockClassAttn",
    )

    @staticmethod
    def class_token_apart(module: Any) -> bool:
        """Whether the module takes the patches and the class token apart, `blk(x, cls)` (CaiT's), read by the
        importer on the sequence the language writes (`cls > clsblock(...)`)."""
        return type(module).__name__ == "LayerScaleBlockClassAttn"

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        if "heads" not in args.keywords:
            raise ParamsymArgumentError(
                f"{call.name} needs its number of heads: write {call.name}(heads=8)", pos=call.pos
            )
        if "tokensnorm" in args.flags and "xcit" not in args.flags:
            raise ParamsymArgumentError(
                f"{call.name}: tokensnorm is XCiT's option (its LN₂ on every position): write "
                f"{call.name}(..., xcit, tokensnorm)",
                pos=call.pos,
            )
        shape = flow.shape
        if shape.spatial is None or shape.channels is None or len(shape.spatial) != 1:
            what = "nothing known" if shape.spatial is None else f"the input {shape.describe()}"
            raise ParamsymShapeError(
                f"{call.name} updates the class token of a sequence (T x d, the class token first), but it has {what}",
                pos=call.pos,
                hint="give the sequence its class token first: ... > tokens > cls > clsblock(heads=8)",
            )
        d = shape.channels
        heads = args.scalar("heads")
        pos = args.keywords["heads"].pos
        args.constraints += whole_number(heads, "heads", pos)
        args.constraints += check_or_defer(
            d / heads, "integer", f"heads={heads} does not divide the {d} channels (each head has d/h of them)", pos
        )
        hidden = 4 * d
        if "hidden" in args.keywords:
            hidden = args.scalar("hidden")
            args.constraints += whole_number(hidden, "hidden", args.keywords["hidden"].pos)
        options = ClassBlockOptions(
            heads=heads, hidden=hidden, xcit="xcit" in args.flags, tokens_norm="tokensnorm" in args.flags
        )
        return make_layer(call, self, flow, shape, d, d, bias=args.bias, options=options)

    # ---- quantities
    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        H = ClassBlockOptions.of(layer).hidden
        d = known(layer.cin)
        T = layer.in_shape.spatial[0] if layer.in_shape.spatial else None
        params = 4 * d * d + d + (3 * d if layer.bias else 0) + 4 * d + 2 * d * H + H + d + 2 * d
        keys = times(T, 2 * d * d + 2 * d)
        macs = None if keys is None else keys + 2 * d * d + 2 * d * H
        return {
            "params": params,
            "fan_in": d,
            "macs": macs,
            "connections": times(layer.out_shape.elements, d),
            "kv_cache": times(T, 2 * d),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        """In textbook symbols: C the channels, H the MLP's hidden width."""
        H = t.named("H", ClassBlockOptions.of(layer).hidden)
        return 4 * t.c * t.c + 8 * t.c + 2 * t.c * H + H + (3 * t.c if layer.bias else 0)

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        o = ClassBlockOptions.of(layer)
        return (
            f", {words(o.heads)} heads, MLP of {words(o.hidden)}"
            + (", with bias" if layer.bias else "")
            + (", XCiT's" if o.xcit else "")
        )

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = ClassBlockOptions.of(layer)
        d = known(layer.cin)
        lines = [
            f"A class-attention block ({'XCiT' if o.xcit else 'CaiT'}'s; a paramsym extension): the class token "
            f"(the first position) alone asks, every position answers. Queries, keys and values: three Linear "
            f"layers of {w.product(d, d)} weights" + (f" + {w(d)} biases each" if layer.bias else "") + f"; "
            f"{w(o.heads)} heads; a Linear projects: {w.product(d, d)} weights + {w(d)} biases. Two LayerNorms "
            f"({w(2 * d)} each), an MLP on the class token ({w.product(d, o.hidden)} + {w(o.hidden)}, "
            f"{w.product(o.hidden, d)} + {w(d)}) and two layer scales ({w(d)} each).",
            f"{w(counts.params)} parameters.",
        ]
        if counts.macs is not None:
            lines.append(
                "MACs: the class token's query, the keys and values of every position, the scores and the weighted "
                f"values, the projection and the MLP on one position: {w(counts.macs)}."
            )
        return lines

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = ClassBlockOptions.of(layer)
        return TorchSpec(
            "ClassTokenBlock",
            (num(layer.cin), num(o.heads), num(o.hidden)),
            {"qkv_bias": layer.bias, "xcit": o.xcit, "tokens_norm": o.tokens_norm},
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "class attention (clsblock) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        where = f"{ctx.node_name} ({type(module).__name__})"
        d: Any = ctx.in_shape[1] if len(ctx.in_shape) > 1 else None  # (N, d) or (N, d, T)
        name = type(module).__name__
        xcit = name == "ClassAttentionBlock" or bool(getattr(module, "xcit", False))
        tokens_norm = bool(getattr(module, "tokens_norm", False))
        gammas: list[Any] = [
            getattr(module, n, None)
            for n in (("gamma1", "gamma2") if name != "LayerScaleBlockClassAttn" else ("gamma_1", "gamma_2"))
        ]
        attn: Any = getattr(module, "attn", None)
        mlp: Any = getattr(module, "mlp", None)
        norms: list[Any] = [getattr(module, n, None) for n in ("norm1", "norm2")]
        layers: list[Any] = [getattr(attn, n, None) for n in ("q", "k", "v", "proj")]
        fc1: Any
        act: Any
        fc2: Any
        fc1, act, fc2 = (
            (mlp[0], mlp[1], mlp[2])
            if type(mlp).__name__ == "Sequential" and len(mlp) == 3
            else (getattr(mlp, "fc1", None), getattr(mlp, "act", None), getattr(mlp, "fc2", None))
        )
        h = getattr(attn, "num_heads", None)
        extra: list[Any] = [getattr(mlp, n, None) for n in ("norm",)] if type(mlp).__name__ == "Mlp" else []
        hidden = getattr(fc1, "out_features", None)

        def linear(m: Any, cin: Any, cout: Any) -> bool:
            return type(m).__name__ == "Linear" and (m.in_features, m.out_features) == (cin, cout)

        if (
            not isinstance(h, int)
            or not isinstance(d, int)
            or d % h
            or f"{type(attn).__module__}.{type(attn).__qualname__}" not in _CLASS_ATTENTION
            or not all(linear(m, d, d) for m in layers)
            or len({m.bias is not None for m in layers[:3]}) != 1
            or layers[3].bias is None
            or any(type(n).__name__ != "LayerNorm" or tuple(n.normalized_shape) != (d,) for n in norms)
            or any(n.weight is None or n.bias is None for n in norms)
            or not linear(fc1, d, hidden)
            or not linear(fc2, hidden, d)
            or fc1.bias is None
            or fc2.bias is None
            or type(act).__name__ != "GELU"
            or getattr(act, "approximate", "none") != "none"
            or any(type(m).__name__ not in ("Identity", "NoneType") for m in extra)
            or any(getattr(g, "shape", None) is None or tuple(g.shape) != (d,) for g in gammas)
        ):
            raise ImportRefused(
                f"{where} is not a class-attention block as the language's clsblock writes it (LayerNorm, class "
                f"attention of three Linear d -> d and a biased projection, LayerNorm, an MLP Linear > GELU > Linear "
                f"with biases, a layer scale of d after each)"
            )
        parts = [f"heads={h}"] + [f"hidden={hidden}"] * (hidden != 4 * d) + ["bias"] * (layers[0].bias is not None)
        parts += ["xcit"] * xcit + ["tokensnorm"] * (xcit and tokens_norm)
        return f"clsblock({', '.join(parts)})"


KINDS = (ClassAttentionBlock(),)
