"""`python -m paramsym` is the `paramsym` command."""
from .cli import run

run()
