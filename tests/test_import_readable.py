"""Imported programs stay readable (issue 11): `paramsym import` writes the blocks that recur as `def`
blocks and runs as `(SEQ) * n` (paramsym.frameworks.factor), and the factored program counts exactly what the
flat one counts: every total (parameters, state, MACs, memory, ...) and the output shape."""

from __future__ import annotations

import re
import warnings

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

import paramsym
from helpers.strategies import programs
from paramsym.frameworks import factor

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torch import nn  # noqa: E402

from helpers import import_coverage  # noqa: E402


def counts(text: str) -> tuple:
    """Every total of the program (formulas) and its output shape."""
    return factor._counts(paramsym.parse(text))


def lines(text: str) -> int:
    return text.count("\n")


def oneline(text: str) -> str:
    """The program with its line breaks and indentation as single spaces: what it says, not its layout."""
    return " ".join(text.split())


def defined(text: str) -> list[str]:
    return re.findall(r"^def ([a-z0-9_]+)", text, flags=re.M)


# ---- torchvision: (model, at most this many lines of at most 79 columns, the blocks it defines) ----------

CASES = [
    ("resnet18", 20, ["basicblock", "basicblock2"]),
    ("resnet50", 25, ["bottleneck", "bottleneck2"]),
    ("resnext50_32x4d", 25, ["bottleneck", "bottleneck2"]),
    ("mobilenet_v2", 25, ["invertedresidual", "invertedresidual2"]),
    ("efficientnet_b0", 51, ["mbconv", "mbconv2", "mbconv3", "mbconv4"]),
    ("densenet121", 40, ["denselayer", "transition"]),
    ("shufflenet_v2_x1_0", 26, ["invertedresidual", "invertedresidual2"]),
    ("squeezenet1_0", 20, ["fire"]),
    ("googlenet", 31, ["inception", "inceptionaux"]),
    ("inception_v3", 51, ["basicconv2d", "inceptiona", "basicconv2d2", "inceptionc", "inceptione"]),
    ("regnet_y_400mf", 26, ["resbottleneckblock", "resbottleneckblock2"]),
    ("vgg16", 12, []),
]


@pytest.fixture(scope="module")
def imported():
    """name -> (flat, factored), each model built once on the meta device and imported both ways."""
    found = {}
    for name, _, _ in CASES:
        with import_coverage.on_meta(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torchvision.models.get_model(name, weights=None)
        shape = import_coverage.input_shape(name)
        found[name] = (paramsym.from_torch(model, shape, flat=True), paramsym.from_torch(model, shape))
    return found


@pytest.mark.parametrize("name,most,names", CASES, ids=[c[0] for c in CASES])
def test_torchvision_models_import_as_blocks(imported, name, most, names):
    flat, text = imported[name]
    assert lines(text) <= most, text
    assert lines(text) <= lines(factor.fitted(flat))  # the flat program in lines of 80 columns
    assert defined(text) == names, text
    assert counts(text) == counts(flat)
    assert text.startswith("def ") or "def " not in text  # the blocks come first


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_the_factored_program_round_trips(imported, name):
    """It parses; unrolled again (blocks inlined, repeats written out) it counts what the flat one does,
    and factoring that gives the same program."""
    flat, text = imported[name]
    unrolled = factor.flatten(text)
    assert "def " not in unrolled and ") * " not in unrolled
    assert counts(unrolled) == counts(flat) == counts(text)
    assert lines(unrolled) == lines(factor.flatten(flat))


def test_resnet50_reads_like_the_paper(imported):
    text = imported["resnet50"][1]
    said = oneline(text)
    assert "def bottleneck(c, s) = res(conv1x1(->c/4) > bn > relu > conv3x3(->c/4, stride=s, pad=1)" in said
    for stage in (
        "bottleneck(256, 1)\n  > (bottleneck2(256)) * 2",
        "bottleneck(512, 2)\n  > (bottleneck2(512)) * 3",
        "bottleneck(1024, 2)\n  > (bottleneck2(1024)) * 5",
        "bottleneck(2048, 2)\n  > (bottleneck2(2048)) * 2",
    ):
        assert stage in text


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_lines_fit_an_80_column_terminal(imported, name):
    text = imported[name][1]
    assert max(len(line) for line in text.splitlines()) < 80, text


def test_densenet_writes_its_dense_layers_as_runs(imported):
    text = imported["densenet121"][1]
    assert "def denselayer = concat(id | bn > relu > conv1x1(->128) > bn > relu > conv3x3(->32, pad=1))" in oneline(
        text
    )
    assert [int(n) for n in re.findall(r"\(denselayer\) \* (\d+)", text)] == [6, 12, 24, 16]


def test_parameters_say_what_they_are(imported):
    text = imported["mobilenet_v2"][1]
    # a depthwise convolution's groups are its channels; the expansion is 6c
    assert (
        "def invertedresidual(mid, c, s) = conv1x1(->mid) > bn > relu6 > conv3x3(->mid, stride=s, pad=1, "
        "groups=mid)" in oneline(text)
    )
    assert "def invertedresidual2(c) = res(conv1x1(->6c)" in oneline(text)


def test_flat_is_one_stage_after_another(imported):
    flat, text = imported["resnet18"]
    assert "def " not in flat and ") * " not in flat
    assert all(line.startswith("  > ") for line in flat.splitlines()[1:])
    assert "conv3x3(64->64, pad=1)" in flat and "conv3x3(->c, pad=1)" in text


# ---- models of our own: names from their classes, and nothing made up where nothing recurs -------------


class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Widen(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.skip = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)) + self.skip(x))


