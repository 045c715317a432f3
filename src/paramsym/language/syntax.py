"""Text to syntax tree: the Lark grammar, a postlexer for newlines, and a
transformer that builds AST dataclasses with SymPy expressions inside.

Nothing here evaluates input as Python: numbers are read with `int`, names
become `sympy.Symbol`, and every operator builds its SymPy node directly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

import sympy
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from .. import expansion
from ..errors import (
    ParamsymError,
    ParamsymLimitError,
    ParamsymNameError,
    ParamsymSyntaxError,
    ParamsymUsageError,
    Position,
)
from . import lalr, parser_cache

# Limits that keep hostile input fast: see docs/language.md, "Limits".
MAX_SOURCE_CHARS = 2_000_000
MAX_NESTING = 64
MAX_OPERATORS = 10_000  # arithmetic operators in a whole program; real ones have a few hundred
MAX_SYMBOLIC_EXPONENT = 64
MAX_SYMBOLS = 1_000  # different symbols (not lets) in one program; printing sorts each formula over all of them
MAX_NUMBER_DIGITS = 100
MAX_NAME_CHARS = 100  # characters in one name: every message and formula that shows it stays readable
MAX_NUMBER_BITS = 8192  # ~2,466 decimal digits; printing stays far below Python's 4,300-digit guard

Expr = sympy.Expr


# ---- syntax tree ---------------------------------------------------------------


@dataclass(frozen=True)
class Channels:
    """`A->B` or `->B` (cin is None); `cin_pos` and `cout_pos` are where each count is written."""

    cin: Expr | None
    cout: Expr
    pos: Position
    cin_pos: Position | None = None
    cout_pos: Position | None = None


@dataclass(frozen=True)
class Keyword:
    """`name=value`; value is a tuple of expressions (`3x3` gives two)."""

    name: str
    value: tuple
    pos: Position


@dataclass(frozen=True)
class Positional:
    """A bare value: a flag such as `bias`, a size such as `224x224x3`, or `0.5`."""

    value: tuple
    pos: Position

    @property
    def flag(self) -> str | None:
        """The name, when the argument is a single bare name (`bias`, `ceil`)."""
        if len(self.value) == 1 and isinstance(self.value[0], sympy.Symbol):
            return self.value[0].name
        return None


Argument = Channels | Keyword | Positional


def reference(value) -> str | None:
    """The name of a value an argument refers to (`source=@memory`: "memory"), or None for an expression. The
    grammar writes `KEY=@NAME` as the one symbol `@NAME`, which no expression can spell."""
    if isinstance(value, sympy.Symbol) and value.name.startswith("@"):
        return value.name[1:]
    return None


@dataclass(frozen=True)
class Call:
    """A layer or a block used as a stage: `conv3x3(32->64, bias)`, `relu`."""

    name: str
    args: tuple
    pos: Position


@dataclass(frozen=True)
class Sequence:
    """Stages joined by `>`."""

    stages: tuple
    pos: Position


@dataclass(frozen=True)
class Repeat:
    """`(SEQ) * N`."""

    body: Sequence
    count: Expr
    pos: Position


@dataclass(frozen=True)
class Composite:
    """`res(...)`, `add(...)`, `concat(...)`, `mul(...)`, `sub(...)`, `sk(...)`, `aux(...)` or `moe(..., experts=E,
    top=k)` with its branches (and the keywords of moe)."""

    kind: str
    branches: tuple
    pos: Position
    args: tuple = ()


@dataclass(frozen=True)
class Named:
    """`LAYER as NAME`: a layer another one can share its weight with (`dense(..., tie=NAME)`)."""

    call: Call
    name: str
    pos: Position  # of the name


@dataclass(frozen=True)
class Kept:
    """`(SEQ) as NAME`: the value SEQ gives, known by NAME to the stages after it (`@NAME`)."""

    body: Sequence
    name: str
    pos: Position  # of the name


@dataclass(frozen=True)
class Fetch:
    """`@NAME`: the value named NAME earlier (`STAGE as NAME`), instead of the value before it."""

    name: str
    pos: Position  # of the `@`


Stage = Call | Sequence | Repeat | Composite | Named | Kept | Fetch


@dataclass(frozen=True)
class Let:
    name: str
    value: Expr
    pos: Position


@dataclass(frozen=True)
class Define:
    name: str
    params: tuple
    body: Sequence
    pos: Position


@dataclass(frozen=True)
class Program:
    statements: tuple
    network: Sequence
    source: str


# ---- expressions ------------------------------------------------------------------


@cache
def symbol(name: str) -> sympy.Symbol:
    """Every name in a program is a positive integer unless said otherwise."""
    return sympy.Symbol(name, integer=True, positive=True)


FUNCTIONS = {"floor": sympy.floor, "ceil": sympy.ceiling, "min": sympy.Min, "max": sympy.Max}
FUNCTION_ARITY = {"floor": 1, "ceil": 1, "min": None, "max": None}

# Names the grammar reserves, so they cannot be symbols.
KEYWORDS = ("let", "def", "x", "res", "add", "concat", "mul", "sub", "seqcat", "sk", "moe", "aux", "as")


def pos_of(token: Token) -> Position:
    return Position(token.line, token.column)


def number_bits(value) -> int:
    """The size of an int, Fraction or SymPy rational in bits: that of the larger of its numerator and
    denominator (0 for anything else)."""
    if isinstance(value, int):
        return abs(value).bit_length()
    if isinstance(value, (Fraction, sympy.Rational)):
        return max(abs(int(value.numerator)).bit_length(), int(value.denominator).bit_length())
    return 0


def too_large(what: str, bits: int, pos: Position | None = None) -> ParamsymLimitError:
    """The error for a number beyond MAX_NUMBER_BITS made anywhere (a value, a count, a size): it gives the
    size in bits, never the number (str() of an int above 4,300 digits raises, and it would not help)."""
    return ParamsymLimitError(
        f"{what} is too large: a number of {bits:,} bits, and paramsym works with numbers of at most "
        f"{MAX_NUMBER_BITS:,} bits (about 2,466 digits)",
        pos=pos,
        hint="channel counts and sizes this large are certainly a typo",
    )


def oversized_number(expr, seen: set | None = None) -> int:
    """The size in bits of the first number written in a formula that exceeds MAX_NUMBER_BITS, else 0.
    Printing a formula then never meets Python's 4,300-digit limit of int to str. `seen` holds the
    sub-formulas found fine already: the layers of a network share most of theirs (a shape passed on)."""
    if not isinstance(expr, sympy.Basic):
        return 0
    seen = set() if seen is None else seen
    stack = [expr]
    while stack:
        node = stack.pop()
        if node.is_Rational:
            bits = number_bits(node)
            if bits > MAX_NUMBER_BITS:
                return bits
        elif node.args and node not in seen:
            seen.add(node)
            stack.extend(node.args)
    return 0


def _too_large(pos: Position) -> ParamsymLimitError:
    return ParamsymLimitError(
        f"number too large: paramsym works with numbers of at most {MAX_NUMBER_BITS} bits",
        pos=pos,
        hint="channel counts and sizes this large are certainly a typo",
    )


def _check_size(value: Expr, pos: Position) -> Expr:
    coeff = value.as_coeff_Mul()[0] if isinstance(value, sympy.Mul) else value
    if isinstance(coeff, sympy.Rational) and max(abs(coeff.p).bit_length(), coeff.q.bit_length()) > MAX_NUMBER_BITS:
        raise _too_large(pos)
    return value


_DECIMAL = re.compile(r"([0-9][0-9_]*)?(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?")


def decimal_value(text: str, pos: Position | None = None) -> Fraction:
    """`64`, `1_000_000`, `0.5`, `1e3`, `1.5e3` as an exact fraction (ASCII digits only).

    A number may have at most MAX_NUMBER_DIGITS digits, counting those an exponent adds
    (`1e99` is fine, `1e100` is not), so that no exponent can make a gigantic number."""
    match = _DECIMAL.fullmatch(text)
    if not match or not (match.group(1) or match.group(2)):
        raise ParamsymSyntaxError(f"{text!r} is not a number", pos=pos)
    whole, frac, exponent = (match.group(1) or "").replace("_", ""), match.group(2) or "", match.group(3)
    digits = len(whole) + len(frac)
    if exponent is None:
        if digits > MAX_NUMBER_DIGITS:
            raise ParamsymLimitError(
                f"number too long: {digits} digits, at most {MAX_NUMBER_DIGITS} are accepted", pos=pos
            )
        shift = 0
    else:
        size = exponent.lstrip("+-").lstrip("0") or "0"
        shift = (-1 if exponent.startswith("-") else 1) * (int(size) if len(size) <= 6 else 10**6)
        if digits + abs(shift) > MAX_NUMBER_DIGITS:
            shown = text if len(text) <= 30 else text[:24] + "..."
            raise ParamsymLimitError(
                f"number too long: {shown} has more than {MAX_NUMBER_DIGITS} digits written out, and at most "
                f"{MAX_NUMBER_DIGITS} are accepted",
                pos=pos,
                hint="channel counts and sizes this large are certainly a typo",
            )
    value = Fraction(int(whole or "0") * 10 ** len(frac) + int(frac or "0"), 10 ** len(frac))
    return value * 10**shift if shift >= 0 else value / 10**-shift


def read_number(token: Token) -> sympy.Rational:
    """`64`, `1_000_000`, `0.5`, `1e3` as an exact SymPy number."""
    text = token.value
    if len(text) <= MAX_NUMBER_DIGITS and text.isdigit() and text.isascii():  # the usual `64`, read at once
        return sympy.Integer(int(text))
    value = decimal_value(text, pos_of(token))
    return (
        sympy.Integer(value.numerator) if value.denominator == 1 else sympy.Rational(value.numerator, value.denominator)
    )


# A count on the command line (`--set`, `--budget`, `--grid`, `--batch`): a number as in the language, then
# an optional unit (docs/cli.md, "Units"). Decimal counts k M G B T (B is a billion: `7B` parameters),
# binary counts Ki Mi Gi Ti, and bytes kB KB MB GB TB PB (powers of 1000) and KiB MiB GiB TiB PiB (powers of 1024).
# A byte unit is taken only where a number of bytes is asked.
_AMOUNT = re.compile(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*")
_NUMBER_START = re.compile(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)?\s*([A-Za-z]*)")
# unit: (factor, "count" or "bytes", what it is called)
UNITS: dict[str, tuple[int, str, str]] = {
    "": (1, "count", ""),
    "k": (10**3, "count", "thousand"),
    "M": (10**6, "count", "million"),
    "G": (10**9, "count", "billion"),
    "B": (10**9, "count", "billion"),
    "T": (10**12, "count", "trillion"),
    "Ki": (2**10, "count", "kibi, 1,024"),
    "Mi": (2**20, "count", "mebi, 1,048,576"),
    "Gi": (2**30, "count", "gibi, 2^30"),
    "Ti": (2**40, "count", "tebi, 2^40"),
    "kB": (10**3, "bytes", "kilobytes"),
    "KB": (10**3, "bytes", "kilobytes"),
    "MB": (10**6, "bytes", "megabytes"),
    "GB": (10**9, "bytes", "gigabytes"),
    "TB": (10**12, "bytes", "terabytes"),
    "PB": (10**15, "bytes", "petabytes"),
    "KiB": (2**10, "bytes", "kibibytes"),
    "MiB": (2**20, "bytes", "mebibytes"),
    "GiB": (2**30, "bytes", "gibibytes"),
    "TiB": (2**40, "bytes", "tebibytes"),
    "PiB": (2**50, "bytes", "pebibytes"),
}
# the count unit of the same size as a byte unit: what to write where a count is asked
_AS_COUNT = {"kB": "k", "KB": "k", "MB": "M", "GB": "G", "TB": "T", "KiB": "Ki", "MiB": "Mi", "GiB": "Gi", "TiB": "Ti"}
# words people write for a unit
_WORDS = {
    "thousand": "k",
    "million": "M",
    "billion": "B",
    "trillion": "T",
    "byte": "",
    "bytes": "",
}
MAX_COUNT_DIGITS = 40
COUNT_EXAMPLES = "64, 1_000_000, 25.6M, 7B, 4Ki or 1e6"


def unit_suggestion(unit: str) -> str | None:
    """The unit people meant by a spelling paramsym does not take (`gb`: GB, `7b`: B, `K`: k), or None
    when `unit` is no near miss (then `2C` is a formula, not a number with a unit)."""
    if unit in UNITS:
        return None
    if unit.lower() in _WORDS:
        return _WORDS[unit.lower()]
    same = [u for u in UNITS if u and u.lower() == unit.lower()]
    return same[0] if same else None


def count_unit(text: str) -> str | None:
    """The unit written after the number (`4Ki`: "Ki", `64`: ""), or None when `text` is no number with a
    unit paramsym takes or nearly takes (`2C` is a formula)."""
    match = _AMOUNT.fullmatch(text)
    if not match or (match.group(2) not in UNITS and unit_suggestion(match.group(2)) is None):
        return None
    return match.group(2)


def looks_like_count(text: str) -> bool:
    """`64`, `1_000`, `25.6M`, `4Ki`, `16GB`, `1e3`, and near misses such as `16gb` (refused with a
    suggestion): a number with a unit, not a formula."""
    return count_unit(text) is not None


def _label(what: str, shown: str) -> str:
    """The option and its value: `--budget '16gb'`, `--set T=16gb`, `--grid T=1KiB` (the value at fault)."""
    return f"{what}={shown}" if what.startswith(("--set ", "--grid ")) else f"{what} {shown!r}"


def _caret(text: str, start: int, end: int) -> str:
    """`text` with carets under [start, end), indented: the bad spot of an option's value."""
    shown = text.translate(_CONTROL)
    return f"\n    {shown}\n    {' ' * start}{'^' * max(end - start, 1)}"


