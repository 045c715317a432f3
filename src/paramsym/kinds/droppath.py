"""`droppath(P)` (docs/language.md, Modern convolutional networks): stochastic depth, which in training drops a whole
sample's branch with probability P (and scales the kept ones by 1/(1−P)); no parameters, output
unchanged, the identity at inference. PyTorch: our `DropPath(p)` (torchvision's StochasticDepth(p,
"row") imports as it); Keras: Dropout(P) with noise_shape (batch, 1, ..., 1), one draw per sample.

An imported probability is written as the rate it stands for, not as the float that computed it
(`written`): torchvision's linear schedules give 0.2 * 12 / 16 = 0.15000000000000002 (written 0.15)
and 0.1 * 1 / 17 = 0.0058823529411764705 (written 1/170)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ..core import saved as saved_tensors
from ..core.records import KerasSpec, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused
from .activations import Activation, ActivationOptions, saved_mask
from .base import Args, Call, Counts, Expr, Flow, ImportContext, Layer, NameMatch, Numbers, Words, known


class DropPath(Activation):
    def __init__(self) -> None:
        super().__init__(
            "droppath",
            "DropPath",
            takes_value=True,
            value_range=(
                0,
                1,
                "the probability must be between 0 and 1 (torchvision's StochasticDepth: "
                "drop probability has to be between 0 and 1)",
            ),
        )
        self.torch_modules = ("DropPath", "StochasticDepth")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        args.required("its probability", "0.1", "P")
        return super().build(call, flow, args, match)

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            f"No parameters: in training it drops the whole branch of a sample with probability "
            f"{float(_probability(layer)):g}; at inference it passes its input on."
        ]

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        return saved_mask(self.key, layer)  # its mask: one value per sample

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("DropPath", (float(_probability(layer)),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        rank = layer.in_shape.rank or 0
        return [
            KerasSpec(
                "Dropout",
                {"rate": float(_probability(layer)), "noise_shape": (None,) + (1,) * (rank + 1)},
            )
        ]

    def from_torch(self, module: Any, ctx: ImportContext | None) -> str:
        if getattr(module, "mode", "row") != "row":
            assert ctx is not None  # a module of the model, not of a layout
            raise ImportRefused(
                f"{ctx.node_name} (StochasticDepth in mode {module.mode!r}) drops the whole batch, "
                f"not one sample's branch"
            )
        # torchvision's StochasticDepth and ours keep p; timm's DropPath (the same per-sample drop) drop_prob
        return f"droppath({written(module.p if hasattr(module, 'p') else module.drop_prob)})"


def written(p: float) -> str:
    """A drop probability as a program writes it: the simplest fraction (denominator at most 10,000) within a
    float's rounding (a millionth of a millionth of p) of it, as a decimal where its decimal ends (0.15,
    0.0125) and as p/q where it does not (1/170); otherwise p to 12 significant digits."""
    value = float(p)
    if value == 0:
        return "0"
    near = Fraction(value).limit_denominator(10_000)
    if abs(float(near) - value) > 1e-12 * abs(value):
        return f"{value:.12g}"
    q, places = near.denominator, 0
    for prime in (2, 5):
        n = 0
        while q % prime == 0:
            q, n = q // prime, n + 1
        places = max(places, n)
    if q != 1:
        return f"{near.numerator}/{near.denominator}"
    if places == 0:
        return str(near.numerator)
    digits = str(near.numerator * 10**places // near.denominator).rjust(places + 1, "0")
    return f"{digits[:-places]}.{digits[-places:]}"


def _probability(layer: Layer) -> Expr:
    """P, which `build` requires."""
    return known(ActivationOptions.of(layer).value)


KINDS = (DropPath(),)
