"""`attn(heads=h, ...)` (docs/language.md, Attention): multi-head attention over the positions of
its input (a sequence T x d, or the H·W positions of a map H x W x d; the shape is kept).

With q = h·e query channels and kv = g·e key/value channels (e the head width, g the key/value
heads): the query, key, value and output projections have `d·q + 2·c·kv + q·d` weights (c the
source's channels, d by default), plus `q + 2·kv + d` biases with `bias`, plus a learned
relative-position bias table of `(2w−1)²·h` with `window=w` (Swin). MACs are the projections,
then the scores and the weighted sum over every query/key pair (masked pairs included).

Two paramsym extensions (docs/language.md, Attention), for torchvision's Swin V2:
`cpb=m` (with `window=w`) replaces the table by Swin V2's continuous position bias, an MLP
Linear(2->m, bias) > ReLU > Linear(m->h) over the (2w−1)² relative coordinates, plus a logit
scale per head (cosine attention): `3m + m·h + h` parameters, and the MLP's `(2w−1)²·(2m + m·h)`
MACs each time the layer runs. `pad` (with `window=w`) pads the map with zeros to a multiple of
w on the bottom and right, as torchvision's shifted_window_attention does: without it a window
that does not divide the map is refused. The padded positions are computed (projections, scores)
and cut off again, so MACs and the KV cache count the padded map; params do not depend on it.

Four more paramsym extensions (docs/language.md, Attention), for timm: `sr=R` (PVT v2, Twins) projects keys and
values from the map reduced by Conv2d(d, d, R, stride R, bias) > LayerNorm, S = ⌊H/R⌋·⌊W/R⌋ positions, `R²·d·d + 3d`
parameters and the convolution's `S·R²·d·d` MACs; `srpool=R` (NextViT) from averages of R² consecutive positions >
BatchNorm1d, S = ⌊T/R²⌋, `2d` parameters and `2d` values of state; `gpsa` (ConViT) adds the gated positional
attention, a Linear(3 -> h, bias) over the relative coordinates of every pair of positions and a gate per head,
`5h` parameters and `3·h·T²` MACs; `projbias` puts a bias on the output projection only (`d`).

Window attention (`window=w`) attends inside w x w windows of a map: each position has S = w²
keys. Keys and values are still computed once for every one of the T positions, so the key and
value projections cost `2·T·d·kv` and the KV cache is the keys and values of all positions,
`2·T·kv`.

Grid attention (`grid=g`, a paramsym extension for MaxViT) attends across a g x g grid of strided
positions: the map H x W is cut into (H/g)·(W/g) grids, each of the g² positions spaced H/g rows
and W/g columns apart, and every position attends to the g² positions of its grid (MaxViT's
"grid attention"; its "block attention" is `window=w`). It counts as window attention does with
w = g: the (2g−1)²·h bias table, S = g² keys per position, and the keys and values of all T
positions in the cache.

Two more paramsym extensions, for video models. `window=a x b x c` on a volume T x H x W x d is Video Swin's
window attention (torchvision's ShiftedWindowAttention3d): a table of (2a−1)(2b−1)(2c−1)·h biases, a side at least
as long as its axis cut to the axis, `pad` padding each axis to a multiple of the window. `volume=T x H x W` (or
H x W) with `q=`, `q_stride=`, `kv=`, `kv_stride=` is MViT's pooling attention on a sequence of tokens (after a
class token with `cls`): the queries and/or keys and values pooled by a depthwise convolution and a LayerNorm of the
head width, the output the pooled queries' sequence; MViT v2 adds `out=D`, `relpos` and `residual` (`Pooling`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, cast

import sympy

from .. import expansion
from ..core import saved as saved_tensors
from ..core.records import KerasSpec, Layer, Options, Shape, TorchSpec
from ..core.serving import CausalAttention
from ..core.setup import Setup
from ..errors import (
    ImportRefused,
    ParamsymArgumentError,
    ParamsymNameError,
    ParamsymShapeError,
    ParamsymUsageError,
    Position,
)
from ..language.syntax import Positional, reference
from . import traced_attention
from .base import (
    Args,
    Call,
    Constraint,
    Counts,
    Expr,
    Field,
    Flow,
    ImportContext,
    Kind,
    NameMatch,
    Numbers,
    Template,
    Value,
    Words,
    axes,
    check_or_defer,
    known,
    make_layer,
    refuse_bias_split,
    refuse_keras,
    same_layer,
    split_over,
    times,
    whole_input_field,
    whole_number,
)
from .dense import Tie

# the forms of a window's position bias (relpos=), the first the default
RELPOS = ("table", "none", "offsets", "axes")


@dataclass(frozen=True)
class Pooling:
    """MViT's pooling attention: the sequence is a volume of tokens (`volume`, H x W or T x H x W, row by row), after
    a class token with `cls`; the queries (kernel `q`, stride `q_stride`) and/or the keys and values (`kv`,
    `kv_stride`) are pooled over the volume by a depthwise convolution without bias on each head's channels (shared
    by the heads; padding kernel // 2) and a LayerNorm of the head width; the class token is not pooled. None: that
    side is not pooled. MViT v2's options: `residual` adds the pooled queries to the attention's output, `relpos`
    adds decomposed relative positions (a table of 2·max(q_i, k_i) − 1 vectors of the head width per axis),
    `width` is the output's (qkv d -> 3·width, proj width -> width; None: d)."""

    volume: tuple[Expr, ...]
    q: tuple[Expr, ...] | None
    q_stride: tuple[Expr, ...]
    kv: tuple[Expr, ...] | None
    kv_stride: tuple[Expr, ...]
    cls: bool
    residual: bool
    relpos: bool
    width: Expr | None

    @staticmethod
    def pooled(volume: tuple[Expr, ...], kernel: tuple[Expr, ...] | None, stride: tuple[Expr, ...]) -> tuple[Expr, ...]:
        """The volume after a pooling (PyTorch's convolution with padding kernel // 2): ⌊(n + 2⌊k/2⌋ − k)/s⌋ + 1."""
        if kernel is None:
            return volume
        return tuple(sympy.floor((n + 2 * sympy.floor(k / 2) - k) / s) + 1 for n, k, s in zip(volume, kernel, stride))

    @property
    def queries(self) -> tuple[Expr, ...]:
        return self.pooled(self.volume, self.q, self.q_stride)

    @property
    def keys(self) -> tuple[Expr, ...]:
        return self.pooled(self.volume, self.kv, self.kv_stride)

    @property
    def table(self) -> Expr:
        """The vectors of the relative-position tables (`relpos`): 2·max(q_i, k_i) − 1 along each axis."""
        return sympy.Add(*(2 * sympy.Max(a, b) - 1 for a, b in zip(self.queries, self.keys)))


@dataclass(frozen=True)
class AttentionOptions(Options):
    """attn(heads=h, kv_heads=g, head_dim=e, source=S x c, window=w | grid=g, shift, causal, rope, cpb=m, pad,
    sr=R | srpool=R, gpsa, projbias)."""

    heads: Expr
    kv_heads: Expr  # heads when not given
    head_dim: Expr  # the width over heads when not given
    source: tuple[Expr, Expr] | None  # (positions, channels) of the keys' source; None: the input itself
    window: Expr | None  # the side of a square window on a map (window=w)
    shift: bool
    causal: bool
    rope: bool
    cpb: Expr | None  # the width of Swin V2's position-bias MLP
    pad: bool
    grid: Expr | None  # MaxViT's grid attention: a g x g grid of strided positions
    volume: tuple[Expr, Expr, Expr] | None = None  # a window on a 3-D map (window=a x b x c: Video Swin's)
    pooling: Pooling | None = None  # MViT's pooling attention (volume=, q=, kv=)

    sr: Expr | None = None  # spatial reduction (PVT v2, Twins): keys and values from a stride-R conv + LayerNorm
    srpool: Expr | None = None  # spatial reduction by pooling (NextViT): an average of R² positions + BatchNorm
    # the map (H, W) that a sequence of H·W positions lays out row by row, which sr= reduces (Twins PCPVT: map=HxW)
    sr_map: tuple[Expr, Expr] | None = None
    proj_bias: bool = False  # a bias on the output projection only (timm's qkv_bias=False)
    gpsa: bool = False  # ConViT's gated positional self-attention
    out: Expr | None = None  # the output projection's channels (timm's CoAtNet); None: the input's width
    pos_mlp: Expr | None = None  # the width of timm's relative-position MLP (MaxxViT's "rmlp"), instead of the table
    qv_bias: bool = False  # biases on the query, value and output projections, none on the keys (timm's Swin V2)
    qkv_bias: bool = False  # biases on the query, key and value projections, none on the output (Qwen2's)
    cosine: bool = False  # cosine attention with a learned logit scale per head (Swin V2; cpb= has its own)
    per_pair: bool = False  # pos_mlp= runs on each of the w^4 query/key pairs, not the (2w-1)^2 offsets (swinv2_cr)
    # pos_mlp= without window= or grid=: attention over all positions with the MLP's bias over the relative
    # positions of this H x W map (the input map, or the map a sequence lays out: map=HxW); timm's ViT-RelPos
    pos_map: tuple[Expr, Expr] | None = None
    # tie=NAME: the position bias that the attention NAME computes, used again (timm's shared_rel_pos): its MLP
    # is counted there, once; this layer has no position-bias parameters or MACs of its own
    pos_tie: Tie | None = None
    pos_cls: bool = False  # with pos_map: a class token before the map's positions, with a bias of zero (timm's)
    # the window's position bias (relpos=): "table" (Swin's (2w-1)^2 x h), "none", "offsets" (one bias per head
    # for each offset |row|, |column|: w^2 x h, TinyViT's and LeViT's) or "axes" (SAM's decomposed tables of
    # (2w-1) x e along each axis, added through the queries)
    relpos: str = "table"
    # channel attention (DaViT's, `channels`): each head's e channels attend to each other across all positions
    channels: bool = False
    # BEiT's relative-position bias (clsrel=HxW): the sequence is a class token then an H x W map row by row; a
    # table of (2H-1)(2W-1) + 3 biases per head (3 for class-to-token, token-to-class, class-to-class)
    cls_rel: tuple[Expr, Expr] | None = None
    # a norm of the head width on each query and key head (qk_norm=ln|rms: timm's q_norm, k_norm), shared by the
    # heads: LayerNorm 2e parameters each, RMSNorm e; qk_norm=rms_full: an RMSNorm over all q channels and one
    # over all kv channels (OLMo-2's); qk_norm=ln_per_head: a LayerNorm of the head width without bias, a weight of
    # its own for every head (Cohere's use_qk_norm): q + kv parameters both
    qk_norm: str | None = None
    subln: bool = False  # a LayerNorm of the q channels on the heads' output, before the output projection
    # window=W on a sequence (with causal): a sliding window, each position attends to itself and the W - 1
    # positions before it (Mistral v0.1, Gemma-2's local layers); the KV cache keeps min(T, W - 1) positions
    slide: Expr | None = None
    # softcap=C: each score s becomes C·tanh(s/C) before the softmax (Gemma-2's attn_logit_softcapping); no
    # parameters, no MACs (element-wise: FlopCounterMode counts none for tanh, nor for the division and product)
    softcap: Expr | None = None
    # rope=F: rotary positions on the fraction F of each head's channels, the first F·e of them (GPT-NeoX's
    # rotary_pct, GPT-J's rotary_dim, Phi's partial_rotary_factor); None: the whole head (`rope`), or no rope
    rotary: Expr | None = None
    # ALiBi (BLOOM, Falcon with alibi=True, MPT): a bias of −m·distance on each score, m a fixed slope per head
    alibi: bool = False
    # T5's relative-position buckets (relbuckets=B): a table of B x h biases added to the scores, looked up by the
    # bucket of each query/key offset; with tie=NAME the table of the attention NAME, counted there
    rel_buckets: Expr | None = None
    # source=@NAME: the named value the keys and values are projected from (its positions and channels: source)
    memory: str | None = None

    @property
    def rel_bucket_params(self) -> Expr:
        """T5's table of relative-position biases (relbuckets=B): B·h, where it is written (0 when tied)."""
        if self.rel_buckets is None or self.pos_tie is not None:
            return sympy.Integer(0)
        return self.rel_buckets * self.heads

    @property
    def qk_norm_params(self) -> Expr:
        """The parameters of the query and key norms (qk_norm=)."""
        return qk_norm_params(self.qk_norm, self.heads, self.kv_heads, self.head_dim)

    @property
    def cls_rel_table(self) -> Expr:
        """The entries per head of BEiT's table (clsrel=HxW): (2H − 1)(2W − 1) + 3."""
        if self.cls_rel is None:
            return sympy.Integer(0)
        return (2 * self.cls_rel[0] - 1) * (2 * self.cls_rel[1] - 1) + 3

    @property
    def partition(self) -> Expr | None:
        """The side of the square the attention reads (w of window=w, g of grid=g): its bias table is
        (2·side − 1)²·h, each position has side² keys."""
        return self.window if self.window is not None else self.grid

    @property
    def windowed(self) -> bool:
        """Window attention, on a map (window=w) or a volume (window=a x b x c)."""
        return self.window is not None or self.volume is not None

    @property
    def sides(self) -> tuple[Expr, ...] | None:
        """The sides of the window or grid along each axis of the map: its bias table has ∏(2·side − 1) rows."""
        if self.volume is not None:
            return self.volume
        side = self.partition
        return None if side is None else (side, side)


# qk_norm= forms: what each normalises and its parameters (docs/language.md)
QK_NORMS = {
    "ln": "LayerNorm (weight and bias) of the head width, shared by the heads",
    "rms": "RMSNorm (weight) of the head width, shared by the heads",
    "rms_full": "RMSNorm (weight) over all the query channels and another over all the key channels (OLMo-2)",
    "ln_per_head": "LayerNorm without bias of the head width, a weight of its own for every head (Cohere)",
}


# qk_norm= forms and the names torch_modules.GroupedQueryAttention gives them
_TORCH_QK_NORMS = {"ln": "LayerNorm", "rms": "RMSNorm", "rms_full": "FullRMSNorm", "ln_per_head": "HeadLayerNorm"}


def qk_norm_params(form: str | None, heads: Expr, kv_heads: Expr, head_dim: Expr) -> Expr:
    """The parameters of the query and key norms of a qk_norm= form: 4e (ln), 2e (rms), or q + kv = (h + g)·e
    (rms_full, ln_per_head: a weight for every query and key channel)."""
    if form is None:
        return sympy.Integer(0)
    if form in ("rms_full", "ln_per_head"):
        return (heads + kv_heads) * head_dim
    return 2 * (2 if form == "ln" else 1) * head_dim


