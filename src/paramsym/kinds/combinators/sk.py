"""`sk(A | B | ... | ATTENTION)`: selective kernels (SKNet, timm's SelectiveKernel). The branches before the last
(two or more, the paths) each read the input and give the same shape `... x C`; the last branch, the attention,
reads their sum and gives the vector of `m·C` scores (m paths): for each channel, a softmax over the paths turns
the scores into weights, and the output is the paths' weighted sum (the shape of one path).

Parameters and MACs are those of the layers (the softmax, the weights' products and the sums count none, as
PyTorch's FlopCounterMode counts none). PyTorch: paramsym's SelectiveKernels module; Keras: refused. Imports read
timm's SelectiveKernel and paramsym's SelectiveKernels whole (`torch_modules`, which the kinds' registry consults),
each path and the attention layer by layer through the kinds that import their modules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ... import expansion
from ...core.records import Constraint, Flow, Node, TorchSpec
from ...errors import ImportRefused, ParamsymShapeError, ParamsymUsageError
from ...language.syntax import Composite
from .. import imports_modules
from .base import Builder, KerasExport, Merge, Outputs, TorchExport, shape_difference, widest_field

_TIMM = "timm.layers.selective_kernel.SelectiveKernel"


@dataclass(frozen=True)
class _Context:
    """An ImportContext (kinds.base) for a module inside the selective kernel."""

    node_name: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...] = ()
    extra_pad: tuple[tuple[int, int], ...] | None = None
    node: Any = None
    arg_shapes: tuple[tuple[int, ...], ...] = ()

    @property
    def rank(self) -> int:
        return len(self.in_shape) - 2


class SelectiveKernel(Merge):
    key = keyword = "sk"
    # what an import reads whole, as a kind's torch_modules (kinds.for_torch_module)
    torch_modules: ClassVar[tuple[str, ...]] = (_TIMM, "SelectiveKernels")
    takes_pad: ClassVar[bool] = False

    def branch_label(self, number: int) -> str:
        return f"path{number + 1}"

    def build(self, builder: Builder, composite: Composite, flow: Flow, suffix: str) -> Flow:
        if len(composite.branches) < 3:
            raise ParamsymShapeError(
                "sk(...) needs two paths or more and the attention on their sum, last: sk(A | B | ATTENTION), "
                "such as sk(conv3x3(->C, pad=1) | conv3x3(->C, pad=2, dilation=2) | gap > dense(->d) > relu > "
                "dense(->2C))",
                pos=composite.pos,
            )
        *paths, attention = composite.branches
        node = Node(self)
        builder.attach(node)
        outputs: Outputs = []
        with builder.at(f"{self.keyword}{suffix}"):
            for number, branch in enumerate(paths):
                with builder.branch(node, self.branch_label(number)):
                    outputs.append((branch, builder.stage(branch, flow)))
            reference_branch, reference = outputs[0]
            for branch, out in outputs[1:]:
                if shape_difference(reference.shape, out.shape, True) is not None:
                    self.refuse(composite, branch, reference_branch, reference, out, flow)
                builder.defer_equal(reference.shape, out.shape, True, branch.pos if branch else composite.pos)
            field = widest_field([out.field for _, out in outputs])
            summed = Flow(reference.shape, (self.keyword, composite.pos), field)
            with builder.branch(node, "attention"):
                scores = builder.stage(attention, summed)
        self._check_scores(builder, attention.pos, len(paths), reference, scores)
        return Flow(reference.shape, (self.keyword, composite.pos), field)

    def _check_scores(self, builder: Builder, pos: Any, paths: int, reference: Flow, scores: Flow) -> None:
        """The attention gives the vector of `paths`·C scores."""
        channels = reference.shape.channels
        wanted = None if channels is None else paths * channels
        if scores.shape.spatial != () or (
            wanted is not None
            and scores.shape.channels is not None
            and expansion.expand(scores.shape.channels - wanted).is_number
            and expansion.expand(scores.shape.channels - wanted) != 0
        ):
            raise ParamsymShapeError(
                f"the attention of sk(...) must give the vector of {paths} x {channels} scores (one per path and "
                f"channel), but it gives {scores.shape.describe()}",
                pos=pos,
                hint=f"end the attention with gap > ... > dense(->{paths}*C) (C: the paths' channels)",
            )
        if wanted is not None and scores.shape.channels is not None:
            difference = expansion.expand(scores.shape.channels - wanted)
            if difference != 0:
                builder.extra_constraints.append(
                    Constraint(difference, "zero", "the attention of sk(...) gives one score per path and channel", pos)
                )

    def torch(self, node: Node, export: TorchExport) -> TorchSpec:
        return TorchSpec("SelectiveKernels", tuple(export.spec(child) for child in node.children))

    def keras(self, node: Node, export: KerasExport, x: Any) -> Any:
        raise ParamsymUsageError("sk(...) has no Keras equivalent: Keras has no softmax over branches")

    def from_torch(self, module: Any, ctx: Any) -> str:
        timm = f"{type(module).__module__}.{type(module).__qualname__}" == _TIMM
        attention_name = "attn" if timm else "attention"
        paths: list[list[str]] = [[] for _ in module.paths]
        attention: list[str] = ["gap"] if timm else []  # timm's attention pools the sum in its forward
        for name, sub, in_shape, out_shape in _leaves(module, ctx):
            where = f"{ctx.node_name[:-1]}.{name}'" if ctx.node_name.endswith("'") else f"{ctx.node_name}.{name}"
            first, _, rest = name.partition(".")
            pooled = first == attention_name and len(in_shape) > 2 and all(d == 1 for d in in_shape[2:])
            if pooled:  # a value of axes of 1 after pooling is the language's vector
                in_shape = in_shape[:2]
            text = _leaf_text(sub, _Context(where, in_shape, out_shape))
            if pooled and text == "flatten":
                continue  # the vector already
            if first == "paths":
                paths[int(rest.partition(".")[0])].append(text)
            elif first == attention_name:
                attention.append(text)
            else:
                raise ImportRefused(
                    f"{where} ({type(sub).__name__}) is neither a path nor the attention of {self.keyword}"
                )
        if timm and module.split_input:
            width = module.in_channels // len(paths)
            paths = [[f"slice({i * width}, {(i + 1) * width})", *texts] for i, texts in enumerate(paths)]
        branches = [" > ".join(t for t in texts if t) or "id" for texts in (*paths, attention)]
        return f"sk({' | '.join(branches)})"


def _leaf_text(module: Any, ctx: _Context) -> str:
    from .. import for_torch_module, identity_name, overridden

    kind = for_torch_module(module)
    if kind is None:
        base = overridden(module)
        raise ImportRefused(
            f"{ctx.node_name} ({type(module).__name__}) "
            + (f"is a {base} with a forward of its own" if base else "has no counterpart in the language")
        )
    text = kind.from_torch(module, ctx)
    return "" if text == identity_name() else text


def _leaves(module: Any, ctx: Any) -> list[tuple[str, Any, tuple[int, ...], tuple[int, ...]]]:
    """The modules a kind imports inside `module` (outermost only), in the order forward calls them, with their
    input and output shapes, from one run on an empty input of the selective kernel's input shape."""
    import torch

    from .. import for_torch_module, overridden

    claimed: list[str] = []
    for name, sub in module.named_modules():
        outermost = name and not any(name.startswith(f"{c}.") for c in claimed)
        if outermost and (for_torch_module(sub) is not None or overridden(sub) is not None):
            claimed.append(name)
    found: list[tuple[str, Any, tuple[int, ...], tuple[int, ...]]] = []
    hooks = [
        module.get_submodule(name).register_forward_hook(
            lambda sub, args, out, name=name: found.append(
                (name, sub, tuple(args[0].shape), tuple(out.shape) if isinstance(out, torch.Tensor) else ())
            )
        )
        for name in claimed
    ]
    device = next(iter(module.parameters()), torch.zeros(())).device
    was_training = module.training
    try:
        with torch.no_grad():
            module.eval()(torch.zeros(ctx.in_shape, device=device))
    finally:
        for hook in hooks:
            hook.remove()
        module.train(was_training)
    return found