_CONTROL = dict.fromkeys((*range(32), 127), "?")


def parse_count(text: str, what: str, unit: str = "count", asked: str = "") -> int:
    """A count from the command line: `500000`, `1_000_000`, `25.6M`, `7B`, `4Ki`, `1e6`; where `unit` is
    "bytes" also `16GB`, `80GiB`. `what` names the option (`--budget`, `--set T`); `asked` says what the
    option takes, for the message refusing bytes where a count is asked.

    At most MAX_COUNT_DIGITS digits: a count below 10^40. A value that is no whole number (`0.3Ki`) is
    refused; nothing is evaluated."""
    stripped = text.strip()
    shown = stripped if len(stripped) <= 50 else stripped[:44] + "..."
    match = _AMOUNT.fullmatch(text)
    if not match:
        raise _not_a_count(text, what, shown)
    number, written = match.group(1), match.group(2)
    if written not in UNITS:
        raise _unknown_unit(text, what, shown, match)
    factor, kind, _ = UNITS[written]
    try:
        value = decimal_value(number) * factor
    except ParamsymLimitError:
        value = None
    if value is None or len(str(int(value))) > MAX_COUNT_DIGITS:
        raise ParamsymUsageError(
            f"{what} {shown!r} has more than {MAX_COUNT_DIGITS} digits, and at most {MAX_COUNT_DIGITS} are accepted"
        )
    if kind == "bytes" and unit != "bytes":
        same = f"{number}{_AS_COUNT[written]}" if written in _AS_COUNT else None
        exactly = f"{int(value):,}" if value.denominator == 1 else None
        raise ParamsymUsageError(
            f"{_label(what, shown)}: {written} is a unit of bytes, and {asked or what + ' takes a count'}",
            hint="give a count such as "
            + (f"{same} ({exactly})" if same and exactly else same or (exactly or "").replace(",", "_")),
        )
    if value.denominator != 1:
        raise ParamsymUsageError(
            f"{what} must be a whole number, not {shown!r} (= {_decimal_text(value)})",
            hint="a count is a whole number: 1.5Ki is 1,536, 0.3Ki is 307.2" if written else None,
        )
    return int(value)


