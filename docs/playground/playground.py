"""The Python half of the playground page: runs inside Pyodide (and under CPython in the tests).

`run(request_json) -> result_json` takes what the page's inputs hold and gives back everything the
page shows: the tokens of paramsym's own lexer for the highlighting, the table, the totals, the LaTeX,
`explain`, the answer of a solve, or the error with its line and column. Only paramsym's public API
and its click-free modules are used: no numpy, rich or click is needed.
"""

from __future__ import annotations

import json
import time

from lark.exceptions import UnexpectedCharacters
from lark.lexer import LexerThread

import paramsym
from paramsym.algebra.solve import parse_budget
from paramsym.core.quantities import budgets
from paramsym.language import syntax
from paramsym.language.assignments import parse_assignments
from paramsym.render import typeset
from paramsym.render.explain import explain
from paramsym.render.printers import render_chunks, summary_lines
from paramsym.render.typeset import render as latex_document

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
    """One format of the export bar, asked for when a button is clicked (request["export"]["format"]). The
    memory setup: the network is the one the page shows; when a cost panel gives it a Setup
    (network.with_options(setup=...) in _run, from request["cost"]), count and latex follow it as the CLI's
    run options do (`export` takes none)."""
    options = request.get("export") or {}
    fmt = options.get("format") if isinstance(options, dict) else None
    if fmt not in EXPORTS:
        raise paramsym.ParamsymUsageError(f"no export format {fmt!r}", hint="one of " + ", ".join(EXPORTS))
    try:
        text = _export_text(network, fmt)
    except paramsym.ParamsymError as error:
        raise network.locate(error) from None  # as the CLI does: a number too large, at its layer
    command, extension = EXPORTS[fmt]
    return {"format": fmt, "text": text, "extension": extension, "command": "paramsym " + command}


# What the page can ask for besides the counts: name -> make(network, request) -> JSON-ready value. The panels of
# the page (docs/playground/panels/*.js) each ask for the part named by their id, with their options in
# request[id]; a ParamsymError becomes result[name + "_error"].
PARTS = {
    "equation": lambda network, request: _equation(network),
    "latex": lambda network, request: _latex(network),
    "explain": lambda network, request: explain(network),
    "export": _export,
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
