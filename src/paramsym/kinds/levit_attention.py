"""`levitattn(heads=h, key_dim=k, value_dim=v[, ->o][, map=HxW][, stride=s][, bn][, bias][, act=NAME])`
(docs/language.md, LeViT attention; a paramsym extension): LeViT's and EfficientFormer's attention over the
positions of a map, with a learned bias per head for each offset (|rows|, |columns|) between two positions of
the whole map, and values wider or narrower than the keys.

On a sequence of T = H·W positions (`map=HxW` says the map it lays out row by row) or on an H x W map of d
channels: one projection gives each position h heads of k query, k key and v value channels (K = h·k, V = h·v);
each query scores every key, plus the bias of its head for their offset (h·H·W biases: one per head for each
(|Δrow|, |Δcolumn|)); the heads' weighted sums of values are joined (V channels), an optional activation
(`act=`, LeViT's Hardswish) and a projection give o channels (d without `->o`). With `stride=s` the queries come
from every s-th row and column of the map (LeViT's AttentionDownsample): Tq = ⌈H/s⌉·⌈W/s⌉ queries, and the
output has Tq positions. `bn`: the projections have no bias and a BatchNorm each (LeViT's LinearNorm); `bias`:
they have biases (EfficientFormer).

    params = d·(2K + V) + V·o + h·H·W  [+ 2·(2K + V) + 2o with bn]  [+ 2K + V + o with bias]
    state  = 2·(2K + V) + 2o with bn   (the BatchNorms' running means and variances)
    MACs   = T·d·(K + V) + Tq·d·K + Tq·T·(K + V) + Tq·V·o

PyTorch: paramsym's `OffsetBiasAttention` (torch_modules); timm's levit.Attention, levit.AttentionDownsample and
efficientformer.Attention are read whole. FlopCounterMode counts these MACs on them
(tests/test_kind_levit_attention.py).
"""

from __future__ import annotations

import math
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
    whole_input_field,
    whole_number,
)

# the activations `act=` takes before the output projection, and PyTorch's modules for them
ACTIVATIONS = {"hardswish": "Hardswish", "relu": "ReLU", "silu": "SiLU", "gelu": "GELU"}


@dataclass(frozen=True)
class OffsetAttentionOptions(Options):
    heads: Expr
    key_dim: Expr
    value_dim: Expr
    height: Expr  # the map's sides (map= on a sequence, else the input's)
    width: Expr
    stride: Expr
    bn: bool
    act: str | None
    sequence: bool  # the input is a sequence (map=) rather than a map


