"""`adaptiveavgpool(S)`, `adaptivemaxpool(S)` (docs/language.md): PyTorch's adaptive pooling to
a fixed output size (S one size for every axis, or S1xS2 per axis); no parameters.

Output position i of an axis of n inputs pools inputs floor(i·n/S) to ceil((i+1)·n/S) − 1, so the
windows may differ in size and overlap. Fan-in is the largest window: per axis, with q = floor(n/S)
and r = n mod S, q when S divides n, q + 1 when r divides S, else q + 2; the product over the axes.
Connections are the sum of all windows' sizes times the channels: per axis n + S − gcd(n, S).
PyTorch nn.AdaptiveAvgPool{1,2,3}d / nn.AdaptiveMaxPool{1,2,3}d, Keras AdaptiveAveragePooling{1,2,3}D /
AdaptiveMaxPooling{1,2,3}D. A size of 1 on every axis imports as gap / gmp (pooling.py), any other
size as these kinds."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import sympy

from ..core import saved as saved_tensors
from ..core.records import ONE, ZERO, KerasSpec, Layer, Options, Shape, TorchSpec
from ..core.setup import Setup
from ..errors import ParamsymArgumentError, ParamsymShapeError
from . import pooling, windows
from .base import (
    Args,
    Call,
    Counts,
    Expr,
    Field,
    Flow,
    ImportContext,
    Kind,
    NameMatch,
    Numbers,
    Words,
    make_layer,
    times,
    whole_number,
)


class gcd(sympy.Function):  # type: ignore[misc]  # SymPy has no type information: its Function is Any
    """The greatest common divisor of two whole numbers, left as it is while one is a symbol."""

    is_integer = True
    is_positive = True

    @classmethod
    def eval(cls, a: Expr, b: Expr) -> Expr | None:
        if a.is_Integer and b.is_Integer:
            return sympy.Integer(math.gcd(int(a), int(b)))
        return None


def largest_window(n: Expr, s: Expr) -> Expr:
    """The largest window of adaptive pooling from n inputs to s outputs on one axis."""
    if n.is_Integer and s.is_Integer:
        q, r = divmod(int(n), int(s))
        return sympy.Integer(q if r == 0 else q + 1 if int(s) % r == 0 else q + 2)
    q, r = sympy.floor(n / s), sympy.Mod(n, s)
    return sympy.Piecewise((q, sympy.Eq(r, 0)), (q + 1, sympy.Eq(gcd(n, s), r)), (q + 2, True))


def window_total(n: Expr, s: Expr) -> Expr:
    """The sum of the sizes of the s windows from n inputs: n + s − gcd(n, s)."""
    return n + s - gcd(n, s)


def _out(layer: Layer) -> tuple[Expr, ...]:
    """The output sizes, which the program states (adaptiveavgpool(7))."""
    sizes = layer.out_shape.spatial
    assert sizes is not None
    return sizes


@dataclass(frozen=True)
class AdaptivePoolingOptions(Options):
    op: str  # "avg" or "max"


class AdaptivePooling(Kind):
    key = "adaptivepool"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Its input; the max pool also the position of each maximum (int64, one per output value)."""
        if AdaptivePoolingOptions.of(layer).op == "avg":
            return saved_tensors.INPUT
        elements = layer.out_shape.elements
        return None if elements is None else saved_tensors.Saved(True, extras=(saved_tensors.Extra(elements, 8),))

    names = ("adaptiveavgpool", "adaptivemaxpool")
    positional = 1
    # PyTorch's adaptive pools: gap/gmp's kind claims them too, and both write the same text (pooling._adaptive)
    torch_modules = pooling.GlobalPooling.torch_modules
    torch_functions = pooling.GlobalPooling.torch_functions

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        arg = args.required("its output size", "7", "S", "S1xS2")
        sizes = flow.shape.spatial
        if sizes == ():
            raise ParamsymShapeError(f"{call.name} needs spatial axes, but its input is already a vector", pos=call.pos)
        for value in arg.value:
            args.constraints += whole_number(value, "the output size", arg.pos)
        rank = len(arg.value) if sizes is None else len(sizes)
        out = tuple(arg.value) * rank if len(arg.value) == 1 else tuple(arg.value)
        if len(out) != rank:
            raise ParamsymArgumentError(
                f"{call.name} gives {len(arg.value)} sizes but its input has {rank} spatial "
                f"axes ({flow.shape.describe()})",
                pos=arg.pos,
            )
        if rank > 3:
            raise ParamsymShapeError(f"{call.name} works on inputs of 1 to 3 spatial axes, not {rank}", pos=call.pos)
        channels = flow.shape.channels
        op = "avg" if call.name == "adaptiveavgpool" else "max"
        return make_layer(
            call, self, flow, Shape(out, channels), channels, channels, options=AdaptivePoolingOptions(op)
        )

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        spatial = layer.in_shape.spatial
        if spatial is None or any(n is None for n in spatial):
            return {}
        sizes = _out(layer)
        fan_in = sympy.Mul(*(largest_window(n, s) for n, s in zip(spatial, sizes)))
        total = sympy.Mul(*(window_total(n, s) for n, s in zip(spatial, sizes)))
        return {"fan_in": fan_in, "connections": times(total, layer.cout)}

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        """Exact only when S divides n on every axis (windows of n/S, stride n/S); else unknown."""
        sizes, out = layer.in_shape.spatial, _out(layer)
        if field is None or sizes is None or any(n is None or not (n / s).is_Integer for n, s in zip(sizes, out)):
            return None
        steps = tuple(n / s for n, s in zip(sizes, out))
        rank = len(steps)
        window = dataclasses.replace(layer, kernel=steps, stride=steps, pad=(ZERO,) * rank, dilation=(ONE,) * rank)
        return windows.window_field(window, field)

    def header(self, layer: Layer, w: Words) -> str:
        return f", to {' x '.join(w(s) for s in _out(layer))}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        op = "average" if AdaptivePoolingOptions.of(layer).op == "avg" else "maximum"
        sizes = " x ".join(w(s) for s in _out(layer))
        return [
            f"No parameters: it takes the {op} of each of {sizes} windows that PyTorch fits to the input "
            f"(input position floor(i·n/S) to ceil((i+1)·n/S) − 1 for output i), channel by channel.",
            f"Fan-in: the largest window has {w(counts.fan_in)} inputs.",
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        rank = len(_out(layer))
        op = "Avg" if AdaptivePoolingOptions.of(layer).op == "avg" else "Max"
        sizes = num.each(_out(layer))
        return TorchSpec(f"nn.Adaptive{op}Pool{rank}d", (sizes[0] if rank == 1 else tuple(sizes),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        rank = len(_out(layer))
        op = "Average" if AdaptivePoolingOptions.of(layer).op == "avg" else "Max"
        return [KerasSpec(f"Adaptive{op}Pooling{rank}D", {"output_size": tuple(num.each(_out(layer)))})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return pooling.GlobalPooling().from_torch(module, ctx)

    def from_torch_function(self, name: str, node: Any, ctx: ImportContext) -> str | None:
        return pooling.GlobalPooling().from_torch_function(name, node, ctx)


KINDS = (AdaptivePooling(),)