def _net(widths):
    layers = [Stem()]
    cin = 16
    for width in widths:
        layers.append(Widen(cin, width, 2 if width != cin else 1))
        cin = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


def test_a_blocks_name_is_its_module_class():
    model = _net([32, 32, 32, 64, 64])
    text = paramsym.from_torch(model, (32, 32, 3))
    assert defined(text) == ["widen"], text
    assert "def widen(c, s) = res(conv3x3(->c, stride=s, pad=1) > bn | conv1x1(->c, stride=s)) > relu" in oneline(text)
    assert "> widen(32, 2)\n  > (widen(32, 1)) * 2\n  > widen(64, 2)\n  > widen(64, 1)\n" in text
    assert counts(text) == counts(paramsym.from_torch(model, (32, 32, 3), flat=True))
    assert paramsym.parse(text).params == sum(p.numel() for p in model.parameters())


def test_nothing_recurs_nothing_changes():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    assert paramsym.from_torch(model, (8, 8, 3)) == paramsym.from_torch(model, (8, 8, 3), flat=True)


def test_the_cli_writes_blocks_and_flat_on_request():
    from helpers.cli_helpers import run

    factored = run("import", "torchvision.models:resnet18", "--input", "224x224x3", timeout=120)
    flat = run("import", "torchvision.models:resnet18", "--input", "224x224x3", "--flat", timeout=120)
    assert factored.returncode == flat.returncode == 0, factored.stderr + flat.stderr
    assert defined(factored.stdout) == ["basicblock", "basicblock2"]
    assert "def " not in flat.stdout and lines(flat.stdout) == 24
    assert counts(factored.stdout) == counts(flat.stdout)


# ---- properties: factoring never changes a count -----------------------------------------------------------


@st.composite
def blocky(draw):
    """A program that uses one block several times with different widths and strides, with a stage between."""
    body = draw(
        st.sampled_from(
            [
                "res(conv3x3(->c, stride=s, pad=1) > bn > relu > conv3x3(->c, pad=1) > bn "
                "| conv1x1(->c, stride=s) > bn) > relu",
                "conv1x1(->2c) > bn > relu > dwconv3x3(stride=s, pad=1) > bn > relu > conv1x1(->c) > bn",
                "concat(conv1x1(->c, stride=s) > relu | conv3x3(->c, stride=s, pad=1) > relu)",
                "res(conv1x1(->c, stride=s) | conv3x3(->c, stride=s, pad=1) > gn(groups=1))",
                "conv3x3(->c, stride=s, pad=1) > bn > relu",
            ]
        )
    )
    calls, size = [], 32
    for _ in range(draw(st.integers(2, 6))):
        s = draw(st.sampled_from([1, 1, 2])) if size > 4 else 1
        size = (size + 1) // s if s == 2 else size
        calls.append(f"blk({draw(st.sampled_from([4, 8, 8, 12]))}, {s})")
        if draw(st.integers(0, 3)) == 0:
            calls.append(draw(st.sampled_from(["relu", "bn", "maxpool1x1"])))
    return (
        f"def blk(c, s) = {body}\ninput(32x32x3) > conv3x3(->8, pad=1) > "
        + " > ".join(calls)
        + " > gap > dense(->10, bias)"
    )


