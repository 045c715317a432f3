"""Issue 17, hostile inputs: numbers beyond the size limit, sweeps beyond int64, invalid arithmetic
through def arguments, lets and --set, the parser cache's file, `paramsym import` and sys.path, CSV
cells a spreadsheet would read as formulas. Each ends with an answer or one located error (exit 2)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.cli_helpers import run
from helpers.strategies import programs

SQUARES = (
    "; ".join(["let A1 = 2", *(f"let A{i} = A{i - 1}*A{i - 1}" for i in range(2, 41))]) + "; input(8) > dense(->A40)"
)

# (arguments, the start of the error, where it points: "line L, column C")
TOO_LARGE = [
    (("count", "let C = 2^8000; input(C) > dense(->C)"), "the params of dense is too large", "line 1, column 28"),
    (
        ("count", "let C = 2^8000; input(C) > dense(->C)", "--format", "json"),
        "the params of dense",
        "line 1, column 28",
    ),
    (("count", "let C = 2^8000; input(C) > dense(->C)", "--format", "csv"), "the params of dense", "line 1, column 28"),
    (
        ("count", "let C = 2^8000; input(C) > dense(->C)", "--format", "markdown"),
        "the params of dense",
        "line 1, column 28",
    ),
    (("latex", "let C = 2^8000; input(C) > dense(->C)"), "the params of dense", "line 1, column 28"),
    (("explain", "let C = 2^8000; input(C) > dense(->C)"), "the params of dense", "line 1, column 28"),
    (("formula", "let C = 2^8000; input(C) > dense(->C)"), "the params of dense", "line 1, column 28"),
    (("count", "input(C) > dense(->C)", "--set", "C=2^8000"), "the params of dense", "line 1, column 12"),
    (
        ("count", "let A = 2^2100; let B = A*A*A*A; input(8) > dense(->B)"),
        "the value of B is too large",
        "line 1, column 21",
    ),
    (("count", SQUARES), "the value of A14 is too large", "line 1, column 219"),
    (("count", "input(2^8000) > dense(->2^8000*C)"), "the params of dense is too large", "line 1, column 17"),
    (("count", "input(2^8000) > dense(->2^8000*C)", "--format", "json"), "the params of dense", "line 1, column 17"),
    (("count", "let H = 2^8000; input(H x H x 3) > conv1x1(->2)"), "of conv1x1 is too large", "line 1, column 36"),
]


@pytest.mark.parametrize("args, message, where", TOO_LARGE)
def test_a_number_beyond_8192_bits_is_a_located_error(args, message, where):
    result = run(*args, timeout=60)
    assert result.returncode == 2, result.stderr[-800:]
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("limit error: ") and message in result.stderr
    assert f"--> {where}" in result.stderr
    assert "8,192 bits" in result.stderr and len(result.stderr) < 2000  # the number itself is never printed


def test_a_set_value_too_large_names_the_symbol():
    result = run("count", "input(C) > dense(->A)", "--set", "C=A*A*A*A", "--set", "A=2^2100")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("limit error: the value of C is too large: a number of 8,401 bits")


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown", "latex"])
def test_numbers_up_to_the_limit_print_exactly(fmt):
    # params = 2 * 2^8000 (8,002 bits); the bytes of memory used to go through a float and overflow
    result = run("count", "input(2^8000) > dense(->2)", "--format", fmt, timeout=60)
    assert result.returncode == 0, result.stderr[-800:]
    digits = str(2 * 2**8000)
    if fmt == "json":
        data = json.loads(result.stdout)
        assert data["params"]["value"] == 2 * 2**8000 and data["params"]["expr"] == digits
        assert data["param_bytes"]["value"] == 8 * 2**8000
    elif fmt == "csv":
        assert digits in result.stdout
    elif fmt == "table":
        assert f"{2 * 2**8000:,}" in result.stdout.replace("\n", "")


def test_bytes_beyond_a_float_are_exact():
    from paramsym.render.printers import _bytes

    petabytes = (2**8000 * 1000 + 10**15 // 2) // 10**15  # three digits and beyond: whole PB, exactly rounded
    assert _bytes(2**8000 * 1000) == f"{petabytes:,} PB"
    assert _bytes(10**21 + 5 * 10**14) == "1,000,001 PB"  # 1,000,000.5 PB rounded half up, in integers
    assert _bytes(1_580_000) == "1.58 MB" and _bytes(999) == "999 bytes"


# ---- sweeps beyond int64 --------------------------------------------------------------------


def test_sweep_beyond_int64_from_the_command_line():
    result = run("sweep", "dense(3->C)", "--grid", "C=1e19,9223372036854775807,9223372036854775808", "--format", "json")
    assert result.returncode == 0, result.stderr[-800:]
    columns = json.loads(result.stdout)["columns"]
    assert columns["params"] == [3 * 10**19, 3 * (2**63 - 1), 3 * 2**63]


SWEPT = [
    "input(C) > dense(->C, bias)",  # C^2 + C: crosses 2^63 at C = 3,037,000,499
    "input(C) > dense(->D) > dense(->C)",  # 2CD
    "input(32x32x3) > conv3x3(->C, stride=2) > dense(->D)",
    "input(C) > dense(->C/2) > dense(->D)",
]
NEAR = [
    1,
    2,
    3,
    3_037_000_498,
    3_037_000_499,
    3_037_000_500,
    3_037_000_501,
    2**31,
    2**32,
    2**62,
    2**63 - 2,
    2**63 - 1,
    2**63,
    2**63 + 1,
    2**64,
    10**19,
    10**30,
]


@pytest.mark.parametrize("program", SWEPT)
def test_sweep_equals_exact_evaluation_near_and_beyond_int64(program):
    import paramsym
    from paramsym.algebra.sweeps import sweep

    network = paramsym.parse(program)
    grid = {
        name: [v for v in NEAR if name != "C" or "C/2" not in program or v % 2 == 0]
        for name in ("C", "D")
        if name in network.symbols
    }
    if "D" in grid:
        grid["D"] = [1, 2**31, 3_037_000_500, 2**63 - 1, 2**63, 10**20]
    result = sweep(network, grid, quantities=("params", "macs"))
    names = list(grid)
    for row in result.rows():
        exact = network.evaluate(**{n: row[n] for n in names})
        assert row["params"] == exact["params"], row
        assert row["macs"] == exact["macs"], row


def test_sweep_values_beyond_the_number_limit_are_refused():
    result = run("sweep", "input(C) > dense(->C)", "--grid", "C=1e39")
    assert result.returncode == 0  # 40 digits: within every limit
    import paramsym
    from paramsym.algebra.sweeps import sweep
    from paramsym.errors import ParamsymLimitError

    with pytest.raises(ParamsymLimitError, match="too large"):
        sweep(paramsym.parse("input(C) > dense(->C)"), {"C": [2**8000]})
    with pytest.raises(ParamsymLimitError, match="a value of C is too large"):
        sweep(paramsym.parse("input(C) > dense(->C)"), {"C": [2**9000]})


# ---- invalid arithmetic through def arguments, lets and --set -----------------------------------

# (arguments, start of the message, where it points)
NO_VALUE = [
    (
        ("count", "def b(i) = droppath(1/i); input(8x8x3) > b(0)"),
        "argument error: division by zero: with i = 0, 1/i has no value",
        "line 1, column 21",
    ),
    (
        ("count", "def b(i) = dense(->C/(i-1)); input(8) > b(1)"),
        "argument error: division by zero",
        "line 1, column 20",
    ),
    (
        ("count", "def b(i) = dense(->0^(i-2)); input(8) > b(1)"),
        "argument error: division by zero: with i = 1, 0^(i - 2)",
        "line 1, column 20",
    ),
    (("count", "def b(i) = (relu) * (1/i); input(8) > b(0)"), "argument error: division by zero", "line 1, column 12"),
    (
        ("count", "def b(i) = moe(dense(->8), experts=2/i, top=1); input(8) > b(0)"),
        "argument error: division by zero",
        "line 1, column 28",
    ),
    (
        ("count", "def a(j) = dense(->8/j); def b(i) = a(i-1); input(8) > b(1)"),
        "argument error: division by zero",
        "line 1, column 20",
    ),
    (
        ("count", "let A = 1; let B = 4/(A-1); input(8) > dense(->B)"),
        "evaluation error: the value of B: division by zero",
        "line 1, column 16",
    ),
    (
        ("count", "input(8) > dense(->C/(A-1))", "--set", "A=1", "--set", "C=4"),
        "evaluation error: division by zero",
        "line 1, column 20",
    ),
    (
        ("latex", "input(8) > dense(->C/(A-1))", "--set", "A=1", "--set", "C=4"),
        "evaluation error: division by zero",
        "line 1, column 20",
    ),
]


@pytest.mark.parametrize("args, message, where", NO_VALUE)
def test_division_by_zero_is_a_located_error(args, message, where):
    result = run(*args)
    assert result.returncode == 2, result.stderr[-800:]
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(message)
    assert f"--> {where}" in result.stderr


@pytest.mark.parametrize("value", ["0^-1", "1/0", "0/0", "zoo", "nan", "oo", "C-C"])
def test_set_values_without_a_number_are_usage_errors(value):
    result = run("count", "input(8) > dense(->C)", "--set", f"C={value}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("usage error:")


# ---- paramsym import: the current directory never replaces an installed module -------------------------

HIJACK = 'import sys\nprint("HIJACKED", __name__, file=sys.stderr)\nraise SystemExit(7)\n'


def _in(directory, *args):
    """The real command run in `directory`: the installed script, or `python -m paramsym`."""
    import os
    import subprocess
    import sys

    from helpers.cli_helpers import PARAMSYM

    command = [PARAMSYM, *args] if args[0] != "-m" else [sys.executable, *args]
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    env.pop("PYTHONSAFEPATH", None)
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=directory)


@pytest.fixture
def model_dir(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "torch.py").write_text(HIJACK)
    (tmp_path / "mymodel.py").write_text(
        "import torch\n\ndef make():\n    return torch.nn.Sequential(torch.nn.Linear(3, 2))\n"
    )
    return tmp_path


@pytest.mark.parametrize("how", [(), ("-m", "paramsym")], ids=["script", "python -m"])
def test_a_torch_py_in_the_current_directory_is_not_imported(model_dir, how):
    result = _in(model_dir, *how, "import", "mymodel:make", "--input", "3", "--path", ".")
    assert "HIJACKED" not in result.stderr and result.returncode == 0, result.stderr[-800:]
    assert result.stdout == "input(3)\n  > dense(3->2, bias)\n"


def test_a_json_py_beside_the_model_is_not_imported(model_dir):
    (model_dir / "json.py").write_text(HIJACK)
    result = _in(model_dir, "import", "mymodel:make", "--input", "3", "--path", str(model_dir))
    assert "HIJACKED" not in result.stderr and result.returncode == 0, result.stderr[-800:]


def test_the_current_directory_is_searched_only_when_asked(model_dir):
    result = _in(model_dir, "import", "mymodel:make", "--input", "3")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot find mymodel:make" in result.stderr and "--path ." in result.stderr


def test_import_says_it_runs_the_code():
    result = run("import", "--help")
    assert result.returncode == 0
    assert "trusted code only" in " ".join(result.stdout.split())


# ---- CSV cells that a spreadsheet would read as formulas --------------------------------------------------


@pytest.mark.parametrize(
    "program",
    [
        "input(A1) > dense(->100 - B1) > dense(->A1)",  # total params -2*A1*B1 + 200*A1
        "input(32x32x3) > conv3x3(->C, stride=S) > dense(->10 - D)",
        "input(C) > dense(->2C) > dense(->10)",  # nothing to quote: unchanged
    ],
)
def test_csv_cells_never_start_a_formula(program):
    result = run("count", program, "--format", "csv")
    assert result.returncode == 0, result.stderr
    as_json = json.loads(run("count", program, "--format", "json").stdout)
    rows = list(csv.reader(io.StringIO(result.stdout)))
    header = rows[0]
    for row in rows[1:]:
        for cell in row:
            assert not cell or cell[0] not in "-+=@\t\r" or cell.lstrip("-").isdigit(), (cell, row)
    # each _expr cell is the JSON's expr, with one ' in front exactly when it would start a formula
    layers = [*as_json["layers"], as_json]
    for row, source in zip(rows[1:], layers):
        for name, cell in zip(header, row):
            if name.endswith("_expr"):
                expr = (source.get(name[:-5]) or {}).get("expr") or ""
                assert cell == ("'" + expr if expr[:1] in ("-", "+", "=", "@") else expr)


def test_a_formula_that_starts_with_minus_is_prefixed():
    result = run("count", "input(A1) > dense(->100 - B1) > dense(->A1)", "--format", "csv")
    total = list(csv.reader(io.StringIO(result.stdout)))[-1]
    assert "'-2*A1*B1 + 200*A1" in total and "-2*A1*B1 + 200*A1" not in total


# ---- very long names (benchmarks/cli_audit.py): one short message, never the name 20,000 times ----------------

LONG_NAME = "Z" * 20_000

# (arguments, the start of the message, where it points or None)
LONG_NAMES = [
    (("count", f"input(8x8x3) > conv3x3(->{LONG_NAME}) > dense(->10)"), "limit error: name too long: 20,000", 26),
    (("count", f"input(8x8x3) > {LONG_NAME}(->8)"), "limit error: name too long: 20,000 characters", 16),
    (("count", f"let {LONG_NAME} = 3\ninput(8) > dense(->4)"), "limit error: name too long", 5),
    (("solve", f"input(8x8x3) > conv3x3(->8, pad={LONG_NAME})", "--for", "C", "--budget", "1M"), "limit error:", 33),
    (
        ("count", "input(8x8x3) > conv3x3(->C)", "--set", f"{LONG_NAME}=3"),
        "usage error: the program has no symbol 'ZZZZZZZZZZZZZZZZZZZZ...(20,000 characters)'",
        None,
    ),
    (("solve", "input(8x8x3) > conv3x3(->C)", "--for", LONG_NAME, "--budget", "3"), "usage error: the program", None),
    (("sweep", "input(8x8x3) > conv3x3(->C)", "--grid", f"{LONG_NAME}=3"), "usage error: the program has no", None),
    (("latex", "input(8x8x3) > conv3x3(->C)", "--symbol", f"{LONG_NAME}=x"), "usage error: --symbol ZZZZ", None),
]


@pytest.mark.parametrize("args, message, column", LONG_NAMES, ids=[" ".join(a[:1] + a[2:3]) for a, _, _ in LONG_NAMES])
def test_a_very_long_name_gets_one_short_message(args, message, column):
    result = run(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-800:]
    assert result.stderr.startswith(message), result.stderr[:300]
    assert len(result.stderr) < 1000  # before: the name in full, 20,000 to 266,000 characters
    if column is not None:
        assert f"--> line 1, column {column}" in result.stderr


def test_a_name_of_100_characters_is_accepted():
    name = "C" + "_" * 98 + "x"
    assert (
        json.loads(run("count", f"input(8) > dense(->{name})", "--format", "json", "--set", f"{name}=3").stdout)[
            "params"
        ]["value"]
        == 24
    )


def test_a_message_lists_at_most_20_of_3000_symbols():
    program = "".join(f"let Q{i} = {i + 1}\n" for i in range(3000)) + "input(8) > dense(->Q2999)"
    result = run("solve", program, "--for", "C", "--budget", "1M")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the program has no symbol 'C' (its symbols: Q0, Q1, " in result.stderr
    assert "and 2,980 more)" in result.stderr and len(result.stderr) < 500  # before: all 3,000, 20,000 characters


# ---- the rule benchmarks/cli_audit.py checks, as a property -------------------------------------------------

_LOOK_ALIKES = ["\u2192", "\u00d7", "\u2212", "\u00a0", "\uff08", "\u200b", "\t", "\r\n", "Z" * 300, "1e400", "10**40"]
_PROGRAM_TEXT = ("syntax error", "name error", "shape error", "argument error", "evaluation error")


@settings(deadline=None)
@given(programs(), st.data())
def test_property_the_cli_answers_or_gives_one_located_message(text, data):
    """A generated program with one edit (a character dropped or a look-alike, a long name, a huge number put
    in) through the real entry point: exit 0, or exit 2 with one message that points into the program when it
    is about the program text; never a traceback, never a name or a list of thousands of characters."""
    import contextlib

    from paramsym.cli import main

    position = data.draw(st.integers(0, len(text) - 1))
    noise = data.draw(st.sampled_from(["", *_LOOK_ALIKES]))
    broken = text[:position] + noise + text[position + 1 :]
    command = data.draw(
        st.sampled_from([["count", "--format", "json"], ["explain"], ["latex"], ["formula", "--view", "generic"]])
    )
    out, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(errors):
        status = main([command[0], broken, *command[1:]])
    err = errors.getvalue()
    assert status in (0, 2), err[-2000:]
    assert "Traceback" not in err and "internal error" not in err
    if status == 2:
        assert err.strip() and len(err) < 6000, err[:300]
        if err.startswith(_PROGRAM_TEXT):
            assert "  --> line " in err and "^" in err, err
            excerpt = [line for line in err.splitlines() if " | " in line or line.endswith(" |")]
            assert all(len(line) <= 80 for line in excerpt), excerpt
