"""`attn(heads=h, ...)` (LANGUAGE.md section 7): paramsym/kinds/attention.py, checked against
PyTorch's nn.MultiheadAttention, nn.TransformerEncoderLayer / nn.TransformerDecoderLayer,
torchvision's Swin ShiftedWindowAttention, Hugging Face's LlamaAttention and MistralAttention
(grouped-query attention) and Keras' MultiHeadAttention and GroupQueryAttention (any head width,
cross-attention), with MACs counted by FlopCounterMode in PyTorch's math backend (Keras runs on
the torch backend), through export and import. paramsym's own exported module is never the
reference."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.swin_transformer import ShiftedWindowAttention

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch before keras)
from helpers.cli_helpers import run
from helpers.frameworks import keras_counts, torch_params
from paramsym.frameworks.torch_modules import GroupedQueryAttention


def counts(program: str) -> dict:
    return paramsym.parse(program).evaluate()


def macs_of(fn, *inputs) -> int:
    """FlopCounterMode's MACs. F.scaled_dot_product_attention runs in PyTorch's math backend here: the fused
    CPU kernel (and nn.MultiheadAttention's fast path) counts 0 for the two products; the math backend's
    matrix products are counted."""
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*inputs)
    return counter.get_total_flops() // 2


def mha_macs(module: nn.MultiheadAttention, positions: int, channels: int, source=None, causal=False) -> int:
    """nn.MultiheadAttention's MACs: in training mode (its dropout is 0, so it computes what eval does) it leaves
    the fused fast path, which FlopCounterMode counts as 0, for the projections and scaled_dot_product_attention."""
    module.train()
    x = torch.zeros(1, positions, channels)
    s = x if source is None else torch.zeros(1, *source)
    mask = nn.Transformer.generate_square_subsequent_mask(positions) if causal else None
    return macs_of(lambda: module(x, s, s, need_weights=False, attn_mask=mask, is_causal=causal))


def keras_gqa(d, h, g, e, bias, source_channels):
    """Keras' GroupQueryAttention (g key/value heads for h query heads, any head width), built on a query of d
    channels and keys/values of source_channels; with g = h it is multi-head attention."""
    layer = keras.layers.GroupQueryAttention(head_dim=e, num_query_heads=h, num_key_value_heads=g, use_bias=bias)
    layer.build((None, 1, d), (None, 1, source_channels))
    return layer


def keras_attention_macs(layer, positions, channels, source=None, causal=False) -> int:
    """Keras runs torch operations on the torch backend: FlopCounterMode counts its einsums and products."""
    x = torch.zeros(1, positions, channels)
    s = x if source is None else torch.zeros(1, *source)
    return macs_of(lambda: layer(x, s, use_causal_mask=causal))


def hf_attention(family: str, d, h, g, e, bias, implementation):
    """Hugging Face's LlamaAttention or MistralAttention from a small config, and its rotary positions."""
    import transformers
    from transformers.models.llama.modeling_llama import LlamaAttention, LlamaRotaryEmbedding
    from transformers.models.mistral.modeling_mistral import MistralAttention, MistralRotaryEmbedding

    config_cls, attention_cls, rotary_cls = {
        "llama": (transformers.LlamaConfig, LlamaAttention, LlamaRotaryEmbedding),
        "mistral": (transformers.MistralConfig, MistralAttention, MistralRotaryEmbedding),
    }[family]
    extra = {"attention_bias": bias} if family == "llama" else {}
    config = config_cls(
        hidden_size=d,
        num_attention_heads=h,
        num_key_value_heads=g,
        head_dim=e,
        intermediate_size=8,
        num_hidden_layers=1,
        vocab_size=8,
        **extra,
    )
    config._attn_implementation = implementation
    return attention_cls(config, 0).eval(), rotary_cls(config)


def hf_macs(attention, rotary, positions, channels) -> int:
    """With no mask, "sdpa" attends causally (the module's is_causal) and "eager" attends to every position."""
    x = torch.zeros(1, positions, channels)
    cos_sin = rotary(x, torch.arange(positions)[None])
    return macs_of(lambda: attention(x, cos_sin, None))


# ---- the contract's examples ----------------------------------------------------------------


def test_language_examples():
    assert counts("input(32x768) > attn(heads=12, bias)") == {
        "params": 2362368,
        "state": 0,
        "active": 2362368,
        "kv_cache": 49152,
        "total": 2362368,
        "macs": 77070336,
    }
    assert counts("input(56x56x96) > res(ln > attn(heads=3, bias, window=7))")["params"] == 37947
    assert str(paramsym.parse("input(T x d) > attn(heads=h, kv_heads=g)").params) == "2*d**2*g/h + 2*d**2"


def test_cli_json():
    out = json.loads(run("count", "input(32x768) > attn(heads=12, bias)", "--format", "json").stdout)
    assert (out["params"]["value"], out["macs"]["value"], out["kv_cache"]["value"]) == (2362368, 77070336, 49152)
    assert out["layers"][0]["kv_cache"]["value"] == 49152
    out = json.loads(run("count", "input(T x d) > attn(heads=h, kv_heads=g)", "--format", "json").stdout)
    # the checker compares the terms sorted, as they are written
    assert sorted(out["params"]["expr"].split(" + ")) == ["2*d**2", "2*d**2*g/h"]
    out = json.loads(
        run("count", "input(56x56x96) > res(ln > attn(heads=3, bias, window=7))", "--format", "json").stdout
    )
    assert out["params"]["value"] == 37947


# ---- against nn.MultiheadAttention -----------------------------------------------------------


@pytest.mark.parametrize("d, h, bias", [(768, 12, True), (64, 4, False), (64, 1, True), (96, 3, False), (10, 5, True)])
@pytest.mark.parametrize("spatial", [(7,), (3, 4)])
def test_params_of_multihead_attention(d, h, bias, spatial):
    program = f"input({'x'.join(map(str, spatial))}x{d}) > attn(heads={h}{', bias' if bias else ''})"
    net = paramsym.parse(program)
    with torch.device("meta"):
        assert net.params == torch_params(nn.MultiheadAttention(d, h, bias=bias))
    assert [int(n) for n in net.output_shape.dims()] == [*spatial, d]


@pytest.mark.parametrize("d, h, S, c, bias", [(64, 4, 9, 32, True), (48, 6, 77, 768, False), (16, 2, 5, 16, True)])
def test_cross_attention_against_kdim_vdim(d, h, S, c, bias):
    program = f"input(11x{d}) > attn(heads={h}, source={S}x{c}{', bias' if bias else ''})"
    values = counts(program)
    mha = nn.MultiheadAttention(d, h, bias=bias, kdim=c, vdim=c, batch_first=True)
    assert values["params"] == torch_params(mha)
    assert values["macs"] == mha_macs(mha, 11, d, (S, c))
    assert values["kv_cache"] == 2 * S * d


@pytest.mark.parametrize(
    "d, h, T, bias",
    [
        (64, 4, 10, True),
        (64, 4, 10, False),
        (768, 12, 32, True),
        (10, 5, 3, False),
        (96, 3, 1, True),
        (16, 16, 7, False),
    ],
)
@pytest.mark.parametrize("causal", [False, True])
def test_macs_of_multihead_attention(d, h, T, bias, causal):
    """MACs equal nn.MultiheadAttention's under FlopCounterMode: with and without biases, causal or not (a mask
    removes no product: PyTorch computes every score, then masks)."""
    net = paramsym.parse(f"input({T}x{d}) > attn(heads={h}{', bias' if bias else ''}{', causal' if causal else ''})")
    mha = nn.MultiheadAttention(d, h, bias=bias, batch_first=True)
    assert net.evaluate()["params"] == torch_params(mha)
    assert net.evaluate()["macs"] == mha_macs(mha, T, d, causal=causal)


def test_flop_counter_misses_the_fast_path_products():
    """Why mha_macs runs nn.MultiheadAttention in training mode: its inference fast path is one fused op that
    FlopCounterMode counts as 0 (the products inside are not seen), as is the fused CPU kernel of
    scaled_dot_product_attention; out of the fast path, the math backend's products are all counted."""
    net = paramsym.parse("input(10x64) > attn(heads=4, bias)")
    mha = nn.MultiheadAttention(64, 4, batch_first=True).eval()
    x = torch.zeros(1, 10, 64)
    assert macs_of(lambda: mha(x, x, x, need_weights=False)) == 0
    with torch.no_grad(), FlopCounterMode(display=False) as counter:  # the fused kernel, as PyTorch picks it
        torch.nn.functional.scaled_dot_product_attention(*[torch.zeros(1, 4, 10, 16)] * 3)
    assert counter.get_total_flops() == 0
    # by hand (LANGUAGE.md section 7): q, k, v and the output projections, 4·T·d², and the scores and the
    # weighted sum, 2·T·T·d
    assert mha_macs(mha, 10, 64) == net.macs == 4 * 10 * 64**2 + 2 * 10 * 10 * 64 == 176640


# ---- the Transformer layers of PyTorch -------------------------------------------------------


def _layer_text(kind, d, h, F, norm_first, activation, bias, S=None):
    b = ", bias" if bias else ""
    ln = "ln" if bias else "ln(nobias)"
    parts = [f"attn(heads={h}{b})"]
    if kind == "decoder":
        parts.append(f"attn(heads={h}{b}, source={S}x{d})")
    parts.append(f"dense(->{F}{b}) > {activation} > dense(->{d}{b})")
    if norm_first:
        return " > ".join(f"res({ln} > {p})" for p in parts)
    return " > ".join(f"res({p}) > {ln}" for p in parts)


LAYERS = [
    (kind, norm_first, activation, bias)
    for kind in ("encoder", "decoder")
    for norm_first in (False, True)
    for activation in ("relu", "gelu")
    for bias in (True, False)
]


class _Wrap(nn.Module):
    """A layer on (N, d, T), as the importer feeds it (channels first): the positions are moved last."""

    def __init__(self, inner, kind):
        super().__init__()
        self.inner, self.kind = inner, kind

    def forward(self, x):
        y = x.movedim(1, -1)
        if self.kind == "decoder":
            y = self.inner(y, y)
        elif self.kind == "mha":
            y = self.inner(y, y, y, need_weights=False)[0]
        elif self.kind == "mha-weights":
            y = self.inner(y, y, y)[0]
        else:
            y = self.inner(y)
        return y.movedim(-1, 1)


@pytest.mark.parametrize("kind, norm_first, activation, bias", LAYERS)
def test_transformer_layers(kind, norm_first, activation, bias):
    # ln(nobias) is in the language (LANGUAGE.md section 7): a program that does not parse fails here
    d, h, F, T = 32, 4, 80, 6
    cls = nn.TransformerEncoderLayer if kind == "encoder" else nn.TransformerDecoderLayer
    layer = cls(d, h, F, activation=activation, bias=bias, norm_first=norm_first, batch_first=True)
    text = f"input({T}x{d}) > " + _layer_text(kind, d, h, F, norm_first, activation, bias, S=T)
    assert paramsym.parse(text).params == torch_params(layer)
    imported = paramsym.from_torch(_Wrap(layer, kind), (T, d))
    assert paramsym.parse(imported).params == torch_params(layer)
    assert " ".join(imported.split()) == " ".join(text.split())


@pytest.mark.parametrize("kind, bias", [("mha", True), ("mha-weights", False)])
def test_import_multihead_attention(kind, bias):
    module = _Wrap(nn.MultiheadAttention(64, 8, bias=bias, batch_first=True), kind)
    imported = paramsym.from_torch(module, (12, 64))
    assert imported.split()[-1] == ("bias)" if bias else "attn(heads=8)")
    assert paramsym.parse(imported).params == torch_params(module)


def test_import_refuses_cross_attention_on_another_value():
    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(16, 16)
            self.mha = nn.MultiheadAttention(16, 2, batch_first=True)

        def forward(self, x):
            y = x.movedim(1, -1)
            return self.mha(y, self.proj(y), self.proj(y))[0].movedim(-1, 1)

    with pytest.raises(paramsym.ParamsymError, match="takes its keys or values from 'proj"):
        paramsym.from_torch(Cross(), (5, 16))


# ---- grouped-query attention and other head widths: Hugging Face and Keras --------------------

# (d, h, g, e, bias): head widths are even (Hugging Face's rotary positions need it; rope counts nothing)
HF_GQA = [(64, 8, 2, 8, False), (64, 8, 1, 16, True), (48, 6, 3, 6, True), (32, 4, 4, 8, False), (8, 1, 1, 2, True)]


@pytest.mark.parametrize("family", ["llama", "mistral"])
@pytest.mark.parametrize("implementation, causal", [("sdpa", True), ("eager", False)])
@pytest.mark.parametrize("d, h, g, e, bias", HF_GQA)
def test_grouped_query_attention_against_hugging_face(family, implementation, causal, d, h, g, e, bias):
    if family == "mistral" and bias:
        bias = False  # Mistral's projections have no biases
    program = (
        f"input(9x{d}) > attn(heads={h}, kv_heads={g}, head_dim={e}{', bias' if bias else ''}, rope"
        f"{', causal' if causal else ''})"
    )
    values = counts(program)
    attention, rotary = hf_attention(family, d, h, g, e, bias, implementation)
    assert values["params"] == torch_params(attention)
    assert values["macs"] == hf_macs(attention, rotary, 9, d)
    assert values["kv_cache"] == 2 * 9 * g * e


def test_llama3_8b_attention_against_hugging_face():
    values = counts("input(8192x4096) > attn(heads=32, kv_heads=8, rope, causal)")
    with torch.device("meta"):
        attention, _ = hf_attention("llama", 4096, 32, 8, 128, False, "sdpa")
    assert values["params"] == torch_params(attention) == 2 * 4096 * 4096 + 2 * 4096 * 1024


@pytest.mark.parametrize(
    "d, h, g, e, bias", [(30, 6, 3, 7, True), (12, 4, 4, 3, False), (7, 1, 1, 5, True), (64, 8, 2, 8, False)]
)
def test_odd_head_widths_against_keras(d, h, g, e, bias):
    program = f"input(9x{d}) > attn(heads={h}, kv_heads={g}, head_dim={e}{', bias' if bias else ''})"
    values = counts(program)
    layer = keras_gqa(d, h, g, e, bias, d)
    assert values["params"] == layer.count_params()
    assert values["macs"] == keras_attention_macs(layer, 9, d)


def test_keras_products_over_one_value_are_not_seen_by_the_counter():
    """Why the property below keeps d >= 2 and h·e >= 2: Keras' einsum over a single value (d = 1, or h·e = 1
    for the output projection) is an elementwise product in torch, which FlopCounterMode does not count. The
    same layer in nn.MultiheadAttention (whose projections are matrix products) is counted in full: by hand,
    T·d·q + 2·T·d·kv + T·q·d + 2·T·T·q = 1 + 2 + 1 + 2 = 6 for T = d = h = e = 1."""
    layer = keras_gqa(1, 1, 1, 1, False, 1)
    assert keras_attention_macs(layer, 1, 1) == 2
    mha = nn.MultiheadAttention(1, 1, bias=False)
    assert counts("input(1x1) > attn(heads=1)")["macs"] == mha_macs(mha, 1, 1) == 6


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 4),
    st.integers(1, 8),
    st.integers(1, 12),
    st.integers(1, 9),
    st.booleans(),
    st.booleans(),
    st.integers(2, 14),
    st.booleans(),
)
def test_property_counts_equal_keras(groups, per_group, e, T, S, cross, bias, d, causal):
    """Keras' GroupQueryAttention: grouped or not, any head width, self- or cross-attention, causal or not."""
    h, g = groups * per_group, groups
    e = max(e, 2) if h == 1 else e  # h·e >= 2 (test above)
    c = d + 3 if cross else d
    causal = causal and not cross
    source = f", source={S}x{c}" if cross else ""
    program = (
        f"input({T}x{d}) > attn(heads={h}, kv_heads={g}, head_dim={e}{source}{', bias' if bias else ''}"
        f"{', causal' if causal else ''})"
    )
    values = counts(program)
    layer = keras_gqa(d, h, g, e, bias, c)
    assert values["params"] == layer.count_params()
    assert values["macs"] == keras_attention_macs(layer, T, d, (S, c) if cross else None, causal)
    assert values["kv_cache"] == 2 * (S if cross else T) * g * e


