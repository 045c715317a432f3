"""`gcstage(depth=n, heads=h, window=w, mlp=r)`: GCViT's stage body read whole (a paramsym extension,
docs/language.md "Global context stage"), checked against timm's gcvit.GlobalContextVitStage at several sizes (params,
output shape, MACs by FlopCounterMode on meta tensors), imported whole (with its downsample written before it), and
the export (torch_modules.GlobalContextStage) computing what timm computes with the same weights."""

from __future__ import annotations

import pytest
import torch
from timm.models import gcvit
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.round_trip import import_back
from paramsym.errors import ParamsymError
from paramsym.frameworks.torch_modules import GlobalContextStage


def stage(H, W, d, n, h, w, r, down=False, ls=False):
    return gcvit.GlobalContextVitStage(
        d,
        n,
        h,
        (H, W),
        (w, w),
        downsample=down,
        mlp_ratio=r,
        layer_scale=1e-5 if ls else None,
        norm_layer=gcvit.LayerNorm2d,
        norm_layer_cl=nn.LayerNorm,
    ).eval()


def measured(module: nn.Module, shape: tuple) -> tuple[int, int, list]:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(torch.zeros(1, *shape, device="meta"))
    return sum(p.numel() for p in module.parameters()), counter.get_total_flops() // 2, [*y.shape[2:], y.shape[1]]


def counted(program: str) -> tuple[int, int, list]:
    net = paramsym.parse(program)
    values = net.evaluate()
    assert values["state"] == 0
    return values["params"], values["macs"], [int(n) for n in net.output_shape.dims()]


def text(n, h, w, r, ls=False) -> str:
    return f"gcstage(depth={n}, heads={h}, window={w}" + (f", mlp={r}" if r != 4 else "") + (", ls)" if ls else ")")


# (H, W, d, depth, heads, window, mlp): the generator with 3, 2, 1 and no poolings, odd and even depths
CASES = [
    (56, 56, 64, 2, 2, 7, 3),
    (28, 28, 32, 3, 2, 7, 4),
    (14, 14, 48, 4, 3, 14, 2),
    (16, 16, 16, 2, 2, 4, 3),
    (7, 7, 24, 1, 2, 7, 3),
    (32, 32, 40, 2, 5, 8, 4),
]


@pytest.mark.parametrize("H, W, d, n, h, w, r", CASES)
def test_counts_as_timms_stage(H, W, d, n, h, w, r):
    with torch.device("meta"):
        module = stage(H, W, d, n, h, w, r)
    assert counted(f"input({H}x{W}x{d}) > {text(n, h, w, r)}") == measured(module, (d, H, W))


@pytest.mark.parametrize("H, W, d, n, h, w, r", CASES)
def test_imports_timms_stage(H, W, d, n, h, w, r):
    with torch.device("meta"):
        module = stage(H, W, d, n, h, w, r)
    program = paramsym.from_torch(nn.Sequential(module), (H, W, d))  # a root module is traced into, not read
    assert text(n, h, w, r) in " ".join(program.split()), program
    assert counted(program) == measured(module, (d, H, W))


@pytest.mark.parametrize("H, W, d, n, h, w, r", [(56, 56, 32, 2, 2, 14, 3), (28, 28, 16, 3, 2, 7, 4)])
def test_imports_timms_stage_with_its_downsample(H, W, d, n, h, w, r):
    with torch.device("meta"):
        module = stage(H, W, d, n, h, w, r, down=True)
    program = paramsym.from_torch(nn.Sequential(module), (H, W, d))
    assert f"conv3x3(->{2 * d}, stride=2, pad=1) > ln > {text(n, h, w, r)}" in " ".join(program.split()), program
    assert counted(program) == measured(module, (d, H, W))


def test_whole_small_gcvit_imports_exactly():
    with torch.device("meta"):
        model = gcvit.GlobalContextVit(
            depths=(1, 2), num_heads=(2, 4), embed_dim=16, img_size=64, window_ratio=(8, 8), mlp_ratio=3.0
        ).eval()
    program = paramsym.from_torch(model, (64, 64, 3))
    assert program.count("gcstage(") == 2
    net = paramsym.parse(program)
    values = net.evaluate()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = model(torch.zeros(1, 3, 64, 64, device="meta"))
    assert values["params"] == sum(p.numel() for p in model.parameters())
    assert values["macs"] == counter.get_total_flops() // 2
    assert [int(n) for n in net.output_shape.dims()] == list(y.shape[1:])


