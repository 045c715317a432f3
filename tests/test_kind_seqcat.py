"""`seqcat(A | B | ...)` (docs/language.md, Composition): sequences joined along their positions, and `prefix(N)`
(Layers: a sequence's first N positions), checked against PyTorch's `torch.cat(..., dim=1)` and `x[:, :N]`, and
against timm's PiT (its pooling: a Linear on the class token, a strided depthwise convolution on the map) and CoaT's
ConvPosEnc (a depthwise convolution on the map's tokens, the class token put back first), through export and
import."""

from __future__ import annotations

import pytest
import timm
import torch
from timm.models.coat import ConvPosEnc
from timm.models.pit import PoolingVisionTransformer
from torch import nn

import paramsym
from helpers.imported import ours, torch_truth
from helpers.round_trip import import_back

# (program, output shape channels last, params, MACs)
PROGRAMS = [
    ("input(10x8) > prefix", (1, 8), 0, 0),
    ("input(10x8) > prefix(3) > dense(->4, bias)", (3, 4), 36, 96),
    ("input(10x8) > seqcat(prefix | rest)", (10, 8), 0, 0),
    ("input(10x8) > seqcat(prefix(2) | rest(2) | rest(7))", (13, 8), 0, 0),
    # PiT's pooling: Linear(8->16) on the class token, a depthwise 3x3 stride-2 convolution (groups 8) on the map
    (
        "input(17x8) > seqcat(prefix > dense(->16, bias) | rest > untokens(4x4) > conv3x3(->16, stride=2, pad=1, "
        "groups=8, bias) > tokens)",
        (5, 16),
        8 * 16 + 16 + 16 * 9 + 16,
        8 * 16 + 4 * 16 * 9,
    ),
    # CoaT's ConvPosEnc: a residual depthwise 3x3 on the map, the class token put back first
    (
        "input(17x8) > seqcat(prefix | rest > untokens(4x4) > res(dwconv3x3(pad=1, bias)) > tokens)",
        (17, 8),
        8 * 9 + 8,
        16 * 8 * 9,
    ),
]


