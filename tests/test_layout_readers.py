"""The layout readers (paramsym.frameworks.hf_import: Hugging Face language models, torchvision's ViT and Swin) read
what changes a count from the model or refuse, checked against the frameworks themselves: the input asked for
(torchvision's ViT takes its image_size only, a language model one axis, a learned position table no more
positions than it has), the activation of every block, Mistral's sliding window (transformers' own KV cache),
and config fields that add layers (cross-attention, other heads)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

import paramsym
from helpers.cli_helpers import run
from paramsym import ParamsymError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from helpers.lm_configs import SMALL  # noqa: E402

torchvision = pytest.importorskip("torchvision")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from torchvision.models.swin_transformer import SwinTransformer  # noqa: E402

from helpers.frameworks import on_meta  # noqa: E402
from helpers.frameworks import torch_params as numel  # noqa: E402

SRC = str(Path(paramsym.__file__).resolve().parents[1])


def block_line(text: str) -> str:
    """The `def block` statement on one line (the import breaks lines longer than 79 columns: a line that
    starts with `>` or `|`, or is inside parentheses, continues the one before)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def block"))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return " ".join(" ".join(lines[start:end]).split())


def torchvision_refusal(model, shape) -> str:
    """What torchvision's own forward says about an input of that HxWxC."""
    h, w, c = shape
    with pytest.raises(Exception) as caught:
        model(torch.zeros(1, c, h, w, device="meta"))
    return str(caught.value)


# ---- torchvision ViT: the input asked for ---------------------------------------------------------------


@pytest.mark.parametrize("built,asked", [(224, (384, 384, 3)), (384, (224, 224, 3)), (224, (224, 384, 3))])
def test_vit_takes_only_its_image_size_as_torchvision_does(built, asked):
    model = on_meta(lambda: torchvision.models.vit_b_16(image_size=built))
    said = torchvision_refusal(model, asked)  # e.g. "Wrong image height! Expected 224 but got 384!"
    assert said.startswith("Wrong image")
    with pytest.raises(ParamsymError) as refused:
        paramsym.from_torch(model, "x".join(map(str, asked)))
    assert said in str(refused.value)


@pytest.mark.parametrize("asked", ["224x224x1", "224x224", "224"])
def test_vit_refuses_other_channels_and_axes(asked):
    model = on_meta(torchvision.models.vit_b_16)
    with pytest.raises(ParamsymError, match=r"channels|HxWxC"):
        paramsym.from_torch(model, asked)


def test_vit_built_for_384_is_read_at_384():
    model = on_meta(lambda: torchvision.models.vit_b_16(image_size=384))
    text = paramsym.from_torch(model, "384x384x3")
    assert "input(384x384x3)" in text and "posembed(577)" in text
    net = paramsym.parse(text)
    assert net.evaluate()["params"] == numel(model)
    model.train()  # scaled_dot_product_attention, which FlopCounterMode counts (see test_lm_zoo)
    with FlopCounterMode(display=False) as counter:
        out = model(torch.zeros(1, 3, 384, 384, device="meta"))
    assert net.evaluate()["macs"] == counter.get_total_flops() // 2
    assert tuple(net.output_shape.dims()) == tuple(out.shape[1:])


def test_vit_of_another_size_through_the_cli():
    result = run("import", "torchvision.models:vit_b_16", "--input", "384x384x3", timeout=300)
    assert result.returncode == 2, result.stderr
    assert "Wrong image height! Expected 224 but got 384!" in result.stderr
    assert "Traceback" not in result.stderr


# ---- torchvision ViT: every block's parts ----------------------------------------------------------------


def vit(**options):
    return on_meta(
        lambda: torchvision.models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=3, num_heads=2, hidden_dim=16, mlp_dim=40, num_classes=5, **options
        )
    )


@pytest.mark.parametrize(
    "act,word",
    [
        (torch.nn.ReLU, "relu"),
        (torch.nn.SiLU, "silu"),
        (torch.nn.Tanh, "tanh"),
        (lambda: torch.nn.GELU(approximate="tanh"), "gelu"),
    ],
)
def test_vit_reads_the_activation_of_its_blocks(act, word):
    model = vit()
    for block in model.encoder.layers:
        block.mlp[1] = act()
    text = paramsym.from_torch(model, "32x32x3")
    assert f"dense(->40, bias) > {word} > dense(->d, bias)" in block_line(text)
    assert paramsym.parse(text).evaluate()["params"] == numel(model)


