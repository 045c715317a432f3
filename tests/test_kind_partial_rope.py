"""`attn(..., rope=F)`: rotary positions on the first F·e channels of each head (GPT-NeoX's rotary_pct, GPT-J's
rotary_dim, Phi's partial_rotary_factor). It changes no count: checked against transformers' GPTNeoXAttention and
GPTJAttention (params, MACs by FlopCounterMode, KV cache), the exported module against GPTNeoXAttention's own
numbers (the same weights give the same output), whole Phi-3 and Llama models read by `paramsym.from_torch` (the
width turned read from the model's rotary tables), the export's import back, Keras (refused) and the located
errors."""

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


# (d, heads, rotary_pct, T, the option written)
NEOX_CASES = [
    (64, 4, 0.25, 9, "rope=0.25"),  # Pythia's rotary_pct
    (96, 4, 0.5, 5, "rope=0.5"),
    (48, 2, 0.75, 7, "rope=0.75"),
    (64, 4, 1.0, 6, "rope"),  # the whole head: rope
]


def neox_config(d, h, pct, **extra):
    return transformers.GPTNeoXConfig(
        hidden_size=d,
        num_attention_heads=h,
        intermediate_size=extra.pop("intermediate_size", 8),
        num_hidden_layers=extra.pop("num_hidden_layers", 1),
        vocab_size=extra.pop("vocab_size", 8),
        rotary_pct=pct,
        **extra,
    )


@pytest.mark.parametrize("d, h, pct, T, option", NEOX_CASES)
def test_gpt_neox_attention(d, h, pct, T, option):
    from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXAttention, GPTNeoXRotaryEmbedding

    config = neox_config(d, h, pct)
    config._attn_implementation = "sdpa"
    attention = GPTNeoXAttention(config, 0).eval()
    rotary = GPTNeoXRotaryEmbedding(config)
    values = paramsym.parse(f"input({T}x{d}) > attn(heads={h}, bias, {option}, causal)").evaluate()
    assert attention.rotary_ndims == int(d // h * pct)
    assert values["params"] == numel(attention) == 4 * d * d + 4 * d
    x = torch.zeros(1, T, d)
    cos_sin = rotary(x, torch.arange(T)[None])
    assert cos_sin[0].shape[-1] == attention.rotary_ndims  # the channels it turns
    assert values["macs"] == macs_of(lambda: attention(x, None, position_embeddings=cos_sin))
    assert values["kv_cache"] == 2 * T * d


@pytest.mark.parametrize("d, h, rotary_dim, T", [(64, 4, 8, 9), (128, 2, 64, 5), (64, 4, 16, 7)])
def test_gptj_attention(d, h, rotary_dim, T):
    from transformers.models.gptj.modeling_gptj import GPTJAttention

    config = transformers.GPTJConfig(n_embd=d, n_head=h, n_layer=1, vocab_size=8, rotary_dim=rotary_dim, n_positions=32)
    attention = GPTJAttention(config, 0).eval()
    e = d // h
    option = "rope" if rotary_dim == e else f"rope={rotary_dim / e}"
    values = paramsym.parse(f"input({T}x{d}) > attn(heads={h}, {option}, causal)").evaluate()
    assert values["params"] == numel(attention) == 4 * d * d
    x = torch.zeros(1, T, d)
    mask = torch.full((T, T), float("-inf")).triu(1)[None, None]
    assert values["macs"] == macs_of(lambda: attention(x, attention_mask=mask, position_ids=torch.arange(T)[None]))
    assert values["kv_cache"] == 2 * T * d


def test_the_export_turns_what_gpt_neox_turns():
    """paramsym's GroupedQueryAttention(rope, rotary_dim=r) with GPTNeoXAttention's weights gives its output: the
    first r channels of each head turned (rotate_half, base 10000), the others not."""
    from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXAttention, GPTNeoXRotaryEmbedding

    d, h, T = 64, 4, 10
    e = d // h
    torch.manual_seed(0)
    config = neox_config(d, h, 0.25)
    config._attn_implementation = "sdpa"
    attention = GPTNeoXAttention(config, 0).eval().double()
    ours = paramsym.to_torch(paramsym.parse(f"input({T}x{d}) > attn(heads={h}, bias, rope=0.25, causal)")).double()
    module = next(m for m in ours.modules() if type(m).__name__ == "GroupedQueryAttention")
    assert module.rotary_dim == e // 4
    weight = attention.query_key_value.weight.view(h, 3, e, d)  # per head: its query, key and value rows
    bias = attention.query_key_value.bias.view(h, 3, e)
    with torch.no_grad():
        for i, proj in enumerate((module.q, module.k, module.v)):
            proj.weight.copy_(weight[:, i].reshape(d, d))
            proj.bias.copy_(bias[:, i].reshape(d))
        module.o.weight.copy_(attention.dense.weight)
        module.o.bias.copy_(attention.dense.bias)
        x = torch.randn(1, T, d, dtype=torch.float64)
        cos, sin = GPTNeoXRotaryEmbedding(config)(x, torch.arange(T)[None])
        mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)[None, None]
        theirs = attention(x, mask, position_embeddings=(cos.double(), sin.double()))[0]
        mine = ours(x.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(mine, theirs)
    with torch.no_grad():  # and it is not the whole head's rope
        module.rotary_dim = None
        assert not torch.allclose(ours(x.transpose(1, 2)).transpose(1, 2), theirs)


@pytest.mark.parametrize(
    "text", ["input(12x64) > attn(heads=4, rope=0.25, causal)", "input(12x96) > attn(heads=4, kv_heads=2, rope=0.5)"]
)
def test_export_counts_the_same_and_imports_back(text):
    network = paramsym.parse(text)
    module = paramsym.to_torch(network)
    assert numel(module) == network.evaluate()["params"]
    back = paramsym.from_torch(module, (12, int(text.split("x")[1].split(")")[0])))
    option = text.split("rope=")[1].split(")")[0].split(",")[0]
    assert f"rope={option}" in back
    assert paramsym.parse(back).evaluate()["params"] == network.evaluate()["params"]


def test_keras_refuses_rotary_positions():
    with pytest.raises(ParamsymError, match="rotary positions"):
        paramsym.to_keras(paramsym.parse("input(12x64) > attn(heads=4, rope=0.25, causal)"))


def test_partial_rope_counts_as_rope_and_says_so():
    whole = paramsym.parse("input(T x d) > attn(heads=h, rope, causal)")
    part = paramsym.parse("input(T x d) > attn(heads=h, rope=0.25, causal)")
    for key in ("params", "macs", "kv_cache"):
        assert getattr(whole, key) == getattr(part, key)
    from paramsym.render.explain import explain

    explained = explain(paramsym.parse("input(12x64) > attn(heads=4, rope=0.25, causal)"))
    assert "rotary positions on 1/4 of each head" in explained
    assert "Rotary positions on the first 4 of the 16 channels" in explained


PHI3 = dict(
    vocab_size=100,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    pad_token_id=0,
)


@pytest.mark.parametrize("factor, option", [(0.75, "rope=0.75"), (0.5, "rope=0.5"), (1.0, "rope,")])
def test_phi3_partial_rotary_factor_is_read(factor, option):
    rope = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": factor}
    with torch.device("meta"):
        model = transformers.Phi3ForCausalLM(transformers.Phi3Config(**PHI3, rope_parameters=rope)).eval()
    text = paramsym.from_torch(model, 16)
    assert option in text, text
    values = paramsym.parse(text).evaluate()
    assert values["params"] == numel(model)
    assert values["kv_cache"] == 2 * 2 * 2 * 16 * 16


def test_a_llama_with_partial_rotary_factor_turns_whole_heads():
    """Llama's default rotary tables ignore partial_rotary_factor and its attention turns whole heads (`rope`);
    a scaled rope_type builds narrower tables, which its forward pass cannot apply: refused, naming the factor."""
    config = dict(PHI3, pad_token_id=None)
    rope = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**config, rope_parameters=rope))
    assert "rope, causal" in paramsym.from_torch(model, 16)
    rope = dict(rope, rope_type="linear", factor=2.0)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**config, rope_parameters=rope))
    with pytest.raises(ParamsymError, match=r"partial_rotary_factor=0\.5: its rotary tables have 8 channels"):
        paramsym.from_torch(model, 16)


