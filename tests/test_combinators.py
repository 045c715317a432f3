"""The combinators (paramsym.kinds.combinators): every one answers what the rest of paramsym asks, no module
outside them compares combinator names, and a new one is its module alone (plus the grammar's rule for a
new keyword)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import paramsym
from helpers import frameworks  # noqa: F401  (sets KERAS_BACKEND=torch before keras is imported)
from paramsym import ParamsymUsageError
from paramsym.core.records import KerasSpec, Shape
from paramsym.frameworks.export import network_spec, to_torch, torch_source
from paramsym.frameworks.keras_export import keras_source, to_keras
from paramsym.kinds import combinators
from paramsym.kinds.combinators import Merge, output_shape
from paramsym.language.syntax import KEYWORDS, Composite
from paramsym.model import network as network_module
from paramsym.render.explain import explain

SOURCE = Path(paramsym.__file__).resolve().parent

# One program per combinator, in which a node of it has a layer inside; the number is the parameter count.
PROGRAMS = {
    "layer": ("input(8x8x4) > conv1x1(->4, bias)", 20),
    "seq": ("input(8x8x4) > conv1x1(->4) > relu > conv1x1(->2)", 24),
    "res": ("input(8x8x4) > res(conv3x3(->4, pad=1) > relu)", 144),
    "add": ("input(8x8x4) > add(conv1x1(->4) | conv3x3(->4, pad=1))", 160),
    "concat": ("input(8x8x4) > concat(conv1x1(->2) | conv3x3(->3, pad=1) | id)", 116),
    "mul": ("input(8x8x4) > mul(id | gap > dense(->4, bias) > sigmoid)", 20),
    "sub": ("input(8x8x4) > sub(conv3x3(->4, pad=1) | conv1x1(->4))", 160),
    "seqcat": ("input(8x4) > seqcat(prefix > dense(->4, bias) | rest > untokens(7x1) > conv1x1(->4) > tokens)", 36),
    "sk": ("input(8x8x4) > sk(conv3x3(->4, pad=1) | conv3x3(->4, pad=2, dilation=2) | gap > dense(->8))", 320),
    "aux": ("input(8x8x4) > aux(gap > dense(->3, bias)) > conv1x1(->2)", 23),
    "moe": ("input(6x4) > moe(dense(->8) > gelu > dense(->4), experts=4, top=2)", 16 + 4 * 64),
    "repeat": ("let N = 3\ninput(8x8x4) > (conv3x3(->4, pad=1) > relu) * N", 3 * 144),
    "keep": ("input(8x8x4) > (conv1x1(->4) > relu) as a > conv1x1(->2) > concat(@a | id)", 24),
    "fetch": ("input(8x8x4) > conv1x1(->4) as a > relu > add(@a | id) > @a", 16),
    # a second input (an encoder-decoder's decoder): the exports refuse it (one input), below
    "input": ("input(6x4) > dense(->4) as m > input(5x4) > attn(heads=2, source=@m)", 80),
}
# combinators whose programs the exports refuse by name
NOT_EXPORTED = {"input": "second input(...)"}
# the merges the importer writes (res: a sum of two values, written by add's import_text)
IMPORTED = {
    "add": [["conv1x1(->4)"], [], ["conv3x3(->4, pad=1)"]],
    "concat": [["conv1x1(->2)"], []],
    "mul": [[], ["gap", "sigmoid"]],
    "sub": [["avgpool3x3(stride=1, pad=1)"], []],
    "aux": [["gap", "dense(->3)"]],
}


def _nodes(node):
    yield node
    for child in node.children:
        yield from _nodes(child)


def _shape_of(net):
    return lambda index: net.layers[index].layer.out_shape


def test_every_combinator_has_a_program():
    assert {c.key for c in combinators.COMBINATORS} == set(PROGRAMS)


def test_the_registry_knows_the_grammars_composites():
    # the composites the grammar writes (its keywords that are no statement, `x` or `as`)
    assert set(combinators.keywords()) == set(KEYWORDS) - {"let", "def", "x", "as"}
    for keyword in combinators.keywords():
        assert combinators.lookup(keyword).keyword == keyword


@pytest.mark.parametrize("combinator", combinators.COMBINATORS, ids=lambda c: c.key)
def test_every_combinator_answers_every_question(combinator):
    """Build a node of every combinator and ask it all that the rest of paramsym asks."""
    program, params = PROGRAMS[combinator.key]
    net = paramsym.parse(program)
    assert net.value(net.params) == params  # the symbolic repeat: 144 N with N = 3
    nodes = [node for node in _nodes(net.structure) if node.kind is combinator]
    assert nodes, program
    # the shape of its value: that of the network where the node ends it
    assert output_shape(net.structure, _shape_of(net)) == net.output_shape
    for node in nodes:
        shape = output_shape(node, _shape_of(net))
        assert shape is None if combinator.side_head else isinstance(shape, Shape)
    # counted and explained
    text = explain(net)
    for lc in net.layers:
        assert f"{lc.layer.index + 1}. {lc.layer.name}" in text
        assert isinstance(combinator.explain_layer(lc.layer, lc.counts, _Words()), list)
    if combinator.key in NOT_EXPORTED:
        for export in (torch_source, keras_source):
            with pytest.raises(ParamsymUsageError, match=NOT_EXPORTED[combinator.key]):
                export(net)
        return
    # exported to PyTorch: the module has the network's parameters and output shape
    assert "def build_model()" in torch_source(net)
    assert network_spec(net).cls == "nn.Sequential"
    module = to_torch(net)
    assert sum(p.numel() for p in module.parameters()) == net.value(net.params)
    *spatial, channels = (int(d) for d in net.input_shape.dims())
    with torch.no_grad():
        out = module.eval()(torch.zeros(2, channels, *spatial))
    dims = [int(d) for d in net.output_shape.dims()]
    assert tuple(out.shape) == (2, dims[-1], *dims[:-1])
    # exported to Keras, or refused with a reason
    try:
        assert "def build_model()" in keras_source(net)
    except ParamsymUsageError as refused:
        assert "has no Keras equivalent" in str(refused), program
    # written by the importer
    if combinator.keyword is not None:
        assert combinators.lookup(combinator.keyword) is combinator
    if combinator.key in IMPORTED:
        text = combinator.import_text(IMPORTED[combinator.key])
        assert text.startswith(f"{combinator.keyword}("), text
        written = paramsym.parse(f"input(8x8x4) > {text}")
        assert any(node.kind is combinator for node in _nodes(written.structure)), text


class _Words:
    def __call__(self, expr) -> str:
        return str(expr)

    def formula(self, expr) -> str:
        return str(expr)


def test_a_sum_of_two_values_is_imported_as_res():
    add = combinators.lookup("add")
    assert add.import_text([["conv1x1(->4)"], []]) == "res(conv1x1(->4))"
    assert add.import_text([["conv1x1(->4)"], ["conv3x3(->4)"]]) == "res(conv1x1(->4) | conv3x3(->4))"
    assert add.import_text([["a"], ["b"], ["c"]]) == "add(a | b | c)"
    assert combinators.lookup("mul").import_text([["gap", "sigmoid"], []]) == "mul(id | gap > sigmoid)"
    assert combinators.lookup("aux").import_text([["gap", "dense(->3)"]]) == "aux(gap > dense(->3))"


# ---- one place per combinator -----------------------------------------------------------------

# issue 18's "done when": no combinator is told apart by its name outside its own module
NAME_COMPARISON = re.compile(r'kind == "(seq|res|add|concat|mul|sk|moe|aux|repeat)"')


def test_no_module_outside_the_combinators_compares_their_names():
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        if "combinators" in path.relative_to(SOURCE).parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if NAME_COMPARISON.search(line):
                found.append(f"{path.relative_to(SOURCE)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_name_check_finds_a_comparison():
    assert NAME_COMPARISON.search('        if node.kind == "moe":')
    assert not NAME_COMPARISON.search("        if node.kind.side_head:")


# ---- a new combinator is one module ---------------------------------------------------------------


class Max(Merge):
    """A toy combinator: the elementwise maximum of its branches (Keras' Maximum)."""

    key = keyword = "max"

    def keras_merge(self) -> KerasSpec:
        return KerasSpec("Maximum")

    def torch(self, node, export):
        raise ParamsymUsageError("max(...) has no PyTorch module in this test")


@pytest.fixture
def with_max(monkeypatch):
    """`max` registered at runtime. The grammar's keywords are fixed (a new keyword is a rule in
    paramsym.lark and a method of the syntax tree's builder), so the program is written with `add` and its
    composite handed to the builder as `max`: everything after the parser is the combinator's module alone."""
    parse_program = network_module.parse_program

    def as_max(text):
        program = parse_program(text)
        stages = tuple(
            Composite("max", s.branches, s.pos, s.args) if isinstance(s, Composite) and s.kind == "add" else s
            for s in program.network.stages
        )
        network = type(program.network)(stages, program.network.pos)
        return type(program)(program.statements, network, program.source)

    monkeypatch.setattr(network_module, "parse_program", as_max)
    toy = Max()
    combinators.register(toy)
    try:
        yield toy
    finally:
        combinators.unregister(toy)
    assert "max" not in combinators.keywords()


def test_a_combinator_defined_in_a_test_counts_explains_and_exports(with_max):
    net = paramsym.parse("input(8x8x4) > add(conv1x1(->4, bias) | conv3x3(->4, pad=1)) > relu")
    assert net.structure.children[0].kind is with_max
    assert net.params == 20 + 144
    assert [lc.layer.path for lc in net.layers] == ["max.branch1.conv1x1", "max.branch2.conv3x3", "relu"]
    assert "1. conv1x1" in explain(net) and "Total: 20 + 144 + 0 = 164 learnable parameters." in explain(net)
    assert output_shape(net.structure, _shape_of(net)) == net.output_shape
    assert re.search(r"= layers\.Maximum\(\)\(\[x\d+, x\d+\]\)\n", keras_source(net))
    assert to_keras(net).count_params() == 164
    with pytest.raises(ParamsymUsageError, match="max"):
        torch_source(net)


def test_a_new_combinator_checks_its_branches(with_max):
    with pytest.raises(paramsym.ParamsymShapeError, match=r"max\(\.\.\.\): the shapes of its branches differ"):
        paramsym.parse("input(8x8x4) > add(conv1x1(->4) | conv1x1(->5))")


def test_a_keyword_belongs_to_one_combinator():
    with pytest.raises(RuntimeError, match="'add' belongs to two combinators"):
        combinators.register(type("Other", (Merge,), {"key": "other", "keyword": "add"})())
