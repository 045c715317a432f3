"""DeepSeek-V2 and V3 read by `paramsym.from_torch` (hf_import's `_deepseek`): beyond the rows of
tests/test_hf_families.py (params, active params, KV cache), the MACs against FlopCounterMode on the whole model,
V3's router buffer as `moe(..., score_bias)` (state, against the model's buffers), the PyTorch export of
score_bias, and the variants that are refused by name; MiniCPM3 and Youtu-LLM, DeepSeek-V2's and V3's attention with a
gated MLP in every layer, against the model's params, MACs and cache."""

from __future__ import annotations

import pytest

import paramsym
from paramsym.errors import ImportRefused, ParamsymError
from test_hf_families import DEEPSEEK, MINICPM3

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

T = 12


def build(version: str, **config):
    torch.manual_seed(0)
    settings = {**DEEPSEEK, **config}
    return getattr(transformers, f"Deepseek{version}ForCausalLM")(
        getattr(transformers, f"Deepseek{version}Config")(**settings)
    ).eval()


# (version, config changes)
CASES = [
    ("V2", dict(q_lora_rank=None)),
    ("V2", dict(q_lora_rank=24, first_k_dense_replace=2)),
    ("V3", dict(q_lora_rank=24)),
    ("V3", dict(q_lora_rank=None, first_k_dense_replace=0, mlp_bias=False)),
]


@pytest.mark.parametrize("version, config", CASES)
def test_macs_equal_flop_counter(version, config):
    model = build(version, **config)
    model.config._attn_implementation = "sdpa"
    values = paramsym.parse(paramsym.from_torch(model, T)).evaluate()
    # transformers' grouped experts are not counted by FlopCounterMode: its eager loop over the experts is
    model.config._experts_implementation = "eager"
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, T, dtype=torch.long), use_cache=False)
    assert values["macs"] == counter.get_total_flops() // 2


@pytest.mark.parametrize("version, config", CASES)
def test_state_is_the_routers_score_biases(version, config):
    model = build(version, **config)
    text = paramsym.from_torch(model, T)
    values = paramsym.parse(text).evaluate()
    buffers = sum(b.numel() for n, b in model.named_buffers() if n.endswith("e_score_correction_bias"))
    assert values["state"] == buffers
    assert ("score_bias" in text) == (version == "V3") == (buffers > 0)


def test_layers_all_dense_or_all_moe():
    dense = paramsym.from_torch(build("V2", first_k_dense_replace=3), T)
    assert "moe" not in dense and "(dense_block) * K" in dense
    experts = paramsym.from_torch(build("V3", first_k_dense_replace=0), T)
    assert "dense_block" not in experts and "(moe_block) * L" in experts


def test_score_bias_export_keeps_the_buffer():
    program = "input(6x16) > moe(mul(dense(->8) > silu | dense(->8)) > dense(->16), experts=4, top=2, score_bias)"
    network = paramsym.parse(program)
    values = network.evaluate()
    assert (values["state"], values["params"]) == (4, 16 * 4 + 4 * 3 * 16 * 8)
    module = paramsym.to_torch(network)
    assert [tuple(b.shape) for n, b in module.named_buffers() if n.endswith("e_score_correction_bias")] == [(4,)]
    assert sum(p.numel() for p in module.parameters()) == values["params"]
    assert tuple(module(torch.randn(2, 16, 6)).shape) == (2, 16, 6)
    plain = paramsym.parse(program.replace(", score_bias", ""))
    assert plain.evaluate()["state"] == 0 and plain.evaluate()["params"] == values["params"]


@pytest.mark.parametrize(
    "program, column, message",
    [
        ("input(6x16) > moe(dense(->16), experts=4, top=2, score_bias, score_bias)", 62, "score_bias is given twice"),
        ("input(6x16) > moe(dense(->16), experts=4, top=2, scorebias)", 50, "the flag score_bias"),
    ],
)
def test_score_bias_errors_are_located(program, column, message):
    with pytest.raises(ParamsymError, match=message) as raised:
        paramsym.parse(program)
    assert raised.value.pos.column == column