@pytest.mark.parametrize(
    "change,words",
    [
        (lambda m: m.encoder.layers[2].mlp.__setitem__(1, torch.nn.ReLU()), "blocks differ"),
        (lambda m: [b.mlp.__setitem__(1, torch.nn.PReLU()) for b in m.encoder.layers], "PReLU"),
        (lambda m: [b.mlp.__setitem__(1, torch.nn.Softmax(-1)) for b in m.encoder.layers], "Softmax"),
        (
            lambda m: m.encoder.layers[1].__setattr__(
                "self_attention", torch.nn.MultiheadAttention(16, 4, batch_first=True)
            ),
            "blocks differ",
        ),
        (
            lambda m: m.encoder.layers[0].__setattr__(
                "self_attention", torch.nn.MultiheadAttention(16, 2, batch_first=True, add_bias_kv=True)
            ),
            "add_bias_kv",
        ),
        (lambda m: m.encoder.__setattr__("ln", torch.nn.LayerNorm(16, bias=False)), "final norm"),
    ],
)
def test_vit_refuses_blocks_that_differ_or_have_no_counterpart(change, words):
    model = vit()
    change(model)
    with pytest.raises(ParamsymError, match=words):
        paramsym.from_torch(model, "32x32x3")


def test_vit_reads_attention_without_biases():
    model = vit()
    for block in model.encoder.layers:
        block.self_attention = torch.nn.MultiheadAttention(16, 2, batch_first=True, bias=False, device="meta")
    text = paramsym.from_torch(model, "32x32x3")
    assert "attn(heads=h)" in block_line(text)
    assert paramsym.parse(text).evaluate()["params"] == numel(model)


def test_vit_with_a_representation_layer_and_a_conv_stem():
    model = vit(representation_size=12)
    text = paramsym.from_torch(model, "32x32x3")
    assert "first > dense(->12, bias) > tanh > dense(->5, bias)" in text
    assert paramsym.parse(text).evaluate()["params"] == numel(model)
    from torchvision.models.vision_transformer import ConvStemConfig

    stem = vit(conv_stem_configs=[ConvStemConfig(out_channels=8, kernel_size=3, stride=2)])
    with pytest.raises(ParamsymError, match="conv_stem_configs"):
        paramsym.from_torch(stem, "32x32x3")


# ---- torchvision Swin ------------------------------------------------------------------------------------


def swin(**options):
    return SwinTransformer(
        patch_size=[4, 4], embed_dim=32, depths=[2, 1], num_heads=[2, 4], window_size=[4, 4], num_classes=10, **options
    ).eval()


def test_swin_reads_a_width_ratio_that_is_not_whole():
    model = swin(mlp_ratio=2.5)  # hidden widths 80 and 160: 5*d/2
    text = paramsym.from_torch(model, (64, 64, 3))
    assert "dense(->5*d/2, bias)" in block_line(text)
    net = paramsym.parse(text)
    assert net.evaluate()["params"] == numel(model)
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 64, 64))
    assert net.evaluate()["macs"] == counter.get_total_flops() // 2


def test_swin_reads_the_activation_of_every_block():
    model = swin()
    blocks = [
        b
        for stage in model.features
        if isinstance(stage, torch.nn.Sequential) and not isinstance(stage[0], torch.nn.Conv2d)
        for b in stage
    ]
    for b in blocks:
        b.mlp[1] = torch.nn.SiLU()
    text = paramsym.from_torch(model, (64, 64, 3))
    assert "> silu >" in block_line(text) and "gelu" not in text
    blocks[-1].mlp[1] = torch.nn.GELU()
    with pytest.raises(ParamsymError, match="MLPs differ"):
        paramsym.from_torch(model, (64, 64, 3))


def swin_blocks(model):
    return [b for stage in model.features[1:] if isinstance(stage, torch.nn.Sequential) for b in stage]


@pytest.mark.parametrize(
    "change,words",
    [
        (lambda m: swin_blocks(m)[1].attn.__setattr__("shift_size", [0, 0]), "a shift of \\[0, 0\\]"),
        (lambda m: swin_blocks(m)[1].attn.__setattr__("num_heads", 4), "heads differ"),
        (lambda m: swin_blocks(m)[2].__setattr__("norm1", torch.nn.LayerNorm(64, bias=False)), "nn.LayerNorm"),
        (lambda m: m.features[0].__setitem__(2, torch.nn.Identity()), "stem"),
        (lambda m: swin_blocks(m)[0].mlp.__setitem__(1, torch.nn.PReLU()), "PReLU"),
    ],
)
def test_swin_refuses_blocks_it_does_not_read(change, words):
    model = swin()
    change(model)
    with pytest.raises(ParamsymError, match=words):
        paramsym.from_torch(model, (64, 64, 3))


