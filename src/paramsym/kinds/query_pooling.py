"""`qpoolattn(heads=h[, ->D], window=w, stride=s[, pad, bias])` (docs/language.md, Attention; a paramsym extension
for Hiera and HieraDet/SAM2): multi-head attention on a map H x W x d whose queries are max pooled. qkv projects
every position to D-channel queries, keys and values (D = d without `->D`; h heads of D/h), the queries are max
pooled over s x s positions with stride s, each pooled query attends to the keys of its w x w window (to every
position without `window=`), and the output projection D -> D gives the pooled map ⌊H/s⌋ x ⌊W/s⌋ x D.

With `window=w` the windows are w x w blocks of the map (s divides w: the pooled queries of a window stay in it);
with `pad` the map is padded at the bottom and right to a multiple of w first (the padded positions are projected
and attended to, then cut off), as HieraDet's MultiScaleBlock does. Without `window=` the queries are pooled over
the whole map as nn.MaxPool2d(s) pools it (rounding down).

Counts, with P the positions projected (the padded map's with `pad`), Q the pooled queries (P/s² in windows,
⌊H/s⌋·⌊W/s⌋ without) and K the keys each one scores (w², or H·W):
  params = 3·d·D + D² (+ 3·D + D with `bias`)
  MACs   = P·d·3·D + 2·Q·K·D + Q·D·D   (qkv, the scores and the weighted sums, proj: what FlopCounterMode counts;
                                       the max pooling is comparisons, which it counts as none)
  KV cache = 2·P·D

These are timm's hieradet_sam2.MultiScaleAttention (with its block's window partition) and hiera.MaskUnitAttention
(mask units are the windows: its tokens are unrolled so that a window's tokens, and a pooling's s x s positions,
are contiguous, an order that changes no count). PyTorch: paramsym's `QueryPoolingAttention`; Keras: none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..core.records import KerasSpec, Layer, Options, Shape, TorchSpec
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError
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
    Words,
    check_or_defer,
    input_channels,
    known,
    make_layer,
    refuse_keras,
    times,
    whole_input_field,
)


@dataclass(frozen=True)
class QueryPoolingOptions(Options):
    heads: Expr
    window: Expr | None  # the side of a window of keys (None: every position)
    stride: Expr  # the queries' max pooling, s x s with stride s (1: none)
    pad: bool  # the map padded at the bottom and right to a multiple of the window


def _padded(n: Expr, options: QueryPoolingOptions) -> Expr:
    """An axis of n as the attention projects it: padded up to a multiple of the window with `pad`."""
    w = options.window
    return sympy.ceiling(n / w) * w if w is not None and options.pad else n


class QueryPoolingAttention(Kind):
    key = "qpoolattn"
    names = ("qpoolattn",)
    keywords = frozenset({"heads", "window", "stride"})
    flags = frozenset({"bias", "nobias", "pad"})
    takes_channels = True
    torch_modules = ("QueryPoolingAttention",)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        if "heads" not in args.keywords:
            raise ParamsymArgumentError(
                f"{call.name} needs its number of heads: write {call.name}(heads=2, window=8, stride=2)", pos=call.pos
            )
        shape = flow.shape
        if shape.rank != 2:
            raise ParamsymShapeError(
                f"{call.name} pools the queries over a map, but its input is {shape.describe()}",
                pos=call.pos,
                notes=((f"it comes from {flow.source[0]}", flow.source[1]),) if flow.source else (),
                hint="qpoolattn takes a map H x W x d (untokens(HxW) lays a sequence out as one)",
            )
        d = input_channels(call, flow, args)
        width = args.channels.cout if args.channels is not None else d
        constraints: list[Constraint] = list(args.constraints)
        heads = known(args.scalar("heads"))
        constraints += check_or_defer(
            width / heads,
            "integer",
            f"heads={heads} does not divide the width {width}",
            args.keywords["heads"].pos,
            hint="the heads split the D channels of the queries, keys and values",
        )
        window = args.scalar("window")
        stride = args.scalar("stride", sympy.Integer(1))
        if "pad" in args.flags and window is None:
            raise ParamsymArgumentError(
                "'pad' pads the map to a multiple of the window: it needs window=", pos=args.flags["pad"].pos
            )
        height, across = shape.spatial or (None, None)
        if window is not None:
            wpos = args.keywords["window"].pos
            constraints += check_or_defer(
                window / stride,
                "integer",
                f"stride={stride} does not divide the window {window} (the pooled queries of a window stay in it)",
                args.keywords.get("stride", args.keywords["window"]).pos,
            )
            if "pad" not in args.flags:
                for n in (height, across):
                    if n is not None:
                        constraints += check_or_defer(
                            n / window,
                            "integer",
                            f"window={window} does not divide the map's side {n}",
                            wpos,
                            shown=n,
                            hint="add 'pad' to pad the map at the bottom and right to a multiple of the window",
                        )
        options = QueryPoolingOptions(heads=heads, window=window, stride=stride, pad="pad" in args.flags)
        for n in (height, across):
            if n is not None:
                constraints += check_or_defer(
                    n - stride, "nonnegative", f"stride={stride} pools the queries beyond the map's side {n}", call.pos
                )
        spatial = tuple(None if n is None else sympy.floor(n / stride) for n in (height, across))
        return make_layer(
            call,
            self,
            flow,
            Shape(spatial, width),
            d,
            width,
            bias=args.bias,
            options=options,
            constraints=tuple(constraints),
        )

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = QueryPoolingOptions.of(layer)
        d, D = known(layer.cin), known(layer.cout)
        params = 3 * d * D + D * D + (4 * D if layer.bias else 0)
        height, across = layer.in_shape.spatial or (None, None)
        if height is None or across is None:
            return {"params": params, "fan_in": d}
        projected = _padded(height, o) * _padded(across, o)
        if o.window is not None:
            queries, keys = projected / o.stride**2, o.window**2
        else:
            queries, keys = layer.out_shape.positions, height * across
        macs = projected * d * 3 * D + 2 * queries * keys * D + queries * D * D
        return {
            "params": params,
            "fan_in": d,
            "macs": macs,
            "connections": times(layer.out_shape.elements, d),
            "kv_cache": 2 * projected * D,
        }

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)

    def header(self, layer: Layer, words: Words) -> str:
        o = QueryPoolingOptions.of(layer)
        where = f" in {words(o.window)}x{words(o.window)} windows" if o.window is not None else ""
        return f", {words(o.heads)} heads{where}, queries max pooled {words(o.stride)}x{words(o.stride)}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = QueryPoolingOptions.of(layer)
        d, D = known(layer.cin), known(layer.cout)
        keys = (
            f"the keys of its {w(o.window)}x{w(o.window)} window"
            + (" (the map padded at the bottom and right to a multiple of the window)" if o.pad else "")
            if o.window is not None
            else "the keys of every position"
        )
        bias = f" Plus {w(4 * D)} biases (qkv and proj)." if layer.bias else " No biases."
        sentences = [
            f"Attention with pooled queries (a paramsym extension): qkv projects each position's {w(d)} channels to "
            f"queries, keys and values of {w(D)} each ({w(d)}·3·{w(D)} weights), {w(o.heads)} heads of "
            f"{w(D / o.heads)}; the queries are max pooled over {w(o.stride)}x{w(o.stride)} positions (stride "
            f"{w(o.stride)}), and each pooled query attends to {keys}; proj maps the {w(D)} channels back "
            f"({w(D)}·{w(D)} weights).{bias} {w(counts.params)} parameters.",
        ]
        height, across = layer.in_shape.spatial or (None, None)
        if counts.macs is not None and height is not None and across is not None:
            projected = _padded(height, o) * _padded(across, o)
            queries = projected / o.stride**2 if o.window is not None else known(layer.out_shape.positions)
            keys = o.window**2 if o.window is not None else height * across
            sentences.append(
                f"The MACs: qkv at {w(projected)} positions ({w(projected * d * 3 * D)}), each of the {w(queries)} "
                f"pooled queries scoring and summing {w(keys)} keys ({w(2 * queries * keys * D)}), proj at the "
                f"{w(queries)} pooled positions ({w(queries * D * D)})."
            )
        return sentences

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = QueryPoolingOptions.of(layer)
        kwargs: dict[str, Any] = {"stride": num(o.stride), "bias": layer.bias, "pad": o.pad}
        if o.window is not None:
            kwargs["window"] = num(o.window)
        return TorchSpec("QueryPoolingAttention", (num(known(layer.cin)), num(known(layer.cout)), num(o.heads)), kwargs)

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "attention with pooled queries (qpoolattn) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        if not all(hasattr(module, a) for a in ("qkv", "proj", "heads", "window", "stride", "pad")):
            raise ImportRefused(f"{ctx.node_name} (QueryPoolingAttention) is not paramsym's attention module")
        if len(tuple(ctx.in_shape)) != 4:
            raise ImportRefused(f"{ctx.node_name} (QueryPoolingAttention) attends over a map (N, C, H, W)")
        return text(
            module.qkv.in_features,
            module.proj.out_features,
            module.heads,
            module.window or None,
            module.stride,
            module.pad,
            module.qkv.bias is not None,
        )


def text(d: int, D: int, heads: int, window: int | None, stride: int, pad: bool, bias: bool) -> str:
    """The layer as a program writes it."""
    parts = [f"heads={heads}"] + [f"->{D}"] * (d != D)
    parts += [f"window={window}"] * (window is not None) + [f"stride={stride}"] * (stride != 1)
    parts += ["pad"] * pad + ["bias"] * bias
    return f"qpoolattn({', '.join(parts)})"


KINDS = (QueryPoolingAttention(),)
