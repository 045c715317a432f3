"""Lark's LALR analysis of the grammar, saved once per user so that a run loads it
(about 2 ms) instead of building it (about 40-50 ms).

The file lives in `$XDG_CACHE_HOME/paramsym/` or `~/.cache/paramsym/` (never in a
shared directory such as /tmp). Its name and its first line carry a hash of
everything the analysis depends on: the grammar text, the Lark and Python
versions, the options given to Lark and this file's format. A file made for
another grammar is therefore never used: it has another name, and a file whose
first line does not match is ignored. The file is read only if it belongs to the
current user and no one else can write to it, and it is unpickled with no
classes allowed at all (the saved tables are plain dicts, lists, tuples, strings
and numbers), so a planted file cannot run code. It is written to a temporary
file in the same directory and renamed, so that a process running at the same
time never reads half a file. When the directory cannot be written (a read-only
home, CI), or `PARAMSYM_NO_CACHE=1` is set, the parser is built on every run,
as before.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path
from typing import Callable

# Raise this when what is saved changes shape, so that older files are left alone.
FORMAT = 1

# The options Lark refuses to load from a saved parser (objects, not tables): given anew on loading.
_LOAD_OPTIONS = ("postlex", "transformer", "lexer_callbacks", "use_bytes", "debug", "g_regex_flags", "regex",
                 "propagate_positions", "tree_class", "_plugins")


def enabled() -> bool:
    return os.environ.get("PARAMSYM_NO_CACHE", "").strip() in ("", "0")


def directory() -> Path | None:
    """`$XDG_CACHE_HOME/paramsym`, or `~/.cache/paramsym`; None when there is no home."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG specification says to ignore a relative path
        try:
            base = os.path.join(Path.home(), ".cache")
        except (RuntimeError, KeyError, OSError):
            return None
    return Path(base) / "paramsym"


def key(grammar: str, options: dict) -> str:
    """The hash of everything the saved analysis depends on."""
    import lark
    described = "\0".join(f"{name}={options[name]!r}" for name in sorted(options))
    text = "\0".join((f"paramsym-parser-cache {FORMAT}", lark.__version__, "%d.%d" % sys.version_info[:2],
                      described, grammar))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def path_for(digest: str, folder: Path) -> Path:
    return folder / f"parser-{digest[:32]}.pickle"


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain data only: any class or function in the file is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"the parser cache may not name {module}.{name}")


def _header(digest: str) -> bytes:
    return f"paramsym-parser {digest}\n".encode("ascii")


def load(path: Path, digest: str, objects: dict):
    """The saved parser, with `objects` (transformer, postlexer) given anew; None if the file is
    missing, made for something else, not safely ours, or damaged."""
    from lark import Lark
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if hasattr(os, "getuid") and info.st_uid != os.getuid():
                return None
            if info.st_mode & 0o022:  # group or others could have written it
                return None
            if handle.readline() != _header(digest):
                return None
            saved = _PlainUnpickler(handle).load()
        return Lark._load_from_dict(saved["data"], saved["memo"], **objects)
    except Exception:  # missing, unreadable, damaged or from an incompatible Lark: build it instead
        return None


def save(parser, path: Path, digest: str) -> None:
    """Writes the parser's tables atomically; silently does nothing where it cannot write."""
    import tempfile
    temporary = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".parser-", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as out:  # mkstemp makes it readable and writable by its owner only
            out.write(_header(digest))
            parser.save(out, _LOAD_OPTIONS)
        os.replace(temporary, path)
        temporary = None
    except Exception:  # a read-only or full disk, a missing home: the parser is simply built each run
        pass
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass


def cached_parser(grammar: str, options: dict, objects: dict, build: Callable):
    """The parser for `grammar`: loaded from the user's cache when a matching file is there,
    otherwise built by `build()` and saved for the next run."""
    folder = directory() if enabled() else None
    if folder is None:
        return build()
    digest = key(grammar, options)
    path = path_for(digest, folder)
    parser = load(path, digest, objects)
    if parser is None:
        parser = build()
        save(parser, path, digest)
    return parser
