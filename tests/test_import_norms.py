"""Channels-first layer norms and norm + activation modules (issue 19): timm's LayerNorm2d and its subclass
LayerNorm2dNoBias (poolformerv2, caformer, convformer), GroupNorm1NoBias, the float32 variants and the norm +
activation modules import as `ln`, `ln(nobias)`, `gn(groups=G)`, `gn(groups=G, nobias)` followed by the
activation, each checked against the module itself: params, buffers, output shape, MACs and the number of
nonlinearities its forward applies. `gn(nobias)` is nn.GroupNorm(G, C, bias=False). torchvision's
FrozenBatchNorm2d and timm's FrozenBatchNormAct2d are `bn(frozen)` (its activation after it)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch before keras)
from helpers.cli_helpers import run
from helpers.frameworks import keras_counts, torch_params, torch_run, torch_state
from paramsym.errors import ImportRefused

timm = pytest.importorskip("timm")
from timm.layers import (  # noqa: E402
    FrozenBatchNormAct2d,
    GroupNorm1Act,
    GroupNormAct,
    LayerNorm2d,
    LayerNormAct,
    LayerNormAct2d,
)
from timm.layers.norm import LayerNorm2dFp32, LayerNormFp32  # noqa: E402
from timm.layers.norm_act import LayerNormAct2dFp32, LayerNormActFp32  # noqa: E402
from timm.models.metaformer import GroupNorm1NoBias, LayerNorm2dNoBias, LayerNormNoBias  # noqa: E402
from torchvision.ops import FrozenBatchNorm2d  # noqa: E402

NONLINEAR = {"ReLU": "relu", "GELU": "gelu", "SiLU": "silu", "Hardswish": "hardswish", "Sigmoid": "sigmoid"}


def measured(model, shape) -> dict:
    """What the module says: params, buffers, output shape (channels last), MACs, nonlinearities applied."""
    calls = []
    hooks = [
        m.register_forward_hook(lambda *_: calls.append(1)) for m in model.modules() if type(m).__name__ in NONLINEAR
    ]
    *spatial, channels = shape
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model.eval()(torch.zeros(1, channels, *spatial))
    for hook in hooks:
        hook.remove()
    dims = list(out.shape[2:]) + [out.shape[1]] if out.dim() > 2 else [out.shape[1]]
    return {
        "params": torch_params(model),
        "state": torch_state(model),
        "shape": dims,
        "macs": counter.get_total_flops() // 2,
        "nonlinear": len(calls),
    }


def imported(text: str) -> dict:
    net = paramsym.parse(text)
    values = net.evaluate()
    return {
        "params": values["params"],
        "state": values["state"],
        "shape": [int(d) for d in net.output_shape.dims()],
        "macs": values["macs"],
        "nonlinear": sum(layer.kind.key in NONLINEAR.values() for layer in net.layers),
    }


# (norm module over 6 channels of an NCHW map, what the import writes after the conv)
MAP_NORMS = [
    (LayerNorm2d(6), "ln"),
    (LayerNorm2dNoBias(6), "ln(nobias)"),
    (LayerNorm2dFp32(6), "ln"),
    (LayerNormAct2d(6), "ln > relu"),
    (LayerNormAct2d(6, act_layer=nn.GELU), "ln > gelu"),
    (LayerNormAct2d(6, apply_act=False), "ln"),
    (LayerNormAct2dFp32(6, act_layer=nn.SiLU), "ln > silu"),
    (GroupNorm1NoBias(6), "gn(groups=1, nobias)"),
    (GroupNormAct(6, num_groups=3, act_layer=nn.SiLU), "gn(groups=3) > silu"),
    (GroupNormAct(6, num_groups=2, affine=False), "gn(groups=2, noaffine) > relu"),
    (GroupNorm1Act(6, act_layer=nn.GELU), "gn(groups=1) > gelu"),
    (nn.GroupNorm(3, 6, bias=False), "gn(groups=3, nobias)"),
]


@pytest.mark.parametrize("norm, written", MAP_NORMS, ids=[f"{type(n).__name__}-{w}" for n, w in MAP_NORMS])
def test_channels_first_norms_import_exactly(norm, written):
    model = nn.Sequential(nn.Conv2d(3, 6, 3), norm)
    text = paramsym.from_torch(model, (7, 6, 3), flat=True)
    assert text.replace("\n  > ", " > ").strip().endswith(f"bias) > {written}"), text
    assert imported(text) == measured(model, (7, 6, 3))


# (norm module over the 6 channels of a vector, what the import writes after the linear layer)
VECTOR_NORMS = [
    (LayerNormNoBias(6), "ln(nobias)"),
    (LayerNormFp32(6), "ln"),
    (LayerNormAct(6, act_layer=nn.GELU), "ln > gelu"),
    (LayerNormActFp32(6, act_layer=nn.Hardswish), "ln > hardswish"),
]


@pytest.mark.parametrize("norm, written", VECTOR_NORMS, ids=[f"{type(n).__name__}-{w}" for n, w in VECTOR_NORMS])
def test_vector_norms_import_exactly(norm, written):
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), norm)
    text = paramsym.from_torch(model, (2, 2, 3), flat=True)
    assert text.replace("\n  > ", " > ").strip().endswith(f"bias) > {written}"), text
    assert imported(text) == measured(model, (2, 2, 3))


class OwnForward(LayerNorm2d):
    """A LayerNorm2d subclass that computes something else: not a layer norm."""

    def forward(self, x):
        return super().forward(x) * 2 + 1


class OwnActForward(GroupNormAct):
    def forward(self, x):
        return self.act(F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)).pow(2)


class OwnNoBias(LayerNorm2dNoBias):
    def forward(self, x):
        return x - x.mean(1, keepdim=True)


class OwnFrozen(FrozenBatchNormAct2d):
    def forward(self, x):
        return super().forward(x) + 1


@pytest.mark.parametrize(
    "norm, message",
    [
        (OwnForward(6), r"'1' \(OwnForward\) is a LayerNorm2d with a forward of its own"),
        (OwnActForward(6, num_groups=2), r"'1' \(OwnActForward\) is a GroupNormAct with a forward of its own"),
        (OwnNoBias(6), r"'1' \(OwnNoBias\) is a LayerNorm2d with a forward of its own"),
        (OwnFrozen(6), r"'1' \(OwnFrozen\) is a FrozenBatchNormAct2d with a forward of its own"),
    ],
)
def test_a_subclass_with_an_unknown_forward_is_refused_by_name(norm, message):
    with pytest.raises(ImportRefused, match=message):
        paramsym.from_torch(nn.Sequential(nn.Conv2d(3, 6, 3), norm), (7, 6, 3))


@pytest.mark.parametrize(
    "program, module",
    [
        ("input(5x5x4) > gn(groups=2, nobias)", nn.GroupNorm(2, 4, bias=False)),
        ("input(5x5x4) > gn(groups=1, nobias)", GroupNorm1NoBias(4)),
        ("input(5x5x4) > gn(groups=4, nobias)", nn.GroupNorm(4, 4, bias=False)),
    ],
)
def test_gn_nobias_counts_match_pytorch(program, module):
    net = paramsym.parse(program)
    out, macs = torch_run(module, [5, 5, 4], "cf")
    values = net.evaluate()
    assert (values["params"], values["state"], values["macs"]) == (torch_params(module), torch_state(module), macs)
    assert values["params"] == 4 and [int(d) for d in net.output_shape.dims()] == out


def test_gn_nobias_exports_and_imports_back():
    net = paramsym.parse("input(5x5x4) > conv1x1(->6) > gn(groups=3, nobias)")
    module = paramsym.to_torch(net)
    norm = module[-1]
    assert isinstance(norm, nn.GroupNorm) and norm.bias is None and norm.weight.numel() == 6
    assert "nn.GroupNorm(3, 6, bias=False)" in paramsym.torch_source(net)
    assert paramsym.from_torch(module, (5, 5, 4)).strip().endswith("> gn(groups=3, nobias)")
    keras_net = paramsym.parse("input(5x5x4) > conv1x1(->6) > gn(groups=3, nobias)", convention="keras")
    model = paramsym.to_keras(keras_net)
    assert "GroupNormalization(groups=3, center=False)" in paramsym.keras_source(keras_net)
    assert keras_counts(model, [5, 5, 4]) == (keras_net.evaluate()["params"], 0, keras_net.evaluate()["macs"])


@pytest.mark.parametrize(
    "program, message",
    [
        ("input(5x5x4) > gn(groups=2, noaffine, nobias)", "both 'noaffine' and 'nobias'"),
        ("input(5x5x4) > bn(nobias)", "bn has no 'nobias'"),
    ],
)
def test_nobias_mistakes(program, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(program)


# ---- bn(frozen): torchvision's FrozenBatchNorm2d (detection backbones), timm's FrozenBatchNormAct2d -------------

FROZEN = [
    (FrozenBatchNorm2d(6), "bn(frozen)"),
    (FrozenBatchNormAct2d(6), "bn(frozen) > relu"),
    (FrozenBatchNormAct2d(6, act_layer=nn.SiLU), "bn(frozen) > silu"),
    (FrozenBatchNormAct2d(6, apply_act=False), "bn(frozen)"),
]


@pytest.mark.parametrize("norm, written", FROZEN, ids=[f"{type(n).__name__}-{w}" for n, w in FROZEN])
def test_frozen_batch_norms_import_exactly(norm, written):
    """Scale, shift, mean and variance are buffers: 0 parameters and 4·C values of state (they were refused)."""
    model = nn.Sequential(nn.Conv2d(3, 6, 3), norm)
    text = paramsym.from_torch(model, (7, 6, 3), flat=True)
    assert text.replace("\n  > ", " > ").strip().endswith(f"bias) > {written}"), text
    assert imported(text) == measured(model, (7, 6, 3))
    assert measured(model, (7, 6, 3))["state"] == 4 * 6


def test_a_resnet_with_frozen_batch_norm_imports_exactly():
    """torchvision's detection backbones: a ResNet built with FrozenBatchNorm2d."""
    from torchvision.models import resnet18
    from torchvision.ops import FrozenBatchNorm2d as Frozen

    model = resnet18(norm_layer=Frozen)
    text = paramsym.from_torch(model, (64, 64, 3))
    assert "bn(frozen)" in text
    assert imported(text) == measured(model, (64, 64, 3))
    channels = sum(m.num_features for m in resnet18().modules() if isinstance(m, nn.BatchNorm2d))
    assert imported(text)["params"] == torch_params(resnet18()) - 2 * channels  # scale and shift are buffers