def _decimal_text(value: Fraction) -> str:
    """`307.2`: a number read from decimal text, so a finite decimal (a power of ten below its digits)."""
    for places in range(1, MAX_NUMBER_DIGITS + 1):
        scaled = value * 10**places
        if scaled.denominator == 1:
            whole, part = divmod(int(scaled), 10**places)
            return f"{whole:,}.{part:0{places}d}"
    return f"{value.numerator}/{value.denominator}"


def _not_a_count(text: str, what: str, shown: str) -> ParamsymUsageError:
    """The error for a value that is no number with a unit: the caret under the first character that
    does not belong, when a number comes before it (`1,000`, `16 GB!`)."""
    start = _NUMBER_START.match(text)
    message = f"{what} must be a whole number such as {COUNT_EXAMPLES}, not {shown!r}"
    hint = None
    if start and start.group(1) and len(text) <= 60:
        bad = start.end()
        message += _caret(text, bad, bad + 1)
        if text[bad] == ",":
            hint = f"a comma does not group digits here: write {text.strip().replace(',', '_')}"
        elif text[bad] in "+-*/^( ":
            hint = "a count is one number, not a formula"
    return ParamsymUsageError(message, hint=hint)


def _unknown_unit(text: str, what: str, shown: str, match: re.Match) -> ParamsymUsageError:
    number, written = match.group(1), match.group(2)
    message = f"{_label(what, shown)}: {written} is not a unit paramsym knows"
    if len(text) <= 60:
        message += _caret(text, match.start(2), match.end(2))
    meant = unit_suggestion(written)
    units = "k M G B T, Ki Mi Gi Ti, and for bytes kB MB GB TB PB, KiB MiB GiB TiB PiB"
    if written == "K":
        hint = (
            f"did you mean {number}k ({number} thousand) or {number}Ki ({number} x 1,024)? "
            f"A 4K context is often 4Ki = 4,096"
        )
    elif meant is not None:
        meaning = UNITS[meant][2]
        bits = written[0].isupper() and written.endswith("b") and meant.endswith("B")  # Gb: gigabits
        hint = (
            f"did you mean {number}{meant}"
            + (f" ({meaning}; b is bits)" if bits else f" ({meaning})" if meaning else "")
            + f"? the units are {units}"
        )
    else:
        hint = f"the units are {units}"
    return ParamsymUsageError(message, hint=hint)