# (program, the message, the column the error points at)
ERRORS = [
    ("input(8x64) > attn(heads=4, rope=0)", "rope=0: the fraction of each head's channels", 29),
    ("input(8x64) > attn(heads=4, rope=1.5)", "rope=1.5: the fraction of each head's channels", 29),
    ("input(8x64) > attn(heads=4, rope=0.3)", r"rope=0\.3 turns 0\.3·16 = 4\.8 channels of each head", 29),
    ("input(8x64) > attn(heads=4, rope=1/16)", r"rope=0\.0625 turns .* = 1 channels", 29),
    ("input(8x64) > attn(heads=4, rope=2x2)", "rope= takes one number", 29),
    ("input(8x64) > attn(heads=4, rope=f)", "rope= takes one number", 29),
    ("input(8x64) > attn(heads=4, rope=0.25, rope)", "'rope' and rope= are given both", 40),
    ("input(8x8x64) > attn(heads=4, volume=8x8, rope=0.5)", "'rope' does not go with pooling attention", 43),
    ("input(8x64) > attn(heads=4, channels, rope=0.5)", "'channels' attends across the channels", 39),
]


@pytest.mark.parametrize("text, message, column", ERRORS)
def test_located_errors(text, message, column):
    with pytest.raises(ParamsymError, match=message) as caught:
        paramsym.parse(text).evaluate()
    assert caught.value.pos is not None and caught.value.pos.column == column


def test_a_symbolic_head_width_is_checked_when_it_has_a_value():
    network = paramsym.parse("input(8x64) > attn(heads=h, rope=0.25)")
    assert network.evaluate(h=8)["params"] == 16_384
    with pytest.raises(ParamsymError, match="with h=16 it is 1"):
        network.evaluate(h=16)
