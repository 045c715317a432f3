"""Exported source runs only what the exporter wrote (issue 17): the program's text, comments included, goes
into the file as `#` lines that no character can end early; names of the program reach it only behind a
prefix no other name has; numbers as checked literals. Checked by executing the written files."""

from __future__ import annotations

import ast
import builtins
import keyword
import os
import re
from functools import cache

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import paramsym
from helpers import frameworks  # noqa: F401  (KERAS_BACKEND=torch)
from helpers.cli_helpers import run
from helpers.frameworks import torch_params
from paramsym.errors import ParamsymError
from paramsym.frameworks.export import helper_sources
from paramsym.frameworks.keras_export import keras_source

SENTINEL = "PARAMSYM_EXPORT_PWNED"
PAYLOAD = f"__import__('os').environ.__setitem__('{SENTINEL}', '1')"


def _load(text: str) -> dict:
    """Execute a written file as Python reads it from disk (bytes: a coding declaration would count), as an
    import does; the sentinel must stay unset."""
    namespace = {"__name__": "exported"}
    exec(compile(text.encode("utf-8"), "exported.py", "exec"), namespace)
    assert SENTINEL not in os.environ, text
    return namespace


def _statements(text: str) -> str:
    """The file's statements as Python reads them from disk, but the module docstring (a string runs nothing;
    earlier versions copied the program into it)."""
    tree = ast.parse(text.encode("utf-8"))
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant):
        tree.body = tree.body[1:]
    return ast.dump(tree)


# ---- every name that the written files use, and Python's own ------------------------------------------


def _generated_names() -> set[str]:
    names = {
        "torch",
        "nn",
        "F",
        "functional",
        "keras",
        "layers",
        "math",
        "build_model",
        "model",
        "y",
        "x",
        "p",
        "self",
        "forward",
        "super",
        "shared",
        "tied",
        "weight",
        "_",
        "__name__",
        "__main__",
    }
    names |= {f"x{i}" for i in range(12)}
    names |= set(helper_sources())  # every class and function of torch_modules (the helpers copied in)
    for text in helper_sources().values():  # and every name their code uses
        names |= {node.id for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Name)}
        names |= {node.arg for node in ast.walk(ast.parse(text)) if isinstance(node, ast.arg)}
    # the renamings of this and earlier versions, which a user name could imitate
    names |= {"nn_layer", "torch_layer", "e_tied1", "nn_layer_tied1", "shared_nn", "tied1_nn", "tied2_e"}
    return names


RESERVED = sorted({*keyword.kwlist, *keyword.softkwlist, *dir(builtins), *_generated_names()})


def _language_name(name: str) -> bool:
    """Whether the language takes `name` after `as` (some are its own words: `as`, `relu`, ...)."""
    try:
        paramsym.parse(f"input(4) > dense(->4) as {name}")
    except ParamsymError:
        return False
    return True


NAMES = [name for name in RESERVED if _language_name(name)]


def test_the_reserved_names_are_tested():
    # the language refuses only its own words after `as` (keywords, layer kinds, `x` of dims)
    assert set(RESERVED) - set(NAMES) == {
        *("as", "attn", "def", "id", "input", "last", "router", "scale", "slice", "x"),
        *("pool", "silu", "cls", "first"),  # names the helpers' code uses (TokenPool, GlobalContext, ...)
        "rest",  # a layer kind (rest(N)) and a word of the exported source
    }
    assert {
        "nn",
        "nn_layer",
        "torch",
        "F",
        "self",
        "if",
        "None",
        "print",
        "__debug__",
        "Residual",
        "rotary",
        "build_model",
        "shared_nn",
        "tied1_nn",
    } <= set(NAMES)


def _tied_program(pairs) -> str:
    """An embedding `e0` that the head ties to and, for each name, a dense layer of that name and a dense layer
    that ties to it (of the transposed size when `transposed`)."""
    stages = [f"dense(->{8 if transposed else 12}) as {name} > dense(->12, tie={name})" for name, transposed in pairs]
    return f"input(16) > embed(50->12) as e0 > {' > '.join(stages)} > dense(->50, tie=e0)"


