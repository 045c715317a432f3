"""Cases from benchmarks/hf_sweep.py (every model_type of transformers 5.23 from a small config): each config is
built as `paramsym import config.json` builds it (hf_config.model_from_config, on the meta device) and imported
with `paramsym.from_torch(model, T)`. An import is compared with the model by tests/helpers/import_check.hf_counts,
independently of paramsym's own verification: parameters (model.parameters()), state, the output's shape of a
forward of T token ids, and MACs against FlopCounterMode; a refusal must be ImportRefused naming the model and
what it lacks; a config transformers refuses is one usage error with transformers' reason."""

from __future__ import annotations

import pytest

import paramsym
from paramsym.errors import ImportRefused, ParamsymUsageError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from helpers.import_check import differences, hf_counts, program_counts  # noqa: E402
from helpers.lm_configs import SMALL  # noqa: E402
from paramsym.frameworks.hf_config import model_from_config  # noqa: E402

T = 16

# (model_type, config fields beyond SMALL): imported exactly
EXACT = [
    ("granite", dict(embedding_multiplier=12.0, residual_multiplier=0.22, attention_multiplier=0.0078125)),
    ("hyperclovax", dict(logits_scaling=0.5)),  # Granite's with an RMSNorm after the attention and the MLP
    ("hyperclovax", dict(use_post_norm=False, attention_bias=True)),
    ("helium", {}),
    ("ministral3", dict(sliding_window=4)),  # Mistral's, every layer sliding; its queries scaled by position
    ("helium", dict(attention_bias=True)),  # biases on q, k, v; none on the output projection
    ("seed_oss", dict(attention_bias=True, attention_out_bias=False)),
    ("ernie4_5", dict(use_bias=True)),  # biases on the attention's four projections and the MLP's three
    ("cwm", dict(sliding_window=8, layer_types=["full_attention", "sliding_attention"])),
    ("internlm3", {}),  # built as LlamaForCausalLM
    ("iquestcoder", dict(tie_word_embeddings=True)),  # built as LlamaForCausalLM
    ("llama", dict(attention_bias=True, mlp_bias=True)),
    ("llama", dict(sliding_window=4)),  # transformers' cache slides on every layer: window=4
    ("starcoder2", dict(sliding_window=4)),
    ("qwen2_moe", dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)),
    # DeepSeek-V2's latent attention with a gated MLP in every layer
    ("minicpm3", dict(kv_lora_rank=16, q_lora_rank=24, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=12)),
    # (its rotary tables are head_dim wide: the rotary part of a head, qk_rope_head_dim)
    (
        "youtu",
        dict(
            num_key_value_heads=4, kv_lora_rank=16, q_lora_rank=None, qk_nope_head_dim=8, qk_rope_head_dim=4, head_dim=4
        ),
    ),
    ("solar_open", dict(n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, n_shared_experts=2)),
    ("smollm3", dict(pad_token_id=0, num_hidden_layers=4)),  # a NoPE layer every fourth
    ("olmo3", dict(num_hidden_layers=4, sliding_window=4)),  # three sliding layers, then a global one
    ("exaone4", dict(num_hidden_layers=4, sliding_window=4)),  # the global layer without rotary positions
    ("cohere2", dict(num_hidden_layers=4, sliding_window=4)),
    ("glm", dict(pad_token_id=0)),
    ("glm4", dict(pad_token_id=0)),
    ("arcee", {}),
    ("jais2", dict(eos_token_id=0)),  # Arcee's MLP between LayerNorms, biases on the attention and the MLP
    ("jais2", dict(eos_token_id=0, mlp_bias=False, attention_bias=False, tie_word_embeddings=True)),
    ("vaultgemma", dict(num_hidden_layers=4, sliding_window=4)),
    ("phi", dict(num_key_value_heads=4)),  # a head_dim field that PhiAttention reads, rope=0.5
    ("gpt_bigcode", {}),  # multi_query: one key/value head
    # window_size > T: transformers caches every position, as many as a local layer keeps (tests/test_hf_ln_decoders.py)
    ("gpt_neo", dict(attention_types=[[["global", "local"], 1]], window_size=32)),
    ("mpt", dict(max_seq_len=T)),  # ALiBi
    ("camembert", dict(is_decoder=True)),  # RoBERTa's code, built as CamembertForCausalLM
    ("data2vec-text", dict(is_decoder=True)),  # RoBERTa's code, built as Data2VecTextForCausalLM
    ("roberta-prelayernorm", dict(is_decoder=True)),  # pre-norm layers, a LayerNorm after the last
    ("xlm-roberta-xl", dict(is_decoder=True)),  # pre-norm, no LayerNorm after the embeddings
    ("ernie", dict(is_decoder=True, use_task_id=True)),  # BERT's with a task-type table
]

