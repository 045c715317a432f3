"""The shape of the code: imports run one way (text -> syntax -> kinds and builder
-> network -> queries -> printers -> cli) with no cycle, no module outside
`paramsym.kinds` names a particular layer kind, and a quantity is one entry of
the registry that every output picks up."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import paramsym
from paramsym import kinds
from paramsym.frameworks import export
from paramsym.render.explain import explain

SOURCE = Path(paramsym.__file__).resolve().parent

# The stages, earliest first: a folder of src/paramsym/ per stage (docs/architecture.md), with errors and the
# expansion bounds below them all and the API and the CLI on top. A module may import its own stage or an earlier
# one (never a later one); inside a stage the cycle test keeps the order one way.
STAGES = [
    {"errors", "expansion"},
    {"language", "language.*"},
    {"core", "core.*"},
    {"kinds", "kinds.*"},
    {"model", "model.*"},
    {"algebra", "algebra.*"},
    {"frameworks", "frameworks.*"},
    {"render", "render.*"},
    {"__init__"},
    {"cli", "__main__"},
]
FOLDERS = ["language", "core", "kinds", "model", "algebra", "frameworks", "render"]


def _modules() -> dict[str, Path]:
    found = {}
    for path in SOURCE.rglob("*.py"):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> set[str]:
    """The paramsym modules an import statement reads (anywhere in the file, functions included)."""
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "paramsym" or alias.name.startswith("paramsym."):
                targets.add(alias.name.removeprefix("paramsym").lstrip(".") or "__init__")
        return targets
    if node.level == 0:
        if not (node.module or "").startswith("paramsym"):
            return targets
        base = node.module.removeprefix("paramsym").lstrip(".")
    else:
        package = module.split(".") if path.name == "__init__.py" and module != "__init__" else module.split(".")[:-1]
        if module == "__init__":
            package = []
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    for alias in node.names:
        submodule = f"{base}.{alias.name}" if base else alias.name
        if submodule in MODULES:
            targets.add(submodule)
        else:
            targets.add(base or "__init__")
    return {t if t in MODULES else t.rsplit(".", 1)[0] for t in targets}


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _resolve(module, path, node)
        graph[module] = edges - {module}
    return graph


def _stage(module: str) -> int:
    for number, stage in enumerate(STAGES):
        if module in stage or any(s.endswith(".*") and module.startswith(s[:-1]) for s in stage):
            return number
    raise AssertionError(f"paramsym.{module} is in no stage of tests/test_architecture.py: add it")


def test_every_module_has_a_stage():
    for module in MODULES:
        _stage(module)


def test_the_package_is_the_stage_folders():
    """src/paramsym/ holds the stage folders, errors and expansion at the bottom, the API and the CLI: a new
    module goes into the folder of its stage."""
    top = sorted(p.name for p in SOURCE.iterdir() if p.name != "__pycache__")
    assert top == sorted([*FOLDERS, "__init__.py", "__main__.py", "cli.py", "errors.py", "expansion.py"])
    for folder in FOLDERS:
        assert (SOURCE / folder / "__init__.py").is_file(), folder


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(module: str):
        state[module] = 1
        trail.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = trail[trail.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        trail.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_imports_run_one_way():
    for module, targets in _graph().items():
        for target in targets:
            assert _stage(target) <= _stage(module), f"paramsym.{module} imports the later paramsym.{target}"


def test_the_cycle_check_sees_imports_inside_functions(tmp_path):
    # a lazy import is still an import: the walk covers function bodies
    path = MODULES["model.network"]
    lazy = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)]
    assert lazy and all(_resolve("model.network", path, node) <= set(MODULES) for node in lazy)
    code = ast.parse("def f():\n    from ..render.printers import render\n")
    inner = next(node for node in ast.walk(code) if isinstance(node, ast.ImportFrom))
    assert _resolve("model.network", path, inner) == {"render.printers"}
    assert _stage("render.printers") > _stage("model.network")


# ---- no kind outside its module ---------------------------------------------------------

# Layer names that are also plain words of messages ("the first branch", "channels last"): a message may
# use the word, so they are not taken for the layer.
_PLAIN_WORDS = {"first", "last"}


def _kind_words() -> set[str]:
    words = set()
    for kind in kinds.KINDS:
        words |= set(kind.names) | set(kind.suggestions) | {kind.key}
        if kind.pattern is not None:
            words |= set(re.findall(r"[a-z]+", kind.pattern.pattern.split("(?:")[0]))
    return {w for w in words if w} - _PLAIN_WORDS


# String constants outside paramsym.kinds that may name a layer, with the reason. Anything else fails.
ALLOWED = {
    ("frameworks.torch_modules", "conv"): "timm's names (conv1, pool1, ...) in GCViT's global query generator",
    ("frameworks.torch_modules", "pool"): "timm's names (conv1, pool1, ...) in GCViT's global query generator",
    ("language.syntax", "join layers with '>', e.g. conv3x3(3->16) > relu"): "an example in a syntax-error hint",
    (
        "language.syntax",
        "the program has no network: after the statements, write the layers, e.g. input(32x32x3) > conv3x3(->16)",
    ): "an example in a syntax-error hint",
    (
        "language.syntax",
        "the language has no strings; names are written bare, e.g. conv3x3(3->16)",
    ): "an example in a syntax-error hint",
    ("model.builder", "(c) = conv3x3(->c) ... and call "): "an example in the hint for a block given channels",
    ("frameworks.importer", "_attn_implementation"): "transformers' config field (eager attention on meta)",
    (
        "frameworks.importer",
        "transpose",
    ): "PyTorch's tensor method x.transpose(...), which the importer reads as a layout",
    ("cli", "tokens"): "the --tokens option (training tokens), not the layer",
    ("cli", "--tokens"): "the --tokens option (training tokens), not the layer",
    ("core.setup", "tokens"): "the --tokens option (training tokens) that build_setup reads, not the layer",
    ("cli", "Training tokens, for training totals and time (1T)."): "the --tokens option's help",
    ("core.compute", "--tokens and a sequence input"): "what train_flops_total needs: the --tokens option",
    ("core.compute", "--tokens, --device and --mfu"): "what train_seconds needs: the --tokens option",
    ("core.compute", "(training on the --tokens)"): "the summary line of train_flops_total: the --tokens option",
    ("core.compute", "(6 x active parameters x tokens, for comparison)"): "the summary line of 6ND (training tokens)",
    ("core.compute", " tokens: "): "explain's sentence on the training tokens (--tokens), not the layer",
    ("core.compute", " parameters x tokens) is "): "explain's 6ND sentence (training tokens), not the layer",
    ("core.serving", "tokens per second"): "generated text per second (the serving quantity), not the layer",
    ("core.serving", "tokens_per_second"): "the serving quantity's name, not the layer",
    ("core.serving", "tokens/s"): "the serving quantity's title, not the layer",
    ("render.printers", " tokens"): "the count's FLOPs line: training tokens (--tokens), not the layer",
    ("render.printers", " tokens/s"): "the count's decode line: generated tokens a second, not the layer",
    ("render.printers", "tokens_per_second"): "the serving quantity's name, not the layer",
}


def _strings(path: Path):
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.value


# Modules that write whole programs in a model family's layout, and so name kinds by design.
WRITERS = {
    "frameworks.hf_import": "writes Hugging Face models and torchvision's ViT in their families' layouts; each "
    "written program is counted and compared with the model before it is returned",
    "frameworks.hiera_import": "writes timm's Hiera and HieraDet in their layouts (their tokens are reordered and "
    "their positions resized in forward); each written program is compared with the model before it is returned",
}


def test_no_module_outside_the_kinds_names_a_kind():
    words = _kind_words()
    assert {"conv", "dense", "bn", "relu", "maxpool"} <= words
    found = []
    for module, path in MODULES.items():
        if module == "kinds" or module.startswith("kinds.") or module in WRITERS:
            continue
        for text in _strings(path):
            named = {w for w in re.findall(r"[a-z][a-z0-9]*", text) if w in words}
            if named and (module, text) not in ALLOWED:
                found.append(f"paramsym.{module}: {text!r} names {sorted(named)}")
    assert not found, "\n".join(found)


# ---- the registry ---------------------------------------------------------------------------


def test_every_kind_is_reachable_by_its_names():
    for kind in kinds.KINDS:
        for name in (*kind.names, *kind.suggestions):
            assert kinds.lookup(name)[0] is kind, name


def test_every_kind_answers_every_question():
    """Build one layer of every kind and ask it all that the rest of paramsym asks."""
    programs = {
        "conv": "input(8x8x4) > conv3x3(->4, bias)",
        "dwconv": "input(8x8x4) > dwconv3x3",
        "sepconv": "input(8x8x4) > sepconv3x3(->6)",
        "deconv": "input(8x8x4) > deconv2x2(->4, stride=2)",
        "pool": "input(8x8x4) > maxpool2x2",
        "globalpool": "input(8x8x4) > gap",
        "flatten": "input(8x8x4) > flatten",
        "dense": "input(4) > dense(->3, bias)",
        "router": "input(4) > router(->3)",
        "bn": "input(8x8x4) > bn",
        "ln": "input(4) > ln",
        "gn": "input(8x8x4) > gn(groups=2)",
        "evonorm": "input(8x8x4) > evonorm(groups=2)",
        "gc": "input(8x8x4) > gc(2)",
        "resize": "input(8x8x4) > resize(5x5, bilinear)",
        "prelu": "input(8x8x4) > prelu",
        "embed": "input(8) > embed(100->4)",
        "posembed": "input(8) > embed(100->4) > posembed(8)",
        "cls": "input(8x4) > cls",
        "select": "input(8x4) > last",
        "lstm": "input(6x4) > lstm(->3, bias)",
        "gru": "input(6x4) > gru(->3, layers=2, bidirectional, last)",
        "rnn": "input(6x4) > rnn(->3)",
        "attn": "input(8x8x4) > attn(heads=2, bias)",
        "slice": "input(8x8x4) > slice(1, 3)",
        "shuffle": "input(8x8x4) > shuffle(2)",
        "space2depth": "input(8x8x4) > space2depth(2)",
        "tokenpool": "input(33x4) > tokenpool(volume=2x4x4, kernel=1x3x3, stride=1x2x2, pad=0x1x1, cls)",
        "droppath": "input(8x8x4) > droppath(0.1)",
        "adaptivepool": "input(8x8x4) > adaptiveavgpool(3)",
        "upsample": "input(8x8x4) > upsample(2)",
        "zeropad": "input(8x8x4) > zeropad(0, 1, 2, 3)",
        "eca": "input(8x8x4) > gap > eca(3)",
        "transpose": "input(8x4) > transpose",
        "rest": "input(8x4) > rest(2)",
        "prefix": "input(8x4) > prefix(2)",
        "softcap": "input(8x4) > softcap(30)",
        "untokens": "input(16x4) > untokens(4x4)",
        "botattn": "input(8x8x4) > botattn(->4, heads=2)",
        "haloattn": "input(8x8x4) > haloattn(->4, heads=2, block=4, halo=1)",
        "bat": "input(8x8x4) > bat(groups=2, block=4)",
        "lambdalayer": "input(8x8x4) > lambdalayer(->4, heads=2, head_dim=2, r=3)",
        "xca": "input(64x4) > xca(heads=2, bias)",
        "additiveattn": "input(8x8x4) > additiveattn",
        "clsattn": "input(9x4) > clsattn(heads=2, bias)",
        "talkattn": "input(16x4) > talkattn(heads=2, bias)",
        "outlook": "input(6x6x4) > outlook(heads=2, stride=2, bias)",
        "clsblock": "input(17x4) > clsblock(heads=2, hidden=6, bias, xcit, tokensnorm)",
        "fourierpos": "input(8x8x4) > fourierpos(8x8)",
        "sdpa": "input(8x8x10) > sdpa(heads=1, head_dim=3)",
        "mla": "input(8x4) > mla(heads=2, kv_rank=3, rope_dim=2, nope_dim=2, v_dim=3, q_rank=3, bias)",
        "cga": "input(8x8x4) > cga(heads=2, key_dim=2, value_dim=2, window=4, kernels=3x5)",
        "qpoolattn": "input(8x8x4) > qpoolattn(heads=2, ->8, window=4, stride=2, bias)",
        "winposembed": "input(8x8x4) > winposembed(3x3, window=4)",
        "levitattn": "input(16x4) > levitattn(heads=2, key_dim=2, value_dim=4, map=4x4, stride=2, bn, act=hardswish)",
        "ef2attn": "input(8x8x4) > ef2attn(heads=2, key_dim=2, value_dim=4, stride=2)",
        "gcstage": "input(8x8x4) > gcstage(depth=3, heads=2, window=4, mlp=2, ls)",
        "litemla": "input(8x8x4) > litemla(->6, heads=2, head_dim=2, scales=3x5, qkv_bn, bn, bias)",
    }
    for kind in kinds.KINDS:
        program = programs.get(kind.key, f"input(8x8x4) > {kind.names[0] if kind.names else kind.suggestions[0]}")
        net = paramsym.parse(program)
        layer = net.layers[-1].layer
        assert layer.kind is kind, program
        assert f"{layer.index + 1}. {layer.name}" in explain(net)
        torch_spec = kind.torch(layer, _Numbers())
        # a module of torch.nn, or one of paramsym's own (torch_modules.py) that exported source copies in
        assert torch_spec.cls.startswith("nn.") or torch_spec.cls in export.helper_classes(), (program, torch_spec)
        try:
            assert all(spec.cls[0].isupper() for spec in kind.keras(layer, _Numbers())), program
        except paramsym.ParamsymUsageError as refused:  # a kind Keras has no layer for says why
            assert "has no Keras equivalent: " in str(refused), program
        assert kind.torch_modules or kind.key in ("sepconv", "dwconv", "router"), f"{kind.key} cannot be imported"


class _Numbers:
    def __call__(self, expr) -> int:
        return int(expr)

    def each(self, values) -> tuple:
        return tuple(int(v) for v in values)


# ---- a quantity is one entry ---------------------------------------------------------------------

_NEW_QUANTITY = textwrap.dedent("""
    import json, sys
    from paramsym.core import quantities
    from paramsym.core.quantities import Quantity
    # biases: a quantity no kind knows about; its default reads the layer record
    quantities.register(Quantity("biases", "biases", default=lambda layer, counts: layer.cout if layer.bias else 0,
                                 tables=frozenset({"table", "markdown", "latex"}), summary="(one per output channel)",
                                 headline=True, budget=True), after="macs")
    from paramsym.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _run_with_new_quantity(*args) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _NEW_QUANTITY, *args],
        capture_output=True,
        text=True,
        env={"COLUMNS": "120", "PATH": ""},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


