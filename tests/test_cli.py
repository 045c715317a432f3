"""The command line through the real entry point: formats, --set, conventions,
program from a file, from standard input and from the argument."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from helpers.cli_helpers import PARAMSYM, run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

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


def _in_a_terminal(columns: int, *args: str, status: int = 0) -> str:
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
    assert process.wait(timeout=60) == status
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_explain_in_an_80_column_terminal_breaks_lines_between_words():
    program = "input(50x50x2) > conv5x5(->20, bias) > relu > maxpool2x2 > conv5x5(->40, bias)"
    shown = _in_a_terminal(80, "explain", program)
    piped = run("explain", program).stdout
    assert max(len(line) for line in shown.splitlines()) <= 80 < max(len(line) for line in piped.splitlines())
    assert shown.split() == piped.split()  # the same words in the same order, none broken
    assert "\n   floor((50 + 2·0 − 1·(5−1) − 1)/1) + 1 = 46 per axis" in shown  # continued under its line's text


def test_an_error_in_an_80_column_terminal_breaks_its_words_between_lines():
    # a long message and hint, and a source line with its caret, which must stay as they are
    program = "input(T) > embed(100->64) > rmsnorm > dense(->256) > silu > dense(->64) > mla(heads=4, rope_dim=3)"
    shown = _in_a_terminal(80, "count", program, status=2)
    piped = run("count", program)
    assert piped.returncode == 2 and max(len(line) for line in piped.stderr.splitlines()) > 80
    assert max(len(line) for line in shown.splitlines()) <= 80
    assert shown.split() == piped.stderr.split()  # the same words in the same order, none broken
    excerpt = [line for line in piped.stderr.splitlines() if line.startswith(("  |", "1 |", "  -->"))]
    assert excerpt and all(line in shown.splitlines() for line in excerpt)  # the caret still under its column
    first = shown.splitlines()[1]  # the message's second line starts under its text, after `argument error: `
    label = len(piped.stderr.split(": ")[0]) + 2
    assert first.startswith(" " * label) and first[label] != " "


_MESSAGE_WORDS = st.sampled_from(["conv3x3", "groups", "=", "may", "be", "1,", "2,", "4", "(", "x" * 30, ":", "a"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_MESSAGE_WORDS, min_size=1, max_size=50),
    st.sampled_from(["usage error: ", "hint: ", "note: ", "  "]),
    st.integers(10, 120),
)
def test_a_wrapped_message_keeps_its_words_and_fits(words, label, width):
    from paramsym.errors import _wrapped

    line = label + " ".join(words)
    lines = _wrapped(line, width).split("\n")
    assert " ".join(lines).split() == line.split()  # every word, in order, none broken
    assert all(len(part) <= width for part in lines if " " in part.strip())  # only a single long word may exceed
    indent = len(label) if label.strip() and len(label) <= width // 2 else 2
    assert all(part.startswith(" " * indent) for part in lines[1:])


# ---- found by benchmarks/cli_audit.py ---------------------------------------------------------------------

TIED = (
    "input(S) > embed(100->32) as shared > rmsnorm as memory > input(T) > embed(100->32, tie=shared)"
    " > res(rmsnorm > attn(heads=4, source=@memory)) > dense(->100, tie=shared)"
)

# (arguments, exit status, words of the output or of the message): each used to end in a traceback (exit 1)
AUDITED = [
    # a budget below the total at C=1, where C/2 is a fraction: the message printed the fraction with {:,}
    (
        ["solve", "input(8x8x3) > conv3x3(->C/2)", "--for", "C", "--budget", "0"],
        2,
        "usage error: no positive C keeps params within 0: at C=1 it is already 13.5",
    ),
    # a tied embedding's template is a plain 0, which has no free symbols
    (["formula", TIED, "--view", "generic"], 0, "embed: C_in*C_out  with C_in = 100, C_out = 32  ->  3200"),
    (["latex", TIED], 0, r"\text{embed}: && C_{in} C_{out} &= 100 \cdot 32 = 3200"),
    # gcstage's template has a factor that is no symbol, Max(8, 8*floor(C_in/32 + 1/2)): a KeyError
    (
        ["latex", "input(28x28x128) > gcstage(depth=2, heads=4, window=7, mlp=3)", "--standalone", "--group-digits"],
        0,
        r"&= 4 \cdot 128 \cdot 32 + 1352 + 21 \cdot 128^{2} + 41 \cdot 128 = 367{,}048",
    ),
]


@pytest.mark.parametrize("args, status, words", AUDITED, ids=[" ".join(a[:1] + a[2:]) for a, _, _ in AUDITED])
def test_audited_commands(args, status, words):
    result = run(*args)
    assert result.returncode == status, result.stderr[-800:]
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert words in (result.stdout if status == 0 else result.stderr)


# programs whose exported PyTorch source did not build, or counted differently
EXPORTED = [
    # q=3x3x3 was written q=3 to the file's own PoolingAttention, which iterates it
    "input(8x56x56x96) > tokens > cls > posembed(8x3136, cls) > res(ln > attn(heads=2, bias, volume=8x56x56, cls,"
    " q=3x3x3, q_stride=1x2x2, kv=3x3x3, kv_stride=1x8x8) | tokenpool(volume=8x56x56, kernel=1x3x3, stride=1x2x2,"
    " pad=0x1x1, cls))",
    # likewise clsrel=14x14 (written clsrel=14, then unpacked) and litemla's scales=(5,) (written scales=5)
    "input(197x768) > attn(heads=12, qv_bias, clsrel=14x14) > attn(heads=12, bias, qk_norm=rms)",
    "input(14x14x64) > res(litemla(heads=4, head_dim=16, bn)) > litemla(->96, heads=4, head_dim=16, scales=3x5,"
    " qkv_bn, bn, bias)",
    # helpers that use OrderedDict were copied without `from collections import OrderedDict`
    "input(16x16x32) > bat(groups=2, block=8) > dropchannels(0.2)",
    "input(14x14x128) > res(cga(heads=4, key_dim=16, value_dim=32, window=7, kernels=7x5x3x3))",
    "input(196x128) > res(levitattn(heads=4, key_dim=16, value_dim=32, map=14x14, bn, act=hardswish))",
    "input(14x14x176) > res(ef2attn(heads=8, key_dim=32, value_dim=128, stride=2))",
    "input(8x8x3) > conv3x3(->4) > gap > dense(->2)",
]


@pytest.mark.parametrize("program", EXPORTED)
def test_exported_torch_source_counts_what_count_counts(program):
    torch = pytest.importorskip("torch")
    source = run("export", program, "--to", "torch")
    assert source.returncode == 0, source.stderr[-800:]
    namespace: dict = {"__name__": "exported"}
    exec(compile(source.stdout, "<export>", "exec"), namespace)  # paramsym's own output
    with torch.device("meta"):
        model = namespace["build_model"]()
    assert sum(p.numel() for p in model.parameters()) == count_json(program)["params"]["value"]


def _at_80_columns(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    result = subprocess.run([PARAMSYM, *args], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr[-800:]
    return result.stdout


def test_summary_lines_wrap_under_their_label_at_80_columns():
    out = _at_80_columns("count", str(EXAMPLES / "llama2_7b.psym"))
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    # a number stays with its unit, and the rest of a line starts under the text after its label
    assert "31.2 GB to serve" in out and "(6.74 B)" in out
    start = next(i for i, line in enumerate(lines) if line.startswith("params = "))
    assert lines[start + 1].startswith(" " * 9) and lines[start + 1][9] != " "
    memory = next(i for i, line in enumerate(lines) if line.startswith("memory = "))
    assert lines[memory + 1] == "         31.2 GB to serve"


_WORDS = st.sampled_from(
    ["params", "=", "3*F*L*d", "+", "131,072,000", "31.2", "GB", "(6.74", "B)", "to", "serve", "x"]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_WORDS, min_size=1, max_size=60), st.sampled_from(["params = ", "KV cache = ", "symbols: ", "("]))
@example(words=["(6.74"] * 5 + ["GB"], label="params = ")  # open `(6.74`s once glued into one 41-character word
def test_a_wrapped_summary_line_keeps_its_words_and_units(words, label):
    from paramsym.render.printers import _fitted

    line = label + " ".join(words)
    for width in (40, 80, 100):
        lines = _fitted([line], width)
        assert " ".join(" ".join(lines).split()) == " ".join(line.split())  # the same words, in order
        assert all(len(part) <= width for part in lines if " " in part.strip())  # only one long word may exceed
        for a, b in itertools.pairwise(lines):  # a number keeps its unit
            assert not (a.endswith("31.2") and b.lstrip().startswith("GB")), (a, b)
            assert not (a.endswith("(6.74") and b.lstrip().startswith("B)")), (a, b)
        assert all(part.startswith(" " * (len(label) if label != "(" else 1)) for part in lines[1:])
