"""Composition: a program's network walked stage by stage into layer records.

`def` blocks are expanded where they are called, with their parameters bound to
the call's values; composites (`res`, `add`, `concat`) build each branch from
the same input; `(SEQ) * N` is unrolled, or built once and counted N times when
N is a symbol. Every layer itself is resolved by its kind (paramsym.kinds):
this module knows no particular kind.
"""

from __future__ import annotations

import sympy

from .. import expansion, kinds
from ..core.formatting import human
from ..core.records import ONE, UNKNOWN, Constraint, Flow, Layer, Node, Shape
from ..errors import ParamsymArgumentError, ParamsymLimitError, ParamsymNameError, ParamsymShapeError, Position
from ..kinds.base import check_or_defer, require_number_like, whole_number
from ..kinds.dense import router_call
from ..language.syntax import (
    Call,
    Channels,
    Composite,
    Define,
    Keyword,
    Named,
    Positional,
    Program,
    Repeat,
    Sequence,
    _check_size,
    symbol,
)

Expr = sympy.Expr

MAX_LAYERS = 200_000
_MOE_EXAMPLE = "e.g. moe(dense(->4d) > gelu > dense(->d), experts=8, top=2)"
_MOE_SHAPE_HINT = "end the expert with a layer back to the input width, e.g. dense(->d)"
_INPUT_FIELD_AXIS = (ONE, ONE, sympy.Rational(1, 2))  # one pixel, step 1, centred on the first pixel


def shadowing(program: Program) -> list[Define]:
    """The program's blocks whose names are also layer names: in the program, the name means the block."""
    return [s for s in program.statements if isinstance(s, Define) and kinds.is_layer_name(s.name)]


