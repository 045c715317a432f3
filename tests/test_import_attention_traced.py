"""Multi-head self-attention read from the operations a model runs (paramsym.frameworks.traced_attention),
whatever its class: fused or separate projections, grouped keys and values, a head width of its own,
F.scaled_dot_product_attention or the explicit softmax, imported as the language's attn and compared with the
real module (params, output shape, FlopCounterMode's MACs). What is not exactly attn (biases in some projections
only, talking heads, a relative-position bias, a mask, a norm on queries, values of another head width, a
temperature, keys from another value) is refused, naming the module and what enters the attention."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import paramsym
from helpers.imported import ours, torch_truth
from paramsym.errors import ImportRefused


class Fused(nn.Module):
    """timm's way: one qkv Linear, reshape(B, N, 3, h, e).permute(2, 0, 3, 1, 4).unbind(0)."""

    def __init__(self, d=32, heads=4, head_dim=None, bias=True, sdpa=False, proj_bias=None):
        super().__init__()
        self.h, self.e, self.sdpa = heads, head_dim or d // heads, sdpa
        self.qkv = nn.Linear(d, 3 * self.h * self.e, bias=bias)
        self.attn_drop = nn.Dropout(0.1)
        self.proj = nn.Linear(self.h * self.e, d, bias=bias if proj_bias is None else proj_bias)

    def forward(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.h, self.e).permute(2, 0, 3, 1, 4).unbind(0)
        if self.sdpa:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q * self.e**-0.5) @ k.transpose(-2, -1)
            x = self.attn_drop(attn.softmax(dim=-1)) @ v
        return self.proj(x.transpose(1, 2).reshape(B, N, -1))


