"""The documentation site around the playground (issue 22, defects 5, 7 and 8), built as `make docs` builds it:
- what a cold visit of the playground transfers (compressed copies served by docs/playground/serve.py), and that
  nothing unused ships;
- pages opened from disk: the playground says it needs a web server and how; search works;
- "Open in the playground" under the doc examples (docs/mkdocs/hooks.py) reopens the same program, with the
  same numbers as the command line; copy buttons copy the commands alone;
- a wider text column, code that scrolls instead of wrapping, phone views, and the dark scheme."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shlex
import subprocess
import sys
import urllib.request
from html.parser import HTMLParser
from urllib.parse import parse_qsl

import pytest

from helpers.doc_examples import ROOT, console_examples
from helpers.playground_browser import SITE, open_playground, serve

PLAYGROUND = SITE / "playground"
# what the page loads, each of which must ship with its compressed copies
LARGE = [
    "playground/vendor/pyodide/pyodide.asm.wasm",
    "playground/vendor/pyodide/pyodide.asm.mjs",
    "playground/vendor/pyodide/python_stdlib_pyc.zip",
    "playground/python.zip",
    "playground/vendor/katex/katex.mjs",
    "playground/manifest.json",
    "playground/app.js",
    "playground.html",
]
COLD_VISIT_LIMIT = 15e6  # bytes transferred by a cold visit, navigation included (issue 22: was 27 MB)


@pytest.fixture(scope="module")
def site(browser):
    """The built site (the browser fixture builds it when stale)."""
    return SITE


def cli_json(args: list[str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "paramsym", *args, "--format", "json"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def brotli_decompress(path) -> bytes:
    """Python has no Brotli of its own: Node's zlib (the one that wrote the file) reads it back."""
    out = subprocess.run(
        [
            "node",
            "-e",
            "process.stdout.write(require('zlib').brotliDecompressSync(require('fs').readFileSync(process.argv[1])))",
            str(path),
        ],
        capture_output=True,
        check=True,
    )
    return out.stdout


# ---- what ships, and how it is served ----
def test_unused_files_are_not_shipped(site):
    for unused in ("wheels", "vendor/pyodide/python_stdlib.zip", "vendor/pyodide/pyodide.js",
                   "vendor/katex/katex.min.js", "playground.py", "serve.py", "compress.mjs"):  # fmt: skip
        assert not (PLAYGROUND / unused).exists(), unused


@pytest.mark.parametrize("name", LARGE)
def test_compressed_copies_hold_the_same_bytes(site, name):
    original = (site / name).read_bytes()
    br, gz = site / (name + ".br"), site / (name + ".gz")
    assert gz.exists() and br.exists(), name
    assert gzip.decompress(gz.read_bytes()) == original
    assert hashlib.sha256(brotli_decompress(br)).digest() == hashlib.sha256(original).digest()
    assert br.stat().st_size < gz.stat().st_size < len(original)


def test_zips_store_their_members_for_whole_file_compression(site):
    import zipfile

    for name in ("python.zip", "vendor/pyodide/python_stdlib_pyc.zip"):
        with zipfile.ZipFile(PLAYGROUND / name) as archive:
            kinds = {info.compress_type for info in archive.infolist()}
        assert kinds == {zipfile.ZIP_STORED}, name


@pytest.mark.parametrize(
    "accept, encoding",
    [
        ("gzip, deflate, br, zstd", "br"),
        ("br", "br"),
        ("gzip", "gzip"),
        ("gzip, br;q=0", "gzip"),
        ("identity", None),
        ("", None),
    ],
)
def test_server_sends_the_copy_the_browser_accepts(site, accept, encoding):
    name = "playground/vendor/pyodide/pyodide.asm.wasm"
    original = (site / name).read_bytes()
    with serve() as base:
        request = urllib.request.Request(base + name, headers={"Accept-Encoding": accept})
        with urllib.request.urlopen(request) as response:
            body, headers = response.read(), response.headers
    assert headers["Content-Type"] == "application/wasm"
    assert headers.get("Content-Encoding") == encoding
    if encoding == "gzip":
        body = gzip.decompress(body)
    if encoding == "br":
        assert body == (site / (name + ".br")).read_bytes()
    else:
        assert body == original