def build_power(base: Expr, exponent: Expr, pos: Position) -> Expr:
    """`base ^ exponent`, refusing towers like 9^9^9^9 before SymPy computes them."""
    if base.is_Number and exponent.is_Number:
        if base == 0 and exponent.is_negative:
            raise ParamsymError("division by zero: 0 to a negative power", pos=pos)
        if abs(base) > 1 and exponent.is_Rational:
            bits = abs(float(exponent)) * math.log2(max(abs(float(base.p)), abs(float(base.q)), 2.0))
            if bits > MAX_NUMBER_BITS:
                raise _too_large(pos)
    elif base.free_symbols and not (exponent.is_Integer and abs(exponent) <= MAX_SYMBOLIC_EXPONENT):
        # (C+1)^100000 or C^C^C^... would make SymPy build gigantic expressions; 2^C is fine.
        raise ParamsymLimitError(
            f"a power of a formula with symbols needs a whole-number exponent of at most {MAX_SYMBOLIC_EXPONENT}",
            pos=pos,
        )
    return _check_size(sympy.Pow(base, exponent), pos)


def _bounded(value: Expr, pos: Position) -> Expr:
    """`value`, refused where it is written when multiplying it out would be too large ((A+B+C+D)^64)."""
    return expansion.check(value, "this formula", pos)


