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
from helpers.frameworks import torch_params

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def torchvision_model(name, **kwargs):
    def build():
        return getattr(torchvision.models, name)(weights=None, **kwargs)

    return build


# file stem -> (torchvision factory, whether the model runs in training mode: side heads
# run only then, and paramsym counts their MACs, and whether it can be built on the meta
# device: RegNet computes its widths with tensors, which fails there)
ZOO = {
    "mnasnet1_0": (torchvision_model("mnasnet1_0"), False, True),
    "regnet_y_400mf": (torchvision_model("regnet_y_400mf"), False, False),
    "mobilenet_v3_large": (torchvision_model("mobilenet_v3_large"), False, True),
    "mobilenet_v3_small": (torchvision_model("mobilenet_v3_small"), False, True),
    "efficientnet_b0": (torchvision_model("efficientnet_b0"), False, True),
    "efficientnet_v2_s": (torchvision_model("efficientnet_v2_s"), False, True),
    "inception_v3": (torchvision_model("inception_v3", aux_logits=True, init_weights=False), True, True),
    "inception_v3_no_aux": (torchvision_model("inception_v3", aux_logits=False, init_weights=False), False, True),
    "convnext_tiny": (torchvision_model("convnext_tiny"), False, True),
    "googlenet_aux": (torchvision_model("googlenet", aux_logits=True, init_weights=False), True, True),
    "shufflenet_v2_x1_0": (torchvision_model("shufflenet_v2_x1_0"), False, True),
    "swin_t": (torchvision_model("swin_t"), False, True),
    "maxvit_t": (torchvision_model("maxvit_t"), False, True),
}


def bn_state(module):
    """BatchNorm running mean and variance (Swin's relative-position index is a buffer too, but not state)."""
    return sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))


def framework_counts(factory, input_shape, training, meta):
    """Parameters, state, output shape and MACs, from torchvision alone."""
    device = "meta" if meta else "cpu"
    with torch.device(device):
        module = factory()
    module.train(training)
    *spatial, channels = input_shape
    batch = 2 if training else 1  # BatchNorm in training mode wants two samples
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = module(torch.zeros(batch, channels, *spatial, device=device))
    if isinstance(out, tuple):  # GoogLeNetOutputs / InceptionOutputs: the main head first
        out = out[0]
    return torch_params(module), bn_state(module), list(out.shape[1:]), counter.get_total_flops() // 2 // batch


@pytest.mark.parametrize("name", ZOO)
def test_modern_zoo_model_counts_as_torchvision(name):
    factory, training, meta = ZOO[name]
    network = paramsym.parse((EXAMPLES / f"{name}.psym").read_text())
    dims = [int(d) for d in network.input_shape.dims()]
    params, state, shape, macs = framework_counts(factory, dims, training, meta)
    values = network.evaluate()
    assert values["params"] == params
    assert values["state"] == state
    assert [int(d) for d in network.output_shape.dims()] == shape
    assert values["macs"] == macs


@pytest.mark.parametrize("name", [n for n in ZOO if "droppath(" in (EXAMPLES / f"{n}.psym").read_text()])
def test_stochastic_depth_probabilities_are_torchvisions(name):
    """droppath changes no count, so the counts cannot check it: the probabilities, in the
    order the branches run, are those of the StochasticDepth modules torchvision calls."""
    factory, _, _meta = ZOO[name]
    with torch.device("meta"):
        module = factory()
    module.eval()
    called = []
    for sub in module.modules():
        if isinstance(sub, torchvision.ops.StochasticDepth):
            sub.register_forward_hook(lambda m, args, out: called.append(m.p))
    network = paramsym.parse((EXAMPLES / f"{name}.psym").read_text())
    *spatial, channels = [int(d) for d in network.input_shape.dims()]
    with torch.no_grad():
        module(torch.zeros(1, channels, *spatial, device="meta"))
    ours = [float(entry.layer.options.value) for entry in network.layers if entry.layer.kind.key == "droppath"]
    assert ours == pytest.approx(called, abs=1e-12)
    assert len(ours) > 0
