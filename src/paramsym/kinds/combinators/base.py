"""What every combinator is made of: the `Combinator` base class, `Merge` (the
combinators whose branches all read the same input and are joined), the walk
that gives a node's output shape, and the shape rules they share.

A combinator is a piece of the network's structure: a sequence, a composite of
the language (`res`, `add`, `concat`, `mul`, `aux`, `moe`), a symbolic repeat,
or the layer at a leaf. `Node.kind` (core.records) is its combinator: every
stage that walks the structure (the builder, explain, both exports, the
importer's writer) calls the combinator's methods and never compares names.

The builder (model stage, above this one) passes itself to `build`. What a
combinator may use of it (the `Builder` protocol below): `stage(stage, flow, suffix)` builds a stage of the
syntax tree, `call(call, flow)` one layer call; `attach(node)` puts a node into
the structure where the next layer goes; `at(label)` (a context manager) names
a step of the layers' paths; `branch(node, label)` (a context manager) opens a
new sequence as the next child of `node`, which receives the layers built
inside; `substitute(value, pos)` binds block parameters; `defer_equal(a, b,
channels, pos)` checks sizes equal once symbols have values; `layers`,
`multiplier`, `experts` and `extra_constraints` are its state.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, ClassVar, NoReturn, Protocol, TypeAlias, cast

import sympy

from ... import expansion
from ...core.quantities import Counts
from ...core.records import Constraint, Flow, KerasSpec, Layer, Node, Shape, TorchSpec
from ...errors import ParamsymError, ParamsymShapeError, Position
from ...language.syntax import Call, Composite, Sequence
from .. import identity_name
from ..base import Expr, Field, Numbers, Words

MAX_LAYERS = 200_000  # the most layers a network may have (a repeat unrolled, the builder's layers)

# each layer's output shape, by its index into the layer list
ShapeOf: TypeAlias = Callable[[int], Shape]
# a merge's branches as built: (branch, what it gives); branch None is the identity (res(SEQ)'s reference)
Outputs: TypeAlias = list[tuple["Sequence | None", Flow]]


class Builder(Protocol):
    """What a combinator's `build` uses of the builder (`model.builder`, a stage above this one)."""

    layers: list[Layer]
    multiplier: Expr
    experts: tuple[Expr, Expr] | None
    extra_constraints: list[Constraint]

    def stage(self, stage: Any, flow: Flow, suffix: str = "") -> Flow: ...

    def call(self, call: Call, flow: Flow, suffix: str = "") -> Flow: ...

    def attach(self, node: Node) -> None: ...

    def at(self, label: str) -> AbstractContextManager[None]: ...

    def branch(self, node: Node, label: str | None = None) -> AbstractContextManager[None]: ...

    def substitute(self, value: Any, pos: Position) -> Any: ...

    def defer_equal(self, a: Shape, b: Shape, channels: bool, pos: Position) -> None: ...


class TorchExport(Protocol):
    """What a combinator's `torch` reads (`frameworks.export`)."""

    @property
    def num(self) -> Numbers: ...

    def spec(self, node: Node) -> TorchSpec: ...

    def layer(self, index: int) -> TorchSpec: ...

    def shape(self, node: Node) -> Shape | None: ...


class KerasEmit(Protocol):
    """What writes Keras layers (`frameworks.keras_export`): a value is a Keras tensor or the text of one."""

    @property
    def side_outputs(self) -> list[Any]: ...

    def layer(self, spec: KerasSpec, x: Any) -> Any: ...

    def merge(self, spec: KerasSpec, xs: list[Any]) -> Any: ...


class KerasExport(Protocol):
    """What a combinator's `keras` reads (`frameworks.keras_export`)."""

    @property
    def num(self) -> Numbers: ...

    @property
    def emit(self) -> KerasEmit: ...

    def apply(self, node: Node, x: Any) -> Any: ...

    def layer(self, index: int, x: Any) -> Any: ...

    def shape(self, node: Node) -> Shape | None: ...


