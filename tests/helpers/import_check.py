"""The independent re-check of a PyTorch model imported by `paramsym.from_torch`: torch's own counts
(parameters, BatchNorm running statistics, the output shape of a forward, MACs from FlopCounterMode)
against the imported program's. Shared by tests/helpers/timm_coverage.py and benchmarks/import_sweep.py.

MACs are FlopCounterMode's FLOPs / 2 over one forward of the model on a zero input on the model's device
(meta: shapes, no values). FlopCounterMode does not count everything, so a MAC difference is only a gap
of the counter where the model holds what it misses (`mac_gaps`):
  - recurrent layers (nn.RNN, nn.LSTM, nn.GRU) on the CPU and CUDA: it counts 0 for their fused kernels;
  - nn.MultiheadAttention on the CPU and CUDA: its fast path (eval, no grad) runs one fused kernel that it
    counts as 0;
  - auxiliary heads (a module named `aux...`, `AuxLogits`): the program counts them, a forward in eval
    mode does not run them;
  - F.scaled_dot_product_attention on the CPU: it runs `aten._scaled_dot_product_flash_attention_for_cpu`,
    which FlopCounterMode has no formula for (torch 2.14: it counts 0); seen while counting (`UNCOUNTED`).
On the meta device the first two and the last run decomposed into the matrix products that FlopCounterMode
counts: there they are no gap.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

BN_STATE = ("running_mean", "running_var")

# operations that multiply learnt or computed values but that FlopCounterMode counts as 0, by what they are
UNCOUNTED = {
    "aten._scaled_dot_product_flash_attention_for_cpu": (
        "F.scaled_dot_product_attention on the CPU (FlopCounterMode counts 0 for its kernel)"
    ),
}


@dataclass
class TorchCounts:
    params: int  # sum of numel over model.parameters() (each shared tensor once)
    state: int  # BatchNorm running statistics
    dims: tuple  # the output's shape without the batch axis, as torch gives it (channels first)
    macs: float  # FlopCounterMode's FLOPs / 2
    uncounted: tuple = ()  # what ran that FlopCounterMode counts 0 for (UNCOUNTED's words)


def torch_counts(model, shape) -> TorchCounts:
    """`model` (in eval mode, on its own device) on a zero input of channels-last `shape`, e.g. (224, 224, 3)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in model.parameters())
    state = sum(b.numel() for key, b in model.named_buffers() if key.rsplit(".", 1)[-1] in BN_STATE)
    device = next(iter(model.parameters()), torch.zeros(())).device
    *spatial, channels = shape
    # FlopCounterMode's module tracker hooks every tensor that requires grad, and fails on one without a
    # grad_fn (CaiT's class token, expanded): no parameter requires grad while it counts
    requires = {name: p.requires_grad for name, p in model.named_parameters()}
    model.requires_grad_(False)
    seen = _Seen()
    try:
        with torch.no_grad(), warnings.catch_warnings(), FlopCounterMode(display=False) as counter, seen:
            warnings.simplefilter("ignore")
            out = model.eval()(torch.zeros(1, channels, *spatial, device=device))
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(requires[name])
    if isinstance(out, dict):  # torchvision's segmentation models: {"out": ..., "aux": ...}
        out = out["out"]
    elif not isinstance(out, torch.Tensor):
        out = out[0]
    uncounted = tuple(words for op, words in UNCOUNTED.items() if op in seen.ops)
    return TorchCounts(params, state, tuple(int(d) for d in out.shape[1:]), counter.get_total_flops() / 2, uncounted)


def _Seen():
    """A dispatch mode that notes the operations of UNCOUNTED that run inside it (`.ops`)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Seen(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if str(func.overloadpacket) in UNCOUNTED:
                self.ops.add(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    return Seen()


def mac_gaps(model, theirs: TorchCounts | None = None) -> list[str]:
    """What FlopCounterMode does not count in `model` on its device (module docstring), each named once; with
    `theirs` (its counts), also the operations it ran that FlopCounterMode counts 0 for."""
    import torch
    from torch import nn

    fused = next(iter(model.parameters()), torch.zeros(())).device.type != "meta"
    gaps = []
    for name, module in model.named_modules():
        if fused and isinstance(module, nn.RNNBase):
            gap = "recurrent layers (FlopCounterMode counts 0)"
        elif fused and isinstance(module, nn.MultiheadAttention):
            gap = "nn.MultiheadAttention's fast path (FlopCounterMode counts 0)"
        elif re.search(r"(^|\.)aux", name, re.IGNORECASE):
            gap = "auxiliary heads (not run by an eval forward)"
        else:
            continue
        if gap not in gaps:
            gaps.append(gap)
    return gaps + list(theirs.uncounted if theirs is not None else ())


def program_counts(text: str) -> tuple:
    """(params, state, output shape channels last, MACs or None) of a paramsym program."""
    import paramsym

    network = paramsym.parse(text)
    values = network.evaluate()
    shape = tuple(int(network.value(d)) for d in network.output_shape.dims())
    try:
        macs = int(values.get("macs"))
    except (TypeError, ValueError):
        macs = None
    return values["params"], values["state"], shape, macs


def differences(ours: tuple, theirs: TorchCounts) -> list[str]:
    """What differs between a program's (params, state, shape) and torch's, in words; [] if nothing."""
    params, state, shape = ours[:3]
    # the language writes channels last; a sequence (N, T, d) is already channels last
    dims = theirs.dims
    wrong = []
    if params != theirs.params:
        wrong.append(f"params torch {theirs.params:,} paramsym {params:,}")
    if state != theirs.state:
        wrong.append(f"state torch {theirs.state:,} paramsym {state:,}")
    if shape not in {dims, dims[1:] + dims[:1]}:
        wrong.append(f"shape torch {dims} paramsym {shape}")
    return wrong


def check(model, shape, text) -> dict:
    """The re-check of a returned program, as benchmarks/import_sweep.py records it."""
    theirs = torch_counts(model, shape)
    ours = program_counts(text)
    return {
        "params": theirs.params,
        "state": theirs.state,
        "wrong": "; ".join(differences(ours, theirs)),
        "macs": ours[3],
        "torch_macs": theirs.macs,
        "gaps": "; ".join(mac_gaps(model, theirs)),
    }


def first_line(error) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def reason_group(detail: str) -> str:
    """A refusal's reason without its model-specific names and numbers."""
    text = re.sub(r"'[^']*'", "'…'", detail)
    text = re.sub(r"\([A-Za-z0-9_]+\)", "(…)", text)
    text = re.sub(r"\d[\d,x.]*", "N", text)
    return text[:140]


