"""Hypothesis strategies that write random valid programs, stage by stage.

After each stage the partial program is parsed to learn the current shape, so
the next stage can be chosen to fit; the frameworks, not paramsym, then judge
the counts.
"""

from __future__ import annotations

from hypothesis import strategies as st

import paramsym

ACTIVATIONS = [
    "relu",
    "relu6",
    "leakyrelu(0.1)",
    "elu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "softmax",
    "hardswish",
    "hardsigmoid",
    "dropout(0.5)",
    "id",
    "prelu",
    "prelu(shared)",
    # the edges of what PyTorch accepts (issue 9): a dropout of 0 or 1, an elu of 0
    "dropout(0)",
    "dropout(1)",
    "elu(0)",
]
# Keras refuses a negative LeakyReLU slope; PyTorch takes any
TORCH_ACTIVATIONS = ["leakyrelu(-0.5)", "elu(-1)"]


def _x(values) -> str:
    return "x".join(str(v) for v in values)


def _shape(text: str):
    network = paramsym.parse(text)
    dims = [int(d) for d in network.output_shape.dims()]
    return dims[:-1], dims[-1]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _window(draw, sizes, allow_dilation=True, max_kernel=3):
    """Kernel, stride, pad, dilation per axis that leave every output size >= 1."""
    kernel, stride, pad, dilation = [], [], [], []
    for n in sizes:
        d = draw(st.integers(1, 2)) if allow_dilation else 1
        p = draw(st.integers(0, 1))
        k = draw(st.integers(1, max(1, min(max_kernel, (n + 2 * p - 1) // d + 1))))
        while d * (k - 1) + 1 > n + 2 * p:
            k -= 1
        kernel.append(k), stride.append(draw(st.integers(1, 2))), pad.append(p), dilation.append(d)
    return kernel, stride, pad, dilation


def _conv(draw, sizes, channels, keras_safe):
    kernel, stride, pad, dilation = _window(draw, sizes)
    if keras_safe and any(s > 1 for s in stride):
        dilation = [1] * len(sizes)
    kind = draw(st.sampled_from(["conv", "conv", "dwconv"] + (["sepconv"] if len(sizes) <= 2 else [])))
    bias = ", bias" if draw(st.booleans()) else ""
    padding = "pad=same" if draw(st.integers(0, 4)) == 0 else f"pad={_x(pad)}"
    common = f"stride={_x(stride)}, {padding}, dilation={_x(dilation)}{bias}"
    name = f"{kind}{_x(kernel)}"
    spelling = draw(st.integers(0, 5))
    if spelling == 0:  # k= that repeats the name's size is accepted
        common += f", k={_x(kernel)}"
    elif spelling == 1:  # conv2d(k=3x1)
        name = f"{kind}{len(sizes)}d"
        common += f", k={_x(kernel)}"
    if kind == "conv":
        groups = draw(st.sampled_from(_divisors(channels)))
        cout = groups * draw(st.integers(1, 3))
        return f"{name}(->{cout}, {common}, groups={groups})"
    if kind == "dwconv":
        return f"{name}(->{channels * draw(st.integers(1, 2))}, {common})"
    return f"{name}(->{draw(st.integers(1, 6))}, {common})"


def _deconv(draw, sizes, channels, keras_safe):
    kernel = [draw(st.integers(1, 3)) for _ in sizes]
    stride = [draw(st.integers(1, 2)) for _ in sizes]
    dilation = [1 if keras_safe else draw(st.integers(1, 2)) for _ in sizes]
    pad = [draw(st.integers(0, (d * (k - 1)) // 2)) for k, d in zip(kernel, dilation)]
    outpad = [
        draw(st.integers(0, max(s, d) - 1)) if not keras_safe else draw(st.integers(0, s - 1))
        for s, d in zip(stride, dilation)
    ]
    groups = 1 if keras_safe else draw(st.sampled_from(_divisors(channels)))
    cout = groups * draw(st.integers(1, 3))
    bias = ", bias" if draw(st.booleans()) else ""
    return (
        f"deconv{_x(kernel)}(->{cout}, stride={_x(stride)}, pad={_x(pad)}, dilation={_x(dilation)}, "
        f"outpad={_x(outpad)}, groups={groups}{bias})"
    )


def _pool(draw, sizes, keras_safe=False):
    op = draw(st.sampled_from(["max", "avg"]))
    kernel = [draw(st.integers(1, min(3, n))) for n in sizes]
    stride = [draw(st.integers(1, 2)) for _ in sizes]
    pad = [draw(st.integers(0, k // 2)) for k in kernel]  # PyTorch: pad <= kernel // 2, whatever the dilation
    ceil = ", ceil" if draw(st.booleans()) else ""
    if draw(st.integers(0, 4)) == 0:
        return f"{op}pool{_x(kernel)}(stride={_x(stride)}, pad=same)"
    dilation = ""
    if op == "max" and not keras_safe and draw(st.booleans()):
        # a dilated window that still fits the padded input
        d = [
            draw(st.integers(1, 2)) if k > 1 and 2 * (k - 1) + 1 <= n + 2 * p else 1
            for k, n, p in zip(kernel, sizes, pad)
        ]
        dilation = f", dilation={_x(d)}"
    return f"{op}pool{_x(kernel)}(stride={_x(stride)}, pad={_x(pad)}{dilation}{ceil})"


def _norm(draw, sizes, channels, keras_safe):
    kind = draw(st.sampled_from(["bn", "ln", "gn", "rmsnorm"]))
    # Keras' RMSNormalization always learns its scale
    affine = ", noaffine" if draw(st.integers(0, 3)) == 0 and not (keras_safe and kind == "rmsnorm") else ""
    # a scale alone (ln, gn: nobias), a BatchNorm that learns nothing (bn(frozen): four buffers per channel)
    alone = kind in ("ln", "gn", "bn") and not affine and draw(st.integers(0, 3)) == 0
    if kind == "gn":
        return f"gn(groups={draw(st.sampled_from(_divisors(channels)))}{affine}{', nobias' if alone else ''})"
    if alone:
        return "bn(frozen)" if kind == "bn" else "ln(nobias)"
    return f"{kind}({affine.lstrip(', ')})" if affine else kind


def _modern(draw, sizes, channels, keras_safe):
    """A layer of LANGUAGE.md section 8 that learns nothing but scale: scale, slice, shuffle, space2depth,
    droppath, adaptive pooling (to sizes not all 1, which PyTorch's import reads as gap/gmp), and upsampling
    (docs/language.md) of small inputs."""
    options = ["droppath"] + ([] if keras_safe and len(sizes) not in (1, 2) else ["scale"])
    options += [] if keras_safe else ["slice"]
    if sizes:
        options += ["shuffle", "adaptive"]
    blocks = [b for b in (1, 2, 3) if len(sizes) == 2 and all(n % b == 0 for n in sizes)]
    if blocks:
        options.append("space2depth")
    if sizes and max(sizes) <= 16:
        options.append("upsample")
    kind = draw(st.sampled_from(options))
    if kind == "droppath":
        return f"droppath({draw(st.sampled_from(['0', '0.1', '0.5', '1']))})"
    if kind == "scale":
        return "scale"
    if kind == "slice":
        a = draw(st.integers(0, channels - 1))
        return f"slice({a}, {draw(st.integers(a + 1, channels))})"
    if kind == "shuffle":
        return f"shuffle({draw(st.sampled_from(_divisors(channels)))})"
    if kind == "space2depth":
        return f"space2depth({draw(st.sampled_from(blocks))})"
    if kind == "upsample":
        factors = [draw(st.integers(1, 2)) for _ in sizes]
        written = str(factors[0]) if draw(st.booleans()) else _x(factors)
        if written == str(factors[0]):
            factors = [factors[0]] * len(sizes)
            written = str(factors[0])
        bilinear = len(sizes) == 2 and draw(st.booleans())
        return f"upsample({written}, bilinear)" if bilinear else f"upsample({written})"
    out = [draw(st.integers(1, n + 2)) for n in sizes]
    if all(s == 1 for s in out):
        out[0] = 2
    return f"adaptive{draw(st.sampled_from(['avg', 'max']))}pool({_x(out)})"


def _keeping(draw, sizes, channels) -> str:
    """A short sequence that keeps the shape (for res, add and symbolic repeats)."""
    k = "x".join(["3"] * len(sizes)) if sizes else None
    if not sizes:
        return draw(st.sampled_from([f"dense(->{channels}, bias)", "relu", f"dense(->{channels}) > ln"]))
    return draw(
        st.sampled_from(
            [
                f"conv{k}(->{channels}, pad=1)",
                f"conv{k}(->{channels}, pad=1) > bn > relu",
                f"dwconv{k}(pad=1) > relu",
                f"conv{'x'.join(['1'] * len(sizes))}(->{channels})",
            ]
        )
    )


def _attention(draw, sizes, channels, keras_safe):
    """attn (LANGUAGE.md section 7) on a sequence or a map: heads that divide the width, or any heads with
    head_dim=; kv_heads that divide the heads; window or grid attention (torch only) on a map the side divides."""
    windows = [w for w in _divisors(sizes[0]) if len(sizes) == 2 and sizes[1] % w == 0] if not keras_safe else []
    if draw(st.integers(0, 3)) == 0:
        heads = draw(st.integers(1, 4))
        parts = [f"heads={heads}", f"head_dim={draw(st.integers(1, 4))}"]
    else:
        heads = draw(st.sampled_from(_divisors(channels)))
        parts = [f"heads={heads}"]
    if draw(st.booleans()):
        parts.insert(1, f"kv_heads={draw(st.sampled_from(_divisors(heads)))}")
    if draw(st.booleans()):
        parts.append("bias")
    if windows and draw(st.booleans()):
        if draw(st.integers(0, 2)) == 0:  # MaxViT's grid attention: no shift
            parts.append(f"grid={draw(st.sampled_from(windows))}")
        else:
            parts.append(f"window={draw(st.sampled_from(windows))}")
            if draw(st.booleans()):
                parts.append("shift")
    elif draw(st.integers(0, 2)) == 0:
        parts.append("causal")
    return f"attn({', '.join(parts)})"


def _recurrent(draw, channels, keras_safe):
    """lstm, gru or rnn on a sequence T x I: stacked, bidirectional, with a projection (lstm, torch only),
    with biases, or only the last step."""
    kind = draw(st.sampled_from(["lstm", "gru", "rnn"]))
    hidden = draw(st.integers(1, 6))
    parts = [f"->{hidden}"]
    if draw(st.integers(0, 2)) == 0:
        parts.append(f"layers={draw(st.integers(2, 3))}")
    if draw(st.booleans()):
        parts.append("bidirectional")
    if kind == "lstm" and hidden > 1 and not keras_safe and draw(st.integers(0, 2)) == 0:
        parts.append(f"proj={draw(st.integers(1, hidden - 1))}")
    if draw(st.booleans()):
        parts.append("bias")
    if draw(st.integers(0, 3)) == 0:
        parts.append("last")
    return f"{kind}({', '.join(parts)})"


def _gate(draw, sizes, channels, keras_safe):
    """mul(...): a squeeze-and-excitation gate (a vector broadcast over the positions; its last layer may be
    a concat of vectors, or followed by a side head) or a gated linear unit; and aux(...), a side head (in
    Keras a second output of the model)."""
    kind = draw(st.sampled_from(["se", "glu", "aux"]))
    pool = "gap > " if sizes else ""
    if kind == "se":
        squeeze = draw(st.integers(1, 4))
        end = draw(
            st.sampled_from(
                [
                    "sigmoid",
                    "hardsigmoid",
                    "sigmoid > aux(dense(->2))",
                    f"concat(dense(->1) | dense(->{channels - 1}))" if channels > 1 else "sigmoid",
                ]
            )
        )
        return f"mul(id | {pool}dense(->{squeeze}, bias) > relu > dense(->{channels}, bias) > {end})"
    if kind == "glu":
        width = draw(st.integers(1, 6))
        return f"mul(dense(->{width}) > silu | dense(->{width}))"
    return f"aux({pool}dense(->{draw(st.integers(1, 4))}{', bias' if draw(st.booleans()) else ''}))"


def _zeropad(draw, sizes):
    """zeropad(P), or before and after on each axis (docs/language.md, Zero padding), cropping at most one
    position of an axis longer than 2; with the padded sizes."""
    if draw(st.booleans()):
        amount = draw(st.integers(0, 2))
        return f"zeropad({amount})", [n + 2 * amount for n in sizes]
    amounts = [draw(st.integers(-1 if n > 2 else 0, 2)) for n in sizes for _ in range(2)]
    for axis in range(len(sizes)):
        if amounts[2 * axis] < 0 and amounts[2 * axis + 1] < 0:
            amounts[2 * axis + 1] = 0
    padded = [n + amounts[2 * axis] + amounts[2 * axis + 1] for axis, n in enumerate(sizes)]
    return f"zeropad({', '.join(map(str, amounts))})", padded


@st.composite
def programs(draw, max_stages: int = 5, keras_safe: bool = False):
    rank = draw(st.integers(0, 3) if not keras_safe else st.integers(0, 2))
    sizes = [draw(st.integers(5, 10 if rank < 3 else 6)) for _ in range(rank)]
    channels = draw(st.integers(1, 6))
    text = f"input({_x(sizes + [channels])})"
    header = ""
    for _ in range(draw(st.integers(1, max_stages))):
        sizes, channels = _shape(header + text)
        choices = ["act", "norm", "dense", "modern"]
        if sizes:
            choices += ["conv", "conv", "deconv", "pool", "res", "concat", "add", "repeat", "global", "sequence"]
        else:
            choices += ["res", "add", "repeat"]
        choices += ["gate"] + ["attention"] * (2 if sizes else 0) + ["recurrent"] * (4 if len(sizes) == 1 else 0)
        choice = draw(st.sampled_from(choices))
        if choice == "conv":  # sometimes after a zeropad
            pad, sizes = _zeropad(draw, sizes) if draw(st.integers(0, 3)) == 0 else ("", sizes)
            stage = (f"{pad} > " if pad else "") + _conv(draw, sizes, channels, keras_safe)
        elif choice == "deconv":
            stage = _deconv(draw, sizes, channels, keras_safe)
        elif choice == "pool":
            stage = _pool(draw, sizes, keras_safe)
        elif choice == "norm":
            stage = _norm(draw, sizes, channels, keras_safe)
        elif choice == "act":
            stage = draw(st.sampled_from(ACTIVATIONS + ([] if keras_safe else TORCH_ACTIVATIONS)))
        elif choice == "modern":  # LANGUAGE.md section 8
            stage = _modern(draw, sizes, channels, keras_safe)
        elif choice == "dense":
            stage = f"dense(->{draw(st.integers(1, 8))}{', bias' if draw(st.booleans()) else ''})"
        elif choice == "sequence":  # LANGUAGE.md section 7: a map's positions as a sequence, and its layers
            options = (
                ["tokens"]
                if len(sizes) > 1
                else ["tokens", "first", "last"]
                + ([] if keras_safe else ["cls", f"posembed({draw(st.integers(1, 2 * sizes[0]))})"])
            )
            stage = draw(st.sampled_from(options))
        elif choice == "attention":  # LANGUAGE.md section 7
            stage = _attention(draw, sizes, channels, keras_safe)
        elif choice == "recurrent":
            stage = _recurrent(draw, channels, keras_safe)
        elif choice == "gate":
            stage = _gate(draw, sizes, channels, keras_safe)
        elif choice == "global":
            stage = draw(st.sampled_from(["gap", "gmp", "flatten"]))
        elif choice == "res":
            body = _keeping(draw, sizes, channels)
            if sizes and draw(st.booleans()):
                ones = "x".join(["1"] * len(sizes))
                threes = "x".join(["3"] * len(sizes))
                wider = channels + draw(st.integers(1, 4))
                stage = f"res(conv{threes}(->{wider}, stride=2, pad=1) > bn | conv{ones}(->{wider}, stride=2))"
            else:
                stage = f"res({body})"
        elif choice == "add":
            stage = f"add({_keeping(draw, sizes, channels)} | id | {_keeping(draw, sizes, channels)})"
        elif choice == "concat":
            ones = "x".join(["1"] * len(sizes))
            stage = f"concat(conv{ones}(->{draw(st.integers(1, 4))}) | id | {_keeping(draw, sizes, channels)})"
        else:  # repeat, numeric or symbolic
            body = _keeping(draw, sizes, channels)
            if draw(st.booleans()):
                stage = f"({body}) * {draw(st.integers(1, 3))}"
            else:
                header = header or f"let L = {draw(st.integers(1, 3))}\n"
                stage = f"({body}) * L"
        text = f"{text} > {stage}"
    return header + text


# ---- the edges of what is a network (issue 9) --------------------------------------------
# One layer after an input, drawn across the line between what PyTorch accepts and what it
# refuses, with the PyTorch module built from the same drawn values: the tests check that what
# paramsym accepts, torch builds and runs with equal counts, and what torch refuses, paramsym
# refuses.

# channel counts as written, and what PyTorch is given for them
_CHANNELS = [("1", 1), ("3", 3), ("0", 0), ("-2", -2), ("5/2", 2.5), ("6/2", 3), ("2 - 3", -1)]


def _nn():
    from torch import nn

    return nn


def _edge_conv(draw, sizes, channels):
    rank = len(sizes)
    kernel = [draw(st.integers(1, 3)) for _ in sizes]
    stride = [draw(st.integers(1, 2)) for _ in sizes]
    pad = [draw(st.integers(0, 1)) for _ in sizes]
    text, cout = draw(st.sampled_from(_CHANNELS))
    bias = draw(st.booleans())
    program = f"conv{_x(kernel)}(->{text}, stride={_x(stride)}, pad={_x(pad)}{', bias' if bias else ''})"
    return program, lambda: getattr(_nn(), f"Conv{rank}d")(
        channels, cout, tuple(kernel), tuple(stride), tuple(pad), bias=bias
    )


def _edge_deconv(draw, sizes, channels):
    rank = len(sizes)
    kernel = [draw(st.integers(1, 3)) for _ in sizes]
    stride = [draw(st.integers(1, 3)) for _ in sizes]
    dilation = [draw(st.integers(1, 3)) for _ in sizes]
    pad = [draw(st.integers(0, 1)) for _ in sizes]
    # up to one past PyTorch's bound: outpad < stride or outpad < dilation
    outpad = [draw(st.integers(0, max(s, d))) for s, d in zip(stride, dilation)]
    cout = draw(st.integers(1, 3))
    program = (
        f"deconv{_x(kernel)}(->{cout}, stride={_x(stride)}, pad={_x(pad)}, dilation={_x(dilation)}, "
        f"outpad={_x(outpad)})"
    )
    return program, lambda: getattr(_nn(), f"ConvTranspose{rank}d")(
        channels, cout, tuple(kernel), tuple(stride), tuple(pad), tuple(outpad), bias=False, dilation=tuple(dilation)
    )


def _edge_pool(draw, sizes, channels):
    rank = len(sizes)
    op = draw(st.sampled_from(["max", "avg"]))
    kernel = [draw(st.integers(1, 4)) for _ in sizes]
    stride = [draw(st.integers(1, 2)) for _ in sizes]
    # up to one past PyTorch's bound: pad <= kernel // 2, whatever the dilation
    pad = [draw(st.integers(0, k // 2 + 1)) for k in kernel]
    dilation = [draw(st.integers(1, 3)) if op == "max" else 1 for _ in sizes]
    ceil = draw(st.booleans())
    extra = (f", dilation={_x(dilation)}" if op == "max" else "") + (", ceil" if ceil else "")
    program = f"{op}pool{_x(kernel)}(stride={_x(stride)}, pad={_x(pad)}{extra})"
    if op == "max":
        return program, lambda: getattr(_nn(), f"MaxPool{rank}d")(
            tuple(kernel), tuple(stride), tuple(pad), tuple(dilation), ceil_mode=ceil
        )
    return program, lambda: getattr(_nn(), f"AvgPool{rank}d")(tuple(kernel), tuple(stride), tuple(pad), ceil_mode=ceil)


def _edge_value(draw, sizes, channels):
    name, cls = draw(st.sampled_from([("dropout", "Dropout"), ("leakyrelu", "LeakyReLU"), ("elu", "ELU")]))
    text, value = draw(
        st.sampled_from([("0", 0.0), ("0.5", 0.5), ("1", 1.0), ("1.5", 1.5), ("2", 2.0), ("-0.5", -0.5), ("-1", -1.0)])
    )
    return f"{name}({text})", lambda: getattr(_nn(), cls)(value)


def _edge_norm(draw, sizes, channels):
    text, count = draw(st.sampled_from([(str(channels), channels), ("0", 0), ("-1", -1), ("3/2", 1.5)]))
    name, _cls = draw(st.sampled_from([("bn", "BatchNorm"), ("prelu", "PReLU")]))
    if name == "bn":
        return f"bn({text})", lambda: getattr(_nn(), f"BatchNorm{max(len(sizes), 1)}d")(count)
    return f"prelu({text})", lambda: _nn().PReLU(count)


def _positions_module(module):
    """nn.MultiheadAttention, which takes (N, T, C), applied to the positions of a channels-first (N, C, *spatial)
    value (a sequence, or the H·W positions of a map), outside the fast path and with the math backend, so that
    FlopCounterMode counts its products."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    class Positions(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, x):
            seq = x.flatten(2).transpose(1, 2)
            with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
                y = self.inner(seq, seq, seq, need_weights=False)[0]
            return y.transpose(1, 2).reshape(x.shape).detach()

    return Positions()


def _edge_attention(draw, sizes, channels):
    """heads that divide the width or not (nn.MultiheadAttention asserts it), on a sequence or a map."""
    heads = draw(st.integers(1, 5))
    bias = draw(st.booleans())
    program = f"attn(heads={heads}{', bias' if bias else ''})"

    def build():
        try:
            attention = _nn().MultiheadAttention(channels, heads, bias=bias, batch_first=True)
        except AssertionError as error:  # "embed_dim must be divisible by num_heads": torch refuses
            raise ValueError(str(error)) from None
        return _positions_module(attention)

    return program, build


def _edge_groups(draw, sizes, channels):
    """gn's groups against the channels (nn.GroupNorm), and shuffle's (nn.ChannelShuffle)."""
    groups = draw(st.integers(1, 5))
    # a group of one value in a batch of one (a 1x1 input, one channel per group) PyTorch refuses, in eval mode
    # too; a program counts one sample of any batch, and the exported module runs on a batch of one here
    if draw(st.booleans()) and not (all(n == 1 for n in sizes) and channels == groups):
        return f"gn(groups={groups})", lambda: _nn().GroupNorm(groups, channels)
    return f"shuffle({groups})", lambda: _nn().ChannelShuffle(groups)


def _edge_resample(draw, sizes, channels):
    """adaptive pools to sizes above and below the input's (1x1 inputs too), whole upsampling factors (bilinear
    only on maps), space2depth's patch against a map's sides (nn.PixelUnshuffle), and zero padding that crops."""
    rank = len(sizes)
    how = draw(st.sampled_from(["adaptive", "upsample", "space2depth", "zeropad"]))
    if how == "adaptive":
        op = draw(st.sampled_from(["Avg", "Max"]))
        out = [draw(st.integers(1, 6)) for _ in sizes]
        return f"adaptive{op.lower()}pool({_x(out)})", lambda: getattr(_nn(), f"Adaptive{op}Pool{rank}d")(tuple(out))
    if how == "upsample":
        factor = draw(st.integers(1, 3))
        mode = draw(st.sampled_from(["nearest", "bilinear"]))
        text = f"upsample({factor})" if mode == "nearest" else f"upsample({factor}, bilinear)"
        return text, lambda: _nn().Upsample(scale_factor=factor, mode=mode)
    if how == "space2depth" and rank == 2:
        block = draw(st.integers(1, 4))
        return f"space2depth({block})", lambda: _nn().PixelUnshuffle(block)
    # a crop that leaves no position is refused on purpose (docs/language.md, At the edges): not drawn
    pad = draw(st.integers(-3, 2).filter(lambda p: all(n + 2 * p != 0 for n in sizes)))
    return f"zeropad({pad})", lambda: getattr(_nn(), f"ZeroPad{rank}d")(pad)


@st.composite
def edge_cases(draw):
    """(program, PyTorch module factory, input shape channels-last): one layer at the edges of what
    PyTorch accepts (channels of 0, -2 or 5/2, outpad up to the stride or dilation, pooling pad
    up to kernel // 2 + 1, dilated max pooling, dropout outside [0, 1]; heads, norm and shuffle groups that
    divide the channels or not, adaptive pools, upsampling, space2depth and crops). Its layout is "cf"."""
    rank = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 7 if rank < 3 else 5)) for _ in range(rank)]
    channels = draw(st.integers(1, 4))
    layer = draw(
        st.sampled_from(
            [_edge_conv, _edge_deconv, _edge_pool, _edge_pool, _edge_value, _edge_norm, _edge_attention, _edge_groups,
             _edge_resample]
        )
    )  # fmt: skip
    program, factory = layer(draw, sizes, channels)
    return f"input({_x(sizes + [channels])}) > {program}", factory, (*sizes, channels)


# ---- symbolic programs that grow (issue 17): powers, let chains, symbolic strides and pads ----------

_LETTERS = ["A", "B", "C", "D", "S", "P"]


@st.composite
def formulas(draw, names=(), depth: int = 2):
    """A formula in a few symbols (and the names of earlier lets): sums, products, powers up to 64."""
    leaves = st.one_of(st.sampled_from(_LETTERS + list(names)), st.integers(1, 9).map(str))
    if depth == 0:
        return draw(leaves)
    how = draw(st.sampled_from(["leaf", "leaf", "sum", "product", "power", "minus"]))
    if how == "leaf":
        return draw(leaves)
    if how == "sum":
        terms = draw(st.lists(formulas(names, depth - 1), min_size=2, max_size=6))
        return "(" + " + ".join(terms) + ")"
    if how == "product":
        return "(" + " * ".join(draw(st.lists(formulas(names, depth - 1), min_size=2, max_size=4))) + ")"
    if how == "minus":
        return f"({draw(formulas(names, depth - 1))} - {draw(st.integers(1, 3))})"
    exponent = draw(st.sampled_from([2, 3, 8, 16, 32, 64]))
    return f"{draw(formulas(names, depth - 1))}^{exponent}"


@st.composite
def _lets(draw) -> tuple[list[str], list[str]]:
    """`let` statements and the names they define: chains that add, that multiply (nested, growing
    exponentially when multiplied out), and formulas."""
    lines, names = [], []
    for chain in range(draw(st.integers(0, 3))):
        how = draw(st.sampled_from(["add", "nest", "formula"]))
        base = f"L{chain}_"
        if how == "formula":
            lines.append(f"let {base}0 = {draw(formulas(names))}")
            names.append(f"{base}0")
            continue
        length = draw(st.integers(1, 300 if how == "add" else 20))
        lines.append(f"let {base}0 = {draw(st.sampled_from(['C', '1', '(A + B)']))}")
        for i in range(1, length + 1):
            step = f"{base}{i - 1} + 1" if how == "add" else f"{base}{i - 1} * ({base}{i - 1} + B)"
            lines.append(f"let {base}{i} = {step}")
        names.append(f"{base}{length}")
    return lines, names


@st.composite
def growing_programs(draw) -> str:
    """A program whose formulas may grow large: powers of sums, let chains, symbolic strides and pads
    on convolutions and ceil-mode pooling. It may be invalid; paramsym must answer or refuse it
    (with a ParamsymError) quickly."""
    lines, names = draw(_lets())
    size = lambda: draw(st.one_of(st.integers(8, 224).map(str), st.sampled_from(["H", "(H + 1)"])))  # noqa: E731
    small = lambda: draw(  # noqa: E731
        st.one_of(
            st.integers(1, 3).map(str),
            st.sampled_from(["S", "P", "(C - 1)", "D", "(S + 1)"]),
        )
    )
    stages = [f"input({size()} x {size()} x {draw(st.sampled_from(['3', 'C']))})"]
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["conv", "pool", "pool", "dense", "res"]))
        if kind == "conv":
            k = draw(st.sampled_from([1, 3, 7]))
            stages.append(f"conv{k}x{k}(->{draw(formulas(names, 1))}, stride={small()}, pad={small()})")
        elif kind == "pool":
            ceil = ", ceil" if draw(st.booleans()) else ""
            stages.append(f"maxpool3x3(stride={small()}, pad={draw(st.sampled_from(['0', '1', 'P']))}{ceil})")
        elif kind == "dense":
            stages.append(f"dense(->{draw(formulas(names))})")
        else:
            stages.append("res(bn > relu)")
    return "\n".join([*lines, " > ".join(stages)])
