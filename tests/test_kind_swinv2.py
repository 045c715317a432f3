"""Swin V2 in `attn` (a paramsym extension beyond LANGUAGE.md section 8): `cpb=m`, the continuous position
bias (an MLP 2 -> m -> heads over the relative coordinates, and a logit scale per head), and `pad`, torchvision's
padding of the map to a multiple of the window. Checked against torchvision's ShiftedWindowAttentionV2,
SwinTransformerBlockV2 and the swin_v2_* models: params, output shape and MACs (FlopCounterMode, which counts
the projections, the two products of every window and the MLP over the (2w-1)² table)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.swin_transformer import (
    PatchMergingV2,
    ShiftedWindowAttention,
    ShiftedWindowAttentionV2,
    SwinTransformerBlockV2,
)

import paramsym
from helpers.cli_helpers import run
from helpers.frameworks import torch_params


def counts(program: str) -> dict:
    return paramsym.parse(program).evaluate()


def measured(module, H: int, W: int, d: int) -> tuple[int, int, list]:
    """torchvision's params, FlopCounterMode's MACs and the output shape (channels last, as Swin runs)."""
    module = module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(torch.zeros(1, H, W, d))
    return torch_params(module), counter.get_total_flops() // 2, list(y.shape[1:])


def program_values(program: str) -> tuple[int, int, list]:
    net = paramsym.parse(program)
    values = net.evaluate()
    return values["params"], values["macs"], [int(n) for n in net.output_shape.dims()]


# (H, W, d, heads, window, shifted, cpb width): maps that are multiples of the window, maps that are not
# (padded), a window larger than the map (torchvision pads and drops the shift), rectangles
CASES = [
    (8, 8, 16, 2, 4, False, 512),
    (8, 8, 16, 2, 4, True, 512),
    (7, 7, 16, 2, 8, True, 512),
    (6, 10, 16, 2, 4, True, 64),
    (14, 14, 32, 4, 8, False, 512),
    (5, 9, 12, 3, 3, True, 16),
    (4, 4, 8, 1, 2, False, 1),
]


@pytest.mark.parametrize("H, W, d, h, w, shift, m", CASES)
def test_attention_against_torchvision(H, W, d, h, w, shift, m):
    module = ShiftedWindowAttentionV2(d, [w, w], [w // 2 * shift] * 2, h)
    module.cpb_mlp[0] = torch.nn.Linear(2, m)  # another MLP width than torchvision's 512
    module.cpb_mlp[2] = torch.nn.Linear(m, h, bias=False)
    pad = ", pad" if H % w or W % w else ""
    program = f"input({H}x{W}x{d}) > attn(heads={h}, bias, window={w}, cpb={m}{', shift' * shift}{pad})"
    assert program_values(program) == measured(module, H, W, d)


@pytest.mark.parametrize("H, W, d, h, w, shift, m", CASES)
def test_block_against_torchvision(H, W, d, h, w, shift, m):
    """SwinTransformerBlockV2 is post-norm: x + norm(attn(x)), then x + norm(mlp(x))."""
    block = SwinTransformerBlockV2(d, h, [w, w], [w // 2 * shift] * 2)
    block.attn.cpb_mlp[0] = torch.nn.Linear(2, m)
    block.attn.cpb_mlp[2] = torch.nn.Linear(m, h, bias=False)
    pad = ", pad" if H % w or W % w else ""
    program = (
        f"input({H}x{W}x{d}) > res(attn(heads={h}, bias, window={w}, cpb={m}{', shift' * shift}{pad}) > ln) "
        f"> res(dense(->{4 * d}, bias) > gelu > dense(->{d}, bias) > ln)"
    )
    assert program_values(program) == measured(block, H, W, d)


@pytest.mark.parametrize("H, W, d", [(8, 8, 16), (4, 6, 24)])
def test_patch_merging_v2(H, W, d):
    """PatchMergingV2: space to depth, Linear(4C -> 2C, no bias), then the norm of 2C channels."""
    program = f"input({H}x{W}x{d}) > space2depth(2) > dense(->{2 * d}) > ln"
    assert program_values(program) == measured(PatchMergingV2(d), H, W, d)


@pytest.mark.parametrize("H, W, d, h, w", [(7, 7, 16, 2, 4), (10, 6, 8, 2, 4), (3, 3, 8, 1, 4)])
def test_pad_without_cpb_is_torchvisions_v1_padding(H, W, d, h, w):
    """`pad` is not Swin V2's alone: V1's ShiftedWindowAttention pads the same way."""
    program = f"input({H}x{W}x{d}) > attn(heads={h}, bias, window={w}, pad)"
    assert program_values(program) == measured(ShiftedWindowAttention(d, [w, w], [0, 0], h), H, W, d)


@settings(max_examples=25, deadline=None)
@given(
    H=st.integers(1, 12),
    W=st.integers(1, 12),
    h=st.integers(1, 3),
    e=st.integers(1, 4),
    w=st.integers(2, 6),
    m=st.integers(1, 40),
    shift=st.booleans(),
)
def test_any_map_against_torchvision(H, W, h, e, w, m, shift):
    d = h * e
    module = ShiftedWindowAttentionV2(d, [w, w], [w // 2 * shift] * 2, h)
    module.cpb_mlp[0] = torch.nn.Linear(2, m)
    module.cpb_mlp[2] = torch.nn.Linear(m, h, bias=False)
    program = f"input({H}x{W}x{d}) > attn(heads={h}, bias, window={w}, cpb={m}, pad{', shift' * shift})"
    assert program_values(program) == measured(module, H, W, d)


def test_formulas():
    net = paramsym.parse("input(H x W x d) > attn(heads=h, bias, window=w, cpb=m, pad)")
    assert sympy_equal(net.params, "4*d**2 + 4*d + 3*m + h*m + h")
    padded = "ceiling(H/w)*w*ceiling(W/w)*w"
    assert sympy_equal(net.macs, f"{padded}*(4*d**2 + 2*w**2*d) + (2*w - 1)**2*(2*m + m*h)")
    values = {"H": 7, "W": 7, "d": 16, "h": 2, "w": 8, "m": 512}
    assert net.evaluate(**values)["macs"] == 64 * (4 * 256 + 2 * 64 * 16) + 225 * (1024 + 1024)
    # padding changes no parameter, and where the window divides the map it changes nothing
    assert counts("input(16x16x32) > attn(heads=4, window=8, cpb=512, pad)") == counts(
        "input(16x16x32) > attn(heads=4, window=8, cpb=512)"
    )
    assert (
        counts("input(15x15x32) > attn(heads=4, window=8, cpb=512, pad)")["params"]
        == counts("input(16x16x32) > attn(heads=4, window=8, cpb=512)")["params"]
    )


def sympy_equal(expr, text: str) -> bool:
    import sympy

    symbols = {symbol.name: symbol for symbol in expr.free_symbols}
    return sympy.simplify(expr - sympy.sympify(text, locals=symbols)) == 0


# ---- the models ----------------------------------------------------------------------------------


def test_import_swin_v2_t_on_meta():
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.swin_v2_t()
    text = paramsym.from_torch(model, (224, 224, 3))
    assert "cpb=512" in text and "pad" in text and "space2depth(2) > dense(->192) > ln" in text
    net = paramsym.parse(text)
    assert net.params == sum(p.numel() for p in model.parameters()) == 28351570
    assert [int(n) for n in net.output_shape.dims()] == [1000]
    # at 256 x 256 (its weights' crop) the maps 64, 32, 16, 8 are multiples of the window: no padding
    assert ", pad" not in paramsym.from_torch(model, (256, 256, 3))


@pytest.mark.parametrize("size", [224, 256])
def test_swin_v2_t_macs_against_torchvision(size):
    """The whole model: FlopCounterMode's MACs equal the program's (5.94 GMACs at 256, torchvision's _ops)."""
    import torchvision

    model = torchvision.models.swin_v2_t().eval()
    text = paramsym.from_torch(model, (size, size, 3))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size))
    assert paramsym.parse(text).evaluate()["macs"] == counter.get_total_flops() // 2
    if size == 256:
        assert math.isclose(counter.get_total_flops() / 2e9, 5.94, abs_tol=0.005)


