"""Norms over the channels of a map, compared with timm's modules at several sizes: `rmsnorm` on a map (RmsNorm2d,
RmsNormAct2d), `simplenorm` (SimpleNorm, SimpleNorm2d: x / std, not centred) and `grn` (GlobalResponseNorm, channels
first and last): params, state, output shape, MACs (FlopCounterMode), the values of the export and the import of
each module; and the timm models made of them."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.imported import ours, torch_truth
from helpers.round_trip import randomize_and_copy

timm = pytest.importorskip("timm")
from timm.layers.grn import GlobalResponseNorm  # noqa: E402
from timm.layers.norm import RmsNorm2d, SimpleNorm, SimpleNorm2d  # noqa: E402
from timm.layers.norm_act import RmsNormAct2d  # noqa: E402


class ChannelsLastGrn(nn.Module):
    """GRN as ConvNeXt V2's MLP uses it: on (N, H, W, C), between two Linear layers."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels)
        self.grn = GlobalResponseNorm(channels, channels_last=True)
        self.fc2 = nn.Linear(channels, channels)
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return self.conv(self.fc2(self.grn(self.fc1(x.permute(0, 2, 3, 1)))).permute(0, 3, 1, 2))


def _measured(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    with FlopCounterMode(display=False) as counter:
        y = module(x)
    return y, counter.get_total_flops() // 2 // x.shape[0]


CASES = [
    # (program, the module, the text its import writes)
    ("input(7x5x16) > rmsnorm", lambda c: RmsNorm2d(c), "rmsnorm"),
    ("input(3x9x6) > rmsnorm(noaffine)", lambda c: RmsNorm2d(c, affine=False), "rmsnorm(noaffine)"),
    ("input(4x4x32) > rmsnorm > gelu", lambda c: RmsNormAct2d(c, act_layer=nn.GELU), "rmsnorm > gelu"),
    ("input(6x6x8) > rmsnorm > relu", lambda c: RmsNormAct2d(c), "rmsnorm > relu"),
    ("input(8x8x12) > simplenorm", lambda c: SimpleNorm2d(c), "simplenorm"),
    ("input(5x3x7) > simplenorm(noaffine)", lambda c: SimpleNorm2d(c, affine=False), "simplenorm(noaffine)"),
    ("input(8x8x20) > grn", lambda c: GlobalResponseNorm(c, channels_last=False), "grn"),
    ("input(3x11x5) > grn", lambda c: GlobalResponseNorm(c, channels_last=False), "grn"),
]


@pytest.mark.parametrize("program, build, imported", CASES)
def test_counts_values_and_import_match_timm(program, build, imported):
    network = paramsym.parse(program)
    values = network.evaluate()
    h, w, c = (int(d) for d in network.input_shape.dims())
    theirs = build(c)
    x = torch.randn(2, c, h, w)
    y, macs = _measured(theirs, x)
    assert values["params"] == sum(p.numel() for p in theirs.parameters())
    assert values["state"] == 0 == sum(b.numel() for b in theirs.state_dict().values()) - values["params"]
    assert values["macs"] == macs == 0 and y.shape == x.shape
    assert [int(d) for d in network.output_shape.dims()] == [h, w, c]
    exported = paramsym.to_torch(network)
    randomize_and_copy(list(theirs.parameters()), list(exported.parameters()))
    assert torch.allclose(exported(x), theirs(x), atol=1e-5)
    text = paramsym.from_torch(nn.Sequential(theirs), (h, w, c))
    assert text.split("\n", 1)[1].replace("\n", " ").replace("  ", "").strip("> ").strip() == imported


@pytest.mark.parametrize("channels, size", [(8, (6, 6)), (24, (3, 7)), (5, (1, 1))])
def test_grn_channels_last_in_an_mlp(channels, size):
    module = ChannelsLastGrn(channels)
    shape = (*size, channels)
    text, counted = ours(module, shape)
    truth = torch_truth(module, shape)
    assert "grn" in text
    assert (counted["params"], counted["state"], counted["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counted["out"] == (*truth["out"][1:], truth["out"][0])  # channels last, PyTorch's channels first
    assert counted["params"] == 3 * channels * channels + 3 * channels + 2 * channels


def test_simplenorm_on_a_vector_is_timms_simplenorm():
    network = paramsym.parse("input(10) > simplenorm")
    theirs = SimpleNorm(10)
    exported = paramsym.to_torch(network)
    randomize_and_copy(list(theirs.parameters()), list(exported.parameters()))
    x = torch.randn(3, 10)
    assert torch.allclose(exported(x), theirs(x), atol=1e-5)
    assert paramsym.from_torch(nn.Sequential(theirs), (10,)).split("\n")[1].strip() == "> simplenorm"
    assert network.evaluate()["params"] == 10


def test_symbolic_channels():
    assert str(paramsym.parse("input(H x W x C) > grn").quantity("params")) == "2*C"
    assert str(paramsym.parse("input(H x W x C) > simplenorm").quantity("params")) == "C"


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(16) > grn", "grn normalises each channel over the positions of a map"),
        ("input(8x16) > grn", "grn normalises each channel over the positions of a map"),
        ("input(4x4x16) > grn(8)", "grn says it has 8 channels"),
        ("input(4x4x16) > grn(eps=-1)", "eps must be one number of at least 0"),
        ("input(4x4x16) > simplenorm(8)", "simplenorm says it has 8 channels"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words):
        paramsym.parse(program).evaluate()


def test_a_2d_norm_on_the_wrong_axis_is_refused():
    class Wrong(nn.Module):  # RmsNorm2d over axis 1 of a channels-last value: the height, not the channels
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.norm = RmsNorm2d(6)

        def forward(self, x):
            return self.norm(self.fc(x.permute(0, 2, 3, 1)))

    with pytest.raises(paramsym.ParamsymError):
        paramsym.from_torch(Wrong(), (6, 6, 4))


@pytest.mark.parametrize(
    "name, size, words",
    [
        ("convnext_zepto_rms", 224, "simplenorm"),
        ("convnextv2_atto", 224, "grn"),
        ("mobilenetv5_base", 256, "rmsnorm"),
    ],
)
def test_timm_models_import_exactly(name, size, words):
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    text, counted = ours(model, (size, size, 3))
    truth = torch_truth(model, (size, size, 3))
    assert words in text
    assert (counted["params"], counted["state"], counted["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counted["out"] == truth["out"]
