"""Gated shared experts and the Qwen families (docs/language.md "Gates, experts and shared weights", docs/zoo.md):

- a per-token gate on a sequence, `mul(id | dense(->1) > sigmoid)` on `T x d`: the gate (`T x 1`) is broadcast over
  the channels, as PyTorch broadcasts (N, T, d) * (N, T, 1); checked against PyTorch modules (params, output shape,
  MACs by FlopCounterMode), the PyTorch and Keras exports;
- Qwen2-MoE's sparse block, `add(moe(expert, experts=E, top=k) | mul(shared_expert | dense(->1) > sigmoid))`, and
  Qwen3-MoE's, checked against transformers' own modules (params, active params, MACs, output shape);
- Qwen3's attention, `attn(..., qk_norm=rms)`: an RMSNorm of the head width on the queries and on the keys;
- whole Qwen2 / Qwen2-MoE / Qwen3 / Qwen3-MoE models imported by `paramsym.from_torch`, with sliding layers named by
  config.layer_types and dense layers between sparse ones (decoder_sparse_step, mlp_only_layers): params, active
  params, KV cache against transformers' own cache;
- Qwen1.5-MoE-A2.7B (Qwen2MoeConfig's defaults) at full size on the meta device.
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

from helpers import frameworks  # noqa: E402,F401  (KERAS_BACKEND=torch before keras)
from helpers.frameworks import keras_counts, torch_params, torch_run  # noqa: E402


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def macs_of(fn) -> int:
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def counted(network):
    values = network.evaluate()
    return values["params"], [int(d) for d in network.output_shape.dims()], values["macs"]


# ---- a per-token gate on a sequence


class TokenGate(nn.Module):
    """value(x) * sigmoid(gate(x)) on (N, T, d): the gate, a Linear d -> 1, gives (N, T, 1), which PyTorch
    broadcasts over the d channels (Qwen2-MoE's shared expert behind shared_expert_gate)."""

    def __init__(self, d, width=None, bias=False):
        super().__init__()
        self.gate = nn.Linear(d, 1, bias=bias)
        self.value = (
            nn.Identity()
            if width is None
            else nn.Sequential(nn.Linear(d, width, bias=False), nn.SiLU(), nn.Linear(width, d, bias=False))
        )

    def forward(self, x):
        return self.value(x) * torch.sigmoid(self.gate(x))


# (program on T x d, the PyTorch module that computes it on (N, T, d))
GATES = [
    ("input(12x64) > mul(id | dense(->1) > sigmoid)", TokenGate(64)),
    ("input(12x64) > mul(dense(->1, bias) > sigmoid | id)", TokenGate(64, bias=True)),
    ("input(7x32) > mul(dense(->48) > silu > dense(->32) | dense(->1) > sigmoid)", TokenGate(32, 48)),
]


@pytest.mark.parametrize("program, module", GATES)
def test_a_token_gate_counts_as_pytorch(program, module):
    network = paramsym.parse(program)
    *sizes, d = counted(network)[1]
    assert counted(network) == (torch_params(module), *torch_run(module, [*sizes, d], "cl"))


@pytest.mark.parametrize("program", [program for program, _ in GATES])
def test_the_exports_count_the_same(program):
    """The PyTorch export multiplies (N, d, T) by the gate's (N, 1, T) (its sequences are channels first), which
    PyTorch broadcasts; Keras' Multiply broadcasts (N, T, d) by (N, T, 1)."""
    network = paramsym.parse(program)
    shape = counted(network)[1]
    assert counted(network) == (
        torch_params(paramsym.to_torch(network)),
        *torch_run(paramsym.to_torch(network), shape, "cf"),
    )
    model = paramsym.to_keras(paramsym.parse(program, convention="keras"))
    assert list(model.output_shape[1:]) == shape
    values = network.evaluate()
    assert keras_counts(model, shape) == (values["params"], 0, values["macs"])


def test_a_token_gate_is_symbolic():
    """No condition d = 1: the gate's one channel broadcasts over any number of channels."""
    network = paramsym.parse("input(T x d) > mul(id | dense(->1) > sigmoid)")
    assert str(network.params) == "d"
    assert [str(v) for v in network.output_shape.dims()] == ["T", "d"]
    assert network.evaluate(T=12, d=64)["params"] == 64
    assert paramsym.parse("let d = 64\ninput(12 x d) > mul(id | dense(->1) > sigmoid)").evaluate()["params"] == 64


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(12x64) > mul(id | dense(->2) > sigmoid)", "this branch gives 12 x 2"),
        ("input(12x64) > add(id | dense(->1))", "this branch gives 12 x 1"),  # add does not broadcast
    ],
)
def test_gate_mistakes(program, words):
    with pytest.raises(ParamsymError, match=words):
        paramsym.parse(program)


