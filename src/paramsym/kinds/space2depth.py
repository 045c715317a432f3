"""`space2depth(B)` (docs/language.md, Modern convolutional networks): each B x B patch of an H x W x C map becomes one
position of B²·C channels: H/B x W/B x B²·C, no parameters (Swin's patch merging, PixelUnshuffle). On a volume
T x H x W x C the patches are those of each frame (H and W), and T is kept: T x H/B x W/B x B²·C (Video Swin's
patch merging, torchvision's PatchMerging on [..., H, W, C]).

The channel order is Swin's PatchMerging's (torchvision.models.swin_transformer): for B = 2 the
four patch values x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2] one after the other,
each with its C channels; in general channel (j·B + i)·C + c holds channel c of row offset i and
column offset j. PyTorch's nn.PixelUnshuffle gives the same values in another order (c·B² + i·B + j),
which counts the same: it imports as space2depth. PyTorch: our `SpaceToDepth(B)`; Keras: Reshape >
Permute > Reshape, the same order."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..core import saved as saved_tensors
from ..core.records import ONE, ZERO, KerasSpec, Layer, Options, Shape, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused, ParamsymShapeError
from . import windows
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
    axes,
    check_or_defer,
    make_layer,
    whole_number,
)


@dataclass(frozen=True)
class SpaceToDepthOptions(Options):
    block: Expr  # the patch size B (B x B patches)


class SpaceToDepth(Kind):
    key = "space2depth"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Nothing: the values moved."""
        return saved_tensors.NOTHING

    names = ("space2depth",)
    positional = 1
    torch_modules = (
        "SpaceToDepth",
        "PixelUnshuffle",
        "timm.models.swin_transformer.PatchMerging",
        "torchvision.models.swin_transformer.PatchMerging",  # Swin's, on [..., H, W, C]: Video Swin's volumes
        "timm.models.swin_transformer_v2.PatchMerging",  # Swin V2's: the LayerNorm after the Linear
        "timm.models.swin_transformer_v2_cr.PatchMerging",  # swinv2_cr's: the LayerNorm before, as V1's
    )

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        arg = args.required("its patch size", "2", "B")
        block = args.one_value(arg, "patch size B (B x B patches)")
        args.constraints += whole_number(block, "the patch size", arg.pos)
        sizes = flow.shape.spatial
        if sizes is not None and len(sizes) not in (2, 3):
            have = "a vector" if not sizes else f"{len(sizes)}-D"
            raise ParamsymShapeError(
                f"{call.name} works on H x W x C maps (or the frames of T x H x W x C volumes), but its input is "
                f"{have} ({flow.shape.describe()})",
                pos=call.pos,
            )
        sizes = sizes or (None, None)
        kept, sizes = tuple(sizes[:-2]), tuple(sizes[-2:])  # a volume's T is kept
        constraints = []
        for axis, n in zip(("height", "width"), sizes):
            if n is None:
                continue
            ratio = n / block
            if ratio.is_number and not ratio.is_integer:
                raise ParamsymShapeError(
                    f"{call.name}({block}): the patch size {block} does not divide the {axis} "
                    f"{n} of its input ({flow.shape.describe()})",
                    pos=arg.pos,
                    notes=((f"the input comes from {flow.source[0]}", flow.source[1]),) if flow.source else (),
                    hint="PyTorch's PixelUnshuffle and Swin's patch merging need whole patches",
                )
            constraints += check_or_defer(
                ratio, "integer", f"{call.name}({block}): the patch size must divide the {axis} {n}", arg.pos, shown=n
            )
        channels = flow.shape.channels
        cout = None if channels is None else block**2 * channels
        out = Shape(kept + tuple(None if n is None else n / block for n in sizes), cout)
        return make_layer(
            call, self, flow, out, channels, cout, options=SpaceToDepthOptions(block), constraints=tuple(constraints)
        )

    def header(self, layer: Layer, w: Words) -> str:
        b = w(SpaceToDepthOptions.of(layer).block)
        return f", {b} x {b} patches"

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        block = SpaceToDepthOptions.of(layer).block
        kept = (ONE,) * (len(layer.in_shape.spatial or ()) - 2)  # a volume's T
        window = dataclasses.replace(
            layer,
            kernel=(*kept, block, block),
            stride=(*kept, block, block),
            pad=(ZERO,) * (len(kept) + 2),
            dilation=(ONE,) * (len(kept) + 2),
        )
        return windows.window_field(window, field)

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        b = w(SpaceToDepthOptions.of(layer).block)
        frames = " of each frame" if len(layer.in_shape.spatial or ()) == 3 else ""
        return [
            f"No parameters: each {b} x {b} patch{frames} of the input becomes one position of {b}·{b}·"
            f"{w(layer.cin)} = {w(layer.cout)} channels (Swin's patch order: rows inside columns, channels "
            f"innermost)."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("SpaceToDepth", (num(SpaceToDepthOptions.of(layer).block),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        b = num(SpaceToDepthOptions.of(layer).block)
        *kept, h, w = num.each(axes(layer.in_shape))
        c, k = num(layer.cin), len(kept)
        return [
            KerasSpec("Reshape", {"target_shape": (*kept, h // b, b, w // b, b, c)}),
            KerasSpec("Permute", {"dims": (*range(1, k + 1), k + 1, k + 3, k + 4, k + 2, k + 5)}),
            KerasSpec("Reshape", {"target_shape": (*kept, h // b, w // b, b * b * c)}),
        ]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        if (
            type(module).__name__ == "PatchMerging"
        ):  # timm's or torchvision's Swin: 2 x 2 patches, a LayerNorm, a Linear
            return _timm_patch_merging(module, ctx)
        # ours: block; torch's PixelUnshuffle: downscale_factor; timm's SpaceToDepth (TResNet): bs, the same order
        block = next((getattr(module, a) for a in ("block", "downscale_factor", "bs") if hasattr(module, a)), None)
        if not isinstance(block, int):
            raise ImportRefused(f"{ctx.node_name} ({type(module).__name__}) has no block size that paramsym can read")
        return f"space2depth({block})"


def _timm_patch_merging(module: Any, ctx: ImportContext) -> str:
    """timm's PatchMerging on an (N, H, W, C) map (H and W even), or torchvision's on an (N, H, W, C) map or an
    (N, T, H, W, C) volume (Video Swin's): each 2 x 2 patch (of each frame) becomes one position of 4C channels
    (in timm's another order than space2depth's, which counts the same), then a LayerNorm and a Linear (Swin V2's,
    timm.models.swin_transformer_v2: the Linear, then a LayerNorm of its output). torchvision pads an odd H or W
    by one: that is refused."""
    (shape,) = ctx.arg_shapes[:1] or ((),)
    norm, reduction = module.norm, module.reduction
    torchvision = type(module).__module__.startswith("torchvision.")
    if (
        len(shape) not in ((4, 5) if torchvision else (4,))
        or shape[-3] % 2
        or shape[-2] % 2
        or type(norm).__name__ != "LayerNorm"
        or reduction.in_features != 4 * shape[-1]
        # V2 normalises the reduced channels, the others the merged ones
        or getattr(norm, "normalized_shape", None)
        != (
            (reduction.out_features,)
            if type(module).__module__ == "timm.models.swin_transformer_v2"
            else (4 * shape[-1],)
        )
    ):
        raise ImportRefused(
            f"{ctx.node_name} (PatchMerging) merges a map of odd size or with a norm the language lacks"
        )
    ln = "ln" if norm.bias is not None else "ln(nobias)"
    dense = f"dense(->{reduction.out_features}{', bias' if reduction.bias is not None else ''})"
    if type(module).__module__ == "timm.models.swin_transformer_v2":  # V2 normalises the reduced channels
        return f"space2depth(2) > {dense} > {ln}"
    return f"space2depth(2) > {ln} > {dense}"


KINDS = (SpaceToDepth(),)
