"""`upsample(S)` and `upsample(S, bilinear)` (docs/language.md, Upsampling): each spatial size times a whole
factor S (or SxT per axis), channels unchanged, no parameters (a U-Net's decoder, an FPN's top-down path).
On a vector it is a map of one position: `gap > upsample(28x28)` spreads the vector over a 28 x 28 map (the
image pooling branch of DeepLabV3's ASPP, PyTorch's interpolate of an (N, C, 1, 1) value).
`nearest` (the default) repeats each value; `bilinear` (maps only) interpolates between the 2 x 2 nearest
input values. PyTorch: `nn.Upsample(scale_factor=S, mode=...)`, imported from it, `nn.UpsamplingNearest2d`,
`nn.UpsamplingBilinear2d` and `F.interpolate(x, scale_factor=S)`; Keras: `UpSampling1D/2D/3D`.

Upsampling is not a weighted sum of learnt values, so it has no MACs: PyTorch's FlopCounterMode counts none
for it either (tests/test_kind_upsample.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sympy

from ..core import saved as saved_tensors
from ..core.records import ONE, KerasSpec, Layer, Options, Shape, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError
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
    make_layer,
    refuse_keras,
    times,
    whole_number,
)

_MODES = {"nearest": 1, "bilinear": 4}  # mode: the input values each output value is computed from
_KERAS = {1: "UpSampling1D", 2: "UpSampling2D", 3: "UpSampling3D"}


def _fraction_hint(name: str, factors: tuple[Any, ...], sizes: tuple[Expr | None, ...] | None) -> str:
    """What to write instead of a factor that is not whole. PyTorch's Upsample takes one (scale_factor=1.5) and
    gives each size floor(n·s), computed in double precision; Keras' UpSampling takes whole factors only. The
    language keeps upsample's factors whole and writes the size PyTorch gives with resize(...)."""
    numbers = [float(f) if isinstance(f, sympy.Expr) and f.is_number else None for f in factors]
    given = [n for n in sizes or () if n is not None and n.is_number]
    scales = [s for s in numbers if s is not None and s > 0]
    if sizes is not None and len(given) == len(sizes) == len(scales):
        out = [math.floor(float(n) * s) for n, s in zip(given, scales)]
        if all(o >= 1 for o in out):
            scale = f"({', '.join(f'{s:g}' for s in scales)})" if len(set(scales)) > 1 else f"{scales[0]:g}"
            return (
                f"PyTorch's Upsample(scale_factor={scale}) gives the sizes {'x'.join(map(str, out))} "
                f"(floor(n·s)): write resize({'x'.join(map(str, out))}); {name} takes whole factors, as Keras' "
                f"UpSampling does"
            )
    return f"{name} takes whole factors, e.g. {name}(2); to another size write resize(HxW)"


@dataclass(frozen=True)
class UpsampleOptions(Options):
    factors: tuple[Expr, ...]  # per spatial axis, first axis first
    mode: str  # "nearest" or "bilinear"


