"""`sepattn(patch=p[, bias])` (docs/language.md, Attention; a paramsym extension for MobileViT v2): separable
self-attention ("Separable Self-attention for Mobile Vision Transformers", Mehta and Rastegari 2022) on a map
H x W x C. A 1x1 projection gives each position one score, a key of C and a value of C (1 + 2·C channels); the
positions that share an offset in the map's p x p patches (the (H/p)·(W/p) positions p rows and p columns apart)
form one group: the softmax of the scores over the group weighs its keys into one context vector of C, and each
position's output is relu(value) times its group's context vector, then a 1x1 projection C -> C. With p = 1 the
whole map is one group. Parameters `C·(1 + 2C) + C²` (`+ (1 + 2C) + C` with `bias`); MACs `T·C·(1 + 2C) + T·C²`
(the two projections, T = H·W; the weighting and the products are element-wise, which FlopCounterMode counts as
none). The output is the input's shape. p divides H and W.

This module also reads timm's MobileViT blocks whole (their forward unfolds the map into patches with reshapes):
MobileVitBlock (v1) runs timm's transformer Blocks on the positions of the same patch offset, which is grid
attention (`attn(heads=h, grid=H/p, relpos=none, bias)`: each position attends to the (H/p)² positions p apart);
MobileVitV2Block runs LinearTransformerBlocks (`gn(groups=1)`, sepattn, a 1x1 MLP). PyTorch: paramsym's
`SeparableSelfAttention`; Keras: none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..core.records import KerasSpec, Layer, Options, TorchSpec
from ..errors import ImportRefused, ParamsymShapeError
from .base import (
    Args,
    Call,
    Constraint,
    Counts,
    Expr,
    Flow,
    ImportContext,
    Kind,
    NameMatch,
    Numbers,
    Words,
    check_or_defer,
    known,
    make_layer,
    refuse_keras,
    times,
    whole_input_field,
)


@dataclass(frozen=True)
class SeparableAttentionOptions(Options):
    patch: Expr  # the side of the patches whose offsets make the groups (1: the whole map)


class SeparableAttention(Kind):
    key = "sepattn"
    names = ("sepattn",)
    keywords = frozenset({"patch"})
    flags = frozenset({"bias", "nobias"})
    torch_modules = (
        "SeparableSelfAttention",  # paramsym's own export
        "timm.models.mobilevit.LinearSelfAttention",
        "timm.models.mobilevit.MobileVitBlock",  # read whole: its patches are reshapes
        "timm.models.mobilevit.MobileVitV2Block",
    )

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        shape = flow.shape
        if shape.rank != 2 or shape.channels is None:
            raise ParamsymShapeError(
                f"{call.name} groups the positions of a map by their offset in its patches, but its input is "
                f"{shape.describe()}",
                pos=call.pos,
                notes=((f"it comes from {flow.source[0]}", flow.source[1]),) if flow.source else (),
                hint="sepattn takes a map H x W x C",
            )
        constraints: list[Constraint] = list(args.constraints)
        patch = args.scalar("patch", sympy.Integer(1))
        for n in shape.spatial or ():
            if n is not None:
                constraints += check_or_defer(
                    n / patch,
                    "integer",
                    f"patch={patch} does not divide the map's side {n}",
                    args.keywords["patch"].pos if "patch" in args.keywords else call.pos,
                    shown=n,
                )
        channels = shape.channels
        options = SeparableAttentionOptions(patch)
        return make_layer(
            call, self, flow, shape, channels, channels, bias=args.bias, options=options, constraints=tuple(constraints)
        )

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        c = known(layer.cin)
        params = c * (1 + 2 * c) + c * c + ((1 + 2 * c) + c if layer.bias else 0)
        T = layer.in_shape.positions
        return {
            "params": params,
            "fan_in": c,
            "macs": times(T, c * (1 + 2 * c) + c * c),
            "connections": times(layer.out_shape.elements, c),
        }

    def field(self, layer: Layer, field: Any) -> Any:
        return whole_input_field(layer, field)

    def header(self, layer: Layer, words: Words) -> str:
        return f", groups by offset in {words(SeparableAttentionOptions.of(layer).patch)}-wide patches"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        c, p = known(layer.cin), SeparableAttentionOptions.of(layer).patch
        bias = f" Plus {w(1 + 3 * c)} biases." if layer.bias else " No biases."
        return [
            f"Separable self-attention (MobileViT v2's; a paramsym extension): a 1x1 projection gives each position "
            f"a score, a key and a value (1 + 2·{w(c)} channels: {w(c * (1 + 2 * c))} weights); in each group of "
            f"positions at the same offset of the {w(p)}x{w(p)} patches, the softmax of the scores weighs the keys "
            f"into a context vector, which multiplies relu(value) at each position; a 1x1 projection maps the "
            f"{w(c)} channels back ({w(c * c)} weights).{bias} {w(counts.params)} parameters.",
            "The MACs are the two projections at every position; the softmax, the weighting and the products are "
            "element-wise.",
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = SeparableAttentionOptions.of(layer)
        return TorchSpec(
            "SeparableSelfAttention", (num(known(layer.cin)),), {"patch": num(o.patch), "bias": layer.bias}
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "separable self-attention (sepattn) has no Keras layer")
        return []

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        name = type(module).__name__
        if name == "MobileVitBlock":
            return _mobilevit_block(module, ctx)
        if name == "MobileVitV2Block":
            return _mobilevit_v2_block(module, ctx)
        if name == "LinearSelfAttention":
            raise ImportRefused(
                f"{ctx.node_name} (LinearSelfAttention) outside MobileVitV2Block: its groups of positions are the "
                f"unfolded patches of the block around it, which the import reads with the block"
            )
        qkv, proj = getattr(module, "qkv", None), getattr(module, "proj", None)
        if qkv is None or proj is None or not hasattr(module, "patch") or len(tuple(ctx.in_shape)) != 4:
            raise ImportRefused(f"{ctx.node_name} ({name}) is not paramsym's separable self-attention on a map")
        return _text(module.patch, qkv.bias is not None)


def _text(patch: int, bias: bool) -> str:
    return f"sepattn(patch={patch}{', bias' if bias else ''})"


# ---- timm's MobileViT blocks, read whole --------------------------------------------------------------


def _conv(conv: Any, where: str, cin: int) -> str:
    """An nn.Conv2d with square kernels, zero padding, dilation 1: conv{k}x{k}(->C, stride=, pad=, groups=[, bias])."""
    k, s, p = conv.kernel_size, conv.stride, conv.padding
    if (
        type(conv).__name__ != "Conv2d"
        or conv.in_channels != cin
        or k[0] != k[1]
        or s[0] != s[1]
        or isinstance(p, str)
        or p[0] != p[1]
        or tuple(conv.dilation) != (1, 1)
        or conv.padding_mode != "zeros"
    ):
        raise ImportRefused(f"{where}: a convolution other than a square Conv2d of {cin} channels, zero padded")
    parts = [f"->{conv.out_channels}"] + [f"stride={s[0]}"] * (s[0] != 1) + [f"pad={p[0]}"] * (p[0] != 0)
    parts += [f"groups={conv.groups}"] * (conv.groups != 1) + ["bias"] * (conv.bias is not None)
    return f"conv{k[0]}x{k[0]}({', '.join(parts)})"


def _conv_norm_act(module: Any, where: str, cin: int) -> str:
    """timm's ConvNormAct: a Conv2d, then BatchNormAct2d (a BatchNorm2d with its SiLU, or none)."""
    bn: Any = getattr(module, "bn", None)
    if type(module).__name__ != "ConvNormAct" or type(bn).__name__ != "BatchNormAct2d":
        raise ImportRefused(f"{where}: {type(module).__name__} where MobileViT has ConvNormAct with BatchNormAct2d")
    if not bn.affine or not bn.track_running_stats or type(bn.drop).__name__ != "Identity":
        raise ImportRefused(f"{where}: a BatchNorm without its affine or its running statistics")
    act = "" if type(bn.act).__name__ == "Identity" else f" > {_act(bn.act, where)}"
    return f"{_conv(module.conv, where, cin)} > bn{act}"


