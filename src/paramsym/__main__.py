"""`python -m paramsym` is the `paramsym` command."""
import sys

from .cli import main

sys.exit(main())
