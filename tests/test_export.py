"""Export to PyTorch and Keras: every zoo model and random programs written by
Hypothesis become real modules whose own counts and shapes equal paramsym's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch)
from helpers.cli_helpers import run
from helpers.frameworks import keras_counts, torch_params, torch_state
from helpers.strategies import programs
from paramsym.frameworks.torch_modules import Aux

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run_head(aux, inputs, output):
    aux.head(*inputs)  # the hook returns None: the Aux's output stays its input


BATCH = 2  # torch's GroupNorm refuses a single value per group even in eval mode


def torch_counts(network):
    """Build the exported module on the meta device (no memory, no arithmetic) and ask torch: params, state,
    output shape and FLOPs of the whole batch, exactly as the counter gives them (no division that could drop
    a remainder)."""
    with torch.device("meta"):
        module = paramsym.to_torch(network)
        x = paramsym.example_input(network, batch=BATCH)
    module.eval()
    for side in module.modules():
        if isinstance(side, Aux):
            # a side head never runs in the exported module (its output is not used): run it on the same input,
            # so that the counter counts its MACs as the program does
            side.register_forward_hook(_run_head)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(x)
    shape = list(y.shape[1:])
    if y.dim() > 2:
        shape = shape[1:] + shape[:1]
    return torch_params(module), torch_state(module), shape, counter.get_total_flops()


def paramsym_counts(network):
    """paramsym's counts in torch's terms: a FLOP count of the batch is 2 FLOPs (a multiply and an add) per MAC
    of each of the BATCH samples."""
    values = network.evaluate()
    return (
        values["params"],
        values["state"],
        [network.value(d) for d in network.output_shape.dims()],
        2 * BATCH * values["macs"],
    )


def test_flops_are_compared_whole():
    """One MAC more or less is 4 FLOPs of the batch: the comparison sees it (with `// 2 // 2` a FLOP count
    off by 1 to 3 compared equal)."""
    network = paramsym.parse("input(5x3) > dense(->2, bias)")
    got, want = torch_counts(network), paramsym_counts(network)
    assert got[3] == want[3] == 2 * BATCH * 5 * 3 * 2 == 120


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.psym")), ids=lambda p: p.stem)
def test_zoo_exports_to_torch(path):
    network = paramsym.parse(path.read_text())
    if any(network.value(expr) is None for expr in (network.params,)):
        pytest.skip("a free symbol: export needs numbers")  # gpt2_symbolic, llama_symbolic
    if len(network.inputs) > 1:  # t5_base: an encoder-decoder (and T5's buckets), refused by name
        with pytest.raises(paramsym.ParamsymUsageError, match=r"second input|relative-position buckets"):
            paramsym.to_torch(network)
        return
    got, want = torch_counts(network), paramsym_counts(network)
    if "moe(" in network.source:
        # the exported mixture runs every expert on every position (the same output as routing each
        # position to its k best), so the FLOP counter sees E experts where one position uses k: the MACs
        # of moe are checked against the formula in test_gates.py
        got, want = got[:3], want[:3]
    assert got == want


@pytest.mark.parametrize(
    "name", ["lenet5", "resnet18", "mobilenet_v2", "squeezenet1_1", "googlenet", "densenet121", "keras_resnet50"]
)
def test_zoo_exports_to_keras(name):
    network = paramsym.parse((EXAMPLES / f"{name}.psym").read_text(), convention="keras")
    model = paramsym.to_keras(network)
    values = network.evaluate()
    assert model.count_params() == values["total"]
    # trainable weights are params, non-trainable ones (BatchNorm's moving statistics) state; MACs as counted
    assert keras_counts(model, [int(d) for d in network.input_shape.dims()]) == (
        values["params"],
        values["state"],
        values["macs"],
    )
    assert list(model.output_shape[1:]) == [int(d) for d in network.output_shape.dims()]


@given(programs())
def test_property_random_programs_match_torch(text):
    network = paramsym.parse(text)
    assert torch_counts(network) == paramsym_counts(network), text


@given(programs(max_stages=4, keras_safe=True))
def test_property_random_programs_match_keras(text):
    network = paramsym.parse(text, convention="keras")
    model = paramsym.to_keras(network)  # the keras_safe programs avoid what Keras cannot do
    values = network.evaluate()
    assert model.count_params() == values["total"], text
    trainable, frozen, macs = keras_counts(model, [int(d) for d in network.input_shape.dims()])
    assert (trainable, frozen) == (values["params"], values["state"]), text
    why_not = _keras_macs_not_comparable(network)
    if why_not is None:
        assert macs == values["macs"], text
    event("Keras MACs compared" if why_not is None else f"Keras MACs not compared: {why_not}")
    # with side heads (aux), the model's outputs are the main one, then one per head
    shape = model.output_shape[0] if isinstance(model.output_shape, list) else model.output_shape
    assert list(shape[1:]) == [int(d) for d in network.output_shape.dims()], text


def _keras_macs_not_comparable(network) -> str | None:
    """Why the FLOP counter's MACs of the Keras model are not those of the program, or None:
    * Keras' attention projects with einsum; over one value (an input width d or c of 1, or h·e = 1) torch
      computes it as an elementwise product, which FlopCounterMode does not count (shown in
      test_kind_attention.py: test_keras_products_over_one_value_are_not_seen_by_the_counter);
    * `scale` (an elementwise product, no MACs, as PyTorch's LayerScale) is exported to Keras as a 1x1
      depthwise convolution, whose products the counter counts;
    * Keras' SimpleRNN (`rnn`) on the torch backend computes step 0 once more, to learn the cell's output shape
      (keras/src/backend/torch/rnn.py, "output_time_zero"), and throws it away: one step's products too many.
      (LSTM and GRU match; tests/test_kind_recurrent.py checks rnn's MACs against torch's nn.RNN.)"""
    for count in network.layers:
        if count.layer.name == "attn":
            sizes = count.layer.kind.sizes(count.layer)
            if min(sizes["d"], sizes["c"], sizes["q"]) < 2:
                return "an attention projection over one value"
        if count.layer.name == "scale":
            return "scale stands as a depthwise convolution"
        if count.layer.name == "rnn":
            return "Keras' SimpleRNN runs step 0 twice"
    return None


@given(programs(), st.data())
def test_property_broken_programs_raise_only_paramsym_errors(text, data):
    position = data.draw(st.integers(0, len(text) - 1))
    edit = data.draw(st.sampled_from(["drop", "swap", "insert"]))
    noise = data.draw(st.sampled_from(list("()>|,=x0123456789-*^") + ["->", "conv3x3", "res(", " ", "\n"]))
    if edit == "drop":
        broken = text[:position] + text[position + 1 :]
    elif edit == "swap":
        broken = text[:position] + noise + text[position + 1 :]
    else:
        broken = text[:position] + noise + text[position:]
    try:
        network = paramsym.parse(broken)
        network.to_dict()
    except paramsym.ParamsymError as error:
        assert str(error)


def test_exported_torch_source_runs_alone(tmp_path):
    program = (
        "input(15x15x3) > conv3x3(->8, stride=2, pad=same, bias) > maxpool3x3(stride=2, pad=same)"
        " > res(dwconv3x3(pad=1) > bn) > concat(conv1x1(->4) | id) > ln > flatten > dense(->4)"
    )
    path = tmp_path / "model.py"
    assert run("export", program, "--to", "torch", "-o", str(path)).returncode == 0
    assert "import paramsym" not in path.read_text()
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path)
    network = paramsym.parse(program)
    assert result.stdout.strip() == f"(1, 4) {network.evaluate()['params']}"


def test_exported_keras_source_runs_alone(tmp_path):
    path = tmp_path / "model.py"
    assert run("export", str(EXAMPLES / "squeezenet1_1.psym"), "--to", "keras", "-o", str(path)).returncode == 0
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.stdout.strip().splitlines()[-1] == "(None, 1000) 1235496"


@pytest.mark.parametrize(
    "args, words",
    [
        (["conv3x3(3->C)"], "give C a value"),
        (["input(8x8x3) > deconv3x3(->6, groups=3)", "--to", "keras"], "no Keras equivalent"),
        (["conv3x3(3->8)", "--to", "keras"], "input shape"),
    ],
)
def test_export_errors(args, words):
    result = run("export", *args)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
