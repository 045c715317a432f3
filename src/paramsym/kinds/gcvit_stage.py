"""`gcstage(depth=n, heads=h, window=w[, mlp=r][, ls])` (docs/language.md, "Global context stage"; a paramsym
extension): the body of a stage of GCViT (timm's GlobalContextVitStage after its downsample), read whole, on an
H x W map of d channels.

The global query generator: L = ⌊log2(min(H, W)/w)⌋ MbConv blocks (at least one), each followed by a 3x3 max
pooling of stride 2 (pad 1) while L > 0, taking the map down to w x w; an MbConv block is a residual depthwise 3x3
convolution, GELU, a squeeze-excitation (d -> s -> d, s = max(8, ⌊(d/4 + 4)/8⌋·8), GELU, sigmoid) and a 1x1
convolution, none with a bias. Then n transformer blocks on the map cut into w x w windows: LayerNorm > window
attention with a relative-position bias table of (2w-1)² entries per head > projection, residual; LayerNorm > MLP
(d -> r·d -> d, GELU), residual; with `ls` each residual branch ends in a layer scale (d learned factors). The
even blocks (0, 2, ...) project queries, keys and values from each window (3d); the odd ones only keys and values
(2d) and take their queries from the generator's w x w map, the same for every window.

    params = G·(9d + 2ds + d²) + n·(6d + 2·r·d² + r·d + d² + h·(2w-1)²) + ⌈n/2⌉·(3d² + 3d) + ⌊n/2⌋·(2d² + 2d)
             [+ n·2d with ls]
    MACs   = Σ over the generator's blocks (H_i·W_i·(9d + d²) + 2ds) + n·T·(2·w²·d + d² + 2·r·d²)
             + ⌈n/2⌉·3·T·d² + ⌊n/2⌋·2·T·d²            (T = H·W, G = max(1, L), H_i the map of the i-th block)

PyTorch: paramsym's `GlobalContextStage` (torch_modules); timm's gcvit.GlobalContextVitStage is read whole (its
downsample written before it with existing layers). FlopCounterMode counts these MACs on them
(tests/test_kind_gcstage.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sympy

from ..core.quantities import Template
from ..core.records import KerasSpec, Layer, Options, Shape, TorchSpec
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError
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
    Words,
    check_or_defer,
    input_channels,
    known,
    make_layer,
    refuse_keras,
    times,
)


@dataclass(frozen=True)
class GlobalContextStageOptions(Options):
    depth: int
    heads: Expr
    window: int
    mlp: Expr
    height: int
    width: int
    scale: bool = False  # `ls`: a layer scale after the attention and after the MLP of every block


def squeeze(d: Expr) -> Expr:
    """timm's SEModule's reduced channels for rd_ratio 0.25 (make_divisible(d/4, 8, round_limit=0))."""
    return sympy.Max(8, sympy.floor((d / 4 + 4) / 8) * 8)


def generator_sides(height: int, width: int, window: int) -> list[tuple[int, int]]:
    """The map each MbConv block of the global query generator runs on (timm's FeatureBlock)."""
    levels = int(math.log2(min(height, width) / window))
    sides = [(height, width)]
    for _ in range(max(levels, 1) - 1):
        sides.append(((sides[-1][0] + 1) // 2, (sides[-1][1] + 1) // 2))
    return sides


def query_sides(height: int, width: int, window: int) -> tuple[int, int]:
    """The generator's output map: after max(levels, 0) poolings of stride 2."""
    levels = int(math.log2(min(height, width) / window))
    for _ in range(max(levels, 0)):
        height, width = (height + 1) // 2, (width + 1) // 2
    return height, width


class GlobalContextStage(Kind):
    key = "gcstage"
    names = ("gcstage",)
    keywords = frozenset({"depth", "heads", "window", "mlp"})
    flags = frozenset({"ls"})
    takes_channels = True
    torch_modules = (
        "paramsym.frameworks.torch_modules.GlobalContextStage",
        "timm.models.gcvit.GlobalContextVitStage",
    )

    # ---- language
    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        for key, example in (("depth", "2"), ("heads", "4"), ("window", "7")):
            if key not in args.keywords:
                raise ParamsymArgumentError(
                    f"{call.name} needs {key}=: write {call.name}(depth=2, heads=4, window=7, mlp=3)",
                    pos=call.pos,
                    hint=f"e.g. {key}={example}",
                )
        d = input_channels(call, flow, args)
        if args.channels is not None and args.channels.cout is not None and args.channels.cout != d:
            raise ParamsymArgumentError(
                f"{call.name} keeps its {d} channels", pos=args.channels.pos, hint=f"write {call.name}(...) alone"
            )
        shape = flow.shape
        if shape.rank != 2 or any(side is None or not side.is_Integer for side in shape.spatial or ()):
            raise ParamsymShapeError(
                f"{call.name} works on a map of known sides (H x W x d), but its input is {shape.describe()}",
                pos=call.pos,
            )
        height, width = (int(side) for side in shape.spatial)  # type: ignore[union-attr,arg-type]
        numbers = {}
        for key in ("depth", "window"):
            value = args.scalar(key)
            if value is None or not value.is_Integer:
                raise ParamsymArgumentError(f"{key}= takes a number here", pos=args.keywords[key].pos)
            numbers[key] = int(value)
        window = numbers["window"]
        heads = known(args.scalar("heads"))
        mlp = args.scalar("mlp", sympy.Integer(4))
        args.constraints += check_or_defer(
            d / heads,
            "integer",
            f"heads={heads} do not divide the {d} channels",
            args.keywords["heads"].pos,
            shown=d,
        )
        if height % window or width % window:
            raise ParamsymShapeError(
                f"{call.name}: windows of {window}x{window} do not tile the {height}x{width} map",
                pos=args.keywords["window"].pos,
            )
        if query_sides(height, width, window) != (window, window):
            q = query_sides(height, width, window)
            raise ParamsymShapeError(
                f"{call.name}: the global query generator takes the {height}x{width} map to {q[0]}x{q[1]}, not to "
                f"the window's {window}x{window}",
                pos=args.keywords["window"].pos,
            )
        options = GlobalContextStageOptions(numbers["depth"], heads, window, mlp, height, width, "ls" in args.flags)
        return make_layer(
            call,
            self,
            flow,
            Shape((sympy.Integer(height), sympy.Integer(width)), d),
            d,
            d,
            options=options,
            constraints=tuple(args.constraints),
        )

    # ---- quantities
    @staticmethod
    def _params(d: Expr, o: GlobalContextStageOptions) -> Expr:
        s, n, r, w = squeeze(d), o.depth, o.mlp, o.window
        levels = len(generator_sides(o.height, o.width, w))
        local, glob = (n + 1) // 2, n // 2
        return (
            levels * (9 * d + 2 * d * s + d * d)
            + n * (2 * d if o.scale else 0)
            + n * (6 * d + 2 * r * d * d + r * d + d * d + o.heads * (2 * w - 1) ** 2)
            + local * (3 * d * d + 3 * d)
            + glob * (2 * d * d + 2 * d)
        )

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        o = GlobalContextStageOptions.of(layer)
        d = known(layer.cin)
        s, n, r, w = squeeze(d), o.depth, o.mlp, o.window
        T = o.height * o.width
        local, glob = (n + 1) // 2, n // 2
        macs = sum((hh * ww * (9 * d + d * d) + 2 * d * s for hh, ww in generator_sides(o.height, o.width, w)), 0)
        macs += n * T * (2 * w * w * d + d * d + 2 * r * d * d) + local * 3 * T * d * d + glob * 2 * T * d * d
        return {
            "params": sympy.expand(self._params(d, o)),
            "state": sympy.Integer(0),
            "macs": sympy.expand(macs),
            # its backward differs from 2 x MACs in a way not worked out (FlopCounterMode, tests/test_flops.py)
            "backward_macs": None,
            "backward_first": None,
            "fan_in": d,
            "connections": times(layer.out_shape.elements, d),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return self._params(t.c_in, GlobalContextStageOptions.of(layer))

    def field(self, layer: Layer, field: Any) -> Any:
        """Not told: the window attention reaches the window, the global query a region its poolings make
        wide but not the whole map in general."""
        return None

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        o = GlobalContextStageOptions.of(layer)
        return f", {o.depth} blocks, {words(o.heads)} heads, windows of {o.window}x{o.window}" + (
            ", layer scales" if o.scale else ""
        )

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = GlobalContextStageOptions.of(layer)
        d = known(layer.cin)
        sides = generator_sides(o.height, o.width, o.window)
        local, glob = (o.depth + 1) // 2, o.depth // 2
        return [
            f"A stage of GCViT (a paramsym extension): a global query generator of {len(sides)} MbConv blocks "
            f"(depthwise 3x3, GELU, squeeze-excitation to {w(squeeze(d))} channels, 1x1) with max poolings, taking "
            f"the {o.height}x{o.width} map to the {o.window}x{o.window} window.",
            f"Then {o.depth} blocks of window attention ({w(o.heads)} heads, a table of {(2 * o.window - 1) ** 2} "
            f"relative-position biases per head) and an MLP of {w(o.mlp * d)} hidden channels: {local} project "
            f"queries, keys and values, {glob} take the generator's map as their queries.",
            f"{w(counts.params)} parameters.",
        ]

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = GlobalContextStageOptions.of(layer)
        return TorchSpec(
            "GlobalContextStage",
            (num(known(layer.cin)), o.depth, num(o.heads), o.window, (o.height, o.width)),
            {"mlp": num(o.mlp), "scale": o.scale},
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "GCViT's stage (gcstage) has no Keras layer")

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        return read(module, ctx)


# ---- reading timm's modules ----------------------------------------------------------------------------------


def _is(module: Any, *names: str) -> bool:
    return type(module).__name__ in names


def _conv(conv: Any, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> bool:
    return (
        _is(conv, "Conv2d")
        and (conv.in_channels, conv.out_channels, conv.groups) == (cin, cout, groups)
        and tuple(conv.kernel_size) == (k, k)
        and tuple(conv.stride) == (stride, stride)
        and tuple(conv.padding) == (k // 2, k // 2)
        and tuple(conv.dilation) == (1, 1)
        and conv.bias is None
        and conv.padding_mode == "zeros"
    )


def _gelu(module: Any) -> bool:
    return _is(module, "GELU") and getattr(module, "approximate", "none") == "none"


def _mbconv(block: Any, d: int) -> bool:
    """timm's gcvit.MbConvBlock (expand 1, SE with GELU and no bias) or paramsym's export of it."""
    se: Any = getattr(block, "se", None)
    s = int(squeeze(sympy.Integer(d)))
    return (
        _is(block, "MbConvBlock", "_GcMbConv")
        and _conv(block.conv_dw, d, d, 3, groups=d)
        and _gelu(block.act)
        and _is(se, "SEModule", "_GcSqueeze")
        and _conv(se.fc1, d, s, 1)
        and _is(getattr(se, "bn", None), "Identity")
        and _gelu(se.act)
        and _conv(se.fc2, s, d, 1)
        and _is(se.gate, "Sigmoid")
        and _conv(block.conv_pw, d, d, 1)
    )


def _layer_norm(norm: Any, d: int, *names: str) -> bool:
    return (
        _is(norm, *names)
        and tuple(norm.normalized_shape) == (d,)
        and norm.elementwise_affine
        and getattr(norm, "bias", None) is not None
    )


def _scale(module: Any, d: int, scale: bool) -> bool:
    """No layer scale (Identity), or timm's LayerScale (x · gamma, d values) when the stage has them."""
    if not scale:
        return _is(module, "Identity")
    gamma = getattr(module, "gamma", None)
    return _is(module, "LayerScale", "_GcLayerScale") and gamma is not None and tuple(gamma.shape) == (d,)


def _downsample(down: Any, d: int, where: str) -> tuple[str, int]:
    """timm's gcvit.Downsample2d: LayerNorm2d > MbConv > 3x3 convolution of stride 2 > LayerNorm2d, as existing
    layers; the channels after it."""
    red = getattr(down, "reduction", None)
    out = getattr(red, "out_channels", -1)
    if not (
        _is(down, "Downsample2d")
        and _layer_norm(down.norm1, d, "LayerNorm2d")
        and _mbconv(down.conv_block, d)
        and _conv(red, d, out, 3, stride=2)
        and _layer_norm(down.norm2, out, "LayerNorm2d")
    ):
        raise ImportRefused(
            f"{where}: its downsample is not GCViT's LayerNorm2d > MbConv > 3x3 convolution of stride 2 > LayerNorm2d"
        )
    s = int(squeeze(sympy.Integer(d)))
    mbconv = (
        f"res(conv3x3(->{d}, pad=1, groups={d}) > gelu > mul(id | gap > dense(->{s}) > gelu > dense(->{d}) > sigmoid)"
        f" > conv1x1(->{d}))"
    )
    return f"ln > {mbconv} > conv3x3(->{out}, stride=2, pad=1) > ln", out


def read(module: Any, ctx: ImportContext) -> str:
    where = f"{ctx.node_name} ({type(module).__name__})"
    shape = tuple(ctx.arg_shapes[0]) if ctx.arg_shapes else tuple(ctx.in_shape)
    if len(shape) != 4:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not a map (N, C, H, W)")
    d, height, width = shape[1], shape[2], shape[3]
    parts = []
    down = getattr(module, "downsample", None)
    if down is not None and not _is(down, "Identity"):
        text, d = _downsample(down, d, where)
        parts.append(text)
        height, width = (height + 1) // 2, (width + 1) // 2
    blocks = list(getattr(module, "blocks", ()))
    if not blocks:
        raise ImportRefused(f"{where} has no blocks")
    first = blocks[0]
    window = tuple(first.window_size)
    attn = first.attn
    heads = attn.num_heads
    hidden = first.mlp.fc1.out_features
    if window[0] != window[1] or hidden % d:
        raise ImportRefused(f"{where}: windows of {window} (not square) or an MLP of {hidden} channels on {d}")
    w, mlp = window[0], hidden // d
    if height % w or width % w or query_sides(height, width, w) != (w, w):
        raise ImportRefused(f"{where}: windows of {w}x{w} on a {height}x{width} map that its global query misses")
    generator = list(getattr(getattr(module, "global_block", None), "blocks", ()))
    sides = generator_sides(height, width, w)
    pools = int(math.log2(min(height, width) / w))
    expected = []
    for i in range(len(sides)):
        expected.append("mbconv")
        if i < pools:
            expected.append("pool")
    found = []
    for child in generator:
        if _mbconv(child, d):
            found.append("mbconv")
        elif (
            _is(child, "MaxPool2d")
            and child.kernel_size in (3, (3, 3))
            and child.stride in (2, (2, 2))
            and child.padding in (1, (1, 1))
            and child.dilation in (1, (1, 1))
            and not child.ceil_mode
        ):
            found.append("pool")
        else:
            found.append(type(child).__name__)
    if found != expected:
        raise ImportRefused(
            f"{where}: its global query generator is {found}, not GCViT's MbConv blocks and 3x3 max poolings "
            f"({expected})"
        )
    if not _is(getattr(module, "global_norm", None), "Identity"):
        raise ImportRefused(f"{where}: a global_norm (a norm of the global query) is not read")
    norm = getattr(module, "norm", None)
    if not (_is(norm, "Identity") or _layer_norm(norm, d, "LayerNorm")):
        raise ImportRefused(f"{where}: its norm is neither Identity nor a LayerNorm over the {d} channels")
    scale = _is(first.ls1, "LayerScale", "_GcLayerScale")
    for i, block in enumerate(blocks):
        at = f"{where} blocks.{i}"
        a, m = block.attn, block.mlp
        width_qkv = (2 if i % 2 else 3) * d
        table = getattr(getattr(a, "rel_pos", None), "relative_position_bias_table", None)
        ok = (
            _is(block, "GlobalContextVitBlock", "_GcBlock")
            and tuple(block.window_size) == (w, w)
            and _layer_norm(block.norm1, d, "LayerNorm")
            and _layer_norm(block.norm2, d, "LayerNorm")
            and _is(a, "WindowAttentionGlobal", "_GcWindowAttention")
            and bool(a.use_global) == bool(i % 2)
            and a.num_heads == heads
            and a.head_dim * heads == d
            and _is(a.qkv, "Linear")
            and (a.qkv.in_features, a.qkv.out_features) == (d, width_qkv)
            and a.qkv.bias is not None
            and _is(a.proj, "Linear")
            and (a.proj.in_features, a.proj.out_features) == (d, d)
            and a.proj.bias is not None
            and _is(a.rel_pos, "RelPosBias", "_GcRelPosBias")
            and table is not None
            and tuple(table.shape) == ((2 * w - 1) ** 2, heads)
            and sum(p.numel() for p in a.rel_pos.parameters()) == table.numel()
            and _is(m, "Mlp", "_GcMlp")
            and _is(m.fc1, "Linear")
            and (m.fc1.in_features, m.fc1.out_features) == (d, hidden)
            and m.fc1.bias is not None
            and _gelu(m.act)
            and _is(m.norm, "Identity")
            and _is(m.fc2, "Linear")
            and (m.fc2.in_features, m.fc2.out_features) == (hidden, d)
            and m.fc2.bias is not None
            and all(_scale(getattr(block, n), d, scale) for n in ("ls1", "ls2"))
            and all(_is(getattr(block, n), "Identity", "DropPath") for n in ("drop_path1", "drop_path2"))
        )
        if not ok:
            raise ImportRefused(
                f"{at} is not GCViT's block as gcstage writes it (LayerNorm > window attention with qkv and proj "
                f"biases and a relative-position bias table, queries from the global query on odd blocks; "
                f"LayerNorm > Mlp with GELU; layer scales in every block or none)"
            )
    mlp_text = (f", mlp={mlp}" if mlp != 4 else "") + (", ls" if scale else "")
    parts.append(f"gcstage(depth={len(blocks)}, heads={heads}, window={w}{mlp_text})")
    if not _is(norm, "Identity"):  # the last stage's stage_norm, on the channels of every position
        parts.append("ln")
    return " > ".join(parts)


KINDS = (GlobalContextStage(),)
