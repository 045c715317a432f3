"""`concat(A | B | ...)`: every branch on the same input, joined along the channels."""

from __future__ import annotations

import sympy

from ...core.records import KerasSpec, Shape
from .base import Merge, Outputs, widest


class Concat(Merge):
    key = keyword = "concat"
    torch_how = "concat"
    compares_channels = False  # the branches' channels add up
    compared = "spatial sizes"

    def merged_shape(self, reference: Shape, outputs: Outputs) -> Shape:
        channels = (
            None
            if any(o.shape.channels is None for _, o in outputs)
            else sympy.Add(*[o.shape.channels for _, o in outputs])
        )
        return Shape(reference.spatial, channels)

    def joined(self, shapes: list[Shape]) -> Shape | None:
        if not shapes:
            return None
        shape = widest(shapes)
        if all(s.channels is not None for s in shapes):
            return Shape(shape.spatial, sum(s.channels for s in shapes if s.channels is not None))
        return shape

    def keras_merge(self) -> KerasSpec:
        return KerasSpec("Concatenate", {"axis": -1})

    def import_text(self, branches: list[list[str]]) -> str:
        return f"concat({' | '.join(self.branch_texts(branches))})"


CONCAT = Concat()
COMBINATORS = (CONCAT,)
