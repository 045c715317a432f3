"""`litemla(heads=h, head_dim=e, ->o, scales=..., qkv_bn, bn, bias)`: EfficientViT's multi-scale linear attention
(a paramsym extension, docs/language.md "Multi-scale linear attention"), checked against timm's
efficientvit_mit.LiteMLA at several sizes, with and without its BatchNorms, activations-free, with biases or not
(params, BatchNorm state, output shape, MACs by FlopCounterMode on meta tensors), imported whole, and the export
(torch_modules.MultiScaleLinearAttention) computing what timm computes."""

from __future__ import annotations

import pytest
import torch
from timm.models import efficientvit_mit
from timm.models.efficientvit_mit import LiteMLA
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.round_trip import import_back
from paramsym.errors import ImportRefused
from paramsym.frameworks.torch_modules import MultiScaleLinearAttention

BN = nn.BatchNorm2d


def state(module: nn.Module) -> int:
    return sum(b.numel() for n, b in module.named_buffers() if n.rsplit(".", 1)[-1] in ("running_mean", "running_var"))


def measured(build, shape: tuple) -> tuple[int, int, int, list]:
    with torch.device("meta"):
        module = build()
    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(torch.zeros(1, *shape, device="meta"))
    return torch_params(module), state(module), counter.get_total_flops() // 2, list(y.shape[1:])


def counted(program: str) -> tuple[int, int, int, list]:
    net = paramsym.parse(program)
    values = net.evaluate()
    dims = [int(n) for n in net.output_shape.dims()]
    return values["params"], values["state"], values["macs"], [dims[-1], *dims[:-1]]


# (H, W, d, o, heads, head_dim, scales, norms (qkv, proj), bias)
CASES = [
    (14, 14, 64, 64, 2, 32, (5,), (None, BN), False),  # efficientvit_b0's
    (7, 5, 16, 24, 2, 8, (3, 5), (BN, None), False),
    (4, 9, 32, 32, 4, 8, (5,), (BN, BN), False),
    (3, 3, 12, 20, 3, 4, (1,), (None, None), False),
    (6, 3, 12, 20, 3, 4, (3, 5, 7), (None, BN), True),
]


def litemla_text(d, o, h, e, scales, norms, bias) -> str:
    parts = [f"->{o}"] * (o != d) + [f"heads={h}", f"head_dim={e}"]
    parts += [f"scales={'x'.join(map(str, scales))}"] * (scales != (5,))
    parts += ["qkv_bn"] * (norms[0] is not None) + ["bn"] * (norms[1] is not None) + ["bias"] * bias
    return f"litemla({', '.join(parts)})"


class Holder(nn.Module):
    """The module inside a model (the importer reads the modules a model holds, not the model itself whole)."""

    def __init__(self, attention: nn.Module):
        super().__init__()
        self.attention = attention

    def forward(self, x):
        return self.attention(x)


def builder(d, o, h, e, scales, norms, bias):
    return lambda: LiteMLA(d, o, heads=h, dim=e, scales=scales, norm_layer=norms, use_bias=bias)


@pytest.mark.parametrize("H, W, d, o, h, e, scales, norms, bias", CASES)
def test_counts_as_timms_litemla(H, W, d, o, h, e, scales, norms, bias):
    text = f"input({H}x{W}x{d}) > {litemla_text(d, o, h, e, scales, norms, bias)}"
    assert counted(text) == measured(builder(d, o, h, e, scales, norms, bias), (d, H, W))


@pytest.mark.parametrize("H, W, d, o, h, e, scales, norms, bias", CASES)
def test_imports_timms_litemla(H, W, d, o, h, e, scales, norms, bias):
    build = builder(d, o, h, e, scales, norms, bias)
    with torch.device("meta"):
        text = paramsym.from_torch(Holder(build()), (H, W, d))
    assert litemla_text(d, o, h, e, scales, norms, bias) in " ".join(text.split()).replace("( ", "("), text
    assert counted(text) == measured(build, (d, H, W))


