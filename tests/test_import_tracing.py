"""`from_torch` traces what PyTorch runs, on meta tensors (paramsym.frameworks.tracing): forward's Python sees real
sizes, so `x.shape`, reshapes, views, permutes, slices and branches on sizes stop being obstacles; no real forward
runs and no weight is needed. Every expectation is the real module's: its parameters, buffers, output shape and
FlopCounterMode's MACs."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import paramsym
from helpers.imported import ours, torch_truth
from paramsym.errors import ImportRefused

# ---- small models that read sizes in forward ------------------------------------------------------------


class PatchTokens(nn.Module):
    """A ViT stem written as people write it: x.shape read, flatten(2).transpose(1, 2), a class token and a table
    of positions that forward reads itself, x[:, 0] at the end."""

    def __init__(self, d=32, patch=4, size=16):
        super().__init__()
        self.proj = nn.Conv2d(3, d, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, (size // patch) ** 2 + 1, d))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        B, _, H, W = x.shape
        assert H % 4 == 0 and W % 4 == 0  # a check on sizes: a branch that now runs
        x = self.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)
        x = x + self.pos_embed
        x = self.norm(x)
        return self.head(x[:, 0])


class ChannelsLastBlock(nn.Module):
    """ConvNeXt's block as timm writes it: permute to channels last, a layer scale reshaped to broadcast."""

    def __init__(self, c=16):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.fc1, self.fc2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.ones(c))

    def forward(self, x):
        shortcut = x
        x = self.dw(x).permute(0, 2, 3, 1)
        x = self.fc2(F.gelu(self.fc1(self.norm(x)))).permute(0, 3, 1, 2)
        return shortcut + x.mul(self.gamma.reshape(1, -1, 1, 1))


class ViewsAndSlices(nn.Module):
    """x.view(B, C, H * W).permute(0, 2, 1) (a sequence), x.mean(1), a channel slice x[:, :8], F.dropout."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.conv(x)[:, :8]
        B, C, H, W = x.size()
        x = x.view(B, C, H * W).permute(0, 2, 1).mean(1)
        return self.fc(F.dropout(x, p=0.1, training=self.training))


class ExtraArguments(nn.Module):
    """forward(x, mask=None, scale=1): its other arguments keep their defaults, as Python values."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x, mask=None, scale=1):
        if mask is not None:
            x = x * mask
        return self.fc(x) * scale if scale != 1 else self.fc(x)


CASES = [
    # (model, input channels last, what the program says)
    (PatchTokens, (16, 16, 3), ["tokens", "cls", "posembed(17)", "first"]),
    (ChannelsLastBlock, (14, 14, 16), ["scale"]),
    (ViewsAndSlices, (8, 8, 3), ["slice(0, 8)", "tokens", "gap", "dropout(0.1)"]),
    (ExtraArguments, (6,), ["dense(6->6, bias)"]),
]


@pytest.mark.parametrize("build, shape, says", CASES, ids=[c[0].__name__ for c in CASES])
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_models_that_read_sizes_import_exactly(build, shape, says, device):
    with torch.device(device):
        module = build()
    text, counted = ours(module, shape)
    truth = torch_truth(module, shape)
    for word in says:
        assert word in text, text
    assert counted["params"] == truth["params"] and counted["state"] == truth["state"], (counted, truth)
    assert counted["macs"] == truth["macs"], (counted, truth)
    out = truth["out"]
    expected = out if len(out) == 1 else (*out[1:], out[0])
    assert counted["out"] == tuple(expected), (counted, truth)


def test_no_weight_is_read_or_changed():
    """The trace runs on meta tensors: a CPU model's weights and running statistics are untouched, its training
    flag is restored, and nothing runs on real tensors (a forward that would fail on real data still imports)."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    model.train()
    model[1].eval()  # a mixed model: each module keeps its own mode
    before = {k: v.clone() for k, v in model.state_dict().items()}
    paramsym.from_torch(model, (10, 10, 3))
    assert [m.training for m in model.modules()] == [True, True, False, True]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.device("meta"):
        on_meta = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    paramsym.from_torch(on_meta, (10, 10, 3))
    assert all(m.training for m in on_meta.modules())


# ---- refusals name the module and the operation in the user's terms --------------------------------------


class BranchOnValues(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Sequential(nn.Conv2d(3, 4, 1), Gate())

    def forward(self, x):
        return self.inner(x)


class Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent: no trace can follow it
            return x
        return -x


class HeadSplit(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x):
        B, N, _ = x.shape
        q = self.qkv(x).reshape(B, N, 3, 2, 4).permute(2, 0, 3, 1, 4)[0]
        return q.sum(-1)


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 8)
        self.blocks = nn.ModuleList([HeadSplit()])

    def forward(self, ids):
        return self.blocks[0](self.embed(ids))


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, image1, image2, updates=12):
        return self.conv(image1) + self.conv(image2)


def raft_small():
    import torchvision

    with torch.device("meta"):
        return torchvision.models.optical_flow.raft_small(weights=None)


@pytest.mark.parametrize(
    "build, shape, names",
    [
        (BranchOnValues, (4, 4, 3), ["module 'inner.1' (Gate)", "branches on the values of a tensor"]),
        (Outer, (5,), ["module 'blocks.0' (HeadSplit)", "x.reshape(...) turns a value of shape (2, 5, 24) into"]),
        # a second input was traced as nothing ("'NoneType' object has no attribute 'shape'")
        (TwoInputs, (8, 8, 3), ["(TwoInputs) takes 2 inputs (image1, image2): paramsym imports a model of one input"]),
        (raft_small, (128, 128, 3), ["(RAFT) takes 2 inputs (image1, image2)"]),
    ],
)
def test_refusals_name_the_module(build, shape, names):
    with pytest.raises(ImportRefused) as refused:
        paramsym.from_torch(build(), shape)
    message = str(refused.value)
    for name in names:
        assert name in message, message
    # never a torch.fx node name (getattr_1, reshape_2, call_method ...)
    assert not re.search(r"\b(getattr|call_method|call_function|placeholder)(_[0-9]+)?\b", message), message


def test_a_wrong_input_says_so_naming_the_module():
    import torchvision

    with pytest.raises(ImportRefused) as refused:
        paramsym.from_torch(torchvision.models.resnet18(), (224, 224))
    assert "the model does not run on a 224x224 input: module 'conv1' (Conv2d): " in str(refused.value)


# ---- timm models that read x.shape: built on meta, imported exactly ------------------------------------

timm = pytest.importorskip("timm")


@pytest.mark.parametrize(
    "name, size",
    [
        ("vit_tiny_patch16_224", 224),
        ("deit_tiny_patch16_224", 224),
        ("convnext_atto", 224),
        ("rexnet_100", 224),
        ("swin_tiny_patch4_window7_224", 224),  # its blocks and patch merging read whole
        ("swin_s3_tiny_224", 224),
        ("mambaout_femto", 224),  # channels-last splits, concatenations and gates
    ],
)
def test_timm_models_that_read_sizes_import_exactly(name, size):
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    _, counted = ours(model, (size, size, 3))
    truth = torch_truth(model, (size, size, 3))
    assert counted["params"] == truth["params"] and counted["state"] == truth["state"]
    assert counted["out"] == truth["out"]
    assert counted["macs"] == truth["macs"], (counted["macs"], truth["macs"])
