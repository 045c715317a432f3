"""Written PyTorch source builds the module that `to_torch` builds: a keyword left out of the source as a
default must be that class's own default (torch.nn's for torch.nn, the helper's signature for paramsym's
helpers of torch_modules.py), and every helper exported source copies in is found without a hand-kept list."""

from __future__ import annotations

import inspect
import re
import textwrap

import pytest
import torch
from hypothesis import given

import paramsym
from helpers.strategies import programs
from paramsym.frameworks import export, torch_modules
from paramsym.frameworks.export import Spec, build, spec_source


def _written(spec: Spec):
    """The module that the written source of `spec` builds (with the helpers it copies in)."""
    sources = export.helper_sources()
    text = "import torch\nfrom torch import nn\nfrom torch.nn import functional as F\n\n"
    text += "\n\n".join(sources[name] for name in export._helpers_used(spec))
    text += f"\n\nmodule = {spec_source(spec)}\n"
    namespace: dict = {}
    exec(compile(text, "<written>", "exec"), namespace)
    return namespace["module"]


def _parameters(module) -> list:
    return [(name, tuple(p.shape)) for name, p in module.named_parameters()]


# a helper whose own default is bias=False (none of torch_modules' has one today; the next one may)
_NO_BIAS_HELPER = textwrap.dedent('''
    class NoBiasLinear(nn.Module):
        """A linear layer without bias unless asked for one."""

        def __init__(self, in_features: int, out_features: int, bias: bool = False):
            super().__init__()
            self.linear = nn.Linear(in_features, out_features, bias=bias)

        def forward(self, x):
            return self.linear(x)
''').lstrip()


def test_a_helper_whose_default_is_no_bias_keeps_its_bias(monkeypatch):
    # before: torch.nn's bias=True default was left out for every class, so this helper was written as
    # NoBiasLinear(4, 3) and built without its bias (a wrong model, written without complaint)
    namespace: dict = {"nn": torch.nn}
    exec(_NO_BIAS_HELPER, namespace)
    sources = {**export.helper_sources(), "NoBiasLinear": _NO_BIAS_HELPER}
    monkeypatch.setattr(export, "helper_sources", lambda: sources)
    monkeypatch.setattr(torch_modules, "NoBiasLinear", namespace["NoBiasLinear"], raising=False)
    for bias in (True, False):
        spec = Spec("NoBiasLinear", (4, 3), {"bias": bias})
        assert _parameters(_written(spec)) == _parameters(build(spec)), (bias, spec_source(spec))
        assert len(_parameters(build(spec))) == (2 if bias else 1)


# every helper of torch_modules.py with a `bias` parameter: the arguments to build one
BIAS_HELPERS = {
    "TransposedLinear": (4, 3),
    "LayerScale": (4,),  # scale(bias)
    "GroupedQueryAttention": (8, 2),
    "WindowAttention": (8, 2, 2),
    "WindowAttention3d": (8, 2, (2, 2, 2)),
    "PoolingAttention": (8, 2, (2, 2, 2)),
    "BottleneckAttention": (8, 8, 2, 4, 4, 4),
    "HaloAttention": (8, 8, 2, 4, 4, 1),
    "LambdaNetLayer": (8, 8, 2, 4, 3),
    "GatedPositionalAttention": (8, 2),
    "ChannelAttention": (8, 2),
    "QueryPoolingAttention": (8, 8, 2),
    "SeparableSelfAttention": (8,),
    "OffsetBiasAttention": (8, 2, 4, 4, (2, 2)),
    "MultiScaleLinearAttention": (8, 8, 2, 4),
    "MultiHeadLatentAttention": (8, 2, 4, 2, 2, 3),
    "_ConvNorm": (8, 8, False),  # without its BatchNorm (whose bias is always there)
}


def _helper_classes() -> dict:
    return {
        name: cls
        for name, cls in vars(torch_modules).items()
        if isinstance(cls, type) and issubclass(cls, torch.nn.Module) and cls.__module__ == torch_modules.__name__
    }


def test_the_helpers_are_every_module_class_of_torch_modules():
    # before: a hand-kept list in export.py that a new helper had to be added to
    assert export.helper_classes() == tuple(_helper_classes())


