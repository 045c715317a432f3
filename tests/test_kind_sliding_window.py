"""`attn(..., window=W, causal)` on a sequence: a sliding window (Mistral v0.1, Gemma-2's local layers), tested
against transformers 5.23 models built small on the CPU with real tensors: parameters, the KV cache that a forward
with use_cache=True really keeps (its tensors' shapes), and MACs against FlopCounterMode (which counts every pair of
the masked attention). The export computes the masked attention and counts the same."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.round_trip import import_back

transformers = pytest.importorskip("transformers")


def macs_of(module: nn.Module, *args, **kwargs) -> int:
    """FlopCounterMode's MACs, F.scaled_dot_product_attention in PyTorch's math backend (the fused CPU kernel
    counts 0 for its two products); the masked pairs are counted as the others are."""
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args, **kwargs)
    return counter.get_total_flops() // 2


def run(model: nn.Module, T: int, V: int) -> tuple[int, int]:
    """(cache values, MACs) of one forward of T tokens with use_cache=True. The models use eager attention, two
    matmuls over all T x T pairs with the sliding mask added, which FlopCounterMode counts (on the CPU it counts
    nothing for the fused kernel that SDPA picks for real tensors)."""
    model.eval()
    ids = torch.randint(0, V, (1, T))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(ids, use_cache=True)
    cache = sum(layer.keys.numel() + layer.values.numel() for layer in out.past_key_values.layers)
    return cache, counter.get_total_flops() // 2


def mistral(T: int, w: int, V=20, d=16, L=2, h=2, g=1, e=8, F=24):
    config = transformers.MistralConfig(
        vocab_size=V,
        hidden_size=d,
        intermediate_size=F,
        num_hidden_layers=L,
        num_attention_heads=h,
        num_key_value_heads=g,
        head_dim=e,
        sliding_window=w,
        tie_word_embeddings=False,
        attn_implementation="eager",
    )
    program = (
        f"input({T}) > embed({V}->{d}) > (res(rmsnorm > attn(heads={h}, kv_heads={g}, head_dim={e}, window={w}, "
        f"rope, causal)) > res(rmsnorm > mul(dense(->{F}) > silu | dense(->{F})) > dense(->{d}))) * {L} > rmsnorm > "
        f"dense(->{V})"
    )
    return transformers.MistralForCausalLM(config), program


def gemma2(T: int, w: int, V=20, d=16, L=4, h=2, g=1, e=8, F=24):
    """Gemma-2: local (sliding) and global layers alternate, the local first; four norms a block."""
    config = transformers.Gemma2Config(
        vocab_size=V,
        hidden_size=d,
        intermediate_size=F,
        num_hidden_layers=L,
        num_attention_heads=h,
        num_key_value_heads=g,
        head_dim=e,
        sliding_window=w,
        attn_implementation="eager",
    )

    def block(window: str) -> str:
        return (
            f"res(rmsnorm > attn(heads={h}, kv_heads={g}, head_dim={e}{window}, rope, causal) > rmsnorm) > "
            f"res(rmsnorm > mul(dense(->{F}) > gelu | dense(->{F})) > dense(->{d}) > rmsnorm)"
        )

    program = (
        f"input({T}) > embed({V}->{d}) as wte > ({block(f', window={w}')} > {block('')}) * {L // 2} > rmsnorm > "
        f"dense(->{V}, tie=wte)"
    )
    return transformers.Gemma2ForCausalLM(config), program


# (family, T, w): shorter than the window, at w - 1, at w, longer; a window of 1 and 2
CASES = [
    (mistral, 5, 8),
    (mistral, 7, 8),
    (mistral, 8, 8),
    (mistral, 13, 6),
    (mistral, 6, 2),
    (gemma2, 5, 8),
    (gemma2, 8, 8),
    (gemma2, 12, 4),
]


@pytest.mark.parametrize("build, T, w", CASES)
def test_sliding_window_equals_hugging_face(build, T, w):
    torch.manual_seed(0)
    model, program = build(T, w)
    values = paramsym.parse(program).evaluate()
    cache, macs = run(model, T, 20)
    assert values["params"] == torch_params(model)
    assert values["kv_cache"] == cache
    assert values["macs"] == macs


def test_the_cache_keeps_w_minus_1_positions():
    """What transformers 5.23's DynamicSlidingWindowLayer keeps after a prefill of T tokens: min(T, w - 1)."""
    for T in (3, 5, 6, 9):
        model, _ = mistral(T, 6, L=1)
        cache, _ = run(model, T, 20)
        assert cache == 2 * min(T, 5) * 8


