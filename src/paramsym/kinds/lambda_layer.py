"""`lambdalayer(->c, heads=h, head_dim=k, r=m)` or `lambdalayer(->c, heads=h, head_dim=k, relpos)`
(docs/language.md, Lambda layer; a paramsym extension): LambdaNetworks' lambda layer (Bello 2021, timm's
`LambdaLayer`) on a map of T = H·W positions. One 1x1 convolution gives the queries (h heads of width k), one key
head of width k and the values (v = c/h channels); BatchNorm normalises the queries and the values, a softmax over
the positions the keys. The content lambda is the k x v matrix keys·values, shared by every position; the position
lambdas, one k x v matrix per position, come either from a 3-D convolution of the values over an m x m
neighbourhood (k filters, `r=m`), or from a learned table of relative positions ((2H−1)·(2W−1) x k, built for one
map size, `relpos`). Each query head multiplies both lambdas: the output is h heads of v channels.

With d input channels: params `d·(h·k + k + v)` (`+ h·k + k + v` with `bias`) `+ 2·h·k + 2·v` (the two BatchNorms)
`+ k·m² + k` (the convolution and its bias) or `+ (2H−1)·(2W−1)·k` (the table); BatchNorm state `2·h·k + 2·v`;
MACs `T·d·(h·k + k + v)` (the projection) `+ T·k·v` (the content lambda) `+ 2·h·T·k·v` (the queries against both
lambdas) `+ T·k·v·m²` (the convolution) or `+ T²·k·v` (the table against the values): what FlopCounterMode counts
on timm's module.

PyTorch: paramsym's `LambdaNetLayer` (the same operations as timm's, attribute names alike); timm's `LambdaLayer`
is imported whole, with its stride-2 average pool as `avgpool2x2` after it.
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
)


@dataclass(frozen=True)
class LambdaLayerOptions(Options):
    heads: Expr
    head_dim: Expr  # k: the width of a query head and of the one key head
    radius: Expr | None  # m: the side of the position lambdas' convolution; None with the relative-position table


class LambdaLayer(Kind):
    key = "lambdalayer"
    names = ("lambdalayer",)
    keywords = frozenset({"heads", "head_dim", "r"})
    flags = frozenset({"relpos", "bias", "nobias"})
    takes_channels = True
    torch_modules = ("LambdaNetLayer", "timm.layers.lambda_layer.LambdaLayer")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        example = f"{call.name}(->256, heads=4, head_dim=16, r=9)"
        for needed in ("heads", "head_dim"):
            if needed not in args.keywords:
                raise ParamsymArgumentError(f"{call.name} needs {needed}=: write {example}", pos=call.pos)
        table = "relpos" in args.flags
        if table == ("r" in args.keywords):
            raise ParamsymArgumentError(
                f"{call.name} takes its position lambdas from a convolution (r=9) or from a relative-position table "
                f"(relpos): {'not both' if table else 'say which'}",
                pos=call.pos,
                hint=f"write {example} or {call.name}(->256, heads=4, head_dim=16, relpos)",
            )
        shape = flow.shape
        if shape.rank is not None and shape.rank != 2:
            what = "a vector" if shape.rank == 0 else f"an input with {shape.rank} spatial axes"
            raise ParamsymShapeError(
                f"{call.name} acts on the positions of a map (H x W x d), but its input is {what}",
                pos=call.pos,
                hint="the lambda layer takes a map",
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
        heads, head_dim, radius = args.scalar("heads"), args.scalar("head_dim"), args.scalar("r")
        constraints = list(args.constraints)
        constraints += check_or_defer(
            c / heads,
            "integer",
            f"heads={heads} does not divide the {c} output channels (each head gives c/h)",
            args.keywords["heads"].pos,
        )
        if radius is not None:
            constraints += check_or_defer(
                (radius - 1) / 2,
                "integer",
                f"r={radius} is even: the convolution keeps the map's size only with an odd side",
                args.keywords["r"].pos,
            )
        options = LambdaLayerOptions(heads=heads, head_dim=head_dim, radius=radius)
        out = Shape(shape.spatial, c)
        return make_layer(call, self, flow, out, d, c, bias=args.bias, options=options, constraints=tuple(constraints))

    # ---- quantities
    @staticmethod
    def table_rows(layer: Layer) -> Expr | None:
        """(2H−1)·(2W−1): the relative offsets of two positions of the map."""
        H, W = layer.in_shape.spatial or (None, None)
        return None if H is None or W is None else (2 * H - 1) * (2 * W - 1)

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = LambdaLayerOptions.of(layer)
        d, c, h, k = known(layer.cin), known(layer.cout), o.heads, o.head_dim
        v = c / h
        T = layer.in_shape.positions
        width = h * k + k + v
        params: Expr | None = d * width + (width if layer.bias else 0) + 2 * h * k + 2 * v
        if o.radius is not None:
            params = known(params) + k * o.radius**2 + k
            positional = times(T, k, v, o.radius**2)
        else:
            rows = self.table_rows(layer)
            params = None if rows is None else known(params) + rows * k
            positional = times(T, T, k, v)
        parts = (times(T, d, width), times(T, k, v), times(2, h, T, k, v), positional)
        macs = None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
        return {
            "params": params,
            "state": 2 * h * k + 2 * v,
            "fan_in": d,
            "macs": macs,
            "connections": times(layer.out_shape.elements, d),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        """In textbook symbols: C_in, C_out, the heads h, the key width k, and the convolution's side m (or the
        table's R = (2H−1)·(2W−1) rows)."""
        o = LambdaLayerOptions.of(layer)
        h, k = t.named("h", o.heads), t.named("k", o.head_dim)
        v = t.c_out / h
        width = h * k + k + v
        own = t.c_in * width + (width if layer.bias else 0) + 2 * h * k + 2 * v
        if o.radius is not None:
            return own + k * t.named("m", o.radius) ** 2 + k
        return own + t.named("R", known(self.table_rows(layer))) * k

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)  # the content lambda sums over every position

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        o = LambdaLayerOptions.of(layer)
        where = (
            "a relative-position table" if o.radius is None else f"a {words(o.radius)}x{words(o.radius)} convolution"
        )
        return f", {words(o.heads)} query heads of width {words(o.head_dim)}, position lambdas from {where}" + (
            ", with bias" if layer.bias else ""
        )

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = LambdaLayerOptions.of(layer)
        d, c, h, k = known(layer.cin), known(layer.cout), o.heads, o.head_dim
        v = c / h
        width = h * k + k + v
        lines = [
            f"The lambda layer (LambdaNetworks, a paramsym extension): one 1x1 convolution gives {w(h)} query heads "
            f"of width {w(k)}, one key head of width {w(k)} and {w(v)} value channels: {w.product(d, width)} weights"
            + (f" + {w(width)} biases" if layer.bias else "")
            + f"; BatchNorm on the queries and on the values: {w(2 * h * k + 2 * v)} parameters and as many running "
            "statistics.",
        ]
        if o.radius is not None:
            lines.append(
                f"Position lambdas: a 3-D convolution of the values over a {w(o.radius)}x{w(o.radius)} neighbourhood "
                f"with {w(k)} filters: {w(k * o.radius**2 + k)} parameters."
            )
        else:
            rows = known(self.table_rows(layer))
            lines.append(
                f"Position lambdas: a table of {w(rows)} relative offsets x {w(k)} (the layer is built for one map "
                f"size), multiplied with the values: {w(rows * k)} parameters."
            )
        lines.append(f"{w(counts.params)} parameters; the output is {w(h)} heads of {w(v)} channels.")
        if counts.macs is not None:
            lines.append(
                "MACs: the projection, the content lambda (keys·values), the position lambdas, and each query head "
                f"against both lambdas: {w(counts.macs)}."
            )
        return lines

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = LambdaLayerOptions.of(layer)
        H, W = layer.in_shape.spatial or (None, None)
        size = (0, 0) if o.radius is not None else (num(known(H)), num(known(W)))
        return TorchSpec(
            "LambdaNetLayer",
            (num(known(layer.cin)), num(known(layer.cout)), num(o.heads), num(o.head_dim)),
            {"r": 0 if o.radius is None else num(o.radius), "height": size[0], "width": size[1], "bias": layer.bias},
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "the lambda layer (lambdalayer) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return lambda_text(module, ctx)


def lambda_text(module: Any, ctx: ImportContext) -> str:
    """timm's LambdaLayer (or paramsym's LambdaNetLayer): `lambdalayer(->c, heads=h, head_dim=k, r=m)` or
    `..., relpos)`, then `avgpool2x2` when it pools (stride 2)."""
    where = f"{ctx.node_name} ({type(module).__name__})"
    shape = tuple(ctx.in_shape)
    if len(shape) != 4:
        raise ImportRefused(f"{where} acts on a value of shape {shape}, not a map (N, C, H, W)")
    d, H, W = shape[1], shape[2], shape[3]
    qkv, norm_q, norm_v = module.qkv, module.norm_q, module.norm_v
    h, k, v = module.num_heads, module.dim_qk, module.dim_v
    conv, table = module.conv_lambda, module.pos_emb

    def plain_norm(norm: Any, channels: int) -> bool:
        return (
            type(norm).__name__ == "BatchNorm2d"
            and norm.num_features == channels
            and norm.affine
            and norm.track_running_stats
        )

    if (
        type(qkv).__name__ != "Conv2d"
        or set(qkv.kernel_size) != {1}
        or set(qkv.stride) != {1}
        or set(qkv.padding) != {0}
        or qkv.groups != 1
        or qkv.in_channels != d
        or qkv.out_channels != h * k + k + v
        or not plain_norm(norm_q, h * k)
        or not plain_norm(norm_v, v)
        or (conv is None) == (table is None)
    ):
        raise ImportRefused(
            f"{where} is not the lambda layer as the language writes it (one 1x1 convolution for q, k, v; "
            "BatchNorm on q and v; position lambdas from a convolution or a relative-position table)"
        )
    parts = [f"->{h * v}", f"heads={h}", f"head_dim={k}"]
    if conv is not None:
        m = conv.kernel_size[0]
        if (
            type(conv).__name__ != "Conv3d"
            or conv.in_channels != 1
            or conv.out_channels != k
            or tuple(conv.kernel_size) != (m, m, 1)
            or tuple(conv.padding) != (m // 2, m // 2, 0)
            or set(conv.stride) != {1}
            or set(conv.dilation) != {1}
            or conv.bias is None
            or m % 2 == 0
        ):
            raise ImportRefused(
                f"{where}'s position lambdas are not an odd m x m x 1 Conv3d of 1 to {k} channels with bias, padded "
                "to keep the map: the language's r=m"
            )
        parts.append(f"r={m}")
    else:
        if tuple(table.shape) != (2 * H - 1, 2 * W - 1, k):
            raise ImportRefused(
                f"{where}'s relative-position table {tuple(table.shape)} is not built for a {H}x{W} map"
            )
        parts.append("relpos")
    parts += ["bias"] * (qkv.bias is not None)
    pool: Any = getattr(module, "pool", None)
    pooled = type(pool).__name__ == "AvgPool2d"
    if pool is not None and not pooled and type(pool).__name__ != "Identity":
        raise ImportRefused(f"{where} pools with {type(pool).__name__}: the language writes AvgPool2d(2, 2)")
    if pooled and (
        pool.kernel_size not in (2, (2, 2))
        or pool.stride not in (2, (2, 2))
        or pool.padding not in (0, (0, 0))
        or pool.ceil_mode
        or not pool.count_include_pad
    ):
        raise ImportRefused(f"{where} pools other than 2x2 with stride 2: the lambda layer's stride 2 pools so")
    return f"lambdalayer({', '.join(parts)})" + (" > avgpool2x2" if pooled else "")


KINDS = (LambdaLayer(),)
