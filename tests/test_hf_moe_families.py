"""The mixture-of-experts families read in Llama's layout besides Mixtral and Qwen-MoE (docs/zoo.md): OLMoE (RMSNorms
over the whole query and key projections), GraniteMoE (its experts in block_sparse_moe), PhiMoE (LayerNorms, biases,
a router that takes 2 experts whatever num_experts_per_tok says) and GLM-4.5-MoE (dense first layers, shared experts,
a score bias per expert, half-rotary heads), each built by transformers from a small config and imported by
`paramsym.from_torch`:

- params against `parameters()`, active params against the model's own expert modules (the experts a token goes
  through: num_experts_per_tok of them, PhiMoE's 2), the KV cache against transformers' own cache after a forward;
- MACs against FlopCounterMode on one forward pass (the math SDPA kernel: every T x T pair, as paramsym counts
  causal attention; the eager experts: a Linear per expert on the tokens routed to it, so k experts a token
  whatever the routing). FlopCounterMode counts matrix products only: the norms, the rotary turns, the routing
  weights and the score bias count no MACs, in paramsym as in it;
- what the language cannot say is refused, naming the module: a router with a bias, experts with biases.
"""

from __future__ import annotations

import pytest

import paramsym
from paramsym.errors import ParamsymError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch import nn  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from helpers.lm_configs import SMALL  # noqa: E402

T = 12
EXPERTS = dict(num_local_experts=4, num_experts_per_tok=2)  # Mixtral's names (GraniteMoE's, PhiMoE's)
GLM = dict(n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)
ERNIE = dict(moe_num_experts=4, moe_k=2, moe_intermediate_size=32)


def build(name: str, **config):
    torch.manual_seed(0)
    return getattr(transformers, f"{name}ForCausalLM")(getattr(transformers, f"{name}Config")(**config)).eval()


def numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


def active_truth(model, top: int) -> int:
    """The parameters one token goes through: of every expert module (`...Experts`, E experts as 3-D tensors)
    `top` experts."""
    total = numel(model)
    for module in model.modules():
        if type(module).__name__.endswith("Experts"):
            own = sum(p.numel() for p in module.parameters(recurse=False))
            total -= own - own // module.num_experts * top
    return total


def cache_truth(model, length: int) -> int:
    with torch.no_grad():
        cache = model(torch.zeros(1, length, dtype=torch.long), use_cache=True).past_key_values
    return sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)


