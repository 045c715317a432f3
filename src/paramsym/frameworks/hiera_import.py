"""timm's HieraDet (hieradet_*, sam2_hiera_*: SAM2's image encoder) and Hiera (hiera_*) read by their layout, as
hf_import reads timm's mvitv2: their forward reorders tokens and adds resized tables of positions, which a traced
graph shows as reshapes; the modules say what they compute. The program is checked against the model (params,
buffers, output shape, FlopCounterMode MACs) by importer._verified, as every import is.

HieraDet: a patch Conv2d (channels last), `winposembed(A x B, window=w)` (its pos_embed resized to the map plus
pos_embed_window tiled), then MultiScaleBlocks: attention in w x w windows (or over the whole map) whose queries are
max pooled where a stage begins (`qpoolattn`), the shortcut a projection of ln(x) then the same max pooling where the
width changes, and an MLP; then the head (ClNormMlpClassifierHead: average over the map, LayerNorm, Linear).

Hiera: a patch Conv2d made a sequence with learned positions (posembed), its tokens unrolled into mask units
(`Unroll`: an order of the tokens in which a mask unit, and each s x s pooling of it, is contiguous; the program lays
the sequence out as the map, `untokens(H x W)`, and reads a mask unit as a window of the map, which counts the same),
then HieraBlocks (`qpoolattn` in mask units or over the whole map), the average of the tokens, the head."""

from __future__ import annotations

from typing import Any

from ..errors import ImportRefused
from ..kinds.query_pooling import text as attention_text
from ..kinds.window_position import text as positions_text
from .hf_import import _fold, _image, _ln, _sides


def recognises(model: Any) -> bool:
    name, module = type(model).__name__, type(model).__module__
    return (name, module) in (("HieraDet", "timm.models.hieradet_sam2"), ("Hiera", "timm.models.hiera"))


def from_layout(model: Any, size: tuple | None) -> str:
    if type(model).__name__ == "HieraDet":
        return _hieradet(model, size)
    return _hiera(model, size)


def _patch(conv: Any, where: str, size: tuple) -> tuple[str, tuple]:
    """(text, the map's size) of a patch Conv2d with a bias."""
    if (
        type(conv).__name__ != "Conv2d"
        or conv.groups != 1
        or tuple(conv.dilation) != (1, 1)
        or conv.bias is None
        or conv.padding_mode != "zeros"
        or isinstance(conv.padding, str)
    ):
        raise ImportRefused(f"{where}: a patch convolution other than a Conv2d with a bias has no counterpart")
    if size[2] != conv.in_channels:
        raise ImportRefused(f"{where} takes images of {conv.in_channels} channels, not {size[2]}")
    k, st, p = (_sides(v) for v in (conv.kernel_size, conv.stride, conv.padding))
    side = tuple(
        (n + 2 * pad - kernel) // stride + 1
        for n, kernel, stride, pad in zip(size[:2], conv.kernel_size, conv.stride, conv.padding)
    )
    text = f"conv{k}(->{conv.out_channels}, stride={st}" + (f", pad={p}" if any(conv.padding) else "") + ", bias)"
    return text, side


def _branch_end(block: Any, scale: str, drop: str, where: str, width: int) -> str:
    """The LayerScale and DropPath that end a residual branch: ` > scale`, ` > droppath(p)`, or nothing."""
    out = ""
    ls = getattr(block, scale)
    if type(ls).__name__ == "LayerScale":
        if tuple(ls.gamma.shape) != (width,) or getattr(ls, "inplace", False):
            raise ImportRefused(f"{where}: a layer scale other than a learned factor per channel")
        out += " > scale"
    elif type(ls).__name__ != "Identity":
        raise ImportRefused(f"{where}: {type(ls).__name__} where the block has a LayerScale or nothing")
    dp = getattr(block, drop)
    if type(dp).__name__ == "DropPath":
        out += f" > droppath({dp.drop_prob})"
    elif type(dp).__name__ != "Identity":
        raise ImportRefused(f"{where}: {type(dp).__name__} where the block has a DropPath or nothing")
    return out


def _mlp(mlp: Any, where: str, width: int) -> str:
    """timm's Mlp: Linear(D -> m) > GELU > Linear(m -> D), both with biases, no norm."""
    fc1, fc2 = mlp.fc1, mlp.fc2
    act = mlp.act
    if (
        type(fc1).__name__ != "Linear"
        or type(fc2).__name__ != "Linear"
        or fc1.in_features != width
        or fc2.out_features != width
        or fc1.bias is None
        or fc2.bias is None
        or type(act).__name__ != "GELU"
        or getattr(act, "approximate", "none") != "none"
        or type(getattr(mlp, "norm", None)).__name__ not in ("Identity", "NoneType")
    ):
        raise ImportRefused(f"{where}: an MLP other than Linear > GELU > Linear with biases has no counterpart")
    return f"dense(->{fc1.out_features}, bias) > gelu > dense(->{width}, bias)"


