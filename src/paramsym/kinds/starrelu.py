"""`starrelu` and `squaredrelu` (docs/language.md, MetaFormer activations): MetaFormer's (CAFormer, ConvFormer,
PoolFormer v2) element-wise activations. `squaredrelu` is relu(x)², with no parameters; `starrelu` is
s·relu(x)² + b with two learned numbers s and b, shared by every channel (timm's StarReLU: `self.scale *
self.relu(x) ** 2 + self.bias`, both of shape (1,)): 2 parameters. Neither has MACs (element-wise products, which
PyTorch's FlopCounterMode does not count either). PyTorch: paramsym's `StarReLU` and `SquaredReLU`; Keras has
neither."""

from __future__ import annotations

from typing import Any

import sympy

from ..core.records import KerasSpec, Layer, TorchSpec
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

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "Keras has no squared ReLU activation")


KINDS = (StarReLU(), SquaredReLU())
