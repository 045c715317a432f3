"""Every layer row of the language reference against PyTorch's own count,
buffers, output shape and MAC count (torch's FlopCounterMode), three or more
configurations each."""

from __future__ import annotations

import pytest
from torch import nn

import paramsym
from helpers.frameworks import torch_params, torch_run, torch_state

# (program, module factory, layout): the input shape comes from the program's input(...).
CASES = [
    # convolutions: kernel, stride, padding (incl. same), dilation, groups, bias, 1-D/2-D/3-D
    ("input(16x16x3) > conv3x3(->8, bias)", lambda: nn.Conv2d(3, 8, 3), "cf"),
    ("input(32x32x8) > conv5x5(8->16, stride=2, pad=2)", lambda: nn.Conv2d(8, 16, 5, 2, 2, bias=False), "cf"),
    (
        "input(20x24x16) > conv3x3(->32, dilation=2, groups=4, bias)",
        lambda: nn.Conv2d(16, 32, 3, dilation=2, groups=4),
        "cf",
    ),
    ("input(12x12x4) > conv1x7(->6, pad=0x3)", lambda: nn.Conv2d(4, 6, (1, 7), padding=(0, 3), bias=False), "cf"),
    (
        "input(15x13x4) > conv3x3(->6, stride=2x1, pad=1)",
        lambda: nn.Conv2d(4, 6, 3, stride=(2, 1), padding=1, bias=False),
        "cf",
    ),
    ("input(50x4) > conv3(->8, stride=2, bias)", lambda: nn.Conv1d(4, 8, 3, stride=2), "cf"),
    ("input(8x9x10x2) > conv3x3x3(->4, pad=1, bias)", lambda: nn.Conv3d(2, 4, 3, padding=1), "cf"),
    ("input(17x17x5) > conv2d(->7, k=4, pad=same)", lambda: nn.Conv2d(5, 7, 4, padding="same", bias=False), "cf"),
    (
        "input(30x6) > conv1d(->6, k=5, groups=3, dilation=3, bias)",
        lambda: nn.Conv1d(6, 6, 5, dilation=3, groups=3),
        "cf",
    ),
    ("input(6x7x8x3) > conv3d(->5, k=2x3x1, stride=2)", lambda: nn.Conv3d(3, 5, (2, 3, 1), stride=2, bias=False), "cf"),
    # depthwise (groups = Cin), with a channel multiplier
    ("input(16x16x8) > dwconv3x3(pad=1)", lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), "cf"),
    ("input(17x17x6) > dwconv5x5(stride=2, bias)", lambda: nn.Conv2d(6, 6, 5, stride=2, groups=6), "cf"),
    ("input(10x10x8) > dwconv3x3(->16)", lambda: nn.Conv2d(8, 16, 3, groups=8, bias=False), "cf"),
    ("input(40x4) > dwconv3(pad=same, bias)", lambda: nn.Conv1d(4, 4, 3, padding="same", groups=4), "cf"),
    # transposed convolutions
    (
        "input(8x8x8) > deconv4x4(->4, stride=2, pad=1)",
        lambda: nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, bias=False),
        "cf",
    ),
    ("input(5x5x4) > deconv3x3(->6, groups=2, bias)", lambda: nn.ConvTranspose2d(4, 6, 3, groups=2), "cf"),
    ("input(7x7x6) > deconv2x2(->3, stride=2, bias)", lambda: nn.ConvTranspose2d(6, 3, 2, stride=2), "cf"),
    (
        "input(9x5) > deconv3(->2, stride=2, pad=1, outpad=1, dilation=2)",
        lambda: nn.ConvTranspose1d(5, 2, 3, stride=2, padding=1, output_padding=1, dilation=2, bias=False),
        "cf",
    ),
    # dense on a vector and on the last axis of a sequence
    ("input(20) > dense(->10, bias)", lambda: nn.Linear(20, 10), "cl"),
    ("input(5x7) > fc(->3)", lambda: nn.Linear(7, 3, bias=False), "cl"),
    ("input(4x4x50) > linear(50->9, bias)", lambda: nn.Linear(50, 9), "cl"),
    # pooling: default stride = kernel, stride, padding, dilation, ceil mode, 1-D/3-D
    ("input(9x9x3) > maxpool2x2", lambda: nn.MaxPool2d(2), "cf"),
    ("input(9x9x3) > pool", lambda: nn.MaxPool2d(2), "cf"),
    ("input(10x10x3) > maxpool3x3(stride=2, ceil)", lambda: nn.MaxPool2d(3, 2, ceil_mode=True), "cf"),
    ("input(13x13x2) > maxpool3x3(stride=2, pad=1, ceil)", lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), "cf"),
    ("input(15x15x3) > avgpool3x3(stride=2, pad=1)", lambda: nn.AvgPool2d(3, 2, 1), "cf"),
    ("input(16x16x3) > maxpool3x3(stride=1, dilation=2)", lambda: nn.MaxPool2d(3, 1, dilation=2), "cf"),
    ("input(21x4) > avgpool2(ceil)", lambda: nn.AvgPool1d(2, ceil_mode=True), "cf"),
    ("input(6x6x6x2) > maxpool2x2x2", lambda: nn.MaxPool3d(2), "cf"),
    # global pooling and flatten
    ("input(7x7x64) > gap", lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), "cf"),
    ("input(5x9x16) > gmp", lambda: nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten()), "cf"),
    ("input(30x8) > gap", lambda: nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten()), "cf"),
    ("input(4x4x50) > flatten", lambda: nn.Flatten(), "cf"),
    ("input(3x5x7x2) > flatten", lambda: nn.Flatten(), "cf"),
    ("input(11x3) > flatten", lambda: nn.Flatten(), "cf"),
    # normalisation
    ("input(8x8x16) > bn", lambda: nn.BatchNorm2d(16), "cf"),
    ("input(10x6) > batchnorm", lambda: nn.BatchNorm1d(6), "cf"),
    ("input(4x4x4x5) > bn(noaffine)", lambda: nn.BatchNorm3d(5, affine=False), "cf"),
    ("input(12) > bn", lambda: nn.BatchNorm1d(12), "cl"),
    ("input(8x8x16) > ln", lambda: nn.LayerNorm(16), "cl"),
    ("input(7x32) > layernorm", lambda: nn.LayerNorm(32), "cl"),
    ("input(10) > ln(noaffine)", lambda: nn.LayerNorm(10, elementwise_affine=False), "cl"),
    ("input(8x8x16) > gn(groups=4)", lambda: nn.GroupNorm(4, 16), "cf"),
    ("input(9x12) > groupnorm(groups=3)", lambda: nn.GroupNorm(3, 12), "cf"),
    ("input(2x3x4x8) > gn(groups=8, noaffine)", lambda: nn.GroupNorm(8, 8, affine=False), "cf"),
    # parameter-free element-wise layers
    ("input(6x6x4) > relu", lambda: nn.ReLU(), "cf"),
    ("input(6x6x4) > relu6", lambda: nn.ReLU6(), "cf"),
    ("input(6x6x4) > leakyrelu(0.2)", lambda: nn.LeakyReLU(0.2), "cf"),
    ("input(6x4) > elu", lambda: nn.ELU(), "cf"),
    ("input(6x4) > gelu", lambda: nn.GELU(), "cf"),
    ("input(6x4) > silu", lambda: nn.SiLU(), "cf"),
    ("input(5) > sigmoid", lambda: nn.Sigmoid(), "cl"),
    ("input(5) > tanh", lambda: nn.Tanh(), "cl"),
    ("input(5) > softmax", lambda: nn.Softmax(dim=-1), "cl"),
    ("input(6x6x4) > hardswish", lambda: nn.Hardswish(), "cf"),
    ("input(6x6x4) > dropout(0.5)", lambda: nn.Dropout(0.5), "cf"),
    ("input(6x6x4) > id", lambda: nn.Identity(), "cf"),
    # PReLU: one slope per channel, or one shared
    ("input(6x6x4) > prelu", lambda: nn.PReLU(4), "cf"),
    ("input(9x7) > prelu", lambda: nn.PReLU(7), "cf"),
    ("input(6x6x4) > prelu(shared)", lambda: nn.PReLU(), "cf"),
]


