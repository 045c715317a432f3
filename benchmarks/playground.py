"""The playground page in headless Chromium (make bench-playground): the time to the first result on a cold
load (a new browser with an empty profile each time: nothing cached, the WebAssembly compiled anew), and
the time of each edit after that on the zoo's ResNet-50, from the keystroke to the page showing the new
numbers. Also takes the screenshots in docs/images/ with --screenshots.

usage: python benchmarks/playground.py [--cold N] [--edits N] [--screenshots]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.playground_browser import Browser, build_site, chromium_missing, open_playground, runs, serve, wait_for_run  # noqa: E402

RESNET50 = (ROOT / "examples" / "resnet50.psym").read_text()


def cold(playwright, base: str) -> dict:
    browser = Browser(playwright, base)
    try:
        page = browser.page()
        started = time.perf_counter()
        open_playground(page, base)
        wall = time.perf_counter() - started
        timings = page.evaluate("window.playgroundTimings")
        assert browser.external == [], browser.external
        return {
            "wall": wall,
            **{k: timings[k] / 1000 for k in ("pyodideLoaded", "unpacked", "imported", "firstResult")},
        }
    finally:
        browser.close()


def edits(playwright, base: str, count: int, tab: str) -> dict:
    browser = Browser(playwright, base)
    try:
        page = browser.page()
        open_playground(page, base)
        before = runs(page)
        page.select_option("#ps-examples", "zoo:resnet50")
        wait_for_run(page, before)
        if tab != "table":
            before = runs(page)
            page.click(f".ps-tabs button[data-tab={tab}]")
            wait_for_run(page, before)
        assert page.inner_text("#ps-totals [data-q=params]") == "25,557,032"
        # edit the classifier's width: delete its last digit and type it again, one keystroke at a time
        at = page.input_value("#ps-program").index("dense(->1000") + len("dense(->1000")
        page.click("#ps-program")
        page.evaluate(f"() => document.getElementById('ps-program').setSelectionRange({at}, {at})")
        page.evaluate("() => { window.playgroundTimings.edits = []; }")
        for i in range(count):
            before = runs(page)
            page.keyboard.press("Backspace" if i % 2 == 0 else "0")
            wait_for_run(page, before)
        shown = page.evaluate("window.playgroundTimings.edits")
        assert len(shown) == count and page.inner_text("#ps-totals [data-q=params]") in ("25,557,032", "4,028,132")
        total = [e["ms"] for e in shown]
        python = [e["python"] for e in shown]
        parts = {k: statistics.median(e[k] for e in shown) for k in ("waited", "call", "render")}
        return {
            "median": statistics.median(total),
            "max": max(total),
            "python_median": statistics.median(python),
            **parts,
        }
    finally:
        browser.close()


def screenshots(playwright, base: str) -> None:
    folder = ROOT / "docs" / "images"
    folder.mkdir(exist_ok=True)
    browser = Browser(playwright, base)
    try:
        page = browser.page(1440, 1000)
        program = (
            "let C = 64\ninput(224x224x3)\n"
            "  > conv7x7(->C, stride=2, pad=3) > bn > relu > maxpool3x3(stride=2, pad=1)\n"
            "  > res(conv3x3(->C, pad=1) > bn > relu > conv3x3(->C, pad=1) > bn) > relu\n"
            "  > res(conv3x3(->2C, stride=2, pad=1) > bn > relu > conv3x3(->2C, pad=1) > bn\n"
            "        | conv1x1(->2C, stride=2) > bn) > relu\n  > gap > dense(->1000, bias)"
        )
        from urllib.parse import quote, urlencode

        fragment = "#" + urlencode({"program": program, "for": "C", "budget": "5M"}, quote_via=quote)
        open_playground(page, base, fragment)
        page.wait_for_timeout(300)
        page.screenshot(path=str(folder / "playground.png"), clip={"x": 0, "y": 0, "width": 1440, "height": 1000})
        fragment = "#" + urlencode(
            {"program": "input(32x32x3) > conv3x3(->16, pad=1) > bn > rleu > gap > dense(->10)"}, quote_via=quote
        )
        page.goto("about:blank")
        open_playground(page, base, fragment)
        page.wait_for_timeout(300)
        page.screenshot(path=str(folder / "playground-error.png"), clip={"x": 0, "y": 0, "width": 1440, "height": 560})
        print(f"screenshots in {folder}")
    finally:
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", type=int, default=3, help="cold loads to time")
    parser.add_argument("--edits", type=int, default=20, help="edits of ResNet-50 to time")
    parser.add_argument("--screenshots", action="store_true", help="also write docs/images/playground*.png")
    args = parser.parse_args()
    missing = chromium_missing()
    if missing:
        sys.exit(missing)
    from playwright.sync_api import sync_playwright

    build_site()
    with serve() as base, sync_playwright() as playwright:
        loads = [cold(playwright, base) for _ in range(args.cold)]
        for name in ("pyodideLoaded", "unpacked", "imported", "firstResult", "wall"):
            values = [load[name] for load in loads]
            print(
                f"cold load, {name:<14} median {statistics.median(values):5.2f} s  (runs: "
                + ", ".join(f"{v:.2f}" for v in values)
                + ")"
            )
        for tab in ("table", "explain"):
            result = edits(playwright, base, args.edits, tab)
            print(
                f"ResNet-50 edit ({tab} tab shown): median {result['median']:.0f} ms, max {result['max']:.0f} ms "
                f"(Python alone: median {result['python_median']:.0f} ms; medians of the steps: "
                f"{result['waited']:.0f} ms to start, {result['call']:.0f} ms in the call, "
                f"{result['render']:.0f} ms to draw), {args.edits} edits"
            )
        if args.screenshots:
            screenshots(playwright, base)


if __name__ == "__main__":
    main()
