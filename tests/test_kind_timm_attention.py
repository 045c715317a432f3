"""timm's attention blocks read whole (docs/language.md, Attention: "timm's MaxxViT, CoAtNet and Swin V2"), and the
arguments of `attn` they need: `out=o` (CoAtNet's Attention2d widens the map), `pos_mlp=m` (timm's RelPosMlp, MaxxViT's
"rmlp"), `per_pair` (swinv2_cr's meta MLP on every query/key pair), `cosine` (a logit scale per head) and `qv_bias`
(timm's Swin V2: q_bias and v_bias, no key bias). Each is checked against the real timm module at several sizes:
params, output shape and MACs (FlopCounterMode on meta tensors, FLOPs / 2); the whole models import exactly; the
export (torch_modules.WindowAttention, GroupedQueryAttention) counts as the program does and imports back."""

from __future__ import annotations

from functools import partial

import pytest
import sympy
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.cli_helpers import run
from helpers.frameworks import torch_params
from helpers.round_trip import import_back
from paramsym.errors import ImportRefused

timm = pytest.importorskip("timm")
from timm.layers.pos_embed_rel import RelPosBias, RelPosMlp  # noqa: E402
from timm.models.maxxvit import Attention2d, MaxxVitTransformerCfg, PartitionAttentionCl  # noqa: E402
from timm.models.swin_transformer_v2 import PatchMerging as PatchMergingV2  # noqa: E402
from timm.models.swin_transformer_v2 import SwinTransformerV2Block  # noqa: E402
from timm.models.swin_transformer_v2_cr import PatchMerging as PatchMergingCr  # noqa: E402
from timm.models.swin_transformer_v2_cr import SwinTransformerV2CrBlock  # noqa: E402


def measured(build, shape: tuple) -> tuple[int, int, list]:
    """(params, MACs, output shape without the batch) of a module built and run on meta at `shape` (no batch)."""
    with torch.device("meta"):
        module = build().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(torch.zeros(1, *shape, device="meta"))
    return torch_params(module), counter.get_total_flops() // 2, list(y.shape[1:])


def counted(program: str) -> tuple[int, int, list]:
    """(params, MACs, output shape channels last) of a program."""
    net = paramsym.parse(program)
    values = net.evaluate()
    return values["params"], values["macs"], [int(n) for n in net.output_shape.dims()]