# ---- window attention (Swin) -----------------------------------------------------------------


@pytest.mark.parametrize(
    "H, W, d, h, w, bias", [(56, 56, 96, 3, 7, True), (8, 12, 32, 4, 4, False), (6, 6, 16, 2, 3, True)]
)
def test_window_attention_against_torchvision(H, W, d, h, w, bias):
    program = f"input({H}x{W}x{d}) > attn(heads={h}, window={w}{', bias' if bias else ''})"
    values = counts(program)
    module = ShiftedWindowAttention(d, [w, w], [0, 0], h, qkv_bias=bias, proj_bias=bias)
    assert values["params"] == torch_params(module)
    # FlopCounterMode counts the projections and both products of every window (not the bias-table lookup)
    assert values["macs"] == macs_of(module.eval(), torch.zeros(1, H, W, d))
    assert values["kv_cache"] == 2 * H * W * d
    shifted = counts(program[:-1] + ", shift)")
    assert shifted == values


# ---- Keras -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "program, cls",
    [
        ("input(10x64) > attn(heads=4, bias)", keras.layers.MultiHeadAttention),
        ("input(10x64) > attn(heads=8, head_dim=4)", keras.layers.MultiHeadAttention),
        ("input(4x3x32) > attn(heads=4, bias, causal)", keras.layers.MultiHeadAttention),
        ("input(10x64) > attn(heads=8, kv_heads=2, bias)", keras.layers.GroupQueryAttention),
        ("input(5x48) > attn(heads=6, kv_heads=3, head_dim=5, causal)", keras.layers.GroupQueryAttention),
    ],
)
def test_keras(program, cls):
    net = paramsym.parse(program, convention="keras")
    model = paramsym.to_keras(net)
    assert any(isinstance(layer, cls) for layer in model.layers)
    values = net.evaluate()
    assert model.count_params() == values["total"]
    assert keras_counts(model, [int(n) for n in net.input_shape.dims()]) == (values["params"], 0, values["macs"])
    assert list(model.output_shape[1:]) == [int(n) for n in net.output_shape.dims()]