def _check_tied(program: str, count: int):
    """The written file builds a module of paramsym's count in which each tying layer has the weight of the
    layer it names, and no other (the embedding's is the head's)."""
    network = paramsym.parse(program)
    text = paramsym.torch_source(network)
    model = _load(text)["build_model"]()
    assert torch_params(model) == network.evaluate()["params"], text
    leaves = [m for m in model.modules() if not list(m.children())]
    assert len(leaves) == 2 + 2 * count and len({id(p) for p in model.parameters()}) == 2 + count - 1, text
    embedding, *pairs, head = leaves
    assert isinstance(embedding, torch.nn.Embedding) and head.weight is embedding.weight, text
    for dense, tied in zip(pairs[::2], pairs[1::2]):
        assert type(dense) is torch.nn.Linear and tied.weight is dense.weight, text
    assert tuple(model(torch.zeros(1, 16, dtype=torch.long)).shape) == (1, 50, 16)


@pytest.mark.parametrize(
    "a, b",
    [
        ("nn", "nn_layer"),
        ("nn_layer", "nn"),
        ("e", "e_tied1"),
        ("e", "shared_e"),
        ("e", "tied1_e"),
        ("tied1_e", "e"),
        ("shared_e", "e"),
        ("e", "tied2_e"),
    ],
)
def test_shared_names_never_collide(a, b):
    # before: `as nn` became nn_layer, the same variable as the user's `as nn_layer`: the ties went to the
    # wrong weight and the written file failed in forward
    _check_tied(_tied_program([(a, True), (b, False)]), 2)


def test_the_collision_of_the_issue():
    program = (
        "input(16) > embed(100->8) as nn > dense(->100) as nn_layer > dense(->8, tie=nn_layer) > dense(->100, tie=nn)"
    )
    network = paramsym.parse(program)
    model = _load(paramsym.torch_source(network))["build_model"]()
    embedding, dense, transposed, head = [m for m in model.modules() if not list(m.children())]
    assert isinstance(embedding, torch.nn.Embedding) and head.weight is embedding.weight
    assert transposed.weight is dense.weight and torch_params(model) == network.evaluate()["params"] == 1600
    assert tuple(model(torch.zeros(1, 16, dtype=torch.long)).shape) == (1, 100, 16)


def _tie_names() -> list[str]:
    """The reserved words that can be tied to (a name the language reads as a function, `max`, cannot)."""
    names = []
    for name in NAMES:
        try:
            paramsym.parse(f"input(4) > dense(->4) as {name} > dense(->4, tie={name})")
        except ParamsymError:
            continue
        names.append(name)
    return names


def test_every_reserved_word_as_a_shared_name():
    names = _tie_names()
    assert len(names) > 300
    for start in range(0, len(names), 60):  # all of them side by side, in a few programs
        chunk = names[start : start + 60]
        _check_tied(_tied_program([(name, i % 2 == 0) for i, name in enumerate(chunk)]), len(chunk))


@pytest.mark.parametrize(
    "template",
    [
        "def {}(c) = conv3x3(->c, pad=1) > relu\ninput(8x8x3) > {}(4) > conv1x1(->4) as head > res(conv1x1(->4)) > gap",
        "def blk(c) = conv3x3(->c, pad=1) > relu\ninput(8x8x3) > blk(4) > conv1x1(->4) as {} > res(conv1x1(->4)) > gap",
    ],
    ids=["def", "as"],
)
def test_every_reserved_word_as_a_def_name_and_layer_name_for_keras(template):
    """Keras' source has no name of the program: it is the same file, statement for statement, whatever the
    names; the one file builds a model of paramsym's count."""
    base = paramsym.parse(template.format("blk", "blk").replace("as blk", "as head"))
    expected = _statements(keras_source(base))
    assert _load(keras_source(base))["build_model"]().count_params() == base.evaluate()["params"]
    tested = 0
    for name in NAMES:
        try:
            network = paramsym.parse(template.format(name, name))
        except ParamsymError:  # a def may not take a name the language has for a function
            continue
        tested += 1
        assert _statements(keras_source(network)) == expected, name
    assert tested > 300


def test_every_reserved_word_as_a_def_name_for_torch():
    def program(name):
        return f"def {name}(d) = dense(->d) > relu\ninput(16) > embed(50->8) as e > {name}(8) > dense(->50, tie=e)"

    for name in NAMES:
        try:
            network = paramsym.parse(program(name))
        except ParamsymError:
            continue
        model = _load(paramsym.torch_source(network))["build_model"]()
        assert torch_params(model) == network.evaluate()["params"], name


# ---- comments ---------------------------------------------------------------------------------------------

