"""GPT-NeoX, GPT-J, Falcon and BLOOM read by `paramsym.from_torch` (hf_import's `_decoder`): the block each forward
pass computes (parallel attention and MLP from one norm or two, or one after the other; BLOOM's residuals from the
norms' outputs), partial rotary positions (`rope=F`) and ALiBi (`alibi`). Small models: MACs against
FlopCounterMode (params and the KV cache are tests/test_hf_families.py's); the full-size Pythia-1.4B and Falcon-7B
on the meta device; every variant transformers builds that does not run, refused by name."""

from __future__ import annotations

import pytest

import paramsym
from paramsym.errors import ParamsymError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

T = 10
NEOX = dict(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96)
FALCON = dict(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4)
GPTJ = dict(vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=32)
BLOOM = dict(vocab_size=100, hidden_size=64, n_layer=2, n_head=4)


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def build(family: str, config: dict, device: str = "cpu"):
    with torch.device(device):
        model = getattr(transformers, f"{family}ForCausalLM")(getattr(transformers, f"{family}Config")(**config))
    return model.eval()


# (family, config, what the program says: its block and attention)
CASES = [
    ("GPTNeoX", NEOX, ["add(id | ln > attn(heads=h, bias, rope=0.25, causal) | ln"]),
    ("GPTNeoX", dict(NEOX, use_parallel_residual=False), ["res(ln > attn(heads=h, bias, rope=0.25, causal))"]),
    ("GPTNeoX", dict(NEOX, rotary_pct=1.0, attention_bias=False), ["attn(heads=h, rope, causal)"]),
    ("GPTJ", dict(GPTJ, rotary_dim=4), ["res(ln", "> add(attn(heads=h, rope=0.25, causal) | dense(->F, bias)"]),
    ("GPTJ", dict(GPTJ, rotary_dim=16, tie_word_embeddings=True), ["dense(->V, tie=wte, bias)"]),
    ("Falcon", FALCON, ["res(ln", "> add(attn(heads=h, kv_heads=g, rope, causal) | dense(->F)"]),
    ("Falcon", dict(FALCON, new_decoder_architecture=True, num_kv_heads=2), ["add(id | ln > attn(heads=h, kv_heads=g"]),
    (
        "Falcon",
        dict(FALCON, new_decoder_architecture=True, num_kv_heads=2, num_ln_in_parallel_attn=1),
        ["res(ln", "> add(attn(heads=h, kv_heads=g, rope, causal)"],
    ),
    ("Falcon", dict(FALCON, alibi=True, bias=True), ["attn(heads=h, kv_heads=g, bias, alibi, causal)"]),
    (
        "Falcon",
        dict(FALCON, multi_query=False, parallel_attn=False),
        ["res(ln > attn(heads=h, rope, causal)) > res(ln > dense(->F) > gelu > dense(->d))"],
    ),
    ("Bloom", BLOOM, ["res(ln > attn(heads=h, bias, alibi, causal))", "embed(V->d) as wte > ln >"]),
    ("Bloom", dict(BLOOM, apply_residual_connection_post_layernorm=True), ["ln > res(attn(heads=h, bias, alibi"]),
]


@pytest.mark.parametrize("family, config, says", CASES)
def test_small_models_import_exactly_with_their_macs(family, config, says):
    torch.manual_seed(0)
    model = build(family, config)
    text = paramsym.from_torch(model, T)
    flat = " ".join(text.split())  # the lines _fit broke, joined again
    for part in says:
        assert " ".join(part.split()) in flat, text
    values = paramsym.parse(text).evaluate()
    assert values["params"] == numel(model)
    ids = torch.zeros(1, T, dtype=torch.long)
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(ids, use_cache=False)
    assert values["macs"] == counter.get_total_flops() // 2


