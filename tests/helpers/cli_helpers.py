"""Run the real `paramsym` entry point installed beside the test interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PARAMSYM = str(Path(sys.executable).with_name("paramsym"))


def run(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run([PARAMSYM, *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
