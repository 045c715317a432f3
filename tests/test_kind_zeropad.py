"""`zeropad(...)` (docs/language.md, Zero padding): one module, paramsym/kinds/zeropad.py, checked here against
PyTorch's nn.ZeroPad1d/2d/3d, nn.ConstantPad*d and F.pad, and Keras' ZeroPadding and Cropping layers, through
export and import."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch before keras)
from helpers.cli_helpers import run
from helpers.frameworks import keras_counts, torch_params, torch_run, torch_state
from paramsym.errors import ImportRefused

# (program, PyTorch's module for it after the input, output shape channels last); the language lists the
# amounts first axis first (before, after each), PyTorch last axis first
CASES = [
    ("input(6x6x4) > zeropad(1)", nn.ZeroPad2d(1), [8, 8, 4]),
    ("input(6x6x4) > zeropad(1x2)", nn.ZeroPad2d((2, 2, 1, 1)), [8, 10, 4]),
    ("input(6x6x4) > zeropad(0, 3, 1, 2)", nn.ZeroPad2d((1, 2, 0, 3)), [9, 9, 4]),
    ("input(5x7x3) > zeropad(-1, 1, -1, 1)", nn.ZeroPad2d((-1, 1, -1, 1)), [5, 7, 3]),
    ("input(5x7x3) > zeropad(-2)", nn.ZeroPad2d(-2), [1, 3, 3]),
    ("input(9x5) > zeropad(1, 2)", nn.ZeroPad1d((1, 2)), [12, 5]),
    ("input(9x5) > zeropad(3)", nn.ZeroPad1d(3), [15, 5]),
    ("input(2x3x4x5) > zeropad(1)", nn.ZeroPad3d(1), [4, 5, 6, 5]),
    ("input(2x3x4x5) > zeropad(1, 0, 0, 2, 3, 1)", nn.ZeroPad3d((3, 1, 0, 2, 1, 0)), [3, 5, 8, 5]),
    ("input(4x4x8) > zeropad(0)", nn.ZeroPad2d(0), [4, 4, 8]),
    # with the layers that read a padded map
    (
        "input(8x8x3) > zeropad(0, 1, 0, 1) > conv3x3(->4, stride=2, bias)",
        nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 4, 3, stride=2)),
        [4, 4, 4],
    ),
    (
        "input(8x8x3) > zeropad(1) > maxpool3x3(stride=2)",
        nn.Sequential(nn.ConstantPad2d(1, 0.0), nn.MaxPool2d(3, 2)),
        [4, 4, 3],
    ),
    (
        "input(9x9x6) > zeropad(-1, 1, -1, 1) > avgpool1x1(stride=2) > conv1x1(->5)",
        nn.Sequential(
            nn.ZeroPad2d((-1, 1, -1, 1)), nn.AvgPool2d(1, 2, count_include_pad=False), nn.Conv2d(6, 5, 1, bias=False)
        ),
        [5, 5, 5],
    ),
    (
        "input(10x4) > zeropad(2, 0) > conv3(->4, bias)",
        nn.Sequential(nn.ZeroPad1d((2, 0)), nn.Conv1d(4, 4, 3)),
        [10, 4],
    ),
]


@pytest.mark.parametrize("program, module, shape", CASES, ids=[c[0] for c in CASES])
def test_counts_match_pytorch(program, module, shape):
    net = paramsym.parse(program)
    out, macs = torch_run(module, [int(d) for d in net.input_shape.dims()], "cf")
    values = net.evaluate()
    assert (values["params"], values["state"], values["macs"]) == (torch_params(module), torch_state(module), macs)
    assert [int(d) for d in net.output_shape.dims()] == shape == out
    pad = net.layers[0]
    assert pad.params == 0 and pad.macs == 0 and pad.fan_in == 1


def test_padding_has_no_macs_in_pytorch():
    with FlopCounterMode(display=False) as counter:
        nn.ZeroPad2d((1, 2, 0, 3))(torch.zeros(1, 3, 8, 8))
        F.pad(torch.zeros(1, 3, 8, 8), (1, 1))
    assert counter.get_total_flops() == 0


def test_connections_count_the_values_kept():
    net = paramsym.parse("input(5x7x3) > zeropad(-1, 1, -2, 0)")
    # 4 of 5 rows and 5 of 7 columns survive the cropping, each copied once
    assert net.layers[0].connections == 4 * 5 * 3
    assert paramsym.parse("input(5x7x3) > zeropad(2)").layers[0].connections == 5 * 7 * 3


def test_symbolic_sizes_and_amounts():
    net = paramsym.parse("input(H x W x C) > zeropad(P) > conv3x3(->D)")
    assert [str(d) for d in net.output_shape.dims()] == ["H + 2*P - 2", "2*P + W - 2", "D"]
    assert net.params == paramsym.parse("input(H x W x C) > conv3x3(->D)").params
    two = paramsym.parse("input(H x W x C) > zeropad(A, B, 0, 1)")
    assert [str(d) for d in two.output_shape.dims()] == ["A + B + H", "W + 1", "C"]


def test_receptive_field_shifts_with_the_padding():
    padded = paramsym.parse("input(8x8x3) > zeropad(1) > conv3x3(->4)")
    own = paramsym.parse("input(8x8x3) > conv3x3(->4, pad=1)")
    assert padded.layers[-1].field == own.layers[-1].field


@pytest.mark.parametrize(
    "program, words",
    [
        (
            "input(16) > zeropad(1)",
            "zeropad pads the spatial axes of a sequence, a map or a volume, but its input is a vector",
        ),
        ("input(8x8x3) > zeropad", "zeropad needs its padding"),
        ("input(8x8x3) > zeropad(1, 2)", "zeropad lists 2 amounts but its input has 2 spatial axes"),
        ("input(8x8x3) > zeropad(1, 2, 3)", "zeropad lists 3 amounts"),
        ("input(8x8x3) > zeropad(1x2x3)", "zeropad gives 3 amounts but its input has 2 spatial axes"),
        ("input(8x8x3) > zeropad(1x1, 2, 3, 4)", "takes one amount per place"),
        ("input(8x8x3) > zeropad(1.5)", "the amount 1.5 is not a whole number"),
        ("input(8x8x3) > zeropad(-4)", "crops more than it pads: an output size would be 0"),
        ("input(8x8x3) > zeropad(1, stride=2)", "unknown keyword 'stride' for zeropad"),
        ("input(8x8x3) > zeropadd(1)", "did you mean 'zeropad'?"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words.replace("(", r"\(").replace(")", r"\)")):
        paramsym.parse(program)


def test_a_symbolic_amount_must_be_at_least_zero():
    net = paramsym.parse("input(8x8x3) > zeropad(P - 3)")
    with pytest.raises(paramsym.ParamsymError, match="whole number of at least 0"):
        net.evaluate(P=2)
    assert net.evaluate(P=3)["params"] == 0  # zeropad(0) pads nothing


def test_what_pytorch_refuses_paramsym_refuses():
    # cropping more than a map has is refused by PyTorch as by paramsym; cropping all of it gives PyTorch an empty
    # map, which the language (every size at least 1) refuses too
    with pytest.raises(RuntimeError):
        nn.ZeroPad2d(-5)(torch.zeros(1, 3, 8, 8))
    assert nn.ZeroPad2d(-4)(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 0, 0)
    for amount in (-4, -5):
        with pytest.raises(paramsym.ParamsymError, match="crops more than it pads"):
            paramsym.parse(f"input(8x8x3) > zeropad({amount})")


@pytest.mark.parametrize("program", [c[0] for c in CASES])
def test_export_to_torch_computes_the_same_function_and_imports_back(program):
    net = paramsym.parse(program)
    module = paramsym.to_torch(net)
    pads = [m for m in module.modules() if type(m).__name__.startswith("ZeroPad")]
    assert len(pads) == 1
    dims = [int(d) for d in net.input_shape.dims()]
    x = torch.linspace(-5, 5, math.prod(dims)).reshape(1, dims[-1], *dims[:-1])
    (options,) = [layer.options for layer in net.layers if layer.kind.key == "zeropad"]
    flat = tuple(int(a) for pair in reversed(options.pads) for a in pair)
    assert torch.equal(pads[0](x), F.pad(x, flat))
    imported = paramsym.from_torch(module, tuple(dims))
    assert paramsym.parse(imported).evaluate() == net.evaluate()
    assert (
        imported.replace("\n  > ", " > ")
        .strip()
        .startswith(program.split(" > conv")[0].split(" > avgpool")[0].split(" > maxpool")[0])
    )


class _Padded(nn.Module):
    """A model that pads with F.pad (a U-Net crops or pads the skip connection to the upsampled size)."""

    def __init__(self, pads, then=None, twice=False):
        super().__init__()
        self.pads, self.then, self.twice = pads, then or nn.Identity(), twice
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        y = F.pad(self.conv(x), self.pads)
        return self.then(y) + y if self.twice else self.then(y)


@pytest.mark.parametrize(
    "model, written",
    [
        (nn.Sequential(nn.ZeroPad2d((1, 2, 0, 3)), nn.Conv2d(3, 4, 3)), "zeropad(0, 3, 1, 2) > conv3x3(3->4, bias)"),
        (nn.Sequential(nn.ZeroPad2d(2), nn.Conv2d(3, 4, 3)), "zeropad(2) > conv3x3(3->4, bias)"),
        (nn.Sequential(nn.ConstantPad2d((1, 1, 2, 2), 0.0), nn.ReLU()), "zeropad(2x1) > relu"),
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConstantPad2d(1, 0.0), nn.MaxPool2d(3, 2)), "zeropad(1) > maxpool3x3"),
        (
            nn.Sequential(nn.ZeroPad2d((-1, 1, -1, 1)), nn.AvgPool2d(1, 2)),
            "zeropad(-1, 1, -1, 1) > avgpool1x1(stride=2)",
        ),
        # F.pad that no convolution or pooling takes: a layer of its own
        (_Padded((1, 2, 0, 3)), "zeropad(0, 3, 1, 2)"),
        (_Padded((1, 2, 0, 3), nn.BatchNorm2d(4)), "zeropad(0, 3, 1, 2) > bn"),
        (
            _Padded((1, 1, 1, 1), nn.Conv2d(4, 4, 3, padding=1), twice=True),
            "zeropad(1) > res(conv3x3(4->4, pad=1, bias))",
        ),
        (_Padded((0, 1, 0, 2), nn.Conv2d(4, 4, 3)), "zeropad(0, 2, 0, 1) > conv3x3(4->4, bias)"),  # not "same"
        (_Padded((-1, 0)), "zeropad(0, 0, -1, 0)"),
        # the padding the conv takes as its own, as before
        (_Padded((1, 1, 2, 2), nn.Conv2d(4, 4, 3)), "conv1x1(3->4, bias) > conv3x3(4->4, pad=2x1, bias)"),
    ],
)
def test_import_of_padding(model, written):
    text = paramsym.from_torch(model, (9, 8, 3), flat=True).replace("\n  > ", " > ")
    assert written in text
    net = paramsym.parse(text)
    out, macs = torch_run(model, [9, 8, 3], "cf")
    values = net.evaluate()
    assert (values["params"], values["macs"], [int(d) for d in net.output_shape.dims()]) == (
        torch_params(model),
        macs,
        out,
    )


@pytest.mark.parametrize(
    "model, message",
    [
        (nn.Sequential(nn.ConstantPad2d(1, 1.0), nn.Conv2d(3, 4, 3)), r"module '0' \(ConstantPad2d\) pads with 1.0"),
        (_Padded((1, 1, 1, 1, 1, 1)), "pads more than the spatial axes"),
        (nn.Sequential(nn.Flatten(), nn.ZeroPad1d(2)), r"module '1' \(ZeroPad1d\(2, 2\)\) pads more than"),
    ],
)
def test_import_refuses_what_is_not_zero_padding_of_the_spatial_axes(model, message):
    with pytest.raises(ImportRefused, match=message):
        paramsym.from_torch(model, (9, 8, 3))


def test_reflect_padding_is_refused_by_name():
    class Reflect(nn.Module):
        def forward(self, x):
            return F.pad(x, (1, 1, 1, 1), mode="reflect")

    with pytest.raises(ImportRefused, match=r"F.pad\(...\) \(amounts \[1, 1, 1, 1\]\) pads by 'reflect'"):
        paramsym.from_torch(Reflect(), (9, 8, 3))


@pytest.mark.parametrize(
    "program, keras_classes",
    [
        ("input(6x6x4) > zeropad(1)", ["ZeroPadding2D"]),
        ("input(6x6x4) > zeropad(0, 3, 1, 2)", ["ZeroPadding2D"]),
        ("input(6x7x4) > zeropad(-1, 1, -1, 1)", ["Cropping2D", "ZeroPadding2D"]),
        ("input(6x7x4) > zeropad(-1, 0, -2, 0)", ["Cropping2D"]),
        ("input(9x5) > zeropad(1, 2)", ["ZeroPadding1D"]),
        ("input(2x3x4x5) > zeropad(1, 0, 0, 2, 3, 1)", ["ZeroPadding3D"]),
        ("input(6x6x4) > zeropad(0, 1, 0, 1) > conv3x3(->4, stride=2)", ["ZeroPadding2D"]),
    ],
)
def test_export_to_keras(program, keras_classes):
    net = paramsym.parse(program, convention="keras")
    model = paramsym.to_keras(net)
    source = paramsym.keras_source(net)
    assert all(cls in source for cls in keras_classes)
    assert ("Cropping" in source) == any(c.startswith("Cropping") for c in keras_classes)
    assert list(model.output_shape[1:]) == [int(d) for d in net.output_shape.dims()]
    values = net.evaluate()
    assert keras_counts(model, [int(d) for d in net.input_shape.dims()]) == (values["params"], 0, values["macs"])


def test_explain_and_table():
    result = run("explain", "input(6x6x4) > zeropad(0, 3, 1, 2)")
    assert result.returncode == 0
    assert "No parameters and no MACs: it adds zeros around each spatial axis (top 0, bottom 3, left 1, right 2" in (
        result.stdout.replace("\n", " ")
    )
    bad = run("count", "input(6x6x4) > zeropad(1, 2)")
    assert bad.returncode == 2 and "^" in bad.stderr and "Traceback" not in bad.stderr