def test_a_symbolic_window():
    network = paramsym.parse("input(T x 16) > attn(heads=2, kv_heads=1, window=W, causal)")
    assert str(network.quantity("kv_cache")) == "16*Min(T, W - 1)"
    assert network.evaluate(T=100, W=8)["kv_cache"] == 16 * 7


@pytest.mark.parametrize(
    "program, says",
    [
        ("input(10x16) > attn(heads=2, window=4)", "needs 'causal'"),
        ("input(10x16) > attn(heads=2, window=0, causal)", "positive whole number, not 0"),
        ("input(10x16) > attn(heads=2, window=2.5, causal)", "positive whole number"),
        ("input(10x16) > attn(heads=2, window=4x4, causal)", "takes one value"),
        ("input(10x16) > attn(heads=2, window=4, causal, shift)", "'shift' does not go"),
        ("input(10x16) > attn(heads=2, window=4, causal, source=5x8)", "source= does not go"),
        # a map-only option says so before the missing 'causal' does (Swin V2's cpb on a sequence)
        ("input(10x16) > attn(heads=2, window=4, cpb=8, pad)", "cpb= does not go"),
    ],
)
def test_located_errors(program, says):
    with pytest.raises(paramsym.ParamsymError, match=says) as caught:
        paramsym.parse(program).evaluate()
    assert "column" in str(caught.value) or getattr(caught.value, "pos", None) is not None


def test_a_window_on_a_map_is_still_swin():
    """LANGUAGE.md: window=w on a map is attention inside w x w windows with a (2w-1)²·h table."""
    values = paramsym.parse("input(8x8x16) > attn(heads=2, window=4)").evaluate()
    assert values["params"] == 4 * 16 * 16 + (2 * 4 - 1) ** 2 * 2


@pytest.mark.parametrize("T, w, extra", [(10, 4, ""), (9, 3, ", kv_heads=1, rope"), (6, 8, ", head_dim=4")])
def test_export_masks_the_window_and_counts_the_same(T, w, extra):
    network = paramsym.parse(f"input({T}x16) > attn(heads=2{extra}, window={w}, causal)")
    module = paramsym.to_torch(network).eval()
    values = network.evaluate()
    assert torch_params(module) == values["params"]
    assert macs_of(module, torch.zeros(1, 16, T)) == values["macs"]
    text, back = import_back(network, module)
    assert f"window={w}" in text
    assert back.evaluate()["kv_cache"] == values["kv_cache"]


def test_export_attends_to_the_last_w_positions():
    """The exported mask: changing a token more than w - 1 positions back leaves a position's output unchanged."""
    torch.manual_seed(0)
    module = paramsym.to_torch(paramsym.parse("input(10x16) > attn(heads=2, window=3, causal)")).eval()
    x = torch.randn(1, 16, 10)
    y = x.clone()
    y[:, :, 2] += 1.0
    with torch.no_grad():
        a, b = module(x), module(y)
    assert torch.allclose(a[:, :, 5:], b[:, :, 5:])  # position 5 sees 3, 4, 5
    assert not torch.allclose(a[:, :, 2:5], b[:, :, 2:5])


def test_keras_refuses_a_sliding_window():
    pytest.importorskip("keras")
    network = paramsym.parse("input(10x16) > attn(heads=2, window=4, causal)")
    with pytest.raises(paramsym.ParamsymError, match="sliding window"):
        paramsym.to_keras(network)


def test_query_key_norms_go_with_a_sliding_window():
    """Gemma-3's local layers: RMSNorm on the queries and keys, and a sliding window."""
    values = paramsym.parse("input(10x16) > attn(heads=2, kv_heads=1, window=4, causal, qk_norm=rms)").evaluate()
    assert values["params"] == 16 * 16 + 2 * 16 * 8 + 16 * 16 + 2 * 8
    assert values["kv_cache"] == 2 * 3 * 8
