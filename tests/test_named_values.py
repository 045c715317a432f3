"""Named values (docs/language.md "Named values"): `STAGE as NAME` and `@NAME`. Each program is counted, exported
to PyTorch (a module and its source) and compared with torch's own counts (parameters, BatchNorm state, output
shape, FlopCounterMode MACs); the export imports back to a program that counts the same; models whose values are
read out of turn (an HRNet-like fuse, a NASNet-like cell) import with named values and count as torch does."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import paramsym  # noqa: E402
from helpers.import_check import differences, program_counts, torch_counts  # noqa: E402
from paramsym.errors import ParamsymError  # noqa: E402
from paramsym.frameworks.export import to_torch, torch_source  # noqa: E402


def _fuse(c: int) -> str:
    return (
        f"conv3x3(->{c}, pad=1) > bn > relu as hi > conv3x3(->{2 * c}, stride=2, pad=1) > bn > relu as lo"
        f" > add(@hi | @lo > conv1x1(->{c}) > bn > upsample(2)) > relu as hi2"
        f" > add(@hi > conv3x3(->{2 * c}, stride=2, pad=1) > bn | @lo) > relu as lo2"
        f" > concat(@hi2 | @lo2 > upsample(2))"
    )


PROGRAMS = [
    ("fuse, 16 channels", "input(32x32x16) > " + _fuse(16), (12_224, 192, (32, 32, 48), 4_849_664)),
    ("fuse, 8 channels", "input(16x16x3) > " + _fuse(8), None),
    ("fuse, 24 channels", "input(24x24x8) > " + _fuse(24), None),
    (
        "concat of a value and layers from it",
        "input(16x16x8) > (conv1x1(->8) > relu) as c1 > conv3x3(->8, pad=1) as c2"
        " > concat(@c1 | id | @c2 > conv1x1(->8))",
        (704, 0, (16, 16, 24), 180_224),
    ),
    (
        "a block's value, and a merge named in parentheses",
        "def unit(c) = conv3x3(->c, pad=1) > bn > relu; input(16x16x4) > (unit(8)) as u > (res(conv1x1(->8))) as r"
        " > mul(@u | @r > gap > dense(->8) > sigmoid)",
        None,
    ),
]


@pytest.mark.parametrize("label, program, expected", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_counts_and_export_match_torch(label, program, expected):
    ours = program_counts(program)
    if expected is not None:
        assert ours == expected
    network = paramsym.parse(program)
    shape = tuple(int(network.value(d)) for d in network.input_shape.dims())
    module = to_torch(network)
    theirs = torch_counts(module, shape)
    assert differences(ours, theirs) == []
    assert ours[3] == theirs.macs
    namespace: dict = {}
    exec(torch_source(network), namespace)  # the source builds the same module
    written = namespace["build_model"]()
    assert differences(ours, torch_counts(written, shape)) == []
    # and the export imports back to a program that counts the same
    assert program_counts(paramsym.from_torch(module, shape)) == ours


def test_export_computes_the_graph():
    network = paramsym.parse("input(4x4x2) > conv1x1(->2) as a > relu > add(@a | id) > concat(@a | id)")
    module = to_torch(network)
    conv = module[0].module
    x = torch.randn(1, 2, 4, 4)
    a = conv(x)
    assert torch.equal(module(x), torch.cat([a, a + torch.relu(a)], dim=1))


class _TwoResolutions(nn.Module):
    """HRNet's fuse: each output sums every resolution brought to its own."""

    def __init__(self, c: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(c, 2 * c, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU())
        self.up = nn.Sequential(nn.Conv2d(2 * c, c, 1, bias=False), nn.BatchNorm2d(c), nn.Upsample(scale_factor=2))
        self.across = nn.Sequential(nn.Conv2d(c, 2 * c, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * c))
        self.head = nn.Conv2d(3 * c, 10, 1)

    def forward(self, x):
        hi = self.stem(x)
        lo = self.down(hi)
        hi2 = torch.relu(hi + self.up(lo))
        lo2 = torch.relu(self.across(hi) + lo)
        return self.head(torch.cat([hi2, nn.functional.interpolate(lo2, scale_factor=2.0)], dim=1))


class _Cell(nn.Module):
    """NASNet's cells read the two cells before them."""

    def __init__(self, c: int):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.cell1 = nn.Conv2d(c, c, 3, padding=1)
        self.cell2a = nn.Conv2d(c, c, 1)
        self.cell2b = nn.Conv2d(c, c, 3, padding=1)
        self.cell3a = nn.Conv2d(c, c, 1)
        self.cell3b = nn.Conv2d(2 * c, c, 1)

    def forward(self, x):
        prev = self.stem(x)
        cur = torch.relu(self.cell1(prev))
        nxt = torch.cat([self.cell2a(prev), self.cell2b(cur)], dim=1)
        return torch.cat([self.cell3a(cur), self.cell3b(nxt)], dim=1)


@pytest.mark.parametrize("model", [_TwoResolutions, _Cell])
@pytest.mark.parametrize("c, size", [(4, 8), (8, 16), (16, 12)])
def test_import_writes_named_values(model, c, size):
    module = model(c).eval()
    shape = (size, size, 3)
    text = paramsym.from_torch(module, shape)
    if model is _TwoResolutions:  # the cell's values nest, or are carried together as channels
        assert "@v1" in text
    ours = program_counts(text)
    theirs = torch_counts(module, shape)
    assert differences(ours, theirs) == []
    assert ours[3] == theirs.macs


@pytest.mark.parametrize(
    "program, message",
    [
        ("input(8x8x4) > relu > add(id | @b)", "no value named 'b' is computed before it"),
        ("input(8x8x4) > relu as a > add(id | @aa)", "did you mean '@a'?"),
        ("input(8x8x4) > relu as a > gelu as a", "'a' names two"),
        ("input(8x8x4) > (relu as a) * 2", "'a' names two"),
        ("input(8x8x4) > @a > relu as a", "no value named 'a'"),
    ],
)
def test_refusals(program, message):
    with pytest.raises(ParamsymError) as error:
        paramsym.parse(program).evaluate()
    assert message in str(error.value) + str(getattr(error.value, "hint", ""))


def test_names_are_not_reserved():
    # `@` marks a read: a value may take any name, and blocks and symbols keep theirs
    program = "def keep = relu; def fetch = gelu; input(8x8x4) > keep > (fetch) as pool > res(@pool)"
    assert paramsym.parse(program).evaluate()["params"] == 0


def test_keras_refuses_named_values():
    from paramsym.frameworks.keras_export import keras_source

    network = paramsym.parse("input(8x8x4) > conv1x1(->4) as a > relu > res(@a)")
    with pytest.raises(ParamsymError, match="has no Keras equivalent"):
        keras_source(network)
