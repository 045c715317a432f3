"""`attn(heads=h, sr=R)` and `attn(heads=h, srpool=R)`: spatial-reduction attention (a paramsym extension,
docs/language.md "Attention"): queries from every position, keys and values from a reduced copy of the input.
`sr=R` is PVT v2's and Twins' (Conv2d(d, d, R, stride R, bias) > LayerNorm on the map, ⌊H/R⌋·⌊W/R⌋ key
positions), `srpool=R` NextViT's (AvgPool1d(R², stride R²) over the positions > BatchNorm1d, ⌊T/R²⌋ key
positions). Checked against timm's modules (pvt_v2.Attention, twins.GlobalSubSampleAttn,
nextvit.EfficientAttention, nextvit.NextTransformerBlock) at several sizes: params, BatchNorm state, output shape
and MACs (FlopCounterMode on meta tensors: FLOPs / 2); the traced import reads them; the export computes what
it counts and imports back."""

from __future__ import annotations

import pytest
import sympy
import torch
from timm.models.nextvit import EfficientAttention, NextTransformerBlock
from timm.models.pvt_v2 import Attention as PvtAttention
from timm.models.twins import GlobalSubSampleAttn
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.cli_helpers import run
from helpers.imported import ours, torch_truth


def measured(build, tokens: int, d: int, *args) -> dict:
    """A timm attention module on (1, tokens, d), built and run on meta."""
    with torch.device("meta"):
        module = build().eval()
        x = torch.zeros(1, tokens, d)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(x, *args)
    state = sum(b.numel() for n, b in module.named_buffers() if n.endswith(("running_mean", "running_var")))
    params = sum(p.numel() for p in module.parameters())
    return {"params": params, "state": state, "macs": counter.get_total_flops() // 2, "out": tuple(y.shape[1:])}


def counted(program: str) -> dict:
    net = paramsym.parse(program)
    values = net.evaluate()
    dims = [int(net.value(n)) for n in net.output_shape.dims()]
    positions = 1
    for n in dims[:-1]:
        positions *= n
    return {"params": values["params"], "state": values["state"], "macs": values["macs"], "out": (positions, dims[-1])}


# ---- sr=R: PVT v2 and Twins -------------------------------------------------------------------------------

# (H, W, d, heads, R): maps R divides and maps it does not (the convolution drops the rest), R = 1 (no reduction
# in timm: then attn without sr= counts the same as sr=1 minus the convolution), one key position
SR = [
    (56, 56, 32, 1, 8),
    (28, 28, 64, 2, 4),
    (14, 14, 160, 5, 2),
    (15, 9, 48, 3, 2),
    (7, 7, 64, 2, 3),
    (8, 6, 16, 2, 6),
]


@pytest.mark.parametrize("H, W, d, h, R", SR)
@pytest.mark.parametrize("cls", [PvtAttention, GlobalSubSampleAttn])
def test_sr_counts_as_pvt_and_twins(H, W, d, h, R, cls):
    want = measured(lambda: cls(d, h, sr_ratio=R), H * W, d, (H, W))
    got = counted(f"input({H}x{W}x{d}) > attn(heads={h}, sr={R}, bias)")
    assert got == want
    S = (H // R) * (W // R)
    assert got["params"] == 4 * d * d + 4 * d + R * R * d * d + d + 2 * d
    assert got["macs"] == 2 * H * W * d * d + 2 * S * d * d + 2 * H * W * S * d + S * R * R * d * d


# ---- srpool=R: NextViT --------------------------------------------------------------------------------------

# (T, d, head_dim, R): T a multiple of R² or not (AvgPool1d drops the rest)
SRPOOL = [(196, 96, 32, 2), (784, 64, 16, 4), (63, 48, 16, 2), (3136, 96, 32, 8), (50, 64, 32, 3)]


@pytest.mark.parametrize("T, d, e, R", SRPOOL)
def test_srpool_counts_as_nextvit(T, d, e, R):
    want = measured(lambda: EfficientAttention(d, head_dim=e, sr_ratio=R), T, d)
    got = counted(f"input({T}x{d}) > attn(heads={d // e}, srpool={R}, bias)")
    assert got == want
    assert got["state"] == 2 * d and got["params"] == 4 * d * d + 4 * d + 2 * d


def test_formulas():
    net = paramsym.parse("input(H x W x d) > attn(heads=h, sr=R, bias)")
    H, W, d, h, R = 28, 20, 64, 2, 4
    assert net.evaluate(H=H, W=W, d=d, h=h, R=R)["params"] == 4 * d * d + 7 * d + R * R * d * d
    assert str(net.params) == "R**2*d**2 + 4*d**2 + 7*d"
    pooled = paramsym.parse("input(T x d) > attn(heads=h, srpool=R)")
    assert pooled.evaluate(T=50, d=64, h=2, R=3)["macs"] == 2 * 50 * 64 * 64 + 2 * 5 * 64 * 64 + 2 * 50 * 5 * 64


# ---- the language's rules ------------------------------------------------------------------------------------

REFUSED = [
    ("input(64x32) > attn(heads=2, sr=2)", "sr= reduces a map"),
    ("input(8x8x32) > attn(heads=2, sr=2, srpool=2)", "give one"),
    ("input(8x8x32) > attn(heads=2, sr=0)", "positive whole number"),
    ("input(8x8x32) > attn(heads=2, sr=2, window=4)", "does not go with window="),
    ("input(8x8x32) > attn(heads=2, srpool=2, source=10x32)", "does not go with source="),
    ("input(8x8x32) > attn(heads=2, sr=2, causal)", "'causal' orders queries and keys"),
    ("input(4x8x32) > attn(heads=2, sr=6)", "larger than the map's size 4"),
    ("input(10x32) > attn(heads=2, srpool=4)", "averages 4² positions, more than the input's 10"),
    ("input(8x8x32) > attn(heads=2, sr=2x2)", "takes one value"),
]


@pytest.mark.parametrize("program, message", REFUSED)
def test_refused(program, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(program).evaluate()


def test_explain_says_the_reduction():
    text = " ".join(run("explain", "input(56x56x32) > attn(heads=1, sr=8, bias)").stdout.split())
    assert "8x8 convolution of stride 8" in text and "49 positions" in text and "65,632 parameters" in text
    text = " ".join(run("explain", "input(14x14x96) > attn(heads=3, srpool=2, bias)").stdout.split())
    assert "averages of 4 consecutive positions" in text and "192 values of state" in text


# ---- the traced import ---------------------------------------------------------------------------------------


class OnMap(nn.Module):
    """An attention on a map's positions, laid out as a sequence (B, H·W, C) and back, as PVT's blocks do."""

    def __init__(self, attention: nn.Module, sized: bool):
        super().__init__()
        self.attention, self.sized = attention, sized

    def forward(self, x):
        B, C, H, W = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = self.attention(t, (H, W)) if self.sized else self.attention(t)
        return t.transpose(1, 2).reshape(B, C, H, W)


IMPORTS = [
    (lambda: PvtAttention(32, 1, sr_ratio=4), True, (16, 16, 32), "attn(heads=1, sr=4, bias)"),
    (lambda: PvtAttention(64, 2, sr_ratio=2, qkv_bias=True), True, (14, 10, 64), "attn(heads=2, sr=2, bias)"),
    (lambda: GlobalSubSampleAttn(48, 3, sr_ratio=2), True, (15, 9, 48), "attn(heads=3, sr=2, bias)"),
    (lambda: GlobalSubSampleAttn(64, 2, sr_ratio=7), True, (14, 14, 64), "attn(heads=2, sr=7, bias)"),
    (lambda: EfficientAttention(96, head_dim=32, sr_ratio=2), False, (14, 14, 96), "attn(heads=3, srpool=2, bias)"),
    (lambda: EfficientAttention(64, head_dim=16, sr_ratio=3), False, (9, 7, 64), "attn(heads=4, srpool=3, bias)"),
]


@pytest.mark.parametrize("build, sized, shape, text", IMPORTS)
def test_traced_import(build, sized, shape, text):
    with torch.device("meta"):
        module = OnMap(build(), sized).eval()
    program, numbers = ours(module, shape)
    assert text in program, program
    truth = torch_truth(module, shape)
    assert numbers["params"] == truth["params"] and numbers["state"] == truth["state"]
    assert numbers["macs"] == truth["macs"]
    assert numbers["out"] == shape


@pytest.mark.parametrize("in_chs, out_chs, sr, H", [(96, 256, 2, 14), (256, 512, 1, 7), (128, 128, 4, 16)])
def test_nextvit_block_imports(in_chs, out_chs, sr, H):
    """NextViT's transformer block: its attention's output goes through a drop path before it is laid back out
    as the map (the importer keeps the layout through it)."""
    with torch.device("meta"):
        block = NextTransformerBlock(in_chs, out_chs, drop_path=0.1, sr_ratio=sr).eval()
    program, numbers = ours(block, (H, H, in_chs))
    assert (f"srpool={sr}" in program) == (sr > 1), program
    truth = torch_truth(block, (H, H, in_chs))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}


class Reduced(nn.Module):
    """PVT's attention with another reduction (a padded convolution, a pool of a non-square window, no norm)."""

    def __init__(self, d: int, reduce: nn.Module, norm: nn.Module | None, pooled: bool = False):
        super().__init__()
        self.q, self.kv, self.proj = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        self.reduce, self.norm, self.pooled = reduce, norm, pooled

    def forward(self, x):
        B, C, H, W = x.shape
        t = x.flatten(2).transpose(1, 2)
        q = self.q(t).reshape(B, -1, 2, C // 2).transpose(1, 2)
        if self.pooled:
            s = self.reduce(t.transpose(1, 2))
        else:
            s = self.reduce(t.transpose(1, 2).reshape(B, C, H, W)).flatten(2)
        s = s.transpose(1, 2)
        if self.norm is not None:
            s = self.norm(s)
        k, v = self.kv(s).reshape(B, -1, 2, 2, C // 2).permute(2, 0, 3, 1, 4).unbind(0)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(B, -1, C)).transpose(1, 2).reshape(B, C, H, W)


REDUCTIONS_REFUSED = [
    (Reduced(32, nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.LayerNorm(32)), "other than as Conv2d"),
    (Reduced(32, nn.Conv2d(32, 32, 2, stride=2, bias=False), nn.LayerNorm(32)), "other than as Conv2d"),
    (Reduced(32, nn.Conv2d(32, 32, 2, stride=2), None), "Conv2d and no norm"),
    (Reduced(32, nn.AvgPool1d(3, 3), None, pooled=True), "averages of R² positions"),
]


@pytest.mark.parametrize("module, message", REDUCTIONS_REFUSED)
def test_other_reductions_are_refused(module, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.from_torch(module.eval(), (8, 8, 32))


def test_a_reduced_sequence_says_its_map():
    """sr=R reduces a map: PVT's reduction of a sequence that the language has as a sequence (not a map's positions
    laid out) reads as the map the convolution gets, which the language says (map=HxW,
    tests/test_kind_sequence_reduction.py)."""

    class OnSequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = PvtAttention(32, 2, sr_ratio=2)

        def forward(self, x):  # (B, C, T) -> (B, T, C): a sequence, not a map's positions
            return self.attention(x.transpose(1, 2), (4, 8))

    program, numbers = ours(OnSequence().eval(), (32, 32))
    assert "attn(heads=2, sr=2, map=4x8, bias)" in program, program
    truth = torch_truth(OnSequence().eval(), (32, 32))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}


# ---- the export ----------------------------------------------------------------------------------------------

EXPORTS = [
    ("input(16x12x32) > attn(heads=2, sr=4, bias)", (16, 12, 32)),
    ("input(14x14x96) > attn(heads=3, head_dim=32, srpool=2, bias)", (14, 14, 96)),
    ("input(50x64) > attn(heads=4, kv_heads=2, srpool=3)", (50, 64)),
    ("input(9x7x16) > attn(heads=2, sr=3)", (9, 7, 16)),
]


@pytest.mark.parametrize("program, shape", EXPORTS)
def test_export_counts_as_the_program_and_imports_back(program, shape):
    net = paramsym.parse(program)
    module = paramsym.to_torch(net).eval()
    truth = torch_truth(module, shape)
    values = net.evaluate()
    assert (truth["params"], truth["state"], truth["macs"]) == (values["params"], values["state"], values["macs"])
    back = paramsym.from_torch(module, shape)
    assert paramsym.parse(back).evaluate()["params"] == values["params"]
    reduction = next(p.strip(",)") for p in program.split() if p.startswith(("sr=", "srpool=")))
    assert reduction in back, back


# ---- timm's PVT v2 stage, read whole ---------------------------------------------------------------------------


class Stages(nn.Module):
    """PVT v2's patch embedding (its output channels last), then stages, then the mean over the map (its head)."""

    def __init__(self, stages: list[nn.Module], embed: nn.Module):
        super().__init__()
        self.embed, self.stages = embed, nn.Sequential(*stages)

    def forward(self, x):
        return self.stages(self.embed(x)).mean(dim=(-1, -2))


STAGES = [
    # (input side, embed width, [(dim_out, depth, heads, sr, mlp ratio, qkv_bias, drop_path)])
    (64, 32, [(32, 2, 1, 8, 8.0, True, 0.0), (64, 1, 2, 4, 8.0, True, 0.1)]),
    (56, 16, [(16, 1, 1, 4, 4.0, False, 0.0), (32, 2, 2, 2, 4.0, False, 0.0), (48, 1, 3, 1, 2.0, True, 0.05)]),
    (36, 8, [(8, 1, 2, 3, 2.0, True, 0.0)]),
]


@pytest.mark.parametrize("side, width, stages", STAGES)
def test_pvt_v2_stages_import(side, width, stages):
    from timm.models.pvt_v2 import OverlapPatchEmbed, PyramidVisionTransformerStage

    with torch.device("meta"):
        built, dim = [], width
        for i, (out, depth, heads, sr, ratio, qkv_bias, dp) in enumerate(stages):
            built.append(
                PyramidVisionTransformerStage(
                    dim,
                    out,
                    depth,
                    downsample=i > 0,
                    num_heads=heads,
                    sr_ratio=sr,
                    mlp_ratio=ratio,
                    qkv_bias=qkv_bias,
                    drop_path=dp,
                )
            )
            dim = out
        model = Stages(built, OverlapPatchEmbed(7, 4, 3, width)).eval()
    program, numbers = ours(model, (side, side, 3))
    truth = torch_truth(model, (side, side, 3))
    assert {k: numbers[k] for k in ("params", "state", "macs")} == {k: truth[k] for k in ("params", "state", "macs")}
    assert numbers["out"] == (dim,)
    for _out, _, heads, sr, *_ in stages:
        assert f"attn(heads={heads}, " + (f"sr={sr}, " if sr > 1 else "") in program, program


def test_pvt_v2_linear_attention_is_refused():
    from timm.models.pvt_v2 import OverlapPatchEmbed, PyramidVisionTransformerStage

    with torch.device("meta"):
        stage = PyramidVisionTransformerStage(16, 16, 1, downsample=False, num_heads=1, linear_attn=True)
        model = Stages([stage], OverlapPatchEmbed(7, 4, 3, 16)).eval()
    with pytest.raises(paramsym.ParamsymError, match="an attention block is not PVT v2's"):
        paramsym.from_torch(model, (32, 32, 3))


@pytest.mark.parametrize(
    "program",
    [
        "input(8x8x16) > attn(heads=2, out=32, sr=2, bias)",  # before: the reduction counted on C_out
        "input(8x8x16) > attn(heads=2, out=32, projbias)",
        "input(16x16) > attn(heads=2, out=32, srpool=2)",
        "input(8x8x16) > attn(heads=2, sr=2, projbias)",
    ],
)
def test_the_textbook_formula_gives_the_count(program):
    from paramsym.algebra import views

    network = paramsym.parse(program)
    ((_, template, values, count),) = views.generic(network)
    assert sympy.expand(template.subs(values) - count) == 0
