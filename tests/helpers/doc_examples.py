"""Runnable examples in docs/ and README.md.

A ```console block holds `$ paramsym ...` commands, each followed by exactly
what it prints (standard output, then standard error). A ```pycon block is a
doctest. `python tests/helpers/doc_examples.py --update FILE...` rewrites the console
outputs from the current build; the tests check that they still hold.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARAMSYM = str(Path(sys.executable).with_name("paramsym"))
BLOCK = re.compile(r"^```console\n(.*?)^```$", re.S | re.M)


def command_output(command: str) -> str:
    argv = shlex.split(command)
    assert argv[0] == "paramsym", command
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    result = subprocess.run([PARAMSYM, *argv[1:]], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    return result.stdout + result.stderr


def console_examples(text: str):
    """(command, expected output) for every `$ ` line of every console block."""
    for block in BLOCK.finditer(text):
        command, lines = None, []
        for line in block.group(1).splitlines():
            if line.startswith("$ "):
                if command is not None:
                    yield command, "\n".join(lines)
                command, lines = line[2:], []
            else:
                lines.append(line)
        if command is not None:
            yield command, "\n".join(lines)


def update(path: Path) -> None:
    text = path.read_text()

    def fill(block: re.Match) -> str:
        out = []
        for command, _ in console_examples(block.group(0)):
            out.append(f"$ {command}\n{command_output(command).rstrip()}")
        return "```console\n" + "\n".join(out) + "\n```"

    path.write_text(BLOCK.sub(fill, text))


if __name__ == "__main__":
    if sys.argv[1:2] != ["--update"]:
        sys.exit("usage: python tests/helpers/doc_examples.py --update FILE...")
    for name in sys.argv[2:]:
        update(Path(name))
