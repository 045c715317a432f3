"""Gates, experts, side heads and shared weights (LANGUAGE.md section 7): `mul(...)`,
`moe(SEQ, experts=E, top=k)`, `aux(SEQ)`, `LAYER as NAME` and `dense(..., tie=NAME)`,
checked against PyTorch, torchvision, Keras and Hugging Face modules."""

from __future__ import annotations

import os

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import paramsym
from paramsym import ParamsymError

torch = pytest.importorskip("torch")
from helpers.cli_helpers import run  # noqa: E402
from paramsym.frameworks.export import example_input, to_torch, torch_source  # noqa: E402


def numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


def through_torch(program: str, **values):
    """The exported module, its parameter count and the shape of a real forward pass (channels last)."""
    net = paramsym.parse(program, **values)
    module = to_torch(net)
    with torch.no_grad():
        out = module(example_input(net))
    shape = (*out.shape[2:], out.shape[1]) if out.dim() > 1 else tuple(out.shape[1:])
    return net, module, tuple(shape)


# ---- counts: (program, params, active, output) ------------------------------------------

CASES = [
    # squeeze-and-excitation (LANGUAGE.md 7.1)
    (
        "input(8x8x32) > res(mul(id | gap > dense(->8, bias) > relu > dense(->32, bias) > sigmoid))",
        552,
        552,
        "8 x 8 x 32",
    ),
    # the gated MLP of Llama: silu(x W1) * (x W3), then W2
    ("input(16x64) > mul(dense(->96) > silu | dense(->96)) > dense(->64)", 3 * 64 * 96, 3 * 64 * 96, "16 x 64"),
    # a gate on a vector
    ("input(10) > mul(id | dense(->10, bias) > sigmoid)", 110, 110, "10"),
    # experts: router d*E, E copies stored, k used per position
    (
        "input(16x64) > moe(dense(->256) > gelu > dense(->64), experts=8, top=2)",
        64 * 8 + 8 * 2 * 64 * 256,
        64 * 8 + 2 * 2 * 64 * 256,
        "16 x 64",
    ),
    (
        "input(64) > moe(dense(->256, bias) > relu > dense(->64, bias), experts=4, top=1)",
        64 * 4 + 4 * (64 * 256 + 256 + 256 * 64 + 64),
        64 * 4 + 1 * (64 * 256 + 256 + 256 * 64 + 64),
        "64",
    ),
    # a side head counts; what flows on is its input
    ("input(8x8x16) > aux(gap > dense(->10, bias)) > conv3x3(->4)", 170 + 576, 170 + 576, "6 x 6 x 4"),
    # a shared weight is counted once, where it is first written
    ("input(16x64) > dense(->100) as w > relu > dense(->64, tie=w)", 6400, 6400, "16 x 64"),
    ("input(16x64) > dense(->100) as w > relu > dense(->64, bias, tie=w)", 6464, 6464, "16 x 64"),
    ("input(16x64) > dense(->64) as w > dense(->64, tie=w)", 4096, 4096, "16 x 64"),
]


@pytest.mark.parametrize("program,params,active,output", CASES)
def test_counts_and_the_exported_module_agree(program, params, active, output):
    net, module, shape = through_torch(program)
    assert net.params == params
    assert net.active == active
    assert net.output_shape.describe() == output
    assert " x ".join(map(str, shape)) == output
    if "tie=" not in program:  # the exported tie is checked in test_kind_sequence
        assert numel(module) == params


def test_squeeze_and_excitation_equals_torchvision():
    from torchvision.ops import SqueezeExcitation

    # torchvision's 1x1 convolutions on the pooled 1x1 map are dense layers on the pooled vector
    net = paramsym.parse("input(8x8x32) > res(mul(id | gap > dense(->8, bias) > relu > dense(->32, bias) > sigmoid))")
    assert net.params == numel(SqueezeExcitation(32, 8)) == 552


def test_gated_mlp_equals_hugging_face_llama():
    transformers = pytest.importorskip("transformers")
    from transformers.models.llama.modeling_llama import LlamaMLP

    for d, f in ((64, 96), (4096, 11008), (4096, 14336)):
        with torch.device("meta"):
            mlp = LlamaMLP(transformers.LlamaConfig(hidden_size=d, intermediate_size=f))
        net = paramsym.parse(f"input(16x{d}) > mul(dense(->{f}) > silu | dense(->{f})) > dense(->{d})")
        assert net.params == numel(mlp), (d, f)