FRAGMENTS = [
    '"""',
    "'''",
    "\\",
    "\\N{BULLET}",
    "\\N{",
    "\\x",
    "\\u12",
    "\r",
    "\u2028",
    "\u2029",
    "\x0c",
    "\x0b",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x85",
    "\x00",
    "\ufeff",
    "\u202e",
    "\ud800",
    "coding: utf-7",
    "-*- coding: latin-1 -*-",
    "+AAo-",
    "ü",
    "\U0001f600",
    "#",
    ";",
    "(",
    ")",
    PAYLOAD,
    f'"""; {PAYLOAD}; """',
    f"'''; {PAYLOAD}; '''",
    f"\r{PAYLOAD}",
    f"\u2028{PAYLOAD}",
    f"\x0c{PAYLOAD}",
]
COMMENTS = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS), st.text(st.characters(exclude_characters="\n", exclude_categories=()), max_size=6)
    ),
    max_size=8,
).map(lambda parts: "#" + "".join(parts))

TORCH_PROGRAM = "let D = 8\ndef blk(d) = dense(->d) > relu\ninput(16) > embed(50->D) as e > blk(D) > dense(->50, tie=e)"
KERAS_PROGRAM = (
    "let C = 4\ndef blk(c) = conv3x3(->c, pad=1) > relu\n"
    "input(8x8x3) > blk(C) > conv1x1(->C) as head > res(conv1x1(->C)) > gap > dense(->2)"
)


def _tokens(program: str) -> list[str]:
    return re.findall(r"->|\n|[A-Za-z0-9_.]+|\S", program)


def _with_comments(tokens: list[str], comments: dict) -> str:
    """The tokens with comments[i] before token i (then a newline; at the end, none)."""
    parts = []
    for i in range(len(tokens) + 1):
        if i in comments:
            parts.append(f" {comments[i]}" + ("\n" if i < len(tokens) else ""))
        if i < len(tokens):
            parts.append(tokens[i] + " ")
    return "".join(parts)


def _meaning(network) -> tuple:
    return network.evaluate(), [lc.layer.kind.key for lc in network.layers]


@cache
def _places(program: str) -> list[int]:
    """Every place where the program takes a comment (and the newline that ends it) and means the same."""
    tokens = _tokens(program)
    expected = _meaning(paramsym.parse(program))
    places = []
    for i in range(len(tokens) + 1):
        try:
            if _meaning(paramsym.parse(_with_comments(tokens, {i: "#"}))) == expected:
                places.append(i)
        except ParamsymError:
            pass
    return places


@st.composite
def _commented(draw, program: str):
    """The program with random comments in some of the places that take one, and the same program with the
    same comments empty."""
    tokens = _tokens(program)
    places = draw(st.lists(st.sampled_from(_places(program)), max_size=4, unique=True))
    comments = {place: draw(COMMENTS) for place in places}
    return _with_comments(tokens, comments), _with_comments(tokens, dict.fromkeys(places, "#"))


def test_comments_go_almost_everywhere():
    for program in (TORCH_PROGRAM, KERAS_PROGRAM):
        assert len(_places(program)) > len(_tokens(program)) * 2 // 3


def _check_comments(pair, write):
    program, bare = pair
    network = paramsym.parse(program)
    assert _meaning(network) == _meaning(paramsym.parse(bare))
    text = write(network)
    # the same statements as the file of the same program with empty comments: nothing from a comment runs
    assert _statements(text) == _statements(write(paramsym.parse(bare))), text
    _load(text)


@given(_commented(TORCH_PROGRAM))
def test_property_comments_stay_comments_in_torch_source(pair):
    _check_comments(pair, paramsym.torch_source)


@given(_commented(KERAS_PROGRAM))
def test_property_comments_stay_comments_in_keras_source(pair):
    _check_comments(pair, keras_source)


@pytest.mark.parametrize(
    "comment",
    [
        f'# """; {PAYLOAD}; """',
        "# ends in a backslash \\",
        "# \\N{oops}",
        f"# \r{PAYLOAD}",
        f"# \u2028{PAYLOAD}",
        "# NUL \x00 here",
    ],
)
@pytest.mark.parametrize("write", [paramsym.torch_source, keras_source], ids=["torch", "keras"])
def test_comments_that_broke_or_ran_code(comment, write):
    program = f"input(8x8x3) > conv3x3(->4) {comment}"
    text = write(paramsym.parse(program))
    assert _statements(text) == _statements(write(paramsym.parse("input(8x8x3) > conv3x3(->4)")))
    _load(text)


