"""PyTorch models to programs: `from_torch(module, input_shape)` traces the model
with torch.fx, records every tensor's shape with one forward pass, and writes
the program in the language.

The graph becomes the language's structure by series-parallel decomposition:
a merge (an addition or a concatenation along channels) gets as branches the
paths from its immediate dominator (where the branches split) to each of its
inputs. Concatenations of a growing list (DenseNet) are first rewritten into
nested pairs. The first module or operation the language cannot express stops
the import with an error that names it.
"""

from __future__ import annotations

import importlib
import numbers
import operator
import re
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any, cast

from .. import kinds
from ..errors import ImportRefused, ParamsymError, ParamsymUsageError
from ..kinds import combinators
from ..kinds.combinators import Merge
from .export import require_torch
from .factor import module_stacks, readable
from .graph_text import SharedValue, graph_text
from .hf_import import cache_is_the_architectures, from_layout, recognises
from .hiera_import import from_layout as hiera_layout
from .hiera_import import recognises as hiera_recognises
from .tracing import trace, where

# the merges the importer writes: an op that joins values holds its combinator as its kind
_ADD, _MUL, _CONCAT, _SUB, _SEQCAT = (
    cast(Merge, combinators.lookup(keyword)) for keyword in ("add", "mul", "concat", "sub", "seqcat")
)


@dataclass
class _Op:
    """A node of the traced graph as the language sees it."""

    name: str
    kind: str | Merge  # "input", "layer", "skip", or a merge's combinator (_ADD, _MUL, _CONCAT, _SUB, _SEQCAT)
    text: str = ""
    inputs: list = field(default_factory=list)
    pads: tuple = ()
    module: str = ""  # the module's path in the model (named_modules), for messages
    shape: tuple = ()  # its value's shape in PyTorch's layout (batch first)
    last: bool = False  # channels last (a sequence), not (N, C, ...)
    described: str = ""  # the operation in the user's terms, for messages (`_operation`)


@dataclass(frozen=True)
class ImportContext:
    """What a kind's `from_torch` may need besides the module: where it is, its input and output shapes
    (PyTorch's layout, batch first), and a padding taken over from an F.pad before it."""

    node_name: str
    in_shape: tuple
    out_shape: tuple = ()
    extra_pad: tuple | None = None  # an F.pad before it: (before, after) per spatial axis, first axis first
    node: object = None  # the torch.fx node (its arguments: attention's query, key and value)
    arg_shapes: tuple = ()  # the shapes of its tensor arguments, in order

    @property
    def rank(self) -> int:
        return len(self.in_shape) - 2


def _module_text(module, node_name: str, in_shape, out_shape, extra_pad=None, node=None, arg_shapes=()) -> str:
    kind = kinds.for_torch_module(module)
    if kind is None:
        base = kinds.overridden(module)
        if base is not None:
            raise ImportRefused(
                f"{node_name} ({type(module).__name__}) is a {base} with a forward of its own, "
                f"which the language has no counterpart for; it is not read as a {base}"
            )
        raise ImportRefused(f"{node_name} ({type(module).__name__}) has no counterpart in the language")
    if extra_pad is not None and not kind.takes_pad:
        raise ImportRefused(
            f"{node_name} ({type(module).__name__}) follows an F.pad, which the language can say "
            f"only as the padding of a convolution or a pooling"
        )
    return kind.from_torch(module, ImportContext(node_name, in_shape, out_shape, extra_pad, node, arg_shapes))


# -- layouts: reshapes, permutes and flattens, read by what they do to the language's axes
#
# A PyTorch value holds a language value (a map H x W x C, a sequence T x d, a vector C) in some layout: each of its
# axes after the batch is a group of the language's axes (channels first (C)(H)(W), channels last (H)(W)(C), or
# after x.flatten(2) (C)(H W)). A chain of reshapes, views, flattens, permutes and transposes changes the layout;
# where it arrives at the value itself in a layout the importer reads (channels first or last, a vector), it is
# nothing; at the positions as a sequence, `tokens`; at every value in one axis, `flatten`. In between, the layout
# is remembered. A reshape that splits one of the language's axes (into heads, into windows) is not a layout.

# the methods (and torch functions) that only lay values out: the reshapes a kind imports when they leave a vector
# (x.view(n, -1)), and the ones that move axes
_LAYOUT_METHODS = (
    *next(kind for kind in kinds.KINDS if "reshape" in kind.torch_functions).torch_functions,
    "permute",
    "transpose",
    "swapaxes",
    "unsqueeze",
    "squeeze",
)

# methods that give the same values (a copy, another dtype): nothing in the language
_SAME_VALUE_METHODS = ("contiguous", "clone", "float", "half", "bfloat16", "to", "type_as")
# what forward does to a parameter before using it (self.gamma.reshape(1, -1, 1, 1), cls_token.expand(B, -1, -1))
_PARAMETER_VIEWS = (*_LAYOUT_METHODS, "expand", *_SAME_VALUE_METHODS)


@dataclass(frozen=True)
class _Layout:
    """How a PyTorch value holds the language value of node `source`: `dims` are the language's axes (spatial
    axes, then the channels), `axes` the groups of them along each PyTorch axis after the batch."""

    source: Any
    dims: tuple[int, ...]
    axes: tuple[tuple[int, ...], ...]

    def arrange(self, axes) -> _Layout:
        return _Layout(self.source, self.dims, tuple(tuple(a) for a in axes))

    @property
    def spatial(self) -> int:
        return len(self.dims) - 1


def _layout_of(c: _Converter, node) -> _Layout | None:
    """The layout of a value the importer has read (or is reading, `c.layouts`), or None."""
    if node.name in c.layouts:
        return c.layouts[node.name]
    if node.name not in c.ops or node.name not in c.shapes:
        return None
    shape = c.shapes[node.name][1:]
    if not shape:
        return None
    if node.name in c.channels_last or len(shape) == 1:
        return _Layout(node, shape, tuple((i,) for i in range(len(shape))))
    if node.name in c.pooled and all(d == 1 for d in shape[1:]):
        return _Layout(node, shape[:1], ((0,),) + ((),) * (len(shape) - 1))
    k = len(shape) - 1
    return _Layout(node, (*shape[1:], shape[0]), ((k,), *((i,) for i in range(k))))


def _moved_layout(layout: _Layout, node, in_shape: tuple, out_shape: tuple) -> _Layout | None:
    """The layout after a reshape, view, flatten, permute, transpose, (un)squeeze, or None when it splits one of
    the language's axes or moves the batch."""
    method = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    args = node.args[1:]
    rank = len(in_shape)
    axes = list(layout.axes)
    if method == "permute":
        order = tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)
        order = tuple(o % rank for o in order)
        if not order or order[0] != 0:
            return None
        return layout.arrange(axes[o - 1] for o in order[1:])
    if method in ("transpose", "swapaxes"):
        a, b = (int(v) % rank for v in (*args, *node.kwargs.values())[:2])  # two axes, by position or by name
        if 0 in (a, b):
            return None
        axes[a - 1], axes[b - 1] = axes[b - 1], axes[a - 1]
        return layout.arrange(axes)
    # the rest keep the order of the language's axes and regroup them by the output's sizes
    flat = [d for group in axes for d in group]
    if len(out_shape) < 1 or out_shape[0] != in_shape[0]:
        return None
    groups, at = [], 0
    for size in out_shape[1:]:
        group, product = [], 1
        while product < size and at < len(flat):
            product *= layout.dims[flat[at]]
            group.append(flat[at])
            at += 1
        while product == size and at < len(flat) and layout.dims[flat[at]] == 1 and size != 1:
            group.append(flat[at])  # an axis of 1 goes with the group before it
            at += 1
        if product != size:
            return None
        groups.append(tuple(group))
    if at != len(flat):
        return None
    return layout.arrange(groups)


def _layout(c: _Converter, node) -> bool:
    """A reshape, view, flatten, permute, transpose or (un)squeeze of a value the importer has read."""
    source = node.args[0] if node.args and hasattr(node.args[0], "name") else None
    if source is None or node.name not in c.shapes:
        return False
    layout = _layout_of(c, source)
    if layout is None:
        return False
    moved = _moved_layout(layout, node, c.shapes[source.name], c.shapes[node.name])
    if moved is None and _sequence_to_map(c, node, source):
        return True
    if moved is None:
        raise ImportRefused(
            f"{_where_node(node)}{_described(node)} turns a value of shape {c.shapes[source.name]} into "
            f"{c.shapes[node.name]}, splitting or moving its axes in a way the language has no counterpart for "
            f"(the language reads heads and windows only inside the attention modules it knows)"
        )
    k = moved.spatial
    axes = tuple(a for a in moved.axes if a)  # axes of 1 are left aside: the value is the same
    every = tuple(range(len(moved.dims)))
    spatial = tuple(range(k))
    if axes == ((k,), *((i,) for i in range(k))) or (k == 0 and axes == ((0,),)):  # channels first; a vector
        c.pass_on(node, moved.source)
        if len(axes) < len(moved.axes) and k == 0:
            c.pooled.add(node.name)
    elif axes == tuple((i,) for i in every):  # channels last
        c.pass_on(node, moved.source)
        c.channels_last.add(node.name)
    elif k > 1 and axes in ((spatial, (k,)), ((k,), spatial)) and not _back_to_a_map(c, node, moved):
        # the positions as one axis: a sequence
        c.ops[node.name] = c._stand_in("Tokens", node, moved.source)
        c.sequences[node.name] = moved  # the map it lays out (an attention over the map's positions reads it)
        if axes[1] == (k,):
            c.channels_last.add(node.name)
    elif len(axes) == 1 and sorted(axes[0]) == list(every) and k > 0:  # every value along one axis
        c.ops[node.name] = c._stand_in("Flatten", node, moved.source)
    else:  # on the way to one of them
        c.layouts[node.name] = moved
    return True


def _sequence_to_map(c: _Converter, node, source) -> bool:
    """x.reshape(B, C, H, W) of a sequence (N, C, T) (or x.reshape(B, H, W, C) of (N, T, C)) with H·W = T: its
    positions become a map (`untokens(HxW)`), as CAFormer's attention stages lay their map back out."""
    if node.name in c.layouts or source.name not in c.ops or _name(node) not in ("reshape", "view", "unflatten"):
        return False
    shape, out = c.shapes[source.name], c.shapes[node.name]
    if len(shape) != 3 or source.name in c.pooled or len(out) not in (4, 5) or out[0] != shape[0]:
        return False
    last = source.name in c.channels_last
    channels, length = (shape[2], shape[1]) if last else (shape[1], shape[2])
    sizes = out[1:-1] if last else out[2:]
    if (out[-1] if last else out[1]) != channels or _product(sizes) != length:
        return False
    c.ops[node.name] = c._stand_in("Untokens", node, source, (shape[0], channels, length), sizes=tuple(sizes))
    if last:
        c.channels_last.add(node.name)
    return True


def _product(values) -> int:
    result = 1
    for v in values:
        result *= v
    return result


def _back_to_a_map(c: _Converter, node, layout: _Layout) -> bool:
    """An attention's output over a map's positions (`_attention_member`) on its way back to the map: it stays a
    layout while only reshapes and permutes use it (after dropout or drop path, `_layout_kept`)."""
    return _from_attention(c, layout.source) and all(
        _name(u) in _LAYOUT_METHODS and u.op in ("call_method", "call_function") for u in node.users
    )


# modules that change no value's place: on an attention's output laid out as a sequence of a map's positions they
# are the layer on the map, and their output is laid out alike (NextViT: drop_path(attn(x)).transpose().reshape())
_KEEP_LAYOUT = ("Dropout", "Identity", "DropPath", "StochasticDepth")


def _keeps_layout(c: _Converter, node) -> bool:
    return node.op == "call_module" and type(c.gm.get_submodule(node.target)).__name__ in _KEEP_LAYOUT


def _from_attention(c: _Converter, node) -> bool:
    """`node` is an attention's output, or that output after modules that keep its layout."""
    while _keeps_layout(c, node) and node.args and hasattr(node.args[0], "name"):
        node = node.args[0]
    return node.name in c.attention


def _layout_kept(c: _Converter, node) -> bool:
    """Dropout, drop path or identity on an attention's output laid out as a sequence of a map's positions
    (`_attention_member`): the module's layer on the map, its output laid out as its input."""
    source = node.args[0] if node.args and hasattr(node.args[0], "name") else None
    if source is None or not _keeps_layout(c, node) or not _from_attention(c, source):
        return False
    layout = c.layouts.get(source.name)
    if layout is None or not _module(c, node):
        return False
    c.layouts[node.name] = _Layout(node, layout.dims, layout.axes)
    return True


def _layout_refused(c: _Converter, node) -> bool:
    """Any other operation on a value in the middle of a reshape (a value split into heads or windows)."""
    if not any(getattr(a, "name", None) in c.layouts for a in node.args):
        return False
    source = next(a for a in node.args if getattr(a, "name", None) in c.layouts)
    raise ImportRefused(
        f"{_operation(node)} works on a {tuple(c.shapes.get(source.name, ()))} reshape of a "
        f"value, whose axes the language has no counterpart for"
    )


def _described(node) -> str:
    """An operation in the user's terms: `x.reshape(...)`, `torch.cat(...)`, `F.pad(...)`, module 'blocks.0.fc1'."""
    target = node.target
    if node.op == "call_method":
        return f"x.{target}(...)"
    if node.op == "call_module":
        return f"module '{target}'"
    if node.op == "get_attr":
        return f"'{target}'"
    name = getattr(target, "__name__", str(target))
    module = getattr(target, "__module__", "") or ""
    if module in ("_operator", "operator"):
        symbols = {"add": "+", "iadd": "+=", "mul": "*", "imul": "*=", "sub": "-", "truediv": "/", "matmul": "@"}
        if name == "getitem" and len(node.args) == 2:
            return f"indexing x[{_index_text(node.args[1])}]"
        return f"'{symbols[name]}'" if name in symbols else f"operator.{name}"
    if module.startswith("torch.nn.functional"):
        return f"F.{name}(...)"
    if module.startswith("torch") or module == "":
        return f"torch.{name}(...)"
    return f"{module}.{name}(...)"


def _index_text(index) -> str:
    """An index as Python writes it: `:, 0`, `..., 1:3`, `None`."""

    def one(i) -> str:
        if isinstance(i, slice):
            parts = ["" if v is None else str(v) for v in (i.start, i.stop, i.step)]
            return ":".join(parts[:2] if i.step is None else parts)
        if i is Ellipsis:
            return "..."
        return "t" if hasattr(i, "name") else str(i)  # a tensor index: its values are not read

    return ", ".join(one(i) for i in index) if isinstance(index, tuple) else one(index)


def _operation(node) -> str:
    """An operation in the user's terms with the module whose forward runs it: "module 'blocks.0' (Block):
    F.interpolate(...)", or "F.interpolate(...)" in the model's own forward."""
    return f"{_where_node(node)}{_described(node)}"


def _where_node(node) -> str:
    """The module whose forward runs `node`, for messages: "module 'blocks.3.attn' (Attention): "."""
    return where(node.meta.get("nn_module_stack"))


# -- parameters that forward reads itself: a class token, a table of positions, a scale


def _parameter_view(c: _Converter, node) -> bool:
    """A view of a parameter (self.gamma.reshape(1, -1, 1, 1), self.cls_token.expand(B, -1, -1)): the parameter,
    read by the operation that uses it."""
    source = node.args[0] if node.args and hasattr(node.args[0], "name") else None
    if source is None or _parameter_node(c, source) is None:
        return False
    if node.op != "call_method" or node.target not in _PARAMETER_VIEWS:
        return False
    c.param_views[node.name] = _parameter_node(c, source)
    return True


def _parameter_node(c: _Converter, node):
    """The get_attr node of a parameter that `node` is, or is a view of; None for any other value."""
    if getattr(node, "op", None) == "get_attr":
        return node
    name = getattr(node, "name", None)
    return c.param_views.get(name) if isinstance(name, str) else None


