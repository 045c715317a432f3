"""`rest`, `rest(N)` (docs/language.md, Layers): a sequence without its first N positions (N = 1: without its class
token), T x d -> (T - N) x d. What ViTs that average their tokens do before the average (timm's
`x[:, num_prefix_tokens:].mean(1)`: EVA, BEiT, the register models). No parameters, no MACs; each output value is
one input value (fan-in 1). PyTorch: paramsym's `Rest` (x[..., N:] of the export's (N, d, T)); Keras:
`Cropping1D((N, 0))`.

`prefix`, `prefix(N)`: the first N positions alone (N = 1: the class token, as a sequence of one position), T x d ->
N x d; PyTorch's `x[:, :N]`, what PiT and CoaT keep apart from the tokens of the map (`seqcat(prefix > ... | rest >
...)`). PyTorch: paramsym's `Prefix`; Keras: `Cropping1D((0, T - N))`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sympy import Integer

from ..core import saved as saved_tensors
from ..core.records import KerasSpec, Layer, Options, Shape, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError
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
    check_or_defer,
    make_layer,
    whole_number,
)

_HINT = "e.g. input(224x224x3) > conv16x16(->768, stride=16) > tokens > cls > rest > gap (the class token left out)"


@dataclass(frozen=True)
class RestOptions(Options):
    skipped: Expr  # the positions left out at the start (N)


class Rest(Kind):
    key = "rest"
    names = ("rest",)
    positional = 1
    torch_modules = ("Rest",)
    verb = "leaves out"  # what it does with the first positions, in messages

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        skipped: Expr = Integer(1)
        if args.positional:
            arg = args.positional[0]
            skipped = args.one_value(arg, "number of positions")
            if skipped.is_number and not (skipped.is_integer and skipped >= 1):
                raise ParamsymArgumentError(
                    f"{call.name}({skipped}) {self.verb} the first positions: a positive whole number of them",
                    pos=arg.pos,
                    hint=f"write {call.name} for the first, {call.name}(5) for the first 5",
                )
            args.constraints += whole_number(skipped, f"the positions {call.name} {self.verb}", arg.pos)
        shape = flow.shape
        if shape.spatial is None or shape.channels is None:
            raise ParamsymShapeError(
                f"{call.name} {self.verb} the first positions of a sequence (T x d), but nothing before it says "
                f"its shape",
                pos=call.pos,
                hint=_HINT,
            )
        if len(shape.spatial) != 1:
            what = f"the vector {shape.describe()}" if shape.spatial == () else f"the map {shape.describe()}"
            raise ParamsymShapeError(
                f"{call.name} {self.verb} the first positions of a sequence (T x d), but its input is {what}",
                pos=call.pos,
                hint="make the positions of a map a sequence first with tokens; " + _HINT,
            )
        length = shape.spatial[0]
        if length is not None:
            args.constraints += check_or_defer(
                length - skipped,
                "positive",
                f"{call.name} {self.verb} {skipped} of the {length} positions of the sequence: "
                + ("none would be left" if self.key == "rest" else "it must keep fewer than all"),
                call.pos,
                shown=length - skipped,
            )
        out = Shape((None if length is None else self._length(length, skipped),), shape.channels)
        return make_layer(call, self, flow, out, shape.channels, shape.channels, options=RestOptions(skipped))

    def _length(self, length: Expr, skipped: Expr) -> Expr:
        return length - skipped

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return field  # each output position is one input position

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        skipped = RestOptions.of(layer).skipped
        first = "first position" if skipped == 1 else f"first {w(skipped)} positions"
        return [
            f"No parameters: the {layer.in_shape.describe()} sequence without its {first} "
            f"({layer.out_shape.describe()})."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("Rest", (num(RestOptions.of(layer).skipped),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        return [KerasSpec("Cropping1D", {"cropping": (num(RestOptions.of(layer).skipped), 0)})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        skipped = getattr(module, "skipped", None)
        if not isinstance(skipped, int) or skipped < 1 or len(ctx.in_shape) != 3 or skipped >= ctx.in_shape[1]:
            raise ImportRefused(
                f"{ctx.node_name} ({type(module).__name__}) does not leave out the first positions of a sequence"
            )
        return self.key if skipped == 1 else f"{self.key}({skipped})"


class Prefix(Rest):
    """`prefix(N)`: the first N positions of a sequence (the options' `skipped` is the N kept)."""

    key = "prefix"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Nothing: a view of its input (a layer that keeps it keeps the input's whole storage)."""
        return saved_tensors.VIEW

    names = ("prefix",)
    torch_modules = ("Prefix",)
    verb = "keeps"

    def _length(self, length: Expr, skipped: Expr) -> Expr:
        return skipped

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        kept = RestOptions.of(layer).skipped
        first = "first position" if kept == 1 else f"first {w(kept)} positions"
        return [
            f"No parameters: the {first} of the {layer.in_shape.describe()} sequence ({layer.out_shape.describe()})."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("Prefix", (num(RestOptions.of(layer).skipped),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        kept = num(RestOptions.of(layer).skipped)
        spatial = layer.in_shape.spatial
        assert spatial, "prefix reads a sequence"  # its shape rule refuses anything else
        return [KerasSpec("Cropping1D", {"cropping": (0, num(cast(Expr, spatial[0])) - kept)})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        kept = getattr(module, "kept", None)
        if not isinstance(kept, int) or kept < 1 or len(ctx.in_shape) != 3 or kept >= ctx.in_shape[1]:
            raise ImportRefused(
                f"{ctx.node_name} ({type(module).__name__}) does not keep the first positions of a sequence"
            )
        return self.key if kept == 1 else f"{self.key}({kept})"


KINDS = (Rest(), Prefix())