@given(blocky())
def test_factoring_a_flattened_program_keeps_every_count(text):
    flat = factor.flatten(text)
    assert counts(flat) == counts(text)
    result = factor.factored(paramsym.parse(flat))
    assert counts(result) == counts(text), result
    readable, fitted = factor.readable(flat), factor.fitted(flat)
    assert readable in (result, fitted) and lines(readable) <= lines(fitted)
    assert counts(fitted) == counts(text)
    assert max(len(line) for line in readable.splitlines()) <= 80, readable


@given(programs())
def test_factoring_any_program_keeps_every_count(text):
    """Programs of every layer kind (tests/helpers/strategies.py), with lets and symbolic repeats: flattened,
    then factored, they count what they did."""
    flat = factor.flatten(text)
    assert counts(flat) == counts(text)
    for source in (text, flat):
        result = factor.factored(paramsym.parse(source))
        assert counts(result) == counts(text), result


# ---- drop-path rates: written as the rate, not the float that computed it; a schedule as one ----------------

from paramsym.kinds.droppath import written  # noqa: E402

WRITTEN = [
    (0.2 * 12 / 16, "0.15"),  # EfficientNet's 0.15000000000000002
    (0.2 * 6 / 16, "0.075"),  # 0.07500000000000001
    (0.2 * 7 / 16, "0.0875"),  # 0.08750000000000001
    (0.1 * 1 / 17.0, "1/170"),  # ConvNeXt-T's first rate, 0.0058823529411764705
    (0.1 * 17 / 17.0, "0.1"),
    (0.5, "0.5"),
    (0.0, "0"),
    (0, "0"),
    (1.0, "1"),
    (1 / 3, "1/3"),
    (1 / 8192, "0.0001220703125"),
    (0.123456789123, "0.123456789123"),  # no fraction of a small denominator: 12 significant digits
    (1e-7, "1e-07"),
]


@pytest.mark.parametrize("p,text", WRITTEN, ids=[t for _, t in WRITTEN])
def test_a_drop_probability_is_written_as_its_rate(p, text):
    assert written(p) == text
    value = paramsym.parse(f"input(8x8x3) > droppath({text})").layers[-1].layer.options.value
    assert abs(float(value) - p) <= 1e-12 * abs(p)  # the float's rounding, no more


@pytest.mark.parametrize(
    "module,text",
    [
        (lambda: torchvision.ops.StochasticDepth(0.2 * 12 / 16, "row"), "droppath(0.15)"),
        (lambda: torchvision.ops.StochasticDepth(0.1 / 17, "row"), "droppath(1/170)"),
        (lambda: torchvision.ops.StochasticDepth(0.0, "row"), "droppath(0)"),
    ],
    ids=["0.15", "1/170", "0"],
)
def test_stochastic_depth_imports_with_its_rate(module, text):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), module())
    assert text in paramsym.from_torch(model, (8, 8, 3))


def rates(text: str) -> list:
    """The drop probability of every droppath layer, in the order they run."""
    return [lc.layer.options.value for lc in paramsym.parse(text).layers if lc.layer.name == "droppath"]


