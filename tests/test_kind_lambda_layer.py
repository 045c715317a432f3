"""`lambdalayer(->c, heads=h, head_dim=k, r=m | relpos)`, LambdaNetworks' lambda layer (a paramsym extension,
docs/language.md "Lambda layer"): queries, one key head and values from one 1x1 convolution, BatchNorm on the
queries and values, a content lambda and position lambdas (a Conv3d over an m x m neighbourhood, or a
relative-position table). Checked against timm's LambdaLayer at several sizes (params, BatchNorm state, output
shape, MACs by FlopCounterMode on meta tensors), imported whole in timm's SelfAttnBlock, and the export
(torch_modules.LambdaNetLayer) computes what timm's module computes and imports back."""

from __future__ import annotations

import pytest
import torch
from timm.layers.lambda_layer import LambdaLayer
from torch import nn

import paramsym
from helpers.cli_helpers import run
from helpers.imported import ours, torch_truth
from paramsym.frameworks.torch_modules import LambdaNetLayer

# (d, H, W, heads, head_dim, r or None for the table, stride, bias): lambda_resnet26t's r=9, lambda_resnet26rpt's
# table, halo/lambda hybrids' r=13, other widths, non-square maps
CASES = [
    (64, 16, 16, 4, 16, 9, 1, False),
    (128, 8, 8, 4, 16, None, 2, True),
    (96, 7, 9, 2, 8, 5, 1, False),
    (32, 6, 6, 1, 8, None, 1, False),
    (64, 16, 16, 4, 16, 13, 2, True),
]


def program(d, H, W, h, k, r, stride, bias) -> str:
    parts = [f"->{d}", f"heads={h}", f"head_dim={k}", "relpos" if r is None else f"r={r}"] + ["bias"] * bias
    return f"input({H}x{W}x{d}) > lambdalayer({', '.join(parts)})" + (" > avgpool2x2" if stride == 2 else "")


def timm_lambda(d, H, W, h, k, r, stride, bias):
    return LambdaLayer(d, feat_size=(H, W), stride=stride, num_heads=h, dim_head=k, r=r, qkv_bias=bias)


def counted(text: str) -> dict:
    net = paramsym.parse(text)
    values = net.evaluate()
    out = tuple(int(net.value(n)) for n in net.output_shape.dims())
    return {"params": values["params"], "state": values["state"], "out": out[-1:] + out[:-1], "macs": values["macs"]}


@pytest.mark.parametrize("d, H, W, h, k, r, stride, bias", CASES)
def test_counts_as_timm(d, H, W, h, k, r, stride, bias):
    with torch.device("meta"):
        module = timm_lambda(d, H, W, h, k, r, stride, bias).eval()
    assert counted(program(d, H, W, h, k, r, stride, bias)) == torch_truth(module, (H, W, d))


def test_formula():
    conv = paramsym.parse("input(H x W x d) > lambdalayer(->c, heads=h, head_dim=k, r=m)")
    table = paramsym.parse("input(H x W x d) > lambdalayer(->c, heads=h, head_dim=k, relpos)")
    values = {"H": 8, "W": 6, "d": 64, "c": 128, "h": 4, "k": 16, "m": 7}
    T, v, width = 48, 32, 4 * 16 + 16 + 32
    own = 64 * width + 2 * 4 * 16 + 2 * v
    shared = T * 64 * width + T * 16 * v + 2 * 4 * T * 16 * v
    got = conv.evaluate(**values)
    assert (got["params"], got["state"]) == (own + 16 * 49 + 16, 2 * 4 * 16 + 2 * v)
    assert got["macs"] == shared + T * 16 * v * 49
    del values["m"]
    got = table.evaluate(**values)
    assert (got["params"], got["macs"]) == (own + 15 * 11 * 16, shared + T * T * 16 * v)