# The names used as symbols in the program being parsed, and those its lets define (a chain of 5,000 lets
# is fine: the cap is on the symbols that stay free). Emptied before each parse; parsing is not reentrant.
_NAMES: set = set()
_LETS: set = set()


# ---- transformer ----------------------------------------------------------------------


class Located(tuple):
    """An expression with the position where its text starts (only while parsing)."""

    __slots__ = ()

    def __new__(cls, expr: Expr, pos: Position):
        return tuple.__new__(cls, (expr, pos))

    expr = property(lambda self: self[0])
    pos = property(lambda self: self[1])


@v_args(inline=True)
class _ToAst(Transformer):
    """Builds the AST while the LALR parser reduces: no parse tree is kept, so
    this is fast and never recurses, however deep the input."""

    # expressions: each returns Located(expr, start position)
    def number(self, token):
        return Located(read_number(token), pos_of(token))

    def symbol(self, token):
        if token.value in FUNCTIONS and token.value != "ceil":  # `ceil` alone is the pooling flag
            raise ParamsymSyntaxError(f"'{token.value}' is a function: write {token.value}(...)", pos=pos_of(token))
        if token.value not in _NAMES and token.value not in _LETS:
            _NAMES.add(token.value)
            if len(_NAMES) > MAX_SYMBOLS:
                raise ParamsymLimitError(
                    f"more than {MAX_SYMBOLS:,} different symbols in one program",
                    pos=pos_of(token),
                    hint="give some of the sizes numbers",
                )
        return Located(symbol(token.value), pos_of(token))

    def function(self, name, *args):
        fn = FUNCTIONS.get(name.value)
        if fn is None:
            import difflib  # only for the hint

            close = difflib.get_close_matches(name.value, FUNCTIONS, n=1)
            raise ParamsymNameError(
                f"unknown function '{name.value}'",
                pos=pos_of(name),
                hint=f"did you mean '{close[0]}'?" if close else f"the functions are {', '.join(FUNCTIONS)}",
            )
        arity = FUNCTION_ARITY[name.value]
        if arity is not None and len(args) != arity:
            raise ParamsymSyntaxError(f"{name.value}() takes {arity} argument, not {len(args)}", pos=pos_of(name))
        if arity is None and len(args) < 2:
            raise ParamsymSyntaxError(f"{name.value}() takes two or more arguments", pos=pos_of(name))
        return Located(fn(*(a.expr for a in args)), pos_of(name))

    def sum(self, first, *rest):
        if not rest:
            return first
        terms = [first.expr]
        for op, term in zip(rest[::2], rest[1::2]):
            terms.append(-term.expr if op == "-" else term.expr)
        return Located(_bounded(_check_size(sympy.Add(*terms), pos_of(rest[0])), first.pos), first.pos)

    def product(self, first, *rest):
        if not rest:
            return first
        factors = [first.expr]
        for op, factor in zip(rest[::2], rest[1::2]):
            factor = factor.expr
            if op == "/":
                if factor == 0:
                    raise ParamsymError("division by zero", pos=pos_of(op))
                factor = sympy.Pow(factor, -1)
            factors.append(factor)
        return Located(_bounded(_check_size(sympy.Mul(*factors), pos_of(rest[0])), first.pos), first.pos)

    def implicit_product(self, number, factor):
        return Located(
            _bounded(_check_size(sympy.Mul(read_number(number), factor.expr), pos_of(number)), pos_of(number)),
            pos_of(number),
        )

    def signed(self, op, value):
        return Located(-value.expr if op == "-" else value.expr, pos_of(op))

    def power(self, base, op, exponent):
        return Located(_bounded(build_power(base.expr, exponent.expr, pos_of(op)), base.pos), base.pos)

    # arguments
    def dims(self, *children):
        values, pos = [], None
        for child in children:
            if isinstance(child, Token):  # a DIMS token such as 224x224x3
                values.extend(
                    read_number(Token("NUMBER", part, line=child.line, column=child.column))
                    for part in child.value.split("x")
                )
                pos = pos or pos_of(child)
            else:
                values.append(child.expr)
                pos = pos or child.pos
        return Located(tuple(values), pos)

    def channels(self, cin, arrow, cout):
        pos = cin.pos if cin is not None else pos_of(arrow)
        return Channels(
            cin.expr if cin is not None else None, cout.expr, pos, cin.pos if cin is not None else None, cout.pos
        )

    def keyword(self, name, dims):
        return Keyword(name.value, dims.expr, pos_of(name))

    def reference(self, name, at, value):
        """`source=@NAME`: a named value as an argument, kept as the one symbol `@NAME` (`reference`)."""
        return Keyword(name.value, (sympy.Symbol("@" + value.value),), pos_of(name))

    def positional(self, dims):
        return Positional(dims.expr, dims.pos)

    # stages
    def call(self, name, *args):
        args = tuple(a for a in args if a is not None)
        return Call(name.value, args, pos_of(name))

    def sequence(self, *stages):
        return Sequence(stages, stages[0].pos)

    def group(self, lpar, sequence):
        return Sequence(sequence.stages, pos_of(lpar))

    def repeat(self, lpar, sequence, star, count):
        return Repeat(sequence, count.expr, pos_of(lpar))

    def residual(self, keyword, *branches):
        return Composite("res", tuple(b for b in branches if b is not None), pos_of(keyword))

    def add(self, keyword, *branches):
        return Composite("add", branches, pos_of(keyword))

    def concat(self, keyword, *branches):
        return Composite("concat", branches, pos_of(keyword))

    def mul(self, keyword, *branches):
        return Composite("mul", branches, pos_of(keyword))

    def sub(self, keyword, *branches):
        return Composite("sub", branches, pos_of(keyword))

    def seqcat(self, keyword, *branches):
        return Composite("seqcat", branches, pos_of(keyword))

    def sk(self, keyword, *branches):
        return Composite("sk", branches, pos_of(keyword))

    def aux(self, keyword, branch):
        return Composite("aux", (branch,), pos_of(keyword))

    def moe(self, keyword, branch, *args):
        return Composite("moe", (branch,), pos_of(keyword), tuple(a for a in args if a is not None))

    def named(self, call, as_, name):
        return Named(call, name.value, pos_of(name))

    def kept(self, lpar, sequence, as_, name):
        return Kept(Sequence(sequence.stages, pos_of(lpar)), name.value, pos_of(name))

    def fetch(self, at, name):
        return Fetch(name.value, pos_of(at))

    # program
    def let(self, name, value):
        _LETS.add(name.value)
        return Let(name.value, value.expr, pos_of(name))

    def define(self, name, *rest):
        *params, body = rest
        params = tuple(p.value for p in params if p is not None)
        return Define(name.value, params, body, pos_of(name))

    def network(self, sequence):
        return sequence

    def expression(self, value):
        return value.expr

    def start(self, *items):
        *statements, network = items
        return tuple(statements), network

    def missing_network(self, *statements):
        last = statements[-1]
        raise ParamsymSyntaxError(
            "the program has no network: after the statements, write the layers, e.g. input(32x32x3) > conv3x3(->16)",
            pos=last.pos,
        )


