"""Pooling: sliding-window `maxpool`/`avgpool` (and `pool`, a 2x2 max pool),
and global `gap`/`gmp`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..core import saved as saved_tensors
from ..core.records import ONE, KerasSpec, Layer, Options, Shape, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError, ParamsymUsageError
from . import windows
from .base import (
    Args,
    Call,
    Constraint,
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
    family,
    make_layer,
    refuse_keras,
    times,
    whole_input_field,
)


@dataclass(frozen=True)
class PoolingOptions(Options):
    op: str  # "max" or "avg"
    ceil: bool  # ceil mode: the output size rounds up


class Pooling(Kind):
    key = "pool"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Its input; a max pool also the position of each maximum (int64, one per output value)."""
        if PoolingOptions.of(layer).op == "avg":
            return saved_tensors.INPUT
        elements = layer.out_shape.elements
        return None if elements is None else saved_tensors.Saved(True, extras=(saved_tensors.Extra(elements, 8),))

    names = ("pool",)
    pattern = windows.window_pattern("maxpool", "avgpool")
    suggestions = ("maxpool2x2", "maxpool3x3", "avgpool2x2", "avgpool3x3")
    keywords = frozenset({"k", "stride", "pad", "dilation"})
    flags = frozenset({"ceil"})
    # timm's MaxPool2dSame / AvgPool2dSame pad as TensorFlow's "same" in forward (-inf / 0): pad=same
    torch_modules = (
        "MaxPool1d",
        "MaxPool2d",
        "MaxPool3d",
        "AvgPool1d",
        "AvgPool2d",
        "AvgPool3d",
        "timm.layers.pool2d_same.MaxPool2dSame",
        "timm.layers.pool2d_same.AvgPool2dSame",
    )
    takes_pad = True
    torch_functions = ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        assert self.pattern is not None
        found = family(self.pattern.fullmatch("maxpool2x2") if match is True else match)  # `pool` is maxpool2x2
        op = "max" if found["family"] == "maxpool" else "avg"
        if op == "avg" and "dilation" in args.keywords:
            raise ParamsymArgumentError("average pooling has no dilation", pos=args.keywords["dilation"].pos)
        kernel = windows.kernel(call, args, found)
        rank = len(kernel)
        spatial_in = windows.spatial(call, flow, rank, found)
        channels = flow.shape.channels
        stride = args.sizes("stride", rank, kernel)
        dilation = args.sizes("dilation", rank, (ONE,) * rank)
        ceil_mode = "ceil" in args.flags
        size_rule = windows.pool_output_size_ceil if ceil_mode else windows.conv_output_size
        pad, spatial_out = windows.windows(args, rank, spatial_in, kernel, stride, dilation, size_rule)
        constraints = windows.sizes_positive(call, spatial_out) + _pad_within_half(args, kernel, pad)
        if op == "avg" and rank == 3:
            constraints += _input_covers_kernel(call, spatial_in, kernel, pad)
        return make_layer(
            call,
            self,
            flow,
            Shape(spatial_out, channels),
            channels,
            channels,
            kernel=kernel,
            stride=stride,
            pad=pad,
            dilation=dilation,
            options=PoolingOptions(op, ceil_mode),
            constraints=tuple(constraints),
        )

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        k = layer.kernel_size
        return {"fan_in": k, "connections": times(k, layer.out_shape.elements)}

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return windows.window_field(layer, field)

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        op = "maximum" if PoolingOptions.of(layer).op == "max" else "average"
        return [
            f"No parameters: it takes the {op} of each {windows.kernel_text(layer, w)} window, channel by channel."
        ] + windows.size_sentence(layer, w, ceil=PoolingOptions.of(layer).ceil)

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        rank, o = len(layer.kernel), PoolingOptions.of(layer)
        if o.op == "max":
            module = TorchSpec(
                f"nn.MaxPool{rank}d",
                (num.each(layer.kernel),),
                {
                    "stride": num.each(layer.stride),
                    "padding": windows.torch_padding(layer, num),
                    "dilation": num.each(layer.dilation),
                    "ceil_mode": o.ceil,
                },
            )
            return windows.same_padded(layer, num, module, same_value=float("-inf"))
        module = TorchSpec(
            f"nn.AvgPool{rank}d",
            (num.each(layer.kernel),),
            {
                "stride": num.each(layer.stride),
                "padding": windows.torch_padding(layer, num),
                "ceil_mode": o.ceil,
            },
        )
        return windows.same_padded(layer, num, module)

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        windows.keras_window_checks(layer, num, pooling=True)
        rank = len(layer.kernel)
        if any(d > 1 for d in num.each(layer.dilation)):
            refuse_keras(layer, "Keras pooling has no dilation")
        before, pad = windows.keras_padding(layer, num, rank, ceil=PoolingOptions.of(layer).ceil)
        op = "Max" if PoolingOptions.of(layer).op == "max" else "Average"
        return before + [
            KerasSpec(
                f"{op}Pooling{rank}D",
                {"pool_size": num.each(layer.kernel), "strides": num.each(layer.stride), "padding": pad},
            )
        ]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        rank = ctx.rank
        op = "max" if "Max" in type(module).__name__ else "avg"
        kernel = windows.per_axis(module.kernel_size, rank)
        stride = windows.per_axis(module.stride or module.kernel_size, rank)
        dilation = windows.per_axis(getattr(module, "dilation", 1), rank)
        pad = windows.imported_padding(module, ctx, kernel, stride, dilation)
        parts = windows.window_arguments(
            stride, pad if not isinstance(pad, str) else (0,) * rank, dilation, default_stride=kernel
        )
        if pad == "same":
            parts.append("pad=same")
        if module.ceil_mode:
            parts.append("ceil")
        return f"{op}pool{windows.kernel_name(kernel)}" + (f"({windows.arguments(*parts)})" if parts else "")

    def from_torch_function(self, name: str, node: Any, ctx: ImportContext) -> str | None:
        """F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode) and F.avg_pool2d(x, kernel_size,
        stride, padding, ceil_mode, ...), read as the module with those arguments (Inception-v3)."""
        order = (
            ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
            if name.startswith("max")
            else ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
        )
        values = {
            "stride": None,
            "padding": 0,
            "dilation": 1,
            "ceil_mode": False,
            "divisor_override": None,
            "return_indices": False,
        }
        values.update(zip(order, node.args[1:]))
        values.update(node.kwargs)
        if values["divisor_override"] is not None or values["return_indices"]:
            raise ImportRefused(
                f"{ctx.node_name} ({name} with divisor_override or return_indices) has no counterpart in the language"
            )
        cls = ("MaxPool" if name.startswith("max") else "AvgPool") + name[-2:]
        module = type(cls, (), values)()
        return self.from_torch(module, ctx)


