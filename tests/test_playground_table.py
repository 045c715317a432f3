"""The playground's layer table (docs/playground/panels/table.js, `_table` in docs/playground/playground.py): rows
folded by stage and repeat as `paramsym count --fold`, ×n on repeats, the total row, the KV-cache and active
columns where the command has them, the path of each row and a click that puts the editor's cursor on its
source; and the tabs' ARIA. Numbers are compared with the command line (`paramsym count --format json`)."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from helpers.playground_browser import open_playground, runs, type_program, wait_for_run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["resnet50", "llama2_7b", "mixtral_8x7b", "bert_base"]
REPEATS = """def b = conv3x3(->8, pad=1) > relu
input(8x8x3) > (b)*3 > (conv3x3(->8, pad=1) > relu) * 2 > (b) * N > b > b > gap > (dense(->4)) * 2"""


def _cli(*args: str, json_output: bool = True):
    argv = [sys.executable, "-m", "paramsym", "count", *args] + (["--format", "json"] if json_output else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "400"}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=True)
    return json.loads(result.stdout) if json_output else result.stdout


def _example(name: str) -> str:
    return (ROOT / "examples" / f"{name}.psym").read_text()


def _headers(name: str) -> list[str]:
    """The column headers of the command's table for an example (its first line, split on 2+ spaces)."""
    return _program_headers(f"examples/{name}.psym")


def _program_headers(program: str) -> list[str]:
    first = _cli(program, "--fold", json_output=False).splitlines()[0]
    return re.split(r"\s{2,}", first.strip())


# ---- the page's Python half under CPython ----
@pytest.fixture(scope="module")
def playground():
    sys.path.insert(0, str(ROOT / "docs" / "playground"))
    try:
        import playground
    finally:
        sys.path.pop(0)
    return playground


def _table(playground, program: str, values: dict | None = None) -> dict:
    result = json.loads(playground.run(json.dumps({"program": program, "values": values or {}, "parts": ["table"]})))
    assert result["ok"], result.get("error")
    return result["table"]


def _rows(nodes):
    for node in nodes:
        yield node
        yield from _rows(node["children"] or [])


@pytest.mark.parametrize("name", EXAMPLES)
def test_total_row_and_columns_are_the_commands(playground, name):
    table = _table(playground, _example(name))
    expected = _cli(f"examples/{name}.psym")
    keys = [c["key"] for c in table["columns"]]
    for key in keys:
        if key in ("fan_in", "formula"):
            continue
        assert int(table["total"]["cells"][key]["value"]) == expected[key]["value"], key
    # the KV-cache and active columns exactly where the command's table has them (and its titles)
    headers = _headers(name)
    assert [c["title"] for c in table["columns"]] == [h for h in headers if h not in ("#", "layer", "output", "RF")]
    assert ("kv_cache" in keys) == ("KV cache" in headers) == (name != "resnet50")
    assert ("active" in keys) == ("active" in headers) == (name == "mixtral_8x7b")
    # every top-level row adds up the layers it covers (the command's JSON, added here in the test)
    for row in table["rows"]:
        first, _, last = row["index"].partition("-")
        covered = expected["layers"][int(first) : int(last or first) + 1]
        for key in keys:
            if key not in ("fan_in", "formula") and row["cells"][key]["text"]:
                assert int(row["cells"][key]["value"]) == sum(layer[key]["value"] for layer in covered), (row, key)


@pytest.mark.parametrize(
    "name, label, times, per",
    [
        ("llama2_7b", "block", "32", {"params": 202_383_360}),
        ("mixtral_8x7b", "block", "32", {"params": 1_451_270_144, "active": 394_305_536}),
        ("bert_base", "block", "12", {}),
        ("resnet50", "bottleneck_id(128, 512, 1)", "3", {"params": 280_064}),
    ],
)
def test_repeated_rows(playground, name, label, times, per):
    """`(block) * L` and `*3` repeats are one row `block ×n`: the total, and n × the count of one copy."""
    table = _table(playground, _example(name))
    row = next(r for r in table["rows"] if r["label"] == label)
    assert row["times"] == times
    for key, cell in row["cells"].items():
        if cell.get("per"):
            assert int(cell["value"]) == int(times) * int(cell["per"].replace(",", "")), key
            assert cell["times"] == times
    for key, value in per.items():
        assert row["cells"][key]["per"] == f"{value:,}"


