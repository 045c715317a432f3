"""Per-position gates (docs/language.md, Gates): `mul(id | conv7x7(->1, pad=3) > sigmoid)`, a branch that gives
one channel at every position (H x W x 1), broadcast over the channels, as CBAM's spatial attention and the
attention gates of Attention U-Net multiply. Checked against PyTorch (params, output shape, MACs), through export
(PyTorch, Keras) and import."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch before keras)
from helpers.frameworks import keras_counts, torch_params, torch_run


def counted(network):
    values = network.evaluate()
    return values["params"], [int(d) for d in network.output_shape.dims()], values["macs"]


class SpatialGate(nn.Module):
    """x * sigmoid(conv(x)) with a conv to one channel (CBAM's spatial attention without its channel pooling)."""

    def __init__(self, c, k=7, bias=False, first=True):
        super().__init__()
        self.conv = nn.Conv2d(c, 1, k, padding=k // 2, bias=bias)
        self.first = first

    def forward(self, x):
        gate = torch.sigmoid(self.conv(x))
        return x * gate if self.first else gate * x


class AttentionGate(nn.Module):
    """Attention U-Net's gate on one input: psi = sigmoid(bn(conv1x1(relu(conv1x1(x))))) -> one channel; x * psi."""

    def __init__(self, c, inner):
        super().__init__()
        self.theta = nn.Conv2d(c, inner, 1)
        self.psi = nn.Sequential(nn.ReLU(), nn.Conv2d(inner, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())

    def forward(self, x):
        return x * self.psi(self.theta(x))


@pytest.mark.parametrize(
    "program",
    [
        "input(9x8x16) > mul(id | conv7x7(->1, pad=3) > sigmoid)",
        "input(9x8x16) > mul(conv7x7(->1, pad=3, bias) > sigmoid | id)",
        "input(9x8x16) > conv3x3(->8, pad=1) > mul(id | conv1x1(->1) > sigmoid | gap > dense(->8) > sigmoid)",
        "input(9x8x16) > mul(id | conv3x3(->1, stride=1, pad=same) > sigmoid) > conv1x1(->4)",
    ],
)
def test_export_counts_as_pytorch(program):
    """The PyTorch export multiplies (N, C, H, W) by (N, 1, H, W), which PyTorch broadcasts: its params, output
    shape and MACs are the program's, and it imports back to a program that counts the same."""
    network = paramsym.parse(program)
    module = paramsym.to_torch(network)
    assert counted(network) == (torch_params(module), *torch_run(module, [9, 8, 16], "cf"))
    back = paramsym.parse(paramsym.from_torch(module, (9, 8, 16), flat=True))
    assert counted(back) == counted(network)


@pytest.mark.parametrize(
    "module, written",
    [
        (SpatialGate(16), "mul(id | conv7x7(16->1, pad=3) > sigmoid)"),
        (SpatialGate(16, k=3, bias=True, first=False), "mul(id | conv3x3(16->1, pad=1, bias) > sigmoid)"),
        (AttentionGate(16, 8), "mul(id | conv1x1(16->8, bias) > relu > conv1x1(8->1, bias) > bn > sigmoid)"),
    ],
)
def test_import(module, written):
    text = paramsym.from_torch(module, (9, 8, 16), flat=True)
    assert text.replace("\n  > ", " > ").strip().endswith(written), text
    assert counted(paramsym.parse(text)) == (torch_params(module), *torch_run(module, [9, 8, 16], "cf"))


def test_symbolic():
    network = paramsym.parse("input(H x W x C) > mul(id | conv7x7(->1, pad=3, bias) > sigmoid)")
    assert str(network.params) == "49*C + 1"
    assert [str(d) for d in network.output_shape.dims()] == ["H", "W", "C"]
    # no condition C = 1: the one channel broadcasts over any number of channels
    assert network.evaluate(H=5, W=6, C=7)["params"] == 49 * 7 + 1


def test_keras():
    program = "input(9x8x16) > mul(id | conv7x7(->1, pad=same) > sigmoid) > conv1x1(->4)"
    network = paramsym.parse(program, convention="keras")
    model = paramsym.to_keras(network)
    assert list(model.output_shape[1:]) == [9, 8, 4]
    params, state, macs = keras_counts(model, [9, 8, 16])
    assert (params, state, macs) == (network.evaluate()["params"], 0, network.evaluate()["macs"])


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(8x8x16) > mul(id | conv7x7(->2, pad=3) > sigmoid)", "this branch gives 8 x 8 x 2"),
        ("input(8x8x16) > mul(id | conv7x7(->1, pad=2) > sigmoid)", "this branch gives 6 x 6 x 1"),
        ("input(8x8x16) > add(id | conv7x7(->1, pad=3))", "this branch gives 8 x 8 x 1"),  # add does not broadcast
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words):
        paramsym.parse(program)


# ---- a vector times a one-channel map: their outer product (FocalNet's global context times its gate)


class FocalGlobalGate(nn.Module):
    """FocalNet's modulation, its global term: act(ctx.mean((2, 3), keepdim=True)) * gates[:, L:], a (N, C, 1, 1)
    vector times a (N, 1, H, W) map; no branch has both the positions and the channels."""

    def __init__(self, c):
        super().__init__()
        self.gate = nn.Conv2d(c, 1, 1)
        self.context = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)

    def forward(self, x):
        context = nn.functional.gelu(self.context(x).mean((2, 3), keepdim=True))
        return context * self.gate(x)


@pytest.mark.parametrize(
    "program",
    [
        "input(9x8x16) > mul(gap > dense(->12) | conv1x1(->1) > sigmoid)",
        "input(9x8x16) > mul(conv1x1(->1, bias) | gap > dense(->4, bias) > gelu)",
        "input(9x8x16) > mul(gap > dense(->12) | conv1x1(->1) | gap > dense(->12) > sigmoid) > conv1x1(->4)",
    ],
)
def test_outer_product_counts_as_pytorch(program):
    network = paramsym.parse(program)
    module = paramsym.to_torch(network)
    assert counted(network) == (torch_params(module), *torch_run(module, [9, 8, 16], "cf"))
    back = paramsym.parse(paramsym.from_torch(module, (9, 8, 16), flat=True))
    assert counted(back) == counted(network)


def test_outer_product_imports():
    module = FocalGlobalGate(16)
    text = paramsym.from_torch(module, (9, 8, 16), flat=True)
    network = paramsym.parse(text)
    assert counted(network) == (torch_params(module), *torch_run(module, [9, 8, 16], "cf"))
    assert [int(d) for d in network.output_shape.dims()] == [9, 8, 16]


def test_outer_product_keras():
    program = "input(9x8x16) > mul(gap > dense(->12) | conv1x1(->1, pad=same) > sigmoid) > conv1x1(->4)"
    network = paramsym.parse(program, convention="keras")
    model = paramsym.to_keras(network)
    assert list(model.output_shape[1:]) == [9, 8, 4]
    params, state, macs = keras_counts(model, [9, 8, 16])
    assert (params, state, macs) == (network.evaluate()["params"], 0, network.evaluate()["macs"])


def test_outer_product_symbolic():
    network = paramsym.parse("input(H x W x C) > mul(gap > dense(->D) | conv1x1(->1))")
    assert [str(d) for d in network.output_shape.dims()] == ["H", "W", "D"]


def test_outer_product_vectors_must_agree():
    with pytest.raises(paramsym.ParamsymError, match="the vectors of its branches differ: this branch gives 8"):
        paramsym.parse("input(8x8x16) > mul(gap > dense(->16) | conv1x1(->1) | gap > dense(->8))")
