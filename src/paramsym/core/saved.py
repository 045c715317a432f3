"""What PyTorch's autograd keeps for the backward pass of one training step: `saved_activation_bytes`.

Each layer's kind declares what its forward saves (`Kind.saved(layer, setup)` gives a `Saved`, or None when the
kind does not declare it); a walk over the network's structure gives each value (each tensor the forward makes)
an identity, so that a tensor saved by two layers (a convolution's output, saved by the ReLU after it as its
output and by the next convolution as its input) counts once. docs/language.md, "What autograd keeps (saved
activations)", has the rules and the table of what each kind saves; tests/test_saved_activations.py checks them
against PyTorch (`torch.autograd.graph.saved_tensors_hooks`, each storage counted once by its size).

Not counted: the parameters and buffers (weights, not activations) and the program's input (the images or token
ids given: the data). The values have the activation format (`--activations`, Setup.activations) unless a kind
says otherwise (a max pool's int64 indices, RMSNorm's fp32 statistics).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import sympy

from .. import expansion
from .quantities import Quantity, add, register
from .records import ONE, ZERO, Layer, Node, Shape
from .setup import Setup

Expr: TypeAlias = sympy.Expr
NetworkLike: TypeAlias = Any


@dataclass(frozen=True)
class Extra:
    """A tensor a layer makes only to keep it for backward (a max pool's indices, a norm's statistics):
    `elements` per sample (times the batch) or, not `per_sample`, for the whole batch (a batch norm's mean per
    channel); `bytes` per element, or None for the activation format."""

    elements: Expr
    bytes: int | None = None
    per_sample: bool = True
    what: str = ""
    shared: str = ""  # a tensor the model computes once for every layer that keeps it (rope's cosines and sines,
    # Hugging Face's `position_embeddings`): extras with the same key and size count once in the network


@dataclass(frozen=True)
class Saved:
    """What a layer's forward keeps for backward: its input tensor, its output tensor, tensors of its own
    (`extras`); `view`: its output is its input's storage (flatten, id), one value; `recomputed`: what
    `--recompute selective` makes again in backward."""

    input: bool = False
    output: bool = False
    extras: tuple[Extra, ...] = ()
    view: bool = False
    # with `--recompute selective`: what the layer makes again in backward and keeps while its gradient is taken
    # (attention's probabilities), counted for the one layer where it is largest
    recomputed: tuple[Extra, ...] = ()


MEASURED_FORMATS = ("fp32", "bf16")  # the activation formats the declarations were measured in

NOTHING = Saved()
INPUT = Saved(input=True)
OUTPUT = Saved(output=True)
VIEW = Saved(view=True)


class Undeclared(Exception):
    """The walk met something whose saved tensors are not declared: `reason` says what."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class Value:
    """A tensor of the forward pass: its bytes (for the whole batch); `data`: the program's input."""

    bytes: Expr
    data: bool = False
    id: int = field(default_factory=itertools.count().__next__)