@pytest.mark.parametrize("name, params", [("swin_v2_s", 49737442), ("swin_v2_b", 87930848)])
def test_import_swin_v2_s_and_b(name, params):
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.get_model(name)
    assert paramsym.parse(paramsym.from_torch(model, (224, 224, 3))).params == params


# ---- mistakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "program, words, at",
    [
        (
            "input(8x8x16) > attn(heads=2, cpb=64)",
            "cpb= (Swin V2's continuous position bias) is a bias over the "
            "relative positions inside a window: it needs window=w",
            "cpb",
        ),
        ("input(8x8x16) > attn(heads=2, window=4, cpb=0)", "must be a positive whole number, not 0", "cpb"),
        ("input(8x8x16) > attn(heads=2, window=4, cpb=-3)", "must be a positive whole number, not -3", "cpb"),
        ("input(8x8x16) > attn(heads=2, window=4, cpb=1.5)", "must be a positive whole number, not 3/2", "cpb"),
        ("input(8x8x16) > attn(heads=2, window=4, cpb=2x3)", "cpb= takes one value", "cpb"),
        ("input(8x8x16) > attn(heads=2, window=4, cpb=8, cpb=8)", "cpb= is given twice", "cpb=8)"),
        ("input(8x8x16) > attn(heads=2, window=1, cpb=8)", "window=1 must be at least 2", "window"),
        (
            "input(8x8x16) > attn(heads=2, pad)",
            "'pad' pads the map to a multiple of the window: it needs window=w",
            "pad",
        ),
        ("input(8x8x16) > attn(heads=2, window=4, pad=1)", "'pad' is a flag of attn: it takes no value", "pad"),
        ("input(8x8x16) > attn(heads=2, window=4, pad, pad)", "'pad' is given twice", "pad)"),
        ("input(10x10x16) > attn(heads=2, window=4, cpb=8)", "window=4 does not divide the map's size 10", "window"),
        (
            "input(10x16) > attn(heads=2, window=4, cpb=8, pad)",
            "cpb= does not go with a sliding window on a sequence",
            "cpb",
        ),
        ("input(8x8x16) > attn(heads=3, window=4, cpb=8)", "heads=3 does not divide the width 16", "heads"),
    ],
)
def test_mistakes(program, words, at):
    with pytest.raises(paramsym.ParamsymError) as info:
        paramsym.parse(program)
    assert words in str(info.value)
    assert f"line 1, column {program.index(at) + 1}" in str(info.value)


