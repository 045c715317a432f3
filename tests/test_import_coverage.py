"""Every classification model of torchvision imports exactly, or is refused with the reason named;
docs/zoo.md's table says which (tests/helpers/import_coverage.py writes it)."""

from __future__ import annotations

import time

import pytest

from helpers import import_coverage

NAMES = import_coverage.model_names()


@pytest.fixture(scope="module")
def rows():
    started = time.perf_counter()
    results = {name: import_coverage.import_one(name) for name in NAMES}
    print(f"\nimported {len(results)} torchvision models in {time.perf_counter() - started:.1f} s")
    return results


def test_there_are_eighty():
    assert len(NAMES) >= 80


@pytest.mark.parametrize("name", NAMES)
def test_each_model_imports_exactly_or_is_refused(rows, name):
    row = rows[name]
    assert row.outcome != "mismatch", row.detail
    if row.outcome == "refused":
        assert "no counterpart" in row.detail or "cannot" in row.detail, row.detail


def test_none_is_refused(rows):
    refused = [name for name, row in rows.items() if row.outcome != "exact"]
    assert refused == [], refused


def test_maxvit_imports_exactly(rows):
    """maxvit_t: its block attention is attn(..., window=7), its grid attention attn(..., grid=7), a paramsym
    extension (tests/test_kind_grid_attention.py checks its MACs too)."""
    row = rows["maxvit_t"]
    assert row.outcome == "exact" and "grid=p" in row.text and "window=p" in row.text, row.detail
    assert max(len(line) for line in row.text.splitlines()) < 80, row.text


def test_swin_v2_imports_exactly(rows):
    """swin_v2_t/s/b: attn(..., cpb=512, pad), a paramsym extension (tests/test_kind_swinv2.py)."""
    for name in ("swin_v2_t", "swin_v2_s", "swin_v2_b"):
        assert rows[name].outcome == "exact" and "cpb=512, pad" in rows[name].text, rows[name].detail


def test_every_traced_import_is_written_with_blocks(rows):
    """paramsym.frameworks.factor checks that a factored import counts exactly what the flat one counts (every total
    and the output shape) and writes the flat one otherwise: here none fell back (test_import_readable.py
    compares the two for a table of models; `python tests/helpers/import_coverage.py --readable` for all)."""
    flat = [
        name
        for name, row in rows.items()
        if row.outcome == "exact" and not row.text.startswith("#") and "def " not in row.text and ") * " not in row.text
    ]
    assert not flat, flat


def test_every_import_fits_80_columns(rows):
    """paramsym.frameworks.factor breaks a traced import's lines at `>` and `|` (hf_import a layout reader's), so
    that every line of every exact import fits an 80-column terminal: none is longer than 80 characters."""
    wide = {
        name: import_coverage.widest(row.text)
        for name, row in rows.items()
        if row.outcome == "exact" and import_coverage.widest(row.text) > 80
    }
    assert not wide, wide


def test_the_table_in_zoo_md_is_current(rows):
    assert import_coverage.documented() == import_coverage.table([rows[n] for n in NAMES]), (
        "run: python tests/helpers/import_coverage.py --update"
    )
