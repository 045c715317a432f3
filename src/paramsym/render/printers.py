"""Networks to text: a rich table for people, JSON/CSV for scripts,
Markdown, HTML (Jupyter) and LaTeX for documents.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import textwrap
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING

import sympy

from .. import expansion
from ..core.evaluate import Evaluator
from ..core.formatting import (
    bytes_text,
    count_text,
    exact,
    flops_text,
    grouped,
    human,
    quantity_unit,
    readable,
    seconds_text,
)
from ..core.quantities import QUANTITIES, add, applies, layer_quantities, shown_layer_quantities
from ..errors import ParamsymError
from ..language.syntax import symbol
from ..model.network import DISPLAY, Document, Network, without_cyclic_gc
from .typeset import table as latex_table

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

# rich is imported where a rich table is drawn: piped output is written without it (see _plain_text).

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
    if value is not None and expr == str(value):
        return grouped(value)
    shown = expr.replace("**", "^")
    return f"{shown} = {grouped(value)}" if value is not None else shown


def _sum_line(network: Network, document: Document, data: dict, key: str) -> str:
    """`18,496 + 0 + 64,000 = 82,496`: the per-layer numbers, then the total."""
    quantity = data[key]
    if quantity["value"] is None:
        return _cell(quantity)
    total = grouped(quantity["value"])
    symbolic = quantity["expr"] != str(quantity["value"])
    prefix = f"{quantity['expr'].replace('**', '^')} = " if symbolic else ""
    if 1 < len(network.layers) <= 12:
        parts = [document.quantity(lc.counts[key], key.replace("_", "-"))["value"] for lc in network.layers]
        return prefix + " + ".join(grouped(p) for p in parts) + f" = {total}"
    return prefix + total


def _brief(quantity: dict) -> str:
    """The value when there is one, else the formula."""
    if quantity["value"] is not None:
        return grouped(quantity["value"])
    return "?" if quantity["expr"] is None else human(quantity["expr"])


def _symbolic(quantity: dict) -> bool:
    return quantity["expr"] is not None and quantity["expr"] != str(quantity["value"])


# Beyond FOLD_ABOVE layers the table folds by default (one row per top-level stage); when even the
# stages are more than FOLD_ABOVE, consecutive stages share a row, at most FOLDED_ROWS rows in all.
FOLD_ABOVE = 300
FOLDED_ROWS = 100
_REPEAT = re.compile(r"(.*)\[(\d+)\]")


def folds_by_default(network: Network) -> bool:
    """Whether the table folds when not told (`--fold` or `--all`)."""
    return len(network.layers) > FOLD_ABOVE


def _layer_row(document: Document, lc) -> dict:
    layer = lc.layer
    return {
        "index": str(layer.index),
        "label": layer.path,
        "out_shape": document.shape(layer.out_shape),
        **{q.name: document.quantity(lc.counts[q.name], q.name.replace("_", "-")) for q in shown_layer_quantities()},
        "field": document.field(layer.field),
    }


def _stages(network: Network) -> list[list]:
    """The layers of each top-level stage."""
    groups: dict[int, list] = {}
    for lc in network.layers:
        groups.setdefault(lc.layer.stage, []).append(lc)
    return list(groups.values())


def _label(first: str, last: str, grouped_stages: bool) -> str:
    """`stem(64)`, `basic(64)[1..2]` for repeats, `conv3x3 .. relu` for stages grouped together."""
    repeats = _REPEAT.fullmatch(first), _REPEAT.fullmatch(last)
    if first != last and all(repeats) and repeats[0].group(1) == repeats[1].group(1):
        return f"{repeats[0].group(1)}[{repeats[0].group(2)}..{repeats[1].group(2)}]"
    if grouped_stages:
        return f"{first} .. {last}"
    return first


def _rows(network: Network, document: Document, fold: bool) -> tuple[list[dict], int]:
    """Table rows: one per layer, or one per top-level stage when folded (consecutive stages
    grouped when they are more than FOLD_ABOVE); and how many stages share a row (1 unless grouped)."""
    if not fold:
        return [_layer_row(document, lc) for lc in network.layers], 1
    stages = _stages(network)
    per_row = 1 if len(stages) <= FOLD_ABOVE else -(-len(stages) // FOLDED_ROWS)
    rows: list[dict] = []
    sums: dict = {}  # rows alike (a chain's stages) add the same counts: each distinct sum is made once
    for start in range(0, len(stages), per_row):
        group = stages[start : start + per_row]
        members = [lc for stage in group for lc in stage]
        if len(members) == 1:
            rows.append(_layer_row(document, members[0]))
            continue

        def summed(q, members=members):  # called in this iteration; the default binds it all the same
            exprs = tuple(lc.counts[q.name] for lc in members)
            if any(e is None for e in exprs):
                return {"expr": None, "value": None}
            key = (q.name, exprs)
            if key not in sums:
                sums[key] = document.quantity(expansion.expand(add(exprs)), q.name.replace("_", "-"))
            return sums[key]

        first, last = members[0].layer, members[-1].layer
        label = _label(_first_segment(first.path), _first_segment(last.path), len(group) > 1)
        rows.append(
            {
                "index": f"{first.index}-{last.index}",
                "label": f"{label} ({len(members):,} layers)",
                "out_shape": document.shape(last.stage_out_shape or last.out_shape),
                # a stage has totals, but no single fan-in: those cells stay empty
                **{q.name: summed(q) if q.totalled else {"expr": "", "value": None} for q in shown_layer_quantities()},
                "field": document.field(last.field),
            }
        )
    return rows, per_row


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


# The narrowest a wrapping column (layer, output, formula) is made before the table changes layout.
_NARROWEST = 10
_NUMBER = re.compile(r"[\d,]*|\?")


@dataclass
class _Column:
    """A column of the terminal table: its cells, and whether it holds numbers (right-aligned, and
    never cut: a number column wraps only where a cell is a formula, a symbol without a value)."""

    key: str
    header: str
    footer: str
    cells: list
    number: bool = False

    def width(self) -> int:
        return max(len(self.header), len(self.footer), *map(len, self.cells))

    def texts(self) -> list[str]:
        return [self.footer, *self.cells]

    @property
    def no_wrap(self) -> bool:
        return self.number and all(_NUMBER.fullmatch(text) for text in self.texts())

    def narrowest(self) -> int:
        """The narrowest it may be: every number whole, the header unbroken, and else at most
        _NARROWEST (longer text wraps, at spaces where it can)."""
        if self.no_wrap:
            return self.width()
        numbers = [len(text) for text in self.texts() if self.number and _NUMBER.fullmatch(text)]
        return max(len(self.header), min(self.width(), _NARROWEST), *numbers)


def _left_out(q, data: dict) -> bool:
    """A quantity that says nothing here: a KV cache of 0, active parameters equal to all of them."""
    return (q.only_if_nonzero and data[q.name]["expr"] == "0") or (
        bool(q.only_if_differs) and data[q.name]["expr"] == data[q.only_if_differs]["expr"]
    )


def _table_columns(network: Network, data: dict, rows: list[dict]) -> list[_Column]:
    """Values in the cells; a formula column for the parameters (the first quantity) when they have symbols."""
    shown = [q for q in _columns("table") if not _left_out(q, data)]
    main = shown[0].name
    formulas = any(_symbolic(row[main]) and row[main]["value"] is not None for row in rows)
    fields = any(row["field"] is not None for row in rows)
    columns = [
        _Column("#", "#", "", [row["index"] for row in rows], number=True),
        _Column("layer", "layer", "total", [row["label"] for row in rows]),
        _Column("output", "output", _shape(data["output_shape"]), [_shape(row["out_shape"]) for row in rows]),
    ]
    for q in shown:
        columns.append(
            _Column(
                q.name,
                q.title,
                _brief(data[q.name]) if q.totalled else "",
                [_cell_text(row, q.name) for row in rows],
                number=True,
            )
        )
        if q.name == main and formulas:
            columns.append(
                _Column(
                    "formula",
                    "formula",
                    human(data[main]["expr"]),
                    [human(row[main]["expr"]) if _symbolic(row[main]) else "" for row in rows],
                )
            )
    if fields:
        columns.append(_Column("RF", "RF", "", [_field_cell(row["field"]) for row in rows], number=True))
    return columns


def _widths(columns: list[_Column], width: int) -> list[int] | None:
    """Widths (without padding) that fit the table in `width` with every column at least its
    narrowest: rich's own when they do (the table is then as rich lays it out), else the widest
    wrapping columns narrowed first; None when the narrowest widths do not fit. A column has
    1 space of padding on each side, and one space divides two columns."""
    budget = width - 3 * len(columns) + 1
    natural = [c.width() for c in columns]
    if sum(natural) <= budget:
        return natural
    if sum(c.narrowest() for c in columns) > budget:
        return None
    from rich.table import Table

    padded = Table._collapse_widths(
        [w + 2 for w in natural], [not c.no_wrap for c in columns], budget + 2 * len(columns)
    )
    if sum(padded) <= budget + 2 * len(columns) and all(w - 2 >= c.narrowest() for w, c in zip(padded, columns)):
        return [w - 2 for w in padded]
    widths = [c.narrowest() for c in columns]
    spare = budget - sum(widths)
    while spare > 0:  # widen the narrowest of the columns that want more, one space at a time
        wanting = [i for i, c in enumerate(columns) if widths[i] < natural[i]]
        if not wanting:
            break
        widths[min(wanting, key=lambda i: widths[i])] += 1
        spare -= 1
    return widths


def _rich(columns: list[_Column], widths: list[int] | None = None) -> Table:
    """A rich Table of the columns at `widths`; None lets rich fit them (the rich display of a network)."""
    from rich import box
    from rich.table import Table

    table = Table(show_footer=True, header_style="bold", footer_style="bold", box=box.SIMPLE_HEAD, show_edge=False)
    for i, column in enumerate(columns):
        fixed = {} if widths is None or widths[i] == column.width() else {"width": widths[i]}
        if column.no_wrap:
            table.add_column(
                column.header, justify="right", footer=column.footer, no_wrap=True, min_width=column.width(), **fixed
            )
        else:
            # the layer, output and formula columns wrap, and fold a word longer than the column
            table.add_column(
                column.header,
                justify="right" if column.number else "left",
                footer=column.footer,
                overflow="fold",
                min_width=column.narrowest(),
                **fixed,
            )
    for cells in zip(*(column.cells for column in columns)):
        table.add_row(*cells)
    return table


def rich_table(network: Network, data: dict | None = None, fold: bool | None = False) -> Table:
    """The table as a rich Table, every column (rich fits it to the console; see render_table)."""
    document = network.document()
    data = data if data is not None else document.head()
    fold = folds_by_default(network) if fold is None else fold
    return _rich(_table_columns(network, data, _rows(network, document, fold)[0]))


def _stacked(columns: list[_Column], width: int) -> list[str] | None:
    """The narrow layout: per row, a line `#  layer -> output` and under it the numbers in
    aligned columns; None when the numbers do not fit in `width` side by side."""
    index, label, output = columns[0], columns[1], columns[2]
    numbers = [c for c in columns[3:] if c.number]
    widths = [c.width() for c in numbers]
    line_width = sum(widths) + 3 * (len(numbers) - 1)
    indent = max([len(index.header), *map(len, index.cells)]) + 2
    if line_width > width:
        return None
    indent = min(indent, width - line_width)

    def heading(first: str, name: str, shape: str) -> list[str]:
        text = f"{first:>{indent - 2}}  {name} -> {shape}" if indent >= 2 else f"{first} {name} -> {shape}"
        return textwrap.wrap(text, width, subsequent_indent=" " * indent, break_on_hyphens=False) or [""]

    def figures(cells) -> str:
        return " " * indent + "   ".join(f"{cell:>{w}}" for cell, w in zip(cells, widths))

    rule = "─" * min(width, indent + line_width)
    lines = [*heading(index.header, label.header, output.header), figures([c.header for c in numbers]), rule]
    for i in range(len(index.cells)):
        lines += heading(index.cells[i], label.cells[i], output.cells[i])
        lines.append(figures([c.cells[i] for c in numbers]))
    lines += [rule, *heading("", label.footer, output.footer), figures([c.footer for c in numbers])]
    return lines


def _records(columns: list[_Column], width: int) -> list[str]:
    """The narrowest layout: per row, `#  layer -> output`, then `title value` pairs wrapped to `width`."""
    index, label, output = columns[0], columns[1], columns[2]
    numbers = [c for c in columns[3:] if c.number]
    lines = []
    rows = [
        (index.cells[i], label.cells[i], output.cells[i], [c.cells[i] for c in numbers])
        for i in range(len(index.cells))
    ] + [("", label.footer, output.footer, [c.footer for c in numbers])]
    for first, name, shape, cells in rows:
        lines += textwrap.wrap(
            f"{first} {name} -> {shape}".strip(), width, subsequent_indent="  ", break_on_hyphens=False
        )
        # a title and its value stay on one line (joined by a no-break space while wrapping)
        pairs = [f"{c.header}\xa0{cell}" for c, cell in zip(numbers, cells) if cell]
        lines += [
            line.replace("\xa0", " ")
            for line in textwrap.wrap(
                "   ".join(pairs),
                width,
                initial_indent="  ",
                subsequent_indent="  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
        ]
    return lines


def _layout(network: Network, width: int, fold: bool | None = None) -> tuple:
    """How the table is shown at `width`: ("table", columns, widths) when it fits, ("lines",
    lines, bold) in the stacked or record layout (the first `bold` lines are titles); then the
    summary lines and the notes on what was left out (`fold` None: fold beyond FOLD_ABOVE layers,
    and say so)."""
    document = network.document()
    data = document.head()
    auto = fold is None
    fold = folds_by_default(network) if auto else fold
    rows, per_row = _rows(network, document, fold)
    columns = _table_columns(network, data, rows)
    notes = []
    widths = _widths(columns, width)
    if widths is None and any(c.key == "formula" for c in columns):
        columns = [c for c in columns if c.key != "formula"]
        widths = _widths(columns, width)
        notes.append(
            f"(the formula column is left out to fit {width} columns; --format markdown or json shows every formula)"
        )
    if widths is not None:
        table = ("table", columns, widths)
    else:
        stacked = _stacked(columns, width)
        table = ("lines", stacked or _records(columns, width), 2 if stacked else 0)
    if fold and (auto or per_row > 1):
        rows_text = (
            f"{len(rows):,} rows, one per top-level stage"
            if per_row == 1
            else f"{len(rows):,} rows, {per_row:,} top-level stages to a row"
        )
        notes.append(f"(folded: {len(network.layers):,} layers in {rows_text}; --all shows every layer)")
    return table, _fitted(summary_lines(network, data, document), width), _fitted(notes, width)


# Where a summary line may not break: between a number and its unit (`31.2 GB`, `(6.74 B)`, `15.4 GFLOP`), and
# before the figure that says a number as people read it (`1,409,318,912 (1.41 B)`): only a closed one, since a
# run of open `(6.74` would glue into one word wider than the terminal
_UNIT = re.compile(
    r"(?<=\d) (?=(?:[kMGTPEZY]i?B|[kMGTPEZY]?FLOP|[kMBT]\b|bytes\b|GPUs\b|[mun]?s\b|\(\d[\d.,]*(?: [^ ()]+)?\)))"
)
# The label a wrapped summary line's continuation is indented under: `params = `, `symbols: `
_LABEL = re.compile(r"[\w ]{1,12}(?:=|:) |\(")


def _fitted(lines: list[str], width: int) -> list[str]:
    """The summary lines wrapped to `width` (rich would break `31.2 GB` in two, and start the rest at
    column 0): continuations indented under the label, numbers kept with their units."""
    fitted = []
    for line in lines:
        if len(line) <= width:
            fitted.append(line)
            continue
        label = _LABEL.match(line)
        indent = " " * (len(label.group()) if label and len(label.group()) < width // 2 else 2)
        wrapped = textwrap.wrap(
            _UNIT.sub("\xa0", line),
            width,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        fitted += [part.replace("\xa0", " ") for part in wrapped]
    return fitted


def _natural(columns: list[_Column], widths: list[int]) -> bool:
    """Whether every column is as wide as its widest cell (nothing wraps)."""
    return all(w == c.width() for w, c in zip(widths, columns))


def _renderables(network: Network, width: int, fold: bool | None = None, layout: tuple | None = None) -> list:
    """The table fitted to `width`, the summary lines, and what was left out, for rich (`layout`:
    what _layout gives for them, when it is already known)."""
    from rich.text import Text

    table, summary, notes = layout or _layout(network, width, fold)
    shown = []
    if table[0] == "table":
        _, columns, widths = table
        if len(columns[0].cells) > _PLAIN_ABOVE and _natural(columns, widths):
            shown += _plain(columns)  # what rich would print, without rich's cost per cell
        else:
            shown.append(_rich(columns, widths))
    else:
        _, lines, heads = table  # the titles of the stacked layout, bold like the table's
        shown += [
            Text(line, style="bold" if i < heads else "", no_wrap=True, overflow="ignore")
            for i, line in enumerate(lines)
        ]
    return shown + [Text(line) for line in summary + notes]


# Text that rich prints as it is, one terminal cell a character: printable ASCII and the rule.
_AS_IS = re.compile(r"[ -~─]*")
# In a table cell rich reads markup ([bold]) and emoji codes (:smile:); `[2]` and `[1..2]` are no markup.
_MARKUP = re.compile(r"\[[^\d]|[:\\]")


def _plain_text(layout: tuple, width: int) -> str | None:
    """`render_table` without rich, when the result is surely the same: every cell fits its column
    as it is, and every line fits `width` (rich would wrap a longer one); None otherwise. `layout`
    is what _layout gives at `width`."""
    table, summary, notes = layout
    if table[0] == "table":
        _, columns, widths = table
        if not _natural(columns, widths):
            return None
        texts = [text for column in columns for text in (column.header, *column.texts())]
        if not all(_AS_IS.fullmatch(text) for text in texts) or any(_MARKUP.search(text) for text in texts):
            return None
        lines = [text for text, _ in _plain_lines(columns)]
    else:
        lines = table[1]  # never cut by rich; but one longer than `width` (a long word) rich wraps at a space
        if not all(len(line) <= width and _AS_IS.fullmatch(line) for line in lines):
            return None
    extra = summary + notes
    if not all(len(line) <= width and _AS_IS.fullmatch(line) for line in extra):
        return None
    return "".join(line.rstrip() + "\n" for line in lines + extra)


_PLAIN_ABOVE = 100  # rows; a longer table in which nothing wraps is written without rich


def _plain_lines(columns: list[_Column]) -> list[tuple[str, bool]]:
    """The lines rich prints for the table when every cell fits its column (box SIMPLE_HEAD, no
    edge, one space of padding each side, one between columns), each with whether it is bold."""
    widths = [c.width() for c in columns]

    def line(cells) -> str:
        return " ".join(
            f" {cell:>{w}} " if c.number else f" {cell:<{w}} " for cell, w, c in zip(cells, widths, columns)
        )

    rule = "─" * (sum(widths) + 3 * len(columns) - 1)
    body = [(line(cells), False) for cells in zip(*(c.cells for c in columns))]
    return [
        (line([c.header for c in columns]), True),
        (rule, False),
        *body,
        ("", False),
        (line([c.footer for c in columns]), True),
    ]


def _plain(columns: list[_Column]) -> list:
    """_plain_lines as rich Text, a line at a time."""
    from rich.text import Text

    return [Text(text, style="bold" if bold else "", no_wrap=True) for text, bold in _plain_lines(columns)]


class _Fitted:
    """A network's table for rich, fitted to the width it is given (`rich.print(network)`)."""

    def __init__(self, network: Network, fold: bool | None = None):
        self.network, self.fold = network, fold

    def __rich_console__(self, console, options):
        yield from _renderables(self.network, options.max_width, self.fold)


