"""`litemla(heads=h, head_dim=e[, ->o][, scales=k1xk2...][, qkv_bn][, bn][, bias])` (docs/language.md,
Multi-scale linear attention; a paramsym extension): EfficientViT's lightweight multi-scale linear attention
(Cai et al. 2023; timm's efficientvit_mit.LiteMLA) on an H x W map of d channels.

A 1x1 convolution gives q, k and v, 3T channels (T = h·e: h heads of e channels); for each scale k a depthwise
k x k convolution of the 3T channels and a 1x1 convolution in 3h groups (each mixes the e channels of one head's
q, k or v) make S more sets of heads from them (S the number of scales, default one scale of 5), so (1 + S)·h heads
attend; each head's attention is linear with ReLU as its kernel: ReLU(q)·(ReLU(k)ᵀ·[v, 1]), divided by its last
column (the normaliser); the (1 + S)·T channels are projected to o by a 1x1 convolution (d without `->o`).
`qkv_bn`: a BatchNorm after the q, k, v convolution; `bn`: a BatchNorm after the output convolution (timm's
default); `bias`: every convolution has biases (timm's use_bias=True).

    params = 3T·d + Σ_k 3T·(k² + e) + (1 + S)·T·o  [+ 6T with qkv_bn]  [+ 2o with bn]  [+ 3T + 6T·S + o with bias]
    state  = [6T with qkv_bn] + [2o with bn]   (the BatchNorms' running means and variances)
    MACs   = N·(3T·d + Σ_k 3T·(k² + e) + (1 + S)·T·o) + 2·N·(1 + S)·h·e·(e + 1)      (N = H·W)

The last term is the two matrix products of each head (kᵀ·[v, 1] and q·(kᵀ·[v, 1]), e·(e + 1) per position each);
the ReLUs, the division and the BatchNorms are element-wise: FlopCounterMode counts these MACs on timm's module
(tests/test_kind_lite_mla.py).

PyTorch: paramsym's `MultiScaleLinearAttention` (torch_modules, timm's names); timm's LiteMLA is read whole.
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
    whole_input_field,
    whole_number,
)

DEFAULT_SCALES = (sympy.Integer(5),)


@dataclass(frozen=True)
class LiteMLAOptions(Options):
    heads: Expr
    head_dim: Expr
    scales: tuple[Expr, ...]
    qkv_bn: bool
    bn: bool


class MultiScaleLinearAttention(Kind):
    key = "litemla"
    names = ("litemla",)
    keywords = frozenset({"heads", "head_dim", "scales"})
    flags = frozenset({"bn", "qkv_bn", "bias", "nobias"})
    takes_channels = True
    torch_modules = (
        "paramsym.frameworks.torch_modules.MultiScaleLinearAttention",
        "timm.models.efficientvit_mit.LiteMLA",
    )

    # ---- language
    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        for key, example in (("heads", "4"), ("head_dim", "16")):
            if key not in args.keywords:
                raise ParamsymArgumentError(
                    f"{call.name} needs {key}=: write {call.name}(heads=4, head_dim=16, scales=5, bn)",
                    pos=call.pos,
                    hint=f"e.g. {key}={example}",
                )
        shape = flow.shape
        if shape.rank != 2:
            what = "a vector" if shape.rank == 0 else shape.describe()
            raise ParamsymShapeError(
                f"{call.name} attends over the positions of a map (H x W x d), but its input is {what}",
                pos=call.pos,
            )
        d = input_channels(call, flow, args)
        out = args.channels.cout if args.channels is not None else d
        heads, head_dim = args.scalar("heads"), args.scalar("head_dim")
        args.constraints += whole_number(heads, "heads", args.keywords["heads"].pos)
        args.constraints += whole_number(head_dim, "head_dim", args.keywords["head_dim"].pos)
        scales = DEFAULT_SCALES
        arg = args.keywords.get("scales")
        if arg is not None:
            scales = tuple(arg.value)
            for k in scales:
                args.constraints += whole_number(k, "scales= (a kernel size)", arg.pos)
                args.constraints += check_or_defer(
                    (k - 1) / 2,
                    "integer",
                    f"scales= takes odd kernel sizes (padded k // 2 on each side), not {k}",
                    arg.pos,
                    shown=k,
                )
        options = LiteMLAOptions(heads, head_dim, scales, "qkv_bn" in args.flags, "bn" in args.flags)
        return make_layer(
            call,
            self,
            flow,
            Shape(shape.spatial, out),
            d,
            out,
            bias=args.bias,
            options=options,
            constraints=tuple(args.constraints),
        )

    # ---- quantities
    @staticmethod
    def _params(d: Expr, out: Expr, o: LiteMLAOptions, bias: bool) -> Expr:
        T, S, e = o.heads * o.head_dim, len(o.scales), o.head_dim
        params = 3 * T * d + sum((3 * T * (k * k + e) for k in o.scales), sympy.Integer(0)) + (1 + S) * T * out
        if o.qkv_bn:
            params += 6 * T
        if o.bn:
            params += 2 * out
        if bias:
            params += 3 * T + 6 * T * S + out
        return params

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = LiteMLAOptions.of(layer)
        d, out = known(layer.cin), known(layer.cout)
        h, e, S = o.heads, o.head_dim, len(o.scales)
        T = h * e
        state = (6 * T if o.qkv_bn else 0) + (2 * out if o.bn else 0)
        per_position = (
            3 * T * d
            + sum((3 * T * (k * k + e) for k in o.scales), sympy.Integer(0))
            + (1 + S) * T * out
            + 2 * (1 + S) * h * e * (e + 1)
        )
        return {
            "params": sympy.expand(self._params(d, out, o, layer.bias)),
            "state": sympy.expand(sympy.sympify(state)),
            "macs": times(layer.in_shape.positions, sympy.expand(per_position)),
            "fan_in": d,
            "connections": times(layer.out_shape.elements, d),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return self._params(t.c_in, t.c_out, LiteMLAOptions.of(layer), layer.bias)

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        o = LiteMLAOptions.of(layer)
        scales = "x".join(words(k) for k in o.scales)
        return (
            f", {words(layer.cin)} -> {words(layer.cout)} channels, {words(o.heads)} heads of {words(o.head_dim)} "
            f"channels, scales {scales}" + (", with bias" if layer.bias else "")
        )

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = LiteMLAOptions.of(layer)
        d, out = known(layer.cin), known(layer.cout)
        h, e, S = o.heads, o.head_dim, len(o.scales)
        T = h * e
        lines = [
            f"EfficientViT's multi-scale linear attention (a paramsym extension): a 1x1 convolution gives q, k and v "
            f"for {w(h)} heads of {w(e)} channels ({w.product(d, 3 * T)} weights"
            + (", then a BatchNorm" if o.qkv_bn else "")
            + ").",
            "Each scale ("
            + ", ".join(f"{w(k)}x{w(k)}" for k in o.scales)
            + f") adds {w(h)} heads: a depthwise convolution of the {w(3 * T)} channels and a 1x1 convolution "
            f"in {w(3 * h)} groups of {w(e)} channels.",
            f"Each of the {w((1 + S) * h)} heads attends linearly: ReLU(q)·(ReLU(k)ᵀ·[v, 1]), divided by its last "
            f"column; a 1x1 convolution projects the {w((1 + S) * T)} channels to {w(out)} "
            f"({w.product((1 + S) * T, out)} weights" + (", then a BatchNorm" if o.bn else "") + ").",
            f"{w(counts.params)} parameters" + (", with biases on every convolution." if layer.bias else "."),
        ]
        lines.append(
            "MACs: the convolutions at every position, and each head's two matrix products "
            f"({w.product(2, e, e + 1)} per position); the ReLUs, the division and the BatchNorms are element-wise."
        )
        return lines

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = LiteMLAOptions.of(layer)
        return TorchSpec(
            "MultiScaleLinearAttention",
            (num(known(layer.cin)), num(known(layer.cout)), num(o.heads), num(o.head_dim)),
            {
                "scales": tuple(num(k) for k in o.scales),
                "qkv_norm": o.qkv_bn,
                "norm": o.bn,
                "bias": layer.bias,
            },
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "EfficientViT's multi-scale linear attention (litemla) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return read(module, ctx)


# ---- reading timm's module ------------------------------------------------------------------------------------


def _conv(conv: Any, cin: int, cout: int, kernel: int, groups: int, bias: bool) -> bool:
    return (
        type(conv).__name__ == "Conv2d"
        and (conv.in_channels, conv.out_channels, conv.groups) == (cin, cout, groups)
        and tuple(conv.kernel_size) == (kernel, kernel)
        and tuple(conv.stride) == (1, 1)
        and tuple(conv.dilation) == (1, 1)
        and tuple(conv.padding) == (kernel // 2, kernel // 2)
        and conv.padding_mode == "zeros"
        and (conv.bias is not None) == bias
    )


def _norm(module: Any, channels: int) -> bool | None:
    """True for a BatchNorm2d of `channels` (affine, with running statistics), False for none, None otherwise."""
    name = type(module).__name__
    if name == "Identity":
        return False
    if name == "BatchNorm2d" and module.num_features == channels and module.affine and module.track_running_stats:
        return True
    return None


def _conv_norm(block: Any, cin: int, cout: int, bias: bool) -> bool | None:
    """timm's ConvNormAct 1x1 without dropout or activation: whether it has a BatchNorm (None: not this form)."""
    if type(block).__name__ not in ("ConvNormAct", "_ConvNorm"):
        return None
    dropout: Any = getattr(block, "dropout", None)
    if dropout is not None and not (type(dropout).__name__ == "Dropout" and dropout.p == 0):
        return None
    if type(getattr(block, "act", None)).__name__ not in ("Identity", "NoneType"):
        return None
    if not _conv(getattr(block, "conv", None), cin, cout, 1, 1, bias):
        return None
    return _norm(getattr(block, "norm", None), cout)


