"""The leaf of the structure: one layer (`Node.layer` is its index into the layer list)."""

from __future__ import annotations

from typing import Any, cast

from ...core.records import Node, Shape, TorchSpec
from .base import Combinator, KerasExport, ShapeOf, TorchExport


class Layer(Combinator):
    key = "layer"

    def output_shape(self, node: Node, shape_of: ShapeOf) -> Shape | None:
        shape = shape_of(_index(node))
        return shape if shape.rank is not None else None

    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        return export.layer(_index(node))

    def keras(self, node: Node, export: KerasExport, x: Any) -> Any:
        return export.layer(_index(node), x)


def _index(node: Node) -> int:
    return cast(int, node.layer)  # a leaf's node always holds its layer's index


LAYER = Layer()
COMBINATORS = (LAYER,)
