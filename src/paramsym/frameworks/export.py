"""Programs to PyTorch: a real `torch.nn.Module` (`to_torch`) or readable Python
source that builds it (`torch_source`), from one description of each module.

Shapes are channels-last in the language and channels-first in PyTorch: the
module takes (N, C, *spatial); a layer that acts on the last axis acts on the
channel axis through `ChannelsLast`, and flattening lays values out in H x W x C
order (`FlattenChannelsLast`). Each layer kind describes its own module
(`Kind.torch`); this module builds the structure around them.
"""

from __future__ import annotations

import ast
import importlib
import keyword
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ..core.records import Layer, Node, TorchSpec
from ..errors import ParamsymError, ParamsymUsageError
from ..kinds.attention import AttentionOptions
from ..kinds.combinators import output_shape
from ..kinds.dense import DenseOptions, Tie
from ..model.network import LayerCount, Network, expect_network, whole_number

Spec = TorchSpec  # one module to build, as the layer kinds describe it


@dataclass
class Shared:
    """A module whose weight a later layer shares (`LAYER as NAME`): built once, known by `name`."""

    name: str
    spec: Spec


@dataclass
class Tied:
    """A module that uses the weight of the Shared module `name` (`dense(..., tie=NAME)`) as its own."""

    name: str
    spec: Spec


class Numbers:
    """Formulas to ints with the network's values; a formula with a free symbol is refused."""

    def __init__(self, network: Network, values: dict):
        self.evaluator = expect_network(network, "the export").evaluator(**values)

    def __call__(self, expr) -> int:
        if not self.evaluator.has_values_for(expr):
            missing = sorted(s.name for s in expr.free_symbols if s not in self.evaluator.values)
            raise ParamsymUsageError(f"export needs numbers: give {', '.join(missing)} a value (--set or a let)")
        return self.evaluator.integer(expr)

    def each(self, values) -> tuple:
        return tuple(self(v) for v in values)


def layer_spec(lc: LayerCount, num: Numbers) -> Spec:
    return lc.layer.kind.torch(lc.layer, num)


def _replace_leaf(spec: Spec, change) -> Spec:
    """The spec with its first module that holds no other (nn.Linear in ChannelsLast) replaced by change(it)."""
    for i, arg in enumerate(spec.args):
        if isinstance(arg, Spec):
            return Spec(
                spec.cls, (*spec.args[:i], _replace_leaf(arg, change), *spec.args[i + 1 :]), spec.kwargs, spec.repeat
            )
    return change(spec)


def _tie(layer: Layer) -> Tie | None:
    """The layer whose weight `layer` shares (`dense(..., tie=NAME)`), or whose position bias it uses
    (`attn(..., tie=NAME)`), or None."""
    options = layer.options
    if isinstance(options, AttentionOptions):
        return options.pos_tie
    return options.tie if isinstance(options, DenseOptions) else None


def _sharing(network: Network, num: Numbers):
    """{index of a layer whose weight is shared: its name}, and a function that makes a layer's spec share
    the weight it ties to (`dense(..., tie=NAME)`): the same Parameter, which PyTorch counts once."""
    ties = [_tie(lc.layer) for lc in network.layers]
    targets = {t.index: t.name for t in ties if t is not None}

    def tie(lc: LayerCount, spec: Spec) -> Spec:
        layer = lc.layer
        shared = _tie(layer)
        if shared is None:
            return spec
        target = network.layers[shared.index].layer
        if isinstance(layer.options, AttentionOptions):
            return _replace_leaf(spec, lambda leaf: Tied(shared.name, leaf))
        rows, cols = num.each(target.kind.weight(target))
        if (rows, cols) == (num(layer.cout), num(layer.cin)):
            return _replace_leaf(spec, lambda leaf: Tied(shared.name, leaf))
        # the transposed size: a linear layer that stores its weight (in, out)
        return _replace_leaf(spec, lambda leaf: Tied(shared.name, Spec("TransposedLinear", leaf.args, leaf.kwargs)))

    return targets, tie


def network_spec(network: Network, **values) -> Spec:
    """The whole network as one nn.Sequential description."""
    num = Numbers(network, values)
    targets, tie = _sharing(network, num)

    def layer(index: int) -> Spec:
        lc = network.layers[index]
        spec = tie(lc, layer_spec(lc, num))
        if index in targets:
            spec = _replace_leaf(spec, lambda leaf: Shared(targets[index], leaf))
        return spec

    top = _TorchExport(network, num, layer).spec(network.structure)
    return top if top.cls == "nn.Sequential" and top.repeat == 1 else Spec("nn.Sequential", (top,))


