"""`xca(heads=h)` (cross-covariance attention) and `fourierpos(H x W)` (fixed Fourier positions), XCiT's and
EdgeNeXt's layers (docs/language.md, "Cross-covariance attention and Fourier positions"). Checked against timm's
XCA, CrossCovarianceAttn and PositionalEncodingFourier at several sizes (params, output shape, MACs by
FlopCounterMode on meta tensors: FLOPs / 2), imported whole in a small model, and the exports
(torch_modules.CrossCovarianceAttention, FourierPositions) compute what timm's modules compute and import back."""

from __future__ import annotations

import pytest
import torch
from timm.models.edgenext import CrossCovarianceAttn
from timm.models.edgenext import PositionalEncodingFourier as EdgeFourier
from timm.models.xcit import XCA, PositionalEncodingFourier
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.imported import ours, torch_truth
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import CrossCovarianceAttention, FourierPositions


def counted(program: str) -> dict:
    values = paramsym.parse(program).evaluate()
    return {"params": values["params"], "macs": values["macs"]}


def macs_of(module: nn.Module, *args) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args)
    return counter.get_total_flops() // 2


# ---- xca -------------------------------------------------------------------------------------------------------

# (T, d, heads, bias, timm's class)
XCA_CASES = [
    (784, 128, 4, True, XCA),
    (196, 192, 8, False, XCA),
    (64, 88, 4, True, CrossCovarianceAttn),
    (50, 24, 1, False, CrossCovarianceAttn),
]


@pytest.mark.parametrize("T, d, heads, bias, cls", XCA_CASES)
def test_xca_counts_as_timm(T, d, heads, bias, cls):
    with torch.device("meta"):
        theirs = cls(d, num_heads=heads, qkv_bias=bias).eval()
        x = torch.zeros(1, T, d)
        assert theirs(x).shape == (1, T, d)
        macs = macs_of(theirs, x)
    program = f"input({T}x{d}) > xca(heads={heads}{', bias' if bias else ''})"
    assert counted(program) == {"params": torch_params(theirs), "macs": macs}


class Tokens(nn.Module):
    """A patch embedding, its map as tokens with Fourier positions added (as XCiT does), an XCA on them."""

    def __init__(self, d: int, heads: int, bias: bool, cls=XCA, fourier=PositionalEncodingFourier, hidden=32):
        super().__init__()
        self.embed = nn.Conv2d(3, d, 4, stride=4)
        self.pos = fourier(hidden_dim=hidden, dim=d)
        self.attn = cls(d, num_heads=heads, qkv_bias=bias)
        self.edge = fourier is EdgeFourier

    def forward(self, x):
        x = self.embed(x)
        B, _, H, W = x.shape
        x = x.flatten(2).transpose(1, 2)
        table = self.pos((B, H, W)) if self.edge else self.pos(B, H, W)
        x = x + table.reshape(B, -1, x.shape[1]).permute(0, 2, 1)
        return self.attn(x)


# (H, W, d, heads, bias, attention, encoding, hidden)
MODEL_CASES = [
    (32, 32, 64, 4, True, XCA, PositionalEncodingFourier, 32),
    (24, 40, 48, 2, False, CrossCovarianceAttn, EdgeFourier, 32),
    (16, 16, 32, 1, True, XCA, EdgeFourier, 16),
]


@pytest.mark.parametrize("H, W, d, heads, bias, cls, fourier, hidden", MODEL_CASES)
def test_imports_whole(H, W, d, heads, bias, cls, fourier, hidden):
    with torch.device("meta"):
        model = Tokens(d, heads, bias, cls, fourier, hidden).eval()
    text, numbers = ours(model, (H, W, 3))
    grid = f"fourierpos({H // 4}x{W // 4}" + ("" if hidden == 32 else f", hidden={hidden}") + ")"
    assert grid in text and f"xca(heads={heads}{', bias' if bias else ''})" in text, text
    truth = torch_truth(model, (H, W, 3))
    assert {k: numbers[k] for k in ("params", "state", "macs", "out")} == {
        k: truth[k] for k in ("params", "state", "macs", "out")
    }


@pytest.mark.parametrize("T, d, heads, bias, cls", XCA_CASES[1:])
def test_xca_export_computes_timms(T, d, heads, bias, cls):
    network = paramsym.parse(f"input({T}x{d}) > xca(heads={heads}{', bias' if bias else ''})")
    whole = paramsym.to_torch(network).eval()
    (mine,) = [m for m in whole.modules() if isinstance(m, CrossCovarianceAttention)]
    theirs = cls(d, num_heads=heads, qkv_bias=bias).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    mine.load_state_dict(theirs.state_dict())
    x = torch.randn(2, T, d)
    with torch.no_grad():
        assert torch.allclose(mine(x.transpose(1, 2)).transpose(1, 2), theirs(x), atol=1e-4)
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    assert macs_of(whole, torch.zeros(1, d, T)) == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


