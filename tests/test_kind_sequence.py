"""The sequence layers of LANGUAGE.md section 7 (paramsym/kinds/sequence.py): embed, posembed, cls,
tokens, first, last; ln(nobias); and dense(..., tie=NAME) exported as one shared weight. Checked
against PyTorch (nn.Embedding, torchvision's ViT-B/16, Hugging Face's GPT-2), Keras, export and import."""

from __future__ import annotations

import re

import keras
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch before keras)
from helpers.cli_helpers import run
from helpers.frameworks import torch_params
from helpers.round_trip import import_back

V, D = 50257, 768

# (program, params, output shape channels last)
CASES = [
    ("input(10) > embed(10000->128)", 1280000, [10, 128]),
    ("input(224x224x3) > conv16x16(->768, stride=16, bias) > tokens > cls > posembed(197)", 742656, [197, 768]),
    (
        f"let V = {V}\nlet d = {D}\ninput(1024) > embed(V->d) as wte > posembed(1024) > ln > dense(->V, tie=wte)",
        V * D + 1024 * D + 2 * D,
        [1024, V],
    ),
    ("input(16) > embed(100->8) > posembed(2)", 800 + 16, [16, 8]),  # BERT's token types: N < T
    ("input(16) > embed(100->8) > posembed(32)", 800 + 256, [16, 8]),  # a table longer than the sequence
    ("input(6x5) > cls", 5, [7, 5]),
    ("input(6x5) > cls > cls", 10, [8, 5]),
    ("input(4x6x5) > tokens", 0, [24, 5]),
    ("input(2x3x4x5) > tokens", 0, [24, 5]),
    ("input(6x5) > tokens", 0, [6, 5]),  # a sequence stays as it is
    ("input(6x5) > first", 0, [5]),
    ("input(6x5) > last > dense(->3, bias)", 18, [3]),
    ("input(7x32) > ln(nobias)", 32, [7, 32]),
    ("input(32) > ln(nobias)", 32, [32]),
    ("input(32) > ln", 64, [32]),
]


def _dims(shape) -> list[int]:
    return [int(d) for d in shape.dims()]


@pytest.mark.parametrize("program, params, shape", CASES, ids=[c[0] for c in CASES])
def test_counts(program, params, shape):
    net = paramsym.parse(program)
    values = net.evaluate()
    assert (values["params"], values["state"]) == (params, 0)
    assert [net.evaluator().integer(d) for d in net.output_shape.dims()] == shape  # after the lets


def test_symbolic_formulas():
    net = paramsym.parse("input(T) > embed(V->d) > cls > posembed(N) > first")
    assert str(net.params) == "N*d + V*d + d"
    assert net.output_shape.dims() == [paramsym.language.syntax.symbol("d")]
    assert str(paramsym.parse("input(H x W x C) > tokens").output_shape.describe()) == "H*W x C"
    assert str(paramsym.parse("input(T x d) > cls").output_shape.describe()) == "T + 1 x d"
    # embed's MACs are 0 (a lookup), its fan-in 1 (each value is one entry of the table)
    layer = paramsym.parse("input(T) > embed(V->d)").layers[0]
    assert (layer.counts.macs, layer.counts.fan_in) == (0, 1)


def test_gpt2_parts_match_hugging_face():
    transformers = pytest.importorskip("transformers")
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config())
    assert model.lm_head.weight is model.transformer.wte.weight
    parts = (model.transformer.wte, model.transformer.wpe, model.transformer.ln_f, model.lm_head)
    distinct = {id(p): p for part in parts for p in part.parameters()}  # PyTorch counts a shared one once
    assert len(distinct) == 4  # wte (shared with lm_head), wpe, ln_f's weight and bias
    numel = sum(p.numel() for p in distinct.values())
    net = paramsym.parse(CASES[2][0])
    assert net.evaluate()["params"] == numel


def test_vit_stem_matches_torchvision():
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        vit = torchvision.models.vit_b_16()
    expected = torch_params(vit.conv_proj) + vit.class_token.numel() + vit.encoder.pos_embedding.numel()
    net = paramsym.parse(CASES[1][0])
    assert net.evaluate()["params"] == expected == 742656
    assert list(vit.encoder.pos_embedding.shape[1:]) == _dims(net.output_shape)


