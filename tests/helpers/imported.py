"""An import compared with the module itself: what `from_torch` wrote, counted, beside the module's own numbers
(its parameters, BatchNorm state, output shape and FlopCounterMode's MACs, on meta tensors)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params


def torch_truth(module: nn.Module, input_shape: tuple) -> dict:
    """The module's own numbers: params, BN state, output shape (PyTorch's layout, without the batch), MACs
    (FlopCounterMode on a meta input: shapes only). `input_shape` is channels last, as `from_torch` takes it."""
    *spatial, channels = input_shape
    module = module.eval()
    x = torch.zeros(1, channels, *spatial, device="meta")
    meta = module if next(module.parameters()).is_meta else _meta_copy(module)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = meta(x)
    if isinstance(out, dict):  # torchvision's segmentation models: {"out": ..., "aux": ...}
        out = out["out"]
    return {
        "params": torch_params(module),
        # running statistics only: masks and index tables (Swin's) are buffers that are not state
        "state": sum(b.numel() for n, b in module.named_buffers() if n.endswith(("running_mean", "running_var"))),
        "out": tuple(out.shape[1:]),
        "macs": counter.get_total_flops() // 2,
    }


def _meta_copy(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module).to("meta")


def ours(module: nn.Module, input_shape: tuple) -> tuple[str, dict]:
    """(program, its numbers): what `from_torch` wrote, parsed and counted; "out" is channels last."""
    text = paramsym.from_torch(module, input_shape)
    network = paramsym.parse(text)
    values = network.evaluate()
    return text, {
        "params": values["params"],
        "state": values["state"],
        "out": tuple(int(network.value(d)) for d in network.output_shape.dims()),
        "macs": values["macs"],
    }