class Separate(nn.Module):
    """q, k, v Linear layers, view(B, N, h, e).transpose(1, 2), the scale after the product, F.softmax, F.dropout."""

    def __init__(self, d=32, heads=2, bias=False):
        super().__init__()
        self.h = heads
        self.q, self.k, self.v = (nn.Linear(d, d, bias=bias) for _ in range(3))
        self.out = nn.Linear(d, d, bias=bias)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = (f(x).view(B, N, self.h, C // self.h).transpose(1, 2) for f in (self.q, self.k, self.v))
        attn = F.softmax(torch.matmul(q, k.transpose(-1, -2)) / (C // self.h) ** 0.5, dim=-1)
        x = torch.matmul(F.dropout(attn, 0.1, self.training), v)
        return self.out(x.transpose(1, 2).contiguous().view(B, N, C))


class QueryAndKV(nn.Module):
    """pvt_v2's way without the spatial reduction: a q Linear and a fused kv Linear, SDPA."""

    def __init__(self, d=32, heads=4):
        super().__init__()
        self.h = heads
        self.q, self.kv, self.proj = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)

    def forward(self, x):
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.h, -1).permute(0, 2, 1, 3)
        k, v = self.kv(x).reshape(B, -1, 2, self.h, C // self.h).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class Grouped(nn.Module):
    """Grouped-query attention: h query heads, g key/value heads of e channels, shared by repeat_interleave, or
    by SDPA's enable_gqa; causal with SDPA's is_causal."""

    def __init__(self, d=32, heads=4, kv_heads=2, head_dim=6, sdpa=False, causal=False):
        super().__init__()
        self.h, self.g, self.e, self.sdpa, self.causal = heads, kv_heads, head_dim, sdpa, causal
        self.q = nn.Linear(d, heads * head_dim, bias=False)
        self.kv = nn.Linear(d, 2 * kv_heads * head_dim, bias=False)
        self.o = nn.Linear(heads * head_dim, d, bias=False)

    def forward(self, x):
        B, N, _ = x.shape
        q = self.q(x).view(B, N, self.h, self.e).transpose(1, 2)
        k, v = self.kv(x).view(B, N, self.g, 2 * self.e).transpose(1, 2).chunk(2, dim=-1)
        if self.sdpa == "expand":  # Llama's repeat_kv: x[:, :, None].expand(...).reshape(...)
            n = self.h // self.g
            k, v = (t[:, :, None].expand(B, self.g, n, N, self.e).reshape(B, self.h, N, self.e) for t in (k, v))
            x = F.scaled_dot_product_attention(q, k, v)
        elif self.sdpa:
            x = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, enable_gqa=True)
        else:
            k, v = (t.repeat_interleave(self.h // self.g, dim=1) for t in (k, v))
            x = (q @ k.transpose(-2, -1)).softmax(-1) @ v
        return self.o(x.transpose(1, 2).reshape(B, N, -1))


class Map2d(nn.Module):
    """timm's Attention2d (CoAtNet) on (N, C, H, W): a 1x1 convolution for q, k, v, view(B, h, 3e, -1).chunk(3, 2),
    the keys' positions last; `v @ attn.transpose(-2, -1)` or SDPA on transposes; a 1x1 convolution out."""

    def __init__(self, d=32, heads=4, sdpa=False):
        super().__init__()
        self.h, self.e, self.sdpa = heads, d // heads, sdpa
        self.qkv, self.proj = nn.Conv2d(d, 3 * d, 1), nn.Conv2d(d, d, 1)

    def forward(self, x):
        B, _, H, W = x.shape
        q, k, v = self.qkv(x).view(B, self.h, self.e * 3, -1).chunk(3, dim=2)
        if self.sdpa:
            x = F.scaled_dot_product_attention(
                q.transpose(-1, -2).contiguous(), k.transpose(-1, -2).contiguous(), v.transpose(-1, -2).contiguous()
            )
            x = x.transpose(-1, -2).reshape(B, -1, H, W)
        else:
            attn = ((q * self.e**-0.5).transpose(-2, -1) @ k).softmax(dim=-1)
            x = (v @ attn.transpose(-2, -1)).view(B, -1, H, W)
        return self.proj(x)


class MapLast(nn.Module):
    """MetaFormer's (CAFormer's) attention on (N, H, W, C): Linear layers, reshape(B, H * W, 3, h, e)."""

    def __init__(self, d=32, heads=2):
        super().__init__()
        self.h = heads
        self.qkv, self.proj = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)

    def forward(self, x):
        B, H, W, C = x.shape
        q, k, v = self.qkv(x).reshape(B, H * W, 3, self.h, -1).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, H, W, C)
        return self.proj(x)


class OnMap(nn.Module):
    """A stem, a residual attention on the map (channels first, or last between permutes), a pooled head."""

    def __init__(self, attention, last=False, d=32):
        super().__init__()
        self.stem, self.attn, self.last = nn.Conv2d(3, d, 2, stride=2), attention, last
        self.head = nn.Linear(d, 5)

    def forward(self, x):
        x = self.stem(x)
        if self.last:
            x = x.permute(0, 2, 3, 1)
            x = (x + self.attn(x)).permute(0, 3, 1, 2)
        else:
            x = x + self.attn(x)
        return self.head(x.mean((2, 3)))


MAPS = [
    (lambda: OnMap(Map2d()), "attn(heads=4, bias)"),
    (lambda: OnMap(Map2d(heads=2, sdpa=True)), "attn(heads=2, bias)"),
    (lambda: OnMap(MapLast(), last=True), "attn(heads=2)"),
]


@pytest.mark.parametrize("build, says", MAPS, ids=["Attention2d", "Attention2d-sdpa", "channels-last"])
def test_attention_over_the_positions_of_a_map(build, says):
    model = build()
    shape = (8, 6, 3)
    text, counted = ours(model, shape)
    truth = torch_truth(model, shape)
    assert f"res({says})" in text, text
    assert counted["params"] == truth["params"] and counted["macs"] == truth["macs"], (counted, truth)
    assert counted["out"] == truth["out"], (counted, truth)


class Tokens(nn.Module):
    """A patch stem, a residual attention, a head: the attention reads a sequence of the model."""

    def __init__(self, attention, d=32):
        super().__init__()
        self.stem = nn.Conv2d(3, d, 2, stride=2)
        self.attn = attention
        self.head = nn.Linear(d, 5)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        return self.head(x + self.attn(x))


CASES = [
    # (attention, what the program says)
    (lambda: Fused(), "attn(heads=4, bias)"),
    (lambda: Fused(sdpa=True), "attn(heads=4, bias)"),
    (lambda: Fused(heads=3, head_dim=12, bias=False), "attn(heads=3, head_dim=12)"),
    (lambda: Fused(bias=False, proj_bias=True), "attn(heads=4, projbias)"),  # timm's qkv_bias=False
    (lambda: Separate(), "attn(heads=2)"),
    (lambda: Separate(heads=8, bias=True), "attn(heads=8, bias)"),
    (lambda: QueryAndKV(), "attn(heads=4, bias)"),
    (lambda: Grouped(), "attn(heads=4, kv_heads=2, head_dim=6)"),
    (lambda: Grouped(sdpa=True), "attn(heads=4, kv_heads=2, head_dim=6)"),
    (lambda: Grouped(sdpa="expand"), "attn(heads=4, kv_heads=2, head_dim=6)"),
    (lambda: Grouped(heads=6, kv_heads=1, head_dim=8, sdpa=True, causal=True), "heads=6, kv_heads=1, head_dim=8"),
]


@pytest.mark.parametrize("build, says", CASES, ids=[re.sub(r"\W+", "-", c[1]) + str(i) for i, c in enumerate(CASES)])
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_attention_of_any_class_imports_as_attn(build, says, device):
    with torch.device(device):
        model = Tokens(build())
    shape = (8, 6, 3)  # 12 positions
    text, counted = ours(model, shape)
    truth = torch_truth(model, shape)
    assert says in text and "res(attn(" in text, text
    assert counted["params"] == truth["params"] and counted["state"] == truth["state"], (counted, truth)
    assert counted["macs"] == truth["macs"], (counted, truth)
    assert counted["out"] == truth["out"], (counted, truth)


def test_causal_sdpa_is_causal():
    text = paramsym.from_torch(Tokens(Grouped(heads=4, kv_heads=4, head_dim=8, sdpa=True, causal=True)), (8, 6, 3))
    assert "attn(heads=4, causal)" in text, text


# ---- what is not exactly attn is refused, naming the module and what enters ------------------------------


class TalkingHeads(Fused):
    def __init__(self):
        super().__init__()
        self.proj_l = nn.Linear(4, 4)

    def forward(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.h, self.e).permute(2, 0, 3, 1, 4).unbind(0)
        attn = self.proj_l((q @ k.transpose(-2, -1)).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(B, N, -1))


class RelativeBias(Fused):
    def __init__(self):
        super().__init__()
        self.bias_table = nn.Parameter(torch.zeros(4, 12, 12))

    def forward(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.h, self.e).permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q @ k.transpose(-2, -1) + self.bias_table).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, -1))


