"""What every layer kind is made of: the `Kind` base class, the reader of a
call's arguments, and the checks that many kinds share.

A kind declares its names, arguments and flags as class attributes and
implements `build` (the shape rule and its checks); the other methods have
defaults that fit a layer with no parameters acting on each value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import Any, Literal, NoReturn, Protocol, TypeAlias, overload

import sympy

from .. import expansion
from ..core.quantities import (
    Counts,
    Template,
    times,  # the product of factors that may be unknown, as counting needs it
)
from ..core.records import ONE, ZERO, Constraint, Flow, KerasSpec, Layer, Shape, TorchSpec
from ..core.saved import Saved
from ..core.serving import CausalAttention
from ..core.setup import Setup
from ..errors import (
    ImportRefused,
    ParamsymArgumentError,
    ParamsymError,
    ParamsymShapeError,
    ParamsymUsageError,
    Position,
)
from ..language.syntax import Call, Channels, Keyword, Positional, reference

# SymPy has no type information: to mypy an expression is any value, so the names below say what is meant
Expr: TypeAlias = sympy.Expr
# how a call's name matched its kind: a family's pattern (conv3x3: kernel 3x3), or True for a plain name
NameMatch: TypeAlias = "re.Match[str] | Literal[True]"
# the number a formula has with the network's values (None when a symbol has none)
Value: TypeAlias = Callable[[Any], "int | None"]
# the receptive field per spatial axis: (size, jump, start) each
Field: TypeAlias = tuple[tuple[Expr, Expr, Expr], ...]


class Numbers(Protocol):
    """What turns formulas into the numbers an export writes (`frameworks.export.Numbers`), or refuses."""

    def __call__(self, expr: Expr, /) -> int: ...

    def each(self, values: Iterable[Expr], /) -> tuple[int, ...]: ...


class Words(Protocol):
    """What turns formulas into `explain`'s words (`render.explain`)."""

    def __call__(self, expr: Expr, /) -> str: ...

    def product(self, *factors: Expr) -> str: ...

    def formula(self, expr: Expr, /) -> str: ...

    def shape(self, shape: Shape, /) -> str: ...


class ImportContext(Protocol):
    """What an import reads besides the module (`frameworks.importer.ImportContext`): shapes in PyTorch's
    layout, batch first."""

    @property
    def node_name(self) -> str: ...

    @property
    def in_shape(self) -> tuple[int, ...]: ...

    @property
    def out_shape(self) -> tuple[int, ...]: ...

    @property
    def extra_pad(self) -> tuple[tuple[int, int], ...] | None: ...

    @property
    def node(self) -> Any: ...  # the torch.fx node

    @property
    def arg_shapes(self) -> tuple[tuple[int, ...], ...]: ...

    @property
    def rank(self) -> int: ...