# ---- newlines -----------------------------------------------------------------------------


class _Postlexer:
    """Turns newlines into separators only where a statement ends.

    Newlines inside parentheses are dropped, as are those after or before a `>`
    or `|` (a held-back newline is released only when the next token does not
    continue the line). Parenthesis balance and nesting depth are checked here,
    where the exact positions are known.
    """

    always_accept = ()

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        opened: list[Token] = []
        previous: Token | None = None
        held: Token | None = None
        operators = 0
        for token in stream:
            if token.type in ("ADDOP", "STAR", "SLASH", "POW"):
                operators += 1
                if operators > MAX_OPERATORS:
                    raise ParamsymLimitError(
                        f"more than {MAX_OPERATORS:,} arithmetic operators in one program", pos=pos_of(token)
                    )
            if token.type == "NAME" and len(token.value) > MAX_NAME_CHARS:
                raise ParamsymLimitError(
                    f"name too long: {len(token.value):,} characters ({token.value[:20]}...), at most "
                    f"{MAX_NAME_CHARS} are accepted",
                    pos=pos_of(token),
                    hint="a name is a layer, a block or a symbol such as C or d_model",
                )
            if token.type == "_SEP":
                if token.value == ";" and opened:
                    yield token  # the parser reports it: ';' cannot stand inside parentheses
                elif not opened and previous is not None and previous.value not in (">", "|") and held is None:
                    held = token
                continue
            if token.value == "(":
                opened.append(token)
                if len(opened) > MAX_NESTING:
                    raise ParamsymLimitError(f"parentheses nested more than {MAX_NESTING} deep", pos=pos_of(token))
            elif token.value == ")":
                if not opened:
                    raise ParamsymSyntaxError("unbalanced parenthesis: this ')' closes nothing", pos=pos_of(token))
                opened.pop()
            if held is not None:
                if token.value not in (">", "|"):
                    yield held
                held = None
            yield token
            previous = token
        if opened:
            raise ParamsymSyntaxError(
                "unbalanced parenthesis: this '(' is never closed", pos=pos_of(opened[-1]), hint="add the missing ')'"
            )


