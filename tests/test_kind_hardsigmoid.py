"""`hardsigmoid` (LANGUAGE.md section 8): one module, paramsym/kinds/hardsigmoid.py,
checked here against PyTorch's nn.Hardsigmoid and Keras' hard_sigmoid, through export
and import."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch before keras)
from helpers.cli_helpers import run
from helpers.frameworks import torch_params, torch_run
from helpers.round_trip import import_back

CASES = [
    ("input(6x6x4) > hardsigmoid", [6, 6, 4]),
    ("input(9x5) > hardsigmoid", [9, 5]),
    ("input(12) > hardsigmoid", [12]),
    ("input(2x3x4x5) > hardsigmoid", [2, 3, 4, 5]),
]


@pytest.mark.parametrize("program, shape", CASES, ids=[c[0] for c in CASES])
def test_counts_match_pytorch(program, shape):
    net = paramsym.parse(program)
    out, macs = torch_run(nn.Hardsigmoid(), [int(d) for d in net.input_shape.dims()], "cf")
    assert net.evaluate() == {"params": 0, "state": 0, "active": 0, "kv_cache": 0, "total": 0, "macs": macs}
    assert [int(d) for d in net.output_shape.dims()] == shape == out


def test_the_seed_of_section_8_a_squeeze_and_excitation_gate():
    # MobileNetV3's gate: gap > dense > relu > dense > hardsigmoid; the hard sigmoid adds nothing
    net = paramsym.parse("input(7x7x96) > gap > dense(->24, bias) > relu > dense(->96, bias) > hardsigmoid")
    module = nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, 24), nn.ReLU(), nn.Linear(24, 96), nn.Hardsigmoid()
    )
    assert net.evaluate()["params"] == torch_params(module) == 96 * 24 + 24 + 24 * 96 + 96


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(8x16) > hardsigmoid(0.5)", "hardsigmoid does not take a value here"),
        ("input(8x16) > hardsigmoid(4->4)", "hardsigmoid takes no channels"),
        ("input(8x16) > hardsigmoid(slope=2)", "unknown keyword 'slope' for hardsigmoid"),
        ("input(8x16) > hardsigmiod", "did you mean 'hardsigmoid'?"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words.replace("(", r"\(").replace(")", r"\)")):
        paramsym.parse(program)


def test_export_to_torch_computes_the_same_function_and_imports_back():
    net = paramsym.parse("input(8x8x3) > conv3x3(->4, pad=1, bias) > hardsigmoid")
    module = paramsym.to_torch(net)
    assert isinstance(module[-1], nn.Hardsigmoid)
    x = torch.linspace(-5, 5, 8 * 8 * 3).reshape(1, 3, 8, 8)
    assert torch.equal(module(x), F.hardsigmoid(module[0](x)))
    imported, again = import_back(net, module)
    assert imported.strip().endswith("> hardsigmoid")
    assert again.evaluate() == net.evaluate()


def test_import_of_the_functional_form():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return F.hardsigmoid(self.conv(x))

    assert paramsym.from_torch(Gate(), (5, 5, 3)).split()[-1] == "hardsigmoid"


def test_export_to_keras_is_the_same_function():
    net = paramsym.parse("input(5) > hardsigmoid", convention="keras")
    model = paramsym.to_keras(net)
    x = np.linspace(-5, 5, 5, dtype="float32").reshape(1, 5)
    expected = torch.nn.functional.hardsigmoid(torch.tensor(x)).numpy()
    assert np.allclose(np.asarray(model(x)), expected)
    assert model.count_params() == 0 and 'activation="hard_sigmoid"' not in paramsym.keras_source(net)
    assert "layers.Activation(activation='hard_sigmoid')" in paramsym.keras_source(net)


def test_explain():
    result = run("explain", "input(6x6x4) > hardsigmoid")
    assert result.returncode == 0 and "No parameters: it acts on each value separately." in result.stdout
