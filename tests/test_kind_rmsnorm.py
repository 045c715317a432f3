"""`rmsnorm` (LANGUAGE.md section 7): one module, paramsym/kinds/rmsnorm.py, checked here
against PyTorch's nn.RMSNorm and Keras' RMSNormalization, through export and import."""

from __future__ import annotations

import keras
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch before keras)
from helpers.cli_helpers import run
from helpers.frameworks import torch_params, torch_run, torch_state
from helpers.round_trip import import_back

# (program, params, MACs, output shape). MACs by hand, not from paramsym: a multiply-accumulate is a weight
# times an input summed into an output (LANGUAGE.md section 3: O·Cout·k·Cin/g for a convolution,
# positions·Cin·Cout for dense); RMSNorm's arithmetic (square, mean, rsqrt, one scale per element) has none,
# and PyTorch's FlopCounterMode counts 0 for nn.RMSNorm (test_flop_counter_counts_nothing_for_rmsnorm), so
# its MACs are 0 and a program's MACs are those of its dense layers alone.
CASES = [
    ("input(7x32) > rmsnorm", 32, 0, [7, 32]),
    ("input(8x8x16) > rmsnorm", 16, 0, [8, 8, 16]),
    ("input(10) > rmsnorm(noaffine)", 0, 0, [10]),
    ("input(10) > rmsnorm(10, eps=1)", 10, 0, [10]),
    ("input(10) > rmsnorm(eps=0.00001)", 10, 0, [10]),
    # 4 positions through dense(4096->512), then through dense(512->4096)
    (
        "input(4x4096) > dense(->512) > rmsnorm > dense(->4096)",
        4096 * 512 + 512 + 512 * 4096,
        4 * 4096 * 512 + 4 * 512 * 4096,
        [4, 4096],
    ),
]


@pytest.mark.parametrize("program, params, macs, shape", CASES, ids=[c[0] for c in CASES])
def test_counts(program, params, macs, shape):
    net = paramsym.parse(program)
    assert net.evaluate() == {
        "params": params,
        "state": 0,
        "active": params,
        "kv_cache": 0,
        "total": params,
        "macs": macs,
    }
    assert [int(d) for d in net.output_shape.dims()] == shape


def test_flop_counter_counts_nothing_for_rmsnorm():
    """What the framework says, for the row above: nn.RMSNorm has no matrix product, FlopCounterMode counts 0
    (its operations are elementwise), and with dense layers around it, only theirs."""
    assert torch_run(nn.RMSNorm(32), [7, 32], "cl")[1] == 0
    stack = nn.Sequential(nn.Linear(4096, 512, bias=False), nn.RMSNorm(512), nn.Linear(512, 4096, bias=False))
    net = paramsym.parse("input(4x4096) > dense(->512) > rmsnorm > dense(->4096)")
    assert torch_run(stack, [4, 4096], "cl")[1] == net.evaluate()["macs"] == 4 * 4096 * 512 * 2


def test_symbolic_width_and_stated_channels():
    assert str(paramsym.parse("input(T x d) > rmsnorm").params) == "d"
    # rmsnorm(64) first in a program says the channels for the layers after it
    assert paramsym.parse("rmsnorm(64) > dense(->8)").params == 64 + 64 * 8


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(8x16) > rmsnorm(32)", "rmsnorm says it has 32 channels, but the layer before gives 16"),
        ("input(8x16) > rmsnorm(16->16)", "rmsnorm takes no channels"),
        ("input(8x16) > rmsnorm(groups=2)", "unknown keyword 'groups' for rmsnorm"),
        ("input(8x16) > rmsnorm(eps=-1)", "eps must be one number of at least 0"),
        ("input(8x16) > rmsnorm(eps=e)", "eps must be one number of at least 0"),
        ("input(8x16) > rmsnorm(bias)", "'bias' is read as the number of channels; rmsnorm accepts: eps, noaffine"),
        ("rmsnorm", "rmsnorm needs its channels"),
        # stated channels flow on, and a later mismatch points back at them
        ("rmsnorm(64) > dense(32->8)", "the 64 channels come from rmsnorm (line 1, column 1)"),
        ("input(8x16) > rmsnrom", "did you mean 'rmsnorm'?"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words.replace("(", r"\(").replace(")", r"\)")):
        paramsym.parse(program)


