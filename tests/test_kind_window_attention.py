"""`attn(heads=h, window=w[, shift])` exported to PyTorch (torch_modules.WindowAttention) against
torchvision's Swin ShiftedWindowAttention: the same parameters, the same output with the same weights
(channels first in ours, channels last in torchvision's), the same MACs by FlopCounterMode, and the
module imports back as the same attn."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.swin_transformer import ShiftedWindowAttention

import paramsym
from helpers.cli_helpers import run
from helpers.frameworks import torch_params, torch_state
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import WindowAttention


def macs(module, x) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module.eval()(x)
    return counter.get_total_flops() // 2 // x.shape[0]


def program(H, W, d, h, w, shift, bias, extra=""):
    return (
        f"input({H}x{W}x{d}) > attn(heads={h}{extra}{', bias' if bias else ''}, window={w}{', shift' if shift else ''})"
    )


def exported(text):
    network = paramsym.parse(text)
    module = paramsym.to_torch(network)
    found = [m for m in module.modules() if isinstance(m, WindowAttention)]
    assert len(found) == 1
    return network, module, found[0]


CASES = [
    (56, 56, 96, 3, 7, True, True),
    (8, 8, 16, 2, 4, True, True),
    (8, 12, 32, 4, 4, True, False),
    (6, 6, 16, 2, 3, False, True),
    (7, 7, 24, 3, 7, True, True),  # one window: torchvision shifts nothing
    (12, 6, 8, 2, 3, True, True),
    (4, 4, 8, 1, 2, True, False),
]


@pytest.mark.parametrize("H, W, d, h, w, shift, bias", CASES)
def test_against_torchvision(H, W, d, h, w, shift, bias):
    network, whole, ours = exported(program(H, W, d, h, w, shift, bias))
    theirs = ShiftedWindowAttention(d, [w, w], [w // 2 if shift else 0] * 2, h, qkv_bias=bias, proj_bias=bias)
    assert torch_params(ours) == torch_params(theirs) == network.evaluate()["params"]
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]
    assert torch_state(whole) == 0 == network.evaluate()["state"]  # the index table is computed, not a buffer
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert missing == ["relative_position_index"] and unexpected == []
    x = torch.randn(2, H, W, d)
    with torch.no_grad():
        want = theirs.eval()(x)
        got = whole.eval()(x.movedim(-1, 1))
    assert got.shape == (2, d, H, W)
    assert torch.equal(got.movedim(1, -1), want)
    assert macs(whole, x.movedim(-1, 1)) == macs(theirs, x) == network.evaluate()["macs"]


def test_shift_changes_the_output():
    """With the weights copied, the shifted module differs from the unshifted one (the roll and masks run)."""
    _, plain, _ = exported(program(8, 8, 16, 2, 4, False, True))
    _, shifted, _ = exported(program(8, 8, 16, 2, 4, True, True))
    shifted.load_state_dict(plain.state_dict())
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(plain.eval()(x), shifted.eval()(x))


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(1, 3),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_property_grouped_and_any_head_width(w, rows, cols, groups, per_group, e, own_width, grouped, shift, bias):
    """kv_heads and head_dim (beyond torchvision): our module's params, MACs and shape equal the counts."""
    heads = groups * per_group
    d = 2 * heads
    extra = (f", kv_heads={groups}" if grouped else "") + (f", head_dim={e}" if own_width else "")
    text = program(rows * w, cols * w, d, heads, w, shift, bias, extra)
    network, whole, _ours = exported(text)
    values = network.evaluate()
    x = torch.randn(1, d, rows * w, cols * w)
    assert torch_params(whole) == values["params"], text
    assert macs(whole, x) == values["macs"], text
    with torch.no_grad():
        assert whole.eval()(x).shape == x.shape
    assert import_back(network, whole)[1].evaluate() == values, text


@pytest.mark.parametrize(
    "text",
    [
        program(8, 8, 16, 2, 4, True, True),
        program(8, 8, 16, 2, 4, False, False),
        program(6, 6, 24, 4, 3, True, True, ", kv_heads=2, head_dim=5"),
        "input(8x8x16) > res(ln > attn(heads=2, window=4, shift)) > res(ln > dense(->16))",
    ],
)
def test_imports_back_as_the_same_attn(text):
    network = paramsym.parse(text)
    imported, again = import_back(network)
    attn = [lc.layer for lc in again.layers if lc.layer.kind.key == "attn"]
    want = [lc.layer for lc in network.layers if lc.layer.kind.key == "attn"]
    assert [(a.options, a.bias) for a in attn] == [(a.options, a.bias) for a in want], imported
    assert again.evaluate() == network.evaluate()


def test_exported_source_runs_alone(tmp_path):
    text = "input(8x8x16) > res(ln > attn(heads=2, bias, window=4, shift)) > gap > dense(->3)"
    path = tmp_path / "model.py"
    assert run("export", text, "--to", "torch", "-o", str(path)).returncode == 0
    assert "class WindowAttention" in path.read_text()
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert result.stdout.strip() == f"(1, 3) {paramsym.parse(text).params}", result.stderr


@pytest.mark.parametrize(
    "text, to, words",
    [
        ("input(8x8x16) > attn(heads=2, window=4, causal)", "torch", "causal masking inside windows"),
        ("input(8x8x16) > attn(heads=2, window=4)", "keras", "window attention (Swin) has no Keras layer"),
    ],
)
def test_refusals(text, to, words):
    result = run("export", text, "--to", to)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
