"""The layer kinds of LANGUAGE.md section 8 (issue 11): scale, slice, shuffle, space2depth, droppath,
adaptiveavgpool/adaptivemaxpool. Counts and shapes against PyTorch's own modules and torchvision's
blocks (ConvNeXt's CNBlock, ShuffleNetV2's InvertedResidual, Swin's PatchMerging), the exported modules
computing the same function, Keras, import, and the mistakes with their positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.convnext import CNBlock
from torchvision.models.shufflenetv2 import InvertedResidual
from torchvision.models.swin_transformer import PatchMerging
from torchvision.ops import StochasticDepth

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch before keras)
from helpers.cli_helpers import run
from helpers.frameworks import torch_params, torch_run, torch_state
from helpers.round_trip import import_back, randomize_and_copy


class Scale(nn.Module):  # a per-channel factor as ConvNeXt writes it: gamma of shape (C, 1, 1)
    def __init__(self, channels, rank):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels, *[1] * rank))

    def forward(self, x):
        return x * self.gamma


class Slice(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return x[:, self.a : self.b]


# (program, the reference PyTorch module, channels first)
CASES = [
    ("input(6x6x4) > scale", lambda: Scale(4, 2)),
    ("input(9x5) > scale", lambda: Scale(5, 1)),
    ("input(3x4x5x6) > scale", lambda: Scale(6, 3)),
    ("input(6x6x8) > slice(2, 7)", lambda: Slice(2, 7)),
    ("input(9x5) > slice(0, 5)", lambda: Slice(0, 5)),
    ("input(10) > slice(3, 4)", lambda: Slice(3, 4)),
    ("input(6x6x8) > shuffle(4)", lambda: nn.ChannelShuffle(4)),
    ("input(7x6) > shuffle(3)", lambda: nn.ChannelShuffle(3)),
    ("input(2x4x6x6) > shuffle(2)", lambda: nn.ChannelShuffle(2)),
    ("input(8x6x5) > space2depth(2)", lambda: nn.PixelUnshuffle(2)),
    ("input(9x3x2) > space2depth(3)", lambda: nn.PixelUnshuffle(3)),
    ("input(4x4x3) > space2depth(1)", lambda: nn.PixelUnshuffle(1)),
    ("input(6x6x4) > droppath(0.1)", lambda: StochasticDepth(0.1, "row")),
    ("input(9x5) > droppath(1)", lambda: StochasticDepth(1.0, "row")),
    ("input(5x7x3) > adaptiveavgpool(3x2)", lambda: nn.AdaptiveAvgPool2d((3, 2))),
    ("input(4x9x3) > adaptivemaxpool(6)", lambda: nn.AdaptiveMaxPool2d(6)),
    ("input(7x2) > adaptiveavgpool(3)", lambda: nn.AdaptiveAvgPool1d(3)),
    ("input(4x5x6x2) > adaptivemaxpool(2x3x4)", lambda: nn.AdaptiveMaxPool3d((2, 3, 4))),
    ("input(8x8x3) > adaptiveavgpool(1)", lambda: nn.AdaptiveAvgPool2d(1)),
]


def _forward(module, net):
    dims = [int(d) for d in net.input_shape.dims()]
    return torch_run(module, dims, "cf")


@pytest.mark.parametrize("program, reference", CASES, ids=[c[0] for c in CASES])
def test_counts_and_shapes_match_pytorch(program, reference):
    net = paramsym.parse(program)
    module = reference()
    shape, macs = _forward(module, net)
    counts = net.evaluate()
    assert counts["params"] == torch_params(module) and counts["state"] == torch_state(module)
    assert counts["macs"] == macs
    assert [int(d) for d in net.output_shape.dims()] == shape
    exported = paramsym.to_torch(net)  # the exported module: the same counts and shape in a real forward pass
    assert torch_params(exported) == counts["params"]
    assert _forward(exported, net) == (shape, macs)


# space2depth follows Swin's channel order, not PixelUnshuffle's: test_swin_patch_merging_is_space2depth_ln_dense
SAME_FUNCTION = [c for c in CASES if "space2depth" not in c[0]]


@pytest.mark.parametrize("program, reference", SAME_FUNCTION, ids=[c[0] for c in SAME_FUNCTION])
def test_the_exported_module_computes_the_same_function(program, reference):
    net = paramsym.parse(program)
    dims = [int(d) for d in net.input_shape.dims()]
    x = torch.randn(2, dims[-1], *dims[:-1])
    module, exported = reference().eval(), paramsym.to_torch(net).eval()
    randomize_and_copy(module.parameters(), exported.parameters())
    with torch.no_grad():
        assert torch.allclose(module(x), exported(x))


# ---- LANGUAGE.md section 8.1 and torchvision's blocks ------------------------------------------


def _macs(module, x):
    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(x)
    return y, counter.get_total_flops() // 2


def test_convnext_block_is_torchvisions_cnblock():
    program = (
        "input(56x56x96) > res(dwconv7x7(pad=3, bias) > ln > dense(->384, bias) > gelu > dense(->96, bias) "
        "> scale > droppath(0.1))"
    )
    net = paramsym.parse(program)
    block = CNBlock(96, layer_scale=1e-6, stochastic_depth_prob=0.1)
    x = torch.randn(1, 96, 56, 56)
    y, macs = _macs(block, x)
    assert net.evaluate()["params"] == torch_params(block) == 79296  # LANGUAGE.md 8.1
    assert net.evaluate()["macs"] == macs
    assert [int(d) for d in net.output_shape.dims()] == [*y.shape[2:], y.shape[1]]
    exported = paramsym.to_torch(net).eval()
    theirs = [
        block.block[0].weight,
        block.block[0].bias,
        block.block[2].weight,
        block.block[2].bias,
        block.block[3].weight,
        block.block[3].bias,
        block.block[5].weight,
        block.block[5].bias,
        block.layer_scale,
    ]
    randomize_and_copy(theirs, exported.parameters())
    with torch.no_grad():
        exported[0].main[2].module.eps = 1e-6  # ConvNeXt's LayerNorm eps (counted nowhere)
        assert torch.allclose(block(x), exported(x), rtol=1e-4, atol=1e-3)
    assert paramsym.parse(program.replace(" > droppath(0.1)", "")).evaluate()["params"] == 79296


def test_shufflenet_unit_is_torchvisions_inverted_residual():
    program = (
        "input(14x14x64) > concat(slice(0, 32) | slice(32, 64) > conv1x1(->32) > bn > relu > dwconv3x3(pad=1) "
        "> bn > conv1x1(->32) > bn > relu) > shuffle(2)"
    )
    net = paramsym.parse(program)
    unit = InvertedResidual(64, 64, 1)
    x = torch.randn(1, 64, 14, 14)
    _y, macs = _macs(unit, x)
    counts = net.evaluate()
    assert (counts["params"], counts["state"], counts["macs"]) == (torch_params(unit), torch_state(unit), macs)
    exported = paramsym.to_torch(net).eval()
    with torch.no_grad():
        for _name, value in unit.state_dict().items():
            if value.is_floating_point():
                value.copy_(torch.rand_like(value) + 0.5)
        for theirs, ours in zip(unit.state_dict().values(), exported.state_dict().values()):
            ours.copy_(theirs)
        assert torch.allclose(unit(x), exported(x), atol=1e-5)


def test_the_shufflenet_example_of_section_8_1():
    net = paramsym.parse("input(14x14x64) > concat(slice(0, 32) | slice(32, 64) > conv1x1(->32) > bn) > shuffle(2)")
    module = paramsym.to_torch(net)
    shape, _ = _forward(module, net)
    assert (net.evaluate()["params"], net.evaluate()["state"]) == (torch_params(module), torch_state(module))
    assert (torch_params(module), torch_state(module), shape) == (1088, 64, [14, 14, 64])


def test_swin_patch_merging_is_space2depth_ln_dense():
    net = paramsym.parse("input(56x56x96) > space2depth(2) > ln > dense(->192)")
    merging = PatchMerging(96)
    x = torch.randn(1, 56, 56, 96)  # PatchMerging is channels last
    y, macs = _macs(merging, x)
    assert net.evaluate()["params"] == torch_params(merging) == 74496  # LANGUAGE.md 8.1
    assert net.evaluate()["macs"] == macs
    assert [int(d) for d in net.output_shape.dims()] == list(y.shape[1:]) == [28, 28, 192]
    exported = paramsym.to_torch(net).eval()
    randomize_and_copy([merging.norm.weight, merging.norm.bias, merging.reduction.weight], exported.parameters())
    with torch.no_grad():
        # Swin's channel order: the exported module is the same function, not only the same counts
        assert torch.allclose(merging(x), exported(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1), atol=1e-4)


def test_the_window_attention_example_of_section_8_1():
    assert paramsym.parse("input(56x56x96) > res(ln > attn(heads=3, bias, window=7))").params == 37947


# ---- symbols --------------------------------------------------------------------------------


def test_symbolic_sizes_wait_for_their_values():
    net = paramsym.parse("input(H x W x C) > slice(0, C/4) > shuffle(G) > space2depth(B) > scale")
    assert str(net.params) == "B**2*C/4"
    assert net.evaluate(H=8, W=6, C=8, G=2, B=2)["params"] == 8
    for values, words in [
        (dict(H=8, W=6, C=6, G=1, B=2), "with C=6"),
        (dict(H=8, W=6, C=8, G=3, B=2), "G=3"),
        (dict(H=8, W=6, C=8, G=2, B=4), "W=6"),
    ]:
        with pytest.raises(paramsym.ParamsymError, match=words):
            net.evaluate(**values)


def test_slice_end_past_the_channels_waits_for_the_symbol():
    net = paramsym.parse("input(4 x 4 x C) > slice(2, 6)")
    assert net.evaluate(C=6)["params"] == 0
    with pytest.raises(paramsym.ParamsymError, match="must end within"):
        net.evaluate(C=5)


@pytest.mark.parametrize("n, s", [(5, 3), (7, 3), (10, 4), (6, 3), (4, 7), (13, 5)])
def test_adaptive_fan_in_and_connections_are_the_windows_pytorch_uses(n, s):
    starts = [(i * n) // s for i in range(s)]
    ends = [-(-(i + 1) * n // s) for i in range(s)]  # PyTorch's adaptive windows, start and end
    sizes = [e - b for b, e in zip(starts, ends)]
    net = paramsym.parse(f"input({n}x3) > adaptiveavgpool({s})")
    layer = net.layers[0]
    assert layer.fan_in == max(sizes) and layer.connections == 3 * sum(sizes)
    symbolic = paramsym.parse("input(n x 3) > adaptivemaxpool(S)")
    values = {x: {"n": n, "S": s}[x.name] for x in symbolic.layers[0].fan_in.free_symbols}
    assert symbolic.layers[0].fan_in.subs(values) == max(sizes)


# ---- mistakes, with where they are ---------------------------------------------------------


@pytest.mark.parametrize(
    "program, words, column",
    [
        ("input(8x8x6) > slice(2, 7)", "slice(2, 7) goes past the 6 channels of its input", 25),
        ("input(8x8x6) > slice(3, 3)", "slice(3, 3) keeps no channel: a must be less than b", 25),
        ("input(8x8x6) > slice(-1, 3)", "the first channel must be a whole number of at least 0, not -1", 22),
        ("input(8x8x6) > slice(1.5, 3)", "the first channel must be a whole number", 22),
        ("input(8x8x6) > slice(3)", "slice takes two values", 16),
        ("input(8x8x6) > shuffle(4)", "shuffle(4): 4 groups do not divide the 6 channels", 24),
        ("input(8x8x6) > shuffle(0)", "groups must be a positive whole number, not 0", 24),
        ("input(6) > shuffle(2)", "shuffle needs spatial axes", 12),
        ("input(7x8x3) > space2depth(2)", "the patch size 2 does not divide the height 7", 28),
        ("input(8x9x3) > space2depth(2)", "the patch size 2 does not divide the width 9", 28),
        ("input(8x3) > space2depth(2)", "space2depth works on H x W x C maps", 14),
        ("input(8x8x3) > space2depth(0)", "the patch size must be a positive whole number, not 0", 28),
        ("input(8x8x3) > droppath(1.5)", "droppath(1.5): the probability must be between 0 and 1", 25),
        ("input(8x8x3) > droppath(-0.1)", "the probability must be between 0 and 1", 25),
        ("input(8x8x3) > droppath", "droppath needs its probability", 16),
        ("input(8x8x3) > adaptiveavgpool(0)", "the output size must be a positive whole number, not 0", 32),
        ("input(8x8x3) > adaptivemaxpool(2x0)", "the output size must be a positive whole number, not 0", 32),
        ("input(8x8x3) > adaptivemaxpool(2x2x2)", "adaptivemaxpool gives 3 sizes but its input has 2 spatial axes", 32),
        ("input(3) > adaptiveavgpool(2)", "adaptiveavgpool needs spatial axes", 12),
        ("input(8x8x3) > scale(4)", "scale says it has 4 channels, but the layer before gives 3", 22),
        ("input(8x8x3) > scale(shift)", "scale says it has shift channels", 22),  # scale(bias) is a shift now
    ],
)
def test_mistakes(program, words, column):
    with pytest.raises(paramsym.ParamsymError) as caught:
        paramsym.parse(program)
    assert words in str(caught.value)
    assert (caught.value.line, caught.value.column) == (1, column)


def test_what_pytorch_refuses_paramsym_refuses():
    with pytest.raises(RuntimeError):
        nn.ChannelShuffle(4)(torch.zeros(1, 6, 2, 2))
    with pytest.raises(RuntimeError):
        nn.PixelUnshuffle(2)(torch.zeros(1, 3, 7, 8))
    with pytest.raises(ValueError, match="between 0 and 1"):
        StochasticDepth(1.5, "row").train()(torch.zeros(2, 3))
    with pytest.raises(RuntimeError):
        nn.ChannelShuffle(2)(torch.zeros(1, 6))


# ---- a property of the shape rules ---------------------------------------------------------


@st.composite
def _rearrangements(draw):
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 4))
    channels = groups * draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["slice", "shuffle", "space2depth"]))
    if kind == "space2depth":
        block = draw(st.integers(1, 3))
        sizes = [block * draw(st.integers(1, 3)) for _ in range(2)]
        return sizes, channels, f"space2depth({block})", lambda x: nn.PixelUnshuffle(block)(x)
    sizes = [draw(st.integers(1, 5)) for _ in range(rank)]
    if kind == "shuffle":
        return sizes, channels, f"shuffle({groups})", nn.ChannelShuffle(groups)
    a = draw(st.integers(0, channels - 1))
    b = draw(st.integers(a + 1, channels))
    return sizes, channels, f"slice({a}, {b})", lambda x: x[:, a:b]


@settings(max_examples=60, deadline=None)
@given(_rearrangements())
def test_rearrangements_match_the_exported_module(case):
    sizes, channels, layer, reference = case
    net = paramsym.parse(f"input({'x'.join(map(str, sizes + [channels]))}) > {layer}")
    x = torch.randn(1, channels, *sizes)
    y, expected = paramsym.to_torch(net)(x), reference(x)
    assert (
        [*y.shape[2:], y.shape[1]]
        == [int(d) for d in net.output_shape.dims()]
        == [*expected.shape[2:], expected.shape[1]]
    )
    # the same values at each position (space2depth: in another order than PixelUnshuffle's)
    assert torch.equal(y.movedim(1, -1).sort(-1).values, expected.movedim(1, -1).sort(-1).values)


# ---- Keras, import, explain ----------------------------------------------------------------


@pytest.mark.parametrize(
    "program",
    [
        "input(5x6x4) > scale",
        "input(7x4) > scale",
        "input(5x6x6) > shuffle(3)",
        "input(7x6) > shuffle(2)",
        "input(4x6x3) > space2depth(2)",
        "input(5x7x3) > adaptiveavgpool(3x2)",
        "input(9x3) > adaptivemaxpool(4)",
        "input(5x6x4) > droppath(0.2)",
    ],
)
def test_keras_is_the_same_function(program):
    net = paramsym.parse(program, convention="keras")
    model, module = paramsym.to_keras(net), paramsym.to_torch(net).eval()
    dims = [int(d) for d in net.input_shape.dims()]
    x = np.random.rand(1, *dims).astype("float32")
    expected = module(torch.tensor(x).movedim(-1, 1)).movedim(1, -1).detach().numpy()
    if "scale" in program:  # Keras' 1-wide depthwise convolution starts from other weights
        kernel = model.layers[-1].get_weights()[0].reshape(-1)
        expected = x * kernel
    assert np.allclose(np.asarray(model(x).detach()), expected, atol=1e-6)
    assert model.count_params() == net.evaluate()["params"]


@pytest.mark.parametrize(
    "program, why",
    [
        ("input(6) > scale", "no per-channel scale layer"),
        ("input(6x6x6) > slice(0, 2)", "no layer that keeps some of the channels"),
    ],
)
def test_keras_refusals_say_why(program, why):
    with pytest.raises(paramsym.ParamsymUsageError, match=why):
        paramsym.to_keras(paramsym.parse(program, convention="keras"))


def test_import_from_pytorch():
    module = nn.Sequential(
        nn.Conv2d(3, 8, 1),
        nn.ChannelShuffle(2),
        nn.PixelUnshuffle(2),
        StochasticDepth(0.1, "row"),
        nn.AdaptiveAvgPool2d((3, 2)),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
    )
    text = paramsym.from_torch(module, (8, 8, 3))
    assert text.split() == [
        "input(8x8x3)",
        ">",
        "conv1x1(3->8,",
        "bias)",
        ">",
        "shuffle(2)",
        ">",
        "space2depth(2)",
        ">",
        "droppath(0.1)",
        ">",
        "adaptiveavgpool(3x2)",
        ">",
        "gmp",
        ">",
        "flatten",
    ]
    assert paramsym.parse(text).evaluate()["params"] == torch_params(module)
    net = paramsym.parse("input(8x8x6) > scale > slice(1, 5) > droppath(0.2) > adaptivemaxpool(3)")
    _, back = import_back(net)
    assert back.evaluate() == net.evaluate() and back.output_shape == net.output_shape


def test_explain():
    result = run(
        "explain",
        "input(8x8x6) > scale > slice(1, 5) > shuffle(2) > space2depth(2) > droppath(0.1) > adaptiveavgpool(3)",
    )
    assert result.returncode == 0, result.stderr
    for words in [
        "Layer scale learns one factor per channel",
        "keeps channels 1 to 4 of the 6",
        "into 2 groups of 2",
        "each 2 x 2 patch",
        "with probability 0.1",
        "the largest window has 4 inputs",
    ]:
        assert words in result.stdout, words