def _unknown_layer(call: Call, blocks) -> ParamsymNameError:
    close = kinds.suggest(call.name, blocks)
    return ParamsymNameError(
        f"unknown layer '{call.name}'",
        pos=call.pos,
        hint=f"did you mean '{close}'?" if close else "see docs/language.md for the layers",
    )


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
        self.env: dict = {}  # block parameters bound to values
        self.path: list[str] = []  # where we are: block calls, branches, repeats
        self.multiplier: Expr = ONE  # product of the symbolic repeat counts around us
        self.experts: tuple | None = None  # inside moe: (experts stored, experts one position uses)
        self.named: dict[str, Layer] = {}  # `LAYER as NAME`, for the layers that tie to them
        self.calling: list[str] = []  # blocks being expanded, to refuse recursion
        self.call_pos: list[Position] = []  # where each of them is called
        self.stage_index = 0
        self.extra_constraints: list[Constraint] = []
        self.input_constraints: list[Constraint] = []  # checked first, with the first layer's
        self.root = Node("seq")
        self._open: list[Node] = [self.root]  # the node that receives the next layer
        for statement in program.statements:
            if isinstance(statement, Define):
                self._define(statement)

    def _define(self, define: Define) -> None:
        # a block may shadow a layer (docs/language.md, Composition): a new kind never breaks a program
        # that already used its name; input(...) is the network's first stage, not a layer
        if define.name in kinds.RESERVED:
            raise ParamsymNameError(
                f"block '{define.name}' would shadow the layer of that name",
                pos=define.pos,
                hint="give the block another name",
            )
        if define.name in self.defs:
            raise ParamsymNameError(
                f"block '{define.name}' is defined twice",
                pos=define.pos,
                notes=(("the first definition", self.defs[define.name].pos),),
            )
        if len(set(define.params)) != len(define.params):
            raise ParamsymArgumentError(f"block '{define.name}' names a parameter twice", pos=define.pos)
        self.defs[define.name] = define

    def build(self) -> list[Layer]:
        flow = Flow(UNKNOWN, None)
        stages = self.program.network.stages
        first = stages[0]
        if isinstance(first, Call) and first.name == "input":
            self.input_shape = self._input(first)
            field = tuple(_INPUT_FIELD_AXIS for _ in self.input_shape.spatial)
            flow = Flow(self.input_shape, ("input", first.pos), field, at_input=True)
            stages = stages[1:]
        for index, stage in enumerate(stages):
            self.stage_index = index
            flow = self._stage(stage, flow)
        self.output_shape = flow.shape
        return self.layers

    # ---- stages
    def _stage(self, stage, flow: Flow, suffix: str = "") -> Flow:
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
        if isinstance(stage, Named):
            return self._named(stage, flow, suffix)
        if stage.kind == "moe":
            return self._experts(stage, flow, suffix)
        if stage.kind == "aux":
            return self._aux(stage, flow, suffix)
        return self._composite(stage, flow, suffix)

    def _named(self, named: Named, flow: Flow, suffix: str) -> Flow:
        """`LAYER as NAME`: the layer is built, then known by NAME to the layers that tie to it."""
        if named.call.name in self.defs:
            raise ParamsymArgumentError(
                f"'as {named.name}' names one layer, but {named.call.name} is a block",
                pos=named.pos,
                hint="write 'as NAME' after the layer inside the block",
            )
        if named.name in self.named:
            first = self.named[named.name]
            raise ParamsymNameError(
                f"'{named.name}' names two layers",
                pos=named.pos,
                notes=((f"it names {first.name} here", first.pos),),
                hint="a name given inside a repeat names every copy: give the layer a name outside the repeat",
            )
        if kinds.is_layer_name(named.name) or named.name in self.defs:
            raise ParamsymNameError(
                f"'{named.name}' is the name of a layer or block; choose another name", pos=named.pos
            )
        out = self._call(self._bound(named.call), flow, suffix)
        self.named[named.name] = self.layers[-1]
        return out

    def _aux(self, composite: Composite, flow: Flow, suffix: str) -> Flow:
        """`aux(SEQ)`: a side head, counted; what flows on is its input."""
        node = Node("aux")
        self._open[-1].children.append(node)
        self.path.append("aux" + suffix)
        self._open.append(Node("seq"))
        node.children.append(self._open[-1])
        try:
            self._stage(composite.branches[0], flow)
        finally:
            self.path.pop()
            self._open.pop()
        return flow

    def _experts(self, composite: Composite, flow: Flow, suffix: str) -> Flow:
        """`moe(SEQ, experts=E, top=k)`: a router dense(d->E) without bias, then E copies of SEQ of which
        each position goes through k: SEQ is built once, its layers counted E times (params, state) or
        k times (active params, MACs)."""
        experts, top = self._moe_arguments(composite)
        node = Node("moe", count=experts, options={"top": top})
        self._open[-1].children.append(node)
        self.path.append("moe" + suffix)
        try:
            self._open.append(Node("seq"))
            node.children.append(self._open[-1])
            try:
                self._call(router_call(experts, composite.pos), flow)
            finally:
                self._open.pop()
            saved = self.experts
            self.experts = (experts, top) if saved is None else (saved[0] * experts, saved[1] * top)
            self._open.append(Node("seq"))
            node.children.append(self._open[-1])
            self.path.append("expert")
            try:
                out = self._stage(composite.branches[0], flow)
            finally:
                self.experts = saved
                self._open.pop()
                self.path.pop()
        finally:
            self.path.pop()
        if _shape_difference(flow.shape, out.shape) is not None:
            raise ParamsymShapeError(
                f"moe(...): each expert must keep the shape of its input, but this one turns "
                f"{flow.shape.describe()} into {out.shape.describe()}",
                pos=composite.branches[0].pos,
                hint=_MOE_SHAPE_HINT,
            )
        self._defer_equal(flow.shape, out.shape, True, composite.pos)
        return Flow(flow.shape, flow.source, _widest_field([flow.field, out.field]))

    def _moe_arguments(self, composite: Composite) -> tuple:
        values = {}
        for arg in composite.args:
            if not isinstance(arg, Keyword) or arg.name not in ("experts", "top"):
                raise ParamsymArgumentError(
                    "moe takes the expert's layers, then experts=E and top=k", pos=arg.pos, hint=_MOE_EXAMPLE
                )
            if arg.name in values:
                raise ParamsymArgumentError(f"{arg.name}= is given twice", pos=arg.pos)
            if len(arg.value) != 1:
                raise ParamsymArgumentError(f"{arg.name}= takes one value", pos=arg.pos)
            value = self._substitute(arg.value[0], arg.pos)
            require_number_like(value, arg.pos, arg.name)
            self.extra_constraints.extend(whole_number(value, f"{arg.name}=", arg.pos))
            values[arg.name] = (value, arg.pos)
        for name in ("experts", "top"):
            if name not in values:
                raise ParamsymArgumentError(f"moe needs {name}=", pos=composite.pos, hint=_MOE_EXAMPLE)
        (experts, _), (top, top_pos) = values["experts"], values["top"]
        self.extra_constraints.extend(
            check_or_defer(
                experts - top, "nonnegative", f"top={top} must be at most the number of experts ({experts})", top_pos
            )
        )
        return experts, top

    def _bound(self, call: Call) -> Call:
        """The call with block parameters replaced by their values."""
        if not self.env:
            return call
        sub = self._substitute
        args = []
        for arg in call.args:
            if isinstance(arg, Channels):
                args.append(
                    Channels(
                        sub(arg.cin, arg.cin_pos or arg.pos),
                        sub(arg.cout, arg.cout_pos or arg.pos),
                        arg.pos,
                        arg.cin_pos,
                        arg.cout_pos,
                    )
                )
            elif isinstance(arg, Keyword):
                args.append(Keyword(arg.name, tuple(sub(v, arg.pos) for v in arg.value), arg.pos))
            else:
                args.append(Positional(tuple(sub(v, arg.pos) for v in arg.value), arg.pos))
        return Call(call.name, tuple(args), call.pos)

    def _substitute(self, value, pos: Position):
        """`value` with the block parameters replaced by their values: 1/i with i = 0 is SymPy's zoo (and
        0/0 nan), which is no number: a located error here, not a TypeError when it is compared later."""
        if value is None or not self.env:
            return value
        bound = value.xreplace(self.env)
        if bound is not value and bound.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            shown = ", ".join(f"{s.name} = {human(v)}" for s, v in self.env.items() if s in value.free_symbols)
            raise ParamsymArgumentError(
                f"division by zero: with {shown}, {human(value)} has no value",
                pos=pos,
                notes=((f"'{self.calling[-1]}' is called here", self.call_pos[-1]),),
                hint="a block's parameter is divided by: give it a value that is not 0",
            )
        if bound is value:
            return bound
        # a block's x^64 called with x = A+B+C+D grows here: refused where it is written
        expansion.check(bound, "this value (with the block's arguments put in)", pos)
        return _check_size(bound, pos)

    def _block(self, call: Call, flow: Flow, suffix: str) -> Flow:
        define = self.defs[call.name]
        if call.name in self.calling:
            raise ParamsymArgumentError(
                f"block '{call.name}' calls itself",
                pos=call.pos,
                notes=((f"'{call.name}' is defined here", define.pos),),
                hint=(
                    f"the block shadows the layer '{call.name}': give the block another name to use the layer in it"
                    if kinds.is_layer_name(call.name)
                    else None
                ),
            )
        values = self._block_arguments(call, define)
        label = call.name + (f"({', '.join(str(v) for v in values.values())})" if define.params else "")
        saved_env, self.env = self.env, {symbol(name): value for name, value in values.items()}
        self.calling.append(call.name)
        self.call_pos.append(call.pos)
        self.path.append(label + suffix)
        try:
            flow = self._stage(define.body, flow)
        finally:
            self.path.pop()
            self.calling.pop()
            self.call_pos.pop()
            self.env = saved_env
        return flow

    def _block_arguments(self, call: Call, define: Define) -> dict:
        values: dict = {}
        positional = [a for a in call.args if isinstance(a, Positional)]
        if len(positional) > len(define.params):
            raise ParamsymArgumentError(
                f"block '{define.name}' takes {len(define.params)} value(s), but {len(positional)} are given",
                pos=positional[len(define.params)].pos,
                notes=((f"'{define.name}({', '.join(define.params)})' is defined here", define.pos),),
            )
        for name, arg in zip(define.params, positional):
            values[name] = arg
        for arg in call.args:
            if isinstance(arg, Channels):
                raise ParamsymArgumentError(
                    f"block '{define.name}' takes values, not channels: pass the width as a parameter",
                    pos=arg.pos,
                    hint=f"def {define.name}(c) = conv3x3(->c) ... and call {define.name}(64)",
                )
            if isinstance(arg, Keyword):
                if arg.name not in define.params:
                    import difflib  # only for the hint

                    close = difflib.get_close_matches(arg.name, define.params, n=1)
                    raise ParamsymArgumentError(
                        f"block '{define.name}' has no parameter '{arg.name}'",
                        pos=arg.pos,
                        hint=f"did you mean '{close[0]}'?"
                        if close
                        else f"its parameters: {', '.join(define.params) or 'none'}",
                    )
                if arg.name in values:
                    raise ParamsymArgumentError(f"'{arg.name}' is given twice", pos=arg.pos)
                values[arg.name] = arg
        missing = [p for p in define.params if p not in values]
        if missing:
            raise ParamsymArgumentError(
                f"block '{define.name}' needs a value for {', '.join(missing)}",
                pos=call.pos,
                notes=((f"'{define.name}({', '.join(define.params)})' is defined here", define.pos),),
            )
        result = {}
        for name in define.params:
            arg = values[name]
            if len(arg.value) != 1:
                raise ParamsymArgumentError(f"the value of '{name}' must be one expression", pos=arg.pos)
            result[name] = self._substitute(arg.value[0], arg.pos)
        return result

    def _repeat(self, repeat: Repeat, flow: Flow) -> Flow:
        count = self._substitute(repeat.count, repeat.pos)
        single = repeat.body.stages[0] if len(repeat.body.stages) == 1 else None
        if count.is_number:
            if not (count.is_integer and count >= 1):
                raise ParamsymArgumentError(
                    f"a repeat count must be a positive whole number, not {count}", pos=repeat.pos
                )
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
                f"{flow.shape.describe()} into {out.shape.describe()}",
                pos=repeat.pos,
                hint="use a number of repeats, or make the block keep its channels and size",
            )
        whole = tuple(c for c in whole_number(count, "the repeat count", repeat.pos) if c.requirement == "integer")
        for layer in self.layers[start:]:
            layer.constraints = (
                layer.constraints
                + (Constraint(count, "positive", f"the repeat count {count} must be at least 1", repeat.pos),)
                + whole
            )
        if flow.field is not None and out.field is not None:
            out = Flow(out.shape, out.source, _repeat_field(flow.field, out.field, count))
        return out

    def _composite(self, composite: Composite, flow: Flow, suffix: str) -> Flow:
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
        if kind == "mul":
            # a branch that gives the vector of the channels (a gate) is broadcast over every position
            full = [o for o in outputs if o[1].shape.spatial != ()]
            if full and len(full) < len(outputs):
                outputs = full + [o for o in outputs if o[1].shape.spatial == ()]
        reference_branch, reference = outputs[0]
        for branch, out in outputs[1:]:
            if kind == "mul" and out.shape.spatial == () and reference.shape.spatial != ():
                out = Flow(Shape(reference.shape.spatial, out.shape.channels), out.source, out.field)
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
                    f"into {out.shape.describe()}",
                    pos=branch.pos,
                    hint="add a shortcut that matches: res(... | conv1x1(->C, stride=S))",
                )
            raise ParamsymShapeError(
                f"{kind}(...): the {what} of its branches differ: this branch gives {out.shape.describe()}, "
                f"the first gives {reference.shape.describe()}",
                pos=branch.pos,
                notes=(("the first branch", reference_branch.pos),),
            )
        for branch, out in outputs[1:]:
            self._defer_equal(reference.shape, out.shape, kind != "concat", branch.pos if branch else composite.pos)
        if kind == "concat":
            channels = (
                None
                if any(o.shape.channels is None for _, o in outputs)
                else sympy.Add(*[o.shape.channels for _, o in outputs])
            )
            shape = Shape(reference.shape.spatial, channels)
        else:
            shape = reference.shape
        field = _widest_field([out.field for _, out in outputs])
        return Flow(shape, (kind, composite.pos), field)

    def _defer_equal(self, a: Shape, b: Shape, channels: bool, pos: Position) -> None:
        """Sizes that are equal only for some values are checked once the values are known."""
        pairs = list(zip(a.spatial or (), b.spatial or ()))
        if channels:
            pairs.append((a.channels, b.channels))
        for x, y in pairs:
            if x is None or y is None:
                continue
            difference = expansion.expand(x - y)
            if difference != 0 and not difference.is_number:
                self.extra_constraints.append(Constraint(difference, "zero", "the branches' sizes must be equal", pos))

    def _input(self, call: Call) -> Shape:
        sizes: list = []
        for arg in call.args:
            if not isinstance(arg, Positional):
                raise ParamsymArgumentError(
                    "input takes a shape, such as input(224x224x3) or input(224, 224, 3)", pos=arg.pos
                )
            for value in arg.value:
                require_number_like(value, arg.pos, "a size")
                if value.is_number and value == 0:
                    raise ParamsymArgumentError("a size must be positive", pos=arg.pos)
                # input(H-2 x W x 3): checked once H has a value
                self.input_constraints += whole_number(value, "the input size", arg.pos)
            sizes.extend(arg.value)
        if not sizes:
            raise ParamsymArgumentError("input needs a shape, such as input(224x224x3)", pos=call.pos)
        if len(sizes) > 4:
            raise ParamsymArgumentError(
                f"input has {len(sizes)} sizes; at most 4 (D x H x W x C, channels last) are supported", pos=call.pos
            )
        return Shape(tuple(sizes[:-1]), sizes[-1])

    def _call(self, call: Call, flow: Flow, suffix: str = "") -> Flow:
        if call.name == "input":
            raise ParamsymArgumentError("input(...) can only be the first stage of the network", pos=call.pos)
        found = kinds.lookup(call.name)
        if found is None:
            raise _unknown_layer(call, self.defs)
        kind, match = found
        args = kind.read(call)
        args.named = self.named
        layer = kind.build(call, flow, args, match)
        if args.constraints:  # symbolic channels and sizes that must come out whole and positive: checked
            layer.constraints = tuple(args.constraints) + layer.constraints  # before what follows from them
        layer.index = len(self.layers)
        layer.path = ".".join([*self.path, call.name + suffix])
        layer.multiplier = self.multiplier
        layer.experts = self.experts
        layer.stage = self.stage_index
        layer.field = kind.field(layer, flow.field)
        if len(self.layers) >= MAX_LAYERS:
            raise ParamsymLimitError(f"the network has more than {MAX_LAYERS:,} layers", pos=call.pos)
        self.layers.append(layer)
        self._open[-1].children.append(Node("layer", layer=layer.index))
        # the layer that set the channels, for "the 64 channels come from ..." notes
        sets_channels = layer.cout is not None and (layer.cout != layer.cin or flow.source is None)
        source = (call.name, call.pos) if sets_channels else flow.source
        return Flow(layer.out_shape, source, layer.field)


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
    difference = expansion.expand(x - y)
    if difference.is_number:
        return difference != 0
    # C vs 2C are different for every positive C; H vs floor((H-1)/2)+1 are equal for H=1 only
    return difference.is_zero is False and not difference.has(
        sympy.floor, sympy.ceiling, sympy.Min, sympy.Max, sympy.Piecewise
    )


# ---- receptive field through composition ------------------------------------------------


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
    for (r0, _j0, s0), (r1, j1, s1) in zip(before, after):
        out.append((r0 + count * (r1 - r0), j1, s0 + count * (s1 - s0)))
    return tuple(out)


def build_layers(program: Program) -> tuple[list[Layer], Shape, Shape, Node]:
    """Resolve every layer of a program; returns the layers, the input and the output shape,
    and the structure that connects the layers."""
    builder = LayerBuilder(program)
    layers = builder.build()
    if builder.extra_constraints and layers:
        layers[-1].constraints = layers[-1].constraints + tuple(builder.extra_constraints)
    if builder.input_constraints and layers:
        layers[0].constraints = tuple(builder.input_constraints) + layers[0].constraints
    return layers, builder.input_shape, builder.output_shape, builder.root
