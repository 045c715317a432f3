"""`res(SEQ)` (x + SEQ(x)) and `res(MAIN | SHORTCUT)` (MAIN(x) + SHORTCUT(x)): a residual connection."""

from __future__ import annotations

from typing import Any, NoReturn

from ...core.records import Flow, KerasSpec, Node, Shape, TorchSpec
from ...errors import ParamsymShapeError
from ...language.syntax import Composite, Sequence
from .base import KerasExport, Merge, Outputs, TorchExport


class Res(Merge):
    key = keyword = "res"

    def branch_label(self, number: int) -> str:
        return "main" if number == 0 else "shortcut"

    def references(self, outputs: Outputs, flow: Flow) -> Outputs:
        if len(outputs) == 1:
            return [(None, flow), *outputs]  # x + SEQ(x): the identity is the reference
        return outputs

    def refuse(
        self,
        composite: Composite,
        branch: Sequence | None,
        reference_branch: Sequence | None,
        reference: Flow,
        out: Flow,
        flow: Flow,
    ) -> NoReturn:
        assert branch is not None  # only the reference (the first) may be the identity
        if reference_branch is None:
            raise ParamsymShapeError(
                f"res(...) must keep the shape of its input, but this branch turns {flow.shape.describe()} "
                f"into {out.shape.describe()}",
                pos=branch.pos,
                hint="add a shortcut that matches: res(... | conv1x1(->C, stride=S))",
            )
        super().refuse(composite, branch, reference_branch, reference, out, flow)

    def joined(self, shapes: list[Shape]) -> Shape | None:
        return shapes[0] if shapes else None

    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        return TorchSpec("Residual", tuple(export.spec(child) for child in node.children))

    def keras_merge(self) -> KerasSpec:
        return KerasSpec("Add")

    def keras_branches(self, node: Node, export: KerasExport, x: Any, outputs: list[Any]) -> list[Any]:
        return [x, *outputs] if len(outputs) == 1 else outputs


RES = Res()
COMBINATORS = (RES,)
