"""Serving a causal language model: the prompt's prefill, the decode steps that follow it, the memory that
must fit to serve, and roofline times on a device (docs/language-models.md, "Serving: prefill and decode" and
"Roofline times").

Context T is the program's sequence length (input(T)). The prefill runs the T tokens of the prompt of each of
the `--batch` sequences. A decode step at context T generates the T-th token of each sequence: the new token
attends to T positions, the T - 1 whose keys and values are in the KV cache and its own (as Hugging Face's
`generate` runs one token with a cache of T - 1 positions); after the step the cache holds the T positions
that `kv_cache` counts. A sliding window of W attends to min(T, W) of them.

Decoding needs a causal decoder: every attention causal self-attention (attn(..., causal), with or without a
sliding window), every other layer working on each position alone (dense, embed, posembed, norms,
activations, soft caps, routers), one input. Encoders (BERT, ViT, Swin), encoder-decoders (T5) and other
attentions (MLA, ...) do not decode here: the decode quantities do not apply to them.

With `--attention fused` the prefill leaves out the masked query/key pairs, derived here from each causal
attention's options (`Decoder.fused_skip`: 2·q·(T² − pairs) MACs a layer, pairs = T(T+1)/2, or Σ min(i, W) with a
window). core/compute.py's per-layer quantity of what a fused kernel skips is the same number layer by layer: once
it is in, the prefill can read its total instead, and a test assert that the two agree.

Every quantity is an exact formula in T and the batch. Times are whole nanoseconds, rounded up; tokens per
second are whole tokens, rounded down (the evaluator gives whole numbers only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import sympy

from .. import expansion
from .quantities import NetworkLike, Quantity, Words, add, register

Expr: TypeAlias = sympy.Expr

# what a decode quantity needs
DECODER = "a causal decoder (causal self-attention over one input sequence; encoders do not decode)"
DEVICE = "--device, on " + DECODER
NANO = 10**9
LEFT_OUT = "the activations' traffic is left out."
PER_SECOND = "tokens per second"  # generated: text, not the layer


@dataclass(frozen=True)
class CausalAttention:
    """What a kind of causal self-attention over the sequence tells serving (Kind.causal_attention)."""

    per_token: Expr  # MACs of the projections of one position (queries, keys, values, output)
    q: Expr  # query channels: a query and a key make q MACs of scores, and q of the weighted sum
    kv: Expr  # key channels (and as many value channels) a position keeps
    window: Expr | None  # a sliding window of W positions, or None


@dataclass(frozen=True)
class Decoder:
    """What serving reads of a causal decoder, per sequence, as formulas in the context T."""

    T: Expr  # the context (the program's sequence length)
    decode_macs: Expr  # MACs of one decode step at context T
    fused_skip: Expr  # MACs of the masked query/key pairs of the prefill (what a fused causal kernel skips)
    kv_read: Expr  # values of keys and values a decode step reads (its own new ones included)
    kv_written: Expr  # values of keys and values a decode step writes (one position's, in every layer)
    # the lookup tables (embed, posembed) that a step reads by the row, not whole: (weights, the width of a row)
    tables: tuple[tuple[Expr, Expr], ...]
    windowed: bool = False  # some attention has a sliding window


def decoder(net: NetworkLike) -> Decoder | None:
    """The decoder's serving formulas, or None when the network is not a causal decoder (cached)."""
    cache = net.__dict__.setdefault("_serving", {})
    if "decoder" not in cache:
        cache["decoder"] = _decoder(net)
    return cache["decoder"]


def _decoder(net: NetworkLike) -> Decoder | None:
    if len(net.inputs) != 1:
        return None  # an encoder-decoder: its decoder attends to the encoder's memory
    shape = net.inputs[0]
    if shape.spatial == ():
        T = shape.channels  # input(T): token ids
    elif shape.rank == 1:
        T = shape.spatial[0]  # input(T x d): a sequence of vectors
    else:
        return None
    if T is None:
        return None
    # the tables that an output layer shares (tie=): read whole by it
    tied = {lc.layer.options.tie.index for lc in net.layers if getattr(lc.layer.options, "tie", None) is not None}
    decode, skip, read, written = ([] for _ in range(4))
    tables = []
    causal = windowed = False
    # layers that are alike (a repeated block) share their Counts: each distinct one is looked at once
    seen: dict = {}
    for lc in net.layers:
        layer = lc.layer
        key: tuple = (id(lc.counts), layer.kind, layer.options, layer.multiplier, layer.in_shape, layer.out_shape)
        key += (layer.cin, layer.cout, layer.experts)
        try:
            parts = seen[key] if key in seen else seen.setdefault(key, _layer_parts(lc, T))
        except TypeError:  # an option that cannot be a key
            parts = _layer_parts(lc, T)
        if parts is None:
            return None
        step, masked, reads, writes, window = parts
        decode.append(step)
        if masked is not None:  # causal attention
            causal, windowed = True, windowed or window
            skip.append(masked)
            read.append(reads)
            written.append(writes)
        elif layer.kind.lookup and layer.index not in tied and lc.counts.params != 0:
            tables.append((lc.counts.params, layer.multiplier * layer.out_shape.channels))
    if not causal:
        return None

    def total(parts: list) -> Expr:
        return expansion.expand(add(parts)) if parts else sympy.Integer(0)

    parts = (total(decode), total(skip), total(read), total(written), tuple(tables))
    return Decoder(T, *parts, windowed=windowed)


