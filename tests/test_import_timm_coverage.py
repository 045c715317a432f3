"""One model of every timm family imports exactly, or is refused naming the module or operation it cannot
read; none is imported wrong (parameters, BatchNorm state, output shape and MACs against FlopCounterMode)
and none crashes. docs/zoo.md's table (Importing timm) says which: tests/helpers/timm_coverage.py writes it."""

from __future__ import annotations

import time

import pytest

from helpers import timm_coverage

pytest.importorskip("timm")

NAMES = list(timm_coverage.MODELS)


@pytest.fixture(scope="module")
def rows():
    started = time.perf_counter()
    results = {name: timm_coverage.import_one(name) for name in NAMES}
    print(f"\nimported {len(results)} timm models in {time.perf_counter() - started:.1f} s")
    return results


def test_there_are_150_over_every_family():
    families = timm_coverage.families()
    assert len(NAMES) >= 150 and len(set(NAMES)) == len(NAMES)
    assert {timm_coverage.family(n) for n in NAMES} == set(families), (
        "run: python tests/helpers/timm_coverage.py --choose"
    )
    assert {f[0] for f in families} == {timm_coverage.module_of(n) for n in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_each_model_imports_exactly_or_is_refused_by_name(rows, name):
    row = rows[name]
    assert row.outcome != "mismatch", row.detail
    assert row.outcome != "crashed", row.detail
    if row.outcome == "refused":
        if row.detail.startswith("torch.fx cannot trace"):  # issue 19: tracing on fake tensors removes these
            pytest.xfail(f"the refusal names no module: {row.detail}")
        assert "module '" in row.detail or "operation '" in row.detail, row.detail


def test_macs_differ_only_by_what_flopcountermode_does_not_count(rows):
    """An exact import's MACs equal FlopCounterMode's FLOPs / 2, or exceed them by a gap it has (recurrent
    layers, nn.MultiheadAttention's fast path, auxiliary heads: helpers/import_check.py)."""
    for row in rows.values():
        if row.outcome == "exact":
            assert row.macs == row.torch_macs or (row.gap and row.macs > row.torch_macs), row


def test_the_table_in_zoo_md_is_current(rows):
    assert timm_coverage.documented() == timm_coverage.table([rows[n] for n in NAMES]), (
        "run: python tests/helpers/timm_coverage.py --update"
    )
