"""The playground's export bar (docs/playground/panels/exports.js, PARTS["export"] in playground.py): what it copies
and downloads is, byte for byte, what the command line prints for the page's program, values and convention; a
program that cannot be exported shows the command's message instead; the PyTorch source runs under the real
PyTorch and builds a model of the size the page shows."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

from helpers.doc_examples import ROOT
from helpers.playground_browser import open_playground, runs, type_program, wait_for_run

SEED = "conv3x3(32->64, bias) > pool > conv5x5(->40)"
SYMBOLIC = "conv2d(C_in->C_out, k=k, bias)"


def _example(name: str) -> str:
    """A zoo program as the page's Example menu loads it (without the file's last newlines)."""
    return (ROOT / "examples" / f"{name}.psym").read_text().rstrip("\n")


# (id, program, --set values, convention)
CASES = [
    ("seed", SEED, {}, "torch"),
    ("symbolic-set", SYMBOLIC, {"C_in": "3", "C_out": "2C_in", "k": "5"}, "torch"),
    ("symbolic-free", SYMBOLIC, {}, "torch"),  # export needs numbers: the CLI's error
    ("resnet18", _example("resnet18"), {}, "torch"),
    ("keras-vgg16", _example("keras_vgg16"), {}, "keras"),
    ("cifar-keras-set", _example("cifar_cnn_symbolic"), {"C": "24"}, "keras"),
]
# the page's format -> the command's arguments (latex and export take no --convention)
FORMATS = {
    "json": ["count", "--format", "json"],
    "csv": ["count", "--format", "csv"],
    "markdown": ["count", "--format", "markdown"],
    "latex": ["latex", "--group-digits"],
    "latex-document": ["latex", "--group-digits", "--standalone"],
    "torch": ["export", "--to", "torch"],
    "keras": ["export", "--to", "keras"],
}


@functools.cache
def cli(fmt: str, program: str, values: tuple, convention: str, run_options: tuple = ()) -> tuple[int, bytes, str]:
    """`python -m paramsym ...` with the program on standard input: (exit code, stdout's bytes, stderr);
    `run_options` (--dtype, --train, ...) where the command takes them (count, latex)."""
    argv = [sys.executable, "-m", "paramsym", *FORMATS[fmt], "-"]
    if FORMATS[fmt][0] == "count":
        argv += ["--convention", convention]
    if FORMATS[fmt][0] != "export":
        argv += list(run_options)
    for name, value in values:
        argv += ["--set", f"{name}={value}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(argv, input=program.encode(), capture_output=True, env=env, timeout=300)
    return done.returncode, done.stdout, done.stderr.decode().strip()


def cli_case(fmt: str, case: tuple) -> tuple[int, bytes, str]:
    _, program, values, convention = case
    return cli(fmt, program, tuple(values.items()), convention)


# ---- the Python half under CPython: the PARTS function against the command's stdout ----
@pytest.fixture(scope="module")
def playground():
    sys.path.insert(0, str(ROOT / "docs" / "playground"))
    try:
        import playground
    finally:
        sys.path.pop(0)
    return playground


def test_formats_are_the_commands(playground):
    assert set(playground.EXPORTS) == set(FORMATS)
    for fmt, (command, _) in playground.EXPORTS.items():
        assert command.split() == FORMATS[fmt]


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_module_export_is_the_command_output(playground, case, fmt):
    _, program, values, convention = case
    request = {"program": program, "values": values, "convention": convention, "parts": ["export"]}
    result = json.loads(playground.run(json.dumps({**request, "export": {"format": fmt}})))
    assert result["ok"], result.get("error")
    code, stdout, stderr = cli_case(fmt, case)
    if code == 0:
        assert result["export"]["text"].encode() == stdout
        assert result["export"]["command"] == "paramsym " + " ".join(FORMATS[fmt])
    else:
        assert result["export"] is None
        assert code == 2 and result["export_error"]["text"] == stderr


@pytest.mark.parametrize(
    "case, fmt, message",
    [
        (CASES[2], "torch", "export needs numbers: give C_in a value"),
        (CASES[0], "keras", "Keras needs the input shape"),
    ],
    ids=["free-symbol", "keras-no-input"],
)
def test_module_export_errors(playground, case, fmt, message):
    _, program, values, convention = case
    result = json.loads(
        playground.run(
            json.dumps(
                {
                    "program": program,
                    "values": values,
                    "convention": convention,
                    "parts": ["export"],
                    "export": {"format": fmt},
                }
            )
        )
    )
    assert message in result["export_error"]["text"]
    assert result["export_error"]["text"] == cli_case(fmt, case)[2]


def test_module_export_only_when_asked(playground):
    """An edit's request leaves the export out (the bar asks when clicked); a format that is not one is refused."""
    plain = json.loads(playground.run(json.dumps({"program": SEED, "parts": ["equation"]})))
    assert "export" not in plain and "export_error" not in plain
    wrong = json.loads(playground.run(json.dumps({"program": SEED, "parts": ["export"], "export": {"format": "exe"}})))
    assert wrong["export"] is None and "no export format 'exe'" in wrong["export_error"]["text"]


# the cost panel's settings (request["cost"], panels/cost.js) -> the command's run options
COSTS = [
    (
        "train-bf16",
        {"mode": "train", "dtype": "bf16", "batch": "8", "optimizer": "adamw"},
        ["--train", "--dtype", "bf16", "--batch", "8"],
    ),
    (
        "serve-int8-kv",
        {"mode": "serve", "weights": "int8", "kv": "fp16", "batch": "4"},
        ["--weights", "int8", "--kv", "fp16", "--batch", "4"],
    ),
    ("wrong-format", {"mode": "serve", "dtype": "fp7"}, ["--dtype", "fp7"]),
]


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown", "latex", "torch"])
@pytest.mark.parametrize("cost, settings, flags", COSTS, ids=[c[0] for c in COSTS])
def test_module_export_with_the_cost_settings(playground, cost, settings, flags, fmt):
    """count and latex with the memory setup of the cost panel are the command with its run options; export
    takes none; a wrong setting gives the command's message, not a file counted without it."""
    program = _example("gpt2")
    request = {"program": program, "parts": ["export"], "export": {"format": fmt}, "cost": settings}
    result = json.loads(playground.run(json.dumps(request)))
    code, stdout, stderr = cli(fmt, program, (), "torch", tuple(flags))
    if code == 0:
        assert result["export"]["text"].encode() == stdout
        shown = result["export"]["command"]
        assert shown.startswith("paramsym " + " ".join(FORMATS[fmt]))
        assert all(flag in shown for flag in flags) == (fmt != "torch")
    else:
        assert cost == "wrong-format" and fmt != "torch"
        assert result["export"] is None and result["export_error"]["text"] == stderr


def test_module_program_error_is_the_commands(playground):
    program = "input(8x8x3) > conv3x3(->8) > rleu"
    result = json.loads(
        playground.run(json.dumps({"program": program, "parts": ["export"], "export": {"format": "torch"}}))
    )
    assert not result["ok"] and result["error"]["text"] == cli("torch", program, (), "torch")[2]


# ---- in the browser: click, read the download and the clipboard ----
@pytest.fixture(scope="module")
def xpage(browser):
    """The playground with the clipboard allowed, recording every request the page posts to its worker."""
    page = browser.page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=browser.base.rstrip("/"))
    page.add_init_script(
        """(() => { window.posted = []; const post = Worker.prototype.postMessage;
        Worker.prototype.postMessage = function (message) { if (message && message.request)
        window.posted.push(message.request.parts || []); return post.apply(this, arguments); }; })()"""
    )
    open_playground(page, browser.base)
    yield page
    page.context.close()