class Combinator:
    """One piece of the structure: how it is written, shaped, counted, explained, exported and imported."""

    key: ClassVar[str] = ""  # its name in messages, tests and docs
    keyword: ClassVar[str | None] = None  # the language's keyword (res, moe, ...); None for the structure written
    # otherwise: a sequence (`>`), a repeat (`(SEQ) * N`), a layer
    side_head: ClassVar[bool] = False  # what flows on is its input: its own output is not used (aux)
    # the order of the combinators' explain sentences about one layer: the outer structure first
    explain_order: ClassVar[int] = 50

    def __repr__(self) -> str:
        return f"<combinator {self.key}>"

    # ---- the language: the shape rule (the builder, paramsym.model.builder, calls it)
    def build(self, builder: Builder, stage: Any, flow: Flow, suffix: str) -> Flow:
        """Build `stage` (a syntax tree's Composite or Repeat) from `flow`: put its node into the structure,
        build its layers through `builder`, check its shapes, and return what flows on."""
        raise ParamsymError(f"{self.key} is not written as a stage of its own")

    # ---- the shape of its value, which the exports read (a gate is broadcast over the others' positions)
    def output_shape(self, node: Node, shape_of: ShapeOf) -> Shape | None:
        """The shape of the value `node` gives, from `shape_of(index)`, each layer's output shape; None when it
        gives its input on (an empty sequence, a side head) or when even its rank is unknown."""
        return self.joined([s for s in (output_shape(child, shape_of) for child in node.children) if s is not None])

    def joined(self, shapes: list[Shape]) -> Shape | None:
        """Of the children's shapes (those known), the one the node gives."""
        return shapes[0] if shapes else None

    # ---- counting and explain
    def explain_layer(self, layer: Layer, counts: Counts, words: Words) -> list[str]:
        """Sentences about how often a layer inside counts (what this combinator multiplies its counts by)."""
        return []

    # ---- exports
    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        """The PyTorch module of the node: `export.spec(child)` is a child's, `export.layer(index)` a layer's,
        `export.num` turns formulas into ints, `export.shape(child)` is `output_shape`."""
        raise ParamsymError(f"{self.key} has no PyTorch module")

    def keras(self, node: Node, export: KerasExport, x: Any) -> Any:
        """Apply the node to the Keras value `x`: `export.apply(child, x)` applies a child,
        `export.layer(index, x)` a layer, `export.emit` writes Keras layers (`layer(spec, x)`,
        `merge(spec, xs)`, `side_outputs`), `export.num` and `export.shape` as for `torch`."""
        raise ParamsymError(f"{self.key} has no Keras equivalent")

    # ---- import: how the importer writes a merge of the traced graph
    def import_text(self, branches: list[list[str]]) -> str:
        """The stage that joins `branches` (each a list of stages' text; empty: the identity)."""
        raise ParamsymError(f"the importer writes no {self.key}")


def output_shape(node: Node, shape_of: ShapeOf) -> Shape | None:
    """The shape of the value a node of the structure gives (see `Combinator.output_shape`): the one walk that
    both exports read."""
    return cast(Combinator, node.kind).output_shape(node, shape_of)


def widest(shapes: list[Shape]) -> Shape:
    """Of branches' shapes, the one with the most spatial axes (a gate, a vector, broadcasts over the others)."""
    return max(shapes, key=lambda s: -1 if s.spatial is None else len(s.spatial))


