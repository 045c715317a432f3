"""Serving (core/serving.py): prefill and decode FLOPs against FlopCounterMode on transformers 5.23 models built
small on the CPU (a decode step is ONE token run with a cache of T - 1 positions), the keys and values a step
reads against the cache the model really keeps, the serving memory and solve for the longest context, roofline
times on a device, the networks that do not decode, and llm-analysis' published formulas side by side
(docs/language-models.md, "Serving: prefill and decode")."""

from __future__ import annotations

import json
from fractions import Fraction
from math import ceil, floor
from pathlib import Path

import pytest
import sympy
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from paramsym.cli import main
from paramsym.core.devices import DEVICES
from paramsym.core.serving import decoder
from paramsym.core.setup import Setup, format_named, parse_size

transformers = pytest.importorskip("transformers")
from test_kind_sliding_window import gemma2, mistral  # noqa: E402  (small Mistral and Gemma-2 builders)

V = 20


def llama(T: int, V=V, d=16, L=2, h=4, g=2, F=40):
    config = transformers.LlamaConfig(
        vocab_size=V,
        hidden_size=d,
        intermediate_size=F,
        num_hidden_layers=L,
        num_attention_heads=h,
        num_key_value_heads=g,
        tie_word_embeddings=False,
        attn_implementation="eager",
    )
    program = (
        f"let T = {T}\ninput(T) > embed({V}->{d}) > (res(rmsnorm > attn(heads={h}, kv_heads={g}, rope, causal)) > "
        f"res(rmsnorm > mul(dense(->{F}) > silu | dense(->{F})) > dense(->{d}))) * {L} > rmsnorm > dense(->{V})"
    )
    return transformers.LlamaForCausalLM(config), program


def gpt2(T: int, V=V, d=16, L=2, h=2, n=32):
    """Learned positions (posembed), biases, a tied output layer."""
    config = transformers.GPT2Config(
        vocab_size=V, n_embd=d, n_layer=L, n_head=h, n_positions=n, attn_implementation="eager"
    )
    program = (
        f"let n = {T}\ninput(n) > embed({V}->{d}) as wte > posembed({n}) > (res(ln > attn(heads={h}, bias, causal)) > "
        f"res(ln > dense(->{4 * d}, bias) > gelu > dense(->{d}, bias))) * {L} > ln > dense(->{V}, tie=wte)"
    )
    return transformers.GPT2LMHeadModel(config), program


def network(program: str, **setup) -> paramsym.Network:
    return paramsym.parse(program).with_options(setup=Setup(**setup))


def step(model, T: int, batch: int) -> tuple[int, int, int]:
    """(FlopCounterMode's FLOPs of one decode step at context T, values of keys and values cached before it,
    values cached after it): the prompt of T - 1 tokens runs first, uncounted."""
    model.eval()
    with torch.no_grad():
        out = model(torch.randint(0, V, (batch, T - 1)), use_cache=True)
        cache = out.past_key_values
        before = sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)
        with FlopCounterMode(display=False) as counter:
            model(torch.randint(0, V, (batch, 1)), past_key_values=cache, use_cache=True)
        after = sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)
    return counter.get_total_flops(), before, after


def prefill(model, T: int, batch: int) -> int:
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randint(0, V, (batch, T)), use_cache=True)
    return counter.get_total_flops()


# (builder, T, window or None): global attention, sliding windows shorter and longer than the context, Gemma-2's
# local and global layers, GPT-2's learned positions and tied output layer
CASES = [
    (llama, 1, None),
    (llama, 6, None),
    (llama, 17, None),
    (gpt2, 9, None),
    (mistral, 5, 8),
    (mistral, 8, 8),
    (mistral, 13, 6),
    (gemma2, 12, 4),
    (gemma2, 5, 8),
]


def build(builder, T, w):
    torch.manual_seed(0)
    return builder(T) if w is None else builder(T, w)


@pytest.mark.parametrize("builder, T, w", CASES)
@pytest.mark.parametrize("batch", [1, 3])
def test_decode_flops_equal_flopcountermode(builder, T, w, batch):
    model, program = build(builder, T, w)
    net = network(program, batch=sympy.Integer(batch))
    flops, _, _ = step(model, T, batch) if T > 1 else (prefill(model, 1, batch), 0, 0)
    assert net.value(net.decode_flops) == flops


