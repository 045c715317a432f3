"""`seqcat(A | B | ...)`: every branch on the same input, each giving a sequence of the same channels, joined along
the positions (PyTorch's `torch.cat((a, b), dim=1)` of `(N, T, d)` sequences). What models that keep their class
token apart from the tokens of a map do: PiT's pooling (`seqcat(prefix > dense(->D) | rest > untokens(HxW) > dwconv
> tokens)`), CoaT's convolutional position encoding (`seqcat(prefix | rest > untokens(HxW) > res(dwconv) > tokens)`).
The joining learns nothing and costs no MACs; the parameters and MACs are those of the branches."""

from __future__ import annotations

from typing import NoReturn

import sympy

from ...core.records import Flow, KerasSpec, Node, Shape
from ...errors import ParamsymShapeError
from ...language.syntax import Composite, Sequence
from .base import Merge, Outputs, ShapeOf, output_shape


class SeqCat(Merge):
    key = keyword = "seqcat"
    torch_how = "seqcat"
    compared = "channels"

    def compared_flow(self, reference: Flow, out: Flow) -> Flow:
        # only the channels must agree: the lengths add up (a branch that is no sequence is refused in refuse)
        if out.shape.spatial is not None and len(out.shape.spatial) != 1:
            return out
        return Flow(Shape(reference.shape.spatial, out.shape.channels), out.source, out.field)

    def merged_shape(self, reference: Shape, outputs: Outputs) -> Shape:
        for branch, out in outputs:
            spatial = out.shape.spatial
            if spatial is None or len(spatial) != 1:
                what = "nothing known" if spatial is None else f"{out.shape.describe()}, not a sequence"
                raise ParamsymShapeError(
                    f"seqcat(...) joins sequences (T x d) along their positions, but a branch gives {what}",
                    pos=branch.pos if branch is not None else None,
                    hint="end a branch on a map with tokens, e.g. seqcat(prefix | rest > untokens(14x14) > "
                    "dwconv3x3(pad=1) > tokens)",
                )
        lengths = [out.shape.spatial[0] for _, out in outputs if out.shape.spatial is not None]
        length = None if any(n is None for n in lengths) else sympy.Add(*lengths)
        return Shape((length,), reference.channels)

    def refuse(
        self,
        composite: Composite,
        branch: Sequence | None,
        reference_branch: Sequence | None,
        reference: Flow,
        out: Flow,
        flow: Flow,
    ) -> NoReturn:
        assert branch is not None and reference_branch is not None
        if (out.shape.spatial is not None and len(out.shape.spatial) != 1) or reference.shape.spatial is None:
            raise ParamsymShapeError(
                f"seqcat(...) joins sequences (T x d) along their positions, but this branch gives "
                f"{out.shape.describe()}, not a sequence",
                pos=branch.pos,
                hint="end a branch on a map with tokens",
            )
        raise ParamsymShapeError(
            f"seqcat(...): the channels of its branches differ: this branch gives {out.shape.describe()}, the first "
            f"gives {reference.shape.describe()}; sequences joined along their positions have the same channels",
            pos=branch.pos,
            notes=(("the first branch", reference_branch.pos),),
        )

    def output_shape(self, node: Node, shape_of: ShapeOf) -> Shape | None:
        shapes = [output_shape(child, shape_of) for child in node.children]
        known = [s for s in shapes if s is not None and s.spatial is not None and len(s.spatial) == 1]
        if len(known) != len(shapes) or any(s.spatial[0] is None for s in known):  # type: ignore[index]
            return None  # a branch that gives its input on: its length is not known here
        return Shape((sympy.Add(*[s.spatial[0] for s in known]),), known[0].channels)  # type: ignore[index]

    def keras_merge(self) -> KerasSpec:
        return KerasSpec("Concatenate", {"axis": 1})

    def import_text(self, branches: list[list[str]]) -> str:
        return f"seqcat({' | '.join(self.branch_texts(branches))})"


SEQCAT = SeqCat()
COMBINATORS = (SEQCAT,)
