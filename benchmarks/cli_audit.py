"""By-hand audit of the command line's robustness (not a test; run it by hand).

Takes every program of examples/*.psym, of the console examples in docs/*.md and README.md and of the code
blocks of the language reference, makes mutations of each (characters and tokens deleted, duplicated or
swapped; numbers replaced by 0, -1, 10**40, 1e400, a symbol, a float, `?`; huge repeats, nesting, `let`
chains, powers of sums; Unicode look-alikes, non-breaking spaces, CRLF, a byte order mark, tabs, very long
identifiers and lines) and runs each through the subcommands and run options, in-process through the real
entry point `paramsym.cli.main(argv)`, in one worker process with a time limit per case. Each case is
classified:

    ok           exit 0
    error        exit 2 with a message (line, column and caret when it is about the program text)
    TRACEBACK    an uncaught exception, an exit status not in {0, 2}, or a Python traceback in the output
    SLOW         more than 5 s of CPU time, or stopped after 20 s of wall time (40 s: the worker is killed)
    BAD-MESSAGE  an error without position about the program text, an empty message, the repr() of an
                 internal object, or a message that names Python internals
    BAD-OUTPUT   --format json that is not JSON, or an exported PyTorch module whose parameter count
                 differs from `count --format json`

    PYTHONPATH=src .venv/bin/python benchmarks/cli_audit.py [--per-seed N] [--seed S] [--limit N] [--out FILE]

The summary goes to standard output; every case that is not ok or error, with its argv, to --out (JSON lines).
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import multiprocessing
import os
import random
import re
import resource
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLOW = 5.0  # seconds: more is SLOW
ALARM = 20  # seconds of wall time: the worker stops the case
KILL = 40  # seconds: the parent kills the worker
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
TOKEN = re.compile(r"->|\*\*|[A-Za-z_][A-Za-z0-9_]*|[0-9][0-9_.]*(?:[eE][+-]?[0-9]+)?(?:x[0-9]+)*|\S")
NUMBER = re.compile(r"(?<![A-Za-z_0-9.])[0-9]+(?:\.[0-9]+)?(?![A-Za-z_0-9.])")
SYMBOL = re.compile(r"\b([A-Z][A-Za-z0-9_]*)\b(?!\s*\()")


# ---- seeds ------------------------------------------------------------------------------------------------


def seeds() -> list[tuple[str, str, list[str] | None]]:
    """(origin, program text, documented argv or None)."""
    found: list[tuple[str, str, list[str] | None]] = []
    for path in sorted((ROOT / "examples").glob("*.psym")):
        found.append((str(path.relative_to(ROOT)), path.read_text(), None))
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    language = Path("/work/shared/LANGUAGE.md")
    if language.exists():
        pages.append(language)
    for page in pages:
        text = page.read_text()
        for match in BLOCK.finditer(text):
            kind, body = match.groups()
            if kind == "console":
                for line in body.splitlines():
                    if not line.startswith("$ paramsym "):
                        continue
                    try:
                        argv = shlex.split(line[2:])[1:]
                    except ValueError:
                        continue
                    if len(argv) < 2 or argv[0] in ("import",) or argv[1].startswith("-"):
                        continue
                    program = argv[1]
                    if program.endswith(".psym") and (ROOT / program).exists():
                        program = (ROOT / program).read_text()
                    found.append((f"{page.name}: {line[2:80]}", program, argv))
            elif kind in ("", "text", "psym") and ("input(" in body or "->" in body) and "$ " not in body:
                found.append((f"{page.name}: block at {text[: match.start()].count(chr(10)) + 1}", body, None))
    unique: dict[str, tuple[str, str, list[str] | None]] = {}
    for origin, program, argv in found:
        key = program + "\0" + json.dumps(argv)
        unique.setdefault(key, (origin, program, argv))
    return list(unique.values())


# ---- mutations --------------------------------------------------------------------------------------------


def _split_statements(program: str) -> tuple[str, str]:
    """(the let/def statements, the network), roughly: the network starts at the first line that is neither."""
    lines = program.splitlines(keepends=True)
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith(("let ", "def ", "#")) and not line[:1].isspace():
            return "".join(lines[:i]), "".join(lines[i:])
    return "", program


def _replace_number(program: str, rng: random.Random, by: str) -> str:
    numbers = list(NUMBER.finditer(program))
    if not numbers:
        return program + " > dense(->" + by + ")"
    m = rng.choice(numbers)
    return program[: m.start()] + by + program[m.end() :]


def _token_edit(program: str, rng: random.Random, how: str) -> str:
    tokens = list(TOKEN.finditer(program))
    if len(tokens) < 2:
        return program
    i = rng.randrange(len(tokens) - 1)
    a, b = tokens[i], tokens[i + 1]
    if how == "delete":
        return program[: a.start()] + program[a.end() :]
    if how == "duplicate":
        return program[: a.end()] + " " + a.group() + program[a.end() :]
    return program[: a.start()] + b.group() + program[a.end() : b.start()] + a.group() + program[b.end() :]


def _char_edit(program: str, rng: random.Random, how: str) -> str:
    if len(program) < 2:
        return program
    i = rng.randrange(len(program) - 1)
    if how == "delete":
        return program[:i] + program[i + 1 :]
    if how == "duplicate":
        return program[: i + 1] + program[i:]
    return program[:i] + program[i + 1] + program[i] + program[i + 2 :]


def _symbol(program: str) -> str:
    lets = re.findall(r"^\s*let\s+([A-Za-z_]\w*)", program, re.M)
    if lets:
        return lets[0]
    found = SYMBOL.findall(program)
    return found[0] if found else "C"


MUTATIONS = {
    "delete char": lambda p, r: _char_edit(p, r, "delete"),
    "duplicate char": lambda p, r: _char_edit(p, r, "duplicate"),
    "swap chars": lambda p, r: _char_edit(p, r, "swap"),
    "delete token": lambda p, r: _token_edit(p, r, "delete"),
    "duplicate token": lambda p, r: _token_edit(p, r, "duplicate"),
    "swap tokens": lambda p, r: _token_edit(p, r, "swap"),
    "number -> 0": lambda p, r: _replace_number(p, r, "0"),
    "number -> -1": lambda p, r: _replace_number(p, r, "-1"),
    "number -> 10**40": lambda p, r: _replace_number(p, r, "10**40"),
    "number -> 1e400": lambda p, r: _replace_number(p, r, "1e400"),
    "number -> 1e39": lambda p, r: _replace_number(p, r, "1e39"),
    "number -> symbol": lambda p, r: _replace_number(p, r, "Z"),
    "number -> float": lambda p, r: _replace_number(p, r, "2.5"),
    "number -> ?": lambda p, r: _replace_number(p, r, "?"),
    "number -> power of a sum": lambda p, r: _replace_number(p, r, "(A+B+C+D)^40"),
    "number -> 2^C": lambda p, r: _replace_number(p, r, "2^Z"),
    "number -> tower": lambda p, r: _replace_number(p, r, "9^9^9"),
    "number -> 0.0001": lambda p, r: _replace_number(p, r, "0.0001"),
    "every number -> symbol": lambda p, r: NUMBER.sub(lambda m: f"S{m.start()}", p),
    "repeat 1000000": lambda p, r: (lambda s, n: s + "(" + n.rstrip("\n") + ") * 1000000\n")(*_split_statements(p)),
    "repeat 10**40": lambda p, r: (lambda s, n: s + "(" + n.rstrip("\n") + ") * 10**40\n")(*_split_statements(p)),
    "repeat symbolic": lambda p, r: (lambda s, n: s + "(" + n.rstrip("\n") + ") * L\n")(*_split_statements(p)),
    "nest 200 parentheses": lambda p, r: (lambda s, n: s + "(" * 200 + n.rstrip("\n") + ")" * 200 + "\n")(
        *_split_statements(p)
    ),
    "nest res 60": lambda p, r: (lambda s, n: s + "res(" * 60 + n.rstrip("\n") + ")" * 60 + "\n")(
        *_split_statements(p)
    ),
    "nested repeats": lambda p, r: (lambda s, n: s + "(" * 12 + n.rstrip("\n") + ") * 1000" * 12 + "\n")(
        *_split_statements(p)
    ),
    "let chain 3000 add": lambda p, r: (
        "let Q0 = 1\n" + "".join(f"let Q{i} = Q{i - 1} + 1\n" for i in range(1, 3000)) + _replace_number(p, r, "Q2999")
    ),
    "let chain 60 square": lambda p, r: (
        "let Q0 = 2\n"
        + "".join(f"let Q{i} = Q{i - 1} * Q{i - 1}\n" for i in range(1, 60))
        + _replace_number(p, r, "Q59")
    ),
    "let chain symbolic": lambda p, r: (
        "let Q0 = Z\n"
        + "".join(f"let Q{i} = Q{i - 1} * (Q{i - 1} + Y)\n" for i in range(1, 30))
        + _replace_number(p, r, "Q29")
    ),
    "unicode arrow": lambda p, r: p.replace("->", "\u2192", 1),
    "unicode times": lambda p, r: re.sub(r"(\d)x(\d)", "\\1\u00d7\\2", p, count=1),
    "unicode minus": lambda p, r: p.replace("-", "\u2212", 1),
    "unicode nbsp": lambda p, r: p.replace(" ", "\u00a0", 1),
    "fullwidth paren": lambda p, r: p.replace("(", "\uff08", 1),
    "unicode greater": lambda p, r: p.replace(">", "\u203a", 1) if ">" in p else p,
    "smart quotes": lambda p, r: "\u201c" + p + "\u201d",
    "zero width space": lambda p, r: p.replace(">", "\u200b>", 1),
    "CRLF": lambda p, r: p.replace("\n", "\r\n"),
    "CR only": lambda p, r: p.replace("\n", "\r"),
    "BOM": lambda p, r: "\ufeff" + p,
    "tabs": lambda p, r: p.replace("  ", "\t"),
    "long identifier": lambda p, r: _replace_number(p, r, "Z" * 20_000),
    "long layer name": lambda p, r: p.replace("relu", "r" * 5_000, 1) if "relu" in p else "q" * 5000 + " > " + p,
    "long line": lambda p, r: p.rstrip("\n") + " > relu" * 60 + " > cnov3x3(->4)\n",
    "NUL byte": lambda p, r: p.replace(">", "\0>", 1),
    "ANSI escape": lambda p, r: p.replace(">", "\x1b[31m>", 1),
    "empty": lambda p, r: "",
    "only comment": lambda p, r: "# nothing\n",
    "truncated half": lambda p, r: p[: len(p) // 2],
    "dense symbolic huge": lambda p, r: p.rstrip("\n") + " > dense(->10**40)\n",
}

# How a mutated program is delivered: as the argument (default), or in a file (BOM and line endings matter there)
FILE_DELIVERED = {"CRLF", "CR only", "BOM", "NUL byte"}


# ---- commands ---------------------------------------------------------------------------------------------


def commands(program: str, symbol: str) -> list[list[str]]:
    """Every subcommand and run option, each with a program placeholder {P}."""
    s = symbol
    return [
        ["count", "{P}", "--format", "json"],
        ["count", "{P}", "--format", "csv"],
        ["count", "{P}", "--format", "markdown"],
        ["count", "{P}", "--format", "latex"],
        ["count", "{P}"],
        ["count", "{P}", "--fold"],
        ["count", "{P}", "--all"],
        ["explain", "{P}"],
        ["formula", "{P}"],
        ["formula", "{P}", "--view", "factored"],
        ["formula", "{P}", "--view", "collected", "--by", s],
        ["formula", "{P}", "--view", "per-layer"],
        ["formula", "{P}", "--view", "generic"],
        ["formula", "{P}", "--diff", s],
        ["formula", "{P}", "--on", "macs"],
        ["solve", "{P}", "--for", s, "--budget", "7B"],
        ["solve", "{P}", "--for", s, "--budget", "1M", "--format", "json"],
        ["solve", "{P}", "--for", s, "--budget", "0"],
        ["solve", "{P}", "--for", s, "--budget", "-5"],
        ["solve", "{P}", "--for", s, "--budget", "1e400"],
        ["solve", "{P}", "--for", s, "--budget", "10**40"],
        ["solve", "{P}", "--for", s, "--budget", "abc"],
        ["solve", "{P}", "--for", s, "--budget", "16GB", "--on", "memory"],
        ["solve", "{P}", "--for", s, "--budget", "1G", "--on", "macs", "--at-least"],
        ["solve", "{P}", "--for", s, "--budget", "1000", "--exact"],
        ["solve", "{P}", "--for", "NOPE", "--budget", "1M"],
        ["sweep", "{P}", "--grid", f"{s}=1:64:8"],
        ["sweep", "{P}", "--grid", f"{s}=1:64:8", "--format", "json"],
        ["sweep", "{P}", "--grid", f"{s}=1:64:8", "--format", "csv", "--budget", "1M"],
        ["sweep", "{P}", "--grid", f"{s}=1:0"],
        ["sweep", "{P}", "--grid", f"{s}=a"],
        ["sweep", "{P}", "--grid", f"{s}=1:1e12"],
        ["sweep", "{P}", "--grid", f"{s}=1:10**40:10**38"],
        ["sweep", "{P}", "--grid", f"{s}=0,-1,2.5"],
        ["sweep", "{P}", "--grid", f"{s}=1e400"],
        ["latex", "{P}"],
        ["latex", "{P}", "--standalone", "--group-digits"],
        ["latex", "{P}", "--symbol", f"{s}=\\alpha"],
        ["latex", "{P}", "--symbol", "nonsense"],
        ["export", "{P}", "--to", "torch"],
        ["export", "{P}", "--to", "keras"],
        ["count", "{P}", "--format", "json", "--dtype", "bfloat16"],
        ["count", "{P}", "--dtype", "int8"],
        ["count", "{P}", "--dtype", "fp7"],
        ["count", "{P}", "--dtype", ""],
        ["count", "{P}", "--weights", "int4", "--kv", "fp8", "--activations", "float16"],
        ["count", "{P}", "--train"],
        ["count", "{P}", "--train", "--optimizer", "adam", "--precision", "mixed-bf16", "--format", "json"],
        ["count", "{P}", "--train", "--recompute", "full", "--batch", "8"],
        ["count", "{P}", "--train", "--batch", "B"],
        ["count", "{P}", "--batch", "0"],
        ["count", "{P}", "--batch", "-1"],
        ["count", "{P}", "--batch", "1e400"],
        ["count", "{P}", "--batch", "10**40"],
        ["count", "{P}", "--batch", "2.5"],
        ["count", "{P}", "--device", "h100"],
        ["count", "{P}", "--device", "bogus"],
        ["count", "{P}", "--device", "1,2"],
        ["count", "{P}", "--device", "1e400,1e400,1e400"],
        ["count", "{P}", "--device", "0,0,0GB"],
        ["count", "{P}", "--train", "--tokens", "1T", "--device", "a100", "--mfu", "0.4"],
        ["count", "{P}", "--train", "--tokens", "1T", "--device", "a100", "--mfu", "2"],
        ["count", "{P}", "--train", "--tokens", "1T", "--device", "a100", "--mfu", "-1"],
        ["count", "{P}", "--train", "--tokens", "1T", "--device", "a100", "--mfu", "abc"],
        ["count", "{P}", "--train", "--tokens", "1e400", "--device", "a100", "--mfu", "0.5"],
        ["count", "{P}", "--train", "--tokens", "0", "--device", "a100", "--mfu", "0.5"],
        ["count", "{P}", "--train", "--gpus", "8", "--zero", "3", "--tp", "2", "--pp", "2"],
        ["count", "{P}", "--train", "--gpus", "0"],
        ["count", "{P}", "--train", "--gpus", "3", "--tp", "2"],
        ["count", "{P}", "--attention", "fused", "--format", "json"],
        ["count", "{P}", "--set", f"{s}=0"],
        ["count", "{P}", "--set", f"{s}=10**40"],
        ["count", "{P}", "--set", f"{s}=1e400"],
        ["count", "{P}", "--set", f"{s}=2^100000"],
        ["count", "{P}", "--set", f"{s}=(A+B+C)^60"],
        ["count", "{P}", "--set", f"{s}={s}"],
        ["count", "{P}", "--set", f"{s}=2{s}"],
        ["count", "{P}", "--convention", "keras", "--format", "json"],
    ]


# ---- the worker -------------------------------------------------------------------------------------------


class _Alarm(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Alarm()


INTERNAL = re.compile(
    r"<[\w.]+ object at 0x|\b(?:Symbol|Integer|Rational|Float|Add|Mul|Pow|Token|Tree|Piecewise)\(|"
    r"\b(?:sympy|lark|NoneType|KeyError|AttributeError|TypeError|ValueError|IndexError|RecursionError|"
    r"ZeroDivisionError|OverflowError|AssertionError|UnexpectedToken|UnexpectedCharacters|"
    r"UnexpectedEOF|SympifyError|PolynomialError|NotImplementedError)\b|__\w+__|\bself\.|"
    r"\bparamsym\.\w|\bzoo\b|\bnan\b|ComplexInfinity|\bTrue\b|\bFalse\b|\bNone\b"
)
PROGRAM_KINDS = ("syntax error", "name error", "shape error", "argument error", "evaluation error")


def classify(argv, code, out, err, elapsed, exception) -> tuple[str, str]:
    if exception is not None:
        return ("SLOW", "stopped by the alarm") if exception == "alarm" else ("TRACEBACK", exception)
    if elapsed > SLOW:
        return "SLOW", f"{elapsed:.1f} s"
    if code not in (0, 2) or "Traceback" in out or "Traceback" in err or "internal error" in err:
        return "TRACEBACK", f"exit {code}: " + (err or out)[-1500:]
    if code == 0:
        return "ok", ""
    message = err.strip()
    if not message:
        return "BAD-MESSAGE", "empty message"
    first = message.splitlines()[0]
    hit = INTERNAL.search(message)
    if hit and not message.startswith(("Usage:", "Error:")):
        return "BAD-MESSAGE", f"internal name {hit.group()!r}: {message[:600]}"
    kind = first.split(":")[0]
    if kind in PROGRAM_KINDS and ("  --> line " not in message or "^" not in message):
        return "BAD-MESSAGE", "no position: " + message[:600]
    if len(message) > 6000:
        return "BAD-MESSAGE", f"message of {len(message):,} characters: " + message[:300]
    return "error", ""


def _torch_params(source: str) -> int:
    import torch

    namespace: dict = {"__name__": "exported"}
    exec(compile(source, "<export>", "exec"), namespace)  # our own output, not user text
    with torch.device("meta"):
        model = namespace["build_model"]()
    return sum(p.numel() for p in model.parameters())


def worker(connection, tmpdir: str) -> None:
    os.environ["COLUMNS"] = "100"
    os.environ["NO_COLOR"] = "1"
    resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    import traceback

    from paramsym.cli import main

    signal.signal(signal.SIGALRM, _on_alarm)
    real_out, real_err = sys.stdout, sys.stderr
    while True:
        job = connection.recv()
        if job is None:
            return
        argv, program, delivery = job
        if delivery == "file":
            path = os.path.join(tmpdir, "program.psym")
            with open(path, "w", encoding="utf-8", newline="") as handle:
                handle.write(program)
            program_arg = path
        else:
            program_arg = program
        argv = [program_arg if a == "{P}" else a for a in argv]
        out, err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = out, err
        exception = None
        code = None
        start = time.process_time()  # CPU time: the machine is shared, and wall time counts the others' work
        signal.alarm(ALARM)
        try:
            code = main(argv)
        except _Alarm:
            exception = "alarm"
        except BaseException:
            exception = traceback.format_exc()[-2000:]
        finally:
            signal.alarm(0)
            sys.stdout, sys.stderr = real_out, real_err
        elapsed = time.process_time() - start
        extra = None
        if code == 0 and argv[0] == "export" and argv[argv.index("--to") + 1] == "torch":
            signal.alarm(ALARM)
            try:
                extra = ("torch", _torch_params(out.getvalue()))
            except _Alarm:
                extra = ("torch-error", "alarm")
            except BaseException:
                extra = ("torch-error", traceback.format_exc()[-1500:])
            finally:
                signal.alarm(0)
        if code == 0 and argv[0] == "count" and "--format" in argv and argv[argv.index("--format") + 1] == "json":
            try:
                document = json.loads(out.getvalue())
                extra = ("params", document["params"]["value"])
            except (ValueError, KeyError, TypeError) as error:
                extra = ("not-json", str(error))
        connection.send((code, out.getvalue()[-20000:], err.getvalue()[-20000:], elapsed, exception, extra))


class Runner:
    """One worker process; a case past KILL seconds kills it and a new one starts."""

    def __init__(self, tmpdir: str):
        self.tmpdir = tmpdir
        self.start()

    def start(self) -> None:
        self.parent, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=worker, args=(child, self.tmpdir), daemon=True)
        self.process.start()

    def run(self, argv, program, delivery):
        self.parent.send((argv, program, delivery))
        if self.parent.poll(KILL):
            try:
                return self.parent.recv()
            except EOFError:
                pass
        else:
            self.process.kill()
        self.process.join()
        crashed = self.process.exitcode
        self.start()
        return (None, "", "", KILL, "alarm" if crashed == -9 else f"worker died: exit {crashed}", None)


# ---- the audit --------------------------------------------------------------------------------------------


def cases(per_seed: int, originals: int, rng: random.Random):
    """(origin, mutation, argv with {P}, program, delivery)."""
    for origin, program, documented in seeds():
        symbol = _symbol(program)
        every = commands(program, symbol)
        if documented is not None:
            yield origin, "documented", ["{P}" if i == 1 else a for i, a in enumerate(documented)], program, "arg"
        # the program itself through a sample of subcommands (all of them for small programs)
        export = ["export", "{P}", "--to", "torch"]
        others = [argv for argv in every[1:] if argv != export]
        chosen = [every[0], export, *rng.sample(others, originals if len(program) < 400 else max(originals // 3, 1))]
        for argv in chosen:
            yield origin, "original", argv, program, "arg"
        names = rng.sample(sorted(MUTATIONS), min(per_seed, len(MUTATIONS)))
        for name in names:
            mutated = MUTATIONS[name](program, rng)
            delivery = "file" if name in FILE_DELIVERED else "arg"
            if delivery == "arg" and "\0" in mutated:
                delivery = "file"
            yield origin, name, ["count", "{P}", "--format", "json"], mutated, delivery
            yield origin, name, export if rng.random() < 0.25 else rng.choice(every), mutated, delivery


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-seed", type=int, default=8, help="mutations of each program")
    parser.add_argument("--originals", type=int, default=16, help="subcommands the unchanged program goes through")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="stop after N cases")
    parser.add_argument("--out", default="cli_audit_findings.jsonl")
    parser.add_argument("--only", default="", help="only seeds whose origin contains this")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    totals: collections.Counter = collections.Counter()
    by_mutation: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    torch_checked = torch_equal = 0
    started = time.time()
    with tempfile.TemporaryDirectory() as tmpdir, open(args.out, "w") as findings:
        runner = Runner(tmpdir)
        params_of: dict[str, int | None] = {}
        for n, (origin, mutation, argv, program, delivery) in enumerate(cases(args.per_seed, args.originals, rng)):
            if args.limit and n >= args.limit:
                break
            if args.only and args.only not in origin:
                continue
            code, out, err, elapsed, exception, extra = runner.run(argv, program, delivery)
            cls, detail = classify(argv, code, out, err, elapsed, exception)
            if extra is not None and extra[0] == "params" and argv == ["count", "{P}", "--format", "json"]:
                params_of[program] = extra[1]
            if extra is not None and extra[0] == "not-json":
                cls, detail = "BAD-OUTPUT", "not JSON: " + extra[1]
            elif extra is not None and extra[0] != "params":
                expected = params_of.get(program)
                if extra[0] == "torch-error":
                    cls, detail = "BAD-OUTPUT", "the exported module does not build: " + str(extra[1])
                elif expected is not None:
                    torch_checked += 1
                    if extra[1] == expected:
                        torch_equal += 1
                    else:
                        cls, detail = "BAD-OUTPUT", f"torch counts {extra[1]:,}, count says {expected:,}"
            totals[cls] += 1
            by_mutation[mutation][cls] += 1
            if cls not in ("ok", "error"):
                shown = [a if a != "{P}" else "PROGRAM" for a in argv]
                record = {
                    "class": cls,
                    "origin": origin,
                    "mutation": mutation,
                    "argv": shown,
                    "delivery": delivery,
                    "program": program if len(program) < 3000 else program[:3000] + "...",
                    "elapsed": round(elapsed, 2),
                    "detail": detail[:3000],
                }
                findings.write(json.dumps(record) + "\n")
                findings.flush()
                print(f"[{n}] {cls} {origin} / {mutation}: {' '.join(shown)[:100]} -- {detail[:200]!r}", flush=True)
        runner.parent.send(None)
    print(f"\n{sum(totals.values()):,} cases in {time.time() - started:.0f} s")
    for cls in ("ok", "error", "TRACEBACK", "SLOW", "BAD-MESSAGE", "BAD-OUTPUT"):
        print(f"  {cls:12} {totals[cls]:6,}")
    print(f"  exported PyTorch modules compared: {torch_checked:,}, equal: {torch_equal:,}")
    bad = {m: c for m, c in by_mutation.items() if set(c) - {"ok", "error"}}
    for mutation, counter in sorted(bad.items()):
        print(f"  {mutation}: {dict(counter)}")


if __name__ == "__main__":
    main()
