"""saved_activation_bytes against PyTorch: what autograd keeps for backward, measured with saved_tensors_hooks
(tests/helpers/saved_measure.py: each storage once by its size; parameters, buffers and the input not counted)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

import sympy  # noqa: E402

import paramsym  # noqa: E402
from helpers.saved_measure import saved_bytes as measured  # noqa: E402
from paramsym.core.saved import saved_bytes, why_unknown  # noqa: E402
from paramsym.core.setup import Setup, format_named  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def setup_of(fmt: str, batch=2, **rest) -> Setup:
    f = format_named(fmt)
    rest.setdefault("train", True)  # saved activations apply to training
    return Setup(
        weights=f, kv=f, activations=f, batch=sympy.Integer(batch) if isinstance(batch, int) else batch, **rest
    )


def exported(network, fmt: str, batch: int = 2):
    """The program's PyTorch module (its exported source, run) in training mode, and an input."""
    namespace: dict = {}
    exec(compile(paramsym.torch_source(network), "<exported>", "exec"), namespace)
    torch.manual_seed(0)
    model = namespace["build_model"]().to(DTYPES[fmt]).train()
    x = paramsym.example_input(network, batch=batch)
    x = (
        torch.randn_like(x).to(DTYPES[fmt]).requires_grad_()
        if x.dtype.is_floating_point
        else torch.randint(0, 5, x.shape)
    )
    return model, x


def check(program: str, fmt: str, with_input: bool = False, batch: int = 2) -> int:
    network = paramsym.parse(program)
    ours = saved_bytes(network, setup_of(fmt, batch), with_input=with_input)
    assert ours is not None, why_unknown(network.with_options(setup=setup_of(fmt, batch)))
    model, x = exported(network, fmt, batch)
    theirs = measured(model, x, with_input=with_input)
    assert int(ours) == theirs
    return theirs


# each kind between a convolution (which keeps the program's input, not counted) and a global average pool (which
# keeps nothing): what the kind keeps of its input, its output and of its own
KINDS = [
    "relu",
    "relu6",
    "leakyrelu",
    "elu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "hardswish",
    "hardsigmoid",
    "softmax",
    "dropout(0.1)",
    "dropout",
    "dropout(0)",
    "dropchannels(0.2)",
    "droppath(0.1)",
    "droppath(0)",
    "id",
    "bn",
    "bn(noaffine)",
    "ln",
    "ln(nobias)",
    "gn(groups=2)",
    "rmsnorm",
    "maxpool2x2",
    "maxpool3x3(stride=2, pad=1)",
    "avgpool2x2",
    "avgpool3x3(stride=1, pad=1)",
    "adaptiveavgpool(2x2)",
    "adaptivemaxpool(2x2)",
    "conv3x3(->6, pad=1)",
    "conv1x1(->8, bias)",
    "dwconv3x3(pad=1)",
    "deconv2x2(->4, stride=2)",
    "scale",
    "starrelu",
    "squaredrelu",
    "zeropad(1)",
    "shuffle(2)",
    "space2depth(2)",
]
# the same, with what follows it keeping its output (a convolution): an output kept twice counts once
TAILS = ["gap", "conv1x1(->4) > gap"]


# rmsnorm is declared as Hugging Face's RMSNorm (Llama's, test_llama_...), which keeps the normalised values in the
# activations' format; the export's torch.nn.RMSNorm keeps them in fp32
NN_RMSNORM = "torch.nn.RMSNorm keeps its normalised values in fp32, Hugging Face's (declared) in bf16"
FORMATS = ["fp32", "bf16"]


def _cases(kinds: list[str]) -> list:
    """(kind, format) for every kind and format; rmsnorm in bf16 fails, as expected (NN_RMSNORM)."""
    xfail = pytest.mark.xfail(strict=True, reason=NN_RMSNORM)
    return [
        pytest.param(kind, fmt, marks=xfail if (kind, fmt) == ("rmsnorm", "bf16") else (), id=f"{kind}-{fmt}")
        for kind in kinds
        for fmt in FORMATS
    ]


@pytest.mark.parametrize("kind, fmt", _cases(KINDS))
@pytest.mark.parametrize("tail", TAILS)
def test_each_kind_on_a_map_keeps_what_pytorch_keeps(kind, tail, fmt):
    check(f"input(8x8x4) > conv1x1(->4) > {kind} > {tail}", fmt)


SEQUENCE_KINDS = [
    "dense(->8)",
    "dense(->16, bias)",
    "ln",
    "rmsnorm",
    "gelu",
    "silu",
    "dropout(0.1)",
    "posembed(5)",
    "softmax",
    "scale",
    "transpose",
]


