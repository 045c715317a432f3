"""`mul(A | B | ...)`: every branch on the same input, multiplied; a branch that gives the vector of the
channels (a gate, squeeze-and-excitation's) is broadcast over every position, and a branch that gives one channel
at every position (a per-position gate, CBAM's spatial attention: `H x W x 1`; on a sequence a per-token gate,
Qwen2-MoE's shared expert gate: `T x 1`) is broadcast over the channels.
With no branch of both, a vector times a one-channel map is their outer product, `H x W x C` (FocalNet's global
context times its gate: `(N, C, 1, 1) * (N, 1, H, W)`)."""

from __future__ import annotations

from typing import Any, cast

from ...core.records import Flow, KerasSpec, Node, Shape, TorchSpec
from ...errors import ParamsymShapeError
from .. import identity_name
from .base import KerasExport, Merge, Outputs, TorchExport, shape_difference, widest


class Mul(Merge):
    key = keyword = "mul"
    torch_how = "mul"

    def references(self, outputs: Outputs, flow: Flow) -> Outputs:
        # a branch that gives the vector of the channels (a gate) is broadcast over every position, and one that
        # gives one channel per position over the channels: the reference is a branch that keeps both, when one does
        full = [o for o in outputs if o[1].shape.spatial != () and not _one_channel(o[1].shape)]
        if full and len(full) < len(outputs):
            return full + [o for o in outputs if o not in full]
        # else the positions come from a one-channel map, when one is (an outer product with the vectors)
        maps = [o for o in outputs if o[1].shape.spatial != ()]
        if maps and len(maps) < len(outputs):
            return maps + [o for o in outputs if o not in maps]
        return outputs

    def compared_flow(self, reference: Flow, out: Flow) -> Flow:
        if out.shape.spatial == () and reference.shape.spatial != ():
            # against a one-channel map, a vector of any width broadcasts (merged_shape compares the vectors)
            channels = reference.shape.channels if _one_channel(reference.shape) else out.shape.channels
            return Flow(Shape(reference.shape.spatial, channels), out.source, out.field)
        if _one_channel(out.shape) and out.shape.spatial != () and not _one_channel(reference.shape):
            return Flow(Shape(out.shape.spatial, reference.shape.channels), out.source, out.field)
        return out

    def merged_shape(self, reference: Shape, outputs: Outputs) -> Shape:
        vectors = [(branch, out.shape) for branch, out in outputs if out.shape.spatial == ()]
        if not (vectors and reference.spatial != () and _one_channel(reference)):
            return reference
        # the outer product of the vectors (which must agree) and the one-channel maps
        first = vectors[0][1]
        for branch, shape in vectors[1:]:
            if shape_difference(first, shape):
                raise ParamsymShapeError(
                    f"mul(...): the vectors of its branches differ: this branch gives {shape.describe()}, "
                    f"another gives {first.describe()}",
                    pos=branch.pos if branch else None,
                )
        return Shape(reference.spatial, first.channels)

    def joined(self, shapes: list[Shape]) -> Shape | None:
        # the shape of a branch that is neither a gate over the positions nor one over the channels, when one is
        full = [s for s in shapes if s.spatial != () and not _one_channel(s)]
        if full or not shapes:
            return widest(full or shapes) if shapes else None
        vectors = [s for s in shapes if s.spatial == ()]
        maps = [s for s in shapes if s.spatial != ()]
        if vectors and maps:
            return Shape(maps[0].spatial, vectors[0].channels)
        return widest(shapes)

    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        expand = _gate_axes(node, export)
        if not expand:
            return super().torch(node, export)
        return TorchSpec(
            "Branches", (self.torch_how, *(export.spec(child) for child in node.children)), {"expand": expand}
        )

    def keras_merge(self) -> KerasSpec:
        return KerasSpec("Multiply")

    def keras_branches(self, node: Node, export: KerasExport, x: Any, outputs: list[Any]) -> list[Any]:
        # a gate (a vector) is broadcast over every position: Reshape((1, 1, C)) before Multiply
        shapes = [export.shape(child) for child in node.children]
        # a shape `output_shape` gives has a known rank (None otherwise)
        rank = max((len(cast(tuple[Any, ...], s.spatial)) for s in shapes if s is not None), default=0)
        return [
            export.emit.layer(KerasSpec("Reshape", {"target_shape": (*[1] * rank, export.num(s.channels))}), out)
            if rank and s is not None and s.spatial == ()
            else out
            for s, out in zip(shapes, outputs)
        ]

    def import_text(self, branches: list[list[str]]) -> str:
        identity = identity_name()
        # the gated value first: mul(id | gap > ... > sigmoid)
        return f"mul({' | '.join(sorted(self.branch_texts(branches), key=lambda t: t != identity))})"


def _one_channel(shape: Shape) -> bool:
    """A value of one channel (the number 1), which broadcasts over the channels of another."""
    return shape.channels is not None and shape.channels.is_number and shape.channels == 1


def _gate_axes(node: Node, export: TorchExport | KerasExport) -> tuple[int, ...]:
    """For each branch, the axes of 1 its output takes to broadcast over the others' positions (a gate, the
    vector (N, C), on a map: 2); () when none does."""
    shapes = [export.shape(child) for child in node.children]
    axes = [None if s is None else s.rank for s in shapes]
    full = max((a for a in axes if a is not None), default=0)
    expand = tuple(0 if a is None else full - a for a in axes)
    return expand if any(expand) else ()


MUL = Mul()
COMBINATORS = (MUL,)
