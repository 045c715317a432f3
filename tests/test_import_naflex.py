"""`posembed(A x B, resize=H x W, MODE[, antialias])` (docs/language.md, Sequences): NaFlexViT's grid of learned
positions, resized to the grid of patches and added to the tokens. Checked against timm's NaFlexVit in small
configurations imported whole (params, state, output shape, MACs by FlopCounterMode on meta tensors: the resize
of the table counts none), against NaFlexEmbeds' own addition of the table (the export computes it), and the
mistakes' messages."""

from __future__ import annotations

import pytest
import torch
from timm.models.naflexvit import NaFlexEmbeds, NaFlexVit, NaFlexVitCfg
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.imported import ours, torch_truth
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import ResizedPositionEmbedding


def naflex(grid, mode="bicubic", antialias=True, reg=0, cls=False, pool="avg", d=32) -> NaFlexVit:
    cfg = NaFlexVitCfg(
        patch_size=8,
        embed_dim=d,
        depth=1,
        num_heads=2,
        reg_tokens=reg,
        class_token=cls,
        global_pool=pool,
        pos_embed_grid_size=grid,
        pos_embed_interp_mode=mode,
        pos_embed_antialias=antialias,
        fc_norm=True if pool == "avg" else None,
    )
    with torch.device("meta"):
        return NaFlexVit(cfg, num_classes=10).eval()


# (table grid, mode, antialias, register tokens, class token, pool, input (H, W, C), what the import writes)
CASES = [
    ((4, 4), "bicubic", True, 0, False, "avg", (48, 48, 3), ["posembed(4x4, resize=6x6, bicubic, antialias)"]),
    ((8, 8), "bicubic", True, 2, False, "avg", (32, 32, 3), ["posembed(8x8, resize=4x4, bicubic, antialias)"]),
    ((4, 4), "bilinear", False, 1, True, "token", (48, 64, 3), ["posembed(4x4, resize=6x8, bilinear)", "cls > cls"]),
    ((6, 6), "bicubic", True, 0, False, "avg", (48, 48, 3), ["posembed(36)"]),  # its own size: no resize
    ((5, 7), "nearest", False, 4, False, "avg", (40, 56, 3), ["posembed(35)", "cls > cls > cls > cls"]),
    ((3, 5), "bilinear", True, 4, False, "avg", (48, 40, 3), ["posembed(3x5, resize=6x5, bilinear, antialias)"]),
]


@pytest.mark.parametrize("grid, mode, antialias, reg, cls, pool, shape, written", CASES)
def test_naflexvit_imports_exactly(grid, mode, antialias, reg, cls, pool, shape, written):
    model = naflex(grid, mode, antialias, reg, cls, pool)
    text, numbers = ours(model, shape)
    for part in written:
        assert part in text, text
    assert numbers == torch_truth(model, shape)


# (A, B, H, W, d, mode, antialias)
EXPORTS = [
    (4, 4, 6, 6, 16, "bicubic", True),
    (8, 8, 4, 4, 8, "bicubic", True),
    (4, 4, 6, 8, 8, "bilinear", False),
    (3, 5, 6, 5, 4, "bilinear", True),
]


def test_nearest_exports_and_imports_back():
    """timm's NaFlexEmbeds cannot resize nearest (it passes align_corners=False, which F.interpolate refuses in
    that mode); paramsym's export can, and reads back the same."""
    network = paramsym.parse("input(30x4) > posembed(3x5, resize=6x5, nearest)")
    whole = paramsym.to_torch(network).eval()
    assert whole(torch.zeros(1, 4, 30)).shape == (1, 4, 30)
    text, back = import_back(network)
    assert "posembed(3x5, resize=6x5, nearest)" in text
    assert back.evaluate() == network.evaluate()


