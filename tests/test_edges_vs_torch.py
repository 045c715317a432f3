"""The edges of each layer kind against the real framework ("what PyTorch refuses, paramsym refuses; what it
accepts, PyTorch builds"; docs/language.md, At the edges): outputs of size 1 or below, kernels larger than the
padded input, pooling pads past half the kernel, ceil_mode's last window, groups, heads and key/value heads that do
not divide, odd rotary widths, windows larger than the map, 1x1 inputs, one channel, one position, and sizes that
are symbols. Each row is built in the real framework (torch.nn, torchvision's Swin attention, transformers' Llama
and DeepSeek attention, Keras on the torch backend) and run on one sample of the program's input: both refuse, or
both accept with the same output shape, parameters and MACs (FlopCounterMode's FLOPs / 2; none for recurrent
layers, whose products it does not count). What PyTorch accepts but paramsym refuses on purpose (an output with no
value in it, a slice past the channels) is a table of its own, with the rule it keeps."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers import frameworks  # noqa: F401  (sets KERAS_BACKEND=torch before keras is imported)
from helpers.frameworks import keras_counts

RECURRENT = ("lstm(", "gru(", "rnn(")


class SelfAttention(nn.Module):
    """nn.MultiheadAttention on one sequence (queries, keys and values from it)."""

    def __init__(self, d: int, h: int, bias: bool = False):
        super().__init__()
        self.attention = nn.MultiheadAttention(d, h, bias=bias, batch_first=True)

    def forward(self, x):
        return self.attention(x, x, x, need_weights=False)[0]


class Steps(nn.Module):
    """A torch recurrent layer's outputs of every step (or of the last one)."""

    def __init__(self, layer: nn.Module, last: bool = False):
        super().__init__()
        self.layer, self.last = layer, last

    def forward(self, x):
        y = self.layer(x)[0]
        return y[:, -1] if self.last else y


class Channels(nn.Module):
    """x[:, a:b], channels first."""

    def __init__(self, a: int, b: int):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return x[:, self.a : self.b]


def _transformers_attention(family: str, **config):
    """transformers' attention layer with its rotary embedding, as a module of one sequence (N, T, d)."""
    transformers = pytest.importorskip("transformers")
    if family == "llama":
        from transformers.models.llama import modeling_llama as modeling

        cfg = transformers.LlamaConfig(vocab_size=8, intermediate_size=8, num_hidden_layers=1, **config)
        attention_cls, rotary_cls = modeling.LlamaAttention, modeling.LlamaRotaryEmbedding
    else:
        from transformers.models.deepseek_v2 import modeling_deepseek_v2 as modeling

        cfg = transformers.DeepseekV2Config(
            vocab_size=8, intermediate_size=8, moe_intermediate_size=8, num_hidden_layers=1, first_k_dense_replace=1,
            **config,
        )  # fmt: skip
        attention_cls, rotary_cls = modeling.DeepseekV2Attention, modeling.DeepseekV2RotaryEmbedding
    cfg._attn_implementation = "sdpa"
    attention, rotary = attention_cls(cfg, 0), rotary_cls(cfg)

    class OneSequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = attention

        def forward(self, x):
            positions = rotary(x, torch.arange(x.shape[1])[None])
            return self.attention(hidden_states=x, attention_mask=None, position_embeddings=positions)[0]

    return OneSequence()


def _deepseek(rope_dim: int):
    """transformers' DeepseekV2Attention of d = 8, 2 heads, a latent of 4, heads of 4 + rope_dim (values 4)."""
    return _transformers_attention(
        "deepseek", hidden_size=8, num_attention_heads=2, num_key_value_heads=2, kv_lora_rank=4,
        qk_rope_head_dim=rope_dim, qk_nope_head_dim=4, v_head_dim=4, q_lora_rank=None,
    )  # fmt: skip


def _swin(d: int, h: int, window: int, shift: int):
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    return ShiftedWindowAttention(d, [window, window], [shift, shift], h)