class ChannelsLast(nn.Module):
    """A block of timm's on (N, H, W, C), given (N, C, H, W) as MaxxVitBlock gives it; its output stays channels last
    (the importer's verification reads a model's last value by the layout of the last layer)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x):
        return self.block(x.permute(0, 2, 3, 1))


def imported(module: nn.Module, shape: tuple) -> tuple[str, tuple[int, int, list]]:
    """The text from_torch reads from `module` (run on (N, C, H, W)) at `shape` (H, W, C), and its counts."""
    text = paramsym.from_torch(module, shape)
    return text, counted(text)


# ---- MaxViT's block and grid attention: PartitionAttentionCl ----------------------------------------------------

# (H, W, C, dim_head, p, partition, rel_pos_type, init_values): the table or the MLP, with LayerScale or without
PARTITION = [
    (16, 16, 64, 32, 8, "block", "bias", None),
    (16, 16, 64, 32, 8, "grid", "bias", None),
    (12, 8, 48, 16, 4, "grid", "bias", 1e-6),
    (12, 8, 48, 16, 4, "block", "mlp", 1e-6),
    (9, 6, 24, 8, 3, "grid", "mlp", None),
    (8, 8, 32, 32, 2, "block", "mlp", 1e-5),
]


def partition_block(C, e, p, partition, rel, init, m=64):
    cfg = MaxxVitTransformerCfg(dim_head=e, window_size=(p, p), rel_pos_type=rel, rel_pos_dim=m, init_values=init)
    return PartitionAttentionCl(C, partition_type=partition, cfg=cfg)


def partition_program(H, W, C, e, p, partition, rel, init, m=64) -> str:
    side = "window" if partition == "block" else "grid"
    scale = " > scale" if init else ""
    bias = f", pos_mlp={m}" if rel == "mlp" else ""
    return (
        f"input({H}x{W}x{C}) > res(ln > attn(heads={C // e}, bias, {side}={p}{bias}){scale}) "
        f"> res(ln > dense(->{4 * C}, bias) > gelu > dense(->{C}, bias){scale})"
    )


@pytest.mark.parametrize("H, W, C, e, p, partition, rel, init", PARTITION)
def test_partition_attention_against_timm(H, W, C, e, p, partition, rel, init):
    program = partition_program(H, W, C, e, p, partition, rel, init)
    truth = measured(lambda: partition_block(C, e, p, partition, rel, init), (H, W, C))
    assert counted(program) == truth


@pytest.mark.parametrize("H, W, C, e, p, partition, rel, init", PARTITION)
def test_partition_attention_imports(H, W, C, e, p, partition, rel, init):
    with torch.device("meta"):
        module = ChannelsLast(partition_block(C, e, p, partition, rel, init))
    text, counts = imported(module, (H, W, C))
    assert counts == counted(partition_program(H, W, C, e, p, partition, rel, init))
    side = "window" if partition == "block" else "grid"
    assert f"attn(heads={C // e}, bias, {side}={p}" in text


def test_the_mlp_bias_counts_its_offsets():
    """timm's RelPosMlp runs its MLP on the (2p-1)^2 offsets: 3m + m*h + h params, (2p-1)^2 (2m + m*h) MACs."""
    p, m, h = 5, 16, 3
    with torch.device("meta"):
        module = RelPosMlp((p, p), num_heads=h, hidden_dim=m)
    with FlopCounterMode(display=False) as counter:
        module.get_bias()
    table = paramsym.parse(f"input(10x10x{4 * h}) > attn(heads={h}, window={p})").evaluate()
    mlp = paramsym.parse(f"input(10x10x{4 * h}) > attn(heads={h}, window={p}, pos_mlp={m})").evaluate()
    assert mlp["params"] - table["params"] + (2 * p - 1) ** 2 * h == torch_params(module) == 3 * m + m * h + h
    assert mlp["macs"] - table["macs"] == counter.get_total_flops() // 2 == (2 * p - 1) ** 2 * (2 * m + m * h)


@pytest.mark.parametrize(
    "rel, words",
    [
        ("bias_tf", "(RelPosBiasTf) is neither a table"),
        ("swin", "(RelPosMlp) is neither a table"),  # mode 'swin': no bias on fc2, a sigmoid and a gain of 16
    ],
)
def test_other_position_biases_are_refused(rel, words):
    cfg = MaxxVitTransformerCfg(dim_head=16, window_size=(4, 4), rel_pos_type="bias_tf" if rel == "bias_tf" else "mlp")
    with torch.device("meta"):
        block = PartitionAttentionCl(32, cfg=cfg)
        if rel == "swin":
            block.attn.rel_pos = RelPosMlp((4, 4), num_heads=2, hidden_dim=8, mode="swin")
    with pytest.raises(ImportRefused) as refused:
        paramsym.from_torch(ChannelsLast(block), (8, 8, 32))
    assert words in str(refused.value) and "'block'" in str(refused.value)


# ---- CoAtNet's attention over the whole map: Attention2d --------------------------------------------------------

# (H, C, C_out, dim_head, expand_first, rel): the table or the MLP over the whole map, or no bias; widening or not
ATTENTION2D = [
    (7, 64, 128, 32, False, "bias"),
    (7, 64, 64, 32, False, "bias"),
    (6, 48, 96, 16, True, "bias"),
    (5, 32, 64, 8, False, "mlp"),
    (4, 24, 24, 8, True, None),
    (3, 16, 48, 16, False, "mlp"),
]


def attention2d(H, C, C_out, e, expand_first, rel, m=32):
    rel_pos = {
        "bias": partial(RelPosBias, window_size=(H, H)),
        "mlp": partial(RelPosMlp, window_size=(H, H), hidden_dim=m),
        None: None,
    }[rel]
    return Attention2d(C, C_out, dim_head=e, expand_first=expand_first, rel_pos_cls=rel_pos)


