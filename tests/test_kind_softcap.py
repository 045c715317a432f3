"""Soft-capping (Gemma-2): `attn(..., softcap=C)`, each attention score s becoming C·tanh(s/C) before the softmax
(attn_logit_softcapping), and the layer `softcap(C)`, C·tanh(x/C) on each value (final_logit_softcapping on the
logits). Neither has parameters, and FlopCounterMode counts no MACs for them (the division, the tanh and the product
are element-wise): tested against transformers 5.23's Gemma-2 built small on the CPU with real tensors (eager
attention, the one that soft-caps), with and without its caps: parameters, MACs, the KV cache transformers keeps
and the output shape. The export computes the capped attention and imports back; Keras refuses."""

from __future__ import annotations

import types

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.round_trip import import_back

transformers = pytest.importorskip("transformers")


def flops_macs(module, *args, **kwargs) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args, **kwargs)
    return counter.get_total_flops() // 2


def gemma2(T: int, w: int, attn_cap, final_cap, V=20, d=16, L=4, h=2, g=1, e=8, F=24):
    config = transformers.Gemma2Config(
        vocab_size=V,
        hidden_size=d,
        intermediate_size=F,
        num_hidden_layers=L,
        num_attention_heads=h,
        num_key_value_heads=g,
        head_dim=e,
        sliding_window=w,
        attn_logit_softcapping=attn_cap,
        final_logit_softcapping=final_cap,
        attn_implementation="eager",
    )
    cap = "" if attn_cap is None else f", softcap={attn_cap:g}"

    def block(window: str) -> str:
        return (
            f"res(rmsnorm > attn(heads={h}, kv_heads={g}, head_dim={e}{window}{cap}, rope, causal) > rmsnorm) > "
            f"res(rmsnorm > mul(dense(->{F}) > gelu | dense(->{F})) > dense(->{d}) > rmsnorm)"
        )

    program = (
        f"input({T}) > embed({V}->{d}) as wte > ({block(f', window={w}')} > {block('')}) * {L // 2} > rmsnorm > "
        f"dense(->{V}, tie=wte)" + ("" if final_cap is None else f" > softcap({final_cap:g})")
    )
    return transformers.Gemma2ForCausalLM(config).eval(), program


# (T, w, attention cap, logit cap): Gemma-2's caps, other caps, none (the same counts)
CASES = [(9, 4, 50.0, 30.0), (12, 6, 20.5, 3.0), (5, 8, None, 30.0), (7, 3, 50.0, None)]


@pytest.mark.parametrize("T, w, attn_cap, final_cap", CASES)
def test_soft_capped_gemma2_equals_transformers(T, w, attn_cap, final_cap):
    torch.manual_seed(0)
    model, program = gemma2(T, w, attn_cap, final_cap)
    values = paramsym.parse(program).evaluate()
    ids = torch.randint(0, 20, (1, T))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(ids, use_cache=True)
    assert values["params"] == torch_params(model)
    assert values["macs"] == counter.get_total_flops() // 2
    assert values["kv_cache"] == sum(x.keys.numel() + x.values.numel() for x in out.past_key_values.layers)
    assert tuple(out.logits.shape[1:]) == (T, 20)
    assert paramsym.from_torch(model, T).count("softcap") == (attn_cap is not None) * 2 + (final_cap is not None)


def test_flop_counter_counts_no_macs_for_the_caps():
    """The same Gemma-2 with and without its caps: FlopCounterMode counts the same MACs (none for tanh)."""
    ids = torch.zeros(1, 10, dtype=torch.long)
    capped, _ = gemma2(10, 4, 50.0, 30.0)
    plain, _ = gemma2(10, 4, None, None)
    assert flops_macs(capped, ids) == flops_macs(plain, ids)
    x = torch.randn(3, 7)
    assert flops_macs(lambda t: torch.tanh(t / 30.0) * 30.0, x) == 0


def test_the_export_computes_gemma2s_capped_attention():
    """paramsym's softcapped_attention equals transformers' eager_attention_forward with softcap (and the causal
    mask), and paramsym's SoftCap equals Gemma-2's capping of the logits."""
    from transformers.models.gemma2.modeling_gemma2 import eager_attention_forward

    from paramsym.frameworks.torch_modules import SoftCap, softcapped_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 8) * 4 for _ in range(3))
    mask = torch.full((6, 6), float("-inf")).triu(1)[None, None]
    owner = types.SimpleNamespace(num_key_value_groups=1, training=False, head_dim=8)
    theirs, _ = eager_attention_forward(owner, q, k, v, mask, scaling=8**-0.5, softcap=5.0)
    ours = softcapped_attention(q, k, v, None, True, 5.0)
    assert torch.allclose(theirs, ours.transpose(1, 2), atol=1e-5)
    x = torch.randn(4, 9) * 100
    assert torch.allclose(SoftCap(30.0)(x), torch.tanh(x / 30.0) * 30.0)


@pytest.mark.parametrize(
    "program",
    [
        "input(10x16) > attn(heads=2, softcap=50)",
        "input(10x16) > attn(heads=2, kv_heads=1, window=4, softcap=50, rope, causal)",
        "input(9x16) > attn(heads=2, head_dim=4, softcap=20.5, causal, qk_norm=rms)",
        "input(10x16) > dense(->20) > softcap(30)",
    ],
)
def test_export_counts_the_same_and_imports_back(program):
    network = paramsym.parse(program)
    values = network.evaluate()
    module = paramsym.to_torch(network).eval()
    T = network.value(network.output_shape.dims()[0])
    assert torch_params(module) == values["params"]
    assert flops_macs(module, torch.zeros(1, 16, T)) == values["macs"]
    text, back = import_back(network, module)
    assert "softcap" in text
    for key in ("params", "macs", "kv_cache"):
        assert back.evaluate()[key] == values[key]


def test_the_cap_changes_no_count():
    plain = paramsym.parse("input(T x 64) > attn(heads=4, kv_heads=2, rope, causal) > dense(->100)")
    capped = paramsym.parse(
        "input(T x 64) > attn(heads=4, kv_heads=2, softcap=50, rope, causal) > dense(->100) > softcap(30)"
    )
    for key in ("params", "macs", "kv_cache"):
        assert capped.quantity(key) == plain.quantity(key)


@pytest.mark.parametrize(
    "program, says",
    [
        ("input(10x16) > attn(heads=2, softcap=0)", "must be a positive number, not 0"),
        ("input(10x16) > attn(heads=2, softcap=-5)", "must be a positive number"),
        ("input(10x16) > attn(heads=2, softcap=4x4)", "takes one value"),
        ("input(8x8x16) > attn(heads=2, window=4, softcap=50)", "takes no window"),
        ("input(10x16) > attn(heads=2, softcap=50, channels)", "takes no channels"),
        ("input(10x16) > softcap(0)", r"softcap\(0\).*positive number"),
        ("input(10x16) > softcap(-30)", "positive number"),
        ("input(10x16) > softcap", "needs its cap"),
        ("input(10x16) > softcap(3x3)", "takes one cap"),
    ],
)
def test_located_errors(program, says):
    with pytest.raises(paramsym.ParamsymError, match=says) as caught:
        paramsym.parse(program).evaluate()
    assert getattr(caught.value, "pos", None) is not None


@pytest.mark.parametrize("program", ["input(10x16) > attn(heads=2, softcap=50)", "input(10x16) > softcap(30)"])
def test_keras_refuses_soft_capping(program):
    pytest.importorskip("keras")
    with pytest.raises(paramsym.ParamsymError, match="soft-capp"):
        paramsym.to_keras(paramsym.parse(program))
