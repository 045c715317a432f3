"""Recurrent layers (docs/language.md, Layers): `lstm(->H)`, `gru(->H)`, `rnn(->H)` on a sequence T x I.

Arguments: `->H` (or `I->H`) the hidden size; `layers=N` stacked layers (default 1);
`bidirectional`; `proj=P` (lstm only: PyTorch's proj_size); `bias`; `last` (only the last
step: the vector H'). The output is T x H' (H' = H, 2H bidirectional, P with proj, 2P both).

With G gates (4, 3, 1), the recurrent width R (P with proj, else H) and each layer's input
width I_l (I, then the D·R outputs of the layer before), each layer and direction has
G·H·I_l + G·H·R weights, β·G·H biases and P·H projection weights; β is 2 in PyTorch
(b_ih and b_hh), and in Keras 1 for LSTM and SimpleRNN, 2 for GRU (reset_after=True): the
counts differ by convention. MACs T·(G·H·(I_l + R) + P·H) per layer and direction.

PyTorch: nn.LSTM/GRU/RNN(batch_first=True) inside `Recurrent` (torch_modules), which moves the
channels last and keeps the output (or its last step); Keras: LSTM/GRU/SimpleRNN, one per
stacked layer, in `Bidirectional` when bidirectional.

On a map H x W x I (a paramsym extension, for timm's Sequencer2D), `rows` runs the layer along each row (H
sequences of W steps) and `columns` along each column (W sequences of H steps): the output is H x W x H', the
parameters are the sequence's, and the MACs are the same per-step MACs for each of the H·W positions.
PyTorch: `Recurrent2d` (torch_modules); timm's LSTM2d (its vertical and horizontal LSTMs, joined, then a
Linear) is read whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import sympy

from .. import expansion
from ..core.records import ONE, ZERO, KerasSpec, Layer, Options, Shape, TorchSpec
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError
from .base import (
    Args,
    Call,
    Constraint,
    Counts,
    Expr,
    Field,
    Flow,
    ImportContext,
    Kind,
    NameMatch,
    Numbers,
    Template,
    Words,
    check_or_defer,
    input_channels,
    make_layer,
    refuse_keras,
    times,
    whole_input_field,
)


@dataclass(frozen=True)
class RecurrentOptions(Options):
    hidden: Expr  # H, the hidden size
    layers: Expr  # stacked layers
    directions: int  # 2 when bidirectional
    proj: Expr | None  # P, an LSTM's projection of its hidden state
    last: bool  # only the last step's output goes on
    along: str | None = None  # on a map: "rows" (each row a sequence of W steps) or "columns"


class Recurrent(Kind):
    keywords = frozenset({"layers", "proj"})
    flags = frozenset({"bias", "nobias", "bidirectional", "last", "rows", "columns"})
    takes_channels = True
    by_convention = True  # Keras keeps one bias vector where PyTorch keeps two (lstm, rnn)

    def __init__(
        self, key: str, gates: int, gate_names: str, title: str, torch_class: str, keras_class: str, keras_biases: int
    ):
        self.key = key
        self.names = (key,)
        self.gates = gates
        self.gate_names = gate_names
        self.title = title
        self.torch_class = torch_class
        # PyTorch's module; paramsym's Recurrent2d (along rows or columns) and timm's 2-D layers over a map
        self.torch_modules = (torch_class, "paramsym.frameworks.torch_modules.Recurrent2d") + (
            ("timm.models.sequencer.LSTM2d",) if torch_class == "LSTM" else ()
        )
        self.keras_class = keras_class
        self.keras_biases = keras_biases  # bias vectors per gate unit in Keras (PyTorch: 2)

    # ---- language
    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        rank = flow.shape.rank
        along = self._along(call, flow, args)
        if rank is not None and rank != 1 and along is None:
            self._refuse_input(call, flow)
        if args.channels is None:
            raise ParamsymArgumentError(
                f"{call.name} needs its hidden size: write {call.name}(->256, ...)", pos=call.pos
            )
        cin = input_channels(call, flow, args)
        hidden = args.channels.cout
        layers = args.scalar("layers", ONE)
        proj, constraints = self._proj(call, args, hidden)
        directions = 2 if "bidirectional" in args.flags else 1
        width = directions * (hidden if proj is None else proj)
        last = "last" in args.flags
        out = Shape((), width) if last else Shape(flow.shape.spatial, width)
        options = RecurrentOptions(hidden, layers, directions, proj, last, along)
        return make_layer(
            call, self, flow, out, cin, width, bias=args.bias, options=options, constraints=tuple(constraints)
        )

    def _along(self, call: Call, flow: Flow, args: Args) -> str | None:
        """`rows` or `columns`: the layer runs along each row or each column of a map H x W x I."""
        given = [f for f in ("rows", "columns") if f in args.flags]
        if not given:
            return None
        pos = args.flags[given[-1]].pos
        if len(given) == 2:
            raise ParamsymArgumentError(
                f"{call.name} runs along the rows or along the columns, not both: write two layers and join them",
                pos=pos,
                hint=f"concat({call.name}(->H, rows) | {call.name}(->H, columns))",
            )
        if flow.shape.rank is not None and flow.shape.rank != 2:
            what = "a vector" if flow.shape.rank == 0 else f"{flow.shape.describe()}"
            raise ParamsymShapeError(
                f"'{given[0]}' runs {call.name} along each {given[0][:-1]} of a map (H x W x I), but its input is "
                f"{what}",
                pos=pos,
                hint=f"on a sequence write {call.name}(->H) without '{given[0]}'",
            )
        if "last" in args.flags:
            raise ParamsymArgumentError(
                f"'last' keeps the last step of a sequence: along the {given[0]} of a map every position is kept",
                pos=args.flags["last"].pos,
            )
        return given[0]

    def _refuse_input(self, call: Call, flow: Flow) -> NoReturn:
        shape = flow.shape
        name, where = flow.source or ("the input", None)
        notes = ((f"the {shape.describe()} comes from {name}", where),) if where is not None else ()
        if shape.rank == 0:
            raise ParamsymShapeError(
                f"{call.name} needs a sequence (T x I), but gets the vector {shape.describe()}",
                pos=call.pos,
                notes=notes,
                hint=f"start the network with input(T x I), such as input(32x128) > {call.name}(->256)",
            )
        raise ParamsymShapeError(
            f"{call.name} needs a sequence (T x I), but gets the map {shape.describe()}",
            pos=call.pos,
            notes=notes,
            hint=f"write tokens before it to make the positions a sequence: ... > tokens > {call.name}(->256), "
            f"or start with input(T x I)",
        )

    def _proj(self, call: Call, args: Args, hidden: Expr) -> tuple[Expr | None, list[Constraint]]:
        arg = args.keywords.get("proj")
        if arg is None:
            return None, []
        if self.key != "lstm":
            raise ParamsymArgumentError(
                f"{call.name} has no proj=: PyTorch's proj_size exists only for LSTM",
                pos=arg.pos,
                hint=f"use lstm(->H, proj=P), or a dense(->P) after the {call.name}",
            )
        proj = args.scalar("proj")  # a whole number of at least 1
        message = (
            f"proj={proj} must be smaller than the hidden size {hidden} (PyTorch requires proj_size < hidden_size)"
        )
        return proj, check_or_defer(expansion.expand(hidden - proj), "positive", message, arg.pos)

    # ---- quantities
    def _parts(self, layer: Layer, convention: str = "torch") -> dict[str, Any]:
        """The pieces of the count: per layer and direction, for the first layer and those after."""
        o = RecurrentOptions.of(layer)
        gates, hidden, proj = self.gates, o.hidden, o.proj
        recurrent = hidden if proj is None else proj
        beta = 0 if not layer.bias else (2 if convention == "torch" else self.keras_biases)
        projection = ZERO if proj is None else proj * hidden
        return {
            "G": gates,
            "H": hidden,
            "R": recurrent,
            "P": proj,
            "beta": beta,
            "projection": projection,
            "D": o.directions,
            "L": o.layers,
            "I": layer.cin,
            "after": o.directions * recurrent,
        }

    def _per_direction(self, p: dict[str, Any], width: Expr) -> Expr:
        g, h = p["G"], p["H"]
        return g * h * width + g * h * p["R"] + p["beta"] * g * h + p["projection"]

    def _step_macs(self, p: dict[str, Any], width: Expr) -> Expr:
        return p["G"] * p["H"] * (width + p["R"]) + p["projection"]

    def _params(self, layer: Layer, convention: str) -> sympy.Expr:
        p = self._parts(layer, convention)
        return expansion.expand(
            p["D"] * (self._per_direction(p, p["I"]) + (p["L"] - 1) * self._per_direction(p, p["after"]))
        )

    def counts(self, layer: Layer, convention: str = "torch") -> dict[str, Expr | None]:
        p = self._parts(layer, convention)
        per_step = expansion.expand(
            p["D"] * (self._step_macs(p, p["I"]) + (p["L"] - 1) * self._step_macs(p, p["after"]))
        )
        macs = times(layer.in_shape.positions, per_step)
        return {
            "params": self._params(layer, convention),
            "fan_in": p["I"] + p["R"],
            "connections": macs,
            "macs": macs,
            # the backward leaves out the products of the zero initial state; not counted (core/compute.py)
            "backward_macs": None,
            "backward_first": None,
        }

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        """One layer and direction in C_in and C_out = D·H (D·P with proj), in PyTorch's convention."""
        o = RecurrentOptions.of(layer)
        directions = o.directions
        if o.proj is None:
            hidden = recurrent = t.c_out / directions
            projection = ZERO
        else:
            hidden, recurrent = o.hidden, t.c_out / directions
            projection = recurrent * hidden
        gates, beta = self.gates, 2 if layer.bias else 0

        def one(width: Expr) -> Expr:
            return gates * hidden * width + gates * hidden * recurrent + beta * gates * hidden + projection

        return expansion.expand(directions * (one(t.c_in) + (o.layers - 1) * one(directions * recurrent)))

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        """A step's output may depend on every step before it (and after it, bidirectional): the field is
        the whole sequence, as the last step's is (along the rows or columns of a map: left unknown)."""
        if RecurrentOptions.of(layer).along is not None:
            return None
        return whole_input_field(layer, field)

    # ---- explain
    def header(self, layer: Layer, w: Words) -> str:
        o = RecurrentOptions.of(layer)
        parts = [
            f", {w(layer.cin)} -> {w(layer.cout)} channels (hidden size {w(o.hidden)}"
            + (f", projected to {w(o.proj)}" if o.proj is not None else "")
            + ")"
        ]
        if o.layers != 1:
            parts.append(f", {w(o.layers)} layers")
        if o.directions == 2:
            parts.append(", bidirectional")
        if layer.bias:
            parts.append(", with bias")
        if o.last:
            parts.append(", last step only")
        if o.along is not None:
            parts.append(f", along each {o.along[:-1]}")
        return "".join(parts)

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        p = self._parts(layer)
        gates, hidden, recurrent = p["G"], p["H"], p["R"]
        units = (gates, hidden) if gates != 1 else (hidden,)
        keras = self._is_keras(layer, counts)
        p = self._parts(layer, "keras" if keras else "torch")
        state = "hidden state" if p["P"] is None else "projected hidden state"
        if gates == 1:
            lines = [
                f"{self.title} has no gates ({self.gate_names}): each of its {w(hidden)} units sees the step's "
                f"input and the {w(recurrent)} values of the previous {state}."
            ]
        else:
            lines = [
                f"{self.title} has {gates} gates ({self.gate_names}); each of its "
                f"{w.product(gates, hidden)} gate units sees the step's input and the {w(recurrent)} values of "
                f"the previous {state}."
            ]
        if layer.bias:
            if keras:
                lines.append(f"Biases: Keras keeps one vector of {w.product(*units)}, PyTorch two (b_ih and b_hh).")
            else:
                other = "two as well (GRU, reset_after=True)" if self.keras_biases == 2 else "one (--convention keras)"
                lines.append(
                    f"Biases: PyTorch keeps two vectors of {w.product(*units)} (b_ih and b_hh); Keras {other}."
                )
        scope = ", per direction" if p["D"] == 2 else ""

        def sentence(label: str, width: Expr, count: Expr, each: str = "") -> str:
            terms = [f"input weights {w.product(*units, width)}", f"recurrent weights {w.product(*units, recurrent)}"]
            if p["beta"]:
                terms.append(f"biases {w.product(*([p['beta']] if p['beta'] != 1 else []), *units)}")
            if p["P"] is not None:
                terms.append(f"projection {w.product(p['P'], hidden)}")
            text = ", ".join(terms)
            if label or scope:
                label = f"{label}{scope}" if label else "Per direction"
                text = f"{label}: {text}"
            else:
                text = text[0].upper() + text[1:]
            return f"{text}: {w(count)} parameters{each}."

        lines.append(sentence("Layer 1" if p["L"] != 1 else "", p["I"], self._per_direction(p, p["I"])))
        if p["L"] != 1:
            lines.append(
                sentence(
                    f"Layers 2 to {w(p['L'])} (their input: the {w(p['after'])} outputs of the layer before)",
                    p["after"],
                    self._per_direction(p, p["after"]),
                    " each",
                )
            )
        if p["D"] == 2 or p["L"] != 1:
            lines.append(
                f"In all, {w(p['D'])} direction{'s' if p['D'] == 2 else ''} x {w(p['L'])} "
                f"layer{'s' if p['L'] != 1 else ''}: {w(counts.params)} parameters."
            )
        lines.append(
            f"Fan-in: each {'gate unit' if gates != 1 else 'unit'} is connected to {w(counts.fan_in)} values "
            f"({w(p['I'])} inputs and {w(recurrent)} recurrent)."
        )
        if RecurrentOptions.of(layer).last:
            lines.append("Only the last step's output goes on (it still runs every step).")
        along = RecurrentOptions.of(layer).along
        if along is not None:
            steps = "the W positions of each row" if along == "rows" else "the H positions of each column"
            lines.append(
                f"It runs along each {along[:-1]} of the map (a paramsym extension, Sequencer2D's): its steps are "
                f"{steps}, every row or column with the same weights, so each of the map's positions is one step."
            )
        return lines

    def _is_keras(self, layer: Layer, counts: Counts) -> bool:
        """Whether the counts are Keras's (one bias vector where PyTorch keeps two)."""
        if not layer.bias or self.keras_biases == 2:
            return False
        scale = layer.multiplier * (layer.experts[0] if layer.experts else ONE)
        return bool(expansion.expand(counts.params - scale * self._params(layer, "keras")) == 0)

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = RecurrentOptions.of(layer)
        kwargs: dict[str, Any] = {"bias": layer.bias, "batch_first": True}
        if o.layers != 1:
            kwargs["num_layers"] = num(o.layers)
        if o.directions == 2:
            kwargs["bidirectional"] = True
        if o.proj is not None:
            kwargs["proj_size"] = num(o.proj)
        module = TorchSpec(f"nn.{self.torch_class}", (num(layer.cin), num(o.hidden)), kwargs)
        if o.along is not None:
            return TorchSpec("Recurrent2d", (module, o.along), {})
        return TorchSpec("Recurrent", (module,), {"last": True} if o.last else {})

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        o = RecurrentOptions.of(layer)
        if o.proj is not None:
            refuse_keras(layer, "Keras LSTM has no projection (PyTorch's proj_size)")
        if o.along is not None:
            refuse_keras(layer, f"a recurrent layer along the {o.along} of a map has no Keras layer")
        layers = num(o.layers)
        specs = []
        for index in range(layers):
            sequences = not (o.last and index == layers - 1)
            cell = KerasSpec(
                self.keras_class, {"units": num(o.hidden), "use_bias": layer.bias, "return_sequences": sequences}
            )
            specs.append(KerasSpec("Bidirectional", {"layer": cell}) if o.directions == 2 else cell)
        return specs

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        if type(module).__name__ == "Recurrent2d":
            from . import for_torch_module  # the kind of the layer inside (the registry imports this module)

            kind = for_torch_module(module.module)
            if not isinstance(kind, Recurrent):
                raise ImportRefused(f"{ctx.node_name} (Recurrent2d) holds {type(module.module).__name__}")
            return kind._text(module.module, ctx)[:-1] + f", {module.along})"
        if type(module).__name__ in ("LSTM2d", "GRU2d", "RNN2d"):
            return _rnn2d_text(self, module, ctx)
        return self._text(module, ctx)

    def _text(self, module: Any, ctx: ImportContext) -> str:
        if type(module).__name__ != self.torch_class:
            raise ImportRefused(f"{ctx.node_name}: {type(module).__name__} where an nn.{self.torch_class} is read")
        if not module.batch_first:
            raise ImportRefused(
                f"{ctx.node_name} ({type(module).__name__}) has batch_first=False: paramsym reads "
                f"sequences batch first, (N, T, I); build it with batch_first=True"
            )
        parts = [f"{module.input_size}->{module.hidden_size}"]
        if module.bias:
            parts.append("bias")
        if module.num_layers != 1:
            parts.append(f"layers={module.num_layers}")
        if module.bidirectional:
            parts.append("bidirectional")
        if getattr(module, "proj_size", 0):
            parts.append(f"proj={module.proj_size}")
        return f"{self.key}({', '.join(parts)})"

    def from_torch_item(self, text: str, index: Any, ctx: ImportContext) -> str | None:
        """`(output, state)[0]` is the layer's output; `output[:, -1]` (of the T x H' steps) its last step."""
        if index == 0:
            return text
        full = slice(None)
        if (
            isinstance(index, tuple)
            and len(index) in (2, 3)
            and index[0] == full
            and index[1] == -1
            and all(i == full for i in index[2:])
            and len(ctx.in_shape) == 3
            and not text.endswith(", last)")
        ):
            return text[:-1] + ", last)"
        return None