# (program, the real module, its input's shape channels-last, its layout: "cf" channels first as nn.Conv2d,
# "cl" channels last as nn.Linear or a batch_first sequence)
ROWS = [
    # convolutions: the kernel against the padded input, dilation, stride past the input, groups
    ("input(2x2x3) > conv3x3(->4)", lambda: nn.Conv2d(3, 4, 3, bias=False), (2, 2, 3), "cf"),
    ("input(2x2x3) > conv3x3(->4, pad=1)", lambda: nn.Conv2d(3, 4, 3, padding=1, bias=False), (2, 2, 3), "cf"),
    ("input(5x5x3) > conv3x3(->4, dilation=3)", lambda: nn.Conv2d(3, 4, 3, dilation=3, bias=False), (5, 5, 3), "cf"),
    ("input(7x7x3) > conv3x3(->4, dilation=3)", lambda: nn.Conv2d(3, 4, 3, dilation=3, bias=False), (7, 7, 3), "cf"),
    ("input(3x3x3) > conv1x1(->4, stride=5)", lambda: nn.Conv2d(3, 4, 1, stride=5, bias=False), (3, 3, 3), "cf"),
    ("input(4x4x4) > conv3x3(->4, pad=5)", lambda: nn.Conv2d(4, 4, 3, padding=5, bias=False), (4, 4, 4), "cf"),
    ("input(1x1x1) > conv3x3(->1, pad=1)", lambda: nn.Conv2d(1, 1, 3, padding=1, bias=False), (1, 1, 1), "cf"),
    ("input(4x4x3) > conv3x3(->4, groups=2)", lambda: nn.Conv2d(3, 4, 3, groups=2, bias=False), (4, 4, 3), "cf"),
    ("input(4x4x4) > conv3x3(->6, groups=4)", lambda: nn.Conv2d(4, 6, 3, groups=4, bias=False), (4, 4, 4), "cf"),
    ("input(4x4x3) > dwconv3x3(->4)", lambda: nn.Conv2d(3, 4, 3, groups=3, bias=False), (4, 4, 3), "cf"),
    ("input(4x4x3) > dwconv3x3(->6)", lambda: nn.Conv2d(3, 6, 3, groups=3, bias=False), (4, 4, 3), "cf"),
    (
        "input(1x1x3) > conv3x3(->4, pad=same, dilation=2)",
        lambda: nn.Conv2d(3, 4, 3, padding="same", dilation=2, bias=False),
        (1, 1, 3),
        "cf",
    ),
    (
        "input(6x6x4) > dwconv3x3(->8, stride=2, dilation=2, pad=2)",
        lambda: nn.Conv2d(4, 8, 3, 2, 2, 2, groups=4, bias=False),
        (6, 6, 4),
        "cf",
    ),
    (
        "input(1x1x3) > deconv3x3(->4, pad=2)",
        lambda: nn.ConvTranspose2d(3, 4, 3, padding=2, bias=False),
        (1, 1, 3),
        "cf",
    ),
    (
        "input(1x1x3) > deconv3x3(->4, pad=1)",
        lambda: nn.ConvTranspose2d(3, 4, 3, padding=1, bias=False),
        (1, 1, 3),
        "cf",
    ),
    (
        "input(2x2x4) > deconv2x2(->3, groups=2)",
        lambda: nn.ConvTranspose2d(4, 3, 2, groups=2, bias=False),
        (2, 2, 4),
        "cf",
    ),
    # pooling: output 0, ceil_mode's last window (not started in the right padding), pads, dilation, 3-D
    ("input(1x1x3) > maxpool2x2", lambda: nn.MaxPool2d(2), (1, 1, 3), "cf"),
    ("input(1x1x3) > maxpool2x2(ceil)", lambda: nn.MaxPool2d(2, ceil_mode=True), (1, 1, 3), "cf"),
    ("input(1x1x3) > avgpool2x2(ceil)", lambda: nn.AvgPool2d(2, ceil_mode=True), (1, 1, 3), "cf"),
    ("input(5x5x3) > maxpool2x2(ceil)", lambda: nn.MaxPool2d(2, ceil_mode=True), (5, 5, 3), "cf"),
    (
        "input(4x4x3) > maxpool2x2(stride=3, pad=1, ceil)",  # ceil gives 3, the third window starts in the padding
        lambda: nn.MaxPool2d(2, stride=3, padding=1, ceil_mode=True),
        (4, 4, 3),
        "cf",
    ),
    (
        "input(4x4x3) > avgpool2x2(stride=3, pad=1, ceil)",
        lambda: nn.AvgPool2d(2, stride=3, padding=1, ceil_mode=True),
        (4, 4, 3),
        "cf",
    ),
    ("input(1x4) > avgpool3(stride=3, pad=1, ceil)", lambda: nn.AvgPool1d(3, 3, 1, ceil_mode=True), (1, 4), "cf"),
    ("input(2x4) > avgpool2(stride=2, pad=1, ceil)", lambda: nn.AvgPool1d(2, 2, 1, ceil_mode=True), (2, 4), "cf"),
    ("input(3x3x3) > avgpool4x4", lambda: nn.AvgPool2d(4), (3, 3, 3), "cf"),
    ("input(3x3x3) > avgpool4x4(pad=2)", lambda: nn.AvgPool2d(4, padding=2), (3, 3, 3), "cf"),
    ("input(3x3x3) > maxpool4x4(pad=2)", lambda: nn.MaxPool2d(4, padding=2), (3, 3, 3), "cf"),
    ("input(8x8x3) > maxpool2x2(pad=2)", lambda: nn.MaxPool2d(2, padding=2), (8, 8, 3), "cf"),
    ("input(3x3x3) > maxpool3x3(dilation=2, pad=1)", lambda: nn.MaxPool2d(3, dilation=2, padding=1), (3, 3, 3), "cf"),
    ("input(2x2x3) > maxpool3x3(dilation=2, pad=1)", lambda: nn.MaxPool2d(3, dilation=2, padding=1), (2, 2, 3), "cf"),
    ("input(4x4x4) > maxpool3x1(pad=1x1)", lambda: nn.MaxPool2d((3, 1), padding=(1, 1)), (4, 4, 4), "cf"),
    ("input(1x1x1x2) > maxpool2x2x2(ceil)", lambda: nn.MaxPool3d(2, ceil_mode=True), (1, 1, 1, 2), "cf"),
    ("input(1x1x1x2) > avgpool2x2x2(ceil)", lambda: nn.AvgPool3d(2, ceil_mode=True), (1, 1, 1, 2), "cf"),
    ("input(2x2x2x4) > avgpool3x3x3(pad=1, stride=1)", lambda: nn.AvgPool3d(3, 1, 1), (2, 2, 2, 4), "cf"),
    ("input(2x2x2x4) > maxpool3x3x3(pad=1, stride=1)", lambda: nn.MaxPool3d(3, 1, 1), (2, 2, 2, 4), "cf"),
    ("input(1x1x3) > gap", lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), (1, 1, 3), "cf"),
    ("input(1x1x3) > adaptiveavgpool(4)", lambda: nn.AdaptiveAvgPool2d(4), (1, 1, 3), "cf"),
    ("input(1x1x3) > adaptivemaxpool(3x2)", lambda: nn.AdaptiveMaxPool2d((3, 2)), (1, 1, 3), "cf"),
    ("input(5x3) > adaptiveavgpool(7)", lambda: nn.AdaptiveAvgPool1d(7), (5, 3), "cf"),
    # norms: groups, one channel, a vector
    ("input(4x4x4) > gn(groups=3)", lambda: nn.GroupNorm(3, 4), (4, 4, 4), "cf"),
    ("input(4x4x4) > gn(groups=8)", lambda: nn.GroupNorm(8, 4), (4, 4, 4), "cf"),
    ("input(4x6) > gn(groups=3)", lambda: nn.GroupNorm(3, 6), (4, 6), "cf"),
    ("input(1x1x1) > bn", lambda: nn.BatchNorm2d(1), (1, 1, 1), "cf"),
    ("input(4) > bn", lambda: nn.BatchNorm1d(4), (4,), "cf"),
    ("input(4x4x3) > prelu(4)", lambda: nn.PReLU(4), (4, 4, 3), "cf"),
    # attention: heads and key/value heads that do not divide, one position, one channel, odd rotary widths
    ("input(4x6) > attn(heads=4)", lambda: SelfAttention(6, 4), (4, 6), "cl"),
    ("input(4x8) > attn(heads=4)", lambda: SelfAttention(8, 4), (4, 8), "cl"),
    ("input(1x8) > attn(heads=2, causal)", lambda: SelfAttention(8, 2), (1, 8), "cl"),
    ("input(1x1) > attn(heads=1, bias)", lambda: SelfAttention(1, 1, True), (1, 1), "cl"),
    (
        "input(6x8) > attn(heads=2, kv_heads=2, head_dim=3, rope)",
        lambda: _transformers_attention(
            "llama", hidden_size=8, num_attention_heads=2, num_key_value_heads=2, head_dim=3
        ),
        (6, 8),
        "cl",
    ),
    (
        "input(6x8) > attn(heads=4, kv_heads=3, head_dim=2, rope)",
        lambda: _transformers_attention(
            "llama", hidden_size=8, num_attention_heads=4, num_key_value_heads=3, head_dim=2
        ),
        (6, 8),
        "cl",
    ),
    (
        "input(6x8) > attn(heads=4, kv_heads=2, head_dim=2, rope)",
        lambda: _transformers_attention(
            "llama", hidden_size=8, num_attention_heads=4, num_key_value_heads=2, head_dim=2
        ),
        (6, 8),
        "cl",
    ),
    (
        "input(1x8) > attn(heads=4, kv_heads=1, head_dim=2, rope, causal)",
        lambda: _transformers_attention(
            "llama", hidden_size=8, num_attention_heads=4, num_key_value_heads=1, head_dim=2
        ),
        (1, 8),
        "cl",
    ),
    # DeepSeek's latent attention: the rotary part of a head is odd (it was accepted, and its export failed)
    (
        "input(6x8) > mla(heads=2, kv_rank=4, rope_dim=3, nope_dim=4, v_dim=4)",
        lambda: _deepseek(rope_dim=3),
        (6, 8),
        "cl",
    ),
    (
        "input(6x8) > mla(heads=2, kv_rank=4, rope_dim=2, nope_dim=4, v_dim=4)",
        lambda: _deepseek(rope_dim=2),
        (6, 8),
        "cl",
    ),
    # Swin's windows larger than the map, or not dividing it: torchvision pads (the program says `pad`)
    ("input(4x4x8) > attn(heads=2, bias, window=8, pad)", lambda: _swin(8, 2, 8, 0), (4, 4, 8), "cl"),
    ("input(4x4x8) > attn(heads=2, bias, window=3, pad, shift)", lambda: _swin(8, 2, 3, 1), (4, 4, 8), "cl"),
    ("input(4x4x8) > attn(heads=2, bias, window=4, shift)", lambda: _swin(8, 2, 4, 2), (4, 4, 8), "cl"),
    # recurrent layers: the projection against the hidden size, no layers, one step of one value
    (
        "input(4x3) > lstm(->4, proj=4)",
        lambda: Steps(nn.LSTM(3, 4, proj_size=4, batch_first=True, bias=False)),
        (4, 3),
        "cl",
    ),
    (
        "input(4x3) > lstm(->4, proj=3)",
        lambda: Steps(nn.LSTM(3, 4, proj_size=3, batch_first=True, bias=False)),
        (4, 3),
        "cl",
    ),
    (
        "input(4x3) > rnn(->4, layers=0)",
        lambda: Steps(nn.RNN(3, 4, num_layers=0, batch_first=True, bias=False)),
        (4, 3),
        "cl",
    ),
    ("input(4x3) > gru(->0)", lambda: Steps(nn.GRU(3, 0, batch_first=True, bias=False)), (4, 3), "cl"),
    (
        "input(1x1) > lstm(->1, bias, bidirectional, last)",
        lambda: Steps(nn.LSTM(1, 1, batch_first=True, bidirectional=True), last=True),
        (1, 1),
        "cl",
    ),
    # channels: shuffle groups, space2depth's patch, slices inside the channels
    ("input(2x2x8) > shuffle(3)", lambda: nn.ChannelShuffle(3), (2, 2, 8), "cf"),
    ("input(2x2x8) > shuffle(8)", lambda: nn.ChannelShuffle(8), (2, 2, 8), "cf"),
    ("input(5x5x3) > space2depth(2)", lambda: nn.PixelUnshuffle(2), (5, 5, 3), "cf"),
    ("input(4x4x3) > space2depth(4)", lambda: nn.PixelUnshuffle(4), (4, 4, 3), "cf"),
    ("input(4x4x3) > space2depth(8)", lambda: nn.PixelUnshuffle(8), (4, 4, 3), "cf"),
    ("input(2x2x8) > slice(7, 8)", lambda: Channels(7, 8), (2, 2, 8), "cf"),
    # upsampling and padding
    ("input(5x5x3) > upsample(0)", lambda: nn.Upsample(scale_factor=0), (5, 5, 3), "cf"),
    ("input(5x3) > upsample(2, bilinear)", lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (5, 3), "cf"),
    ("input(1x1x3) > upsample(3, bilinear)", lambda: nn.Upsample(scale_factor=3, mode="bilinear"), (1, 1, 3), "cf"),
    ("input(4x4x3) > zeropad(-3)", lambda: nn.ZeroPad2d(-3), (4, 4, 3), "cf"),
    ("input(4x4x3) > zeropad(-1)", lambda: nn.ZeroPad2d(-1), (4, 4, 3), "cf"),
]

