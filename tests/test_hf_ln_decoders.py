"""Phi, StableLM, GPT-BigCode (StarCoder 1, SantaCoder), GPT-Neo, CodeGen, MPT, Persimmon, XGLM and BioGPT read by
`paramsym.from_torch` (hf_import: `_phi`, `_stablelm`, `_gpt2`, `_gpt_neo`, `_gptj`, `_mpt`, `_persimmon`, `_xglm`,
`_biogpt`): every variant of a config that changes the program, built by transformers from a small config on the CPU,
its params against parameters(), its MACs against FlopCounterMode and its KV cache against transformers' own cache
after a forward; the full-size Phi-2, MPT-7B and GPT-Neo-125M on the meta device; what transformers builds that does
not run, or that is not the model its config describes, refused by name (tests/test_hf_families.py has a row of
each family)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import paramsym
from paramsym.errors import ParamsymError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from paramsym.frameworks.hf_import import cache_is_the_architectures  # noqa: E402
from paramsym.kinds.attention import fraction_text  # noqa: E402

T = 12
SMALL = dict(vocab_size=100, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4)
GPT = dict(vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=64)
NEO = dict(
    vocab_size=100,
    hidden_size=64,
    num_layers=2,
    num_heads=4,
    max_position_embeddings=64,
    attention_types=[[["global"], 2]],
)
MPT = dict(vocab_size=100, d_model=64, n_layers=2, n_heads=4, max_seq_len=64)
XGLM = dict(vocab_size=100, d_model=64, ffn_dim=96, num_layers=2, attention_heads=4, max_position_embeddings=64)


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def build(model_class: str, config_class: str, config: dict, device: str = "cpu"):
    torch.manual_seed(0)
    with torch.device(device):
        model = getattr(transformers, model_class)(getattr(transformers, config_class)(**config)).eval()
    if model_class.startswith(("Phi", "StableLm", "GPTBigCode", "Persimmon", "XGLM", "BioGpt")):
        model.config._attn_implementation = "sdpa"  # MPT, GPT-Neo and CodeGen compute their attention themselves
    return model


def macs_of(model) -> int:
    ids = torch.zeros(1, T, dtype=torch.long)
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(ids, use_cache=False)
    return counter.get_total_flops() // 2


def cache_of(model) -> int:
    with torch.no_grad():
        cache = model(torch.zeros(1, T, dtype=torch.long), use_cache=True).past_key_values
    return sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)


# (the class, the config's class, config, what the program says)
CASES = [
    # Phi: one LayerNorm before the attention and the MLP side by side, biases everywhere, rope on half of each head
    (
        "PhiForCausalLM",
        "PhiConfig",
        SMALL,
        ["res(ln > add(attn(heads=h, bias, rope=0.5, causal) |", "dense(->V, bias)"],
    ),
    (
        "PhiForCausalLM",
        "PhiConfig",
        dict(SMALL, num_key_value_heads=2, qk_layernorm=True, tie_word_embeddings=True, partial_rotary_factor=1.0),
        ["attn(heads=h, kv_heads=g, bias, qk_norm=ln, rope, causal)", "dense(->V, tie=wte, bias)"],
    ),
    # int(16·0.3) = 4 of the 16 channels turn
    ("PhiForCausalLM", "PhiConfig", dict(SMALL, partial_rotary_factor=0.3), ["rope=0.25"]),
    ("PhiForCausalLM", "PhiConfig", dict(SMALL, head_dim=8), ["attn(heads=h, head_dim=8, bias, rope=0.5, causal)"]),
    ("PhiModel", "PhiConfig", dict(SMALL, hidden_act="gelu"), ["> (block) * L > ln\n"]),
    # StableLM: a gated MLP without biases between LayerNorms with biases, sequential by default
    (
        "StableLmForCausalLM",
        "StableLmConfig",
        dict(SMALL, num_key_value_heads=2),
        ["res(ln > attn(heads=h, kv_heads=g, rope=0.25, causal)) > res(ln > mul(dense(->F) > silu | dense(->F))"],
    ),
    (
        "StableLmForCausalLM",
        "StableLmConfig",
        dict(SMALL, num_key_value_heads=4, use_qkv_bias=True, qk_layernorm=True, use_parallel_residual=True),
        ["res(ln > add(attn(heads=h, qkv_bias, qk_norm=ln_per_head, rope=0.25, causal) | mul("],
    ),
    (
        "StableLmForCausalLM",
        "StableLmConfig",
        dict(SMALL, num_key_value_heads=1, qk_layernorm=True, partial_rotary_factor=1.0, tie_word_embeddings=True),
        ["attn(heads=h, kv_heads=g, qk_norm=ln_per_head, rope, causal)", "dense(->V, tie=wte)"],
    ),
    ("StableLmModel", "StableLmConfig", dict(SMALL, num_key_value_heads=4), ["> (block) * L > ln\n"]),
    # GPT-BigCode: GPT-2's layout with one key/value head (multi_query, the default) or one per query head
    ("GPTBigCodeForCausalLM", "GPTBigCodeConfig", GPT, ["attn(heads=h, kv_heads=1, bias, causal)", "tie=wte"]),
    (
        "GPTBigCodeForCausalLM",
        "GPTBigCodeConfig",
        dict(GPT, multi_query=False, tie_word_embeddings=False, n_inner=96, activation_function="relu"),
        ["attn(heads=h, bias, causal)", "dense(->96, bias) > relu", "> dense(->V)"],
    ),
    ("GPTBigCodeModel", "GPTBigCodeConfig", GPT, ["kv_heads=1"]),
    # GPT-Neo: q, k and v without biases (projbias), local layers window=W
    (
        "GPTNeoForCausalLM",
        "GPTNeoConfig",
        dict(NEO, attention_types=[[["global", "local"], 1]], window_size=5),
        ["attn(heads=h, projbias, window=W, causal)", "global_block > local_block"],
    ),
    (
        "GPTNeoForCausalLM",
        "GPTNeoConfig",
        dict(NEO, num_layers=4, attention_types=[[["local", "global"], 2]], window_size=16, intermediate_size=96),
        ["(local_block > global_block) * 2", "dense(->96, bias)"],
    ),
    (
        "GPTNeoForCausalLM",
        "GPTNeoConfig",
        dict(NEO, tie_word_embeddings=False, activation_function="relu"),
        ["(global_block) * L > ln > dense(->V)\n", "relu"],
    ),
    ("GPTNeoModel", "GPTNeoConfig", dict(NEO, attention_types=[[["global"], 2]]), ["(global_block) * L > ln\n"]),
    # CodeGen: GPT-J's layout
    ("CodeGenForCausalLM", "CodeGenConfig", dict(GPT, rotary_dim=8), ["add(attn(heads=h, rope=0.5, causal) |"]),
    (
        "CodeGenForCausalLM",
        "CodeGenConfig",
        dict(GPT, n_head=8, rotary_dim=8, tie_word_embeddings=True),
        ["attn(heads=h, rope, causal)", "dense(->V, tie=wte, bias)"],
    ),
    ("CodeGenModel", "CodeGenConfig", dict(GPT, rotary_dim=4), ["rope=0.25"]),
    # MPT: ALiBi, no biases anywhere
    ("MptForCausalLM", "MptConfig", MPT, ["res(ln(nobias) > attn(heads=h, alibi, causal))", "tie=wte"]),
    (
        "MptForCausalLM",
        "MptConfig",
        dict(MPT, attn_config=dict(clip_qkv=6.0, softmax_scale=0.5), tie_word_embeddings=False),
        ["clip_qkv", "> dense(->V)"],
    ),
    ("MptModel", "MptConfig", MPT, ["(block) * L > ln(nobias)\n"]),
    # Persimmon: the squared ReLU, qk_layernorm, rope on half of each head, sequential
    (
        "PersimmonForCausalLM",
        "PersimmonConfig",
        SMALL,
        ["attn(heads=h, bias, qk_norm=ln, rope=0.5, causal)", "squaredrelu"],
    ),
    (
        "PersimmonForCausalLM",
        "PersimmonConfig",
        dict(SMALL, qk_layernorm=False, hidden_act="gelu", tie_word_embeddings=True, partial_rotary_factor=0.25),
        ["attn(heads=h, bias, rope=0.25, causal)", "dense(->V, tie=wte)"],
    ),
    # XGLM: sinusoidal positions (no parameters) that grow with the sequence: T beyond max_position_embeddings
    ("XGLMForCausalLM", "XGLMConfig", XGLM, ["res(ln > attn(heads=h, bias, causal))", "tie=wte"]),
    (
        "XGLMForCausalLM",
        "XGLMConfig",
        dict(XGLM, max_position_embeddings=8, tie_word_embeddings=False),
        ["> dense(->V)"],
    ),
    # BioGPT: OPT's positions (offset 2), pre-norm, its head output_projection
    ("BioGptForCausalLM", "BioGptConfig", dict(SMALL, max_position_embeddings=64), ["posembed(n + 2)", "tie=wte"]),
    (
        "BioGptForCausalLM",
        "BioGptConfig",
        dict(SMALL, max_position_embeddings=64, tie_word_embeddings=False, hidden_act="relu"),
        ["relu", "> dense(->V)"],
    ),
    ("BioGptModel", "BioGptConfig", dict(SMALL, max_position_embeddings=64), ["(block) * L > ln\n"]),
]


@pytest.mark.parametrize("model_class, config_class, config, says", CASES)
def test_small_models_import_exactly(model_class, config_class, config, says):
    model = build(model_class, config_class, config)
    text = paramsym.from_torch(model, T)
    flat = " ".join(text.split()) + "\n"  # the lines _fit broke, joined again
    assert f"{model_class} read by paramsym" in text, text
    for part in says:
        assert " ".join(part.split()) + ("\n" if part.endswith("\n") else "") in flat, text
    values = paramsym.parse(text).evaluate()
    assert values["params"] == numel(model)
    assert values["macs"] == macs_of(model)
    if cache_is_the_architectures(model):
        assert values["kv_cache"] == cache_of(model)


def test_gpt_neo_local_layers_are_a_window():
    """A local layer's mask (GPTNeoSelfAttention.bias) lets position i see itself and the window_size - 1 positions
    before it, as `window=W` does; transformers caches every position, the architecture needs the last W - 1."""
    W = 5
    model = build(
        "GPTNeoForCausalLM", "GPTNeoConfig", dict(NEO, attention_types=[[["global", "local"], 1]], window_size=W)
    )
    local = model.transformer.h[1].attn.attention.bias[0, 0, :T, :T]
    assert [int(row.sum()) for row in local] == [min(i + 1, W) for i in range(T)]
    assert [int(j) for j in local[T - 1].nonzero()] == list(range(T - W, T))
    values = paramsym.parse(paramsym.from_torch(model, T)).evaluate()
    d = model.config.hidden_size
    assert values["kv_cache"] == 2 * d * T + 2 * d * (W - 1)
    assert cache_of(model) == 2 * 2 * d * T  # transformers keeps every position of both layers
    assert not cache_is_the_architectures(model)
    assert cache_is_the_architectures(
        build("GPTNeoModel", "GPTNeoConfig", dict(NEO, attention_types=[[["global"], 2]]))
    )


# (the class, the config's class, config, full-size on meta, T)
FULL_SIZE = [
    # Phi-2 (microsoft/phi-2's config)
    (
        "PhiForCausalLM",
        "PhiConfig",
        dict(
            vocab_size=51200,
            hidden_size=2560,
            intermediate_size=10240,
            num_hidden_layers=32,
            num_attention_heads=32,
            partial_rotary_factor=0.4,
            max_position_embeddings=2048,
        ),
        2048,
    ),
    # MPT-7B (mosaicml/mpt-7b's config)
    ("MptForCausalLM", "MptConfig", dict(vocab_size=50432, d_model=4096, n_layers=32, n_heads=32), 2048),
    # GPT-Neo-125M (EleutherAI/gpt-neo-125M's config): global and local layers, a window of 256
    (
        "GPTNeoForCausalLM",
        "GPTNeoConfig",
        dict(
            vocab_size=50257,
            hidden_size=768,
            num_layers=12,
            num_heads=12,
            max_position_embeddings=2048,
            attention_types=[[["global", "local"], 6]],
            window_size=256,
        ),
        2048,
    ),
]


@pytest.mark.parametrize("model_class, config_class, config, length", FULL_SIZE)
def test_full_size_models_on_meta(model_class, config_class, config, length):
    model = build(model_class, config_class, config, device="meta")
    values = paramsym.parse(paramsym.from_torch(model, length)).evaluate()
    assert values["params"] == numel(model)


def test_the_longest_sequence_is_the_models():
    """GPT-BigCode, GPT-Neo and BioGPT look positions up in a table, MPT its ALiBi biases: a longer sequence fails in
    transformers too. XGLM's sinusoids grow: any length."""
    for model_class, config_class, config, limit, field in [
        ("GPTBigCodeForCausalLM", "GPTBigCodeConfig", dict(GPT, n_positions=16), 16, "n_positions"),
        ("GPTNeoForCausalLM", "GPTNeoConfig", dict(NEO, max_position_embeddings=16), 16, "max_position_embeddings"),
        ("BioGptForCausalLM", "BioGptConfig", dict(SMALL, max_position_embeddings=16), 16, "max_position_embeddings"),
        ("MptForCausalLM", "MptConfig", dict(MPT, max_seq_len=16), 16, "max_seq_len"),
    ]:
        model = build(model_class, config_class, config)
        assert paramsym.parse(paramsym.from_torch(model, limit)).evaluate()["params"] == numel(model)
        with pytest.raises(ParamsymError, match=rf"each of {limit} positions \({field}={limit}\)"):
            paramsym.from_torch(model, limit + 1)
        with pytest.raises(Exception), torch.no_grad():  # noqa: B017 - each fails its own way (an index, a shape)
            model(torch.zeros(1, limit + 1, dtype=torch.long))
    model = build("XGLMForCausalLM", "XGLMConfig", dict(XGLM, max_position_embeddings=8))
    assert paramsym.parse(paramsym.from_torch(model, 40)).evaluate()["params"] == numel(model)


