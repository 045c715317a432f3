"""Training memory per device: the weights, the gradients and the optimizer's states that training keeps
(the "model states" of ZeRO), and with the saved activations their sum. Registered as quantities that
apply with `--train` (docs/language-models.md, "Training memory").

Precision (`--precision`), bytes per parameter:

    precision    weights  gradients  master weights  optimizer states
    fp32         4        4          -               fp32
    mixed-bf16   2        2          4 (fp32)        fp32
    mixed-fp16   2        2          4 (fp32)        fp32
    bf16         2        2          -               bf16

The fp32 master weights of mixed precision are counted in `optimizer_bytes`, as DeepSpeed and the ZeRO
paper (Rajbhandari et al. 2020, section 3.1) count them: Adam's "optimizer states" are K = 12 bytes a
parameter (master weights, momentum and variance in fp32), so that mixed-precision Adam keeps
2 + 2 + 12 = 16 bytes a parameter.

Optimizers (torch.optim, after the first step):
- adam, adamw: exp_avg and exp_avg_sq, each the size of the parameter;
- sgd: no state (momentum 0 keeps no buffer); sgd-momentum: one momentum_buffer;
- adafactor (torch.optim.Adafactor): for a tensor of 2 or more axes, row_var (the shape with the last
  axis 1) and col_var (the shape with the second-to-last axis 1); for a 1-axis tensor, a full variance;
  no first moment. It needs each parameter tensor's shape: the tensors of the network's PyTorch export
  (paramsym.frameworks.export), which need every size as a number;
- adamw-8bit (bitsandbytes.optim.AdamW8bit, bitsandbytes/optim/optimizer.py, Optimizer2State.init_state,
  min_8bit_size=4096, block_wise=True): a tensor of fewer than 4096 elements keeps state1 and state2 in
  fp32 (8 bytes an element); a larger one keeps them in uint8 (2 bytes an element) and one fp32 absmax per
  block of 256 elements for each (8 bytes per block); the two quantization maps (256 fp32 values each,
  2,048 bytes) are shared by every tensor and counted once.
The `step` counters that torch.optim keeps per parameter tensor (a 0-d fp32 tensor) are on the CPU unless
the optimizer is `capturable` or `fused` (torch/optim/adam.py, _init_group): they are not device memory
and are left out; bitsandbytes keeps its step as a Python int.

Sharding over `--gpus N` with `--tp t` and `--pp p` (the data-parallel degree is dp = N / (t p)):
- ZeRO (DeepSpeed's stages; Rajbhandari et al. 2020, section 5): stage 1 partitions the optimizer states
  (master weights included) over dp, stage 2 also the gradients, stage 3 also the weights. A partition
  holds ceil(elements / dp) elements (DeepSpeed pads the last partition; the padding it adds to align
  its flat buffers is left out). Buffers (BatchNorm statistics) are not partitioned.
- Tensor parallelism (Megatron-LM; Shoeybi et al. 2019): the weights of embeddings (vocabulary-parallel),
  dense layers and attention's projections are split over t; norms are replicated on every rank. A
  layer of any other kind with parameters, a bias of a dense layer or of attention (split when the layer
  is column-parallel, replicated when it is row-parallel: the program does not say which), and layers
  inside moe are refused. With sequence parallelism the saved activations are split over t as well
  (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models", eq. 5).
- Pipeline parallelism (Megatron-LM's split): the blocks, the one symbolic repeat `(block) * L` at the top of
  the program, are split L/p to a stage (p must divide L); the first stage also holds the layers before the
  blocks (the embedding). The quantities are the first stage's: under the 1F1B schedule it keeps p
  micro-batches of activations in flight, the most of any stage (Narayanan et al. 2021, section 2.2.1);
  the last stage holds the layers after the blocks instead (the final norm and the output layer), whose
  model states may be larger. The activations of a stage are not counted: `train_memory_bytes` is None
  with `--pp` above 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import sympy

from .. import expansion
from ..errors import ParamsymError, ParamsymUsageError
from .quantities import BY_NAME, Quantity, Words, register

Expr: TypeAlias = sympy.Expr
NetworkLike: TypeAlias = Any

NEEDS = "--train"
ACTIVATIONS = "saved_activation_bytes"  # what autograd keeps for backward (core/saved.py, another module)

# precision: bytes of a weight, of a gradient, of the fp32 master copy, and of an optimizer state value
PRECISION_BYTES: dict[str, tuple[int, int, int, int]] = {
    "fp32": (4, 4, 0, 4),
    "mixed-bf16": (2, 2, 4, 4),
    "mixed-fp16": (2, 2, 4, 4),
    "bf16": (2, 2, 0, 2),
}
# full-size state tensors per parameter of the optimizers that keep whole tensors
STATES_PER_PARAM = {"adam": 2, "adamw": 2, "sgd": 0, "sgd-momentum": 1}
PER_TENSOR = ("adafactor", "adamw-8bit")
MIN_8BIT_SIZE = 4096  # bitsandbytes' min_8bit_size: smaller tensors keep 32-bit states
BLOCK_8BIT = 256  # bitsandbytes' block of 8-bit states with one fp32 absmax
QMAPS_8BIT = 2 * 256 * 4  # the signed and unsigned dynamic maps, 256 fp32 values each, one per optimizer


def _applies(net: NetworkLike) -> bool:
    return bool(net.setup.train)


@dataclass(frozen=True)
class ModelStates:
    """The per-device bytes of the model states, and how they were found (for explain)."""

    weights: Expr
    grads: Expr
    optimizer: Expr
    params_per_rank: Expr  # the parameters on one tensor-parallel rank (all of them without --tp)
    dp: Expr  # the data-parallel degree


def check_setup(setup: Any) -> None:
    """The run options of training that must agree: --gpus a multiple of --tp x --pp; --zero 2 and 3 without
    --pp (DeepSpeed's PipelineEngine, deepspeed/runtime/pipe/engine.py: "ZeRO-2 and ZeRO-3 are incompatible
    with pipeline parallelism")."""
    if setup.pp != 1 and setup.zero >= 2:
        raise ParamsymUsageError(
            f"--zero {setup.zero} with --pp {setup.pp}: DeepSpeed's ZeRO-2 and ZeRO-3 are incompatible with pipeline "
            f"parallelism",
            hint="use --zero 0 or 1 with --pp",
        )
    gpus, model = setup.gpus, setup.tp * setup.pp
    if isinstance(gpus, sympy.Integer) and int(gpus) % model:
        raise ParamsymUsageError(
            f"--gpus {int(gpus)}: not a multiple of --tp {setup.tp} x --pp {setup.pp} = {model}",
            hint=f"give --gpus a multiple of {model}",
        )


def data_parallel(setup: Any) -> Expr:
    """dp = N / (t p): the ranks that hold the same layers, over which ZeRO partitions."""
    return sympy.Mul(setup.gpus, sympy.Rational(1, setup.tp * setup.pp))


def _partition(elements: Expr, dp: Expr) -> Expr:
    """The elements one of dp ranks holds: ceil(elements / dp)."""
    if dp == 1:
        return elements
    return sympy.ceiling(elements / dp)


def _tp_share(lc: Any, t: int, net_value: Callable[[Expr], int | None]) -> Expr:
    """A layer's parameters on one of t tensor-parallel ranks (Kind.tensor_parallel: Megatron-LM's rules)."""
    layer, params = lc.layer, lc.counts.params
    if t == 1 or params == 0:
        return params
    if layer.experts is not None:
        raise ParamsymUsageError(
            f"--tp {t}: {layer.name} is inside moe: expert parallelism is not counted", pos=layer.pos
        )
    return layer.kind.tensor_parallel(layer, params, t, net_value)


def _indices(node: Any) -> list[int]:
    """The layers under a node of the structure."""
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        if current.layer is not None:
            found.append(current.layer)
        stack.extend(current.children)
    return found


def pipeline_stage(net: NetworkLike) -> tuple[list[int], list[int], Expr]:
    """(the layers before the blocks, the layers of the blocks, the repeat count L): the first of p pipeline
    stages holds the layers before the blocks and L/p of the blocks (Megatron-LM's split). The blocks are the
    one symbolic repeat at the top of the program, `(block) * L`."""
    top = net.structure
    children = top.children if top.layer is None and top.count is None else [top]
    repeats = [i for i, c in enumerate(children) if c.count is not None and c.top is None and c.layer is None]
    p = net.setup.pp
    if len(repeats) != 1:
        raise ParamsymUsageError(
            f"--pp {p}: the pipeline stages split the blocks, which are one symbolic repeat at the top of the "
            f"program, (block) * L; this program has {len(repeats) or 'none'}",
            hint="write the blocks as (block) * L with let L = ... (a number unrolls the repeat)",
        )
    at = repeats[0]
    before = [i for c in children[:at] for i in _indices(c)]
    blocks = _indices(children[at])
    count = children[at].count
    value = net.value(count)
    if value is None:
        raise ParamsymUsageError(
            f"--pp {p}: the number of blocks ({count}) must be a number to check that {p} divides it",
            hint=f"give {count} a value (--set)",
        )
    if value % p:
        raise ParamsymUsageError(
            f"--pp {p}: the {count} = {value} blocks do not split into {p} stages",
            hint=f"give --pp a divisor of {value}",
        )
    return before, blocks, count


def _stage_state(net: NetworkLike) -> Expr:
    """The non-learnable state (buffers) of the first pipeline stage (all of it without --pp)."""
    if net.setup.pp == 1:
        return net.state
    before, blocks, _ = pipeline_stage(net)
    layers = net.layers
    state = [layers[i].counts.state for i in before] + [layers[i].counts.state / net.setup.pp for i in blocks]
    return expansion.expand(sympy.Add(*state), "the state per device")


def _rank_params(net: NetworkLike) -> Expr:
    """The parameters of one device before ZeRO: the first pipeline stage's layers, each its tensor-parallel
    share."""
    t, p = net.setup.tp, net.setup.pp
    if t == 1 and p == 1:
        return net.params
    layers = net.layers
    if p == 1:
        shares = [_tp_share(lc, t, net.value) for lc in layers]
    else:
        before, blocks, _ = pipeline_stage(net)
        shares = [_tp_share(layers[i], t, net.value) for i in before] + [
            _tp_share(layers[i], t, net.value) / p for i in blocks
        ]
    return expansion.expand(sympy.Add(*shares), "the parameters per device")


def model_states(net: NetworkLike) -> ModelStates:
    """The weights, gradients and optimizer states one device keeps, in bytes."""
    cached = net.__dict__.get("_training_states")
    if cached is not None:
        return cached
    setup = net.setup
    check_setup(setup)
    gpus = net.value(setup.gpus)  # --gpus N with --set N=6: checked with its value
    if gpus is not None and gpus % (setup.tp * setup.pp):
        raise ParamsymUsageError(
            f"--gpus {setup.gpus} = {gpus}: not a multiple of --tp {setup.tp} x --pp {setup.pp} = {setup.tp * setup.pp}"
        )
    w, g, master, state = PRECISION_BYTES[setup.precision]
    dp = data_parallel(setup)
    per_rank = _rank_params(net)
    sharded = _partition(per_rank, dp)
    buffers = _stage_state(net)  # BatchNorm statistics: kept whole on every rank, at the width of the weights
    weights = w * (sharded if setup.zero >= 3 else per_rank) + w * buffers
    grads = g * (sharded if setup.zero >= 2 else per_rank)
    held = sharded if setup.zero >= 1 else per_rank
    if setup.optimizer in PER_TENSOR:
        if setup.zero or setup.tp != 1 or setup.pp != 1:
            raise ParamsymUsageError(
                f"--optimizer {setup.optimizer} keeps states per parameter tensor, which --zero and --tp cut "
                f"differently: not counted with them",
                hint="use --optimizer adamw (or adam, sgd, sgd-momentum) with --zero or --tp",
            )
        optimizer = master * per_rank + _per_tensor_states(net, setup.optimizer, state)
    else:
        optimizer = (master + STATES_PER_PARAM[setup.optimizer] * state) * held
    weights, grads, optimizer = (
        expansion.expand(v, "the training memory formula") for v in (weights, grads, optimizer)
    )
    result = ModelStates(weights, grads, optimizer, per_rank, dp)
    net.__dict__["_training_states"] = result
    return result


# What lists the shape of each parameter tensor of a network (a stage above: the PyTorch export, set by
# paramsym/__init__.py): per-tensor optimizer states need it.
TENSOR_SHAPES: list[Callable[[NetworkLike], list[tuple[int, ...]]]] = []


def tensor_shapes(net: NetworkLike) -> list[tuple[int, ...]]:
    """The shape of each parameter tensor, as the network's PyTorch export has them."""
    if not TENSOR_SHAPES:
        raise ParamsymUsageError(f"--optimizer {net.setup.optimizer} needs the PyTorch export: import paramsym")
    try:
        return TENSOR_SHAPES[0](net)
    except ParamsymError as error:
        raise ParamsymUsageError(
            f"--optimizer {net.setup.optimizer} counts the states of each parameter tensor, from the network's "
            f"PyTorch export, which fails: {error.message}",
            hint="give every symbol a number (--set), or use --optimizer adamw",
        ) from None


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for size in shape:
        n *= size
    return n


def _per_tensor_states(net: NetworkLike, optimizer: str, state_bytes: int) -> Expr:
    shapes = tensor_shapes(net)
    total = sum(_numel(s) for s in shapes)
    params = net.value(net.params)
    if total != params:
        raise ParamsymUsageError(
            f"--optimizer {optimizer}: the PyTorch export has {total:,} parameters, not the {params} counted",
            hint="use --optimizer adamw",
        )
    if optimizer == "adafactor":
        elements = 0
        for s in shapes:
            if len(s) >= 2:
                elements += _numel(s[:-1]) + _numel(s[:-2]) * s[-1]
            else:
                elements += _numel(s)
        return sympy.Integer(state_bytes * elements)
    size = 0
    for s in shapes:
        n = _numel(s)
        size += 8 * n if n < MIN_8BIT_SIZE else 2 * n + 2 * 4 * -(-n // BLOCK_8BIT)
    if any(_numel(s) >= MIN_8BIT_SIZE for s in shapes):
        size += QMAPS_8BIT
    return sympy.Integer(size)


def _weight_bytes(net: NetworkLike) -> Expr:
    return model_states(net).weights


def _grad_bytes(net: NetworkLike) -> Expr:
    return model_states(net).grads


def _optimizer_bytes(net: NetworkLike) -> Expr:
    return model_states(net).optimizer


def _model_state_bytes(net: NetworkLike) -> Expr:
    s = model_states(net)
    return expansion.expand(s.weights + s.grads + s.optimizer, "the model states formula")


def activation_share(net: NetworkLike) -> Expr | None:
    """The saved activations one device keeps: `saved_activation_bytes` (None when it is not counted or
    unknown), split over --tp (sequence parallelism)."""
    if ACTIVATIONS not in BY_NAME:
        return None
    saved = net.quantity(ACTIVATIONS)
    if saved is None or net.setup.pp != 1:  # a stage's activations: not counted (see the module's docstring)
        return None
    t = net.setup.tp
    return saved if t == 1 else sympy.ceiling(saved / t)


def _train_memory_bytes(net: NetworkLike) -> Expr | None:
    saved = activation_share(net)
    if saved is None:
        return None
    return expansion.expand(_model_state_bytes(net) + saved, "the training memory formula")


def _train_memory_budget(net: NetworkLike) -> Expr | None:
    if ACTIVATIONS not in BY_NAME:
        raise ParamsymUsageError(
            "--on train_memory_bytes needs the saved activations, which this build does not count",
            hint="budget the weights, gradients and optimizer states alone: --on model_state_bytes",
        )
    return net.quantity("train_memory_bytes")


# ---- explain's closing lines


def _precision_note(net: NetworkLike) -> str:
    setup = net.setup
    parts = [f"--precision {setup.precision}"]
    parts += [f"--zero {setup.zero}"] if setup.zero else []
    parts += [f"--tp {setup.tp}"] if setup.tp != 1 else []
    parts += [f"--pp {setup.pp} (the first stage)"] if setup.pp != 1 else []
    parts += [f"--gpus {setup.gpus}"] if setup.gpus != 1 else []
    return ", ".join(parts)


def _explain(title: str, part: Callable[[NetworkLike], Expr], what: Callable[[NetworkLike], str]):
    def line(net: NetworkLike, words: Words) -> str | None:
        return f"{title}: {words(part(net))} bytes per device ({what(net)}; {_precision_note(net)})."

    return line


def _weights_what(net: NetworkLike) -> str:
    w = PRECISION_BYTES[net.setup.precision][0]
    where = "a 1/dp share" if net.setup.zero >= 3 else "every parameter"
    return f"{w} bytes a parameter, {where}"


def _grads_what(net: NetworkLike) -> str:
    g = PRECISION_BYTES[net.setup.precision][1]
    return f"{g} bytes a parameter, " + ("a 1/dp share" if net.setup.zero >= 2 else "every parameter")


def _optimizer_what(net: NetworkLike) -> str:
    setup = net.setup
    _, _, master, state = PRECISION_BYTES[setup.precision]
    parts = [f"fp32 master weights {master} bytes a parameter"] if master else []
    if setup.optimizer in STATES_PER_PARAM:
        n = STATES_PER_PARAM[setup.optimizer]
        parts.append(f"{setup.optimizer} {n} state{'s' if n != 1 else ''} of {state} bytes a parameter")
    elif setup.optimizer == "adafactor":
        parts.append(f"adafactor's row and column statistics, {state} bytes each")
    else:
        parts.append("8-bit states with an fp32 absmax per 256 (fp32 states for tensors under 4,096 elements)")
    share = ", a 1/dp share" if setup.zero >= 1 else ""
    return ", ".join(parts) + share


def _explain_total(net: NetworkLike, words: Words) -> str | None:
    value = net.quantity("train_memory_bytes")
    if value is None:
        missing = (
            "the saved activations are not counted in this build"
            if ACTIVATIONS not in BY_NAME
            else "the activations a pipeline stage keeps are not counted"
            if net.setup.pp != 1
            else "the saved activations are unknown (give the input shape)"
        )
        return f"Training memory per device: not known ({missing}); the model states alone are " + (
            f"{words(_model_state_bytes(net))} bytes."
        )
    return (
        f"Training memory per device: {words(value)} bytes (weights, gradients, optimizer states and the saved "
        f"activations{', split over --tp' if net.setup.tp != 1 else ''})."
    )


def _quantity(name: str, title: str, network, explain, budget_formula=None) -> Quantity:
    return Quantity(
        name,
        title,
        noun=title,
        unit="bytes",
        network=network,
        budget=True,
        budget_formula=budget_formula,
        explain=explain,
        applies=_applies,
        needs=NEEDS,
    )


TRAINING_QUANTITIES = (
    _quantity(
        "weight_bytes", "weight bytes", _weight_bytes, _explain("Weights for training", _weight_bytes, _weights_what)
    ),
    _quantity("grad_bytes", "gradient bytes", _grad_bytes, _explain("Gradients", _grad_bytes, _grads_what)),
    _quantity(
        "optimizer_bytes",
        "optimizer bytes",
        _optimizer_bytes,
        _explain("Optimizer states", _optimizer_bytes, _optimizer_what),
    ),
    _quantity(
        "model_state_bytes",
        "model state bytes",
        _model_state_bytes,
        _explain("Model states", _model_state_bytes, lambda net: "weights, gradients and optimizer states"),
    ),
    _quantity("train_memory_bytes", "training memory", _train_memory_bytes, _explain_total, _train_memory_budget),
)

for _q in TRAINING_QUANTITIES:
    if _q.name not in BY_NAME:
        register(_q)
