"""Named values: `STAGE as NAME` keeps the value a stage gives, `@NAME` reads it later (docs/language.md, "Named
values"). A network is then a directed acyclic graph of values, not only a chain with branches from one input:
HRNet's fuse layers read every resolution, NASNet's cells the two cells before them, an encoder-decoder's
cross-attention the encoder's output.

Every layer is still built, and counted, once, where it is written: `@NAME` adds no layer and counts nothing,
it only changes what flows on. The builder (model.builder) records each name's value where it is given and
wraps the stage that computes it in a `keep` node when it is first read, so that the exports store the value
(`Keep`) and read it back (`Fetch`, paramsym.frameworks.torch_modules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.records import Flow, Node, Shape, TorchSpec
from ...errors import ParamsymNameError, ParamsymUsageError, Position
from .base import Combinator, KerasExport, ShapeOf, TorchExport, output_shape
from .seq import SEQ


class Keep(Combinator):
    """The stage (its one child) whose value is named; what flows on is that value."""

    key = "keep"

    def output_shape(self, node: Node, shape_of: ShapeOf) -> Shape | None:
        return output_shape(node.children[0], shape_of)

    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        return TorchSpec("Keep", (export.spec(node.children[0]),), {"name": node.name})

    def keras(self, node: Node, export: KerasExport, x: Any) -> Any:
        raise ParamsymUsageError(
            f"the value named '{node.name}', read again later (@{node.name}), has no Keras equivalent: the Keras "
            f"export writes no named values; export to PyTorch"
        )


class Fetch(Combinator):
    """`@NAME`: no child; it gives the value its target (a keep node) stored."""

    key = "fetch"

    def output_shape(self, node: Node, shape_of: ShapeOf) -> Shape | None:
        assert node.target is not None  # the builder always links a fetch to its keep node
        return output_shape(node.target, shape_of)

    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        return TorchSpec("Fetch", (), {"name": node.name})


class Start(Combinator):
    """A second `input(...)` (an encoder-decoder's decoder starts there): no child; what flows on is a new input.
    The exports build a module of one input, so they refuse it, naming it."""

    key = "input"

    def output_shape(self, node: Node, shape_of: ShapeOf) -> Shape | None:
        return node.shape  # the new input's, whatever flowed before it

    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        raise ParamsymUsageError(
            "the program has a second input(...) (an encoder-decoder): the PyTorch export builds a module of one "
            "input, which it cannot take"
        )

    def keras(self, node: Node, export: KerasExport, x: Any) -> Any:
        raise ParamsymUsageError(
            "the program has a second input(...) (an encoder-decoder): the Keras export builds a model of one "
            "input, which it cannot take"
        )


KEEP = Keep()
FETCH = Fetch()
START = Start()
COMBINATORS = (KEEP, FETCH, START)


@dataclass
class Value:
    """A named value as the builder records it: what flows from it, and where the node that computes it is
    (`parent.children[index]`, wrapped in a keep node when it is first read)."""

    flow: Flow
    parent: Node
    index: int
    pos: Position
    keep: Node | None = None


def name_value(values: dict[str, Value], name: str, pos: Position, flow: Flow, parent: Node) -> None:
    """Record that the last child of `parent` gives the value `name` (refused if the name is given already)."""
    if name in values:
        raise ParamsymNameError(
            f"'{name}' names two values",
            pos=pos,
            notes=((f"'{name}' is given here first", values[name].pos),),
            hint="a name given inside a repeat or a block used twice names every copy: give each value its own name",
        )
    values[name] = Value(flow, parent, len(parent.children) - 1, pos)


def fetch(values: dict[str, Value], name: str, pos: Position) -> tuple[Node, Flow]:
    """The node of `@NAME` and the value it gives on."""
    value = values.get(name)
    if value is None:
        import difflib  # only for the hint

        close = difflib.get_close_matches(name, values, n=1)
        raise ParamsymNameError(
            f"'@{name}': no value named '{name}' is computed before it",
            pos=pos,
            hint=f"did you mean '@{close[0]}'?"
            if close
            else "name a value with 'STAGE as NAME' (or '(SEQUENCE) as NAME') before the stage that reads it",
        )
    if value.keep is None:
        value.keep = Node(KEEP, [value.parent.children[value.index]], name=name)
        value.parent.children[value.index] = value.keep
    return Node(FETCH, name=name, target=value.keep), value.flow


def nested(parent: Node) -> Node:
    """A sequence node, the next child of `parent`, for a stage of several layers that a name will keep."""
    node = Node(SEQ)
    parent.children.append(node)
    return node
