"""The per-user cache of Lark's parser tables (paramsym/language/parser_cache.py): used only when it
was made for this very grammar, never required, and never a way to run planted code."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from lark import Lark

from paramsym.language import parser_cache, syntax

OPTIONS = {"parser": "lalr", "lexer": "basic", "start": ["start"], "maybe_placeholders": True}
GRAMMAR_A = 'start: WORD ("," WORD)*\n%import common.WORD\n%ignore " "\n'
GRAMMAR_B = 'start: WORD (";" WORD)*\n%import common.WORD\n%ignore " "\n'


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PARAMSYM_NO_CACHE", raising=False)
    return tmp_path / "cache" / "paramsym"


def parser_for(grammar):
    """The parser through the cache, and whether it had to be built."""
    built = []

    def build():
        built.append(True)
        return Lark(grammar, **OPTIONS)

    return parser_cache.cached_parser(grammar, OPTIONS, {}, build), bool(built)


def saved_files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_second_run_loads_what_the_first_saved(cache_home):
    first, built = parser_for(GRAMMAR_A)
    assert built
    [name] = saved_files(cache_home)
    assert name.startswith("parser-") and name.endswith(".pickle")
    assert (cache_home / name).stat().st_mode & 0o077 == 0  # the user's own
    assert cache_home.stat().st_mode & 0o077 == 0
    second, built = parser_for(GRAMMAR_A)
    assert not built
    assert second.parse("a, b") == first.parse("a, b")


def test_a_cache_for_another_grammar_is_not_used(cache_home):
    parser_for(GRAMMAR_A)
    parser, built = parser_for(GRAMMAR_B)
    assert built
    assert [c.value for c in parser.parse("a; b").children] == ["a", "b"]
    assert len(saved_files(cache_home)) == 2


def test_a_stale_file_under_the_right_name_is_not_used(cache_home):
    """Grammar A's tables put where grammar B's belong (as if the grammar changed and the hash
    collided): the first line does not match, so B is built and the file replaced."""
    parser_for(GRAMMAR_A)
    [name_a] = saved_files(cache_home)
    path_b = parser_cache.path_for(parser_cache.key(GRAMMAR_B, OPTIONS), cache_home)
    os.replace(cache_home / name_a, path_b)
    parser, built = parser_for(GRAMMAR_B)
    assert built
    assert [c.value for c in parser.parse("a; b").children] == ["a", "b"]
    assert parser_for(GRAMMAR_B)[1] is False  # the replaced file is good now


def test_the_key_covers_grammar_options_and_versions():
    key = parser_cache.key(GRAMMAR_A, OPTIONS)
    assert key != parser_cache.key(GRAMMAR_B, OPTIONS)
    assert key != parser_cache.key(GRAMMAR_A, {**OPTIONS, "maybe_placeholders": False})
    assert key == parser_cache.key(GRAMMAR_A, dict(reversed(list(OPTIONS.items()))))


def test_a_damaged_file_is_rebuilt(cache_home):
    parser_for(GRAMMAR_A)
    [name] = saved_files(cache_home)
    path = cache_home / name
    path.write_bytes(path.read_bytes()[:200])
    parser, built = parser_for(GRAMMAR_A)
    assert built and parser.parse("a, b")


class _Planted:
    def __reduce__(self):
        return (os.system, ("echo planted > planted.txt",))


def test_a_planted_pickle_is_never_run(cache_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = parser_cache.path_for(parser_cache.key(GRAMMAR_A, OPTIONS), cache_home)
    cache_home.mkdir(parents=True, mode=0o700)
    with open(path, "wb") as out:
        out.write(f"paramsym-parser {parser_cache.key(GRAMMAR_A, OPTIONS)}\n".encode())
        pickle.dump({"data": _Planted(), "memo": {}}, out)
    os.chmod(path, 0o600)
    parser, built = parser_for(GRAMMAR_A)
    assert built and parser.parse("a, b")
    assert not (tmp_path / "planted.txt").exists()


def test_a_file_others_can_write_is_not_trusted(cache_home):
    parser_for(GRAMMAR_A)
    [name] = saved_files(cache_home)
    os.chmod(cache_home / name, 0o666)
    assert parser_for(GRAMMAR_A)[1]  # built again, not loaded


def test_an_unwritable_cache_directory_still_works(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # mkdir fails under a file, even for root
    monkeypatch.delenv("PARAMSYM_NO_CACHE", raising=False)
    for _ in range(2):
        parser, built = parser_for(GRAMMAR_A)
        assert built and parser.parse("a, b")
    assert blocker.read_text() == ""


def test_paramsym_no_cache_builds_and_writes_nothing(cache_home, monkeypatch):
    monkeypatch.setenv("PARAMSYM_NO_CACHE", "1")
    assert parser_for(GRAMMAR_A)[1] and parser_for(GRAMMAR_A)[1]
    assert saved_files(cache_home) == []


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parser_cache.directory() == Path(tmp_path) / ".cache" / "paramsym"


def test_the_loaded_parser_reads_and_refuses_like_the_built_one(cache_home):
    """paramsym's own grammar, loaded from the cache: the same trees and the same errors."""
    grammar = syntax.grammar_text()

    def fresh():
        objects = {"postlex": syntax._Postlexer(), "transformer": syntax._ToAst()}
        return parser_cache.cached_parser(
            grammar, syntax._LARK_OPTIONS, objects, lambda: Lark(grammar, **syntax._LARK_OPTIONS, **objects)
        )

    built, loaded = fresh(), fresh()
    assert len(saved_files(cache_home)) == 1
    text = "let C = 16\ninput(32x32x3) > conv3x3(->C, pad=1, bias) > res(bn > relu | relu) > dense(->10)"
    assert loaded.parse(text, start="start") == built.parse(text, start="start")
    for bad in ("conv3x3(3->16) relu", "conv3x3(3->16", "relu >", "let = 3\nrelu"):
        errors = []
        for parser in (built, loaded):
            try:
                parser.parse(bad, start="start")
            except Exception as error:  # compared below
                errors.append((type(error), str(error), getattr(error, "expected", None)))
        assert len(errors) == 2 and errors[0] == errors[1]


