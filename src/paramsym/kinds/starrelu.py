"""`starrelu` and `squaredrelu` (docs/language.md, MetaFormer activations): MetaFormer's (CAFormer, ConvFormer,
PoolFormer v2) element-wise activations. `squaredrelu` is relu(x)², with no parameters; `starrelu` is
s·relu(x)² + b with two learned numbers s and b, shared by every channel (timm's StarReLU: `self.scale *
self.relu(x) ** 2 + self.bias`, both of shape (1,)): 2 parameters. Neither has MACs (element-wise products, which
PyTorch's FlopCounterMode does not count either). PyTorch: paramsym's `StarReLU` and `SquaredReLU`; Keras has
neither."""

from __future__ import annotations

from typing import Any

import sympy

from ..core import saved as saved_tensors
from ..core.records import KerasSpec, Layer, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused
from .activations import Activation
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
    refuse_keras,
    same_layer,
)

TWO = sympy.Integer(2)


class StarReLU(Kind):
    key = "starrelu"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """relu(x), kept by relu and the square, and its square, kept by the product with the factor."""
        elements = layer.in_shape.elements
        if elements is None:
            return None
        return saved_tensors.Saved(extras=(saved_tensors.Extra(elements), saved_tensors.Extra(elements)))

    names = ("starrelu",)
    # paramsym's own, and timm's (MetaFormer)
    torch_modules = ("StarReLU", "timm.models.metaformer.StarReLU")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        return same_layer(call, self, flow)

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        return {"params": TWO}

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return TWO

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            "StarReLU squares the ReLU of each value, multiplies it by a learned factor and adds a learned shift, "
            "both shared by every channel: 2 parameters, no MACs."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("StarReLU")

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "Keras has no activation with a learned factor and shift of the squared ReLU")

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        values = [getattr(module, name, None) for name in ("scale", "bias")]
        if not all(getattr(p, "numel", lambda: 0)() == 1 for p in values):
            raise ImportRefused(
                f"{ctx.node_name} ({type(module).__name__}) has a factor or shift that is not one learned number"
            )
        return self.key


class SquaredReLU(Activation):
    """relu(x)²: no parameters; paramsym's `SquaredReLU` and timm's (MetaFormer's classifier head)."""

    def __init__(self) -> None:
        super().__init__("squaredrelu", "SquaredReLU", also=("timm.models.metaformer.SquaredReLU",))

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """relu(x), which relu keeps (its output) and the square keeps (its input): one tensor of the input's size."""
        elements = layer.in_shape.elements
        return None if elements is None else saved_tensors.Saved(extras=(saved_tensors.Extra(elements, what="relu"),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "Keras has no squared ReLU activation")


KINDS = (StarReLU(), SquaredReLU())
