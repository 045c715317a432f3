"""The `paramsym` command: a thin click layer over the API.

`main(argv) -> int` never lets a user's mistake become a traceback: paramsym's
errors and click's usage errors are printed as one message and give status 2.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback

import click

from . import __version__, expansion
from .algebra.solve import parse_budget, solve
from .algebra.views import VIEWS, formula, generic, marginal, per_layer, view
from .core.quantities import budgets, viewable
from .core.setup import (
    ATTENTION,
    FORMAT_HELP,
    OPTIMIZERS,
    PRECISIONS,
    RECOMPUTE,
    RUN_OPTION_NAMES,
    Setup,
    build_setup,
)
from .errors import ParamsymError, ParamsymLimitError, ParamsymUsageError
from .language.assignments import parse_assignments
from .language.syntax import MAX_SOURCE_CHARS
from .model.network import CONVENTIONS, Network, parse
from .render.explain import explain as explain_network
from .render.explain import wrap_lines
from .render.printers import FORMATS, SWEEP_FORMATS, grouped, human, print_table, render_chunks, render_sweep

_PROGRAM_IS = "PROGRAM is a file, '-' for standard input, or the program text itself"
# UTF-8 takes at most 4 bytes a character: more bytes than this are surely too many characters
_MAX_SOURCE_BYTES = 4 * MAX_SOURCE_CHARS + 4


def read_program(argument: str) -> str:
    """PROGRAM is a file, `-` for standard input, or the program text itself."""
    if argument == "-":
        return _read_stdin()
    if os.path.isdir(argument):
        raise ParamsymUsageError(f"{argument} is a directory; {_PROGRAM_IS}")
    looks_like_path = argument.endswith((".psym", ".txt")) or (
        os.sep in argument and not any(c in argument for c in "()>\n")
    )
    if os.path.exists(argument) and (looks_like_path or os.path.isfile(argument)):
        return _read_file(argument)
    if looks_like_path:
        raise ParamsymUsageError(f"no such file: {argument}", hint=_nearest_file(argument) or _PROGRAM_IS)
    return argument


def _nearest_file(path: str) -> str | None:
    """`did you mean examples/resnet18.psym?` for a mistyped file whose folder exists."""
    import difflib

    folder, name = os.path.split(path)
    try:
        names = [n for n in os.listdir(folder or ".") if os.path.isfile(os.path.join(folder or ".", n))]
    except OSError:
        return None
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return f"did you mean {os.path.join(folder, close[0])}?" if close else None


def _read_file(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > _MAX_SOURCE_BYTES:  # surely too many characters: say so without reading it
                raise ParamsymLimitError(
                    f"{path} is {size:,} bytes long, more than the {MAX_SOURCE_CHARS:,} characters a program may have"
                )
            data = handle.read(_MAX_SOURCE_BYTES + 1)  # bounded: a device or a pipe has no size
    except OSError as error:
        raise ParamsymUsageError(f"cannot read {path}: {error.strerror}") from None
    return _decode(data, path)


def _read_stdin() -> str:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text stream in place of standard input (embedding, tests)
        text = sys.stdin.read(MAX_SOURCE_CHARS + 2)
        if len(text) > MAX_SOURCE_CHARS + 1:
            raise ParamsymLimitError(
                f"standard input holds more than {MAX_SOURCE_CHARS:,} characters; "
                f"at most {MAX_SOURCE_CHARS:,} are accepted"
            )
        data = text.encode("utf-8", "surrogatepass")
    else:
        data = buffer.read(_MAX_SOURCE_BYTES + 1)
    return _decode(data, "standard input")


def _decode(data: bytes, where: str) -> str:
    """Program text from bytes: UTF-8, with a byte order mark skipped; binary data and too much text
    are refused, and the message never shows the bytes themselves."""
    nul = data.find(b"\0")
    if nul >= 0:
        raise ParamsymUsageError(
            f"{where} holds binary data (a NUL byte at byte {nul + 1:,}), not program text", hint=_PROGRAM_IS
        )
    if len(data) > _MAX_SOURCE_BYTES:
        raise ParamsymLimitError(
            f"{where} holds more than {MAX_SOURCE_CHARS:,} characters; at most {MAX_SOURCE_CHARS:,} are accepted"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ParamsymUsageError(
            f"{where} is not UTF-8 text (byte {error.start + 1:,} is not UTF-8)", hint="save the program as UTF-8 text"
        ) from None
    text = text[1:] if text.startswith("\ufeff") else text  # the byte order mark some editors write
    if len(text) > MAX_SOURCE_CHARS:
        raise ParamsymLimitError(f"{where} holds {len(text):,} characters; at most {MAX_SOURCE_CHARS:,} are accepted")
    return text


def load(
    program: str, assignments, convention: str = "torch", *, unknowns=(), option: str = "", setup: Setup | None = None
) -> Network:
    """The network of PROGRAM with the --set values, run as `setup` says; `unknowns` are the symbols that
    `option` (--for, --grid) gives values to, which --set may not give too."""
    network = parse(read_program(program), convention=convention)
    if setup is not None:
        network = network.with_options(setup=setup)
    _LOADED[:] = [network]
    values = parse_assignments(assignments, network.symbols)
    for name in unknowns:
        if name in values:
            raise ParamsymUsageError(
                f"--set {name}=... gives a value to {name}, which {option} {name} asks for",
                hint=f"leave out --set {name}=...",
            )
    if values:
        network = _LOADED[0] = network.with_values(**values)
    return network


# The network of the command, so that a number too large found while printing is shown at its layer
_LOADED: list[Network] = []


def _emit(text: str, output: str | None, done: str) -> None:
    """Print `text`, or write it to `output` and say so."""
    if not output:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise ParamsymUsageError(f"cannot write {output}: {error.strerror}") from None
    click.echo(done)


_program = click.argument("program", metavar="PROGRAM")


def _run_options(function):
    """How the network is run (core/setup.py): number formats, training, batch, devices. The command gets
    them as one `setup` argument."""
    options = [
        click.option(
            "--dtype",
            metavar="FORMAT",
            help="One number format for weights, KV cache and activations (shorthand for the three below): "
            "float32 (the default), bfloat16, float16, int8, or any FORMAT.",
        ),
        click.option("--weights", metavar="FORMAT", help=f"Format of the weights: {FORMAT_HELP}."),
        click.option("--kv", metavar="FORMAT", help="Format of the KV cache."),
        click.option("--activations", metavar="FORMAT", help="Format of the activations."),
        click.option("--train", is_flag=True, help="Count the memory and compute of training."),
        click.option(
            "--optimizer", type=click.Choice(OPTIMIZERS), help="Training: the optimizer whose states are kept."
        ),
        click.option(
            "--precision",
            type=click.Choice(PRECISIONS),
            help="Training: fp32; mixed-bf16 or mixed-fp16 (16-bit weights and gradients, fp32 master weights "
            "and states); bf16 (everything in bf16).",
        ),
        click.option(
            "--recompute", type=click.Choice(RECOMPUTE), help="Training: activation recomputation (checkpointing)."
        ),
        click.option(
            "--attention",
            type=click.Choice(ATTENTION),
            help="math (what FlopCounterMode counts: every query-key pair) or fused (a fused causal kernel: "
            "only the unmasked pairs, no T x T scores kept).",
        ),
        click.option("--batch", metavar="N|NAME", help="Sequences (or images) per step: a number or a symbol."),
        click.option("--gpus", metavar="N|NAME", help="Devices the training is spread over (data parallel x tp x pp)."),
        click.option("--zero", type=click.IntRange(0, 3), help="ZeRO stage 0-3 (DeepSpeed's rules)."),
        click.option("--tp", type=click.IntRange(1), help="Tensor-parallel degree (Megatron's rules)."),
        click.option("--pp", type=click.IntRange(1), help="Pipeline-parallel degree."),
        click.option(
            "--device",
            metavar="NAME|FLOPS,BW[,MEM]",
            help="For roofline times: h100, h100-pcie, h200, a100, a100-40gb, l4, rtx4090, v100, t4, mi300x, or "
            "peak FLOP/s, bytes/s and memory such as 989.4e12,3.35e12,80GB.",
        ),
        click.option("--tokens", metavar="N|NAME", help="Training tokens, for training totals and time (1T)."),
        click.option("--mfu", metavar="FRACTION", help="Fraction of the device's peak a training run reaches (0.4)."),
    ]
    for option in reversed(options):
        function = option(function)

    def wrapper(**kwargs):
        chosen = {name: kwargs.pop(name) for name in _RUN_OPTION_NAMES}
        return function(setup=build_setup(**chosen), **kwargs)

    wrapper.__name__, wrapper.__doc__ = function.__name__, function.__doc__
    wrapper.__click_params__ = function.__click_params__  # type: ignore[attr-defined]
    del function.__click_params__  # type: ignore[attr-defined]
    return wrapper


_RUN_OPTION_NAMES = RUN_OPTION_NAMES


_set = click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="Give a symbol a value (overrides its let default). Repeatable.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="paramsym")
def cli():
    """Exact, symbolic parameter counts, shapes and MACs of neural networks.

    PROGRAM is a file, '-' for standard input, or the program text itself,
    e.g.  paramsym count "conv3x3(32->64, bias) > pool > conv5x5(->40)"
    """


@cli.command()
@_program
@_set
@click.option(
    "--convention",
    type=click.Choice(CONVENTIONS),
    default="torch",
    show_default=True,
    help="torch: total = learnable params; keras: total adds BatchNorm running statistics.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@_run_options
@click.option(
    "--fold/--all",
    " /--no-fold",
    "fold",
    default=None,
    help="One row per top-level stage (a block, a residual, a repeat), or one per layer. "
    "The table folds by default beyond 300 layers.",
)
@click.option("--plot", metavar="FILE", help="Also draw the parameters per layer (.png, .svg, .pdf; needs matplotlib).")
def count(program, assignments, convention, fmt, setup, fold, plot):
    """Count parameters, state, fan-in, connections, MACs and memory of every layer."""
    network = load(program, assignments, convention, setup=setup)
    if plot:
        from .render.plots import plot_layers

        plot_layers(network, plot)
    if fmt == "table":
        print_table(network, fold=fold)
    else:
        for chunk in render_chunks(network, fmt, fold):
            click.echo(chunk, nl=False)


@cli.command()
@_program
@_set
@_run_options
def explain(program, assignments, setup):
    """Explain step by step how each layer's count arises."""
    text = explain_network(load(program, assignments, setup=setup))
    if _terminal_width():  # on a terminal, wrapped at spaces rather than by the terminal within words
        text = wrap_lines(text, _terminal_width())
    click.echo(text, nl=False)


