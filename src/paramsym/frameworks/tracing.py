"""Tracing a PyTorch model as it runs, on meta tensors.

`trace(module, example_shape)` records the model's forward as a torch.fx graph of
modules, functions and methods, as `torch.fx.symbolic_trace` does, but every
value of the trace also carries the tensor it stands for, on PyTorch's
meta device: shapes and dtypes, no data). So forward's Python sees real
sizes: `B, N, C = x.shape`, `x.view(B, -1)`, `len(x)`, `if x.shape[-1] % 2` and
loops over sizes run as they do in PyTorch, and only the tensor operations are
recorded (with the sizes written in as numbers). Every node's shape comes from
the same pass: there is no forward on real tensors, no weight is read or needed,
and a model built on the meta device traces like any other.

Modules that the language reads whole (torch.nn's, and the classes a kind
claims) stay single `call_module` nodes, whose values come from running their
forward on meta tensors; everything else is traced through, including functions
wrapped with `torch.fx.wrap` (timm's "no-trace" helpers), whose shape logic now
runs. What cannot be followed (a branch on a tensor's values, a tensor used as
a Python number) is refused naming the module, in the user's terms.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import re
import warnings
from collections.abc import Callable
from typing import Any

from ..errors import ImportRefused


def trace(
    module, example_shape: tuple, dtype=None, leaf: Callable[[Any, str], bool] | None = None, input_text: str = ""
):
    """The model's forward as (torch.fx.GraphModule, {node name: shape of its tensor}, [side output node names]).
    `example_shape` is PyTorch's layout without the batch (a batch of 2 is traced: GroupNorm refuses one value
    per group); `leaf(module, qualified_name)` says which modules stay whole (default: torch.nn's); `input_text`
    names the input in messages ("224x224x3")."""
    import torch
    import torch.fx as fx

    tracer = _shaped_tracer_class()(leaf)
    tracer.input_text = input_text or "x".join(str(v) for v in example_shape)
    inputs = _required_inputs(module)
    if len(inputs) > 1:  # RAFT's forward(image1, image2): a second input would be traced as nothing
        raise ImportRefused(
            f"the model's forward ({type(module).__name__}) takes {len(inputs)} inputs "
            f"({', '.join(inputs)}): paramsym imports a model of one input"
        )
    tracer.example = torch.zeros(2, *example_shape, dtype=dtype or torch.float32, device="meta")
    modes = {m: m.training for m in module.modules()}  # each module's own mode, restored after
    # forward's own code runs as in training (side heads run: GoogLeNet's, Inception's auxiliary classifiers);
    # the modules read whole compute their values in evaluation mode (no running statistics change)
    module.train()
    try:
        with torch.no_grad(), _traced_through_wrapped_functions(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = tracer.trace(module, concrete_args=tracer.defaults(module) or None)
    except ImportRefused:
        raise
    except Exception as error:  # forward's Python raises anything on a value it cannot follow
        raise ImportRefused(tracer.failure(error)) from None
    finally:
        for m, training in modes.items():
            m.training = training
    traced = fx.GraphModule(module, graph)
    # the model itself: the graph module holds copies of the modules it calls, and plain modules for the parents of
    # the buffers it reads (a RelPosMlp whose get_bias() forward runs is found in the model, by its path)
    traced.meta["root"] = module
    shapes = {
        name: tuple(int(d) for d in value.shape) for name, value in tracer.values.items() if hasattr(value, "shape")
    }
    return traced, shapes, tracer.side_outputs


def _required_inputs(module) -> list[str]:
    """The names of forward's arguments that have no default (its inputs)."""
    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    empty = inspect.Parameter.empty
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in kinds and p.default is empty]


def where(module_stack: dict) -> str:
    """The innermost module of a torch.fx module stack ({key: (path, class)}, as the tracer keeps it and as each
    node's meta["nn_module_stack"] records it), for messages: "module 'blocks.3.attn' (Attention): ", or "" at the
    model's own forward."""
    stack = list((module_stack or {}).values())
    path, cls = stack[-1] if stack else ("", None)
    if not path:
        return ""
    name = getattr(cls, "__name__", str(cls or "")).rpartition(".")[2]
    return f"module '{path}' ({name}): " if name else f"module '{path}': "


