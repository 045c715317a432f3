"""FLOPs and training FLOPs (core/compute.py) against PyTorch: FlopCounterMode over the forward and
`loss.backward()` of paramsym's own export and of real models (torchvision, timm, transformers) imported by
`paramsym.from_torch`. FlopCounterMode's weight gradient of a grouped convolution is counted with its groups
(tests/helpers/train_flops.py says why)."""

from __future__ import annotations

import json

import pytest
import sympy
import torch

import paramsym
from helpers.train_flops import measure
from paramsym.cli import main
from paramsym.core.setup import Setup

B = 2


def training(net, **changes):
    return net.with_options(setup=Setup(train=True, batch=sympy.Integer(B), **changes))


def ours(net, **changes):
    return net.value(training(net, **changes).train_flops)


def with_gradient(net):
    """Training FLOPs of the batch when the input needs a gradient: every layer's backward_macs."""
    backward = sympy.Add(*(lc.counts["backward_macs"] for lc in net.layers))
    return 2 * B * net.value(net.macs + backward)


# (program, train FLOPs of a batch of 2 from FlopCounterMode): every kind the input reaches first (no gradient)
FIRST = [
    ("input(8x16) > dense(->32) > dense(->4)", 45056),
    ("input(8x8x3) > conv3x3(->4) > conv3x3(->4)", 58752),
    ("input(8) > embed(10->16) > dense(->4)", 6144),
    ("input(8x8x3) > blurpool", 1728),
    ("input(8x8x3) > conv1x1(->4) > blurpool", 10752),
    ("input(8x16) > attn(heads=2, causal)", 98304),
    ("input(8x16) > dense(->16) > attn(heads=2, causal)", 139264),
    ("input(16x64) > attn(heads=8, kv_heads=2)", 1966080),
    ("input(16x64) > attn(heads=4, head_dim=32, rope, causal)", 5505024),
    ("input(16x64) > attn(heads=4, kv_heads=2, window=8, softcap=50, causal)", 2228224),
    ("input(14x14x16) > attn(heads=2, grid=7, bias)", 5494272),
    ("input(8x8x16) > attn(heads=2, window=4, relpos=axes)", 1081344),
    ("input(9x32) > mla(heads=2, kv_rank=8, rope_dim=4, nope_dim=6, v_dim=5, q_rank=12)", 163944),
    ("input(9x32) > mla(heads=2, kv_rank=8, rope_dim=4, nope_dim=6, v_dim=5)", 156456),
    ("input(8x8x8) > conv3x3(->8) > conv3x3(->8, groups=8)", 179712),
    ("input(8x8x4) > dwconv3x3 > conv1x1(->8)", None),
]

# programs whose first layer's backward is not known (None), measured with an input that needs a gradient
WITH_GRADIENT = [
    "input(8x8x4) > botattn(->4, heads=2)",
    "input(8x8x4) > haloattn(->4, heads=2, block=4, halo=1)",
    "input(8x8x4) > lambdalayer(heads=2, head_dim=2, relpos)",
    "input(64x32) > xca(heads=4, bias)",
    "input(64x32) > clsattn(heads=4, bias)",
    "input(64x32) > talkattn(heads=4, bias)",
    "input(8x8x32) > outlook(heads=4, kernel=3, stride=2)",
    "input(65x32) > clsblock(heads=4)",
    "input(8x8x16) > gc(4)",
    "input(37x16) > attn(heads=2, bias, volume=4x3x3, cls, kv=3x3x3, kv_stride=1x2x2)",
    "input(8x8x16) > cga(heads=2, key_dim=4, value_dim=8, window=4, kernels=3x5)",
    "input(16x16x8) > qpoolattn(heads=2, ->16, window=8, stride=2, bias)",
    "input(16x16x8) > sepattn(patch=2, bias)",
    "input(7x7x8) > levitattn(heads=2, key_dim=4, value_dim=8, bias)",
    "input(8x8x8) > ef2attn(->16, heads=2, key_dim=4, value_dim=8, down)",
    "input(8x8x8) > litemla(heads=2, head_dim=4, bn)",
    "input(16x16x8) > gap > eca(5)",
    "input(8x8x3) > conv3x3(->4) > sepconv3x3(->8)",
    "input(8x8x4) > deconv4x4(->3, stride=2, pad=1, outpad=1)",
]


def _measured(text, **kwargs):
    net = paramsym.parse(text)
    module = paramsym.to_torch(net)
    x = paramsym.example_input(net, batch=B)
    return net, module, x, measure(module, x, **kwargs)


