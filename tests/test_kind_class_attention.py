"""`talkattn(heads=h)` (CaiT's talking-heads attention) and `clsblock(heads=h)` (CaiT's and XCiT's class-attention
blocks) (docs/language.md, "Talking heads and class-attention blocks"). Checked against timm's TalkingHeadAttn,
LayerScaleBlockClassAttn and XCiT's ClassAttentionBlock at several sizes (params, output shape, MACs by
FlopCounterMode on meta tensors: FLOPs / 2), imported in small CaiT and XCiT models, and the exports
(torch_modules.TalkingHeadAttention, ClassTokenBlock) compute what timm's modules compute and import back."""

from __future__ import annotations

import pytest
import torch
from timm.models.cait import Cait, LayerScaleBlockClassAttn, TalkingHeadAttn
from timm.models.xcit import ClassAttentionBlock, Xcit
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.imported import ours, torch_truth
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import ClassTokenBlock, TalkingHeadAttention


def counted(program: str) -> dict:
    values = paramsym.parse(program).evaluate()
    return {"params": values["params"], "macs": values["macs"]}


def macs_of(module: nn.Module, *args) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args)
    return counter.get_total_flops() // 2


def randomized(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return module.eval()


# ---- talkattn --------------------------------------------------------------------------------------------------

# (T, d, heads, bias)
TALKING_CASES = [(196, 384, 8, True), (50, 48, 4, False), (17, 24, 3, True), (9, 16, 1, False)]


@pytest.mark.parametrize("T, d, heads, bias", TALKING_CASES)
def test_talkattn_counts_as_timm(T, d, heads, bias):
    with torch.device("meta"):
        theirs = TalkingHeadAttn(d, num_heads=heads, qkv_bias=bias).eval()
        x = torch.zeros(1, T, d)
        assert theirs(x).shape == (1, T, d)
        macs = macs_of(theirs, x)
    program = f"input({T}x{d}) > talkattn(heads={heads}{', bias' if bias else ''})"
    assert counted(program) == {"params": torch_params(theirs), "macs": macs}
    assert str(paramsym.parse(program).output_shape) == str(paramsym.parse(f"input({T}x{d})").output_shape)


@pytest.mark.parametrize("T, d, heads, bias", TALKING_CASES[1:])
def test_talkattn_export_computes_timms(T, d, heads, bias):
    network = paramsym.parse(f"input({T}x{d}) > talkattn(heads={heads}{', bias' if bias else ''})")
    whole = paramsym.to_torch(network).eval()
    (mine,) = [m for m in whole.modules() if isinstance(m, TalkingHeadAttention)]
    theirs = randomized(TalkingHeadAttn(d, num_heads=heads, qkv_bias=bias))
    mine.load_state_dict(theirs.state_dict())
    x = torch.randn(2, T, d)
    with torch.no_grad():
        assert torch.allclose(mine(x.transpose(1, 2)).transpose(1, 2), theirs(x), atol=1e-4)
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    assert macs_of(whole, torch.zeros(1, d, T)) == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


# ---- clsblock --------------------------------------------------------------------------------------------------

# (T patches, d, heads, mlp ratio, bias)
BLOCK_CASES = [(196, 384, 8, 4.0, True), (49, 48, 4, 4.0, False), (16, 24, 3, 2.0, True), (4, 16, 1, 3.0, False)]


def _flags(d: int, ratio: float, bias: bool) -> str:
    hidden = int(d * ratio)
    return ("" if hidden == 4 * d else f", hidden={hidden}") + (", bias" if bias else "")


@pytest.mark.parametrize("T, d, heads, ratio, bias", BLOCK_CASES)
def test_cait_block_counts_as_timm(T, d, heads, ratio, bias):
    with torch.device("meta"):
        theirs = LayerScaleBlockClassAttn(d, heads, mlp_ratio=ratio, qkv_bias=bias).eval()
        x, cls = torch.zeros(1, T, d), torch.zeros(1, 1, d)
        assert theirs(x, cls).shape == (1, 1, d)
        macs = macs_of(theirs, x, cls)
    program = f"input({T + 1}x{d}) > clsblock(heads={heads}{_flags(d, ratio, bias)})"
    assert counted(program) == {"params": torch_params(theirs), "macs": macs}
    assert str(paramsym.parse(program).output_shape) == str(paramsym.parse(f"input({T + 1}x{d})").output_shape)


@pytest.mark.parametrize("tokens_norm", [False, True])
@pytest.mark.parametrize("T, d, heads, ratio, bias", BLOCK_CASES)
def test_xcit_block_counts_as_timm(T, d, heads, ratio, bias, tokens_norm):
    with torch.device("meta"):
        theirs = ClassAttentionBlock(d, heads, mlp_ratio=ratio, qkv_bias=bias, tokens_norm=tokens_norm).eval()
        x = torch.zeros(1, T + 1, d)
        assert theirs(x).shape == (1, T + 1, d)
        macs = macs_of(theirs, x)
    flags = _flags(d, ratio, bias) + ", xcit" + (", tokensnorm" if tokens_norm else "")
    program = f"input({T + 1}x{d}) > clsblock(heads={heads}{flags})"
    assert counted(program) == {"params": torch_params(theirs), "macs": macs}


def _load(mine: ClassTokenBlock, theirs: nn.Module) -> None:
    """timm's weights into paramsym's block (its MLP a Sequential, its scales gamma1/gamma2)."""
    renamed = {
        k.replace("mlp.fc1", "mlp.0").replace("mlp.fc2", "mlp.2").replace("gamma_", "gamma"): v
        for k, v in theirs.state_dict().items()
    }
    mine.load_state_dict(renamed)


@pytest.mark.parametrize("variant", ["cait", "xcit", "xcit, tokensnorm"])
@pytest.mark.parametrize("T, d, heads, ratio, bias", BLOCK_CASES[1:])
def test_clsblock_export_computes_timms(T, d, heads, ratio, bias, variant):
    flags = _flags(d, ratio, bias) + ("" if variant == "cait" else f", {variant}")
    network = paramsym.parse(f"input({T + 1}x{d}) > clsblock(heads={heads}{flags})")
    whole = paramsym.to_torch(network).eval()
    (mine,) = [m for m in whole.modules() if isinstance(m, ClassTokenBlock)]
    x = torch.randn(2, T + 1, d)
    if variant == "cait":
        theirs = randomized(LayerScaleBlockClassAttn(d, heads, mlp_ratio=ratio, qkv_bias=bias))
        with torch.no_grad():
            expected = torch.cat([theirs(x[:, 1:], x[:, :1]), x[:, 1:]], dim=1)
    else:
        tokens_norm = "tokensnorm" in variant
        theirs = randomized(ClassAttentionBlock(d, heads, mlp_ratio=ratio, qkv_bias=bias, tokens_norm=tokens_norm))
        with torch.no_grad():
            expected = theirs(x)
    _load(mine, theirs)
    with torch.no_grad():
        assert torch.allclose(mine(x.transpose(1, 2)).transpose(1, 2), expected, atol=1e-4)
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    assert macs_of(whole, torch.zeros(1, d, T + 1)) == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


# ---- whole models ----------------------------------------------------------------------------------------------

# (image, patch, d, depth, heads, class-attention blocks, ratio)
CAIT_CASES = [(32, 8, 48, 2, 4, 2, 4.0), (24, 4, 32, 1, 2, 1, 2.0), (32, 16, 24, 3, 3, 3, 4.0)]


@pytest.mark.parametrize("image, patch, d, depth, heads, blocks, ratio", CAIT_CASES)
def test_cait_imports(image, patch, d, depth, heads, blocks, ratio):
    with torch.device("meta"):
        model = Cait(
            img_size=image,
            patch_size=patch,
            embed_dim=d,
            depth=depth,
            num_heads=heads,
            depth_token_only=blocks,
            mlp_ratio_token_only=ratio,
            num_classes=10,
        ).eval()
    text, numbers = ours(model, (image, image, 3))
    assert f"talkattn(heads={heads}, bias)" in text and "> cls" in text, text
    assert text.count("clsblock(") == 1 and f"clsblock(heads={heads}" in text, text  # one, or a repeat
    truth = torch_truth(model, (image, image, 3))
    assert {k: numbers[k] for k in ("params", "state", "macs", "out")} == {
        k: truth[k] for k in ("params", "state", "macs", "out")
    }


@pytest.mark.parametrize("tokens_norm", [False, True])
@pytest.mark.parametrize("image, patch, d, depth, heads, blocks, ratio", CAIT_CASES[:2])
def test_xcit_imports(image, patch, d, depth, heads, blocks, ratio, tokens_norm):
    with torch.device("meta"):
        model = Xcit(
            img_size=image,
            patch_size=patch if patch in (8, 16) else 8,
            embed_dim=d,
            depth=depth,
            num_heads=heads,
            cls_attn_layers=blocks,
            tokens_norm=tokens_norm,
            num_classes=10,
        ).eval()
    text, numbers = ours(model, (image, image, 3))
    assert "xcit" in text and ("tokensnorm" in text) == tokens_norm, text
    truth = torch_truth(model, (image, image, 3))
    assert {k: numbers[k] for k in ("params", "state", "macs", "out")} == {
        k: truth[k] for k in ("params", "state", "macs", "out")
    }


class OtherPatches(nn.Module):
    """CaiT's class-attention blocks, the second on other patches than the first's: its class token is not one the
    language writes before those patches (`cls`, or the block before's on the same patches)."""

    def __init__(self, d: int = 32):
        super().__init__()
        self.embed = nn.Conv2d(3, d, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.norm = nn.LayerNorm(d)
        self.blocks = nn.ModuleList([LayerScaleBlockClassAttn(d, 2) for _ in range(2)])

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        cls = self.blocks[0](x, self.cls_token.expand(x.shape[0], -1, -1))
        cls = self.blocks[1](self.norm(x), cls)
        return torch.cat((cls, x), dim=1)


def test_other_class_token_is_refused():
    with torch.device("meta"):
        model = OtherPatches().eval()
    with pytest.raises(paramsym.ParamsymError, match=r"gives a class token that .* uses otherwise than the next block"):
        paramsym.from_torch(model, (16, 16, 3))


class Returned(nn.Module):
    """One CaiT class-attention block, its class token returned (`token=False`: as it is, (N, 1, d), which the
    language's sequence cannot stand for; `token=True`: cls[:, 0], the language's `first`)."""

    def __init__(self, token: bool, d: int = 32):
        super().__init__()
        self.token = token
        self.embed = nn.Conv2d(3, d, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.block = LayerScaleBlockClassAttn(d, 2)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        cls = self.block(x, self.cls_token.expand(x.shape[0], -1, -1))
        return cls[:, 0] if self.token else cls


def test_class_token_returned():
    with torch.device("meta"):
        whole, taken = Returned(False).eval(), Returned(True).eval()
    with pytest.raises(paramsym.ParamsymError, match="gives a class token that the model returns as its output"):
        paramsym.from_torch(whole, (16, 16, 3))
    text, numbers = ours(taken, (16, 16, 3))
    assert "> cls\n  > clsblock(heads=2)\n  > first" in text, text
    truth = torch_truth(taken, (16, 16, 3))
    assert {k: numbers[k] for k in ("params", "state", "macs", "out")} == {
        k: truth[k] for k in ("params", "state", "macs", "out")
    }


def test_formulas():
    talk = paramsym.parse("input(T x d) > talkattn(heads=h, bias)").evaluate(T=196, d=384, h=8)
    assert talk["params"] == 4 * 384 * 384 + 384 + 2 * (8 * 8 + 8) + 3 * 384
    assert talk["macs"] == 196 * 4 * 384 * 384 + 196 * 196 * (2 * 384 + 2 * 8 * 8)
    block = paramsym.parse("input(T x d) > clsblock(heads=h, hidden=H)").evaluate(T=197, d=384, h=8, H=1536)
    assert block["params"] == 4 * 384 * 384 + 384 + 4 * 384 + 2 * 384 * 1536 + 1536 + 384 + 2 * 384
    assert block["macs"] == 197 * (2 * 384 * 384 + 2 * 384) + 2 * 384 * 384 + 2 * 384 * 1536


REFUSED = [
    ("input(64x32) > talkattn", "needs its number of heads"),
    ("input(64x32) > talkattn(heads=3)", "heads=3 does not divide the 32 channels"),
    ("input(8x8x32) > talkattn(heads=2)", "attends over the positions of a sequence"),
    ("input(64x32) > clsblock", "needs its number of heads"),
    ("input(64x32) > clsblock(heads=5)", "heads=5 does not divide the 32 channels"),
    ("input(8x8x32) > clsblock(heads=2)", "updates the class token of a sequence"),
    ("input(64x32) > clsblock(heads=2, tokensnorm)", "tokensnorm is XCiT's option"),
    ("input(64x32) > clsblock(heads=2, hidden=0)", "hidden"),
]


@pytest.mark.parametrize("text, message", REFUSED)
def test_refused(text, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(text).evaluate()
