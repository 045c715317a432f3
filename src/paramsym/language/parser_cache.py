"""Lark's LALR analysis of the grammar, saved once per user so that a run loads it
(about 2 ms) instead of building it (about 40-50 ms).

The file lives in `$XDG_CACHE_HOME/paramsym/` or `~/.cache/paramsym/` (never in a
shared directory such as /tmp). Its name and its first line carry a hash of
everything the analysis depends on: the grammar text, the Lark and Python
versions, the options given to Lark and this file's format. A file made for
another grammar is therefore never used: it has another name, and a file whose
first line does not match is ignored. The directory and the file are used only if
they belong to the current user, no one else can write to them and neither is a
symlink; the file must be a regular file (a FIFO under its name is never waited
on: it is opened without blocking and checked before reading), and it is unpickled with no
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
import stat
import sys
from collections.abc import Callable
from pathlib import Path

# Raise this when what is saved changes shape, so that older files are left alone.
FORMAT = 1

# The options Lark refuses to load from a saved parser (objects, not tables): given anew on loading.
_LOAD_OPTIONS = (
    "postlex",
    "transformer",
    "lexer_callbacks",
    "use_bytes",
    "debug",
    "g_regex_flags",
    "regex",
    "propagate_positions",
    "tree_class",
    "_plugins",
)


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
    text = "\0".join(
        (f"paramsym-parser-cache {FORMAT}", lark.__version__, "{}.{}".format(*sys.version_info[:2]), described, grammar)
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def path_for(digest: str, folder: Path) -> Path:
    return folder / f"parser-{digest[:32]}.pickle"


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain data only: any class or function in the file is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"the parser cache may not name {module}.{name}")


def _header(digest: str) -> bytes:
    return f"paramsym-parser {digest}\n".encode("ascii")


# What the checks need: on a system without them (Windows) the cache is not used, and the parser is built.
_CAN_CHECK = (
    hasattr(os, "O_NOFOLLOW")
    and hasattr(os, "O_NONBLOCK")
    and hasattr(os, "O_DIRECTORY")
    and hasattr(os, "getuid")
    and os.open in os.supports_dir_fd
    and os.rename in os.supports_dir_fd
    and os.unlink in os.supports_dir_fd
)


def _ours(info: os.stat_result, kind: Callable[[int], bool]) -> bool:
    """Of the right type, owned by the current user, and writable by no one else."""
    return kind(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def _open_directory(folder: Path, create: bool) -> int | None:
    """A descriptor of the cache directory, opened without following a symlink, or None when it is missing
    or not safely ours (another owner, writable by group or others, a symlink): then no cache is used. Files
    are opened relative to it, so that the directory checked is the one used."""
    if create:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return None
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # missing, or a symlink (O_NOFOLLOW), or not a directory
        return None
    if not _ours(os.fstat(fd), stat.S_ISDIR):
        os.close(fd)
        return None
    return fd


def _open_file(name: str, folder_fd: int) -> int | None:
    """The cache file, opened without following a symlink and without blocking (a FIFO planted under its
    name would otherwise wait for a writer for ever), kept only when it is a regular file of ours."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder_fd)
    except OSError:
        return None
    if not _ours(os.fstat(fd), stat.S_ISREG):
        os.close(fd)
        return None
    return fd


def load(path: Path, digest: str, objects: dict):
    """The saved parser, with `objects` (transformer, postlexer) given anew; None if the file is
    missing, made for something else, not safely ours (a symlink, a FIFO, another owner, writable by
    others, in a directory that is not safely ours), or damaged."""
    from lark import Lark

    if not _CAN_CHECK:
        return None
    folder_fd = _open_directory(path.parent, create=False)
    if folder_fd is None:
        return None
    try:
        fd = _open_file(path.name, folder_fd)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as handle:
            if handle.readline() != _header(digest):
                return None
            saved = _PlainUnpickler(handle).load()
        return Lark._load_from_dict(saved["data"], saved["memo"], **objects)
    except Exception:  # unreadable, damaged or from an incompatible Lark: build it instead
        return None
    finally:
        os.close(folder_fd)


def save(parser, path: Path, digest: str) -> None:
    """Writes the parser's tables atomically (a temporary file in the checked directory, then renamed);
    silently does nothing where it cannot write or the directory is not safely the user's own."""
    import secrets

    if not _CAN_CHECK:
        return
    folder_fd = _open_directory(path.parent, create=True)
    if folder_fd is None:
        return
    temporary = None
    try:
        temporary = f".parser-{secrets.token_hex(8)}.tmp"
        fd = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder_fd
        )
        with os.fdopen(fd, "wb") as out:  # readable and writable by its owner only
            out.write(_header(digest))
            parser.save(out, _LOAD_OPTIONS)
        os.replace(temporary, path.name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        temporary = None
    except Exception:  # a read-only or full disk: the parser is simply built each run
        pass
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary, dir_fd=folder_fd)
            except OSError:
                pass
        os.close(folder_fd)


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
