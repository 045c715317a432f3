"""The decoder families that hf_import reads in Llama's mould (OLMo, OLMo-2, OLMo-3, EXAONE 4, Cohere, Cohere2,
StarCoder2; SmolLM3, GLM, GLM-4, Arcee and Apertus in Llama's layout), OPT, and the two
query/key norms they brought to `attn` (docs/language.md): `qk_norm=rms_full` (OLMo-2's q_norm and k_norm, an
RMSNorm over the whole projection) and `qk_norm=ln_per_head` (Cohere's use_qk_norm, a LayerNorm without bias of the
head width with a weight for every head).

Checked against transformers' own modules, built from small configs: Olmo2Attention and CohereAttention (params,
output shape, MACs by FlopCounterMode, KV cache), the PyTorch export (computes what they compute, counts the same,
imports back), whole models of each family and variant imported by `paramsym.from_torch` (params against
parameters(), MACs against FlopCounterMode, KV cache against transformers' own cache), and what is refused."""

from __future__ import annotations

import pytest

import paramsym
from paramsym.errors import ParamsymError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from helpers.round_trip import import_back  # noqa: E402
from paramsym.frameworks.torch_modules import GroupedQueryAttention  # noqa: E402


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def macs_of(fn) -> int:
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


# ---- the attention modules -----------------------------------------------------------------------------------------

# (d, heads, kv_heads, head_dim, T)
ATTENTION_CASES = [
    (64, 8, 2, 8, 9),  # grouped-query attention
    (48, 4, 4, 12, 5),  # one key/value head per query head
    (32, 4, 1, 8, 7),  # multi-query attention
    (30, 6, 3, 6, 4),  # head_dim·heads != d
]
# family -> (the attention's class, the config's class, config fields, the qk_norm= form)
FORMS = {
    "olmo2": ("Olmo2Attention", "Olmo2Config", {}, "rms_full"),
    "cohere": ("CohereAttention", "CohereConfig", {"use_qk_norm": True}, "ln_per_head"),
}


def attention_module(family: str, d: int, h: int, g: int, e: int, bias: bool = False):
    module_name, config_name, extra, _ = FORMS[family]
    config = getattr(transformers, config_name)(
        hidden_size=d,
        num_attention_heads=h,
        num_key_value_heads=g,
        head_dim=e,
        intermediate_size=8,
        num_hidden_layers=1,
        vocab_size=8,
        attention_bias=bias,
        **extra,
    )
    config._attn_implementation = "sdpa"
    modeling = getattr(transformers.models, family)
    module = getattr(getattr(modeling, f"modeling_{family}"), module_name)(config, 0).eval()
    return module


def program(family: str, d: int, h: int, g: int, e: int, T: int, bias: bool = False, rope: bool = True) -> str:
    options = [f"heads={h}"] + [f"kv_heads={g}"] * (g != h) + [f"head_dim={e}"] * (e * h != d) + ["bias"] * bias
    options += [f"qk_norm={FORMS[family][3]}"] + ["rope"] * rope + ["causal"]
    return f"input({T}x{d}) > attn({', '.join(options)})"


def unrotated(T: int, e: int):
    """cos and sin of no rotation: the attention's own positions left out (to compare with an export without rope)."""
    return torch.ones(1, T, e), torch.zeros(1, T, e)


@pytest.mark.parametrize("family", FORMS)
@pytest.mark.parametrize("d, h, g, e, T", ATTENTION_CASES)
def test_qk_norm_forms_count_as_transformers(family, d, h, g, e, T):
    theirs = attention_module(family, d, h, g, e)
    values = paramsym.parse(program(family, d, h, g, e, T)).evaluate()
    norms = (h + g) * e  # a weight for every query channel and every key channel
    assert values["params"] == numel(theirs) == d * h * e + 2 * d * g * e + h * e * d + norms
    assert theirs.q_norm.weight.numel() == h * e and theirs.k_norm.weight.numel() == g * e
    x = torch.randn(1, T, d)
    with torch.no_grad():
        y, _ = theirs(x, unrotated(T, e), None)
    assert tuple(y.shape) == (1, T, d)
    assert values["macs"] == macs_of(lambda: theirs(x, unrotated(T, e), None))
    assert values["kv_cache"] == 2 * T * g * e


