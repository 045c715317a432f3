"""MetaFormers and MLP mixers (docs/language.md, Differences and token mixing): `sub(A | B)`, `starrelu`,
`squaredrelu`, `transpose`, `untokens(HxW)`, ResMLP's Affine as `scale(bias)` and a division by a number, checked
against the real torch and timm modules (parameters, buffers, output shape, FlopCounterMode MACs), through export
and import, and the timm models that need them (PoolFormer, PoolFormer v2, ConvFormer, CAFormer, FastViT, MLP-Mixer,
gMixer, gMLP, ResMLP, RepViT) imported exactly at several input sizes."""

from __future__ import annotations

import warnings

import pytest
import torch
from timm.models import metaformer, mlp_mixer
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params, torch_run, torch_state
from helpers.import_check import differences, program_counts, torch_counts
from paramsym.render.explain import explain


class Difference(nn.Module):
    """a(x) - b(x), as PoolFormer's Pooling (pool(x) - x) and FastViT's RepMixer (mixer(x) - norm(x)) compute."""

    def __init__(self, a: nn.Module, b: nn.Module):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return self.a(x) - self.b(x)


class TokenMixing(nn.Module):
    """MLP-Mixer's token mixing on (N, T, C): x.transpose(1, 2) > Linear(T, h) > GELU > Linear(h, T) > transpose."""

    def __init__(self, tokens: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(tokens, hidden), nn.GELU(), nn.Linear(hidden, tokens)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x.transpose(1, 2)))).transpose(1, 2)


class Transposed(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)


class ToMap(nn.Module):
    """(N, T, C) -> (N, H, W, C): the positions of a sequence as a map, row by row."""

    def __init__(self, *sizes: int):
        super().__init__()
        self.sizes = sizes

    def forward(self, x):
        return x.reshape(x.shape[0], *self.sizes, x.shape[-1])


# (program, the real module, its layout: "cf" (N, C, ...) or "cl" (N, ..., C), output shape channels last)
CASES = [
    ("input(8x8x16) > sub(avgpool3x3(stride=1, pad=1) | id)", metaformer.Pooling(3), "cf", [8, 8, 16]),
    ("input(7x9x4) > sub(avgpool5x5(stride=1, pad=2) | id)", metaformer.Pooling(5), "cf", [7, 9, 4]),
    (
        "input(10x12x8) > sub(conv3x3(->6, pad=1, bias) | conv1x1(->6))",
        Difference(nn.Conv2d(8, 6, 3, padding=1), nn.Conv2d(8, 6, 1, bias=False)),
        "cf",
        [10, 12, 6],
    ),
    (
        "input(6x6x8) > sub(id | conv3x3(->8, pad=1, groups=8) > bn)",
        Difference(
            nn.Identity(), nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8))
        ),
        "cf",
        [6, 6, 8],
    ),
    (
        "input(16x32) > sub(dense(->32, bias) | id)",
        Difference(nn.Linear(32, 32), nn.Identity()),
        "cl",
        [16, 32],
    ),
    ("input(8x8x16) > starrelu", metaformer.StarReLU(), "cf", [8, 8, 16]),
    ("input(20x5) > starrelu", metaformer.StarReLU(), "cl", [20, 5]),
    ("input(8x8x16) > squaredrelu", metaformer.SquaredReLU(), "cf", [8, 8, 16]),
    ("input(49x32) > transpose", Transposed(), "cl", [32, 49]),
    (
        "input(49x32) > transpose > dense(->64, bias) > gelu > dense(->49, bias) > transpose",
        TokenMixing(49, 64),
        "cl",
        [49, 32],
    ),
    (
        "input(49x64) > mul(slice(0, 32) | slice(32, 64) > ln > transpose > dense(->49, bias) > transpose)",
        mlp_mixer.SpatialGatingUnit(64, 49),
        "cl",
        [49, 32],
    ),
    ("input(49x32) > scale(bias)", mlp_mixer.Affine(32), "cl", [49, 32]),
    ("input(16x24) > untokens(4x4)", ToMap(4, 4), "cl", [4, 4, 24]),
    ("input(12x5) > untokens(3x4)", ToMap(3, 4), "cl", [3, 4, 5]),
    ("input(24x5) > untokens(2x3x4)", ToMap(2, 3, 4), "cl", [2, 3, 4, 5]),
]


@pytest.mark.parametrize("program, module, layout, shape", CASES, ids=[c[0] for c in CASES])
def test_counts_match_the_real_module(program, module, layout, shape):
    net = paramsym.parse(program)
    out, macs = torch_run(module, [int(d) for d in net.input_shape.dims()], layout)
    values = net.evaluate()
    assert (values["params"], values["state"], values["macs"]) == (torch_params(module), torch_state(module), macs)
    assert [int(d) for d in net.output_shape.dims()] == shape == out