def _print(network: Network, console: Console, fold: bool | None = None, layout: tuple | None = None) -> None:
    for renderable in _renderables(network, console.width, fold, layout):
        console.print(renderable)


def _bytes(value) -> str:
    """`26.9 GB`: three digits in decimal units (core/formatting.py, bytes_text)."""
    return "?" if value is None else bytes_text(value, binary=False)


def summary_lines(network: Network, data: dict | None = None, document: Document | None = None) -> list[str]:
    """The lines under the table; `data` is the JSON document (its head is enough)."""
    document = document or network.document()
    data = data if data is not None else document.head()
    lines = []
    for q in QUANTITIES:
        if q.summary is None or (q.summary_when and not q.summary_when(network)) or not applies(q, network):
            continue
        quantity = data[q.name]
        if _left_out(q, data):
            continue
        if quantity["expr"] is None:
            text = q.unknown or "?"
        else:
            text = _sum_line(network, document, data, q.name) if q.summary_sum else _cell(quantity)
            text += _people(quantity["value"], q.unit)
            note = q.summary_for(network) if q.summary_for else q.summary
            text += f"  {note}" if note else ""
        lines.append(f"{q.title:<6} = {text}")
    lines += cost_lines(network, data)
    symbols = data["symbols"]
    if symbols:
        shown = []
        for name, s in symbols.items():  # C = 4, D = 2*C = 8, E (free)
            parts = [
                name,
                *([human(s["relation"])] if "relation" in s else []),
                *([str(s["default"])] if s["default"] is not None else []),
            ]
            shown.append(" = ".join(parts) if len(parts) > 1 else f"{name} (free)")
        lines.append("symbols: " + ", ".join(shown))
    return lines


