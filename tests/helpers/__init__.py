"""Helpers shared by the test files (and the benchmarks): `from helpers.cli_helpers import run`.

pyproject.toml's `[tool.pytest.ini_options] pythonpath = ["tests"]` puts this package's folder on the path.
"""
