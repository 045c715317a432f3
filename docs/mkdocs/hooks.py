"""mkdocs hooks (mkdocs.yml `hooks:`): what the console examples of the pages get at build time.

Every code block whose first line is a `$ paramsym ...` command (a ```console block, run by tests/test_docs.py):
- `data-copy` on the block: material's copy button copies that attribute instead of the block's text, so it
  copies the commands alone, one a line, without the `$ ` prompt and without the output;
- after the block, a link "Open in the playground" for each `paramsym count|explain|latex|solve PROGRAM` whose
  PROGRAM is the program text or a file of examples/: `playground.html#program=...` with its `--set` values
  (`set.NAME=VALUE`), `--convention`, the solve (`for`, `budget`, `on`, `mode`) and, for explain and latex, the tab.

The options are read by paramsym's own click commands (with resilient parsing: nothing runs), so an option that
takes a value is never mistaken for the program. Everything written into the page is escaped.
"""

from __future__ import annotations

import html
import posixpath
import re
import shlex
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
# a highlighted block as pymdownx.highlight writes it (its text is escaped, so "</code></pre></div>" ends it)
BLOCK = re.compile(r'(<div class="(?:[^"]*\s)?highlight(?:\s[^"]*)?")(><pre>.*?</code></pre></div>)', re.S)
TAG = re.compile(r"<[^>]+>")
PLAYGROUND = "playground.html"
COMMANDS = {"count": "count", "explain": "explain", "latex": "latex", "solve": "solve"}


def block_text(inner: str) -> str:
    """The text of a highlighted block, as written in the page's source."""
    return html.unescape(TAG.sub("", inner))


def commands(text: str) -> list[str]:
    """The commands of a console block (its `$ ` lines), or [] when it is not one."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("$ paramsym"):
        return []
    return [line[2:] for line in lines if line.startswith("$ ")]


def playground_fragment(command: str, root: Path = ROOT) -> str | None:
    """The playground's address fragment (without '#') that reproduces `command`, or None when the playground
    cannot (another subcommand, standard input, a file outside examples/, options it cannot read)."""
    import click

    from paramsym.cli import cli

    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if len(argv) < 3 or argv[0] != "paramsym" or argv[1] not in COMMANDS:
        return None
    sub = cli.commands[COMMANDS[argv[1]]]
    try:
        with sub.make_context(argv[1], argv[2:], resilient_parsing=True) as ctx:
            params = dict(ctx.params)
    except click.ClickException:
        return None
    program = params.get("program")
    if not program or program == "-":
        return None
    path = (root / program).resolve() if "\n" not in program and len(program) < 200 else None
    if program.endswith(".psym") or (path is not None and path.exists()):  # a file: only one of examples/
        if path is None or path.parent != (root / "examples").resolve() or not path.is_file():
            return None
        program = path.read_text(encoding="utf-8").rstrip("\n")
    fields: list[tuple[str, str]] = [("program", program)]
    if params.get("convention") and params["convention"] != "torch":
        fields.append(("convention", params["convention"]))
    for assignment in params.get("assignments") or ():
        name, sep, value = assignment.partition("=")
        if not sep:
            return None
        fields.append(("set." + name.strip(), value.strip()))
    if argv[1] == "solve":
        if not params.get("unknown") or not params.get("budget"):
            return None
        fields += [("for", params["unknown"].strip()), ("budget", params["budget"])]
        if params.get("on") and params["on"] != "params":
            fields.append(("on", params["on"]))
        mode = "at-least" if params.get("at_least") else "exact" if params.get("exact") else "at-most"
        if mode != "at-most":
            fields.append(("mode", mode))
    if argv[1] in ("explain", "latex"):
        fields.append(("tab", argv[1]))
    return "&".join(f"{quote(key, safe='.')}={quote(value, safe='')}" for key, value in fields)


def links_html(found: list[tuple[str, str]], href: str) -> str:
    """The paragraph of links under a block: (command, fragment) each."""
    if len(found) == 1:
        command, fragment = found[0]
        items = [
            f'<a href="{html.escape(href + "#" + fragment)}" title="{html.escape(command)}">Open in the playground</a>'
        ]
    else:
        items = ["Open in the playground:"] + [
            f'<a href="{html.escape(href + "#" + fragment)}" title="{html.escape(command)}">'
            f"{html.escape(shlex.split(command)[1])} ({n})</a>"
            for n, (command, fragment) in enumerate(found, 1)
        ]
    return '<p class="ps-open">' + " ".join(items) + "</p>"


def rewrite(content: str, href: str) -> str:
    def one(match: re.Match) -> str:
        found = commands(block_text(match.group(2)[1:]))
        if not found:
            return match.group(0)
        copy = html.escape("\n".join(found), quote=True).replace("\n", "&#10;")
        out = f'{match.group(1)} data-copy="{copy}"{match.group(2)}'
        links = [(command, fragment) for command in found if (fragment := playground_fragment(command))]
        return out + (links_html(links, href) if links else "")

    return BLOCK.sub(one, content)


def on_page_content(html_text: str, page, config, files) -> str:
    if page.file.src_uri == "playground.md":
        return html_text
    href = posixpath.relpath(PLAYGROUND, posixpath.dirname(page.file.dest_uri) or ".")
    return rewrite(html_text, href)
