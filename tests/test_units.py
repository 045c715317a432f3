"""Units people type (`7B`, `4Ki`, `16GB`, `80GiB`) and read (`6.74 B`, `26.9 GB`, `31.5 TFLOP`, `4.2 h`):
one parser for --set, --budget, --grid, --batch and --gpus; readable figures beside the exact numbers, JSON
exact."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

import paramsym
from paramsym.algebra.solve import parse_budget
from paramsym.cli import main
from paramsym.core.formatting import bytes_text, count_text, flops_text, readable, seconds_text
from paramsym.core.quantities import BY_NAME
from paramsym.core.setup import parse_size
from paramsym.language.assignments import parse_assignments
from paramsym.language.syntax import UNITS, looks_like_count, parse_count

LLAMA = "examples/llama2_7b.psym"


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_main(*args: str) -> Result:
    """`paramsym ARGS` in this process, through paramsym.cli.main."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Result(code, out.getvalue(), err.getvalue())


@pytest.mark.parametrize(
    "text, unit, value",
    [
        ("500000", "count", 500_000),
        ("1_000_000", "count", 10**6),
        ("25.6M", "count", 25_600_000),
        ("5k", "count", 5000),
        ("1e6", "count", 10**6),
        ("7B", "count", 7 * 10**9),
        ("1.5B", "count", 1_500_000_000),
        ("7G", "count", 7 * 10**9),
        ("1T", "count", 10**12),
        ("2.5T", "count", 2_500_000_000_000),
        ("4Ki", "count", 4096),
        ("1.5Ki", "count", 1536),
        ("2Mi", "count", 2 * 2**20),
        ("16Gi", "count", 16 * 2**30),
        ("1Ti", "count", 2**40),
        (" 4 Ki ", "count", 4096),
        ("16GB", "bytes", 16 * 10**9),
        ("80GiB", "bytes", 80 * 2**30),
        ("24GiB", "bytes", 24 * 2**30),
        ("512MB", "bytes", 512 * 10**6),
        ("1.5TB", "bytes", 1_500_000_000_000),
        ("8kB", "bytes", 8000),
        ("8KB", "bytes", 8000),
        ("8KiB", "bytes", 8192),
        ("64MiB", "bytes", 64 * 2**20),
        ("1TiB", "bytes", 2**40),
        ("2PB", "bytes", 2 * 10**15),
        ("1PiB", "bytes", 2**50),
        ("16 GB", "bytes", 16 * 10**9),
        # a plain count is a number of bytes too, and B stays a billion where bytes are asked
        ("16G", "bytes", 16 * 10**9),
        ("7B", "bytes", 7 * 10**9),
        ("4Ki", "bytes", 4096),
    ],
)
def test_units(text, unit, value):
    assert parse_count(text, "--budget", unit) == value


