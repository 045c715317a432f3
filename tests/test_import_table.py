"""The importer reads a traced graph through one table (paramsym.frameworks.importer.OPERATIONS): what PyTorch
runs (a function, a tensor method's name, a module's class) -> the handler that reads it. The table is the
dispatch: every node goes through it, a new row changes what is imported without touching the importer, and a
node no row takes is refused as before."""

from __future__ import annotations

import inspect
import operator

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import paramsym
from paramsym import kinds
from paramsym.errors import ImportRefused
from paramsym.frameworks import importer


class Calls(nn.Module):
    """A convolution, then `then(y)`."""

    def __init__(self, then, act: nn.Module | None = None):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.then = then
        if act is not None:
            self.act = act

    def forward(self, x):
        return self.then(self, self.conv(x))


def _import(model) -> str:
    return paramsym.from_torch(model, (8, 8, 3), flat=True)


def test_every_row_is_keys_and_a_handler_of_converter_and_node():
    for keys, handler in importer.OPERATIONS:
        assert keys and callable(handler), handler
        assert list(inspect.signature(handler).parameters) == ["c", "node"], handler.__name__
    for keys, handler in importer._resolved(importer.OPERATIONS):
        # a dotted key names an object that exists: a typo would fail here, not become a row that never matches
        assert not any(isinstance(key, str) and "." in key for key in keys), handler.__name__


def test_dotted_keys_are_what_pytorch_runs():
    row_of = {}
    for keys, handler in importer._resolved(importer.OPERATIONS):
        for key in keys:
            row_of.setdefault(key, []).append(handler.__name__)
    # the class token after CaiT's class-attention blocks first (`_class_block`), then a parameter's
    assert row_of[torch.cat] == ["_class_block_joined", "_class_token", "_sequence_concat", "_concat"]
    assert row_of[F.pad] == ["_pad"]
    assert (
        row_of[operator.add]
        == row_of[torch.add]
        == [
            "_generated_addition",
            "_resized_position_table",
            "_position_table",
            "_map_position_table",
            "_last_map_position_table",
            "_sum",
        ]
    )
    # a block that takes the class token apart from the patches (CaiT's), a module that makes a table from sizes
    # alone (no tensor argument); an attention's output stays laid out as a map through dropout, drop path or
    # identity, then any module
    assert row_of[nn.Module] == ["_class_block", "_generated_table", "_layout_kept", "_module"]
    assert row_of[operator.getitem] == [
        "_broadcast_axes",
        "_token_select",
        "_whole_slice",
        "_token_rest",
        "_token_prefix",
        "_channel_slice",
        "_channel_index",
        "_module_item",
        "_first_of_tuple",
        "_max_values",
    ]


def test_every_function_a_kind_imports_is_a_key_of_the_table():
    """A kind registers the functions and methods it reads by declaring them (`torch_functions`)."""
    keys = {key for keys, _ in importer.OPERATIONS for key in keys}
    declared = {name for kind in kinds.KINDS for name in kind.torch_functions}
    assert declared and declared <= keys


def test_every_node_goes_through_the_table(monkeypatch):
    """A row for every node, first in the table, sees each node of the graph but the output; when it passes them
    on (False), the import is what it was."""
    model = Calls(lambda m, y: F.relu(y + y))
    before = _import(model)
    seen = []

    def watch(c, node):
        seen.append((node.op, importer._name(node)))
        return False

    monkeypatch.setattr(importer, "OPERATIONS", [((importer.ANY,), watch), *importer.OPERATIONS])
    assert _import(model) == before
    assert seen == [
        ("placeholder", None),
        ("call_module", None),
        ("call_function", "add"),
        ("call_function", "relu"),
    ]


def _exp_as_relu(c, node):
    """A stand-in reading for x.exp(): a layer with no parameters that keeps the shape, as exp does."""
    return c.layer(node, node.args[0], "relu")


@pytest.mark.parametrize(
    "then, refusal",
    [
        (lambda m, y: y.exp(), "x.exp(...) has no counterpart in the language"),
        (lambda m, y: torch.exp(y), "torch.exp(...) has no counterpart in the language"),
    ],
    ids=["method", "function"],
)
def test_a_new_row_imports_what_was_refused(monkeypatch, then, refusal):
    """Unknown operations are refused with the message they always had; one row (a key and a handler, outside
    importer.py) makes the same model import, end to end (the import checks itself against the model)."""
    model = Calls(then)
    with pytest.raises(ImportRefused) as refused:
        _import(model)
    assert str(refused.value) == f"usage error: {refusal}"
    key = "exp" if refusal.startswith("x.") else "torch.exp"
    monkeypatch.setattr(importer, "OPERATIONS", [*importer.OPERATIONS, ((key,), _exp_as_relu)])
    assert _import(model) == "input(8x8x3)\n  > conv3x3(3->4, pad=1, bias)\n  > relu\n"


def test_a_row_for_a_module_class_comes_before_the_kinds(monkeypatch):
    """Modules are keys by their classes: a row for nn.Softsign, ahead of the row that asks the kinds
    (torch.nn.Module), reads a module no kind claims."""
    model = Calls(lambda m, y: m.act(y), act=nn.Softsign())
    with pytest.raises(ImportRefused, match=r"module 'act' \(Softsign\) has no counterpart in the language"):
        _import(model)
    monkeypatch.setattr(importer, "OPERATIONS", [(("torch.nn.Softsign",), _exp_as_relu), *importer.OPERATIONS])
    assert _import(model) == "input(8x8x3)\n  > conv3x3(3->4, pad=1, bias)\n  > relu\n"


def test_rows_are_tried_in_order(monkeypatch):
    """The first row that takes a node reads it: a row for operator.add ahead of the residual's reads x + x."""
    model = Calls(lambda m, y: y + y)
    assert _import(model) == "input(8x8x3)\n  > conv3x3(3->4, pad=1, bias)\n  > res(id)\n"

    def doubled_as_relu(c, node):
        return c.layer(node, node.args[0], "relu")

    monkeypatch.setattr(importer, "OPERATIONS", [(("operator.add",), doubled_as_relu), *importer.OPERATIONS])
    assert _import(model) == "input(8x8x3)\n  > conv3x3(3->4, pad=1, bias)\n  > relu\n"
