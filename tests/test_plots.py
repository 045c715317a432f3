"""Plots: real files of the kind the name asks for."""

from __future__ import annotations

import pytest

from helpers.cli_helpers import run

HEADERS = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}


@pytest.mark.parametrize("suffix", HEADERS)
def test_parameters_per_layer(tmp_path, suffix):
    path = tmp_path / f"layers{suffix}"
    result = run("count", "examples/resnet18.psym", "--plot", str(path))
    assert result.returncode == 0 and path.read_bytes().startswith(HEADERS[suffix])


def test_sweep_with_budget_line(tmp_path):
    path = tmp_path / "sweep.svg"
    result = run(
        "sweep",
        "input(32x32x3) > conv2d(->C, k=k, pad=1) > gap > dense(->10, bias)",
        "--grid",
        "C=8:64:8",
        "--grid",
        "k=3,5",
        "--budget",
        "20k",
        "--plot",
        str(path),
    )
    assert result.returncode == 0
    svg = path.read_text()
    assert "budget 20,000" in svg and "k = 5" in svg


def test_bad_plot_name():
    result = run("count", "examples/lenet5.psym", "--plot", "out.gif")
    assert result.returncode == 2 and ".png, .svg, .pdf" in result.stderr