@pytest.mark.parametrize("asked,words", [((64, 64), "HxWxC"), ((64, 64, 1), "3 channels")])
def test_swin_refuses_other_axes_and_channels(asked, words):
    with pytest.raises(ParamsymError, match=words):
        paramsym.from_torch(swin(), asked)


# ---- language models: the input asked for ----------------------------------------------------------------

LANGUAGE_MODELS = {
    "gpt2": lambda: transformers.GPT2LMHeadModel(
        transformers.GPT2Config(vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=64)
    ),
    "bert": lambda: transformers.BertModel(
        transformers.BertConfig(
            vocab_size=100,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=96,
            max_position_embeddings=64,
        )
    ),
    "roberta": lambda: transformers.RobertaForMaskedLM(
        transformers.RobertaConfig(
            vocab_size=100,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=96,
            max_position_embeddings=64,  # positions 2..63: padding_idx=1 comes first
        )
    ),
    "llama": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL, max_position_embeddings=64)),
    "mistral": lambda: transformers.MistralForCausalLM(transformers.MistralConfig(**SMALL, sliding_window=None)),
    "mixtral": lambda: transformers.MixtralForCausalLM(
        transformers.MixtralConfig(**SMALL, num_local_experts=4, num_experts_per_tok=2)
    ),
}


@pytest.mark.parametrize("family", sorted(LANGUAGE_MODELS))
@pytest.mark.parametrize("asked", ["4096x1", "32x64", (32, 1, 1)])
def test_language_models_take_one_axis(family, asked):
    model = on_meta(LANGUAGE_MODELS[family])
    with pytest.raises(ParamsymError, match="takes a sequence of token ids"):
        paramsym.from_torch(model, asked)


def runs(model, length: int) -> bool:
    try:
        with torch.no_grad():
            model(torch.zeros(1, length, dtype=torch.long))
    except (IndexError, RuntimeError):
        return False
    return True


@pytest.mark.parametrize(
    "family,length",
    [
        ("gpt2", 64),
        ("gpt2", 65),
        ("bert", 64),
        ("bert", 65),
        ("roberta", 62),
        ("roberta", 63),
        ("llama", 64),
        ("llama", 100),
        ("mistral", 200),
    ],
)
def test_a_length_beyond_a_learned_position_table_is_refused_as_pytorch_fails(family, length):
    model = LANGUAGE_MODELS[family]().eval()
    if runs(model, length):
        text = paramsym.from_torch(model, length)
        assert paramsym.parse(text).evaluate()["params"] == numel(model)
    else:
        with pytest.raises(ParamsymError, match="position embedding for each of 64 positions"):
            paramsym.from_torch(model, length)
    # the table sizes the cases test: learned positions stop at 64 (RoBERTa's at 62), rotary ones do not
    longest = {"gpt2": 64, "bert": 64, "roberta": 62}.get(family)
    assert runs(model, length) == (longest is None or length <= longest)


def test_a_language_model_with_two_axes_through_the_cli(tmp_path, monkeypatch):
    (tmp_path / "layoutmodels.py").write_text(
        textwrap.dedent("""
        import torch, transformers
        def mistral():
            with torch.device("meta"):
                return transformers.MistralForCausalLM(transformers.MistralConfig(num_hidden_layers=2))
    """)
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([SRC, str(tmp_path)]))
    result = run("import", "layoutmodels:mistral", "--input", "4096x1", timeout=300)
    assert result.returncode == 2, result.stderr
    assert "takes a sequence of token ids" in result.stderr and "4096x1" in result.stderr
    assert "Traceback" not in result.stderr


# ---- Mistral's sliding window against transformers' own KV cache -------------------------------------------


def cache_values(model, length: int) -> int:
    with torch.no_grad():
        cache = model(torch.zeros(1, length, dtype=torch.long), use_cache=True).past_key_values
    return sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)


WINDOWED = {
    "mistral": lambda: transformers.MistralForCausalLM(transformers.MistralConfig(**SMALL, sliding_window=8)),
    "mixtral": lambda: transformers.MixtralForCausalLM(
        transformers.MixtralConfig(**SMALL, sliding_window=8, num_local_experts=4, num_experts_per_tok=2)
    ),
}


@pytest.mark.parametrize("family", sorted(WINDOWED))
@pytest.mark.parametrize("length", [1, 7, 8, 12])
def test_a_sliding_window_imports_as_window(family, length):
    """sliding_window=8 is read as attn(..., window=8, causal): the cache keeps min(T, 7) positions a layer."""
    model = WINDOWED[family]().eval()
    truth = cache_values(model, length)
    assert truth == 2 * min(length, 7) * 2 * 16 * 2  # keys and values: 2 kv heads of 16, 2 layers
    text = paramsym.from_torch(model, length)
    assert "window=8" in text
    values = paramsym.parse(text).evaluate()
    assert values["kv_cache"] == truth
    assert values["params"] == numel(model)


