"""The built site on http://127.0.0.1:PORT/, each file sent compressed where the browser accepts it: FILE.br
(Brotli) or FILE.gz (gzip), written beside FILE by compress.mjs when the site was built, with
`Content-Encoding` and FILE's own `Content-Type`. `make serve-docs` runs it; the browser tests use `serve()`.

usage: python docs/playground/serve.py [SITE_DIR] [--port PORT]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import threading
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[2]
# the order of preference: Brotli is the smaller
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


def accepted(header: str) -> set[str]:
    """The encodings an Accept-Encoding header allows (q=0 refuses one)."""
    names = set()
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name and params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            names.add(name.strip().lower())
    return names


class Handler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler that sends FILE.br or FILE.gz in place of FILE when the browser accepts it."""

    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
        ".js": "text/javascript",
    }

    offered: ClassVar[tuple[str, ...]] = ("br", "gzip")  # what this server may send (the tests narrow it)

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            index = os.path.join(path, "index.html")
            if self.path.split("?")[0].endswith("/") and os.path.isfile(index):
                path = index
        if os.path.isfile(path):
            allowed = accepted(self.headers.get("Accept-Encoding", ""))
            for encoding, suffix in ENCODINGS:
                if encoding in allowed and encoding in self.offered and os.path.isfile(path + suffix):
                    return self._send_encoded(path, path + suffix, encoding)
        return super().send_head()

    def _send_encoded(self, path: str, encoded: str, encoding: str):
        f = open(encoded, "rb")  # noqa: SIM115 (copyfile reads it, then do_GET closes it)
        try:
            stat = os.fstat(f.fileno())
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(path))
            self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(stat.st_size))
            self.send_header("Vary", "Accept-Encoding")
            self.send_header("Last-Modified", self.date_time_string(int(stat.st_mtime)))
            self.end_headers()
            return f
        except BaseException:
            f.close()
            raise

    def end_headers(self) -> None:
        # every visit in the tests is cold; a person reloading gets the files again (they change with each build)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


class QuietHandler(Handler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(site: Path, port: int = 0, quiet: bool = True, offered: tuple[str, ...] = ("br", "gzip")):
    """The site on http://127.0.0.1:PORT/ for as long as the block runs (port 0: a free one), sending the
    compressed copies of the `offered` encodings only."""
    base = type("Offering", (QuietHandler if quiet else Handler,), {"offered": tuple(offered)})
    handler = functools.partial(base, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", default=str(ROOT / "site"))
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with serve(Path(args.site), args.port, quiet=False) as base:
        print(f"serving {args.site} on {base} (the playground: {base}playground.html); Ctrl-C stops")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