class Kind:
    """One kind of layer: how it is written, shaped, counted, explained, exported and imported."""

    # set on the class, or on the instance by kinds of one class with many instances (activations)
    key: str = ""  # a short name for the kind, in messages and docs
    names: tuple[str, ...] = ()  # the layer names it answers to, aliases included
    pattern: re.Pattern[str] | None = None  # or names of a family: conv3x3, conv1x7, conv2d
    suggestions: tuple[str, ...] = ()  # more names offered in "did you mean" hints
    keywords: frozenset[str] = frozenset()  # keyword arguments (stride=2)
    references: frozenset[str] = frozenset()  # the keywords that may name a value instead (source=@memory)
    flags: frozenset[str] = frozenset()  # bare flags (bias, ceil)
    positional: int = 0  # bare values it takes: bn(64), dropout(0.5)
    takes_channels: bool = False  # A->B
    identity: bool = False  # the layer that passes its input on (the empty branch)
    by_convention: bool = False  # counts(layer, convention): counts differ between torch and keras
    # every MAC is a product of a weight and the layer's input: with an input that needs no gradient, the backward
    # computes the weight gradients alone, as many MACs as the forward (core/compute.py)
    weights_times_input: bool = False
    reads_token_ids: bool = False  # its input is token ids: a sequence of as many positions as the input has values
    # PyTorch modules (class names) and functions (torch.nn.functional / torch names) it imports from
    torch_modules: tuple[str, ...] = ()
    torch_functions: tuple[str, ...] = ()
    takes_pad: bool = False  # its import takes an F.pad before it as its padding (ctx.extra_pad)
    # serving (core/serving.py): each position computed from its own input alone, so that a decode step runs the
    # layer on the new position only; `lookup`: the output read from a table by the row (a row per position)
    per_position: bool = False
    lookup: bool = False

    # ---- language (the registry, paramsym.kinds, finds a name's kind by `names` and `pattern`)
    def positional_count(self, name: str) -> int:
        return self.positional

    def read(self, call: Call) -> Args:
        return Args(call, self)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        """The layer with its output shape, after every check of its arguments and input."""
        raise NotImplementedError

    # ---- quantities (see paramsym.quantities); the ones left out take the quantity's default
    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        """{quantity: formula} (paramsym.quantities); a kind with `by_convention` takes
        `counts(layer, convention)`, convention "torch" or "keras"."""
        return {}

    def saved(self, layer: Layer, setup: Setup) -> Saved | None:
        """What the layer's forward keeps for PyTorch's backward pass (core/saved.py: its input, its output,
        tensors of its own), with `setup`'s activation format; None when the kind does not declare it (the
        network's saved_activation_bytes is then unknown, naming the kind)."""
        return None

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        """The parameter formula in textbook symbols (`t`: paramsym.quantities.Template)."""
        return ZERO

    def causal_attention(self, layer: Layer) -> CausalAttention | None:
        """What a decode step needs of the layer when it is causal self-attention over the sequence
        (core/serving.py); None for any other layer."""
        return None

    def channels_first_output(self, module: Any) -> bool:
        """Whether a PyTorch module this kind imports gives its output channels first (N, C, ...) whatever its
        input's layout (a module read whole that lays a channels-last input back out as a map); by default a
        module keeps its input's layout."""
        return False

    def tensor_parallel(self, layer: Layer, params: Expr, t: int, value: Value) -> Expr:
        """The parameters one of `t` tensor-parallel ranks holds (Megatron-LM's rules, core/training.py), of the
        layer's `params` (its repeats included); a kind with parameters and no rule refuses."""
        if params == 0:
            return params
        raise ParamsymUsageError(
            f"--tp {t}: {layer.name} has no tensor-parallel rule",
            pos=layer.pos,
            hint="tensor parallelism is counted for embed, dense (no bias), plain attn and the norms",
        )

    def weight(self, layer: Layer) -> tuple[Expr, Expr] | None:
        """The matrix another layer may share (`dense(..., tie=NAME)`), as (rows, columns) in PyTorch's
        layout; None when the kind has none to share."""
        return None

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        """The receptive field after the layer (size, jump, start per axis); unchanged by default."""
        return field

    # ---- explain: sentences for `paramsym explain`, with `words` turning formulas into text
    def header(self, layer: Layer, words: Words) -> str:
        """What follows the name in the layer's heading: `, 32 -> 64 channels, with bias`."""
        change = ""
        if self.takes_channels and layer.cin is not None:
            change = f", {words(layer.cin)} -> {words(layer.cout)} channels"
        return change + (", with bias" if layer.bias else "")

    def explain(self, layer: Layer, counts: Counts, words: Words) -> list[str]:
        return ["No parameters: it acts on each value separately."]

    # ---- frameworks
    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        """The PyTorch module (`num` turns a formula into an int, or refuses)."""
        raise ParamsymError(f"no PyTorch module for {layer.name}")

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        """The Keras layers, in order."""
        refuse_keras(layer, "no Keras layer")

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        """The text of a layer for a PyTorch module of `torch_modules` ("" to leave it out)."""
        raise NotImplementedError

    def from_torch_function(self, name: str, node: Any, ctx: ImportContext) -> str | None:
        """The text of a layer for a call of a function of `torch_functions` (None: not a layer, or to be
        read otherwise)."""
        raise NotImplementedError

    def from_torch_item(self, text: str, index: Any, ctx: ImportContext) -> str | None:
        """The text of the layer when the model takes `module_output[index]` of a module of this kind
        (written `text` so far): a recurrent layer's (output, state)[0], then output[:, -1]. None when the
        language cannot express it."""
        return None

    def __repr__(self) -> str:
        return f"<kind {self.key}>"