def test_mistral_7b_defaults_have_a_window():
    """MistralConfig() is Mistral-7B v0.1: sliding_window=4096 (examples/mistral_7b.psym is v0.2, no window)."""
    model = on_meta(lambda: transformers.MistralForCausalLM(transformers.MistralConfig()))
    values = paramsym.parse(paramsym.from_torch(model, 8192)).evaluate()
    assert values["kv_cache"] == 2 * 32 * 4095 * 8 * 128
    free = on_meta(lambda: transformers.MistralForCausalLM(transformers.MistralConfig(sliding_window=None)))
    assert "window" not in paramsym.from_torch(free, 8192)


# ---- config fields that change the layers ---------------------------------------------------------------


def gpt2_config(**config):
    return transformers.GPT2Config(vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=64, **config)


def bert_config(**config):
    return transformers.BertConfig(
        vocab_size=100,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=96,
        max_position_embeddings=64,
        **config,
    )


REFUSED = [
    (
        "gpt2 cross-attention",
        lambda: transformers.GPT2LMHeadModel(gpt2_config(add_cross_attention=True)),
        "add_cross_attention=True",
    ),
    (
        "bert cross-attention",
        lambda: transformers.BertModel(bert_config(is_decoder=True, add_cross_attention=True)),
        "add_cross_attention=True",
    ),
    (
        "gpt2 classifier",
        lambda: transformers.GPT2ForSequenceClassification(gpt2_config()),
        "GPT2ForSequenceClassification: of its family paramsym reads GPT2Model, GPT2LMHeadModel",
    ),
    ("gpt2 double heads", lambda: transformers.GPT2DoubleHeadsModel(gpt2_config()), "GPT2DoubleHeadsModel: of"),
    (
        "llama classifier",
        lambda: transformers.LlamaForSequenceClassification(transformers.LlamaConfig(**SMALL)),
        "LlamaForSequenceClassification: of its family",
    ),
    (
        "gpt2 quick_gelu",
        lambda: transformers.GPT2Model(gpt2_config(activation_function="quick_gelu")),
        "activation_function='quick_gelu'",
    ),
]


@pytest.mark.parametrize("name,build,words", REFUSED, ids=[r[0] for r in REFUSED])
def test_config_fields_that_add_layers_are_refused_by_name(name, build, words):
    with pytest.raises(ParamsymError, match=words.replace("(", r"\(")):
        paramsym.from_torch(on_meta(build), 32)


READ = [
    ("gpt2 relu", lambda: transformers.GPT2LMHeadModel(gpt2_config(activation_function="relu")), "> relu >"),
    (
        "gpt2 scaled by layer",
        lambda: transformers.GPT2LMHeadModel(gpt2_config(scale_attn_by_inverse_layer_idx=True)),
        "> gelu >",
    ),
    (
        "llama gelu",
        lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL, hidden_act="gelu")),
        "dense(->F) > gelu",
    ),
    ("bert decoder", lambda: transformers.BertModel(bert_config(is_decoder=True)), "attn(heads=h, bias, causal)"),
    ("bert relu", lambda: transformers.BertModel(bert_config(hidden_act="relu")), "> relu >"),
    (
        "bert relative_key",
        lambda: transformers.BertModel(bert_config(position_embedding_type="relative_key")),
        "attn(heads=h, bias))",
    ),  # transformers 5 keeps the field but no longer builds distance embeddings
]


@pytest.mark.parametrize("name,build,says", READ, ids=[r[0] for r in READ])
def test_config_fields_that_change_the_layers_are_read(name, build, says):
    model = on_meta(build)
    text = paramsym.from_torch(model, 32)
    assert says in block_line(text), text
    assert paramsym.parse(text).evaluate()["params"] == numel(model)


def test_bert_decoder_is_causal_in_transformers():
    """BERT with is_decoder=True masks the future, which `causal` says: the first position's output does not
    change when a later token does."""
    model = transformers.BertModel(bert_config(is_decoder=True), add_pooling_layer=False).eval()
    with torch.no_grad():
        a = model(torch.tensor([[1, 2, 3]])).last_hidden_state[0, 0]
        b = model(torch.tensor([[1, 2, 9]])).last_hidden_state[0, 0]
    assert torch.allclose(a, b)
