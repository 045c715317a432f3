"""The command line through the real entry point: formats, --set, conventions,
program from a file, from standard input and from the argument."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from helpers.cli_helpers import run

SYMBOLIC = "conv3x3(3->C, bias) > conv3x3(->2C, bias) > conv3x3(->4C, bias) > gap > dense(->10, bias)"


def count_json(*args, **kwargs):
    result = run("count", "--format", "json", *args, **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_json_document_matches_the_contract():
    data = count_json("let C = 74\ninput(32x32x3) > " + SYMBOLIC)
    assert data["params"] == {"expr": "90*C**2 + 74*C + 10", "value": 498326}
    assert data["state"] == {"expr": "0", "value": 0}
    assert data["total"] == data["params"]
    assert data["output_shape"] == ["10"]
    assert data["symbols"] == {"C": {"default": 74}}
    first = data["layers"][0]
    assert first["index"] == 0 and first["name"] == "conv3x3" and (first["line"], first["column"]) == (2, 18)
    assert first["in_shape"] == ["32", "32", "3"] and first["out_shape"] == ["30", "30", "C"]
    assert first["params"] == {"expr": "28*C", "value": 2072}
    assert first["fan_in"] == {"expr": "27", "value": 27}
    for key in ("state", "connections", "macs"):
        assert set(first[key]) == {"expr", "value"}
    assert [layer["index"] for layer in data["layers"]] == list(range(5))


def test_value_is_null_while_a_symbol_has_no_value():
    data = count_json(SYMBOLIC)
    assert data["params"] == {"expr": "90*C**2 + 74*C + 10", "value": None}
    assert data["symbols"] == {"C": {"default": None}}
    assert data["macs"] == {"expr": None, "value": None}


@pytest.mark.parametrize("value, expected", [("74", 498326), ("75", 511810), ("1_000", 90074010), ("1k", 90074010)])
def test_set_gives_values(value, expected):
    assert count_json(SYMBOLIC, "--set", f"C={value}")["params"]["value"] == expected


def test_convention_keras_adds_state():
    torch = count_json("conv3x3(3->16) > bn")
    keras = count_json("conv3x3(3->16) > bn", "--convention", "keras")
    assert (torch["total"]["value"], keras["total"]["value"]) == (464, 496)
    assert keras["total"]["expr"] == "496" and keras["convention"] == "keras"


def test_program_from_file_and_stdin(tmp_path):
    path = tmp_path / "net.psym"
    path.write_text("# a file\nconv3x3(32->64, bias)\n")
    assert count_json(str(path))["params"]["value"] == 18496
    assert count_json("-", stdin="conv3x3(32->64, bias)")["params"]["value"] == 18496


@pytest.mark.parametrize(
    "name, hint",
    [
        ("no-such-model.psym", "hint: PROGRAM is a file, '-' for standard input, or the program text itself"),
        ("resnet19.psym", "hint: did you mean {folder}/resnet18.psym?"),
        ("lama2_7b.psym", "hint: did you mean {folder}/llama2_7b.psym?"),
    ],
)
def test_missing_file_is_a_usage_error(tmp_path, name, hint):
    for model in ("resnet18.psym", "llama2_7b.psym"):
        (tmp_path / model).write_text("conv3x3(3->8)\n")
    result = run("count", str(tmp_path / name))
    assert result.returncode == 2 and f"no such file: {tmp_path / name}" in result.stderr
    assert hint.format(folder=tmp_path) in result.stderr


def test_table_is_the_default():
    result = run("count", "conv3x3(32->64,bias) > pool > conv5x5(->40)")
    assert result.returncode == 0
    assert "params = 18,496 + 0 + 64,000 = 82,496" in result.stdout
    for word in ("layer", "output", "params", "fan-in", "MACs", "conv5x5", "total"):
        assert word in result.stdout


def test_csv():
    result = run("count", "--format", "csv", "input(24x24x3) > conv3x3(->10, bias) > relu")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["name"] for r in rows] == ["conv3x3", "relu", "total"]
    assert rows[0]["params"] == "280" and rows[0]["out_shape"] == "22x22x10" and rows[2]["params"] == "280"


def test_markdown_and_latex():
    md = run("count", "--format", "markdown", "input(24x24x3) > conv3x3(->10, bias)").stdout
    assert md.startswith("| # | layer |") and "| 0 | `conv3x3` | 22x22x10 | 280 | 27 | 130,680 |" in md
    tex = run("count", "--format", "latex", SYMBOLIC).stdout
    assert r"\toprule" in tex and r"90 C^{2} + 74 C + 10" in tex


def test_explain_follows_the_seed_answer():
    out = run("explain", "conv3x3(32->64, bias)").stdout
    assert "Each 3x3 filter spans all 32 input channels: 3·3·32 = 288 weights." in out
    assert "64 filters (one per output channel): 288·64 = 18,432 weights." in out
    assert "Plus 64 biases, one per output channel: 18,432 + 64 = 18,496 parameters." in out


def test_explain_symbolic():
    out = run("explain", "conv2d(C_in->C_out, k=k, bias)").stdout
    assert "Each kxk filter spans all C_in input channels: k·k·C_in = C_in*k^2 weights." in out
    assert "Total: C_in*C_out*k^2 + C_out learnable parameters." in out


@pytest.mark.parametrize(
    "args, words",
    [
        (["count", SYMBOLIC, "--set", "D=3"], "no symbol 'D'"),
        (["count", SYMBOLIC, "--set", "C=0"], "positive whole number"),
        (["count", SYMBOLIC, "--set", "C=2.5"], "whole number"),
        (["count", SYMBOLIC, "--set", "C"], "NAME=VALUE"),
        (["count", SYMBOLIC, "--format", "yaml"], "Invalid value for '--format'"),
        (["count"], "Missing argument 'PROGRAM'"),
        (["frobnicate"], "No such command"),
    ],
)
def test_usage_errors_exit_2(args, words):
    result = run(*args)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_python_dash_m_and_version():
    result = subprocess.run(
        [sys.executable, "-m", "paramsym", "count", "--format", "json", "relu > dense(4->2)"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and json.loads(result.stdout)["params"]["value"] == 8
    assert run("--version").stdout.startswith("paramsym, version")
    assert run("--help").returncode == 0


def test_explain_of_a_language_model_says_its_input_is_token_ids():
    assert run("explain", "input(T) > embed(100->8)").stdout.startswith("Input: a sequence of T token ids.\n")
    assert run("explain", "input(12) > dense(->3)").stdout.startswith("Input: 12 (channels last).\n")


def _in_a_terminal(columns: int, *args: str) -> str:
    """What the real command prints to a terminal `columns` wide (a pseudo-terminal, its size set as a window's)."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(
        [sys.executable, "-m", "paramsym", *args], stdin=secondary, stdout=secondary, stderr=secondary, env=env
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the command ended and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert process.wait(timeout=60) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_explain_in_an_80_column_terminal_breaks_lines_between_words():
    program = "input(50x50x2) > conv5x5(->20, bias) > relu > maxpool2x2 > conv5x5(->40, bias)"
    shown = _in_a_terminal(80, "explain", program)
    piped = run("explain", program).stdout
    assert max(len(line) for line in shown.splitlines()) <= 80 < max(len(line) for line in piped.splitlines())
    assert shown.split() == piped.split()  # the same words in the same order, none broken
    assert "\n   floor((50 + 2·0 − 1·(5−1) − 1)/1) + 1 = 46 per axis" in shown  # continued under its line's text
