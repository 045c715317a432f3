"""The Python API: `parse(text)` gives a `Network` with per-layer records,
totals as SymPy expressions, and their values once every symbol has one.
"""

from __future__ import annotations

import gc
import operator
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import sympy

from .. import expansion
from ..core import compute  # noqa: F401  (registers flops, train_flops, train_flops_total, train_seconds)
from ..core import saved as _saved  # noqa: F401  # registers saved_activation_bytes
from ..core import serving as _serving  # noqa: F401  (registers the serving quantities)
from ..core import training as _training  # noqa: F401  (registers the training memory quantities)
from ..core.evaluate import Evaluator
from ..core.formatting import listed
from ..core.quantities import (
    BY_NAME,
    DTYPES,
    QUANTITIES,
    Counts,
    applies,
    by_convention,
    count_layers,
    shown_layer_quantities,
    total,
)
from ..core.records import Layer, Node, Shape
from ..core.setup import Setup
from ..errors import (
    ParamsymError,
    ParamsymEvaluationError,
    ParamsymLimitError,
    ParamsymNameError,
    ParamsymUsageError,
    Position,
)
from ..kinds.combinators import LAYER, SEQ
from ..language.syntax import Let, Program, oversized_number, parse_program, symbol, too_large
from .builder import build_all

CONVENTIONS = ("torch", "keras")
# How a Network shows itself (str, rich, Jupyter): filled in by paramsym.printers, a later stage.
DISPLAY: dict[str, Callable] = {}


@dataclass(frozen=True)
class LayerCount:
    """One layer with its counts."""

    layer: Layer
    counts: Counts

    def __repr__(self) -> str:
        # short: `net.layers` of a 500-layer network in a REPL is a screen, not the whole record of each layer
        layer = self.layer
        return (
            f"<LayerCount {layer.index} {layer.path} ({layer.pos}): {layer.out_shape.describe()}, params {self.params}>"
        )

    def __getattr__(self, name):
        # layer.params, layer.out_shape, ... read through to the record and the counts
        if name.startswith("__") or name in ("layer", "counts"):  # pickle and copy, before the fields are set
            raise AttributeError(name)
        if name in BY_NAME and BY_NAME[name].per_layer:
            return self.counts[name]
        return getattr(self.layer, name)


class _Counted:
    """The layers with their counts, and what follows from them alone (their symbols, the sums of
    their quantities): the same for every copy of a network with other values, convention or dtype."""

    def __init__(self, layers: list[Layer], convention: str = "torch"):
        self.layers = [LayerCount(layer, counts) for layer, counts in zip(layers, count_layers(layers, convention))]
        self.convention = convention
        self._totals: dict = {}
        self._free: set | None = None

    @classmethod
    def of(cls, layer_counts: list[LayerCount]) -> _Counted:
        """Layers counted already (with relations applied)."""
        counted = cls([])
        counted.layers = layer_counts
        counted.convention = None
        return counted

    def total(self, name: str) -> sympy.Expr | None:
        if name not in self._totals:
            self._totals[name] = total(lc.counts[name] for lc in self.layers)
        return self._totals[name]

    def free_symbols(self) -> set:
        """The symbols in the layers' counts and output shapes (each distinct formula looked at once)."""
        if self._free is None:
            counts = {id(lc.counts): lc.counts for lc in self.layers}  # layers alike share them
            shapes = {id(lc.layer.out_shape): lc.layer.out_shape for lc in self.layers}
            distinct = {
                expr
                for owner in (*(c.values() for c in counts.values()), *(s.dims() or () for s in shapes.values()))
                for expr in owner
                if isinstance(expr, sympy.Basic)
            }
            self._free = set().union(*(expr.free_symbols for expr in distinct))
        return self._free


