"""LANGUAGE.md section 4: residuals, branches, repetition and blocks, compared
with PyTorch modules wired the same way, plus paths, folding and errors."""

from __future__ import annotations

import re

import pytest
import sympy
from torch import nn

import paramsym
from helpers.cli_helpers import run
from helpers.frameworks import Branches, Residual, torch_params, torch_run, torch_state
from paramsym.language.syntax import symbol
from paramsym.render.explain import explain

SECTION_1 = """
# width of the first stage; a default that --set / solve may override
let C = 64
def block(c, s) = res(conv3x3(->c, stride=s, pad=1) > bn > relu
                      > conv3x3(->c, pad=1) > bn
                      | conv1x1(->c, stride=s) > bn) > relu
input(32x32x3) > conv3x3(->C, pad=1) > bn > relu
  > block(C, 1) > block(2C, 2) > block(4C, 2)
  > gap > dense(->10, bias)
"""


def torch_block(cin, c, s):
    return nn.Sequential(
        Residual(
            nn.Sequential(
                nn.Conv2d(cin, c, 3, s, 1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.Conv2d(c, c, 3, 1, 1, bias=False),
                nn.BatchNorm2d(c),
            ),
            nn.Sequential(nn.Conv2d(cin, c, 1, s, bias=False), nn.BatchNorm2d(c)),
        ),
        nn.ReLU(),
    )


def torch_section_1(C=64):
    return nn.Sequential(
        nn.Conv2d(3, C, 3, padding=1, bias=False),
        nn.BatchNorm2d(C),
        nn.ReLU(),
        torch_block(C, C, 1),
        torch_block(C, 2 * C, 2),
        torch_block(2 * C, 4 * C, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * C, 10),
    )


def basic_block():
    return nn.Sequential(
        Residual(
            nn.Sequential(
                nn.Conv2d(64, 64, 3, padding=1, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(),
                nn.Conv2d(64, 64, 3, padding=1, bias=False),
                nn.BatchNorm2d(64),
            )
        ),
        nn.ReLU(),
    )


CASES = [
    ("input(56x56x64) > res(conv3x3(->64, pad=1) > bn > relu > conv3x3(->64, pad=1) > bn) > relu", basic_block),
    (SECTION_1, torch_section_1),
    ("let C = 16\n" + SECTION_1.split("let C = 64\n")[1], lambda: torch_section_1(16)),
    (
        "input(8x8x16) > concat(conv1x1(->8) | conv3x3(->4, pad=1, bias) | id) > conv1x1(->5)",
        lambda: nn.Sequential(
            Branches("concat", nn.Conv2d(16, 8, 1, bias=False), nn.Conv2d(16, 4, 3, padding=1), nn.Identity()),
            nn.Conv2d(28, 5, 1, bias=False),
        ),
    ),
    (
        "input(9x9x6) > add(conv1x1(->6) | conv3x3(->6, pad=1) > bn | id | maxpool3x3(stride=1, pad=1))",
        lambda: Branches(
            "add",
            nn.Conv2d(6, 6, 1, bias=False),
            nn.Sequential(nn.Conv2d(6, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6)),
            nn.Identity(),
            nn.MaxPool2d(3, 1, 1),
        ),
    ),
    (
        "input(16x16x4) > (conv3x3(->8, pad=1, bias) > relu > maxpool2x2) * 3 > flatten > dense(->2)",
        lambda: nn.Sequential(
            nn.Conv2d(4, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32, 2, bias=False),
        ),
    ),
    (
        "def fire(s, e) = conv1x1(->s, bias) > relu > concat(conv1x1(->e, bias) > relu | conv3x3(->e, pad=1, bias)"
        " > relu)\ninput(13x13x96) > fire(16, 64) > fire(e=64, s=16) > fire(32, 128)",
        lambda: nn.Sequential(
            *[
                nn.Sequential(
                    nn.Conv2d(cin, s, 1),
                    nn.ReLU(),
                    Branches(
                        "concat",
                        nn.Sequential(nn.Conv2d(s, e, 1), nn.ReLU()),
                        nn.Sequential(nn.Conv2d(s, e, 3, padding=1), nn.ReLU()),
                    ),
                )
                for cin, s, e in ((96, 16, 64), (128, 16, 64), (128, 32, 128))
            ]
        ),
    ),
    (
        "def unit(c) = res(bn > relu > conv3x3(->c, pad=1))\ndef stage(c, n) = (unit(c)) * n\n"
        "input(8x8x12) > stage(12, 2) > stage(c=12, n=3)",
        lambda: nn.Sequential(
            *[
                Residual(nn.Sequential(nn.BatchNorm2d(12), nn.ReLU(), nn.Conv2d(12, 12, 3, padding=1, bias=False)))
                for _ in range(5)
            ]
        ),
    ),
]


@pytest.mark.parametrize("program, factory", CASES, ids=[c[0].strip().splitlines()[-1][:60] for c in CASES])
def test_composites_match_pytorch(program, factory):
    module = factory()
    network = paramsym.parse(program)
    values = network.evaluate()
    shape, macs = torch_run(module, [int(d) for d in network.input_shape.dims()], "cf")
    assert values["params"] == torch_params(module)
    assert values["state"] == torch_state(module)
    assert [int(d) for d in network.output_shape.dims()] == shape
    assert values["macs"] == macs


def test_section_5_residual_example():
    net = paramsym.parse(CASES[0][0])
    assert net.evaluate()["params"] == 73984


def test_symbolic_depth_stays_in_the_formula():
    L = symbol("L")
    net = paramsym.parse("input(8x8x16) > (conv3x3(->16, pad=1, bias) > relu) * L > gap > dense(->10)")
    assert sympy.expand(net.params - (2320 * L + 160)) == 0
    for depth in (1, 2, 7):
        unrolled = paramsym.parse(f"input(8x8x16) > (conv3x3(->16, pad=1, bias) > relu) * {depth} > gap > dense(->10)")
        assert net.evaluate(L=depth) == unrolled.evaluate()


def test_symbolic_resnet_width():
    C = symbol("C")
    net = paramsym.parse(SECTION_1)
    assert sympy.expand(net.params - (299 * C**2 + 111 * C + 10)) == 0
    assert net.evaluate(C=8)["params"] == torch_params(torch_section_1(8))


def test_paths_and_positions():
    net = paramsym.parse(SECTION_1)
    paths = [layer.path for layer in net.layers]
    assert paths[:4] == ["conv3x3", "bn", "relu", "block(C, 1).res.main.conv3x3"]
    assert "block(2*C, 2).res.shortcut.conv1x1" in paths
    shortcut = net.layers[paths.index("block(2*C, 2).res.shortcut.conv1x1")]
    assert (shortcut.pos.line, shortcut.pos.column) == (6, 25)
    repeated = paramsym.parse("def u(c) = conv1x1(->c)\ninput(4x4x2) > (u(2)) * 2 > (relu > id) * 2")
    assert [layer.path for layer in repeated.layers] == [
        "u(2)[1].conv1x1",
        "u(2)[2].conv1x1",
        "repeat[1].relu",
        "repeat[1].id",
        "repeat[2].relu",
        "repeat[2].id",
    ]


def test_receptive_field():
    # two 3x3 convolutions see 5x5; a stride-2 pool doubles the jump, the next 3x3 adds 2*2
    net = paramsym.parse(
        "input(32x32x3) > conv3x3(->8, pad=1) > conv3x3(->8, pad=1) > maxpool2x2"
        " > conv3x3(->8, pad=1) > res(conv3x3(->8, pad=1) > conv3x3(->8, pad=1) | conv1x1(->8))"
    )
    fields = [layer["receptive_field"] for layer in net.to_dict()["layers"]]
    assert [f["size"][0] for f in fields] == ["3", "5", "6", "10", "14", "18", "10"]
    assert [f["jump"][0] for f in fields] == ["1", "1", "2", "2", "2", "2", "2"]
    assert fields[0]["start"] == ["1/2", "1/2"]
    assert net.layers[-1].layer.field is not None


def test_activation_memory():
    net = paramsym.parse("input(8x8x3) > conv3x3(->4, pad=1) > relu", dtype="float16")
    data = net.to_dict()
    assert data["activations"]["value"] == 2 * 8 * 8 * 4
    assert data["activation_bytes"]["value"] == 2 * 8 * 8 * 4 * 2
    assert data["param_bytes"]["value"] == 108 * 2


ERRORS = [
    ("input(8x8x16) > res(conv3x3(->32, pad=1))", "res(...) must keep the shape of its input", 1, 21),
    ("input(8x8x16) > res(conv3x3(->16, stride=2, pad=1) | id)", "the shapes of its branches differ", 1, 54),
    ("input(8x8x16) > add(conv1x1(->4) | conv1x1(->8))", "this branch gives 8 x 8 x 8", 1, 36),
    ("input(8x8x16) > concat(conv1x1(->4) | maxpool2x2)", "spatial sizes of its branches differ", 1, 39),
    ("def a = b\ndef b = a\ninput(8) > a", "calls itself", 2, 9),
    ("def input = relu\ninput(8) > relu", "would shadow", 1, 5),
    ("def relu = bn > relu\ninput(8x8x4) > relu", "calls itself", 1, 17),
    ("def b(c) = dense(->c)\ninput(8) > b(cc=2)", "has no parameter 'cc'", 2, 14),
    ("def b(c, d) = dense(->c)\ninput(8) > b(2)", "needs a value for d", 2, 12),
    ("def b(c) = dense(->c)\ninput(8) > b(2, 3)", "takes 1 value(s), but 2 are given", 2, 17),
    ("def b(c) = dense(->c)\ninput(8) > b(8->2)", "takes values, not channels", 2, 14),
    ("input(8x8x4) > (conv3x3(->8, pad=1)) * L", "must keep its shape", 1, 16),
    ("input(8x8x4) > (relu) * 0", "positive whole number", 1, 16),
    ("def b = relu\ndef b = id\ninput(8) > b", "defined twice", 2, 5),
]


@pytest.mark.parametrize("program, words, line, column", ERRORS, ids=[e[0].splitlines()[-1] for e in ERRORS])
def test_composition_errors(program, words, line, column):
    with pytest.raises(paramsym.ParamsymError) as caught:
        paramsym.parse(program)
    assert words in str(caught.value)
    assert (caught.value.line, caught.value.column) == (line, column)


def test_branch_error_points_at_both_branches():
    with pytest.raises(paramsym.ParamsymShapeError) as caught:
        paramsym.parse("input(8x8x16) > add(conv1x1(->4)\n  | conv1x1(->8))")
    text = str(caught.value)
    assert "--> line 2, column 5" in text and "note: the first branch (line 1, column 21)" in text


def test_fold_gives_one_row_per_stage():
    from paramsym.render.printers import render_table

    text = render_table(paramsym.parse(SECTION_1), width=200, fold=True)
    assert "block(C, 1) (8 layers)" in text and "block(2*C, 2) (8 layers)" in text
    assert "res.main" not in text


# ---- a block may shadow a layer: inside the program its own def wins -------------------------------------

# (the shadowed layer name, the program): each counts as the same program with the block renamed
SHADOWING = [
    ("first", "def first(w, s) = conv3x3(->w, stride=s) > bn > relu\ninput(32x32x3) > first(16, 1) > first(32, 2)"),
    ("last", "def last = conv1x1(->8) > relu\ninput(8x8x4) > last > last"),
    ("dense", "def dense(c) = conv1x1(->c, bias) > relu\ninput(8x8x4) > dense(8) > dense(3)"),
    ("relu", "def relu = bn > gelu\ninput(8x8x4) > conv3x3(->4) > relu"),
    # inside another block, a composite and a repeat too
    ("relu", "def relu = bn > gelu\ndef unit = conv3x3(->4, pad=1) > relu\ninput(8x8x4) > res(unit) > (unit) * 2"),
    (
        "conv3x3",
        "def conv3x3(c) = conv1x1(->c) > dwconv3x3(pad=1)\ninput(8x8x4) > conv3x3(8) > concat(conv3x3(2) | id)",
    ),
]


def _facts(network, name: str) -> tuple:
    return (
        [
            (re.sub(rf"\b{name}\b", "BLOCK", layer.path), layer.kind.key)
            for layer in (lc.layer for lc in network.layers)
        ],
        [lc.counts for lc in network.layers],
        network.evaluate(),
        network.output_shape.dims(),
    )


@pytest.mark.parametrize("name, program", SHADOWING, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SHADOWING)])
def test_a_block_shadows_the_layer_of_its_name(name, program):
    # before: refused, "block 'first' would shadow the layer of that name" (version 2 added first and last)
    renamed = re.sub(rf"\b{name}\b(?!\s*\(->)", "BLOCK", program)  # the layer calls, conv3x3(->c), stay
    assert "BLOCK" in renamed
    shadowing, plain = paramsym.parse(program), paramsym.parse(renamed)
    assert _facts(shadowing, name) == _facts(plain, "BLOCK")
    # the name is called as a block: a segment of a layer's path, with the block's values, before another
    assert any(re.search(rf"\b{name}(\([^)]*\))?\.", lc.layer.path) for lc in shadowing.layers)


