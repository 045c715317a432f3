"""Element-wise layers with no parameters (activations, dropout, identity), and
PReLU, which learns a slope per channel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import sympy

from ..core import saved as saved_tensors
from ..core.records import ONE, KerasSpec, Layer, Options, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused, ParamsymArgumentError
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
    Template,
    Words,
    same_layer,
    stated_channels,
)

# an activation's Keras layer for its value (dropout(0.5): 0.5, or None), and its text for a PyTorch module
KerasLayer: TypeAlias = Callable[[float | None], KerasSpec]
Imported: TypeAlias = Callable[[Any, ImportContext | None], str]


@dataclass(frozen=True)
class ActivationOptions(Options):
    value: Expr | None = None  # dropout(0.5), leakyrelu(0.1): kept for export, counted nowhere


class Activation(Kind):
    """A parameter-free element-wise layer, one instance per name.

    `torch_class` is its torch.nn module; `keras(value)` its Keras layer (by default
    `Activation(name)`); with `takes_value` it takes one optional number (dropout(0.5),
    leakyrelu(0.1)), kept for export and counted nowhere, within `value_range` when PyTorch
    bounds it; `imported(module)` writes the call for a PyTorch module of that class.
    """

    per_position = True

    def __init__(
        self,
        name: str,
        torch_class: str,
        *,
        keras: KerasLayer | None = None,
        takes_value: bool = False,
        imported: Imported | None = None,
        torch_functions: tuple[str, ...] = (),
        identity: bool = False,
        value_range: tuple[float, float, str] | None = None,
        also: tuple[str, ...] = (),
    ) -> None:
        self.key = name
        self.value_range = value_range  # (low, high, PyTorch's words) for a value PyTorch bounds
        self.identity = identity
        self.names = (name,)
        self.positional = 1 if takes_value else 0
        self.torch_class = torch_class
        self.torch_modules = (torch_class.removeprefix("nn."),) + also  # also: other libraries' equal classes
        self.torch_functions = torch_functions
        self._keras = keras or (lambda value: KerasSpec("Activation", {"activation": name}))
        self._imported = imported or (lambda module, ctx: name)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        value = self.value(call, args.positional[0]) if args.positional else None
        return same_layer(call, self, flow, options=ActivationOptions(value))

    def value(self, call: Call, arg: Positional) -> Expr:
        """dropout(0.5), leakyrelu(0.1): one number (it counts nowhere, so no symbol gives it a value),
        within PyTorch's bounds."""
        value = arg.value[0]
        if len(arg.value) != 1 or not value.is_number:
            written = "x".join(str(v) for v in arg.value)
            raise ParamsymArgumentError(
                f"{call.name} takes one number, such as {call.name}(0.5), not {written}", pos=arg.pos
            )
        if self.value_range is not None:
            low, high, words = self.value_range
            if not low <= value <= high:
                raise ParamsymArgumentError(f"{call.name}({float(value):g}): {words}", pos=arg.pos)
        return value

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        value = ActivationOptions.of(layer).value
        return TorchSpec(self.torch_class, (float(value),)) if value is not None else TorchSpec(self.torch_class)

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        value = ActivationOptions.of(layer).value
        return [self._keras(None if value is None else float(value))]

    def from_torch(self, module: Any, ctx: ImportContext | None) -> str:
        # ctx None: an activation read inside a Hugging Face or torchvision layout (hf_import), not a node
        return self._imported(module, ctx)

    def from_torch_function(self, name: str, node: Any, ctx: ImportContext) -> str | None:
        return self.key

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """What PyTorch keeps for the gradient: its output (relu, sigmoid, tanh, softmax: the derivative is
        written in it), its input (the others), dropout its mask (as many values as the input, in the activation
        format on the CPU), droppath one value per sample, dropchannels one per channel of a sample."""
        return _SAVED.get(self.key)


class Dropout(Activation):
    """Dropout, also as F.dropout(x, p, training) in a forward (GhostNet's classifier)."""

    def from_torch_function(self, name: str, node: Any, ctx: ImportContext) -> str | None:
        p = node.kwargs.get("p", node.args[1] if len(node.args) > 1 else 0.5)
        return f"dropout({p})" if isinstance(p, (int, float)) and 0 <= p <= 1 else None

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        return saved_mask(self.key, layer)


class Softmax(Activation):
    """Over the channels (the last axis in the language, axis 1 in PyTorch)."""

    def __init__(self) -> None:
        super().__init__("softmax", "nn.Softmax", keras=lambda value: KerasSpec("Softmax", {"axis": -1}))

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec(self.torch_class, (), {"dim": 1})

    def from_torch(self, module: Any, ctx: ImportContext | None) -> str:
        assert ctx is not None  # a layout's activation is never a softmax (hf_import)
        if module.dim not in (1, -len(ctx.in_shape) + 1):
            raise ImportRefused(f"{ctx.node_name} (Softmax over axis {module.dim}) is not over the channels")
        return "softmax"


@dataclass(frozen=True)
class PReLUOptions(Options):
    shared: bool  # one slope for all channels


