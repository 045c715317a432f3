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

from .errors import (ParamsymArgumentError, ParamsymError, ParamsymNameError, ParamsymShapeError, Position)
from .syntax import Call, Channels, Composite, Define, Keyword, Let, Positional, Program, Repeat, Sequence

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


def _require_number_like(value: Expr, pos: Position, what: str) -> None:
    if value.is_number and not (value.is_integer and value >= 0):
        raise ParamsymArgumentError(f"{what} must be a whole number, not {value}", pos=pos)


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
class _Flow:
    """What flows from one layer to the next."""

    shape: Shape
    source: tuple | None  # (name, position) of the layer that set the channels


class LayerBuilder:
    """Walks a program's network and resolves every layer."""

    def __init__(self, program: Program):
        self.program = program
        self.layers: list[Layer] = []
        self.input_shape: Shape = UNKNOWN
        for statement in program.statements:
            if isinstance(statement, Define):
                raise ParamsymError(
                    "'def' blocks belong to composition (LANGUAGE.md section 4), which this version does not "
                    "support yet", pos=statement.pos)

    def build(self) -> list[Layer]:
        flow = _Flow(UNKNOWN, None)
        stages = self.program.network.stages
        first = stages[0]
        if isinstance(first, Call) and first.name == "input":
            self.input_shape = self._input(first)
            flow = _Flow(self.input_shape, ("input", first.pos))
            stages = stages[1:]
        for stage in stages:
            flow = self._stage(stage, flow)
        return self.layers

    def _stage(self, stage, flow: _Flow) -> _Flow:
        if isinstance(stage, Call):
            return self._call(stage, flow)
        if isinstance(stage, Sequence):
            for inner in stage.stages:
                flow = self._stage(inner, flow)
            return flow
        what = "(...) * N" if isinstance(stage, Repeat) else f"{stage.kind}(...)"
        raise ParamsymError(
            f"{what} belongs to composition (LANGUAGE.md section 4), which this version does not support yet",
            pos=stage.pos)

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

    def _call(self, call: Call, flow: _Flow) -> _Flow:
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
        self.layers.append(layer)
        source = (call.name, call.pos) if layer.cout is not None and layer.cout != layer.cin else flow.source
        return _Flow(layer.out_shape, source)

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
    def _conv(self, call, flow, family, kind="conv") -> Layer:
        args = _Args(call, "conv" if kind == "conv" else kind)
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
        stride = args.sizes("stride", rank, (ONE,) * rank)
        dilation = args.sizes("dilation", rank, (ONE,) * rank)
        padding = self._padding(args, rank)
        constraints = []
        group_pos = args.keywords["groups"].pos if "groups" in args.keywords else call.pos
        if groups != ONE:
            constraints += self._check_divides(call, groups, cin, "input", group_pos)
            constraints += self._check_divides(call, groups, cout, "output", group_pos)
        if padding == "same":
            pad = None
            spatial_out = tuple(None if n is None else sympy.ceiling(n / s) for n, s in zip(spatial_in, stride))
        else:
            pad = padding
            spatial_out = tuple(None if n is None else conv_output_size(n, k, s, p, d)
                                for n, k, s, p, d in zip(spatial_in, kernel, stride, pad, dilation))
        constraints += self._sizes_positive(call, spatial_out)
        return self._layer(call, kind, flow, Shape(spatial_out, cout), cin, cout, kernel=kernel, stride=stride,
                           pad=pad if pad is not None else ("same",) * rank, dilation=dilation, groups=groups,
                           bias=args.bias, constraints=tuple(constraints))

    def _dwconv(self, call, flow, family) -> Layer:
        return self._conv(call, flow, family, kind="dwconv")

    def _sepconv(self, call, flow, family) -> Layer:
        return self._conv(call, flow, family, kind="sepconv")

    def _deconv(self, call, flow, family) -> Layer:
        args = _Args(call, "deconv")
        kernel = self._kernel(call, args, family)
        rank = len(kernel)
        spatial_in = self._spatial(call, flow, rank)
        cin = self._input_channels(call, flow, args)
        if args.channels is None:
            raise ParamsymArgumentError(f"{call.name} needs its output channels: write {call.name}(->64, ...)",
                                        pos=call.pos)
        cout = args.channels.cout
        groups = args.scalar("groups", ONE)
        stride = args.sizes("stride", rank, (ONE,) * rank)
        dilation = args.sizes("dilation", rank, (ONE,) * rank)
        outpad = args.sizes("outpad", rank, (ZERO,) * rank)
        if "pad" in args.keywords and self._padding(args, rank) == "same":
            raise ParamsymArgumentError("pad=same is not defined for a transposed convolution; give pad=P",
                                        pos=args.keywords["pad"].pos)
        pad = self._padding(args, rank)
        constraints = []
        if groups != ONE:
            group_pos = args.keywords["groups"].pos
            constraints += self._check_divides(call, groups, cin, "input", group_pos)
            constraints += self._check_divides(call, groups, cout, "output", group_pos)
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
        padding = self._padding(args, rank)
        ceil_mode = "ceil" in args.flags
        if padding == "same":
            spatial_out = tuple(None if n is None else sympy.ceiling(n / s) for n, s in zip(spatial_in, stride))
            pad = ("same",) * rank
        else:
            pad = padding
            size = pool_output_size_ceil if ceil_mode else conv_output_size
            spatial_out = tuple(None if n is None else size(n, k, s, p, d)
                                for n, k, s, p, d in zip(spatial_in, kernel, stride, pad, dilation))
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


def build_layers(program: Program) -> tuple[list[Layer], Shape]:
    """Resolve every layer of a program; returns the layers and the input shape."""
    builder = LayerBuilder(program)
    layers = builder.build()
    return layers, builder.input_shape
