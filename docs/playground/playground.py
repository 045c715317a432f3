"""The Python half of the playground page: runs inside Pyodide (and under CPython in the tests).

`run(request_json) -> result_json` takes what the page's inputs hold and gives back everything the
page shows: the tokens of paramsym's own lexer for the highlighting, the table, the totals, the LaTeX,
`explain`, the answer of a solve, or the error with its line and column. Only paramsym's public API
and its click-free modules are used: no numpy, rich or click is needed.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from fractions import Fraction

import sympy
from lark.exceptions import UnexpectedCharacters
from lark.lexer import LexerThread

import paramsym
from paramsym import expansion
from paramsym.algebra.solve import _Problem, parse_budget
from paramsym.core.devices import DEVICES
from paramsym.core.formatting import bytes_text, count_text, exact, human, quantity_unit, readable, unit_text
from paramsym.core.quantities import BY_NAME, add, applies, budgets, shown_layer_quantities
from paramsym.core.serving import decoder, is_decoder
from paramsym.core.setup import build_setup
from paramsym.errors import ParamsymError, ParamsymLimitError, ParamsymUsageError
from paramsym.language import syntax
from paramsym.language.assignments import parse_assignments
from paramsym.language.syntax import looks_like_count, parse_count
from paramsym.render import printers, typeset
from paramsym.render.explain import explain
from paramsym.render.printers import cost_lines, render_chunks, summary_lines
from paramsym.render.typeset import render as latex_document

KEYWORDS = {"DEF", "LET", "RES", "ADD", "CONCAT", "MUL", "MOE", "AUX", "AS"}
OPERATORS = {"ARROW", "MORETHAN", "VBAR", "STAR", "SLASH", "POW", "ADDOP", "EQUAL", "X"}
PUNCTUATION = {"LPAR", "RPAR", "COMMA", "_SEP"}
# how many layers the table shows; the totals always cover the whole network
MAX_ROWS = 2000
# how many layers the LaTeX tab typesets (KaTeX, in the worker, in blocks of DERIVATION_BLOCK rows that the page
# adds one at a time) and how many lines of the LaTeX source it shows: beyond that KaTeX's HTML takes the page
# long to lay out; `paramsym latex` (and result["latex"]["text"]) has all
MAX_DERIVATION = 150
DERIVATION_BLOCK = 10
MAX_LATEX_LINES = 400


def _lexer():
    """Lark's basic lexer for paramsym's grammar, keeping what the parser ignores (comments)."""
    global _LEXER
    if _LEXER is None:
        _LEXER = syntax._parser()._build_lexer(dont_ignore=True)
    return _LEXER


_LEXER = None


def tokens(text: str) -> list[list]:
    """[start, end, class] for every token of paramsym's lexer; a character it cannot read is `error`."""
    out, offset = [], 0
    while offset < len(text):
        rest = text[offset:]
        try:
            for token in LexerThread.from_text(_lexer(), rest).lex(None):
                out.append([offset + token.start_pos, offset + token.end_pos, token.type])
            break
        except UnexpectedCharacters as error:
            out.append([offset + error.pos_in_stream, offset + error.pos_in_stream + 1, "ERROR"])
            offset += error.pos_in_stream + 1
    classified = []
    for i, (start, end, kind) in enumerate(out):
        following = next((t for t in out[i + 1 :] if t[2] not in ("WS", "COMMENT")), None)
        classified.append([start, end, _class(kind, text[start:end], following and following[2])])
    return [t for t in classified if t[2] != "ws"]


def _class(kind: str, value: str, following: str | None) -> str:
    if kind == "NAME":
        if following == "LPAR":
            return "call"
        if following == "EQUAL":
            return "key"
        return "name"
    if kind in KEYWORDS:
        return "kw"
    if kind in ("NUMBER", "DIMS"):
        return "num"
    if kind == "COMMENT":
        return "comment"
    if kind in OPERATORS:
        return "op"
    if kind in PUNCTUATION:
        return "punct"
    if kind == "WS":
        return "ws"
    return "error"


def _error(error: paramsym.ParamsymError, where: str) -> dict:
    return {
        "where": where,
        "kind": error.kind,
        "message": error.message,
        "line": error.line,
        "column": error.column,
        "hint": error.hint,
        "text": str(error),
    }


def _value(quantity: dict) -> str:
    if quantity["expr"] is None:
        return "?"
    if quantity["value"] is not None:
        return f"{quantity['value']:,}"
    return quantity["expr"].replace("**", "^")


def _shape(dims) -> str:
    if dims is None:
        return "?"
    return (
        " x ".join("?" if d is None else d.replace("**", "^") for d in dims)
        if any(d is None or not d.isdigit() for d in dims)
        else "x".join(dims)
    )


def _rows(data: dict) -> list[dict]:
    rows = []
    for layer in data["layers"][:MAX_ROWS]:
        params = layer["params"]
        rows.append(
            {
                "index": layer["index"],
                "name": layer["name"],
                "path": layer["path"],
                "line": layer["line"],
                "column": layer["column"],
                "output": _shape(layer["out_shape"]),
                "params": _value(params),
                "formula": params["expr"].replace("**", "^")
                if params["expr"] and params["value"] is not None and not params["expr"].lstrip("-").isdigit()
                else "",
                "state": _value(layer["state"]),
                "fan_in": _value(layer["fan_in"]),
                "macs": _value(layer["macs"]),
                "rf": ((layer["receptive_field"] or {}).get("size") or [""])[0] or "",
            }
        )
    return rows


def _equation(network) -> dict:
    """The total as an equation, from paramsym's LaTeX printer (what `paramsym latex` begins with)."""
    return {"equation": typeset.equation(network, "params", typeset.LatexStyle(group_digits=True))}


