"""What PyTorch's autograd keeps for the backward pass of one forward, measured with saved_tensors_hooks.

Each storage counts once, by its whole size (`untyped_storage().nbytes()`): a saved view (q, k and v of one qkv
projection, a flattened map) keeps its whole storage alive, and two saved views of one storage keep it once. The
storages of the model's parameters and buffers and of the input tensor (the images or token ids given) are not
counted: they are the weights and the data, not activations.
"""

from __future__ import annotations

from typing import Any

import torch


def saved_storages(
    model: torch.nn.Module, x: Any, forward: Any = None, *, with_input: bool = False, exclude: tuple = ()
) -> dict[int, tuple[int, str]]:
    """{storage pointer: (bytes, what)} of what one forward of `model` on `x` keeps for backward (`with_input`:
    the input's storage counts too, when saved)."""
    excluded = {p.untyped_storage().data_ptr() for p in model.parameters()}
    excluded |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    if not with_input:
        excluded.add(x.untyped_storage().data_ptr())
    excluded |= {t.untyped_storage().data_ptr() for t in exclude}
    kept: dict[int, tuple[int, str]] = {}
    alive: list[torch.Tensor] = []  # kept alive, so that no storage is freed and its address reused

    def pack(t: torch.Tensor) -> torch.Tensor:
        alive.append(t)
        if t.device.type == "meta":
            return t
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in excluded and ptr not in kept and storage.nbytes():
            kept[ptr] = (storage.nbytes(), f"{t.dtype} {tuple(t.shape)}")
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward(x) if forward is not None else model(x)
    del out
    return kept


def saved_bytes(
    model: torch.nn.Module, x: Any, forward: Any = None, *, with_input: bool = False, exclude: tuple = ()
) -> int:
    """The bytes of `saved_storages`; `exclude`: tensors whose storages are kept already (not counted)."""
    return sum(size for size, _ in saved_storages(model, x, forward, with_input=with_input, exclude=exclude).values())
