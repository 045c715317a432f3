"""x[..., :H, :W] that keeps every element is the value itself (cpubone's ConvAttention crops its upsampling's
output, which overshoots only on odd sizes); a crop that removes anything stays refused, naming the indexing."""

from __future__ import annotations

import pytest
import torch
from timm.models.cpubone import ConvAttention
from torch import nn

import paramsym
from helpers.imported import ours, torch_truth


class Cropped(nn.Module):
    def __init__(self, rows: int, cols: int):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.rows, self.cols = rows, cols

    def forward(self, x):
        return self.conv(x)[..., : self.rows, : self.cols]


@pytest.mark.parametrize("rows, cols", [(8, 8), (9, 12)])
def test_a_crop_to_the_whole_map_is_the_map(rows, cols):
    text, numbers = ours(Cropped(rows, cols).eval(), (8, 8, 4))
    assert text.strip().split("\n")[-1].strip() == "> conv3x3(4->8, pad=1, bias)", text
    truth = torch_truth(Cropped(rows, cols).eval(), (8, 8, 4))
    assert (numbers["params"], numbers["macs"]) == (truth["params"], truth["macs"])


def test_a_crop_that_removes_positions_is_refused():
    with pytest.raises(paramsym.ParamsymError, match=r"indexing x\[..., :6, :8\]"):
        paramsym.from_torch(Cropped(6, 8).eval(), (8, 8, 4))


# (channels, map side, stride): cpubone_nano's sizes, where the transposed convolution gives the map back exactly
@pytest.mark.parametrize("d, side, stride", [(64, 14, 2), (128, 7, 1), (32, 16, 4)])
def test_cpubone_attention_imports(d, side, stride):
    with torch.device("meta"):
        module = nn.Sequential(ConvAttention(d, att_stride=stride, att_kernel=5 if stride > 1 else 3)).eval()
    _, numbers = ours(module, (side, side, d))
    truth = torch_truth(module, (side, side, d))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}


def test_cpubone_attention_that_overshoots_is_refused():
    """On an odd map with stride 2 the upsampling gives one row and column more, which the crop removes."""
    with torch.device("meta"):
        module = nn.Sequential(ConvAttention(64, att_stride=2, att_kernel=5)).eval()
    with pytest.raises(paramsym.ParamsymError, match=r"indexing x\[..., :13, :13\]"):
        paramsym.from_torch(module, (13, 13, 64))
