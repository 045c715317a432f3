"""A bound on multiplying formulas out.

`sympy.expand((A+B+C+D+E+F)^16)` has 20,349 terms and takes seconds; `^64` takes
minutes and gigabytes. Before a formula is multiplied out, `terms` gives an upper
bound on the number of terms of the result from its tree alone (a product
multiplies the counts of its factors, (a sum of n terms)^k has at most
C(n+k-1, k)), and `expand` refuses a formula beyond `MAX_TERMS` with a limit
error instead of computing it. The program text refuses such a formula where it
is written (syntax.py), so this is reached by formulas that grow later: a `let`
substituted into a power, the product of two large channel formulas.
"""

from __future__ import annotations

import sympy

from .errors import ParamsymLimitError, Position

# Terms of a formula multiplied out, at most; the real formulas of networks have a few dozen.
MAX_TERMS = 500
# Terms of a sum of formulas (a network of 20,000 layers with a symbol each), at most: adding is cheap.
MAX_SUM_TERMS = 20_000
_HUGE = 10**12  # "too many": counts stop growing here

_KNOWN: dict = {}  # formula -> (bound, degree, generators), shared by the formulas built from it
_FEW = 16  # generators tracked per formula; beyond, only the product bound is used


def terms(expr) -> int:
    """An upper bound on the number of terms of `sympy.expand(expr)` (at most _HUGE): the smaller of
    the product bound (a product multiplies the terms of its factors; (n terms)^k has at most
    C(n+k-1, k)) and, for a polynomial of degree d in v generators (symbols, or functions such as
    floor(...)), the C(d+v, v) monomials it can have."""
    if not isinstance(expr, sympy.Basic) or not expr.args:
        return 1
    known = _KNOWN.get(expr)
    if known is not None:
        return known[0]
    if len(_KNOWN) > 100_000:
        _KNOWN.clear()
    # iteratively, children first: formulas built by substitution can be deeper than Python's recursion
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in _KNOWN:
            continue
        if not ready:
            stack.append((node, True))
            stack.extend((arg, False) for arg in node.args if arg.args and arg not in _KNOWN)
            continue
        _KNOWN[node] = _node_terms(node)
    return _KNOWN[expr][0]


def _child(arg) -> tuple:
    if arg.args:
        return _KNOWN[arg]
    if arg.is_Number:
        return (1, 0, frozenset())
    return (1, 1, frozenset((arg,)))  # a symbol


def _union(parts):
    if any(p is None for p in parts):
        return None
    united = frozenset().union(*parts)
    return united if len(united) <= _FEW else None


def _node_terms(node) -> tuple:
    if node.is_Add or node.is_Mul:
        children = [_child(a) for a in node.args]
        if node.is_Add:
            bound = min(sum(c[0] for c in children), _HUGE)
        else:
            bound = 1
            for c in children:
                bound = min(bound * c[0], _HUGE)
        degrees = [c[1] for c in children]
        degree = None if None in degrees else (max(degrees) if node.is_Add else sum(degrees))
        return _tighter(bound, degree, _union([c[2] for c in children]))
    if node.is_Pow:
        base, exponent = node.args
        n, degree, gens = _child(base)
        if exponent.is_Integer:
            k = int(exponent)
            bound = _multinomial(n, abs(k)) if n > 1 else 1
            if k < 0 or degree is None:
                return (bound, None, None)  # a denominator: the product bound alone
            return _tighter(bound, degree * k, gens)
    # a function (ceiling, Max, Piecewise...) or a power such as 2^C is one term, a generator of its
    # own; what is inside it is bounded on its own
    return (1, 1, frozenset((node,)))


def _tighter(bound: int, degree, gens) -> tuple:
    if degree is not None and gens is not None and bound > 1:
        bound = min(bound, _multinomial(len(gens) + 1, degree))  # C(d+v, v) = C((v+1)+d-1, d)
    return (bound, degree, gens)


def _multinomial(n: int, k: int) -> int:
    """C(n+k-1, k): the monomials of degree k in n terms, computed until it passes _HUGE."""
    result = 1
    for i in range(1, min(k, n - 1) + 1):  # C(n+k-1, k) = C(n+k-1, n-1): the shorter product
        result = result * (n + k - i) // i  # (stays a whole number at every step)
        if result >= _HUGE:
            return _HUGE
    return result


def inner_terms(expr) -> int:
    """The largest bound of any product or power in `expr` (what one expansion step has to build)."""
    terms(expr)
    if not isinstance(expr, sympy.Basic) or not expr.args:
        return 1
    largest, seen, stack = 1, set(), [expr]
    while stack:
        node = stack.pop()
        if node in seen or not node.args:
            continue
        seen.add(node)
        if not node.is_Add:
            largest = max(largest, _KNOWN[node][0] if node in _KNOWN else 1)
        stack.extend(node.args)
    return largest


def too_large(expr) -> int | None:
    """The bound when `expr` is too large to multiply out, else None."""
    bound = terms(expr)
    if bound <= MAX_TERMS:
        return None
    if bound <= MAX_SUM_TERMS and inner_terms(expr) <= MAX_TERMS:
        return None  # a long sum of small products: cheap to add up
    return bound


def limit_error(bound: int, what: str = "a formula", pos: Position | None = None) -> ParamsymLimitError:
    shown = "more than a trillion" if bound >= _HUGE else f"up to {bound:,}"
    return ParamsymLimitError(
        f"{what} is too large: multiplied out it would have {shown} terms, and paramsym works with formulas "
        f"of at most {MAX_TERMS:,} terms",
        pos=pos,
        hint="give some of its symbols numbers (let, --set), or use fewer symbols in it",
    )


def check(expr, what: str = "a formula", pos: Position | None = None):
    """`expr` itself; raises a limit error when it is too large to multiply out."""
    bound = too_large(expr)
    if bound is not None:
        raise limit_error(bound, what, pos)
    return expr


def expand(expr, what: str = "a formula", pos: Position | None = None):
    """`sympy.expand(expr)`, refused with a limit error when the result would be too large."""
    return sympy.expand(check(expr, what, pos))
