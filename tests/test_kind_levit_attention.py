"""`levitattn(heads=h, key_dim=k, value_dim=v, ->o, map=HxW, stride=s, bn|bias, act=...)`: LeViT's and
EfficientFormer's attention with a bias per head for each offset on the whole map (a paramsym extension,
docs/language.md "LeViT attention"), checked against timm's levit.Attention, levit.AttentionDownsample and
efficientformer.Attention at several sizes (params, BatchNorm state, output shape, MACs by FlopCounterMode on meta
tensors), imported whole, and the export (torch_modules.OffsetBiasAttention) computing what timm computes."""

from __future__ import annotations

import pytest
import torch
from timm.models import efficientformer, levit
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import OffsetBiasAttention


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
    return values["params"], values["state"], values["macs"], [*spatial, channels]


# (H, W, d, heads, key_dim, attn_ratio)
LEVIT = [(14, 14, 128, 4, 16, 2), (7, 7, 384, 6, 32, 2), (4, 4, 256, 4, 16, 4), (3, 5, 24, 2, 4, 1.5)]
# (H, W, d, o, heads, key_dim, attn_ratio, stride)
DOWN = [
    (14, 14, 128, 256, 8, 16, 4, 2),
    (7, 7, 256, 384, 16, 16, 4, 2),
    (5, 7, 24, 32, 3, 4, 2, 2),
    (9, 9, 8, 8, 2, 4, 1, 3),
]
# (side, d, heads, key_dim, attn_ratio)
FORMER = [(7, 448, 8, 32, 4), (4, 64, 2, 16, 2), (3, 12, 3, 4, 1)]


def levit_text(H, W, d, h, k, r, o=None, s=1) -> str:
    out = f"->{o}, " if o is not None and o != d else ""
    stride = f", stride={s}" if s != 1 else ""
    return f"levitattn({out}heads={h}, key_dim={k}, value_dim={int(r * k)}, map={H}x{W}{stride}, bn, act=hardswish)"


@pytest.mark.parametrize("H, W, d, h, k, r", LEVIT)
def test_counts_as_timms_levit_attention(H, W, d, h, k, r):
    def build():
        return levit.Attention(d, k, h, r, resolution=(H, W), act_layer=nn.Hardswish)

    assert counted(f"input({H * W}x{d}) > {levit_text(H, W, d, h, k, r)}") == measured(build, (H * W, d))


@pytest.mark.parametrize("H, W, d, o, h, k, r, s", DOWN)
def test_counts_as_timms_levit_attention_downsample(H, W, d, o, h, k, r, s):
    def build():
        return levit.AttentionDownsample(d, o, k, h, r, stride=s, resolution=(H, W), act_layer=nn.Hardswish)

    assert counted(f"input({H * W}x{d}) > {levit_text(H, W, d, h, k, r, o, s)}") == measured(build, (H * W, d))


@pytest.mark.parametrize("side, d, h, k, r", FORMER)
def test_counts_as_timms_efficientformer_attention(side, d, h, k, r):
    def build():
        return efficientformer.Attention(d, k, h, r, resolution=side)

    T = side * side
    text = f"input({T}x{d}) > levitattn(heads={h}, key_dim={k}, value_dim={int(r * k)}, map={side}x{side}, bias)"
    assert counted(text) == measured(build, (T, d))


class OnSequence(nn.Module):
    """The attention on a sequence (N, T, C), given channels first (N, C, T) as the importer gives an input."""

    def __init__(self, attention: nn.Module):
        super().__init__()
        self.attention = attention

    def forward(self, x):
        return self.attention(x.transpose(1, 2))


def _imports(build, shape, expected):
    with torch.device("meta"):
        text = paramsym.from_torch(OnSequence(build()), shape)
    assert expected in " ".join(text.split()).replace("( ", "("), text
    return text


@pytest.mark.parametrize("H, W, d, h, k, r", LEVIT)
def test_imports_timms_levit_attention(H, W, d, h, k, r):
    def build():
        return levit.Attention(d, k, h, r, resolution=(H, W), act_layer=nn.Hardswish)

    text = _imports(build, (H * W, d), levit_text(H, W, d, h, k, r))
    assert counted(text) == measured(build, (H * W, d))


@pytest.mark.parametrize("H, W, d, o, h, k, r, s", DOWN)
def test_imports_timms_levit_attention_downsample(H, W, d, o, h, k, r, s):
    def build():
        return levit.AttentionDownsample(d, o, k, h, r, stride=s, resolution=(H, W), act_layer=nn.Hardswish)

    text = _imports(build, (H * W, d), levit_text(H, W, d, h, k, r, o, s))
    assert counted(text) == measured(build, (H * W, d))


@pytest.mark.parametrize("side, d, h, k, r", FORMER)
def test_imports_timms_efficientformer_attention(side, d, h, k, r):
    def build():
        return efficientformer.Attention(d, k, h, r, resolution=side)

    T = side * side
    expected = f"levitattn(heads={h}, key_dim={k}, value_dim={int(r * k)}, map={side}x{side}, bias)"
    text = _imports(build, (T, d), expected)
    assert counted(text) == measured(build, (T, d))


def _randomise(module: nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        for name, b in module.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand_like(b) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.1)