class OffsetBiasAttention(Kind):
    key = "levitattn"
    names = ("levitattn",)
    keywords = frozenset({"heads", "key_dim", "value_dim", "map", "stride", "act"})
    flags = frozenset({"bn", "bias"})
    takes_channels = True
    torch_modules = (
        "paramsym.frameworks.torch_modules.OffsetBiasAttention",
        "timm.models.levit.Attention",
        "timm.models.levit.AttentionDownsample",
        "timm.models.efficientformer.Attention",
        "timm.models.levit.LinearNorm",  # read whole: its BatchNorm1d runs on the batch and positions flattened
    )

    # ---- language
    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        for key, example in (("heads", "4"), ("key_dim", "16"), ("value_dim", "64")):
            if key not in args.keywords:
                raise ParamsymArgumentError(
                    f"{call.name} needs {key}=: write {call.name}(heads=4, key_dim=16, value_dim=64, map=14x14, bn)",
                    pos=call.pos,
                    hint=f"e.g. {key}={example}",
                )
        if "bn" in args.flags and "bias" in args.flags:
            raise ParamsymArgumentError(
                "'bn' and 'bias' are two forms of the projections (LeViT's Linear without bias and a BatchNorm, "
                "EfficientFormer's Linear with bias): give one",
                pos=args.flags["bias"].pos,
            )
        d = input_channels(call, flow, args)
        out = args.channels.cout if args.channels is not None else d
        heads = known(args.scalar("heads"))
        key_dim, value_dim = known(args.scalar("key_dim")), known(args.scalar("value_dim"))
        stride = args.scalar("stride", sympy.Integer(1))
        height, width, sequence = self._map(call, flow, args)
        for n in (height, width):
            args.constraints += check_or_defer(
                n - stride + 1,
                "positive",
                f"stride={stride} is larger than the map's side {n}",
                args.keywords["stride"].pos if "stride" in args.keywords else call.pos,
                shown=n,
            )
        act = self._act(args)
        options = OffsetAttentionOptions(
            heads, key_dim, value_dim, height, width, stride, "bn" in args.flags, act, sequence
        )
        rows, cols = sympy.ceiling(height / stride), sympy.ceiling(width / stride)
        spatial = (rows * cols,) if sequence else (rows, cols)
        return make_layer(
            call,
            self,
            flow,
            Shape(spatial, out),
            d,
            out,
            bias=args.bias,
            options=options,
            constraints=tuple(args.constraints),
        )

    def _map(self, call: Call, flow: Flow, args: Args) -> tuple[Expr, Expr, bool]:
        """The map's sides: map=HxW on a sequence of H·W positions, or the input map's."""
        shape = flow.shape
        arg = args.keywords.get("map")
        if shape.rank == 2:
            if arg is not None:
                raise ParamsymArgumentError(
                    "map=HxW says which map a sequence lays out: the input is a map already",
                    pos=arg.pos,
                    hint="leave out map=",
                )
            height, width = shape.spatial or (None, None)
            if height is None or width is None:
                raise ParamsymShapeError(
                    f"{call.name} needs the sides of its map: nothing before it says them", pos=call.pos
                )
            return height, width, False
        if shape.rank != 1:
            what = "a vector" if shape.rank == 0 else shape.describe()
            raise ParamsymShapeError(
                f"{call.name} attends over the positions of a map (H x W x d) or of a sequence that lays one out "
                f"(T x d with map=HxW), but its input is {what}",
                pos=call.pos,
            )
        if arg is None:
            raise ParamsymArgumentError(
                f"{call.name} on a sequence needs the map it lays out (its biases are per offset on the map): map=HxW",
                pos=call.pos,
                hint=f"e.g. {call.name}(heads=4, key_dim=16, value_dim=64, map=14x14)",
            )
        if len(arg.value) != 2:
            raise ParamsymArgumentError("map= takes the map's two sides, H x W (map=14x14)", pos=arg.pos)
        height, width = arg.value[0], arg.value[1]
        for side in (height, width):
            if side.is_number and not (side.is_integer and side >= 1):
                raise ParamsymArgumentError(
                    f"map= (the map's sides) must be positive whole numbers, not {side}", pos=arg.pos
                )
            args.constraints += whole_number(side, "map= (a side of the map)", arg.pos)
        positions = shape.positions
        if positions is not None:
            args.constraints += check_or_defer(
                positions - height * width,
                "zero",
                f"map={height}x{width} has {height * width} positions, but the sequence has {positions}",
                arg.pos,
                shown=positions,
            )
        return height, width, True

    def _act(self, args: Args) -> str | None:
        arg = args.keywords.get("act")
        if arg is None:
            return None
        value = arg.value[0] if len(arg.value) == 1 else None
        name = str(value.name) if isinstance(value, sympy.Symbol) else ""
        if name not in ACTIVATIONS:
            raise ParamsymArgumentError(
                f"act= takes one of {', '.join(ACTIVATIONS)}, not {' x '.join(str(v) for v in arg.value)}",
                pos=arg.pos,
                hint="act=hardswish (LeViT)",
            )
        return name

    # ---- quantities
    @staticmethod
    def parts(layer: Layer) -> dict[str, Expr]:
        o = OffsetAttentionOptions.of(layer)
        rows, cols = sympy.ceiling(o.height / o.stride), sympy.ceiling(o.width / o.stride)
        return {
            "d": known(layer.cin),
            "o": known(layer.cout),
            "h": o.heads,
            "K": o.heads * o.key_dim,
            "V": o.heads * o.value_dim,
            "T": o.height * o.width,
            "Tq": rows * cols,
        }

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        p, o = self.parts(layer), OffsetAttentionOptions.of(layer)
        d, out, h, K, V, T, Tq = (p[x] for x in ("d", "o", "h", "K", "V", "T", "Tq"))
        params = d * (2 * K + V) + V * out + h * T
        state = sympy.Integer(0)
        if o.bn:
            params += 2 * (2 * K + V) + 2 * out
            state = 2 * (2 * K + V) + 2 * out
        if layer.bias:
            params += 2 * K + V + out
        macs = T * d * (K + V) + Tq * d * K + Tq * T * (K + V) + Tq * V * out
        return {
            "params": sympy.expand(params),
            "state": sympy.expand(state),
            "macs": sympy.expand(macs),
            "fan_in": d,
            "connections": times(layer.out_shape.elements, d),
            "kv_cache": sympy.expand(T * (K + V)),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        o = OffsetAttentionOptions.of(layer)
        K, V, T = o.heads * o.key_dim, o.heads * o.value_dim, o.height * o.width
        params = t.c_in * (2 * K + V) + V * t.c_out + o.heads * T
        if o.bn:
            params += 2 * (2 * K + V) + 2 * t.c_out
        if layer.bias:
            params += 2 * K + V + t.c_out
        return params

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field) if OffsetAttentionOptions.of(layer).stride == 1 else None

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        o = OffsetAttentionOptions.of(layer)
        return (
            f", {words(o.heads)} heads, keys of {words(o.key_dim)}, values of {words(o.value_dim)}, "
            f"biases per offset on the {words(o.height)}x{words(o.width)} map"
            + (f", queries every {words(o.stride)} rows and columns" if o.stride != 1 else "")
        )

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        p, o = self.parts(layer), OffsetAttentionOptions.of(layer)
        d, out, h, K, V, T, Tq = (p[x] for x in ("d", "o", "h", "K", "V", "T", "Tq"))
        form = (
            "each projection is a Linear without bias and a BatchNorm (LeViT's LinearNorm)"
            if o.bn
            else ("each projection is a Linear with bias" if layer.bias else "the projections have no bias")
        )
        queries = (
            f"queries at a stride of {w(o.stride)} along rows and columns ({w(Tq)} of them)"
            if o.stride != 1
            else "queries"
        )
        sentences = [
            f"Attention with biases per offset (LeViT's, EfficientFormer's; a paramsym extension): {w(d)} channels "
            f"projected to {w(h)} heads of {w(o.key_dim)} query and key channels and {w(o.value_dim)} value "
            f"channels ({w.product(d, 2 * K + V)} weights); {form}.",
            f"Each of the {queries} scores the {w(T)} keys, plus a learned bias per head for each offset "
            f"(|rows|, |columns|) on the {w(o.height)}x{w(o.width)} map ({w.product(h, T)} parameters).",
            f"The heads' {w(V)} values"
            + (f", through {o.act}," if o.act else "")
            + f" are projected to {w(out)} channels ({w.product(V, out)} weights).",
            f"{w(counts.params)} parameters.",
            f"MACs: the keys and values at {w(T)} positions, the queries at {w(Tq)}, the scores and the weighted "
            f"sums ({w.product(Tq, T, K + V)}), the output projection at {w(Tq)} positions.",
        ]
        return sentences

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = OffsetAttentionOptions.of(layer)
        return TorchSpec(
            "OffsetBiasAttention",
            (num(known(layer.cin)), num(o.heads), num(o.key_dim), num(o.value_dim), (num(o.height), num(o.width))),
            {
                "out": num(known(layer.cout)),
                "stride": num(o.stride),
                "norm": o.bn,
                "bias": layer.bias,
                "act": ACTIVATIONS[o.act] if o.act is not None else None,
            },
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "LeViT's attention (levitattn) has no Keras layer")

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        if type(module).__name__ == "LinearNorm":
            return _read_linear_norm(module, ctx)
        return read(module, ctx)