@pytest.mark.parametrize("family", FORMS)
def test_qk_norm_forms_with_biases(family):
    theirs = attention_module(family, 64, 8, 2, 8, bias=True)
    values = paramsym.parse(program(family, 64, 8, 2, 8, 9, bias=True)).evaluate()
    assert values["params"] == numel(theirs)


def _copy(theirs, mine) -> None:
    with torch.no_grad():
        for name, ours in (("q_proj", mine.q), ("k_proj", mine.k), ("v_proj", mine.v), ("o_proj", mine.o)):
            getattr(theirs, name).weight.copy_(torch.randn_like(ours.weight))
            ours.weight.copy_(getattr(theirs, name).weight)
        for norm in ("q_norm", "k_norm"):
            getattr(theirs, norm).weight.copy_(1 + 0.5 * torch.randn_like(getattr(theirs, norm).weight))
            getattr(mine, norm).weight.copy_(getattr(theirs, norm).weight.reshape(getattr(mine, norm).weight.shape))


@pytest.mark.parametrize("family", FORMS)
@pytest.mark.parametrize("d, h, g, e, T", ATTENTION_CASES)
def test_export_computes_what_transformers_computes(family, d, h, g, e, T):
    torch.manual_seed(0)
    theirs = attention_module(family, d, h, g, e)
    network = paramsym.parse(program(family, d, h, g, e, T, rope=False))
    whole = paramsym.to_torch(network).eval()
    (mine,) = [m for m in whole.modules() if isinstance(m, GroupedQueryAttention)]
    _copy(theirs, mine)
    x = torch.randn(2, T, d)
    with torch.no_grad():
        expected, _ = theirs(x, unrotated(T, e), None)
        got = mine(x.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(got, expected, atol=1e-4)
    values = network.evaluate()
    assert numel(whole) == values["params"]
    text, back = import_back(network)
    assert back.evaluate() == values and f"qk_norm={FORMS[family][3]}" in text, text


def test_export_with_rope_counts_the_same():
    network = paramsym.parse("input(9x64) > attn(heads=8, kv_heads=2, qk_norm=rms_full, rope, causal)")
    whole = paramsym.to_torch(network).eval()
    values = network.evaluate()
    assert numel(whole) == values["params"]
    assert macs_of(lambda: whole(torch.zeros(1, 64, 9))) == values["macs"]


def test_formulas():
    full = paramsym.parse("input(T x d) > attn(heads=h, kv_heads=g, qk_norm=rms_full)").evaluate(T=9, d=64, h=8, g=2)
    head = paramsym.parse("input(T x d) > attn(heads=h, kv_heads=g, qk_norm=ln_per_head)").evaluate(T=9, d=64, h=8, g=2)
    shared = paramsym.parse("input(T x d) > attn(heads=h, kv_heads=g, qk_norm=rms)").evaluate(T=9, d=64, h=8, g=2)
    assert full["params"] == head["params"] == shared["params"] - 2 * 8 + 64 + 16


@pytest.mark.parametrize(
    "text, message",
    [
        ("input(10x64) > attn(heads=4, qk_norm=full)", "rms_full"),
        ("input(10x64) > attn(heads=4, qk_norm=ln_heads)", "ln_per_head"),
        ("input(8x8x64) > attn(heads=4, window=4, qk_norm=rms_full)", "takes no window"),
    ],
)
def test_refused(text, message):
    with pytest.raises(ParamsymError, match=message):
        paramsym.parse(text).evaluate()


def test_keras_refuses_the_new_norms():
    pytest.importorskip("keras")
    network = paramsym.parse("input(10x64) > attn(heads=4, qk_norm=ln_per_head)")
    with pytest.raises(ParamsymError, match="qk_norm"):
        paramsym.to_keras(network)


# ---- whole models --------------------------------------------------------------------------------------------------

SMALL = dict(
    vocab_size=100,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
)
OPT = dict(
    vocab_size=100, hidden_size=64, ffn_dim=96, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64
)

# (the class, the config's class, config, what the program must say)
MODEL_CASES = [
    ("OlmoForCausalLM", "OlmoConfig", dict(SMALL, clip_qkv=8.0), "ln(noaffine)"),
    ("OlmoForCausalLM", "OlmoConfig", dict(SMALL, attention_bias=True, tie_word_embeddings=True), "bias"),
    ("OlmoModel", "OlmoConfig", dict(SMALL, num_key_value_heads=4), "ln(noaffine)"),
    ("Olmo2ForCausalLM", "Olmo2Config", dict(SMALL), "qk_norm=rms_full"),
    ("Olmo2ForCausalLM", "Olmo2Config", dict(SMALL, num_key_value_heads=1, attention_bias=True), "qk_norm=rms_full"),
    ("CohereForCausalLM", "CohereConfig", dict(SMALL, use_qk_norm=True), "qk_norm=ln_per_head"),
    ("CohereForCausalLM", "CohereConfig", dict(SMALL, tie_word_embeddings=False, attention_bias=True), "add("),
    ("CohereModel", "CohereConfig", dict(SMALL), "ln(nobias)"),
    ("Starcoder2ForCausalLM", "Starcoder2Config", dict(SMALL, sliding_window=8), "window=8"),
    ("Starcoder2ForCausalLM", "Starcoder2Config", dict(SMALL, use_bias=False, tie_word_embeddings=False), "> ln >"),
    # OLMo-3: OLMo-2's with sliding layers (three to a global one)
    ("Olmo3ForCausalLM", "Olmo3Config", dict(SMALL, num_hidden_layers=4, sliding_window=5), "(sliding_block) * 3"),
    ("Olmo3Model", "Olmo3Config", dict(SMALL, sliding_window=5, num_key_value_heads=4), "qk_norm=rms_full"),
    # EXAONE 4: post-norms, qk_norm=rms, the global layers without rotary positions
    ("Exaone4ForCausalLM", "Exaone4Config", dict(SMALL, num_hidden_layers=4, sliding_window=5), "qk_norm=rms"),
    (
        "Exaone4ForCausalLM",
        "Exaone4Config",
        dict(SMALL, sliding_window=None, layer_types=["full_attention"] * 2, tie_word_embeddings=True),
        "tie=wte",
    ),
    ("Exaone4Model", "Exaone4Config", dict(SMALL, sliding_window=5, layer_types=["full_attention"] * 2), "(block)"),
    # Cohere2: Cohere's parallel block, sliding layers with rotary positions, global ones without
    ("Cohere2ForCausalLM", "Cohere2Config", dict(SMALL, num_hidden_layers=4, sliding_window=5), "add("),
    ("Cohere2ForCausalLM", "Cohere2Config", dict(SMALL, sliding_window=5, attention_bias=True), "bias"),
    ("Cohere2Model", "Cohere2Config", dict(SMALL, num_hidden_layers=3, sliding_window=5), "ln(nobias)"),
    # Llama's layout: SmolLM3 (NoPE layers), GLM and GLM-4 (rope=F, qkv_bias; GLM-4's post-norms), Arcee and
    # Apertus (an MLP without gate)
    ("SmolLM3ForCausalLM", "SmolLM3Config", dict(SMALL, num_hidden_layers=4, pad_token_id=0), "nope_block"),
    (
        "SmolLM3ForCausalLM",
        "SmolLM3Config",
        dict(SMALL, num_hidden_layers=4, pad_token_id=0, use_sliding_window=True, sliding_window=5, mlp_bias=True),
        "window=5",
    ),
    ("SmolLM3Model", "SmolLM3Config", dict(SMALL, pad_token_id=0, no_rope_layers=[0, 0]), "(block) * L"),
    ("GlmForCausalLM", "GlmConfig", dict(SMALL, pad_token_id=0), "rope=0.5"),
    (
        "GlmModel",
        "GlmConfig",
        dict(SMALL, pad_token_id=0, attention_bias=False, partial_rotary_factor=0.25),
        "rope=0.25",
    ),
    ("Glm4ForCausalLM", "Glm4Config", dict(SMALL, pad_token_id=0), "dense(->d) > rmsnorm)"),
    ("Glm4Model", "Glm4Config", dict(SMALL, pad_token_id=0, num_key_value_heads=1), "kv_heads=g"),
    ("ArceeForCausalLM", "ArceeConfig", dict(SMALL), "squaredrelu"),
    ("ArceeForCausalLM", "ArceeConfig", dict(SMALL, mlp_bias=True, tie_word_embeddings=True), "dense(->F, bias)"),
    ("ApertusForCausalLM", "ApertusConfig", dict(SMALL, hidden_act="relu2"), "qk_norm=rms"),
    ("ApertusModel", "ApertusConfig", dict(SMALL, hidden_act="gelu", attention_bias=True), "> gelu >"),
    # Ministral 3: Mistral's layout (its queries scaled by position count nothing), every layer sliding by
    # sliding_window
    ("Ministral3ForCausalLM", "Ministral3Config", dict(SMALL), "attn(heads=h, kv_heads=g, rope, causal)"),
    ("Ministral3ForCausalLM", "Ministral3Config", dict(SMALL, sliding_window=5), "window=5"),
    ("Ministral3Model", "Ministral3Config", dict(SMALL, num_key_value_heads=4, tie_word_embeddings=True), "(block)"),
    # HyperCLOVAX: Granite's layout (multipliers that count nothing) with an RMSNorm after the attention and after the
    # MLP inside the residuals (use_post_norm)
    ("HyperCLOVAXForCausalLM", "HyperCLOVAXConfig", dict(SMALL), "rope, causal) > rmsnorm)"),
    (
        "HyperCLOVAXForCausalLM",
        "HyperCLOVAXConfig",
        dict(SMALL, use_post_norm=False, embedding_multiplier=12.0, residual_multiplier=0.22, logits_scaling=0.5),
        "rope, causal))",
    ),
    ("HyperCLOVAXModel", "HyperCLOVAXConfig", dict(SMALL, attention_bias=True, mlp_bias=True), "dense(->d, bias)"),
    # Jais 2: Arcee's MLP between LayerNorms (weight and bias), biases on the attention and the MLP by default
    ("Jais2ForCausalLM", "Jais2Config", dict(SMALL, eos_token_id=0), "res(ln > dense(->F, bias) > squaredrelu >"),
    (
        "Jais2ForCausalLM",
        "Jais2Config",
        dict(SMALL, eos_token_id=0, attention_bias=False, mlp_bias=False, tie_word_embeddings=True, sliding_window=5),
        "window=5",
    ),
    ("Jais2Model", "Jais2Config", dict(SMALL, eos_token_id=0, hidden_act="gelu"), "(block) * L > ln"),
    ("OPTForCausalLM", "OPTConfig", dict(OPT), "posembed(n + 2)"),
    ("OPTForCausalLM", "OPTConfig", dict(OPT, do_layer_norm_before=False, word_embed_proj_dim=32), "dense(->p)"),
    ("OPTForCausalLM", "OPTConfig", dict(OPT, enable_bias=False, layer_norm_elementwise_affine=False), "noaffine"),
    ("OPTForCausalLM", "OPTConfig", dict(OPT, _remove_final_layer_norm=True, tie_word_embeddings=False), "relu"),
    ("OPTModel", "OPTConfig", dict(OPT, word_embed_proj_dim=48, activation_function="gelu"), "gelu"),
]
T = 12


def build(model_class: str, config_class: str, config: dict):
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(getattr(transformers, config_class)(**config)).eval()
    model.config._attn_implementation = "sdpa"
    return model


def cache_of(model) -> int:
    with torch.no_grad():
        cache = model(torch.zeros(1, T, dtype=torch.long), use_cache=True).past_key_values
    return sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)