def _latex(network) -> dict:
    """All of `paramsym latex`: the equation, the per-layer derivation (KaTeX shows both; the booktabs table
    is kept only in the text to copy)."""
    text = paramsym.latex(network, group_digits=True)
    equation = text.split("\\begin{equation}", 1)[1].split("\\end{equation}", 1)[0].strip()
    derivation, rows, blocks = "", 0, []
    if "\\begin{align*}" in text:
        body = text.split("\\begin{align*}", 1)[1].split("\\end{align*}", 1)[0].strip("\n")
        lines = body.split("\n")  # one layer a line
        rows = len(lines)
        if rows > MAX_DERIVATION:
            more = rows - MAX_DERIVATION
            lines = [
                *lines[:MAX_DERIVATION],
                f"  \\ldots\\ \\text{{{more:,} more layers; paramsym latex writes them all}}",
            ]
            lines[MAX_DERIVATION - 1] = lines[MAX_DERIVATION - 1].rstrip(" \\") + " \\\\"
        derivation = "\\begin{aligned}\n" + "\n".join(lines) + "\n\\end{aligned}"
        # the same rows in blocks, which the page draws one after the other (never one long wait)
        for first in range(0, len(lines), DERIVATION_BLOCK):
            block = lines[first : first + DERIVATION_BLOCK]
            block[-1] = block[-1].rstrip(" \\")
            blocks.append("\\begin{aligned}\n" + "\n".join(block) + "\n\\end{aligned}")
    lines = text.split("\n")
    shown = text
    if len(lines) > MAX_LATEX_LINES:
        more = len(lines) - MAX_LATEX_LINES
        shown = "\n".join([*lines[:MAX_LATEX_LINES], f"% … {more:,} more lines; paramsym latex writes them all"])
    # text: all of it (to copy or download); shown: what the tab prints; rows: the layers of the derivation
    return {
        "equation": equation,
        "derivation": derivation,
        "blocks": blocks,
        "rows": rows,
        "text": text,
        "shown": shown,
    }


# ---- the structured layer table (panels/table.js): `paramsym count`'s rows, folded by stage and repeat ----
# Every number is paramsym's: a group's cells are the sums printers._rows makes for `count --fold` (expand(add)),
# a repeat's per-copy cells the same sums divided by the repeat count in SymPy; the page adds nothing itself.
_RANGE = re.compile(r"(.*)\[1\.\.[^\]]+\]")


def _short(value, unit: str) -> str:
    """`6.74 B` for a large number (formatting.readable's unit form), else ""."""
    text = readable(value, unit)
    return text[text.index(" (") + 2 : -1] if text.endswith(")") and " (" in text else ""


def _table_cell(quantity: dict, name: str) -> dict:
    """A cell: the text `count` shows (the number grouped, or the formula), its unit form and exact value."""
    if quantity["expr"] == "":  # no total (a group's fan-in)
        return {"text": ""}
    cell = {"text": printers._brief(quantity)}
    if quantity["value"] is not None:
        cell["value"] = str(quantity["value"])
        cell["short"] = _short(quantity["value"], quantity_unit(name))
    return cell


# ---- the pictures: the Chart, Sweep and Diagram tabs (panels/chart.js, sweep.js, diagram.js) ----
# the most points the Sweep tab draws (`paramsym sweep` itself takes up to 20 million)
MAX_SWEEP_POINTS = 400
# the diagram draws every layer up to this many; beyond, one box per block (a stage, or a repeat of it)
DIAGRAM_LAYERS_UP_TO = 200


def _charted(network) -> list:
    """The layer quantities a chart can show: those with a total (params, MACs, activations, ...), without
    the ones that are 0 everywhere or equal to the parameters (state of a net without BatchNorm, active)."""
    shown = []
    for q in shown_layer_quantities():
        if not q.totalled:  # fan-in: no total, nothing to compare across layers
            continue
        total = network.quantity(q.name)  # None where it needs the input shape: bars of "?"
        if (q.only_if_nonzero and total == 0) or (q.only_if_differs and total == network.quantity(q.only_if_differs)):
            continue
        shown.append({"name": q.name, "title": q.long_title or q.title})
    return shown


def _bar(row: dict, name: str, network) -> dict:
    """One bar: a row of `paramsym count`'s table (a layer, or a folded stage), its number exactly (a string:
    numbers beyond 2^53 stay exact) and as people read it."""
    quantity = row[name]
    first = network.layers[int(str(row["index"]).split("-")[0])].layer
    value = quantity["value"]
    return {
        "label": row["label"],
        "index": str(row["index"]),
        "line": first.pos.line if first.pos else None,
        "column": first.pos.column if first.pos else None,
        "value": None if value is None else str(value),
        "expr": None if quantity["expr"] is None else quantity["expr"].replace("**", "^"),
        "text": "?" if value is None else readable(value, quantity_unit(name)),
        "short": "?" if value is None else unit_text(value, quantity_unit(name)),
    }


def _chart(network, options: dict) -> dict:
    """The bars of the Chart tab: `options["of"]` per layer, or per top-level stage when `options["by"]` is
    "stage" (or "auto" and the table folds: more than 300 layers): the rows of `paramsym count`'s
    table (printers._rows, folded as `--fold` folds), never a number computed here."""
    quantities = _charted(network)
    of = options.get("of") or "params"
    if of not in [q["name"] for q in quantities]:
        of = "params"
    by = options.get("by") or "auto"
    fold = by == "stage" or (by == "auto" and printers.folds_by_default(network))
    rows, per_row = printers._rows(network, network.document(), fold)
    return {
        "of": of,
        "by": "stage" if fold else "layer",
        "per_row": per_row,
        "layers": len(network.layers),
        "quantities": quantities,
        "bars": [_bar(row, of, network) for row in rows],
    }


