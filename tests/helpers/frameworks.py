"""Helpers that ask the real frameworks for their counts (never our formulas)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch
from torch.utils.flop_counter import FlopCounterMode


def torch_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def on_meta(build):
    """`build()` on the meta device: a model's shapes without its weights (no memory, no downloads)."""
    with torch.device("meta"):
        return build()


def torch_state(module: torch.nn.Module) -> int:
    """Running statistics of normalisation layers (num_batches_tracked is a step counter, not state)."""
    return sum(b.numel() for name, b in module.named_buffers() if not name.endswith("num_batches_tracked"))


def torch_run(module: torch.nn.Module, shape_channels_last, layout: str):
    """Run a forward pass; return the output shape channels-last (batch removed) and the MACs.

    layout "cf": the module wants (N, C, *spatial) like Conv2d; "cl": it acts on the last axis.
    """
    *spatial, channels = shape_channels_last
    if layout == "cf":
        x = torch.zeros(1, channels, *spatial)
    else:
        x = torch.zeros(1, *spatial, channels)
    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(x)
    shape = list(y.shape[1:])
    if layout == "cf" and y.dim() > 2:
        shape = shape[1:] + shape[:1]
    return shape, counter.get_total_flops() // 2


class Residual(torch.nn.Module):
    """main(x) + shortcut(x), the shortcut being the identity when absent."""

    def __init__(self, main, shortcut=None):
        super().__init__()
        self.main = main
        self.shortcut = shortcut if shortcut is not None else torch.nn.Identity()

    def forward(self, x):
        return self.main(x) + self.shortcut(x)


class Branches(torch.nn.Module):
    """The sum (add) or the channel concatenation (concat) of branches."""

    def __init__(self, how, *branches, channel_axis=1):
        super().__init__()
        self.how = how
        self.branches = torch.nn.ModuleList(branches)
        self.channel_axis = channel_axis

    def forward(self, x):
        outs = [branch(x) for branch in self.branches]
        return torch.cat(outs, self.channel_axis) if self.how == "concat" else sum(outs)


def keras_counts(model, shape, batch: int = 1):
    """What a Keras model says: trainable weights (params), non-trainable weights (state: BatchNorm's moving
    statistics), and the MACs of one sample. On the torch backend a Keras model runs torch operations, so
    FlopCounterMode counts its products as it does a torch module's (FLOPs = 2·MACs per sample, asserted whole)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    frozen = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(batch, *shape), training=False)
    flops = counter.get_total_flops()
    assert flops % (2 * batch) == 0, flops
    return trainable, frozen, flops // (2 * batch)