class Walk:
    """The walk over the structure: `kept[id]` is the bytes a saved value takes, times how often it exists
    (the copies of a symbolic repeat)."""

    def __init__(self, network: NetworkLike, setup: Setup, with_input: bool = False) -> None:
        self.network = network
        self.setup = setup
        self.with_input = with_input
        self.kept: dict[int, Expr] = {}
        self.extra: list[Expr] = []
        self.times: Expr = ONE
        self.named: dict[int, Value] = {}  # id(keep node) -> its value
        self.shared: dict[tuple[str, Expr], Expr] = {}  # the shared extras, by key and size
        self.peaks: list[Expr] = []  # what one recomputation keeps at once: the largest counts (see total)
        self.memo: dict = {}  # sizes and products already worked out
        self.declared: dict = {}  # what each distinct layer keeps (Kind.saved)

    # ---- values
    def bytes_of(self, shape: Shape | None, what: str) -> Expr:
        elements = None if shape is None else shape.elements
        if elements is None:
            raise Undeclared(f"the size of {what} is not known (give the input shape, e.g. input(224x224x3))")
        # 10,000 layers have a few distinct sizes: each is multiplied out once
        return self._memo(("value", elements), lambda: self.setup.activations.bytes(elements * self.setup.batch))

    def _memo(self, key, compute: Callable[[], Expr]) -> Expr:
        try:
            return self.memo[key] if key in self.memo else self.memo.setdefault(key, compute())
        except TypeError:  # a part that cannot be a key
            return compute()

    def mark(self, value: Value) -> None:
        if value.data and not self.with_input:
            return
        if value.id not in self.kept:
            self.kept[value.id] = self._memo(("times", value.bytes, self.times), lambda: value.bytes * self.times)

    def size(self, extra: Extra) -> Expr:
        def compute() -> Expr:
            elements = extra.elements * (self.setup.batch if extra.per_sample else ONE)
            return self.setup.activations.bytes(elements) if extra.bytes is None else elements * extra.bytes

        return self._memo(("extra", extra), compute)

    def add_extra(self, extra: Extra) -> None:
        size = self.size(extra)
        if extra.shared:
            self.shared[(extra.shared, size)] = size
        else:
            self.extra.append(self._memo(("times", size, self.times), lambda: size * self.times))

    def kept_bytes(self) -> Expr:
        """What stays kept until backward (not the shared extras, nor a recomputation's)."""
        return add([*self.kept.values(), *self.extra])  # alike terms grouped: a long network adds fast

    def total(self) -> Expr:
        peak = sympy.Max(*self.peaks) if self.peaks else ZERO
        return expansion.expand(self.kept_bytes() + sympy.Add(*self.shared.values()) + peak, "the saved activations")

    # ---- the structure
    def walk(self, node: Node, x: Value) -> Value:
        key = node.kind.key
        handler: Callable[[Node, Value], Value] | None = getattr(self, f"_{key}", None)
        if handler is None:
            raise Undeclared(f"what {key}(...) keeps for backward is not declared")
        return handler(node, x)

    def _seq(self, node: Node, x: Value) -> Value:
        for child in node.children:
            x = self.walk(child, x)
        return x

    def _layer(self, node: Node, x: Value) -> Value:
        assert node.layer is not None
        layer: Layer = self.network.layers[node.layer].layer
        # alike layers (a repeated block) keep alike tensors: each distinct layer's declaration is asked once
        key: tuple = ("saved", layer.kind, layer.name, layer.options, layer.in_shape, layer.out_shape)
        key += (layer.cin, layer.cout)
        key += (layer.multiplier, layer.experts, layer.bias, layer.kernel, layer.stride, layer.pad, layer.groups)
        try:
            saved = (
                self.declared[key]
                if key in self.declared
                else self.declared.setdefault(key, layer.kind.saved(layer, self.setup))
            )
        except TypeError:  # an option that cannot be a key
            saved = layer.kind.saved(layer, self.setup)
        if saved is None:
            raise Undeclared(f"what {layer.name} ({layer.kind.key}, at {layer.pos}) keeps for backward is not declared")
        if saved.input:
            self.mark(x)
        out = x if saved.view else Value(self.bytes_of(layer.out_shape, f"the output of {layer.name}"))
        if saved.output:
            self.mark(out)
        for extra in saved.extras:
            self.add_extra(extra)
        if saved.recomputed:
            self.peaks.append(sympy.Add(*(self.size(extra) for extra in saved.recomputed)))
        return out

    def _merged(self, node: Node, x: Value) -> tuple[list[Value], Value]:
        outputs = [self.walk(child, x) for child in node.children]
        shape = node.kind.output_shape(node, lambda i: self.network.layers[i].layer.out_shape)
        return outputs, Value(self.bytes_of(shape, f"the value {node.kind.key}(...) gives"))

    def _res(self, node: Node, x: Value) -> Value:
        return self._merged(node, x)[1]  # a sum keeps nothing

    _add = _sub = _concat = _seqcat = _res

    def _mul(self, node: Node, x: Value) -> Value:
        if len(node.children) != 2:
            raise Undeclared("what mul(...) of more than two branches keeps for backward is not declared")
        outputs, out = self._merged(node, x)
        for value in outputs:  # each factor, for the other's gradient
            self.mark(value)
        return out

    def _keep(self, node: Node, x: Value) -> Value:
        out = self.walk(node.children[0], x)
        self.named[id(node)] = out
        return out

    def _fetch(self, node: Node, x: Value) -> Value:
        return self.named[id(node.target)]

    def _input(self, node: Node, x: Value) -> Value:
        return Value(self.bytes_of(node.shape, "the second input"), data=True)

    def _repeat(self, node: Node, x: Value) -> Value:
        """N copies of the body: what each copy keeps inside, N times; the N - 1 values between copies once
        each, when a copy keeps its input or its output."""
        count = node.count
        assert count is not None  # a repeat node has its count
        boundary = Value(x.bytes)
        outer = self.times
        self.times = outer * count
        out = self.walk(node.children[0], boundary)
        self.times = outer
        if out is boundary:  # the copies pass one storage on (views): it is kept once, if at all
            if self.kept.pop(boundary.id, None) is not None:
                self.mark(x)
            return x
        takes = self.kept.pop(boundary.id, None) is not None
        gives = self.kept.pop(out.id, None) is not None
        result = Value(out.bytes)
        if takes or gives:
            self.extra.append((count - 1) * out.bytes * outer)
        if takes:
            self.mark(x)
        if gives:
            self.mark(result)
        return result


