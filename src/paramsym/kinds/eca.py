"""`eca(k)` (docs/language.md, Efficient channel attention): on the vector of a map's channels (after `gap`), a
1-D convolution along the channels with one kernel of k weights shared by every channel, zero padded so that the
C channels stay C (k odd), no bias: k parameters, C·k MACs, fan-in k. ECA-Net's gate (Wang et al. 2020) is
`mul(id | gap > eca(3) > sigmoid)`, squeeze-and-excitation with k weights in place of two dense layers.

PyTorch: paramsym's `ChannelConv(k)` (an `nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)` over the
channels), and timm's `EcaModule` is imported whole as that gate; Keras: a `Conv1D` of one filter between two
`Reshape`s. FlopCounterMode counts the convolution's C·k (tests/test_kind_eca.py)."""

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
    make_layer,
    times,
    whole_number,
)


@dataclass(frozen=True)
class EcaOptions(Options):
    kernel: Expr  # the weights of the one kernel, odd


class ChannelAttention(Kind):
    key = "eca"
    names = ("eca",)
    positional = 1
    torch_modules = ("ChannelConv", "timm.layers.eca.EcaModule")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        arg = args.required("its kernel size", "3", "k")
        kernel = args.one_value(arg, "kernel size")
        if not isinstance(kernel, sympy.Expr) or (kernel.is_number and (not kernel.is_integer or kernel % 2 == 0)):
            raise ParamsymArgumentError(
                f"{call.name}: the kernel size {kernel} is not an odd whole number",
                pos=arg.pos,
                hint="the C channels stay C only with an odd kernel (padded by (k - 1)/2 on each side): eca(3)",
            )
        args.constraints += whole_number(kernel, "the kernel size", arg.pos)
        args.constraints += whole_number((kernel - 1) / 2, "(the kernel size - 1) / 2", arg.pos, least=0)
        shape = flow.shape
        if shape.spatial != ():
            raise ParamsymShapeError(
                f"{call.name} convolves along the vector of channels, but its input is {shape.describe()}",
                pos=call.pos,
                hint="pool the map to its channels first: gap > eca(3)",
            )
        channels = shape.channels
        return make_layer(call, self, flow, shape, channels, channels, options=EcaOptions(kernel))

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        kernel = EcaOptions.of(layer).kernel
        return {"params": kernel, "macs": times(layer.cout, kernel), "fan_in": kernel}

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return t.named("k", EcaOptions.of(layer).kernel)

    def header(self, layer: Layer, w: Words) -> str:
        return f", kernel {w(EcaOptions.of(layer).kernel)} along {w(layer.cout)} channels"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        kernel = EcaOptions.of(layer).kernel
        return [
            f"One kernel of {w(kernel)} weights slides along the {w(layer.cout)} channels (zero padded at both "
            f"ends, no bias): {w(kernel)} parameters shared by every channel, {w.product(layer.cout, kernel)} "
            f"multiply-accumulates; each output sees {w(kernel)} neighbouring channels (fan-in {w(kernel)})."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("ChannelConv", (num(EcaOptions.of(layer).kernel),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        channels, kernel = num(layer.cout), num(EcaOptions.of(layer).kernel)
        return [
            KerasSpec("Reshape", {"target_shape": (channels, 1)}),
            KerasSpec("Conv1D", {"filters": 1, "kernel_size": kernel, "padding": "same", "use_bias": False}),
            KerasSpec("Reshape", {"target_shape": (channels,)}),
        ]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        conv = module.conv
        where = f"{ctx.node_name} ({type(module).__name__})"
        (kernel,) = conv.kernel_size
        if not (
            conv.in_channels == conv.out_channels == 1
            and conv.bias is None
            and conv.padding == ((kernel - 1) // 2,)
            and conv.stride == (1,)
            and conv.dilation == (1,)
            and conv.padding_mode == "zeros"
            and getattr(module, "conv2", None) is None
        ):
            raise ImportRefused(
                f"{where} is not one kernel along the channels with zero padding and no bias (timm's use_mlp "
                f"variant, a circular padding): the language's eca has no counterpart"
            )
        if type(module).__name__ == "ChannelConv":
            return f"eca({kernel})"
        from . import for_torch_module, identity_name  # the gate's own kind writes it

        gate_kind = for_torch_module(module.gate)
        if len(ctx.in_shape) != 4 or gate_kind is None:
            raise ImportRefused(f"{where} gates a {len(ctx.in_shape)}-D value or with a gate the language lacks")
        gate = gate_kind.from_torch(module.gate, ctx)
        # timm's EcaModule is the whole gate: the map times its pooled channels, convolved, through the gate
        return f"mul({identity_name()} | gap > eca({kernel}) > {gate})"


KINDS = (ChannelAttention(),)
