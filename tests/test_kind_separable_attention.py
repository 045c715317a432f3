"""`sepattn(patch=p[, bias])` (MobileViT v2's separable self-attention; a paramsym extension, docs/language.md,
Attention) and timm's MobileViT blocks read whole (v1: grid attention over the positions of one patch offset; v2:
sepattn): the counts against timm's MobileVitBlock and MobileVitV2Block at several sizes (params, BatchNorm state,
output shape, MACs by FlopCounterMode on meta tensors), the export computing what timm's LinearSelfAttention
computes on the unfolded patches (weights copied), and imported back."""

from __future__ import annotations

import pytest
import sympy
import torch
from timm.models.mobilevit import LinearSelfAttention, MobileVitBlock, MobileVitV2Block
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.import_check import differences, program_counts, torch_counts
from helpers.round_trip import import_back
from paramsym.errors import ImportRefused
from paramsym.frameworks.torch_modules import SeparableSelfAttention


def imported(build, shape: tuple) -> tuple[str, tuple, object]:
    with torch.device("meta"):
        model = nn.Sequential(build()).eval()
    text = paramsym.from_torch(model, shape)
    return text, program_counts(text), torch_counts(model, shape)


# (H, W, C in, C out, transformer width, depth, heads, patch)
V1 = [
    (32, 32, 64, 64, 96, 2, 4, 2),
    (16, 16, 48, 80, 64, 1, 2, 4),
    (8, 8, 32, 32, 48, 3, 1, 2),
    (7, 7, 32, 32, 48, 1, 2, 2),  # timm resizes the map to 8x8 for its patches, and back: resize(8x8, bilinear)
]


@pytest.mark.parametrize("H, W, cin, cout, d, depth, heads, patch", V1)
def test_mobilevit_block_imports_exactly(H, W, cin, cout, d, depth, heads, patch):
    def build():
        return MobileVitBlock(
            cin, cout, transformer_dim=d, transformer_depth=depth, num_heads=heads, patch_size=patch, mlp_ratio=2.0
        )

    text, ours, theirs = imported(build, (H, W, cin))
    assert f"attn(heads={heads}, grid={-(-H // patch)}, relpos=none, bias)" in text, text
    assert differences(ours, theirs) == [] and ours[3] == theirs.macs, text


# (H, W, C in, C out, transformer width, depth, patch)
V2 = [(32, 32, 128, 128, 64, 2, 2), (16, 16, 96, 64, 48, 4, 2), (12, 8, 32, 32, 16, 1, 4)]


@pytest.mark.parametrize("H, W, cin, cout, d, depth, patch", V2)
def test_mobilevit_v2_block_imports_exactly(H, W, cin, cout, d, depth, patch):
    def build():
        return MobileVitV2Block(cin, cout, transformer_dim=d, transformer_depth=depth, patch_size=patch)

    text, ours, theirs = imported(build, (H, W, cin))
    assert f"sepattn(patch={patch}, bias)" in text, text
    assert differences(ours, theirs) == [] and ours[3] == theirs.macs, text


def test_blocks_refuse_patches_that_do_not_divide_the_map():
    with torch.device("meta"):
        model = nn.Sequential(MobileVitV2Block(32, 32, transformer_dim=16, patch_size=2)).eval()
    with pytest.raises(ImportRefused, match="patches of 2x2 on a 9x9 map: timm first resizes"):
        paramsym.from_torch(model, (9, 9, 32))


@pytest.mark.parametrize("H, W, C, patch, bias", [(8, 8, 16, 2, True), (12, 6, 8, 3, False), (4, 4, 4, 1, True)])
def test_export_computes_timms_and_counts(H, W, C, patch, bias):
    network = paramsym.parse(f"input({H}x{W}x{C}) > sepattn(patch={patch}{', bias' if bias else ''})")
    whole = paramsym.to_torch(network).eval()
    (ours,) = [m for m in whole.modules() if isinstance(m, SeparableSelfAttention)]
    theirs = LinearSelfAttention(C, bias=bias).eval()
    ours.load_state_dict(
        {"qkv." + k[9:] if k.startswith("qkv_proj") else "proj." + k[9:]: v for k, v in theirs.state_dict().items()}
    )
    x = torch.randn(2, C, H, W)
    # timm's MobileVitV2Block unfolds the map to (N, C, P, patches), P the offsets in a patch, and folds it back
    unfolded = (
        x.reshape(2, C, H // patch, patch, W // patch, patch)
        .permute(0, 1, 3, 5, 2, 4)
        .reshape(2, C, -1, H * W // patch**2)
    )
    with torch.no_grad():
        folded = theirs(unfolded).reshape(2, C, patch, patch, H // patch, W // patch).permute(0, 1, 4, 2, 5, 3)
        assert torch.allclose(whole(x), folded.reshape(2, C, H, W), atol=1e-5)
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        whole.to("meta")(torch.zeros(1, C, H, W, device="meta"))
    assert counter.get_total_flops() // 2 == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


def test_formula():
    C = sympy.Symbol("C", positive=True, integer=True)
    net = paramsym.parse("input(H x W x C) > sepattn(patch=2, bias)")
    assert sympy.expand(net.params - (3 * C**2 + 4 * C + 1)) == 0
    assert net.evaluate(H=8, W=8, C=4)["macs"] == 64 * (4 * 9 + 16)


@pytest.mark.parametrize(
    "text, message",
    [
        ("input(64x8) > sepattn", "groups the positions of a map"),
        ("input(9x9x8) > sepattn(patch=2)", "patch=2 does not divide the map's side 9"),
        ("input(8x8x8) > sepattn(heads=2)", "unknown keyword 'heads'"),
    ],
)
def test_refusals(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()
