"""Vision transformers' odd patch and position embeddings read by the importer (docs/frameworks.md): a learned
(1, C, H, W) table added to a channels-first map (timm's Visformer, `posembed(H·W)` on the map) and timm's
batch_patchify (a view into patches, a permute and a reshape, then a Linear: `space2depth(p) > tokens > dense`),
checked against the real modules (parameters, buffers, output shape, FlopCounterMode MACs) at several sizes."""

from __future__ import annotations

import pytest
import torch
from timm.models.naflexvit import batch_patchify
from timm.models.vision_transformer import ParallelScalingBlock
from torch import nn

import paramsym
from helpers.import_check import differences, program_counts, torch_counts


class MapPositions(nn.Module):
    """Visformer's stage entry: a strided conv, BatchNorm, then `x + pos_embed` of shape (1, C, H, W)."""

    def __init__(self, channels: int, patch: int, size: int, buffer: bool = False):
        super().__init__()
        self.embed = nn.Conv2d(3, channels, patch, stride=patch)
        self.norm = nn.BatchNorm2d(channels)
        table = torch.randn(1, channels, size // patch, size // patch)
        if buffer:
            self.register_buffer("pos_embed", table)
        else:
            self.pos_embed = nn.Parameter(table)

    def forward(self, x):
        return self.norm(self.embed(x)) + self.pos_embed


class Patchify(nn.Module):
    """NaFlexViT's and Gemma 4's patch embedding on an image: batch_patchify, then a Linear."""

    def __init__(self, channels: int, patch: int, width: int, channels_last: bool = True, bias: bool = True):
        super().__init__()
        self.patch, self.channels_last = patch, channels_last
        self.proj = nn.Linear(patch * patch * channels, width, bias=bias)

    def forward(self, x):
        patches, _ = batch_patchify(x, (self.patch, self.patch), pad=False, channels_last=self.channels_last)
        return self.proj(patches)


def _exact(module, shape) -> str:
    """The program read from `module`, after checking that it counts what the module does."""
    text = paramsym.from_torch(module, shape)
    ours, theirs = program_counts(text), torch_counts(module, shape)
    assert differences(ours, theirs) == []
    assert ours[3] == theirs.macs
    return text


@pytest.mark.parametrize(
    "channels, patch, size, table",
    [(16, 4, 32, "posembed(64)"), (24, 2, 20, "posembed(100)"), (8, 8, 64, "posembed(64)")],
)
def test_a_table_added_to_a_map_is_posembed_on_the_map(channels, patch, size, table):
    text = _exact(MapPositions(channels, patch, size).eval(), (size, size, 3))
    assert table in text


def test_a_fixed_table_on_a_map_is_refused():
    with pytest.raises(paramsym.ParamsymError, match="pos_embed"):
        paramsym.from_torch(MapPositions(8, 4, 16, buffer=True).eval(), (16, 16, 3))


def test_the_map_table_is_added_row_by_row():
    module = MapPositions(6, 2, 8).eval()
    x = torch.randn(2, 6, 4, 4)
    exported = paramsym.to_torch(paramsym.parse("input(4x4x6) > posembed(16)"))
    (weight,) = exported.parameters()
    with torch.no_grad():
        weight.copy_(module.pos_embed[0].flatten(1).t())  # what the importer reads as the table
        assert torch.allclose(exported(x), x + module.pos_embed)


@pytest.mark.parametrize(
    "channels, patch, size, width, channels_last",
    [(3, 16, 64, 32, True), (3, 16, 48, 40, False), (4, 4, 24, 8, True), (2, 8, 32, 16, False)],
)
def test_batch_patchify_is_space2depth_then_tokens(channels, patch, size, width, channels_last):
    module = Patchify(channels, patch, width, channels_last).eval()
    text = _exact(module, (size, size, channels))
    assert f"space2depth({patch}) > tokens" in text
    assert f"dense({patch * patch * channels}->{width}, bias)" in text


def test_patches_of_another_shape_are_not_a_patchify():
    class Rows(nn.Module):  # patches of p x 2p: not space2depth's square patches
        def forward(self, x):
            b, c, h, w = x.shape
            return x.view(b, c, h // 2, 2, w // 4, 4).permute(0, 2, 4, 3, 5, 1).reshape(b, h * w // 8, 8 * c)

    with pytest.raises(paramsym.ParamsymError, match="splitting or moving its axes"):
        paramsym.from_torch(Rows().eval(), (8, 8, 3))


def test_visformer_imports_exactly():
    from helpers.timm_coverage import import_one

    row = import_one("visformer_tiny")
    assert row.outcome == "exact", row.detail


class ParallelViT(nn.Module):
    """A patch embedding, its positions as a sequence, then timm's ParallelScalingBlocks (ViT-22B's)."""

    def __init__(self, width: int, depth: int, **options):
        super().__init__()
        self.embed = nn.Conv2d(3, width, 4, stride=4)
        self.blocks = nn.Sequential(*(ParallelScalingBlock(width, **options) for _ in range(depth)))

    def forward(self, x):
        return self.blocks(self.embed(x).flatten(2).transpose(1, 2))


@pytest.mark.parametrize(
    "width, depth, options, words",
    [
        (64, 1, {"num_heads": 4}, "add(attn(heads=4, projbias) | dense(->256, bias) > gelu > dense(->64, bias))"),
        (96, 2, {"num_heads": 3, "qkv_bias": True, "init_values": 1e-5}, "attn(heads=3, bias)"),
        (48, 1, {"num_heads": 2, "proj_bias": False, "mlp_ratio": 2.0}, "attn(heads=2) | dense(->96, bias)"),
    ],
)
def test_the_parallel_block_is_attention_and_mlp_side_by_side(width, depth, options, words):
    # on the meta device, as the timm coverage runs: CPU's fused attention kernel is one FlopCounterMode counts as 0
    with torch.device("meta"):
        model = ParallelViT(width, depth, **options)
    text = _exact(model.eval(), (32, 32, 3))
    assert words in " ".join(text.split())


def test_the_parallel_block_with_normalised_queries_and_keys_is_qk_norm():
    with torch.device("meta"):
        model = ParallelViT(32, 1, num_heads=2, qk_norm=True).eval()
    assert "attn(heads=2, projbias, qk_norm=ln)" in _exact(model, (16, 16, 3))
    # a LayerNorm without weight and bias is neither qk_norm=ln nor qk_norm=rms
    block = model.blocks[0]
    block.q_norm = nn.LayerNorm(16, elementwise_affine=False)
    block.k_norm = nn.LayerNorm(16, elementwise_affine=False)
    with pytest.raises(paramsym.ParamsymError, match=r"normalises its queries and keys with LayerNorm and LayerNorm"):
        paramsym.from_torch(model, (16, 16, 3))