@pytest.mark.parametrize("model_class, config_class, config, says", MODEL_CASES)
def test_small_models_import_exactly(model_class, config_class, config, says):
    model = build(model_class, config_class, config)
    text = paramsym.from_torch(model, T)
    assert f"{model_class} read by paramsym" in text and says in text, text
    values = paramsym.parse(text).evaluate()
    ids = torch.zeros(1, T, dtype=torch.long)
    assert values["params"] == numel(model)
    assert values["macs"] == macs_of(lambda: model(ids, use_cache=False))
    assert values["kv_cache"] == cache_of(model)


def rotated_and_kept(model) -> tuple[list[bool], list[int]]:
    """What the model does on a forward of T tokens, layer by layer: whether its attention calls its family's
    apply_rotary_pos_emb (the module's own function, wrapped), and how many positions transformers' cache keeps."""
    modeling = __import__(type(model).__module__, fromlist=["apply_rotary_pos_emb"])
    original = modeling.apply_rotary_pos_emb
    layers = getattr(model, "model", model).layers
    current, turned = [0], [False] * len(layers)

    def wrapped(*args, **kwargs):
        turned[current[0]] = True
        return original(*args, **kwargs)

    hooks = [
        layer.self_attn.register_forward_pre_hook(lambda _m, _a, i=i: current.__setitem__(0, i))
        for i, layer in enumerate(layers)
    ]
    modeling.apply_rotary_pos_emb = wrapped
    try:
        with torch.no_grad():
            cache = model(torch.zeros(1, T, dtype=torch.long), use_cache=True).past_key_values
    finally:
        modeling.apply_rotary_pos_emb = original
        for hook in hooks:
            hook.remove()
    return turned, [layer.keys.shape[-2] for layer in cache.layers]


