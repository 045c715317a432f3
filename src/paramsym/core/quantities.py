"""What paramsym counts: one registry of quantities that counting, totals,
tables, JSON, CSV, Markdown, LaTeX, `explain`, `solve --on` and sweeps read.

A *layer quantity* has a value per layer: the layer's kind gives it
(`Kind.counts`), or the quantity's `default` does (an element-wise layer: fan-in
1, one connection per output value, no MACs). A *network quantity* is computed
from the totals (`total`, `memory`). Adding a quantity is one entry in
`QUANTITIES`; every output picks it up from the flags below.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, ItemsView, Iterable, ValuesView
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeAlias

import sympy

from .. import expansion
from ..errors import ParamsymUsageError
from ..language.syntax import oversized_number, too_large
from .records import ONE, ZERO, Layer

Expr: TypeAlias = sympy.Expr  # SymPy has no type information: Any to mypy
# a paramsym.model.network.Network, a stage above this one (so not imported): its totals by attribute
NetworkLike: TypeAlias = Any
# what explain's closing lines write a number with
Words: TypeAlias = Callable[[Expr], str]

# the names --dtype has always taken, and their bytes (core/setup.py has every format)
DTYPES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


def times(*factors: Expr | None) -> Expr | None:
    """Product, or None when a factor is unknown."""
    if any(f is None for f in factors):
        return None
    return sympy.Mul(*factors)


@dataclass(frozen=True)
class Quantity:
    """One thing paramsym counts, and where it shows.

    `default(layer, counts)` gives a layer's value when its kind does not;
    `network(net)` makes it a network quantity, computed from the totals.
    """

    name: str  # the key in counts, JSON and CSV; the `--on` name
    title: str  # column header and summary label
    long_title: str = ""  # the header where there is room (LaTeX), if not the title
    noun: str = "count"  # in messages: "the MAC count ... is not a whole number"
    default: Callable[[Layer, dict[str, Expr | None]], Expr | None] | None = None
    network: Callable[[NetworkLike], Expr | None] | None = None
    repeats: bool = True  # multiplied by a symbolic repeat count around the layer
    totalled: bool = True  # the network total is the sum over the layers
    tables: frozenset[str] = frozenset()  # per-layer columns: "table" (rich), "markdown", "html", "latex"
    only_if_nonzero: bool = False  # the rich table's column and the summary line only when the total is not 0
    only_if_differs: str = ""  # ... only when the total differs from this quantity's (active vs params)
    experts: str = "active"  # inside moe: "all" (times E experts: what is stored) or "active" (times
    # the k experts a position goes through: what one position uses)
    summary: str | None = None  # a line under the table ("state  = 32  NOTE"): the note, or None for no line
    summary_sum: bool = False  # the summary line adds up the layers: "params = 432 + 32 = 464"
    summary_when: Callable[[NetworkLike], bool] | None = None  # the summary line only when this holds for the network
    summary_for: Callable[[NetworkLike], str] | None = None  # the note of the summary line, when it depends on the net
    unknown: str = ""  # what the summary line says when the quantity needs a shape it lacks
    headline: bool = False  # in Network.evaluate()
    budget: bool = False  # `solve --on`, sweep
    budget_formula: Callable[[NetworkLike], Expr | None] | None = (
        None  # what `--on NAME` budgets, when not the network's own value
    )
    layer_formula: Callable[[Counts], Expr | None] | None = (
        None  # a network quantity's share of a layer (the per-layer view)
    )
    in_json: bool = True  # at the top level of `count --format json`; a layer quantity: in each layer's JSON and CSV
    explain: Callable[[NetworkLike, Words], str | None] | None = (
        None  # explain's closing line, given (network, words), or None to skip
    )
    explain_layers: bool = False  # explain ends each layer with "TITLE: value." when it is not 0
    # whether the quantity applies to a network as it is run (training memory: with --train); where it does not,
    # it is None, left out of JSON, summaries and explain, and `solve --on` / `formula --on` say what it `needs`
    applies: Callable[[NetworkLike], bool] | None = None
    needs: str = ""  # what makes it apply: "--train", "--device"
    unit: str = "count"  # "count", "bytes", "flops", "seconds" or "ns": budgets in bytes, readable output

    @property
    def per_layer(self) -> bool:
        return self.network is None


def _zero(layer: Layer, counts: dict[str, Expr | None]) -> Expr:
    return ZERO


def _one(layer: Layer, counts: dict[str, Expr | None]) -> Expr:
    return ONE


def _params(layer: Layer, counts: dict[str, Expr | None]) -> Expr | None:
    return counts["params"]


def _output_elements(layer: Layer, counts: dict[str, Expr | None]) -> Expr | None:
    return layer.out_shape.elements


def _activation_bytes(net: NetworkLike) -> Expr | None:
    return None if net.activations is None else net.setup.activations.bytes(net.activations)


def _memory(net: NetworkLike) -> Expr | None:
    if net.activation_bytes is None:
        return None
    return expansion.expand(net.activation_bytes + net.param_bytes, "the memory formula")


def _explain_state(net: NetworkLike, words: Words) -> str | None:
    if net.state == 0:
        return None
    return f"Non-learnable state: {words(net.state)} (the Keras total adds it: {words(net.params + net.state)})."


def _state_note(net: NetworkLike) -> str:
    """What the state is: BatchNorm's running statistics, and with `moe(..., score_bias)` the routers' biases."""
    routers = any(getattr(entry.layer.options, "score_bias", False) for entry in getattr(net, "layers", ()))
    return "(running statistics and routers' score biases)" if routers else "(BatchNorm running mean and variance)"


def _kv_cache_bytes(net: NetworkLike) -> Expr | None:
    return None if net.kv_cache is None else net.setup.kv.bytes(net.kv_cache)


def _explain_active(net: NetworkLike, words: Words) -> str | None:
    if net.active == net.params:
        return None
    return f"Active parameters (what one position goes through): {words(net.active)} of {words(net.params)}."


def _explain_kv_cache(net: NetworkLike, words: Words) -> str | None:
    if net.kv_cache is None or net.kv_cache == 0:
        return None
    return (
        f"KV cache (keys and values kept for one sequence): {words(net.kv_cache)} values, "
        f"{words(net.kv_cache_bytes)} bytes at {net.setup.kv}."
    )


def _explain_macs(net: NetworkLike, words: Words) -> str | None:
    return None if net.macs is None else f"MACs: {words(net.macs)}."


_ALL_TABLES = frozenset({"table", "markdown", "html", "latex"})

QUANTITIES: list[Quantity] = [
    Quantity(
        "params",
        "params",
        long_title="parameters",
        default=_zero,
        tables=_ALL_TABLES,
        summary="",
        summary_sum=True,
        headline=True,
        budget=True,
        experts="all",
    ),
    Quantity(
        "state",
        "state",
        default=_zero,
        tables=frozenset({"table"}),
        only_if_nonzero=True,
        summary="(BatchNorm running mean and variance)",
        summary_for=_state_note,
        headline=True,
        explain=_explain_state,
        experts="all",
    ),
    # what one position uses: the parameters, except inside moe, where a position goes through k of E experts
    Quantity(
        "active",
        "active",
        long_title="active parameters",
        default=_params,
        tables=frozenset({"table"}),
        only_if_differs="params",
        summary="(parameters one position goes through)",
        headline=True,
        budget=True,
        explain=_explain_active,
    ),
    # keys and values that attention keeps for one sequence (docs/language.md, What is counted)
    Quantity(
        "kv_cache",
        "KV cache",
        noun="KV cache size",
        default=_zero,
        tables=frozenset({"table"}),
        only_if_nonzero=True,
        summary="(values attention keeps for one sequence)",
        headline=True,
        budget=True,
        explain=_explain_kv_cache,
    ),
    Quantity(
        "total",
        "total",
        network=lambda net: (
            net.params if net.convention == "torch" else expansion.expand(net.params + net.state, "the total formula")
        ),
        summary="(keras convention: params + state)",
        summary_when=lambda net: net.convention == "keras",
        headline=True,
        budget=True,
        # a budget counts the state too
        budget_formula=lambda net: expansion.expand(net.params + net.state, "the total formula"),
        layer_formula=lambda counts: counts.params + counts.state,  # type: ignore[operator]  # both known for a layer
    ),
    Quantity(
        "fan_in",
        "fan-in",
        noun="fan-in",
        default=_one,
        repeats=False,
        totalled=False,
        tables=frozenset({"table", "markdown", "html"}),
    ),
    Quantity("connections", "connections", default=_output_elements, totalled=False),
    Quantity(
        "macs",
        "MACs",
        noun="MAC count",
        default=_zero,
        tables=_ALL_TABLES,
        summary="",
        headline=True,
        budget=True,
        explain=_explain_macs,
        explain_layers=True,
        unknown="? (give the input shape, e.g. input(224x224x3), to count MACs)",
    ),
    Quantity("activations", "activations", default=_output_elements),
    Quantity("activation_bytes", "activation bytes", network=_activation_bytes, unit="bytes"),
    Quantity(
        "param_bytes",
        "parameter bytes",
        network=lambda net: expansion.expand(
            net.setup.weights.bytes(net.params + net.state), "the formula of the parameter bytes"
        ),
        unit="bytes",
    ),
    Quantity("kv_cache_bytes", "KV cache bytes", network=_kv_cache_bytes, budget=True, unit="bytes"),
    Quantity("memory", "bytes", network=_memory, budget=True, in_json=False, unit="bytes"),
]

BY_NAME = {q.name: q for q in QUANTITIES}


def register(q: Quantity, after: str | None = None) -> None:
    """Add a quantity (after the one named `after`, else at the end); every output picks it up."""
    if q.name in BY_NAME:
        raise ValueError(f"a quantity {q.name!r} exists already")
    QUANTITIES.insert(QUANTITIES.index(BY_NAME[after]) + 1 if after else len(QUANTITIES), q)
    BY_NAME[q.name] = q
    for view in (layer_quantities, shown_layer_quantities, budgets, viewable, per_layer_names):
        view.cache_clear()


@cache
def layer_quantities() -> tuple[Quantity, ...]:
    """The quantities every layer has, in order."""
    return tuple(q for q in QUANTITIES if q.per_layer)


@cache
def shown_layer_quantities() -> tuple[Quantity, ...]:
    """The layer quantities each layer of JSON and CSV shows: not the ones kept for a network quantity's sake
    (`in_json=False`: the backward MACs that train_flops adds up)."""
    return tuple(q for q in layer_quantities() if q.in_json)


@cache
def budgets() -> tuple[str, ...]:
    """What `solve --on` and sweeps accept."""
    return tuple(q.name for q in QUANTITIES if q.budget)


@cache
def viewable() -> tuple[str, ...]:
    """What `formula`, `latex` and the views can show: the budgets, then the other totals people ask for."""
    return budgets() + tuple(q.name for q in QUANTITIES if q.headline and not q.budget)


@cache
def per_layer_names() -> tuple[str, ...]:
    """What the per-layer view splits: layer quantities with a total, and network quantities with a
    share per layer."""
    return tuple(q.name for q in QUANTITIES if (q.per_layer and q.totalled) or q.layer_formula)


def applies(q: Quantity, network: NetworkLike) -> bool:
    """Whether the quantity applies to the network as it is run (see Quantity.applies)."""
    return q.applies is None or bool(q.applies(network))


def budget_formula(network: NetworkLike, name: str) -> Expr | None:
    """The formula a budget on `name` is about (`solve --on`, sweep, `formula --on`)."""
    q = BY_NAME[name]
    if not applies(q, network):
        # an option to add (--train), or what the network must be (a causal decoder): nothing to add
        hint = f"add {q.needs.split(',')[0]}" if q.needs.startswith("--") else None
        raise ParamsymUsageError(f"--on {name} needs {q.needs}", hint=hint)
    return q.budget_formula(network) if q.budget_formula else network.quantity(name)


def layer_share(counts: Counts, name: str) -> Expr | None:
    """A layer's share of the quantity `name`."""
    q = BY_NAME[name]
    return q.layer_formula(counts) if q.layer_formula else counts[name]


