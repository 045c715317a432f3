"""`haloattn(->c, heads=h, head_dim=e, block=b, halo=r, stride=s)`, HaloNet's blocked local attention (a paramsym
extension, docs/language.md "Halo attention"): queries of each block against the keys and values of the block and a
halo around it, relative-position logits from a row table and a column table, no output projection. Checked
against timm's HaloAttn at several sizes (params, output shape, MACs by FlopCounterMode on meta tensors: FLOPs / 2),
imported whole in timm's SelfAttnBlock, and the export (torch_modules.HaloAttention) computes what timm's module
computes and imports back."""

from __future__ import annotations

import pytest
import torch
from timm.layers.halo_attn import HaloAttn
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.cli_helpers import run
from helpers.imported import ours, torch_truth
from paramsym.frameworks.torch_modules import HaloAttention


def measured(build, shape: tuple) -> dict:
    with torch.device("meta"):
        module = build().eval()
        x = torch.zeros(1, *shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(x)
    params = sum(p.numel() for p in module.parameters())
    *_, h, w = y.shape
    return {"params": params, "macs": counter.get_total_flops() // 2, "out": (h, w, y.shape[1])}


def counted(program: str) -> dict:
    net = paramsym.parse(program)
    values = net.evaluate()
    return {
        "params": values["params"],
        "macs": values["macs"],
        "out": tuple(int(net.value(n)) for n in net.output_shape.dims()),
    }


# (d, c, H, W, heads, head_dim or None, block, halo, stride, bias): HaloNet's sizes (halonet26t, haloregnetz_b's
# block of 7, whose stride 2 pools), other widths, non-square maps, a halo of 0
CASES = [
    (64, 64, 16, 16, 8, None, 8, 2, 1, False),
    (128, 256, 32, 32, 8, None, 8, 2, 2, False),
    (64, 128, 16, 16, 4, 16, 8, 3, 2, True),
    (48, 48, 14, 14, 4, 8, 7, 2, 2, False),
    (32, 32, 8, 12, 2, None, 4, 1, 1, True),
    (16, 24, 6, 6, 3, 4, 3, 0, 1, False),
]


def program(d, c, H, W, h, e, block, halo, stride, bias) -> str:
    parts = [f"->{c}", f"heads={h}"] + [f"head_dim={e}"] * (e is not None) + [f"block={block}", f"halo={halo}"]
    pools = stride == 2 and block % 2 == 1  # timm pools the output when the stride does not divide the block
    parts += [f"stride={stride}"] * (stride != 1 and not pools) + ["bias"] * bias
    return f"input({H}x{W}x{d}) > haloattn({', '.join(parts)})" + (" > avgpool2x2" if pools else "")


def timm_halo(d, c, h, e, block, halo, stride, bias):
    return HaloAttn(d, c, stride=stride, num_heads=h, dim_head=e, block_size=block, halo_size=halo, qkv_bias=bias)


@pytest.mark.parametrize("d, c, H, W, h, e, block, halo, stride, bias", CASES)
def test_counts_as_timm(d, c, H, W, h, e, block, halo, stride, bias):
    expected = measured(lambda: timm_halo(d, c, h, e or c // h, block, halo, stride, bias), (d, H, W))
    assert counted(program(d, c, H, W, h, e, block, halo, stride, bias)) == expected


def test_formula():
    net = paramsym.parse("input(H x W x d) > haloattn(->c, heads=h, head_dim=e, block=b, halo=r, stride=s)")
    values = {"H": 32, "W": 16, "d": 64, "c": 128, "h": 4, "e": 16, "b": 8, "r": 3, "s": 2}
    got = net.evaluate(**values)
    T, Q, w = 32 * 16, 32 * 16 // 4, 8 + 2 * 3
    assert got["params"] == 64 * 4 * 16 + 64 * (4 * 16 + 128) + 2 * (2 * w - 1) * 16
    assert got["macs"] == (
        Q * 64 * 64 + T * 64 * (64 + 128) + 4 * Q * w * w * 16 + 4 * Q * 2 * (2 * w - 1) * 16 + Q * w * w * 128
    )
    assert got["kv_cache"] == T * (64 + 128)


REFUSED = [
    ("input(16x256) > haloattn(->256, heads=4, block=4, halo=1)", "attends within the blocks of a map"),
    ("input(8x8x64) > haloattn(->64, block=4, halo=1)", "needs heads="),
    ("input(8x8x64) > haloattn(->64, heads=4, halo=1)", "needs block="),
    ("input(8x8x64) > haloattn(->64, heads=4, block=4)", "needs halo="),
    ("input(8x8x64) > haloattn(->64, heads=3, block=4, halo=1)", "heads=3 does not divide the 64 output channels"),
    ("input(8x12x64) > haloattn(->64, heads=4, block=8, halo=1)", "block=8 does not divide the map's width 12"),
    ("input(14x14x64) > haloattn(->64, heads=4, block=7, halo=1, stride=2)", "stride=2 does not divide block=7"),
    ("input(8x8x64) > haloattn(->64, heads=4, block=4, halo=1.5)", "halo must be a whole number"),
]


@pytest.mark.parametrize("text, message", REFUSED)
def test_refused(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()


def test_explain():
    text = " ".join(run("explain", "input(16x16x64) > haloattn(->64, heads=8, block=8, halo=2)").stdout.split())
    assert "a window of 12 x 12 around it" in text
    assert "a table of 23 x 8 for the rows and one for the columns" in text and "368 parameters" in text


# ---- the import: timm's HaloAttn whole, in its block -----------------------------------------------------------


@pytest.mark.parametrize("d, c, H, W, h, e, block, halo, stride, bias", CASES[2:])
def test_imports_whole(d, c, H, W, h, e, block, halo, stride, bias):
    with torch.device("meta"):  # in a model (the model itself is traced through)
        module = nn.Sequential(timm_halo(d, c, h, e, block, halo, stride, bias)).eval()
    text, numbers = ours(module, (H, W, d))
    assert text.split(" > ", 1)[1].replace("\n", "").replace("  ", "") in program(
        d, c, H, W, h, e if e and e != c // h else None, block, halo, stride, bias
    ), text
    truth = torch_truth(module, (H, W, d))
    assert {k: numbers[k] for k in ("params", "macs")} == {k: truth[k] for k in ("params", "macs")}


def test_self_attention_block_imports():
    """timm's SelfAttnBlock (HaloNet's bottleneck with the attention in place of the 3x3 convolution)."""
    from timm.models.byobnet import LayerFn, SelfAttnBlock

    with torch.device("meta"):
        layers = LayerFn()
        layers.self_attn = lambda dim, stride=1, feat_size=None, **dd: HaloAttn(
            dim, stride=stride, block_size=8, halo_size=2, **dd
        )
        block = SelfAttnBlock(128, 256, stride=2, bottle_ratio=0.25, layers=layers, feat_size=(16, 16)).eval()
    text, numbers = ours(block, (16, 16, 128))
    assert "haloattn(->64, heads=8, block=8, halo=2, stride=2)" in text, text
    truth = torch_truth(block, (16, 16, 128))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}


def test_scaled_positions_are_refused():
    """timm's scale_pos_embed=True scales the relative logits with the scores: the counts are alike, the function
    is not, and the language's haloattn does not say it."""
    with torch.device("meta"):
        module = nn.Sequential(HaloAttn(32, 32, num_heads=2, block_size=4, halo_size=1, scale_pos_embed=True)).eval()
    with pytest.raises(paramsym.ParamsymError, match="scale_pos_embed=True"):
        paramsym.from_torch(module, (8, 8, 32))


# ---- the export ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "d, c, H, W, h, e, block, halo, stride, bias",
    [(32, 32, 8, 12, 2, 16, 4, 1, 1, False), (16, 24, 8, 8, 3, 4, 4, 2, 2, True), (8, 8, 6, 6, 1, 8, 3, 0, 1, False)],
)
def test_export_computes_timms_attention(d, c, H, W, h, e, block, halo, stride, bias):
    net = paramsym.parse(program(d, c, H, W, h, e, block, halo, stride, bias))
    whole = paramsym.to_torch(net).eval()
    (ours_module,) = [m for m in whole.modules() if isinstance(m, HaloAttention)]
    theirs = timm_halo(d, c, h, e, block, halo, stride, bias).eval()
    theirs.load_state_dict(ours_module.state_dict())
    x = torch.randn(2, d, H, W)
    with torch.no_grad():
        torch.testing.assert_close(ours_module(x), theirs(x))
    truth = torch_truth(whole, (H, W, d))
    assert (truth["params"], truth["macs"]) == (net.evaluate()["params"], net.evaluate()["macs"])
    back = paramsym.from_torch(whole, (H, W, d))
    assert f"haloattn(->{c}, heads={h}" in back, back
