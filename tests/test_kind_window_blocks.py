"""Window attention's position-bias forms and channel attention (paramsym extensions, docs/language.md
"Attention"), and timm's blocks read whole with them: `relpos=none` (DaViT's SpatialBlock, NesT's levels),
`relpos=offsets` (TinyViT's attention biases), `relpos=axes` (SAM's decomposed relative positions),
`channels` (DaViT's channel attention), and `posembed(H·W)` on a map (NesT's pos_embed). Each is checked
against the real timm module at several sizes: params, BatchNorm state, output shape and MACs (FlopCounterMode
on meta tensors: FLOPs / 2); the exports (torch_modules.WindowAttention with relpos=, ChannelAttention) compute
what timm computes and import back."""

from __future__ import annotations

import pytest
import torch
from timm.models import davit, nest, tiny_vit, vision_transformer_sam
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.frameworks import torch_params
from helpers.round_trip import import_back
from paramsym.frameworks.torch_modules import ChannelAttention, WindowAttention


def state(module: nn.Module) -> int:
    return sum(b.numel() for n, b in module.named_buffers() if n.rsplit(".", 1)[-1] in ("running_mean", "running_var"))


def measured(build, shape: tuple) -> tuple[int, int, int, list]:
    """(params, state, MACs, output shape without the batch) of a module built and run on meta."""
    with torch.device("meta"):
        module = build()
    module.eval()  # not chained: TinyViT's Attention.train returns None
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(torch.zeros(1, *shape, device="meta"))
    y = y[0] if isinstance(y, tuple) else y  # a recurrent layer's (output, state)
    return torch_params(module), state(module), counter.get_total_flops() // 2, list(y.shape[1:])


def counted(program: str, channels_first: bool = False) -> tuple[int, int, int, list]:
    net = paramsym.parse(program)
    values = net.evaluate()
    shape = [int(n) for n in net.output_shape.dims()]
    if channels_first and len(shape) > 1:
        shape = shape[-1:] + shape[:-1]
    return values["params"], values["state"], values["macs"], shape


class ChannelsLast(nn.Module):
    """A block that takes (N, H, W, C) in a model that takes (N, C, H, W), then a 1x1 convolution (as timm's
    stages permute to channels last for their blocks and back after them)."""

    def __init__(self, block: nn.Module, d: int):
        super().__init__()
        self.block = block
        self.conv = nn.Conv2d(d, d, 1)

    def forward(self, x):
        return self.conv(self.block(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))


def imported(build, shape: tuple) -> str:
    """The program from_torch reads from the module `build()` makes (on meta), at the channels-last `shape`."""
    with torch.device("meta"):
        module = build()
    return paramsym.from_torch(module, shape)


# ---- the forms of the position bias: formulas ---------------------------------------------------------------


@pytest.mark.parametrize(
    "relpos, params, macs",
    [
        # input(8x8x32), 2 heads of 16, windows of 4: 4·32² + 4·32 = 4,224 weights; MACs 4·64·32² + 2·64·16·32
        ("table", 4224 + 49 * 2, 327680),
        ("none", 4224, 327680),
        ("offsets", 4224 + 16 * 2, 327680),
        # 2 tables of (2·4 − 1) x 16; each query against 4 rows and 4 columns: 2·64·4·32
        ("axes", 4224 + 2 * 7 * 16, 327680 + 2 * 64 * 4 * 32),
    ],
)
def test_relpos_counts(relpos, params, macs):
    got = paramsym.parse(f"input(8x8x32) > attn(heads=2, bias, window=4, relpos={relpos})").evaluate()
    assert (got["params"], got["macs"], got["kv_cache"]) == (params, macs, 2 * 64 * 32)


