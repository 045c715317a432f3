"""Networks to text: a rich table for people, JSON/CSV for scripts,
Markdown, HTML (Jupyter) and LaTeX for documents.
"""
from __future__ import annotations

import csv
import html
import io
import json
import os
import re

import sympy
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import ParamsymError
from .evaluate import Evaluator
from .formatting import exact, grouped, human
from .network import DISPLAY, Network
from .quantities import QUANTITIES, layer_quantities
from .syntax import symbol
from .typeset import table as latex_table

FORMATS = ("table", "json", "csv", "markdown", "latex")


def _columns(table: str) -> tuple:
    """The per-layer quantity columns of a kind of table ("table", "markdown", "html"), from the registry."""
    return tuple(q for q in layer_quantities() if table in q.tables)


def _shape(dims) -> str:
    """`32x32x3`, or `H x W x C` with spaces when a size is a formula."""
    if dims is None:
        return "?"
    parts = ["?" if d is None else d.replace("**", "^") for d in dims]
    parts = [f"({p})" if " " in p else p for p in parts]
    return ("x" if all(p.isdigit() or p == "?" for p in parts) else " x ").join(parts)


def _cell(quantity: dict) -> str:
    """`18,496`, or `28*C = 2,072` when the formula has symbols, `?` when unknown."""
    expr, value = quantity["expr"], quantity["value"]
    if expr is None:
        return "?"
    number = sympy.Integer(value) if value is not None else None
    if value is not None and expr == str(number):
        return grouped(value)
    shown = expr.replace("**", "^")
    return f"{shown} = {grouped(value)}" if value is not None else shown


def _sum_line(network: Network, data: dict, key: str) -> str:
    """`18,496 + 0 + 64,000 = 82,496`: the per-layer numbers, then the total."""
    quantity = data[key]
    if quantity["value"] is None:
        return _cell(quantity)
    parts = [layer[key]["value"] for layer in data["layers"]]
    total = grouped(quantity["value"])
    symbolic = quantity["expr"] != str(quantity["value"])
    prefix = f"{quantity['expr'].replace('**', '^')} = " if symbolic else ""
    if 1 < len(parts) <= 12:
        return prefix + " + ".join(grouped(p) for p in parts) + f" = {total}"
    return prefix + total


def _brief(quantity: dict) -> str:
    """The value when there is one, else the formula."""
    if quantity["value"] is not None:
        return grouped(quantity["value"])
    return "?" if quantity["expr"] is None else human(quantity["expr"])


def _symbolic(quantity: dict) -> bool:
    return quantity["expr"] is not None and quantity["expr"] != str(quantity["value"])


def _rows(network: Network, data: dict, fold: bool) -> list[dict]:
    """Table rows: one per layer, or one per top-level stage when folded."""
    if not fold:
        return [{"index": str(layer["index"]), "label": layer["path"], "out_shape": layer["out_shape"],
                 **{q.name: layer[q.name] for q in layer_quantities()},
                 "field": layer["receptive_field"]} for layer in data["layers"]]
    evaluator = network.evaluator()
    rows: list[dict] = []
    groups: dict[int, list] = {}
    for lc, layer in zip(network.layers, data["layers"]):
        groups.setdefault(lc.layer.stage, []).append((lc, layer))
    for members in groups.values():
        if len(members) == 1:
            rows.extend(_rows(network, {"layers": [members[0][1]]}, fold=False))
            continue
        first, last = members[0][1], members[-1][1]

        def summed(key):
            exprs = [lc.counts[key] for lc, _ in members]
            if any(e is None for e in exprs):
                return {"expr": None, "value": None}
            expr = sympy.expand(sympy.Add(*exprs))
            value = evaluator.integer(expr) if evaluator.has_values_for(expr) else None
            return {"expr": str(expr), "value": value}

        label = _first_segment(first["path"])
        last_label = _first_segment(last["path"])
        repeats = re.fullmatch(r"(.*)\[(\d+)\]", label), re.fullmatch(r"(.*)\[(\d+)\]", last_label)
        if label != last_label and all(repeats) and repeats[0].group(1) == repeats[1].group(1):
            label = f"{repeats[0].group(1)}[{repeats[0].group(2)}..{repeats[1].group(2)}]"
        rows.append({"index": f"{first['index']}-{last['index']}", "label": f"{label} ({len(members)} layers)",
                     "out_shape": last["out_shape"],
                     # a stage has totals, but no single fan-in: those cells stay empty
                     **{q.name: summed(q.name) if q.totalled else {"expr": "", "value": None}
                        for q in layer_quantities()},
                     "field": last["receptive_field"]})
    return rows