# ---- Hugging Face language models (benchmarks/hf_sweep.py) ------------------------------------------------

HF_STATE = BN_STATE + ("e_score_correction_bias",)  # a router's bias per expert, saved with the weights


def hf_counts(model, length: int) -> tuple[TorchCounts, int | None]:
    """A transformers model (on its device; meta: shapes only) on `length` token ids (an encoder-decoder: as many
    decoder ids too): its parameters, state, the shape of its main output (logits, else the pooled output, else
    the last hidden states) and FlopCounterMode's MACs; and the values its cache holds after that forward (a
    decoder's keys and values; None for an encoder-decoder or a model without a cache)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in model.parameters())
    persistent = model.state_dict(keep_vars=True)
    state = sum(
        b.numel()
        for key, b in model.named_buffers()
        if key.rsplit(".", 1)[-1] in HF_STATE and key in persistent and b.is_floating_point()
    )
    device = next(iter(model.parameters()), torch.zeros(())).device
    ids = torch.zeros(1, length, dtype=torch.long, device=device)
    kwargs = {}
    config = model.config
    attention = getattr(config, "_attn_implementation", None)
    experts = getattr(config, "_experts_implementation", None)
    if getattr(config, "is_encoder_decoder", False):
        kwargs["decoder_input_ids"] = ids
        config._attn_implementation = "eager"  # SDPA's mask check reads a value, which meta tensors do not have
    if experts not in (None, "eager", "batched_mm"):
        config._experts_implementation = "batched_mm"  # grouped_mm has no meta kernel for float32
    requires = {name: p.requires_grad for name, p in model.named_parameters()}
    model.requires_grad_(False)
    try:
        try:
            with torch.no_grad(), warnings.catch_warnings(), FlopCounterMode(display=False) as counter:
                warnings.simplefilter("ignore")
                out = model.eval()(ids, **kwargs, **({} if kwargs else {"use_cache": True}))
        except RuntimeError:
            if config._attn_implementation in (None, "eager"):
                raise
            # SDPA's mask check reads a value of a mask the model passes (BioGPT's): eager, as paramsym's own run
            config._attn_implementation = "eager"
            with torch.no_grad(), warnings.catch_warnings(), FlopCounterMode(display=False) as counter:
                warnings.simplefilter("ignore")
                out = model.eval()(ids, **kwargs, **({} if kwargs else {"use_cache": True}))
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(requires[name])
        if attention is not None:
            config._attn_implementation = attention
        if experts is not None:
            config._experts_implementation = experts
    main = next(
        (
            getattr(out, k)
            for k in ("logits", "pooler_output", "last_hidden_state")
            if getattr(out, k, None) is not None
        ),
        out[0] if not isinstance(out, torch.Tensor) else out,
    )
    counts = TorchCounts(params, state, tuple(int(d) for d in main.shape[1:]), counter.get_total_flops() / 2)
    return counts, _cache_values(out)


def active_params(model) -> int:
    """The parameters one token goes through, from the model's own modules: every expert module (a class named
    `...Experts`, E experts stored together) counts only `num_experts_per_tok` of its E experts."""
    top = getattr(model.config, "num_experts_per_tok", None)
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        if type(module).__name__.endswith("Experts") and top:
            experts = getattr(module, "num_experts", None) or next(iter(module.parameters())).shape[0]
            own = sum(p.numel() for p in module.parameters(recurse=False))
            total -= own - own // experts * top
    return total


def _cache_values(out) -> int | None:
    """The values a decoder's cache holds after the forward (its layers' keys and values), or None."""
    cache = getattr(out, "past_key_values", None)
    layers = getattr(cache, "layers", None)
    if not layers:
        return None
    total = 0
    for layer in layers:
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if tensor is None or not hasattr(tensor, "numel"):
                return None
            total += tensor.numel()
    return total


def hf_check(model, length: int, text: str) -> dict:
    """The re-check of a returned program of a transformers model, as benchmarks/hf_sweep.py records it."""
    theirs, cache = hf_counts(model, length)
    ours = program_counts(text)
    import paramsym

    values = paramsym.parse(text).evaluate()
    kv = values.get("kv_cache")
    return {
        "active": int(values["active"]),
        "torch_active": active_params(model),
        "params": theirs.params,
        "state": theirs.state,
        "wrong": "; ".join(differences(ours, theirs)),
        "macs": ours[3],
        "torch_macs": theirs.macs,
        "kv_cache": None if kv is None else int(kv),
        "torch_cache": cache,
    }