PROGRAM = "input(8x8x3) > conv3x3(->C, bias) > relu > gap > dense(->10, bias)"


def test_a_new_quantity_reaches_every_output():
    data = json.loads(_run_with_new_quantity("count", PROGRAM, "--set", "C=16", "--format", "json"))
    assert data["biases"] == {"expr": "C + 10", "value": 26}
    assert [layer["biases"]["value"] for layer in data["layers"]] == [16, 0, 0, 10]
    table = _run_with_new_quantity("count", PROGRAM, "--set", "C=16")
    assert "biases" in table.splitlines()[0] and "biases = C + 10 = 26  (one per output channel)" in table
    assert "| biases |" in _run_with_new_quantity("count", PROGRAM, "--format", "markdown", "--set", "C=16")
    csv_text = _run_with_new_quantity("count", PROGRAM, "--format", "csv", "--set", "C=16")
    assert "biases,biases_expr" in csv_text.splitlines()[0]
    solved = json.loads(
        _run_with_new_quantity("solve", PROGRAM, "--for", "C", "--budget", "100", "--on", "biases", "--format", "json")
    )
    assert solved["value"] == 90 and solved["formula"] == "C + 10"
    swept = _run_with_new_quantity("sweep", PROGRAM, "--grid", "C=1:3", "--format", "csv")
    header, first = swept.splitlines()[0].split(","), swept.splitlines()[1].split(",")
    assert header.index("biases") == header.index("macs") + 1 and first[header.index("biases")] == "11"
    assert "C + 10" in _run_with_new_quantity("formula", PROGRAM, "--on", "biases")
    latex = _run_with_new_quantity("count", PROGRAM, "--format", "latex", "--set", "C=16")
    assert "& biases \\\\" in latex and "$C + 10 = 26$" in latex


