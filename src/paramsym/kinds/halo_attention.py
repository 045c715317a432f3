"""`haloattn(->c, heads=h, head_dim=e, block=b, halo=r, stride=s)` (docs/language.md, Halo attention; a paramsym
extension): HaloNet's blocked local self-attention (Vaswani et al. 2021, timm's `HaloAttn`). The map is cut into
b x b blocks; the queries of a block attend to the keys and values of a window of w = b + 2r positions a side
around it (the block and a halo of r, zeros beyond the map's border). A 1x1 convolution gives the queries (h heads
of width e; with stride s it is strided, so each block has (b/s)² queries and the output is H/s x W/s), another
1x1 convolution the keys (h·e) and values (c channels, h heads of c/h); no output projection. The scores get
relative-position logits q·r from two learned tables of (2w−1) x e, one for the rows and one for the columns
(PosEmbedRel), which do not depend on the map's size.

With d input channels, T = H·W positions and Q = T/s² queries: params `d·h·e + d·(h·e + c)` (`+ 2·h·e + c` with
`bias`) `+ 2·(2w−1)·e`; MACs `Q·d·h·e + T·d·(h·e + c)` (the projections) `+ h·Q·w²·e` (q·k against the window)
`+ 2·h·Q·(2w−1)·e` (q against the two tables, as timm's rel_logits_1d multiplies them) `+ Q·w²·c` (the weighted
sum of the values): what FlopCounterMode counts on timm's module (the unfold of the windows is a view, no MACs).
KV cache: the keys and values of every position, `T·(h·e + c)`.

PyTorch: paramsym's `HaloAttention` (the same operations as timm's, attribute names alike); timm's `HaloAttn` is
imported whole, with its average pool (when its stride does not divide the block) as `avgpool2x2` after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.records import KerasSpec, Layer, Options, TorchSpec
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError
from .base import (
    ONE,
    Args,
    Call,
    Counts,
    Expr,
    Field,
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
    whole_number,
)


@dataclass(frozen=True)
class HaloAttentionOptions(Options):
    heads: Expr
    head_dim: Expr  # the width of a query or key head (values: c/h)
    block: Expr  # the side of a block of queries (before the stride)
    halo: Expr  # the margin around a block that its keys and values also come from
    stride: Expr  # the queries' stride inside a block (1 or a divisor of the block)


class HaloAttention(Kind):
    key = "haloattn"
    names = ("haloattn",)
    keywords = frozenset({"heads", "head_dim", "block", "halo", "stride"})
    flags = frozenset({"bias", "nobias"})
    takes_channels = True
    torch_modules = ("HaloAttention", "timm.layers.halo_attn.HaloAttn")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        for needed, example in (("heads", "heads=8"), ("block", "block=8"), ("halo", "halo=3")):
            if needed not in args.keywords:
                raise ParamsymArgumentError(
                    f"{call.name} needs {needed}=: write {call.name}(->256, heads=8, block=8, halo=3)",
                    pos=call.pos,
                    hint=f"add {example}",
                )
        shape = flow.shape
        if shape.rank is not None and shape.rank != 2:
            what = "a vector" if shape.rank == 0 else f"an input with {shape.rank} spatial axes"
            raise ParamsymShapeError(
                f"{call.name} attends within the blocks of a map (H x W x d), but its input is {what}",
                pos=call.pos,
                hint="HaloNet's attention takes a map",
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
        heads, block = args.scalar("heads"), args.scalar("block")
        halo = args.keywords["halo"]
        if len(halo.value) != 1:
            raise ParamsymArgumentError("halo= takes one value", pos=halo.pos)
        halo_size = halo.value[0]
        stride = args.scalar("stride")
        constraints = list(args.constraints)
        constraints += whole_number(halo_size, "halo", halo.pos, least=0)
        pos = args.keywords["heads"].pos
        constraints += check_or_defer(
            c / heads, "integer", f"heads={heads} does not divide the {c} output channels (each head gives c/h)", pos
        )
        head_dim = args.scalar("head_dim") if "head_dim" in args.keywords else c / heads
        stride = ONE if stride is None else stride
        block_pos = args.keywords["block"].pos
        H, W = shape.spatial
        for side, axis in ((H, "height"), (W, "width")):
            if side is not None:
                constraints += check_or_defer(
                    side / block,
                    "integer",
                    f"block={block} does not divide the map's {axis} {side} (the map is cut into blocks)",
                    block_pos,
                )
        if "stride" in args.keywords:
            constraints += check_or_defer(
                block / stride,
                "integer",
                f"stride={stride} does not divide block={block} (each block keeps block/stride queries a side)",
                args.keywords["stride"].pos,
                hint="timm pools the output instead: haloattn(...) > avgpool2x2",
            )
        options = HaloAttentionOptions(heads=heads, head_dim=head_dim, block=block, halo=halo_size, stride=stride)
        spatial = tuple(None if n is None else n / stride for n in (H, W))
        out = Shape(spatial, c)
        return make_layer(call, self, flow, out, d, c, bias=args.bias, options=options, constraints=tuple(constraints))

    # ---- quantities
    @staticmethod
    def window(o: HaloAttentionOptions) -> Expr:
        return o.block + 2 * o.halo

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = HaloAttentionOptions.of(layer)
        d, c, h, e = known(layer.cin), known(layer.cout), o.heads, o.head_dim
        w = self.window(o)
        T, Q = layer.in_shape.positions, layer.out_shape.positions
        params = d * (2 * h * e + c) + ((2 * h * e + c) if layer.bias else 0) + 2 * (2 * w - 1) * e
        parts = (
            times(Q, d, h * e),  # the queries' projection (strided)
            times(T, d, h * e + c),  # the keys' and values'
            times(h, Q, w * w, e),  # q·k against the block's window
            times(h, Q, 2 * (2 * w - 1), e),  # q against the row and column tables
            times(Q, w * w, c),  # the weighted sum of the values
        )
        macs = None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
        return {
            "params": params,
            "fan_in": d,
            "macs": macs,
            "connections": times(layer.out_shape.elements, d),
            "kv_cache": times(T, h * e + c),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        """In textbook symbols: C_in, C_out, the heads h, their width e, and w = block + 2·halo."""
        o = HaloAttentionOptions.of(layer)
        h, e = t.named("h", o.heads), t.named("e", o.head_dim)
        w = t.named("w", self.window(o))
        width = 2 * h * e + t.c_out
        return t.c_in * width + (width if layer.bias else 0) + 2 * (2 * w - 1) * e

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        """Each output sees its block's window of w = block + 2·halo a side (as a convolution of kernel w does,
        counting the zeros beyond the border); the first window starts a halo before the map."""
        if field is None:
            return None
        o = HaloAttentionOptions.of(layer)
        w = self.window(o)
        return tuple((r + (w - 1) * j, j * o.stride, start - o.halo * j) for r, j, start in field)

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        o = HaloAttentionOptions.of(layer)
        return (
            f", {words(o.heads)} heads, queries and keys of width {words(o.head_dim)}, blocks of "
            f"{words(o.block)} with a halo of {words(o.halo)}" + (", with bias" if layer.bias else "")
        )

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = HaloAttentionOptions.of(layer)
        d, c, h, e = known(layer.cin), known(layer.cout), o.heads, o.head_dim
        win = self.window(o)
        lines = [
            f"HaloNet's attention (a paramsym extension): the map is cut into blocks of {w(o.block)} x "
            f"{w(o.block)}; the queries of a block attend to a window of {w(win)} x {w(win)} around it (the block "
            f"and a halo of {w(o.halo)}).",
            f"A 1x1 convolution gives the queries ({w(h)} heads of width {w(e)}"
            + (f", strided by {w(o.stride)}" if o.stride != 1 else "")
            + f"): {w.product(d, h * e)} weights; another the keys and values ({w(h * e)} + {w(c)} channels): "
            f"{w.product(d, h * e + c)} weights"
            + (f"; {w(2 * h * e + c)} biases" if layer.bias else "")
            + f"; no output projection, the heads' outputs are the {w(c)} channels.",
            f"Relative positions: a table of {w(2 * win - 1)} x {w(e)} for the rows and one for the columns, whose "
            f"products with the queries add to the scores: {w(2 * (2 * win - 1) * e)} parameters.",
            f"{w(counts.params)} parameters.",
        ]
        if counts.macs is not None:
            lines.append(
                "MACs: the two projections, the scores of each query against its window, the queries against both "
                f"tables, and the weighted sum of the values: {w(counts.macs)}."
            )
        return lines

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = HaloAttentionOptions.of(layer)
        return TorchSpec(
            "HaloAttention",
            (
                num(known(layer.cin)),
                num(known(layer.cout)),
                num(o.heads),
                num(o.head_dim),
                num(o.block),
                num(o.halo),
                num(o.stride),
            ),
            {"bias": layer.bias},
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "HaloNet's attention (haloattn) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return halo_text(module, ctx)


def halo_text(module: Any, ctx: ImportContext) -> str:
    """timm's HaloAttn (or paramsym's HaloAttention): `haloattn(->c, heads=h, head_dim=e, block=b, halo=r)`,
    `stride=2` when its queries are strided, then `avgpool2x2` when it pools its output instead."""
    where = f"{ctx.node_name} ({type(module).__name__})"
    q, kv, pos = module.q, module.kv, getattr(module, "pos_embed", None)
    h, e, ev = module.num_heads, module.dim_head_qk, module.dim_head_v
    block, halo, stride = module.block_size, module.halo_size, module.block_stride
    shape = tuple(ctx.in_shape)
    if len(shape) != 4 or pos is None:
        raise ImportRefused(f"{where} attends over a value of shape {shape}, not a map (N, C, H, W)")
    d, H, W = shape[1], shape[2], shape[3]
    win = block + 2 * halo
    convs_ok = all(
        type(conv).__name__ == "Conv2d"
        and set(conv.kernel_size) == {1}
        and set(conv.padding) == {0}
        and set(conv.dilation) == {1}
        and conv.groups == 1
        and conv.in_channels == d
        for conv in (q, kv)
    )
    if (
        not convs_ok
        or set(q.stride) != {stride}
        or set(kv.stride) != {1}
        or q.out_channels != h * e
        or kv.out_channels != h * e + h * ev
        or (q.bias is None) != (kv.bias is None)
        or module.win_size != win
        or block % stride
        or module.block_size_ds != block // stride
        or type(pos).__name__ not in ("PosEmbedRel", "HaloPositions")
        or tuple(pos.height_rel.shape) != (2 * win - 1, e)
        or tuple(pos.width_rel.shape) != (2 * win - 1, e)
    ):
        raise ImportRefused(
            f"{where} is not HaloNet's attention as the language writes it (1x1 convolutions for q and for k, v; "
            f"relative-position tables of 2·(block + 2·halo) - 1 rows)"
        )
    if getattr(module, "scale_pos_embed", False):
        raise ImportRefused(
            f"{where} scales its relative-position logits with the scores (scale_pos_embed=True): the language's "
            "haloattn adds them unscaled, as HaloNet does"
        )
    if H % block or W % block:
        raise ImportRefused(f"{where} cuts a {H}x{W} map into blocks of {block}, which do not divide it")
    pool: Any = getattr(module, "pool", None)
    pooled = type(pool).__name__ == "AvgPool2d"
    if pool is not None and not pooled and type(pool).__name__ != "Identity":
        raise ImportRefused(f"{where} pools with {type(pool).__name__}: the language writes HaloNet's AvgPool2d(2, 2)")
    if pooled and (
        pool.kernel_size not in (2, (2, 2))
        or pool.stride not in (2, (2, 2))
        or pool.padding not in (0, (0, 0))
        or pool.ceil_mode
        or not pool.count_include_pad
    ):
        raise ImportRefused(f"{where} pools other than 2x2 with stride 2: HaloNet's stride-2 block pools so")
    parts = [f"->{h * ev}", f"heads={h}"]
    if e != ev:
        parts.append(f"head_dim={e}")
    parts += [f"block={block}", f"halo={halo}"]
    if stride != 1:
        parts.append(f"stride={stride}")
    parts += ["bias"] * (q.bias is not None)
    return f"haloattn({', '.join(parts)})" + (" > avgpool2x2" if pooled else "")


KINDS = (HaloAttention(),)
