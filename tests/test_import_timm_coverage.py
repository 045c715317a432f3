"""One model of every timm family imports exactly, or is refused naming the module or operation it cannot
read; none is imported wrong (parameters, BatchNorm state, output shape and MACs against FlopCounterMode)
and none crashes. docs/zoo.md's table (Importing timm) says which: tests/helpers/timm_coverage.py writes it."""

from __future__ import annotations

import re
import time

import pytest

from helpers import timm_coverage

pytest.importorskip("timm")

NAMED = re.compile(r"module '|operation '|\b(x|torch|F)\.\w+\(\.\.\.\)|'[-+*/@]'|x\[|the model's forward|is a ")
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
        # the module, the model, or the operation as the user wrote it (x.view(...), F.pad(...), '+')
        assert NAMED.search(row.detail), row.detail


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


def test_the_gaps_of_flopcountermode_are_named_where_it_has_them():
    """On the CPU FlopCounterMode counts 0 for an LSTM and for nn.MultiheadAttention's fast path: there they
    are named; on the meta device, where this table runs, both are counted (decomposed) and are no gap."""
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    from helpers.import_check import mac_gaps

    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.attn = nn.LSTM(8, 8, batch_first=True), nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            return self.attn(x, x, x)[0] + self.lstm(x)[0]

    for device, counted in (("cpu", False), ("meta", True)):
        with torch.device(device):
            model = Both().eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 5, 8, device=device))
        assert (counter.get_total_flops() > 0) == counted, device
        assert (mac_gaps(model) == []) == counted, (device, mac_gaps(model))
    # the auxiliary classifiers of torchvision's GoogLeNet and Inception V3 (`aux1`, `AuxLogits`)
    model = nn.Sequential()
    model.add_module("aux1", nn.Linear(2, 2))
    assert mac_gaps(model) == ["auxiliary heads (not run by an eval forward)"]
    model = nn.Sequential()
    model.add_module("AuxLogits", nn.Linear(2, 2))
    assert mac_gaps(model) == ["auxiliary heads (not run by an eval forward)"]


def test_sdpa_on_the_cpu_is_a_named_gap_of_flopcountermode():
    """timm's attention calls F.scaled_dot_product_attention; on the CPU it runs a kernel FlopCounterMode counts
    0 for (vit_tiny_r_s16_p8_224 and vitamin_small_224 in benchmarks/import_sweep.md, built on the CPU): there
    it is named, and the import's MACs exceed FlopCounterMode's by exactly the two products of the attention,
    which it counts on the meta device."""
    import torch
    from timm.models.vision_transformer import VisionTransformer

    import paramsym
    from helpers.import_check import mac_gaps, program_counts, torch_counts

    shape, counts = (32, 32, 3), {}
    for device in ("cpu", "meta"):
        with torch.device(device):
            model = VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2).eval()
        counts[device] = (torch_counts(model, shape), mac_gaps(model, torch_counts(model, shape)))
        macs = program_counts(paramsym.from_torch(model, shape))[3]
    (cpu, cpu_gaps), (meta, meta_gaps) = counts["cpu"], counts["meta"]
    assert cpu_gaps == ["F.scaled_dot_product_attention on the CPU (FlopCounterMode counts 0 for its kernel)"]
    assert meta_gaps == []
    assert macs == meta.macs
    tokens, width, blocks = 1 + 4 * 4, 16, 2  # q @ k^T and weights @ v: tokens² · width each, in every block
    assert macs - cpu.macs == 2 * tokens * tokens * width * blocks