def test_cold_visit_transfers_under_the_limit_and_counts(browser, site):
    """Every request of a cold visit (the page's and its worker's: Pyodide, the zips), as Chromium received it:
    body as sent (compressed) plus headers. The page's own Resource Timing (transferSize) agrees for its part."""
    page = browser.page()
    requests = []
    page.context.on("requestfinished", lambda request: requests.append(request))
    open_playground(page, browser.base)
    page.wait_for_timeout(500)
    sent = {}
    for request in requests:
        sizes = request.sizes()
        response = request.response()
        name = request.url.split("#")[0]
        sent[name] = (
            sizes["responseBodySize"] + sizes["responseHeadersSize"],
            response.headers.get("content-encoding"),
        )
    transferred = sum(size for size, _ in sent.values())
    on_disk = sum((SITE / name[len(browser.base) :].split("?")[0]).stat().st_size for name in sent)
    timing = page.evaluate(
        """() => [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
            .map((e) => [e.name, e.transferSize, e.decodedBodySize])"""
    )
    decoded = {name: d for name, _, d in timing}
    print(
        f"cold visit: {transferred / 1e6:.2f} MB transferred for {on_disk / 1e6:.2f} MB of files in {len(sent)} "
        f"requests; the page's own timeline (without its worker's): {sum(t for _, t, _ in timing) / 1e6:.2f} MB "
        f"transferred, {sum(decoded.values()) / 1e6:.2f} MB decoded"
    )
    for name, (size, encoding) in sorted(sent.items(), key=lambda kv: -kv[1][0])[:8]:
        print(f"  {size / 1e6:6.2f} MB  {encoding or '-':5} {name.rsplit('/', 1)[-1]}")
    by_file = {name.rsplit("/", 1)[-1]: encoding for name, (_, encoding) in sent.items()}
    for name in ("pyodide.asm.wasm", "python.zip", "python_stdlib_pyc.zip", "pyodide.asm.mjs", "katex.mjs"):
        assert by_file.get(name) in ("br", "gzip"), (name, by_file.get(name))
    assert 0 < transferred < COLD_VISIT_LIMIT
    assert "82,496" in page.inner_text("#ps-totals")  # and the page still counts: the seed's parameters
    page.context.close()


