"""The few PyTorch modules the language needs beyond torch.nn (needs torch).

Exported source (`paramsym export --to torch`) copies these classes in, so the
file it writes runs without paramsym.
"""

from __future__ import annotations

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
    """Every branch on the same input, summed ("add"), joined along channels ("concat") or multiplied
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
        outputs = [output[(..., *[None] * n)] if n else output for output, n in zip(outputs, self.expand)]
        total = outputs[0]
        for output in outputs[1:]:
            total = total * output if self.how == "mul" else total + output
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


class MixtureOfExperts(nn.Module):
    """`moe(SEQ, experts=E, top=k)`: a router Linear(d, E) without bias scores the experts at each
    position; each position's output is the softmax-weighted sum of its k best experts (every expert
    runs on every position here, which gives the same result as sending each position to k of them).
    Tensors are channels first, like every exported module."""

    def __init__(self, router: nn.Module, experts: nn.Sequential, top: int):
        super().__init__()
        self.router = router
        self.experts = nn.ModuleList(experts)
        self.top = top

    def forward(self, x):
        scores = self.router(x)  # (N, E, *positions)
        weights, chosen = scores.topk(self.top, dim=1)
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


class GroupedQueryAttention(nn.Module):
    """Multi-head attention with `kv_heads` key/value heads shared by the query heads (grouped-query
    attention) and any head width: q, k, v, o projections and F.scaled_dot_product_attention, on the
    positions of (N, C, *spatial)."""

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
    ):
        super().__init__()
        self.rope = rope
        kv_heads = heads if kv_heads is None else kv_heads
        head_dim = channels // heads if head_dim is None else head_dim
        source_channels = channels if source_channels is None else source_channels
        if heads % kv_heads:
            raise ValueError(f"kv_heads={kv_heads} must divide heads={heads}")
        self.heads, self.kv_heads, self.head_dim, self.causal = heads, kv_heads, head_dim, causal
        self.q = nn.Linear(channels, heads * head_dim, bias=bias)
        self.k = nn.Linear(source_channels, kv_heads * head_dim, bias=bias)
        self.v = nn.Linear(source_channels, kv_heads * head_dim, bias=bias)
        self.o = nn.Linear(heads * head_dim, channels, bias=bias)

    def attend(self, x, source):
        """x: (N, T, channels), source: (N, S, source_channels) -> (N, T, channels)."""
        n, t, s = x.shape[0], x.shape[1], source.shape[1]
        q = self.q(x).view(n, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(source).view(n, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(source).view(n, s, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.rope:
            q, k = rotary(q, k)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.o(y.transpose(1, 2).reshape(n, t, self.heads * self.head_dim))

    def forward(self, x):
        y = x.movedim(1, -1)
        shape = y.shape
        y = y.flatten(1, -2)
        return self.attend(y, y).reshape(shape).movedim(-1, 1)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary(q, k, base: float = 10000.0):
    """Rotary position embedding of queries and keys (N, heads, T, e), as Llama's (rotate_half, base 10000):
    no parameters, no multiply-accumulates that FlopCounterMode counts."""
    t, e = q.shape[-2], q.shape[-1]
    inverse = 1.0 / base ** (torch.arange(0, e, 2, device=q.device, dtype=torch.float32) / e)
    angles = torch.outer(torch.arange(t, device=q.device, dtype=torch.float32), inverse)
    angles = torch.cat((angles, angles), dim=-1)
    cos, sin = angles.cos().to(q.dtype), angles.sin().to(q.dtype)
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


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
    """`space2depth(B)`: each B x B patch of (N, C, H, W) becomes one position of B*B*C channels, in
    Swin's patch-merging order: channel (j*B + i)*C + c is channel c at row offset i, column offset j."""

    def __init__(self, block: int):
        super().__init__()
        self.block = block

    def forward(self, x):
        n, c, h, w = x.shape
        b = self.block
        x = x.reshape(n, c, h // b, b, w // b, b).permute(0, 5, 3, 1, 2, 4)
        return x.reshape(n, b * b * c, h // b, w // b)


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


class _ConvNorm(nn.Sequential):
    """A convolution without bias, then BatchNorm2d (EfficientViT's ConvNorm)."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, 1, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)


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
        self.qkvs = nn.ModuleList(_ConvNorm(group, 2 * key_dim + value_dim) for _ in range(heads))
        self.dws = nn.ModuleList(_ConvNorm(key_dim, key_dim, k, groups=key_dim) for k in kernels)
        self.proj = nn.Sequential(nn.ReLU(), _ConvNorm(value_dim * heads, channels))
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


class WindowAttention(nn.Module):
    """`attn(heads=h, window=w[, shift])`: Swin's window attention on channels-first maps (N, C, H, W), as
    torchvision's ShiftedWindowAttention computes it: one qkv and one proj Linear, a learned relative-position
    bias table of (2w-1)^2 x heads, attention inside w x w windows, and with `shift` the windows shifted by
    w//2 (a cyclic roll, masks between the regions the roll brings together; no shift on a map no larger
    than a window). Besides: kv_heads key/value heads shared by the query heads, and any head width.

    With `grid=True`, `attn(heads=h, grid=g)`: MaxViT's grid attention (torchvision's PartitionAttentionLayer
    with partition_type="grid"): `window` is the side g of a grid, and each position attends to the g x g
    positions H/g rows and W/g columns apart (the same table of (2g-1)^2 x heads over their offsets).

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
        relpos: str = "table",
    ):
        super().__init__()
        if grid and shift:
            raise ValueError("grid attention has no shift")
        if relpos not in ("table", "none", "offsets", "axes") or (grid and relpos not in ("table", "none")):
            raise ValueError(f"relpos={relpos!r}: table, none, offsets or axes (grid attention: table or none)")
        self.relpos = relpos
        self.grid = grid
        kv_heads = heads if kv_heads is None else kv_heads
        head_dim = channels // heads if head_dim is None else head_dim
        if heads % kv_heads:
            raise ValueError(f"kv_heads={kv_heads} must divide heads={heads}")
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.window_size = [window, window]
        self.shift_size = [window // 2, window // 2] if shift else [0, 0]
        self.qkv = nn.Linear(channels, (heads + 2 * kv_heads) * head_dim, bias=bias)
        self.proj = nn.Linear(heads * head_dim, channels, bias=bias)
        if relpos == "table":
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
        bias = self.relative_position_bias_table[index.flatten()].view(w * w, w * w, -1)
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
        qkv = self.qkv(x).reshape(n * count, w * w, h + 2 * g, e).transpose(1, 2)
        q, k, v = qkv[:, :h], qkv[:, h : h + g], qkv[:, h + g :]
        if g != h:
            k, v = k.repeat_interleave(h // g, dim=1), v.repeat_interleave(h // g, dim=1)
        attn = (q * e**-0.5).matmul(k.transpose(-2, -1)) + self.relative_position_bias(q)
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
        y = self.proj(y).view(n, size_h // w, size_w // w, w, w, channels)
        y = y.permute(0, 3, 1, 4, 2, 5) if self.grid else y.permute(0, 1, 3, 2, 4, 5)
        y = y.reshape(n, size_h, size_w, channels)
        if sum(shift) > 0:
            y = torch.roll(y, shifts=(shift[0], shift[1]), dims=(1, 2))
        return y[:, :height, :width].movedim(-1, 1)