class _TorchExport:
    """What a combinator's `torch` reads (paramsym.kinds.combinators.base): the spec of a node or a layer,
    the numbers, and the shape a node gives."""

    def __init__(self, network: Network, num: Numbers, layer):
        self.network, self.num, self.layer = network, num, layer

    def spec(self, node: Node) -> Spec:
        return node.kind.torch(node, self)

    def shape(self, node: Node):
        return output_shape(node, lambda index: self.network.layers[index].layer.out_shape)


# ---- building ----------------------------------------------------------------------------


def require_torch(what: str, hint: str | None = None):
    """`import torch`, or a usage error that says what needs it and how to install it."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise ParamsymUsageError(f"{what} needs PyTorch: pip install torch", hint=hint) from None


def build(spec: Spec, shared: dict | None = None):
    require_torch(
        "building a PyTorch module",
        hint="torch_source() and `paramsym export --to torch` write its source without PyTorch",
    )
    from torch import nn

    from . import torch_modules

    shared = {} if shared is None else shared  # the modules of `Shared` specs, by name

    def make(value):
        return build(value, shared) if isinstance(value, (Spec, Shared, Tied)) else value

    if isinstance(spec, Shared):
        if spec.name in shared:
            raise ParamsymUsageError(
                f"'{spec.name}' names a layer that is repeated: a tie to it has no one weight to share",
                hint="name a layer outside the repeat",
            )
        shared[spec.name] = module = build(spec.spec, shared)
        return module
    if isinstance(spec, Tied):
        module = build(spec.spec, shared)
        if hasattr(module, "share_position_bias"):  # attn(..., tie=NAME): the position bias NAME computes
            module.share_position_bias(shared[spec.name])
            return module
        module.weight = shared[spec.name].weight  # one Parameter in both: parameters() counts it once
        return module
    if spec.repeat != 1:
        return nn.Sequential(*(build(spec.args[0], shared) for _ in range(spec.repeat)))
    if spec.cls in ("Keep", "Fetch"):  # a named value: the Fetch modules read the Keep module of their name
        return _named_value(spec, shared)
    if spec.cls.startswith("nn."):
        cls = getattr(nn, spec.cls[3:])
    else:
        cls = getattr(torch_modules, spec.cls)
    try:
        return cls(*(make(a) for a in spec.args), **{k: make(v) for k, v in spec.kwargs.items()})
    except (ValueError, RuntimeError) as error:
        raise ParamsymUsageError(f"PyTorch refuses {spec.cls}: {error}") from None


def _named_value(spec: Spec, shared: dict):
    """A `Keep` module (known by its name to the `Fetch` modules built after it), or a `Fetch` module."""
    from . import torch_modules

    key = ("value", spec.kwargs["name"])  # apart from the names of shared weights, which are strings
    if spec.cls == "Keep":
        shared[key] = module = torch_modules.Keep(build(spec.args[0], shared), spec.kwargs["name"])
        return module
    return torch_modules.Fetch(shared[key])


def kept_variable(name: str) -> str:
    """The variable of the Keep module of the value `name` in the exported source."""
    return f"kept_{_grammar_name(name)}"


def to_torch(network: Network, **values):
    """A torch.nn.Module with the network's layers; it takes (N, C, *spatial) tensors."""
    return build(network_spec(network, **values))


def parameter_shapes(network: Network, **values) -> list[tuple[int, ...]]:
    """The shape of each parameter tensor of the network's PyTorch module (built on the meta device: no memory),
    shared ones once, in the order `parameters()` gives them: what an optimizer keeps states for."""
    torch = require_torch("listing the parameter tensors")
    with torch.device("meta"):
        module = to_torch(network, **values)
    return [tuple(p.shape) for p in module.parameters()]


def takes_token_ids(network: Network) -> bool:
    """Whether the program's input is token ids (whole numbers) that a layer looks up."""
    return any(getattr(lc.layer.kind, "token_ids", False) for lc in network.layers)


def example_input(network: Network, batch: int = 1, **values):
    """zeros of the program's input shape, channels first, for a forward pass (whole numbers when the
    input is token ids)."""
    num = Numbers(network, values)
    if whole_number(batch) is None or batch < 1:
        raise ParamsymUsageError(f"the batch size must be a positive whole number, not {batch!r}")
    torch = require_torch("example_input")
    dims = network.input_shape.dims()
    if dims is None or any(d is None for d in dims):
        raise ParamsymUsageError("the program has no input(...) shape to make an input from")
    *spatial, channels = num.each(dims)
    dtype = torch.long if takes_token_ids(network) else torch.float32
    return torch.zeros(batch, channels, *spatial, dtype=dtype)


