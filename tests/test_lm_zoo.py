"""The language-model zoo in examples/ against the frameworks' own models: Hugging Face
`transformers` built from a config on the meta device (no weights, no downloads) and
torchvision's ViT. Parameters are what `sum(p.numel() for p in model.parameters())`
gives (PyTorch counts a shared parameter once, which is how a tied output layer counts)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy

import paramsym
from helpers.lm_configs import (
    DEEPSEEK_V2_LITE,
    GEMMA2_9B,
    GPT3,
    LLAMA2_7B,
    LLAMA3_8B,
    LLAMA3_70B,
    PHI3_MINI,
    QWEN2_5_7B,
)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(build):
    with torch.device("meta"):
        return build()


def program(name: str) -> str:
    return (EXAMPLES / f"{name}.psym").read_text()


def gpt2(**config):
    return on_meta(lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config(**config)))


def t5(**config):
    return on_meta(lambda: transformers.T5ForConditionalGeneration(transformers.T5Config(**config)))


def llama(**config):
    return on_meta(lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(**config)))


# (example, the framework's model, the reference count of the issue or None)
MODELS = [
    ("gpt2", lambda: gpt2(), 124_439_808),
    ("gpt2_medium", lambda: gpt2(n_embd=1024, n_layer=24, n_head=16), 354_823_168),
    ("gpt3", lambda: gpt2(**GPT3), None),
    ("bert_base", lambda: on_meta(lambda: transformers.BertModel(transformers.BertConfig())), 109_482_240),
    ("llama2_7b", lambda: llama(**LLAMA2_7B), 6_738_415_616),
    ("llama3_8b", lambda: llama(**LLAMA3_8B), 8_030_261_248),
    (
        "mistral_7b",
        lambda: on_meta(lambda: transformers.MistralForCausalLM(transformers.MistralConfig())),
        7_241_732_096,
    ),
    (
        "mixtral_8x7b",
        lambda: on_meta(lambda: transformers.MixtralForCausalLM(transformers.MixtralConfig())),
        46_702_792_704,
    ),
    (  # Qwen2MoeConfig's defaults are Qwen1.5-MoE-A2.7B's (2,689,173,504 active: tests/test_hf_shared_experts.py)
        "qwen1_5_moe_a2_7b",
        lambda: on_meta(lambda: transformers.Qwen2MoeForCausalLM(transformers.Qwen2MoeConfig())),
        14_315_784_192,
    ),
    (
        "qwen2_5_7b",
        lambda: on_meta(lambda: transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**QWEN2_5_7B))),
        7_615_616_512,
    ),
    ("llama3_70b", lambda: llama(**LLAMA3_70B), 70_553_706_496),
    (
        "phi3_mini",
        lambda: on_meta(lambda: transformers.Phi3ForCausalLM(transformers.Phi3Config(**PHI3_MINI))),
        3_821_079_552,
    ),
    (
        "gemma2_9b",
        lambda: on_meta(lambda: transformers.Gemma2ForCausalLM(transformers.Gemma2Config(**GEMMA2_9B))),
        9_241_705_984,
    ),
    ("deepseek_v2_lite", lambda: deepseek_v2_lite(), 15_706_484_224),
    # an encoder-decoder (two inputs: S and T): transformers' T5Config() is t5-small; t5-base's sizes
    ("t5_base", lambda: t5(d_model=768, d_ff=3072, num_layers=12, num_heads=12), 222_903_552),
]


def deepseek_v2_lite():
    return on_meta(lambda: transformers.DeepseekV2ForCausalLM(transformers.DeepseekV2Config(**DEEPSEEK_V2_LITE)))


def test_t5_base_imports_as_the_example_counts():
    """T5-base read by its config (`from_torch`) counts as the hand-written example, at any S and T."""
    from paramsym.frameworks.importer import from_torch

    model = t5(d_model=768, d_ff=3072, num_layers=12, num_heads=12)
    imported = paramsym.parse(from_torch(model, 512))
    example = paramsym.parse(program("t5_base"))
    for lengths in ({}, {"S": 512, "T": 128}):
        a, b = imported.evaluate(**lengths), example.evaluate(**lengths)
        assert (a["params"], a["kv_cache"], a["macs"]) == (b["params"], b["kv_cache"], b["macs"])


@pytest.mark.parametrize("name,build,reference", MODELS, ids=[m[0] for m in MODELS])
def test_language_models_equal_hugging_face(name, build, reference):
    model = build()
    net = paramsym.parse(program(name))
    assert net.evaluate()["params"] == numel(model)
    if reference is not None:
        assert numel(model) == reference


def test_gpt3_is_175_billion():
    """GPT-3 175B's count from the framework (GPT2LMHeadModel built from the paper's sizes on the meta device)
    and by hand, not from paramsym's output: in GPT-2's layout, each of the L blocks has 12·d² + 13·d parameters
    (q, k, v and output projections 4d² + 4d, the MLP 8d² + 5d, two LayerNorms 4d); then the token and
    position embeddings V·d + n·d and the final LayerNorm 2d; the output layer is the embedding."""
    L, d, V, n = 96, 12288, 50257, 2048
    by_hand = L * (12 * d**2 + 13 * d) + V * d + n * d + 2 * d
    model = gpt2(**GPT3)
    assert numel(model) == by_hand
    assert paramsym.parse(program("gpt3")).evaluate()["params"] == by_hand
    assert round(by_hand / 1e9, 1) == 174.6  # the paper's "175.0B" is this, rounded up


def test_mixtral_active_parameters_from_the_model():
    """Active: everything but the experts a token does not go through (E - k of E in every layer)."""
    config = transformers.MixtralConfig()
    model = on_meta(lambda: transformers.MixtralForCausalLM(config))
    experts = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    unused = experts * (config.num_local_experts - config.num_experts_per_tok) // config.num_local_experts
    net = paramsym.parse(program("mixtral_8x7b"))
    assert net.evaluate()["active"] == numel(model) - unused == 12_879_925_248
    dense = paramsym.parse(program("mistral_7b"))
    assert dense.evaluate()["active"] == dense.evaluate()["params"]


@pytest.mark.parametrize(
    "name,build,length",
    [
        ("llama3_70b", lambda: llama(**LLAMA3_70B), 8192),
        (
            "phi3_mini",
            lambda: on_meta(lambda: transformers.Phi3ForCausalLM(transformers.Phi3Config(**PHI3_MINI))),
            4096,
        ),
    ],
)
def test_the_example_is_what_the_import_reads(name, build, length):
    """The example written by hand (at its `let T`) and the program read from the model count the same
    parameters, MACs and KV cache (Phi-3-mini's sliding window of 2,047: 2,046 positions a layer)."""
    example = paramsym.parse(program(name)).evaluate()
    imported = paramsym.parse(paramsym.from_torch(build(), length)).evaluate()
    for quantity in ("params", "active", "kv_cache", "macs"):
        assert example[quantity] == imported[quantity], quantity
    if name == "phi3_mini":
        assert example["kv_cache"] == 2 * 32 * 3072 * 2046


def test_gpt2_symbolic_formula():
    net = paramsym.parse(program("gpt2_symbolic"))
    L, d = net.symbols["L"], net.symbols["d"]
    # V = 50257 and n = 1024 are `let` defaults (symbols in the formula); with them, in L and d alone:
    assert sympy.expand(net.bind(net.params, free=(L, d)) - (12 * L * d**2 + 13 * L * d + 51283 * d)) == 0
    for L_, d_, h_ in ((12, 768, 12), (24, 1024, 16), (6, 256, 4)):
        assert net.evaluate(L=L_, d=d_, h=h_)["params"] == numel(gpt2(n_embd=d_, n_layer=L_, n_head=h_))


def test_gpt2_kv_cache_and_tie():
    net = paramsym.parse(program("gpt2"))
    values = net.evaluate()
    assert values["kv_cache"] == 2 * 12 * 1024 * 768  # keys and values of 1024 positions in 12 blocks
    head = net.layers[-1]
    assert head.layer.options.tie.name == "wte"
    assert net.value(head.params) == 0  # the output layer's weight is the embedding's


def test_gpt2_macs_equal_flop_counter():
    """FlopCounterMode counts the projections (addmm), the attention products
    (scaled_dot_product_attention) and the output layer; MACs are FLOPs / 2."""
    from torch.utils.flop_counter import FlopCounterMode

    model = gpt2(n_embd=64, n_layer=2, n_head=4, n_positions=32, vocab_size=100)
    net = paramsym.parse(
        program("gpt2_symbolic").replace("let V = 50257", "let V = 100").replace("let n = 1024", "let n = 32"),
        d=64,
        L=2,
        h=4,
    )
    ids = torch.zeros(1, 32, dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as counter:
        model(ids)
    assert net.evaluate()["macs"] == counter.get_total_flops() // 2


def test_vit_b_16_equals_torchvision():
    torchvision = pytest.importorskip("torchvision")
    from torch.utils.flop_counter import FlopCounterMode

    model = on_meta(lambda: torchvision.models.vit_b_16())
    net = paramsym.parse(program("vit_b_16"))
    assert net.evaluate()["params"] == numel(model) == 86_567_656
    # in training mode nn.MultiheadAttention leaves its fast path (which FlopCounterMode counts as 0)
    # for scaled_dot_product_attention, which it counts
    model.train()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 224, 224, device="meta"))
    assert net.evaluate()["macs"] == counter.get_total_flops() // 2


