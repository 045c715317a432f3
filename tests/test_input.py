"""Issue 9: what paramsym reads from people (numbers, --set, --grid, --symbol, program paths and
standard input, the Python API) is read exactly or refused with one clear message; nothing is
silently made up, ignored or truncated."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sympy

import paramsym
from helpers.cli_helpers import PARAMSYM, run
from paramsym.algebra.sweeps import parse_grid
from paramsym.cli import parse_assignments
from paramsym.language.syntax import parse_count, symbol

C, D = symbol("C"), symbol("D")
SYMBOLIC = "conv3x3(3->C, bias) > conv3x3(->2C, bias) > gap > dense(->10, bias)"
TIED = "input(8x8x3) > conv3x3(->C) > conv3x3(->D)"


def refused(result: subprocess.CompletedProcess, words: str) -> None:
    """Exit 2, nothing on standard output, one message (the first line says the kind of error), no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.split(":")[0].endswith("error"), result.stderr
    assert sum(line.split(":")[0].endswith("error") for line in result.stderr.splitlines()) == 1
    assert words in result.stderr, result.stderr


# ---- 1. numbers: 1e3 is 1000, everywhere a number is read ---------------------------------------

NUMBERS = [
    ("dense(3->1e3)", 3000),
    ("dense(3->1E3)", 3000),
    ("dense(3->1.5e3)", 4500),
    ("dense(3->2.5e1)", 75),
    ("dense(3->1_000e-1)", 300),
    ("dense(3->1e+2)", 300),
    ("dense(3->2e2 + 1)", 603),
    ("dense(3->4e0C)", None),  # 4 times C, as 4C
    ("let e3 = 5; dense(3->2 e3)", 30),  # a space keeps a symbol named e3: 2 times e3
    ("let e3 = 5; dense(3->2*e3)", 30),
    ("input(1e1 x 1e1 x 3) > conv3x3(->2)", 54),
]


@pytest.mark.parametrize("program, params", NUMBERS, ids=[n[0] for n in NUMBERS])
def test_numbers_with_an_exponent(program, params):
    network = paramsym.parse(program)
    if params is None:
        assert network.params == 12 * C
    else:
        assert network.evaluate()["params"] == params
    assert "e3" not in network.symbols or "let e3" in program


@pytest.mark.parametrize(
    "text, value",
    [
        ("1e3", 1000),
        ("1.5e3", 1500),
        ("2E2", 200),
        ("1e3k", 10**6),
        ("25.6M", 25_600_000),
        ("1_000", 1000),
        ("64", 64),
        (" 5k ", 5000),
        ("1" * 40, int("1" * 40)),
        ("1e39", 10**39),
    ],
)
def test_counts_from_the_command_line(text, value):
    assert parse_count(text, "--budget") == value


@pytest.mark.parametrize(
    "text, words",
    [
        ("1e-3", "must be a whole number, not '1e-3' (= 0.001)"),
        ("1.5", "must be a whole number"),
        ("lots", "must be a whole number such as"),
        ("1" * 41, "--budget '" + "1" * 41 + "' has more than 40 digits, and at most 40 are accepted"),
        ("1e-" + "9" * 10_000, "has more than 40 digits, and at most 40 are accepted"),
        ("9" * 10_000, "--budget '" + "9" * 44 + "...' has more than 40 digits"),
        ("1e40", "at most 40 are accepted"),
        ("1e999999999", "at most 40 are accepted"),
        ("\uff11\uff10", "must be a whole number such as"),
    ],
)
def test_bad_counts(text, words):
    with pytest.raises(paramsym.ParamsymUsageError) as caught:
        parse_count(text, "--budget")
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("C=1e1,2e1", ("C", [10, 20])),
        ("C=1k,2k", ("C", [1000, 2000])),
        ("C=1e1:3e1:1e1", ("C", [10, 20, 30])),
    ],
)
def test_grid_numbers(text, expected):
    assert parse_grid(text) == expected