# ---- parser -------------------------------------------------------------------------------


def grammar_text() -> str:
    """The grammar shipped in the wheel, or grammar/ of a source checkout."""
    beside = Path(__file__).with_name("paramsym.lark")  # an installed wheel, read without importlib.resources
    if beside.is_file():
        return beside.read_text(encoding="utf-8")
    from importlib import resources

    packaged = resources.files("paramsym.language").joinpath("paramsym.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[3] / "grammar" / "paramsym.lark").read_text(encoding="utf-8")


_LARK_OPTIONS = {"parser": "lalr", "lexer": "basic", "start": ["start", "expression"], "maybe_placeholders": True}


@cache
def _parser() -> Lark:
    """Lark's LALR parser, its tables loaded from the user's cache when they match this grammar."""
    grammar = grammar_text()
    objects = {"postlex": _Postlexer(), "transformer": _ToAst()}
    return parser_cache.cached_parser(
        grammar, _LARK_OPTIONS, objects, lambda: Lark(grammar, **_LARK_OPTIONS, **objects)
    )


_TERMINAL_NAMES = {
    "NAME": "a name",
    "NUMBER": "a number",
    "DIMS": "sizes such as 3x3",
    "_SEP": "a new line or ';'",
    "$END": "the end of the program",
    "ADDOP": "'+' or '-'",
    "POW": "'^'",
}


def _describe(terminal: str, parser: Lark) -> str:
    if terminal in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[terminal]
    try:
        pattern = parser.get_terminal(terminal).pattern
    except KeyError:
        return terminal
    return f"'{pattern.value}'" if pattern.type == "str" else terminal.lower()


def _expected(names, parser: Lark) -> str:
    described = sorted({_describe(n, parser) for n in names})
    if len(described) > 6:
        described = described[:6] + ["..."]
    return ", ".join(described)


def _translate(error: UnexpectedInput, source: str, parser: Lark) -> ParamsymSyntaxError:
    """One place where Lark's errors become paramsym's."""
    if isinstance(error, UnexpectedCharacters):
        char = source[error.pos_in_stream] if error.pos_in_stream < len(source) else "?"
        hint = None
        if char in "'\"":
            hint = "the language has no strings; names are written bare, e.g. conv3x3(3->16)"
        elif char in "[]{}":
            hint = "use parentheses ( ) for grouping"
        elif char.isdigit() or char.isnumeric():
            hint = "numbers are written with the ASCII digits 0-9"
        elif char == "\0":
            hint = "this is not program text"
        return ParamsymSyntaxError(f"unexpected character {char!r}", pos=Position(error.line, error.column), hint=hint)
    if isinstance(error, UnexpectedEOF):
        return ParamsymSyntaxError(
            f"the program ends too early; expected {_expected(error.expected, parser)}", pos=_end_position(source)
        )
    assert isinstance(error, UnexpectedToken)
    token = error.token
    if token.type == "$END":
        return ParamsymSyntaxError(
            f"the program ends too early; expected {_expected(error.expected, parser)}", pos=_end_position(source)
        )
    shown = "a new line" if token.type == "_SEP" and token.value != ";" else repr(token.value)
    hint = None
    expected = set(error.expected)
    if token.type == "NAME" and "MORETHAN" in expected:
        hint = "join layers with '>', e.g. conv3x3(3->16) > relu"
    elif token.type == "NAME" and token.value in KEYWORDS:
        hint = f"'{token.value}' is a reserved word and cannot be used as a name"
    elif token.type == "ARROW":
        hint = "channels are written A->B or ->B, once per layer"
    return ParamsymSyntaxError(
        f"unexpected {shown}; expected {_expected(expected, parser)}", pos=Position(token.line, token.column), hint=hint
    )


def _end_position(source: str) -> Position:
    lines = source.rstrip().splitlines() or [""]
    return Position(len(lines), len(lines[-1]) + 1)


def parse_program(source: str) -> Program:
    """Parse a whole program into its syntax tree."""
    if len(source) > MAX_SOURCE_CHARS:
        raise ParamsymLimitError(
            f"the program is {len(source):,} characters long; at most {MAX_SOURCE_CHARS:,} are accepted"
        )
    parser = _parser()
    _NAMES.clear(), _LETS.clear()
    try:
        statements, network = lalr.parse(parser, source, "start")
    except UnexpectedInput as error:
        raise _translate(error, source, parser).with_source(source) from None
    except ParamsymError as error:
        error.with_source(source)
        raise
    except VisitError as error:  # an error raised by a transformer method
        if isinstance(error.orig_exc, ParamsymError):
            raise error.orig_exc.with_source(source) from None
        raise
    except RecursionError:
        raise ParamsymLimitError("the program is nested too deeply to read").with_source(source) from None
    return Program(statements, network, source)


def parse_expression(text: str) -> Expr:
    """One expression, such as the `2C` of `--set D=2C` (never evaluated as Python)."""
    if len(text) > 10_000:
        raise ParamsymLimitError("the expression is longer than 10,000 characters")
    parser = _parser()
    _NAMES.clear(), _LETS.clear()
    try:
        return lalr.parse(parser, text, "expression")
    except UnexpectedInput as error:
        raise _translate(error, text, parser).with_source(text) from None
    except ParamsymError as error:
        error.with_source(text)
        raise