def tp_size(t: int, layer: Layer, size: Expr | None, what: str, value: Value) -> int:
    """A size that tensor parallelism splits, as a number (a size whose value is not known is refused: the
    split would not be checked)."""
    number = None if size is None else value(size)
    if number is None:
        raise ParamsymUsageError(
            f"--tp {t}: {what} of {layer.name} ({size}) must be a number to check that {t} divides it",
            pos=layer.pos,
            hint="give its symbols values (--set)",
        )
    return number


def split_over(t: int, layer: Layer, params: Expr, value: Value, *sizes: tuple[Expr | None, str]) -> Expr:
    """`params` split over t tensor-parallel ranks, after checking that each of `sizes` (size, what it is)
    is a multiple of t."""
    for size, what in sizes:
        number = tp_size(t, layer, size, what, value)
        if number % t:
            raise ParamsymUsageError(
                f"--tp {t}: {what} of {layer.name} ({number}) is not a multiple of {t}",
                pos=layer.pos,
                hint=f"Megatron-LM splits it {t} ways: give --tp a divisor of {number}",
            )
    return params / t


def refuse_bias_split(t: int, layer: Layer) -> None:
    """A bias is split with a column-parallel layer and replicated with a row-parallel one, which a program
    does not say."""
    raise ParamsymUsageError(
        f"--tp {t}: {layer.name} has a bias, split if the layer is column-parallel and replicated if it is "
        f"row-parallel, which the program does not say",
        pos=layer.pos,
        hint="tensor parallelism is counted for layers without biases",
    )


def known(value: Expr | None) -> Expr:
    """A size that the layer's `build` made sure of (the channels of a layer that takes them): a record's
    field may be None in general (`Layer.cin`), not for this kind."""
    assert value is not None
    return value


def axes(shape: Shape) -> tuple[Expr | None, ...]:
    """The spatial sizes of a shape whose number of axes the layer's `build` made sure of."""
    assert shape.spatial is not None
    return shape.spatial


def family(match: NameMatch | None) -> re.Match[str]:
    """The match of a family's pattern (`conv3x3`): a kind with no plain names is matched by its pattern only."""
    assert isinstance(match, re.Match)
    return match


def refuse_keras(layer: Layer, why: str) -> NoReturn:
    raise ParamsymUsageError(f"{layer.name} at {layer.pos} has no Keras equivalent: {why}")


# ---- arguments -----------------------------------------------------------------------


def refused_reference(arg: Keyword, allowed: frozenset[str], where: str) -> None:
    """`KEY=@NAME` where KEY takes no named value (only attn's source= does): a located error."""
    name = next((n for n in map(reference, arg.value) if n is not None), None)
    if name is not None and arg.name not in allowed:
        raise ParamsymArgumentError(
            f"{arg.name}=@{name}: {where}'s {arg.name}= takes a value written out, not a named value",
            pos=arg.pos,
            hint="a named value is read by a stage of its own (@NAME) or by attn(heads=h, source=@NAME)",
        )


