"""`botattn(->c, heads=h, head_dim=e)`, BoTNet's attention (a paramsym extension, docs/language.md "Bottleneck
attention"): q, k, v from one 1x1 convolution, relative-position logits from a row table and a column table, no
output projection. Checked against timm's BottleneckAttn at several sizes (params, output shape, MACs by
FlopCounterMode on meta tensors: FLOPs / 2), imported whole in timm's SelfAttnBlock, and the export
(torch_modules.BottleneckAttention) computes what timm's module computes and imports back."""

from __future__ import annotations

import pytest
import torch
from timm.layers.bottleneck_attn import BottleneckAttn
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.cli_helpers import run
from helpers.imported import ours, torch_truth
from paramsym.frameworks.torch_modules import BottleneckAttention


def measured(build, shape: tuple) -> dict:
    with torch.device("meta"):
        module = build().eval()
        x = torch.zeros(1, *shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(x)
    params = sum(p.numel() for p in module.parameters())
    *_, h, w = y.shape
    return {"params": params, "macs": counter.get_total_flops() // 2, "out": (h, w, y.shape[1])}


def counted(program: str) -> dict:
    net = paramsym.parse(program)
    values = net.evaluate()
    return {
        "params": values["params"],
        "macs": values["macs"],
        "out": tuple(int(net.value(n)) for n in net.output_shape.dims()),
    }


# (d, c, H, W, heads, head_dim or None, bias, stride): BoTNet's sizes, other widths, odd and non-square maps
CASES = [
    (256, 256, 16, 16, 4, None, False, 1),
    (512, 512, 16, 16, 4, None, False, 2),
    (512, 512, 8, 8, 4, None, False, 1),
    (64, 128, 8, 6, 2, 16, True, 1),
    (32, 48, 5, 7, 3, 8, False, 2),
    (16, 16, 1, 1, 1, None, True, 1),
]


def program(d, c, H, W, h, e, bias, stride) -> str:
    parts = [f"->{c}", f"heads={h}"] + [f"head_dim={e}"] * (e is not None) + ["bias"] * bias
    return f"input({H}x{W}x{d}) > botattn({', '.join(parts)})" + (" > avgpool2x2" if stride == 2 else "")


@pytest.mark.parametrize("d, c, H, W, h, e, bias, stride", CASES)
def test_counts_as_timm(d, c, H, W, h, e, bias, stride):
    def build():
        return BottleneckAttn(d, c, feat_size=(H, W), stride=stride, num_heads=h, dim_head=e, qkv_bias=bias)

    assert counted(program(d, c, H, W, h, e, bias, stride)) == measured(build, (d, H, W))


def test_formula():
    net = paramsym.parse("input(H x W x d) > botattn(->c, heads=h, head_dim=e)")
    values = {"H": 16, "W": 12, "d": 64, "c": 128, "h": 4, "e": 16}
    got = net.evaluate(**values)
    T = 16 * 12
    width = 2 * 4 * 16 + 128
    assert got["params"] == 64 * width + (31 + 23) * 16
    assert got["macs"] == T * 64 * width + 4 * T * T * 16 + 4 * T * 16 * (31 + 23) + T * T * 128
    assert got["kv_cache"] == T * (4 * 16 + 128)


REFUSED = [
    ("input(16x256) > botattn(->256, heads=4)", "attends over the positions of a map"),
    ("input(8x8x64) > botattn(->64)", "needs its number of heads"),
    ("input(8x8x64) > botattn(->64, heads=3)", "heads=3 does not divide the 64 output channels"),
    ("input(8x8x64) > botattn(->64, heads=0)", "heads must be at least 1"),
]


@pytest.mark.parametrize("text, message", REFUSED)
def test_refused(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()


def test_explain():
    text = " ".join(run("explain", "input(16x16x256) > botattn(->256, heads=4)").stdout.split())
    assert "a table of 31 x 64 for the rows and 31 x 64 for the columns" in text
    assert "3,968 parameters" in text and "no output projection" in text


# ---- the import: timm's BottleneckAttn whole, in its block -------------------------------------------------


@pytest.mark.parametrize("d, c, H, W, h, e, bias, stride", CASES[:5])
def test_imports_whole(d, c, H, W, h, e, bias, stride):
    with torch.device("meta"):  # in a model (the model itself is traced through)
        module = nn.Sequential(
            BottleneckAttn(d, c, feat_size=(H, W), stride=stride, num_heads=h, dim_head=e, qkv_bias=bias)
        )
    text, numbers = ours(module.eval(), (H, W, d))
    assert "botattn(" in text and ("avgpool2x2" in text) == (stride == 2), text
    truth = torch_truth(module, (H, W, d))
    assert (numbers["params"], numbers["macs"]) == (truth["params"], truth["macs"])


def test_self_attention_block_imports():
    """timm's SelfAttnBlock (BoTNet's bottleneck with the attention in place of the 3x3 convolution)."""
    from timm.models.byobnet import LayerFn, SelfAttnBlock

    with torch.device("meta"):
        layers = LayerFn()
        layers.self_attn = lambda dim, stride=1, feat_size=None, **dd: BottleneckAttn(
            dim, feat_size=feat_size, stride=stride, **dd
        )
        block = SelfAttnBlock(128, 256, stride=2, bottle_ratio=0.25, layers=layers, feat_size=(8, 8)).eval()
    text, numbers = ours(block, (8, 8, 128))
    assert "botattn(->64, heads=4) > avgpool2x2" in text, text
    truth = torch_truth(block, (8, 8, 128))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}


def test_another_map_is_refused():
    """The tables are built for one map: on another, timm's forward fails its assert; a table of other rows is
    refused by the reader."""
    with torch.device("meta"):
        module = BottleneckAttn(32, 32, feat_size=(8, 8), num_heads=2).eval()
    from paramsym.kinds.bottleneck_attention import bottleneck_text

    class Context:
        node_name = "attn"
        in_shape = (2, 32, 6, 6)

    with pytest.raises(paramsym.ParamsymError, match="for a 6x6 map"):
        bottleneck_text(module, Context())  # type: ignore[arg-type]


# ---- the export ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d, c, H, W, h, e, bias", [(32, 32, 6, 5, 2, 16, False), (16, 24, 4, 4, 3, 4, True)])
def test_export_computes_timms_attention(d, c, H, W, h, e, bias):
    net = paramsym.parse(f"input({H}x{W}x{d}) > botattn(->{c}, heads={h}, head_dim={e}{', bias' * bias})")
    whole = paramsym.to_torch(net).eval()
    (ours_module,) = [m for m in whole.modules() if isinstance(m, BottleneckAttention)]
    theirs = BottleneckAttn(d, c, feat_size=(H, W), num_heads=h, dim_head=e, qkv_bias=bias).eval()
    theirs.load_state_dict(ours_module.state_dict())
    x = torch.randn(2, d, H, W)
    with torch.no_grad():
        torch.testing.assert_close(ours_module(x), theirs(x))
    truth = torch_truth(whole, (H, W, d))
    assert (truth["params"], truth["macs"]) == (net.evaluate()["params"], net.evaluate()["macs"])
    back = paramsym.from_torch(whole, (H, W, d))
    assert f"botattn(->{c}, heads={h}" in back, back
