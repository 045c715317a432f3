"""The post-norm encoders of transformers 5.23 (BERT, RoBERTa, XLM-RoBERTa, DistilBERT, ELECTRA), read by one
table-driven reader (hf_import._ENCODERS): every class read, from a small config, against the model itself
(parameters, the output shape the import verifies, MACs against torch's FlopCounterMode, a decoder's KV cache
against transformers' own cache), and what is refused, by name. The full-size counts are the published ones."""

from __future__ import annotations

import pytest

import paramsym
from paramsym import ParamsymError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

T = 12
SMALL = dict(
    vocab_size=100,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=96,
    max_position_embeddings=64,
)
DISTIL = dict(vocab_size=100, dim=64, n_layers=2, n_heads=4, hidden_dim=96, max_position_embeddings=64)


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(build):
    with torch.device("meta"):
        return build()


def hf(model_class: str, config_class: str, *args, **config):
    return lambda: getattr(transformers, model_class)(getattr(transformers, config_class)(**config), *args)


# (name, the model, words its program says)
READ = [
    ("bert", hf("BertModel", "BertConfig", **SMALL), "> first > dense(->d, bias) > tanh"),
    ("bert without pooler", hf("BertModel", "BertConfig", False, **SMALL), "> (block) * L\n"),
    ("bert mlm", hf("BertForMaskedLM", "BertConfig", **SMALL), "gelu > ln > dense(->V, bias, tie=wte)"),
    ("bert mlm relu", hf("BertForMaskedLM", "BertConfig", **SMALL, hidden_act="relu"), "relu > ln > dense(->V"),
    ("bert lm head", hf("BertLMHeadModel", "BertConfig", **SMALL, is_decoder=True), "bias, causal)"),
    ("roberta", hf("RobertaModel", "RobertaConfig", **SMALL), "posembed(n) > posembed(2)"),
    ("roberta mlm", hf("RobertaForMaskedLM", "RobertaConfig", **SMALL, type_vocab_size=1), "tie=wte"),
    (
        "roberta mlm relu",  # its head's GELU is fixed: hidden_act is the layers' only
        hf("RobertaForMaskedLM", "RobertaConfig", **SMALL, hidden_act="relu"),
        "dense(->d, bias) > gelu > ln > dense(->V",
    ),
    (
        "roberta relative_key_query",  # transformers 5.23 keeps the field but builds absolute positions only
        hf("RobertaForMaskedLM", "RobertaConfig", **SMALL, position_embedding_type="relative_key_query"),
        "attn(heads=h, bias)) > ln",
    ),
    ("roberta causal", hf("RobertaForCausalLM", "RobertaConfig", **SMALL, is_decoder=True), "bias, causal)"),
    ("xlm-roberta", hf("XLMRobertaModel", "XLMRobertaConfig", **SMALL), "tanh"),
    ("xlm-roberta mlm", hf("XLMRobertaForMaskedLM", "XLMRobertaConfig", **SMALL), "tie=wte"),
    ("xlm-roberta causal", hf("XLMRobertaForCausalLM", "XLMRobertaConfig", **SMALL, is_decoder=True), "causal"),
    ("camembert", hf("CamembertModel", "CamembertConfig", **SMALL), "posembed(n) > posembed(2)"),
    ("camembert mlm", hf("CamembertForMaskedLM", "CamembertConfig", **SMALL), "gelu > ln > dense(->V, bias, tie=wte)"),
    ("camembert causal", hf("CamembertForCausalLM", "CamembertConfig", **SMALL, is_decoder=True), "bias, causal)"),
    ("data2vec-text", hf("Data2VecTextModel", "Data2VecTextConfig", **SMALL), "posembed(n) > posembed(2)"),
    ("data2vec-text mlm", hf("Data2VecTextForMaskedLM", "Data2VecTextConfig", **SMALL), "tie=wte"),
    (
        "data2vec-text causal",
        hf("Data2VecTextForCausalLM", "Data2VecTextConfig", **SMALL, is_decoder=True),
        "bias, causal)",
    ),
    (
        "roberta-prelayernorm",  # pre-norm layers, a LayerNorm after the last one, then the pooler
        hf("RobertaPreLayerNormModel", "RobertaPreLayerNormConfig", **SMALL),
        "res(ln > attn(heads=h, bias)) > res(ln > dense(",
    ),
    (
        "roberta-prelayernorm mlm",
        hf("RobertaPreLayerNormForMaskedLM", "RobertaPreLayerNormConfig", **SMALL),
        "(block) * L > ln > dense(->d, bias) > gelu > ln > dense(->V, bias, tie=wte)",
    ),
    (
        "roberta-prelayernorm causal",
        hf("RobertaPreLayerNormForCausalLM", "RobertaPreLayerNormConfig", **SMALL, is_decoder=True),
        "res(ln > attn(heads=h, bias, causal))",
    ),
    (
        "xlm-roberta-xl",  # pre-norm layers, no LayerNorm after the embeddings, one after the last layer
        hf("XLMRobertaXLModel", "XLMRobertaXLConfig", **SMALL),
        "posembed(1) > (block) * L > ln > first > dense(->d, bias) > tanh",
    ),
    (
        "xlm-roberta-xl mlm",
        hf("XLMRobertaXLForMaskedLM", "XLMRobertaXLConfig", **SMALL),
        "(block) * L > ln > dense(->d, bias) > gelu > ln > dense(->V, bias, tie=wte)",
    ),
    (
        "xlm-roberta-xl causal",
        hf("XLMRobertaXLForCausalLM", "XLMRobertaXLConfig", **SMALL, is_decoder=True),
        "res(ln > attn(heads=h, bias, causal))",
    ),
    ("ernie", hf("ErnieModel", "ErnieConfig", **SMALL), "posembed(n) > posembed(2) > ln > (block) * L > first"),
    (
        "ernie task types",  # use_task_id: a table of task_type_vocab_size rows summed into the embeddings
        hf("ErnieModel", "ErnieConfig", **SMALL, use_task_id=True, task_type_vocab_size=5),
        "posembed(n) > posembed(2) > posembed(5) > ln",
    ),
    (
        "ernie mlm task types",
        hf("ErnieForMaskedLM", "ErnieConfig", **SMALL, use_task_id=True),
        "posembed(3) > ln > (block) * L > dense(->d, bias) > gelu > ln > dense(->V, bias, tie=wte)",
    ),
    ("ernie causal", hf("ErnieForCausalLM", "ErnieConfig", **SMALL, is_decoder=True), "bias, causal)"),
    ("distilbert", hf("DistilBertModel", "DistilBertConfig", **DISTIL), "embed(V->d) > posembed(n) > ln >"),
    ("distilbert mlm", hf("DistilBertForMaskedLM", "DistilBertConfig", **DISTIL), "tie=wte"),
    (
        "distilbert sinusoidal",
        hf("DistilBertForMaskedLM", "DistilBertConfig", **DISTIL, sinusoidal_pos_embds=True),
        "posembed(n)",
    ),
    (
        "distilbert relu",
        hf("DistilBertForMaskedLM", "DistilBertConfig", **DISTIL, activation="relu"),
        "relu > ln > dense(->V",
    ),
    (
        "distilbert untied",
        hf("DistilBertForMaskedLM", "DistilBertConfig", **DISTIL, tie_word_embeddings=False),
        "dense(->V, bias)\n",
    ),
    (
        "distilbert is_decoder",  # DistilBERT's attention does not read is_decoder: never causal
        hf("DistilBertModel", "DistilBertConfig", **DISTIL, is_decoder=True),
        "attn(heads=h, bias))",
    ),
    ("electra", hf("ElectraModel", "ElectraConfig", **SMALL, embedding_size=64), "ln > (block) * L\n"),
    (
        "electra projected",
        hf("ElectraModel", "ElectraConfig", **SMALL, embedding_size=32),
        "embed(V->32) > posembed(n) > posembed(2) > ln > dense(->d, bias)",
    ),
    (
        "electra generator",
        hf("ElectraForMaskedLM", "ElectraConfig", **SMALL, embedding_size=32),
        "dense(->32, bias) > gelu > ln > dense(->V, bias, tie=wte)",
    ),
    (
        "electra generator untied",
        hf("ElectraForMaskedLM", "ElectraConfig", **SMALL, embedding_size=32, tie_word_embeddings=False),
        "ln > dense(->V, bias)\n",
    ),
    (
        "electra discriminator",
        hf("ElectraForPreTraining", "ElectraConfig", **SMALL, embedding_size=32, hidden_act="relu"),
        "dense(->d, bias) > relu > dense(->1, bias) > flatten",
    ),
    (
        "electra causal",
        hf("ElectraForCausalLM", "ElectraConfig", **SMALL, embedding_size=32, is_decoder=True),
        "bias, causal)",
    ),
]


