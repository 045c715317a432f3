"""`transpose` (docs/language.md, Token mixing): the positions and channels of a sequence swap, T x d -> d x T,
so that the layers after it, which act on the channels of each position (`dense`, `ln`, `scale`, a gate's `slice`),
act along the positions: MLP-Mixer's, ResMLP's and gMLP's token mixing (PyTorch's x.transpose(1, 2) before an
nn.Linear(T, T')). No parameters, no MACs; each output value is one input value (fan-in 1). PyTorch: paramsym's
`Transpose` (x.transpose(1, 2) of the export's (N, d, T)); Keras: `Permute((2, 1))`."""

from __future__ import annotations

from typing import Any

from ..core import saved as saved_tensors
from ..core.records import KerasSpec, Layer, Shape, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused, ParamsymShapeError
from .base import Args, Call, Counts, Field, Flow, ImportContext, Kind, NameMatch, Numbers, Words, make_layer

_HINT = "e.g. input(196x512) > transpose > dense(->256) > gelu > dense(->196) > transpose (MLP-Mixer's token mixing)"


class Transpose(Kind):
    key = "transpose"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Nothing: a view of its input."""
        return saved_tensors.VIEW

    names = ("transpose",)
    torch_modules = ("Transpose",)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        shape = flow.shape
        if shape.spatial is None or shape.channels is None:
            raise ParamsymShapeError(
                f"{call.name} swaps the positions and channels of a sequence (T x d), but nothing before it says "
                f"its shape",
                pos=call.pos,
                hint=_HINT,
            )
        if len(shape.spatial) != 1:
            what = f"the vector {shape.describe()}" if shape.spatial == () else f"the map {shape.describe()}"
            raise ParamsymShapeError(
                f"{call.name} swaps the positions and channels of a sequence (T x d), but its input is {what}",
                pos=call.pos,
                hint="make the positions of a map a sequence first with tokens; " + _HINT,
            )
        positions = shape.spatial[0]
        if positions is None:
            raise ParamsymShapeError(
                f"{call.name} needs the length of the sequence before it: it becomes the channels",
                pos=call.pos,
                hint=_HINT,
            )
        out = Shape((shape.channels,), positions)
        return make_layer(call, self, flow, out, shape.channels, positions)

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return None  # an output position is one channel at every input position: no window

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            f"No parameters: the positions and channels of the {layer.in_shape.describe()} sequence swap "
            f"({layer.out_shape.describe()}), so that the layers after it act along the positions."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("Transpose")

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        return [KerasSpec("Permute", {"dims": (2, 1)})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        if len(ctx.in_shape) != 3:
            raise ImportRefused(f"{ctx.node_name} ({type(module).__name__}) does not transpose a sequence")
        return self.key


KINDS = (Transpose(),)
