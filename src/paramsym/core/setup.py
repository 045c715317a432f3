"""How a network is run, beside what it is: the number formats of its weights, KV cache and
activations, training or serving, the optimizer, the batch, how it is spread over devices, and the
device. The memory and cost quantities (core/costs) read it; the counts per layer do not.

Values given on the command line (`--weights int4:g128:fp16`, `--batch B`) are parsed here, each
error naming the option and pointing at the spot in its value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TypeAlias

import sympy

from ..errors import ParamsymUsageError
from .devices import Device
from .records import ONE

Expr: TypeAlias = sympy.Expr

# bits per stored value of each format; int4 and nf4 always come in groups with a scale each
FORMAT_BITS = {"fp32": 32, "bf16": 16, "fp16": 16, "fp8": 8, "int8": 8, "int4": 4, "nf4": 4}
# the names --dtype took before formats had groups (and torch's names for them)
ALIASES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
# a group of values shares one scale: GPTQ and AWQ's int4 groups of 128 with fp16 scales (4.125 bits a weight),
# bitsandbytes' NF4 blocks of 64 with an fp32 absmax (4.5 bits; without double quantization)
DEFAULT_GROUPS = {"int4": (128, "fp16"), "nf4": (64, "fp32")}
SCALE_FORMATS = ("fp32", "bf16", "fp16", "fp8")
FORMAT_HELP = (
    "fp32, bf16, fp16, fp8, int8, int4 or nf4; a quantized format with its group size and the format of "
    "its per-group factor as int4:g128:fp16"
)


@dataclass(frozen=True)
class Format:
    """A number format for stored values: `bits` each, and with `group`, one `scale` value per group."""

    name: str
    bits: int
    group: int | None = None
    scale: str | None = None

    @property
    def bits_per_value(self) -> Fraction:
        extra = Fraction(FORMAT_BITS[self.scale], self.group) if self.group and self.scale else Fraction(0)
        return self.bits + extra

    @property
    def text(self) -> str:
        """As it is written on the command line: fp32, int4:g128:fp16."""
        return f"{self.name}:g{self.group}:{self.scale}" if self.group else self.name

    def bytes(self, elements: Expr) -> Expr:
        """The bytes `elements` values take: whole bytes, rounded up when a value takes a fraction of one."""
        per_value = self.bits_per_value / 8
        size = elements * sympy.Rational(per_value.numerator, per_value.denominator)
        return size if per_value.denominator == 1 else sympy.ceiling(size)

    def __str__(self) -> str:
        return self.text


def parse_format(text: str, option: str) -> Format:
    """`fp32`, `bf16`, `int8`, `int4` (= int4:g128:fp16), `int4:g64:bf16`, `nf4`, `float32`."""
    given = text.strip()
    parts = given.split(":")
    name = ALIASES.get(parts[0].lower(), parts[0].lower())
    if name not in FORMAT_BITS:
        raise _located(option, given, 0, f"unknown format {parts[0]!r}", f"use {FORMAT_HELP}")
    if len(parts) == 1:
        group, scale = DEFAULT_GROUPS.get(name, (None, None))
        return Format(name, FORMAT_BITS[name], group, scale)
    if len(parts) > 3:
        at = len(":".join(parts[:3]))
        raise _located(option, given, at, "a format has at most three parts, NAME:gGROUP:SCALE", f"use {FORMAT_HELP}")
    at = len(parts[0]) + 1
    group_text = parts[1]
    if not (group_text[:1] == "g" and group_text[1:].isdigit() and int(group_text[1:]) >= 1):
        raise _located(
            option,
            given,
            at,
            f"the group size must be g and a whole number of at least 1, such as g128, not {group_text!r}",
            "write NAME:gGROUP:SCALE, such as int4:g128:fp16",
        )
    group = int(group_text[1:])
    if group > 2**20:
        raise _located(option, given, at, f"a group of {group:,} values is more than the 2^20 accepted")
    scale = DEFAULT_GROUPS.get(name, (None, "fp16"))[1] or "fp16"
    if len(parts) == 3:
        at += len(group_text) + 1
        scale = ALIASES.get(parts[2].lower(), parts[2].lower())
        if scale not in SCALE_FORMATS:
            raise _located(
                option, given, at, f"unknown factor format {parts[2]!r}", f"use one of {', '.join(SCALE_FORMATS)}"
            )
    if FORMAT_BITS[name] >= 16:
        raise _located(option, given, 0, f"{name} is not quantized: it has no groups or scales", f"write {name}")
    return Format(name, FORMAT_BITS[name], group, scale)


def _located(option: str, value: str, at: int, message: str, hint: str | None = None) -> ParamsymUsageError:
    """An error in an option's value, with the value and a caret under the spot."""
    shown = f"{option} {value}"
    caret = " " * (len(option) + 1 + at) + "^"
    return ParamsymUsageError(f"{option} {value}: {message}\n  {shown}\n  {caret}", hint=hint)


