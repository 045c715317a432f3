"""Published configurations of language models (Hugging Face config keys), shared by the tests that build them
on the meta device (tests/test_lm_zoo.py) and benchmarks/import_speed.py."""

GPT3 = dict(n_embd=12288, n_layer=96, n_head=96, n_positions=2048)  # Brown et al. 2020, table 2.1 (GPT-3 175B)
LLAMA2_7B = dict(
    vocab_size=32000,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    tie_word_embeddings=False,
)
LLAMA3_8B = dict(
    vocab_size=128256,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=8192,
    tie_word_embeddings=False,
)
QWEN2_5_7B = dict(  # Qwen/Qwen2.5-7B's config.json (Qwen2Config keys)
    vocab_size=152064,
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    max_position_embeddings=32768,
    tie_word_embeddings=False,
)
LLAMA3_70B = dict(  # meta-llama/Meta-Llama-3-70B's config.json
    vocab_size=128256,
    hidden_size=8192,
    intermediate_size=28672,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    max_position_embeddings=8192,
    tie_word_embeddings=False,
)
PHI3_MINI = dict(  # microsoft/Phi-3-mini-4k-instruct's config.json (Phi3Config keys)
    vocab_size=32064,
    hidden_size=3072,
    intermediate_size=8192,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=4096,
    sliding_window=2047,
    pad_token_id=32000,
    tie_word_embeddings=False,
)
GEMMA2_9B = dict(  # google/gemma-2-9b's config.json (Gemma2Config keys)
    vocab_size=256000,
    hidden_size=3584,
    intermediate_size=14336,
    num_hidden_layers=42,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=256,
    max_position_embeddings=8192,
    sliding_window=4096,
    query_pre_attn_scalar=256,
    attn_logit_softcapping=50.0,
    final_logit_softcapping=30.0,
)
DEEPSEEK_V2_LITE = dict(  # deepseek-ai/DeepSeek-V2-Lite's config.json (DeepseekV2Config keys)
    vocab_size=102400,
    hidden_size=2048,
    intermediate_size=10944,
    moe_intermediate_size=1408,
    num_hidden_layers=27,
    num_attention_heads=16,
    num_key_value_heads=16,
    kv_lora_rank=512,
    q_lora_rank=None,
    qk_nope_head_dim=128,
    qk_rope_head_dim=64,
    v_head_dim=128,
    n_routed_experts=64,
    n_shared_experts=2,
    num_experts_per_tok=6,
    first_k_dense_replace=1,
    n_group=1,
    topk_group=1,
    topk_method="greedy",
    routed_scaling_factor=1.0,
    norm_topk_prob=False,
    max_position_embeddings=163840,
    rms_norm_eps=1e-6,
    attention_bias=False,
    tie_word_embeddings=False,
)
# a small Llama-layout config (Hugging Face keys) the family and layout-reader tests build on the CPU
SMALL = dict(
    vocab_size=100,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
)