def attention2d_program(H, C, C_out, e, expand_first, rel, m=32) -> str:
    q = C_out if expand_first else C
    parts = [f"heads={q // e}"] + [f"head_dim={e}"] * (q != C) + ["bias"]
    parts += [f"window={H}"] * (rel is not None) + [f"pos_mlp={m}"] * (rel == "mlp") + [f"out={C_out}"] * (C_out != C)
    return f"input({H}x{H}x{C}) > attn({', '.join(parts)})"


@pytest.mark.parametrize("H, C, C_out, e, expand_first, rel", ATTENTION2D)
def test_attention2d_against_timm(H, C, C_out, e, expand_first, rel):
    params, macs, (c, h, w) = measured(lambda: attention2d(H, C, C_out, e, expand_first, rel), (C, H, H))
    assert counted(attention2d_program(H, C, C_out, e, expand_first, rel)) == (params, macs, [h, w, c])


@pytest.mark.parametrize("H, C, C_out, e, expand_first, rel", ATTENTION2D)
def test_attention2d_imports(H, C, C_out, e, expand_first, rel):
    with torch.device("meta"):
        module = nn.Sequential(attention2d(H, C, C_out, e, expand_first, rel))  # a module inside a model
    text, counts = imported(module, (H, H, C))
    assert (
        text.splitlines()[-1].strip()
        == "> " + attention2d_program(H, C, C_out, e, expand_first, rel).split(" > ", 1)[1]
    )
    assert counts == counted(attention2d_program(H, C, C_out, e, expand_first, rel))


def test_attention2d_bias_over_a_map_that_is_not_square_is_refused():
    with torch.device("meta"):
        module = nn.Sequential(Attention2d(16, 16, dim_head=8, rel_pos_cls=partial(RelPosBias, window_size=(4, 6))))
    with pytest.raises(ImportRefused) as refused:
        paramsym.from_torch(module, (4, 6, 16))
    assert "(Attention2d): a relative-position bias over a 4x6 map" in str(refused.value)


# ---- timm's Swin V2 blocks: SwinTransformerV2Block and SwinTransformerV2CrBlock ---------------------------------

# (H, W, C, heads, window, shift): timm narrows the window to a smaller map (and drops its shift there); a window
# that does not divide the map pads it
SWIN = [
    (16, 16, 32, 2, 8, False),
    (16, 16, 32, 2, 8, True),
    (12, 12, 48, 3, 8, True),
    (8, 8, 32, 4, 8, True),
    (6, 6, 16, 2, 8, False),
    (14, 21, 24, 3, 7, True),
]


def swin_window(H, W, w) -> int:
    return min(H, w) if w >= H else w


def swinv2_program(H, W, C, h, w, shift, m=512) -> str:
    w = swin_window(H, W, w)
    shifted = ", shift" if shift and w < H else ""
    pad = ", pad" if H % w or W % w else ""
    return (
        f"input({H}x{W}x{C}) > res(attn(heads={h}, qv_bias, window={w}{shifted}, cpb={m}{pad}) > ln) "
        f"> res(dense(->{4 * C}, bias) > gelu > dense(->{C}, bias) > ln)"
    )