def test_the_window_that_does_not_divide_says_pad():
    with pytest.raises(paramsym.ParamsymError) as info:
        paramsym.parse("input(7x7x16) > attn(heads=2, window=8)")
    assert "write 'pad'" in str(info.value)


@pytest.mark.parametrize(
    "program, values, words",
    [
        (
            "input(H x H x d) > attn(heads=2, window=w, cpb=m)",
            {"H": 8, "d": 8, "w": 1, "m": 4},
            "window=w must be at least 2",
        ),
        (
            "input(H x H x d) > attn(heads=2, window=w, cpb=m)",
            {"H": 10, "d": 8, "w": 4, "m": 4},
            "window=w does not divide",
        ),
        ("input(H x H x d) > attn(heads=2, window=4, cpb=m/2)", {"H": 8, "d": 8, "m": 5}, "must be a positive whole"),
    ],
)
def test_symbolic_mistakes_wait_for_values(program, values, words):
    net = paramsym.parse(program)
    with pytest.raises(paramsym.ParamsymError, match=words):
        net.evaluate(**values)
    fixed = {"w": 4, "m": 8, "H": 8}
    net.evaluate(**{**values, **{k: v for k, v in fixed.items() if k in values}})  # good values pass


# ---- explain, LaTeX, exports ---------------------------------------------------------------------


def test_explain():
    result = run("explain", "input(7x7x16) > attn(heads=2, bias, window=8, shift, cpb=512, pad)")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for words in (
        "continuous position bias (MLP of width 512)",
        "225 relative positions",
        "2,562 parameters",
        "460,800 MACs",
        "49 -> 64 positions",
        "One window covers the map, so the shift does nothing",
        "zeroes the key bias",
        "3,650 parameters",
        "MACs: 657,408",
    ):
        assert words in text, (words, text)
    text = " ".join(run("explain", "input(16x16x16) > attn(heads=2, window=8, cpb=8, pad)").stdout.split())
    assert "Padding: none" in text and "shift does nothing" not in text


@pytest.mark.parametrize(
    "program, value",
    [
        ("input(7x7x16) > attn(heads=2, bias, window=8, cpb=512, pad)", "3650"),
        ("input(H x W x d) > attn(heads=h, window=w, cpb=m, pad)", "4 d^{2} + h m + h + 3 m"),
    ],
)
def test_latex(program, value):
    result = run("latex", program)
    assert result.returncode == 0, result.stderr
    assert f"= {value}" in result.stdout


def test_generic_params_in_views():
    """The textbook formula of the layer (C the width) carries the MLP and the logit scales."""
    from paramsym.core.quantities import generic_params

    net = paramsym.parse("input(16x16x32) > attn(heads=4, bias, window=8, cpb=512)")
    template, values = generic_params(net.layers[0].layer)
    assert template.subs(values) == net.params == 4 * 32 * 32 + 4 * 32 + 3 * 512 + 512 * 4 + 4


@pytest.mark.parametrize(
    "program, to, words",
    [
        # V1's WindowAttention exports; V2's MLP and the padding would be dropped by it, so they are refused
        ("input(8x8x16) > attn(heads=2, window=4, cpb=64, pad)", "torch", "Swin V2's attention (cpb=) and padded"),
        ("input(8x8x16) > attn(heads=2, window=4, cpb=64)", "torch", "Swin V2's attention (cpb=) and padded"),
        ("input(6x6x16) > attn(heads=2, window=4, pad)", "torch", "Swin V2's attention (cpb=) and padded"),
        ("input(8x8x16) > attn(heads=2, window=4, cpb=64, pad)", "keras", "window attention (Swin) has no Keras layer"),
    ],
)
def test_export_of_swin_v2_attention_is_refused(program, to, words):
    result = run("export", program, "--to", to)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_swin_v1_at_256_pads_too():
    """Swin V1's 7x7 window does not divide 256's maps 64, 32, 16 and 8: the import writes `pad` (before it,
    the import was refused), and the MACs are torchvision's."""
    import torchvision

    model = torchvision.models.swin_t().eval()
    text = paramsym.from_torch(model, (256, 256, 3))
    assert "window=7, pad" in text and "cpb" not in text
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 256, 256))
    values = paramsym.parse(text).evaluate()
    assert (values["params"], values["macs"]) == (torch_params(model), counter.get_total_flops() // 2)
    assert ", pad" not in paramsym.from_torch(model, (224, 224, 3))
