"""Times parse + count for generated programs and the CLI's start-up.

    python benchmarks/bench.py            # or: make bench
    python benchmarks/bench.py --quick    # up to 10,000 layers

Targets (issue 2): 10,000 layers counted in under 1 s; 10x the layers costs at
most 12x the time; `paramsym count` on a small program under 0.8 s wall.

Targets (issue 9), the whole command in a subprocess, output included:
`paramsym count --set C=64` on a chain of 10,000 layers in under 1 s as JSON and
as the default table; 200,000 layers in under 20 s and 1 GB; 10x the layers at
most 12x the time from 1,000 to 100,000; the CSV of a 1,000,000-point sweep in
under 1.5 s; a small program in under 0.4 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paramsym

# Three layers per cycle; `->16` (numeric) or `->C` (symbolic, with a let default).
CYCLE = "conv3x3(->{width}, pad=1) > bn > relu"


def program(layers: int, symbolic: bool) -> str:
    width = "C" if symbolic else "16"
    cycles = [CYCLE.format(width=width)] * (layers // 3)
    extra = ["relu"] * (layers - 3 * len(cycles))
    head = "let C = 16\n" if symbolic else ""
    return head + "input(32x32x16) > " + " > ".join(cycles + extra)


def time_count(text: str, repeats: int) -> float:
    """Best wall time of parse + totals + their values."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        network = paramsym.parse(text)
        network.evaluate()
        best = min(best, time.perf_counter() - start)
    return best


RESNET_BLOCK = (
    "def block(c) = res(conv3x3(->c, pad=1) > bn > relu > conv3x3(->c, pad=1) > bn) > relu\ninput(32x32x16) > "
)


def resnet_program(blocks: int) -> str:
    """`blocks` residual blocks written out, each a block call (11 layers per block after expansion)."""
    return RESNET_BLOCK + " > ".join(["block(16)"] * blocks) + " > gap > dense(->10, bias)"


def zoo_rows() -> list[tuple[str, int, float]]:
    rows = []
    for path in sorted(Path(__file__).resolve().parents[1].joinpath("examples").glob("*.psym")):
        text = path.read_text()
        layers = len(paramsym.parse(text).layers)
        rows.append((path.stem, layers, time_count(text, repeats=3)))
    return rows


SWEEP_PROGRAM = (
    "input(H x H x 3) > conv3x3(->C, stride=2, pad=1) > bn > relu > conv3x3(->2C, stride=2, pad=1)"
    " > bn > relu > gap > dense(->10, bias)"
)


def sweep_versus_subs(points_per_axis: int = 1000, subs_points: int = 2000) -> tuple[float, float, float]:
    """A million-point sweep of MACs (with floor) by the exact vectorised function, against SymPy's
    subs point by point (timed on `subs_points` points and scaled to the grid)."""
    network = paramsym.parse(SWEEP_PROGRAM)
    grid = {"C": list(range(1, points_per_axis + 1)), "H": list(range(1, points_per_axis + 1))}
    start = time.perf_counter()
    result = paramsym.sweep(network, grid, on="macs", quantities=("macs",))
    vectorised = time.perf_counter() - start
    expr = result.formulas["macs"]
    C, H = network.symbols["C"], network.symbols["H"]
    start = time.perf_counter()
    for i in range(subs_points):
        c, h = int(result.grid["C"][i * 499 % result.size]), int(result.grid["H"][i * 499 % result.size])
        value = expr.subs({C: c, H: h})
        assert int(value) == int(result.values["macs"][i * 499 % result.size])
    per_point = (time.perf_counter() - start) / subs_points
    return vectorised, per_point * result.size, result.size