@pytest.mark.parametrize("name,build,says", READ, ids=[r[0] for r in READ])
def test_encoders_are_read_exactly(name, build, says):
    model = build().eval()
    text = paramsym.from_torch(model, T)  # verified: parameters, output shape, every parameter used
    assert says in text.replace("\n  > ", " > "), text  # the program as one line a statement
    values = paramsym.parse(text).evaluate()
    assert values["params"] == numel(model)
    # LANGUAGE.md counts the keys and values of every attention, an encoder's too: 2 · L · d · T
    assert values["kv_cache"] == 2 * model.config.num_hidden_layers * model.config.hidden_size * T


@pytest.mark.parametrize("name,build,says", READ, ids=[r[0] for r in READ])
def test_encoder_macs_equal_flop_counter(name, build, says):
    """MACs are FlopCounterMode's FLOPs / 2: the projections, the attention's products and the heads."""
    from torch.utils.flop_counter import FlopCounterMode

    model = on_meta(build).eval()
    text = paramsym.from_torch(model, T)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.ones(1, T, dtype=torch.long, device="meta"))
    assert paramsym.parse(text).evaluate()["macs"] == counter.get_total_flops() // 2


def cache_values(model, length: int) -> int:
    with torch.no_grad():
        cache = model(torch.ones(1, length, dtype=torch.long), use_cache=True).past_key_values
    return sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)


