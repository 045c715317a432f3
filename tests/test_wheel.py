"""The wheel built from the source installs into a fresh virtual environment
(not this one, not the source tree) and its `paramsym` command works."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (path,) = out.glob("paramsym-*.whl")
    return path


def test_wheel_ships_the_grammar(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "paramsym/language/paramsym.lark" in names
    assert "paramsym/cli.py" in names
    grammar = zipfile.ZipFile(wheel).read("paramsym/language/paramsym.lark").decode()
    assert grammar == (ROOT / "grammar" / "paramsym.lark").read_text()


def test_wheel_installs_and_runs_in_a_fresh_venv(wheel, tmp_path, monkeypatch):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    # the fresh environment sees only what the wheel installed, even when the tests run with PYTHONPATH=src
    monkeypatch.delenv("PYTHONPATH", raising=False)
    python, paramsym = env_dir / "bin" / "python", env_dir / "bin" / "paramsym"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    result = subprocess.run(
        [
            str(paramsym),
            "count",
            "--format",
            "json",
            "conv3x3(3->C, bias) > conv3x3(->2C, bias) > conv3x3(->4C, bias) > gap > dense(->10, bias)",
            "--set",
            "C=74",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["params"] == {"expr": "90*C**2 + 74*C + 10", "value": 498326}
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import paramsym, paramsym.language.syntax as s, importlib.resources as r; "
            "print(paramsym.__file__); print(s.grammar_text() == open(r.files('paramsym.language')"
            ".joinpath('paramsym.lark')).read())",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    location, packaged = where.stdout.split()
    assert str(env_dir) in location and str(ROOT) not in location
    assert packaged == "True"
    bad = subprocess.run([str(paramsym), "count", "cnov3x3(3->8)"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "did you mean 'conv3x3'" in bad.stderr
    # the fresh environment has no PyTorch: writing PyTorch source needs none (issue 9)
    source = subprocess.run(
        [str(paramsym), "export", "res(conv3x3(3->3, pad=1))", "--to", "torch"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert source.returncode == 0, source.stderr
    assert "class Residual(nn.Module):" in source.stdout
    assert "nn.Conv2d(3, 3, 3, padding=1, bias=False)" in source.stdout