def settled(page, program: str, values: dict | None = None) -> None:
    """Wait until the page has drawn the result of `program` (and the values): the address is written after
    the result is drawn (a run's counter alone can go up for an earlier keystroke's result)."""
    page.wait_for_function(
        """([program, values]) => { const p = new URLSearchParams(location.hash.slice(1));
        return !window.playgroundPending() && p.get("program") === program &&
          Object.entries(values).every(([k, v]) => (p.get("set." + k) || "") === v); }""",
        arg=[program, values or {}],
        timeout=60_000,
    )


def set_case(page, case: tuple) -> None:
    """The page's inputs as a person sets them: the program (the Example menu for a zoo program), the
    convention, the value boxes."""
    name, program, values, convention = case
    zoo = {"resnet18": "resnet18", "keras-vgg16": "keras_vgg16", "cifar-keras-set": "cifar_cnn_symbolic"}
    if page.input_value("#ps-convention") != convention:
        before = runs(page)
        page.select_option("#ps-convention", convention)
        wait_for_run(page, before)
    if name in zoo:
        before = runs(page)
        page.select_option("#ps-examples", "zoo:" + zoo[name])
        wait_for_run(page, before)
        assert page.input_value("#ps-program") == program
    elif page.input_value("#ps-program") != program:
        type_program(page, program)
    settled(page, program)
    for symbol in page.eval_on_selector_all("#ps-values input", "xs => xs.map(x => x.dataset.name)"):
        if page.input_value(f"#ps-values input[data-name={symbol}]") != values.get(symbol, ""):
            page.fill(f"#ps-values input[data-name={symbol}]", values.get(symbol, ""))
    settled(page, program, values)


