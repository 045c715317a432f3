"""The modern convolutional networks of the zoo (LANGUAGE.md sections 7 and 8:
squeeze-and-excitation gates, side heads, layer scale, channel shuffle, window
attention) against torchvision: parameter count, BatchNorm running statistics,
output shape and MACs (torch's FlopCounterMode, on the meta device)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from frameworks import torch_params

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def torchvision_model(name, **kwargs):
    def build():
        return getattr(torchvision.models, name)(weights=None, **kwargs)
    return build


# file stem -> (torchvision factory, whether the model runs in training mode: side heads
# run only then, and paramsym counts their MACs)
ZOO = {
    "mnasnet1_0": (torchvision_model("mnasnet1_0"), False),
}


def bn_state(module):
    """BatchNorm running mean and variance (Swin's relative-position index is a buffer too, but not state)."""
    return sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))


def framework_counts(factory, input_shape, training):
    """Parameters, state, output shape and MACs, from torchvision alone."""
    with torch.device("meta"):
        module = factory()
    module.train(training)
    *spatial, channels = input_shape
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = module(torch.zeros(1, channels, *spatial, device="meta"))
    if isinstance(out, tuple):  # GoogLeNetOutputs / InceptionOutputs: the main head first
        out = out[0]
    return torch_params(module), bn_state(module), list(out.shape[1:]), counter.get_total_flops() // 2


@pytest.mark.parametrize("name", ZOO)
def test_modern_zoo_model_counts_as_torchvision(name):
    factory, training = ZOO[name]
    network = paramsym.parse((EXAMPLES / f"{name}.psym").read_text())
    params, state, shape, macs = framework_counts(factory, [int(d) for d in network.input_shape.dims()], training)
    values = network.evaluate()
    assert values["params"] == params
    assert values["state"] == state
    assert [int(d) for d in network.output_shape.dims()] == shape
    assert values["macs"] == macs