def format_named(name: str) -> Format:
    """The format of a name (no option to blame: the API's own names)."""
    return parse_format(name, "format")


FP32 = Format("fp32", 32)

OPTIMIZERS = ("adamw", "adam", "sgd", "sgd-momentum", "adafactor", "adamw-8bit")
PRECISIONS = ("fp32", "mixed-bf16", "mixed-fp16", "bf16")
RECOMPUTE = ("none", "selective", "full")
ATTENTION = ("math", "fused")
ZERO_STAGES = (0, 1, 2, 3)


@dataclass(frozen=True)
class Setup:
    """How the network is run. Sizes (batch, GPUs, tokens) may be formulas in symbols: `--batch B`
    makes B a symbol of the network, which `--set B=8` gives a value and `solve --for B` solves for."""

    weights: Format = FP32
    kv: Format = FP32
    activations: Format = FP32
    train: bool = False
    optimizer: str = "adamw"
    precision: str = "fp32"  # training: what the weights, gradients and optimizer states are kept in
    recompute: str = "none"
    attention: str = "math"  # "fused": causal attention computes (and keeps) only the unmasked pairs
    batch: Expr = ONE
    gpus: Expr = ONE
    zero: int = 0
    tp: int = 1
    pp: int = 1
    device: Device | None = None  # for the roofline times
    tokens: Expr | None = None  # training tokens, for the training time and totals
    mfu: Fraction | None = None  # the fraction of the device's peak a training run reaches

    @classmethod
    def of_dtype(cls, dtype: str) -> Setup:
        """`--dtype NAME`: one format for the weights, the KV cache and the activations."""
        f = format_named(dtype)
        return cls(weights=f, kv=f, activations=f)

    def with_(self, **changes) -> Setup:
        return replace(self, **changes)

    @property
    def dtype(self) -> str:
        """The one format of weights, KV cache and activations (its --dtype name), or "mixed"."""
        if self.weights == self.kv == self.activations:
            legacy = {v: k for k, v in ALIASES.items()}
            return legacy.get(self.weights.text, self.weights.text)
        return "mixed"

    def symbols(self) -> set:
        """The symbols the sizes are written in (`--batch B`)."""
        found: set = set()
        for value in (self.batch, self.gpus, self.tokens):
            if isinstance(value, sympy.Basic):
                found |= value.free_symbols
        return found

    def formats(self) -> dict[str, str]:
        return {"weights": self.weights.text, "kv": self.kv.text, "activations": self.activations.text}