def _first_segment(path: str) -> str:
    """`block(2*C, 2)` of `block(2*C, 2).res.main.conv3x3`; dots inside brackets do not split."""
    depth = 0
    for position, char in enumerate(path):
        depth += char in "(["
        depth -= char in ")]"
        if char == "." and depth == 0:
            return path[:position]
    return path


def _field_cell(field) -> str:
    """`7` when the receptive field is the same along every axis, else `7x5`."""
    if field is None:
        return "?"
    sizes = [size.replace("**", "^") for size in field["size"]]
    if len(set(sizes)) == 1:
        return sizes[0]
    return "x".join(size if size.isdigit() else f"({size})" for size in sizes)


def _cell_text(row: dict, name: str) -> str:
    return "" if row[name]["expr"] == "" else _brief(row[name])


def rich_table(network: Network, data: dict | None = None, fold: bool = False) -> Table:
    """Values in the cells; a formula column for the parameters (the first quantity) when they have symbols."""
    data = data if data is not None else network.to_dict()
    rows = _rows(network, data, fold)
    shown = [q for q in _columns("table") if not (q.only_if_nonzero and data[q.name]["expr"] == "0")]
    main = shown[0].name
    formulas = any(_symbolic(row[main]) and row[main]["value"] is not None for row in rows)
    fields = any(row["field"] is not None for row in rows)
    table = Table(show_footer=True, header_style="bold", footer_style="bold", box=box.SIMPLE_HEAD,
                  show_edge=False)
    table.add_column("#", justify="right", footer="")
    table.add_column("layer", footer="total", overflow="fold")
    table.add_column("output", footer=_shape(data["output_shape"]))
    numbers = {"#"}
    for q in shown:
        table.add_column(q.title, justify="right", footer=_brief(data[q.name]) if q.totalled else "")
        numbers.add(q.title)
        if q.name == main and formulas:
            table.add_column("formula", footer=human(data[main]["expr"]))
    if fields:
        table.add_column("RF", justify="right", footer="")
    cells = []
    for row in rows:
        line = [row["index"], row["label"], _shape(row["out_shape"])]
        for q in shown:
            line.append(_cell_text(row, q.name))
            if q.name == main and formulas:
                line.append(human(row[main]["expr"]) if _symbolic(row[main]) else "")
        if fields:
            line.append(_field_cell(row["field"]))
        cells.append(line)
        table.add_row(*line)
    # Numbers are never cut short: only the layer, shape and formula columns may wrap.
    for number, column in enumerate(table.columns):
        if column.header in numbers:
            column.min_width = max(len(cell) for cell in [row[number] for row in cells]
                                   + [str(column.footer), column.header])
    return table


def _bytes(value) -> str:
    if value is None:
        return "?"
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value} B"


def summary_lines(network: Network, data: dict | None = None) -> list[str]:
    data = data if data is not None else network.to_dict()
    lines = []
    for q in QUANTITIES:
        if q.summary is None or (q.summary_when and not q.summary_when(network)):
            continue
        quantity = data[q.name]
        if q.only_if_nonzero and quantity["expr"] == "0":
            continue
        if quantity["expr"] is None:
            text = q.unknown or "?"
        else:
            text = _sum_line(network, data, q.name) if q.summary_sum else _cell(quantity)
            text += f"  {q.summary}" if q.summary else ""
        lines.append(f"{q.title:<6} = {text}")
    if data["activations"]["value"] is not None:
        lines.append(f"memory = {_bytes(data['activation_bytes']['value'])} of activations "
                     f"({grouped(data['activations']['value'])} values), {_bytes(data['param_bytes']['value'])} "
                     f"of parameters and state ({data['dtype']})")
    symbols = data["symbols"]
    if symbols:
        shown = []
        for name, s in symbols.items():  # C = 4, D = 2*C = 8, E (free)
            parts = [name, *([human(s["relation"])] if "relation" in s else []),
                     *([str(s["default"])] if s["default"] is not None else [])]
            shown.append(" = ".join(parts) if len(parts) > 1 else f"{name} (free)")
        lines.append("symbols: " + ", ".join(shown))
    return lines