def _export_matches(program: str, theirs: nn.Module, shape: tuple) -> None:
    network = paramsym.parse(program)
    whole = paramsym.to_torch(network).eval()
    (ours,) = [m for m in whole.modules() if isinstance(m, OffsetBiasAttention)]
    _randomise(theirs)
    theirs.eval()
    weights = {n: t for n, t in theirs.state_dict().items() if not n.endswith("attention_bias_idxs")}
    ours.load_state_dict(weights)
    x = torch.randn(2, *shape)  # (N, T, C) for timm; paramsym's export takes channels first
    with torch.no_grad():
        assert torch.allclose(whole(x.transpose(1, 2)).transpose(1, 2), theirs(x), atol=1e-4)
    values = network.evaluate()
    assert torch_params(whole) == values["params"] and state(whole) == values["state"]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        whole(torch.zeros(1, *shape).transpose(1, 2))
    assert counter.get_total_flops() // 2 == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


@pytest.mark.parametrize("H, W, d, h, k, r", LEVIT[2:])
def test_export_computes_timms_levit_attention(H, W, d, h, k, r):
    theirs = levit.Attention(d, k, h, r, resolution=(H, W), act_layer=nn.Hardswish)
    _export_matches(f"input({H * W}x{d}) > {levit_text(H, W, d, h, k, r)}", theirs, (H * W, d))


@pytest.mark.parametrize("H, W, d, o, h, k, r, s", DOWN[2:])
def test_export_computes_timms_levit_attention_downsample(H, W, d, o, h, k, r, s):
    theirs = levit.AttentionDownsample(d, o, k, h, r, stride=s, resolution=(H, W), act_layer=nn.Hardswish)
    _export_matches(f"input({H * W}x{d}) > {levit_text(H, W, d, h, k, r, o, s)}", theirs, (H * W, d))


@pytest.mark.parametrize("side, d, h, k, r", FORMER[1:])
def test_export_computes_timms_efficientformer_attention(side, d, h, k, r):
    theirs = efficientformer.Attention(d, k, h, r, resolution=side)
    T = side * side
    text = f"input({T}x{d}) > levitattn(heads={h}, key_dim={k}, value_dim={int(r * k)}, map={side}x{side}, bias)"
    _export_matches(text, theirs, (T, d))


def test_on_a_map_counts_as_on_its_sequence():
    on_map = paramsym.parse("input(7x5x16) > levitattn(heads=2, key_dim=4, value_dim=8, ->24, stride=2, bn)")
    on_seq = paramsym.parse("input(35x16) > levitattn(heads=2, key_dim=4, value_dim=8, ->24, map=7x5, stride=2, bn)")
    assert on_map.evaluate() == on_seq.evaluate()
    assert [int(n) for n in on_map.output_shape.dims()] == [4, 3, 24]
    whole = paramsym.to_torch(on_map).eval()
    with torch.no_grad():
        assert tuple(whole(torch.randn(2, 16, 7, 5)).shape) == (2, 24, 4, 3)
    text, back = import_back(on_map)
    assert back.evaluate() == on_map.evaluate() and "map=" not in text, text


def test_formula():
    net = paramsym.parse("input(T x d) > levitattn(heads=h, key_dim=k, value_dim=v, ->o, map=H x W, stride=2, bn)")
    got = net.evaluate(T=35, d=16, h=2, k=4, v=8, o=24, H=7, W=5)
    K, V, Tq = 8, 16, 4 * 3
    assert got["params"] == 16 * (2 * K + V) + V * 24 + 2 * 35 + 2 * (2 * K + V) + 2 * 24
    assert got["state"] == 2 * (2 * K + V) + 2 * 24
    assert got["macs"] == 35 * 16 * (K + V) + Tq * 16 * K + Tq * 35 * (K + V) + Tq * V * 24


@pytest.mark.parametrize(
    "text, message",
    [
        ("input(16x8) > levitattn(heads=2, key_dim=4, value_dim=8)", "needs the map it lays out"),
        ("input(16x8) > levitattn(heads=2, key_dim=4, value_dim=8, map=3x5)", "has 15 positions"),
        ("input(4x4x8) > levitattn(heads=2, key_dim=4, value_dim=8, map=4x4)", "is a map already"),
        ("input(16x8) > levitattn(heads=2, value_dim=8, map=4x4)", "needs key_dim="),
        ("input(16x8) > levitattn(heads=2, key_dim=4, value_dim=8, map=4x4, bn, bias)", "give one"),
        ("input(16x8) > levitattn(heads=2, key_dim=4, value_dim=8, map=4x4, act=swish2)", "act= takes one of"),
        ("input(16x8) > levitattn(heads=2, key_dim=4, value_dim=8, map=4x4, stride=5)", "larger than the map"),
        ("input(8) > levitattn(heads=2, key_dim=4, value_dim=8, map=4x4)", "but its input is a vector"),
    ],
)
def test_refusals(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()


def _levit():
    return levit.Levit(img_size=64, num_classes=10, embed_dim=(32, 48), key_dim=8, depth=(1, 1), num_heads=(2, 3))


def _efficientformer():
    return efficientformer.EfficientFormer(depths=(1, 1, 1, 2), embed_dims=(16, 24, 32, 48), num_vit=1, num_classes=10)


@pytest.mark.parametrize("build, side", [(_levit, 64), (_efficientformer, 224)])
def test_small_models_import_exactly(build, side):
    """A whole small LeViT (its LinearNorms read as dense > bn, AttentionDownsample between the stages) and
    EfficientFormer (its last stage's Attention): the import checks params, state, output shape and MACs against
    FlopCounterMode, and refuses otherwise."""
    with torch.device("meta"):
        model = build().eval()
        text = paramsym.from_torch(model, (side, side, 3))
    assert "levitattn(" in text
    assert counted(text)[:3] == measured(build, (3, side, side))[:3]
