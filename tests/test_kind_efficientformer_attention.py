"""`ef2attn(heads=h, key_dim=k, value_dim=v[, stride=s])` and `ef2attn(..., ->o, down)`: EfficientFormerV2's
attention (a paramsym extension, docs/language.md "EfficientFormerV2 attention"), checked against timm's
efficientformer_v2.Attention2d and Attention2dDownsample at several sizes (params, BatchNorm state, output shape,
MACs by FlopCounterMode on meta tensors), imported whole, and the export
(torch_modules.EfficientFormerV2Attention) computing what timm computes."""

from __future__ import annotations

import pytest
import torch
from timm.models import efficientformer_v2 as ef2
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import EfficientFormerV2Attention


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


# (H, W, d, heads, key_dim, attn_ratio, stride)
ATTENTION = [(7, 7, 176, 8, 32, 4, 1), (14, 14, 64, 8, 32, 4, 2), (6, 8, 24, 2, 4, 2, 2), (5, 5, 16, 3, 4, 1, 1)]
# (H, W, d, o, heads, key_dim, attn_ratio)
DOWN = [(14, 14, 176, 288, 8, 16, 4), (7, 7, 32, 48, 2, 8, 2), (6, 10, 16, 16, 4, 4, 1)]


def attention_text(h, k, r, s) -> str:
    stride = f", stride={s}" if s != 1 else ""
    return f"ef2attn(heads={h}, key_dim={k}, value_dim={r * k}{stride})"


def down_text(d, o, h, k, r) -> str:
    out = f"->{o}, " if o != d else ""
    return f"ef2attn({out}heads={h}, key_dim={k}, value_dim={r * k}, down)"


def build_attention(H, W, d, h, k, r, s):
    return lambda: ef2.Attention2d(d, k, h, r, resolution=(H, W), stride=s if s != 1 else None)


def build_down(H, W, d, o, h, k, r):
    return lambda: ef2.Attention2dDownsample(d, k, h, r, resolution=(H, W), out_dim=o)


@pytest.mark.parametrize("H, W, d, h, k, r, s", ATTENTION)
def test_counts_as_timms_attention2d(H, W, d, h, k, r, s):
    text = f"input({H}x{W}x{d}) > {attention_text(h, k, r, s)}"
    assert counted(text) == measured(build_attention(H, W, d, h, k, r, s), (d, H, W))


@pytest.mark.parametrize("H, W, d, o, h, k, r", DOWN)
def test_counts_as_timms_attention2d_downsample(H, W, d, o, h, k, r):
    text = f"input({H}x{W}x{d}) > {down_text(d, o, h, k, r)}"
    assert counted(text) == measured(build_down(H, W, d, o, h, k, r), (d, H, W))


def _imported(build, H, W, d) -> str:
    with torch.device("meta"):
        text = paramsym.from_torch(nn.Sequential(build()), (H, W, d))
    return " ".join(text.split()).replace("( ", "(")


@pytest.mark.parametrize("H, W, d, h, k, r, s", ATTENTION)
def test_imports_timms_attention2d(H, W, d, h, k, r, s):
    build = build_attention(H, W, d, h, k, r, s)
    text = _imported(build, H, W, d)
    assert attention_text(h, k, r, s) in text, text
    assert counted(text) == measured(build, (d, H, W))


@pytest.mark.parametrize("H, W, d, o, h, k, r", DOWN)
def test_imports_timms_attention2d_downsample(H, W, d, o, h, k, r):
    build = build_down(H, W, d, o, h, k, r)
    text = _imported(build, H, W, d)
    assert down_text(d, o, h, k, r) in text, text
    assert counted(text) == measured(build, (d, H, W))


def _export_matches(program: str, theirs: nn.Module, shape: tuple) -> None:
    network = paramsym.parse(program)
    whole = paramsym.to_torch(network).eval()
    (ours,) = [m for m in whole.modules() if isinstance(m, EfficientFormerV2Attention)]
    theirs.eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        for name, b in theirs.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand_like(b) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.1)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.allclose(whole(x), theirs(x), atol=1e-4)
    values = network.evaluate()
    assert torch_params(whole) == values["params"] and state(whole) == values["state"]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        whole(torch.zeros(1, *shape))
    assert counter.get_total_flops() // 2 == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


@pytest.mark.parametrize("H, W, d, h, k, r, s", ATTENTION[2:])
def test_export_computes_timms_attention2d(H, W, d, h, k, r, s):
    theirs = build_attention(H, W, d, h, k, r, s)()
    _export_matches(f"input({H}x{W}x{d}) > {attention_text(h, k, r, s)}", theirs, (d, H, W))


@pytest.mark.parametrize("H, W, d, o, h, k, r", DOWN[1:])
def test_export_computes_timms_attention2d_downsample(H, W, d, o, h, k, r):
    theirs = build_down(H, W, d, o, h, k, r)()
    _export_matches(f"input({H}x{W}x{d}) > {down_text(d, o, h, k, r)}", theirs, (d, H, W))


def test_formula():
    net = paramsym.parse("input(H x W x d) > ef2attn(heads=h, key_dim=k, value_dim=v, stride=2)")
    got = net.evaluate(H=8, W=6, d=16, h=2, k=4, v=8)
    K, V, N, d, h = 8, 16, 12, 16, 2
    assert got["params"] == 12 * d + 2 * (d * K + 3 * K) + d * V + 15 * V + 2 * (h * h + h) + V * d + 3 * d + h * N
    assert got["state"] == 2 * d + 4 * K + 4 * V + 2 * d
    assert got["macs"] == 9 * N * d + N * d * (2 * K + V) + 9 * N * V + N * N * (K + V) + 2 * h * h * N * N + 48 * V * d


@pytest.mark.parametrize(
    "text, message",
    [
        ("input(16x8) > ef2attn(heads=2, key_dim=4, value_dim=8)", "but its input is"),
        ("input(8x8x8) > ef2attn(heads=2, value_dim=8)", "needs key_dim="),
        ("input(8x8x8) > ef2attn(->16, heads=2, key_dim=4, value_dim=8)", "->o is for 'down'"),
        ("input(8x8x8) > ef2attn(heads=2, key_dim=4, value_dim=8, stride=2, down)", "stride 2 by itself"),
        ("input(8x8x8) > ef2attn(heads=2, key_dim=4, value_dim=8, stride=9)", "larger than the map"),
    ],
)
def test_refusals(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()


def test_a_small_model_imports_exactly():
    """A whole small EfficientFormerV2 (Attention2d with stride 2 in its third stage, Attention2dDownsample before
    its fourth): the import checks params, state, output shape and MACs against FlopCounterMode."""

    def build():
        return ef2.EfficientFormerV2(
            depths=(1, 1, 2, 2), embed_dims=(16, 24, 32, 48), num_vit=2, num_classes=10, img_size=64
        ).eval()

    with torch.device("meta"):
        text = paramsym.from_torch(build(), (64, 64, 3))
    flat = " ".join(text.split())
    assert "ef2attn(stride=2, heads=8" in flat and "value_dim=64, down)" in flat, text
    assert counted(text)[:3] == measured(build, (3, 64, 64))[:3]
