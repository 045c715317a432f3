"""`sub(A | B)`: both branches on the same input, the second's value subtracted from the first's (A(x) - B(x)).
PoolFormer's and EfficientFormer's token mixer is `sub(avgpool3x3(stride=1, pad=1, nopadcount) | id)` (pool(x) - x),
FastViT's RepMixer `res(sub(MIXER | NORM) > scale)` (x + gamma * (mixer(x) - norm(x))). The parameters and MACs
are those of both branches: the difference itself learns nothing and is no weighted sum (PyTorch's FlopCounterMode
counts no subtraction either)."""

from __future__ import annotations

from typing import NoReturn

from ...core.records import Flow, KerasSpec
from ...errors import ParamsymShapeError
from ...language.syntax import Composite, Sequence
from .base import Builder, Merge


class Sub(Merge):
    key = keyword = "sub"
    torch_how = "sub"

    def build(self, builder: Builder, composite: Composite, flow: Flow, suffix: str) -> Flow:
        if len(composite.branches) != 2:  # the grammar writes two; a syntax tree built otherwise is refused too
            raise ParamsymShapeError(
                f"sub(...) takes two branches, the value and what is subtracted from it, not {len(composite.branches)}",
                pos=composite.pos,
            )
        return super().build(builder, composite, flow, suffix)

    def refuse(
        self,
        composite: Composite,
        branch: Sequence | None,
        reference_branch: Sequence | None,
        reference: Flow,
        out: Flow,
        flow: Flow,
    ) -> NoReturn:
        assert branch is not None
        raise ParamsymShapeError(
            f"sub(...): what is subtracted gives {out.shape.describe()}, the value it is subtracted from gives "
            f"{reference.shape.describe()}; the shapes of both branches must be equal",
            pos=branch.pos,
            notes=(("the first branch", composite.branches[0].pos),),
        )

    def keras_merge(self) -> KerasSpec:
        return KerasSpec("Subtract")

    def import_text(self, branches: list[list[str]]) -> str:
        return f"sub({' | '.join(self.branch_texts(branches))})"


SUB = Sub()
COMBINATORS = (SUB,)
