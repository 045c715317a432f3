"""What the terminal shows never misleads: no number is cut at any width, no numeric
column disappears, large networks fold (and say so); the fast printers give exactly
what the plain ones gave."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import paramsym
from helpers.cli_helpers import PARAMSYM
from paramsym.render import printers
from paramsym.render.printers import render_table

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

PROGRAMS = {
    "resnet18_symbolic": (EXAMPLES / "resnet18_symbolic.psym").read_text(),
    "resnet18": (EXAMPLES / "resnet18.psym").read_text(),
    "cifar_cnn_symbolic": (EXAMPLES / "cifar_cnn_symbolic.psym").read_text(),
    "densenet121": (EXAMPLES / "densenet121.psym").read_text(),
    "vgg16_bn": (EXAMPLES / "vgg16_bn.psym").read_text(),
    "free symbols": "input(H x W x D) > conv2d(->M, k=K, bias) > (conv3x3(->M, pad=1) > relu) * L > gap"
    " > dense(->10, bias)",
    "relation and floor": "let C = 8\nlet D = 2C\ninput(H x 17 x 3) > conv3x3(->C, stride=2) > bn"
    " > conv3x3(->D) > maxpool2x2 > flatten > dense(->10)",
    "huge numbers": "input(4096x4096x512) > conv7x7(->4096, pad=3, bias) > bn > conv7x7(->4096, pad=3)",
}
WIDTHS = (60, 80, 120)


def expected_numbers(network, fold: bool) -> tuple[set[str], set[str]]:
    """The numbers of the table's cells and totals, and the titles of its numeric columns."""
    document = network.document()
    data = document.head()
    rows = printers._rows(network, document, fold)[0]
    columns = printers._table_columns(network, data, rows)
    numbers, titles = set(), set()
    for column in columns:
        if column.number and column.key != "#":
            titles.add(column.header)
            numbers |= {text for text in column.texts() if re.fullmatch(r"[\d,]+", text)}
    return numbers, titles


def whole(number: str, text: str) -> bool:
    return re.search(rf"(?<![\d,]){re.escape(number)}(?![\d,])", text) is not None


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", PROGRAMS)
@pytest.mark.parametrize("fold", [False, True])
def test_no_number_is_cut_and_no_numeric_column_disappears(name, width, fold):
    network = paramsym.parse(PROGRAMS[name])
    text = render_table(network, width=width, fold=fold)
    assert max(len(line) for line in text.splitlines()) <= width, text
    numbers, titles = expected_numbers(network, fold)
    missing = [n for n in numbers if not whole(n, text)]
    assert not missing, f"cut or missing at width {width}: {missing[:5]}\n{text}"
    for title in titles:
        assert re.search(rf"(^|\s){re.escape(title)}(\s|$)", text, re.M), f"no column {title}\n{text}"
    assert "…" not in text