def test_keras_multihead_attention_with_biases_is_4d2_plus_4d():
    layer = keras.layers.MultiHeadAttention(num_heads=12, key_dim=64)
    x = keras.Input((5, 768))
    layer(x, x)
    assert layer.count_params() == 4 * 768**2 + 4 * 768 == counts("input(5x768) > attn(heads=12, bias)")["params"]


# ---- export --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "program, cls",
    [
        ("input(10x64) > attn(heads=4, bias)", nn.MultiheadAttention),
        ("input(3x4x32) > res(ln > attn(heads=4, causal))", nn.MultiheadAttention),
        ("input(10x64) > attn(heads=8, kv_heads=2, causal)", GroupedQueryAttention),
        ("input(2x3x24) > attn(heads=3, head_dim=5, bias)", GroupedQueryAttention),
    ],
)
def test_export_to_torch(program, cls):
    net = paramsym.parse(program)
    module = paramsym.to_torch(net)
    assert any(isinstance(m, cls) for m in module.modules())
    assert torch_params(module) == net.evaluate()["params"]
    y = module(paramsym.example_input(net))
    dims = [int(n) for n in net.output_shape.dims()]
    assert list(y.shape[1:]) == [dims[-1], *dims[:-1]]


def test_causal_export_is_causal():
    """A later position does not change an earlier one's output."""
    for program in ("input(6x16) > attn(heads=2, causal)", "input(6x16) > attn(heads=4, kv_heads=2, causal)"):
        module = paramsym.to_torch(paramsym.parse(program)).eval()
        x = torch.randn(1, 16, 6)
        changed = x.clone()
        changed[:, :, -1] += 1
        with torch.no_grad():
            assert torch.allclose(module(x)[:, :, :-1], module(changed)[:, :, :-1], atol=1e-5)
            assert not torch.allclose(module(x)[:, :, -1], module(changed)[:, :, -1], atol=1e-5)