# sizes that are symbols: (program, its values, the real module at those values, shape, layout)
SYMBOLIC = (
    [
        (
            "input(H x 2) > maxpool3(stride=2, pad=1, ceil)",
            {"H": h},
            lambda: nn.MaxPool1d(3, 2, 1, ceil_mode=True),
            (h, 2),
        )
        for h in (1, 2, 3, 4)
    ]
    + [
        (
            "input(7 x 2) > avgpool3(stride=S, pad=1, ceil)",
            {"S": s},
            lambda s=s: nn.AvgPool1d(3, s, 1, ceil_mode=True),
            (7, 2),
        )
        for s in (2, 3, 4, 8)
    ]
    + [
        ("input(8x3) > conv1d(->4, k=K)", {"K": 8}, lambda: nn.Conv1d(3, 4, 8, bias=False), (8, 3)),
        ("input(8x3) > conv1d(->4, k=K)", {"K": 9}, lambda: nn.Conv1d(3, 4, 9, bias=False), (8, 3)),
        ("input(D x 4 x 4 x 2) > avgpool3x3x3(pad=1)", {"D": 2}, lambda: nn.AvgPool3d(3, padding=1), (2, 4, 4, 2)),
        ("input(D x 4 x 4 x 2) > avgpool3x3x3(pad=1)", {"D": 3}, lambda: nn.AvgPool3d(3, padding=1), (3, 4, 4, 2)),
        ("input(6 x 6) > gn(groups=G)", {"G": 4}, lambda: nn.GroupNorm(4, 6), (6, 6)),
        ("input(6 x 6) > gn(groups=G)", {"G": 3}, lambda: nn.GroupNorm(3, 6), (6, 6)),
        ("input(6 x 6 x 2) > space2depth(B)", {"B": 3}, lambda: nn.PixelUnshuffle(3), (6, 6, 2)),
        ("input(6 x 6 x 2) > space2depth(B)", {"B": 4}, lambda: nn.PixelUnshuffle(4), (6, 6, 2)),
        ("input(3 x 12) > attn(heads=h, bias)", {"h": 5}, lambda: SelfAttention(12, 5, True), (3, 12)),
        ("input(3 x 12) > attn(heads=h, bias)", {"h": 4}, lambda: SelfAttention(12, 4, True), (3, 12)),
        (
            "input(6x8) > mla(heads=2, kv_rank=4, rope_dim=P, nope_dim=4, v_dim=4)",
            {"P": 3},
            lambda: _deepseek(rope_dim=3),
            (6, 8),
        ),
    ]
)
SYMBOLIC_LAYOUT = {"attn(": "cl", "mla(": "cl"}


