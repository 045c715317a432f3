"""`outlook(heads=h, kernel=k, stride=s)` (docs/language.md, Outlook attention; a paramsym extension): VOLO's outlook
attention (Yuan et al. 2021; timm's `volo.OutlookAttention`) on a map H x W x C.

A Linear C -> C (biased with `bias`) gives the values; around each position of the stride-s grid (ceil(H/s) x
ceil(W/s) of them) the k x k neighbourhood of values is unfolded (padding (k-1)/2); the weights come from the map
average-pooled s x s (ceil mode): a biased Linear C -> h·k⁴ gives, per head, a k² x k² matrix, softmaxed over its
last axis, that mixes the k² values of the neighbourhood; the results are folded back (summed where neighbourhoods
overlap) onto H x W, and a biased Linear C -> C projects. The kernel is odd, so that the unfolded grid is the pooled
one.

Params: `2C² + C + h·k⁴·(C + 1)` (`+ C` with `bias`). MACs: `H·W·C²` (values) `+ n·h·k⁴·C` (the weights, n =
ceil(H/s)·ceil(W/s)) `+ n·k⁴·C` (the weighted values) `+ H·W·C²` (the projection): what FlopCounterMode counts on
timm's module (the pooling, unfold, softmax and fold count none).

PyTorch: paramsym's `OutlookAttention` (timm's operations on (N, C, H, W)); timm's `OutlookAttention` is imported
whole.
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
    whole_number,
)


@dataclass(frozen=True)
class OutlookOptions(Options):
    heads: Expr
    kernel: Expr
    stride: Expr


def _grid(layer: Layer) -> Expr | None:
    """n: the positions of the stride-s grid, ceil(H/s)·ceil(W/s)."""
    s = OutlookOptions.of(layer).stride
    spatial = layer.in_shape.spatial or ()
    if len(spatial) != 2 or any(n is None for n in spatial):
        return None
    return sympy.Mul(*(sympy.ceiling(known(n) / s) for n in spatial))


class OutlookAttention(Kind):
    key = "outlook"
    names = ("outlook",)
    keywords = frozenset({"heads", "kernel", "stride"})
    flags = frozenset({"bias", "nobias"})
    torch_modules = ("OutlookAttention", "timm.models.volo.OutlookAttention")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        if "heads" not in args.keywords:
            raise ParamsymArgumentError(
                f"{call.name} needs its number of heads: write {call.name}(heads=6, kernel=3, stride=2)", pos=call.pos
            )
        shape = flow.shape
        if shape.spatial is None or shape.channels is None or len(shape.spatial) != 2:
            what = "nothing known" if shape.spatial is None else f"the input {shape.describe()}"
            raise ParamsymShapeError(
                f"{call.name} attends over k x k neighbourhoods of a map (H x W x C), but it has {what}",
                pos=call.pos,
            )
        c = shape.channels
        heads = args.scalar("heads")
        kernel = args.scalar("kernel", sympy.Integer(3))
        stride = args.scalar("stride", sympy.Integer(1))
        for name, value in (("heads", heads), ("kernel", kernel), ("stride", stride)):
            pos = args.keywords[name].pos if name in args.keywords else call.pos
            args.constraints += whole_number(value, name, pos)
        kpos = args.keywords["kernel"].pos if "kernel" in args.keywords else call.pos
        args.constraints += check_or_defer(
            (kernel - 1) / 2, "integer", f"kernel={kernel} is even: outlook's neighbourhoods are odd (3, 5, ...)", kpos
        )
        args.constraints += check_or_defer(
            c / heads,
            "integer",
            f"heads={heads} does not divide the {c} channels (each head has C/h of them)",
            args.keywords["heads"].pos,
        )
        options = OutlookOptions(heads=heads, kernel=kernel, stride=stride)
        return make_layer(call, self, flow, shape, c, c, bias=args.bias, options=options)

    # ---- quantities
    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = OutlookOptions.of(layer)
        c = known(layer.cin)
        k4 = o.kernel**4
        params = 2 * c * c + c + o.heads * k4 * (c + 1) + (c if layer.bias else 0)
        spatial = layer.in_shape.spatial or ()
        hw = None if any(n is None for n in spatial) else sympy.Mul(*spatial)
        n = _grid(layer)
        parts = (times(hw, 2 * c * c), times(n, o.heads * k4 * c), times(n, k4 * c))
        macs = None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
        return {
            "params": params,
            "fan_in": c,
            "macs": macs,
            "connections": times(layer.out_shape.elements, o.kernel * o.kernel * c),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        """In textbook symbols: C the channels, h the heads, k the kernel (a Linear C -> h·k⁴ gives the weights)."""
        o = OutlookOptions.of(layer)
        h = t.named("h", o.heads)
        k = t.named("k", o.kernel)
        return 2 * t.c * t.c + t.c + h * k**4 * (t.c + 1) + (t.c if layer.bias else 0)

    def field(self, layer: Layer, field: Any) -> Any:
        """An output position takes the values of the k x k neighbourhoods of the grid positions within (k-1)/2 of
        it (k-1 either side) and the weights of their s x s pooled cells (within (k-1)/2 + s - 1 after it): as a
        centred window of 2k - 1 while s <= (k + 1)/2; unknown otherwise."""
        o = OutlookOptions.of(layer)
        if field is None or not (o.kernel.is_Integer and o.stride.is_Integer) or 2 * o.stride > o.kernel + 1:
            return None
        return tuple((r + 2 * (o.kernel - 1) * j, j, start) for r, j, start in field)

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        o = OutlookOptions.of(layer)
        return (
            f", {words(o.heads)} heads, {words(o.kernel)}x{words(o.kernel)} neighbourhoods, stride {words(o.stride)}"
            + (", with bias" if layer.bias else "")
        )

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = OutlookOptions.of(layer)
        c = known(layer.cin)
        k4 = o.kernel**4
        lines = [
            f"VOLO's outlook attention (a paramsym extension): a Linear gives the values, {w.product(c, c)} weights"
            + (f" + {w(c)} biases" if layer.bias else "")
            + f"; a Linear on the map pooled {w(o.stride)}x{w(o.stride)} gives each head's k² x k² weights over "
            f"the neighbourhood, {w.product(c, o.heads * k4)} weights + {w(o.heads * k4)} biases; the weighted "
            f"neighbourhoods are folded back onto the map; a Linear projects: {w.product(c, c)} weights + {w(c)} "
            "biases.",
            f"{w(counts.params)} parameters.",
        ]
        if counts.macs is not None:
            lines.append(
                "MACs: the values and the projection at every position, the weights and the weighted values at "
                f"every position of the stride grid: {w(counts.macs)}."
            )
        return lines

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = OutlookOptions.of(layer)
        kwargs = {"kernel": num(o.kernel), "stride": num(o.stride), "qkv_bias": layer.bias}
        return TorchSpec("OutlookAttention", (num(layer.cin), num(o.heads)), kwargs)

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "outlook attention (outlook) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        where = f"{ctx.node_name} ({type(module).__name__})"
        v: Any = getattr(module, "v", None)
        attn: Any = getattr(module, "attn", None)
        proj: Any = getattr(module, "proj", None)
        pool: Any = getattr(module, "pool", None)
        h: Any = getattr(module, "num_heads", None)
        k: Any = getattr(module, "kernel_size", None)
        s: Any = getattr(module, "stride", None)
        p: Any = getattr(module, "padding", None)
        c: Any = ctx.in_shape[1] if len(ctx.in_shape) > 1 else None
        if (
            not all(isinstance(n, int) and n >= 1 for n in (h, k, s, c))
            or k % 2 == 0
            or p != (k - 1) // 2
            or any(type(m).__name__ != "Linear" for m in (v, attn, proj))
            or (v.in_features, v.out_features) != (c, c)
            or (attn.in_features, attn.out_features) != (c, h * k**4)
            or attn.bias is None
            or (proj.in_features, proj.out_features) != (c, c)
            or proj.bias is None
            or c % h
            or type(pool).__name__ != "AvgPool2d"
            or pool.kernel_size not in (s, (s, s))
            or pool.stride not in (s, (s, s))
            or not pool.ceil_mode
            or pool.padding not in (0, (0, 0))
        ):
            raise ImportRefused(
                f"{where} is not outlook attention as the language writes it (a Linear C -> C for the values, a "
                "biased Linear C -> h·k⁴ on the map average-pooled s x s (ceil mode) for the weights, an odd kernel "
                "k with padding (k-1)/2, a biased Linear C -> C)"
            )
        return f"outlook(heads={h}, kernel={k}, stride={s}{', bias' if v.bias is not None else ''})"


KINDS = (OutlookAttention(),)
