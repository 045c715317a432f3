"""`attn(heads=h, map=HxW, pos_mlp=m)` and `attn(..., tie=NAME)`: attention over all the positions of a map (or of
the sequence that lays one out) with timm's RelPosMlp bias over the map's (2H - 1)(2W - 1) relative positions, and
one such bias computed once and used by later attention layers (timm's ViT-RelPos, `shared_rel_pos`;
docs/language.md, "Attention over a whole map with a position-bias MLP"). Checked against timm's RelPosAttention
and VisionTransformerRelPos at several sizes (params, output shape, MACs by FlopCounterMode), imported whole, and
the export (torch_modules.GroupedQueryAttention with pos_mlp=, share_position_bias) computes what timm's computes,
counts as the program does and imports back."""

from __future__ import annotations

import copy

import pytest
import torch
from timm.layers.pos_embed_rel import RelPosMlp
from timm.models.vision_transformer_relpos import RelPosAttention, VisionTransformerRelPos
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.imported import ours, torch_truth
from helpers.round_trip import import_back
from paramsym.errors import ParamsymError
from paramsym.frameworks.export import torch_source
from paramsym.frameworks.torch_modules import GroupedQueryAttention


@pytest.fixture(autouse=True)
def _seeded():
    """Random weights and inputs the same on every run (a random draw once failed float32's tolerance)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


def counted(program: str) -> dict:
    values = paramsym.parse(program).evaluate()
    return {"params": values["params"], "macs": values["macs"]}


def macs_of(module: nn.Module, x: torch.Tensor) -> int:
    """FlopCounterMode's MACs on a meta copy (on the CPU, SDPA with a bias runs a kernel it does not count)."""
    meta = copy.deepcopy(module).to("meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta(x.to("meta"))
    return counter.get_total_flops() // 2


def relpos(H: int, W: int, heads: int, hidden: int, cls: bool = False) -> RelPosMlp:
    return RelPosMlp(window_size=(H, W), num_heads=heads, hidden_dim=hidden, prefix_tokens=int(cls))


def options(heads: int, bias: bool, H: int, W: int) -> str:
    return f"heads={heads}, {'bias' if bias else 'projbias'}, map={H}x{W}"


# (H, W, d, heads, hidden, qkv bias)
CASES = [
    (14, 14, 96, 3, 512, False),
    (7, 9, 64, 4, 128, True),
    (4, 6, 24, 2, 16, False),
    (10, 3, 48, 1, 32, True),
]


@pytest.mark.parametrize("H, W, d, heads, hidden, bias", CASES)
@pytest.mark.parametrize("cls", [False, True])
def test_counts_as_timm(H, W, d, heads, hidden, bias, cls):
    theirs = RelPosAttention(
        d, num_heads=heads, qkv_bias=bias, rel_pos_cls=lambda num_heads, **_: relpos(H, W, num_heads, hidden, cls)
    ).eval()
    T = H * W + cls
    x = torch.zeros(1, T, d)
    assert theirs(x).shape == (1, T, d)
    expected = {"params": torch_params(theirs), "macs": macs_of(theirs, x)}
    flag = ", cls" if cls else ""
    assert counted(f"input({T}x{d}) > attn({options(heads, bias, H, W)}, pos_mlp={hidden}{flag})") == expected
    if not cls:  # on the map itself the bias is over the map's own positions: the same counts
        own = f"input({H}x{W}x{d}) > attn(heads={heads}, {'bias' if bias else 'projbias'}, pos_mlp={hidden})"
        assert counted(own) == expected


class Shared(nn.Module):
    """timm's shared_rel_pos: one RelPosMlp whose bias is computed once and given to every attention."""

    def __init__(self, H, W, d, heads, hidden, bias, depth, cls=False):
        super().__init__()
        self.rel = relpos(H, W, heads, hidden, cls)
        self.blocks = nn.ModuleList(RelPosAttention(d, num_heads=heads, qkv_bias=bias) for _ in range(depth))

    def forward(self, x):
        shared = self.rel.get_bias()
        for block in self.blocks:
            x = block(x, shared_rel_pos=shared)
        return x


@pytest.mark.parametrize("H, W, d, heads, hidden, bias", CASES)
@pytest.mark.parametrize("depth", [1, 3])
def test_shared_counts_as_timm(H, W, d, heads, hidden, bias, depth):
    theirs = Shared(H, W, d, heads, hidden, bias, depth).eval()
    x = torch.zeros(1, H * W, d)
    expected = {"params": torch_params(theirs), "macs": macs_of(theirs, x)}
    first = f"attn({options(heads, bias, H, W)}, pos_mlp={hidden}) as rp"
    rest = f" > attn({options(heads, bias, H, W)}, tie=rp)" * (depth - 1)
    assert counted(f"input({H * W}x{d}) > {first}{rest}") == expected


# (image H, W, patch, d, depth, heads, hidden, shared, class token)
MODELS = [
    (64, 64, 16, 48, 2, 3, 64, False, False),
    (48, 80, 8, 32, 2, 2, 32, True, False),
    (32, 64, 16, 24, 3, 1, 16, True, True),
    (32, 48, 8, 16, 2, 2, 8, False, True),
]


@pytest.mark.parametrize("H, W, patch, d, depth, heads, hidden, shared, cls", MODELS)
def test_imports_vit_relpos_exactly(H, W, patch, d, depth, heads, hidden, shared, cls):
    model = VisionTransformerRelPos(
        img_size=(H, W),
        patch_size=patch,
        embed_dim=d,
        depth=depth,
        num_heads=heads,
        rel_pos_dim=hidden,
        shared_rel_pos=shared,
        class_token=cls,
        global_pool="token" if cls else "avg",
        num_classes=10,
    ).eval()
    text, numbers = ours(model, (H, W, 3))
    grid = f"map={H // patch}x{W // patch}"
    assert grid in text and f"pos_mlp={hidden}" in text, text
    assert ("tie=sharedpos1" in text) == (shared and depth > 1), text
    assert (", cls)" in text) == cls, text
    truth = torch_truth(model, (H, W, 3))
    assert numbers == truth


def test_table_bias_stays_refused():
    model = VisionTransformerRelPos(
        img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2, rel_pos_type="bias"
    ).eval()
    with pytest.raises(ParamsymError, match=r"blocks\.0\.attn.*RelPosAttention.*RelPosBias"):
        paramsym.from_torch(model, (32, 32, 3))


def copy_timm(mine: GroupedQueryAttention, theirs: RelPosAttention, mlp: nn.Module | None) -> None:
    """Random weights in timm's module, copied into ours (qkv split into q, k, v)."""
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        d = theirs.qkv.in_features
        for i, name in enumerate(("q", "k", "v")):
            getattr(mine, name).weight.copy_(theirs.qkv.weight[i * d : (i + 1) * d])
            if theirs.qkv.bias is not None:
                getattr(mine, name).bias.copy_(theirs.qkv.bias[i * d : (i + 1) * d])
        mine.o.weight.copy_(theirs.proj.weight)
        mine.o.bias.copy_(theirs.proj.bias)
        if mlp is not None:
            for p in mlp.parameters():
                p.copy_(torch.randn_like(p) * 0.3)
            mine.pos_mlp[0].load_state_dict(mlp.fc1.state_dict())
            mine.pos_mlp[2].load_state_dict(mlp.fc2.state_dict())


@pytest.mark.parametrize("H, W, d, heads, hidden, bias", CASES[1:])
@pytest.mark.parametrize("cls", [False, True])
def test_export_computes_timms(H, W, d, heads, hidden, bias, cls):
    T, flag = H * W + cls, ", cls" if cls else ""
    network = paramsym.parse(f"input({T}x{d}) > attn({options(heads, bias, H, W)}, pos_mlp={hidden}{flag})")
    whole = paramsym.to_torch(network).eval()
    (mine,) = [m for m in whole.modules() if isinstance(m, GroupedQueryAttention)]
    theirs = RelPosAttention(
        d, num_heads=heads, qkv_bias=bias, rel_pos_cls=lambda num_heads, **_: relpos(H, W, num_heads, hidden, cls)
    ).eval()
    copy_timm(mine, theirs, theirs.rel_pos.mlp)
    # in float64 (timm computes its offsets in float32: differences of about 1e-5 remain), weights seeded
    mine.double(), theirs.double()
    x = torch.randn(2, T, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(mine(x.transpose(1, 2)).transpose(1, 2), theirs(x), rtol=1e-4, atol=1e-3)
    mine.float(), theirs.float()
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    assert macs_of(whole, torch.zeros(1, d, T)) == values["macs"]
    text, back = import_back(network)
    assert back.evaluate() == values, text


@pytest.mark.parametrize("H, W, d, heads, hidden, bias", CASES[1:])
@pytest.mark.parametrize("cls", [False, True])
def test_shared_export_computes_timms(H, W, d, heads, hidden, bias, cls):
    T, flag = H * W + cls, ", cls" if cls else ""
    first = f"attn({options(heads, bias, H, W)}, pos_mlp={hidden}{flag}) as rp"
    network = paramsym.parse(f"input({T}x{d}) > {first} > attn({options(heads, bias, H, W)}, tie=rp{flag})")
    whole = paramsym.to_torch(network).eval()
    mine = [m for m in whole.modules() if isinstance(m, GroupedQueryAttention)]
    theirs = Shared(H, W, d, heads, hidden, bias, 2, cls).eval()
    copy_timm(mine[0], theirs.blocks[0], theirs.rel.mlp)
    copy_timm(mine[1], theirs.blocks[1], None)
    # in float64 (timm computes its offsets in float32: differences of about 1e-5 remain), weights seeded
    whole.double(), theirs.double()
    x = torch.randn(2, T, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(whole(x.transpose(1, 2)).transpose(1, 2), theirs(x), rtol=1e-4, atol=1e-3)
    whole.float(), theirs.float()
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    assert macs_of(whole, torch.zeros(1, d, T)) == values["macs"]
    source = torch_source(network)
    assert ".share_position_bias(shared_rp)" in source
    with pytest.raises(ParamsymError, match="position bias that another module computes"):
        import_back(network)


@pytest.mark.parametrize(
    "program, message",
    [
        ("input(196x96) > attn(heads=3, pos_mlp=64)", "give the map with map=HxW"),
        ("input(196x96) > attn(heads=3, map=14x15, pos_mlp=64)", "210 positions, but the sequence has 196"),
        ("input(14x14x96) > attn(heads=3, map=14x14, pos_mlp=64)", "the input is a map already"),
        ("input(196x96) > attn(heads=3, map=14x14)", "it needs one of them"),
        ("input(196x96) > attn(heads=3, map=14x14, pos_mlp=64, sr=2)", "sr= does not go with"),
        ("input(196x96) > attn(heads=3, map=14x14, pos_mlp=64, per_pair)", "'per_pair' does not go with"),
        ("input(196x96) > attn(heads=3, map=14x14, tie=rp)", "no layer before this one is named 'rp'"),
        ("input(196x96) > ln as rp > attn(heads=3, map=14x14, tie=rp)", "computes no position bias"),
        (
            "input(196x96) > attn(heads=3, map=14x14, pos_mlp=8) as rp > attn(heads=3, map=14x14, tie=rp, pos_mlp=8)",
            "no pos_mlp= of its own",
        ),
        (
            "input(196x96) > attn(heads=3, map=14x14, pos_mlp=8) as rp > attn(heads=2, map=14x14, tie=rp)",
            "has 3 as its heads, this attention 2",
        ),
        (
            "input(196x96) > attn(heads=3, map=14x14, pos_mlp=8) as rp > attn(heads=3, map=7x28, tie=rp)",
            "has 14 as its side of the map, this attention 7",
        ),
        (
            "input(14x14x96) > attn(heads=3, window=7, pos_mlp=8) as rp > attn(heads=3, tie=rp)",
            "computes no position bias of its own over a whole map",
        ),
        ("input(196x96) > attn(heads=3, map=14x14, tie=2)", "tie= takes the name of an attention layer"),
        ("input(196x96) > attn(heads=3, map=14x14, pos_mlp=8, cls)", "196 positions after a class token, but the"),
        ("input(14x14x96) > attn(heads=3, pos_mlp=8, cls)", "on a map there is none"),
        ("input(197x96) > attn(heads=3, cls)", "cls belongs to pooling attention"),
        ("input(14x14x96) > attn(heads=3, window=7, pos_mlp=8, map=14x14)", "the position bias is the window's"),
        ("input(196x96) > attn(heads=3, map=14x14, pos_mlp=8, causal)", "'causal' does not go with"),
        (
            "input(197x96) > attn(heads=3, map=14x14, pos_mlp=8, cls) as rp > attn(heads=3, map=14x14, tie=rp, cls) "
            "> attn(heads=3, map=14x14, pos_mlp=8, cls) > attn(heads=3, map=14x14, tie=rp)",
            "map=14x14 has 196 positions, but the sequence has 197",
        ),
    ],
)
def test_refusals(program, message):
    with pytest.raises(ParamsymError, match=message):
        paramsym.parse(program).evaluate()


@pytest.mark.parametrize("H, W, d, heads, hidden, bias", CASES[1:])
def test_export_on_a_map_counts_as_the_program(H, W, d, heads, hidden, bias):
    network = paramsym.parse(
        f"input({H}x{W}x{d}) > attn(heads={heads}, {'bias' if bias else 'projbias'}, pos_mlp={hidden})"
    )
    whole = paramsym.to_torch(network).eval()
    values = network.evaluate()
    assert torch_params(whole) == values["params"]
    assert macs_of(whole, torch.zeros(1, d, H, W)) == values["macs"]
    assert whole(torch.randn(2, d, H, W)).shape == (2, d, H, W)
    text, back = import_back(network)
    assert back.evaluate() == values, text


def test_keras_export_refused():
    network = paramsym.parse("input(16x8) > attn(heads=2, bias, map=4x4, pos_mlp=8)")
    with pytest.raises(ParamsymError, match="position-bias MLP over the whole map"):
        paramsym.to_keras(network)
