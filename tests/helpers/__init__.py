"""Helpers shared by the test files (and the benchmarks), imported as `from helpers.cli_helpers import run`:

cli_helpers         the real `paramsym` entry point
frameworks          what PyTorch and Keras count (never our formulas)
round_trip          a program exported and imported back; weights copied between two modules
strategies          Hypothesis strategies that write random valid programs
doc_examples        the docs' console examples (`python tests/helpers/doc_examples.py --update FILE...`)
import_coverage     docs/zoo.md's import table (`python tests/helpers/import_coverage.py --update`)
playground_browser  the playground in headless Chromium

pyproject.toml's `[tool.pytest.ini_options] pythonpath = ["tests"]` puts this package's folder on the path.
"""