@pytest.mark.parametrize("kind, fmt", _cases(SEQUENCE_KINDS))
def test_each_kind_on_a_sequence_keeps_what_pytorch_keeps(kind, fmt):
    check(f"input(5x16) > conv1(->16) > {kind} > conv1(->4) > gap", fmt)


# programs whose input is kept (the layer first keeps it): counted here with the input
WITH_INPUT = [
    "input(16) > dense(->8) > relu > dense(->3, bias)",
    "input(8x8x4) > gap > flatten > dense(->3)",
    "input(8x8x4) > flatten > dense(->3)",
    "input(7) > embed(10->16) > posembed(7) > ln > dense(->10)",
    "input(8x8x4) > gmp > dense(->3)",
]


@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
@pytest.mark.parametrize("program", WITH_INPUT)
def test_programs_with_their_input_kept(program, fmt):
    check(program, fmt, with_input=True)
    check(program, fmt)


COMBINED = [
    "input(8x8x4) > conv1x1(->4) > res(conv3x3(->4, pad=1) > bn > relu) > relu > gap",
    "input(8x8x4) > conv1x1(->4) > add(conv3x3(->4, pad=1) | id) > gap",
    "input(8x8x4) > conv1x1(->4) > sub(conv3x3(->4, pad=1) | id) > gap",
    "input(8x8x4) > conv1x1(->4) > concat(conv3x3(->4, pad=1) | relu) > conv1x1(->2) > gap",
    "input(8x8x4) > conv1x1(->4) > mul(conv3x3(->4, pad=1) | id) > gap",
    "input(8x8x4) > conv1x1(->4) > mul(id | gap > dense(->4) > sigmoid) > gap",
    "input(8x8x4) > conv1x1(->4) > res(mul(id | gap > dense(->2) > relu > dense(->4) > sigmoid)) > gap",
    "input(8x8x4) > conv1x1(->4) > (conv3x3(->4, pad=1) > bn > relu) * 3 > gap",
    "input(8x8x4) > conv1x1(->4) > (res(conv3x3(->4, pad=1) > bn > relu)) * 3 > gap",
    "input(8x8x4) > conv1x1(->4) > (relu > conv3x3(->4, pad=1)) * 3 > gap",
    "input(8x8x4) > conv1x1(->4) as a > relu > @a > gap",
]


@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
@pytest.mark.parametrize("program", COMBINED)
def test_combinators_keep_what_pytorch_keeps(program, fmt):
    check(program, fmt)


# ---- whole networks: torchvision's, and Hugging Face's language models (tiny configurations) --------------------


def ours(network, fmt: str, batch=2, **options) -> int:
    setup = setup_of(fmt, batch, **options)
    value = saved_bytes(network, setup)
    assert value is not None, why_unknown(network.with_options(setup=setup))
    return network.value(value)


@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_torchvision_networks(name, fmt):
    torchvision = pytest.importorskip("torchvision")
    model = getattr(torchvision.models, name)().train().to(DTYPES[fmt])
    network = paramsym.parse(paramsym.from_torch(model, (64, 64, 3)))
    for batch in (1, 3):
        x = torch.randn(batch, 3, 64, 64, dtype=DTYPES[fmt])
        assert ours(network, fmt, batch) == measured(model, x)
    # the batch as a symbol: the formula is linear in B
    B = sympy.Symbol("B", integer=True, positive=True)
    formula = saved_bytes(network, setup_of(fmt, B))
    assert network.value(formula.subs(B, 3)) == ours(network, fmt, 3)


def _llama(impl: str, layers: int = 2, kv_heads: int = 2):
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        max_position_embeddings=64,
        attn_implementation=impl,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).train()


def _logits(model):
    return lambda x: model(x).logits


ATTENTION = {"eager": "math", "sdpa": "fused"}


@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
@pytest.mark.parametrize("kv_heads", [2, 4])
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_llama_at_two_batches_and_lengths(impl, kv_heads, fmt):
    """Llama (rmsnorm, attention with GQA and rope, causal, the SiLU-gated MLP): the formula in B and T, at two
    points, equals what PyTorch keeps; `--attention math` is Hugging Face's eager attention, `fused` its SDPA."""
    model = _llama(impl, kv_heads=kv_heads).to(DTYPES[fmt])
    network = paramsym.parse(paramsym.from_torch(model, (8,)))
    B = sympy.Symbol("B", integer=True, positive=True)
    formula = saved_bytes(network, setup_of(fmt, B, attention=ATTENTION[impl]))
    assert formula is not None and {s.name for s in formula.free_symbols} >= {"B", "T"}
    for batch, length in ((2, 8), (3, 13)):
        x = torch.randint(0, 100, (batch, length))
        assert network.value(formula.subs(B, batch), T=length) == measured(model, x, _logits(model))


