"""Programs to Keras 3: a functional `keras.Model` (`to_keras`) or Python source
that builds it (`keras_source`), from one description per layer.

Keras is channels-last like the language, so shapes map one to one. Explicit
padding becomes ZeroPadding before a "valid" layer; PyTorch's ceil-mode pooling
becomes extra padding on the far side; transposed convolutions crop their
padding afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ParamsymError, ParamsymUsageError
from .export import _Numbers
from .layers import Node
from .network import LayerCount, Network


@dataclass
class KerasLayer:
    cls: str
    kwargs: dict = field(default_factory=dict)


def _refuse(layer, why: str):
    raise ParamsymUsageError(f"{layer.name} at {layer.pos} has no Keras equivalent: {why}")


def _padding_layers(layer, num, rank: int) -> tuple[list, str]:
    """ZeroPadding before a window (explicit or ceil-mode padding), and the window's own padding."""
    if layer.pad and layer.pad[0] == "same":
        return [], "same"
    pads = [(p, p) for p in num.each(layer.pad)]
    if layer.options.get("ceil"):
        sizes = num.each(layer.in_shape.spatial)
        outs = num.each(layer.out_shape.spatial)
        for axis, (n, k, s, d, out) in enumerate(zip(sizes, num.each(layer.kernel), num.each(layer.stride),
                                                      num.each(layer.dilation), outs)):
            needed = (out - 1) * s + d * (k - 1) + 1 - (n + 2 * pads[axis][0])
            pads[axis] = (pads[axis][0], pads[axis][1] + max(needed, 0))
    if any(a or b for a, b in pads):
        # ZeroPadding1D takes one (before, after) pair, the others a pair per axis
        return [KerasLayer(f"ZeroPadding{rank}D", {"padding": pads[0] if rank == 1 else tuple(pads)})], "valid"
    return [], "valid"


