"""The playground page (docs/playground.md) in headless Chromium: paramsym running in the browser under
Pyodide gives the numbers, the formula, the errors, the solve and the shared links that the page promises,
the same numbers as the command line for every example of docs/language.md, and asks no other host for
anything. The site is built by `make docs` first when it is older than its sources."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers.doc_examples import ROOT, console_examples
from helpers.playground_browser import (
    open_playground,
    runs,
    type_program,
    wait_for_run,
)

SEED = "conv3x3(32->64, bias) > pool > conv5x5(->40)"
BUDGET = "conv3x3(3->C, bias) > conv3x3(->2C, bias) > conv3x3(->4C, bias) > gap > dense(->10, bias)"


def text(page, selector: str) -> str:
    return page.inner_text(selector)


def katex_text(page, selector: str) -> str:
    """What KaTeX drew, as plain text without the spaces and zero-width characters between the boxes."""
    shown = page.inner_text(f"{selector} .katex-html")
    return re.sub(r"[\s\u200b]", "", shown)


def test_seed_example(page, browser):
    assert page.input_value("#ps-program") == SEED
    assert text(page, "#ps-totals [data-q=params]") == "82,496"
    first = page.locator("#ps-table tbody tr").first
    assert first.locator("td").nth(1).inner_text() == "conv3x3"
    assert first.locator("td").nth(3).inner_text() == "18,496"
    assert "18,496" in text(page, "#ps-totals .ps-summary")
    # highlighted by paramsym's own lexer: the layer calls, the numbers, the keyword argument
    assert page.locator("#ps-highlight .tok-call").all_inner_texts() == ["conv3x3", "conv5x5"]
    assert page.locator("#ps-highlight .tok-num").all_inner_texts() == ["32", "64", "40"]
    assert browser.external == []


def test_editor_text_lies_on_its_highlighting(page):
    """The textarea (transparent, where the cursor is) and the highlighted copy under it have the same metrics."""
    metrics = (
        "e => { const s = getComputedStyle(e); return [s.fontFamily, s.fontSize, s.lineHeight, s.paddingTop, "
        "s.paddingLeft, s.borderTopWidth, s.borderLeftWidth, s.letterSpacing, s.whiteSpace, s.tabSize]; }"
    )
    assert page.eval_on_selector("#ps-program", metrics) == page.eval_on_selector("#ps-highlight", metrics)
    area, copy = page.locator("#ps-program").bounding_box(), page.locator("#ps-highlight").bounding_box()
    assert (area["x"], area["y"]) == (copy["x"], copy["y"])


def test_symbolic_formula(page):
    type_program(page, "conv2d(C_in->C_out, k=k, bias)")
    shown = katex_text(page, "#ps-formula")
    left, right = shown.split("=", 1)
    assert left == "Nparams"

    def factors(term: str) -> list[str]:  # KaTeX draws C_in as C then a subscript "in", k^2 as k then 2
        found = re.findall(r"Cin|Cout|k2|k", term)
        assert "".join(found) == term, term
        return sorted(found)

    assert sorted(factors(t) for t in right.split("+")) == sorted([factors("k2CinCout"), factors("Cout")])
    # the same formula in the table, and the text KaTeX was given (paramsym's LaTeX printer)
    assert page.locator("#ps-table tbody tr").first.locator("td").nth(3).inner_text() == "C_in*C_out*k^2 + C_out"
    annotation = page.locator("#ps-formula annotation").text_content()
    assert annotation.replace(" ", "") == r"N_{\mathrm{params}}=C_{in}C_{out}k^{2}+C_{out}"
    # one box per symbol of the program
    assert sorted(page.eval_on_selector_all("#ps-values input", "xs => xs.map(x => x.dataset.name)")) == [
        "C_in",
        "C_out",
        "k",
    ]


def _caret_column(page) -> float:
    """The column under the caret, from where it is drawn and the width of a character of the editor."""
    box = page.locator("#ps-caret").bounding_box()
    editor = page.locator("#ps-highlight").bounding_box()
    width = page.evaluate("""() => { const s = document.createElement('span'); s.textContent = 'x'.repeat(100);
        document.getElementById('ps-highlight').appendChild(s); const w = s.getBoundingClientRect().width / 100;
        s.remove(); return w; }""")
    padding = float(page.eval_on_selector("#ps-highlight", "e => getComputedStyle(e).paddingLeft").rstrip("px"))
    return (box["x"] + box["width"] / 2 - editor["x"] - padding) / width + 0.5


@pytest.mark.parametrize(
    "program, line, column, message",
    [
        ("input(8x8x3) > conv3x3(->8) > rleu", 1, 31, "unknown layer 'rleu'"),
        (
            "input(32x32x3)\n  > conv3x3(->16, pad=1) > bn > relu\n  > conv3x3(->32, strdie=2)",
            3,
            19,
            "unknown keyword 'strdie'",
        ),
    ],
)
def test_error_under_the_column(page, program, line, column, message):
    type_program(page, program)
    assert page.is_visible("#ps-error")
    shown = text(page, "#ps-error")
    assert message in shown and f"--> line {line}, column {column}" in shown
    assert page.get_attribute("#ps-caret", "data-line") == str(line)
    assert page.get_attribute("#ps-caret", "data-column") == str(column)
    assert round(_caret_column(page)) == column
    # the caret's line: it starts under the marked character, within a few pixels of the next line's top
    caret = page.locator("#ps-caret").bounding_box()
    marked = page.locator("#ps-highlight .tok-at-error").bounding_box()
    line_height = float(page.eval_on_selector("#ps-highlight", "e => getComputedStyle(e).lineHeight").rstrip("px"))
    assert marked["y"] + marked["height"] - 1 <= caret["y"] <= marked["y"] + line_height + 6
    assert abs(marked["x"] + marked["width"] / 2 - (caret["x"] + caret["width"] / 2)) < 2
    assert page.locator("#ps-highlight .tok-at-error").inner_text() == program.splitlines()[line - 1][column - 1]


def test_solve_budget(page):
    type_program(page, BUDGET)
    page.select_option("#ps-solve-symbol", "C")
    before = runs(page)
    page.fill("#ps-solve-budget", "500000")
    wait_for_run(page, before)
    assert text(page, "#ps-answer") == "C = 74"
    assert "params at C = 75: 511,810 (over the budget)" in text(page, "#ps-solve-result")


def test_shared_link_restores_the_page(page, browser):
    program = "let C = 16\ninput(32x32x3)\n  > conv3x3(->C, pad=1) > bn > relu\n  > gap > dense(->10, bias)"
    type_program(page, program)
    before = runs(page)
    page.fill("#ps-solve-budget", "")  # the solve box of the test before would solve for C
    wait_for_run(page, before)
    before = runs(page)
    page.fill("#ps-values input[data-name=C]", "48")
    wait_for_run(page, before)
    expected = text(page, "#ps-totals [data-q=params]")
    assert expected == f"{27 * 48 + 2 * 48 + 48 * 10 + 10:,}"
    link = page.url
    assert parse_qs(urlsplit(link).fragment)["program"] == [program]
    other = browser.page()
    open_playground(other, link.split("playground.html")[0], "#" + urlsplit(link).fragment)
    assert other.input_value("#ps-program") == program
    assert other.input_value("#ps-values input[data-name=C]") == "48"
    assert text(other, "#ps-totals [data-q=params]") == expected
    other.context.close()


# ---- the same numbers as the command line for every example of docs/language.md ----
_VALUED = {
    "--format",
    "--convention",
    "--set",
    "--dtype",
    "--for",
    "--budget",
    "--grid",
    "--on",
    "--view",
    "--by",
    "--diff",
    "--symbol",
    "--output",
    "--limit",
    "--to",
}


def _language_examples() -> list[tuple[str, dict, str]]:
    """(program, --set values, convention) of every command in docs/language.md's console examples."""
    found = []
    for command, _ in console_examples((ROOT / "docs" / "language.md").read_text()):
        argv = shlex.split(command)[2:]
        program, values, convention, i = None, {}, "torch", 0
        while i < len(argv):
            if argv[i] in _VALUED:
                if argv[i] == "--set":
                    name, _, value = argv[i + 1].partition("=")
                    values[name] = value
                elif argv[i] == "--convention":
                    convention = argv[i + 1]
                i += 2
            elif argv[i].startswith("--"):
                i += 1
            else:
                program = program if program is not None else argv[i]
                i += 1
        path = ROOT / program
        text = path.read_text() if len(program) < 200 and path.is_file() else program
        if (program, values, convention) not in [(p, v, c) for p, v, c, _ in found]:
            found.append((program, values, convention, text))
    return [(text, values, convention) for _, values, convention, text in found]