def _gpt2(impl: str):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        n_layer=2,
        n_embd=64,
        n_head=4,
        n_positions=64,
        vocab_size=100,
        attn_implementation=impl,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        activation_function="gelu",
    )
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config).train()


# what Hugging Face's GPT-2 keeps besides the program's values, per batch, length, width, layers, activation bytes:
# its position ids (int64, 8 bytes each, looked up by nn.Embedding); with SDPA, c_attn's fused output (3d per
# position) kept whole by the key view, and copies of the queries and values, 2·d more per position than separate
# projections; eager, a softmax in the activations' format (Llama's, declared, is in fp32: 4 - a bytes a
# probability less, for h·T² probabilities)
def _gpt2_extra(impl, B, T, d, L, a, h=4):
    extra = 8 * T
    if impl == "sdpa":
        extra += L * 2 * B * T * d * a
    else:
        extra -= L * B * h * T * T * 4 if a != 4 else 0
    return extra


@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_gpt2_keeps_what_is_declared_and_its_own_differences(impl, fmt):
    """GPT-2 (gelu as F.gelu, no dropout): the program's count plus GPT-2's own extras, named above."""
    model = _gpt2(impl).to(DTYPES[fmt])
    network = paramsym.parse(paramsym.from_torch(model, (8,)))
    a = 4 if fmt == "fp32" else 2
    length = 8  # the program's input(8): GPT-2's import writes the length as a number
    for batch in (2, 3):
        x = torch.randint(0, 100, (batch, length))
        expected = measured(model, x, _logits(model)) - _gpt2_extra(impl, batch, length, 64, 2, a)
        assert ours(network, fmt, batch, attention=ATTENTION[impl]) == expected


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_full_recompute_is_what_checkpointed_blocks_keep(impl):
    """`--recompute full`: Hugging Face's gradient checkpointing of each decoder layer (torch.utils.checkpoint,
    reentrant: it saves each layer's input) keeps the layers' inputs and what is outside them; the rope tables
    stay alive as the layers' arguments; in backward one layer at a time is run again and keeps what it keeps."""
    model = _llama(impl)
    network = paramsym.parse(paramsym.from_torch(model, (8,)))
    x = torch.randint(0, 100, (2, 8))
    hidden = torch.randn(2, 8, 64, requires_grad=True)
    positions = torch.arange(8)[None]
    cos, sin = model.model.rotary_emb(hidden, positions)
    layer = model.model.layers[0]
    again = measured(
        layer,
        hidden,
        lambda h: layer(h, attention_mask=None, position_ids=positions, position_embeddings=(cos, sin)),
        exclude=(cos, sin),
    )
    tables = cos.untyped_storage().nbytes() + sin.untyped_storage().nbytes()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    kept = measured(model, x, _logits(model))
    assert ours(network, "fp32", recompute="full", attention=ATTENTION[impl]) == kept + tables + again


def test_selective_recompute_is_what_a_checkpointed_attention_core_keeps(monkeypatch):
    """`--recompute selective` (Megatron's): the attention core checkpointed (its inputs q, k, v kept), made again
    in backward for one layer at a time."""
    from transformers.models.llama import modeling_llama

    core = modeling_llama.eager_attention_forward

    def checkpointed(module, q, k, v, mask, **kwargs):
        return torch.utils.checkpoint.checkpoint(
            lambda q, k, v: core(module, q, k, v, mask, **kwargs), q, k, v, use_reentrant=True
        )

    model = _llama("eager")
    network = paramsym.parse(paramsym.from_torch(model, (8,)))
    x = torch.randint(0, 100, (2, 8))
    monkeypatch.setattr(modeling_llama, "eager_attention_forward", checkpointed)
    kept = measured(model, x, _logits(model))
    attention = model.model.layers[0].self_attn
    q = torch.randn(2, 4, 8, 16, requires_grad=True)
    k, v = (torch.randn(2, 2, 8, 16, requires_grad=True) for _ in range(2))
    again = measured(attention, q, lambda q: core(attention, q, k, v, None, scaling=0.25)[0], exclude=(k, v))
    assert ours(network, "fp32", recompute="selective") == kept + again


