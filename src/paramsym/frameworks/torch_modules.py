"""The few PyTorch modules the language needs beyond torch.nn (needs torch).

Exported source (`paramsym export --to torch`) copies these classes in, so the
file it writes runs without paramsym.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F


class Residual(nn.Module):
    """main(x) + shortcut(x); the shortcut is the identity when absent."""

    def __init__(self, main: nn.Module, shortcut: nn.Module | None = None):
        super().__init__()
        self.main = main
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x):
        return self.main(x) + self.shortcut(x)


class Branches(nn.Module):
    """Every branch on the same input, summed ("add"), the second subtracted from the first ("sub"), joined along
    channels ("concat") or along the positions of sequences ("seqcat") or multiplied
    ("mul": a branch that gives a vector (N, C) is a gate, broadcast over every position: `expand` gives,
    for each branch, how many axes of 1 its output takes at the end, decided when the model is written, so
    that torch.fx can trace the module)."""

    def __init__(self, how: str, *branches: nn.Module, expand: tuple = ()):
        super().__init__()
        self.how = how
        self.branches = nn.ModuleList(branches)
        self.expand = tuple(expand) or (0,) * len(branches)

    def forward(self, x):
        outputs = [branch(x) for branch in self.branches]
        if self.how == "concat":
            return torch.cat(outputs, dim=1)
        if self.how == "seqcat":  # sequences (N, d, T) joined along their positions
            return torch.cat(outputs, dim=-1)
        outputs = [output[(..., *[None] * n)] if n else output for output, n in zip(outputs, self.expand)]
        total = outputs[0]
        for output in outputs[1:]:
            total = total * output if self.how == "mul" else total - output if self.how == "sub" else total + output
        return total


class SelectiveKernels(nn.Module):
    """`sk(A | B | ... | ATTENTION)`: the paths on the input, stacked; the attention on their sum gives (N, m*C)
    scores, a softmax over the m paths per channel gives the weights of the paths' weighted sum."""

    def __init__(self, *branches: nn.Module):
        super().__init__()
        self.paths = nn.ModuleList(branches[:-1])
        self.attention = branches[-1]

    def forward(self, x):
        paths = torch.stack([path(x) for path in self.paths], dim=1)  # (N, m, C, ...)
        scores = self.attention(paths.sum(dim=1))  # (N, m*C)
        weights = torch.softmax(scores.view(*paths.shape[:3], *[1] * (paths.dim() - 3)), dim=1)
        return (paths * weights).sum(dim=1)


class ChannelsLast(nn.Module):
    """Applies a module that acts on the last axis (Linear, LayerNorm) to the channel axis."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):  # used only on inputs with spatial axes (a vector needs no move)
        return self.module(x.movedim(1, -1)).movedim(-1, 1)


class FlattenChannelsLast(nn.Module):
    """Flatten in H x W x C order, as the language (and Keras) lays the values out."""

    def forward(self, x):
        return x.movedim(1, -1).flatten(1)


class SamePad(nn.Module):
    """TensorFlow's "same" padding, which may put one more on the far side."""

    def __init__(self, pads: tuple, value: float = 0.0):
        super().__init__()
        self.pads = tuple(pads)
        self.value = value

    def forward(self, x):
        return F.pad(x, self.pads, value=self.value)


class Aux(nn.Module):
    """A side head (GoogLeNet's auxiliary classifier): its parameters count, its output is not used."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, x):
        return x


class Keep(nn.Module):
    """`STAGE as NAME`: the stage, whose value it keeps (until the next forward) for the `Fetch` modules that
    read it later in the same forward."""

    def __init__(self, module: nn.Module, name: str = ""):
        super().__init__()
        self.module = module
        self.name = name
        self.value = None

    def forward(self, x):
        self.value = self.module(x)
        return self.value


class Fetch(nn.Module):
    """`@NAME`: the value its `Keep` module kept earlier in this forward (its own input is not used). The Keep
    module is held in a list, so that its parameters are not counted a second time as this module's."""

    def __init__(self, kept: nn.Module):
        super().__init__()
        self.kept = [kept]

    def forward(self, x):
        return self.kept[0].value


class MixtureOfExperts(nn.Module):
    """`moe(SEQ, experts=E, top=k[, score_bias])`: a router Linear(d, E) without bias scores the experts at each
    position; each position's output is the softmax-weighted sum of its k best experts (every expert
    runs on every position here, which gives the same result as sending each position to k of them).
    Tensors are channels first, like every exported module."""

    def __init__(self, router: nn.Module, experts: nn.Sequential, top: int, score_bias: bool = False):
        super().__init__()
        self.router = router
        self.experts = nn.ModuleList(experts)
        self.top = top
        # `score_bias`: one bias per expert added to the scores to choose them (DeepSeek-V3's), a buffer
        self.register_buffer("e_score_correction_bias", torch.zeros(len(self.experts)) if score_bias else None)

    def forward(self, x):
        scores = self.router(x)  # (N, E, *positions)
        if self.e_score_correction_bias is None:
            weights, chosen = scores.topk(self.top, dim=1)
        else:
            bias = self.e_score_correction_bias.view(1, -1, *[1] * (scores.dim() - 2))  # type: ignore[operator]
            chosen = (scores + bias).topk(self.top, dim=1).indices
            weights = scores.gather(1, chosen)
        gate = torch.zeros_like(scores).scatter(1, chosen, weights.softmax(dim=1))
        outputs = torch.stack([expert(x) for expert in self.experts], dim=1)  # (N, E, C, *positions)
        return (outputs * gate.unsqueeze(2)).sum(dim=1)