class Checkpointed(Walk):
    """`--recompute full`: each copy of a top-level symbolic repeat (a transformer's blocks) is checkpointed
    (torch.utils.checkpoint): it keeps its input only, and in backward makes again what it keeps, one copy at a
    time. The layers outside those repeats keep what they keep."""

    def _repeat(self, node: Node, x: Value) -> Value:
        if not any(node is child for child in self.network.structure.children):
            return super()._repeat(node, x)  # a repeat inside a block: recomputed with it
        count = node.count
        assert count is not None  # a repeat node has its count
        inner = Walk(self.network, self.setup, self.with_input)
        inner.named = self.named
        boundary = Value(x.bytes)
        out = inner.walk(node.children[0], boundary)
        inner.kept.pop(boundary.id, None)  # the checkpoint keeps the copy's input
        self.shared.update(inner.shared)  # made once, outside the blocks (rope's cosines and sines)
        self.peaks.append(inner.kept_bytes() + (sympy.Max(*inner.peaks) if inner.peaks else ZERO))
        self.mark(x)  # the first copy's input
        self.extra.append((count - 1) * x.bytes)  # the others'
        return x if out is boundary else Value(out.bytes)


def saved_bytes(network: NetworkLike, setup: Setup | None = None, *, with_input: bool = False) -> Expr | None:
    """The bytes autograd keeps for backward (None when a kind does not declare it: `why_unknown` says which)."""
    try:
        return _saved(network, setup or network.setup, with_input)
    except Undeclared:
        return None


def why_unknown(network: NetworkLike) -> str | None:
    """Why `saved_activation_bytes` is None (a kind that does not declare what it keeps), or None."""
    try:
        _saved(network, network.setup, False)
    except Undeclared as error:
        return error.reason
    return None


def _saved(network: NetworkLike, setup: Setup, with_input: bool) -> Expr:
    if setup.activations.name not in MEASURED_FORMATS:
        raise Undeclared(
            f"what autograd keeps is declared (and checked against PyTorch) for fp32 and bf16 activations, "
            f"not {setup.activations}"
        )
    if any(lc.layer.experts is not None for lc in network.layers):
        raise Undeclared("what moe(...) keeps for backward is not declared")
    walk = Walk(network, setup, with_input)
    shape = network.input_shape
    start = Value(_input_bytes(network, setup) if shape.elements is not None else ZERO, data=True)
    if setup.recompute == "full":
        walk = Checkpointed(network, setup, with_input)
        if not any(child.kind.key == "repeat" for child in network.structure.children):
            raise Undeclared(
                "--recompute full checkpoints each copy of a block repeated a symbolic number of times, (SEQ) * N "
                "at the top level of the program (a transformer's blocks), and this program has none"
            )
    walk.walk(network.structure, start)
    return walk.total()


def _input_bytes(network: NetworkLike, setup: Setup) -> Expr:
    """The program's input: token ids (int64) when a layer looks them up, else values of the activation format."""
    elements = network.input_shape.elements * setup.batch
    if any(getattr(lc.layer.kind, "token_ids", False) for lc in network.layers):
        return elements * 8
    return setup.activations.bytes(elements)


def _quantity(net: NetworkLike) -> Expr | None:
    return saved_bytes(net)


def _explain(net: NetworkLike, words: Any) -> str | None:
    """explain's closing line with --train: the bytes, or which layer does not declare what it keeps."""
    if not net.setup.train:
        return None
    value = saved_bytes(net)
    if value is None:
        return f"Saved activations (what autograd keeps for backward): unknown: {why_unknown(net)}."
    setup = net.setup
    return (
        f"Saved activations (what autograd keeps for backward, batch {words(setup.batch)}, {setup.activations} "
        f"activations, --recompute {setup.recompute}, --attention {setup.attention}): {words(value)} bytes."
    )


register(
    Quantity(
        "saved_activation_bytes",
        "saved activations",
        long_title="saved activation bytes",
        noun="saved activation size",
        network=_quantity,
        budget=True,
        unknown="? (unknown: paramsym explain --train says why)",
        explain=_explain,
        applies=lambda net: bool(net.setup.train),
        needs="--train",
        unit="bytes",
    )
)