# (family, config, what the program says (each a piece of it, spaces folded), experts a token goes through)
MODELS = [
    ("Olmoe", dict(SMALL, num_experts=4, num_experts_per_tok=2), ["qk_norm=rms_full", "(block) * L > rmsnorm"], 2),
    (  # multi-head (no GQA), tied head, clip_qkv a comment
        "Olmoe",
        dict(
            SMALL, num_experts=6, num_experts_per_tok=3, num_key_value_heads=4, tie_word_embeddings=True, clip_qkv=5.0
        ),
        ["# q, k and v clamped to +-5.0", "attn(heads=h, qk_norm=rms_full, rope, causal)", "dense(->V, tie=wte)"],
        3,
    ),
    ("GraniteMoe", dict(SMALL, **EXPERTS), ["> res(rmsnorm > moe(expert, experts=E, top=k))"], 2),
    (
        "GraniteMoe",
        dict(SMALL, **EXPERTS, tie_word_embeddings=True, embedding_multiplier=12.0, residual_multiplier=0.22),
        ["dense(->V, tie=wte)"],
        2,
    ),
    ("Phimoe", dict(SMALL, **EXPERTS), ["res(ln > attn(heads=h, kv_heads=g, rope, causal))", "> ln > dense(->V)"], 2),
    (
        "Phimoe",
        dict(SMALL, **EXPERTS, attention_bias=True, lm_head_bias=True, sliding_window=8),
        ["attn(heads=h, kv_heads=g, bias, window=8, rope, causal)", "dense(->V, bias)"],
        2,
    ),
    (  # sparsemixer takes 2 experts, not 3; a tied head with its own bias
        "Phimoe",
        dict(SMALL, num_local_experts=4, num_experts_per_tok=3, tie_word_embeddings=True, lm_head_bias=True),
        ["# its router sends every position through 2 experts (num_experts_per_tok=3", "let k = 2", "bias, tie=wte"],
        2,
    ),
    (
        "Glm4Moe",
        dict(SMALL, num_hidden_layers=3, **GLM),
        [
            "attn(heads=h, kv_heads=g, rope=0.5, causal)",
            "add(moe(expert, experts=E, top=k, score_bias) | shared_expert)",
            "dense_block > (sparse_block) * 2 > rmsnorm",
        ],
        2,
    ),
    (
        "Glm4Moe",
        dict(SMALL, num_hidden_layers=3, **GLM, attention_bias=True, use_qk_norm=True, n_shared_experts=2),
        ["attn(heads=h, kv_heads=g, qkv_bias, qk_norm=rms, rope=0.5, causal)", "let S = 64"],
        2,
    ),
    (  # no dense layer, no shared expert (Linears of no width), whole-rotary heads
        "Glm4Moe",
        dict(SMALL, **GLM, first_k_dense_replace=0, n_shared_experts=0, partial_rotary_factor=1.0),
        ["rope, causal", "res(rmsnorm > moe(expert, experts=E, top=k, score_bias))", "(block) * L"],
        2,
    ),
    ("Glm4Moe", dict(SMALL, **GLM, first_k_dense_replace=2), ["(block) * L", "mul(dense(->F) > silu"], 2),  # dense
    (  # Solar Open: GLM-4.5-MoE's experts in every layer behind Llama's attention (whole-rotary heads)
        "SolarOpen",
        dict(SMALL, **GLM, n_shared_experts=2),
        [
            "attn(heads=h, kv_heads=g, rope, causal)",
            "res(rmsnorm > add(moe(expert, experts=E, top=k, score_bias) | shared_expert))",
            "(block) * L > rmsnorm > dense(->V)",
        ],
        2,
    ),
    (  # no shared expert, biases on q, k and v (its o_proj has none), a tied head
        "SolarOpen",
        dict(SMALL, **GLM, n_shared_experts=0, attention_bias=True, tie_word_embeddings=True, n_group=2),
        ["attn(heads=h, kv_heads=g, qkv_bias, rope, causal)", "moe(expert, experts=E, top=k, score_bias))"],
        2,
    ),
    (  # ERNIE 4.5 MoE with no layer of experts (from layer 5 on, of 2): ERNIE 4.5's layers, biases everywhere
        "Ernie4_5_Moe",
        dict(SMALL, **ERNIE, moe_layer_start_index=5, use_bias=True),
        ["attn(heads=h, kv_heads=g, bias, rope, causal)", "dense(->V, bias, tie=wte)"],
        2,
    ),
]


IDS = [
    "olmoe", "olmoe-mha-tied-clip", "granitemoe", "granitemoe-tied", "phimoe", "phimoe-bias-window",
    "phimoe-top3-tied-bias", "glm4_moe", "glm4_moe-qkv_bias-qk_norm", "glm4_moe-no-dense-no-shared",
    "glm4_moe-all-dense", "solar_open", "solar_open-qkv_bias-tied", "ernie4_5_moe-dense-bias",
]  # fmt: skip


@pytest.fixture(scope="module", params=MODELS, ids=IDS)
def imported(request):
    name, config, pieces, top = request.param
    model = build(name, **config)
    text = paramsym.from_torch(model, T)
    return model, text, paramsym.parse(text).evaluate(), pieces, top


def test_the_program_says_the_layout(imported):
    _, text, _, pieces, _ = imported
    folded = " ".join(text.split())
    for piece in pieces:
        assert piece in folded, text