# ---- docs/architecture.md's tables are the package's ---------------------------------------------------

ARCHITECTURE = SOURCE.parents[1] / "docs" / "architecture.md"


def _table(header: str) -> list[list[set[str]]]:
    """The rows of the docs/architecture.md table under `header`, each cell as its set of `quoted` names."""
    lines = ARCHITECTURE.read_text(encoding="utf-8").splitlines()
    start = lines.index(header) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([set(re.findall(r"`([\w.]+/?)`", cell)) for cell in line.strip("|").split("|")])
    return rows


def _kind_names(kind) -> set[str]:
    """A kind's names, and for a family (conv3x3, maxpool2x2) the family's stems."""
    names = set(kind.names)
    if kind.pattern is not None:
        family = re.search(r"\(\?P<family>([^)]*)\)", kind.pattern.pattern)
        names |= set(family.group(1).split("|")) if family else set()
    return names


def test_docs_architecture_tables_match_the_package():
    # before: the kind table listed 9 of 19 modules, the stage table left out lalr and parser_cache
    stages = _table("| stage | folder | modules |")
    assert len(stages) == len(STAGES)
    for number, (row, stage) in enumerate(zip(stages, STAGES)):
        _, where, modules = row
        named = {w.removesuffix(".py").removesuffix("/") for w in where}
        assert named | {f"{n}.*" for n in named if n in FOLDERS} == stage, (number, where)
        for folder in named & set(FOLDERS):
            files = {p.stem for p in (SOURCE / folder).glob("*.py")} - {"__init__"}
            if folder == "kinds":  # the kind modules are in the kind table
                files = set(kinds._SHARED)
            assert modules == files, (folder, modules ^ files)
    # the kind table: every module of kinds/, and in its row the names of every kind it registers
    rows = {frozenset(w.removesuffix(".py") for w in row[0]): row[1] for row in _table("| module | kinds |")}
    assert set().union(*rows) == {p.stem for p in (SOURCE / "kinds").glob("*.py")} - {"__init__"}
    assert frozenset(kinds._SHARED) in rows
    for module in set().union(*rows) - set(kinds._SHARED):
        registered = importlib.import_module(f"paramsym.kinds.{module}").KINDS
        cell = rows[frozenset({module})]
        expected = set().union(*(_kind_names(kind) for kind in registered))
        assert expected <= cell, (module, expected - cell)
        for word in cell:  # a layer name in the row is one of this module's kinds
            found = kinds.lookup(word)
            assert found is None or any(found[0] is kind for kind in registered), (module, word)