@pytest.mark.parametrize("text", ["C=\uff11", "C=1:\uff13", "C=1:2:3:4", "C=0:3", "C=1.5", "C=1e-1"])
def test_bad_grid_numbers(text):
    with pytest.raises(paramsym.ParamsymUsageError):
        parse_grid(text)


def test_set_reads_numbers_and_formulas():
    assert parse_assignments(["C=1e3", "D=2C", "E=1.5k"]) == {"C": 1000, "D": 2 * C, "E": 1500}
    out = json.loads(run("count", "--format", "json", SYMBOLIC, "--set", "C=1e3").stdout)
    assert out["params"]["value"] == paramsym.parse(SYMBOLIC).value(paramsym.parse(SYMBOLIC).params, C=1000)
    assert set(out["symbols"]) == {"C"}
    assert run("solve", SYMBOLIC, "--for", "C", "--budget", "1e5").stdout.startswith(
        "largest C with params <= 100,000: C ="
    )


# ---- 1, 3, 5: mistakes on the command line: exit 2, one message that says what and where -----------

CLI_MISTAKES = [
    # --set makes no new symbol
    (["count", SYMBOLIC, "--set", "C=abc"], "C = abc: abc is not a symbol of the program (its symbols: C)"),
    (["count", TIED, "--set", "D=2E"], "D = 2*E: E is not a symbol of the program (its symbols: C, D)"),
    (["count", TIED, "--set", "D=C+X+Y"], "X, Y are not symbols of the program"),
    (["count", SYMBOLIC, "--set", "C=1e-3"], "whole number, not '1e-3'"),
    (["count", SYMBOLIC, "--set", "C=\uff18"], "ASCII digits 0-9"),
    # a name given a value twice
    (["count", SYMBOLIC, "--set", "C=4", "--set", "C=5"], "--set C=... is given twice"),
    (["count", SYMBOLIC, "--set", "C=4", "--set", " C=4"], "--set C=... is given twice"),
    (["sweep", SYMBOLIC, "--grid", "C=1,2", "--grid", "C=3"], "--grid C=... is given twice"),
    (["latex", SYMBOLIC, "--symbol", "C=x", "--symbol", "C=y"], "--symbol C=... is given twice"),
    # a value that would be ignored
    (
        ["solve", SYMBOLIC, "--for", "C", "--budget", "1M", "--set", "C=5"],
        "--set C=... gives a value to C, which --for C asks for",
    ),
    (["solve", TIED, "--for", "D", "--budget", "1M", "--set", "D=2C", "--set", "C=4"], "which --for D asks for"),
    (["sweep", SYMBOLIC, "--grid", "C=1:3", "--set", "C=5"], "which --grid C asks for"),
    (["latex", SYMBOLIC, "--symbol", "Q=x"], "--symbol Q=...: the program has no symbol 'Q' (its symbols: C)"),
    # numbers
    (["solve", SYMBOLIC, "--for", "C", "--budget", "9" * 41], "has more than 40 digits, and at most 40 are accepted"),
    (["sweep", SYMBOLIC, "--grid", "C=1:3", "--budget", "1e50"], "at most 40 are accepted"),
    (["sweep", SYMBOLIC, "--grid", "C=\uff11,2"], "give whole numbers (3,5,7)"),
    # the program: located messages
    (["count", "dense(3->\uff11)"], "line 1, column 10"),
    (["count", "conv3x3(3->4, pad=-1)"], "pad must be at least 0, not -1"),
    (["count", "let A = B + 1; let B = 3; dense(3->A)"], "let A uses B, which is defined by a later let"),
    (["count", "dense(3->1e100)"], "number too long: 1e100"),
]


@pytest.mark.parametrize("args, words", CLI_MISTAKES, ids=[" ".join(a[0:1] + a[2:]) for a, _ in CLI_MISTAKES])
def test_command_line_mistakes(args, words):
    refused(run(*args), words)