@pytest.mark.parametrize(
    "program",
    ["input(10x32) > attn(heads=4, bias) > ln", "input(3x3x24) > res(attn(heads=6, kv_heads=2, head_dim=5, causal))"],
)
def test_exported_sources_run_alone(tmp_path, program):
    net = paramsym.parse(program)
    path = tmp_path / "model.py"
    assert run("export", program, "--to", "torch", "-o", str(path)).returncode == 0
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path)
    dims = [int(n) for n in net.output_shape.dims()]
    assert result.stdout.strip() == f"{(1, dims[-1], *dims[:-1])} {net.params}", result.stderr
    path = tmp_path / "keras_model.py"
    assert run("export", program, "--to", "keras", "-o", str(path)).returncode == 0
    result = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, "KERAS_BACKEND": "torch"},
    )
    assert result.stdout.strip().splitlines()[-1] == f"{(None, *dims)} {net.params}", result.stderr


@pytest.mark.parametrize(
    "program, to, words",
    [
        ("input(8x8x16) > attn(heads=2, window=4, causal)", "torch", "causal masking inside windows has no PyTorch"),
        ("input(8x8x16) > attn(heads=2, window=4)", "keras", "window attention (Swin) has no Keras layer"),
        ("input(8x16) > attn(heads=2, source=5x8)", "torch", "cross-attention (source=) needs a second input"),
        ("input(8x16) > attn(heads=2, source=5x8)", "keras", "cross-attention (source=) needs a second input"),
    ],
)
def test_export_refusals(program, to, words):
    result = run("export", program, "--to", to)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


