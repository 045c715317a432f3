"""Formulas to numbers: exact evaluation with values for the symbols.

A small evaluator over SymPy's expression tree with Python integers and
fractions. It is exact, fast on the shapes of formulas paramsym builds (shared
sub-expressions are evaluated once), and it refuses powers whose result would
be astronomically large instead of trying to compute them.
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil, floor

import sympy

from .. import expansion
from ..errors import ParamsymEvaluationError, ParamsymUsageError
from ..language.syntax import MAX_NUMBER_BITS, number_bits, too_large
from .records import Constraint

Number = int | Fraction


class Evaluator:
    """Evaluates expressions for one assignment of values to symbols."""

    def __init__(self, values: dict[sympy.Symbol, Number]):
        self.values = dict(values)
        self._memo: dict = {}

    def number(self, expr: sympy.Expr) -> Number:
        """The exact value of `expr`; raises if a symbol has no value."""
        known = self._memo.get(expr)
        if known is None:
            known = _normal(self._eval(expr))
            # every number made on the way is bounded (docs/language.md, "Limits"): computing stays fast and
            # every value prints within Python's 4,300-digit limit of int to str
            bits = number_bits(known)
            if bits > MAX_NUMBER_BITS:
                raise too_large("a value", bits)
            self._memo[expr] = known
        return known

    def integer(self, expr: sympy.Expr | None, what: str = "count") -> int | None:
        """The value as an int; None when `expr` is None or a symbol has no value."""
        if expr is None or not self.has_values_for(expr):
            return None
        value = self.number(expr)
        if isinstance(value, Fraction):
            raise ParamsymEvaluationError(
                f"the {what} {expr} is {value}, not a whole number, with {self.describe(expr)}"
            )
        return value

    def partial(self, expr: sympy.Expr) -> sympy.Expr:
        """`expr` with the symbols that have values replaced by them: a formula in the others."""
        known = {
            s: sympy.Rational(v.numerator, v.denominator) if isinstance(v, Fraction) else sympy.Integer(v)
            for s, v in self.values.items()
            if s in expr.free_symbols
        }
        if not known:
            return expr
        bound = expr.xreplace(known)
        return expansion.expand(bound, "the formula (with the values put in)") if bound.is_polynomial() else bound

    def has_values_for(self, expr: sympy.Expr) -> bool:
        return all(s in self.values for s in expr.free_symbols)

    def describe(self, expr: sympy.Expr) -> str:
        names = sorted(expr.free_symbols, key=lambda s: s.name)
        return ", ".join(f"{s.name}={self.values[s]}" for s in names if s in self.values) or "no symbols"

    def check(self, constraint: Constraint) -> None:
        """Raise when a deferred condition (groups divide channels, sizes >= 1, whole channels) fails."""
        if not self.has_values_for(constraint.expr):
            return
        try:
            value = self.number(constraint.expr)
        except ParamsymEvaluationError as error:  # a division by zero (stride=S-1 at S=1): say where
            if error.pos is not None:
                raise
            raise ParamsymEvaluationError(error.message, pos=constraint.pos, hint=error.hint) from None
        ok = {"integer": isinstance(value, int), "positive": value >= 1, "nonnegative": value >= 0, "zero": value == 0}[
            constraint.requirement
        ]
        if not ok:
            if constraint.shown is not None:
                value = self.number(constraint.shown)
            raise ParamsymEvaluationError(
                f"{constraint.message}: with {self.describe(constraint.expr)} it is {value}", pos=constraint.pos
            )

    def _eval(self, expr) -> Number:
        if expr.is_Integer:
            return int(expr)
        if expr.is_Rational:
            return Fraction(int(expr.p), int(expr.q))
        if expr.is_Symbol:
            try:
                return self.values[expr]
            except KeyError:
                raise ParamsymUsageError(f"no value for the symbol {expr.name}") from None
        args = [self.number(arg) for arg in expr.args] if not isinstance(expr, sympy.Piecewise) else None
        if expr.is_Add:
            return sum(args)
        if expr.is_Mul:
            result: Number = 1
            for arg in args:
                result *= arg
            return result
        if expr.is_Pow:
            return _power(*args)
        if isinstance(expr, sympy.floor):
            return floor(args[0])
        if isinstance(expr, sympy.ceiling):
            return ceil(args[0])
        if isinstance(expr, sympy.Min):
            return min(args)
        if isinstance(expr, sympy.Max):
            return max(args)
        if isinstance(expr, sympy.Piecewise):
            for value, condition in expr.args:
                if condition == sympy.true or self._condition(condition):
                    return self.number(value)
            raise ParamsymEvaluationError(f"no case of {expr} applies")
        raise ParamsymEvaluationError(f"cannot evaluate {expr} exactly")

    def _condition(self, condition) -> bool:
        left, right = self.number(condition.lhs), self.number(condition.rhs)
        ops = {
            sympy.GreaterThan: left >= right,
            sympy.StrictGreaterThan: left > right,
            sympy.LessThan: left <= right,
            sympy.StrictLessThan: left < right,
        }
        for kind, result in ops.items():
            if isinstance(condition, kind):
                return result
        raise ParamsymEvaluationError(f"cannot evaluate the condition {condition}")


def _normal(value: Number) -> Number:
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value.numerator)
    return value


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(exponent, Fraction):
        raise ParamsymEvaluationError(f"{base} to the power {exponent} is not a rational number")
    if base == 0 and exponent < 0:
        raise ParamsymEvaluationError("division by zero: 0 to a negative power")
    magnitude = max(abs(Fraction(base).numerator), Fraction(base).denominator)
    if magnitude > 1 and abs(exponent) * magnitude.bit_length() > 4 * MAX_NUMBER_BITS:
        raise ParamsymEvaluationError(f"{base}^{exponent} is too large to compute")
    return Fraction(base) ** exponent if exponent < 0 else base**exponent
