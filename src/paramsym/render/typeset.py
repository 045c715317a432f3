"""LaTeX for papers: the total as an equation, the per-layer derivation as an
`align` environment (textbook formula = numbers substituted = value, in the
style of the seed answers), and a booktabs table of the layers."""

from __future__ import annotations

import itertools
import re

import sympy

from ..algebra.views import formula, generic
from ..core.formatting import listed
from ..core.quantities import BY_NAME, TEMPLATE_NAMES, layer_quantities
from ..errors import ParamsymUsageError
from ..model.network import Network, expect_network

_ORDER = {"k": 0, "k_d": 1, "k_h": 2, "k_w": 3, "C_in": 4, "C_out": 5, "C": 6, "g": 7, "N": 8}
_GROUP = re.compile(r"(?<![\d.{^_])(\d{4,})(?![\d}])")


class LatexStyle:
    """Symbol names (`C_in` -> `C_{\\mathrm{in}}`) and digit grouping (`18{,}496`)."""

    def __init__(self, names: dict[str, str] | None = None, group_digits: bool = False):
        self.names = dict(names or {})
        self.group_digits = group_digits

    def expr(self, expr) -> str:
        symbol_names = {s: self.names[s.name] for s in expr.free_symbols if s.name in self.names}
        return self.number(sympy.latex(expr, symbol_names=symbol_names))

    def number(self, text: str) -> str:
        if not self.group_digits:
            return text
        return _GROUP.sub(lambda m: f"{int(m.group(1)):,}".replace(",", "{,}"), text)

    def value(self, value: int) -> str:
        return self.number(str(value))


def _factors(term):
    """Numerator and denominator factors of a product, the kernel first, as in k_h k_w C_in C_out."""
    coefficient, rest = term.as_coeff_Mul()
    numerator, denominator = [], []
    for factor in sympy.Mul.make_args(rest):
        if factor == 1:  # a term that is a number alone (prelu(shared): 1)
            continue
        base, exponent = factor.as_base_exp()
        target = numerator if exponent > 0 else denominator
        target.extend([base] * int(abs(exponent)))

    # a sum first: (k_h k_w C_in C_out + C_out) N, which reads back unambiguously (N (...) is a call)
    def key(s) -> int:
        return -1 if isinstance(s, sympy.Add) else _ORDER.get(getattr(s, "name", "").replace("'", ""), 9)

    return coefficient, sorted(numerator, key=key), sorted(denominator, key=key)


def _render(template, render_symbol, joiner: str) -> str:
    """Term by term, the largest product first: k_h k_w C_in C_out + C_out."""
    terms = []
    ordered = sorted(sympy.Add.make_args(template), key=lambda t: -len(sympy.Mul.make_args(t.as_coeff_Mul()[1])))
    for term in ordered:
        coefficient, numerator, denominator = _factors(term)

        def factor(s) -> str:  # (k_h k_w C_in C_out + C_out) N: a repeated layer with a bias
            return (
                f"\\left({_render(s, render_symbol, joiner)}\\right)" if isinstance(s, sympy.Add) else render_symbol(s)
            )

        def powers(factors) -> list[str]:
            """C C -> C^{2}, 768 768 -> 768^{2} (C'^{2} is valid: LaTeX reads primes before the ^); a power
            goes last, 2 g C^{2}, which SymPy's LaTeX parser also reads back."""
            runs = [(s, len(list(run))) for s, run in itertools.groupby(factors)]
            runs.sort(key=lambda run: run[1] > 1)
            return [factor(s) if n == 1 else f"{factor(s)}^{{{n}}}" for s, n in runs]

        parts = ([str(coefficient)] if coefficient != 1 else []) + powers(numerator)
        text = joiner.join(parts) or "1"
        if denominator:
            text = f"\\frac{{{text}}}{{{joiner.join(powers(denominator))}}}"
        terms.append(text)
    return " + ".join(terms)


def derivation(network: Network, style: LatexStyle) -> list[str]:
    """One align row per learnable layer: formula = numbers = value."""
    rows = []
    evaluator = network.evaluator()
    # a textbook symbol that looks like one of the program's (by name, or as --symbol writes it) is primed
    written = set(style.names.values())
    avoid = {name for name in TEMPLATE_NAMES if sympy.latex(sympy.Symbol(name)) in written or name in written}
    for path, template, values, count in generic(network, avoid):
        textbook = _render(template, lambda s: sympy.latex(s), " ")

        def plugged(symbol, values=values):  # called in this iteration; the default binds it all the same
            # a factor that is no symbol (gcstage's Max(8, 8*floor(C_in/32 + 1/2))): its symbols put in
            value = values[symbol] if symbol in values else symbol.xreplace(values)
            text = style.expr(value)
            return f"\\left({text}\\right)" if isinstance(value, (sympy.Add, sympy.Mul)) else text

        substituted = _render(template, plugged, " \\cdot ")
        right = [substituted]
        if style.expr(count) != substituted:
            right.append(style.expr(count))
        if count.free_symbols and evaluator.has_values_for(count):
            right.append(style.value(evaluator.integer(count)))
        label = path.replace("_", "\\_")
        rows.append(f"  \\text{{{label}}}: && {textbook} &= {' = '.join(right)}")
    return rows


