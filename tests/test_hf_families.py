"""Every Hugging Face language-model family paramsym reads, built by transformers from a small config and imported
exactly: `paramsym.from_torch` verifies the program against the model (parameters, buffers, output shape) and
this test checks the counts it gives against the model and the config, independently of paramsym's formulas:

- params: `sum(p.numel() for p in model.parameters())` (a tied weight counts once);
- active: params less the experts a position does not go through, from the model's own expert modules (each
  `...Experts` module holds E experts, a position goes through `num_experts_per_tok` of them);
- kv_cache: what the config implies (the row's formula), and for decoders also the number of values in
  transformers' own cache after a forward pass of T tokens (`past_key_values`), where transformers keeps what
  the architecture keeps (for MLA, DeepSeek-V2/V3, transformers 5.23 keeps the latent and the rotary key, as the
  architecture does, not the decompressed keys and values).

docs/zoo.md's table of Hugging Face families lists each row (test_zoo_lists_every_family); `REFUSED` lists the
families that are refused, and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import paramsym

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from helpers.lm_configs import SMALL  # noqa: E402

ZOO = Path(__file__).resolve().parents[1] / "docs" / "zoo.md"
T = 12  # tokens: fewer than any small config's window or position table


OPT = dict(
    vocab_size=100, hidden_size=64, ffn_dim=96, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64
)


@dataclass(frozen=True)
class Family:
    model_type: str  # config.model_type
    build: Callable[[], Any]  # the model, built on the CPU with random weights (small: the forward pass runs)
    kv_cache: Callable[[Any, int], int]  # (config, T) -> values kept for one sequence of T tokens
    measured_cache: bool = True  # transformers' own cache holds what the architecture keeps (a decoder)
    variant: str = ""  # what tells two rows of one family apart (in the test's id)

    def __str__(self) -> str:
        return f"{self.model_type}-{self.variant}" if self.variant else self.model_type


T5_SMALL = dict(vocab_size=100, d_model=64, d_kv=16, d_ff=96, num_layers=3, num_decoder_layers=2, num_heads=4)
BART_SMALL = dict(
    vocab_size=100,
    d_model=64,
    encoder_layers=2,
    decoder_layers=3,
    encoder_attention_heads=4,
    decoder_attention_heads=2,
    encoder_ffn_dim=96,
    decoder_ffn_dim=80,
    max_position_embeddings=64,
)


def t5_cache(config, source: int, length: int, encoder: bool = True) -> int:
    """T5: every attention's keys and values of h·d_kv channels: the encoder's L self-attentions over S (with
    `encoder`), the decoder's self-attentions over T and its cross-attentions over the S encoder positions."""
    kv = config.num_heads * config.d_kv
    return 2 * kv * ((config.num_layers * source if encoder else 0) + config.num_decoder_layers * (length + source))


def bart_cache(config, source: int, length: int, encoder: bool = True) -> int:
    """BART: as T5's, the heads splitting d_model."""
    kv = config.d_model
    return 2 * kv * ((config.encoder_layers * source if encoder else 0) + config.decoder_layers * (length + source))


def gqa_cache(config, length: int) -> int:
    """keys and values of every layer: 2 · L · kv_heads · head_dim · T."""
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv * head_dim * length


def sliding_cache(config, length: int) -> int:
    """keys and values of every layer, a sliding layer (config.layer_types) keeping min(T, sliding_window - 1)
    positions (transformers' DynamicSlidingWindowLayer)."""
    per_layer = gqa_cache(config, 1) // config.num_hidden_layers
    return sum(
        per_layer * (min(length, config.sliding_window - 1) if kind == "sliding_attention" else length)
        for kind in config.layer_types
    )


MOE = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)
GLM4_MOE = dict(n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, n_shared_experts=2)


def encoder_cache(config, length: int) -> int:
    """keys and values of every layer of an encoder, each as wide as the model: 2 · L · d · T."""
    return 2 * config.num_hidden_layers * config.hidden_size * length


# the post-norm encoders (BERT's layout): small configs, positions enough for T
ENCODER = dict(
    vocab_size=100,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=96,
    max_position_embeddings=64,
)
DISTIL = dict(vocab_size=100, dim=64, n_layers=2, n_heads=4, hidden_dim=96, max_position_embeddings=64)


