"""The sequence layers (docs/language.md, Layers): `embed(V->d)` (token embedding),
`posembed(N)` (a learned table added to the positions), `cls` (a class token),
`tokens` (the positions of a map become a sequence), `first` and `last` (one position).

A sequence is `T x d`: Shape(spatial=(T,), channels=d). Token ids are the vector that
`input(T)` gives: `embed` takes them, and must come right after `input(T)`.

In PyTorch the export keeps the channels on axis 1, so a sequence is an (N, d, T)
tensor: the embedding's (N, T, d) output moves its channels there (ChannelsFirst),
and the modules of ours (paramsym.torch_modules) act on that layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import saved as saved_tensors
from ..core.records import KerasSpec, Layer, Options, Shape, TorchSpec
from ..core.setup import Setup
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError, ParamsymUsageError
from .base import (
    Args,
    Call,
    Counts,
    Expr,
    Field,
    Flow,
    ImportContext,
    Kind,
    NameMatch,
    Numbers,
    Template,
    Value,
    Words,
    axes,
    check_or_defer,
    known,
    make_layer,
    refuse_keras,
    split_over,
    whole_number,
)

_START = "start with input(T) > embed(V->d)"
_VIT = "e.g. input(224x224x3) > conv16x16(->768, stride=16) > tokens > cls"


def _sequence(call: Call, flow: Flow, what: str) -> tuple[Expr | None, Expr]:
    """(T, d) of the sequence a layer acts on; a vector or a map is refused, with a hint."""
    shape = flow.shape
    if shape.spatial is None or shape.channels is None:
        raise ParamsymShapeError(
            f"{call.name} acts on a sequence (T x d), but nothing before it says its shape",
            pos=call.pos,
            hint=f"{_START}, or make a map a sequence: {_VIT}",
        )
    if shape.spatial == ():
        raise ParamsymShapeError(
            f"{call.name} {what} of a sequence (T x d), but its input is a vector of {shape.channels}",
            pos=call.pos,
            hint=f"{_START}, or {_VIT}",
        )
    if len(shape.spatial) != 1:
        raise ParamsymShapeError(
            f"{call.name} {what} of a sequence (T x d), but its input is the map {shape.describe()}",
            pos=call.pos,
            hint=f"make its positions a sequence first with tokens: {_VIT}",
        )
    return shape.spatial[0], shape.channels


@dataclass(frozen=True)
class EmbedOptions(Options):
    tie: Any = None  # kinds.dense.Tie: the embedding whose table this one looks up (`embed(V->d, tie=NAME)`)


class Embed(Kind):
    """`embed(V->d)`: a table of V vectors of d; each of the T token ids picks one. `tie=NAME`: the table of the
    layer named NAME (an encoder-decoder's decoder looks its ids up in the encoder's table), counted there."""

    key = "embed"
    weights_times_input = True  # a gather: no MACs
    reads_token_ids = True

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Its input, the token ids (the program's input: data, not counted)."""
        return saved_tensors.INPUT

    names = ("embed",)
    per_position = lookup = True  # a decode step looks up the new token's row
    keywords = frozenset({"tie"})
    takes_channels = True
    token_ids = True  # takes the token ids of input(T): the example input of an export is whole numbers
    torch_modules = ("Embedding",)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        channels = args.channels
        if channels is None:
            raise ParamsymArgumentError(
                f"{call.name} needs its vocabulary and width: write {call.name}(V->d), e.g. {call.name}(50257->768)",
                pos=call.pos,
                hint=_START,
            )
        if channels.cin is None:
            raise ParamsymArgumentError(
                f"{call.name}(->{channels.cout}) needs the vocabulary: write {call.name}(V->{channels.cout}) with "
                f"the number V of distinct token ids (it is not taken from the layer before, which gives T ids)",
                pos=channels.pos,
                hint=_START,
            )
        if not flow.at_input or flow.shape.spatial != ():
            where = "is a vector of token ids" if flow.shape.spatial == () else f"is {flow.shape.describe()}"
            before = "" if flow.source is None else f"; its input {where}, from {flow.source[0]}"
            notes = (
                ()
                if flow.source is None
                else ((f"what {call.name} would take comes from {flow.source[0]}", flow.source[1]),)
            )
            raise ParamsymShapeError(
                f"{call.name} looks up token ids, so it must come right after input(T){before}",
                pos=call.pos,
                notes=notes,
                hint=_START,
            )
        length = flow.shape.channels  # input(T): T ids
        vocabulary, width = channels.cin, channels.cout
        layer = make_layer(call, self, flow, Shape((length,), width), vocabulary, width)
        if "tie" in args.keywords:
            from .dense import Dense, Tie

            name, constraints = Dense._tie(Dense(), layer, args)  # the same check as dense(..., tie=NAME)
            layer.options = EmbedOptions(Tie(name, args.named[name].index))
            layer.constraints = layer.constraints + tuple(constraints)
        return layer

    @staticmethod
    def tied(layer: Layer) -> Any:
        return layer.options.tie if isinstance(layer.options, EmbedOptions) else None

    def tensor_parallel(self, layer: Layer, params: Expr, t: int, value: Value) -> Expr:
        # Megatron-LM's VocabParallelEmbedding: each rank a slice of the vocabulary (Megatron pads the
        # vocabulary to a multiple of 128 t, which is not counted: a vocabulary that t does not divide is refused)
        return split_over(t, layer, params, value, (layer.cin, "the vocabulary"))

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        # a lookup: no multiply-accumulate; each output value is one entry of the table (fan-in 1, the default)
        return {"params": 0 if self.tied(layer) is not None else known(layer.cin) * known(layer.cout)}

    def weight(self, layer: Layer) -> tuple[Expr, Expr]:
        return (layer.cin, layer.cout)  # nn.Embedding's weight is V x d

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return 0 if self.tied(layer) is not None else t.c_in * t.c_out

    def header(self, layer: Layer, w: Words) -> str:
        return f", vocabulary {w(layer.cin)}, width {w(layer.cout)}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        tie = self.tied(layer)
        if tie is not None:
            return [
                f"The table of {tie.name} (tied): its {w.product(layer.cin, layer.cout)} parameters are counted "
                f"there, not here.",
                "Each of the T token ids picks its vector: a lookup, no multiply-accumulate.",
            ]
        return [
            f"A table of {w(layer.cin)} vectors of {w(layer.cout)}, one per token id: "
            f"{w.product(layer.cin, layer.cout)} parameters.",
            "Each of the T token ids picks its vector: a lookup, no multiply-accumulate; each output value "
            "is one entry of the table (fan-in 1).",
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        tie = self.tied(layer)
        if tie is not None:
            raise ParamsymUsageError(
                f"{layer.name} at {layer.pos}: an embedding that looks up the table of another (tie={tie.name}) "
                f"has no PyTorch export"
            )
        return TorchSpec("ChannelsFirst", (TorchSpec("nn.Embedding", (num(layer.cin), num(layer.cout))),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        if self.tied(layer) is not None:
            refuse_keras(layer, "a Keras Embedding cannot share the table of another layer (tie=)")
        return [KerasSpec("Embedding", {"input_dim": num(layer.cin), "output_dim": num(layer.cout)})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        if len(ctx.in_shape) != 2:
            raise ImportRefused(
                f"{ctx.node_name} (Embedding) looks up a {len(ctx.in_shape)}-D tensor of ids; the "
                f"language takes one sequence of token ids, input(T)"
            )
        return f"embed({module.num_embeddings}->{module.embedding_dim})"


@dataclass(frozen=True)
class PositionEmbeddingOptions(Options):
    size: Expr  # the vectors in the table (A + B of a separable one, plus 1 with cls)
    split: tuple[Expr, Expr] | None = None  # posembed(A x B): separable, A vectors and B vectors (MViT's T and H·W)
    cls: bool = False  # with posembed(A x B, cls): one vector more for the class token before the A·B positions
    resize: tuple[Expr, Expr] | None = None  # posembed(A x B, resize=H x W): one A x B table resized to the H x W grid
    table: tuple[Expr, Expr] | None = None  # and its A x B
    mode: str = "bicubic"  # how the table is resized: nearest, bilinear or bicubic
    antialias: bool = False  # resized with antialias (PyTorch's antialias=True)


# posembed(A x B, resize=H x W)'s ways of resizing its table
_TABLE_MODES = ("nearest", "bilinear", "bicubic")


class PositionEmbedding(Kind):
    """`posembed(N)`: a learned table of N vectors of d added to the sequence.

    N is not required to be at least T: learned absolute positions need N >= T, but the
    same table also holds segment or token types (BERT's token_type embedding, N = 2),
    which are fewer than the positions. So N is any positive whole number.

    `posembed(A x B)` (a paramsym extension, MViT's separable position embedding): a table of A vectors and one of
    B vectors, position i·B + j getting a_i + b_j, on a sequence of exactly A·B positions: (A + B)·d parameters;
    with `cls`, the sequence is a class token and A·B positions, and the class token has a vector of its own:
    (1 + A + B)·d.

    `posembed(A x B, resize=H x W)` (a paramsym extension, timm's NaFlexViT): one table of A x B vectors laid out
    as a grid, resized (bicubic unless `bilinear` or `nearest`; `antialias` as PyTorch's antialias=True) to the
    H x W grid whose positions the sequence holds row by row: exactly H·W of them. A·B·d parameters; the resize
    weighs fixed coefficients and counts no MAC (FlopCounterMode counts none).

    On a map H x W x d (a paramsym extension, for NesT) the table holds one vector for each position, row
    by row: N = H·W, checked."""

    key = "posembed"
    per_position = lookup = True  # a decode step adds the new position's row

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Nothing: the table is added (declared for a table of positions, not a resized grid)."""
        options = PositionEmbeddingOptions.of(layer)
        return saved_tensors.NOTHING if options.resize is None and options.split is None else None

    names = ("posembed",)
    positional = 1
    flags = frozenset({"cls", "antialias", *_TABLE_MODES})
    keywords = frozenset({"resize"})
    torch_modules = ("PositionEmbedding", "SeparablePositionEmbedding", "ResizedPositionEmbedding")

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        arg = args.required("the size of its table (one position each)", "1024", "N")
        if "resize" in args.keywords:
            return self._resized(call, flow, args, arg)
        for flag in ("antialias", *_TABLE_MODES):
            if flag in args.flags:
                raise ParamsymArgumentError(
                    f"'{flag}' says how a table is resized: it belongs to posembed(A x B, resize=H x W)",
                    pos=args.flags[flag].pos,
                )
        if len(arg.value) == 2:
            return self._separable(call, flow, args, arg)
        if "cls" in args.flags:
            raise ParamsymArgumentError(
                "'cls' (a vector for the class token) belongs to a separable table, posembed(A x B, cls)",
                pos=args.flags["cls"].pos,
            )
        size = args.one_value(arg, "table size")
        if size.is_number and not (size.is_integer and size >= 1):
            raise ParamsymArgumentError(
                f"the table size of {call.name} must be a positive whole number, not {size}", pos=arg.pos
            )
        args.constraints += whole_number(size, f"the table size of {call.name}", arg.pos)
        spatial = flow.shape.spatial
        if spatial is not None and len(spatial) > 1 and flow.shape.channels is not None:
            width = flow.shape.channels
            positions = flow.shape.positions
            if positions is not None:
                args.constraints += check_or_defer(
                    positions - size,
                    "zero",
                    f"{call.name}({size}) on the map {flow.shape.describe()} adds one vector to each of its "
                    f"{positions} positions: its table has {positions} of them, not {size}",
                    arg.pos,
                    shown=size,
                    hint=f"write {call.name}({positions})",
                )
        else:
            _, width = _sequence(call, flow, "adds a learned vector to each position")
        return make_layer(call, self, flow, flow.shape, width, width, options=PositionEmbeddingOptions(size))

    def _separable(self, call: Call, flow: Flow, args: Args, arg: Any) -> Layer:
        for value in arg.value:
            if value.is_number and not (value.is_integer and value >= 1):
                raise ParamsymArgumentError(
                    f"the tables of {call.name} must have a positive whole number of vectors, not {value}", pos=arg.pos
                )
            args.constraints += whole_number(value, f"a table size of {call.name}", arg.pos)
        a, b = arg.value
        cls = "cls" in args.flags
        length, width = _sequence(call, flow, "adds a learned vector to each position")
        if length is not None:
            args.constraints += check_or_defer(
                length - a * b - int(cls),
                "zero",
                f"{call.name}({a} x {b}{', cls' if cls else ''}) adds to {'1 + ' if cls else ''}{a}·{b} positions, "
                f"but the sequence has {length}",
                arg.pos,
            )
        options = PositionEmbeddingOptions(a + b + int(cls), (a, b), cls)
        return make_layer(call, self, flow, flow.shape, width, width, options=options)

    def _resized(self, call: Call, flow: Flow, args: Args, arg: Any) -> Layer:
        resize = args.keywords["resize"]
        if len(arg.value) != 2:
            raise ParamsymArgumentError(
                f"{call.name}(..., resize=H x W) resizes a grid of A x B vectors: write {call.name}(16x16, resize=...)",
                pos=arg.pos,
            )
        if len(resize.value) != 2:
            raise ParamsymArgumentError(
                "resize= takes the grid's two sides, H x W (resize=24x24)", pos=resize.pos, hint="write resize=24x24"
            )
        if "cls" in args.flags:
            raise ParamsymArgumentError(
                "'cls' belongs to a separable table, posembed(A x B, cls); a resized table has no class token's vector",
                pos=args.flags["cls"].pos,
            )
        modes = [m for m in _TABLE_MODES if m in args.flags]
        if len(modes) > 1:
            raise ParamsymArgumentError(
                f"{call.name} resizes its table one way: nearest, bilinear or bicubic (the default)",
                pos=args.flags[modes[1]].pos,
            )
        for values, pos, what in ((arg.value, arg.pos, "the table"), (resize.value, resize.pos, "resize=")):
            for value in values:
                if value.is_number and not (value.is_integer and value >= 1):
                    raise ParamsymArgumentError(
                        f"the sides of {what} of {call.name} are positive whole numbers, not {value}", pos=pos
                    )
                args.constraints += whole_number(value, f"a side of {what} of {call.name}", pos)
        a, b = arg.value
        h, w = resize.value
        length, width = _sequence(call, flow, "adds a learned vector to each position")
        if length is not None:
            args.constraints += check_or_defer(
                length - h * w,
                "zero",
                f"{call.name}({a} x {b}, resize={h} x {w}) adds to the {h}·{w} positions of the grid, but the "
                f"sequence has {length}",
                resize.pos,
                shown=length,
            )
        mode = modes[0] if modes else "bicubic"
        options = PositionEmbeddingOptions(
            a * b, resize=(h, w), table=(a, b), mode=mode, antialias="antialias" in args.flags
        )
        return make_layer(call, self, flow, flow.shape, width, width, options=options)

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        return {"params": PositionEmbeddingOptions.of(layer).size * layer.cout}  # an addition: no MACs

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return t.named("P", PositionEmbeddingOptions.of(layer).size) * t.c

    def header(self, layer: Layer, w: Words) -> str:
        o = PositionEmbeddingOptions.of(layer)
        if o.split is not None:
            return f", separable tables of {w(o.split[0])} and {w(o.split[1])} vectors of {w(layer.cout)}" + (
                ", and one for the class token" if o.cls else ""
            )
        if o.resize is not None and o.table is not None:
            return f", a {w(o.table[0])} x {w(o.table[1])} table resized to {w(o.resize[0])} x {w(o.resize[1])}"
        return f", a table of {w(PositionEmbeddingOptions.of(layer).size)} vectors of {w(layer.cout)}"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = PositionEmbeddingOptions.of(layer)
        size = o.size
        if o.split is not None:
            a, b = o.split
            return [
                f"Separable learned positions (MViT's): a table of {w(a)} vectors and one of {w(b)}, position "
                f"i·{w(b)} + j getting the sum of the i-th and the j-th"
                + (", and a vector of its own for the class token before them" if o.cls else "")
                + f": {w.product(size, layer.cout)} parameters.",
                "An addition: no multiply-accumulate.",
            ]
        if o.resize is not None and o.table is not None:
            (a, b), (h, width) = o.table, o.resize
            return [
                f"A learned grid of {w(a)} x {w(b)} vectors of {w(layer.cout)}, resized ({o.mode}"
                + (", antialiased" if o.antialias else "")
                + f") to the {w(h)} x {w(width)} grid whose positions the sequence holds row by row, and added: "
                f"{w.product(size, layer.cout)} parameters.",
                "The resize weighs fixed coefficients and the sum is an addition: no multiply-accumulate.",
            ]
        return [
            f"A learned table of {w(size)} vectors of {w(layer.cout)} (positions, or segment "
            f"and token types), added to the sequence: {w.product(size, layer.cout)} "
            f"parameters.",
            "An addition: no multiply-accumulate.",
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = PositionEmbeddingOptions.of(layer)
        if o.split is not None:
            return TorchSpec(
                "SeparablePositionEmbedding", (num(o.split[0]), num(o.split[1]), num(layer.cout)), {"cls": o.cls}
            )
        if o.resize is not None and o.table is not None:
            sizes = (*(num(v) for v in o.table), *(num(v) for v in o.resize), num(layer.cout))
            return TorchSpec("ResizedPositionEmbedding", sizes, {"mode": o.mode, "antialias": o.antialias})
        return TorchSpec("PositionEmbedding", (num(PositionEmbeddingOptions.of(layer).size), num(layer.cout)))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "keras.layers has no layer that adds a learned table of positions")

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        if type(module).__name__ == "ResizedPositionEmbedding":
            return _resized_text(module, ctx)
        if type(module).__name__ == "SeparablePositionEmbedding":
            if not all(hasattr(module, a) for a in ("first", "second", "token")):
                raise ImportRefused(f"{ctx.node_name} (SeparablePositionEmbedding) is not paramsym's separable table")
            a, b = module.first.shape[0], module.second.shape[0]
            return f"posembed({a}x{b}{', cls' if module.token is not None else ''})"
        weight = getattr(module, "weight", None)
        shape = ctx.in_shape
        on_map = len(shape) > 3 and weight is not None and weight.shape[0] == _product(shape[2:])
        if weight is None or weight.dim() != 2 or not (len(shape) == 3 or on_map) or shape[1] != weight.shape[1]:
            raise ImportRefused(f"{ctx.node_name} ({type(module).__name__}) is not a table added to a sequence")
        return f"posembed({weight.shape[0]})"


def _resized_text(module: Any, ctx: ImportContext) -> str:
    """posembed(A x B, resize=H x W, MODE[, antialias]) from paramsym's ResizedPositionEmbedding, or the importer's
    stand-in for a parameter table (1, A, B, d) that forward resizes with F.interpolate and adds (NaFlexViT)."""
    table, grid = getattr(module, "table", None), getattr(module, "grid", None)
    mode, antialias = getattr(module, "mode", None), getattr(module, "antialias", None)
    shape = ctx.in_shape  # (N, d, T)
    if (
        table is None
        or table.dim() != 4
        or table.shape[0] != 1
        or not (isinstance(grid, tuple) and len(grid) == 2)
        or mode not in _TABLE_MODES
        or len(shape) != 3
        or shape[1] != table.shape[3]
        or shape[2] != grid[0] * grid[1]
    ):
        raise ImportRefused(
            f"{ctx.node_name} ({type(module).__name__}) is not a grid of vectors resized to the sequence's grid"
        )
    a, b = table.shape[1], table.shape[2]
    return f"posembed({a}x{b}, resize={grid[0]}x{grid[1]}, {mode}{', antialias' if antialias else ''})"


def _product(sizes: tuple[int, ...]) -> int:
    total = 1
    for n in sizes:
        total *= n
    return total


class ClassToken(Kind):
    """`cls`: prepends one learned vector (ViT's and BERT's class token)."""

    key = "cls"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Nothing: the class token joined before the sequence."""
        return saved_tensors.NOTHING

    names = ("cls",)
    torch_modules = ("ClassToken",)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        length, width = _sequence(call, flow, "prepends a learned vector to the positions")
        return make_layer(call, self, flow, Shape((None if length is None else length + 1,), width), width, width)

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        return {"params": layer.cout}

    def generic_params(self, layer: Layer, t: Template) -> Expr:
        return t.c

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            f"One learned vector of {w(layer.cout)} (a class token) put before the first position: "
            f"{w(layer.cout)} parameters; the sequence grows by one position."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("ClassToken", (num(layer.cout),))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        refuse_keras(layer, "keras.layers has no layer that prepends a learned vector")

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        weight = getattr(module, "weight", None)
        if weight is None or weight.dim() != 1 or len(ctx.in_shape) != 3 or ctx.in_shape[1] != weight.shape[0]:
            raise ImportRefused(f"{ctx.node_name} ({type(module).__name__}) is not a class token before a sequence")
        return "cls"


class Tokens(Kind):
    """`tokens`: the positions of a map become a sequence, H x W x C -> (H·W) x C (row by row)."""

    key = "tokens"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Nothing: a view of its input."""
        return saved_tensors.VIEW

    names = ("tokens",)
    torch_modules = ("Tokens",)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        shape = flow.shape
        if shape.spatial == ():
            raise ParamsymShapeError(
                f"{call.name} makes the positions of a map a sequence, but its input is a vector of {shape.channels}",
                pos=call.pos,
                hint=_VIT,
            )
        if shape.spatial is None:
            raise ParamsymShapeError(
                f"{call.name} needs the shape of the map before it",
                pos=call.pos,
                hint="start the network with input(...), " + _VIT,
            )
        out = Shape((shape.positions,), shape.channels)
        return make_layer(call, self, flow, out, shape.channels, shape.channels)

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        # a sequence stays as it is; the positions of a map are no longer one axis per spatial axis
        return field if layer.in_shape.rank == 1 else None

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            f"No parameters: the {layer.in_shape.describe()} map becomes a sequence of "
            f"{layer.out_shape.describe()}, its positions taken row by row."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("Tokens")

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        return [KerasSpec("Reshape", {"target_shape": (num(axes(layer.out_shape)[0]), num(layer.cout))})]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        if len(ctx.out_shape) != 3:
            raise ImportRefused(f"{ctx.node_name} ({type(module).__name__}) does not make a sequence")
        return "tokens"


@dataclass(frozen=True)
class SelectOptions(Options):
    index: str  # "first" or "last"


class Select(Kind):
    """`first`, `last`: one position of the sequence, the vector d."""

    key = "select"

    def saved(self, layer: Layer, setup: Setup) -> saved_tensors.Saved | None:
        """Nothing: a view of its input (a layer that keeps it keeps the input's whole storage)."""
        return saved_tensors.VIEW

    names = ("first", "last")
    torch_modules = ("Select",)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        _, width = _sequence(call, flow, "takes one position")
        return make_layer(call, self, flow, Shape((), width), width, width, options=SelectOptions(call.name))

    def field(self, layer: Layer, field: Field | None) -> Field | None:
        """The vector it keeps is one position: it sees what that position saw (after attention, all)."""
        return field

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        return [
            f"No parameters: it keeps the {SelectOptions.of(layer).index} position of the sequence, a vector of "
            f"{w(layer.cout)}."
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        return TorchSpec("Select", (0 if SelectOptions.of(layer).index == "first" else -1,))

    def keras(self, layer: Layer, num: Numbers) -> list[KerasSpec]:
        length = axes(layer.in_shape)[0]
        if length is None:
            refuse_keras(layer, "the length of the sequence is unknown")
        rest = num(length) - 1
        cropping = (0, rest) if SelectOptions.of(layer).index == "first" else (rest, 0)
        return [KerasSpec("Cropping1D", {"cropping": cropping}), KerasSpec("Flatten")]

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        index = getattr(module, "index", None)
        if index not in (0, -1) or len(ctx.in_shape) != 3:
            raise ImportRefused(
                f"{ctx.node_name} ({type(module).__name__}) does not take the first or last position of a sequence"
            )
        return "first" if index == 0 else "last"


KINDS = (Embed(), PositionEmbedding(), ClassToken(), Tokens(), Select())
