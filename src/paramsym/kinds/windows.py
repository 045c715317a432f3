"""What sliding windows share (convolutions, transposed convolutions, pooling):
names with their kernel (`conv3x3`, `conv2d(k=3)`), padding and output sizes,
receptive fields, the sentence that explains an output size, and padding in
PyTorch, Keras and on import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

import sympy

from ..core.records import ZERO, Constraint, Flow, KerasSpec, Layer, TorchSpec
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError, ParamsymUsageError
from ..language.syntax import Call
from .base import Args, Expr, Field, ImportContext, Numbers, Words, axes, refuse_keras


def window_pattern(*families: str) -> re.Pattern[str]:
    """`conv3x3`, `conv1x7`, `conv3x3x3` (one size per spatial axis) or `conv2d` (k= gives the size)."""
    return re.compile(rf"(?P<family>{'|'.join(families)})(?:(?P<sizes>\d+(?:x\d+)*)|(?P<rank>[123])d)")


# ---- shape rules -----------------------------------------------------------------


@lru_cache(maxsize=4096)
def conv_output_size(n: Expr, kernel: Expr, stride: Expr, pad: Expr, dilation: Expr) -> Expr:
    """PyTorch's Conv/Pool output size (floor mode); a chain of equal layers asks the same again."""
    return sympy.floor((n + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1


def pool_output_size_ceil(n: Expr, kernel: Expr, stride: Expr, pad: Expr, dilation: Expr) -> Expr:
    """PyTorch's ceil_mode: round up, but the last window must start inside the input or its left
    padding. PyTorch takes one off `ceil(L/s) + 1` when `ceil(L/s)*s >= n + pad`; that is the smaller of
    the two counts below (for every pad of at most half the window, which PyTorch requires). Not a
    Piecewise: a Piecewise of a Piecewise becomes conditions (ITE) that grow with each pool.

    Which one is smaller does not depend on n: ceil(L/s) = floor((n + pad - 1 + extra)/s) with
    extra = s - 1 + pad - d(k-1), so with extra <= 0 it is the rounded-up count, else the last start."""
    rounded_up = sympy.ceiling((n + 2 * pad - dilation * (kernel - 1) - 1) / stride)
    last_start = sympy.floor((n + pad - 1) / stride)
    extra = stride - 1 + pad - dilation * (kernel - 1)
    if extra.is_nonpositive:
        return rounded_up + 1
    if extra.is_positive:
        return last_start + 1
    # a symbolic stride or pad of the pool itself: SymPy's own Min would compare the two at length
    return sympy.Min(rounded_up, last_start, evaluate=False) + 1


def deconv_output_size(n: Expr, kernel: Expr, stride: Expr, pad: Expr, dilation: Expr, outpad: Expr) -> Expr:
    return (n - 1) * stride - 2 * pad + dilation * (kernel - 1) + 1 + outpad


def kernel(call: Call, args: Args, match: re.Match[str]) -> tuple[Expr, ...]:
    """The kernel from the name (`conv3x5`; k= may only repeat it), or k= (`conv2d(k=3)`)."""
    if match["sizes"]:
        sizes = tuple(sympy.Integer(int(part)) for part in match["sizes"].split("x"))
        if 0 in sizes:
            raise ParamsymArgumentError(f"{call.name}: a kernel size must be at least 1", pos=call.pos)
        stated = args.sizes("k", len(sizes), sizes)
        if stated != sizes:  # conv3x3(k=5): the name and k= contradict each other
            arg = args.keywords["k"]
            family, written = match["family"], "x".join(str(v) for v in arg.value)
            named = f"{family}{'x'.join(str(v) for v in stated)}(...), or " if all(v.is_Integer for v in stated) else ""
            raise ParamsymArgumentError(
                f"{call.name} has the kernel size {match['sizes']} from its name, but k={written} gives another",
                pos=arg.pos,
                hint=f"write {named}{family}{len(sizes)}d(k={written}, ...)",
            )
        return sizes
    rank = int(match["rank"])
    if "k" not in args.keywords:
        raise ParamsymArgumentError(f"{call.name} needs a kernel size: write k=3 (or k=3x3)", pos=call.pos)
    return args.sizes("k", rank, ())


def spatial(call: Call, flow: Flow, rank: int, match: re.Match[str] | None) -> tuple[Expr | None, ...]:
    """The input's spatial sizes, which must have `rank` axes."""
    sizes = flow.shape.spatial
    if sizes is None:
        return (None,) * rank
    if len(sizes) != rank:
        have = "a vector" if not sizes else f"{len(sizes)}-D"
        raise ParamsymShapeError(
            f"{call.name} works on {rank}-D inputs, but its input is {have} ({flow.shape.describe()})",
            pos=call.pos,
            hint=_rank_hint(match, len(sizes)),
        )
    return sizes


def _rank_hint(match: re.Match[str] | None, rank: int) -> str | None:
    if rank == 0:
        return "the input is a vector (after flatten, gap or input(C)); use dense"
    if match is not None and match["sizes"]:
        size = match["sizes"].split("x")[0]
        return f"for a {rank}-D input write {match['family']}{'x'.join([size] * rank)}"
    return None


def padding(args: Args, rank: int) -> tuple[Expr, ...] | str:
    arg = args.keywords.get("pad")
    if (
        arg is not None
        and len(arg.value) == 1
        and isinstance(arg.value[0], sympy.Symbol)
        and arg.value[0].name in ("same", "valid")
    ):
        return "same" if arg.value[0].name == "same" else (ZERO,) * rank
    return args.sizes("pad", rank, (ZERO,) * rank)


def windows(
    args: Args,
    rank: int,
    spatial_in: tuple[Expr | None, ...],
    kernel_sizes: tuple[Expr, ...],
    stride: tuple[Expr, ...],
    dilation: tuple[Expr, ...],
    size_rule: Callable[[Expr, Expr, Expr, Expr, Expr], Expr],
) -> tuple[tuple[Any, ...], tuple[Expr | None, ...]]:
    """Padding and output sizes of a sliding window (convolution or pooling)."""
    pad = padding(args, rank)
    if isinstance(pad, str):  # "same"
        return ("same",) * rank, tuple(None if n is None else sympy.ceiling(n / s) for n, s in zip(spatial_in, stride))
    return pad, tuple(
        None if n is None else size_rule(n, k, s, p, d)
        for n, k, s, p, d in zip(spatial_in, kernel_sizes, stride, pad, dilation)
    )


def sizes_positive(call: Call, sizes: tuple[Expr | None, ...]) -> list[Constraint]:
    """Every output size must be at least 1: an error now, or a constraint for later."""
    constraints = []
    for size in sizes:
        if size is None:
            continue
        if size.is_number:
            if size < 1:
                raise ParamsymShapeError(
                    f"{call.name} leaves nothing: an output size would be {size}",
                    pos=call.pos,
                    hint="the kernel is larger than the (padded) input; add padding or remove a pooling layer",
                )
        else:
            constraints.append(
                Constraint(size, "positive", f"{call.name} would leave an output size below 1", call.pos)
            )
    return constraints


# ---- receptive field ------------------------------------------------------------------


def window_field(layer: Layer, field: Field | None) -> Field | None:
    """The standard recurrence: size r, jump j, start of the first output's field, per axis."""
    if field is None:
        return None
    spatial = layer.in_shape.spatial
    assert spatial is not None  # a field is known only where the input's axes are
    out = []
    for (r, j, start), k, s, p, d, n in zip(field, layer.kernel, layer.stride, layer.pad, layer.dilation, spatial):
        if getattr(start, "is_Rational", False) and all(getattr(x, "is_Integer", False) for x in (r, j, k, s, p, d)):
            out.append(_numeric_field(int(r), int(j), int(start.p), int(start.q), int(k), int(s), int(p), int(d)))
            continue
        span = d * (k - 1) + 1
        if p == "same":
            p = 0 if n is None else sympy.floor(sympy.Max((sympy.ceiling(n / s) - 1) * s + span - n, 0) / 2)
        out.append((r + (span - 1) * j, j * s, start + (sympy.Rational(1, 2) * (span - 1) - p) * j))
    return tuple(out)


def _numeric_field(
    r: int, j: int, start_p: int, start_q: int, k: int, s: int, p: int, d: int
) -> tuple[Expr, Expr, Expr]:
    """The recurrence of window_field in Python integers (the same exact values, without SymPy's
    arithmetic on each step; the start is start_p / start_q), given back as SymPy numbers."""
    span = d * (k - 1) + 1
    # start + ((span - 1) / 2 - p) * j, over the denominator 2 * start_q
    numerator = 2 * start_p + start_q * (span - 1 - 2 * p) * j
    return sympy.Integer(r + (span - 1) * j), sympy.Integer(j * s), sympy.Rational(numerator, 2 * start_q)


# ---- explain ----------------------------------------------------------------------------


def kernel_text(layer: Layer, words: Words) -> str:
    return "x".join(words.formula(k) for k in layer.kernel)


def size_sentence(layer: Layer, words: Words, transposed: bool = False, ceil: bool = False) -> list[str]:
    """How the output size follows from input size, kernel, stride, padding and dilation (rounded up with
    `ceil`, a pooling's ceil mode)."""
    if layer.in_shape.positions is None:
        return []
    w = words
    parts = []
    for n, kk, s, p, d, out in zip(
        axes(layer.in_shape), layer.kernel, layer.stride, layer.pad, layer.dilation, axes(layer.out_shape)
    ):
        if p == "same":
            parts.append(f"ceil({w(n)}/{w(s)}) = {w(out)}")
        elif transposed:
            parts.append(f"({w(n)}−1)·{w(s)} − 2·{w(p)} + {w(d)}·({w(kk)}−1) + 1 = {w(out)}")
        else:
            rounding = "ceil" if ceil else "floor"
            parts.append(f"{rounding}(({w(n)} + 2·{w(p)} − {w(d)}·({w(kk)}−1) − 1)/{w(s)}) + 1 = {w(out)}")
    unique = list(dict.fromkeys(parts))
    per_axis = "; ".join(unique) + (" per axis" if len(unique) == 1 and len(parts) > 1 else "")
    return [
        f"Stride and padding do not change the parameters; they set the output size: {per_axis}, "
        f"so the output is {w.shape(layer.out_shape)}."
    ]


# ---- PyTorch ----------------------------------------------------------------------------


def explicit_pad(layer: Layer) -> tuple[Expr, ...] | None:
    """The padding per axis, or None for pad=same."""
    return None if (layer.pad and layer.pad[0] == "same") else layer.pad


def torch_padding(layer: Layer, num: Numbers) -> tuple[int, ...] | int:
    pad = explicit_pad(layer)
    return num.each(pad) if pad else 0


def _same_padding(layer: Layer, num: Numbers) -> tuple[int, ...]:
    """F.pad amounts (last axis first) for TensorFlow's "same"."""
    if layer.in_shape.spatial is None or any(n is None for n in layer.in_shape.spatial):
        raise ParamsymUsageError(
            f"{layer.name} at {layer.pos}: pad=same needs the input size to export; start the program with input(...)"
        )
    pairs = same_pairs(
        num.each(layer.in_shape.spatial), num.each(layer.kernel), num.each(layer.stride), num.each(layer.dilation)
    )
    return tuple(amount for pair in reversed(pairs) for amount in pair)


def same_padded(layer: Layer, num: Numbers, module: TorchSpec, same_value: float = 0.0) -> TorchSpec:
    """The module behind the padding that pad=same needs (PyTorch pads symmetrically only)."""
    if layer.pad and layer.pad[0] == "same":
        return TorchSpec(
            "nn.Sequential",
            (TorchSpec("SamePad", (_same_padding(layer, num),), {"value": same_value} if same_value else {}), module),
        )
    return module


# ---- Keras ------------------------------------------------------------------------------


def keras_window_checks(layer: Layer, num: Numbers, pooling: bool = False) -> None:
    if layer.in_shape.rank is None:
        refuse_keras(layer, "Keras needs the input shape: start the program with input(...)")
    if not pooling and any(s > 1 for s in num.each(layer.stride)) and any(d > 1 for d in num.each(layer.dilation)):
        refuse_keras(layer, "Keras convolutions cannot combine a stride and a dilation")


def keras_padding(layer: Layer, num: Numbers, rank: int, ceil: bool = False) -> tuple[list[KerasSpec], str]:
    """ZeroPadding before a window (explicit padding, and with `ceil` the ceil mode's), and the window's own
    padding."""
    if layer.pad and layer.pad[0] == "same":
        return [], "same"
    pads = [(p, p) for p in num.each(layer.pad)]
    if ceil:
        assert layer.in_shape.spatial is not None and layer.out_shape.spatial is not None  # keras_window_checks
        sizes = num.each(layer.in_shape.spatial)
        outs = num.each(layer.out_shape.spatial)
        for axis, (n, k, s, d, out) in enumerate(
            zip(sizes, num.each(layer.kernel), num.each(layer.stride), num.each(layer.dilation), outs)
        ):
            needed = (out - 1) * s + d * (k - 1) + 1 - (n + 2 * pads[axis][0])
            pads[axis] = (pads[axis][0], pads[axis][1] + max(needed, 0))
    if any(a or b for a, b in pads):
        # ZeroPadding1D takes one (before, after) pair, the others a pair per axis
        return [KerasSpec(f"ZeroPadding{rank}D", {"padding": pads[0] if rank == 1 else tuple(pads)})], "valid"
    return [], "valid"


# ---- import -------------------------------------------------------------------------------


def sizes_text(values: Iterable[object]) -> str:
    """`3x5`, or `2` when every axis has the same value (stride=2, pad=1)."""
    values = list(values)
    if len(values) > 1 and all(v == values[0] for v in values):
        return str(values[0])
    return "x".join(str(v) for v in values)


def kernel_name(values: Iterable[object]) -> str:
    return "x".join(str(v) for v in values)


def per_axis(value: Any, rank: int) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank


def arguments(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def window_arguments(
    stride: tuple[int, ...],
    pad: tuple[int, ...],
    dilation: tuple[int, ...],
    default_stride: tuple[int, ...] | None = None,
) -> list[str]:
    parts = []
    if stride != (default_stride or (1,) * len(stride)):
        parts.append(f"stride={sizes_text(stride)}")
    if any(pad):
        parts.append(f"pad={sizes_text(pad)}")
    if any(d != 1 for d in dilation):
        parts.append(f"dilation={sizes_text(dilation)}")
    return parts


def same_pairs(
    sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> tuple[tuple[int, int], ...]:
    """TensorFlow's "same" padding as (before, after) per axis: the total that makes ceil(n/s) windows fit, half
    of it (rounded down) before, the rest after. timm's pad_same and PyTorch's padding="same" compute the same."""
    pairs = []
    for n, k, s, d in zip(sizes, kernel, stride, dilation):
        total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
        pairs.append((total // 2, total - total // 2))
    return tuple(pairs)


# Modules that pad as TensorFlow's "same" in forward, from the size of each input (timm)
_DYNAMIC_SAME = (
    "timm.layers.conv2d_same.Conv2dSame",
    "timm.layers.pool2d_same.MaxPool2dSame",
    "timm.layers.pool2d_same.AvgPool2dSame",
)
_FLAGGED_SAME = ("timm.layers.std_conv.StdConv2dSame", "timm.layers.std_conv.ScaledStdConv2dSame")


def imported_padding(
    module: Any, ctx: ImportContext, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]
) -> tuple[int, ...] | str:
    """The padding of an imported convolution or pooling, per axis or "same": its own (`padding`, "same", or
    timm's dynamic "same") and an F.pad before it (ctx.extra_pad: (before, after) per axis). An asymmetric F.pad
    is "same" only when it is exactly TensorFlow's for this input; any other asymmetric padding is refused."""
    rank = len(kernel)
    own = getattr(module, "padding", 0)
    qualified = f"{type(module).__module__}.{type(module).__qualname__}"
    # timm's StdConv2dSame and ScaledStdConv2dSame pad in forward when `same_pad` (else their padding is static)
    same = own == "same" or qualified in _DYNAMIC_SAME or (qualified in _FLAGGED_SAME and module.same_pad)
    extra = ctx.extra_pad
    if same:
        if extra is not None and any(a or b for a, b in extra):
            raise ImportRefused(
                f'{ctx.node_name} ({type(module).__name__}) pads as TensorFlow\'s "same" after an '
                f"F.pad, which the language cannot express"
            )
        return "same"
    own = per_axis(own, rank)
    if extra is None or all(a == b for a, b in extra):
        return tuple(p + (a if extra else 0) for p, (a, _) in zip(own, extra or ((0, 0),) * rank))
    sizes = tuple(n - a - b for n, (a, b) in zip(ctx.in_shape[2:], extra))  # the size before the F.pad
    if not any(own) and tuple(extra) == same_pairs(sizes, kernel, stride, dilation):
        return "same"
    raise ImportRefused(
        f"{ctx.node_name} ({type(module).__name__}) follows an F.pad of {list(extra)} (before, "
        f'after) per axis: asymmetric and not TensorFlow\'s "same" for a {"x".join(map(str, sizes))} '
        f"input, which the language cannot express"
    )