def test_params_active_and_cache_equal_the_model(imported):
    model, _, values, _, top = imported
    assert values["params"] == numel(model)
    assert values["active"] == active_truth(model, top)
    assert values["kv_cache"] == cache_truth(model, T)
    c = model.config
    window = getattr(c, "sliding_window", None)
    positions = T if window is None else min(T, window - 1)
    assert values["kv_cache"] == 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * positions


def test_macs_equal_flop_counter(imported):
    model, _, values, _, _ = imported
    for p in model.parameters():  # random routing (routers start at 0)
        nn.init.normal_(p, std=0.02)
    model.config._attn_implementation = "sdpa"
    model.config._experts_implementation = "eager"  # a Linear per expert on its tokens, which FlopCounterMode counts
    ids = torch.randint(0, 100, (1, T))
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(ids, use_cache=False)
    assert values["macs"] == counter.get_total_flops() // 2


def test_phimoe_takes_two_experts_whatever_the_config_says():
    """sparsemixer picks the best expert, then the best of the others: the experts' MACs are those of 2 a token."""
    model = build("Phimoe", **dict(SMALL, num_hidden_layers=1), num_local_experts=4, num_experts_per_tok=3)
    values = paramsym.parse(paramsym.from_torch(model, T)).evaluate()
    mlp = model.model.layers[0].mlp
    for p in mlp.parameters():
        nn.init.normal_(p, std=0.02)
    model.config._experts_implementation = "eager"
    x = torch.randn(1, T, 64)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        mlp(x)
    router, expert = 64 * 4, 3 * 64 * 96
    assert counter.get_total_flops() // 2 == T * (router + 2 * expert)
    assert values["params"] - values["active"] == 2 * expert  # 2 of the 4 experts a token skips


def test_phimoe_with_fewer_than_two_experts_is_refused():
    model = build("Phimoe", **SMALL, num_local_experts=1, num_experts_per_tok=1)
    with pytest.raises(ParamsymError, match=r"layers\.0\.mlp: 1 experts, of which its router takes 2 a token"):
        paramsym.from_torch(model, T)


def test_a_router_with_a_bias_is_refused():
    model = build("GraniteMoe", **SMALL, **EXPERTS)
    model.model.layers[1].block_sparse_moe.router.bias = nn.Parameter(torch.zeros(4))
    with pytest.raises(ParamsymError, match=r"layers\.1\.mlp: a router other than a weight of 4 x 64 without a bias"):
        paramsym.from_torch(model, T)


def test_experts_with_biases_are_refused():
    model = build("Olmoe", **SMALL, num_experts=4, num_experts_per_tok=2)
    model.model.layers[0].mlp.experts.down_proj_bias = nn.Parameter(torch.zeros(4, 64))
    with pytest.raises(ParamsymError, match=r"layers\.0\.mlp\.experts \(OlmoeExperts\) holds down_proj_bias beside"):
        paramsym.from_torch(model, T)


@pytest.mark.parametrize("config", [{}, dict(moe_layer_interval=2, moe_num_shared_experts=0, use_bias=True)])
def test_ernie4_5_moe_score_bias_parameter_is_refused(config):
    """ERNIE 4.5 MoE's router keeps its score bias per expert as a Parameter (requires_grad=False), which
    parameters() counts; moe(..., score_bias) keeps DeepSeek-V3's buffer as state: refused, naming it."""
    model = build("Ernie4_5_Moe", **SMALL, **ERNIE, **config)
    layer = 1  # moe_layer_start_index=1: the first layer with experts
    assert not model.model.layers[layer].mlp.gate.moe_statics.e_score_correction_bias.requires_grad
    with pytest.raises(
        ParamsymError,
        match=rf"layers\.{layer}\.mlp\.gate keeps its score bias per expert \(moe_statics\.e_score_correction_bias\) "
        r"as a parameter that learns nothing \(requires_grad=False\)",
    ):
        paramsym.from_torch(model, T)