class Upsample(Kind):
    key = "upsample"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Nothing (nearest or bilinear: the gradient depends on the sizes alone)."""
        return saved_tensors.NOTHING

    names = ("upsample",)
    flags = frozenset(_MODES)
    positional = 1
    torch_modules = ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")
    torch_functions = ("interpolate", "upsample")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        arg = args.required("its factor", "2", "S")
        modes = [m for m in _MODES if m in args.flags]
        if len(modes) > 1:
            raise ParamsymArgumentError(f"{call.name} takes one of nearest and bilinear, not both", pos=call.pos)
        mode = modes[0] if modes else "nearest"
        sizes = flow.shape.spatial
        if sizes == ():  # a vector is a map of one position, of as many axes as factors are given
            if len(arg.value) > 3:
                raise ParamsymArgumentError(
                    f"{call.name} gives {len(arg.value)} factors: on a vector it makes a sequence, a map or a "
                    f"volume, with 1 to 3 factors",
                    pos=arg.pos,
                    hint="write one factor per spatial axis, e.g. upsample(28x28)",
                )
            sizes = (ONE,) * len(arg.value)
        if mode == "bilinear" and sizes is not None and len(sizes) != 2:
            raise ParamsymShapeError(
                f"{call.name}(..., bilinear) interpolates on H x W x C maps, but its input is {flow.shape.describe()}",
                pos=call.pos,
                hint="use nearest (the default) on sequences and volumes",
            )
        rank = len(sizes) if sizes is not None else len(arg.value)
        factors = tuple(arg.value) * rank if len(arg.value) == 1 else tuple(arg.value)
        if len(factors) != rank:
            raise ParamsymArgumentError(
                f"{call.name} gives {len(arg.value)} factors but its input has {rank} spatial axes", pos=arg.pos
            )
        for factor in factors:
            if not isinstance(factor, sympy.Expr) or (factor.is_number and not factor.is_integer):
                raise ParamsymArgumentError(
                    f"{call.name}: the factor {float(factor):g} is not a whole number",
                    pos=arg.pos,
                    hint=_fraction_hint(call.name, factors, sizes),
                )
            args.constraints += whole_number(factor, "the upsampling factor", arg.pos)
        spatial = None if sizes is None else tuple(None if n is None else n * f for n, f in zip(sizes, factors))
        out = Shape(spatial, flow.shape.channels)
        channels = flow.shape.channels
        return make_layer(call, self, flow, out, channels, channels, options=UpsampleOptions(factors, mode))

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        reads = sympy.Integer(_MODES[UpsampleOptions.of(layer).mode])
        return {"fan_in": reads, "connections": times(reads, layer.out_shape.elements)}

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return None  # an output position reads input positions at an uneven step: no single jump describes it

    def header(self, layer: Layer, w: Words) -> str:
        options = UpsampleOptions.of(layer)
        return f", x{'x'.join(w(f) for f in options.factors)} {options.mode}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        options = UpsampleOptions.of(layer)
        factors = " x ".join(w(f) for f in options.factors)
        if options.mode == "nearest":
            how = "repeats each input value"
        else:
            how = "interpolates each output value from the 2 x 2 nearest input values"
        return [f"No parameters and no MACs: it scales the spatial sizes by {factors} and {how}."]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        options = UpsampleOptions.of(layer)
        factors = tuple(float(num(f)) for f in options.factors)
        scale = factors[0] if len(set(factors)) == 1 else factors
        upsample = TorchSpec("nn.Upsample", (), {"scale_factor": scale, "mode": options.mode})
        if layer.in_shape.spatial:
            return upsample
        # a vector (N, C) becomes a map of one position first
        channels = (num(layer.cin), *(1,) * len(factors))
        return TorchSpec("nn.Sequential", (TorchSpec("nn.Unflatten", (1, channels)), upsample))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        options = UpsampleOptions.of(layer)
        factors = tuple(num(f) for f in options.factors)
        rank = len(factors)
        size = factors[0] if rank == 1 else factors
        extra = {"interpolation": options.mode} if rank == 2 else {}
        upsample = KerasSpec(_KERAS[rank], {"size": size, **extra})
        if layer.in_shape.spatial:
            return [upsample]
        return [KerasSpec("Reshape", {"target_shape": (*(1,) * rank, num(layer.cin))}), upsample]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        mode = getattr(module, "mode", "nearest")
        return self._text(ctx, mode, getattr(module, "scale_factor", None))

    def from_torch_function(self, name: str, node: Any, ctx: ImportContext) -> str:
        mode = node.kwargs.get("mode", node.args[3] if len(node.args) > 3 else "nearest")
        scale = node.kwargs.get("scale_factor", node.args[2] if len(node.args) > 2 else None)
        corners = node.kwargs.get("align_corners", node.args[4] if len(node.args) > 4 else None)
        if corners and _RESIZE_MODES.get(mode, 1) > 1:
            raise ImportRefused(
                f"{ctx.node_name} interpolates with align_corners=True; the language aligns the pixels' centres"
            )
        if node.kwargs.get("antialias", node.args[6] if len(node.args) > 6 else False):
            raise ImportRefused(
                f"{ctx.node_name} interpolates with antialias=True (each value from a wider window when it shrinks); "
                f"the language's resize reads the 2 x 2 or 4 x 4 nearest values"
            )
        return self._text(ctx, mode, scale)

    def _text(self, ctx: ImportContext, mode: str, scale: Any) -> str:
        if mode not in _RESIZE_MODES:
            raise ImportRefused(
                f"{ctx.node_name} resizes with mode '{mode}'; the language has nearest, bilinear and bicubic"
            )
        # the factors from the shapes (which also covers size=...): whole factors only
        ins, outs = ctx.in_shape[2:], ctx.out_shape[2:]
        spread = not ins and bool(outs)
        if spread:  # a vector (a pooled value, (N, C, 1, 1) in PyTorch) spread over a map: every axis written
            ins = (1,) * len(outs)
        if (
            ins
            and len(ins) == len(outs)
            and not spread
            and (mode not in _MODES or any(o % i for i, o in zip(ins, outs)))
        ):
            # to a size that is not a whole multiple of the input's, or bicubic: resize to the size
            sizes = "x".join(str(o) for o in outs)
            return f"resize({sizes})" if mode == "nearest" else f"resize({sizes}, {mode})"
        if not ins or len(ins) != len(outs) or any(o % i for i, o in zip(ins, outs)):
            raise ImportRefused(f"{ctx.node_name} resizes {tuple(ins)} to {tuple(outs)}, not by whole factors")
        factors = [o // i for i, o in zip(ins, outs)]
        if scale is not None:
            given = scale if isinstance(scale, (tuple, list)) else [scale] * len(factors)
            if [float(s) for s in given] != [float(f) for f in factors]:
                raise ImportRefused(f"{ctx.node_name} scales by {scale}, which is not a whole factor of every axis")
        written = str(factors[0]) if len(set(factors)) == 1 and not spread else "x".join(map(str, factors))
        return f"upsample({written})" if mode == "nearest" else f"upsample({written}, bilinear)"


# resize's modes: the input values each output value is computed from
_RESIZE_MODES = {**_MODES, "bicubic": 16}


@dataclass(frozen=True)
class ResizeOptions(Options):
    mode: str  # "nearest", "bilinear" or "bicubic"


class Resize(Kind):
    """`resize(HxW)`: to sizes given, not by whole factors (GhostNetV2's gate from a pooled map back to the map's
    size, CrossViT's second branch's input 240 -> 224): PyTorch's `F.interpolate(x, size=...)`."""

    key = "resize"
    names = ("resize",)
    flags = frozenset(_RESIZE_MODES)
    positional = 1
    torch_modules = ("Resize",)  # paramsym's own; nn.Upsample and F.interpolate come through upsample's import

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        arg = args.required("its output size", "7x7", "HxW")
        modes = [m for m in _RESIZE_MODES if m in args.flags]
        if len(modes) > 1:
            raise ParamsymArgumentError(f"{call.name} takes one of nearest, bilinear and bicubic", pos=call.pos)
        mode = modes[0] if modes else "nearest"
        sizes = flow.shape.spatial
        if sizes == ():
            raise ParamsymShapeError(
                f"{call.name} resizes the spatial axes, but its input is {flow.shape.describe()}",
                pos=call.pos,
                hint="spread a vector over a map with upsample: gap > upsample(7x7)",
            )
        if mode != "nearest" and sizes is not None and len(sizes) != 2:
            raise ParamsymShapeError(
                f"{call.name}(..., {mode}) interpolates on H x W x C maps, but its input is {flow.shape.describe()}",
                pos=call.pos,
                hint="use nearest (the default) on sequences and volumes",
            )
        targets = tuple(arg.value)
        if sizes is not None and len(targets) != len(sizes):
            raise ParamsymArgumentError(
                f"{call.name} gives {len(targets)} sizes but its input has {len(sizes)} spatial axes", pos=arg.pos
            )
        for size in targets:
            if not isinstance(size, sympy.Expr) or (size.is_number and not size.is_integer):
                raise ParamsymArgumentError(f"{call.name}: the size {size} is not a whole number", pos=arg.pos)
            args.constraints += whole_number(size, "the output size", arg.pos)
        channels = flow.shape.channels
        out = Shape(targets, channels)
        return make_layer(call, self, flow, out, channels, channels, options=ResizeOptions(mode))

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        reads = sympy.Integer(_RESIZE_MODES[ResizeOptions.of(layer).mode])
        return {"fan_in": reads, "connections": times(reads, layer.out_shape.elements)}

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        return None  # an output position reads input positions at an uneven step

    def header(self, layer: Layer, w: Words) -> str:
        return f", to {'x'.join(w(n) for n in layer.out_shape.spatial or ())} {ResizeOptions.of(layer).mode}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        mode = ResizeOptions.of(layer).mode
        how = {
            "nearest": "copies the nearest input value",
            "bilinear": "interpolates each output value from the 2 x 2 nearest input values",
            "bicubic": "interpolates each output value from the 4 x 4 nearest input values",
        }[mode]
        sizes = " x ".join(w(n) for n in layer.out_shape.spatial or ())
        return [f"No parameters and no MACs: it resizes the spatial axes to {sizes} and {how}."]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        sizes = num.each(layer.out_shape.spatial or ())
        mode = ResizeOptions.of(layer).mode
        return TorchSpec("Resize", (sizes,), {} if mode == "nearest" else {"mode": mode})

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        sizes = "x".join(str(n) for n in module.size)
        if tuple(ctx.out_shape[2:]) != tuple(module.size):
            raise ImportRefused(f"{ctx.node_name} (Resize) does not resize its input to {sizes}")
        return f"resize({sizes})" if module.mode == "nearest" else f"resize({sizes}, {module.mode})"

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        if layer.in_shape.rank != 2:
            refuse_keras(layer, "Keras resizes maps only")
        height, width = num.each(layer.out_shape.spatial or ())
        return [
            KerasSpec("Resizing", {"height": height, "width": width, "interpolation": ResizeOptions.of(layer).mode})
        ]


KINDS = (Upsample(), Resize())