def swinv2_block(H, W, C, h, w, shift):
    return SwinTransformerV2Block(C, (H, W), h, window_size=w, shift_size=w // 2 if shift else 0)


@pytest.mark.parametrize("H, W, C, h, w, shift", SWIN)
def test_swinv2_block_against_timm(H, W, C, h, w, shift):
    truth = measured(lambda: swinv2_block(H, W, C, h, w, shift), (H, W, C))
    assert counted(swinv2_program(H, W, C, h, w, shift)) == truth


@pytest.mark.parametrize("H, W, C, h, w, shift", SWIN)
def test_swinv2_block_imports(H, W, C, h, w, shift):
    with torch.device("meta"):
        module = ChannelsLast(swinv2_block(H, W, C, h, w, shift))
    text, counts = imported(module, (H, W, C))
    assert counts == counted(swinv2_program(H, W, C, h, w, shift))
    assert "qv_bias" in text and "cpb=512" in text


def swinv2_cr_program(H, W, C, h, w, shift, extra_norm=False, m=384) -> str:
    w = swin_window(H, W, w)
    shifted = ", shift" if shift and w < H else ""
    pad = ", pad" if H % w or W % w else ""
    return (
        f"input({H}x{W}x{C}) > res(attn(heads={h}, bias, window={w}{shifted}, pos_mlp={m}, per_pair, cosine{pad}) "
        f"> ln) > res(dense(->{4 * C}, bias) > gelu > dense(->{C}, bias) > ln){' > ln' if extra_norm else ''}"
    )


def swinv2_cr_block(H, W, C, h, w, shift, extra_norm=False):
    return SwinTransformerV2CrBlock(
        C,
        h,
        feat_size=(H, W),
        window_size=(w, w),
        shift_size=(w // 2, w // 2) if shift else (0, 0),
        extra_norm=extra_norm,
    )


@pytest.mark.parametrize("H, W, C, h, w, shift", SWIN)
@pytest.mark.parametrize("extra_norm", [False, True])
def test_swinv2_cr_block_against_timm(H, W, C, h, w, shift, extra_norm):
    truth = measured(lambda: swinv2_cr_block(H, W, C, h, w, shift, extra_norm), (H, W, C))
    assert counted(swinv2_cr_program(H, W, C, h, w, shift, extra_norm)) == truth


@pytest.mark.parametrize("H, W, C, h, w, shift", SWIN[:3])
def test_swinv2_cr_block_imports(H, W, C, h, w, shift):
    with torch.device("meta"):
        module = ChannelsLast(swinv2_cr_block(H, W, C, h, w, shift, extra_norm=True))
    text, counts = imported(module, (H, W, C))
    assert counts == counted(swinv2_cr_program(H, W, C, h, w, shift, extra_norm=True))
    assert "per_pair, cosine" in text


def test_per_pair_counts_every_pair():
    """swinv2_cr's meta MLP runs on the offset of each of the w^4 pairs: w^4 (2m + m*h) MACs, not (2w-1)^2."""
    w, m, h = 4, 8, 2
    pairs = paramsym.parse(f"input(8x8x16) > attn(heads={h}, bias, window={w}, pos_mlp={m}, per_pair)").evaluate()
    table = paramsym.parse(f"input(8x8x16) > attn(heads={h}, bias, window={w}, pos_mlp={m})").evaluate()
    assert pairs["params"] == table["params"]
    assert pairs["macs"] - table["macs"] == (w**4 - (2 * w - 1) ** 2) * (2 * m + m * h)


@pytest.mark.parametrize(
    "merging, H, W, C, program",
    [
        (PatchMergingV2, 8, 8, 16, "input(8x8x16) > space2depth(2) > dense(->32) > ln"),
        (PatchMergingV2, 6, 10, 24, "input(6x10x24) > space2depth(2) > dense(->48) > ln"),
        (PatchMergingCr, 8, 8, 16, "input(8x8x16) > space2depth(2) > ln > dense(->32)"),
        (PatchMergingCr, 6, 10, 24, "input(6x10x24) > space2depth(2) > ln > dense(->48)"),
    ],
)
def test_patch_merging_v2_and_cr(merging, H, W, C, program):
    assert counted(program) == measured(lambda: merging(C), (H, W, C))
    with torch.device("meta"):
        module = ChannelsLast(merging(C))
    assert imported(module, (H, W, C))[1] == counted(program)


# ---- the whole models -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "test_coatnet",  # Attention2d with out=, the table over the whole map
        "maxvit_nano_rw_256",  # PartitionAttentionCl, window and grid
        "maxxvit_rmlp_nano_rw_256",  # pos_mlp=, LayerScale
        "swinv2_tiny_window8_256",  # qv_bias, cpb=
        "swinv2_cr_tiny_224",  # pos_mlp=, per_pair, cosine
    ],
)
def test_timm_models_import_exactly(name):
    from helpers.timm_coverage import import_one

    row = import_one(name)
    assert row.outcome == "exact", row


# ---- the language: formulas, mistakes, explain, export ---------------------------------------------------------