def _grid(text: str, name: str) -> list[int]:
    """The values of `--grid NAME=TEXT` (`16:128:16`, start:stop:step with the stop included, or `3,5,7`), read
    as `paramsym sweep` reads them (sweeps.parse_grid, which the page cannot import: it needs NumPy)."""
    text = text.strip()
    what = f"--grid {name}"
    if ":" in text:
        parts = text.split(":")
        if len(parts) not in (2, 3) or not all(looks_like_count(p) for p in parts):
            raise ParamsymUsageError(f"{what}={text}: a range is start:stop or start:stop:step, such as 16:256:16")
        start, stop, step = (parse_count(p, what) for p in (*parts, "1")[:3])
        if step < 1 or stop < start or start < 1:
            raise ParamsymUsageError(f"{what}={text}: a range is start:stop:step with 1 <= start <= stop and step >= 1")
        count = (stop - start) // step + 1
        if count > MAX_SWEEP_POINTS:
            raise ParamsymLimitError(
                f"{what}={text} has {count:,} points; the chart draws at most {MAX_SWEEP_POINTS}",
                hint=f"raise the step, or run paramsym sweep PROGRAM --grid {name}={text} for every point",
            )
        return list(range(start, stop + 1, step))
    parts = [p for p in text.split(",") if p.strip()]
    if not parts or not all(looks_like_count(p) for p in parts):
        raise ParamsymUsageError(f"{what}={text}: give whole numbers (3,5,7) or a range (16:256:16)")
    if len(parts) > MAX_SWEEP_POINTS:
        raise ParamsymLimitError(f"{what} has {len(parts):,} values; the chart draws at most {MAX_SWEEP_POINTS}")
    numbers = [parse_count(p, what) for p in parts]
    if any(n < 1 for n in numbers):
        raise ParamsymUsageError(f"{what}={text}: symbols stand for positive whole numbers")
    return numbers


