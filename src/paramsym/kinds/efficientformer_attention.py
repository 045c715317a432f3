"""`ef2attn(heads=h, key_dim=k, value_dim=v[, stride=s])` and `ef2attn(heads=h, key_dim=k, value_dim=v, ->o,
down)` (docs/language.md, EfficientFormerV2 attention; a paramsym extension): EfficientFormerV2's attention on a
map H x W x d (timm's efficientformer_v2.Attention2d and Attention2dDownsample).

Every projection is a convolution with bias and a BatchNorm (timm's ConvNorm); K = h·k, V = h·v.

Attention2d: with `stride=s` a depthwise 3x3 ConvNorm of stride s first makes the map ⌈H/s⌉ x ⌈W/s⌉ (N
positions; N = H·W without it). 1x1 ConvNorms give K query, K key and V value channels; a depthwise 3x3 ConvNorm
on the values is added to the attention's output ("v_local"); the scores plus a learned bias per head for each
offset (|rows|, |columns|) on the map (h·N) are mixed across the heads by a 1x1 convolution before the softmax
and by another after it (talking heads, h² + h each); the output is upsampled by s (bilinear, no MACs), then
GELU and a 1x1 ConvNorm back to d channels.

    params = [12d] + 2(dK + 3K) + dV + 3V + 12V + 2(h² + h) + Vd + 3d + h·N
    state  = [2d] + 4K + 4V + 2d
    MACs   = [9·N·d] + N·d·(2K + V) + 9·N·V + N²·(K + V) + 2·h²·N² + P·V·d   (P = (s⌈H/s⌉)(s⌈W/s⌉))

Attention2dDownsample (`down`): queries from the map halved, a depthwise 3x3 convolution of stride 2 (with bias)
plus the map subsampled (AvgPool2d(1, 2)), then a 1x1 ConvNorm to K channels; keys and values (1x1 ConvNorms)
from all N = H·W positions; the depthwise 3x3 ConvNorm on the values has stride 2; Nq = ⌈H/2⌉·⌈W/2⌉ queries,
no talking heads; GELU and a 1x1 ConvNorm to o channels.

    params = 10d + 2(dK + 3K) + dV + 3V + 12V + Vo + 3o + h·N
    state  = 4K + 4V + 2o
    MACs   = 9·Nq·d + Nq·d·K + N·d·(K + V) + 9·Nq·V + Nq·N·(K + V) + Nq·V·o

PyTorch: paramsym's `EfficientFormerV2Attention` (torch_modules); timm's modules are read whole. FlopCounterMode
counts these MACs on them (tests/test_kind_efficientformer_attention.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..core.quantities import Template
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
    input_channels,
    known,
    make_layer,
    refuse_keras,
    times,
)


@dataclass(frozen=True)
class EfficientFormerV2Options(Options):
    heads: Expr
    key_dim: Expr
    value_dim: Expr
    stride: Expr  # 1: none (Attention2d); 2 with down
    down: bool


class EfficientFormerV2Attention(Kind):
    key = "ef2attn"
    names = ("ef2attn",)
    keywords = frozenset({"heads", "key_dim", "value_dim", "stride"})
    flags = frozenset({"down"})
    takes_channels = True
    torch_modules = (
        "paramsym.frameworks.torch_modules.EfficientFormerV2Attention",
        "timm.models.efficientformer_v2.Attention2d",
        "timm.models.efficientformer_v2.Attention2dDownsample",
    )

    # ---- language
    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        for key, example in (("heads", "8"), ("key_dim", "32"), ("value_dim", "128")):
            if key not in args.keywords:
                raise ParamsymArgumentError(
                    f"{call.name} needs {key}=: write {call.name}(heads=8, key_dim=32, value_dim=128)",
                    pos=call.pos,
                    hint=f"e.g. {key}={example}",
                )
        shape = flow.shape
        if shape.rank != 2:
            what = "a vector" if shape.rank == 0 else shape.describe()
            raise ParamsymShapeError(
                f"{call.name} attends over the positions of a map (H x W x d), but its input is {what}", pos=call.pos
            )
        down = "down" in args.flags
        d = input_channels(call, flow, args)
        out = args.channels.cout if args.channels is not None else d
        if args.channels is not None and not down:
            raise ParamsymArgumentError(
                f"{call.name} projects back to its input's {d} channels: ->o is for 'down' (Attention2dDownsample)",
                pos=args.channels.pos,
            )
        if down and "stride" in args.keywords:
            raise ParamsymArgumentError(
                "'down' halves the map (stride 2 by itself): stride= is Attention2d's strided keys",
                pos=args.keywords["stride"].pos,
            )
        heads = known(args.scalar("heads"))
        key_dim, value_dim = known(args.scalar("key_dim")), known(args.scalar("value_dim"))
        stride = sympy.Integer(2) if down else args.scalar("stride", sympy.Integer(1))
        height, width = shape.spatial or (None, None)
        if height is None or width is None:
            raise ParamsymShapeError(
                f"{call.name} needs the sides of its map: nothing before it says them", pos=call.pos
            )
        for n in (height, width):
            args.constraints += check_or_defer(
                n - stride + 1,
                "positive",
                f"stride={stride} is larger than the map's side {n}",
                args.keywords["stride"].pos if "stride" in args.keywords else call.pos,
                shown=n,
            )
        options = EfficientFormerV2Options(heads, key_dim, value_dim, stride, down)
        rows, cols = sympy.ceiling(height / stride), sympy.ceiling(width / stride)
        spatial = (rows, cols) if down else (rows * stride, cols * stride)
        return make_layer(
            call, self, flow, Shape(spatial, out), d, out, options=options, constraints=tuple(args.constraints)
        )

    # ---- quantities
    @staticmethod
    def parts(layer: Layer) -> dict[str, Expr]:
        o = EfficientFormerV2Options.of(layer)
        height, width = (known(n) for n in layer.in_shape.spatial or (None, None))
        s = o.stride
        rows, cols = sympy.ceiling(height / s), sympy.ceiling(width / s)
        return {
            "d": known(layer.cin),
            "o": known(layer.cout),
            "h": o.heads,
            "K": o.heads * o.key_dim,
            "V": o.heads * o.value_dim,
            "HW": height * width,
            "Ns": rows * cols,  # the strided map's positions
            "P": rows * s * cols * s,  # the upsampled map's
        }

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        p, o = self.parts(layer), EfficientFormerV2Options.of(layer)
        d, out, h, K, V, HW, Ns, P = (p[x] for x in ("d", "o", "h", "K", "V", "HW", "Ns", "P"))
        if o.down:
            params = 10 * d + 2 * (d * K + 3 * K) + d * V + 15 * V + V * out + 3 * out + h * HW
            state = 4 * K + 4 * V + 2 * out
            macs = 9 * Ns * d + Ns * d * K + HW * d * (K + V) + 9 * Ns * V + Ns * HW * (K + V) + Ns * V * out
            keys = HW
        else:
            strided = o.stride != 1
            N = Ns
            params = 2 * (d * K + 3 * K) + d * V + 15 * V + 2 * (h**2 + h) + V * d + 3 * d + h * N
            state = 4 * K + 4 * V + 2 * d
            macs = N * d * (2 * K + V) + 9 * N * V + N**2 * (K + V) + 2 * h**2 * N**2 + P * V * d
            if strided:
                params += 12 * d
                state += 2 * d
                macs += 9 * N * d
            keys = N
        return {
            "params": sympy.expand(params),
            "state": sympy.expand(state),
            "macs": sympy.expand(macs),
            "fan_in": d,
            "connections": times(layer.out_shape.elements, d),
            "kv_cache": sympy.expand(keys * (K + V)),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return self.counts(layer)["params"] or sympy.Integer(0)

    def field(self, layer: Layer, field: Any) -> Any:
        return None  # every position sees the whole map

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        o = EfficientFormerV2Options.of(layer)
        extra = (
            ", queries from the map halved"
            if o.down
            else (f", keys and values on the map strided by {words(o.stride)}" if o.stride != 1 else "")
        )
        return f", {words(o.heads)} heads, keys of {words(o.key_dim)}, values of {words(o.value_dim)}{extra}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        p, o = self.parts(layer), EfficientFormerV2Options.of(layer)
        out, h, K, V = (p[x] for x in ("o", "h", "K", "V"))
        sentences = [
            f"EfficientFormerV2's attention (a paramsym extension): 1x1 convolutions with bias and BatchNorms give "
            f"{w(h)} heads of {w(o.key_dim)} query and key channels ({w(K)} each) and {w(o.value_dim)} value channels "
            f"({w(V)}); a depthwise 3x3 convolution and a BatchNorm on the values is added to the output.",
        ]
        if o.down:
            sentences.append(
                f"The queries come from the map halved (a depthwise 3x3 convolution of stride 2 plus the map "
                f"subsampled), {w(p['Ns'])} of them, each scoring the {w(p['HW'])} keys."
            )
        else:
            if o.stride != 1:
                sentences.append(
                    f"A depthwise 3x3 convolution of stride {w(o.stride)} and a BatchNorm make the map of "
                    f"{w(p['Ns'])} positions the attention runs on; its output is upsampled back (bilinear)."
                )
            sentences.append(
                f"Talking heads: a 1x1 convolution across the {w(h)} heads' scores before the softmax and another "
                f"after it ({w(2 * (h**2 + h))} parameters)."
            )
        keys = p["HW"] if o.down else p["Ns"]
        sentences += [
            f"A learned bias per head for each offset (|rows|, |columns|) on the map ({w.product(h, keys)}).",
            f"GELU, then a 1x1 convolution with bias and a BatchNorm to {w(out)} channels ({w.product(V, out)} "
            f"weights). {w(counts.params)} parameters.",
        ]
        return sentences

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = EfficientFormerV2Options.of(layer)
        height, width = (num(known(n)) for n in layer.in_shape.spatial or (None, None))
        return TorchSpec(
            "EfficientFormerV2Attention",
            (num(known(layer.cin)), num(o.heads), num(o.key_dim), num(o.value_dim), (height, width)),
            {"out": num(known(layer.cout)), "stride": num(o.stride), "down": o.down},
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "EfficientFormerV2's attention (ef2attn) has no Keras layer")

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return read(module, ctx)


def _conv_norm(block: Any, cin: int, cout: int, kernel: int, stride: int, groups: int) -> bool:
    """timm's efficientformer_v2.ConvNorm (or paramsym's): a Conv2d with bias, padding kernel // 2, BatchNorm2d."""
    conv: Any = getattr(block, "conv", None)
    bn: Any = getattr(block, "bn", None)
    return _conv(conv, cin, cout, kernel, stride, groups) and (
        type(bn).__name__ == "BatchNorm2d" and bn.num_features == cout and bn.affine and bn.track_running_stats
    )