# ---- import: the model's layout read back as a program --------------------------------------------

IMPORTS = [
    ("gpt2 tied", lambda: gpt2(n_embd=64, n_layer=3, n_head=4, n_positions=128, vocab_size=500), "tie=wte"),
    (
        "gpt2 untied",
        lambda: gpt2(n_embd=64, n_layer=3, n_head=4, n_positions=128, vocab_size=500, tie_word_embeddings=False),
        "> dense(->V)",
    ),
    (
        "gpt2 without head",
        lambda: on_meta(lambda: transformers.GPT2Model(transformers.GPT2Config(n_layer=2))),
        "> ln\n",
    ),
    ("gpt2 small", lambda: gpt2(), "tie=wte"),
    ("bert", lambda: on_meta(lambda: transformers.BertModel(transformers.BertConfig())), "tanh"),
    (
        "bert without pooler",
        lambda: on_meta(lambda: transformers.BertModel(transformers.BertConfig(), add_pooling_layer=False)),
        "> (block) * L\n",
    ),
    ("llama-2-7b", lambda: llama(**LLAMA2_7B), "attn(heads=h, rope, causal)"),
    ("llama-3-8b", lambda: llama(**LLAMA3_8B), "kv_heads=g"),
    (
        "llama tied with biases",
        lambda: llama(
            vocab_size=300,
            hidden_size=64,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=True,
            attention_bias=True,
            mlp_bias=True,
        ),
        "tie=wte",
    ),
    ("mistral", lambda: on_meta(lambda: transformers.MistralForCausalLM(transformers.MistralConfig())), "kv_heads=g"),
    (
        "mixtral",
        lambda: on_meta(lambda: transformers.MixtralForCausalLM(transformers.MixtralConfig())),
        "moe(expert, experts=E, top=k)",
    ),
]