class Merge(Combinator):
    """Every branch reads the same input; their values are joined (res, add, concat, mul)."""

    keyword: ClassVar[str]  # each is written with its keyword

    # the class of paramsym.frameworks.torch_modules that exports it, and its `how` (Branches: add, concat, mul)
    torch_how: ClassVar[str] = ""
    compares_channels: ClassVar[bool] = True  # the branches' channels must be equal too (not for concat)
    compared: ClassVar[str] = "shapes"  # what must be equal, in the message when it is not

    def branch_label(self, number: int) -> str:
        """The step of the layers' paths for the branch `number` (from 0)."""
        return f"branch{number + 1}"

    def references(self, outputs: Outputs, flow: Flow) -> Outputs:
        """The (branch, flow) pairs to compare, the reference first (a branch None: the identity)."""
        return outputs

    def compared_flow(self, reference: Flow, out: Flow) -> Flow:
        """A branch's output as it is compared with the reference (a gate broadcast over its positions)."""
        return out

    def merged_shape(self, reference: Shape, outputs: Outputs) -> Shape:
        return reference

    def refuse(
        self,
        composite: Composite,
        branch: Sequence | None,
        reference_branch: Sequence | None,
        reference: Flow,
        out: Flow,
        flow: Flow,
    ) -> NoReturn:
        """The error for branches whose shapes differ."""
        # only res(SEQ)'s reference is the identity (no branch), and Res.refuse words that case itself
        assert branch is not None and reference_branch is not None
        raise ParamsymShapeError(
            f"{self.keyword}(...): the {self.compared} of its branches differ: this branch gives "
            f"{out.shape.describe()}, the first gives {reference.shape.describe()}",
            pos=branch.pos,
            notes=(("the first branch", reference_branch.pos),),
        )

    def build(self, builder: Builder, composite: Composite, flow: Flow, suffix: str) -> Flow:
        node = Node(self)
        builder.attach(node)
        outputs: Outputs = []
        with builder.at(f"{self.keyword}{suffix}"):
            for number, branch in enumerate(composite.branches):
                with builder.branch(node, self.branch_label(number)):
                    outputs.append((branch, builder.stage(branch, flow)))
        outputs = self.references(outputs, flow)
        reference_branch, reference = outputs[0]
        for branch, out in outputs[1:]:
            # the message names the branch's own shape (a gate's, not the shape it broadcasts to)
            if shape_difference(reference.shape, self.compared_flow(reference, out).shape, self.compares_channels):
                self.refuse(composite, branch, reference_branch, reference, out, flow)
        for branch, out in outputs[1:]:
            builder.defer_equal(
                reference.shape,
                self.compared_flow(reference, out).shape,
                self.compares_channels,
                branch.pos if branch else composite.pos,
            )
        shape = self.merged_shape(reference.shape, outputs)
        return Flow(shape, (self.keyword, composite.pos), widest_field([out.field for _, out in outputs]))

    def joined(self, shapes: list[Shape]) -> Shape | None:
        return widest(shapes) if shapes else None

    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        return TorchSpec("Branches", (self.torch_how, *(export.spec(child) for child in node.children)))

    def keras_merge(self) -> KerasSpec:
        """The Keras layer that joins the branches' values (a core.records.KerasSpec)."""
        raise NotImplementedError

    def keras(self, node: Node, export: KerasExport, x: Any) -> Any:
        outputs = [export.apply(child, x) for child in node.children]
        return export.emit.merge(self.keras_merge(), self.keras_branches(node, export, x, outputs))

    def keras_branches(self, node: Node, export: KerasExport, x: Any, outputs: list[Any]) -> list[Any]:
        """The values the Keras merge joins."""
        return outputs

    def branch_texts(self, branches: list[list[str]]) -> list[str]:
        identity = identity_name()  # the empty branch is written as the identity layer
        return [" > ".join(b) if b else identity for b in branches]


# ---- shape rules the combinators share ----------------------------------------------------


def shape_difference(a: Shape, b: Shape, channels: bool = True) -> str | None:
    """A description of how two shapes differ for certain, or None when they may be equal."""
    if a.spatial is not None and b.spatial is not None:
        if len(a.spatial) != len(b.spatial):
            return "rank"
        for x, y in zip(a.spatial, b.spatial):
            if x is not None and y is not None and _surely_different(x, y):
                return "size"
    if channels and a.channels is not None and b.channels is not None and _surely_different(a.channels, b.channels):
        return "channels"
    return None


def _surely_different(x: Expr, y: Expr) -> bool:
    difference = expansion.expand(x - y)
    if difference.is_number:
        return bool(difference != 0)
    # C vs 2C are different for every positive C; H vs floor((H-1)/2)+1 are equal for H=1 only
    return difference.is_zero is False and not difference.has(
        sympy.floor, sympy.ceiling, sympy.Min, sympy.Max, sympy.Piecewise
    )


def widest_field(fields: list[Field | None]) -> Field | None:
    """Through branches, the largest receptive field (per axis)."""
    known = [f for f in fields if f is not None]
    if not known or len(known) != len(fields) or len({len(f) for f in known}) != 1:
        return None
    out = []
    for axis in zip(*known):
        best = max(axis, key=lambda rjs: _rank(rjs[0]))
        out.append(best)
    return tuple(out)


def _rank(size: Expr) -> float:
    try:
        return float(size)
    except TypeError:
        return float("inf")