@pytest.mark.parametrize("program, out, params, macs", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_counts(program, out, params, macs):
    net = paramsym.parse(program)
    assert tuple(int(d) for d in net.output_shape.dims()) == out
    counts = net.evaluate()
    assert (counts["params"], counts["macs"]) == (params, macs)
    for lc in net.layers:
        if lc.layer.kind.key == "prefix":
            assert (lc.params, lc.macs, lc.fan_in, lc.state) == (0, 0, 1, 0)


def test_symbolic_lengths_add_up():
    net = paramsym.parse("input(T x d) > seqcat(prefix(N) | rest(N) > dense(->d))")
    assert [str(d) for d in net.output_shape.dims()] == ["T", "d"]
    assert net.value(net.params, T=10, N=2, d=4) == 16


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(8x8x3) > prefix", "prefix keeps the first positions of a sequence (T x d), but its input is the map"),
        ("input(16) > prefix", "but its input is the vector"),
        ("input(8x4) > prefix(0)", "a positive whole number of them"),
        ("input(8x4) > prefix(8)", "keeps 8 of the 8 positions of the sequence: it must keep fewer than all"),
        ("input(8x4) > seqcat(prefix | rest > dense(->5))", "seqcat(...): the channels of its branches differ"),
        ("input(8x4) > seqcat(prefix | rest > untokens(7x1))", "this branch gives 7 x 1 x 4, not a sequence"),
        ("input(8x8x4) > seqcat(id | id)", "seqcat(...) joins sequences (T x d) along their positions"),
        ("input(8x4) > seqcat(prefix)", "unexpected"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words.replace("(", r"\(").replace(")", r"\)")):
        paramsym.parse(program)


@pytest.mark.parametrize("kept", [1, 3])
def test_export_computes_the_first_positions_and_the_joined_sequence(kept):
    net = paramsym.parse(f"input(7x5) > seqcat(prefix({kept}) | rest({kept}))")
    module = paramsym.to_torch(net).eval()
    x = torch.randn(2, 5, 7)  # the export's sequence is (N, d, T)
    (prefix,) = [m for m in module.modules() if type(m).__name__ == "Prefix"]
    assert torch.equal(prefix(x), x[..., :kept])
    with torch.no_grad():
        assert torch.equal(module(x), x)  # the first positions and the rest, joined again: the sequence itself


@pytest.mark.parametrize(
    "program, written",
    [
        ("input(9x8) > seqcat(prefix > dense(->8, bias) | rest > dense(->8))", "seqcat(prefix > dense(8->8, bias) |"),
        ("input(9x8) > seqcat(prefix(2) | rest(2) > untokens(7x1) > conv1x1(->8) > tokens)", "seqcat(prefix(2) |"),
    ],
)
def test_export_imports_back(program, written):
    net = paramsym.parse(program)
    text, back = import_back(net)
    assert written in " ".join(text.split())
    assert back.evaluate() == net.evaluate()
    assert back.output_shape.dims() == net.output_shape.dims()


def _pit(dims: tuple, depth: tuple, heads: tuple, size: int) -> nn.Module:
    return PoolingVisionTransformer(
        img_size=size, patch_size=4, stride=2, base_dims=dims, depth=depth, heads=heads, mlp_ratio=2, num_classes=7
    )


@pytest.mark.parametrize(
    "dims, depth, heads, size",
    [((8, 8), (1, 1), (1, 2), 32), ((4, 4, 4), (1, 2, 1), (2, 4, 8), 40), ((16,), (2,), (2,), 24)],
)
def test_timm_pit_imports_exactly(dims, depth, heads, size):
    with torch.device("meta"):
        model = _pit(dims, depth, heads, size).eval()
    text, counts = ours(model, (size, size, 3))
    truth = torch_truth(model, (size, size, 3))
    assert (counts["params"], counts["state"], counts["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counts["out"] == truth["out"]
    assert ("seqcat(prefix > dense(" in text) == (len(dims) > 1)  # the pooling between the stages
    assert "prefix\n" in text + "\n"  # the class token after the last stage


class _CoaTPositions(nn.Module):
    """timm's CoaT before its blocks: the map's tokens after a class token, then its ConvPosEnc (a depthwise
    convolution of the map, added to it; the class token put back first), then the class token's head."""

    def __init__(self, d: int, k: int, size: int):
        super().__init__()
        self.embed = nn.Conv2d(3, d, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.cpe = ConvPosEnc(d, k=k)
        self.size = size // 4
        self.head = nn.Linear(d, 5)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.cpe(x, (self.size, self.size))
        return self.head(x[:, 0])


@pytest.mark.parametrize("d, k, size", [(8, 3, 32), (16, 5, 24)])
def test_timm_coat_conv_position_encoding_imports_exactly(d, k, size):
    model = _CoaTPositions(d, k, size).eval()
    text, counts = ours(model, (size, size, 3))
    truth = torch_truth(model, (size, size, 3))
    assert (counts["params"], counts["state"], counts["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counts["out"] == truth["out"]
    assert "seqcat(prefix | rest > untokens(" in " ".join(text.split())


def test_a_real_pit_computes_what_the_export_of_its_pooling_computes():
    """PiT's Pooling (a Linear on the class token, a strided depthwise convolution on the map) with the weights
    of the export of `seqcat(prefix > dense | rest > untokens > conv > tokens)`: the same values."""
    pooling = timm.models.pit.Pooling(8, 16, stride=2).eval()
    net = paramsym.parse(
        "input(17x8) > seqcat(prefix > dense(->16, bias) | rest > untokens(4x4) > conv3x3(->16, stride=2, pad=1, "
        "groups=8, bias) > tokens)"
    )
    module = paramsym.to_torch(net).eval()
    linear = next(m for m in module.modules() if isinstance(m, nn.Linear))
    conv = next(m for m in module.modules() if isinstance(m, nn.Conv2d))
    with torch.no_grad():
        linear.load_state_dict(pooling.fc.state_dict())
        conv.load_state_dict(pooling.conv.state_dict())
        x = torch.randn(2, 17, 8)
        cls, tokens = x[:, :1], x[:, 1:].transpose(1, 2).reshape(2, 8, 4, 4)
        pooled, pooled_cls = pooling(tokens, cls)
        expected = torch.cat((pooled_cls, pooled.flatten(2).transpose(1, 2)), dim=1)
        ours_out = module(x.transpose(1, 2)).transpose(1, 2)  # the export's sequence is (N, d, T)
    assert torch.allclose(ours_out, expected, atol=1e-5)