def test_gzip_alone_loads_and_counts(browser, site):
    """A server (or a browser) with gzip only sends the .gz copies, and the page works the same."""
    with serve(offered=("gzip",)) as base:
        context = browser.browser.new_context(viewport={"width": 1024, "height": 800})
        requests = []
        context.on("requestfinished", lambda request: requests.append(request))
        page = context.new_page()
        open_playground(page, base)
        page.wait_for_timeout(500)
        encodings = {r.url.rsplit("/", 1)[-1]: r.response().headers.get("content-encoding") for r in requests}
        transferred = sum(r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"] for r in requests)
        print(f"cold visit with gzip only: {transferred / 1e6:.2f} MB transferred in {len(requests)} requests")
        assert encodings["pyodide.asm.wasm"] == "gzip" and encodings["python.zip"] == "gzip", encodings
        assert "82,496" in page.inner_text("#ps-totals")
        assert all(r.url.startswith(base) or r.url.startswith("data:") for r in requests)
        context.close()


# ---- opened from disk ----
@pytest.fixture(scope="module")
def disk(browser):
    """A context without the local server's routing: file:// pages."""
    context = browser.browser.new_context(viewport={"width": 1024, "height": 800})
    yield context
    context.close()


def test_playground_from_disk_says_it_needs_a_server(disk, site):
    page = disk.new_page()
    page.goto((site / "playground.html").as_uri())
    status = page.locator("#ps-status")
    status.wait_for()
    text = status.inner_text()
    assert "needs a web server" in text
    assert "make serve-docs" in text and "python3 -m http.server --directory site 8000" in text
    assert "http://localhost:8000/playground.html" in text
    assert "ps-bad" in status.get_attribute("class")
    page.screenshot(path="/tmp/pg-site-file-playground.png")


def test_search_works_from_disk(disk, site):
    page = disk.new_page()
    page.goto((site / "index.html").as_uri())
    page.set_viewport_size({"width": 1440, "height": 900})
    page.click("input.md-search__input")
    page.keyboard.type("receptive field")
    page.wait_for_selector(".md-search-result__item", timeout=15_000)
    assert page.locator(".md-search-result__item").count() > 0
    page.screenshot(path="/tmp/pg-site-file-search.png")


# ---- "Open in the playground" and the copy buttons ----
class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, title)
        self.copies: list[str] = []
        self._in_open = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "p" and attrs.get("class") == "ps-open":
            self._in_open = True
        elif tag == "a" and self._in_open:
            self.links.append((attrs["href"], attrs.get("title", "")))
        if "data-copy" in attrs:
            self.copies.append(attrs["data-copy"])

    def handle_endtag(self, tag):
        if tag == "p":
            self._in_open = False


def page_links(name: str) -> _Links:
    parser = _Links()
    parser.feed((SITE / name).read_text(encoding="utf-8"))
    return parser


def decode(href: str) -> dict[str, str]:
    assert href.startswith("playground.html#"), href
    return dict(parse_qsl(href.split("#", 1)[1], keep_blank_values=True))


def possible_programs(command: str) -> list[str]:
    """Each argument of the command, a file of examples/ read: the program is one of them."""
    out = []
    for arg in shlex.split(command)[2:]:
        path = ROOT / arg
        out.append(path.read_text(encoding="utf-8").rstrip("\n") if arg.endswith(".psym") and path.is_file() else arg)
    return out


DOC_PAGES = sorted(p.stem for p in (ROOT / "docs").glob("*.md") if p.stem != "playground")


def test_every_page_with_examples_has_playground_links(site):
    total = 0
    for stem in DOC_PAGES:
        commands = [c for c, _ in console_examples((ROOT / "docs" / f"{stem}.md").read_text())]
        runnable = [c for c in commands if shlex.split(c)[1] in ("count", "explain", "latex", "solve")]
        parsed = page_links(f"{stem}.html")
        if runnable:
            assert parsed.links, stem
        total += len(parsed.links)
        for href, title in parsed.links:
            fields = decode(href)
            assert title in commands, (stem, title)
            assert fields["program"] in possible_programs(title), (stem, title)
            argv = shlex.split(title)
            sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
            assert {k[4:]: v for k, v in fields.items() if k.startswith("set.")} == dict(
                s.split("=", 1) for s in sets
            ), title
            if "--convention" in argv:
                assert fields["convention"] == argv[argv.index("--convention") + 1]
            if argv[1] == "solve":
                assert fields["for"] == argv[argv.index("--for") + 1]
                assert fields["budget"] == argv[argv.index("--budget") + 1]
    assert total >= 40


@pytest.mark.parametrize(
    "page_name, command, fields",
    [
        ("index.html", 'paramsym count "conv3x3(32->64, bias) > pool > conv5x5(->40)"',
         {"program": "conv3x3(32->64, bias) > pool > conv5x5(->40)"}),
        ("cli.html", "paramsym count examples/cifar_cnn.psym",
         {"program": (ROOT / "examples" / "cifar_cnn.psym").read_text().rstrip("\n")}),
    ],
)  # fmt: skip
def test_link_decodes_to_the_program(site, page_name, command, fields):
    links = {title: decode(href) for href, title in page_links(page_name).links}
    assert links[command] == fields


