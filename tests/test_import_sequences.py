"""Importing hand-written sequence models in PyTorch's own layout, (N, T, d) after an embedding: layers
on the last axis (an N-D Linear, LayerNorm, attention, recurrent layers) and weights shared between
the embedding and the output layer, which become `as NAME` ... `tie=NAME`."""

from __future__ import annotations

import pytest

import paramsym

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from helpers.round_trip import import_back  # noqa: E402


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())  # a shared Parameter once


class TinyLM(nn.Module):
    def __init__(self, tie: bool):
        super().__init__()
        self.wte = nn.Embedding(100, 16)
        self.ln = nn.LayerNorm(16)
        self.up, self.act, self.down = nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16)
        self.head = nn.Linear(16, 100, bias=False)
        if tie:
            self.head.weight = self.wte.weight

    def forward(self, ids):
        x = self.ln(self.wte(ids))
        x = x + self.down(self.act(self.up(x)))
        return self.head(x)


class Encoder(nn.Module):
    def __init__(self, norm_first: bool):
        super().__init__()
        self.wte = nn.Embedding(100, 16)
        self.block = nn.TransformerEncoderLayer(16, 4, 64, batch_first=True, dropout=0.0, norm_first=norm_first)
        self.head = nn.Linear(16, 100)

    def forward(self, ids):
        return self.head(self.block(self.wte(ids)))


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(100, 16)
        self.rnn = nn.LSTM(16, 32, batch_first=True, bidirectional=True)
        self.head = nn.Linear(64, 5)

    def forward(self, ids):
        out, _ = self.rnn(self.wte(ids))
        return self.head(out[:, -1])


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(100, 16)
        self.mha = nn.MultiheadAttention(16, 4, batch_first=True)
        self.ln = nn.LayerNorm(16)

    def forward(self, ids):
        x = self.wte(ids)
        return self.ln(x + self.mha(x, x, x, need_weights=False)[0])


class SharedEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Embedding(100, 16), nn.Embedding(100, 16)
        self.b.weight = self.a.weight

    def forward(self, ids):
        return self.a(ids) + self.b(ids)


# (model, words the program must have)
CASES = [
    (TinyLM(tie=True), ["embed(100->16) as tied1", "dense(16->100, tie=tied1)", "res(dense(16->32, bias)"]),
    (TinyLM(tie=False), ["embed(100->16)", "> dense(16->100)"]),
    (Encoder(norm_first=False), ["res(attn(heads=4, bias)) > ln", "dense(16->100, bias)"]),
    (Encoder(norm_first=True), ["res(ln > attn(heads=4, bias))"]),
    (Classifier(), ["lstm(16->32, bias, bidirectional, last)", "dense(64->5, bias)"]),
    (Attention(), ["res(attn(heads=4, bias))", "> ln"]),
]


@pytest.mark.parametrize("model,words", CASES, ids=lambda c: type(c).__name__ if isinstance(c, nn.Module) else "")
def test_sequence_models_in_pytorchs_layout_import_exactly(model, words):
    text = paramsym.from_torch(model, 8)
    for word in words:
        assert word in text, text
    network = paramsym.parse(text)
    assert network.evaluate()["params"] == numel(model), text
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, 8, dtype=torch.long))
    assert [network.value(d) for d in network.output_shape.dims()] == list(out.shape[1:])


def test_a_weight_shared_by_two_embeddings_is_tied():
    """Two embeddings of one weight (a decoder's embedding shares its encoder's, T5 and BART): `embed(..., tie=NAME)`,
    the weight counted once, as parameters() counts it."""
    text = paramsym.from_torch(SharedEmbeddings(), 8)
    assert "embed(100->16, tie=" in text
    assert paramsym.parse(text).evaluate()["params"] == sum(p.numel() for p in SharedEmbeddings().parameters()) == 1600


def test_a_linear_on_the_width_of_a_map_is_still_refused():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(6, 2))
    with pytest.raises(paramsym.ParamsymError, match="acts on the last axis of a 4-D tensor"):
        paramsym.from_torch(model, "8x8x3")


@pytest.mark.parametrize(
    "program",
    [
        "input(8x16) > res(ln > attn(heads=4, bias, causal)) > dense(->8)",
        "input(8x16) > attn(heads=4, kv_heads=2)",
        "input(8x16) > attn(heads=2, head_dim=4, bias)",
        "input(4x4x8) > attn(heads=2)",
        "input(8x16) > attn(heads=4, kv_heads=2, bias, causal) > gelu",
    ],
)
def test_exported_attention_imports_back(program):
    """paramsym's own SelfAttention and GroupedQueryAttention modules read back as the attn they came from."""
    network = paramsym.parse(program)
    text, again = import_back(network)
    assert (again.params, again.macs, again.kv_cache) == (network.params, network.macs, network.kv_cache), text
