"""Layer records to SymPy formulas: parameters, state, fan-in, connections, MACs.

One function per layer kind, dispatched by `Layer.kind`. A quantity that needs
an unknown shape is None. Conventions (docs/language.md, "What is counted"):
MACs count the multiply-accumulates of convolutions and dense layers only;
connections are fan-in x output positions x output channels.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy

from .layers import Layer

Expr = sympy.Expr
ZERO = sympy.Integer(0)
ONE = sympy.Integer(1)


@dataclass(frozen=True)
class Counts:
    params: Expr
    state: Expr
    fan_in: Expr | None
    connections: Expr | None
    macs: Expr | None
    activations: Expr | None = None  # elements of the output


def _times(*factors):
    """Product, or None when a factor is unknown."""
    if any(f is None for f in factors):
        return None
    return sympy.Mul(*factors)


def _bias(layer: Layer) -> Expr:
    return layer.cout if layer.bias else ZERO


def _conv(layer: Layer) -> Counts:
    k, cin, cout, g = layer.kernel_size, layer.cin, layer.cout, layer.groups
    fan_in = k * cin / g
    weights = fan_in * cout
    positions = layer.out_shape.positions
    macs = _times(positions, cout, fan_in)
    return Counts(weights + _bias(layer), ZERO, fan_in, macs, macs)


def _sepconv(layer: Layer) -> Counts:
    # Keras SeparableConv2D (depth multiplier 1): a depthwise k-filter per input
    # channel, then a 1x1 convolution from Cin to Cout.
    k, cin, cout = layer.kernel_size, layer.cin, layer.cout
    positions = layer.out_shape.positions
    depthwise_macs = _times(positions, cin, k)
    pointwise_macs = _times(positions, cin, cout)
    macs = None if depthwise_macs is None else depthwise_macs + pointwise_macs
    fan_in = k * cin
    return Counts(k * cin + cin * cout + _bias(layer), ZERO, fan_in, _times(fan_in, positions, cout), macs)


def _deconv(layer: Layer) -> Counts:
    # Every input position scatters k * Cout/g products; an output position gathers
    # at most k * Cin/g of them (exactly that when the stride is 1).
    k, cin, cout, g = layer.kernel_size, layer.cin, layer.cout, layer.groups
    macs = _times(layer.in_shape.positions, cin, k, cout / g)
    return Counts(k * cin * cout / g + _bias(layer), ZERO, k * cin / g, macs, macs)


def _dense(layer: Layer) -> Counts:
    cin, cout = layer.cin, layer.cout
    macs = _times(layer.out_shape.positions, cin, cout)
    return Counts(cin * cout + _bias(layer), ZERO, cin, macs, macs)


def _pool(layer: Layer) -> Counts:
    k = layer.kernel_size
    return Counts(ZERO, ZERO, k, _times(k, layer.out_shape.elements), ZERO)


def _globalpool(layer: Layer) -> Counts:
    window = layer.in_shape.positions
    return Counts(ZERO, ZERO, window, _times(window, layer.cout), ZERO)


def _elementwise(params: Expr, state: Expr, layer: Layer) -> Counts:
    return Counts(params, state, ONE, layer.out_shape.elements, ZERO)


def _norm(layer: Layer) -> Counts:
    channels = layer.cout
    params = 2 * channels if layer.options["affine"] else ZERO
    state = 2 * channels if layer.options["norm"] == "batch" else ZERO  # running mean and variance
    return _elementwise(params, state, layer)


def _prelu(layer: Layer) -> Counts:
    return _elementwise(ONE if layer.options["shared"] else layer.cout, ZERO, layer)


def _flatten(layer: Layer) -> Counts:
    return _elementwise(ZERO, ZERO, layer)


def _act(layer: Layer) -> Counts:
    return _elementwise(ZERO, ZERO, layer)


_RULES = {"conv": _conv, "dwconv": _conv, "sepconv": _sepconv, "deconv": _deconv, "dense": _dense,
          "pool": _pool, "globalpool": _globalpool, "norm": _norm, "prelu": _prelu, "flatten": _flatten,
          "act": _act}


def count_layer(layer: Layer) -> Counts:
    """The layer's counts, times the symbolic repeat count around it (fan-in excepted)."""
    counts = _RULES[layer.kind](layer)
    times = layer.multiplier
    return Counts(counts.params * times, counts.state * times, counts.fan_in, _times(counts.connections, times),
                  _times(counts.macs, times), _times(layer.out_shape.elements, times))


def total(quantities) -> Expr | None:
    """Sum of per-layer quantities as one SymPy Add; None if any is unknown."""
    quantities = list(quantities)
    if any(q is None for q in quantities):
        return None
    return sympy.expand(sympy.Add(*quantities))


# ---- generic formulas -----------------------------------------------------------------
# The textbook form of each count (k_h k_w C_in C_out + C_out) beside the instantiated
# one. Template symbols carry no assumptions, so they never clash with a program's own.

_AXES = {1: ("k",), 2: ("k_h", "k_w"), 3: ("k_d", "k_h", "k_w")}


def _template_symbols(layer: Layer) -> tuple:
    kernel = tuple(sympy.Symbol(name) for name in _AXES.get(len(layer.kernel), ()))
    return kernel, sympy.Symbol("C_in"), sympy.Symbol("C_out"), sympy.Symbol("g"), sympy.Symbol("C")


def generic_params(layer: Layer) -> tuple[sympy.Expr, dict]:
    """(template, values): the parameter formula in textbook symbols and what they stand for here."""
    kernel, c_in, c_out, g, c = _template_symbols(layer)
    values = dict(zip(kernel, layer.kernel))
    values.update({c_in: layer.cin, c_out: layer.cout, g: layer.groups, c: layer.cout})
    k = sympy.Mul(*kernel)
    bias = c_out if layer.bias else ZERO
    if layer.kind == "conv":
        grouped = layer.groups != 1
        template = k * (c_in / g if grouped else c_in) * c_out + bias
    elif layer.kind == "dwconv":
        template = k * c_out + bias
    elif layer.kind == "sepconv":
        template = k * c_in + c_in * c_out + bias
    elif layer.kind == "deconv":
        template = k * c_in * (c_out / g if layer.groups != 1 else c_out) + bias
    elif layer.kind == "dense":
        template = c_in * c_out + bias
    elif layer.kind == "norm":
        template = 2 * c if layer.options["affine"] else ZERO
    elif layer.kind == "prelu":
        template = ONE if layer.options["shared"] else c
    else:
        template = ZERO
    if layer.multiplier != 1:
        repeats = sympy.Symbol("N")
        template, values = repeats * template, {**values, repeats: layer.multiplier}
    return template, {s: v for s, v in values.items() if s in template.free_symbols}