def cli_startup(repeats: int = 7) -> float:
    exe = str(Path(sys.executable).with_name("paramsym"))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([exe, "count", "conv3x3(32->64, bias) > pool > conv5x5(->40)"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---- the whole command, end to end (issue 9) ---------------------------------------------------


def chain_program(layers: int) -> str:
    """A chain of `conv3x3(->C,pad=1)>bn>relu` cycles with a symbolic width, written without
    spaces so that 200,000 layers stay within the 2,000,000 characters a program may have."""
    cycles = ["conv3x3(->C,pad=1)>bn>relu"] * (layers // 3) + ["relu"] * (layers % 3)
    return "let C = 16\ninput(32x32x16)>" + ">".join(cycles)


# Runs the command from a small fresh interpreter, so that the peak memory reported for the
# command is its own (a child forked from this process would start with this process's memory).
_TIMER = """
import os, resource, subprocess, sys, time
start = time.perf_counter()
with open(os.devnull, "w") as null:
    done = subprocess.run(sys.argv[1:], stdout=null, stderr=subprocess.PIPE)
seconds = time.perf_counter() - start
if done.returncode:
    sys.exit(done.stderr.decode())
print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def run_command(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one run of the command, output to /dev/null."""
    done = subprocess.run([sys.executable, "-c", _TIMER, *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args[:3])}... failed: {done.stderr}")
    seconds, peak_kb = done.stdout.split()
    return float(seconds), int(peak_kb) / 1024


def best_run(args: list[str], repeats: int) -> tuple[float, float]:
    """The best wall time of `repeats` runs, and the largest peak memory among them."""
    runs = [run_command(args) for _ in range(repeats)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def command_rows(sizes: list[int]) -> None:
    exe = str(Path(sys.executable).with_name("paramsym"))
    print(
        "\n`paramsym count FILE --set C=64 [--format json]` on a chain of layers, end to end "
        "(best of 3 runs, 1 from 100,000 layers; peak memory of the command):"
    )
    print(f"{'layers':>8} {'format':>6} {'seconds':>8} {'peak MB':>8} {'x prev':>7}")
    with tempfile.TemporaryDirectory() as folder:
        for fmt in ("json", "table"):
            previous, previous_n = None, 0
            for n in sizes:
                path = Path(folder) / f"chain{n}.psym"
                path.write_text(chain_program(n))
                seconds, peak = best_run(
                    [exe, "count", str(path), "--set", "C=64", "--format", fmt], repeats=3 if n <= 10_000 else 1
                )
                ratio = f"{seconds / previous:6.1f}x" if previous and n == 10 * previous_n else ""
                print(f"{n:>8,} {fmt:>6} {seconds:>8.2f} {peak:>8.0f} {ratio:>7}")
                previous, previous_n = seconds, n
    sweep = [exe, "sweep", SWEEP_PROGRAM, "--grid", "C=1:1000", "--grid", "H=1:1000", "--format", "csv"]
    seconds, peak = best_run(sweep, repeats=3)
    print(
        f"\n`paramsym sweep ... --grid C=1:1000 --grid H=1:1000 --format csv` (1,000,000 points): "
        f"{seconds:.2f} s, {peak:.0f} MB (best of 3)"
    )


# ---- formulas that grow (issue 17) ---------------------------------------------------------------


def let_chain(n: int) -> str:
    return (
        "let A0 = 1\n"
        + "".join(f"let A{i} = A{i - 1} + 1\n" for i in range(1, n + 1))
        + f"input(8x8x3) > dense(->A{n})\n"
    )


GROWING = [  # (what, program, extra arguments): each answers, or is refused with a limit error (exit 2)
    ("power (A+..+F)^5 (252 terms)", "dense(3->(A+B+C+D+E+F)^5)", ["formula"]),
    ("power (A+..+F)^16 (refused)", "dense(3->(A+B+C+D+E+F)^16)", ["formula"]),
    ("power (A+..+F)^64 (refused)", "dense(3->(A+B+C+D+E+F)^64)", ["formula"]),
    ("let X=(A+B+C+D)^64; X^64 (refused)", "let X=(A+B+C+D)^64; dense(3->X^64)", ["count"]),
    ("power (A+B+C)^28 via a let (435 terms)", "let X=(A+B+C)^14; dense(3->X^2)", ["formula"]),
    (
        "5 ceil pools after stride=S",
        "input(224x224x3) > conv7x7(->8, stride=S)" + " > maxpool3x3(stride=2, ceil)" * 5,
        ["count", "--set", "S=2"],
    ),
    (
        "nested lets, 15 (refused)",
        "let A0 = C\n" + "".join(f"let A{i} = A{i - 1} * (A{i - 1} + B)\n" for i in range(1, 16)) + "dense(3->A15)",
        ["count"],
    ),
    ("1,000 free symbols", "input(8x8x3) > flatten > " + " > ".join(f"dense(->C{i})" for i in range(1000)), ["count"]),
    (
        "10,000 free symbols (refused)",
        "input(8x8x3) > flatten > " + " > ".join(f"dense(->C{i})" for i in range(10_000)),
        ["count"],
    ),
] + [(f"let chain of {n:,}", let_chain(n), ["count"]) for n in (1_000, 2_000, 5_000)]

_TIMER_ANY = _TIMER.replace("if done.returncode:\n    sys.exit(done.stderr.decode())\n", "")


def growing_rows() -> None:
    exe = str(Path(sys.executable).with_name("paramsym"))
    print("\nFormulas that grow (issue 17), the whole command (best of 3; exit 2 = refused with a limit error):")
    print(f"{'case':<38} {'seconds':>8} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for index, (what, text, args) in enumerate(GROWING):
            path = Path(folder) / f"growing{index}.psym"
            path.write_text(text)
            runs = []
            for _ in range(3):
                done = subprocess.run(
                    [sys.executable, "-c", _TIMER_ANY, exe, args[0], str(path), *args[1:]],
                    capture_output=True,
                    text=True,
                )
                seconds, peak_kb = done.stdout.split()
                runs.append((float(seconds), int(peak_kb) / 1024))
            print(f"{what:<38} {min(r[0] for r in runs):>8.2f} {max(r[1] for r in runs):>8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="stop at 10,000 layers")
    parser.add_argument("--growing", action="store_true", help="only the formulas that grow (issue 17)")
    args = parser.parse_args()
    if args.growing:
        growing_rows()
        return
    sizes = [100, 1_000, 10_000] + ([] if args.quick else [100_000])
    paramsym.parse("relu > dense(2->2)")  # build the parser once, as the CLI does per run
    print(f"{'layers':>8} {'widths':>9} {'chars':>10} {'seconds':>9} {'us/layer':>9} {'x prev':>7}")
    for symbolic in (False, True):
        previous = None
        for n in sizes:
            text = program(n, symbolic)
            seconds = time_count(text, repeats=3 if n <= 10_000 else 1)
            ratio = f"{seconds / previous:6.1f}x" if previous else ""
            print(
                f"{n:>8,} {'symbolic' if symbolic else 'numeric':>9} {len(text):>10,} {seconds:>9.3f} "
                f"{seconds / n * 1e6:>9.1f} {ratio:>7}"
            )
            previous = seconds
    text = resnet_program(1000)
    seconds = time_count(text, repeats=3)
    layers = len(paramsym.parse(text).layers)
    print(f"\n1,000 residual blocks ({layers:,} layers, {len(text):,} chars): {seconds:.3f} s")
    print(f"\n{'zoo model':<20} {'layers':>7} {'seconds':>8}")
    for name, layers, seconds in zoo_rows():
        print(f"{name:<20} {layers:>7,} {seconds:>8.3f}")
    vectorised, subs, points = sweep_versus_subs()
    print(
        f"\nsweep of MACs over {points:,} points (C, H = 1..1000): vectorised {vectorised:.2f} s; "
        f"SymPy subs point by point {subs:,.0f} s (scaled from 2,000 points): {subs / vectorised:,.0f}x"
    )
    print(f"\nCLI start-up, `paramsym count` on a 3-layer program: {cli_startup():.3f} s (median of 7)")
    command_rows([1_000, 10_000] + ([] if args.quick else [100_000, 200_000]))
    growing_rows()


if __name__ == "__main__":
    main()