# ---- reading timm's modules ----------------------------------------------------------------------------------


def _linear_norm(block: Any, cin: int, cout: int) -> bool:
    """timm's LinearNorm: Linear without bias, then BatchNorm1d over the flattened positions."""
    linear: Any = getattr(block, "linear", None)
    bn: Any = getattr(block, "bn", None)
    return (
        type(block).__name__ == "LinearNorm"
        and type(linear).__name__ == "Linear"
        and type(bn).__name__ == "BatchNorm1d"
        and (linear.in_features, linear.out_features) == (cin, cout)
        and linear.bias is None
        and bn.num_features == cout
        and bn.affine
        and bn.track_running_stats
    )


def _read_linear_norm(module: Any, ctx: ImportContext) -> str:
    """timm's LinearNorm on a sequence (N, T, C): Linear without bias, then BatchNorm1d on (N·T, C), which is a
    BatchNorm over the channels of every position: `dense(->o) > bn`."""
    shape = tuple(ctx.arg_shapes[0]) if ctx.arg_shapes else tuple(ctx.in_shape)
    linear: Any = getattr(module, "linear", None)
    cin = getattr(linear, "in_features", -1)
    cout = getattr(linear, "out_features", -1)
    if len(shape) != 3 or shape[-1] != cin or not _linear_norm(module, cin, cout):
        raise ImportRefused(
            f"{ctx.node_name} (LinearNorm) is not LeViT's Linear without bias and BatchNorm1d on a sequence (N, T, C) "
            f"(its input is {shape})"
        )
    return f"dense(->{cout}) > bn"