@pytest.mark.parametrize(("program", "expected"), FIRST)
def test_train_flops_equal_flop_counter_mode(program, expected):
    net, _, _, (forward, total) = _measured(program)
    assert forward == 2 * B * net.value(net.macs)
    assert ours(net) == total
    if expected is not None:
        assert total == expected


@pytest.mark.parametrize("program", WITH_GRADIENT)
def test_backward_of_each_kind_with_an_input_that_needs_a_gradient(program):
    net, module, x, _ = _measured(program)
    assert with_gradient(net) == measure(module, x, requires_grad=True)[1]


@pytest.mark.parametrize(
    "program",
    [
        "input(8x8x4) > botattn(->4, heads=2)",
        "input(20x16) > gru(->32)",
        "input(14x14x8) > gcstage(depth=1, heads=2, window=7, ls)",
    ],
)
def test_an_unknown_backward_is_none_not_a_guess(program):
    assert training(paramsym.parse(program)).train_flops is None


def test_flop_counter_mode_counts_a_grouped_weight_gradient_groups_times():
    """Why the measurement counts grouped convolutions' weight gradients itself: FlopCounterMode's own count is
    the depthwise layer's weight gradient (1,152 MACs a sample) 8 times."""
    _, module, x, (_, total) = _measured("input(8x8x8) > conv3x3(->8) > conv3x3(->8, groups=8)")
    assert measure(module, x, raw=True)[1] - total == 2 * B * 7 * 1152


def test_full_recomputation_is_one_more_forward():
    program = "input(8x16) > dense(->16) > attn(heads=2, causal) > dense(->4)"
    net, _, _, (forward, total) = _measured(program, recompute=True)
    assert ours(net, recompute="full") == total == ours(net) + forward


def test_selective_recomputation_redoes_the_scores_and_sums():
    net = paramsym.parse("input(8x16) > dense(->16) > attn(heads=2, causal)")
    scores = 2 * 8 * 8 * 16  # the score and the value products of 2 heads of 8 on 8 positions
    assert ours(net, recompute="selective") - ours(net) == 2 * B * scores


# (program, MACs, MACs a fused causal kernel skips)
FUSED = [
    ("input(8x16) > attn(heads=2, causal)", 10240, 2 * 16 * (64 - 36)),
    ("input(8x16) > attn(heads=2)", 10240, 0),
    # a sliding window of 3: 1 + 2 + 3 * 6 = 21 of the 64 pairs
    ("input(8x16) > attn(heads=2, causal, window=3)", 10240, 2 * 16 * (64 - 21)),
    ("input(8x16) > attn(heads=2, causal, window=20)", 10240, 2 * 16 * (64 - 36)),
    # MLA: the scores of n + p = 10 and the sums of v = 5 channels, for each of 2 heads
    ("input(9x32) > mla(heads=2, kv_rank=8, rope_dim=4, nope_dim=6, v_dim=5)", 16110, (81 - 45) * 2 * 15),
]


@pytest.mark.parametrize(("program", "macs", "skipped"), FUSED)
def test_fused_attention_skips_the_masked_pairs(program, macs, skipped):
    net = paramsym.parse(program)
    fused = net.with_options(setup=Setup(attention="fused"))
    assert net.value(net.macs) == net.value(fused.macs) == macs
    assert net.value(net.flops) == 2 * macs
    assert net.value(fused.flops) == 2 * (macs - skipped)
    # the backward of the score and value products skips them twice (both operands)
    assert ours(net) - ours(net, attention="fused") == 2 * B * 3 * skipped


@pytest.mark.parametrize("T", [1, 2, 5, 8, 13])
@pytest.mark.parametrize("W", [1, 2, 3, 8, 20])
def test_sliding_window_pairs_are_counted_one_by_one(T, W):
    net = paramsym.parse(f"input({T}x8) > attn(heads=1, causal, window={W})")
    fused = net.with_options(setup=Setup(attention="fused"))
    pairs = sum(min(i + 1, W) for i in range(T))
    assert net.value(net.macs) - net.value(fused.flops) // 2 == 2 * 8 * (T * T - pairs)


def test_train_flops_total_and_6nd():
    net = paramsym.parse("input(16) > embed(100->32) > attn(heads=2, causal) > dense(->100)")
    run_ = net.with_options(setup=Setup(train=True, tokens=sympy.Integer(1600)))
    per_sequence = net.value(run_.train_flops)
    assert net.value(run_.train_flops_total) == per_sequence * 100
    assert net.value(run_.train_flops_6nd) == 6 * net.value(net.params) * 1600