def test_relpos_formulas():
    table = paramsym.parse("input(H x W x d) > attn(heads=h, window=w)")
    offsets = paramsym.parse("input(H x W x d) > attn(heads=h, window=w, relpos=offsets)")
    axes = paramsym.parse("input(H x W x d) > attn(heads=h, window=w, relpos=axes)")
    none = paramsym.parse("input(H x W x d) > attn(heads=h, window=w, relpos=none)")
    values = {"H": 28, "W": 14, "d": 64, "h": 4, "w": 7}
    base = none.evaluate(**values)
    assert table.evaluate(**values)["params"] - base["params"] == 13 * 13 * 4
    assert offsets.evaluate(**values)["params"] - base["params"] == 49 * 4
    assert axes.evaluate(**values)["params"] - base["params"] == 2 * 13 * 16
    assert axes.evaluate(**values)["macs"] - base["macs"] == 2 * 28 * 14 * 7 * 64
    assert offsets.evaluate(**values)["macs"] == base["macs"] == table.evaluate(**values)["macs"]


@pytest.mark.parametrize(
    "program, message",
    [
        ("input(8x8x16) > attn(heads=2, relpos=none)", "relpos=none needs window=w"),
        ("input(8x8x16) > attn(heads=2, window=4, relpos=rows)", "relpos= takes one of table, none, offsets, axes"),
        ("input(8x8x16) > attn(heads=2, grid=4, relpos=axes)", "grid attention takes relpos=table or none"),
        ("input(8x8x16) > attn(heads=2, window=4, cpb=16, relpos=offsets)", "cpb= is Swin V2's position bias"),
        ("input(8x8x16) > attn(heads=2, window=4, channels)", "'channels' attends across the channels"),
        ("input(8x8x16) > attn(heads=2, kv_heads=1, channels)", "it takes no kv_heads="),
        ("input(8x16) > attn(heads=2, causal, channels)", "'causal' is about positions"),
        ("input(8x8x16) > posembed(60)", "adds one vector to each of its 64 positions"),
    ],
)
def test_refusals(program, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(program).evaluate()


# ---- the export computes each form, counts as the program does, and imports back ----------------------------


EXPORTS = [
    "input(14x14x64) > attn(heads=2, bias, window=7, relpos={r})",
    "input(8x8x32) > attn(heads=4, bias, window=4, relpos={r})",
    "input(12x8x16) > attn(heads=2, window=4, relpos={r})",
    "input(8x4x24) > attn(heads=3, kv_heads=1, head_dim=4, bias, window=4, relpos={r})",
]


@pytest.mark.parametrize("template", EXPORTS)
@pytest.mark.parametrize("relpos", ["none", "offsets", "axes"])
def test_export_counts_and_imports_back(template, relpos):
    network = paramsym.parse(template.format(r=relpos))
    values = network.evaluate()
    module = paramsym.to_torch(network).eval()
    assert torch_params(module) == values["params"]
    *spatial, d = (int(n) for n in network.input_shape.dims())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(torch.zeros(1, d, *spatial))
    assert counter.get_total_flops() // 2 == values["macs"]
    assert list(y.shape[1:]) == [d, *spatial]
    text, back = import_back(network)
    assert f"relpos={relpos}" in text
    assert back.evaluate() == values


def test_export_computes_tiny_vits_attention():
    """WindowAttention(relpos="offsets") on one window is TinyViT's Attention (without its norm)."""
    w, d, heads = 4, 16, 2
    ours = WindowAttention(d, heads, w, relpos="offsets").eval()
    theirs = tiny_vit.Attention(d, d // heads, heads, attn_ratio=1, resolution=(w, w))
    theirs.eval()  # TinyViT's Attention.train returns None: not chained
    theirs.norm = nn.Identity()
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p))
        # TinyViT's qkv gives q, k, v per head; ours all the queries, then the keys, then the values
        weight = theirs.qkv.weight.view(heads, 3, d // heads, d).transpose(0, 1).reshape(3 * d, d)
        ours.qkv.weight.copy_(weight)
        ours.qkv.bias.copy_(theirs.qkv.bias.view(heads, 3, d // heads).transpose(0, 1).reshape(-1))
        ours.proj.load_state_dict(theirs.proj.state_dict())
        ours.attention_biases.copy_(theirs.attention_biases)
        x = torch.randn(2, w, w, d)
        want = theirs(x.reshape(2, w * w, d)).reshape(2, w, w, d)
        got = ours(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()


def test_export_computes_sams_attention():
    """WindowAttention(relpos="axes") on one window is SAM's Attention with use_rel_pos."""
    w, d, heads = 5, 24, 3
    ours = WindowAttention(d, heads, w, relpos="axes").eval()
    theirs = vision_transformer_sam.Attention(d, heads, use_rel_pos=True, input_size=(w, w)).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        ours.qkv.load_state_dict(theirs.qkv.state_dict())
        ours.proj.load_state_dict(theirs.proj.state_dict())
        ours.rel_pos_h.copy_(theirs.rel_pos_h)
        ours.rel_pos_w.copy_(theirs.rel_pos_w)
        x = torch.randn(2, w, w, d)
        want = theirs(x)
        got = ours(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()


def test_export_computes_davits_channel_attention():
    d, heads = 24, 3
    ours = ChannelAttention(d, heads).eval()
    theirs = davit.ChannelAttention(d, heads, qkv_bias=True).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 5, 6, d)
    with torch.no_grad():
        want = theirs(x.reshape(2, 30, d)).reshape(2, 5, 6, d)
        got = ours(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


# ---- channel attention against timm's -----------------------------------------------------------------------


@pytest.mark.parametrize("T, d, heads", [(196, 64, 2), (49, 96, 3), (10, 32, 4), (64, 48, 1)])
@pytest.mark.parametrize("v2", [False, True])
def test_channel_attention_counts_as_davits(T, d, heads, v2):
    cls = davit.ChannelAttentionV2 if v2 else davit.ChannelAttention
    want = measured(lambda: cls(d, heads, qkv_bias=True), (T, d))
    assert counted(f"input({T}x{d}) > attn(heads={heads}, bias, channels)") == want
    got = counted(f"input({T}x{d}) > attn(heads={heads}, bias, channels)")
    assert got[2] == T * 4 * d * d + 2 * T * (d // heads) * d


def test_channel_attention_formula():
    network = paramsym.parse("input(T x d) > attn(heads=h, bias, channels)")
    assert str(network.params) == str(paramsym.parse("input(T x d) > attn(heads=h, bias)").params)
    assert network.evaluate(T=10, d=32, h=4)["macs"] == 10 * 4 * 32 * 32 + 2 * 10 * 8 * 32


# ---- TinyViT: TinyVitBlock read whole -----------------------------------------------------------------------

# (H, W, d, heads, window): one window (H = w), windows that divide the map, and a padded map
TINY_VIT = [(7, 7, 64, 2, 7), (14, 14, 128, 4, 7), (14, 14, 160, 5, 14), (10, 10, 32, 2, 4), (9, 12, 16, 1, 5)]


@pytest.mark.parametrize("H, W, d, heads, w", TINY_VIT)
def test_tiny_vit_block(H, W, d, heads, w):
    def build():
        return ChannelsLast(tiny_vit.TinyVitBlock(d, heads, window_size=w), d)

    text = imported(build, (H, W, d))
    assert "relpos=offsets" in text and ("relpos=offsets, pad)" in text) == bool(H % w or W % w), text
    assert counted(text, channels_first=True) == measured(build, (d, H, W))


@pytest.mark.parametrize("w, d, heads", [(7, 64, 2), (4, 32, 4), (3, 12, 3)])
def test_tiny_vit_attention_counts_as_the_language_says(w, d, heads):
    """TinyViT's Attention on one window of w x w: ln > attn(window=w, relpos=offsets)."""
    want = measured(lambda: tiny_vit.Attention(d, d // heads, heads, 1, (w, w)), (w * w, d))
    program = f"input({w}x{w}x{d}) > ln > attn(heads={heads}, bias, window={w}, relpos=offsets)"
    assert counted(program)[:3] == want[:3]


# ---- SAM's ViT: Block read whole ----------------------------------------------------------------------------

# (H, W, d, heads, window): window 0 is global attention (a square map: one window)
SAM = [(14, 14, 96, 2, 14), (14, 14, 96, 3, 7), (10, 10, 32, 2, 4), (9, 12, 24, 1, 5), (8, 8, 32, 4, 0)]


@pytest.mark.parametrize("H, W, d, heads, w", SAM)
@pytest.mark.parametrize("rel", [True, False])
def test_sam_block(H, W, d, heads, w, rel):
    size = w or H

    def build():
        return ChannelsLast(
            vision_transformer_sam.Block(d, heads, use_rel_pos=rel, window_size=w, input_size=(H, W)), d
        )

    text = imported(build, (H, W, d))
    assert f"window={size}" in text and f"relpos={'axes' if rel else 'none'}" in text, text
    assert counted(text, channels_first=True) == measured(build, (d, H, W))


def test_sam_global_block_on_an_oblong_map_is_refused():
    def build():
        return ChannelsLast(vision_transformer_sam.Block(32, 2, use_rel_pos=True, window_size=0, input_size=(8, 6)), 32)

    with pytest.raises(paramsym.ParamsymError, match="attends over the whole 8x6 map"):
        imported(build, (8, 6, 32))


# ---- DaViT: SpatialBlock and ChannelBlock read whole --------------------------------------------------------

DAVIT = [(56, 56, 96, 3, 7), (14, 14, 64, 2, 7), (10, 12, 32, 4, 4), (7, 7, 48, 2, 7)]


@pytest.mark.parametrize("H, W, d, heads, w", DAVIT)
@pytest.mark.parametrize("cpe_act", [False, True])
def test_davit_blocks(H, W, d, heads, w, cpe_act):
    def build():
        return nn.Sequential(
            davit.SpatialBlock(d, heads, window_size=w, cpe_act=cpe_act),
            davit.ChannelBlock(d, heads, qkv_bias=True, cpe_act=cpe_act),
        )

    text = imported(build, (H, W, d))
    assert "relpos=none" in text and "channels" in text, text
    assert counted(text, channels_first=True) == measured(build, (d, H, W))


# ---- NesT: NestLevel read whole -----------------------------------------------------------------------------

# (H, previous channels or None, d, heads, block, depth)
NEST = [(56, None, 96, 3, 14, 2), (56, 96, 192, 6, 14, 1), (16, 8, 16, 2, 4, 2), (8, None, 32, 4, 8, 1)]


@pytest.mark.parametrize("H, prev, d, heads, b, depth", NEST)
def test_nest_level(H, prev, d, heads, b, depth):
    side = H // 2 if prev else H
    blocks = (side // b) ** 2

    def build():  # a level in a model (the model's own forward is traced, not read whole)
        return nn.Sequential(
            nest.NestLevel(
                blocks,
                b,
                b * b,
                heads,
                depth,
                d,
                prev_embed_dim=prev,
                drop_path=[0.0] * depth,
                norm_layer=nn.LayerNorm,
                act_layer=nn.GELU,
            )
        )

    cin = prev or d
    text = imported(build, (H, H, cin))
    assert f"posembed({side * side})" in text and f"window={b}, relpos=none" in text, text
    assert counted(text, channels_first=True) == measured(build, (cin, H, H))


# ---- posembed on a map --------------------------------------------------------------------------------------


@pytest.mark.parametrize("H, W, d", [(8, 8, 16), (6, 4, 8), (3, 5, 2)])
def test_posembed_on_a_map(H, W, d):
    network = paramsym.parse(f"input({H}x{W}x{d}) > posembed({H * W})")
    assert network.evaluate()["params"] == H * W * d
    module = paramsym.to_torch(network)
    assert torch_params(module) == H * W * d
    assert module(torch.zeros(1, d, H, W)).shape == (1, d, H, W)
    text, back = import_back(network)
    assert f"posembed({H * W})" in text and back.evaluate() == network.evaluate()


# ---- recurrent layers along the rows or columns of a map (Sequencer2D's LSTM2d) ----------------------------


@pytest.mark.parametrize("kind, cls", [("lstm", nn.LSTM), ("gru", nn.GRU), ("rnn", nn.RNN)])
@pytest.mark.parametrize("along", ["rows", "columns"])
@pytest.mark.parametrize(
    "H, W, C, hidden, bidirectional", [(6, 5, 8, 4, True), (3, 7, 4, 6, False), (8, 8, 16, 4, True)]
)
def test_recurrent_along_a_map(kind, cls, along, H, W, C, hidden, bidirectional):
    """The layer on each row (H sequences of W steps) or column: counted on nn.LSTM/GRU/RNN run over them."""
    program = f"input({H}x{W}x{C}) > {kind}(->{hidden}, bias{', bidirectional' if bidirectional else ''}, {along})"
    sequences, steps = (H, W) if along == "rows" else (W, H)
    want = measured(lambda: cls(C, hidden, batch_first=True, bidirectional=bidirectional), (steps, C))
    got = counted(program)
    assert got[:2] == want[:2] and got[2] == sequences * want[2]
    assert got[3] == [H, W, hidden * (2 if bidirectional else 1)]
    network = paramsym.parse(program)
    text, back = import_back(network)
    assert f", {along})" in text and back.evaluate() == network.evaluate()


@pytest.mark.parametrize("H, W, C, hidden", [(8, 8, 192, 48), (4, 6, 16, 8), (5, 3, 12, 4)])
@pytest.mark.parametrize("union", ["cat", "vertical", "horizontal"])
def test_sequencer_lstm2d(H, W, C, hidden, union):
    from timm.models import sequencer

    def build():
        return ChannelsLast(sequencer.LSTM2d(C, hidden, union=union), C)

    text = imported(build, (H, W, C))
    assert ("rows" in text) == (union != "vertical") and ("columns" in text) == (union != "horizontal"), text
    assert counted(text, channels_first=True) == measured(build, (C, H, W))


def test_export_computes_sequencers_lstm2d():
    """concat(lstm(columns) | lstm(rows)) > dense exported computes timm's LSTM2d with the same weights."""
    from timm.models import sequencer

    H, W, C, hidden = 4, 5, 8, 3
    theirs = sequencer.LSTM2d(C, hidden).eval()
    program = (
        f"input({H}x{W}x{C}) > concat(lstm(->{hidden}, bias, bidirectional, columns) "
        f"| lstm(->{hidden}, bias, bidirectional, rows)) > dense(->{C}, bias)"
    )
    ours = paramsym.to_torch(paramsym.parse(program)).eval()
    lstms = [m for m in ours.modules() if isinstance(m, nn.LSTM)]
    (fc,) = [m for m in ours.modules() if isinstance(m, nn.Linear)] or [
        m for m in ours.modules() if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        lstms[0].load_state_dict(theirs.rnn_v.state_dict())
        lstms[1].load_state_dict(theirs.rnn_h.state_dict())
        fc.weight.copy_(theirs.fc.weight.reshape(fc.weight.shape))
        fc.bias.copy_(theirs.fc.bias)
        x = torch.randn(2, H, W, C)
        want = theirs(x)
        got = ours(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


@pytest.mark.parametrize(
    "program, message",
    [
        ("input(4x7x8) > lstm(->4, rows, columns)", "along the rows or along the columns, not both"),
        ("input(7x8) > lstm(->4, rows)", "runs lstm along each row of a map"),
        ("input(4x7x8) > gru(->4, rows, last)", "'last' keeps the last step"),
    ],
)
def test_recurrent_along_refusals(program, message):
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.parse(program).evaluate()