# ---- source --------------------------------------------------------------------------------
# Nothing of the program reaches the written source as code except the grammar's names (behind a prefix
# that no other name of the file has) and numbers: the program's text, comments included, goes in as `#`
# comment lines in which every character that could end a line (or is not printable) is escaped.

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)  # the grammar's NAME
_CLASS = re.compile(r"(nn\.)?[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_DECIMAL_BITS = 13_000  # below Python's 4300-digit limit on decimal int literals; larger ints are written in hex


def _grammar_name(name) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ParamsymError(f"{name!r} is not a name of the language: it cannot be written into source")
    return name


def shared_variable(name: str) -> str:
    """The variable of the layer named `name` (`LAYER as NAME`) whose weight is shared: `shared_NAME`, a prefix
    that no other name of the written file has (no keyword, builtin, import or helper starts with it)."""
    return f"shared_{_grammar_name(name)}"


def tied_variable(name: str, number: int) -> str:
    """The variable of the `number`th layer that ties a weight (to `name`): `tiedK_NAME`, unique by its
    number and apart from every `shared_` variable and every other name of the file."""
    return f"tied{int(number)}_{_grammar_name(name)}"


def python_literal(value, collapse: bool = False) -> str:
    """A Python literal of a value the exporters write: bools, ints (hex past the decimal-literal limit),
    finite floats and infinities, None, the exporters' own strings (escaped by repr), and tuples or lists
    of these; with `collapse`, `(3, 3)` as `3` (torch.nn takes either). Anything else is refused."""
    if collapse and isinstance(value, tuple) and value and all(type(v) is int and v == value[0] for v in value):
        return python_literal(value[0])
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() <= _DECIMAL_BITS else hex(value)
    if isinstance(value, float):
        if math.isnan(value):
            raise ParamsymError("NaN cannot be written into exported source")
        return repr(value) if math.isfinite(value) else f'float("{"-" if value < 0 else ""}inf")'
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        items = [python_literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(python_literal(v) for v in value)}]"
    raise ParamsymError(f"a {type(value).__name__} cannot be written into exported source")


def keyword_name(key) -> str:
    """A keyword argument's name, checked: an identifier that is not a Python keyword."""
    if not isinstance(key, str) or not _NAME.fullmatch(key) or keyword.iskeyword(key):
        raise ParamsymError(f"{key!r} cannot be a keyword argument in exported source")
    return key


def class_name(cls) -> str:
    if not isinstance(cls, str) or not _CLASS.fullmatch(cls):
        raise ParamsymError(f"{cls!r} cannot be a class in exported source")
    return cls


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def comment_lines(text: str, indent: str = "    ") -> str:
    """`text` as `#` comment lines: split at every line break (str.splitlines knows more than Python's tokenizer:
    \\r, \\x0b, \\x0c, \\x1c-\\x1e, \\x85, \\u2028, \\u2029), and in each line every character that is
    not printable (control characters, NUL, line and paragraph separators, bidirectional and other format
    characters, lone surrogates) escaped as \\xNN/\\uNNNN: no line of the text can end a comment early."""
    lines = []
    for line in text.strip().splitlines():
        line = "".join(c if c.isprintable() or c == "\t" else _escape(c) for c in line).rstrip()
        lines.append(f"# {indent}{line}" if line else "#")
    return "".join(f"{line}\n" for line in lines)


def _literal(value, collapse: bool = True) -> str:
    return python_literal(value, collapse)


# The keywords left out of the source for readability when they have their default: torch.nn's default,
# but for the classes of torch.nn named beside it, whose default differs (tests/test_export_helpers.py
# checks the table against every class of torch.nn); a helper of torch_modules.py has its own signature's
_TORCH_DEFAULTS = {
    "stride": (1, r"nn\.(Max|Avg|LP)Pool[123]d|nn\.MaxUnpool[123]d"),  # a pool's stride: its kernel size
    "padding": (0, r"nn\.(Circular|Constant|Reflection|Replication|Zero)Pad[123]d"),  # a padding has none
    "dilation": (1, None),
    "groups": (1, r"nn\.ChannelShuffle"),
    "bias": (True, r"nn\.LinearCrossEntropyLoss|nn\.RNNCellBase"),
    "ceil_mode": (False, None),
    "output_padding": (0, None),
}