@pytest.mark.parametrize("name,build,says", IMPORTS, ids=[i[0] for i in IMPORTS])
def test_import_reads_hugging_face_models_exactly(name, build, says):
    from paramsym.frameworks.importer import from_torch

    model = build()
    text = from_torch(model, 128)
    assert says in text, text
    net = paramsym.parse(text)
    assert net.evaluate()["params"] == numel(model)
    assert "def block" in text and "(block) * L" in text  # readable: one block, repeated


def test_import_reads_torchvision_vits():
    torchvision = pytest.importorskip("torchvision")
    from paramsym.frameworks.importer import from_torch

    for build in (torchvision.models.vit_b_16, torchvision.models.vit_b_32, torchvision.models.vit_l_16):
        model = on_meta(build)
        text = from_torch(model, "224x224x3")
        assert paramsym.parse(text).evaluate()["params"] == numel(model)


def test_import_refuses_a_family_it_does_not_read():
    from paramsym import ParamsymError
    from paramsym.frameworks.importer import from_torch

    # a state-space model (Mamba): no attention, a family no reader writes
    model = on_meta(lambda: transformers.MambaForCausalLM(transformers.MambaConfig(num_hidden_layers=1)))
    with pytest.raises(ParamsymError, match="'mamba' is not one paramsym reads"):
        from_torch(model, 128)


