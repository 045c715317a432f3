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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from .. import expansion
from ..core.records import KerasSpec, Layer, Options, TorchSpec
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError, ParamsymUsageError
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
    Words,
    axes,
    check_or_defer,
    known,
    refuse_keras,
    same_layer,
    times,
    whole_input_field,
    whole_number,
)

# the forms of a window's position bias (relpos=), the first the default
RELPOS = ("table", "none", "offsets", "axes")


@dataclass(frozen=True)
class AttentionOptions(Options):
    """attn(heads=h, kv_heads=g, head_dim=e, source=S x c, window=w | grid=g, shift, causal, rope, cpb=m, pad)."""

    heads: Expr
    kv_heads: Expr  # heads when not given
    head_dim: Expr  # the width over heads when not given
    source: tuple[Expr, Expr] | None  # (positions, channels) of the keys' source; None: the input itself
    window: Expr | None
    shift: bool
    causal: bool
    rope: bool
    cpb: Expr | None  # the width of Swin V2's position-bias MLP
    pad: bool
    grid: Expr | None  # MaxViT's grid attention: a g x g grid of strided positions
    # the window's position bias (relpos=): "table" (Swin's (2w-1)^2 x h), "none", "offsets" (one bias per head
    # for each offset |row|, |column|: w^2 x h, TinyViT's and LeViT's) or "axes" (SAM's decomposed tables of
    # (2w-1) x e along each axis, added through the queries)
    relpos: str = "table"
    # channel attention (DaViT's, `channels`): each head's e channels attend to each other across all positions
    channels: bool = False

    @property
    def partition(self) -> Expr | None:
        """The side of the square the attention reads (w of window=w, g of grid=g): its bias table is
        (2·side − 1)²·h, each position has side² keys."""
        return self.window if self.window is not None else self.grid