def _conv(conv: Any, cin: int, cout: int, kernel: int, stride: int, groups: int) -> bool:
    return (
        type(conv).__name__ == "Conv2d"
        and (conv.in_channels, conv.out_channels, conv.groups) == (cin, cout, groups)
        and tuple(conv.kernel_size) == (kernel, kernel)
        and tuple(conv.stride) == (stride, stride)
        and tuple(conv.padding) == (kernel // 2, kernel // 2)
        and tuple(conv.dilation) == (1, 1)
        and conv.bias is not None
        and conv.padding_mode == "zeros"
    )


def read(module: Any, ctx: ImportContext) -> str:
    where = f"{ctx.node_name} ({type(module).__name__})"
    name = type(module).__name__
    shape = tuple(ctx.arg_shapes[0]) if ctx.arg_shapes else tuple(ctx.in_shape)
    if len(shape) != 4:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not a map (N, C, H, W)")
    d, H, W = shape[1:]
    heads, k = module.num_heads, module.key_dim
    v = getattr(module, "d", None) if name != "EfficientFormerV2Attention" else module.value_dim
    if not isinstance(v, int):
        raise ImportRefused(f"{where} has no value width")
    K, V = heads * k, heads * v
    down = name == "Attention2dDownsample" or (name == "EfficientFormerV2Attention" and module.down)
    stride = 2 if down else int(getattr(module, "stride", 0) or 0) or 1
    if name == "Attention2d":
        stride = module.stride_conv.conv.stride[0] if module.stride_conv is not None else 1
    rows, cols = -(-H // stride), -(-W // stride)
    keys = (H, W) if down else (rows, cols)
    if tuple(module.resolution) != keys:
        raise ImportRefused(f"{where} was built for a {tuple(module.resolution)} map, not {keys}")
    biases = getattr(module, "attention_biases", None)
    act = getattr(module, "act", None)
    out = module.proj.conv.out_channels if hasattr(module.proj, "conv") else -1
    ok = (
        biases is not None
        and tuple(biases.shape) == (heads, keys[0] * keys[1])
        and type(act).__name__ == "GELU"
        and getattr(act, "approximate", "none") == "none"
        and _conv_norm(module.k, d, K, 1, 1, 1)
        and _conv_norm(module.v, d, V, 1, 1, 1)
        and _conv_norm(module.v_local, V, V, 3, 2 if down else 1, V)
        and _conv_norm(module.proj, V, out, 1, 1, 1)
    )
    if down:
        q: Any = module.q
        pool: Any = getattr(q, "pool", None)
        ok = (
            ok
            and type(pool).__name__ == "AvgPool2d"
            and pool.kernel_size in (1, (1, 1))
            and pool.stride in (2, (2, 2))
            and pool.padding in (0, (0, 0))
            and _conv(getattr(q, "local", None), d, d, 3, 2, d)
            and _conv_norm(getattr(q, "proj", None), d, K, 1, 1, 1)
        )
    else:
        heads_ok = all(_conv(getattr(module, f"talking_head{i}", None), heads, heads, 1, 1, 1) for i in (1, 2))
        up: Any = getattr(module, "upsample", None)
        ok = ok and heads_ok and out == d and _conv_norm(module.q, d, K, 1, 1, 1)
        if stride != 1:
            ok = (
                ok
                and _conv_norm(module.stride_conv, d, d, 3, stride, d)
                and type(up).__name__ == "Upsample"
                and up.mode == "bilinear"
                and not up.align_corners
                and up.size is None
                and float(up.scale_factor) == float(stride)
            )
    if not ok:
        raise ImportRefused(
            f"{where} is not EfficientFormerV2's attention as ef2attn writes it (ConvNorm projections with "
            f"biases, a depthwise 3x3 ConvNorm on the values, (heads, positions) attention biases, "
            f"{'the local-global queries' if down else 'talking heads'}, GELU, a 1x1 ConvNorm out)"
        )
    parts = [f"->{out}"] * (out != d) + [f"heads={heads}", f"key_dim={k}", f"value_dim={v}"]
    parts += ["down"] if down else [f"stride={stride}"] * (stride != 1)
    return f"ef2attn({', '.join(parts)})"


KINDS = (EfficientFormerV2Attention(),)
