"""attn(..., rope): rotary positions, exported to PyTorch as Llama computes them and read back;
refused by Keras; the head width must be even."""

from __future__ import annotations

import pytest
import torch

import paramsym
from helpers.cli_helpers import run


def _exported(program: str) -> torch.nn.Module:
    return paramsym.to_torch(paramsym.parse(program))


@pytest.mark.parametrize("heads, kv_heads, width", [(4, 2, 64), (4, 4, 32), (8, 1, 64), (2, 2, 8)])
def test_rope_equals_hugging_face_llama_attention(heads, kv_heads, width):
    transformers = pytest.importorskip("transformers")
    from transformers.models.llama import modeling_llama

    config = transformers.LlamaConfig(
        hidden_size=width,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        attention_bias=False,
        intermediate_size=4 * width,
        num_hidden_layers=1,
        vocab_size=16,
    )
    config._attn_implementation = "sdpa"  # causal when no mask is given
    hf = modeling_llama.LlamaAttention(config, layer_idx=0).eval()
    rotary = modeling_llama.LlamaRotaryEmbedding(config)
    ours = _exported(f"input(10x{width}) > attn(heads={heads}, kv_heads={kv_heads}, causal, rope)")
    modules = [m for m in ours.modules() if type(m).__name__ == "GroupedQueryAttention"]
    assert len(modules) == 1 and modules[0].rope
    attention = modules[0]
    with torch.no_grad():
        for mine, theirs in (
            (attention.q, hf.q_proj),
            (attention.k, hf.k_proj),
            (attention.v, hf.v_proj),
            (attention.o, hf.o_proj),
        ):
            mine.weight.copy_(theirs.weight)
        x = torch.randn(3, 10, width)
        cos_sin = rotary(x, torch.arange(10).unsqueeze(0))
        expected = hf(x, position_embeddings=cos_sin, attention_mask=None)[0]
        got = ours(x.movedim(-1, 1)).movedim(1, -1)  # ours takes channels first
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    # the rotation is elementwise: the counter sees the projections and the products, as paramsym counts
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        ours(torch.randn(1, width, 10))
    program = f"input(10x{width}) > attn(heads={heads}, kv_heads={kv_heads}, causal, rope)"
    assert counter.get_total_flops() // 2 == paramsym.parse(program).evaluate()["macs"]
    assert (
        sum(p.numel() for p in ours.parameters())
        == sum(p.numel() for p in hf.parameters())
        == paramsym.parse(f"input(10x{width}) > attn(heads={heads}, kv_heads={kv_heads}, causal, rope)").evaluate()[
            "params"
        ]
    )


def test_rope_round_trips_through_the_import():
    program = "input(12x48) > attn(heads=4, kv_heads=2, rope, causal)"
    imported = paramsym.from_torch(_exported(program), input_shape=(12, 48))
    assert "rope" in imported and "causal" in imported and "kv_heads=2" in imported
    assert paramsym.parse(imported).evaluate() == paramsym.parse(program).evaluate()


def test_keras_refuses_rope():
    result = run("export", "input(12x48) > attn(heads=4, rope)", "--to", "keras")
    assert result.returncode == 2 and "rotary positions (rope) have no layer in keras.layers" in result.stderr


@pytest.mark.parametrize(
    "program, column, words",
    [
        ("input(16x12) > attn(heads=4, rope)", 30, "the head width 3 is odd"),
        ("input(16x64) > attn(heads=4, head_dim=5, rope)", 42, "the head width 5 is odd"),
    ],
)
def test_odd_head_width_is_refused(program, column, words):
    with pytest.raises(paramsym.ParamsymError) as caught:
        paramsym.parse(program)
    assert words in str(caught.value) and caught.value.pos.column == column


def test_odd_head_width_of_a_symbol_waits_for_its_value():
    network = paramsym.parse("input(16 x d) > attn(heads=4, rope)")
    assert network.evaluate(d=16)["params"] == 4 * 16**2
    with pytest.raises(paramsym.ParamsymError, match="head width d/4 is odd: with d=12 it is 3"):
        network.evaluate(d=12)