class Network:
    """A parsed program: layers with their formulas, totals, symbols and defaults."""

    def __init__(
        self,
        program: Program,
        layers: list[Layer] | None,
        input_shape: Shape,
        output_shape: Shape,
        assignments: dict[str, sympy.Expr],
        convention: str = "torch",
        dtype: str = "float32",
        structure: Node | None = None,
        *,
        counted: _Counted | None = None,
        inputs: tuple[Shape, ...] | None = None,
        setup: Setup | None = None,
    ):
        if convention not in CONVENTIONS:
            raise ParamsymUsageError(f"unknown convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
        if setup is None:
            if not isinstance(dtype, str):
                raise ParamsymUsageError(
                    f"the dtype is a name such as 'float16', not {dtype!r}; use one of {', '.join(DTYPES)}"
                )
            try:
                setup = Setup.of_dtype(dtype)
            except ParamsymUsageError:
                raise ParamsymUsageError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}") from None
        # how it is run: number formats, training, batch, devices (core/setup.py)
        self.setup = setup
        self.dtype = setup.dtype
        self.program = program
        self.input_shape = input_shape
        # every input(...): the first, then an encoder-decoder's decoder input (docs/language.md, "Two inputs")
        self.inputs: tuple[Shape, ...] = inputs if inputs is not None else (input_shape,)
        self.output_shape = output_shape
        # `let` values and --set overrides, by name: numbers, or formulas in other symbols (relations)
        self.assignments = dict(assignments)
        # the counts depend on the layers alone: copies with other values, convention or dtype share them
        if (
            counted is not None
            and counted.convention != convention
            and by_convention(lc.layer for lc in counted.layers)
        ):
            layers, counted = [lc.layer for lc in counted.layers], None  # recurrent biases: counted anew
        self._untied = self._counted = counted if counted is not None else _Counted(layers, convention)
        self.layers = self._counted.layers
        # how the layers connect (sequences, branches, symbolic repeats), for export
        self.structure = (
            structure if structure is not None else Node(SEQ, [Node(LAYER, layer=i) for i in range(len(self.layers))])
        )
        self.convention = convention
        # D = 2C (`let` or --set): the counts are formulas in C alone, as formula, latex and count show them;
        # they depend on the values, so this network has its own tied copy of the shared counts
        self._tied, self._circular = _closed({symbol(n): e for n, e in self.relations().items()}, self._let_positions())
        if self._tied:
            self._counted = _Counted.of(
                [
                    LayerCount(
                        lc.layer,
                        Counts({name: self.apply_relations(value, lc.layer.pos) for name, value in lc.counts.items()}),
                    )
                    for lc in self._untied.layers
                ]
            )
            self.layers = self._counted.layers
        self._quantities: dict[str, sympy.Expr | None] = {}
        self._symbols: dict | None = None

    # ---- formulas
    @property
    def source(self) -> str:
        return self.program.source

    def quantity(self, name: str) -> sympy.Expr | None:
        """The network's formula for a quantity of paramsym.quantities (None when it needs an unknown shape):
        the sum over the layers, or the quantity's own formula in the totals (`total`, `memory`)."""
        if name not in self._quantities:
            q = BY_NAME.get(name)
            if q is None or not (q.totalled or q.network):
                known = ", ".join(q.name for q in QUANTITIES if q.totalled or q.network)
                what = f"{name} is counted per layer and has no total" if q else f"unknown quantity {name!r}"
                raise ParamsymUsageError(f"{what}; the network's quantities: {known}")
            if not applies(q, self):  # training memory without --train
                self._quantities[name] = None
            else:
                self._quantities[name] = q.network(self) if q.network else self._counted.total(name)
        return self._quantities[name]

    def __getattr__(self, name):
        # net.params, net.macs, net.memory, ...: every quantity of the registry (see quantity())
        if name.startswith("_") or name not in BY_NAME:
            raise AttributeError(f"'Network' object has no attribute {name!r}")
        return self.quantity(name)

    def __dir__(self):
        return [*super().__dir__(), *(q.name for q in QUANTITIES if q.totalled or q.network)]

    @property
    def symbols(self) -> dict[str, sympy.Symbol]:
        """Every symbol of the program, by name: free ones and those with a `let` default."""
        if self._symbols is None:
            self._symbols = self._find_symbols()
        return self._symbols

    def _find_symbols(self) -> dict[str, sympy.Symbol]:
        names = {s.name: s for s in self._counted.free_symbols()}
        # a symbol that changes no count but must still have a valid value (heads=h divides d)
        distinct = {c.expr for lc in self._untied.layers for c in lc.layer.constraints}
        for expr in distinct:
            for free in expr.free_symbols:
                names.setdefault(free.name, free)
        for free in self.setup.symbols():  # --batch B
            names.setdefault(free.name, free)
        for name, expr in self.assignments.items():
            names.setdefault(name, symbol(name))
            for free in expr.free_symbols:
                names.setdefault(free.name, free)
        return dict(sorted(names.items()))

    @property
    def defaults(self) -> dict[str, int]:
        """The numbers the symbols have: `let` defaults and --set values, relations followed."""
        return {s.name: v for s, v in _resolve(self.assignments).items()}

    def relations(self) -> dict[str, sympy.Expr]:
        """Assignments that are formulas in other symbols (`let D = 2C`, `--set D=2C`)."""
        return {name: expr for name, expr in self.assignments.items() if expr.free_symbols}

    def _let_positions(self) -> dict:
        return {s.name: s.pos for s in self.program.statements if isinstance(s, Let)}

    def apply_relations(self, expr, pos: Position | None = None):
        """`expr` with every symbol tied to others by a relation (`--set D=2C`) replaced by its formula;
        symbols with a number stay symbols. Unchanged when the relations go round in a circle (an error
        that evaluating reports). A formula too large to multiply out is refused (at `pos`, a layer's)."""
        if not isinstance(expr, sympy.Basic):
            return expr
        replacements = self._tied
        if not (replacements or self._circular):
            return expr
        free = expr.free_symbols
        if free & self._circular:
            return expr
        if not free & replacements.keys():
            return expr
        step = expr.xreplace(replacements)  # closed formulas: one pass
        return (
            expansion.expand(step, "this layer's count (with the let formulas put in)", pos)
            if step.is_polynomial()
            else expansion.check(step, "this layer's count", pos)
        )

    def bind(self, expr: sympy.Expr, free=()) -> sympy.Expr:
        """`expr` with every assigned symbol but those in `free` replaced by its value or formula."""
        keep = frozenset(s if isinstance(s, sympy.Symbol) else symbol(s) for s in free)
        # the closed formulas once per set of free symbols: a sweep binds every condition of every layer
        bound_by = self.__dict__.setdefault("_bound_by", {})
        if bound_by.get(keep, (None,))[0] is not self.assignments:
            bound_by[keep] = (
                self.assignments,
                _closed(
                    {symbol(n): e for n, e in self.assignments.items() if symbol(n) not in keep}, self._let_positions()
                ),
            )
        replacements, circular = bound_by[keep][1]
        if circular & expr.free_symbols:
            raise ParamsymUsageError("the assignments of the symbols refer to each other in a circle")
        bound = expr.xreplace(replacements)
        return expansion.expand(bound, "the formula (with the values put in)") if bound.is_polynomial() else bound

    # ---- values
    def with_values(self, **values) -> Network:
        """A copy whose defaults are overridden by `values` (what `--set` does): numbers, or
        formulas in other symbols that tie them together (`D=2*C`)."""
        assignments = {**self.assignments, **_check_values(self, values)}
        network = Network(
            self.program,
            None,
            self.input_shape,
            self.output_shape,
            assignments,
            self.convention,
            self.dtype,
            self.structure,
            counted=self._untied,
            inputs=self.inputs,
            setup=self.setup,
        )
        network.check()
        return network

    def without_values(self, *names: str) -> Network:
        """A copy in which the named symbols are free again (what solve does with its unknown)."""
        assignments = {n: e for n, e in self.assignments.items() if n not in names}
        return Network(
            self.program,
            None,
            self.input_shape,
            self.output_shape,
            assignments,
            self.convention,
            self.dtype,
            self.structure,
            counted=self._untied,
            inputs=self.inputs,
            setup=self.setup,
        )

    def with_options(
        self, *, convention: str | None = None, dtype: str | None = None, setup: Setup | None = None
    ) -> Network:
        """A copy with another convention (torch, keras), dtype for byte counts (the one format of weights,
        KV cache and activations) or setup (how the network is run: core/setup.py)."""
        if setup is None:
            setup = self.setup if dtype is None else Setup.of_dtype(dtype)
        return Network(
            self.program,
            None,
            self.input_shape,
            self.output_shape,
            self.assignments,
            convention or self.convention,
            setup.dtype,
            self.structure,
            counted=self._untied,
            inputs=self.inputs,
            setup=setup,
        )

    def evaluator(self, **values) -> Evaluator:
        return Evaluator(_resolve({**self.assignments, **_check_values(self, values)}))

    def value(self, expr: sympy.Expr | None, **values) -> int | None:
        """The integer value of a formula with the defaults and `values`; None if a symbol has none."""
        if isinstance(expr, int) and not isinstance(expr, bool):
            expr = sympy.Integer(expr)
        if expr is not None and not isinstance(expr, sympy.Expr):
            raise ParamsymUsageError(
                f"value takes a formula (a SymPy expression such as net.params), not a {type(expr).__name__}",
                hint=f"net.value(net.quantity({expr!r})) for a quantity by name" if isinstance(expr, str) else None,
            )
        return self.evaluator(**values).integer(expr)

    def evaluate(self, **values) -> dict:
        """The totals as integers: {'params', 'state', 'total', 'macs'} (None where unknown)."""
        if values:
            self.check(**values)  # C=3 in conv3x3(->C/2) is no network: say where, not "81/2 is not whole"
        ev = self.evaluator(**values)
        return {
            q.name: ev.integer(self.quantity(q.name), q.noun) for q in QUANTITIES if q.headline and applies(q, self)
        }

    def check(self, **values) -> None:
        """Check the conditions that wait for values (groups divide channels, sizes >= 1)."""
        ev = self.evaluator(**values)
        try:
            for lc in self.layers:
                for constraint in lc.layer.constraints:
                    ev.check(constraint)
        except ParamsymError as error:
            error.with_source(self.source)
            raise

    def to_dict(self, **values) -> dict:
        """The JSON document of `paramsym count --format json` (see docs/cli.md)."""
        document = self.document(**values)
        return _fresh({**document.head(), "layers": list(document.layers())})

    def document(self, **values) -> Document:
        """The JSON document in parts, each distinct formula printed and evaluated once (what the
        printers read; its parts are shared between layers: copy before changing them)."""
        if values:
            self.check(**values)
        return Document(self, self.evaluator(**values))

    def locate(self, error: ParamsymError) -> ParamsymError:
        """A number-too-large error that evaluating raised without a place (syntax.too_large), at the first
        layer whose own count or size is too large with the values of this network, or at its first layer
        when only a total is; other errors as they are."""
        if not isinstance(error, (ParamsymLimitError, ParamsymEvaluationError)) or error.pos is not None:
            return error
        document = Document(self, self.evaluator())
        try:
            document.head()
            for lc in self.layers:
                document.parts(lc)
        except (ParamsymLimitError, ParamsymEvaluationError) as located:
            if located.pos is not None:
                return located
        return error

    # ---- display (rendering lives in paramsym.printers)
    def __repr__(self) -> str:
        values = self.evaluate()
        shown = values["params"] if values["params"] is not None else self.params
        return f"<Network: {len(self.layers)} layers, params {shown}>"

    def __str__(self) -> str:
        return DISPLAY["text"](self)

    def __rich__(self):
        return DISPLAY["rich"](self)

    def _repr_html_(self) -> str:
        return DISPLAY["html"](self)

    def _repr_latex_(self) -> str:
        return DISPLAY["latex"](self)