def _print(network: Network, console: Console, fold: bool = False) -> None:
    data = network.to_dict()
    console.print(rich_table(network, data, fold))
    for line in summary_lines(network, data):
        console.print(Text(line))


def print_table(network: Network, console: Console | None = None, fold: bool = False) -> None:
    """The table on a terminal (in colour); piped, the same text without trailing blanks."""
    console = console or Console()
    if console.is_terminal:
        _print(network, console, fold)
    else:
        # piped: no terminal to fit, so only COLUMNS (if set) limits the width
        width = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else 120
        console.file.write(render_table(network, width=width, fold=fold))


def render_table(network: Network, width: int = 120, fold: bool = False) -> str:
    buffer = io.StringIO()
    _print(network, Console(file=buffer, width=width, color_system=None, force_terminal=False), fold)
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def render_json(network: Network) -> str:
    return json.dumps(network.to_dict(), indent=2)


_CSV_SHAPES = ("in_shape", "out_shape")


def render_csv(network: Network) -> str:
    data = network.to_dict()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["index", "name", "line", "column", *_CSV_SHAPES]
    for q in layer_quantities():
        header += [q.name, f"{q.name}_expr"]
    writer.writerow(header)

    def shape(dims):
        return "" if dims is None else _shape(dims).replace("^", "**")

    for layer in data["layers"]:
        row = [layer["index"], layer["name"], layer["line"], layer["column"],
               shape(layer["in_shape"]), shape(layer["out_shape"])]
        for q in layer_quantities():
            row += [_csv_value(layer[q.name]["value"]), layer[q.name]["expr"] or ""]
        writer.writerow(row)
    total = ["", "total", "", "", shape(data["input_shape"]), shape(data["output_shape"])]
    for q in layer_quantities():
        quantity = data[q.name] if q.totalled else {"expr": None, "value": None}
        total += [_csv_value(quantity["value"]), quantity["expr"] or ""]
    writer.writerow(total)
    return buffer.getvalue()


def _csv_value(value) -> str:
    return "" if value is None else str(value)


def _markdown_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _total_cells(data: dict, columns) -> list[str]:
    """The total row's cells of the quantity columns (empty where a quantity has no total)."""
    return [_cell(data[q.name]) if q.totalled else "" for q in columns]


def render_markdown(network: Network, fold: bool = False) -> str:
    data = network.to_dict()
    columns = _columns("markdown")
    rows = ["| # | layer | output | " + " | ".join(q.title for q in columns) + " |",
            "|---:|---|---|" + "---:|" * len(columns)]
    for row in _rows(network, data, fold):
        cells = [row["index"], f"`{row['label']}`", _shape(row["out_shape"]),
                 *("" if row[q.name]["expr"] == "" else _cell(row[q.name]) for q in columns)]
        rows.append("| " + " | ".join(_markdown_escape(c) if not c.startswith("`") else c for c in cells) + " |")
    rows.append("| | **total** | " + " | ".join(_markdown_escape(c) for c in (
        _shape(data["output_shape"]), *_total_cells(data, columns))) + " |")
    lines = "\n".join(rows) + "\n"
    # the summary lines of quantities that are not already in the table
    in_table = tuple(f"{q.title:<6} =" for q in columns)
    extra = [line for line in summary_lines(network, data) if not line.startswith(in_table)]
    if extra:
        lines += "\n" + "\n".join(f"- {_markdown_escape(line)}" for line in extra) + "\n"
    return lines


def render_html(network: Network) -> str:
    data = network.to_dict()
    columns = _columns("html")
    head = "".join(f"<th>{h}</th>" for h in ("#", "layer", "output", *(q.title for q in columns)))
    body = []
    for layer in data["layers"]:
        cells = (layer["index"], layer["name"], _shape(layer["out_shape"]), *(_cell(layer[q.name]) for q in columns))
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    foot = ("<tr><td></td><th>total</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in (
        _shape(data["output_shape"]), *_total_cells(data, columns))) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}{foot}</tbody></table>"