LANGUAGE_EXAMPLES = _language_examples()


def _cli(program: str, values: dict, convention: str) -> tuple[dict | None, str]:
    argv = [sys.executable, "-m", "paramsym", "count", "--format", "json", program, "--convention", convention]
    for name, value in values.items():
        argv += ["--set", f"{name}={value}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    return (json.loads(result.stdout) if result.returncode == 0 else None), result.stderr.strip()


def test_language_examples_found():
    assert len(LANGUAGE_EXAMPLES) >= 30


@pytest.mark.parametrize(
    "program, values, convention", LANGUAGE_EXAMPLES, ids=[p.splitlines()[0][:50] for p, _, _ in LANGUAGE_EXAMPLES]
)
def test_same_numbers_as_the_command(page, program, values, convention):
    shown = page.evaluate(
        "r => window.playgroundRun(r)",
        {"program": program, "values": values, "convention": convention, "raw": True, "parts": []},
    )
    expected, error = _cli(program, values, convention)
    if expected is None:
        assert not shown["ok"] and shown["error"]["text"] == error
    else:
        assert shown["ok"], shown.get("error")
        assert shown["data"] == expected
        assert shown["params"] == expected["params"] and len(shown["rows"]) == len(expected["layers"])


# ---- the page's Python half under CPython (runs without a browser too) ----
@pytest.fixture(scope="module")
def playground():
    sys.path.insert(0, str(ROOT / "docs" / "playground"))
    try:
        import playground
    finally:
        sys.path.pop(0)
    return playground


def test_module_counts_and_colours(playground):
    result = json.loads(playground.run(json.dumps({"program": SEED + "  # the seed"})))
    assert result["ok"] and result["params"]["value"] == 82496 and result["rows"][0]["params"] == "18,496"
    classes = {SEED[s:e] if e <= len(SEED) else "#": c for s, e, c in result["tokens"]}
    assert classes["conv3x3"] == "call" and classes["bias"] == "name" and classes["32"] == "num"
    assert classes[">"] == "op" and classes["->"] == "op" and [c for _, _, c in result["tokens"]][-1] == "comment"
    assert result["equation"]["equation"] == r"N_{\mathrm{params}} = 82{,}496"


def test_module_errors_solve_and_values(playground):
    result = json.loads(playground.run(json.dumps({"program": "input(8x8x3) > conv3x3(->8) $ rleu"})))
    assert not result["ok"] and (result["error"]["line"], result["error"]["column"]) == (1, 29)
    assert [c for s, e, c in result["tokens"] if s == 28] == ["error"]
    solved = json.loads(
        playground.run(
            json.dumps({"program": BUDGET, "values": {"C": "9"}, "solve": {"symbol": "C", "budget": "500k"}})
        )
    )
    assert solved["solve"]["value"] == 74  # the unknown's own value box is left out
    valued = json.loads(playground.run(json.dumps({"program": BUDGET, "values": {"C": "74"}})))
    assert valued["params"] == {"expr": "90*C**2 + 74*C + 10", "value": 498326}
    wrong = json.loads(playground.run(json.dumps({"program": BUDGET, "values": {"C": "7.5"}})))
    assert not wrong["ok"] and wrong["error"]["where"] == "values"