DECODERS = [r for r in READ if "causal" in r[0] or r[0] == "bert lm head"]


@pytest.mark.parametrize("name,build,says", DECODERS, ids=[r[0] for r in DECODERS])
def test_a_decoders_kv_cache_is_what_transformers_keeps(name, build, says):
    model = build().eval()
    values = paramsym.parse(paramsym.from_torch(model, T)).evaluate()
    assert values["kv_cache"] == cache_values(model, T)


@pytest.mark.parametrize(
    "build",
    [
        hf("RobertaModel", "RobertaConfig", False, **SMALL, is_decoder=True),
        hf("ElectraModel", "ElectraConfig", **SMALL, is_decoder=True),
    ],
    ids=["roberta", "electra"],
)
def test_is_decoder_is_causal_in_transformers(build):
    """`causal` where is_decoder is set: the first position's output does not change when a later token does."""
    model = build().eval()
    with torch.no_grad():
        a = model(torch.tensor([[5, 6, 7]])).last_hidden_state[0, 0]
        b = model(torch.tensor([[5, 6, 9]])).last_hidden_state[0, 0]
    assert torch.allclose(a, b)


def test_distilbert_ignores_is_decoder():
    """DistilBERT's attention is never causal: a later token changes the first position's output."""
    model = hf("DistilBertModel", "DistilBertConfig", **DISTIL, is_decoder=True)().eval()
    with torch.no_grad():
        a = model(torch.tensor([[5, 6, 7]])).last_hidden_state[0, 0]
        b = model(torch.tensor([[5, 6, 9]])).last_hidden_state[0, 0]
    assert not torch.allclose(a, b)


def test_a_sinusoidal_distilbert_table_is_a_parameter():
    """transformers 5.23 fills the position table with sinusoids but keeps it a trainable Parameter, which
    parameters() counts: the program writes it as posembed(n)."""
    model = hf("DistilBertForMaskedLM", "DistilBertConfig", **DISTIL, sinusoidal_pos_embds=True)()
    table = model.distilbert.embeddings.position_embeddings.weight
    assert isinstance(table, torch.nn.Parameter) and table.requires_grad
    assert any(p is table for p in model.parameters())


