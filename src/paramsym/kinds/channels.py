"""Layers that pick or reorder channels and learn nothing (docs/language.md, Modern convolutional networks):
`slice(a, b)` keeps channels a to b-1 (ShuffleNetV2's channel split), `shuffle(g)` is
ShuffleNet's channel shuffle in g groups. PyTorch: our `ChannelSlice(a, b)`, `nn.ChannelShuffle(g)`;
Keras: shuffle as Reshape > Permute > Reshape, slice refused (keras.layers has no channel slice)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import saved as saved_tensors
from ..core.records import KerasSpec, Layer, Options, Shape, TorchSpec
from ..core.setup import Setup
from ..errors import ParamsymArgumentError, ParamsymShapeError
from ..language.syntax import Positional
from .base import (
    Args,
    Call,
    Counts,
    Expr,
    Flow,
    ImportContext,
    Kind,
    NameMatch,
    Numbers,
    Words,
    axes,
    check_or_defer,
    known,
    make_layer,
    refuse_keras,
    whole_number,
)


def _channels(call: Call, flow: Flow) -> Expr:
    if flow.shape.channels is None:
        raise ParamsymShapeError(
            f"{call.name} needs its input channels: nothing before it says how many there are",
            pos=call.pos,
            hint="start the network with input(...)",
        )
    return flow.shape.channels


def _number(call: Call, arg: Positional, what: str, least: int, args: Args) -> Expr:
    """One whole number (or a symbol) of at least `least`."""
    if len(arg.value) != 1:
        written = "x".join(str(v) for v in arg.value)
        raise ParamsymArgumentError(f"{what} of {call.name} is one number, not {written}", pos=arg.pos)
    value = arg.value[0]
    args.constraints += whole_number(value, what, arg.pos, least=least)
    return value


@dataclass(frozen=True)
class SliceOptions(Options):
    start: Expr  # the first channel kept
    end: Expr  # one past the last


class ChannelSlice(Kind):
    key = "slice"
    names = ("slice",)
    positional = 2
    torch_modules = ("ChannelSlice",)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        if len(args.positional) != 2:
            raise ParamsymArgumentError(
                f"{call.name} takes two values: {call.name}(a, b) keeps channels a to b-1",
                pos=call.pos,
                hint=f"for example {call.name}(0, 32)",
            )
        first, end = args.positional
        a = _number(call, first, "the first channel", 0, args)
        b = _number(call, end, "the end channel", 1, args)
        channels = _channels(call, flow)
        constraints = check_or_defer(
            b - a,
            "positive",
            f"{call.name}({a}, {b}) keeps no channel: a must be less than b",
            end.pos,
            shown=b,
            hint=f"{call.name}(a, b) keeps channels a to b-1",
        )
        past = channels - b
        assert flow.source is not None  # the layer that set the channels
        name, where = flow.source
        if past.is_number and past < 0:
            raise ParamsymShapeError(
                f"{call.name}({a}, {b}) goes past the {channels} channels of its input (channels 0 to {channels - 1})",
                pos=end.pos,
                notes=((f"the {channels} channels come from {name}", where),),
            )
        constraints += check_or_defer(
            past,
            "nonnegative",
            f"{call.name}({a}, {b}) must end within the {channels} channels of its input",
            end.pos,
            shown=b,
        )
        return make_layer(
            call,
            self,
            flow,
            Shape(flow.shape.spatial, b - a),
            channels,
            b - a,
            options=SliceOptions(start=a, end=b),
            constraints=tuple(constraints),
        )

    def header(self, layer: Layer, w: Words) -> str:
        return f", channels {w(SliceOptions.of(layer).start)} to {w(SliceOptions.of(layer).end - 1)} of {w(layer.cin)}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        options = SliceOptions.of(layer)
        return [
            f"No parameters: it keeps channels {w(options.start)} to {w(options.end - 1)} of "
            f"the {w(layer.cin)}, {w(layer.cout)} channels."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("ChannelSlice", (num(SliceOptions.of(layer).start), num(SliceOptions.of(layer).end)))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(
            layer,
            "keras.layers has no layer that keeps some of the channels (only a Lambda could, and "
            "exported models use none)",
        )

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return f"slice({module.start}, {module.end})"


class ChannelShuffle(Kind):
    key = "shuffle"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Nothing: the channels reordered."""
        return saved_tensors.NOTHING

    names = ("shuffle",)
    positional = 1
    torch_modules = ("ChannelShuffle",)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        arg = args.required("its number of groups", "2", "g")
        groups = _number(call, arg, "groups", 1, args)
        channels = _channels(call, flow)
        if flow.shape.spatial == ():
            raise ParamsymShapeError(
                f"{call.name} needs spatial axes, but its input is a vector (PyTorch's "
                f"channel_shuffle expects input with > 2 dims)",
                pos=call.pos,
            )
        ratio = channels / groups
        assert flow.source is not None  # the layer that set the channels
        name, where = flow.source
        if ratio.is_number and not ratio.is_integer:
            raise ParamsymShapeError(
                f"{call.name}({groups}): {groups} groups do not divide the {channels} channels",
                pos=arg.pos,
                notes=((f"the {channels} channels come from {name}", where),),
                hint="the number of groups must divide the channels",
            )
        constraints = check_or_defer(
            ratio,
            "integer",
            f"{call.name}({groups}): the groups must divide the {channels} channels",
            arg.pos,
            shown=groups,
        )
        return make_layer(
            call, self, flow, flow.shape, channels, channels, groups=groups, constraints=tuple(constraints)
        )

    def header(self, layer: Layer, w: Words) -> str:
        return f", {w(layer.groups)} groups"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            f"No parameters: it splits the {w(layer.cin)} channels into {w(layer.groups)} groups of "
            f"{w(known(layer.cin) / layer.groups)} and interleaves them (channel k of group i goes to position "
            f"k·{w(layer.groups)} + i)."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("nn.ChannelShuffle", (num(layer.groups),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        spatial = num.each(axes(layer.in_shape))
        groups, channels = num(layer.groups), num(layer.cin)
        rank = len(spatial)
        swap = (*range(1, rank + 1), rank + 2, rank + 1)  # Keras' Permute counts the axes from 1, batch aside
        return [
            KerasSpec("Reshape", {"target_shape": (*spatial, groups, channels // groups)}),
            KerasSpec("Permute", {"dims": swap}),
            KerasSpec("Reshape", {"target_shape": (*spatial, channels)}),
        ]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return f"shuffle({module.groups})"


KINDS = (ChannelSlice(), ChannelShuffle())
