"""`paramsym explain`: how each layer's count arises, in words and numbers,
the way a good answer to "how many parameters does this layer have?" puts it.
"""
from __future__ import annotations

import sympy

from .evaluate import Evaluator
from .network import LayerCount, Network
from .printers import grouped, human


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


def _kernel_text(kernel) -> str:
    return "x".join(human(k) for k in kernel)


def _explain_layer(lc: LayerCount, w: _Words) -> list[str]:
    layer, counts = lc.layer, lc.counts
    kind = layer.kind
    k, cin, cout, g = layer.kernel_size, layer.cin, layer.cout, layer.groups
    lines: list[str] = []
    if kind in ("conv", "dwconv"):
        ksize = _kernel_text(layer.kernel)
        if kind == "dwconv" or (g != 1 and sympy.expand(g - cin) == 0):
            per = cout / cin
            lines.append(f"Depthwise: each input channel has its own {ksize} filter"
                         + (f" ({w(per)} filters per channel)" if per != 1 else "") + ": "
                         + f"{w.product(*layer.kernel)} weights per filter.")
            lines.append(f"{w(cout)} filters: {w.product(k, cout)} weights.")
        elif g != 1:
            lines.append(f"With groups={w(g)}, each filter sees only {w(cin)}/{w(g)} = {w(cin / g)} of the "
                         f"{w(cin)} input channels: {w.product(*layer.kernel, cin / g)} weights per filter.")
            lines.append(f"{w(cout)} filters: {w.product(k * cin / g, cout)} weights.")
        else:
            lines.append(f"Each {ksize} filter spans all {w(cin)} input channels: "
                         f"{w.product(*layer.kernel, cin)} weights.")
            lines.append(f"{w(cout)} filters (one per output channel): {w.product(k * cin, cout)} weights.")
    elif kind == "sepconv":
        lines.append(f"Depthwise part: one {_kernel_text(layer.kernel)} filter per input channel: "
                     f"{w.product(*layer.kernel, cin)} weights.")
        lines.append(f"Pointwise part: a 1x1 convolution from {w(cin)} to {w(cout)} channels: "
                     f"{w.product(cin, cout)} weights.")
    elif kind == "deconv":
        lines.append(f"A transposed convolution has a {_kernel_text(layer.kernel)} filter for each pair of "
                     f"input and output channel{' in a group' if g != 1 else ''}: "
                     f"{w.product(*layer.kernel, cin, cout / g)} weights.")
    elif kind == "dense":
        lines.append(f"Each of the {w(cout)} outputs is connected to all {w(cin)} inputs: "
                     f"{w.product(cin, cout)} weights.")
    elif kind == "norm":
        norm = layer.options["norm"]
        name = {"batch": "BatchNorm", "layer": "LayerNorm", "group": "GroupNorm"}[norm]
        if layer.options["affine"]:
            lines.append(f"{name} learns a scale and a shift per channel: {w.product(2, cout)} parameters.")
        else:
            lines.append(f"{name} without affine part (noaffine) learns nothing.")
        if norm == "batch":
            lines.append(f"It also keeps a running mean and variance per channel: {w.product(2, cout)} "
                         f"non-learnable values (Keras counts them in its total, PyTorch's parameters() "
                         f"does not).")
    elif kind == "prelu":
        lines.append("PReLU learns one slope shared by all channels: 1 parameter." if layer.options["shared"]
                     else f"PReLU learns one slope per channel: {w(cout)} parameters.")
    elif kind == "pool":
        op = "maximum" if layer.options["op"] == "max" else "average"
        lines.append(f"No parameters: it takes the {op} of each {_kernel_text(layer.kernel)} window, "
                     f"channel by channel.")
    elif kind == "globalpool":
        op = "average" if layer.options["op"] == "avg" else "maximum"
        lines.append(f"No parameters: it takes the {op} over all positions of each of the {w(cout)} channels.")
    elif kind == "flatten":
        lines.append(f"No parameters: it lays the {layer.in_shape.describe()} values out as one vector "
                     f"of {w(layer.out_shape.channels)}.")
    else:
        lines.append("No parameters: it acts on each value separately.")

    if layer.bias:
        weights = counts.params - cout
        lines.append(f"Plus {w(cout)} biases, one per output channel: {w(weights)} + {w(cout)} = "
                     f"{w(counts.params)} parameters.")
    elif kind in ("conv", "dwconv", "sepconv", "deconv", "dense"):
        lines.append(f"No bias: {w(counts.params)} parameters.")

    if kind in ("conv", "dwconv", "sepconv", "dense"):
        lines.append(f"Fan-in: each output value is connected to {w(counts.fan_in)} inputs.")
    if kind in ("conv", "dwconv", "sepconv", "pool", "deconv") and layer.in_shape.positions is not None:
        lines.append(_size_sentence(layer, w))
    if counts.macs is not None and counts.macs != 0:
        lines.append(f"MACs: {w(counts.macs)}.")
    return lines


def _size_sentence(layer, w: _Words) -> str:
    """How the output size follows from input size, kernel, stride, padding and dilation."""
    parts = []
    for n, kk, s, p, d, out in zip(layer.in_shape.spatial, layer.kernel, layer.stride, layer.pad,
                                   layer.dilation, layer.out_shape.spatial):
        if p == "same":
            parts.append(f"ceil({w(n)}/{w(s)}) = {w(out)}")
        elif layer.kind == "deconv":
            parts.append(f"({w(n)}−1)·{w(s)} − 2·{w(p)} + {w(d)}·({w(kk)}−1) + 1 = {w(out)}")
        else:
            rounding = "ceil" if layer.options.get("ceil") else "floor"
            parts.append(f"{rounding}(({w(n)} + 2·{w(p)} − {w(d)}·({w(kk)}−1) − 1)/{w(s)}) + 1 = {w(out)}")
    unique = list(dict.fromkeys(parts))
    per_axis = "; ".join(unique) + (" per axis" if len(unique) == 1 and len(parts) > 1 else "")
    return (f"Stride and padding do not change the parameters; they set the output size: {per_axis}, "
            f"so the output is {w_shape(layer.out_shape, w)}.")


def w_shape(shape, w: _Words) -> str:
    dims = shape.dims()
    if dims is None:
        return "?"
    return " x ".join("?" if d is None else w(d) for d in dims)


def explain(network: Network, **values) -> str:
    """A step-by-step account of every layer's count and the total."""
    w = _Words(network.evaluator(**values))
    out = []
    if network.input_shape.spatial is not None:
        out.append(f"Input: {w_shape(network.input_shape, w)} (channels last).")
    for lc in network.layers:
        layer = lc.layer
        change = ""
        if layer.kind in ("conv", "dwconv", "sepconv", "deconv", "dense") and layer.cin is not None:
            change = f", {w(layer.cin)} -> {w(layer.cout)} channels"
        out.append("")
        out.append(f"{layer.index + 1}. {layer.name} (line {layer.pos.line}, column {layer.pos.column})"
                   f"{change}{', with bias' if layer.bias else ''}")
        out.extend("   " + line for line in _explain_layer(lc, w))
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
    if network.state != 0:
        out.append(f"Non-learnable state: {w(network.state)} (the Keras total adds it: "
                   f"{w(network.params + network.state)}).")
    if network.macs is not None:
        out.append(f"MACs: {w(network.macs)}.")
    return "\n".join(out) + "\n"