def _norm(norm: Any, where: str, width: int, kinds: tuple[str, ...]) -> str:
    name = type(norm).__name__
    if name not in kinds or not getattr(norm, "elementwise_affine", getattr(norm, "affine", False)):
        raise ImportRefused(f"{where}: a {name} where the block has {' or '.join(kinds)} with an affine")
    if name == "LayerNorm":
        if tuple(norm.normalized_shape) != (width,) or norm.bias is None:
            raise ImportRefused(f"{where}: a LayerNorm other than nn.LayerNorm({width}) with a bias")
        return "ln"
    if norm.num_groups != 1 or norm.num_channels != width:
        raise ImportRefused(f"{where}: a GroupNorm other than one group of {width} channels")
    return "gn(groups=1)"


def _drop(module: Any, where: str) -> str:
    """A drop path at the end of a residual branch: nothing, or ` > droppath(p)`."""
    name = type(module).__name__
    if name == "Identity" or (name == "DropPath" and module.drop_prob == 0):
        return ""
    if name == "DropPath":
        return f" > droppath({module.drop_prob})"
    raise ImportRefused(f"{where}: a {name} where the block has a DropPath")


def _act(act: Any, where: str) -> str:
    name = type(act).__name__
    if name in ("SiLU", "ReLU"):
        return name.lower()
    if name == "GELU" and getattr(act, "approximate", "none") == "none":
        return "gelu"
    raise ImportRefused(f"{where}: a {name} (the block is read with SiLU, ReLU or GELU)")