def test_experts_equal_hugging_face_mixtral():
    transformers = pytest.importorskip("transformers")
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    for d, f, e, k in ((64, 96, 8, 2), (4096, 14336, 8, 2), (128, 64, 16, 4)):
        config = transformers.MixtralConfig(
            hidden_size=d, intermediate_size=f, num_local_experts=e, num_experts_per_tok=k
        )
        with torch.device("meta"):
            block = MixtralSparseMoeBlock(config)
        net = paramsym.parse(
            f"input(8x{d}) > moe(mul(dense(->{f}) > silu | dense(->{f})) > dense(->{d}), experts={e}, top={k})"
        )
        assert net.params == numel(block)
        one_expert = 3 * d * f
        assert net.active == d * e + k * one_expert  # what one token goes through


def test_moe_macs_are_the_router_and_k_experts():
    net = paramsym.parse("input(T x d) > moe(dense(->4d) > gelu > dense(->d), experts=E, top=k)")
    T, d, E, k = (net.symbols[n] for n in "TdEk")
    assert sympy.expand(net.macs - (T * d * E + k * 8 * T * d**2)) == 0
    assert sympy.expand(net.params - (d * E + E * 8 * d**2)) == 0
    assert sympy.expand(net.active - (d * E + k * 8 * d**2)) == 0


def test_moe_module_routes_each_position_to_k_experts():
    """The exported module: a position's output is the weighted sum of exactly its k best experts."""
    net = paramsym.parse("input(5x8) > moe(dense(->8, bias), experts=4, top=2)")
    torch.manual_seed(0)
    module = to_torch(net)[0]
    x = torch.randn(1, 8, 5)
    with torch.no_grad():
        out = module(x)
        scores = module.router(x)  # (1, 4, 5)
        for position in range(5):
            best = scores[0, :, position].topk(2)
            weights = best.values.softmax(0)
            expected = sum(w * module.experts[int(i)](x)[0, :, position] for w, i in zip(weights, best.indices))
            assert torch.allclose(out[0, :, position], expected, atol=1e-6)


def test_nested_repeats_and_experts_multiply():
    net = paramsym.parse("input(4x8) > (moe(dense(->8), experts=4, top=2)) * L")
    L = net.symbols["L"]
    assert sympy.expand(net.params - L * (8 * 4 + 4 * 64)) == 0
    assert sympy.expand(net.active - L * (8 * 4 + 2 * 64)) == 0
    nested = paramsym.parse("input(4x8) > moe(moe(dense(->8), experts=3, top=1), experts=2, top=1)")
    assert nested.params == 8 * 2 + 2 * (8 * 3 + 3 * 64)
    assert nested.active == 8 * 2 + 1 * (8 * 3 + 1 * 64)


@settings(max_examples=40, deadline=None)
@given(d=st.integers(1, 24), hidden=st.integers(1, 24), experts=st.integers(1, 6), data=st.data())
def test_property_moe_counts_match_the_exported_module(d, hidden, experts, data):
    top = data.draw(st.integers(1, experts))
    bias = data.draw(st.sampled_from(["", ", bias"]))
    program = f"input(3x{d}) > moe(dense(->{hidden}{bias}) > relu > dense(->{d}{bias}), experts={experts}, top={top})"
    net, module, shape = through_torch(program)
    expert = d * hidden + hidden * d + (hidden + d if bias else 0)
    assert net.params == numel(module) == d * experts + experts * expert
    assert net.active == d * experts + top * expert
    assert shape == (3, d)


def test_written_torch_source_builds_the_same_module():
    for program, params, _, _ in CASES:
        if "tie=" in program:
            continue
        namespace: dict = {}
        exec(compile(torch_source(paramsym.parse(program)), "<exported>", "exec"), namespace)
        assert numel(namespace["build_model"]()) == params, program


# ---- Keras -------------------------------------------------------------------------------------


def test_keras_multiply_gate_and_side_heads():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")
    from paramsym.frameworks.keras_export import keras_source, to_keras

    for program in (
        "input(8x8x32) > res(mul(id | gap > dense(->8, bias) > relu > dense(->32, bias) > sigmoid))",
        "input(8x8x16) > aux(gap > dense(->10, bias)) > conv3x3(->4)",
    ):
        net = paramsym.parse(program)
        model = to_keras(net)
        assert model.count_params() == net.params
        namespace: dict = {}
        exec(keras_source(net), namespace)
        assert namespace["build_model"]().count_params() == net.params
    with pytest.raises(ParamsymError, match="moe"):
        to_keras(paramsym.parse("input(4x8) > moe(dense(->8), experts=2, top=1)"))


# ---- errors: (program, message, line, column) ------------------------------------------------

