"""The Python half of the playground page: runs inside Pyodide (and under CPython in the tests).

`run(request_json) -> result_json` takes what the page's inputs hold and gives back everything the
page shows: the tokens of paramsym's own lexer for the highlighting, the table, the totals, the LaTeX,
`explain`, the answer of a solve, or the error with its line and column. Only paramsym's public API
and its click-free modules are used: no numpy, rich or click is needed.
"""

from __future__ import annotations

import functools
import json
import re
import time

import sympy
from lark.exceptions import UnexpectedCharacters
from lark.lexer import LexerThread

import paramsym
from paramsym import expansion
from paramsym.algebra.solve import parse_budget
from paramsym.core.formatting import human, quantity_unit, readable
from paramsym.core.quantities import add, budgets
from paramsym.language import syntax
from paramsym.language.assignments import parse_assignments
from paramsym.render import printers, typeset
from paramsym.render.explain import explain
from paramsym.render.printers import summary_lines

KEYWORDS = {"DEF", "LET", "RES", "ADD", "CONCAT", "MUL", "MOE", "AUX", "AS"}
OPERATORS = {"ARROW", "MORETHAN", "VBAR", "STAR", "SLASH", "POW", "ADDOP", "EQUAL", "X"}
PUNCTUATION = {"LPAR", "RPAR", "COMMA", "_SEP"}
# how many layers the table shows; the totals always cover the whole network
MAX_ROWS = 2000


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
    derivation = ""
    if "\\begin{align*}" in text:
        body = text.split("\\begin{align*}", 1)[1].split("\\end{align*}", 1)[0].strip("\n")
        derivation = "\\begin{aligned}\n" + body + "\n\\end{aligned}"
    return {"equation": equation, "derivation": derivation, "text": text}


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


def _segments(path: str) -> list[str]:
    """`block[1..L].res.main.attn` -> [`block[1..L]`, `res`, `main`, `attn`]: dots inside brackets do not split."""
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


# What the page can ask for besides the counts: name -> make(network, request) -> JSON-ready value. The panels of
# the page (docs/playground/panels/*.js) each ask for the part named by their id, with their options in
# request[id]; a ParamsymError becomes result[name + "_error"].
PARTS = {
    "equation": lambda network, request: _equation(network),
    "latex": lambda network, request: _latex(network),
    "explain": lambda network, request: explain(network),
    "table": _table,
}


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
    result["symbols"] = {name: network.defaults.get(name) for name in network.symbols}
    result["budgets"] = list(budgets())
    solve = request.get("solve") or {}
    unknown = (solve.get("symbol") or "").strip() if solve.get("budget") else ""
    given = {
        name: text.strip()
        for name, text in (request.get("values") or {}).items()
        if text and text.strip() and name in network.symbols and name != unknown
    }
    try:
        values = parse_assignments([f"{name}={text}" for name, text in given.items()], network.symbols)
        if values:
            network = network.with_values(**values)
        data = network.to_dict()
    except paramsym.ParamsymError as error:
        result["error"] = _error(error, "values")
        result["ms"] = (time.perf_counter() - started) * 1000
        return json.dumps(result)
    if request.get("raw"):  # the whole JSON document of `paramsym count --format json` (the tests compare it)
        result["data"] = json.loads(paramsym.render.printers.render_json(network))
    result.update(
        ok=True,
        rows=_rows(data),
        layers=len(data["layers"]),
        summary=summary_lines(network, data),
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
        try:
            result[part] = PARTS[part](network, request)
        except paramsym.ParamsymError as error:
            result[part] = None
            result[part + "_error"] = _error(error, part)
    if unknown:
        try:
            on = solve.get("on") or "params"
            budget = parse_budget(str(solve["budget"]), on, "the budget")
            solution = paramsym.solve(network, unknown, budget, on=on, mode=solve.get("mode") or "at-most")
            result["solve"] = {"text": solution.describe(), **solution.to_dict()}
        except paramsym.ParamsymError as error:
            result["solve"] = {"error": _error(error, "solve")}
    result["ms"] = (time.perf_counter() - started) * 1000
    return json.dumps(result)
