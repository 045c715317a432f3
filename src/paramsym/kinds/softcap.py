"""`softcap(C)` (docs/language.md, Soft-capping): each value x becomes C·tanh(x/C), squashed into (−C, C): Gemma-2's
final_logit_softcapping on its output logits (`dense(->V, tie=wte) > softcap(30)`). No parameters, and no MACs
(element-wise: PyTorch's FlopCounterMode counts none for the division, the tanh and the product); each output value
is one input value (fan-in 1). PyTorch: paramsym's `SoftCap`; Keras: refused (no such layer). The cap of the
attention scores is an option of attention, `attn(..., softcap=50)`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import saved as saved_tensors
from ..core.records import KerasSpec, Layer, Options, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused, ParamsymArgumentError
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
    refuse_keras,
    same_layer,
)


@dataclass(frozen=True)
class SoftCapOptions(Options):
    cap: Expr  # C: x becomes C·tanh(x/C)


class SoftCap(Kind):
    key = "softcap"
    per_position = True

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """tanh(x / C), which tanh keeps (its output): a tensor of the input's size."""
        elements = layer.in_shape.elements
        return None if elements is None else saved_tensors.Saved(extras=(saved_tensors.Extra(elements),))

    names = ("softcap",)
    positional = 1
    torch_modules = ("SoftCap",)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        if not args.positional:
            raise ParamsymArgumentError(
                f"{call.name} needs its cap C (x becomes C·tanh(x/C))",
                pos=call.pos,
                hint="write softcap(30) (Gemma-2's final_logit_softcapping)",
            )
        arg = args.positional[0]
        cap = args.one_value(arg, "cap")
        if cap.is_number and not (cap.is_real and cap > 0):
            raise ParamsymArgumentError(
                f"{call.name}({cap}): the cap C (x becomes C·tanh(x/C)) must be a positive number",
                pos=arg.pos,
                hint="write softcap(30) (Gemma-2's final_logit_softcapping)",
            )
        return same_layer(call, self, flow, options=SoftCapOptions(cap))

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return field  # element-wise

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        cap = w(SoftCapOptions.of(layer).cap)
        return [
            f"No parameters: each value x becomes {cap}·tanh(x/{cap}), between −{cap} and {cap} (soft-capping, "
            f"Gemma-2's logits); no MACs (element-wise, as FlopCounterMode counts it)."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        cap = SoftCapOptions.of(layer).cap
        return TorchSpec("SoftCap", (float(cap) if cap.is_number else num(cap),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "Keras has no soft-capping layer (C·tanh(x/C))")

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        cap = getattr(module, "cap", None)
        if not isinstance(cap, (int, float)) or not cap > 0:
            raise ImportRefused(f"{ctx.node_name} ({type(module).__name__}) has no positive cap")
        return f"{self.key}({int(cap) if float(cap).is_integer() else cap})"


KINDS = (SoftCap(),)
