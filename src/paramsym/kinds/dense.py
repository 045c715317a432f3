"""`dense` (aliases `fc`, `linear`): a fully connected layer on the last axis."""
from __future__ import annotations

from ..errors import ImportRefused, ParamsymArgumentError
from ..records import ZERO, KerasSpec, Layer, Shape, TorchSpec
from .base import (Kind, bias_of, bias_sentences, fan_in_sentence, input_channels, make_layer, times,
                   vector_or_channels_last)


class Dense(Kind):
    key = "dense"
    names = ("dense", "fc", "linear")
    flags = frozenset({"bias", "nobias"})
    takes_channels = True
    torch_modules = ("Linear",)

    def build(self, call, flow, args, match) -> Layer:
        if args.channels is None:
            raise ParamsymArgumentError(f"{call.name} needs its output size: write {call.name}(->10, ...)",
                                        pos=call.pos)
        cin = input_channels(call, flow, args)
        cout = args.channels.cout
        return make_layer(call, self, flow, Shape(flow.shape.spatial, cout), cin, cout, bias=args.bias)

    def counts(self, layer: Layer) -> dict:
        cin, cout = layer.cin, layer.cout
        macs = times(layer.out_shape.positions, cin, cout)
        return {"params": cin * cout + bias_of(layer), "fan_in": cin, "connections": macs, "macs": macs}

    def generic_params(self, layer, t):
        return t.c_in * t.c_out + (t.c_out if layer.bias else ZERO)

    def explain(self, layer, counts, w) -> list[str]:
        return ([f"Each of the {w(layer.cout)} outputs is connected to all {w(layer.cin)} inputs: "
                 f"{w.product(layer.cin, layer.cout)} weights."]
                + bias_sentences(layer, counts, w) + [fan_in_sentence(counts, w)])

    def torch(self, layer, num) -> TorchSpec:
        return vector_or_channels_last(layer, TorchSpec("nn.Linear", (num(layer.cin), num(layer.cout)),
                                                        {"bias": layer.bias}))

    def keras(self, layer, num) -> list[KerasSpec]:
        return [KerasSpec("Dense", {"units": num(layer.cout), "use_bias": layer.bias})]

    def from_torch(self, module, ctx) -> str:
        if len(ctx.in_shape) != 2:
            raise ImportRefused(f"{ctx.node_name} ({type(module).__name__}) acts on the last axis of a "
                                f"{len(ctx.in_shape)}-D tensor (the width, in PyTorch's layout), which the language "
                                f"cannot express")
        bias = ", bias" if module.bias is not None else ""
        return f"dense({module.in_features}->{module.out_features}{bias})"


KINDS = (Dense(),)
