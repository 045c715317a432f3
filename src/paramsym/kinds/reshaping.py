"""`flatten`: a map becomes the vector of its values, in H x W x C order."""

from __future__ import annotations

from typing import Any

from ..core import saved as saved_tensors
from ..core.records import KerasSpec, Layer, Shape, TorchSpec
from ..core.setup import Setup
from .base import (
    Args,
    Call,
    Counts,
    Field,
    Flow,
    ImportContext,
    Kind,
    NameMatch,
    Numbers,
    Words,
    make_layer,
    whole_input_field,
)


class Flatten(Kind):
    key = "flatten"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Nothing. A view of its input when it has one position (after a global pool); else the channels-last
        order of the language is a copy of PyTorch's channels-first map (which the next layer may keep)."""
        return saved_tensors.VIEW if layer.in_shape.positions == 1 else saved_tensors.NOTHING

    names = ("flatten",)
    torch_modules = ("Flatten",)
    torch_functions = ("flatten", "view", "reshape")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        return make_layer(call, self, flow, Shape((), flow.shape.elements), flow.shape.channels, flow.shape.elements)

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return whole_input_field(layer, field)

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            f"No parameters: it lays the {layer.in_shape.describe()} values out as one vector "
            f"of {w(layer.out_shape.channels)}."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("FlattenChannelsLast")

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        return [KerasSpec("Flatten")]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return "flatten"

    def from_torch_function(self, name: str, node: Any, ctx: ImportContext) -> str | None:
        # x.view(n, -1) and x.reshape(n, -1) flatten only when they leave (batch, values)
        return "flatten" if (name == "flatten" and node.op == "call_function") or len(ctx.out_shape) == 2 else None


KINDS = (Flatten(),)
