"""`upsample(S)` (docs/language.md, Upsampling): one module, paramsym/kinds/upsample.py, checked here against
PyTorch's nn.Upsample and F.interpolate and Keras' UpSampling layers, through export and import."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch before keras)
from helpers.cli_helpers import run
from helpers.frameworks import keras_counts, torch_params, torch_run

# (program, PyTorch's module for its last layer, output shape channels last, fan-in)
CASES = [
    ("input(6x6x4) > upsample(2)", nn.Upsample(scale_factor=2), [12, 12, 4], 1),
    ("input(6x6x4) > upsample(2, bilinear)", nn.Upsample(scale_factor=2, mode="bilinear"), [12, 12, 4], 4),
    ("input(5x7x3) > upsample(3x2)", nn.Upsample(scale_factor=(3, 2)), [15, 14, 3], 1),
    ("input(5x7x3) > upsample(2x1, bilinear)", nn.Upsample(scale_factor=(2, 1), mode="bilinear"), [10, 7, 3], 4),
    ("input(9x5) > upsample(4)", nn.Upsample(scale_factor=4), [36, 5], 1),
    ("input(2x3x4x5) > upsample(2)", nn.Upsample(scale_factor=2), [4, 6, 8, 5], 1),
    ("input(4x4x8) > upsample(1)", nn.Upsample(scale_factor=1), [4, 4, 8], 1),
]


@pytest.mark.parametrize("program, module, shape, fan_in", CASES, ids=[c[0] for c in CASES])
def test_counts_match_pytorch(program, module, shape, fan_in):
    net = paramsym.parse(program)
    out, macs = torch_run(module, [int(d) for d in net.input_shape.dims()], "cf")
    assert net.evaluate() == {"params": 0, "state": 0, "active": 0, "kv_cache": 0, "total": 0, "macs": macs}
    assert macs == 0  # FlopCounterMode counts no products for upsampling, nor does paramsym
    assert [int(d) for d in net.output_shape.dims()] == shape == out
    layer = net.layers[-1]
    elements = int(np.prod(shape))
    assert (layer.fan_in, layer.connections) == (fan_in, fan_in * elements)


def test_symbolic_sizes_and_factor():
    net = paramsym.parse("input(H x W x C) > upsample(S)")
    dims = [str(d) for d in net.output_shape.dims()]
    assert dims == ["H*S", "S*W", "C"]
    assert net.params == 0


def test_a_unet_decoder_step_in_pytorch_and_paramsym():
    # decoder: upsample the deep map, join it with the skip connection, fuse with a 3x3 conv
    # the example of docs/language.md, Upsampling
    program = (
        "input(32x32x3) > conv3x3(->16, pad=1, bias) > relu > "
        "concat(id | maxpool2x2 > conv3x3(->32, pad=1, bias) > relu > upsample(2, bilinear)) > conv1x1(->2, bias)"
    )
    net = paramsym.parse(program)
    module = paramsym.to_torch(net)
    assert any(isinstance(m, nn.Upsample) for m in module.modules())
    out, macs = torch_run(module, [32, 32, 3], "cf")
    values = net.evaluate()
    assert (values["params"], values["macs"]) == (torch_params(module), macs) == (5186, 1720320)
    assert out == [int(d) for d in net.output_shape.dims()] == [32, 32, 2]


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(16) > upsample(2x2x2x2)", "upsample gives 4 factors"),
        ("input(8x16) > upsample(2, bilinear)", "upsample(..., bilinear) interpolates on H x W x C maps"),
        ("input(8x8x3) > upsample(1.5)", "the factor 1.5 is not a whole number"),
        ("input(8x8x3) > upsample(2x2x2)", "upsample gives 3 factors but its input has 2 spatial axes"),
        ("input(8x8x3) > upsample(2, nearest, bilinear)", "upsample takes one of nearest and bilinear, not both"),
        ("input(8x8x3) > upsample", "upsample needs its factor"),
        ("input(8x8x3) > upsample(0)", "upsampling factor"),
        ("input(8x8x3) > upsample(2, bicubic)", "bicubic"),
        ("input(8x8x3) > upsampel(2)", "did you mean 'upsample'?"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words.replace("(", r"\(").replace(")", r"\)")):
        paramsym.parse(program)


def test_what_pytorch_refuses_paramsym_refuses():
    # bilinear on a sequence and a factor below 1 are refused by PyTorch as by paramsym
    with pytest.raises((NotImplementedError, ValueError, RuntimeError)):
        nn.Upsample(scale_factor=2, mode="bilinear")(torch.zeros(1, 3, 8))
    with pytest.raises((ValueError, RuntimeError)):
        nn.Upsample(scale_factor=0)(torch.zeros(1, 3, 8, 8))


def test_export_to_torch_computes_the_same_function_and_imports_back():
    net = paramsym.parse("input(8x8x3) > conv3x3(->4, pad=1, bias) > upsample(2, bilinear)")
    module = paramsym.to_torch(net)
    assert isinstance(module[-1], nn.Upsample) and module[-1].mode == "bilinear"
    x = torch.linspace(-5, 5, 8 * 8 * 3).reshape(1, 3, 8, 8)
    expected = F.interpolate(module[0](x), scale_factor=2.0, mode="bilinear")
    assert torch.equal(module(x), expected)
    imported = paramsym.from_torch(module, (8, 8, 3))
    assert imported.strip().endswith("> upsample(2, bilinear)")
    assert paramsym.parse(imported).evaluate() == net.evaluate()


class _Decoder(nn.Module):
    """The usual ways a U-Net's decoder upsamples: F.interpolate by a factor, and modules."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.up = {
            "module": nn.Upsample(scale_factor=2),
            "bilinear2d": nn.UpsamplingBilinear2d(scale_factor=2),
            "nearest2d": nn.UpsamplingNearest2d(scale_factor=2),
        }.get(how, nn.Identity())
        self.fuse = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        skip = self.conv(x)
        deep = F.max_pool2d(skip, 2)
        if self.how == "factor":
            deep = F.interpolate(deep, scale_factor=2, mode="nearest")
        else:
            deep = self.up(deep)
        return self.fuse(torch.cat([skip, deep], 1))


