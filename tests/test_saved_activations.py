"""saved_activation_bytes against PyTorch: what autograd keeps for backward, measured with saved_tensors_hooks
(tests/helpers/saved_measure.py: each storage once by its size; parameters, buffers and the input not counted)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import sympy  # noqa: E402

import paramsym  # noqa: E402
from helpers.saved_measure import saved_bytes as measured  # noqa: E402
from paramsym.core.saved import saved_bytes, why_unknown  # noqa: E402
from paramsym.core.setup import Setup, format_named  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def setup_of(fmt: str, batch=2, **rest) -> Setup:
    f = format_named(fmt)
    return Setup(
        weights=f, kv=f, activations=f, batch=sympy.Integer(batch) if isinstance(batch, int) else batch, **rest
    )


def exported(network, fmt: str, batch: int = 2):
    """The program's PyTorch module (its exported source, run) in training mode, and an input."""
    namespace: dict = {}
    exec(compile(paramsym.torch_source(network), "<exported>", "exec"), namespace)
    torch.manual_seed(0)
    model = namespace["build_model"]().to(DTYPES[fmt]).train()
    x = paramsym.example_input(network, batch=batch)
    x = (
        torch.randn_like(x).to(DTYPES[fmt]).requires_grad_()
        if x.dtype.is_floating_point
        else torch.randint(0, 5, x.shape)
    )
    return model, x


def check(program: str, fmt: str, with_input: bool = False, batch: int = 2) -> int:
    network = paramsym.parse(program)
    ours = saved_bytes(network, setup_of(fmt, batch), with_input=with_input)
    assert ours is not None, why_unknown(network.with_options(setup=setup_of(fmt, batch)))
    model, x = exported(network, fmt, batch)
    theirs = measured(model, x, with_input=with_input)
    assert int(ours) == theirs
    return theirs


# each kind between a convolution (which keeps the program's input, not counted) and a global average pool (which
# keeps nothing): what the kind keeps of its input, its output and of its own
KINDS = [
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
    "softmax",
    "dropout(0.1)",
    "dropout",
    "dropout(0)",
    "dropchannels(0.2)",
    "droppath(0.1)",
    "droppath(0)",
    "id",
    "bn",
    "bn(noaffine)",
    "ln",
    "ln(nobias)",
    "gn(groups=2)",
    "rmsnorm",
    "maxpool2x2",
    "maxpool3x3(stride=2, pad=1)",
    "avgpool2x2",
    "avgpool3x3(stride=1, pad=1)",
    "adaptiveavgpool(2x2)",
    "adaptivemaxpool(2x2)",
    "conv3x3(->6, pad=1)",
    "conv1x1(->8, bias)",
    "dwconv3x3(pad=1)",
    "deconv2x2(->4, stride=2)",
    "scale",
    "starrelu",
    "squaredrelu",
    "zeropad(1)",
    "shuffle(2)",
    "space2depth(2)",
]
# the same, with what follows it keeping its output (a convolution): an output kept twice counts once
TAILS = ["gap", "conv1x1(->4) > gap"]


@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
@pytest.mark.parametrize("tail", TAILS)
@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_on_a_map_keeps_what_pytorch_keeps(kind, tail, fmt):
    check(f"input(8x8x4) > conv1x1(->4) > {kind} > {tail}", fmt)


SEQUENCE_KINDS = [
    "dense(->8)",
    "dense(->16, bias)",
    "ln",
    "rmsnorm",
    "gelu",
    "silu",
    "dropout(0.1)",
    "posembed(5)",
    "softmax",
    "scale",
    "transpose",
]


@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
@pytest.mark.parametrize("kind", SEQUENCE_KINDS)
def test_each_kind_on_a_sequence_keeps_what_pytorch_keeps(kind, fmt):
    check(f"input(5x16) > conv1(->16) > {kind} > conv1(->4) > gap", fmt)


# programs whose input is kept (the layer first keeps it): counted here with the input
WITH_INPUT = [
    "input(16) > dense(->8) > relu > dense(->3, bias)",
    "input(8x8x4) > gap > flatten > dense(->3)",
    "input(8x8x4) > flatten > dense(->3)",
    "input(7) > embed(10->16) > posembed(7) > ln > dense(->10)",
    "input(8x8x4) > gmp > dense(->3)",
]


@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
@pytest.mark.parametrize("program", WITH_INPUT)
def test_programs_with_their_input_kept(program, fmt):
    check(program, fmt, with_input=True)
    check(program, fmt)


COMBINED = [
    "input(8x8x4) > conv1x1(->4) > res(conv3x3(->4, pad=1) > bn > relu) > relu > gap",
    "input(8x8x4) > conv1x1(->4) > add(conv3x3(->4, pad=1) | id) > gap",
    "input(8x8x4) > conv1x1(->4) > sub(conv3x3(->4, pad=1) | id) > gap",
    "input(8x8x4) > conv1x1(->4) > concat(conv3x3(->4, pad=1) | relu) > conv1x1(->2) > gap",
    "input(8x8x4) > conv1x1(->4) > mul(conv3x3(->4, pad=1) | id) > gap",
    "input(8x8x4) > conv1x1(->4) > mul(id | gap > dense(->4) > sigmoid) > gap",
    "input(8x8x4) > conv1x1(->4) > res(mul(id | gap > dense(->2) > relu > dense(->4) > sigmoid)) > gap",
    "input(8x8x4) > conv1x1(->4) > (conv3x3(->4, pad=1) > bn > relu) * 3 > gap",
    "input(8x8x4) > conv1x1(->4) > (res(conv3x3(->4, pad=1) > bn > relu)) * 3 > gap",
    "input(8x8x4) > conv1x1(->4) > (relu > conv3x3(->4, pad=1)) * 3 > gap",
    "input(8x8x4) > conv1x1(->4) as a > relu > @a > gap",
]


@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
@pytest.mark.parametrize("program", COMBINED)
def test_combinators_keep_what_pytorch_keeps(program, fmt):
    check(program, fmt)