class PReLU(Kind):
    key = "prelu"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Its input (for the slopes' gradient and its own)."""
        return saved_tensors.INPUT

    names = ("prelu",)
    flags = frozenset({"shared"})
    positional = 1
    torch_modules = ("PReLU", "timm.layers.activations.PReLU")  # timm's: F.prelu(x, weight), as torch.nn's

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        shared = "shared" in args.flags
        channels = flow.shape.channels if shared else stated_channels(call, flow, args)
        return same_layer(call, self, flow, channels, options=PReLUOptions(shared))

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        return {"params": ONE if PReLUOptions.of(layer).shared else layer.cout}

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return ONE if PReLUOptions.of(layer).shared else t.c

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        if PReLUOptions.of(layer).shared:
            return ["PReLU learns one slope shared by all channels: 1 parameter."]
        return [f"PReLU learns one slope per channel: {w(layer.cout)} parameters."]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("nn.PReLU") if PReLUOptions.of(layer).shared else TorchSpec("nn.PReLU", (num(layer.cout),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        rank = layer.in_shape.rank or 0
        axes = list(range(1, rank + (2 if PReLUOptions.of(layer).shared else 1)))
        return [KerasSpec("PReLU", {"shared_axes": axes} if axes else {})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return "prelu(shared)" if module.num_parameters == 1 else "prelu"


def _value(keras_class: str, keyword: str, default: float) -> KerasLayer:
    return lambda value: KerasSpec(keras_class, {keyword: value if value is not None else default})


def saved_mask(key: str, layer: Layer) -> saved_tensors.Saved | None:
    """Its mask, in the activation format (PyTorch's CPU dropout multiplies by it): a value per input value
    (dropout), per channel of a sample (dropchannels) or per sample (droppath); nothing when the probability
    is 0 (the input is passed on), one number when it is 1 (the input is zeroed)."""
    p = ActivationOptions.of(layer).value
    if p is None:
        p = sympy.Rational(1, 2)  # nn.Dropout's default
    if not p.is_number:
        return None
    if p == 0:
        return saved_tensors.VIEW
    if p == 1:
        return saved_tensors.Saved(extras=(saved_tensors.Extra(ONE, per_sample=False, what="zero"),))
    if key == "dropout":
        elements = layer.in_shape.elements
    elif key == "dropchannels":
        elements = layer.in_shape.channels
    else:  # droppath
        elements = ONE
    if elements is None:
        return None
    return saved_tensors.Saved(extras=(saved_tensors.Extra(elements, what="mask"),))


# timm's activation modules that compute what torch.nn's do (F.gelu, x * sigmoid(x), x.sigmoid(), x.tanh())
_TIMM = "timm.layers.activations."

_SAVED_INPUT = ("relu6", "leakyrelu", "elu", "gelu", "silu", "hardswish", "hardsigmoid")
_SAVED: dict[str, saved_tensors.Saved] = {
    **dict.fromkeys(("relu", "sigmoid", "tanh", "softmax"), saved_tensors.OUTPUT),
    **dict.fromkeys(_SAVED_INPUT, saved_tensors.INPUT),
    "id": saved_tensors.VIEW,
}

KINDS = (
    Activation("relu", "nn.ReLU", torch_functions=("relu",)),
    Activation("relu6", "nn.ReLU6", keras=lambda value: KerasSpec("ReLU", {"max_value": 6.0})),
    Activation(
        "leakyrelu",
        "nn.LeakyReLU",
        takes_value=True,
        keras=_value("LeakyReLU", "negative_slope", 0.01),
        imported=lambda module, ctx: f"leakyrelu({module.negative_slope})",
    ),
    Activation(
        "elu",
        "nn.ELU",
        takes_value=True,
        keras=_value("ELU", "alpha", 1.0),
        imported=lambda module, ctx: f"elu({module.alpha})",
    ),
    Activation("gelu", "nn.GELU", also=(f"{_TIMM}GELU",), torch_functions=("gelu",)),
    Activation("silu", "nn.SiLU", also=(f"{_TIMM}Swish",), torch_functions=("silu",)),
    Activation("sigmoid", "nn.Sigmoid", also=(f"{_TIMM}Sigmoid",), torch_functions=("sigmoid",)),
    Activation("tanh", "nn.Tanh", also=(f"{_TIMM}Tanh",), torch_functions=("tanh",)),
    Softmax(),
    Activation("hardswish", "nn.Hardswish", keras=lambda value: KerasSpec("Activation", {"activation": "hard_swish"})),
    Dropout(
        "dropout",
        "nn.Dropout",
        torch_functions=("dropout",),
        takes_value=True,
        keras=_value("Dropout", "rate", 0.5),
        imported=lambda module, ctx: f"dropout({module.p})",
        value_range=(
            0,
            1,
            "the probability must be between 0 and 1 (PyTorch: dropout probability has to be between 0 and 1)",
        ),
    ),
    # nn.Dropout2d: zeroes whole channels of a map in training (BAT's attention), nothing in evaluation
    Dropout(
        "dropchannels",
        "nn.Dropout2d",
        takes_value=True,
        keras=_value("SpatialDropout2D", "rate", 0.5),
        imported=lambda module, ctx: f"dropchannels({module.p})",
        value_range=(
            0,
            1,
            "the probability must be between 0 and 1 (PyTorch: dropout probability has to be between 0 and 1)",
        ),
    ),
    Activation("id", "nn.Identity", keras=lambda value: KerasSpec("Identity"), identity=True),
    PReLU(),
)
