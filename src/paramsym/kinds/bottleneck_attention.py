"""`botattn(->c, heads=h, head_dim=e)` (docs/language.md, Bottleneck attention; a paramsym extension): BoTNet's
self-attention over the H·W positions of a map (Srinivas et al. 2021, timm's `BottleneckAttn`), which differs from
`attn` in three ways: one 1x1 convolution gives queries and keys of h heads of width e and values of c channels
(h heads of c/h), with no output projection (the heads' outputs, concatenated, are the c output channels); and
the scores get relative-position logits q·r from two learned tables, (2H−1) x e for the rows and (2W−1) x e for
the columns (PosEmbedRel), so the layer is built for one map size.

With d input channels and T = H·W positions: params `d·(2·h·e + c)` (`+ 2·h·e + c` with `bias`) `+ (2H−1)·e +
(2W−1)·e`; MACs `T·d·(2·h·e + c)` (the projection) `+ h·T·T·e` (q·k) `+ h·T·e·(2H−1 + 2W−1)` (q against the
two tables, as timm's rel_logits_1d multiplies them) `+ T·T·c` (the weighted sum of the values): what
FlopCounterMode counts on timm's module. KV cache: the keys and values of every position, `T·(h·e + c)`.

PyTorch: paramsym's `BottleneckAttention` (the same operations as timm's, without its stride-2 pooling, which the
language writes as `avgpool2x2` after the layer); timm's `BottleneckAttn` is imported whole.
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
class BottleneckAttentionOptions(Options):
    heads: Expr
    head_dim: Expr  # the width of a query or key head (values: c/h)


class BottleneckAttention(Kind):
    key = "botattn"
    names = ("botattn",)
    keywords = frozenset({"heads", "head_dim"})
    flags = frozenset({"bias", "nobias"})
    takes_channels = True
    torch_modules = ("BottleneckAttention", "timm.layers.bottleneck_attn.BottleneckAttn")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        if "heads" not in args.keywords:
            raise ParamsymArgumentError(
                f"{call.name} needs its number of heads: write {call.name}(->256, heads=4)", pos=call.pos
            )
        shape = flow.shape
        if shape.rank is not None and shape.rank != 2:
            what = "a vector" if shape.rank == 0 else f"an input with {shape.rank} spatial axes"
            raise ParamsymShapeError(
                f"{call.name} attends over the positions of a map (H x W x d) with a relative-position table per "
                f"axis, but its input is {what}",
                pos=call.pos,
                hint="BoTNet's attention takes a map",
            )
        d = shape.channels
        if d is None or shape.spatial is None:
            raise ParamsymShapeError(
                f"{call.name} needs the size and channels of the map before it",
                pos=call.pos,
                hint="start the network with input(H x W x d)",
            )
        if args.channels is not None and args.channels.cin is not None and args.channels.cin != d:
            raise ParamsymShapeError(
                f"{call.name} says it takes {args.channels.cin} channels, but the layer before gives {d}",
                pos=args.channels.pos,
            )
        c = args.channels.cout if args.channels is not None else d
        heads = args.scalar("heads")
        pos = args.keywords["heads"].pos
        args.constraints += whole_number(heads, "heads", pos)
        constraints = list(args.constraints)
        constraints += check_or_defer(
            c / heads,
            "integer",
            f"heads={heads} does not divide the {c} output channels (each head gives c/h of them)",
            pos,
        )
        if "head_dim" in args.keywords:
            head_dim = known(args.scalar("head_dim"))
            constraints += whole_number(head_dim, "head_dim", args.keywords["head_dim"].pos)
        else:
            head_dim = c / heads
        options = BottleneckAttentionOptions(heads=heads, head_dim=head_dim)
        out = Shape(shape.spatial, c)
        return make_layer(call, self, flow, out, d, c, bias=args.bias, options=options, constraints=tuple(constraints))

    # ---- quantities
    @staticmethod
    def sides(layer: Layer) -> tuple[Expr | None, Expr | None]:
        spatial = layer.in_shape.spatial or (None, None)
        return spatial[0], spatial[1]

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = BottleneckAttentionOptions.of(layer)
        d, c, h, e = known(layer.cin), known(layer.cout), o.heads, o.head_dim
        H, W = self.sides(layer)
        T = layer.in_shape.positions
        width = 2 * h * e + c
        params: Expr | None = d * width + (width if layer.bias else 0)
        tables = None if H is None or W is None else (2 * H - 1) + (2 * W - 1)
        params = None if tables is None or params is None else params + tables * e
        parts = (times(T, d, width), times(h, T, T, e), times(h, T, e, tables), times(T, T, c))
        macs = None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
        return {
            "params": params,
            "fan_in": d,
            "macs": macs,
            "connections": times(layer.out_shape.elements, d),
            "kv_cache": times(T, h * e + c),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        """In textbook symbols: C_in, C_out, the heads h, their width e, and R = (2H−1) + (2W−1) table rows."""
        o = BottleneckAttentionOptions.of(layer)
        H, W = self.sides(layer)
        h, e = t.named("h", o.heads), t.named("e", o.head_dim)
        width = 2 * h * e + t.c_out
        rows = t.named("R", known(H) * 2 - 1 + known(W) * 2 - 1)
        return t.c_in * width + (width if layer.bias else 0) + rows * e

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        o = BottleneckAttentionOptions.of(layer)
        return f", {words(o.heads)} heads, queries and keys of width {words(o.head_dim)}, relative positions" + (
            ", with bias" if layer.bias else ""
        )

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = BottleneckAttentionOptions.of(layer)
        d, c, h, e = known(layer.cin), known(layer.cout), o.heads, o.head_dim
        H, W = (known(n) for n in self.sides(layer))
        width = 2 * h * e + c
        lines = [
            f"BoTNet's attention (a paramsym extension): one 1x1 convolution gives queries and keys of {w(h)} heads "
            f"of width {w(e)} and values of {w(c)} channels ({w(h)} heads of {w(c / h)}): "
            f"{w.product(d, width)} weights" + (f" + {w(width)} biases" if layer.bias else "") + "; no output "
            f"projection, the heads' outputs are the {w(c)} channels.",
            f"Relative positions: a table of {w(2 * H - 1)} x {w(e)} for the rows and {w(2 * W - 1)} x {w(e)} for "
            f"the columns, whose products with the queries add to the scores: {w((2 * H - 1 + 2 * W - 1) * e)} "
            f"parameters (the layer is built for a {w(H)}x{w(W)} map).",
            f"{w(counts.params)} parameters.",
        ]
        if counts.macs is not None:
            lines.append(
                "MACs: the projection, the scores q·k of every pair of positions, the queries against both tables, "
                f"and the weighted sum of the values: {w(counts.macs)}."
            )
        return lines

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = BottleneckAttentionOptions.of(layer)
        H, W = self.sides(layer)
        return TorchSpec(
            "BottleneckAttention",
            (num(layer.cin), num(layer.cout), num(o.heads), num(o.head_dim), num(known(H)), num(known(W))),
            {"bias": layer.bias},
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "BoTNet's attention (botattn) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return bottleneck_text(module, ctx)


def bottleneck_text(module: Any, ctx: ImportContext) -> str:
    """timm's BottleneckAttn (or paramsym's BottleneckAttention): `botattn(->c, heads=h, head_dim=e)`, then
    `avgpool2x2` when it pools (stride 2)."""
    where = f"{ctx.node_name} ({type(module).__name__})"
    qkv, pos = module.qkv, getattr(module, "pos_embed", None)
    h, e, ev = module.num_heads, module.dim_head_qk, module.dim_head_v
    shape = tuple(ctx.in_shape)
    if len(shape) != 4 or pos is None:
        raise ImportRefused(f"{where} attends over a value of shape {shape}, not a map (N, C, H, W)")
    H, W = shape[2], shape[3]
    if (
        type(qkv).__name__ != "Conv2d"
        or set(qkv.kernel_size) != {1}
        or set(qkv.stride) != {1}
        or qkv.groups != 1
        or qkv.in_channels != shape[1]
        or qkv.out_channels != 2 * h * e + h * ev
        or tuple(pos.height_rel.shape) != (2 * H - 1, e)
        or tuple(pos.width_rel.shape) != (2 * W - 1, e)
        or type(pos).__name__ not in ("PosEmbedRel", "RelativePositions")
    ):
        raise ImportRefused(
            f"{where} is not BoTNet's attention as the language writes it (one 1x1 convolution for q, k, v; "
            f"relative-position tables of (2H-1) and (2W-1) rows for a {H}x{W} map)"
        )
    pool: Any = getattr(module, "pool", None)
    pooled = type(pool).__name__ == "AvgPool2d"
    if pool is not None and not pooled and type(pool).__name__ != "Identity":
        raise ImportRefused(f"{where} pools with {type(pool).__name__}: the language writes BoTNet's AvgPool2d(2, 2)")
    if pooled and (
        pool.kernel_size not in (2, (2, 2)) or pool.stride not in (2, (2, 2)) or pool.padding not in (0, (0, 0))
    ):
        raise ImportRefused(f"{where} pools other than 2x2 with stride 2: BoTNet's stride-2 block pools so")
    parts = [f"->{h * ev}", f"heads={h}"]
    if e * h != h * ev:
        parts.append(f"head_dim={e}")
    parts += ["bias"] * (qkv.bias is not None)
    return f"botattn({', '.join(parts)})" + (" > avgpool2x2" if pooled else "")


KINDS = (BottleneckAttention(),)
