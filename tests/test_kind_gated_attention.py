"""`attn(heads=h, gpsa)` (ConViT's gated positional self-attention) and `attn(heads=h, projbias)` (a bias on the
output projection only, timm's qkv_bias=False), paramsym extensions (docs/language.md "Attention"). Checked
against timm's convit.GPSA and convit.MHSA at several sizes: params, output shape and MACs (FlopCounterMode on meta
tensors: FLOPs / 2); GPSA is imported whole; the export computes what timm's GPSA computes and imports back."""

from __future__ import annotations

import pytest
import torch
from timm.models.convit import GPSA, MHSA
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.cli_helpers import run
from helpers.imported import ours, torch_truth
from paramsym.frameworks.torch_modules import GatedPositionalAttention


def measured(build, T: int, d: int) -> dict:
    with torch.device("meta"):
        module = build().eval()
        x = torch.zeros(1, T, d)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(x)
    return {
        "params": sum(p.numel() for p in module.parameters()),
        "macs": counter.get_total_flops() // 2,
        "out": tuple(y.shape[1:]),
    }


def counted(program: str) -> dict:
    net = paramsym.parse(program)
    values = net.evaluate()
    return {
        "params": values["params"],
        "macs": values["macs"],
        "out": tuple(int(net.value(n)) for n in net.output_shape.dims()),
    }


# (side, d, heads, qkv_bias): ConViT-tiny's 14x14 tokens of 192 channels, other sizes
CASES = [(14, 192, 4, False), (14, 432, 9, False), (7, 64, 2, True), (5, 48, 3, False), (1, 16, 1, True)]


@pytest.mark.parametrize("side, d, h, bias", CASES)
def test_gpsa_counts_as_timm(side, d, h, bias):
    flag = "bias" if bias else "projbias"
    want = measured(lambda: GPSA(d, h, qkv_bias=bias), side * side, d)
    assert counted(f"input({side * side}x{d}) > attn(heads={h}, gpsa, {flag})") == want
    on_map = counted(f"input({side}x{side}x{d}) > attn(heads={h}, gpsa, {flag})")
    assert (on_map["params"], on_map["macs"]) == (want["params"], want["macs"])


@pytest.mark.parametrize("T, d, h", [(197, 192, 4), (50, 64, 2), (9, 48, 3)])
def test_projbias_counts_as_timm(T, d, h):
    want = measured(lambda: MHSA(d, h, qkv_bias=False), T, d)
    got = counted(f"input({T}x{d}) > attn(heads={h}, projbias)")
    assert got == want
    assert got["params"] == counted(f"input({T}x{d}) > attn(heads={h})")["params"] + d


def test_formulas():
    gpsa = paramsym.parse("input(T x d) > attn(heads=h, gpsa)")
    plain = paramsym.parse("input(T x d) > attn(heads=h)")
    values = {"T": 196, "d": 192, "h": 4}
    assert gpsa.evaluate(**values)["params"] - plain.evaluate(**values)["params"] == 5 * 4
    assert gpsa.evaluate(**values)["macs"] - plain.evaluate(**values)["macs"] == 3 * 4 * 196 * 196


REFUSED = [
    ("input(10x32) > attn(heads=2, gpsa)", "10 is not a square number"),
    ("input(16x32) > attn(heads=2, gpsa, kv_heads=1)", "does not go with kv_heads="),
    ("input(8x8x32) > attn(heads=2, gpsa, window=4)", "does not go with window="),
    ("input(16x32) > attn(heads=2, gpsa, causal)", "does not go with 'causal'"),
    ("input(16x32) > attn(heads=2, bias, projbias)", "give one"),
]


@pytest.mark.parametrize("program, message", REFUSED)
def test_refused(program, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(program).evaluate()


def test_explain():
    text = " ".join(run("explain", "input(196x192) > attn(heads=4, gpsa, projbias)").stdout.split())
    assert "Gated positional self-attention" in text and "20 parameters" in text
    assert "A bias on the output projection only" in text


# ---- the import ------------------------------------------------------------------------------------------------


class Tokens(nn.Module):
    def __init__(self, attention: nn.Module, d: int):
        super().__init__()
        self.stem, self.attn = nn.Conv2d(3, d, 2, stride=2), attention

    def forward(self, x):
        t = self.stem(x).flatten(2).transpose(1, 2)
        return t + self.attn(t)


@pytest.mark.parametrize("side, d, h, bias", CASES[2:4])
def test_gpsa_imports_whole(side, d, h, bias):
    with torch.device("meta"):
        model = Tokens(GPSA(d, h, qkv_bias=bias), d).eval()
    shape = (2 * side, 2 * side, 3)
    text, numbers = ours(model, shape)
    assert f"attn(heads={h}, gpsa, {'bias' if bias else 'projbias'})" in text, text
    truth = torch_truth(model, shape)
    assert (numbers["params"], numbers["macs"]) == (truth["params"], truth["macs"])


# ---- the export ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side, d, h, bias", [(4, 32, 2, False), (3, 24, 3, True)])
def test_export_computes_timms_gpsa(side, d, h, bias):
    program = f"input({side}x{side}x{d}) > attn(heads={h}, gpsa, {'bias' if bias else 'projbias'})"
    net = paramsym.parse(program)
    whole = paramsym.to_torch(net).eval()
    (mine,) = [m for m in whole.modules() if isinstance(m, GatedPositionalAttention)]
    theirs = GPSA(d, h, qkv_bias=bias).eval()
    theirs.load_state_dict(mine.state_dict(), strict=False)
    x = torch.randn(2, d, side, side)
    with torch.no_grad():
        expected = theirs(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(2, d, side, side)
        torch.testing.assert_close(mine(x), expected)
    truth = torch_truth(whole, (side, side, d))
    values = net.evaluate()
    assert (truth["params"], truth["macs"]) == (values["params"], values["macs"])
    assert "gpsa" in paramsym.from_torch(whole, (side, side, d))


def test_export_projbias_imports_back():
    net = paramsym.parse("input(10x32) > attn(heads=4, projbias)")
    module = paramsym.to_torch(net).eval()
    assert sum(p.numel() for p in module.parameters()) == net.evaluate()["params"]
    assert "attn(heads=4, projbias)" in paramsym.from_torch(module, (10, 32))
