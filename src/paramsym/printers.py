"""Networks to text: a rich table for people, JSON/CSV for scripts,
Markdown, HTML (Jupyter) and LaTeX for documents.
"""
from __future__ import annotations

import csv
import html
import io
import json

import sympy
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .network import QUANTITIES, Network

FORMATS = ("table", "json", "csv", "markdown", "latex")


def human(expr) -> str:
    """A formula as people write it: `90*C^2 + 74*C + 10`."""
    if expr is None:
        return "?"
    return str(expr).replace("**", "^")


def grouped(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


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


def rich_table(network: Network, data: dict | None = None) -> Table:
    """Values in the cells; a formula column for the parameters when they have symbols."""
    data = data if data is not None else network.to_dict()
    has_state = data["state"]["expr"] != "0"
    formulas = any(_symbolic(layer["params"]) and layer["params"]["value"] is not None
                   for layer in data["layers"])
    table = Table(show_footer=True, header_style="bold", footer_style="bold", box=box.SIMPLE_HEAD,
                  show_edge=False)
    table.add_column("#", justify="right", footer="")
    table.add_column("layer", footer="total")
    table.add_column("output", footer=_shape(data["output_shape"]))
    table.add_column("params", justify="right", footer=_brief(data["params"]))
    if formulas:
        table.add_column("formula", footer=human(data["params"]["expr"]))
    if has_state:
        table.add_column("state", justify="right", footer=_brief(data["state"]))
    table.add_column("fan-in", justify="right", footer="")
    table.add_column("MACs", justify="right", footer=_brief(data["macs"]))
    rows = []
    for layer in data["layers"]:
        row = [str(layer["index"]), layer["name"], _shape(layer["out_shape"]), _brief(layer["params"])]
        if formulas:
            row.append(human(layer["params"]["expr"]) if _symbolic(layer["params"]) else "")
        if has_state:
            row.append(_brief(layer["state"]))
        row += [_brief(layer["fan_in"]), _brief(layer["macs"])]
        rows.append(row)
        table.add_row(*row)
    # Numbers are never cut short: only the shape and formula columns may wrap.
    for number, column in enumerate(table.columns):
        if column.header in ("#", "layer", "params", "state", "fan-in", "MACs"):
            cells = [row[number] for row in rows] + [str(column.footer), column.header]
            column.min_width = max(len(cell) for cell in cells)
    return table


def summary_lines(network: Network, data: dict | None = None) -> list[str]:
    data = data if data is not None else network.to_dict()
    lines = [f"params = {_sum_line(network, data, 'params')}"]
    if data["state"]["expr"] != "0":
        lines.append(f"state  = {_cell(data['state'])}  (BatchNorm running mean and variance)")
    if data["convention"] == "keras":
        lines.append(f"total  = {_cell(data['total'])}  (keras convention: params + state)")
    macs = data["macs"]
    lines.append("MACs   = " + (_cell(macs) if macs["expr"] is not None
                                else "? (give the input shape, e.g. input(224x224x3), to count MACs)"))
    symbols = data["symbols"]
    if symbols:
        shown = [f"{name} = {s['default']}" if s["default"] is not None else f"{name} (free)"
                 for name, s in symbols.items()]
        lines.append("symbols: " + ", ".join(shown))
    return lines


def _print(network: Network, console: Console) -> None:
    data = network.to_dict()
    console.print(rich_table(network, data))
    for line in summary_lines(network, data):
        console.print(Text(line))


def print_table(network: Network, console: Console | None = None) -> None:
    """The table on a terminal (in colour); piped, the same text without trailing blanks."""
    console = console or Console()
    if console.is_terminal:
        _print(network, console)
    else:
        console.file.write(render_table(network, width=console.width))


def render_table(network: Network, width: int = 120) -> str:
    buffer = io.StringIO()
    _print(network, Console(file=buffer, width=width, color_system=None, force_terminal=False))
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def render_json(network: Network) -> str:
    return json.dumps(network.to_dict(), indent=2)


_CSV_SHAPES = ("in_shape", "out_shape")


def render_csv(network: Network) -> str:
    data = network.to_dict()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["index", "name", "line", "column", *_CSV_SHAPES]
    for name in QUANTITIES:
        header += [name, f"{name}_expr"]
    writer.writerow(header)

    def shape(dims):
        return "" if dims is None else _shape(dims).replace("^", "**")

    for layer in data["layers"]:
        row = [layer["index"], layer["name"], layer["line"], layer["column"],
               shape(layer["in_shape"]), shape(layer["out_shape"])]
        for name in QUANTITIES:
            row += [_csv_value(layer[name]["value"]), layer[name]["expr"] or ""]
        writer.writerow(row)
    total = ["", "total", "", "", shape(data["input_shape"]), shape(data["output_shape"])]
    for name in QUANTITIES:
        quantity = data.get(name, {"expr": None, "value": None})
        total += [_csv_value(quantity["value"]), quantity["expr"] or ""]
    writer.writerow(total)
    return buffer.getvalue()


def _csv_value(value) -> str:
    return "" if value is None else str(value)


def _markdown_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def render_markdown(network: Network) -> str:
    data = network.to_dict()
    rows = ["| # | layer | output | params | fan-in | MACs |", "|---:|---|---|---:|---:|---:|"]
    for layer in data["layers"]:
        cells = [str(layer["index"]), f"`{layer['name']}`", _shape(layer["out_shape"]),
                 _cell(layer["params"]), _cell(layer["fan_in"]), _cell(layer["macs"])]
        rows.append("| " + " | ".join(_markdown_escape(c) if not c.startswith("`") else c for c in cells) + " |")
    rows.append("| | **total** | " + " | ".join(_markdown_escape(c) for c in (
        _shape(data["output_shape"]), _cell(data["params"]), "", _cell(data["macs"]))) + " |")
    lines = "\n".join(rows) + "\n"
    extra = [line for line in summary_lines(network, data) if not line.startswith(("params", "MACs"))]
    if extra:
        lines += "\n" + "\n".join(f"- {_markdown_escape(line)}" for line in extra) + "\n"
    return lines


def render_html(network: Network) -> str:
    data = network.to_dict()
    head = "".join(f"<th>{h}</th>" for h in ("#", "layer", "output", "params", "fan-in", "MACs"))
    body = []
    for layer in data["layers"]:
        cells = (layer["index"], layer["name"], _shape(layer["out_shape"]), _cell(layer["params"]),
                 _cell(layer["fan_in"]), _cell(layer["macs"]))
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    foot = ("<tr><td></td><th>total</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in (
        _shape(data["output_shape"]), _cell(data["params"]), "", _cell(data["macs"]))) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}{foot}</tbody></table>"