def test_located_messages_show_the_spot():
    err = run("count", "let A = B + 1; let B = 3; dense(3->A)").stderr
    assert "  --> line 1, column 5" in err and "note: B is defined here (line 1, column 20)" in err
    assert "hint: a let refers only to earlier names: move 'let B = ...' before 'let A = ...'" in err
    err = run("count", "dense(3->\uff11)").stderr
    assert "unexpected character '\uff11'" in err and "hint: numbers are written with the ASCII digits 0-9" in err


def test_lets_in_order_are_fine():
    network = paramsym.parse("let B = 3; let A = B + 1\nlet E = A * B + F\ndense(3->E)", F=2)
    assert network.defaults == {"A": 4, "B": 3, "E": 14, "F": 2}


# ---- 2. relations are applied in formula, latex and count ------------------------------------------

RELATIONS = [
    (["formula", TIED, "--set", "D=2C"], "params = 18*C^2 + 27*C\n"),
    (["formula", TIED, "--set", "D=2C", "--view", "factored"], "params = 9*C*(2*C + 3)\n"),
    (["formula", TIED, "--set", "D=2C", "--set", "C=4"], "params = 18*C^2 + 27*C = 396\n"),
    (["formula", TIED, "--set", "D=2C", "--view", "per-layer"], "conv3x3: 18*C^2\n"),
    (["formula", TIED, "--set", "D=2C", "--view", "generic"], "C_out = 2*C  ->  18*C^2\n"),
    (["formula", TIED, "--set", "D=2C", "--on", "macs"], "macs = 288*C^2 + 972*C\n"),
    (["formula", "let D = 2C\n" + TIED], "params = 18*C^2 + 27*C\n"),
    (["latex", TIED, "--set", "D=2C"], r"N_{\mathrm{params}} = 18 C^{2} + 27 C"),
    (["latex", TIED, "--set", "D=2C"], r"3 \cdot 3 \cdot C \cdot \left(2 C\right) = 18 C^{2}"),
    (["count", TIED, "--set", "D=2C"], "params = 18*C^2 + 27*C\n"),
    (["count", TIED, "--set", "D=2C"], "symbols: C (free), D = 2*C\n"),
    (["count", TIED, "--set", "D=2C", "--set", "C=4"], "symbols: C = 4, D = 2*C = 8\n"),
    (["count", TIED, "--set", "D=C+E"], "D = C + E is not"),  # E is no symbol: refused, see above
]


@pytest.mark.parametrize("args, shown", RELATIONS, ids=[" ".join(a[0:1] + a[2:]) for a, _ in RELATIONS])
def test_relations_are_applied(args, shown):
    result = run(*args)
    if "is not" in shown:
        refused(result, "E is not a symbol of the program")
        return
    assert result.returncode == 0, result.stderr
    assert shown in result.stdout


def test_relations_in_the_api_and_json():
    network = paramsym.parse(TIED).with_values(D=2 * C)
    assert network.params == 18 * C**2 + 27 * C
    assert [str(lc.params) for lc in network.layers] == ["27*C", "18*C**2"]
    data = json.loads(run("count", "--format", "json", TIED, "--set", "D=2C").stdout)
    assert data["params"]["expr"] == "18*C**2 + 27*C"
    assert data["symbols"]["D"] == {"default": None, "relation": "2*C"}
    # the unknown of solve and a swept symbol are free again, relations and all
    assert paramsym.solve(network, "C", 1000).value == 6
    assert [int(v) for v in paramsym.sweep(network, {"C": [1, 2]}).values["params"]] == [45, 126]
    # sweeping D itself unties it from C
    swept = paramsym.sweep(network.with_values(C=3), {"D": [4, 5]}, quantities=("params",))
    assert swept.formulas["params"] == 27 * D + 81 and [int(v) for v in swept.values["params"]] == [189, 216]


# ---- 4. program paths, byte order marks, binary data and sizes -----------------------------------


def test_a_directory_is_not_a_program(tmp_path):
    refused(
        run("count", "examples"),
        "examples is a directory; PROGRAM is a file, '-' for standard input, or the program text itself",
    )
    refused(run("count", str(tmp_path)), f"{tmp_path} is a directory")
    refused(run("count", "/tmp"), "/tmp is a directory")
    refused(run("count", str(tmp_path / "nothing.psym")), "no such file")