class Masked(Fused):
    def forward(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.h, self.e).permute(2, 0, 3, 1, 4).unbind(0)
        mask = torch.ones(N, N, device=x.device).tril()
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(x.transpose(1, 2).reshape(B, N, -1))


class QueryNorm(Fused):
    def __init__(self):
        super().__init__()
        self.q_norm = nn.LayerNorm(8)

    def forward(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.h, self.e).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(self.q_norm(q), k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, -1))


class WideValues(nn.Module):
    """LeViT's attn_ratio: values of another head width than keys."""

    def __init__(self, d=32):
        super().__init__()
        self.qk, self.v, self.proj = nn.Linear(d, 2 * 4 * 4), nn.Linear(d, 4 * 8), nn.Linear(32, d)

    def forward(self, x):
        B, N, _ = x.shape
        q, k = self.qk(x).view(B, N, 2, 4, 4).permute(2, 0, 3, 1, 4).unbind(0)
        v = self.v(x).view(B, N, 4, 8).transpose(1, 2)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, -1))


class Temperature(Fused):
    def __init__(self):
        super().__init__()
        self.temperature = nn.Parameter(torch.ones(4, 1, 1))

    def forward(self, x):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.h, self.e).permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, -1))


class Reduced(nn.Module):
    """pvt_v2's spatial reduction: keys and values from a pooled value, not from the input."""

    def __init__(self, d=32):
        super().__init__()
        self.q, self.kv, self.proj = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)

    def forward(self, x):
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, 4, 8).transpose(1, 2)
        k, v = self.kv(x[:, ::2]).reshape(B, -1, 2, 4, 8).permute(2, 0, 3, 1, 4).unbind(0)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C))


REFUSED = [
    (lambda: Fused(proj_bias=False), "Fused", ["biases in 'attn.qkv' only"]),
    (TalkingHeads, "TalkingHeads", ["module 'attn.proj_l'", "attention scores"]),
    (RelativeBias, "RelativeBias", ["'attn.bias_table'", "attention scores"]),
    (Masked, "Masked", ["attn_mask"]),
    (QueryNorm, "QueryNorm", ["module 'attn.q_norm'", "queries, keys or values"]),
    (WideValues, "WideValues", ["value heads (4 of 8 channels)", "key heads (4 of 4)"]),
    (Temperature, "Temperature", ["'attn.temperature'"]),
    (Reduced, "Reduced", ["keys or values that module 'attn.kv' projects from another value"]),
]


@pytest.mark.parametrize("build, cls, says", REFUSED, ids=[f"{c[1]}{i}" for i, c in enumerate(REFUSED)])
def test_what_is_not_attn_is_refused_naming_the_module(build, cls, says):
    with pytest.raises(ImportRefused) as refused:
        paramsym.from_torch(Tokens(build()), (8, 6, 3))
    message = str(refused.value)
    assert f"module 'attn' ({cls}): " in message, message
    for word in says:
        assert word in message, message
    assert not re.search(r"\b(getattr|call_method|call_function|placeholder)(_[0-9]+)?\b", message), message