REFUSED = [
    ("input(16x64) > lambdalayer(->64, heads=4, head_dim=16, r=9)", "acts on the positions of a map"),
    ("input(8x8x64) > lambdalayer(->64, head_dim=16, r=9)", "needs heads="),
    ("input(8x8x64) > lambdalayer(->64, heads=4, r=9)", "needs head_dim="),
    ("input(8x8x64) > lambdalayer(->64, heads=4, head_dim=16)", "say which"),
    ("input(8x8x64) > lambdalayer(->64, heads=4, head_dim=16, r=9, relpos)", "not both"),
    ("input(8x8x64) > lambdalayer(->64, heads=3, head_dim=16, r=9)", "heads=3 does not divide the 64 output"),
    ("input(8x8x64) > lambdalayer(->64, heads=4, head_dim=16, r=4)", "r=4 is even"),
]


@pytest.mark.parametrize("text, message", REFUSED)
def test_refused(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()


def test_explain():
    text = " ".join(run("explain", "input(16x16x64) > lambdalayer(->64, heads=4, head_dim=16, r=9)").stdout.split())
    assert "a 3-D convolution of the values over a 9x9 neighbourhood with 16 filters: 1,312 parameters" in text
    text = " ".join(run("explain", "input(8x8x64) > lambdalayer(->64, heads=4, head_dim=16, relpos)").stdout.split())
    assert "a table of 225 relative offsets x 16" in text


# ---- the import: timm's LambdaLayer whole, in its block ---------------------------------------------------------


@pytest.mark.parametrize("d, H, W, h, k, r, stride, bias", CASES)
def test_imports_whole(d, H, W, h, k, r, stride, bias):
    with torch.device("meta"):
        module = nn.Sequential(timm_lambda(d, H, W, h, k, r, stride, bias)).eval()
    text, numbers = ours(module, (H, W, d))
    assert "".join(text.split("\n")[1:]).strip().removeprefix("> ") in program(d, H, W, h, k, r, stride, bias), text
    truth = torch_truth(module, (H, W, d))
    assert {key: numbers[key] for key in ("params", "state", "macs")} == {
        key: truth[key] for key in ("params", "state", "macs")
    }


def test_self_attention_block_imports():
    from timm.models.byobnet import LayerFn, SelfAttnBlock

    with torch.device("meta"):
        layers = LayerFn()
        layers.self_attn = lambda dim, stride=1, feat_size=None, **dd: LambdaLayer(
            dim, feat_size=feat_size, stride=stride, r=None, **dd
        )
        block = SelfAttnBlock(128, 256, stride=2, bottle_ratio=0.25, layers=layers, feat_size=(8, 8)).eval()
    text, numbers = ours(block, (8, 8, 128))
    assert "lambdalayer(->64, heads=4, head_dim=16, relpos) > avgpool2x2" in text, text
    truth = torch_truth(block, (8, 8, 128))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}


# ---- the export ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d, H, W, h, k, r, bias", [(32, 6, 5, 2, 8, 3, False), (16, 4, 6, 2, 4, None, True)])
def test_export_computes_timms_layer(d, H, W, h, k, r, bias):
    net = paramsym.parse(program(d, H, W, h, k, r, 1, bias))
    whole = paramsym.to_torch(net).eval()
    (ours_module,) = [m for m in whole.modules() if isinstance(m, LambdaNetLayer)]
    theirs = timm_lambda(d, H, W, h, k, r, 1, bias).eval()
    theirs.load_state_dict(ours_module.state_dict())
    x = torch.randn(2, d, H, W)
    with torch.no_grad():
        torch.testing.assert_close(ours_module(x), theirs(x))
    truth = torch_truth(whole, (H, W, d))
    values = net.evaluate()
    assert (truth["params"], truth["state"], truth["macs"]) == (values["params"], values["state"], values["macs"])
    back = paramsym.from_torch(whole, (H, W, d))
    assert f"lambdalayer(->{d}, heads={h}, head_dim={k}" in back, back