def _attention(attn: Any, where: str, d: int, D: int, window: int | None, stride: int, pad: bool) -> str:
    """The text of a qkv Linear(d -> 3·D) > attention > proj Linear(D -> D), both with biases or both without."""
    qkv, proj = attn.qkv, attn.proj
    heads = getattr(attn, "num_heads", getattr(attn, "heads", None))
    if (
        type(qkv).__name__ != "Linear"
        or type(proj).__name__ != "Linear"
        or (qkv.in_features, qkv.out_features) != (d, 3 * D)
        or (proj.in_features, proj.out_features) != (D, D)
        or (qkv.bias is None) != (proj.bias is None)
        or not isinstance(heads, int)
        or D % heads
    ):
        raise ImportRefused(
            f"{where}: an attention other than qkv Linear({d} -> {3 * D}) and proj Linear({D} -> {D}), both with "
            f"biases or both without, has no counterpart"
        )
    bias = qkv.bias is not None
    if stride == 1 and d == D:  # no pooling, no widening: the language's attn says it (without a position bias)
        options = [f"heads={heads}"] + [f"window={window}", "relpos=none"] * (window is not None)
        return f"attn({', '.join(options + ['pad'] * pad + ['bias'] * bias)})"
    return attention_text(d, D, heads, window, stride, pad, bias)


def _shortcut(proj: Any, where: str, d: int, D: int, stride: int) -> str:
    """The shortcut of a block that widens: Linear(d -> D) with a bias on ln(x), max pooled as the queries are."""
    if type(proj).__name__ != "Linear" or (proj.in_features, proj.out_features) != (d, D) or proj.bias is None:
        raise ImportRefused(f"{where}: a shortcut projection other than Linear({d} -> {D}) with a bias")
    return f"dense(->{D}, bias)" + (f" > maxpool{stride}x{stride}" if stride > 1 else "")


def _head(model: Any, head: Any, where: str, width: int, mean: str) -> str:
    """The classifier: the average over the positions (`mean` tells where: the caller checked the head's pooling),
    a LayerNorm where the head has one, no hidden layer, a Linear with a bias or nothing."""
    parts = ["gap"]
    norm = getattr(head, "norm", None)
    if norm is not None and type(norm).__name__ != "Identity":
        parts.append(_ln(norm, f"{where} ({mean})", width))
    if type(getattr(head, "pre_logits", None)).__name__ not in ("Identity", "NoneType"):
        raise ImportRefused(f"{where}: a hidden layer in the head has no counterpart in the layout")
    fc = head.fc
    if type(fc).__name__ == "Linear":
        if fc.in_features != width or fc.bias is None:
            raise ImportRefused(f"{where}: a head Linear other than Linear({width} -> classes) with a bias")
        parts.append(f"dense(->{fc.out_features}, bias)")
    elif type(fc).__name__ != "Identity":
        raise ImportRefused(f"{where}: a head {type(fc).__name__} has no counterpart in the layout")
    return " > ".join(parts)


def _program(name: str, size: tuple, stem: list[str], blocks: list[str], head: str) -> str:
    lines = [f"# {name} read by paramsym", f"input({_sides(size)})", f"  > {' > '.join(stem)}"]
    for text in blocks:
        lines += [folded for part in text.split("\n > ") for folded in _fold(f"  > {part}")]
    lines.append(f"  > {head}")
    return "\n".join(lines) + "\n"


def _hieradet(model: Any, size: tuple | None) -> str:
    name = type(model).__name__
    if type(model.patch_embed).__name__ != "HieraPatchEmbed":
        raise ImportRefused(f"{name}: a patch embedding other than HieraPatchEmbed has no counterpart in the layout")
    conv = model.patch_embed.proj
    default = tuple((getattr(model, "pretrained_cfg", None) or {}).get("input_size", (conv.in_channels, 224, 224)))
    size = _image(model, size, (*default[1:], default[0]))
    stem, side = _patch(conv, f"{name} patch_embed", size)
    width = conv.out_channels
    table, window = model.pos_embed, model.pos_embed_window
    if table is None or window is None or table.dim() != 4 or window.dim() != 4 or window.shape[-1] != window.shape[-2]:
        raise ImportRefused(f"{name}: positions other than pos_embed resized plus pos_embed_window tiled")
    if side[0] % window.shape[-1] or side[1] % window.shape[-1]:
        raise ImportRefused(
            f"{name}: its window of positions ({window.shape[-1]}) does not divide the map {side} (timm's tile fails)"
        )
    blocks = []
    for i, block in enumerate(model.blocks):
        where = f"{name} blocks.{i}"
        text, side = _hieradet_block(block, where, side)
        blocks.append(text)
        width = block.dim_out
    head = model.head
    if type(head).__name__ != "ClNormMlpClassifierHead" or head.pool_type != "avg" or head.pool_dim != (1, 2):
        raise ImportRefused(f"{name}: a head other than ClNormMlpClassifierHead with average pooling")
    return _program(
        name,
        size,
        [stem, positions_text(tuple(table.shape[2:]), window.shape[-1])],
        blocks,
        _head(model, head, f"{name} head", width, "the average of the map"),
    )