def _class_token(c: _Converter, node) -> bool:
    """torch.cat([cls_token.expand(N, -1, -1), x], dim=1): a learned vector before the positions (ViT); more
    than one (DeiT's class and distillation tokens; NaFlexViT's register tokens, a parameter (1, k, d)) is `cls`
    more than once: each prepends a learned vector of its own."""
    tensors, dim = node.args[0], node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    if not isinstance(tensors, (list, tuple)) or len(tensors) < 2 or dim not in (1, -2):
        return False
    *tokens, x = tensors
    if _parameter_node(c, x) is not None or x.name not in c.channels_last or len(c.shapes.get(x.name, ())) != 3:
        return False
    params = [_parameter_node(c, t) for t in tokens]
    if any(p is None for p in params):
        return False
    n, t, d = c.shapes[x.name]  # the module would see (N, d, T)
    rows = []  # each token's vector: one of a parameter (1, 1, d), every row of a parameter (1, k, d)
    for p, token in zip(params, tokens):
        weight, k = c.gm.get_parameter(p.target), c.shapes[token.name][1]
        if k == 1:
            rows.append(weight.reshape(-1)[:d] if weight.numel() == d else weight[0, 0])
        elif weight.dim() == 3 and tuple(weight.shape) == (1, k, d):
            rows += [weight[0, i] for i in range(k)]
        else:
            return False
    texts = [c._stand_in("ClassToken", node, x, (n, d, t), weight=row).text for row in rows]
    c.ops[node.name] = _Op(node.name, "layer", " > ".join(texts), [c._through(x)])
    c.channels_last.add(node.name)
    return True


def _class_block(c: _Converter, node) -> bool:
    """blk(x, cls) of a module whose kind takes the class token apart from the patches (`class_token_apart`: CaiT's
    class-attention blocks, timm's `cls = blk(x, cls)`, then `torch.cat((cls, x), dim=1)`). The language keeps the
    class token before the patches, one sequence: the first block's class token is the model's parameter (written
    `cls`, on x), each later one is the block before's, on the same x; the block's value is that whole sequence."""
    module = c.gm.get_submodule(node.target)
    kind = kinds.for_torch_module(module)
    apart = getattr(kind, "class_token_apart", None)
    if apart is None or not apart(module):
        return False
    tensors = _tensor_args(node)
    where = f"{_where_node(node)}module '{node.target}' ({type(module).__name__}) "
    if len(tensors) != 2 or len(node.args) != 2 or node.kwargs:
        raise ImportRefused(f"{where}takes {len(node.args)} arguments, not the patches and the class token")
    x, token = tensors
    shape, token_shape = tuple(c.shapes.get(x.name, ())), tuple(c.shapes.get(token.name, ()))
    if token.name in c.class_blocks:  # a block before: (N, 1, d) in the model, the whole sequence in the language
        token_shape = c.class_blocks[token.name][1]
    if x.name not in c.channels_last or len(shape) != 3 or token_shape != (shape[0], 1, shape[2]):
        raise ImportRefused(
            f"{where}takes {shape} and {token_shape}, not a sequence (N, T, d) of patches and one class token (N, 1, d)"
        )
    n, t, d = shape
    parameter = _parameter_node(c, token)
    if parameter is not None:  # the first block: the model's class token before the patches
        weight = c.gm.get_parameter(parameter.target)
        if tuple(weight.shape) != (1, 1, d):
            raise ImportRefused(f"{where}takes '{parameter.target}' of shape {tuple(weight.shape)} as its class token")
        prefixed = f"{node.name}_token"
        while prefixed in c.shapes or prefixed in c.ops:  # a name of its own, no node's
            prefixed += "_"
        c.ops[prefixed] = c._stand_in("ClassToken", node, x, (n, d, t), weight=weight[0, 0])
        c.ops[prefixed].name = prefixed
        c.shapes[prefixed] = (n, t + 1, d)
        c.channels_last.add(prefixed)
        sequence = type("N", (), {"name": prefixed})()
    elif c.class_blocks.get(token.name, ("",))[0] == x.name:  # a later block: the class token the block before gave
        sequence = token
    else:
        raise ImportRefused(
            f"{where}takes a class token that is neither a parameter of the model nor what a block of its kind "
            f"gave on the same patches; the language has no counterpart"
        )
    for user in node.users:  # the class token goes on to the next block, or before its patches, or is taken
        if not _takes_class_token(c, user, node, x):
            what = "the model returns as its output" if user.op == "output" else f"{_described(user)} uses"
            raise ImportRefused(
                f"{where}gives a class token that {what} otherwise than the next block of its kind, "
                f"torch.cat((token, x), dim=1) before the same patches or token[:, 0]; the language has no counterpart"
            )
    text = _module_text(module, f"module '{node.target}'", (n, d), (n, t + 1, d), None, node, (shape, token_shape))
    c.layer(node, sequence, text, module=node.target)
    c.channels_last.add(node.name)
    c.class_blocks[node.name] = (x.name, token_shape)
    return True


def _takes_class_token(c: _Converter, user, token, x) -> bool:
    """Whether `user` reads the class token `token` that a block computed on the patches `x` as the language's
    sequence (the class token before x) can stand for it: the next block on x, torch.cat((token, x), dim=1), or
    token[:, 0]."""
    if user.op == "call_module":
        kind = kinds.for_torch_module(c.gm.get_submodule(user.target))
        apart = getattr(kind, "class_token_apart", None)
        return apart is not None and apart(c.gm.get_submodule(user.target)) and list(user.args) == [x, token]
    if user.op == "call_function" and user.target is importlib.import_module("torch").cat:
        dim = user.kwargs.get("dim", user.args[1] if len(user.args) > 1 else 0)
        return list(user.args[0]) == [token, x] and dim in (1, -2)
    return user.target is operator.getitem and user.args[1] == (slice(None), 0)


def _class_block_joined(c: _Converter, node) -> bool:
    """torch.cat((cls, x), dim=1) after the last of CaiT's class-attention blocks (`_class_block`): the class token
    before the patches it was computed on, the value that block already is in the language."""
    tensors, dim = node.args[0], node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    if not isinstance(tensors, (list, tuple)) or len(tensors) != 2 or dim not in (1, -2):
        return False
    token, x = tensors
    if not hasattr(token, "name") or not hasattr(x, "name") or c.class_blocks.get(token.name, ("",))[0] != x.name:
        return False
    c.pass_on(node, token)
    c.channels_last.add(node.name)
    return True


def _position_table(c: _Converter, node) -> bool:
    """x + pos_embed: a learned table of positions added to a sequence (ViT)."""
    if len(node.args) != 2:
        return False
    params = [a for a in node.args if _parameter_node(c, a) is not None]
    values = [a for a in node.args if hasattr(a, "name") and _parameter_node(c, a) is None]
    if len(params) != 1 or len(values) != 1:
        return False
    x, table = values[0], params[0]
    shape, table_shape = c.shapes.get(x.name, ()), c.shapes.get(table.name, ())
    if not (x.name in c.channels_last and len(shape) == 3 and tuple(table_shape[-2:]) == tuple(shape[1:])):
        return False
    if any(d != 1 for d in table_shape[:-2]):
        return False
    try:
        c.gm.get_parameter(_parameter_node(c, table).target)
    except AttributeError:  # a fixed table (sines and cosines) in a buffer: no counterpart, posembed is learned
        raise ImportRefused(
            f"{_where_node(node)}adds '{_parameter_node(c, table).target}', a table that is not a parameter; "
            f"the language's table of positions is learned"
        ) from None
    weight = c.gm.get_parameter(_parameter_node(c, table).target)
    n, t, d = shape  # the module would see (N, d, T)
    rows = weight.reshape(table_shape[-2:])  # (T, d): NaFlexViT's grid (1, H, W, d) read as (1, H·W, d)
    _added(c, node, x, lambda: c._stand_in("PositionEmbedding", node, x, (n, d, t), weight=rows))
    c.channels_last.add(node.name)
    return True


@dataclass(frozen=True)
class _ResizedTable:
    """A parameter grid of positions that forward resizes with F.interpolate (NaFlexViT's pos_embed, (1, A, B, d)),
    followed through the views that lay it out as a sequence: `layout` is "map" ((1, d, H, W), as interpolate
    gives it), "cf" ((1, d, H·W), flattened) or "seq" ((1, H·W, d), transposed: what is added to the tokens)."""

    table: Any  # the parameter, as (1, A, B, d)
    grid: tuple  # (H, W)
    mode: str
    antialias: bool
    layout: str


def _table_resize(c: _Converter, node) -> bool:
    """F.interpolate(pos_embed.permute(0, 3, 1, 2), size=(H, W), mode=...) of a learned grid of positions: the
    table of posembed(A x B, resize=H x W), once forward adds it to the sequence (`_resized_position_table`)."""
    source = node.args[0] if node.args else node.kwargs.get("input")
    param = _parameter_node(c, source) if hasattr(source, "name") else None
    if param is None:
        return False
    try:
        weight = c.gm.get_parameter(param.target)
    except AttributeError:  # a buffer: not a learned table
        return False
    ins, outs = tuple(c.shapes.get(source.name, ())), tuple(c.shapes.get(node.name, ()))
    if len(ins) != 4 or len(outs) != 4 or ins[0] != 1 or outs[:2] != ins[:2] or weight.numel() != _numel(ins):
        return False
    mode = node.kwargs.get("mode", node.args[3] if len(node.args) > 3 else "nearest")
    corners = node.kwargs.get("align_corners", node.args[4] if len(node.args) > 4 else None)
    antialias = bool(node.kwargs.get("antialias", node.args[6] if len(node.args) > 6 else False))
    if mode not in ("nearest", "bilinear", "bicubic") or (corners and mode != "nearest"):
        raise ImportRefused(
            f"{_operation(node)} resizes the table '{param.target}' with mode '{mode}'"
            + (" and align_corners=True" if corners else "")
            + "; the language resizes a table of positions nearest, bilinear or bicubic, aligning the pixels' centres"
        )
    _, d, a, b = ins
    table = weight.reshape(1, d, a, b).permute(0, 2, 3, 1)  # the grid of vectors, as (1, A, B, d)
    c.resized[node.name] = _ResizedTable(table, outs[2:], mode, antialias, "map")
    return True


def _numel(shape: tuple) -> int:
    total = 1
    for n in shape:
        total *= n
    return total


def _resized_view(c: _Converter, node) -> bool:
    """What forward does to a resized table before adding it (NaFlexViT: `[:, :, :H, :W]` that keeps it whole,
    `.flatten(2).transpose(1, 2)`, `.to(dtype)`): the same table, laid out as a sequence."""
    if not any(getattr(a, "name", None) in c.resized for a in (*node.args, *node.kwargs.values())):
        return False
    target, rest = node.target, node.args[1:]
    if getattr(target, "__name__", target) in ("add", "iadd", "add_"):
        return False  # the sum: _resized_position_table
    source = node.args[0]
    table = c.resized.get(str(getattr(source, "name", "")))
    ins, outs = tuple(c.shapes.get(getattr(source, "name", None), ())), tuple(c.shapes.get(node.name, ()))
    layout = None
    if table is None:  # the table is an argument of another operation on another value
        pass
    elif node.op == "call_method" and target in _SAME_VALUE_METHODS and outs == ins:
        layout = table.layout
    elif node.op == "call_function" and target is operator.getitem and outs == ins:
        index = rest[0] if isinstance(rest[0], tuple) else (rest[0],)
        whole = all(
            isinstance(i, slice) and i.start in (None, 0) and i.step in (None, 1) and (i.stop is None or i.stop >= n)
            for i, n in zip(index, ins)
        )
        layout = table.layout if whole and len(index) <= len(ins) else None
    elif node.op == "call_method" and target in _LAYOUT_METHODS and table.layout == "map":
        # x.flatten(2) (or a view to that shape): the grid's positions row by row
        layout = "cf" if outs == (*ins[:2], ins[2] * ins[3]) else None
    elif node.op == "call_method" and target in ("transpose", "swapaxes") and table.layout == "cf":
        if set(rest) == {1, 2} and outs == (ins[0], ins[2], ins[1]):
            layout = "seq"
    elif node.op == "call_method" and target == "permute" and table.layout == "cf":
        swapped = tuple(rest) in ((0, 2, 1), ((0, 2, 1),)) and outs == (ins[0], ins[2], ins[1])
        layout = "seq" if swapped else None
    if layout is None:
        raise ImportRefused(
            f"{_operation(node)} works on a table of positions that forward resized; the language adds the resized "
            f"table to the sequence's positions row by row, and nothing else"
        )
    assert table is not None  # a layout was found for it
    c.resized[node.name] = _ResizedTable(table.table, table.grid, table.mode, table.antialias, layout)
    return True


def _resized_position_table(c: _Converter, node) -> bool:
    """x + a resized table laid out as a sequence (1, H·W, d), or x.add_(it) (NaFlexViT, whose result forward does
    not use: then x must be a value passed on, an Identity, which becomes the sum from here on):
    posembed(A x B, resize=H x W, MODE)."""
    if len(node.args) != 2 or not all(hasattr(a, "name") for a in node.args):
        return False
    tables = [a for a in node.args if a.name in c.resized]
    values = [a for a in node.args if a.name not in c.resized]
    if len(tables) != 1 or len(values) != 1:
        return False
    table, x = c.resized[tables[0].name], values[0]
    shape = tuple(c.shapes.get(x.name, ()))
    h, w = table.grid
    d = table.table.shape[3]
    if table.layout != "seq" or x.name not in c.channels_last or len(shape) != 3 or shape[1:] != (h * w, d):
        raise ImportRefused(
            f"{_operation(node)} adds a table of positions that forward resized to a value that is not a sequence "
            f"of its {h}·{w} positions row by row; the language cannot say it"
        )
    n = shape[0]
    stand_in = {"table": table.table, "grid": (h, w), "mode": table.mode, "antialias": table.antialias}
    _added(c, node, x, lambda: c._stand_in("ResizedPositionEmbedding", node, x, (n, d, h * w), **stand_in))
    c.channels_last.add(node.name)
    return True


def _added(c: _Converter, node, x, make: Callable[[], _Op]) -> None:
    """Records the op `make()` builds for the sum `node` of x and a table of positions. For x.add_(table) in place
    (NaFlexViT's, whose result forward does not use: torch.fx records a node nothing uses, and the later uses of x
    read x itself), x must be a value passed on (an Identity), which becomes the sum from here on; otherwise the
    import is refused."""
    if not (node.op == "call_method" and node.target == "add_"):
        c.ops[node.name] = make()
        return
    op = c.ops.get(x.name)
    if (
        node.users
        or node.args[0] is not x
        or op is None
        or not (op.kind == "skip" or (op.kind == "layer" and op.text == kinds.identity_name()))
        or len(op.inputs) != 1
    ):
        raise ImportRefused(
            f"{_operation(node)} adds a table of positions to {_described(x)} in place (add_), after which the "
            f"traced graph does not show which uses see the sum; the language cannot say it"
        )
    c.ops[x.name] = _Op(x.name, "skip", inputs=list(op.inputs))
    c.ops[node.name] = make()
    del c.ops[x.name]  # moved after the sum, which it now passes on
    c.ops[x.name] = _Op(x.name, "skip", inputs=[node.name])


def _map_position_table(c: _Converter, node) -> bool:
    """x + pos_embed of a channels-first map (N, C, H, W) and a learned (1, C, H, W) (timm's Visformer): one
    vector for each position of the map, row by row, as posembed(H·W) on a map."""
    if len(node.args) != 2:
        return False
    params = [a for a in node.args if _parameter_node(c, a) is not None]
    values = [a for a in node.args if hasattr(a, "name") and _parameter_node(c, a) is None]
    if len(params) != 1 or len(values) != 1:
        return False
    x, table = values[0], params[0]
    shape, table_shape = c.shapes.get(x.name, ()), tuple(c.shapes.get(table.name, ()))
    if x.name in c.channels_last or x.name in c.layouts or x.name in c.pooled or len(shape) != 4:
        return False
    if table_shape != (1, *shape[1:]):
        return False
    try:
        weight = c.gm.get_parameter(_parameter_node(c, table).target)
    except AttributeError:  # a fixed table in a buffer: posembed is learned
        return False
    table_rows = weight[0].flatten(1).t()  # (H·W, C): position i·W + j is row i·W + j
    c.ops[node.name] = c._stand_in("PositionEmbedding", node, x, weight=table_rows)
    return True