def test_bn_frozen_counts_explains_and_exports():
    net = paramsym.parse("input(5x5x4) > conv1x1(->6) > bn(frozen)")
    values = net.evaluate()
    assert (values["params"], values["state"]) == (24, 24)
    assert (
        "fixed buffers, 4·6 = 24 non-learnable values"
        in run("explain", "input(5x5x4) > conv1x1(->6) > bn(frozen)").stdout
    )
    module = paramsym.to_torch(net)
    assert torch_params(module) == 24 and torch_state(module) == 24
    x = torch.linspace(-3, 3, 100).reshape(1, 4, 5, 5)
    frozen = FrozenBatchNorm2d(6)
    with torch.no_grad():
        assert torch.allclose(module(x), frozen(module[0](x)))
    assert paramsym.from_torch(module, (5, 5, 4)).strip().endswith("> bn(frozen)")
    keras_net = paramsym.parse("input(5x5x4) > conv1x1(->6) > bn(frozen)", convention="keras")
    model = paramsym.to_keras(keras_net)
    assert "BatchNormalization(trainable=False)" in paramsym.keras_source(keras_net)
    keras_values = keras_net.evaluate()
    assert keras_counts(model, [5, 5, 4]) == (keras_values["params"], keras_values["state"], keras_values["macs"])
    assert (keras_values["params"], keras_values["state"]) == (24, 24)