ERRORS = [
    ("input(8x8x32) > mul(id | gap > dense(->8))", "mul(...): the shapes of its branches differ", 1, 26),
    ("input(4x8) > moe(dense(->8), experts=4)", "moe needs top=", 1, 14),
    ("input(4x8) > moe(dense(->8), top=1)", "moe needs experts=", 1, 14),
    ("input(4x8) > moe(dense(->8), experts=2, top=3)", "top=3 must be at most the number of experts (2)", 1, 41),
    ("input(4x8) > moe(dense(->8), experts=0, top=1)", "experts must be at least 1", 1, 30),
    ("input(4x8) > moe(dense(->16), experts=2, top=1)", "each expert must keep the shape", 1, 18),
    ("input(4x8) > moe(dense(->8), experts=2, top=1, bias)", "moe takes the expert's layers", 1, 48),
    ("input(4x8) > moe(dense(->8), experts=2, experts=3, top=1)", "experts= is given twice", 1, 41),
    ("input(4x8) > dense(->8) as w > dense(->8) as w", "'w' names two layers", 1, 46),
    ("def b = dense(->8)\ninput(4x8) > b as w", "'as w' names one layer, but b is a block", 2, 19),
    ("input(4x8) > dense(->8) as relu", "'relu' is the name of a layer", 1, 28),
    ("input(4x8) > dense(->16) > dense(->8, tie=w)", "no layer before this one is named 'w'", 1, 39),
    ("input(4x8) > dense(->16) as wte > dense(->8, tie=wt)", "did you mean 'wte'", 1, 46),
    ("input(4x8) > dense(->16) as w > dense(->10, tie=w)", "this layer's weight is 10 x 16", 1, 45),
    ("input(4x8) > relu as w > dense(->8, tie=w)", "relu has no weight matrix to share", 1, 37),
    ("input(4x8) > dense(->8, tie=3)", "tie= takes the name of a layer", 1, 25),
]


@pytest.mark.parametrize("program,message,line,column", ERRORS)
def test_errors_are_located(program, message, line, column):
    with pytest.raises(ParamsymError) as info:
        paramsym.parse(program)
    error = info.value
    assert message in str(error), str(error)
    assert (error.pos.line, error.pos.column) == (line, column), str(error)


def test_a_tie_between_symbolic_sizes_waits_for_values():
    net = paramsym.parse("input(4 x d) > dense(->V) as w > dense(->D, tie=w)")
    with pytest.raises(ParamsymError, match="weight"):
        net.evaluate(V=8, d=4, D=5)
    assert net.evaluate(V=8, d=4, D=4)["params"] == 32


def test_names_are_reserved_words():
    for word in ("mul", "moe", "aux", "as"):
        with pytest.raises(ParamsymError, match=r"reserved|unexpected"):
            paramsym.parse(f"let {word} = 3\nconv3x3(3->4)")


# ---- the quantities on the command line --------------------------------------------------------


def test_cli_json_has_active_and_kv_cache_and_solves_on_active():
    program = "input(16 x 64) > moe(dense(->F) > gelu > dense(->64), experts=8, top=2)"
    result = run("count", program, "--set", "F=256", "--format", "json")
    assert result.returncode == 0, result.stderr
    import json

    data = json.loads(result.stdout)
    assert data["active"] == {"expr": "256*F + 512", "value": 66048}
    assert data["kv_cache"] == {"expr": "0", "value": 0}
    assert [layer["active"]["value"] for layer in data["layers"]] == [512, 32768, 0, 32768]
    solved = run("solve", program, "--for", "F", "--budget", "66048", "--on", "active", "--format", "json")
    assert solved.returncode == 0, solved.stderr
    assert json.loads(solved.stdout)["value"] == 256
    table = run("count", program, "--set", "F=256").stdout
    assert "= 66,048  (parameters one position goes through)" in table and "active" in table.splitlines()[0]
    plain = run("count", "input(8x8x3) > conv3x3(->4)").stdout
    assert "active" not in plain and "KV cache" not in plain


def test_explain_says_how_many_experts_and_repeats_count():
    from paramsym.render.explain import explain

    text = explain(paramsym.parse("input(16x64) > moe(dense(->128) > gelu > dense(->64), experts=4, top=1)"))
    assert "64·128 = 8,192 weights" in text and "No bias: 8,192 parameters." in text
    assert "One of 4 experts, of which each position goes through 1: 32,768 parameters stored, 8,192 active" in text
    repeated = explain(paramsym.parse("input(8x16) > (dense(->16, bias)) * L"))
    assert "256 + 16 = 272 parameters" in repeated and "Repeated L times" in repeated
    assert "In all: 272*L parameters." in repeated