def _last_map_position_table(c: _Converter, node) -> bool:
    """x + pos_embed of a channels-last map (N, H, W, C) and a learned (1, H, W, C) (timm's VOLO): one vector for
    each position of the map, row by row, as posembed(H·W) on a map."""
    if len(node.args) != 2:
        return False
    params = [a for a in node.args if _parameter_node(c, a) is not None]
    values = [a for a in node.args if hasattr(a, "name") and _parameter_node(c, a) is None]
    if len(params) != 1 or len(values) != 1:
        return False
    x, table = values[0], params[0]
    shape, table_shape = c.shapes.get(x.name, ()), tuple(c.shapes.get(table.name, ()))
    if x.name not in c.channels_last or x.name in c.layouts or x.name in c.pooled or len(shape) != 4:
        return False
    if table_shape != (1, *shape[1:]):
        return False
    try:
        weight = c.gm.get_parameter(_parameter_node(c, table).target)
    except AttributeError:  # a fixed table in a buffer: posembed is learned
        return False
    n, h, w, d = shape
    table_rows = weight[0].reshape(h * w, d)  # (H·W, C): position i·W + j is row i·W + j
    c.ops[node.name] = c._stand_in("PositionEmbedding", node, x, (n, d, h, w), weight=table_rows)
    c.channels_last.add(node.name)
    return True


def _token_select(c: _Converter, node) -> bool:
    """x[:, 0] and x[:, -1] of a sequence: its first or last position (ViT's class token)."""
    source, index = _known_source(c, node), node.args[1]
    if source is None or source.name not in c.channels_last or len(c.shapes.get(source.name, ())) != 3:
        return False
    if not (isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None) and index[1] in (0, -1)):
        return False
    c.ops[node.name] = c._stand_in("Select", node, source, index=index[1])
    return True


def _token_rest(c: _Converter, node) -> bool:
    """x[:, k:] of a sequence: all but its first k positions (timm's x[:, num_prefix_tokens:] before averaging the
    tokens: `rest(k)`); x[:, 0:] keeps every position, the value itself."""
    source, index = _known_source(c, node), node.args[1]
    shape: tuple = c.shapes.get(source.name, ()) if source is not None else ()
    if source is None or source.name not in c.channels_last or len(shape) != 3 or not isinstance(index, tuple):
        return False
    if len(index) < 2 or index[0] != slice(None) or any(i not in (slice(None), Ellipsis) for i in index[2:]):
        return False  # x[:, k:] or x[:, k:, ...] (CrossViT)
    kept = index[1]
    if not (isinstance(kept, slice) and kept.stop is None and kept.step in (None, 1)):
        return False
    if not (isinstance(kept.start, int) and 0 <= kept.start < shape[1]):
        return False
    if kept.start == 0:
        c.pass_on(node, source)
    else:
        c.ops[node.name] = c._stand_in("Rest", node, source, skipped=kept.start)
    c.channels_last.add(node.name)
    return True


def _token_prefix(c: _Converter, node) -> bool:
    """x[:, :k] of a sequence: its first k positions alone (PiT's and CoaT's class token kept apart from the tokens
    of the map: `prefix(k)`)."""
    source, index = _known_source(c, node), node.args[1]
    shape: tuple = c.shapes.get(source.name, ()) if source is not None else ()
    if source is None or source.name not in c.channels_last or len(shape) != 3 or not isinstance(index, tuple):
        return False
    if len(index) < 2 or index[0] != slice(None) or any(i not in (slice(None), Ellipsis) for i in index[2:]):
        return False  # x[:, :k] or x[:, 0:k, ...] (CrossViT)
    kept = index[1]
    if not (isinstance(kept, slice) and kept.start in (None, 0) and kept.step in (None, 1)):
        return False
    if not (isinstance(kept.stop, int) and kept.stop > 0):
        return False
    if kept.stop >= shape[1]:
        c.pass_on(node, source)
    else:
        c.ops[node.name] = c._stand_in("Prefix", node, source, kept=kept.stop)
    c.channels_last.add(node.name)
    return True


def _sequence_concat(c: _Converter, node) -> bool:
    """torch.cat of sequences (N, T, d) along their positions (dim 1): `seqcat(A | B)` (PiT's class token and the
    pooled map's tokens, CoaT's class token and the tokens after its convolutional position encoding)."""
    tensors, dim = node.args[0], node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    if not isinstance(tensors, (list, tuple)) or len(tensors) < 2 or not all(hasattr(a, "name") for a in tensors):
        return False
    if any(len(c.shapes.get(a.name, ())) != 3 or _parameter_node(c, a) is not None for a in tensors):
        return False
    last = all(a.name in c.channels_last for a in tensors)
    first = not any(a.name in c.channels_last or a.name in c.layouts or a.name in c.pooled for a in tensors)
    if not ((last and dim in (1, -2)) or (first and dim in (2, -1))):  # (N, T, d) or paramsym's export's (N, d, T)
        return False
    stack = list((node.meta.get("nn_module_stack") or {}).values())
    c.ops[node.name] = _Op(
        node.name, _SEQCAT, inputs=[c._through(a) for a in tensors], module=stack[-1][0] if stack else ""
    )
    if last:
        c.channels_last.add(node.name)
    return True


def _sequence_mean(c: _Converter, node) -> bool:
    """x.mean(1) of a sequence, x.mean((1, 2)) of a channels-last map, x.mean((2, 3)) of a channels-first map
    (timm's PVT v2 head): global average pooling."""
    source = _known_source(c, node)
    if source is None or node.name not in c.shapes or source.name not in c.shapes:
        return False
    last = source.name in c.channels_last
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    rank = len(c.shapes[source.name])
    dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
    spatial = list(range(1, rank - 1)) if last else list(range(2, rank))
    if node.kwargs.get("keepdim") or sorted(d % rank for d in dims) != spatial:
        return False
    if not last and (rank < 3 or source.name in c.layouts or source.name in c.pooled):
        return False  # a vector, a value in the middle of a reshape, a pooled value: no positions to average
    cls = "AdaptiveAvgPool1d" if last else f"AdaptiveAvgPool{rank - 2}d"
    c.ops[node.name] = c._stand_in(cls, node, source, output_size=1)
    return True


def _sequence_max(c: _Converter, node) -> bool:
    """x.max(1) / torch.max(x, 1) of a sequence (N, T, d), of which the model takes the values, [0] (timm's VOLO's
    token-labelling head): global max pooling (`_max_values` takes the [0])."""
    source = _known_source(c, node)
    if source is None or source.name not in c.channels_last or source.name in c.pooled:
        return False
    shape = c.shapes.get(source.name, ())
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    if len(shape) != 3 or not isinstance(dims, int) or dims % 3 != 1 or node.kwargs.get("keepdim"):
        return False
    if len(node.args) > 2 or any(key not in ("dim", "keepdim") for key in node.kwargs):
        return False
    users = list(node.users)
    if not users or any(_name(u) != "getitem" or u.args[1] != 0 for u in users):
        return False  # the indices of the maxima: no counterpart
    c.ops[node.name] = c._stand_in("AdaptiveMaxPool1d", node, source, (shape[0], shape[2], shape[1]), output_size=1)
    return True


def _max_values(c: _Converter, node) -> bool:
    """The values, [0], of a max that `_sequence_max` read as global max pooling."""
    import torch

    source = node.args[0]
    if not hasattr(source, "op") or node.args[1] != 0 or source.name not in c.ops:
        return False
    if not ((source.op, source.target) == ("call_method", "max") or source.target is torch.max):
        return False
    c.pass_on(node, source)
    return True


# -- tables that a module makes from sizes alone (XCiT's Fourier positions: module(B, H, W)), read where added


def _generated_table(c: _Converter, node) -> bool:
    """module(B, H, W) of a kind that `generates_table`: a table (N, d, H, W) independent of the input, read where
    forward adds it (`_generated_addition`); `_table_view` follows it through the reshape that makes it tokens."""
    module = c.gm.get_submodule(node.target)
    kind = kinds.for_torch_module(module)
    if kind is None or not getattr(kind, "generates_table", False) or _tensor_args(node):
        return False
    shape = tuple(c.shapes.get(node.name, ()))
    if len(shape) != 4:
        raise ImportRefused(f"{_where_node(node)}makes a table of shape {shape}, not a map (N, d, H, W)")
    c.tables[node.name] = (module, shape, "map")
    return True


def _table_view(c: _Converter, node) -> bool:
    """The generated table made a sequence as the tokens of a map are: reshape(N, d, H·W), then permute(0, 2, 1)
    or transpose(1, 2); any other rearrangement is refused."""
    source = node.args[0] if node.args and hasattr(node.args[0], "name") else None
    if source is None or source.name not in c.tables:
        return False
    module, shape, form = c.tables[source.name]
    n, d, h, w = shape
    out = tuple(c.shapes.get(node.name, ()))
    swap = tuple(a % 3 for a in node.args[1:] if isinstance(a, int))
    if form == "map" and node.target in ("reshape", "view") and out == (n, d, h * w):
        form = "flat"
    elif (
        form == "flat"
        and out == (n, h * w, d)
        and (
            (node.target == "permute" and swap == (0, 2, 1)) or (node.target == "transpose" and sorted(swap) == [1, 2])
        )
    ):
        form = "sequence"
    else:
        raise ImportRefused(
            f"{_operation(node)} rearranges the table that {type(module).__name__} makes other than as the positions "
            f"of its map row by row, the order in which the language adds it"
        )
    c.tables[node.name] = (module, shape, form)
    return True


def _generated_addition(c: _Converter, node) -> bool:
    """x + table, the table a module made (`_generated_table`): on a sequence (N, H·W, d) as tokens, or on the map
    (N, d, H, W) itself; the kind of the module writes the layer."""
    tensors = [a for a in node.args if hasattr(a, "name")]
    tables = [a for a in tensors if a.name in c.tables]
    if len(node.args) != 2 or len(tensors) != 2 or len(tables) != 1:
        return False
    x = next(a for a in tensors if a.name not in c.tables)
    module, shape, form = c.tables[tables[0].name]
    _, d, h, w = shape
    xs = tuple(c.shapes.get(x.name, ()))
    on_sequence = form == "sequence" and x.name in c.channels_last and xs[1:] == (h * w, d)
    on_map = form == "map" and x.name not in c.channels_last and xs[1:] == (d, h, w) and x.name not in c.layouts
    if x.name not in c.ops or not (on_sequence or on_map):
        raise ImportRefused(
            f"{_where_node(node)}adds the table that {type(module).__name__} makes to {_described(x)}, not to the "
            f"positions of the sequence or map it encodes"
        )
    text = _module_text(module, _operation(node), shape, shape)
    if on_sequence:
        c.channels_last.add(node.name)
    return c.layer(node, x, text)


# Modules and functions that do nothing in evaluation, read as nothing while no kind claims them
_EVAL_IDENTITY = ("stochastic_depth",)


def _vector_text(text: str) -> bool:
    """Whether a layer written `text` leaves a vector (global pooling): what PyTorch keeps as (N, C, 1, 1)."""
    found = kinds.lookup(re.match(r"[a-z0-9_]*", text).group()) if text else None
    return found is not None and getattr(found[0], "to_vector", False)


def _function_text(node, in_shape, out_shape) -> str | None:
    """The layer for a call of a torch function or tensor method, or None when no kind takes it."""
    target = node.target
    if node.op == "call_function":
        if not getattr(target, "__module__", "") or not target.__module__.startswith("torch"):
            return None
        name = getattr(target, "__name__", None)
    elif node.op == "call_method":
        name = target
    else:
        return None
    kind = kinds.for_torch_function(name)
    if kind is None:
        return "" if name in _EVAL_IDENTITY else None
    return kind.from_torch_function(name, node, ImportContext(_operation(node), in_shape, out_shape))


# ---- the table of operation handlers ------------------------------------------------------------------
#
# Each node of the traced graph goes to the handlers of what it runs, as fvcore's jit_handles do
# ("aten::addmm": handler): a function (torch.cat), a tensor method by name ("chunk"; torch.chunk is the same
# name), a class it calls (a tuple of outputs), a module by its classes (torch.nn.Module: every module, read by
# the kind that claims it), or a graph input or parameter by the op ("placeholder", "get_attr"). A handler
# takes (converter, node) and returns True when it has read the node (recorded an op of the language, or a
# state that later nodes read: a size, the pieces of a split, a channel shuffle under way), False to leave the
# node to the next row; it raises ImportRefused, naming the node, when the language cannot say what it sees.
# Rows are tried in the order of the table. A dotted key names an object ("torch.cat" is torch.cat, looked up
# when an import starts, so that paramsym does not need torch to load); a key without a dot is a name.

Handler = Callable[["_Converter", Any], bool]
ANY = "*"  # the key of a row tried for every node


def _name(node):
    """What a node runs, by name: a tensor method's name, a function's __name__ (None for a module)."""
    return node.target if node.op == "call_method" else getattr(node.target, "__name__", None)


def _tensor_args(node) -> list:
    return [a for a in node.args if hasattr(a, "name")]


def _known_source(c: _Converter, node):
    """The node's first argument when it is a value the importer has read (an op, the pieces of a split, a
    channel shuffle under way), else None."""
    source = node.args[0] if node.args and hasattr(node.args[0], "name") else None
    if source is None or all(source.name not in known for known in (c.ops, c.pieces, c.shuffling)):
        return None
    return source


def _shuffled_source(c: _Converter, node):
    """The node's first argument when it is a value in the middle of a channel shuffle, else None."""
    source = _known_source(c, node)
    return source if source is not None and source.name in c.shuffling else None


# -- the graph's inputs, parameters and outputs


def _check(c: _Converter, node) -> bool:
    """torch._assert(...) and the checks of forward's arguments at their defaults (is_causal == False): nothing
    to read."""
    import torch

    checks = (torch._assert, getattr(torch.fx._symbolic_trace, "_assert_is_none", None))
    return node.name not in c.shapes and all(
        user.op == "call_function" and user.target in checks for user in node.users
    )


def _input(c: _Converter, node) -> bool:
    c.ops[node.name] = _Op(node.name, "input")
    return True


def _outputs_tuple(c: _Converter, node) -> bool:
    """InceptionOutputs(x, aux): the model's outputs, read by the output (`_Converter._output`)."""
    c.ops[node.name] = _Op(node.name, "skip")
    return True


def _parameter(c: _Converter, node) -> bool:
    """A parameter, read by the operation that uses it (layer scale)."""
    return True


# -- products


def _is_product(node) -> bool:
    """x * y as _layer_scale and _gate read it (a product of two arguments)."""
    import torch

    return (
        node.target in (operator.mul, torch.mul) or (node.op == "call_method" and node.target in ("mul", "mul_"))
    ) and len(node.args) == 2


def _constant_factor(c: _Converter, node) -> bool:
    """x * 0.2, 0.2 * x, x.mul_(gamma), x / 2 with a Python number (NF-ResNet's alpha and beta, NFNet's gamma after
    an activation, RepViT's (head(x) + head_dist(x)) / 2): read as nothing, as it changes no count (no parameters,
    and FlopCounterMode counts no product by a number; docs/language.md, Scalar factors)."""
    tensors = _tensor_args(node)
    if len(node.args) != 2 or len(tensors) != 1 or node.kwargs:
        return False
    if _name(node) in ("truediv", "div", "div_") and node.args[0] is not tensors[0]:
        return False  # a number divided by a value is no factor
    number = next(a for a in node.args if a is not tensors[0])
    source = tensors[0]
    if isinstance(number, bool) or not isinstance(number, (int, float)) or source.name not in c.ops:
        return False
    c.pass_on(node, source)
    for values in (c.pooled, c.channels_last):
        if source.name in values:
            values.add(node.name)
    return True


