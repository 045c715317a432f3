"""`cga(heads=h, key_dim=k, value_dim=v, window=w, kernels=K1x...xKh)` (docs/language.md, Cascaded group
attention; a paramsym extension): EfficientViT's (Liu et al. 2023, timm's efficientvit_m0..m5) attention inside
w x w windows of a map H x W x d, its heads in a cascade.

The d channels are cut into h groups of c = d/h. Head i takes its group plus the output of head i − 1 (head 1 its
group alone), projects it with a 1x1 convolution and a BatchNorm to k query, k key and v value channels
(m = 2k + v), runs a depthwise Ki x Ki convolution and a BatchNorm over its queries, and attends inside each
w x w window, with a learned bias per head for each offset (|rows|, |columns|) of the window (w² per head, as
`attn(relpos=offsets)`). The h outputs of v channels are joined, and ReLU > 1x1 convolution > BatchNorm gives d
channels back. With `pad` the map is padded at the bottom and right to a multiple of w, as timm's
LocalWindowAttention does (without it a window that does not divide the map is refused); P is the padded map's
positions.

    params = h·(c·m + 2m + 2k) + k·ΣKi² + h·w² + h·v·d + 2d
    state  = h·(2m + 2k) + 2d                      (the BatchNorms' running means and variances)
    MACs   = P·(d·m + k·ΣKi² + h·w²·(k + v) + h·v·d)

PyTorch: paramsym's `CascadedWindowAttention` (torch_modules); timm's LocalWindowAttention is read whole.
FlopCounterMode counts these MACs on both (tests/test_kind_cga.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..core.records import KerasSpec, Layer, Options, TorchSpec
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError
from .base import (
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
    Template,
    Words,
    axes,
    check_or_defer,
    known,
    refuse_keras,
    same_layer,
    times,
    whole_number,
)


@dataclass(frozen=True)
class CascadedOptions(Options):
    heads: Expr
    key_dim: Expr
    value_dim: Expr
    window: Expr
    kernels: tuple[Expr, ...]  # the depthwise kernel on each head's queries
    pad: bool


class CascadedGroupAttention(Kind):
    key = "cga"
    names = ("cga",)
    keywords = frozenset({"heads", "key_dim", "value_dim", "window", "kernels"})
    flags = frozenset({"pad"})
    torch_modules = (
        "paramsym.frameworks.torch_modules.CascadedWindowAttention",
        "timm.models.efficientvit_msra.LocalWindowAttention",
    )

    # ---- language
    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        for key, example in (("heads", "4"), ("key_dim", "16"), ("value_dim", "64"), ("window", "7")):
            if key not in args.keywords:
                raise ParamsymArgumentError(
                    f"{call.name} needs {key}=: write {call.name}(heads=4, key_dim=16, value_dim=64, window=7, "
                    f"kernels=7x5x3x3)",
                    pos=call.pos,
                    hint=f"e.g. {key}={example}",
                )
        shape = flow.shape
        if shape.rank is not None and shape.rank != 2:
            what = "a vector" if shape.rank == 0 else shape.describe()
            raise ParamsymShapeError(
                f"{call.name} attends inside w x w windows of a map (H x W x d), but its input is {what}",
                pos=call.pos,
            )
        d = shape.channels
        if d is None:
            raise ParamsymShapeError(
                f"{call.name} needs the width of its input: nothing before it says it", pos=call.pos
            )
        heads = args.scalar("heads")
        key_dim, value_dim, window = args.scalar("key_dim"), args.scalar("value_dim"), args.scalar("window")
        assert heads is not None and key_dim is not None and value_dim is not None and window is not None
        kernels = self._kernels(call, args, heads)
        constraints = list(args.constraints)
        constraints += check_or_defer(
            d / heads,
            "integer",
            f"heads={heads} does not divide the width {d}: each head takes d/heads channels",
            args.keywords["heads"].pos,
        )
        if heads != 1:
            # head i adds head i − 1's values to its group of d/h channels: PyTorch cannot add other widths
            constraints += check_or_defer(
                value_dim - d / heads,
                "zero",
                f"value_dim={value_dim}: each head adds its values to the next head's group of d/heads = "
                f"{d / heads} channels, so value_dim must be {d / heads}",
                args.keywords["value_dim"].pos,
                shown=value_dim,
            )
        for size in shape.spatial or ():
            if size is not None and "pad" not in args.flags:
                constraints += check_or_defer(
                    size / window,
                    "integer",
                    f"window={window} does not divide the map's size {size}",
                    args.keywords["window"].pos,
                    hint="write 'pad' to pad the map to a multiple of w (as timm's LocalWindowAttention does)",
                )
        options = CascadedOptions(heads, key_dim, value_dim, window, kernels, "pad" in args.flags)
        return same_layer(call, self, flow, d, options=options, constraints=tuple(constraints))

    def _kernels(self, call: Call, args: Args, heads: Expr) -> tuple[Expr, ...]:
        arg = args.keywords.get("kernels")
        if arg is None:
            raise ParamsymArgumentError(
                f"{call.name} needs the depthwise kernel on each head's queries: kernels=7x5x3x3 (one per head)",
                pos=call.pos,
            )
        kernels = tuple(arg.value)
        if heads.is_number and len(kernels) != int(heads):
            raise ParamsymArgumentError(
                f"kernels= gives {len(kernels)} sizes for {heads} heads: one per head",
                pos=arg.pos,
                hint=f"e.g. kernels={'x'.join(['3'] * int(heads))}",
            )
        if not heads.is_number:
            raise ParamsymArgumentError("heads= must be a number with kernels= (one kernel per head)", pos=arg.pos)
        for k in kernels:
            if k.is_number and not (k.is_integer and k >= 1 and k % 2 == 1):
                raise ParamsymArgumentError(
                    f"a kernel of {k}: the depthwise kernels are odd whole numbers (padded by (K - 1)/2, the window "
                    f"keeps its size)",
                    pos=arg.pos,
                )
            args.constraints += whole_number(k, "a kernel size", arg.pos)
            args.constraints += whole_number((k - 1) / 2, "(a kernel size - 1) / 2", arg.pos, least=0)
        return kernels

    # ---- quantities
    @staticmethod
    def parts(layer: Layer) -> dict[str, Expr]:
        o = CascadedOptions.of(layer)
        d = known(layer.cin)
        h, k, v, w = o.heads, o.key_dim, o.value_dim, o.window
        sizes = axes(layer.in_shape)
        padded = (
            sympy.Mul(*(sympy.ceiling(known(n) / w) * w for n in sizes)) if o.pad else sympy.Mul(*map(known, sizes))
        )
        return {
            "d": d,
            "h": h,
            "k": k,
            "v": v,
            "w": w,
            "c": d / h,
            "m": 2 * k + v,
            "K2": sympy.Add(*(K**2 for K in o.kernels)),
            "P": padded,
        }

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        p = self.parts(layer)
        d, h, k, v, w, c, m, K2, P = (p[x] for x in ("d", "h", "k", "v", "w", "c", "m", "K2", "P"))
        params = h * (c * m + 2 * m + 2 * k) + k * K2 + h * w**2 + h * v * d + 2 * d
        macs = times(P, d * m + k * K2 + h * w**2 * (k + v) + h * v * d)
        return {
            "params": sympy.expand(params),
            "state": sympy.expand(h * (2 * m + 2 * k) + 2 * d),
            "macs": macs,
            "fan_in": c,
            "kv_cache": times(P, h, k + v),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        o = CascadedOptions.of(layer)
        h, k, v, w = o.heads, o.key_dim, o.value_dim, o.window
        m = 2 * k + v
        K2 = sympy.Add(*(K**2 for K in o.kernels))
        return sympy.expand(h * (t.c / h * m + 2 * m + 2 * k) + k * K2 + h * w**2 + h * v * t.c + 2 * t.c)

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return None  # windows that do not slide: left unknown, as window attention's

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        o = CascadedOptions.of(layer)
        return (
            f", {words(o.heads)} heads in a cascade, keys of {words(o.key_dim)}, values of {words(o.value_dim)}, "
            f"{words(o.window)}x{words(o.window)} windows" + (", map padded to a multiple" if o.pad else "")
        )

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        p, o = self.parts(layer), CascadedOptions.of(layer)
        d, h, k, v, c, m = p["d"], p["h"], p["k"], p["v"], p["c"], p["m"]
        kernels = ", ".join(f"{w(K)}x{w(K)}" for K in o.kernels)
        return [
            f"Cascaded group attention (EfficientViT's, a paramsym extension): the {w(d)} channels are cut into "
            f"{w(h)} groups of {w(c)}; each head takes its group plus the previous head's output.",
            f"Each head: a 1x1 convolution to {w(k)} query, {w(k)} key and {w(v)} value channels "
            f"({w.product(c, m)} weights) and a BatchNorm ({w(2 * m)} parameters, {w(2 * m)} of state), then a "
            f"depthwise convolution on its queries (kernels {kernels}) and a BatchNorm ({w(2 * k)} and {w(2 * k)}).",
            f"A learned bias per head for each offset (|rows|, |columns|) in a {w(o.window)}x{w(o.window)} window: "
            f"{w.product(h, o.window**2)} parameters.",
            f"The heads' {w.product(h, v)} values are joined, then ReLU, a 1x1 convolution back to {w(d)} channels "
            f"({w.product(h, v, d)} weights) and a BatchNorm ({w(2 * d)} parameters and {w(2 * d)} of state).",
            f"{w(counts.params)} parameters.",
            f"MACs over the {w(p['P'])} positions{' of the padded map' if o.pad else ''}: the projections, the "
            f"depthwise convolutions, and in each window the scores ({w(k)} channels) and the weighted sum "
            f"({w(v)} channels) over its {w(o.window**2)} positions.",
        ]

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = CascadedOptions.of(layer)
        return TorchSpec(
            "CascadedWindowAttention",
            (num(layer.cin), num(o.heads), num(o.key_dim), num(o.value_dim), num(o.window)),
            {"kernels": tuple(num(K) for K in o.kernels)},
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "cascaded group attention (EfficientViT) has no Keras layer")

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        where = f"{ctx.node_name} ({type(module).__name__})"
        attn = getattr(module, "attn", module)
        shape = ctx.in_shape
        if len(shape) != 4:
            raise ImportRefused(f"{where} takes a value of shape {shape}, not (N, C, H, W)")
        d, height, width = shape[1:]
        heads, k, v, w = attn.num_heads, attn.key_dim, attn.val_dim, attn.resolution
        qkvs, dws = list(attn.qkvs), list(attn.dws)
        proj = list(attn.proj)
        kernels = []

        def conv_norm(block: Any, cin: int, cout: int, kernel: int, groups: int) -> bool:
            conv: Any = getattr(block, "conv", None)
            bn: Any = getattr(block, "bn", None)
            return (
                type(conv).__name__ == "Conv2d"
                and type(bn).__name__ == "BatchNorm2d"
                and (conv.in_channels, conv.out_channels, conv.groups) == (cin, cout, groups)
                and tuple(conv.kernel_size) == (kernel, kernel)
                and tuple(conv.padding) == (kernel // 2, kernel // 2)
                and tuple(conv.stride) == (1, 1)
                and tuple(conv.dilation) == (1, 1)
                and conv.bias is None
                and conv.padding_mode == "zeros"
                and bn.num_features == cout
                and bn.affine
                and bn.track_running_stats
            )

        ok = d % heads == 0 and len(qkvs) == len(dws) == heads and len(proj) == 2
        for qkv, dw in zip(qkvs, dws) if ok else ():
            kernel = dw.conv.kernel_size[0] if type(getattr(dw, "conv", None)).__name__ == "Conv2d" else 0
            kernels.append(kernel)
            ok = ok and conv_norm(qkv, d // heads, 2 * k + v, 1, 1) and kernel % 2 == 1
            ok = ok and conv_norm(dw, k, k, kernel, k)
        biases = getattr(attn, "attention_biases", None)
        if not (
            ok
            and type(proj[0]).__name__ == "ReLU"
            and conv_norm(proj[1], heads * v, d, 1, 1)
            and biases is not None
            and tuple(biases.shape) == (heads, w * w)
        ):
            raise ImportRefused(
                f"{where} is not EfficientViT's cascaded group attention as the language writes it (per head a 1x1 "
                f"ConvNorm to 2 x key_dim + value_dim channels and an odd depthwise ConvNorm on the queries, heads x "
                f"w² attention biases, ReLU > 1x1 ConvNorm back to {d} channels)"
            )
        pad = ", pad" if (height % w or width % w) else ""
        return (
            f"cga(heads={heads}, key_dim={k}, value_dim={v}, window={w}, "
            f"kernels={'x'.join(str(K) for K in kernels)}{pad})"
        )


KINDS = (CascadedGroupAttention(),)
