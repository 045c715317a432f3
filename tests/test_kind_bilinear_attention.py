"""`bat(groups=g, block=b)`, BAT's bilinear attention transform (a paramsym extension, docs/language.md "Bilinear
attention transform"), and `dropchannels(P)` (nn.Dropout2d). Checked against timm's BilinearAttnTransform at
several sizes (params, BatchNorm state, output shape, MACs by FlopCounterMode on meta tensors), imported whole in
timm's BatNonLocalAttn, and the export (torch_modules.BilinearTransform) computes what timm's module computes and
imports back."""

from __future__ import annotations

import pytest
import torch
from timm.layers.non_local_attn import BatNonLocalAttn, BilinearAttnTransform
from torch import nn

import paramsym
from helpers.cli_helpers import run
from helpers.imported import ours, torch_truth
from paramsym.frameworks.torch_modules import BilinearTransform

# (C, H, W, groups, block): bat_resnext26ts's (block 8 on 64x64 down to 8x8), other groups, non-square maps
CASES = [(16, 64, 64, 2, 8), (32, 8, 8, 2, 8), (24, 14, 21, 3, 7), (8, 4, 8, 1, 4)]


def counted(text: str) -> dict:
    net = paramsym.parse(text)
    values = net.evaluate()
    out = tuple(int(net.value(n)) for n in net.output_shape.dims())
    return {"params": values["params"], "state": values["state"], "out": out[-1:] + out[:-1], "macs": values["macs"]}


@pytest.mark.parametrize("C, H, W, g, b", CASES)
def test_counts_as_timm(C, H, W, g, b):
    with torch.device("meta"):
        module = BilinearAttnTransform(C, b, g).eval()
    assert counted(f"input({H}x{W}x{C}) > bat(groups={g}, block={b})") == torch_truth(module, (H, W, C))


def test_formula():
    got = paramsym.parse("input(H x W x C) > bat(groups=g, block=b)").evaluate(H=16, W=24, C=32, g=4, b=8)
    assert got["params"] == 32 * 4 + 8 + 2 * (4 * 8 * 64 * 4 + 64 * 4) + 32 * 32 + 64
    assert got["state"] == 8 + 64
    assert got["macs"] == 16 * 24 * 32 * 4 + 2 * 64 * 4 * 4 * 8 + 32 * 16 * 16 * 24 + 32 * 16 * 24 * 24 + 16 * 24 * 1024


REFUSED = [
    ("input(64x16) > bat(groups=2, block=8)", "multiplies the rows and columns of a map"),
    ("input(8x8x16) > bat(block=8)", "needs groups="),
    ("input(8x8x16) > bat(groups=3, block=8)", "groups=3 does not divide the 16 channels"),
    ("input(8x12x16) > bat(groups=2, block=8)", "block=8 does not divide the map's width 12"),
    ("input(8x8x16) > dropchannels(1.5)", "between 0 and 1"),
]


@pytest.mark.parametrize("text, message", REFUSED)
def test_refused(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()


def test_explain():
    text = " ".join(run("explain", "input(16x16x32) > bat(groups=2, block=8)").stdout.split())
    assert "reduces the 32 channels to 2 (68 parameters)" in text and "5,508 parameters" in text


@pytest.mark.parametrize("C, H, W, g, b", CASES)
def test_non_local_block_imports(C, H, W, g, b):
    """timm's BatNonLocalAttn: 1x1 conv, BN, ReLU; the transform; 1x1 conv, BN, ReLU; Dropout2d; the residual."""
    with torch.device("meta"):
        module = nn.Sequential(BatNonLocalAttn(C * 4, block_size=b, groups=g, rd_channels=C)).eval()
    text, numbers = ours(module, (H, W, C * 4))
    assert f"bat(groups={g}, block={b})" in text and "dropchannels(0.2)" in text, text
    truth = torch_truth(module, (H, W, C * 4))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}


@pytest.mark.parametrize("C, H, W, g, b", [(8, 8, 12, 2, 4), (6, 6, 6, 3, 3), (4, 4, 4, 1, 4)])
def test_export_computes_timms_transform(C, H, W, g, b):
    net = paramsym.parse(f"input({H}x{W}x{C}) > bat(groups={g}, block={b})")
    whole = paramsym.to_torch(net).eval()
    (ours_module,) = [m for m in whole.modules() if isinstance(m, BilinearTransform)]
    theirs = BilinearAttnTransform(C, b, g).eval()
    for m in theirs.modules():  # timm starts its BatchNorms' scales at 0; random ones test more
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight)
    ours_module.load_state_dict(theirs.state_dict())
    x = torch.randn(2, C, H, W)
    with torch.no_grad():
        torch.testing.assert_close(ours_module(x), theirs(x))
    truth = torch_truth(whole, (H, W, C))
    values = net.evaluate()
    assert (truth["params"], truth["state"], truth["macs"]) == (values["params"], values["state"], values["macs"])
    assert f"bat(groups={g}, block={b})" in paramsym.from_torch(whole, (H, W, C))


def test_dropchannels_exports_and_imports():
    net = paramsym.parse("input(8x8x4) > dropchannels(0.3)")
    module = paramsym.to_torch(net)
    assert any(isinstance(m, nn.Dropout2d) and m.p == 0.3 for m in module.modules())
    assert "dropchannels(0.3)" in paramsym.from_torch(nn.Sequential(nn.Conv2d(4, 4, 1), nn.Dropout2d(0.3)), (8, 8, 4))
