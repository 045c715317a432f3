"""Formulas compiled to exact, vectorised NumPy functions.

SymPy's `lambdify` turns `C/2` and `floor((H - 1)/2)` into floating point, which
is not exact for large counts. Here every sub-formula is carried as a pair
(numerator, denominator) of integer arrays, so rationals stay exact, `floor`
and `ceil` become integer floor division, and the result is one integer
division at the end. Arrays are int64 when a floating-point pass shows every
intermediate value fits, and Python integers (object arrays) otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import sympy

from ..errors import ParamsymEvaluationError

_INT64_SAFE = 2.0**60  # a margin below 2^63 for the float pass's rounding


def _lcm(a: int, b: int) -> tuple[int, int, int]:
    """The least common multiple of two denominators and the factors that bring each to it."""
    g = math.gcd(a, b)
    return a * b // g, b // g, a // g


class _Compiler:
    """Builds a closure env -> (numerator, denominator) for one expression."""

    def __init__(self, symbols, track: Callable | None = None):
        self.names = {s: s.name for s in symbols}
        self.track = track
        self.zero: list = []  # where a division by zero happened in this run (a stride S-1 at S=1)

    def build(self, expr) -> Callable:
        node = self._build(expr)
        if self.track is None:
            return node
        track = self.track
        return lambda env: track(node(env))

    def _build(self, expr) -> Callable:
        if expr.is_Integer:
            value = int(expr)
            return lambda env: (value, 1)
        if expr.is_Rational:
            p, q = int(expr.p), int(expr.q)
            return lambda env: (p, q)
        if expr.is_Symbol:
            name = self.names.get(expr)
            if name is None:
                raise ParamsymEvaluationError(f"no value for the symbol {expr.name}")
            return lambda env: (env[name], 1)
        if expr.is_Add:
            parts = [self.build(arg) for arg in expr.args]
            return lambda env: _add([part(env) for part in parts])
        if expr.is_Mul:
            parts = [self.build(arg) for arg in expr.args]
            return lambda env: _mul([part(env) for part in parts])
        if expr.is_Pow:
            exponent = expr.exp
            if not exponent.is_Integer:
                raise ParamsymEvaluationError(f"cannot vectorise the power {expr}")
            base = self.build(expr.base)
            e = int(exponent)
            if e >= 0:
                return lambda env: tuple(x**e for x in base(env))
            return lambda env: self._inverse(tuple(x**-e for x in base(env)))
        if isinstance(expr, (sympy.floor, sympy.ceiling)):
            inner = self.build(expr.args[0])
            if isinstance(expr, sympy.floor):
                return lambda env: (_floordiv(*inner(env)), 1)
            return lambda env: (-_floordiv(*(-x if i == 0 else x for i, x in enumerate(inner(env)))), 1)
        if isinstance(expr, (sympy.Min, sympy.Max)):
            parts = [self.build(arg) for arg in expr.args]
            pick = np.minimum if isinstance(expr, sympy.Min) else np.maximum
            return lambda env: _extreme(pick, [part(env) for part in parts])
        if isinstance(expr, sympy.Piecewise):
            cases = [(self.build(value), self._condition(condition)) for value, condition in expr.args]
            return lambda env: _piecewise([(value(env), condition(env)) for value, condition in cases])
        raise ParamsymEvaluationError(f"cannot vectorise {expr}")

    def _inverse(self, pair) -> tuple:
        """1/(num/den) as (den, num), the denominator kept positive; where num is 0 the value is
        undefined: recorded in `zero`, and 1 stands in for it so the rest can be computed."""
        num, den = pair
        if np.ndim(num) == 0:
            if num == 0:
                raise ParamsymEvaluationError("division by zero")
            return (-den, -num) if num < 0 else (den, num)
        zero = num == 0
        if np.any(zero):
            self.zero.append(zero)
            num = np.where(zero, 1, num)
        negative = num < 0
        if np.any(negative):
            return np.where(negative, -den, den), np.where(negative, -num, num)
        return den, num

    def _condition(self, condition) -> Callable:
        if condition == sympy.true:
            return lambda env: True
        difference = self.build(condition.lhs - condition.rhs)
        compare = {
            sympy.GreaterThan: np.greater_equal,
            sympy.StrictGreaterThan: np.greater,
            sympy.LessThan: np.less_equal,
            sympy.StrictLessThan: np.less,
        }[type(condition)]
        # denominators are positive, so the sign of the numerator decides
        return lambda env: compare(difference(env)[0], 0)


def _add(parts):
    num, den = parts[0]
    for n, d in parts[1:]:
        if isinstance(den, int) and isinstance(d, int):
            common, scale_a, scale_b = _lcm(den, d)
            num, den = num * scale_a + n * scale_b, common
        else:  # a denominator that varies over the grid (a symbol in it: groups=G, stride=S)
            num, den = num * d + n * den, den * d
    return num, den


def _mul(parts):
    num, den = 1, 1
    for n, d in parts:
        num, den = num * n, den * d
    if isinstance(den, int) and isinstance(num, int):
        g = math.gcd(num, den)
        return num // g, den // g
    return num, den


def _floordiv(num, den):
    return num // den


def _extreme(pick, parts):
    num, den = parts[0]
    for n, d in parts[1:]:
        num, den = pick(num * d, n * den), den * d
    return num, den


def _piecewise(cases):
    result = None
    for (num, den), condition in reversed(cases):
        value = (num, den)
        if result is None:
            result = value
        else:
            result = (np.where(condition, num * result[1], result[0] * den), den * result[1])
    return result


def compile_pair(expr: sympy.Expr, symbols) -> Callable[[dict], tuple]:
    """values -> (numerator, denominator) integer arrays with expr = numerator / denominator; the
    denominator is positive, or 0 where the value is undefined (a division by zero)."""
    symbols = list(symbols)
    compiler = _Compiler(symbols)
    compiled = compiler.build(expr)
    largest = [0.0]

    def track(pair):
        for value in pair:
            magnitude = float(np.max(np.abs(value))) if np.ndim(value) else abs(float(value))
            largest[0] = max(largest[0], magnitude)
        return pair

    tracked = _Compiler(symbols, track).build(expr)

    def run(values: dict) -> tuple:
        # Arrays of any shapes that broadcast together: a sweep gives each symbol its own axis
        # (C as a column, H as a row), so a part of the formula in one symbol is computed once
        # per value of that symbol, not once per point of the grid.
        given = {name: np.asarray(v) for name, v in values.items()}
        shape = np.broadcast_shapes(*(v.shape for v in given.values())) if given else (1,)
        # a floating-point pass: does every intermediate numerator and denominator fit in int64?
        largest[0] = 0.0
        if any(v.dtype == object for v in given.values()):
            largest[0] = math.inf  # values beyond int64 (and perhaps beyond a float): Python integers
        else:
            with np.errstate(all="ignore"):
                tracked({name: v.astype(np.float64) for name, v in given.items()})
        dtype = np.int64 if np.isfinite(largest[0]) and largest[0] < _INT64_SAFE else object
        arrays = {
            name: _python_ints(v) if dtype is object else v.astype(np.int64, copy=False) for name, v in given.items()
        }
        compiler.zero = []
        num, den = (np.asarray(x, dtype=dtype) for x in compiled(arrays))
        # the shape of the symbols it has (C alone: a column), or one value per point for a constant
        own = np.broadcast_shapes(num.shape, den.shape, *(np.shape(z) for z in compiler.zero)) or shape
        num, den = np.broadcast_to(num, own), np.broadcast_to(den, own)
        if compiler.zero:
            # undefined where a division by zero happened: denominator 0
            undefined = np.logical_or.reduce([np.broadcast_to(z, own) for z in compiler.zero])
            den = np.where(undefined, 0, den).astype(dtype)
        return num, den

    return run


def _python_ints(values: np.ndarray) -> np.ndarray:
    """An object array of Python integers of the same shape (exact beyond int64)."""
    out = np.empty(values.shape, dtype=object)
    out.flat[:] = [int(x) for x in values.flat]
    return out


def compile_exact(expr: sympy.Expr, symbols) -> Callable[..., np.ndarray]:
    """f(values, where=None) for arrays of values by symbol name, giving exact integers.

    Points outside `where` (a boolean mask of valid points) may have fractional
    values; they are rounded down instead of being an error.
    """
    pair = compile_pair(expr, symbols)

    def run(values: dict, where=None) -> np.ndarray:
        num, den = pair(values)
        undefined = den == 0
        den = np.where(undefined, 1, den).astype(den.dtype)
        quotient, remainder = num // den, num % den  # (np.divmod has no object loop)
        wrong = (remainder != 0) | undefined
        if where is not None:
            wrong = wrong & where
        if np.any(wrong):
            bad = int(np.argmax(wrong))
            at = {n: np.broadcast_to(np.asarray(v), np.shape(wrong)).flat[bad] for n, v in values.items()}
            where_text = ", ".join(f"{n}={v}" for n, v in at.items())
            raise ParamsymEvaluationError(
                f"{expr} divides by zero at {where_text}"
                if np.broadcast_to(undefined, np.shape(wrong)).flat[bad]
                else f"{expr} is not a whole number at {where_text}"
            )
        return quotient

    return run


def compile_condition(expr: sympy.Expr, requirement: str, symbols) -> Callable[[dict], np.ndarray]:
    """A mask: expr is a whole number ("integer"), at least 1 ("positive"), at least 0 ("nonnegative")
    or 0 ("zero")."""
    pair = compile_pair(expr, symbols)

    def run(values: dict) -> np.ndarray:
        num, den = pair(values)
        defined = den != 0  # a division by zero meets no requirement
        den = np.where(defined, den, 1).astype(den.dtype)
        if requirement == "integer":
            ok = num % den == 0
        elif requirement == "positive":
            ok = num >= den
        elif requirement == "nonnegative":
            ok = num >= 0
        else:
            ok = num == 0
        return np.asarray(ok & defined, dtype=bool)

    return run