@pytest.mark.parametrize("cls", sorted(_helper_classes()))
def test_a_helper_leaves_out_only_its_own_defaults(cls):
    signature = inspect.signature(_helper_classes()[cls])
    own = {name: p.default for name, p in signature.parameters.items() if p.default is not p.empty}
    assert export._helper_defaults(export.helper_sources()[cls]) == own
    for key, value in export.class_defaults(cls).items():
        assert key in export._TORCH_DEFAULTS and own[key] == value


def _torch_nn_classes() -> dict:
    return {
        f"nn.{name}": cls
        for name, cls in vars(torch.nn).items()
        if isinstance(cls, type) and issubclass(cls, torch.nn.Module)
    }


def test_every_default_left_out_is_torch_nns():
    # before: stride=1 was left out of nn.MaxPool2d(3, stride=1), whose stride defaults to its kernel size
    wrong = []
    for name, cls in _torch_nn_classes().items():
        parameters = inspect.signature(cls.__init__).parameters
        for key, value in export.class_defaults(name).items():
            if key in parameters and parameters[key].default != value:
                wrong.append((name, key, parameters[key].default))
    assert wrong == []
    assert export.class_defaults("nn.MaxPool2d").get("stride") is None
    assert export.class_defaults("nn.Conv2d")["stride"] == 1


def test_the_bias_table_names_every_helper_with_a_bias():
    with_bias = {name for name, cls in _helper_classes().items() if "bias" in inspect.signature(cls).parameters}
    assert with_bias == set(BIAS_HELPERS)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cls", sorted(BIAS_HELPERS))
def test_every_helper_round_trips_with_and_without_bias(cls, bias):
    spec = Spec(cls, BIAS_HELPERS[cls], {"bias": bias})
    written, built = _written(spec), build(spec)
    assert _parameters(written) == _parameters(built), spec_source(spec)
    # ConViT's pos_proj (the relative coordinates' Linear) has its bias whatever `bias` says, and so do the lambda
    # layer's BatchNorms and position convolution (`bias` is its projection's)
    always = ("pos_proj.", "norm_q.", "norm_v.", "conv_lambda.")
    biases = [name for name, _ in _parameters(written) if name.endswith("bias") and not name.startswith(always)]
    assert bool(biases) == bias


# programs whose written source once differed from the module `to_torch` builds
PROGRAMS = [
    # before: stride=1 left out as torch.nn's default, but a pool's stride defaults to its kernel size:
    # nn.MaxPool2d(3) made a 2x2 map of the 6x6 one
    "input(8x8x4) > maxpool3x3(stride=1)",
    "input(8x8x4) > avgpool3x3(stride=1, pad=1)",
    "input(8x4) > maxpool3(stride=1)",
    "input(6x6x6x2) > avgpool2x2x2(stride=1)",
    "input(8x8x4) > maxpool2x2",
    "input(8x8x4) > conv3x3(->4, stride=1, pad=0) > conv3x3(->4, bias) > deconv2x2(->4, stride=2)",
    "input(8x4) > dense(->3) > dense(->3, bias)",
    "input(8x8x4) > attn(heads=2) > attn(heads=2, bias) > attn(heads=2, kv_heads=1, bias)",
    "input(8x8x4) > attn(heads=2, window=4) > attn(heads=2, window=4, shift, bias)",
    "input(6x4) > lstm(->3, bias) > gru(->3)",
    "input(16x16x8) > gcstage(depth=3, heads=2, window=4, mlp=2) > ln",
]


def _described(module) -> str:
    """The module's repr with (k,) and (k, k, ...) written k, as the exporter writes it (torch.nn takes either)."""
    return re.sub(r"\((-?\d+)(?:, \1)*,?\)", r"\1", repr(module))


def _same_module(network):
    namespace: dict = {}
    exec(compile(paramsym.torch_source(network), "<written>", "exec"), namespace)
    with torch.device("meta"):
        written, built = namespace["build_model"]().eval(), paramsym.to_torch(network).eval()
        x = paramsym.example_input(network, batch=2)  # batch norm wants more than one value per channel
        assert written(x).shape == built(x).shape
    assert _described(written) == _described(built)
    assert _parameters(written) == _parameters(built)


@pytest.mark.parametrize("program", PROGRAMS)
def test_written_source_builds_the_module_to_torch_builds(program):
    _same_module(paramsym.parse(program))


@given(programs())
def test_property_written_source_builds_the_module_to_torch_builds(text):
    _same_module(paramsym.parse(text))