def equation(network: Network, on: str = "params", style: LatexStyle | None = None) -> str:
    """The total as one equation, `N_{\\mathrm{params}} = 90 C^{2} + 74 C + 10` (and its value when the
    symbols have values): the body of `render`'s equation environment, alone for a live page."""
    style = style or LatexStyle()
    total = formula(network, on)
    evaluator = network.evaluator()
    label = BY_NAME[on].title
    value = evaluator.integer(total) if evaluator.has_values_for(total) else None
    text = f"N_{{\\mathrm{{{label}}}}} = {style.expr(total)}"
    if value is not None and total.free_symbols:
        text += f" = {style.value(value)}"
    return text


def render(
    network: Network,
    *,
    on: str = "params",
    names: dict | None = None,
    group_digits: bool = False,
    standalone: bool = False,
) -> str:
    """LaTeX: the network's formula for `on` (for params with its derivation layer by layer), then the table
    of the layers; `names` renames symbols ({'C': r'C_0'}), `standalone` makes a whole document."""
    expect_network(network, "latex")
    if names is not None and (
        not isinstance(names, dict) or not all(isinstance(v, str) for v in (*names, *names.values()))
    ):
        raise ParamsymUsageError(
            f"names is a dict of symbol names to LaTeX (str), such as {{'C': 'C_0'}}, not {names!r}"
        )
    strangers = sorted(set(names or {}) - set(network.symbols))
    if strangers:
        raise ParamsymUsageError(
            f"--symbol {strangers[0]}=...: the program has no symbol {strangers[0]!r} "
            f"(its symbols: {listed(network.symbols)})"
        )
    style = LatexStyle(names, group_digits)
    parts = ["\\begin{equation}", f"  {equation(network, on, style)}", "\\end{equation}"]
    rows = derivation(network, style)
    if rows and on == "params":
        parts += ["\\begin{align*}", " \\\\\n".join(rows), "\\end{align*}"]
    parts.append(table(network, style).rstrip())
    body = "\n".join(parts) + "\n"
    if not standalone:
        return body
    return (
        "\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage{booktabs}\n"
        "\\begin{document}\n" + body + "\\end{document}\n"
    )


def _shape_latex(shape, style: LatexStyle) -> str:
    dims = shape.dims()
    if dims is None:
        return "?"

    def dim(d):
        if d is None:
            return "?"
        return f"\\left({style.expr(d)}\\right)" if isinstance(d, sympy.Add) else style.expr(d)

    return " \\times ".join(dim(d) for d in dims)


def table(network: Network, style: LatexStyle | None = None) -> str:
    """A booktabs table of the layers (needs \\usepackage{booktabs})."""
    style = style or LatexStyle(group_digits=True)
    evaluator = network.evaluator()

    def cell(expr) -> str:
        if expr is None:
            return "?"
        text = style.expr(expr)
        if expr.free_symbols and evaluator.has_values_for(expr):
            text += f" = {style.value(evaluator.integer(expr))}"
        return f"${text}$"

    columns = [q for q in layer_quantities() if "latex" in q.tables]
    header = " & ".join(["\\#", "layer", "output", *(q.long_title or q.title for q in columns)])
    lines = [f"\\begin{{tabular}}{{rll{'r' * len(columns)}}}", r"\toprule", header + r" \\", r"\midrule"]
    for lc in network.layers:
        name = lc.layer.path.replace("_", r"\_")
        cells = " & ".join(cell(lc.counts[q.name]) for q in columns)
        lines.append(
            f"{lc.layer.index} & \\texttt{{{name}}} & ${_shape_latex(lc.layer.out_shape, style)}$ & {cells} \\\\"
        )
    totals = " & ".join(cell(network.quantity(q.name)) if q.totalled else "" for q in columns)
    lines += [r"\midrule", f" & total & & {totals} \\\\", r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def parse_names(items) -> dict[str, str]:
    """`--symbol C_in=C_{\\mathrm{in}}` options."""
    names = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ParamsymUsageError(f"--symbol takes NAME=LATEX, such as C_in=C_{{\\mathrm{{in}}}}, not {item!r}")
        if name.strip() in names:
            raise ParamsymUsageError(f"--symbol {name.strip()}=... is given twice; give each symbol one name")
        names[name.strip()] = text
    return names
