"""Encoder-decoder programs (docs/language.md, "Two inputs: encoder-decoders"): a second `input(T)` starts the
decoder, `attn(heads=h, source=@memory)` attends to the encoder's named output, `relbuckets=B` is T5's bucketed
relative-position bias (its table shared with `tie=`), `embed(V->d, tie=NAME)` the decoder's embedding that looks
its ids up in the encoder's table. Checked against transformers' T5 and BART built from small configs on the CPU:
the import (`paramsym.from_torch`) against parameters(), the counts at two lengths S != T against a forward pass
with `input_ids` of S tokens and `decoder_input_ids` of T (MACs by FlopCounterMode on the eager attention; the
decoder's KV cache against transformers' EncoderDecoderCache, its self-attention and cross-attention caches), and
the located errors and refusals."""

from __future__ import annotations

import pytest

import paramsym
from paramsym.errors import ImportRefused, ParamsymError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

S, T = 10, 6  # the encoder's and the decoder's lengths: different, so that neither stands for the other


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def t5(cls="T5ForConditionalGeneration", **config):
    base = dict(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=3, num_decoder_layers=2, num_heads=4)
    config = transformers.T5Config(**{**base, **config})
    config._attn_implementation = "eager"  # its SDPA path runs the cross-attention's product uncounted
    return getattr(transformers, cls)(config).eval()


def bart(cls="BartForConditionalGeneration", **config):
    base = dict(
        vocab_size=100,
        d_model=32,
        encoder_layers=2,
        decoder_layers=3,
        encoder_attention_heads=4,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=48,
        max_position_embeddings=64,
    )
    config = transformers.BartConfig(**{**base, **config})
    config._attn_implementation = "eager"
    return getattr(transformers, cls)(config).eval()


MODELS = [
    ("t5", lambda: t5(feed_forward_proj="relu")),
    ("t5-gated", lambda: t5(feed_forward_proj="gated-gelu", d_kv=16, num_layers=2, num_decoder_layers=1)),
    ("t5-model", lambda: t5("T5Model")),
    ("t5-one-layer", lambda: t5(num_layers=1, num_decoder_layers=1)),
    ("bart", bart),
    ("bart-model", lambda: bart("BartModel", activation_function="relu")),
]


def run(model, encoder: int, decoder: int):
    """(MACs, self-attention cache values, cross-attention cache values) of one forward pass."""
    ids = torch.zeros(1, encoder, dtype=torch.long)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(input_ids=ids, decoder_input_ids=torch.zeros(1, decoder, dtype=torch.long), use_cache=True)
    cache = out.past_key_values
    assert type(cache).__name__ == "EncoderDecoderCache"

    def values(part) -> int:
        return sum(layer.keys.numel() + layer.values.numel() for layer in part.layers)

    return counter.get_total_flops() // 2, values(cache.self_attention_cache), values(cache.cross_attention_cache)


def decoder_kv(network, **values) -> int:
    """The KV cache of the layers after the second input (the decoder's); a layer of a symbolic repeat counts
    its copies already."""
    embeds = [lc.layer.index for lc in network.layers if lc.layer.kind.key == "embed"]
    start = embeds[1]
    return sum(network.value(lc.counts["kv_cache"], **values) for lc in network.layers if lc.layer.index > start)


@pytest.mark.parametrize("name, build", MODELS, ids=[m[0] for m in MODELS])
def test_imported_counts_are_transformers(name, build):
    torch.manual_seed(0)
    model = build()
    text = paramsym.from_torch(model, 12)
    network = paramsym.parse(text)
    assert network.evaluate()["params"] == numel(model)
    values = network.evaluate(S=S, T=T)
    macs, self_cache, cross_cache = run(model, S, T)
    assert values["macs"] == macs
    c = model.config
    if name.startswith("t5"):
        kv, encoder_layers, decoder_layers = c.num_heads * c.d_kv, c.num_layers, c.num_decoder_layers
    else:
        kv, encoder_layers, decoder_layers = c.d_model, c.encoder_layers, c.decoder_layers
    # the decoder keeps what transformers' EncoderDecoderCache holds: its self-attention's keys and values of T
    # positions, and its cross-attention's of the S encoder positions
    assert self_cache == 2 * decoder_layers * kv * T
    assert cross_cache == 2 * decoder_layers * kv * S
    assert decoder_kv(network, S=S, T=T) == self_cache + cross_cache
    # and the program counts every attention (LANGUAGE.md): the encoder's self-attentions too, 2·S·kv each
    assert values["kv_cache"] == self_cache + cross_cache + 2 * encoder_layers * kv * S
    out = model(input_ids=torch.zeros(1, S, dtype=torch.long), decoder_input_ids=torch.zeros(1, T, dtype=torch.long))
    main = out.logits if hasattr(out, "logits") else out.last_hidden_state
    assert tuple(network.value(v, S=S, T=T) for v in network.output_shape.dims()) == tuple(main.shape[1:])