def _sides(sizes: tuple[int, int]) -> str:
    return f"{sizes[0]}x{sizes[1]}"


def _patches(module: Any, where: str, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(H, W, the patch side) of a MobileVitV2Block whose map the patches divide (timm resizes the map to a multiple
    of the patch otherwise, corners aligned, which the language's resize does not say)."""
    if len(shape) != 4:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not a map (N, C, H, W)")
    ph, pw = module.patch_size
    height, width = shape[2:]
    if ph != pw or height % ph or width % pw:
        raise ImportRefused(
            f"{where}: patches of {ph}x{pw} on a {height}x{width} map: timm first resizes the map to a multiple of "
            f"the patch with align_corners=True, and the language's resize aligns the pixels' centres instead"
        )
    return height, width, ph


def _mobilevit_block(block: Any, ctx: ImportContext) -> str:
    """timm's MobileVitBlock on (N, C, H, W): conv_kxk > conv_1x1 (no bias) > the transformer's Blocks on the
    positions of the same patch offset (grid attention over the (H/p)x(W/p) positions p apart) > LayerNorm >
    conv_proj, then conv_fusion of the input and that, concatenated."""
    where = f"{ctx.node_name} (MobileVitBlock)"
    shape = tuple(ctx.in_shape)
    if len(shape) != 4:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not a map (N, C, H, W)")
    cin = shape[1]
    first = _conv_norm_act(block.conv_kxk, where, cin)
    conv = block.conv_kxk.conv
    stride = conv.stride[0]
    height, across = ((n + 2 * conv.padding[0] - conv.kernel_size[0]) // stride + 1 for n in shape[2:])
    patch, other = block.patch_size
    # timm resizes (bilinear, pixel centres aligned) a map that its patches do not divide to the next multiple, and
    # back after the transformer
    sides = (-(-height // patch) * patch, -(-across // other) * other)
    if patch != other or sides[0] != sides[1]:
        raise ImportRefused(
            f"{where}: grid attention over patches of {patch}x{other} on a {sides[0]}x{sides[1]} map (the language's "
            f"grids are square)"
        )
    resized = sides != (height, across)
    inner = block.conv_1x1
    if type(inner).__name__ != "Conv2d" or inner.bias is not None or set(inner.kernel_size) != {1}:
        raise ImportRefused(f"{where}: conv_1x1 other than a 1x1 Conv2d without bias")
    d = inner.out_channels
    parts = [first, _conv(inner, where, cin)] + [f"resize({_sides(sides)}, bilinear)"] * resized
    for i, layer in enumerate(block.transformer):
        at = f"{where} transformer.{i}"
        if type(layer).__name__ != "Block" or type(layer).__module__ != "timm.models.vision_transformer":
            raise ImportRefused(f"{at}: {type(layer).__name__} where MobileViT has timm's transformer Block")
        attn, mlp = layer.attn, layer.mlp
        rest = [n for n in ("q_norm", "k_norm", "norm") if type(getattr(attn, n, None)).__name__ != "Identity"]
        if (
            rest
            or (attn.qkv.in_features, attn.qkv.out_features) != (d, 3 * d)
            or attn.proj.out_features != d
            or (attn.qkv.bias is None) != (attn.proj.bias is None)
            or any(type(getattr(layer, n)).__name__ != "Identity" for n in ("ls1", "ls2"))
            or type(mlp.norm).__name__ != "Identity"
            or mlp.fc1.bias is None
            or mlp.fc2.bias is None
        ):
            raise ImportRefused(
                f"{at}: a transformer Block other than LayerNorm > Attention (qkv and proj, no norms) and "
                f"LayerNorm > Mlp, without layer scales"
            )
        bias = ", bias" if attn.qkv.bias is not None else ""
        parts.append(
            f"res({_norm(layer.norm1, at, d, ('LayerNorm',))} > attn(heads={attn.num_heads}, grid={sides[0] // patch}, "
            f"relpos=none{bias}){_drop(layer.drop_path1, at)})"
        )
        parts.append(
            f"res({_norm(layer.norm2, at, d, ('LayerNorm',))} > dense(->{mlp.fc1.out_features}, bias) > "
            f"{_act(mlp.act, at)} > dense(->{d}, bias){_drop(layer.drop_path2, at)})"
        )
    parts.append(_norm(block.norm, where, d, ("LayerNorm",)))
    parts += [f"resize({_sides((height, across))}, bilinear)"] * resized
    parts.append(_conv_norm_act(block.conv_proj, where, d))
    body = " > ".join(parts)
    if block.conv_fusion is None:
        return body
    out = block.conv_proj.conv.out_channels
    if stride != 1:
        raise ImportRefused(f"{where}: a strided conv_kxk with conv_fusion (its input and its map differ in size)")
    return f"concat(id | {body}) > {_conv_norm_act(block.conv_fusion, where, cin + out)}"


def _mobilevit_v2_block(block: Any, ctx: ImportContext) -> str:
    """timm's MobileVitV2Block on (N, C, H, W): conv_kxk > conv_1x1 (no bias) > LinearTransformerBlocks on the
    unfolded patches (GroupNorm(1) > LinearSelfAttention, GroupNorm(1) > ConvMlp, each a residual) > GroupNorm(1) >
    conv_proj."""
    where = f"{ctx.node_name} (MobileVitV2Block)"
    shape = tuple(ctx.in_shape)
    _, _, patch = _patches(block, where, shape)
    cin = shape[1]
    inner = block.conv_1x1
    if type(inner).__name__ != "Conv2d" or inner.bias is not None or set(inner.kernel_size) != {1}:
        raise ImportRefused(f"{where}: conv_1x1 other than a 1x1 Conv2d without bias")
    d = inner.out_channels
    parts = [_conv_norm_act(block.conv_kxk, where, cin), _conv(inner, where, cin)]
    if block.conv_kxk.conv.stride[0] != 1:
        raise ImportRefused(f"{where}: a strided conv_kxk")
    for i, layer in enumerate(block.transformer):
        at = f"{where} transformer.{i}"
        if type(layer).__name__ != "LinearTransformerBlock":
            raise ImportRefused(f"{at}: {type(layer).__name__} where MobileViT v2 has its LinearTransformerBlock")
        attn, mlp = layer.attn, layer.mlp
        qkv, proj = attn.qkv_proj, attn.out_proj
        if (
            type(attn).__name__ != "LinearSelfAttention"
            or (qkv.in_channels, qkv.out_channels, proj.in_channels, proj.out_channels) != (d, 1 + 2 * d, d, d)
            or set(qkv.kernel_size) != {1}
            or set(proj.kernel_size) != {1}
            or qkv.groups != 1
            or proj.groups != 1
            or (qkv.bias is None) != (proj.bias is None)
            or type(mlp).__name__ != "ConvMlp"
            or type(mlp.norm).__name__ != "Identity"
        ):
            raise ImportRefused(
                f"{at}: a block other than GroupNorm > LinearSelfAttention (1x1 convolutions {d} -> {1 + 2 * d} and "
                f"{d} -> {d}) and GroupNorm > ConvMlp"
            )
        parts.append(
            f"res({_norm(layer.norm1, at, d, ('GroupNorm1', 'GroupNorm'))} > "
            f"{_text(patch, qkv.bias is not None)}{_drop(layer.drop_path1, at)})"
        )
        parts.append(
            f"res({_norm(layer.norm2, at, d, ('GroupNorm1', 'GroupNorm'))} > {_conv(mlp.fc1, at, d)} > "
            f"{_act(mlp.act, at)} > {_conv(mlp.fc2, at, mlp.fc1.out_channels)}{_drop(layer.drop_path2, at)})"
        )
    parts.append(_norm(block.norm, where, d, ("GroupNorm1", "GroupNorm")))
    parts.append(_conv_norm_act(block.conv_proj, where, d))
    return " > ".join(parts)


KINDS = (SeparableAttention(),)
