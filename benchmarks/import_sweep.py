"""A sweep of `paramsym.from_torch` over one model of each timm family and every torchvision classification
model (issue 17): no import may return a wrong program, and nothing may crash. Run by hand (not a test):

    python benchmarks/import_sweep.py                       # everything, one worker, 120 s a model
    python benchmarks/import_sweep.py --timeout 60 --limit 50 --out sweep.md
    python benchmarks/import_sweep.py --only timm:dla34 tv:resnet18
    python benchmarks/import_sweep.py --beyond --no-timm     # torchvision's segmentation, video, quantizable,
                                                             # detection and optical-flow models
    python benchmarks/import_sweep.py --all --sample 300 --seed 0 --no-torchvision --timeout 60

Each model is imported in a worker process (killed and restarted after --timeout seconds) and its outcome
classified:
  exact    from_torch returned a program; it is then re-checked here, independently of paramsym's own
           verification: parameters (sum of numel over model.parameters(), each shared tensor once), BatchNorm
           running statistics, the output shape of a real forward, and MACs against FlopCounterMode (FLOPs/2).
           A params/state/shape difference is WRONG (the worst defect); a MAC difference is listed apart
           (FlopCounterMode counts 0 for some ops, so it is not necessarily wrong).
  refused  paramsym.errors.ImportRefused / ParamsymError: the first line of the reason is recorded.
  crashed  any other exception escaping from_torch: its type, message and the traceback's last frame.
  timeout  no answer within --timeout seconds.
  unbuilt  the model itself could not be built or run (not paramsym's doing).
Models are built on the meta device (shapes without values) and run there; a model that cannot be built or
imported on meta is tried again on the CPU at its default input size (timm's pretrained_cfg).
A timm family is (the module that registers the model, the letters its name starts with); its smallest
model is guessed from the name (test_, atto, femto, pico, nano, tiny, ... and the first number).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # helpers: torchvision's list, the meta-device builder, timm's families

from sweep_worker import run_all  # noqa: E402

from helpers.import_check import check, first_line, reason_group  # noqa: E402
from helpers.timm_coverage import families, size_key  # noqa: E402


def timm_models(every: bool = False) -> list[str]:
    import timm

    if every:
        return sorted(timm.list_models(), key=size_key)
    return sorted((min(names, key=size_key) for names in families().values()), key=size_key)


def torchvision_models() -> list[str]:
    from helpers.import_coverage import model_names

    return model_names()


# torchvision's models beyond classification: what docs/zoo.md claims to read (segmentation, video; an image
# or a clip in, a tensor or a dict of tensors out), the quantizable classifiers (built with quantize=False: the
# float model with its quant stubs), and what must be refused (detection: a list of images in; optical flow:
# two images in)
BEYOND = ("segmentation", "video", "quantization", "detection", "optical_flow")


def torchvision_beyond() -> list[str]:
    import torchvision

    return [n for m in BEYOND for n in sorted(torchvision.models.list_models(module=getattr(torchvision.models, m)))]


def tv_input(name: str) -> tuple:
    """A torchvision model's input, channels last: a clip of 16 frames for the video models (112 x 112 for the
    video ResNets, as trained), 299 x 299 for Inception V3, 224 x 224 otherwise."""
    import torchvision

    from helpers.import_coverage import input_shape

    if name in torchvision.models.list_models(module=torchvision.models.video):
        side = 112 if name in ("r3d_18", "mc3_18", "r2plus1d_18") else 224
        return (16, side, side, 3)
    return input_shape(name.removeprefix("quantized_"))


# ---- one model, in the worker ----------------------------------------------------------------------------


def build(source: str, name: str, device: str):
    import torch

    from helpers.import_coverage import on_meta

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if source == "tv":
            import torchvision

            # no weights, nor a backbone's (the segmentation and detection builders download those otherwise)
            backbone = {}
            if any(name in torchvision.models.list_models(module=getattr(torchvision.models, m)) for m in BEYOND[::3]):
                backbone = {"weights_backbone": None}  # segmentation, detection
            builder = lambda: torchvision.models.get_model(name, weights=None, **backbone)  # noqa: E731
            shape = tv_input(name)
        else:
            import timm

            builder = lambda: timm.create_model(name, pretrained=False)  # noqa: E731
            c, h, w = timm.models.get_pretrained_cfg(name).input_size
            shape = (h, w, c)
        if device == "meta":
            with on_meta():
                model = builder()
        else:
            with torch.device("cpu"):
                model = builder()
    return model.eval(), shape


def one(source: str, name: str) -> dict:
    import paramsym
    from paramsym.errors import ParamsymError

    result = {"source": source, "name": name}
    for device in ("meta", "cpu"):
        result["device"] = device
        try:
            model, shape = build(source, name, device)
        except Exception as error:  # the model's own failure
            result.update(outcome="unbuilt", detail=f"{type(error).__name__}: {first_line(error)}")
            continue
        result["input"] = "x".join(map(str, shape))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                text = paramsym.from_torch(model, shape, flat=True)
        except ParamsymError as error:
            result.update(outcome="refused", detail=first_line(error).removeprefix("usage error: "))
            if device == "meta" and "does not run on" in result["detail"]:
                continue  # perhaps only on meta (a value read back with .item()): try the CPU
            return result
        except Exception as error:  # the defect this sweep looks for
            frame = traceback.extract_tb(error.__traceback__)[-1]
            result.update(
                outcome="crashed",
                detail=f"{type(error).__name__}: {first_line(error)} "
                f"[{Path(frame.filename).name}:{frame.lineno} in {frame.name}]",
            )
            return result
        try:
            result.update(check(model, shape, text))
        except Exception as error:  # the re-check itself failed (e.g. forward on meta)
            if device == "meta":
                continue
            result.update(outcome="exact?", detail=f"re-check failed: {type(error).__name__}: {first_line(error)}")
            return result
        result["outcome"] = "WRONG" if result["wrong"] else "exact"
        result["detail"] = result["wrong"]
        return result
    return result


def label(job: tuple) -> dict:
    """What names a model in a result: its source (timm, tv) and its name."""
    return {"source": job[0], "name": job[1]}


# ---- the summary -----------------------------------------------------------------------------------------


def summary(results: list[dict], seconds: float) -> str:
    import timm
    import torch
    import torchvision

    import paramsym

    counts = collections.Counter(r["outcome"] for r in results)
    lines = [
        f"# paramsym import sweep, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"paramsym {getattr(paramsym, '__version__', '?')}, torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}, timm {timm.__version__}; {len(results)} models "
        f"({sum(r['source'] == 'timm' for r in results)} timm, "
        f"{sum(r['source'] == 'tv' for r in results)} torchvision) in {seconds / 60:.1f} min",
        "",
        "| outcome | models |",
        "|---|---:|",
    ]
    for outcome in ("exact", "WRONG", "refused", "crashed", "timeout", "unbuilt", "exact?"):
        if counts[outcome]:
            lines.append(f"| {outcome} | {counts[outcome]} |")
    bad = [r for r in results if r["outcome"] in ("WRONG", "crashed", "timeout", "exact?")]
    if bad:
        lines += ["", "## Wrong, crashed, timed out", "", "| model | outcome | detail |", "|---|---|---|"]
        lines += [f"| {r['source']}:{r['name']} | {r['outcome']} | {r['detail'].replace('|', '/')} |" for r in bad]
    macs = [
        r for r in results if r["outcome"] == "exact" and r.get("macs") is not None and r["macs"] != r["torch_macs"]
    ]
    lines += [
        "",
        f"## MACs differing from FlopCounterMode ({len(macs)} of {counts['exact']} exact imports; "
        "FlopCounterMode counts 0 for some ops, so these are not necessarily wrong; what it misses in the "
        "model, where it is known: helpers/import_check.py's mac_gaps)",
        "",
        "| model | device | paramsym | FlopCounterMode / 2 | ratio | FlopCounterMode's gap |",
        "|---|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r['source']}:{r['name']} | {r['device']} | {r['macs']:,} | {r['torch_macs']:,.0f} | "
        f"{r['macs'] / r['torch_macs'] if r['torch_macs'] else float('inf'):.3f} | {r.get('gaps') or '?'} |"
        for r in macs
    ]
    groups = collections.Counter(reason_group(r["detail"]) for r in results if r["outcome"] == "refused")
    lines += ["", "## Refusal reasons", "", "| models | reason |", "|---:|---|"]
    lines += [f"| {n} | {reason.replace('|', '/')} |" for reason, n in groups.most_common()]
    lines += [
        "",
        "## Every model",
        "",
        "| model | input | device | outcome | s | detail |",
        "|---|---|---|---|---:|---|",
    ]
    lines += [
        f"| {r['source']}:{r['name']} | {r.get('input', '')} | {r.get('device', '')} | {r['outcome']} | "
        f"{r['seconds']} | {r.get('detail', '').replace('|', '/')[:200]} |"
        for r in results
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--limit", type=int, help="at most this many timm families (smallest first)")
    parser.add_argument("--all", action="store_true", help="every timm model, not one a family")
    parser.add_argument("--sample", type=int, help="this many timm models at random (with --all: of every model)")
    parser.add_argument("--seed", type=int, default=0, help="of --sample")
    parser.add_argument("--no-torchvision", action="store_true")
    parser.add_argument("--no-timm", action="store_true")
    parser.add_argument("--beyond", action="store_true", help="also torchvision's models beyond classification")
    parser.add_argument("--only", nargs="*", help="models as timm:NAME or tv:NAME")
    parser.add_argument("--out", type=Path, help="also write the summary here")
    args = parser.parse_args()
    if args.only:
        jobs = [tuple(m.split(":", 1)) for m in args.only]
    else:
        names = [] if args.no_timm else timm_models(args.all)[: args.limit]
        if args.sample:
            import random

            names = sorted(random.Random(args.seed).sample(names, min(args.sample, len(names))), key=size_key)
        jobs = [("timm", n) for n in names]
        if not args.no_torchvision:
            jobs += [("tv", n) for n in torchvision_models()]
        if args.beyond:
            jobs += [("tv", n) for n in torchvision_beyond()]
    start = time.monotonic()
    results = run_all(jobs, one, label, args.timeout)
    text = summary(results, time.monotonic() - start)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