@pytest.mark.parametrize(
    "build, says",
    [
        (lambda: LiteMLA(16, 16, heads=2, dim=8, act_layer=(nn.ReLU, None)), "no activation"),
        (lambda: LiteMLA(16, 16, heads=2, dim=8, use_bias=(True, False)), "biases on all convolutions or none"),
        (lambda: LiteMLA(16, 16, heads=2, dim=8, kernel_func=nn.Hardswish), "ReLU as the kernel"),
        (lambda: LiteMLA(16, 16, heads=2, dim=8, norm_layer=(None, nn.InstanceNorm2d)), "BatchNorm2d or none"),
        (lambda: LiteMLA(16, 16, heads=2, dim=8, scales=()), "at least one scale"),
    ],
)
def test_what_litemla_does_not_write_is_refused_by_name(build, says):
    with torch.device("meta"):
        module = build()
    with pytest.raises(ImportRefused, match="LiteMLA") as refused:
        paramsym.from_torch(Holder(module), (5, 5, 16))
    assert says in str(refused.value)


def _randomise(module: nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        for name, b in module.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand_like(b) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.1)


@pytest.mark.parametrize("H, W, d, o, h, e, scales, norms, bias", CASES[1:])
def test_export_computes_timms_litemla(H, W, d, o, h, e, scales, norms, bias):
    network = paramsym.parse(f"input({H}x{W}x{d}) > {litemla_text(d, o, h, e, scales, norms, bias)}")
    whole = paramsym.to_torch(network).eval()
    (ours,) = [m for m in whole.modules() if isinstance(m, MultiScaleLinearAttention)]
    theirs = builder(d, o, h, e, scales, norms, bias)().eval()
    _randomise(theirs)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, d, H, W)
    with torch.no_grad():
        assert torch.allclose(whole(x), theirs(x), atol=1e-4)
    values = network.evaluate()
    assert torch_params(whole) == values["params"] and state(whole) == values["state"]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        whole(torch.zeros(1, d, H, W))
    assert counter.get_total_flops() // 2 == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


def test_formula():
    net = paramsym.parse("input(H x W x d) > litemla(->o, heads=h, head_dim=e, scales=3x5, qkv_bn, bn)")
    got = net.evaluate(H=7, W=5, d=16, o=24, h=2, e=8)
    T, N = 16, 35
    assert got["params"] == 3 * T * 16 + 3 * T * (9 + 8) + 3 * T * (25 + 8) + 3 * T * 24 + 6 * T + 2 * 24
    assert got["state"] == 6 * T + 2 * 24
    assert got["macs"] == N * (3 * T * 16 + 3 * T * (9 + 8 + 25 + 8) + 3 * T * 24) + 2 * N * 3 * 2 * 8 * 9


@pytest.mark.parametrize(
    "text, message",
    [
        ("input(16x8) > litemla(heads=2, head_dim=4)", "attends over the positions of a map"),
        ("input(8) > litemla(heads=2, head_dim=4)", "but its input is a vector"),
        ("input(4x4x8) > litemla(head_dim=4)", "needs heads="),
        ("input(4x4x8) > litemla(heads=2)", "needs head_dim="),
        ("input(4x4x8) > litemla(heads=2, head_dim=4, scales=4)", "odd kernel sizes"),
        ("input(4x4x8) > litemla(heads=2, head_dim=4, scales=3x0)", "positive whole number"),
        ("input(4x4x8) > litemla(heads=0, head_dim=4)", "heads must be"),
        ("input(4x4x8) > litemla(heads=2, head_dim=4, ln)", "ln"),
    ],
)
def test_refusals(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()


def test_small_efficientvit_imports_exactly():
    """A whole small EfficientViT (B family): its LiteMLA blocks read as litemla, the import checks params, state,
    output shape and MACs against FlopCounterMode, and refuses otherwise."""

    def build():
        return efficientvit_mit.EfficientVit(
            widths=(8, 16, 24, 32, 48), depths=(1, 1, 1, 1, 1), head_dim=16, head_widths=(64, 80), num_classes=10
        )

    with torch.device("meta"):
        model = build().eval()
        text = paramsym.from_torch(model, (64, 64, 3))
    assert "litemla(" in text
    net = paramsym.parse(text)
    values = net.evaluate()
    params, _, macs, _ = measured(build, (3, 64, 64))
    assert (values["params"], values["macs"]) == (params, macs)
