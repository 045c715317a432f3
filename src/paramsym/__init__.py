"""paramsym: exact, symbolic parameter and cost formulas for neural networks
written in a compact layer language.

    >>> import paramsym
    >>> net = paramsym.parse("conv3x3(32->64, bias) > pool > conv5x5(->40)")
    >>> net.params
    82496
"""
from .errors import (ParamsymArgumentError, ParamsymError, ParamsymEvaluationError, ParamsymLimitError,
                     ParamsymNameError, ParamsymShapeError, ParamsymSyntaxError, ParamsymUsageError, Position)
from .network import CONVENTIONS, LayerCount, Network, parse

__version__ = "0.1.0"

__all__ = [
    "parse", "Network", "LayerCount", "CONVENTIONS", "Position", "ParamsymError", "ParamsymSyntaxError",
    "ParamsymLimitError", "ParamsymNameError", "ParamsymShapeError", "ParamsymArgumentError",
    "ParamsymEvaluationError", "ParamsymUsageError", "__version__",
]
