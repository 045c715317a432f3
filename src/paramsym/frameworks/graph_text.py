"""The program of a traced graph whose values do not nest into sequences and branches from one input (HRNet's
fuse layers, NASNet's cells that read the two cells before them, DPN's dual paths): every op is written once,
in the order the model computes it, and a value that a later op reads other than as the value just before it
is named (`STAGE as vN`) and read back (`@vN`, docs/language.md "Named values"). The importer writes this
only where its nested writing (`importer._structure`) would compute a value twice.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ImportRefused
from ..kinds import combinators, identity_name
from ..kinds.combinators import Merge


class SharedValue(ImportRefused):
    """The nested writing would write a layer twice: a value is shared otherwise than by branches that part
    where it is computed (the importer then writes the graph with named values)."""


_CALL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _single_call(text: str) -> bool:
    """Whether `text` is one layer call (`conv3x3(3->8)`, `relu`), which `as NAME` may follow."""
    found = _CALL.match(text)
    if found is None or found.group() in combinators.keywords():
        return False
    rest = text[found.end() :]
    if not rest:
        return True
    if rest[0] != "(":
        return False
    depth = 0
    for i, char in enumerate(rest):
        depth += char == "("
        depth -= char == ")"
        if depth == 0:
            return i == len(rest) - 1
    return False


def graph_text(ops: dict[str, Any], start: str, end: str) -> list[str]:
    """The stages from `start` (the input) to `end`, every op written once in the order of `ops` (the order
    the model computes them), the values read out of turn named."""

    def real(name: str) -> str:  # the op that gives the value (past the ops that pass a value on)
        while ops[name].kind == "skip":
            if not ops[name].inputs:
                raise ImportRefused("the model's graph has a value that no op computes")
            name = ops[name].inputs[0]
        return name

    needed, stack = set(), [real(end)]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            if name != start:
                stack.extend(real(i) for i in ops[name].inputs)
    order = [name for name in ops if name in needed and name != start and ops[name].kind != "skip"]
    if start not in needed:
        raise ImportRefused("the model's output does not depend on its input")
    # what each stage reads, and which values are read other than as the value just before
    reads = {name: [real(i) for i in ops[name].inputs] for name in order}
    named: dict[str, str] = {}
    before = start
    for name in order:
        op = ops[name]
        if not isinstance(op.kind, Merge) and op.kind != "layer":
            raise ImportRefused("the model's graph does not split into sequences and branches")
        for value in reads[name] if isinstance(op.kind, Merge) else reads[name][:1]:
            if value != before and value not in named:
                named[value] = f"v{len(named) + 1}"
        before = name
    # the input read again after other layers (CrossViT's two branches, each from the image): the identity
    # named first, as the language names no input
    stages: list[str] = [f"{identity_name()} as {named[start]}"] if start in named else []
    before = start
    for name in order:
        op = ops[name]
        if isinstance(op.kind, Merge):
            branches = [[] if value == before else [f"@{named[value]}"] for value in reads[name]]
            text = op.kind.import_text(branches)
        else:
            text = op.text
            if reads[name][0] != before:
                stages.append(f"@{named[reads[name][0]]}")
        if name in named:
            text = f"{text} as {named[name]}" if _single_call(text) else f"({text}) as {named[name]}"
        stages.append(text)
        before = name
    return stages