# ---- mistakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "program, words, at",
    [
        ("input(8x100) > attn(heads=12)", "heads=12 does not divide the width 100", "heads"),
        ("input(8x64) > attn(heads=8, kv_heads=3)", "kv_heads=3 must divide heads=8", "kv_heads"),
        ("input(8x64) > attn(bias)", "attn needs its number of heads", "attn"),
        ("input(10x10x16) > attn(heads=2, window=3)", "window=3 does not divide the map's size 10", "window"),
        ("input(10x16) > attn(heads=2, window=5)", "so it needs 'causal'", "window"),
        ("input(8x8x16) > attn(heads=2, shift)", "'shift' (shifted windows) needs window=w", "shift"),
        ("input(16) > attn(heads=2)", "attn acts on positions, but its input is a vector", "attn"),
        ("input(8x16) > attn(heads=2, source=5)", "source= takes the positions and channels", "source"),
        (
            "input(8x8x16) > attn(heads=2, window=4, source=5x8)",
            "window= attends inside windows of the map itself",
            "source",
        ),
        ("input(8x16) > attn(heads=2, kv_head=1)", "did you mean 'kv_heads'?", "kv_head"),
        ("input(8x16) > attn(heads=0)", "heads must be at least 1", "heads"),
        ("input(8x16) > attn(heads=2, head_dim=1.5)", "head_dim must be a whole number", "head_dim"),
    ],
)
def test_mistakes(program, words, at):
    with pytest.raises(paramsym.ParamsymError) as info:
        paramsym.parse(program)
    assert words in str(info.value)
    assert f"line 1, column {program.index(at) + 1}" in str(info.value)


