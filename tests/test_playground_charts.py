"""The playground's pictures (docs/playground.md, panels/chart.js, sweep.js, diagram.js): the per-layer bar chart,
the sweep of one symbol and the diagram of the network's blocks. Their numbers are compared with the command line
(`paramsym count --format json`, `paramsym sweep --format json`), first from the page's Python half under CPython,
then as drawn in headless Chromium (the data attributes on the SVG elements), with each control exercised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from helpers.doc_examples import ROOT
from helpers.playground_browser import open_playground, runs, wait_for_run
from helpers.playground_browser import type_program as _type_program

SEED = "conv3x3(32->64, bias) > pool > conv5x5(->40)"
BUDGET = "conv3x3(3->C, bias) > conv3x3(->2C, bias) > conv3x3(->4C, bias) > gap > dense(->10, bias)"
GROUPS = "input(32x32x3) > conv3x3(3->C, pad=1) > conv3x3(->C, groups=4, pad=1) > gap > dense(->10, bias)"
RESIDUAL = "input(32x32x16) > res(conv3x3(->16, pad=1) > relu > conv3x3(->16, pad=1)) > relu > gap > dense(->10)"
REPEATED = "let L = 6\ninput(64) > dense(->32) > (res(layernorm > dense(->32) > gelu)) * L > dense(->10)"


def example(name: str) -> str:
    return (ROOT / "examples" / f"{name}.psym").read_text()


def cli(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "paramsym", *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def count_json(program: str) -> dict:
    return cli("count", "--format", "json", program)


def sweep_json(program: str, grid: str, on: str = "params") -> dict:
    return cli("sweep", program, "--grid", grid, "--on", on, "--format", "json")


# ---- the page's Python half under CPython ----
@pytest.fixture(scope="module")
def playground():
    sys.path.insert(0, str(ROOT / "docs" / "playground"))
    try:
        import playground
    finally:
        sys.path.pop(0)
    return playground


def ask(playground, program: str, part: str, options: dict | None = None, **request) -> dict:
    result = json.loads(
        playground.run(json.dumps({"program": program, "parts": [part], part: options or {}, **request}))
    )
    assert result["ok"], result.get("error")
    assert part + "_error" not in result, result.get(part + "_error")
    return result[part]


@pytest.mark.parametrize(
    "name, program, quantity",
    [
        ("seed", SEED, "params"),
        ("seed", SEED, "activations"),
        ("resnet18", example("resnet18"), "params"),
        ("resnet18", example("resnet18"), "macs"),
        ("resnet18", example("resnet18"), "activations"),
        ("resnet18", example("resnet18"), "state"),
        ("llama2_7b", example("llama2_7b"), "macs"),
    ],
)
def test_chart_bars_are_the_cli_layers(playground, name, program, quantity):
    chart = ask(playground, program, "chart", {"of": quantity})
    expected = count_json(program)["layers"]
    assert chart["of"] == quantity and chart["by"] == "layer"
    assert len(chart["bars"]) == len(expected)
    for bar, layer in zip(chart["bars"], expected):
        value = layer[quantity]["value"]
        assert bar["value"] == (None if value is None else str(value)), (bar["label"], quantity)
        assert bar["label"] == layer["path"] and (bar["line"], bar["column"]) == (layer["line"], layer["column"])


def test_chart_offers_the_quantities_that_apply(playground):
    names = lambda program: [q["name"] for q in ask(playground, program, "chart")["quantities"]]  # noqa: E731
    assert names(SEED) == ["params", "macs", "activations"]  # no state, active = params
    assert names(example("resnet18")) == ["params", "state", "macs", "activations"]  # BatchNorm's state
    assert "kv_cache" in names(example("llama2_7b"))
    assert "active" in names(example("mixtral_8x7b"))  # a position goes through 2 of 8 experts


def test_chart_folds_big_networks_by_stage(playground):
    """Beyond 300 layers a bar per top-level stage: the rows of `paramsym count --fold` (its Markdown table)."""
    program = example("resnet152")
    data = count_json(program)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    markdown = subprocess.run(
        [sys.executable, "-m", "paramsym", "count", "--fold", "--format", "markdown", program],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    rows = [
        [c.strip() for c in line.strip("|").split("|")] for line in markdown.splitlines()[2:] if line.startswith("|")
    ]
    rows = [row for row in rows if row[0]]  # not the total row
    for quantity, column in (("params", 3), ("macs", 5)):
        chart = ask(playground, program, "chart", {"of": quantity})
        assert chart["by"] == "stage" and chart["layers"] == len(data["layers"]) > 300
        assert [(b["index"], f"`{b['label']}`", f"{int(b['value']):,}") for b in chart["bars"]] == [
            (row[0], row[1], row[column]) for row in rows
        ]
    # each bar points at its first layer's line
    firsts = {str(layer["index"]): (layer["line"], layer["column"]) for layer in data["layers"]}
    assert all((bar["line"], bar["column"]) == firsts[bar["index"].split("-")[0]] for bar in chart["bars"])
    # asked per layer: every layer; a small network asked per stage: its stages
    assert len(ask(playground, program, "chart", {"by": "layer"})["bars"]) == len(data["layers"])
    assert len(ask(playground, example("resnet18"), "chart", {"by": "stage"})["bars"]) == 10


SWEEPS = [
    (BUDGET, "C", "16:128:16", "params"),
    (BUDGET, "C", "3,5,7,100", "params"),
    (GROUPS, "C", "2:40:2", "params"),  # odd multiples of 2: groups=4 does not divide C
    (GROUPS, "C", "4:64:4", "memory"),
    (GROUPS, "C", "8:64:8", "macs"),
    (example("llama2_7b"), "L", "8:48:8", "params"),
    (example("llama2_7b"), "T", "512:8192:512", "kv_cache_bytes"),
    (example("llama2_7b"), "d", "4000:4100:20", "params"),  # the 32 heads divide d = 4000 only
]


@pytest.mark.parametrize("program, symbol, grid, on", SWEEPS, ids=[f"{s}={g}-{o}" for _, s, g, o in SWEEPS])
def test_sweep_points_are_the_cli_sweep(playground, program, symbol, grid, on):
    shown = ask(playground, program, "sweep", {"symbol": symbol, "grid": grid, "of": on})
    expected = sweep_json(program, f"{symbol}={grid}", on)
    columns = expected["columns"]
    assert [p["x"] for p in shown["points"]] == columns[symbol]
    valid = columns.get("valid", [True] * expected["points"])
    assert [p["valid"] for p in shown["points"]] == valid
    assert [p["value"] for p in shown["points"] if p["valid"]] == [str(v) for v, ok in zip(columns[on], valid) if ok]
    assert shown["of"] == on and shown["symbol"] == symbol


def test_sweep_defaults_limits_and_messages(playground):
    shown = ask(playground, "let C = 64\n" + BUDGET, "sweep")
    assert shown["symbol"] == "C" and shown["grid"] == shown["default"] == "8:128:8" and len(shown["points"]) == 16
    shown = ask(playground, BUDGET, "sweep", {"symbol": "C"}, values={"C": "32"})
    assert shown["default"] == "4:64:4"
    assert ask(playground, SEED, "sweep")["symbols"] == []
    # a budget on the same quantity is drawn; on another quantity it is not
    solve = {"symbol": "C", "budget": "500k", "on": "params"}
    assert ask(playground, BUDGET, "sweep", {"symbol": "C"}, solve=solve)["budget"]["value"] == "500000"
    assert "budget" not in ask(playground, BUDGET, "sweep", {"symbol": "C", "of": "total"}, solve=solve)
    # a quantity that does not depend on the symbol: paramsym solve's own words
    result = json.loads(
        playground.run(
            json.dumps({"program": example("llama2_7b"), "parts": ["sweep"], "sweep": {"symbol": "h", "of": "params"}})
        )
    )
    assert result["sweep_error"]["message"] == "params does not depend on h: it is 6738415616 whatever h is"
    for grid, message in [
        ("1:100000", "has 100,000 points; the chart draws at most 400"),
        ("16..128", "give whole numbers (3,5,7) or a range (16:256:16)"),
        ("64:16:16", "1 <= start <= stop and step >= 1"),
        ("0,4", "positive whole numbers"),
    ]:
        result = json.loads(
            playground.run(json.dumps({"program": BUDGET, "parts": ["sweep"], "sweep": {"symbol": "C", "grid": grid}}))
        )
        assert result["ok"] and message in result["sweep_error"]["message"], (grid, result.get("sweep_error"))


def _walk(node: dict):
    yield node
    for child in node.get("children", []) + node.get("branches", []):
        yield from _walk(child)


def test_diagram_structure(playground):
    nodes = list(_walk(ask(playground, RESIDUAL, "diagram")["tree"]))
    assert [n["kind"] for n in nodes if n["type"] == "merge"] == ["res"]
    assert [n["name"] for n in nodes if n["type"] == "layer"] == ["conv3x3", "relu", "conv3x3", "relu", "gap", "dense"]
    # a symbolic repeat: one frame, counted L times, its layers once
    nodes = list(_walk(ask(playground, REPEATED, "diagram")["tree"]))
    repeats = [n for n in nodes if n["type"] == "repeat"]
    assert [(r["count"], r["count_value"]) for r in repeats] == [("L", "6")]
    assert sum(n["type"] == "layer" and n["name"] == "gelu" for n in nodes) == 1
    # copies of a block (a numeric repeat, unrolled): one box, x2, with the parameters of both
    resnet = count_json(example("resnet18"))
    nodes = list(_walk(ask(playground, example("resnet18"), "diagram")["tree"]))
    blocks = {n["label"]: n for n in nodes if n["type"] == "block"}
    assert blocks["basic(64) \u00d72"]["times"] == 2
    two = [layer["params"]["value"] for layer in resnet["layers"] if layer["path"].startswith("basic(64)[")]
    assert blocks["basic(64) \u00d72"]["params"]["value"] == str(sum(two))
    assert blocks["basic(64) \u00d72"]["each"]["value"] == str(sum(two) // 2)
    # branches: inception's concat of four
    merges = [n for n in _walk(ask(playground, example("googlenet"), "diagram")["tree"]) if n["type"] == "merge"]
    assert {len(m["branches"]) for m in merges if m["kind"] == "concat"} == {4}


# ---- in the browser ----
@pytest.fixture(scope="module")
def page(browser):
    """The playground with a spy on what the page asks the worker for (the parts of each request)."""
    page = browser.page()
    page.add_init_script(
        "window.__parts = []; const post = Worker.prototype.postMessage;"
        "Worker.prototype.postMessage = function (m) { if (m && m.request) window.__parts.push(m.request.parts);"
        " return post.apply(this, arguments); };"
    )
    open_playground(page, browser.base)
    return page


def type_program(page, text: str) -> None:
    """Type the program and wait until the page shows its result: the address holds a program only once its
    result is drawn (the run after the select-all-and-delete may otherwise end the helper's wait first)."""
    _type_program(page, text)
    page.wait_for_function(
        "t => new URLSearchParams(location.hash.slice(1)).get('program') === t && !window.playgroundPending()",
        arg=text,
        timeout=30_000,
    )


def show_tab(page, tab: str) -> None:
    before = runs(page)
    page.click(f".ps-tabs button[data-tab={tab}]")
    wait_for_run(page, before)


def changed(page, action) -> None:
    before = runs(page)
    action()
    wait_for_run(page, before)


def cursor_line(page) -> int:
    return page.evaluate(
        "() => { const t = document.getElementById('ps-program'); "
        "return t.value.slice(0, t.selectionStart).split('\\n').length; }"
    )


def bars(page) -> list[dict]:
    return page.eval_on_selector_all(".ps-chart .ps-bar", "bs => bs.map(b => ({...b.dataset}))")


def test_parts_asked_only_while_their_tab_shows(page):
    show_tab(page, "table")
    type_program(page, SEED)
    last = page.evaluate("window.__parts[window.__parts.length - 1]")
    assert not {"chart", "sweep", "diagram"} & set(last)
    for tab in ("chart", "sweep", "diagram"):
        show_tab(page, tab)
        last = page.evaluate("window.__parts[window.__parts.length - 1]")
        assert tab in last and not {"chart", "sweep", "diagram"} - {tab} & set(last)
    show_tab(page, "table")


def test_chart_tab(page):
    program = example("resnet18")
    expected = count_json(program)["layers"]
    type_program(page, program)
    show_tab(page, "chart")
    shown = bars(page)
    assert len(shown) == len(expected) == 60
    assert [b["value"] for b in shown] == [str(layer["params"]["value"]) for layer in expected]
    assert page.get_attribute(".ps-chart", "data-of") == "params"
    # MACs
    changed(page, lambda: page.select_option(".ps-chart-of", "macs"))
    assert [b["value"] for b in bars(page)] == [str(layer["macs"]["value"]) for layer in expected]
    assert "chart.of=macs" in page.url
    # hover: the name and the exact number with its unit
    page.hover(".ps-chart .ps-bar >> nth=0")
    readout = page.inner_text(".ps-chart-readout")
    assert readout.startswith("stem(64).conv7x7: 118,013,952 (118 M) MACs")
    # the log scale: values span decades; a small bar gets longer, the largest keeps its length
    widths = "() => [...document.querySelectorAll('.ps-chart .ps-bar-fill')].map(r => r.getBBox().width)"
    linear = page.evaluate(widths)
    assert page.is_enabled(".ps-chart-log")
    changed(page, lambda: page.check(".ps-chart-log"))
    assert page.get_attribute(".ps-chart", "data-scale") == "log"
    logged = page.evaluate(widths)
    small = linear.index(min(w for w in linear if w > 0))
    assert logged[small] > 4 * linear[small] and logged.index(max(logged)) == linear.index(max(linear))
    assert "chart.scale=log" in page.url
    changed(page, lambda: page.uncheck(".ps-chart-log"))
    assert page.get_attribute(".ps-chart", "data-scale") == "linear"
    # click a bar: the editor's cursor on the layer's line
    for i in (0, 21, 58):
        page.click(f".ps-chart .ps-bar >> nth={i}")
        assert cursor_line(page) == expected[i]["line"]
    # per stage
    changed(page, lambda: page.select_option(".ps-chart-by", "stage"))
    assert len(bars(page)) == 10 and page.get_attribute(".ps-chart", "data-by") == "stage"
    changed(page, lambda: page.select_option(".ps-chart-by", "auto"))
    changed(page, lambda: page.select_option(".ps-chart-of", "params"))


def test_chart_without_numbers_says_so(page):
    type_program(page, "conv2d(C->D, k=3) > relu")
    show_tab(page, "chart")
    assert [b["value"] for b in bars(page)] == ["", "0"]  # 9*C*D: no number; relu: 0
    assert page.text_content(".ps-chart .ps-bar-value >> nth=0") == "?"
    assert "give the input shape or the symbols' values" in page.inner_text(".ps-chart-readout")


def test_sweep_tab(page):
    type_program(page, BUDGET)
    show_tab(page, "sweep")
    assert page.input_value(".ps-sweep-symbol") == "C"
    changed(page, lambda: page.fill(".ps-sweep-grid", "16:128:16"))
    expected = sweep_json(BUDGET, "C=16:128:16")["columns"]
    points = page.eval_on_selector_all(
        ".ps-sweep .ps-point", "ps => ps.map(p => [Number(p.dataset.x), p.dataset.value])"
    )
    assert points == [[c, str(v)] for c, v in zip(expected["C"], expected["params"])]
    assert "sweep.grid=16%3A128%3A16" in page.url
    # another quantity
    changed(page, lambda: page.select_option(".ps-sweep-of", "macs"))
    assert "needs the input shape" in page.inner_text(".ps-sweep-readout")
    changed(page, lambda: page.select_option(".ps-sweep-of", "params"))
    # a budget in the solve box: a line at it
    changed(page, lambda: page.select_option("#ps-solve-symbol", "C"))
    changed(page, lambda: page.fill("#ps-solve-budget", "500000"))
    assert page.get_attribute(".ps-sweep .ps-budget", "data-value") == "500000"
    changed(page, lambda: page.fill("#ps-solve-budget", ""))
    assert page.locator(".ps-sweep .ps-budget").count() == 0
    # hover a point
    page.hover(".ps-sweep .ps-point >> nth=3")
    assert page.inner_text(".ps-sweep-readout") == f"C = 64: params {expected['params'][3]:,}"
    # too many points: one clear message, nothing drawn
    changed(page, lambda: page.fill(".ps-sweep-grid", "1:1000000"))
    assert "has 1,000,000 points; the chart draws at most 400" in page.inner_text(".ps-sweep-readout")
    assert page.locator(".ps-sweep").count() == 0
    changed(page, lambda: page.fill(".ps-sweep-grid", ""))
    assert page.get_attribute(".ps-sweep-grid", "placeholder") == "8:128:8"
    assert page.locator(".ps-sweep .ps-point").count() == 16


def test_sweep_tab_gaps_at_invalid_points(page):
    type_program(page, GROUPS)
    show_tab(page, "sweep")
    changed(page, lambda: page.fill(".ps-sweep-grid", "2:40:2"))
    valid = page.eval_on_selector_all(".ps-sweep .ps-point", "ps => ps.map(p => p.dataset.valid === 'true')")
    assert valid == sweep_json(GROUPS, "C=2:40:2")["columns"]["valid"]
    assert "10 give no valid network" in page.inner_text(".ps-sweep-readout")
    changed(page, lambda: page.fill(".ps-sweep-grid", ""))


def test_diagram_tab(page):
    type_program(page, RESIDUAL)
    show_tab(page, "diagram")
    assert page.locator(".ps-diagram .ps-dg-res").count() >= 1
    assert page.get_attribute(".ps-diagram [data-kind=res]", "data-kind") == "res"
    labels = page.eval_on_selector_all(".ps-diagram .ps-dg-layer", "bs => bs.map(b => b.dataset.label)")
    assert labels == ["conv3x3", "relu", "conv3x3", "relu", "gap", "dense"]
    # click a box: its line
    type_program(page, "input(32x32x3)\n  > conv3x3(->8, pad=1)\n  > res(conv3x3(->8, pad=1) > relu)\n  > gap")
    page.click(".ps-diagram .ps-dg-layer >> nth=1")
    assert cursor_line(page) == 3
    # a symbolic repeat: one frame, xL once
    type_program(page, REPEATED)
    svg_text = page.inner_text(".ps-diagram-wrap")
    assert svg_text.count("\u00d7L") == 1 and page.locator(".ps-diagram .ps-dg-repeat").count() == 1
    assert page.locator(".ps-diagram .ps-dg-layer[data-label=gelu]").count() == 1


@pytest.mark.parametrize("name, folded", [("resnet50", False), ("llama2_7b", False), ("resnet152", True)])
def test_diagram_of_big_networks(page, name, folded):
    show_tab(page, "diagram")
    started = time.perf_counter()
    type_program(page, example(name))
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"{name}: {elapsed:.1f} s"
    assert page.get_attribute(".ps-diagram", "data-folded") == str(folded).lower()
    # it fits: the page does not scroll sideways; the picture scrolls inside its box
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    box = page.locator(".ps-diagram-wrap").bounding_box()
    assert box["height"] <= 700 and box["width"] <= 1440
    if name == "resnet50":  # copies of a block: one box each, x n
        labels = page.eval_on_selector_all(".ps-diagram .ps-dg-block", "bs => bs.map(b => b.dataset.label)")
        copies = [label for label in labels if "\u00d7" in label]
        assert copies == [
            f"bottleneck_id({w}, {4 * w}, 1) \u00d7{n}" for w, n in ((64, 2), (128, 3), (256, 5), (512, 2))
        ]
        assert page.locator(".ps-diagram .ps-dg-res").count() == 8 + 4  # 8 arcs of identity, 4 shortcuts
    if name == "llama2_7b":
        assert page.inner_text(".ps-diagram-wrap").count("\u00d7L") == 1


@pytest.mark.parametrize("width", [390, 1024, 1920])
def test_pictures_fit_the_screen(browser, width):
    """Each picture scrolls inside its own box: the page is no wider with it than with the Layers tab."""
    page = browser.page(width, 900)
    open_playground(page, browser.base)
    type_program(page, example("resnet18"))
    page_width = "document.documentElement.scrollWidth"
    baseline = page.evaluate(page_width)  # the Layers tab (the page's own width on a phone is not this file's)
    for tab in ("chart", "sweep", "diagram"):
        show_tab(page, tab)
        if tab == "sweep":
            type_program(page, "let C = 64\n" + BUDGET)
        assert page.evaluate(page_width) <= max(baseline, width), (tab, width)
        page.evaluate("window.scrollTo(0, window.scrollY)")  # typing may have scrolled the page sideways
        box = page.locator(f"#ps-tab-{tab} .ps-picture").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (tab, width, box)
        svg = page.locator(f"#ps-tab-{tab} .ps-picture svg").bounding_box()
        assert svg["height"] > 100
        page.locator(f"#ps-tab-{tab}").screenshot(path=f"/tmp/pg-charts-{tab}-{width}.png")
    page.context.close()