def class_defaults(cls: str) -> dict:
    """The keyword arguments that the written source leaves out for `cls` when they have these values: those of
    _TORCH_DEFAULTS with torch.nn's default for a class of torch.nn, with the helper's own signature default for
    a helper of torch_modules.py (the helper's default, not torch.nn's, is what a left-out keyword gets)."""
    if cls.startswith("nn."):
        return {
            key: value
            for key, (value, other) in _TORCH_DEFAULTS.items()
            if other is None or not re.fullmatch(other, cls, re.ASCII)
        }
    source = helper_sources().get(cls)
    if source is None:
        return {}
    return {key: value for key, value in _helper_defaults(source).items() if key in _TORCH_DEFAULTS}


@cache
def _helper_defaults(source: str) -> dict:
    """The literal defaults of the __init__ of the class whose source this is (read as text: no PyTorch)."""
    init = next(
        (
            node
            for node in ast.parse(source).body[0].body
            if isinstance(node, ast.FunctionDef) and node.name == "__init__"
        ),
        None,
    )
    if init is None:
        return {}
    args = init.args
    pairs = [
        *zip(args.args[len(args.args) - len(args.defaults) :], args.defaults),
        *zip(args.kwonlyargs, args.kw_defaults),
    ]
    defaults = {}
    for arg, default in pairs:
        if default is None:  # a keyword-only argument without a default
            continue
        try:
            defaults[arg.arg] = ast.literal_eval(default)
        except ValueError:  # not a literal: never left out
            pass
    return defaults


def spec_source(spec: Spec, indent: int = 0, statements: list | None = None) -> str:
    """The Python expression that builds the spec; a shared weight adds its statements to `statements`
    (a module assigned to a name, and `tied.weight = shared.weight`)."""
    pad = "    " * indent
    statements = [] if statements is None else statements
    if isinstance(spec, Shared):
        name = shared_variable(spec.name)
        if any(s.startswith(f"{name} = ") for s in statements):
            raise ParamsymUsageError(
                f"'{spec.name}' names more than one layer: a tie to it has no one weight to share",
                hint="give each shared layer its own name",
            )
        statements.append(f"{name} = {spec_source(spec.spec, 1, statements)}")
        return name
    if isinstance(spec, Tied):
        name = tied_variable(
            spec.name,
            sum(1 for s in statements if s.startswith("tied") and " = " in s and ".weight" not in s.split(" = ")[0])
            + 1,
        )
        statements.append(f"{name} = {spec_source(spec.spec, 1, statements)}")
        if spec.spec.cls == "GroupedQueryAttention":  # attn(..., tie=NAME): the position bias NAME computes
            statements.append(f"{name}.share_position_bias({shared_variable(spec.name)})")
        else:
            statements.append(f"{name}.weight = {shared_variable(spec.name)}.weight")
        return name
    if spec.cls == "Keep":  # a named value: a variable, which the Fetch modules after it read
        name = kept_variable(spec.kwargs["name"])
        module = spec_source(spec.args[0], 1, statements)
        statements.append(f"{name} = Keep({module}, name={spec.kwargs['name']!r})")
        return name
    if spec.cls == "Fetch":
        return f"Fetch({kept_variable(spec.kwargs['name'])})"
    if spec.repeat != 1:
        before = len(statements)
        inner = spec_source(spec.args[0], indent, statements)
        if len(statements) != before:
            raise ParamsymUsageError(
                "a named layer inside a repeat has no one weight to share with a tie",
                hint="name a layer outside the repeat",
            )
        return f"nn.Sequential(*[{inner} for _ in range({python_literal(int(spec.repeat))})])"
    parts = []
    nested = any(isinstance(a, Spec) for a in spec.args)
    collapse = spec.cls.startswith("nn.")
    for arg in spec.args:
        parts.append(
            spec_source(arg, indent + 1, statements)
            if isinstance(arg, (Spec, Shared, Tied))
            else _literal(arg, collapse)
        )
    defaults = class_defaults(spec.cls)
    for key, value in spec.kwargs.items():
        if key in defaults and _literal(value, collapse) == _literal(defaults[key], collapse):
            continue
        parts.append(  # a tuple to a class of the written file stays a tuple (`q=(3, 3, 3)`): it may iterate it
            f"{keyword_name(key)}="
            f"{spec_source(value, indent + 1, statements) if isinstance(value, Spec) else _literal(value, collapse)}"
        )
    if not nested:
        return f"{class_name(spec.cls)}({', '.join(parts)})"
    inner = "".join(f"{pad}    {part},\n" for part in parts)
    return f"{class_name(spec.cls)}(\n{inner}{pad})"