def test_qk_norms_of_the_head_width_in_olmoe_are_refused():
    """OLMoE's q_norm and k_norm span the whole projections; norms of another width are not its layout."""
    model = build("Olmoe", **SMALL, num_experts=4, num_experts_per_tok=2)
    for layer in model.model.layers:
        layer.self_attn.q_norm = type(layer.self_attn.q_norm)(16)
        layer.self_attn.k_norm = type(layer.self_attn.k_norm)(16)
    with pytest.raises(ParamsymError, match=r"qk_norm=rms_full \(an RMSNorm with a weight of 64 on the queries, of 32"):
        paramsym.from_torch(model, T)


# published configs (their config.json), at full size on the meta device: (family, config, billions of params and of
# active params as their model cards round them, where the model card's count is of what transformers builds)
PUBLISHED = [
    (  # allenai/OLMoE-1B-7B-0924: "1.3B active and 6.9B total parameters"
        "Olmoe",
        dict(
            vocab_size=50304, hidden_size=2048, intermediate_size=1024, num_hidden_layers=16, num_attention_heads=16,
            num_key_value_heads=16, num_experts=64, num_experts_per_tok=8, tie_word_embeddings=False,
        ),
        (6.9, 1.3),
    ),
    (  # zai-org/GLM-4.5-Air (its card's 106B and 12B count the multi-token-prediction layer, which transformers
        # 5.23 does not build)
        "Glm4Moe",
        dict(
            vocab_size=151552, hidden_size=4096, intermediate_size=10944, moe_intermediate_size=1408,
            num_hidden_layers=46, num_attention_heads=96, num_key_value_heads=8, head_dim=128,
            n_routed_experts=128, n_shared_experts=1, num_experts_per_tok=8, first_k_dense_replace=1,
            attention_bias=True, use_qk_norm=False, partial_rotary_factor=0.5,
        ),
        None,
    ),
]  # fmt: skip


@pytest.mark.parametrize("name, config, billions", PUBLISHED)
def test_published_configs_at_full_size(name, config, billions):
    with torch.device("meta"):
        model = getattr(transformers, f"{name}ForCausalLM")(getattr(transformers, f"{name}Config")(**config))
    values = paramsym.parse(paramsym.from_torch(model, 4096)).evaluate()
    assert values["params"] == numel(model)
    assert values["active"] == active_truth(model, model.config.num_experts_per_tok)
    if billions is not None:
        assert (round(values["params"] / 1e9, 1), round(values["active"] / 1e9, 1)) == billions


# ---- mixture-of-experts families refused, each saying what the language lacks

UNREAD = [
    ("gpt_oss", r"GptOssForCausalLM: its attention adds a learned logit per head .* \(self_attn\.sinks"),
    ("llama4_text", r"Llama4ForCausalLM: transformers' Llama4TextMoe runs every one of its experts on every token"),
    ("jetmoe", r"JetMoeForCausalLM: its attention is a mixture of experts \(JetMoeMoA"),
]


@pytest.mark.parametrize("model_type, words", UNREAD, ids=[u[0] for u in UNREAD])
def test_unread_families_are_refused_saying_why(model_type, words):
    config = transformers.AutoConfig.for_model(
        model_type, vocab_size=100, hidden_size=64, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, num_local_experts=4, num_experts_per_tok=2,
    )  # fmt: skip
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    with pytest.raises(ParamsymError, match=words):
        paramsym.from_torch(model, T)


def test_llama4_text_moe_runs_every_expert_on_every_token():
    """Why Llama-4's experts are refused: FlopCounterMode counts all E experts for each token (and the router and
    the shared expert), where moe(..., top=k) counts k."""
    from transformers.models.llama4.modeling_llama4 import Llama4TextMoe

    d, F, E, k = 64, 32, 4, 1
    config = transformers.Llama4TextConfig(
        hidden_size=d, intermediate_size=F, num_local_experts=E, num_experts_per_tok=k
    )
    torch.manual_seed(0)
    block = Llama4TextMoe(config).eval()
    for p in block.parameters():
        nn.init.normal_(p, std=0.02)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        block(torch.randn(1, T, d))
    assert counter.get_total_flops() // 2 == T * (d * E + E * 3 * d * F + 3 * d * F)