@pytest.mark.parametrize("builder, T, w", CASES)
def test_prefill_flops_equal_flopcountermode(builder, T, w):
    model, program = build(builder, T, w)
    net = network(program, batch=sympy.Integer(2))
    assert net.value(net.prefill_flops) == prefill(model, T, 2)


@pytest.mark.parametrize("builder, T, w", [c for c in CASES if c[1] > 1])
def test_a_step_reads_the_cache_and_its_own_keys_and_writes_one_position(builder, T, w):
    """What a step reads: the keys and values cached before it and its own (the attention reads the cache after
    appending); what it writes: one position's in every layer. At context T the cache then holds kv_cache."""
    model, program = build(builder, T, w)
    net = paramsym.parse(program)
    dec = decoder(net)
    _, before, after = step(model, T, 1)
    per_position = net.value(dec.kv_written)
    assert net.value(dec.kv_read) == before + per_position
    assert net.value(net.kv_cache) == after


def pairs(T: int, W: int | None) -> int:
    """The unmasked query/key pairs of causal attention, counted on the mask transformers builds."""
    i = torch.arange(T)
    allowed = i[:, None] >= i[None, :]
    if W is not None:
        allowed &= i[:, None] - i[None, :] < W
    return int(allowed.sum())


@given(T=st.integers(1, 40), W=st.one_of(st.none(), st.integers(1, 45)))
def test_fused_prefill_counts_the_unmasked_pairs(T, W):
    window = "" if W is None else f", window={W}"
    net = network(f"input({T} x 8) > attn(heads=2{window}, causal)", attention="fused")
    math = network(f"input({T} x 8) > attn(heads=2{window}, causal)")
    q = 8
    # the math kernel computes 2 x T x T x q MACs of scores; the fused one 2 x pairs x q
    assert net.value(math.prefill_flops) - net.value(net.prefill_flops) == 2 * 2 * q * (T * T - pairs(T, W))


LLAMA = Path("examples/llama2_7b.psym").read_text()
BF16 = format_named("bf16")


def bf16(**more) -> Setup:
    return Setup(weights=BF16, kv=BF16, activations=BF16, **more)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("prefill_flops", 62_921_270_886_400),
        ("decode_flops", 15_361_638_400),
        ("decode_bytes", 15_362_703_360),
        ("serve_memory_bytes", 15_624_314_880),
        ("prefill_ns", 201_670_741),
        ("decode_ns_per_token", 7_534_431),
        ("tokens_per_second", 132),
    ],
)
def test_llama2_7b_at_4096_on_a100_in_bf16(name, expected):
    net = paramsym.parse(LLAMA).with_options(setup=bf16(device=DEVICES["a100"]))
    assert net.value(net.quantity(name)) == expected


def test_the_times_are_the_roofline_of_the_counts():
    net = paramsym.parse(LLAMA).with_options(setup=bf16(device=DEVICES["h100"], batch=sympy.Integer(16)))
    flops, size = net.value(net.decode_flops), net.value(net.decode_bytes)
    seconds = max(Fraction(flops) / DEVICES["h100"].peak["16"], Fraction(size) / DEVICES["h100"].bandwidth)
    assert net.value(net.decode_ns_per_token) == ceil(seconds * 10**9)
    assert net.value(net.tokens_per_second) == floor(16 / seconds)


def test_symbolic_in_the_context_and_the_batch():
    net = paramsym.parse(LLAMA).with_options(setup=bf16(batch=parse_size("B", "--batch")))
    assert str(net.serve_memory_bytes) == "4*B*L*T*d + 6*F*L*d + 8*L*d**2 + 4*L*d + 4*V*d + 2*d"
    weights = 6_738_415_616 * 2
    assert net.value(net.serve_memory_bytes, B=4, T=1024) == weights + 4 * 1024 * 2**19