# (the class, the config's class, config, what the refusal says)
REFUSED = [
    # int(16·0.3125) = 5 channels turn, the rotary tables have 6: the forward pass fails
    ("PhiForCausalLM", "PhiConfig", dict(SMALL, partial_rotary_factor=0.3125), "turns 5 of the 16 channels"),
    ("StableLmForCausalLM", "StableLmConfig", dict(SMALL, partial_rotary_factor=0.3125), "rotary tables of 6"),
    ("PersimmonForCausalLM", "PersimmonConfig", dict(SMALL, partial_rotary_factor=0.3125), "rotary tables of 6"),
    ("CodeGenForCausalLM", "CodeGenConfig", dict(GPT, n_embd=48, n_head=6, rotary_dim=4), "mp_num=4 groups"),
    ("GPTBigCodeForCausalLM", "GPTBigCodeConfig", dict(GPT, add_cross_attention=True, multi_query=False), "cross"),
    ("XGLMForCausalLM", "XGLMConfig", dict(XGLM, add_cross_attention=True), "add_cross_attention=True"),
    # MPT's fields that transformers' MptModel does not read: the model it builds is not the config's
    ("MptForCausalLM", "MptConfig", dict(MPT, attn_config=dict(alibi=False)), r"attn_config.alibi=False.*ALiBi"),
    ("MptForCausalLM", "MptConfig", dict(MPT, no_bias=False), "no_bias=False"),
    ("MptForCausalLM", "MptConfig", dict(MPT, expansion_ratio=2), r"expansion_ratio=2.*4·d"),
    ("MptForCausalLM", "MptConfig", dict(MPT, attn_config=dict(qk_ln=True)), "qk_ln=True"),
    ("MptForCausalLM", "MptConfig", dict(MPT, attn_config=dict(attn_type="multiquery_attention")), "multiquery"),
    ("MptForCausalLM", "MptConfig", dict(MPT, attn_config=dict(prefix_lm=True)), "prefix_lm=True"),
    ("PhiForCausalLM", "PhiConfig", dict(SMALL, hidden_act="quick_gelu"), "quick_gelu"),
    # other heads
    ("PhiForSequenceClassification", "PhiConfig", SMALL, "PhiForCausalLM"),
    ("StableLmForTokenClassification", "StableLmConfig", SMALL, "StableLmForCausalLM"),
    ("GPTBigCodeForSequenceClassification", "GPTBigCodeConfig", GPT, "GPTBigCodeForCausalLM"),
    ("GPTNeoForQuestionAnswering", "GPTNeoConfig", NEO, "GPTNeoForCausalLM"),
    ("MptForQuestionAnswering", "MptConfig", MPT, "MptForCausalLM"),
    ("PersimmonForSequenceClassification", "PersimmonConfig", SMALL, "PersimmonForCausalLM"),
    ("BioGptForTokenClassification", "BioGptConfig", SMALL, "BioGptForCausalLM"),
]


