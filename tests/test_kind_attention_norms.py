"""Three options of `attn` (docs/language.md, Attention): `clsrel=HxW` (BEiT's relative-position table on a class
token and an H x W map), `qk_norm=ln|rms` (a norm of the head width on the queries and keys: timm's q_norm, k_norm)
and `subln` (a LayerNorm on the heads' output before the output projection: BEiT-3's sub-LN, timm's scale_norm).
Checked against timm's modules (params, output shape, MACs by FlopCounterMode on meta tensors), imported whole in
small timm models (BEiT, ViT with qk_norm and scale_norm, ViT-22B's parallel block), and the export
(torch_modules.GroupedQueryAttention) computes what timm's modules compute and imports back."""

from __future__ import annotations

import copy

import pytest
import torch
from timm.layers import RmsNorm
from timm.layers.attention import Attention as TimmAttention
from timm.models.beit import Attention as BeitAttention
from timm.models.beit import Beit
from timm.models.vision_transformer import ParallelScalingBlock, VisionTransformer
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.imported import ours, torch_truth
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import GroupedQueryAttention


def counted(program: str) -> dict:
    values = paramsym.parse(program).evaluate()
    return {"params": values["params"], "macs": values["macs"]}


def macs_of(module: nn.Module, *args) -> int:
    """FlopCounterMode's MACs (FLOPs / 2) on a meta copy of the module and meta inputs of the same shapes."""
    meta = copy.deepcopy(module).to("meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta(*(a.to("meta") for a in args))
    return counter.get_total_flops() // 2


# ---- counts against timm's modules -------------------------------------------------------------------------------

# (H, W, d, heads, qkv_bias)
BEIT_CASES = [(14, 14, 64, 4, True), (7, 9, 48, 2, False), (4, 4, 96, 3, True)]


@pytest.mark.parametrize("H, W, d, heads, bias", BEIT_CASES)
def test_clsrel_counts_as_beit(H, W, d, heads, bias):
    with torch.device("meta"):
        theirs = BeitAttention(d, num_heads=heads, qkv_bias=bias, window_size=(H, W)).eval()
        x = torch.zeros(1, H * W + 1, d)
        assert theirs(x).shape == x.shape
        macs = macs_of(theirs, x)
    program = f"input({H * W + 1}x{d}) > attn(heads={heads}, {'qv_bias' if bias else 'projbias'}, clsrel={H}x{W})"
    assert counted(program) == {"params": torch_params(theirs), "macs": macs}
    assert paramsym.parse(program).evaluate()["params"] == (
        4 * d * d + (3 if bias else 1) * d + heads * ((2 * H - 1) * (2 * W - 1) + 3)
    )


# (T, d, heads, qk_norm, scale_norm, qkv_bias)
TIMM_CASES = [
    (50, 64, 4, "ln", False, True),
    (17, 48, 2, "rms", False, False),
    (10, 96, 3, None, True, True),
    (33, 32, 1, "ln", True, True),
]
NORMS = {"ln": nn.LayerNorm, "rms": RmsNorm, None: nn.LayerNorm}


def _options(heads, qk_norm, scale_norm, bias) -> str:
    parts = [f"heads={heads}", "bias" if bias else "projbias"]
    parts += [f"qk_norm={qk_norm}"] * (qk_norm is not None) + ["subln"] * scale_norm
    return ", ".join(parts)


@pytest.mark.parametrize("T, d, heads, qk_norm, scale_norm, bias", TIMM_CASES)
def test_norms_count_as_timm(T, d, heads, qk_norm, scale_norm, bias):
    with torch.device("meta"):
        theirs = TimmAttention(
            d,
            num_heads=heads,
            qkv_bias=bias,
            qk_norm=qk_norm is not None,
            scale_norm=scale_norm,
            norm_layer=NORMS[qk_norm],
        ).eval()
        x = torch.zeros(1, T, d)
        assert theirs(x).shape == x.shape
        macs = macs_of(theirs, x)
    program = f"input({T}x{d}) > attn({_options(heads, qk_norm, scale_norm, bias)})"
    assert counted(program) == {"params": torch_params(theirs), "macs": macs}


# ---- whole models ------------------------------------------------------------------------------------------------


def _same(model: nn.Module, shape: tuple) -> str:
    text, numbers = ours(model, shape)
    truth = torch_truth(model, shape)
    keys = ("params", "state", "macs", "out")
    assert {k: numbers[k] for k in keys} == {k: truth[k] for k in keys}, text
    return text


# (image, patch, d, heads, qkv_bias, layer scale, pooled)
BEIT_MODELS = [(32, 8, 64, 4, True, 0.1, "avg"), (48, 16, 48, 2, False, None, "token")]


@pytest.mark.parametrize("image, patch, d, heads, bias, init, pool", BEIT_MODELS)
def test_beit_imports(image, patch, d, heads, bias, init, pool):
    with torch.device("meta"):
        model = Beit(
            img_size=image,
            patch_size=patch,
            embed_dim=d,
            depth=2,
            num_heads=heads,
            qkv_bias=bias,
            init_values=init,
            global_pool=pool,
            use_abs_pos_emb=False,
            use_rel_pos_bias=True,
            num_classes=10,
        ).eval()
    text = _same(model, (image, image, 3))
    side = image // patch
    assert f"clsrel={side}x{side}" in text and ("qv_bias" in text) == bias, text


@pytest.mark.parametrize("qk_norm, scale_norm, bias", [("ln", False, True), ("rms", False, False), (None, True, True)])
def test_vit_imports(qk_norm, scale_norm, bias):
    with torch.device("meta"):
        model = VisionTransformer(
            img_size=32,
            patch_size=8,
            embed_dim=64,
            depth=2,
            num_heads=4,
            qkv_bias=bias,
            qk_norm=qk_norm is not None,
            scale_attn_norm=scale_norm,
            scale_mlp_norm=scale_norm,
            num_classes=10,
            **({"norm_layer": RmsNorm} if qk_norm == "rms" else {}),
        ).eval()
    text = _same(model, (32, 32, 3))
    assert (f"qk_norm={qk_norm}" in text) == (qk_norm is not None) and ("subln" in text) == scale_norm, text


@pytest.mark.parametrize("norm", [RmsNorm, nn.LayerNorm])
def test_parallel_block_imports(norm):
    with torch.device("meta"):
        model = VisionTransformer(
            img_size=32,
            patch_size=8,
            embed_dim=64,
            depth=2,
            num_heads=4,
            qk_norm=True,
            block_fn=ParallelScalingBlock,
            qkv_bias=False,
            norm_layer=norm,
            num_classes=10,
        ).eval()
    text = _same(model, (32, 32, 3))
    assert f"qk_norm={'rms' if norm is RmsNorm else 'ln'}" in text, text


# ---- export ------------------------------------------------------------------------------------------------------


def _randomized(module: nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)


@pytest.mark.parametrize("H, W, d, heads, bias", BEIT_CASES[:2])
def test_clsrel_export_computes_beits(H, W, d, heads, bias):
    T = H * W + 1
    program = f"input({T}x{d}) > attn(heads={heads}, {'qv_bias' if bias else 'projbias'}, clsrel={H}x{W})"
    network = paramsym.parse(program)
    whole = paramsym.to_torch(network).eval()
    (mine,) = [m for m in whole.modules() if isinstance(m, GroupedQueryAttention)]
    theirs = BeitAttention(d, num_heads=heads, qkv_bias=bias, window_size=(H, W)).eval()
    _randomized(theirs)
    assert torch.equal(mine.relative_position_index, theirs.relative_position_index)
    with torch.no_grad():
        q, k, v = theirs.qkv.weight.chunk(3)
        for name, weight in zip("qkv", (q, k, v)):
            getattr(mine, name).weight.copy_(weight)
        mine.o.weight.copy_(theirs.proj.weight)
        mine.o.bias.copy_(theirs.proj.bias)
        if bias:
            mine.q.bias.copy_(theirs.q_bias)
            mine.v.bias.copy_(theirs.v_bias)
        mine.relative_position_bias_table.copy_(theirs.relative_position_bias_table)
        x = torch.randn(2, T, d)
        assert torch.allclose(mine(x.transpose(1, 2)).transpose(1, 2), theirs(x), atol=1e-4)
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    assert macs_of(whole, torch.zeros(1, d, T)) == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values and f"clsrel={H}x{W}" in text, text


@pytest.mark.parametrize("T, d, heads, qk_norm, scale_norm, bias", TIMM_CASES)
def test_norms_export_computes_timms(T, d, heads, qk_norm, scale_norm, bias):
    network = paramsym.parse(f"input({T}x{d}) > attn({_options(heads, qk_norm, scale_norm, bias)})")
    whole = paramsym.to_torch(network).eval()
    (mine,) = [m for m in whole.modules() if isinstance(m, GroupedQueryAttention)]
    norm = nn.RMSNorm if qk_norm == "rms" else nn.LayerNorm
    theirs = TimmAttention(
        d, num_heads=heads, qkv_bias=bias, qk_norm=qk_norm is not None, scale_norm=scale_norm, norm_layer=norm
    ).eval()
    _randomized(theirs)
    with torch.no_grad():
        weights = theirs.qkv.weight.chunk(3)
        biases = theirs.qkv.bias.chunk(3) if bias else (None,) * 3
        for name, weight, b in zip("qkv", weights, biases):
            getattr(mine, name).weight.copy_(weight)
            if b is not None:
                getattr(mine, name).bias.copy_(b)
        mine.o.load_state_dict(theirs.proj.state_dict())
        if qk_norm is not None:
            mine.q_norm.load_state_dict(theirs.q_norm.state_dict())
            mine.k_norm.load_state_dict(theirs.k_norm.state_dict())
        if scale_norm:
            mine.subln.load_state_dict(theirs.norm.state_dict())
        x = torch.randn(2, T, d)
        assert torch.allclose(mine(x.transpose(1, 2)).transpose(1, 2), theirs(x), atol=1e-4)
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    assert macs_of(whole, torch.zeros(1, d, T)) == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


def test_formulas():
    e = paramsym.parse("input(T x d) > attn(heads=h, bias, qk_norm=ln, subln)").evaluate(T=10, d=64, h=4)
    assert e["params"] == 4 * 64 * 64 + 4 * 64 + 4 * 16 + 2 * 64
    r = paramsym.parse("input(T x d) > attn(heads=h, qk_norm=rms)").evaluate(T=10, d=64, h=4)
    assert r["params"] == 4 * 64 * 64 + 2 * 16
    c = paramsym.parse("input(T x d) > attn(heads=h, qv_bias, clsrel=H x W)").evaluate(T=13, d=32, h=2, H=3, W=4)
    assert c["params"] == 4 * 32 * 32 + 3 * 32 + 2 * (5 * 7 + 3)


REFUSED = [
    ("input(10x64) > attn(heads=4, clsrel=3x4)", "clsrel=3x4 is a class token and 12 positions"),
    ("input(4x4x64) > attn(heads=4, clsrel=4x4)", "position bias of a sequence"),
    ("input(17x64) > attn(heads=4, clsrel=4)", "takes the map's two sides"),
    ("input(17x64) > attn(heads=4, clsrel=4x4, causal)", "takes no causal"),
    ("input(10x64) > attn(heads=4, qk_norm=bn)", "qk_norm= takes ln"),
    ("input(8x8x64) > attn(heads=4, window=4, qk_norm=ln)", "takes no window"),
    ("input(8x8x64) > attn(heads=4, window=4, subln)", "takes no window"),
]


@pytest.mark.parametrize("text, message", REFUSED)
def test_refused(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()


def test_shared_position_bias_is_refused():
    with torch.device("meta"):
        model = Beit(
            img_size=32,
            patch_size=8,
            embed_dim=32,
            depth=1,
            num_heads=2,
            use_rel_pos_bias=False,
            use_shared_rel_pos_bias=True,
            num_classes=0,
        ).eval()
    with pytest.raises(paramsym.ParamsymError, match="RelativePositionBias"):
        paramsym.from_torch(model, (32, 32, 3))
