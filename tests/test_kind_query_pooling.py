"""`qpoolattn(heads=h, ->D, window=w, stride=s[, pad, bias])` (attention with max-pooled queries) and
`winposembed(A x B, window=w)` (a table resized to the map plus a window table tiled), paramsym extensions for timm's
HieraDet (SAM2's image encoder) and Hiera (docs/language.md, Attention): the counts against timm's models built small
at several sizes and configurations (params, buffers, output shape, MACs by FlopCounterMode on meta tensors), the
exports computing what timm computes (weights copied), and imported back."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from timm.models.hiera import Hiera
from timm.models.hieradet_sam2 import HieraDet, MultiScaleAttention, window_partition, window_unpartition
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.import_check import differences, program_counts, torch_counts
from helpers.round_trip import import_back
from paramsym.errors import ImportRefused
from paramsym.frameworks.torch_modules import QueryPoolingAttention, WindowedPositionEmbedding


def imported(build, shape: tuple) -> tuple[str, tuple, object]:
    with torch.device("meta"):
        model = build().eval()
    text = paramsym.from_torch(model, shape)
    return text, program_counts(text), torch_counts(model, shape)


# HieraDet built small: windows that divide the map and windows that do not (padded), a global block, q pooling
# at every stage change or at the first only, layer scales, and the patch embedding's own positions
HIERADET = [
    (dict(embed_dim=16, num_heads=1, stages=(1, 2, 2, 1), global_att_blocks=(4,), window_spec=(8, 4, 8, 4)), 128),
    (dict(embed_dim=16, num_heads=1, stages=(1, 2, 2, 1), global_att_blocks=(4,), window_spec=(8, 4, 8, 4)), 160),
    (dict(embed_dim=24, num_heads=2, stages=(1, 1, 2, 1), global_att_blocks=(3,), window_spec=(4, 2, 4, 2)), 96),
    (
        dict(
            embed_dim=16,
            num_heads=2,
            stages=(2, 1, 1),
            q_pool=1,
            global_att_blocks=(),
            window_spec=(4, 8, 4),
            init_values=1e-5,
            global_pos_size=(5, 5),
        ),
        64,
    ),
]


@pytest.mark.parametrize("config, side", HIERADET)
def test_hieradet_imports_exactly(config, side):
    text, ours, theirs = imported(lambda: HieraDet(num_classes=10, **config), (side, side, 3))
    assert "winposembed(" in text and "qpoolattn(" in text, text
    assert differences(ours, theirs) == [] and ours[3] == theirs.macs, text


# Hiera built small: mask units of q_stride ** levels (square and not), mask-unit attention at the first two stages,
# the learned table of tokens or the windowed positions (abs_win_pos_embed), a non-square image
HIERA = [
    (dict(img_size=(64, 64), embed_dim=16, num_heads=1, stages=(1, 1, 2, 1)), (64, 64)),
    (dict(img_size=(96, 128), embed_dim=16, num_heads=1, stages=(1, 2, 1, 1)), (96, 128)),
    (
        dict(
            img_size=(64, 64),
            embed_dim=24,
            num_heads=2,
            stages=(1, 1, 1, 1),
            abs_win_pos_embed=True,
            global_pos_size=(4, 4),
            init_values=1e-4,
        ),
        (64, 64),
    ),
    (
        dict(
            img_size=(64, 64),
            embed_dim=16,
            num_heads=1,
            stages=(1, 1, 1),
            q_pool=2,
            mask_unit_size=(4, 4),
            mask_unit_attn=(True, False, False),
        ),
        (64, 64),
    ),
]


# use_expand_proj=False (hiera_*_abswin): the shortcut where the width doubles is the input max pooled and average
# pooled, side by side
HIERA.append(
    (
        dict(
            img_size=(64, 64),
            embed_dim=16,
            num_heads=1,
            stages=(1, 2, 1, 1),
            use_expand_proj=False,
            abs_win_pos_embed=True,
            global_pos_size=(8, 8),
        ),
        (64, 64),
    )
)


@pytest.mark.parametrize("config, side", HIERA)
def test_hiera_imports_exactly(config, side):
    text, ours, theirs = imported(lambda: Hiera(num_classes=10, **config), (*side, 3))
    assert "qpoolattn(" in text, text
    assert differences(ours, theirs) == [] and ours[3] == theirs.macs, text


def test_hiera_refuses_mask_units_that_are_not_windows_and_other_sizes():
    # mask units of 4 with 3 unrolled strides of 2: a mask unit's tokens are not a window of the map
    with torch.device("meta"):
        model = Hiera(img_size=(64, 64), embed_dim=16, num_heads=1, stages=(1, 1, 1, 1), mask_unit_size=(4, 4))
    with pytest.raises(ImportRefused, match="not a window of the map"):
        paramsym.from_torch(model.eval(), (64, 64, 3))
    with torch.device("meta"):
        model = Hiera(img_size=(64, 64), embed_dim=16, num_heads=1, stages=(1, 1, 1, 1))
    with pytest.raises(ImportRefused, match="built for a map of 16x16 tokens"):
        paramsym.from_torch(model.eval(), (96, 96, 3))


# (H, W, d, D, heads, window, stride, pad)
ATTENTION = [
    (16, 16, 8, 16, 2, 8, 2, False),
    (10, 12, 8, 16, 2, 4, 2, True),
    (8, 8, 12, 12, 3, 4, 1, False),
    (9, 7, 8, 16, 4, None, 2, False),
    (6, 6, 8, 8, 1, None, 1, False),
]


def attention_program(H, W, d, D, heads, window, stride, pad) -> str:
    parts = [f"heads={heads}"] + [f"->{D}"] * (d != D) + [f"window={window}"] * (window is not None)
    parts += [f"stride={stride}", "bias"] + ["pad"] * pad
    return f"input({H}x{W}x{d}) > qpoolattn({', '.join(parts)})"


def timm_attention(attn: MultiScaleAttention, x, window, stride):
    """HieraDet's MultiScaleBlock around its attention (without the norms and the shortcut): the map (N, H, W, C)
    padded and partitioned into windows, attended, unpartitioned, cut back."""
    H, W = x.shape[1:3]
    if window is None:
        return attn(x)
    pad_h, pad_w = (window - H % window) % window, (window - W % window) % window
    y = window_partition(F.pad(x, (0, 0, 0, pad_w, 0, pad_h)), (window, window))
    y = attn(y)
    small = window // stride
    y = window_unpartition(y, (small, small), ((H + pad_h) // stride, (W + pad_w) // stride))
    return y[:, : H // stride, : W // stride]


@pytest.mark.parametrize("H, W, d, D, heads, window, stride, pad", ATTENTION)
def test_export_computes_timms_attention_and_counts(H, W, d, D, heads, window, stride, pad):
    network = paramsym.parse(attention_program(H, W, d, D, heads, window, stride, pad))
    whole = paramsym.to_torch(network).eval()
    (ours,) = [m for m in whole.modules() if isinstance(m, QueryPoolingAttention)]
    pool = torch.nn.MaxPool2d(stride, stride) if stride > 1 else None
    theirs = MultiScaleAttention(d, D, heads, q_pool=pool).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, H, W, d)
    with torch.no_grad():
        got = whole(x.movedim(-1, 1)).movedim(1, -1)
        assert torch.allclose(got, timm_attention(theirs, x, window, stride), atol=1e-5)
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:  # on meta tensors, as the imports count
        whole.to("meta")(torch.zeros(1, d, H, W, device="meta"))
    assert counter.get_total_flops() // 2 == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


def test_windowed_positions_compute_hieradets():
    network = paramsym.parse("input(16x24x8) > winposembed(5x7, window=4)")
    values = network.evaluate()
    assert values["params"] == (35 + 16) * 8 and values["macs"] == 0
    ours = paramsym.to_torch(network).eval()
    (table,) = [m for m in ours.modules() if isinstance(m, WindowedPositionEmbedding)]
    model = HieraDet(embed_dim=8, num_heads=1, global_pos_size=(5, 7), window_spec=(4, 4, 4, 4)).eval()
    with torch.no_grad():
        table.table.copy_(torch.randn_like(table.table))
        table.window.copy_(torch.randn_like(table.window))
        model.pos_embed.copy_(table.table)
        model.pos_embed_window.copy_(table.window)
        x = torch.randn(2, 16, 24, 8)
        assert torch.allclose(ours(x.movedim(-1, 1)).movedim(1, -1), model._pos_embed(x), atol=1e-5)
    assert torch_params(ours) == values["params"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


def test_formulas():
    import sympy

    d, D = sympy.Symbol("d", positive=True, integer=True), sympy.Symbol("D", positive=True, integer=True)
    net = paramsym.parse("input(H x W x d) > qpoolattn(heads=h, ->D, window=w, stride=2, bias)")
    assert sympy.expand(net.params - (3 * d * D + D**2 + 4 * D)) == 0
    got = net.evaluate(H=16, W=16, d=8, D=16, h=2, w=8)
    assert got["macs"] == 256 * 8 * 48 + 2 * 64 * 64 * 16 + 64 * 16 * 16
    positions = paramsym.parse("input(H x W x d) > winposembed(A x B, window=w)")
    assert positions.evaluate(H=8, W=8, d=4, A=3, B=2, w=4)["params"] == (6 + 16) * 4


@pytest.mark.parametrize(
    "text, message",
    [
        ("input(16x16x8) > qpoolattn(window=8)", "needs its number of heads"),
        ("input(64x8) > qpoolattn(heads=2)", "pools the queries over a map"),
        ("input(16x16x8) > qpoolattn(heads=3)", "heads=3 does not divide the width 8"),
        ("input(16x16x8) > qpoolattn(heads=2, window=6, stride=4, pad)", "stride=4 does not divide the window 6"),
        ("input(12x12x8) > qpoolattn(heads=2, window=8)", "window=8 does not divide the map's side 12"),
        ("input(16x16x8) > qpoolattn(heads=2, pad)", "needs window="),
        ("input(16x16x8) > winposembed(7x7)", "needs window="),
        ("input(16x16x8) > winposembed(49, window=4)", "rows and columns of its table"),
        ("input(12x12x8) > winposembed(7x7, window=8)", "window=8 does not divide the map's side 12"),
        ("input(64x8) > winposembed(7x7, window=8)", "adds positions to a map"),
    ],
)
def test_refusals(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()
