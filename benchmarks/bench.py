"""Times parse + count for generated programs and the CLI's start-up.

    python benchmarks/bench.py            # or: make bench
    python benchmarks/bench.py --quick    # up to 10,000 layers

Targets (issue 2): 10,000 layers counted in under 1 s; 10x the layers costs at
most 12x the time; `paramsym count` on a small program under 0.8 s wall.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
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


RESNET_BLOCK = ("def block(c) = res(conv3x3(->c, pad=1) > bn > relu > conv3x3(->c, pad=1) > bn) > relu\n"
                "input(32x32x16) > ")


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


SWEEP_PROGRAM = ("input(H x H x 3) > conv3x3(->C, stride=2, pad=1) > bn > relu > conv3x3(->2C, stride=2, pad=1)"
                 " > bn > relu > gap > dense(->10, bias)")


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
        subprocess.run([exe, "count", "conv3x3(32->64, bias) > pool > conv5x5(->40)"], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="stop at 10,000 layers")
    args = parser.parse_args()
    sizes = [100, 1_000, 10_000] + ([] if args.quick else [100_000])
    paramsym.parse("relu > dense(2->2)")  # build the parser once, as the CLI does per run
    print(f"{'layers':>8} {'widths':>9} {'chars':>10} {'seconds':>9} {'us/layer':>9} {'x prev':>7}")
    for symbolic in (False, True):
        previous = None
        for n in sizes:
            text = program(n, symbolic)
            seconds = time_count(text, repeats=3 if n <= 10_000 else 1)
            ratio = f"{seconds / previous:6.1f}x" if previous else ""
            print(f"{n:>8,} {'symbolic' if symbolic else 'numeric':>9} {len(text):>10,} {seconds:>9.3f} "
                  f"{seconds / n * 1e6:>9.1f} {ratio:>7}")
            previous = seconds
    text = resnet_program(1000)
    seconds = time_count(text, repeats=3)
    layers = len(paramsym.parse(text).layers)
    print(f"\n1,000 residual blocks ({layers:,} layers, {len(text):,} chars): {seconds:.3f} s")
    print(f"\n{'zoo model':<20} {'layers':>7} {'seconds':>8}")
    for name, layers, seconds in zoo_rows():
        print(f"{name:<20} {layers:>7,} {seconds:>8.3f}")
    vectorised, subs, points = sweep_versus_subs()
    print(f"\nsweep of MACs over {points:,} points (C, H = 1..1000): vectorised {vectorised:.2f} s; "
          f"SymPy subs point by point {subs:,.0f} s (scaled from 2,000 points): {subs / vectorised:,.0f}x")
    print(f"\nCLI start-up, `paramsym count` on a 3-layer program: {cli_startup():.3f} s (median of 7)")


if __name__ == "__main__":
    main()
