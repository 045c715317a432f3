"""Every Hugging Face language-model family paramsym reads, built by transformers from a small config and imported
exactly: `paramsym.from_torch` verifies the program against the model (parameters, buffers, output shape) and
this test checks the counts it gives against the model and the config, independently of paramsym's formulas:

- params: `sum(p.numel() for p in model.parameters())` (a tied weight counts once);
- active: params less the experts a position does not go through, from the model's own expert modules (each
  `...Experts` module holds E experts, a position goes through `num_experts_per_tok` of them);
- kv_cache: what the config implies (the row's formula), and for decoders also the number of values in
  transformers' own cache after a forward pass of T tokens (`past_key_values`), where transformers keeps what
  the architecture keeps (MLA is the exception: transformers caches the decompressed keys and values, the
  architecture only the latent and the rotary key; the row's formula is the architecture's).

docs/zoo.md's table of Hugging Face families lists each row (test_zoo_lists_every_family); `REFUSED` lists the
families that are refused, and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import paramsym

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

ZOO = Path(__file__).resolve().parents[1] / "docs" / "zoo.md"
T = 12  # tokens: fewer than any small config's window or position table

SMALL = dict(
    vocab_size=100,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
)


@dataclass(frozen=True)
class Family:
    model_type: str  # config.model_type
    build: Callable[[], Any]  # the model, built on the CPU with random weights (small: the forward pass runs)
    kv_cache: Callable[[Any, int], int]  # (config, T) -> values kept for one sequence of T tokens
    measured_cache: bool = True  # transformers' own cache holds what the architecture keeps (a decoder)
    name: str = ""  # the test's id when a family has two rows (default: model_type)

    def __str__(self) -> str:
        return self.name or self.model_type


T5_SMALL = dict(vocab_size=100, d_model=64, d_kv=16, d_ff=96, num_layers=3, num_decoder_layers=2, num_heads=4)
BART_SMALL = dict(
    vocab_size=100,
    d_model=64,
    encoder_layers=2,
    decoder_layers=3,
    encoder_attention_heads=4,
    decoder_attention_heads=2,
    encoder_ffn_dim=96,
    decoder_ffn_dim=80,
    max_position_embeddings=64,
)


def t5_cache(config, source: int, length: int, encoder: bool = True) -> int:
    """T5: every attention's keys and values of h·d_kv channels: the encoder's L self-attentions over S (with
    `encoder`), the decoder's self-attentions over T and its cross-attentions over the S encoder positions."""
    kv = config.num_heads * config.d_kv
    return 2 * kv * ((config.num_layers * source if encoder else 0) + config.num_decoder_layers * (length + source))


def bart_cache(config, source: int, length: int, encoder: bool = True) -> int:
    """BART: as T5's, the heads splitting d_model."""
    kv = config.d_model
    return 2 * kv * ((config.encoder_layers * source if encoder else 0) + config.decoder_layers * (length + source))


def gqa_cache(config, length: int) -> int:
    """keys and values of every layer: 2 · L · kv_heads · head_dim · T."""
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv * head_dim * length


def hf(model_class: str, config_class: str, **config) -> Callable[[], Any]:
    return lambda: getattr(transformers, model_class)(getattr(transformers, config_class)(**config))


FAMILIES = [
    Family("llama", hf("LlamaForCausalLM", "LlamaConfig", **SMALL), gqa_cache),
    Family("mistral", hf("MistralForCausalLM", "MistralConfig", **SMALL, sliding_window=None), gqa_cache),
    Family(
        "mixtral",
        hf("MixtralForCausalLM", "MixtralConfig", **SMALL, num_local_experts=4, num_experts_per_tok=2),
        gqa_cache,
    ),
    Family("qwen2", hf("Qwen2ForCausalLM", "Qwen2Config", **SMALL), gqa_cache),
    Family("phi3", hf("Phi3ForCausalLM", "Phi3Config", **SMALL, pad_token_id=0), gqa_cache),
    Family(
        "gpt2",
        hf("GPT2LMHeadModel", "GPT2Config", vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=64),
        lambda c, t: 2 * c.n_layer * c.n_embd * t,
    ),
    Family(
        "bert",
        hf(
            "BertModel",
            "BertConfig",
            vocab_size=100,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=96,
            max_position_embeddings=64,
        ),
        gqa_cache,  # LANGUAGE.md counts the keys and values of every attention, an encoder's too
        measured_cache=False,  # transformers keeps no cache for an encoder
    ),
    # encoder-decoders: from_torch gives the encoder and the decoder the same length (S = T); LANGUAGE.md counts
    # every attention's keys and values: the encoder's self-attentions 2·S·kv each, the decoder's 2·T·kv, its
    # cross-attentions 2·S·kv. transformers' EncoderDecoderCache keeps the decoder's two parts only (the encoder
    # runs once and keeps none): measured_cache=False, and test_encoder_decoder_cache compares the decoder's part
    # with transformers' cache (tests/test_hf_encdec.py checks it at S != T)
    Family("t5", hf("T5ForConditionalGeneration", "T5Config", **T5_SMALL), lambda c, t: t5_cache(c, t, t), False),
    Family(
        "t5",
        hf("T5ForConditionalGeneration", "T5Config", **{**T5_SMALL, "feed_forward_proj": "gated-gelu", "d_kv": 24}),
        lambda c, t: t5_cache(c, t, t),
        False,
        "t5-gated",
    ),
    Family(
        "bart", hf("BartForConditionalGeneration", "BartConfig", **BART_SMALL), lambda c, t: bart_cache(c, t, t), False
    ),
]