@pytest.mark.parametrize("program, factory, layout", CASES, ids=[c[0] for c in CASES])
def test_layer_matches_pytorch(program, factory, layout):
    module = factory()
    network = paramsym.parse(program)
    values = network.evaluate()
    shape, macs = torch_run(module, [int(d) for d in network.input_shape.dims()], layout)
    assert values["params"] == torch_params(module)
    assert values["state"] == torch_state(module)
    assert [int(d) for d in network.output_shape.dims()] == shape
    assert values["macs"] == macs


# Whole networks: the same comparison over several layers, channels inferred by paramsym.
NETWORKS = [
    (
        "input(32x32x3) > conv3x3(->16, pad=1) > bn > relu > maxpool2x2 > conv3x3(->32, pad=1, bias) > relu"
        " > gap > dense(->10, bias)",
        lambda: nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, 10),
        ),
    ),
    (
        "input(28x28x1) > conv5x5(->6, pad=2, bias) > avgpool2x2 > conv5x5(->16, bias) > avgpool2x2 > flatten"
        " > dense(->120, bias) > dense(->84, bias) > dense(->10, bias)",
        lambda: nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),
            nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(400, 120),
            nn.Linear(120, 84),
            nn.Linear(84, 10),
        ),
    ),
]


@pytest.mark.parametrize("program, factory", NETWORKS, ids=["cnn", "lenet5"])
def test_network_matches_pytorch(program, factory):
    module = factory()
    network = paramsym.parse(program)
    values = network.evaluate()
    shape, macs = torch_run(module, [int(d) for d in network.input_shape.dims()], "cf")
    assert (values["params"], values["state"], values["macs"]) == (torch_params(module), torch_state(module), macs)
    assert [int(d) for d in network.output_shape.dims()] == shape