@pytest.mark.parametrize("family", ["GPTNeoX", "GPTJ", "Falcon", "Bloom"])
def test_the_base_models_are_read_without_a_head(family):
    config = {"GPTNeoX": NEOX, "GPTJ": dict(GPTJ, rotary_dim=8), "Falcon": FALCON, "Bloom": BLOOM}[family]
    with torch.device("meta"):
        model = getattr(transformers, f"{family}Model")(getattr(transformers, f"{family}Config")(**config))
    text = paramsym.from_torch(model, T)
    assert text.rstrip().endswith("(block) * L > ln"), text
    assert paramsym.parse(text).evaluate()["params"] == numel(model)


def test_pythia_1_4b():
    model = build(
        "GPTNeoX",
        dict(
            hidden_size=2048,
            num_hidden_layers=24,
            num_attention_heads=16,
            intermediate_size=8192,
            vocab_size=50304,
            rotary_pct=0.25,
            max_position_embeddings=2048,
        ),
        "meta",
    )
    values = paramsym.parse(paramsym.from_torch(model, 2048)).evaluate()
    assert values["params"] == numel(model) == 1_414_647_808
    assert values["kv_cache"] == 2 * 24 * 2048 * 2048


def test_falcon_7b():
    """FalconConfig's defaults are Falcon-7B's: 71 heads of 64, one key/value head (multi_query), parallel
    attention and MLP from one LayerNorm, no biases, rotary positions, the head tied to the embedding."""
    model = build("Falcon", {}, "meta")
    text = paramsym.from_torch(model, 2048)
    assert "kv_heads=g" in text and "let g = 1" in text
    values = paramsym.parse(text).evaluate()
    assert values["params"] == numel(model) == 6_921_720_704
    assert values["kv_cache"] == 2 * 32 * 64 * 2048


# (family, config, the class, the message): every variant that transformers builds and cannot run, or that the
# layout does not read, refused by name
REFUSED = [
    (
        "Falcon",
        dict(FALCON, new_decoder_architecture=True, num_kv_heads=2, parallel_attn=False),
        "ForCausalLM",
        "new_decoder_architecture, parallel_attn=False .* reads layer norms that it does not build",
    ),
    (
        "Falcon",
        dict(FALCON, new_decoder_architecture=True, num_kv_heads=2, num_ln_in_parallel_attn=3),
        "ForCausalLM",
        "num_ln_in_parallel_attn=3",
    ),
    (
        "Falcon",
        dict(FALCON, parallel_attn=True, num_ln_in_parallel_attn=2),
        "ForCausalLM",
        "builds ln_attn and ln_mlp but its forward pass reads input_layernorm",
    ),
    ("Falcon", dict(FALCON, multi_query=False, num_kv_heads=2), "ForCausalLM", "multi_query=False and num_kv_heads=2"),
    ("GPTJ", dict(GPTJ, rotary_dim=5), "ForCausalLM", "rotary_dim=5"),
    ("GPTJ", dict(GPTJ, rotary_dim=32), "ForCausalLM", "rotary_dim=32"),
    ("GPTNeoX", NEOX, "ForSequenceClassification", "of its family paramsym reads GPTNeoXModel, GPTNeoXForCausalLM"),
    ("Bloom", BLOOM, "ForTokenClassification", "of its family paramsym reads BloomModel, BloomForCausalLM"),
]


@pytest.mark.parametrize("family, config, head, message", REFUSED)
def test_refused_variants(family, config, head, message):
    with torch.device("meta"):
        model = getattr(transformers, f"{family}{head}")(getattr(transformers, f"{family}Config")(**config))
    with pytest.raises(ParamsymError, match=message):
        paramsym.from_torch(model, T)


def test_gptj_takes_no_more_positions_than_its_table():
    model = build("GPTJ", dict(GPTJ, rotary_dim=8), "meta")
    with pytest.raises(ParamsymError, match=r"keeps a table of sines and cosines for each of 32 positions"):
        paramsym.from_torch(model, 33)
