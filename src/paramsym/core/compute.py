"""Compute: FLOPs of a forward pass, of a training step, of a training run, and its time (docs/language-models.md,
"FLOPs and training FLOPs").

    flops              = 2 x (MACs - what a fused causal kernel skips, with --attention fused)
    train_flops        = 2 x batch x (forward + backward + recomputed MACs of one sample)      [--train]
    train_flops_total  = train_flops of one sample x tokens / positions of a sample, rounded up [--tokens]
    train_flops_6nd    = 6 x active parameters x tokens (the classic estimate, for comparison) [--tokens]
    train_seconds      = train_flops_total / (gpus x peak FLOP/s x mfu), whole seconds, rounded up
                                                                          [--tokens, --device and --mfu]

`macs` stays what FlopCounterMode counts (every query-key pair of causal attention, the masked ones too); `flops`
and the training FLOPs follow --attention.

The backward of a layer is counted as PyTorch runs it (torch.utils.flop_counter.FlopCounterMode over forward and
`loss.backward()`, tests/test_flops.py): each product whose operands need gradients is computed again once per such
operand. A layer's kind reports it in four layer quantities (the default in brackets):

    backward_macs   the backward MACs when the layer's input needs a gradient            [2 x MACs]
    backward_first  ... when it needs none (a layer reading the image or token ids before any parameter):
                    the weight gradients alone                                            [see _first]
    fused_skip      the MACs of the masked query-key pairs, which a fused causal kernel skips         [0]
    attention_macs  the MACs of the score and value products, which selective recomputation redoes    [0]

The network's input needs no gradient; a value does once a layer with parameters computed it (the walk over the
structure in `_needs_gradient`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import sympy

from .. import expansion
from .quantities import Quantity, Words, add, register
from .records import ZERO, Layer

Expr: TypeAlias = sympy.Expr
NetworkLike: TypeAlias = Any

# the compute format of each training precision (what the matrix products run in)
COMPUTE_FORMAT = {"fp32": "fp32", "mixed-bf16": "bf16", "bf16": "bf16", "mixed-fp16": "fp16"}


def _double(layer: Layer, counts: dict[str, Expr | None]) -> Expr | None:
    macs = counts["macs"]
    return None if macs is None else 2 * macs


NEEDS_TOKENS = "--tokens and a sequence input"
NEEDS_TIME = "--tokens, --device and --mfu"


def _first(layer: Layer, counts: dict[str, Expr | None]) -> Expr | None:
    """The backward of a layer whose input needs no gradient: none without parameters (nothing in it needs a
    gradient) or without MACs; the weight gradients (= the forward MACs) for a product of weights and the input;
    unknown for other kinds, which do not say."""
    macs = counts["macs"]
    if macs is None:
        return None
    if macs == 0 or counts["params"] == 0:
        return ZERO
    return macs if getattr(layer.kind, "weights_times_input", False) else None


def _zero(layer: Layer, counts: dict[str, Expr | None]) -> Expr:
    return ZERO


# ---- which layers read a value that needs a gradient


def _needs_gradient(net: NetworkLike) -> dict[int, bool] | None:
    """For each layer index, whether its input needs a gradient; None where a symbolic repeat starts without one
    and gives one (its first pass differs from the others: not counted)."""
    layers = net.layers
    found: dict[int, bool] = {}
    kept: dict[int, bool] = {}

    def walk(node, grad: bool) -> bool:
        key = node.kind.key
        if key == "layer":
            found[node.layer] = grad
            lc = layers[node.layer]
            return grad or lc.counts["params"] != 0
        if key == "seq":
            for child in node.children:
                grad = walk(child, grad)
            return grad
        if key == "repeat":
            out = walk(node.children[0], grad)
            if out and not grad:
                raise _Unknown
            return out
        if key == "aux":
            walk(node.children[0], grad)
            return grad
        if key == "keep":
            out = walk(node.children[0], grad)
            kept[id(node)] = out
            return out
        if key == "fetch":
            return kept.get(id(node.target), True)
        if key == "input":
            return False
        outs = [walk(child, grad) for child in node.children]  # branches read the same input
        if key == "res" and len(node.children) < 2:
            outs.append(grad)  # the identity shortcut
        return any(outs)

    try:
        walk(net.structure, False)
    except _Unknown:
        return None
    return found


class _Unknown(Exception):
    pass


# ---- the network quantities


def _fused(net: NetworkLike) -> bool:
    return net.setup.attention == "fused"


def _total(net: NetworkLike, name: str) -> Expr | None:
    return net._counted.total(name)


def forward_macs(net: NetworkLike) -> Expr | None:
    """The MACs of one forward pass of one sample, as --attention counts them."""
    macs = net.macs
    if macs is None or not _fused(net):
        return macs
    skip = _total(net, "fused_skip")
    return None if skip is None else expansion.expand(macs - skip, "the FLOP formula")


def _flops(net: NetworkLike) -> Expr | None:
    macs = forward_macs(net)
    return None if macs is None else expansion.expand(2 * macs, "the FLOP formula")


def backward_macs(net: NetworkLike) -> Expr | None:
    """The backward MACs of one sample (math attention: every pair)."""
    grads = _needs_gradient(net)
    if grads is None:
        return None
    parts = []
    for i, lc in enumerate(net.layers):
        value = lc.counts["backward_macs" if grads.get(i, True) else "backward_first"]
        if value is None:
            return None
        parts.append(value)
    return add(parts)  # alike terms grouped: 10,000 layers have a few distinct formulas


def recomputed_macs(net: NetworkLike) -> Expr | None:
    """The forward MACs recomputed in the backward: --recompute full, the whole forward again (what
    torch.utils.checkpoint around the model recomputes); selective, the score and value products."""
    how = net.setup.recompute
    if how == "full":
        return net.macs
    if how == "selective":
        return _total(net, "attention_macs")
    return ZERO


def train_step_macs(net: NetworkLike) -> Expr | None:
    """MACs of one sample's training step: forward, backward and recomputation; with fused attention the masked
    pairs are skipped in each (the forward and the recomputation once, the backward twice: both operands)."""
    parts = [net.macs, backward_macs(net), recomputed_macs(net)]
    if any(p is None for p in parts):
        return None
    total = sympy.Add(*parts)
    if _fused(net):
        skip = _total(net, "fused_skip")
        if skip is None:
            return None
        again = 1 if net.setup.recompute in ("full", "selective") else 0
        total -= (3 + again) * skip
    return total


def _train_flops(net: NetworkLike) -> Expr | None:
    macs = train_step_macs(net)
    return None if macs is None else expansion.expand(2 * net.setup.batch * macs, "the training FLOP formula")


def sequence_positions(net: NetworkLike) -> Expr | None:
    """The tokens of one sample: the positions of a sequence input (token ids T, or T x d); None for an image."""
    shape = net.input_shape
    if shape.spatial == () and net.layers and getattr(net.layers[0].layer.kind, "reads_token_ids", False):
        return shape.channels  # T ids of a sequence
    if shape.spatial is None or len(shape.spatial) != 1:
        return None
    return shape.spatial[0]


def _is_sequence(net: NetworkLike) -> bool:
    return sequence_positions(net) is not None


def _total_flops(net: NetworkLike) -> Expr | None:
    macs, T = train_step_macs(net), sequence_positions(net)
    if macs is None or T is None:
        return None
    value = sympy.expand(2 * macs * net.setup.tokens / T)
    whole = value.is_polynomial() and all(c.is_Integer for c in value.as_coefficients_dict().values())
    return value if whole else sympy.ceiling(value)


def _six_nd(net: NetworkLike) -> Expr | None:
    return expansion.expand(6 * net.active * net.setup.tokens, "the 6ND formula")


def compute_format(net: NetworkLike) -> str:
    return COMPUTE_FORMAT.get(net.setup.precision, "fp32")


def _seconds(net: NetworkLike) -> Expr | None:
    total = _total_flops(net)
    if total is None:
        return None
    s = net.setup
    peak = s.device.flops_per_second(compute_format(net))
    rate = sympy.Rational(peak.numerator, peak.denominator) * sympy.Rational(s.mfu.numerator, s.mfu.denominator)
    return sympy.ceiling(total / (s.gpus * rate))


# ---- explain


def _explain_flops(net: NetworkLike, words: Words) -> str | None:
    if net.flops is None:
        return None
    if _fused(net):
        skip = _total(net, "fused_skip")
        if skip == 0:
            return f"FLOPs: {words(net.flops)} (2 per MAC; --attention fused changes nothing: no attention is causal)."
        return (
            f"FLOPs: {words(net.flops)} (2 per MAC, without the {words(skip)} MACs of masked query-key pairs that "
            f"a fused causal kernel skips)."
        )
    return f"FLOPs: {words(net.flops)} (2 per MAC)."


def _explain_train(net: NetworkLike, words: Words) -> str | None:
    if net.train_flops is None:
        return "Training FLOPs: unknown (a layer's backward is not known when its input needs no gradient)."
    parts = f"per input: forward {words(net.macs)}, backward {words(backward_macs(net))} MACs"
    recompute = recomputed_macs(net)
    if recompute is not None and recompute != 0:
        parts += f", recomputed {words(recompute)} ({net.setup.recompute})"
    skip = _total(net, "fused_skip") if _fused(net) else 0
    if skip:
        again = 1 if net.setup.recompute in ("full", "selective") else 0
        parts += f", less {words((3 + again) * skip)} of masked pairs (fused)"
    return f"Training FLOPs of one step on a batch of {words(net.setup.batch)}: {words(net.train_flops)} ({parts})."


def _explain_total(net: NetworkLike, words: Words) -> str | None:
    if net.train_flops_total is None:
        return None
    six = net.train_flops_6nd
    return (
        f"Training FLOPs for {words(net.setup.tokens)} tokens: {words(net.train_flops_total)}; the classic 6ND "
        f"estimate (6 x {words(net.active)} parameters x tokens) is {words(six)}: it leaves out attention's "
        f"scores over the positions and counts the embedding tables as if they were multiplied."
    )


def _explain_seconds(net: NetworkLike, words: Words) -> str | None:
    if net.train_seconds is None:
        return None
    s = net.setup
    return (
        f"Training time: {words(net.train_seconds)} s on {words(s.gpus)} x {s.device.name} at "
        f"{compute_format(net)} with MFU {float(s.mfu):g}."
    )


def _training(net: NetworkLike) -> bool:
    return bool(net.setup.train)


def _tokens(net: NetworkLike) -> bool:
    return net.setup.tokens is not None and _is_sequence(net)


def _timed(net: NetworkLike) -> bool:
    return _tokens(net) and net.setup.device is not None and net.setup.mfu is not None


def _layer(name: str, title: str, default: Callable) -> Quantity:
    return Quantity(name, title, default=default, in_json=False, totalled=False)  # totals: _total


for quantity, after in (
    (_layer("backward_macs", "backward MACs", _double), None),
    (_layer("backward_first", "backward MACs (input without gradient)", _first), None),
    (_layer("fused_skip", "MACs a fused causal kernel skips", _zero), None),
    (_layer("attention_macs", "attention score and value MACs", _zero), None),
    (
        Quantity(
            "flops",
            "FLOPs",
            noun="FLOP count",
            unit="flops",
            network=_flops,
            budget=True,
            explain=_explain_flops,
        ),
        "macs",
    ),
    (
        Quantity(
            "train_flops",
            "training FLOPs",
            noun="training FLOP count",
            unit="flops",
            network=_train_flops,
            budget=True,
            explain=_explain_train,
            applies=_training,
            needs="--train",
        ),
        "flops",
    ),
    (
        Quantity(
            "train_flops_total",
            "training FLOPs of the run",
            noun="training FLOP count",
            unit="flops",
            network=_total_flops,
            budget=True,
            explain=_explain_total,
            applies=_tokens,
            needs=NEEDS_TOKENS,
        ),
        "train_flops",
    ),
    (
        Quantity(
            "train_flops_6nd",
            "6ND",
            noun="6ND estimate",
            unit="flops",
            network=_six_nd,
            applies=_tokens,
            needs=NEEDS_TOKENS,
        ),
        "train_flops_total",
    ),
    (
        Quantity(
            "train_seconds",
            "training seconds",
            noun="training time",
            unit="seconds",
            network=_seconds,
            budget=True,
            explain=_explain_seconds,
            applies=_timed,
            needs=NEEDS_TIME,
        ),
        "train_flops_6nd",
    ),
):
    register(quantity, after)
