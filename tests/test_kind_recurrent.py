"""`lstm`, `gru`, `rnn` (LANGUAGE.md section 7): one module, paramsym/kinds/recurrent.py, checked here
against PyTorch's nn.LSTM/GRU/RNN (parameters, a real forward pass, MACs) and Keras' LSTM, GRU,
SimpleRNN and Bidirectional, through export and import.

MACs: FlopCounterMode counts 0 for nn.LSTM without proj_size on the CPU (its oneDNN kernel is
not a matmul the counter sees), so every case is compared against a hand count of the gate
matmuls made from the real module's weight shapes, and against FlopCounterMode where it counts.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import keras
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch before keras)
from helpers.cli_helpers import run
from helpers.frameworks import torch_params
from helpers.round_trip import import_back
from paramsym.render.explain import explain

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
TORCH = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
KERAS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}

# ---- section 7.1 -------------------------------------------------------------------------------

# (program, params torch, output shape, params keras or None)
WORKED = [
    ("input(32x128) > lstm(->256, bias)", 395264, [32, 256], 394240),
    ("input(32x128) > gru(->256, bias, layers=3, bidirectional)", 2958336, [32, 512], None),
    ("input(32x128) > lstm(->256, bias, proj=64)", 215040, [32, 64], None),
    ("input(32x128) > rnn(->256, bias, last)", 98816, [256], 98560),
]


@pytest.mark.parametrize("program, params, shape, keras_params", WORKED, ids=[w[0] for w in WORKED])
def test_worked_examples(program, params, shape, keras_params):
    net = paramsym.parse(program)
    assert net.params == params
    assert [int(d) for d in net.output_shape.dims()] == shape
    if keras_params is not None:
        assert paramsym.parse(program, convention="keras").params == keras_params


@pytest.mark.parametrize("program, params, shape, keras_params", WORKED, ids=[w[0] for w in WORKED])
def test_worked_examples_through_the_cli(program, params, shape, keras_params):
    result = run("count", program, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["params"]["value"] == params
    if keras_params is not None:
        result = run("count", program, "--format", "json", "--convention", "keras")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["params"]["value"] == keras_params


# ---- every flag against PyTorch -------------------------------------------------------------------

T, I, H, P = 5, 6, 8, 3  # noqa: E741  (I: the input size of the language's T x I)


def _program(cell, bias, layers, bidirectional, proj, last, t=T, i=I, h=H):
    args = [f"->{h}"] + (["bias"] if bias else []) + ([f"layers={layers}"] if layers != 1 else [])
    args += (
        (["bidirectional"] if bidirectional else []) + ([f"proj={proj}"] if proj else []) + (["last"] if last else [])
    )
    return f"input({t}x{i}) > {cell}({', '.join(args)})"


def _module(cell, bias, layers, bidirectional, proj, i=I, h=H):
    extra = {"proj_size": proj} if proj else {}
    return TORCH[cell](i, h, num_layers=layers, bias=bias, bidirectional=bidirectional, batch_first=True, **extra)


def _hand_macs(module, cell, steps) -> int:
    """The gate matmuls of one forward pass, from the module's own weights: each step, each gate of
    each layer and direction multiplies its (H x I_l) input and (H x R) recurrent weights by a vector;
    with proj_size, the (P x H) projection follows."""
    gates, macs = GATES[cell], 0
    for name, weight in module.named_parameters():
        if name.startswith(("weight_ih", "weight_hh")):
            for gate in weight.chunk(gates, dim=0):  # PyTorch stacks the gates' matrices
                rows, cols = gate.shape
                macs += rows * cols
        elif name.startswith("weight_hr"):
            rows, cols = weight.shape
            macs += rows * cols
    return steps * macs


FLAGS = [
    (cell, bias, layers, bidirectional, proj, last)
    for cell, bias, layers, bidirectional, proj, last in itertools.product(
        GATES, (False, True), (1, 2, 3), (False, True), (0, P), (False, True)
    )
    if not (proj and cell != "lstm")
]


@pytest.mark.parametrize("cell, bias, layers, bidirectional, proj, last", FLAGS, ids=[_program(*f) for f in FLAGS])
def test_every_flag_matches_pytorch(cell, bias, layers, bidirectional, proj, last):
    net = paramsym.parse(_program(cell, bias, layers, bidirectional, proj, last))
    module = _module(cell, bias, layers, bidirectional, proj).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(torch.zeros(1, T, I))[0]
    if last:
        y = y[:, -1]
    values = net.evaluate()
    assert values["params"] == torch_params(module)
    assert [int(d) for d in net.output_shape.dims()] == list(y.shape[1:])
    assert values["macs"] == _hand_macs(module, cell, T)
    counted = counter.get_total_flops() // 2
    if cell == "lstm" and not proj:
        assert counted in (0, values["macs"])  # 0: the oneDNN LSTM kernel (docs/frameworks.md)
    else:
        assert counted == values["macs"]
    assert net.layers[0].counts.fan_in == I + (proj or H)


def test_nonlinearity_and_dropout_count_nothing():
    # nn.RNN(nonlinearity="relu") and dropout between stacked layers: the same parameters
    net = paramsym.parse("input(5x6) > rnn(->8, bias, layers=2)")
    assert net.params == torch_params(nn.RNN(6, 8, num_layers=2, nonlinearity="relu", dropout=0.5))
    assert (
        paramsym.parse(
            paramsym.from_torch(_Wrapped(nn.RNN(6, 8, 2, nonlinearity="relu", batch_first=True, dropout=0.5)), (5, 6))
        ).params
        == net.params
    )


def test_symbolic_sizes():
    net = paramsym.parse("input(T x I) > lstm(->H, bias, layers=L, bidirectional)")
    values = {"T": 7, "I": 5, "H": 6, "L": 3}
    module = nn.LSTM(5, 6, num_layers=3, bidirectional=True)
    assert net.evaluate(**values)["params"] == torch_params(module)
    assert net.evaluate(**values)["macs"] == _hand_macs(module, "lstm", 7)
    assert str(paramsym.parse("input(T x I) > gru(->H)").params) == "3*H**2 + 3*H*I"


def test_generic_formula():
    [(_path, template, values, count)] = paramsym.generic(paramsym.parse("input(32x128) > lstm(->256, bias)"))
    assert str(template) == "4*C_in*C_out + 4*C_out**2 + 8*C_out" and count == 395264
    [(_path, template, values, count)] = paramsym.generic(
        paramsym.parse("input(32x128) > gru(->256, bias, layers=3, bidirectional)")
    )
    assert template.subs(values) == count == 2958336
    [(_path, template, values, count)] = paramsym.generic(paramsym.parse("input(32x128) > lstm(->256, proj=64)"))
    assert template.subs(values) == count


# ---- Hypothesis: random recurrent programs against PyTorch ------------------------------------------


@st.composite
def recurrent_layers(draw, width):
    """One recurrent layer on `width` channels: (text, module, output width)."""
    cell = draw(st.sampled_from(sorted(GATES)))
    hidden = draw(st.integers(2, 9))
    bias, bidirectional = draw(st.booleans()), draw(st.booleans())
    layers = draw(st.integers(1, 3))
    proj = draw(st.integers(1, hidden - 1)) if cell == "lstm" and draw(st.booleans()) else 0
    text = _program(cell, bias, layers, bidirectional, proj, False, h=hidden).split(" > ")[1]
    module = _module(cell, bias, layers, bidirectional, proj, i=width, h=hidden)
    return text, module, (2 if bidirectional else 1) * (proj or hidden)


class _Wrapped(nn.Module):
    """A hand-written sequence model as people write one: the recurrent layers take (N, T, I)."""

    def __init__(self, *recurrent, last=False, head=None):
        super().__init__()
        self.recurrent = nn.ModuleList(recurrent)
        self.last = last
        self.head = head

    def forward(self, x):  # x: (N, C, T), PyTorch's channels-first layout
        x = x.movedim(1, -1)
        for module in self.recurrent:
            x, _ = module(x)
        if self.last:
            x = x[:, -1]
            return self.head(x) if self.head is not None else x
        return x.movedim(-1, 1)


@given(st.data(), st.integers(1, 6), st.integers(1, 7), st.integers(1, 3), st.booleans())
def test_property_random_recurrent_programs_match_pytorch(data, steps, width, depth, last):
    texts, modules, channels = [], [], width
    for _ in range(depth):
        text, module, channels = data.draw(recurrent_layers(channels))
        texts.append(text)
        modules.append(module)
    program = f"input({steps}x{width}) > " + " > ".join(texts)
    if last:
        program = program[:-1] + ", last)"
    net = paramsym.parse(program)
    for module in modules:
        module.batch_first = True
    model = _Wrapped(*modules, last=last).eval()
    with torch.no_grad():
        y = model(torch.zeros(1, width, steps))
    assert net.evaluate()["params"] == torch_params(model), program
    shape = list(y.shape[1:]) if last else [steps, y.shape[1]]
    assert [int(d) for d in net.output_shape.dims()] == shape, program
    cells = [text.split("(")[0] for text in texts]
    assert net.evaluate()["macs"] == sum(_hand_macs(m, c, steps) for m, c in zip(modules, cells)), program
    # the same program exported, on the meta device, where FlopCounterMode counts every cell
    with torch.device("meta"):
        exported = paramsym.to_torch(net)
        x = paramsym.example_input(net)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        exported(x)
    assert counter.get_total_flops() // 2 == net.evaluate()["macs"], program
    # and imported back from the hand-written model
    assert paramsym.parse(paramsym.from_torch(model, (steps, width))).evaluate() == net.evaluate(), program


# ---- mistakes -------------------------------------------------------------------------------------

# (program, words, line, column, hint words or None)
MISTAKES = [
    (
        "input(5x8) > gru(->4, proj=2)",
        "gru has no proj=: PyTorch's proj_size exists only for LSTM",
        1,
        23,
        "lstm(->H, proj=P)",
    ),
    ("input(5x8) > rnn(->4, proj=2)", "rnn has no proj=", 1, 23, None),
    ("input(5x8) > lstm(->4, proj=4)", "proj=4 must be smaller than the hidden size 4", 1, 24, None),
    ("input(5x8) > lstm(->4, proj=9)", "PyTorch requires proj_size < hidden_size", 1, 24, None),
    ("input(5x8) > lstm(->4, proj=0)", "proj must be at least 1, not 0", 1, 24, None),
    ("input(8x8x3) > lstm(->4)", "lstm needs a sequence (T x I), but gets the map 8 x 8 x 3", 1, 16, "tokens"),
    ("input(8) >\n  gru(->4)", "gru needs a sequence (T x I), but gets the vector 8", 2, 3, "input(T x I)"),
    ("input(5x8) > lstm(->4, layers=0)", "layers must be at least 1, not 0", 1, 24, None),
    ("input(5x8) > lstm(->4, layers=1.5)", "layers must be a whole number", 1, 24, None),
    ("input(5x8) > lstm(->0)", "output channels must be a positive whole number, not 0", 1, 21, None),
    ("input(5x8) > lstm(bias)", "lstm needs its hidden size: write lstm(->256, ...)", 1, 14, None),
    ("input(5x8) > lstm(9->4)", "lstm says it takes 9 input channels, but the layer before gives 8", 1, 19, None),
    ("input(5x8) > lstm(->4, bidirectional, bidirectional)", "'bidirectional' is given twice", 1, 39, None),
    (
        "input(5x8) > lstm(->4, bidirectonal)",
        "unknown argument 'bidirectonal' for lstm",
        1,
        24,
        "did you mean 'bidirectional'",
    ),
    ("input(5x8) > lstm(->4, bias, nobias)", "both 'bias' and 'nobias' are given", 1, 30, None),
    (
        "let H = 4\nlet P = 4\ninput(5x8) > lstm(->H, proj=P)",
        "proj=P must be smaller than the hidden size H",
        3,
        24,
        None,
    ),
]


@pytest.mark.parametrize("program, words, line, column, hint", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_mistakes(program, words, line, column, hint):
    with pytest.raises(paramsym.ParamsymError) as caught:
        paramsym.parse(program).evaluate()
    error = caught.value
    assert words in str(error)
    assert (error.line, error.column) == (line, column)
    if hint is not None:
        assert hint in (error.hint or "")


def test_pytorch_refuses_what_paramsym_refuses():
    with pytest.raises(ValueError):
        nn.LSTM(8, 4, proj_size=4)
    with pytest.raises(ValueError):
        nn.GRU(8, 4, proj_size=2)
    with pytest.raises(ValueError):
        nn.LSTM(8, 4, num_layers=0)


# ---- export -------------------------------------------------------------------------------------

EXPORTS = [
    "input(12x8) > lstm(->16, bias)",
    "input(12x8) > gru(->6, layers=3, bidirectional, last) > dense(->4, bias)",
    "input(12x8) > lstm(->16, proj=5, layers=2, bidirectional) > rnn(->3, bias, last)",
    "input(12x8) > dense(->4) > res(gru(->4, bias)) > ln",
]


@pytest.mark.parametrize("program", EXPORTS)
def test_export_to_torch_and_import_back(program):
    net = paramsym.parse(program)
    module = paramsym.to_torch(net).eval()
    assert torch_params(module) == net.evaluate()["params"]
    with torch.no_grad():
        y = module(paramsym.example_input(net))
    dims = [int(d) for d in net.output_shape.dims()]
    assert list(y.shape[1:]) == (dims if len(dims) == 1 else [dims[-1], *dims[:-1]])
    imported, again = import_back(net, module)
    assert again.evaluate() == net.evaluate(), imported


def test_exported_torch_source_runs_alone(tmp_path):
    program = "input(12x8) > lstm(->16, bias, layers=2, bidirectional, proj=5) > gru(->4, last)"
    path = tmp_path / "model.py"
    assert run("export", program, "--to", "torch", "-o", str(path)).returncode == 0
    assert "import paramsym" not in path.read_text() and "class Recurrent" in path.read_text()
    result = subprocess.run([sys.executable, "-W", "ignore", str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert result.stdout.strip() == f"(1, 4) {paramsym.parse(program).params}", result.stderr


def test_exported_keras_source_runs_alone(tmp_path):
    program = "input(12x8) > lstm(->16, bias, layers=2) > gru(->4, bias, bidirectional, last) > dense(->3)"
    path = tmp_path / "model.py"
    assert run("export", program, "--to", "keras", "-o", str(path)).returncode == 0
    assert "layers.Bidirectional(layer=layers.GRU(" in path.read_text()
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert (
        result.stdout.strip().splitlines()[-1] == f"(None, 3) {paramsym.parse(program, convention='keras').params}"
    ), result.stderr


# ---- Keras ----------------------------------------------------------------------------------------

KERAS_CASES = [
    (cell, bias, layers, bidirectional, last)
    for cell, bias, layers, bidirectional, last in itertools.product(
        GATES, (False, True), (1, 2), (False, True), (False, True)
    )
]


@pytest.mark.parametrize(
    "cell, bias, layers, bidirectional, last",
    KERAS_CASES,
    ids=[_program(c, b, n, d, 0, la) for c, b, n, d, la in KERAS_CASES],
)
def test_keras_layers_count_as_the_keras_convention(cell, bias, layers, bidirectional, last):
    program = _program(cell, bias, layers, bidirectional, 0, last)
    net = paramsym.parse(program, convention="keras")
    # Keras' own layers, written by hand: one per stacked layer, each in Bidirectional when bidirectional
    x = inputs = keras.Input(shape=(T, I))
    for index in range(layers):
        layer = KERAS[cell](H, use_bias=bias, return_sequences=not (last and index == layers - 1))
        x = (keras.layers.Bidirectional(layer) if bidirectional else layer)(x)
    model = keras.Model(inputs, x)
    assert model.count_params() == net.evaluate()["total"] == net.params
    assert list(model.output_shape[1:]) == [int(d) for d in net.output_shape.dims()]
    exported = paramsym.to_keras(net)
    assert exported.count_params() == model.count_params()
    assert exported.output_shape == model.output_shape


def test_keras_refuses_a_projection():
    with pytest.raises(paramsym.ParamsymError, match="Keras LSTM has no projection"):
        paramsym.to_keras(paramsym.parse("input(5x8) > lstm(->4, proj=2)"))


# ---- import ---------------------------------------------------------------------------------------


class _Indexed(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 6, batch_first=True, bidirectional=True)
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        out = self.gru(x.movedim(1, -1))[0]
        return self.head(out[:, -1, :])


def test_import_hand_written_models():
    lstm = nn.LSTM(8, 16, num_layers=2, batch_first=True, proj_size=4, bias=False)
    text = paramsym.from_torch(_Wrapped(lstm), (10, 8))
    assert text.split() == ["input(10x8)", ">", "lstm(8->16,", "layers=2,", "proj=4)"]
    text = paramsym.from_torch(_Wrapped(nn.RNN(8, 5, batch_first=True), last=True, head=nn.Linear(5, 2)), (10, 8))
    assert text.split() == ["input(10x8)", ">", "rnn(8->5,", "bias,", "last)", ">", "dense(5->2,", "bias)"]
    model = _Indexed()
    text = paramsym.from_torch(model, "10x8")
    assert "gru(8->6, bias, bidirectional, last)" in text
    assert paramsym.parse(text).params == torch_params(model)


def test_import_refuses_batch_second():
    model = _Wrapped(nn.LSTM(8, 16))
    with pytest.raises(paramsym.ParamsymError, match=r"batch_first=False.*batch_first=True"):
        paramsym.from_torch(model, (10, 8))


def test_explain_and_cli():
    result = run("explain", "input(32x128) > lstm(->256, bias)")
    assert result.returncode == 0, result.stderr
    assert "An LSTM has 4 gates" in result.stdout
    assert (
        "Input weights 4·256·128 = 131,072, recurrent weights 4·256·256 = 262,144, biases 2·4·256 = 2,048: "
        "395,264 parameters."
    ) in result.stdout
    assert "PyTorch keeps two vectors of 4·256 = 1,024 (b_ih and b_hh)" in result.stdout
    keras_words = explain(paramsym.parse("input(32x128) > lstm(->256, bias)", convention="keras"))
    assert "biases 4·256 = 1,024: 394,240 parameters." in keras_words
    assert "Keras keeps one vector of 4·256 = 1,024, PyTorch two (b_ih and b_hh)." in keras_words
    result = run("explain", "input(32x128) > gru(->256, bias, layers=3, bidirectional)")
    assert "Layers 2 to 3 (their input: the 512 outputs of the layer before), per direction" in result.stdout
    assert "In all, 2 directions x 3 layers: 2,958,336 parameters." in result.stdout
    result = run("export", "input(32x128) > rnn(->256, last)", "--to", "torch")
    assert result.returncode == 0 and "nn.RNN(128, 256, bias=False, batch_first=True)" in result.stdout
