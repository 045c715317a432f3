"""What the memory and cost quantities of issue 21 add to a 10,000-layer count, end to end.

    python benchmarks/cost_overhead.py [BASE_REV]     # or: make bench-cost

Runs `python -m paramsym count ...` (table and JSON, output to /dev/null) on two 10,000-layer
programs with the sources of BASE_REV (default 9a71fff, main before issue 21, checked out in a
temporary git worktree) and with this checkout's, and with this checkout's and the training and
serving options. Target (issue 21): the new quantities add under 10%.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_REV = "9a71fff"


def cnn_chain(layers: int) -> str:
    """`conv3x3 > bn > relu` cycles with a symbolic width (as benchmarks/bench.py's chain)."""
    cycles = ["conv3x3(->C,pad=1)>bn>relu"] * (layers // 3) + ["relu"] * (layers % 3)
    return "let C = 16\ninput(32x32x16)>" + ">".join(cycles)


def decoder_chain(layers: int) -> str:
    """A Llama-like decoder written out, 8 layers a block (no repeat, so every layer is its own record)."""
    block = "res(rmsnorm>attn(heads=h,rope,causal))>res(rmsnorm>mul(dense(->F)>silu|dense(->F))>dense(->d))"
    blocks = [block] * ((layers - 3) // 8)
    head = "let T = 4096\nlet d = 512\nlet h = 8\nlet F = 1408\n"
    return head + "input(T)>embed(32000->d)>" + ">".join(blocks) + ">rmsnorm>dense(->32000)"


def run_once(src: Path, args: list[str]) -> float:
    # bytecode is written and read for both trees alike (this shell may set PYTHONDONTWRITEBYTECODE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(src)}
    start = time.perf_counter()
    with open(os.devnull, "w") as null:
        done = subprocess.run([sys.executable, "-m", "paramsym", *args], stdout=null, stderr=subprocess.PIPE, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"paramsym {' '.join(args[:2])} failed: {done.stderr.decode()[-400:]}")
    return seconds


def compare(runs: dict[str, tuple[Path, list[str]]], repeats: int) -> dict[str, list[float]]:
    """Each command once to warm up (bytecode, disk cache), then `repeats` rounds, the commands taking turns,
    so that a change of the machine's load falls on all of them alike."""
    for src, args in runs.values():
        run_once(src, args)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (src, args) in runs.items():
            times[name].append(run_once(src, args))
    return times


def main() -> None:
    base_rev = sys.argv[1] if len(sys.argv) > 1 else BASE_REV
    repeats = 7
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), base_rev],
            check=True,
            capture_output=True,
        )
        try:
            programs = {"cnn": cnn_chain(10_000), "decoder": decoder_chain(10_000)}
            print(f"`paramsym count` end to end, 10,000 layers, best / median of {repeats} (seconds):\n")
            print(f"| program | format | {base_rev} | this checkout | + run options | added (best / median) |")
            print("|---|---|---:|---:|---:|---:|")
            for name, text in programs.items():
                path = Path(folder) / f"{name}.psym"
                path.write_text(text)
                options = (
                    ["--train", "--batch", "8", "--precision", "mixed-bf16", "--zero", "3", "--gpus", "8"]
                    if name == "cnn"
                    else [
                        "--train",
                        "--batch",
                        "8",
                        "--precision",
                        "mixed-bf16",
                        "--zero",
                        "3",
                        "--gpus",
                        "8",
                        "--device",
                        "h100",
                        "--weights",
                        "bf16",
                        "--kv",
                        "bf16",
                    ]
                )
                for fmt in ("table", "json"):
                    args = ["count", str(path), "--format", fmt]
                    times = compare(
                        {
                            "before": (base / "src", args),
                            "after": (ROOT / "src", args),
                            "full": (ROOT / "src", args + options),
                        },
                        repeats,
                    )
                    before, after, full = times["before"], times["after"], times["full"]
                    added = min(after) / min(before) - 1
                    added_median = statistics.median(after) / statistics.median(before) - 1
                    print(
                        f"| {name} | {fmt} | {min(before):.2f} / {statistics.median(before):.2f} "
                        f"| {min(after):.2f} / {statistics.median(after):.2f} "
                        f"| {min(full):.2f} / {statistics.median(full):.2f} | {added:+.1%} / {added_median:+.1%} |"
                    )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)


if __name__ == "__main__":
    main()
