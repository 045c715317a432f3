"""Programs to Keras 3: a functional `keras.Model` (`to_keras`) or Python source
that builds it (`keras_source`), from one description per layer.

Keras is channels-last like the language, so shapes map one to one. Explicit
padding becomes ZeroPadding before a "valid" layer; PyTorch's ceil-mode pooling
becomes extra padding on the far side; transposed convolutions crop their
padding afterwards.
"""

from __future__ import annotations

from ..core.records import KerasSpec, Node
from ..errors import ParamsymUsageError
from ..kinds.combinators import output_shape
from ..model.network import LayerCount, Network
from .export import Numbers, class_name, comment_lines, keyword_name, python_literal

KerasLayer = KerasSpec  # one Keras layer to build, as the layer kinds describe it


def keras_layers(lc: LayerCount, num: Numbers) -> list[KerasLayer]:
    return lc.layer.kind.keras(lc.layer, num)


class _KerasExport:
    """What a combinator's `keras` reads (paramsym.kinds.combinators.base): applies the structure to a value
    with `emit.layer(spec, x)` and `emit.merge(spec, xs)`."""

    def __init__(self, network: Network, num: Numbers, emit):
        self.network, self.num, self.emit = network, num, emit

    def apply(self, node: Node, x):
        return node.kind.keras(node, self, x)

    def layer(self, index: int, x):
        for spec in keras_layers(self.network.layers[index], self.num):
            x = self.emit.layer(spec, x)
        return x

    def shape(self, node: Node):
        return output_shape(node, lambda index: self.network.layers[index].layer.out_shape)


def _walk(network: Network, num: Numbers, emit, node: Node, x):
    """Apply the structure to `x` with `emit.layer(spec, x)` and `emit.merge(spec, xs)`."""
    return _KerasExport(network, num, emit).apply(node, x)


def _input_shape(network: Network, num: Numbers) -> tuple:
    dims = network.input_shape.dims()
    if dims is None or any(d is None for d in dims):
        raise ParamsymUsageError("Keras needs the input shape: start the program with input(...)")
    return num.each(dims)


def _call_args(spec: KerasLayer, x) -> tuple:
    """layer(x), or layer(x, x) for attention (query and value from the same input)."""
    return (x, x) if spec.call else (x,)


def _call_kwargs(spec: KerasLayer) -> dict:
    return {"use_causal_mask": True} if spec.call == "causal" else {}


class _Builder:
    def __init__(self, keras):
        self.keras = keras
        self.side_outputs: list = []

    def make(self, spec: KerasLayer):
        """The Keras layer; an argument that is itself a spec (Bidirectional's layer) is built first."""
        kwargs = {k: self.make(v) if isinstance(v, KerasLayer) else v for k, v in spec.kwargs.items()}
        return getattr(self.keras.layers, spec.cls)(**kwargs)

    def layer(self, spec: KerasLayer, x):
        try:
            return self.make(spec)(*_call_args(spec, x), **_call_kwargs(spec))
        except (ValueError, TypeError, NotImplementedError) as error:
            raise ParamsymUsageError(f"Keras refuses {spec.cls}: {error}") from None

    def merge(self, spec: KerasLayer, xs):
        return self.make(spec)(xs)


def to_keras(network: Network, **values):
    """A keras.Model (functional) with the network's layers, channels last."""
    num = Numbers(network, values)
    try:
        import keras
    except ImportError as error:  # Keras itself, or the backend it is set to (KERAS_BACKEND)
        raise ParamsymUsageError(
            f"to_keras needs Keras 3 and its backend, and importing them failed: {error}",
            hint="pip install keras and a backend (jax, tensorflow or torch; KERAS_BACKEND chooses); "
            "keras_source writes the model's source without Keras",
        ) from None

    inputs = keras.Input(shape=_input_shape(network, num))
    builder = _Builder(keras)
    outputs = _walk(network, num, builder, network.structure, inputs)
    return keras.Model(inputs, [outputs, *builder.side_outputs] if builder.side_outputs else outputs)


class _Writer:
    def __init__(self):
        self.lines: list[str] = []
        self.count = 0
        self.side_outputs: list = []

    def _name(self) -> str:
        self.count += 1
        return f"x{self.count}"

    def source(self, spec: KerasLayer) -> str:
        args = ", ".join(
            f"{keyword_name(k)}={self.source(v) if isinstance(v, KerasLayer) else python_literal(v)}"
            for k, v in spec.kwargs.items()
        )
        return f"layers.{class_name(spec.cls)}({args})"

    def layer(self, spec: KerasLayer, x):
        name = self._name()
        call = ", ".join(
            [*_call_args(spec, x), *(f"{keyword_name(k)}={python_literal(v)}" for k, v in _call_kwargs(spec).items())]
        )
        self.lines.append(f"    {name} = {self.source(spec)}({call})")
        return name

    def merge(self, spec: KerasLayer, xs):
        name = self._name()
        self.lines.append(f"    {name} = {self.source(spec)}([{', '.join(xs)}])")
        return name


def keras_source(network: Network, **values) -> str:
    """A Python file that builds the model with Keras alone (any backend)."""
    num = Numbers(network, values)
    shape = _input_shape(network, num)
    writer = _Writer()
    out = _walk(network, num, writer, network.structure, "x0")
    if writer.side_outputs:
        out = f"[{', '.join([out, *writer.side_outputs])}]"
    # lines 1 and 2 are the exporter's (a comment there could declare the file's encoding, PEP 263); the
    # program goes in as `#` lines only (export.comment_lines)
    return (
        '"""Keras model written by paramsym from the program below."""\n# The program:\n#\n'
        + comment_lines(network.source)
        + "\nimport keras\nfrom keras import layers\n\n\n"
        "def build_model() -> keras.Model:\n"
        f"    x0 = keras.Input(shape={python_literal(tuple(shape))})\n" + "\n".join(writer.lines) + "\n"
        f"    return keras.Model(x0, {out})\n\n\n"
        'if __name__ == "__main__":\n    model = build_model()\n'
        "    print(model.output_shape, model.count_params())\n"
    )