def test_t5_encoder_model():
    model = t5("T5EncoderModel")
    text = paramsym.from_torch(model, 12)
    assert "input(T)" not in text and "relbuckets=32" in text
    network = paramsym.parse(text)
    assert network.evaluate()["params"] == numel(model)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(input_ids=torch.zeros(1, S, dtype=torch.long))
    assert network.evaluate(S=S)["macs"] == counter.get_total_flops() // 2
    assert tuple(out.last_hidden_state.shape[1:]) == (S, 32)


def test_t5_relative_bias_is_in_the_first_layers_only():
    model = t5()
    holders = [n for n, _ in model.named_modules() if n.endswith("relative_attention_bias")]
    assert holders == [
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias",
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias",
    ]
    one = paramsym.parse("input(T x d) > attn(heads=h, relbuckets=B)").params
    plain = paramsym.parse("input(T x d) > attn(heads=h)").params
    symbols = paramsym.parse("input(T x d) > attn(heads=h, relbuckets=B)").symbols
    assert (one - plain).simplify() == symbols["B"] * symbols["h"]
    tied = paramsym.parse("input(12 x 32) > attn(heads=4, relbuckets=32) as p > attn(heads=4, tie=p)")
    assert [lc.counts["params"] for lc in tied.layers] == [4 * 32 * 32 + 32 * 4, 4 * 32 * 32]


def test_bart_positions_and_buffer():
    """BART's learned positions have 2 rows more than max_position_embeddings; final_logits_bias is a buffer,
    counted nowhere (it is not learned)."""
    model = bart()
    assert model.model.encoder.embed_positions.num_embeddings == 66
    assert [n for n, _ in model.named_buffers()] == ["final_logits_bias"]
    text = paramsym.from_torch(model, 12)
    assert "posembed(n + 2)" in text and "dense(->V, tie=shared)" in text
    assert paramsym.parse(text).evaluate()["state"] == 0


def test_bart_longer_than_its_positions_is_refused():
    with pytest.raises(ImportRefused, match="max_position_embeddings=64"):
        paramsym.from_torch(bart(), 65)


def test_a_program_that_counts_otherwise_is_refused():
    from paramsym.frameworks.importer import _verified

    model = t5()
    text = paramsym.from_torch(model, 12)
    for wrong in (
        text.replace("relbuckets=32) as decpos", "relbuckets=31) as decpos"),
        text.replace("embed(V->d, tie=shared)", "embed(V->d)"),
        text.replace("source=@memory)) > res(rmsnorm > ff)\n", "source=@memory, bias)) > res(rmsnorm > ff)\n"),
    ):
        assert wrong != text
        with pytest.raises(ImportRefused, match="parameters"):
            _verified(model, wrong, (12,))
    # the output's shape: the decoder's, not the encoder's memory
    with pytest.raises(ImportRefused):
        _verified(model, text.split("> input(T)")[0].replace(" as memory", "") + "\n", (12,))


def test_other_classes_are_refused_by_name():
    config = transformers.T5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4)
    model = transformers.T5ForSequenceClassification(config)
    with pytest.raises(ImportRefused, match="T5ForConditionalGeneration, T5Model, T5EncoderModel"):
        paramsym.from_torch(model, 12)


PROGRAM = (
    "input(S) > embed(100->32) as shared > res(rmsnorm > attn(heads=4, relbuckets=32) as encpos) > rmsnorm as memory "
    "> input(T) > embed(100->32, tie=shared) > res(rmsnorm > attn(heads=4, causal, relbuckets=32) as decpos) "
    "> res(rmsnorm > attn(heads=4, source=@memory)) > dense(->100, tie=shared)"
)


def test_cross_attention_counts_as_source_shape():
    named = paramsym.parse("input(S) > embed(V->c) as m > input(T) > embed(V->d) > attn(heads=h, source=@m)")
    shaped = paramsym.parse("input(T) > embed(V->d) > attn(heads=h, source=S x c)")
    for quantity in ("params", "macs", "kv_cache"):
        a, b = named.layers[-1].counts[quantity], shaped.layers[-1].counts[quantity]
        assert sympy_equal(a, b), quantity
    assert named.output_shape.describe() == "T x d"


def sympy_equal(a, b) -> bool:
    import sympy

    return sympy.simplify(a - b) == 0