class Attention(Kind):
    key = "attn"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Self-attention over T positions with h query heads, g key/value heads of width e, as Hugging Face's
        Llama computes it (separate q, k, v projections): its input (the projections'), and
        - `--attention math` (the eager attention: two products, a softmax in fp32): the queries, the keys and
          values repeated to h heads (3·h·T·e), the probabilities (h·T², fp32; and in the activations' format
          when that is not fp32) and the heads' output before the output projection (h·T·e);
        - `--attention fused` (F.scaled_dot_product_attention's fused kernel): the queries (h·T·e), the keys and
          values (2·g·T·e), the output (h·T·e, which the output projection reads as it is) and the log-sum-exp of
          each query's scores (h·T, fp32).
        With rope, the cosines and sines of the positions (2·T·e for the whole batch, computed once for all the
        layers). `--recompute selective` with math attention: see below; with fused attention it changes nothing
        (the fused kernel keeps nothing of size T²). Other forms (windows, a source, biases on the scores) are not
        declared."""
        options = AttentionOptions.of(layer)
        T = layer.in_shape.positions
        h, g, e = options.heads, options.kv_heads, options.head_dim
        plain = AttentionOptions(
            h, g, e, None, None, False, options.causal, options.rope, None, False, None,
            qkv_bias=options.qkv_bias, proj_bias=options.proj_bias,
        )  # fmt: skip
        if T is None or options != plain:
            return None
        act = saved_tensors.Extra
        rope: tuple[saved_tensors.Extra, ...] = ()
        rope = (act(2 * T * e, per_sample=False, what="rope cos, sin", shared="rope"),) if options.rope else ()
        if setup.recompute == "selective" and setup.attention == "math":
            # Megatron's selective recomputation: the core (scores, softmax, the product with the values) is
            # checkpointed; it keeps its inputs, q, k and v, and the output projection its output; backward makes
            # the keys and values repeated to h heads (with g < h) and the probabilities again
            core = (act(h * T * e), act(2 * g * T * e), act(h * T * e))
            again: tuple[saved_tensors.Extra, ...] = (act(h * T * T, 4, what="probabilities"),)
            if setup.activations.name != "fp32":
                again += (act(h * T * T, what="probabilities"),)
            if sympy.simplify(g - h) != 0:
                again += (act(2 * h * T * e, what="repeated keys and values"),)
            return saved_tensors.Saved(input=True, extras=rope + core, recomputed=again)
        extras: tuple[saved_tensors.Extra, ...]
        if setup.attention == "fused":
            extras = (act(h * T * e), act(2 * g * T * e), act(h * T * e), act(h * T, 4, what="log-sum-exp"))
        else:
            extras = (act(3 * h * T * e), act(h * T * T, 4, what="probabilities"), act(h * T * e))
            if setup.activations.name != "fp32":  # and the probabilities turned back to the activations' format
                extras += (act(h * T * T, what="probabilities"),)
        return saved_tensors.Saved(input=True, extras=rope + extras)

    names = ("attn",)
    keywords = frozenset(
        {
            "heads",
            "kv_heads",
            "head_dim",
            "source",
            "window",
            "grid",
            "cpb",
            "volume",
            "q",
            "q_stride",
            "kv",
            "kv_stride",
            "out",
            "sr",
            "srpool",
            "map",  # map=HxW: the map that a sequence lays out, for sr= on a sequence
            "pos_mlp",
            "relpos",  # relpos=table|none|offsets|axes: the form of a window's position bias
            "clsrel",  # clsrel=HxW: BEiT's relative positions on a class token and an H x W map
            "qk_norm",  # qk_norm=ln|rms|rms_full|ln_per_head: a norm on the queries and keys
            "tie",  # tie=NAME: the position bias of the attention NAME, computed once (timm's shared_rel_pos)
            "softcap",  # softcap=C: the scores soft-capped, C·tanh(s/C) (Gemma-2's attn_logit_softcapping)
            "rope",  # rope=F: rotary positions on the fraction F of each head's channels (the bare flag: all)
            "relbuckets",  # relbuckets=B: T5's relative-position buckets, a table of B x h biases
        }
    )
    references = frozenset({"source"})  # source=@NAME: cross-attention to a named value (an encoder's output)
    flags = frozenset(
        {
            "bias",
            "nobias",
            "causal",
            "rope",
            "shift",
            "pad",
            "cls",
            "residual",
            "relpos",  # the bare flag: MViT's decomposed relative positions in pooling attention (volume=)
            "projbias",
            "gpsa",
            "qv_bias",
            "qkv_bias",  # biases on the query, key and value projections, none on the output (Qwen2's)
            "cosine",
            "per_pair",
            "channels",
            "subln",  # a LayerNorm on the heads' output before the output projection (BEiT-3's sub-LN)
            "alibi",  # ALiBi: fixed linear biases by distance on the scores (BLOOM's, Falcon's with alibi=True)
        }
    )
    torch_modules = (
        "MultiheadAttention",
        "TransformerEncoderLayer",
        "TransformerDecoderLayer",
        "SelfAttention",
        "GroupedQueryAttention",
        "WindowAttention",  # these three: paramsym's own exports (WindowAttention also for grid=g)
        "timm.layers.attention.Attention",  # timm's ViT, DeiT, ... (vision_transformer.py)
        "timm.models.swin_transformer.SwinTransformerBlock",  # read whole: its windows are reshapes
        "timm.models.convit.GPSA",  # ConViT's gated positional self-attention, read whole
        "timm.models.pvt_v2.PyramidVisionTransformerStage",  # read whole: its blocks run on the map as a sequence
        "GatedPositionalAttention",  # paramsym's export of it
        "torchvision.models.maxvit.PartitionAttentionLayer",  # MaxViT's block or grid attention, read whole
        "torchvision.models.video.swin_transformer.ShiftedWindowAttention3d",  # Video Swin's, read whole
        "WindowAttention3d",  # paramsym's own export of a window on a volume
        "PoolingAttention",  # paramsym's own export of MViT's pooling attention
        "timm.models.maxxvit.PartitionAttentionCl",  # timm's MaxViT block or grid attention, read whole
        "timm.models.maxxvit.Attention2d",  # timm's CoAtNet attention over the whole map, read whole
        # timm's ViT-RelPos: attention over all the patches with a RelPosMlp bias (its own, or the model's shared one)
        "timm.models.vision_transformer_relpos.RelPosAttention",
        "timm.models.swin_transformer_v2.SwinTransformerV2Block",  # read whole: its windows are reshapes
        "timm.models.vision_transformer.ParallelScalingBlock",  # ViT-22B's parallel block, read whole
        "timm.models.swin_transformer_v2_cr.SwinTransformerV2CrBlock",  # read whole: its windows are reshapes
        # timm's blocks of window attention, read whole (their windows are reshapes): TinyViT's
        "timm.models.tiny_vit.TinyVitBlock",
        "timm.models.vision_transformer_sam.Block",  # SAM's ViT: windows with relative positions along each axis
        # channel attention (`channels`): paramsym's own export, and DaViT's (V2 scales by the positions instead
        # of the head width: the same counts)
        "paramsym.frameworks.torch_modules.ChannelAttention",
        "timm.models.davit.ChannelAttention",
        "timm.models.davit.ChannelAttentionV2",
        "timm.models.davit.SpatialBlock",  # DaViT's blocks, read whole (their windows and tokens are reshapes)
        "timm.models.davit.ChannelBlock",
        "timm.models.nest.NestLevel",  # NesT's level: its blocks are windows (blockify is a reshape)
        "timm.models.beit.Attention",  # BEiT's: biases on q and v (a cat with a buffer of zeros), its position table
    )

    # multi-head self-attention of any class, read from the operations it runs (traced_attention): whether a
    # Linear layer begins one, and the region it begins, checked, with its text
    traced_begins = staticmethod(traced_attention.begins)
    traced_region = staticmethod(traced_attention.read)

    # ---- language
    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        if "heads" not in args.keywords:
            raise ParamsymArgumentError(
                f"{call.name} needs its number of heads: write {call.name}(heads=8, ...)", pos=call.pos
            )
        rank = flow.shape.rank
        if rank == 0:
            raise ParamsymShapeError(
                f"{call.name} acts on positions, but its input is a vector (no positions)",
                pos=call.pos,
                notes=((f"the vector comes from {flow.source[0]}", flow.source[1]),) if flow.source else (),
                hint="attention takes a sequence T x d or a map H x W x d",
            )
        d = flow.shape.channels
        if d is None:
            raise ParamsymShapeError(
                f"{call.name} needs the width of its input: nothing before it says it",
                pos=call.pos,
                hint="start the network with input(T x d) or input(H x W x d)",
            )
        heads = args.scalar("heads")
        kv_heads = args.scalar("kv_heads", heads)
        constraints = list(args.constraints)
        if "kv_heads" in args.keywords:
            pos = args.keywords["kv_heads"].pos
            constraints += check_or_defer(
                heads / kv_heads,
                "integer",
                f"kv_heads={kv_heads} must divide heads={heads} (each key/value head serves a whole group of "
                f"query heads)",
                pos,
            )
        # MViT's pooling attention may widen (out=D), its heads splitting D; any other attention's heads split
        # the input's width d, out= being the output projection's alone (CoAtNet's)
        width = args.scalar("out", d) if "volume" in args.keywords else d
        if "head_dim" in args.keywords:
            head_dim = known(args.scalar("head_dim"))
        else:
            head_dim = width / heads
            constraints += check_or_defer(
                head_dim,
                "integer",
                f"heads={heads} does not divide the width {width}",
                args.keywords["heads"].pos,
                hint="the head width is d/heads: choose heads that divide d, or give head_dim=",
            )
        rotary = self._rotary(args, head_dim, constraints)  # rope=F; afterwards "rope" is in args.flags
        if "rope" in args.flags and rotary is None:
            # rotary positions turn pairs of a head's channels (Llama's rotate_half): the head width is even
            constraints += check_or_defer(
                head_dim / 2,
                "integer",
                f"rope rotates pairs of channels, but the head width {head_dim} is odd",
                args.flags["rope"].pos,
                shown=head_dim,
                hint="choose heads (or head_dim=) so that each head is even",
            )
        source = self._source(call, args)
        slide = self._slide(call, flow, args)
        window, volume = (None, None) if slide is not None else self._window_sides(call, flow, args)
        if volume is not None:
            constraints += self._volume(call, flow, args, volume)
        if window is not None:
            constraints += self._window(call, flow, args, window)
        if (window is not None or volume is not None) and source is not None:
            raise ParamsymArgumentError(
                "window= attends inside windows of the map itself: it takes no source=",
                pos=args.keywords["source"].pos,
            )
        grid = self._grid(call, flow, args, window if volume is None else volume[0], source)
        if "shift" in args.flags and window is None and volume is None:
            raise ParamsymArgumentError(
                "'shift' (shifted windows) needs window=w",
                pos=args.flags["shift"].pos,
                hint=f"write {call.name}(heads=..., window=7, shift)",
            )
        if "pad" in args.flags and window is None and volume is None:
            raise ParamsymArgumentError(
                "'pad' pads the map to a multiple of the window: it needs window=w",
                pos=args.flags["pad"].pos,
                hint=f"write {call.name}(heads=..., window=8, pad)",
            )
        if volume is not None and "cpb" in args.keywords:
            raise ParamsymArgumentError(
                "cpb= (Swin V2's continuous position bias) is for square windows on a map: a window on a "
                "volume (window=a x b x c) has the learned table",
                pos=args.keywords["cpb"].pos,
            )
        cpb = self._cpb(call, args, window)
        sr, srpool = self._reduction(call, flow, args, window, grid, source)
        sr_map = (
            self._sr_map(call, flow, args, sr)
            if sr is not None or not ({"pos_mlp", "tie"} & set(args.keywords))
            else None  # map= with pos_mlp= (or tie=): the map of the position bias (`_pos_map`)
        )
        if "projbias" in args.flags and args.bias:
            raise ParamsymArgumentError(
                "'projbias' puts a bias on the output projection only, 'bias' on all four: give one",
                pos=args.flags["projbias"].pos,
            )
        if "gpsa" in args.flags:
            constraints += self._gpsa(call, flow, args)
        if "qv_bias" in args.flags and ("bias" in args.flags or "nobias" in args.flags):
            flag = "bias" if "bias" in args.flags else "nobias"
            raise ParamsymArgumentError(
                f"'qv_bias' (biases on the query, value and output projections, none on the keys) and '{flag}' "
                f"say two things of the biases: give one",
                pos=args.flags[flag].pos,
            )
        if "qkv_bias" in args.flags:
            given = [flag for flag in ("bias", "nobias", "qv_bias", "projbias") if flag in args.flags]
            if given:
                raise ParamsymArgumentError(
                    f"'qkv_bias' (biases on the query, key and value projections, none on the output) and "
                    f"'{given[0]}' say two things of the biases: give one",
                    pos=args.flags[given[0]].pos,
                )
        bias = args.bias or "qv_bias" in args.flags or "qkv_bias" in args.flags
        pos_tie, tied = self._pos_tie(call, flow, args, window, grid)
        rel_buckets = self._rel_buckets(call, flow, args, tied)
        pos_mlp = self._pos_mlp(call, args, window, grid) if tied is None else tied.pos_mlp
        pos_map = self._pos_map(call, flow, args, window, grid, sr, constraints) if pos_mlp is not None else None
        if tied is not None and rel_buckets is None:
            self._check_tie(args, heads, pos_map, tied)
        if "cosine" in args.flags and cpb is not None:
            raise ParamsymArgumentError(
                "cpb= (Swin V2's position bias) has cosine attention and its logit scale already: 'cosine' adds "
                "nothing to it",
                pos=args.flags["cosine"].pos,
            )
        if "per_pair" in args.flags and pos_mlp is None:
            raise ParamsymArgumentError(
                "'per_pair' says that the position-bias MLP runs on every query/key pair: it needs pos_mlp=m",
                pos=args.flags["per_pair"].pos,
                hint=f"write {call.name}(heads=..., window=7, pos_mlp=384, per_pair)",
            )
        out = self._out(call, args)
        relpos = self._relpos(call, args, window, grid, cpb)
        self._channels(call, args)
        self._alibi(call, flow, args)
        options = AttentionOptions(
            heads=heads,
            kv_heads=kv_heads,
            head_dim=head_dim,
            source=source,
            window=window,
            shift="shift" in args.flags,
            causal="causal" in args.flags,
            rope="rope" in args.flags,
            cpb=cpb,
            pad="pad" in args.flags,
            grid=grid,
            volume=volume,
            pooling=self._pooling(call, flow, args, constraints),
            sr=sr,
            srpool=srpool,
            sr_map=sr_map,
            proj_bias="projbias" in args.flags,
            gpsa="gpsa" in args.flags,
            out=None if "volume" in args.keywords else out,  # pooling attention has its own width
            pos_mlp=pos_mlp,
            pos_map=pos_map,
            pos_tie=pos_tie,
            pos_cls=pos_map is not None and "cls" in args.flags,
            qv_bias="qv_bias" in args.flags,
            qkv_bias="qkv_bias" in args.flags,
            cosine="cosine" in args.flags,
            per_pair="per_pair" in args.flags,
            relpos=relpos,
            channels="channels" in args.flags,
            cls_rel=self._cls_rel(call, flow, args),
            qk_norm=self._qk_norm(args),
            subln="subln" in args.flags,
            slide=slide,
            softcap=self._softcap(call, args),
            rotary=rotary,
            alibi="alibi" in args.flags,
            rel_buckets=rel_buckets,
            memory=self._memory(args),
        )
        self._plain_only(args, options)
        if options.pooling is not None:
            for key in ("sr", "srpool", "projbias", "gpsa", "qv_bias", "cosine", "per_pair", "pos_mlp", "tie"):
                found = args.keywords.get(key) or args.flags.get(key)
                if found is not None:
                    raise ParamsymArgumentError(
                        f"{key} is not an option of pooling attention (volume=, MViT's): it pools its own keys "
                        f"and values (kv=) and has biases on all its projections or none",
                        pos=found.pos,
                    )
            out_shape = Shape((int(options.pooling.cls) + sympy.Mul(*options.pooling.queries),), width)
            return make_layer(
                call, self, flow, out_shape, d, width, bias=args.bias, options=options, constraints=tuple(constraints)
            )
        if out is not None:
            return make_layer(
                call,
                self,
                flow,
                Shape(flow.shape.spatial, out),
                d,
                out,
                bias=bias,
                options=options,
                constraints=tuple(constraints),
            )
        return same_layer(call, self, flow, d, bias=bias, options=options, constraints=tuple(constraints))

    def _rotary(self, args: Args, head_dim: Expr, constraints: list[Constraint]) -> Expr | None:
        """rope=F: rotary positions on the first F·e channels of each head (e the head width), F a number with
        0 < F <= 1 and F·e an even whole number (the channels turn in pairs). F = 1 is `rope`: None is returned.
        The keyword is recorded as the flag `rope` too, so that every check of rotary positions applies to it."""
        arg = args.keywords.get("rope")
        if arg is None:
            return None
        if "rope" in args.flags:
            raise ParamsymArgumentError(
                "'rope' and rope= are given both: rope turns every channel of each head, rope=F the fraction F",
                pos=args.flags["rope"].pos,
                hint="give one: attn(..., rope) or attn(..., rope=0.25)",
            )
        value = arg.value[0] if len(arg.value) == 1 else None
        hint = "rope=F turns the fraction F of each head's channels: rope=0.25 (GPT-NeoX, Pythia), rope=0.5"
        if value is None or not value.is_number or not value.is_real:
            shown = " x ".join(str(v) for v in arg.value)
            raise ParamsymArgumentError(
                f"rope= takes one number, the fraction of each head's channels that rotary positions turn, not {shown}",
                pos=arg.pos,
                hint=hint,
            )
        written = fraction_text(int(value.p), int(value.q)) if value.is_Rational else str(value)
        if not (0 < value <= 1):
            raise ParamsymArgumentError(
                f"rope={written}: the fraction of each head's channels that rotary positions turn is more than 0 "
                f"and at most 1",
                pos=arg.pos,
                hint=hint,
            )
        constraints += check_or_defer(
            value * head_dim / 2,
            "integer",
            f"rope={written} turns {written}·{head_dim} = {_decimal(value * head_dim)} channels of each head, which "
            f"is not an even whole number (rotary positions turn pairs of channels)",
            arg.pos,
            shown=value * head_dim,
            hint=f"choose F so that F times the head width {head_dim} is even",
        )
        args.flags["rope"] = Positional((sympy.Symbol("rope"),), arg.pos)
        return None if value == 1 else value

    def _alibi(self, call: Call, flow: Flow, args: Args) -> None:
        """`alibi`: ALiBi's linear biases by distance, on the scores of attention over a sequence (BLOOM, Falcon
        with alibi=True, MPT). It gives positions alone: not with rope, nor with the position biases and tables of
        attention on maps."""
        flag = args.flags.get("alibi")
        if flag is None:
            return
        if flow.shape.rank != 1:
            raise ParamsymArgumentError(
                "'alibi' biases each score by the distance between two positions of a sequence: its input is a "
                "map, not a sequence T x d",
                pos=flag.pos,
                hint="ALiBi is for sequences (BLOOM, Falcon); a map's attention has window= and its tables",
            )
        if "rope" in args.flags:
            raise ParamsymArgumentError(
                "'alibi' and rope are two ways of giving attention the positions (a bias by distance, a rotation "
                "of queries and keys): give one",
                pos=args.flags["rope"].pos,
            )
        for key in ("source", "volume", "sr", "srpool", "pos_mlp", "tie", "clsrel", "cpb", "grid"):
            if key in args.keywords:
                raise ParamsymArgumentError(
                    f"'alibi' biases the scores of attention over its own sequence by distance: it does not go "
                    f"with {key}=",
                    pos=args.keywords[key].pos,
                )
        for other in ("gpsa", "channels"):
            if other in args.flags:
                raise ParamsymArgumentError(
                    f"'alibi' biases the scores of attention over positions: it does not go with '{other}'",
                    pos=args.flags[other].pos,
                )

    def _out(self, call: Call, args: Args) -> Expr | None:
        """out=o: the output projection gives o channels (timm's CoAtNet widens the map in its attention)."""
        arg = args.keywords.get("out")
        if arg is None:
            return None
        if len(arg.value) != 1:
            raise ParamsymArgumentError("out= takes one value, the output channels (out=256)", pos=arg.pos)
        value = arg.value[0]
        if value.is_number and not (value.is_integer and value >= 1):
            raise ParamsymArgumentError(
                f"out= (the output channels) must be a positive whole number, not {value}", pos=arg.pos
            )
        args.constraints += whole_number(value, "out= (the output channels)", arg.pos)
        return value

    def _pos_mlp(self, call: Call, args: Args, window: Expr | None, grid: Expr | None) -> Expr | None:
        """pos_mlp=m: timm's RelPosMlp (MaxxViT's "rmlp"), an MLP 2 -> m -> heads with biases on the relative
        coordinates of a window or grid, instead of the table."""
        arg = args.keywords.get("pos_mlp")
        if arg is None:
            return None
        if "cpb" in args.keywords:
            raise ParamsymArgumentError(
                "cpb= and pos_mlp= are two position-bias MLPs (Swin V2's, with a logit scale; timm's MaxxViT's): "
                "give one",
                pos=arg.pos,
            )
        if len(arg.value) != 1:
            raise ParamsymArgumentError(
                "pos_mlp= takes one value, the width of the position-bias MLP (pos_mlp=512)", pos=arg.pos
            )
        value = arg.value[0]
        if value.is_number and not (value.is_integer and value >= 1):
            raise ParamsymArgumentError(
                f"pos_mlp= (the width of the position-bias MLP) must be a positive whole number, not {value}",
                pos=arg.pos,
                hint="timm's MaxxViT uses pos_mlp=512",
            )
        args.constraints += whole_number(value, "pos_mlp= (the width of the position-bias MLP)", arg.pos)
        return value

    def _pos_map(
        self,
        call: Call,
        flow: Flow,
        args: Args,
        window: Expr | None,
        grid: Expr | None,
        sr: Expr | None,
        constraints: list[Constraint],
    ) -> tuple[Expr, Expr] | None:
        """pos_mlp=m without window= or grid=: attention over all the positions, with timm's RelPosMlp over the
        (2H − 1)(2W − 1) relative positions of an H x W map: the input map, or on a sequence the map it lays out row
        by row (map=HxW, T = H·W: timm's ViT-RelPos, whose blocks run on the patches as a sequence)."""
        if window is not None or grid is not None or "volume" in args.keywords:
            if "map" in args.keywords and sr is None:
                raise ParamsymArgumentError(
                    "map=HxW says which map a sequence lays out, for sr= or a position-bias MLP over the whole map: "
                    "with window=, grid= or volume= the position bias is the window's",
                    pos=args.keywords["map"].pos,
                    hint="leave out map=",
                )
            return None
        where = args.keywords["pos_mlp"].pos if "pos_mlp" in args.keywords else args.keywords["tie"].pos
        for key in ("sr", "srpool", "source"):
            if key in args.keywords:
                raise ParamsymArgumentError(
                    f"{key}= does not go with a position-bias MLP over the whole map (pos_mlp= without window=): "
                    f"its bias is over the pairs of the positions themselves",
                    pos=args.keywords[key].pos,
                )
        for flag in ("gpsa", "channels", "per_pair", "causal"):
            if flag in args.flags:
                raise ParamsymArgumentError(
                    f"'{flag}' does not go with a position-bias MLP over the whole map (pos_mlp= without window=)"
                    + ("; per_pair is for windows (swinv2_cr)" if flag == "per_pair" else ""),
                    pos=args.flags[flag].pos,
                )
        rank = flow.shape.rank
        arg = args.keywords.get("map")
        if rank == 2 and "cls" in args.flags:
            raise ParamsymShapeError(
                "'cls' puts a class token before the positions of a sequence: on a map there is none",
                pos=args.flags["cls"].pos,
                hint=f"on the sequence of a class token and the map's positions: {call.name}(heads=..., map=HxW, "
                f"pos_mlp=m, cls)",
            )
        if rank == 2:
            if arg is not None:
                raise ParamsymShapeError(
                    "map=HxW lays a sequence out as a map, but the input is a map already: the position-bias MLP "
                    "is over its own positions",
                    pos=arg.pos,
                    hint="leave out map=",
                )
            spatial = flow.shape.spatial or (None, None)
            if None in spatial:
                raise ParamsymShapeError(
                    f"{call.name}: the position-bias MLP over the whole map needs the map's sides, which nothing "
                    f"before it says",
                    pos=where,
                )
            return (spatial[0], spatial[1])
        if rank != 1:
            raise ParamsymShapeError(
                "pos_mlp= without window= or grid= is a bias over the relative positions of a whole map: the input "
                "must be a map H x W x d, or a sequence with map=HxW",
                pos=where,
                hint=f"write {call.name}(heads=..., map=14x14, pos_mlp=384) on a sequence of 196 positions",
            )
        if arg is None:
            raise ParamsymArgumentError(
                "pos_mlp= (a relative-position bias made by an MLP) on a sequence is a bias over the relative "
                "positions of the map the sequence lays out: give the map with map=HxW (or window=w on a map)",
                pos=where,
                hint=f"write {call.name}(heads=..., map=14x14, pos_mlp=384)",
            )
        if len(arg.value) != 2:
            raise ParamsymArgumentError("map= takes the map's two sides, H x W (map=14x14)", pos=arg.pos)
        sides = (arg.value[0], arg.value[1])
        for side in sides:
            if side.is_number and not (side.is_integer and side >= 1):
                raise ParamsymArgumentError(
                    f"map= (the map's sides) must be positive whole numbers, not {side}", pos=arg.pos
                )
            constraints += whole_number(side, "map= (a side of the map)", arg.pos)
        positions = flow.shape.positions
        first = int("cls" in args.flags)  # a class token before the map's positions (its bias is zero)
        if positions is not None:
            constraints += check_or_defer(
                positions - sides[0] * sides[1] - first,
                "zero",
                f"map={sides[0]}x{sides[1]} has {sides[0] * sides[1]} positions"
                + (" after a class token" if first else "")
                + f", but the sequence has {positions}",
                arg.pos,
                shown=positions,
            )
        return sides

    def _pos_tie(
        self, call: Call, flow: Flow, args: Args, window: Expr | None, grid: Expr | None
    ) -> tuple[Tie | None, AttentionOptions | None]:
        """tie=NAME: the position bias that the attention named NAME (`attn(..., pos_mlp=m) as NAME`) computes,
        used again (timm's ViT-RelPos with shared_rel_pos: one RelPosMlp whose bias every block adds). Its MLP is
        counted where it is written, once."""
        arg = args.keywords.get("tie")
        if arg is None:
            return None, None
        name = arg.value[0].name if len(arg.value) == 1 and isinstance(arg.value[0], sympy.Symbol) else None
        if name is None:
            raise ParamsymArgumentError(
                "tie= takes the name of an attention layer, given with 'attn(..., pos_mlp=m) as NAME'",
                pos=arg.pos,
                hint=f"e.g. {call.name}(heads=6, map=14x14, pos_mlp=384) as rp > ... > {call.name}(heads=6, "
                f"map=14x14, tie=rp)",
            )
        if window is not None or grid is not None:
            raise ParamsymArgumentError(
                "tie= shares the position bias of an attention over the whole map (pos_mlp= without window=): "
                "windows and grids have their own",
                pos=arg.pos,
            )
        if "pos_mlp" in args.keywords:
            raise ParamsymArgumentError(
                f"tie={name} uses the position-bias MLP of {name}: this layer has no pos_mlp= of its own",
                pos=args.keywords["pos_mlp"].pos,
                hint="leave out pos_mlp=",
            )
        target = args.named.get(name)
        if target is None:
            raise ParamsymNameError(
                f"tie={name}: no layer before this one is named '{name}'",
                pos=arg.pos,
                hint="name the attention first: attn(heads=..., map=HxW, pos_mlp=m) as NAME",
            )
        options = target.options
        if isinstance(options, AttentionOptions) and options.rel_buckets is not None and options.pos_tie is None:
            return Tie(name, target.index), options  # T5's relative-position table (relbuckets=B), shared
        if (
            not isinstance(options, AttentionOptions)
            or options.pos_mlp is None
            or options.pos_map is None
            or options.pos_tie is not None
        ):
            raise ParamsymArgumentError(
                f"tie={name}: {target.name} computes no position bias of its own over a whole map (an attn with "
                f"pos_mlp= and no window=) or over a sequence (relbuckets=B) to share",
                pos=arg.pos,
                notes=((f"'{name}' is this {target.name}", target.pos),),
            )
        return Tie(name, target.index), options

    def _check_tie(self, args: Args, heads: Expr, pos_map: tuple[Expr, Expr] | None, tied: AttentionOptions) -> None:
        """The shared bias has a value for each head and each pair of positions: the same heads and map."""
        arg = args.keywords["tie"]
        assert tied.pos_map is not None and pos_map is not None
        pairs = [(heads, tied.heads, "heads")] + [(a, b, "side of the map") for a, b in zip(pos_map, tied.pos_map)]
        if ("cls" in args.flags) != tied.pos_cls:
            raise ParamsymArgumentError(
                "tie=: the shared position bias is "
                + ("for a class token and the map" if tied.pos_cls else "for the map's positions alone")
                + ", this attention's sequence "
                + ("has a class token before them" if "cls" in args.flags else "has none"),
                pos=arg.pos,
            )
        for own, other, what in pairs:
            args.constraints += check_or_defer(
                own - other,
                "zero",
                f"tie=: the shared position bias has {other} as its {what}, this attention {own}",
                arg.pos,
                shown=own,
            )

    def _pooling(self, call: Call, flow: Flow, args: Args, constraints: list[Constraint]) -> Pooling | None:
        """volume=H x W or T x H x W with q=, q_stride=, kv=, kv_stride=, out=, cls, residual, relpos (MViT's pooling
        attention)."""
        keys = ("volume", "q", "q_stride", "kv", "kv_stride")  # out= widens any attention (CoAtNet's too)
        # `cls` with a position-bias MLP over a whole map (pos_mlp= or tie=, no window=): a class token before the map
        given_keys = set(args.keywords)
        whole_map = bool({"pos_mlp", "tie"} & given_keys) and not ({"volume", "window", "grid"} & given_keys)
        given = [key for key in keys if key in args.keywords] + [
            flag for flag in ("cls", "residual", "relpos") if flag in args.flags and not (flag == "cls" and whole_map)
        ]
        if not given:
            return None
        where = args.keywords[given[0]].pos if given[0] in args.keywords else args.flags[given[0]].pos
        if "volume" not in args.keywords:
            raise ParamsymArgumentError(
                f"{given[0]} belongs to pooling attention over a volume of tokens: give the volume with "
                f"volume=T x H x W or H x W (MViT)",
                pos=where,
                hint=f"write {call.name}(heads=..., volume=8x56x56, cls, kv=3x3x3, kv_stride=1x8x8)",
            )
        for key in ("q_stride", "kv_stride"):
            if key in args.keywords and key[:-7] not in args.keywords:
                raise ParamsymArgumentError(
                    f"{key}= is the stride of a pooling: give its kernel with {key[:-7]}=", pos=args.keywords[key].pos
                )
        for other in ("window", "grid", "source", "cpb", "kv_heads"):
            if other in args.keywords:
                raise ParamsymArgumentError(
                    f"{other}= does not go with pooling attention (volume=, MViT's)", pos=args.keywords[other].pos
                )
        for flag in ("causal", "rope", "shift", "pad"):
            if flag in args.flags:
                raise ParamsymArgumentError(
                    f"'{flag}' does not go with pooling attention (volume=, MViT's)", pos=args.flags[flag].pos
                )
        volume_arg = args.keywords["volume"]
        rank = len(volume_arg.value)
        if rank not in (2, 3):
            raise ParamsymArgumentError(
                "volume= takes the sizes of the volume of tokens: T x H x W, or H x W", pos=volume_arg.pos
            )
        axes_text = "T, H and W" if rank == 3 else "H and W"

        def sizes(key: str) -> tuple[Expr, ...] | None:
            arg = args.keywords.get(key)
            if arg is None:
                return None
            if len(arg.value) != rank:
                raise ParamsymArgumentError(
                    f"{key}= takes {rank} sizes, along {axes_text} as volume= ({key}={'x'.join(['3'] * rank)})",
                    pos=arg.pos,
                )
            for value in arg.value:
                if value.is_number and not (value.is_integer and value >= 1):
                    raise ParamsymArgumentError(f"{key}= takes positive whole numbers, not {value}", pos=arg.pos)
                constraints.extend(whole_number(value, f"{key}=", arg.pos))
            return tuple(arg.value)

        one = (sympy.Integer(1),) * rank
        volume = sizes("volume")
        assert volume is not None
        d = known(flow.shape.channels)
        width = args.scalar("out")
        pooling = Pooling(
            volume,
            sizes("q"),
            sizes("q_stride") or one,
            sizes("kv"),
            sizes("kv_stride") or one,
            "cls" in args.flags,
            "residual" in args.flags,
            "relpos" in args.flags,
            None if width is None or expansion.expand(width - d) == 0 else width,
        )
        if flow.shape.rank != 1:
            raise ParamsymShapeError(
                f"volume= reads a sequence (the tokens of the volume, row by row), but the input is "
                f"{flow.shape.describe()}",
                pos=volume_arg.pos,
                hint="make the volume a sequence first: ... > tokens > ...",
            )
        length = axes(flow.shape)[0]
        tokens = sympy.Mul(*volume)
        if length is not None:
            constraints.extend(
                check_or_defer(
                    length - int(pooling.cls) - tokens,
                    "zero",
                    f"volume={'x'.join(str(v) for v in volume)} is {tokens} tokens, but the sequence of {length} "
                    f"positions holds {length - int(pooling.cls)}" + (" after its class token" if pooling.cls else ""),
                    volume_arg.pos,
                )
            )
        for side in ("q", "kv"):
            kernel = getattr(pooling, side)
            if kernel is None:
                continue
            for n, k in zip(volume, kernel):
                constraints.extend(
                    check_or_defer(
                        n + 2 * sympy.floor(k / 2) - k,
                        "nonnegative",
                        f"{side}={'x'.join(str(v) for v in kernel)} is larger than the padded volume",
                        args.keywords[side].pos,
                    )
                )
        return pooling

    def _cpb(self, call: Call, args: Args, window: Expr | None) -> Expr | None:
        """cpb=m: Swin V2's continuous position bias (an MLP 2 -> m -> heads on the relative coordinates)."""
        arg = args.keywords.get("cpb")
        if arg is None:
            return None
        if window is None:
            raise ParamsymArgumentError(
                "cpb= (Swin V2's continuous position bias) is a bias over the relative "
                "positions inside a window: it needs window=w",
                pos=arg.pos,
                hint=f"write {call.name}(heads=..., window=8, cpb=512)",
            )
        if len(arg.value) != 1:
            raise ParamsymArgumentError(
                "cpb= takes one value, the width of the position-bias MLP (cpb=512)", pos=arg.pos
            )
        value = arg.value[0]
        if value.is_number and not (value.is_integer and value >= 1):
            raise ParamsymArgumentError(
                f"cpb= (the width of the position-bias MLP) must be a positive whole number, not {value}",
                pos=arg.pos,
                hint="torchvision's Swin V2 uses cpb=512",
            )
        args.constraints += whole_number(value, "cpb= (the width of the position-bias MLP)", arg.pos)
        # torchvision divides the relative coordinates by w - 1: a 1x1 window gives 0/0
        args.constraints += check_or_defer(
            window - 1,
            "positive",
            f"cpb= normalises the relative coordinates by window - 1: window={window} must be at least 2",
            args.keywords["window"].pos,
            hint="a 1x1 window has no relative positions to normalise",
        )
        return value

    def _cls_rel(self, call: Call, flow: Flow, args: Args) -> tuple[Expr, Expr] | None:
        """clsrel=HxW: BEiT's relative-position bias on a sequence of a class token then an H x W map row by row."""
        arg = args.keywords.get("clsrel")
        if arg is None:
            return None
        if flow.shape.rank is not None and flow.shape.rank != 1:
            raise ParamsymShapeError(
                f"clsrel=HxW is the position bias of a sequence (a class token, then an H x W map row by row), but "
                f"the input has {flow.shape.rank} spatial axes",
                pos=arg.pos,
                hint="flatten the map to a sequence and put the class token first",
            )
        if len(arg.value) != 2:
            raise ParamsymArgumentError("clsrel= takes the map's two sides, H x W (clsrel=14x14)", pos=arg.pos)
        sides = (arg.value[0], arg.value[1])
        for side in sides:
            if side.is_number and not (side.is_integer and side >= 1):
                raise ParamsymArgumentError(
                    f"clsrel= (the map's sides) must be positive whole numbers, not {side}", pos=arg.pos
                )
            args.constraints += whole_number(side, "clsrel= (a side of the map)", arg.pos)
        positions = flow.shape.positions
        if positions is not None:
            args.constraints += check_or_defer(
                positions - 1 - sides[0] * sides[1],
                "zero",
                f"clsrel={sides[0]}x{sides[1]} is a class token and {sides[0] * sides[1]} positions, but the "
                f"sequence has {positions}",
                arg.pos,
                shown=positions,
            )
        return sides

    def _qk_norm(self, args: Args) -> str | None:
        """qk_norm=ln|rms: a norm of the head width on every query and key head (shared by the heads);
        rms_full: over all the query and all the key channels (OLMo-2); ln_per_head: of the head width, a weight for
        every head (Cohere)."""
        arg = args.keywords.get("qk_norm")
        if arg is None:
            return None
        value = arg.value[0] if len(arg.value) == 1 else None
        name = str(value.name) if isinstance(value, sympy.Symbol) else ""
        if name not in QK_NORMS:
            raise ParamsymArgumentError(
                f"qk_norm= takes ln (LayerNorm) or rms (RMSNorm) of the head width, rms_full (RMSNorm over all the "
                f"query and key channels) or ln_per_head (LayerNorm without bias, a weight for each head), not "
                f"{' x '.join(str(v) for v in arg.value)}",
                pos=arg.pos,
                hint="timm's qk_norm=True is qk_norm=ln; ViT-22B's parallel block qk_norm=rms; OLMo-2's q_norm and "
                "k_norm qk_norm=rms_full; Cohere's use_qk_norm qk_norm=ln_per_head",
            )
        return name

    def _softcap(self, call: Call, args: Args) -> Expr | None:
        """softcap=C: the scores soft-capped at C, C·tanh(s/C) (Gemma-2's attn_logit_softcapping=50.0)."""
        arg = args.keywords.get("softcap")
        if arg is None:
            return None
        if len(arg.value) != 1:
            raise ParamsymArgumentError(
                f"softcap= takes one value, the cap of the scores (softcap=50), not "
                f"{' x '.join(str(v) for v in arg.value)}",
                pos=arg.pos,
            )
        value = arg.value[0]
        if value.is_number and not (value.is_real and value > 0):
            raise ParamsymArgumentError(
                f"softcap= (the cap C of the scores, C·tanh(s/C)) must be a positive number, not {value}",
                pos=arg.pos,
                hint=f"write {call.name}(heads=..., softcap=50) (Gemma-2's attn_logit_softcapping)",
            )
        return value

    def _plain_only(self, args: Args, o: AttentionOptions) -> None:
        """clsrel=, qk_norm=, subln, qkv_bias and softcap= are options of attention over all the positions of its
        input (or a sliding window on a sequence)."""
        given = [
            (key, found)
            for key in ("clsrel", "qk_norm", "subln", "qkv_bias", "softcap")
            if (found := args.keywords.get(key) or args.flags.get(key)) is not None
        ]
        if not given:
            return
        others = [
            (key, args.keywords.get(key) or args.flags.get(key))
            for key in ("window", "grid", "volume", "channels", "gpsa", "cpb", "pos_mlp", "cosine", "source")
            if (key in args.keywords or key in args.flags) and not (key == "window" and o.slide is not None)
        ]
        if others:
            key, found = given[0]
            raise ParamsymArgumentError(
                f"{key} is an option of attention over all the positions of its input: it takes no {others[0][0]}",
                pos=found.pos,
            )
        if o.cls_rel is not None and (o.causal or o.sr is not None or o.srpool is not None):
            raise ParamsymArgumentError(
                "clsrel= is the bias of every query/key pair of the sequence: it takes no causal, sr= or srpool=",
                pos=args.keywords["clsrel"].pos,
            )

    def _channels(self, call: Call, args: Args) -> None:
        """`channels`: attention across the channels of each head (DaViT's channel attention), not positions."""
        flag = args.flags.get("channels")
        if flag is None:
            return
        for key in ("kv_heads", "source", "window", "grid", "cpb", "relpos"):
            if key in args.keywords:
                raise ParamsymArgumentError(
                    f"'channels' attends across the channels of each head, over every position: it takes no {key}=",
                    pos=args.keywords[key].pos,
                )
        for other in ("causal", "rope", "shift", "pad"):
            if other in args.flags:
                raise ParamsymArgumentError(
                    f"'channels' attends across the channels of each head: '{other}' is about positions",
                    pos=args.flags[other].pos,
                )

    def _relpos(self, call: Call, args: Args, window: Expr | None, grid: Expr | None, cpb: Expr | None) -> str:
        """relpos=table|none|offsets|axes: the form of a window's position bias (default: Swin's table)."""
        arg = args.keywords.get("relpos")
        if arg is None:
            return "table"
        value = arg.value[0] if len(arg.value) == 1 else None
        name = str(value.name) if isinstance(value, sympy.Symbol) else ""
        if name not in RELPOS:
            raise ParamsymArgumentError(
                f"relpos= takes one of {', '.join(RELPOS)}, not {' x '.join(str(v) for v in arg.value)}",
                pos=arg.pos,
                hint="relpos=table (Swin), none (plain windows), offsets (TinyViT), axes (SAM)",
            )
        if window is None and not (grid is not None and name in ("table", "none")):
            raise ParamsymArgumentError(
                f"relpos= is the position bias inside a window: relpos={name} needs window=w"
                + (" (grid attention takes relpos=table or none)" if grid is not None else ""),
                pos=arg.pos,
                hint=f"write {call.name}(heads=..., window=7, relpos={name})",
            )
        if cpb is not None and name != "table":
            raise ParamsymArgumentError(
                f"cpb= is Swin V2's position bias: it takes the place of the table, and relpos={name} is another",
                pos=arg.pos,
            )
        return name

    def _grid(
        self, call: Call, flow: Flow, args: Args, window: Expr | None, source: tuple[Expr, Expr] | None
    ) -> Expr | None:
        """grid=g: MaxViT's grid attention, across a g x g grid of positions H/g and W/g apart."""
        arg = args.keywords.get("grid")
        if arg is None:
            return None
        pos = arg.pos
        if window is not None:
            raise ParamsymArgumentError(
                "window= and grid= are two kinds of attention (inside w x w windows, across a g x g grid): give one",
                pos=pos,
                hint=f"MaxViT writes them as two layers: {call.name}(heads=..., window=7) > ... > "
                f"{call.name}(heads=..., grid=7)",
            )
        if source is not None:
            raise ParamsymArgumentError(
                "grid= attends across a grid of the map itself: it takes no source=", pos=args.keywords["source"].pos
            )
        for flag in ("shift", "pad"):
            if flag in args.flags:
                raise ParamsymArgumentError(
                    f"'{flag}' belongs to window attention (window=w): grid attention (grid=g, MaxViT's) has "
                    f"no {'shifted grids' if flag == 'shift' else 'padding'}",
                    pos=args.flags[flag].pos,
                )
        if "cpb" in args.keywords:
            raise ParamsymArgumentError(
                "cpb= (Swin V2's continuous position bias) is for window attention: grid attention "
                "(grid=g) has the learned table",
                pos=args.keywords["cpb"].pos,
            )
        if len(arg.value) != 1:
            raise ParamsymArgumentError("grid= takes one value, the side of the grid (grid=7)", pos=pos)
        grid = arg.value[0]
        if grid.is_number and not (grid.is_integer and grid >= 1):
            raise ParamsymArgumentError(
                f"grid= (the side of the grid) must be a positive whole number, not {grid}", pos=pos
            )
        args.constraints += whole_number(grid, "grid= (the side of the grid)", pos)
        if flow.shape.rank is not None and flow.shape.rank != 2:
            what = "a sequence" if flow.shape.rank == 1 else f"an input with {flow.shape.rank} spatial axes"
            raise ParamsymShapeError(
                f"grid= attends across a g x g grid of a map (H x W x d), but the input is {what}",
                pos=pos,
                hint="grid attention (MaxViT) needs a map",
            )
        for size in flow.shape.spatial or ():
            if size is None:
                continue
            args.constraints += check_or_defer(
                size / grid,
                "integer",
                f"grid={grid} does not divide the map's size {size}",
                pos,
                hint="the g x g grid's positions are H/g and W/g apart: g must divide H and W",
            )
        return grid

    def _gpsa(self, call: Call, flow: Flow, args: Args) -> list[Constraint]:
        """gpsa: ConViT's gated positional self-attention, over the T positions of a square (√T x √T)."""
        pos = args.flags["gpsa"].pos
        for key in ("kv_heads", "head_dim", "source", "window", "grid", "cpb", "sr", "srpool"):
            if key in args.keywords:
                raise ParamsymArgumentError(
                    f"'gpsa' (ConViT's gated positional self-attention) has heads of d/h channels for queries, keys "
                    f"and values over the input's own positions: it does not go with {key}=",
                    pos=args.keywords[key].pos,
                )
        for flag in ("causal", "rope", "shift", "pad"):
            if flag in args.flags:
                raise ParamsymArgumentError(
                    f"'gpsa' has its own positional attention: it does not go with '{flag}'", pos=args.flags[flag].pos
                )
        positions = flow.shape.positions
        if positions is None or not positions.is_number:
            return []  # a symbolic T is taken to be a square (checked once it is a number)
        return check_or_defer(
            sympy.sqrt(positions),
            "integer",
            f"'gpsa' places the {positions} positions on a square (ConViT's relative indices), but "
            f"{positions} is not a square number",
            pos,
            shown=positions,
        )

    def _reduction(
        self,
        call: Call,
        flow: Flow,
        args: Args,
        window: Expr | None,
        grid: Expr | None,
        source: tuple[Expr, Expr] | None,
    ) -> tuple[Expr | None, Expr | None]:
        """sr=R (PVT v2, Twins: keys and values from Conv2d(d, d, R, stride R, bias) > LayerNorm of the map) or
        srpool=R (NextViT: from AvgPool1d(R², stride R²) over the positions > BatchNorm), or neither."""
        given = [k for k in ("sr", "srpool") if k in args.keywords]
        if not given:
            return None, None
        if len(given) == 2:
            raise ParamsymArgumentError(
                "sr= and srpool= are two spatial reductions of the keys' source (a strided convolution, an average "
                "pooling): give one",
                pos=args.keywords["srpool"].pos,
            )
        (key,) = given
        arg = args.keywords[key]
        for flag in ("causal", "rope"):
            if flag in args.flags:
                raise ParamsymArgumentError(
                    f"'{flag}' orders queries and keys by position, but {key}= gives the keys the positions of the "
                    f"reduced input: they do not go together",
                    pos=args.flags[flag].pos,
                )
        for other in ("window", "grid", "source"):
            if other in args.keywords:
                raise ParamsymArgumentError(
                    f"{key}= reduces the input that keys and values are projected from: it does not go with {other}=",
                    pos=args.keywords[other].pos,
                )
        if len(arg.value) != 1:
            raise ParamsymArgumentError(f"{key}= takes one value, the reduction ratio R ({key}=2)", pos=arg.pos)
        ratio = arg.value[0]
        if ratio.is_number and not (ratio.is_integer and ratio >= 1):
            raise ParamsymArgumentError(
                f"{key}= (the reduction ratio) must be a positive whole number, not {ratio}", pos=arg.pos
            )
        args.constraints += whole_number(ratio, f"{key}= (the reduction ratio)", arg.pos)
        if key == "sr":
            if "map" in args.keywords and flow.shape.rank == 1:
                return ratio, None  # a sequence laid out as a map: `_sr_map` checks the map
            if flow.shape.rank is not None and flow.shape.rank != 2:
                what = "a sequence" if flow.shape.rank == 1 else f"an input with {flow.shape.rank} spatial axes"
                raise ParamsymShapeError(
                    f"sr= reduces a map (H x W x d) with an R x R convolution of stride R, but the input is {what}",
                    pos=arg.pos,
                    hint="PVT's spatial reduction needs a map (on a sequence of the map's H·W positions, say the map: "
                    "sr=R, map=HxW); srpool=R averages R² consecutive positions of any input",
                )
            for size in flow.shape.spatial or ():
                if size is not None:  # PyTorch's Conv2d refuses a kernel larger than the map
                    args.constraints += check_or_defer(
                        size - ratio + 1,
                        "positive",
                        f"sr={ratio}: the reduction's {ratio}x{ratio} convolution is larger than the map's size {size}",
                        arg.pos,
                        shown=size,
                    )
            return ratio, None
        positions = flow.shape.positions
        if positions is not None:  # AvgPool1d refuses a window larger than its input
            args.constraints += check_or_defer(
                positions - ratio**2 + 1,
                "positive",
                f"srpool={ratio} averages {ratio}² positions, more than the input's {positions}",
                arg.pos,
                shown=positions,
            )
        return None, ratio

    def _sr_map(self, call: Call, flow: Flow, args: Args, sr: Expr | None) -> tuple[Expr, Expr] | None:
        """map=HxW: the map of H x W positions that a sequence of T = H·W positions lays out row by row, which sr=R
        reduces (timm's Twins PCPVT passes its attention the sequence and the map's size). Only with sr= on a
        sequence; the R x R convolution must fit the map."""
        arg = args.keywords.get("map")
        if arg is None:
            return None
        if sr is None:
            raise ParamsymArgumentError(
                "map=HxW says which map a sequence lays out, for the spatial reduction sr=R or a position-bias MLP "
                "over the whole map (pos_mlp=m): it needs one of them",
                pos=arg.pos,
                hint=f"write {call.name}(heads=..., sr=2, map=HxW)",
            )
        if flow.shape.rank is not None and flow.shape.rank != 1:
            raise ParamsymShapeError(
                f"map=HxW lays a sequence out as a map, but the input has {flow.shape.rank} spatial axes: sr= "
                f"reduces a map as it is",
                pos=arg.pos,
                hint="leave out map=",
            )
        if len(arg.value) != 2:
            raise ParamsymArgumentError("map= takes the map's two sides, H x W (map=56x56)", pos=arg.pos)
        sides = (arg.value[0], arg.value[1])
        for side in sides:
            if side.is_number and not (side.is_integer and side >= 1):
                raise ParamsymArgumentError(
                    f"map= (the map's sides) must be positive whole numbers, not {side}", pos=arg.pos
                )
            args.constraints += whole_number(side, "map= (a side of the map)", arg.pos)
            args.constraints += check_or_defer(
                side - sr + 1,
                "positive",
                f"sr={sr}: the reduction's {sr}x{sr} convolution is larger than the map's side {side}",
                arg.pos,
                shown=side,
            )
        positions = flow.shape.positions
        if positions is not None:
            args.constraints += check_or_defer(
                positions - sides[0] * sides[1],
                "zero",
                f"map={sides[0]}x{sides[1]} has {sides[0] * sides[1]} positions, but the sequence has {positions}",
                arg.pos,
                shown=positions,
            )
        return sides

    @staticmethod
    def _memory(args: Args) -> str | None:
        arg = args.keywords.get("source")
        return None if arg is None else reference(arg.value[0])

    def _source(self, call: Call, args: Args) -> tuple[Expr, Expr] | None:
        arg = args.keywords.get("source")
        if arg is None:
            return None
        name = reference(arg.value[0])
        if name is not None:
            return self._named_source(call, args, name)
        if len(arg.value) != 2:
            raise ParamsymArgumentError(
                "source= takes the positions and channels of the keys' source: source=S x c",
                pos=arg.pos,
                hint="e.g. source=77x768 (77 positions of 768 channels)",
            )
        for value, what in zip(arg.value, ("source positions", "source channels")):
            if value.is_number and not (value.is_integer and value >= 1):
                raise ParamsymArgumentError(f"{what} must be a positive whole number, not {value}", pos=arg.pos)
            args.constraints += whole_number(value, what, arg.pos)
        return tuple(arg.value)

    def _named_source(self, call: Call, args: Args, name: str) -> tuple[Expr, Expr]:
        """source=@NAME: cross-attention to the value named NAME (an encoder's output, `... as memory`): keys and
        values are projected from its S positions of c channels, as source=S x c."""
        arg = args.keywords["source"]
        value = args.values.get(name)
        if value is None:
            import difflib  # only for the hint

            close = difflib.get_close_matches(name, sorted(args.values), n=1)
            raise ParamsymNameError(
                f"source=@{name}: no value named '{name}' is computed before this layer",
                pos=arg.pos,
                hint=f"did you mean '@{close[0]}'?"
                if close
                else "name the encoder's output first: ... > rmsnorm as memory > input(T) > ... source=@memory",
            )
        shape = value.flow.shape
        if shape.spatial is None or len(shape.spatial) != 1 or shape.spatial[0] is None or shape.channels is None:
            raise ParamsymShapeError(
                f"source=@{name}: cross-attention reads a sequence S x c, but '{name}' is {shape.describe()}",
                pos=arg.pos,
                notes=((f"'{name}' is given here", value.pos),),
            )
        return (shape.spatial[0], shape.channels)

    def _rel_buckets(self, call: Call, flow: Flow, args: Args, tied: AttentionOptions | None) -> Expr | None:
        """relbuckets=B: T5's relative-position bias, an Embedding(B, h) looked up by the bucket of each query/key
        offset (T5's first layer of the encoder and of the decoder); tie=NAME of such an attention uses its table
        again (T5's other layers get `position_bias` from the first)."""
        arg = args.keywords.get("relbuckets")
        if arg is None:
            if tied is None or tied.rel_buckets is None:
                return None
            if "heads" in args.keywords:
                args.constraints += check_or_defer(
                    args.scalar("heads") - tied.heads,
                    "zero",
                    f"tie=: the shared table of relative-position biases has {tied.heads} heads, this attention "
                    f"{args.scalar('heads')}",
                    args.keywords["tie"].pos,
                )
            self._rel_sequence(call, flow, args, args.keywords["tie"].pos)
            return tied.rel_buckets
        if tied is not None:
            raise ParamsymArgumentError(
                "tie= uses the table of relative-position biases of another attention: this layer has no "
                "relbuckets= of its own",
                pos=arg.pos,
                hint="leave out relbuckets=",
            )
        if len(arg.value) != 1:
            raise ParamsymArgumentError(
                "relbuckets= takes one value, the number of buckets (relbuckets=32)", pos=arg.pos
            )
        value = arg.value[0]
        if value.is_number and not (value.is_integer and value >= 1):
            raise ParamsymArgumentError(
                f"relbuckets= (the number of relative-position buckets) must be a positive whole number, not {value}",
                pos=arg.pos,
                hint="T5 uses relbuckets=32",
            )
        args.constraints += whole_number(value, "relbuckets= (the number of buckets)", arg.pos)
        self._rel_sequence(call, flow, args, arg.pos)
        return value

    @staticmethod
    def _rel_sequence(call: Call, flow: Flow, args: Args, pos: Position) -> None:
        """T5's buckets are over the offsets of a sequence's positions, self-attention only."""
        if flow.shape.rank is not None and flow.shape.rank != 1:
            raise ParamsymShapeError(
                f"relbuckets= buckets the offsets between the positions of a sequence (T5), but the input is "
                f"{flow.shape.describe()}",
                pos=pos,
            )
        for key in ("source", "window", "grid", "volume", "pos_mlp", "cpb", "clsrel", "sr", "srpool", "map"):
            if key in args.keywords:
                raise ParamsymArgumentError(
                    f"relbuckets= (T5's relative-position bias of a self-attention over a sequence) does not go with "
                    f"{key}=",
                    pos=args.keywords[key].pos,
                )
        for flag in ("channels", "gpsa", "cls"):
            if flag in args.flags:
                raise ParamsymArgumentError(
                    f"relbuckets= (T5's relative-position bias) does not go with '{flag}'", pos=args.flags[flag].pos
                )

    # options of attention on a map or a volume, none of which a sliding window on a sequence takes
    _NOT_SLIDING_KEYS = ("source", "grid", "cpb", "relpos", "pos_mlp", "tie", "sr", "srpool", "map", "clsrel", "volume")
    _NOT_SLIDING_FLAGS = ("shift", "pad", "gpsa", "channels", "cosine", "per_pair")

    def _slide(self, call: Call, flow: Flow, args: Args) -> Expr | None:
        """window=W on a sequence T x d: a sliding window, each position attends to itself and the W − 1 positions
        before it (Hugging Face's sliding_window, Mistral v0.1 and Gemma-2's local layers). It needs `causal`:
        the window looks back only."""
        arg = args.keywords.get("window")
        if arg is None or flow.shape.rank != 1:
            return None
        if len(arg.value) != 1:
            raise ParamsymArgumentError(
                f"window= on a sequence takes one value, the positions each one attends to (window=4096), not "
                f"{' x '.join(str(v) for v in arg.value)}",
                pos=arg.pos,
            )
        value = arg.value[0]
        if value.is_number and not (value.is_integer and value >= 1):
            raise ParamsymArgumentError(
                f"window= (the positions of a sliding window) must be a positive whole number, not {value}",
                pos=arg.pos,
            )
        args.constraints += whole_number(value, "window= (the positions of a sliding window)", arg.pos)
        for key in self._NOT_SLIDING_KEYS:
            if key in args.keywords:
                raise ParamsymArgumentError(
                    f"{key}= does not go with a sliding window on a sequence (window= on T x d)",
                    pos=args.keywords[key].pos,
                )
        for flag in self._NOT_SLIDING_FLAGS:
            if flag in args.flags:
                raise ParamsymArgumentError(
                    f"'{flag}' does not go with a sliding window on a sequence (window= on T x d)",
                    pos=args.flags[flag].pos,
                )
        if "causal" not in args.flags:
            raise ParamsymArgumentError(
                "window= on a sequence is a sliding window: each position attends to itself and the W - 1 "
                "positions before it, so it needs 'causal'",
                pos=arg.pos,
                hint=f"write {call.name}(heads=..., window={value}, causal) (Mistral v0.1, Gemma-2's local layers)",
            )
        return value

    def _window_sides(self, call: Call, flow: Flow, args: Args) -> tuple[Expr | None, tuple[Expr, Expr, Expr] | None]:
        """window=w on a map (a square w x w), window=a x b x c (or window=w, a cube) on a volume T x H x W x d:
        (the square's side, None) or (None, the volume's sides)."""
        arg = args.keywords.get("window")
        if arg is None:
            return None, None
        if flow.shape.rank != 3:
            if len(arg.value) != 1:
                raise ParamsymArgumentError(
                    f"window= on a map takes one value, the side of a square window (window=7), not "
                    f"{' x '.join(str(v) for v in arg.value)}",
                    pos=arg.pos,
                    hint="a window of three sides (window=8x7x7) is for a volume T x H x W x d",
                )
            return args.scalar("window"), None
        if len(arg.value) not in (1, 3):
            raise ParamsymArgumentError(
                "window= on a volume T x H x W x d takes its three sides (window=8x7x7), or one for a cube",
                pos=arg.pos,
            )
        for value in arg.value:
            if value.is_number and not (value.is_integer and value >= 1):
                raise ParamsymArgumentError(
                    f"window= (the sides of the window) must be positive whole numbers, not {value}", pos=arg.pos
                )
            args.constraints += whole_number(value, "window= (a side of the window)", arg.pos)
        a, b, c = arg.value * 3 if len(arg.value) == 1 else arg.value
        return None, (a, b, c)

    @staticmethod
    def fitted(sides: tuple[Expr, ...], sizes: tuple[Expr | None, ...]) -> tuple[Expr, ...]:
        """A volume's window as it is used on a map of these sizes: along an axis no longer than the window, the
        window is cut to the axis (torchvision's ShiftedWindowAttention3d; no shift along it then)."""
        return tuple(w if n is None else sympy.Min(w, n) for w, n in zip(sides, sizes))

    def _volume(self, call: Call, flow: Flow, args: Args, volume: tuple[Expr, Expr, Expr]) -> list[Constraint]:
        pos = args.keywords["window"].pos
        constraints: list[Constraint] = []
        if "pad" in args.flags:
            return constraints
        sizes = flow.shape.spatial or ()
        for size, side in zip(sizes, self.fitted(volume, sizes)):
            if size is None:
                continue
            constraints += check_or_defer(
                size / side,
                "integer",
                f"window={'x'.join(str(v) for v in volume)} does not divide the volume's size "
                f"{'x'.join(str(v) for v in sizes)}",
                pos,
                hint="the volume is cut into windows: each side must divide its axis (or be at least as long "
                "as it), or write 'pad' to pad the volume to a multiple of the window (as torchvision does)",
            )
        return constraints

    def _window(self, call: Call, flow: Flow, args: Args, window: Expr) -> list[Constraint]:
        pos = args.keywords["window"].pos
        if flow.shape.rank is not None and flow.shape.rank != 2:
            what = "a sequence" if flow.shape.rank == 1 else f"an input with {flow.shape.rank} spatial axes"
            raise ParamsymShapeError(
                f"window= attends inside w x w windows of a map (H x W x d), but the input is {what}",
                pos=pos,
                hint="window attention (Swin) needs a map",
            )
        constraints = []
        for size in flow.shape.spatial or ():
            if size is None or "pad" in args.flags:
                continue
            constraints += check_or_defer(
                size / window,
                "integer",
                f"window={window} does not divide the map's size {size}",
                pos,
                hint="the map is cut into w x w windows: w must divide H and W, or "
                "write 'pad' to pad the map to a multiple of w (as torchvision does)",
            )
        return constraints

    # ---- quantities
    @staticmethod
    def sizes(layer: Layer) -> dict[str, Expr | None]:
        o = AttentionOptions.of(layer)
        d, e = layer.cin, o.head_dim
        q, kv = o.heads * e, o.kv_heads * e
        positions = layer.in_shape.positions
        S, c = o.source if o.source is not None else (positions, d)
        if o.sr is not None and positions is not None:
            # Conv2d(d, d, R, stride R) without padding: ⌊H/R⌋·⌊W/R⌋ positions
            sides = o.sr_map if o.sr_map is not None else axes(layer.in_shape)  # a map, or the map a sequence lays out
            S = sympy.Mul(*(sympy.floor(known(n) / o.sr) for n in sides))
        elif o.srpool is not None and positions is not None:
            S = sympy.floor(positions / o.srpool**2)  # AvgPool1d(R², stride R²) over the T positions
        sizes = {"d": d, "q": q, "kv": kv, "T": positions, "S": S, "c": c, "padded": positions, "o": layer.cout}
        if o.pad and positions is not None:
            # torchvision pads the bottom and right to a multiple of the window, computes, then cuts
            sides = Attention.used_sides(layer)
            sizes["padded"] = sympy.Mul(*(sympy.ceiling(known(n) / w) * w for n, w in zip(axes(layer.in_shape), sides)))
        return sizes

    @staticmethod
    def used_sides(layer: Layer) -> tuple[Expr, ...]:
        """The sides of the window (or grid) as the layer uses them: a volume's window cut to the map's axes no
        longer than it (`fitted`); each query has their product of keys."""
        o = AttentionOptions.of(layer)
        sides = o.sides
        assert sides is not None
        return Attention.fitted(sides, layer.in_shape.spatial or ()) if o.volume is not None else sides

    @staticmethod
    def position_bias(
        layer: Layer, heads: Expr, window: Expr | None, head_dim: Expr | None = None, queries: Expr | None = 0
    ) -> tuple[Expr, Expr | None]:
        """(params, MACs) of the relative-position bias: V1's table (∏(2·side − 1) rows: a window=w's or grid=g's
        square, a volume's three sides), V2's MLP and logit scales (cpb=m), or timm's MLP with biases on both
        layers (pos_mlp=m): both MLPs run over the (2w - 1)² relative coordinates (w⁴ pairs with per_pair); or
        (relpos=) none, TinyViT's biases per offset, or SAM's tables along the two axes (relpos=axes: (2w−1)·e
        each, and for each of the `queries` positions and each head, its query against the w rows and the w
        columns of its window, 2·w·e MACs)."""
        o = AttentionOptions.of(layer)
        m = o.cpb if o.cpb is not None else o.pos_mlp
        if o.pos_map is not None:  # over the whole map (pos_mlp= without window=); tie=: computed elsewhere, once
            if o.pos_tie is not None or m is None:
                return 0, 0
            table = (2 * known(o.pos_map[0]) - 1) * (2 * known(o.pos_map[1]) - 1)
            return 3 * m + m * heads + heads, table * (2 * m + m * heads)
        if o.volume is not None:
            table = sympy.Mul(*(2 * side - 1 for side in o.volume))
        else:
            table = known(window) ** 4 if o.per_pair else (2 * known(window) - 1) ** 2
        if m is not None:
            return 3 * m + m * heads + heads, table * (2 * m + m * heads)
        if o.relpos == "none":
            return 0, 0
        if o.relpos == "offsets":
            return known(window) ** 2 * heads, 0
        if o.relpos == "axes":
            e = known(o.head_dim if head_dim is None else head_dim)
            return 2 * (2 * known(window) - 1) * e, times(2, queries, known(window), heads, e)
        return table * heads, 0

    @staticmethod
    def pooling_counts(layer: Layer) -> dict[str, Expr]:
        """MViT's pooling attention: the N = (1 +) ∏(volume) positions are projected (d·q + 2·d·kv each); the queries
        and/or the keys and values are pooled (each pooling e·∏k + 2e parameters, q·∏k MACs per pooled token: a
        depthwise convolution on each head's e channels, shared by the heads, then a LayerNorm of e); the
        Nq = (1 +) ∏(queries) queries score the Nk = (1 +) ∏(keys) keys (2·Nq·Nk·q) and are projected to the output's
        D channels (Nq·q·D). With `relpos`, tables of Σ(2·max(q_i, k_i) − 1) vectors of e, and for each query of
        the volume its scores against the table rows of each axis, q·∏(queries)·Σ k_i MACs."""
        o = AttentionOptions.of(layer)
        p = o.pooling
        assert p is not None
        d, e, D = known(layer.cin), o.head_dim, known(layer.cout)
        q, kv = o.heads * e, o.kv_heads * e
        first = int(p.cls)
        N = first + sympy.Mul(*p.volume)
        Nq, Nk = first + sympy.Mul(*p.queries), first + sympy.Mul(*p.keys)
        extra_params = extra_macs = sympy.Integer(0)
        for kernel, tokens, count in ((p.q, p.queries, 1), (p.kv, p.keys, 2)):
            if kernel is not None:
                extra_params += count * (e * sympy.Mul(*kernel) + 2 * e)
                extra_macs += count * q * sympy.Mul(*tokens) * sympy.Mul(*kernel)
        if p.relpos:
            extra_params += p.table * e
            extra_macs += q * sympy.Mul(*p.queries) * sympy.Add(*p.keys)
        params = d * q + 2 * d * kv + q * D + extra_params
        if layer.bias:
            params += q + 2 * kv + D
        macs = N * d * q + 2 * N * d * kv + extra_macs + 2 * Nq * Nk * q + Nq * q * D
        return {"params": params, "macs": macs, "kv_cache": 2 * Nk * kv, "Nq": Nq, "Nk": Nk, "N": N}

    def reduction(self, layer: Layer) -> tuple[Expr, Expr, Expr | None]:
        """(params, state, MACs) of the spatial reduction of the keys' source: sr=R, Conv2d(d, d, R, stride R,
        bias) > LayerNorm(d) on the map (the convolution's R²·d·d MACs at each of the S reduced positions);
        srpool=R, AvgPool1d(R², stride R²) > BatchNorm(d) (no MACs: FlopCounterMode counts none for either)."""
        o = AttentionOptions.of(layer)
        d = known(layer.cin)
        if o.sr is not None:
            return o.sr**2 * d * d + d + 2 * d, sympy.Integer(0), times(self.sizes(layer)["S"], o.sr**2, d, d)
        if o.srpool is not None:
            return 2 * d, 2 * d, sympy.Integer(0)
        return sympy.Integer(0), sympy.Integer(0), sympy.Integer(0)

    def tensor_parallel(self, layer: Layer, params: Expr, t: int, value: Value) -> Expr:
        # Megatron-LM: the heads split over the ranks (query, key and value column-parallel, the output
        # row-parallel); plain projections only
        o = AttentionOptions.of(layer)
        if layer.bias or o.proj_bias:
            refuse_bias_split(t, layer)
        s = self.sizes(layer) if o.pooling is None else None
        plain = None
        if s is not None and all(s[k] is not None for k in ("d", "q", "kv", "c", "o")):
            d, q, kv, c, out = (known(s[k]) for k in ("d", "q", "kv", "c", "o"))
            plain = d * q + 2 * c * kv + q * out
        if plain is None or expansion.expand(params - layer.multiplier * plain, "the attention parameters") != 0:
            raise ParamsymUsageError(
                f"--tp {t}: {layer.name} has parameters besides its query, key, value and output projections",
                pos=layer.pos,
                hint="tensor parallelism is counted for plain attention",
            )
        return split_over(t, layer, params, value, (o.heads, "the heads"), (o.kv_heads, "the key/value heads"))

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        if AttentionOptions.of(layer).pooling is not None:
            pooled = self.pooling_counts(layer)
            d = known(layer.cin)
            return {
                "params": pooled["params"],
                "fan_in": d,
                "macs": pooled["macs"],
                "connections": times(layer.out_shape.elements, d),
                "kv_cache": pooled["kv_cache"],
            }
        s = self.sizes(layer)
        d, q, kv, T, S, c = known(s["d"]), known(s["q"]), known(s["kv"]), s["T"], s["S"], known(s["c"])
        out = known(s["o"])
        o = AttentionOptions.of(layer)
        params = d * q + 2 * c * kv + q * out + (o.heads if o.cosine else 0)
        if layer.bias:
            params += q + (1 if o.qv_bias else 2) * kv + (0 if o.qkv_bias else out)
        reduced_params, reduced_state, reduced_macs = self.reduction(layer)
        params += reduced_params
        if o.proj_bias:
            params += out
        if o.gpsa:  # pos_proj Linear(3, h) with its bias, and one gate per head
            params += 5 * o.heads
        # BEiT's table, the query/key norms and the sub-LN: their MACs are none (FlopCounterMode counts no norm)
        params += o.heads * o.cls_rel_table + o.qk_norm_params + (2 * q if o.subln else 0) + o.rel_bucket_params
        window = o.partition  # w of window=w or g of grid=g: the same counts
        bias_macs: Expr | None = sympy.Integer(0)
        if o.sides is not None:
            # keys and values are computed once for each of the T positions (of the padded map with 'pad');
            # each query sees w² of them (g² with grid=g; a·b·c with window=a x b x c, cut to the map)
            T = keys = s["padded"]
            bias_params, bias_macs = self.position_bias(layer, o.heads, window, queries=T)
            params += bias_params
            per_query = sympy.Mul(*self.used_sides(layer))
        elif o.channels:
            # each head's e x e scores summed over the T positions, then its e channels weighted: 2·T·e·q
            keys, per_query = T, o.head_dim
        else:
            keys, per_query = S, S
            if o.pos_map is not None:  # a position-bias MLP over the whole map (timm's ViT-RelPos)
                bias_params, bias_macs = self.position_bias(layer, o.heads, None)
                params += bias_params
        projections = times(T, d, q), times(2, keys, c, kv), times(T, q, out)
        scores = times(2, T, per_query, q)
        macs = (
            None
            if any(m is None for m in (*projections, scores, bias_macs))
            else sympy.Add(*projections, scores, bias_macs)
        )
        if macs is not None and (o.sr is not None or o.srpool is not None):
            macs = macs + reduced_macs if reduced_macs is not None else None
        if macs is not None and o.gpsa:  # pos_proj on the 3 relative coordinates of every pair of positions
            macs = macs + 3 * o.heads * T * T
        outputs = layer.out_shape.elements
        extra: dict[str, Expr | None] = {"state": reduced_state} if o.srpool is not None else {}
        extra.update(self.training_counts(o, macs, projections, scores, T, keys))
        return {
            **extra,
            "params": params,
            "fan_in": d,
            "macs": macs,
            "connections": times(outputs, d),
            # a sliding window keeps the last W - 1 positions (what the next token attends to besides itself)
            "kv_cache": times(2, keys if o.slide is None else sympy.Min(keys, o.slide - 1), kv),
        }

    @staticmethod
    def training_counts(
        o: AttentionOptions,
        macs: Expr | None,
        projections: tuple[Expr | None, ...],
        scores: Expr | None,
        T: Expr,
        keys: Expr,
    ) -> dict[str, Expr | None]:
        """What training and fused kernels change (core/compute.py): the score and value products are the
        attention core that selective recomputation redoes; with `causal` a fused kernel computes only the
        unmasked pairs, T(T+1)/2 of the T² (with a sliding window of W, each query's last W at most), and skips
        the rest; with an input that needs no gradient the backward leaves out the gradients of the input through
        the query, key and value projections (measured with FlopCounterMode, tests/test_flops.py). Not known for
        the forms whose extra products read constants or other values: a reduction of the keys (sr, srpool),
        keys from another value (source), a position-bias MLP (pos_mlp, cpb) and GPSA's positional projection."""
        counts: dict[str, Expr | None] = {"attention_macs": scores}
        if o.causal and o.sides is None and not o.channels and o.source is None and scores is not None:
            pairs = T * (T + 1) / 2
            if o.slide is not None:
                beyond = sympy.Max(T - o.slide, 0)
                pairs -= beyond * (beyond + 1) / 2
            counts["fused_skip"] = sympy.expand(scores - scores * pairs / (T * keys))
        plain = o.source is None and o.sr is None and o.srpool is None and o.pos_map is None
        plain = plain and o.cpb is None and not o.gpsa
        if not plain:
            counts["backward_first"] = counts["backward_macs"] = None
        elif macs is not None and projections[0] is not None and projections[1] is not None:
            counts["backward_first"] = 2 * macs - projections[0] - projections[1]
        return counts

    def causal_attention(self, layer: Layer) -> CausalAttention | None:
        """Causal self-attention over a sequence, with or without a sliding window: the projections of one
        position and the widths a decode step reads (core/serving.py). None with an option that changes the
        pairs or the projections (a source, a pooling, a reduction, windows on a map, channel attention)."""
        o = AttentionOptions.of(layer)
        plain = (
            o.causal
            and o.source is None
            and o.pooling is None
            and o.sides is None
            and not o.channels
            and o.sr is None
            and o.srpool is None
            and not o.gpsa
            and o.pos_map is None
            and o.cls_rel is None
            and layer.out_shape.rank == 1
        )
        if not plain or layer.cin is None or layer.cout is None:
            return None
        q, kv = o.heads * o.head_dim, o.kv_heads * o.head_dim
        return CausalAttention(layer.cin * q + 2 * layer.cin * kv + q * layer.cout, q, kv, o.slide)

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        o = AttentionOptions.of(layer)
        # in the textbook symbols: C the width, and the layer's own heads and head width
        heads, kv_heads = o.heads, o.kv_heads
        e = t.c / heads if _default_head_dim(layer) else o.head_dim
        q, kv = heads * e, kv_heads * e
        c = t.c if o.source is None else o.source[1]
        out = t.c if o.out is None else t.c_out
        d = t.c if o.out is None else t.c_in
        if o.out is not None:
            e = d / heads if _default_head_dim(layer) else o.head_dim
            q, kv = heads * e, kv_heads * e
            c = d if o.source is None else c
        params = d * q + 2 * c * kv + q * out + (heads if o.cosine else 0)
        if layer.bias:
            params += q + (1 if o.qv_bias else 2) * kv + (0 if o.qkv_bias else out)
        if o.sides is not None or o.pos_map is not None:
            params += self.position_bias(layer, heads, o.partition, head_dim=e)[0]
        if o.pooling is not None:  # in the layer's own numbers: its widths and volume are not the template's
            return expansion.expand(self.pooling_counts(layer)["params"])
        # the reduction works on the input's d channels, the output projection's bias on its `out` channels
        if o.sr is not None:
            params += o.sr**2 * d * d + 3 * d
        if o.srpool is not None:
            params += 2 * d
        if o.proj_bias:
            params += out
        if o.gpsa:
            params += 5 * heads
        params += heads * o.cls_rel_table + qk_norm_params(o.qk_norm, heads, kv_heads, e)
        params += 2 * q if o.subln else 0
        params += 0 if o.rel_buckets is None or o.pos_tie is not None else o.rel_buckets * heads
        return expansion.expand(params)

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        """Every output sees every position (a window or grid attention's field, windows that do not slide, is
        left unknown)."""
        o = AttentionOptions.of(layer)
        return whole_input_field(layer, field) if o.sides is None and o.slide is None else None

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        o = AttentionOptions.of(layer)
        parts = [f", {words(o.heads)} heads of width {words(o.head_dim)}"]
        if o.kv_heads != o.heads:
            parts.append(f", {words(o.kv_heads)} key/value heads")
        if o.source is not None:
            parts.append(
                f", keys from {words(o.source[0])} x {words(o.source[1])}"
                + (f" (the value {o.memory})" if o.memory is not None else "")
            )
        if o.rel_buckets is not None:
            parts.append(
                f", the relative-position buckets of {o.pos_tie.name}"
                if o.pos_tie is not None
                else f", {words(o.rel_buckets)} relative-position buckets"
            )
        if o.window is not None:
            parts.append(
                f", {words(o.window)}x{words(o.window)} windows"
                + (" shifted" if o.shift else "")
                + (", map padded to a multiple" if o.pad else "")
            )
        if o.volume is not None:
            parts.append(
                f", {'x'.join(words(v) for v in o.volume)} windows of the volume"
                + (" shifted" if o.shift else "")
                + (", padded to a multiple" if o.pad else "")
            )
        if o.grid is not None:
            parts.append(f", across a {words(o.grid)}x{words(o.grid)} grid of strided positions")
        if o.cpb is not None:
            parts.append(f", continuous position bias (MLP of width {words(o.cpb)})")
        if o.pooling is not None:
            p = o.pooling
            pooled = [side for side, kernel in (("queries", p.q), ("keys and values", p.kv)) if kernel is not None]
            parts.append(
                f", pooling attention over {'x'.join(words(n) for n in p.volume)} tokens"
                + (" after a class token" if p.cls else "")
                + (f" ({' and '.join(pooled)} pooled)" if pooled else "")
                + (f", out to {words(known(layer.cout))}" if p.width is not None else "")
                + ", relative positions" * p.relpos
                + ", residual pooling" * p.residual
            )

        if o.sr is not None:
            parts.append(f", keys and values from the map reduced {words(o.sr)}x{words(o.sr)}")
        if o.srpool is not None:
            parts.append(f", keys and values from averages of {words(o.srpool**2)} positions")
        if o.gpsa:
            parts.append(", gated positional attention (ConViT)")
        if o.proj_bias:
            parts.append(", bias on the output projection only")
        if o.pos_cls:
            parts.append(", after a class token")
        if o.pos_tie is not None:
            parts.append(f", the position bias of {o.pos_tie.name}")
        elif o.pos_mlp is not None:
            parts.append(
                f", relative-position MLP of width {words(o.pos_mlp)}" + (" on every pair" if o.per_pair else "")
            )
        if o.cosine:
            parts.append(", cosine attention")
        if o.out is not None:
            parts.append(f", {words(o.out)} output channels")
        if o.partition is not None and o.relpos != "table":
            parts.append(
                {
                    "none": ", no position bias",
                    "offsets": ", a bias per offset",
                    "axes": ", relative positions by axis",
                }[o.relpos]
            )
        if o.slide is not None:
            parts.append(f", sliding window of {words(o.slide)}")
        if o.softcap is not None:
            parts.append(f", scores soft-capped at {words(o.softcap)}")
        parts += [", causal"] * o.causal
        if o.rope:
            parts.append(", rotary positions" + ("" if o.rotary is None else f" on {words(o.rotary)} of each head"))
        parts += [", ALiBi"] * o.alibi + [", across channels"] * o.channels
        if o.cls_rel is not None:
            parts.append(
                f", relative positions of a class token and a {words(o.cls_rel[0])}x{words(o.cls_rel[1])} map (BEiT)"
            )
        if o.qk_norm is not None:
            parts.append(
                f", {'LayerNorm' if o.qk_norm.startswith('ln') else 'RMSNorm'} on the queries and keys"
                + {"rms_full": " (all channels)", "ln_per_head": " (a weight per head)"}.get(o.qk_norm, "")
            )
        if o.subln:
            parts.append(", LayerNorm on the heads' output")
        if o.qv_bias:
            return "".join(parts) + ", with query, value and output biases"
        if o.qkv_bias:
            return "".join(parts) + ", with query, key and value biases"
        return "".join(parts) + (", with bias" if layer.bias else "")

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        if AttentionOptions.of(layer).pooling is not None:
            return self._explain_pooling(layer, counts, w)
        s, o = self.sizes(layer), AttentionOptions.of(layer)
        d, q, kv, c = s["d"], s["q"], s["kv"], s["c"]
        lines = [
            f"Queries: {w(o.heads)} heads of width {w(o.head_dim)}, q = {w(q)} channels; "
            f"the query projection has {w.product(d, q)} weights and the output projection "
            f"{w.product(q, s['o'])}" + (f", to {w(s['o'])} output channels." if o.out is not None else ".")
        ]
        grouping = (
            f"{w(o.kv_heads)} key/value heads, each shared by {w(o.heads / o.kv_heads)} query heads "
            f"(grouped-query attention)"
            if o.kv_heads != o.heads
            else "one key/value head per query head"
        )
        source = f"the {w(c)} channels of the source" if o.source is not None else f"the {w(d)} input channels"
        lines.append(
            f"Keys and values: {grouping}, kv = {w(kv)} channels each, projected from {source}: "
            f"two projections of {w.product(c, kv)} weights each."
        )
        if o.qv_bias:
            lines.append(
                f"Biases on the queries, {w(q)}, the values, {w(kv)}, and the output, {w(s['o'])}; none on the keys "
                f"(timm's Swin V2 keeps a key bias of zeros as a buffer, not a parameter)."
            )
        elif o.qkv_bias:
            lines.append(
                f"Biases on the queries, {w(q)}, and on the keys and values, {w(kv)} each; none on the output "
                f"projection (Qwen2's)."
            )
        elif layer.bias:
            lines.append(
                f"Biases on every projection: {w(q)} for the queries, {w(kv)} each for the keys and values, "
                f"{w(s['o'])} for the output."
            )
        if o.sr is not None or o.srpool is not None:
            lines.append(self._explain_reduction(layer, w))
        if o.rotary is not None:
            lines.append(
                f"Rotary positions on the first {w(o.rotary * o.head_dim)} of the {w(o.head_dim)} channels of each "
                f"query and key head (rope={_decimal(o.rotary)}); the others pass unturned. No parameters, no MACs "
                f"(the turn is element-wise, its tables are not learned): the counts are those of rope on the whole "
                f"head."
            )
        if o.alibi:
            lines.append(
                "ALiBi: each score is biased by minus a fixed slope per head times the distance between the query "
                "and the key; no parameters, no MACs, no change to the KV cache."
            )
        if o.proj_bias:
            lines.append(f"A bias on the output projection only (none on queries, keys, values): {w(d)}.")
        if o.cls_rel is not None:
            h_, w_ = o.cls_rel
            lines.append(
                f"Relative positions (BEiT, a paramsym extension): the sequence is a class token, then a "
                f"{w(h_)}x{w(w_)} map row by row; a learned table per head of {w(o.cls_rel_table)} biases "
                f"((2H-1)(2W-1) offsets on the map, and class-to-token, token-to-class, class-to-class) added to "
                f"the scores: {w.product(o.cls_rel_table, o.heads)} parameters, no MACs."
            )
        if o.qk_norm in ("ln", "rms"):
            kind = "A LayerNorm (weight and bias)" if o.qk_norm == "ln" else "An RMSNorm (weight)"
            lines.append(
                f"{kind} of the head width {w(o.head_dim)} on every query head and another on every key head, "
                f"shared by the heads: {w(o.qk_norm_params)} parameters, no MACs."
            )
        elif o.qk_norm == "rms_full":
            lines.append(
                f"An RMSNorm (weight) over all {w(q)} query channels and another over all {w(kv)} key channels "
                f"(OLMo-2's q_norm and k_norm): {w(o.qk_norm_params)} parameters, no MACs."
            )
        elif o.qk_norm == "ln_per_head":
            lines.append(
                f"A LayerNorm without bias of the head width {w(o.head_dim)} on every query and key head, each head "
                f"with a weight of its own (Cohere's use_qk_norm): {w(o.qk_norm_params)} parameters, no MACs."
            )
        if o.subln:
            lines.append(
                f"A LayerNorm of the {w(q)} channels of the heads' output before the output projection (BEiT-3's "
                f"sub-LN): {w(2 * cast(Any, q))} parameters, no MACs."
            )
        if o.gpsa:
            T = s["T"]
            lines.append(
                f"Gated positional self-attention (ConViT, a paramsym extension): a second attention per head from "
                f"the 3 relative coordinates (dx, dy, dx²+dy²) of every pair of positions on the √T x √T square, "
                f"through a Linear(3 -> {w(o.heads)}) with bias, mixed with the content attention by a learned "
                f"gate per head: {w(5 * o.heads)} parameters, {w(times(3, o.heads, T, T))} MACs."
            )
        window = o.window
        if o.grid is not None:
            g = o.grid
            table = (
                f"a learned relative-position bias per head over the grid's offsets: "
                f"{w.product((2 * g - 1) ** 2, o.heads)} parameters"
                if o.pos_mlp is None
                else "a relative-position bias over the grid's offsets (below)"
            )
            spatial = layer.in_shape.spatial or ()
            apart = (
                f"{w(spatial[0] / g)} rows and {w(spatial[1] / g)} columns apart"
                if len(spatial) == 2 and None not in spatial
                else f"H/{w(g)} rows and W/{w(g)} columns apart"
            )
            if o.relpos == "none":
                table = "no position bias"
            lines.append(
                f"Grid attention (MaxViT, a paramsym extension): each position attends to the "
                f"{w(g**2)} positions of its {w(g)}x{w(g)} grid, {apart}; {table}."
            )
        if o.pos_map is not None:
            h_side, w_side = o.pos_map
            table = (2 * known(h_side) - 1) * (2 * known(w_side) - 1)
            if o.pos_tie is not None:
                lines.append(
                    f"The relative-position bias over the {w(h_side)}x{w(w_side)} map is the one that the attention "
                    f"'{o.pos_tie.name}' computes (tie={o.pos_tie.name}, timm's shared_rel_pos; a paramsym "
                    f"extension): no parameters or MACs here, they are counted there, once."
                )
            else:
                bias_params, bias_macs = self.position_bias(layer, o.heads, None)
                lines.append(
                    f"Every position attends to all the positions, with a relative-position bias made by an MLP "
                    f"(timm's RelPosMlp, ViT-RelPos; a paramsym extension): Linear(2->{w(o.pos_mlp)}) > ReLU > "
                    f"Linear({w(o.pos_mlp)}->{w(o.heads)}), both with biases, over the {w(table)} relative positions "
                    f"of the {w(h_side)}x{w(w_side)} map: {w(bias_params)} parameters, and {w(bias_macs)} MACs each "
                    f"time the layer runs."
                )
        elif o.pos_mlp is not None:
            side, m = known(o.partition), o.pos_mlp
            bias_params, bias_macs = self.position_bias(layer, o.heads, side)
            lines.append(
                f"The relative-position bias is made by an MLP (timm's RelPosMlp, MaxxViT's 'rmlp'; a paramsym "
                f"extension) instead of the table: Linear(2->{w(m)}) > ReLU > Linear({w(m)}->{w(o.heads)}), both "
                f"with biases, over "
                + (
                    f"the log-spaced offsets of each of the {w(side**4)} query/key pairs of the {w(side)}x{w(side)} "
                    f"window (timm's swinv2_cr)"
                    if o.per_pair
                    else f"the {w((2 * side - 1) ** 2)} relative positions of the {w(side)}x{w(side)} "
                    f"{'window' if o.window is not None else 'grid'}"
                )
                + f": {w(bias_params)} parameters, and {w(bias_macs)} MACs each time the layer runs."
            )
        if o.cosine:
            lines.append(
                f"Cosine attention (Swin V2): the scores are cosines of the queries and keys times a learned "
                f"logit scale per head, {w(o.heads)} parameters."
            )
        if o.rel_buckets is not None and o.pos_tie is not None:
            lines.append(
                f"T5's relative-position bias: the table of {o.pos_tie.name} (tie={o.pos_tie.name}), looked up "
                f"again; its parameters are counted there."
            )
        elif o.rel_buckets is not None:
            lines.append(
                f"T5's relative-position bias (relbuckets={w(o.rel_buckets)}): a table of {w(o.rel_buckets)} "
                f"buckets of query/key offsets x {w(o.heads)} heads, {w.product(o.rel_buckets, o.heads)} "
                f"parameters, added to the scores by lookup (no MACs)."
            )
        if window is not None and o.cpb is None and o.pos_mlp is None and o.relpos == "table":
            lines.append(
                f"A learned relative-position bias per head over a {w(window)}x{w(window)} window: "
                f"{w.product((2 * window - 1) ** 2, o.heads)} parameters."
            )
        elif window is not None and o.pos_mlp is not None:
            pass  # explained above
        elif window is not None and o.relpos == "none":
            lines.append("No position bias (relpos=none): the scores are the queries against the keys alone.")
        elif window is not None and o.relpos == "offsets":
            lines.append(
                f"A learned bias per head for each offset (|rows|, |columns|) between two positions of a "
                f"{w(window)}x{w(window)} window (relpos=offsets, TinyViT's attention biases): "
                f"{w.product(window**2, o.heads)} parameters; adding them costs no MACs."
            )
        elif window is not None and o.relpos == "axes":
            _, macs = self.position_bias(layer, o.heads, window, queries=s["padded"])
            lines.append(
                f"Decomposed relative positions (relpos=axes, SAM's): a table of {w(2 * window - 1)} offsets x "
                f"{w(o.head_dim)} channels along each axis, {w.product(2, 2 * window - 1, o.head_dim)} "
                f"parameters; each query meets the rows and the columns of its window through them, "
                f"{w(macs)} MACs."
            )
        elif window is not None and o.cpb is not None:
            m, table = o.cpb, (2 * window - 1) ** 2
            lines.append(
                f"A continuous position bias (Swin V2, a paramsym extension): an MLP of {w(m)} hidden units "
                f"maps each of the {w(table)} relative positions of the {w(window)}x{w(window)} window to one "
                f"bias per head, {w.product(2, m)} weights + {w(m)} biases + {w.product(m, o.heads)} "
                f"weights, and cosine attention has a logit scale per head, {w(o.heads)}: "
                f"{w(self.position_bias(layer, o.heads, window)[0])} parameters; the MLP runs over the "
                f"table each time, {w(self.position_bias(layer, o.heads, window)[1])} MACs."
            )
            if layer.bias and not o.qv_bias:
                lines.append(
                    "(torchvision's Swin V2 zeroes the key bias in its forward pass; the parameter exists and counts.)"
                )
        if o.volume is not None:
            lines += self._explain_volume(layer, s, w)
        if window is not None and o.pad and expansion.expand(known(s["padded"]) - known(s["T"])) == 0:
            lines.append(f"Padding: none, the map is a multiple of {w(window)} already.")
        elif window is not None and o.pad:
            lines.append(
                f"Padding: the map is padded with zeros at the bottom and right to a multiple of "
                f"{w(window)}, {w(s['T'])} -> {w(s['padded'])} positions, which are projected and "
                f"attended to, then cut off (torchvision's shifted_window_attention)."
            )
        if window is not None and o.shift and self._one_window(layer):
            lines.append(
                "One window covers the map, so the shift does nothing (torchvision sets it to 0 there); "
                "it changes no count anyway."
            )
        lines.append(f"{w(counts.params)} parameters.")
        if counts.macs is not None and o.volume is not None:
            lines.append(
                f"MACs: the projections, then for each of the {w(s['padded'])} queries the scores against the "
                f"{w(sympy.Mul(*self.used_sides(layer)))} positions of its window and the weighted sum of their "
                f"values: 2 x queries x keys x q, masked pairs included."
            )
        elif counts.macs is not None and o.channels:
            lines.append(
                f"Channel attention (DaViT's, a paramsym extension): in each head the {w(o.head_dim)} channels "
                f"attend to each other, their scores summed over all {w(s['T'])} positions, then each position's "
                f"channels are mixed by them: 2 x T x head width x q, {w(times(2, s['T'], o.head_dim, q))} MACs "
                f"besides the projections."
            )
        elif counts.macs is not None:
            side = o.partition
            keys = (
                f"the {w(o.window**2)} positions of its window"
                if o.window is not None
                else f"the {w(side**2)} positions of its grid"
                if side is not None
                else f"all {w(s['S'])} key positions"
            )
            queries = s["padded"] if window is not None else s["T"]
            lines.append(
                f"MACs: the projections, then for each of the {w(queries)} queries the scores against "
                f"{keys} and the weighted sum of their values: 2 x queries x keys x q, masked pairs "
                f"included, {w(times(2, queries, side**2 if side is not None else s['S'], q))}."
            )
        if o.softcap is not None:
            lines.append(
                f"Soft-capped scores (a paramsym extension): each score s becomes {w(o.softcap)}·tanh(s/"
                f"{w(o.softcap)}) before the softmax (Gemma-2's attn_logit_softcapping); no parameters, and no MACs "
                f"(element-wise: FlopCounterMode counts none for tanh)."
            )
        if counts.kv_cache is not None and o.slide is not None:
            lines.append(
                f"Sliding window (a paramsym extension): each position attends to itself and the "
                f"{w(o.slide - 1)} positions before it; no parameters. The MACs above count every pair, masked "
                f"ones included, as FlopCounterMode counts a masked attention."
            )
            lines.append(
                f"KV cache: the keys and values of the last {w(o.slide - 1)} positions at most (what the next "
                f"position attends to besides itself, as Hugging Face's sliding-window cache keeps), "
                f"{w(counts.kv_cache)} values."
            )
        elif counts.kv_cache is not None:
            lines.append(f"KV cache: the keys and values of every position, {w(counts.kv_cache)} values.")
        lines.append(f"Fan-in: each projection unit sees the {w(d)} channels of one position.")
        return lines

    def _explain_pooling(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        """The lines of MViT's pooling attention (volume=, q=, kv=)."""
        o = AttentionOptions.of(layer)
        p = o.pooling
        assert p is not None
        n = self.pooling_counts(layer)
        d, e, D = known(layer.cin), o.head_dim, known(layer.cout)
        q = o.heads * e
        lines = [
            f"The sequence is {'a class token and ' if p.cls else ''}the {'x'.join(w(v) for v in p.volume)} tokens of "
            f"a volume, row by row: {w(n['N'])} positions.",
            f"Projections: queries, keys and values of {w(q)} channels each ({w(o.heads)} heads of {w(e)}) from the "
            f"{w(d)} input channels, {w.product(d, 3 * q)} weights; the output projection {w.product(q, D)}"
            + (", with biases." if layer.bias else "."),
        ]
        for side, kernel, tokens, count in (("queries", p.q, p.queries, 1), ("keys and values", p.kv, p.keys, 2)):
            if kernel is None:
                continue
            lines.append(
                f"Pooling of the {side}: a depthwise {'x'.join(w(k) for k in kernel)} convolution without bias on "
                f"each head's {w(e)} channels (shared by the heads, padding half the kernel), then a LayerNorm of "
                f"{w(e)}: {w(e * sympy.Mul(*kernel) + 2 * e)} parameters"
                + (" each, twice" if count == 2 else "")
                + f"; the volume becomes {'x'.join(w(v) for v in tokens)}"
                + (" (the class token is not pooled)." if p.cls else ".")
            )
        if p.relpos:
            lines.append(
                f"Relative positions (MViT v2): a table of 2·max(q, k) − 1 vectors of {w(e)} along each axis, "
                f"{w.product(p.table, e)} parameters; each query of the volume is scored against the rows of "
                f"each axis, {w(q * sympy.Mul(*p.queries) * sympy.Add(*p.keys))} MACs."
            )
        if p.residual:
            lines.append("Residual pooling: the pooled queries are added to the attention's output (no count).")
        lines += [
            f"{w(counts.params)} parameters.",
            f"MACs: the projections of the {w(n['N'])} positions, the poolings, then each of the {w(n['Nq'])} queries "
            f"scores the {w(n['Nk'])} keys and sums their values, 2 x {w(n['Nq'])} x {w(n['Nk'])} x {w(q)}, and the "
            f"output projection of the {w(n['Nq'])} queries.",
            f"KV cache: the pooled keys and values, {w(n['kv_cache'])} values.",
            f"Fan-in: each projection unit sees the {w(d)} channels of one position.",
        ]
        return lines

    def _explain_volume(self, layer: Layer, s: dict[str, Expr | None], w: Words) -> list[str]:
        """The lines of a window on a volume (window=a x b x c): its table, the window as used, the padding."""
        o = AttentionOptions.of(layer)
        volume, used = known_sides(o.volume), self.used_sides(layer)
        table = sympy.Mul(*(2 * v - 1 for v in volume))
        lines = [
            f"A learned relative-position bias per head over a {'x'.join(w(v) for v in volume)} window "
            f"({' x '.join(w(2 * v - 1) for v in volume)} offsets): {w.product(table, o.heads)} parameters."
        ]
        if any(expansion.expand(a - b) != 0 for a, b in zip(volume, used)):
            lines.append(
                f"Along an axis no longer than the window the window is cut to the axis (torchvision's "
                f"ShiftedWindowAttention3d, with no shift along it): the windows are "
                f"{'x'.join(w(v) for v in used)}."
            )
        if o.pad and expansion.expand(known(s["padded"]) - known(s["T"])) != 0:
            lines.append(
                f"Padding: the volume is padded with zeros at the end of each axis to a multiple of the window, "
                f"{w(s['T'])} -> {w(s['padded'])} positions, which are projected and attended to, then cut off "
                f"(torchvision's shifted_window_attention_3d)."
            )
        return lines

    def _explain_reduction(self, layer: Layer, w: Words) -> str:
        o, s = AttentionOptions.of(layer), self.sizes(layer)
        d, S = s["d"], s["S"]
        params, _, macs = self.reduction(layer)
        if o.sr is not None:
            r = o.sr
            return (
                f"Spatial reduction (PVT v2, Twins; a paramsym extension): keys and values are projected from the "
                f"map{self._laid_out(o, w)} reduced by a {w(r)}x{w(r)} convolution of stride {w(r)} (with bias) and a "
                f"LayerNorm, "
                f"{w(S)} positions: {w.product(r**2, d, d)} weights and {w(d)} biases for the convolution, "
                f"{w.product(2, d)} for the LayerNorm, {w(params)} parameters"
                + (f", {w(macs)} MACs." if macs is not None else ".")
            )
        r = known(o.srpool)
        return (
            f"Spatial reduction by pooling (NextViT; a paramsym extension): keys and values are projected from "
            f"averages of {w(r**2)} consecutive positions and a BatchNorm, {w(S)} positions: {w(params)} "
            f"parameters and {w.product(2, d)} values of state (running mean and variance); the averages are no MACs."
        )

    @staticmethod
    def _laid_out(o: AttentionOptions, w: Words) -> str:
        """Which map a sequence lays out (map=HxW), in the explanation of sr=."""
        if o.sr_map is None:
            return ""
        return f" that the sequence lays out row by row ({w(o.sr_map[0])}x{w(o.sr_map[1])})"

    @staticmethod
    def _one_window(layer: Layer) -> bool:
        """One window covers the (padded) map along an axis: torchvision sets that axis's shift to 0."""
        w = AttentionOptions.of(layer).window
        sizes = [
            sympy.ceiling(n / w) * w if AttentionOptions.of(layer).pad else n
            for n in layer.in_shape.spatial or ()
            if n is not None
        ]
        return any((w - n).is_nonnegative for n in sizes)

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = AttentionOptions.of(layer)
        if o.pooling is not None:
            return _pooling_spec(layer, num)
        if o.volume is not None:
            return _volume_spec(layer, num)
        if o.partition is not None:
            return _window_spec(layer, num)
        if o.rel_buckets is not None:
            raise ParamsymUsageError(
                f"{layer.name} at {layer.pos}: T5's relative-position buckets (relbuckets=, or tie= to them) have "
                f"no PyTorch export"
            )
        if o.channels:
            d, heads, e = num(layer.cin), num(o.heads), num(o.head_dim)
            return TorchSpec("ChannelAttention", (d, heads), {"head_dim": e, "bias": layer.bias})
        if o.source is not None:
            raise ParamsymUsageError(
                f"{layer.name} at {layer.pos}: cross-attention (source=) needs a second input "
                f"(the keys' source), which an exported nn.Sequential cannot take"
            )
        d, heads, kv_heads, e = num(layer.cin), num(o.heads), num(o.kv_heads), num(o.head_dim)
        reduction: dict[str, Any] = (
            {"sr": num(o.sr)} if o.sr is not None else {"srpool": num(o.srpool)} if o.srpool is not None else {}
        )
        if o.proj_bias:
            reduction["proj_bias"] = True
        if o.sr_map is not None:
            reduction["sr_map"] = (num(o.sr_map[0]), num(o.sr_map[1]))
        if o.pos_map is not None:  # a tied one has no MLP: it gets the bias of its Shared module
            if o.pos_tie is None:
                reduction["pos_mlp"] = num(o.pos_mlp)
            reduction["pos_map"] = (num(o.pos_map[0]), num(o.pos_map[1]))
            if o.pos_cls:
                reduction["pos_cls"] = True
        if o.gpsa:
            return TorchSpec("GatedPositionalAttention", (d, heads), {"bias": layer.bias, "proj_bias": o.proj_bias})
        extras = {**reduction, **_export_extras(o, num)}
        if kv_heads == heads and e * heads == d and not o.rope and not o.alibi and not extras:
            mha = TorchSpec("nn.MultiheadAttention", (d, heads), {"bias": layer.bias, "batch_first": True})
            return TorchSpec("SelfAttention", (mha,), {"causal": o.causal})
        extra: dict[str, Any] = {"rope": True} if o.rope else {}
        if o.rotary is not None:
            extra["rotary_dim"] = num(o.rotary * o.head_dim)
        if o.alibi:
            extra["alibi"] = True
        return TorchSpec(
            "GroupedQueryAttention",
            (d, heads),
            {"kv_heads": kv_heads, "head_dim": e, "bias": layer.bias, "causal": o.causal, **extra, **extras},
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        o = AttentionOptions.of(layer)
        if o.windowed:
            refuse_keras(layer, "window attention (Swin) has no Keras layer")
        if o.slide is not None:
            refuse_keras(layer, "a sliding window on a sequence (window= with causal) has no Keras attention layer")
        if o.softcap is not None:
            refuse_keras(layer, "soft-capped scores (softcap=) have no Keras attention layer")
        if o.pooling is not None:
            refuse_keras(layer, "pooling attention (MViT) has no Keras layer")
        if o.grid is not None:
            refuse_keras(layer, "grid attention (MaxViT) has no Keras layer")
        if o.channels:
            refuse_keras(layer, "channel attention (DaViT) has no Keras layer")
        if o.source is not None:
            refuse_keras(layer, "cross-attention (source=) needs a second input, which the exported model cannot take")
        if o.rel_buckets is not None:
            refuse_keras(layer, "T5's relative-position buckets (relbuckets=) have no Keras layer")
        if o.sr is not None or o.srpool is not None:
            refuse_keras(layer, "spatial-reduction attention (sr=, srpool=) has no Keras layer")
        if o.gpsa:
            refuse_keras(layer, "ConViT's gated positional self-attention (gpsa) has no Keras layer")
        if o.pos_map is not None:
            refuse_keras(
                layer, "a position-bias MLP over the whole map (pos_mlp=, tie=; timm's RelPosMlp) has no Keras layer"
            )
        if o.proj_bias:
            refuse_keras(layer, "Keras' MultiHeadAttention has biases on all projections or none (projbias)")
        for what, given in (
            ("an output width of its own (out=)", o.out is not None),
            ("biases on the queries and values only (qv_bias)", o.qv_bias),
            ("biases on the queries, keys and values only (qkv_bias)", o.qkv_bias),
            ("cosine attention (cosine)", o.cosine),
            ("BEiT's relative positions (clsrel=)", o.cls_rel is not None),
            ("a norm on the queries and keys (qk_norm=)", o.qk_norm is not None),
            ("a LayerNorm on the heads' output (subln)", o.subln),
        ):
            if given:
                refuse_keras(layer, f"{what} has no Keras attention layer")
        if o.alibi:
            refuse_keras(layer, "ALiBi's biases on the scores (alibi) have no Keras attention layer")
        if o.rope:
            refuse_keras(
                layer,
                "rotary positions (rope) have no layer in keras.layers (KerasHub's RotaryEmbedding is another package)",
            )
        d, heads, kv_heads, e = num(layer.cin), num(o.heads), num(o.kv_heads), num(o.head_dim)
        assert layer.in_shape.spatial is not None  # a sequence or a map: build refuses a vector
        spatial = [num(n) for n in layer.in_shape.spatial]
        if kv_heads == heads:
            attention = KerasSpec(
                "MultiHeadAttention", {"num_heads": heads, "key_dim": e, "use_bias": layer.bias}, call="self"
            )
        else:
            attention = KerasSpec(
                "GroupQueryAttention",
                {"head_dim": e, "num_query_heads": heads, "num_key_value_heads": kv_heads, "use_bias": layer.bias},
                call="self",
            )
        if o.causal:
            attention.call = "causal"
        if len(spatial) == 1:
            return [attention]
        positions = 1
        for n in spatial:
            positions *= n
        return [
            KerasSpec("Reshape", {"target_shape": (positions, d)}),
            attention,
            KerasSpec("Reshape", {"target_shape": (*spatial, d)}),
        ]

    def channels_first_output(self, module: Any) -> bool:
        return type(module).__name__ == "PyramidVisionTransformerStage"  # (N, C, H, W) from any input

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        name = type(module).__name__
        if name in ("SelfAttention", "GroupedQueryAttention"):
            return _own_text(module, len(ctx.in_shape) == 3)
        if name == "WindowAttention":
            return _window_text(module, ctx)
        if name in ("ShiftedWindowAttention3d", "WindowAttention3d"):
            return _volume_text(module, ctx)
        if name == "PoolingAttention":
            return _pooling_text(module, ctx)

        if name in ("GPSA", "GatedPositionalAttention"):
            return _gpsa_text(module, ctx)
        if name == "PyramidVisionTransformerStage":
            return _pvt_stage_text(module, ctx)
        if name in ("ChannelAttention", "ChannelAttentionV2"):
            return _channel_text(module, ctx)
        if name in ("SpatialBlock", "ChannelBlock"):
            return _timm_davit_block_text(module, ctx)
        if name == "NestLevel":
            return _timm_nest_level_text(module, ctx)
        if type(module).__module__ == "timm.layers.attention":
            return _timm_text(module, ctx)
        if type(module).__module__ == "timm.models.beit" and name == "Attention":
            return _timm_beit_text(module, ctx)
        if name == "SwinTransformerBlock":
            return _timm_swin_block_text(module, ctx)
        if name == "PartitionAttentionCl":
            return _timm_partition_text(module, ctx)
        if name == "Attention2d":
            return _timm_attention2d_text(module, ctx)
        if name == "RelPosAttention":
            return _timm_relpos_attention_text(module, ctx)
        if name == "SwinTransformerV2Block":
            return _timm_swinv2_block_text(module, ctx)
        if name == "ParallelScalingBlock":
            return _timm_parallel_block_text(module, ctx)
        if name == "SwinTransformerV2CrBlock":
            return _timm_swinv2_cr_block_text(module, ctx)
        if name == "TinyVitBlock":
            return _timm_tiny_vit_block_text(module, ctx)
        if type(module).__module__ == "timm.models.vision_transformer_sam":
            return _timm_sam_block_text(module, ctx)
        if name == "PartitionAttentionLayer":
            side = tuple(ctx.in_shape[2:])
            return partition_attention(module, ctx.node_name, side)[0]
        if name == "MultiheadAttention" or (hasattr(module, "embed_dim") and hasattr(module, "in_proj_bias")):
            return _mha_text(module, ctx)
        if hasattr(module, "multihead_attn"):
            return _decoder_text(module, ctx)
        return _encoder_text(module, ctx)


def _own_text(module: Any, sequence: bool = True) -> str:
    """paramsym's own exported modules (torch_modules.SelfAttention, GroupedQueryAttention) read back (`sequence`:
    on (N, C, T), where a position-bias MLP over a map names its map)."""
    if type(module).__name__ == "SelfAttention":
        mha = module.attention
        heads, kv_heads, head_dim, width = mha.num_heads, mha.num_heads, mha.head_dim, mha.embed_dim
        bias = mha.in_proj_bias is not None
    else:
        heads, kv_heads, head_dim, width = module.heads, module.kv_heads, module.head_dim, module.q.in_features
        bias = module.q.bias is not None
        proj_bias = not bias and module.o.bias is not None
        if module.k.in_features != width:
            raise ImportRefused(
                f"GroupedQueryAttention with keys of {module.k.in_features} channels (cross-attention) "
                f"takes a second input, which the import does not follow"
            )
    parts = [f"heads={heads}"]
    if kv_heads != heads:
        parts.append(f"kv_heads={kv_heads}")
    if head_dim * heads != width:
        parts.append(f"head_dim={head_dim}")
    for key in ("sr", "srpool"):
        if getattr(module, key, 0):
            parts.append(f"{key}={getattr(module, key)}")
    if getattr(module, "sr_map", None):
        parts.append("map={}x{}".format(*module.sr_map))
    if getattr(module, "bias_from", None):
        raise ImportRefused(
            "GroupedQueryAttention uses the position bias that another module computes (share_position_bias), "
            "which the import does not follow"
        )
    if getattr(module, "pos_mlp", None) is not None:
        parts += ["map={}x{}".format(*module.pos_map)] * sequence
        parts.append(f"pos_mlp={module.pos_mlp[0].out_features}")
        parts += ["cls"] * bool(getattr(module, "pos_cls", False))
    extras: list[str] = []
    if type(module).__name__ == "GroupedQueryAttention":
        if bias and module.k.bias is None:  # qv_bias: no key bias
            bias, extras = False, ["qv_bias"]
        elif bias and module.o.bias is None:  # qkv_bias: no output bias
            bias, extras = False, ["qkv_bias"]
        extras += ["cosine"] * (getattr(module, "logit_scale", None) is not None)
        extras += [f"out={module.o.out_features}"] * (module.o.out_features != width)
        extras += ["projbias"] * proj_bias
        if getattr(module, "cls_rel", None) is not None:
            extras.append("clsrel={}x{}".format(*module.cls_rel))
        q_norm = getattr(module, "q_norm", None)
        if q_norm is not None:
            form = getattr(module, "qk_norm_form", None) or type(q_norm).__name__  # LayerNorm, RMSNorm
            extras.append("qk_norm=" + {v: k for k, v in _TORCH_QK_NORMS.items()}.get(form, "ln"))
        extras += ["subln"] * (getattr(module, "subln", None) is not None)
        extras += [f"window={module.window}"] * bool(getattr(module, "window", None))
        cap = getattr(module, "score_cap", None)
        if cap is not None:
            extras.append(f"softcap={int(cap) if float(cap).is_integer() else cap}")
    parts += ["bias"] * bias + ["causal"] * bool(module.causal)
    rotary_dim = getattr(module, "rotary_dim", None)
    if getattr(module, "rope", False):
        parts.append("rope" if rotary_dim is None else f"rope={fraction_text(rotary_dim, head_dim)}")
    parts += ["alibi"] * bool(getattr(module, "alibi", False))
    return f"attn({', '.join(parts + extras)})"


def _decimal(value: Expr) -> str:
    """A number as a decimal where it ends (4.8), else as SymPy writes it."""
    if isinstance(value, sympy.Rational):
        return fraction_text(int(value.p), int(value.q))
    return str(value)


def fraction_text(part: int, whole: int) -> str:
    """part/whole as the program writes it: a decimal where it ends (0.25), else the fraction (5/12)."""
    value = Fraction(part, whole)
    denominator = value.denominator
    while denominator % 2 == 0:
        denominator //= 2
    while denominator % 5 == 0:
        denominator //= 5
    if denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    return f"{Decimal(value.numerator) / Decimal(value.denominator):f}"


def _qk_norm_text(q_norm: Any, k_norm: Any, head_dim: int, where: str) -> list[str]:
    """timm's q_norm and k_norm as `qk_norm=ln|rms` (a LayerNorm with weight and bias, or an RMSNorm with a weight,
    of the head width, the same kind on both); none: []. Any other norm is refused."""
    kinds = [type(q_norm).__name__, type(k_norm).__name__]
    if kinds == ["Identity", "Identity"]:
        return []
    form = None
    if kinds[0] == kinds[1]:
        shapes = [
            (
                tuple(n.normalized_shape) if hasattr(n, "normalized_shape") else None,
                getattr(n, "weight", None) is not None,
                getattr(n, "bias", None) is not None,
            )
            for n in (q_norm, k_norm)
        ]
        if kinds[0] == "LayerNorm" and all(s == ((head_dim,), True, True) for s in shapes):
            form = "ln"
        elif kinds[0] in ("RmsNorm", "RMSNorm") and all(s[:2] == ((head_dim,), True) and not s[2] for s in shapes):
            form = "rms"
    if form is None:
        raise ImportRefused(
            f"{where} normalises its queries and keys with {kinds[0]} and {kinds[1]}: the language's attn has "
            f"qk_norm=ln (LayerNorm with weight and bias) or qk_norm=rms (RMSNorm with a weight) of the head width "
            f"{head_dim} on both"
        )
    return [f"qk_norm={form}"]


def _timm_text(module: Any, ctx: ImportContext) -> str:
    """timm's Attention (timm.layers.attention): qkv and proj Linear layers, num_heads heads of head_dim; q_norm and
    k_norm (`qk_norm=ln|rms`), a LayerNorm `norm` on the heads' output (timm's scale_norm: `subln`)."""
    where = f"{ctx.node_name} (Attention)"
    if getattr(module, "gate", None) is not None:
        raise ImportRefused(f"{where} gates its output (gate), which the language's attn has no counterpart for")
    norms = _qk_norm_text(module.q_norm, module.k_norm, module.head_dim, where)
    norm: Any = getattr(module, "norm", None)
    if type(norm).__name__ != "Identity":
        attn_dim = module.num_heads * module.head_dim
        if not (
            type(norm).__name__ == "LayerNorm"
            and tuple(norm.normalized_shape) == (attn_dim,)
            and norm.weight is not None
            and norm.bias is not None
        ):
            raise ImportRefused(
                f"{where} normalises its output with {type(norm).__name__}: the language's attn has subln, a "
                f"LayerNorm (weight and bias) of the heads' {attn_dim} channels"
            )
        norms.append("subln")
    qkv, proj = module.qkv, module.proj
    width, heads, head_dim = qkv.in_features, module.num_heads, module.head_dim
    if proj.out_features != width or qkv.out_features != 3 * heads * head_dim:
        raise ImportRefused(f"{where} gives {proj.out_features} channels from {width}; attn keeps the width")
    if qkv.bias is not None and proj.bias is None:
        raise ImportRefused(
            f"{where} has biases in qkv only; the language's attn has biases in all four projections, in the output "
            f"projection only (projbias) or in none"
        )
    parts = (
        [f"heads={heads}"]
        + [f"head_dim={head_dim}"] * (heads * head_dim != width)
        + ["bias"] * (qkv.bias is not None)
        + ["projbias"] * (qkv.bias is None and proj.bias is not None)
        + norms
    )
    return f"attn({', '.join(parts)})"


def _timm_beit_text(module: Any, ctx: ImportContext) -> str:
    """timm's BEiT Attention (timm.models.beit): qkv without bias, then optional q_bias and v_bias parameters (the
    key's bias a buffer of zeros, all three concatenated into the bias of F.linear: `qv_bias`), a table of
    (2H-1)(2W-1) + 3 biases per head indexed by relative_position_index on a class token and an H x W map
    (`clsrel=HxW`), proj with its bias."""
    where = f"{ctx.node_name} (Attention)"
    qkv, proj = module.qkv, module.proj
    heads = module.num_heads
    width = qkv.in_features
    attn_dim = proj.in_features
    head_dim = attn_dim // heads
    node = ctx.node
    shared = node.kwargs.get("shared_rel_pos_bias") if node is not None else None
    if shared is None and node is not None and len(node.args) > 1:
        shared = node.args[1]
    if shared is not None:
        raise ImportRefused(
            f"{where} adds a relative-position bias shared by the blocks (shared_rel_pos_bias), which the language's "
            f"attn has no counterpart for"
        )
    if (
        qkv.bias is not None
        or proj.bias is None
        or qkv.out_features != 3 * attn_dim
        or proj.out_features != width
        or head_dim * heads != attn_dim
        or getattr(module, "qkv_bias_separate", False)
    ):
        raise ImportRefused(
            f"{where} is not BEiT's attention as the language writes it (qkv without bias, biases on q and v or none, "
            f"proj with its bias)"
        )
    parts = [f"heads={heads}"] + [f"head_dim={head_dim}"] * (attn_dim != width)
    if module.q_bias is not None:
        parts.append("qv_bias")
    else:
        parts.append("projbias")
    table = module.relative_position_bias_table
    if table is not None:
        rows, cols = module.window_size
        entries = (2 * rows - 1) * (2 * cols - 1) + 3
        (shape,) = ctx.arg_shapes[:1] or (ctx.in_shape,)  # (N, T, d)
        if tuple(table.shape) != (entries, heads) or len(shape) != 3 or shape[1] != rows * cols + 1:
            raise ImportRefused(
                f"{where} has a relative-position table of {tuple(table.shape)} for a {rows}x{cols} window, on a "
                f"sequence of {shape[1:2]} positions: the language's clsrel=HxW is a class token and the H x W map"
            )
        parts.append(f"clsrel={rows}x{cols}")
    return f"attn({', '.join(parts)})"


def _timm_swin_block_text(block: Any, ctx: ImportContext) -> str:
    """timm's SwinTransformerBlock on an (N, H, W, C) map: window attention with its relative-position table
    (shifted, padded to a multiple of the window), then the MLP, each a residual after a LayerNorm."""
    from . import for_torch_module, identity_name  # the block's own modules are read by their kinds

    where = f"{ctx.node_name} (SwinTransformerBlock)"
    attn, mlp = block.attn, block.mlp
    (size,) = set(block.window_size) if len(set(block.window_size)) == 1 else (None,)
    table = getattr(attn, "relative_position_bias_table", None)
    parts = [type(m).__name__ for m in (block.norm1, block.norm2)]
    if (
        size is None
        or table is None
        or tuple(table.shape) != ((2 * size - 1) ** 2, attn.num_heads)
        or parts != ["LayerNorm", "LayerNorm"]
        or type(getattr(mlp, "norm", None)).__name__ != "Identity"
        or type(mlp.act).__name__ != "GELU"
        or (attn.qkv.bias is None) != (attn.proj.bias is None)
        or (mlp.fc1.bias is None) != (mlp.fc2.bias is None)
    ):
        raise ImportRefused(
            f"{where} is not Swin's block as the language writes it (square windows, a table of "
            f"(2w - 1)^2 biases per head, LayerNorms, a GELU MLP)"
        )
    (shape,) = ctx.arg_shapes[:1] or ((),)
    height, width = shape[1:3] if len(shape) == 4 else (size, size)
    options = [f"heads={attn.num_heads}", f"window={size}"]
    options += ["shift"] * any(block.shift_size) + ["pad"] * bool(height % size or width % size)
    options += ["bias"] * (attn.qkv.bias is not None)

    def dropped(module: Any) -> str:
        kind = for_torch_module(module)
        text = kind.from_torch(module, ctx) if kind is not None else None
        if text is None:
            raise ImportRefused(f"{where}: its {type(module).__name__} has no counterpart in the language")
        return f" > {text}" if text and text != identity_name() else ""

    bias = ", bias" if mlp.fc1.bias is not None else ""
    return (
        f"res(ln > attn({', '.join(options)}){dropped(block.drop_path1)}) > res(ln > dense(->{mlp.fc1.out_features}"
        f"{bias}) > gelu > dense(->{mlp.fc2.out_features}{bias}){dropped(block.drop_path2)})"
    )


def _timm_parallel_block_text(block: Any, ctx: ImportContext) -> str:
    """timm's ParallelScalingBlock (ViT-22B's parallel block): one LayerNorm, then attention and the MLP side by
    side, summed, layer-scaled, added to the input. Its one Linear `in_proj` computes the MLP's fc1 and the
    queries, keys and values together, the same products as separate ones (the MLP's bias a parameter of its own,
    `mlp_bias`, when in_proj has none): `res(ln > add(attn | dense > gelu > dense) > layerscale)`. The fused output
    projection (one Linear of the attention's and the MLP's values side by side) is refused; normalised queries and
    keys are `qk_norm=ln|rms`."""
    from . import for_torch_module, identity_name  # the block's norm, layer scale and drop path are read by their kinds

    where = f"{ctx.node_name} (ParallelScalingBlock)"
    norm, in_proj = block.in_norm, block.in_proj
    width = in_proj.in_features
    hidden = in_proj.out_features - 3 * width
    heads, head_dim = block.num_heads, block.head_dim
    attn_out, mlp_out = block.attn_out_proj, block.mlp_out_proj
    norms = _qk_norm_text(block.q_norm, block.k_norm, head_dim, where)
    norm_kind = for_torch_module(norm)
    norm_text = norm_kind.from_torch(norm, ctx) if norm_kind is not None else None
    if (
        block.out_proj is not None
        or not norm_text
        or type(block.mlp_act).__name__ != "GELU"
        or getattr(block.mlp_act, "approximate", "none") != "none"
        or heads * head_dim != width
        or hidden <= 0
        or list(block.in_split) != [hidden, width, width, width]
        or (attn_out.in_features, attn_out.out_features, mlp_out.in_features, mlp_out.out_features)
        != (width, width, hidden, width)
        or (attn_out.bias is None) != (mlp_out.bias is None)
    ):
        raise ImportRefused(
            f"{where} is not the parallel block as the language writes it (a LayerNorm, attention and a GELU MLP "
            f"side by side with output projections of their own, after a norm)"
        )
    qkv_bias, proj_bias = in_proj.bias is not None, attn_out.bias is not None
    mlp_bias = qkv_bias or getattr(block, "mlp_bias", None) is not None
    if qkv_bias and not proj_bias:
        raise ImportRefused(
            f"{where} has biases in qkv only; the language's attn has biases in all four projections, in the output "
            f"projection only (projbias) or in none"
        )

    def after(module: Any) -> str:
        if type(module).__name__ in ("Identity", "Dropout"):
            return ""
        kind = for_torch_module(module)
        text = kind.from_torch(module, ctx) if kind is not None else None
        if text is None:
            raise ImportRefused(f"{where}: its {type(module).__name__} has no counterpart in the language")
        return f" > {text}" if text and text != identity_name() else ""

    options = [f"heads={heads}"] + ["bias"] * qkv_bias + ["projbias"] * (proj_bias and not qkv_bias) + norms
    fc1 = f"dense(->{hidden}{', bias' if mlp_bias else ''})"
    fc2 = f"dense(->{width}{', bias' if proj_bias else ''})"
    return (
        f"res({norm_text} > add(attn({', '.join(options)}) | {fc1} > gelu > {fc2}){after(block.ls)}"
        f"{after(block.drop_path)})"
    )


def known_sides(volume: tuple[Expr, Expr, Expr] | None) -> tuple[Expr, Expr, Expr]:
    """A volume's window that the caller made sure of (`AttentionOptions.volume` of a layer with one)."""
    assert volume is not None
    return volume


def _channel_text(module: Any, ctx: ImportContext) -> str:
    """Channel attention (paramsym's torch_modules.ChannelAttention, timm's davit.ChannelAttention and V2): qkv and
    proj Linear layers, heads of head_dim channels each attending to each other over all positions."""
    where = f"{ctx.node_name} ({type(module).__name__})"
    qkv: Any = getattr(module, "qkv", None)
    proj: Any = getattr(module, "proj", None)
    heads = getattr(module, "num_heads", getattr(module, "groups", None))
    if type(qkv).__name__ != "Linear" or type(proj).__name__ != "Linear" or not isinstance(heads, int):
        raise ImportRefused(f"{where} is not a channel attention of qkv and proj Linear layers")
    width = qkv.in_features
    e, rest = divmod(qkv.out_features, 3 * heads)
    if rest or proj.in_features != heads * e or proj.out_features != width:
        raise ImportRefused(f"{where} gives {proj.out_features} channels from {width}; attn keeps the width")
    if (qkv.bias is None) != (proj.bias is None):
        raise ImportRefused(
            f"{where} has biases in {'proj' if qkv.bias is None else 'qkv'} only; the language's attn has biases "
            f"in all four projections or none"
        )
    parts = [f"heads={heads}"] + [f"head_dim={e}"] * (heads * e != width) + ["bias"] * (qkv.bias is not None)
    return f"attn({', '.join(parts + ['channels'])})"


def _timm_davit_block_text(block: Any, ctx: ImportContext) -> str:
    """timm's DaViT SpatialBlock or ChannelBlock on an (N, C, H, W) map: x + cpe1(x) (a depthwise KxK convolution
    with a bias, then GELU or nothing), x + attn(ln(x)), x + cpe2(x), then x + mlp(ln(x)) (none without ffn).
    SpatialBlock's attention runs inside w x w windows (padded at the bottom and right to a multiple of w), with
    qkv and proj and no position bias (`window=w, relpos=none`); ChannelBlock's is channel attention
    (`channels`)."""
    where = f"{ctx.node_name} ({type(block).__name__})"
    attn, mlp = block.attn, block.mlp
    (shape,) = ctx.arg_shapes[:1] or ((),)
    width = attn.qkv.in_features
    if len(shape) != 4 or shape[1] != width:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not (N, {width}, H, W)")
    height, across = shape[2:]

    def position(cpe: Any) -> str:
        conv = cpe.proj
        k = tuple(conv.kernel_size)
        act = type(cpe.act).__name__
        if (
            type(conv).__name__ != "Conv2d"
            or conv.in_channels != width
            or conv.out_channels != width
            or conv.groups != width
            or len(set(k)) != 1
            or k[0] % 2 == 0
            or tuple(conv.padding) != (k[0] // 2,) * 2
            or tuple(conv.stride) != (1, 1)
            or tuple(conv.dilation) != (1, 1)
            or conv.padding_mode != "zeros"
            or act not in ("Identity", "GELU")
            or (act == "GELU" and cpe.act.approximate != "none")
        ):
            raise ImportRefused(
                f"{where}: a position encoding other than DaViT's ConvPosEnc (a depthwise convolution of odd size "
                f"keeping the map, then GELU or nothing)"
            )
        bias = ", bias" if conv.bias is not None else ""
        return f"res(dwconv{k[0]}x{k[0]}(pad={k[0] // 2}{bias}){' > gelu' if act == 'GELU' else ''})"

    if type(block).__name__ == "SpatialBlock":
        w = tuple(block.window_size)
        if len(set(w)) != 1 or tuple(getattr(attn, "window_size", w)) != w:
            raise ImportRefused(f"{where} has windows of {w}: the language has square w x w windows")
        heads, size = attn.num_heads, w[0]
        if attn.qkv.out_features != 3 * width or attn.proj.in_features != width or attn.proj.out_features != width:
            raise ImportRefused(f"{where}: its WindowAttention does not keep the width {width}")
        if (attn.qkv.bias is None) != (attn.proj.bias is None):
            raise ImportRefused(f"{where} has a bias on {'proj' if attn.qkv.bias is None else 'qkv'} only")
        options = [f"heads={heads}"] + ["bias"] * (attn.qkv.bias is not None) + [f"window={size}", "relpos=none"]
        options += ["pad"] * bool(height % size or across % size)
        attention = f"attn({', '.join(options)})"
    else:
        attention = _channel_text(attn, ctx)
    norm = _layer_norm(block.norm1, width)
    if norm is None:
        raise ImportRefused(f"{where}: a norm other than nn.LayerNorm over its {width} channels")
    parts = [position(block.cpe1), f"res({norm} > {attention}{_dropped(block.drop_path1, where, ctx)})"]
    parts.append(position(block.cpe2))
    if mlp is not None:
        mlp_norm = _layer_norm(block.norm2, width)
        if mlp_norm is None or type(getattr(mlp, "norm", None)).__name__ not in ("Identity", "NoneType"):
            raise ImportRefused(f"{where}: an MLP other than LayerNorm > Linear > activation > Linear")
        mlp_text = _mlp_text(mlp.fc1, mlp.act, mlp.fc2, width, where)
        parts.append(f"res({mlp_norm} > {mlp_text}{_dropped(block.drop_path2, where, ctx)})")
    return " > ".join(parts)


def _timm_nest_level_text(level: Any, ctx: ImportContext) -> str:
    """timm's NestLevel on an (N, C, H, W) map: its pool (none, or ConvPool: a 3x3 convolution with a bias keeping
    the map, a LayerNorm over the channels, a 3x3 max pool of stride 2 padded by 1), then the map cut into b x b
    blocks (blockify), a learned vector added to each position (pos_embed: `posembed(H·W)` on the map), and
    transformer layers inside each block: x + attn(ln(x)) with qkv and proj and no position bias (`window=b,
    relpos=none`), x + mlp(ln(x)); then the blocks put back (deblockify)."""
    where = f"{ctx.node_name} (NestLevel)"
    (shape,) = ctx.arg_shapes[:1] or ((),)
    out = ctx.out_shape
    if len(shape) != 4 or len(out) != 4:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not (N, C, H, W)")
    width, height, across = out[1:]
    b = level.block_size
    table = level.pos_embed
    if height != across or height % b or tuple(table.shape) != (1, (height // b) ** 2, b * b, width):
        raise ImportRefused(
            f"{where}: a {height}x{across} map in blocks of {b}x{b} with a position table of {tuple(table.shape)}; "
            f"the language reads square maps that the blocks divide, with one vector for each position"
        )
    parts = []
    pool = level.pool
    if type(pool).__name__ == "ConvPool":
        conv, norm, maxpool = pool.conv, pool.norm, pool.pool
        if (
            type(conv).__name__ != "Conv2d"
            or tuple(conv.kernel_size) != (3, 3)
            or tuple(conv.stride) != (1, 1)
            or tuple(conv.padding) != (1, 1)
            or tuple(conv.dilation) != (1, 1)
            or conv.groups != 1
            or conv.padding_mode != "zeros"
            or conv.out_channels != width
            or _layer_norm(norm, width) is None
            or type(maxpool).__name__ != "MaxPool2d"
            or (maxpool.kernel_size, maxpool.stride, maxpool.padding, maxpool.dilation) not in ((3, 2, 1, 1),)
            or maxpool.ceil_mode
        ):
            raise ImportRefused(
                f"{where}: a pool other than NesT's ConvPool (3x3 convolution padded by 1, LayerNorm, 3x3 max pool "
                f"of stride 2 padded by 1)"
            )
        bias = ", bias" if conv.bias is not None else ""
        parts += [f"conv3x3(->{width}, pad=1{bias})", _layer_norm(norm, width) or "ln", "maxpool3x3(stride=2, pad=1)"]
    elif type(pool).__name__ != "Identity":
        raise ImportRefused(f"{where}: its pool {type(pool).__name__} has no counterpart (NesT's ConvPool or none)")
    parts.append(f"posembed({height * across})")
    for i, layer in enumerate(level.transformer_encoder):
        here = f"{where} layer {i}"
        attn, mlp = layer.attn, layer.mlp
        norms = [_layer_norm(n, width) for n in (layer.norm1, layer.norm2)]
        heads = attn.num_heads
        if (
            type(layer).__name__ != "TransformerLayer"
            or None in norms
            or attn.qkv.in_features != width
            or attn.qkv.out_features != 3 * width
            or width % heads
            or attn.proj.in_features != width
            or attn.proj.out_features != width
            or (attn.qkv.bias is None) != (attn.proj.bias is None)
            or type(getattr(mlp, "norm", None)).__name__ not in ("Identity", "NoneType")
        ):
            raise ImportRefused(
                f"{here}: a layer other than NesT's TransformerLayer (LayerNorms, qkv and proj keeping the width, "
                f"with biases on both or neither, an MLP without a norm)"
            )
        options = [f"heads={heads}"] + ["bias"] * (attn.qkv.bias is not None) + [f"window={b}", "relpos=none"]
        parts.append(f"res({norms[0]} > attn({', '.join(options)}){_dropped(layer.drop_path1, here, ctx)})")
        mlp_text = _mlp_text(mlp.fc1, mlp.act, mlp.fc2, width, here)
        parts.append(f"res({norms[1]} > {mlp_text}{_dropped(layer.drop_path2, here, ctx)})")
    return " > ".join(parts)


def _dropped(module: Any, where: str, ctx: ImportContext) -> str:
    """` > droppath(...)` for a block's DropPath (nothing for an identity), read by its kind."""
    from . import for_torch_module, identity_name  # the block's own modules are read by their kinds

    kind = for_torch_module(module)
    text = kind.from_torch(module, ctx) if kind is not None else None
    if text is None:
        raise ImportRefused(f"{where}: its {type(module).__name__} has no counterpart in the language")
    return f" > {text}" if text and text != identity_name() else ""


def _mlp_text(fc1: Any, act: Any, fc2: Any, width: int, where: str) -> str:
    """`dense(->F, bias) > act > dense(->d, bias)` of an MLP's two Linear layers and its activation module."""
    from . import for_torch_module
    from .activations import Activation

    kind = for_torch_module(act)
    if (
        type(fc1).__name__ != "Linear"
        or type(fc2).__name__ != "Linear"
        or fc1.in_features != width
        or fc2.in_features != fc1.out_features
        or fc2.out_features != width
        or (fc1.bias is None) != (fc2.bias is None)
        or not isinstance(kind, Activation)
        or kind.identity
        or kind.key in ("dropout", "softmax")
        or any(True for _ in act.parameters())
    ):
        raise ImportRefused(
            f"{where}: an MLP other than Linear > activation > Linear keeping {width} channels, with biases in "
            f"both Linear layers or neither, has no counterpart"
        )
    bias = ", bias" if fc1.bias is not None else ""
    return f"dense(->{fc1.out_features}{bias}) > {kind.from_torch(act, None)} > dense(->{width}{bias})"


def _layer_norm(norm: Any, width: int) -> str | None:
    """`ln` (or `ln(nobias)`) for torch's LayerNorm over the last axis of `width` channels; None otherwise."""
    if type(norm).__name__ != "LayerNorm" or tuple(norm.normalized_shape) != (width,) or norm.weight is None:
        return None
    return "ln" if norm.bias is not None else "ln(nobias)"


def _conv_norm_text(conv: Any, bn: Any, width: int) -> str | None:
    """`dwconvKxK(pad=K//2) > bn` for a depthwise KxK convolution without bias (stride 1, odd K, padded to keep
    the map) then BatchNorm2d; None for anything else."""
    k = tuple(getattr(conv, "kernel_size", ()))
    if (
        type(conv).__name__ != "Conv2d"
        or type(bn).__name__ != "BatchNorm2d"
        or conv.in_channels != width
        or conv.out_channels != width
        or conv.groups != width
        or len(set(k)) != 1
        or k[0] % 2 == 0
        or tuple(conv.padding) != (k[0] // 2,) * 2
        or tuple(conv.stride) != (1, 1)
        or tuple(conv.dilation) != (1, 1)
        or conv.bias is not None
        or conv.padding_mode != "zeros"
        or bn.num_features != width
        or not bn.affine
        or not bn.track_running_stats
    ):
        return None
    return f"dwconv{k[0]}x{k[0]}(pad={k[0] // 2}) > bn"


def _timm_tiny_vit_block_text(block: Any, ctx: ImportContext) -> str:
    """timm's TinyVitBlock on an (N, H, W, C) map: x + attn(x), window attention inside w x w windows (padded at
    the bottom and right to a multiple of w; one window when the map is w x w), its Attention a LayerNorm, then
    qkv and proj with biases and TinyViT's attention biases (one per head for each offset |rows|, |columns| in
    the window: `relpos=offsets`); then the local convolution (depthwise KxK > BatchNorm2d) and x + mlp(x),
    the MLP a LayerNorm, Linear, activation, Linear."""
    where = f"{ctx.node_name} (TinyVitBlock)"
    attn, mlp, w = block.attn, block.mlp, block.window_size
    width = block.dim
    heads, key_dim = attn.num_heads, attn.key_dim
    qkv, proj = attn.qkv, attn.proj
    norm = _layer_norm(attn.norm, width)
    biases = getattr(attn, "attention_biases", None)
    if (
        norm is None
        or attn.val_dim != key_dim
        or tuple(attn.resolution) != (w, w)
        or biases is None
        or tuple(biases.shape) != (heads, w * w)
        or qkv.in_features != width
        or qkv.out_features != 3 * heads * key_dim
        or proj.in_features != heads * key_dim
        or proj.out_features != width
        or (qkv.bias is None) != (proj.bias is None)
    ):
        raise ImportRefused(
            f"{where} is not TinyViT's block as the language writes it (a LayerNorm, qkv and proj with values as "
            f"wide as the keys, heads x w² attention biases over a w x w window)"
        )
    local = _conv_norm_text(block.local_conv.conv, block.local_conv.bn, width)
    mlp_norm = _layer_norm(mlp.norm, width)
    if local is None or mlp_norm is None:
        raise ImportRefused(
            f"{where}: its local convolution (depthwise, odd kernel, no bias, then BatchNorm2d) or its MLP's "
            f"LayerNorm is not the one TinyViT's block has"
        )
    (shape,) = ctx.arg_shapes[:1] or ((),)
    if len(shape) != 4 or shape[3] != width:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not (N, H, W, {width})")
    height, across = shape[1:3]
    options = [f"heads={heads}"] + [f"head_dim={key_dim}"] * (heads * key_dim != width)
    options += ["bias"] * (qkv.bias is not None) + [f"window={w}", "relpos=offsets"]
    options += ["pad"] * bool(height % w or across % w)
    return (
        f"res({norm} > attn({', '.join(options)}){_dropped(block.drop_path1, where, ctx)}) > {local} "
        f"> res({mlp_norm} > {_mlp_text(mlp.fc1, mlp.act, mlp.fc2, width, where)}"
        f"{_dropped(block.drop_path2, where, ctx)})"
    )


def _timm_sam_block_text(block: Any, ctx: ImportContext) -> str:
    """timm's SAM ViT Block (vision_transformer_sam) on an (N, H, W, C) map: x + attn(ln(x)), then
    x + mlp(ln(x)). The attention (qkv and proj) runs inside w x w windows (window_size=w, the map padded at the
    bottom and right to a multiple of w), or over the whole map (window_size=0: on an H x H map, one window of
    H); with use_rel_pos, SAM's decomposed relative positions, rel_pos_h and rel_pos_w of (2w − 1) x head_dim,
    added through the queries (`relpos=axes`); without, no position bias (`relpos=none`)."""
    where = f"{ctx.node_name} (Block)"
    attn, mlp = block.attn, block.mlp
    (shape,) = ctx.arg_shapes[:1] or ((),)
    width = attn.qkv.in_features
    if len(shape) != 4 or shape[3] != width:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not (N, H, W, {width})")
    height, across = shape[1:3]
    w = block.window_size or height
    if not block.window_size and height != across:
        raise ImportRefused(
            f"{where} attends over the whole {height}x{across} map: the language writes global attention on a map "
            f"with decomposed relative positions as one window, which needs a square map"
        )
    heads, e = attn.num_heads, attn.head_dim
    extras = [n for n in ("q_norm", "k_norm") if type(getattr(attn, n, None)).__name__ != "Identity"]
    tables = [getattr(attn, n, None) for n in ("rel_pos_h", "rel_pos_w")]
    if (
        extras
        or getattr(attn, "rope", None) is not None
        or attn.qkv.out_features != 3 * heads * e
        or heads * e != width
        or attn.proj.in_features != width
        or attn.proj.out_features != width
        or (attn.use_rel_pos and any(t is None or tuple(t.shape) != (2 * w - 1, e) for t in tables))
        or type(getattr(mlp, "norm", None)).__name__ not in ("Identity", "NoneType")
    ):
        raise ImportRefused(
            f"{where} is not SAM's block as the language writes it (no query/key norms or rotary positions, "
            f"relative-position tables of (2w - 1) x head_dim for its {w}x{w} windows, an MLP without a norm)"
        )
    norms = [_layer_norm(n, width) for n in (block.norm1, block.norm2)]
    if None in norms:
        raise ImportRefused(f"{where}: a norm other than nn.LayerNorm over its {width} channels")
    options = [f"heads={heads}"] + ["bias"] * (attn.qkv.bias is not None) + [f"window={w}"]
    options += [f"relpos={'axes' if attn.use_rel_pos else 'none'}"] + ["pad"] * bool(height % w or across % w)
    if (attn.qkv.bias is None) != (attn.proj.bias is None):
        # proj has a bias always (nn.Linear's default): qkv_bias=False is a bias on one projection only
        raise ImportRefused(f"{where} has a bias on {'proj' if attn.qkv.bias is None else 'qkv'} only")
    after = "".join(_dropped(m, where, ctx) for m in (block.ls1, block.drop_path1))
    after2 = "".join(_dropped(m, where, ctx) for m in (block.ls2, block.drop_path2))
    return (
        f"res({norms[0]} > attn({', '.join(options)}){after}) "
        f"> res({norms[1]} > {_mlp_text(mlp.fc1, mlp.act, mlp.fc2, width, where)}{after2})"
    )


def _default_head_dim(layer: Layer) -> bool:
    e = AttentionOptions.of(layer).head_dim
    return bool(expansion.expand(e * AttentionOptions.of(layer).heads - layer.cin) == 0)


# ---- import ---------------------------------------------------------------------------


def _tensor_args(ctx: ImportContext) -> list[Any]:
    node = ctx.node
    if node is None:
        return []
    return [a for a in (*node.args, *node.kwargs.values()) if hasattr(a, "name")]


def _mha_heads(mha: Any, ctx: ImportContext, where: str) -> str:
    d, heads = mha.embed_dim, mha.num_heads
    text = f"heads={heads}"
    if mha.in_proj_bias is not None:
        text += ", bias"
    if mha.bias_k is not None or mha.add_zero_attn:
        raise ImportRefused(
            f"{where} (MultiheadAttention) has add_bias_kv or add_zero_attn, which the language cannot express"
        )
    if (mha.kdim != d or mha.vdim != d) and mha.kdim != mha.vdim:
        raise ImportRefused(
            f"{where} (MultiheadAttention) has kdim={mha.kdim} and vdim={mha.vdim}: the "
            f"language takes keys and values from one source (kdim = vdim)"
        )
    return text


def _mha_text(mha: Any, ctx: ImportContext) -> str:
    text = _mha_heads(mha, ctx, ctx.node_name)
    node = ctx.node
    if node is not None:
        query, key, value = (list(node.args) + [node.kwargs.get(k) for k in ("query", "key", "value")])[:3]
        if key is not query or value is not query:
            other = key if key is not query else value
            raise ImportRefused(
                f"{ctx.node_name} (MultiheadAttention) takes its keys or values from "
                f"'{getattr(other, 'name', other)}', not from its query: cross-attention on another "
                f"value of the model, which the language cannot import (write attn(..., source=S x c))"
            )
    if mha.kdim != mha.embed_dim:
        raise ImportRefused(f"{ctx.node_name} (MultiheadAttention) has kdim={mha.kdim} but is used as self-attention")
    return f"attn({text})"


def _activation(layer: Any, where: str) -> str:
    """relu or gelu, given as a function (F.relu) or a module (nn.GELU())."""
    activation = layer.activation
    name = getattr(activation, "__name__", type(activation).__name__).lower()
    if name in ("relu", "gelu"):
        return name
    raise ImportRefused(f"{where} ({type(layer).__name__}) has an activation other than relu or gelu: {name}")


def _feed_forward(layer: Any, where: str) -> str:
    bias = ", bias" if layer.linear1.bias is not None else ""
    return (
        f"dense(->{layer.linear1.out_features}{bias}) > {_activation(layer, where)} > "
        f"dense(->{layer.linear2.out_features}{bias})"
    )


def _norm(norm: Any) -> str:
    return "ln" if norm.bias is not None else "ln(nobias)"


def _encoder_text(layer: Any, ctx: ImportContext) -> str:
    attention = f"attn({_mha_heads(layer.self_attn, ctx, ctx.node_name)})"
    return _blocks(layer, [(attention, layer.norm1), (_feed_forward(layer, ctx.node_name), layer.norm2)])


def _decoder_text(layer: Any, ctx: ImportContext) -> str:
    where = ctx.node_name
    tensors = _tensor_args(ctx)
    if len(tensors) < 2:
        raise ImportRefused(f"{where} (TransformerDecoderLayer) is called without its memory")
    target, memory = tensors[0], tensors[1]
    if memory is not target:
        raise ImportRefused(
            f"{where} (TransformerDecoderLayer) reads its memory from '{memory.name}', another value "
            f"of the model, which the language cannot import; write the layer with "
            f"attn(..., source=S x d)"
        )
    shape: tuple[int, ...] = ctx.arg_shapes[1] if len(ctx.arg_shapes) > 1 else ()
    if len(shape) != 3:
        raise ImportRefused(f"{where} (TransformerDecoderLayer) takes a memory of shape {shape}, not (batch, S, d)")
    positions = shape[1] if layer.self_attn.batch_first else shape[0]
    cross = layer.multihead_attn
    source = f", source={positions}x{cross.kdim}"
    return _blocks(
        layer,
        [
            (f"attn({_mha_heads(layer.self_attn, ctx, where)})", layer.norm1),
            (f"attn({_mha_heads(cross, ctx, where)}{source})", layer.norm2),
            (_feed_forward(layer, where), layer.norm3),
        ],
    )


def _blocks(layer: Any, parts: list[tuple[str, Any]]) -> str:
    if layer.norm_first:
        return " > ".join(f"res({_norm(norm)} > {body})" for body, norm in parts)
    return " > ".join(f"res({body}) > {_norm(norm)}" for body, norm in parts)


# ---- MaxViT's block and grid attention: torchvision's PartitionAttentionLayer -----------------------------


def partition_attention(layer: Any, where: str, side: tuple[int, ...]) -> tuple[str, int, int, int, str]:
    """(text, heads, partition size p, MLP width, activation) of torchvision's PartitionAttentionLayer on a map
    of `side` (H, W): x + attn(ln(x)), then x + mlp(ln(x)), the attention a RelativePositionalMultiHeadAttention
    (biases on to_qkv and merge, a (2p−1)² x heads table) inside p x p windows (partition_type "window":
    `window=p`) or across a p x p grid of positions H/p apart ("grid": `grid=p`). torchvision fixes the partition
    when it builds the layer (grid_size): another map is refused, as its forward would fail or differ. Dropout
    and stochastic depth count nothing and are not written."""
    from . import for_torch_module  # the activation's kind (kinds/__init__ imports this module)
    from .activations import Activation

    kind = getattr(layer, "partition_type", None)
    parts = [m for m in layer.attn_layer.children() if type(m).__name__ != "Dropout"]
    norm = parts[0] if parts else None
    c = getattr(norm, "normalized_shape", (None,))[0]

    def layer_norm(m: Any) -> bool:
        return (
            type(m).__name__ == "LayerNorm"
            and tuple(m.normalized_shape) == (c,)
            and m.weight is not None
            and m.bias is not None
        )

    if kind not in ("window", "grid") or len(parts) != 2 or not layer_norm(norm):
        raise ImportRefused(
            f"{where} (PartitionAttentionLayer): an attention other than nn.LayerNorm > "
            f"RelativePositionalMultiHeadAttention, window or grid, has no counterpart"
        )
    attention = parts[1]
    heads: Any = getattr(attention, "n_heads", None)
    size: Any = getattr(attention, "size", None)
    if (
        type(attention).__name__ != "RelativePositionalMultiHeadAttention"
        or attention.to_qkv.in_features != c
        or attention.to_qkv.out_features != 3 * c
        or attention.merge.in_features != c
        or attention.merge.out_features != c
        or heads * attention.head_dim != c
        or attention.to_qkv.bias is None
        or attention.merge.bias is None
        or size * size != attention.max_seq_len
        or tuple(attention.relative_position_bias_table.shape) != ((2 * size - 1) ** 2, heads)
    ):
        raise ImportRefused(
            f"{where} ({type(attention).__name__}): an attention other than torchvision's "
            f"RelativePositionalMultiHeadAttention (heads x head_dim = {c} channels, biases on to_qkv and "
            f"merge, a (2p-1)² x heads table) has no counterpart"
        )
    partition = layer.p if kind == "window" else layer.g
    if (
        tuple(layer.grid_size) != tuple(side)
        or partition != size
        or (kind == "grid" and side[0] != side[1])
        or any(n % size for n in side)
    ):
        raise ImportRefused(
            f"{where} (PartitionAttentionLayer): built for a {'x'.join(map(str, layer.grid_size))} map "
            f"with {kind} {partition}, but it gets {'x'.join(map(str, side))} (torchvision fixes the "
            f"partition when it builds the layer: MaxVit takes the input size it was built for)"
        )
    mlp = [m for m in layer.mlp_layer.children() if type(m).__name__ not in ("Dropout", "Identity")]
    names = [type(m).__name__ for m in mlp]
    act_kind = for_torch_module(mlp[2]) if len(mlp) == 4 else None
    if (
        names[:2] != ["LayerNorm", "Linear"]
        or names[3:] != ["Linear"]
        or not layer_norm(mlp[0])
        or mlp[1].in_features != c
        or mlp[3].in_features != mlp[1].out_features
        or mlp[3].out_features != c
        or mlp[1].bias is None
        or mlp[3].bias is None
        or not isinstance(act_kind, Activation)
        or act_kind.identity
        or act_kind.key in ("dropout", "softmax")
        or any(True for _ in mlp[2].parameters())
    ):
        raise ImportRefused(
            f"{where} (PartitionAttentionLayer): an MLP of {', '.join(names)} other than nn.LayerNorm > "
            f"Linear > activation > Linear, with biases, keeping {c} channels, has no counterpart"
        )
    act = act_kind.from_torch(mlp[2], None)
    hidden = mlp[1].out_features
    text = (
        f"res(ln > attn(heads={heads}, bias, {kind}={size})) "
        f"> res(ln > dense(->{hidden}, bias) > {act} > dense(->{c}, bias))"
    )
    return text, heads, size, hidden, act


# ---- timm's MaxxViT blocks read whole (timm.models.maxxvit) ---------------------------------------------


def _timm_layer_norm(module: Any, width: int) -> bool:
    """A LayerNorm (torch.nn's or timm's) over the last axis of `width` channels, with a scale and a shift."""
    return (
        type(module).__name__ == "LayerNorm"
        and tuple(module.normalized_shape) == (width,)
        and module.weight is not None
        and module.bias is not None
    )


def _timm_then(module: Any, width: int, ctx: ImportContext, where: str) -> str:
    """ " > ..." for what follows a residual branch's body in timm: a LayerScale (gamma of `width` channels), a
    DropPath or an Identity (nothing)."""
    from . import for_torch_module, identity_name  # the kinds of the block's own modules

    name = type(module).__name__
    if name == "LayerScale" and tuple(module.gamma.shape) == (width,):
        return " > scale"
    kind = for_torch_module(module)
    text = kind.from_torch(module, ctx) if kind is not None and name in ("DropPath", "Identity") else None
    if text is None:
        raise ImportRefused(f"{where}: its {name} has no counterpart in the language")
    return f" > {text}" if text and text != identity_name() else ""


def _timm_mlp_text(mlp: Any, width: int, where: str) -> str:
    """timm's Mlp (fc1 > act > dropout > norm > fc2 > dropout) of Linear layers with biases, keeping `width`
    channels, without a norm: `dense(->h, bias) > act > dense(->width, bias)`."""
    from . import for_torch_module  # the activation's kind
    from .activations import Activation

    fc1: Any = getattr(mlp, "fc1", None)
    fc2: Any = getattr(mlp, "fc2", None)
    act: Any = getattr(mlp, "act", None)
    act_kind = for_torch_module(act) if act is not None else None
    if (
        type(mlp).__name__ != "Mlp"
        or type(fc1).__name__ != "Linear"
        or type(fc2).__name__ != "Linear"
        or type(getattr(mlp, "norm", None)).__name__ != "Identity"
        or fc1.in_features != width
        or fc2.in_features != fc1.out_features
        or fc2.out_features != width
        or fc1.bias is None
        or fc2.bias is None
        or not isinstance(act_kind, Activation)
        or act_kind.identity
        or act_kind.key in ("dropout", "softmax")
        or any(True for _ in act.parameters())
    ):
        raise ImportRefused(
            f"{where}: an MLP other than timm's Mlp of Linear > activation > Linear with biases, keeping {width} "
            f"channels and without a norm, has no counterpart"
        )
    return f"dense(->{fc1.out_features}, bias) > {act_kind.from_torch(act, None)} > dense(->{width}, bias)"


def _timm_partition_text(block: Any, ctx: ImportContext) -> str:
    """timm's PartitionAttentionCl (MaxViT's block or grid attention on an (N, H, W, C) map): x + attn(ln(x)) inside
    p x p windows (`window=p`) or across a p x p grid of positions H/p and W/p apart (`grid=p`), then x + mlp(ln(x)),
    each branch with timm's optional LayerScale. The attention is an AttentionCl (qkv and proj Linear layers, heads of
    dim_head channels) with timm's RelPosBias, a table of (2p - 1)^2 biases per head."""
    where = f"{ctx.node_name} (PartitionAttentionCl)"
    (shape,) = ctx.arg_shapes[:1] or ((),)
    if len(shape) != 4:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not an (N, H, W, C) map")
    height, width, c = shape[1:]
    attn = block.attn
    sizes = tuple(block.partition_size)
    size = sizes[0]
    qkv, proj = attn.qkv, attn.proj
    heads, head_dim = attn.num_heads, attn.dim_head
    if (
        type(attn).__name__ != "AttentionCl"
        or len(set(sizes)) != 1
        or type(qkv).__name__ != "Linear"
        or type(proj).__name__ != "Linear"
        or qkv.in_features != c
        or qkv.out_features != 3 * heads * head_dim
        or proj.in_features != heads * head_dim
        or proj.out_features != c
        or (qkv.bias is None) != (proj.bias is None)
        or not _timm_layer_norm(block.norm1, c)
        or not _timm_layer_norm(block.norm2, c)
    ):
        raise ImportRefused(
            f"{where} is not MaxViT's block as the language writes it (a LayerNorm, an AttentionCl of heads x dim_head "
            f"channels keeping the width {c}, biases on qkv and proj or on neither, square partitions of "
            f"{'x'.join(map(str, sizes))})"
        )
    side = "window" if block.partition_block else "grid"
    if height % size or width % size:
        raise ImportRefused(f"{where}: the {side} {size} does not divide the {height}x{width} map")
    options = (
        [f"heads={heads}"] + [f"head_dim={head_dim}"] * (heads * head_dim != c) + ["bias"] * (qkv.bias is not None)
    )
    options.append(f"{side}={size}")
    options += _timm_rel_pos(attn.rel_pos, heads, size, where)
    return (
        f"res(ln > attn({', '.join(options)}){_timm_then(block.ls1, c, ctx, where)}"
        f"{_timm_then(block.drop_path1, c, ctx, where)}) "
        f"> res(ln > {_timm_mlp_text(block.mlp, c, where)}{_timm_then(block.ls2, c, ctx, where)}"
        f"{_timm_then(block.drop_path2, c, ctx, where)})"
    )


def _timm_rel_pos(
    rel_pos: Any, heads: int, size: int, where: str, across: int | None = None, prefix: int = 0
) -> list[str]:
    """The options of timm's relative-position bias over a size x size partition (size x across: a whole map):
    RelPosBias's table (none: the table is attn's own with window= or grid=)."""
    name = type(rel_pos).__name__
    across = size if across is None else across
    if tuple(getattr(rel_pos, "window_size", ())) != (size, across) or getattr(rel_pos, "prefix_tokens", 0) != prefix:
        raise ImportRefused(
            f"{where}: its relative-position bias ({name}) is not over the {size}x{across} positions it attends to"
        )
    if name == "RelPosBias" and tuple(rel_pos.relative_position_bias_table.shape) == ((2 * size - 1) ** 2, heads):
        return []
    mlp: Any = getattr(rel_pos, "mlp", None)
    if (
        name == "RelPosMlp"
        and rel_pos.bias_gain is None
        and type(rel_pos.bias_act).__name__ == "Identity"
        and type(mlp).__name__ == "Mlp"
        and type(mlp.act).__name__ == "ReLU"
        and type(mlp.norm).__name__ == "Identity"
        and type(mlp.fc1).__name__ == "Linear"
        and type(mlp.fc2).__name__ == "Linear"
        and mlp.fc1.in_features == 2
        and mlp.fc2.in_features == mlp.fc1.out_features
        and mlp.fc2.out_features == heads
        and mlp.fc1.bias is not None
        and mlp.fc2.bias is not None
    ):
        return [f"pos_mlp={mlp.fc1.out_features}"]
    raise ImportRefused(
        f"{where}: its relative-position bias ({name}) is neither a table of (2p - 1)^2 biases per head nor an MLP "
        f"Linear(2->m) > ReLU > Linear(m->heads) with biases (timm's RelPosMlp, mode 'cr'), which the language's "
        f"attn has no counterpart for"
    )


def _timm_swinv2_block_text(block: Any, ctx: ImportContext) -> str:
    """timm's SwinTransformerV2Block on an (N, H, W, C) map, post-norm: x + ln(attn(x)), then x + ln(mlp(x)). The
    attention is Swin V2's in w x w windows (shifted, padded to a multiple of w): cosine attention with a logit
    scale per head, the continuous position bias MLP Linear(2->m, bias) > ReLU > Linear(m->heads) (`cpb=m`), and
    biases on the query and value only (q_bias, v_bias; the key bias is a buffer of zeros: `qv_bias`) and on proj.
    timm narrows the window to a map smaller than it (and drops the shift there): the block's own window is read."""
    where = f"{ctx.node_name} (SwinTransformerV2Block)"
    (shape,) = ctx.arg_shapes[:1] or ((),)
    if len(shape) != 4:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not an (N, H, W, C) map")
    height, width, c = shape[1:]
    attn = block.attn
    sizes = tuple(block.window_size)
    size = sizes[0]
    qkv, proj = attn.qkv, attn.proj
    mlp: Any = getattr(attn, "cpb_mlp", None)
    heads = attn.num_heads
    names = [type(m).__name__ for m in mlp] if mlp is not None else []
    q_bias: Any = getattr(attn, "q_bias", None)
    v_bias: Any = getattr(attn, "v_bias", None)
    if (
        type(attn).__name__ != "WindowAttention"
        or len(set(sizes)) != 1
        or tuple(attn.window_size) != sizes
        or tuple(block.input_resolution) != (height, width)
        or names != ["Linear", "ReLU", "Linear"]
        or mlp[0].in_features != 2
        or mlp[0].bias is None
        or mlp[2].in_features != mlp[0].out_features
        or mlp[2].out_features != heads
        or mlp[2].bias is not None
        or tuple(attn.logit_scale.shape) != (heads, 1, 1)
        or qkv.in_features != c
        or qkv.out_features != 3 * c
        or qkv.bias is not None
        or proj.in_features != c
        or proj.out_features != c
        or proj.bias is None
        or (q_bias is None) != (v_bias is None)
        or (q_bias is not None and (tuple(q_bias.shape), tuple(v_bias.shape)) != ((c,), (c,)))
        or c % heads
        or not _timm_layer_norm(block.norm1, c)
        or not _timm_layer_norm(block.norm2, c)
        or len(set(block.shift_size)) != 1
    ):
        raise ImportRefused(
            f"{where} is not Swin V2's block as the language writes it (square windows, qkv without a bias of its own "
            f"and q_bias, v_bias, heads dividing the {c} channels, the position-bias MLP Linear(2->m, bias) > ReLU > "
            f"Linear(m->heads), a logit scale per head, proj with a bias, LayerNorms)"
        )
    options = [f"heads={heads}"] + ["qv_bias"] * (q_bias is not None)
    options += [f"window={size}"] + ["shift"] * any(block.shift_size)
    options += [f"cpb={mlp[0].out_features}"] + ["pad"] * bool(height % size or width % size)
    if q_bias is None:
        raise ImportRefused(
            f"{where}: its qkv and proj differ in biases (proj has one, qkv none), which attn cannot say"
        )
    return (
        f"res(attn({', '.join(options)}) > ln{_timm_then(block.drop_path1, c, ctx, where)}) "
        f"> res({_timm_mlp_text(block.mlp, c, where)} > ln{_timm_then(block.drop_path2, c, ctx, where)})"
    )


def _timm_swinv2_cr_block_text(block: Any, ctx: ImportContext) -> str:
    """timm's SwinTransformerV2CrBlock on an (N, H, W, C) map, post-norm: x + ln(attn(x)), then x + ln(mlp(x)), then
    an optional LayerNorm of the main branch (norm3). The attention (WindowMultiHeadAttention) is in w x w windows
    (shifted, padded to a multiple of w), with qkv and proj biases, cosine attention with a logit scale per head
    (`cosine`), and a position bias made by timm's meta MLP Linear(2->m) > ReLU > Linear(m->heads), both with biases,
    run on the log-spaced offset of every one of the w^4 query/key pairs (`pos_mlp=m, per_pair`). timm narrows the
    window to a map smaller than it (and drops the shift there): the block's own window is read."""
    where = f"{ctx.node_name} (SwinTransformerV2CrBlock)"
    (shape,) = ctx.arg_shapes[:1] or ((),)
    if len(shape) != 4:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not an (N, H, W, C) map")
    height, width, c = shape[1:]
    attn = block.attn
    sizes = tuple(block.window_size)
    size = sizes[0]
    qkv, proj = attn.qkv, attn.proj
    mlp: Any = getattr(attn, "meta_mlp", None)
    heads = attn.num_heads
    fc1: Any = getattr(mlp, "fc1", None)
    fc2: Any = getattr(mlp, "fc2", None)
    if (
        type(attn).__name__ != "WindowMultiHeadAttention"
        or getattr(attn, "sequential_attn", False)
        or len(set(sizes)) != 1
        or tuple(attn.window_size) != sizes
        or tuple(block.feat_size) != (height, width)
        or type(mlp).__name__ != "Mlp"
        or type(mlp.act).__name__ != "ReLU"
        or type(mlp.norm).__name__ != "Identity"
        or type(fc1).__name__ != "Linear"
        or type(fc2).__name__ != "Linear"
        or fc1.in_features != 2
        or fc2.in_features != fc1.out_features
        or fc2.out_features != heads
        or fc1.bias is None
        or fc2.bias is None
        or tuple(attn.logit_scale.shape) != (heads,)
        or tuple(attn.relative_coordinates_log.shape) != (size**4, 2)
        or qkv.in_features != c
        or qkv.out_features != 3 * c
        or proj.in_features != c
        or proj.out_features != c
        or qkv.bias is None
        or proj.bias is None
        or c % heads
        or not _timm_layer_norm(block.norm1, c)
        or not _timm_layer_norm(block.norm2, c)
        or not (type(block.norm3).__name__ == "Identity" or _timm_layer_norm(block.norm3, c))
        or len(set(block.shift_size)) != 1
    ):
        raise ImportRefused(
            f"{where} is not swinv2_cr's block as the language writes it (square windows, qkv and proj with biases, "
            f"heads dividing the {c} channels, the meta MLP Linear(2->m) > ReLU > Linear(m->heads) with biases on "
            f"every pair of a window, a logit scale per head, LayerNorms)"
        )
    options = [f"heads={heads}", "bias", f"window={size}"] + ["shift"] * any(block.shift_size)
    options += [f"pos_mlp={fc1.out_features}", "per_pair", "cosine"] + ["pad"] * bool(height % size or width % size)
    norm3 = " > ln" if type(block.norm3).__name__ != "Identity" else ""
    return (
        f"res(attn({', '.join(options)}) > ln{_timm_then(block.drop_path1, c, ctx, where)}) "
        f"> res({_timm_mlp_text(block.mlp, c, where)} > ln{_timm_then(block.drop_path2, c, ctx, where)}){norm3}"
    )


def _shared_position_bias(ctx: ImportContext, where: str) -> Any:
    """The RelPosMlp whose bias an attention is given (timm's ViT-RelPos with shared_rel_pos: the model computes
    `shared_rel_pos.get_bias()` once and passes it to every block), found from the operations that compute it: all
    of them must run on that module's own buffers and layers (no value of the model's input enters). None when no
    bias is given."""
    node = ctx.node
    given = [v for k, v in getattr(node, "kwargs", {}).items() if hasattr(v, "name")] + [
        a for a in getattr(node, "args", ())[1:] if hasattr(a, "name")
    ]
    if not given:
        return None
    if len(given) != 1:
        raise ImportRefused(f"{where} takes {len(given) + 1} tensors; the language's attn takes one value")
    gm = node.graph.owning_module
    gm = gm.meta.get("root", gm)  # the model (the graph module's own parents of buffers are plain modules)
    owners: set[str] = set()
    seen, frontier = set(), [given[0]]
    while frontier:
        n = frontier.pop()
        if n in seen:
            continue
        seen.add(n)
        if n.op == "placeholder":
            raise ImportRefused(
                f"{where} is given a position bias computed from the model's input; the language's shared "
                f"position bias (tie=) is one that a RelPosMlp computes from its own coordinates"
            )
        if n.op in ("get_attr", "call_module"):
            parts = str(n.target).split(".")
            owner = next(
                (
                    ".".join(parts[:i])
                    for i in range(len(parts) - 1, 0, -1)
                    if type(gm.get_submodule(".".join(parts[:i]))).__name__ == "RelPosMlp"
                ),
                None,
            )
            if owner is None:
                raise ImportRefused(
                    f"{where} is given a position bias made by '{n.target}', not by timm's RelPosMlp; the language "
                    f"has no counterpart"
                )
            owners.add(owner)
        frontier += [a for a in (*n.args, *n.kwargs.values()) if hasattr(a, "name")]
    if len(owners) != 1:
        raise ImportRefused(f"{where} is given a position bias that is not the work of one RelPosMlp")
    return gm.get_submodule(owners.pop())


def _timm_relpos_attention_text(attn: Any, ctx: ImportContext) -> str:
    """timm's RelPosAttention (ViT-RelPos, on a sequence (N, T, C) of the patches of an H x W map): qkv and proj
    Linear layers, every position attending to all the others, with a relative-position bias over the map made by
    timm's RelPosMlp (mode 'cr': Linear(2->m) > ReLU > Linear(m->heads), biases on both, over the (2H - 1)(2W - 1)
    log-spaced offsets): its own (`rel_pos`), or the model's shared one given to forward (`shared_rel_pos`), which
    the importer names on its first attention and ties the others to (`tie=`). `attn(heads=h, projbias, map=HxW,
    pos_mlp=m)`."""
    where = f"{ctx.node_name} (RelPosAttention)"
    (shape,) = ctx.arg_shapes[:1] or ((),)
    if len(shape) != 3:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not a sequence (N, T, C)")
    tokens, c = shape[1:]
    qkv, proj, heads = attn.qkv, attn.proj, attn.num_heads
    norms = [type(getattr(attn, n, None)).__name__ for n in ("q_norm", "k_norm")]
    if (
        norms != ["Identity", "Identity"]
        or qkv.in_features != c
        or qkv.out_features != 3 * c
        or proj.in_features != c
        or proj.out_features != c
        or c % heads
        or attn.head_dim * heads != c
        or (qkv.bias is not None and proj.bias is None)
    ):
        raise ImportRefused(
            f"{where} is not ViT-RelPos's attention as the language writes it (qkv and proj of the {c} channels, "
            f"heads dividing them, no norm on the queries or keys, biases on all projections, on proj only or none)"
        )
    shared = _shared_position_bias(ctx, where)
    rel_pos = attn.rel_pos
    if (rel_pos is None) == (shared is None):
        raise ImportRefused(
            f"{where} has "
            + ("no relative-position bias, own or shared" if rel_pos is None else "a bias of its own and a shared one")
            + "; the language's attn over a map with map= has exactly one"
        )
    bias = rel_pos if rel_pos is not None else shared
    name = type(bias).__name__
    sides = tuple(getattr(bias, "window_size", ()))
    prefix = getattr(bias, "prefix_tokens", 0)
    if prefix not in (0, 1) or len(sides) != 2 or sides[0] * sides[1] + prefix != tokens:
        raise ImportRefused(
            f"{where}: its relative-position bias ({name}) is over {'x'.join(map(str, sides))} positions "
            f"with {prefix} tokens before them, not over the {tokens} positions of the sequence (the language's "
            f"pos_mlp= over a map takes one class token before it at most: cls)"
        )
    if name != "RelPosMlp" or getattr(bias, "num_heads", None) != heads:
        raise ImportRefused(
            f"{where}: its relative-position bias ({name}) is not timm's RelPosMlp of {heads} heads; a table over a "
            f"whole map on a sequence has no counterpart in the language"
        )
    (mlp_option,) = _timm_rel_pos(bias, heads, sides[0], where, sides[1], prefix)
    options = [f"heads={heads}"] + ["bias"] * (qkv.bias is not None)
    options += ["projbias"] * (qkv.bias is None and proj.bias is not None)
    options += [f"map={sides[0]}x{sides[1]}", mlp_option] + ["cls"] * prefix
    return f"attn({', '.join(options)})"


def _timm_attention2d_text(attn: Any, ctx: ImportContext) -> str:
    """timm's Attention2d (CoAtNet, on an (N, C, H, W) map): qkv and proj 1x1 convolutions, heads of dim_head
    channels attending over the whole map, with a relative-position bias over the whole (square) map: timm's
    RelPosBias table is `window=H` (one window covering the map), its RelPosMlp `window=H, pos_mlp=m`. The proj may
    widen the map (`out=`)."""
    where = f"{ctx.node_name} (Attention2d)"
    shape = ctx.in_shape
    if len(shape) != 4:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not an (N, C, H, W) map")
    c, height, width = shape[1:]
    qkv, proj = attn.qkv, attn.proj
    heads, head_dim = attn.num_heads, attn.dim_head
    if len(_tensor_args(ctx)) > 1:
        raise ImportRefused(f"{where} is given a shared relative-position bias, which the language cannot import")

    def pointwise(conv: Any) -> bool:
        return (
            type(conv).__name__ == "Conv2d"
            and tuple(conv.kernel_size) == (1, 1)
            and tuple(conv.stride) == (1, 1)
            and tuple(conv.dilation) == (1, 1)
            and conv.groups == 1
            and tuple(getattr(conv, "padding", (0, 0))) == (0, 0)
        )

    if (
        not pointwise(qkv)
        or not pointwise(proj)
        or qkv.in_channels != c
        or qkv.out_channels != 3 * heads * head_dim
        or proj.in_channels != heads * head_dim
        or (qkv.bias is None) != (proj.bias is None)
    ):
        raise ImportRefused(
            f"{where} is not CoAtNet's attention as the language writes it (qkv and proj 1x1 convolutions of "
            f"heads x dim_head channels from the {c} channels, biases on both or on neither)"
        )
    options = [f"heads={heads}"] + [f"head_dim={head_dim}"] * (heads * head_dim != c)
    options += ["bias"] * (qkv.bias is not None)
    if attn.rel_pos is not None:
        if height != width:
            raise ImportRefused(
                f"{where}: a relative-position bias over a {height}x{width} map; the language's window is square"
            )
        options += [f"window={height}"] + _timm_rel_pos(attn.rel_pos, heads, height, where)
    options += [f"out={proj.out_channels}"] * (proj.out_channels != c)
    return f"attn({', '.join(options)})"


# ---- window attention (Swin) in PyTorch: torch_modules.WindowAttention ---------------------------


def _window_spec(layer: Layer, num: Numbers) -> TorchSpec:
    """WindowAttention (torchvision's ShiftedWindowAttention, with kv_heads and head_dim besides; with grid=g,
    MaxViT's grid attention)."""
    o = AttentionOptions.of(layer)
    if o.causal:
        raise ParamsymUsageError(
            f"{layer.name} at {layer.pos}: causal masking inside windows has no PyTorch "
            f"module (Swin's window attention is not causal)"
            if o.grid is None
            else f"{layer.name} at {layer.pos}: causal masking inside grids has no PyTorch "
            f"module (MaxViT's grid attention is not causal)"
        )
    if o.cpb is not None or o.pad:
        # WindowAttention is Swin V1's: exporting it would silently drop the MLP or the padding
        raise ParamsymUsageError(
            f"{layer.name} at {layer.pos}: Swin V2's attention (cpb=) and padded windows (pad) "
            f"have no PyTorch module of ours yet; torchvision's ShiftedWindowAttentionV2 "
            f"counts as the program does"
        )
    d, heads, kv_heads, e = num(layer.cin), num(o.heads), num(o.kv_heads), num(o.head_dim)
    kwargs: dict[str, Any] = {"shift": True} if o.shift else {}
    kwargs.update(_export_extras(o, num))
    if o.pos_mlp is not None:
        kwargs["pos_mlp"] = num(o.pos_mlp)
    if o.per_pair:
        kwargs["per_pair"] = True
    if kv_heads != heads:
        kwargs["kv_heads"] = kv_heads
    if e * heads != d:
        kwargs["head_dim"] = e
    kwargs["bias"] = layer.bias
    if o.grid is not None:
        kwargs["grid"] = True
    if o.relpos != "table":
        kwargs["relpos"] = o.relpos
    return TorchSpec("WindowAttention", (d, heads, num(o.partition)), kwargs)


def _pooling_spec(layer: Layer, num: Numbers) -> TorchSpec:
    """PoolingAttention: MViT's pooling attention (torchvision's MultiscaleAttention, timm's MultiScaleAttention)."""
    o = AttentionOptions.of(layer)
    p = o.pooling
    assert p is not None
    d, heads, e, width = num(layer.cin), num(o.heads), num(o.head_dim), num(layer.cout)
    kwargs: dict[str, Any] = {}
    for side in ("q", "kv"):
        kernel = getattr(p, side)
        if kernel is not None:
            kwargs[side] = num.each(kernel)
            kwargs[f"{side}_stride"] = num.each(getattr(p, f"{side}_stride"))
    if width != d:
        kwargs["out"] = width
    if e * heads != width:
        kwargs["head_dim"] = e
    kwargs["bias"] = layer.bias
    for flag in ("cls", "residual", "relpos"):
        if getattr(p, flag):
            kwargs[flag] = True
    return TorchSpec("PoolingAttention", (d, heads, num.each(p.volume)), kwargs)


def _volume_spec(layer: Layer, num: Numbers) -> TorchSpec:
    """WindowAttention3d: window attention on a volume, as torchvision's ShiftedWindowAttention3d computes it (with
    kv_heads and head_dim besides)."""
    o = AttentionOptions.of(layer)
    if o.causal:
        raise ParamsymUsageError(
            f"{layer.name} at {layer.pos}: causal masking inside windows has no PyTorch "
            f"module (Swin's window attention is not causal)"
        )
    d, heads, kv_heads, e = num(layer.cin), num(o.heads), num(o.kv_heads), num(o.head_dim)
    kwargs: dict[str, Any] = {"shift": True} if o.shift else {}
    if kv_heads != heads:
        kwargs["kv_heads"] = kv_heads
    if e * heads != d:
        kwargs["head_dim"] = e
    kwargs["bias"] = layer.bias
    # the module pads as torchvision does, always: without 'pad' the program made sure the window divides
    return TorchSpec("WindowAttention3d", (d, heads, tuple(num(v) for v in known_sides(o.volume))), kwargs)


def _pooling_text(module: Any, ctx: ImportContext) -> str:
    """paramsym's own PoolingAttention read back."""
    names = ("heads", "head_dim", "volume", "cls", "residual", "rel_pos", "pool_q", "pool_k", "qkv", "proj")
    if not all(hasattr(module, a) for a in names):
        raise ImportRefused(f"{ctx.node_name} (PoolingAttention) is not paramsym's pooling attention module")
    width, channels = module.proj.out_features, module.qkv.in_features
    parts = [f"heads={module.heads}"]
    if width != channels:
        parts.append(f"out={width}")
    if module.heads * module.head_dim != width:
        parts.append(f"head_dim={module.head_dim}")
    parts += ["bias"] * (module.qkv.bias is not None) + [f"volume={'x'.join(map(str, module.volume))}"]
    parts += ["cls"] * module.cls + ["residual"] * module.residual + ["relpos"] * (module.rel_pos is not None)
    for side, pooling in (("q", module.pool_q), ("kv", module.pool_k)):
        if pooling is not None:
            pool = pooling[0]
            parts += [
                f"{side}={'x'.join(map(str, pool.kernel_size))}",
                f"{side}_stride={'x'.join(map(str, pool.stride))}",
            ]
    return f"attn({', '.join(parts)})"


def _volume_text(module: Any, ctx: ImportContext) -> str:
    """torchvision's ShiftedWindowAttention3d (Video Swin; on channels-last volumes (N, T, H, W, C)) or paramsym's
    own WindowAttention3d (channels first) read whole: qkv and proj Linear layers, heads x head_dim channels, a
    table of (2a-1)(2b-1)(2c-1) biases per head, windows of a x b x c shifted by half their sides or not. Both pad
    the volume to a multiple of the window: `pad` is written when the volume given is not one."""
    name = type(module).__name__
    where = f"{ctx.node_name} ({name})"
    own = name == "WindowAttention3d"
    names = (
        "qkv",
        "proj",
        "relative_position_bias_table",
        "window_size",
        "shift_size",
        "heads" if own else "num_heads",
    )
    if not all(hasattr(module, a) for a in names):
        raise ImportRefused(f"{where} is not a window attention on volumes that paramsym reads")
    qkv, proj, table = module.qkv, module.proj, module.relative_position_bias_table
    window, shift = list(module.window_size), list(module.shift_size)
    heads = module.heads if own else module.num_heads
    kv_heads = module.kv_heads if own else heads
    width = proj.out_features
    head_dim = module.head_dim if own else width // heads
    (shape,) = ctx.arg_shapes[:1] or ((),)
    sizes = tuple(shape[2:5] if own else shape[1:4]) if len(shape) == 5 else ()
    if (
        len(window) != 3
        or len(shift) != 3
        or tuple(table.shape) != ((2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1), heads)
        or (any(shift) and shift != [w // 2 for w in window])
        or qkv.in_features != width
        or qkv.out_features != (heads + 2 * kv_heads) * head_dim
        or proj.in_features != heads * head_dim
        or (not own and width % heads)
        or len(sizes) != 3
    ):
        raise ImportRefused(
            f"{where}: windows of {window} shifted by {shift}, a table of {tuple(table.shape)}, on "
            f"{'x'.join(map(str, sizes)) or 'a value other than a volume'}; the language has windows a x b x c "
            f"shifted by half their sides (all or none), a table of (2a-1)(2b-1)(2c-1) biases per head, on a "
            f"volume T x H x W x d"
        )
    if (qkv.bias is None) != (proj.bias is None):
        raise ImportRefused(f"{where} has a bias on only one of its projections; attn has them on both or neither")
    used = [min(w, n) for w, n in zip(window, sizes)]
    parts = [f"heads={heads}"]
    if kv_heads != heads:
        parts.append(f"kv_heads={kv_heads}")
    if head_dim * heads != width:
        parts.append(f"head_dim={head_dim}")
    parts += ["bias"] * (qkv.bias is not None) + [f"window={'x'.join(map(str, window))}"]
    parts += ["shift"] * any(shift) + ["pad"] * any(n % w for n, w in zip(sizes, used))
    return f"attn({', '.join(parts)})"


def _export_extras(o: AttentionOptions, num: Numbers) -> dict[str, Any]:
    """The keyword arguments of paramsym's attention modules for out=, qv_bias and cosine."""
    kwargs: dict[str, Any] = {}
    if o.out is not None:
        kwargs["out"] = num(o.out)
    if o.qv_bias:
        kwargs["qv_bias"] = True
    if o.qkv_bias:
        kwargs["qkv_bias"] = True
    if o.cosine:
        kwargs["cosine"] = True
    if o.cls_rel is not None:
        kwargs["cls_rel"] = (num(o.cls_rel[0]), num(o.cls_rel[1]))
    if o.qk_norm is not None:
        kwargs["qk_norm"] = _TORCH_QK_NORMS[o.qk_norm]
    if o.subln:
        kwargs["subln"] = True
    if o.slide is not None:
        kwargs["window"] = num(o.slide)
    if o.softcap is not None:  # a number such as 50 or 30.5; a symbol takes the network's value
        kwargs["score_cap"] = float(o.softcap) if o.softcap.is_number else num(o.softcap)
    return kwargs


def _window_text(module: Any, ctx: ImportContext) -> str:
    """torch_modules.WindowAttention read back."""
    if not all(hasattr(module, a) for a in ("kv_heads", "head_dim", "window_size", "shift_size", "qkv", "proj")):
        raise ImportRefused(f"{ctx.node_name} (WindowAttention) is not paramsym's window attention module")
    heads, kv_heads, e = module.heads, module.kv_heads, module.head_dim
    width, window = module.qkv.in_features, module.window_size[0]
    if (
        module.window_size[1] != window
        or len(set(module.shift_size)) != 1
        or module.shift_size[0] not in (0, window // 2)
    ):
        raise ImportRefused(
            f"{ctx.node_name} (WindowAttention) has windows of {module.window_size} shifted by "
            f"{module.shift_size}: the language has square w x w windows shifted by w//2"
        )
    qv_bias = getattr(module, "q_bias", None) is not None
    if (module.qkv.bias is None and not qv_bias) != (module.proj.bias is None):
        raise ImportRefused(f"{ctx.node_name} (WindowAttention) has a bias on only one of its projections")
    parts = [f"heads={heads}"]
    if kv_heads != heads:
        parts.append(f"kv_heads={kv_heads}")
    if e * heads != width:
        parts.append(f"head_dim={e}")
    side = f"grid={window}" if getattr(module, "grid", False) else f"window={window}"
    parts += ["bias"] * (module.qkv.bias is not None) + ["qv_bias"] * qv_bias
    parts += [side] + ["shift"] * (module.shift_size[0] > 0)
    mlp: Any = getattr(module, "pos_mlp", None)
    if mlp is not None:
        parts += [f"pos_mlp={mlp[0].out_features}"] + ["per_pair"] * bool(module.per_pair)
    parts += ["cosine"] * (getattr(module, "logit_scale", None) is not None)
    parts += [f"out={module.proj.out_features}"] * (module.proj.out_features != width)
    relpos = getattr(module, "relpos", "table")
    parts += [f"relpos={relpos}"] * (relpos != "table")
    return f"attn({', '.join(parts)})"


KINDS = (Attention(),)


def _gpsa_text(module: Any, ctx: ImportContext) -> str:
    """timm's GPSA (ConViT) or paramsym's GatedPositionalAttention: qk and v Linear layers (biases alike), an output
    projection, pos_proj Linear(3, heads) with bias over the relative coordinates, a gate per head."""
    where = f"{ctx.node_name} ({type(module).__name__})"
    heads = module.num_heads
    qk, v, proj, pos = module.qk, module.v, module.proj, module.pos_proj
    d = v.in_features
    shape = tuple(ctx.arg_shapes[0]) if ctx.arg_shapes else tuple(ctx.in_shape)
    if type(module).__name__ == "GatedPositionalAttention" and len(shape) >= 3:  # ours: (N, C, *spatial)
        shape = (shape[0], math.prod(shape[2:]), shape[1])
    positions = shape[1] if len(shape) == 3 else 0
    side = math.isqrt(positions)
    if (
        len(shape) != 3
        or shape[2] != d
        or side * side != positions
        or d % heads
        or (qk.in_features, qk.out_features, v.out_features) != (d, 2 * d, d)
        or (proj.in_features, proj.out_features) != (d, d)
        or (pos.in_features, pos.out_features) != (3, heads)
        or pos.bias is None
        or tuple(module.gating_param.shape) != (heads,)
        or (qk.bias is None) != (v.bias is None)
        or (qk.bias is not None and proj.bias is None)
    ):
        raise ImportRefused(
            f"{where} is not ConViT's gated positional self-attention as the language writes it (qk, v and proj "
            f"Linear layers of {d} channels, pos_proj Linear(3, heads), a gate per head, on a sequence of a square "
            f"number of positions (N, T, C)), not on {shape}"
        )
    parts = [f"heads={heads}", "gpsa"] + ["bias"] * (qk.bias is not None)
    parts += ["projbias"] * (qk.bias is None and proj.bias is not None)
    return f"attn({', '.join(parts)})"


def _pvt_stage_text(stage: Any, ctx: ImportContext) -> str:
    """timm's PVT v2 stage on a map: its OverlapPatchEmbed (Conv2d with bias > LayerNorm), then blocks that run on
    the map's positions as a sequence (x + attn(ln(x)) with spatial reduction sr=R, x + mlp(ln(x)) with a
    depthwise 3x3 convolution of the hidden channels on the map between its Linear layers), a LayerNorm, and the
    map again. Every part is a layer of the language, written from the modules' own attributes; the linear
    attention variant (a pooled, activated reduction) is refused."""
    from . import for_torch_module  # the drop paths' kind (kinds/__init__ imports this module)

    where = f"{ctx.node_name} (PyramidVisionTransformerStage)"

    def refused(what: str) -> ImportRefused:
        return ImportRefused(f"{where}: {what} is not PVT v2's as the language writes it")

    def layer_norm(norm: Any, c: int) -> bool:
        return (
            isinstance(getattr(norm, "normalized_shape", None), tuple)
            and tuple(norm.normalized_shape) == (c,)
            and norm.weight is not None
            and norm.bias is not None
        )

    def linear(m: Any, cin: int, cout: int, bias: bool = True) -> bool:
        return (
            type(m).__name__ == "Linear"
            and (m.in_features, m.out_features) == (cin, cout)
            and (m.bias is not None) == bias
        )

    def dropped(module: Any) -> str:
        if type(module).__name__ in ("Identity", "Dropout"):
            return ""
        kind = for_torch_module(module)
        text = kind.from_torch(module, ctx) if kind is not None else None
        if not text or kind is None or kind.key != "droppath":
            raise refused(f"its {type(module).__name__}")
        return f" > {text}"

    parts = []
    down = stage.downsample
    if down is not None:
        conv = down.proj
        (k, _), (s, _), (p, _) = conv.kernel_size, conv.stride, conv.padding
        c = conv.out_channels
        if (
            len(set(conv.kernel_size)) != 1
            or len(set(conv.stride)) != 1
            or len(set(conv.padding)) != 1
            or conv.groups != 1
            or set(conv.dilation) != {1}
            or conv.bias is None
            or conv.padding_mode != "zeros"
            or not layer_norm(down.norm, c)
        ):
            raise refused("its patch embedding")
        parts.append(f"conv{k}x{k}(->{c}, stride={s}, pad={p}, bias) > ln")
    c = stage.norm.normalized_shape[0] if hasattr(stage.norm, "normalized_shape") else 0
    for block in stage.blocks:
        attn, mlp = block.attn, block.mlp
        heads = attn.num_heads
        q_bias = attn.q.bias is not None
        if (
            attn.pool is not None
            or not layer_norm(block.norm1, c)
            or not layer_norm(block.norm2, c)
            or heads * attn.head_dim != c
            or not linear(attn.q, c, c, q_bias)
            or not linear(attn.kv, c, 2 * c, q_bias)
            or not linear(attn.proj, c, c)
        ):
            raise refused("an attention block")
        options = [f"heads={heads}"]
        if attn.sr is not None:
            conv = attn.sr
            (R, _) = conv.kernel_size
            if (
                set(conv.kernel_size) != {R}
                or tuple(conv.stride) != (R, R)
                or set(conv.padding) != {0}
                or conv.groups != 1
                or set(conv.dilation) != {1}
                or (conv.in_channels, conv.out_channels) != (c, c)
                or conv.bias is None
                or not layer_norm(attn.norm, c)
            ):
                raise refused("a spatial reduction")
            options.append(f"sr={R}")
        options.append("bias" if q_bias else "projbias")
        hidden = mlp.fc1.out_features
        dw = mlp.dwconv
        if (
            type(mlp.relu).__name__ != "Identity"
            or type(mlp.act).__name__ != "GELU"
            or getattr(mlp.act, "approximate", "none") != "none"
            or not linear(mlp.fc1, c, hidden)
            or not linear(mlp.fc2, hidden, c)
            or (dw.in_channels, dw.out_channels, dw.groups) != (hidden, hidden, hidden)
            or tuple(dw.kernel_size) != (3, 3)
            or tuple(dw.stride) != (1, 1)
            or tuple(dw.padding) != (1, 1)
            or set(dw.dilation) != {1}
            or dw.bias is None
        ):
            raise refused("an MLP with a depthwise convolution")
        parts.append(
            f"res(ln > attn({', '.join(options)}){dropped(block.drop_path1)}) "
            f"> res(ln > dense(->{hidden}, bias) > dwconv3x3(pad=1, bias) > gelu > dense(->{c}, bias)"
            f"{dropped(block.drop_path2)})"
        )
    if not layer_norm(stage.norm, c):
        raise refused("its last norm")
    parts.append("ln")
    return " > ".join(parts)