def test_full_recompute_needs_repeated_blocks():
    network = paramsym.parse("input(8x8x4) > conv3x3(->4, pad=1) > relu")
    setup = setup_of("fp32", recompute="full")
    assert saved_bytes(network, setup) is None
    assert "(SEQ) * N" in why_unknown(network.with_options(setup=setup))


def test_an_undeclared_kind_is_named():
    network = paramsym.parse("input(8x8x4) > conv3x3(->4, pad=1) > grn")
    assert network.saved_activation_bytes is None
    assert "grn" in why_unknown(network)


@pytest.mark.parametrize("fmt", ["fp32", "bf16"])
def test_torchvision_vit_with_fused_attention(fmt):
    """torchvision's ViT (nn.MultiheadAttention: F.scaled_dot_product_attention's fused kernel in training on the
    CPU; q, k and v one packed storage, the same bytes as three), a class token, `first` a view of the sequence."""
    pytest.importorskip("torchvision")
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=10
    ).train()
    network = paramsym.parse(paramsym.from_torch(model, (32, 32, 3)))
    model = model.to(DTYPES[fmt])
    for batch in (2, 3):
        x = torch.randn(batch, 3, 32, 32, dtype=DTYPES[fmt])
        assert ours(network, fmt, batch, attention="fused") == measured(model, x)


# ---- the command line --------------------------------------------------------------------------------------------

CNN = "input(32x32x3) > conv3x3(->8, pad=1) > bn > relu > gap > dense(->10)"


def test_count_with_train_shows_the_saved_activations(capsys):
    from paramsym.cli import main

    assert main(["count", CNN, "--train", "--batch", "32"]) == 0
    # bn keeps the convolution's output (32 x 32 x 8 fp32 values a sample) and 2 x 8 statistics, relu its output,
    # dense its 8 inputs a sample
    expected = 32 * (2 * 32 * 32 * 8 * 4 + 8 * 4) + 2 * 8 * 4
    assert "+ saved activations 2.10 MB (fp32, recompute none)" in capsys.readouterr().out
    assert main(["count", CNN, "--train", "--batch", "32", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["saved_activation_bytes"]["value"] == expected


def test_formula_in_the_batch_and_solve_for_it(capsys):
    from paramsym.cli import main

    assert (
        main(["formula", "--on", "saved_activation_bytes", CNN, "--train", "--batch", "B", "--activations", "bf16"])
        == 0
    )
    # per sample 2 x 8,192 values and 8 of dense's input, 2 bytes each; bn's 2 x 8 statistics once
    assert "saved_activation_bytes = 32784*B + 32" in capsys.readouterr().out
    assert (
        main(
            ["solve", "--on", "saved_activation_bytes", CNN, "--train", "--batch", "B", "--budget", "1M", "--for", "B"]
        )
        == 0
    )
    assert "B = 15" in capsys.readouterr().out  # 65,568·15 + 64 <= 10^6 < 65,568·16 + 64


def test_explain_with_train_names_the_kind_that_does_not_declare(capsys):
    from paramsym.cli import main

    assert main(["explain", "input(8x8x4) > conv3x3(->4) > grn", "--train"]) == 0
    assert "what grn (grn, at line 1, column 31) keeps for backward is not declared" in capsys.readouterr().out


# ---- a symbolic repeat is its copies written out ----------------------------------------------------------------

BODIES = [
    "conv3x3(->4, pad=1) > bn > relu",
    "relu > conv3x3(->4, pad=1)",
    "res(conv3x3(->4, pad=1) > relu)",
    "gelu",
    "id",
    "dropout(0.1) > scale",
    "mul(id | gap > dense(->4) > sigmoid)",
]


@pytest.mark.parametrize("body", BODIES)
def test_a_symbolic_repeat_counts_the_values_between_copies_once(body):
    B = sympy.Symbol("B", integer=True, positive=True)
    symbolic = paramsym.parse(f"input(8x8x4) > conv1x1(->4) > ({body}) * N > gap")
    formula = saved_bytes(symbolic, setup_of("fp32", B))
    for n in (1, 2, 3):
        unrolled = paramsym.parse(f"input(8x8x4) > conv1x1(->4) > ({body}) * {n} > gap")
        assert symbolic.value(formula.subs(B, 2), N=n) == saved_bytes(unrolled, setup_of("fp32", 2))


def test_formats_other_than_fp32_and_bf16_are_not_declared():
    network = paramsym.parse(CNN)
    assert saved_bytes(network, setup_of("fp32")) is not None
    for fmt in ("fp16", "int8"):
        assert saved_bytes(network, setup_of(fmt)) is None
        assert "fp32 and bf16" in why_unknown(network.with_options(setup=setup_of(fmt)))