@pytest.mark.parametrize(
    "program, expected",
    [
        ("input(T x d) > attn(heads=h, out=o, bias)", "3*d**2 + d*o + 3*d + o"),
        ("input(T x d) > attn(heads=h, qv_bias)", "4*d**2 + 3*d"),
        ("input(T x d) > attn(heads=h, cosine)", "4*d**2 + h"),
        ("input(16x16x d) > attn(heads=h, window=8, pos_mlp=m)", "4*d**2 + 225*h + 3*m + m*h + h - 225*h"),
    ],
)
def test_formulas(program, expected):
    net = paramsym.parse(program)
    assert (
        sympy.simplify(net.params - sympy.sympify(expected, locals={s.name: s for s in net.params.free_symbols})) == 0
    )


@pytest.mark.parametrize(
    "program, words, at",
    [
        ("input(8x16) > attn(heads=2, out=0)", "out= (the output channels) must be a positive whole number", "out"),
        ("input(8x16) > attn(heads=2, pos_mlp=8)", "pos_mlp= (a relative-position bias made by an MLP)", "pos_mlp"),
        ("input(8x8x16) > attn(heads=2, window=4, pos_mlp=0)", "must be a positive whole number, not 0", "pos_mlp"),
        ("input(8x8x16) > attn(heads=2, window=4, cpb=8, pos_mlp=8)", "cpb= and pos_mlp= are two", "pos_mlp"),
        ("input(8x8x16) > attn(heads=2, window=4, per_pair)", "'per_pair' says that the position-bias MLP", "per_pair"),
        ("input(8x8x16) > attn(heads=2, window=4, cpb=8, cosine)", "'cosine' adds nothing to it", "cosine"),
        ("input(8x16) > attn(heads=2, bias, qv_bias)", "'qv_bias' (biases on the query, value", "bias,"),
        ("input(8x16) > attn(heads=2, out=4x4)", "out= takes one value", "out"),
    ],
)
def test_mistakes(program, words, at):
    with pytest.raises(paramsym.ParamsymError) as info:
        paramsym.parse(program)
    assert words in str(info.value)
    assert f"line 1, column {program.index(at) + 1}" in str(info.value)


def test_explain():
    result = run("explain", "input(8x8x16) > attn(heads=2, qv_bias, window=4, pos_mlp=8, per_pair, cosine, out=32)")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for words in (
        "none on the keys",
        "query/key pairs",
        "logit scale per head, 2 parameters",
        "to 32 output channels",
        "relative-position MLP of width 8 on every pair",
    ):
        assert words in text, text


EXPORTED = [
    "input(14x14x128) > attn(heads=4, bias, window=14, out=256)",
    "input(16x16x64) > attn(heads=2, bias, grid=8, pos_mlp=64)",
    "input(16x16x64) > attn(heads=2, bias, window=8, pos_mlp=64, shift)",
    "input(14x14x64) > attn(heads=2, bias, window=7, pos_mlp=32, per_pair, cosine, shift)",
    "input(16x16x64) > attn(heads=4, qv_bias, window=8, cosine)",
    "input(10x48) > attn(heads=4, qv_bias, cosine, out=32)",
    "input(10x48) > attn(heads=4, bias, out=32)",
    "input(6x4x48) > attn(heads=4, kv_heads=2, qv_bias, out=16)",
]


@pytest.mark.parametrize("program", EXPORTED)
def test_export_counts_as_the_program_and_imports_back(program):
    network = paramsym.parse(program)
    values = network.evaluate()
    *spatial, channels = [int(n) for n in network.input_shape.dims()]
    module = paramsym.to_torch(network)
    params, macs, shape = measured(lambda: paramsym.to_torch(network), (channels, *spatial))
    assert (params, macs) == (values["params"], values["macs"])
    assert shape[1:] + shape[:1] == [int(n) for n in network.output_shape.dims()]
    text, back = import_back(network, module)
    assert back.evaluate()["params"] == values["params"] and back.evaluate()["macs"] == values["macs"], text