# ---- the sparse blocks, against transformers' own modules

EXPERT = "def expert = mul(dense(->{M}) > silu | dense(->{M})) > dense(->{d})"
SHARED = "def shared_expert = mul(dense(->{S}) > silu | dense(->{S})) > dense(->{d})"


def sparse_block(family: str, d: int, E: int, k: int, M: int, S: int | None):
    if family == "qwen2_moe":
        from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock as Block

        config = transformers.Qwen2MoeConfig(
            hidden_size=d, num_experts=E, num_experts_per_tok=k, moe_intermediate_size=M,
            shared_expert_intermediate_size=S,
        )  # fmt: skip
    else:
        from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeSparseMoeBlock as Block

        config = transformers.Qwen3MoeConfig(
            hidden_size=d, num_experts=E, num_experts_per_tok=k, moe_intermediate_size=M
        )
    torch.manual_seed(0)
    block = Block(config).eval()
    for p in block.parameters():  # random routing (the router's weights start at 0)
        nn.init.normal_(p)
    return block


# (family, d, experts, top, expert width, shared expert width, T)
BLOCKS = [
    ("qwen2_moe", 64, 4, 2, 32, 48, 12),
    ("qwen2_moe", 32, 8, 1, 16, 64, 9),
    ("qwen3_moe", 64, 4, 2, 32, None, 12),
    ("qwen3_moe", 48, 6, 3, 24, None, 5),
]


@pytest.mark.parametrize("family, d, E, k, M, S, T", BLOCKS)
def test_sparse_block_equals_transformers(family, d, E, k, M, S, T):
    """params, active params (the router, k of the E experts, the shared expert and its gate), output shape and MACs
    (FlopCounterMode counts each expert's Linears on the tokens routed to it: k experts a token, whatever the
    routing; the sigmoid, the routing weights and the sums learn nothing and count no MACs)."""
    block = sparse_block(family, d, E, k, M, S)
    lines = [EXPERT.format(M=M, d=d)]
    moe = f"moe(expert, experts={E}, top={k})"
    if S is not None:
        lines.append(SHARED.format(S=S, d=d))
        moe = f"add({moe} | mul(shared_expert | dense(->1) > sigmoid))"
    network = paramsym.parse("\n".join([*lines, f"input({T}x{d}) > {moe}"]))
    values = network.evaluate()
    x = torch.randn(1, T, d)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = block(x)
    expert = 3 * d * M
    assert values["params"] == numel(block) == E * d + E * expert + (0 if S is None else 3 * d * S + d)
    assert values["active"] == E * d + k * expert + (0 if S is None else 3 * d * S + d)
    assert [int(v) for v in network.output_shape.dims()] == list(y.shape[1:])
    assert values["macs"] == counter.get_total_flops() // 2


def test_qwen3_attention_qk_norm_is_rms_of_the_head_width():
    from transformers.models.qwen3.modeling_qwen3 import Qwen3Attention, Qwen3RotaryEmbedding

    d, h, g, e, T = 64, 4, 2, 24, 9
    config = transformers.Qwen3Config(hidden_size=d, num_attention_heads=h, num_key_value_heads=g, head_dim=e)
    config._attn_implementation = "sdpa"
    attention = Qwen3Attention(config, 0).eval()
    values = paramsym.parse(f"input({T}x{d}) > attn(heads={h}, kv_heads={g}, head_dim={e}, qk_norm=rms, rope, causal)")
    values = values.evaluate()
    assert [tuple(p.shape) for p in attention.q_norm.parameters()] == [(e,)]
    assert values["params"] == numel(attention) == 2 * d * h * e + 2 * d * g * e + 2 * e
    x = torch.zeros(1, T, d)
    cos_sin = Qwen3RotaryEmbedding(config)(x, torch.arange(T)[None])
    assert values["macs"] == macs_of(lambda: attention(x, cos_sin, None))
    assert values["kv_cache"] == 2 * T * g * e