@pytest.mark.parametrize("H, W, d, n, h, w, r", CASES[2:])
def test_export_computes_what_timm_computes(H, W, d, n, h, w, r):
    torch.manual_seed(0)
    theirs = stage(H, W, d, n, h, w, r)
    ours = paramsym.to_torch(paramsym.parse(f"input({H}x{W}x{d}) > {text(n, h, w, r)}")).eval()
    theirs_state = theirs.state_dict()
    with torch.no_grad():
        for value in theirs_state.values():
            value.copy_(torch.randn_like(value) * 0.3)
    ours_params = dict(ours.named_parameters())
    # the export's parameters are timm's, in timm's order, under its own prefix
    mine = [p for _, p in ours_params.items()]
    assert [tuple(p.shape) for p in mine] == [tuple(p.shape) for p in theirs.parameters()]
    with torch.no_grad():
        for p, q in zip(mine, theirs.parameters(), strict=True):
            p.copy_(q)
    x = torch.randn(2, d, H, W)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-4)


@pytest.mark.parametrize("H, W, d, n, h, w, r", CASES[::2])
def test_export_counts_the_same_and_imports_back(H, W, d, n, h, w, r):
    program = f"input({H}x{W}x{d}) > {text(n, h, w, r)}"
    network = paramsym.parse(program)
    with torch.device("meta"):
        module = GlobalContextStage(d, n, h, w, (H, W), mlp=r).eval()
    assert counted(program) == measured(module, (d, H, W))
    back, _ = import_back(network)
    assert text(n, h, w, r) in back
    assert counted(back) == counted(program)


@pytest.mark.parametrize(
    "program, message",
    [
        ("input(56x56x64) > gcstage(heads=2, window=7)", "needs depth="),
        ("input(20x30x8) > gcstage(depth=2, heads=2, window=4)", "do not tile"),
        ("input(14x14x30) > gcstage(depth=2, heads=4, window=14)", "heads=4 do not divide"),
        ("input(8x16x16) > gcstage(depth=2, heads=2, window=4)", "to 4x8, not to the window's 4x4"),
        ("input(196x64) > gcstage(depth=2, heads=2, window=7)", "map of known sides"),
    ],
)
def test_refuses(program, message):
    with pytest.raises(ParamsymError, match=message):
        paramsym.parse(program).evaluate()


# (H, W, d, depth, heads, window, mlp) with layer scales (gcvit_small, gcvit_base)
SCALED = [(28, 28, 32, 3, 2, 7, 3), (14, 14, 48, 2, 3, 7, 2)]


@pytest.mark.parametrize("H, W, d, n, h, w, r", SCALED)
def test_layer_scales_count_and_import_as_timms(H, W, d, n, h, w, r):
    with torch.device("meta"):
        module = stage(H, W, d, n, h, w, r, ls=True)
    expected = measured(module, (d, H, W))
    assert counted(f"input({H}x{W}x{d}) > {text(n, h, w, r, ls=True)}") == expected
    program = paramsym.from_torch(nn.Sequential(module), (H, W, d))
    assert text(n, h, w, r, ls=True) in " ".join(program.split()), program
    assert counted(program) == expected


@pytest.mark.parametrize("H, W, d, n, h, w, r", SCALED)
def test_export_with_layer_scales_computes_what_timm_computes(H, W, d, n, h, w, r):
    torch.manual_seed(0)
    theirs = stage(H, W, d, n, h, w, r, ls=True)
    network = paramsym.parse(f"input({H}x{W}x{d}) > {text(n, h, w, r, ls=True)}")
    ours = paramsym.to_torch(network).eval()
    mine = list(ours.parameters())
    assert [tuple(p.shape) for p in mine] == [tuple(p.shape) for p in theirs.parameters()]
    with torch.no_grad():
        for p, q in zip(mine, theirs.parameters(), strict=True):
            q.copy_(torch.randn_like(q) * 0.3)
            p.copy_(q)
    x = torch.randn(2, d, H, W)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-4)
    back, _ = import_back(network)
    assert text(n, h, w, r, ls=True) in back
