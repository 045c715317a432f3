"""The playground page in a real browser: the built site served on localhost and the system's Chromium
driven by Playwright (never a browser that Playwright downloads). Shared by tests/test_playground.py and
benchmarks/playground.py.

Every request to anything but the local server is aborted and recorded, so a test can show that the page
needs no network at all.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site"
CHROMIUM = os.environ.get("PARAMSYM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# the flags a closed network needs: no background requests to Google's services
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# what the site is built from: a change to any of these makes the built site stale
SOURCES = [ROOT / "src" / "paramsym", ROOT / "grammar", ROOT / "docs", ROOT / "examples", ROOT / "Makefile"]


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (it is in the test extra: make install-test)"
    if not shutil.which("node"):
        return "make docs needs Node.js and npm to bundle the playground"
    return None


def _newest(paths) -> float:
    newest = 0.0
    for path in paths:
        files = (
            [path]
            if path.is_file()
            else [p for p in path.rglob("*") if p.is_file() and not {"node_modules", "__pycache__"} & set(p.parts)]
        )
        newest = max([newest, *(p.stat().st_mtime for p in files)])
    return newest


def build_site() -> None:
    """`make docs`, unless the built site is newer than everything it is built from."""
    stamp = SITE / "playground" / "python.zip"
    if stamp.exists() and stamp.stat().st_mtime > _newest(SOURCES):
        return
    subprocess.run(["make", "-s", "docs"], cwd=ROOT, check=True)


def _serve_module():
    """docs/playground/serve.py (the server of `make serve-docs`: .br and .gz copies with Content-Encoding)."""
    spec = importlib.util.spec_from_file_location("playground_serve", ROOT / "docs" / "playground" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def serve(site: Path = SITE, offered: tuple[str, ...] = ("br", "gzip")):
    """The built site on http://127.0.0.1:PORT/ for as long as the block runs, compressed as a real host sends it
    (the `offered` encodings only)."""
    with _serve_module().serve(site, offered=offered) as base:
        yield base


class Browser:
    """Chromium with a fresh profile (a cold cache) for each context; `external` lists every request to a
    host other than the local server, each of which was aborted."""

    def __init__(self, playwright, base: str):
        self.base = base
        self.external: list[str] = []
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    def page(self, width: int = 1440, height: int = 1000):
        context = self.browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
        context.route("**/*", self._route)
        return context.new_page()

    def _route(self, route) -> None:
        if route.request.url.startswith(self.base) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def close(self) -> None:
        self.browser.close()


def open_playground(page, base: str, fragment: str = "", timeout: float = 60_000) -> None:
    """Load the playground page and wait for its first result."""
    page.goto(base + "playground.html" + fragment)
    page.wait_for_function("window.playgroundTimings && window.playgroundTimings.firstResult", timeout=timeout)


def runs(page) -> int:
    return int(page.get_attribute("#ps-app", "data-runs") or 0)


def type_program(page, text: str, timeout: float = 30_000) -> None:
    """Replace the program as a person would (select all, type) and wait until the page has answered."""
    before = runs(page)
    page.click("#ps-program")
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)
    wait_for_run(page, before, timeout)


def wait_for_run(page, before: int, timeout: float = 30_000) -> None:
    page.wait_for_function(
        f"Number(document.getElementById('ps-app').dataset.runs) > {before} && !window.playgroundPending()",
        timeout=timeout,
    )


# ---- fixtures for the browser tests (tests/test_playground*.py import them) ----
@pytest.fixture(scope="module")
def browser():
    """Chromium on the built site (built first when stale); at the end, no request went to another host."""
    missing = chromium_missing()
    if missing is not None and not (os.environ.get("CI") or os.environ.get("PARAMSYM_REQUIRE_BROWSER")):
        pytest.skip(missing)
    assert missing is None, missing  # in CI the browser tests must run: .ci/run installs Chromium
    from playwright.sync_api import sync_playwright

    build_site()
    with serve() as base, sync_playwright() as playwright:
        chromium = Browser(playwright, base)
        yield chromium
        chromium.close()
    assert chromium.external == [], f"the page asked other hosts for {chromium.external}"


@pytest.fixture(scope="module")
def page(browser):
    """The playground at 1440 x 1000, after its first result."""
    page = browser.page()
    open_playground(page, browser.base)
    return page
