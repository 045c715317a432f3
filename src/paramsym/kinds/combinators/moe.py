"""`moe(SEQ, experts=E, top=k[, score_bias])`: a router dense(d->E) without bias, then E copies of SEQ (the experts)
of which each position goes through k. SEQ is built once; its layers count E times in what is stored (params,
state) and k times in what one position uses (active params, MACs). `score_bias`: the router keeps one bias per
expert that is added to its scores to choose the experts (DeepSeek-V3's e_score_correction_bias, adjusted for load
balance outside gradient descent): E values of state, no parameters."""

from __future__ import annotations

from typing import Any

from ...core.quantities import Counts
from ...core.records import Flow, Layer, Node, Shape, TorchSpec
from ...errors import ParamsymArgumentError, ParamsymShapeError, ParamsymUsageError, Position
from ...language.syntax import Composite, Keyword, Positional
from ..base import Expr, Words, check_or_defer, require_number_like, whole_number
from ..dense import router_call
from .base import Builder, Combinator, KerasExport, TorchExport, shape_difference, widest_field

_EXAMPLE = "e.g. moe(dense(->4d) > gelu > dense(->d), experts=8, top=2)"
SCORE_BIAS = "score_bias"  # the one flag of moe
_SHAPE_HINT = "end the expert with a layer back to the input width, e.g. dense(->d)"


class Moe(Combinator):
    key = keyword = "moe"

    def build(self, builder: Builder, composite: Composite, flow: Flow, suffix: str) -> Flow:
        experts, top = self.arguments(builder, composite)
        score_bias = any(isinstance(a, Positional) and a.flag == SCORE_BIAS for a in composite.args)
        node = Node(self, count=experts, top=top, score_bias=score_bias)  # children: the router, the expert
        builder.attach(node)
        with builder.at(self.keyword + suffix):
            with builder.branch(node):
                builder.call(router_call(experts, composite.pos, score_bias), flow)
            saved = builder.experts
            builder.experts = (experts, top) if saved is None else (saved[0] * experts, saved[1] * top)
            try:
                with builder.branch(node, "expert"):
                    out = builder.stage(composite.branches[0], flow)
            finally:
                builder.experts = saved
        if shape_difference(flow.shape, out.shape) is not None:
            raise ParamsymShapeError(
                f"moe(...): each expert must keep the shape of its input, but this one turns "
                f"{flow.shape.describe()} into {out.shape.describe()}",
                pos=composite.branches[0].pos,
                hint=_SHAPE_HINT,
            )
        builder.defer_equal(flow.shape, out.shape, True, composite.pos)
        return Flow(flow.shape, flow.source, widest_field([flow.field, out.field]))

    def arguments(self, builder: Builder, composite: Composite) -> tuple[Expr, Expr]:
        """experts=E and top=k, with their checks."""
        values: dict[str, tuple[Expr, Position]] = {}
        flags = 0
        for arg in composite.args:
            if isinstance(arg, Positional) and arg.flag == SCORE_BIAS:
                flags += 1
                if flags > 1:
                    raise ParamsymArgumentError(f"{SCORE_BIAS} is given twice", pos=arg.pos)
                continue
            if not isinstance(arg, Keyword) or arg.name not in ("experts", "top"):
                raise ParamsymArgumentError(
                    f"moe takes the expert's layers, then experts=E and top=k (and the flag {SCORE_BIAS})",
                    pos=arg.pos,
                    hint=_EXAMPLE,
                )
            if arg.name in values:
                raise ParamsymArgumentError(f"{arg.name}= is given twice", pos=arg.pos)
            if len(arg.value) != 1:
                raise ParamsymArgumentError(f"{arg.name}= takes one value", pos=arg.pos)
            value = builder.substitute(arg.value[0], arg.pos)
            require_number_like(value, arg.pos, arg.name)
            builder.extra_constraints.extend(whole_number(value, f"{arg.name}=", arg.pos))
            values[arg.name] = (value, arg.pos)
        for name in ("experts", "top"):
            if name not in values:
                raise ParamsymArgumentError(f"moe needs {name}=", pos=composite.pos, hint=_EXAMPLE)
        (experts, _), (top, top_pos) = values["experts"], values["top"]
        builder.extra_constraints.extend(
            check_or_defer(
                experts - top, "nonnegative", f"top={top} must be at most the number of experts ({experts})", top_pos
            )
        )
        return experts, top

    def joined(self, shapes: list[Shape]) -> Shape | None:
        return shapes[-1] if shapes else None  # the expert's, after the router

    def explain_layer(self, layer: Layer, counts: Counts, words: Words) -> list[str]:
        if layer.experts is None or (counts.params == 0 and counts.macs in (0, None)):
            return []
        stored, used = layer.experts
        return [
            f"One of {words(stored)} experts, of which each position goes through {words(used)}: "
            f"{words(counts.params)} parameters stored, {words(counts.active)} active"
            + (f", MACs {words(counts.macs)}." if counts.macs is not None else ".")
        ]

    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        router, expert = (export.spec(child) for child in node.children)
        experts = TorchSpec("nn.Sequential", (expert,), repeat=export.num(node.count))  # E fresh copies
        kwargs: dict[str, Any] = {"top": export.num(node.top)}
        if node.score_bias:
            kwargs["score_bias"] = True
        return TorchSpec("MixtureOfExperts", (router, experts), kwargs)

    def keras(self, node: Node, export: KerasExport, x: Any) -> Any:
        raise ParamsymUsageError(
            "moe(...) has no Keras equivalent to export to (Keras has no mixture-of-"
            "experts layer); count it with paramsym, export it to PyTorch"
        )


MOE = Moe()
COMBINATORS = (MOE,)