def _latex_value(quantity: dict, expr) -> str:
    if expr is None:
        return "?"
    text = sympy.latex(expr)
    if quantity["value"] is not None and str(expr) != str(quantity["value"]):
        text += f" = {quantity['value']:,}".replace(",", "{,}")
    elif quantity["value"] is not None:
        text = f"{quantity['value']:,}".replace(",", "{,}")
    return f"${text}$"


def render_latex(network: Network) -> str:
    """A booktabs table of the layers (needs \\usepackage{booktabs})."""
    data = network.to_dict()
    lines = [r"\begin{tabular}{rllrr}", r"\toprule",
             r"\# & layer & output & parameters & MACs \\", r"\midrule"]
    for lc, layer in zip(network.layers, data["layers"]):
        shape = _shape(layer["out_shape"]).replace(" x ", r" \times ")
        lines.append(f"{layer['index']} & \\texttt{{{layer['name']}}} & ${shape}$ & "
                     f"{_latex_value(layer['params'], lc.params)} & {_latex_value(layer['macs'], lc.macs)} \\\\")
    lines += [r"\midrule",
              f" & total & & {_latex_value(data['params'], network.params)} & "
              f"{_latex_value(data['macs'], network.macs)} \\\\", r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def render_latex_total(network: Network) -> str:
    return f"$\\mathrm{{params}} = {sympy.latex(network.params)}$"


def render(network: Network, fmt: str) -> str:
    """The text of `paramsym count --format FMT` (the table without colour)."""
    renderers = {"table": render_table, "json": render_json, "csv": render_csv, "markdown": render_markdown,
                 "latex": render_latex}
    return renderers[fmt](network)