def _terminal_width(stream=None) -> int:
    """The width of the terminal that `stream` (standard output) is, or 0 when it is no terminal (piped, a file)."""
    try:
        if not (stream or sys.stdout).isatty():
            return 0
    except (AttributeError, ValueError, OSError):
        return 0
    return shutil.get_terminal_size().columns


def _on_option(choices: tuple[str, ...], what: str):
    """`--on QUANTITY`, its choices listed in the help (wrapped) rather than as one unbreakable metavar."""
    return click.option(
        "--on",
        type=click.Choice(choices),
        metavar="QUANTITY",
        default="params",
        show_default=True,
        help=f"{what} One of: {', '.join(choices)}.",
    )


@cli.command("solve")
@_program
@click.option(
    "--for", "unknown", metavar="NAME", help="The unknown symbol (may be left out when the program has only one)."
)
@click.option(
    "--budget",
    required=True,
    metavar="N",
    help="The budget: 500000, 5M, 7B, 4Ki; bytes (16GB, 80GiB) for an --on in bytes.",
)
@click.option("--at-least", "at_least", is_flag=True, help="The smallest value that reaches the budget instead.")
@click.option("--exact", is_flag=True, help="Every value for which the total equals the budget.")
@_on_option(
    budgets(),
    "What the budget limits: params, active (params one position goes through), total (params + state), macs, "
    "kv_cache (elements), the *_bytes and memory in bytes.",
)
@_set
@_run_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def solve_command(program, unknown, budget, at_least, exact, on, assignments, setup, fmt):
    """Solve for an unknown under a budget, with exact integer arithmetic."""
    if at_least and exact:
        raise ParamsymUsageError("--at-least and --exact cannot be used together")
    network = load(program, assignments, unknowns=[unknown.strip()] if unknown else [], option="--for", setup=setup)
    unknown = unknown or _only_unknown(network, assignments)
    mode = "at-least" if at_least else "exact" if exact else "at-most"
    solution = solve(network, unknown, parse_budget(budget, on), on=on, mode=mode)
    if fmt == "json":
        click.echo(json.dumps(solution.to_dict(), indent=None))
    else:
        click.echo(solution.describe(), nl=False)