def _hieradet_block(block: Any, where: str, side: tuple) -> tuple[str, tuple]:
    """(text, the map's size after it) of timm's MultiScaleBlock (hieradet_sam2): x = shortcut + attn(ln(x)), the
    attention in windows of the map (padded at the bottom and right to a multiple of the window) or over all of it,
    its queries max pooled with q_stride; the shortcut x, or a projection of ln(x) (max pooled as the queries are)
    where the width changes; then x + mlp(ln(x))."""
    if type(block).__name__ != "MultiScaleBlock":
        raise ImportRefused(f"{where}: {type(block).__name__} where HieraDet has its MultiScaleBlock")
    d, D = block.dim, block.dim_out
    _ln(block.norm1, where, d)
    _ln(block.norm2, where, D)
    window = block.window_size[0] if block.is_windowed else None
    if block.is_windowed and block.window_size[0] != block.window_size[1]:
        raise ImportRefused(f"{where}: windows of {block.window_size} (the language's are square)")
    stride = 1
    pool, qpool = block.pool, block.attn.q_pool
    if block.q_stride:
        q = tuple(block.q_stride)
        if (
            len(set(q)) != 1
            or type(pool).__name__ != "MaxPool2d"
            or type(qpool).__name__ != "MaxPool2d"
            or any(
                p.kernel_size not in (q, q[0])
                or p.stride not in (q, q[0])
                or p.padding not in (0, (0, 0))
                or p.ceil_mode
                for p in (pool, qpool)
            )
        ):
            raise ImportRefused(f"{where}: a query pooling other than nn.MaxPool2d(q_stride, q_stride)")
        stride = q[0]
        if window is not None and window % stride:
            raise ImportRefused(f"{where}: q_stride {stride} does not divide the window {window}")
        if d == D:
            raise ImportRefused(
                f"{where}: pools its queries but not its shortcut (timm pools it where the width changes)"
            )
    elif qpool is not None:
        raise ImportRefused(f"{where}: its attention pools the queries, its block does not say so")
    pad = window is not None and bool(side[0] % window or side[1] % window)
    attention = _attention(block.attn, where, d, D, window, stride, pad)
    attention += _branch_end(block, "ls1", "drop_path1", where, D)
    mlp = f"res(ln > {_mlp(block.mlp, where, D)}{_branch_end(block, 'ls2', 'drop_path2', where, D)})"
    after = (side[0] // stride, side[1] // stride)
    if d == D:
        return f"res(ln > {attention})\n > {mlp}", after
    return f"ln > res({attention} | {_shortcut(block.proj, where, d, D, stride)})\n > {mlp}", after


def _hiera(model: Any, size: tuple | None) -> str:
    name = type(model).__name__
    patch = model.patch_embed
    if type(patch).__name__ != "PatchEmbed" or not patch.reshape or patch.spatial_dims != 2:
        raise ImportRefused(f"{name}: a patch embedding other than Hiera's 2-D PatchEmbed has no counterpart")
    conv = patch.proj
    built = tuple(model.unroll.size)  # the map of tokens the model was built for: Unroll works on no other
    default = (*(n * s for n, s in zip(built, model.patch_stride)), conv.in_channels)
    size = _image(model, size, default)
    stem, side = _patch(conv, f"{name} patch_embed", size)
    if tuple(side) != built:
        raise ImportRefused(
            f"{name} was built for a map of {_sides(built)} tokens (images of {_sides(default)}); its Unroll reorders "
            f"no other: build it with img_size={tuple(size[:2])}"
        )
    width = conv.out_channels
    stride, levels, unit = _unrolling(model, name, side)
    if model.pos_embed_spatial is not None:
        raise ImportRefused(f"{name}: separate spatial and temporal positions (video) have no counterpart here")
    if model.pos_embed_win is not None:
        table, window = model.pos_embed, model.pos_embed_win
        if tuple(window.shape[2:]) != (unit, unit):
            raise ImportRefused(f"{name}: a window of positions other than the mask unit")
        positions = positions_text(tuple(table.shape[2:]), unit)
    elif model.pos_embed is not None and tuple(model.pos_embed.shape) == (1, side[0] * side[1], width):
        positions = f"posembed({side[0] * side[1]})"
    else:
        raise ImportRefused(f"{name}: positions other than a learned table of the tokens, or resized and tiled")
    blocks = []
    for i, block in enumerate(model.blocks):
        where = f"{name} blocks.{i}"
        text, side, unit, levels = _hiera_block(block, where, side, unit, stride, levels)
        blocks.append(text)
        width = block.dim_out
    head = model.head
    if type(head).__name__ != "ClNormMlpClassifierHead" or head.pool_type != "avg" or head.pool_dim != 1:
        raise ImportRefused(f"{name}: a head other than ClNormMlpClassifierHead averaging the tokens")
    return _program(name, size, [stem, positions], blocks, _head(model, head, f"{name} head", width, "the tokens"))


def _unrolling(model: Any, name: str, side: tuple) -> tuple[int, int, int]:
    """(the pooling's side s, the unrolled levels, the mask unit's side) of a Hiera whose reordering of the tokens
    keeps what the language reads: each level of its Unroll an s x s stride, the mask unit s^levels on a side (so that
    a mask unit is a window of the map, and each pooling takes the next level: s x s neighbours)."""
    q = tuple(model.q_stride)
    unit_sides = tuple(model.mask_unit_size)
    schedule = [tuple(level) for level in model.unroll.schedule]
    if len(set(q)) != 1 or len(set(unit_sides)) != 1 or any(level != q for level in schedule):
        raise ImportRefused(f"{name}: a query stride {q} or mask units {unit_sides} that are not square")
    stride, unit = q[0], unit_sides[0]
    if unit != stride ** len(schedule) or side[0] % unit or side[1] % unit:
        raise ImportRefused(
            f"{name}: mask units of {unit} with {len(schedule)} unrolled strides of {stride}: a mask unit is then not "
            f"a window of the map (the layout reads mask units of stride ** levels, which divide the map)"
        )
    return stride, len(schedule), unit


def _hiera_block(block: Any, where: str, side: tuple, unit: int, stride: int, levels: int) -> tuple:
    """(text, the map's size, the mask unit's side and the unrolled levels after it) of timm's HieraBlock: x =
    shortcut + attn(ln(x)), the attention in mask units (windows of the map) or over all of it, its queries max
    pooled over the next unrolled level; the shortcut x, or a projection of ln(x) max pooled as the queries are where
    the width changes; then x + mlp(ln(x))."""
    if type(block).__name__ != "HieraBlock":
        raise ImportRefused(f"{where}: {type(block).__name__} where Hiera has its HieraBlock")
    d, D = block.dim, block.dim_out
    attn = block.attn
    _ln(block.norm1, where, d)
    _ln(block.norm2, where, D)
    pooled = attn.q_stride > 1
    if pooled and (attn.q_stride != stride * stride or levels == 0):
        raise ImportRefused(
            f"{where}: pools its queries by {attn.q_stride} where the unrolled tokens pool by {stride}²"
        )
    s = stride if pooled else 1
    window = None
    if attn.use_mask_unit_attn:
        if attn.window_size * attn.q_stride != unit * unit:
            raise ImportRefused(f"{where}: mask units of {attn.window_size * attn.q_stride} tokens, not {unit}x{unit}")
        window = unit
    if d != D and not block.do_expand:
        raise ImportRefused(f"{where}: widens {d} -> {D} without a shortcut of that width")
    if d != D and block.proj is None and 2 * d != D:
        raise ImportRefused(f"{where}: a shortcut of the max and the average pooled input gives {2 * d}, not {D}")
    if d == D and pooled:
        raise ImportRefused(f"{where}: pools its queries but not its shortcut")
    attention = _attention(attn, where, d, D, window, s, False)
    attention += _branch_end(block, "ls1", "drop_path1", where, D)
    mlp = f"res(ln > {_mlp(block.mlp, where, D)}{_branch_end(block, 'ls2', 'drop_path2', where, D)})"
    after = (side[0] // s, side[1] // s)
    if pooled:
        unit, levels = unit // stride, levels - 1
    if d == D:
        return f"res(ln > {attention})\n > {mlp}", after, unit, levels
    if block.proj is None:
        # use_expand_proj=False: the input itself (not its norm), max pooled and average pooled, side by side
        pools = f"maxpool{s}x{s} | avgpool{s}x{s}" if s > 1 else "id | id"
        return f"res(ln > {attention} | concat({pools}))\n > {mlp}", after, unit, levels
    return f"ln > res({attention} | {_shortcut(block.proj, where, d, D, s)})\n > {mlp}", after, unit, levels
