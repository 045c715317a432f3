"""Convolutions: `conv`, depthwise `dwconv`, separable `sepconv` (Keras'
SeparableConv) and transposed `deconv`, in 1, 2 and 3 spatial dimensions. `conv` and `dwconv` may be
weight-standardised (`std`, timm's StdConv2d) with a learned gain per output channel (`std, gain`, timm's
ScaledStdConv2d)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from .. import expansion
from ..core import saved as saved_tensors
from ..core.records import NO_OPTIONS, ONE, ZERO, KerasSpec, Layer, Options, Shape, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused, ParamsymArgumentError
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
    Template,
    Words,
    bias_of,
    bias_sentences,
    check_divides,
    check_or_defer,
    family,
    fan_in_sentence,
    input_channels,
    known,
    make_layer,
    output_channels,
    refuse_keras,
    times,
)

_FILTER_KEYS = frozenset({"k", "stride", "pad", "dilation", "groups"})
_BIAS = frozenset({"bias", "nobias"})
# weight standardisation (docs/language.md, Layers): `std`, and with `gain` a learned factor per output channel
_STANDARDISED = frozenset({"std", "gain"})


@dataclass(frozen=True)
class StandardisedOptions(Options):
    """A weight-standardised convolution (`std`): each filter's weights are normalised to mean 0 and variance 1
    before use (timm's StdConv2d); with `gain`, each then multiplied by a learned factor per output channel
    (timm's ScaledStdConv2d). Layers without `std` keep NO_OPTIONS."""

    gain: bool


def standardised(layer: Layer) -> StandardisedOptions | None:
    """The layer's weight standardisation, or None (a plain convolution)."""
    return layer.options if isinstance(layer.options, StandardisedOptions) else None


def _gain_of(layer: Layer) -> Expr:
    std = standardised(layer)
    return known(layer.cout) if std is not None and std.gain else ZERO


# timm's weight-standardised convolutions: (class, whether it has a gain); the ...Same ones pad as TensorFlow's
# "same" when their padding depends on the input (windows.imported_padding)
_TIMM_STANDARDISED = (
    "timm.layers.std_conv.StdConv2d",
    "timm.layers.std_conv.StdConv2dSame",
    "timm.layers.std_conv.ScaledStdConv2d",
    "timm.layers.std_conv.ScaledStdConv2dSame",
)


def _standardisation(call: Call, args: Args) -> Options:
    """`std` / `std, gain` as the layer's options; `gain` alone is refused."""
    if "gain" in args.flags and "std" not in args.flags:
        raise ParamsymArgumentError(
            f"{call.name}: gain is the learned factor per output channel of a weight-standardised "
            f"convolution (timm's ScaledStdConv2d); write std, gain",
            pos=args.flags["gain"].pos,
        )
    return StandardisedOptions("gain" in args.flags) if "std" in args.flags else NO_OPTIONS


class _Filters(Kind):
    """What convolutions share: kernel, input sizes, channels, groups, stride, dilation."""

    keywords = _FILTER_KEYS
    flags = _BIAS
    takes_channels = True

    def filters(
        self, call: Call, flow: Flow, args: Args, match: NameMatch
    ) -> tuple[
        tuple[Expr, ...],
        int,
        tuple[Expr | None, ...],
        Expr,
        Expr,
        Expr,
        tuple[Expr, ...],
        tuple[Expr, ...],
        list[Constraint],
    ]:
        """kernel, rank, input sizes, channels in and out, groups, stride, dilation and the conditions on them."""
        match = family(match)
        kernel = windows.kernel(call, args, match)
        rank = len(kernel)
        spatial_in = windows.spatial(call, flow, rank, match)
        cin = input_channels(call, flow, args)
        cout, groups = self.channels_and_groups(call, args, cin)
        constraints: list[Constraint] = []
        if groups != ONE:
            group_pos = args.keywords["groups"].pos if "groups" in args.keywords else call.pos
            constraints += check_divides(call, groups, cin, "input", group_pos)
            constraints += check_divides(call, groups, cout, "output", group_pos)
        stride = args.sizes("stride", rank, (ONE,) * rank)
        dilation = args.sizes("dilation", rank, (ONE,) * rank)
        return kernel, rank, spatial_in, cin, cout, groups, stride, dilation, constraints

    def channels_and_groups(self, call: Call, args: Args, cin: Expr) -> tuple[Expr, Expr]:
        return output_channels(call, args), args.scalar("groups", ONE)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        kernel, rank, spatial_in, cin, cout, groups, stride, dilation, constraints = self.filters(
            call, flow, args, match
        )
        pad, spatial_out = windows.windows(args, rank, spatial_in, kernel, stride, dilation, windows.conv_output_size)
        constraints += windows.sizes_positive(call, spatial_out)
        options = _standardisation(call, args) if self.flags & _STANDARDISED else NO_OPTIONS
        return make_layer(
            call,
            self,
            flow,
            Shape(spatial_out, cout),
            cin,
            cout,
            kernel=kernel,
            stride=stride,
            pad=pad,
            dilation=dilation,
            groups=groups,
            bias=args.bias,
            options=options,
            constraints=tuple(constraints),
        )

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        # MACs are the convolution's: standardising the weights (a mean and a variance per filter, once per
        # forward, whatever the input's size) is not counted, as PyTorch's FlopCounterMode does not count it
        k, cin, cout, g = layer.kernel_size, known(layer.cin), known(layer.cout), layer.groups
        fan_in = k * cin / g
        macs = times(layer.out_shape.positions, cout, fan_in)
        params = fan_in * cout + bias_of(layer) + _gain_of(layer)
        return {"params": params, "fan_in": fan_in, "connections": macs, "macs": macs}

    def header(self, layer: Layer, words: Words) -> str:
        std = standardised(layer)
        if std is None:
            return super().header(layer, words)
        return super().header(layer, words) + ", weight-standardised" + (" with a gain" if std.gain else "")

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return windows.window_field(layer, field)

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return (
            self.weight_sentences(layer, w)
            + _standardised_sentences(layer, counts, w)
            + bias_sentences(layer, counts, w)
            + [fan_in_sentence(counts, w)]
            + windows.size_sentence(layer, w)
        )

    def weight_sentences(self, layer: Layer, w: Words) -> list[str]:
        k, cin, cout, g = layer.kernel_size, known(layer.cin), known(layer.cout), layer.groups
        ksize = windows.kernel_text(layer, w)
        if g != 1 and expansion.expand(g - cin) == 0:
            return _depthwise_sentences(layer, w)
        if g != 1:
            return [
                f"With groups={w(g)}, each filter sees only {w(cin)}/{w(g)} = {w(cin / g)} of the "
                f"{w(cin)} input channels: {w.product(*layer.kernel, cin / g)} weights per filter.",
                f"{w(cout)} filters: {w.product(k * cin / g, cout)} weights.",
            ]
        return [
            f"Each {ksize} filter spans all {w(cin)} input channels: {w.product(*layer.kernel, cin)} weights.",
            f"{w(cout)} filters (one per output channel): {w.product(k * cin, cout)} weights.",
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        kwargs = {
            "stride": num.each(layer.stride),
            "padding": windows.torch_padding(layer, num),
            "dilation": num.each(layer.dilation),
            "groups": num(layer.groups),
            "bias": layer.bias,
        }
        conv = TorchSpec(
            f"nn.Conv{len(layer.kernel)}d", (num(layer.cin), num(layer.cout), num.each(layer.kernel)), kwargs
        )
        std = standardised(layer)
        if std is not None:
            conv = TorchSpec("StdConv", (conv,), {"gain": True} if std.gain else {})
        return windows.same_padded(layer, num, conv)

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        _refuse_standardised_keras(layer)
        windows.keras_window_checks(layer, num)
        rank = len(layer.kernel)
        before, pad = windows.keras_padding(layer, num, rank)
        return before + [
            KerasSpec(
                f"Conv{rank}D",
                {"filters": num(layer.cout), "groups": num(layer.groups), **_keras_common(layer, num, pad)},
            )
        ]


def _keras_common(layer: Layer, num: Numbers, pad: str) -> dict[str, Any]:
    return {
        "kernel_size": num.each(layer.kernel),
        "strides": num.each(layer.stride),
        "padding": pad,
        "dilation_rate": num.each(layer.dilation),
        "use_bias": layer.bias,
    }


def _standardised_sentences(layer: Layer, counts: Counts, w: Words) -> list[str]:
    std = standardised(layer)
    if std is None:
        return []
    sentences = [
        "Weight standardisation: each filter's weights are shifted and scaled to mean 0 and variance 1 "
        "before use (no parameters; computed once per forward, not per position, and not counted in MACs)."
    ]
    if std.gain:
        sentences.append(f"A learned gain per output channel multiplies each standardised filter: {w(layer.cout)}.")
    return sentences


def _refuse_standardised_keras(layer: Layer) -> None:
    if standardised(layer) is not None:
        refuse_keras(layer, "Keras has no weight-standardised convolution")


def _depthwise_sentences(layer: Layer, w: Words) -> list[str]:
    k, cin, cout = layer.kernel_size, known(layer.cin), known(layer.cout)
    per = cout / cin
    return [
        f"Depthwise: each input channel has its own {windows.kernel_text(layer, w)} filter"
        + (f" ({w(per)} filters per channel)" if per != 1 else "")
        + ": "
        + f"{w.product(*layer.kernel)} weights per filter.",
        f"{w(cout)} filters: {w.product(k, cout)} weights.",
    ]


class Convolution(_Filters):
    key = "conv"
    weights_times_input = True

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Its input (for the weights' gradient); a weight-standardised one is not declared."""
        return None if standardised(layer) is not None else saved_tensors.INPUT

    pattern = windows.window_pattern("conv")
    suggestions = ("conv3x3", "conv1x1", "conv5x5", "conv7x7", "conv1d", "conv2d", "conv3d")
    flags = _BIAS | _STANDARDISED
    # timm's Conv2dSame pads as TensorFlow's "same" from the input size in forward: pad=same (windows.same_pairs);
    # its weight-standardised convolutions are `std` (and `std, gain`), paramsym's own export of them StdConv
    torch_modules = (
        "Conv1d",
        "Conv2d",
        "Conv3d",
        "timm.layers.conv2d_same.Conv2dSame",
        *_TIMM_STANDARDISED,
        "StdConv",
    )
    takes_pad = True

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        bias = t.c_out if layer.bias else ZERO
        gain = t.c_out if _gain_of(layer) != 0 else ZERO
        return t.k * (t.c_in / t.g if layer.groups != 1 else t.c_in) * t.c_out + bias + gain

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        std = _imported_standardisation(module)
        if type(module).__name__ == "StdConv":  # paramsym's own: the convolution it standardises
            module = module.conv
        rank = ctx.rank
        if rank == 0:  # a 1x1 convolution on a map of one position (after gap), as in squeeze-and-excitation
            if std:
                raise ImportRefused(
                    f"{ctx.node_name} ({type(module).__name__}) is a weight-standardised convolution on a map of "
                    f"one position, which the language cannot express"
                )
            return _dense_on_vector(module, ctx)
        kernel = windows.per_axis(module.kernel_size, rank)
        stride, dilation = windows.per_axis(module.stride, rank), windows.per_axis(module.dilation, rank)
        pad = windows.imported_padding(module, ctx, kernel, stride, dilation)
        if isinstance(pad, str):  # "same"
            pad_text = "pad=same"
            parts = windows.window_arguments(stride, (0,) * rank, dilation)
        else:
            parts = windows.window_arguments(stride, pad, dilation)
            pad_text = ""
        groups = f"groups={module.groups}" if module.groups != 1 else ""
        return (
            f"conv{windows.kernel_name(kernel)}("
            + windows.arguments(
                f"{module.in_channels}->{module.out_channels}",
                *parts,
                pad_text,
                groups,
                "bias" if module.bias is not None else "",
                std,
            )
            + ")"
        )


def _imported_standardisation(module: Any) -> str:
    """The flags of an imported weight-standardised convolution ("std", "std, gain"), "" for a plain one. A gain
    must be one factor per output channel (ScaledStdConv2d's (Cout, 1, 1, 1))."""
    name = f"{type(module).__module__}.{type(module).__qualname__}"
    if name not in _TIMM_STANDARDISED and type(module).__name__ != "StdConv":
        return ""
    gain = getattr(module, "gain", None)
    if gain is None or isinstance(gain, bool):
        return "std"
    out = module.conv.out_channels if type(module).__name__ == "StdConv" else module.out_channels
    if gain.numel() != out:
        raise ImportRefused(f"{type(module).__name__}'s gain has {gain.numel()} values, not one per output channel")
    return "std, gain"


def _dense_on_vector(module: Any, ctx: ImportContext) -> str:
    """Conv2d(A, B, 1) on the (N, A, 1, 1) that global pooling leaves is dense(A->B): the same weights and
    sums on the pooled vector."""
    if (
        isinstance(module.padding, str)
        or any(k != 1 for k in module.kernel_size)
        or any(p != 0 for p in module.padding)
        or module.groups != 1
        or ctx.extra_pad
    ):
        raise ImportRefused(
            f"{ctx.node_name} ({type(module).__name__}) on a map of one position is not a 1x1 "
            f"convolution without groups or padding, which the language cannot express"
        )
    return f"dense({module.in_channels}->{module.out_channels}{', bias' if module.bias is not None else ''})"


class DepthwiseConvolution(_Filters):
    """groups = Cin; the output channels default to the input's."""

    key = "dwconv"
    weights_times_input = True

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Its input (for the weights' gradient); a weight-standardised one is not declared."""
        return None if standardised(layer) is not None else saved_tensors.INPUT

    pattern = windows.window_pattern("dwconv")
    suggestions = ("dwconv3x3",)
    keywords = _FILTER_KEYS - {"groups"}
    flags = _BIAS | _STANDARDISED

    def channels_and_groups(self, call: Call, args: Args, cin: Expr) -> tuple[Expr, Expr]:
        return (args.channels.cout if args.channels is not None else cin), cin

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return t.k * t.c_out + (t.c_out if layer.bias else ZERO) + (t.c_out if _gain_of(layer) != 0 else ZERO)

    def weight_sentences(self, layer: Layer, w: Words) -> list[str]:
        return _depthwise_sentences(layer, w)

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        _refuse_standardised_keras(layer)
        rank = len(layer.kernel)
        if rank > 2:
            return super().keras(layer, num)
        windows.keras_window_checks(layer, num)
        before, pad = windows.keras_padding(layer, num, rank)
        return before + [
            KerasSpec(
                f"DepthwiseConv{rank}D",
                {"depth_multiplier": num(layer.cout) // num(layer.cin), **_keras_common(layer, num, pad)},
            )
        ]


class SeparableConvolution(_Filters):
    """Keras SeparableConv (depth multiplier 1): a depthwise k-filter per input channel,
    then a 1x1 convolution from Cin to Cout."""

    key = "sepconv"
    pattern = windows.window_pattern("sepconv")
    suggestions = ("sepconv3x3",)
    keywords = _FILTER_KEYS - {"groups"}

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        k, cin, cout = layer.kernel_size, known(layer.cin), known(layer.cout)
        positions = layer.out_shape.positions
        depthwise_macs = times(positions, cin, k)
        pointwise_macs = times(positions, cin, cout)
        macs = None if depthwise_macs is None else depthwise_macs + pointwise_macs
        fan_in = k * cin
        return {
            "params": k * cin + cin * cout + bias_of(layer),
            "fan_in": fan_in,
            "connections": times(fan_in, positions, cout),
            "macs": macs,
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return t.k * t.c_in + t.c_in * t.c_out + (t.c_out if layer.bias else ZERO)

    def weight_sentences(self, layer: Layer, w: Words) -> list[str]:
        return [
            f"Depthwise part: one {windows.kernel_text(layer, w)} filter per input channel: "
            f"{w.product(*layer.kernel, layer.cin)} weights.",
            f"Pointwise part: a 1x1 convolution from {w(layer.cin)} to {w(layer.cout)} channels: "
            f"{w.product(layer.cin, layer.cout)} weights.",
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        rank, cin = len(layer.kernel), num(layer.cin)
        depthwise = TorchSpec(
            f"nn.Conv{rank}d",
            (cin, cin, num.each(layer.kernel)),
            {
                "stride": num.each(layer.stride),
                "padding": windows.torch_padding(layer, num),
                "dilation": num.each(layer.dilation),
                "groups": cin,
                "bias": False,
            },
        )
        pointwise = TorchSpec(f"nn.Conv{rank}d", (cin, num(layer.cout), 1), {"bias": layer.bias})
        return TorchSpec("nn.Sequential", (windows.same_padded(layer, num, depthwise), pointwise))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        windows.keras_window_checks(layer, num)
        rank = len(layer.kernel)
        if rank > 2:
            refuse_keras(layer, "Keras has SeparableConv1D and SeparableConv2D only")
        before, pad = windows.keras_padding(layer, num, rank)
        return before + [
            KerasSpec(f"SeparableConv{rank}D", {"filters": num(layer.cout), **_keras_common(layer, num, pad)})
        ]


@dataclass(frozen=True)
class TransposedConvolutionOptions(Options):
    outpad: tuple[Expr, ...]  # the output padding per axis


class TransposedConvolution(_Filters):
    key = "deconv"
    weights_times_input = True

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Its input (for the weights' gradient); a weight-standardised one is not declared."""
        return None if standardised(layer) is not None else saved_tensors.INPUT

    pattern = windows.window_pattern("deconv")
    suggestions = ("deconv4x4", "deconv2x2")
    keywords = _FILTER_KEYS | {"outpad"}
    torch_modules = ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        kernel, rank, spatial_in, cin, cout, groups, stride, dilation, constraints = self.filters(
            call, flow, args, match
        )
        outpad = args.sizes("outpad", rank, (ZERO,) * rank)
        pad = windows.padding(args, rank)
        if pad == "same":
            raise ParamsymArgumentError(
                "pad=same is not defined for a transposed convolution; give pad=P", pos=args.keywords["pad"].pos
            )
        for s, d, o in zip(stride, dilation, outpad):
            if o != 0:
                constraints += check_or_defer(
                    sympy.Max(s, d) - o,
                    "positive",
                    f"outpad {o} must be smaller than the stride {s} or the dilation {d} (PyTorch: output "
                    f"padding must be smaller than either stride or dilation)",
                    args.keywords["outpad"].pos,
                    shown=o,
                )
        spatial_out = tuple(
            None if n is None else windows.deconv_output_size(n, k, s, p, d, o)
            for n, k, s, p, d, o in zip(spatial_in, kernel, stride, pad, dilation, outpad)
        )
        constraints += windows.sizes_positive(call, spatial_out)
        return make_layer(
            call,
            self,
            flow,
            Shape(spatial_out, cout),
            cin,
            cout,
            kernel=kernel,
            stride=stride,
            pad=pad,
            dilation=dilation,
            groups=groups,
            bias=args.bias,
            options=TransposedConvolutionOptions(outpad),
            constraints=tuple(constraints),
        )

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        # Every input position scatters k * Cout/g products; an output position gathers
        # at most k * Cin/g of them (exactly that when the stride is 1).
        k, cin, cout, g = layer.kernel_size, known(layer.cin), known(layer.cout), layer.groups
        macs = times(layer.in_shape.positions, cin, k, cout / g)
        return {"params": k * cin * cout / g + bias_of(layer), "fan_in": k * cin / g, "connections": macs, "macs": macs}

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return t.k * t.c_in * (t.c_out / t.g if layer.groups != 1 else t.c_out) + (t.c_out if layer.bias else ZERO)

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        if field is None:
            return None
        # an output position sees at most ceil(span / s) input positions
        out = []
        for (r, j, start), k, s, p, d in zip(field, layer.kernel, layer.stride, layer.pad, layer.dilation):
            span = d * (k - 1) + 1
            out.append((r + (sympy.ceiling(span / s) - 1) * j, j / s, start - p * j / s))
        return tuple(out)

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        g = layer.groups
        return (
            [
                f"A transposed convolution has a {windows.kernel_text(layer, w)} filter for each pair of "
                f"input and output channel{' in a group' if g != 1 else ''}: "
                f"{w.product(*layer.kernel, known(layer.cin), known(layer.cout) / g)} weights."
            ]
            + bias_sentences(layer, counts, w)
            + windows.size_sentence(layer, w, transposed=True)
        )

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec(
            f"nn.ConvTranspose{len(layer.kernel)}d",
            (num(layer.cin), num(layer.cout), num.each(layer.kernel)),
            {
                "stride": num.each(layer.stride),
                "padding": num.each(layer.pad),
                "output_padding": num.each(TransposedConvolutionOptions.of(layer).outpad),
                "groups": num(layer.groups),
                "bias": layer.bias,
                "dilation": num.each(layer.dilation),
            },
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        windows.keras_window_checks(layer, num)
        rank = len(layer.kernel)
        if num(layer.groups) != 1:
            refuse_keras(layer, "Keras transposed convolutions have no groups")
        outpad = num.each(TransposedConvolutionOptions.of(layer).outpad)
        if any(o >= s for o, s in zip(outpad, num.each(layer.stride))):
            # PyTorch also takes an output padding below the dilation (stride 1, dilation 2, outpad 1)
            refuse_keras(layer, "Keras' output padding must be smaller than the stride (PyTorch's, than the stride or "
                         "the dilation)")  # fmt: skip
        layers = [
            KerasSpec(
                f"Conv{rank}DTranspose",
                {
                    "filters": num(layer.cout),
                    "kernel_size": num.each(layer.kernel),
                    "strides": num.each(layer.stride),
                    "padding": "valid",
                    "output_padding": num.each(TransposedConvolutionOptions.of(layer).outpad),
                    "dilation_rate": num.each(layer.dilation),
                    "use_bias": layer.bias,
                },
            )
        ]
        crop = num.each(layer.pad)
        if any(crop):
            pairs = tuple((c, c) for c in crop)
            layers.append(KerasSpec(f"Cropping{rank}D", {"cropping": pairs[0] if rank == 1 else pairs}))
        return layers

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        rank = ctx.rank
        kernel = windows.per_axis(module.kernel_size, rank)
        parts = windows.window_arguments(
            windows.per_axis(module.stride, rank),
            windows.per_axis(module.padding, rank),
            windows.per_axis(module.dilation, rank),
        )
        outpad = windows.per_axis(module.output_padding, rank)
        return (
            f"deconv{windows.kernel_name(kernel)}("
            + windows.arguments(
                f"{module.in_channels}->{module.out_channels}",
                *parts,
                f"outpad={windows.sizes_text(outpad)}" if any(outpad) else "",
                f"groups={module.groups}" if module.groups != 1 else "",
                "bias" if module.bias is not None else "",
            )
            + ")"
        )


KINDS = (Convolution(), DepthwiseConvolution(), SeparableConvolution(), TransposedConvolution())