def _only_unknown(network: Network, assignments) -> str:
    """The symbol `solve` is for when --for is left out: the program's only symbol that --set leaves free."""
    given = {text.partition("=")[0].strip() for text in assignments}
    free = [name for name in network.symbols if name not in given]
    if len(free) == 1:
        return free[0]
    if not free:
        raise ParamsymUsageError(
            "solve needs a symbol to solve for, and the program has none left",
            hint="write a size as a symbol (C where it says 64) and give --for C",
        )
    raise ParamsymUsageError(
        f"which symbol? the program has {len(free)}: {', '.join(free)}", hint=f"add --for {free[0]} (or another)"
    )


@cli.command("sweep")
@_program
@click.option(
    "--grid",
    "grids",
    multiple=True,
    required=True,
    metavar="NAME=VALUES",
    help="Values of a symbol: 16:256:16 (start:stop:step, stop included), 3,5,7 or 64. Repeatable.",
)
@click.option("--budget", metavar="N", help="Mark the points whose --on quantity is within N.")
@_on_option(budgets(), "What each point shows first, and what --budget and --plot use.")
@_set
@click.option("--convention", type=click.Choice(CONVENTIONS), default="torch", show_default=True)
@_run_options
@click.option("--format", "fmt", type=click.Choice(SWEEP_FORMATS), default="table", show_default=True)
@click.option("--limit", default=40, show_default=True, help="Rows shown in the table.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write to FILE.")
@click.option("--plot", metavar="FILE", help="Also draw --on against the first grid symbol (.png, .svg, .pdf).")
def sweep_command(program, grids, budget, on, assignments, convention, setup, fmt, limit, output, plot):
    """Evaluate the totals at every point of a grid of symbol values."""
    from .algebra.sweeps import parse_grid, sweep  # NumPy is imported only here

    grid: dict = {}
    for text in grids:
        name, values = parse_grid(text)
        if name in grid:
            raise ParamsymUsageError(
                f"--grid {name}=... is given twice; give all the values of {name} in one --grid, such as {name}=3,5,7"
            )
        grid[name] = values
    network = load(program, assignments, convention, unknowns=list(grid), option="--grid", setup=setup)
    result = sweep(network, grid, on=on, budget=parse_budget(budget, on) if budget else None)
    if plot:
        from .render.plots import plot_sweep

        plot_sweep(result, plot)
    _emit(render_sweep(result, fmt, limit), output, f"{result.size:,} points written to {output}")


