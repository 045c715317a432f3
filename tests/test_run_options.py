"""Every run option (core/setup.py, cli.py `_run_options`) refuses a bad value with one message that names
the option, exit status 2 and no traceback; and the labelled breakdown under the count table."""

from __future__ import annotations

import pytest

from paramsym.cli import main

LM = "input(T) > embed(100->8) > attn(heads=2, causal) > dense(->100)"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--batch", "0"], "--batch must be at least 1"),
        (["--batch", "-1"], "--batch must be a whole number of at least 1, not '-1'"),
        (["--batch", "3/2"], "--batch must be a whole number of at least 1, not '3/2'"),
        (["--batch", "2B"], "--batch 2B is ambiguous"),
        (["--gpus", "0", "--train"], "--gpus must be at least 1"),
        (["--tokens", "0"], "--tokens must be at least 1"),
        (["--weights", "int5"], "--weights int5: unknown format 'int5'"),
        (["--weights", "int4:g0"], "--weights int4:g0: the group size must be g and a whole number of at least 1"),
        (["--weights", "int4:g128:fp7"], "--weights int4:g128:fp7: unknown factor format 'fp7'"),
        (["--weights", "bf16:g64"], "--weights bf16:g64: bf16 is not quantized"),
        (["--kv", "fp4"], "--kv fp4: unknown format 'fp4'"),
        (["--activations", "int4:g1:fp16:x"], "a format has at most three parts"),
        (["--dtype", "float64"], "--dtype float64: unknown format 'float64'"),
        (["--device", "h900"], "--device h900: unknown device"),
        (["--device", "0,1"], "the peak FLOP/s and the bandwidth must be above 0"),
        (["--mfu", "0"], "--mfu must be above 0 and at most 1"),
        (["--mfu", "1.5"], "--mfu must be above 0 and at most 1"),
        (["--mfu", "x"], "--mfu must be a fraction such as 0.4 or 40%"),
        (["--attention", "fast"], "'fast' is not one of 'math', 'fused'"),
        (["--recompute", "some"], "'some' is not one of 'none', 'selective', 'full'"),
        (["--optimizer", "lion", "--train"], "'lion' is not one of"),
        (["--precision", "fp8", "--train"], "'fp8' is not one of"),
        (["--zero", "4", "--train"], "4 is not in the range"),
        (["--tp", "0", "--train"], "0 is not in the range"),
        (["--optimizer", "sgd"], "--optimizer applies to training: add --train"),
    ],
)
def test_a_bad_run_option_is_one_message(options, message, capsys):
    assert main(["count", LM, "--set", "T=8", *options]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_a_located_format_error_points_at_the_spot(capsys):
    assert main(["count", LM, "--set", "T=8", "--weights", "int4:g12x"]) == 2
    err = capsys.readouterr().err.splitlines()
    line = next(i for i, text in enumerate(err) if text.strip() == "--weights int4:g12x")
    # the caret is under the group, the first character after "int4:"
    assert err[line + 1].index("^") == err[line].index("g12x")


def test_the_breakdown_of_a_decoder(capsys):
    args = ["count", LM, "--set", "T=8", "--weights", "bf16", "--kv", "bf16", "--device", "h100"]
    assert main(args) == 0
    out = capsys.readouterr().out
    # weights (100*8 + 4*8*8 + 8*100 + 100) * 2 bytes; KV cache 2 * 8 * 8 values * 2 bytes
    assert "memory = weights 3.71 kB (bf16) + KV cache 256 bytes (bf16, one sequence) = 3.97 kB to serve" in out
    assert "decode = " in out and "on h100: " in out and "tokens/s" in out


def test_the_breakdown_of_training(capsys):
    assert main(["count", LM, "--set", "T=8", "--train", "--batch", "4", "--zero", "1", "--gpus", "2"]) == 0
    out = capsys.readouterr().out
    assert "train  = " in out and "per device (adamw, fp32, batch 4, ZeRO-1 over 2 GPUs):" in out
    assert "= model states " in out and "+ saved activations " in out
    assert "memory = weights" not in out  # the training breakdown alone


def test_a_cnn_shows_its_weights_and_no_decode(capsys):
    assert main(["count", "input(8x8x3) > conv3x3(->4) > relu > gap > dense(->10)"]) == 0
    out = capsys.readouterr().out
    assert "memory = weights 592 bytes (fp32, parameters and state)" in out
    assert "decode" not in out and "KV cache" not in out
