"""Attention whose qkv bias is `torch.cat((q_bias, k_bias, v_bias))` passed to `F.linear` with the qkv Linear's
weight (timm's BEiT and EVA: q_bias and v_bias parameters, k_bias a buffer of zeros), read from the traced graph as
`attn(..., qv_bias)` (importer._qv_bias_linears, traced_attention); and EVA's separate q_proj, k_proj, v_proj with
biases on the queries and values only. Checked whole against the models (params, state, output shape, MACs by
FlopCounterMode); a key bias that is a parameter, or not zeros, stays refused naming the module and the cat."""

from __future__ import annotations

import pytest
import torch
from timm.models.eva import Eva
from torch import nn
from torch.nn import functional as F

import paramsym
from helpers.imported import ours, torch_truth


def _same(model: nn.Module, shape: tuple) -> str:
    text, numbers = ours(model, shape)
    truth = torch_truth(model, shape)
    keys = ("params", "state", "macs", "out")
    assert {k: numbers[k] for k in keys} == {k: truth[k] for k in keys}, text
    return text


# (embed_dim, heads, qkv_bias, qkv_fused, expected option)
EVA_CASES = [
    (64, 4, True, True, "qv_bias"),
    (48, 2, True, False, "qv_bias"),
    (64, 4, False, True, "projbias"),
    (32, 1, True, True, "qv_bias"),
]


@pytest.mark.parametrize("d, heads, bias, fused, option", EVA_CASES)
def test_eva_attention_imports(d, heads, bias, fused, option):
    with torch.device("meta"):
        model = Eva(
            img_size=32,
            patch_size=8,
            embed_dim=d,
            depth=2,
            num_heads=heads,
            qkv_bias=bias,
            qkv_fused=fused,
            use_rot_pos_emb=False,
            num_classes=10,
        ).eval()
    text = _same(model, (32, 32, 3))
    assert f"attn(heads={heads}, {option})" in text, text


class Tokens(nn.Module):
    """A patch embedding, then a BEiT-style attention written by hand: F.linear with a concatenated bias."""

    def __init__(self, d: int, heads: int, key_parameter: bool = False, key: float = 0.0):
        super().__init__()
        self.embed = nn.Conv2d(3, d, 4, stride=4)
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(d))
        if key_parameter:
            self.k_bias = nn.Parameter(torch.zeros(d))
        else:
            self.register_buffer("k_bias", torch.full((d,), key), persistent=False)
        self.v_bias = nn.Parameter(torch.zeros(d))
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        B, N, C = x.shape
        qkv = F.linear(x, weight=self.qkv.weight, bias=torch.cat((self.q_bias, self.k_bias, self.v_bias)))
        q, k, v = qkv.reshape(B, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(B, N, C))


@pytest.mark.parametrize("d, heads", [(32, 2), (48, 4)])
def test_concatenated_bias_imports(d, heads):
    model = Tokens(d, heads).eval()
    text = _same(model, (16, 16, 3))
    assert f"attn(heads={heads}, qv_bias)" in text, text
    assert paramsym.parse(text).evaluate()["params"] == 3 * 4 * 4 * d + d + 4 * d * d + 3 * d


@pytest.mark.parametrize("key_parameter, key", [(True, 0.0), (False, 1.0)])
def test_other_key_biases_are_refused(key_parameter, key):
    model = Tokens(32, 2, key_parameter, key).eval()
    with pytest.raises(paramsym.ParamsymError, match=r"torch\.cat\(\.\.\.\) concatenates along axis 0"):
        paramsym.from_torch(model, (16, 16, 3))