class Args:
    """The arguments of one call, checked against what its kind accepts."""

    def __init__(self, call: Call, kind: Kind) -> None:
        self.call = call
        self.kind = kind
        self.channels: Channels | None = None
        self.keywords: dict[str, Keyword] = {}
        self.flags: dict[str, Positional] = {}
        self.positional: list[Positional] = []
        # conditions on symbolic arguments (channels C/2, stride S-1) that wait for the symbols' values;
        # the builder adds them to the layer
        self.constraints: list[Constraint] = []
        # the layers named so far (`LAYER as NAME`), by name: what `tie=NAME` refers to; the builder sets it
        self.named: dict[str, Layer] = {}
        # the values named so far (`STAGE as NAME`), by name: what `KEY=@NAME` refers to; the builder sets it
        self.values: dict[str, Any] = {}
        allowed_keys, allowed_flags = kind.keywords, kind.flags
        takes_positional = kind.positional_count(call.name)
        for arg in call.args:
            if isinstance(arg, Channels):
                if not kind.takes_channels:
                    raise ParamsymArgumentError(
                        f"{call.name} takes no channels (A->B); it keeps the channels it gets", pos=arg.pos
                    )
                if self.channels is not None:
                    raise ParamsymArgumentError(f"{call.name} has channels twice", pos=arg.pos)
                if arg.cin is not None:
                    self.constraints += whole_number(arg.cin, "input channels", arg.cin_pos or arg.pos)
                self.constraints += whole_number(arg.cout, "output channels", arg.cout_pos or arg.pos)
                self.channels = arg
            elif isinstance(arg, Keyword):
                if arg.name not in allowed_keys:
                    self._unknown(arg.name, arg.pos, allowed_keys | allowed_flags, "keyword")
                if arg.name in self.keywords:
                    raise ParamsymArgumentError(f"{arg.name}= is given twice", pos=arg.pos)
                refused_reference(arg, kind.references, call.name)
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
                raise ParamsymArgumentError(
                    f"{call.name} does not take a value here", pos=arg.pos, hint=usage(kind, call.name)
                )
        if "bias" in self.flags and "nobias" in self.flags:
            raise ParamsymArgumentError("both 'bias' and 'nobias' are given", pos=self.flags["nobias"].pos)

    def _unknown(self, name: str, pos: Position, allowed: AbstractSet[str], what: str) -> NoReturn:
        import difflib  # only for the hint

        close = difflib.get_close_matches(name, sorted(allowed), n=1)
        if what == "keyword" and name in self.kind.flags:  # bias=1 for the flag bias
            raise ParamsymArgumentError(
                f"'{name}' is a flag of {self.call.name}: it takes no value",
                pos=pos,
                hint=f"write it alone: {self.call.name}(..., {name})",
            )
        if close:
            hint = f"did you mean '{close[0]}'?"
        elif allowed:
            hint = f"{self.call.name} accepts: {', '.join(sorted(allowed))}"
        else:
            hint = f"{self.call.name} takes no {what}s"
        raise ParamsymArgumentError(f"unknown {what} '{name}' for {self.call.name}", pos=pos, hint=hint)

    def sizes(self, key: str, rank: int, default: tuple[Expr, ...]) -> tuple[Expr, ...]:
        """A per-axis value such as stride=2 or stride=2x1, broadcast to `rank` axes."""
        arg = self.keywords.get(key)
        if arg is None:
            return default
        values = arg.value
        if len(values) == 1:
            values = values * rank
        if len(values) != rank:
            raise ParamsymArgumentError(
                f"{key}= gives {len(arg.value)} sizes but {self.call.name} has {rank} spatial axes", pos=arg.pos
            )
        for value in values:
            if isinstance(value, sympy.Symbol) and value.name in ("same", "valid"):
                raise ParamsymArgumentError(f"'{value.name}' is a padding, not a size", pos=arg.pos)
            self._whole(value, arg.pos, key)
        return tuple(values)

    @overload
    def scalar(self, key: str) -> Expr | None: ...

    @overload
    def scalar(self, key: str, default: Expr) -> Expr: ...

    def scalar(self, key: str, default: Expr | None = None) -> Expr | None:
        arg = self.keywords.get(key)
        if arg is None:
            return default
        if len(arg.value) != 1:
            raise ParamsymArgumentError(f"{key}= takes one value", pos=arg.pos)
        self._whole(arg.value[0], arg.pos, key)
        return arg.value[0]

    def _whole(self, value: Expr, pos: Position, key: str) -> None:
        """A size (kernel, stride, dilation, groups: at least 1; pad, outpad: at least 0) is a whole
        number: checked now when it is a number, later when it has symbols."""
        require_number_like(value, pos, key)
        self.constraints += whole_number(value, key, pos, least=0 if key in _MAY_BE_ZERO else 1)

    def required(self, what: str, example: str, *forms: str) -> Positional:
        """The first positional argument, which the kind cannot do without (space2depth's B)."""
        if not self.positional:
            name = self.call.name
            written = " or ".join(f"{name}({form})" for form in forms)
            raise ParamsymArgumentError(f"{name} needs {what}: {written}, such as {name}({example})", pos=self.call.pos)
        return self.positional[0]

    def one_value(self, arg: Positional, what: str) -> Expr:
        """The single value of `arg` (a table size, a patch size), refusing `2x2`."""
        if len(arg.value) != 1:
            written = "x".join(str(v) for v in arg.value)
            raise ParamsymArgumentError(f"{self.call.name} takes one {what}, not {written}", pos=arg.pos)
        return arg.value[0]

    @property
    def bias(self) -> bool:
        return "bias" in self.flags


