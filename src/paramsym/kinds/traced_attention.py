"""Multi-head self-attention read from the operations a model runs, whatever its class.

Most model libraries write attention with their own classes (timm: one per family), so the importer cannot claim
them by name. It reads what they do instead: the projection Linear layers of one value x (one fused qkv, separate
q, k and v, or q and a fused kv), the reshapes and permutes into heads, `q @ k.transpose(-2, -1)` (with a scale),
softmax, dropout, `@ v` (or `F.scaled_dot_product_attention`), back to the positions, and the output projection.

That region is checked by following every element, not by matching a pattern: each value of the region is
computed again on integer tensors that name, for every element, where it comes from (the projection, the batch,
the position and the channel; then the query head and the query and key positions of a score; then the head and
the channel of a head's output), with the very operations the model runs. So a reshape, a permute, an unbind or a
chunk does what it does in the model, and what arrives at the matmuls, the softmax and the output projection is
checked to be exactly what the language's `attn(heads=h[, kv_heads=g][, head_dim=e][, bias][, causal])` computes
(docs/language.md, Attention): each query head's channels against one key head's channels, at every pair of
positions, softmax over all the keys, the weighted sum of one value head, the heads' outputs in one order at
every position into one Linear back to the width, and every channel of every projection used exactly once.
Keys and values may come from a spatial reduction of x (PVT v2, Twins: Conv2d(d, d, R, stride R) > LayerNorm on x
laid out as its map, `sr=R`; NextViT: AvgPool1d(R², stride R²) > BatchNorm1d over x's positions, `srpool=R`),
whose operations are followed the same way (`_Reader.reduce`). A bias on the output projection alone is
`projbias`; biases on the queries, values and output projection, none on the keys, `qv_bias` (separate q, k, v
Linear layers, or one qkv whose bias `torch.cat((q_bias, k_bias, v_bias))` with k_bias a buffer of zeros the
importer reads as one Linear: importer._qv_bias_linears, BEiT's and EVA's). Rotary positions on the queries and
keys, x * cos + rotate(x) * sin with tables that forward makes itself (rotate_half's or interleaved pairs, on all
positions or after prefix tokens), are `rope`: each term is followed element by element with its signs, and the
pairs are checked to turn within one head, queries and keys alike (`_Reader.rotation`, `_Reader.rotated_heads`).
Anything else that enters (a mask, a relative-position bias, a norm on queries or keys, talking heads, a learned
temperature, keys from another value) is refused, naming the module and what the language lacks.

A region whose operations, modules, arguments and shapes are those of a region already read in the same import
(`fingerprint`: the blocks of a ViT) takes that reading instead of being followed again; a region with a spatial
reduction is always followed.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ..errors import ImportRefused

_SEARCH = 12  # how far from a Linear layer the search for a matmul goes
_LARGEST = 1 << 24  # the most elements of a score tensor that the check follows (an int64 each)
_REGION = 400  # the most operations in one attention region

# operations that only move, select or repeat elements: run on the tensors of origins as they are
_MOVES = frozenset(
    {
        "reshape",
        "view",
        "permute",
        "transpose",
        "swapaxes",
        "flatten",
        "unflatten",
        "squeeze",
        "unsqueeze",
        "unbind",
        "chunk",
        "split",
        "getitem",
        "expand",
        "repeat_interleave",
        "movedim",
        "contiguous",
    }
)
_SAME = frozenset({"contiguous", "float", "to", "type_as", "clone", "half", "bfloat16"})  # the same values
_JOINS = frozenset({"cat", "stack"})  # moves of several projected values (a rotation's halves, prefix tokens)
_NEGATIONS = frozenset({"neg"})
_MATMULS = frozenset({"matmul", "bmm"})
_SOFTMAX = frozenset({"softmax", "_softmax"})
_SCALES = frozenset({"mul", "imul", "truediv", "itruediv", "div", "mul_", "div_"})
_SDPA = "scaled_dot_product_attention"

_WHAT = {
    "P": "the queries, keys or values",
    "S": "the attention scores",
    "A": "the attention weights (after softmax)",
    "O": "the heads' outputs",
    "M": "the queries or keys times a table of rotary positions",
}


def _name(node: Any) -> str | None:
    if node.op == "call_method":
        return str(node.target)
    if node.op == "call_function":
        return getattr(node.target, "__name__", None)
    return None


def _is_linear(c: Any, node: Any) -> bool:
    """A Linear layer, or a convolution of kernel 1 (a Linear layer over the channels of a map): a projection."""
    if node.op != "call_module":
        return False
    module = c.gm.get_submodule(node.target)
    name = type(module).__name__
    return name == "Linear" or (name in ("Conv1d", "Conv2d") and set(module.kernel_size) == {1})


def _passes(c: Any, node: Any) -> bool:
    """A module that the search for a matmul goes through (one that may sit inside an attention)."""
    name = type(c.gm.get_submodule(node.target)).__name__
    return name in ("Dropout", "Identity", "LayerNorm", "RMSNorm", "RmsNorm", "BatchNorm1d", "BatchNorm2d")


def _width(module: Any) -> int:
    """The channels a projection gives."""
    return int(getattr(module, "out_features", getattr(module, "out_channels", 0)))


def _nodes_in(value: Any) -> list[Any]:
    """The fx nodes in an argument (a node, a list or tuple of them, a dict)."""
    if hasattr(value, "op") and hasattr(value, "users"):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _nodes_in(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _nodes_in(v)]
    return []


def _inputs(node: Any) -> list[Any]:
    return _nodes_in(list(node.args)) + _nodes_in(dict(node.kwargs))


def begins(c: Any, node: Any) -> bool:
    """Whether the Linear layer `node` feeds a matrix product within a few operations (the start of an
    attention region): only then is the region read here."""
    if not _is_linear(c, node):
        return False
    seen, frontier = {node}, [node]
    for _ in range(_SEARCH):
        following = []
        for n in frontier:
            for user in n.users:
                if user in seen or (user.op == "call_module" and not _passes(c, user)):
                    continue
                name = _name(user)
                if name in _MATMULS or name == _SDPA:
                    return True
                seen.add(user)
                following.append(user)
        frontier = following
    return False


@dataclass
class Region:
    """An attention region: its input x, the projections of x, the operations, and the output projection."""

    source: Any
    projections: list[Any]
    nodes: list[Any]  # every node of the region, in the graph's order (projections and output projection included)
    outputs: list[Any]  # the Linear layers where it ends: one, the output projection, once read
    foreign: set[Any]  # values from outside that enter it (refused by the reader, saying where)
    output: Any = None
    heads: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    bias: bool = False
    causal: bool = False
    module_path: str = ""  # the module whose forward runs the attention
    width: int = 0  # the channels of its input and output
    last: bool = True  # its input and output have their channels last (N, ..., C), else (N, C, ...)
    # a spatial reduction of the keys' source (`_reduction_chain`): its operations from x to the projections of
    # keys and values, those projections, and the ratio R as the language writes it (sr=R or srpool=R)
    chain: list[Any] = field(default_factory=list)
    reduced: list[Any] = field(default_factory=list)
    reduction: str = ""
    proj_bias: bool = False  # a bias on the output projection only
    # (H, W) when sr=R reduces the map that its input, a sequence (B, H·W, C), lays out row by row, and the
    # language says so (map=HxW): Twins PCPVT's attention, which reads the sequence and the map's size
    sr_map: tuple[int, ...] = ()
    rope: bool = False  # queries and keys turned by rotary positions (`_Reader.rotation`)
    qv_bias: bool = False  # biases on the queries and values of one qkv Linear, none on the keys (BEiT's, EVA's)

    def text(self) -> str:
        """The attention as the language writes it."""
        parts = [f"heads={self.heads}"]
        if self.kv_heads != self.heads:
            parts.append(f"kv_heads={self.kv_heads}")
        if self.heads * self.head_dim != self.width:
            parts.append(f"head_dim={self.head_dim}")
        parts += [self.reduction] * bool(self.reduction)
        if self.sr_map:
            parts.append("map={}x{}".format(*self.sr_map))
        parts += ["bias"] * self.bias + ["projbias"] * self.proj_bias + ["qv_bias"] * self.qv_bias
        parts += ["causal"] * self.causal + ["rope"] * self.rope
        return f"attn({', '.join(parts)})"


def region(c: Any, first: Any, where: Callable[[Any], str], said: Callable[[Any], str]) -> Region:
    """The region of the attention whose first projection is the Linear layer `first`, or ImportRefused naming
    what does not belong to multi-head self-attention (`where(node)`: the module that runs a node)."""
    x = first.args[0]
    projections: list[Any] = [first]
    inner: set[Any] = set()
    outputs: list[Any] = []
    foreign: set[Any] = set()
    chain: list[Any] = []
    reduced: list[Any] = []
    order = {n: i for i, n in enumerate(c.gm.graph.nodes)}
    pending = [first]
    while pending:
        while pending:  # forward from the projections, to the output projection
            node = pending.pop()
            for user in node.users:
                if user in inner or user in projections or user in outputs:
                    continue
                if user.op == "output":
                    raise ImportRefused(
                        f"{where(node)}the model returns a value from inside the attention (queries, scores or "
                        f"weights); the language's attn has no counterpart"
                    )
                if _is_linear(c, user) and user.args[0] is not x:
                    outputs.append(user)  # the output projection: the region ends there
                    continue
                (projections.append if _is_linear(c, user) else inner.add)(user)
                pending.append(user)
            if len(inner) > _REGION:
                raise ImportRefused(f"{where(first)}the attention's operations do not end in one Linear layer")
        foreign = set()  # values from outside that enter (the last pass, when no projection is found, says)
        for node in sorted((*inner, *outputs), key=order.__getitem__):  # back from every operation: its inputs
            for source in _inputs(node):
                if source in inner or source in projections:
                    continue
                above = _projections_above(c, source, x)
                if above:  # a projection of x on its way (separate q, k, v): the next pass follows it
                    for p in above - set(projections):
                        projections.append(p)
                        pending.append(p)
                elif (found := _reduced_projection(c, source, x)) is not None:
                    # keys or values projected from a spatial reduction of x (PVT v2, Twins, NextViT): the reader
                    # checks the reduction's operations (`_Reader.reduce`)
                    layer, operations = found
                    if layer not in projections:
                        projections.append(layer)
                        reduced.append(layer)
                        pending.append(layer)
                    chain += [n for n in operations if n not in chain]
                else:
                    foreign.add(source)  # the reader refuses it, saying what it meets
    nodes = sorted({*projections, *inner, *outputs, *chain}, key=order.__getitem__)
    region = Region(x, sorted(projections, key=order.__getitem__), nodes, outputs, foreign)
    region.chain, region.reduced = sorted(chain, key=order.__getitem__), reduced
    return region


_REDUCERS = frozenset({"Conv2d", "AvgPool1d"})  # sr=R's strided convolution, srpool=R's average pooling
_REDUCTION_NORMS = frozenset({"LayerNorm", "BatchNorm1d"})


def _reduced_projection(c: Any, node: Any, x: Any) -> tuple[Any, list[Any]] | None:
    """(the projection, the operations from x to its input) when `node` is, through moves and selections only, a
    projection of a value computed from x by moves, one strided Conv2d or AvgPool1d and norms only (a spatial
    reduction of the keys' source); else None. What those operations compute is checked by the reader."""
    for _ in range(_SEARCH):
        if _is_linear(c, node):
            break
        if _name(node) not in _MOVES or len(_inputs(node)) != 1:
            return None
        node = _inputs(node)[0]
    else:
        return None
    layer, value = node, node.args[0] if node.args else None
    chain: list[Any] = []
    if value is None:
        return None
    for _ in range(_SEARCH):
        if value is x:
            reducers = [n for n in chain if n.op == "call_module" and _module_name(c, n) in _REDUCERS]
            return (layer, chain[::-1]) if len(reducers) == 1 else None
        if value is None or not hasattr(value, "op") or len(_inputs(value)) != 1:
            return None
        if value.op == "call_module":
            if _module_name(c, value) not in _REDUCERS | _REDUCTION_NORMS:
                return None
        elif _name(value) not in _MOVES:
            return None
        chain.append(value)
        value = _inputs(value)[0]
    return None


def _module_name(c: Any, node: Any) -> str:
    return type(c.gm.get_submodule(node.target)).__name__


def _projections_above(c: Any, node: Any, x: Any) -> set[Any]:
    """The Linear layers of `x` that `node` is computed from, within a few operations (not through x itself)."""
    found, seen, frontier = set(), {node}, [node]
    for _ in range(_SEARCH):
        following = []
        for n in frontier:
            if _is_linear(c, n) and n.args and n.args[0] is x:
                found.add(n)
                continue
            for a in _inputs(n):
                if a not in seen and a is not x:
                    seen.add(a)
                    following.append(a)
        frontier = following
    return found


# ---- the check: every value again on tensors of origins --------------------------------------------------


@dataclass
class _Value:
    """A value of the region on integer tensors: `kind` is P (projected channels: (projection, batch, position,
    channel)), S (scores: (batch, query head, query position, key position)), A (S after softmax), O (heads'
    outputs: (batch, position, query head, channel of the head))."""

    kind: str
    ids: Any
    # the sign of each element (+1 or -1; None: all +1): a negated half of a rotation (rotate_half's -x2)
    sign: Any = None


class _Reader:
    def __init__(self, c: Any, r: Region, where: Callable[[Any], str], said: Callable[[Any], str]):
        self.torch: Any = importlib.import_module("torch")
        self.said = said
        self.c, self.r, self.where = c, r, where
        shape = tuple(c.shapes[r.source.name])
        self.last = r.last = r.source.name in c.channels_last  # (N, ..., C), else (N, C, ...)
        if len(shape) < 3 or r.source.name in getattr(c, "pooled", ()):
            self.refuse(
                r.projections[0],
                f"projects a value of shape {shape}, which has no positions (queries of one position: class "
                f"attention): the language's attn projects queries, keys and values from one sequence or map",
            )
        self.B, self.d = shape[0], shape[-1] if self.last else shape[1]
        self.spatial = shape[1:-1] if self.last else shape[2:]
        self.axis = len(shape) - 1 if self.last else 1
        self.T = 1
        for n in self.spatial:
            self.T *= n
        modules = [c.gm.get_submodule(p.target) for p in r.projections]
        self.width = max(_width(m) for m in modules)
        self.values: dict[str, Any] = {}
        self.q_heads: Any = None
        self.k_heads: Any = None
        self.v_heads: Any = None
        self.q_to_k: Any = None
        self.q_to_v: Any = None
        self.e = self.e_v = 0
        self.S = self.T  # the key positions: T, or those of a spatial reduction (`reduce`)
        self.keys_reduced: bool | None = None  # whether the keys come from the reduced projections
        # each rotation's origins, and their channels, positions and partners' channels (`rotation`)
        self.rotations: list[tuple[Any, ...]] = []

    def refuse(self, node: Any, text: str) -> NoReturn:
        """Refused at `node`, in the words of the module that runs the attention."""
        inner = next((n for n in self.r.nodes if _name(n) in _MATMULS or _name(n) == _SDPA), node)
        raise ImportRefused(f"{self.where(inner if node.op == 'call_module' else node)}{self.said(node)} {text}")

    def run(self) -> Region:
        if self.r.chain:
            self.reduce()
        for node in self.r.nodes:
            if node in self.r.chain:
                continue
            try:
                self.values[node.name] = self.read(node)
            except (RuntimeError, IndexError, TypeError, ValueError) as error:  # an operation no check foresaw
                detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                self.refuse(node, f"cannot be followed inside the attention ({detail})")
        return self.finish()

    def arg(self, value: Any) -> Any:
        if hasattr(value, "op") and hasattr(value, "users"):
            return self.values.get(value.name, value)
        if isinstance(value, (list, tuple)):
            return type(value)(self.arg(v) for v in value)
        return value

    def ids(self, value: Any) -> Any:
        """The tensors (or tuples of them) of a _Value, for running an operation."""
        if isinstance(value, _Value):
            return value.ids
        if isinstance(value, (list, tuple)):
            return type(value)(self.ids(v) for v in value)
        return value

    def kind_of(self, value: Any) -> str | None:
        if isinstance(value, _Value):
            return value.kind
        if isinstance(value, (list, tuple)):
            kinds = {self.kind_of(v) for v in value} - {None}
            return kinds.pop() if len(kinds) == 1 else None
        return None

    def wrap(self, kind: str, result: Any, sign: Any = None) -> Any:
        if isinstance(result, (list, tuple)):
            signs = sign if isinstance(sign, (list, tuple)) else [None] * len(result)
            return tuple(self.wrap(kind, r, g) for r, g in zip(result, signs))
        return _Value(kind, result, sign)

    def signs(self, value: Any) -> Any:
        """The signs of a _Value (or tuples of them), ones where none are kept, for running a move on them."""
        if isinstance(value, _Value):
            return value.sign if value.sign is not None else self.torch.ones_like(value.ids)
        if isinstance(value, (list, tuple)):
            return type(value)(self.signs(v) for v in value)
        return value

    @staticmethod
    def negated(value: Any) -> bool:
        """Whether some element of a _Value (or of tuples of them) is negated."""
        if isinstance(value, _Value):
            return value.sign is not None and bool((value.sign < 0).any())
        if isinstance(value, (list, tuple)):
            return any(_Reader.negated(v) for v in value)
        return False

    def read(self, node: Any) -> Any:
        c = self.c
        if node.op == "call_module":
            module = c.gm.get_submodule(node.target)
            cls = type(module).__name__
            if node in self.r.projections:
                return self.projection(node, module)
            value = self.arg(node.args[0])
            if node in self.r.outputs:
                return self.output(node, module, value)
            if cls in ("Dropout", "Identity"):
                return value
            self.refuse(
                node,
                f"({cls}) acts on {_WHAT.get(value.kind, 'a value')} inside the attention (a norm on queries or "
                f"keys, talking heads, ...): the language's attn has no counterpart",
            )
        name = _name(node)
        args = [self.arg(a) for a in node.args]
        kwargs = {k: self.arg(v) for k, v in node.kwargs.items()}
        if name == _SDPA and (kwargs.get("attn_mask") is not None or (len(args) > 3 and args[3] is not None)):
            self.refuse(node, "takes a mask or bias (attn_mask): the language's attn has no counterpart")
        if name in ("mul", "mul_") and len(args) == 2 and not kwargs:
            term = self.rotation_term(node, args)
            if term is not None:
                return term
        self.foreign(node, [a for a in _inputs(node) if a in self.r.foreign])
        tensors = [a for a in (*args, *kwargs.values()) if self.kind_of(a) is not None]
        kind = self.kind_of(tensors[0]) if tensors else None
        if (name in _MATMULS or name == _SDPA) and self.negated(tensors):
            self.refuse(node, "takes negated queries, keys or values (not the halves of a rotation)")
        if name in _SAME and len(tensors) == 1 and isinstance(args[0], _Value):
            return args[0]
        if name == "type_as" and len(args) == 2 and isinstance(args[0], _Value) and not kwargs:
            return args[0]  # q.type_as(v): the dtype of another value of the attention, the same values
        if name in ("dropout", "dropout_") and isinstance(args[0], _Value):
            return args[0]
        if name in _NEGATIONS and len(args) == 1 and isinstance(args[0], _Value) and kind == "P":
            return _Value("P", args[0].ids, -self.signs(args[0]))  # a half of a rotation (rotate_half's -x2)
        joined = name in _JOINS and len(tensors) == 1 and kind == "P" and isinstance(args[0], (list, tuple))
        if (name in _MOVES or joined) and len(tensors) == 1 and kind is not None:
            plain_args = [self.ids(a) for a in args]
            plain_kwargs = {k: self.ids(v) for k, v in kwargs.items()}
            signed = self.negated(tensors)
            if node.op == "call_method":
                # a view that PyTorch allows is a reshape (the tensors of origins are not laid out in memory alike)
                method = "reshape" if name == "view" else str(name)
                result = getattr(plain_args[0], method)(*plain_args[1:], **plain_kwargs)
                sign = getattr(self.signs(args[0]), method)(*plain_args[1:], **plain_kwargs) if signed else None
            else:
                result = node.target(*plain_args, **plain_kwargs)
                sign = node.target(*[self.signs(a) for a in args], **plain_kwargs) if signed else None
            self.same_shape(node, result)
            return self.wrap(kind, result, sign)
        if name in ("add", "add_") and kind == "M" and len(args) == 2 and len(tensors) == 2 and not kwargs:
            return self.rotation(node, args[0], args[1])
        if name in _SCALES and len(tensors) == 1 and len(args) == 2 and kind in ("P", "S"):
            other = args[1] if isinstance(args[0], _Value) else args[0]
            if isinstance(other, (int, float)) and not isinstance(other, bool) and other != 0:
                if name.startswith(("truediv", "itruediv", "div")) and not isinstance(args[0], _Value):
                    self.refuse(node, "divides by the attention's values: the language's attn has no counterpart")
                return tensors[0]
        if name in _MATMULS and len(tensors) == 2 and len(args) == 2:
            a, b = args
            if a.kind == "P" and b.kind == "P":
                return self.scores(node, a.ids, b.ids)
            if a.kind == "A" and b.kind == "P":
                return self.weighted(node, a.ids, b.ids)
            if a.kind == "P" and b.kind == "A":  # v @ attn.transpose(-2, -1): the same, transposed
                out = self.weighted(node, b.ids.transpose(-2, -1), a.ids.transpose(-2, -1))
                return _Value("O", out.ids.transpose(-2, -1))
        if name in _SOFTMAX and kind == "S" and isinstance(args[0], _Value):
            dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
            return self.softmax(node, args[0].ids, dim)
        if name == _SDPA and kind == "P":
            return self.sdpa(node, args, kwargs)
        what = _WHAT.get(kind or "", "a value")
        self.refuse(
            node,
            f"works on {what} inside the attention (a mask, a relative-position bias, a learned temperature, talking "
            f"heads, ...): the language's attn computes softmax(q·k)·v per head and nothing else",
        )

    def foreign(self, node: Any, values: list[Any]) -> None:
        """Refused: a value from outside the attention's projections enters it at `node`."""
        if not values:
            return
        inside = [self.values[a.name] for a in _inputs(node) if isinstance(self.values.get(a.name), _Value)]
        what = _WHAT.get(inside[0].kind, "a value") if inside else "the attention"
        value = values[0]
        if value.op == "get_attr" and value.target.startswith("_tensor_constant"):
            other = "a tensor that forward makes itself"
        elif value.op == "get_attr":
            other = f"'{value.target}', a parameter or buffer of the model"
        elif self.projected_elsewhere(value) is not None:
            layer = self.projected_elsewhere(value)
            other = (
                f"keys or values that {self.said(layer)} projects from another value than the queries' (a spatial "
                f"reduction, cross-attention)"
            )
        else:
            other = f"{self.said(value)}, which is not a projection of the attention's input"
        self.refuse(
            node,
            f"combines {what} with {other} (a relative-position bias, a mask, a temperature, talking heads, keys or "
            f"values from another value): the language's attn projects queries, keys and values from one input and "
            f"computes softmax(q·k)·v per head, nothing else",
        )

    # -- rotary positions (rope): x * cos + rotate(x) * sin on queries and keys

    @staticmethod
    def table(node: Any) -> bool:
        """Whether `node` is a table that forward makes itself (torch.fx keeps it as a constant: it depends on no
        input and no parameter), as the sines and cosines of rotary positions are."""
        return node.op == "get_attr" and str(node.target).startswith("_tensor_constant")

    def rotation_term(self, node: Any, args: list[Any]) -> _Value | None:
        """x * table (or table * x), for x projected queries or keys (or their halves turned, some negated) and a
        table that forward makes itself: a term of a rotation, which only `rotation` takes; else None."""
        values = [a for a in args if isinstance(a, _Value)]
        tables = [a for a in node.args if hasattr(a, "op") and a in self.r.foreign and self.table(a)]
        if len(values) != 1 or len(tables) != 1 or values[0].kind != "P":
            return None
        value = values[0]
        if tuple(self.c.shapes.get(node.name, ())) != tuple(value.ids.shape):
            self.refuse(node, "multiplies the queries or keys by a table that changes their shape: not a rotation")
        return _Value("M", value.ids, value.sign)

    def rotation(self, node: Any, a: _Value, b: _Value) -> _Value:
        """x * cos + turned(x) * sin: rotary positions on queries or keys, where turned(x) takes, for every element
        of x, its partner (of the same projection, batch and position; every channel's partner's partner being
        itself) with one of the two negated (rotate_half's cat(-x2, x1), or the pairs side by side interleaved).
        The rotated value stands for x; the pairs are checked to lie in one head, the same for queries and keys,
        in `rotated_heads`."""
        torch = self.torch
        plain, turned = (a, b) if not self.negated(a) else (b, a)
        if self.negated(plain) or not self.negated(turned) or plain.ids.shape != turned.ids.shape:
            self.refuse(
                node,
                "adds two products of the queries or keys with tables that are not x * cos + rotate(x) * sin "
                "(rotary positions): the language's attn has no counterpart",
            )
        x, partner, sign = plain.ids.flatten(), turned.ids.flatten(), turned.sign.flatten()
        ch, b, t = self.decode(x)
        ch2, b2, t2 = self.decode(partner)
        # where each origin is in x (every origin once), by a table over all the projected channels' origins
        size = len(self.r.projections) * self.B * self.T * self.width
        where = torch.full((size,), -1, dtype=torch.long)
        where[x] = torch.arange(x.numel())
        back = where[partner]  # the element of x that is each element's partner
        if (
            not bool((b == b2).all())
            or not bool((t == t2).all())
            or not bool((ch // self.width == ch2 // self.width).all())
            or bool((x == partner).any())
            or not bool((where[x] == torch.arange(x.numel())).all())
            or bool((back < 0).any())
        ):
            self.refuse(
                node,
                "rotates channels with others than their partners at the same position (rotary positions turn "
                "pairs of a head's channels): the language's attn has no counterpart",
            )
        if not bool((partner[back] == x).all()) or not bool((sign[back] == -sign).all()):
            self.refuse(
                node,
                "turns the queries or keys other than by pairs (x, y) -> (-y, x): not rotary positions, which the "
                "language's attn has",
            )
        self.rotations.append((x, ch, t, ch2))
        return _Value("P", plain.ids)

    def rotated_heads(self, out: Any) -> None:
        """Rotary positions (`rotation`): every pair in one query head or one key head, none in the values; the
        same pairs of the heads' channels at the same positions in every head of the queries and of the keys
        (tokens such as a class token may stay unrotated). Sets r.rope."""
        if not self.rotations:
            return
        torch = self.torch
        x, ch, t, ch2 = (torch.cat([p[i] for p in self.rotations]) for i in range(4))
        if int(torch.bincount(x).max()) > 1:
            self.refuse(out, "ends an attention that rotates some channels twice: not rotary positions")
        size = len(self.r.projections) * self.width
        role = torch.full((size,), -1, dtype=torch.long)
        head = torch.zeros(size, dtype=torch.long)
        index = torch.zeros(size, dtype=torch.long)
        for i, heads in enumerate((self.q_heads, self.k_heads, self.v_heads)):
            role[heads.flatten()] = i
            head[heads] = torch.arange(len(heads)).view(-1, 1)
            index[heads] = torch.arange(heads.shape[1])
        if not bool((role[ch] == role[ch2]).all()) or not bool((head[ch] == head[ch2]).all()):
            self.refuse(
                out, "ends an attention that rotates channels of different heads together: not rotary positions"
            )
        if bool((role[ch] == 2).any()) or bool((role[ch] < 0).any()):
            self.refuse(out, "ends an attention that rotates its values: the language's rope turns queries and keys")
        E, T = self.e, self.T
        found = []
        for i, heads in ((0, self.q_heads), (1, self.k_heads)):
            mine = role[ch] == i
            if not bool(mine.any()):
                what = "queries but not its keys" if i else "keys but not its queries"
                self.refuse(out, f"ends an attention that rotates its {what}: the language's rope turns both")
            # (position, channel in the head, partner's channel): each at most once per head and sample (every
            # origin is rotated once), so every head of every sample has the same ones when each is there B·h times
            pairs = (t[mine] * E + index[ch[mine]]) * E + index[ch2[mine]]
            counts = torch.bincount(pairs, minlength=T * E * E)
            present = counts > 0
            if not bool((counts[present] == self.B * len(heads)).all()):
                self.refuse(out, "ends an attention that rotates its heads differently: not rotary positions")
            found.append(present)
        if not bool((found[0] == found[1]).all()):
            self.refuse(out, "ends an attention that rotates its queries and keys differently: not rotary positions")
        if E % 2:
            self.refuse(
                out,
                f"ends an attention with rotary positions in heads of {E} channels: the language's rope "
                "turns pairs of channels, in heads of an even width",
            )
        self.r.rope = True

    def projected_elsewhere(self, value: Any) -> Any:
        """The projection layer (of another value than the attention's input) that `value` comes from through
        reshapes, permutes and selections only, or None."""
        for _ in range(_SEARCH):
            if _is_linear(self.c, value):
                return value
            if _name(value) not in _MOVES or not _inputs(value):
                return None
            value = _inputs(value)[0]
        return None

    def same_shape(self, node: Any, result: Any) -> None:
        expected = self.c.shapes.get(node.name)
        if expected is not None and hasattr(result, "shape") and tuple(result.shape) != tuple(expected):
            self.refuse(node, f"gives {tuple(result.shape)} here but {tuple(expected)} in the model")

    # -- a spatial reduction of the keys' source: sr=R (PVT v2, Twins), srpool=R (NextViT)

    def reduce(self) -> None:
        """Checks the operations from x to the keys' and values' projections, following every element as `read`
        does: moves of x, then Conv2d(d, d, R, stride R, bias) on x laid out as its map (B, d, H, W) and a
        LayerNorm over the channels (`sr=R`), or AvgPool1d(R², stride R²) over x's positions in their order
        (B, d, T) and a BatchNorm1d (`srpool=R`), moves to the S reduced positions (B, S, d). Sets S."""
        torch, r, c, d, B = self.torch, self.r, self.c, self.d, self.B
        first = r.chain[0]
        if not self.last:
            self.refuse(first, "reduces an input whose channels are not last: the language's attn has no counterpart")
        ids = (torch.arange(B).view(-1, *[1] * len(self.spatial), 1) * self.T) * d
        ids = ids + torch.arange(self.T).view(1, *self.spatial, 1) * d + torch.arange(d)
        reducer: str | None = None
        norm: str | None = None
        for node in r.chain:
            if node.op != "call_module":
                args = [ids if a is r.source or (hasattr(a, "name") and a in r.chain) else a for a in node.args]
                kwargs = dict(node.kwargs)
                if node.op == "call_method":
                    result = getattr(args[0], "reshape" if node.target == "view" else node.target)(*args[1:], **kwargs)
                else:
                    result = node.target(*args, **kwargs)
                if not hasattr(result, "shape"):
                    self.refuse(node, "reduces the keys' source with an operation paramsym cannot follow")
                self.same_shape(node, result)
                ids = result
                continue
            module = c.gm.get_submodule(node.target)
            name = type(module).__name__
            if name in _REDUCERS:
                if reducer is not None:
                    self.refuse(node, f"({name}) reduces the keys' source twice: the language's attn reduces it once")
                reducer, ids = name, self.reducer(node, module, ids)
            elif norm is not None or reducer is None:
                self.refuse(
                    node,
                    f"({name}) normalises the keys' source {'twice' if norm else 'before reducing it'}: the "
                    f"language's attn (sr=, srpool=) reduces it, then normalises it once",
                )
            else:
                norm = name
                self.reduction_norm(node, module, ids)
        expected = {"Conv2d": "LayerNorm", "AvgPool1d": "BatchNorm1d"}[reducer or "Conv2d"]
        if norm != expected:
            self.refuse(
                r.chain[-1],
                f"reduces the keys' source with {reducer} and {norm or 'no norm'}: the language's attn has "
                f"Conv2d > LayerNorm (sr=R) or AvgPool1d > BatchNorm1d (srpool=R)",
            )
        B_, S = self.B, self.S
        ok = tuple(ids.shape) == (B_, S, d)
        if ok:
            b, rest = ids // (S * d), ids % (S * d)
            ok = bool((b == torch.arange(B_).view(-1, 1, 1)).all()) and bool((rest % d == torch.arange(d)).all())
            positions = (rest // d)[:, :, 0].sort(dim=-1).values
            ok = ok and bool((positions == torch.arange(S)).all())
        if not ok:
            self.refuse(r.chain[-1], f"gives the reduced keys' source as {tuple(ids.shape)}, not ({B_}, {S}, {d})")

    def reducer(self, node: Any, module: Any, ids: Any) -> Any:
        """The strided Conv2d (sr=R) or AvgPool1d (srpool=R) of a spatial reduction: its input must be x laid
        out as the language's value (the map (B, d, H, W); the positions in their order (B, d, T)); gives the ids
        of its output, (batch, reduced position, channel)."""
        torch, d, B, T = self.torch, self.d, self.B, self.T
        name = type(module).__name__
        out = tuple(self.c.shapes[node.name])
        if name == "Conv2d":
            side = self.map_sides(node)
            expected = (torch.arange(B).view(-1, 1, 1, 1) * T + torch.arange(T).view(1, 1, *side)) * d
            expected = expected + torch.arange(d).view(1, -1, 1, 1)
            R = module.kernel_size[0]
            if (
                module.in_channels != d
                or module.out_channels != d
                or set(module.kernel_size) != {R}
                or tuple(module.stride) != (R, R)
                or set(module.dilation) != {1}
                or module.groups != 1
                or module.padding not in ("valid", (0, 0))
                or module.bias is None
            ):
                self.refuse(
                    node,
                    f"({name}) reduces the keys' source other than as Conv2d({d}, {d}, R, stride R, bias): the "
                    f"language's attn has sr=R",
                )
            self.r.reduction = f"sr={R}"
        else:
            expected = (torch.arange(B).view(-1, 1, 1) * T + torch.arange(T).view(1, 1, -1)) * d
            expected = expected + torch.arange(d).view(1, -1, 1)
            (K,) = tuple(module.kernel_size)
            R = math.isqrt(K)
            if R * R != K or tuple(module.stride) != (K,) or tuple(module.padding) != (0,) or module.ceil_mode:
                self.refuse(
                    node,
                    f"({name}) reduces the keys' source other than by averages of R² positions (kernel R², stride "
                    f"R², no padding): the language's attn has srpool=R",
                )
            self.r.reduction = f"srpool={R}"
        if tuple(ids.shape) != tuple(expected.shape) or not bool((ids == expected).all()):
            what = "the input's map (N, C, H, W)" if name == "Conv2d" else "the input's positions (N, C, T)"
            self.refuse(node, f"({name}) reduces a {tuple(ids.shape)} value that is not {what}")
        spatial = out[2:]
        self.S = 1
        for n in spatial:
            self.S *= n
        if self.S < 1:
            self.refuse(node, f"({name}) reduces the keys' source to no positions")
        positions = torch.arange(self.S).view(1, 1, *spatial)
        return (torch.arange(B).view(-1, 1, *[1] * len(spatial)) * self.S + positions) * d + torch.arange(d).view(
            1, -1, *[1] * len(spatial)
        )

    def map_sides(self, node: Any) -> tuple[int, ...]:
        """(H, W): the map that x is (B, H, W, C), or lays out as a sequence (B, H·W, C) (`c.sequences`); or, for a
        sequence whose layout the importer does not know, the map (B, d, H, W) that the convolution reads, which
        the language says (map=HxW; `reducer` checks that it is x's positions row by row)."""
        if len(self.spatial) == 2:
            return tuple(self.spatial)
        sequences = getattr(self.c, "sequences", {})
        layout = sequences.get(self.c._through(self.r.source)) if self.r.source.name in self.c.ops else None
        read = tuple(self.c.shapes.get(node.args[0].name, ())) if node.args and hasattr(node.args[0], "name") else ()
        if layout is None and len(self.spatial) == 1 and len(read) == 4 and read[2] * read[3] == self.T:
            self.r.sr_map = read[2:]
            return read[2:]
        # the positions row by row (H, then W) along one axis, the channels along another (x is (B, T, C))
        if layout is None or len(layout.dims) != 3 or sorted(tuple(a) for a in layout.axes if a) != [(0, 1), (2,)]:
            self.refuse(
                node,
                "reduces a sequence as a map (sr=R needs the attention's input to be the map): the language's attn "
                "reduces a map, or averages positions (srpool=R)",
            )
        return tuple(layout.dims[:2])

    def reduction_norm(self, node: Any, module: Any, ids: Any) -> None:
        """LayerNorm(d) over the channels of (B, S, d) (sr=R), BatchNorm1d(d) over those of (B, d, S) (srpool=R),
        each with its scale and shift (BatchNorm1d with its running statistics)."""
        d = self.d
        name = type(module).__name__
        if name == "LayerNorm":
            ok = tuple(module.normalized_shape) == (d,) and module.weight is not None and module.bias is not None
            channels = ids.movedim(-1, 1) if ids.dim() >= 2 else ids
        else:
            ok = module.num_features == d and module.affine and module.track_running_stats
            channels = ids
        line = self.torch.arange(d).view(1, -1, *[1] * (ids.dim() - 2))
        if not ok or ids.dim() < 2 or channels.shape[1] != d or not bool((channels % d == line).all()):
            self.refuse(
                node,
                f"({name}) normalises the reduced keys' source other than over its {d} channels, with a scale and "
                f"a shift: the language's attn (sr=, srpool=) has no counterpart",
            )

    # -- the projections

    def layer(self, node: Any, module: Any) -> None:
        """A projection is a Linear layer over the channels of (N, ..., C), or a convolution of kernel 1, stride 1,
        no padding, one group over those of (N, C, ...)."""
        name = type(module).__name__
        if self.last and name != "Linear":
            self.refuse(node, f"({name}) projects a value whose channels are last: not over its channels")
        if not self.last and (
            name == "Linear"
            or set(module.stride) != {1}
            or set(module.dilation) != {1}
            or module.groups != 1
            or module.padding not in ("valid", (0,) * len(module.kernel_size))
        ):
            self.refuse(node, f"({name}) projects a map other than as one Linear layer per position")

    def projection(self, node: Any, module: Any) -> _Value:
        torch = self.torch
        self.layer(node, module)
        shape, width, k = tuple(self.c.shapes[node.name]), _width(module), len(self.spatial)
        j = self.r.projections.index(node)
        t = torch.arange(self.T).view(self.spatial)
        expected: tuple[int, ...]
        ch: tuple[int, ...]
        if self.last:
            expected, b, t, ch = (self.B, *self.spatial, width), (-1, *[1] * k, 1), t.unsqueeze(-1), (width,)
        else:
            expected, b, t, ch = (self.B, width, *self.spatial), (-1, 1, *[1] * k), t.unsqueeze(0), (width, *[1] * k)
        if node in self.r.reduced:  # keys and values of the S reduced positions, a sequence (N, S, C)
            expected, b, t, ch = (self.B, self.S, width), (-1, 1, 1), torch.arange(self.S).view(-1, 1), (width,)
        if shape != expected:
            self.refuse(node, f"gives a value of shape {shape}, not {expected}")
        b_ids = torch.arange(self.B).view(b)
        return _Value("P", ((j * self.B + b_ids) * self.T + t) * self.width + torch.arange(width).view(ch))

    def decode(self, ids: Any) -> tuple[Any, Any, Any]:
        """(channel over every projection, batch, position) of projected channels."""
        W, T, B = self.width, self.T, self.B
        j = ids // (W * T * B)
        return j * W + ids % W, (ids // (W * T)) % B, (ids // W) % T

    def rows(self, node: Any, ids: Any, role: str) -> tuple[Any, Any, Any]:
        """A tensor (I, M, E) of projected channels as rows of E channels: per i the channels of each row (one
        head, the same for every row), the batch, and the position of each row."""
        ch, b, t = self.decode(ids)
        if not bool((t == t[..., :1]).all()) or not bool((b == b[..., :1]).all()):
            self.refuse(node, f"mixes positions or batches in the {role} of a head: not attention by heads")
        if not bool((ch == ch[:, :1]).all()) or not bool((b == b[:, :1, :1]).all()):
            self.refuse(node, f"gives different {role} channels to the positions of one head: not attention by heads")
        return ch[:, 0, :], b[:, 0, 0], t[..., 0]

    @staticmethod
    def heads_of(torch: Any, channels: Any) -> tuple[Any, Any]:
        heads, index = torch.unique(channels, dim=0, return_inverse=True)
        return heads, index

    def mapping(self, node: Any, src: Any, dst: Any, size: int, what: str) -> Any:
        """The map from query heads to key (or value) heads, refused if a query head meets two of them."""
        torch = self.torch
        table = torch.full((size,), -1, dtype=torch.long)
        table[src] = dst
        if not bool((table[src] == dst).all()) or bool((table < 0).any()):
            self.refuse(node, f"pairs a query head with more than one {what} head: not attention by heads")
        return table

    # -- q @ k^T, softmax, @ v

    def scores(self, node: Any, q: Any, kt: Any) -> _Value:
        lead, base, tq, tk = self.score_factors(node, q, kt)
        M, N = tq.shape[-1], tk.shape[-1]
        if lead.numel() * M * N > _LARGEST:
            self.refuse(node, f"gives {lead.numel() * M * N:,} scores, more than paramsym checks")
        ids = (base.view(-1, 1, 1) * self.T + tq.view(-1, M, 1)) * self.T + tk.view(-1, 1, N)
        return _Value("S", ids.reshape(*lead, M, N))

    def score_factors(self, node: Any, q: Any, kt: Any) -> tuple[Any, Any, Any, Any]:
        """q @ kt checked: (the leading shape, and per leading index i the batch and query head `base` (I,), the
        query positions `tq` (I, M) and the key positions `tk` (I, N)); a score's origin is (base, tq, tk)."""
        torch = self.torch
        if self.q_heads is not None:
            self.refuse(node, "is a second product of queries and keys: the language's attn has one")
        lead = torch.broadcast_shapes(q.shape[:-2], kt.shape[:-2])
        M, E, N = q.shape[-2], q.shape[-1], kt.shape[-1]
        q = q.expand(*lead, M, E).reshape(-1, M, E)
        k = kt.expand(*lead, E, N).transpose(-1, -2).reshape(-1, N, E)
        qch, qb, tq = self.rows(node, q, "queries")
        kch, kb, tk = self.rows(node, k, "keys")
        if not bool((qb == kb).all()):
            self.refuse(node, "pairs queries and keys of different samples")
        self.keys_reduced = self.from_reduced(node, qch, kch, "keys")
        self.q_heads, q_index = self.heads_of(torch, qch)
        self.k_heads, k_index = self.heads_of(torch, kch)
        self.q_to_k = self.mapping(node, q_index, k_index, len(self.q_heads), "key")
        self.e, H = E, len(self.q_heads)
        return torch.Size(lead), qb * H + q_index, tq, tk

    def from_reduced(self, node: Any, qch: Any, kch: Any, role: str) -> bool:
        """Whether the keys (or values) of channels `kch` come from the projections of the reduced source (then
        their positions are its S), refused unless the queries come from x and keys and values from one source."""
        reduced = {self.r.projections.index(p) for p in self.r.reduced}
        if not reduced:
            return False
        q_from = {int(j) in reduced for j in (qch // self.width).unique()}
        k_from = {int(j) in reduced for j in (kch // self.width).unique()}
        if q_from != {False} or len(k_from) != 1:
            self.refuse(
                node,
                f"takes queries or {role} from both the input and its spatial reduction: the language's attn (sr=, "
                f"srpool=) projects queries from its input and keys and values from the reduced input",
            )
        if self.keys_reduced is not None and k_from != {self.keys_reduced}:
            self.refuse(node, "takes keys and values from different sources (the input and its spatial reduction)")
        return k_from == {True}

    def softmax(self, node: Any, ids: Any, dim: Any) -> _Value:
        T, S = self.T, self.S if self.keys_reduced else self.T
        if dim is None:
            self.refuse(node, "takes a softmax without naming its axis")
        rows = ids.movedim(dim, -1)
        rows = rows.reshape(-1, rows.shape[-1])
        if rows.shape[-1] != S or not bool((rows // T == rows[:, :1] // T).all()):
            self.refuse(node, "takes a softmax over something other than the keys of one query")
        keys = (rows % T).sort(dim=-1).values
        if not bool((keys == self.torch.arange(S)).all()):
            self.refuse(node, "takes a softmax over some keys only (windows or a mask): attn attends to all of them")
        return _Value("A", ids)

    def weighted(self, node: Any, a: Any, v: Any) -> _Value:
        torch = self.torch
        if self.q_heads is None or self.v_heads is not None:
            self.refuse(node, "weighs values before or after the one product of queries and keys")
        T = self.T
        lead = torch.broadcast_shapes(a.shape[:-2], v.shape[:-2])
        M, N = a.shape[-2], a.shape[-1]
        a = a.expand(*lead, M, N).reshape(-1, M, N)
        base, tq, tk = a // (T * T), (a // T) % T, a % T
        if not bool((base == base[:, :1, :1]).all()) or not bool((tk == tk[:, :1, :]).all()):
            self.refuse(node, "weighs values with the weights of several heads or samples: not attention by heads")
        if not bool((tq == tq[:, :, :1]).all()):
            self.refuse(node, "sums values over weights of several queries: not attention by heads")
        v = v.expand(*lead, N, v.shape[-1])
        return self.weigh(node, torch.Size(lead), base[:, 0, 0], tq[:, :, 0], tk[:, 0, :], v)

    def weigh(self, node: Any, lead: Any, base: Any, tq: Any, tk: Any, v: Any) -> _Value:
        """The weights of scores (base, tq, tk) (`score_factors`, per leading index i of `lead`) times the values
        v: checked to weigh the values of one head at the keys' positions; the heads' outputs."""
        torch = self.torch
        if self.q_heads is None or self.v_heads is not None:
            self.refuse(node, "weighs values before or after the one product of queries and keys")
        T, H = self.T, len(self.q_heads)
        M, N, E = tq.shape[-1], tk.shape[-1], v.shape[-1]
        if tuple(v.shape) != (*lead, N, E) or tuple(base.shape) != (lead.numel(),):
            self.refuse(node, "weighs values of another layout than the weights': not attention by heads")
        v = v.reshape(-1, N, E)
        vch, vb, tv = self.rows(node, v, "values")
        self.from_reduced(node, self.q_heads[:, :1], vch, "values")
        if not bool((vb == base // H).all()) or not bool((tv == tk).all()):
            self.refuse(node, "weighs the values of other positions than the keys' weights are for")
        self.v_heads, v_index = self.heads_of(torch, vch)
        self.q_to_v = self.mapping(node, base % H, v_index, H, "value")
        self.e_v = E
        ids = (((base // H).view(-1, 1, 1) * T + tq.view(-1, M, 1)) * H + (base % H).view(-1, 1, 1)) * E
        ids = ids + torch.arange(E)
        return _Value("O", ids.reshape(*lead, M, E))

    def sdpa(self, node: Any, args: list[Any], kwargs: dict[str, Any]) -> _Value:
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
        given = dict(zip(names, args))
        given.update(kwargs)
        if given.get("attn_mask") is not None:
            self.refuse(node, "takes a mask or bias (attn_mask): the language's attn has no counterpart")
        q, k, v = (given[n] for n in names[:3])
        if not all(isinstance(t, _Value) and t.kind == "P" for t in (q, k, v)):
            self.refuse(node, "attends with queries, keys or values that are not projections of the input")
        kt, vt = k.ids, v.ids
        if given.get("enable_gqa") and kt.dim() >= 3 and kt.shape[-3] != q.ids.shape[-3]:
            kt = kt.repeat_interleave(q.ids.shape[-3] // kt.shape[-3], dim=-3)
            vt = vt.repeat_interleave(q.ids.shape[-3] // vt.shape[-3], dim=-3)
        # the scores are followed by their factors (batch and head, query position, key position), never as one
        # tensor of every score: softmax over the last axis, then the weighted sum, as weighted() checks them
        lead, base, tq, tk = self.score_factors(node, q.ids, kt.transpose(-2, -1))
        S = self.S if self.keys_reduced else self.T
        if tk.shape[-1] != S or not bool((tk.sort(dim=-1).values == self.torch.arange(S)).all()):
            self.refuse(node, "takes a softmax over some keys only (windows or a mask): attn attends to all of them")
        self.r.causal = bool(given.get("is_causal"))
        lead_v = self.torch.broadcast_shapes(lead, vt.shape[:-2])
        if tuple(lead_v) != tuple(lead):  # values broadcast over more leading axes than the scores

            def spread(f: Any) -> Any:
                return f.reshape(*lead, *f.shape[1:]).expand(*lead_v, *f.shape[1:]).reshape(-1, *f.shape[1:])

            lead, base, tq, tk = self.torch.Size(lead_v), spread(base), spread(tq), spread(tk)
        vt = vt.expand(*lead, *vt.shape[-2:])
        return self.weigh(node, lead, base, tq, tk, vt)

    # -- the output projection

    def output(self, node: Any, module: Any, value: Any) -> _Value:
        torch = self.torch
        if not isinstance(value, _Value) or value.kind != "O" or self.v_heads is None:
            what = _WHAT.get(value.kind, "a value") if isinstance(value, _Value) else "a value"
            self.refuse(
                node,
                f"(Linear) acts on {what} inside the attention (talking heads, ...), not on the heads' outputs: "
                f"the language's attn has no counterpart",
            )
        if self.r.output is not None:
            self.refuse(node, "is a second output projection of one attention: the language's attn has one")
        self.r.output = node
        self.layer(node, module)
        ids, H, E, T, B = value.ids, len(self.q_heads), self.e_v, self.T, self.B
        expected = (B, *self.spatial, H * E) if self.last else (B, H * E, *self.spatial)
        if tuple(ids.shape) != expected:
            self.refuse(node, f"takes the heads' outputs as {tuple(ids.shape)}, not {expected}")
        ids = ids.movedim(self.axis, -1).reshape(B, T, H * E)
        b, t, he = ids // (T * H * E), (ids // (H * E)) % T, ids % (H * E)
        if not bool((b == torch.arange(B).view(-1, 1, 1)).all()) or not bool(
            (t == torch.arange(T).view(1, -1, 1)).all()
        ):
            self.refuse(node, "takes the heads' outputs at other positions than their queries'")
        if not bool((he == he[:1, :1]).all()) or not bool((he[0, 0].sort().values == torch.arange(H * E)).all()):
            self.refuse(node, "takes the heads' outputs in different orders at different positions")
        return _Value("Y", ids)

    def finish(self) -> Region:
        torch, r, c = self.torch, self.r, self.c
        out = r.output
        if out is None:
            self.refuse(r.outputs[-1] if r.outputs else r.projections[0], "ends an attention without an output Linear")
        if self.q_heads is None or self.v_heads is None:
            self.refuse(out, "ends an attention without its product of queries and keys and its weighted sum")
        if self.r.reduced and not self.keys_reduced:
            self.refuse(out, "ends an attention that does not attend to the keys of its spatial reduction")
        H, G, Gv, e = len(self.q_heads), len(self.k_heads), len(self.v_heads), self.e
        if self.e_v != e or Gv != G:
            self.refuse(
                out,
                f"ends an attention whose value heads ({Gv} of {self.e_v} channels) differ from its key heads "
                f"({G} of {e}): the language's attn has one head width for keys and values",
            )
        if H % G or any(int(n) != H // G for n in torch.bincount(self.q_to_k, minlength=G)):
            self.refuse(out, f"ends an attention whose {H} query heads do not share its {G} key heads equally")
        pairs = {(int(k), int(v)) for k, v in zip(self.q_to_k, self.q_to_v)}
        if len(pairs) != G:
            self.refuse(out, "ends an attention whose query heads share keys and values differently")
        used = torch.cat([self.q_heads.flatten(), self.k_heads.flatten(), self.v_heads.flatten()])
        modules = [c.gm.get_submodule(p.target) for p in r.projections]
        total = sum(_width(m) for m in modules)
        if used.numel() != total or used.unique().numel() != total:
            self.refuse(
                out,
                f"ends an attention that uses {used.unique().numel():,} of the {total:,} projected channels, some "
                f"twice or not at all: the language's attn uses each once",
            )
        proj = c.gm.get_submodule(out.target)
        if _width(proj) != self.d:
            self.refuse(out, f"gives {_width(proj)} channels from {self.d}: the language's attn keeps the width")
        biases = {m.bias is not None for m in modules}
        r.proj_bias = biases == {False} and proj.bias is not None  # timm's qkv_bias=False: projbias
        # separate projections with biases on the queries and values, none on the keys (EVA's q_proj, k_proj,
        # v_proj): qv_bias
        heads = (self.q_heads, self.k_heads, self.v_heads)
        by_projection = [{int(i) // self.width for i in h.flatten()} for h in heads]
        unbiased = {i for i, m in enumerate(modules) if m.bias is None}
        separate_qv = (
            biases == {True, False}
            and proj.bias is not None
            and by_projection[1] == unbiased
            and not (by_projection[0] | by_projection[2]) & unbiased
        )
        if separate_qv:
            biases, r.qv_bias = {False}, True
        elif len(biases) != 1 or (biases == {True} and proj.bias is None):
            names = [p.target for p, m in zip((*r.projections, out), (*modules, proj)) if m.bias is not None]
            self.refuse(
                out,
                f"ends an attention with biases in {', '.join(repr(n) for n in names)} only: the language's attn has "
                f"biases in all of its projections, in the output projection only (projbias) or in none",
            )
        r.heads, r.kv_heads, r.head_dim, r.bias, r.width = H, G, e, biases.pop(), self.d
        if any(getattr(m, "q_bias", None) is not None for m in modules):
            # one qkv Linear with biases on the queries and values, none on the keys (importer._qv_bias_linear)
            n = _width(modules[0]) // 3
            keys = {int(i) for i in self.k_heads.flatten()}
            if len(modules) != 1 or proj.bias is None or keys != set(range(n, 2 * n)):
                self.refuse(
                    out,
                    "ends an attention whose biases are on the queries and values of its qkv only, but whose keys "
                    "are not the channels without bias, or whose output projection has none: the language's qv_bias "
                    "is biases on the queries, values and output",
                )
            r.qv_bias, r.proj_bias = True, False
        self.rotated_heads(out)
        return r


def read(c: Any, first: Any, where: Callable[[Any], str], said: Callable[[Any], str]) -> Region:
    """The attention region that starts at the Linear layer `first`, checked (`_Reader`), or ImportRefused."""
    r = region(c, first, where, said)
    inner = next((n for n in r.nodes if n.op != "call_module"), r.output)
    stack = list((inner.meta.get("nn_module_stack") or {}).values())
    r.module_path = stack[-1][0] if stack else ""
    reads: dict[tuple[Any, ...], dict[str, Any]] = getattr(c, "attention_reads", {})  # {}: kept for no other
    key = fingerprint(c, r) if not r.chain else None
    if key is not None and key in reads:  # the same operations as a region already read: the same reading
        found = reads[key]
        for name, value in found.items():
            setattr(r, name, value)
        r.output = _ordered(r)[found["output"]]
    else:
        r = _Reader(c, r, where, said).run()
        if key is not None:
            reads[key] = {name: getattr(r, name) for name in _READ}
            reads[key]["output"] = _ordered(r).index(r.output)
    users = list(r.output.users)
    dropout = len(users) == 1 and users[0].op == "call_module"
    if dropout and type(c.gm.get_submodule(users[0].target)).__name__ == "Dropout":  # proj_drop: part of it
        r.output = users[0]
        r.nodes.append(users[0])
    return r


# what _Reader sets on a region, but for its output node (kept by its place in `_ordered`) and a spatial reduction
# (regions with one are always read)
_READ = ("heads", "kv_heads", "head_dim", "bias", "causal", "width", "last", "proj_bias", "rope", "qv_bias")


def _ordered(r: Region) -> list[Any]:
    """The nodes a region's reading depends on, in one order: its operations, the values from outside, its input."""
    return [*r.nodes, *sorted(r.foreign, key=lambda n: n.name), r.source]


def fingerprint(c: Any, r: Region) -> tuple[Any, ...] | None:
    """Everything of a region (without a spatial reduction) that `_Reader` reads, with the region's nodes by their
    place in it: so the 32 blocks of a ViT, whose regions differ only by the names of their nodes and modules, are
    read (element by element) once. Per node: the operation; its module's class, extra_repr and the shapes of its
    parameters and buffers (or the function, the method; a table that forward makes, or a parameter's name); the
    arguments, constants as they are and nodes by place (a node outside the region by name: never shared); the
    value's shape and layout; the node's role in the region. A region that is refused is not kept."""
    order = _ordered(r)
    place = {n: i for i, n in enumerate(order)}

    def arg(value: Any) -> Any:
        if hasattr(value, "op") and hasattr(value, "users"):
            return ("node", place[value]) if value in place else ("outside", value.name)
        if isinstance(value, (list, tuple)):
            return (type(value).__name__, tuple(arg(v) for v in value))
        if isinstance(value, dict):
            return ("dict", tuple((k, arg(v)) for k, v in value.items()))
        if isinstance(value, slice):
            return ("slice", arg(value.start), arg(value.stop), arg(value.step))
        return (type(value).__name__, repr(value))

    rows: list[Any] = []
    for node in order:
        target: Any
        if node is r.source or node in r.foreign:
            # the input: its shape and layout (where it comes from is no part of the region); a value from outside:
            # a table that forward makes (of its shape), or anything else by name (the reader refuses those)
            what = "table" if node in r.foreign and _Reader.table(node) else ("outside", node.name)
            rows.append((node is r.source, what if node is not r.source else "input", repr(c.shapes.get(node.name))))
            rows.append((node.name in c.channels_last, node.name in getattr(c, "pooled", ())))
            continue
        if node.op == "call_module":
            module = c.gm.get_submodule(node.target)
            target = (
                type(module).__module__,
                type(module).__qualname__,
                module.extra_repr(),
                tuple((k, tuple(p.shape)) for k, p in module.named_parameters()),
                tuple((k, tuple(b.shape)) for k, b in module.named_buffers()),
            )
        elif node.op == "get_attr":
            target = "table" if _Reader.table(node) else ("attribute", str(node.target))
        elif node.op == "call_function":
            target = (getattr(node.target, "__module__", ""), getattr(node.target, "__qualname__", repr(node.target)))
        else:
            target = str(node.target)
        roles = (node in r.projections, node in r.outputs, node in r.foreign, node in r.reduced, node is r.source)
        shape = repr(c.shapes.get(node.name))
        rows.append((node.op, target, arg(tuple(node.args)), arg(dict(node.kwargs)), shape, roles))
        rows.append((node.name in c.channels_last, node.name in getattr(c, "pooled", ())))
    return tuple(rows)