def _theirs(factory, shape, layout):
    """(output shape channels-last, parameters, MACs) of the real module on one sample, or None if it refuses to
    be built or to run."""
    try:
        module = factory()
        module.eval()
        *spatial, channels = shape
        x = torch.zeros(1, channels, *spatial) if layout == "cf" else torch.zeros(1, *shape)
        # the math backend: FlopCounterMode counts its products (not the fused CPU kernels')
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            y = module(x)
    except (RuntimeError, ValueError, TypeError, AssertionError):  # MultiheadAttention refuses by assertion
        return None
    out = list(y.shape[1:])
    if layout == "cf" and y.dim() > 2:
        out = out[1:] + out[:1]
    return out, sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2


def _ours(program, values=None):
    """(output shape, params, MACs) paramsym gives, or None if it refuses (with one located message)."""
    try:
        network = paramsym.parse(program, **(values or {}))
        counts = network.evaluate()
    except paramsym.ParamsymError as error:
        text = str(error)
        assert text.count("  --> line ") == 1 and "^" in text, text
        return None
    shape = [int(d.subs({s: values[s.name] for s in d.free_symbols})) for d in network.output_shape.dims()]
    return shape, counts["params"], counts["macs"]


def _agree(ours, theirs, program):
    assert (ours is None) == (theirs is None), f"{program}: paramsym {ours}, the framework {theirs}"
    if ours is not None:
        if program.split(" > ")[1].startswith(RECURRENT):
            ours, theirs = ours[:2], theirs[:2]  # FlopCounterMode counts no recurrent products
        assert ours == theirs, program