@pytest.mark.parametrize(
    "program, values, words",
    [
        ("input(T x d) > attn(heads=h) > dense(->h)", {"T": 4, "d": 10, "h": 4}, "heads=h does not divide the width d"),
        (
            "input(T x d) > attn(heads=h, kv_heads=g)",
            {"T": 4, "d": 12, "h": 4, "g": 3},
            "kv_heads=g must divide heads=h",
        ),
        ("input(H x H x d) > attn(heads=2, window=w)", {"H": 10, "d": 8, "w": 4}, "window=w does not divide"),
    ],
)
def test_symbolic_mistakes_wait_for_values(program, values, words):
    net = paramsym.parse(program)
    with pytest.raises(paramsym.ParamsymError, match=words):
        net.evaluate(**values)


def test_explain():
    result = run("explain", "input(16x64) > attn(heads=8, kv_heads=2, bias)")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for words in (
        "8 heads of width 8",
        "2 key/value heads, each shared by 4 query heads",
        "scores against all 16 key positions",
        "KV cache",
    ):
        assert words in text, text


def test_gpt2_block_against_transformers():
    """GPT-2's block, `res(ln > attn(heads=h, bias, causal)) > res(ln > mlp)`, counts as Hugging Face's GPT2Block."""
    from transformers import GPT2Config
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    d, h = 64, 4
    block = GPT2Block(GPT2Config(n_embd=d, n_head=h))
    program = (
        f"input(16x{d}) > res(ln > attn(heads={h}, bias, causal)) > res(ln > dense(->{4 * d}, bias) > gelu > "
        f"dense(->{d}, bias))"
    )
    assert paramsym.parse(program).params == torch_params(block)
    symbolic = paramsym.parse(
        "input(T x d) > res(ln > attn(heads=h, bias, causal)) > res(ln > dense(->4d, bias) > gelu > dense(->d, bias))"
    )
    assert str(symbolic.params) == "12*d**2 + 13*d"


@pytest.mark.parametrize(
    "program, value",
    [
        ("input(32x768) > attn(heads=12, head_dim=32, source=9x10)", "597504"),
        ("input(8x8x32) > attn(heads=4, bias, window=4, kv_heads=2)", "3364"),
        ("input(T x d) > attn(heads=h, kv_heads=g, bias)", r"\frac{2 d^{2} g}{h} + 2 d^{2} + \frac{2 d g}{h} + 2 d"),
        ("input(8x8x4) > prelu(shared)", "1"),  # a template that is a number alone
    ],
)
def test_latex_derivation(program, value):
    result = run("latex", program)
    assert result.returncode == 0, result.stderr
    assert f"= {value}" in result.stdout
