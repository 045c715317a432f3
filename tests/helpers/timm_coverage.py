"""timm's models, one of each family, imported: the rows of the table in docs/zoo.md (Importing timm).

A family is what benchmarks/import_sweep.py calls one: the module of timm that registers the model and the
letters its name starts with (`byobnet`: gernet, repvgg, resnet..., mobileone; `efficientnet`: efficientnet,
tf, mixnet, mnasnet, fbnetv3, tinynet...). MODELS holds one model of every family of timm 1.0.31, the one
with the fewest modules that builds and runs on the meta device (`python tests/helpers/timm_coverage.py
--choose` chooses again, building every model of timm: about 20 minutes).

Each model is built on the meta device (`with torch.device("meta")`: shapes, no values), run once there at
its default input size (its pretrained_cfg) under FlopCounterMode, imported with `paramsym.from_torch`, and
classified:
  exact     the program's parameters, BatchNorm running statistics, output shape and MACs equal the
            model's (MACs: FlopCounterMode's FLOPs / 2; where they differ by what FlopCounterMode does not
            count, helpers/import_check.py's mac_gaps, the gap is named and the import stays exact);
  mismatch  any of them differs (a wrong program: the worst defect);
  refused   paramsym refused it (paramsym.ParamsymError): the first line of the reason;
  crashed   from_torch raised anything else.

    python tests/helpers/timm_coverage.py            # print the table
    python tests/helpers/timm_coverage.py --update   # write it into docs/zoo.md
    python tests/helpers/timm_coverage.py --choose   # choose MODELS again (prints the list)
"""

from __future__ import annotations

import collections
import re
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__":  # run as a script: tests/ on the path, as pytest puts it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.import_check import differences, first_line, mac_gaps, program_counts, reason_group, torch_counts
from helpers.import_coverage import replace_section, section

BEGIN, END = "<!-- timm-coverage: begin -->", "<!-- timm-coverage: end -->"

# the words of a model's name that say how big it is, smallest first (import_sweep.py guesses with them)
SIZES = [
    "test",
    "atto",
    "femto",
    "pico",
    "nano",
    "xxxs",
    "xxs",
    "micro",
    "tiny",
    "xs",
    "mini",
    "small",
    "lite",
    "s",
    "b0",
    "base",
    "medium",
    "m",
    "large",
    "l",
    "huge",
    "h",
    "giant",
    "g",
]


def size_key(name: str) -> tuple:
    """A guess at a model's size from its name: sorts smaller models first."""
    words = re.split(r"[_.\-]", name)
    rank = min((SIZES.index(w) for w in words if w in SIZES), default=len(SIZES))
    if name.startswith("test_"):
        rank = -1
    numbers = [int(n) for n in re.findall(r"\d+", name)]
    return rank, numbers[0] if numbers else 0, len(name), name


def module_of(name: str) -> str:
    """The module of timm.models that registers the model."""
    from timm.models._registry import _model_to_module

    return _model_to_module[name]


def family(name: str) -> tuple:
    """(the module that registers the model, the letters its name starts with)."""
    return module_of(name), re.match(r"[a-z]+", name).group()


def families() -> dict:
    """Every model of timm by its family."""
    import timm

    found = collections.defaultdict(list)
    for name in timm.list_models():
        found[family(name)].append(name)
    return dict(found)