@pytest.mark.parametrize("program, factory, shape, layout", ROWS, ids=[r[0] for r in ROWS])
def test_paramsym_and_the_framework_agree_at_the_edge(program, factory, shape, layout):
    _agree(_ours(program), _theirs(factory, shape, layout), program)


@pytest.mark.parametrize("program, values, factory, shape", SYMBOLIC, ids=[f"{r[0]} {r[1]}" for r in SYMBOLIC])
def test_symbolic_sizes_agree_at_their_values(program, values, factory, shape):
    layout = next((v for k, v in SYMBOLIC_LAYOUT.items() if k in program), "cf")
    _agree(_ours(program, values), _theirs(factory, shape, layout), program)


EXPORTABLE = [r for r in ROWS if "pad)" not in r[0] and "pad, shift" not in r[0]]


@pytest.mark.parametrize("program, factory, shape, layout", EXPORTABLE, ids=[r[0] for r in EXPORTABLE])
def test_what_paramsym_accepts_its_export_runs_alike(program, factory, shape, layout):
    """The accepted rows, exported: the PyTorch module runs and counts as the real one."""
    ours = _ours(program)
    if ours is None:
        return
    exported = _theirs(lambda: paramsym.to_torch(paramsym.parse(program)), shape, "cf")
    assert exported is not None, program
    if program.split(" > ")[1].startswith(RECURRENT):
        exported, ours = exported[:2], ours[:2]
    assert exported == ours, program