def test_explain_notes_the_shadowed_layer():
    program = SHADOWING[0][1]
    text = explain(paramsym.parse(program))
    assert "Block first (line 1, column 5) shadows the layer first: in this program, first means the block." in text
    assert "shadows" not in explain(paramsym.parse(program.replace("first", "block")))


def test_a_shadowing_block_through_the_command_line():
    program = SHADOWING[0][1].replace("\n", "; ")
    counted = run("count", program, "--format", "json")
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout == run("count", program.replace("first", "block"), "--format", "json").stdout.replace(
        "block", "first"
    )
    explained = run("explain", program)
    assert explained.returncode == 0 and "shadows the layer first" in explained.stdout


@pytest.mark.parametrize(
    "program, words",
    [
        # a typo of a block's name suggests the block (before: 'first', the closest layer name)
        ("def fire = relu\ninput(4) > fiire", "did you mean 'fire'?"),
        ("def first = relu\ninput(4) > frist", "did you mean 'first'?"),
        ("input(4) > frist", "did you mean 'first'?"),
        # `LAYER as NAME` still names only layers, and no block or layer name
        ("def first = dense(->4)\ninput(4) > first as wte", "'as wte' names one layer, but first is a block"),
        ("def stem = dense(->4)\ninput(4) > dense(->4) as stem", "is the name of a layer or block"),
        ("def first = dense(->4)\ninput(4) > dense(->4) as first", "is the name of a layer or block"),
    ],
)
def test_names_next_to_a_shadowing_block(program, words):
    with pytest.raises(paramsym.ParamsymError) as caught:
        paramsym.parse(program)
    assert words in str(caught.value)