@pytest.mark.parametrize(
    "text, unit, words, hint",
    [
        ("16GB", "count", "GB is a unit of bytes, and --budget takes a count", "16G (16,000,000,000)"),
        ("80GiB", "count", "GiB is a unit of bytes", "80Gi (85,899,345,920)"),
        ("0.3Ki", "count", "must be a whole number, not '0.3Ki' (= 307.2)", "a count is a whole number"),
        ("1.5k", "bytes", None, None),  # whole: accepted (checked below)
        ("16gb", "bytes", "gb is not a unit paramsym knows\n    16gb\n      ^^", "did you mean 16GB (gigabytes)?"),
        ("16Gb", "bytes", "Gb is not a unit", "did you mean 16GB (gigabytes; b is bits)?"),
        ("7b", "count", "b is not a unit paramsym knows\n    7b\n     ^", "did you mean 7B (billion)?"),
        ("4K", "count", "K is not a unit", "did you mean 4k (4 thousand) or 4Ki (4 x 1,024)?"),
        ("5m", "count", "m is not a unit", "did you mean 5M (million)?"),
        ("4ki", "count", "ki is not a unit", "did you mean 4Ki"),
        ("80gib", "bytes", "gib is not a unit", "did you mean 80GiB"),
        ("2 billion", "count", "billion is not a unit", "did you mean 2B (billion)?"),
        ("3x", "count", "x is not a unit paramsym knows", "the units are k M G B T"),
        ("2PB", "count", "PB is a unit of bytes", "give a count such as 2_000_000_000_000_000"),
        ("0.5kB", "count", "kB is a unit of bytes", "give a count such as 0.5k (500)"),
        ("1,000", "count", "not '1,000'\n    1,000\n     ^", "write 1_000"),
        ("lots", "count", "must be a whole number such as 64, 1_000_000, 25.6M, 7B, 4Ki or 1e6, not 'lots'", None),
        ("-5", "count", "must be a whole number such as", None),
        ("1e40", "count", "has more than 40 digits", None),
        ("1e28T", "count", "has more than 40 digits", None),
        ("1e30Ti", "count", "has more than 40 digits", None),
        ("2+2", "count", "    2+2\n     ^", "a count is one number, not a formula"),
    ],
)
def test_refused_units(text, unit, words, hint):
    if words is None:
        assert parse_count(text, "--budget", unit) == 1500
        return
    with pytest.raises(paramsym.ParamsymUsageError) as caught:
        parse_count(text, "--budget", unit)
    assert words in caught.value.message
    assert caught.value.message.startswith("--budget")
    if hint is not None:
        assert hint in caught.value.hint


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from(sorted(u for u in UNITS if u)))
def test_every_unit_multiplies(n, unit):
    factor, kind, _ = UNITS[unit]
    assert parse_count(f"{n}{unit}", "--budget", "bytes") == n * factor
    assert looks_like_count(f"{n}{unit}")
    if kind == "bytes":
        with pytest.raises(paramsym.ParamsymUsageError, match="is a unit of bytes"):
            parse_count(f"{n}{unit}", "--budget")
    else:
        assert parse_count(f"{n:_}{unit}", "--set C") == n * factor


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=3))
def test_decimals_with_a_binary_unit(n, places):
    """`n / 10^places` Ki: accepted exactly when it is a whole number of units, else refused."""
    text = f"{n // 10**places}.{n % 10**places:0{places}d}Ki"
    value = Fraction(n, 10**places) * 1024
    if value.denominator == 1:
        assert parse_count(text, "--set T") == value
    else:
        with pytest.raises(paramsym.ParamsymUsageError, match="must be a whole number"):
            parse_count(text, "--set T")


@pytest.mark.parametrize(
    "value, text",
    [
        (0, "0"),
        (592, "592"),
        (1000, "1 k"),
        (1234, "1.23 k"),
        (999_999, "1.00 M"),
        (5_000_000, "5 M"),
        (6_738_415_616, "6.74 B"),
        (7 * 10**9, "7 B"),
        (31_500_000_000_000, "31.5 T"),
        (31_460_635_443_200, "31.5 T"),
        (10**15, "1,000 T"),
    ],
)
def test_counts_as_people_read_them(value, text):
    assert count_text(value) == text


@pytest.mark.parametrize(
    "value, text",
    [
        (1, "1 byte"),
        (512, "512 bytes"),
        (60_072, "60.1 kB"),
        (26_953_662_464, "27.0 GB"),
        (16 * 10**9, "16 GB"),
        (80 * 2**30, "85.9 GB, 80 GiB"),
        (2**30, "1.07 GB, 1 GiB"),
        (512 * 2**20, "537 MB, 512 MiB"),
        (15_999_696_896, "16.0 GB"),
        (1_500_000_000_000, "1.5 TB"),
    ],
)
def test_bytes_as_people_read_them(value, text):
    assert bytes_text(value) == text


@pytest.mark.parametrize(
    "value, text",
    [(5, "5 FLOP"), (2 * 31_460_635_443_200, "62.9 TFLOP"), (3 * 10**15, "3 PFLOP"), (10**24, "1 YFLOP")],
)
def test_flops_as_people_read_them(value, text):
    assert flops_text(value) == text


@pytest.mark.parametrize(
    "value, text",
    [
        (Fraction(123, 10_000), "12.3 ms"),
        (Fraction(1, 2), "500 ms"),
        (42, "42 s"),
        (90, "1.5 min"),
        (4.2 * 3600, "4.2 h"),
        (17 * 86400, "17 days"),
        (0, "0 s"),
    ],
)
def test_times_as_people_read_them(value, text):
    assert seconds_text(value) == text


@given(st.integers(min_value=1, max_value=10**30))
def test_a_count_as_shown_reads_back_within_its_last_digit(n):
    """`6.74 B` is n to three significant digits, and it is input paramsym takes (B is a billion both ways):
    read back, it is within half a unit of the last digit shown."""
    shown = count_text(n)
    number, _, unit = shown.partition(" ")
    places = len(number.partition(".")[2])
    back = parse_count(shown.replace(",", "_").replace(" ", ""), "--budget")
    factor = UNITS[unit][0]
    assert abs(back - n) * 2 * 10**places <= factor
    # an exact figure drops its trailing zeros (`1 k`); a rounded one keeps three significant digits
    assert back == n or len(number.replace(",", "").replace(".", "").lstrip("0")) >= 3