@pytest.mark.parametrize(
    "program, factory, layout",
    [
        ("input(7x32) > rmsnorm", lambda: nn.RMSNorm(32), "cl"),
        ("input(8x8x16) > rmsnorm", lambda: nn.RMSNorm(16), "cl"),
        ("input(12) > rmsnorm(noaffine)", lambda: nn.RMSNorm(12, elementwise_affine=False), "cl"),
    ],
)
def test_matches_pytorch(program, factory, layout):
    module = factory()
    net = paramsym.parse(program)
    shape, macs = torch_run(module, [int(d) for d in net.input_shape.dims()], layout)
    values = net.evaluate()
    assert (values["params"], values["state"], values["macs"]) == (torch_params(module), torch_state(module), macs)
    assert [int(d) for d in net.output_shape.dims()] == shape


@given(st.integers(1, 4096), st.integers(1, 64), st.booleans())
def test_property_params_are_one_scale_per_channel(channels, length, affine):
    program = f"input({length}x{channels}) > rmsnorm{'' if affine else '(noaffine)'}"
    assert paramsym.parse(program).params == (channels if affine else 0)
    with torch.device("meta"):
        assert torch_params(nn.RMSNorm(channels, elementwise_affine=affine)) == (channels if affine else 0)


@pytest.mark.parametrize(
    "program",
    [
        "input(7x32) > rmsnorm",
        "input(6x6x8) > conv1x1(->16) > rmsnorm > relu",
        "input(24) > rmsnorm(noaffine) > dense(->4, bias)",
    ],
)
def test_export_to_torch_and_import_back(program):
    net = paramsym.parse(program)
    module = paramsym.to_torch(net)
    assert any(isinstance(m, nn.RMSNorm) for m in module.modules())
    assert torch_params(module) == net.evaluate()["params"]
    y = module(paramsym.example_input(net))
    assert list(y.shape[1:]) == [int(d) for d in [net.output_shape.dims()[-1], *net.output_shape.dims()[:-1]]]
    imported, again = import_back(net, module)
    assert "rmsnorm" in imported
    assert again.evaluate() == net.evaluate()


def test_import_from_a_hand_written_model():
    model = nn.Sequential(nn.Linear(64, 32), nn.RMSNorm(32), nn.Linear(32, 8))
    assert paramsym.from_torch(model, (64,)).split() == [
        "input(64)",
        ">",
        "dense(64->32,",
        "bias)",
        ">",
        "rmsnorm",
        ">",
        "dense(32->8,",
        "bias)",
    ]
    with pytest.raises(paramsym.ParamsymError, match="does not normalise the channels"):
        # over the width of a map (PyTorch's last axis), not over its channels
        paramsym.from_torch(nn.Sequential(nn.Conv2d(3, 4, 1), nn.RMSNorm(5)), (5, 5, 3))


def test_export_to_keras():
    net = paramsym.parse("input(7x32) > rmsnorm > dense(->8, bias)", convention="keras")
    model = paramsym.to_keras(net)
    assert any(isinstance(layer, keras.layers.RMSNormalization) for layer in model.layers)
    assert model.count_params() == net.evaluate()["total"] == 32 + 32 * 8 + 8
    assert list(model.output_shape[1:]) == [7, 8]
    assert "layers.RMSNormalization(axis=-1)" in paramsym.keras_source(net)
    with pytest.raises(paramsym.ParamsymError, match="always learns its scale"):
        paramsym.to_keras(paramsym.parse("input(7x32) > rmsnorm(noaffine)"))


def test_explain_and_cli():
    result = run("explain", "input(7x32) > rmsnorm")
    assert result.returncode == 0 and "RMSNorm learns a scale per channel and no shift: 32 parameters." in result.stdout
    result = run("export", "input(7x32) > rmsnorm", "--to", "torch")
    assert result.returncode == 0 and "nn.RMSNorm(32)" in result.stdout
