"""Rotary positions (`attn(..., rope)`) read from the operations a model runs (kinds/traced_attention.py,
`_Reader.rotation`): queries and keys turned as x * cos + rotate(x) * sin by tables that forward makes itself
(rotate_half's cat(-x2, x1) or the interleaved pairs), on all positions or on the positions after the prefix
tokens (a class token, registers), 1-D on a sequence or 2-D (axial) on the patches of an image. Checked against
timm's models that use them (DeepSeek's and Qwen3's vision encoders, EVA-02, DINOv3-style Eva: small configs,
params, state, output shape and MACs by FlopCounterMode), and what is not a rotation of the queries' and keys'
pairs stays refused, naming the module and the operation."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import paramsym
from helpers.import_check import check

# (timm model, small config, input side, what the program says)
MODELS = [
    # 2-D axial rope (rotate_half), no prefix tokens, RMSNorm, SwiGLU
    ("deepseek_vit_412m", dict(depth=2, embed_dim=64, num_heads=2, img_size=56), 56, ["attn(heads=2, bias, rope)"]),
    (
        "qwen3_vit_88m",
        dict(depth=1, embed_dim=64, num_heads=4, img_size=64, pos_embed_grid_size=4),
        64,
        ["attn(heads=4, bias, rope)"],
    ),
    # interleaved pairs, a class token not rotated (EVA-02), SwiGLU
    ("eva02_tiny_patch14_224", dict(depth=1, qkv_bias=False, img_size=56), 56, ["cls", "projbias, rope)"]),
    # rotate_half, a class token and 4 registers not rotated (DINOv3's layout)
    ("vit_tiny_patch16_dinov3_qkvb", dict(depth=2, qkv_bias=False, img_size=64), 64, ["(cls) * 5", "rope)"]),
    # with their biases on the queries and values (torch.cat((q_bias, k_bias, v_bias)): qv_bias), as timm has them
    ("eva02_tiny_patch14_224", dict(depth=1, img_size=56), 56, ["attn(heads=3, qv_bias, rope)"]),
    ("vit_tiny_patch16_dinov3_qkvb", dict(depth=1, img_size=64), 64, ["attn(heads=3, qv_bias, rope)"]),
]


@pytest.mark.parametrize("name, config, side, says", MODELS)
def test_timm_rope_models_import_exactly(name, config, side, says):
    with torch.device("meta"):
        model = timm.create_model(name, **config).eval()
    text = paramsym.from_torch(model, (side, side, 3))
    for words in says:
        assert words in text
    result = check(model, (side, side, 3), text)
    assert result["wrong"] == ""
    assert result["macs"] == result["torch_macs"]


def test_rope_counts_nothing():
    """The rotation costs no parameter and no MAC (FlopCounterMode counts no element-wise product): on a map, a
    sequence, with kv_heads, the counts are those without rope."""
    for shape, options in (("16x16x64", "heads=4"), ("256x64", "heads=4, bias"), ("50x96", "heads=6, kv_heads=2")):
        plain = paramsym.parse(f"input({shape}) > attn({options})").evaluate()
        rope = paramsym.parse(f"input({shape}) > attn({options}, rope)").evaluate()
        assert (plain["params"], plain["macs"]) == (rope["params"], rope["macs"])


def _rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def _interleaved(x):
    return torch.stack([-x[..., 1::2], x[..., ::2]], -1).reshape(x.shape)


class Rotary(nn.Module):
    """One attention with rotary positions made in forward, and variants that are not rotary positions."""

    def __init__(self, d=32, heads=2, prefix=0, how="half", where="qk"):
        super().__init__()
        self.heads, self.prefix, self.how, self.where = heads, prefix, how, where
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.table = nn.Parameter(torch.ones(1, 1)) if how == "learned" else None

    def turn(self, x):
        N, e = x.shape[-2], x.shape[-1]
        line = torch.arange(N, device=x.device).float().view(-1, 1)
        angle = line * torch.arange(e, device=x.device).float().view(1, -1)
        cos, sin = angle.cos(), angle.sin()
        if self.how == "learned":
            return x * self.table + _rotate_half(x) * sin
        if self.how == "half":
            return x * cos + _rotate_half(x) * sin
        if self.how == "interleaved":
            return x * cos + _interleaved(x) * sin
        if self.how == "unturned":  # the halves swapped, none negated: not a rotation
            x1, x2 = x.chunk(2, dim=-1)
            return x * cos + torch.cat([x2, x1], dim=-1) * sin
        if self.how == "positions":  # partners at other positions
            return x * cos + _rotate_half(torch.cat([x[:, :, 1:], x[:, :, :1]], dim=2)) * sin
        if self.how == "same-sign":  # (x, y) -> (-y, -x)
            x1, x2 = x.chunk(2, dim=-1)
            return x * cos + torch.cat([-x2, -x1], dim=-1) * sin
        raise ValueError(self.how)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        n = self.prefix

        def rope(t):
            return torch.cat([t[:, :, :n], self.turn(t[:, :, n:])], dim=2)

        if "q" in self.where:
            q = rope(q)
        if "k" in self.where:
            k = rope(k)
        if "v" in self.where:
            v = rope(v)
        x = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class Host(nn.Module):
    """A sequence (N, C, T) as (N, T, C), into the attention (named 'attn' in refusals)."""

    def __init__(self, attn):
        super().__init__()
        self.attn = attn

    def forward(self, x):
        return self.attn(x.transpose(1, 2))


@pytest.mark.parametrize(
    "how, prefix, heads",
    [("half", 0, 2), ("interleaved", 0, 4), ("half", 1, 2), ("interleaved", 5, 1)],
)
def test_rotations_read_as_rope(how, prefix, heads):
    with torch.device("meta"):
        model = Host(Rotary(32, heads, prefix, how)).eval()
    text = paramsym.from_torch(model, (17, 32))
    assert f"attn(heads={heads}, bias, rope)" in text
    result = check(model, (17, 32), text)
    assert result["wrong"] == "" and result["macs"] == result["torch_macs"]


@pytest.mark.parametrize(
    "how, where, words",
    [
        ("half", "q", "rotates its queries but not its keys"),
        ("half", "k", "rotates its keys but not its queries"),
        ("half", "qkv", "rotates its values"),
        ("unturned", "qk", "not x * cos + rotate(x) * sin"),
        ("positions", "qk", "others than their partners at the same position"),
        ("same-sign", "qk", "other than by pairs"),
        ("learned", "qk", "'attn.table', a parameter or buffer"),
    ],
)
def test_what_is_not_a_rotation_is_refused(how, where, words):
    with torch.device("meta"):
        model = Host(Rotary(32, 2, 0, how, where)).eval()
    with pytest.raises(paramsym.ParamsymError) as error:
        paramsym.from_torch(model, (16, 32))
    assert words in str(error.value)
    assert "module 'attn' (Rotary)" in str(error.value)
