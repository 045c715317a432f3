"""`dense` (aliases `fc`, `linear`): a fully connected layer on the last axis."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import sympy

from .. import expansion
from ..core import saved as saved_tensors
from ..core.records import ZERO, KerasSpec, Layer, Options, Shape, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymNameError, ParamsymShapeError, Position
from ..language.syntax import Call, Channels, Positional
from .base import (
    Args,
    Constraint,
    Counts,
    Expr,
    Flow,
    ImportContext,
    Kind,
    NameMatch,
    Numbers,
    Template,
    Value,
    Words,
    bias_of,
    bias_sentences,
    check_or_defer,
    fan_in_sentence,
    input_channels,
    known,
    make_layer,
    refuse_bias_split,
    refuse_keras,
    split_over,
    times,
    tp_size,
    vector_or_channels_last,
)


@dataclass(frozen=True)
class Tie:
    """`tie=NAME`: the layer whose weight a dense layer shares."""

    name: str  # as written
    index: int  # the named layer's index in the network's layers: the export shares its weight


@dataclass(frozen=True)
class DenseOptions(Options):
    tie: Tie | None = None


class Dense(Kind):
    key = "dense"
    weights_times_input = True
    per_position = True

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Its input (for the weights' gradient)."""
        return saved_tensors.INPUT if type(self) is Dense else None

    names: tuple[str, ...] = ("dense", "fc", "linear")
    keywords = frozenset({"tie"})
    flags = frozenset({"bias", "nobias"})
    takes_channels = True
    torch_modules: tuple[str, ...] = (
        "Linear",
        "timm.layers.linear.Linear",
    )  # timm's: F.linear(x, weight, bias), as torch.nn's

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        if args.channels is None:
            raise ParamsymArgumentError(
                f"{call.name} needs its output size: write {call.name}(->10, ...)", pos=call.pos
            )
        cin = input_channels(call, flow, args)
        cout = args.channels.cout
        layer = make_layer(
            call, self, flow, Shape(flow.shape.spatial, cout), cin, cout, bias=args.bias, options=DenseOptions()
        )
        if "tie" in args.keywords:
            name, constraints = self._tie(layer, args)
            # the export shares the weight of the layer at this index (the layers' order in the network)
            layer.options = DenseOptions(Tie(name, args.named[name].index))
            layer.constraints = tuple(constraints)
        return layer

    def _tie(self, layer: Layer, args: Args) -> tuple[str, list[Constraint]]:
        """`tie=NAME`: the named layer's weight, which must be (cout, cin) or its transpose."""
        arg = args.keywords["tie"]
        name = arg.value[0].name if len(arg.value) == 1 and isinstance(arg.value[0], sympy.Symbol) else None
        if name is None:
            raise ParamsymArgumentError(
                "tie= takes the name of a layer, given with 'LAYER as NAME'",
                pos=arg.pos,
                hint="e.g. embed(V->d) as wte > ... > dense(->V, tie=wte)",
            )
        target = args.named.get(name)
        if target is None:
            close = difflib.get_close_matches(name, sorted(args.named), n=1)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else "name the layer first: embed(V->d) as wte > ... > dense(->V, tie=wte)"
            )
            raise ParamsymNameError(f"tie={name}: no layer before this one is named '{name}'", pos=arg.pos, hint=hint)
        weight = target.kind.weight(target)
        if weight is None:
            raise ParamsymArgumentError(
                f"tie={name}: {target.name} has no weight matrix to share",
                pos=arg.pos,
                notes=((f"'{name}' is this {target.name}", target.pos),),
            )
        own = (layer.cout, layer.cin)
        orientations = [[expansion.expand(a - b) for a, b in zip(own, shared)] for shared in (weight, weight[::-1])]
        if any(all(d == 0 for d in differences) for differences in orientations):
            return name, []
        message = (
            f"tie={name}: this layer's weight is {own[0]} x {own[1]} (outputs x inputs), but "
            f"{target.name}'s is {weight[0]} x {weight[1]}"
        )
        # sizes that agree only for some values (d and D): checked once they have values, in the
        # orientation that can hold (the fewest differences)
        possible = [ds for ds in orientations if not any(d.is_number and d != 0 for d in ds)]
        if not possible:
            raise ParamsymShapeError(message, pos=arg.pos, notes=((f"'{name}' is this {target.name}", target.pos),))
        differences = min(possible, key=lambda ds: sum(d != 0 for d in ds))
        constraints = [c for d in differences if d != 0 for c in check_or_defer(d, "zero", message, arg.pos)]
        return name, constraints

    def tensor_parallel(self, layer: Layer, params: Expr, t: int, value: Value) -> Expr:
        # row-parallel (its inputs split) or column-parallel (its outputs split): the same share of the weight
        if layer.bias:
            refuse_bias_split(t, layer)
        cin = tp_size(t, layer, layer.cin, "the input width", value)
        if cin % t:  # not row-parallel: column-parallel then
            return split_over(t, layer, params, value, (layer.cout, "the width"))
        return params / t

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        cin, cout = known(layer.cin), known(layer.cout)
        macs = times(layer.out_shape.positions, cin, cout)
        weights = (
            ZERO if DenseOptions.of(layer).tie is not None else cin * cout
        )  # a shared weight is counted where it is
        return {"params": weights + bias_of(layer), "fan_in": cin, "connections": macs, "macs": macs}

    def weight(self, layer: Layer) -> tuple[Expr, Expr]:
        return (layer.cout, layer.cin)

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        weights = ZERO if DenseOptions.of(layer).tie is not None else t.c_in * t.c_out
        return weights + (t.c_out if layer.bias else ZERO)

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        tie = DenseOptions.of(layer).tie
        if tie is not None:
            shared = (
                f"Each of the {w(layer.cout)} outputs is connected to all {w(layer.cin)} inputs, through the "
                f"weight of {tie.name} (tied): its {w.product(layer.cin, layer.cout)} weights are "
                f"counted there, not here."
            )
            bias = (
                f"Plus {w(layer.cout)} biases: {w(counts.params)} parameters."
                if layer.bias
                else "No bias: 0 parameters of its own."
            )
            return [shared, bias, fan_in_sentence(counts, w)]
        return (
            [
                f"Each of the {w(layer.cout)} outputs is connected to all {w(layer.cin)} inputs: "
                f"{w.product(layer.cin, layer.cout)} weights."
            ]
            + bias_sentences(layer, counts, w)
            + [fan_in_sentence(counts, w)]
        )

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return vector_or_channels_last(
            layer, TorchSpec("nn.Linear", (num(layer.cin), num(layer.cout)), {"bias": layer.bias})
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        tie = DenseOptions.of(layer).tie
        if tie is not None:
            refuse_keras(layer, f"a Keras Dense layer cannot share the weight of another layer (tie={tie.name})")
        return [KerasSpec("Dense", {"units": num(layer.cout), "use_bias": layer.bias})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        if len(ctx.in_shape) != 2:
            raise ImportRefused(
                f"{ctx.node_name} ({type(module).__name__}) acts on the last axis of a "
                f"{len(ctx.in_shape)}-D tensor (the width, in PyTorch's layout), which the language "
                f"cannot express"
            )
        bias = ", bias" if module.bias is not None else ""
        return f"dense({module.in_features}->{module.out_features}{bias})"


@dataclass(frozen=True)
class RouterOptions(DenseOptions):
    score_bias: bool = False  # moe(..., score_bias): one bias per expert on the scores that choose, kept as state


class Router(Dense):
    """The router of `moe(...)`: a dense layer without bias that scores the experts for each position; with
    `score_bias` (moe's flag) it keeps one bias per expert, added to the scores to choose the experts (DeepSeek-V3's
    e_score_correction_bias), as state."""

    key = "router"
    names = ("router",)
    keywords = frozenset()
    flags = frozenset({"score_bias"})
    torch_modules = ()

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        layer = super().build(call, flow, args, match)
        layer.options = RouterOptions(score_bias="score_bias" in args.flags)
        return layer

    def tensor_parallel(self, layer: Layer, params: Expr, t: int, value: Value) -> Expr:
        return params  # replicated on every tensor-parallel rank (Megatron-LM's router)

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        counts = super().counts(layer)
        return {**counts, "state": known(layer.cout)} if RouterOptions.of(layer).score_bias else counts

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            f"The router scores the {w(layer.cout)} experts for each position from its {w(layer.cin)} "
            f"channels: {w.product(layer.cin, layer.cout)} weights, no bias.",
            fan_in_sentence(counts, w),
        ] + (
            [
                f"It keeps one bias per expert ({w(layer.cout)} values of state, not learned by gradient descent) "
                f"that is added to the scores only to choose the experts (DeepSeek-V3's e_score_correction_bias)."
            ]
            if RouterOptions.of(layer).score_bias
            else []
        )


def router_call(experts: Expr, pos: Position, score_bias: bool = False) -> Call:
    """The router layer that `moe(..., experts=E[, score_bias])` begins with."""
    flag = (Positional((sympy.Symbol("score_bias"),), pos),) if score_bias else ()
    return Call("router", (Channels(None, experts, pos, None, pos), *flag), pos)


KINDS = (Dense(), Router())
