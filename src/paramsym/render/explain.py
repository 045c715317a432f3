"""`paramsym explain`: how each layer's count arises, in words and numbers,
the way a good answer to "how many parameters does this layer have?" puts it.
"""

from __future__ import annotations

import dataclasses

import sympy

from ..core.evaluate import Evaluator
from ..core.formatting import grouped, human
from ..core.quantities import QUANTITIES, applies, count_layer, layer_quantities
from ..core.records import ONE
from ..kinds import combinators
from ..model.builder import shadowing
from ..model.network import LayerCount, Network


class _Words:
    """Formats expressions as numbers where every symbol has a value."""

    def __init__(self, evaluator: Evaluator):
        self.ev = evaluator

    def __call__(self, expr) -> str:
        if expr is None:
            return "?"
        expr = sympy.Integer(expr) if isinstance(expr, int) else expr
        if self.ev.has_values_for(expr):
            return grouped(self.ev.number(expr))
        return human(expr)

    def product(self, *factors) -> str:
        """`3·3·32 = 288`, or just `288` when there is one factor."""
        shown = [self(f) for f in factors]
        result = self(sympy.Mul(*factors))
        if len(shown) == 1:
            return result
        text = "·".join(f"({s})" if any(op in s for op in "+-") else s for s in shown)
        return text if text == result else f"{text} = {result}"

    def formula(self, expr) -> str:
        """The formula itself, never its value: the `3x3` of a kernel."""
        return human(expr)

    def shape(self, shape) -> str:
        return w_shape(shape, self)


def _explain_layer(lc: LayerCount, w: _Words, convention: str) -> list[str]:
    """The layer kind's sentences about one copy, then each quantity's own (MACs), then how many copies
    count: a symbolic repeat around it, or the experts of a moe."""
    layer, counts = lc.layer, lc.counts
    copies = layer.multiplier != 1 or layer.experts is not None
    one = count_layer(dataclasses.replace(layer, multiplier=ONE, experts=None), convention) if copies else counts
    lines = layer.kind.explain(layer, one, w)
    for q in layer_quantities():
        value = one[q.name]
        if q.explain_layers and value is not None and value != 0:
            lines.append(f"{q.title}: {w(value)}.")
    for combinator in combinators.COMBINATORS:  # the structure around it: how often it counts
        lines.extend(combinator.explain_layer(layer, counts, w))
    return lines


def w_shape(shape, w: _Words) -> str:
    dims = shape.dims()
    if dims is None:
        return "?"
    return " x ".join("?" if d is None else w(d) for d in dims)


def explain(network: Network, **values) -> str:
    """A step-by-step account of every layer's count and the total."""
    w = _Words(network.evaluator(**values))
    out = []
    if len(network.inputs) > 1:  # an encoder-decoder: each input starts a value of its own
        shown = ", then ".join(w_shape(shape, w) for shape in network.inputs)
        out.append(f"Inputs: {shown} (channels last); the output is the last one's value.")
    elif network.input_shape.spatial is not None:
        out.append(f"Input: {w_shape(network.input_shape, w)} (channels last).")
    for define in shadowing(network.program):
        out.append(
            f"Block {define.name} (line {define.pos.line}, column {define.pos.column}) shadows the layer {define.name}:"
            f" in this program, {define.name} means the block."
        )
    for lc in network.layers:
        layer = lc.layer
        out.append("")
        out.append(
            f"{layer.index + 1}. {layer.name} (line {layer.pos.line}, column {layer.pos.column})"
            f"{layer.kind.header(layer, w)}"
        )
        out.extend("   " + line for line in _explain_layer(lc, w, network.convention))
    out.append("")
    parts = [w(lc.counts.params) for lc in network.layers]
    total_text = w(network.params)
    sum_text = " + ".join(parts) if 1 < len(parts) <= 12 else ""
    formula = human(network.params)
    line = "Total: "
    if sum_text:
        line += f"{sum_text} = "
    line += f"{total_text} learnable parameters"
    if formula != total_text and not network.params.is_number:
        line += f" ({formula})"
    out.append(line + ".")
    for q in QUANTITIES:
        sentence = q.explain(network, w) if q.explain is not None and applies(q, network) else None
        if sentence:
            out.append(sentence)
    return "\n".join(out) + "\n"


def fitted(text: str, width: int) -> str:
    """`text` with each line longer than `width` wrapped at spaces, its continuations indented two more
    than the line (what `paramsym explain` prints on a terminal, which would otherwise break words)."""
    import textwrap

    lines = []
    for line in text.split("\n"):
        if len(line) <= width:
            lines.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip(" "))]
        lines += textwrap.wrap(
            line,
            width,
            initial_indent="",
            subsequent_indent=indent + "  ",
            break_long_words=False,
            break_on_hyphens=False,
            drop_whitespace=True,
        ) or [line]
    return "\n".join(lines)
