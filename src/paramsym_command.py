"""The `paramsym` command's entry point.

It pauses Python's cyclic garbage collector before paramsym and SymPy are imported: a command that
lives for a second makes hundreds of thousands of objects and no cycles worth collecting, and the
collector's passes over them cost a tenth of a small command. (`paramsym.parse` pauses it the same
way while it parses; library users keep their collector.)
"""

import gc

gc.disable()

from paramsym.cli import run  # noqa: E402

__all__ = ["run"]