def test_copy_holds_only_the_commands(site):
    for stem in DOC_PAGES:
        source = (ROOT / "docs" / f"{stem}.md").read_text()
        blocks = [
            [c for c, _ in console_examples(m.group(0))]
            for m in re.finditer(r"^```console\n.*?^```$", source, re.S | re.M)
        ]
        copies = page_links(f"{stem}.html").copies
        assert copies == ["\n".join(b) for b in blocks if b], stem


def test_copy_button_copies_the_commands(browser, site):
    page = browser.page(1280, 900)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=browser.base.rstrip("/"))
    page.goto(browser.base + "index.html")
    block = page.locator(".highlight[data-copy]").first
    block.hover()
    block.locator("button[data-md-type=copy], button.md-clipboard").first.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == 'paramsym count "conv3x3(32->64, bias) > pool > conv5x5(->40)"'
    page.context.close()


@pytest.mark.parametrize("page_name", ["cli.html", "index.html", "zoo.html"])
def test_following_a_link_shows_the_cli_numbers(browser, site, page_name):
    """A link with --set values (or a file of examples/): the playground shows the parameters the CLI counts."""
    candidates = [(h, t) for h, t in page_links(page_name).links if shlex.split(t)[1] == "count"]
    with_sets = [(h, t) for h, t in candidates if "--set" in t] or candidates
    href, title = with_sets[0]
    argv = shlex.split(title)
    expected = cli_json(["count", *[a for a in argv[2:] if a not in ("--fold", "--all")]])["params"]
    page = browser.page(1280, 900)
    page.goto(browser.base + page_name)
    page.locator(f'p.ps-open a[href="{href}"]').first.click()
    page.wait_for_function("window.playgroundTimings && window.playgroundTimings.firstResult", timeout=60_000)
    assert page.input_value("#ps-program") == decode(href)["program"]
    shown = page.inner_text("#ps-totals")
    if expected["value"] is not None:
        assert f"{expected['value']:,}" in shown, (title, shown)
    else:
        assert expected["expr"].replace("**", "^").split(" ")[0] in shown, (title, shown)
    page.context.close()


# ---- layout: a wider column, code that scrolls, phones, dark ----
def test_text_column_is_wide_and_code_scrolls(browser, site):
    page = browser.page(1440, 1000)
    page.goto(browser.base + "cli.html")
    width = page.evaluate("document.querySelector('.md-content').getBoundingClientRect().width")
    assert width >= 900, width
    style = page.evaluate("getComputedStyle(document.querySelector('.md-typeset pre > code')).whiteSpace")
    assert style == "pre"
    # the console examples' output (100 columns, COLUMNS=100) fits without scrolling; longer lines scroll
    fitting = page.evaluate(
        """() => [...document.querySelectorAll('.highlight[data-copy] pre > code')]
             .filter((c) => Math.max(...c.textContent.split('\\n').map((l) => l.length)) <= 100)
             .map((c) => c.scrollWidth - c.clientWidth)"""
    )
    assert len(fitting) >= 8 and max(fitting) <= 1, fitting
    scrolling = page.evaluate("getComputedStyle(document.querySelector('.md-typeset pre > code')).overflowX")
    assert scrolling == "auto"
    page.context.close()


@pytest.mark.parametrize("page_name", ["index.html", "cli.html", "playground.html"])
def test_phone_view_never_scrolls_the_page_sideways(browser, site, page_name):
    page = browser.page(390, 844)
    page.goto(browser.base + page_name)
    if page_name == "playground.html":
        page.wait_for_function("window.playgroundTimings && window.playgroundTimings.firstResult", timeout=60_000)
    page.wait_for_timeout(300)
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 390, wide
    page.screenshot(path=f"/tmp/pg-site-390-{page_name.replace('.html', '')}.png", full_page=False)
    page.context.close()