def choose(page, fmt: str) -> None:
    page.select_option("[data-panel=export] .ps-export-format", fmt)


def download(page, fmt: str):
    choose(page, fmt)
    with page.expect_download(timeout=60_000) as info:
        page.click("[data-panel=export] .ps-export-download")
    got = info.value
    # the feedback, read at once (it goes after a few seconds)
    assert page.inner_text("[data-panel=export] .ps-export-status") == f"Downloaded {got.suggested_filename}"
    return got.suggested_filename, open(got.path(), "rb").read()


# (case, the formats downloaded, the file name's stem)
DOWNLOADS = [
    (CASES[0], list(FORMATS)[:-1], "network"),  # the seed has no input(...): Keras cannot (a test below)
    (CASES[1], ["json", "markdown", "latex-document", "torch"], "network"),
    (CASES[3], ["json", "csv", "latex", "torch", "keras"], "resnet18"),
    (CASES[4], ["json", "csv", "markdown", "keras"], "keras_vgg16"),
    (CASES[5], ["csv", "torch", "keras"], "cifar_cnn_symbolic"),
]
ENDINGS = {
    "json": ".json",
    "csv": ".csv",
    "markdown": ".md",
    "latex": ".tex",
    "latex-document": ".tex",
    "torch": ".py",
    "keras": "_keras.py",
}


@pytest.mark.parametrize("case, formats, stem", DOWNLOADS, ids=[d[0][0] for d in DOWNLOADS])
def test_download_is_the_command_output(xpage, case, formats, stem):
    set_case(xpage, case)
    for fmt in formats:
        name, data = download(xpage, fmt)
        code, stdout, stderr = cli_case(fmt, case)
        assert code == 0, stderr
        assert name == stem + ENDINGS[fmt]
        assert data == stdout, fmt
        assert xpage.is_hidden("[data-panel=export] .ps-export-error")


@pytest.mark.parametrize("case, fmt", [(CASES[0], f) for f in FORMATS if f != "keras"] + [(CASES[3], "keras")])
def test_copy_is_the_command_output(xpage, case, fmt):
    set_case(xpage, case)
    choose(xpage, fmt)
    assert xpage.inner_text("[data-panel=export] .ps-export-command") == "paramsym " + " ".join(FORMATS[fmt])
    xpage.evaluate("navigator.clipboard.writeText('')")
    xpage.click("[data-panel=export] .ps-export-copy")
    xpage.wait_for_function(
        "document.querySelector('[data-panel=export] .ps-export-status').textContent.startsWith('Copied')"
    )
    status = xpage.inner_text("[data-panel=export] .ps-export-status")
    copied = xpage.evaluate("navigator.clipboard.readText()")
    assert status == f"Copied ({len(copied):,} characters)"
    assert copied.encode() == cli_case(fmt, case)[1]


