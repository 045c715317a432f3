"""An import compared with the module itself: what `from_torch` wrote, counted, beside the module's own numbers
(its parameters, BatchNorm state, output shape and FlopCounterMode's MACs, on meta tensors), as dicts; the counts
themselves are helpers/import_check.py's, which the timm coverage and the import sweep use."""

from __future__ import annotations

import copy

from torch import nn

import paramsym
from helpers.import_check import program_counts, torch_counts


def torch_truth(module: nn.Module, input_shape: tuple) -> dict:
    """The module's own numbers: params, BN state, output shape (PyTorch's layout, without the batch), MACs
    (FlopCounterMode on a meta copy: shapes only). `input_shape` is channels last, as `from_torch` takes it."""
    meta = module if next(module.parameters()).is_meta else copy.deepcopy(module).to("meta")
    counts = torch_counts(meta, input_shape)
    return {"params": counts.params, "state": counts.state, "out": counts.dims, "macs": counts.macs}


def ours(module: nn.Module, input_shape: tuple) -> tuple[str, dict]:
    """(program, its numbers): what `from_torch` wrote, parsed and counted; "out" is channels last."""
    text = paramsym.from_torch(module, input_shape)
    params, state, out, macs = program_counts(text)
    return text, {"params": params, "state": state, "out": out, "macs": macs}