def test_another_head_is_refused():
    model = transformers.DeepseekV2ForSequenceClassification(
        transformers.DeepseekV2Config(**DEEPSEEK, q_lora_rank=None)
    )
    with pytest.raises(ImportRefused, match="of its family paramsym reads DeepseekV2Model, DeepseekV2ForCausalLM"):
        paramsym.from_torch(model, T)


def test_an_attention_of_another_layout_is_refused():
    model = build("V2", q_lora_rank=None)
    model.model.layers[1].self_attn.kv_b_proj = torch.nn.Linear(16, 81, bias=False)
    with pytest.raises(ImportRefused, match=r"layers\.1\.self_attn: kv_b_proj is not Linear\(16, 80, no bias\)"):
        paramsym.from_torch(model, T)


def test_layers_that_differ_are_refused():
    model = build("V2", q_lora_rank=None)
    layers = model.model.layers
    layers[1].mlp, layers[0].mlp = layers[0].mlp, layers[1].mlp  # a MoE layer before a dense one
    with pytest.raises(ImportRefused, match="first_k_dense_replace"):
        paramsym.from_torch(model, T)


# ---- MiniCPM3 and Youtu-LLM: DeepSeek-V2's and V3's attention (MLA) with a gated MLP in every layer, read by
# _deepseek

MINICPM3_CASES = [
    ("MiniCPM3", dict()),
    ("MiniCPM3", dict(q_lora_rank=None, tie_word_embeddings=False, attention_bias=True)),
    ("MiniCPM3", dict(num_hidden_layers=3, mlp_bias=True, scale_emb=1, scale_depth=None, dim_model_base=None)),
    ("Youtu", dict(num_key_value_heads=4)),
    ("Youtu", dict(num_key_value_heads=4, q_lora_rank=None, tie_word_embeddings=False, attention_bias=True)),
    ("Youtu", dict(num_key_value_heads=4, num_hidden_layers=3, mlp_bias=True, rope_interleave=False)),
]


@pytest.mark.parametrize("name, config", MINICPM3_CASES)
def test_minicpm3_counts_as_the_model(name, config):
    torch.manual_seed(0)
    settings = {**MINICPM3, **config}
    model = getattr(transformers, f"{name}ForCausalLM")(getattr(transformers, f"{name}Config")(**settings)).eval()
    model.config._attn_implementation = "sdpa"
    text = paramsym.from_torch(model, T)
    assert "def dense_block = res(rmsnorm > attention) > res(rmsnorm > mlp)" in text and "moe" not in text, text
    values = paramsym.parse(text).evaluate()
    ids = torch.zeros(1, T, dtype=torch.long)
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(ids, use_cache=False)
    assert values["macs"] == counter.get_total_flops() // 2
    assert values["params"] == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        cache = model(ids, use_cache=True).past_key_values
    assert values["kv_cache"] == sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)


def test_minicpm3_attention_of_another_layout_is_refused():
    model = transformers.MiniCPM3ForCausalLM(transformers.MiniCPM3Config(**dict(MINICPM3, q_lora_rank=None)))
    model.model.layers[1].self_attn.kv_b_proj = torch.nn.Linear(16, 81, bias=False)
    with pytest.raises(ImportRefused, match=r"layers\.1\.self_attn: kv_b_proj is not Linear\(16, 80, no bias\)"):
        paramsym.from_torch(model, T)


def test_youtu_with_rotary_tables_wider_than_its_rotary_part_is_refused():
    """Youtu's rotary tables are head_dim wide; a head_dim other than qk_rope_head_dim fails transformers' own
    forward pass, and the import says so."""
    model = transformers.YoutuForCausalLM(transformers.YoutuConfig(**dict(MINICPM3, num_key_value_heads=4, head_dim=8)))
    with pytest.raises(ImportRefused, match="YoutuForCausalLM does not run on a 12 input"):
        paramsym.from_torch(model, T)
