"""Plots (matplotlib, the optional extra `paramsym[plot]`): parameters per layer
as bars, and a sweep's total against one symbol with the budget line. The
file type follows the name: .png, .svg or .pdf."""

from __future__ import annotations

from pathlib import Path

from ..errors import ParamsymUsageError
from ..model.network import Network

KINDS = (".png", ".svg", ".pdf")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ParamsymUsageError("plots need matplotlib: pip install 'paramsym[plot]'") from None
    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    return plt


def _check(path: str) -> Path:
    target = Path(path)
    if target.suffix.lower() not in KINDS:
        raise ParamsymUsageError(f"--plot writes {', '.join(KINDS)} files, not {target.name!r}")
    return target


def plot_layers(network: Network, path: str) -> Path:
    """Parameters of every layer as a bar chart (layers without parameters left out)."""
    target = _check(path)
    evaluator = network.evaluator()
    rows = [(lc.layer.index, lc.layer.path, lc.counts.params) for lc in network.layers if lc.counts.params != 0]
    if not rows:
        raise ParamsymUsageError("no layer has parameters to plot")
    if not all(evaluator.has_values_for(p) for _, _, p in rows):
        missing = sorted({s.name for _, _, p in rows for s in p.free_symbols} - set(network.defaults))
        raise ParamsymUsageError(f"give {', '.join(missing)} a value (--set) to plot the parameters")
    values = [evaluator.integer(p) for _, _, p in rows]
    labels = [f"{index} {path}" for index, path, _ in rows]
    plt = _pyplot()
    height = max(3.0, 0.28 * len(rows) + 1.2)
    figure, axes = plt.subplots(figsize=(8, min(height, 40)))
    axes.barh(range(len(values)), values, color="#4C72B0")
    axes.set_yticks(range(len(values)), labels, fontsize=7 if len(rows) > 30 else 9)
    axes.invert_yaxis()
    axes.set_xlabel("parameters")
    total = evaluator.integer(network.params)
    axes.set_title(f"parameters per layer (total {total:,})")
    return _save(plt, figure, target)


def _save(plt, figure, target: Path) -> Path:
    figure.tight_layout()
    try:
        figure.savefig(target)
    except OSError as error:
        raise ParamsymUsageError(f"cannot write {target}: {error.strerror}") from None
    finally:
        plt.close(figure)
    return target


def plot_sweep(result, path: str) -> Path:
    """The swept quantity against the first grid symbol, one line per value of the second."""
    target = _check(path)
    import numpy as np

    names = list(result.grid)
    if len(names) > 2:
        raise ParamsymUsageError("a sweep plot shows one or two grid symbols")
    x_name = names[0]
    x = result.grid[x_name]
    y = result.values[result.on]
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    series = [(None, np.ones(len(x), dtype=bool))]
    if len(names) == 2:
        series = [(value, result.grid[names[1]] == value) for value in np.unique(result.grid[names[1]])]
    for value, mask in series:
        label = None if value is None else f"{names[1]} = {int(value)}"
        axes.plot(x[mask], y[mask], marker="o" if mask.sum() <= 40 else None, label=label)
    if result.budget is not None:
        axes.axhline(result.budget, color="#C44E52", linestyle="--", label=f"budget {result.budget:,}")
    axes.set_xlabel(x_name)
    axes.set_ylabel(result.on)
    axes.set_title(f"{result.on} = {result.formulas[result.on]}".replace("**", "^")[:90])
    if len(series) > 1 or result.budget is not None:
        axes.legend()
    axes.grid(True, alpha=0.3)
    return _save(plt, figure, target)