def read(module: Any, ctx: ImportContext) -> str:
    where = f"{ctx.node_name} ({type(module).__name__})"
    shape = tuple(ctx.arg_shapes[0]) if ctx.arg_shapes else tuple(ctx.in_shape)
    if len(shape) != 4:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not a map (N, C, H, W)")
    d = shape[1]
    e = getattr(module, "dim", None)
    qkv: Any = getattr(module, "qkv", None)
    proj: Any = getattr(module, "proj", None)
    aggreg: Any = getattr(module, "aggreg", None)
    conv: Any = getattr(qkv, "conv", None)
    kernel_func: Any = getattr(module, "kernel_func", None)
    if not isinstance(e, int) or conv is None or getattr(proj, "conv", None) is None or aggreg is None:
        raise ImportRefused(f"{where} is not EfficientViT's LiteMLA (qkv, aggreg, proj and dim)")
    bias = conv.bias is not None
    T = conv.out_channels // 3
    heads = T // e if e else 0
    scales: list[int] = []
    ok = heads >= 1 and heads * e * 3 == conv.out_channels and type(kernel_func).__name__ == "ReLU"
    for branch in aggreg if ok else ():
        parts = list(branch.children()) if type(branch).__name__ == "Sequential" else []
        k = parts[0].kernel_size[0] if parts and type(parts[0]).__name__ == "Conv2d" else 0
        ok = (
            ok
            and len(parts) == 2
            and k % 2 == 1
            and _conv(parts[0], 3 * T, 3 * T, k, 3 * T, bias)
            and _conv(parts[1], 3 * T, 3 * T, 1, 3 * heads, bias)
        )
        scales.append(k)
    out = getattr(proj.conv, "out_channels", -1)
    qkv_bn = _conv_norm(qkv, d, 3 * T, bias) if ok else None
    bn = _conv_norm(proj, (1 + len(scales)) * T, out, bias) if ok else None
    if not ok or not scales or qkv_bn is None or bn is None:
        raise ImportRefused(
            f"{where} is not LiteMLA as litemla writes it (1x1 q, k, v and output convolutions with a BatchNorm2d "
            "or none and no activation, at least one scale of a depthwise and a grouped 1x1 convolution, biases on "
            "all convolutions or none, ReLU as the kernel)"
        )
    return text(d, out, heads, e, tuple(scales), qkv_bn, bn, bias)


def text(d: int, out: int, heads: int, e: int, scales: tuple[int, ...], qkv_bn: bool, bn: bool, bias: bool) -> str:
    parts = [f"->{out}"] * (out != d) + [f"heads={heads}", f"head_dim={e}"]
    parts += [f"scales={'x'.join(str(k) for k in scales)}"] * (scales != (5,))
    parts += ["qkv_bn"] * qkv_bn + ["bn"] * bn + ["bias"] * bias
    return f"litemla({', '.join(parts)})"


KINDS = (MultiScaleLinearAttention(),)
