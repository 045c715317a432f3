"""The Python API as a library user meets it: each wrong argument raises one ParamsymError subclass
with a clear message (never a TypeError or AttributeError from inside), whole numbers of any integer type
are accepted where a whole number is asked for, and the answers stay exact ints."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy

import paramsym

PROGRAM = "input(8x8x3) > conv3x3(->C) > conv3x3(->D)"
NET = paramsym.parse(PROGRAM)
BOUND = NET.with_values(D=8)


# (call, error class, text the message holds)
REFUSED = [
    ("parse dtype int", lambda: paramsym.parse(PROGRAM, dtype=3), paramsym.ParamsymUsageError, "not 3"),
    ("value of a str", lambda: NET.value("params", C=4, D=5), paramsym.ParamsymUsageError, "not a str"),
    ("value of a float", lambda: NET.value(3.5), paramsym.ParamsymUsageError, "not a float"),
    ("str as a value", lambda: NET.with_values(C="4"), paramsym.ParamsymUsageError, "not '4'"),
    ("bool as a value", lambda: NET.with_values(C=True), paramsym.ParamsymUsageError, "not True"),
    ("solve a str", lambda: paramsym.solve(PROGRAM, "C", 1000), paramsym.ParamsymUsageError, "solve takes a Network"),
    ("solve None", lambda: paramsym.solve(None, "C", 1000), paramsym.ParamsymUsageError, "not a NoneType"),
    ("solve budget True", lambda: paramsym.solve(BOUND, "C", True), paramsym.ParamsymUsageError, "not True"),
    ("solve budget 1000.0", lambda: paramsym.solve(BOUND, "C", 1000.0), paramsym.ParamsymUsageError, "not 1000.0"),
    ("sweep a str", lambda: paramsym.sweep(PROGRAM, {"C": [1]}), paramsym.ParamsymUsageError, "sweep takes a Network"),
    ("marginal a str", lambda: paramsym.marginal(PROGRAM, "C"), paramsym.ParamsymUsageError, "marginal takes"),
    ("per_layer a str", lambda: paramsym.per_layer(PROGRAM), paramsym.ParamsymUsageError, "per_layer takes"),
    ("generic a str", lambda: paramsym.generic(PROGRAM), paramsym.ParamsymUsageError, "generic takes"),
    ("latex a str", lambda: paramsym.latex(PROGRAM), paramsym.ParamsymUsageError, "latex takes"),
    ("latex None", lambda: paramsym.latex(None), paramsym.ParamsymUsageError, "not a NoneType"),
    ("torch_source a str", lambda: paramsym.torch_source(PROGRAM), paramsym.ParamsymUsageError, "export takes"),
    ("keras_source a str", lambda: paramsym.keras_source(PROGRAM), paramsym.ParamsymUsageError, "export takes"),
    ("to_torch a str", lambda: paramsym.to_torch(PROGRAM), paramsym.ParamsymUsageError, "export takes"),
    ("latex names int", lambda: paramsym.latex(NET, names={"C": 3}), paramsym.ParamsymUsageError, "names is a dict"),
    ("latex names list", lambda: paramsym.latex(NET, names=["C"]), paramsym.ParamsymUsageError, "not ['C']"),
    ("view of a str", lambda: paramsym.view("C*D", "expanded"), paramsym.ParamsymUsageError, "not a str"),
    ("view of None", lambda: paramsym.view(None, "factored"), paramsym.ParamsymUsageError, "not a NoneType"),
    (
        "collected without network",
        lambda: paramsym.view(NET.params, "collected", by="C"),
        paramsym.ParamsymUsageError,
        "needs network=",
    ),
    (
        "example_input batch 1.5",
        lambda: paramsym.example_input(BOUND, batch=1.5, C=4),
        paramsym.ParamsymUsageError,
        "batch size",
    ),
    (
        "example_input batch None",
        lambda: paramsym.example_input(BOUND, batch=None, C=4),
        paramsym.ParamsymUsageError,
        "not None",
    ),
    (
        "example_input batch 0",
        lambda: paramsym.example_input(BOUND, batch=0, C=4),
        paramsym.ParamsymUsageError,
        "not 0",
    ),
]


@pytest.mark.parametrize("call, error, text", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_wrong_arguments_raise_one_paramsym_error(call, error, text):
    with pytest.raises(paramsym.ParamsymError) as info:
        call()
    assert type(info.value) is error
    assert text in str(info.value)


def test_a_str_program_gets_the_hint_to_parse_it():
    with pytest.raises(paramsym.ParamsymUsageError) as info:
        paramsym.solve(PROGRAM, "C", 1000)
    assert info.value.hint == "read a program with paramsym.parse(text)"


# whole numbers of other integer types: the same answer as the int
WHOLE = [np.int64(4), np.int32(4), sympy.Integer(4), Fraction(8, 2)]


@pytest.mark.parametrize("number", WHOLE, ids=lambda n: type(n).__name__)
def test_whole_numbers_of_any_integer_type_are_values(number):
    params = NET.with_values(C=number, D=5).evaluate()["params"]
    assert params == NET.with_values(C=4, D=5).evaluate()["params"] == 9 * 4 * 5 + 27 * 4
    assert type(params) is int


@pytest.mark.parametrize("number", [np.int64(1000), sympy.Integer(1000)], ids=lambda n: type(n).__name__)
def test_solve_takes_a_budget_of_any_integer_type(number):
    solution = paramsym.solve(BOUND, "C", number)
    assert solution == paramsym.solve(BOUND, "C", 1000)
    assert (solution.value, solution.total_at_value, solution.budget) == (10, 990, 1000)
    assert type(solution.budget) is int


def test_solve_and_marginal_take_the_symbol_itself():
    assert paramsym.solve(BOUND, BOUND.symbols["C"], 1000).value == paramsym.solve(BOUND, "C", 1000).value == 10
    by_symbol, by_name = paramsym.marginal(NET, NET.symbols["C"]), paramsym.marginal(NET, "C")
    assert by_symbol == by_name and by_name.derivative == 9 * NET.symbols["D"] + 27


def test_value_of_an_int_is_the_int():
    assert NET.value(7) == 7 and type(NET.value(7)) is int
    assert NET.value(None) is None


def test_to_keras_without_its_backend_is_a_usage_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_keras(name, *args, **kwargs):
        if name == "keras":
            raise ModuleNotFoundError("No module named 'tensorflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_keras)
    with pytest.raises(paramsym.ParamsymUsageError) as info:
        paramsym.to_keras(BOUND, C=4)
    assert "No module named 'tensorflow'" in str(info.value)
    assert "keras_source" in info.value.hint


def test_a_layer_shows_itself_in_one_short_line():
    from helpers.doc_examples import ROOT

    net = paramsym.parse((ROOT / "examples" / "resnet18.psym").read_text())
    shown = [repr(lc) for lc in net.layers]
    assert all(len(text) < 160 and "\n" not in text for text in shown), max(shown, key=len)
    assert (
        shown[0] == "<LayerCount 0 stem(64).conv7x7 (line 3, column 15): 112 x 112 x 64, params 9408>"
    )  # torchvision conv1: 7*7*3*64
    assert len(repr(net.layers)) < 160 * len(net.layers)  # was about 700 characters a layer


def test_a_sweep_shows_its_size_and_columns_not_its_arrays():
    result = paramsym.sweep(BOUND, {"C": list(range(1, 301))}, budget=2000)
    assert repr(result) == "<Sweep: 300 points of C; columns params, macs, flops, memory; 20 with params <= 2,000>"
    # the 20: 27*C + 9*C*8 = 99*C <= 2000
    assert sum(row["within"] for row in result.rows()) == 2000 // 99 == 20


def test_view_never_runs_a_str_as_python(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(paramsym.ParamsymUsageError):
        paramsym.view(f"__import__('pathlib').Path({str(marker)!r}).touch()", "expanded")
    assert not marker.exists()


def test_view_of_a_formula():
    C, D = NET.symbols["C"], NET.symbols["D"]
    assert paramsym.view(NET.params, "factored") == 9 * C * (D + 3)
    assert paramsym.view(NET.params, "collected", by="C", network=NET) == C * (9 * D + 27)
    assert paramsym.view(7, "expanded") == 7


def test_a_network_survives_deepcopy_and_pickle():
    import copy
    import pickle

    from helpers.doc_examples import ROOT

    net = paramsym.parse((ROOT / "examples" / "resnet18_symbolic.psym").read_text())
    copied = copy.deepcopy(net)  # was a RecursionError in Counts.__getattr__
    assert copied.value(copied.params) == net.value(net.params) == 11_689_512  # torchvision resnet18 at C = 64
    back = pickle.loads(pickle.dumps(NET))
    assert back.evaluate(C=4, D=5) == NET.evaluate(C=4, D=5)
    assert back.layers[1].params == NET.layers[1].params


def test_every_kind_pickles_as_itself():
    import pickle

    from paramsym.kinds import KINDS

    for kind in KINDS:  # activations hold lambdas: pickled by key, found again in the registry
        assert pickle.loads(pickle.dumps(kind)) is kind


@pytest.mark.parametrize(
    "program",
    [
        "input(8x8x3) > conv3x3(->C) > relu > dropout(0.5) > gap > dense(->10) > softmax",
        "input(T) > embed(V->d) > attn(heads=4) > rmsnorm > dense(->4d) > gelu > dense(->d)",
    ],
)
def test_a_network_with_activations_pickles(program):
    import pickle

    net = paramsym.parse(program)
    back = pickle.loads(pickle.dumps(net))
    assert [layer.kind for layer in back.layers] == [layer.kind for layer in net.layers]
    assert str(back.params) == str(net.params)


# (model, input shape, text the message holds): from_torch's own arguments, refused before anything runs
FROM_TORCH_REFUSED = [
    ("no model", None, (8, 8, 3), "takes a PyTorch model (a torch.nn.Module), not NoneType"),
    ("a str as the model", "resnet18", (8, 8, 3), "not str"),
    ("no shape", "linear", None, "not None"),
    ("a negative size", "linear", (-3,), "not (-3,)"),
    ("a fractional size", "linear", (3.5,), "not (3.5,)"),
    ("a zero size", "linear", (0, 8, 3), "not (0, 8, 3)"),
    ("an empty shape", "linear", (), "not ()"),
    ("a bool", "linear", True, "not True"),
    ("a shape as text with a zero", "linear", "0x8x3", "--input takes positive sizes such as 224x224x3, not '0x8x3'"),
]


@pytest.mark.parametrize(
    "model, shape, text", [c[1:] for c in FROM_TORCH_REFUSED], ids=[c[0] for c in FROM_TORCH_REFUSED]
)
def test_from_torch_refuses_wrong_arguments_with_one_usage_error(model, shape, text):
    torch = pytest.importorskip("torch")
    if model == "linear":
        model = torch.nn.Linear(3, 4)
    with pytest.raises(paramsym.ParamsymUsageError, match=text.replace("(", r"\(").replace(")", r"\)")):
        paramsym.from_torch(model, shape)


def test_from_torch_takes_sizes_of_any_integer_type():
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 2))
    expected = paramsym.from_torch(model, (8, 8, 3))
    assert paramsym.from_torch(model, (np.int64(8), 8, np.int32(3))) == expected
    assert paramsym.from_torch(model, torch.Size([8, 8, 3])) == expected == paramsym.from_torch(model, "8x8x3")