@pytest.mark.parametrize("model_class, config_class, config, message", REFUSED)
def test_refused(model_class, config_class, config, message):
    model = build(model_class, config_class, config, device="meta")
    with pytest.raises(ParamsymError, match=message):
        paramsym.from_torch(model, T)


@pytest.mark.parametrize(
    "model_class, config_class, config",
    [
        ("PhiForCausalLM", "PhiConfig", dict(SMALL, partial_rotary_factor=0.3125)),
        ("CodeGenForCausalLM", "CodeGenConfig", dict(GPT, n_embd=48, n_head=6, rotary_dim=4)),
    ],
)
def test_what_is_refused_for_failing_fails_in_transformers(model_class, config_class, config):
    model = build(model_class, config_class, config)
    with pytest.raises(RuntimeError), torch.no_grad():
        model(torch.zeros(1, T, dtype=torch.long))


@settings(max_examples=12, deadline=None)
@example(family="Phi", heads=4, factor=Fraction(1, 16))  # 1 channel: transformers broadcasts its tables of 2
@example(family="StableLm", heads=4, factor=Fraction(5, 16))  # 5 channels: transformers' forward pass fails
@example(family="Persimmon", heads=2, factor=Fraction(3, 8))  # 12 of 32: rope=0.375
@given(
    family=st.sampled_from(["Phi", "StableLm", "Persimmon"]),
    heads=st.sampled_from([2, 4]),
    factor=st.fractions(min_value=Fraction(1, 16), max_value=1, max_denominator=16),
)
def test_partial_rotary_is_read_or_refused_as_the_forward_pass_runs(family, heads, factor):
    """Any partial_rotary_factor: the attention turns int(e·factor) channels of each head; an even count is read as
    rope=count/e with the model's params; an odd one is refused: from 3 on transformers' forward pass fails, with 1
    it broadcasts the tables of 2 channels and widens each query and key head by one (it runs, counting otherwise)."""
    config = dict(SMALL, num_attention_heads=heads, partial_rotary_factor=float(factor))
    if family == "StableLm":
        config["num_key_value_heads"] = heads
    model = build(f"{family}ForCausalLM", f"{family}Config", config)
    e = 64 // heads
    turned = int(e * float(factor))
    ids = torch.zeros(1, 4, dtype=torch.long)
    if turned % 2 or turned == 0:
        with pytest.raises(ParamsymError, match="broadcasts" if turned == 1 else "rotary tables|cannot turn"):
            paramsym.from_torch(model, T)
        if turned > 1:  # (1: it broadcasts; 0: its tables are empty and it runs unrotated, refused as no rope=F)
            with pytest.raises(RuntimeError), torch.no_grad():
                model(ids)
        return
    text = paramsym.from_torch(model, T)
    rope = "rope" if turned == e else f"rope={fraction_text(turned, e)}"
    assert f"{rope}, causal" in " ".join(text.split()), text
    assert paramsym.parse(text).evaluate()["params"] == numel(model)
