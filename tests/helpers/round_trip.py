"""Blocks the test files shared: a program exported to PyTorch and imported back, and the weights of one
module copied into another so that both compute the same function."""

from __future__ import annotations

from collections.abc import Iterable

import torch

import paramsym


def input_dims(network: paramsym.Network) -> list[int]:
    """The program's input shape as numbers, channels last (what `from_torch` takes)."""
    return [int(d) for d in network.input_shape.dims()]


def import_back(network: paramsym.Network, module: torch.nn.Module | None = None) -> tuple[str, paramsym.Network]:
    """(text, network): what `from_torch` reads from `module` (by default `network` exported to PyTorch) at the
    program's input shape, and that text parsed; the caller compares what it needs (every quantity, the shape)."""
    text = paramsym.from_torch(paramsym.to_torch(network) if module is None else module, input_dims(network))
    return text, paramsym.parse(text)


def randomize_and_copy(theirs: Iterable[torch.Tensor], ours: Iterable[torch.Tensor]) -> None:
    """Give each of `theirs` random values and copy them into the matching one of `ours`, reshaped to its shape
    (a Linear's weight into a 1x1 convolution's): the two modules then compute the same function if they are the
    same. Both lists have one length."""
    with torch.no_grad():
        for t, o in zip(theirs, ours, strict=True):
            t.copy_(torch.randn_like(t))
            o.copy_(t.reshape(o.shape))
