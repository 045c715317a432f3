"""`attn(..., qkv_bias)`: biases on the query, key and value projections and none on the output (Qwen2, Qwen2.5,
Qwen1.5-MoE), `q + 2·kv` biases. Checked against transformers' own modules built from small configs: Qwen2Attention
(params, MACs by FlopCounterMode, KV cache), whole Qwen2ForCausalLM and Phi3ForCausalLM imported by
`paramsym.from_torch` (params against parameters(), KV cache against what the config implies, MACs against
FlopCounterMode), the PyTorch export (counts the same, imports back), Keras (refused), and the located errors."""

from __future__ import annotations

import pytest

import paramsym
from paramsym.errors import ParamsymError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def macs_of(fn) -> int:
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def qwen2_config(d, h, g, e, **extra):
    return transformers.Qwen2Config(
        hidden_size=d,
        num_attention_heads=h,
        num_key_value_heads=g,
        head_dim=e,
        intermediate_size=extra.pop("intermediate_size", 8),
        num_hidden_layers=extra.pop("num_hidden_layers", 1),
        vocab_size=extra.pop("vocab_size", 8),
        **extra,
    )


# (d, heads, kv_heads, head_dim, T)
ATTENTION_CASES = [
    (64, 8, 2, 8, 9),  # grouped-query attention
    (48, 4, 4, 12, 5),  # one key/value head per query head
    (32, 4, 1, 8, 7),  # multi-query attention
    (30, 6, 3, 6, 4),  # head_dim·heads != d
]


@pytest.mark.parametrize("d, h, g, e, T", ATTENTION_CASES)
def test_qwen2_attention(d, h, g, e, T):
    from transformers.models.qwen2.modeling_qwen2 import Qwen2Attention, Qwen2RotaryEmbedding

    config = qwen2_config(d, h, g, e)
    config._attn_implementation = "sdpa"
    attention = Qwen2Attention(config, 0).eval()
    rotary = Qwen2RotaryEmbedding(config)
    head_dim = f", head_dim={e}" if e * h != d else ""
    kv = f", kv_heads={g}" if g != h else ""
    values = paramsym.parse(f"input({T}x{d}) > attn(heads={h}{kv}{head_dim}, qkv_bias, rope, causal)").evaluate()
    assert values["params"] == numel(attention) == d * h * e + 2 * d * g * e + h * e * d + h * e + 2 * g * e
    assert attention.o_proj.bias is None and attention.k_proj.bias is not None
    x = torch.zeros(1, T, d)
    cos_sin = rotary(x, torch.arange(T)[None])
    assert values["macs"] == macs_of(lambda: attention(x, cos_sin, None))
    assert values["kv_cache"] == 2 * T * g * e


def test_qkv_bias_is_bias_without_the_output_bias():
    with_all = paramsym.parse("input(T x d) > attn(heads=h, kv_heads=g, bias)").params
    qkv = paramsym.parse("input(T x d) > attn(heads=h, kv_heads=g, qkv_bias)").params
    d = paramsym.parse("input(T x d) > attn(heads=h, kv_heads=g, bias)").symbols["d"]
    assert (with_all - qkv).simplify() == d


# (config of a small Qwen2 or Phi-3, the class, T, the attention option written)
SMALL = dict(
    vocab_size=100,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=8,
    num_key_value_heads=2,
    max_position_embeddings=64,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)
MODEL_CASES = [
    ("Qwen2", dict(SMALL), 32, "qkv_bias"),
    ("Qwen2", dict(SMALL, tie_word_embeddings=True), 16, "qkv_bias"),
    ("Qwen2", dict(SMALL, num_key_value_heads=8, head_dim=16), 12, "qkv_bias"),
    ("Qwen2", dict(SMALL, num_key_value_heads=1, num_hidden_layers=3), 20, "qkv_bias"),
    ("Phi3", dict(SMALL), 32, None),
    ("Phi3", dict(SMALL, num_key_value_heads=4, tie_word_embeddings=True), 24, None),
]