# ---- what PyTorch runs and paramsym refuses, on purpose ------------------------------------------------
# (program, the module PyTorch runs, shape, layout, what PyTorch gives, the words of paramsym's message)
DELIBERATE = [
    # an output with no value: PyTorch returns an empty tensor, which is no network
    ("input(5x5x3) > adaptiveavgpool(0)", lambda: nn.AdaptiveAvgPool2d(0), (5, 5, 3), "cf", [0, 0, 3],
     "the output size must be a positive whole number, not 0"),
    ("input(4x4x3) > zeropad(-2)", lambda: nn.ZeroPad2d(-2), (4, 4, 3), "cf", [0, 0, 3],
     "zeropad crops more than it pads: an output size would be 0"),
    ("input(2x2x8) > slice(3, 3)", lambda: Channels(3, 3), (2, 2, 8), "cf", [2, 2, 0],
     "slice(3, 3) keeps no channel: a must be less than b"),
    # Python's slicing stops at the last channel: the program would say 9 channels, PyTorch gives 8
    ("input(2x2x8) > slice(0, 9)", lambda: Channels(0, 9), (2, 2, 8), "cf", [2, 2, 8],
     "slice(0, 9) goes past the 8 channels of its input"),
    # proj_size=0 is PyTorch's "no projection": the program leaves proj= out
    ("input(4x3) > lstm(->4, proj=0)", lambda: Steps(nn.LSTM(3, 4, proj_size=0, batch_first=True, bias=False)),
     (4, 3), "cl", [4, 4], "proj must be at least 1, not 0"),
    # a factor that is not whole: PyTorch's size is floor(n·s), which resize(...) writes (the hint says which)
    ("input(5x5x3) > upsample(1.5)", lambda: nn.Upsample(scale_factor=1.5), (5, 5, 3), "cf", [7, 7, 3],
     "write resize(7x7)"),
    ("input(100x3) > upsample(0.29)", lambda: nn.Upsample(scale_factor=0.29), (100, 3), "cf", [28, 3],
     "write resize(28)"),
    ("input(5x4x3) > upsample((3/2) x 2)", lambda: nn.Upsample(scale_factor=(1.5, 2)), (5, 4, 3), "cf", [7, 8, 3],
     "write resize(7x8)"),
]  # fmt: skip


