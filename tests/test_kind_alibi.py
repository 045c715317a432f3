"""`attn(..., alibi)`: ALiBi (BLOOM, Falcon with alibi=True), a bias of −m·distance on each score with a fixed
slope m per head. No parameters, no MACs, no change to the KV cache: checked against transformers' BloomAttention
(params, MACs by FlopCounterMode, KV cache), the exported module against BloomAttention's output with the same
weights, the export's import back, Keras (refused) and the located errors."""

from __future__ import annotations

import pytest

import paramsym
from paramsym.errors import ParamsymError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


def numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


def macs_of(fn) -> int:
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def bloom_inputs(d, h, T, dtype=torch.float32):
    """BLOOM's alibi (batch·heads, 1, T) and additive causal mask (1, 1, T, T) for one sequence of T tokens."""
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    alibi = build_alibi_tensor(torch.ones(1, T), h, dtype)
    mask = torch.full((T, T), torch.finfo(dtype).min, dtype=dtype).triu(1)[None, None]
    return alibi, mask


# (d, heads, T): a power of two of heads, and not (BLOOM's extra slopes)
CASES = [(64, 4, 9), (96, 6, 5), (48, 3, 7), (128, 8, 4)]


@pytest.mark.parametrize("d, h, T", CASES)
def test_bloom_attention(d, h, T):
    from transformers.models.bloom.modeling_bloom import BloomAttention

    config = transformers.BloomConfig(hidden_size=d, n_head=h, n_layer=1, vocab_size=8)
    attention = BloomAttention(config, 0).eval()
    values = paramsym.parse(f"input({T}x{d}) > attn(heads={h}, bias, alibi, causal)").evaluate()
    assert values["params"] == numel(attention) == 4 * d * d + 4 * d
    x = torch.zeros(1, T, d)
    alibi, mask = bloom_inputs(d, h, T)
    assert values["macs"] == macs_of(lambda: attention(x, torch.zeros_like(x), alibi, mask))
    assert values["kv_cache"] == 2 * T * d


@pytest.mark.parametrize("d, h, T", CASES)
def test_the_export_computes_what_bloom_computes(d, h, T):
    """paramsym's GroupedQueryAttention(alibi) with BloomAttention's weights gives its output (BLOOM adds slope·j
    for key j, the export −slope·(i − j): the same softmax, row by row)."""
    from transformers.models.bloom.modeling_bloom import BloomAttention

    torch.manual_seed(0)
    e = d // h
    config = transformers.BloomConfig(hidden_size=d, n_head=h, n_layer=1, vocab_size=8)
    attention = BloomAttention(config, 0).eval().double()
    ours = paramsym.to_torch(paramsym.parse(f"input({T}x{d}) > attn(heads={h}, bias, alibi, causal)")).double()
    module = next(m for m in ours.modules() if type(m).__name__ == "GroupedQueryAttention")
    weight = attention.query_key_value.weight.view(h, 3, e, d)
    bias = attention.query_key_value.bias.view(h, 3, e)
    with torch.no_grad():
        for i, proj in enumerate((module.q, module.k, module.v)):
            proj.weight.copy_(weight[:, i].reshape(d, d))
            proj.bias.copy_(bias[:, i].reshape(d))
        module.o.weight.copy_(attention.dense.weight)
        module.o.bias.copy_(attention.dense.bias)
        x = torch.randn(1, T, d, dtype=torch.float64)
        alibi, mask = bloom_inputs(d, h, T, torch.float64)
        theirs = attention(x, torch.zeros_like(x), alibi, mask)[0]
        mine = ours(x.transpose(1, 2)).transpose(1, 2)
        torch.testing.assert_close(mine, theirs)
        module.alibi = False  # and without the biases it is another attention
        assert not torch.allclose(ours(x.transpose(1, 2)).transpose(1, 2), theirs)


@pytest.mark.parametrize(
    "text",
    [
        "input(12x64) > attn(heads=4, bias, alibi, causal)",
        "input(12x64) > attn(heads=4, kv_heads=1, alibi, causal)",  # Falcon-7B's multi-query with alibi=True
        "input(12x64) > attn(heads=4, alibi)",  # bidirectional: −m·|i − j|
        "input(12x64) > attn(heads=4, alibi, window=4, causal)",
    ],
)
def test_export_counts_the_same_and_imports_back(text):
    network = paramsym.parse(text)
    module = paramsym.to_torch(network)
    assert numel(module) == network.evaluate()["params"]
    y = module(torch.randn(2, 64, 12))
    assert y.shape == (2, 64, 12) and torch.isfinite(y).all()
    back = paramsym.from_torch(module, (12, 64))
    assert "alibi" in back
    assert paramsym.parse(back).evaluate() == network.evaluate()


def test_alibi_changes_no_count():
    plain = paramsym.parse("input(T x d) > attn(heads=h, kv_heads=g, causal)")
    alibi = paramsym.parse("input(T x d) > attn(heads=h, kv_heads=g, alibi, causal)")
    for key in ("params", "macs", "kv_cache"):
        assert getattr(plain, key) == getattr(alibi, key)
    from paramsym.render.explain import explain

    assert "causal, ALiBi" in explain(paramsym.parse("input(12x64) > attn(heads=4, alibi, causal)"))


def test_keras_refuses_alibi():
    with pytest.raises(ParamsymError, match="ALiBi"):
        paramsym.to_keras(paramsym.parse("input(12x64) > attn(heads=4, alibi, causal)"))


# (program, the message, the column the error points at)
ERRORS = [
    ("input(8x8x64) > attn(heads=4, alibi)", "its input is a map, not a sequence", 31),
    ("input(8x64) > attn(heads=4, alibi, rope)", "'alibi' and rope are two ways", 36),
    ("input(8x64) > attn(heads=4, rope=0.5, alibi)", "'alibi' and rope are two ways", 29),
    ("input(8x64) > attn(heads=4, alibi, source=7x32)", "it does not go with source=", 36),
    ("input(8x64) > attn(heads=4, alibi, channels)", "it does not go with 'channels'", 36),
    ("input(16x64) > attn(heads=4, alibi, gpsa)", "it does not go with 'gpsa'", 37),
    ("input(8x64) > attn(heads=4, alibi=2)", "'alibi' is a flag of attn", 29),
]


@pytest.mark.parametrize("text, message, column", ERRORS)
def test_located_errors(text, message, column):
    with pytest.raises(ParamsymError, match=message) as caught:
        paramsym.parse(text).evaluate()
    assert caught.value.pos is not None and caught.value.pos.column == column
