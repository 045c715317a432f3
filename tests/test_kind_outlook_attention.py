"""`outlook(heads=h, kernel=k, stride=s)` (VOLO's outlook attention; docs/language.md, "Outlook attention"), checked
against timm's volo.OutlookAttention at several sizes (params, output shape, MACs by FlopCounterMode on meta
tensors: FLOPs / 2); the export (torch_modules.OutlookAttention) computes what timm's module computes and imports
back; VOLO's class attention (q and one kv Linear), its learned table added to a channels-last map and its
token-labelling head (`aux_head(x[:, 1:]).max(1)[0]`, global max pooling) import in small whole VOLO models."""

from __future__ import annotations

import pytest
import torch
from timm.models.volo import VOLO, ClassAttention, OutlookAttention
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.imported import ours, torch_truth
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import OutlookAttention as Exported


def counted(program: str) -> dict:
    values = paramsym.parse(program).evaluate()
    return {"params": values["params"], "macs": values["macs"]}


def macs_of(module: nn.Module, *args) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args)
    return counter.get_total_flops() // 2


def randomized(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return module.eval()


def _text(heads: int, kernel: int, stride: int, bias: bool) -> str:
    return f"outlook(heads={heads}, kernel={kernel}, stride={stride}{', bias' if bias else ''})"


# (H, W, C, heads, kernel, stride, bias)
CASES = [
    (28, 28, 192, 6, 3, 2, False),
    (6, 6, 8, 2, 3, 2, False),
    (5, 7, 12, 3, 3, 1, True),
    (7, 9, 8, 1, 5, 2, False),
    (7, 8, 6, 2, 3, 3, True),
    (4, 4, 16, 4, 1, 1, False),
]


@pytest.mark.parametrize("H, W, C, heads, kernel, stride, bias", CASES)
def test_outlook_counts_as_timm(H, W, C, heads, kernel, stride, bias):
    with torch.device("meta"):
        theirs = OutlookAttention(C, heads, kernel_size=kernel, padding=kernel // 2, stride=stride, qkv_bias=bias)
        x = torch.zeros(1, H, W, C)
        assert theirs(x).shape == (1, H, W, C)
        macs = macs_of(theirs.eval(), x)
    program = f"input({H}x{W}x{C}) > {_text(heads, kernel, stride, bias)}"
    assert counted(program) == {"params": torch_params(theirs), "macs": macs}
    assert str(paramsym.parse(program).output_shape) == str(paramsym.parse(f"input({H}x{W}x{C})").output_shape)


@pytest.mark.parametrize("H, W, C, heads, kernel, stride, bias", CASES[1:])
def test_outlook_export_computes_timms(H, W, C, heads, kernel, stride, bias):
    network = paramsym.parse(f"input({H}x{W}x{C}) > {_text(heads, kernel, stride, bias)}")
    whole = paramsym.to_torch(network).eval()
    (mine,) = [m for m in whole.modules() if isinstance(m, Exported)]
    theirs = randomized(
        OutlookAttention(C, heads, kernel_size=kernel, padding=kernel // 2, stride=stride, qkv_bias=bias)
    )
    mine.load_state_dict(theirs.state_dict())
    x = torch.randn(2, H, W, C)
    with torch.no_grad():
        assert torch.allclose(mine(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1), theirs(x), atol=1e-4)
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    assert macs_of(whole, torch.zeros(1, C, H, W)) == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


class ChannelsLast(nn.Module):
    """timm's OutlookAttention as VOLO runs it: on the map permuted to (N, H, W, C)."""

    def __init__(self, C: int, heads: int, kernel: int, stride: int, bias: bool):
        super().__init__()
        self.embed = nn.Conv2d(3, C, 2, stride=2)
        self.attn = OutlookAttention(C, heads, kernel_size=kernel, padding=kernel // 2, stride=stride, qkv_bias=bias)

    def forward(self, x):
        return self.attn(self.embed(x).permute(0, 2, 3, 1))


@pytest.mark.parametrize("H, W, C, heads, kernel, stride, bias", CASES[1:])
def test_outlook_imports(H, W, C, heads, kernel, stride, bias):
    with torch.device("meta"):
        model = ChannelsLast(C, heads, kernel, stride, bias).eval()
    text, numbers = ours(model, (2 * H, 2 * W, 3))
    assert f"heads={heads}" in text and f"kernel={kernel}" in text and f"stride={stride}" in text, text
    truth = torch_truth(model, (2 * H, 2 * W, 3))
    assert {k: numbers[k] for k in ("params", "state", "macs", "out")} == {
        k: truth[k] for k in ("params", "state", "macs", "out")
    }


def test_outlook_other_pooling_is_refused():
    with torch.device("meta"):
        model = ChannelsLast(8, 2, 3, 2, False).eval()
        model.attn.pool = nn.AvgPool2d(2, 2)  # not ceil mode (the same here, on 6 x 6, but not the language's)
    with pytest.raises(paramsym.ParamsymError, match="is not outlook attention as the language writes it"):
        paramsym.from_torch(model, (12, 12, 3))


class ClassAttentionOnly(nn.Module):
    """VOLO's ClassAttention (q, and one Linear d -> 2d for the keys and values) on cat(cls, tokens)."""

    def __init__(self, d: int, heads: int, bias: bool):
        super().__init__()
        self.embed = nn.Conv2d(3, d, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.attn = ClassAttention(d, heads, qkv_bias=bias)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.attn(x)[:, 0]


@pytest.mark.parametrize("d, heads, bias", [(32, 4, False), (24, 3, True)])
def test_volo_class_attention_imports(d, heads, bias):
    with torch.device("meta"):
        model = ClassAttentionOnly(d, heads, bias).eval()
    text, numbers = ours(model, (16, 16, 3))
    assert f"clsattn(heads={heads}{', bias' if bias else ''})" in text, text
    truth = torch_truth(model, (16, 16, 3))
    assert {k: numbers[k] for k in ("params", "state", "macs", "out")} == {
        k: truth[k] for k in ("params", "state", "macs", "out")
    }


def test_volo_class_attention_other_head_width_is_refused():
    with torch.device("meta"):
        model = ClassAttentionOnly(32, 4, False).eval()
        model.attn = ClassAttention(32, 4, head_dim=4)
    with pytest.raises(paramsym.ParamsymError, match="is not class attention as the language writes it"):
        paramsym.from_torch(model, (16, 16, 3))


class MaxIndices(nn.Module):
    """x.max(1) of a sequence whose indices the model uses: no counterpart."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        values, indices = x.max(1)
        return values + indices


class MaxValues(nn.Module):
    """torch.max(x, 1)[0] of a sequence, as a method or a function: global max pooling."""

    def __init__(self, function: bool):
        super().__init__()
        self.function = function
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.head(self.embed(x).flatten(2).transpose(1, 2))
        return torch.max(x, 1)[0] if self.function else x.max(dim=1)[0]


@pytest.mark.parametrize("function", [False, True])
def test_max_values_import_as_gmp(function):
    with torch.device("meta"):
        model = MaxValues(function).eval()
    text, numbers = ours(model, (16, 16, 3))
    assert text.rstrip().endswith("> gmp"), text
    truth = torch_truth(model, (16, 16, 3))
    assert {k: numbers[k] for k in ("params", "state", "macs", "out")} == {
        k: truth[k] for k in ("params", "state", "macs", "out")
    }


def test_max_indices_are_refused():
    with torch.device("meta"):
        model = MaxIndices().eval()
    with pytest.raises(paramsym.ParamsymError):
        paramsym.from_torch(model, (16, 16, 3))


# (image, patch, layers, dims, heads, post layers, aux head)
VOLO_CASES = [
    (32, 8, (1, 1, 1, 1), (16, 32, 32, 32), (2, 4, 4, 4), ("ca", "ca"), True),
    (32, 8, (2, 1, 1, 1), (8, 16, 16, 16), (1, 2, 2, 2), ("ca",), False),
    (64, 16, (1, 1, 1, 1), (16, 24, 24, 24), (2, 3, 3, 3), None, True),
]


@pytest.mark.parametrize("image, patch, layers, dims, heads, post, aux", VOLO_CASES)
def test_volo_imports(image, patch, layers, dims, heads, post, aux):
    with torch.device("meta"):
        model = VOLO(
            layers=layers,
            img_size=image,
            patch_size=patch,
            stem_hidden_dim=8,
            embed_dims=dims,
            num_heads=heads,
            post_layers=post,
            use_aux_head=aux,
            global_pool="token" if post else "avg",
            num_classes=10,
        ).eval()
    text, numbers = ours(model, (image, image, 3))
    assert f"outlook(stride=2, heads={heads[0]}, kernel=3)" in text, text
    assert ("clsattn(" in text) == bool(post) and ("gmp" in text) == aux, text
    truth = torch_truth(model, (image, image, 3))
    assert {k: numbers[k] for k in ("params", "state", "macs", "out")} == {
        k: truth[k] for k in ("params", "state", "macs", "out")
    }


def test_formulas():
    values = paramsym.parse("input(H x W x C) > outlook(heads=h, kernel=k, stride=s)").evaluate(
        H=28, W=28, C=192, h=6, k=3, s=2
    )
    assert values["params"] == 2 * 192 * 192 + 192 + 6 * 81 * 193
    assert values["macs"] == 2 * 784 * 192 * 192 + 196 * 6 * 81 * 192 + 196 * 81 * 192
    odd = paramsym.parse("input(H x W x C) > outlook(heads=2, stride=3)").evaluate(H=7, W=8, C=6)
    assert odd["macs"] == 2 * 56 * 36 + 3 * 3 * (2 * 81 * 6 + 81 * 6)


REFUSED = [
    ("input(8x8x32) > outlook", "needs its number of heads"),
    ("input(8x8x32) > outlook(heads=3)", "heads=3 does not divide the 32 channels"),
    ("input(8x8x32) > outlook(heads=2, kernel=4)", "kernel=4 is even"),
    ("input(64x32) > outlook(heads=2)", "attends over k x k neighbourhoods of a map"),
    ("input(8x8x32) > outlook(heads=2, stride=0)", "stride"),
    ("input(8x8x32) > outlook(heads=2, size=3)", "size"),
]


@pytest.mark.parametrize("program, message", REFUSED)
def test_refused(program, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(program).evaluate()