@pytest.mark.parametrize("a, b, h, w, d, mode, antialias", EXPORTS)
def test_export_adds_what_naflex_adds(a, b, h, w, d, mode, antialias):
    flags = f", {mode}" + (", antialias" if antialias else "")
    network = paramsym.parse(f"input({h * w}x{d}) > posembed({a}x{b}, resize={h}x{w}{flags})")
    whole = paramsym.to_torch(network).eval()
    (mine,) = [m for m in whole.modules() if isinstance(m, ResizedPositionEmbedding)]
    theirs = NaFlexEmbeds(
        patch_size=8,
        embed_dim=d,
        class_token=False,
        pos_embed_grid_size=(a, b),
        pos_embed_interp_mode=mode,
        pos_embed_antialias=antialias,
    )
    with torch.no_grad():
        theirs.pos_embed.copy_(torch.randn_like(theirs.pos_embed))
        mine.table.copy_(theirs.pos_embed)
    x = torch.randn(2, h * w, d)
    expected = x.clone()
    with torch.no_grad():
        theirs._apply_learned_pos_embed(expected, grid_size=[h, w])
        assert torch.allclose(mine(x.transpose(1, 2)).transpose(1, 2), expected, atol=1e-5)
    values = network.evaluate()
    assert torch_params(whole) == values["params"] == a * b * d
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        whole(torch.zeros(1, d, h * w))
    assert counter.get_total_flops() == 0 == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text
    assert f"posembed({a}x{b}, resize={h}x{w}{flags})" in text


MISTAKES = [
    ("input(500x32) > posembed(16x16, resize=24x24)", "the sequence has 500"),
    ("input(576x32) > posembed(256, resize=24x24)", "resizes a grid of A x B vectors"),
    ("input(576x32) > posembed(16x16, resize=576)", "resize= takes the grid's two sides"),
    ("input(576x32) > posembed(16x16, resize=24x24, cls)", "'cls' belongs to a separable table"),
    ("input(576x32) > posembed(16x16, resize=24x24, bilinear, nearest)", "resizes its table one way"),
    ("input(576x32) > posembed(576, bicubic)", "belongs to posembed(A x B, resize=H x W)"),
    ("input(576x32) > posembed(16x16, antialias)", "belongs to posembed(A x B, resize=H x W)"),
    ("input(576x32) > posembed(16x0, resize=24x24)", "positive whole numbers"),
    ("input(24x24x32) > posembed(16x16, resize=24x24)", "but its input is the map 24 x 24 x 32"),
]


@pytest.mark.parametrize("program, message", MISTAKES)
def test_mistakes(program, message):
    with pytest.raises(paramsym.ParamsymError, match=message.replace("(", r"\(").replace(")", r"\)")):
        paramsym.parse(program)


def test_counts_and_symbols():
    network = paramsym.parse("input(576x768) > posembed(16x16, resize=24x24)")
    assert network.evaluate()["params"] == 16 * 16 * 768
    assert network.evaluate()["macs"] == 0
    symbolic = paramsym.parse("let T = H*W\ninput(T x d) > posembed(A x B, resize=H x W)")
    assert symbolic.with_values(A=3, B=5, H=6, W=5, d=4).evaluate()["params"] == 60


class InPlace(torch.nn.Module):
    """A resized table added in place to a Linear's output (not a value passed on) or used otherwise."""

    def __init__(self, use: str):
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, 2, 2, 4))
        self.use = use

    def forward(self, x):  # x: (N, 4, T), T = 16, as from_torch gives a sequence
        x = self.proj(x.transpose(1, 2))
        table = torch.nn.functional.interpolate(self.pos_embed.permute(0, 3, 1, 2), size=(4, 4), mode="bilinear")
        table = table.flatten(2).transpose(1, 2)
        if self.use == "in place":
            x.add_(table)
            return x
        if self.use == "times":
            return x * table
        return x + table


@pytest.mark.parametrize(
    "use, message",
    [
        ("in place", r"in place \(add_\), after which the traced graph does not show which uses see the sum"),
        ("times", "works on a table of positions that forward resized"),
    ],
)
def test_other_uses_of_a_resized_table_are_refused(use, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.from_torch(InPlace(use), (16, 4))


def test_a_resized_table_added_out_of_place_imports():
    model = InPlace("plus")
    text, numbers = ours(model, (16, 4))
    assert "posembed(2x2, resize=4x4, bilinear)" in text, text
    assert numbers == torch_truth(model, (16, 4))
