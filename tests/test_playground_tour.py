"""A tour of the playground at a phone's width (390 px), a laptop's (1024) and a large screen's (1920): each defect
that issue 22 found, and each control it added, once per width, the way a new user meets them, with a screenshot
of each step. The other test_playground_*.py files test each part in depth; this one checks that they all work
together at every width, and never scroll the page sideways.

Screenshots go to a temporary folder, or to PARAMSYM_SCREENSHOTS (`make screenshots` sets it to docs/images).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from helpers.doc_examples import ROOT
from helpers.playground_browser import SITE, open_playground, runs, type_program, wait_for_run

WIDTHS = [390, 1024, 1920]
HEIGHT = {390: 844, 1024: 768, 1920: 1080}
LLAMA = (ROOT / "examples" / "llama2_7b.psym").read_text()
HOSTILE = "dense(3->(A+B+C+D+E+F)^24)"


def cli_json(*argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "paramsym", *argv], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("PARAMSYM_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def link(**fields) -> str:
    return "#" + urlencode(fields, quote_via=quote)


def fits_sideways(page) -> None:
    """The page never scrolls sideways: wide content scrolls inside its own box."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls {overflow} px sideways"


def inside(page, selector: str) -> None:
    """The element's box lies within the window's width (its content may scroll inside it)."""
    box = page.locator(selector).first.bounding_box()
    width = page.evaluate("window.innerWidth")
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (selector, box, width)


def settle(page, action) -> None:
    before = runs(page)
    action()
    wait_for_run(page, before)


def show_tab(page, name: str) -> None:
    settle(page, lambda: page.click(f".ps-tabs button[data-tab={name}]"))
    assert page.get_attribute(f"#ps-tab-button-{name}", "aria-selected") == "true"
    assert page.is_visible(f"#ps-tab-{name}")