def _cli(args, env):
    return subprocess.run(
        [sys.executable, "-m", "paramsym", *args], capture_output=True, text=True, env={**os.environ, **env}
    )


def test_the_command_gives_the_same_output_with_and_without_the_cache(tmp_path):
    program = "conv3x3(32->64,bias) > pool > conv5x5(->40)"
    env = {"XDG_CACHE_HOME": str(tmp_path), "PARAMSYM_NO_CACHE": "0"}
    runs = [_cli(["count", program], env) for _ in range(2)]
    runs.append(_cli(["count", program], {**env, "PARAMSYM_NO_CACHE": "1"}))
    bad = [
        _cli(["count", "conv3x3(3->16) relu"], env),
        _cli(["count", "conv3x3(3->16) relu"], {**env, "PARAMSYM_NO_CACHE": "1"}),
    ]
    assert len(saved_files(tmp_path / "paramsym")) == 1
    assert all(r.returncode == 0 for r in runs)
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout
    assert bad[0].returncode == bad[1].returncode == 2 and bad[0].stderr == bad[1].stderr


def test_processes_starting_together_share_the_cache_safely(tmp_path):
    """Several commands at once with an empty cache: every one succeeds, and no temporary
    file is left behind (each writes its own and renames it into place)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "PARAMSYM_NO_CACHE": ""}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "paramsym", "count", "relu > dense(4->2)"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate() for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    assert len({out for out, _ in outputs}) == 1
    assert [n for n in saved_files(tmp_path / "paramsym") if not n.endswith(".pickle")] == []


# ---- issue 17: the file and its directory are checked before anything is read from them ---------------


def _saved_a(cache_home):
    """A good cache file of GRAMMAR_A in `cache_home`, and its path."""
    parser_for(GRAMMAR_A)
    [name] = saved_files(cache_home)
    return cache_home / name


def test_a_directory_others_can_write_is_not_used(cache_home):
    path = _saved_a(cache_home)
    os.chmod(cache_home, 0o777)
    assert parser_for(GRAMMAR_A)[1]  # built again, the good file not loaded
    assert parser_for(GRAMMAR_B)[1] and saved_files(cache_home) == [path.name]  # and nothing written there
    os.chmod(cache_home, 0o720)  # group-writable: the same
    assert parser_for(GRAMMAR_A)[1]
    os.chmod(cache_home, 0o700)
    assert not parser_for(GRAMMAR_A)[1]  # the check, not the file, made the difference


def test_a_symlinked_file_is_not_followed(cache_home, tmp_path):
    path = _saved_a(cache_home)
    elsewhere = tmp_path / "elsewhere.pickle"
    os.replace(path, elsewhere)
    path.symlink_to(elsewhere)
    assert parser_for(GRAMMAR_A)[1]


def test_a_symlinked_directory_is_not_used(tmp_path, monkeypatch):
    real = tmp_path / "real" / "paramsym"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "real"))
    monkeypatch.delenv("PARAMSYM_NO_CACHE", raising=False)
    _saved_a(real)
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "paramsym").symlink_to(real)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "linked"))
    assert parser_for(GRAMMAR_A)[1]
    assert parser_for(GRAMMAR_B)[1] and len(saved_files(real)) == 1  # nothing written through the link


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="giving a file to another user needs root")
@pytest.mark.parametrize("what", ["file", "directory"])
def test_a_file_or_directory_of_another_user_is_not_used(cache_home, what):
    path = _saved_a(cache_home)
    os.chown(path if what == "file" else cache_home, 65534, 65534)  # nobody
    assert parser_for(GRAMMAR_A)[1]


def test_a_fifo_under_the_cache_name_never_hangs_the_command(tmp_path, monkeypatch):
    """A FIFO planted where the cache file belongs: opening it for reading used to wait for a writer for
    ever. The command finishes with the right output (the timeout only guards against the hang)."""
    from helpers.cli_helpers import run

    folder = tmp_path / "paramsym"
    folder.mkdir(mode=0o700)
    path = parser_cache.path_for(parser_cache.key(syntax.grammar_text(), syntax._LARK_OPTIONS), folder)
    os.mkfifo(path, 0o600)
    monkeypatch.setenv("PARAMSYM_NO_CACHE", "1")
    expected = run("count", "input(32x32x3) > conv3x3(->16) > dense(->10)")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PARAMSYM_NO_CACHE", "0")
    result = run("count", "input(32x32x3) > conv3x3(->16) > dense(->10)", timeout=30)
    assert result.returncode == 0 and result.stdout == expected.stdout and expected.returncode == 0
    assert path.is_file() and not path.is_symlink()  # replaced by a real cache file, atomically
