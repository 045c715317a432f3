"""`additiveattn` (SwiftFormer's efficient additive attention; docs/language.md, "Additive attention"). Checked
against timm's EfficientAdditiveAttention at several sizes (params, output shape, MACs by FlopCounterMode on meta
tensors: FLOPs / 2), imported whole in a small SwiftFormer-like block, and the export
(torch_modules.AdditiveAttention) computes what timm's module computes and imports back."""

from __future__ import annotations

import pytest
import torch
from timm.models.swiftformer import EfficientAdditiveAttention
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.imported import ours, torch_truth
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import AdditiveAttention


def counted(program: str) -> dict:
    values = paramsym.parse(program).evaluate()
    return {"params": values["params"], "macs": values["macs"]}


def macs_of(module: nn.Module, *args) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args)
    return counter.get_total_flops() // 2


# (H, W, d)
CASES = [(56, 56, 48), (7, 7, 220), (14, 10, 56), (3, 5, 8)]


@pytest.mark.parametrize("H, W, d", CASES)
def test_counts_as_timm(H, W, d):
    with torch.device("meta"):
        theirs = EfficientAdditiveAttention(in_dims=d, token_dim=d).eval()
        x = torch.zeros(1, d, H, W)
        assert theirs(x).shape == (1, d, H, W)
        macs = macs_of(theirs, x)
    program = f"input({H}x{W}x{d}) > additiveattn"
    assert counted(program) == {"params": torch_params(theirs), "macs": macs}
    assert list(paramsym.parse(program).output_shape.dims()) == [H, W, d]


class Block(nn.Module):
    """SwiftFormer's block, shortened: a depthwise convolution, the attention with a layer scale, residual."""

    def __init__(self, d: int):
        super().__init__()
        self.dw = nn.Conv2d(d, d, 3, padding=1, groups=d)
        self.attn = EfficientAdditiveAttention(in_dims=d, token_dim=d)
        self.gamma = nn.Parameter(torch.ones(d, 1, 1))

    def forward(self, x):
        x = self.dw(x)
        return x + self.gamma * self.attn(x)


@pytest.mark.parametrize("H, W, d", CASES[1:])
def test_imports_whole(H, W, d):
    with torch.device("meta"):
        model = Block(d).eval()
    text, numbers = ours(model, (H, W, d))
    assert "additiveattn" in text, text
    truth = torch_truth(model, (H, W, d))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}
    assert numbers["out"] == (H, W, d) and truth["out"] == (d, H, W)


def test_other_configurations_are_refused():
    with torch.device("meta"):
        wider = nn.Sequential(EfficientAdditiveAttention(in_dims=16, token_dim=8))
    with pytest.raises(paramsym.ParamsymError, match="not additive attention as the language writes it"):
        paramsym.from_torch(wider, (4, 4, 16))


def test_needs_a_map():
    with pytest.raises(paramsym.ParamsymShapeError, match="attends over the positions of a map"):
        paramsym.parse("input(16x8) > additiveattn")


@pytest.mark.parametrize("H, W, d", CASES[1:])
def test_export_computes_timms(H, W, d):
    network = paramsym.parse(f"input({H}x{W}x{d}) > additiveattn")
    whole = paramsym.to_torch(network).eval()
    (mine,) = [m for m in whole.modules() if isinstance(m, AdditiveAttention)]
    theirs = EfficientAdditiveAttention(in_dims=d, token_dim=d).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    mine.load_state_dict(theirs.state_dict())
    x = torch.randn(2, d, H, W)
    with torch.no_grad():
        assert torch.allclose(mine(x), theirs(x), atol=1e-5)
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    assert macs_of(whole, torch.zeros(1, d, H, W)) == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text
