"""The leaf of the structure: one layer (`Node.layer` is its index into the layer list)."""

from __future__ import annotations

from ...core.records import Node, Shape, TorchSpec
from .base import Combinator


class Layer(Combinator):
    key = "layer"

    def output_shape(self, node: Node, shape_of) -> Shape | None:
        shape = shape_of(node.layer)
        return shape if shape.rank is not None else None

    def torch(self, node: Node, export) -> TorchSpec:
        return export.layer(node.layer)

    def keras(self, node: Node, export, x):
        return export.layer(node.layer, x)


LAYER = Layer()
COMBINATORS = (LAYER,)