def cost_lines(network: Network, data: dict) -> list[str]:
    """The labelled memory and cost breakdown under the table (docs/will-it-fit.md): what serving keeps
    (weights and KV cache), what training keeps per device, FLOPs, a decode step, and the times on a device.
    Each line only where its quantities apply; `?` where a value waits for a symbol."""
    setup = network.setup

    def value(name: str):
        return data[name]["value"] if name in data else None

    def shown(name: str, text=_bytes) -> str:
        v = value(name)
        return "?" if v is None else text(v)

    lines = []
    device = setup.device.name if setup.device else "?"
    kv = value("kv_cache_bytes")
    if setup.train:
        pass  # the training breakdown below says what a device holds
    elif "serve_memory_bytes" in data:  # a causal decoder: what must stay in memory to serve it
        batch = "one sequence" if setup.batch == 1 else f"batch {human(setup.batch)}"
        size = _number(setup.batch, data)
        lines.append(
            f"memory = weights {shown('param_bytes')} ({setup.weights}) + KV cache "
            f"{_bytes(kv * size) if kv is not None and size else '?'} ({setup.kv}, {batch}) "
            f"= {shown('serve_memory_bytes')} to serve"
        )
    else:
        lines.append(f"memory = weights {shown('param_bytes')} ({setup.weights}, parameters and state)")
    if setup.train:
        spread = []
        if setup.zero:
            spread.append(f"ZeRO-{setup.zero}")
        if setup.tp != 1:
            spread.append(f"tp {setup.tp}")
        if setup.pp != 1:
            spread.append(f"pp {setup.pp}")
        over = f" over {human(setup.gpus)} GPUs" if setup.gpus != 1 else ""
        how = ", ".join([setup.optimizer, setup.precision, f"batch {human(setup.batch)}", *spread]) + over
        saved = shown("saved_activation_bytes") if "saved_activation_bytes" in data else "?"
        lines.append(f"train  = {shown('train_memory_bytes')} per device ({how}):")
        lines.append(
            f"         weights {shown('weight_bytes')} + gradients {shown('grad_bytes')} + optimizer states "
            f"{shown('optimizer_bytes')}"
        )
        lines.append(f"         = model states {shown('model_state_bytes')}")
        fused = ", fused attention" if setup.attention == "fused" else ""
        lines.append(f"         + saved activations {saved} ({setup.activations}, recompute {setup.recompute}{fused})")
    if value("flops") is not None:  # (no input shape: the MACs line says what to give)
        text = f"FLOPs  = {shown('flops', flops_text)} forward"
        if "train_flops" in data and setup.train:
            text += f", {shown('train_flops', flops_text)} a training step"
        lines.append(text)
        if "train_flops_total" in data:
            tokens = _number(setup.tokens, data)
            text = (
                f"         {shown('train_flops_total', flops_text)} for {'?' if tokens is None else count_text(tokens)}"
            )
            text += " tokens"
            if "train_seconds" in data:
                text += (
                    f": {shown('train_seconds', seconds_text)} on {human(setup.gpus)} {device} "
                    f"at MFU {float(setup.mfu or 0):g}"
                )
            lines.append(text)
    if "decode_flops" in data:
        lines.append(f"decode = {shown('decode_flops', flops_text)} and {shown('decode_bytes')} read a token")
        if "decode_ns_per_token" in data:
            ns = value("decode_ns_per_token")
            per_token = "?" if ns is None else seconds_text(Fraction(ns, 10**9))
            lines.append(f"         on {device}: {per_token} a token, {shown('tokens_per_second', grouped)} tokens/s")
    return lines