@given(st.integers(min_value=1000, max_value=10**14))
def test_bytes_as_shown_read_back_within_their_last_digit(n):
    shown = bytes_text(n, binary=False)
    number, _, unit = shown.partition(" ")
    places = len(number.partition(".")[2])
    back = parse_count(shown.replace(" ", ""), "--budget", "bytes")
    assert abs(back - n) * 2 * 10**places <= UNITS[unit][0]


@given(st.integers(min_value=1, max_value=909), st.sampled_from(["Ki", "Mi", "Gi", "Ti"]))
def test_binary_bytes_read_back(n, prefix):
    """A whole number of KiB, MiB, GiB, TiB shows as such beside the decimal figure (unless that is exact),
    and what is shown reads back to the same bytes (909 TiB < 1 PB)."""
    size = UNITS[prefix][0]
    power = ["Ki", "Mi", "Gi", "Ti"].index(prefix) + 1
    shown = bytes_text(n * size)
    if (n * size) % 1000**power == 0:
        assert ", " not in shown
        assert parse_count(shown.replace(" ", ""), "--budget", "bytes") == n * size
    else:
        assert shown.endswith(f", {n} {prefix}B")
        assert parse_count(f"{n}{prefix}B", "--budget", "bytes") == n * size


def test_readable_only_where_it_helps():
    assert readable(592) == "592"
    assert readable(5400, "seconds") == "5,400 (1.5 h)"
    assert readable(Fraction(3, 8), "seconds") == "0.375 (375 ms)"
    assert readable(10**15, "flops") == "1,000,000,000,000,000 (1 PFLOP)"
    assert readable(6_738_415_616) == "6,738,415,616 (6.74 B)"
    assert readable(Fraction(3, 2)) == "1.5"
    assert readable(80 * 2**30, "bytes") == "85,899,345,920 (85.9 GB, 80 GiB)"


def test_quantities_in_bytes():
    assert {name for name, q in BY_NAME.items() if q.unit == "bytes"} >= {
        "activation_bytes",
        "param_bytes",
        "kv_cache_bytes",
        "memory",
    }
    assert BY_NAME["params"].unit == BY_NAME["macs"].unit == "count"


@pytest.mark.parametrize(
    "on, text, value",
    [("memory", "80GiB", 80 * 2**30), ("kv_cache_bytes", "16GB", 16 * 10**9), ("params", "7B", 7 * 10**9)],
)
def test_budgets(on, text, value):
    assert parse_budget(text, on) == value


@pytest.mark.parametrize("on", ["params", "macs", "active", "kv_cache", "total"])
def test_bytes_refused_for_a_count(on):
    with pytest.raises(paramsym.ParamsymUsageError) as caught:
        parse_budget("16GB", on)
    assert f"--on {on} is a count" in caught.value.message
    assert "--on memory" in caught.value.message and "16G (16,000,000,000)" in caught.value.hint


@pytest.mark.parametrize(
    "items, symbols, expected",
    [
        (["T=4Ki"], ["T", "d"], {"T": 4096}),
        (["N=1T"], ["N"], {"N": 10**12}),
        (["N=7B"], ["N"], {"N": 7 * 10**9}),
        (["C=1.5k"], ["C"], {"C": 1500}),
        (["D=2b"], ["D", "b"], {"D": 2 * paramsym.language.syntax.symbol("b")}),
    ],
)
def test_set_values_with_units(items, symbols, expected):
    assert parse_assignments(items, symbols) == expected


@pytest.mark.parametrize(
    "items, symbols, words",
    [
        (["D=2T"], ["D", "T"], "--set D=2T is ambiguous: T is a symbol of the program and the unit trillion"),
        (["D=2k"], ["D", "k"], "--set D=2k is ambiguous"),
        (["T=16GB"], ["T"], "--set T=16GB: GB is a unit of bytes, and --set T takes a count"),
        (["T=4K"], ["T"], "K is not a unit"),
        (["T=0.3Ki"], ["T"], "--set T must be a whole number, not '0.3Ki'"),
    ],
)
def test_refused_set_values(items, symbols, words):
    with pytest.raises(paramsym.ParamsymUsageError) as caught:
        parse_assignments(items, symbols)
    assert words in caught.value.message


@pytest.mark.parametrize(
    "text, value",
    [("8", 8), ("4Ki", 4096), ("1.5k", 1500), ("2M", 2 * 10**6), ("B", paramsym.language.syntax.symbol("B"))],
)
def test_sizes(text, value):
    assert parse_size(text, "--batch") == value


