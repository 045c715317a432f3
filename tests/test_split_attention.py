"""timm's SplitAttn (ResNeSt) imported as the `sk(...)` it computes: its grouped convolution as one path per radix
group, each on its slice of the input channels. Compared with the module at several sizes: params, state, output
shape, MACs (FlopCounterMode), the values of the export with the module's weights, and resnest14d."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import paramsym
from helpers.imported import ours, torch_truth

timm = pytest.importorskip("timm")
from timm.layers.split_attn import SplitAttn  # noqa: E402

CASES = [
    # (input shape, SplitAttn's arguments)
    ((8, 8, 16), dict(in_channels=16, out_channels=16, radix=2)),
    ((7, 5, 12), dict(in_channels=12, out_channels=24, radix=3, stride=2)),
    ((6, 6, 32), dict(in_channels=32, out_channels=8, radix=4, kernel_size=1)),
    ((9, 9, 8), dict(in_channels=8, out_channels=16, radix=2, dilation=2, padding=2, rd_channels=4)),
]


def _model(options: dict) -> nn.Module:
    return nn.Sequential(SplitAttn(**options, norm_layer=nn.BatchNorm2d))


@pytest.mark.parametrize("shape, options", CASES)
def test_split_attention_imports_as_sk_with_the_module_counts(shape, options):
    model = _model(options)
    text, counted = ours(model, shape)
    truth = torch_truth(model, shape)
    radix = options["radix"]
    assert text.count("| slice(") == radix - 1 and "sk(slice(0, " in text
    assert (counted["params"], counted["state"], counted["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counted["out"] == (*truth["out"][1:], truth["out"][0])


@pytest.mark.parametrize("shape, options", CASES)
def test_the_export_computes_the_module(shape, options):
    model = _model(options).eval()
    split = model[0]
    with torch.no_grad():
        for p in split.parameters():
            p.copy_(torch.randn_like(p))
        for norm in (split.bn0, split.bn1):
            norm.running_mean.copy_(torch.randn_like(norm.running_mean))
            norm.running_var.copy_(torch.rand_like(norm.running_var) + 0.5)
    exported = paramsym.to_torch(paramsym.parse(paramsym.from_torch(model, shape))).eval()
    sk = exported[0]
    radix, out = split.radix, split.conv.out_channels // split.radix
    with torch.no_grad():
        for i, path in enumerate(sk.paths):
            part = slice(i * out, (i + 1) * out)
            path[1].weight.copy_(split.conv.weight[part])
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(path[2], name).copy_(getattr(split.bn0, name)[part])
        attention = sk.attention
        attention[1].weight.copy_(split.fc1.weight.flatten(1))
        attention[1].bias.copy_(split.fc1.bias)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(attention[2], name).copy_(getattr(split.bn1, name))
        attention[4].weight.copy_(split.fc2.weight.flatten(1))
        attention[4].bias.copy_(split.fc2.bias)
        x = torch.randn(2, shape[2], shape[0], shape[1])
        assert torch.allclose(exported(x), model(x), atol=1e-4)
    assert radix == len(sk.paths)


def test_a_cardinality_is_refused():
    model = _model(dict(in_channels=16, out_channels=16, radix=2, groups=2))
    with pytest.raises(paramsym.ParamsymError, match="cardinality 2"):
        paramsym.from_torch(model, (8, 8, 16))


def test_radix_1_is_refused():
    model = _model(dict(in_channels=16, out_channels=16, radix=1))
    with pytest.raises(paramsym.ParamsymError, match="radix 1"):
        paramsym.from_torch(model, (8, 8, 16))


def test_resnest14d_imports_exactly():
    with torch.device("meta"):
        model = timm.create_model("resnest14d", pretrained=False)
    text, counted = ours(model, (224, 224, 3))
    truth = torch_truth(model, (224, 224, 3))
    assert "sk(slice(0, " in text
    assert (counted["params"], counted["state"], counted["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counted["out"] == truth["out"]