# (program, the message's start)
ERRORS = [
    ("input(10) > embed(100->32) > res(input(6))", "input(...) is the first stage of the network, or a stage"),
    ("def dec = input(6) > embed(9->4); input(10) > embed(9->4) > dec", "input(...) is the first stage"),
    ("input(10) > embed(100->32) > (input(6)) * 2", "input(...) is the first stage"),
    ("input(10 x 8) > attn(heads=2, source=@m)", "source=@m: no value named 'm'"),
    ("input(10 x 8) > dense(->4, tie=@m)", "tie=@m: dense's tie= takes a value written out"),
    ("def b(w) = dense(->w); input(10 x 8) > dense(->8) as m > b(w=@m)", "w=@...: a block's parameter"),
    ("input(9 x 8) > moe(dense(->8), experts=@m, top=1)", "experts=@m"),
    (
        "input(4x4x8) > conv1x1(->8) as m > input(10 x 8) > attn(heads=2, source=@m)",
        "source=@m: cross-attention reads a sequence",
    ),
    ("input(4x4x8) > attn(heads=2, relbuckets=32)", "relbuckets= buckets the offsets"),
    ("input(10 x 8) > attn(heads=2, relbuckets=0)", "relbuckets= (the number of relative-position buckets)"),
    ("input(10 x 8) > attn(heads=2, relbuckets=32, source=5x8)", "relbuckets= (T5's relative-position bias"),
    ("input(10 x 8) > attn(heads=2, relbuckets=32) as p > attn(heads=2, tie=p, relbuckets=32)", "tie= uses the"),
    ("input(10 x 8) > dense(->8) as p > attn(heads=2, tie=p)", "computes no position bias of its own"),
]


@pytest.mark.parametrize("program, message", ERRORS)
def test_located_errors(program, message):
    with pytest.raises(ParamsymError) as caught:
        paramsym.parse(program).evaluate()
    assert message in str(caught.value)
    assert caught.value.pos is not None


def test_tied_heads_must_agree():
    with pytest.raises(ParamsymError, match="shared table of relative-position biases has 2 heads"):
        paramsym.parse("input(10 x 8) > attn(heads=2, relbuckets=32) as p > attn(heads=4, tie=p)").evaluate()
    symbolic = paramsym.parse("input(10 x 8) > attn(heads=2, relbuckets=32) as p > attn(heads=g, head_dim=4, tie=p)")
    with pytest.raises(ParamsymError, match="has 2 heads"):
        symbolic.evaluate(g=4)
    assert symbolic.evaluate(g=2)["params"] == 2 * (4 * 8 * 8) + 32 * 2  # the table counted once


def test_exports_refuse_two_inputs():
    network = paramsym.parse(PROGRAM.replace("input(S)", "input(10)").replace("input(T)", "input(6)"))
    with pytest.raises(ParamsymError, match=r"second input|relbuckets|tie="):
        paramsym.to_torch(network)
    one_input_bias = paramsym.parse("input(10) > embed(100->32) > attn(heads=4, relbuckets=32)")
    with pytest.raises(ParamsymError, match="relbuckets"):
        paramsym.to_torch(one_input_bias)
    second = paramsym.parse("input(10) > embed(100->32) > ln as m > input(6) > embed(100->32)")
    with pytest.raises(ParamsymError, match="second input"):
        paramsym.to_torch(second)


def test_explain_names_the_buckets_and_the_source():
    from paramsym.render.explain import explain

    text = explain(paramsym.parse(PROGRAM), S=S, T=T)
    assert "T5's relative-position bias (relbuckets=32)" in text
    assert "the table of encpos" not in text  # no layer ties to encpos here
    assert "keys from 10 x 32 (the value memory)" in text
    assert "The table of shared (tied)" in text


def test_inputs_in_json_and_explain():
    from paramsym.render.explain import explain

    network = paramsym.parse("input(10) > embed(100->32) as m > input(6) > embed(100->32) > attn(heads=4, source=@m)")
    assert [shape.describe() for shape in network.inputs] == ["10", "6"]
    assert network.with_values().inputs == network.inputs
    assert network.to_dict()["inputs"] == [["10"], ["6"]]
    assert explain(network).startswith("Inputs: 10, then 6 (channels last)")
    assert "inputs" not in paramsym.parse("input(10) > embed(100->32)").to_dict()


def test_csv_total_row_reads_both_inputs():
    network = paramsym.parse("input(10) > embed(100->32) as m > input(6) > embed(100->32) > attn(heads=4, source=@m)")
    from paramsym.render.printers import render_csv

    last = render_csv(network).strip().splitlines()[-1]
    assert last.startswith(",total,,,10; 6,6x32,")


@pytest.mark.parametrize("build", [t5, bart], ids=["t5", "bart"])
def test_two_lengths(build):
    """`from_torch(model, (S, T))` (the CLI's `--input 10x6`): the encoder reads S tokens, the decoder T; the
    verification runs the model so."""
    model = build()
    for shape in ((S, T), f"{S}x{T}"):
        text = paramsym.from_torch(model, shape)
        assert f"let S = {S}; let T = {T}" in text
        network = paramsym.parse(text)
        macs, self_cache, cross_cache = run(model, S, T)
        assert network.evaluate()["macs"] == macs
        assert decoder_kv(network) == self_cache + cross_cache


def test_two_lengths_only_for_an_encoder_decoder():
    with pytest.raises(ImportRefused, match="give its length"):
        paramsym.from_torch(t5("T5EncoderModel"), (S, T))
    with pytest.raises(ImportRefused, match="max_position_embeddings=64"):
        paramsym.from_torch(bart(), (S, 65))
