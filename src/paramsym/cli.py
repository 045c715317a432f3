"""The `paramsym` command: a thin click layer over the API.

`main(argv) -> int` never lets a user's mistake become a traceback: paramsym's
errors and click's usage errors are printed as one message and give status 2.
"""
from __future__ import annotations

import os
import re
import sys
import traceback
from fractions import Fraction

import click

from . import __version__
from .errors import ParamsymError, ParamsymUsageError
from .explain import explain as explain_network
from .network import CONVENTIONS, DTYPES, Network, parse
from .printers import FORMATS, print_table, render
from .syntax import MAX_SOURCE_CHARS

_COUNT = re.compile(r"^\s*(\d[\d_]*(?:\.\d+)?)\s*([kMG]?)\s*$")
_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9}


def parse_count(text: str, what: str) -> int:
    """A count from the command line: `500000`, `1_000_000`, `25.6M`, `5k`."""
    match = _COUNT.match(text)
    if not match or len(match.group(1)) > 40:
        raise ParamsymUsageError(f"{what} must be a whole number such as 64, 1_000_000 or 25.6M, not {text!r}")
    value = Fraction(match.group(1).replace("_", "")) * _SUFFIX[match.group(2)]
    if value.denominator != 1:
        raise ParamsymUsageError(f"{what} must be a whole number, not {text!r} (= {value})")
    return int(value)


def parse_assignments(assignments) -> dict[str, int]:
    values = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ParamsymUsageError(f"--set takes NAME=VALUE, such as --set C=64, not {item!r}")
        values[name] = parse_count(value, f"the value of {name}")
    return values


def read_program(argument: str) -> str:
    """PROGRAM is a file, `-` for standard input, or the program text itself."""
    if argument == "-":
        return sys.stdin.read(MAX_SOURCE_CHARS + 1)
    looks_like_path = argument.endswith((".psym", ".txt")) or (
        os.sep in argument and not any(c in argument for c in "()>\n"))
    if os.path.isfile(argument):
        try:
            with open(argument, encoding="utf-8") as handle:
                return handle.read(MAX_SOURCE_CHARS + 1)
        except UnicodeDecodeError:
            raise ParamsymUsageError(f"{argument} is not a UTF-8 text file") from None
        except OSError as error:
            raise ParamsymUsageError(f"cannot read {argument}: {error.strerror}") from None
    if looks_like_path:
        raise ParamsymUsageError(f"no such file: {argument}",
                                 hint="PROGRAM is a file, '-' for standard input, or the program text itself")
    return argument


def load(program: str, assignments, convention: str = "torch") -> Network:
    network = parse(read_program(program), convention=convention)
    values = parse_assignments(assignments)
    return network.with_values(**values) if values else network


_program = click.argument("program", metavar="PROGRAM")
_set = click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE",
                    help="Give a symbol a value (overrides its let default). Repeatable.")


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
@click.option("--convention", type=click.Choice(CONVENTIONS), default="torch", show_default=True,
              help="torch: total = learnable params; keras: total adds BatchNorm running statistics.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="float32", show_default=True,
              help="Element type for the byte counts of activations and parameters.")
@click.option("--fold", is_flag=True, help="One row per top-level stage (a block, a residual, a repeat).")
def count(program, assignments, convention, fmt, dtype, fold):
    """Count parameters, state, fan-in, connections, MACs and memory of every layer."""
    network = load(program, assignments, convention).with_options(dtype=dtype)
    if fmt == "table":
        print_table(network, fold=fold)
    else:
        click.echo(render(network, fmt, fold), nl=False)


@cli.command()
@_program
@_set
def explain(program, assignments):
    """Explain step by step how each layer's count arises."""
    click.echo(explain_network(load(program, assignments)), nl=False)


def main(argv: list[str] | None = None) -> int:
    try:
        result = cli.main(args=argv, prog_name="paramsym", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except ParamsymError as error:
        click.echo(str(error), err=True)
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
    except Exception:  # noqa: BLE001 - a bug in paramsym, not a user mistake
        click.echo("internal error in paramsym (please report it):\n" + traceback.format_exc(), err=True)
        return 1