def _rnn2d_text(kind: Recurrent, module: Any, ctx: ImportContext) -> str:
    """timm's LSTM2d (sequencer.RNN2dBase) on an (N, H, W, C) map: rnn_v along each column and rnn_h along each
    row, joined ("cat": concat, in that order; "vertical" or "horizontal": one of them), then fc (a Linear back
    to C) when with_fc. The sum of the two ("add") is refused: the language's add of branches is not read here."""
    where = f"{ctx.node_name} ({type(module).__name__})"
    union = module.union
    (shape,) = ctx.arg_shapes[:1] or ((),)
    if len(shape) != 4 or shape[3] != module.input_size:
        raise ImportRefused(f"{where} takes a value of shape {shape}, not (N, H, W, {module.input_size})")
    parts = []
    if module.with_vertical:
        parts.append(kind._text(module.rnn_v, ctx)[:-1] + ", columns)")
    if module.with_horizontal:
        parts.append(kind._text(module.rnn_h, ctx)[:-1] + ", rows)")
    if union == "add" and len(parts) == 2:
        raise ImportRefused(f"{where} adds its vertical and horizontal outputs (union='add'): not read")
    text = f"concat({' | '.join(parts)})" if len(parts) == 2 else parts[0]
    fc = module.fc
    if fc is not None:
        if type(fc).__name__ != "Linear":
            raise ImportRefused(f"{where}: its fc {type(fc).__name__} is not a Linear layer")
        text += f" > dense(->{fc.out_features}{', bias' if fc.bias is not None else ''})"
    return text


KINDS = (
    Recurrent("lstm", 4, "input, forget, cell and output", "An LSTM", "LSTM", "LSTM", 1),
    Recurrent("gru", 3, "reset, update and new", "A GRU", "GRU", "GRU", 2),
    Recurrent("rnn", 1, "tanh of the input and the previous state", "A plain RNN", "RNN", "SimpleRNN", 1),
)