@pytest.mark.parametrize("program", [c[0] for c in CASES])
def test_export_and_import_back(program):
    net = paramsym.parse(program)
    module = paramsym.to_torch(net)
    assert sum(p.numel() for p in module.parameters()) == net.value(net.params)
    back = paramsym.parse(paramsym.from_torch(module, tuple(int(d) for d in net.input_shape.dims())))
    assert back.evaluate() == net.evaluate()
    assert back.output_shape.dims() == net.output_shape.dims()


def test_the_exported_modules_compute_what_torch_does():
    x = torch.randn(2, 6, 10)  # a sequence (N, d, T), as the export keeps it
    transposed = paramsym.to_torch(paramsym.parse("input(10x6) > transpose"))
    assert torch.equal(transposed(x), x.transpose(1, 2))
    mapped = paramsym.to_torch(paramsym.parse("input(10x6) > untokens(2x5)"))
    assert torch.equal(mapped(x), x.reshape(2, 6, 2, 5))
    star = paramsym.to_torch(paramsym.parse("input(10x6) > starrelu"))
    assert torch.allclose(star(x), metaformer.StarReLU()(x))
    squared = paramsym.to_torch(paramsym.parse("input(10x6) > squaredrelu"))
    assert torch.allclose(squared(x), metaformer.SquaredReLU()(x))
    y = torch.randn(2, 4, 5, 5)
    difference = paramsym.to_torch(paramsym.parse("input(5x5x4) > sub(id | relu)"))
    assert torch.equal(difference(y), y - torch.relu(y))


def test_symbolic_formulas():
    mixing = paramsym.parse("input(T x d) > transpose > dense(->h, bias) > gelu > dense(->T, bias) > transpose")
    assert [str(s) for s in mixing.output_shape.dims()] == ["T", "d"]
    assert str(mixing.params) == "2*T*h + T + h"
    assert str(mixing.macs) == "2*T*d*h"
    pooling = paramsym.parse("input(H x W x C) > sub(avgpool3x3(stride=1, pad=1) | id)")
    assert pooling.params == 0 and pooling.macs == 0
    mixer = paramsym.parse("input(H x W x C) > sub(conv1x1(->C) | id)")
    assert str(mixer.params) == "C**2"
    star = paramsym.parse("input(H x W x C) > starrelu > squaredrelu")
    assert star.params == 2 and star.macs == 0
    net = paramsym.parse("input(T x C) > untokens(H x W)")
    assert net.evaluate(T=12, H=3, W=4)["params"] == 0
    with pytest.raises(paramsym.ParamsymError, match="multiply to the length of the sequence"):
        net.evaluate(T=12, H=3, W=5)


def test_pytorch_counts_no_macs_for_the_element_wise_parts():
    x = torch.zeros(1, 4, 8, 8)
    with FlopCounterMode(display=False) as counter:
        metaformer.Pooling(3)(x)
        metaformer.StarReLU()(x)
        metaformer.SquaredReLU()(x)
        mlp_mixer.Affine(8)(x)
        _ = (x + x) / 2
    assert counter.get_total_flops() == 0


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(8x8x3) > sub(id | conv1x1(->4))", r"sub\(\.\.\.\): what is subtracted gives 8 x 8 x 4"),
        ("input(8x8x3) > sub(id | relu | relu)", "Unexpected|expected"),
        ("input(8x8x3) > sub(id)", "Unexpected|expected"),
        ("input(8x8x3) > transpose", "transpose swaps the positions and channels of a sequence"),
        ("input(64) > transpose", "but its input is the vector 64"),
        ("input(8x8x3) > untokens(4x16)", "untokens makes the positions of a sequence"),
        ("input(16x3) > untokens(4x5)", r"untokens\(4x5\) makes a map of 20 positions, but the sequence has 16"),
        ("input(16x3) > untokens(16)", "untokens makes a map of 2 or 3 spatial axes"),
        ("input(16x3) > untokens", "untokens needs the sizes of the map"),
        ("input(8x8x3) > starrelu(2)", "starrelu"),
        ("input(8x8x3) > starelu", "did you mean 'starrelu'"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words):
        paramsym.parse(program)


def test_sub_is_a_reserved_word():
    with pytest.raises(paramsym.ParamsymError, match="unexpected 'sub'"):
        paramsym.parse("let sub = 3\ninput(8x8x3) > conv1x1(->sub)")


def test_what_pytorch_refuses_paramsym_refuses():
    with pytest.raises(RuntimeError):
        ToMap(4, 5)(torch.zeros(1, 16, 3))
    with pytest.raises(paramsym.ParamsymError):
        paramsym.parse("input(16x3) > untokens(4x5)")
    with pytest.raises(RuntimeError):
        Difference(nn.Identity(), nn.Conv2d(3, 4, 1))(torch.zeros(1, 3, 8, 8))
    with pytest.raises(paramsym.ParamsymError):
        paramsym.parse("input(8x8x3) > sub(id | conv1x1(->4))")