def _layer_parts(lc, T: Expr) -> tuple | None:
    """One layer's share of a decode step: (its MACs at one position; for causal attention the masked pairs'
    MACs, the key and value values read and written, whether it has a window, else None four times), or None
    when the layer is no part of a causal decoder."""
    layer, macs = lc.layer, lc.counts.macs
    if macs is None:
        return None
    attention = layer.kind.causal_attention(layer)
    if attention is not None:
        if layer.experts is not None:
            return None
        m, q, kv = layer.multiplier, attention.q, attention.kv
        # the layer's MACs must be the projections of each position and every query/key pair (checked)
        if expansion.expand(macs - m * (T * attention.per_token + 2 * T * T * q)) != 0:
            return None
        if attention.window is None:
            attended, pairs = T, T * (T + 1) / 2
        else:  # position i attends to min(i, W) positions: m(m + 1)/2 + (T - m)·m pairs in all, m = min(T, W)
            attended = sympy.Min(T, attention.window)
            pairs = attended * (attended + 1) / 2 + (T - attended) * attended
        step = m * (attention.per_token + 2 * attended * q)
        return step, m * 2 * q * (T * T - pairs), m * 2 * attended * kv, m * 2 * kv, attention.window is not None
    if not layer.kind.per_position:
        return None  # attention of another kind, a convolution, a recurrence: positions mixed
    if layer.out_shape.rank != 1 or expansion.expand(layer.out_shape.positions - T) != 0:
        return None  # a layer that changes the sequence's length (first, pooling)
    per = expansion.expand(macs / T)
    if isinstance(T, sympy.Symbol) and not per.is_polynomial(T):
        return None
    return per, None, None, None, False


# ---- the quantities ---------------------------------------------------------------------------------------


def is_decoder(net: NetworkLike) -> bool:
    return decoder(net) is not None


def _has_device(net: NetworkLike) -> bool:
    return net.setup.device is not None and is_decoder(net)


def _prefill_macs(net: NetworkLike) -> Expr | None:
    dec = decoder(net)
    if dec is None or net.macs is None:
        return None
    return net.macs - dec.fused_skip if net.setup.attention == "fused" else net.macs


def _prefill_flops(net: NetworkLike) -> Expr | None:
    macs = _prefill_macs(net)
    return None if macs is None else expansion.expand(2 * net.setup.batch * macs, "the prefill FLOPs")


def _decode_flops(net: NetworkLike) -> Expr | None:
    dec = decoder(net)
    return None if dec is None else expansion.expand(2 * net.setup.batch * dec.decode_macs, "the decode FLOPs")


def _weights_read(net: NetworkLike, tokens: Expr) -> Expr:
    """Bytes of the weights a pass over `tokens` tokens reads: every weight once, except the lookup tables
    (embed and posembed not tied to an output layer), of which it reads a row per token, at most the table."""
    dec = decoder(net)
    assert dec is not None
    elements = net.params + net.state
    for weights, row in dec.tables:
        elements += sympy.Min(weights, tokens * row) - weights
    return net.setup.weights.bytes(elements)


def _decode_bytes(net: NetworkLike) -> Expr | None:
    dec = decoder(net)
    if dec is None:
        return None
    batch = net.setup.batch
    kv = net.setup.kv.bytes(batch * (dec.kv_read + dec.kv_written))
    return _weights_read(net, batch) + kv


def _prefill_bytes(net: NetworkLike) -> Expr | None:
    """Weights read once, and the KV cache of the batch written."""
    dec = decoder(net)
    if dec is None or net.kv_cache_bytes is None:
        return None
    return _weights_read(net, net.setup.batch * dec.T) + net.setup.batch * net.kv_cache_bytes


def _serve_memory(net: NetworkLike) -> Expr | None:
    if not is_decoder(net) or net.kv_cache_bytes is None:
        return None
    return net.param_bytes + net.setup.batch * net.kv_cache_bytes


def _roofline(net: NetworkLike, flops: Expr | None, size: Expr | None) -> Expr | None:
    """Seconds (exact): the longer of the compute at the peak of the activations' format and the traffic at
    the memory bandwidth."""
    if flops is None or size is None:
        return None
    device = net.setup.device
    peak = device.flops_per_second(net.setup.activations.name)
    bandwidth = device.bandwidth
    return sympy.Max(
        flops / sympy.Rational(peak.numerator, peak.denominator),
        size / sympy.Rational(bandwidth.numerator, bandwidth.denominator),
    )