def usage(kind: Kind, name: str) -> str:
    keys = sorted(kind.keywords | kind.flags)
    return f"{name} accepts: {', '.join(keys)}" if keys else f"{name} takes no arguments"


# Arguments that may be 0; every other size (kernel, stride, dilation, groups) is at least 1.
_MAY_BE_ZERO = ("pad", "outpad", "a size")


def require_number_like(value: Expr, pos: Position, what: str) -> None:
    if value.is_Integer:  # the usual case, compared as a Python int (no sympify per comparison)
        if value.p < 0:
            least = 0 if what in _MAY_BE_ZERO else 1
            raise ParamsymArgumentError(f"{what} must be at least {least}, not {value}", pos=pos)
        if value.p == 0 and what not in _MAY_BE_ZERO:
            raise ParamsymArgumentError(f"{what} must be at least 1, not 0", pos=pos)
        return
    if value.is_number and value.is_integer and value < 0:
        least = 0 if what in _MAY_BE_ZERO else 1
        raise ParamsymArgumentError(f"{what} must be at least {least}, not {value}", pos=pos)
    if value.is_number and not (value.is_integer and value >= 0):
        raise ParamsymArgumentError(f"{what} must be a whole number, not {value}", pos=pos)
    if value.is_number and value == 0 and what not in _MAY_BE_ZERO:
        raise ParamsymArgumentError(f"{what} must be at least 1, not 0", pos=pos)


def whole_number(value: Expr, what: str, pos: Position, least: int = 1) -> list[Constraint]:
    """A count (channels, a size) must be a whole number of at least `least` (1, or 0 for padding):
    refused now when it is a number or can never be one (`-C`), else the conditions that wait for
    the symbols' values (`C/2` whole, `C-10` at least 1). A symbol alone stands for a positive whole
    number already, so `C` or `2C` needs nothing."""
    noun = "a positive whole number" if least == 1 else "a whole number of at least 0"
    if value.is_Integer:  # the usual case, compared as a Python int
        if value.p < least:
            raise ParamsymArgumentError(f"{what} must be {noun}, not {value}", pos=pos)
        return []
    if value.is_number:
        if not (value.is_integer and value >= least):
            raise ParamsymArgumentError(f"{what} must be {noun}, not {value}", pos=pos)
        return []
    if _positive_whole(value):
        return []
    integer, enough = None, None
    if sympy.count_ops(value) <= _ASK_SYMPY:  # SymPy's assumptions are slow on large formulas
        integer = value.is_integer
        enough = value.is_positive if least == 1 else value.is_nonnegative
    if integer is False or enough is False:
        raise ParamsymArgumentError(
            f"{what} must be {noun}, not {value}", pos=pos, hint="a symbol stands for a positive whole number"
        )
    message = f"{what} {value} must be {noun}"
    constraints = []
    if not integer:
        constraints.append(Constraint(value, "integer", message, pos))
    if not enough:
        constraints.append(Constraint(value, "positive" if least == 1 else "nonnegative", message, pos))
    return constraints


_ASK_SYMPY = 50  # operations in a formula up to which SymPy's assumptions decide what to check later