# the models whose layers differ: sliding or global, rotary positions or none (NoPE)
PER_LAYER_CASES = [
    ("SmolLM3ForCausalLM", "SmolLM3Config", dict(SMALL, num_hidden_layers=8, pad_token_id=0)),
    (
        "SmolLM3ForCausalLM",
        "SmolLM3Config",
        dict(SMALL, num_hidden_layers=5, pad_token_id=0, use_sliding_window=True, sliding_window=5),
    ),
    ("SmolLM3ForCausalLM", "SmolLM3Config", dict(SMALL, num_hidden_layers=3, pad_token_id=0, no_rope_layers=[0, 1, 0])),
    ("Olmo3ForCausalLM", "Olmo3Config", dict(SMALL, num_hidden_layers=5, sliding_window=5)),
    ("Exaone4ForCausalLM", "Exaone4Config", dict(SMALL, num_hidden_layers=5, sliding_window=5)),
    ("Exaone4ForCausalLM", "Exaone4Config", dict(SMALL, sliding_window=5, layer_types=["full_attention"] * 2)),
    ("Exaone4ForCausalLM", "Exaone4Config", dict(SMALL, sliding_window=None, layer_types=["full_attention"] * 2)),
    ("Cohere2ForCausalLM", "Cohere2Config", dict(SMALL, num_hidden_layers=5, sliding_window=5)),
    (
        "Cohere2ForCausalLM",
        "Cohere2Config",
        dict(
            SMALL,
            num_hidden_layers=3,
            sliding_window=5,
            layer_types=["full_attention", "sliding_attention"] * 1 + ["full_attention"],
        ),
    ),
    ("GlmForCausalLM", "GlmConfig", dict(SMALL, pad_token_id=0)),
    ("Glm4ForCausalLM", "Glm4Config", dict(SMALL, pad_token_id=0)),
    ("ArceeForCausalLM", "ArceeConfig", dict(SMALL)),
    ("Ministral3ForCausalLM", "Ministral3Config", dict(SMALL, sliding_window=5)),
]


