"""The few PyTorch modules the language needs beyond torch.nn (needs torch).

Exported source (`paramsym export --to torch`) copies these classes in, so the
file it writes runs without paramsym.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Residual(nn.Module):
    """main(x) + shortcut(x); the shortcut is the identity when absent."""

    def __init__(self, main: nn.Module, shortcut: nn.Module | None = None):
        super().__init__()
        self.main = main
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x):
        return self.main(x) + self.shortcut(x)


class Branches(nn.Module):
    """Every branch on the same input, summed ("add") or joined along channels ("concat")."""

    def __init__(self, how: str, *branches: nn.Module):
        super().__init__()
        self.how = how
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        outputs = [branch(x) for branch in self.branches]
        if self.how == "concat":
            return torch.cat(outputs, dim=1)
        total = outputs[0]
        for output in outputs[1:]:
            total = total + output
        return total


class ChannelsLast(nn.Module):
    """Applies a module that acts on the last axis (Linear, LayerNorm) to the channel axis."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):  # used only on inputs with spatial axes (a vector needs no move)
        return self.module(x.movedim(1, -1)).movedim(-1, 1)


class FlattenChannelsLast(nn.Module):
    """Flatten in H x W x C order, as the language (and Keras) lays the values out."""

    def forward(self, x):
        return x.movedim(1, -1).flatten(1)


class SamePad(nn.Module):
    """TensorFlow's "same" padding, which may put one more on the far side."""

    def __init__(self, pads: tuple, value: float = 0.0):
        super().__init__()
        self.pads = tuple(pads)
        self.value = value

    def forward(self, x):
        return F.pad(x, self.pads, value=self.value)


class Recurrent(nn.Module):
    """An nn.LSTM, nn.GRU or nn.RNN (batch_first=True) on a channels-first sequence (N, C, T): its output
    at every step, channels first (N, H', T), or with `last` the last step's (N, H'); the final states
    it also returns are dropped."""

    def __init__(self, module: nn.Module, last: bool = False):
        super().__init__()
        self.module = module
        self.last = last

    def forward(self, x):
        output = self.module(x.movedim(1, -1))[0]
        return output[:, -1] if self.last else output.movedim(-1, 1)