def _default_grid(value) -> str:
    """A range around the symbol's value (its let default or value box): an eighth of it to twice it."""
    if value is None:
        return "8:128:8"
    step = max(1, value // 8)
    return f"{step}:{2 * value}:{step}"


def _title(name: str) -> str:
    """What the quantity menu says: the quantity's title, with its name where the title is only a unit."""
    title = BY_NAME[name].long_title or BY_NAME[name].title
    return f"{name} ({title})" if title == quantity_unit(name) else title


def _sweep(network, request: dict) -> dict:
    """The Sweep tab: one quantity at every value of one symbol, each point exactly as `paramsym solve` evaluates
    it (algebra.solve: the formula with the other symbols bound, and the network's own checks of each point);
    `paramsym sweep --format json` gives the same numbers (tests/test_playground_charts.py)."""
    options = request.get("sweep") or {}
    names = list(network.symbols)
    if not names:
        return {"symbols": [], "message": "The program has no symbols to sweep: write one, such as conv3x3(->C)."}
    name = options.get("symbol") if options.get("symbol") in names else names[0]
    applying = [q for q in budgets() if applies(BY_NAME[q], network)]
    of = options.get("of") if options.get("of") in applying else "params"
    values = network.evaluator().values
    current = values.get(network.symbols[name])
    default = _default_grid(current if isinstance(current, int) else None)
    text = (options.get("grid") or "").strip() or default
    out = {
        "symbols": names,
        "symbol": name,
        "of": of,
        "quantities": applying,
        "titles": {q: _title(q) for q in applying},
        "grid": text,
        "default": default,
        "unit": quantity_unit(of),
    }
    points = _grid(text, name)
    problem = _Problem(network, name, of)
    out["formula"] = human(problem.formula)
    rows = []
    for n in points:
        valid = problem.valid(n)
        try:
            value = problem.f(n)
        except ParamsymError:
            value = None
        whole = isinstance(value, int)
        rows.append(
            {
                "x": n,
                "value": str(value) if whole else None,
                "exact": None if value is None else exact(value),
                "valid": valid and whole,
                "text": readable(value, out["unit"]) if whole else "?",
            }
        )
    out["points"] = rows
    solve = request.get("solve") or {}
    if solve.get("budget") and (solve.get("on") or "params") == of:
        try:
            budget = parse_budget(str(solve["budget"]), of, "the budget")
            out["budget"] = {"value": str(budget), "text": readable(budget, out["unit"])}
        except ParamsymError:
            pass
    return out


def _segments(path: str) -> list[str]:
    """`basic(64)[1]`, `res`, `main`, `conv3x3` of a layer's path (dots inside brackets do not split)."""
    out, depth, start = [], 0, 0
    for position, char in enumerate(path):
        depth += char in "(["
        depth -= char in ")]"
        if char == "." and depth == 0:
            out.append(path[start:position])
            start = position + 1
    return [*out, path[start:]]


def _where(path: str, blocks: set) -> list[str]:
    """The path as people read it: the blocks called (with their copy), then the layer; the combinators' own
    parts (a residual's branch, a concat's) are left out: [`block[3]`, `attn`]."""
    parts = _segments(path)
    kept = [
        part
        for part in parts[:-1]
        if re.split(r"[(\[]", part, maxsplit=1)[0] in blocks or re.fullmatch(r"repeat\[[^\]]*\]", part)
    ]
    out: list[str] = []
    for part in [*kept, parts[-1]]:
        if not out or out[-1] != part:
            out.append(part)
    return out


class _Table:
    def __init__(self, network, document, head: dict, budget: int):
        self.network, self.document, self.head = network, document, head
        self.columns = [q for q in printers._columns("table") if not printers._left_out(q, head)]
        program = getattr(network, "program", None)
        self.blocks = {s.name for s in getattr(program, "statements", ()) if isinstance(s, syntax.Define)}
        self.budget = budget  # how many more rows may be sent (the totals always cover every layer)
        self.sums: dict = {}
        self.formula = False
        self.listed = 0  # the layers sent as rows of their own
        self.fields = False

    def quantity(self, expr, name: str) -> dict:
        return self.document.quantity(expr, name.replace("_", "-"))

    def summed(self, members: list, name: str):
        exprs = tuple(lc.counts[name] for lc in members)
        if any(e is None for e in exprs):
            return None
        key = (name, exprs)
        if key not in self.sums:
            self.sums[key] = exprs[0] if len(exprs) == 1 else expansion.expand(add(exprs))
        return self.sums[key]

    def cells(self, exprs: dict, per: dict | None = None, times: str = "") -> dict:
        """The row's cells from {quantity: expr}: per-layer quantities without a total are left empty."""
        out = {}
        for q in self.columns:
            if q.name not in exprs:
                out[q.name] = {"text": ""}
                continue
            cell = _table_cell(self.quantity(exprs[q.name], q.name), q.name)
            one = self.quantity(per[q.name], q.name) if per is not None and q.name in per and cell["text"] else None
            if one is not None and one["expr"] != "0":  # `32 × 0` says nothing
                cell["per"] = printers._brief(one)
                cell["times"] = times
            out[q.name] = cell
        main = self.columns[0].name
        quantity = self.quantity(exprs.get(main), main) if main in exprs else {"expr": "", "value": None}
        if printers._symbolic(quantity) and quantity["value"] is not None:
            out["formula"] = {"text": human(quantity["expr"])}
            self.formula = True
        return out

    def node(self, members: list, label: str, children, times_expr=None, per=None, count: int | None = None) -> dict:
        first, last = members[0].layer, members[-1].layer
        exprs = {q.name: self.summed(members, q.name) for q in self.columns if q.totalled}
        times = ""
        if count is not None:
            times = f"{count:,}"
        elif times_expr is not None:
            times = printers._brief(self.quantity(times_expr, "count"))
        if per is None and times_expr is not None:
            per = {name: expansion.expand(expr / times_expr) for name, expr in exprs.items() if expr is not None}
        field = self.document.field(last.field)
        self.fields = self.fields or field is not None
        return {
            "key": f"{first.index}-{last.index}:{label}",
            "index": f"{first.index}-{last.index}",
            "label": label,
            # the command's label of the row (`block[1..L]`, `b[1..3]`, `conv3x3 .. relu`)
            "path": printers._label(
                printers._first_segment(first.path), printers._first_segment(last.path), " .. " in label
            ),
            "line": first.pos.line,
            "column": first.pos.column,
            "layers": len(members),
            "times": times,
            "output": printers._shape(self.document.shape(last.stage_out_shape or last.out_shape))
            if last.stage_out_shape is not None
            else "",
            "cells": self.cells(exprs, per, times),
            "rf": printers._field_cell(field) if field is not None else "?",
            "children": children,
        }

    def layer(self, lc) -> dict:
        layer = lc.layer
        self.listed += 1
        exprs = {q.name: lc.counts[q.name] for q in self.columns}
        times, per = "", None
        if layer.multiplier != 1:
            times = printers._brief(self.quantity(layer.multiplier, "count"))
            per = {n: expansion.expand(e / layer.multiplier) for n, e in exprs.items() if e is not None}
            per = {q.name: per[q.name] for q in self.columns if q.name in per and q.repeats}
        field = self.document.field(layer.field)
        self.fields = self.fields or field is not None
        return {
            "key": f"{layer.index}",
            "index": str(layer.index),
            "label": layer.name,
            "where": _where(layer.path, self.blocks),
            "path": layer.path,
            "line": layer.pos.line,
            "column": layer.pos.column,
            "layers": 1,
            "times": times,
            "output": printers._shape(self.document.shape(layer.out_shape)),
            "cells": self.cells(exprs, per, times),
            "rf": printers._field_cell(field) if field is not None else "?",
            "children": None,
        }

    def take(self, n: int) -> bool:
        """Whether n more rows may be sent."""
        if self.budget < n:
            return False
        self.budget -= n
        return True

    def stage(self, stage: list) -> dict:
        """A top-level stage: a layer, a block, a repeat (its copies, or one copy counted N times)."""
        if len(stage) == 1:
            return self.layer(stage[0])
        copies: list[list] = []
        for lc in stage:
            segment = printers._first_segment(lc.layer.path)
            if copies and printers._first_segment(copies[-1][0].layer.path) == segment:
                copies[-1].append(lc)
            else:
                copies.append([lc])
        first, last = (printers._first_segment(stage[i].layer.path) for i in (0, -1))
        label = printers._label(first, last, False)
        if len(copies) > 1 and all(
            printers._REPEAT.fullmatch(printers._first_segment(c[0].layer.path)) for c in copies
        ):
            # numeric repeats, unrolled: one row per copy; the per-copy cells only when the copies count alike
            children = [self.copy(c) for c in copies] if self.take(len(copies)) else None
            sums = [{q.name: self.summed(c, q.name) for q in self.columns if q.totalled} for c in copies]
            alike = all(s == sums[0] for s in sums)
            base = printers._REPEAT.fullmatch(first).group(1)
            return self.node(stage, base, children, per=sums[0] if alike else None, count=len(copies)) | (
                {} if alike else {"differ": True}
            )
        children = [self.layer(lc) for lc in stage] if self.take(len(stage)) else None
        symbolic = _RANGE.fullmatch(first)
        if symbolic and len(copies) == 1:
            times = functools.reduce(sympy.gcd, [lc.layer.multiplier for lc in stage])
            if times != 1:
                return self.node(stage, symbolic.group(1), children, times_expr=times)
        return self.node(stage, label, children)

    def copy(self, members: list) -> dict:
        if len(members) == 1:
            return self.layer(members[0])
        children = [self.layer(lc) for lc in members] if self.take(len(members)) else None
        return self.node(members, printers._first_segment(members[0].layer.path), children)

    def rows(self) -> list[dict]:
        stages = printers._stages(self.network)
        # identical consecutive stages (the same block, counting the same) are one row `block ×n`
        runs: list[list] = []
        for stage in stages:
            signature = tuple((lc.layer.path, tuple(lc.counts[q.name] for q in self.columns)) for lc in stage)
            if runs and runs[-1][0] == signature:
                runs[-1][1].append(stage)
            else:
                runs.append((signature, [stage]))
        items = []  # (the layers of a row, how to make the row)
        for _, run in runs:
            members = [lc for stage in run for lc in stage]
            if len(run) == 1:
                items.append((members, lambda run=run: self.stage(run[0])))
                continue

            def repeated(run=run, members=members):
                children = [self.stage(s) for s in run] if self.take(len(run)) else None
                per = {q.name: self.summed(run[0], q.name) for q in self.columns if q.totalled}
                label = printers._first_segment(run[0][0].layer.path)
                return self.node(members, label, children, per=per, count=len(run))

            items.append((members, repeated))
        if len(items) <= printers.FOLD_ABOVE:
            self.budget -= len(items)
            return [make() for _, make in items]
        # more stages than a table can show: consecutive ones share a row, as `count --fold` groups them
        per_row = -(-len(items) // printers.FOLDED_ROWS)
        self.budget -= -(-len(items) // per_row)
        out = []
        for start in range(0, len(items), per_row):
            group = items[start : start + per_row]
            members = [lc for m, _ in group for lc in m]
            label = printers._label(
                printers._first_segment(members[0].layer.path), printers._first_segment(members[-1].layer.path), True
            )
            children = [make() for _, make in group] if self.take(len(group)) else None
            out.append(self.node(members, label, children))
        return out


def _table(network, request) -> dict:
    """The table's rows as a tree: one row per top-level stage (with its sums), its copies, its layers."""
    document = network.document()
    head = document.head()
    table = _Table(network, document, head, MAX_ROWS)
    rows = table.rows()
    main = table.columns[0].name
    total = {q.name: _table_cell(head[q.name], q.name) if q.totalled else {"text": ""} for q in table.columns}
    if table.formula:
        total["formula"] = {"text": human(head[main]["expr"])}
    columns = [{"key": q.name, "title": q.title} for q in table.columns]
    if table.formula:
        columns.insert(1, {"key": "formula", "title": "formula"})
    return {
        "columns": columns,
        "rf": table.fields,
        "fold": printers.folds_by_default(network),
        "layers": len(network.layers),
        "unlisted": len(network.layers) - table.listed,  # layers without a row of their own (in a group's sums)
        "rows": rows,
        "total": {"label": "total", "output": printers._shape(head["output_shape"]), "cells": total},
    }


# ---- the memory-and-cost panel (panels/cost.js) ----------------------------------------------------------------
# The panel's settings are the run options of the command line (`--dtype bf16 --train --batch 8 ...`, core/setup.py);
# `mode` is "serve" or "train" (`--train`). The options that apply to training alone are left out when serving.
SERVE_OPTIONS = ("dtype", "weights", "kv", "activations", "attention", "batch", "device")
TRAIN_OPTIONS = (*SERVE_OPTIONS, "optimizer", "precision", "recompute", "gpus", "zero", "tp", "pp", "tokens", "mfu")
# what the stacked bar adds up: (key, label, quantity), in the order of the bar
SERVE_PARTS = (("weights", "weights", "param_bytes"), ("kv", "KV cache", "serve_memory_bytes"))
TRAIN_PARTS = (
    ("weights", "weights", "weight_bytes"),
    ("grads", "gradients", "grad_bytes"),
    ("optimizer", "optimizer states", "optimizer_bytes"),
    ("activations", "activations", "train_memory_bytes"),
)
# the FLOPs and times under the bar, each where it applies
SERVE_ROWS = (
    ("flops", "FLOPs, forward"),
    ("prefill_flops", "FLOPs, prefill"),
    ("decode_flops", "FLOPs, a decode step"),
    ("decode_bytes", "bytes read, a decode step"),
    ("decode_ns_per_token", "time a token"),
    ("tokens_per_second", "tokens per second"),
)
TRAIN_ROWS = (
    ("flops", "FLOPs, forward"),
    ("train_flops", "FLOPs, a training step"),
    ("train_flops_total", "FLOPs, the whole run"),
    ("train_seconds", "training time"),
)


# after an exact figure: its unit where the readable one changed it (9,074,274 ns is `9.07 ms`)
EXACT_UNITS = {"ns": " ns", "seconds": " s", "bytes": " bytes"}


def cost_options(options: dict) -> dict[str, str]:
    """The run options the panel's settings give: option name -> text (as typed after `--name`)."""
    train = options.get("mode") == "train"
    chosen = {}
    for name in TRAIN_OPTIONS if train else SERVE_OPTIONS:
        value = options.get(name)
        if value is not None and str(value).strip() != "":
            chosen[name] = str(value).strip()
    return chosen


def cost_setup(options: dict):
    """The Setup of the panel's settings, built by the command line's own rules (core/setup.py, build_setup):
    the same checks and the same messages as `paramsym count --dtype ... --train ...`."""
    return build_setup(train=options.get("mode") == "train", **cost_options(options))


def cost_command(options: dict) -> list[str]:
    """The command line's options for the panel's settings (the ones that differ from its defaults)."""
    chosen = cost_options(options)
    words = ["--train"] if options.get("mode") == "train" else []
    for name, text in chosen.items():
        if _DEFAULTS.get(name) != text:
            words.append(f"--{name} {text}")
    return words


# what the command line takes when an option is not given (left out of the command the panel shows)
_DEFAULTS = {"dtype": "fp32", "batch": "1", "attention": "math", "optimizer": "adamw", "precision": "fp32"}
_DEFAULTS.update(recompute="none", gpus="1", zero="0", tp="1", pp="1")


def _readable(value, unit: str) -> str:
    return "?" if value is None else unit_text(value, unit)


def _cost(network, request) -> dict:
    """The memory and cost of the network as the panel's settings run it: the parts of the memory (a stacked bar),
    whether it fits on the device, the FLOPs and times, and the lines `paramsym count` prints for them."""
    setup = cost_setup(request.get("cost") or {})
    if network.setup != setup:  # (_run applied it already)
        network = network.with_options(setup=setup)
    data = network.document().head()

    def value(name: str):
        quantity = data.get(name)
        return None if quantity is None or quantity["value"] is None else Fraction(quantity["value"])

    decodes = is_decoder(network)
    if setup.train:
        total_name = "train_memory_bytes"
        parts = [[key, label, value(name)] for key, label, name in TRAIN_PARTS]
        # the activations this device keeps: the training memory less the model states (with --tp, a share)
        total, states = value(total_name), value("model_state_bytes")
        parts[3][2] = None if total is None or states is None else total - states
    elif decodes:
        total_name = "serve_memory_bytes"
        total, weights = value(total_name), value("param_bytes")
        parts = [["weights", "weights", weights], ["kv", "KV cache", None if total is None else total - weights]]
    else:
        total_name = "param_bytes"
        total = value(total_name)
        parts = [["weights", "weights", total]]
    device = setup.device
    context = None
    found = decoder(network) if decodes else None
    if found is not None and found.T.is_Symbol and found.T.name in network.symbols:
        symbol = data["symbols"][found.T.name]
        context = {"symbol": found.T.name, "value": symbol["default"]}
    return {
        "mode": "train" if setup.train else "serve",
        "decoder": decodes,
        "formats": setup.formats(),
        "parts": [
            {"key": key, "label": label, "value": None if v is None else int(v), "text": _readable(v, "bytes")}
            for key, label, v in parts
        ],
        "total": {
            "name": total_name,
            "value": None if total is None else int(total),
            "text": _readable(total, "bytes"),
            "exact": "?" if total is None else exact(total),
        },
        "rows": [
            {
                "name": name,
                "label": label,
                "value": data[name]["value"],
                "text": _readable(value(name), BY_NAME[name].unit),
                "exact": "?" if value(name) is None else exact(value(name)) + EXACT_UNITS.get(BY_NAME[name].unit, ""),
            }
            for name, label in (TRAIN_ROWS if setup.train else SERVE_ROWS)
            if name in data
        ],
        "device": None
        if device is None
        else {"name": device.name, "memory": device.memory, "text": _readable(device.memory, "bytes")},
        "fits": _fits(total, device, setup.train, setup.gpus),
        "fits_all": [
            {**_fits(total, d, setup.train, setup.gpus), "device": name, "short": _verdict(total, d, name, setup.train)}
            for name, d in DEVICES.items()
        ],
        "devices": devices(),
        "options": cost_command(request.get("cost") or {}),
        "context": context,
        "lines": cost_lines(network, data),
    }


def _fits(need, device, train: bool, gpus) -> dict | None:
    """Whether the memory fits on the device: serving on as many devices as the memory needs (split evenly);
    training as it is spread (--gpus, --zero, --tp: the memory is per device)."""
    if device is None or device.memory is None:
        return None
    name, memory = device.name, device.memory
    if need is None:
        return {"verdict": "unknown", "count": None, "used": None, "text": "? (the memory is not known)"}
    if train:
        used = need / memory
        devices = f"{gpus}× {name}" if gpus != 1 else f"1× {name}"
        if need <= memory:
            return {
                "verdict": "fits",
                "count": None,
                "used": float(used),
                "text": f"fits on {devices} ({_percent(used)} of each used)",
            }
        return {
            "verdict": "no",
            "count": None,
            "used": float(used),
            "text": f"does not fit on {devices}: {bytes_text(need, binary=False)} a device, "
            f"{_percent(used)} of its {bytes_text(memory, binary=False)}",
        }
    count = max(1, math.ceil(need / memory))
    used = need / (count * memory)
    if count == 1:
        text = f"fits on 1× {name} ({_percent(used)} used)"
    else:
        text = f"needs {count}× {name} (split evenly, {_percent(used)} of each used)"
    return {"verdict": "fits" if count == 1 else "needs", "count": count, "used": float(used), "text": text}


def _verdict(need, device, name: str, train: bool) -> str:
    """A device's verdict in a word: `h100 ✓`, `t4 ×2` (serving on two), `l4 ✗` (training that does not fit)."""
    if need is None:
        return f"{name} ?"
    count = math.ceil(need / device.memory)
    return f"{name} ✓" if count <= 1 else f"{name} ✗" if train else f"{name} ×{count}"


def _percent(fraction: Fraction) -> str:
    return f"{float(fraction) * 100:.0f} %"


def devices() -> list[list[str]]:
    """The devices of `--device`: [name, label] with their memory."""
    return [[name, f"{name} ({bytes_text(d.memory, binary=False)})"] for name, d in DEVICES.items()]


# The labels of the solve box's `on` menu: what each budget limits, in words, with its unit
BUDGET_LABELS = {
    "params": "parameters",
    "active": "active parameters",
    "kv_cache": "KV cache (values)",
    "total": "total (params + state)",
    "macs": "MACs",
    "memory": "memory: weights + activations (bytes)",
    "kv_cache_bytes": "KV cache (bytes)",
    "serve_memory_bytes": "memory to serve (bytes)",
    "train_memory_bytes": "training memory a device (bytes)",
    "decode_ns_per_token": "decode time a token (ns)",
    "prefill_ns": "prefill time (ns)",
}
UNIT_WORDS = {"bytes": "bytes", "flops": "FLOPs", "seconds": "seconds", "ns": "ns"}


def budget_options(network) -> list[dict]:
    """What a budget can limit for this network as it is run: the quantities that apply to it (no KV cache for a
    network that does not decode, no training memory when serving), each with a label in words."""
    decodes = is_decoder(network)
    options = []
    for name in budgets():
        q = BY_NAME[name]
        if not applies(q, network) or (name in ("kv_cache", "kv_cache_bytes") and not decodes):
            continue
        label = BUDGET_LABELS.get(name)
        if label is None:
            words = UNIT_WORDS.get(q.unit)
            title = q.long_title or q.title
            label = f"{title} ({words})" if words and words.lower() not in title.lower() else title
        options.append({"name": name, "label": label})
    return options


# The export bar's formats: what `paramsym ...` prints for the page's program, values and convention. `latex` and
# `export` take no --convention (the convention changes neither; the tests compare with the command without it).
EXPORTS = {
    "json": ("count --format json", "json"),
    "csv": ("count --format csv", "csv"),
    "markdown": ("count --format markdown", "md"),
    "latex": ("latex --group-digits", "tex"),
    "latex-document": ("latex --group-digits --standalone", "tex"),
    "torch": ("export --to torch", "py"),
    "keras": ("export --to keras", "py"),
}


def _export_text(network, fmt: str) -> str:
    """The very functions the CLI's count, latex and export commands call, with their defaults."""
    if fmt in ("json", "csv", "markdown"):
        return "".join(render_chunks(network, fmt, None))
    if fmt in ("latex", "latex-document"):
        return latex_document(network, on="params", names={}, group_digits=True, standalone=fmt == "latex-document")
    if fmt == "torch":
        from paramsym.frameworks.export import torch_source

        return torch_source(network)
    from paramsym.frameworks.keras_export import keras_source

    return keras_source(network)


def _export(network, request) -> dict:
    """One format of the export bar, asked for when a button is clicked (request["export"]["format"]). count and
    latex take the cost panel's run options (request["cost"]: `--dtype bf16 --train ...`), which _run has given
    the network already; `export` takes none (the source does not depend on them)."""
    options = request.get("export") or {}
    fmt = options.get("format") if isinstance(options, dict) else None
    if fmt not in EXPORTS:
        raise paramsym.ParamsymUsageError(f"no export format {fmt!r}", hint="one of " + ", ".join(EXPORTS))
    command, extension = EXPORTS[fmt]
    run_options = []
    if request.get("cost") is not None and not command.startswith("export"):
        setup = cost_setup(request["cost"])  # a wrong setting: the command's message, not a file without it
        run_options = cost_command(request["cost"])
        if network.setup != setup:  # _run counted without them, as they fail with the values: the command fails too
            solve = request.get("solve") or {}
            unknown = (solve.get("symbol") or "").strip() if solve.get("budget") else ""
            bare = paramsym.parse(request.get("program", ""), convention=request.get("convention") or "torch")
            network, _ = _with_values(bare.with_options(setup=setup), request, unknown)
    try:
        text = _export_text(network, fmt)
    except paramsym.ParamsymError as error:
        raise network.locate(error) from None  # as the CLI does: a number too large, at its layer
    return {
        "format": fmt,
        "text": text,
        "extension": extension,
        "command": " ".join(["paramsym", command, *run_options]),
    }


def _params_text(document, exprs: list) -> dict:
    """The parameters of a group of layers, summed as a folded table row sums them, exactly and with units."""
    if any(e is None for e in exprs):
        return {"value": None, "text": "?"}
    value = document.quantity(expansion.expand(add(exprs)), "params")["value"]
    return {"value": None if value is None else str(value), "text": "?" if value is None else count_text(value)}


def _diagram(network, request: dict) -> dict:
    """The Diagram tab: the network's structure (network.structure, the tree every export walks) as nested
    boxes: layers, blocks (a def's call: the first step of the layers' paths), merges (res, add, concat,
    mul, ...) with their branches, symbolic repeats (one box, x count); consecutive copies of a block (a
    numeric repeat, unrolled by paramsym as `block[1]`, `block[2]`...) drawn once, x n. Big networks: one box per
    block (`detail`)."""
    options = request.get("diagram") or {}
    document = network.document()
    layers = network.layers
    detail = options.get("detail") or "auto"
    boxes_only = detail == "blocks" or (detail == "auto" and len(layers) > DIAGRAM_LAYERS_UP_TO)

    def indices(node) -> list[int]:
        if node.layer is not None:
            return [node.layer]
        return [i for child in node.children for i in indices(child)]

    def where(i: int) -> dict:
        pos = layers[i].layer.pos
        return {"line": pos.line if pos else None, "column": pos.column if pos else None}

    def walk(node, depth: int) -> dict:
        kind = node.kind
        if node.layer is not None:
            lc = layers[node.layer]
            return {
                "type": "layer",
                "name": lc.layer.name,
                "path": lc.layer.path,
                "index": node.layer,
                "params": _params_text(document, [lc.counts.params]),
                **where(node.layer),
            }
        children = node.children
        if kind.key == "seq":
            return {"type": "seq", "children": group([walk(c, depth + 1) for c in children], children, depth + 1)}
        made = {
            "type": "repeat" if kind.key == "repeat" else "merge",
            "kind": kind.key,
            "keyword": getattr(kind, "keyword", None) or kind.key,
            "count": None if node.count is None else human(node.count),
            "branches": [walk(c, depth + 1) for c in children],
        }
        if kind.key == "repeat":
            made["count_value"] = _value_of(network, node.count)
        made["params"] = _params_text(document, [layers[i].counts.params for i in indices(node)])
        made.update(where(indices(node)[0]) if indices(node) else {"line": None, "column": None})
        made["layers"] = len(indices(node))
        return made

    def block_of(item: dict, node, depth: int) -> str | None:
        """The block a node of a sequence belongs to: the path step at `depth` of its layers, when all agree."""
        found = {tuple(_segments(layers[i].layer.path)[:1]) for i in indices(node)}
        return next(iter(found))[0] if len(found) == 1 else None

    def group(items: list[dict], nodes: list, depth: int) -> list[dict]:
        """Consecutive items of one block (the layers of a def's call) in a box of their own; consecutive copies
        of a block (`basic(64)[1]`, `basic(64)[2]`) drawn once, x n."""
        if depth != 1:
            return items
        grouped: list[dict] = []
        for item, node in zip(items, nodes):
            name = block_of(item, node, depth)
            ids = indices(node)
            single_layer = item["type"] == "layer" and _segments(item["path"]) == [item["path"]]
            if name is None or single_layer:
                grouped.append(item)
                continue
            last = grouped[-1] if grouped else None
            if last is not None and last.get("type") == "block" and last["name"] == name:
                last["children"].append(item)
                last["ids"].extend(ids)
            else:
                grouped.append({"type": "block", "name": name, "children": [item], "ids": list(ids)})
        out: list[dict] = []
        for item in grouped:
            if item.get("type") != "block":
                out.append(item)
                continue
            item["params"] = _params_text(document, [layers[i].counts.params for i in item["ids"]])
            item.update(where(item["ids"][0]))
            item["layers"] = len(item["ids"])
            match = printers._REPEAT.fullmatch(item["name"])
            previous = out[-1] if out else None
            if (
                match
                and previous is not None
                and previous.get("type") == "block"
                and previous["base"] == match.group(1)
                and int(match.group(2)) == previous["last"] + 1
                and previous["shape"] == _shape_of(item)
            ):
                previous["times"] += 1
                previous["last"] += 1
                previous["all_ids"].extend(item["ids"])
                continue
            item["base"] = match.group(1) if match else item["name"]
            item["last"] = int(match.group(2)) if match else None
            item["times"] = 1
            item["shape"] = _shape_of(item)
            item["all_ids"] = list(item["ids"])
            out.append(item)
        for i, item in enumerate(out):
            if item.get("type") == "block" and item["times"] == 1 and len(item["children"]) == 1:
                only = item["children"][0]  # a block that is one repeat or one merge: no frame around it
                if only["type"] != "layer":
                    out[i] = {**only, "label": item["name"]}
                    continue
            if item.get("type") == "block":
                if item["times"] > 1:
                    item["each"] = item["params"]
                    item["params"] = _params_text(document, [layers[i].counts.params for i in item["all_ids"]])
                    item["label"] = f"{item['base']} \u00d7{item['times']}"
                else:
                    item["label"] = item["name"]
                for key in ("ids", "all_ids", "shape", "last"):
                    item.pop(key)
        return out

    tree = walk(network.structure, 0)
    return {
        "tree": tree,
        "layers": len(layers),
        "boxes_only": boxes_only,
        "detail": detail,
        "params": _params_text(document, [lc.counts.params for lc in layers]),
    }


def _shape_of(item: dict) -> str:
    """The structure of a block without its names' arguments: copies of a block compare equal."""

    def shape(node: dict) -> str:
        if node["type"] == "layer":
            return node["name"]
        inner = node.get("children") or node.get("branches") or []
        return f"{node['type']}:{node.get('kind', '')}(" + ",".join(shape(c) for c in inner) + ")"

    return shape(item)


def _value_of(network, expr) -> str | None:
    """A symbolic repeat count's value, when the symbols in it have values."""
    try:
        value = network.evaluator().integer(expr, "repeat count")
    except ParamsymError:
        return None
    return None if value is None else count_text(value)


# What the page can ask for besides the counts: name -> make(network, request) -> JSON-ready value. The panels of
# the page (docs/playground/panels/*.js) each ask for the part named by their id, with their options in
# request[id]; a ParamsymError becomes result[name + "_error"].
PARTS = {
    "equation": lambda network, request: _equation(network),
    "latex": lambda network, request: _latex(network),
    "explain": lambda network, request: explain(network),
    "table": _table,
    "cost": _cost,
    "export": _export,
    "chart": lambda network, request: _chart(network, request.get("chart") or {}),
    "sweep": _sweep,
    "diagram": _diagram,
}


def _with_values(network, request: dict, unknown: str):
    """The network with the values of its boxes (all but the one a solve is for), and its JSON document."""
    given = {
        name: text.strip()
        for name, text in (request.get("values") or {}).items()
        if text and text.strip() and name in network.symbols and name != unknown
    }
    values = parse_assignments([f"{name}={text}" for name, text in given.items()], network.symbols)
    if values:
        network = network.with_values(**values)
    return network, network.to_dict()


def run(request_json: str) -> str:
    try:
        return _run(request_json)
    except Exception as error:  # a bug of ours: shown on the page, never a dead page
        import traceback

        return json.dumps(
            {
                "ok": False,
                "tokens": [],
                "ms": 0,
                "error": {
                    "where": "internal",
                    "kind": "internal error",
                    "message": repr(error),
                    "line": None,
                    "column": None,
                    "hint": None,
                    "text": "internal error (please report it):\n" + traceback.format_exc(),
                },
            }
        )


def _run(request_json: str) -> str:
    started = time.perf_counter()
    request = json.loads(request_json)
    program = request.get("program", "")
    result = {"tokens": tokens(program), "ok": False}
    try:
        network = paramsym.parse(program, convention=request.get("convention") or "torch")
    except paramsym.ParamsymError as error:
        result["error"] = _error(error.with_source(program), "program")
        result["ms"] = (time.perf_counter() - started) * 1000
        return json.dumps(result)
    # the cost panel's run options (--dtype, --train, ...) apply to every part (the solve too); where they are wrong,
    # or cannot be counted together, the panel shows the CLI's message and the rest is counted without them
    bare, setup_error = network, None
    if request.get("cost") is not None:
        try:
            network = network.with_options(setup=cost_setup(request["cost"]))
        except paramsym.ParamsymError as error:
            setup_error = error
    solve = request.get("solve") or {}
    unknown = (solve.get("symbol") or "").strip() if solve.get("budget") else ""
    unset = network  # (the `let` defaults of the boxes: before their values)
    try:
        network, data = _with_values(network, request, unknown)
    except paramsym.ParamsymError as error:
        try:
            if network is bare:
                raise
            unset = bare
            network, data = _with_values(bare, request, unknown)
            setup_error = error
        except paramsym.ParamsymError:
            result["error"] = _error(error, "values")
            result["ms"] = (time.perf_counter() - started) * 1000
            return json.dumps(result)
    result["symbols"] = {name: unset.defaults.get(name) for name in unset.symbols}
    result["budgets"] = list(budgets())
    if request.get("raw"):  # the whole JSON document of `paramsym count --format json` (the tests compare it)
        result["data"] = json.loads(paramsym.render.printers.render_json(network))
    result.update(
        ok=True,
        rows=_rows(data),
        layers=len(data["layers"]),
        summary=summary_lines(network, data),
        budget_options=budget_options(network),
        params=data["params"],
        total=data["total"],
        macs=data["macs"],
        state=data["state"],
        # the totals as people read them (`6.74 B`) beside the exact numbers, where they are large
        short={
            key: _short(data[key]["value"], quantity_unit(key))
            for key in ("params", "state", "total", "macs")
            if data[key]["value"] is not None
        },
    )
    # the equation always; the rest of the LaTeX, explain and each panel's part when the page shows them
    parts = request.get("parts", ("equation", "latex", "explain"))
    for part in parts:
        if part not in PARTS:
            continue
        if part == "cost" and setup_error is not None:
            result["cost"], result["cost_error"] = None, _error(setup_error, "cost")
            continue
        try:
            result[part] = PARTS[part](network, request)
        except paramsym.ParamsymError as error:
            result[part] = None
            result[part + "_error"] = _error(error, part)
    if unknown:
        try:
            on = solve.get("on") or "params"
            budget = parse_budget(str(solve["budget"]), on)  # the CLI's message: `--budget '16GB': GB is ...`
            solution = paramsym.solve(network, unknown, budget, on=on, mode=solve.get("mode") or "at-most")
            result["solve"] = {"text": solution.describe(), **solution.to_dict()}
            # the answer as people read it: `B = 2`, `L = 33`, `C = 1,234,567 (1.23 M)`
            answers = result["solve"].get("values") if result["solve"].get("mode") == "exact" else [solution.value]
            result["solve"]["readable"] = [readable(v) if isinstance(v, int) else str(v) for v in answers or []]
        except paramsym.ParamsymError as error:
            result["solve"] = {"error": _error(error, "solve")}
    result["ms"] = (time.perf_counter() - started) * 1000
    return json.dumps(result)
