"""timm's fused and dynamic modules, imported with `paramsym.from_torch` and compared with the modules themselves
(issue 17): TensorFlow's "same" padding computed in forward (Conv2dSame, MaxPool2dSame, AvgPool2dSame, an F.pad
before a layer) and norm + activation modules (BatchNormAct2d, GroupNormAct, LayerNormAct2d, ...), whose
activation must be written out. A subclass of a torch.nn class with a forward of its own is never read as
that class."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params, torch_state
from paramsym.errors import ImportRefused
from paramsym.kinds import windows

timm = pytest.importorskip("timm")
from timm.layers import (  # noqa: E402
    BatchNormAct2d,
    GroupNormAct,
    LayerNormAct,
    LayerNormAct2d,
    create_conv2d,
    create_pool2d,
)
from timm.layers.conv2d_same import Conv2dSame  # noqa: E402
from timm.layers.padding import get_same_padding, pad_same  # noqa: E402
from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame  # noqa: E402

# nonlinearities, in the program (kinds) and in the module (classes whose calls the forward hooks count)
NONLINEAR_KINDS = {
    "relu",
    "relu6",
    "leakyrelu",
    "elu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "hardswish",
    "hardsigmoid",
    "prelu",
}
NONLINEAR_CLASSES = {
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "ELU",
    "GELU",
    "SiLU",
    "Swish",
    "Sigmoid",
    "Tanh",
    "Hardswish",
    "Hardsigmoid",
    "PReLU",
}


def measured(module, hw: tuple) -> dict:
    """What the module itself says: params, running statistics, output shape (channels last), MACs
    (FlopCounterMode's FLOPs / 2) and how many nonlinearities its forward applies."""
    calls = []
    hooks = [
        m.register_forward_hook(lambda *_: calls.append(1))
        for m in module.modules()
        if type(m).__name__ in NONLINEAR_CLASSES
    ]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = module.eval()(torch.zeros(1, 3, *hw))
    for hook in hooks:
        hook.remove()
    flops = counter.get_total_flops()
    assert flops % 2 == 0, flops
    buffers = {name.rsplit(".", 1)[-1] for name, _ in module.named_buffers()}
    assert buffers <= {"running_mean", "running_var", "num_batches_tracked"}, buffers  # state is BN statistics
    shape = list(out.shape[2:]) + [out.shape[1]] if out.dim() > 2 else [out.shape[1]]
    return {
        "params": torch_params(module),
        "state": torch_state(module),
        "shape": shape,
        "macs": flops // 2,
        "nonlinear": len(calls),
    }


def imported(module, hw: tuple) -> dict:
    text = paramsym.from_torch(module, (*hw, 3), flat=True)
    network = paramsym.parse(text)
    values = network.evaluate()
    return {
        "params": values["params"],
        "state": values["state"],
        "shape": [int(d) for d in network.output_shape.dims()],
        "macs": values["macs"],
        "nonlinear": sum(layer.kind.key in NONLINEAR_KINDS for layer in network.layers),
    }


# The four TensorFlow ports (Conv2dSame, BatchNormAct2d) and models with BatchNormAct2d. 100x84 gives odd and
# even map sizes on the way down (100, 50, 25, 13, 7, 4 and 84, 42, 21, 11, 6, 3): TensorFlow's "same" is
# asymmetric on some axes and stages and symmetric on others.
TF_PORTS = ["tf_efficientnet_b0", "tf_efficientnet_lite0", "tf_efficientnetv2_b0", "tf_mobilenetv3_small_100"]
TIMM_MODELS = [
    (name, False) for name in TF_PORTS + ["cspdarknet53", "cspresnet50", "mobilenetv1_100", "tf_mixnet_s"]
] + [(name, True) for name in TF_PORTS]


@pytest.mark.parametrize(
    "name, features", TIMM_MODELS, ids=[f"{name}{'-features' if features else ''}" for name, features in TIMM_MODELS]
)
def test_timm_models_import_exactly(name, features):
    """Params, BatchNorm statistics, output shape, MACs and the number of nonlinearities equal the module's;
    without the classifier (`num_classes=0, global_pool=""`) the output is the last feature map, whose
    shape the padding decides."""
    torch.manual_seed(0)
    extra = {"num_classes": 0, "global_pool": ""} if features else {}
    model = timm.create_model(name, pretrained=False, **extra)
    assert imported(model, (100, 84)) == measured(model, (100, 84))


def test_cspdarknet53_keeps_its_nonlinearities():
    """cspdarknet53 applies each of its LeakyReLUs inside BatchNormAct2d: imported as plain `bn`, it had none."""
    model = timm.create_model("cspdarknet53", pretrained=False)
    text = paramsym.from_torch(model, (64, 64, 3), flat=True)
    leaky = sum(isinstance(m, nn.LeakyReLU) for m in model.modules())
    assert leaky > 50 and text.count("leakyrelu(0.01)") == leaky


# ---- TensorFlow's "same" padding: the rule, and each module that pads that way -----------------------------

sizes = st.integers(1, 24)
kernels = st.integers(1, 7)
strides = st.integers(1, 4)
dilations = st.integers(1, 3)


@given(sizes, kernels, strides, dilations)
def test_same_pairs_are_timms_pad_same(n, k, s, d):
    """windows.same_pairs (what pad=same means, and what its export pads) is timm's pad_same, which puts the odd
    one after; and the padded input gives ceil(n/s) windows."""
    x = torch.zeros(1, 1, n, n + 1)
    padded = pad_same(x, (k, k), (s, s), (d, d))
    (top, bottom), (left, right) = windows.same_pairs((n, n + 1), (k, k), (s, s), (d, d))
    assert padded.shape[-2:] == (n + top + bottom, n + 1 + left + right)
    assert (top + bottom, left + right) == (get_same_padding(n, k, s, d), get_same_padding(n + 1, k, s, d))
    assert F.conv2d(padded, torch.zeros(1, 1, k, k), stride=s, dilation=d).shape[-2:] == (-(-n // s), -(-(n + 1) // s))
    assert torch.equal(padded, F.pad(x, (left, right, top, bottom)))


def check(module, hw, cin):
    """The import of `module` (channels `cin`) at `hw` has its params, output shape and MACs."""
    text = paramsym.from_torch(module, (*hw, cin), flat=True)
    network = paramsym.parse(text)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = module.eval()(torch.zeros(1, cin, *hw))
    shape = list(out.shape[2:]) + [out.shape[1]]
    assert (
        network.evaluate()["params"],
        [int(v) for v in network.output_shape.dims()],
        network.evaluate()["macs"],
    ) == (torch_params(module), shape, counter.get_total_flops() // 2), text
    return text


@given(st.integers(3, 20), st.integers(3, 20), kernels, strides, dilations)
def test_conv2d_same_is_pad_same(h, w, k, s, d):
    """timm's Conv2dSame pads from the input size in forward: pad=same, with the shape and MACs PyTorch gives
    (it was read as a Conv2d without padding)."""
    conv = Conv2dSame(3, 4, k, stride=s, dilation=d)
    text = check(nn.Sequential(conv), (h, w), 3)
    assert "pad=same" in text


@given(st.integers(3, 20), st.integers(3, 20), st.integers(1, 5), strides, st.booleans(), st.booleans())
def test_pool2d_same_is_pad_same(h, w, k, s, ceil, use_max):
    """timm's MaxPool2dSame (-inf) and AvgPool2dSame (zeros) pad as TensorFlow's "same": pad=same, also with
    ceil_mode (after "same" padding, ceil and floor agree)."""
    pool = (MaxPool2dSame if use_max else AvgPool2dSame)(k, stride=s, ceil_mode=ceil)
    text = check(nn.Sequential(nn.Conv2d(3, 3, 1), pool), (h, w), 3)
    assert "pad=same" in text


@pytest.mark.parametrize("k, s, d", [(3, 2, 1), (5, 2, 1), (3, 1, 2), (4, 1, 1), (3, 1, 1)])
def test_create_conv2d_same_imports_exactly(k, s, d):
    """create_conv2d(..., padding="same") (timm's TensorFlow ports): a Conv2dSame where the padding depends on the
    input, else an nn.Conv2d with static padding; both import to the module's shape and MACs."""
    conv = create_conv2d(3, 8, k, stride=s, dilation=d, padding="same")
    check(nn.Sequential(conv), (16, 15), 3)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_create_pool2d_same_imports_exactly(kind):
    check(nn.Sequential(create_pool2d(kind, 3, stride=2, padding="same")), (16, 15), 3)


class PadThenConv(nn.Module):
    def __init__(self, pads, k, s, d, padding=0):
        super().__init__()
        self.pads = pads
        self.conv = nn.Conv2d(2, 3, k, stride=s, dilation=d, padding=padding)

    def forward(self, x):
        return self.conv(F.pad(x, self.pads))


pads = st.tuples(*[st.integers(0, 3)] * 4)


@given(pads, st.integers(4, 14), st.integers(1, 5), strides, dilations)
def test_f_pad_before_a_conv_is_exact(pad, n, k, s, d):
    """An F.pad before a convolution: symmetric per axis is the conv's pad=; asymmetric is pad=same when it is
    exactly TensorFlow's "same" for that input, and a zeropad layer before the conv otherwise (every asymmetric
    F.pad was read as "same", so F.pad(x, (1, 0, 1, 0)) counted as F.pad(x, (0, 1, 0, 1)) and an F.pad of (0, 3)
    on a 3x3 kernel gave ceil(n/s) whatever its size; then refused)."""
    left, right, top, bottom = pad
    if d * (k - 1) + 1 > n + min(left + right, top + bottom):
        return  # PyTorch refuses a kernel larger than the padded input
    module = PadThenConv(pad, k, s, d)
    same = windows.same_pairs((n, n), (k, k), (s, s), (d, d)) == ((top, bottom), (left, right))
    if (left == right and top == bottom) or same:
        text = check(module, (n, n), 2)
        assert ("pad=same" in text) == (not (left == right and top == bottom))
    else:  # a layer of its own before the conv
        text = check(module, (n, n), 2)
        assert f"zeropad({top}, {bottom}, {left}, {right})" in text and "pad=" not in text


def test_f_pad_adds_to_the_conv_padding_when_symmetric():
    text = check(PadThenConv((1, 1, 2, 2), 3, 1, 1, padding=1), (9, 9), 2)
    assert "pad=3x2" in text


class PadThen(nn.Module):
    def __init__(self, layer, pads=(1, 1, 1, 1), mode="constant", value=0.0, twice=False):
        super().__init__()
        self.layer, self.pads, self.mode, self.value, self.twice = layer, pads, mode, value, twice

    def forward(self, x):
        y = (
            F.pad(x, self.pads, mode=self.mode, value=self.value)
            if self.mode == "constant"
            else F.pad(x, self.pads, mode=self.mode)
        )
        return self.layer(y) + y if self.twice else self.layer(y)


@pytest.mark.parametrize(
    "module, message",
    [
        (PadThen(nn.Conv2d(2, 2, 3), mode="reflect"), "pads by 'reflect'"),
        (PadThen(nn.Conv2d(2, 2, 3), value=1.0), "value 1.0"),
        (PadThen(nn.Conv2d(2, 2, 3), value=-math.inf), "-inf only before a max pooling"),
        (PadThen(nn.ReLU(), value=-math.inf), "value -inf: the language pads with zeros"),
        (PadThen(nn.Conv2d(4, 2, 3), pads=(1, 1, 1, 1, 1, 1)), "more than the spatial axes"),  # pads the channels
    ],
)
def test_f_pad_the_language_cannot_say_is_refused(module, message):
    with pytest.raises(ImportRefused, match=message):
        paramsym.from_torch(module, (9, 9, 2))


@pytest.mark.parametrize(
    "module, written",
    [
        (PadThen(nn.BatchNorm2d(2)), "zeropad(1) > bn"),  # was dropped, then refused
        (PadThen(nn.ConvTranspose2d(2, 2, 3, padding=1)), "zeropad(1) > deconv3x3"),  # was dropped, then refused
        (PadThen(nn.Conv2d(2, 2, 3, padding=1), twice=True), "zeropad(1) > res(conv3x3"),  # one of them had no pad
        (PadThen(nn.Conv2d(2, 2, 3), pads=(0, 1, 0, 1)), "zeropad(0, 1, 0, 1) > conv3x3(2->2, bias)"),  # not "same"
        (PadThen(Conv2dSame(2, 2, 3)), "zeropad(1) > conv3x3(2->2, pad=same, bias)"),
        (PadThen(torch.relu), "zeropad(1) > relu"),  # was dropped, then refused
        (PadThen(nn.Conv2d(2, 2, 3), pads=(1, 1, 1, 1)), "conv3x3(2->2, pad=1, bias)"),  # taken as its padding
        # zeros before a max pooling are not its padding (-inf): they were read as maxpool(pad=1)
        (PadThen(nn.MaxPool2d(3, stride=2), pads=(1, 1, 1, 1)), "zeropad(1) > maxpool3x3(stride=2)"),
        (PadThen(nn.MaxPool2d(3, stride=2), pads=(1, 1, 1, 1), value=-math.inf), "maxpool3x3(stride=2, pad=1)"),
    ],
)
def test_f_pad_the_next_layer_cannot_take_is_zeropad(module, written):
    """An F.pad with zeros that the layer after it cannot take as its padding is a layer of its own, zeropad (it
    was refused)."""
    assert written in check(module, (9, 9), 2).replace("\n  > ", " > ")


def test_f_pad_minus_inf_before_a_max_pool():
    """paramsym's own export of maxpool(pad=same) pads with -inf before nn.MaxPool2d: read back as pad=same."""
    check(PadThen(nn.MaxPool2d(3, stride=2), pads=(0, 1, 0, 1), value=-math.inf), (8, 8), 2)


# ---- norm + activation, and subclasses with a forward of their own -------------------------------------------


@pytest.mark.parametrize(
    "module, hw, written",
    [
        (BatchNormAct2d(4), (5, 5), "bn > relu"),
        (BatchNormAct2d(4, act_layer=nn.SiLU), (5, 5), "bn > silu"),
        (BatchNormAct2d(4, act_layer="leaky_relu", act_kwargs={"negative_slope": 0.2}), (5, 5), "bn > leakyrelu(0.2)"),
        (BatchNormAct2d(4, act_layer="hard_swish"), (5, 5), "bn > hardswish"),
        (BatchNormAct2d(4, act_layer="gelu"), (5, 5), "bn > gelu"),
        (BatchNormAct2d(4, apply_act=False), (5, 5), "bn"),
        (
            BatchNormAct2d(4, affine=False, drop_layer=lambda: nn.Dropout(0.25)),
            (5, 5),
            "bn(noaffine) > dropout(0.25) > relu",
        ),
        (GroupNormAct(4, num_groups=2, act_layer=nn.SiLU), (5, 5), "gn(groups=2) > silu"),
        (LayerNormAct2d(4), (5, 5), "ln > relu"),
    ],
)
def test_norm_act_writes_its_activation(module, hw, written):
    """timm's norm + activation modules: the norm, then drop and act, each as its own kind imports it (imported as
    the plain norm, the activation disappeared)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 1), module)
    text = check(model, hw, 3)
    assert text.replace("\n  > ", " > ").endswith(f"bias) > {written}\n"), text


def test_a_torch_norm_holding_an_act_applies_none():
    """Only timm's norm + activation modules apply their `act`: a BatchNorm2d that merely holds one is `bn`."""
    norm = nn.BatchNorm2d(4)
    norm.act = nn.ReLU()
    assert check(nn.Sequential(nn.Conv2d(3, 4, 1), norm), (5, 5), 3).endswith("  > bn\n")


def test_timm_drop_path_is_droppath():
    """timm's DropPath keeps its probability as drop_prob (an AttributeError traceback before)."""
    text = paramsym.from_torch(nn.Sequential(nn.Conv2d(3, 4, 1), timm.layers.DropPath(0.125)), (5, 5, 3), flat=True)
    assert text.replace("\n  > ", " > ").endswith("bias) > droppath(0.125)\n")


def test_layer_norm_act_on_a_vector():
    check_vector = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), LayerNormAct(6, act_layer=nn.GELU))
    text = paramsym.from_torch(check_vector, (2, 2, 3), flat=True)
    assert text.replace("\n  > ", " > ").endswith("ln > gelu\n")


@pytest.mark.parametrize(
    "module, message",
    [
        (BatchNormAct2d(4, act_layer=nn.Mish), "applies act Mish"),
        (BatchNormAct2d(4, drop_layer=lambda: timm.layers.DropBlock2d(0.1)), "applies drop DropBlock2d"),
    ],
)
def test_norm_act_with_what_the_language_lacks_is_refused(module, message):
    with pytest.raises(ImportRefused, match=message):
        paramsym.from_torch(nn.Sequential(nn.Conv2d(3, 4, 1), module), (5, 5, 3))


class ConvThenRelu(nn.Conv2d):
    def forward(self, x):
        return super().forward(x).relu()


class PlainSubclass(nn.Conv2d):
    """A subclass that keeps Conv2d's forward: still a convolution."""


class LayerNorm(nn.Module):
    """Named like torch.nn's LayerNorm, and another computation."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))

    def forward(self, x):
        return x * self.weight


@pytest.mark.parametrize(
    "module, message",
    [
        (ConvThenRelu(3, 4, 3), "ConvThenRelu.*is a Conv2d with a forward of its own"),
    ],
)
def test_a_subclass_with_its_own_forward_is_not_its_base(module, message):
    """A module matched to a torch.nn class by subclass (or by name) whose forward differs was read as that class;
    now it is refused by name, unless a kind claims its own class (timm's StdConv2d and ScaledStdConv2d, refused
    here before, are `conv(..., std)` now: tests/test_kind_standardised.py)."""
    with pytest.raises(ImportRefused, match=message):
        paramsym.from_torch(module if isinstance(module, nn.Sequential) else nn.Sequential(module), (5, 5, 3))


def test_a_class_named_like_torch_nn_is_read_by_what_it_computes():
    """A class of another module named LayerNorm was read as torch.nn's LayerNorm (`ln`); it is traced instead,
    and its `x * weight` is a layer scale."""
    text = paramsym.from_torch(nn.Sequential(nn.Flatten(), LayerNorm(75)), (5, 5, 3), flat=True)
    assert text.replace("\n  > ", " > ") == "input(5x5x3) > flatten > scale\n"


def test_a_subclass_that_keeps_the_forward_is_its_base():
    assert "conv3x3(3->4, bias)" in check(nn.Sequential(PlainSubclass(3, 4, 3)), (5, 5), 3)


def test_evo_norms_are_refused():
    """EvoNorm computes its own statistics: not a `bn` (FrozenBatchNormAct2d, refused here before, is `bn(frozen)`
    followed by its activation: tests/test_import_norms.py)."""
    for module in (timm.layers.EvoNorm2dB0(4), timm.layers.EvoNorm2dS0(4)):
        with pytest.raises(ImportRefused):
            paramsym.from_torch(nn.Sequential(nn.Conv2d(3, 4, 1), module), (5, 5, 3))


# ---- crashes found by benchmarks/import_sweep.py (one model of each timm family) --------------------------------


class AddsItsOwnParameter(nn.Module):
    """PiT's stem: a convolution, then `x + self.pos_embed`, a parameter that forward reads itself."""

    def __init__(self, shape=(1, 4, 4, 4)):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 2, stride=2)
        self.pos_embed = nn.Parameter(torch.zeros(*shape))

    def forward(self, x):
        return self.conv(x) + self.pos_embed


def test_a_position_table_added_by_forward_is_posembed():
    """Was a KeyError traceback ('pos_embed', timm's pit_xs_224), then a refusal; a table of one value per
    position and channel is a learned position embedding on the map: posembed(16), 64 params."""
    module = AddsItsOwnParameter()
    text = paramsym.from_torch(module, (8, 8, 3), flat=True)
    assert "posembed(16)" in text
    assert imported(module, (8, 8)) == measured(module, (8, 8)) | {"nonlinear": 0}


def test_a_parameter_added_by_forward_is_refused():
    """A table that varies along the rows and channels but not the columns is no position embedding: refused,
    naming the parameter."""
    with pytest.raises(ImportRefused, match=r"'\+' uses 'pos_embed', a parameter or buffer that forward reads"):
        paramsym.from_torch(AddsItsOwnParameter((1, 4, 4, 1)), (8, 8, 3))


def test_timm_space_to_depth_is_space2depth():
    """timm's SpaceToDepth (TResNet's stem) keeps its block in `bs`: was an AttributeError traceback
    (downscale_factor); now space2depth(4), counted as the module counts."""
    from timm.layers import SpaceToDepth

    module = nn.Sequential(SpaceToDepth(4), nn.Conv2d(48, 8, 3, padding=1), nn.BatchNorm2d(8))
    text = paramsym.from_torch(module, (12, 8, 3), flat=True)
    assert "space2depth(4)" in text
    assert imported(module, (12, 8)) == measured(module, (12, 8)) | {"nonlinear": 0}


def test_a_program_the_importer_cannot_write_is_refused_naming_the_model_and_the_stage():
    """The last check of every import parses what was written: a program that does not count (an importer's
    gap) is refused naming the model's forward and the line, never as an internal error."""
    from paramsym.frameworks.importer import _verified

    text = "input(8x8x3)\n  > conv1x1(3->4, bias)\n  > mul(id | conv1x1(->2))"
    with pytest.raises(ImportRefused, match=r"the model's forward \(Conv2d\) .* at `> mul\(id \| conv1x1\(->2\)\)`"):
        _verified(nn.Conv2d(3, 4, 1), text, (8, 8, 3))