def _number(expr, data: dict):
    """The value of a setup size (`--batch B`) with the program's symbol values, or None."""
    if not isinstance(expr, sympy.Basic) or not expr.free_symbols:
        return int(expr)
    values = {name: s["default"] for name, s in data["symbols"].items() if s["default"] is not None}
    bound = expr.subs({symbol(name): v for name, v in values.items()})
    return int(bound) if bound.is_Integer else None


def _people(value, unit: str) -> str:
    """` (6.74 B)` after a large total of the summary: the number as people read it; else nothing."""
    shown = readable(value, unit) if isinstance(value, int) else ""
    return shown[len(exact(value)) :] if shown else ""


def _width() -> int:
    """Piped: no terminal to fit, so only COLUMNS (if set) limits the width."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else 120


def _piped() -> bool:
    """Whether standard output is surely no terminal for rich (no FORCE_COLOR or TTY_COMPATIBLE
    telling it otherwise), so the table is plain text and rich need not even be imported."""
    if "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ or sys.stdout is None:
        return False
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def print_table(network: Network, console: Console | None = None, fold: bool | None = None) -> None:
    """The table on a terminal (in colour); piped, the same text without trailing blanks.
    `fold` None folds networks of more than FOLD_ABOVE layers and says so."""
    if console is None and _piped():
        sys.stdout.write(render_table(network, width=_width(), fold=fold))
        return
    from rich.console import Console

    console = console or Console()
    if console.is_terminal:
        with without_cyclic_gc():
            _print(network, console, fold)
    else:
        console.file.write(render_table(network, width=_width(), fold=fold))


def render_table(network: Network, width: int = 120, fold: bool | None = False) -> str:
    with without_cyclic_gc():
        layout = _layout(network, width, fold)
        text = _plain_text(layout, width)  # the same text, without rich's cost, when it can
        if text is not None:
            return text
        from rich.console import Console

        buffer = io.StringIO()
        _print(network, Console(file=buffer, width=width, color_system=None, force_terminal=False), fold, layout)
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


_encode = json.encoder.encode_basestring_ascii  # what json.dumps writes a string as (C-accelerated)


def _json(value, level: int, memo: dict) -> str:
    """`json.dumps(value, indent=2)` at nesting `level`; lists and dicts written once (memo by id,
    kept alive in the memo so that an id is never reused)."""
    kind = type(value)
    if kind is str:
        return _encode(value)
    if kind is int:
        return int.__repr__(value)
    if isinstance(value, str):
        return _encode(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, (dict, list)):
        key = (id(value), level)
        known = memo.get(key)
        if known is None:
            known = memo[key] = (value, _json_container(value, level, memo))
        return known[1]
    return json.dumps(value)


def _json_container(value, level: int, memo: dict) -> str:
    if not value:
        return "{}" if isinstance(value, dict) else "[]"
    inner = "\n" + "  " * (level + 1)
    if isinstance(value, dict):
        items = (_encode(str(k)) + ": " + _json(v, level + 1, memo) for k, v in value.items())
        return "{" + inner + ("," + inner).join(items) + "\n" + "  " * level + "}"
    return "[" + inner + ("," + inner).join(_json(v, level + 1, memo) for v in value) + "\n" + "  " * level + "]"


def _json_chunks(network: Network):
    """The text of `json.dumps(network.to_dict(), indent=2)`, a thousand layers at a time."""
    document = network.document()
    memo: dict = {}
    yield "{\n  " + ",\n  ".join(_encode(k) + ": " + _json(v, 1, memo) for k, v in document.head().items())
    yield ',\n  "layers": ['
    batch, first = [], True
    shared: dict = {}  # id of a shared part -> (it, its lines)
    keys: dict = {}  # a key -> `"key": `
    for lc in document.network.layers:
        lines = []
        for is_shared, part in document.parts(lc):
            if not part:
                continue
            if is_shared:
                known = shared.get(id(part))
                if known is None:
                    if len(shared) >= 4096:  # parts seen once (a chain's receptive fields): keep the recent
                        shared.clear()
                        memo.clear()
                    known = shared[id(part)] = (
                        part,
                        ",\n      ".join(_encode(key) + ": " + _json(value, 3, memo) for key, value in part.items()),
                    )
                lines.append(known[1])
            else:  # the layer's own: index, name, path, line and column
                for key, value in part.items():
                    kind = type(value)
                    text = (
                        int.__repr__(value) if kind is int else _encode(value) if kind is str else _json(value, 3, memo)
                    )
                    lines.append((keys.get(key) or keys.setdefault(key, _encode(key) + ": ")) + text)
        batch.append(("\n    {\n      " if first else ",\n    {\n      ") + ",\n      ".join(lines) + "\n    }")
        first = False
        if len(batch) == 1000:
            yield "".join(batch)
            batch = []
    yield "".join(batch) + ("]" if first else "\n  ]") + "\n}"


def render_json(network: Network) -> str:
    return "".join(render_chunks(network, "json"))


_CSV_SHAPES = ("in_shape", "out_shape")


def _csv_chunks(network: Network):
    import csv  # only the CSV output needs it

    document = network.document()
    data = document.head()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["index", "name", "line", "column", *_CSV_SHAPES]
    for q in shown_layer_quantities():
        header += [q.name, f"{q.name}_expr"]
    writer.writerow(header)

    def shape(dims):
        return "" if dims is None else _csv_text(_shape(dims).replace("^", "**"))

    for number, layer in enumerate(document.layers(), 1):
        row = [
            layer["index"],
            layer["name"],
            layer["line"],
            layer["column"],
            shape(layer["in_shape"]),
            shape(layer["out_shape"]),
        ]
        for q in shown_layer_quantities():
            row += [_csv_value(layer[q.name]["value"]), _csv_text(layer[q.name]["expr"])]
        writer.writerow(row)
        if number % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    # an encoder-decoder's total row reads every input (`10; 6`), the first being `input_shape`
    inputs = "; ".join(shape(dims) for dims in data["inputs"]) if "inputs" in data else shape(data["input_shape"])
    total = ["", "total", "", "", inputs, shape(data["output_shape"])]
    for q in shown_layer_quantities():
        quantity = data[q.name] if q.totalled else {"expr": None, "value": None}
        total += [_csv_value(quantity["value"]), _csv_text(quantity["expr"])]
    writer.writerow(total)
    yield buffer.getvalue()


def render_csv(network: Network) -> str:
    return "".join(render_chunks(network, "csv"))


def _csv_value(value) -> str:
    return "" if value is None else str(value)


_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def _csv_text(text: str | None) -> str:
    """A text cell that a spreadsheet would read as a formula (`-A1*B1 + 100*A1`: it starts with `-`, `+`,
    `=`, `@`, a tab or a carriage return) gets a `'` in front, as OWASP advises against CSV injection; a
    whole number stays a number (docs/cli.md, "--format csv")."""
    if not text:
        return ""
    if text[0] in "-+=@\t\r" and not _WHOLE_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _markdown_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _total_cells(data: dict, columns) -> list[str]:
    """The total row's cells of the quantity columns (empty where a quantity has no total)."""
    return [_cell(data[q.name]) if q.totalled else "" for q in columns]


