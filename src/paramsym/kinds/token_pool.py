"""`tokenpool(volume=T x H x W, kernel=a x b x c, stride=..., pad=...[, cls])` (docs/language.md, Attention; a
paramsym extension for MViT): max pooling of the tokens of a sequence that is a T x H x W (or H x W) volume of
tokens row by row (as `tokens` makes them), after a class token with `cls`. The volume is pooled as PyTorch's
MaxPool3d (MaxPool2d) pools it (windows a x b x c, the stride, padding on both sides of each axis, which never
wins the maximum), and the class token is kept: ([1 +] T·H·W) x d -> ([1 +] T'·H'·W') x d with
n' = ⌊(n + 2p − k)/s⌋ + 1. No parameters and no MACs (comparisons, which FlopCounterMode counts as none). MViT's
block pools its shortcut so (torchvision's `Pool(nn.MaxPool3d)` in MultiscaleBlock.pool_skip, timm's mvitv2
shortcut_pool_attn). PyTorch: our `TokenPool`; Keras: none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from ..core.records import Layer, Options, Shape, TorchSpec
from ..errors import ImportRefused, ParamsymArgumentError, ParamsymShapeError
from .base import (
    Args,
    Call,
    Constraint,
    Counts,
    Expr,
    Flow,
    ImportContext,
    Kind,
    NameMatch,
    Numbers,
    Words,
    axes,
    check_or_defer,
    make_layer,
    times,
    whole_number,
)


@dataclass(frozen=True)
class TokenPoolOptions(Options):
    volume: tuple[Expr, ...]  # T x H x W (or H x W) tokens, after the class token with cls
    kernel: tuple[Expr, ...]
    stride: tuple[Expr, ...]
    pad: tuple[Expr, ...]
    cls: bool

    @property
    def pooled(self) -> tuple[Expr, ...]:
        return tuple(
            sympy.floor((n + 2 * p - k) / s) + 1 for n, k, s, p in zip(self.volume, self.kernel, self.stride, self.pad)
        )


class TokenPool(Kind):
    key = "tokenpool"
    names = ("tokenpool",)
    keywords = frozenset({"volume", "kernel", "stride", "pad"})
    flags = frozenset({"cls"})
    torch_modules = ("TokenPool",)

    def build(self, call: Call, flow: Flow, args: Args, match: NameMatch) -> Layer:
        constraints: list[Constraint] = list(args.constraints)
        given = args.keywords.get("volume")
        rank = len(given.value) if given is not None else 3
        if given is not None and rank not in (2, 3):
            raise ParamsymArgumentError(
                "volume= takes the sizes of the volume of tokens: T x H x W, or H x W", pos=given.pos
            )
        along = "T, H and W" if rank == 3 else "H and W"

        def three(key: str, default: tuple[Expr, ...] | None, least: int = 1) -> tuple[Expr, ...]:
            arg = args.keywords.get(key)
            if arg is None:
                if default is None:
                    raise ParamsymArgumentError(
                        f"{call.name} needs {key}= (the sizes along {along})",
                        pos=call.pos,
                        hint=f"write {call.name}(volume=8x56x56, kernel=1x3x3, stride=1x2x2, pad=0x1x1)",
                    )
                return default
            if len(arg.value) != rank:
                raise ParamsymArgumentError(f"{key}= takes {rank} sizes, along {along} as volume=", pos=arg.pos)
            for value in arg.value:
                if value.is_number and not (value.is_integer and value >= least):
                    raise ParamsymArgumentError(
                        f"{key}= takes whole numbers of at least {least}, not {value}", pos=arg.pos
                    )
                constraints.extend(whole_number(value, f"{key}=", arg.pos, least=least))
            return tuple(arg.value)

        volume, kernel = three("volume", None), three("kernel", None)
        stride = three("stride", kernel)  # PyTorch's default stride: the kernel
        pad = three("pad", (sympy.Integer(0),) * rank, least=0)
        first = int("cls" in args.flags)
        shape = flow.shape
        if shape.rank != 1 or shape.channels is None:
            raise ParamsymShapeError(
                f"{call.name} pools the volume of tokens of a sequence (the T x H x W tokens row by row), but "
                f"its input is {shape.describe()}",
                pos=call.pos,
                hint="make a volume a sequence first: ... > tokens > ...",
            )
        length = axes(shape)[0]
        if length is not None:
            constraints += check_or_defer(
                length - first - sympy.Mul(*volume),
                "zero",
                f"volume={'x'.join(str(v) for v in volume)} is {sympy.Mul(*volume)} tokens, but the sequence of "
                f"{length} positions holds {length - first}" + (" after its class token" if first else ""),
                args.keywords["volume"].pos,
            )
        for n, k, p in zip(volume, kernel, pad):
            # PyTorch: padding at most half the kernel, and a window that fits the padded axis
            constraints += check_or_defer(
                k - 2 * p, "nonnegative", f"pad={p} is more than half the kernel {k} (PyTorch refuses it)", call.pos
            )
            constraints += check_or_defer(
                n + 2 * p - k, "nonnegative", f"the kernel {k} is larger than the padded axis {n} + 2·{p}", call.pos
            )
        options = TokenPoolOptions(volume, kernel, stride, pad, bool(first))
        out = Shape((first + sympy.Mul(*options.pooled),), shape.channels)
        return make_layer(
            call, self, flow, out, shape.channels, shape.channels, options=options, constraints=tuple(constraints)
        )

    def counts(self, layer: Layer) -> dict[str, Expr | None]:
        k = sympy.Mul(*TokenPoolOptions.of(layer).kernel)
        return {"fan_in": k, "connections": times(k, layer.out_shape.elements)}

    def header(self, layer: Layer, w: Words) -> str:
        o = TokenPoolOptions.of(layer)
        return f", max over {'x'.join(w(k) for k in o.kernel)} windows of the {'x'.join(w(n) for n in o.volume)} tokens"

    def explain(self, layer: Layer, counts: Counts, w: Words) -> list[str]:
        o = TokenPoolOptions.of(layer)
        return [
            f"No parameters: the {'x'.join(w(n) for n in o.volume)} tokens{' after the class token' * o.cls} are "
            f"max pooled over {'x'.join(w(k) for k in o.kernel)} windows (stride {'x'.join(w(s) for s in o.stride)}, "
            f"padding {'x'.join(w(p) for p in o.pad)}) to {'x'.join(w(n) for n in o.pooled)}"
            + ("; the class token is kept." if o.cls else ".")
        ]

    def torch(self, layer: Layer, num: Numbers) -> TorchSpec:
        o = TokenPoolOptions.of(layer)
        kwargs: dict[str, Any] = {"stride": num.each(o.stride), "pad": num.each(o.pad)}
        if o.cls:
            kwargs["cls"] = True
        return TorchSpec("TokenPool", (num.each(o.volume), num.each(o.kernel)), kwargs)

    def from_torch(self, module: Any, ctx: ImportContext) -> str:
        if not all(hasattr(module, a) for a in ("volume", "kernel", "stride", "pad", "cls")):
            raise ImportRefused(f"{ctx.node_name} (TokenPool) is not paramsym's token pooling module")
        parts = [f"{key}={'x'.join(map(str, getattr(module, key)))}" for key in ("volume", "kernel", "stride", "pad")]
        parts += ["cls"] * bool(module.cls)
        if len(ctx.in_shape) != 3:
            raise ImportRefused(f"{ctx.node_name} (TokenPool) does not pool a sequence")
        return f"tokenpool({', '.join(parts)})"


KINDS = (TokenPool(),)
