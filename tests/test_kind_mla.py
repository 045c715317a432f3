"""`mla(heads=h, kv_rank=r, rope_dim=p, nope_dim=n, v_dim=v[, q_rank=q][, bias])`: DeepSeek-V2/V3's multi-head
latent attention. Checked against transformers' own DeepseekV2Attention and DeepseekV3Attention at several sizes
(parameters, MACs by FlopCounterMode on the meta device, output shape), the KV cache per token against the config
(kv_lora_rank + qk_rope_head_dim) and against what transformers' cache holds, the PyTorch export (counts the same,
runs, imports back), Keras (refused) and the located errors."""

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


# (family, d, heads, kv_rank, rope_dim, nope_dim, v_dim, q_rank, attention_bias, T)
CASES = [
    ("V2", 64, 4, 16, 4, 8, 12, None, False, 9),  # V2-Lite's layout: one query projection
    ("V2", 64, 4, 16, 4, 8, 12, 24, False, 5),  # V2's: a low-rank query
    ("V2", 48, 3, 8, 8, 16, 8, None, True, 7),  # with attention_bias
    ("V3", 64, 8, 32, 8, 16, 16, 48, False, 6),
    ("V3", 32, 2, 12, 2, 6, 10, 20, True, 11),  # a low-rank query with attention_bias
    ("V3", 40, 5, 10, 6, 4, 6, None, False, 3),
]


def config_of(family, d, h, r, p, n, v, q, bias):
    return getattr(transformers, f"Deepseek{family}Config")(
        hidden_size=d,
        num_attention_heads=h,
        num_key_value_heads=h,
        kv_lora_rank=r,
        qk_rope_head_dim=p,
        qk_nope_head_dim=n,
        v_head_dim=v,
        q_lora_rank=q,
        attention_bias=bias,
        vocab_size=8,
        intermediate_size=8,
        moe_intermediate_size=8,
        num_hidden_layers=1,
        first_k_dense_replace=1,  # the one layer's MLP is dense
    )


def program(d, h, r, p, n, v, q, bias, T) -> str:
    extra = (f", q_rank={q}" if q is not None else "") + (", bias" if bias else "")
    return f"input({T}x{d}) > mla(heads={h}, kv_rank={r}, rope_dim={p}, nope_dim={n}, v_dim={v}{extra})"


def attention_of(family, config, device):
    module = __import__(f"transformers.models.deepseek_{family.lower()}.modeling_deepseek_{family.lower()}")
    module = getattr(getattr(module.models, f"deepseek_{family.lower()}"), f"modeling_deepseek_{family.lower()}")
    config._attn_implementation = "sdpa"
    with torch.device(device):
        attention = getattr(module, f"Deepseek{family}Attention")(config, 0).eval()
        rotary = getattr(module, f"Deepseek{family}RotaryEmbedding")(config)
    return attention, rotary


@pytest.mark.parametrize("family, d, h, r, p, n, v, q, bias, T", CASES)
def test_counts_equal_transformers_attention(family, d, h, r, p, n, v, q, bias, T):
    config = config_of(family, d, h, r, p, n, v, q, bias)
    attention, rotary = attention_of(family, config, "meta")
    network = paramsym.parse(program(d, h, r, p, n, v, q, bias, T))
    values = network.evaluate()
    assert values["params"] == numel(attention)
    x = torch.zeros(1, T, d, device="meta")
    position = rotary(x, torch.arange(T, device="meta")[None])
    out = []
    assert values["macs"] == macs_of(
        lambda: out.append(attention(hidden_states=x, attention_mask=None, position_embeddings=position)[0])
    )
    assert tuple(out[0].shape[1:]) == tuple(int(s) for s in network.output_shape.dims()) == (T, d)
    # the architecture's cache: the latent and the rotary key of every position
    assert values["kv_cache"] == T * (config.kv_lora_rank + config.qk_rope_head_dim) == T * (r + p)