@pytest.mark.parametrize("model_class, config_class, config", PER_LAYER_CASES)
def test_each_layer_turns_and_slides_as_the_model(model_class, config_class, config):
    """Each attention of the program has `rope` where the model's attention turns its queries and keys (rope counts
    no parameters and no MACs, so the counts cannot tell), and a window where transformers' cache keeps fewer than
    the T positions (min(T, W - 1) for a window of W)."""
    model = build(model_class, config_class, config)
    network = paramsym.parse(paramsym.from_torch(model, T))
    # a run of one block is `(block) * L`, listed once with its multiplier; other repeats are listed layer by layer
    attentions = [
        item.layer.options
        for item in network.layers
        if item.layer.name == "attn"
        for _ in range(network.value(item.layer.multiplier))
    ]
    turned, kept = rotated_and_kept(model)
    assert [bool(a.rope) for a in attentions] == turned
    assert [T if a.slide is None else min(T, a.slide - 1) for a in attentions] == kept  # slide: window= of a sequence


def test_notes_say_what_counts_nothing():
    olmo = paramsym.from_torch(build("OlmoForCausalLM", "OlmoConfig", dict(SMALL, clip_qkv=8.0)), T)
    assert "clip_qkv" in olmo
    cohere = paramsym.from_torch(build("CohereForCausalLM", "CohereConfig", dict(SMALL)), T)
    assert "logit_scale=0.0625: no parameters" in cohere


def test_opt_cannot_look_up_a_position_beyond_its_table():
    model = build("OPTForCausalLM", "OPTConfig", dict(OPT))
    assert paramsym.parse(paramsym.from_torch(model, 64)).evaluate()["params"] == numel(model)
    with pytest.raises(ParamsymError, match=r"each of 64 positions \(max_position_embeddings=64\)"):
        paramsym.from_torch(model, 65)