# model_type -> why transformers 5.23's family is refused (each names what the language lacks)
REFUSED: dict[str, str] = {}


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def active_truth(model) -> int:
    """The parameters one token goes through: every expert module (a class named `...Experts`) counts only
    `num_experts_per_tok` of its experts."""
    top = model.config.num_experts_per_tok if hasattr(model.config, "num_experts_per_tok") else None
    total = numel(model)
    for module in model.modules():
        if type(module).__name__.endswith("Experts"):
            experts = getattr(module, "num_experts", None) or next(iter(module.parameters())).shape[0]
            own = sum(p.numel() for p in module.parameters(recurse=False))
            total -= own - own // experts * top
    return total


def cache_truth(model, length: int) -> int:
    """The values in transformers' cache after a forward pass of `length` tokens (an encoder-decoder's decoder
    reads `length` tokens of its own: its EncoderDecoderCache's self-attention and cross-attention parts)."""
    ids = torch.zeros(1, length, dtype=torch.long)
    extra = {"decoder_input_ids": ids} if model.config.is_encoder_decoder else {}
    with torch.no_grad():
        cache = model(ids, use_cache=True, **extra).past_key_values
    parts = [cache.self_attention_cache, cache.cross_attention_cache] if extra else [cache]
    return sum(layer.keys.numel() + layer.values.numel() for part in parts for layer in part.layers)


@pytest.fixture(scope="module", params=FAMILIES, ids=str)
def imported(request):
    family = request.param
    torch.manual_seed(0)
    model = family.build().eval()
    assert model.config.model_type == family.model_type
    text = paramsym.from_torch(model, T)
    return family, model, text, paramsym.parse(text).evaluate()


def test_params_equal_the_model(imported):
    _, model, _, values = imported
    assert values["params"] == numel(model)


def test_active_params_equal_the_model(imported):
    _, model, _, values = imported
    assert values["active"] == active_truth(model)


def test_kv_cache_is_what_the_config_implies(imported):
    family, model, _, values = imported
    assert values["kv_cache"] == family.kv_cache(model.config, T)


def test_kv_cache_is_what_transformers_keeps(imported):
    family, model, _, values = imported
    if not family.measured_cache:
        pytest.skip(f"{family}: transformers' cache is not what the architecture keeps (see the row)")
    assert values["kv_cache"] == cache_truth(model, T)


def test_encoder_decoder_cache(imported):
    """An encoder-decoder's decoder keeps what transformers' EncoderDecoderCache holds; the program's total adds
    the encoder's self-attentions (2·S·kv each, LANGUAGE.md)."""
    family, model, _, values = imported
    if not model.config.is_encoder_decoder:
        pytest.skip(f"{family} is not an encoder-decoder")
    decoder = (t5_cache if family.model_type == "t5" else bart_cache)(model.config, T, T, encoder=False)
    assert cache_truth(model, T) == decoder
    assert values["kv_cache"] == family.kv_cache(model.config, T) > decoder


def test_zoo_lists_every_family():
    """docs/zoo.md has a row `| model_type | ... |` for every family read and every family refused."""
    rows = {line.split("|")[1].strip(" `") for line in ZOO.read_text().splitlines() if line.startswith("| `")}
    missing = [f.model_type for f in FAMILIES if f.model_type not in rows] + [t for t in REFUSED if t not in rows]
    assert not missing, f"docs/zoo.md's table of Hugging Face families lacks {missing}"