def _pad_within_half(args: Args, kernel: tuple[Expr, ...], pad: tuple[Any, ...]) -> list[Constraint]:
    """PyTorch pools only with pad <= kernel // 2 on each axis (MaxPool and AvgPool, 1-D to 3-D; a
    dilation does not enlarge the bound: MaxPool2d(3, dilation=2, padding=2) fails too)."""
    if pad and pad[0] == "same":
        return []  # exported as explicit padding before a pool with pad=0
    dilated = "; a dilation does not change that" if "dilation" in args.keywords else ""
    constraints = []
    for k, p in zip(kernel, pad):
        if p == 0:
            continue
        constraints += check_or_defer(
            sympy.floor(k / 2) - p,
            "nonnegative",
            f"pad {p} must be at most half of the kernel size {k} (PyTorch: pad should be at most half of "
            f"kernel size{dilated})",
            args.keywords["pad"].pos,
            shown=p,
        )
    return constraints


def _input_covers_kernel(
    call: Call, spatial_in: tuple[Expr | None, ...], kernel: tuple[Expr, ...], pad: tuple[Any, ...]
) -> list[Constraint]:
    """PyTorch's AvgPool3d (only it: not AvgPool1d/2d, nor max pooling) needs an input at least as
    large as the kernel on each axis, padding aside: AvgPool3d(4, padding=2) on 3x3x3 fails."""
    if pad and pad[0] == "same":
        return []  # exported as explicit padding before the pool, which then sees the padded input
    constraints = []
    for n, k in zip(spatial_in, kernel):
        if n is None:
            continue
        constraints += check_or_defer(
            n - k,
            "nonnegative",
            f"{call.name} needs an input of at least its kernel size on each axis, padding aside, but an input "
            f"size is {n} and the kernel {k} (PyTorch's AvgPool3d: input image smaller than kernel size)",
            call.pos,
            shown=n,
            hint="use a smaller kernel, or pad=same",
        )
    return constraints


