"""`cga(heads=h, key_dim=k, value_dim=v, window=w, kernels=...)`: EfficientViT's cascaded group attention in
windows (a paramsym extension, docs/language.md "Cascaded group attention"), checked against timm's
LocalWindowAttention at several sizes (params, BatchNorm state, output shape, MACs by FlopCounterMode on meta
tensors), the export (torch_modules.CascadedWindowAttention) computing what timm computes, and imported back."""

from __future__ import annotations

import pytest
import torch
from timm.models.efficientvit_msra import EfficientVitBlock, LocalWindowAttention
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import CascadedWindowAttention


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
    *spatial, channels = (int(n) for n in net.output_shape.dims())
    return values["params"], values["state"], values["macs"], [channels, *spatial]


# (H, W, d, heads, key_dim, value_dim, window, kernels): windows that divide the map, one window, a padded map,
# and a map built smaller than the window (timm's window is then the map's size)
CASES = [
    (14, 14, 128, 4, 16, 32, 7, (7, 5, 3, 3)),
    (7, 7, 192, 3, 16, 64, 7, (7, 5, 3)),
    (4, 4, 224, 2, 16, 112, 7, (7, 5)),
    (6, 6, 20, 1, 4, 12, 3, (5,)),
    (10, 12, 32, 2, 8, 16, 4, (3, 5)),
    (9, 9, 24, 3, 4, 8, 5, (1, 3, 5)),
]


def program(H, W, d, heads, k, v, w, kernels) -> str:
    window = min(w, H)  # LocalWindowAttention's window is at most the map it is built for
    pad = ", pad" if H % window or W % window else ""
    return (
        f"input({H}x{W}x{d}) > cga(heads={heads}, key_dim={k}, value_dim={v}, window={window}, "
        f"kernels={'x'.join(map(str, kernels))}{pad})"
    )


@pytest.mark.parametrize("H, W, d, heads, k, v, w, kernels", CASES)
def test_counts_as_timms_local_window_attention(H, W, d, heads, k, v, w, kernels):
    def build():
        return LocalWindowAttention(d, k, heads, v // k, resolution=H, window_resolution=w, kernels=list(kernels))

    assert counted(program(H, W, d, heads, k, v, w, kernels)) == measured(build, (d, H, W))


@pytest.mark.parametrize("H, W, d, heads, k, v, w, kernels", CASES)
def test_imports_timms_block(H, W, d, heads, k, v, w, kernels):
    """EfficientViT's block: depthwise ConvNorm, ConvMlp, the window attention, again, each residual."""

    def build():
        return nn.Sequential(EfficientVitBlock(d, k, heads, v // k, H, w, list(kernels)))

    with torch.device("meta"):
        text = paramsym.from_torch(build(), (H, W, d))
    assert program(H, W, d, heads, k, v, w, kernels).split(" > ", 1)[1] in text, text
    assert counted(text) == measured(build, (d, H, W))


@pytest.mark.parametrize("H, W, d, heads, k, v, w, kernels", CASES[3:] + CASES[:1])
def test_export_computes_timms(H, W, d, heads, k, v, w, kernels):
    network = paramsym.parse(program(H, W, d, heads, k, v, w, kernels))
    whole = paramsym.to_torch(network).eval()
    (ours,) = [m for m in whole.modules() if isinstance(m, CascadedWindowAttention)]
    theirs = LocalWindowAttention(d, k, heads, v // k, resolution=H, window_resolution=w, kernels=list(kernels))
    theirs.eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        for name, b in theirs.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand_like(b) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.1)
    ours.load_state_dict({name.removeprefix("attn."): t for name, t in theirs.state_dict().items()})
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
    net = paramsym.parse("input(H x W x d) > cga(heads=2, key_dim=k, value_dim=v, window=w, kernels=3x5)")
    got = net.evaluate(H=14, W=14, d=64, k=16, v=32, w=7)
    m = 2 * 16 + 32
    assert got["params"] == 2 * (32 * m + 2 * m + 2 * 16) + 16 * (9 + 25) + 2 * 49 + 2 * 32 * 64 + 2 * 64
    assert got["state"] == 2 * (2 * m + 2 * 16) + 2 * 64
    assert got["macs"] == 196 * (64 * m + 16 * 34 + 2 * 49 * (16 + 32) + 2 * 32 * 64)


@pytest.mark.parametrize(
    "text, message",
    [
        ("input(8x8x12) > cga(heads=2, key_dim=4, value_dim=6, window=4, kernels=3x4)", "odd whole numbers"),
        ("input(8x8x12) > cga(heads=2, key_dim=4, value_dim=6, window=4, kernels=3)", "gives 1 sizes for 2 heads"),
        ("input(8x8x12) > cga(heads=5, key_dim=4, value_dim=8, window=4, kernels=3x3x3x3x3)", "does not divide"),
        ("input(10x8x12) > cga(heads=2, key_dim=4, value_dim=6, window=4, kernels=3x3)", "window=4 does not divide"),
        ("input(8x12) > cga(heads=2, key_dim=4, value_dim=8, window=4, kernels=3x3)", "windows of a map"),
        ("input(8x8x12) > cga(heads=2, value_dim=8, window=4, kernels=3x3)", "cga needs key_dim="),
        ("input(8x8x12) > cga(heads=2, key_dim=4, value_dim=8, window=4, kernels=3x3)", "value_dim must be 6"),
    ],
)
def test_refusals(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()
