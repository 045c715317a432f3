"""`mul(...)` and `aux(...)` through export and import: the exported gate (Branches("mul")) broadcasts
as decided from the program, so torch.fx traces it, and paramsym's own side head (Aux) reads back as
aux(...)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.fx

import paramsym
from helpers.cli_helpers import run
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import Branches


def gates(module):
    return [m.expand for m in module.modules() if isinstance(m, Branches) and m.how == "mul"]


@pytest.mark.parametrize(
    "program, expand",
    [
        ("input(8x8x4) > mul(id | gap > dense(->4) > sigmoid)", [(0, 2)]),
        ("input(6x8) > mul(dense(->8) > silu | gap > dense(->8) > sigmoid)", [(0, 1)]),
        ("input(4x4x4x4) > mul(gap > dense(->4) > sigmoid | id)", [(3, 0)]),
        ("input(6x8) > mul(dense(->8) > silu | dense(->8))", [(0, 0)]),
        ("input(8) > mul(id | dense(->8) > sigmoid)", [(0, 0)]),
        ("input(8x8x4) > mul(id | aux(conv1x1(->2)) > gap > aux(dense(->3)) > dense(->4) > sigmoid)", [(0, 2)]),
    ],
)
def test_gates_broadcast_as_the_program_says_and_trace(program, expand):
    network = paramsym.parse(program)
    module = paramsym.to_torch(network).eval()
    assert gates(module) == expand
    x = torch.randn(2, *paramsym.example_input(network).shape[1:])
    traced = torch.fx.symbolic_trace(module)
    with torch.no_grad():
        assert torch.equal(traced(x), module(x))
        dims = [int(d) for d in network.output_shape.dims()]
        assert list(module(x).shape[1:]) == [dims[-1], *dims[:-1]]


@pytest.mark.parametrize(
    "program",
    [
        "input(8x8x4) > conv3x3(->4) > aux(gap > dense(->3)) > conv3x3(->4)",
        "input(8x8x4) > aux(gap > dense(->3)) > conv3x3(->4) > aux(conv1x1(->2)) > aux(gap > dense(->5))",
        "input(8x8x4) > res(conv3x3(->4, pad=1) > aux(gap > dense(->2)) > bn) > gap",
        "input(8x8x4) > concat(conv1x1(->2) > aux(conv1x1(->3)) | conv1x1(->4))",
        "input(6x8) > lstm(->8) > aux(last > dense(->3)) > ln",
        "input(8x8x4) > mul(id | gap > dense(->4) > sigmoid) > aux(conv3x3(->2, stride=2) > gap > dense(->2))",
    ],
)
def test_side_heads_import_back(program):
    network = paramsym.parse(program)
    text, again = import_back(network)
    assert text.count("aux(") == program.count("aux("), text
    assert again.evaluate() == network.evaluate(), text
    assert again.output_shape.dims() == network.output_shape.dims()


def test_a_side_head_keeps_its_place():
    network = paramsym.parse("input(8x8x4) > conv3x3(->6) > aux(gap > dense(->3)) > conv3x3(->5)")
    text, _ = import_back(network)
    lines = [line.strip(" >") for line in text.splitlines()]
    assert lines == ["input(8x8x4)", "conv3x3(4->6)", "aux(gap > flatten > dense(6->3))", "conv3x3(6->5)"]


def test_exported_gate_source_runs_alone(tmp_path):
    program = "input(8x8x4) > mul(id | gap > dense(->4) > sigmoid) > aux(gap > dense(->3)) > gap"
    path = tmp_path / "model.py"
    assert run("export", program, "--to", "torch", "-o", str(path)).returncode == 0
    assert "expand=(0, 2)" in path.read_text()
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert result.stdout.strip() == f"(1, 4) {paramsym.parse(program).params}", result.stderr


@pytest.mark.parametrize(
    "program",
    [
        # found by reading keras_export after the fuzz (the Keras gate's Reshape took the shape of the wrong layer)
        "input(8x1) > mul(id | gap > dense(->1, bias) > sigmoid > aux(dense(->2))) > flatten",
        "input(8x8x4) > mul(id | gap > dense(->4) > sigmoid > aux(dense(->2)))",
        "input(8x8x4) > mul(id | gap > concat(dense(->2) | dense(->2)))",
        "input(6x6x4) > mul(gap > dense(->4) | mul(gap > dense(->4) | id))",
    ],
)
def test_keras_gate_takes_the_shape_of_the_gate(program):
    from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch)

    network = paramsym.parse(program, convention="keras")
    model = paramsym.to_keras(network)
    assert model.count_params() == network.evaluate()["total"]
    shape = model.output_shape[0] if isinstance(model.output_shape, list) else model.output_shape
    assert list(shape[1:]) == [int(d) for d in network.output_shape.dims()]