@cli.command("formula")
@_program
@_on_option(viewable(), "The total to show.")
@click.option("--view", "how", type=click.Choice(VIEWS), default="expanded", show_default=True)
@click.option("--by", metavar="NAME", help="The symbol to collect by (--view collected).")
@click.option("--diff", "by_symbol", metavar="NAME", help="Also the derivative by NAME: what one more costs.")
@_set
@_run_options
def formula_command(program, on, how, by, by_symbol, assignments, setup):
    """Show a total as a formula: expanded, factored, collected, per layer or generic."""
    network = load(program, assignments, setup=setup)
    expr = formula(network, on)
    evaluator = network.evaluator()

    def with_value(e):
        shown = human(e)
        if e.free_symbols and evaluator.has_values_for(e):
            shown += f" = {grouped(evaluator.integer(e))}"
        return shown

    if how == "per-layer":
        for path, share in per_layer(network, on):
            click.echo(f"{path}: {with_value(share)}")
        click.echo(f"total: {with_value(expansion.expand(expr))}")
    elif how == "generic":
        for path, template, values, count in generic(network):
            where = ", ".join(f"{s} = {human(v)}" for s, v in values.items())
            click.echo(f"{path}: {human(template)}  with {where}  ->  {with_value(count)}")
    else:
        click.echo(f"{on} = {with_value(view(expr, how, by, network))}")
    if by_symbol:
        m = marginal(network, by_symbol, on)
        click.echo(f"d {on} / d {by_symbol} = {human(m.derivative)}")
        if m.one_more is not None:
            click.echo(
                f"at {by_symbol} = {m.at}: the derivative is {human(m.derivative_at)}; "
                f"one more ({by_symbol} = {m.at + 1}) costs exactly {grouped(m.one_more)}"
            )


