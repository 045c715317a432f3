"""`python -m paramsym` is the `paramsym` command."""

import gc

gc.disable()  # as the `paramsym` script does (see paramsym_command), for the rest of the command

from .cli import drop_implicit_cwd, run  # noqa: E402

drop_implicit_cwd()  # Python put the current directory first; modules imported from here on skip it
run()
