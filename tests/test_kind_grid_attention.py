"""`attn(heads=h, grid=g)`, MaxViT's grid attention (a paramsym extension, docs/language.md "Attention"): each
position attends to the g x g positions of its grid, H/g rows and W/g columns apart, with a (2g-1)² x heads
relative-position table. Checked against torchvision's RelativePositionalMultiHeadAttention and
PartitionAttentionLayer (partition_type "window" is `window=p`, "grid" is `grid=p`), MaxVitLayer and the
maxvit_t model: params, BatchNorm state, output shape and MACs (FlopCounterMode on meta tensors: FLOPs / 2);
the export (torch_modules.WindowAttention with grid=True) computes what torchvision computes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.maxvit import (
    MaxVit,
    MaxVitLayer,
    PartitionAttentionLayer,
    RelativePositionalMultiHeadAttention,
)

import paramsym
from helpers.cli_helpers import run
from helpers.frameworks import torch_params
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import WindowAttention


def state(module: nn.Module) -> int:
    """BatchNorm's running statistics (the relative_position_index buffers are a constant table, not state)."""
    return sum(b.numel() for n, b in module.named_buffers() if n.rsplit(".", 1)[-1] in ("running_mean", "running_var"))


def measured(build, shape: tuple) -> tuple[int, int, int, list]:
    """(params, state, MACs, output shape without the batch) of a module built and run on meta."""
    with torch.device("meta"):
        module = build().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(torch.zeros(1, *shape, device="meta"))
    return torch_params(module), state(module), counter.get_total_flops() // 2, list(y.shape[1:])


def counted(program: str, channels_first: bool = False) -> tuple[int, int, int, list]:
    net = paramsym.parse(program)
    values = net.evaluate()
    shape = [int(n) for n in net.output_shape.dims()]
    if channels_first and len(shape) > 1:
        shape = shape[-1:] + shape[:-1]
    return values["params"], values["state"], values["macs"], shape


# ---- RelativePositionalMultiHeadAttention: one sequence of p² positions per window (or grid) ----------------

# (d, head_dim, p, partitions G): torchvision's attention on (B, G, p², d) is ours on a map of G windows
ATTENTION = [(64, 32, 7, 1), (64, 32, 7, 4), (32, 8, 4, 9), (24, 8, 3, 2), (16, 16, 2, 1), (12, 4, 5, 3)]