@pytest.mark.parametrize(
    "data", [b"\xef\xbb\xbfconv3x3(32->64, bias)\n", b"\xef\xbb\xbf# BOM\r\nconv3x3(32->64, bias)"]
)
def test_byte_order_mark_is_skipped(data, tmp_path):
    path = tmp_path / "bom.psym"
    path.write_bytes(data)
    for args, stdin in (([str(path)], None), (["-"], data)):
        result = subprocess.run([PARAMSYM, "count", "--format", "json", *args], input=stdin, capture_output=True)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["params"]["value"] == 18496


BINARY = [
    (b"conv3x3(3->4)\x00\x00", "standard input holds binary data (a NUL byte at byte 14), not program text"),
    (b"\x00" * 100, "a NUL byte at byte 1)"),
    (b"conv3x3(3->4)\xff", "standard input is not UTF-8 text (byte 14 is not UTF-8)"),
    (b"\x89PNG\r\n\x1a\n", "not UTF-8 text"),
    (b"dense(3->4) \xc3", "not UTF-8 text"),
]


@pytest.mark.parametrize("data, words", BINARY, ids=[repr(b[0][:16]) for b in BINARY])
def test_binary_data_is_refused(data, words, tmp_path):
    path = tmp_path / "binary.psym"
    path.write_bytes(data)
    for args, stdin, where in ((["-"], data, "standard input"), ([str(path)], None, str(path))):
        result = subprocess.run([PARAMSYM, "count", *args], input=stdin, capture_output=True)
        assert result.returncode == 2 and result.stdout == b""
        assert b"\x00" not in result.stderr and b"Traceback" not in result.stderr
        err = result.stderr.decode("utf-8")
        assert words.replace("standard input", where) in err, err


def test_control_characters_are_never_echoed():
    with pytest.raises(paramsym.ParamsymSyntaxError) as caught:
        paramsym.parse("dense(3->4) \x00\x1b[31m")
    text = str(caught.value)
    assert "\x00" not in text and "\x1b" not in text
    assert "1 | dense(3->4) \ufffd\ufffd[31m" in text  # one mark per character: the caret stays in place


def test_sizes_are_reported_truly(tmp_path):
    path = tmp_path / "big.psym"
    path.write_text("dense(3->4)\n" + "#" * 3_000_003)  # 3,000,015 characters
    refused(run("count", str(path)), f"{path} holds 3,000,015 characters; at most 2,000,000 are accepted")
    result = subprocess.run([PARAMSYM, "count", "-"], input=path.read_bytes(), capture_output=True)
    assert result.returncode == 2 and b"standard input holds 3,000,015 characters" in result.stderr
    path.write_text("#" * 9_000_000)  # not read at all: its size says enough
    refused(run("count", str(path)), f"{path} is 9,000,000 bytes long, more than the 2,000,000 characters")
    result = subprocess.run([PARAMSYM, "count", "-"], input=path.read_bytes(), capture_output=True)
    assert result.returncode == 2
    assert b"standard input holds more than 2,000,000 characters; at most 2,000,000 are accepted" in result.stderr


# ---- 7. the Python API refuses what it cannot read --------------------------------------------------

NET = paramsym.parse("conv3x3(3->C)")
SWEEPS = [
    ({"C": [2.5]}, "the values of C must be positive whole numbers (symbols stand for them), not 2.5"),
    ({"C": [0, -1]}, "not 0"),
    ({"C": [4, -1]}, "not -1"),
    ({"C": []}, "the values of C are an empty list; give at least one"),
    ({"C": [True]}, "not True"),
    ({"C": ["8"]}, "not '8'"),
    ({"C": 8}, "the values of C are a list of whole numbers, such as [16, 32, 64], not 8"),
    ({"C": "8"}, "not '8'"),
    ({"C": range(1, 10**12)}, "at most 20,000,000 are swept at once"),
    ({1: [8]}, "the grid's keys are symbol names (str), not 1"),
    ([("C", [8])], "the grid is a dict of symbol names to lists of values"),
    ({}, "give at least one"),
]


