"""`blurpool(k)` (docs/language.md, Blur pooling): anti-aliased downsampling (Zhang 2019, "Making Convolutional
Networks Shift-Invariant Again"): each channel of a map is padded by reflection (or with zeros: `zeros`) and
convolved with a fixed k x k binomial filter at a stride (2 unless `stride=` says otherwise). The filter is not
learnt: no parameters and no state (timm registers it as a non-persistent buffer, which a checkpoint does not
hold); its depthwise convolution is C·k²·H'·W' multiply-accumulates, as FlopCounterMode counts it.

The padding is timm's `get_padding(k, stride)`: ((stride − 1) + (k − 1)) // 2 on every side. PyTorch's reflect
padding needs it below each input size. PyTorch: paramsym's `BlurPool` module in an export; timm's `BlurPool2d`
(resnetblur, densenetblur, tresnet) imports as it. Keras has no counterpart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..core.records import Layer, Options, Shape, TorchSpec
from ..errors import ImportRefused, ParamsymArgumentError
from . import windows
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
    Words,
    check_or_defer,
    make_layer,
    times,
    whole_number,
)


@dataclass(frozen=True)
class BlurPoolOptions(Options):
    reflect: bool  # padded by reflection (timm's default), else with zeros (`zeros`: timm's blurpc)


class BlurPool(Kind):
    key = "blurpool"
    names = ("blurpool",)
    keywords = frozenset({"stride"})
    flags = frozenset({"zeros"})
    positional = 1
    torch_modules = ("BlurPool", "timm.layers.blur_pool.BlurPool2d")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        kernel = sympy.Integer(3)  # `blurpool` alone: timm's default, the filter [1 2 1] x [1 2 1] / 16
        if args.positional:
            arg = args.positional[0]
            kernel = args.one_value(arg, "filter size")
            if not isinstance(kernel, sympy.Expr) or (kernel.is_number and not (kernel.is_integer and kernel >= 2)):
                raise ParamsymArgumentError(
                    f"{call.name}: the filter size {kernel} is not a whole number of at least 2",
                    pos=arg.pos,
                    hint="blurpool(3) blurs with the binomial filter [1 2 1] x [1 2 1] / 16",
                )
            args.constraints += whole_number(kernel - 1, "the filter size - 1", arg.pos)
        stride = args.scalar("stride", sympy.Integer(2))
        pad = sympy.floor((stride - 1 + kernel - 1) / 2)
        sizes = windows.spatial(call, flow, 2, None)
        out = tuple(None if n is None else windows.conv_output_size(n, kernel, stride, pad, ONE) for n in sizes)
        reflect = "zeros" not in args.flags
        constraints = windows.sizes_positive(call, out)
        if reflect:
            for n in sizes:
                if n is not None:
                    constraints += check_or_defer(
                        n - pad,
                        "positive",
                        f"{call.name} pads each side by reflection by {pad}, which PyTorch allows only below the "
                        f"input size {n}",
                        call.pos,
                        hint=f"write {call.name}(..., zeros) to pad with zeros",
                    )
        channels = flow.shape.channels
        return make_layer(
            call,
            self,
            flow,
            Shape(out, channels),
            channels,
            channels,
            kernel=(kernel, kernel),
            stride=(stride, stride),
            pad=(pad, pad),
            dilation=(ONE, ONE),
            options=BlurPoolOptions(reflect),
            constraints=tuple(constraints),
        )

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        k = layer.kernel_size
        return {
            "fan_in": k,
            "macs": times(k, layer.out_shape.elements),
            # its filter is fixed (a buffer): the backward computes the input's gradient alone (core/compute.py)
            "backward_macs": times(k, layer.out_shape.elements),
            "connections": times(k, layer.out_shape.elements),
        }

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return windows.window_field(layer, field)

    def header(self, layer: Layer, w: Words) -> str:
        k = layer.kernel[0]
        return f", {w(k)}x{w(k)} binomial filter, stride {w(layer.stride[0])}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        k, pad = layer.kernel[0], layer.pad[0]
        how = "by reflection" if BlurPoolOptions.of(layer).reflect else "with zeros"
        assert isinstance(pad, sympy.Expr)
        return [
            f"No parameters and no state: each channel is padded {how} by {w(pad)} on every side and convolved "
            f"with a fixed {w(k)}x{w(k)} binomial filter (not learnt) at stride {w(layer.stride[0])}: "
            f"{w.product(k, k)} multiply-accumulates per output value, {w(counts.macs)} in all."
        ] + windows.size_sentence(layer, w)

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        kwargs = {"stride": num(layer.stride[0])}
        if not BlurPoolOptions.of(layer).reflect:
            kwargs["zeros"] = True
        return TorchSpec("BlurPool", (num(layer.kernel[0]),), kwargs)

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        where = f"{ctx.node_name} ({type(module).__name__})"
        if len(ctx.in_shape) != 4:
            raise ImportRefused(f"{where} blurs a {len(ctx.in_shape) - 2}-D input; the language's blurpool a map")
        if type(module).__name__ == "BlurPool":
            kernel, stride, reflect = module.kernel, module.stride, not module.zeros
        else:
            kernel, stride = module.filt_size, module.stride
            pad = ((stride - 1) + (kernel - 1)) // 2
            if module.pad_mode not in ("reflect", "constant") or list(module.padding) != [pad] * 4:
                raise ImportRefused(
                    f"{where} pads by {module.pad_mode!r} by {module.padding}: the language's blurpool pads "
                    f"by reflection or with zeros by ((stride - 1) + (k - 1)) // 2"
                )
            if module.channels is not None and module.channels != ctx.in_shape[1]:
                raise ImportRefused(f"{where} holds {module.channels} filters for {ctx.in_shape[1]} channels")
            reflect = module.pad_mode == "reflect"
        parts = [str(kernel)] + ([f"stride={stride}"] if stride != 2 else []) + ([] if reflect else ["zeros"])
        return f"blurpool({', '.join(parts)})"


KINDS = (BlurPool(),)