@pytest.mark.parametrize("length,runs", [(62, True), (63, False)])
def test_robertas_positions_start_after_padding_idx(length, runs):
    """RoBERTa's position ids are padding_idx + 1, padding_idx + 2, ...: a table of 64 rows with padding_idx=1
    takes 62 positions; PyTorch fails on 63, which the import refuses."""
    model = hf("RobertaForMaskedLM", "RobertaConfig", **SMALL)().eval()
    assert model.config.pad_token_id == 1
    try:
        with torch.no_grad():
            model(torch.ones(1, length, dtype=torch.long) * 5)
        ran = True
    except (IndexError, RuntimeError):
        ran = False
    assert ran == runs
    if runs:
        assert paramsym.parse(paramsym.from_torch(model, length)).evaluate()["params"] == numel(model)
    else:
        with pytest.raises(ParamsymError, match="after padding_idx=1\\), so the longest sequence it takes is 62"):
            paramsym.from_torch(model, length)


REFUSED = [
    (
        "bert untied",
        hf("BertForMaskedLM", "BertConfig", **SMALL, tie_word_embeddings=False),
        "cls.predictions.bias unused by forward",
    ),
    (
        "roberta untied",
        hf("RobertaForMaskedLM", "RobertaConfig", **SMALL, tie_word_embeddings=False),
        "lm_head.bias unused by forward",
    ),
    (
        "camembert untied",
        hf("CamembertForMaskedLM", "CamembertConfig", **SMALL, tie_word_embeddings=False),
        "lm_head.bias unused by forward",
    ),
    (
        "camembert classifier",
        hf("CamembertForSequenceClassification", "CamembertConfig", **SMALL),
        "CamembertForSequenceClassification: of its family",
    ),
    (
        "camembert cross-attention",
        hf("CamembertModel", "CamembertConfig", **SMALL, is_decoder=True, add_cross_attention=True),
        "add_cross_attention=True",
    ),
    (
        "data2vec-text untied",
        hf("Data2VecTextForMaskedLM", "Data2VecTextConfig", **SMALL, tie_word_embeddings=False),
        "lm_head.bias unused by forward",
    ),
    (
        "data2vec-text question answering",
        hf("Data2VecTextForQuestionAnswering", "Data2VecTextConfig", **SMALL),
        "Data2VecTextForQuestionAnswering: of its family",
    ),
    (
        "data2vec-text cross-attention",
        hf("Data2VecTextModel", "Data2VecTextConfig", **SMALL, is_decoder=True, add_cross_attention=True),
        "add_cross_attention=True",
    ),
    (
        "roberta-prelayernorm untied",
        hf("RobertaPreLayerNormForMaskedLM", "RobertaPreLayerNormConfig", **SMALL, tie_word_embeddings=False),
        "lm_head.bias unused by forward",
    ),
    (
        "roberta-prelayernorm classifier",
        hf("RobertaPreLayerNormForSequenceClassification", "RobertaPreLayerNormConfig", **SMALL),
        "RobertaPreLayerNormForSequenceClassification: of its family",
    ),
    (
        "roberta-prelayernorm cross-attention",
        hf("RobertaPreLayerNormModel", "RobertaPreLayerNormConfig", **SMALL, is_decoder=True, add_cross_attention=True),
        "add_cross_attention=True",
    ),
    (
        "xlm-roberta-xl untied",
        hf("XLMRobertaXLForMaskedLM", "XLMRobertaXLConfig", **SMALL, tie_word_embeddings=False),
        "lm_head.bias unused by forward",
    ),
    (
        "xlm-roberta-xl token classifier",
        hf("XLMRobertaXLForTokenClassification", "XLMRobertaXLConfig", **SMALL),
        "XLMRobertaXLForTokenClassification: of its family",
    ),
    (
        "xlm-roberta-xl cross-attention",
        hf("XLMRobertaXLModel", "XLMRobertaXLConfig", **SMALL, is_decoder=True, add_cross_attention=True),
        "add_cross_attention=True",
    ),
    (
        "ernie untied",
        hf("ErnieForMaskedLM", "ErnieConfig", **SMALL, tie_word_embeddings=False),
        "cls.predictions.bias unused by forward",
    ),
    (
        "ernie pretraining",
        hf("ErnieForPreTraining", "ErnieConfig", **SMALL),
        "ErnieForPreTraining: of its family paramsym reads ErnieModel, ErnieForMaskedLM, ErnieForCausalLM",
    ),
    (
        "ernie cross-attention",
        hf("ErnieModel", "ErnieConfig", **SMALL, is_decoder=True, add_cross_attention=True),
        "add_cross_attention=True",
    ),
    (
        "bert pretraining",
        hf("BertForPreTraining", "BertConfig", **SMALL),
        "BertForPreTraining: of its family paramsym reads BertModel, BertForMaskedLM, BertLMHeadModel",
    ),
    (
        "roberta classifier",
        hf("RobertaForSequenceClassification", "RobertaConfig", **SMALL),
        "RobertaForSequenceClassification: of its family",
    ),
    (
        "distilbert question answering",
        hf("DistilBertForQuestionAnswering", "DistilBertConfig", **DISTIL),
        "DistilBertForQuestionAnswering: of its family",
    ),
    (
        "electra classifier",
        hf("ElectraForSequenceClassification", "ElectraConfig", **SMALL),
        "ElectraForSequenceClassification: of its family",
    ),
    (
        "roberta cross-attention",
        hf("RobertaModel", "RobertaConfig", **SMALL, is_decoder=True, add_cross_attention=True),
        "add_cross_attention=True",
    ),
    (
        "electra cross-attention",
        hf("ElectraModel", "ElectraConfig", **SMALL, is_decoder=True, add_cross_attention=True),
        "add_cross_attention=True",
    ),
    (
        "distilbert quick_gelu",
        hf("DistilBertModel", "DistilBertConfig", **DISTIL, activation="quick_gelu"),
        "activation='quick_gelu'",
    ),
    (
        "bert mlm too long",
        hf("BertForMaskedLM", "BertConfig", **{**SMALL, "max_position_embeddings": 8}),
        "each of 8 positions",
    ),
]