@cli.command("latex")
@_program
@_on_option(viewable(), "The total to typeset.")
@click.option(
    "--symbol",
    "names",
    multiple=True,
    metavar="NAME=LATEX",
    help="How to typeset a symbol, e.g. --symbol 'C_in=C_{\\mathrm{in}}'. Repeatable.",
)
@click.option("--group-digits", is_flag=True, help="Group digits as 18{,}496.")
@click.option("--standalone", is_flag=True, help="A complete document (article, amsmath, booktabs).")
@_set
@_run_options
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write to FILE.")
def latex_command(program, on, names, group_digits, standalone, assignments, setup, output):
    """LaTeX for a paper: the total, the per-layer derivation and a booktabs table."""
    from .render.typeset import parse_names
    from .render.typeset import render as render_latex_document

    network = load(program, assignments, setup=setup)
    text = render_latex_document(
        network, on=on, names=parse_names(names), group_digits=group_digits, standalone=standalone
    )
    _emit(text, output, f"written to {output}")


@cli.command("export")
@_program
@click.option("--to", "target", type=click.Choice(["torch", "keras"]), default="torch", show_default=True)
@_set
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write to FILE.")
def export_command(program, target, assignments, output):
    """Write Python source that builds the network with PyTorch or Keras."""
    network = load(program, assignments)
    if target == "torch":
        from .frameworks.export import torch_source

        text = torch_source(network)
    else:
        from .frameworks.keras_export import keras_source

        text = keras_source(network)
    _emit(text, output, f"written to {output}")