_RECENT = 4096  # entries of a cache of distinct receptive fields (a chain has one per layer)


class Document:
    """The parts of `Network.to_dict()`: the head (totals, shapes, symbols) and one dict per layer.

    A network of 10,000 layers has a few dozen distinct formulas: each is printed (`str`) and
    evaluated once, and layers with equal formulas, shapes or receptive fields share one part.
    """

    def __init__(self, network: Network, evaluator: Evaluator):
        self.network = network
        self.evaluator = evaluator
        self._texts: dict = {}
        self._quantities: dict = {}
        self._shapes: dict = {}
        self._fields: dict = {}
        self._by_id: dict = {}  # id of a Counts or Shape -> (it, its part): layers alike share them
        self._field_parts: dict = {}
        self._shape_parts: dict = {}

    def text(self, expr) -> str:
        """`str(expr)`, once per distinct formula."""
        text = self._texts.get(expr)
        if text is None:
            if len(self._texts) >= 16 * _RECENT:
                self._texts.clear()
            try:
                text = self._texts[expr] = str(expr.p) if expr.is_Integer else str(expr)
            except ValueError:  # Python's limit of int to str: a formula with a number too large
                raise too_large("a formula", oversized_number(expr)) from None
        return text

    def quantity(self, expr, what: str = "count") -> dict:
        """`{"expr": text, "value": integer or None}` (shared: do not change it)."""
        key = (expr, what)
        known = self._quantities.get(key)
        if known is None:
            if expr is None:
                known = {"expr": None, "value": None}
            else:
                try:
                    value = self.evaluator.integer(expr, what)
                except ParamsymLimitError as error:  # located by the caller (parts, head)
                    raise _renamed(error, f"the {what}") from None
                if value is None:
                    # a formula that free symbols keep from a number is shown in them alone, the
                    # values the others have put in (docs/language.md: GPT-2 "with L and d free")
                    expr = self.evaluator.partial(expr)
                known = {"expr": self.text(expr), "value": value}
            self._quantities[key] = known
        return known

    def shape(self, shape: Shape) -> list | None:
        by_id = self._by_id.get(id(shape))
        if by_id is not None:
            return by_id[1]
        known = self._shapes.get(shape, self)
        if known is self:
            dims = shape.dims()
            known = self._shapes[shape] = None if dims is None else [None if d is None else self.text(d) for d in dims]
        self._by_id[id(shape)] = (shape, known)
        return known

    def counts(self, counts) -> dict:
        """Each layer quantity of one layer's counts, as `quantity()` gives it."""
        by_id = self._by_id.get(id(counts))
        if by_id is None:
            by_id = self._by_id[id(counts)] = (
                counts,
                {q.name: self.quantity(counts[q.name], q.name.replace("_", "-")) for q in shown_layer_quantities()},
            )
        return by_id[1]

    def field(self, field) -> dict | None:
        """Receptive field per spatial axis: size, jump and start (centre of the first field)."""
        if field is None:
            return None
        # by identity: layers that keep the field (bn, relu) pass on the same tuple; a chain's
        # fields all differ, so only the recent ones are kept
        known = self._fields.get(id(field))
        if known is None:
            if len(self._fields) >= _RECENT:
                self._fields.clear()
            known = self._fields[id(field)] = (
                field,
                {key: [self.text(axis[i]) for axis in field] for i, key in enumerate(("size", "jump", "start"))},
            )
        return known[1]

    def layer(self, lc: LayerCount) -> dict:
        """One layer's dict: its parts (see `parts`) in one."""
        merged: dict = {}
        for _, part in self.parts(lc):
            merged.update(part)
        return merged

    def parts(self, lc: LayerCount) -> tuple:
        """A layer's dict in parts, in order, each `(shared, dict)`: a shared part is the same dict
        object for every layer alike (a writer may print it once)."""
        layer = lc.layer
        try:
            return (
                (
                    False,
                    {
                        "index": layer.index,
                        "name": layer.name,
                        "path": layer.path,
                        "line": layer.pos.line,
                        "column": layer.pos.column,
                    },
                ),
                (True, self.shapes(layer.in_shape, layer.out_shape)),
                (True, self.counts(lc.counts)),
                (True, self.field_part(layer.field)),
            )
        except ParamsymLimitError as error:
            if error.pos is not None:
                raise
            raise _renamed(error, error.message.split(" is too large")[0] + f" of {layer.name}", layer.pos).with_source(
                self.network.source
            ) from None
        except ParamsymEvaluationError as error:  # 1/(A-1) with --set A=1: say which layer
            if error.pos is not None:
                raise
            raise ParamsymEvaluationError(f"{layer.name}: {error.message}", pos=layer.pos, hint=error.hint).with_source(
                self.network.source
            ) from None

    def shapes(self, in_shape: Shape, out_shape: Shape) -> dict:
        """`{"in_shape": ..., "out_shape": ...}`, one dict for equal pairs of shapes."""
        key = (id(in_shape), id(out_shape))
        known = self._by_id.get(key)
        if known is None:
            pair = (in_shape, out_shape)
            part = self._shape_parts.get(pair)
            if part is None:
                part = self._shape_parts[pair] = {"in_shape": self.shape(in_shape), "out_shape": self.shape(out_shape)}
            known = self._by_id[key] = (pair, part)
        return known[1]

    def field_part(self, field) -> dict:
        known = self._field_parts.get(id(field))
        if known is None:
            if len(self._field_parts) >= _RECENT:
                self._field_parts.clear()
            known = self._field_parts[id(field)] = (field, {"receptive_field": self.field(field)})
        return known[1]

    def layers(self):
        """The layers' dicts, one at a time."""
        return map(self.layer, self.network.layers)

    def head(self) -> dict:
        """Everything but the layers, in the order of the JSON document."""
        try:
            return self._head()
        except (ParamsymLimitError, ParamsymEvaluationError) as error:
            if error.pos is not None:
                raise
            if isinstance(error, ParamsymEvaluationError):
                for lc in self.network.layers:
                    self.parts(lc)
                raise
            # a total too large: say at the first layer whose own count is too large, if one is
            for lc in self.network.layers:
                self.parts(lc)
            raise _renamed(
                error, error.message.split(" is too large")[0], self.network.program.network.pos
            ).with_source(self.network.source) from None

    def _head(self) -> dict:
        net, ev = self.network, self.evaluator
        relations = net.relations()
        return {
            **{
                q.name: self.quantity(net.quantity(q.name), q.noun)
                for q in QUANTITIES
                if q.in_json and (q.totalled or q.network) and applies(q, net)
            },
            "convention": net.convention,
            "dtype": net.dtype,
            # weights, KV cache and activations in different formats (--weights int4 --kv fp8)
            **({"formats": net.setup.formats()} if net.dtype == "mixed" else {}),
            "input_shape": self.shape(net.input_shape),
            **({"inputs": [self.shape(shape) for shape in net.inputs]} if len(net.inputs) > 1 else {}),
            "output_shape": self.shape(net.output_shape),
            "symbols": {
                name: {
                    "default": _plain(ev.values.get(s)),
                    **({"relation": str(net.assignments[name])} if name in relations else {}),
                }
                for name, s in net.symbols.items()
            },
        }


