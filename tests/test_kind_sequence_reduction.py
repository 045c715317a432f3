"""`attn(heads=h, sr=R, map=HxW)`: spatial-reduction attention on a sequence of T = H·W positions that lays out an
H x W map row by row (a paramsym extension, docs/language.md "Attention"). Twins PCPVT's GlobalSubSampleAttn
reads the sequence (B, T, C) and the map's size: queries from every position, keys and values from the map
reduced by Conv2d(d, d, R, stride R, bias) > LayerNorm, ⌊H/R⌋·⌊W/R⌋ positions. Checked against timm's module and
timm's Twins model at several sizes: params, state, output shape and MACs (FlopCounterMode on meta tensors); the
traced import reads them; the export computes what timm's module computes and imports back."""

from __future__ import annotations

import pytest
import torch
from timm.models.pvt_v2 import Attention as PvtAttention
from timm.models.twins import GlobalSubSampleAttn, Twins
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.cli_helpers import run
from helpers.imported import ours, torch_truth


def measured(module: nn.Module, H: int, W: int, d: int) -> dict:
    """timm's attention on a sequence (1, H·W, d) with the map's size (H, W), on meta."""
    with torch.device("meta"):
        x = torch.zeros(1, H * W, d)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module.to("meta").eval()(x, (H, W))
    params = sum(p.numel() for p in module.parameters())
    return {"params": params, "state": 0, "macs": counter.get_total_flops() // 2, "out": tuple(y.shape[1:])}


def counted(program: str) -> dict:
    net = paramsym.parse(program)
    values = net.evaluate()
    dims = tuple(int(net.value(n)) for n in net.output_shape.dims())
    return {"params": values["params"], "state": values["state"], "macs": values["macs"], "out": dims}


# (H, W, d, heads, R): a square map, a map R does not divide (the convolution drops the rest), a tall one, one key
SIZES = [(56, 56, 64, 1, 8), (28, 20, 128, 2, 4), (15, 9, 48, 3, 2), (7, 6, 32, 2, 6)]


@pytest.mark.parametrize("H, W, d, h, R", SIZES)
def test_counts_as_twins(H, W, d, h, R):
    want = measured(GlobalSubSampleAttn(d, h, sr_ratio=R), H, W, d)
    got = counted(f"input({H * W}x{d}) > attn(heads={h}, sr={R}, map={H}x{W}, bias)")
    assert got == want
    S = (H // R) * (W // R)
    assert got["params"] == 4 * d * d + 4 * d + R * R * d * d + 3 * d
    assert got["macs"] == 2 * H * W * d * d + 2 * S * d * d + 2 * H * W * S * d + S * R * R * d * d


def test_counts_as_on_the_map():
    """The sequence that lays out a map counts as the attention on the map itself."""
    on_sequence = paramsym.parse("input(H*W x d) > attn(heads=h, sr=R, map=H x W, bias)")
    on_map = paramsym.parse("input(H x W x d) > attn(heads=h, sr=R, bias)")
    assert on_sequence.params == on_map.params and on_sequence.macs == on_map.macs
    values = {"H": 28, "W": 20, "d": 64, "h": 2, "R": 4}
    assert on_sequence.evaluate(**values) == on_map.evaluate(**values)


REFUSED = [
    (
        "input(64x32) > attn(heads=2, map=8x8)",
        "a position-bias MLP over the whole map (pos_mlp=m): it needs one of them",
    ),
    ("input(8x8x32) > attn(heads=2, sr=2, map=8x8)", "the input has 2 spatial axes"),
    ("input(64x32) > attn(heads=2, sr=2, map=8x8x1)", "takes the map's two sides"),
    ("input(64x32) > attn(heads=2, sr=2, map=8x4)", "has 32 positions, but the sequence has 64"),
    ("input(32x32) > attn(heads=2, sr=6, map=4x8)", "larger than the map's side 4"),
    ("input(64x32) > attn(heads=2, sr=2, map=0x8)", "positive whole numbers"),
    ("input(64x32) > attn(heads=2, sr=2)", r"sr=R, map=HxW"),  # the hint says how to reduce a sequence
]


@pytest.mark.parametrize("program, message", REFUSED)
def test_refused(program, message):
    with pytest.raises(paramsym.ParamsymError) as error:
        paramsym.parse(program).evaluate()
    assert message in str(error.value) + str(getattr(error.value, "hint", "")), str(error.value)


def test_explain_says_the_map():
    text = " ".join(run("explain", "input(3136x64) > attn(heads=1, sr=8, map=56x56, bias)").stdout.split())
    assert "the sequence lays out row by row (56x56)" in text and "49 positions" in text


# ---- the traced import: timm's attention on a sequence, given the map's size -----------------------------------


class OnSequence(nn.Module):
    """timm's attention on a sequence (B, T, C) read from (B, C, T), with the map's size (H, W) it lays out."""

    def __init__(self, attention: nn.Module, H: int, W: int):
        super().__init__()
        self.attention, self.size = attention, (H, W)

    def forward(self, x):
        return self.attention(x.transpose(1, 2), self.size)


@pytest.mark.parametrize("H, W, d, h, R", SIZES)
@pytest.mark.parametrize("cls", [GlobalSubSampleAttn, PvtAttention])
def test_traced_import(H, W, d, h, R, cls):
    with torch.device("meta"):
        module = OnSequence(cls(d, h, sr_ratio=R), H, W).eval()
    program, numbers = ours(module, (H * W, d))
    assert f"attn(heads={h}, sr={R}, map={H}x{W}, bias)" in program, program
    truth = torch_truth(module, (H * W, d))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}
    assert numbers["out"] == (H * W, d)


class ColumnByColumn(nn.Module):
    """Twins' attention, but the sequence laid out as a map column by column: not the language's map=HxW."""

    def __init__(self, d: int):
        super().__init__()
        self.attention = GlobalSubSampleAttn(d, 2, sr_ratio=2)

    def forward(self, x):  # (B, C, T)
        attention, (B, C, T) = self.attention, x.shape
        t = x.transpose(1, 2)
        q = attention.q(t).reshape(B, T, 2, C // 2).transpose(1, 2)
        grid = t.transpose(1, 2).reshape(B, C, 8, 4).transpose(2, 3)  # positions column by column
        s = attention.norm(attention.sr(grid).reshape(B, C, -1).transpose(1, 2))
        k, v = attention.kv(s).reshape(B, -1, 2, 2, C // 2).permute(2, 0, 3, 1, 4).unbind(0)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return attention.proj(y.transpose(1, 2).reshape(B, T, C))


def test_a_map_laid_out_otherwise_is_refused():
    with torch.device("meta"):
        module = ColumnByColumn(16).eval()
    with pytest.raises(paramsym.ParamsymError, match="that is not the input's map"):
        paramsym.from_torch(module, (32, 16))


# ---- timm's Twins PCPVT, small ---------------------------------------------------------------------------------

TWINS = [
    # (image side, embed_dims, heads, depths, sr_ratios)
    (64, (16, 32), (1, 2), (2, 1), (4, 2)),
    (96, (16, 32, 48, 64), (1, 2, 3, 4), (1, 2, 1, 1), (8, 4, 2, 1)),
    (80, (24, 48, 72), (2, 2, 3), (1, 1, 2), (3, 2, 1)),
]


@pytest.mark.parametrize("side, dims, heads, depths, srs", TWINS)
def test_twins_pcpvt_imports(side, dims, heads, depths, srs):
    with torch.device("meta"):
        model = Twins(
            img_size=side, embed_dims=dims, num_heads=heads, depths=depths, sr_ratios=srs, mlp_ratios=(2,) * len(dims)
        ).eval()
    program, numbers = ours(model, (side, side, 3))
    truth = torch_truth(model, (side, side, 3))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}
    assert numbers["out"] == (1000,)
    assert "map=" in program, program


# ---- the export ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("H, W, d, h, R", SIZES[1:])
def test_export_computes_twins_attention_and_imports_back(H, W, d, h, R):
    program = f"input({H * W}x{d}) > attn(heads={h}, sr={R}, map={H}x{W}, bias)"
    net = paramsym.parse(program)
    exported = paramsym.to_torch(net).eval()
    truth = torch_truth(exported, (H * W, d))
    values = net.evaluate()
    assert (truth["params"], truth["state"], truth["macs"]) == (values["params"], values["state"], values["macs"])
    (attention,) = list(exported.children())
    torch.manual_seed(0)
    timm_attention = GlobalSubSampleAttn(d, h, sr_ratio=R).eval()
    with torch.no_grad():  # timm's weights in the exported module: kv is k then v
        attention.q.load_state_dict(timm_attention.q.state_dict())
        attention.k.weight.copy_(timm_attention.kv.weight[:d])
        attention.k.bias.copy_(timm_attention.kv.bias[:d])
        attention.v.weight.copy_(timm_attention.kv.weight[d:])
        attention.v.bias.copy_(timm_attention.kv.bias[d:])
        attention.o.load_state_dict(timm_attention.proj.state_dict())
        attention.reduce.load_state_dict(timm_attention.sr.state_dict())
        attention.reduce_norm.weight.copy_(timm_attention.norm.weight)
        attention.reduce_norm.bias.copy_(timm_attention.norm.bias)
        attention.reduce_norm.eps = timm_attention.norm.eps
        x = torch.randn(2, H * W, d)
        theirs = timm_attention(x, (H, W))
        mine = exported(x.transpose(1, 2)).transpose(1, 2)  # the export takes channels first
    assert torch.allclose(mine, theirs, atol=1e-5)
    back = paramsym.from_torch(exported, (H * W, d))
    assert f"sr={R}" in back and f"map={H}x{W}" in back, back
    assert paramsym.parse(back).evaluate()["params"] == values["params"]
