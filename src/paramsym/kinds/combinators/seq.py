"""A sequence: its children one after another (`A > B`, a branch, a block's body)."""

from __future__ import annotations

from typing import Any

from ...core.records import Node, Shape, TorchSpec
from .base import Combinator, KerasExport, ShapeOf, TorchExport, output_shape


class Seq(Combinator):
    key = "seq"

    def output_shape(self, node: Node, shape_of: ShapeOf) -> Shape | None:
        # that of its last child that gives a value of its own (a side head gives its input on)
        for child in reversed(node.children):
            shape = output_shape(child, shape_of)
            if shape is not None:
                return shape
        return None

    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        children = [export.spec(child) for child in node.children]
        return children[0] if len(children) == 1 else TorchSpec("nn.Sequential", tuple(children))

    def keras(self, node: Node, export: KerasExport, x: Any) -> Any:
        for child in node.children:
            x = export.apply(child, x)
        return x


SEQ = Seq()
COMBINATORS = (SEQ,)
