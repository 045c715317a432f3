"""Keras 3 (torch backend) for what PyTorch has no module for, SeparableConv2D,
and for the Keras convention, whose total counts BatchNorm's moving statistics."""

from __future__ import annotations

import keras
import pytest
from keras import layers

import paramsym
from helpers import frameworks  # noqa: F401  (sets KERAS_BACKEND=torch before keras is imported)
from helpers.frameworks import keras_counts


def keras_model(shape, *stack):
    model = keras.Sequential([keras.Input(shape=shape), *stack])
    return model


CASES = [
    ("input(24x24x3) > sepconv3x3(->16, bias)", (24, 24, 3), lambda: [layers.SeparableConv2D(16, 3)]),
    (
        "input(17x17x8) > sepconv5x5(->4, stride=2)",
        (17, 17, 8),
        lambda: [layers.SeparableConv2D(4, 5, strides=2, use_bias=False)],
    ),
    (
        "input(16x16x6) > sepconv3x3(->12, pad=same, stride=2, bias)",
        (16, 16, 6),
        lambda: [layers.SeparableConv2D(12, 3, strides=2, padding="same")],
    ),
    (
        "input(20x20x4) > sepconv3x3(->8, dilation=2, bias)",
        (20, 20, 4),
        lambda: [layers.SeparableConv2D(8, 3, dilation_rate=2)],
    ),
    ("input(40x5) > sepconv3(->7, bias)", (40, 5), lambda: [layers.SeparableConv1D(7, 3)]),
    # pad=same with a stride is TensorFlow's ceil(n/s), which PyTorch cannot express
    (
        "input(15x15x3) > conv3x3(->8, stride=2, pad=same, bias)",
        (15, 15, 3),
        lambda: [layers.Conv2D(8, 3, strides=2, padding="same")],
    ),
    (
        "input(15x15x3) > maxpool3x3(stride=2, pad=same)",
        (15, 15, 3),
        lambda: [layers.MaxPooling2D(3, strides=2, padding="same")],
    ),
    # the seed question: ten 3x3 filters on a 24x24x3 input, then Flatten and Dense
    (
        "input(24x24x3) > conv3x3(->10, bias) > flatten > dense(->10, bias)",
        (24, 24, 3),
        lambda: [layers.Conv2D(10, 3), layers.Flatten(), layers.Dense(10)],
    ),
]


@pytest.mark.parametrize("program, shape, stack", CASES, ids=[c[0] for c in CASES])
def test_layers_match_keras(program, shape, stack):
    model = keras_model(shape, *stack())
    network = paramsym.parse(program, convention="keras")
    values = network.evaluate()
    assert values["total"] == model.count_params()
    # trainable and non-trainable weights apart, and the MACs FlopCounterMode sees in the torch backend
    assert keras_counts(model, shape) == (values["params"], values["state"], values["macs"])
    assert [int(d) for d in network.output_shape.dims()] == list(model.output_shape[1:])


CONVENTION = [
    ("conv3x3(3->16) > bn", (8, 8, 3), lambda: [layers.Conv2D(16, 3, use_bias=False), layers.BatchNormalization()]),
    (
        "input(32x32x3) > conv3x3(->32, pad=1) > bn > relu > maxpool2x2 > conv3x3(->64, pad=1) > bn > relu > gap"
        " > dense(->10, bias)",
        (32, 32, 3),
        lambda: [
            layers.Conv2D(32, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.GlobalAveragePooling2D(),
            layers.Dense(10),
        ],
    ),
    (
        "input(10x6) > bn > dense(->4, bias) > ln",
        (10, 6),
        lambda: [layers.BatchNormalization(), layers.Dense(4), layers.LayerNormalization()],
    ),
]


@pytest.mark.parametrize("program, shape, stack", CONVENTION, ids=["seed-bn", "cnn", "sequence"])
def test_keras_convention_total(program, shape, stack):
    model = keras_model(shape, *stack())
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    frozen = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    keras_net = paramsym.parse(program, convention="keras").evaluate()
    torch_net = paramsym.parse(program).evaluate()
    assert keras_net["total"] == model.count_params() == trainable + frozen
    # MACs need the input shape, which the seed program leaves to its reader
    sized = program if program.startswith("input(") else f"input({'x'.join(map(str, shape))}) > {program}"
    macs = paramsym.parse(sized, convention="keras").evaluate()["macs"]
    assert keras_counts(model, shape) == (keras_net["params"], keras_net["state"], macs)
    assert torch_net["total"] == trainable
