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
    """Every branch on the same input, summed ("add") or joined along channels ("concat")."""

    def __init__(self, how: str, *branches: nn.Module):
        super().__init__()
        self.how = how
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        outputs = [branch(x) for branch in self.branches]
        if self.how == "concat":
            return torch.cat(outputs, dim=1)
        total = outputs[0]
        for output in outputs[1:]:
            total = total + output
        return total


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

    def __init__(self, channels: int, heads: int, kv_heads: int | None = None, head_dim: int | None = None,
                 bias: bool = True, causal: bool = False, source_channels: int | None = None):
        super().__init__()
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