def test_resnet18_symbolic_at_80_columns_through_the_cli():
    """The report of issue 9: MACs shown as `118,013,9` and the RF column gone."""
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    result = subprocess.run(
        [PARAMSYM, "count", str(EXAMPLES / "resnet18_symbolic.psym"), "--fold"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    for number in ("118,013,952", "1,814,073,344", "11,689,512", "4,720,640", "627"):
        assert whole(number, out), number
    assert "RF" in out and "MACs" in out
    assert "formula column is left out to fit 80 columns" in out


def test_the_formula_column_goes_first():
    network = paramsym.parse(PROGRAMS["resnet18_symbolic"])
    wide = render_table(network, width=140, fold=True)
    assert "formula" in wide.splitlines()[0] and "left out" not in wide
    narrow = render_table(network, width=100, fold=True)
    assert "formula" in narrow.splitlines()[0]  # still fits, the layer column wraps
    stacked = render_table(network, width=60, fold=True)
    assert "formula" not in stacked.splitlines()[0] and "left out to fit 60 columns" in stacked
    assert "stem(C) (4 layers) -> 56 x 56 x C" in stacked


def test_the_narrowest_layout_pairs_titles_with_values():
    text = render_table(paramsym.parse(PROGRAMS["resnet18"]), width=40, fold=True)
    assert max(len(line) for line in text.splitlines()) <= 40
    assert "MACs 118,013,952" in text and "RF 11" in text


def test_tables_that_fit_are_as_before():
    """The README's table at 100 columns (the docs examples check the rest)."""
    text = render_table(paramsym.parse(PROGRAMS["resnet18"]), width=100, fold=True)
    assert "  4-15   basic(64)[1..2] (12          56x56x64       147,968     512              462,422,016    43" in text


# ---- folding by default --------------------------------------------------------------------


def run(*args, columns: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    return subprocess.run([PARAMSYM, *args], capture_output=True, text=True, env=env, timeout=120)


def test_large_networks_fold_by_default_and_say_so():
    path = str(EXAMPLES / "resnet152.psym")  # 464 layers
    folded = run("count", path)
    assert folded.returncode == 0, folded.stderr
    assert len(folded.stdout.splitlines()) < 40
    assert "(folded: 464 layers in 14 rows, one per top-level stage; --all shows every layer)" in folded.stdout
    for flag in ("--all", "--no-fold"):
        every = run("count", path, flag)
        assert every.returncode == 0 and len(every.stdout.splitlines()) > 464 and "folded" not in every.stdout
    asked = run("count", path, "--fold")
    assert "--all shows every layer" not in asked.stdout  # asked for: nothing to explain
    assert asked.stdout.splitlines()[:16] == folded.stdout.splitlines()[:16]


def test_small_networks_do_not_fold_by_default():
    out = run("count", str(EXAMPLES / "resnet101.psym")).stdout  # 311 layers
    assert "folded" in out
    out = run("count", str(EXAMPLES / "resnet50.psym")).stdout  # 158 layers
    assert "folded" not in out and len(out.splitlines()) > 158


def test_json_csv_and_markdown_keep_every_layer():
    path = str(EXAMPLES / "resnet152.psym")
    assert len(json.loads(run("count", path, "--format", "json").stdout)["layers"]) == 464
    assert len(run("count", path, "--format", "csv").stdout.splitlines()) == 1 + 464 + 1
    assert len(run("count", path, "--format", "markdown").stdout.splitlines()) > 464


def chain(layers: int) -> str:
    cycles = ["conv3x3(->C,pad=1)>bn>relu"] * (layers // 3) + ["relu"] * (layers % 3)
    return "let C = 16\ninput(32x32x16)>" + ">".join(cycles)


def test_a_flat_chain_groups_its_stages_and_the_rows_add_up():
    network = paramsym.parse(chain(1000), C=64)
    text = render_table(network, width=120, fold=None)
    rows = [line for line in text.splitlines() if re.match(r"\s+\d+-\d+\s", line)]
    assert len(rows) == 100
    assert "(folded: 1,000 layers in 100 rows, 10 top-level stages to a row; --all shows every layer)" in text
    assert rows[0].split()[:4] == ["0-9", "conv3x3", "..", "conv3x3"]
    assert rows[1].split()[:4] == ["10-19", "bn", "..", "bn"]
    params = sum(int(re.search(r"32 x 32 x C\s+([\d,]+)", line).group(1).replace(",", "")) for line in rows)
    assert params == network.evaluate()["params"]


# ---- the fast printers write what the plain ones did ------------------------------------------

JSON_PROGRAMS = [
    *PROGRAMS.values(),
    chain(30),
    "relu",
    "conv2d(C_in->C_out, k=k, bias) > relu",
    "input(8x8x3) > (conv3x3(->C, pad=1) > bn) * L > gap > dense(->10)",
]


@pytest.mark.parametrize("convention", ["torch", "keras"])
@pytest.mark.parametrize("text", JSON_PROGRAMS, ids=range(len(JSON_PROGRAMS)))
def test_json_is_json_dumps_of_to_dict(text, convention):
    network = paramsym.parse(text, convention=convention)
    assert printers.render_json(network) == json.dumps(network.to_dict(), indent=2)


def test_to_dict_gives_fresh_dicts():
    network = paramsym.parse(chain(9))
    data = network.to_dict()
    data["layers"][3]["params"]["value"] = -1
    data["layers"][3]["out_shape"].append("x")
    assert data["layers"][6]["params"]["value"] != -1 and len(data["layers"][6]["out_shape"]) == 3
    again = network.to_dict()
    assert again["layers"][3]["params"]["value"] != -1 and len(again["layers"][3]["out_shape"]) == 3


def test_copies_share_the_counts_and_alike_layers_are_counted_once():
    network = paramsym.parse(chain(30))
    assert network.with_values(C=64).layers is network.layers
    assert network.with_options(dtype="float16").layers is network.layers
    convs = [lc for lc in network.layers if lc.layer.name == "conv3x3"]
    assert convs[1].counts is convs[2].counts  # 32x32xC -> 32x32xC each
    assert convs[0].counts is not convs[1].counts  # 32x32x16 -> 32x32xC
    assert str(convs[0].params) == "144*C" and str(convs[1].params) == "9*C**2"


def plain_sweep_csv(result) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.column_names())
    for row in result.rows():
        writer.writerow(row.values())
    return buffer.getvalue()


def test_sweep_csv_is_what_csv_writer_writes():
    from paramsym.algebra.sweeps import Sweep, sweep

    network = paramsym.parse("input(H x H x 3) > conv3x3(->C, stride=2, pad=1) > bn > relu > gap > dense(->10, bias)")
    result = sweep(network, {"C": list(range(1, 60)), "H": list(range(1, 40))}, budget=5000)
    assert printers.render_sweep(result, "csv") == plain_sweep_csv(result)
    odd = Sweep(
        {
            "a": np.array(
                [0, -5, 123, -1000, 99_999_999_999, 10**18, np.iinfo(np.int64).max, -np.iinfo(np.int64).max],
                dtype=np.int64,
            )
        },
        {"b": np.array([10**30, 0, -3, 5, 7, 1, 2, -(10**25)], dtype=object), "c": np.arange(8, dtype=np.uint32)},
        within=np.array([True, False] * 4),
        valid=np.array([True] * 7 + [False]),
    )
    assert printers.render_sweep(odd, "csv") == plain_sweep_csv(odd)
    lowest = Sweep({"a": np.array([np.iinfo(np.int64).min, 1], dtype=np.int64)}, {})
    assert printers.render_sweep(lowest, "csv") == plain_sweep_csv(lowest)


@pytest.mark.parametrize("width", [8, 20, 30, 45])
@pytest.mark.parametrize(
    "program",
    ["input(8x8x3)", "relu", PROGRAMS["resnet18"], PROGRAMS["free symbols"]],
    ids=["no layer", "one layer", "resnet18", "free symbols"],
)
def test_any_width_gives_a_table(program, width):
    network = paramsym.parse(program)
    text = render_table(network, width=width, fold=True)
    assert "params" in text
    if width >= 20:  # the longest number, 1,814,073,344, fits
        numbers, _ = expected_numbers(network, True)
        assert all(whole(n, text) for n in numbers), text


def test_compiled_formulas_broadcast_like_the_full_grid():
    import sympy

    from paramsym.algebra.vectorize import compile_condition, compile_exact

    C, H = sympy.Symbol("C", positive=True, integer=True), sympy.Symbol("H", positive=True, integer=True)
    expr = 9 * C**2 * sympy.floor((H - 1) / 2) ** 2 + 7 * sympy.ceiling(C / 3) + H
    c, h = np.arange(1, 40, dtype=np.int64), np.arange(1, 30, dtype=np.int64)
    dense = dict(zip("CH", (m.ravel() for m in np.meshgrid(c, h, indexing="ij"))))
    sparse = dict(zip("CH", np.meshgrid(c, h, indexing="ij", sparse=True)))
    assert compile_exact(expr, [C, H])(sparse).shape == (39, 29)
    assert (compile_exact(expr, [C, H])(sparse).ravel() == compile_exact(expr, [C, H])(dense)).all()
    big = 10**20 * C**3 * H  # beyond int64: exact Python integers, same shapes
    assert (compile_exact(big, [C, H])(sparse).ravel() == compile_exact(big, [C, H])(dense)).all()
    assert compile_condition(C / 3, "integer", [C, H])(sparse).shape == (39, 1)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.psym")), ids=lambda p: p.stem)
def test_counting_alike_layers_once_counts_every_layer_as_alone(path):
    from paramsym.core.quantities import count_layer

    network = paramsym.parse(path.read_text())
    assert [lc.counts for lc in network.layers] == [count_layer(lc.layer) for lc in network.layers]


@pytest.mark.parametrize(
    "program",
    [chain(400), PROGRAMS["densenet121"], PROGRAMS["free symbols"], (EXAMPLES / "resnet152.psym").read_text()],
    ids=["chain", "densenet121", "free symbols", "resnet152"],
)
def test_long_tables_without_rich_are_what_rich_prints(program, monkeypatch):
    network = paramsym.parse(program)
    plain = render_table(network, width=250, fold=False)
    monkeypatch.setattr(printers, "_PLAIN_ABOVE", 10**9)
    monkeypatch.setattr(printers, "_plain_text", lambda *args: None)
    assert plain == render_table(network, width=250, fold=False)


def _through_rich(network, width, fold, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setattr(printers, "_PLAIN_ABOVE", 10**9)
        patched.setattr(printers, "_plain_text", lambda *args: None)
        return render_table(network, width=width, fold=fold)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.psym")), ids=lambda p: p.stem)
def test_tables_written_without_rich_are_what_rich_prints(path, monkeypatch):
    """Piped, a table is written without rich whenever nothing in it wraps: the same text."""
    programs = [paramsym.parse(path.read_text())]
    names = [str(s) for s in programs[0].symbols]
    # the first values that make a valid network: llama_symbolic needs d a multiple of 384 (heads of 128,
    # an MLP of 8d/3); rope needs heads of an even width, so the Llamas take few heads (h, g, top k, E)
    for values in (
        dict.fromkeys(names, 64),
        dict.fromkeys(names, 384),
        {n: 4 if n in ("h", "g", "k", "E") else 64 for n in names},
        {n: v for n, v in programs[0].defaults.items() if n in names},  # maxvit_t: p divides every map
    ):
        if not names:
            break
        try:
            programs.append(programs[0].with_values(**values))
            break
        except paramsym.ParamsymError:
            continue
    assert len(programs) == 1 + bool(names), "no values tried make a valid network"
    written = 0
    for network in programs:
        for width in (20, 45, 60, 80, 120, 200, 1000):  # 1000: a summary whose sums are long (DeepSeek-V2-Lite)
            for fold in (None, True, False):
                plain = printers._plain_text(printers._layout(network, width, fold), width)
                written += plain is not None
                assert render_table(network, width=width, fold=fold) == _through_rich(network, width, fold, monkeypatch)
                assert plain is None or plain == render_table(network, width=width, fold=fold)
    assert written


@pytest.mark.parametrize(
    "text",
    [
        "relu",
        "input(8x8x3)",
        PROGRAMS["free symbols"],
        PROGRAMS["huge numbers"],
        PROGRAMS["relation and floor"],
        "dense(7->D) > dense(->E)",
        "def blk(c) = conv3x3(->c) > relu\ninput(32x32x3) > blk(8) > blk(16)",
        "input(32x32x3) > (conv3x3(->8, pad=1) > relu) * 3 > res(bn | relu)",
    ],
)
@pytest.mark.parametrize("width", [20, 60, 120])
def test_small_tables_without_rich_are_what_rich_prints(text, width, monkeypatch):
    network = paramsym.parse(text)
    for fold in (None, True, False):
        assert render_table(network, width=width, fold=fold) == _through_rich(network, width, fold, monkeypatch)


def test_a_piped_count_does_not_import_rich():
    code = (
        "import sys; from paramsym.cli import main\n"
        "try:\n    main(['count', 'conv3x3(32->64, bias) > pool > conv5x5(->40)'])\n"
        "except SystemExit:\n    pass\n"
        "sys.stderr.write(str(sorted(m for m in sys.modules if m.startswith('rich'))))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "82,496" in done.stdout and done.stderr == "[]", done.stderr


def test_a_long_table_that_fits_does_not_go_through_rich(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("rich Table built")

    monkeypatch.setattr(printers, "_rich", refuse)
    text = render_table(paramsym.parse(chain(400)), width=200, fold=False)
    assert len(text.splitlines()) > 400
