"""`(SEQ) * N` with a symbolic N: SEQ built once and every quantity that repeats counted N times (a number N
unrolls the repeat, so that no node of this kind is made for it)."""

from __future__ import annotations

from typing import Any

from ...core.quantities import Counts
from ...core.records import Constraint, Flow, Layer, Node, TorchSpec
from ...errors import ParamsymArgumentError, ParamsymLimitError, ParamsymShapeError
from ...language import syntax
from ..base import Expr, Field, Words, whole_number
from .base import MAX_LAYERS, Builder, Combinator, KerasExport, TorchExport, shape_difference


class Repeat(Combinator):
    key = "repeat"
    explain_order = 10  # the symbolic repeat is said first: it multiplies everything inside it, experts too

    def build(self, builder: Builder, repeat: syntax.Repeat, flow: Flow, suffix: str = "") -> Flow:
        count = builder.substitute(repeat.count, repeat.pos)
        single = repeat.body.stages[0] if len(repeat.body.stages) == 1 else None
        if count.is_number:
            if not (count.is_integer and count >= 1):
                raise ParamsymArgumentError(
                    f"a repeat count must be a positive whole number, not {count}", pos=repeat.pos
                )
            if count * len(repeat.body.stages) + len(builder.layers) > MAX_LAYERS:
                raise ParamsymLimitError(f"the network would have more than {MAX_LAYERS:,} layers", pos=repeat.pos)
            for i in range(int(count)):
                if single is not None:
                    flow = builder.stage(single, flow, suffix=f"[{i + 1}]")
                else:
                    flow = builder.stage(repeat.body, flow, suffix=f"[{i + 1}]")
            return flow
        # A symbolic count: build one repeat, count it `count` times; it must keep its shape.
        saved = builder.multiplier
        builder.multiplier = saved * count
        start = len(builder.layers)
        node = Node(self, count=count)
        builder.attach(node)
        try:
            with builder.branch(node):
                suffix = f"[1..{count}]"
                out = (
                    builder.stage(single, flow, suffix)
                    if single is not None
                    else builder.stage(repeat.body, flow, suffix)
                )
        finally:
            builder.multiplier = saved
        problem = shape_difference(flow.shape, out.shape)
        if problem is not None:
            raise ParamsymShapeError(
                f"(...) * {count}: with a symbolic count the block must keep its shape, but it turns "
                f"{flow.shape.describe()} into {out.shape.describe()}",
                pos=repeat.pos,
                hint="use a number of repeats, or make the block keep its channels and size",
            )
        whole = tuple(c for c in whole_number(count, "the repeat count", repeat.pos) if c.requirement == "integer")
        for layer in builder.layers[start:]:
            layer.constraints = (
                layer.constraints
                + (Constraint(count, "positive", f"the repeat count {count} must be at least 1", repeat.pos),)
                + whole
            )
        if flow.field is not None and out.field is not None:
            out = Flow(out.shape, out.source, _repeat_field(flow.field, out.field, count))
        return out

    def explain_layer(self, layer: Layer, counts: Counts, words: Words) -> list[str]:
        if layer.multiplier == 1:
            return []
        lines = [f"Repeated {words.formula(layer.multiplier)} times (a symbolic repeat around it)."]
        if layer.experts is None:  # inside moe, the experts' sentence gives the totals
            lines.append(f"In all: {words(counts.params)} parameters.")
        return lines

    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        return TorchSpec("nn.Sequential", (export.spec(node.children[0]),), repeat=export.num(node.count))

    def keras(self, node: Node, export: KerasExport, x: Any) -> Any:
        for _ in range(export.num(node.count)):
            x = export.apply(node.children[0], x)
        return x


def _repeat_field(before: Field, after: Field, count: Expr) -> Field:
    """A block repeated `count` times grows the field by `count` times its own growth (same jump)."""
    out = []
    for (r0, _j0, s0), (r1, j1, s1) in zip(before, after):
        out.append((r0 + count * (r1 - r0), j1, s0 + count * (s1 - s0)))
    return tuple(out)


REPEAT = Repeat()
COMBINATORS = (REPEAT,)