@pytest.mark.parametrize(
    "text, words",
    [
        ("2B", "--batch 2B is ambiguous: B is the unit billion"),
        ("1T", "--batch 1T is ambiguous"),
        ("4GB", "GB is a unit of bytes"),
        ("1.5", "must be a whole number"),
    ],
)
def test_refused_sizes(text, words):
    with pytest.raises(paramsym.ParamsymUsageError) as caught:
        parse_size(text, "--batch")
    assert words in caught.value.message


# ---- through the command line -----------------------------------------------------------------------


def test_solve_a_byte_budget():
    result = run_main("solve", LLAMA, "--for", "T", "--budget", "16GB", "--on", "memory", "--dtype", "bfloat16")
    assert result.code == 0, result.err
    assert "largest T with memory <= 16,000,000,000 (16 GB): T = " in result.out
    # the same in JSON: exact integers only
    data = json.loads(
        run_main(
            "solve",
            LLAMA,
            "--for",
            "T",
            "--budget",
            "80GiB",
            "--on",
            "memory",
            "--dtype",
            "bfloat16",
            "--format",
            "json",
        ).out
    )
    assert data["budget"] == 80 * 2**30 and isinstance(data["total_at_value"], int)
    assert data["total_at_value"] <= 80 * 2**30 < data["total_at_next"]


def test_solve_shows_a_binary_budget_as_such():
    result = run_main("solve", LLAMA, "--for", "T", "--budget", "80GiB", "--on", "kv_cache_bytes")
    assert "<= 85,899,345,920 (85.9 GB, 80 GiB): T = 81920" in result.out


def test_a_byte_budget_refused_for_params():
    result = run_main("solve", "examples/llama_symbolic.psym", "--for", "d", "--budget", "16GB")
    assert result.code == 2
    assert result.err.startswith(
        "usage error: --budget '16GB': GB is a unit of bytes, and --on params is a count (parameters), not bytes"
    )
    assert "hint: give a count such as 16G (16,000,000,000)" in result.err
    assert "Traceback" not in result.err


def test_set_with_a_binary_unit():
    four_k = json.loads(run_main("count", LLAMA, "--set", "T=4Ki", "--format", "json").out)
    plain = json.loads(run_main("count", LLAMA, "--set", "T=4096", "--format", "json").out)
    assert four_k == plain
    assert four_k["macs"]["value"] == 31_460_635_443_200


def test_sweep_a_grid_with_units():
    result = run_main("sweep", LLAMA, "--grid", "T=1Ki,2Ki", "--format", "json")
    assert json.loads(result.out)["columns"]["T"] == [1024, 2048]
    ranged = run_main("sweep", LLAMA, "--grid", "T=1Ki:3Ki:1Ki", "--format", "csv")
    assert [line.split(",")[0] for line in ranged.out.splitlines()[1:]] == ["1024", "2048", "3072"]


def test_sweep_shows_bytes_as_people_read_them():
    result = run_main(
        "sweep", LLAMA, "--grid", "T=1Ki,2Ki", "--on", "kv_cache_bytes", "--budget", "1GiB", "--dtype", "bfloat16"
    )
    assert result.code == 0, result.err
    assert "537 MB" in result.out and "1.07 GB" in result.out
    assert "2 of 2 points have kv_cache_bytes <= 1,073,741,824 (1.07 GB, 1 GiB)" in result.out
    assert "the largest kv_cache_bytes within the budget: 1,073,741,824 (1.07 GB, 1 GiB) at T=2048" in result.out


def test_sweep_refuses_bytes_in_a_grid():
    result = run_main("sweep", LLAMA, "--grid", "T=1KiB,2KiB")
    assert result.code == 2 and "--grid T=1KiB: KiB is a unit of bytes, and --grid T takes a count" in result.err


def test_summary_lines_read_large_numbers():
    result = run_main("count", LLAMA, "--fold")
    assert "= 6,738,415,616 (6.74 B)" in result.out
    assert "= 31,460,635,443,200 (31.5 T)" in result.out
    assert "memory = weights 27.0 GB (fp32) + KV cache 4.29 GB (fp32, one sequence) = 31.2 GB to serve" in result.out
    small = run_main("count", "input(32x32x3) > conv3x3(->16) > gap > dense(->10)").out
    assert (
        "params = 432 + 0 + 160 = 592\n" in small and "memory = weights 2.37 kB (fp32, parameters and state)" in small
    )