def test_llama_with_a_free_width_equals_hugging_face():
    net = paramsym.parse(program("llama_symbolic"))
    for d in (384, 3840):
        model = llama(
            vocab_size=32000,
            hidden_size=d,
            intermediate_size=8 * d // 3,
            num_hidden_layers=32,
            num_attention_heads=d // 128,
            num_key_value_heads=d // 128,
            head_dim=128,
            tie_word_embeddings=False,
        )
        assert net.evaluate(d=d)["params"] == numel(model)
    with pytest.raises(paramsym.ParamsymError, match="8\\*d/3 must be a positive whole number"):
        net.evaluate(d=4096)  # 8*4096/3 is not whole
    with pytest.raises(paramsym.ParamsymError, match="d/128 must be a positive whole number"):
        net.evaluate(d=3000)


def test_gemma2_9b_kv_cache_is_what_its_config_implies():
    """At T = 8,192 (its context): the 21 global layers keep the keys and values of all 8,192 positions, the 21
    local ones of the last sliding_window - 1 = 4,095 (transformers' DynamicSlidingWindowLayer), counted from the
    config's layer_types; the program read from the model (from_torch) says the same."""
    config = transformers.Gemma2Config(**GEMMA2_9B)
    T, W = 8192, config.sliding_window
    per_position = 2 * config.num_key_value_heads * config.head_dim
    kinds = config.layer_types
    assert kinds.count("full_attention") == kinds.count("sliding_attention") == 21
    expected = sum(per_position * (min(T, W - 1) if k == "sliding_attention" else T) for k in kinds)
    assert expected == per_position * (21 * 8192 + 21 * 4095) == 1_056_878_592
    assert paramsym.parse(program("gemma2_9b")).evaluate(T=T)["kv_cache"] == expected
    model = on_meta(lambda: transformers.Gemma2ForCausalLM(config))
    assert paramsym.parse(paramsym.from_torch(model, T)).evaluate()["kv_cache"] == expected


def test_deepseek_v2_lite_active_parameters_and_cache():
    """Active: everything but the routed experts a token does not visit (58 of 64 in each of the 26 MoE layers),
    from the model's own expert tensors; the published "2.4B activated" leaves out the input embedding (a lookup).
    The KV cache is MLA's: the latent and the rotary key, 512 + 64 values per position and layer, which is what
    transformers 5.23 keeps (k_nope and k_pe)."""
    config = DEEPSEEK_V2_LITE
    model = deepseek_v2_lite()
    experts = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
    E, k = config["n_routed_experts"], config["num_experts_per_tok"]
    active = numel(model) - experts * (E - k) // E
    values = paramsym.parse(program("deepseek_v2_lite")).evaluate()
    assert values["active"] == active == 2_661_150_208
    embedding = config["vocab_size"] * config["hidden_size"]
    assert active - embedding == 2_451_435_008  # 2.45B: the published 2.4B
    assert values["kv_cache"] == 27 * 32768 * (512 + 64)
    # the program the import writes counts the same
    imported = paramsym.parse(paramsym.from_torch(model, 32768)).evaluate()
    assert (imported["params"], imported["active"], imported["kv_cache"]) == (
        values["params"],
        values["active"],
        values["kv_cache"],
    )
