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
