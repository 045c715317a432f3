"""The model zoo in examples/ against the frameworks' own models: torchvision's
parameter count, BatchNorm running statistics, output shape and MACs (by
torch's FlopCounterMode, on the meta device so nothing is computed), and Keras
Applications' count_params() with the Keras convention."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch)
from helpers.frameworks import torch_params, torch_state
from paramsym.language.syntax import symbol

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.Tanh(),
        nn.Linear(120, 84),
        nn.Tanh(),
        nn.Linear(84, 10),
    )


def torchvision_model(name, **kwargs):
    def build():
        return getattr(torchvision.models, name)(weights=None, **kwargs)

    return build


ZOO = {
    "lenet5": lenet5,
    "alexnet": torchvision_model("alexnet"),
    "vgg11": torchvision_model("vgg11"),
    "vgg16": torchvision_model("vgg16"),
    "vgg19": torchvision_model("vgg19"),
    "vgg16_bn": torchvision_model("vgg16_bn"),
    "resnet18": torchvision_model("resnet18"),
    "resnet34": torchvision_model("resnet34"),
    "resnet50": torchvision_model("resnet50"),
    "resnet101": torchvision_model("resnet101"),
    "resnet152": torchvision_model("resnet152"),
    "resnext50_32x4d": torchvision_model("resnext50_32x4d"),
    "wide_resnet50_2": torchvision_model("wide_resnet50_2"),
    "mobilenet_v2": torchvision_model("mobilenet_v2"),
    "squeezenet1_0": torchvision_model("squeezenet1_0"),
    "squeezenet1_1": torchvision_model("squeezenet1_1"),
    "googlenet": torchvision_model("googlenet", aux_logits=False, init_weights=False),
    "densenet121": torchvision_model("densenet121"),
    "resnet18_symbolic": torchvision_model("resnet18"),
}


def framework_counts(factory, input_shape):
    """Parameters, state, output shape and MACs, from the framework alone."""
    with torch.device("meta"):
        module = factory()
    module.eval()
    *spatial, channels = input_shape
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = module(torch.zeros(1, channels, *spatial, device="meta"))
    return torch_params(module), torch_state(module), list(out.shape[1:]), counter.get_total_flops() // 2


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_counts_as_the_framework(name):
    network = paramsym.parse((EXAMPLES / f"{name}.psym").read_text())
    params, state, shape, macs = framework_counts(ZOO[name], [int(d) for d in network.input_shape.dims()])
    values = network.evaluate()
    assert values["params"] == params
    assert values["state"] == state
    assert [int(d) for d in network.output_shape.dims()] == shape
    assert values["macs"] == macs


def test_every_example_names_its_source_and_is_tested():
    from test_lm_zoo import MODELS as LANGUAGE_MODELS  # against Hugging Face and torchvision in test_lm_zoo.py
    from test_zoo_modern import ZOO as MODERN  # against torchvision in test_zoo_modern.py

    tested = (
        set(ZOO)
        | {
            "keras_vgg16",
            "keras_resnet50",
            "cifar_cnn",
            "cifar_cnn_symbolic",
            "resnet_cifar",
            "gpt2_symbolic",
            "vit_b_16",
            "llama_symbolic",
        }
        | {name for name, _, _ in LANGUAGE_MODELS}
    )
    tested |= set(MODERN)
    for path in EXAMPLES.glob("*.psym"):
        assert path.stem in tested, path.name
        assert path.read_text().startswith("#"), f"{path.name} should say what it is in a comment"


def test_symbolic_resnet18_is_a_quadratic_in_its_width():
    network = paramsym.parse((EXAMPLES / "resnet18_symbolic.psym").read_text())
    C = symbol("C")
    polynomial = sympy.Poly(network.params, C)
    assert polynomial.degree() == 2
    assert network.evaluate(C=64)["params"] == torch_params(torchvision.models.resnet18(weights=None))
    # the same program with numbers written in agrees at other widths too
    numeric = paramsym.parse((EXAMPLES / "resnet18_symbolic.psym").read_text().replace("let C = 64", "let C = 24"))
    assert numeric.evaluate()["params"] == polynomial.eval(24)


@pytest.mark.parametrize("name, application", [("keras_vgg16", "VGG16"), ("keras_resnet50", "ResNet50")])
def test_keras_applications(name, application):
    import keras

    model = getattr(keras.applications, application)(weights=None)
    network = paramsym.parse((EXAMPLES / f"{name}.psym").read_text(), convention="keras")
    values = network.evaluate()
    assert values["total"] == model.count_params()
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    assert values["params"] == trainable
    assert [int(d) for d in network.output_shape.dims()] == list(model.output_shape[1:])


def test_resnet50_table_is_readable():
    from helpers.cli_helpers import run

    result = run("count", str(EXAMPLES / "resnet50.psym"))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert any("bottleneck(64, 256, 1, 1).res.main.conv1x1" in line for line in lines)
    assert "params = 25,557,032" in result.stdout
    folded = run("count", str(EXAMPLES / "resnet50.psym"), "--fold").stdout
    assert len(folded.splitlines()) < 40 and "bottleneck(512, 2048, 2, 1) (" in folded
