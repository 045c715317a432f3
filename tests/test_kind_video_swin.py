"""`attn(heads=h, window=a x b x c)` on a volume T x H x W x d (a paramsym extension for Video Swin, docs/language.md
"Attention") and `space2depth(2)` on a volume (the patches of each frame). Checked against torchvision's
ShiftedWindowAttention3d, its SwinTransformerBlock with that attention, its PatchMerging on (N, T, H, W, C) and the
swin3d_t model: params, output shape and MACs (FlopCounterMode on meta tensors: FLOPs / 2); the export
(torch_modules.WindowAttention3d) computes what torchvision computes and imports back."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.swin_transformer import PatchMerging, SwinTransformerBlock
from torchvision.models.video import swin3d_t
from torchvision.models.video.swin_transformer import ShiftedWindowAttention3d

import paramsym
from helpers.frameworks import torch_params
from helpers.import_check import check
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import WindowAttention3d


def measured(build, shape: tuple) -> tuple[int, int, list]:
    """(params, MACs, output shape without the batch) of a module built and run on meta, on channels-last `shape`."""
    with torch.device("meta"):
        module = build().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(torch.zeros(1, *shape, device="meta"))
    return torch_params(module), counter.get_total_flops() // 2, list(y.shape[1:])


def counted(program: str) -> tuple[int, int, list]:
    net = paramsym.parse(program)
    values = net.evaluate()
    return values["params"], values["macs"], [int(n) for n in net.output_shape.dims()]


def sides(window: tuple) -> str:
    return "x".join(map(str, window))


class ChannelsLast(nn.Module):
    """A module of Video Swin's, which takes (N, T, H, W, C), in a model that takes (N, C, T, H, W)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x.permute(0, 2, 3, 4, 1))


# ---- ShiftedWindowAttention3d: windows of a x b x c, cut to short axes, the volume padded, shifted or not -------

# (T, H, W, d, heads, window, shift, bias): divisible volumes, padded ones, axes shorter than the window (cut)
VOLUMES = [
    (8, 56, 56, 96, 3, (8, 7, 7), False, True),
    (8, 14, 14, 96, 3, (8, 7, 7), True, True),
    (4, 28, 28, 32, 2, (8, 7, 7), True, True),  # T = 4 < 8: windows of 4 x 7 x 7
    (8, 7, 7, 64, 4, (8, 7, 7), True, True),  # one window: no shift anywhere
    (8, 12, 12, 32, 2, (8, 7, 7), True, True),  # 12 pads to 14
    (5, 9, 10, 16, 2, (2, 4, 3), False, False),  # every axis padded
    (6, 6, 6, 24, 3, (3, 3, 3), True, False),
    (3, 5, 4, 8, 1, (1, 2, 2), False, True),
    (2, 3, 3, 12, 4, (4, 4, 4), True, True),  # every axis cut
]


def volume_program(T, H, W, d, heads, window, shift, bias, pad) -> str:
    options = [f"heads={heads}"] + ["bias"] * bias + [f"window={sides(window)}"] + ["shift"] * shift + ["pad"] * pad
    return f"input({T}x{H}x{W}x{d}) > attn({', '.join(options)})"


def needs_pad(T, H, W, window) -> bool:
    return any(n % min(w, n) for n, w in zip((T, H, W), window))


