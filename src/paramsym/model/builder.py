"""Composition: a program's network walked stage by stage into layer records.

`def` blocks are expanded where they are called, with their parameters bound to
the call's values; composites (`res`, `add`, `concat`, ...) and `(SEQ) * N` are
built by their combinators (paramsym.kinds.combinators), and every layer is
resolved by its kind (paramsym.kinds): this module knows no particular kind
or combinator.
"""

from __future__ import annotations

from contextlib import contextmanager

import sympy

from .. import expansion, kinds
from ..core.formatting import human
from ..core.records import ONE, UNKNOWN, Constraint, Flow, Layer, Node, Shape
from ..errors import ParamsymArgumentError, ParamsymLimitError, ParamsymNameError, Position
from ..kinds import combinators
from ..kinds.base import refused_reference, require_number_like, whole_number
from ..kinds.combinators import LAYER, MAX_LAYERS, REPEAT, SEQ
from ..kinds.combinators import named as named_values
from ..language.syntax import (
    Call,
    Channels,
    Define,
    Fetch,
    Kept,
    Keyword,
    Named,
    Positional,
    Program,
    Repeat,
    Sequence,
    _check_size,
    reference,
    symbol,
)

Expr = sympy.Expr

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
        self.inputs: list[Shape] = []  # every input(...) of the network: the first, then an encoder-decoder's others
        self.output_shape: Shape = UNKNOWN
        self.defs: dict[str, Define] = {}
        self.env: dict = {}  # block parameters bound to values
        self.path: list[str] = []  # where we are: block calls, branches, repeats
        self.multiplier: Expr = ONE  # product of the symbolic repeat counts around us
        self.experts: tuple | None = None  # inside moe: (experts stored, experts one position uses)
        self.named: dict[str, Layer] = {}  # `LAYER as NAME`, for the layers that tie to them
        self.values: dict[str, named_values.Value] = {}  # `STAGE as NAME`, for the stages that read it (`@NAME`)
        self.calling: list[str] = []  # blocks being expanded, to refuse recursion
        self.call_pos: list[Position] = []  # where each of them is called
        self.stage_index = 0
        self.extra_constraints: list[Constraint] = []
        self.input_constraints: list[Constraint] = []  # checked first, with the first layer's
        self.root = Node(SEQ)
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
            self.inputs.append(self.input_shape)
            field = tuple(_INPUT_FIELD_AXIS for _ in self.input_shape.spatial)
            flow = Flow(self.input_shape, ("input", first.pos), field, at_input=True)
            stages = stages[1:]
        for index, stage in enumerate(stages):
            self.stage_index = index
            if isinstance(stage, Call) and stage.name == "input" and stage.name not in self.defs:
                flow = self._second_input(stage)
                continue
            flow = self.stage(stage, flow)
            if self.layers and self.layers[-1].stage == index:
                self.layers[-1].stage_out_shape = flow.shape
        self.output_shape = flow.shape
        return self.layers

    # ---- stages
    def stage(self, stage, flow: Flow, suffix: str = "") -> Flow:
        if isinstance(stage, Call):
            if stage.name in self.defs:
                return self._block(stage, flow, suffix)
            return self.call(self._bound(stage), flow, suffix)
        if isinstance(stage, Sequence):
            if suffix:
                self.path.append("repeat" + suffix)
            for inner in stage.stages:
                flow = self.stage(inner, flow)
            if suffix:
                self.path.pop()
            return flow
        if isinstance(stage, Repeat):
            return REPEAT.build(self, stage, flow)
        if isinstance(stage, Named):
            return self._named(stage, flow, suffix)
        if isinstance(stage, Kept):
            return self._kept(stage.body, stage.name, stage.pos, flow)
        if isinstance(stage, Fetch):
            node, flow = named_values.fetch(self.values, stage.name, stage.pos)
            self.attach(node)
            return flow
        for arg in getattr(stage, "args", ()):
            if isinstance(arg, Keyword):
                refused_reference(arg, frozenset(), stage.kind)
        return combinators.lookup(stage.kind).build(self, stage, flow, suffix)

    # ---- what combinators build with (paramsym.kinds.combinators.base)
    def attach(self, node: Node) -> None:
        """Put `node` into the structure where the next layer goes."""
        self._open[-1].children.append(node)

    @contextmanager
    def at(self, label: str):
        """The layers built inside have `label` in their paths."""
        self.path.append(label)
        try:
            yield
        finally:
            self.path.pop()

    @contextmanager
    def branch(self, node: Node, label: str | None = None):
        """A new sequence, the next child of `node`, receives the layers built inside (under `label`)."""
        if label is not None:
            self.path.append(label)
        self._open.append(Node(SEQ))
        node.children.append(self._open[-1])
        try:
            yield
        finally:
            self._open.pop()
            if label is not None:
                self.path.pop()

    def _kept(self, stage, name: str, pos: Position, flow: Flow) -> Flow:
        """`(SEQ) as NAME`: the stage's layers go into a sequence of their own, whose value NAME names."""
        node = named_values.nested(self._open[-1])
        self._open.append(node)
        try:
            out = self.stage(stage, flow)
        finally:
            self._open.pop()
        named_values.name_value(self.values, name, pos, out, self._open[-1])
        return out

    def _named(self, named: Named, flow: Flow, suffix: str) -> Flow:
        """`LAYER as NAME`: the layer is built, then known by NAME to the layers that tie to it, and its value
        to the stages that read it (`@NAME`); a block's value is named `(BLOCK) as NAME`."""
        if named.call.name in self.defs:
            raise ParamsymArgumentError(
                f"'as {named.name}' names one layer, but {named.call.name} is a block",
                pos=named.pos,
                hint=f"write 'as NAME' after the layer inside the block; '({named.call.name}) as {named.name}' "
                f"names the block's value",
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
        out = self.call(self._bound(named.call), flow, suffix)
        self.named[named.name] = self.layers[-1]
        named_values.name_value(self.values, named.name, named.pos, out, self._open[-1])
        return out

    def _bound(self, call: Call) -> Call:
        """The call with block parameters replaced by their values."""
        if not self.env:
            return call
        sub = self.substitute
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

    def substitute(self, value, pos: Position):
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
            flow = self.stage(define.body, flow)
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
            if any(reference(v) is not None for v in arg.value):
                raise ParamsymArgumentError(
                    f"{name}=@...: a block's parameter is an expression, not a named value",
                    pos=arg.pos,
                    hint="read the named value inside the block, in the layer that takes it (source=@NAME)",
                )
            if len(arg.value) != 1:
                raise ParamsymArgumentError(f"the value of '{name}' must be one expression", pos=arg.pos)
            result[name] = self.substitute(arg.value[0], arg.pos)
        return result

    def defer_equal(self, a: Shape, b: Shape, channels: bool, pos: Position) -> None:
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

    def _second_input(self, call: Call) -> Flow:
        """`input(T)` after the first stage, at the top of the network: a new value starts there, the input of
        an encoder-decoder's decoder (docs/language.md, "Two inputs"); what flowed before is read again only by
        name (`@memory`, `source=@memory`). The exports take one input: they refuse the node it leaves."""
        if not self.inputs:
            raise ParamsymArgumentError(
                "a second input(...) starts a decoder beside the network's first input: the network must start "
                "with input(...) too",
                pos=call.pos,
                hint="write input(S) > ... as memory > input(T) > ...",
            )
        shape = self._input(call)
        self.inputs.append(shape)
        self.attach(Node(named_values.START, name="input", shape=shape))
        field = tuple(_INPUT_FIELD_AXIS for _ in shape.spatial or ())
        return Flow(shape, ("input", call.pos), field, at_input=True)

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

    def call(self, call: Call, flow: Flow, suffix: str = "") -> Flow:
        if call.name == "input":
            raise ParamsymArgumentError(
                "input(...) is the first stage of the network, or a stage of the network itself that starts a "
                "second input (an encoder-decoder's decoder); not inside a block, a branch or a repeat",
                pos=call.pos,
            )
        found = kinds.lookup(call.name)
        if found is None:
            raise _unknown_layer(call, self.defs)
        kind, match = found
        args = kind.read(call)
        args.named = self.named
        args.values = self.values
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
        self._open[-1].children.append(Node(LAYER, layer=layer.index))
        # the layer that set the channels, for "the 64 channels come from ..." notes
        sets_channels = layer.cout is not None and (layer.cout != layer.cin or flow.source is None)
        source = (call.name, call.pos) if sets_channels else flow.source
        return Flow(layer.out_shape, source, layer.field)


def build_layers(program: Program) -> tuple[list[Layer], Shape, Shape, Node]:
    """Resolve every layer of a program; returns the layers, the input and the output shape,
    and the structure that connects the layers."""
    return build_all(program)[:4]


def build_all(program: Program) -> tuple[list[Layer], Shape, Shape, Node, list[Shape]]:
    """`build_layers`, and every input's shape (an encoder-decoder has two)."""
    builder = LayerBuilder(program)
    layers = builder.build()
    if builder.extra_constraints and layers:
        layers[-1].constraints = layers[-1].constraints + tuple(builder.extra_constraints)
    if builder.input_constraints and layers:
        layers[0].constraints = tuple(builder.input_constraints) + layers[0].constraints
    return layers, builder.input_shape, builder.output_shape, builder.root, builder.inputs