@pytest.mark.parametrize("vocabulary, width, length", [(10, 4, 7), (1000, 16, 1), (50257, 8, 12)])
def test_embed_matches_pytorch(vocabulary, width, length):
    module = nn.Embedding(vocabulary, width)
    ids = torch.randint(0, vocabulary, (1, length))
    with FlopCounterMode(display=False) as counter:
        y = module(ids)
    net = paramsym.parse(f"input({length}) > embed({vocabulary}->{width})")
    values = net.evaluate()
    assert (values["params"], values["macs"]) == (torch_params(module), counter.get_total_flops() // 2)
    assert list(y.shape[1:]) == _dims(net.output_shape)
    assert net.layers[0].layer.kind.weight(net.layers[0].layer) == tuple(module.weight.shape)


SEQUENCES = [
    "input(10) > embed(1000->16) > posembed(10) > ln(nobias) > dense(->32, bias) > relu > last",
    "input(8x8x3) > conv4x4(->12, stride=4, bias) > tokens > cls > posembed(5) > ln > first > dense(->10)",
    "input(3x4x6) > tokens > cls > posembed(2)",
    "input(6x5) > first",
]


@pytest.mark.parametrize("program", SEQUENCES)
def test_export_to_torch_runs_and_imports_back(program):
    net = paramsym.parse(program)
    module = paramsym.to_torch(net)
    x = paramsym.example_input(net)  # one sample: the MACs are per sample
    if "> embed" in program:
        assert x.dtype == torch.long
        x = torch.randint(0, 1000, x.shape)
    with FlopCounterMode(display=False) as counter:
        y = module(x)
    dims = _dims(net.output_shape)
    assert list(y.shape[1:]) == dims[-1:] + dims[:-1]  # channels first in PyTorch
    assert torch_params(module) == net.evaluate()["params"]
    assert counter.get_total_flops() // 2 == net.evaluate()["macs"]
    imported, again = import_back(net, module)
    assert again.evaluate() == net.evaluate(), imported
    # the written source runs without paramsym and gives the same count and shape
    namespace: dict = {}
    exec(paramsym.torch_source(net), namespace)
    built = namespace["build_model"]()
    assert torch_params(built) == torch_params(module)
    assert built(x).shape == y.shape


def test_import_a_hand_written_embedding():
    model = nn.Sequential(nn.Embedding(50, 4, padding_idx=0))
    assert paramsym.from_torch(model, (7,)).split() == ["input(7)", ">", "embed(50->4)"]


def test_tie_shares_one_parameter():
    net = paramsym.parse(CASES[2][0])
    module = paramsym.to_torch(net)
    embedding = next(m for m in module.modules() if isinstance(m, nn.Embedding))
    linear = next(m for m in module.modules() if isinstance(m, nn.Linear))
    assert linear.weight is embedding.weight
    assert torch_params(module) == net.evaluate()["params"] == V * D + 1024 * D + 2 * D
    text = paramsym.torch_source(net)
    assert "shared_wte = nn.Embedding(50257, 768)" in text and ".weight = shared_wte.weight" in text
    namespace: dict = {}
    exec(text, namespace)
    with torch.device("meta"):
        built = namespace["build_model"]()
    assert torch_params(built) == net.evaluate()["params"]


@pytest.mark.parametrize(
    "program",
    [
        "input(6) > dense(->10, bias) as a > relu > dense(->6, tie=a, bias)",  # the transposed size
        "input(6) > dense(->6) as a > dense(->6, tie=a)",  # the same size
        "input(5x6) > dense(->10) as a > dense(->10) > dense(->6, tie=a)",  # on a sequence
        "input(12) > embed(40->6) as e > dense(->40, tie=e) > last",
    ],
)
def test_ties_run_in_pytorch(program):
    net = paramsym.parse(program)
    module = paramsym.to_torch(net)
    x = paramsym.example_input(net)
    y = module(x)
    dims = _dims(net.output_shape)
    assert list(y.shape[1:]) == dims[-1:] + dims[:-1]
    assert torch_params(module) == net.evaluate()["params"]
    weights = [m.weight for m in module.modules() if hasattr(m, "weight")]
    assert len({id(w) for w in weights}) == len(weights) - 1  # one weight appears twice
    with pytest.raises(paramsym.ParamsymError, match="cannot share the weight of another layer"):
        paramsym.to_keras(net)


def test_keras():
    net = paramsym.parse("input(10) > embed(1000->16) > ln(nobias) > last > dense(->3, bias)", convention="keras")
    model = paramsym.to_keras(net)
    assert any(isinstance(layer, keras.layers.Embedding) for layer in model.layers)
    assert model.count_params() == net.evaluate()["total"] == 16000 + 16 + 16 * 3 + 3
    assert list(model.output_shape[1:]) == [3]
    embedding = keras.layers.Embedding(1000, 16)
    embedding.build((None, 10))
    assert embedding.count_params() == paramsym.parse("input(10) > embed(1000->16)").params
    for program in ("input(4x6x5) > tokens", "input(6x5) > first", "input(6x5) > last"):
        net = paramsym.parse(program)
        model = paramsym.to_keras(net)
        reference = torch.arange(float(net.input_shape.elements)).reshape(1, *_dims(net.input_shape))
        x = keras.ops.convert_to_numpy(model(keras.ops.convert_to_tensor(reference.numpy())))
        kind = program.split()[-1]
        expected = reference.reshape(1, 24, 5) if kind == "tokens" else reference[:, 0 if kind == "first" else -1]
        assert (torch.from_numpy(x) == expected).all()
    for program, why in (
        ("input(6x5) > cls", "prepends a learned vector"),
        ("input(6x5) > posembed(6)", "adds a learned table"),
    ):
        with pytest.raises(paramsym.ParamsymError, match=why):
            paramsym.to_keras(paramsym.parse(program))


def test_torch_layouts_agree_with_keras():
    """tokens, first and last pick the same values in the exported PyTorch module as in Keras' order."""
    values = torch.arange(120.0).reshape(1, 4, 6, 5)  # channels last
    for program, expected in (
        ("input(4x6x5) > tokens", values.reshape(1, 24, 5)),
        ("input(4x6x5) > tokens > first", values[:, 0, 0]),
        ("input(4x6x5) > tokens > last", values[:, -1, -1]),
    ):
        module = paramsym.to_torch(paramsym.parse(program))
        y = module(values.movedim(-1, 1))
        assert torch.equal(y.movedim(1, -1) if y.dim() > 2 else y, expected)


def test_ln_nobias():
    net = paramsym.parse("input(7x32) > ln(nobias)")
    module = paramsym.to_torch(net)
    norms = [m for m in module.modules() if isinstance(m, nn.LayerNorm)]
    assert norms[0].bias is None and torch_params(module) == torch_params(nn.LayerNorm(32, bias=False)) == 32
    assert "ln(nobias)" in paramsym.from_torch(module, (7, 32))
    layer = keras.layers.LayerNormalization(center=False)
    layer.build((None, 7, 32))
    assert layer.count_params() == 32
    assert "LayerNormalization(center=False)" in paramsym.keras_source(net)
    assert "scale per channel and no shift: 32 parameters" in run("explain", "input(7x32) > ln(nobias)").stdout


def _error(program: str) -> paramsym.ParamsymError:
    with pytest.raises(paramsym.ParamsymError) as info:
        paramsym.parse(program)
    return info.value


@pytest.mark.parametrize(
    "program, words, column",
    [
        ("input(8x8x3) > embed(10->4)", "embed looks up token ids, so it must come right after input(T)", 16),
        ("input(10) > relu > embed(10->4)", "must come right after input(T)", 20),
        ("input(10x4) > embed(10->4)", "must come right after input(T); its input is 10 x 4", 15),
        ("embed(10->4)", "must come right after input(T)", 1),
        ("input(10) > embed(->4)", "embed(->4) needs the vocabulary: write embed(V->4)", 19),
        ("input(10) > embed", "embed needs its vocabulary and width", 13),
        (
            "input(8x8x4) > cls",
            "cls prepends a learned vector to the positions of a sequence (T x d), but its input is the map 8 x 8 x 4",
            16,
        ),
        ("input(8) > cls", "but its input is a vector of 8", 12),
        ("input(8) > first", "first takes one position of a sequence (T x d), but its input is a vector of 8", 12),
        ("input(8x8x4) > last", "make its positions a sequence first with tokens", 16),
        ("input(8) > tokens", "tokens makes the positions of a map a sequence, but its input is a vector of 8", 12),
        ("input(8x4) > posembed", "posembed needs the size of its table", 14),
        ("input(8x4) > posembed(0)", "must be a positive whole number, not 0", 23),
        ("input(8x4) > posembed(2.5)", "must be a positive whole number", 23),
        ("input(8x8x4) > posembed(60)", "adds one vector to each of its 64 positions", 25),
        ("input(8x8x4) > bn(nobias)", "bn has no 'nobias'", 19),
        ("input(8x8x4) > gn(groups=2, noaffine, nobias)", "both 'noaffine' and 'nobias'", 39),
        ("input(8x4) > ln(noaffine, nobias)", "both 'noaffine' and 'nobias'", 27),
        ("input(6) > embed(10->4) > dense(->10, tie=wte)", "no layer before this one is named 'wte'", 39),
        (
            "input(6) > embed(10->4) as wte > dense(->11, tie=wte)",
            "this layer's weight is 11 x 4 (outputs x inputs), but embed's is 10 x 4",
            46,
        ),
        ("input(6) > embed(10->4) as wte > dense(->10, tie=wtx)", "did you mean 'wte'?", 46),
        ("input(6) > relu as r > dense(->10, tie=r)", "relu has no weight matrix to share", 36),
        ("input(6) > embed(10->4) as first > dense(->10)", "'first' is the name of a layer", 28),
    ],
)
def test_mistakes(program, words, column):
    error = _error(program)
    text = str(error)
    assert words in text, text
    assert re.search(rf"line \d+, column {column}\b", text), text


def test_a_tie_whose_sizes_agree_only_for_some_values_waits_for_them():
    net = paramsym.parse("input(6) > embed(V->d) as wte > dense(->D, tie=wte)")
    assert net.with_values(V=10, d=4, D=10).evaluate()["params"] == 40
    with pytest.raises(paramsym.ParamsymError, match="this layer's weight is"):
        net.with_values(V=10, d=4, D=11).evaluate()


def test_explain_and_cli():
    result = run("explain", "input(10) > embed(10000->128) > posembed(10) > cls > first")
    assert result.returncode == 0
    for words in (
        "A table of 10,000 vectors of 128, one per token id: 10,000·128 = 1,280,000 parameters.",
        "A learned table of 10 vectors of 128",
        "One learned vector of 128 (a class token)",
        "it keeps the first position of the sequence",
    ):
        assert words in result.stdout, result.stdout
    result = run("export", "input(10) > embed(100->8) as e > dense(->100, tie=e)", "--to", "torch")
    assert result.returncode == 0 and "tied1_e.weight = shared_e.weight" in result.stdout
    assert "dtype=torch.long" in result.stdout


# ---- a property: chains of tokens, cls, posembed, first/last against the exported module -------------


@st.composite
def _chains(draw):
    sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    channels = draw(st.integers(1, 6))
    stages, length = [], None
    if len(sizes) > 1 or draw(st.booleans()):
        stages.append("tokens")
    length = 1
    for size in sizes:
        length *= size
    if len(sizes) == 1 and not stages:
        stages.append("tokens")
    for _ in range(draw(st.integers(0, 4))):
        step = draw(st.sampled_from(["cls", "posembed", "ln", "ln(nobias)", "dense"]))
        if step == "cls":
            length += 1
            stages.append("cls")
        elif step == "posembed":
            stages.append(f"posembed({draw(st.integers(1, 2 * length))})")
        elif step == "dense":
            stages.append(f"dense(->{draw(st.integers(1, 6))})")
        else:
            stages.append(step)
    if draw(st.booleans()):
        stages.append(draw(st.sampled_from(["first", "last"])))
    return f"input({'x'.join(str(s) for s in [*sizes, channels])}) > " + " > ".join(stages)


@settings(max_examples=40, deadline=None)
@given(_chains())
def test_property_sequence_chains_match_the_exported_module(program):
    net = paramsym.parse(program)
    module = paramsym.to_torch(net)
    y = module(torch.randn(2, *paramsym.example_input(net).shape[1:]))
    dims = _dims(net.output_shape)
    assert list(y.shape[1:]) == dims[-1:] + dims[:-1]
    assert torch_params(module) == net.evaluate()["params"]


@pytest.mark.parametrize(
    "program, fields",
    [
        # the kept position sees what it saw: one step of a conv, or every position after attention
        ("input(32x64) > conv3(->8) > last", ["3", "3"]),
        ("input(32x64) > attn(heads=4) > first > dense(->3)", ["32", "32", "32"]),
        ("input(16x16x8) > conv3x3(->8) > tokens", ["3", None]),  # a map's rows are no longer one axis
    ],
)
def test_receptive_field_through_sequence_layers(program, fields):
    layers = paramsym.parse(program).to_dict()["layers"]
    got = [None if layer["receptive_field"] is None else layer["receptive_field"]["size"][0] for layer in layers]
    assert got == fields