class ChannelsFirst(nn.Module):
    """Moves the channels a module puts last (nn.Embedding's (N, T, d)) to axis 1: (N, d, T)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x).movedim(-1, 1)


class PositionEmbedding(nn.Module):
    """Adds a learned table of n vectors of d to a sequence (N, d, T): row t to position t when T <= n
    (positions); with fewer rows than positions (segment or token types), row 0 to every position. On a map
    (N, d, H, W) the n = H·W rows go to its positions row by row."""

    def __init__(self, n: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, d) * 0.02)

    def forward(self, x):
        if x.dim() > 3:
            return x + self.weight.t().reshape(x.shape[1:])
        length = x.shape[-1]
        rows = self.weight[:length] if length <= self.weight.shape[0] else self.weight[:1].expand(length, -1)
        return x + rows.t()


class ResizedPositionEmbedding(nn.Module):
    """`posembed(A x B, resize=H x W, MODE)`: a learned grid of A x B vectors of d (timm's NaFlexViT keeps it as
    (1, A, B, d)), resized to H x W (F.interpolate, MODE, antialias as given) and added to the H·W positions of a
    sequence (N, d, H·W), row by row."""

    def __init__(self, a: int, b: int, h: int, w: int, d: int, mode: str = "bicubic", antialias: bool = False):
        super().__init__()
        self.table = nn.Parameter(torch.randn(1, a, b, d) * 0.02)
        self.grid = (h, w)
        self.mode = mode
        self.antialias = antialias

    def forward(self, x):
        corners = None if self.mode == "nearest" else False
        table = F.interpolate(
            self.table.permute(0, 3, 1, 2),
            size=self.grid,
            mode=self.mode,
            align_corners=corners,
            antialias=self.antialias,
        )
        return x + table.flatten(2)


class SeparablePositionEmbedding(nn.Module):
    """`posembed(A x B[, cls])`: adds a_i + b_j to position i*B + j of a sequence (N, d, A*B), from a table of A
    and one of B vectors (MViT's temporal and spatial positions); with `cls` the sequence is (N, d, 1 + A*B) and
    its first position (the class token) gets a vector of its own."""

    def __init__(self, a: int, b: int, d: int, cls: bool = False):
        super().__init__()
        self.first = nn.Parameter(torch.randn(a, d) * 0.02)
        self.second = nn.Parameter(torch.randn(b, d) * 0.02)
        self.token = nn.Parameter(torch.randn(1, d) * 0.02) if cls else None

    def forward(self, x):
        d = self.first.shape[1]
        table = (self.first[:, None, :] + self.second[None, :, :]).reshape(-1, d)
        if self.token is not None:
            table = torch.cat([self.token, table])
        return x + table.t()


class ClassToken(nn.Module):
    """Prepends one learned vector of d to a sequence (N, d, T): (N, d, T + 1)."""

    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(d))

    def forward(self, x):
        token = self.weight.view(1, -1, 1).expand(x.shape[0], -1, 1)
        return torch.cat([token, x], dim=-1)


class Tokens(nn.Module):
    """The positions of a map (N, C, H, W) become a sequence (N, C, H*W), row by row."""

    def forward(self, x):
        return x.flatten(2)


class Select(nn.Module):
    """One position of a sequence (N, d, T): the vector (N, d); index 0 (first) or -1 (last)."""

    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def forward(self, x):
        return x[..., self.index]


class Rest(nn.Module):
    """`rest(N)`: a sequence (N, d, T) without its first `skipped` positions: (N, d, T - skipped)."""

    def __init__(self, skipped: int):
        super().__init__()
        self.skipped = skipped

    def forward(self, x):
        return x[..., self.skipped :]


class SoftCap(nn.Module):
    """`softcap(C)`: C·tanh(x/C), element-wise (Gemma-2's final_logit_softcapping on its logits)."""

    def __init__(self, cap: float):
        super().__init__()
        self.cap = cap

    def forward(self, x):
        return torch.tanh(x / self.cap) * self.cap


class Prefix(nn.Module):
    """`prefix(N)`: the first `kept` positions of a sequence (N, d, T): (N, d, kept)."""

    def __init__(self, kept: int):
        super().__init__()
        self.kept = kept

    def forward(self, x):
        return x[..., : self.kept]


class TransposedLinear(nn.Module):
    """A linear layer whose weight is stored (in, out): the transpose of nn.Linear's, so that it can be
    another layer's weight (a tie to a dense layer of the transposed size)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features) * in_features**-0.5)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight.t(), self.bias)


class Recurrent(nn.Module):
    """An nn.LSTM, nn.GRU or nn.RNN (batch_first=True) on a channels-first sequence (N, C, T): its output
    at every step, channels first (N, H', T), or with `last` the last step's (N, H'); the final states
    it also returns are dropped."""

    def __init__(self, module: nn.Module, last: bool = False):
        super().__init__()
        self.module = module
        self.last = last

    def forward(self, x):
        output = self.module(x.movedim(1, -1))[0]
        return output[:, -1] if self.last else output.movedim(-1, 1)


class Recurrent2d(nn.Module):
    """An nn.LSTM, nn.GRU or nn.RNN (batch_first=True) along each row (`along="rows"`: H sequences of W steps)
    or each column ("columns": W sequences of H steps) of a channels-first map (N, C, H, W): (N, H', H, W)."""

    def __init__(self, module: nn.Module, along: str):
        super().__init__()
        if along not in ("rows", "columns"):
            raise ValueError(f"along={along!r}: rows or columns")
        self.module = module
        self.along = along

    def forward(self, x):
        n = x.shape[0]
        y = x.permute(0, 2, 3, 1) if self.along == "rows" else x.permute(0, 3, 2, 1)  # (N, rows or cols, steps, C)
        outer, steps = y.shape[1:3]
        y = self.module(y.reshape(n * outer, steps, -1))[0].reshape(n, outer, steps, -1)
        return y.permute(0, 3, 1, 2) if self.along == "rows" else y.permute(0, 3, 2, 1)


class SelfAttention(nn.Module):
    """nn.MultiheadAttention (batch_first) as self-attention on the positions of (N, C, *spatial):
    query, key and value are the input; the attention weights are not returned."""

    def __init__(self, attention: nn.Module, causal: bool = False):
        super().__init__()
        self.attention = attention
        self.causal = causal

    def forward(self, x):
        y = x.movedim(1, -1)
        shape = y.shape
        y = y.flatten(1, -2)
        mask = None
        if self.causal:
            n = y.shape[1]
            mask = torch.ones(n, n, dtype=torch.bool, device=y.device).triu(1)  # True: not attended
        y = self.attention(y, y, y, need_weights=False, attn_mask=mask)[0]
        return y.reshape(shape).movedim(-1, 1)


class HeadLayerNorm(nn.Module):
    """A LayerNorm of the head width without bias, with a weight for every head (Cohere's q_norm and k_norm,
    CohereLayerNorm((heads, head_dim))): on (N, heads, T, head_dim)."""

    def __init__(self, heads: int, head_dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(heads, head_dim))
        self.eps = eps

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * self.weight[:, None, :]


def softcapped_attention(q, k, v, mask, causal: bool, cap: float, scale: float | None = None):
    """softmax(C·tanh(q·kᵀ·scale / C) + mask)·v (Gemma-2's eager attention with attn_logit_softcapping=C): the
    two products F.scaled_dot_product_attention computes, with the cap between them. `mask`: a boolean (True:
    attended) or a float one added to the scores, or None; `causal`: key j seen by query i when j <= i."""
    t, s = q.shape[-2], k.shape[-2]
    scores = torch.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5 if scale is None else scale)
    scores = torch.tanh(scores / cap) * cap
    if mask is not None and mask.dtype != torch.bool:  # a position bias, added to the capped scores
        scores, mask = scores + mask, None
    if causal:
        below = torch.ones(t, s, dtype=torch.bool, device=q.device).tril()
        mask = below if mask is None else mask & below
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(scores.softmax(dim=-1), v)


class GroupedQueryAttention(nn.Module):
    """Multi-head attention with `kv_heads` key/value heads shared by the query heads (grouped-query
    attention) and any head width: q, k, v, o projections and F.scaled_dot_product_attention, on the
    positions of (N, C, *spatial). With `sr=R` keys and values come from the map reduced by Conv2d(C, C, R,
    stride R) > LayerNorm (PVT v2, Twins); with `srpool=R` from averages of R² consecutive positions > BatchNorm1d
    (NextViT). `proj_bias`: a bias on the output projection only (with bias=False). Besides: `out` output
    channels, `qv_bias` (biases on q, v and o, none on k) and `cosine` (cosine attention with a learned logit scale
    per head, Swin V2's). `sr_map=(H, W)`: the input is a sequence (N, C, H·W) that lays out that map row by row,
    which `sr` reduces (Twins PCPVT). `cls_rel=(H, W)`: the sequence is a class token then an H x W map row by row,
    with BEiT's table of (2H-1)(2W-1) + 3 biases per head added to the scores (its index a non-persistent buffer);
    `qk_norm` ("LayerNorm" or "RMSNorm"): a norm of the head width on every query and key head ("FullRMSNorm": an
    RMSNorm over all the query channels and one over all the key channels, OLMo-2's; "HeadLayerNorm": a LayerNorm of
    the head width without bias, with a weight for every head, Cohere's; both before rotary positions); `subln`: a
    LayerNorm of the heads' output before the output projection (BEiT-3's sub-LN). `pos_mlp=m` with `pos_map=(H, W)`: a
    relative-position bias over the H x W map (the input's, or the one a sequence lays out) made by timm's
    RelPosMlp, Linear(2, m) > ReLU > Linear(m, heads) over the (2H - 1)(2W - 1) log-spaced offsets, added to the
    scores (`pos_cls`: after a class token, whose bias is zero); `share_position_bias(other)` makes a module use
    the bias that `other` computes (timm's shared_rel_pos), without an MLP of its own. `qkv_bias`: biases on q,
    k and v, none on o (Qwen2's). `window=W` (with `causal`): a sliding window, each position attends to itself
    and the W - 1 positions before it (Mistral v0.1's mask). `score_cap=C`: each score s becomes C·tanh(s/C) before
    the mask and the softmax (Gemma-2's attn_logit_softcapping), the attention then computed by its two products.
    `rotary_dim` (with `rope`): rotary positions on the first rotary_dim channels of each head only (GPT-NeoX's
    rotary_pct); `alibi`: ALiBi's biases, −slope·distance on each score with BLOOM's slope per head."""

    def __init__(
        self,
        channels: int,
        heads: int,
        kv_heads: int | None = None,
        head_dim: int | None = None,
        bias: bool = True,
        causal: bool = False,
        source_channels: int | None = None,
        rope: bool = False,
        sr: int = 0,
        srpool: int = 0,
        proj_bias: bool = False,
        out: int | None = None,
        qv_bias: bool = False,
        qkv_bias: bool = False,
        cosine: bool = False,
        sr_map: tuple[int, int] | None = None,
        cls_rel: tuple[int, int] | None = None,
        qk_norm: str | None = None,
        subln: bool = False,
        pos_mlp: int | None = None,
        pos_map: tuple[int, int] | None = None,
        pos_cls: bool = False,
        window: int | None = None,
        score_cap: float | None = None,
        rotary_dim: int | None = None,
        alibi: bool = False,
    ):
        super().__init__()
        self.rope = rope
        if score_cap is not None and not score_cap > 0:
            raise ValueError(f"the cap of the scores must be a positive number, not {score_cap}")
        self.score_cap = score_cap
        self.rotary_dim = rotary_dim  # rope on the first rotary_dim channels of each head (GPT-NeoX's); None: all
        if rotary_dim is not None and not (rope and 0 < rotary_dim <= (head_dim or channels // heads)):
            raise ValueError("rotary_dim turns part of each head: it needs rope=True and 0 < rotary_dim <= head_dim")
        if alibi and rope:
            raise ValueError("alibi and rope are two ways of giving the positions: give one")
        self.alibi = alibi
        if window is not None and not causal:
            raise ValueError("a sliding window (window=) looks back: it needs causal=True")
        self.window = window
        self.sr_map = sr_map
        if pos_mlp is not None and pos_map is None:
            raise ValueError("pos_mlp needs pos_map, the map the bias is over")
        self.pos_map = pos_map
        self.pos_cls = pos_cls  # a class token before the map: its row and column of the bias are zeros
        self.pos_mlp: nn.Module | None = None
        if pos_mlp is not None:
            self.pos_mlp = nn.Sequential(nn.Linear(2, pos_mlp), nn.ReLU(), nn.Linear(pos_mlp, heads))
        self.bias_from: list[nn.Module] = []  # the module whose bias this one uses (a list: not a submodule)
        self.last_bias = None  # the bias this module computed in its last forward, for the ones that share it
        out = channels if out is None else out
        self.sr, self.srpool = sr, srpool
        if sr:
            self.reduce: nn.Module = nn.Conv2d(channels, channels, sr, stride=sr)
            self.reduce_norm: nn.Module = nn.LayerNorm(channels)
        elif srpool:
            self.reduce = nn.AvgPool1d(srpool * srpool, stride=srpool * srpool)
            self.reduce_norm = nn.BatchNorm1d(channels)
        kv_heads = heads if kv_heads is None else kv_heads
        head_dim = channels // heads if head_dim is None else head_dim
        source_channels = channels if source_channels is None else source_channels
        if heads % kv_heads:
            raise ValueError(f"kv_heads={kv_heads} must divide heads={heads}")
        self.heads, self.kv_heads, self.head_dim, self.causal = heads, kv_heads, head_dim, causal
        self.q = nn.Linear(channels, heads * head_dim, bias=bias)
        self.k = nn.Linear(source_channels, kv_heads * head_dim, bias=bias and not qv_bias)
        self.v = nn.Linear(source_channels, kv_heads * head_dim, bias=bias)
        self.o = nn.Linear(heads * head_dim, out, bias=(bias and not qkv_bias) or proj_bias)
        # cosine attention: a logit scale per head, log(10) at first
        self.logit_scale = nn.Parameter(torch.full((heads, 1, 1), 2.302585092994046)) if cosine else None
        norm = {"LayerNorm": nn.LayerNorm, "RMSNorm": nn.RMSNorm}.get(qk_norm or "")
        self.q_norm = norm(head_dim) if norm is not None else None
        self.k_norm = norm(head_dim) if norm is not None else None
        self.qk_norm_form = qk_norm if qk_norm in ("FullRMSNorm", "HeadLayerNorm") else None
        if qk_norm == "FullRMSNorm":  # OLMo-2: over all the channels of the projections
            self.q_norm, self.k_norm = nn.RMSNorm(heads * head_dim), nn.RMSNorm(kv_heads * head_dim)
        elif qk_norm == "HeadLayerNorm":  # Cohere: of the head width, a weight for every head
            self.q_norm, self.k_norm = HeadLayerNorm(heads, head_dim), HeadLayerNorm(kv_heads, head_dim)
        elif qk_norm is not None and norm is None:
            raise ValueError(f"qk_norm={qk_norm!r}: LayerNorm, RMSNorm, FullRMSNorm or HeadLayerNorm")
        self.subln = nn.LayerNorm(heads * head_dim) if subln else None
        self.cls_rel = cls_rel
        if cls_rel is not None:
            rows, cols = cls_rel
            entries = (2 * rows - 1) * (2 * cols - 1) + 3
            self.relative_position_bias_table = nn.Parameter(torch.zeros(entries, heads))
            self.register_buffer("relative_position_index", cls_relative_index(rows, cols), persistent=False)

    def attend(self, x, source):
        """x: (N, T, channels), source: (N, S, source_channels) -> (N, T, channels)."""
        n, t, s = x.shape[0], x.shape[1], source.shape[1]
        q, k = self.q(x), self.k(source)
        if self.qk_norm_form == "FullRMSNorm":  # over all the channels, before the heads are split
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.view(n, t, self.heads, self.head_dim).transpose(1, 2)
        k = k.view(n, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(source).view(n, s, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.qk_norm_form == "HeadLayerNorm":  # each head with its own weight, before the heads are shared
            q, k = self.q_norm(q), self.k_norm(k)
        if self.rope and self.rotary_dim is not None:  # partial rotary positions: the rest of each head unturned
            r = self.rotary_dim
            turned = rotary(q[..., :r], k[..., :r])
            q, k = torch.cat((turned[0], q[..., r:]), -1), torch.cat((turned[1], k[..., r:]), -1)
        elif self.rope:
            q, k = rotary(q, k)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        if self.q_norm is not None and self.qk_norm_form is None:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.logit_scale is not None:  # cosine attention: unit queries and keys, a scale per head
            q = F.normalize(q, dim=-1) * self.logit_scale.clamp(max=4.605170185988092).exp()  # at most 100
            k = F.normalize(k, dim=-1)
        mask = self.position_bias(q)
        if self.cls_rel is not None:  # BEiT's relative positions: (1, heads, T, T) added to the scores
            index = self.relative_position_index.view(-1)  # type: ignore[operator]
            mask = self.relative_position_bias_table[index].view(t, t, -1).permute(2, 0, 1).unsqueeze(0)
        causal = self.causal
        if self.window:  # the sliding window: key j is seen by query i when i - W < j <= i
            rows = torch.arange(t, device=q.device)[:, None]
            cols = torch.arange(s, device=q.device)[None, :]
            mask, causal = (cols <= rows) & (cols > rows - self.window), False
        if self.alibi:  # ALiBi: −slope·distance on each score, a fixed slope per head (BLOOM's slopes)
            bias = alibi_bias(self.heads, t, s, q.device, q.dtype)
            if causal:
                rows = torch.arange(t, device=q.device)[:, None]
                cols = torch.arange(s, device=q.device)[None, :]
                mask, causal = cols <= rows, False
            if mask is not None and mask.dtype == torch.bool:  # True: attended
                bias = bias.masked_fill(~mask, float("-inf"))
            elif mask is not None:
                bias = bias + mask
            mask = bias
        scale = 1.0 if self.logit_scale is not None else None
        if self.score_cap is None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=scale)
        else:
            y = softcapped_attention(q, k, v, mask, causal, self.score_cap, scale)
        y = y.transpose(1, 2).reshape(n, t, self.heads * self.head_dim)
        return self.o(y if self.subln is None else self.subln(y))

    def share_position_bias(self, other: nn.Module) -> None:
        """Use the position bias that `other` computes (it runs first); this module has no MLP of its own."""
        if getattr(other, "pos_mlp", None) is None:
            raise ValueError("the module to share a position bias with has no pos_mlp")
        if not isinstance(other, GroupedQueryAttention):
            raise ValueError("a position bias is shared with another GroupedQueryAttention")
        self.bias_from = [other]
        self.pos_map, self.pos_cls = other.pos_map, other.pos_cls

    def position_bias(self, q):
        """(1, heads, T, T): timm's RelPosMlp over the map's offsets (log-spaced), looked up for every pair of
        positions; another module's (share_position_bias); or None."""
        if self.bias_from:
            return self.bias_from[0].last_bias
        if self.pos_mlp is None or self.pos_map is None:
            return None
        h, w = self.pos_map
        dtype, device = q.dtype, q.device
        steps_h = torch.arange(1 - h, h, device=device, dtype=dtype)
        steps_w = torch.arange(1 - w, w, device=device, dtype=dtype)
        offsets = torch.stack(torch.meshgrid(steps_h, steps_w, indexing="ij"), -1).reshape(-1, 2)
        table = self.pos_mlp(offsets.sign() * offsets.abs().log1p())  # ((2h-1)(2w-1), heads)
        rows = torch.arange(h, device=device)[:, None].expand(h, w).flatten()
        cols = torch.arange(w, device=device)[None, :].expand(h, w).flatten()
        index = (rows[:, None] - rows[None, :] + h - 1) * (2 * w - 1) + (cols[:, None] - cols[None, :] + w - 1)
        bias = table[index.flatten()].view(h * w, h * w, -1).permute(2, 0, 1)
        if self.pos_cls:
            bias = F.pad(bias, [1, 0, 1, 0])
        self.last_bias = bias.unsqueeze(0)
        return self.last_bias

    def forward(self, x):
        y = x.movedim(1, -1)
        shape = y.shape
        y = y.flatten(1, -2)
        source = y
        if self.sr:
            grid = x if self.sr_map is None else x.unflatten(2, self.sr_map)  # the map a sequence lays out
            source = self.reduce_norm(self.reduce(grid).flatten(2).transpose(1, 2))
        elif self.srpool:
            source = self.reduce_norm(self.reduce(y.transpose(1, 2))).transpose(1, 2)
        return self.attend(y, source).reshape(*shape[:-1], -1).movedim(-1, 1)


def cls_relative_index(rows: int, cols: int):
    """BEiT's relative_position_index for a class token then a rows x cols map (timm's
    gen_relative_position_index): the offset's row in the (2·rows − 1)(2·cols − 1) table between two positions of the
    map, then three entries: class token to a position, a position to the class token, the class token to itself."""
    coords = torch.stack(torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    table = (2 * rows - 1) * (2 * cols - 1)
    area = rows * cols
    index = torch.zeros((area + 1, area + 1), dtype=torch.long)
    index[1:, 1:] = (relative[:, :, 0] + rows - 1) * (2 * cols - 1) + relative[:, :, 1] + cols - 1
    index[0, 0:] = table
    index[0:, 0] = table + 1
    index[0, 0] = table + 2
    return index


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def alibi_slopes(heads: int) -> list[float]:
    """ALiBi's slope of each head (Press et al.; BLOOM's _get_alibi_slopes): a geometric sequence from 2^(-8/n)
    for the largest power of two n <= heads, the remaining heads taking every other slope of the sequence for 2n."""
    n = 2 ** math.floor(math.log2(heads))
    slopes = [2 ** (-8 * (i + 1) / n) for i in range(n)]
    return slopes + [2 ** (-4 * (2 * i + 1) / n) for i in range(min(n, heads - n))]


def alibi_bias(heads: int, t: int, s: int, device, dtype):
    """(1, heads, t, s): −slope·|i − j| for query i and key j (a causal mask keeps j <= i)."""
    rows = torch.arange(t, device=device)[:, None]
    cols = torch.arange(s, device=device)[None, :]
    distance = (rows - cols).abs().to(dtype)
    slopes = torch.tensor(alibi_slopes(heads), device=device, dtype=dtype)
    return (-slopes[:, None, None] * distance).unsqueeze(0)


def rotary(q, k, base: float = 10000.0):
    """Rotary position embedding of queries and keys (N, heads, T, e), as Llama's (rotate_half, base 10000):
    no parameters, no multiply-accumulates that FlopCounterMode counts."""
    t, e = q.shape[-2], q.shape[-1]
    inverse = 1.0 / base ** (torch.arange(0, e, 2, device=q.device, dtype=torch.float32) / e)
    angles = torch.outer(torch.arange(t, device=q.device, dtype=torch.float32), inverse)
    angles = torch.cat((angles, angles), dim=-1)
    cos, sin = angles.cos().to(q.dtype), angles.sin().to(q.dtype)
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


class MultiHeadLatentAttention(nn.Module):
    """`mla(...)`: DeepSeek-V2/V3's multi-head latent attention, causal, on a sequence (N, d, T), with transformers'
    names: q_proj (or q_a_proj > q_a_layernorm > q_b_proj with `q_rank`), kv_a_proj_with_mqa (d -> latent +
    rotary key), kv_a_layernorm, kv_b_proj (latent -> every head's key without positions and value), o_proj.
    The rotary key is shared by the heads; `bias`: biases on q_a_proj, kv_a_proj_with_mqa and o_proj (q_proj,
    q_b_proj and kv_b_proj have none), as transformers' attention_bias."""

    def __init__(
        self,
        channels: int,
        heads: int,
        kv_rank: int,
        rope_dim: int,
        nope_dim: int,
        v_dim: int,
        q_rank: int | None = None,
        bias: bool = False,
    ):
        super().__init__()
        self.num_heads, self.kv_lora_rank, self.q_lora_rank = heads, kv_rank, q_rank
        self.qk_rope_head_dim, self.qk_nope_head_dim, self.v_head_dim = rope_dim, nope_dim, v_dim
        width = heads * (nope_dim + rope_dim)
        if q_rank is None:
            self.q_proj = nn.Linear(channels, width, bias=False)
        else:
            self.q_a_proj = nn.Linear(channels, q_rank, bias=bias)
            self.q_a_layernorm = nn.RMSNorm(q_rank)
            self.q_b_proj = nn.Linear(q_rank, width, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(channels, kv_rank + rope_dim, bias=bias)
        self.kv_a_layernorm = nn.RMSNorm(kv_rank)
        self.kv_b_proj = nn.Linear(kv_rank, heads * (nope_dim + v_dim), bias=False)
        self.o_proj = nn.Linear(heads * v_dim, channels, bias=bias)

    def forward(self, x):
        y = x.movedim(1, -1)  # (N, T, d)
        n, t = y.shape[0], y.shape[1]
        h, nope, rope, v = self.num_heads, self.qk_nope_head_dim, self.qk_rope_head_dim, self.v_head_dim
        q = self.q_proj(y) if self.q_lora_rank is None else self.q_b_proj(self.q_a_layernorm(self.q_a_proj(y)))
        q = q.view(n, t, h, nope + rope).transpose(1, 2)
        latent, k_rope = self.kv_a_proj_with_mqa(y).split([self.kv_lora_rank, rope], dim=-1)
        kv = self.kv_b_proj(self.kv_a_layernorm(latent)).view(n, t, h, nope + v).transpose(1, 2)
        k_nope, values = kv.split([nope, v], dim=-1)
        q_nope, q_rope = q.split([nope, rope], dim=-1)
        q_rope, k_rope = rotary(q_rope, k_rope.unsqueeze(1))  # one rotary key, shared by the heads
        keys = torch.cat((k_nope, k_rope.expand(-1, h, -1, -1)), dim=-1)
        out = F.scaled_dot_product_attention(torch.cat((q_nope, q_rope), dim=-1), keys, values, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(n, t, h * v)).movedim(-1, 1)


class LayerScale(nn.Module):
    """`scale`: one learned factor per channel (ConvNeXt's gamma), on channels-first tensors (N, C, ...); `shared`:
    one factor for every channel; `bias`: a learned shift after it (per channel, or shared)."""

    def __init__(self, channels: int, init: float = 1e-6, shared: bool = False, bias: bool = False):
        super().__init__()
        size = 1 if shared else channels
        self.weight = nn.Parameter(torch.full((size,), float(init)))
        self.bias = nn.Parameter(torch.zeros(size)) if bias else None

    def forward(self, x):
        shape = (1, -1, *[1] * (x.dim() - 2))
        y = x * self.weight.view(shape)
        return y if self.bias is None else y + self.bias.view(shape)


class StdConv(nn.Module):
    """`conv(..., std)`: a convolution whose filters are standardised (mean 0, variance 1 over each filter)
    before use, as timm's StdConv2d; with `gain`, each standardised filter is then multiplied by a learned
    factor per output channel and by 1/sqrt(fan-in), as timm's ScaledStdConv2d (gamma 1)."""

    def __init__(self, conv: nn.Module, gain: bool = False, eps: float = 1e-6):
        super().__init__()
        self.conv = conv
        weight: torch.Tensor = conv.weight  # type: ignore[assignment]  # (Cout, Cin/g, *kernel)
        self.gain = nn.Parameter(torch.ones(weight.shape[0])) if gain else None
        self.scale = weight[0].numel() ** -0.5 if gain else 1.0
        self.eps = eps

    def forward(self, x):
        w: torch.Tensor = self.conv.weight  # type: ignore[assignment]
        gain = None if self.gain is None else self.gain * self.scale
        standard = F.batch_norm(w.reshape(1, w.shape[0], -1), None, None, gain, training=True, eps=self.eps)
        return self.conv._conv_forward(x, standard.reshape_as(w), self.conv.bias)


class ChannelConv(nn.Module):
    """`eca(k)`: one kernel of k weights along the channels of a vector (N, C), zero padded, no bias (ECA-Net)."""

    def __init__(self, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel, padding=(kernel - 1) // 2, bias=False)

    def forward(self, x):
        return self.conv(x.unsqueeze(1)).squeeze(1)


class BlurPool(nn.Module):
    """`blurpool(k)`: each channel padded by ((stride - 1) + (k - 1)) // 2 on every side, by reflection (or with
    zeros) and convolved with the fixed k x k binomial filter at the stride (timm's BlurPool2d); the filter is a
    non-persistent buffer, neither learnt nor saved."""

    def __init__(self, kernel: int, stride: int = 2, zeros: bool = False):
        super().__init__()
        self.kernel, self.stride, self.zeros = kernel, stride, zeros
        self.padding = ((stride - 1) + (kernel - 1)) // 2
        row = [1.0]
        for _ in range(kernel - 1):  # the binomial coefficients of k - 1, Pascal's row
            row = [a + b for a, b in zip([0.0, *row], [*row, 0.0])]
        coeffs = torch.tensor(row) / 2 ** (kernel - 1)
        self.register_buffer("filt", (coeffs[:, None] * coeffs[None, :])[None, None], persistent=False)

    def forward(self, x):
        x = F.pad(x, [self.padding] * 4, mode="constant" if self.zeros else "reflect")
        channels = x.shape[1]
        weight = self.filt.expand(channels, 1, self.kernel, self.kernel)
        return F.conv2d(x, weight, stride=self.stride, groups=channels)


class SimpleNorm(nn.Module):
    """`simplenorm`: the last axis divided by its standard deviation (unbiased, not centred), times a scale per
    channel (timm's SimpleNorm)."""

    def __init__(self, channels: int, eps: float = 1e-6, affine: bool = True):
        super().__init__()
        self.eps, self.normalized_shape, self.elementwise_affine = eps, (channels,), affine
        self.weight = nn.Parameter(torch.ones(channels)) if affine else None

    def forward(self, x):
        x = x * torch.rsqrt(torch.var(x, dim=-1, keepdim=True) + self.eps)
        return x if self.weight is None else x * self.weight


class GlobalResponseNorm(nn.Module):
    """`grn`: ConvNeXt V2's global response normalization on (N, C, H, W): each channel's L2 norm over the
    positions, over the mean of those norms, gives x + weight * (x * response) + bias."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        norms = x.norm(p=2, dim=(2, 3), keepdim=True)
        response = norms / (norms.mean(dim=1, keepdim=True) + self.eps)
        shape = (1, -1, 1, 1)
        return x + torch.addcmul(self.bias.view(shape), self.weight.view(shape), x * response)


class EvoNorm(nn.Module):
    """`evonorm(groups=G)`: EvoNorm-S0 on (N, C, H, W): x * sigmoid(v * x) (without `act`: x), divided by the
    standard deviation of each group of channels over the positions, times weight plus bias (timm's EvoNorm2dS0a)."""

    def __init__(self, channels: int, groups: int, act: bool = True, eps: float = 1e-5):
        super().__init__()
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.v = nn.Parameter(torch.ones(channels)) if act else None

    def forward(self, x):
        n, c, h, w = x.shape
        grouped = x.reshape(n, self.groups, c // self.groups, h, w)
        std = grouped.var(dim=(2, 3, 4), unbiased=False, keepdim=True).add(self.eps).sqrt()
        std = std.expand(grouped.shape).reshape(n, c, h, w)
        shape = (1, -1, 1, 1)
        if self.v is not None:
            x = x * (x * self.v.view(shape)).sigmoid()
        return x / std * self.weight.view(shape) + self.bias.view(shape)


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channels of (N, C, H, W) (timm's LayerNorm2d), with a scale and a shift."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class ContextTransform(nn.Module):
    """`gc`'s transform on the context (N, C, 1, 1): 1x1 convolution C -> R, LayerNorm over R, ReLU (or SiLU), 1x1
    R -> C."""

    def __init__(self, channels: int, reduced: int, silu: bool = False):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.norm = ChannelsFirstLayerNorm(reduced, eps=1e-6)  # timm's LayerNorm2d
        self.act = nn.SiLU() if silu else nn.ReLU()
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x):
        return self.fc2(self.act(self.norm(self.fc1(x))))


class GlobalContext(nn.Module):
    """`gc(R)`: GCNet's global context block on (N, C, H, W) (timm's GlobalContext): the context pooled by attention
    (a 1x1 convolution to one channel, a softmax over the positions) or by the mean, transformed, then gating the
    channels through a sigmoid (fuse_scale) or added to every position (fuse_add)."""

    def __init__(
        self,
        channels: int,
        reduced: int,
        use_attn: bool = True,
        fuse_add: bool = False,
        fuse_scale: bool = True,
        silu: bool = False,
    ):
        super().__init__()
        self.conv_attn = nn.Conv2d(channels, 1, 1) if use_attn else None
        self.mlp_add = ContextTransform(channels, reduced, silu) if fuse_add else None
        self.mlp_scale = ContextTransform(channels, reduced, silu) if fuse_scale else None
        self.gate = nn.Sigmoid()

    def forward(self, x):
        n, c, h, w = x.shape
        if self.conv_attn is not None:
            attn = torch.softmax(self.conv_attn(x).reshape(n, 1, h * w), dim=-1).unsqueeze(3)
            context = (x.reshape(n, c, h * w).unsqueeze(1) @ attn).view(n, c, 1, 1)
        else:
            context = x.mean(dim=(2, 3), keepdim=True)
        if self.mlp_scale is not None:
            x = x * self.gate(self.mlp_scale(context))
        if self.mlp_add is not None:
            x = x + self.mlp_add(context)
        return x


class Resize(nn.Module):
    """`resize(HxW)`: F.interpolate to the sizes given (nearest, bilinear or bicubic, pixels' centres aligned)."""

    def __init__(self, size: tuple, mode: str = "nearest"):
        super().__init__()
        self.size, self.mode = tuple(size), mode

    def forward(self, x):
        return F.interpolate(x, size=self.size, mode=self.mode)


class ChannelSlice(nn.Module):
    """`slice(a, b)`: channels a to b-1 of a channels-first tensor (N, C, ...)."""

    def __init__(self, start: int, end: int):
        super().__init__()
        self.start = start
        self.end = end

    def forward(self, x):
        return x[:, self.start : self.end]


class FrozenBatchNorm(nn.Module):
    """`bn(frozen)`: BatchNorm with its scale, shift, mean and variance as fixed buffers (torchvision's
    FrozenBatchNorm2d, the backbones of its detection models), on (N, C, *spatial)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((channels,), value))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(shape) + shift.reshape(shape)


class SpaceToDepth(nn.Module):
    """`space2depth(B)`: each B x B patch of (N, C, H, W) (of each frame of (N, C, T, H, W)) becomes one position
    of B*B*C channels, in Swin's patch-merging order: channel (j*B + i)*C + c is channel c at row offset i,
    column offset j."""

    def __init__(self, block: int):
        super().__init__()
        self.block = block

    def forward(self, x):
        n, c, *kept, h, w = x.shape  # a volume (N, C, T, H, W): the patches of each frame
        b, k = self.block, len(kept)
        x = x.reshape(n, c, *kept, h // b, b, w // b, b).permute(0, 5 + k, 3 + k, 1, *range(2, 2 + k), 2 + k, 4 + k)
        return x.reshape(n, b * b * c, *kept, h // b, w // b)


class DropPath(nn.Module):
    """`droppath(p)`: stochastic depth; in training each sample's input is zeroed with probability p and
    the others scaled by 1/(1-p) (torchvision's StochasticDepth(p, "row")); the identity at inference."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        noise = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * noise / keep if keep > 0.0 else x * noise


class ChannelAttention(nn.Module):
    """`attn(heads=h, channels)`: DaViT's channel attention on the positions of (N, C, *spatial): one qkv and one
    proj Linear; in each head the e channels of the keys attend to those of the values, the e x e scores summed
    over all positions, and they mix the queries' channels at each position (timm's davit.ChannelAttention)."""

    def __init__(self, channels: int, heads: int, head_dim: int | None = None, bias: bool = True):
        super().__init__()
        self.num_heads = heads
        self.head_dim = channels // heads if head_dim is None else head_dim
        self.qkv = nn.Linear(channels, 3 * heads * self.head_dim, bias=bias)
        self.proj = nn.Linear(heads * self.head_dim, channels, bias=bias)

    def forward(self, x):
        y = x.movedim(1, -1)
        shape = y.shape
        y = y.flatten(1, -2)
        n, t, _ = y.shape
        h, e = self.num_heads, self.head_dim
        q, k, v = self.qkv(y).reshape(n, t, 3, h, e).permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((k * e**-0.5).transpose(-1, -2) @ v).softmax(dim=-1)  # (n, h, e, e)
        y = (attn @ q.transpose(-1, -2)).transpose(-1, -2)  # (n, h, t, e)
        y = self.proj(y.transpose(1, 2).reshape(n, t, h * e))
        return y.reshape(*shape[:-1], -1).movedim(-1, 1)


def _conv_norm(cin: int, cout: int, kernel: int = 1, groups: int = 1) -> nn.Sequential:
    """A convolution without bias, then BatchNorm2d (EfficientViT's ConvNorm), as `conv` and `bn`."""
    conv = nn.Conv2d(cin, cout, kernel, 1, kernel // 2, groups=groups, bias=False)
    return nn.Sequential(OrderedDict(conv=conv, bn=nn.BatchNorm2d(cout)))


class CascadedWindowAttention(nn.Module):
    """`cga(heads=h, key_dim=k, value_dim=v, window=w, kernels=...)`: EfficientViT's cascaded group attention inside
    w x w windows of a map (N, C, H, W), padded at the bottom and right to a multiple of w (timm's
    LocalWindowAttention over its CascadedGroupAttention): per head a 1x1 ConvNorm of its channel group (plus the
    previous head's output) to k + k + v channels, a depthwise ConvNorm on the queries, a learned bias per head for
    each offset (|rows|, |columns|) of the window; the heads' values joined, ReLU, a 1x1 ConvNorm back to C."""

    def __init__(self, channels: int, heads: int, key_dim: int, value_dim: int, window: int, kernels=()):
        super().__init__()
        if channels % heads or len(kernels) != heads:
            raise ValueError(f"{heads} heads need {channels} channels in whole groups and one kernel each")
        if heads > 1 and value_dim != channels // heads:
            raise ValueError(f"value_dim={value_dim}: each head's values join the next head's {channels // heads}")
        self.heads, self.key_dim, self.value_dim, self.window = heads, key_dim, value_dim, window
        self.num_heads, self.val_dim, self.resolution = heads, value_dim, window  # timm's names, read on import
        group = channels // heads
        self.qkvs = nn.ModuleList(_conv_norm(group, 2 * key_dim + value_dim) for _ in range(heads))
        self.dws = nn.ModuleList(_conv_norm(key_dim, key_dim, k, groups=key_dim) for k in kernels)
        self.proj = nn.Sequential(nn.ReLU(), _conv_norm(value_dim * heads, channels))
        self.attention_biases = nn.Parameter(torch.zeros(heads, window * window))

    def forward(self, x):
        n, channels, height, width = x.shape
        w = self.window
        pad_b, pad_r = (w - height % w) % w, (w - width % w) % w
        y = nn.functional.pad(x.permute(0, 2, 3, 1), (0, 0, 0, pad_r, 0, pad_b))
        rows, cols = (height + pad_b) // w, (width + pad_r) // w
        y = y.view(n, rows, w, cols, w, channels).transpose(2, 3).reshape(n * rows * cols, w, w, channels)
        y = y.permute(0, 3, 1, 2)  # windows, channels first
        coords = torch.arange(w, device=x.device)
        r, c = torch.meshgrid(coords, coords, indexing="ij")
        r, c = r.flatten(), c.flatten()
        index = (r[:, None] - r[None, :]).abs() * w + (c[:, None] - c[None, :]).abs()
        biases = self.attention_biases[:, index]
        groups = y.chunk(self.heads, dim=1)
        outputs, feat = [], groups[0]
        k, v = self.key_dim, self.value_dim
        for i, (qkv, dw) in enumerate(zip(self.qkvs, self.dws)):
            if i > 0:
                feat = feat + groups[i]
            q, key, value = qkv(feat).split([k, k, v], dim=1)
            q = dw(q)
            q, key, value = q.flatten(2), key.flatten(2), value.flatten(2)
            attn = ((q * k**-0.5).transpose(-2, -1) @ key + biases[i]).softmax(dim=-1)
            feat = (value @ attn.transpose(-2, -1)).view(-1, v, w, w)
            outputs.append(feat)
        y = self.proj(torch.cat(outputs, 1)).permute(0, 2, 3, 1)
        y = y.view(n, rows, cols, w, w, channels).transpose(2, 3).reshape(n, rows * w, cols * w, channels)
        return y[:, :height, :width].permute(0, 3, 1, 2)


class _LinearNorm(nn.Module):
    """A Linear without bias, then BatchNorm1d over every position (LeViT's LinearNorm), as `linear` and `bn`."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.linear = nn.Linear(cin, cout, bias=False)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x):
        x = self.linear(x)
        return self.bn(x.flatten(0, 1)).reshape_as(x)


class OffsetBiasAttention(nn.Module):
    """`levitattn(heads=h, key_dim=k, value_dim=v, ->o, map=HxW, stride=s, bn|bias, act=...)`: LeViT's and
    EfficientFormer's attention on a sequence (N, C, H*W) that lays out an H x W map row by row, or on a map
    (N, C, H, W): per head k query and key channels and v value channels, a learned bias per head for each offset
    (|rows|, |columns|) on the map, queries from every s-th row and column (LeViT's AttentionDownsample), an
    optional activation before the output projection (`act`, the name of its torch.nn class). `norm`: the
    projections are Linear without bias and BatchNorm1d (timm's LinearNorm: qkv, or kv and q.ln with a stride;
    proj.ln after proj.act); else Linears (qkv or kv and q, proj) with biases when `bias`. timm's names, so that
    timm's weights load."""

    def __init__(
        self,
        channels: int,
        heads: int,
        key_dim: int,
        value_dim: int,
        hw,
        out: int | None = None,
        stride: int = 1,
        norm: bool = False,
        bias: bool = False,
        act: str | None = None,
    ):
        super().__init__()
        if norm and bias:
            raise ValueError("LinearNorm projections and biases are two forms: give one")
        out = channels if out is None else out
        self.num_heads, self.key_dim, self.val_dim = heads, key_dim, value_dim
        self.resolution, self.stride, self.out = tuple(hw), stride, out
        self.norm, self.has_bias = norm, bias
        K, V = heads * key_dim, heads * value_dim

        def project(cin: int, cout: int) -> nn.Module:
            return _LinearNorm(cin, cout) if norm else nn.Linear(cin, cout, bias=bias)

        if stride == 1:
            self.qkv = project(channels, 2 * K + V)
        else:
            self.kv = project(channels, K + V)
            self.q = nn.Sequential(OrderedDict(ln=project(channels, K))) if norm else project(channels, K)
        activations = {"Hardswish": nn.Hardswish, "ReLU": nn.ReLU, "SiLU": nn.SiLU, "GELU": nn.GELU}
        act_module = activations[act]() if act is not None else nn.Identity()
        self.proj: nn.Module
        if norm:
            self.proj = nn.Sequential(OrderedDict(act=act_module, ln=project(V, out)))
        else:  # EfficientFormer's proj is a Linear
            self.act, self.proj = act_module, project(V, out)
        H, W = self.resolution
        self.attention_biases = nn.Parameter(torch.zeros(heads, H * W))

    def _index(self, device):
        H, W = self.resolution
        s = self.stride
        rows, cols = torch.arange(H, device=device), torch.arange(W, device=device)
        kr, kc = rows.repeat_interleave(W), cols.repeat(H)
        qr, qc = rows[::s].repeat_interleave(len(cols[::s])), cols[::s].repeat(len(rows[::s]))
        return (qr[:, None] - kr[None, :]).abs() * W + (qc[:, None] - kc[None, :]).abs()

    def forward(self, x):
        is_map = x.dim() == 4
        x = x.flatten(2).transpose(1, 2)  # (N, T, C)
        n, t, c = x.shape
        h, k, v = self.num_heads, self.key_dim, self.val_dim
        H, W = self.resolution
        s = self.stride
        if s == 1:
            q, key, value = self.qkv(x).view(n, t, h, -1).split([k, k, v], dim=3)
        else:
            key, value = self.kv(x).view(n, t, h, -1).split([k, v], dim=3)
            q = self.q(x.view(n, H, W, c)[:, ::s, ::s].reshape(n, -1, c)).view(n, -1, h, k)
        q, key, value = q.transpose(1, 2), key.permute(0, 2, 3, 1), value.transpose(1, 2)
        attn = (q @ key * k**-0.5 + self.attention_biases[:, self._index(x.device)]).softmax(dim=-1)
        y = (attn @ value).transpose(1, 2).reshape(n, q.shape[2], h * v)
        y = self.proj(y if self.norm else self.act(y)).transpose(1, 2)  # (N, out, Tq)
        if is_map:
            y = y.reshape(n, -1, -(-H // s), -(-W // s))
        return y


class _ConvNorm(nn.Module):
    """A 1x1 convolution and a BatchNorm2d or none (timm's ConvNormAct without activation), as `conv` and `norm`."""

    def __init__(self, cin: int, cout: int, norm: bool, bias: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=bias)
        self.norm = nn.BatchNorm2d(cout) if norm else nn.Identity()

    def forward(self, x):
        return self.norm(self.conv(x))


class MultiScaleLinearAttention(nn.Module):
    """`litemla(heads=h, head_dim=e, ->o, scales=..., qkv_bn, bn, bias)`: EfficientViT's multi-scale linear attention
    on a map (N, C, H, W): a 1x1 convolution gives q, k, v for h heads of e channels (`qkv`), each scale a depthwise
    k x k and a 1x1 convolution in 3h groups (`aggreg`), ReLU linear attention per head of every scale, a 1x1
    convolution to `out` channels (`proj`); BatchNorms after qkv (`qkv_norm`) and proj (`norm`). timm's LiteMLA's
    names, so that its weights load."""

    def __init__(
        self,
        channels: int,
        out: int,
        heads: int,
        head_dim: int,
        scales=(5,),
        qkv_norm: bool = False,
        norm: bool = False,
        bias: bool = False,
        eps: float = 1e-5,
    ):
        super().__init__()
        total = heads * head_dim
        self.dim, self.eps = head_dim, eps
        self.qkv = _ConvNorm(channels, 3 * total, qkv_norm, bias)
        self.aggreg = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(3 * total, 3 * total, k, padding=k // 2, groups=3 * total, bias=bias),
                nn.Conv2d(3 * total, 3 * total, 1, groups=3 * heads, bias=bias),
            )
            for k in scales
        )
        self.kernel_func = nn.ReLU()
        self.proj = _ConvNorm(total * (1 + len(scales)), out, norm, bias)

    def forward(self, x):
        n, _, H, W = x.shape
        qkv = self.qkv(x)
        qkv = torch.cat([qkv, *(op(qkv) for op in self.aggreg)], dim=1)
        qkv = qkv.reshape(n, -1, 3 * self.dim, H * W).transpose(-1, -2)
        q, k, v = qkv.chunk(3, dim=-1)
        q, k = self.kernel_func(q), self.kernel_func(k)
        v = F.pad(v, (0, 1), mode="constant", value=1.0)
        y = q @ (k.transpose(-1, -2) @ v)
        y = y[..., :-1] / (y[..., -1:] + self.eps)
        return self.proj(y.transpose(-1, -2).reshape(n, -1, H, W))


def _conv_norm_bias(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """A convolution with bias, padding kernel // 2, then BatchNorm2d (EfficientFormerV2's ConvNorm), as `conv` and
    `bn`."""
    conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups)
    return nn.Sequential(OrderedDict(conv=conv, bn=nn.BatchNorm2d(cout)))


class _LocalGlobalQuery(nn.Module):
    """EfficientFormerV2's queries of the map halved: a depthwise 3x3 convolution of stride 2 plus the map
    subsampled, then a 1x1 ConvNorm (`local`, `pool`, `proj`)."""

    def __init__(self, channels: int, out: int):
        super().__init__()
        self.pool = nn.AvgPool2d(1, 2, 0)
        self.local = nn.Conv2d(channels, channels, 3, 2, 1, groups=channels)
        self.proj = _conv_norm_bias(channels, out)

    def forward(self, x):
        return self.proj(self.local(x) + self.pool(x))


class EfficientFormerV2Attention(nn.Module):
    """`ef2attn(heads=h, key_dim=k, value_dim=v[, stride=s])` and `ef2attn(..., ->o, down)`: EfficientFormerV2's
    attention on a map (N, C, H, W), as timm's efficientformer_v2.Attention2d and Attention2dDownsample compute it
    (their names, so that timm's weights load): ConvNorm projections with biases (q, k, v), a depthwise 3x3
    ConvNorm on the values added to the output (v_local), a bias per head for each offset (|rows|, |columns|) on
    the map; Attention2d: talking heads (1x1 convolutions across the heads before and after the softmax) and, with a
    stride, a depthwise 3x3 ConvNorm of that stride first and a bilinear upsampling after; `down`: queries from the
    map halved (local-global), the value's depthwise ConvNorm of stride 2, no talking heads. GELU, then a 1x1
    ConvNorm out (proj)."""

    def __init__(
        self,
        channels: int,
        heads: int,
        key_dim: int,
        value_dim: int,
        hw,
        out: int | None = None,
        stride: int = 1,
        down: bool = False,
    ):
        super().__init__()
        out = channels if out is None else out
        if not down and out != channels:
            raise ValueError("Attention2d projects back to its input's channels: out= is for down")
        self.num_heads, self.key_dim, self.value_dim, self.down = heads, key_dim, value_dim, down
        self.stride = 2 if down else stride
        K, V = heads * key_dim, heads * value_dim
        H, W = hw
        s = self.stride
        self.resolution = (H, W) if down else (-(-H // s), -(-W // s))
        self.q: nn.Module
        if down:
            self.q = _LocalGlobalQuery(channels, K)
        else:
            if s != 1:
                self.stride_conv = _conv_norm_bias(channels, channels, 3, s, channels)
                self.upsample = nn.Upsample(scale_factor=s, mode="bilinear")
            self.q = _conv_norm_bias(channels, K)
            self.talking_head1 = nn.Conv2d(heads, heads, 1)
            self.talking_head2 = nn.Conv2d(heads, heads, 1)
        self.k = _conv_norm_bias(channels, K)
        self.v = _conv_norm_bias(channels, V)
        self.v_local = _conv_norm_bias(V, V, 3, 2 if down else 1, V)
        self.act = nn.GELU()
        self.proj = _conv_norm_bias(V, out)
        rows, cols = self.resolution
        self.attention_biases = nn.Parameter(torch.zeros(heads, rows * cols))

    def _index(self, device):
        H, W = self.resolution
        step = 2 if self.down else 1
        rows, cols = torch.arange(H, device=device), torch.arange(W, device=device)
        kr, kc = rows.repeat_interleave(W), cols.repeat(H)
        qr, qc = rows[::step].repeat_interleave(len(cols[::step])), cols[::step].repeat(len(rows[::step]))
        return (qr[:, None] - kr[None, :]).abs() * W + (qc[:, None] - kc[None, :]).abs()

    def forward(self, x):
        n = x.shape[0]
        h = self.num_heads
        if not self.down and self.stride != 1:
            x = self.stride_conv(x)
        q = self.q(x)
        q_hw = q.shape[2:]
        q = q.reshape(n, h, self.key_dim, -1).transpose(2, 3)
        k = self.k(x).reshape(n, h, self.key_dim, -1)
        v = self.v(x)
        v_local = self.v_local(v)
        v = v.reshape(n, h, self.value_dim, -1).transpose(2, 3)
        attn = q @ k * self.key_dim**-0.5 + self.attention_biases[:, self._index(x.device)]
        if not self.down:
            attn = self.talking_head1(attn)
        attn = attn.softmax(dim=-1)
        if not self.down:
            attn = self.talking_head2(attn)
        y = (attn @ v).transpose(2, 3).reshape(n, h * self.value_dim, *q_hw) + v_local
        if not self.down and self.stride != 1:
            y = self.upsample(y)
        return self.proj(self.act(y))


class WindowAttention(nn.Module):
    """`attn(heads=h, window=w[, shift])`: Swin's window attention on channels-first maps (N, C, H, W), as
    torchvision's ShiftedWindowAttention computes it: one qkv and one proj Linear, a learned relative-position
    bias table of (2w-1)^2 x heads, attention inside w x w windows, and with `shift` the windows shifted by
    w//2 (a cyclic roll, masks between the regions the roll brings together; no shift on a map no larger
    than a window). Besides: kv_heads key/value heads shared by the query heads, and any head width.

    With `grid=True`, `attn(heads=h, grid=g)`: MaxViT's grid attention (torchvision's PartitionAttentionLayer
    with partition_type="grid"): `window` is the side g of a grid, and each position attends to the g x g
    positions H/g rows and W/g columns apart (the same table of (2g-1)^2 x heads over their offsets).

    Besides, for timm's MaxxViT, CoAtNet and Swin V2: `out` output channels of proj; `pos_mlp=m` a position bias
    made by an MLP Linear(2->m) > ReLU > Linear(m->heads), both with biases, on the log-spaced (2w-1)^2 offsets
    (timm's RelPosMlp) or, with `per_pair`, on the offset of each of the w^4 query/key pairs (swinv2_cr's meta MLP),
    instead of the table; `cosine` cosine attention with a logit scale per head; `qv_bias` biases on the queries and
    values only (q_bias, v_bias) and on proj.

    `relpos` is the form of the position bias (`attn(..., relpos=...)`): "table" (the above), "none", "offsets"
    (TinyViT's attention_biases: heads x w^2, one bias per offset (|rows|, |columns|)) or "axes" (SAM's rel_pos_h
    and rel_pos_w: (2w-1) x head_dim each, the queries against them added along rows and columns)."""

    def __init__(
        self,
        channels: int,
        heads: int,
        window: int,
        shift: bool = False,
        kv_heads: int | None = None,
        head_dim: int | None = None,
        bias: bool = True,
        grid: bool = False,
        out: int | None = None,
        pos_mlp: int | None = None,
        per_pair: bool = False,
        cosine: bool = False,
        qv_bias: bool = False,
        relpos: str = "table",
    ):
        super().__init__()
        if grid and shift:
            raise ValueError("grid attention has no shift")
        if per_pair and pos_mlp is None:
            raise ValueError("per_pair needs pos_mlp")
        if relpos not in ("table", "none", "offsets", "axes") or (grid and relpos not in ("table", "none")):
            raise ValueError(f"relpos={relpos!r}: table, none, offsets or axes (grid attention: table or none)")
        if pos_mlp is not None and relpos != "table":
            raise ValueError(f"pos_mlp replaces the table: relpos={relpos!r} does not go with it")
        self.relpos = relpos
        self.grid = grid
        self.out = channels if out is None else out
        self.per_pair = per_pair
        kv_heads = heads if kv_heads is None else kv_heads
        head_dim = channels // heads if head_dim is None else head_dim
        if heads % kv_heads:
            raise ValueError(f"kv_heads={kv_heads} must divide heads={heads}")
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.window_size = [window, window]
        self.shift_size = [window // 2, window // 2] if shift else [0, 0]
        self.qkv = nn.Linear(channels, (heads + 2 * kv_heads) * head_dim, bias=bias and not qv_bias)
        self.q_bias = nn.Parameter(torch.zeros(heads * head_dim)) if bias and qv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(kv_heads * head_dim)) if bias and qv_bias else None
        self.proj = nn.Linear(heads * head_dim, self.out, bias=bias)
        self.logit_scale = nn.Parameter(torch.full((heads, 1, 1), 2.302585092994046)) if cosine else None  # log(10)
        self.relative_position_bias_table: nn.Parameter | None = None
        self.pos_mlp: nn.Module | None = None
        if pos_mlp is not None:
            self.pos_mlp = nn.Sequential(nn.Linear(2, pos_mlp), nn.ReLU(), nn.Linear(pos_mlp, heads))
        elif relpos == "table":
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        elif relpos == "offsets":
            self.attention_biases = nn.Parameter(torch.zeros(heads, window * window))
        elif relpos == "axes":
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * window - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * window - 1, head_dim))

    def relative_position_bias(self, q):
        """(1 or windows, heads, w*w, w*w): the bias for each pair of positions of a window (the indices computed
        here rather than kept as a buffer: they are not state); 0 without one. With "axes" it depends on the
        queries q (windows, heads, w*w, head_dim), unscaled."""
        w = self.window_size[0]
        coords = torch.arange(w, device=self.qkv.weight.device)
        rows, cols = torch.meshgrid(coords, coords, indexing="ij")
        rows, cols = rows.flatten(), cols.flatten()
        if self.relpos == "none":
            return 0
        if self.relpos == "offsets":
            index = (rows[:, None] - rows[None, :]).abs() * w + (cols[:, None] - cols[None, :]).abs()
            return self.attention_biases[:, index].unsqueeze(0)
        if self.relpos == "axes":
            offsets = coords[:, None] - coords[None, :] + w - 1  # (query, key) -> row of the table
            grid = q.reshape(*q.shape[:2], w, w, -1)
            along_h = torch.einsum("bnhwc,hkc->bnhwk", grid, self.rel_pos_h[offsets])
            along_w = torch.einsum("bnhwc,wkc->bnhwk", grid, self.rel_pos_w[offsets])
            bias = along_h[..., :, None] + along_w[..., None, :]  # (b, n, h, w, kh, kw)
            return bias.reshape(*q.shape[:2], w * w, w * w)
        index = (rows[:, None] - rows[None, :] + w - 1) * (2 * w - 1) + (cols[:, None] - cols[None, :] + w - 1)
        if self.pos_mlp is None:
            table = self.relative_position_bias_table
        elif self.per_pair:  # the MLP on the log-spaced offset of every query/key pair (timm's swinv2_cr)
            offsets = torch.stack((rows[:, None] - rows[None, :], cols[:, None] - cols[None, :]), -1)
            offsets = offsets.reshape(-1, 2).to(self.proj.weight.dtype)
            bias = self.pos_mlp(offsets.sign() * offsets.abs().log1p()).view(w * w, w * w, -1)
            return bias.permute(2, 0, 1).unsqueeze(0)
        else:  # the MLP on the (2w-1)^2 log-spaced offsets (timm's RelPosMlp), then looked up as the table is
            steps = torch.arange(1 - w, w, device=self.proj.weight.device, dtype=self.proj.weight.dtype)
            offsets = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), -1).reshape(-1, 2)
            table = self.pos_mlp(offsets.sign() * offsets.abs().log1p())
        bias = table[index.flatten()].view(w * w, w * w, -1)
        return bias.permute(2, 0, 1).unsqueeze(0)

    def forward(self, x):
        x = x.movedim(1, -1)  # (N, H, W, C)
        n, height, width, channels = x.shape
        w = self.window_size[0]
        if self.grid and (height % w or width % w):
            raise ValueError(f"a {w}x{w} grid does not divide a {height}x{width} map")
        pad_b, pad_r = (w - height % w) % w, (w - width % w) % w
        x = nn.functional.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        size_h, size_w = height + pad_b, width + pad_r
        shift = [s if w < size else 0 for s, size in zip(self.shift_size, (size_h, size_w))]
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        count = (size_h // w) * (size_w // w)
        if self.grid:  # the windows are the positions (a, b) of a cell; a window's w x w positions (i, j) its grid
            x = x.view(n, w, size_h // w, w, size_w // w, channels).permute(0, 2, 4, 1, 3, 5)
        else:
            x = x.view(n, size_h // w, w, size_w // w, w, channels).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(n * count, w * w, channels)
        h, g, e = self.heads, self.kv_heads, self.head_dim
        qkv = self.qkv(x)
        if self.q_bias is not None:  # no key bias
            qkv = qkv + torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = qkv.reshape(n * count, w * w, h + 2 * g, e).transpose(1, 2)
        q, k, v = qkv[:, :h], qkv[:, h : h + g], qkv[:, h + g :]
        scores_q = q * e**-0.5
        if self.logit_scale is not None:  # cosine attention: unit queries and keys, a learned scale per head
            scores_q = F.normalize(q, dim=-1) * self.logit_scale.clamp(max=4.605170185988092).exp()  # at most 100
            k = F.normalize(k, dim=-1)
        if g != h:
            k, v = k.repeat_interleave(h // g, dim=1), v.repeat_interleave(h // g, dim=1)
        attn = scores_q.matmul(k.transpose(-2, -1)) + self.relative_position_bias(q)
        if sum(shift) > 0:
            mask = x.new_zeros((size_h, size_w))
            label = 0
            for top, bottom in ((0, -w), (-w, -shift[0]), (-shift[0], None)):
                for left, right in ((0, -w), (-w, -shift[1]), (-shift[1], None)):
                    mask[top:bottom, left:right] = label
                    label += 1
            mask = mask.view(size_h // w, w, size_w // w, w).permute(0, 2, 1, 3).reshape(count, w * w)
            mask = mask.unsqueeze(1) - mask.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
            attn = (attn.view(n, count, h, w * w, w * w) + mask.unsqueeze(1).unsqueeze(0)).view(-1, h, w * w, w * w)
        y = attn.softmax(dim=-1).matmul(v).transpose(1, 2).reshape(n * count, w * w, h * e)
        y = self.proj(y).view(n, size_h // w, size_w // w, w, w, self.out)
        y = y.permute(0, 3, 1, 4, 2, 5) if self.grid else y.permute(0, 1, 3, 2, 4, 5)
        y = y.reshape(n, size_h, size_w, self.out)
        if sum(shift) > 0:
            y = torch.roll(y, shifts=(shift[0], shift[1]), dims=(1, 2))
        return y[:, :height, :width].movedim(-1, 1)


class SquaredReLU(nn.Module):
    """`squaredrelu`: relu(x)², element-wise."""

    def forward(self, x):
        return torch.square(F.relu(x))


class StarReLU(nn.Module):
    """`starrelu`: s * relu(x)² + b, with one learned factor s and one learned shift b for every value."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.scale * F.relu(x) ** 2 + self.bias


class Transpose(nn.Module):
    """`transpose`: the positions and channels of a sequence (N, d, T) swap: (N, T, d)."""

    def forward(self, x):
        return x.transpose(1, 2)


class Untokens(nn.Module):
    """`untokens(HxW)`: the positions of a sequence (N, C, T) become a map (N, C, H, W), row by row."""

    def __init__(self, sizes: tuple):
        super().__init__()
        self.sizes = tuple(sizes)

    def forward(self, x):
        return x.unflatten(2, self.sizes)


class WindowAttention3d(nn.Module):
    """`attn(heads=h, window=a x b x c[, shift])` on a volume: Video Swin's window attention on channels-first
    volumes (N, C, T, H, W), as torchvision's ShiftedWindowAttention3d computes it: one qkv and one proj Linear,
    a learned relative-position bias table of (2a-1)(2b-1)(2c-1) x heads, attention inside a x b x c windows (a
    side at least as long as its axis cut to the axis, with no shift along it), the volume padded at the end of
    each axis to a multiple of the window, and with `shift` the windows shifted by half their sides (a cyclic
    roll, masks between the regions the roll brings together). Besides: kv_heads key/value heads shared by the
    query heads, and any head width."""

    def __init__(
        self,
        channels: int,
        heads: int,
        window: tuple,
        shift: bool = False,
        kv_heads: int | None = None,
        head_dim: int | None = None,
        bias: bool = True,
    ):
        super().__init__()
        kv_heads = heads if kv_heads is None else kv_heads
        head_dim = channels // heads if head_dim is None else head_dim
        if heads % kv_heads:
            raise ValueError(f"kv_heads={kv_heads} must divide heads={heads}")
        if len(window) != 3:
            raise ValueError(f"a window on a volume has three sides, not {window}")
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.window_size = list(window)
        self.shift_size = [w // 2 for w in window] if shift else [0, 0, 0]
        self.qkv = nn.Linear(channels, (heads + 2 * kv_heads) * head_dim, bias=bias)
        self.proj = nn.Linear(heads * head_dim, channels, bias=bias)
        a, b, c = window
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * a - 1) * (2 * b - 1) * (2 * c - 1), heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self, window):
        """(1, heads, n, n) for the n positions of a window of `window` (the first positions of the full one:
        torchvision indexes its table so when the window is cut to the volume)."""
        full = self.window_size
        grids = torch.meshgrid(
            *(torch.arange(w, device=self.relative_position_bias_table.device) for w in full), indexing="ij"
        )
        coords = [g.flatten() for g in grids]
        index = torch.zeros_like(coords[0][:, None] - coords[0][None, :])
        for axis in range(3):
            stride = 1
            for w in full[axis + 1 :]:
                stride *= 2 * w - 1
            index = index + (coords[axis][:, None] - coords[axis][None, :] + full[axis] - 1) * stride
        n = window[0] * window[1] * window[2]
        bias = self.relative_position_bias_table[index[:n, :n].flatten()].view(n, n, -1)
        return bias.permute(2, 0, 1).unsqueeze(0)

    def forward(self, x):
        x = x.movedim(1, -1)  # (N, T, H, W, C)
        n, *size, channels = x.shape
        window = [min(w, s) for w, s in zip(self.window_size, size)]
        shift = [0 if s <= w else sh for w, s, sh in zip(self.window_size, size, self.shift_size)]
        pad = [(w - s % w) % w for w, s in zip(window, size)]
        x = F.pad(x, (0, 0, 0, pad[2], 0, pad[1], 0, pad[0]))
        padded = [s + p for s, p in zip(size, pad)]
        if sum(shift) > 0:
            x = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        counts = [p // w for p, w in zip(padded, window)]
        count, volume = counts[0] * counts[1] * counts[2], window[0] * window[1] * window[2]
        x = x.view(n, counts[0], window[0], counts[1], window[1], counts[2], window[2], channels)
        x = x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(n * count, volume, channels)
        h, g, e = self.heads, self.kv_heads, self.head_dim
        qkv = self.qkv(x).reshape(n * count, volume, h + 2 * g, e).transpose(1, 2)
        q, k, v = qkv[:, :h] * e**-0.5, qkv[:, h : h + g], qkv[:, h + g :]
        if g != h:
            k, v = k.repeat_interleave(h // g, dim=1), v.repeat_interleave(h // g, dim=1)
        attn = q.matmul(k.transpose(-2, -1)) + self.relative_position_bias(window)
        if sum(shift) > 0:
            mask = x.new_zeros(padded)
            label = 0
            cuts = [((0, -w), (-w, -s), (-s, None)) for w, s in zip(window, shift)]
            for d0, d1 in cuts[0]:
                for h0, h1 in cuts[1]:
                    for w0, w1 in cuts[2]:
                        mask[d0:d1, h0:h1, w0:w1] = label
                        label += 1
            mask = mask.view(counts[0], window[0], counts[1], window[1], counts[2], window[2])
            mask = mask.permute(0, 2, 4, 1, 3, 5).reshape(count, volume)
            mask = mask.unsqueeze(1) - mask.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
            attn = (attn.view(n, count, h, volume, volume) + mask.unsqueeze(1).unsqueeze(0)).view(-1, h, volume, volume)
        y = attn.softmax(dim=-1).matmul(v).transpose(1, 2).reshape(n * count, volume, h * e)
        y = self.proj(y).view(n, *counts, *window, channels)
        y = y.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(n, *padded, channels)
        if sum(shift) > 0:
            y = torch.roll(y, shifts=tuple(shift), dims=(1, 2, 3))
        return y[:, : size[0], : size[1], : size[2]].movedim(-1, 1)


class TokenPool(nn.Module):
    """`tokenpool(volume=T x H x W, kernel=..., stride=..., pad=...[, cls])`: on a sequence (N, d, [1 +] T*H*W), the
    tokens of a T x H x W (or H x W) volume, after a class token with `cls`, MaxPool3d (MaxPool2d) of the volume;
    the class token is kept."""

    def __init__(
        self, volume: tuple, kernel: tuple, stride: tuple | None = None, pad: tuple | None = None, cls: bool = False
    ):
        super().__init__()
        self.volume, self.kernel = tuple(volume), tuple(kernel)
        self.stride, self.pad = tuple(stride or kernel), tuple(pad or (0,) * len(kernel))
        self.cls = cls
        pool = nn.MaxPool3d if len(self.volume) == 3 else nn.MaxPool2d
        self.pool = pool(self.kernel, self.stride, self.pad)

    def forward(self, x):
        n, d, _ = x.shape
        first = 1 if self.cls else 0
        token, rest = x[:, :, :first], x[:, :, first:]
        rest = self.pool(rest.reshape(n, d, *self.volume))
        return torch.cat([token, rest.flatten(2)], dim=2)


class PoolingAttention(nn.Module):
    """`attn(heads=h, volume=..., q=..., q_stride=..., kv=..., kv_stride=...[, out=D, cls, residual, relpos])`: MViT's
    pooling attention (torchvision's MultiscaleAttention, timm's MultiScaleAttention) on a sequence (N, d, L), the
    tokens of a T x H x W (or H x W) volume row by row, after a class token with `cls`: one qkv Linear (d -> 3*D),
    then the queries and/or the keys and values pooled over the volume (a depthwise convolution without bias on each
    head's channels, shared by the heads, padding kernel // 2, then a LayerNorm of the head width; the class token
    not pooled), attention (with `relpos`, timm's decomposed relative positions on an H x W volume), with `residual`
    the pooled queries added to its output, and the output Linear (D -> D): (N, D, L')."""

    def __init__(
        self,
        channels: int,
        heads: int,
        volume: tuple,
        q: tuple | None = None,
        q_stride: tuple | None = None,
        kv: tuple | None = None,
        kv_stride: tuple | None = None,
        out: int | None = None,
        head_dim: int | None = None,
        bias: bool = True,
        cls: bool = False,
        residual: bool = False,
        relpos: bool = False,
    ):
        super().__init__()
        out = channels if out is None else out
        head_dim = out // heads if head_dim is None else head_dim
        self.heads, self.head_dim, self.volume = heads, head_dim, tuple(volume)
        self.cls, self.residual = cls, residual
        self.qkv = nn.Linear(channels, 3 * heads * head_dim, bias=bias)
        self.proj = nn.Linear(heads * head_dim, out, bias=bias)
        conv = nn.Conv3d if len(self.volume) == 3 else nn.Conv2d
        one = (1,) * len(self.volume)

        def pooling(kernel, stride):
            if kernel is None:
                return None
            pool = conv(
                head_dim,
                head_dim,
                tuple(kernel),
                stride=tuple(stride or one),
                padding=[k // 2 for k in kernel],
                groups=head_dim,
                bias=False,
            )
            return nn.ModuleList([pool, nn.LayerNorm(head_dim, eps=1e-6)])

        self.pool_q = pooling(q, q_stride)
        self.pool_k = pooling(kv, kv_stride)
        self.pool_v = pooling(kv, kv_stride)
        self.queries = self._size(self.volume, q, q_stride or one)
        self.keys = self._size(self.volume, kv, kv_stride or one)
        self.rel_pos = None
        if relpos:
            rows = [2 * max(a, b) - 1 for a, b in zip(self.queries, self.keys)]
            self.rel_pos = nn.ParameterList([nn.Parameter(torch.randn(n, head_dim) * 0.02) for n in rows])

    @staticmethod
    def _size(volume, kernel, stride):
        if kernel is None:
            return tuple(volume)
        return tuple((n + 2 * (k // 2) - k) // s + 1 for n, k, s in zip(volume, kernel, stride))

    def _pool(self, x, pooling):
        """(N, heads, [1 +] volume, e) -> (N, heads, [1 +] pooled, e), the class token kept."""
        if pooling is None:
            return x
        pool, norm = pooling
        n, h, _, e = x.shape
        first = 1 if self.cls else 0
        token, rest = x[:, :, :first], x[:, :, first:]
        rest = pool(rest.transpose(2, 3).reshape(n * h, e, *self.volume))
        rest = rest.reshape(n, h, e, -1).transpose(2, 3)
        return norm(torch.cat([token, rest], dim=2))

    def _relative_positions(self, attn, q):
        """MViT v2's decomposed relative positions (timm's cal_rel_pos_type on H x W, torchvision's _add_rel_pos on
        T x H x W): each query of the volume scored against the table rows of its offset along each axis."""
        first = 1 if self.cls else 0
        n, h, _, e = q.shape
        r_q = q[:, :, first:].reshape(n, h, *self.queries, e)
        letters = "tuv"[3 - len(self.queries) :]  # the volume's axes in einsum's letters
        spatial = attn[:, :, first:, first:].reshape(n, h, *self.queries, *self.keys)
        for axis, (qn, kn, table) in enumerate(zip(self.queries, self.keys, self.rel_pos)):
            q_ratio, k_ratio = max(kn / qn, 1.0), max(qn / kn, 1.0)
            dist = torch.arange(qn)[:, None] * q_ratio - torch.arange(kn)[None, :] * k_ratio + (kn - 1) * k_ratio
            rows = table[dist.long()]  # (qn, kn, e)
            rel = torch.einsum(f"by{letters}c,{letters[axis]}kc->by{letters}k", r_q, rows)
            shape = [n, h, *self.queries] + [kn if i == axis else 1 for i in range(len(self.keys))]
            spatial = spatial + rel.reshape(shape)
        attn = attn.clone()
        attn[:, :, first:, first:] = spatial.reshape(n, h, q.shape[2] - first, attn.shape[3] - first)
        return attn

    def forward(self, x):
        x = x.transpose(1, 2)  # (N, L, d)
        n, length, _ = x.shape
        h, e = self.heads, self.head_dim
        q, k, v = self.qkv(x).reshape(n, length, 3, h, e).permute(2, 0, 3, 1, 4)
        q, k, v = self._pool(q, self.pool_q), self._pool(k, self.pool_k), self._pool(v, self.pool_v)
        attn = (q * e**-0.5).matmul(k.transpose(-2, -1))
        if self.rel_pos is not None:
            attn = self._relative_positions(attn, q)
        y = attn.softmax(dim=-1).matmul(v)
        if self.residual:
            y = y + q
        y = y.transpose(1, 2).reshape(n, q.shape[2], h * e)
        return self.proj(y).transpose(1, 2)


class BottleneckAttention(nn.Module):
    """BoTNet's self-attention over the positions of a map (N, C, H, W), as timm's BottleneckAttn computes it
    (attribute names alike): one 1x1 convolution for queries and keys (heads x head_dim) and values (out_channels),
    scores plus relative-position logits from two tables (2H-1 and 2W-1 rows of head_dim), softmax, the weighted
    sum of the values; no output projection."""

    def __init__(
        self, channels: int, out_channels: int, heads: int, head_dim: int, height: int, width: int, bias: bool = False
    ):
        super().__init__()
        if out_channels % heads:
            raise ValueError(f"heads={heads} must divide out_channels={out_channels}")
        self.num_heads, self.dim_head_qk, self.dim_head_v = heads, head_dim, out_channels // heads
        self.qkv = nn.Conv2d(channels, 2 * heads * head_dim + out_channels, 1, bias=bias)
        self.pos_embed = RelativePositions(height, width, head_dim)

    def forward(self, x):
        B, _, H, W = x.shape
        h, e, ev = self.num_heads, self.dim_head_qk, self.dim_head_v
        q, k, v = torch.split(self.qkv(x), [h * e, h * e, h * ev], dim=1)
        q = q.reshape(B * h, e, -1).transpose(-1, -2)
        k = k.reshape(B * h, e, -1)
        v = v.reshape(B * h, ev, -1).transpose(-1, -2)
        attn = ((q @ k) * e**-0.5 + self.pos_embed(q)).softmax(dim=-1)
        return (attn @ v).transpose(-1, -2).reshape(B, h * ev, H, W)


class RelativePositions(nn.Module):
    """BoTNet's relative-position logits (timm's PosEmbedRel): q against a table per axis."""

    def __init__(self, height: int, width: int, head_dim: int):
        super().__init__()
        self.height, self.width = height, width
        self.height_rel = nn.Parameter(torch.randn(2 * height - 1, head_dim) * head_dim**-0.5)
        self.width_rel = nn.Parameter(torch.randn(2 * width - 1, head_dim) * head_dim**-0.5)

    @staticmethod
    def logits_1d(q, rel_k, permute):
        B, H, W, _ = q.shape
        x = (q @ rel_k.transpose(-1, -2)).reshape(-1, W, 2 * W - 1)
        x = F.pad(F.pad(x, [0, 1]).flatten(1), [0, W - 1]).reshape(-1, W + 1, 2 * W - 1)[:, :W, W - 1 :]
        return x.reshape(B, H, 1, W, W).expand(-1, -1, H, -1, -1).permute(permute)

    def forward(self, q):
        B, T, _ = q.shape
        q = q.reshape(B, self.height, self.width, -1)
        w = self.logits_1d(q, self.width_rel, (0, 1, 3, 2, 4))
        h = self.logits_1d(q.transpose(1, 2), self.height_rel, (0, 3, 1, 4, 2))
        return (h + w).reshape(B, T, T)


class HaloAttention(nn.Module):
    """HaloNet's blocked local self-attention on a map (N, C, H, W), as timm's HaloAttn computes it (attribute
    names alike): queries of each block x block (1x1 convolution, strided by `stride`) against the keys and values
    of the block and a halo around it (another 1x1 convolution, zero-padded by the halo, unfolded into windows),
    scores plus relative-position logits from a row and a column table, softmax, the weighted sum of the values;
    no output projection."""

    def __init__(
        self,
        channels: int,
        out_channels: int,
        heads: int,
        head_dim: int,
        block: int,
        halo: int,
        stride: int = 1,
        bias: bool = False,
    ):
        super().__init__()
        if out_channels % heads or block % stride:
            raise ValueError(f"heads={heads} must divide {out_channels} and stride={stride} block={block}")
        self.num_heads, self.dim_head_qk, self.dim_head_v = heads, head_dim, out_channels // heads
        self.block_size, self.halo_size, self.block_stride = block, halo, stride
        self.block_size_ds, self.win_size = block // stride, block + 2 * halo
        self.q = nn.Conv2d(channels, heads * head_dim, 1, stride=stride, bias=bias)
        self.kv = nn.Conv2d(channels, heads * head_dim + out_channels, 1, bias=bias)
        self.pos_embed = HaloPositions(block // stride, block + 2 * halo, head_dim)

    def forward(self, x):
        B, _, H, W = x.shape
        h, e, ev, b, bq, win = (
            self.num_heads,
            self.dim_head_qk,
            self.dim_head_v,
            self.block_size,
            self.block_size_ds,
            self.win_size,
        )
        nh, nw = H // b, W // b
        q = self.q(x).reshape(B * h, e, nh, bq, nw, bq).permute(0, 1, 3, 5, 2, 4)
        q = q.reshape(B * h, e, bq * bq, nh * nw).transpose(1, 3)  # (B·h, blocks, bq², e)
        kv = F.pad(self.kv(x), [self.halo_size] * 4)
        kv = kv.unfold(2, win, b).unfold(3, win, b).reshape(B * h, e + ev, nh * nw, -1).permute(0, 2, 3, 1)
        k, v = torch.split(kv, [e, ev], dim=-1)
        attn = ((q @ k.transpose(-1, -2)) * e**-0.5 + self.pos_embed(q)).softmax(dim=-1)
        y = (attn @ v).transpose(1, 3).reshape(B * h, ev, bq, bq, nh, nw)
        return y.permute(0, 1, 4, 2, 5, 3).reshape(B, h * ev, nh * bq, nw * bq)


class HaloPositions(nn.Module):
    """HaloNet's relative-position logits (timm's halo PosEmbedRel): the queries of a block against a table per
    axis of 2·window - 1 rows, giving a logit for each position of the window."""

    def __init__(self, block: int, window: int, head_dim: int):
        super().__init__()
        self.block, self.window = block, window
        self.height_rel = nn.Parameter(torch.randn(2 * window - 1, head_dim) * head_dim**-0.5)
        self.width_rel = nn.Parameter(torch.randn(2 * window - 1, head_dim) * head_dim**-0.5)

    def logits_1d(self, q, rel_k, permute):
        n, rows, cols, _ = q.shape
        size, win = rel_k.shape[0], self.window
        x = (q @ rel_k.transpose(-1, -2)).reshape(-1, cols, size)
        x = F.pad(F.pad(x, [0, 1]).flatten(1), [0, size - cols]).reshape(-1, cols + 1, size)[:, :cols, win - 1 :]
        return x.reshape(n, rows, 1, cols, win).expand(-1, -1, win, -1, -1).permute(permute)

    def forward(self, q):
        B, blocks, positions, _ = q.shape
        q = q.reshape(-1, self.block, self.block, q.shape[-1])
        w = self.logits_1d(q, self.width_rel, (0, 1, 3, 2, 4))
        h = self.logits_1d(q.transpose(1, 2), self.height_rel, (0, 3, 1, 4, 2))
        return (h + w).reshape(B, blocks, positions, -1)


class LambdaNetLayer(nn.Module):
    """LambdaNetworks' lambda layer on a map (N, C, H, W), as timm's LambdaLayer computes it (attribute names
    alike): one 1x1 convolution for h query heads, one key head (both of width head_dim) and the values;
    BatchNorm on the queries and values, softmax of the keys over the positions; the content lambda keys·values
    and the position lambdas (a Conv3d over an r x r neighbourhood of the values, or, with r=0, a relative-position
    table for a height x width map), each query head multiplied with both."""

    def __init__(
        self,
        channels: int,
        out_channels: int,
        heads: int,
        head_dim: int,
        r: int = 0,
        height: int = 0,
        width: int = 0,
        bias: bool = False,
    ):
        super().__init__()
        if out_channels % heads:
            raise ValueError(f"heads={heads} must divide out_channels={out_channels}")
        self.num_heads, self.dim_qk, self.dim_v = heads, head_dim, out_channels // heads
        self.qkv = nn.Conv2d(channels, heads * head_dim + head_dim + self.dim_v, 1, bias=bias)
        self.norm_q = nn.BatchNorm2d(heads * head_dim)
        self.norm_v = nn.BatchNorm2d(self.dim_v)
        self.conv_lambda = self.pos_emb = None
        if r:
            self.conv_lambda = nn.Conv3d(1, head_dim, (r, r, 1), padding=(r // 2, r // 2, 0))
        else:
            self.pos_emb = nn.Parameter(torch.randn(2 * height - 1, 2 * width - 1, head_dim) * 0.02)
            rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
            pos = torch.stack([rows.flatten(), cols.flatten()])
            offsets = pos[:, None, :] - pos[:, :, None]
            offsets[0] += height - 1
            offsets[1] += width - 1
            self.register_buffer("rel_pos_indices", offsets, persistent=False)

    def forward(self, x):
        B, _, H, W = x.shape
        M, h, k, v = H * W, self.num_heads, self.dim_qk, self.dim_v
        q, keys, values = torch.split(self.qkv(x), [h * k, k, v], dim=1)
        q = self.norm_q(q).reshape(B, h, k, M).transpose(-1, -2)
        values = self.norm_v(values).reshape(B, v, M).transpose(-1, -2)
        keys = F.softmax(keys.reshape(B, k, M), dim=-1)
        content = q @ (keys @ values).unsqueeze(1)
        if self.conv_lambda is not None:
            position = self.conv_lambda(values.reshape(B, 1, H, W, v))
            position = position.reshape(B, 1, k, M, v).transpose(2, 3)
        else:
            table = self.pos_emb[self.rel_pos_indices[0], self.rel_pos_indices[1]].expand(B, -1, -1, -1)
            position = (table.transpose(-1, -2) @ values.unsqueeze(1)).unsqueeze(1)
        position = (q.unsqueeze(-2) @ position).squeeze(-2)
        return (content + position).transpose(-1, -2).reshape(B, h * v, H, W)


class BilinearTransform(nn.Module):
    """BAT's bilinear attention transform on a map (N, C, H, W), as timm's BilinearAttnTransform computes it
    (attribute names alike): a 1x1 conv, BatchNorm, ReLU to `groups` channels; their row and column band maxima
    through a (block x 1) and a (1 x block) convolution give per group a row and a column matrix (sigmoid,
    normalised, widened block-diagonally to the map); each channel is P·X·Q; then a 1x1 conv, BatchNorm, ReLU."""

    def __init__(self, channels: int, block: int, groups: int):
        super().__init__()

        def unit(cin, cout):
            return nn.Sequential(
                OrderedDict(conv=nn.Conv2d(cin, cout, 1, bias=False), bn=nn.BatchNorm2d(cout), act=nn.ReLU())
            )

        self.block_size, self.groups = block, groups
        self.conv1 = unit(channels, groups)
        self.conv_p = nn.Conv2d(groups, block * block * groups, (block, 1))
        self.conv_q = nn.Conv2d(groups, block * block * groups, (1, block))
        self.conv2 = unit(channels, channels)

    @staticmethod
    def widened(x, copies: int):
        """Each entry of the (N, C, b, b) matrices times an identity of `copies`: (N, C, b·copies, b·copies)."""
        n, c, b, _ = x.shape
        if copies <= 1:
            return x
        x = x.reshape(n * c, -1, 1, 1) * torch.eye(copies, dtype=x.dtype, device=x.device)
        x = x.view(n * c, b, b, copies, copies)
        x = torch.cat(torch.split(x, 1, dim=1), dim=3)
        x = torch.cat(torch.split(x, 1, dim=2), dim=4)
        return x.view(n, c, b * copies, b * copies)

    def forward(self, x):
        n, c, height, width = x.shape
        b, g = self.block_size, self.groups
        out = self.conv1(x)
        p = self.conv_p(F.adaptive_max_pool2d(out, (b, 1))).view(n, g, b, b).sigmoid()
        q = self.conv_q(F.adaptive_max_pool2d(out, (1, b))).view(n, g, b, b).sigmoid()
        p = p / p.sum(dim=3, keepdim=True)
        q = q / q.sum(dim=2, keepdim=True)
        p = p.view(n, g, 1, b, b).expand(n, g, c // g, b, b).reshape(n, c, b, b)
        q = q.view(n, g, 1, b, b).expand(n, g, c // g, b, b).reshape(n, c, b, b)
        y = self.widened(p, height // b).matmul(x).matmul(self.widened(q, width // b))
        return self.conv2(y)


class GatedPositionalAttention(nn.Module):
    """ConViT's gated positional self-attention (timm's GPSA, attribute names alike) on (N, C, *spatial) whose
    positions form a square: per head, softmax(q·k) and softmax(pos_proj(dx, dy, dx²+dy²)) mixed by a gate."""

    def __init__(self, channels: int, heads: int, bias: bool = False, proj_bias: bool = False):
        super().__init__()
        if channels % heads:
            raise ValueError(f"heads={heads} must divide channels={channels}")
        self.num_heads = heads
        self.qk = nn.Linear(channels, 2 * channels, bias=bias)
        self.v = nn.Linear(channels, channels, bias=bias)
        self.proj = nn.Linear(channels, channels, bias=bias or proj_bias)
        self.pos_proj = nn.Linear(3, heads)
        self.gating_param = nn.Parameter(torch.ones(heads))

    @staticmethod
    def relative(side: int, device) -> torch.Tensor:
        ind = torch.arange(side, dtype=torch.float32).view(1, -1) - torch.arange(side, dtype=torch.float32).view(-1, 1)
        dx = ind.repeat(side, side)
        dy = ind.repeat_interleave(side, dim=0).repeat_interleave(side, dim=1)
        return torch.stack([dx, dy, dx**2 + dy**2], dim=-1).unsqueeze(0).to(device)

    def forward(self, x):
        y = x.movedim(1, -1)
        shape = y.shape
        y = y.flatten(1, -2)
        B, N, C = y.shape
        h = self.num_heads
        side = math.isqrt(N)
        q, k = self.qk(y).reshape(B, N, 2, h, C // h).permute(2, 0, 3, 1, 4)
        v = self.v(y).reshape(B, N, h, C // h).permute(0, 2, 1, 3)
        positional = self.pos_proj(self.relative(side, y.device).expand(B, -1, -1, -1)).permute(0, 3, 1, 2)
        gate = torch.sigmoid(self.gating_param.view(1, -1, 1, 1))
        scores = (q @ k.transpose(-2, -1)) * (C // h) ** -0.5
        attn = (1.0 - gate) * scores.softmax(dim=-1) + gate * positional.softmax(dim=-1)
        attn = attn / attn.sum(dim=-1, keepdim=True)
        out = self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))
        return out.reshape(shape).movedim(-1, 1)


class ScaledDotProductAttention(nn.Module):
    """The attention alone on (N, C, *spatial) whose channels are the queries and keys (heads x head_dim each) and
    the values (C - 2·heads·head_dim): F.scaled_dot_product_attention per head, the values' channels out."""

    def __init__(self, heads: int, head_dim: int):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim

    def forward(self, x):
        y = x.movedim(1, -1)
        shape = y.shape
        y = y.flatten(1, -2)
        B, T, C = y.shape
        h, e = self.heads, self.head_dim
        q, k, v = torch.split(y, [h * e, h * e, C - 2 * h * e], dim=-1)
        q = q.reshape(B, T, h, e).transpose(1, 2)
        k = k.reshape(B, T, h, e).transpose(1, 2)
        v = v.reshape(B, T, h, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, -1)
        return out.reshape(*shape[:-1], -1).movedim(-1, 1)


class QueryPoolingAttention(nn.Module):
    """`qpoolattn(heads=h, ->D, window=w, stride=s[, pad, bias])` on a map (N, d, H, W): qkv Linear (d -> 3*D) at
    every position (the map padded at the bottom and right to a multiple of w with `pad`), the queries max pooled
    s x s with stride s, attention of each pooled query to the keys of its w x w window (to every position without
    a window), the output Linear (D -> D): (N, D, H // s, W // s) (timm's HieraDet MultiScaleAttention in its
    block's windows, Hiera's MaskUnitAttention)."""

    def __init__(
        self,
        channels: int,
        out: int,
        heads: int,
        window: int | None = None,
        stride: int = 1,
        bias: bool = True,
        pad: bool = False,
    ):
        super().__init__()
        self.heads, self.window, self.stride, self.pad = heads, window, stride, pad
        self.qkv = nn.Linear(channels, 3 * out, bias=bias)
        self.proj = nn.Linear(out, out, bias=bias)

    def forward(self, x):
        n, _, height, width = x.shape
        s, h = self.stride, self.heads
        y = x.movedim(1, -1)
        if self.window:
            w = self.window
            y = F.pad(y, (0, 0, 0, (w - width % w) % w, 0, (w - height % w) % w))
            rows, cols = y.shape[1] // w, y.shape[2] // w
            y = y.view(n, rows, w, cols, w, -1).permute(0, 1, 3, 2, 4, 5).reshape(n * rows * cols, w, w, -1)
        q, k, v = self.qkv(y).chunk(3, dim=-1)
        if s > 1:
            q = F.max_pool2d(q.movedim(-1, 1), s, s).movedim(1, -1)
        b, qh, qw, out = q.shape

        def heads(t):
            return t.reshape(b, -1, h, out // h).transpose(1, 2)

        z = F.scaled_dot_product_attention(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(b, qh, qw, out)
        z = self.proj(z)
        if self.window:
            z = z.view(n, rows, cols, qh, qw, out).permute(0, 1, 3, 2, 4, 5).reshape(n, rows * qh, cols * qw, out)
            z = z[:, : height // s, : width // s]
        return z.movedim(-1, 1)


class WindowedPositionEmbedding(nn.Module):
    """`winposembed(A x B, window=w)` on a map (N, d, H, W): x + the A x B table resized to H x W (bicubic) + the
    w x w table tiled over the map (timm's HieraDet._pos_embed)."""

    def __init__(self, channels: int, table: tuple, window: int):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(1, channels, *table))
        self.window = nn.Parameter(torch.zeros(1, channels, window, window))

    def forward(self, x):
        height, width = x.shape[2:]
        tiles = (height // self.window.shape[-2], width // self.window.shape[-1])
        return x + F.interpolate(self.table, size=(height, width), mode="bicubic") + self.window.tile(tiles)


class SeparableSelfAttention(nn.Module):
    """`sepattn(patch=p[, bias])` on a map (N, C, H, W): a 1x1 convolution to a score, a key and a value per position
    (1 + 2*C channels), a softmax of the scores over the positions at the same offset of the p x p patches, the keys
    weighed by it into a context vector per offset, relu(value) times its offset's context vector, a 1x1 convolution
    C -> C (timm's MobileViT v2 LinearSelfAttention on the unfolded patches)."""

    def __init__(self, channels: int, patch: int = 1, bias: bool = True):
        super().__init__()
        self.channels, self.patch = channels, patch
        self.qkv = nn.Conv2d(channels, 1 + 2 * channels, 1, bias=bias)
        self.proj = nn.Conv2d(channels, channels, 1, bias=bias)

    def forward(self, x):
        n, c, height, width = x.shape
        p = self.patch
        y = self.qkv(x).reshape(n, 1 + 2 * c, height // p, p, width // p, p).permute(0, 1, 3, 5, 2, 4)
        y = y.reshape(n, 1 + 2 * c, p * p, -1)  # (N, channels, offsets, patches)
        score, key, value = y.split([1, c, c], dim=1)
        context = (key * F.softmax(score, dim=-1)).sum(dim=-1, keepdim=True)
        out = (F.relu(value) * context).reshape(n, c, p, p, height // p, width // p).permute(0, 1, 4, 2, 5, 3)
        return self.proj(out.reshape(n, c, height, width))


class CrossCovarianceAttention(nn.Module):
    """`xca(heads=h)`: XCiT's attention across the channels of a sequence (N, d, T), as timm's XCA computes it:
    q, k, v from one Linear, q and k normalised along the positions, a softmax over each head's e x e
    cross-covariance times a learned temperature, the weighted values, a Linear."""

    def __init__(self, d: int, heads: int, qkv_bias: bool = False):
        super().__init__()
        self.num_heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Linear(d, 3 * d, bias=qkv_bias)  # the projection's bias is always there
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        y = x.transpose(1, 2)
        B, T, C = y.shape
        q, k, v = self.qkv(y).reshape(B, T, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 4, 1).unbind(0)
        attn = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)) * self.temperature
        out = (attn.softmax(dim=-1) @ v).permute(0, 3, 1, 2).reshape(B, T, C)
        return self.proj(out).transpose(1, 2)


class AdditiveAttention(nn.Module):
    """`additiveattn`: SwiftFormer's efficient additive attention on a map (N, d, H, W), as timm's
    EfficientAdditiveAttention computes it: q and k from Linears, normalised; scores q·w_g (times d^-1/2)
    normalised along the positions weigh the queries' sum into a global query g; Linear(g * k) + q; a Linear."""

    def __init__(self, d: int):
        super().__init__()
        self.scale_factor = d**-0.5
        self.to_query = nn.Linear(d, d)
        self.to_key = nn.Linear(d, d)
        self.w_g = nn.Parameter(torch.randn(d, 1))
        self.proj = nn.Linear(d, d)
        self.final = nn.Linear(d, d)

    def forward(self, x):
        B, _, H, W = x.shape
        x = x.flatten(2).permute(0, 2, 1)
        query = F.normalize(self.to_query(x), dim=-1)
        key = F.normalize(self.to_key(x), dim=-1)
        scores = F.normalize(query @ self.w_g * self.scale_factor, dim=1)
        g = torch.sum(scores * query, dim=1, keepdim=True)
        out = self.proj(g * key) + query
        return self.final(out).permute(0, 2, 1).reshape(B, -1, H, W)


class ClassAttention(nn.Module):
    """`clsattn(heads=h)`: the first position of a sequence (N, d, T) attends to all of them, as timm's CaiT
    ClassAttn and CrossViT CrossAttention compute it: its query, every position's keys and values (three Linears),
    a softmax per head, the weighted values, a Linear; the output is (N, d, 1)."""

    def __init__(self, d: int, heads: int, qkv_bias: bool = False):
        super().__init__()
        self.num_heads = heads
        self.q = nn.Linear(d, d, bias=qkv_bias)
        self.k = nn.Linear(d, d, bias=qkv_bias)
        self.v = nn.Linear(d, d, bias=qkv_bias)
        self.proj = nn.Linear(d, d)  # the projection's bias is always there

    def forward(self, x):
        y = x.transpose(1, 2)
        B, T, C = y.shape
        h = self.num_heads
        q = self.q(y[:, :1]).reshape(B, 1, h, C // h).transpose(1, 2)
        k = self.k(y).reshape(B, T, h, C // h).transpose(1, 2)
        v = self.v(y).reshape(B, T, h, C // h).transpose(1, 2)
        attn = ((q @ k.transpose(-2, -1)) * (C // h) ** -0.5).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(B, 1, C)
        return self.proj(out).transpose(1, 2)


class FourierPositions(nn.Module):
    """`fourierpos(H x W)`: adds XCiT's fixed Fourier encoding of an H x W grid (hidden sines and cosines of the
    row and of the column, projected by a 1x1 convolution) to a sequence (N, d, H·W) or a map (N, d, H, W)."""

    def __init__(self, height: int, width: int, d: int, hidden: int = 32):
        super().__init__()
        self.grid = (height, width)
        self.hidden_dim = hidden
        self.temperature = 10000
        self.token_projection = nn.Conv2d(2 * hidden, d, kernel_size=1)

    def forward(self, x):
        H, W = self.grid
        weight = self.token_projection.weight
        scale, eps = 2 * math.pi, 1e-6
        y_embed = torch.arange(1, H + 1, device=weight.device, dtype=torch.float32)[:, None].expand(H, W)
        x_embed = torch.arange(1, W + 1, device=weight.device, dtype=torch.float32)[None, :].expand(H, W)
        y_embed = y_embed / (H + eps) * scale
        x_embed = x_embed / (W + eps) * scale
        dim_t = torch.arange(self.hidden_dim, device=weight.device, dtype=torch.float32)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.hidden_dim)
        pos_x, pos_y = x_embed[..., None] / dim_t, y_embed[..., None] / dim_t
        pos_x = torch.stack([pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()], dim=-1).flatten(-2)
        pos_y = torch.stack([pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()], dim=-1).flatten(-2)
        pos = torch.cat((pos_y, pos_x), dim=-1).permute(2, 0, 1)[None].to(weight.dtype)
        return x + self.token_projection(pos).reshape(1, -1, *x.shape[2:])


class TalkingHeadAttention(nn.Module):
    """`talkattn(heads=h)`: CaiT's talking-heads attention on a sequence (N, d, T), as timm's TalkingHeadAttn
    computes it: q, k, v from one Linear, the scores mixed across the heads by a Linear h -> h before the softmax
    (proj_l) and by another after it (proj_w), the weighted values, a Linear."""

    def __init__(self, d: int, heads: int, qkv_bias: bool = False):
        super().__init__()
        self.num_heads = heads
        self.scale = (d // heads) ** -0.5
        self.qkv = nn.Linear(d, 3 * d, bias=qkv_bias)
        self.proj = nn.Linear(d, d)
        self.proj_l = nn.Linear(heads, heads)
        self.proj_w = nn.Linear(heads, heads)

    def forward(self, x):
        y = x.transpose(1, 2)
        B, T, C = y.shape
        q, k, v = self.qkv(y).reshape(B, T, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = self.proj_l(attn.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).softmax(dim=-1)
        attn = self.proj_w(attn.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, T, C)).transpose(1, 2)


class OutlookAttention(nn.Module):
    """`outlook(heads=h, kernel=k, stride=s)`: VOLO's outlook attention on a map (N, C, H, W), as timm's
    OutlookAttention computes it: values from a Linear, unfolded k x k around each position of the stride-s grid;
    per head a k² x k² softmaxed matrix from a Linear on the map average-pooled s x s (ceil mode) mixes them; folded
    back onto the map (padding (k-1)/2), a Linear."""

    def __init__(self, dim: int, heads: int, kernel: int = 3, stride: int = 1, qkv_bias: bool = False):
        super().__init__()
        self.num_heads, self.kernel_size, self.stride = heads, kernel, stride
        self.padding = (kernel - 1) // 2
        self.scale = (dim // heads) ** -0.5
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.attn = nn.Linear(dim, kernel**4 * heads)
        self.proj = nn.Linear(dim, dim)
        self.unfold = nn.Unfold(kernel_size=kernel, padding=self.padding, stride=stride)
        self.pool = nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True)

    def forward(self, x):
        B, C, H, W = x.shape
        k, s, heads = self.kernel_size, self.stride, self.num_heads
        h, w = math.ceil(H / s), math.ceil(W / s)
        v = self.v(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        v = self.unfold(v).reshape(B, heads, C // heads, k * k, h * w).permute(0, 1, 4, 3, 2)
        attn = self.attn(self.pool(x).permute(0, 2, 3, 1))
        attn = attn.reshape(B, h * w, heads, k * k, k * k).permute(0, 2, 1, 3, 4)
        attn = (attn * self.scale).softmax(dim=-1)
        y = (attn @ v).permute(0, 1, 4, 3, 2).reshape(B, C * k * k, h * w)
        y = F.fold(y, output_size=(H, W), kernel_size=k, padding=self.padding, stride=s)
        return self.proj(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _ClassAttention(nn.Module):
    """Class attention (timm's ClassAttn): the query of the class token (the first position) alone, keys and values
    of every position, a Linear; on (N, T, d), giving (N, 1, d)."""

    def __init__(self, d: int, heads: int, qkv_bias: bool):
        super().__init__()
        self.num_heads = heads
        self.q = nn.Linear(d, d, bias=qkv_bias)
        self.k = nn.Linear(d, d, bias=qkv_bias)
        self.v = nn.Linear(d, d, bias=qkv_bias)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        B, N, C = x.shape
        h = self.num_heads
        q = self.q(x[:, :1]).reshape(B, 1, h, C // h).transpose(1, 2)
        k = self.k(x).reshape(B, N, h, C // h).transpose(1, 2)
        v = self.v(x).reshape(B, N, h, C // h).transpose(1, 2)
        attn = ((q * (C // h) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, 1, C))


class ClassTokenBlock(nn.Module):
    """`clsblock(heads=h, hidden=H)`: a class-attention block on a sequence (N, d, T) whose first position is the
    class token. CaiT's (timm's LayerScaleBlockClassAttn, run on cat(cls, x)): the class token c becomes
    c + γ₁·attn(LN₁(seq)), then c + γ₂·MLP(LN₂(c)); the other positions pass unchanged. With `xcit`, XCiT's
    ClassAttentionBlock as timm computes it (the other positions too take LN₁ and the residuals; `tokens_norm`)."""

    def __init__(self, d: int, heads: int, hidden: int, qkv_bias: bool = False, xcit=False, tokens_norm=False):
        super().__init__()
        self.xcit, self.tokens_norm = xcit, tokens_norm
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = _ClassAttention(d, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))
        self.gamma1 = nn.Parameter(torch.ones(d))
        self.gamma2 = nn.Parameter(torch.ones(d))

    def forward(self, x):
        x = x.transpose(1, 2)
        if not self.xcit:  # CaiT: only the class token changes
            cls = x[:, :1] + self.gamma1 * self.attn(self.norm1(x))
            cls = cls + self.gamma2 * self.mlp(self.norm2(cls))
            return torch.cat([cls, x[:, 1:]], dim=1).transpose(1, 2)
        x_norm1 = self.norm1(x)
        x = x + self.gamma1 * torch.cat([self.attn(x_norm1), x_norm1[:, 1:]], dim=1)
        x = self.norm2(x) if self.tokens_norm else torch.cat([self.norm2(x[:, :1]), x[:, 1:]], dim=1)
        cls = self.gamma2 * self.mlp(x[:, :1])
        return (x + torch.cat([cls, x[:, 1:]], dim=1)).transpose(1, 2)


class _GcSqueeze(nn.Module):
    """GCViT's squeeze-excitation (timm's SEModule with GELU, no biases): fc1, act, fc2, gate."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1, bias=False)
        self.bn = nn.Identity()
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(reduced, channels, 1, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))


class _GcMbConv(nn.Module):
    """GCViT's MbConvBlock: x + conv_pw(se(act(conv_dw(x)))), no biases."""

    def __init__(self, channels: int):
        super().__init__()
        reduced = max(8, int(channels / 4 + 4) // 8 * 8)
        self.conv_dw = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False)
        self.act = nn.GELU()
        self.se = _GcSqueeze(channels, reduced)
        self.conv_pw = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x):
        return x + self.conv_pw(self.se(self.act(self.conv_dw(x))))


class _GcRelPosBias(nn.Module):
    """A relative-position bias table of (2w-1)² entries per head over a w x w window (timm's RelPosBias)."""

    def __init__(self, window: int, heads: int):
        super().__init__()
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        rows, cols = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        r, c = rows.flatten(), cols.flatten()
        index = (r[:, None] - r[None, :] + window - 1) * (2 * window - 1) + (c[:, None] - c[None, :] + window - 1)
        self.register_buffer("relative_position_index", index.flatten(), persistent=False)

    def forward(self, attn):
        n = attn.shape[-1]
        bias = self.relative_position_bias_table[self.relative_position_index].view(n, n, -1).permute(2, 0, 1)
        return attn + bias


class _GcWindowAttention(nn.Module):
    """GCViT's WindowAttentionGlobal on windows (B·nW, w², C): queries, keys and values from each window, or
    (`use_global`) keys and values only, the queries being the global query (B, w, w, C) of its image."""

    def __init__(self, channels: int, heads: int, window: int, use_global: bool):
        super().__init__()
        self.num_heads, self.head_dim, self.use_global = heads, channels // heads, use_global
        self.rel_pos = _GcRelPosBias(window, heads)
        self.qkv = nn.Linear(channels, channels * (2 if use_global else 3))
        self.proj = nn.Linear(channels, channels)

    def forward(self, x, q_global):
        B, N, C = x.shape
        h, hd = self.num_heads, self.head_dim
        if self.use_global:
            k, v = self.qkv(x).reshape(B, N, 2, h, hd).permute(2, 0, 3, 1, 4).unbind(0)
            q = q_global.repeat_interleave(B // q_global.shape[0], dim=0).reshape(B, N, h, hd).permute(0, 2, 1, 3)
        else:
            q, k, v = self.qkv(x).reshape(B, N, 3, h, hd).permute(2, 0, 3, 1, 4).unbind(0)
        attn = self.rel_pos(q * hd**-0.5 @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class _GcMlp(nn.Module):
    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.norm = nn.Linear(channels, hidden), nn.GELU(), nn.Identity()
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _GcLayerScale(nn.Module):
    """timm's LayerScale: x · gamma, one learned factor per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))

    def forward(self, x):
        return x * self.gamma


class _GcBlock(nn.Module):
    """GCViT's block on (B, H, W, C): LayerNorm > window attention, residual; LayerNorm > Mlp, residual."""

    def __init__(self, channels: int, heads: int, window: int, hidden: int, use_global: bool, scale: bool):
        super().__init__()
        self.window_size = (window, window)
        self.norm1 = nn.LayerNorm(channels)
        self.attn = _GcWindowAttention(channels, heads, window, use_global)
        self.ls1 = _GcLayerScale(channels) if scale else nn.Identity()  # timm's order: its weights load
        self.drop_path1 = nn.Identity()
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = _GcMlp(channels, hidden)
        self.ls2 = _GcLayerScale(channels) if scale else nn.Identity()
        self.drop_path2 = nn.Identity()

    def forward(self, x, q_global):
        B, H, W, C = x.shape
        w = self.window_size[0]
        win = self.norm1(x).view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, C)
        y = self.attn(win, q_global).view(B, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)
        x = x + self.ls1(y)
        return x + self.ls2(self.mlp(self.norm2(x)))


class GlobalContextStage(nn.Module):
    """`gcstage(depth=n, heads=h, window=w, mlp=r, ls)`: GCViT's stage after its downsample, on (N, C, H, W): the global
    query generator (MbConv blocks and 3x3 max poolings of stride 2 down to w x w, `global_block.blocks`), then n
    blocks of window attention, the odd ones with the generator's map as their queries (`scale`: layer scales).
    timm's names, so that timm's weights load."""

    def __init__(self, channels: int, depth: int, heads: int, window: int, hw, mlp: int = 4, scale: bool = False):
        super().__init__()
        H, W = hw
        levels = 0  # timm's int(log2(min(H, W) / window)): the poolings that take the map to the window
        while window * 2 ** (levels + 1) <= min(H, W):
            levels += 1
        layers = nn.Sequential()
        for i in range(max(1, levels)):
            layers.add_module(f"conv{i + 1}", _GcMbConv(channels))
            if i < levels:
                layers.add_module(f"pool{i + 1}", nn.MaxPool2d(3, 2, 1))
        self.global_block = nn.Module()
        self.global_block.blocks = layers
        self.global_norm, self.norm = nn.Identity(), nn.Identity()
        self.blocks = nn.ModuleList(
            _GcBlock(channels, heads, window, mlp * channels, use_global=i % 2 == 1, scale=scale) for i in range(depth)
        )

    def forward(self, x):
        q = self.global_block.blocks(x).permute(0, 2, 3, 1)
        x = x.permute(0, 2, 3, 1)
        for block in self.blocks:
            x = block(x, q)
        return x.permute(0, 3, 1, 2).contiguous()