@pytest.mark.parametrize(
    "how, written",
    [
        ("module", "upsample(2)"),
        ("bilinear2d", "upsample(2, bilinear)"),
        ("nearest2d", "upsample(2)"),
        ("factor", "upsample(2)"),
    ],
)
def test_import_of_a_unet_step(how, written):
    model = _Decoder(how)
    text = paramsym.from_torch(model, (8, 8, 3))
    assert written in text
    net = paramsym.parse(text)
    assert net.evaluate()["params"] == torch_params(model)
    out, macs = torch_run(model, [8, 8, 3], "cf")
    assert [int(d) for d in net.output_shape.dims()] == out and net.evaluate()["macs"] == macs


def test_import_reads_a_resize_that_is_not_a_whole_factor_as_resize():
    class Resize(nn.Module):
        def forward(self, x):
            return F.interpolate(x, size=(12, 12))

    assert "resize(12x12)" in paramsym.from_torch(Resize(), (8, 8, 3))  # tests/test_kind_resize.py


def test_import_refuses_another_mode():
    with pytest.raises(paramsym.ParamsymError, match="mode 'nearest-exact'"):
        paramsym.from_torch(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest-exact")), (8, 8, 3))


@pytest.mark.parametrize(
    "program, keras_class",
    [
        ("input(6x6x4) > upsample(2)", "UpSampling2D"),
        ("input(6x6x4) > upsample(3x2, bilinear)", "UpSampling2D"),
        ("input(9x5) > upsample(2)", "UpSampling1D"),
        ("input(2x3x4x5) > upsample(2)", "UpSampling3D"),
    ],
)
def test_export_to_keras(program, keras_class):
    net = paramsym.parse(program, convention="keras")
    model = paramsym.to_keras(net)
    assert keras_class in paramsym.keras_source(net)
    assert list(model.output_shape[1:]) == [int(d) for d in net.output_shape.dims()]
    assert keras_counts(model, [int(d) for d in net.input_shape.dims()]) == (0, 0, 0)


def test_explain_and_table():
    result = run("explain", "input(6x6x4) > upsample(2, bilinear)")
    assert result.returncode == 0
    assert "No parameters and no MACs: it scales the spatial sizes by 2 x 2 and interpolates" in result.stdout
    bad = run("count", "input(6x6x4) > upsample(1.5)")
    assert bad.returncode == 2 and "^" in bad.stderr and "Traceback" not in bad.stderr