# ---- fourierpos ------------------------------------------------------------------------------------------------

# (H, W, d, hidden)
FOURIER_CASES = [(14, 14, 192, 32), (28, 20, 64, 32), (7, 9, 48, 16)]


@pytest.mark.parametrize("H, W, d, hidden", FOURIER_CASES)
def test_fourierpos_counts_as_timm(H, W, d, hidden):
    with torch.device("meta"):
        theirs = PositionalEncodingFourier(hidden_dim=hidden, dim=d).eval()
        assert theirs(1, H, W).shape == (1, d, H, W)
        macs = macs_of(theirs, 1, H, W)
    suffix = "" if hidden == 32 else f", hidden={hidden}"
    for program in (
        f"input({H * W}x{d}) > fourierpos({H}x{W}{suffix})",
        f"input({H}x{W}x{d}) > fourierpos({H}x{W}{suffix})",
    ):
        assert counted(program) == {"params": torch_params(theirs), "macs": macs}, program


@pytest.mark.parametrize("H, W, d, hidden", FOURIER_CASES)
def test_fourierpos_export_computes_timms(H, W, d, hidden):
    suffix = "" if hidden == 32 else f", hidden={hidden}"
    network = paramsym.parse(f"input({H * W}x{d}) > fourierpos({H}x{W}{suffix})")
    whole = paramsym.to_torch(network).eval()
    (mine,) = [m for m in whole.modules() if isinstance(m, FourierPositions)]
    theirs = PositionalEncodingFourier(hidden_dim=hidden, dim=d).eval()
    edge = EdgeFourier(hidden_dim=hidden, dim=d).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p))
    mine.load_state_dict(theirs.state_dict())
    edge.load_state_dict(theirs.state_dict())
    x = torch.randn(2, d, H * W)
    with torch.no_grad():
        table = theirs(2, H, W).reshape(2, d, H * W)
        assert torch.allclose(mine(x), x + table, atol=1e-4)
        assert torch.allclose(edge((2, H, W)).reshape(2, d, H * W), table, atol=1e-4)
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    assert macs_of(whole, torch.zeros(1, d, H * W)) == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


def test_formulas():
    xca = paramsym.parse("input(T x d) > xca(heads=h, bias)").evaluate(T=196, d=192, h=8)
    assert xca["params"] == 4 * 192 * 192 + 192 + 8 + 3 * 192
    assert xca["macs"] == 196 * (3 * 192 * 192 + 2 * 192 * 192 // 8 + 192 * 192)
    grid = paramsym.parse("input(T x d) > fourierpos(H x W)").evaluate(T=56, H=7, W=8, d=64)
    assert grid["params"] == 64 * 64 + 64 and grid["macs"] == 56 * 64 * 64


REFUSED = [
    ("input(64x32) > xca", "needs its number of heads"),
    ("input(64x32) > xca(heads=3)", "heads=3 does not divide the 32 channels"),
    ("input(8x8x32) > xca(heads=2)", "attends across the channels of a sequence"),
    ("input(64x32) > fourierpos", "needs the grid"),
    ("input(64x32) > fourierpos(8)", "encodes a grid of rows and columns"),
    ("input(64x32) > fourierpos(7x8)", "adds to 7·8 positions, but the sequence has 64"),
    ("input(8x8x32) > fourierpos(8x6)", "encodes 6 columns, but the map"),
]


@pytest.mark.parametrize("text, message", REFUSED)
def test_refused(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()


def test_another_temperature_is_refused():
    with torch.device("meta"):
        model = Tokens(32, 2, True).eval()
        model.pos.temperature = 20000
    with pytest.raises(paramsym.ParamsymError, match="temperature 10000"):
        paramsym.from_torch(model, (16, 16, 3))


def test_table_rearranged_otherwise_is_refused():
    class Columns(Tokens):
        def forward(self, x):
            x = self.embed(x)
            B, C, H, W = x.shape
            x = x.flatten(2).transpose(1, 2)
            table = self.pos(B, H, W).transpose(2, 3)  # columns first: not the tokens' order
            return x + table.reshape(B, C, -1).permute(0, 2, 1)

    with torch.device("meta"):
        model = Columns(32, 2, True).eval()
    with pytest.raises(paramsym.ParamsymError, match="other than as the positions of its map row by row"):
        paramsym.from_torch(model, (16, 24, 3))