def _layer_scale(c: _Converter, node) -> bool:
    """x * a parameter of one factor per channel (ConvNeXt's layer_scale, of shape (C, 1, 1)), or of one factor for
    every channel (`scale(shared)`: NF-ResNet's skipinit_gain, of shape ())."""
    if len(node.args) != 2:
        return False
    scale = next((a for a in node.args if _parameter_node(c, a) is not None), None)
    other = next((a for a in node.args if hasattr(a, "name") and a is not scale), None)
    factor = scale
    scale = _parameter_node(c, scale) if scale is not None else None
    if scale is None or other is None or factor is None:
        return False
    weight = _scale_weight(c, node, scale)
    along = tuple(c.shapes.get(factor.name) or weight.shape)
    if _sequence_first(c, other) and weight.numel() != 1 and along[-1:] == (weight.numel(),):
        other = _transposed(c, node, other)  # factors along the last axis of (N, C, T): ResMLP's ls1 * mixed tokens
    shape = tuple(c.shapes[other.name])
    axis = len(shape) - 1 if other.name in c.channels_last else 1
    channels = shape[axis]
    # broadcasting aligns the factor's shape with the value's from the right: a (C,) factor on (N, C, H, W) acts
    # along W, which only the sizes can tell apart from the channels when W == C
    aligned = (1,) * (len(shape) - len(along)) + tuple(along)  # the factor as used (after a view of the weight)
    per_channel = len(aligned) == len(shape) and all(
        size == (channels if i == axis else 1) for i, size in enumerate(aligned)
    )
    if weight.numel() != 1 and not per_channel:
        raise ImportRefused(
            f"{_operation(node)} multiplies by a parameter of shape "
            f"{tuple(weight.shape)}, neither one factor per channel nor one for every channel"
        )
    if node.op == "call_method" and node.target == "mul_":
        return _in_place_scale(c, node, other, weight)
    # on channels last ((N, H, W, C): EdgeNeXt's gamma * x, MetaFormer's Scale), the kind sees the channels
    seen = (c.shapes[other.name][0], channels) if other.name in c.channels_last else None
    c.ops[node.name] = c._stand_in("LayerScale", node, other, seen, weight=weight.flatten())
    if other.name in c.channels_last:
        c.channels_last.add(node.name)
    return True


def _in_place_scale(c: _Converter, node, other, weight) -> bool:
    """x.mul_(gain) (NFNet's skipinit: `out.mul_(self.skipinit_gain)`, whose result forward does not use): torch.fx
    records a node that nothing uses, and the later uses of x read x itself. When x is a value passed on (drop_path's
    Identity), x becomes the scaled value from here on; otherwise the import is refused."""
    op = c.ops.get(other.name)
    if (
        node.users
        or op is None
        or not (op.kind == "skip" or (op.kind == "layer" and op.text == kinds.identity_name()))
        or len(op.inputs) != 1
    ):
        raise ImportRefused(
            f"{_operation(node)} scales {_described(other)} in place (mul_), after which the traced graph does not "
            f"show which uses see the scaled value; the language cannot say it"
        )
    c.ops[other.name] = _Op(other.name, "skip", inputs=list(op.inputs))  # an Identity: nothing
    c.ops[node.name] = c._stand_in("LayerScale", node, other, weight=weight.flatten())
    del c.ops[other.name]  # moved after the scale, which it now passes on
    c.ops[other.name] = _Op(other.name, "skip", inputs=[node.name])
    if other.name in c.channels_last:
        c.channels_last.add(node.name)
    return True


def _scale_weight(c: _Converter, node, scale):
    try:
        return c.gm.get_parameter(scale.target)
    except AttributeError:  # a buffer or a constant (FrozenBatchNorm's statistics), not a learnt scale
        raise ImportRefused(
            f"{_operation(node)} multiplies by '{scale.target}', which is not a "
            f"parameter; the language has no counterpart"
        ) from None


def _gate(c: _Converter, node) -> bool:
    """A gate (squeeze-and-excitation): the product of two values computed from one."""
    tensors = _tensor_args(node)
    if len(tensors) != 2 or len(node.args) != 2 or any(a.op == "get_attr" for a in tensors):
        return False
    tensors = _one_layout(c, node, tensors)
    c.ops[node.name] = _Op(node.name, _MUL, inputs=[c._through(a) for a in tensors])
    if all(a.name in c.pooled for a in tensors):
        c.pooled.add(node.name)
    if all(a.name in c.channels_last for a in tensors):
        c.channels_last.add(node.name)  # a gate on (N, H, W, C) stays channels last (MambaOut, gMLP)
    return True


# -- values passed on


def _broadcast_axes(c: _Converter, node) -> bool:
    """x[..., None, None]: a vector given axes of 1 to broadcast over a map (paramsym's exported gate)."""
    source, index = _known_source(c, node), node.args[1]
    if not (
        source is not None
        and isinstance(index, tuple)
        and index
        and source.name in c.ops
        and all(i is Ellipsis or i is None for i in index)
    ):
        return False
    c.pass_on(node, source)
    if len(c.shapes.get(source.name, ())) == 2 or source.name in c.pooled:
        c.pooled.add(node.name)
    return True


def _whole_slice(c: _Converter, node) -> bool:
    """x[..., :H, :W] that keeps every element (a crop to the size the value already has: cpubone's attention
    crops its upsampling's output, which overshoots only on some input sizes): the same value. A crop that
    removes anything is not this handler's."""
    source, index = _known_source(c, node), node.args[1]
    if source is None or source.name not in c.ops:
        return False
    index = index if isinstance(index, tuple) else (index,)
    plain = all(i is Ellipsis or (isinstance(i, slice) and i.start in (None, 0) and i.step in (None, 1)) for i in index)
    if not plain or c.shapes.get(node.name) != c.shapes.get(source.name):
        return False
    c.pass_on(node, source)
    return _carry_marks(c, node, source)


def _contiguous(c: _Converter, node) -> bool:
    """x.contiguous(), x.clone(), and casts (x.float(), x.to(dtype), x.type_as(y)): the same value."""
    source = _known_source(c, node)
    if node.op != "call_method" or source is None or source.name not in c.ops:
        return False
    if c.shapes.get(node.name) != c.shapes.get(source.name):
        return False
    c.pass_on(node, source)
    return _carry_marks(c, node, source)


def _moved_channels(c: _Converter, node) -> bool:
    """x.movedim(...): ChannelsLast / FlattenChannelsLast (paramsym's own export) move channels around a module,
    which reads its input's shape as a vector's (`_module_input_shape`)."""
    if node.op != "call_method":
        return False
    return c.pass_on(node, _tensor_args(node)[0])


# -- channel splits (ShuffleNetV2)


