"""`blurpool(k)`: anti-aliased downsampling, compared with timm's BlurPool2d at several sizes: params, state (the
filter is a non-persistent buffer), output shape, MACs (FlopCounterMode), the values of the export, the import of
BlurPool2d, and the models that use it."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.imported import ours, torch_truth
from helpers.round_trip import import_back

timm = pytest.importorskip("timm")
from timm.layers.blur_pool import BlurPool2d  # noqa: E402


def _state(module: torch.nn.Module) -> int:
    return sum(b.numel() for b in module.state_dict().values())


@pytest.mark.parametrize(
    "program, blur",
    [
        ("input(14x14x8) > blurpool(3)", dict(channels=8, filt_size=3, stride=2)),
        ("input(15x9x5) > blurpool(3)", dict(channels=5, filt_size=3, stride=2)),
        ("input(16x16x4) > blurpool(5)", dict(channels=4, filt_size=5, stride=2)),
        ("input(11x12x3) > blurpool(4, stride=3)", dict(channels=3, filt_size=4, stride=3)),
        ("input(10x10x6) > blurpool(2, stride=1)", dict(channels=6, filt_size=2, stride=1)),
        ("input(2x3x7) > blurpool(3)", dict(channels=7, filt_size=3, stride=2)),
        ("input(1x1x7) > blurpool(3, zeros)", dict(channels=7, filt_size=3, stride=2, pad_mode="constant")),
        ("input(9x9x2) > blurpool(5, zeros)", dict(channels=2, filt_size=5, stride=2, pad_mode="constant")),
    ],
)
def test_blurpool_counts_what_timm_blurpool2d_counts(program, blur):
    network = paramsym.parse(program)
    values = network.evaluate()
    module = BlurPool2d(**blur)
    h, w, c = (int(d) for d in network.input_shape.dims())
    x = torch.randn(2, c, h, w)
    with FlopCounterMode(display=False) as counter:
        y = module(x)
    assert values["params"] == sum(p.numel() for p in module.parameters()) == 0
    assert values["state"] == _state(module) == 0
    assert values["macs"] == counter.get_total_flops() // 2 // 2  # per sample, batch 2
    out = [int(d) for d in network.output_shape.dims()]
    assert out == [y.shape[2], y.shape[3], y.shape[1]]
    exported = paramsym.to_torch(network)
    assert torch.allclose(exported(x), y, atol=1e-6)
    text, again = import_back(network, torch.nn.Sequential(module))  # the model's own forward is traced
    assert text.strip().endswith(program.split(" > ")[1])
    assert again.evaluate()["macs"] == values["macs"]


def test_the_filter_size_is_3_unless_written():
    assert paramsym.parse("input(8x8x4) > blurpool").evaluate()["macs"] == 9 * 4 * 4 * 4


def test_symbolic_sizes():
    network = paramsym.parse("input(H x W x C) > blurpool(3)")
    assert network.quantity("params") == 0
    assert {s.name for s in network.quantity("macs").free_symbols} == {"H", "W", "C"}
    assert network.evaluate(H=14, W=10, C=4)["macs"] == 9 * 4 * 7 * 5
    with pytest.raises(paramsym.ParamsymError, match="by reflection"):
        paramsym.parse("input(H x 8 x 4) > blurpool(5)").evaluate(H=2)


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(1x8x4) > blurpool(3)", "pads each side by reflection by 1"),  # PyTorch: padding >= input size
        ("input(8x8x4) > blurpool(1)", "not a whole number of at least 2"),
        ("input(8x8x4) > blurpool(2.5)", "not a whole number of at least 2"),
        ("input(8x8x4) > blurpool(stride=0)", "stride must be at least 1"),
        ("input(8x8x4) > blurpool(3x3)", "blurpool takes one filter size, not 3x3"),
        ("input(8x4) > blurpool(3)", "works on 2-D inputs"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words.replace("(", r"\(").replace(")", r"\)")):
        paramsym.parse(program).evaluate()


def test_pytorch_refuses_what_blurpool_refuses():
    with pytest.raises(RuntimeError):
        BlurPool2d(4, 3, 2)(torch.randn(1, 4, 1, 8))


@pytest.mark.parametrize("name", ["resnetblur18", "densenetblur121d", "tresnet_m"])
def test_timm_models_with_blurpool_import_exactly(name):
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    text, counted = ours(model, (224, 224, 3))
    truth = torch_truth(model, (224, 224, 3))
    assert "blurpool(3)" in text
    assert (counted["params"], counted["state"], counted["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counted["out"] == truth["out"]