def _positive_whole(expr: Expr) -> bool:
    """Surely a positive whole number, by its form alone: symbols, positive whole numbers and their sums,
    products and powers (`C`, `2C + 1`, `C^2`). Fast on large formulas, where SymPy's assumptions are not."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if node.is_Symbol:
            if not (node.is_integer and node.is_positive):
                return False
        elif node.is_Integer:
            if node < 1:
                return False
        elif node.is_Add or node.is_Mul:
            stack.extend(node.args)
        elif node.is_Pow:
            if not (node.exp.is_Integer and node.exp >= 0):
                return False
            stack.append(node.base)
        else:
            return False
    return True


def check_or_defer(
    expr: Expr, requirement: str, message: str, pos: Position, *, shown: Expr | None = None, hint: str | None = None
) -> list[Constraint]:
    """A rule on a layer's arguments (PyTorch's, mostly): `expr` must be "positive" (at least 1),
    "nonnegative", "integer" or "zero". Refused now when it is a number, else a constraint checked once the
    symbols have values (`shown` is the value the message names, when it is not `expr`)."""
    if not expr.is_number:
        return [Constraint(expr, requirement, message, pos, shown)]
    ok = {
        "positive": lambda: expr >= 1,
        "nonnegative": lambda: expr >= 0,
        "integer": lambda: expr.is_integer,
        "zero": lambda: expr == 0,
    }[requirement]()
    if not ok:
        raise ParamsymArgumentError(message, pos=pos, hint=hint)
    return []


# ---- shared checks -------------------------------------------------------------------


def make_layer(
    call: Call, kind: Kind, flow: Flow, out_shape: Shape, cin: Expr | None, cout: Expr | None, **extra: Any
) -> Layer:
    return Layer(
        index=-1,
        name=call.name,
        kind=kind,
        pos=call.pos,
        path=call.name,
        in_shape=flow.shape,
        out_shape=out_shape,
        cin=cin,
        cout=cout,
        **extra,
    )


def same_layer(call: Call, kind: Kind, flow: Flow, channels: Expr | None = None, **extra: Any) -> Layer:
    """A layer that keeps its input's shape and channels (`channels` when it states them: bn(64))."""
    channels = flow.shape.channels if channels is None else channels
    # bn(64) first in a program says the channels that nothing before it says: they flow on
    return make_layer(call, kind, flow, Shape(flow.shape.spatial, channels), channels, channels, **extra)


def input_channels(call: Call, flow: Flow, args: Args) -> Expr:
    """The input channels: stated (A->B) and/or inferred, which must agree."""
    stated = args.channels.cin if args.channels is not None else None
    inferred = flow.shape.channels
    if stated is not None and inferred is not None:
        if expansion.expand(stated - inferred) != 0:
            name, where = flow.source
            raise ParamsymShapeError(
                f"{call.name} says it takes {stated} input channels, but the layer before gives {inferred}",
                pos=args.channels.pos,
                notes=((f"the {inferred} channels come from {name}", where),),
                hint=f"write {call.name}(->{args.channels.cout}, ...) to take the channels from the layer before",
            )
        return inferred
    if stated is not None:
        return stated
    if inferred is not None:
        return inferred
    if flow.shape.spatial == ():
        raise ParamsymShapeError(
            f"{call.name} needs its input size, but the size of the vector before it is unknown",
            pos=call.pos,
            hint=f"start the network with input(...) so flatten knows its size, or write {call.name}(A->B)",
        )
    raise ParamsymShapeError(
        f"{call.name} needs its input channels: nothing before it says how many there are",
        pos=call.pos,
        hint=f"write {call.name}(A->B, ...) with the input channels A, or start the network with input(...)",
    )


def output_channels(call: Call, args: Args, example: str = "->64, ...") -> Expr:
    if args.channels is None:
        raise ParamsymArgumentError(
            f"{call.name} needs its output channels: write {call.name}({example})", pos=call.pos
        )
    return args.channels.cout


def stated_channels(call: Call, flow: Flow, args: Args) -> Expr:
    """Channels of a layer that keeps them (bn, ln, prelu): from the layer before, or bn(64) when
    nothing comes before."""
    if args.positional:
        arg = args.positional[0]
        if len(arg.value) != 1:
            raise ParamsymArgumentError(f"{call.name}(C) takes one channel count", pos=arg.pos)
        stated = arg.value[0]
        args.constraints += whole_number(stated, "channels", arg.pos)
        inferred = flow.shape.channels
        if inferred is not None and expansion.expand(stated - inferred) != 0:
            name, where = flow.source or ("the input", call.pos)
            # rmsnorm(bias): a bare name in the channels' place is read as the channel count
            hint = (
                f"'{stated}' is read as the number of channels; {usage(args.kind, call.name)}"
                if isinstance(stated, sympy.Symbol)
                else None
            )
            raise ParamsymShapeError(
                f"{call.name} says it has {stated} channels, but the layer before gives {inferred}",
                pos=arg.pos,
                notes=((f"the {inferred} channels come from {name}", where),),
                hint=hint,
            )
        return stated
    if flow.shape.channels is None:
        raise ParamsymShapeError(
            f"{call.name} needs its channels: nothing before it says how many there are",
            pos=call.pos,
            hint=f"write {call.name}(64) or start the network with input(...)",
        )
    return flow.shape.channels


