"""Every example in docs/ and README.md runs and prints what the text says."""

from __future__ import annotations

import doctest

import pytest

from helpers.doc_examples import ROOT, command_output, console_examples

DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
EXAMPLES = [(path, command, expected) for path in DOCS for command, expected in console_examples(path.read_text())]


def test_docs_have_examples():
    assert len(EXAMPLES) >= 20
    for name in ("language.md", "cli.md"):
        assert any(path.name == name for path, _, _ in EXAMPLES), name
    assert ">>> " in (ROOT / "docs" / "api.md").read_text()


@pytest.mark.parametrize("path, command, expected", EXAMPLES, ids=[f"{p.name}: {c[:60]}" for p, c, _ in EXAMPLES])
def test_console_example(path, command, expected):
    assert command_output(command).rstrip() == expected.rstrip()


@pytest.mark.parametrize("path", [p for p in DOCS if ">>> " in p.read_text()], ids=lambda p: p.name)
def test_python_examples(path):
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_zoo_table_holds():
    import paramsym

    # the examples' rows (`name.psym`), not the table of Hugging Face families (`model_type`) further down
    rows = [
        line
        for line in (ROOT / "docs" / "zoo.md").read_text().splitlines()
        if line.startswith("| `") and line.split("|")[1].strip().endswith(".psym`")
    ]
    assert len(rows) >= 21
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        stem = cells[0].strip("`").removesuffix(".psym")
        convention = "keras" if stem.startswith("keras") else "torch"
        data = paramsym.parse((ROOT / "examples" / f"{stem}.psym").read_text(), convention=convention).to_dict()
        number = lambda text: int(text.split()[0].replace(",", ""))  # noqa: E731
        assert int(cells[3]) == len(data["layers"]), stem
        assert number(cells[4]) == data["params"]["value"], stem
        assert number(cells[5]) == data["state"]["value"], stem
        assert number(cells[6]) == data["total"]["value"], stem
        assert number(cells[7]) == data["macs"]["value"], stem
        field = data["layers"][-1]["receptive_field"]  # None once attention has mixed the positions
        assert cells[8] == (field["size"][0] if field else "—"), stem