@pytest.mark.parametrize("d, e, p, G", ATTENTION)
@pytest.mark.parametrize("kind", ["window", "grid"])
def test_relative_positional_attention(d, e, p, G, kind):
    """G windows of p x p: a map of p x (G·p) positions, cut into windows or grids of p², counts the same."""
    program = f"input({p}x{G * p}x{d}) > attn(heads={d // e}, bias, {kind}={p})"
    params, _, macs, _ = counted(program)
    theirs = measured(lambda: RelativePositionalMultiHeadAttention(d, e, p * p), (G, p * p, d))
    assert (params, macs) == theirs[::2]
    assert params == 4 * d * d + 4 * d + (2 * p - 1) ** 2 * (d // e)


# ---- PartitionAttentionLayer: the partition, x + attn(ln(x)), x + mlp(ln(x)) ---------------------------------

# (H, C, head_dim, p, mlp ratio): a grid of p x p positions H/p apart (H = p: one grid, the window's)
PARTITION = [
    (56, 64, 32, 7, 4),
    (14, 64, 32, 7, 4),
    (7, 128, 32, 7, 4),
    (8, 16, 8, 4, 2),
    (12, 24, 8, 3, 4),
    (12, 24, 8, 4, 1),
    (6, 8, 4, 2, 3),
]


def partition_program(H: int, C: int, e: int, p: int, ratio: int, kind: str) -> str:
    return (
        f"input({H}x{H}x{C}) > res(ln > attn(heads={C // e}, bias, {kind}={p})) "
        f"> res(ln > dense(->{ratio * C}, bias) > gelu > dense(->{C}, bias))"
    )


def partition_layer(H: int, C: int, e: int, p: int, ratio: int, kind: str) -> PartitionAttentionLayer:
    return PartitionAttentionLayer(C, e, p, kind, (H, H), ratio, nn.GELU, nn.LayerNorm, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("H, C, e, p, ratio", PARTITION)
@pytest.mark.parametrize("kind", ["window", "grid"])
def test_partition_attention_layer(H, C, e, p, ratio, kind):
    program = partition_program(H, C, e, p, ratio, kind)
    want = measured(lambda: partition_layer(H, C, e, p, ratio, kind), (C, H, H))
    assert counted(program, channels_first=True) == want


def test_the_grid_counts_as_the_window_does():
    """Grid and window attention differ in which positions meet, not in what is counted."""
    grid = paramsym.parse("input(H x W x d) > attn(heads=h, bias, grid=g)")
    window = paramsym.parse("input(H x W x d) > attn(heads=h, bias, window=g)")
    assert grid.params == window.params and grid.macs == window.macs and grid.kv_cache == window.kv_cache
    values = {"H": 56, "W": 56, "d": 64, "h": 2, "g": 7}
    got = grid.evaluate(**values)
    T = 56 * 56
    assert got["params"] == 4 * 64 * 64 + 4 * 64 + 13 * 13 * 2
    assert got["macs"] == T * 4 * 64 * 64 + 2 * T * 49 * 64
    assert got["kv_cache"] == 2 * T * 64


# ---- MaxVitLayer: MBConv with squeeze-excitation, then block and grid attention ---------------------------


LAYER = """
let p = {p}
def mbconv(c, s) = bn > conv1x1(->4c) > bn > gelu
                   > conv3x3(->4c, stride=s, pad=1, groups=4c) > bn > gelu
                   > mul(id | gap > dense(->c/4, bias) > silu > dense(->4c, bias) > sigmoid)
                   > conv1x1(->c, bias)
def mlp(c) = res(ln > dense(->4c, bias) > gelu > dense(->c, bias))
def attend(c, h) = res(ln > attn(heads=h, bias, window=p)) > mlp(c)
                   > res(ln > attn(heads=h, bias, grid=p)) > mlp(c)
input({H}x{H}x{cin})
  > {first}
  > attend({c}, {h})
"""


@pytest.mark.parametrize(
    "H, cin, c, e, p, stride", [(28, 32, 64, 32, 7, 2), (14, 64, 64, 32, 7, 1), (16, 8, 16, 8, 4, 2)]
)
def test_maxvit_layer(H, cin, c, e, p, stride):
    if stride == 2:
        first = f"res(mbconv({c}, 2) | avgpool3x3(stride=2, pad=1) > conv1x1(->{c}, bias))"
    else:
        first = f"res(mbconv({c}, 1))"
    program = LAYER.format(p=p, H=H, cin=cin, c=c, h=c // e, first=first)
    side = (H - 1) // stride + 1

    def build():
        bn = nn.BatchNorm2d
        return MaxVitLayer(cin, c, 0.25, 4, stride, bn, nn.GELU, e, 4, 0.0, 0.0, 0.0, p, (side, side))

    assert counted(program, channels_first=True) == measured(build, (cin, H, H))


# ---- the traced import: a PartitionAttentionLayer in any model is read whole -------------------------------


@pytest.mark.parametrize("kind", ["window", "grid"])
@pytest.mark.parametrize("H, C, e, p, ratio", [(14, 64, 32, 7, 4), (8, 16, 8, 4, 2)])
def test_partition_attention_layer_imports(kind, H, C, e, p, ratio):
    def build():
        return nn.Sequential(partition_layer(H, C, e, p, ratio, kind))

    text = paramsym.from_torch(build(), (H, H, C))
    assert f"attn(heads={C // e}, bias, {kind}={p})" in text, text
    assert counted(text, channels_first=True) == measured(build, (C, H, H))


def test_maxvit_layer_imports_by_tracing():
    """A MaxVitLayer in a model of one's own: the MBConv traced, both attention layers read whole."""

    def build():
        return MaxVitLayer(32, 64, 0.25, 4, 2, nn.BatchNorm2d, nn.GELU, 32, 4, 0.0, 0.0, 0.1, 7, (14, 14))

    text = paramsym.from_torch(build(), (28, 28, 32))
    assert "window=7" in text and "grid=7" in text, text
    assert counted(text, channels_first=True) == measured(build, (32, 28, 28))


@pytest.mark.parametrize("kind", ["window", "grid"])
def test_partition_attention_layer_on_another_map_is_refused(kind):
    """torchvision fixes the partition when it builds the layer: on another map its forward fails (and were it
    to run, the kind would refuse the map it was not built for)."""
    with pytest.raises(paramsym.ParamsymError, match="does not run on a 28x28x64 input"):
        paramsym.from_torch(nn.Sequential(partition_layer(14, 64, 32, 7, 4, kind)), (28, 28, 64))


def test_partition_attention_reader_refuses_another_map():
    from paramsym.kinds.attention import partition_attention

    with pytest.raises(paramsym.ParamsymError, match="built for a 14x14 map with grid 7, but it gets 28x28"):
        partition_attention(partition_layer(14, 64, 32, 7, 4, "grid"), "layer", (28, 28))
    assert partition_attention(partition_layer(14, 64, 32, 7, 4, "grid"), "layer", (14, 14))[1:] == (2, 7, 256, "gelu")


# ---- the export: torch_modules.WindowAttention(grid=True) computes torchvision's grid attention -----------


@pytest.mark.parametrize("H, W, d, h, g", [(14, 14, 32, 2, 7), (8, 8, 16, 4, 4), (6, 6, 8, 1, 3), (4, 4, 8, 2, 2)])
def test_export_computes_torchvisions_grid_attention(H, W, d, h, g):
    network = paramsym.parse(f"input({H}x{W}x{d}) > attn(heads={h}, bias, grid={g})")
    whole = paramsym.to_torch(network).eval()
    (ours,) = [m for m in whole.modules() if isinstance(m, WindowAttention)]
    assert ours.grid and torch_params(whole) == network.evaluate()["params"]
    theirs = RelativePositionalMultiHeadAttention(d, d // h, g * g).eval()
    with torch.no_grad():
        for name in ("weight", "bias"):
            getattr(theirs.to_qkv, name).copy_(torch.randn_like(getattr(theirs.to_qkv, name)))
            getattr(theirs.merge, name).copy_(torch.randn_like(getattr(theirs.merge, name)))
        theirs.relative_position_bias_table.copy_(torch.randn_like(theirs.relative_position_bias_table))
        ours.qkv.weight.copy_(theirs.to_qkv.weight)
        ours.qkv.bias.copy_(theirs.to_qkv.bias)
        # torchvision scales the keys by d^-0.5 (not the head width's): the same, moved onto our queries
        scale = (d // h) ** 0.5 / d**0.5
        ours.qkv.weight[:d] *= scale
        ours.qkv.bias[:d] *= scale
        ours.proj.weight.copy_(theirs.merge.weight)
        ours.proj.bias.copy_(theirs.merge.bias)
        ours.relative_position_bias_table.copy_(theirs.relative_position_bias_table)
    x = torch.randn(2, d, H, W)
    # torchvision's grid partition (PartitionAttentionLayer with partition_type="grid"): windows of the
    # H/g x W/g cells, swapped so that each sequence is the g x g positions of one grid
    P = H // g
    cells = x.reshape(2, d, g, P, W // P, P).permute(0, 2, 4, 3, 5, 1).reshape(2, g * (W // P), P * P, d)
    with torch.no_grad():
        y = theirs(cells.swapaxes(-2, -3)).swapaxes(-2, -3)
        want = y.reshape(2, g, W // P, P, P, d).permute(0, 5, 1, 3, 2, 4).reshape(2, d, H, W)
        got = whole(x)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-3), (got - want).abs().max()
    with torch.device("meta"), torch.no_grad(), FlopCounterMode(display=False) as counter:
        paramsym.to_torch(network).eval()(torch.zeros(1, d, H, W))
    assert counter.get_total_flops() // 2 == network.evaluate()["macs"]


def test_grid_is_not_the_window():
    """With the same weights, grid and window attention on a map of several windows give different outputs."""
    grid = paramsym.to_torch(paramsym.parse("input(8x8x16) > attn(heads=2, bias, grid=4)")).eval()
    window = paramsym.to_torch(paramsym.parse("input(8x8x16) > attn(heads=2, bias, window=4)")).eval()
    window.load_state_dict(grid.state_dict())
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(grid(x), window(x))


@settings(max_examples=20, deadline=None)
@given(
    g=st.integers(1, 4),
    rows=st.integers(1, 3),
    cols=st.integers(1, 3),
    groups=st.integers(1, 2),
    per_group=st.integers(1, 2),
    e=st.integers(1, 3),
    bias=st.booleans(),
)
def test_property_exported_grid_counts_and_imports_back(g, rows, cols, groups, per_group, e, bias):
    heads = groups * per_group
    d = 2 * heads
    text = (
        f"input({rows * g}x{cols * g}x{d}) > attn(heads={heads}, kv_heads={groups}, head_dim={e}"
        f"{', bias' if bias else ''}, grid={g})"
    )
    network = paramsym.parse(text)
    module = paramsym.to_torch(network).eval()
    x = torch.randn(1, d, rows * g, cols * g)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        assert module(x).shape == x.shape
    values = network.evaluate()
    assert torch_params(module) == values["params"] and counter.get_total_flops() // 2 == values["macs"], text
    imported, again = import_back(network, module)
    assert f"grid={g}" in imported and again.evaluate() == values, imported


# ---- maxvit_t ---------------------------------------------------------------------------------------------


def maxvit_t():
    import torchvision

    with torch.device("meta"):
        return torchvision.models.maxvit_t()


def test_maxvit_t_imports_exactly():
    """30,919,624 parameters, 47,616 running statistics, 1000 outputs and 5,558,046,720 MACs (torchvision's
    5.56 GFLOPS): every number torchvision's model gives, on meta."""
    model = maxvit_t()
    text = paramsym.from_torch(model, (224, 224, 3))
    assert "attn(heads=h, bias, window=p)" in text and "attn(heads=h, bias, grid=p)" in text
    assert max(len(line) for line in text.splitlines()) < 80, text
    assert "(layer(256, 8)) * 4" in text
    net = paramsym.parse(text)
    values = net.evaluate()
    assert values["params"] == torch_params(model) == 30919624
    assert values["state"] == state(model) == 47616
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = model.eval()(torch.zeros(1, 3, 224, 224, device="meta"))
    assert [int(n) for n in net.output_shape.dims()] == list(y.shape[1:]) == [1000]
    assert values["macs"] == counter.get_total_flops() // 2 == 5558046720


@pytest.mark.parametrize(
    "kwargs, size",
    [
        (dict(stem_channels=32, block_channels=[32, 64], block_layers=[1, 3], head_dim=16), 112),
        (dict(stem_channels=16, block_channels=[16, 32, 64], block_layers=[2, 1, 2], head_dim=8, mlp_ratio=2), 128),
        (dict(stem_channels=24, block_channels=[48], block_layers=[2], head_dim=12, expansion_ratio=2), 56),
    ],
)
def test_other_maxvits(kwargs, size):
    """Other widths, depths, head widths, ratios and partition sizes: every number equal too."""
    partition = 7 if size in (112, 56) else 4
    with torch.device("meta"):
        model = MaxVit(
            input_size=(size, size), partition_size=partition, stochastic_depth_prob=0.1, num_classes=10, **kwargs
        )
    text = paramsym.from_torch(model, (size, size, 3))
    assert max(len(line) for line in text.splitlines()) < 80, text
    values = paramsym.parse(text).evaluate()
    assert (values["params"], values["state"]) == (torch_params(model), state(model))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, size, size, device="meta"))
    assert values["macs"] == counter.get_total_flops() // 2, text


def test_maxvit_at_another_size_is_refused_by_name():
    """torchvision fixes MaxViT's partitions at construction: another input size does not run."""
    with pytest.raises(paramsym.ParamsymError) as info:
        paramsym.from_torch(maxvit_t(), (256, 256, 3))
    assert "blocks.0.layers.0.window_attention" in str(info.value) and "built for a 56x56 map" in str(info.value)


def test_maxvit_variant_outside_the_layout_is_refused():
    model = maxvit_t()
    model.blocks[1].layers[1].layers.grid_attention.mlp_layer[2] = nn.Tanh()
    with pytest.raises(paramsym.ParamsymError, match="its layers differ"):
        paramsym.from_torch(model, (224, 224, 3))


# ---- mistakes, explain, exports ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "program, words, at",
    [
        ("input(8x8x16) > attn(heads=2, window=4, grid=4)", "window= and grid= are two kinds of attention", "grid"),
        ("input(10x16) > attn(heads=2, grid=2)", "grid= attends across a g x g grid of a map", "grid"),
        ("input(10x10x16) > attn(heads=2, grid=4)", "grid=4 does not divide the map's size 10", "grid"),
        ("input(8x8x16) > attn(heads=2, grid=0)", "must be a positive whole number, not 0", "grid"),
        ("input(8x8x16) > attn(heads=2, grid=1.5)", "must be a positive whole number, not 3/2", "grid"),
        ("input(8x8x16) > attn(heads=2, grid=2x2)", "grid= takes one value", "grid"),
        ("input(8x8x16) > attn(heads=2, grid=4, shift)", "grid attention (grid=g, MaxViT's) has no shifted", "shift"),
        ("input(8x8x16) > attn(heads=2, grid=4, pad)", "has no padding", "pad"),
        ("input(8x8x16) > attn(heads=2, grid=4, cpb=8)", "grid attention (grid=g) has the learned table", "cpb"),
        ("input(8x8x16) > attn(heads=2, grid=4, source=3x4)", "it takes no source=", "source"),
        ("input(8x8x16) > attn(heads=3, grid=4)", "heads=3 does not divide the width 16", "heads"),
    ],
)
def test_mistakes(program, words, at):
    with pytest.raises(paramsym.ParamsymError) as info:
        paramsym.parse(program)
    assert words in str(info.value)
    assert f"line 1, column {program.index(at) + 1}" in str(info.value)


def test_symbolic_grid_waits_for_values():
    net = paramsym.parse("input(H x H x 16) > attn(heads=2, grid=g)")
    with pytest.raises(paramsym.ParamsymError, match="does not divide"):
        net.evaluate(H=10, g=4)
    assert net.evaluate(H=12, g=4)["params"] == 4 * 256 + 49 * 2


def test_explain():
    result = run("explain", "input(14x28x64) > attn(heads=2, bias, grid=7)")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for words in (
        "across a 7x7 grid of strided positions",
        "attends to the 49 positions of its 7x7 grid, 2 rows and 4 columns apart",
        "169·2 = 338 parameters",
        "the scores against the 49 positions of its grid",
    ):
        assert words in text, text


@pytest.mark.parametrize(
    "text, to, words",
    [
        ("input(8x8x16) > attn(heads=2, grid=4, causal)", "torch", "causal masking inside grids"),
        ("input(8x8x16) > attn(heads=2, grid=4)", "keras", "grid attention (MaxViT) has no Keras layer"),
    ],
)
def test_export_refusals(text, to, words):
    result = run("export", text, "--to", to)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