@pytest.mark.parametrize("width", WIDTHS)
def test_tour(browser, shots, width):
    height = HEIGHT[width]
    page = browser.page(width, height)

    # 1. typing while Python loads is shown, kept and counted
    held = []
    page.route("**/python.zip*", lambda route: held.append(route))
    page.goto(browser.base + "playground.html")
    page.wait_for_function("document.querySelector('#ps-examples option[value^=short]')")
    page.click("#ps-program")
    page.keyboard.press("Control+A")
    page.keyboard.type("conv3x3(3->8, bias) > relu")
    assert page.eval_on_selector("#ps-program", "e => getComputedStyle(e).color") != "rgba(0, 0, 0, 0)"
    page.screenshot(path=str(shots / f"playground-{width}-loading.png"))
    for _ in range(300):  # the worker asks for python.zip once Pyodide has started
        if held:
            break
        page.wait_for_timeout(100)
    assert held and page.evaluate("window.playgroundTimings.firstResult") is None  # typed while it loads
    for route in held:
        route.continue_()
    page.unroute("**/python.zip*")
    page.wait_for_function("window.playgroundTimings && window.playgroundTimings.firstResult", timeout=60_000)
    page.wait_for_function("!window.playgroundPending()")
    assert page.inner_text("#ps-totals [data-q=params]") == "224"
    fits_sideways(page)

    # 3 and 4: a language model: the folded table with its x32 row, the KV-cache column and the total row; the
    # memory panel in bf16 on an H100, a budget with a unit, "use this value"
    page.goto("about:blank")
    open_playground(page, browser.base, link(program=LLAMA, **{"cost.dtype": "bf16", "cost.device": "h100"}))
    page.wait_for_function("!window.playgroundPending()")
    expected = cli_json("count", "--format", "json", "--dtype", "bf16", LLAMA)
    assert page.inner_text("#ps-totals [data-q=params]") == f"{expected['params']['value']:,}"
    assert "×32" in page.inner_text("#ps-table tbody")
    head = page.inner_text("#ps-table thead")
    assert "KV cache" in head
    total_row = page.inner_text("#ps-table tfoot")
    assert f"{expected['params']['value']:,}" in total_row
    verdict = page.inner_text(".ps-cost-verdict")
    assert verdict.startswith("fits on 1× h100"), verdict
    assert page.locator(".ps-cost-bar .ps-cost-seg").count() >= 2
    for selector in ("#ps-totals", "#ps-formula", ".ps-table-wrap", "[data-panel=cost]", "[data-panel=export]"):
        inside(page, selector)
    fits_sideways(page)
    page.screenshot(path=str(shots / f"playground-{width}.png"))
    page.locator("[data-panel=cost]").screenshot(path=str(shots / f"playground-{width}-memory.png"))
    # a click on a table row puts the cursor on its source line
    row = page.locator("#ps-table tbody tr.ps-row").nth(2)
    row.click()
    line = page.evaluate(
        "() => { const e = document.getElementById('ps-program');"
        " return e.value.slice(0, e.selectionStart).split('\\n').length; }"
    )
    assert line == int(row.get_attribute("data-line")) > 1
    # solve the number of layers L within 7B parameters, and use it
    page.select_option("#ps-solve-symbol", "L")
    settle(page, lambda: page.fill("#ps-solve-budget", "7B"))
    solved = cli_json("solve", LLAMA, "--for", "L", "--budget", "7B", "--dtype", "bf16", "--format", "json")
    assert page.inner_text("#ps-answer").startswith(f"L = {solved['value']}")
    settle(page, lambda: page.click("#ps-use-value"))
    assert page.input_value("#ps-values input[data-name=L]") == str(solved["value"])
    fits_sideways(page)

    # the pictures: a bar per layer, the blocks, one symbol swept; the export bar
    for tab in ("chart", "diagram", "sweep"):
        show_tab(page, tab)
        page.wait_for_function("!window.playgroundPending()")
        assert page.locator(f"#ps-tab-{tab} svg").count() >= 1
        inside(page, f"#ps-tab-{tab}")
        fits_sideways(page)
        page.locator(f"#ps-tab-{tab}").screenshot(path=str(shots / f"playground-{width}-{tab}.png"))
    page.select_option(".ps-export-format", "torch")
    with page.expect_download() as download:
        page.click(".ps-export-download")
    assert download.value.suggested_filename.endswith(".py")

    # 2. a program whose formulas grow past what can be counted: the page stays responsive, a clear message
    show_tab(page, "latex")
    type_program(page, HOSTILE, timeout=60_000)
    message = page.inner_text("#ps-error")
    assert message, "no message for the hostile program"
    started = page.evaluate("performance.now()")
    assert page.evaluate("performance.now()") - started < 1000
    inside(page, "#ps-error")
    fits_sideways(page)
    # 6. after an error, the results below are marked stale; picking an example is undoable
    assert page.is_visible("#ps-stale")
    page.screenshot(path=str(shots / f"playground-{width}-error.png"))
    settle(page, lambda: page.select_option("#ps-examples", "zoo:resnet18"))
    page.click("#ps-program")
    page.keyboard.press("Control+Z")
    page.wait_for_function(f"document.getElementById('ps-program').value === {json.dumps(HOSTILE)}")
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_site_at_each_width(browser, shots, width):
    """5, 7 and 8: the landing page's install steps, a doc page's column and its playground links, dark mode, and
    the playground opened from disk."""
    page = browser.page(width, HEIGHT[width])
    page.goto(browser.base + "index.html")
    assert "pip install" in page.inner_text("article")
    fits_sideways(page)
    page.screenshot(path=str(shots / f"site-{width}.png"))
    page.goto(browser.base + "cli.html")
    assert page.locator("a[href*='playground.html#program=']").count() >= 5
    fits_sideways(page)
    column = page.locator(".md-content").bounding_box()["width"]
    if width == 1920:
        assert column > 1000, column
    page.emulate_media(color_scheme="dark")
    page.goto(browser.base + "playground.html")
    page.wait_for_function("window.playgroundTimings && window.playgroundTimings.firstResult", timeout=60_000)
    assert page.get_attribute("body", "data-md-color-scheme") == "slate"
    background = page.eval_on_selector(".ps-editor", "e => getComputedStyle(e).backgroundColor")
    assert sum(int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]) < 200, background
    page.screenshot(path=str(shots / f"playground-{width}-dark.png"))
    page.context.close()
    # opened from disk (no server): a message with the command that serves the site
    disk = browser.browser.new_context(viewport={"width": width, "height": HEIGHT[width]})
    page = disk.new_page()
    page.goto((SITE / "playground.html").as_uri())
    assert "needs a web server" in page.locator("#ps-status").inner_text()
    inside(page, "#ps-status")
    fits_sideways(page)
    page.screenshot(path=str(shots / f"playground-{width}-file.png"))
    disk.close()
