"""Products that are not per channel (docs/language.md, Scalar factors): `scale(shared)` (one learned factor for every
channel, NF-ResNet's and NFNet's skipinit gain), `scale(shared, bias)` (hgnetv2's LearnableAffineBlock), and
constant factors (`x * 0.2`, `x * self.alpha`), which an import reads as nothing. Checked against the torch modules:
params, output shape, MACs (FlopCounterMode FLOPs / 2)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.cli_helpers import run
from helpers.frameworks import keras_counts, torch_params, torch_run
from paramsym.errors import ImportRefused

timm = pytest.importorskip("timm")
from timm.models.hgnet import LearnableAffineBlock  # noqa: E402
from timm.models.nfnet import NormFreeNet, model_cfgs  # noqa: E402


def counted(text):
    network = paramsym.parse(text)
    values = network.evaluate()
    return values["params"], [int(d) for d in network.output_shape.dims()], values["macs"]


def measured(module, shape):
    out, macs = torch_run(module, shape, "cf")
    return torch_params(module), out, macs


@pytest.mark.parametrize(
    "program, params",
    [
        ("input(8x8x4) > scale", 4),
        ("input(8x8x4) > scale(shared)", 1),
        ("input(8x8x4) > scale(bias)", 8),
        ("input(8x8x4) > scale(shared, bias)", 2),
        ("input(6) > scale(shared)", 1),
        ("input(C) > scale(shared, bias)", 2),
        ("input(H x W x C) > scale(bias)", "2*C"),
    ],
)
def test_scale_params(program, params):
    network = paramsym.parse(program)
    assert str(network.params) == str(params)
    values = {name: 5 for name in ("C", "H", "W") if f"{name}" in program.replace("scale", "")}
    assert network.evaluate(**values)["macs"] == 0


@pytest.mark.parametrize(
    "program", ["input(8x8x4) > scale(shared)", "input(8x8x4) > scale(shared, bias)", "input(8x8x4) > scale(bias)"]
)
def test_export_and_import_back(program):
    """The PyTorch export (paramsym's LayerScale, shared and/or with a shift) has the program's params, shape and
    MACs (none: FlopCounterMode counts no element-wise product), and imports back to the same program."""
    network = paramsym.parse(program)
    module = paramsym.to_torch(network)
    assert counted(program) == measured(module, [8, 8, 4])
    assert paramsym.from_torch(module, (8, 8, 4), flat=True).replace("\n  > ", " > ").strip() == program


def test_export_computes_a_shared_affine():
    module = paramsym.to_torch(paramsym.parse("input(3x3x2) > scale(shared, bias)"))
    with torch.no_grad():
        module[0].weight.fill_(3.0)
        module[0].bias.fill_(0.5)
    x = torch.randn(1, 2, 3, 3)
    torch.testing.assert_close(module(x), 3.0 * x + 0.5)


def test_keras():
    """`scale(bias)` is Keras' 1-wide depthwise convolution with its bias; one factor for every channel has no
    Keras layer."""
    network = paramsym.parse("input(8x8x4) > scale(bias)", convention="keras")
    assert keras_counts(paramsym.to_keras(network), [8, 8, 4])[:2] == (8, 0)
    with pytest.raises(paramsym.ParamsymError, match="no layer that learns one factor for every channel"):
        paramsym.keras_source(paramsym.parse("input(8x8x4) > scale(shared)", convention="keras"))


class Products(nn.Module):
    """A convolution, then products by a learned scalar (shape () or (1,)), by Python numbers on either side, in place
    by a number, and a learned scalar on the left."""

    def __init__(self, shape=()):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.gain = nn.Parameter(torch.ones(shape))
        self.alpha = 0.2

    def forward(self, x):
        x = self.conv(x) * self.alpha
        x = 1.5 * torch.relu(x).mul_(1.7)
        return self.gain * x


@pytest.mark.parametrize("shape", [(), (1,)])
def test_learned_scalar_and_constant_factors_import_exactly(shape):
    module = Products(shape)
    text = paramsym.from_torch(module, (9, 8, 3), flat=True)
    assert text.replace("\n  > ", " > ") == "input(9x8x3) > conv3x3(3->6, bias) > relu > scale(shared)\n"
    assert counted(text) == measured(module, [9, 8, 3])


def test_learnable_affine_block_is_scale_shared_bias():
    module = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), LearnableAffineBlock(2.0, 0.5))
    text = paramsym.from_torch(module, (5, 5, 3), flat=True)
    assert text.replace("\n  > ", " > ").endswith("relu > scale(shared, bias)\n")
    assert counted(text) == measured(module, [5, 5, 3])


class ScalesAParameter(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.factor = nn.Parameter(torch.ones(shape))

    def forward(self, x):
        return self.conv(x) * self.factor


@pytest.mark.parametrize("shape", [(5,), (4, 5, 1)])
def test_a_parameter_neither_per_channel_nor_single_is_refused(shape):
    with pytest.raises(ImportRefused, match="neither one factor per channel nor one for every channel"):
        paramsym.from_torch(ScalesAParameter(shape), (5, 5, 3))


class InPlace(nn.Module):
    """NFNet's skipinit: `out.mul_(gain)`, whose result is not used, then `out * alpha + shortcut`."""

    def __init__(self, passed_on=True):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.drop = nn.Identity() if passed_on else nn.ReLU()
        self.gain = nn.Parameter(torch.tensor(0.0))

    def forward(self, x):
        out = self.drop(self.conv(x))
        out.mul_(self.gain)
        return out * 0.2 + x


def test_in_place_gain_after_an_identity():
    module = InPlace()
    text = paramsym.from_torch(module, (6, 6, 4), flat=True)
    assert "scale(shared)" in text
    assert counted(text) == measured(module, [6, 6, 4])


def test_in_place_gain_on_a_layer_is_refused():
    """x.mul_(gain) on the output of a layer: torch.fx's graph does not show which later uses see the scaled value."""
    with pytest.raises(ImportRefused, match="scales module 'drop' in place"):
        paramsym.from_torch(InPlace(passed_on=False), (6, 6, 4))


def meta_model(build):
    with torch.device("meta"):
        return build()


def meta_measured(model, size):
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model.eval()(torch.zeros(1, 3, *size, device="meta"))
    return torch_params(model), list(out.shape[1:]), counter.get_total_flops() // 2


@pytest.mark.parametrize("name", ["nf_resnet26", "nfnet_l0", "nf_regnet_b0"])
def test_nf_models_import_exactly(name):
    """Weight-standardised convolutions with a gain, constant factors (alpha, beta, gamma), an SE gate: params,
    output shape and MACs on the meta device (FlopCounterMode counts by shapes)."""
    model = meta_model(lambda: timm.create_model(name, pretrained=False))
    text = paramsym.from_torch(model, (96, 80, 3))
    assert counted(text) == meta_measured(model, (96, 80))


def test_nf_resnet_with_skipinit():
    """skipinit (DeepMind's NFNets): the in-place gain of shape () on every residual branch is `scale(shared)`."""
    cfg = dataclasses.replace(model_cfgs["nf_resnet26"], skipinit=True)
    model = meta_model(lambda: NormFreeNet(cfg))
    text = paramsym.from_torch(model, (64, 64, 3))
    assert text.count("scale(shared)") >= 2
    assert counted(text) == meta_measured(model, (64, 64))


def test_explain():
    result = run("explain", "input(8x8x4) > scale(shared, bias)")
    assert result.returncode == 0, result.stderr
    assert "one factor for all 4 channels and multiplies every value by it and adds a learned shift: 2" in result.stdout