# ---- whole models, imported

SMALL = dict(
    vocab_size=100,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
)
MOE = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)
T = 12


def build(name: str, **config):
    torch.manual_seed(0)
    return getattr(transformers, f"{name}ForCausalLM")(getattr(transformers, f"{name}Config")(**config)).eval()


def active_truth(model) -> int:
    total = numel(model)
    for module in model.modules():
        if type(module).__name__.endswith("Experts"):
            own = sum(p.numel() for p in module.parameters(recurse=False))
            total -= own - own // module.num_experts * model.config.num_experts_per_tok
    return total


def cache_truth(model, length: int) -> int:
    with torch.no_grad():
        cache = model(torch.zeros(1, length, dtype=torch.long), use_cache=True).past_key_values
    return sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)


# (family, config, the layers as the program writes them, the window of each layer (None: every position))
MODELS = [
    ("Qwen2Moe", dict(SMALL, **MOE, shared_expert_intermediate_size=48), "(block) * L", [None] * 4),
    ("Qwen2Moe", dict(SMALL, **MOE, decoder_sparse_step=2), "(dense_block > sparse_block) * 2", [None] * 4),
    (
        "Qwen2Moe",
        dict(SMALL, **MOE, mlp_only_layers=[0, 3], use_sliding_window=True, sliding_window=5, max_window_layers=2),
        "sliding_dense_block > (full_sparse_block) * 2 > full_dense_block",
        [5, None, None, None],
    ),
    ("Qwen2Moe", dict(SMALL, **MOE, shared_expert_intermediate_size=32, num_hidden_layers=1), "(block) * L", [None]),
    ("Qwen3", dict(SMALL), "(block) * L", [None] * 4),
    (
        "Qwen3",
        dict(SMALL, use_sliding_window=True, sliding_window=5, max_window_layers=1),
        "full_block > (sliding_block) * 3",
        [None, 5, 5, 5],
    ),
    (
        "Qwen2",
        dict(SMALL, use_sliding_window=True, sliding_window=4, max_window_layers=2),
        "(full_block) * 2 > (sliding_block) * 2",
        None,
    ),
    ("Qwen3Moe", dict(SMALL, **MOE), "(block) * L", [None] * 4),
    (
        "Qwen3Moe",
        dict(SMALL, **MOE, mlp_only_layers=[1], use_sliding_window=True, sliding_window=7),
        "sparse_block > dense_block > (sparse_block) * 2",
        [7] * 4,
    ),
    ("Qwen3Moe", dict(SMALL, **MOE, norm_topk_prob=True, tie_word_embeddings=True), "(block) * L", [None] * 4),
]


@pytest.mark.parametrize("name, config, layers, windows", MODELS)
def test_models_import_exactly(name, config, layers, windows):
    model = build(name, **config)
    text = paramsym.from_torch(model, T)
    values = paramsym.parse(text).evaluate()
    if layers is not None:
        assert f"> {layers} > rmsnorm" in " ".join(text.split()), text
    assert values["params"] == numel(model)
    assert values["active"] == active_truth(model)
    assert values["kv_cache"] == cache_truth(model, T)
    c = model.config
    if windows is None:  # Qwen2's sliding layers come after max_window_layers
        windows = [c.sliding_window if t == "sliding_attention" else None for t in c.layer_types]
    per_position = 2 * c.num_key_value_heads * c.head_dim
    assert values["kv_cache"] == sum(per_position * (T if w is None else min(T, w - 1)) for w in windows)