def falcon_cache(config, length: int) -> int:
    """Falcon's keys and values: num_kv_heads heads in the new architecture (transformers caches them broadcast to
    every query head), one with multi_query, else one per query head."""
    heads = config.num_attention_heads
    if config.new_decoder_architecture:
        kv = config.num_kv_heads
    else:
        kv = 1 if config.multi_query else heads
    return 2 * config.num_hidden_layers * kv * (config.hidden_size // heads) * length


def mla_cache(config, length: int) -> int:
    """multi-head latent attention keeps the latent and the rotary key: L · (kv_lora_rank + qk_rope_head_dim) · T
    (transformers 5.23 keeps the same: k_nope after its norm and k_pe, not the decompressed keys and values)."""
    return config.num_hidden_layers * (config.kv_lora_rank + config.qk_rope_head_dim) * length


# DeepSeek-V2/V3: MLA, one dense layer then layers of 4 routed experts (2 per token) beside 2 shared ones
DEEPSEEK = dict(
    vocab_size=100,
    hidden_size=64,
    intermediate_size=96,
    moe_intermediate_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    kv_lora_rank=16,
    qk_nope_head_dim=8,
    qk_rope_head_dim=4,
    v_head_dim=12,
    n_routed_experts=4,
    n_shared_experts=2,
    num_experts_per_tok=2,
    first_k_dense_replace=1,
    n_group=2,
    topk_group=1,
)

# MiniCPM3: DeepSeek-V2's latent attention, no experts
MINICPM3 = dict(
    vocab_size=100,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    kv_lora_rank=16,
    q_lora_rank=24,
    qk_nope_head_dim=8,
    qk_rope_head_dim=4,
    v_head_dim=12,
)


def hf(model_class: str, config_class: str, **config) -> Callable[[], Any]:
    return lambda: getattr(transformers, model_class)(getattr(transformers, config_class)(**config))


def auto(model_type: str, **config) -> Callable[[], Any]:
    """The causal LM transformers builds for a model_type (its Auto class's choice)."""
    return lambda: transformers.AutoModelForCausalLM.from_config(
        transformers.AutoConfig.for_model(model_type, **config)
    )


FAMILIES = [
    Family("llama", hf("LlamaForCausalLM", "LlamaConfig", **SMALL), gqa_cache),
    Family("mistral", hf("MistralForCausalLM", "MistralConfig", **SMALL, sliding_window=None), gqa_cache),
    Family("ministral3", hf("Ministral3ForCausalLM", "Ministral3Config", **SMALL), gqa_cache),  # Mistral's, q scaled
    Family(
        "mixtral",
        hf("MixtralForCausalLM", "MixtralConfig", **SMALL, num_local_experts=4, num_experts_per_tok=2),
        gqa_cache,
    ),
    Family("qwen2", hf("Qwen2ForCausalLM", "Qwen2Config", **SMALL), gqa_cache),
    Family(
        "qwen2_moe",
        hf("Qwen2MoeForCausalLM", "Qwen2MoeConfig", **SMALL, **MOE, shared_expert_intermediate_size=48),
        gqa_cache,
    ),
    Family(  # dense layers between sparse ones, the first layer sliding (config.layer_types)
        "qwen2_moe",
        hf(
            "Qwen2MoeForCausalLM",
            "Qwen2MoeConfig",
            **dict(SMALL, num_hidden_layers=3),
            **MOE,
            decoder_sparse_step=2,
            use_sliding_window=True,
            sliding_window=5,
            max_window_layers=1,
        ),
        sliding_cache,
    ),
    Family("qwen3", hf("Qwen3ForCausalLM", "Qwen3Config", **SMALL), gqa_cache),
    Family(  # Llama's with numbers that scale the embedding, the residual branches, the attention and the logits
        "granite",
        hf(
            "GraniteForCausalLM",
            "GraniteConfig",
            **SMALL,
            embedding_multiplier=12.0,
            residual_multiplier=0.22,
            attention_multiplier=0.0078125,
            logits_scaling=8.0,
        ),
        gqa_cache,
    ),
    # Granite's layout with an RMSNorm after the attention and after the MLP (use_post_norm, Peri-LN)
    Family("hyperclovax", hf("HyperCLOVAXForCausalLM", "HyperCLOVAXConfig", **SMALL), gqa_cache),
    Family(
        "hyperclovax",
        hf("HyperCLOVAXForCausalLM", "HyperCLOVAXConfig", **SMALL, use_post_norm=False, logits_scaling=0.5),
        gqa_cache,
        variant="no-post-norm",
    ),
    Family("helium", hf("HeliumForCausalLM", "HeliumConfig", **SMALL), gqa_cache),
    Family(  # biases on q, k and v (attention_bias), none on the output (attention_out_bias)
        "seed_oss", hf("SeedOssForCausalLM", "SeedOssConfig", **SMALL, attention_bias=True), gqa_cache
    ),
    Family("ernie4_5", hf("Ernie4_5ForCausalLM", "Ernie4_5Config", **SMALL), gqa_cache),
    Family(  # biases on every projection and the MLP
        "ernie4_5", hf("Ernie4_5ForCausalLM", "Ernie4_5Config", **SMALL, use_bias=True), gqa_cache, variant="bias"
    ),
    Family(  # a global layer, then sliding ones (config.layer_types)
        "cwm",
        hf(
            "CwmForCausalLM",
            "CwmConfig",
            **dict(SMALL, num_hidden_layers=3),
            sliding_window=5,
            layer_types=["full_attention", "sliding_attention", "sliding_attention"],
        ),
        sliding_cache,
    ),
    # a layer without rotary positions (NoPE) every fourth (no_rope_layers), the head tied to the embedding
    Family(
        "smollm3",
        hf("SmolLM3ForCausalLM", "SmolLM3Config", **dict(SMALL, num_hidden_layers=4), pad_token_id=0),
        sliding_cache,
    ),
    Family(  # the NoPE layers slide (use_sliding_window); biases everywhere, one key/value head per query head
        "smollm3",
        hf(
            "SmolLM3ForCausalLM",
            "SmolLM3Config",
            **dict(SMALL, num_hidden_layers=4, num_key_value_heads=4),
            pad_token_id=0,
            use_sliding_window=True,
            sliding_window=5,
            attention_bias=True,
            mlp_bias=True,
            tie_word_embeddings=False,
        ),
        sliding_cache,
        variant="sliding",
    ),
    # biases on q, k and v, gate and up fused, rotary positions on half of each head (partial_rotary_factor 0.5)
    Family("glm", hf("GlmForCausalLM", "GlmConfig", **SMALL, pad_token_id=0), gqa_cache),
    Family("glm4", hf("Glm4ForCausalLM", "Glm4Config", **SMALL, pad_token_id=0), gqa_cache),  # and norms after
    Family(  # no biases, rotary positions on the whole head, the head tied
        "glm4",
        hf(
            "Glm4ForCausalLM",
            "Glm4Config",
            **SMALL,
            pad_token_id=0,
            attention_bias=False,
            partial_rotary_factor=1.0,
            tie_word_embeddings=True,
        ),
        gqa_cache,
        variant="whole",
    ),
    Family("arcee", hf("ArceeForCausalLM", "ArceeConfig", **SMALL), gqa_cache),  # up > relu² > down, no gate
    Family(
        "arcee",
        hf("ArceeForCausalLM", "ArceeConfig", **SMALL, mlp_bias=True, attention_bias=True),
        gqa_cache,
        variant="bias",
    ),
    # Apertus's own activation (xIELU) learns numbers and is refused (test_hf_decoders); with another it is read
    Family("apertus", hf("ApertusForCausalLM", "ApertusConfig", **SMALL, hidden_act="relu2"), gqa_cache),
    # Arcee's MLP (no gate) between LayerNorms with weight and bias; biases on the attention and the MLP by default
    Family("jais2", hf("Jais2ForCausalLM", "Jais2Config", **SMALL, eos_token_id=0), gqa_cache),
    # configs that transformers builds as Llama's own classes (LlamaForCausalLM) under their own model_type
    Family("internlm3", auto("internlm3", **SMALL), gqa_cache),
    Family("iquestcoder", auto("iquestcoder", **SMALL), gqa_cache),
    Family(  # biases on q, k and v, none on the output projection
        "helium", hf("HeliumForCausalLM", "HeliumConfig", **SMALL, attention_bias=True), gqa_cache, variant="bias"
    ),
    Family(  # sliding layers from max_window_layers on (config.layer_types)
        "qwen3",
        hf(
            "Qwen3ForCausalLM",
            "Qwen3Config",
            **dict(SMALL, num_hidden_layers=3),
            use_sliding_window=True,
            sliding_window=5,
            max_window_layers=1,
        ),
        sliding_cache,
    ),
    Family("qwen3_moe", hf("Qwen3MoeForCausalLM", "Qwen3MoeConfig", **SMALL, **MOE), gqa_cache),
    # Mixtral's experts; RMSNorms over the whole query and key projections; q, k and v clamped (clip_qkv)
    Family(
        "olmoe",
        hf("OlmoeForCausalLM", "OlmoeConfig", **SMALL, num_experts=4, num_experts_per_tok=2, clip_qkv=8.0),
        gqa_cache,
    ),
    Family(  # Granite's multipliers around Mixtral's experts (block_sparse_moe)
        "granitemoe",
        hf(
            "GraniteMoeForCausalLM",
            "GraniteMoeConfig",
            **SMALL,
            num_local_experts=4,
            num_experts_per_tok=2,
            embedding_multiplier=12.0,
            residual_multiplier=0.22,
            attention_multiplier=0.0078125,
            logits_scaling=8.0,
        ),
        gqa_cache,
    ),
    Family(  # LayerNorms, biases on the attention and the head, every layer sliding
        "phimoe",
        hf(
            "PhimoeForCausalLM",
            "PhimoeConfig",
            **SMALL,
            num_local_experts=4,
            num_experts_per_tok=2,
            attention_bias=True,
            lm_head_bias=True,
            sliding_window=8,
        ),
        lambda c, t: gqa_cache(c, min(t, c.sliding_window - 1)),  # the window keeps W - 1 positions
    ),
    Family(  # a dense layer, then routed experts beside a shared one (a score bias per expert); half-rotary heads
        "glm4_moe",
        hf(
            "Glm4MoeForCausalLM",
            "Glm4MoeConfig",
            **dict(SMALL, num_hidden_layers=3),
            **GLM4_MOE,
            attention_bias=True,
            use_qk_norm=True,
        ),
        gqa_cache,
    ),
    # GLM-4.5-MoE's experts (shared experts, a score bias per expert) in every layer behind Llama's attention
    Family("solar_open", hf("SolarOpenForCausalLM", "SolarOpenConfig", **SMALL, **GLM4_MOE), gqa_cache),
    Family("phi3", hf("Phi3ForCausalLM", "Phi3Config", **SMALL, pad_token_id=0), gqa_cache),
    Family("gemma", hf("GemmaForCausalLM", "GemmaConfig", **SMALL), gqa_cache),
    # local (sliding) and global layers alternate; soft-capped scores and logits; four norms a layer
    Family(
        "gemma2",
        hf("Gemma2ForCausalLM", "Gemma2Config", **{**SMALL, "num_hidden_layers": 4}, sliding_window=6),
        sliding_cache,
    ),
    # five local layers to one global (eight layers: the pattern and two more); RMSNorm on the query and key heads
    Family(
        "gemma3_text",
        hf("Gemma3ForCausalLM", "Gemma3TextConfig", **{**SMALL, "num_hidden_layers": 8}, sliding_window=6),
        sliding_cache,
    ),
    # Gemma-2's layout with a norm before the attention and one before the MLP only
    Family(
        "vaultgemma",
        hf("VaultGemmaForCausalLM", "VaultGemmaConfig", **{**SMALL, "num_hidden_layers": 4}, sliding_window=6),
        sliding_cache,
    ),
    Family(
        "deepseek_v2",
        hf("DeepseekV2ForCausalLM", "DeepseekV2Config", **DEEPSEEK, q_lora_rank=None),
        mla_cache,
        variant="q",
    ),
    Family(
        "deepseek_v2",
        hf("DeepseekV2ForCausalLM", "DeepseekV2Config", **DEEPSEEK, q_lora_rank=24),
        mla_cache,
        variant="q_lora",
    ),
    # MiniCPM3: DeepSeek-V2's attention (MLA) with a gated MLP in every layer
    Family("minicpm3", hf("MiniCPM3ForCausalLM", "MiniCPM3Config", **MINICPM3), mla_cache),
    Family(
        "minicpm3",
        hf("MiniCPM3ForCausalLM", "MiniCPM3Config", **dict(MINICPM3, q_lora_rank=None, tie_word_embeddings=False)),
        mla_cache,
        variant="q-untied",
    ),
    # Youtu-LLM: DeepSeek-V3's attention (MLA) with a gated MLP in every layer
    Family("youtu", hf("YoutuForCausalLM", "YoutuConfig", **dict(MINICPM3, num_key_value_heads=4)), mla_cache),
    Family(
        "deepseek_v3",
        hf("DeepseekV3ForCausalLM", "DeepseekV3Config", **DEEPSEEK, q_lora_rank=24),
        mla_cache,
        variant="q_lora",
    ),
    Family(
        "deepseek_v3",
        hf("DeepseekV3ForCausalLM", "DeepseekV3Config", **DEEPSEEK, q_lora_rank=None, attention_bias=True),
        mla_cache,
        variant="q-bias",
    ),
    Family(
        "gpt2",
        hf("GPT2LMHeadModel", "GPT2Config", vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=64),
        lambda c, t: 2 * c.n_layer * c.n_embd * t,
    ),
    Family(
        "bert",
        hf(
            "BertModel",
            "BertConfig",
            vocab_size=100,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=96,
            max_position_embeddings=64,
        ),
        gqa_cache,  # LANGUAGE.md counts the keys and values of every attention, an encoder's too
        measured_cache=False,  # transformers keeps no cache for an encoder
    ),
    Family("olmo", hf("OlmoForCausalLM", "OlmoConfig", **SMALL, clip_qkv=8.0), gqa_cache),
    Family("olmo2", hf("Olmo2ForCausalLM", "Olmo2Config", **SMALL), gqa_cache),
    # OLMo-2's layout, three sliding layers to a global one (layer_types)
    Family(
        "olmo3",
        hf("Olmo3ForCausalLM", "Olmo3Config", **dict(SMALL, num_hidden_layers=4), sliding_window=5),
        sliding_cache,
    ),
    Family(
        "olmo3",
        hf(
            "Olmo3ForCausalLM",
            "Olmo3Config",
            **SMALL,
            sliding_window=5,
            layer_types=["full_attention", "sliding_attention"],
            attention_bias=True,
            tie_word_embeddings=True,
        ),
        sliding_cache,
        variant="bias",
    ),
    # norms after each sublayer, RMSNorm on the query and key heads, global layers without rotary positions
    Family(
        "exaone4",
        hf("Exaone4ForCausalLM", "Exaone4Config", **dict(SMALL, num_hidden_layers=4), sliding_window=5),
        sliding_cache,
    ),
    Family(  # no sliding window: every layer global, with rotary positions
        "exaone4",
        hf(
            "Exaone4ForCausalLM",
            "Exaone4Config",
            **SMALL,
            sliding_window=None,
            layer_types=["full_attention", "full_attention"],
            tie_word_embeddings=True,
        ),
        gqa_cache,
        variant="global",
    ),
    Family("cohere", hf("CohereForCausalLM", "CohereConfig", **SMALL, use_qk_norm=True), gqa_cache),
    # Cohere's parallel block, three sliding layers (rotary positions) to a global one (none)
    Family(
        "cohere2",
        hf("Cohere2ForCausalLM", "Cohere2Config", **dict(SMALL, num_hidden_layers=4), sliding_window=5),
        sliding_cache,
    ),
    Family(
        "cohere2",
        hf(
            "Cohere2ForCausalLM",
            "Cohere2Config",
            **dict(SMALL, num_hidden_layers=4),
            sliding_window=5,
            attention_bias=True,
            tie_word_embeddings=False,
        ),
        sliding_cache,
        variant="bias",
    ),
    Family(
        "starcoder2",
        hf("Starcoder2ForCausalLM", "Starcoder2Config", **SMALL, sliding_window=8),
        lambda c, t: gqa_cache(c, min(t, c.sliding_window - 1)),  # the window keeps W - 1 positions
    ),
    Family("opt", hf("OPTForCausalLM", "OPTConfig", **OPT), gqa_cache),
    Family(  # OPT-350m's layout: norms after the residual sums, project_in and project_out
        "opt",
        hf("OPTForCausalLM", "OPTConfig", **OPT, do_layer_norm_before=False, word_embed_proj_dim=32),
        gqa_cache,
    ),
    Family("bert", hf("BertForMaskedLM", "BertConfig", **ENCODER), encoder_cache, measured_cache=False),
    Family(
        "roberta",
        hf("RobertaForMaskedLM", "RobertaConfig", **ENCODER, type_vocab_size=1),
        encoder_cache,
        measured_cache=False,
    ),
    Family(
        "xlm-roberta", hf("XLMRobertaForMaskedLM", "XLMRobertaConfig", **ENCODER), encoder_cache, measured_cache=False
    ),
    Family("camembert", hf("CamembertForMaskedLM", "CamembertConfig", **ENCODER), encoder_cache, measured_cache=False),
    Family(
        "data2vec-text",
        hf("Data2VecTextForMaskedLM", "Data2VecTextConfig", **ENCODER),
        encoder_cache,
        measured_cache=False,
    ),
    Family(  # pre-norm layers and a LayerNorm after the last
        "roberta-prelayernorm",
        hf("RobertaPreLayerNormForMaskedLM", "RobertaPreLayerNormConfig", **ENCODER),
        encoder_cache,
        measured_cache=False,
    ),
    Family(  # pre-norm layers, no LayerNorm after the embeddings, one after the last layer
        "xlm-roberta-xl",
        hf("XLMRobertaXLForMaskedLM", "XLMRobertaXLConfig", **ENCODER),
        encoder_cache,
        measured_cache=False,
    ),
    Family("ernie", hf("ErnieForMaskedLM", "ErnieConfig", **ENCODER), encoder_cache, measured_cache=False),
    Family(  # a task-type table summed into the embeddings
        "ernie",
        hf("ErnieForMaskedLM", "ErnieConfig", **ENCODER, use_task_id=True, task_type_vocab_size=5),
        encoder_cache,
        measured_cache=False,
    ),
    Family(
        "distilbert", hf("DistilBertForMaskedLM", "DistilBertConfig", **DISTIL), encoder_cache, measured_cache=False
    ),
    Family(
        "distilbert",
        hf("DistilBertForMaskedLM", "DistilBertConfig", **DISTIL, sinusoidal_pos_embds=True),
        encoder_cache,
        measured_cache=False,
    ),
    Family(
        "electra",
        hf("ElectraForMaskedLM", "ElectraConfig", **ENCODER, embedding_size=32),  # embeddings_project 32 -> 64
        encoder_cache,
        measured_cache=False,
    ),
    Family(
        "electra",
        hf("ElectraForPreTraining", "ElectraConfig", **ENCODER, embedding_size=32),
        encoder_cache,
        measured_cache=False,
    ),
]

# GPT-NeoX, GPT-J, Falcon and BLOOM: LayerNorms with biases, parallel or sequential blocks, partial rotary or ALiBi
NEOX = dict(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96)
FALCON = dict(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4)
GPT = dict(vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=64)
NEO = dict(vocab_size=100, hidden_size=64, num_layers=2, num_heads=4, max_position_embeddings=64)


def multi_query_cache(config, length: int) -> int:
    """GPT-BigCode's keys and values: one head with multi_query, else one per query head (CodeGen: one per head)."""
    kv = 1 if getattr(config, "multi_query", False) else config.n_head
    return 2 * config.n_layer * kv * (config.n_embd // config.n_head) * length


def neo_cache(config, length: int) -> int:
    """GPT-Neo's keys and values of d channels: every position for a global layer, the last window_size - 1 for a
    local one (itself and the window_size - 1 before it are attended to)."""
    local = min(length, config.window_size - 1)
    return sum(2 * config.hidden_size * (local if kind == "local" else length) for kind in config.attention_layers)


def mpt_cache(config, length: int) -> int:
    return 2 * config.n_layers * config.d_model * length


FAMILIES += [
    # rotary_pct 0.25 (the default): rope=0.25; x + a(ln₁ x) + m(ln₂ x)
    Family("gpt_neox", hf("GPTNeoXForCausalLM", "GPTNeoXConfig", **NEOX), gqa_cache),
    Family(
        "gpt_neox",
        hf(
            "GPTNeoXForCausalLM",
            "GPTNeoXConfig",
            **NEOX,
            use_parallel_residual=False,
            attention_bias=False,
            tie_word_embeddings=True,
            rotary_pct=0.5,
        ),
        gqa_cache,
    ),
    Family(
        "gptj",
        hf(
            "GPTJForCausalLM",
            "GPTJConfig",
            vocab_size=100,
            n_embd=64,
            n_layer=2,
            n_head=4,
            rotary_dim=8,
            n_positions=64,
        ),
        gqa_cache,
    ),
    Family("falcon", hf("FalconForCausalLM", "FalconConfig", **FALCON), falcon_cache),  # Falcon-7B's: multi_query
    Family(
        "falcon",
        hf("FalconForCausalLM", "FalconConfig", **FALCON, new_decoder_architecture=True, num_kv_heads=2, bias=True),
        falcon_cache,
        measured_cache=False,  # transformers caches the keys and values broadcast to every query head
    ),
    Family(
        "falcon",
        hf("FalconForCausalLM", "FalconConfig", **FALCON, multi_query=False, parallel_attn=False, alibi=True),
        falcon_cache,
    ),
    Family(
        "bloom", hf("BloomForCausalLM", "BloomConfig", vocab_size=100, hidden_size=64, n_layer=2, n_head=4), gqa_cache
    ),
    # Phi, StableLM, GPT-BigCode, GPT-Neo, CodeGen, MPT, Persimmon, XGLM, BioGPT (tests/test_hf_ln_decoders.py: MACs)
    Family("phi", hf("PhiForCausalLM", "PhiConfig", **NEOX), gqa_cache),  # partial_rotary_factor 0.5: rope=0.5
    Family(
        "phi",
        hf("PhiForCausalLM", "PhiConfig", **NEOX, num_key_value_heads=2, qk_layernorm=True, tie_word_embeddings=True),
        gqa_cache,
        variant="gqa-qk_ln",
    ),
    Family("stablelm", hf("StableLmForCausalLM", "StableLmConfig", **NEOX, num_key_value_heads=2), gqa_cache),
    Family(
        "stablelm",
        hf(
            "StableLmForCausalLM",
            "StableLmConfig",
            **NEOX,
            num_key_value_heads=4,
            use_qkv_bias=True,
            qk_layernorm=True,
            use_parallel_residual=True,
        ),
        gqa_cache,
        variant="parallel",
    ),
    Family("gpt_bigcode", hf("GPTBigCodeForCausalLM", "GPTBigCodeConfig", **GPT), multi_query_cache),
    Family(
        "gpt_bigcode",
        hf("GPTBigCodeForCausalLM", "GPTBigCodeConfig", **GPT, multi_query=False),
        multi_query_cache,
        variant="mha",
    ),
    Family(  # a global layer and a local one (window_size=8 < T): transformers caches every position of both
        "gpt_neo",
        hf("GPTNeoForCausalLM", "GPTNeoConfig", **NEO, attention_types=[[["global", "local"], 1]], window_size=8),
        neo_cache,
        measured_cache=False,
    ),
    Family(
        "gpt_neo",
        hf("GPTNeoForCausalLM", "GPTNeoConfig", **NEO, attention_types=[[["global"], 2]]),
        neo_cache,
        variant="global",
    ),
    Family("codegen", hf("CodeGenForCausalLM", "CodeGenConfig", **GPT, rotary_dim=8), multi_query_cache),
    Family("mpt", hf("MptForCausalLM", "MptConfig", vocab_size=100, d_model=64, n_layers=2, n_heads=4), mpt_cache),
    Family("persimmon", hf("PersimmonForCausalLM", "PersimmonConfig", **NEOX), gqa_cache),  # relu2, qk_layernorm
    Family(
        "xglm",
        hf("XGLMForCausalLM", "XGLMConfig", vocab_size=100, d_model=64, ffn_dim=96, num_layers=2, attention_heads=4),
        lambda c, t: 2 * c.num_layers * c.d_model * t,
    ),
    Family("biogpt", hf("BioGptForCausalLM", "BioGptConfig", **NEOX, max_position_embeddings=64), gqa_cache),
    # encoder-decoders: from_torch gives the encoder and the decoder the same length (S = T); LANGUAGE.md counts
    # every attention's keys and values: the encoder's self-attentions 2·S·kv each, the decoder's 2·T·kv, its
    # cross-attentions 2·S·kv. transformers' EncoderDecoderCache keeps the decoder's two parts only (the encoder
    # runs once and keeps none): measured_cache=False, and test_encoder_decoder_cache compares the decoder's part
    # with transformers' cache (tests/test_hf_encdec.py checks it at S != T)
    Family("t5", hf("T5ForConditionalGeneration", "T5Config", **T5_SMALL), lambda c, t: t5_cache(c, t, t), False),
    Family(
        "t5",
        hf("T5ForConditionalGeneration", "T5Config", **{**T5_SMALL, "feed_forward_proj": "gated-gelu", "d_kv": 24}),
        lambda c, t: t5_cache(c, t, t),
        False,
        "gated",
    ),
    Family(
        "bart", hf("BartForConditionalGeneration", "BartConfig", **BART_SMALL), lambda c, t: bart_cache(c, t, t), False
    ),
]

# model_type -> why transformers 5.23's family is refused (each names what the language lacks)
REFUSED: dict[str, str] = {
    # the image-text model: a SigLIP vision tower and a projector beside the text model, which is gemma3_text
    "gemma3": "Gemma3ForConditionalGeneration: its vision tower and projector are not read (its text model is)",
    # its routers keep a score bias per expert as a parameter (moe_statics), the language's moe as state: refused
    # wherever a layer has experts (tests/test_hf_moe_families.py); a config of dense layers only is read
    "ernie4_5_moe": "Ernie4_5_MoeForCausalLM: moe_statics.e_score_correction_bias is a parameter, not state",
    # mixtures of experts whose models compute what the language lacks (tests/test_hf_moe_families.py)
    "gpt_oss": "attention sinks, a router and experts with biases, a clamped SwiGLU",
    "llama4_text": "every expert runs on every token; chunked attention",
    "jetmoe": "a mixture of attention experts (JetMoeMoA); experts with an output bias",
    "nanochat": "query and key norms without a weight (q_norm, k_norm), which no qk_norm of the language has",
    "bitnet": "an RMSNorm on the heads' output before o_proj (attn_sub_norm); subln is a LayerNorm",
}


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def active_truth(model) -> int:
    """The parameters one token goes through: every expert module (a class named `...Experts`) counts only
    `num_experts_per_tok` of its experts."""
    top = model.config.num_experts_per_tok if hasattr(model.config, "num_experts_per_tok") else None
    total = numel(model)
    for module in model.modules():
        if type(module).__name__.endswith("Experts"):
            experts = getattr(module, "num_experts", None) or next(iter(module.parameters())).shape[0]
            own = sum(p.numel() for p in module.parameters(recurse=False))
            total -= own - own // experts * top
    return total


def cache_truth(model, length: int) -> int:
    """The values in transformers' cache after a forward pass of `length` tokens (an encoder-decoder's decoder
    reads `length` tokens of its own: its EncoderDecoderCache's self-attention and cross-attention parts)."""
    ids = torch.zeros(1, length, dtype=torch.long)
    extra = {"decoder_input_ids": ids} if model.config.is_encoder_decoder else {}
    with torch.no_grad():
        cache = model(ids, use_cache=True, **extra).past_key_values
    parts = [cache.self_attention_cache, cache.cross_attention_cache] if extra else [cache]
    return sum(layer.keys.numel() + layer.values.numel() for part in parts for layer in part.layers)


@pytest.fixture(scope="module", params=FAMILIES, ids=str)
def imported(request):
    family = request.param
    torch.manual_seed(0)
    model = family.build().eval()
    assert model.config.model_type == family.model_type
    text = paramsym.from_torch(model, T)
    return family, model, text, paramsym.parse(text).evaluate()


def test_params_equal_the_model(imported):
    _, model, _, values = imported
    assert values["params"] == numel(model)


def test_active_params_equal_the_model(imported):
    _, model, _, values = imported
    assert values["active"] == active_truth(model)


def test_kv_cache_is_what_the_config_implies(imported):
    family, model, _, values = imported
    assert values["kv_cache"] == family.kv_cache(model.config, T)


def test_kv_cache_is_what_transformers_keeps(imported):
    family, model, _, values = imported
    if not family.measured_cache:
        pytest.skip(f"{family}: transformers' cache is not what the architecture keeps (see the row)")
    assert values["kv_cache"] == cache_truth(model, T)


def test_encoder_decoder_cache(imported):
    """An encoder-decoder's decoder keeps what transformers' EncoderDecoderCache holds; the program's total adds
    the encoder's self-attentions (2·S·kv each, LANGUAGE.md)."""
    family, model, _, values = imported
    if not model.config.is_encoder_decoder:
        pytest.skip(f"{family} is not an encoder-decoder")
    decoder = (t5_cache if family.model_type == "t5" else bart_cache)(model.config, T, T, encoder=False)
    assert cache_truth(model, T) == decoder
    assert values["kv_cache"] == family.kv_cache(model.config, T) > decoder


def test_zoo_lists_every_family():
    """docs/zoo.md has a row `| model_type | ... |` for every family read and every family refused."""
    rows = {line.split("|")[1].strip(" `") for line in ZOO.read_text().splitlines() if line.startswith("| `")}
    missing = [f.model_type for f in FAMILIES if f.model_type not in rows] + [t for t in REFUSED if t not in rows]
    assert not missing, f"docs/zoo.md's table of Hugging Face families lacks {missing}"


def test_readme_says_how_many_families_are_read():
    readme = (ZOO.parents[1] / "README.md").read_text()
    read = {f.model_type for f in FAMILIES}
    assert f"{len(read)} families of transformers 5.23 are read" in " ".join(readme.split())