def keras_layers(lc: LayerCount, num: _Numbers) -> list[KerasLayer]:
    layer = lc.layer
    kind, rank = layer.kind, len(layer.kernel)
    spatial_rank = layer.in_shape.rank
    if kind in ("conv", "dwconv", "sepconv", "deconv", "pool"):
        if spatial_rank is None:
            _refuse(layer, "Keras needs the input shape: start the program with input(...)")
        strides, dilation = num.each(layer.stride), num.each(layer.dilation)
        if any(s > 1 for s in strides) and any(d > 1 for d in dilation) and kind != "pool":
            _refuse(layer, "Keras convolutions cannot combine a stride and a dilation")
    if kind in ("conv", "dwconv", "sepconv"):
        before, padding = _padding_layers(layer, num, rank)
        common = {"kernel_size": num.each(layer.kernel), "strides": num.each(layer.stride), "padding": padding,
                  "dilation_rate": num.each(layer.dilation), "use_bias": layer.bias}
        cin, cout, groups = num(layer.cin), num(layer.cout), num(layer.groups)
        if kind == "sepconv":
            if rank > 2:
                _refuse(layer, "Keras has SeparableConv1D and SeparableConv2D only")
            return before + [KerasLayer(f"SeparableConv{rank}D", {"filters": cout, **common})]
        if kind == "dwconv" and rank <= 2:
            return before + [KerasLayer(f"DepthwiseConv{rank}D", {"depth_multiplier": cout // cin, **common})]
        return before + [KerasLayer(f"Conv{rank}D", {"filters": cout, "groups": groups, **common})]
    if kind == "deconv":
        if num(layer.groups) != 1:
            _refuse(layer, "Keras transposed convolutions have no groups")
        layers = [KerasLayer(f"Conv{rank}DTranspose", {
            "filters": num(layer.cout), "kernel_size": num.each(layer.kernel), "strides": num.each(layer.stride),
            "padding": "valid", "output_padding": num.each(layer.options["outpad"]),
            "dilation_rate": num.each(layer.dilation), "use_bias": layer.bias})]
        crop = num.each(layer.pad)
        if any(crop):
            pairs = tuple((c, c) for c in crop)
            layers.append(KerasLayer(f"Cropping{rank}D", {"cropping": pairs[0] if rank == 1 else pairs}))
        return layers
    if kind == "dense":
        return [KerasLayer("Dense", {"units": num(layer.cout), "use_bias": layer.bias})]
    if kind == "pool":
        if any(d > 1 for d in num.each(layer.dilation)):
            _refuse(layer, "Keras pooling has no dilation")
        before, padding = _padding_layers(layer, num, rank)
        op = "Max" if layer.options["op"] == "max" else "Average"
        return before + [KerasLayer(f"{op}Pooling{rank}D", {"pool_size": num.each(layer.kernel),
                                                            "strides": num.each(layer.stride), "padding": padding})]
    if kind == "globalpool":
        op = "Average" if layer.options["op"] == "avg" else "Max"
        return [KerasLayer(f"Global{op}Pooling{spatial_rank}D")]
    if kind == "flatten":
        return [KerasLayer("Flatten")]
    if kind == "norm":
        affine = layer.options["affine"]
        flags = {} if affine else {"center": False, "scale": False}
        norm = layer.options["norm"]
        if norm == "batch":
            return [KerasLayer("BatchNormalization", flags)]
        if norm == "layer":
            return [KerasLayer("LayerNormalization", flags)]
        return [KerasLayer("GroupNormalization", {"groups": num(layer.options["groups"]), **flags})]
    if kind == "prelu":
        axes = list(range(1, (spatial_rank or 0) + 1))
        if layer.options["shared"]:
            axes = list(range(1, (spatial_rank or 0) + 2))
        return [KerasLayer("PReLU", {"shared_axes": axes} if axes else {})]
    if kind == "act":
        value = layer.options.get("value")
        name = layer.name
        if name == "relu6":
            return [KerasLayer("ReLU", {"max_value": 6.0})]
        if name == "leakyrelu":
            return [KerasLayer("LeakyReLU", {"negative_slope": float(value) if value is not None else 0.01})]
        if name == "elu":
            return [KerasLayer("ELU", {"alpha": float(value) if value is not None else 1.0})]
        if name == "softmax":
            return [KerasLayer("Softmax", {"axis": -1})]
        if name == "dropout":
            return [KerasLayer("Dropout", {"rate": float(value) if value is not None else 0.5})]
        if name == "id":
            return [KerasLayer("Identity")]
        activation = {"hardswish": "hard_swish"}.get(name, name)
        return [KerasLayer("Activation", {"activation": activation})]
    raise ParamsymError(f"no Keras layer for {layer.name}")


def _walk(network: Network, num: _Numbers, emit, node: Node, x):
    """Apply the structure to `x` with `emit.layer(spec, x)` and `emit.merge(kind, xs)`."""
    if node.kind == "layer":
        for spec in keras_layers(network.layers[node.layer], num):
            x = emit.layer(spec, x)
        return x
    if node.kind == "seq":
        for child in node.children:
            x = _walk(network, num, emit, child, x)
        return x
    if node.kind == "repeat":
        for _ in range(num(node.count)):
            x = _walk(network, num, emit, node.children[0], x)
        return x
    outputs = [_walk(network, num, emit, child, x) for child in node.children]
    if node.kind == "res" and len(outputs) == 1:
        outputs.insert(0, x)
    return emit.merge("concat" if node.kind == "concat" else "add", outputs)


def _input_shape(network: Network, num: _Numbers) -> tuple:
    dims = network.input_shape.dims()
    if dims is None or any(d is None for d in dims):
        raise ParamsymUsageError("Keras needs the input shape: start the program with input(...)")
    return num.each(dims)


class _Builder:
    def __init__(self, keras):
        self.keras = keras

    def layer(self, spec: KerasLayer, x):
        try:
            return getattr(self.keras.layers, spec.cls)(**spec.kwargs)(x)
        except (ValueError, TypeError, NotImplementedError) as error:
            raise ParamsymUsageError(f"Keras refuses {spec.cls}: {error}") from None

    def merge(self, kind: str, xs):
        return (self.keras.layers.Concatenate(axis=-1) if kind == "concat" else self.keras.layers.Add())(xs)


def to_keras(network: Network, **values):
    """A keras.Model (functional) with the network's layers, channels last."""
    import keras
    num = _Numbers(network, values)
    inputs = keras.Input(shape=_input_shape(network, num))
    outputs = _walk(network, num, _Builder(keras), network.structure, inputs)
    return keras.Model(inputs, outputs)


class _Writer:
    def __init__(self):
        self.lines: list[str] = []
        self.count = 0

    def _name(self) -> str:
        self.count += 1
        return f"x{self.count}"

    def layer(self, spec: KerasLayer, x):
        args = ", ".join(f"{k}={v!r}" for k, v in spec.kwargs.items())
        name = self._name()
        self.lines.append(f"    {name} = layers.{spec.cls}({args})({x})")
        return name

    def merge(self, kind: str, xs):
        name = self._name()
        merge = "layers.Concatenate(axis=-1)" if kind == "concat" else "layers.Add()"
        self.lines.append(f"    {name} = {merge}([{', '.join(xs)}])")
        return name


def keras_source(network: Network, **values) -> str:
    """A Python file that builds the model with Keras alone (any backend)."""
    num = _Numbers(network, values)
    shape = _input_shape(network, num)
    writer = _Writer()
    out = _walk(network, num, writer, network.structure, "x0")
    program = "\n".join("    " + line if line else "" for line in network.source.strip().splitlines())
    return (f'"""Keras model written by paramsym from the program:\n\n{program}\n"""\n'
            "import keras\nfrom keras import layers\n\n\n"
            "def build_model() -> keras.Model:\n"
            f"    x0 = keras.Input(shape={shape!r})\n" + "\n".join(writer.lines) + "\n"
            f"    return keras.Model(x0, {out})\n\n\n"
            'if __name__ == "__main__":\n    model = build_model()\n'
            "    print(model.output_shape, model.count_params())\n")