def test_train_seconds_round_up_to_whole_seconds():
    from fractions import Fraction

    from paramsym.core.devices import DEVICES

    net = paramsym.parse("input(16) > embed(100->32) > dense(->100)")
    setup = Setup(tokens=sympy.Integer(10**12), device=DEVICES["h100"], mfu=Fraction(2, 5), precision="mixed-bf16")
    timed = net.with_options(setup=setup)
    total = int(net.value(timed.train_flops_total))
    rate = Fraction(9894, 10) * 10**12 * Fraction(2, 5)
    assert net.value(timed.train_seconds) == -(-Fraction(total) // rate)


# ---- real models


def _vision(build, shape):
    model = build()
    text = paramsym.from_torch(model, shape)
    net = paramsym.parse(text)
    x = torch.randn(B, shape[2], shape[0], shape[1])
    return net, measure(model, x)


def test_resnet18():
    import torchvision

    net, (forward, total) = _vision(lambda: torchvision.models.resnet18(num_classes=10), (64, 64, 3))
    assert forward == 2 * B * net.value(net.macs)
    assert ours(net) == total


def test_mobilenet_v2():
    import torchvision

    net, (forward, total) = _vision(lambda: torchvision.models.mobilenet_v2(num_classes=10), (64, 64, 3))
    assert forward == 2 * B * net.value(net.macs)
    assert ours(net) == total


def test_vit():
    import timm

    build = lambda: timm.create_model(  # noqa: E731
        "vit_tiny_patch16_224", pretrained=False, img_size=32, depth=2, num_classes=10
    )
    net, (forward, total) = _vision(build, (32, 32, 3))
    assert forward == 2 * B * net.value(net.macs)
    assert ours(net) == total


def _language_model(name, attn):
    import transformers

    T = 16
    if name == "gpt2":
        config = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=T, vocab_size=100)
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(
            vocab_size=100, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=T,
        )  # fmt: skip
        model = transformers.LlamaForCausalLM(config)
    model.config._attn_implementation = attn
    net = paramsym.parse(paramsym.from_torch(model, T))
    ids = torch.randint(0, 100, (B, T))
    return net, measure(model, ids)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_language_models(name, attn):
    net, (forward, total) = _language_model(name, attn)
    assert forward == 2 * B * net.value(net.macs)
    assert ours(net) == total


# ---- the command line


def cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_count_json_has_flops(capsys):
    code, out, _ = cli(capsys, "count", "input(8x16) > dense(->4)", "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["flops"]["value"] == 2 * document["macs"]["value"] == 2 * 8 * 16 * 4
    assert "train_flops" not in document


def test_fused_changes_flops_not_macs(capsys):
    program = "input(8x16) > attn(heads=2, causal)"
    plain = json.loads(cli(capsys, "count", program, "--format", "json")[1])
    fused = json.loads(cli(capsys, "count", program, "--format", "json", "--attention", "fused")[1])
    assert plain["macs"] == fused["macs"]
    assert fused["flops"]["value"] == plain["flops"]["value"] - 2 * 2 * 16 * 28


def test_train_json(capsys):
    code, out, _ = cli(capsys, "count", "input(8x16) > dense(->4)", "--format", "json", "--train", "--batch", "4")
    assert code == 0
    assert json.loads(out)["train_flops"]["value"] == 2 * 4 * 2 * 8 * 16 * 4  # weight gradients only


def test_solve_on_flops(capsys):
    code, out, _ = cli(capsys, "solve", "input(8x16) > dense(->C)", "--on", "flops", "--budget", "2048", "--for", "C")
    assert code == 0, out
    assert "C = 8" in out


def test_bad_attention_value_exits_2(capsys):
    assert cli(capsys, "count", "input(8x16) > dense(->4)", "--attention", "flash")[0] == 2


def test_train_flops_needs_train(capsys):
    code, out, err = cli(capsys, "formula", "input(8x16) > dense(->4)", "--on", "train_flops")
    assert code == 2
    assert "--train" in out + err


def test_explain_shows_training_and_6nd(capsys):
    code, out, _ = cli(
        capsys, "explain", "input(16) > embed(100->32) > attn(heads=2, causal) > dense(->100)", "--train",
        "--tokens", "1600", "--device", "h100", "--mfu", "0.4", "--attention", "fused",
    )  # fmt: skip
    assert code == 0
    assert "6ND" in out and "Training FLOPs" in out and "Training time" in out