def test_repeats_of_every_form(playground):
    """Unrolled copies (alike or not), a sequence repeated, a symbolic repeat, identical stages, a layer repeated."""
    table = _table(playground, REPEATS, {"N": "4"})
    expected = _cli(REPEATS, "--set", "N=4")
    top = [(r["label"], r["times"], r["index"], r.get("differ", False)) for r in table["rows"]]
    assert top == [
        ("b", "3", "0-5", True),  # the first copy takes 3 channels, the others 8: no per-copy count
        ("repeat", "2", "6-9", False),
        ("b", "4", "10-11", False),  # (b) * N with N = 4: counted once, times 4
        ("b", "2", "12-15", False),  # b > b: two identical stages
        ("gap", "", "16", False),
        ("dense", "2", "17-18", True),
    ]
    b3, repeat, bn, bb = table["rows"][:4]
    assert "per" not in b3["cells"]["params"] and [c["label"] for c in b3["children"]] == ["b[1]", "b[2]", "b[3]"]
    params = [layer["params"]["value"] for layer in expected["layers"]]
    assert [int(c["cells"]["params"]["value"]) for c in b3["children"]] == [sum(params[i : i + 2]) for i in (0, 2, 4)]
    assert params[2] + params[3] == 576 and repeat["cells"]["params"]["per"] == "576"
    assert sum(params[10:12]) == 4 * 576
    assert bn["cells"]["params"] == {"text": "2,304", "value": "2304", "short": "", "per": "576", "times": "4"}
    assert bb["cells"]["params"]["per"] == "576" and [c["label"] for c in bb["children"]] == ["b", "b"]
    assert int(table["total"]["cells"]["params"]["value"]) == expected["params"]["value"]
    assert sum(int(r["cells"]["params"]["value"]) for r in table["rows"]) == expected["params"]["value"]
    # the layers of a symbolic repeat say it too, and where they are
    conv = bn["children"][0]
    assert conv["where"] == ["b[1..N]", "conv3x3"] and conv["times"] == "4" and conv["cells"]["params"]["per"] == "576"
    # a symbol without a value: ×N and the formula
    free = _table(playground, REPEATS)
    assert free["rows"][2]["times"] == "N" and free["rows"][2]["cells"]["params"]["text"] == "576*N"


def test_where_each_row_is(playground):
    table = _table(playground, _example("mixtral_8x7b"))
    block = next(r for r in table["rows"] if r["label"] == "block")
    assert [c["where"] for c in block["children"]][1:5] == [
        ["block[1..L]", "attn"],
        ["block[1..L]", "rmsnorm"],
        ["block[1..L]", "router"],
        ["block[1..L]", "expert", "dense"],
    ]
    layers = _cli("examples/mixtral_8x7b.psym")["layers"]
    for child in block["children"]:
        layer = layers[int(child["index"])]
        assert (child["line"], child["column"], child["path"]) == (layer["line"], layer["column"], layer["path"])


def test_long_networks_fold_as_the_command(playground):
    """Beyond 300 layers the table folds; beyond 300 stages consecutive stages share a row; all rows are counted."""
    program = "input(8) > " + " > ".join(f"dense(->{8 + i % 3})" for i in range(700))
    table = _table(playground, program)
    expected = _cli(program)
    assert table["fold"] and table["layers"] == 700 and len(table["rows"]) <= 100
    assert table["rows"][0]["label"] == "dense .. dense" and table["rows"][0]["children"][0]["label"] == "dense"
    assert sum(int(r["cells"]["params"]["value"]) for r in table["rows"]) == expected["params"]["value"]
    assert int(table["total"]["cells"]["params"]["value"]) == expected["params"]["value"]
    # more layers than the page lists (playground.MAX_ROWS): the rows beyond are not sent, but still counted
    program = "input(8) > " + " > ".join(f"dense(->{8 + i % 3})" for i in range(2500))
    result = json.loads(playground.run(json.dumps({"program": program, "parts": ["table"]})))
    table = result["table"]
    sent = sum(1 for _ in _rows(table["rows"]))
    assert sent <= playground.MAX_ROWS and [r["children"] is None for r in table["rows"]].count(True) > 0
    listed = sum(1 for row in _rows(table["rows"]) if row["layers"] == 1)
    assert table["unlisted"] == 2500 - listed > 0
    assert sum(int(r["cells"]["params"]["value"]) for r in table["rows"]) == result["params"]["value"]
    assert table["total"]["cells"]["params"]["value"] == str(result["params"]["value"])
    small = _table(playground, _example("resnet50"))
    assert not small["fold"]  # 158 layers: every layer, as `paramsym count`


# ---- in the browser ----
def _fold(page, value: str) -> None:
    before = runs(page)
    page.select_option("#ps-table-fold", value)
    wait_for_run(page, before)


@functools.cache
def _expected(name: str) -> dict:
    return _cli(f"examples/{name}.psym")


def _show(page, name: str) -> None:
    """Open an example, and wait for its own result (an edit answered while it was typed counts as a run too)."""
    type_program(page, _example(name))
    total = f"{_expected(name)['params']['value']:,}"
    footer = "(document.querySelector('#ps-table tfoot [data-value]') || {}).dataset?.value"
    page.wait_for_function(
        f"document.querySelector('#ps-totals [data-q=params]').textContent === '{total}' && "
        f"{footer} === '{total.replace(',', '')}'"
    )