# ---- timm's families with attention classes of their own ---------------------------------------------------

timm = pytest.importorskip("timm")


@pytest.mark.parametrize(
    "name, says",
    [
        ("coat_lite_tiny", "module 'serial_blocks1.0.factoratt_crpe' (FactorAttnConvRelPosEnc): "),
    ],
)
def test_timm_attention_that_is_not_attn_is_refused_by_name(name, says):
    """(CaiT's TalkingHeadAttn is imported whole now, as talkattn: tests/test_kind_class_attention.py; EfficientViT's
    LiteMLA as litemla: tests/test_kind_lite_mla.py.)"""
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    size = model.pretrained_cfg["input_size"]
    with pytest.raises(ImportRefused) as refused:
        paramsym.from_torch(model, (size[1], size[2], size[0]))
    assert says in str(refused.value), str(refused.value)


# ---- timm's attention classes themselves, in a small model ---------------------------------------------------


class Host(nn.Module):
    """A stem, then one of timm's attention modules as a residual: on the tokens (`form` "tokens", or "sized" for
    forward(x, (H, W))), on the map (N, C, H, W) ("map") or channels last ("last"); a pooled head."""

    def __init__(self, attention, form, d=32):
        super().__init__()
        self.stem, self.attn, self.form = nn.Conv2d(3, d, 2, stride=2), attention, form
        self.head = nn.Linear(d, 5)

    def forward(self, x):
        x = self.stem(x)
        _, _, H, W = x.shape
        if self.form == "map":
            return self.head((x + self.attn(x)).mean((2, 3)))
        if self.form == "last":
            x = x.permute(0, 2, 3, 1)
            return self.head((x + self.attn(x)).mean((1, 2)))
        t = x.flatten(2).transpose(1, 2)
        t = t + (self.attn(t, (H, W)) if self.form == "sized" else self.attn(t))
        return self.head(t.mean(1))


def _timm_attention(path, *args, **kwargs):
    module, _, cls = path.rpartition(".")
    return lambda: getattr(__import__(f"timm.models.{module}", fromlist=[cls]), cls)(*args, **kwargs)


TIMM_IMPORTED = [
    # (timm's class, its arguments, how it is called, what the program says)
    ("maxxvit.Attention2d", (32,), {"dim_head": 8}, "map", "attn(heads=4, bias)"),  # CoAtNet without rel-pos
    ("maxxvit.AttentionCl", (32,), {"dim_head": 8}, "last", "attn(heads=4, bias)"),
    ("metaformer.Attention", (32,), {"head_dim": 8}, "tokens", "attn(heads=4)"),  # CAFormer's
    ("pvt_v2.Attention", (32,), {"num_heads": 4}, "sized", "attn(heads=4, bias)"),  # sr_ratio=1
    ("twins.GlobalSubSampleAttn", (32,), {"num_heads": 4}, "sized", "attn(heads=4, bias)"),  # sr_ratio=1
    ("tnt.Attention", (32, 32), {"num_heads": 4, "qkv_bias": True}, "tokens", "attn(heads=4, bias)"),  # qk and v
    ("fastvit.Attention", (32,), {"head_dim": 8, "qkv_bias": True}, "map", "attn(heads=4, bias)"),  # map to tokens
    ("nextvit.EfficientAttention", (32,), {"head_dim": 8}, "tokens", "attn(heads=4, bias)"),  # sr_ratio=1
    ("convit.MHSA", (32,), {"num_heads": 4, "qkv_bias": True}, "tokens", "attn(heads=4, bias)"),
    ("visformer.Attention", (32,), {"num_heads": 4}, "map", "attn(heads=4)"),
    ("fastvit.Attention", (32,), {"head_dim": 8}, "map", "attn(heads=4, projbias)"),  # qkv_bias=False
    ("convit.MHSA", (32,), {"num_heads": 4}, "tokens", "attn(heads=4, projbias)"),
    ("convit.GPSA", (32,), {"num_heads": 4}, "tokens", "attn(heads=4, gpsa, projbias)"),
    ("nextvit.EfficientAttention", (32,), {"head_dim": 8, "sr_ratio": 2}, "tokens", "attn(heads=4, srpool=2, bias)"),
    ("hiera.MaskUnitAttention", (32, 32, 4), {}, "tokens", "attn(heads=4, bias)"),  # global, no mask units
]