@pytest.mark.parametrize(
    "example",
    ["bert_base", "vit_b_16", "swin_t", "t5_base", "deepseek_v2_lite", "resnet18"],
)
def test_encoders_and_other_attentions_do_not_decode(example):
    net = paramsym.parse(Path(f"examples/{example}.psym").read_text()).with_options(setup=Setup(device=DEVICES["a100"]))
    for name in ("prefill_flops", "decode_flops", "decode_bytes", "serve_memory_bytes", "decode_ns_per_token"):
        assert net.quantity(name) is None
    assert "decode_flops" not in net.to_dict()


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("kv, T", [(None, 19574), ("bf16", 39149), ("int8", 78298)])
def test_solve_the_longest_context_that_serves_with_int4_weights(capsys, kv, T):
    more = ["--kv", kv] if kv else []
    args = ["solve", "examples/llama2_7b.psym", "--for", "T", "--on", "serve_memory_bytes"]
    status, out, err = run(capsys, *args, "--budget", "24000000000", "--weights", "int4", *more)
    assert status == 0, err
    assert f"T = {T}\n" in out
    net = paramsym.parse(LLAMA).with_options(
        setup=Setup(weights=format_named("int4"), kv=format_named(kv or "fp32"), activations=format_named("fp32"))
    )
    assert net.value(net.serve_memory_bytes, T=T) <= 24_000_000_000 < net.value(net.serve_memory_bytes, T=T + 1)


def test_a_device_by_name_and_by_its_figures(capsys):
    args = ["count", "examples/llama2_7b.psym", "--dtype", "bf16", "--format", "json"]
    status, named, err = run(capsys, *args, "--device", "h100")
    assert status == 0, err
    status, given_, err = run(capsys, *args, "--device", "989.4e12,3.35e12")
    assert status == 0, err
    named_json, given_json = json.loads(named), json.loads(given_)
    for key in ("prefill_ns", "decode_ns_per_token", "tokens_per_second"):
        assert named_json[key] == given_json[key]
    assert named_json["tokens_per_second"]["value"] == 218
    status, without, _ = run(capsys, *args)
    assert "decode_ns_per_token" not in json.loads(without) and "decode_bytes" in json.loads(without)


@pytest.mark.parametrize(
    "args, says",
    [
        (["--device", "h900"], "unknown device"),
        (["--device", "0,3e12"], "must be above 0"),
        (["--device", "1e15,fast"], "--device"),
        (["--weights", "int3"], "unknown format"),
        (["--batch", "0"], "at least 1"),
    ],
)
def test_bad_values_are_refused(capsys, args, says):
    status, _, err = run(capsys, "count", "examples/llama2_7b.psym", *args)
    assert status == 2 and says in err and "Traceback" not in err


def test_solve_on_a_decode_quantity_of_an_encoder_says_what_it_needs(capsys):
    status, _, err = run(
        capsys, "solve", "examples/bert_base.psym", "--for", "n", "--on", "decode_flops", "--budget", "1G"
    )
    assert status == 2 and "needs a causal decoder" in err


def test_explain_closes_with_the_serving_lines(capsys):
    status, out, err = run(capsys, "explain", "examples/llama2_7b.psym", "--dtype", "bf16", "--device", "a100")
    assert status == 0, err
    assert "Decode: a step at context 4,096 (the new token attends to the 4,095 cached positions and itself)" in out
    assert "15,362,703,360 bytes" in out and "132 tokens per second" in out


# ---- llm-analysis (github.com/cli99/llm-analysis, llm_analysis/analysis.py) side by side ---------------------
# Its formulas, written out for Llama-2-7B (its model config NousResearch_Llama-2-7b-hf: 32 layers, 32 heads,
# d = 4096, V = 32000, 32 key/value heads, ffn_embed_dim = 16384), batch 1, T = 4096, w16a16e16.
L, D, H, VOCAB, FFN_LA, F, T = 32, 4096, 32, 32000, 16384, 11008, 4096


def la_flops_fwd_total(b: int, s: int) -> int:
    """get_num_flops_fwd_total: per layer get_num_flops_fwd_per_layer_attn (4bsd² + 4bsd²/groups + 4bs²d) and
    _mlp (4bsd²·ffn_embed_dim/d), then the logits 2bsdV."""
    attn = 4 * b * s * D**2 + 4 * b * s * D**2 // 1 + 4 * b * s**2 * D
    mlp = 4 * b * s * D * FFN_LA
    return L * (attn + mlp) + 2 * b * s * D * VOCAB