def _piece_sizes(method: str, channels: int, part) -> list:
    """The channels of each piece of x.chunk(part, 1) or x.split(part, 1)."""
    if method == "chunk":
        step = -(-channels // part)
        return [min(step, channels - i) for i in range(0, channels, step)]
    if isinstance(part, int):
        return [part] * (channels // part) + ([channels % part] if channels % part else [])
    return list(part)


def _channel_split(c: _Converter, node) -> bool:
    """x.chunk(n, 1), x.split(s, 1): the channel ranges of the pieces, each read by an item (`_channel_slice`)."""
    source = _known_source(c, node)
    shape = c.shapes.get(source.name, ()) if source is not None else ()
    if len(shape) <= 2:
        return False
    args = node.args
    dim = args[2] if len(args) > 2 else node.kwargs.get("dim", 0)
    axis = len(shape) - 1 if source.name in c.channels_last else 1  # channels last: the last axis (gMLP, MambaOut)
    if dim % len(shape) != axis:
        raise ImportRefused(f"{_where_node(node)}{_described(node)} splits axis {dim}, not the channels")
    sizes = _piece_sizes(_name(node), shape[axis], args[1])
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    c.pieces[node.name] = (source, [(a, a + n) for a, n in zip(starts, sizes)])
    return True


def _channel_slice(c: _Converter, node) -> bool:
    """pieces[i]: a slice of the channels, or the whole value."""
    source = _known_source(c, node)
    if source is None or source.name not in c.pieces:
        return False
    whole, ranges = c.pieces[source.name]
    start, end = ranges[node.args[1]]
    if (start, end) == (0, c.shapes[whole.name][-1 if whole.name in c.channels_last else 1]):
        c.pass_on(node, whole)
    else:
        c.ops[node.name] = c._stand_in("ChannelSlice", node, whole, start=start, end=end)
    return _carry_marks(c, node, whole)


def _carry_marks(c: _Converter, node, source) -> bool:
    """`node`'s value is laid out as `source`'s: channels last, or a pooled vector kept as (N, C, 1, 1)."""
    for marks in (c.channels_last, c.pooled):
        if source.name in marks:
            marks.add(node.name)
    return True


def _transposed(c: _Converter, node, source, suffix: str = ""):
    """`source`, a sequence held channels first ((N, C, T): its channels on axis 1), as the sequence of its positions
    and channels swapped (`transpose`), which PyTorch holds channels last: what `node` reads when it acts on the last
    axis of `source` (an nn.Linear over the positions, MLP-Mixer's token mixing), or when it joins `source` with a
    value of that layout. The transpose is an op of its own, before `node`; the value read in its place is returned."""
    from types import SimpleNamespace

    name = f"{node.name}_transposed{suffix}"
    if name not in c.ops:
        text = _module_text(type("Transpose", (), {})(), _operation(node), c.shapes[source.name], ())
        c.ops[name] = _Op(name, "layer", text, [c._through(source)], described=_operation(node))
        c.shapes[name] = c.shapes[source.name]
        c.channels_last.add(name)
    return SimpleNamespace(name=name, op="call_function", target=None, args=(), kwargs={}, users={}, meta=node.meta)


def _sequence_first(c: _Converter, value) -> bool:
    """Whether `value` is a sequence that PyTorch holds channels first, (N, C, T) (the channels on axis 1); not
    x.movedim(1, -1) (paramsym's ChannelsLast, whose module reads its input as a vector's: `_module_input_shape`)."""
    moved = getattr(value, "op", "") == "call_method" and getattr(value, "target", "") == "movedim"
    return (
        not moved
        and len(c.shapes.get(value.name, ())) == 3
        and value.name in c.ops
        and value.name not in c.channels_last
        and value.name not in c.pooled
    )


def _one_layout(c: _Converter, node, tensors: list) -> list:
    """The values a merge joins, each a sequence in one layout: where some are held channels last (N, T, d) and
    others channels first (N, d, T), PyTorch joins each of the others' channels with the positions of the first
    (MLP-Mixer's x + mlp_tokens(x.transpose(1, 2)).transpose(1, 2)): those are transposed (`_transposed`)."""
    if not any(a.name in c.channels_last for a in tensors) or not all(
        a.name in c.channels_last or _sequence_first(c, a) for a in tensors
    ):
        return tensors
    return [a if a.name in c.channels_last else _transposed(c, node, a, str(i)) for i, a in enumerate(tensors)]


def _channel_index(c: _Converter, node) -> bool:
    """x[:, a:b] (x[:, a:b, :, :], x[..., a:b] channels last): channels a to b - 1 of a value, or all of them."""
    source, index = _known_source(c, node), node.args[1]
    if source is None or source.name not in c.ops or source.name not in c.shapes:
        return False
    shape = c.shapes[source.name]
    axis = len(shape) - 1 if source.name in c.channels_last else 1
    index = index if isinstance(index, tuple) else (index,)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (len(shape) - len(index) + 1) + index[at + 1 :]
    index = index + (slice(None),) * (len(shape) - len(index))
    if len(index) != len(shape) or not all(isinstance(i, slice) for i in index):
        return False
    if any(i != slice(None) for n, i in enumerate(index) if n != axis) or index[axis].step not in (None, 1):
        return False
    start, end, _ = index[axis].indices(shape[axis])
    if start >= end:
        return False
    if (start, end) == (0, shape[axis]):
        c.pass_on(node, source)
    else:
        c.ops[node.name] = c._stand_in("ChannelSlice", node, source, start=start, end=end)
    return _carry_marks(c, node, source)


# -- a channel shuffle: x.view(n, g, c/g, h, w) > transpose(1, 2) > (contiguous) > view(n, c, h, w)


# the permutes of timm's batch_patchify: each patch's values channels last (NaFlexViT) or channels first (Gemma 4)
_PATCH_ORDERS = ((0, 2, 4, 3, 5, 1), (0, 2, 4, 1, 3, 5))


def _patchify(c: _Converter, node) -> bool:
    """x.view(N, C, H/p, p, W/p, p).permute(0, 2, 4, 3, 5, 1).reshape(N, H/p·W/p, p·p·C) of a channels-first map
    (timm's batch_patchify, NaFlexViT's and Gemma 4's patch embedding; or permute(0, 2, 4, 1, 3, 5)): each p x p
    patch becomes one position of p²·C values, row by row: `space2depth(p) > tokens` (the values of a patch in
    another order, which counts the same). Read at the view, looking ahead at the permute and the reshape."""
    if node.name in c.patchifying:  # the permute or the reshape of a patchify read at its view
        if c.patchifying[node.name] is not None:
            source, p = c.patchifying[node.name]
            n, channels, height, width = c.shapes[source.name]
            patches = c._stand_in("SpaceToDepth", node, source, block=p)
            tokens = c._stand_in("Tokens", node, source, (n, p * p * channels, height // p, width // p))
            c.ops[node.name] = _Op(node.name, "layer", f"{patches.text} > {tokens.text}", [c._through(source)])
            c.channels_last.add(node.name)
        return True
    source = node.args[0] if node.args and hasattr(node.args[0], "name") else None
    if source is None or _name(node) not in ("view", "reshape") or source.name not in c.ops:
        return False
    if source.name in c.channels_last or source.name in c.pooled or source.name in c.layouts:
        return False
    shape, out = c.shapes.get(source.name, ()), c.shapes.get(node.name, ())
    if len(shape) != 4 or len(out) != 6 or out[:3] != shape[:2] + (out[2],) or out[3] != out[5]:
        return False
    n, channels, rows, p, columns = out[:5]
    if (rows * p, columns * p) != tuple(shape[2:]) or len(node.users) != 1:
        return False
    (permute,) = node.users
    order = tuple(permute.args[1]) if len(permute.args) == 2 else tuple(permute.args[1:])
    if _name(permute) != "permute" or order not in _PATCH_ORDERS or len(permute.users) != 1:
        return False
    (flat,) = permute.users
    if _name(flat) not in ("reshape", "view") or c.shapes.get(flat.name) != (n, rows * columns, p * p * channels):
        return False
    c.patchifying.update({node.name: None, permute.name: None, flat.name: (source, p)})
    return True


def _shuffle_begins(c: _Converter, node) -> bool:
    source = _known_source(c, node)
    shape = c.shapes.get(source.name, ()) if source is not None else ()
    out = c.shapes.get(node.name, ())
    if not (len(shape) == 4 and len(out) == 5 and out[1] * out[2] == shape[1] and out[3:] == shape[2:]):
        return False
    c.shuffling[node.name] = (out[1], source)
    return True


def _shuffle_swaps(c: _Converter, node) -> bool:
    source = _shuffled_source(c, node)
    if source is None or sorted(node.args[1:3]) != [1, 2]:
        return False
    groups, start = c.shuffling[source.name][:2]
    c.shuffling[node.name] = (groups, start, "swapped")
    return True


def _shuffle_contiguous(c: _Converter, node) -> bool:
    source = _shuffled_source(c, node)
    if source is None:
        return False
    c.shuffling[node.name] = c.shuffling[source.name]
    return True


def _shuffle_ends(c: _Converter, node) -> bool:
    source = _shuffled_source(c, node)
    if source is None:
        return False
    state = c.shuffling[source.name]
    groups, start = state[:2]
    if len(state) != 3 or c.shapes.get(node.name, ()) != c.shapes[start.name]:
        return False
    c.ops[node.name] = c._stand_in("ChannelShuffle", node, start, groups=groups)
    return True


def _shuffle_refused(c: _Converter, node) -> bool:
    """Any other operation on a value in the middle of a channel shuffle (a product reads its arguments itself,
    `_layer_scale` and `_gate`)."""
    if _shuffled_source(c, node) is None or _is_product(node):
        return False
    raise ImportRefused(f"{_operation(node)} regroups the channels in a way the language cannot express")


# -- modules and what they return


def _module(c: _Converter, node) -> bool:
    """A module, read by the kind that claims its class (`_module_text`)."""
    module = c.gm.get_submodule(node.target)
    tensors = _tensor_args(node)
    source = tensors[0]
    if source.name not in c.ops and source.name not in c.layouts:
        raise ImportRefused(
            f"{_where_node(node)}its input is {_described(source)}, a tensor that forward makes itself, not a value "
            f"computed from the model's input; the language has no counterpart"
        )
    if _sequence_first(c, source) and _acts_on_last_axis(module):
        source = _transposed(c, node, source)  # an nn.Linear over the positions: token mixing
    in_shape, ones = c._pool_state(node, source, _module_input_shape(c, node, source, module))
    arg_shapes = tuple(
        c.shapes.get(a.name, ()) for a in (*tensors, *(v for v in node.kwargs.values() if hasattr(v, "name")))
    )
    text = c._padded_module_text(node, source, module, in_shape, arg_shapes)
    c._note_pooled(node, source, text, ones)
    kind = kinds.for_torch_module(module)
    # a layer kind may lay its output back out channels first; a combinator (sk, ...) keeps its input's layout
    lays_out_channels_first = getattr(kind, "channels_first_output", None)
    if lays_out_channels_first is not None and lays_out_channels_first(module):
        # a module read whole that takes (N, H, W, C) and gives (N, C, H, W) (timm's PVT v2 stage)
        c.channels_last.discard(node.name)
    if type(module).__name__ == "Embedding":
        # (N, T, d): token ids become vectors along the last axis, PyTorch's sequence layout, so the
        # layers after it act on the channels there (an N-D Linear, a LayerNorm)
        c.channels_last.add(node.name)
    c.modules[node.name] = module
    if text == kinds.identity_name():  # nn.Identity (timm's placeholders for an absent norm, scale or drop path)
        c.pass_on(node, source)
        return _carry_marks(c, node, source)
    return c.layer(node, source, text, module=node.target)


def _acts_on_last_axis(module) -> bool:
    """An nn.Linear: on a sequence held channels first (N, C, T), it acts along the positions."""
    import torch

    return isinstance(module, torch.nn.Linear)


# LayerNorms over the channels of (N, C, H, W) (torchvision's, timm's and their subclasses: LayerNorm2dNoBias)
_CHANNELS_FIRST_NORMS = ("LayerNorm2d", "LayerNormAct2d", "LayerNorm2dFp32", "LayerNormAct2dFp32")


def _module_input_shape(c: _Converter, node, source, module) -> tuple:
    """The input shape the module's kind sees: a module after ChannelsLast, on (N, H, W, C), or torchvision's
    LayerNorm2d over the channels of (N, C, H, W) acts on the channels, as on a vector."""
    in_shape = c.shapes[source.name]
    if source.op == "call_method" and source.target == "movedim" and tuple(source.args[1:]) == (1, -1):
        in_shape = (in_shape[0], in_shape[-1])  # paramsym's ChannelsLast
    if source.name in c.channels_last or any(cls.__name__ in _CHANNELS_FIRST_NORMS for cls in type(module).__mro__):
        in_shape = (in_shape[0], in_shape[-1] if source.name in c.channels_last else in_shape[1])
        if source.name in c.channels_last:
            c.channels_last.add(node.name)
    return in_shape


def _module_item(c: _Converter, node) -> bool:
    """`x[i]` of what a module returns, as the module's kind reads it (a recurrent layer's
    (output, state)[0], then output[:, -1], its last step); an item nothing uses (the state) is left out."""
    source = node.args[0]
    if not hasattr(source, "name") or source.name not in c.ops:
        return False
    producer = c._through(source)
    if not node.users:
        c.ops[node.name] = _Op(node.name, "skip", inputs=[producer])
        return True
    module = c.modules.get(producer)
    kind = kinds.for_torch_module(module) if module is not None else None
    if kind is None:
        return False
    op = c.ops[producer]
    context = ImportContext(_operation(node), c.shapes.get(source.name, ()), c.shapes.get(node.name, ()))
    text = kind.from_torch_item(op.text, node.args[1], context)
    if text is None or (text != op.text and len(source.users) > 1):
        return False
    op.text = text
    c.ops[node.name] = _Op(node.name, "skip", inputs=[producer])
    return True


def _first_of_tuple(c: _Converter, node) -> bool:
    """The first output of a module that returns a tuple (MultiheadAttention's (output, weights))."""
    tensors = _tensor_args(node)
    if not (node.args[1] == 0 and tensors and tensors[0].op == "call_module" and tensors[0].name not in c.shapes):
        return False
    c.ops[node.name] = _Op(node.name, "skip", inputs=[c._through(tensors[0])])
    if tensors[0].name in c.channels_last:
        c.channels_last.add(node.name)
    return True


# -- merges: the language's add, mul and concat (the structure of branches, written after the graph is read)


def _sum(c: _Converter, node) -> bool:
    """x + y: a residual or the sum of branches."""
    tensors = _tensor_args(node)
    if len(tensors) == 1 and len(node.args) == 2 and 0 in node.args and not isinstance(node.args[0], bool):
        c.pass_on(node, tensors[0])  # x + 0 (FastViT's MobileOne block without its identity branch)
        return _carry_marks(c, node, tensors[0])
    if len(tensors) != 2 or len(node.args) != 2:
        raise ImportRefused(f"{_where_node(node)}{_described(node)} adds something that is not two tensors")
    tensors = _one_layout(c, node, tensors)
    c.ops[node.name] = _Op(node.name, _ADD, inputs=[c._through(a) for a in tensors])
    if all(a.name in c.channels_last for a in tensors):
        c.channels_last.add(node.name)  # a residual on (N, T, d) stays channels last
    return True


def _difference(c: _Converter, node) -> bool:
    """x - y of two values: `sub(X | Y)` (PoolFormer's pool(x) - x, FastViT's mixer(x) - norm(x))."""
    tensors = _tensor_args(node)
    if len(tensors) != 2 or len(node.args) != 2 or node.kwargs:
        return False  # a difference with a number, or torch.sub(x, y, alpha=a): refused by the last rows
    tensors = _one_layout(c, node, tensors)
    c.ops[node.name] = _Op(node.name, _SUB, inputs=[c._through(a) for a in tensors])
    if all(a.name in c.channels_last for a in tensors):
        c.channels_last.add(node.name)
    return True


def _concat(c: _Converter, node) -> bool:
    """torch.cat along the channels."""
    tensors, dim = node.args[0], node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    rank = len(c.shape(node))
    last = all(a.name in c.channels_last for a in tensors)  # channels last: the last axis (MambaOut)
    if dim % rank != (rank - 1 if last else 1):
        raise ImportRefused(f"{_where_node(node)}{_described(node)} concatenates along axis {dim}, not the channels")
    stack = list((node.meta.get("nn_module_stack") or {}).values())
    c.ops[node.name] = _Op(
        node.name, _CONCAT, inputs=[c._through(a) for a in tensors], module=stack[-1][0] if stack else ""
    )  # the module whose forward joins them
    if last:
        c.channels_last.add(node.name)
    return True


def _stacked_mean(c: _Converter, node) -> bool:
    """torch.stack([a, b, ...], dim=0) that only torch.mean(..., dim=0) reads: the values' average (CrossViT's heads
    of its two branches), read as their sum `add(A | B)`, the division by their number being a scalar factor that
    changes no count (docs/language.md, Scalar factors; RepViT's (head(x) + head_dist(x)) / 2 alike)."""
    tensors = node.args[0] if node.args else node.kwargs.get("tensors")
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    if not isinstance(tensors, (list, tuple)) or len(tensors) < 2 or dim != 0:
        return False
    if not all(hasattr(a, "name") and a.name in c.ops for a in tensors):
        return False
    users = list(node.users)
    if len(users) != 1 or _name(users[0]) != "mean" or users[0].kwargs.get("keepdim"):
        return False
    mean = users[0]
    dims = mean.args[1] if len(mean.args) > 1 else mean.kwargs.get("dim")
    if dims not in (0, (0,), [0]):
        return False
    stack = list((node.meta.get("nn_module_stack") or {}).values())
    c.ops[node.name] = _Op(
        node.name, _ADD, inputs=[c._through(a) for a in tensors], module=stack[-1][0] if stack else ""
    )
    c.averaged.add(mean.name)
    if all(a.name in c.channels_last for a in tensors):
        c.channels_last.add(node.name)
    return True


def _stack_average(c: _Converter, node) -> bool:
    """The torch.mean(..., dim=0) of `_stacked_mean`: the sum it reads, passed on."""
    if node.name not in c.averaged:
        return False
    source = _tensor_args(node)[0]
    c.pass_on(node, source)
    if source.name in c.channels_last:
        c.channels_last.add(node.name)
    return True


def _pad(c: _Converter, node) -> bool:
    """F.pad before the one convolution or pooling that reads it: taken as its padding where the layer can say it
    (`_Converter._take_pad`, `_Converter._padded_module_text`); a pad of zeros everywhere (timm's Swin pads its
    maps to a multiple of the window, here by nothing) is nothing. Any other F.pad is left to the next rows: the
    kind that imports it as a layer of its own (zeropad), or a refusal that names it."""
    pads = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad", ())
    if isinstance(pads, (tuple, list)) and all(p == 0 for p in pads):
        return c.pass_on(node, _tensor_args(node)[0]) and _carry_marks(c, node, _tensor_args(node)[0])
    users = list(node.users)
    if len(users) != 1 or users[0].op != "call_module":
        return False
    module = c.gm.get_submodule(users[0].target)
    kind = kinds.for_torch_module(module)
    if kind is None or not kind.takes_pad:
        return False
    pairs = c._pad_pairs(node)
    if pairs is None:
        return False
    if not pairs[1] and type(module).__name__.startswith("MaxPool"):
        return False  # zeros before a max pooling, whose own padding is -inf: a layer of its own
    c.pending_pad[node.name] = pairs
    c.pending_described[node.name] = _operation(node)
    return c.pass_on(node, _tensor_args(node)[0])


# -- multi-head self-attention read from its operations (traced_attention), whatever the module's class


def _attention_region(c: _Converter, node) -> bool:
    """A Linear layer whose output goes into a matrix product: the first projection of an attention, whose whole
    region (projections, heads, scores, softmax, weighted sum, output projection) is read and checked at once by
    the kind that reads attention from a traced graph (`traced_region`), and written as one layer at its output
    projection (`_attention_member`)."""
    kind: Any = next(kind for kind in kinds.KINDS if hasattr(kind, "traced_region"))
    if node.name in c.attention or not node.args or not kind.traced_begins(c, node):
        return False
    region = kind.traced_region(c, node, _where_node, _described)
    for member in region.nodes:
        c.attention[member.name] = region
    return _attention_member(c, node)


def _attention_member(c: _Converter, node) -> bool:
    """A node of an attention region read by `_attention_region`: nothing, but for its output projection, which
    is the attention."""
    region = c.attention.get(node.name)
    if region is None:
        return False
    if node is region.output:
        source, layout = region.source, c.sequences.get(c._through(region.source))
        if layout is not None and region.last and _inside_a_layout(c, node, region):
            # a module that lays a map out as a sequence, attends and lays it back: an attention over the map's
            # positions, whose output (N, T, C) is the map, laid out as a sequence
            source, k = layout.source, layout.spatial
            c.layouts[node.name] = _Layout(node, layout.dims, (tuple(range(k)), (k,)))
        elif (
            getattr(region, "reduction", "").startswith("sr=")
            and not getattr(region, "sr_map", ())  # the language says which map the sequence lays out (map=HxW)
            and len(c.shapes.get(source.name, ())) == 3
        ):
            raise ImportRefused(
                f"{_where_node(node)}reduces its keys' source as a map ({region.reduction}), but attends over a "
                f"sequence: its input or output is also used as a sequence outside it, and the language reduces a "
                f"map only (a sequence has no way back to the map)"
            )
        c.ops[node.name] = _Op(node.name, "layer", region.text(), [c._through(source)], module=region.module_path)
        if region.last and node.name not in c.layouts:
            c.channels_last.add(node.name)
    return True


def _inside_a_layout(c: _Converter, node, region) -> bool:
    """Whether an attention reads a map laid out as a sequence only for itself, and its output goes only to
    reshapes and permutes (timm's FastViT: flatten(2).transpose(-2, -1) ... transpose(-2, -1).reshape(B, C, H, W))."""

    def to_a_map(user) -> bool:  # a reshape or permute, or a dropout or drop path before them (`_layout_kept`)
        if _keeps_layout(c, user):
            return bool(user.users) and all(to_a_map(u) for u in user.users)
        return _name(user) in _LAYOUT_METHODS and user.op in ("call_method", "call_function")

    return all(c.attention.get(u.name) is region for u in region.source.users) and all(to_a_map(u) for u in node.users)


# -- functions and methods that kinds import (their torch_functions)


def _kind_function(c: _Converter, node) -> bool:
    """A call of a torch function or tensor method that a kind imports (`_function_text`)."""
    tensors = _tensor_args(node)
    if not tensors:
        return False
    source = tensors[0]
    in_shape, ones = c._pool_state(node, source, c.shapes.get(source.name, ()))
    last = source.name in c.channels_last and len(in_shape) > 2
    if last:  # a value permuted to (N, H, W, C) (F.layer_norm between two permutes): its channels, as a vector's
        in_shape = (in_shape[0], in_shape[-1])
    text = _function_text(node, in_shape, c.shapes.get(node.name, ()))
    if text is None:
        return False
    c._note_pooled(node, source, text, ones)
    if source.name in c.channels_last and c.shapes.get(node.name) == c.shapes.get(source.name):
        c.channels_last.add(node.name)  # an element-wise function keeps the layout (F.gelu on (N, H, W, C))
    return c.layer(node, source, text)


def _shared_bias(c: _Converter, node) -> bool:
    """An operation that computes a position bias from the buffers and layers of timm's RelPosMlp alone (ViT-RelPos
    with shared_rel_pos: the model calls get_bias() once and gives the bias to every block): nothing here; the
    attention it is given to reads it (kinds/attention.py, `_shared_position_bias`), and a value computed from it
    by anything else is refused (it is no value the importer has read)."""
    if node.op in ("get_attr", "call_module"):
        parts = str(node.target).split(".")
        owner = None
        root = c.gm.meta.get("root", c.gm)
        for i in range(len(parts) - 1, 0, -1):
            try:
                module = root.get_submodule(".".join(parts[:i]))
            except AttributeError:
                return False
            if type(module).__name__ == "RelPosMlp":
                owner = ".".join(parts[:i])
                break
        if owner is None:
            return False
        inputs = [a for a in (*node.args, *node.kwargs.values()) if hasattr(a, "name")]
        if not all(c.shared_biases.get(a.name) == owner for a in inputs):
            return False
        c.shared_biases[node.name] = owner
        return True
    if node.op not in ("call_method", "call_function"):
        return False
    inputs = [a for a in (*node.args, *node.kwargs.values()) if hasattr(a, "name")]
    owners = {c.shared_biases.get(a.name) for a in inputs}
    found = owners.pop() if len(owners) == 1 else None
    if found is None:
        return False
    c.shared_biases[node.name] = found
    return True


# The names of the functions and methods that kinds import, and of the ones read as nothing
_KIND_FUNCTIONS = tuple(
    dict.fromkeys([*(name for kind in kinds.KINDS for name in kind.torch_functions), *_EVAL_IDENTITY])
)

# What PyTorch runs -> the handler that reads it, tried in this order (the first that takes a node reads it).
OPERATIONS: list[tuple[tuple, Handler]] = [
    (("placeholder",), _input),
    ((ANY,), _shared_bias),
    ((ANY,), _attention_member),
    (("builtins.tuple",), _outputs_tuple),
    (("torch._assert", "torch.fx._symbolic_trace._assert_is_none", "operator.eq"), _check),
    (("get_attr",), _parameter),
    (_PARAMETER_VIEWS, _parameter_view),
    (("torch.nn.functional.interpolate",), _table_resize),
    ((ANY,), _resized_view),
    (_LAYOUT_METHODS, _table_view),
    (("operator.mul", "torch.mul", "mul", "mul_", "operator.truediv", "torch.div", "div", "div_"), _constant_factor),
    (("operator.mul", "torch.mul", "mul", "mul_"), _layer_scale),
    (("operator.getitem",), _broadcast_axes),
    (("operator.getitem",), _token_select),
    (("operator.getitem",), _whole_slice),
    (("operator.getitem",), _token_rest),
    (("operator.getitem",), _token_prefix),
    (_SAME_VALUE_METHODS, _contiguous),
    (("chunk", "split"), _channel_split),
    (("operator.getitem",), _channel_slice),
    (("operator.getitem",), _channel_index),
    (("view", "reshape", "permute"), _patchify),
    (("view", "reshape"), _shuffle_begins),
    (("transpose", "swapaxes"), _shuffle_swaps),
    (_SAME_VALUE_METHODS, _shuffle_contiguous),
    (("view", "reshape"), _shuffle_ends),
    ((ANY,), _shuffle_refused),
    (("torch.nn.Linear", "torch.nn.Conv1d", "torch.nn.Conv2d"), _attention_region),
    (("torch.nn.Module",), _class_block),
    (("torch.nn.Module",), _generated_table),
    (("torch.nn.Module",), _layout_kept),
    (("torch.nn.Module",), _module),
    (("operator.getitem",), _module_item),
    (("operator.getitem",), _first_of_tuple),
    (("operator.getitem",), _max_values),
    (("operator.add", "torch.add"), _generated_addition),
    (("operator.add", "torch.add", "operator.iadd", "add", "add_"), _resized_position_table),
    (("operator.add", "torch.add", "add_"), _position_table),
    (("operator.add", "torch.add"), _map_position_table),
    (("operator.add", "torch.add"), _last_map_position_table),
    (("operator.add", "torch.add", "operator.iadd"), _sum),
    (("operator.mul", "torch.mul", "operator.imul", "mul"), _gate),
    (("operator.sub", "torch.sub", "sub"), _difference),
    (("torch.cat",), _class_block_joined),
    (("torch.cat",), _class_token),
    (("torch.cat",), _sequence_concat),
    (("torch.cat",), _concat),
    (("movedim",), _moved_channels),
    (("torch.nn.functional.pad",), _pad),
    (("torch.stack",), _stacked_mean),
    (("mean", "torch.mean"), _stack_average),
    (("mean",), _sequence_mean),
    (("max", "torch.max"), _sequence_max),
    (_KIND_FUNCTIONS, _kind_function),
    (_LAYOUT_METHODS, _layout),
    ((ANY,), _layout_refused),
]


def _resolved(rows) -> list[tuple[frozenset, Handler]]:
    """The table with its dotted keys looked up ("torch.cat" is torch.cat); other keys stay as they are."""

    def resolve(key):
        if not isinstance(key, str) or key == ANY or "." not in key:
            return key
        module, _, attribute = key.rpartition(".")
        return getattr(importlib.import_module(module), attribute)

    return [(frozenset(resolve(key) for key in keys), handler) for keys, handler in rows]


def _keys(node, graph_module) -> tuple:
    """What a node runs, as keys of the table: a module's classes, a method's name, a function and its name (a
    class it calls and that class's bases), or the op of a graph input or a parameter."""
    target = node.target
    if node.op == "call_module":
        return type(graph_module.get_submodule(target)).__mro__
    if node.op == "call_method":
        return (target,)
    if node.op != "call_function":
        return (node.op,)
    own = target.__mro__ if isinstance(target, type) else (target,) if isinstance(target, Hashable) else ()
    return (*own, getattr(target, "__name__", None))


class _Converter:
    """Reads a traced graph node by node, each through the first row of the table (`OPERATIONS`) that takes it."""

    def __init__(self, graph_module, shapes: dict):
        self.gm = graph_module
        self.shapes = shapes
        self.ops: dict[str, _Op] = {}
        self.modules: dict[str, object] = {}  # the module of each call_module op, for items of its output
        # values that PyTorch keeps as (N, C, 1, 1) after global pooling and the language as the vector C
        self.pooled: set[str] = set()
        self.averaged: set[str] = set()  # torch.mean(..., dim=0) of a torch.stack read as a sum (`_stacked_mean`)
        self.aux_outputs: list[str] = []  # the side outputs (auxiliary heads) besides the model's output
        self.layouts: dict[str, _Layout] = {}  # values on the way from one layout to another (`_layout`)
        self.param_views: dict[str, Any] = {}  # views of a parameter, by node: the parameter's get_attr node
        self.resized: dict[str, _ResizedTable] = {}  # a table of positions forward resizes, and its views
        self.pieces: dict[str, tuple] = {}  # x.chunk(n, 1) / x.split(s, 1): the channel ranges of the pieces
        self.shuffling: dict[str, tuple] = {}  # a channel shuffle under way: (groups, stage) by node
        self.patchifying: dict[str, Any] = {}  # a patchify's view, permute: None; reshape: (map, p)
        self.channels_last: set[str] = set()  # values permuted to (N, H, W, C) (ConvNeXt, around LayerNorm)
        self.pending_pad: dict[str, tuple] = {}  # F.pad values that no convolution or pooling has taken yet
        self.pending_described: dict[str, str] = {}  # those F.pad calls as the user wrote them, for messages
        self.attention: dict[str, Any] = {}  # the nodes of attention regions read whole: their region
        self.attention_reads: dict[tuple, dict] = {}  # what traced_attention read, by region (`fingerprint`)
        self.sequences: dict[str, _Layout] = {}  # the positions of a map as a sequence: the map's layout
        self.tables: dict[str, tuple] = {}  # tables a module makes from sizes alone (`_generated_table`)
        # blocks that take the class token apart (`_class_block`): their patches' node and their class token's shape
        self.class_blocks: dict[str, tuple] = {}
        self.shared_biases: dict[str, str] = {}  # a RelPosMlp's bias on the way (`_shared_bias`): its module
        self.table = _resolved(OPERATIONS)

    def convert(self) -> tuple[str, str]:
        """The op that gives the model's output, and its node."""
        for node in self.gm.graph.nodes:
            if node.op == "output":
                return self._output(node)
            self._read(node)
        raise ImportRefused("the traced model has no output")

    def _read(self, node) -> None:
        keys = _keys(node, self.gm)
        for row, handler in self.table:
            try:
                if (ANY in row or not row.isdisjoint(keys)) and handler(self, node):
                    if node.name in self.ops and not self.ops[node.name].described:
                        self.ops[node.name].described = _operation(node)
                    return
            except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
                # a value no handler foresaw (a module applied to a constant, an index of an odd form): refused,
                # naming what it is, rather than read wrongly
                what = "" if node.op == "call_module" else f"{_described(node)} "
                raise ImportRefused(
                    f"{_where_node(node)}{what}cannot be read ({type(error).__name__}: {error})"
                ) from None
        raise ImportRefused(f"{_where_node(node)}{_described(node)} has no counterpart in the language")

    def _output(self, node) -> tuple[str, str]:
        result = self._main_output(node.args[0])
        if not hasattr(result, "name"):
            raise ImportRefused("the model returns several tensors; import models with one output")
        if self.pending_pad:  # an F.pad that no convolution or pooling took as its padding
            raise ImportRefused(
                f"{self.pending_described.get(next(iter(self.pending_pad)), 'F.pad(...)')} pads a value that is not "
                f"the input of a convolution or a pooling; the language pads only there"
            )
        return self.ops[result.name].name, result.name

    def _main_output(self, result):
        """The model's output; its side outputs (GoogLeNet's and Inception's side heads in training mode, returned
        as (output, aux2, aux1)) go to `aux_outputs`."""
        if hasattr(result, "name") and isinstance(result.target, type) and issubclass(result.target, tuple):
            result = tuple(result.args) + tuple(result.kwargs.values())
        if isinstance(result, dict) and "out" in result:  # torchvision's segmentation models: {"out", "aux"}
            result = (result["out"], *(value for key, value in result.items() if key != "out"))
        if (
            isinstance(result, (tuple, list))
            and result
            and hasattr(result[0], "name")
            and all(hasattr(r, "name") or r is None for r in result)
        ):
            self.aux_outputs.extend(self._through(side) for side in result[1:] if side is not None)
            result = result[0]
        return result

    def layer(self, node, source, text: str, module: str = "") -> bool:
        """`node` is the layer written `text` ("": nothing, a value passed on) applied to `source`'s value;
        `module` is where it is in the model, for messages."""
        self.ops[node.name] = _Op(node.name, "layer" if text else "skip", text, [self._through(source)], module=module)
        return True

    def pass_on(self, node, source) -> bool:
        """`node` gives the value of `source` (a no-op of the language)."""
        self.ops[node.name] = _Op(node.name, "skip", inputs=[self._through(source)])
        return True

    def _stand_in(self, cls: str, node, source, in_shape: tuple | None = None, **values) -> _Op:
        """A layer written by the kind of a module of class `cls` with these attributes (a channel slice, a
        shuffle, a layer scale that the model computes with tensor operations); `in_shape` is the input's shape
        as that module would see it (by default the source's)."""
        shape = self.shapes.get(source.name, ()) if in_shape is None else in_shape
        text = _module_text(type(cls, (), values)(), _operation(node), shape, self.shapes.get(node.name, ()))
        return _Op(node.name, "layer" if text else "skip", text, [self._through(source)])

    def _pool_state(self, node, source, in_shape: tuple) -> tuple:
        """The input shape a kind sees (a pooled value is the vector (N, C)), and records whether `node`'s
        value is pooled."""
        out = self.shapes.get(node.name, ())
        ones = len(out) > 2 and all(v == 1 for v in out[2:])
        if source.name in self.pooled and len(in_shape) > 2:
            in_shape = in_shape[:2]
        return in_shape, ones

    def _note_pooled(self, node, source, text: str, ones: bool) -> None:
        """A value of axes of 1 computed from a pooled value, or by global pooling, is pooled too."""
        if ones and (source.name in self.pooled or _vector_text(text)):
            self.pooled.add(node.name)

    def shape(self, node) -> tuple:
        return self.shapes[node.name]

    def _through(self, node) -> str:
        """The op that really produces `node`'s value (skipping no-op nodes)."""
        if node.name not in self.ops:
            # a tensor that no op of the language produced: a parameter or buffer that forward reads itself and
            # uses as a value (timm's PiT adds its pos_embed), or a value of an operation that was passed over
            what = (
                "a parameter or buffer that forward reads itself"
                if getattr(node, "op", "") == "get_attr"
                else "a value the language has no counterpart for"
            )
            user = next(iter(getattr(node, "users", ())), None)
            where = _where_node(user) if user is not None else ""
            uses = _described(user) if user is not None else "an operation"
            raise ImportRefused(f"{where}{uses} uses {_described(node)}, {what} (not through a layer)")
        op = self.ops[node.name]
        while op.kind == "skip" and op.inputs:
            op = self.ops[op.inputs[0]]
        return op.name

    def _pad_pairs(self, node) -> tuple | None:
        """F.pad(x, pad, mode, value) as (before, after) per spatial axis, first axis first, and whether it pads
        with -inf (as before a max pooling); None unless it pads the spatial axes with zeros or -inf by amounts
        of at least 0 (the zeropad kind reads or refuses the others)."""
        import math

        values = dict(zip(("input", "pad", "mode", "value"), node.args))
        values.update(node.kwargs)
        pads, mode, value = tuple(values["pad"]), values.get("mode", "constant"), values.get("value")
        shape = self.shapes.get(values["input"].name, ())
        rank = len(shape) - 2
        if mode != "constant" or not (value is None or value == 0 or value == -math.inf):
            return None
        if any(not isinstance(p, int) for p in pads):
            return None
        if len(pads) % 2 or len(pads) > 2 * rank or any(p < 0 for p in pads):
            return None
        pads = pads + (0,) * (2 * rank - len(pads))
        # F.pad lists the last axis first
        return tuple((pads[2 * i], pads[2 * i + 1]) for i in range(rank))[::-1], value == -math.inf

    def _take_pad(self, source, module, pending: dict):
        """A preceding F.pad, (before, after) per axis, which the layer's kind takes as its padding
        (windows.imported_padding: symmetric, or exactly TensorFlow's "same")."""
        if source.name not in pending:
            return None
        pairs, lowest = pending.pop(source.name)
        if lowest and not type(module).__name__.startswith("MaxPool"):
            raise ImportRefused(
                f"{_operation(source)} pads with -inf before {type(module).__name__}: the "
                f"language pads with -inf only before a max pooling"
            )
        return pairs

    def _padded_module_text(self, node, source, module, in_shape, arg_shapes) -> str:
        """The text of a module (`_module_text`) that takes an F.pad before it as its padding; when it cannot
        (asymmetric padding that is not TensorFlow's "same", a convolution that pads as "same" itself), the
        F.pad becomes a layer of its own (zeropad) and the module reads the padded value."""
        name, out_shape = f"module '{node.target}'", self.shapes.get(node.name, ())
        pending = source.name in self.pending_pad
        lowest = pending and self.pending_pad[source.name][1]
        extra = self._take_pad(source, module, self.pending_pad)
        try:
            return _module_text(module, name, in_shape, out_shape, extra, node, arg_shapes)
        except ImportRefused:
            if not pending or lowest:  # -inf padding is no zeropad: the refusal stands
                raise
        # the pad as a layer of its own (the zeropad kind's refusal, if it has one, names it)
        padded = _tensor_args(source)[0]
        text = _function_text(source, self.shapes.get(padded.name, ()), self.shapes.get(source.name, ()))
        if not text:
            raise ImportRefused(f"{_operation(source)} has no counterpart in the language")
        self.layer(source, padded, text)
        return _module_text(module, name, in_shape, out_shape, None, node, arg_shapes)


def _normalise_concats(ops: dict[str, _Op]) -> dict[str, _Op]:
    """A concat of a list that extends an earlier concat's list (DenseNet's growing features)
    becomes a concat of that earlier result and the new values, so that it nests."""
    joined: dict[tuple, str] = {}
    result: dict[str, _Op] = {}
    for name, op in ops.items():
        if op.kind is not _CONCAT:
            result[name] = op
            continue
        inputs = tuple(op.inputs)
        if len(inputs) == 1:
            result[name] = _Op(name, "skip", inputs=list(inputs))
            continue
        length = max((n for n in range(2, len(inputs)) if inputs[:n] in joined), default=1)
        if length > 1:
            # DenseNet: cat([x0, x1, x2]) after cat([x0, x1]) is cat(that, x2), one value per step
            value = joined[inputs[:length]]
            for n in range(length + 1, len(inputs)):
                helper = f"{name}_part{n}"
                result[helper] = _Op(helper, _CONCAT, inputs=[value, inputs[n - 1]], module=op.module)
                joined[inputs[:n]] = value = helper
            result[name] = _Op(name, _CONCAT, inputs=[value, inputs[-1]], module=op.module)
        else:
            result[name] = op  # branches of one split (Inception): a single concat(... | ... | ...)
        joined[inputs] = name
    return result


def _dominators(ops: dict[str, _Op], order: list[str]) -> dict[str, str | None]:
    """Immediate dominator of every op (where the paths to it last split)."""
    dom: dict[str, set] = {}
    for name in order:
        op = ops[name]
        inputs = list(op.inputs)
        if not inputs:
            dom[name] = {name}
        else:
            common = set.intersection(*(dom[i] for i in inputs))
            dom[name] = common | {name}
    position = {name: i for i, name in enumerate(order)}
    return {name: max(dom[name] - {name}, key=position.get, default=None) for name in order}


def _region(ops: dict[str, _Op], start: str, end: str) -> frozenset:
    """The ops on the paths from `start` (excluded) to `end` (included)."""
    seen, stack = set(), [end]
    while stack:
        name = stack.pop()
        if name != start and name not in seen:
            seen.add(name)
            stack.extend(ops[name].inputs)
    return frozenset(seen)


def _common_dominator(names, idom: dict) -> str:
    """The nearest op that dominates every one of `names` (itself one of them, or where their paths split)."""

    def chain(name):
        found = []
        while name is not None:
            found.append(name)
            name = idom[name]
        return found

    chains = [chain(n) for n in names]
    shared = set(chains[0]).intersection(*chains[1:])
    return next(n for n in chains[0] if n in shared)


def _concat_text(
    ops: dict[str, _Op], start: str, inputs: list, idom: dict, aux: dict, written: dict, concat: _Op
) -> list[str]:
    """The stages from `start` to the concatenation of `inputs` (in order) without computing any value twice.
    Values that feed the concatenation and later layers (VoVNet's and HGNet's chains, DenseNet's growing
    lists) nest: concat(x0, f(x0), g(f(x0))) is `concat(id | f > concat(id | g))`. Groups of inputs whose paths
    from `start` share no op are the branches of one concat (Inception). Inputs that share values otherwise
    are carried as channels (`_carried`)."""
    identity = kinds.identity_name()
    if len(inputs) == 1:
        return _structure(ops, start, inputs[0], idom, aux, written)
    split = _common_dominator(inputs, idom)
    if split != start:  # the path to where the inputs part, then the concatenation from there
        return _structure(ops, start, split, idom, aux, written) + _concat_text(
            ops, split, inputs, idom, aux, written, concat
        )
    if inputs[0] == start:
        rest = _concat_text(ops, start, inputs[1:], idom, aux, written, concat)
        return [f"concat({identity} | {' > '.join(rest) or identity})"]
    regions = [_region(ops, start, i) for i in inputs]
    groups: list[list[int]] = []
    for i, region in enumerate(regions):
        # an input whose path shares an op with an earlier group's joins it, and so does every input between
        joined = next((g for g, group in enumerate(groups) if any(regions[j] & region for j in group)), None)
        if joined is None:
            groups.append([i])
        else:
            groups[joined:] = [[j for group in groups[joined:] for j in group] + [i]]
    if len(groups) == 1:
        return _carried(ops, start, inputs, written, concat)
    texts = []
    for group in groups:
        stages = _concat_text(ops, start, [inputs[j] for j in group], idom, aux, written, concat)
        texts.append(" > ".join(stages) or identity)
    return [f"concat({' | '.join(texts)})"]


def _where(op: _Op) -> str:
    return f"module '{op.module}'" if op.module else op.described or f"operation '{op.name}'"


def _carried(ops: dict[str, _Op], start: str, inputs: list, written: dict, concat: _Op) -> list[str]:
    """A concatenation whose inputs share values that no branch structure writes once (Res2Net's
    y2 = f2(y1 + x2) next to y1, DLA's trees): the values still needed are carried together as the channels
    of one value, computed one after another (`concat(id | slice(a, b) > conv ...)`), each read back with
    `slice(a, b)` (no parameters, no MACs), so that every layer is written, and counted, once. Values carried
    together must have the same spatial size; where a value of another size ends, the values computed from it
    are carried at the new size. A concat this cannot write is refused."""
    region = set().union(*(_region(ops, start, i) for i in inputs))
    extra: set = set()
    before = dict(written)
    while True:
        written.clear()
        written.update(before)
        attempt = _carry(ops, start, inputs, written, concat, region, extra)
        if isinstance(attempt, list):
            return attempt
        if not attempt or attempt <= extra:
            raise SharedValue(
                f"{_where(concat)} concatenates a value together with layers computed from it and "
                f"from another value before it, at sizes that cannot be carried together as "
                f"channels; the language would compute (and count) layers twice"
            )
        extra |= attempt


def _carry(ops, start, inputs, written, concat, region, extra):
    """`_carried` with the values in `extra` carried too: the stages, or the values to carry besides (a set,
    empty when none would help)."""
    uses: dict[str, int] = {}
    for name in [*inputs, *(i for n in region for i in ops[n].inputs)]:
        uses[name] = uses.get(name, 0) + 1
    stops = [start] + [n for n in ops if n in region and (uses.get(n, 0) > 1 or n in inputs or n in extra)]
    stop_set = set(stops)
    if any(len(ops[n].shape) < 3 or ops[n].last for n in stops):
        return set()  # carried values are (N, C, ...) maps whose channels concatenate
    memo: dict = {}

    def deps(name, own) -> frozenset:
        if name != own and name in stop_set:
            return frozenset({name})
        if (name, own) not in memo:
            memo[name, own] = frozenset().union(*(deps(i, own) for i in ops[name].inputs))
        return memo[name, own]

    def frontier(name, own, state) -> set:
        """The values on the way to `name` that the carried `state` alone gives, where the next needs more."""
        if name != own and name in stop_set:
            return set()
        found = set()
        for i in ops[name].inputs:
            found |= {i} if deps(i, None) <= set(state) and i not in stop_set else frontier(i, own, state)
        return found

    def expression(name, own, state) -> list[str]:
        """The stages that compute `name` from the carried value `state` (a list of stops)."""
        op = ops[name]
        if name != own and name in stop_set:
            if state == [name]:
                return []
            first = sum(ops[s].shape[1] for s in state[: state.index(name)])
            return [
                _module_text(
                    type("ChannelSlice", (), {"start": first, "end": first + op.shape[1]})(),
                    _where(op),
                    (),
                    (),
                )
            ]
        if isinstance(op.kind, Merge):
            return [op.kind.import_text([expression(i, own, state) for i in op.inputs])]
        if not op.inputs:
            raise ImportRefused("the model's graph does not split into sequences and branches")
        stages = expression(op.inputs[0], own, state)
        if op.kind != "layer":
            return stages
        if name in written:
            raise SharedValue(f"{_where(op)} would be written twice")
        written[name] = True
        return stages + [op.text]

    def needed(name, done) -> bool:
        return name in inputs or any(name in deps(n, n) for n in stops[1:] if n not in done)

    stages, state, pending, done = [], [start], stops[1:], {start}
    while pending:
        batch = [pending.pop(0)]
        while True:
            for b in batch:
                if not deps(b, b) <= set(state):  # it needs a value computed in this step: carry what it reads
                    return frontier(b, b, state)
            computed = done | set(batch)
            new = [*inputs] if not pending else [m for m in state if needed(m, computed)] + batch
            if not set(new) <= set(state) | set(batch):
                return set()
            if len({ops[m].shape[2:] for m in new}) == 1:
                break
            if not pending:
                return set()
            batch.append(pending.pop(0))  # computed in the same step, so that a value of another size ends
        parts = [expression(m, None, state) if m in state else expression(m, m, state) for m in new]
        if new[: len(state)] == state and len(new) > len(state):
            stages.append(_CONCAT.import_text([[]] + parts[len(state) :]))
        elif len(new) == 1:
            stages.extend(parts[0])
        else:
            stages.append(_CONCAT.import_text(parts))
        state, done = new, done | set(batch)
    return stages


def _structure(
    ops: dict[str, _Op], start: str, end: str, idom: dict, aux: dict | None = None, written: dict | None = None
) -> list[str]:
    """The stages from `start` (excluded) to `end`; `aux` gives the side heads (text) that leave from an op.
    `written` collects the layers written so far: a layer written twice (a value computed again in a second
    branch) is refused, as it would count that layer's parameters twice."""
    aux = aux or {}
    written = {} if written is None else written
    stages: list[str] = []
    name = end
    while name != start:
        op = ops[name]
        stages.extend(reversed(aux.get(name, ())))
        if isinstance(op.kind, Merge):
            split = idom[name]
            merge = op.kind
            if merge.compares_channels:
                branches = [_structure(ops, split, i, idom, aux, written) for i in op.inputs]
                stages.append(merge.import_text(branches))
            else:  # a concatenation: its inputs may share values (_concat_text)
                stages.extend(reversed(_concat_text(ops, split, list(op.inputs), idom, aux, written, op)))
            name = split
        elif op.kind in ("layer", "skip"):
            if op.kind == "layer":
                if name in written:
                    raise SharedValue(
                        f"{_where(op)} computes a value that two branches use, and the branches "
                        f"do not part where it is computed; the language would compute (and count) "
                        f"it twice"
                    )
                written[name] = True
                stages.append(op.text)
            if not op.inputs:
                raise ImportRefused("the model's graph does not split into sequences and branches")
            name = op.inputs[0]
        else:
            raise ImportRefused(
                "the model's graph does not split into sequences and branches (a branch reaches back before the split)"
            )
        if name is None:
            raise ImportRefused("the model's graph does not split into sequences and branches")
    return stages[::-1]


def _side_heads(ops: dict[str, _Op], end: str, outputs: list[str], idom: dict) -> dict[str, list[str]]:
    """aux(SEQ) for each side output, by the op of the main path where it leaves."""
    main, stack = set(), [end]
    while stack:
        name = stack.pop()
        if name not in main:
            main.add(name)
            stack.extend(ops[name].inputs)
    heads: dict[str, list[str]] = {}
    for output in outputs:
        split = idom[output]
        while split is not None and split not in main:
            split = idom[split]
        if split is None:
            raise ImportRefused("a side output of the model does not leave from its main path")
        heads.setdefault(split, []).append(
            combinators.lookup("aux").import_text([_structure(ops, split, output, idom)])
        )
    return heads


def _name_shared_biases(converter) -> None:
    """Attention layers given one position bias that the model computes once (timm's ViT-RelPos with
    shared_rel_pos: `attn(..., pos_mlp=m)` each, as the kind reads them): the first is named (`as sharedpos1`) and
    computes it, the others use it (`tie=sharedpos1` in place of `pos_mlp=m`), so that its MLP is counted once, as
    PyTorch's parameters() and FlopCounterMode count it."""
    first: dict[str, str] = {}
    names: dict[str, str] = {}
    for node in converter.gm.graph.nodes:
        given = (*node.args[1:], *node.kwargs.values()) if node.op == "call_module" else ()
        biases = [a for a in given if hasattr(a, "name") and a.name in converter.shared_biases]
        op = converter.ops.get(node.name)
        if not biases or op is None:
            continue
        bias = biases[0]
        found = re.search(r", pos_mlp=[0-9]+(?=[,)])", op.text) if op.text.endswith(")") else None
        kind = kinds.lookup(op.text.partition("(")[0])
        if kind is None or not {"tie", "pos_mlp"} <= kind[0].keywords or found is None:
            raise ImportRefused(
                f"module '{node.target}' ({type(converter.gm.get_submodule(node.target)).__name__}) is given a shared "
                f"position bias, which only a layer that takes pos_mlp= and tie= (an attention over a map) can use"
            )
        owner = first.setdefault(bias.name, node.name)
        if owner == node.name:
            continue
        if owner not in names:
            names[owner] = f"sharedpos{len(names) + 1}"
            converter.ops[owner].text += f" as {names[owner]}"
        op.text = op.text[: found.start()] + f", tie={names[owner]}" + op.text[found.end() :]


def _name_ties(converter) -> None:
    """Layers that share one weight Parameter (an output layer tied to the embedding): the first is named
    (`as tied1`), the others use its weight (`tie=tied1`), so that the weight is counted once, as PyTorch's
    parameters() counts it."""
    first: dict[int, str] = {}
    names: dict[str, str] = {}
    for name, module in converter.modules.items():
        weight = getattr(module, "weight", None)
        op = converter.ops.get(name)
        if weight is None or op is None or not op.text:
            continue
        owner = first.setdefault(id(weight), name)
        if owner == name:
            continue
        found = kinds.lookup(op.text.partition("(")[0])
        if found is None or "tie" not in found[0].keywords or not op.text.endswith(")"):
            raise ImportRefused(
                f"module '{name}' ({type(module).__name__}) shares its weight with another layer; only "
                f"a layer that takes tie= can use another layer's weight"
            )
        if owner not in names:
            names[owner] = f"tied{len(names) + 1}"
            converter.ops[owner].text += f" as {names[owner]}"
        op.text = op.text[:-1] + f", tie={names[owner]})"


def _input_shape(input_shape) -> tuple:
    """`input_shape` as a tuple of positive ints: "224x224x3" (the CLI's --input), an int (token ids), or a tuple
    (of ints of any integer type, a torch.Size); anything else is one usage error."""
    given = input_shape
    if isinstance(input_shape, str):
        text = input_shape.lower().replace(" ", "")
        if not re.fullmatch(r"[0-9]+(?:x[0-9]+)*", text):  # ASCII digits: int() would take '２２４'
            raise ParamsymUsageError(f"--input takes sizes such as 224x224x3, not {input_shape!r}")
        input_shape = tuple(int(part) for part in text.split("x"))
    elif isinstance(input_shape, numbers.Integral) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    try:
        sizes = tuple(input_shape)
    except TypeError:
        sizes = ()
    whole = all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in sizes)
    if not sizes or not whole or min(int(n) for n in sizes) < 1:
        if isinstance(given, str):
            raise ParamsymUsageError(f"--input takes positive sizes such as 224x224x3, not {given!r}")
        raise ParamsymUsageError(
            f'the input shape is sizes channels last, such as (224, 224, 3), "224x224x3" or a number of token ids, '
            f"each a positive whole number: not {given!r}"
        )
    return tuple(int(n) for n in sizes)


def _qv_bias_linears(module, traced) -> None:
    """`F.linear(x, weight=L.weight, bias=torch.cat((q_bias, k_bias, v_bias)))` with L a Linear without bias, q_bias
    and v_bias parameters of a third of its outputs each and k_bias a buffer (of zeros: BEiT's and EVA's attention,
    timm's): rewritten as a call of one Linear with those biases (`_qv_bias_linear`), so that the attention's reader
    sees its projection and writes `qv_bias`. Only where the traced graph holds the module's parts itself (the
    module `module` is not changed)."""
    import torch

    def value(node):
        owner, _, name = node.target.rpartition(".")
        return owner, getattr(module.get_submodule(owner) if owner else module, name)

    changed = False
    for node in list(traced.graph.nodes):
        if node.op != "call_function" or node.target is not torch.nn.functional.linear:
            continue
        args, kwargs = list(node.args), dict(node.kwargs)
        names = ("input", "weight", "bias")
        x, weight, bias = (cast(Any, args[i] if len(args) > i else kwargs.get(n)) for i, n in enumerate(names))
        if getattr(weight, "op", None) != "get_attr" or getattr(bias, "op", None) != "call_function":
            continue
        if getattr(bias.target, "__name__", None) != "cat" or x is None:
            continue
        dim = bias.kwargs.get("dim", bias.args[1] if len(bias.args) > 1 else 0)
        parts = bias.args[0] if bias.args else ()
        if dim not in (0, -1) or len(parts) != 3 or any(getattr(p, "op", None) != "get_attr" for p in parts):
            continue
        owner, w = value(weight)
        linear = module.get_submodule(owner) if owner else None
        if type(linear) is not torch.nn.Linear or linear.bias is not None or w is not linear.weight:
            continue
        (_, q), (_, k), (_, v) = (value(p) for p in parts)
        n, rest = divmod(linear.out_features, 3)
        parameter = torch.nn.Parameter
        if rest or any(tuple(t.shape) != (n,) for t in (q, k, v)):
            continue
        if not isinstance(q, parameter) or isinstance(k, parameter) or not isinstance(v, parameter):
            continue
        if not k.is_meta and bool(k.any()):
            continue  # a key bias that is not zeros
        parent, _, leaf = owner.rpartition(".")
        holder = traced.get_submodule(parent) if parent else traced
        if holder is (module.get_submodule(parent) if parent else module):
            continue  # the traced graph shares the model's own module there: it is not changed
        setattr(holder, leaf, _qv_bias_linear(linear, q, v))
        node.op, node.target, node.args, node.kwargs = "call_module", owner, (x,), {}
        for dead in (bias, weight, *parts):
            if not dead.users:
                traced.graph.erase_node(dead)
        changed = True
    if changed:
        traced.recompile()


def _qv_bias_linear(linear, q_bias, v_bias):
    """A Linear (its class named so: a projection to the attention's reader) with the weight of `linear`, biases
    `q_bias` on its first third and `v_bias` on its last, none on the middle (the keys)."""
    import torch
    from torch.nn import functional

    class Linear(torch.nn.Linear):
        def __init__(self):
            torch.nn.Module.__init__(self)
            self.in_features, self.out_features = linear.in_features, linear.out_features
            self.weight, self.q_bias, self.v_bias = linear.weight, q_bias, v_bias
            self.bias = None

        def forward(self, x):
            zeros = torch.zeros_like(self.q_bias)
            return functional.linear(x, self.weight, torch.cat((self.q_bias, zeros, self.v_bias)))

    return Linear()


def _read_whole(m, qualname: str) -> bool:
    """Which modules the trace keeps whole: torch.nn's (as torch.fx does), the modules a kind imports (paramsym's
    own PositionEmbedding, ClassToken, ...: their forward has no counterpart op by op), and a subclass of a claimed
    class with a forward of its own (timm's BatchNormAct2d), so that the import refuses it by name unless a kind
    claims its own class."""
    import torch

    cls = type(m)
    if cls.__module__.startswith(("torch.nn", "torch.ao.nn")) and not isinstance(m, torch.nn.Sequential):
        return True
    return (kinds.for_torch_module(m) is not None or kinds.overridden(m) is not None) and not cls.__module__.startswith(
        "torch."
    )


def _takes_token_ids(module, input_shape: tuple) -> bool:
    """Whether the model's input is token ids: a sequence of numbers (input(T)) into a model that looks them up."""
    return len(input_shape) == 1 and any(
        getattr(kinds.for_torch_module(m), "token_ids", False) for m in module.modules()
    )


def from_torch(module, input_shape, flat: bool = False) -> str:
    """The program for a PyTorch model; `input_shape` is channels last, e.g. (224, 224, 3) or "224x224x3".
    Repeated structure is written as `def` blocks and `(SEQ) * n` (paramsym.factor); `flat=True` writes
    one stage after another, as traced (a model read by its layout, hf_import, keeps its blocks)."""
    require_torch("importing a PyTorch model")
    import torch

    if not isinstance(module, torch.nn.Module):
        raise ParamsymUsageError(
            f"from_torch takes a PyTorch model (a torch.nn.Module), not {type(module).__name__}",
            hint="build the model first, e.g. torchvision.models.resnet18()",
        )
    input_shape = _input_shape(input_shape)
    if recognises(module):  # Hugging Face language models and torchvision's ViT: read by their layout
        text = from_layout(module, input_shape[0] if len(input_shape) == 1 else None, tuple(input_shape))
        return _verified(module, text, tuple(input_shape))
    if hiera_recognises(module):  # timm's Hiera and HieraDet: read by their layout (their tokens are reordered)
        return _verified(module, hiera_layout(module, tuple(input_shape)), tuple(input_shape))

    if hasattr(module, "backbone") and type(getattr(module, "transform", None)).__name__.endswith("Transform"):
        raise ImportRefused(
            f"{type(module).__name__} is a detection model (a list of images in, boxes and labels out, its "
            f"proposals depend on the values), which the language has no counterpart for, nor for its backbone with "
            f"a feature pyramid (several maps out); a program has one output: import the classification network "
            f"its backbone comes from (torchvision.models.resnet50 for fasterrcnn_resnet50_fpn)"
        )
    *spatial, channels = input_shape
    token_ids = _takes_token_ids(module, input_shape)
    traced, shapes, side_outputs = trace(
        module,
        (channels, *spatial),
        torch.long if token_ids else torch.float32,
        _read_whole,
        "x".join(str(v) for v in input_shape),
    )
    _qv_bias_linears(module, traced)
    converter = _Converter(traced, shapes)
    _, output = converter.convert()
    converter.aux_outputs += [converter._through(type("N", (), {"name": side})()) for side in side_outputs]
    _name_ties(converter)
    _name_shared_biases(converter)
    for name, op in converter.ops.items():
        op.shape, op.last = shapes.get(name, ()), name in converter.channels_last
    ops = _normalise_concats(converter.ops)
    order = list(ops)
    start = next(name for name, op in ops.items() if op.kind == "input")
    end = converter._through(type("N", (), {"name": output})())
    idom = _dominators(ops, order)
    heads = _side_heads(ops, end, converter.aux_outputs, idom)
    try:
        stages = heads.get(start, []) + _structure(ops, start, end, idom, heads)  # side heads on the input first
    except SharedValue:
        if converter.aux_outputs:
            raise
        stages, flat = graph_text(ops, start, end), True  # values shared out of turn: named (`as vN`, `@vN`)
    lines = [f"input({'x'.join(str(v) for v in input_shape)})"] + stages
    text = "\n  > ".join(lines) + "\n"
    ran = _TorchRun(
        shapes[output],
        output in converter.channels_last or end in converter.channels_last,
        output in converter.pooled or end in converter.pooled,
        _traced_parameters(traced),
    )
    if not flat:
        # the same structure with each layer written as `_` + the name of its node: where each layer comes from
        marked = {name: replace(op, text=f"_{name}") if op.kind == "layer" else op for name, op in ops.items()}
        skeleton = _structure(marked, start, end, idom, _side_heads(marked, end, converter.aux_outputs, idom))
        text = readable(text, "\n  > ".join(lines[:1] + skeleton), module_stacks(traced.graph))
    return _verified(module, text, tuple(input_shape), ran)


# ---- every import checks itself against the module ---------------------------------------------------


@dataclass(frozen=True)
class _TorchRun:
    """What a run of the module showed: its output's shape (PyTorch's layout, batch first), whether that
    value is channels last (a sequence (N, T, d)) or a pooled vector kept as (N, C, 1, 1), and the ids of
    the parameters that forward uses."""

    shape: tuple
    channels_last: bool
    pooled: bool
    used: frozenset
    cache: int | None = None  # the values a decoder's cache holds after the run, for one sequence (None: no cache)

    def language_shape(self) -> tuple:
        """The shape as the language writes it: without the batch, channels last, a pooled value a vector."""
        dims = tuple(int(d) for d in self.shape[1:])
        if self.pooled and len(dims) > 1 and all(d == 1 for d in dims[1:]):
            return dims[:1]
        if self.channels_last or len(dims) < 2:
            return dims
        return dims[1:] + dims[:1]


def _traced_parameters(traced) -> frozenset:
    """The parameters the traced graph uses: every parameter of a module it calls (a leaf: torch.nn's
    modules and the ones a kind imports whole) and every one it reads itself (get_attr)."""
    import torch

    used = set()
    for node in traced.graph.nodes:
        if node.op == "call_module":
            used.update(id(p) for p in traced.get_submodule(node.target).parameters())
        elif node.op == "get_attr":
            owner, _, attribute = node.target.rpartition(".")
            value = getattr(traced.get_submodule(owner) if owner else traced, attribute)
            if isinstance(value, torch.nn.Module):
                used.update(id(p) for p in value.parameters())
            else:
                used.add(id(value))
    return frozenset(used)


def _state_buffers(module) -> int:
    """The values of the module's state as paramsym counts it: the running statistics of normalization
    (PyTorch's running_mean and running_var, the buffers of BatchNorm and of InstanceNorm that tracks them),
    which training updates and which are saved with the weights. num_batches_tracked (an integer counter),
    non-persistent buffers (masks, rotary frequencies) and constant tables computed from the architecture
    (Swin V2's relative_coords_table, position indices) are not state: paramsym counts none of them. A frozen
    BatchNorm (torchvision's FrozenBatchNorm2d: `bn(frozen)`) keeps its scale and shift as buffers beside the
    statistics: they are state too, and it learns nothing. A router's e_score_correction_bias (DeepSeek-V3's bias
    per expert, adjusted for load balance and saved with the weights; `moe(..., score_bias)`) is state as well."""
    persistent = module.state_dict(keep_vars=True)
    frozen = {"weight", "bias", "running_mean", "running_var"}
    total = 0
    for prefix, sub in module.named_modules():
        own = dict(sub.named_buffers(recurse=False))
        counted = frozen if frozen <= own.keys() else {"running_mean", "running_var"}
        counted = counted | {"e_score_correction_bias"}  # a router's bias to choose experts: moe(..., score_bias)
        for name, b in own.items():
            full = f"{prefix}.{name}" if prefix else name
            if full in persistent and b.is_floating_point() and name in counted:
                total += b.numel()
    return total


def _layout_run(module, input_shape: tuple) -> _TorchRun:
    """A model read by its layout, run once on the meta device (shapes, no values: a copy of every parameter
    and buffer on meta, the module itself untouched): its output's shape and the parameters of the modules
    that forward calls."""
    import torch
    from torch.func import functional_call

    called: set[int] = set()
    hooks = [m.register_forward_pre_hook(lambda m, args: called.add(id(m))) for m in module.modules()]
    decoder = _takes_decoder_ids(module, input_shape)
    kwargs: dict = {}
    if decoder:  # an encoder-decoder (T5, BART): input ids of S, decoder ids of T (S = T for one length)
        source, target = input_shape if len(input_shape) == 2 else (input_shape[0], input_shape[0])
        example = torch.zeros(2, source, dtype=torch.long, device="meta")
        kwargs = {"decoder_input_ids": torch.zeros(2, target, dtype=torch.long, device="meta")}
    elif len(input_shape) == 1:  # token ids
        example = torch.zeros(2, *input_shape, dtype=torch.long, device="meta")
        if (
            _takes(module, "use_cache")
            and getattr(getattr(module, "config", None), "is_decoder", True)
            and cache_is_the_architectures(module)
        ):
            kwargs = {"use_cache": True}  # a decoder's cache after the forward: what the program's KV cache counts
    else:
        *spatial, channels = input_shape
        example = torch.zeros(2, channels, *spatial, device="meta")
    tensors = {
        name: torch.empty_like(t, device="meta") for name, t in (*module.named_parameters(), *module.named_buffers())
    }
    config = getattr(module, "config", None)
    experts = getattr(config, "_experts_implementation", None)
    attention = getattr(config, "_attn_implementation", None)
    was_training = module.training
    try:
        if experts not in (None, "eager", "batched_mm"):
            # transformers' grouped_mm experts have no kernel on meta for float32; batched_mm computes the same
            config._experts_implementation = "batched_mm"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # an encoder-decoder (T5, BART) runs with eager attention, whose masks need no value (SDPA's asks
            # whether a mask of ones is all ones: an item() that meta tensors do not have)
            if decoder and config is not None and attention not in (None, "eager"):
                config._attn_implementation = "eager"
            try:
                try:
                    out = functional_call(module.eval(), tensors, (example,), kwargs, strict=False)
                except Exception:
                    if config is None or attention in (None, "eager"):
                        raise
                    # SDPA's mask asks whether a mask of ones that the model passes (BioGPT's) is all ones: an item()
                    # that meta tensors do not have; eager attention gives the same shapes and cache
                    config._attn_implementation = "eager"
                    out = functional_call(module.eval(), tensors, (example,), kwargs, strict=False)
            except Exception:
                if kwargs != {"use_cache": True}:
                    raise
                # a cache some models cannot fill on meta (DeepSeek-V3's with q_lora_rank): run without it, unchecked
                kwargs = {}
                out = functional_call(module.eval(), tensors, (example,), kwargs, strict=False)
    except Exception as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ImportRefused(
            f"{type(module).__name__} does not run on a {'x'.join(str(v) for v in input_shape)} input: {detail}"
        ) from None
    finally:
        for hook in hooks:
            hook.remove()
        module.train(was_training)
        if experts is not None and config._experts_implementation != experts:
            config._experts_implementation = experts
        if config is not None and attention is not None and config._attn_implementation != attention:
            config._attn_implementation = attention
    return _TorchRun(
        tuple(_main_tensor(out).shape),
        len(input_shape) == 1 or decoder,
        False,
        _called_parameters(module, called),
        _cache_values(out, batch=2) if kwargs.get("use_cache") else None,  # asked for: a cache to compare
    )


def _takes(module, argument: str) -> bool:
    """Whether the module's forward names `argument`."""
    import inspect

    try:
        return argument in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


def _cache_values(out, batch: int) -> int | None:
    """The values a decoder's cache (transformers' Cache: its layers' keys and values) holds after a forward of
    `batch` sequences, for one sequence; None when the output carries no such cache."""
    layers = getattr(getattr(out, "past_key_values", None), "layers", None)
    if not layers:
        return None
    total = 0
    for layer in layers:
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if tensor is None or not hasattr(tensor, "numel"):
                return None
            total += tensor.numel()
    return total // batch


def _takes_decoder_ids(module, input_shape: tuple) -> bool:
    """Whether the model's forward takes the ids of a decoder beside its input (a Hugging Face encoder-decoder's:
    one length, or two, S x T)."""
    if len(input_shape) not in (1, 2) or getattr(getattr(module, "config", None), "model_type", None) is None:
        return False
    return _takes(module, "decoder_input_ids")


def _main_tensor(out):
    """The output of a model read by its layout: a tensor, or of a ModelOutput the logits, the pooled output, or
    the last states."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    fields = dict(out.items()) if hasattr(out, "items") else {}
    return next(
        (fields[k] for k in ("logits", "pooler_output", "last_hidden_state") if fields.get(k) is not None), out[0]
    )


def _called_parameters(module, called: set) -> frozenset:
    """The ids of the parameters of the modules (ids in `called`) that forward called."""
    used = set()
    for m in module.modules():
        if id(m) in called:
            # torch.nn's modules use their submodules' weights themselves (MultiheadAttention's out_proj)
            inner = m.parameters() if type(m).__module__.startswith("torch.nn") else m.parameters(recurse=False)
            used.update(id(p) for p in inner)
    return frozenset(used)


def _verified(module, text: str, input_shape: tuple, ran: _TorchRun | None = None) -> str:
    """`text`, when the program counts what the module holds: its parameters (each shared tensor once, as
    parameters() counts), its state (`_state_buffers`) and its output's shape, with every module that holds
    parameters used by forward. Anything else is refused, naming the module or the model and both numbers:
    an import never returns a program that counts differently from the model."""
    from ..model.network import parse  # an earlier stage

    ran = ran or _layout_run(module, input_shape)
    model = type(module).__name__
    for name, sub in module.named_modules():
        unused = [p for p in sub.parameters(recurse=False) if id(p) not in ran.used]
        if unused:
            where = f"module '{name}'" if name else "the model"
            raise ImportRefused(
                f"{where} ({type(sub).__name__}) holds {sum(p.numel() for p in unused):,} "
                f"parameters that the model's forward never uses: parameters() counts them, a program "
                f"of what forward computes would not (remove the module, or use it)"
            )
    try:
        network = parse(text)
        values = network.evaluate()
        shape = tuple(network.value(d) for d in network.output_shape.dims())
    except (ParamsymError, TypeError, ValueError) as error:
        # an importer's gap, not the user's: name the model and the stage of the program that fails
        pos = getattr(error, "pos", None)
        lines = text.splitlines()
        stage = f", at `{lines[pos.line - 1].strip()[:120]}`" if pos and 0 < pos.line <= len(lines) else ""
        raise ImportRefused(
            f"the model's forward ({model}) computes something the language cannot count as written{stage}: "
            f"{str(error).splitlines()[0]}"
        ) from None
    params = sum(p.numel() for p in module.parameters())
    state = _state_buffers(module)
    for what, theirs, ours in (
        ("parameters", params, values["params"]),
        ("values of state (BatchNorm running statistics)", state, values["state"]),
    ):
        if theirs != ours:
            raise ImportRefused(
                f"{model} has {theirs:,} {what}, but the program paramsym wrote for it has {ours:,}: "
                f"the import is refused rather than inexact"
            )
    kv = values.get("kv_cache")
    if ran.cache is not None and kv is not None and kv != ran.cache:
        raise ImportRefused(
            f"{model}'s cache holds {ran.cache:,} values a sequence after a forward of length {input_shape[0]:,}, "
            f"but the program paramsym wrote for it counts a KV cache of {kv:,}: the import is "
            f"refused rather than inexact"
        )
    if shape != ran.language_shape():
        raise ImportRefused(
            f"{model} gives an output of shape {'x'.join(map(str, ran.language_shape()))} (channels "
            f"last), but the program paramsym wrote for it gives {'x'.join(map(str, shape))}"
        )
    return text