@pytest.mark.parametrize(
    "program, factory, shape, layout, torch_shape, words", DELIBERATE, ids=[r[0] for r in DELIBERATE]
)
def test_what_paramsym_refuses_on_purpose(program, factory, shape, layout, torch_shape, words):
    theirs = _theirs(factory, shape, layout)
    assert theirs is not None and theirs[0] == torch_shape
    with pytest.raises(paramsym.ParamsymError) as caught:
        paramsym.parse(program).evaluate()
    assert words in str(caught.value)
    assert str(caught.value).count("  --> line ") == 1


def test_a_fractional_upsample_hint_names_the_size_pytorch_gives():
    """The hint's size is PyTorch's (floor of n·s in double precision: 100 x 0.29 is 28.999..., so 28), and the
    resize it suggests counts as PyTorch's Upsample."""
    for program, factory, shape, layout, torch_shape, words in (r for r in DELIBERATE if "upsample" in r[0]):
        written = words.split("write ")[1]
        fixed = program.replace(program.split(" > ")[1], written)
        assert _ours(fixed)[0] == torch_shape == _theirs(factory, shape, layout)[0]


def test_a_norm_whose_groups_do_not_divide_names_the_groups_that_do():
    with pytest.raises(paramsym.ParamsymArgumentError) as caught:
        paramsym.parse("input(4x4x12) > gn(groups=5)")
    text = str(caught.value)
    assert "groups=5 does not divide the 12 channels" in text
    assert "hint: groups may be 1, 2, 3, 4, 6, 12" in text


# ---- Keras ---------------------------------------------------------------------------------------------

# (program, Keras' layers, input shape): the exported model counts as Keras' own layers do
KERAS_ROWS = [
    ("input(1x1x3) > maxpool2x2(ceil)", lambda k: [k.layers.MaxPooling2D(2, padding="same")], (1, 1, 3)),
    ("input(4x4x3) > avgpool2x2(stride=3, pad=1, ceil)", None, (4, 4, 3)),
    ("input(3x3x3) > conv3x3(->4, stride=2, pad=same)",
     lambda k: [k.layers.Conv2D(4, 3, 2, "same", use_bias=False)], (3, 3, 3)),
    ("input(1x1x3) > deconv3x3(->4, pad=1)", None, (1, 1, 3)),
    ("input(4x4x4) > gn(groups=4)", lambda k: [k.layers.GroupNormalization(4)], (4, 4, 4)),
    ("input(6x8) > attn(heads=4, kv_heads=2, causal)", None, (6, 8)),
    ("input(1x1) > lstm(->1, bias, bidirectional, last)", None, (1, 1)),
    ("input(4x4x3) > space2depth(4)", None, (4, 4, 3)),
]  # fmt: skip


@pytest.mark.parametrize("program, stack, shape", KERAS_ROWS, ids=[r[0] for r in KERAS_ROWS])
def test_keras_export_counts_at_the_edge(program, stack, shape):
    import keras

    network = paramsym.parse(program, convention="keras")
    values = network.evaluate()
    model = paramsym.to_keras(network)
    want = (values["params"], values["state"], values["macs"])
    assert keras_counts(model, list(shape), batch=2) == want
    assert list(model.output_shape[1:]) == [int(d) for d in network.output_shape.dims()]
    if stack is not None:  # and Keras' own layers, written by hand, count the same
        own = keras.Sequential([keras.Input(shape=shape), *stack(keras)])
        assert keras_counts(own, list(shape), batch=2) == want
        assert own.output_shape == model.output_shape


def test_keras_refuses_an_output_padding_only_pytorch_takes():
    """PyTorch takes an output padding below the stride or the dilation; Keras below the stride only: the export
    says so instead of passing Keras' own error on."""
    import keras

    program = "input(8x8x4) > deconv3x3(->4, stride=1, dilation=2, outpad=1)"
    assert _ours(program) == _theirs(
        lambda: nn.ConvTranspose2d(4, 4, 3, dilation=2, output_padding=1, bias=False), (8, 8, 4), "cf"
    )
    with pytest.raises(ValueError):
        keras.layers.Conv2DTranspose(4, 3, dilation_rate=2, output_padding=1)
    with pytest.raises(paramsym.ParamsymUsageError, match="Keras' output padding must be smaller than the stride"):
        paramsym.to_keras(paramsym.parse(program))