def test_copy_without_the_clipboard_selects_the_text(xpage):
    """Where the clipboard cannot be written (no permission, not a secure context), the text is put in a box,
    selected, for Ctrl+C."""
    set_case(xpage, CASES[1])
    choose(xpage, "markdown")
    xpage.evaluate("() => { navigator.clipboard.writeText = () => Promise.reject(new Error('not allowed')); }")
    try:
        xpage.click("[data-panel=export] .ps-export-copy")
        xpage.wait_for_selector("[data-panel=export] .ps-export-fallback", state="visible")
        status = xpage.inner_text("[data-panel=export] .ps-export-status")
        assert status in ("Copied", "Selected below: press Ctrl+C (⌘C) to copy")
        box = "[data-panel=export] .ps-export-fallback"
        assert xpage.input_value(box).encode() == cli_case("markdown", CASES[1])[1]
        selected = xpage.eval_on_selector(box, "e => [e.selectionStart, e.selectionEnd, e.value.length]")
        assert selected[0] == 0 and selected[1] == selected[2] > 0
    finally:
        xpage.evaluate("() => { delete navigator.clipboard.writeText; }")
    choose(xpage, "json")  # another format: the box goes
    assert xpage.is_hidden("[data-panel=export] .ps-export-fallback")


@pytest.mark.parametrize(
    "case, fmt, program_error",
    [(CASES[2], "torch", False), (CASES[0], "keras", False), (CASES[2], "json", True)],
    ids=["free-symbol", "keras-no-input", "program-error"],
)
def test_export_error_is_shown_not_downloaded(xpage, case, fmt, program_error):
    set_case(xpage, case)
    program = case[1]
    if program_error:
        program = "input(8x8x3) > conv3x3(->8) > rleu"
        type_program(xpage, program)
        settled(xpage, program)
    choose(xpage, fmt)
    downloads = []

    def seen(download):
        downloads.append(download)

    xpage.on("download", seen)
    xpage.click("[data-panel=export] .ps-export-download")
    xpage.wait_for_selector("[data-panel=export] .ps-export-error", state="visible")
    shown = xpage.inner_text("[data-panel=export] .ps-export-error")
    assert shown == cli(fmt, program, tuple(case[2].items()), case[3])[2]
    assert "Cannot export" in xpage.inner_text("[data-panel=export] .ps-export-status")
    xpage.wait_for_timeout(300)
    assert downloads == []
    xpage.remove_listener("download", seen)
    if program_error:  # the next good result clears the message
        type_program(xpage, SEED)
        settled(xpage, SEED)
        assert xpage.is_hidden("[data-panel=export] .ps-export-error")


def test_edits_never_ask_for_an_export(xpage):
    """Typing runs the page's parts only; the export is asked for once per click."""
    set_case(xpage, CASES[0])
    xpage.evaluate("window.posted = []")
    type_program(xpage, SEED + " > relu")
    settled(xpage, SEED + " > relu")
    type_program(xpage, SEED)
    settled(xpage, SEED)
    assert xpage.evaluate("window.posted").count(["export"]) == 0 and xpage.evaluate("window.posted")
    download(xpage, "csv")
    assert xpage.evaluate("window.posted").count(["export"]) == 1


def test_format_is_kept_in_the_link(xpage, browser):
    set_case(xpage, CASES[0])
    choose(xpage, "markdown")
    type_program(xpage, SEED + " > relu")  # the address is written with the next run
    settled(xpage, SEED + " > relu")
    assert parse_qs(urlsplit(xpage.url).fragment)["export.format"] == ["markdown"]
    other = browser.page()
    open_playground(other, browser.base, "#" + urlsplit(xpage.url).fragment)
    assert other.input_value("[data-panel=export] .ps-export-format") == "markdown"
    assert other.inner_text("[data-panel=export] .ps-export-command") == "paramsym count --format markdown"
    other.context.close()
    choose(xpage, "json")


