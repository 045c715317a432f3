"""`resize(HxW)`: interpolation to given sizes (nearest, bilinear, bicubic), compared with PyTorch's F.interpolate
at several sizes: params, output shape, MACs (FlopCounterMode: none), the values of the export, the import of
F.interpolate(size=...) and nn.Upsample, and GhostNetV2 (its gate is resized from a pooled map back to the map)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.imported import ours, torch_truth


class Interpolate(nn.Module):
    def __init__(self, size: tuple, mode: str):
        super().__init__()
        self.size, self.mode = size, mode

    def forward(self, x):
        return F.interpolate(x, size=self.size, mode=self.mode)


CASES = [
    # (program, the input's spatial sizes, fan-in)
    ("input(3x3x8) > resize(7x7)", (7, 7), "nearest", 1),
    ("input(10x12x4) > resize(7x5)", (7, 5), "nearest", 1),
    ("input(9x4) > resize(13)", (13,), "nearest", 1),
    ("input(5x6x3) > resize(8x9, bilinear)", (8, 9), "bilinear", 4),
    ("input(240x240x3) > resize(224x224, bicubic)", (224, 224), "bicubic", 16),
    ("input(4x4x2) > resize(8x8, bicubic)", (8, 8), "bicubic", 16),
    ("input(4x4x2) > resize(3x11, bilinear)", (3, 11), "bilinear", 4),
]


@pytest.mark.parametrize("program, size, mode, fan_in", CASES)
def test_resize_counts_and_computes_what_interpolate_does(program, size, mode, fan_in):
    network = paramsym.parse(program)
    values = network.evaluate()
    *spatial, c = (int(d) for d in network.input_shape.dims())
    x = torch.randn(2, c, *spatial)
    module = Interpolate(size, mode)
    with FlopCounterMode(display=False) as counter:
        y = module(x)
    assert values["params"] == 0 and values["state"] == 0
    assert values["macs"] == counter.get_total_flops() == 0
    assert [int(d) for d in network.output_shape.dims()] == [*y.shape[2:], y.shape[1]]
    assert network.layers[-1].fan_in == fan_in
    exported = paramsym.to_torch(network)
    assert torch.allclose(exported(x), y, atol=1e-5)
    text = paramsym.from_torch(module, tuple(network.input_shape.dims()))
    assert text.splitlines()[-1].strip() == f"> {program.split(' > ')[1]}"


def test_upsample_by_a_whole_factor_stays_upsample_and_bicubic_is_a_resize():
    assert "upsample(2)" in paramsym.from_torch(nn.Sequential(nn.Upsample(scale_factor=2)), (4, 4, 3))
    text = paramsym.from_torch(nn.Sequential(nn.Upsample(scale_factor=2, mode="bicubic")), (4, 4, 3))
    assert text.splitlines()[-1].strip() == "> resize(8x8, bicubic)"


def test_align_corners_is_refused():
    class Corners(nn.Module):
        def forward(self, x):
            return F.interpolate(x, size=(7, 7), mode="bilinear", align_corners=True)

    with pytest.raises(paramsym.ParamsymError, match="align_corners=True"):
        paramsym.from_torch(Corners(), (4, 4, 3))


def test_antialias_is_refused():
    class Smooth(nn.Module):
        def forward(self, x):
            return F.interpolate(x, size=(3, 3), mode="bilinear", antialias=True)

    with pytest.raises(paramsym.ParamsymError, match="antialias=True"):
        paramsym.from_torch(Smooth(), (8, 8, 3))


def test_symbolic_sizes():
    network = paramsym.parse("input(H x W x C) > resize(A x B, bilinear)")
    assert [str(d) for d in network.output_shape.dims()] == ["A", "B", "C"]


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(16) > resize(7x7)", "resize resizes the spatial axes, but its input is"),
        ("input(8x8x3) > resize(7)", "resize gives 1 sizes but its input has 2 spatial axes"),
        ("input(8x3) > resize(7, bicubic)", "interpolates on H x W x C maps"),
        ("input(8x8x3) > resize(7x7, bilinear, bicubic)", "takes one of nearest, bilinear and bicubic"),
        ("input(8x8x3) > resize(0x7)", "must be a positive whole number"),
        ("input(8x3) > resize(2.5)", "is not a whole number"),
        ("input(8x8x3) > resize", "resize needs its output size"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words):
        paramsym.parse(program).evaluate()


def test_pytorch_refuses_what_resize_refuses():
    with pytest.raises((RuntimeError, ValueError)):
        F.interpolate(torch.randn(1, 3, 8), size=(7,), mode="bicubic")


def test_ghostnetv2_imports_exactly():
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        model = timm.create_model("ghostnetv2_100", pretrained=False)
    text, counted = ours(model, (224, 224, 3))
    truth = torch_truth(model, (224, 224, 3))
    assert "resize(7x7)" in text
    assert (counted["params"], counted["state"], counted["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counted["out"] == truth["out"]
