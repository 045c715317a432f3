"""Grouped-convolution MACs and the KV cache (issue 17: a mutation of either was caught only by the
documentation snapshots in a run without torch).

Each has a table of values derived by hand (the derivation beside each row), marked `torchfree`:
this module imports no framework at its top, so those tests run where torch is not installed
(`pytest -m torchfree`). The same quantities are then checked against the frameworks: nn.Conv1d/2d/3d
and nn.ConvTranspose2d with groups under FlopCounterMode (a table and a Hypothesis property), and the
tensors of Hugging Face's DynamicCache after a forward pass of T tokens (GPT-2, Llama with
grouped-query attention, Mistral)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import paramsym

# ---- grouped convolutions ------------------------------------------------------------------------
# MACs of a convolution: every output value (O positions x Cout) sums k·Cin/g products, k the kernel's size
# and Cin/g the input channels of its group; a transposed convolution spreads each of the I input positions
# x Cin values over k·Cout/g outputs.
GROUPED = [
    # (program, params, MACs)
    # 6x6 outputs (8 - 3 + 1); each of the 32 outputs sees 3·3·(16/4) = 36 inputs: 36·32·36
    ("input(8x8x16) > conv3x3(->32, groups=4)", 9 * 4 * 32, 36 * 32 * 36),
    # ResNeXt's 3x3 of 32 groups: 56·56 positions, 64 outputs, 3·3·(64/32) = 18 products each
    ("input(56x56x64) > conv3x3(->64, groups=32, pad=1)", 9 * 2 * 64, 56 * 56 * 64 * 18),
    # depthwise: groups = Cin = Cout; 112·112 positions, 32 channels, 3·3·1 products each
    ("input(112x112x32) > dwconv3x3(pad=1)", 9 * 32, 112 * 112 * 32 * 9),
    # depthwise with a channel multiplier 2: 64 outputs, each from 3·3 values of one channel
    ("input(10x10x32) > dwconv3x3(->64)", 9 * 64, 8 * 8 * 64 * 9),
    # pointwise in 3 groups: 49 positions, 6 outputs, 12/3 = 4 inputs each
    ("input(7x7x12) > conv1x1(->6, groups=3)", 4 * 6, 49 * 6 * 4),
    # 1-D, stride 2: floor((10 - 3)/2) + 1 = 4 positions, 9 outputs, 3·(6/3) = 6 inputs each
    ("input(10x6) > conv3(->9, groups=3, stride=2)", 6 * 9, 4 * 9 * 6),
    # 3-D, pad 1: 4·4·4 positions, 8 outputs, 27·(4/2) = 54 inputs each
    ("input(4x4x4x4) > conv3x3x3(->8, groups=2, pad=1)", 54 * 8, 64 * 8 * 54),
    # dilated 2 (a 5x5 reach): 12 - 5 + 1 = 8 per axis; 6 outputs, 9·(4/2) = 18 inputs each
    ("input(12x12x4) > conv3x3(->6, groups=2, dilation=2, bias)", 18 * 6 + 6, 64 * 6 * 18),
    # transposed, stride 2, 2 groups: each of 4·4 positions x 6 channels feeds 2·2·(4/2) = 8 outputs
    ("input(4x4x6) > deconv2x2(->4, stride=2, groups=2)", 4 * 6 * 2, 16 * 6 * 8),
]


@pytest.mark.torchfree
@pytest.mark.parametrize("program, params, macs", GROUPED, ids=[g[0] for g in GROUPED])
def test_grouped_conv_by_hand(program, params, macs):
    values = paramsym.parse(program).evaluate()
    assert (values["params"], values["macs"]) == (params, macs)


@pytest.mark.torchfree
def test_grouped_conv_macs_in_symbols():
    """H·W·Cout·9·Cin/g for a padded 3x3 convolution of g groups, for any values."""
    network = paramsym.parse("input(H x W x C) > conv3x3(->D, groups=g, pad=1)")
    for H, W, C, D, g in ((5, 7, 8, 12, 4), (3, 3, 6, 6, 6), (9, 2, 10, 5, 5)):
        assert network.evaluate(H=H, W=W, C=C, D=D, g=g)["macs"] == H * W * D * 9 * C // g


# ---- the KV cache ---------------------------------------------------------------------------------
# Attention keeps the keys and the values of every position it attends to: 2·S·kv elements, S the positions
# (T for self-attention) and kv = kv_heads·head_dim; a model keeps one per attention layer; nothing else keeps
# any.
KV_CACHE = [
    # (program, elements)
    # LANGUAGE.md 7.1: 32 positions, 12 heads of 64 channels (no grouping): 2·32·768
    ("input(32x768) > attn(heads=12, bias)", 2 * 32 * 768),
    # grouped-query: 2 key/value heads of 8 channels for 8 query heads: 2·16·(2·8)
    ("input(16x64) > attn(heads=8, kv_heads=2)", 2 * 16 * 16),
    # head_dim given: 4 heads of 5 channels
    ("input(10x12) > attn(heads=4, head_dim=5, causal)", 2 * 10 * 20),
    # cross-attention: the 9 source positions are kept, not the 32 queries; 12 heads of 32 channels
    ("input(32x768) > attn(heads=12, head_dim=32, source=9x10)", 2 * 9 * 384),
    # a map: its 8·8 positions; window attention still computes keys and values of every position once
    ("input(8x8x32) > attn(heads=4)", 2 * 64 * 32),
    ("input(8x8x32) > attn(heads=4, window=4)", 2 * 64 * 32),
    # two attention layers keep two caches
    ("input(6x16) > res(attn(heads=2)) > res(attn(heads=4, kv_heads=1))", 2 * 6 * 16 + 2 * 6 * 4),
    # recurrent layers and convolutions keep none
    ("input(6x16) > lstm(->8) > dense(->4)", 0),
    ("input(8x8x3) > conv3x3(->8) > gap > dense(->2)", 0),
    # GPT-2 small: 12 blocks, 1024 positions, 768 channels
    ("examples/gpt2.psym", 12 * 2 * 1024 * 768),
    # Llama-3-8B: 32 blocks, 8192 positions, 8 key/value heads of 128 channels
    ("examples/llama3_8b.psym", 32 * 2 * 8192 * 8 * 128),
    # Mistral-7B: 32 blocks, 4096 positions, 8 key/value heads of 128 channels
    ("examples/mistral_7b.psym", 32 * 2 * 4096 * 8 * 128),
]


def _text(program: str) -> str:
    if program.startswith("examples/"):
        from pathlib import Path

        return (Path(__file__).resolve().parents[1] / program).read_text()
    return program


@pytest.mark.torchfree
@pytest.mark.parametrize("program, elements", KV_CACHE, ids=[k[0] for k in KV_CACHE])
def test_kv_cache_by_hand(program, elements):
    assert paramsym.parse(_text(program)).evaluate()["kv_cache"] == elements


# ---- against PyTorch: nn.ConvNd(groups=g) under FlopCounterMode ----------------------------------------


def _torch():
    return pytest.importorskip("torch")


# (program, module factory, input shape channels-last)
GROUPED_TORCH = [
    ("input(8x8x16) > conv3x3(->32, groups=4)", lambda nn: nn.Conv2d(16, 32, 3, groups=4, bias=False), (8, 8, 16)),
    (
        "input(56x56x64) > conv3x3(->64, groups=32, pad=1)",
        lambda nn: nn.Conv2d(64, 64, 3, padding=1, groups=32, bias=False),
        (56, 56, 64),
    ),
    (
        "input(112x112x32) > dwconv3x3(pad=1)",
        lambda nn: nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False),
        (112, 112, 32),
    ),
    ("input(10x10x32) > dwconv3x3(->64)", lambda nn: nn.Conv2d(32, 64, 3, groups=32, bias=False), (10, 10, 32)),
    ("input(7x7x12) > conv1x1(->6, groups=3)", lambda nn: nn.Conv2d(12, 6, 1, groups=3, bias=False), (7, 7, 12)),
    ("input(10x6) > conv3(->9, groups=3, stride=2)", lambda nn: nn.Conv1d(6, 9, 3, 2, groups=3, bias=False), (10, 6)),
    (
        "input(4x4x4x4) > conv3x3x3(->8, groups=2, pad=1)",
        lambda nn: nn.Conv3d(4, 8, 3, padding=1, groups=2, bias=False),
        (4, 4, 4, 4),
    ),
    (
        "input(12x12x4) > conv3x3(->6, groups=2, dilation=2, bias)",
        lambda nn: nn.Conv2d(4, 6, 3, dilation=2, groups=2),
        (12, 12, 4),
    ),
    (
        "input(4x4x6) > deconv2x2(->4, stride=2, groups=2)",
        lambda nn: nn.ConvTranspose2d(6, 4, 2, stride=2, groups=2, bias=False),
        (4, 4, 6),
    ),
]


@pytest.mark.parametrize("program, factory, shape", GROUPED_TORCH, ids=[g[0] for g in GROUPED_TORCH])
def test_grouped_conv_against_pytorch(program, factory, shape):
    torch = _torch()
    from helpers.frameworks import torch_params, torch_run

    module = factory(torch.nn)
    out_shape, macs = torch_run(module, list(shape), "cf")
    network = paramsym.parse(program)
    values = network.evaluate()
    assert (values["params"], values["macs"]) == (torch_params(module), macs)
    assert [int(d) for d in network.output_shape.dims()] == out_shape


@st.composite
def grouped_convs(draw):
    """A grouped convolution of 1 to 3 spatial axes: g groups of 1 to 4 input and output channels each, a kernel,
    stride, padding and dilation per axis that leave an output of at least 1."""
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 6))
    cin, cout = groups * draw(st.integers(1, 4)), groups * draw(st.integers(1, 4))
    sizes, kernel, stride, pad, dilation = [], [], [], [], []
    for _ in range(rank):
        k, d, p = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
        sizes.append(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 9 if rank < 3 else 5)))
        kernel.append(k), stride.append(draw(st.integers(1, 2))), pad.append(p), dilation.append(d)
    bias = draw(st.booleans())
    x = lambda values: "x".join(map(str, values))  # noqa: E731
    program = (
        f"input({x(sizes + [cin])}) > conv{x(kernel)}(->{cout}, stride={x(stride)}, pad={x(pad)}, "
        f"dilation={x(dilation)}, groups={groups}{', bias' if bias else ''})"
    )
    spec = dict(
        in_channels=cin,
        out_channels=cout,
        kernel_size=tuple(kernel),
        stride=tuple(stride),
        padding=tuple(pad),
        dilation=tuple(dilation),
        groups=groups,
        bias=bias,
    )
    return program, rank, spec, (*sizes, cin)


@given(grouped_convs())
def test_property_grouped_conv_macs_equal_flop_counter(case):
    torch = _torch()
    from helpers.frameworks import torch_params, torch_run

    program, rank, spec, shape = case
    module = getattr(torch.nn, f"Conv{rank}d")(**spec)
    out_shape, macs = torch_run(module, list(shape), "cf")
    network = paramsym.parse(program)
    values = network.evaluate()
    assert (values["params"], values["macs"]) == (torch_params(module), macs), program
    assert [int(d) for d in network.output_shape.dims()] == out_shape, program


# ---- against Hugging Face: the tensors DynamicCache holds after T tokens --------------------------------


def _cache_elements(model, tokens: int) -> int:
    """Run T tokens through the model with use_cache=True; count the elements of the keys and values cached."""
    torch = _torch()
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, tokens, dtype=torch.long), use_cache=True)
    cache = out.past_key_values
    assert type(cache).__name__ == "DynamicCache"
    return sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)


def _gpt2(T, V, n, d, L, h):
    transformers = pytest.importorskip("transformers")
    model = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(
            vocab_size=V, n_positions=n, n_embd=d, n_layer=L, n_head=h, bos_token_id=0, eos_token_id=0
        )
    )
    program = (
        f"input({T}) > embed({V}->{d}) as wte > posembed({n}) > (res(ln > attn(heads={h}, bias, causal)) > "
        f"res(ln > dense(->{4 * d}, bias) > gelu > dense(->{d}, bias))) * {L} > ln > dense(->{V}, tie=wte)"
    )
    return model, program


def _llama_like(family, T, V, d, L, h, g, e, F):
    transformers = pytest.importorskip("transformers")
    config = getattr(transformers, f"{family}Config")(
        vocab_size=V,
        hidden_size=d,
        intermediate_size=F,
        num_hidden_layers=L,
        num_attention_heads=h,
        num_key_value_heads=g,
        head_dim=e,
        tie_word_embeddings=False,
        **({"sliding_window": None} if family == "Mistral" else {}),
    )
    model = getattr(transformers, f"{family}ForCausalLM")(config)
    program = (
        f"input({T}) > embed({V}->{d}) > (res(rmsnorm > attn(heads={h}, kv_heads={g}, head_dim={e}, rope, "
        f"causal)) > res(rmsnorm > mul(dense(->{F}) > silu | dense(->{F})) > dense(->{d}))) * {L} > rmsnorm > "
        f"dense(->{V})"
    )
    return model, program


KV_MODELS = [
    ("gpt2", lambda: _gpt2(T=11, V=50, n=16, d=32, L=2, h=4)),
    ("gpt2 one head", lambda: _gpt2(T=5, V=20, n=8, d=8, L=3, h=1)),
    ("llama gqa", lambda: _llama_like("Llama", T=9, V=40, d=48, L=3, h=6, g=2, e=6, F=64)),
    ("llama mha, head_dim", lambda: _llama_like("Llama", T=7, V=40, d=32, L=2, h=4, g=4, e=10, F=40)),
    ("llama mqa", lambda: _llama_like("Llama", T=13, V=30, d=16, L=2, h=4, g=1, e=4, F=24)),
    ("mistral gqa", lambda: _llama_like("Mistral", T=10, V=40, d=64, L=2, h=8, g=2, e=8, F=96)),
]


@pytest.mark.parametrize("name, build", KV_MODELS, ids=[m[0] for m in KV_MODELS])
def test_kv_cache_equals_hugging_face_dynamic_cache(name, build):
    _torch()
    from helpers.frameworks import torch_params

    model, program = build()
    network = paramsym.parse(program)
    assert network.evaluate()["params"] == torch_params(model)  # the program is the model
    tokens = int(network.input_shape.dims()[0])
    assert network.evaluate()["kv_cache"] == _cache_elements(model, tokens)


def test_kv_cache_of_mistral_at_its_window():
    """Mistral v0.1 in small: a context T equal to the sliding window w (4096 in Mistral-7B v0.1's config).
    After a prefill of T >= w - 1 tokens, Hugging Face's DynamicCache (DynamicSlidingWindowLayer) keeps w - 1
    positions per layer, and so does `attn(..., window=w, causal)`: min(T, w - 1). Mistral-7B v0.1 (w = 4096) at
    T = 4096: 2·32·4095·1024 = 268,369,920 values, 65,536 fewer than without the window (one position of every
    layer). examples/mistral_7b.psym is v0.2, which has no window."""
    _torch()
    transformers = pytest.importorskip("transformers")
    T = w = 8
    config = transformers.MistralConfig(
        vocab_size=20,
        hidden_size=16,
        intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        sliding_window=w,
    )
    program = (
        f"input({T}) > embed(20->16) > (res(rmsnorm > attn(heads=2, kv_heads=1, head_dim=8, window={w}, rope, "
        f"causal)) > res(rmsnorm > mul(dense(->16) > silu | dense(->16)) > dense(->16))) * 2 > rmsnorm > dense(->20)"
    )
    model = transformers.MistralForCausalLM(config)
    # the cache: 2 layers · 2 · 7 positions · 8 = 224 (256 without the window)
    assert paramsym.parse(program).evaluate()["kv_cache"] == _cache_elements(model, T)