def render_markdown(network: Network, fold: bool = False) -> str:
    document = network.document()
    data = document.head()
    columns = _columns("markdown")
    rows = [
        "| # | layer | output | " + " | ".join(q.title for q in columns) + " |",
        "|---:|---|---|" + "---:|" * len(columns),
    ]
    for row in _rows(network, document, bool(fold))[0]:
        cells = [
            row["index"],
            f"`{row['label']}`",
            _shape(row["out_shape"]),
            *("" if row[q.name]["expr"] == "" else _cell(row[q.name]) for q in columns),
        ]
        rows.append("| " + " | ".join(_markdown_escape(c) if not c.startswith("`") else c for c in cells) + " |")
    rows.append(
        "| | **total** | "
        + " | ".join(_markdown_escape(c) for c in (_shape(data["output_shape"]), *_total_cells(data, columns)))
        + " |"
    )
    lines = "\n".join(rows) + "\n"
    # the summary lines of quantities that are not already in the table
    in_table = tuple(f"{q.title:<6} =" for q in columns)
    extra = [line for line in summary_lines(network, data, document) if not line.startswith(in_table)]
    if extra:
        lines += "\n" + "\n".join(f"- {_markdown_escape(line)}" for line in extra) + "\n"
    return lines


def render_html(network: Network) -> str:
    import html  # only Jupyter's display needs it

    document = network.document()
    data = document.head()
    columns = _columns("html")
    head = "".join(f"<th>{h}</th>" for h in ("#", "layer", "output", *(q.title for q in columns)))
    body = []
    for layer in document.layers():
        cells = (layer["index"], layer["name"], _shape(layer["out_shape"]), *(_cell(layer[q.name]) for q in columns))
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    foot = (
        "<tr><td></td><th>total</th>"
        + "".join(f"<th>{html.escape(c)}</th>" for c in (_shape(data["output_shape"]), *_total_cells(data, columns)))
        + "</tr>"
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}{foot}</tbody></table>"


