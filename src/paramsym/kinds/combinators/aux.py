"""`aux(SEQ)`: a side head (GoogLeNet's auxiliary classifier): its layers count, its output is not used, and
what flows on is its input."""

from __future__ import annotations

from typing import Any

from ...core.records import Flow, Node, Shape, TorchSpec
from ...language.syntax import Composite
from .base import Builder, Combinator, KerasExport, ShapeOf, TorchExport


class Aux(Combinator):
    key = keyword = "aux"
    side_head = True

    def build(self, builder: Builder, composite: Composite, flow: Flow, suffix: str) -> Flow:
        node = Node(self)
        builder.attach(node)
        with builder.at(self.keyword + suffix), builder.branch(node):
            builder.stage(composite.branches[0], flow)
        return flow

    def output_shape(self, node: Node, shape_of: ShapeOf) -> Shape | None:
        return None  # it gives its input on

    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        return TorchSpec("Aux", (export.spec(node.children[0]),))

    def keras(self, node: Node, export: KerasExport, x: Any) -> Any:
        # a side head is an extra output of the model, as in Keras' own
        export.emit.side_outputs.append(export.apply(node.children[0], x))
        return x

    def import_text(self, branches: list[list[str]]) -> str:
        return f"aux({' > '.join(branches[0])})"


AUX = Aux()
COMBINATORS = (AUX,)