def test_cli_export_of_a_comment_that_closes_the_docstring(tmp_path):
    """Through the real entry point: before, the comment closed the docstring and `m.py` wrote the file on
    import."""
    marker = tmp_path / "pwned"
    source = tmp_path / "x.psym"
    source.write_text(f'input(8x8x3) > conv3x3(->4) # """; open({str(marker)!r}, "w"); """\n', encoding="utf-8")
    for target in ("torch", "keras"):
        written = tmp_path / f"m_{target}.py"
        result = run("export", str(source), "--to", target, "-o", str(written))
        assert result.returncode == 0, result.stderr
        # run as an import runs it (from its bytes, as __name__ "m"), in this process: torch and Keras are
        # imported already
        exec(compile(written.read_bytes(), str(written), "exec"), {"__name__": f"m_{target}"})
        assert not marker.exists()
        line = f'#     input(8x8x3) > conv3x3(->4) # """; open({str(marker)!r}, "w"); """'
        assert line in written.read_text().splitlines()  # the comment, kept as a comment


# ---- numbers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        0,
        -3,
        10**4299,
        10**4300,
        -(10**5000),
        2**16000,
        0.1,
        1 / 3,
        -0.0,
        1e-300,
        float("inf"),
        float("-inf"),
        True,
        None,
        "same",
        'it\'s """ \\',
        (1,),
        (),
        (2**20000, 1.5),
        [1, (2, 3)],
    ],
    ids=lambda value: type(value).__name__,
)
def test_python_literal_reads_back_as_the_value(value):
    from paramsym.frameworks.export import python_literal

    text = python_literal(value)
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        assert eval(text, {"__builtins__": {"float": float}}) == value
    else:
        assert ast.literal_eval(text) == value and type(ast.literal_eval(text)) is type(value)


@pytest.mark.parametrize(
    "value",
    [float("nan"), __import__("fractions").Fraction(1, 3), object(), __import__("sympy").Integer(3), b"x", {"a": 1}],
    ids=lambda value: type(value).__name__,
)
def test_python_literal_refuses_anything_else(value):
    from paramsym.frameworks.export import python_literal

    with pytest.raises(ParamsymError):
        python_literal(value)


def test_the_largest_numbers_a_program_can_make_are_written_exactly():
    # before: `let A = 2^8000; ... dense(->A*A)` raised a ValueError (Python's 4300-digit limit) while writing
    # the file. A*A (16,001 bits) is now refused by the 8,192-bit limit where it is made (test_hostile_inputs);
    # the largest widths still allowed are written exactly, and python_literal writes hex past 4,300 digits
    network = paramsym.parse("let A = 2^8000; input(8x8x3) > dense(->A)")
    for text in (paramsym.torch_source(network), keras_source(network)):
        ast.parse(text)
        assert str(2**8000) in text or hex(2**8000) in text
    with pytest.raises(ParamsymError, match="8,192 bits"):
        paramsym.parse("let A = 2^8000; input(8x8x3) > dense(->A*A)").evaluate()


@pytest.mark.parametrize("write", [paramsym.torch_source, keras_source], ids=["torch", "keras"])
def test_a_comment_cannot_declare_the_encoding(write):
    # PEP 263: a `coding:` comment on line 1 or 2 decides how Python decodes the file (UTF-7 would turn
    # `+AAo-` into a newline); the program's lines start at line 4
    program = "# -*- coding: utf-7 -*-\n# +AAo-" + PAYLOAD + "\ninput(8x8x3) > conv3x3(->4)"
    text = write(paramsym.parse(program))
    assert text.splitlines()[:3] == [text.splitlines()[0], "# The program:", "#"]
    assert "coding" not in "".join(text.splitlines()[:2])
    assert _statements(text) == _statements(write(paramsym.parse("input(8x8x3) > conv3x3(->4)")))
    _load(text)


def test_written_source_has_every_helper_its_classes_use():
    # before: GroupedQueryAttention was copied without the `rotary` function it calls (NameError in forward)
    network = paramsym.parse("input(16x32) > attn(heads=4, rope)")
    written = _load(paramsym.torch_source(network))["build_model"]()
    built = paramsym.to_torch(network)
    written.load_state_dict(built.state_dict())
    x = torch.randn(2, 32, 16)
    assert torch.equal(written(x), built(x)) and torch_params(written) == network.evaluate()["params"]