class Attention(Kind):
    key = "attn"
    names = ("attn",)
    keywords = frozenset({"heads", "kv_heads", "head_dim", "source", "window", "grid", "cpb", "relpos"})
    flags = frozenset({"bias", "nobias", "causal", "rope", "shift", "pad", "channels"})
    torch_modules = (
        "MultiheadAttention",
        "TransformerEncoderLayer",
        "TransformerDecoderLayer",
        "SelfAttention",
        "GroupedQueryAttention",
        "WindowAttention",  # these three: paramsym's own exports (WindowAttention also for grid=g)
        "timm.layers.attention.Attention",  # timm's ViT, DeiT, ... (vision_transformer.py)
        "timm.models.swin_transformer.SwinTransformerBlock",  # read whole: its windows are reshapes
        "torchvision.models.maxvit.PartitionAttentionLayer",  # MaxViT's block or grid attention, read whole
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
        if "head_dim" in args.keywords:
            head_dim = known(args.scalar("head_dim"))
        else:
            head_dim = d / heads
            constraints += check_or_defer(
                head_dim,
                "integer",
                f"heads={heads} does not divide the width {d}",
                args.keywords["heads"].pos,
                hint="the head width is d/heads: choose heads that divide d, or give head_dim=",
            )
        if "rope" in args.flags:
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
        window = args.scalar("window")
        if window is not None:
            constraints += self._window(call, flow, args, window)
            if source is not None:
                raise ParamsymArgumentError(
                    "window= attends inside windows of the map itself: it takes no source=",
                    pos=args.keywords["source"].pos,
                )
        grid = self._grid(call, flow, args, window, source)
        if "shift" in args.flags and window is None:
            raise ParamsymArgumentError(
                "'shift' (shifted windows) needs window=w",
                pos=args.flags["shift"].pos,
                hint=f"write {call.name}(heads=..., window=7, shift)",
            )
        if "pad" in args.flags and window is None:
            raise ParamsymArgumentError(
                "'pad' pads the map to a multiple of the window: it needs window=w",
                pos=args.flags["pad"].pos,
                hint=f"write {call.name}(heads=..., window=8, pad)",
            )
        cpb = self._cpb(call, args, window)
        relpos = self._relpos(call, args, window, grid, cpb)
        self._channels(call, args)
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
            relpos=relpos,
            channels="channels" in args.flags,
        )
        return same_layer(call, self, flow, d, bias=args.bias, options=options, constraints=tuple(constraints))

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

    def _source(self, call: Call, args: Args) -> tuple[Expr, Expr] | None:
        arg = args.keywords.get("source")
        if arg is None:
            return None
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
        sizes = {"d": d, "q": q, "kv": kv, "T": positions, "S": S, "c": c, "padded": positions}
        if o.pad and positions is not None:
            # torchvision pads the bottom and right to a multiple of the window, computes, then cuts
            w = o.window
            sizes["padded"] = sympy.Mul(*(sympy.ceiling(known(n) / w) * w for n in axes(layer.in_shape)))
        return sizes

    @staticmethod
    def position_bias(
        layer: Layer, heads: Expr, window: Expr, head_dim: Expr | None = None, queries: Expr | None = 0
    ) -> tuple[Expr, Expr | None]:
        """(params, MACs) of the relative-position bias: V1's table, V2's MLP and logit scales (cpb=m), none,
        TinyViT's biases per offset, or SAM's tables along the two axes (relpos=axes: (2w−1)·e each, and for
        each of the `queries` positions and each head, its query against the w rows and the w columns of its
        window, 2·w·e MACs)."""
        o = AttentionOptions.of(layer)
        m = o.cpb
        table = (2 * window - 1) ** 2
        if m is not None:
            return 3 * m + m * heads + heads, table * (2 * m + m * heads)
        if o.relpos == "none":
            return 0, 0
        if o.relpos == "offsets":
            return window**2 * heads, 0
        if o.relpos == "axes":
            e = known(o.head_dim if head_dim is None else head_dim)
            return 2 * (2 * window - 1) * e, times(2, queries, window, heads, e)
        return table * heads, 0

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        s = self.sizes(layer)
        d, q, kv, T, S, c = known(s["d"]), known(s["q"]), known(s["kv"]), s["T"], s["S"], known(s["c"])
        o = AttentionOptions.of(layer)
        params = d * q + 2 * c * kv + q * d
        if layer.bias:
            params += q + 2 * kv + d
        window = o.partition  # w of window=w or g of grid=g: the same counts
        bias_macs: Expr | None = sympy.Integer(0)
        if window is not None:
            # keys and values are computed once for each of the T positions (of the padded map with 'pad');
            # each query sees w² of them (g² with grid=g)
            T = keys = s["padded"]
            bias_params, bias_macs = self.position_bias(layer, o.heads, window, queries=T)
            params += bias_params
            per_query = window**2
        elif o.channels:
            # each head's e x e scores summed over the T positions, then its e channels weighted: 2·T·e·q
            keys, per_query = T, o.head_dim
        else:
            keys, per_query = S, S
        projections = times(T, d, q), times(2, keys, c, kv), times(T, q, d)
        scores = times(2, T, per_query, q)
        macs = (
            None
            if any(m is None for m in (*projections, scores, bias_macs))
            else sympy.Add(*projections, scores, bias_macs)
        )
        outputs = layer.out_shape.elements
        return {
            "params": params,
            "fan_in": d,
            "macs": macs,
            "connections": times(outputs, d),
            "kv_cache": times(2, keys, kv),
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        o = AttentionOptions.of(layer)
        # in the textbook symbols: C the width, and the layer's own heads and head width
        heads, kv_heads = o.heads, o.kv_heads
        e = t.c / heads if _default_head_dim(layer) else o.head_dim
        q, kv = heads * e, kv_heads * e
        c = t.c if o.source is None else o.source[1]
        params = t.c * q + 2 * c * kv + q * t.c
        if layer.bias:
            params += q + 2 * kv + t.c
        if o.partition is not None:
            params += self.position_bias(layer, heads, o.partition, head_dim=e)[0]
        return expansion.expand(params)

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        """Every output sees every position (a window or grid attention's field, windows that do not slide, is
        left unknown)."""
        return whole_input_field(layer, field) if AttentionOptions.of(layer).partition is None else None

    # ---- explain
    def header(self, layer: Layer, words: Words) -> str:
        o = AttentionOptions.of(layer)
        parts = [f", {words(o.heads)} heads of width {words(o.head_dim)}"]
        if o.kv_heads != o.heads:
            parts.append(f", {words(o.kv_heads)} key/value heads")
        if o.source is not None:
            parts.append(f", keys from {words(o.source[0])} x {words(o.source[1])}")
        if o.window is not None:
            parts.append(
                f", {words(o.window)}x{words(o.window)} windows"
                + (" shifted" if o.shift else "")
                + (", map padded to a multiple" if o.pad else "")
            )
        if o.grid is not None:
            parts.append(f", across a {words(o.grid)}x{words(o.grid)} grid of strided positions")
        if o.cpb is not None:
            parts.append(f", continuous position bias (MLP of width {words(o.cpb)})")
        if o.partition is not None and o.relpos != "table":
            parts.append(
                {
                    "none": ", no position bias",
                    "offsets": ", a bias per offset",
                    "axes": ", relative positions by axis",
                }[o.relpos]
            )
        parts += [", causal"] * o.causal + [", rotary positions"] * o.rope + [", across channels"] * o.channels
        return "".join(parts) + (", with bias" if layer.bias else "")

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        s, o = self.sizes(layer), AttentionOptions.of(layer)
        d, q, kv, c = s["d"], s["q"], s["kv"], s["c"]
        lines = [
            f"Queries: {w(o.heads)} heads of width {w(o.head_dim)}, q = {w(q)} channels; "
            f"the query projection has {w.product(d, q)} weights and the output projection "
            f"{w.product(q, d)}."
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
        if layer.bias:
            lines.append(
                f"Biases on every projection: {w(q)} for the queries, {w(kv)} each for the keys and values, "
                f"{w(d)} for the output."
            )
        window = o.window
        if o.grid is not None:
            g = o.grid
            spatial = layer.in_shape.spatial or ()
            apart = (
                f"{w(spatial[0] / g)} rows and {w(spatial[1] / g)} columns apart"
                if len(spatial) == 2 and None not in spatial
                else f"H/{w(g)} rows and W/{w(g)} columns apart"
            )
            bias = (
                "no position bias"
                if o.relpos == "none"
                else f"a learned relative-position bias per head over the grid's offsets: "
                f"{w.product((2 * g - 1) ** 2, o.heads)} parameters"
            )
            lines.append(
                f"Grid attention (MaxViT, a paramsym extension): each position attends to the "
                f"{w(g**2)} positions of its {w(g)}x{w(g)} grid, {apart}; {bias}."
            )
        if window is not None and o.cpb is None and o.relpos == "table":
            lines.append(
                f"A learned relative-position bias per head over a {w(window)}x{w(window)} window: "
                f"{w.product((2 * window - 1) ** 2, o.heads)} parameters."
            )
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
        elif window is not None:
            m, table = o.cpb, (2 * window - 1) ** 2
            lines.append(
                f"A continuous position bias (Swin V2, a paramsym extension): an MLP of {w(m)} hidden units "
                f"maps each of the {w(table)} relative positions of the {w(window)}x{w(window)} window to one "
                f"bias per head, {w.product(2, m)} weights + {w(m)} biases + {w.product(m, o.heads)} "
                f"weights, and cosine attention has a logit scale per head, {w(o.heads)}: "
                f"{w(self.position_bias(layer, o.heads, window)[0])} parameters; the MLP runs over the "
                f"table each time, {w(self.position_bias(layer, o.heads, window)[1])} MACs."
            )
            if layer.bias:
                lines.append(
                    "(torchvision's Swin V2 zeroes the key bias in its forward pass; the parameter exists and counts.)"
                )
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
        if counts.macs is not None and o.channels:
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
        if counts.kv_cache is not None:
            lines.append(f"KV cache: the keys and values of every position, {w(counts.kv_cache)} values.")
        lines.append(f"Fan-in: each projection unit sees the {w(d)} channels of one position.")
        return lines

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
        if o.partition is not None:
            return _window_spec(layer, num)
        if o.channels:
            d, heads, e = num(layer.cin), num(o.heads), num(o.head_dim)
            return TorchSpec("ChannelAttention", (d, heads), {"head_dim": e, "bias": layer.bias})
        if o.source is not None:
            raise ParamsymUsageError(
                f"{layer.name} at {layer.pos}: cross-attention (source=) needs a second input "
                f"(the keys' source), which an exported nn.Sequential cannot take"
            )
        d, heads, kv_heads, e = num(layer.cin), num(o.heads), num(o.kv_heads), num(o.head_dim)
        if kv_heads == heads and e * heads == d and not o.rope:
            mha = TorchSpec("nn.MultiheadAttention", (d, heads), {"bias": layer.bias, "batch_first": True})
            return TorchSpec("SelfAttention", (mha,), {"causal": o.causal})
        extra = {"rope": True} if o.rope else {}
        return TorchSpec(
            "GroupedQueryAttention",
            (d, heads),
            {"kv_heads": kv_heads, "head_dim": e, "bias": layer.bias, "causal": o.causal, **extra},
        )

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        o = AttentionOptions.of(layer)
        if o.window is not None:
            refuse_keras(layer, "window attention (Swin) has no Keras layer")
        if o.grid is not None:
            refuse_keras(layer, "grid attention (MaxViT) has no Keras layer")
        if o.channels:
            refuse_keras(layer, "channel attention (DaViT) has no Keras layer")
        if o.source is not None:
            refuse_keras(layer, "cross-attention (source=) needs a second input, which the exported model cannot take")
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

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        name = type(module).__name__
        if name in ("SelfAttention", "GroupedQueryAttention"):
            return _own_text(module)
        if name == "WindowAttention":
            return _window_text(module, ctx)
        if name in ("ChannelAttention", "ChannelAttentionV2"):
            return _channel_text(module, ctx)
        if name in ("SpatialBlock", "ChannelBlock"):
            return _timm_davit_block_text(module, ctx)
        if name == "NestLevel":
            return _timm_nest_level_text(module, ctx)
        if type(module).__module__ == "timm.layers.attention":
            return _timm_text(module, ctx)
        if name == "SwinTransformerBlock":
            return _timm_swin_block_text(module, ctx)
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


def _own_text(module: Any) -> str:
    """paramsym's own exported modules (torch_modules.SelfAttention, GroupedQueryAttention) read back."""
    if type(module).__name__ == "SelfAttention":
        mha = module.attention
        heads, kv_heads, head_dim, width = mha.num_heads, mha.num_heads, mha.head_dim, mha.embed_dim
        bias = mha.in_proj_bias is not None
    else:
        heads, kv_heads, head_dim, width = module.heads, module.kv_heads, module.head_dim, module.q.in_features
        bias = module.q.bias is not None
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
    parts += ["bias"] * bias + ["causal"] * bool(module.causal) + ["rope"] * bool(getattr(module, "rope", False))
    return f"attn({', '.join(parts)})"


def _timm_text(module: Any, ctx: ImportContext) -> str:
    """timm's Attention (timm.layers.attention): qkv and proj Linear layers, num_heads heads of head_dim."""
    where = f"{ctx.node_name} (Attention)"
    extras = [name for name in ("q_norm", "k_norm", "norm") if type(getattr(module, name, None)).__name__ != "Identity"]
    if extras or getattr(module, "gate", None) is not None:
        raise ImportRefused(
            f"{where} normalises its queries, keys or output ({', '.join(extras) or 'a gate'}), which the language's "
            f"attn has no counterpart for"
        )
    qkv, proj = module.qkv, module.proj
    width, heads, head_dim = qkv.in_features, module.num_heads, module.head_dim
    if proj.out_features != width or qkv.out_features != 3 * heads * head_dim:
        raise ImportRefused(f"{where} gives {proj.out_features} channels from {width}; attn keeps the width")
    if (qkv.bias is None) != (proj.bias is None):
        raise ImportRefused(
            f"{where} has biases in {'proj' if qkv.bias is None else 'qkv'} only; the language's attn has biases "
            f"in all four projections or none"
        )
    parts = (
        [f"heads={heads}"] + [f"head_dim={head_dim}"] * (heads * head_dim != width) + ["bias"] * (qkv.bias is not None)
    )
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


def _window_text(module: Any, ctx: ImportContext) -> str:
    """torch_modules.WindowAttention read back."""
    if not all(hasattr(module, a) for a in ("kv_heads", "head_dim", "window_size", "shift_size", "qkv", "proj")):
        raise ImportRefused(f"{ctx.node_name} (WindowAttention) is not paramsym's window attention module")
    heads, kv_heads, e = module.heads, module.kv_heads, module.head_dim
    width, window = module.proj.out_features, module.window_size[0]
    if (
        module.window_size[1] != window
        or len(set(module.shift_size)) != 1
        or module.shift_size[0] not in (0, window // 2)
    ):
        raise ImportRefused(
            f"{ctx.node_name} (WindowAttention) has windows of {module.window_size} shifted by "
            f"{module.shift_size}: the language has square w x w windows shifted by w//2"
        )
    if (module.qkv.bias is None) != (module.proj.bias is None):
        raise ImportRefused(f"{ctx.node_name} (WindowAttention) has a bias on only one of its projections")
    parts = [f"heads={heads}"]
    if kv_heads != heads:
        parts.append(f"kv_heads={kv_heads}")
    if e * heads != width:
        parts.append(f"head_dim={e}")
    side = f"grid={window}" if getattr(module, "grid", False) else f"window={window}"
    parts += ["bias"] * (module.qkv.bias is not None) + [side] + ["shift"] * (module.shift_size[0] > 0)
    relpos = getattr(module, "relpos", "table")
    parts += [f"relpos={relpos}"] * (relpos != "table")
    return f"attn({', '.join(parts)})"


KINDS = (Attention(),)