@cli.command("import")
@click.argument("model", metavar="MODULE:CALLABLE | CONFIG.json")
@click.option(
    "--input",
    "input_shape",
    metavar="HxWxC",
    help="Input shape, channels last; a language model's sequence length T (from a config.json: its context "
    "if not given).",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write to FILE.")
@click.option("--flat", is_flag=True, help="One stage after another, as traced: no def blocks, no repeats.")
@click.option(
    "--path",
    "paths",
    multiple=True,
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Also look for MODULE in DIR (after the installed packages). Repeatable; "
    "the current directory only if given: --path .",
)
def import_command(model, input_shape, output, flat, paths):
    """Write the program of a PyTorch model, e.g. torchvision.models:resnet18, or of the Hugging Face model a
    config.json describes (or a folder that holds one; transformers builds it on the meta device, without
    weights). Blocks that recur are written once as `def` blocks, runs of equal stages as `(SEQ) * n`.

    MODULE:CALLABLE imports MODULE and calls CALLABLE: it runs their Python code, with your rights. Use it on
    trusted code only. A config.json is read as JSON only."""
    import importlib

    from .frameworks.export import require_torch
    from .frameworks.hf_config import from_config, is_config_path
    from .frameworks.importer import from_torch

    if is_config_path(model):
        _emit(from_config(model, input_shape), output, f"written to {output}")
        return
    if input_shape is None:
        raise ParamsymUsageError(
            "give the model's input shape: --input 224x224x3 (a language model: --input T)",
            hint="a config.json needs none: its context is the default",
        )
    # the current directory is not searched unless asked (a json.py or torch.py there must not replace the
    # real module), and directories asked for come after the installed packages, for the same reason
    drop_implicit_cwd()
    sys.path.extend(os.path.abspath(path) for path in paths if os.path.abspath(path) not in sys.path)
    require_torch("paramsym import")  # before the model's module, which would fail on `import torch` itself

    module_name, sep, attribute = model.partition(":")
    if not sep or not module_name or not attribute:
        raise ParamsymUsageError(
            f"give the model as MODULE:CALLABLE, such as torchvision.models:resnet18, or a config.json, not {model!r}"
        )
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        hint = None
        if isinstance(error, ModuleNotFoundError) and not paths and os.path.exists(module_name.split(".")[0] + ".py"):
            hint = f"the current directory is not searched: add --path . to import {module_name.split('.')[0]}.py"
        raise ParamsymUsageError(f"cannot find {model}: {error}", hint=hint) from None
    try:
        network = factory() if callable(factory) else factory
    except Exception as error:  # the user's model code, not paramsym's
        raise ParamsymUsageError(f"calling {model}() failed: {type(error).__name__}: {error}") from None
    if not hasattr(network, "named_modules"):
        raise ParamsymUsageError(f"{model} gives a {type(network).__name__}, not a torch.nn.Module")
    _emit(from_torch(network, input_shape, flat=flat), output, f"written to {output}")


def drop_implicit_cwd() -> None:
    """Remove the current directory that `python -m paramsym` puts first on sys.path (Python does, unless
    -P or PYTHONSAFEPATH), so that no module of the directory one happens to be in replaces an installed one
    imported later (torch, by `import` and `export`). The `paramsym` script never has it."""
    if _DROPPED:
        return  # once: what is first now was put there on purpose (PYTHONPATH)
    _DROPPED.append(True)
    if (
        sys.path
        and not getattr(sys.flags, "safe_path", False)
        and (sys.path[0] == "" or os.path.abspath(sys.path[0]) == os.getcwd())
        and getattr(sys.modules.get("__main__"), "__package__", None) == "paramsym"
    ):
        del sys.path[0]


_DROPPED: list = []


def main(argv: list[str] | None = None) -> int:
    _LOADED.clear()
    try:
        result = cli.main(args=argv, prog_name="paramsym", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except ParamsymError as error:
        if _LOADED:
            try:
                error = _LOADED[0].locate(error)
            except ParamsymError:
                pass
        click.echo(error.format(_terminal_width(sys.stderr)), err=True)
        return 2
    except click.exceptions.UsageError as error:
        error.show()
        return 2
    except click.exceptions.Exit as error:
        return error.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except BrokenPipeError:
        return 1
    except Exception:  # a bug in paramsym, not a user mistake
        click.echo("internal error in paramsym (please report it):\n" + traceback.format_exc(), err=True)
        return 1


def run() -> None:
    """The `paramsym` command (and `python -m paramsym`): `main()`, then exit at once.

    With SymPy loaded, Python's own shutdown (freeing every object it made) takes about 0.1 s, a
    quarter of a small command. Nothing the command leaves needs it: files are closed where they are
    written, and the output is flushed here."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `paramsym count ... | head`: the reader has gone
        code = code or 1
    os._exit(code)