def render_latex(network: Network) -> str:
    """A booktabs table of the layers (see paramsym.latex)."""
    return latex_table(network)


def render_latex_total(network: Network) -> str:
    return f"$\\mathrm{{params}} = {sympy.latex(network.params)}$"


def render(network: Network, fmt: str, fold: bool = False) -> str:
    """The text of `paramsym count --format FMT` (the table without colour)."""
    if fmt == "table":
        return render_table(network, fold=fold)
    if fmt == "markdown":
        return render_markdown(network, fold=fold)
    renderers = {"json": render_json, "csv": render_csv, "latex": render_latex}
    return renderers[fmt](network)


SWEEP_FORMATS = ("table", "csv", "json")


def _exact_cells(result, i: int) -> list:
    """At a point that gives no valid network, the totals exactly (1,012.5 for ->C/2 at C=75, where the
    columns hold 1,012), or ? where they are undefined (a stride S-1 at S=1)."""
    evaluator = Evaluator({symbol(name): int(column[i]) for name, column in result.grid.items()})
    cells = []
    for name in result.values:
        try:
            cells.append(exact(evaluator.number(result.formulas[name])))
        except ParamsymError:
            cells.append("?")
    return cells


def render_sweep(result, fmt: str = "table", limit: int = 40) -> str:
    """A sweep as a table (at most `limit` rows shown), CSV or JSON (every point)."""
    import numpy as np  # only sweeps need NumPy; `paramsym count` starts faster without it
    names = result.column_names()
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        for row in result.rows():
            writer.writerow(row.values())
        return buffer.getvalue()
    if fmt == "json":
        data = {"points": result.size, "on": result.on, "budget": result.budget,
                "formulas": {name: str(expr) for name, expr in result.formulas.items()},
                "columns": {name: [_json_value(v) for v in column] for name, column in
                            [*result.grid.items(), *result.values.items()]}}
        for name, mask in (("within", result.within), ("valid", result.valid)):
            if mask is not None:
                data["columns"][name] = [bool(v) for v in mask]
        return json.dumps(data) + "\n"
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for name in names:
        table.add_column(name, justify="right")
    shown = range(result.size) if result.size <= limit else \
        [*range(limit // 2), None, *range(result.size - limit // 2, result.size)]
    columns = [*result.grid.values(), *result.values.values()]
    for i in shown:
        if i is None:
            table.add_row(*["..."] * len(names))
            continue
        cells = [grouped(int(column[i])) for column in columns]
        if result.valid is not None and not result.valid[i]:
            cells[len(result.grid):] = _exact_cells(result, i)
        for mask in (result.within, result.valid):
            if mask is not None:
                cells.append("yes" if mask[i] else "no")
        table.add_row(*cells)
    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(table)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    lines += [f"{result.size:,} points" + (f", {result.size - len(shown) + 1:,} not shown (use --format csv)"
                                            if result.size > limit else "")]
    for name, expr in result.formulas.items():
        lines.append(f"{name} = {human(expr)}")
    if result.valid is not None:
        lines.append(f"{int(np.count_nonzero(~result.valid)):,} points give no valid network (valid = no): "
                     f"groups that do not divide the channels, sizes below 1, channels or sizes that are not "
                     f"positive whole numbers, or a relation that is not a positive whole number")
    if result.within is not None:
        count = int(np.count_nonzero(result.within))
        lines.append(f"{count:,} of {result.size:,} points have {result.on} <= {grouped(result.budget)}")
        if count:
            values = np.where(result.within, result.values[result.on], -1)
            best = int(np.argmax(values))
            at = ", ".join(f"{n}={int(c[best])}" for n, c in result.grid.items())
            lines.append(f"the largest {result.on} within the budget: {grouped(int(values[best]))} at {at}")
    return "\n".join(lines) + "\n"


def _json_value(value):
    return int(value)


DISPLAY.update(text=render_table, rich=rich_table, html=render_html, latex=render_latex_total)