def _divisors_hint(channels: Expr) -> str:
    """The groups that divide a norm's channels, when they are a number."""
    if channels.is_Integer and 0 < int(channels) <= 1 << 20:
        return f"groups may be {', '.join(str(d) for d in sympy.divisors(int(channels)))}"
    return "groups must divide the channels"


def check_divides(call: Call, groups: Expr, channels: Expr, what: str, pos: Position) -> list[Constraint]:
    """groups must divide the channels: an error now, or a constraint for when the symbols have values."""
    ratio = channels / groups
    named = f"{what} channels" if what else "channels"  # "" for a norm's groups: its channels are one count
    if ratio.is_number:
        if not ratio.is_integer:
            raise ParamsymArgumentError(
                f"groups={groups} does not divide the {channels} {named}",
                pos=pos,
                hint="groups must divide both the input and output channels" if what else _divisors_hint(channels),
            )
        return []
    return [Constraint(ratio, "integer", f"groups={groups} must divide the {named} ({channels})", pos)]


def bias_of(layer: Layer) -> Expr:
    return layer.cout if layer.bias else ZERO


def whole_input_field(layer: Layer, field: Field | None) -> Field | None:
    """After a layer that sees every position (global pooling, flatten), the field covers the input."""
    spatial = layer.in_shape.spatial or ()
    if field is None or len(spatial) != len(field) or any(n is None for n in spatial):
        return None
    return tuple((r + (known(n) - 1) * j, j, start) for (r, j, start), n in zip(field, spatial))


def vector_or_channels_last(layer: Layer, module: TorchSpec) -> TorchSpec:
    """A module that acts on the last axis: as it is on a vector, else through ChannelsLast
    (PyTorch keeps channels on axis 1)."""
    return module if layer.in_shape.rank == 0 else TorchSpec("ChannelsLast", (module,))


def require_channels_of_a_vector(module: Any, ctx: ImportContext) -> None:
    """On import, a PyTorch norm over the last axis (LayerNorm, RMSNorm) must normalise channels: in
    PyTorch's layout, the last axis of a (batch, channels) tensor."""
    shape = tuple(module.normalized_shape)
    if len(shape) != 1 or len(ctx.in_shape) != 2 or ctx.in_shape[-1] != shape[0]:
        raise ImportRefused(
            f"{ctx.node_name} ({type(module).__name__}{shape}) does not normalise the channels of a vector"
        )


# ---- explain ------------------------------------------------------------------------


def bias_sentences(layer: Layer, counts: Counts, words: Words) -> list[str]:
    """`Plus 64 biases, ...` or `No bias: ...` for a layer that may have a bias."""
    if layer.bias:
        weights = known(counts.params) - known(layer.cout)
        return [
            f"Plus {words(layer.cout)} biases, one per output channel: {words(weights)} + {words(layer.cout)} = "
            f"{words(counts.params)} parameters."
        ]
    return [f"No bias: {words(counts.params)} parameters."]


def fan_in_sentence(counts: Counts, words: Words) -> str:
    return f"Fan-in: each output value is connected to {words(counts.fan_in)} inputs."


__all__ = [
    "ONE",
    "ZERO",
    "Args",
    "Call",
    "Constraint",
    "Counts",
    "Expr",
    "Field",
    "Flow",
    "ImportContext",
    "KerasSpec",
    "Kind",
    "Layer",
    "NameMatch",
    "Numbers",
    "Shape",
    "Template",
    "TorchSpec",
    "Words",
    "axes",
    "bias_of",
    "bias_sentences",
    "check_divides",
    "check_or_defer",
    "family",
    "fan_in_sentence",
    "input_channels",
    "known",
    "make_layer",
    "output_channels",
    "refuse_keras",
    "require_channels_of_a_vector",
    "require_number_like",
    "same_layer",
    "stated_channels",
    "times",
    "usage",
    "vector_or_channels_last",
    "whole_input_field",
    "whole_number",
]