def test_a_shared_expert_is_always_active():
    with_shared = build("Qwen2Moe", **SMALL, **MOE, shared_expert_intermediate_size=48)
    values = paramsym.parse(paramsym.from_torch(with_shared, T)).evaluate()
    shared = sum(
        numel(layer.mlp.shared_expert) + numel(layer.mlp.shared_expert_gate) for layer in with_shared.model.layers
    )
    experts = sum(numel(layer.mlp.experts) for layer in with_shared.model.layers)
    assert values["params"] - values["active"] == experts // 2  # 2 of the 4 experts a token
    assert shared == 4 * (3 * 64 * 48 + 64)


def test_a_shared_expert_gate_of_two_values_is_refused():
    model = build("Qwen2Moe", **dict(SMALL, **MOE, num_hidden_layers=1))
    model.model.layers[0].mlp.shared_expert_gate = nn.Linear(64, 2, bias=False)
    with pytest.raises(ParamsymError, match=r"layers\.0\.mlp\.shared_expert_gate \(Linear\) is not a Linear to one"):
        paramsym.from_torch(model, T)


def test_an_attention_window_that_layer_types_does_not_name_is_refused():
    model = build("Qwen3", **SMALL)
    model.model.layers[2].self_attn.sliding_window = 8
    with pytest.raises(ParamsymError, match=r"layers\.2\.self_attn slides over 8 positions, but config\.layer_types"):
        paramsym.from_torch(model, T)


def test_a_mistral_with_layer_types_is_refused():
    """Mistral's attention slides on every layer (sliding_window), but transformers' cache follows layer_types: the
    KV cache would be neither's."""
    model = build(
        "Mistral",
        **dict(SMALL, num_hidden_layers=2),
        sliding_window=5,
        layer_types=["sliding_attention", "full_attention"],
    )
    with pytest.raises(ParamsymError, match=r"its attention slides on every layer or none .* the two disagree"):
        paramsym.from_torch(model, T)


# ---- full size


def test_qwen1_5_moe_a2_7b_at_full_size():
    """Qwen2MoeConfig's defaults are Qwen1.5-MoE-A2.7B's config: 14.3B parameters, 2.7B active (60 experts of 1408,
    4 a token, a shared expert of 5632 behind its gate, in each of 24 layers; q, k, v biases)."""
    with torch.device("meta"):
        model = transformers.Qwen2MoeForCausalLM(transformers.Qwen2MoeConfig())
    text = paramsym.from_torch(model, 4096)
    values = paramsym.parse(text).evaluate()
    assert "add(moe(expert, experts=E, top=k) | mul(shared_expert | dense(->1) > sigmoid))" in " ".join(text.split())
    assert values["params"] == numel(model) == 14_315_784_192
    assert values["active"] == active_truth(model) == 2_689_173_504
    assert values["kv_cache"] == 24 * 2 * 16 * 128 * 4096


def test_the_example_is_the_model():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "examples" / "qwen1_5_moe_a2_7b.psym").read_text()
    values = paramsym.parse(text).evaluate()
    assert (values["params"], values["active"]) == (14_315_784_192, 2_689_173_504)


@pytest.mark.parametrize(
    "name, config",
    [
        ("Qwen2Moe", dict(SMALL, **MOE, shared_expert_intermediate_size=48, decoder_sparse_step=2)),
        ("Qwen3", dict(SMALL, num_hidden_layers=2)),
        ("Qwen3Moe", dict(SMALL, **MOE, num_hidden_layers=2)),
    ],
)
def test_models_macs_equal_flop_counter(name, config):
    """MACs of the imported program against FlopCounterMode on one forward pass of T tokens (the math SDPA
    kernel: every T x T pair, as paramsym counts causal attention; each token through k experts)."""
    model = build(name, **config)
    for p in model.parameters():  # random routing (the routers' weights start at 0)
        nn.init.normal_(p, std=0.02)
    model.config._attn_implementation = "sdpa"
    values = paramsym.parse(paramsym.from_torch(model, T)).evaluate()
    model.config._experts_implementation = (
        "eager"  # a Linear per expert on its tokens, which FlopCounterMode counts (after
    )
    # the import, which runs on meta)
    ids = torch.randint(0, 100, (1, T))
    assert values["macs"] == macs_of(lambda: model(ids, use_cache=False))