def la_kv_cache_bytes(b: int, s: int) -> int:
    """get_memory_kv_cache_per_layer x layers: 2·b·s·head_dim·kv_heads·bytes."""
    return L * 2 * b * s * (D // H) * H * 2


def test_llm_analysis_side_by_side():
    net = paramsym.parse(LLAMA).with_options(setup=bf16(device=DEVICES["a100"]))
    value = net.value
    # the KV cache: the same
    assert value(net.kv_cache_bytes) == la_kv_cache_bytes(1, T) == 2_147_483_648
    # the prefill: the same but for the MLP, Llama's three d x 11008 matrices against llm-analysis' two of 16384
    gate = L * 2 * T * D * (3 * F - 2 * FFN_LA)
    assert value(net.prefill_flops) - la_flops_fwd_total(1, T) == gate
    # a decode step: llm-analysis runs the forward at seq_len = 1, the new token attending to itself alone; here
    # it attends to the T - 1 cached positions too: 2 x 2 x (T - 1) x d FLOPs a layer more, and the MLP as above
    assert value(net.decode_flops) - la_flops_fwd_total(1, 1) == L * 2 * D * (3 * F - 2 * FFN_LA) + L * 4 * (T - 1) * D
    # the bytes a step moves: llm-analysis reads the weights of attention and MLP, the whole input embedding
    # (get_latency_fwd_input_embedding), no output layer (its logits are compute-bound there), and loads and
    # stores the whole KV cache (2 x kv_cache); here: every weight, one row of the embedding, the cache read
    # once and one position written
    la_weights = (L * (4 * D * D + 2 * D * FFN_LA) + VOCAB * D) * 2
    la_kv = 2 * la_kv_cache_bytes(1, T)
    ours_weights = (net.value(net.params) - VOCAB * D + D) * 2
    ours_kv = la_kv_cache_bytes(1, T) + L * 2 * D * 2
    assert value(net.decode_bytes) == ours_weights + ours_kv
    mlp = L * D * (3 * F - 2 * FFN_LA) * 2
    norms = (2 * L * D + D) * 2
    assert ours_weights - la_weights == mlp + norms - VOCAB * D * 2 + D * 2 + VOCAB * D * 2
    assert ours_kv - la_kv == L * 2 * D * 2 - la_kv_cache_bytes(1, T)


DECODERS = [
    "gpt2",
    "gpt3",
    "llama2_7b",
    "llama3_8b",
    "llama_symbolic",
    "mistral_7b",
    "mixtral_8x7b",
    "qwen1_5_moe_a2_7b",
    "qwen2_5_7b",
    "phi3_mini",
    "gemma2_9b",
]


@pytest.mark.parametrize("example", DECODERS)
@pytest.mark.parametrize("T", [1, 2, 3000, 5000])
def test_a_decode_step_is_what_the_fused_prefill_of_one_more_position_adds(example, T):
    """For a causal decoder whose layers work on each position alone, the step at context T costs what the prefill
    of T positions costs beyond that of T - 1, when the prefill computes the unmasked pairs alone (a fused kernel)."""
    net = network(Path(f"examples/{example}.psym").read_text(), attention="fused")
    length = decoder(net).T.name
    if length == "n" and T > 1024:
        T = 1024  # GPT-2's learned positions stop there
    at = {"d": 1536} if example == "llama_symbolic" else {}
    fused = net.prefill_flops
    assert net.value(net.decode_flops, **{length: T}, **at) == net.value(fused, **{length: T}, **at) - (
        net.value(fused, **{length: T - 1}, **at) if T > 1 else 0
    )


@pytest.mark.parametrize("example", DECODERS)
def test_every_causal_language_model_of_the_examples_decodes(example):
    net = paramsym.parse(Path(f"examples/{example}.psym").read_text())
    assert decoder(net) is not None
    assert set(net.to_dict()) >= {"prefill_flops", "decode_flops", "decode_bytes", "serve_memory_bytes"}
