"""`hardsigmoid` (docs/language.md, Layers): relu6(x + 3) / 6, element-wise, no parameters
(MobileNetV3's squeeze-and-excitation gate). PyTorch `nn.Hardsigmoid`, Keras
`Activation("hard_sigmoid")`, which is the same function in Keras 3."""

from __future__ import annotations

from ..core.records import KerasSpec
from .activations import Activation

KINDS = (
    Activation(
        "hardsigmoid",
        "nn.Hardsigmoid",
        torch_functions=("hardsigmoid",),
        keras=lambda value: KerasSpec("Activation", {"activation": "hard_sigmoid"}),
    ),
)