@pytest.mark.parametrize(
    "model_class, config_class, config, message",
    [
        ("Starcoder2ForSequenceClassification", "Starcoder2Config", dict(SMALL), "Starcoder2ForCausalLM"),
        ("OPTForQuestionAnswering", "OPTConfig", dict(OPT), "OPTForCausalLM"),
        ("Olmo2ForSequenceClassification", "Olmo2Config", dict(SMALL), "Olmo2ForCausalLM"),
        ("Exaone4ForQuestionAnswering", "Exaone4Config", dict(SMALL, sliding_window=5), "Exaone4ForCausalLM"),
        ("SmolLM3ForSequenceClassification", "SmolLM3Config", dict(SMALL, pad_token_id=0), "SmolLM3ForCausalLM"),
        ("Glm4ForTokenClassification", "Glm4Config", dict(SMALL, pad_token_id=0), "Glm4ForCausalLM"),
    ],
)
def test_other_heads_are_refused(model_class, config_class, config, message):
    with torch.device("meta"):
        model = getattr(transformers, model_class)(getattr(transformers, config_class)(**config))
    with pytest.raises(ParamsymError, match=message):
        paramsym.from_torch(model, T)


def test_a_norm_the_layout_does_not_have_is_refused():
    model = build("OlmoForCausalLM", "OlmoConfig", dict(SMALL))
    model.model.layers[0].self_attn.q_norm = torch.nn.RMSNorm(64)
    with pytest.raises(ParamsymError, match="norms of the queries and keys"):
        paramsym.from_torch(model, T)
    model = build("Olmo2ForCausalLM", "Olmo2Config", dict(SMALL))
    for norm in ("q_norm", "k_norm"):  # per head: not OLMo-2's
        setattr(model.model.layers[0].self_attn, norm, torch.nn.RMSNorm(16))
    with pytest.raises(ParamsymError, match=r"\(16,\) and \(16,\).*qk_norm=rms_full"):
        paramsym.from_torch(model, T)


@pytest.mark.parametrize("post_norm, layer, module", [(True, 1, "post_norm2"), (False, 0, "post_norm1")])
def test_hyperclovax_norms_after_that_its_config_does_not_say_are_refused(post_norm, layer, module):
    """HyperCLOVAX's norms after the attention and the MLP are read from use_post_norm: a layer whose module differs
    (an Identity where the config says RMSNorm, a LayerNorm where it says none) is refused by the check of the
    program against parameters()."""
    model = build("HyperCLOVAXForCausalLM", "HyperCLOVAXConfig", dict(SMALL, use_post_norm=post_norm))
    setattr(model.model.layers[layer], module, torch.nn.Identity() if post_norm else torch.nn.LayerNorm(64))
    with pytest.raises(ParamsymError, match="parameters, but the program paramsym wrote for it has"):
        paramsym.from_torch(model, T)


