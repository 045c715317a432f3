"""Syntax tree to layer records: every layer call resolved to its kind and
arguments, with input and output shapes and channels inferred.

A `Layer` holds what a layer *is* (kind, kernel, stride, channels, shapes);
`paramsym.formulas` turns it into counts.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Callable

import sympy

from .errors import (ParamsymArgumentError, ParamsymLimitError, ParamsymNameError, ParamsymShapeError, Position)
from .syntax import Call, Channels, Composite, Define, Keyword, Positional, Program, Repeat, Sequence, symbol

Expr = sympy.Expr
ONE = sympy.Integer(1)
ZERO = sympy.Integer(0)


@dataclass(frozen=True)
class Shape:
    """A tensor shape without the batch axis, channels last.

    `spatial` is a tuple of sizes (a size is None when unknown), `()` for a
    vector, or None when even the number of spatial axes is unknown.
    """

    spatial: tuple | None
    channels: Expr | None

    @property
    def rank(self) -> int | None:
        return None if self.spatial is None else len(self.spatial)

    @property
    def positions(self) -> Expr | None:
        """Number of positions (product of the spatial sizes), None if unknown."""
        if self.spatial is None or any(size is None for size in self.spatial):
            return None
        return sympy.Mul(*self.spatial)

    @property
    def elements(self) -> Expr | None:
        positions = self.positions
        if positions is None or self.channels is None:
            return None
        return positions * self.channels

    def dims(self) -> list | None:
        """Sizes channels last, None for the whole shape when its rank is unknown."""
        if self.spatial is None:
            return None
        return [*self.spatial, self.channels]

    def describe(self) -> str:
        dims = self.dims()
        if dims is None:
            return "?" if self.channels is None else f"(...) x {self.channels}"
        return " x ".join("?" if d is None else str(d) for d in dims)


UNKNOWN = Shape(None, None)


@dataclass(frozen=True)
class Constraint:
    """A condition that can only be checked once symbols have values."""

    expr: Expr
    requirement: str  # "integer" or "positive"
    message: str
    pos: Position


@dataclass
class Layer:
    """One layer of the network with everything needed to count it."""

    index: int
    name: str            # as written: conv3x3, dense, bn, ...
    kind: str            # conv, dwconv, sepconv, deconv, dense, pool, globalpool, flatten, norm, act, prelu
    pos: Position
    path: str
    in_shape: Shape
    out_shape: Shape
    cin: Expr | None
    cout: Expr | None
    kernel: tuple = ()
    stride: tuple = ()
    pad: tuple = ()
    dilation: tuple = ()
    groups: Expr = ONE
    bias: bool = False
    options: dict = field(default_factory=dict)
    constraints: tuple = ()
    multiplier: Expr = ONE   # how many times the layer counts (a symbolic repeat around it)
    stage: int = 0           # index of the top-level stage it belongs to (for folded tables)
    field: tuple | None = None  # receptive field per spatial axis of the output: ((size, jump, start), ...)

    @property
    def kernel_size(self) -> Expr:
        return sympy.Mul(*self.kernel) if self.kernel else ONE


# ---- layer names -----------------------------------------------------------------

_SIZED = re.compile(r"^(conv|dwconv|sepconv|deconv|maxpool|avgpool)(\d+(?:x\d+)*)$")
_RANKED = re.compile(r"^(conv|dwconv|sepconv|deconv|maxpool|avgpool)([123])d$")

_KIND_OF_FAMILY = {"conv": "conv", "dwconv": "dwconv", "sepconv": "sepconv", "deconv": "deconv",
                   "maxpool": "pool", "avgpool": "pool"}

ACTIVATIONS = ("relu", "relu6", "leakyrelu", "elu", "gelu", "silu", "sigmoid", "tanh", "softmax",
               "hardswish", "dropout", "id")
_SIMPLE = {
    "dense": "dense", "fc": "dense", "linear": "dense",
    "gap": "globalpool", "gmp": "globalpool", "flatten": "flatten",
    "bn": "norm", "batchnorm": "norm", "ln": "norm", "layernorm": "norm", "gn": "norm", "groupnorm": "norm",
    "prelu": "prelu", "input": "input", "pool": "pool",
    **{name: "act" for name in ACTIVATIONS},
}
_NORM_TYPE = {"bn": "batch", "batchnorm": "batch", "ln": "layer", "layernorm": "layer", "gn": "group",
              "groupnorm": "group"}

# Names offered in "did you mean" hints.
KNOWN_LAYERS = sorted([*_SIMPLE, "conv3x3", "conv1x1", "conv5x5", "conv7x7", "conv1d", "conv2d", "conv3d",
                       "dwconv3x3", "sepconv3x3", "deconv4x4", "deconv2x2", "maxpool2x2", "maxpool3x3",
                       "avgpool2x2", "avgpool3x3"])

# Which arguments each kind accepts.
_CONV_KEYS = {"k", "stride", "pad", "dilation", "groups"}
_KEYWORDS = {
    "conv": _CONV_KEYS, "dwconv": _CONV_KEYS - {"groups"}, "sepconv": _CONV_KEYS - {"groups"},
    "deconv": _CONV_KEYS | {"outpad"}, "pool": {"k", "stride", "pad", "dilation"}, "dense": set(),
    "globalpool": set(), "flatten": set(), "norm": {"groups", "eps", "momentum"}, "act": set(), "prelu": set(),
    "input": set(),
}
_FLAGS = {
    "conv": {"bias", "nobias"}, "dwconv": {"bias", "nobias"}, "sepconv": {"bias", "nobias"},
    "deconv": {"bias", "nobias"}, "pool": {"ceil"}, "dense": {"bias", "nobias"}, "globalpool": set(),
    "flatten": set(), "norm": {"noaffine"}, "act": set(), "prelu": {"shared"}, "input": set(),
}
_TAKES_CHANNELS = {"conv", "dwconv", "sepconv", "deconv", "dense"}


def _unknown_layer(call: Call) -> ParamsymNameError:
    close = difflib.get_close_matches(call.name, KNOWN_LAYERS, n=1, cutoff=0.6)
    if not close:
        # conv33 -> conv3x3: compare with the sized families too
        close = difflib.get_close_matches(call.name, ["conv3x3", "maxpool2x2", "avgpool2x2", "dwconv3x3"], n=1)
    return ParamsymNameError(f"unknown layer '{call.name}'", pos=call.pos,
                             hint=f"did you mean '{close[0]}'?" if close else "see docs/language.md for the layers")


# ---- argument reading ---------------------------------------------------------------

class _Args:
    """The arguments of one call, checked against what its kind accepts."""

    def __init__(self, call: Call, kind: str, takes_positional: int = 0):
        self.call = call
        self.channels: Channels | None = None
        self.keywords: dict[str, Keyword] = {}
        self.flags: dict[str, Positional] = {}
        self.positional: list[Positional] = []
        allowed_keys, allowed_flags = _KEYWORDS[kind], _FLAGS[kind]
        for arg in call.args:
            if isinstance(arg, Channels):
                if kind not in _TAKES_CHANNELS:
                    raise ParamsymArgumentError(f"{call.name} takes no channels (A->B); it keeps the channels it gets",
                                                pos=arg.pos)
                if self.channels is not None:
                    raise ParamsymArgumentError(f"{call.name} has channels twice", pos=arg.pos)
                self.channels = arg
            elif isinstance(arg, Keyword):
                if arg.name not in allowed_keys:
                    self._unknown(arg.name, arg.pos, allowed_keys | allowed_flags, "keyword")
                if arg.name in self.keywords:
                    raise ParamsymArgumentError(f"{arg.name}= is given twice", pos=arg.pos)
                self.keywords[arg.name] = arg
            elif arg.flag in allowed_flags:
                if arg.flag in self.flags:
                    raise ParamsymArgumentError(f"'{arg.flag}' is given twice", pos=arg.pos)
                self.flags[arg.flag] = arg
            elif len(self.positional) < takes_positional:
                self.positional.append(arg)
            elif arg.flag is not None:
                self._unknown(arg.flag, arg.pos, allowed_keys | allowed_flags, "argument")
            else:
                raise ParamsymArgumentError(f"{call.name} does not take a value here", pos=arg.pos,
                                            hint=_usage(kind, call.name))
        if "bias" in self.flags and "nobias" in self.flags:
            raise ParamsymArgumentError("both 'bias' and 'nobias' are given", pos=self.flags["nobias"].pos)

    def _unknown(self, name: str, pos: Position, allowed: set, what: str):
        close = difflib.get_close_matches(name, sorted(allowed), n=1)
        if close:
            hint = f"did you mean '{close[0]}'?"
        elif allowed:
            hint = f"{self.call.name} accepts: {', '.join(sorted(allowed))}"
        else:
            hint = f"{self.call.name} takes no {what}s"
        raise ParamsymArgumentError(f"unknown {what} '{name}' for {self.call.name}", pos=pos, hint=hint)

    def sizes(self, key: str, rank: int, default: tuple) -> tuple:
        """A per-axis value such as stride=2 or stride=2x1, broadcast to `rank` axes."""
        arg = self.keywords.get(key)
        if arg is None:
            return default
        values = arg.value
        if len(values) == 1:
            values = values * rank
        if len(values) != rank:
            raise ParamsymArgumentError(
                f"{key}= gives {len(arg.value)} sizes but {self.call.name} has {rank} spatial axes", pos=arg.pos)
        for value in values:
            if isinstance(value, sympy.Symbol) and value.name in ("same", "valid"):
                raise ParamsymArgumentError(f"'{value.name}' is a padding, not a size", pos=arg.pos)
            _require_number_like(value, arg.pos, key)
        return tuple(values)

    def scalar(self, key: str, default=None):
        arg = self.keywords.get(key)
        if arg is None:
            return default
        if len(arg.value) != 1:
            raise ParamsymArgumentError(f"{key}= takes one value", pos=arg.pos)
        _require_number_like(arg.value[0], arg.pos, key)
        return arg.value[0]

    @property
    def bias(self) -> bool:
        return "bias" in self.flags


def _usage(kind: str, name: str) -> str:
    keys = sorted(_KEYWORDS[kind] | _FLAGS[kind])
    return f"{name} accepts: {', '.join(keys)}" if keys else f"{name} takes no arguments"


# Arguments that may be 0; every other size (kernel, stride, dilation, groups) is at least 1.
_MAY_BE_ZERO = ("pad", "outpad", "a size")


def _require_number_like(value: Expr, pos: Position, what: str) -> None:
    if value.is_number and not (value.is_integer and value >= 0):
        raise ParamsymArgumentError(f"{what} must be a whole number, not {value}", pos=pos)
    if value.is_number and value == 0 and what not in _MAY_BE_ZERO:
        raise ParamsymArgumentError(f"{what} must be at least 1, not 0", pos=pos)


# ---- shape rules -----------------------------------------------------------------

def conv_output_size(n, kernel, stride, pad, dilation):
    """PyTorch's Conv/Pool output size (floor mode)."""
    return sympy.floor((n + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1


def pool_output_size_ceil(n, kernel, stride, pad, dilation):
    """PyTorch's ceil_mode: round up, but the last window must start inside the input."""
    out = sympy.ceiling((n + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1
    shrink = sympy.Ge((out - 1) * stride, n + pad)
    if shrink in (sympy.true, sympy.false):
        return out - 1 if shrink == sympy.true else out
    return sympy.Piecewise((out - 1, shrink), (out, True))


def deconv_output_size(n, kernel, stride, pad, dilation, outpad):
    return (n - 1) * stride - 2 * pad + dilation * (kernel - 1) + 1 + outpad


# ---- the builder ------------------------------------------------------------------

@dataclass
class Node:
    """The structure of the network: sequences, composites and symbolic repeats over layer indices.

    kind is "seq" (children in order), "res" (children: main[, shortcut]), "add" or
    "concat" (children: branches), "repeat" (one child, counted `count` times) or
    "layer" (`layer` is the index into the layer list).
    """

    kind: str
    children: list = field(default_factory=list)
    layer: int | None = None
    count: Expr | None = None


@dataclass
class _Flow:
    """What flows from one layer to the next."""

    shape: Shape
    source: tuple | None  # (name, position) of the layer that set the channels
    field: tuple | None = None  # receptive field per spatial axis: ((size, jump, start), ...)


MAX_LAYERS = 200_000
_INPUT_FIELD_AXIS = (ONE, ONE, sympy.Rational(1, 2))  # one pixel, step 1, centred on the first pixel


class LayerBuilder:
    """Walks a program's network and resolves every layer.

    Blocks (`def`) are expanded where they are called, with their parameters
    bound to the call's values; composites build each branch from the same
    input; `(SEQ) * N` is unrolled, or built once and counted N times when N
    is a symbol (the block must then keep its shape).
    """

    def __init__(self, program: Program):
        self.program = program
        self.layers: list[Layer] = []
        self.input_shape: Shape = UNKNOWN
        self.output_shape: Shape = UNKNOWN
        self.defs: dict[str, Define] = {}
        self.env: dict = {}            # block parameters bound to values
        self.path: list[str] = []      # where we are: block calls, branches, repeats
        self.multiplier: Expr = ONE    # product of the symbolic repeat counts around us
        self.calling: list[str] = []   # blocks being expanded, to refuse recursion
        self.stage_index = 0
        self.extra_constraints: list[Constraint] = []
        self.root = Node("seq")
        self._open: list[Node] = [self.root]  # the node that receives the next layer
        for statement in program.statements:
            if isinstance(statement, Define):
                self._define(statement)

    def _define(self, define: Define) -> None:
        if _is_layer_name(define.name):
            raise ParamsymNameError(f"block '{define.name}' would shadow the layer of that name", pos=define.pos,
                                    hint="give the block another name")
        if define.name in self.defs:
            raise ParamsymNameError(f"block '{define.name}' is defined twice", pos=define.pos,
                                    notes=(("the first definition", self.defs[define.name].pos),))
        if len(set(define.params)) != len(define.params):
            raise ParamsymArgumentError(f"block '{define.name}' names a parameter twice", pos=define.pos)
        self.defs[define.name] = define

    def build(self) -> list[Layer]:
        flow = _Flow(UNKNOWN, None)
        stages = self.program.network.stages
        first = stages[0]
        if isinstance(first, Call) and first.name == "input":
            self.input_shape = self._input(first)
            field = tuple(_INPUT_FIELD_AXIS for _ in self.input_shape.spatial)
            flow = _Flow(self.input_shape, ("input", first.pos), field)
            stages = stages[1:]
        for index, stage in enumerate(stages):
            self.stage_index = index
            flow = self._stage(stage, flow)
        self.output_shape = flow.shape
        return self.layers

    # ---- stages
    def _stage(self, stage, flow: _Flow, suffix: str = "") -> _Flow:
        if isinstance(stage, Call):
            if stage.name in self.defs:
                return self._block(stage, flow, suffix)
            return self._call(self._bound(stage), flow, suffix)
        if isinstance(stage, Sequence):
            if suffix:
                self.path.append("repeat" + suffix)
            for inner in stage.stages:
                flow = self._stage(inner, flow)
            if suffix:
                self.path.pop()
            return flow
        if isinstance(stage, Repeat):
            return self._repeat(stage, flow)
        return self._composite(stage, flow, suffix)

    def _bound(self, call: Call) -> Call:
        """The call with block parameters replaced by their values."""
        if not self.env:
            return call
        env = self.env

        def sub(value):
            return value.xreplace(env) if value is not None else None

        args = []
        for arg in call.args:
            if isinstance(arg, Channels):
                args.append(Channels(sub(arg.cin), sub(arg.cout), arg.pos))
            elif isinstance(arg, Keyword):
                args.append(Keyword(arg.name, tuple(sub(v) for v in arg.value), arg.pos))
            else:
                args.append(Positional(tuple(sub(v) for v in arg.value), arg.pos))
        return Call(call.name, tuple(args), call.pos)

    def _block(self, call: Call, flow: _Flow, suffix: str) -> _Flow:
        define = self.defs[call.name]
        if call.name in self.calling:
            raise ParamsymArgumentError(f"block '{call.name}' calls itself", pos=call.pos,
                                        notes=((f"'{call.name}' is defined here", define.pos),))
        values = self._block_arguments(call, define)
        label = call.name + (f"({', '.join(str(v) for v in values.values())})" if define.params else "")
        saved_env, self.env = self.env, {symbol(name): value for name, value in values.items()}
        self.calling.append(call.name)
        self.path.append(label + suffix)
        try:
            flow = self._stage(define.body, flow)
        finally:
            self.path.pop()
            self.calling.pop()
            self.env = saved_env
        return flow

    def _block_arguments(self, call: Call, define: Define) -> dict:
        values: dict = {}
        positional = [a for a in call.args if isinstance(a, Positional)]
        if len(positional) > len(define.params):
            raise ParamsymArgumentError(
                f"block '{define.name}' takes {len(define.params)} value(s), but {len(positional)} are given",
                pos=positional[len(define.params)].pos,
                notes=((f"'{define.name}({', '.join(define.params)})' is defined here", define.pos),))
        for name, arg in zip(define.params, positional):
            values[name] = arg
        for arg in call.args:
            if isinstance(arg, Channels):
                raise ParamsymArgumentError(
                    f"block '{define.name}' takes values, not channels: pass the width as a parameter",
                    pos=arg.pos, hint=f"def {define.name}(c) = conv3x3(->c) ... and call {define.name}(64)")
            if isinstance(arg, Keyword):
                if arg.name not in define.params:
                    close = difflib.get_close_matches(arg.name, define.params, n=1)
                    raise ParamsymArgumentError(
                        f"block '{define.name}' has no parameter '{arg.name}'", pos=arg.pos,
                        hint=f"did you mean '{close[0]}'?" if close else
                        f"its parameters: {', '.join(define.params) or 'none'}")
                if arg.name in values:
                    raise ParamsymArgumentError(f"'{arg.name}' is given twice", pos=arg.pos)
                values[arg.name] = arg
        missing = [p for p in define.params if p not in values]
        if missing:
            raise ParamsymArgumentError(
                f"block '{define.name}' needs a value for {', '.join(missing)}", pos=call.pos,
                notes=((f"'{define.name}({', '.join(define.params)})' is defined here", define.pos),))
        result = {}
        for name in define.params:
            arg = values[name]
            if len(arg.value) != 1:
                raise ParamsymArgumentError(f"the value of '{name}' must be one expression", pos=arg.pos)
            value = arg.value[0].xreplace(self.env) if self.env else arg.value[0]
            result[name] = value
        return result

    def _repeat(self, repeat: Repeat, flow: _Flow) -> _Flow:
        count = repeat.count.xreplace(self.env) if self.env else repeat.count
        single = repeat.body.stages[0] if len(repeat.body.stages) == 1 else None
        if count.is_number:
            if not (count.is_integer and count >= 1):
                raise ParamsymArgumentError(f"a repeat count must be a positive whole number, not {count}",
                                            pos=repeat.pos)
            if count * len(repeat.body.stages) + len(self.layers) > MAX_LAYERS:
                raise ParamsymLimitError(f"the network would have more than {MAX_LAYERS:,} layers", pos=repeat.pos)
            for i in range(int(count)):
                if single is not None:
                    flow = self._stage(single, flow, suffix=f"[{i + 1}]")
                else:
                    flow = self._stage(repeat.body, flow, suffix=f"[{i + 1}]")
            return flow
        # A symbolic count: build one repeat, count it `count` times; it must keep its shape.
        saved = self.multiplier
        self.multiplier = saved * count
        start = len(self.layers)
        body = Node("seq")
        self._open[-1].children.append(Node("repeat", [body], count=count))
        self._open.append(body)
        try:
            suffix = f"[1..{count}]"
            out = self._stage(single, flow, suffix) if single is not None else self._stage(repeat.body, flow, suffix)
        finally:
            self.multiplier = saved
            self._open.pop()
        problem = _shape_difference(flow.shape, out.shape)
        if problem is not None:
            raise ParamsymShapeError(
                f"(...) * {count}: with a symbolic count the block must keep its shape, but it turns "
                f"{flow.shape.describe()} into {out.shape.describe()}", pos=repeat.pos,
                hint="use a number of repeats, or make the block keep its channels and size")
        for layer in self.layers[start:]:
            layer.constraints = layer.constraints + (
                Constraint(count, "positive", f"the repeat count {count} must be at least 1", repeat.pos),)
        if flow.field is not None and out.field is not None:
            out = _Flow(out.shape, out.source, _repeat_field(flow.field, out.field, count))
        return out

    def _composite(self, composite: Composite, flow: _Flow, suffix: str) -> _Flow:
        kind = composite.kind
        node = Node(kind)
        self._open[-1].children.append(node)
        self.path.append(kind + suffix)
        try:
            outputs = []
            for number, branch in enumerate(composite.branches):
                label = ("main" if number == 0 else "shortcut") if kind == "res" else f"branch{number + 1}"
                self.path.append(label)
                self._open.append(Node("seq"))
                node.children.append(self._open[-1])
                try:
                    outputs.append((branch, self._stage(branch, flow)))
                finally:
                    self.path.pop()
                    self._open.pop()
        finally:
            self.path.pop()
        if kind == "res" and len(outputs) == 1:
            outputs.insert(0, (None, flow))  # x + SEQ(x): the identity is the reference
        reference_branch, reference = outputs[0]
        for branch, out in outputs[1:]:
            if kind == "concat":
                problem = _shape_difference(reference.shape, out.shape, channels=False)
            else:
                problem = _shape_difference(reference.shape, out.shape)
            if problem is None:
                continue
            what = "spatial sizes" if kind == "concat" else "shapes"
            if reference_branch is None:
                raise ParamsymShapeError(
                    f"res(...) must keep the shape of its input, but this branch turns {flow.shape.describe()} "
                    f"into {out.shape.describe()}", pos=branch.pos,
                    hint="add a shortcut that matches: res(... | conv1x1(->C, stride=S))")
            raise ParamsymShapeError(
                f"{kind}(...): the {what} of its branches differ: this branch gives {out.shape.describe()}, "
                f"the first gives {reference.shape.describe()}", pos=branch.pos,
                notes=(("the first branch", reference_branch.pos),))
        for branch, out in outputs[1:]:
            self._defer_equal(reference.shape, out.shape, kind != "concat", branch.pos if branch else composite.pos)
        if kind == "concat":
            channels = None if any(o.shape.channels is None for _, o in outputs) else \
                sympy.Add(*[o.shape.channels for _, o in outputs])
            shape = Shape(reference.shape.spatial, channels)
        else:
            shape = reference.shape
        field = _widest_field([out.field for _, out in outputs])
        return _Flow(shape, (kind, composite.pos), field)

    def _defer_equal(self, a: Shape, b: Shape, channels: bool, pos: Position) -> None:
        """Sizes that are equal only for some values are checked once the values are known."""
        pairs = list(zip(a.spatial or (), b.spatial or ()))
        if channels:
            pairs.append((a.channels, b.channels))
        for x, y in pairs:
            if x is None or y is None:
                continue
            difference = sympy.expand(x - y)
            if difference != 0 and not difference.is_number:
                self.extra_constraints.append(Constraint(difference, "zero", "the branches' sizes must be equal",
                                                         pos))

    def _input(self, call: Call) -> Shape:
        sizes: list = []
        for arg in call.args:
            if not isinstance(arg, Positional):
                raise ParamsymArgumentError("input takes a shape, such as input(224x224x3) or input(224, 224, 3)",
                                            pos=arg.pos)
            for value in arg.value:
                _require_number_like(value, arg.pos, "a size")
                if value.is_number and value == 0:
                    raise ParamsymArgumentError("a size must be positive", pos=arg.pos)
            sizes.extend(arg.value)
        if not sizes:
            raise ParamsymArgumentError("input needs a shape, such as input(224x224x3)", pos=call.pos)
        if len(sizes) > 4:
            raise ParamsymArgumentError(
                f"input has {len(sizes)} sizes; at most 4 (D x H x W x C, channels last) are supported", pos=call.pos)
        return Shape(tuple(sizes[:-1]), sizes[-1])

    def _call(self, call: Call, flow: _Flow, suffix: str = "") -> _Flow:
        if call.name == "input":
            raise ParamsymArgumentError("input(...) can only be the first stage of the network", pos=call.pos)
        family = _SIZED.match(call.name) or _RANKED.match(call.name)
        if family:
            kind = _KIND_OF_FAMILY[family.group(1)]
        elif call.name in _SIMPLE:
            kind = _SIMPLE[call.name]
        else:
            raise _unknown_layer(call)
        resolver: Callable = getattr(self, f"_{kind}")
        layer = resolver(call, flow, family)
        layer.index = len(self.layers)
        layer.path = ".".join([*self.path, call.name + suffix])
        layer.multiplier = self.multiplier
        layer.stage = self.stage_index
        layer.field = _layer_field(layer, flow.field)
        if len(self.layers) >= MAX_LAYERS:
            raise ParamsymLimitError(f"the network has more than {MAX_LAYERS:,} layers", pos=call.pos)
        self.layers.append(layer)
        self._open[-1].children.append(Node("layer", layer=layer.index))
        source = (call.name, call.pos) if layer.cout is not None and layer.cout != layer.cin else flow.source
        return _Flow(layer.out_shape, source, layer.field)

    # -- helpers
    def _layer(self, call: Call, kind: str, flow: _Flow, out_shape: Shape, cin, cout, **extra) -> Layer:
        return Layer(index=-1, name=call.name, kind=kind, pos=call.pos, path=call.name, in_shape=flow.shape,
                     out_shape=out_shape, cin=cin, cout=cout, **extra)

    def _input_channels(self, call: Call, flow: _Flow, args: _Args) -> Expr:
        """The input channels: stated (A->B) and/or inferred, which must agree."""
        stated = args.channels.cin if args.channels is not None else None
        inferred = flow.shape.channels
        if stated is not None and inferred is not None:
            if sympy.expand(stated - inferred) != 0:
                name, where = flow.source
                raise ParamsymShapeError(
                    f"{call.name} says it takes {stated} input channels, but the layer before gives {inferred}",
                    pos=args.channels.pos, notes=((f"the {inferred} channels come from {name}", where),),
                    hint=f"write {call.name}(->{args.channels.cout}, ...) to take the channels from the layer before")
            return inferred
        if stated is not None:
            return stated
        if inferred is not None:
            return inferred
        if flow.shape.spatial == ():
            raise ParamsymShapeError(
                f"{call.name} needs its input size, but the size of the vector before it is unknown", pos=call.pos,
                hint=f"start the network with input(...) so flatten knows its size, or write {call.name}(A->B)")
        raise ParamsymShapeError(
            f"{call.name} needs its input channels: nothing before it says how many there are", pos=call.pos,
            hint=f"write {call.name}(A->B, ...) with the input channels A, or start the network with input(...)")

    def _spatial(self, call: Call, flow: _Flow, rank: int) -> tuple:
        spatial = flow.shape.spatial
        if spatial is None:
            return (None,) * rank
        if len(spatial) != rank:
            have = "a vector" if not spatial else f"{len(spatial)}-D"
            raise ParamsymShapeError(
                f"{call.name} works on {rank}-D inputs, but its input is {have} ({flow.shape.describe()})",
                pos=call.pos, hint=_rank_hint(call.name, len(spatial)))
        return spatial

    def _kernel(self, call: Call, args: _Args, family) -> tuple:
        if family.re is _SIZED:
            kernel = tuple(sympy.Integer(int(part)) for part in family.group(2).split("x"))
            if 0 in kernel:
                raise ParamsymArgumentError(f"{call.name}: a kernel size must be at least 1", pos=call.pos)
            return args.sizes("k", len(kernel), kernel)
        rank = int(family.group(2))
        if "k" not in args.keywords:
            raise ParamsymArgumentError(f"{call.name} needs a kernel size: write k=3 (or k=3x3)", pos=call.pos)
        return args.sizes("k", rank, ())

    def _padding(self, args: _Args, rank: int) -> tuple | str:
        arg = args.keywords.get("pad")
        if arg is not None and len(arg.value) == 1 and isinstance(arg.value[0], sympy.Symbol) \
                and arg.value[0].name in ("same", "valid"):
            return "same" if arg.value[0].name == "same" else (ZERO,) * rank
        return args.sizes("pad", rank, (ZERO,) * rank)

    def _check_divides(self, call, groups, channels, what, pos) -> list:
        ratio = channels / groups
        if ratio.is_number:
            if not ratio.is_integer:
                raise ParamsymArgumentError(f"groups={groups} does not divide the {channels} {what} channels",
                                            pos=pos, hint=f"groups must divide both the input and output channels")
            return []
        return [Constraint(ratio, "integer", f"groups={groups} must divide the {what} channels ({channels})", pos)]

    def _sizes_positive(self, call, sizes) -> list:
        constraints = []
        for size in sizes:
            if size is None:
                continue
            if size.is_number:
                if size < 1:
                    raise ParamsymShapeError(
                        f"{call.name} leaves nothing: an output size would be {size}", pos=call.pos,
                        hint="the kernel is larger than the (padded) input; add padding or remove a pooling layer")
            else:
                constraints.append(Constraint(size, "positive", f"{call.name} would leave an output size below 1",
                                              call.pos))
        return constraints

    # -- kinds
    def _filters(self, call, flow, family, kind: str, args: _Args):
        """What convolutions share: kernel, input sizes, channels, groups, stride, dilation."""
        kernel = self._kernel(call, args, family)
        rank = len(kernel)
        spatial_in = self._spatial(call, flow, rank)
        cin = self._input_channels(call, flow, args)
        if kind == "dwconv":
            groups = cin
            cout = args.channels.cout if args.channels is not None else cin
        else:
            if args.channels is None:
                raise ParamsymArgumentError(f"{call.name} needs its output channels: write {call.name}(->64, ...)",
                                            pos=call.pos)
            cout = args.channels.cout
            groups = args.scalar("groups", ONE)
        constraints = []
        if groups != ONE:
            group_pos = args.keywords["groups"].pos if "groups" in args.keywords else call.pos
            constraints += self._check_divides(call, groups, cin, "input", group_pos)
            constraints += self._check_divides(call, groups, cout, "output", group_pos)
        stride = args.sizes("stride", rank, (ONE,) * rank)
        dilation = args.sizes("dilation", rank, (ONE,) * rank)
        return kernel, rank, spatial_in, cin, cout, groups, stride, dilation, constraints

    def _conv(self, call, flow, family, kind="conv") -> Layer:
        args = _Args(call, kind)
        kernel, rank, spatial_in, cin, cout, groups, stride, dilation, constraints = \
            self._filters(call, flow, family, kind, args)
        pad, spatial_out = self._windows(args, rank, spatial_in, kernel, stride, dilation, conv_output_size)
        constraints += self._sizes_positive(call, spatial_out)
        return self._layer(call, kind, flow, Shape(spatial_out, cout), cin, cout, kernel=kernel, stride=stride,
                           pad=pad, dilation=dilation, groups=groups, bias=args.bias,
                           constraints=tuple(constraints))

    def _windows(self, args: _Args, rank, spatial_in, kernel, stride, dilation, size_rule):
        """Padding and output sizes of a sliding window (convolution or pooling)."""
        padding = self._padding(args, rank)
        if padding == "same":
            return ("same",) * rank, tuple(None if n is None else sympy.ceiling(n / s)
                                           for n, s in zip(spatial_in, stride))
        return padding, tuple(None if n is None else size_rule(n, k, s, p, d)
                              for n, k, s, p, d in zip(spatial_in, kernel, stride, padding, dilation))

    def _dwconv(self, call, flow, family) -> Layer:
        return self._conv(call, flow, family, kind="dwconv")

    def _sepconv(self, call, flow, family) -> Layer:
        return self._conv(call, flow, family, kind="sepconv")

    def _deconv(self, call, flow, family) -> Layer:
        args = _Args(call, "deconv")
        kernel, rank, spatial_in, cin, cout, groups, stride, dilation, constraints = \
            self._filters(call, flow, family, "deconv", args)
        outpad = args.sizes("outpad", rank, (ZERO,) * rank)
        pad = self._padding(args, rank)
        if pad == "same":
            raise ParamsymArgumentError("pad=same is not defined for a transposed convolution; give pad=P",
                                        pos=args.keywords["pad"].pos)
        spatial_out = tuple(None if n is None else deconv_output_size(n, k, s, p, d, o)
                            for n, k, s, p, d, o in zip(spatial_in, kernel, stride, pad, dilation, outpad))
        constraints += self._sizes_positive(call, spatial_out)
        return self._layer(call, "deconv", flow, Shape(spatial_out, cout), cin, cout, kernel=kernel, stride=stride,
                           pad=pad, dilation=dilation, groups=groups, bias=args.bias,
                           options={"outpad": outpad}, constraints=tuple(constraints))

    def _pool(self, call, flow, family) -> Layer:
        args = _Args(call, "pool")
        if family is None:  # `pool` is maxpool2x2
            family = _SIZED.match("maxpool2x2")
        op = "max" if family.group(1) == "maxpool" else "avg"
        if op == "avg" and "dilation" in args.keywords:
            raise ParamsymArgumentError("average pooling has no dilation", pos=args.keywords["dilation"].pos)
        kernel = self._kernel(call, args, family)
        rank = len(kernel)
        spatial_in = self._spatial(call, flow, rank)
        channels = flow.shape.channels
        stride = args.sizes("stride", rank, kernel)
        dilation = args.sizes("dilation", rank, (ONE,) * rank)
        ceil_mode = "ceil" in args.flags
        size_rule = pool_output_size_ceil if ceil_mode else conv_output_size
        pad, spatial_out = self._windows(args, rank, spatial_in, kernel, stride, dilation, size_rule)
        constraints = self._sizes_positive(call, spatial_out)
        return self._layer(call, "pool", flow, Shape(spatial_out, channels), channels, channels, kernel=kernel,
                           stride=stride, pad=pad, dilation=dilation, options={"op": op, "ceil": ceil_mode},
                           constraints=tuple(constraints))

    def _globalpool(self, call, flow, family) -> Layer:
        _Args(call, "globalpool")
        if flow.shape.spatial == ():
            raise ParamsymShapeError(f"{call.name} needs spatial axes, but its input is already a vector",
                                     pos=call.pos)
        channels = flow.shape.channels
        op = "avg" if call.name == "gap" else "max"
        return self._layer(call, "globalpool", flow, Shape((), channels), channels, channels, options={"op": op})

    def _flatten(self, call, flow, family) -> Layer:
        _Args(call, "flatten")
        return self._layer(call, "flatten", flow, Shape((), flow.shape.elements), flow.shape.channels,
                           flow.shape.elements)

    def _dense(self, call, flow, family) -> Layer:
        args = _Args(call, "dense")
        if args.channels is None:
            raise ParamsymArgumentError(f"{call.name} needs its output size: write {call.name}(->10, ...)",
                                        pos=call.pos)
        cin = self._input_channels(call, flow, args)
        cout = args.channels.cout
        return self._layer(call, "dense", flow, Shape(flow.shape.spatial, cout), cin, cout, bias=args.bias)

    def _norm(self, call, flow, family) -> Layer:
        args = _Args(call, "norm", takes_positional=1)
        norm = _NORM_TYPE[call.name]
        channels = self._stated_channels(call, flow, args)
        options = {"norm": norm, "affine": "noaffine" not in args.flags}
        constraints = []
        if norm == "group":
            groups = args.scalar("groups")
            if groups is None:
                raise ParamsymArgumentError(f"{call.name} needs its number of groups: write {call.name}(groups=32)",
                                            pos=call.pos)
            constraints = self._check_divides(call, groups, channels, "", args.keywords["groups"].pos)
            options["groups"] = groups
        elif "groups" in args.keywords:
            raise ParamsymArgumentError(f"{call.name} has no groups (that is gn)", pos=args.keywords["groups"].pos)
        return self._layer(call, "norm", flow, flow.shape, channels, channels, options=options,
                           constraints=tuple(constraints))

    def _prelu(self, call, flow, family) -> Layer:
        args = _Args(call, "prelu", takes_positional=1)
        shared = "shared" in args.flags
        channels = flow.shape.channels if shared else self._stated_channels(call, flow, args)
        return self._layer(call, "prelu", flow, flow.shape, channels, channels, options={"shared": shared})

    def _act(self, call, flow, family) -> Layer:
        # dropout(P), leakyrelu(0.1), elu(1.0): one optional value, which does not change any count
        takes = 1 if call.name in ("dropout", "leakyrelu", "elu") else 0
        args = _Args(call, "act", takes_positional=takes)
        options = {"value": args.positional[0].value[0]} if args.positional else {}
        return self._layer(call, "act", flow, flow.shape, flow.shape.channels, flow.shape.channels,
                           options=options)

    def _stated_channels(self, call, flow, args: _Args) -> Expr:
        """Channels of bn/ln/gn/prelu: from the layer before, or bn(64) when nothing comes before."""
        if args.positional:
            arg = args.positional[0]
            if len(arg.value) != 1:
                raise ParamsymArgumentError(f"{call.name}(C) takes one channel count", pos=arg.pos)
            stated = arg.value[0]
            inferred = flow.shape.channels
            if inferred is not None and sympy.expand(stated - inferred) != 0:
                name, where = flow.source
                raise ParamsymShapeError(
                    f"{call.name} says it has {stated} channels, but the layer before gives {inferred}",
                    pos=arg.pos, notes=((f"the {inferred} channels come from {name}", where),))
            return stated
        if flow.shape.channels is None:
            raise ParamsymShapeError(
                f"{call.name} needs its channels: nothing before it says how many there are", pos=call.pos,
                hint=f"write {call.name}(64) or start the network with input(...)")
        return flow.shape.channels


def _rank_hint(name: str, rank: int) -> str | None:
    family = _SIZED.match(name)
    if family and rank > 0:
        size = family.group(2).split("x")[0]
        return f"for a {rank}-D input write {family.group(1)}{'x'.join([size] * rank)}"
    if rank == 0:
        return "the input is a vector (after flatten, gap or input(C)); use dense"
    return None


def _is_layer_name(name: str) -> bool:
    return bool(_SIZED.match(name) or _RANKED.match(name) or name in _SIMPLE)


def _shape_difference(a: Shape, b: Shape, channels: bool = True) -> str | None:
    """A description of how two shapes differ for certain, or None when they may be equal."""
    if a.spatial is not None and b.spatial is not None:
        if len(a.spatial) != len(b.spatial):
            return "rank"
        for x, y in zip(a.spatial, b.spatial):
            if x is not None and y is not None and _surely_different(x, y):
                return "size"
    if channels and a.channels is not None and b.channels is not None and _surely_different(a.channels, b.channels):
        return "channels"
    return None


def _surely_different(x, y) -> bool:
    difference = sympy.expand(x - y)
    if difference.is_number:
        return difference != 0
    # C vs 2C are different for every positive C; H vs floor((H-1)/2)+1 are equal for H=1 only
    return difference.is_zero is False and not difference.has(sympy.floor, sympy.ceiling, sympy.Min, sympy.Max,
                                                              sympy.Piecewise)


# ---- receptive field ------------------------------------------------------------------

def _layer_field(layer: Layer, field: tuple | None) -> tuple | None:
    """The standard recurrence: size r, jump j, start of the first output's field, per axis."""
    if field is None:
        return None
    if layer.kind in ("conv", "dwconv", "sepconv", "pool"):
        out = []
        for (r, j, start), k, s, p, d, n in zip(field, layer.kernel, layer.stride, layer.pad, layer.dilation,
                                                 layer.in_shape.spatial):
            span = d * (k - 1) + 1
            if p == "same":
                p = 0 if n is None else sympy.floor(sympy.Max((sympy.ceiling(n / s) - 1) * s + span - n, 0) / 2)
            out.append((r + (span - 1) * j, j * s, start + (sympy.Rational(1, 2) * (span - 1) - p) * j))
        return tuple(out)
    if layer.kind == "deconv":
        # an output position sees at most ceil(span / s) input positions
        out = []
        for (r, j, start), k, s, p, d in zip(field, layer.kernel, layer.stride, layer.pad, layer.dilation):
            span = d * (k - 1) + 1
            out.append((r + (sympy.ceiling(span / s) - 1) * j, j / s, start - p * j / s))
        return tuple(out)
    if layer.kind in ("globalpool", "flatten"):
        spatial = layer.in_shape.spatial or ()
        if len(spatial) != len(field) or any(n is None for n in spatial):
            return None
        return tuple((r + (n - 1) * j, j, start) for (r, j, start), n in zip(field, spatial))
    return field


def _widest_field(fields: list) -> tuple | None:
    """Through branches, the largest receptive field (per axis)."""
    known = [f for f in fields if f is not None]
    if not known or len(known) != len(fields) or len({len(f) for f in known}) != 1:
        return None
    out = []
    for axis in zip(*known):
        best = max(axis, key=lambda rjs: _rank(rjs[0]))
        out.append(best)
    return tuple(out)


def _rank(size) -> float:
    try:
        return float(size)
    except TypeError:
        return float("inf")


def _repeat_field(before: tuple, after: tuple, count) -> tuple:
    """A block repeated `count` times grows the field by `count` times its own growth (same jump)."""
    out = []
    for (r0, j0, s0), (r1, j1, s1) in zip(before, after):
        out.append((r0 + count * (r1 - r0), j1, s0 + count * (s1 - s0)))
    return tuple(out)


def build_layers(program: Program) -> tuple[list[Layer], Shape, Shape, Node]:
    """Resolve every layer of a program; returns the layers, the input and the output shape,
    and the structure that connects the layers."""
    builder = LayerBuilder(program)
    layers = builder.build()
    if builder.extra_constraints and layers:
        layers[-1].constraints = layers[-1].constraints + tuple(builder.extra_constraints)
    return layers, builder.input_shape, builder.output_shape, builder.root
