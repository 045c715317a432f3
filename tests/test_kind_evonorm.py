"""`evonorm(groups=G)`: EvoNorm-S0, compared with timm's EvoNorm2dS0 and EvoNorm2dS0a at several sizes: params,
state, output shape, MACs (FlopCounterMode), the values of the export, the import of each module, and the timm
models made of them."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.imported import ours, torch_truth
from helpers.round_trip import randomize_and_copy

timm = pytest.importorskip("timm")
from timm.layers.evo_norm import EvoNorm2dS0, EvoNorm2dS0a  # noqa: E402

CASES = [
    # (program, timm's module, what its import writes)
    ("input(6x6x16) > evonorm(groups=4)", lambda c: EvoNorm2dS0a(c, groups=4, eps=1e-5), "evonorm(groups=4)"),
    ("input(3x7x24) > evonorm(groups=3)", lambda c: EvoNorm2dS0(c, groups=3), "evonorm(groups=3)"),
    ("input(5x5x32) > evonorm(groups=32)", lambda c: EvoNorm2dS0(c, group_size=1), "evonorm(groups=32)"),
    (
        "input(4x9x12) > evonorm(groups=2, noact)",
        lambda c: EvoNorm2dS0a(c, groups=2, apply_act=False, eps=1e-5),
        "evonorm(groups=2, noact)",
    ),
    ("input(1x1x8) > evonorm(groups=1, noact)", lambda c: EvoNorm2dS0a(c, 1, apply_act=False, eps=1e-5), None),
]


@pytest.mark.parametrize("program, build, imported", CASES)
def test_evonorm_counts_and_computes_what_timm_does(program, build, imported):
    network = paramsym.parse(program)
    values = network.evaluate()
    h, w, c = (int(d) for d in network.input_shape.dims())
    theirs = build(c)
    x = torch.randn(2, c, h, w)
    with FlopCounterMode(display=False) as counter:
        y = theirs(x)
    assert values["params"] == sum(p.numel() for p in theirs.parameters())
    assert values["state"] == 0 and list(theirs.buffers()) == []
    assert values["macs"] == counter.get_total_flops() == 0
    assert [int(d) for d in network.output_shape.dims()] == [y.shape[2], y.shape[3], y.shape[1]]
    exported = paramsym.to_torch(network)
    theirs_params = [theirs.weight, theirs.bias] + ([theirs.v] if theirs.v is not None else [])
    ours_params = [exported[0].weight, exported[0].bias] + ([exported[0].v] if exported[0].v is not None else [])
    randomize_and_copy(theirs_params, ours_params)
    assert torch.allclose(exported(x), theirs(x), atol=1e-4)
    text = paramsym.from_torch(nn.Sequential(theirs), (h, w, c))
    assert text.splitlines()[-1].strip() == f"> {imported or program.split(' > ')[1]}"


def test_timm_s0_without_its_activation_is_an_affine_per_channel():
    theirs = EvoNorm2dS0(12, groups=3, apply_act=False)
    text = paramsym.from_torch(nn.Sequential(theirs), (5, 5, 12))
    assert text.splitlines()[-1].strip() == "> scale(bias)"
    network = paramsym.parse(text)
    exported = paramsym.to_torch(network)
    randomize_and_copy([theirs.weight, theirs.bias], list(exported.parameters()))
    x = torch.randn(2, 12, 5, 5)
    assert torch.allclose(exported(x), theirs(x), atol=1e-5)


def test_symbolic():
    network = paramsym.parse("input(H x W x C) > evonorm(groups=G)")
    assert str(network.quantity("params")) == "3*C"
    assert network.evaluate(H=4, W=4, C=32, G=8)["params"] == 96
    with pytest.raises(paramsym.ParamsymError, match="groups=G must divide"):
        network.evaluate(H=4, W=4, C=30, G=8)


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(4x4x16) > evonorm", "evonorm needs its number of groups"),
        ("input(4x4x16) > evonorm(groups=5)", "groups=5 does not divide the 16"),
        ("input(16) > evonorm(groups=4)", "normalises groups of channels over the positions of a map"),
        ("input(8x16) > evonorm(groups=4)", "normalises groups of channels over the positions of a map"),
        ("input(4x4x16) > evonorm(8, groups=4)", "evonorm says it has 8 channels"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words):
        paramsym.parse(program).evaluate()


def test_pytorch_refuses_groups_that_do_not_divide():
    with pytest.raises((AssertionError, RuntimeError)):
        EvoNorm2dS0a(16, groups=5)(torch.randn(1, 16, 4, 4))


@pytest.mark.parametrize("name, size", [("regnetz_b16_evos", 224), ("test_efficientnet_evos", 160)])
def test_timm_models_import_exactly(name, size):
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    text, counted = ours(model, (size, size, 3))
    truth = torch_truth(model, (size, size, 3))
    assert "evonorm(groups=" in text
    assert (counted["params"], counted["state"], counted["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counted["out"] == truth["out"]
