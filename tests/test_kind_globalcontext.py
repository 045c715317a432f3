"""`gc(R)`: GCNet's global context block read whole, compared with timm's GlobalContext at several sizes and in each
of its forms (attention or mean pooling, a sigmoid gate or a sum, ReLU or SiLU): params, state, output shape, MACs
(FlopCounterMode), the values of the export, the import of the module, and the timm models made of it."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.imported import ours, torch_truth
from helpers.round_trip import randomize_and_copy

timm = pytest.importorskip("timm")
from timm.layers.global_context import GlobalContext  # noqa: E402

CASES = [
    # (program, timm's module)
    ("input(8x8x32) > gc(4)", dict(channels=32, rd_channels=4)),
    ("input(5x7x16) > gc(8)", dict(channels=16, rd_channels=8)),
    ("input(1x1x12) > gc(3)", dict(channels=12, rd_channels=3)),
    ("input(6x6x24) > gc(6, additive)", dict(channels=24, rd_channels=6, fuse_add=True, fuse_scale=False)),
    ("input(4x9x10) > gc(5, mean)", dict(channels=10, rd_channels=5, use_attn=False)),
    ("input(7x7x40) > gc(10, silu)", dict(channels=40, rd_channels=10, act_layer=nn.SiLU)),
    (
        "input(3x3x8) > gc(2, mean, additive, silu)",
        dict(channels=8, rd_channels=2, use_attn=False, fuse_add=True, fuse_scale=False, act_layer=nn.SiLU),
    ),
]


@pytest.mark.parametrize("program, options", CASES)
def test_gc_counts_and_computes_what_timm_does(program, options):
    network = paramsym.parse(program)
    values = network.evaluate()
    h, w, c = (int(d) for d in network.input_shape.dims())
    theirs = GlobalContext(**options)
    x = torch.randn(2, c, h, w)
    with FlopCounterMode(display=False) as counter:
        y = theirs(x)
    assert values["params"] == sum(p.numel() for p in theirs.parameters())
    assert values["state"] == 0 and list(theirs.buffers()) == []
    assert values["macs"] == counter.get_total_flops() // 2 // 2  # per sample, batch 2
    assert [int(d) for d in network.output_shape.dims()] == [y.shape[2], y.shape[3], y.shape[1]]
    exported = paramsym.to_torch(network)
    randomize_and_copy(list(theirs.parameters()), list(exported.parameters()))
    assert torch.allclose(exported(x), theirs(x), atol=1e-5)
    text = paramsym.from_torch(nn.Sequential(theirs), (h, w, c))
    assert text.splitlines()[-1].strip() == f"> {program.split(' > ')[1]}"


def test_symbolic():
    network = paramsym.parse("input(H x W x C) > gc(R)")
    assert network.evaluate(H=8, W=8, C=32, R=4)["params"] == 33 + 32 * 4 + 4 + 8 + 4 * 32 + 32
    assert network.evaluate(H=8, W=8, C=32, R=4)["macs"] == 2 * 8 * 8 * 32 + 2 * 32 * 4


def test_a_block_that_both_gates_and_adds_is_refused():
    theirs = GlobalContext(16, rd_channels=4, fuse_add=True, fuse_scale=True)
    with pytest.raises(paramsym.ParamsymError, match="both by a gate and by a sum"):
        paramsym.from_torch(nn.Sequential(theirs), (6, 6, 16))


def test_a_block_with_another_gate_is_refused():
    theirs = GlobalContext(16, rd_channels=4, gate_layer="tanh")
    with pytest.raises(paramsym.ParamsymError, match="language's gc has no counterpart"):
        paramsym.from_torch(nn.Sequential(theirs), (6, 6, 16))


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(16) > gc(4)", "gc pools the positions of a map"),
        ("input(8x16) > gc(4)", "gc pools the positions of a map"),
        ("input(4x4x16) > gc", "gc needs the channels of its transform"),
        ("input(4x4x16) > gc(0)", "must be a positive whole number"),
        ("input(4x4x16) > gc(2x2)", "gc takes one channel count"),
        ("input(4x4x16) > gc(4, add)", "syntax error"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words):
        paramsym.parse(program).evaluate()


@pytest.mark.parametrize(
    "name, size, words",
    [("gcresnet33ts", 256, "additive)"), ("gcresnext26ts", 256, "additive)"), ("gc_efficientnetv2_rw_t", 224, "silu)")],
)
def test_timm_models_import_exactly(name, size, words):
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    text, counted = ours(model, (size, size, 3))
    truth = torch_truth(model, (size, size, 3))
    assert "gc(" in text and words in text
    assert (counted["params"], counted["state"], counted["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counted["out"] == truth["out"]
