"""`eca(k)`: one kernel of k weights along the vector of channels (ECA-Net), compared with PyTorch's Conv1d and
timm's EcaModule: params, output shape, MACs (FlopCounterMode), the values of the export, and the import of
EcaModule as the gate `mul(id | gap > eca(k) > sigmoid)`."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.imported import ours, torch_truth
from helpers.round_trip import import_back


@pytest.mark.parametrize("channels, kernel", [(32, 3), (64, 5), (7, 1), (256, 9)])
def test_eca_counts_what_conv1d_along_the_channels_counts(channels, kernel):
    network = paramsym.parse(f"input(6x6x{channels}) > gap > eca({kernel})")
    values = network.evaluate()
    conv = nn.Conv1d(1, 1, kernel, padding=(kernel - 1) // 2, bias=False)
    x = torch.randn(2, 1, channels)
    with FlopCounterMode(display=False) as counter:
        y = conv(x)
    assert values["params"] == sum(p.numel() for p in conv.parameters()) == kernel
    assert values["macs"] == counter.get_total_flops() // 2 // 2 == channels * kernel  # per sample, batch 2
    assert [int(d) for d in network.output_shape.dims()] == [y.shape[-1]] == [channels]
    exported = paramsym.to_torch(network)
    pooled = torch.randn(2, channels, 6, 6)
    (weights,) = list(exported.parameters())
    with torch.no_grad():
        conv.weight.copy_(weights)
        assert torch.allclose(exported(pooled), conv(pooled.mean((2, 3)).unsqueeze(1)).squeeze(1), atol=1e-6)
    text, again = import_back(network)
    assert "eca(" in text and again.evaluate()["params"] == kernel


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(8x8x16) > eca(3)", "eca convolves along the vector of channels, but its input is"),
        ("input(8x8x16) > gap > eca(4)", "the kernel size 4 is not an odd whole number"),
        ("input(8x8x16) > gap > eca(2.5)", "not an odd whole number"),
        ("input(8x8x16) > gap > eca", "eca needs its kernel size"),
        ("input(8x8x16) > gap > eca(3x3)", "eca takes one kernel size, not 3x3"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words.replace("(", r"\(").replace(")", r"\)")):
        paramsym.parse(program).evaluate()


def test_symbolic_kernel():
    network = paramsym.parse("input(8 x 8 x C) > gap > eca(k)")
    assert str(network.quantity("params")) == "k"
    assert str(network.quantity("macs")) == "C*k"
    assert network.evaluate(k=5, C=40)["params"] == 5 and network.evaluate(k=5, C=40)["macs"] == 200


timm = pytest.importorskip("timm")


def test_timm_eca_module_imports_as_the_gate():
    from timm.layers.eca import EcaModule

    module = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), EcaModule(64))  # k from the channels: 3
    text, counted = ours(module, (12, 12, 3))
    truth = torch_truth(module, (12, 12, 3))
    assert "mul(id | gap > eca(3) > sigmoid)" in text
    assert (counted["params"], counted["macs"]) == (truth["params"], truth["macs"])


@pytest.mark.parametrize("name", ["ecaresnet26t", "eca_resnet33ts"])
def test_timm_eca_resnets_import_exactly(name):
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    _, counted = ours(model, (224, 224, 3))
    truth = torch_truth(model, (224, 224, 3))
    assert (counted["params"], counted["state"], counted["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counted["out"] == truth["out"]