@dataclass(frozen=True)
class GlobalPoolingOptions(Options):
    op: str  # "avg" (gap) or "max" (gmp)


class GlobalPooling(Kind):
    key = "globalpool"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """gap keeps nothing (the gradient is spread evenly); gmp its input and the position of each channel's
        maximum (int64)."""
        if GlobalPoolingOptions.of(layer).op == "avg":
            return saved_tensors.NOTHING
        channels = layer.out_shape.channels
        return None if channels is None else saved_tensors.Saved(True, extras=(saved_tensors.Extra(channels, 8),))

    names = ("gap", "gmp")
    to_vector = True  # the importer: PyTorch keeps (N, C, 1, 1) where the language has the vector C
    torch_modules = (
        "AdaptiveAvgPool1d",
        "AdaptiveAvgPool2d",
        "AdaptiveAvgPool3d",
        "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d",
        "AdaptiveMaxPool3d",
    )
    torch_functions = (
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "adaptive_max_pool2d",
        "mean",
    )

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        if flow.shape.spatial == ():
            raise ParamsymShapeError(f"{call.name} needs spatial axes, but its input is already a vector", pos=call.pos)
        channels = flow.shape.channels
        op = "avg" if call.name == "gap" else "max"
        return make_layer(call, self, flow, Shape((), channels), channels, channels, options=GlobalPoolingOptions(op))

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        window = layer.in_shape.positions
        return {"fan_in": window, "connections": times(window, layer.cout)}

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return whole_input_field(layer, field)

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        op = "average" if GlobalPoolingOptions.of(layer).op == "avg" else "maximum"
        return [f"No parameters: it takes the {op} over all positions of each of the {w(layer.cout)} channels."]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        rank = layer.in_shape.rank
        if not rank:
            raise ParamsymUsageError(f"{layer.name} at {layer.pos} needs the input's number of axes to export")
        op = "Avg" if GlobalPoolingOptions.of(layer).op == "avg" else "Max"
        return TorchSpec("nn.Sequential", (TorchSpec(f"nn.Adaptive{op}Pool{rank}d", (1,)), TorchSpec("nn.Flatten")))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        op = "Average" if GlobalPoolingOptions.of(layer).op == "avg" else "Max"
        return [KerasSpec(f"Global{op}Pooling{layer.in_shape.rank}D")]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return _adaptive(ctx.node_name, type(module).__name__, module.output_size, ctx.in_shape)

    def from_torch_function(self, name: str, node: Any, ctx: ImportContext) -> str | None:
        if name == "mean":  # x.mean((2, 3)) and torch.mean(x, (2, 3)): over every spatial axis (MNASNet)
            dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
            rank = len(ctx.in_shape)
            if rank < 3 or sorted(d % rank for d in dims) != list(range(2, rank)):
                return None
            return "gap"
        size = node.args[1] if len(node.args) > 1 else node.kwargs["output_size"]
        return _adaptive(ctx.node_name, name.title().replace("_", ""), size, ctx.in_shape)


def _adaptive(node_name: str, cls: str, output_size: Any, in_shape: tuple[int, ...]) -> str:
    """AdaptiveAvgPool to 1 is gap; to the size it already has, nothing; to any other size,
    adaptiveavgpool(S) (adaptive.py)."""
    rank = len(in_shape) - 2
    size = windows.per_axis(output_size, rank)
    if all(s == 1 for s in size):
        return "gap" if "Avg" in cls else "gmp"
    size = tuple(s if s is not None else n for s, n in zip(size, in_shape[2:]))
    if size == tuple(in_shape[2:]):
        return ""
    return f"adaptive{'avg' if 'Avg' in cls else 'max'}pool({windows.sizes_text(size)})"


KINDS = (Pooling(), GlobalPooling())