def _prefill_ns(net: NetworkLike) -> Expr | None:
    seconds = _roofline(net, net.prefill_flops, _prefill_bytes(net))
    return None if seconds is None else sympy.ceiling(NANO * seconds)


def _decode_seconds(net: NetworkLike) -> Expr | None:
    return _roofline(net, net.decode_flops, net.decode_bytes)


def _decode_ns(net: NetworkLike) -> Expr | None:
    seconds = _decode_seconds(net)
    return None if seconds is None else sympy.ceiling(NANO * seconds)


def _tokens_per_second(net: NetworkLike) -> Expr | None:
    seconds = _decode_seconds(net)
    return None if seconds is None else sympy.floor(net.setup.batch / seconds)


# ---- explain's closing lines ------------------------------------------------------------------------------


def _batch_words(net: NetworkLike, words: Words) -> str:
    batch = net.setup.batch
    return "one sequence" if batch == 1 else f"{words(batch)} sequences"


def _explain_prefill(net: NetworkLike, words: Words) -> str | None:
    if net.prefill_flops is None:
        return None
    dec = decoder(net)
    assert dec is not None
    how = (
        "the unmasked query/key pairs only (--attention fused)"
        if net.setup.attention == "fused"
        else "every query/key pair, masked ones included"
    )
    return (
        f"Prefill: {words(net.prefill_flops)} FLOPs (2 x MACs) for a prompt of length {words(dec.T)}, "
        f"{_batch_words(net, words)}, attention over {how}."
    )


def _explain_decode(net: NetworkLike, words: Words) -> str | None:
    if net.decode_flops is None:
        return None
    dec = decoder(net)
    assert dec is not None
    window = ", in a sliding window of W to the last W" if dec.windowed else ""
    return (
        f"Decode: a step at context {words(dec.T)} (the new token attends to the {words(dec.T - 1)} cached "
        f"positions and itself{window}) takes {words(net.decode_flops)} FLOPs and moves "
        f"{words(net.decode_bytes)} bytes for {_batch_words(net, words)}: the weights at {net.setup.weights} "
        f"(a row of each lookup table per token), the keys and values it reads and writes at {net.setup.kv}; "
        + LEFT_OUT
    )


def _explain_serve(net: NetworkLike, words: Words) -> str | None:
    if net.serve_memory_bytes is None:
        return None
    dec = decoder(net)
    assert dec is not None
    return (
        f"To serve: {words(net.serve_memory_bytes)} bytes, the weights at {net.setup.weights} and the KV cache of "
        f"{_batch_words(net, words)} at context {words(dec.T)} at {net.setup.kv} (the transient activations of a "
        f"step and the framework's own memory not included)."
    )


def _explain_times(net: NetworkLike, words: Words) -> str | None:
    if net.decode_ns_per_token is None:
        return None
    device = net.setup.device
    return (
        f"Roofline on {device.name} ({net.setup.activations.name} compute): prefill {words(net.prefill_ns)} ns, "
        f"a decode step {words(net.decode_ns_per_token)} ns, {words(net.tokens_per_second)} {PER_SECOND} "
        f"(each the longer of compute at the peak and traffic at the bandwidth)."
    )


SERVING = [
    Quantity(
        "prefill_flops",
        "prefill FLOPs",
        noun="prefill FLOP count",
        unit="flops",
        network=_prefill_flops,
        budget=True,
        explain=_explain_prefill,
        applies=is_decoder,
        needs=DECODER,
    ),
    Quantity(
        "decode_flops",
        "decode FLOPs",
        noun="decode FLOP count",
        unit="flops",
        network=_decode_flops,
        budget=True,
        explain=_explain_decode,
        applies=is_decoder,
        needs=DECODER,
    ),
    Quantity(
        "decode_bytes",
        "decode bytes",
        noun="decode traffic",
        unit="bytes",
        network=_decode_bytes,
        budget=True,
        applies=is_decoder,
        needs=DECODER,
    ),
    Quantity(
        "serve_memory_bytes",
        "serving memory",
        noun="serving memory",
        unit="bytes",
        network=_serve_memory,
        budget=True,
        explain=_explain_serve,
        applies=is_decoder,
        needs=DECODER,
    ),
    Quantity(
        "prefill_ns",
        "prefill ns",
        long_title="prefill time (ns)",
        noun="prefill time",
        unit="ns",
        network=_prefill_ns,
        budget=True,
        applies=_has_device,
        needs=DEVICE,
    ),
    Quantity(
        "decode_ns_per_token",
        "decode ns/token",
        long_title="decode time per token (ns)",
        noun="decode time",
        unit="ns",
        network=_decode_ns,
        budget=True,
        explain=_explain_times,
        applies=_has_device,
        needs=DEVICE,
    ),
    Quantity(
        "tokens_per_second",
        "tokens/s",
        long_title=PER_SECOND,
        noun=PER_SECOND,
        network=_tokens_per_second,
        budget=True,
        applies=_has_device,
        needs=DEVICE,
    ),
]

for _q in SERVING:
    register(_q)