@pytest.mark.parametrize("name,build,words", REFUSED, ids=[r[0] for r in REFUSED])
def test_what_the_layout_does_not_write_is_refused_by_name(name, build, words):
    with pytest.raises(ParamsymError, match=words.replace("(", r"\(")):
        paramsym.from_torch(on_meta(build), T)


FULL = [
    ("bert-base-uncased", lambda: transformers.BertForMaskedLM(transformers.BertConfig()), 109_514_298),
    (
        "roberta-base",
        lambda: transformers.RobertaForMaskedLM(
            transformers.RobertaConfig(
                vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5
            )
        ),
        124_697_433,
    ),
    (
        "distilbert-base-uncased",
        lambda: transformers.DistilBertForMaskedLM(transformers.DistilBertConfig()),
        66_985_530,
    ),
]


@pytest.mark.parametrize("name,build,count", FULL, ids=[f[0] for f in FULL])
def test_full_size_masked_lms(name, build, count):
    model = on_meta(build)
    text = paramsym.from_torch(model, 512)
    assert numel(model) == count
    assert paramsym.parse(text).evaluate()["params"] == count


def test_a_roberta_config_json_is_read_at_its_longest_sequence(tmp_path):
    """`paramsym import config.json` without --input reads the model's context: RoBERTa's 514 rows take 512
    positions (they start after padding_idx=1), the length PyTorch runs."""
    import json

    from paramsym.frameworks.hf_config import from_config

    config = dict(
        architectures=["RobertaForMaskedLM"],
        model_type="roberta",
        vocab_size=50265,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        layer_norm_eps=1e-5,
    )
    (tmp_path / "config.json").write_text(json.dumps(config))
    text = from_config(str(tmp_path / "config.json"))
    assert "input(512)" in text
    assert paramsym.parse(text).evaluate()["params"] == 124_697_433
