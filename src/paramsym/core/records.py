"""The records every later stage reads: shapes, layers, the structure that
connects them, and the conditions that wait for symbol values.

A `Layer` holds what a layer *is* (its kind, kernel, stride, channels,
shapes); its kind (`paramsym.kinds`) turns it into counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

import sympy

from ..errors import Position

Expr: TypeAlias = sympy.Expr  # SymPy has no type information: Any to mypy
ONE = sympy.Integer(1)
ZERO = sympy.Integer(0)


@dataclass(frozen=True)
class Shape:
    """A tensor shape without the batch axis, channels last.

    `spatial` is a tuple of sizes (a size is None when unknown), `()` for a
    vector, or None when even the number of spatial axes is unknown.
    """

    spatial: tuple[Expr | None, ...] | None
    channels: Expr | None

    @property
    def rank(self) -> int | None:
        return None if self.spatial is None else len(self.spatial)

    @property
    def positions(self) -> Expr | None:
        """Number of positions (product of the spatial sizes), None if unknown."""
        if self.spatial is None or any(size is None for size in self.spatial):
            return None
        return sympy.Mul(*self.spatial)

    @property
    def elements(self) -> Expr | None:
        positions = self.positions
        if positions is None or self.channels is None:
            return None
        return positions * self.channels

    def dims(self) -> list[Expr | None] | None:
        """Sizes channels last, None for the whole shape when its rank is unknown."""
        if self.spatial is None:
            return None
        return [*self.spatial, self.channels]

    def describe(self) -> str:
        dims = self.dims()
        if dims is None:
            return "?" if self.channels is None else f"(...) x {self.channels}"
        return " x ".join("?" if d is None else str(d) for d in dims)


UNKNOWN = Shape(None, None)


@dataclass(frozen=True)
class Constraint:
    """A condition that can only be checked once symbols have values."""

    expr: Expr
    requirement: str  # "integer", "positive" (at least 1), "nonnegative" (at least 0) or "zero"
    message: str
    pos: Position
    shown: Expr | None = None  # the value the message names, when not `expr` (the outpad, not stride - outpad)


OptionsT = TypeVar("OptionsT", bound="Options")


@dataclass(frozen=True)
class Options:
    """What a layer of one kind holds besides the fields every layer has: each kind with options declares
    a frozen subclass with its own fields (`kinds.attention.AttentionOptions(heads, kv_heads, ...)`) and
    builds it in `build`; a layer of a kind without options keeps `NO_OPTIONS`. Frozen, so that layers
    that are alike share counts (`quantities.count_layers` keys on them)."""

    @classmethod
    def of(cls: type[OptionsT], layer: Layer) -> OptionsT:
        """The layer's options, which must be of this class (the kind that built the layer reads them)."""
        options = layer.options
        if not isinstance(options, cls):
            raise TypeError(f"{layer.name} holds {type(options).__name__}, not {cls.__name__}")
        return options


NO_OPTIONS = Options()


@dataclass
class Layer:
    """One layer of the network with everything needed to count it."""

    index: int
    name: str  # as written: conv3x3, dense, bn, ...
    kind: Any  # its paramsym.kinds.Kind: counts, explains and exports it
    pos: Position
    path: str
    in_shape: Shape
    out_shape: Shape
    cin: Expr | None
    cout: Expr | None
    kernel: tuple[Expr, ...] = ()
    stride: tuple[Expr, ...] = ()
    pad: tuple[Expr | str, ...] = ()  # or ("same",) * rank
    dilation: tuple[Expr, ...] = ()
    groups: Expr = ONE
    bias: bool = False
    options: Options = NO_OPTIONS  # its kind's options
    constraints: tuple[Constraint, ...] = ()
    multiplier: Expr = ONE  # how many times the layer counts (a symbolic repeat around it)
    experts: tuple[Expr, Expr] | None = None  # inside moe: (E, k), the experts stored and those one position uses
    stage: int = 0  # index of the top-level stage it belongs to (for folded tables)
    # the last layer of a top-level stage: the stage's output, which a folded row shows (a merge's, when the stage
    # ends in one: not the shape of the layer last in its last branch, a gate's)
    stage_out_shape: Shape | None = None
    field: tuple[tuple[Expr, Expr, Expr], ...] | None = (
        None  # receptive field per spatial axis of the output: ((size, jump, start), ...)
    )

    @property
    def kernel_size(self) -> Expr:
        return sympy.Mul(*self.kernel) if self.kernel else ONE


@dataclass
class Node:
    """The structure of the network: a combinator over its children, or a layer.

    kind is the node's combinator (paramsym.kinds.combinators), which every stage that walks the
    structure asks: a sequence (children in order), res (children: main[, shortcut]), add, concat or
    mul (children: branches), aux (one child, a side head whose output is not used), moe (children:
    the router, the expert; `count` experts, `top` of them used per position), a symbolic repeat (one
    child, counted `count` times) or a layer (`layer` is the index into the layer list).
    """

    kind: Any  # its paramsym.kinds.combinators.Combinator (core cannot import kinds)
    children: list[Node] = field(default_factory=list)
    layer: int | None = None
    count: Expr | None = None
    top: Expr | None = None  # moe: how many experts each position goes through
    score_bias: bool = False  # moe(..., score_bias): the router keeps a bias per expert (state)
    name: str | None = None  # a named value (`STAGE as NAME`, `@NAME`): its name
    target: Node | None = None  # `@NAME`: the node that keeps the value it reads
    shape: Shape | None = None  # a second `input(...)`: the shape of the value it starts


@dataclass
class Flow:
    """What flows from one layer to the next."""

    shape: Shape
    source: tuple[str, Position] | None  # (name, position) of the layer that set the channels
    field: tuple[tuple[Expr, Expr, Expr], ...] | None = (
        None  # receptive field per spatial axis: ((size, jump, start), ...)
    )
    at_input: bool = False  # the program's input itself, no layer between (token ids for an embedding)


@dataclass
class TorchSpec:
    """One PyTorch module to build: its class (`nn.Conv2d`, or a helper of
    paramsym.torch_modules), positional and keyword arguments (which may be specs)."""

    cls: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    repeat: int = 1  # nn.Sequential of `repeat` fresh copies of args[0]


@dataclass
class KerasSpec:
    """One Keras layer to build: `keras.layers.<cls>(**kwargs)`."""

    cls: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    # how it is called: "" layer(x); "self" layer(x, x) (attention: query and value); "causal" the same with
    # use_causal_mask=True
    call: str = ""
