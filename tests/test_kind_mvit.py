"""MViT (torchvision's mvit_v1_b) in the language, paramsym extensions (docs/language.md, "Attention"):
`attn(heads=h, volume=T x H x W, q=..., q_stride=..., kv=..., kv_stride=...)` (pooling attention),
`tokenpool(volume=..., kernel=..., stride=..., pad=...)` (the block's pooled shortcut) and `posembed(A x B, cls)`
(separable learned positions). Checked against torchvision's MultiscaleAttention, Pool(MaxPool3d),
PositionalEncoding, MultiscaleBlock and the whole model: params, output shape and MACs (FlopCounterMode on meta
tensors: FLOPs / 2); the exports (torch_modules.PoolingAttention, TokenPool, SeparablePositionEmbedding) compute
what torchvision computes and import back."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.video import mvit_v1_b
from torchvision.models.video.mvit import (
    MSBlockConfig,
    MultiscaleAttention,
    MultiscaleBlock,
    Pool,
    PositionalEncoding,
)

import paramsym
from helpers.frameworks import torch_params
from helpers.import_check import check
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import PoolingAttention, SeparablePositionEmbedding, TokenPool

LN = partial(nn.LayerNorm, eps=1e-6)


def sides(values) -> str:
    return "x".join(map(str, values))


def counted(program: str) -> tuple[int, int, list]:
    net = paramsym.parse(program)
    values = net.evaluate()
    return values["params"], values["macs"], [int(n) for n in net.output_shape.dims()]


def measured(module: nn.Module, x: torch.Tensor, *extra) -> tuple[int, int, list]:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module.eval()(x, *extra)
    y = y[0] if isinstance(y, tuple) else y
    return torch_params(module), counter.get_total_flops() // 2, list(y.shape[1:])


def pooling_options(kq, sq, kkv, skv) -> str:
    options = []
    if kq:
        options += [f"q={sides(kq)}", f"q_stride={sides(sq)}"]
    if kkv:
        options += [f"kv={sides(kkv)}", f"kv_stride={sides(skv)}"]
    return ", ".join(options)


# ---- MultiscaleAttention: pooled queries and/or keys and values ----------------------------------------------

# (T, H, W, d, heads, kernel_q, stride_q, kernel_kv, stride_kv): mvit_v1_b's, and odd sizes, even kernels
ATTENTION = [
    (8, 56, 56, 96, 1, [], [], [3, 3, 3], [1, 8, 8]),
    (8, 56, 56, 192, 2, [3, 3, 3], [1, 2, 2], [3, 3, 3], [1, 4, 4]),
    (8, 7, 7, 768, 8, [], [], [3, 3, 3], [1, 1, 1]),
    (5, 9, 10, 32, 2, [3, 3, 3], [2, 2, 2], [3, 1, 3], [1, 3, 2]),
    (4, 6, 6, 16, 4, [2, 2, 2], [2, 2, 2], [1, 1, 1], [1, 2, 2]),
    (2, 3, 5, 24, 3, [1, 3, 3], [1, 2, 2], [], []),
]


def attention(T, H, W, d, heads, kq, sq, kkv, skv) -> MultiscaleAttention:
    return MultiscaleAttention([T, H, W], d, d, heads, kq, kkv, sq, skv, False, True, False, norm_layer=LN)


@pytest.mark.parametrize("T, H, W, d, heads, kq, sq, kkv, skv", ATTENTION)
def test_multiscale_attention(T, H, W, d, heads, kq, sq, kkv, skv):
    N = 1 + T * H * W
    program = (
        f"input({N}x{d}) > attn(heads={heads}, bias, volume={T}x{H}x{W}, cls, {pooling_options(kq, sq, kkv, skv)})"
    )
    with torch.device("meta"):
        module = attention(T, H, W, d, heads, kq, sq, kkv, skv)
    assert counted(program) == measured(module, torch.zeros(1, N, d, device="meta"), (T, H, W))


def test_pooling_attention_formulas():
    """In symbols: the projections over N = 1 + T·H·W positions, each pooling e·∏k + 2e parameters and q·∏k MACs
    per pooled token, the scores over Nq x Nk."""
    net = paramsym.parse("input(1 + T*H*W x d) > attn(heads=h, bias, volume=T x H x W, cls, kv=3x3x3, kv_stride=1x8x8)")
    got = net.evaluate(T=8, H=56, W=56, d=96, h=1)
    N, Nk = 1 + 8 * 56 * 56, 1 + 8 * 7 * 7
    assert got["params"] == 4 * 96 * 96 + 4 * 96 + 2 * (96 * 27 + 2 * 96)
    assert got["macs"] == N * 3 * 96 * 96 + 2 * 96 * 8 * 7 * 7 * 27 + 2 * N * Nk * 96 + N * 96 * 96
    assert got["kv_cache"] == 2 * Nk * 96


@pytest.mark.parametrize(
    "program, message",
    [
        ("input(3137x96) > attn(heads=1, volume=8x56x56, cls, kv=3x3x3)", "holds 3136 after its class token"),
        ("input(3137x96) > attn(heads=1, kv=3x3x3)", "volume="),
        ("input(3137x96) > attn(heads=1, volume=1x56x56, kv_stride=1x8x8)", "give its kernel"),
        ("input(3137x96) > attn(heads=1, volume=1x56x56, kv=3x3)", "takes 3 sizes"),
        ("input(3137x96) > attn(heads=1, volume=1x56x56, kv=3x3x3, causal)", "does not go with pooling"),
        ("input(56x56x96) > attn(heads=1, volume=1x56x56, kv=3x3x3)", "reads a sequence"),
    ],
)
def test_pooling_attention_refusals(program, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(program).evaluate()


@pytest.mark.parametrize("T, H, W, d, heads, kq, sq, kkv, skv", ATTENTION[3:])
def test_export_computes_torchvisions_pooling_attention(T, H, W, d, heads, kq, sq, kkv, skv):
    N = 1 + T * H * W
    network = paramsym.parse(
        f"input({N}x{d}) > attn(heads={heads}, bias, volume={T}x{H}x{W}, cls, {pooling_options(kq, sq, kkv, skv)})"
    )
    whole = paramsym.to_torch(network).eval()
    (ours,) = [m for m in whole.modules() if isinstance(m, PoolingAttention)]
    theirs = attention(T, H, W, d, heads, kq, sq, kkv, skv).eval()
    pairs = [(theirs.qkv, ours.qkv), (theirs.project[0], ours.proj)]
    for side in ("q", "k", "v"):
        theirs_pool, ours_pool = getattr(theirs, f"pool_{side}"), getattr(ours, f"pool_{side}")
        assert (theirs_pool is None) == (ours_pool is None)
        if theirs_pool is not None:
            pairs += [(theirs_pool.pool, ours_pool[0]), (theirs_pool.norm_act[0], ours_pool[1])]
    with torch.no_grad():
        for a, b in pairs:
            for name, p in a.named_parameters():
                p.copy_(torch.randn_like(p))
                dict(b.named_parameters())[name].copy_(p)
        x = torch.randn(2, N, d)
        want = theirs(x, (T, H, W))[0]
        got = whole(x.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4), (got - want).abs().max()
    assert torch_params(whole) == network.evaluate()["params"]
    text, back = import_back(network)
    assert back.evaluate() == network.evaluate(), text


# ---- tokenpool: the shortcut's Pool(MaxPool3d), the class token kept -----------------------------------------

POOLS = [
    ((8, 56, 56), (1, 3, 3), (1, 2, 2), (0, 1, 1)),
    ((5, 7, 9), (3, 3, 3), (2, 2, 2), (1, 1, 1)),
    ((4, 4, 6), (2, 2, 2), (2, 2, 3), (0, 1, 0)),
]


@pytest.mark.parametrize("volume, kernel, stride, pad", POOLS)
def test_tokenpool(volume, kernel, stride, pad):
    d, N = 8, 1 + volume[0] * volume[1] * volume[2]
    program = (
        f"input({N}x{d}) > tokenpool(volume={sides(volume)}, kernel={sides(kernel)}, stride={sides(stride)}, "
        f"pad={sides(pad)}, cls)"
    )
    theirs = Pool(nn.MaxPool3d(kernel, stride, pad), None)
    x = torch.randn(2, N, d)
    assert counted(program) == measured(theirs, x, volume)
    network = paramsym.parse(program)
    whole = paramsym.to_torch(network).eval()
    assert any(isinstance(m, TokenPool) for m in whole.modules())
    with torch.no_grad():
        assert torch.equal(whole(x.transpose(1, 2)).transpose(1, 2), theirs(x, volume)[0])
    text, back = import_back(network)
    assert back.evaluate() == network.evaluate(), text


def test_tokenpool_refusals():
    with pytest.raises(paramsym.ParamsymError, match="holds 48 after its class token"):
        paramsym.parse("input(49x8) > tokenpool(volume=2x5x5, kernel=1x3x3, cls)").evaluate()
    with pytest.raises(paramsym.ParamsymError, match="more than half the kernel"):
        paramsym.parse("input(51x8) > tokenpool(volume=2x5x5, kernel=1x3x3, pad=1x1x1, cls)").evaluate()


# ---- posembed(A x B, cls): MViT's separable positions ---------------------------------------------------------


@pytest.mark.parametrize("T, H, W, d", [(8, 56, 56, 96), (2, 3, 4, 8)])
def test_separable_positions(T, H, W, d):
    program = f"input({T}x{H}x{W}x{d}) > tokens > cls > posembed({T}x{H * W}, cls)"
    theirs = PositionalEncoding(d, (H, W), T, rel_pos_embed=False)
    x = torch.randn(1, T * H * W, d)
    assert counted(program) == measured(theirs, x)
    assert counted(program)[0] == (1 + 1 + T + H * W) * d  # the class token, its position, the two tables
    network = paramsym.parse(program)
    whole = paramsym.to_torch(network).eval()
    (ours,) = [m for m in whole.modules() if isinstance(m, SeparablePositionEmbedding)]
    with torch.no_grad():
        ours.first.copy_(theirs.temporal_pos)
        ours.second.copy_(theirs.spatial_pos)
        ours.token.copy_(theirs.class_pos[None])
        tokens = x.transpose(1, 2)
        got = ours(torch.cat([theirs.class_token.view(1, d, 1), tokens], dim=2))
        assert torch.allclose(got.transpose(1, 2), theirs(x), atol=1e-6)
    text, back = import_back(network)
    assert back.evaluate() == network.evaluate(), text


def test_separable_positions_refusals():
    with pytest.raises(paramsym.ParamsymError, match="adds to 1 \\+ 2·6 positions"):
        paramsym.parse("input(12x8) > posembed(2x6, cls)").evaluate()
    with pytest.raises(paramsym.ParamsymError, match="belongs to a separable table"):
        paramsym.parse("input(12x8) > posembed(12, cls)").evaluate()


# ---- MultiscaleBlock: the attention, the pooled shortcut, the MLP (and the projection where the width grows) ---

# (T, H, W, d, d_out, heads, kernel_q, stride_q, kernel_kv, stride_kv)
BLOCKS = [
    (8, 56, 56, 96, 192, 1, [], [], [3, 3, 3], [1, 8, 8]),
    (8, 56, 56, 192, 192, 2, [3, 3, 3], [1, 2, 2], [3, 3, 3], [1, 4, 4]),
    (8, 14, 14, 384, 384, 4, [], [], [3, 3, 3], [1, 2, 2]),
    (3, 7, 6, 16, 32, 2, [3, 3, 3], [2, 2, 2], [3, 3, 3], [1, 2, 2]),
]


def block_program(T, H, W, d, d_out, heads, kq, sq, kkv, skv) -> str:
    options = pooling_options(kq, sq, kkv, skv)
    shortcut = ""
    if kq:
        kernel = [s + 1 if s > 1 else s for s in sq]
        shortcut = (
            f" | tokenpool(volume={T}x{H}x{W}, kernel={sides(kernel)}, stride={sides(sq)}, "
            f"pad={sides(k // 2 for k in kernel)}, cls)"
        )
    mlp = f"dense(->{4 * d}, bias) > gelu > dense(->{d_out}, bias)"
    after = f"res(ln > {mlp})" if d == d_out else f"ln > add(dense(->{d_out}, bias) | {mlp})"
    attention = f"attn(heads={heads}, bias, volume={T}x{H}x{W}, cls, {options})"
    return f"input({1 + T * H * W}x{d}) > res(ln > {attention}{shortcut}) > {after}"


@pytest.mark.parametrize("T, H, W, d, d_out, heads, kq, sq, kkv, skv", BLOCKS)
def test_multiscale_block(T, H, W, d, d_out, heads, kq, sq, kkv, skv):
    config = MSBlockConfig(heads, d, d_out, kq, kkv, sq, skv)
    with torch.device("meta"):
        block = MultiscaleBlock([T, H, W], config, False, True, False, False, norm_layer=LN)
    want = measured(block, torch.zeros(1, 1 + T * H * W, d, device="meta"), (T, H, W))
    assert counted(block_program(T, H, W, d, d_out, heads, kq, sq, kkv, skv)) == want


# ---- the whole model -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(16, 224, 224, 3), (15, 223, 221, 3)])
def test_mvit_v1_b_imports_exactly(shape):
    with torch.device("meta"):
        model = mvit_v1_b().eval()
    text = paramsym.from_torch(model, shape)
    assert "posembed(8x3136, cls)" in text and "tokenpool(" in text and "q_stride=1x2x2" in text, text
    got = check(model, shape, text)
    assert got["wrong"] == "" and got["macs"] == got["torch_macs"], got
    assert got["params"] == 36_610_672


def test_mvit_v1_b_takes_the_size_it_was_built_for():
    with torch.device("meta"):
        model = mvit_v1_b().eval()
    with pytest.raises(paramsym.ParamsymError, match="does not take a 16x240x224x3 input"):
        paramsym.from_torch(model, (16, 240, 224, 3))


# ---- timm's mvitv2: H x W volumes, no class token (or one), relative positions, residual pooling, widening --------

# (H, W, d, D, heads, kernel_q, stride_q, kernel_kv, stride_kv, cls): mvitv2_tiny's attentions, and others
TIMM = [
    (56, 56, 96, 96, 1, (3, 3), (1, 1), (3, 3), (4, 4), False),
    (56, 56, 96, 192, 2, (3, 3), (2, 2), (3, 3), (2, 2), False),
    (7, 7, 768, 768, 8, (3, 3), (1, 1), (3, 3), (1, 1), False),
    (14, 14, 384, 768, 8, (3, 3), (2, 2), (3, 3), (1, 1), False),
    (14, 14, 64, 64, 2, (3, 3), (2, 2), (3, 3), (2, 2), True),
    (12, 12, 32, 32, 2, (1, 1), (1, 1), (3, 3), (4, 4), False),
]


def timm_attention(H, W, d, D, heads, kq, sq, kkv, skv, cls, relpos=True, residual=True):
    from timm.models.mvitv2 import MultiScaleAttention

    kind = "spatial" if relpos else ""
    return MultiScaleAttention(d, D, (H, W), heads, True, "conv", kq, kkv, sq, skv, cls, kind, residual, LN)


def timm_program(module, H, W, d, D, heads, kq, sq, kkv, skv, cls, relpos=True, residual=True) -> str:
    options = [f"heads={heads}"] + [f"out={D}"] * (d != D) + ["bias", f"volume={H}x{W}"] + ["cls"] * cls
    if module.pool_q is not None:
        options += [f"q={sides(kq)}", f"q_stride={sides(sq)}"]
    if module.pool_k is not None:
        options += [f"kv={sides(kkv)}", f"kv_stride={sides(skv)}"]
    options += ["relpos"] * relpos + ["residual"] * residual
    return f"input({int(cls) + H * W}x{d}) > attn({', '.join(options)})"


@pytest.mark.parametrize("H, W, d, D, heads, kq, sq, kkv, skv, cls", TIMM)
@pytest.mark.parametrize("relpos", [True, False])
def test_timm_multiscale_attention(H, W, d, D, heads, kq, sq, kkv, skv, cls, relpos):
    with torch.device("meta"):
        module = timm_attention(H, W, d, D, heads, kq, sq, kkv, skv, cls, relpos)
    program = timm_program(module, H, W, d, D, heads, kq, sq, kkv, skv, cls, relpos)
    x = torch.zeros(1, int(cls) + H * W, d, device="meta")
    assert counted(program) == measured(module, x, [H, W])


@pytest.mark.parametrize(
    "H, W, d, D, heads, kq, sq, kkv, skv, cls", TIMM[4:] + [(6, 6, 16, 32, 2, (3, 3), (2, 2), (3, 3), (2, 2), False)]
)
def test_export_computes_timms_pooling_attention(H, W, d, D, heads, kq, sq, kkv, skv, cls):
    theirs = timm_attention(H, W, d, D, heads, kq, sq, kkv, skv, cls).eval()
    network = paramsym.parse(timm_program(theirs, H, W, d, D, heads, kq, sq, kkv, skv, cls))
    whole = paramsym.to_torch(network).eval()
    (ours,) = [m for m in whole.modules() if isinstance(m, PoolingAttention)]
    pairs = [(theirs.qkv, ours.qkv), (theirs.proj, ours.proj)]
    for side, our_side in (("q", ours.pool_q), ("k", ours.pool_k), ("v", ours.pool_v)):
        if getattr(theirs, f"pool_{side}") is not None:
            pairs += [(getattr(theirs, f"pool_{side}"), our_side[0]), (getattr(theirs, f"norm_{side}"), our_side[1])]
    with torch.no_grad():
        for a, b in pairs:
            for name, p in a.named_parameters():
                p.copy_(torch.randn_like(p))
                dict(b.named_parameters())[name].copy_(p)
        for table, ours_table in ((theirs.rel_pos_h, ours.rel_pos[0]), (theirs.rel_pos_w, ours.rel_pos[1])):
            table.copy_(torch.randn_like(table))
            ours_table.copy_(table)
        x = torch.randn(2, int(cls) + H * W, d)
        want = theirs(x, [H, W])[0]
        got = whole(x.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4), (got - want).abs().max()
    assert torch_params(whole) == network.evaluate()["params"]
    text, back = import_back(network)
    assert back.evaluate() == network.evaluate(), text


@pytest.mark.parametrize("name", ["mvitv2_tiny", "mvitv2_small_cls"])
def test_timm_mvitv2_imports_exactly(name):
    import timm

    with torch.device("meta"):
        model = timm.create_model(name).eval()
    text = paramsym.from_torch(model, (224, 224, 3))
    assert "relpos" in text and "residual" in text and "tokenpool(" in text, text
    got = check(model, (224, 224, 3), text)
    assert got["wrong"] == "" and got["macs"] == got["torch_macs"], got


def test_timm_mvitv2_at_another_size_is_refused():
    """timm sizes the relative-position tables when it builds the model: at another input the tables do not fit."""
    import timm

    with torch.device("meta"):
        model = timm.create_model("mvitv2_tiny").eval()
    with pytest.raises(paramsym.ParamsymError, match="built for another input size"):
        paramsym.from_torch(model, (256, 256, 3))


def test_keras_refuses_pooling_attention_and_tokenpool():
    for program in (
        "input(37x16) > attn(heads=2, bias, volume=4x3x3, cls, kv=3x3x3, kv_stride=1x2x2)",
        "input(37x16) > tokenpool(volume=4x3x3, kernel=1x3x3, stride=1x2x2, pad=0x1x1, cls)",
    ):
        with pytest.raises(paramsym.ParamsymError, match="no Keras"):
            paramsym.keras_source(paramsym.parse(program, convention="keras"))


# ---- torchvision's MViT v2: relative positions along T, H and W, residual pooling, a widening attention ---------

# (T, H, W, d, D, heads, kernel_q, stride_q, kernel_kv, stride_kv): mvit_v2_s's first two, and small ones
V2 = [
    (8, 56, 56, 96, 96, 1, [3, 3, 3], [1, 1, 1], [3, 3, 3], [1, 8, 8]),
    (8, 56, 56, 96, 192, 2, [3, 3, 3], [1, 2, 2], [3, 3, 3], [1, 4, 4]),
    (4, 6, 6, 16, 32, 2, [3, 3, 3], [1, 2, 2], [3, 3, 3], [1, 2, 2]),
    (4, 8, 8, 16, 16, 2, [3, 3, 3], [2, 1, 1], [3, 3, 3], [1, 4, 4]),
]


def v2_attention(T, H, W, d, D, heads, kq, sq, kkv, skv, residual=True):
    return MultiscaleAttention([T, H, W], d, D, heads, kq, kkv, sq, skv, residual, False, True, norm_layer=LN)


def v2_program(module, T, H, W, d, D, heads, kq, sq, kkv, skv, residual=True) -> str:
    options = pooling_options(
        kq if module.pool_q is not None else [], sq, kkv if module.pool_k is not None else [], skv
    )
    flags = ", relpos" + ", residual" * residual
    return f"input({1 + T * H * W}x{d}) > attn(heads={heads}, out={D}, bias, volume={T}x{H}x{W}, cls, {options}{flags})"


@pytest.mark.parametrize("T, H, W, d, D, heads, kq, sq, kkv, skv", V2)
def test_torchvision_v2_attention(T, H, W, d, D, heads, kq, sq, kkv, skv):
    with torch.device("meta"):
        module = v2_attention(T, H, W, d, D, heads, kq, sq, kkv, skv)
    program = v2_program(module, T, H, W, d, D, heads, kq, sq, kkv, skv)
    x = torch.zeros(1, 1 + T * H * W, d, device="meta")
    assert counted(program) == measured(module, x, (T, H, W))


@pytest.mark.parametrize("T, H, W, d, D, heads, kq, sq, kkv, skv", V2[2:])
def test_export_computes_torchvisions_relative_positions(T, H, W, d, D, heads, kq, sq, kkv, skv):
    """The relative positions along T, H and W as torchvision's _add_rel_pos adds them (its residual pooling leaves
    the class token out, which `residual` does not: compared without it)."""
    theirs = v2_attention(T, H, W, d, D, heads, kq, sq, kkv, skv, residual=False).eval()
    network = paramsym.parse(v2_program(theirs, T, H, W, d, D, heads, kq, sq, kkv, skv, residual=False))
    whole = paramsym.to_torch(network).eval()
    (ours,) = [m for m in whole.modules() if isinstance(m, PoolingAttention)]
    pairs = [(theirs.qkv, ours.qkv), (theirs.project[0], ours.proj)]
    for side in ("q", "k", "v"):
        pool = getattr(theirs, f"pool_{side}")
        if pool is not None:
            pairs += [
                (pool.pool, getattr(ours, f"pool_{side}")[0]),
                (pool.norm_act[0], getattr(ours, f"pool_{side}")[1]),
            ]
    with torch.no_grad():
        for a, b in pairs:
            for name, p in a.named_parameters():
                p.copy_(torch.randn_like(p))
                dict(b.named_parameters())[name].copy_(p)
        for table, mine in zip((theirs.rel_pos_t, theirs.rel_pos_h, theirs.rel_pos_w), ours.rel_pos):
            table.copy_(torch.randn_like(table))
            mine.copy_(table)
        x = torch.randn(2, 1 + T * H * W, d)
        want = theirs(x, (T, H, W))[0]
        got = whole(x.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4), (got - want).abs().max()
    text, back = import_back(network)
    assert back.evaluate() == network.evaluate(), text


def test_mvit_v2_s_imports_exactly():
    from torchvision.models.video import mvit_v2_s

    with torch.device("meta"):
        model = mvit_v2_s().eval()
    text = paramsym.from_torch(model, (16, 224, 224, 3))
    assert "relpos" in text and "residual" in text and "posembed" not in text, text
    got = check(model, (16, 224, 224, 3), text)
    assert got["wrong"] == "" and got["macs"] == got["torch_macs"], got
    assert got["params"] == 34_537_744


@pytest.mark.parametrize("name, shape", [("swin3d_t", (16, 224, 224, 3)), ("mvit_v1_b", (16, 224, 224, 3))])
def test_imported_video_programs_export_to_modules_that_count_the_same(name, shape):
    """The program read from the model, exported again (WindowAttention3d, PoolingAttention, TokenPool,
    SeparablePositionEmbedding), holds the program's parameters and runs its MACs under FlopCounterMode."""
    import torchvision

    with torch.device("meta"):
        model = getattr(torchvision.models.video, name)().eval()
    network = paramsym.parse(paramsym.from_torch(model, shape))
    with torch.device("meta"):
        exported = paramsym.to_torch(network).eval()
    values = network.evaluate()
    x = torch.zeros(1, shape[-1], *shape[:-1], device="meta")
    assert (torch_params(exported), *measured(exported, x)[1:]) == (values["params"], values["macs"], [400])


def test_another_class_of_the_same_name_is_refused_not_crashed():
    """TokenPool and PoolingAttention are claimed by their bare names (an exported file holds its own copies): a
    user's class of that name that is not ours is refused."""

    class TokenPool(nn.Module):  # a user's module that happens to share the name
        def forward(self, x):
            return x

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = TokenPool()

        def forward(self, x):
            return self.pool(x.flatten(2).transpose(1, 2))

    with pytest.raises(paramsym.ParamsymError, match="not paramsym's token pooling module"):
        paramsym.from_torch(Model(), (4, 4, 8))