class Counts:
    """A layer's quantities by name: `counts.params`, `counts["macs"]`; None where unknown."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Expr | None]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Expr | None:
        if name.startswith("__") or name == "_values":  # pickle and copy ask for __setstate__ before _values is set
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Expr | None:
        return self._values[name]

    def items(self) -> ItemsView[str, Expr | None]:
        return self._values.items()

    def values(self) -> ValuesView[Expr | None]:
        return self._values.values()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Counts) and self._values == other._values

    def __repr__(self) -> str:
        return f"Counts({self._values!r})"


def count_layer(layer: Layer, convention: str = "torch") -> Counts:
    """Every layer quantity of the layer: its kind's, else the default; times the
    symbolic repeat count around it where the quantity repeats, and inside moe times
    the experts (E for what is stored, k for what one position uses)."""
    kind = layer.kind
    given = kind.counts(layer, convention) if kind.by_convention else kind.counts(layer)
    values: dict[str, Expr | None] = {}
    for q in layer_quantities():
        value = given[q.name] if q.name in given else q.default(layer, values)  # type: ignore[misc]  # a layer quantity has one
        values[q.name] = sympy.Integer(value) if isinstance(value, int) else value
    repeats = layer.multiplier
    if repeats != 1:
        values = {name: times(value, repeats) if BY_NAME[name].repeats else value for name, value in values.items()}
    if layer.experts is not None:
        stored, used = layer.experts
        values = {
            name: value
            if not BY_NAME[name].repeats
            else times(value, stored if BY_NAME[name].experts == "all" else used)
            for name, value in values.items()
        }
    for name, value in values.items():  # (A+B+C)^9 channels: a MAC count too large to multiply out
        expansion.check(value, f"the {BY_NAME[name].title} formula of this {layer.name}", layer.pos)
    return Counts(values)


def by_convention(layers: Iterable[Layer]) -> bool:
    """Whether some layer counts differently under the keras convention (a recurrent layer's biases)."""
    return any(layer.kind.by_convention for layer in layers)


def count_layers(layers: Iterable[Layer], convention: str = "torch") -> list[Counts]:
    """`count_layer` of each layer; layers that are alike (a repeated block, a chain of equal
    layers) are counted once. Counting reads what a layer is, not where it is: its kind, name,
    shapes, channels, window, groups, bias, options and repeat count, not its index, position,
    path or receptive field."""
    known: dict[tuple[Any, ...], Counts] = {}
    counted: list[Counts] = []
    checked: set[Expr] = set()  # sub-formulas whose numbers are within the limit (see _bounded)
    for layer in layers:
        key = (
            layer.kind,
            layer.name,
            layer.in_shape,
            layer.out_shape,
            layer.cin,
            layer.cout,
            layer.kernel,
            layer.stride,
            layer.pad,
            layer.dilation,
            layer.groups,
            layer.bias,
            layer.multiplier,
            layer.experts,
            layer.options,
        )
        try:
            counts = known.get(key)
        except TypeError:  # an option that cannot be a key (a list): count this one alone
            counted.append(_bounded(layer, count_layer(layer, convention), checked))
            continue
        if counts is None:
            counts = known[key] = _bounded(layer, count_layer(layer, convention), checked)
        counted.append(counts)
    return counted


def _bounded(layer: Layer, counts: Counts, checked: set[Expr]) -> Counts:
    """`counts`, after checking that no number written in the layer's formulas or output shape has more
    than MAX_NUMBER_BITS bits (docs/language.md, "Limits"): a formula then always prints, and the error
    says which layer (input(2^8000) > dense(->2^8000) has a number of 16,001 bits in its params)."""
    for name, value in (*counts.items(), *enumerate(layer.out_shape.dims() or ())):
        bits = oversized_number(value, checked)
        if bits:
            what = f"the {name} of {layer.name}" if isinstance(name, str) else f"the output size of {layer.name}"
            raise too_large(what, bits, layer.pos)
    return counts


def total(quantities: Iterable[Expr | None]) -> Expr | None:
    """Sum of per-layer quantities as one SymPy Add; None if any is unknown."""
    quantities = list(quantities)
    if any(q is None for q in quantities):
        return None
    return expansion.expand(add(quantities), "the network's total")


def add(exprs: Iterable[Expr]) -> Expr:
    """The sum of formulas, each distinct one multiplied by how often it occurs (10,000 layers
    have a few distinct formulas: SymPy adds a few terms instead of collecting 10,000)."""
    exprs = list(exprs)
    if all(isinstance(expr, sympy.Integer) for expr in exprs):
        # plain numbers are added in Python (SymPy's Add imports much of SymPy on its first use)
        return sympy.Integer(sum(int(expr) for expr in exprs))
    times = Counter(exprs)
    return sympy.Add(*(expr if n == 1 else sympy.Mul(n, expr) for expr, n in times.items()))


# ---- generic formulas -----------------------------------------------------------------
# The textbook form of each count (k_h k_w C_in C_out + C_out) beside the instantiated
# one. Template symbols carry no assumptions, so SymPy never confuses them with a program's
# own; a template name that the program also uses is primed (C', C'_in), so that people
# do not confuse them either (a program's names cannot contain a prime).

_AXES = {1: ("k",), 2: ("k_h", "k_w"), 3: ("k_d", "k_h", "k_w")}
TEMPLATE_NAMES = ("k", "k_d", "k_h", "k_w", "C_in", "C_out", "g", "C", "N", "P")


def template_symbol(name: str, avoid: Iterable[str] = frozenset()) -> sympy.Symbol:
    """The textbook symbol `name`, primed when `avoid` (the program's names) has it: C -> C', C_in -> C'_in."""
    if name not in avoid:
        return sympy.Symbol(name)
    head, sep, tail = name.partition("_")
    return sympy.Symbol(f"{head}'{sep}{tail}")


@dataclass(frozen=True)
class Template:
    """The textbook symbols a kind writes its parameter formula in."""

    kernel: tuple[sympy.Symbol, ...]
    c_in: sympy.Symbol
    c_out: sympy.Symbol
    g: sympy.Symbol
    c: sympy.Symbol
    avoid: frozenset[str] = frozenset()
    # a kind's own textbook symbols (posembed's table size P) and what they stand for
    extra: dict[sympy.Symbol, Expr] = field(default_factory=dict)

    @property
    def k(self) -> Expr:
        return sympy.Mul(*self.kernel)

    def named(self, name: str, value: Expr) -> sympy.Symbol:
        """A textbook symbol of the kind's own (primed like the others) standing for `value`."""
        symbol = template_symbol(name, self.avoid)
        self.extra[symbol] = value
        return symbol


def generic_params(layer: Layer, avoid: Iterable[str] = frozenset()) -> tuple[Expr, dict[sympy.Symbol, Expr]]:
    """(template, values): the parameter formula in textbook symbols and what they stand for here;
    `avoid` are names the textbook symbols must not take (the program's symbols)."""

    def named(name: str) -> sympy.Symbol:
        return template_symbol(name, avoid)

    t = Template(
        tuple(named(name) for name in _AXES.get(len(layer.kernel), ())),
        named("C_in"),
        named("C_out"),
        named("g"),
        named("C"),
        frozenset(avoid),
    )
    values = dict(zip(t.kernel, layer.kernel))
    values.update({t.c_in: layer.cin, t.c_out: layer.cout, t.g: layer.groups, t.c: layer.cout})
    template = sympy.sympify(layer.kind.generic_params(layer, t))  # a kind may give a plain 0 (a tied table)
    values.update(t.extra)
    if layer.multiplier != 1:
        repeats = named("N")
        template, values = repeats * template, {**values, repeats: layer.multiplier}
    # a kind may write the program's own symbols (attention's heads=h) in its template: they stand for themselves
    values.update({s: s for s in template.free_symbols if s not in values})
    return template, {s: v for s, v in values.items() if s in template.free_symbols}
