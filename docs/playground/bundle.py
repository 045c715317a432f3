"""Copies what the playground page loads into the built site (make docs runs it after mkdocs):

  site/playground/vendor/pyodide/   the Pyodide core from its npm package (no packages of its own)
  site/playground/vendor/katex/     KaTeX's script, style sheet and fonts from its npm package
  site/playground/wheels/           sympy, mpmath, lark (pinned, from PyPI) and paramsym's own wheel: compile.mjs
                                    compiles them into python.zip and removes them (the page loads the zip)
  site/playground/manifest.json     the wheels' names and the zoo's example programs
  site/assets/javascripts/iframe-worker-shim.js   search from disk (mkdocs.yml, the offline plugin)

usage: python docs/playground/bundle.py SITE_DIR WHEELS_DIR
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# (python_stdlib.zip is compile.mjs's input; pyodide.js and katex.min.js, the non-module builds, are not loaded)
PYODIDE_CORE = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
                "pyodide-lock.json")
KATEX = ("katex.mjs", "katex.min.css")
WHEELS = ("sympy", "mpmath", "lark", "paramsym")


def main(site: Path, wheels: Path) -> None:
    target = site / "playground"
    modules = HERE / "node_modules"
    for package in ("pyodide", "katex", "iframe-worker"):
        if not (modules / package).is_dir():
            sys.exit(f"{modules} has no {package}: run npm ci in {HERE} (make docs does)")
    vendor = target / "vendor"
    shutil.rmtree(vendor, ignore_errors=True)
    (vendor / "pyodide").mkdir(parents=True)
    for name in PYODIDE_CORE:
        shutil.copy2(modules / "pyodide" / name, vendor / "pyodide" / name)
    (vendor / "katex").mkdir()
    for name in KATEX:
        shutil.copy2(modules / "katex" / "dist" / name, vendor / "katex" / name)
    shutil.copytree(modules / "katex" / "dist" / "fonts", vendor / "katex" / "fonts")
    # the whole site's: the Web Worker shim that mkdocs-material's offline plugin uses for search from disk
    shim = site / "assets" / "javascripts" / "iframe-worker-shim.js"
    shutil.copy2(modules / "iframe-worker" / "shim" / "index.js", shim)
    shutil.rmtree(target / "wheels", ignore_errors=True)
    (target / "wheels").mkdir()
    found = []
    for project in WHEELS:
        matches = sorted(wheels.glob(f"{project}-*-py3-none-any.whl"))
        if len(matches) != 1:
            sys.exit(f"expected one pure-Python wheel of {project} in {wheels}, found {len(matches)}")
        shutil.copy2(matches[0], target / "wheels" / matches[0].name)
        found.append(matches[0].name)
    examples = [{"name": path.stem, "text": path.read_text(encoding="utf-8")}
                for path in sorted((ROOT / "examples").glob("*.psym"))]
    manifest = {"wheels": found, "examples": examples,
                "pyodide": json.loads((modules / "pyodide" / "package.json").read_text())["version"],
                "katex": json.loads((modules / "katex" / "package.json").read_text())["version"]}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"playground: {len(found)} wheels, {len(examples)} examples, {size / 1e6:.1f} MB in {target}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