def test_explain_and_keras_refusals():
    text = explain(paramsym.parse("input(49x32) > transpose > dense(->49) > transpose > starrelu"))
    assert "positions and channels" in text and "2 parameters" in text
    with pytest.raises(paramsym.ParamsymError, match="no Keras equivalent"):
        paramsym.to_keras(paramsym.parse("input(8x8x3) > starrelu"))


# ---- the timm models, built on the meta device, at several input sizes


def _model(name: str, **kwargs):
    import timm

    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return timm.create_model(name, pretrained=False, **kwargs).eval()


def _exact(model, shape) -> str:
    text = paramsym.from_torch(model, shape)
    theirs = torch_counts(model, shape)
    ours = program_counts(text)
    assert differences(ours, theirs) == []
    assert ours[3] == theirs.macs
    return text


@pytest.mark.parametrize(
    "name, kwargs, shape, words",
    [
        ("poolformer_s12", {"num_classes": 10}, (64, 64, 3), "sub(avgpool3x3(stride=1, pad=1) | id)"),
        ("poolformerv2_s12", {"num_classes": 10}, (96, 64, 3), "starrelu"),
        ("convformer_s18", {"num_classes": 10}, (64, 64, 3), "starrelu"),
        ("caformer_s18", {"num_classes": 10}, (64, 96, 3), "untokens(2x3)"),
        ("fastvit_t8", {"num_classes": 10}, (128, 128, 3), "sub(res("),
        ("mixer_s16_224", {"img_size": 64, "num_classes": 10}, (64, 64, 3), "transpose > dense(->256, bias)"),
        ("gmixer_12_224", {"img_size": 96, "num_classes": 10}, (96, 96, 3), "transpose"),
        ("gmlp_s16_224", {"img_size": 64, "num_classes": 10}, (64, 64, 3), "> transpose\n"),
        ("resmlp_12_224", {"img_size": 64, "num_classes": 10}, (64, 64, 3), "scale(bias) > transpose"),
        ("repvit_m1", {"num_classes": 10}, (128, 128, 3), "dense(->10"),
    ],
)
def test_timm_models_import_exactly(name, kwargs, shape, words):
    text = _exact(_model(name, **kwargs), shape)
    assert words in text


def test_a_square_sequence_keeps_its_axes_apart():
    # T == C: the layouts alone tell which axis a Linear, a sum and a factor act on
    with torch.device("meta"):
        model = mlp_mixer.MlpMixer(img_size=112, patch_size=16, num_blocks=2, embed_dim=49, num_classes=10).eval()
    assert (112 // 16) ** 2 == 49
    text = _exact(model, (112, 112, 3))
    assert "ln > transpose > dense(->24, bias) > gelu > dropout(0) > dense(->49, bias)" in " ".join(text.split())


def test_layer_scale_on_channels_last_is_per_channel():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1)
            self.fc = nn.Linear(6, 6)
            self.gamma = nn.Parameter(torch.ones(6))

        def forward(self, x):
            x = self.conv(x)
            y = self.gamma * self.fc(x.permute(0, 2, 3, 1))  # EdgeNeXt's gamma on (N, H, W, C)
            return x + y.permute(0, 3, 1, 2)

    text = _exact(Block(), (8, 8, 3))
    assert "scale" in text


def test_a_factor_along_the_width_is_not_a_layer_scale_when_the_width_equals_the_channels():
    # a (C,) factor on (N, C, H, W) broadcasts along W; with W == C the sizes alone would pass it as per channel
    class AlongWidth(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1)
            self.gamma = nn.Parameter(torch.ones(6))

        def forward(self, x):
            return self.gamma * self.conv(x)

    with pytest.raises(paramsym.ParamsymError, match="neither one factor per channel"):
        paramsym.from_torch(AlongWidth(), (5, 6, 3))


def test_a_distillation_head_average_is_read_as_its_two_heads():
    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.head, self.head_dist = nn.Linear(8, 4), nn.Linear(8, 4)

        def forward(self, x):
            x = x.mean((2, 3))
            return (self.head(x) + self.head_dist(x)) / 2

    text = _exact(Heads(), (5, 5, 8))
    assert "res(dense(8->4, bias) | dense(8->4, bias))" in text


def test_a_number_divided_by_a_value_is_refused():
    class Reciprocal(nn.Module):
        def forward(self, x):
            return 1 / x

    with pytest.raises(paramsym.ParamsymError, match="'/'"):
        paramsym.from_torch(Reciprocal(), (4, 4, 3))