class SplitAttention(SelectiveKernel):
    """timm's SplitAttn (ResNeSt's split attention, radix r, cardinality 1), imported as the sk it computes: its
    convolution of groups=r is r paths, each on its slice of the input channels (a group's inputs) through a
    convolution, and through BatchNorm and the activation, which act per channel (the r slices of bn0's channels
    are r norms of the same counts); the attention pools the paths' sum (`x.sum(dim=1)`, then the mean of the
    positions), and its scores, (r, C) per sample, are softmaxed over the paths as sk's are."""

    torch_modules: ClassVar[tuple[str, ...]] = ("timm.layers.split_attn.SplitAttn",)

    def from_torch(self, module: Any, ctx: Any) -> str:
        import torch

        from .. import identity_name

        where = f"{ctx.node_name} ({type(module).__name__})"
        conv, radix = module.conv, module.radix
        if radix < 2 or conv.groups != radix or module.rsoftmax.cardinality != 1:
            raise ImportRefused(
                f"{where} has radix {radix} and cardinality {module.rsoftmax.cardinality}: the language's sk "
                f"reads radix 2 or more with cardinality 1 (a cardinality orders the scores in another way)"
            )
        if type(module.drop).__name__ != "Identity" or len(ctx.in_shape) != 4:
            raise ImportRefused(f"{where} drops blocks or does not act on a map: the language's sk has no counterpart")
        if any(getattr(c, "groups", 1) != 1 for c in (module.fc1, module.fc2)):
            raise ImportRefused(f"{where} scores the paths with grouped convolutions: the language's sk has none")
        width, out = conv.in_channels // radix, conv.out_channels // radix
        with torch.device("meta"):  # one path's convolution and norm: the module's, cut to a group
            path_conv = torch.nn.Conv2d(
                width,
                out,
                conv.kernel_size,
                conv.stride,
                conv.padding,
                conv.dilation,
                bias=conv.bias is not None,
                padding_mode=conv.padding_mode,
            )
            path_norm = _part_of(module.bn0, out)
        n, _, h, w = ctx.in_shape
        mid_shape = (n, out, *path_conv(torch.zeros(n, width, h, w, device="meta")).shape[2:])
        attn_chs = module.fc1.out_channels
        parts = [
            (path_conv, (n, width, h, w), mid_shape, "path"),
            (path_norm, mid_shape, mid_shape, "path"),
            (module.act0, mid_shape, mid_shape, "path"),
            (module.fc1, (n, out), (n, attn_chs), "attention"),
            (module.bn1, (n, attn_chs), (n, attn_chs), "attention"),
            (module.act1, (n, attn_chs), (n, attn_chs), "attention"),
            (module.fc2, (n, attn_chs), (n, radix * out), "attention"),
        ]
        path: list[str] = []
        attention = ["gap"]
        for sub, in_shape, out_shape, part in parts:
            text = _leaf_text(sub, _Context(where, in_shape, out_shape))
            if text and text != identity_name():
                (path if part == "path" else attention).append(text)
        branches = [" > ".join([f"slice({i * width}, {(i + 1) * width})", *path]) for i in range(radix)]
        return f"sk({' | '.join([*branches, ' > '.join(attention)])})"


def _part_of(norm: Any, channels: int) -> Any:
    """One path's part of the norm over every path's channels: a norm of the same class over `channels` (an
    Identity stays itself)."""
    import torch

    if type(norm).__name__ == "Identity":
        return norm
    if type(norm).__name__ != "BatchNorm2d":
        raise ImportRefused(
            f"{type(norm).__name__} after a split attention's convolution: the language reads BatchNorm2d"
        )
    return torch.nn.BatchNorm2d(channels, affine=norm.affine, track_running_stats=norm.track_running_stats)


SK = SelectiveKernel()
COMBINATORS = (SK,)
imports_modules(SK)
imports_modules(SplitAttention())
