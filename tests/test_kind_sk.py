"""Selective kernels, `sk(A | B | ... | ATTENTION)` (docs/language.md, Gates): checked against timm's SelectiveKernel
(SKNet, skresnet) and paramsym's own SelectiveKernels export: params, BatchNorm state, output shape, MACs
(FlopCounterMode FLOPs / 2), through import and export."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params, torch_run, torch_state

timm = pytest.importorskip("timm")
from timm.layers import SelectiveKernel  # noqa: E402

SK = (
    "input(16x16x64) > sk(slice(0, 32) > conv3x3(->64, pad=1) > bn > relu | slice(32, 64) > conv3x3(->64, pad=2, "
    "dilation=2) > bn > relu | gap > dense(->16) > bn > relu > dense(->128))"
)


def counted(network):
    values = network.evaluate()
    return values["params"], values["state"], [int(d) for d in network.output_shape.dims()], values["macs"]


def measured(module, shape):
    return (torch_params(module), torch_state(module), *torch_run(module, shape, "cf"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stride": 2},
        {"split_input": False},
        {"kernel_size": [3, 5, 7], "split_input": False},
        {"keep_3x3": False},
        {"groups": 4, "rd_channels": 12},
    ],
    ids=str,
)
def test_timm_selective_kernel_imports_exactly(kwargs):
    module = nn.Sequential(SelectiveKernel(32, 64, **kwargs))
    text = paramsym.from_torch(module, (15, 16, 32), flat=True)
    assert text.count("sk(") == 1
    assert counted(paramsym.parse(text)) == measured(module, [15, 16, 32]), text


def test_skresnet18_imports_exactly():
    with torch.device("meta"):
        model = timm.create_model("skresnet18", pretrained=False)
    text = paramsym.from_torch(model, (96, 96, 3))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model.eval()(torch.zeros(1, 3, 96, 96, device="meta"))
    network = paramsym.parse(text)
    assert counted(network)[0] == torch_params(model)
    assert counted(network)[2:] == (list(out.shape[1:]), counter.get_total_flops() // 2)
    assert text.count("sk(") >= 2


def test_export_counts_as_pytorch_and_imports_back():
    network = paramsym.parse(SK)
    module = paramsym.to_torch(network)
    assert counted(network) == measured(module, [16, 16, 64]) == (40224, 288, [16, 16, 64], 9440256)
    back = paramsym.from_torch(module, (16, 16, 64), flat=True)
    assert counted(paramsym.parse(back)) == counted(network)
    assert "sk(slice(0, 32) > conv3x3(32->64, pad=1) > bn > relu | slice(32, 64)" in back


def test_export_computes_what_timm_computes():
    """With timm's weights (a 1x1 conv's as a Linear's), paramsym's SelectiveKernels gives timm's output."""
    torch.manual_seed(0)
    theirs = SelectiveKernel(64, 64, rd_channels=16).eval()
    ours = paramsym.to_torch(paramsym.parse(SK)).eval()
    with torch.no_grad():
        for mine, timms in zip(ours.parameters(), theirs.parameters(), strict=True):
            mine.copy_(torch.randn_like(timms).reshape(mine.shape))
            timms.copy_(mine.reshape(timms.shape))
        x = torch.randn(2, 64, 16, 16)
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)


def test_symbolic():
    network = paramsym.parse(
        "input(H x W x C) > sk(conv3x3(->C, pad=1) | conv3x3(->C, pad=2, dilation=2) | gap > dense(->d) > relu > "
        "dense(->2C))"
    )
    assert str(network.params) == "18*C**2 + 3*C*d"
    assert [str(v) for v in network.output_shape.dims()] == ["H", "W", "C"]


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(8x8x4) > sk(conv3x3(->4, pad=1) | gap > dense(->8))", "needs two paths or more"),
        ("input(8x8x4) > sk(conv3x3(->4, pad=1) | conv3x3(->4, pad=1) | gap > dense(->4))", "vector of 2 x 4 scores"),
        ("input(8x8x4) > sk(conv3x3(->4, pad=1) | conv3x3(->4, pad=1) | dense(->8))", "vector of 2 x 4 scores"),
        ("input(8x8x4) > sk(conv3x3(->4, pad=1) | conv3x3(->4) | gap > dense(->8))", "this branch gives 6 x 6 x 4"),
        ("input(8x8x4) > sk(conv3x3(->4, pad=1) | conv3x3(->2, pad=1) | gap > dense(->8))", "this branch gives"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words):
        paramsym.parse(program)


def test_symbolic_score_count_is_checked_with_values():
    network = paramsym.parse("input(8x8x C) > sk(conv3x3(->C, pad=1) | conv3x3(->C, pad=1) | gap > dense(->D))")
    assert network.evaluate(C=4, D=8)["params"] == 2 * 36 * 4 + 32
    with pytest.raises(paramsym.ParamsymError, match="one score per path and channel"):
        network.evaluate(C=4, D=6)


def test_keras_refuses():
    with pytest.raises(paramsym.ParamsymError, match="no Keras equivalent"):
        paramsym.keras_source(paramsym.parse(SK, convention="keras"))


def test_paths_in_the_table():
    network = paramsym.parse(SK)
    paths = [layer.path for layer in network.layers]
    assert paths[:2] == ["sk.path1.slice", "sk.path1.conv3x3"] and paths[-1] == "sk.attention.dense"