@pytest.mark.parametrize("path, args, kwargs, form, says", TIMM_IMPORTED, ids=[c[0] for c in TIMM_IMPORTED])
def test_timm_attention_classes_import_as_attn(path, args, kwargs, form, says):
    model = Host(_timm_attention(path, *args, **kwargs)(), form)
    text, counted = ours(model, (8, 8, 3))
    truth = torch_truth(model, (8, 8, 3))
    assert f"res({says}" in text, text
    assert counted["params"] == truth["params"] and counted["macs"] == truth["macs"], (counted, truth)
    assert counted["out"] == truth["out"], (counted, truth)


TIMM_REFUSED = [
    # CaiT's ClassAttn is the clsattn kind now (tests/test_kind_clsattn.py imports it)
    # CaiT's TalkingHeadAttn is the talkattn kind now (tests/test_kind_class_attention.py imports it)
    # XCiT's XCA is the xca kind now (tests/test_kind_xca.py imports it)
    # DaViT's channel attention is attn(channels) (test_kind_window_blocks.py), but qkv_bias=False biases proj only
    ("davit.ChannelAttention", (32, 4), "tokens", "module 'attn' (ChannelAttention) has biases in proj only"),
    ("pvt_v2.Attention", (32, 4, 2), "sized", "reduces its keys' source as a map (sr=2), but attends over a sequence"),
]


@pytest.mark.parametrize("path, args, form, says", TIMM_REFUSED, ids=[f"{c[0]}{i}" for i, c in enumerate(TIMM_REFUSED)])
def test_timm_attention_that_is_not_attn_is_refused(path, args, form, says):
    with pytest.raises(ImportRefused) as refused:
        paramsym.from_torch(Host(_timm_attention(path, *args)(), form), (8, 8, 3))
    assert says in str(refused.value), str(refused.value)


# Regions read once and reused (traced_attention.fingerprint): (blocks in a row, the attn each is read as, how many
# regions are read element by element). Blocks with the same parameter shapes but other heads, another product or
# causal or not are other regions; identical blocks are one.
REUSED = [
    (lambda: [Fused(heads=4), Fused(heads=4), Fused(heads=4)], ["attn(heads=4, bias)"] * 3, 1),
    (lambda: [Fused(heads=4), Fused(heads=2), Fused(heads=4)], ["attn(heads=4, bias)", "attn(heads=2, bias)"] * 1, 2),
    (lambda: [Fused(heads=4), Fused(heads=4, sdpa=True)], ["attn(heads=4, bias)"] * 2, 2),
    (
        lambda: [Fused(heads=4, bias=False), Fused(heads=4, bias=False, proj_bias=True)],
        ["attn(heads=4)", "projbias"],
        2,
    ),
    (lambda: [Separate(heads=2), Separate(heads=4), Separate(heads=2)], ["attn(heads=2)", "attn(heads=4)"], 2),
    (lambda: [Causal(), Causal(causal=False), Causal()], ["attn(heads=2, bias, causal)", "attn(heads=2, bias)"], 2),
]


class Causal(nn.Module):
    """F.scaled_dot_product_attention with is_causal given or not: the same parameters, another attention."""

    def __init__(self, d=32, heads=2, causal=True):
        super().__init__()
        self.h, self.causal = heads, causal
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.h, C // self.h).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


@pytest.mark.parametrize("blocks, says, read", REUSED, ids=[str(i) for i in range(len(REUSED))])
def test_identical_regions_are_read_once_and_others_again(blocks, says, read, monkeypatch):
    """A region whose operations, modules, arguments and shapes equal one read before takes its reading (a ViT's
    32 identical blocks: deepseek_vit_412m read in seconds, not minutes); one that differs in anything that reading
    depends on is read again, and the program equals the one read block by block."""
    from paramsym.kinds import traced_attention

    runs = []
    run = traced_attention._Reader.run
    monkeypatch.setattr(traced_attention._Reader, "run", lambda self: runs.append(1) or run(self))
    torch.manual_seed(0)
    model = Tokens(nn.Sequential(*blocks())).eval()
    text = paramsym.from_torch(model, (8, 6, 3))
    assert len(runs) == read
    for words in says:
        assert words in text
    monkeypatch.setattr(traced_attention, "fingerprint", lambda c, r: None)  # every region read
    assert paramsym.from_torch(model, (8, 6, 3)) == text
    assert len(runs) == read + len(model.attn)
    counted, truth = ours(model, (8, 6, 3))[1], torch_truth(model, (8, 6, 3))
    assert (counted["params"], counted["macs"], counted["out"]) == (truth["params"], truth["macs"], truth["out"])
