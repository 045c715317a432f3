"""Weight-standardised convolutions, `conv3x3(->64, std)` and `conv3x3(->64, std, gain)` (docs/language.md, Layers):
checked against timm's StdConv2d, StdConv2dSame, ScaledStdConv2d and ScaledStdConv2dSame (params, output shape,
MACs as FlopCounterMode counts them), through import and export."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.cli_helpers import run
from helpers.frameworks import torch_params, torch_run
from paramsym.errors import ImportRefused

timm = pytest.importorskip("timm")
from timm.layers import ScaledStdConv2d, ScaledStdConv2dSame, StdConv2d, StdConv2dSame  # noqa: E402

STANDARDISED = [StdConv2d, StdConv2dSame, ScaledStdConv2d, ScaledStdConv2dSame]
SETTINGS = [
    {},
    {"stride": 2},
    {"groups": 4, "bias": True},
    {"dilation": 2},
    {"stride": 2, "bias": False},
]


def measured(module, shape):
    """params, output shape (channels last) and MACs (FlopCounterMode's FLOPs / 2) of the module itself."""
    out, macs = torch_run(module, shape, "cf")
    return torch_params(module), out, macs


def counted(text):
    network = paramsym.parse(text)
    values = network.evaluate()
    return values["params"], [int(d) for d in network.output_shape.dims()], values["macs"]


@pytest.mark.parametrize("cls", STANDARDISED, ids=[c.__name__ for c in STANDARDISED])
@pytest.mark.parametrize("kwargs", SETTINGS, ids=str)
@pytest.mark.parametrize("k", [1, 3, 4])
def test_timm_standardised_convolutions_import_exactly(cls, kwargs, k):
    """Each imports as `conv(..., std)` (`std, gain` with ScaledStdConv2d's gain, one per output channel); params,
    output shape and MACs equal the module's, on an odd and an even size (the ...Same ones pad as TensorFlow's
    "same" where their padding depends on the input)."""
    module = nn.Sequential(cls(8, 16, k, **kwargs))
    shape = [11, 10, 8]
    text = paramsym.from_torch(module, shape, flat=True)
    assert ", std" in text and (", std, gain" in text) == (cls in (ScaledStdConv2d, ScaledStdConv2dSame)), text
    assert state(module) == 0
    assert counted(text) == measured(module, shape), text
    assert paramsym.parse(text).evaluate()["state"] == 0


def state(module):
    return sum(b.numel() for b in module.buffers())


def test_flop_counter_counts_the_convolution_only():
    """FlopCounterMode counts the convolution and not the standardisation (F.batch_norm on the weights, a mean and
    a variance per filter once per forward): a StdConv2d has the MACs of its Conv2d, and so has `std`."""
    conv, std = nn.Conv2d(8, 16, 3), StdConv2d(8, 16, 3, padding=0, bias=True)
    with FlopCounterMode(display=False) as plain:
        conv(torch.zeros(1, 8, 9, 9))
    with FlopCounterMode(display=False) as standardised:
        std(torch.zeros(1, 8, 9, 9))
    assert plain.get_total_flops() == standardised.get_total_flops() == 2 * 7 * 7 * 16 * 8 * 9
    assert counted("input(9x9x8) > conv3x3(->16, bias, std)")[2] == 7 * 7 * 16 * 8 * 9


@pytest.mark.parametrize(
    "program, params",
    [
        ("input(9x9x8) > conv3x3(->16, std)", 8 * 9 * 16),
        ("input(9x9x8) > conv3x3(->16, std, gain)", 8 * 9 * 16 + 16),
        ("input(9x9x8) > conv3x3(->16, std, gain, bias)", 8 * 9 * 16 + 32),
        ("input(9x9x8) > dwconv3x3(std, gain, pad=1)", 9 * 8 + 8),
        ("input(9x9x8) > conv1x1(->4, groups=2, std, gain)", 4 * 4 + 4),
    ],
)
def test_params_and_export(program, params):
    """The gain counts Cout; the PyTorch export (paramsym's StdConv around the Conv2d) has those parameters, that
    output and those MACs, and imports back to the same program."""
    network = paramsym.parse(program)
    module = paramsym.to_torch(network)
    assert counted(program) == measured(module, [9, 9, 8])
    assert network.evaluate()["params"] == params
    back = paramsym.from_torch(module, (9, 9, 8), flat=True)
    assert counted(back) == counted(program)
    assert ("gain" in back) == ("gain" in program)


def test_symbolic_formula():
    network = paramsym.parse("input(H x W x C) > conv3x3(->D, pad=1, std, gain, bias)")
    assert str(network.params) == str(sympy_expand("9*C*D + 2*D"))


def sympy_expand(text):
    import sympy

    return sympy.expand(sympy.sympify(text))


@pytest.mark.parametrize("cls", [StdConv2d, ScaledStdConv2d, StdConv2dSame, ScaledStdConv2dSame])
def test_export_computes_what_timm_computes(cls):
    """paramsym's StdConv with timm's weights (and gain) gives timm's output: the same standardisation."""
    torch.manual_seed(0)
    timm_conv = cls(4, 6, 3, stride=2, bias=True)
    if hasattr(timm_conv, "gain"):
        nn.init.uniform_(timm_conv.gain, 0.5, 2.0)
    x = torch.randn(1, 4, 9, 8)
    text = paramsym.from_torch(nn.Sequential(timm_conv), (9, 8, 4), flat=True)
    ours = paramsym.to_torch(paramsym.parse(text))
    std = next(m for m in ours.modules() if type(m).__name__ == "StdConv")
    with torch.no_grad():
        std.conv.weight.copy_(timm_conv.weight)
        std.conv.bias.copy_(timm_conv.bias)
        if std.gain is not None:
            std.gain.copy_(timm_conv.gain.view(-1))
        torch.testing.assert_close(ours(x), timm_conv(x), rtol=1e-4, atol=1e-5)


def test_exported_source_runs():
    source = paramsym.torch_source(paramsym.parse("input(8x8x3) > conv3x3(->4, pad=same, stride=2, std, gain)"))
    scope: dict = {}
    exec(compile(source, "<export>", "exec"), scope)
    model = scope["build_model"]()
    assert tuple(model(torch.zeros(1, 3, 8, 8)).shape) == (1, 4, 4, 4)
    assert torch_params(model) == 3 * 9 * 4 + 4


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(8x8x3) > conv3x3(->4, gain)", "write std, gain"),
        ("input(8x8x3) > sepconv3x3(->4, std)", "unknown argument .std. for sepconv3x3"),
        ("input(8x8x3) > deconv2x2(->4, std)", "unknown argument .std. for deconv2x2"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words):
        paramsym.parse(program)


def test_keras_refuses():
    with pytest.raises(paramsym.ParamsymError, match="no weight-standardised convolution"):
        paramsym.keras_source(paramsym.parse("input(8x8x3) > conv3x3(->4, std)", convention="keras"))


def test_on_a_vector_is_refused():
    """A standardised 1x1 convolution after global pooling is no `dense`: refused rather than read as one."""
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), StdConv2d(3, 4, 1))
    with pytest.raises(ImportRefused, match="weight-standardised convolution on a map of one position"):
        paramsym.from_torch(model, (8, 8, 3))


def test_explain():
    result = run("explain", "input(8x8x3) > conv3x3(->4, std, gain)")
    assert result.returncode == 0, result.stderr
    assert "weight-standardised with a gain" in result.stdout
    assert "A learned gain per output channel multiplies each standardised filter: 4." in result.stdout