def test_download_follows_the_cost_panel(browser):
    """With the memory setup of the cost panel (from a link: cost.mode=train, cost.dtype=bf16, ...), JSON and LaTeX
    are the command with those run options, and the bar says so; a wrong setting gives the command's message."""
    program = _example("gpt2")
    _, settings, flags = COSTS[0]
    fragment = urlencode({"program": program, **{f"cost.{k}": v for k, v in settings.items()}}, quote_via=quote)
    page = browser.page()
    open_playground(page, browser.base, "#" + fragment)
    got = {}
    for fmt in ["json", "latex"]:
        name, data = got[fmt] = download(page, fmt)
        assert name == "gpt2" + ENDINGS[fmt]  # the text is the zoo example's: the menu shows it, the file is named so
        code, stdout, stderr = cli(fmt, program, (), "torch", tuple(flags))
        assert code == 0 and data == stdout, stderr
        assert page.inner_text("[data-panel=export] .ps-export-command") == " ".join(
            ["paramsym", *FORMATS[fmt], "--train --dtype bf16 --batch 8"]
        )
    assert got["json"][1] != cli("json", program, (), "torch")[1]  # the run options changed the memory counted
    page.context.close()
    page = browser.page()
    open_playground(page, browser.base, "#" + fragment.replace("bf16", "fp7"))
    choose(page, "json")
    page.click("[data-panel=export] .ps-export-download")
    page.wait_for_selector("[data-panel=export] .ps-export-error", state="visible")
    wrong = tuple(f.replace("bf16", "fp7") for f in flags)
    assert page.inner_text("[data-panel=export] .ps-export-error") == cli("json", program, (), "torch", wrong)[2]
    page.context.close()


def test_pytorch_export_builds_the_counted_model(xpage, tmp_path):
    """The downloaded source of the seed and of ResNet-18 runs under the real PyTorch: a model with as many
    parameters as the page's total."""
    pytest.importorskip("torch")
    shown = {}
    for case, name in [(CASES[0], "seed"), (CASES[3], "resnet18")]:
        set_case(xpage, case)
        shown[name] = int(xpage.inner_text("#ps-totals [data-q=params]").replace(",", ""))
        _, data = download(xpage, "torch")
        (tmp_path / f"{name}.py").write_bytes(data)
    check = (
        "import runpy, sys, json\n"
        "counts = {}\n"
        "for name in sys.argv[1:]:\n"
        "    model = runpy.run_path(name + '.py')['build_model']()\n"
        "    counts[name] = sum(p.numel() for p in model.parameters())\n"
        "print(json.dumps(counts))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check, *shown], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == shown
    assert shown == {"seed": 82_496, "resnet18": 11_689_512}


@pytest.mark.parametrize("width", [390, 1920])
def test_bar_fits_and_screenshots(browser, width):
    """The bar at a phone's width and a wide screen: every control visible and inside the page, nothing
    scrolls sideways; after a copy and with an error (screenshots to /tmp to look at)."""
    page = browser.page(width, 900)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=browser.base.rstrip("/"))
    open_playground(page, browser.base)
    for selector in [".ps-export-format", ".ps-export-copy", ".ps-export-download", ".ps-export-command"]:
        box = page.locator(f"[data-panel=export] {selector}").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, selector
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.click("[data-panel=export] .ps-export-copy")
    page.wait_for_function(
        "document.querySelector('[data-panel=export] .ps-export-status').textContent.startsWith('Copied')"
    )
    page.locator("[data-panel=export]").scroll_into_view_if_needed()
    page.screenshot(path=f"/tmp/pg-exports-{width}-copied.png")
    choose(page, "keras")
    page.click("[data-panel=export] .ps-export-download")
    page.wait_for_selector("[data-panel=export] .ps-export-error", state="visible")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=f"/tmp/pg-exports-{width}-error.png")
    page.context.close()