@pytest.mark.parametrize("family, d, h, r, p, n, v, q, bias, T", CASES[:2] + CASES[3:4])
def test_kv_cache_is_what_transformers_keeps(family, d, h, r, p, n, v, q, bias, T):
    """transformers 5.23 caches the latent (k_nope, after its norm) and the rotary key (k_pe) of each position,
    not the decompressed keys and values: the same r + p values that mla counts."""
    config = config_of(family, d, h, r, p, n, v, q, bias)
    model = getattr(transformers, f"Deepseek{family}ForCausalLM")(config).eval()
    with torch.no_grad():
        cache = model(torch.zeros(1, T, dtype=torch.long), use_cache=True).past_key_values
    kept = sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)
    assert kept == paramsym.parse(program(d, h, r, p, n, v, q, bias, T)).evaluate()["kv_cache"]


def test_formulas():
    network = paramsym.parse("input(T x d) > mla(heads=h, kv_rank=r, rope_dim=p, nope_dim=n, v_dim=v, q_rank=q)")
    s = network.symbols
    d, h, r, p, n, v, q, T = (s[k] for k in "dhrpnvqT")
    assert (
        network.params - (d * q + q + q * h * (n + p) + d * (r + p) + r + r * h * (n + v) + h * v * d)
    ).expand() == 0
    assert (network.kv_cache - T * (r + p)).expand() == 0


@pytest.mark.parametrize("family, d, h, r, p, n, v, q, bias, T", CASES)
def test_export_counts_the_same_runs_and_imports_back(family, d, h, r, p, n, v, q, bias, T):
    network = paramsym.parse(program(d, h, r, p, n, v, q, bias, T))
    module = paramsym.to_torch(network).eval()
    assert numel(module) == network.evaluate()["params"]
    x = torch.randn(1, d, T)  # an exported module takes its channels first
    with torch.no_grad():
        y = module(x)
    assert tuple(y.shape) == (1, d, T)
    assert macs_of(lambda: module(x)) == network.evaluate()["macs"]
    text = paramsym.from_torch(module, f"{T}x{d}")
    assert "mla(" in text, text
    assert paramsym.parse(text).evaluate() == network.evaluate()


def test_export_is_causal():
    network = paramsym.parse("input(6x32) > mla(heads=2, kv_rank=8, rope_dim=4, nope_dim=4, v_dim=8)")
    module = paramsym.to_torch(network).eval()
    x = torch.randn(1, 32, 6)
    changed = x.clone()
    changed[..., 4:] += 1.0
    with torch.no_grad():
        before, after = module(x), module(changed)
    assert torch.allclose(before[..., :4], after[..., :4], atol=1e-6)
    assert not torch.allclose(before[..., 4:], after[..., 4:], atol=1e-6)


def test_keras_export_is_refused():
    network = paramsym.parse("input(6x32) > mla(heads=2, kv_rank=8, rope_dim=4, nope_dim=4, v_dim=8)")
    with pytest.raises(ParamsymError, match=r"latent attention"):
        paramsym.to_keras(network)


@pytest.mark.parametrize(
    "text, column, message",
    [
        ("input(6x32) > mla(heads=2, kv_rank=8, rope_dim=4, nope_dim=4)", 15, "needs v_dim="),
        ("input(6x32) > mla(heads=2, kv_rank=8, rope_dim=4, nope_dim=4, v_dim=8, qrank=4)", 72, "q_rank"),
        ("input(6x32) > mla(heads=2, kv_rank=0, rope_dim=4, nope_dim=4, v_dim=8)", 28, "kv_rank must be at least 1"),
        ("input(4x4x32) > mla(heads=2, kv_rank=8, rope_dim=4, nope_dim=4, v_dim=8)", 17, "sequence"),
    ],
)
def test_errors_are_located(text, column, message):
    with pytest.raises(ParamsymError, match=message) as raised:
        paramsym.parse(text)
    assert raised.value.pos.column == column
