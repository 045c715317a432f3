"""`sdpa(heads=h, head_dim=e)`, the attention core on channel groups of queries, keys and values (a paramsym
extension, docs/language.md "Attention core"): checked against timm's SHViT SHSA and iFormer SHMA, read whole as
programs with slices, concatenations and gates around sdpa, at several sizes (params, BatchNorm state, output shape
and MACs by FlopCounterMode on meta tensors: FLOPs / 2), and against F.scaled_dot_product_attention through the
export (torch_modules.ScaledDotProductAttention)."""

from __future__ import annotations

import pytest
import torch
from timm.models.iformer import SHMA
from timm.models.shvit import SHSA
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.cli_helpers import run
from helpers.imported import ours, torch_truth
from paramsym.frameworks.torch_modules import ScaledDotProductAttention


def counted(program: str) -> dict:
    net = paramsym.parse(program)
    values = net.evaluate()
    return {
        "params": values["params"],
        "state": values["state"],
        "macs": values["macs"],
        "out": tuple(int(net.value(n)) for n in net.output_shape.dims()),
    }


@pytest.mark.parametrize("T, h, e, c", [(196, 1, 16, 64), (49, 4, 8, 32), (10, 2, 3, 6), (1, 1, 1, 1)])
def test_counts_as_torch_sdpa(T, h, e, c):
    module = ScaledDotProductAttention(h, e)  # no parameters: torch_counts finds no device in it
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(torch.zeros(1, 2 * h * e + c, T, device="meta"))
    got = counted(f"input({T}x{2 * h * e + c}) > sdpa(heads={h}, head_dim={e})")
    assert (got["params"], got["macs"]) == (0, counter.get_total_flops() // 2) == (0, h * T * T * e + T * T * c)
    assert got["out"] == (T, c) == (y.shape[2], y.shape[1])


# (H, W, dim, qk_dim, pdim): SHViT's sizes (stage 2 of shvit_s1: 224 channels, pdim 48, qk_dim 16) and others
SHSA_CASES = [(14, 14, 224, 16, 48), (7, 7, 320, 16, 48), (8, 6, 64, 8, 16), (3, 5, 32, 4, 8)]


class Host(nn.Module):
    """The module inside a model (a model's own forward is traced through)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.m = module

    def forward(self, x):
        return x + self.m(x)


@pytest.mark.parametrize("H, W, dim, qk, p", SHSA_CASES)
def test_shsa_imports_as_timm_counts(H, W, dim, qk, p):
    with torch.device("meta"):
        model = Host(SHSA(dim, qk, p)).eval()
    text, numbers = ours(model, (H, W, dim))
    assert f"sdpa(heads=1, head_dim={qk})" in text and f"slice({p}, {dim})" in text, text
    truth = torch_truth(model, (H, W, dim))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}


# (H, W, dim, ratio, head_dim_reduction_ratio): iFormer-t's stages 3 and 4, others
SHMA_CASES = [(14, 14, 192, 1, 2), (7, 7, 384, 1, 2), (8, 8, 64, 2, 4), (5, 3, 32, 1, 1)]


@pytest.mark.parametrize("H, W, dim, ratio, reduction", SHMA_CASES)
def test_shma_imports_as_timm_counts(H, W, dim, ratio, reduction):
    with torch.device("meta"):
        model = Host(SHMA(dim, ratio, reduction)).eval()
    text, numbers = ours(model, (H, W, dim))
    assert f"sdpa(heads=1, head_dim={dim // reduction})" in text and "sigmoid" in text, text
    truth = torch_truth(model, (H, W, dim))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}


def test_windowed_shma_is_refused():
    with torch.device("meta"):
        model = Host(SHMA(32, window_size=4)).eval()
    with pytest.raises(paramsym.ParamsymError, match=r"attends inside windows"):
        paramsym.from_torch(model, (8, 8, 32))


REFUSED = [
    ("input(8x8x32) > sdpa(heads=1)", "needs head_dim="),
    ("input(8x8x32) > sdpa(head_dim=4)", "needs heads="),
    ("input(8x8x32) > sdpa(heads=2, head_dim=8)", "leave no values"),
    ("input(8x8x33) > sdpa(heads=2, head_dim=8)", "heads=2 does not divide the 1 value channels"),
    ("input(8x8x35) > sdpa(heads=2, head_dim=8)", "heads=2 does not divide the 3 value channels"),
    ("input(32) > sdpa(heads=1, head_dim=4)", "its input is a vector"),
]


@pytest.mark.parametrize("program, message", REFUSED)
def test_refused(program, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(program).evaluate()


def test_explain():
    text = " ".join(run("explain", "input(14x14x48) > sdpa(heads=1, head_dim=16)").stdout.split())
    assert "No parameters" in text and "1,229,312" in text


def test_export_computes_sdpa_and_imports_back():
    net = paramsym.parse("input(5x4x22) > sdpa(heads=2, head_dim=3)")
    module = paramsym.to_torch(net).eval()
    x = torch.randn(2, 22, 5, 4)
    t = x.flatten(2).transpose(1, 2)
    q, k, v = (part.reshape(2, 20, 2, -1).transpose(1, 2) for part in torch.split(t, [6, 6, 10], dim=-1))
    expected = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 20, 10).transpose(1, 2)
    with torch.no_grad():
        torch.testing.assert_close(module(x), expected.reshape(2, 10, 5, 4))
    assert "sdpa(heads=2, head_dim=3)" in paramsym.from_torch(module, (5, 4, 22))