@contextlib.contextmanager
def _traced_through_wrapped_functions():
    """Functions wrapped with torch.fx.wrap (kept whole by symbolic tracing because their Python branches on
    sizes) are traced through: with real sizes their branches run."""
    from torch.fx import _symbolic_trace

    wrapped = dict(_symbolic_trace._wrapped_fns_to_patch)  # {(id of the globals, name): globals}
    _symbolic_trace._wrapped_fns_to_patch.clear()
    try:
        yield
    finally:
        _symbolic_trace._wrapped_fns_to_patch.update(wrapped)


@functools.cache
def _shaped_tracer_class():
    """The tracer class (built on first use: torch is imported only when a model is imported)."""
    import torch
    import torch.fx as fx
    from torch.fx._symbolic_trace import _orig_module_call

    def value_of(a):
        """The value a proxy stands for, on the meta device (a tensor of forward's own, torch.arange(n), too)."""
        a = a.value if isinstance(a, ShapedProxy) else a
        return a.to("meta") if isinstance(a, torch.Tensor) and not a.is_meta else a

    class ShapedProxy(fx.Proxy):
        """A traced value that knows its meta tensor (or the Python value: a size, a flag): its sizes are numbers."""

        value: Any = None

        def __getattr__(self, name):
            if name in ("shape", "ndim", "dtype", "device", "is_cuda", "is_meta", "is_floating_point", "layout"):
                return getattr(self.value, name)
            return super().__getattr__(name)

        def size(self, dim=None):
            return self.value.size() if dim is None else self.value.size(dim)

        def dim(self):
            return self.value.dim()

        def numel(self):
            return self.value.numel()

        def __len__(self):
            return len(self.value)

        def __iter__(self):
            return iter([self[i] for i in range(len(self.value))])

        def __bool__(self):
            if isinstance(self.value, torch.Tensor):
                raise ImportRefused(self.tracer.where() + "forward branches on the values of a tensor")
            return bool(self.value)

        def __index__(self):
            if isinstance(self.value, torch.Tensor):
                raise ImportRefused(self.tracer.where() + "forward uses a tensor's value as a number")
            return int(self.value)

    class ShapedTracer(fx.Tracer):
        """torch.fx's tracer with a meta value beside every proxy (`ShapedProxy`)."""

        def __init__(self, leaf):
            super().__init__()
            self.leaf = leaf
            self.twins: dict[int, Any] = {}  # module id -> its meta twin
            self.outputs: dict[tuple, tuple] = {}  # what a torch.nn module gave, by repr and shapes (`_module_value`)
            self.concrete: dict[str, Any] = {}  # forward's arguments after the input: their defaults
            self.values: dict[str, Any] = {}
            self.side_outputs: list[str] = []
            self.example = None
            self.input_text = ""
            self.plain = False  # computing a value: module attributes are themselves, not proxies

        def defaults(self, module) -> dict:
            """forward's arguments after the input, at their defaults (mask=None, is_causal=False): Python values,
            so that forward's branches on them run as PyTorch runs them."""
            parameters = list(inspect.signature(module.forward).parameters.values())[1:]
            self.concrete = {
                p.name: p.default
                for p in parameters
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.default is not inspect.Parameter.empty
            }
            return self.concrete

        def is_leaf_module(self, m, qualname) -> bool:
            return self.leaf(m, qualname) if self.leaf else super().is_leaf_module(m, qualname)

        def proxy(self, node):
            return ShapedProxy(node, self)

        def getattr(self, attr, attr_val, parameter_proxy_cache):
            return attr_val if self.plain else super().getattr(attr, attr_val, parameter_proxy_cache)

        def call_module(self, m, forward, args, kwargs):
            if self.plain:  # a module inside one that runs whole, on meta values: it runs, nothing is recorded
                return forward(*args, **kwargs)
            if (
                type(m).__name__ == "Aux"
                and isinstance(getattr(m, "head", None), torch.nn.Module)
                and len(args) == 1
                and not kwargs
            ):
                # paramsym's exported side head passes its input on and never runs its head: the head is traced
                # here on that input, as a side output of the model (read back as aux(...))
                side = super().call_module(m.head, m.head.forward, args, kwargs)
                if isinstance(side, fx.Proxy):
                    self.side_outputs.append(side.node.name)
                return args[0]
            return super().call_module(m, forward, args, kwargs)

        def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
            proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
            self.plain = True
            try:
                proxy.value = self._value(kind, target, args, kwargs)
            except ImportRefused:
                raise
            except Exception as error:
                raise ImportRefused(self.failure(error, proxy.node)) from None
            finally:
                self.plain = False
            self.values[proxy.node.name] = proxy.value
            return proxy

        def _value(self, kind, target, args, kwargs):
            if kind == "placeholder":  # the input; forward's other arguments keep their defaults
                if not self.values:
                    return self.example
                return self.concrete.get(re.sub(r"_[0-9]+$", "", target), args[0] if args else None)
            if kind == "output":
                return None
            a = fx.node.map_aggregate(args, value_of)
            k = fx.node.map_aggregate(kwargs, value_of)
            if kind == "call_function":
                return target(*a, **k)
            if kind == "call_method":
                return getattr(a[0], target)(*a[1:], **k)
            if kind == "call_module":
                return self._module_value(self.root.get_submodule(target), a, k)
            value = self.root
            for atom in target.split("."):
                value = getattr(value, atom)
            return value_of(value)

        def _module_value(self, m, args, kwargs):
            """A module kept whole, run in evaluation mode on its twin of meta tensors (`_meta_twin`). torch.nn's
            modules say all that shapes their output in their repr: one run per repr, parameter shapes and input
            shapes (ResNet-50 runs 23 of its 53 convolutions)."""
            key = None
            if (
                type(m).__module__.startswith("torch.nn.modules")
                and all(isinstance(a, torch.Tensor) for a in args)
                and not kwargs
            ):
                key = (
                    type(m),
                    m.extra_repr(),
                    tuple((t.shape, t.dtype) for t in (*m.parameters(), *m.buffers())),
                    tuple((a.shape, a.dtype) for a in args),
                )
                if key in self.outputs:
                    shape, dtype = self.outputs[key]
                    return torch.empty(shape, dtype=dtype, device="meta")
            twin = self._meta_twin(m)
            twin.eval()
            out = _orig_module_call(twin, *args, **kwargs)
            if key is not None and isinstance(out, torch.Tensor):
                self.outputs[key] = (out.shape, out.dtype)
            return out

        def _meta_twin(self, m):
            """A shallow copy of the module whose parameters and buffers are on the meta device (shapes, no data):
            the module itself is untouched, and no data is copied."""
            if id(m) not in self.twins:
                if all(t.is_meta for t in (*m.parameters(), *m.buffers())):
                    self.twins[id(m)] = m
                else:
                    twin = copy.copy(m)
                    twin.__dict__["_parameters"] = {
                        k: None if v is None else v.to("meta") for k, v in m._parameters.items()
                    }
                    twin.__dict__["_buffers"] = {k: None if v is None else v.to("meta") for k, v in m._buffers.items()}
                    twin.__dict__["_modules"] = {
                        k: None if v is None else self._meta_twin(v) for k, v in m._modules.items()
                    }
                    self.twins[id(m)] = twin
            return self.twins[id(m)]

        def where(self) -> str:
            """The module whose forward is running, for messages: "module 'blocks.3.attn' (Attention): "."""
            return where(getattr(self, "module_stack", {})) or f"the model's forward ({type(self.root).__name__}): "

        def failure(self, error: Exception, node=None) -> str:
            """Why the trace stopped, in the user's terms: the module, the operation, PyTorch's words."""
            detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            runs = f"the model does not run on a {self.input_text} input: {self.where()}"
            if node is not None and node.op in ("call_function", "call_method"):
                target = node.target
                operation = target if isinstance(target, str) else getattr(target, "__name__", str(target))
                return f"{runs}{operation}: {detail}"
            if node is not None and node.op == "call_module":
                return f"{runs}{detail}"
            return f"{self.where()}forward cannot be traced: {detail}"

    return ShapedTracer