# One model of every family of timm 1.0.31 (--choose), by module.
MODELS = (
    "beit_base_patch16_224",
    "beitv2_base_patch16_224",
    "botnet26t_256",
    "eca_botnext26ts_256",
    "halo2botnet50ts_256",
    "halonet26t",
    "haloregnetz_b",
    "lambda_resnet26rpt_256",
    "lamhalobotnet50ts_256",
    "sebotnet33ts_256",
    "sehalonet33ts",
    "bat_resnext26ts",
    "eca_resnext26ts",
    "gcresnet33ts",
    "gcresnext26ts",
    "gernet_s",
    "mobileone_s1",
    "regnetz_b16_evos",
    "repvgg_a0",
    "resnet32ts",
    "resnext26ts",
    "seresnet33ts",
    "seresnext26ts",
    "test_byobnet",
    "cait_s24_224",
    "coat_lite_tiny",
    "convit_tiny",
    "convmixer_1024_20_ks9_p14",
    "convnext_zepto_rms",
    "convnextv2_atto",
    "test_convnext2",
    "cpubone_nano",
    "crossvit_9_240",
    "csatv2",
    "cs3darknet_focus_s",
    "cspdarknet53",
    "cspresnet50",
    "cspresnext50",
    "darknet17",
    "darknetaa53",
    "sedarknet21",
    "cspnext_tiny",
    "davit_tiny",
    "deepseek_vit_412m",
    "deit_tiny_patch16_224",
    "densenet121",
    "densenetblur121d",
    "dla34",
    "dpn48b",
    "edgenext_xx_small",
    "efficientformer_l1",
    "efficientformerv2_s0",
    "efficientnet_lite0",
    "efficientnetv2_rw_t",
    "fbnetc_100",
    "gc_efficientnetv2_rw_t",
    "mixnet_s",
    "mnasnet_050",
    "mobilenet_edgetpu_v2_xs",
    "mobilenetv1_100",
    "semnasnet_050",
    "spnasnet_100",
    "test_efficientnet_evos",
    "tf_efficientnet_lite0",
    "tinynet_e",
    "efficientvim_m1",
    "efficientvit_b0",
    "efficientvit_m2",
    "eva02_tiny_patch14_224",
    "vit_tiny_patch16_dinov3_qkvb",
    "fasternet_t0",
    "fastvit_t8",
    "focalnet_tiny_srf",
    "gcvit_xxtiny",
    "gemma4_vit_167m_enc",
    "ghostnet_050",
    "ghostnetv2_100",
    "hardcorenas_a",
    "hgnet_tiny",
    "hgnetv2_b0",
    "hiera_tiny_224",
    "hieradet_small",
    "sam2_hiera_tiny",
    "hrnet_w18_small",
    "iformer_t",
    "inception_next_atto",
    "inception_resnet_v2",
    "inception_v3",
    "inception_v4",
    "lcnetv2_small",
    "levit_128s",
    "lowformer_e1",
    "mambaout_femto",
    "test_mambaout",
    "coatnet_pico_rw_224",
    "coatnext_nano_rw_224",
    "maxvit_nano_rw_256",
    "maxxvit_rmlp_nano_rw_256",
    "maxxvitv2_nano_rw_256",
    "test_coatnet",
    "caformer_s18",
    "convformer_s18",
    "poolformer_s12",
    "poolformerv2_s12",
    "gmixer_12_224",
    "gmlp_b16_224",
    "mixer_s16_224",
    "resmlp_12_224",
    "fbnetv3_b",
    "lcnet_035",
    "mobilenetv3_small_050",
    "tf_mobilenetv3_small_minimal_100",
    "mobilenetv5_base",
    "mobilevit_xs",
    "mobilevitv2_050",
    "mvitv2_tiny",
    "naflexvit_base_patch16_gap",
    "nasnetalarge",
    "nest_tiny",
    "nextvit_small",
    "dm_nfnet_f0",
    "eca_nfnet_l0",
    "nf_resnet26",
    "nfnet_f0",
    "test_nfnet",
    "pit_xs_224",
    "pnasnet5large",
    "pvt_v2_b0",
    "qwen3_vit_88m",
    "rdnet_tiny",
    "regnetv_040",
    "regnetx_002",
    "regnety_002",
    "regnetz_005",
    "repghostnet_050",
    "repvit_m1_1",
    "res2net50_48w_2s",
    "resnest14d",
    "ecaresnet26t",
    "ecaresnetlight",
    "ecaresnext26t_32x4d",
    "resnet10t",
    "resnetaa34d",
    "resnetblur18",
    "resnetrs50",
    "resnext50_32x4d",
    "senet154",
    "seresnet18",
    "seresnetaa50d",
    "seresnext26d_32x4d",
    "seresnextaa101d_32x8d",
    "test_resnet",
    "wide_resnet50_2",
    "resnetv2_18",
    "rexnet_100",
    "rexnetr_100",
    "selecsls42",
    "legacy_seresnet18",
    "sequencer2d_s",
    "shvit_s1",
    "skresnet18",
    "skresnext50_32x4d",
    "starnet_s050",
    "swiftformer_xs",
    "swin_s3_tiny_224",
    "swinv2_tiny_window8_256",
    "swinv2_cr_tiny_224",
    "tiny_vit_5m_224",
    "tnt_s_legacy_patch16_224",
    "tresnet_m",
    "twins_pcpvt_small",
    "vgg11",
    "visformer_tiny",
    "aimv2_large_patch14_224",
    "beit3_base_patch16_224",
    "eva_large_patch14_196",
    "flexivit_small",
    "test_vit",
    "vit_base_patch16_xp_224",
    "vit_tiny_r_s16_p8_224",
    "test_vit_relpos",
    "vit_srelpos_small_patch16_224",
    "samvit_base_patch16_224",
    "vitamin_small_224",
    "volo_d1_224",
    "eca_vovnet39b",
    "ese_vovnet19b_slim",
    "vovnet39a",
    "legacy_xception",
    "xception41p",
    "xcit_nano_12_p8_224",
)

# Inputs other than the default: the models that are slow at it on the meta device
INPUTS = {
    "sequencer2d_s": (56, 56, 3),  # its LSTMs run step by step on meta: 13 s a forward at 224x224, 0.5 s at 56x56
}


def build(name: str):
    """The model on the meta device, in eval mode, and its input shape (channels last): its default (its
    pretrained_cfg) unless INPUTS says otherwise."""
    import timm
    import torch

    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        model = timm.create_model(name, pretrained=False)
    channels, height, width = timm.models.get_pretrained_cfg(name).input_size
    return model.eval(), INPUTS.get(name, (height, width, channels))