@pytest.mark.parametrize("grid, words", SWEEPS, ids=[repr(s[0])[:30] for s in SWEEPS])
def test_sweep_refuses_what_is_not_a_grid(grid, words):
    with pytest.raises(paramsym.ParamsymUsageError) as caught:
        paramsym.sweep(NET, grid)
    assert words in str(caught.value)


@pytest.mark.parametrize("budget", [2.5, -1, "10", None])
def test_sweep_budget(budget):
    if budget is None:
        assert paramsym.sweep(NET, {"C": [1]}, budget=None).within is None
        return
    with pytest.raises(paramsym.ParamsymUsageError, match="the budget must be a whole number"):
        paramsym.sweep(NET, {"C": [1]}, budget=budget)


def test_sweep_takes_whole_numbers_of_any_integer_type():
    import numpy as np

    for values in ([8, 16], np.array([8, 16]), (sympy.Integer(8), 16), range(8, 17, 8)):
        assert [int(v) for v in paramsym.sweep(NET, {"C": values}).values["params"]] == [216, 432]


@pytest.mark.parametrize("text", [["conv3x3(3->4)"], b"conv3x3(3->4)", None, 42])
def test_parse_takes_a_str(text):
    with pytest.raises(paramsym.ParamsymUsageError) as caught:
        paramsym.parse(text)
    assert f"parse takes the program text as a str, not a {type(text).__name__}" in str(caught.value)


def test_with_values_makes_no_new_symbol():
    with pytest.raises(paramsym.ParamsymUsageError, match="abc is not a symbol of the program"):
        NET.with_values(C=sympy.Symbol("abc"))
    with pytest.raises(paramsym.ParamsymUsageError, match="has no symbol 'abc'"):
        paramsym.latex(NET, names={"abc": "x"})


# ---- 8. PyTorch missing: the source needs none, building a module says how to get it ---------------

WITHOUT_TORCH = "import sys; sys.modules['torch'] = None\nfrom paramsym.cli import main\nsys.exit(main(sys.argv[1:]))"
EXPORTED = (
    "input(15x15x3) > conv3x3(->8, stride=2, pad=same, bias) > maxpool3x3(stride=2, pad=same)"
    " > res(dwconv3x3(pad=1) > bn) > concat(conv1x1(->4) | id) > ln > flatten > dense(->4)"
)


def without_torch(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_torch_source_needs_no_torch():
    result = without_torch("export", EXPORTED, "--to", "torch")
    assert result.returncode == 0, result.stderr
    assert result.stdout == run("export", EXPORTED, "--to", "torch").stdout  # the same file as with PyTorch
    for helper in (
        "class Residual(nn.Module):",
        "class Branches(nn.Module):",
        "class ChannelsLast(nn.Module):",
        "class FlattenChannelsLast(nn.Module):",
        "class SamePad(nn.Module):",
    ):
        assert helper in result.stdout


def test_building_without_torch_says_what_to_install():
    refused(
        without_torch("import", "torchvision.models:resnet18", "--input", "224x224x3"),
        "paramsym import needs PyTorch: pip install torch",
    )
    code = (
        "import sys; sys.modules['torch'] = None\nimport paramsym\n"
        "for call in (lambda: paramsym.to_torch(paramsym.parse('conv3x3(3->4)')),\n"
        "             lambda: paramsym.example_input(paramsym.parse('input(8x8x3) > relu')),\n"
        "             lambda: paramsym.from_torch(object(), '8x8x3')):\n"
        "    try:\n        call()\n    except paramsym.ParamsymUsageError as error:\n"
        "        print(error.message)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "building a PyTorch module needs PyTorch: pip install torch",
        "example_input needs PyTorch: pip install torch",
        "importing a PyTorch model needs PyTorch: pip install torch",
    ]