def test_phone_playground_scrolls_latex_total_and_caret_in_their_boxes(browser, site):
    """At 390 px a long formula, long totals and an error's caret line scroll inside their boxes: the page itself
    never scrolls sideways, and each box ends inside the screen."""
    from urllib.parse import quote

    from helpers.playground_browser import type_program

    page = browser.page(390, 844)
    program = " > ".join(["input(224x224x3)", *(f"conv3x3(->C_{i}, pad=1, bias)" for i in range(10)), "gap"])
    open_playground(page, browser.base, "#program=" + quote(program, safe=""))
    page.screenshot(path="/tmp/pg-site-390-playground-formula.png", full_page=True)
    for selector in ("#ps-formula", "#ps-totals", ".ps-editor"):
        right = page.evaluate(f"document.querySelector('{selector}').getBoundingClientRect().right")
        assert right <= 390, (selector, right)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    type_program(page, program + " > conv3x3(->, oops)")
    assert page.is_visible("#ps-error")
    right = page.evaluate("document.querySelector('#ps-error').getBoundingClientRect().right")
    assert right <= 390, right
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path="/tmp/pg-site-390-playground-error.png", full_page=True)
    page.context.close()


def test_dark_scheme_follows_the_system_and_the_playground_reads_in_it(browser, site):
    context = browser.browser.new_context(viewport={"width": 1024, "height": 900}, color_scheme="dark")
    context.route("**/*", browser._route)
    page = context.new_page()
    page.goto(browser.base + "cli.html")
    assert page.evaluate("document.body.dataset.mdColorScheme") == "slate"
    page.screenshot(path="/tmp/pg-site-1024-dark-cli.png")
    open_playground(page, browser.base)
    assert page.evaluate("document.body.dataset.mdColorScheme") == "slate"

    def luminance(selector: str, prop: str) -> float:
        rgb = page.evaluate(f"getComputedStyle(document.querySelector('{selector}')).{prop}")
        r, g, b = (int(x) for x in re.findall(r"\d+", rgb)[:3])
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

    assert luminance(".ps-editor", "backgroundColor") < 0.2
    assert luminance("#ps-highlight", "color") > 0.7
    assert luminance(".md-typeset .ps-table th", "backgroundColor") < 0.25
    assert luminance(".ps-total-value", "color") > 0.6
    page.screenshot(path="/tmp/pg-site-1024-dark-playground.png", full_page=True)
    # the toggle in the header: light, then back
    page.click("label.md-header__button[for^=__palette]:visible")
    page.wait_for_timeout(200)
    assert page.evaluate("document.body.dataset.mdColorScheme") in ("default", "slate")
    context.close()


def test_screenshots_of_the_landing_page(browser, site):
    for width in (390, 1024, 1920):
        page = browser.page(width, 1000)
        page.goto(browser.base + "index.html")
        page.screenshot(path=f"/tmp/pg-site-{width}-index.png")
        assert page.locator("a.md-button--primary[href='playground.html']").is_visible()
        page.context.close()


def test_links_escape_the_program(site):
    """A program with the characters that matter in an address and in HTML comes back exactly."""
    sys.path.insert(0, str(ROOT / "docs" / "mkdocs"))
    import hooks

    program = 'conv3x3(3->C&"<x>"#%+ ,bias) > dense(->10)'
    fragment = hooks.playground_fragment(f"paramsym count '{program}' --set C=64 --convention keras")
    assert dict(parse_qsl(fragment)) == {"program": program, "set.C": "64", "convention": "keras"}
    html_out = hooks.links_html([("paramsym count '<b>'", fragment)], "playground.html")
    assert "<b>" not in html_out and "&lt;b&gt;" in html_out
    assert hooks.playground_fragment("paramsym count -") is None
    assert hooks.playground_fragment("paramsym count ../secret.psym") is None
    assert hooks.playground_fragment("paramsym export 'dense(3->4)'") is None