def render_latex(network: Network) -> str:
    """A booktabs table of the layers (see paramsym.latex)."""
    return latex_table(network)


def render_latex_total(network: Network) -> str:
    return f"$\\mathrm{{params}} = {sympy.latex(network.params)}$"


def render(network: Network, fmt: str, fold: bool | None = False) -> str:
    """The text of `paramsym count --format FMT` (the table without colour). `fold` None: the
    table folds beyond FOLD_ABOVE layers (and says so); the other formats show every layer."""
    if fmt == "table":
        return render_table(network, fold=fold)
    if fmt == "markdown":
        return render_markdown(network, fold=bool(fold))
    renderers = {"json": render_json, "csv": render_csv, "latex": render_latex}
    return renderers[fmt](network)


def render_chunks(network: Network, fmt: str, fold: bool | None = None):
    """The text of `render(network, fmt, fold)` in parts: JSON and CSV a thousand layers at a time,
    so that a large network's output is never held whole."""
    chunks = {"json": _json_chunks, "csv": _csv_chunks}.get(fmt)
    with without_cyclic_gc():  # many small objects, no cycles (see paramsym.network)
        if chunks is None:
            yield render(network, fmt, fold)
        else:
            yield from chunks(network)


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
    from rich import box
    from rich.console import Console
    from rich.table import Table

    names = result.column_names()
    if fmt == "csv":
        return ",".join(names) + "\n" + _csv_rows(np, result.columns())
    if fmt == "json":
        data = {
            "points": result.size,
            "on": result.on,
            "budget": result.budget,
            "formulas": {name: str(expr) for name, expr in result.formulas.items()},
            "columns": {
                name: [_json_value(v) for v in column]
                for name, column in [*result.grid.items(), *result.values.items()]
            },
        }
        for name, mask in (("within", result.within), ("valid", result.valid)):
            if mask is not None:
                data["columns"][name] = [bool(v) for v in mask]
        return json.dumps(data) + "\n"
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for name in names:
        table.add_column(name, justify="right")
    shown = (
        range(result.size)
        if result.size <= limit
        else [*range(limit // 2), None, *range(result.size - limit // 2, result.size)]
    )
    columns = [*result.grid.values(), *result.values.values()]
    # a column in bytes as people read it (`16.0 GB`); CSV and JSON have every value exactly
    shows = [grouped] * len(result.grid) + [
        _decimal_bytes if quantity_unit(name) == "bytes" else grouped for name in result.values
    ]
    for i in shown:
        if i is None:
            table.add_row(*["..."] * len(names))
            continue
        cells = [show(int(column[i])) for show, column in zip(shows, columns)]
        if result.valid is not None and not result.valid[i]:
            cells[len(result.grid) :] = _exact_cells(result, i)
        for mask in (result.within, result.valid):
            if mask is not None:
                cells.append("yes" if mask[i] else "no")
        table.add_row(*cells)
    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(table)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    lines += [
        f"{result.size:,} points"
        + (f", {result.size - len(shown) + 1:,} not shown (use --format csv)" if result.size > limit else "")
    ]
    if any(show is _decimal_bytes for show in shows):
        lines.append("bytes to 3 digits (1 GB = 10^9 bytes); --format csv or json gives every value exactly")
    for name, expr in result.formulas.items():
        lines.append(f"{name} = {human(expr)}")
    if result.valid is not None:
        lines.append(
            f"{int(np.count_nonzero(~result.valid)):,} points give no valid network (valid = no): "
            f"groups that do not divide the channels, sizes below 1, channels or sizes that are not "
            f"positive whole numbers, or a relation that is not a positive whole number"
        )
    if result.within is not None:
        count = int(np.count_nonzero(result.within))
        unit = quantity_unit(result.on)
        lines.append(f"{count:,} of {result.size:,} points have {result.on} <= {readable(int(result.budget), unit)}")
        if count:
            values = np.where(result.within, result.values[result.on], -1)
            best = int(np.argmax(values))
            at = ", ".join(f"{n}={int(c[best])}" for n, c in result.grid.items())
            lines.append(f"the largest {result.on} within the budget: {readable(int(values[best]), unit)} at {at}")
    return "\n".join(lines) + "\n"


def _decimal_bytes(value: int) -> str:
    return bytes_text(value, binary=False)


def _json_value(value):
    return int(value)


def _csv_rows(np, columns) -> str:
    """The rows of a sweep's CSV, built by NumPy a block of points at a time: each column as
    bytes (digits right-aligned after NUL bytes, `True`/`False`, or Python's str() for integers
    beyond int64) in one (points, width) array with the commas and newlines, then the NUL bytes
    dropped. What csv.writer writes for the same rows, without a Python step per row."""
    size = len(columns[0]) if columns else 0
    blocks = []
    for start in range(0, size, _CSV_BLOCK):
        parts = [_csv_bytes(np, column[start : start + _CSV_BLOCK]) for column in columns]
        out = np.empty((parts[0].shape[0], sum(part.shape[1] for part in parts) + len(parts)), dtype=np.uint8)
        at = 0
        for i, part in enumerate(parts):
            out[:, at : at + part.shape[1]] = part
            at += part.shape[1]
            out[:, at] = ord(",") if i < len(parts) - 1 else ord("\n")
            at += 1
        flat = out.ravel()
        blocks.append(flat[flat != 0].tobytes())
    return b"".join(blocks).decode("ascii")


_CSV_BLOCK = 1 << 17


@cache
def _groups_of_four() -> tuple[bytes, bytes]:
    """`0000` ... `9999`, and the same without leading zeros (NUL bytes instead): built when a
    sweep is first written, not when paramsym starts."""
    return (
        "".join(f"{i:04d}" for i in range(10000)).encode(),
        "".join(f"{i:>4}" for i in range(10000)).replace(" ", "\0").encode(),
    )


def _csv_bytes(np, column):
    """(points, width) uint8: each value of `column` as text, NUL bytes before or after it."""
    if column.dtype == bool:
        return np.where(column, b"True", b"False").view(np.uint8).reshape(len(column), 5)
    if (
        (column.dtype.kind == "i" or (column.dtype.kind == "u" and column.dtype.itemsize < 8))
        and len(column)
        and column.min() >= 0
    ):
        return _decimal(np, column.astype(np.int64, copy=False))
    # negative numbers and integers beyond int64 (object arrays): Python's own str, left-aligned
    text = np.array([str(int(v)) for v in column.tolist()], dtype="S")
    return text.view(np.uint8).reshape(len(column), -1)


def _decimal(np, values):
    """Whole numbers of at least 0 as decimal digits, four at a time from a table: the first
    group without its leading zeros (NUL bytes instead), the groups before it all NUL."""
    groups = np.searchsorted(10 ** np.arange(4, 19, 4, dtype=np.int64), values, side="right") + 1
    count = int(groups.max())
    digits, leading = (np.frombuffer(table, dtype=np.uint32) for table in _groups_of_four())
    out = np.empty((len(values), count), dtype=np.uint32)
    rest = values
    for group in range(count):  # from the last four digits to the first
        rest, low = np.divmod(rest, 10000)
        inner = groups > group + 1
        out[:, count - 1 - group] = np.where(inner, digits[low], 0) if group else digits[low]
        first = groups == group + 1
        out[first, count - 1 - group] = leading[low[first]]
    return out.view(np.uint8)


DISPLAY.update(text=render_table, rich=_Fitted, html=render_html, latex=render_latex_total)
