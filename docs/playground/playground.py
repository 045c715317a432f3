"""The Python half of the playground page: runs inside Pyodide (and under CPython in the tests).

`run(request_json) -> result_json` takes what the page's inputs hold and gives back everything the
page shows: the tokens of paramsym's own lexer for the highlighting, the table, the totals, the LaTeX,
`explain`, the answer of a solve, or the error with its line and column. Only paramsym's public API
and its click-free modules are used: no numpy, rich or click is needed.
"""

from __future__ import annotations

import json
import math
import time
from fractions import Fraction

from lark.exceptions import UnexpectedCharacters
from lark.lexer import LexerThread

import paramsym
from paramsym.algebra.solve import parse_budget
from paramsym.core.devices import DEVICES
from paramsym.core.formatting import bytes_text, exact, readable, unit_text
from paramsym.core.quantities import BY_NAME, applies, budgets
from paramsym.core.serving import decoder, is_decoder
from paramsym.core.setup import build_setup
from paramsym.language import syntax
from paramsym.language.assignments import parse_assignments
from paramsym.render import typeset
from paramsym.render.explain import explain
from paramsym.render.printers import cost_lines, summary_lines

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
            {**_fits(total, d, setup.train, setup.gpus), "device": name, "short": _short(total, d, name, setup.train)}
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


def _short(need, device, name: str, train: bool) -> str:
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


# What the page can ask for besides the counts: name -> make(network, request) -> JSON-ready value. The panels of
# the page (docs/playground/panels/*.js) each ask for the part named by their id, with their options in
# request[id]; a ParamsymError becomes result[name + "_error"].
PARTS = {
    "equation": lambda network, request: _equation(network),
    "latex": lambda network, request: _latex(network),
    "explain": lambda network, request: explain(network),
    "cost": _cost,
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