@pytest.mark.parametrize("name,blocks", [("convnext_tiny", 18), ("efficientnet_b0", 9)])
def test_a_linear_schedule_is_written_as_one(name, blocks):
    """torchvision gives block i of n the drop probability P * i / (n - 1) (ConvNeXt) or P * i / n (EfficientNet):
    the block takes i, its body writes the rate (`droppath(i/170)`), and every rate is the module's."""
    with import_coverage.on_meta(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.get_model(name, weights=None)
    text = paramsym.from_torch(model, (224, 224, 3))
    # the blocks that run their StochasticDepth (EfficientNet's without a shortcut have one, unused)
    wanted = [
        m.stochastic_depth.p
        for m in model.modules()
        if hasattr(m, "stochastic_depth") and getattr(m, "use_res_connect", True) and m.stochastic_depth.p > 0
    ]
    got = [r for r in rates(text) if r != 0]
    assert len(got) == len(wanted) == blocks - (name == "convnext_tiny")
    assert all(abs(float(r) - p) <= 1e-12 * p for r, p in zip(got, wanted)), (got, wanted)
    assert re.search(r"droppath\(i/(170|80)\)", text), text
    assert "0000000" not in text  # no float's rounding
    assert counts(text) == counts(paramsym.from_torch(model, (224, 224, 3), flat=True))


SCHEDULES = [
    # (the rates of four equal blocks, what the block's body writes, the calls)
    ((0.0, 0.025, 0.05, 0.075), "droppath(i/40)", ["blk(0)", "blk(1)", "blk(2)", "blk(3)"]),
    ((0.1, 0.2, 0.3, 0.4), "droppath(i/10)", ["blk(1)", "blk(2)", "blk(3)", "blk(4)"]),
    ((1 / 170, 2 / 170, 3 / 170, 17 / 170), "droppath(i/170)", ["blk(1)", "blk(2)", "blk(3)", "blk(17)"]),
    ((0.1, 0.1, 0.3, 0.3), "droppath(i/10)", ["(blk(1)) * 2", "(blk(3)) * 2"]),
    ((0.2, 0.2, 0.2, 0.2), "droppath(0.2)", ["(blk) * 4"]),  # nothing varies: no parameter, a run
    ((0.5, 0.123456789123, 0.5, 0.5), "droppath(p)", ["blk(0.5)", "blk(0.123456789123)", "(blk(0.5)) * 2"]),
]


@pytest.mark.parametrize("rates_,body,calls", SCHEDULES, ids=[s[1] + " " + str(len(s[2])) for s in SCHEDULES])
def test_blocks_that_differ_in_their_drop_rate(rates_, body, calls):
    """Blocks equal but for their drop probability become one block; a schedule of whole multiples of one step
    is written as the block's number i times that step; the rates of the factored program are the flat one's."""
    flat = "input(8x8x4)\n" + "".join(
        f"  > res(conv3x3(->4, pad=1) > bn > droppath({written(p)}))\n  > relu\n" for p in rates_
    )
    text = factor.readable(flat)
    said = oneline(text)
    block = re.search(r"def (\w+)", text)
    assert block, text
    said = said.replace(block.group(1), "blk")
    assert body in said, text
    for call in calls:
        assert call in said, text
    assert rates(text) == rates(flat)
    assert counts(text) == counts(flat)


# ---- lines of 80 columns: broken where the language lets a line continue -------------------------------------

LONG = (
    "input(32x32x8)\n"
    "  > conv3x3(8->8, pad=1)\n"
    "  > res(conv3x3(8->8, pad=1) > bn > relu > conv3x3(8->8, pad=1) > bn | conv1x1(8->8) > bn > relu > bn) > relu\n"
    "  > concat(conv1x1(8->8) > bn > relu | conv3x3(8->8, pad=1) > bn > relu > conv3x3(8->8, pad=1) > bn > relu "
    "| avgpool3x3(stride=1, pad=1) > conv1x1(8->4) > bn > relu)\n"
    "  > gap > dense(20->10, bias)\n"
)


def test_fitted_breaks_only_the_lines_too_long():
    text = factor.fitted(LONG)
    assert max(len(line) for line in text.splitlines()) <= 79, text
    kept = [line for line in LONG.splitlines() if len(line) <= 79]
    assert all(line in text.splitlines() for line in kept), text  # short lines as they were, `8->8` and all
    assert oneline(text).replace("( ", "(") == oneline(LONG)  # the same words in the same order
    assert counts(text) == counts(LONG)
    assert factor.fitted(text) == text  # a program that fits is left as it is


def test_a_composite_too_wide_hangs_its_branches():
    """Its branches one under the other after `concat(` where they fit; hung under it, four columns in, where
    they would break a layer between its arguments."""
    wide = (
        "input(32x32x8)\n  > concat(conv1x1(8->8) > bn > relu "
        "| conv3x3(8->8, k=3x3, stride=1x1, pad=1x1, dilation=1x1, groups=1, bias) > bn > relu)\n  > gap\n"
    )
    text = factor.fitted(wide)
    assert text == (
        "input(32x32x8)\n"
        "  > concat(\n"
        "        conv1x1(8->8) > bn > relu\n"
        "      | conv3x3(8->8, k=3x3, stride=1x1, pad=1x1, dilation=1x1, groups=1, bias)\n"
        "        > bn > relu)\n"
        "  > gap\n"
    ), text
    assert counts(text) == counts(wide)
    assert "  > concat(conv1x1(8->8) > bn > relu\n           | conv3x3(8->8, pad=1)" in factor.fitted(LONG)


def test_a_layer_too_long_for_its_line_is_broken_between_its_arguments():
    layer = factor.Layer(
        "conv3x3",
        (
            factor.Arg("->", values=(None, sympy.Integer(8))),
            *(factor.Arg("=", name, (sympy.Integer(1),)) for name in ("stride", "pad", "dilation", "groups")),
            factor.Arg("", values=(sympy.Symbol("bias"),)),
        ),
    )
    lines = factor._lay(layer, 60, 2, 79)
    assert len(lines) > 1 and factor._over(lines, 60) <= 79, lines
    assert " ".join(" ".join(lines).split()) == factor._inline(layer)


LAYOUT_LINES = [
    # (a line a layout reader writes, the lines it becomes)
    (
        "def block = res(ln > attn(heads=h, bias)) > res(ln > dense(->3072, bias) > gelu > dense(->d, bias))",
        ["def block = res(ln > attn(heads=h, bias))", "  > res(ln > dense(->3072, bias) > gelu > dense(->d, bias))"],
    ),
    (
        "input(224x224x3) > conv16x16(->d, stride=16, bias) > tokens > cls > posembed(197) > (block) * L > ln "
        "> first > dense(->1000, bias)",
        [
            "input(224x224x3) > conv16x16(->d, stride=16, bias) > tokens > cls",
            "  > posembed(197) > (block) * L > ln > first > dense(->1000, bias)",
        ],
    ),
    (  # a stage too long for a line of its own: broken inside its parentheses, the `)` counted
        "def shifted(d, h) = res(attn(heads=h, bias, window=8, cpb=512, pad, shift) > ln) "
        "> res(dense(->4*d, bias) > gelu > dense(->d, bias) > ln)",
        [
            "def shifted(d, h) = res(attn(heads=h, bias, window=8, cpb=512, pad, shift)",
            "                        > ln)",
            "  > res(dense(->4*d, bias) > gelu > dense(->d, bias) > ln)",
        ],
    ),
    (  # one call too long for a line: broken after a `, ` between its arguments, aligned with the first
        "def local = res(rmsnorm > attn(heads=h, kv_heads=g, head_dim=256, softcap=50, window=W, rope, causal) "
        "> rmsnorm) > ffn",
        [
            "def local = res(rmsnorm",
            "                > attn(heads=h, kv_heads=g, head_dim=256, softcap=50,",
            "                       window=W, rope, causal)",
            "                > rmsnorm) > ffn",
        ],
    ),
    ("# " + "a comment is left as it is " * 4, None),
    ("let V = 50257; let n = 1024; let d = 768; let L = 12; let h = 12; let x = 1; let y = 2", None),
    ("input(8) > dense(->4)", None),
]


@pytest.mark.parametrize("line,lines", LAYOUT_LINES, ids=[str(i) for i in range(len(LAYOUT_LINES))])
def test_layout_readers_break_their_long_lines_at_stages(line, lines):
    from paramsym.frameworks.hf_import import _fit

    assert _fit(line + "\n") == "\n".join(lines or [line]) + "\n"
