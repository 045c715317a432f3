"""`rest`, `rest(N)` (docs/language.md, Layers): a sequence without its first N positions, one module,
paramsym/kinds/rest.py, checked here against PyTorch's x[:, N:] and timm's ViTs that average their tokens without
the class token and registers (x[:, num_prefix_tokens:].mean(1)), through export and import."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import paramsym
from helpers.imported import ours, torch_truth
from helpers.round_trip import import_back, input_dims


class _Prefixed(nn.Module):
    """A sequence (N, d, T: paramsym's layout of a sequence input) read as (N, T, d), with `prefix` learned tokens
    before it, then x[:, start:] averaged: timm's global_pool_nlc without what the model puts first."""

    def __init__(self, d: int, prefix: int, start: int):
        super().__init__()
        self.tokens = nn.Parameter(torch.zeros(1, prefix, d)) if prefix else None
        self.start = start
        self.head = nn.Linear(d, 3)

    def forward(self, x):
        x = x.transpose(1, 2)
        if self.tokens is not None:
            x = torch.cat([self.tokens.expand(x.shape[0], -1, -1), x], dim=1)
        return self.head(x[:, self.start :].mean(dim=1))


# (program, output channels last, params)
PROGRAMS = [
    ("input(197x768) > rest > gap", (768,), 0),
    ("input(201x64) > rest(5) > gap > dense(->10, bias)", (10,), 650),
    ("input(10x8) > rest(9)", (1, 8), 0),
    ("input(14x14x3) > conv7x7(->16, stride=7) > tokens > cls > rest", (4, 16), 3 * 49 * 16 + 16),
]


@pytest.mark.parametrize("program, out, params", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_counts(program, out, params):
    net = paramsym.parse(program)
    assert tuple(int(d) for d in net.output_shape.dims()) == out
    assert net.evaluate()["params"] == params
    (rest,) = [layer for layer in net.layers if layer.kind.key == "rest"]
    assert (rest.params, rest.macs, rest.fan_in, rest.state) == (0, 0, 1, 0)


def test_symbolic_length_and_count():
    net = paramsym.parse("input(T x d) > rest(N)")
    assert [str(d) for d in net.output_shape.dims()] == ["-N + T", "d"]
    with pytest.raises(paramsym.ParamsymError, match="none would be left"):
        net.evaluate(T=4, N=4, d=2)
    assert [int(net.value(d, T=5, N=4, d=2)) for d in net.output_shape.dims()] == [1, 2]


@pytest.mark.parametrize(
    "program, words",
    [
        ("input(8x8x3) > rest", "rest leaves out the first positions of a sequence (T x d), but its input is the map"),
        ("input(16) > rest", "but its input is the vector"),
        ("input(8x4) > rest(0)", "a positive whole number of them"),
        ("input(8x4) > rest(1.5)", "a positive whole number of them"),
        ("input(8x4) > rest(8)", "leaves out 8 of the 8 positions of the sequence: none would be left"),
        ("input(8x4) > rest(2x2)", "rest takes one number of positions, not 2x2"),
        ("input(8x4) > rest(1, 2)", "rest"),
        ("input(8x4) > rest(k=2)", "unknown keyword 'k' for rest"),
    ],
)
def test_mistakes(program, words):
    with pytest.raises(paramsym.ParamsymError, match=words.replace("(", r"\(").replace(")", r"\)")):
        paramsym.parse(program)


@pytest.mark.parametrize("skipped", [1, 3])
def test_export_computes_x_without_its_first_positions_and_imports_back(skipped):
    net = paramsym.parse(f"input(7x5) > rest({skipped}) > dense(->4, bias)")
    module = paramsym.to_torch(net).eval()
    x = torch.randn(2, 5, 7)  # the export's sequence is (N, d, T)
    (rest,) = [m for m in module.modules() if type(m).__name__ == "Rest"]
    assert torch.equal(rest(x), x[..., skipped:])
    text, back = import_back(net)
    assert ("rest" if skipped == 1 else f"rest({skipped})") in text
    assert back.evaluate() == net.evaluate()


# PyTorch modules that slice the sequence, at several sizes: (module, input shape, what the import writes)
MODULES = [
    (_Prefixed(32, 1, 1), (16, 32), "rest\n"),
    (_Prefixed(24, 0, 4), (9, 24), "rest(4)"),
    (_Prefixed(48, 0, 0), (12, 48), None),  # x[:, 0:]: every position, the value itself
]


@pytest.mark.parametrize("module, shape, written", MODULES, ids=["cls", "four", "none"])
def test_import_of_a_slice_of_positions(module, shape, written):
    text, counts = ours(module, shape)
    truth = torch_truth(module, shape)
    assert (counts["params"], counts["state"], counts["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counts["out"] == truth["out"]
    if written is None:
        assert "rest" not in text
    else:
        assert written in text + "\n"


def _vit(width: int, depth: int, **kwargs) -> nn.Module:
    return timm.models.vision_transformer.VisionTransformer(
        img_size=32,
        patch_size=8,
        embed_dim=width,
        depth=depth,
        num_heads=4,
        num_classes=10,
        global_pool="avg",
        **kwargs,
    )


def _eva(width: int, depth: int) -> nn.Module:
    return timm.models.eva.Eva(
        img_size=32,
        patch_size=8,
        embed_dim=width,
        depth=depth,
        num_heads=4,
        num_classes=10,
        global_pool="avg",
        qkv_bias=False,
    )


@pytest.mark.parametrize(
    "build, written",
    [
        (_vit, "rest\n"),  # x[:, 1:]
        (lambda w, d: _vit(w, d, class_token=False, no_embed_class=True), None),  # x[:, 0:]
        (_eva, "rest\n"),
    ],
    ids=["vit_cls", "vit_no_prefix", "eva_cls"],
)
@pytest.mark.parametrize("width, depth", [(64, 1), (96, 2)])
def test_timm_models_that_average_their_tokens(build, written, width, depth):
    with torch.device("meta"):
        model = build(width, depth).eval()
    text, counts = ours(model, (32, 32, 3))
    truth = torch_truth(model, (32, 32, 3))
    assert (counts["params"], counts["state"], counts["macs"]) == (truth["params"], truth["state"], truth["macs"])
    assert counts["out"] == truth["out"]
    assert ("rest" not in text) if written is None else (written in text + "\n")


def test_a_slice_that_does_not_run_to_the_end_is_refused():
    class Middle(nn.Module):
        def forward(self, x):
            return x.transpose(1, 2)[:, 1:3].mean(1)  # the positions 1 and 2 of (N, T, d)

    with pytest.raises(paramsym.ParamsymError, match=r"x\[:, 1:3\]"):
        paramsym.from_torch(Middle(), (6, 4))


def test_input_dims_helper_matches_the_program():
    assert input_dims(paramsym.parse("input(7x5) > rest")) == [7, 5]