def build(family: str, config: dict, device: str = "meta"):
    config_cls = getattr(transformers, f"{family}Config")
    model_cls = getattr(transformers, f"{family}ForCausalLM")
    with torch.device(device):
        return model_cls(config_cls(**config)).eval()


@pytest.mark.parametrize("family, config, T, option", MODEL_CASES)
def test_small_models_import_exactly(family, config, T, option):
    model = build(family, config)
    text = paramsym.from_torch(model, T)
    assert f"{family}ForCausalLM read by paramsym" in text
    assert ("qkv_bias" in text) == (option is not None), text
    values = paramsym.parse(text).evaluate()
    c = model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    assert values["params"] == numel(model)
    assert values["kv_cache"] == 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim * T


@pytest.mark.parametrize("family, config, T, option", MODEL_CASES[:1] + MODEL_CASES[4:5])
def test_small_models_macs_equal_flop_counter(family, config, T, option):
    model = build(family, config, device="cpu")
    model.config._attn_implementation = "sdpa"
    values = paramsym.parse(paramsym.from_torch(model, T)).evaluate()
    ids = torch.zeros(1, T, dtype=torch.long)
    assert values["macs"] == macs_of(lambda: model(ids, use_cache=False))


def test_qwen2_with_a_bias_on_some_projections_only_is_refused():
    model = build("Qwen2", SMALL)
    model.model.layers[0].self_attn.k_proj.bias = None
    with pytest.raises(ParamsymError, match=r"model\.layers\.0\.self_attn: biases on some of the query, key"):
        paramsym.from_torch(model, 16)


def test_qwen2_5_7b_example():
    from pathlib import Path

    from helpers.lm_configs import QWEN2_5_7B

    text = (Path(__file__).resolve().parents[1] / "examples" / "qwen2_5_7b.psym").read_text()
    values = paramsym.parse(text).evaluate()
    with torch.device("meta"):
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**QWEN2_5_7B))
    assert values["params"] == numel(model) == 7_615_616_512
    assert values["kv_cache"] == 28 * 2 * 32768 * 4 * 128
    # the program the import writes counts the same (at a shorter T: the counts of params do not depend on it)
    assert paramsym.parse(paramsym.from_torch(model, 128)).evaluate()["params"] == values["params"]


@pytest.mark.parametrize(
    "program",
    [
        "input(9x64) > attn(heads=8, kv_heads=2, qkv_bias, rope, causal)",
        "input(5x48) > attn(heads=4, head_dim=16, qkv_bias)",
    ],
)
def test_export_counts_the_same_and_imports_back(program):
    from paramsym.frameworks.torch_modules import GroupedQueryAttention

    network = paramsym.parse(program)
    module = paramsym.to_torch(network)
    (attention,) = [m for m in module.modules() if isinstance(m, GroupedQueryAttention)]
    assert attention.o.bias is None and attention.q.bias is not None and attention.k.bias is not None
    assert numel(module) == network.evaluate()["params"]
    T, d = (int(v) for v in network.layers[0].layer.in_shape.dims())
    text = paramsym.from_torch(module, f"{T}x{d}")
    assert "qkv_bias" in text, text
    assert paramsym.parse(text).evaluate() == network.evaluate()


def test_keras_export_is_refused():
    network = paramsym.parse("input(9x64) > attn(heads=8, qkv_bias)")
    with pytest.raises(ParamsymError, match=r"qkv_bias"):
        paramsym.to_keras(network)


@pytest.mark.parametrize(
    "program, column, message",
    [
        ("input(9x64) > attn(heads=8, qkv_bias, bias)", 39, "'qkv_bias'"),
        ("input(9x64) > attn(heads=8, nobias, qkv_bias)", 29, "'nobias'"),
        ("input(9x64) > attn(heads=8, qkv_bias, qv_bias)", 39, "'qv_bias'"),
        ("input(9x64) > attn(heads=8, projbias, qkv_bias)", 29, "'projbias'"),
        ("input(4x4x64) > attn(heads=8, qkv_bias, window=2)", 31, "takes no window"),
    ],
)
def test_errors_are_located(program, column, message):
    with pytest.raises(ParamsymError, match=message) as raised:
        paramsym.parse(program)
    assert raised.value.pos.column == column
