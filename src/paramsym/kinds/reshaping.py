"""`flatten`: a map becomes the vector of its values, in H x W x C order."""

from __future__ import annotations

from ..core.records import KerasSpec, Layer, Shape, TorchSpec
from .base import Kind, make_layer, whole_input_field


class Flatten(Kind):
    key = "flatten"
    names = ("flatten",)
    torch_modules = ("Flatten",)
    torch_functions = ("flatten", "view", "reshape")

    def build(self, call, flow, args, match) -> Layer:
        return make_layer(call, self, flow, Shape((), flow.shape.elements), flow.shape.channels, flow.shape.elements)

    def field(self, layer, field):
        return whole_input_field(layer, field)

    def explain(self, layer, counts, w) -> list[str]:
        return [
            f"No parameters: it lays the {layer.in_shape.describe()} values out as one vector "
            f"of {w(layer.out_shape.channels)}."
        ]

    def torch(self, layer, num) -> TorchSpec:
        return TorchSpec("FlattenChannelsLast")

    def keras(self, layer, num) -> list[KerasSpec]:
        return [KerasSpec("Flatten")]

    def from_torch(self, module, ctx) -> str:
        return "flatten"

    def from_torch_function(self, name, node, ctx) -> str | None:
        # x.view(n, -1) and x.reshape(n, -1) flatten only when they leave (batch, values)
        return "flatten" if (name == "flatten" and node.op == "call_function") or len(ctx.out_shape) == 2 else None


KINDS = (Flatten(),)
