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
from paramsym import expansion
from paramsym.algebra.solve import _Problem, parse_budget
from paramsym.core.formatting import count_text, exact, human, quantity_unit, readable, unit_text
from paramsym.core.quantities import BY_NAME, add, applies, budgets, shown_layer_quantities
from paramsym.errors import ParamsymError, ParamsymLimitError, ParamsymUsageError
from paramsym.language import syntax
from paramsym.language.assignments import parse_assignments
from paramsym.language.syntax import looks_like_count, parse_count
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
    "chart": lambda network, request: _chart(network, request.get("chart") or {}),
    "sweep": _sweep,
    "diagram": _diagram,
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
