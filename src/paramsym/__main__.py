"""`python -m paramsym` is the `paramsym` command."""
import gc

gc.disable()  # as the `paramsym` script does (see paramsym_command), for the rest of the command

from .cli import run  # noqa: E402

run()