# configs of the new families that the language cannot write, each refused by what it lacks
REFUSED_CASES = [
    # NanoChat's q_norm and k_norm divide by the root mean square without a weight: no qk_norm of the language
    ("NanoChatForCausalLM", "NanoChatConfig", dict(SMALL), r"q_norm, k_norm: NanoChatRMSNorm, after the rotary turn"),
    ("NanoChatModel", "NanoChatConfig", dict(SMALL, num_key_value_heads=4), "which no qk_norm of the language has"),
    # BitNet's RMSNorm on the heads' output before o_proj: the language's subln is a LayerNorm
    ("BitNetForCausalLM", "BitNetConfig", dict(SMALL), r"RMSNorm \(self_attn.attn_sub_norm, a weight of the q"),
    # Apertus's own activation: xIELU learns alpha_p and alpha_n in each MLP
    ("ApertusForCausalLM", "ApertusConfig", dict(SMALL), "xIELU learns two numbers"),
    ("ArceeForCausalLM", "ArceeConfig", dict(SMALL, hidden_act="xielu"), "xIELU learns two numbers"),
    ("Jais2ForCausalLM", "Jais2Config", dict(SMALL, eos_token_id=0, hidden_act="xielu"), "xIELU learns two numbers"),
    # a sliding layer_types whose attention does not slide (use_sliding_window off): the cache and the attention
    # disagree
    (
        "SmolLM3ForCausalLM",
        "SmolLM3Config",
        dict(SMALL, pad_token_id=0, sliding_window=5, layer_types=["sliding_attention", "full_attention"]),
        r"layers.0.self_attn slides over None positions, but config.layer_types\[0\] is 'sliding_attention'",
    ),
    # rotary positions on part of the head where the family's attention turns the whole head
    (
        "Exaone4ForCausalLM",
        "Exaone4Config",
        dict(
            SMALL,
            sliding_window=5,
            rope_parameters={"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5},
        ),
        "partial_rotary_factor=0.5",
    ),
    (
        "Olmo3ForCausalLM",
        "Olmo3Config",
        dict(
            SMALL,
            sliding_window=5,
            rope_parameters={
                "full_attention": {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5},
                "sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
            },
        ),
        r"partial_rotary_factor=\[0.5, 1.0\]",
    ),
]


@pytest.mark.parametrize("model_class, config_class, config, message", REFUSED_CASES)
def test_what_the_language_lacks_is_refused(model_class, config_class, config, message):
    with torch.device("meta"):
        model = getattr(transformers, model_class)(getattr(transformers, config_class)(**config))
    with pytest.raises(ParamsymError, match=message):
        paramsym.from_torch(model, T)


def test_bitnet_attention_sub_norm_is_an_rmsnorm_of_the_heads_output():
    """Why BitNet is refused: attn_sub_norm holds a weight of the q channels and no bias (subln's LayerNorm holds 2q)
    and runs on the heads' output, the input of o_proj."""
    attention = build("BitNetForCausalLM", "BitNetConfig", dict(SMALL)).model.layers[0].self_attn
    shapes = [tuple(p.shape) for p in attention.attn_sub_norm.parameters()]
    assert shapes == [(attention.o_proj.in_features,)] == [(4 * 16,)]
    assert type(attention.attn_sub_norm).__name__ == "BitNetRMSNorm"


def test_nanochat_query_and_key_norms_learn_nothing():
    """Why NanoChat is refused: its q_norm and k_norm hold no parameter, and change q and k (not an identity)."""
    attention = build("NanoChatForCausalLM", "NanoChatConfig", dict(SMALL)).model.layers[0].self_attn
    assert list(attention.q_norm.parameters()) == list(attention.k_norm.parameters()) == []
    x = torch.full((1, 4, 3, 16), 3.0)
    assert torch.allclose(attention.q_norm(x), torch.ones_like(x), atol=1e-4)


@pytest.mark.parametrize(
    "model_type, config, says",
    [
        ("smollm3", dict(SMALL, num_hidden_layers=8, pad_token_id=0), "((rope_block) * 3 > nope_block) * 2"),
        ("cohere2", dict(SMALL, num_hidden_layers=4, sliding_window=5), "(sliding_block) * 3 > full_block"),
    ],
)
def test_a_config_json_imports_from_the_cli(tmp_path, model_type, config, says):
    """`paramsym import config.json`, as a user runs it: the program of the model transformers builds from it."""
    import json

    from helpers.cli_helpers import run

    built = transformers.AutoConfig.for_model(model_type, **config)
    (tmp_path / "config.json").write_text(json.dumps(built.to_dict()))
    result = run("import", str(tmp_path / "config.json"), "--input", str(T))
    assert result.returncode == 0, result.stderr
    assert says in result.stdout and "Traceback" not in result.stderr
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(built)
    assert paramsym.parse(result.stdout).evaluate()["params"] == numel(model)


@pytest.mark.parametrize(
    "names, text",
    [
        (["block"] * 4, "(block) * L"),
        (["a", "b"] * 2, "(a > b) * 2"),
        (["a", "a", "b"] * 3, "((a) * 2 > b) * 3"),
        ((["a"] * 3 + ["b"]) * 7 + ["a"] * 2, "((a) * 3 > b) * 7 > (a) * 2"),  # EXAONE 4 with 30 layers
        (["a", "b", "a"], "a > b > a"),  # no repeat
        (["b", "a", "a", "a"], "b > (a) * 3"),
    ],
)
def test_layers_are_written_as_repeats(names, text):
    from paramsym.frameworks.hf_import import _sequence

    assert _sequence(names) == text
    defs = "; ".join(f"def {name} = dense(->{8 + i})" for i, name in enumerate(sorted(set(names))))
    network = paramsym.parse(f"let L = {len(names)}; {defs}; input(8) > {text}")
    widths = [item.layer.cout for item in network.layers for _ in range(network.value(item.layer.multiplier))]
    assert widths == [8 + sorted(set(names)).index(name) for name in names]  # the layers in their order