def parse_size(text: str, option: str, units_win: bool = False) -> Expr:
    """A size on the command line: a whole number of at least 1 (`8`, `4Ki`, `1.5k`) or a formula in
    symbols (`B`, `2*B`), which become symbols of the network. `2B` and `2T` are refused: a number with
    the unit B (billion) or T (trillion), or twice a symbol? Unless `units_win`: `--tokens 1T` is a
    trillion tokens (a count of tokens is never twice a batch or a length; `2*T` is the formula)."""
    from ..errors import ParamsymError
    from ..language.syntax import UNITS, count_unit, parse_count, parse_expression

    unit = count_unit(text)
    if unit in ("B", "T") and not units_win:  # `2B`: two billion, or twice a symbol B (a batch of B)?
        number = text.strip()[:-1].strip()
        raise ParamsymUsageError(
            f"{option} {text.strip()} is ambiguous: {unit} is the unit {UNITS[unit][2]}, and a symbol's name",
            hint=f"write {number}*{unit} for the formula, or {number}{'G' if unit == 'B' else 'e12'} for the number",
        )
    if unit is not None:
        value = parse_count(text, option)
        if value < 1:
            raise ParamsymUsageError(f"{option} must be at least 1, not {text.strip()!r}")
        return sympy.Integer(value)
    try:
        value = parse_expression(text)
    except ParamsymError as error:
        raise ParamsymUsageError(
            f"{option} {text.strip()}: {error.message}", hint="give a whole number (8) or a symbol (B)"
        ) from None
    if not value.free_symbols and not (value.is_Integer and value >= 1):  # -1, 3/2, 0*B
        raise ParamsymUsageError(
            f"{option} must be a whole number of at least 1, not {text.strip()!r} (= {value})",
            hint="give a whole number (8) or a symbol (B)",
        )
    return value


# the run options of every command (cli.py's `--dtype`, `--train`, ...), as `build_setup` takes them
RUN_OPTION_NAMES = (
    "dtype",
    "weights",
    "kv",
    "activations",
    "train",
    "optimizer",
    "precision",
    "recompute",
    "attention",
    "batch",
    "gpus",
    "zero",
    "tp",
    "pp",
    "device",
    "tokens",
    "mfu",
)
_CHOICES = {"optimizer": OPTIMIZERS, "precision": PRECISIONS, "recompute": RECOMPUTE, "attention": ATTENTION}


def build_setup(**chosen) -> Setup:
    """The Setup of the run options given (the command line's, or the playground's cost panel's: option
    name -> text, None or absent when not given); each value checked, an error naming its option."""
    from .devices import parse_device, parse_fraction

    chosen = {name: chosen.get(name) for name in RUN_OPTION_NAMES}
    changes: dict = {}
    if chosen["dtype"]:  # the three formats at once
        one = parse_format(chosen["dtype"], "--dtype")
        changes.update(weights=one, kv=one, activations=one)
    for name in ("weights", "kv", "activations"):
        if chosen[name]:
            changes[name] = parse_format(chosen[name], f"--{name}")
    for name, choices in _CHOICES.items():  # (click checks them on the command line)
        if chosen[name] is not None and chosen[name] not in choices:
            raise ParamsymUsageError(f"--{name} {chosen[name]}: use one of {', '.join(choices)}")
    for name, low, high in (("zero", 0, 3), ("tp", 1, None), ("pp", 1, None)):
        value = chosen[name]
        if value is None:
            continue
        try:
            number = int(str(value).strip())
        except ValueError:
            number = None
        if number is None or number < low or (high is not None and number > high):
            within = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise ParamsymUsageError(f"--{name} must be a whole number {within}, not {str(value).strip()!r}")
        chosen[name] = number
    for name in ("optimizer", "precision", "recompute", "attention", "zero", "tp", "pp"):
        if chosen[name] is not None:
            changes[name] = chosen[name]
    for name in ("batch", "gpus", "tokens"):
        if chosen[name] is not None:
            changes[name] = parse_size(chosen[name], f"--{name}", units_win=name == "tokens")
    if chosen["device"]:
        changes["device"] = parse_device(chosen["device"])
    if chosen["mfu"]:
        changes["mfu"] = parse_fraction(chosen["mfu"], "--mfu")
    if chosen["train"]:
        changes["train"] = True
    else:
        for name in ("optimizer", "precision", "zero"):  # training alone keeps optimizer states
            if chosen[name] is not None:
                raise ParamsymUsageError(f"--{name} applies to training: add --train")
    setup = Setup().with_(**changes)
    if setup.train:
        from .training import check_setup

        check_setup(setup)
    return setup
