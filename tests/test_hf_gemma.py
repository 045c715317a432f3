"""Gemma, Gemma-2, Gemma-3 (text) and VaultGemma read by `paramsym.from_torch` (hf_import's `_gemma`, one reader
for the four, and `layer_pattern`, which writes a config's `layer_types` as repeats). Full-size published configs built
on the meta device import to their published parameter counts and to the KV cache that their layer_types imply;
small ones built on the CPU with eager attention count the MACs that FlopCounterMode counts on their forward;
what the layout does not write is refused by name. (tests/test_hf_families.py has their rows too.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from paramsym.errors import ImportRefused
from paramsym.frameworks.hf_import import layer_pattern

transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize(
    "kinds, count, text",
    [
        (["global"] * 32, "L", "(global) * L"),
        (["global"], "L", "global"),
        (["local", "global"] * 21, "L", "(local > global) * (L/2)"),
        (["local", "global"] * 21, None, "(local > global) * 21"),
        (["local", "global"], "L", "local > global"),
        # Gemma-3: five local to one global; 26 layers (1B), 34 (4B), 48 (12B), 62 (27B)
        ((["local"] * 5 + ["global"]) * 4 + ["local"] * 2, "L", "((local) * 5 > global) * 4 > (local) * 2"),
        ((["local"] * 5 + ["global"]) * 5 + ["local"] * 4, "L", "((local) * 5 > global) * 5 > (local) * 4"),
        ((["local"] * 5 + ["global"]) * 8, "L", "((local) * 5 > global) * (L/6)"),
        (["local"] * 5 + ["global"] + ["local"] * 2, "L", "(local) * 5 > global > (local) * 2"),
        (["global", "local", "local"] * 3 + ["global"], "L", "(global > (local) * 2) * 3 > global"),
        (["a", "b", "b", "a"], "L", "a > (b) * 2 > a"),
    ],
)
def test_layer_pattern(kinds, count, text):
    assert layer_pattern(kinds, count) == text
    blocks = "; ".join(f"def {k} = dense(->8)" for k in sorted(set(kinds)))
    network = paramsym.parse(f"let L = {len(kinds)}; {blocks}; input(8) > {text}")
    assert network.evaluate()["params"] == 64 * len(kinds)  # as many layers as kinds


def on_meta(build):
    with torch.device("meta"):
        return build()


def model(model_class: str, config_class: str, **config):
    return on_meta(lambda: getattr(transformers, model_class)(getattr(transformers, config_class)(**config)))


def kv_cache(config, T: int) -> int:
    """What the config implies: the keys and values of every layer, a sliding one keeping min(T, W - 1)."""
    window = getattr(config, "sliding_window", None)
    every = "full_attention" if window is None else "sliding_attention"  # no layer_types: a cache that slides or not
    kinds = getattr(config, "layer_types", None) or [every] * config.num_hidden_layers
    per_position = 2 * config.num_key_value_heads * config.head_dim
    return sum(per_position * (min(T, config.sliding_window - 1) if k == "sliding_attention" else T) for k in kinds)


# the published configs (config.json keys) and parameter counts
FULL_SIZE = [
    (
        "gemma-7b",
        ("GemmaForCausalLM", "GemmaConfig"),
        dict(
            vocab_size=256000,
            hidden_size=3072,
            intermediate_size=24576,
            num_hidden_layers=28,
            num_attention_heads=16,
            num_key_value_heads=16,
            head_dim=256,
        ),
        8_537_680_896,
    ),
    (
        "gemma-2-2b",
        ("Gemma2ForCausalLM", "Gemma2Config"),
        dict(
            vocab_size=256000,
            hidden_size=2304,
            intermediate_size=9216,
            num_hidden_layers=26,
            num_attention_heads=8,
            num_key_value_heads=4,
            head_dim=256,
            sliding_window=4096,
        ),
        2_614_341_888,
    ),
    (
        "gemma-3-1b",
        ("Gemma3ForCausalLM", "Gemma3TextConfig"),
        dict(
            vocab_size=262144,
            hidden_size=1152,
            intermediate_size=6912,
            num_hidden_layers=26,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=256,
            sliding_window=512,
            max_position_embeddings=32768,
        ),
        999_885_952,
    ),
]


@pytest.mark.parametrize("name, classes, config, reference", FULL_SIZE, ids=[f[0] for f in FULL_SIZE])
def test_full_size_imports(name, classes, config, reference):
    built = model(*classes, **config)
    T = 8192
    values = paramsym.parse(paramsym.from_torch(built, T)).evaluate()
    assert values["params"] == sum(p.numel() for p in built.parameters()) == reference
    assert values["kv_cache"] == kv_cache(built.config, T)


SMALL = dict(
    vocab_size=50,
    hidden_size=32,
    intermediate_size=48,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    attn_implementation="eager",
)


@pytest.mark.parametrize(
    "classes, config",
    [
        (("GemmaForCausalLM", "GemmaConfig"), dict(num_hidden_layers=2)),
        (("GemmaForCausalLM", "GemmaConfig"), dict(num_hidden_layers=2, tie_word_embeddings=False)),
        (("GemmaModel", "GemmaConfig"), dict(num_hidden_layers=2, head_dim=4)),
        # Gemma's forward reads no cap, whatever its config holds; its cache slides by a sliding_window (as Llama's)
        (("GemmaForCausalLM", "GemmaConfig"), dict(num_hidden_layers=2, attn_logit_softcapping=50.0)),
        (("GemmaForCausalLM", "GemmaConfig"), dict(num_hidden_layers=2, sliding_window=4)),
        (("Gemma2ForCausalLM", "Gemma2Config"), dict(num_hidden_layers=3, sliding_window=4)),
        (("Gemma2Model", "Gemma2Config"), dict(num_hidden_layers=2, sliding_window=4, attn_logit_softcapping=None)),
        (("Gemma3ForCausalLM", "Gemma3TextConfig"), dict(num_hidden_layers=7, sliding_window=5)),
        (
            ("Gemma3ForCausalLM", "Gemma3TextConfig"),
            dict(num_hidden_layers=4, sliding_window=5, final_logit_softcapping=30.0, attn_logit_softcapping=50.0),
        ),
        (("Gemma3TextModel", "Gemma3TextConfig"), dict(num_hidden_layers=2, sliding_window=3)),
        # VaultGemma: Gemma-2's with a norm before the attention and one before the MLP only
        (("VaultGemmaForCausalLM", "VaultGemmaConfig"), dict(num_hidden_layers=3, sliding_window=4)),
        (
            ("VaultGemmaForCausalLM", "VaultGemmaConfig"),
            dict(num_hidden_layers=2, sliding_window=4, tie_word_embeddings=False),
        ),
        (
            ("VaultGemmaModel", "VaultGemmaConfig"),
            dict(num_hidden_layers=2, sliding_window=4, attn_logit_softcapping=None, num_key_value_heads=4),
        ),
    ],
)
def test_small_models_count_what_they_compute(classes, config):
    """Parameters, MACs (FlopCounterMode on the eager forward), KV cache (transformers' own) and the output."""
    torch.manual_seed(0)
    built = getattr(transformers, classes[0])(getattr(transformers, classes[1])(**{**SMALL, **config})).eval()
    T = 9
    values = paramsym.parse(paramsym.from_torch(built, T)).evaluate()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = built(torch.zeros(1, T, dtype=torch.long), use_cache=True)
    assert values["params"] == sum(p.numel() for p in built.parameters())
    assert values["macs"] == counter.get_total_flops() // 2
    assert values["kv_cache"] == kv_cache(built.config, T)
    assert values["kv_cache"] == sum(x.keys.numel() + x.values.numel() for x in out.past_key_values.layers)


def refused(build, says: str) -> None:
    with pytest.raises(ImportRefused, match=says):
        paramsym.from_torch(build(), 16)


def test_a_layer_of_other_norms_is_refused():
    def build():
        m = model("VaultGemmaForCausalLM", "VaultGemmaConfig", **SMALL, num_hidden_layers=2, sliding_window=4)
        m.model.layers[0].post_feedforward_layernorm = m.model.layers[0].pre_feedforward_layernorm
        return m

    refused(build, "input_layernorm, pre_feedforward_layernorm, post_feedforward_layernorm: not a layout")


def test_bidirectional_attention_is_refused():
    refused(
        lambda: model(
            "Gemma3ForCausalLM", "Gemma3TextConfig", **SMALL, num_hidden_layers=2, use_bidirectional_attention=True
        ),
        "use_bidirectional_attention",
    )


def test_another_head_is_refused():
    refused(
        lambda: model("Gemma2ForSequenceClassification", "Gemma2Config", **SMALL, num_hidden_layers=2),
        "of its family paramsym reads Gemma2Model, Gemma2ForCausalLM",
    )


def test_an_attention_whose_window_disagrees_with_layer_types_is_refused():
    def build():
        m = model("Gemma2ForCausalLM", "Gemma2Config", **SMALL, num_hidden_layers=2, sliding_window=4)
        m.model.layers[0].self_attn.sliding_window = None
        return m

    refused(build, r"layers.0.self_attn has sliding_window=None")


def test_an_unknown_layer_type_is_refused():
    def build():
        m = model("Gemma2ForCausalLM", "Gemma2Config", **SMALL, num_hidden_layers=2, sliding_window=4)
        m.config.layer_types = ["sliding_attention", "chunked_attention"]
        return m

    refused(build, "chunked_attention")


def test_the_multimodal_gemma3_is_refused_by_name():
    """Gemma-3's image-text model (model_type gemma3) is not read: its vision tower has no layout here."""
    config = transformers.Gemma3Config(
        text_config=dict(**{k: v for k, v in SMALL.items() if k != "attn_implementation"}, num_hidden_layers=2),
        vision_config=dict(hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=2),
    )
    refused(lambda: on_meta(lambda: transformers.Gemma3ForConditionalGeneration(config)), "'gemma3'")


def test_gemma2_9b_from_its_config_json():
    """`paramsym import examples/configs/gemma2_9b` (google/gemma-2-9b's config.json): its published count, and the
    KV cache at its context that its layer_types imply (21 global layers of 8,192 positions, 21 local of 4,095)."""
    from helpers.cli_helpers import run

    folder = Path(__file__).resolve().parents[1] / "examples" / "configs" / "gemma2_9b"
    result = run("import", str(folder), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "(local > global) * (L/2)" in result.stdout and "softcap(30)" in result.stdout
    values = paramsym.parse(result.stdout).evaluate()
    assert values["params"] == 9_241_705_984
    assert values["kv_cache"] == 2 * 8 * 256 * (21 * 8192 + 21 * 4095)
