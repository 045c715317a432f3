"""paramsym: exact, symbolic parameter and cost formulas for neural networks
written in a compact layer language.

    >>> import paramsym
    >>> net = paramsym.parse("conv3x3(32->64, bias) > pool > conv5x5(->40)")
    >>> net.params
    82496
"""

from .algebra.solve import Solution, solve
from .algebra.views import generic, marginal, per_layer, view
from .core import training as _training
from .errors import (
    ParamsymArgumentError,
    ParamsymError,
    ParamsymEvaluationError,
    ParamsymLimitError,
    ParamsymNameError,
    ParamsymShapeError,
    ParamsymSyntaxError,
    ParamsymUsageError,
    Position,
)
from .model.network import CONVENTIONS, DTYPES, LayerCount, Network, parse
from .render import printers  # noqa: F401  (how a Network shows itself: str(), rich, Jupyter)

__version__ = "0.1.0"


def _parameter_shapes(network):
    """Per-tensor optimizer states (core/training.py) read the tensors of the PyTorch export, imported when asked."""
    from .frameworks.export import parameter_shapes

    return parameter_shapes(network)


_training.TENSOR_SHAPES[:] = [_parameter_shapes]


def __getattr__(name):
    # sweeps need NumPy; importing it only when asked keeps `import paramsym` fast
    if name in ("sweep", "Sweep"):
        from .algebra import sweeps

        return getattr(sweeps, name)
    if name == "latex":
        from .render.typeset import render

        return render
    # the frameworks are imported only when asked for
    if name in ("to_torch", "torch_source", "example_input"):
        from .frameworks import export

        return getattr(export, name)
    if name == "from_torch":
        from .frameworks.importer import from_torch

        return from_torch
    if name in ("to_keras", "keras_source"):
        from .frameworks import keras_export

        return getattr(keras_export, name)
    raise AttributeError(f"module 'paramsym' has no attribute {name!r}")


__all__ = [
    "CONVENTIONS",
    "DTYPES",
    "LayerCount",
    "Network",
    "ParamsymArgumentError",
    "ParamsymError",
    "ParamsymEvaluationError",
    "ParamsymLimitError",
    "ParamsymNameError",
    "ParamsymShapeError",
    "ParamsymSyntaxError",
    "ParamsymUsageError",
    "Position",
    "Solution",
    "Sweep",
    "__version__",
    "example_input",
    "from_torch",
    "generic",
    "keras_source",
    "latex",
    "marginal",
    "parse",
    "per_layer",
    "solve",
    "sweep",
    "to_keras",
    "to_torch",
    "torch_source",
    "view",
]
