"""Every classification model of torchvision, imported: the rows of the table in docs/zoo.md.

Each model is built on the meta device (its parameters have shapes and no values, so even
RegNetY-128GF and ViT-H/14 take a second), imported with `paramsym.from_torch`, and compared
with torchvision: parameters, BatchNorm running statistics and the output shape.

    python tests/helpers/import_coverage.py            # print the table
    python tests/helpers/import_coverage.py --update   # write it into docs/zoo.md
    python tests/helpers/import_coverage.py --readable # lines of each import, flat and with blocks
                                                       # (paramsym.frameworks.factor), and whether every total
                                                       # and the output shape are equal, and the
                                                       # columns of the widest line
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

ZOO_MD = Path(__file__).resolve().parents[2] / "docs" / "zoo.md"
BEGIN, END = "<!-- import-coverage: begin -->", "<!-- import-coverage: end -->"


def input_shape(name: str) -> tuple:
    return (299, 299, 3) if name == "inception_v3" else (224, 224, 3)


@contextlib.contextmanager
def on_meta():
    """Modules built inside keep their parameters and buffers on the meta device (shapes, no values).
    Not `with torch.device("meta")`: RegNet computes its widths with tensors and reads them back."""
    from torch import nn

    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter(self, name, param):
        if param is not None:
            param = nn.Parameter(param.to("meta"), param.requires_grad)
        return register_parameter(self, name, param)

    def buffer(self, name, tensor, persistent=True):
        return register_buffer(self, name, None if tensor is None else tensor.to("meta"), persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = parameter, buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer


@dataclass
class Row:
    name: str
    params: int  # torchvision's
    state: int  # torchvision's BatchNorm running statistics
    outcome: str  # "exact", "mismatch" or "refused"
    detail: str = ""  # the refusal, or what differs
    text: str = ""  # the imported program


def model_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def import_one(name: str) -> Row:
    import torch
    import torchvision

    import paramsym

    with on_meta(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GoogLeNet's and Inception's notes on their initialisation
        model = torchvision.models.get_model(name, weights=None)
    params = sum(p.numel() for p in model.parameters())
    state = sum(
        b.numel() for key, b in model.named_buffers() if key.rsplit(".", 1)[-1] in ("running_mean", "running_var")
    )
    *spatial, channels = input_shape(name)
    try:
        text = paramsym.from_torch(model, input_shape(name))
    except paramsym.ParamsymError as refused:
        return Row(name, params, state, "refused", str(refused).splitlines()[0].removeprefix("usage error: "))
    values = paramsym.parse(text).evaluate()
    network = paramsym.parse(text)
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, channels, *spatial, device="meta"))
    shape = [int(d) for d in network.output_shape.dims()]
    got = (values["params"], values["state"], shape)
    want = (params, state, list(out.shape[1:]))
    if got != want:
        return Row(name, params, state, "mismatch", f"paramsym {got}, torchvision {want}", text)
    return Row(name, params, state, "exact", "", text)


def readable_row(name: str) -> tuple:
    """(lines flat, lines with blocks, every total and the output shape equal, the widest line's columns)
    of one model's import."""
    import torchvision

    import paramsym
    from paramsym.frameworks.factor import _counts

    with on_meta(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.get_model(name, weights=None)
    flat = paramsym.from_torch(model, input_shape(name), flat=True)
    text = paramsym.from_torch(model, input_shape(name))
    equal = _counts(paramsym.parse(text)) == _counts(paramsym.parse(flat))
    return flat.count("\n"), text.count("\n"), equal, widest(text)


def widest(text: str) -> int:
    """The columns of the program's longest line."""
    return max((len(line) for line in text.splitlines()), default=0)


def table(rows: list[Row]) -> str:
    exact = sum(r.outcome == "exact" for r in rows)
    lines = [
        BEGIN,
        f"{exact} of {len(rows)} import exactly (parameters, BatchNorm state and output shape equal "
        f"torchvision's), {sum(r.outcome == 'mismatch' for r in rows)} mismatch, "
        f"{sum(r.outcome == 'refused' for r in rows)} refused.",
        "",
        "| model | input | params | BN state | import |",
        "|---|---|---:|---:|---|",
    ]
    for r in rows:
        result = "exact" if r.outcome == "exact" else f"{r.outcome}: {r.detail.replace('|', '/')}"
        size = "x".join(str(v) for v in input_shape(r.name))
        lines.append(f"| {r.name} | {size} | {r.params:,} | {r.state:,} | {result} |")
    return "\n".join(lines + [END])


def section(begin: str, end: str) -> str:
    """The part of docs/zoo.md between two markers, markers included (a table that a script writes)."""
    text = ZOO_MD.read_text()
    return text[text.index(begin) : text.index(end) + len(end)]


def replace_section(begin: str, end: str, table: str) -> None:
    """Write `table` (markers included) in place of the part of docs/zoo.md between the markers."""
    text = ZOO_MD.read_text()
    ZOO_MD.write_text(text[: text.index(begin)] + table + text[text.index(end) + len(end) :])


def documented() -> str:
    return section(BEGIN, END)


def update(rows: list[Row]) -> None:
    replace_section(BEGIN, END, table(rows))


if __name__ == "__main__":
    if "--readable" in sys.argv[1:]:
        wide = 0
        for n in model_names():
            try:
                flat_lines, lines, equal, columns = readable_row(n)
            except Exception as error:  # a refused model
                print(f"{n:22} {str(error).splitlines()[0][:60]}")
                continue
            wide += columns > 80
            print(
                f"{n:22} flat {flat_lines:4} lines, with blocks {lines:4}, widest {columns:4} columns, "
                f"counts {'equal' if equal else 'DIFFER'}"
            )
        print(f"{wide} imports have lines over 80 columns")
        sys.exit(0)
    results = [import_one(n) for n in model_names()]
    if "--update" in sys.argv[1:]:
        update(results)
    print(table(results))