@pytest.mark.parametrize("T, H, W, d, heads, window, shift, bias", VOLUMES)
def test_shifted_window_attention_3d(T, H, W, d, heads, window, shift, bias):
    program = volume_program(T, H, W, d, heads, window, shift, bias, needs_pad(T, H, W, window))
    shift_size = [w // 2 for w in window] if shift else [0, 0, 0]

    def build():
        return ShiftedWindowAttention3d(d, list(window), shift_size, heads, qkv_bias=bias, proj_bias=bias)

    assert counted(program) == measured(build, (T, H, W, d))
    # read whole by the import, with the padding and the cut windows its forward applies
    text = paramsym.from_torch(ChannelsLast(build()), (T, H, W, d))
    assert counted(text) == counted(program), text


def test_volume_window_formulas():
    """The counts in symbols: the table ∏(2·side − 1)·h, each query scores a·b·c keys (on a volume that the
    window divides)."""
    net = paramsym.parse("input(T x H x W x d) > attn(heads=h, bias, window=a x b x c)")
    got = net.evaluate(T=8, H=56, W=56, d=96, h=3, a=8, b=7, c=7)
    positions = 8 * 56 * 56
    assert got["params"] == 4 * 96 * 96 + 4 * 96 + 15 * 13 * 13 * 3
    assert got["macs"] == positions * 4 * 96 * 96 + 2 * positions * 8 * 7 * 7 * 96
    assert got["kv_cache"] == 2 * positions * 96
    # a cube: window=w is w x w x w on a volume
    cube = paramsym.parse("input(7x14x14x16) > attn(heads=2, window=7)").evaluate()
    assert cube == paramsym.parse("input(7x14x14x16) > attn(heads=2, window=7x7x7)").evaluate()


@pytest.mark.parametrize(
    "program, message",
    [
        ("input(8x14x14x16) > attn(heads=2, window=8x7)", "three sides"),
        ("input(14x14x16) > attn(heads=2, window=8x7x7)", "one value"),
        ("input(8x12x14x16) > attn(heads=2, window=8x7x7)", "does not divide the volume"),
        ("input(8x14x14x16) > attn(heads=2, window=8x7x7, cpb=512)", "learned table"),
        ("input(8x14x14x16) > attn(heads=2, window=8x0x7)", "positive whole"),
        ("input(8x14x14x16) > attn(heads=2, grid=7)", "grid="),
    ],
)
def test_volume_window_refusals(program, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(program).evaluate()


# ---- SwinTransformerBlock with ShiftedWindowAttention3d, PatchMerging on a volume -----------------------------

BLOCKS = [(8, 56, 56, 96, 3, False), (8, 56, 56, 96, 3, True), (4, 12, 12, 32, 2, True), (8, 7, 7, 64, 4, True)]


@pytest.mark.parametrize("T, H, W, d, heads, shift", BLOCKS)
def test_video_swin_block(T, H, W, d, heads, shift):
    window = (8, 7, 7)
    attention = volume_program(T, H, W, d, heads, window, shift, True, needs_pad(T, H, W, window))
    head, _, body = attention.partition(" > ")
    program = f"{head} > res(ln > {body}) > res(ln > dense(->{4 * d}, bias) > gelu > dense(->{d}, bias))"
    shift_size = [w // 2 for w in window] if shift else [0, 0, 0]

    def build():
        return SwinTransformerBlock(
            d, heads, list(window), shift_size, attn_layer=ShiftedWindowAttention3d, stochastic_depth_prob=0.0
        )

    assert counted(program) == measured(build, (T, H, W, d))


@pytest.mark.parametrize("T, H, W, C", [(8, 56, 56, 96), (4, 6, 10, 8), (1, 2, 2, 4)])
def test_patch_merging_on_a_volume(T, H, W, C):
    program = f"input({T}x{H}x{W}x{C}) > space2depth(2) > ln > dense(->{2 * C})"
    assert counted(program) == measured(lambda: PatchMerging(C), (T, H, W, C))
    text = paramsym.from_torch(ChannelsLast(PatchMerging(C)), (T, H, W, C))
    assert "space2depth(2) > ln > dense" in text, text
    assert counted(text) == counted(program)


def test_space2depth_on_a_volume_keeps_time():
    net = paramsym.parse("input(4x6x10x8) > space2depth(2)")
    assert [int(n) for n in net.output_shape.dims()] == [4, 3, 5, 32]
    with pytest.raises(paramsym.ParamsymError, match="does not divide"):
        paramsym.parse("input(4x5x10x8) > space2depth(2)").evaluate()


# ---- the whole model: swin3d_t imports exactly -----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(16, 224, 224, 3), (8, 224, 224, 3), (16, 192, 192, 3)])
def test_swin3d_t_imports_exactly(shape):
    with torch.device("meta"):
        model = swin3d_t().eval()
    text = paramsym.from_torch(model, shape)
    assert "window=8x7x7" in text and "space2depth(2)" in text, text
    got = check(model, shape, text)
    assert got["wrong"] == "" and got["macs"] == got["torch_macs"], got
    assert got["params"] == 28_158_070


# ---- the export: WindowAttention3d computes torchvision's ShiftedWindowAttention3d, and imports back ---------


@pytest.mark.parametrize("T, H, W, d, heads, window, shift, bias", VOLUMES[2:])
def test_export_computes_torchvisions_attention(T, H, W, d, heads, window, shift, bias):
    network = paramsym.parse(volume_program(T, H, W, d, heads, window, shift, bias, needs_pad(T, H, W, window)))
    whole = paramsym.to_torch(network).eval()
    (ours,) = [m for m in whole.modules() if isinstance(m, WindowAttention3d)]
    assert torch_params(whole) == network.evaluate()["params"]
    shift_size = [w // 2 for w in window] if shift else [0, 0, 0]
    theirs = ShiftedWindowAttention3d(d, list(window), shift_size, heads, qkv_bias=bias, proj_bias=bias).eval()
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.randn_like(p))
            dict(ours.named_parameters())[name].copy_(p)
        x = torch.randn(2, T, H, W, d)
        want = theirs(x)
        got = whole(x.movedim(-1, 1)).movedim(1, -1)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4), (got - want).abs().max()
    text, back = import_back(network)
    assert back.evaluate() == network.evaluate(), text


def test_export_with_grouped_heads_imports_back():
    network = paramsym.parse("input(4x6x6x16) > attn(heads=4, kv_heads=2, head_dim=8, window=2x3x3, shift)")
    text, back = import_back(network)
    assert "kv_heads=2" in text and "window=2x3x3" in text, text
    assert back.evaluate() == network.evaluate()


def test_keras_refuses_the_volume_window():
    with pytest.raises(paramsym.ParamsymError, match="no Keras equivalent"):
        paramsym.keras_source(paramsym.parse("input(8x14x14x16) > attn(heads=2, window=8x7x7)", convention="keras"))