def _offset(program: str, line: int, column: int) -> int:
    return sum(len(text) + 1 for text in program.split("\n")[: line - 1]) + column - 1


def test_fold_and_unfold(page):
    _show(page, "llama2_7b")
    _fold(page, "auto")
    # auto: 7 layers, everything open (the block's row, then its layers)
    rows = page.locator("#ps-table tbody tr")
    assert rows.count() == 4 + 7
    block = page.locator("#ps-table tr.ps-group").first
    assert block.locator("button.ps-fold").get_attribute("aria-expanded") == "true"
    _fold(page, "blocks")
    assert rows.count() == 4 and "table.fold=blocks" in page.url
    button = page.locator("#ps-table tr.ps-group button.ps-fold").first
    assert button.get_attribute("aria-expanded") == "false"
    button.click()
    assert rows.count() == 11
    assert page.locator("#ps-table tr.ps-group button.ps-fold").first.get_attribute("aria-expanded") == "true"
    # the keyboard: the button keeps the focus, Enter and Space fold and unfold
    page.keyboard.press("Enter")
    assert rows.count() == 4
    page.keyboard.press(" ")
    assert rows.count() == 11
    assert page.evaluate("document.activeElement.classList.contains('ps-fold')")
    # every layer: the layers only, with where they are
    _fold(page, "layers")
    assert rows.count() == 10 and page.locator("#ps-table tr.ps-group").count() == 0
    assert rows.nth(2).locator("td").nth(1).inner_text() == "block[1..L] › attn ×32"
    _fold(page, "auto")
    assert "table.fold" not in page.url


def test_fold_setting_in_the_address(browser):
    page = browser.page()
    program = _example("llama2_7b")
    open_playground(page, browser.base, "#program=" + quote(program) + "&table.fold=blocks")
    assert page.input_value("#ps-table-fold") == "blocks"
    assert page.locator("#ps-table tbody tr").count() == 4
    # a link opened on the page (hashchange): its setting, and a change of it goes into the address again
    before = runs(page)
    page.evaluate("h => { location.hash = h; }", "#program=" + quote(_example("resnet50")) + "&table.fold=layers")
    wait_for_run(page, before)
    assert page.input_value("#ps-table-fold") == "layers" and page.locator("#ps-table tr.ps-group").count() == 0
    _fold(page, "blocks")
    assert "table.fold=blocks" in page.url and page.locator("#ps-table tbody tr").count() == 14
    page.close()


def test_more_layers_than_listed(page):
    """2,500 layers: folded (auto), every row counted, the layers beyond the page's 2,000 rows said to be left out."""
    program = "input(8) > " + " > ".join(f"dense(->{8 + i % 3})" for i in range(2500))
    type_program(page, program, timeout=120_000)
    page.wait_for_function("document.getElementById('ps-table-note').textContent.includes('not listed')")
    _fold(page, "auto")
    note = page.inner_text("#ps-table-note")
    assert note.startswith("2,500 layers: folded by stage") and "layers are not listed" in note
    assert page.locator("#ps-table tbody tr").count() == 100
    assert page.locator("#ps-table tbody tr").first.locator("td").nth(1).inner_text().startswith("dense .. dense")
    assert page.locator("#ps-table .ps-fold-none").count() > 0


def test_repeat_row_and_units(page):
    _show(page, "llama2_7b")
    _fold(page, "blocks")
    block = page.locator("#ps-table tr.ps-group").first
    cells = block.locator("td")
    assert "block ×32" in cells.nth(1).inner_text()
    params = cells.nth(3)
    assert params.inner_text().split("\n") == ["6.48 B", "6,476,267,520", "32 × 202,383,360"]
    assert params.get_attribute("data-value") == "6476267520"
    assert params.get_attribute("title") == "6,476,267,520 = 32 × 202,383,360"
    # the totals above the table in units too
    assert page.inner_text("#ps-totals [data-q=params]") == "6,738,415,616"
    assert page.inner_text("#ps-totals [data-short=params]") == "6.74 B"


@pytest.mark.parametrize("name", EXAMPLES)
def test_total_row_in_the_page(page, name):
    _show(page, name)
    expected = _expected(name)
    headers = page.locator("#ps-table thead th").all_inner_texts()
    assert headers == _headers(name)
    footer = page.locator("#ps-table tfoot td, #ps-table tfoot th")
    assert footer.nth(1).inner_text() == "total"
    shown = {}
    for i, header in enumerate(headers):
        value = footer.nth(i).get_attribute("data-value")
        if value is not None:
            shown[header] = int(value)
    keys = {"params": "params", "state": "state", "active": "active", "KV cache": "kv_cache", "MACs": "macs"}
    assert shown == {h: expected[keys[h]]["value"] for h in headers if h in keys}
    assert page.inner_text("#ps-totals [data-q=params]") == f"{expected['params']['value']:,}"


