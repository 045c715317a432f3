"""A layer's options are its kind's frozen dataclass (a subclass of core.records.Options), built by the kind
from what the program writes: `attn(heads=8, kv_heads=2)` carries heads 8 and kv_heads 2 as attributes
that every reader (counts, explain, both exports) follows by name."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest
import sympy

import paramsym
from paramsym import kinds
from paramsym.core.records import NO_OPTIONS, Options
from paramsym.kinds.activations import ActivationOptions, PReLUOptions
from paramsym.kinds.adaptive import AdaptivePoolingOptions
from paramsym.kinds.attention import AttentionOptions, Pooling
from paramsym.kinds.bilinear_attention import BilinearOptions
from paramsym.kinds.blurpool import BlurPoolOptions
from paramsym.kinds.bottleneck_attention import BottleneckAttentionOptions
from paramsym.kinds.cga import CascadedOptions
from paramsym.kinds.channels import SliceOptions
from paramsym.kinds.class_attention import ClassAttentionOptions
from paramsym.kinds.class_block import ClassBlockOptions
from paramsym.kinds.convolution import StandardisedOptions, TransposedConvolutionOptions
from paramsym.kinds.dense import DenseOptions, RouterOptions, Tie
from paramsym.kinds.eca import EcaOptions
from paramsym.kinds.efficientformer_attention import EfficientFormerV2Options
from paramsym.kinds.evonorm import EvoNormOptions
from paramsym.kinds.fourier_positions import FourierPositionsOptions
from paramsym.kinds.gcvit_stage import GlobalContextStageOptions
from paramsym.kinds.globalcontext import GlobalContextOptions
from paramsym.kinds.halo_attention import HaloAttentionOptions
from paramsym.kinds.lambda_layer import LambdaLayerOptions
from paramsym.kinds.latent_attention import LatentAttentionOptions
from paramsym.kinds.layerscale import SHARED
from paramsym.kinds.levit_attention import OffsetAttentionOptions
from paramsym.kinds.lite_mla import LiteMLAOptions
from paramsym.kinds.normalization import NormalizationOptions
from paramsym.kinds.outlook_attention import OutlookOptions
from paramsym.kinds.pooling import GlobalPoolingOptions, PoolingOptions
from paramsym.kinds.query_pooling import QueryPoolingOptions
from paramsym.kinds.recurrent import RecurrentOptions
from paramsym.kinds.rest import RestOptions
from paramsym.kinds.rmsnorm import RMSNormOptions
from paramsym.kinds.sdpa import SdpaOptions
from paramsym.kinds.separable_attention import SeparableAttentionOptions
from paramsym.kinds.sequence import EmbedOptions, PositionEmbeddingOptions, SelectOptions
from paramsym.kinds.softcap import SoftCapOptions
from paramsym.kinds.space2depth import SpaceToDepthOptions
from paramsym.kinds.talking_heads import TalkingHeadsOptions
from paramsym.kinds.token_pool import TokenPoolOptions
from paramsym.kinds.untokens import UntokensOptions
from paramsym.kinds.upsample import ResizeOptions, UpsampleOptions
from paramsym.kinds.window_position import WindowedPositionOptions
from paramsym.kinds.xca import CrossCovarianceOptions
from paramsym.kinds.zeropad import ZeroPadOptions


def attention(heads, kv_heads, head_dim, **rest):
    fields = dict(source=None, window=None, shift=False, causal=False, rope=False, cpb=None, pad=False, grid=None)
    return AttentionOptions(heads, kv_heads, head_dim, **{**fields, **rest})


# (program, index of the layer, its options)
CASES = [
    ("input(8x8x4) > botattn(->4, heads=2)", 0, BottleneckAttentionOptions(heads=2, head_dim=2)),
    ("input(8x8x4) > haloattn(->4, heads=2, block=4, halo=1)", 0, HaloAttentionOptions(2, 2, 4, 1, stride=1)),
    ("input(8x8x4) > lambdalayer(heads=2, head_dim=2, relpos)", 0, LambdaLayerOptions(2, 2, radius=None)),
    ("input(8x8x4) > bat(groups=2, block=4)", 0, BilinearOptions(groups=2, block=4)),
    ("input(8x8x10) > sdpa(heads=1, head_dim=3)", 0, SdpaOptions(heads=1, head_dim=3)),
    ("input(64x32) > xca(heads=4, bias)", 0, CrossCovarianceOptions(heads=4)),
    (
        "input(9x32) > mla(heads=2, kv_rank=8, rope_dim=4, nope_dim=6, v_dim=5, q_rank=12)",
        0,
        LatentAttentionOptions(heads=2, kv_rank=8, rope_dim=4, nope_dim=6, v_dim=5, q_rank=12),
    ),
    (
        "input(9x32) > mla(heads=2, kv_rank=8, rope_dim=4, nope_dim=6, v_dim=5)",
        0,
        LatentAttentionOptions(2, 8, 4, 6, 5),
    ),
    ("input(64x32) > clsattn(heads=4, bias)", 0, ClassAttentionOptions(heads=4)),
    ("input(64x32) > talkattn(heads=4, bias)", 0, TalkingHeadsOptions(heads=4)),
    ("input(8x8x32) > outlook(heads=4, kernel=3, stride=2)", 0, OutlookOptions(heads=4, kernel=3, stride=2)),
    ("input(65x32) > clsblock(heads=4)", 0, ClassBlockOptions(heads=4, hidden=128, xcit=False, tokens_norm=False)),
    (
        "input(65x32) > clsblock(heads=2, hidden=64, xcit, tokensnorm)",
        0,
        ClassBlockOptions(heads=2, hidden=64, xcit=True, tokens_norm=True),
    ),
    ("input(56x32) > fourierpos(7x8, hidden=16)", 0, FourierPositionsOptions(grid=(7, 8), hidden=16)),
    ("input(8x8x16) > gc(4)", 0, GlobalContextOptions(reduced=4, attention=True, add=False, act="relu")),
    ("input(8x8x16) > gc(4, mean, additive, silu)", 0, GlobalContextOptions(4, attention=False, add=True, act="silu")),
    ("input(3x3x4) > resize(7x7, bicubic)", 0, ResizeOptions(mode="bicubic")),
    ("input(8x8x4) > blurpool(3, stride=2, zeros)", 0, BlurPoolOptions(reflect=False)),
    ("input(8x8x16) > evonorm(groups=4, noact)", 0, EvoNormOptions(groups=4, act=False)),
    ("input(16x64) > attn(heads=8, kv_heads=2)", 0, attention(8, 2, 8)),
    ("input(16x64) > attn(heads=8)", 0, attention(8, 8, 8)),
    ("input(16x64) > attn(heads=8, sr=2, map=4x4)", 0, attention(8, 8, 8, sr=2, sr_map=(4, 4))),
    ("input(16x64) > attn(heads=4, head_dim=32, rope, causal)", 0, attention(4, 4, 32, rope=True, causal=True)),
    ("input(16x64) > attn(heads=4, source=77x768)", 0, attention(4, 4, 16, source=(77, 768))),
    (
        "input(8x8x16) > attn(heads=2, window=4, shift, cpb=8, pad, bias)",
        0,
        attention(2, 2, 8, window=4, shift=True, cpb=8, pad=True),
    ),
    ("input(14x14x16) > attn(heads=2, grid=7, bias)", 0, attention(2, 2, 8, grid=7)),
    ("input(8x14x14x16) > attn(heads=2, window=8x7x7, shift)", 0, attention(2, 2, 8, shift=True, volume=(8, 7, 7))),
    (
        "input(37x16) > attn(heads=2, bias, volume=4x3x3, cls, kv=3x3x3, kv_stride=1x2x2)",
        0,
        attention(2, 2, 8, pooling=Pooling((4, 3, 3), None, (1, 1, 1), (3, 3, 3), (1, 2, 2), True, False, False, None)),
    ),
    (
        "input(16x16) > attn(heads=2, out=32, volume=4x4, q=3x3, q_stride=2x2, relpos, residual)",
        0,
        attention(2, 2, 16, pooling=Pooling((4, 4), (3, 3), (2, 2), None, (1, 1), False, True, True, 32)),
    ),
    (
        "input(37x16) > tokenpool(volume=4x3x3, kernel=1x3x3, stride=1x2x2, pad=0x1x1, cls)",
        0,
        TokenPoolOptions((4, 3, 3), (1, 3, 3), (1, 2, 2), (0, 1, 1), True),
    ),
    ("input(8x8x16) > attn(heads=2, window=4, relpos=axes)", 0, attention(2, 2, 8, window=4, relpos="axes")),
    ("input(16x64) > attn(heads=4, channels)", 0, attention(4, 4, 16, channels=True)),
    (
        "input(16x64) > attn(heads=4, kv_heads=2, window=8, softcap=50, causal)",
        0,
        attention(4, 2, 16, causal=True, slide=8, softcap=50),
    ),
    (
        "input(8x8x16) > cga(heads=2, key_dim=4, value_dim=8, window=4, kernels=3x5)",
        0,
        CascadedOptions(2, 4, 8, 4, (3, 5), False),
    ),
    ("input(16x16x8) > qpoolattn(heads=2, ->16, window=8, stride=2, bias)", 0, QueryPoolingOptions(2, 8, 2, False)),
    ("input(10x10x8) > qpoolattn(heads=2, window=4, pad)", 0, QueryPoolingOptions(2, 4, 1, True)),
    ("input(16x16x8) > qpoolattn(heads=1, stride=2)", 0, QueryPoolingOptions(1, None, 2, False)),
    ("input(16x16x8) > winposembed(7x5, window=8)", 0, WindowedPositionOptions((7, 5), 8)),
    ("input(16x16x8) > sepattn(patch=2, bias)", 0, SeparableAttentionOptions(2)),
    (
        "input(16x8) > levitattn(->12, heads=2, key_dim=4, value_dim=8, map=4x4, stride=2, bn, act=hardswish)",
        0,
        OffsetAttentionOptions(2, 4, 8, 4, 4, 2, True, "hardswish", True),
    ),
    ("input(28x28x8) > gcstage(depth=2, heads=2, window=7, mlp=3)", 0, GlobalContextStageOptions(2, 2, 7, 3, 28, 28)),
    (
        "input(14x14x8) > gcstage(depth=1, heads=2, window=7, ls)",
        0,
        GlobalContextStageOptions(1, 2, 7, 4, 14, 14, True),
    ),
    (
        "input(7x7x8) > levitattn(heads=2, key_dim=4, value_dim=8, bias)",
        0,
        OffsetAttentionOptions(2, 4, 8, 7, 7, 1, False, None, False),
    ),
    (
        "input(8x8x8) > ef2attn(heads=2, key_dim=4, value_dim=8, stride=2)",
        0,
        EfficientFormerV2Options(2, 4, 8, 2, False),
    ),
    (
        "input(8x8x8) > ef2attn(->16, heads=2, key_dim=4, value_dim=8, down)",
        0,
        EfficientFormerV2Options(2, 4, 8, 2, True),
    ),
    ("input(8x8x8) > litemla(heads=2, head_dim=4, bn)", 0, LiteMLAOptions(2, 4, (5,), False, True)),
    (
        "input(8x8x8) > litemla(->16, heads=2, head_dim=4, scales=3x5, qkv_bn)",
        0,
        LiteMLAOptions(2, 4, (3, 5), True, False),
    ),
    ("input(16x16x8) > sepattn", 0, SeparableAttentionOptions(1)),
    ("input(16) > embed(100->32) as wte > dense(->100, tie=wte)", 1, DenseOptions(Tie("wte", 0))),
    ("input(16) > embed(100->32) > dense(->100)", 1, DenseOptions(None)),
    ("input(6x16) > moe(dense(->16), experts=4, top=2, score_bias)", 0, RouterOptions(score_bias=True)),
    ("input(6x16) > moe(dense(->16), experts=4, top=2)", 0, RouterOptions(score_bias=False)),
    ("input(16) > embed(100->32) as e > ln > input(8) > embed(100->32, tie=e)", 2, EmbedOptions(Tie("e", 0))),
    ("input(16) > embed(100->32) > dense(->100)", 0, NO_OPTIONS),
    ("input(32x32x3) > maxpool3x3(stride=2, ceil)", 0, PoolingOptions("max", True)),
    ("input(32x32x3) > avgpool2x2", 0, PoolingOptions("avg", False)),
    ("input(32x32x3) > gap", 0, GlobalPoolingOptions("avg")),
    ("input(32x32x3) > gmp", 0, GlobalPoolingOptions("max")),
    ("input(16x16x8) > adaptiveavgpool(7)", 0, AdaptivePoolingOptions("avg")),
    ("input(16x16x8) > bn", 0, NormalizationOptions(affine=True, shift=True, groups=None)),
    ("input(16x16x8) > ln(nobias)", 0, NormalizationOptions(affine=True, shift=False)),
    ("input(16x16x8) > gn(groups=4, noaffine)", 0, NormalizationOptions(affine=False, groups=4)),
    ("input(16x8) > rmsnorm(noaffine)", 0, RMSNormOptions(affine=False)),
    ("input(16x8) > rmsnorm", 0, RMSNormOptions(affine=True)),
    ("input(16x16x8) > prelu(shared)", 0, PReLUOptions(shared=True)),
    ("input(16x16x8) > dropout(0.5)", 0, ActivationOptions(sympy.Rational(1, 2))),
    ("input(16x16x8) > relu", 0, ActivationOptions(None)),
    ("input(16x16x8) > droppath(0.1)", 0, ActivationOptions(sympy.Rational(1, 10))),
    ("input(16x16x8) > slice(2, 6)", 0, SliceOptions(start=2, end=6)),
    ("input(16x16x8) > space2depth(2)", 0, SpaceToDepthOptions(block=2)),
    ("input(8x6x6x4) > tokens > cls > posembed(8x36, cls)", 2, PositionEmbeddingOptions(45, (8, 36), True)),
    ("input(16x16x8) > upsample(2x3, bilinear)", 0, UpsampleOptions(factors=(2, 3), mode="bilinear")),
    ("input(24x8) > untokens(2x3x4)", 0, UntokensOptions(sizes=(2, 3, 4))),
    ("input(16x16x8) > zeropad(0, 1, -1, 2)", 0, ZeroPadOptions(pads=((0, 1), (-1, 2)))),
    ("input(16x16x8) > gap > eca(5)", 1, EcaOptions(kernel=5)),
    ("input(16x16x8) > conv3x3(->8, std, gain)", 0, StandardisedOptions(True)),
    ("input(16x16x8) > scale(shared)", 0, SHARED),
    ("input(16x16x8) > deconv4x4(->3, stride=2, pad=1, outpad=1)", 0, TransposedConvolutionOptions(outpad=(1, 1))),
    ("input(16x16x8) > conv3x3(->3)", 0, NO_OPTIONS),
    (
        "input(20x16) > lstm(->32, layers=2, bidirectional, proj=8, last)",
        0,
        RecurrentOptions(hidden=32, layers=2, directions=2, proj=8, last=True),
    ),
    ("input(20x16) > gru(->32)", 0, RecurrentOptions(hidden=32, layers=1, directions=1, proj=None, last=False)),
    (
        "input(6x5x16) > lstm(->8, rows)",
        0,
        RecurrentOptions(hidden=8, layers=1, directions=1, proj=None, last=False, along="rows"),
    ),
    ("input(8x8x16) > posembed(64)", 0, PositionEmbeddingOptions(64)),
    ("input(20x16) > posembed(30)", 0, PositionEmbeddingOptions(size=30)),
    (
        "input(20x16) > posembed(3x3, resize=4x5, bilinear, antialias)",
        0,
        PositionEmbeddingOptions(9, resize=(4, 5), table=(3, 3), mode="bilinear", antialias=True),
    ),
    ("input(20x16) > last", 0, SelectOptions("last")),
    ("input(20x16) > rest(4)", 0, RestOptions(4)),
    ("input(20x16) > softcap(30)", 0, SoftCapOptions(30)),
    ("input(20x16) > rest", 0, RestOptions(1)),
    ("input(20x16) > prefix(3)", 0, RestOptions(3)),
]


@pytest.mark.parametrize(("program", "index", "expected"), CASES)
def test_options_carry_the_values_written(program, index, expected):
    options = paramsym.parse(program).layers[index].layer.options
    assert type(options) is type(expected)
    assert options == expected


def _option_classes() -> set[type]:
    """Every Options subclass that a module of paramsym.kinds declares."""
    classes = set()
    for module in pkgutil.iter_modules(kinds.__path__):
        found = importlib.import_module(f"{kinds.__name__}.{module.name}")
        classes |= {c for _, c in inspect.getmembers(found, inspect.isclass) if issubclass(c, Options)}
    return classes - {Options}


def test_every_kinds_options_are_a_frozen_dataclass_and_the_table_covers_them():
    classes = _option_classes()
    assert classes, "no option classes found in paramsym.kinds"
    for cls in classes | {Options, Tie}:
        assert dataclasses.is_dataclass(cls), cls
        assert cls.__dataclass_params__.frozen, f"{cls.__name__} is not frozen"
    assert classes <= {type(expected) for _, _, expected in CASES}, "a kind's options have no case in CASES"


@pytest.mark.parametrize("program", sorted({program for program, _, _ in CASES}))
def test_a_layers_options_cannot_be_changed(program):
    for lc in paramsym.parse(program).layers:
        options = lc.layer.options
        assert isinstance(options, Options)
        names = [f.name for f in dataclasses.fields(options)] or ["anything"]
        for name in names:
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(options, name, 1)


def test_a_kind_reads_only_its_own_options():
    dense = paramsym.parse("input(16x64) > dense(->8)").layers[0].layer
    assert DenseOptions.of(dense) == DenseOptions(None)
    with pytest.raises(TypeError, match="DenseOptions, not AttentionOptions"):
        AttentionOptions.of(dense)