# (model_type, config fields, words of the refusal): refused, naming what the language lacks
GPT2 = dict(vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=64)
BART = dict(
    vocab_size=100,
    d_model=64,
    encoder_layers=1,
    decoder_layers=1,
    encoder_attention_heads=4,
    decoder_attention_heads=4,
    encoder_ffn_dim=96,
    decoder_ffn_dim=96,
    max_position_embeddings=64,
)
FULL = ["full_attention", "full_attention"]
MIXED = ["sliding_attention", "full_attention"]
REFUSED = [
    ("apertus", dict(SMALL), "hidden_act='xielu': xIELU learns two numbers"),
    ("ctrl", dict(n_embd=64, n_layer=2, n_head=4, dff=96), "the Hugging Face family 'ctrl' is not one paramsym reads"),
    ("gpt2", dict(GPT2, add_cross_attention=True), "with add_cross_attention=True"),
    ("gpt2", dict(GPT2, n_positions=8), "a sequence of 16 has positions it cannot look up"),
    ("gemma3_text", dict(SMALL, use_bidirectional_attention=True), "use_bidirectional_attention=True"),
    ("bart", dict(BART, tie_word_embeddings=False), "module 'model.shared' (BartScaledWordEmbedding) holds"),
    # transformers' cache follows config.layer_types, the attention sliding_window: a KV cache that the two disagree
    # on (the sweep's probes found the program counting the window while the cache kept every position)
    ("llama", dict(SMALL, sliding_window=4, layer_types=FULL), "transformers' cache follows layer_types"),
    ("mistral", dict(SMALL, sliding_window=4, layer_types=FULL), "transformers' cache follows layer_types"),
    ("ministral3", dict(SMALL, sliding_window=4, layer_types=FULL), "transformers' cache follows layer_types"),
    ("starcoder2", dict(SMALL, sliding_window=4, layer_types=FULL), "transformers' cache follows layer_types"),
    ("olmo2", dict(SMALL, sliding_window=4, layer_types=MIXED), "transformers' cache follows layer_types"),
    # a family without a window in its layout: a sliding_window in its config would slide transformers' cache
    ("gpt2", dict(GPT2, sliding_window=4), "transformers' cache would keep only the last positions"),
    ("gpt_neox", dict(SMALL, sliding_window=4), "transformers' cache would keep only the last positions"),
    ("llama", dict(SMALL, attention_chunk_size=4), "attention_chunk_size=4"),  # a cache of chunks
    ("xmod", dict(SMALL), "an adapter for each of config.languages"),  # per-language adapters
    ("megatron-bert", dict(SMALL), "a run on the meta device"),  # its forward reads values of the ids
    ("nanochat", dict(SMALL), "no qk_norm of the language has"),  # q_norm, k_norm without a weight
    ("bitnet", dict(SMALL), "self_attn.attn_sub_norm"),  # an RMSNorm before o_proj
    # Solar Open's Llama attention turns whole heads: GLM-4.5-MoE's half-rotary tables would fail its forward pass
    ("solar_open", dict(SMALL, partial_rotary_factor=0.5), "which its attention turns whole (its forward pass would"),
]

# (model_type, config fields, words): transformers itself does not build the model
UNBUILT = [
    (
        "bert",
        dict(vocab_size=100, hidden_size=64, num_hidden_layers=1, num_attention_heads=4, add_cross_attention=True),
        "transformers cannot build AutoModelForCausalLM from it: ValueError: BertLayer( … ) should be used as a "
        "decoder model if cross attention is added",
    ),
    ("clipseg_text_model", {}, "transformers has no language model for the model_type 'clipseg_text_model'"),
]


def built(model_type: str, fields: dict):
    return model_from_config({"model_type": model_type, **fields}, f"{model_type} config").eval()


@pytest.mark.parametrize("model_type,fields", EXACT, ids=[f"{t}-{i}" for i, (t, _) in enumerate(EXACT)])
def test_exact_imports_count_what_the_model_holds(model_type, fields):
    model = built(model_type, dict(SMALL, **fields))
    assert model.config.model_type == model_type
    text = paramsym.from_torch(model, T)
    theirs, cache = hf_counts(model, T)
    ours = program_counts(text)
    assert differences(ours, theirs) == []
    assert ours[0] == theirs.params > 0
    assert ours[3] == theirs.macs > 0  # every MAC here is a matrix product that FlopCounterMode counts
    assert paramsym.parse(text).evaluate()["kv_cache"] == cache > 0  # what transformers' cache keeps


@pytest.mark.parametrize("model_type,fields,words", REFUSED, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(REFUSED)])
def test_refusals_name_what_is_lacking(model_type, fields, words):
    model = built(model_type, fields)
    with pytest.raises(ImportRefused) as caught:
        paramsym.from_torch(model, T)
    assert words in str(caught.value)


@pytest.mark.parametrize("model_type,fields,words", UNBUILT, ids=[t for t, _, _ in UNBUILT])
def test_configs_transformers_does_not_build_say_why(model_type, fields, words):
    with pytest.raises(ParamsymUsageError) as caught:
        built(model_type, fields)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value).split("hint:")[0].strip()
