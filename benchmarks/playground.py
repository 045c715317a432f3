"""The playground page in headless Chromium (make bench-playground): the time to the first result on a cold
load (a new browser with an empty profile each time: nothing cached, the WebAssembly compiled anew); then, on
the zoo's ResNet-152 with the LaTeX tab open, what a person typing feels: each keystroke's latency on the
page's thread (from the key event to the next animation frame, and the long tasks of that thread) apart from
the worker's time to a result; the same on a 10,000-layer program; and what restarting a worker costs. Also
takes the screenshots in docs/images/ with --screenshots.

usage: python benchmarks/playground.py [--cold N] [--keys N] [--screenshots]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.playground_browser import Browser, build_site, chromium_missing, open_playground, runs, serve, wait_for_run  # noqa: E402

RESNET152 = (ROOT / "examples" / "resnet152.psym").read_text().rstrip("\n")
TEN_THOUSAND = "input(8) > (dense(->8) > relu) * 5000"
# 100,000 layers: past the time limit the benchmark and the tests set (?limit=3; the page's own is 10 s)
HOSTILE = "input(8) > (dense(->8) > relu) * 50000"

# in the page: each keydown's time (the event's own stamp: a key that waits behind a busy thread counts the wait)
# to the next animation frame, and every long task (over 50 ms) of the page's thread
PROBE = """() => {
  window.keyLatency = []; window.longTasks = [];
  document.addEventListener("keydown", (event) => {
    const stamp = event.timeStamp;
    requestAnimationFrame(() => window.keyLatency.push(performance.now() - stamp));
  }, true);
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.longTasks.push(e.duration); })
    .observe({ type: "longtask" });
}"""


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


def _load(page, program: str, tab: str) -> None:
    """Put a program in the editor (as a paste) with a tab open and wait for its result."""
    before = runs(page)
    page.click(f".ps-tabs button[data-tab={tab}]")
    wait_for_run(page, before)
    before = runs(page)
    page.click("#ps-program")
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(program)
    wait_for_run(page, before, timeout=120_000)


def typing(playwright, base: str, program: str, anchor: str, keys: int, tab: str = "latex", gap: int = 120) -> dict:
    """`keys` keystrokes at `gap` ms (delete the digit after `anchor`, type it again, ...) without waiting for the
    results, then the time to each result when every key waits for its result."""
    browser = Browser(playwright, base)
    try:
        page = browser.page()
        open_playground(page, base)
        page.wait_for_function("window.playgroundSpareReady()", timeout=60_000)
        _load(page, program, tab)
        at = page.input_value("#ps-program").index(anchor) + len(anchor)
        digit = page.input_value("#ps-program")[at - 1]
        page.evaluate(f"() => document.getElementById('ps-program').setSelectionRange({at}, {at})")
        page.evaluate(PROBE)
        page.evaluate("() => { window.playgroundTimings.edits = []; }")
        before = runs(page)
        for i in range(keys):  # a person typing: the next key does not wait for the page
            page.keyboard.press("Backspace" if i % 2 == 0 else digit)
            page.wait_for_timeout(gap)
        wait_for_run(page, before, timeout=120_000)
        page.wait_for_timeout(500)
        latency = page.evaluate("window.keyLatency")
        long_tasks = page.evaluate("window.longTasks")
        typed_runs = len(page.evaluate("window.playgroundTimings.edits"))
        # then one key at a time, each waiting for its result: the worker's time to a result
        page.evaluate("() => { window.playgroundTimings.edits = []; }")
        for i in range(min(keys, 10)):
            before = runs(page)
            page.keyboard.press("Backspace" if i % 2 == 0 else digit)
            wait_for_run(page, before, timeout=120_000)
        edits = page.evaluate("window.playgroundTimings.edits")
        assert browser.external == [], browser.external
        return {
            "keys": len(latency),
            "key_median": statistics.median(latency),
            "key_max": max(latency),
            "long_count": len(long_tasks),
            "long_max": max(long_tasks, default=0),
            "typed_runs": typed_runs,
            "result_median": statistics.median(e["ms"] for e in edits),
            "result_max": max(e["ms"] for e in edits),
            "python_median": statistics.median(e["python"] for e in edits),
            "katex_median": statistics.median(e["katex"] for e in edits),
            "render_median": statistics.median(e["render"] for e in edits),
            "layers": edits[-1]["layers"],
        }
    finally:
        browser.close()


def restarts(playwright, base: str) -> dict:
    """A run past the time limit: how responsive the page stays, when the message comes, and what the restart
    costs (a cold worker when there is no spare yet; the spare's own start-up, in the background)."""
    browser = Browser(playwright, base)
    try:
        page = browser.page()
        open_playground(page, base, "?limit=3")  # below the program's time on any machine
        page.wait_for_function("window.playgroundSpareReady()", timeout=60_000)
        page.evaluate(PROBE)
        before = runs(page)
        started = time.perf_counter()
        page.click("#ps-program")
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(HOSTILE)
        trips = []
        while not page.is_visible("#ps-error[data-where=limit]"):
            t = time.perf_counter()
            page.evaluate("() => 1")
            trips.append(time.perf_counter() - t)
            page.wait_for_timeout(200)
            assert time.perf_counter() - started < 60
        stopped = time.perf_counter() - started
        t = time.perf_counter()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text("dense(3->7, bias)")
        wait_for_run(page, before, timeout=60_000)
        after = time.perf_counter() - t
        assert page.inner_text("#ps-totals [data-q=params]") == "28"
        timings = page.evaluate("window.playgroundTimings")
        return {
            "stopped": stopped,
            "trip_max": max(trips) * 1000,
            "long_max": max(page.evaluate("window.longTasks"), default=0),
            "next": after * 1000,
            "workers": [w["ms"] / 1000 for w in timings["workers"]],
            "spare_ready": timings["restarts"][0]["spareReady"],
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


def _typing_line(name: str, r: dict) -> str:
    return (
        f"{name} ({r['layers']} layers, LaTeX tab): {r['keys']} keys at 120 ms: key to next frame median "
        f"{r['key_median']:.0f} ms, max {r['key_max']:.0f} ms; long tasks {r['long_count']}, longest "
        f"{r['long_max']:.0f} ms; {r['typed_runs']} runs for them. One key at a time, key to result: median "
        f"{r['result_median']:.0f} ms, max {r['result_max']:.0f} ms (medians: Python {r['python_median']:.0f} ms, "
        f"KaTeX in the worker {r['katex_median']:.0f} ms, drawing {r['render_median']:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", type=int, default=3, help="cold loads to time")
    parser.add_argument("--keys", type=int, default=30, help="keystrokes to time on each program")
    parser.add_argument("--screenshots", action="store_true", help="also write docs/images/playground*.png")
    args = parser.parse_args()
    missing = chromium_missing()
    if missing:
        sys.exit(missing)
    from playwright.sync_api import sync_playwright

    build_site()
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    with serve() as base, sync_playwright() as playwright:
        loads = [cold(playwright, base) for _ in range(args.cold)]
        for name in ("pyodideLoaded", "unpacked", "imported", "firstResult", "wall"):
            values = [load[name] for load in loads]
            print(
                f"cold load, {name:<14} median {statistics.median(values):5.2f} s  (runs: "
                + ", ".join(f"{v:.2f}" for v in values)
                + ")"
            )
        # the floor: the same keys on a one-layer program, what the machine's own load costs the page's thread
        print(_typing_line("one layer (the floor)", typing(playwright, base, "dense(3->50)", "dense(3->5", args.keys)))
        print(_typing_line("ResNet-152", typing(playwright, base, RESNET152, "dense(->1000", args.keys)))
        print(_typing_line("10,000 layers", typing(playwright, base, TEN_THOUSAND, "* 5000", args.keys)))
        r = restarts(playwright, base)
        print(
            f"past a 3 s time limit ({HOSTILE}): stopped with the message after {r['stopped']:.1f} s; meanwhile "
            f"the page answered a script within {r['trip_max']:.0f} ms, longest task {r['long_max']:.0f} ms; "
            f"the next edit's result {r['next']:.0f} ms later (spare ready: {r['spare_ready']}); workers ready "
            "after " + ", ".join(f"{w:.2f} s" for w in r["workers"]) + " (the first, the spare, the next spare)"
        )
        print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if args.screenshots:
            screenshots(playwright, base)


if __name__ == "__main__":
    main()