def _renamed(error: ParamsymLimitError, what: str, pos=None) -> ParamsymLimitError:
    """A number-too-large error (syntax.too_large) that says which quantity, and where."""
    rest = error.message.split(" is too large", 1)[-1]
    return ParamsymLimitError(f"{what} is too large{rest}", pos=pos, hint=error.hint)


def _fresh(data):
    """A copy of dicts and lists (to_dict's caller may change it without touching shared parts)."""
    if isinstance(data, dict):
        return {key: _fresh(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_fresh(value) for value in data]
    return data


def _plain(value):
    if isinstance(value, Fraction):
        return str(value)
    return value


def _check_values(network: Network, values: dict) -> dict[str, sympy.Expr]:
    checked = {}
    for name, value in values.items():
        if name not in network.symbols:
            raise ParamsymUsageError(f"the program has no symbol {name!r} (its symbols: {listed(network.symbols)})")
        if isinstance(value, sympy.Basic) and value.free_symbols:
            strangers = sorted(s.name for s in value.free_symbols if s.name not in network.symbols)
            if strangers:
                known = listed(network.symbols)
                raise ParamsymUsageError(
                    f"{name} = {value}: {', '.join(strangers)} "
                    f"{'is not a symbol' if len(strangers) == 1 else 'are not symbols'} of the program "
                    f"(its symbols: {known})",
                    hint="a value is a whole number (64, 1_000, 25.6k, 1e3) or a formula in the program's symbols (2C)",
                )
            checked[name] = value  # a relation, checked when it is resolved
        else:
            checked[name] = sympy.Integer(_positive_integer(name, value))
    return checked


def whole_number(value) -> int | None:
    """An int for a whole number of any integer type (int, NumPy, SymPy, a whole Fraction); None for anything
    else (bool, float, str, None)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # True is no width (NumPy's bool_ neither)
        return None
    if isinstance(value, sympy.Basic):
        return int(value) if value.is_Integer else None
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _positive_integer(name: str, value) -> int:
    number = whole_number(value)
    if number is None or number < 1:
        shown = value if isinstance(value, (int, sympy.Basic)) else repr(value)
        raise ParamsymUsageError(
            f"{name} must be a positive whole number, not {shown}",
            hint=f"give {name}={value.strip()} (an int), not a str" if isinstance(value, str) else None,
        )
    return number


def expect_network(network, what: str) -> Network:
    """`network`, or a usage error when a function that takes a Network is given something else."""
    if not isinstance(network, Network):
        raise ParamsymUsageError(
            f"{what} takes a Network (what paramsym.parse returns), not a {type(network).__name__}",
            hint="read a program with paramsym.parse(text)" if isinstance(network, str) else None,
        )
    return network


def _resolve(assignments: dict[str, sympy.Expr], positions: dict | None = None) -> dict[sympy.Symbol, int]:
    """Numbers for every assigned symbol whose formula can be computed, in any order.

    A formula that needs a symbol with no value stays unresolved (a relation to a
    free symbol); one that needs itself is an error (at `positions[name]`, if known).
    """
    positions = positions or {}
    evaluator = Evaluator({})
    values = evaluator.values  # grows as names are resolved (one evaluator: a chain of lets is linear)
    order, pending = _in_order({symbol(n): e for n, e in assignments.items()})
    for sym in order:
        if any(s not in values for s in assignments[sym.name].free_symbols):
            pending.add(sym)  # needs a free symbol (a relation)
            continue
        name = sym.name
        try:
            value = evaluator.number(assignments[name])
        except ParamsymLimitError as error:
            if error.pos is not None:
                raise
            raise ParamsymLimitError(
                error.message.replace("a value", f"the value of {name}", 1), pos=positions.get(name), hint=error.hint
            ) from None
        except ParamsymEvaluationError as error:  # let B = 4/(A-1) with A = 1
            if error.pos is not None:
                raise
            raise ParamsymEvaluationError(
                f"the value of {name}: {error.message}", pos=positions.get(name), hint=error.hint
            ) from None
        if not isinstance(value, int) or value < 1:
            raise ParamsymUsageError(
                f"{sym.name} = {value}: a symbol stands for a positive whole number", pos=positions.get(sym.name)
            )
        values[sym] = value
    circular = _circular({s: assignments[s.name] for s in pending})
    for name in assignments:
        if symbol(name) in circular:
            raise ParamsymUsageError(f"the value of {name} depends on {name} itself", pos=positions.get(name))
    return dict(values)


def _in_order(assignments: dict) -> tuple[list, set]:
    """The assigned symbols, each after those its formula uses (Kahn's order), and those left over:
    on a circle, or after one. Linear in the size of the formulas."""
    users: dict = {}
    waiting: dict = {}
    for sym, expr in assignments.items():
        needs = [s for s in expr.free_symbols if s in assignments]
        waiting[sym] = len(needs)
        for s in needs:
            users.setdefault(s, []).append(sym)
    order = [sym for sym, n in waiting.items() if n == 0]
    for sym in order:  # the list grows while it is read
        for user in users.get(sym, ()):
            waiting[user] -= 1
            if waiting[user] == 0:
                order.append(user)
    return order, {sym for sym, n in waiting.items() if n > 0}


def _circular(assignments: dict) -> set:
    """The symbols whose formula needs, through others, the symbol itself (Tarjan's components,
    without recursion)."""
    graph = {sym: [s for s in expr.free_symbols if s in assignments] for sym, expr in assignments.items()}
    index: dict = {}
    low: dict = {}
    stack: list = []
    on_stack: set = set()
    found: set = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.update(component)
    return found


def _closed(relations: dict, positions: dict) -> tuple[dict, set]:
    """Each relation's formula with the relations it uses put in, so that one `xreplace` applies them
    all; and the symbols left out because their relations go round in a circle. Each formula is put
    together from the closed formulas of the symbols it uses (shared, not copied): linear in the size
    of the relations. One too large to multiply out is refused at its let."""
    order, left = _in_order(relations)
    closed: dict = {}
    for sym in order:
        expr = relations[sym]
        inner = {s: closed[s] for s in expr.free_symbols if s in closed}
        value = expr.xreplace(inner) if inner else expr
        closed[sym] = expansion.check(value, f"the formula of {sym.name}", positions.get(sym.name))
    return closed, left


def _assignments(program: Program) -> dict[str, sympy.Expr]:
    assignments: dict[str, sympy.Expr] = {}
    lets = {}
    for statement in program.statements:
        if isinstance(statement, Let):
            lets.setdefault(statement.name, statement)
    for statement in program.statements:
        if isinstance(statement, Let):
            if statement.name in assignments:
                raise ParamsymUsageError(f"{statement.name} is given a value twice", pos=statement.pos)
            if symbol(statement.name) in statement.value.free_symbols:
                raise ParamsymUsageError(f"let {statement.name} uses {statement.name} itself", pos=statement.pos)
            later = sorted(
                (lets[s.name] for s in statement.value.free_symbols if s.name in lets and s.name not in assignments),
                key=lambda let: (let.pos.line, let.pos.column),
            )
            if later:
                first = later[0]
                raise ParamsymNameError(
                    f"let {statement.name} uses {first.name}, which is defined by a later let",
                    pos=statement.pos,
                    notes=((f"{first.name} is defined here", first.pos),),
                    hint=f"a let refers only to earlier names: move 'let {first.name} = ...' before "
                    f"'let {statement.name} = ...'",
                )
            if not statement.value.free_symbols:
                value = statement.value
                if not (value.is_Integer and value >= 1):
                    raise ParamsymUsageError(
                        f"let {statement.name} = {value}: a symbol stands for a positive whole number",
                        pos=statement.pos,
                    )
            assignments[statement.name] = statement.value
    _resolve(assignments, {s.name: s.pos for s in program.statements if isinstance(s, Let)})
    return assignments


@contextmanager
def without_cyclic_gc():
    """Parsing creates many small objects and no cycles worth collecting; the
    cyclic collector's passes over them made 100,000 layers 40% slower (and
    printing the JSON of 100,000 layers twice as slow)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse(text: str, *, convention: str = "torch", dtype: str = "float32", **values) -> Network:
    """Parse a program and count it. `values` override `let` defaults."""
    if not isinstance(text, str):
        raise ParamsymUsageError(
            f"parse takes the program text as a str, not a {type(text).__name__}",
            hint="join several lines with '\\n'; read a file with open(path).read()",
        )
    with without_cyclic_gc():
        return _parse(text, convention, dtype, values)


def _parse(text: str, convention: str, dtype: str, values: dict) -> Network:
    program = parse_program(text)
    try:
        assignments = _assignments(program)
        layers, input_shape, output_shape, structure, inputs = build_all(program)
        network = Network(
            program, layers, input_shape, output_shape, assignments, convention, dtype, structure, inputs=tuple(inputs)
        )
        if values:
            network = network.with_values(**values)
        network.check()
        return network
    except ParamsymError as error:
        error.with_source(text)
        raise
    except RecursionError:
        raise ParamsymLimitError("the program is nested too deeply to count").with_source(text) from None