@pytest.mark.parametrize(
    "program, message",
    [
        ("input(5x5x4) > bn(frozen, noaffine)", "both 'noaffine' and 'frozen'"),
        ("input(5x5x4) > ln(frozen)", "ln accepts: eps, groups, momentum, noaffine, nobias"),
        ("input(5x5x4) > bn(frozen, frozen)", "'frozen' is given twice"),
    ],
)
def test_frozen_mistakes(program, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(program)


# ---- F.layer_norm: a LayerNorm2d of one's own (permute, F.layer_norm, permute back), and on a vector ------------


class OwnLayerNorm2d(nn.Module):
    """A channels-first layer norm written out, as many repositories do."""

    def __init__(self, c, bias=True, affine=True):
        super().__init__()
        self.shape = (c,)
        self.weight = nn.Parameter(torch.ones(c)) if affine else None
        self.bias = nn.Parameter(torch.zeros(c)) if affine and bias else None

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.shape, self.weight, self.bias, 1e-6)
        return x.permute(0, 3, 1, 2)


class FunctionalNorm(nn.Module):
    def __init__(self, c, shape=None, buffer=False):
        super().__init__()
        self.shape = shape or (c,)
        if buffer:
            self.register_buffer("scale", torch.ones(c))
        else:
            self.scale = nn.Parameter(torch.ones(c))

    def forward(self, x):
        return F.layer_norm(x, self.shape, self.scale)


@pytest.mark.parametrize(
    "norm, written",
    [
        (OwnLayerNorm2d(6), "ln"),
        (OwnLayerNorm2d(6, bias=False), "ln(nobias)"),
        (OwnLayerNorm2d(6, affine=False), "ln(noaffine)"),
    ],
)
def test_f_layer_norm_between_permutes_is_ln(norm, written):
    model = nn.Sequential(nn.Conv2d(3, 6, 3), norm, nn.GELU(), nn.Conv2d(6, 4, 1))
    text = paramsym.from_torch(model, (7, 6, 3), flat=True)
    assert f"bias) > {written} > gelu > conv1x1" in text.replace("\n  > ", " > "), text
    assert imported(text) == measured(model, (7, 6, 3))


def test_f_layer_norm_on_a_vector_is_ln():
    model = nn.Sequential(nn.Flatten(), nn.Linear(147, 6), FunctionalNorm(6))
    text = paramsym.from_torch(model, (7, 7, 3), flat=True)
    assert text.replace("\n  > ", " > ").strip().endswith("dense(147->6, bias) > ln(nobias)")
    assert imported(text) == measured(model, (7, 7, 3))


@pytest.mark.parametrize(
    "model, message",
    [
        (nn.Sequential(nn.Conv2d(3, 6, 3), FunctionalNorm(5, (5,))), r"F.layer_norm over \(5,\)\) does not normalise"),
        (nn.Sequential(nn.Flatten(), nn.Linear(147, 6), FunctionalNorm(6, buffer=True)), "not a parameter of 6"),
    ],
)
def test_f_layer_norm_over_other_axes_is_refused(model, message):
    with pytest.raises(ImportRefused, match=message):
        paramsym.from_torch(model, (7, 7, 3))