def _linear(block: Any, cin: int, cout: int) -> bool:
    return (
        type(block).__name__ == "Linear"
        and (block.in_features, block.out_features) == (cin, cout)
        and block.bias is not None
    )


def _act_name(module: Any) -> str | None:
    name = type(module).__name__
    for word, torch_name in ACTIVATIONS.items():
        if name == torch_name and (name != "GELU" or getattr(module, "approximate", "none") == "none"):
            return word
    return None


def read(module: Any, ctx: ImportContext) -> str:
    where = f"{ctx.node_name} ({type(module).__name__})"
    name = type(module).__name__
    qualified = f"{type(module).__module__}.{name}"
    shape = tuple(ctx.arg_shapes[0]) if ctx.arg_shapes else tuple(ctx.in_shape)
    if getattr(module, "use_conv", False):
        raise ImportRefused(f"{where}: the convolutional form (use_conv=True, on (N, C, H, W)) is not read")
    on_map = False
    if name == "OffsetBiasAttention":  # paramsym's export: channels first, (N, C, T) or (N, C, H, W)
        if len(shape) not in (3, 4):
            raise ImportRefused(f"{where} takes a value of shape {shape}, not (N, C, T) nor (N, C, H, W)")
        on_map = len(shape) == 4
        d, T = shape[1], math.prod(shape[2:])
        if on_map and tuple(shape[2:]) != tuple(module.resolution):
            raise ImportRefused(f"{where} was built for a {module.resolution} map, not {tuple(shape[2:])}")
    elif len(shape) != 3:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not a sequence (N, T, C)")
    else:
        T, d = shape[1], shape[2]
    heads, k = module.num_heads, module.key_dim
    v = getattr(module, "val_dim", None)
    biases = getattr(module, "attention_biases", None)
    if v is None or biases is None or tuple(biases.shape) != (heads, biases.shape[1]):
        raise ImportRefused(f"{where} has no attention biases of (heads, positions) or no val_dim")
    K, V = heads * k, heads * v
    resolution = getattr(module, "resolution", None)
    if resolution is None:  # EfficientFormer keeps only the biases: a square map of T positions
        side = math.isqrt(T)
        if side * side != T or biases.shape[1] != T:
            raise ImportRefused(f"{where}: {biases.shape[1]} attention biases on {T} positions, not a square map's")
        resolution = (side, side)
        index = getattr(module, "attention_bias_idxs", None)
        if index is not None and not index.is_meta:
            import torch

            r = torch.arange(side)
            rows, cols = r.repeat_interleave(side), r.repeat(side)
            expected = (rows[:, None] - rows[None, :]).abs() * side + (cols[:, None] - cols[None, :]).abs()
            if tuple(index.shape) != (T, T) or not bool((index.cpu() == expected).all()):
                raise ImportRefused(f"{where}: its attention_bias_idxs are not the offsets (|rows|, |columns|)")
    H, W = (int(n) for n in resolution)
    stride = int(getattr(module, "stride", 1))
    if biases.shape[1] != H * W or H * W != T:
        raise ImportRefused(f"{where}: {biases.shape[1]} attention biases for a {H}x{W} map of {T} positions")
    proj = module.proj
    act: str | None = None
    bn = False
    if name == "OffsetBiasAttention":  # paramsym's own export
        bn, out, bias = module.norm, module.out, module.has_bias
        act_module = proj.act if bn else module.act
        act = _act_name(act_module)
        if act is None and type(act_module).__name__ != "Identity":
            raise ImportRefused(f"{where}: its activation {type(act_module).__name__} is not one act= names")
    elif qualified == "timm.models.efficientformer.Attention":
        out = d
        bias = True
        if not (_linear(module.qkv, d, 2 * K + V) and _linear(proj, V, d)):
            raise ImportRefused(f"{where} is not EfficientFormer's attention (qkv and proj Linears with biases)")
    else:
        bn, bias = True, False
        parts = dict(proj.named_children()) if type(proj).__name__ == "Sequential" else {}
        act = _act_name(parts.get("act"))
        out = parts["ln"].linear.out_features if "ln" in parts and hasattr(parts["ln"], "linear") else -1
        ok = act is not None and set(parts) == {"act", "ln"} and _linear_norm(parts["ln"], V, out)
        if name == "AttentionDownsample":
            q = dict(module.q.named_children()) if type(module.q).__name__ == "Sequential" else {}
            down: Any = q.get("down")
            ok = (
                ok
                and _linear_norm(module.kv, d, K + V)
                and set(q) == {"down", "ln"}
                and _linear_norm(q["ln"], d, K)
                and type(down).__name__ == "Downsample"
                and down.pool is None
                and int(down.stride) == stride
                and tuple(down.resolution) == (H, W)
            )
        else:
            ok = ok and _linear_norm(module.qkv, d, 2 * K + V) and stride == 1
        if not ok:
            raise ImportRefused(
                f"{where} is not LeViT's attention as levitattn writes it (LinearNorm projections, subsampled "
                f"queries without pooling, an activation of {', '.join(ACTIVATIONS)} before the output LinearNorm)"
            )
    return text(d, out, heads, k, v, None if on_map else (H, W), stride, bn, bias, act)


def text(
    d: int,
    out: int,
    heads: int,
    k: int,
    v: int,
    hw: tuple[int, int] | None,
    stride: int,
    bn: bool,
    bias: bool,
    act: str | None,
) -> str:
    """The layer as a program writes it (map= on a sequence; hw None on a map)."""
    parts = [f"->{out}"] * (out != d) + [f"heads={heads}", f"key_dim={k}", f"value_dim={v}"]
    parts += [f"map={hw[0]}x{hw[1]}"] if hw is not None else []
    parts += [f"stride={stride}"] * (stride != 1)
    parts += ["bn"] * bn + ["bias"] * bias + [f"act={act}"] * (act is not None)
    return f"levitattn({', '.join(parts)})"


KINDS = (OffsetBiasAttention(),)