@dataclass
class Row:
    name: str
    family: str  # the module that registers it
    input: tuple  # channels last
    params: int  # timm's
    state: int  # timm's BatchNorm running statistics
    outcome: str  # "exact", "mismatch", "refused" or "crashed"
    detail: str = ""  # the refusal, the crash, or what differs
    macs: int | None = None  # the program's (exact and mismatch)
    torch_macs: float = 0.0  # FlopCounterMode's FLOPs / 2
    gap: str = ""  # what FlopCounterMode does not count, where the MACs differ by it


def import_one(name: str) -> Row:
    import paramsym

    model, shape = build(name)
    theirs = torch_counts(model, shape)
    row = Row(name, module_of(name), shape, theirs.params, theirs.state, "exact", torch_macs=theirs.macs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = paramsym.from_torch(model, shape)
    except paramsym.ParamsymError as refused:
        row.outcome, row.detail = "refused", first_line(refused).removeprefix("usage error: ")
        return row
    except Exception as error:  # a crash: what this table looks for
        frame = traceback.extract_tb(error.__traceback__)[-1]
        row.outcome = "crashed"
        row.detail = (
            f"{type(error).__name__}: {first_line(error)} [{Path(frame.filename).name}:{frame.lineno} in {frame.name}]"
        )
        return row
    ours = program_counts(text)
    row.macs = ours[3]
    wrong = differences(ours, theirs)
    if row.macs != theirs.macs:
        gaps = mac_gaps(model, theirs)
        if gaps and row.macs is not None and row.macs > theirs.macs:
            row.gap = "; ".join(gaps)
        else:
            wrong.append(f"MACs FlopCounterMode {theirs.macs:,.0f} paramsym {row.macs:,}")
    if wrong:
        row.outcome, row.detail = "mismatch", "; ".join(wrong)
    return row


def import_all(names=None) -> list[Row]:
    return [import_one(n) for n in (MODELS if names is None else names)]


def cause(detail: str) -> str:
    """A refusal's cause, for grouping: its reason without the names and numbers of the model."""
    return reason_group(detail).replace("|", "/")


def table(rows: list[Row]) -> str:
    counts = collections.Counter(r.outcome for r in rows)
    modules = {r.family for r in rows}
    named = {family(r.name) for r in rows}
    lines = [
        BEGIN,
        f"{counts['exact']} of {len(rows)} import exactly (parameters, BatchNorm state, output shape and MACs "
        f"equal timm's), {counts['mismatch']} mismatch, {counts['refused']} refused, {counts['crashed']} crashed; "
        f"{len(rows)} models, one of each of {len(named)} families, from the {len(modules)} modules that "
        "register timm's models.",
    ]
    refusals = collections.Counter(cause(r.detail) for r in rows if r.outcome == "refused")
    if refusals:
        lines += ["", "| refused | cause |", "|---:|---|"]
        lines += [f"| {n} | {reason} |" for reason, n in sorted(refusals.items(), key=lambda kv: (-kv[1], kv[0]))]
    gaps = [r for r in rows if r.gap]
    if gaps:
        lines += [
            "",
            "Exact imports whose MACs differ from FlopCounterMode's by what it does not count:",
            "",
            "| model | MACs | FlopCounterMode / 2 | not counted |",
            "|---|---:|---:|---|",
        ]
        lines += [f"| {r.name} | {r.macs:,} | {r.torch_macs:,.0f} | {r.gap} |" for r in gaps]
    lines += ["", "| model | family | input | params | BN state | import |", "|---|---|---|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: (r.family, r.name)):
        result = "exact" if r.outcome == "exact" else f"{r.outcome}: {r.detail.replace('|', '/')}"
        size = "x".join(str(v) for v in r.input)
        lines.append(f"| {r.name} | {r.family} | {size} | {r.params:,} | {r.state:,} | {result} |")
    return "\n".join(lines + [END])


def documented() -> str:
    return section(BEGIN, END)


def update(rows: list[Row]) -> None:
    replace_section(BEGIN, END, table(rows))


def choose() -> list[str]:
    """One model of each family: of those that build and run on the meta device, the one with the fewest
    modules (then the smallest by its name)."""
    chosen = []
    for names in families().values():
        candidates = []
        for name in names:
            try:
                model, shape = build(name)
                torch_counts(model, shape)
            except Exception as error:
                print(f"  {name}: {type(error).__name__}: {first_line(error)[:100]}", file=sys.stderr)
                continue
            candidates.append((sum(1 for _ in model.modules()), size_key(name)))
        if candidates:
            chosen.append(min(candidates)[1][-1])
            print(chosen[-1], file=sys.stderr, flush=True)
    return sorted(chosen, key=lambda n: (module_of(n), n))


if __name__ == "__main__":
    if "--choose" in sys.argv[1:]:
        for n in choose():
            print(f'    "{n}",')
        sys.exit(0)
    started = time.perf_counter()
    results = import_all()
    seconds = time.perf_counter() - started
    if "--update" in sys.argv[1:]:
        update(results)
    print(table(results))
    print(f"{len(results)} models in {seconds:.1f} s", file=sys.stderr)