@cache
def helper_sources() -> dict[str, str]:
    """The source of each class and function of torch_modules.py, read as text: writing source needs no
    PyTorch (importing torch_modules would import it)."""
    text = resources.files("paramsym.frameworks").joinpath("torch_modules.py").read_text(encoding="utf-8")
    return {
        node.name: ast.get_source_segment(text, node) + "\n"
        for node in ast.parse(text).body
        if isinstance(node, (ast.ClassDef, ast.FunctionDef))
    }


def _module_class(node) -> bool:
    return isinstance(node, ast.ClassDef) and any(ast.unparse(base) == "nn.Module" for base in node.bases)


@cache
def helper_classes() -> tuple[str, ...]:
    """paramsym's own modules, which a kind's TorchSpec may name besides torch.nn's: every nn.Module subclass
    of torch_modules.py, in its order (a new one needs no list to be added to)."""
    return tuple(name for name, text in helper_sources().items() if _module_class(ast.parse(text).body[0]))


def uses_functional(name: str) -> bool:
    """Whether the code of the class or function `name` of torch_modules.py uses `F` (torch.nn.functional)."""
    return uses(name, "F")


def uses(name: str, imported: str) -> bool:
    """Whether the code of the class or function `name` of torch_modules.py uses the name `imported`."""
    return any(
        isinstance(node, ast.Name) and node.id == imported for node in ast.walk(ast.parse(helper_sources()[name]))
    )


# What torch_modules.py imports besides torch and nn, for the helpers copied out of it that use it
_IMPORTS = {"math": "import math", "OrderedDict": "from collections import OrderedDict"}


def _helpers_used(spec) -> list[str]:
    """The helpers (classes of torch_modules) that the spec builds, with the functions and classes of
    torch_modules they use in turn, in the order of torch_modules.py."""
    sources = helper_sources()
    seen: set[str] = set()

    def visit(value):
        if isinstance(value, (Shared, Tied)):
            visit(value.spec)
        elif isinstance(value, Spec):
            if value.cls in sources:
                seen.add(value.cls)
            for item in (*value.args, *value.kwargs.values()):
                visit(item)

    visit(spec)
    todo = list(seen)
    while todo:  # what a helper's own code names (GroupedQueryAttention: rotary, which uses _rotate_half)
        for node in ast.walk(ast.parse(sources[todo.pop()])):
            if isinstance(node, ast.Name) and node.id in sources and node.id not in seen:
                seen.add(node.id)
                todo.append(node.id)
    return [name for name in sources if name in seen]


def torch_source(network: Network, **values) -> str:
    """A Python file that builds the model with PyTorch alone (writing it needs no PyTorch)."""
    spec = network_spec(network, **values)
    statements: list[str] = []
    body = spec_source(spec, 1, statements)
    used = _helpers_used(spec)
    sources = helper_sources()
    helpers = "\n\n".join(sources[name] for name in used)
    # lines 1 and 2 are the exporter's: a comment there could declare the file's encoding (PEP 263)
    lines = [
        '"""PyTorch model written by paramsym from the program below."""',
        "# The program:\n#",
        comment_lines(network.source),
        *(line for imported, line in _IMPORTS.items() if any(uses(name, imported) for name in used)),
        "import torch",
        "from torch import nn",
    ]
    if any(uses_functional(name) for name in used):
        lines.append("from torch.nn import functional as F")
    text = "\n".join(lines) + "\n\n\n"
    if helpers:
        text += helpers.rstrip() + "\n\n\n"
    text += "def build_model() -> nn.Module:\n" + "".join(f"    {line}\n" for line in statements)
    text += f"    return {body}\n"
    dims = network.input_shape.dims()
    if dims is not None and all(d is not None for d in dims):
        num = Numbers(network, values)
        *spatial, channels = num.each(dims)
        shape = ", ".join(python_literal(v) for v in (1, channels, *spatial))
        if takes_token_ids(network):  # token ids: whole numbers
            shape += ", dtype=torch.long"
        text += (
            f'\n\nif __name__ == "__main__":\n    model = build_model()\n'
            f"    y = model(torch.zeros({shape}))\n"
            f"    print(tuple(y.shape), sum(p.numel() for p in model.parameters()))\n"
        )
    return text
