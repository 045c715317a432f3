"""`clsattn(heads=h)` (docs/language.md, Class attention): the first position of a sequence attends to all of them,
one module, paramsym/kinds/class_attention.py, checked against timm's CaiT `ClassAttn` and CrossViT `CrossAttention`
(parameters, output shape, FlopCounterMode's MACs, the values of the export), and timm's CrossViT imported whole
(its two branches read the image as a named value; its two heads' average read as their sum)."""

from __future__ import annotations

import pytest
import torch
from timm.models.cait import ClassAttn
from timm.models.crossvit import CrossAttention, CrossVit
from torch import nn

import paramsym
from helpers.imported import ours, torch_truth
from helpers.round_trip import import_back


def _expected(T: int, d: int, bias: bool) -> tuple[int, int]:
    params = 4 * d * d + d + (3 * d if bias else 0)
    macs = d * d + 2 * T * d * d + 2 * T * d + d * d
    return params, macs


@pytest.mark.parametrize(
    "T, d, heads, bias", [(197, 192, 4, True), (17, 64, 2, False), (50, 48, 3, True), (2, 8, 1, False)]
)
def test_counts(T, d, heads, bias):
    net = paramsym.parse(f"input({T}x{d}) > clsattn(heads={heads}{', bias' if bias else ''})")
    assert [int(x) for x in net.output_shape.dims()] == [1, d]
    counts = net.evaluate()
    assert (counts["params"], counts["macs"]) == _expected(T, d, bias)
    assert counts["kv_cache"] == 2 * T * d


def test_symbolic():
    net = paramsym.parse("input(T x d) > clsattn(heads=h, bias)")
    assert net.value(net.macs, T=10, d=8, h=2) == _expected(10, 8, True)[1]
    assert net.value(net.params, T=10, d=8, h=2) == _expected(10, 8, True)[0]


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(8x8x4) > clsattn(heads=2)", "clsattn: the first position of a sequence (T x d) attends"),
        ("input(8x4) > clsattn", "clsattn needs its number of heads"),
        ("input(8x6) > clsattn(heads=4)", "heads=4 does not divide the 6 channels"),
        ("input(8x4) > clsattn(heads=2, k=3)", "unknown keyword 'k' for clsattn"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words.replace("(", r"\(").replace(")", r"\)")):
        paramsym.parse(program)


class _OnSequence(nn.Module):
    """A timm attention on paramsym's layout of a sequence input, (N, d, T)."""

    def __init__(self, attn: nn.Module):
        super().__init__()
        self.attn = attn

    def forward(self, x):
        return self.attn(x.transpose(1, 2))


@pytest.mark.parametrize("cls", [ClassAttn, CrossAttention], ids=["cait", "crossvit"])
@pytest.mark.parametrize("T, d, heads, bias", [(17, 32, 4, True), (10, 24, 3, False)])
def test_timm_modules_import_exactly(cls, T, d, heads, bias):
    module = _OnSequence(cls(d, num_heads=heads, qkv_bias=bias)).eval()
    text, counts = ours(module, (T, d))
    truth = torch_truth(module, (T, d))
    assert (counts["params"], counts["state"], counts["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counts["out"] == truth["out"] == (1, d)
    assert f"clsattn(heads={heads}{', bias' if bias else ''})" in text
    assert (counts["params"], counts["macs"]) == _expected(T, d, bias)


@pytest.mark.parametrize("cls", [ClassAttn, CrossAttention], ids=["cait", "crossvit"])
def test_export_computes_what_timm_computes(cls):
    net = paramsym.parse("input(9x16) > clsattn(heads=4, bias)")
    ours_module = paramsym.to_torch(net).eval()
    (mine,) = [m for m in ours_module.modules() if type(m).__name__ == "ClassAttention"]
    theirs = cls(16, num_heads=4, qkv_bias=True).eval()
    q, k, v = (theirs.wq, theirs.wk, theirs.wv) if cls is CrossAttention else (theirs.q, theirs.k, theirs.v)
    with torch.no_grad():
        for a, b in ((mine.q, q), (mine.k, k), (mine.v, v), (mine.proj, theirs.proj)):
            a.load_state_dict(b.state_dict())
        x = torch.randn(2, 9, 16)
        assert torch.allclose(ours_module(x.transpose(1, 2)).transpose(1, 2), theirs(x), atol=1e-5)
    text, back = import_back(net)
    assert "clsattn(heads=4, bias)" in text
    assert back.evaluate() == net.evaluate()


def _crossvit(size: int, scale: float) -> nn.Module:
    return CrossVit(
        img_size=size,
        img_scale=(1.0, scale),
        patch_size=(4, 8),
        embed_dim=(16, 32),
        depth=((1, 1, 0), (1, 2, 0)),
        num_heads=(2, 4),
        mlp_ratio=(2.0, 2.0, 1.0),
        num_classes=5,
    )


@pytest.mark.parametrize("size, scale", [(32, 1.0), (40, 32 / 40)])
def test_timm_crossvit_imports_exactly(size, scale):
    with torch.device("meta"):
        model = _crossvit(size, scale).eval()
    text, counts = ours(model, (size, size, 3))
    truth = torch_truth(model, (size, size, 3))
    assert (counts["params"], counts["state"], counts["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counts["out"] == truth["out"]
    assert "clsattn(heads=" in text and "seqcat(" in text
    assert "id as v1" in text  # the image, read by both branches


@pytest.mark.parametrize("tokens_norm", [False, True])
def test_timm_xcit_with_its_class_attention_blocks_imports_exactly(tokens_norm):
    """XCiT's class-attention blocks (timm's ClassAttentionBlock: ClassAttn on the normalised tokens, the others
    joined back, the MLP on the class token alone) after its XCA blocks."""
    from timm.models.xcit import Xcit

    with torch.device("meta"):
        model = Xcit(
            img_size=32,
            patch_size=8,
            embed_dim=32,
            depth=1,
            num_heads=4,
            num_classes=5,
            cls_attn_layers=2,
            tokens_norm=tokens_norm,
        ).eval()
    text, counts = ours(model, (32, 32, 3))
    truth = torch_truth(model, (32, 32, 3))
    assert (counts["params"], counts["state"], counts["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counts["out"] == truth["out"]
    # read whole as clsblock (tests/test_kind_class_attention.py); written out, the block counts the same
    assert "clsblock(heads=4, bias, xcit" in text


@pytest.mark.parametrize("T, d, heads, hidden", [(65, 32, 4, 128), (17, 48, 3, 96), (2, 8, 1, 8)])
def test_a_cait_class_block_written_out_counts_as_clsblock(T, d, heads, hidden):
    """CaiT's class-attention block, read whole as clsblock (tests/test_kind_class_attention.py), written out with
    clsattn, prefix and seqcat: the same parameters, MACs and shape."""
    whole = paramsym.parse(f"input({T}x{d}) > clsblock(heads={heads}, hidden={hidden}, bias)")
    written = paramsym.parse(
        f"input({T}x{d}) > seqcat(add(prefix | ln > clsattn(heads={heads}, bias) > scale)"
        f" > res(ln > dense(->{hidden}, bias) > gelu > dense(->{d}, bias) > scale) | rest)"
    )
    for network in (whole, written):
        assert [int(x) for x in network.output_shape.dims()] == [T, d]
    assert whole.evaluate()["params"] == written.evaluate()["params"]
    assert whole.evaluate()["macs"] == written.evaluate()["macs"]
