"""Import from PyTorch: torchvision models and paramsym's own exports become
programs that count exactly as the modules do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from hypothesis import given
from torch import nn

import paramsym
from helpers.cli_helpers import run
from helpers.frameworks import torch_params, torch_state
from helpers.round_trip import import_back
from helpers.strategies import programs
from test_zoo import ZOO

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TORCHVISION = [name for name in ZOO if name not in ("lenet5", "resnet18_symbolic")]


def counts(network):
    values = network.evaluate()
    return values["params"], values["state"], [int(d) for d in network.output_shape.dims()]


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_models_import_exactly(name):
    model = ZOO[name]()
    text = paramsym.from_torch(model, (224, 224, 3))
    network = paramsym.parse(text)
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, 3, 224, 224))
    assert counts(network) == (torch_params(model), torch_state(model), list(out.shape[1:]))


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.psym")), ids=lambda p: p.stem)
def test_zoo_round_trip(path):
    network = paramsym.parse(path.read_text())
    if "embed(" in network.source:
        # built with real weights here (a 175B model would not fit); read back by the family's layout in
        # tests/test_lm_zoo.py
        pytest.skip("language models: their import is tested in test_lm_zoo.py")
    _, again = import_back(network)
    assert round_trip_counts(again) == round_trip_counts(network)


def round_trip_counts(network):
    """Every quantity (params, state, MACs, ...) and the output shape."""
    return network.evaluate(), [int(d) for d in network.output_shape.dims()]


@given(programs())
def test_property_round_trip_counts_the_same(text):
    network = paramsym.parse(text)
    imported, again = import_back(network)
    assert round_trip_counts(again) == round_trip_counts(network), (text, imported)


class TimesABuffer(nn.Module):
    """A product by a buffer (a constant tensor): no learnt scale. (`x * 2`, a Python number, imports as nothing since
    it changes no count: tests/test_import_scalar_factors.py.)"""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.register_buffer("factor", torch.full((4, 1, 1), 2.0))

    def forward(self, x):
        return self.conv(x) * self.factor


@pytest.mark.parametrize(
    "model, words",
    [
        (TimesABuffer(), "'*' multiplies by 'factor', which is not a parameter"),
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(6, 2)), "acts on the last axis of a 4-D tensor"),
        (
            nn.Sequential(nn.Conv2d(3, 4, 3), nn.Upsample(scale_factor=2, mode="nearest-exact")),
            "module '1' resizes with mode 'nearest-exact'",
        ),
        (nn.Sequential(nn.Conv2d(3, 8, 3), nn.PixelShuffle(2)), "module '1' (PixelShuffle)"),
    ],
)
def test_what_the_language_cannot_express_is_named(model, words):
    with pytest.raises(paramsym.ParamsymError, match=words.replace("(", r"\(").replace(")", r"\)")):
        paramsym.from_torch(model, (8, 8, 3))


def test_cli_import():
    result = run("import", "torchvision.models:resnet18", "--input", "224x224x3")
    assert result.returncode == 0
    network = paramsym.parse(result.stdout)
    assert network.evaluate()["params"] == torch_params(torchvision.models.resnet18(weights=None))
    bad = run("import", "torchvision.models:no_such_model", "--input", "224x224x3")
    assert bad.returncode == 2 and "cannot find" in bad.stderr
    shape = run("import", "torchvision.models:resnet18", "--input", "224 by 224")
    assert shape.returncode == 2 and "--input takes sizes" in shape.stderr


def test_cli_import_of_something_that_is_not_a_model():
    for target, words in (("os:getcwd", "not a torch.nn.Module"), ("json:loads", "calling json:loads() failed")):
        result = run("import", target, "--input", "3x3x3")
        assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_cli_import_with_a_wrong_input_shape_says_so_once():
    result = run("import", "torchvision.models:resnet18", "--input", "224x224")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("usage error: the model does not run on a 224x224 input")
