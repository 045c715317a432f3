"""`droppath(P)` (docs/language.md, Modern convolutional networks): stochastic depth, which in training drops a whole
sample's branch with probability P (and scales the kept ones by 1/(1−P)); no parameters, output
unchanged, the identity at inference. PyTorch: our `DropPath(p)` (torchvision's StochasticDepth(p,
"row") imports as it); Keras: Dropout(P) with noise_shape (batch, 1, ..., 1), one draw per sample."""

from __future__ import annotations

from typing import Any

from ..core.records import KerasSpec, TorchSpec
from ..errors import ImportRefused
from .activations import Activation, ActivationOptions
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
        return f"droppath({module.p if hasattr(module, 'p') else module.drop_prob})"


def _probability(layer: Layer) -> Expr:
    """P, which `build` requires."""
    return known(ActivationOptions.of(layer).value)


KINDS = (DropPath(),)