def test_exported_mlp_bias_computes():
    """The exported window attention with pos_mlp= and cosine runs on real values and its MLP learns (a gradient)."""
    module = paramsym.to_torch(paramsym.parse("input(8x8x16) > attn(heads=2, bias, window=4, pos_mlp=8, cosine)"))
    y = module(torch.randn(2, 16, 8, 8))
    y.square().mean().backward()
    attention = module[0]
    assert y.shape == (2, 16, 8, 8) and attention.pos_mlp[0].weight.grad.abs().sum() > 0
    assert attention.logit_scale.grad is not None


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(8x16) > attn(heads=2, out=32)", "an output width of its own (out=) has no Keras attention layer"),
        ("input(8x16) > attn(heads=2, qv_bias)", "biases on the queries and values only (qv_bias)"),
        ("input(8x16) > attn(heads=2, cosine)", "cosine attention (cosine) has no Keras"),
    ],
)
def test_keras_export_is_refused(program, words):
    result = run("export", program, "--to", "keras")
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


# ---- the export computes what timm computes ---------------------------------------------------------------------


@pytest.mark.parametrize("partition, rel", [("block", "mlp"), ("grid", "mlp"), ("block", "bias"), ("grid", "bias")])
def test_exported_partition_attention_computes_timms(partition, rel):
    """paramsym's WindowAttention (window= or grid=, with the table or pos_mlp=) computes timm's partitioned
    AttentionCl, weights copied (head_first=False: q, k and v in blocks, as ours)."""
    torch.manual_seed(0)
    C, e, p, m = 32, 8, 4, 16
    cfg = MaxxVitTransformerCfg(dim_head=e, window_size=(p, p), rel_pos_type=rel, rel_pos_dim=m, head_first=False)
    block = PartitionAttentionCl(C, partition_type=partition, cfg=cfg).eval()
    side = "window" if partition == "block" else "grid"
    bias = f", pos_mlp={m}" if rel == "mlp" else ""
    ours = paramsym.to_torch(paramsym.parse(f"input(8x12x{C}) > attn(heads={C // e}, bias, {side}={p}{bias})"))[0]
    with torch.no_grad():
        for name in ("qkv.weight", "qkv.bias", "proj.weight", "proj.bias"):
            ours.get_parameter(name).copy_(block.attn.get_parameter(name))
        if rel == "mlp":
            for theirs, mine in (
                (block.attn.rel_pos.mlp.fc1, ours.pos_mlp[0]),
                (block.attn.rel_pos.mlp.fc2, ours.pos_mlp[2]),
            ):
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)
        else:
            ours.relative_position_bias_table.copy_(block.attn.rel_pos.relative_position_bias_table)
        x = torch.randn(2, 8, 12, C)
        expected = block._partition_attn(x)
        got = ours(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


@pytest.mark.parametrize("shift", [False, True])
def test_exported_cr_attention_computes_timms(shift):
    """paramsym's WindowAttention with pos_mlp=, per_pair and cosine computes swinv2_cr's shifted window attention
    (WindowMultiHeadAttention inside SwinTransformerV2CrBlock), weights copied."""
    torch.manual_seed(0)
    H, W, C, h, w = 8, 12, 24, 3, 4
    block = SwinTransformerV2CrBlock(C, h, feat_size=(H, W), window_size=(w, w), shift_size=(2, 2) if shift else (0, 0))
    block.eval()
    shifted = ", shift" if shift else ""
    program = f"input({H}x{W}x{C}) > attn(heads={h}, bias, window={w}{shifted}, pos_mlp=384, per_pair, cosine)"
    ours = paramsym.to_torch(paramsym.parse(program))[0]
    attn = block.attn
    with torch.no_grad():
        for name in ("qkv.weight", "qkv.bias", "proj.weight", "proj.bias"):
            ours.get_parameter(name).copy_(attn.get_parameter(name))
        for theirs, mine in ((attn.meta_mlp.fc1, ours.pos_mlp[0]), (attn.meta_mlp.fc2, ours.pos_mlp[2])):
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
        attn.logit_scale.copy_(torch.randn(h) * 0.5 + 2)
        ours.logit_scale.copy_(attn.logit_scale.view(h, 1, 1))
        x = torch.randn(2, H, W, C)
        expected = block._shifted_window_attn(x)
        got = ours(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