def test_symbolic_repeat(page):
    """A repeat count without a value: `res ×L`, and the count of one copy as a formula, bracketed."""
    type_program(page, "input(T) > embed(V->d) > (res(ln > attn(heads=h)))*L")
    page.wait_for_function("document.querySelectorAll('#ps-table tr.ps-group').length === 1")
    row = page.locator("#ps-table tr.ps-group")
    assert row.locator("td").nth(1).inner_text() == "res ×L 2 layers"
    assert row.locator("td").nth(3).inner_text().split("\n") == ["4*L*d^2 + 2*L*d", "L × (4*d^2 + 2*d)"]
    headers = _program_headers("input(T) > embed(V->d) > (res(ln > attn(heads=h)))*L")
    assert page.locator("#ps-table thead th").all_inner_texts() == headers and "KV cache" in headers


def test_click_a_row_to_see_its_source(page):
    program = _example("mixtral_8x7b")
    _show(page, "mixtral_8x7b")
    _fold(page, "auto")
    layers = _expected("mixtral_8x7b")["layers"]
    for index in (0, 2, 5, 10):
        row = page.locator(f"#ps-table tr.ps-layer[data-key='{index}']")
        row.locator("td").nth(2).click()
        layer = layers[index]
        assert page.evaluate("document.activeElement.id") == "ps-program"
        at = page.evaluate("document.getElementById('ps-program').selectionStart")
        assert at == _offset(program, layer["line"], layer["column"])
        assert program[at:].startswith(layer["name"])
        assert row.get_attribute("class").split() == ["ps-row", "ps-layer", "ps-current"]
        assert page.locator("#ps-table tr.ps-current").count() == 1


def test_tabs_aria_and_keys(page):
    tabs = page.locator(".ps-tabs [role=tab]")
    assert page.get_attribute(".ps-tabs", "role") == "tablist" and tabs.count() == 3
    for i in range(3):
        tab = tabs.nth(i)
        panel = tab.get_attribute("aria-controls")
        assert page.get_attribute(f"#{panel}", "role") == "tabpanel"
        assert page.get_attribute(f"#{panel}", "aria-labelledby") == tab.get_attribute("id")
    tabs.nth(0).click()

    def selected():
        return [tabs.nth(i).get_attribute("aria-selected") == "true" for i in range(3)], [
            tabs.nth(i).get_attribute("tabindex") for i in range(3)
        ]

    assert selected() == ([True, False, False], ["0", "-1", "-1"])
    tabs.nth(0).focus()
    page.keyboard.press("ArrowRight")
    assert selected() == ([False, True, False], ["-1", "0", "-1"])
    assert page.evaluate("document.activeElement.dataset.tab") == "explain"
    assert page.evaluate("[...document.querySelectorAll('[role=tabpanel]')].map(e => e.hidden)") == [True, False, True]
    page.keyboard.press("End")
    assert selected()[0] == [False, False, True]
    page.keyboard.press("ArrowRight")  # wraps around
    assert selected()[0] == [True, False, False]
    page.keyboard.press("ArrowLeft")
    assert selected()[0] == [False, False, True]
    page.keyboard.press("Home")
    assert selected()[0] == [True, False, False] and page.is_visible("#ps-table")


@pytest.mark.parametrize("width", [390, 1024, 1920])
def test_widths(browser, width):
    """No page-level horizontal scroll (the table scrolls in its box); rows do not wrap; screenshots to look at."""
    page = browser.page(width, 900)
    open_playground(page, browser.base, "#program=" + quote(_example("mixtral_8x7b")) + "&table.fold=blocks")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    wrap = page.locator(".ps-table-wrap")
    if width == 390:
        assert wrap.evaluate("e => e.scrollWidth > e.clientWidth")
    # no row's name wraps: what each name cell holds lies on one line
    spreads = page.evaluate(
        "[...document.querySelectorAll('#ps-table td.ps-name, #ps-table td:nth-child(3)')].map(td => {"
        " const range = document.createRange(); range.selectNodeContents(td);"
        " const tops = [...range.getClientRects()].map(r => r.top); return Math.max(...tops) - Math.min(...tops); })"
    )
    assert len(spreads) >= 8 and max(spreads) < 8, spreads
    page.screenshot(path=f"/tmp/pg-table-{width}.png", full_page=True)
    page.locator("#ps-table tr.ps-group button.ps-fold").first.click()
    page.locator(".ps-results").screenshot(path=f"/tmp/pg-table-{width}-open.png")
    page.close()


def test_no_other_host(browser):
    assert browser.external == []
