"""Hugging Face `transformers` models and torchvision's ViT, Swin and MaxViT to programs.

These models do not trace with torch.fx (their forward passes branch on
Python values), but each family has one layout, which its config and a few
modules describe. The program is written in that layout with `def` blocks and
a repeat, so it reads like the paper's table. `importer.from_torch` then
checks it as it checks every import (parameters, running statistics, output
shape, unused parameters): a variant the layout does not cover is refused,
never imported inexactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import ImportRefused


def _shared(a, b) -> bool:
    return a is not None and b is not None and a.weight is b.weight


# Hugging Face's activation names (ACT2FN) and the kind each is: the GELUs differ in their approximation only
_HF_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu",
    "gelu_pytorch_tanh": "gelu",
    "gelu_fast": "gelu",
    "gelu_python": "gelu",
    "gelu_accurate": "gelu",
    "relu": "relu",
    "relu6": "relu6",
    "relu2": "squaredrelu",  # relu(x)² (Arcee's, Nemotron's, Persimmon's)
    "silu": "silu",
    "swish": "silu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
}


# activations of Hugging Face that the language has no counterpart of, and why
_HF_UNREAD = {
    "xielu": "xIELU learns two numbers (alpha_p, alpha_n) in each MLP, which no activation of the language has",
}


def _hf_activation(model, field: str) -> str:
    value = getattr(model.config, field)
    if isinstance(value, str) and value in _HF_UNREAD:
        raise ImportRefused(f"{type(model).__name__} with the activation {field}={value!r}: {_HF_UNREAD[value]}")
    if not isinstance(value, str) or value not in _HF_ACTIVATIONS:
        raise ImportRefused(
            f"{type(model).__name__} with the activation {field}={value!r} has no counterpart "
            f"(paramsym reads {', '.join(sorted(_HF_ACTIVATIONS))})"
        )
    return _HF_ACTIVATIONS[value]


def _classes(model, *names: str) -> None:
    """Only these classes of a family are read: another head (sequence classification, question answering, a
    second head) has layers that the family's layout does not write."""
    if type(model).__name__ not in names:
        raise ImportRefused(f"{type(model).__name__}: of its family paramsym reads {', '.join(names)}")


def _length(
    model,
    length: int | None,
    shape: tuple | None,
    limit: int | None,
    field: str,
    first: int = 0,
    table: str = "learns one position embedding",
) -> int | None:
    """The sequence length asked for: a language model takes one axis, and one with learned absolute positions
    (a table of `limit` rows, whose positions start at row `first`; `table` says what it keeps in it) cannot look
    up a position beyond its table."""
    if shape is not None and len(shape) != 1:
        raise ImportRefused(
            f"{type(model).__name__} takes a sequence of token ids: give its length as the input "
            f"(--input {shape[0]}), not {'x'.join(str(v) for v in shape)}"
        )
    if length is not None and length < 1:
        raise ImportRefused(f"{type(model).__name__}: the sequence length must be at least 1, not {length}")
    if limit is not None and length is not None and length > limit - first:
        start = (
            f" from row {first} on (its positions start after padding_idx={first - 1}), so the longest sequence "
            f"it takes is {limit - first}"
            if first
            else ""
        )
        raise ImportRefused(
            f"{type(model).__name__} {table} for each of {limit} positions "
            f"({field}={limit}){start}: a sequence of {length} has positions it cannot look up (PyTorch "
            f"would fail to index its table)"
        )
    return length


# GPT-2's layout, and GPT-BigCode's (StarCoder 1, SantaCoder): GPT-2's with multi_query, one key/value head for all
# the query heads (its fused c_attn projects d + 2·e channels)
_GPT2S = {"gpt2": ("GPT2Model", "GPT2LMHeadModel"), "gpt_bigcode": ("GPTBigCodeModel", "GPTBigCodeForCausalLM")}


def _gpt2(model, length: int | None, shape: tuple | None = None) -> str:
    c = model.config
    _classes(model, *_GPT2S[c.model_type])
    length = _length(model, length, shape, c.n_positions, "n_positions")
    if getattr(c, "add_cross_attention", False):
        raise ImportRefused(
            f"{type(model).__name__} with add_cross_attention=True: its blocks attend to an encoder's "
            f"output too (a second attention and layer norm in every block), which the layout does not "
            f"write"
        )
    base = getattr(model, "transformer", model)
    head = getattr(model, "lm_head", None)
    act = _hf_activation(model, "activation_function")
    inner = c.n_inner or 4 * c.n_embd
    multi = ", kv_heads=1" if getattr(c, "multi_query", False) else ""  # GPT-BigCode's multi-query attention
    lines = [
        f"# {type(model).__name__} read by paramsym from its config",
        f"let V = {c.vocab_size}; let n = {c.n_positions}; let d = {c.n_embd}; let L = {c.n_layer}; let h = {c.n_head}",
        f"def block = res(ln > attn(heads=h{multi}, bias, causal)) > res(ln > dense(->{_width(inner, c.n_embd)}, bias) "
        f"> {act} > dense(->d, bias))",
    ]
    network = (
        f"input({length or 'n'}) > embed(V->d){' as wte' if head is not None else ''} > posembed(n) > (block) * L > ln"
    )
    if head is not None:
        network += " > dense(->V, tie=wte)" if _shared(head, base.wte) else " > dense(->V)"
    return "\n".join(lines + [network]) + "\n"


def _width(value: int, d: int) -> str:
    return f"{value // d}d" if value % d == 0 else str(value)


@dataclass(frozen=True)
class _Layout:
    """A family in Llama's layout: its classes, and how its sliding windows are given."""

    classes: tuple[str, ...]
    # the layers config.layer_types names "sliding_attention" slide, the others attend to every position (Qwen2's
    # and Qwen3's configs write the list from use_sliding_window and max_window_layers, and transformers builds
    # the attention and the cache from it); else every layer slides when config.sliding_window is set
    layer_types: bool = False
    # Glm4's norms after the attention and the MLP too (post_self_attn_layernorm, post_mlp_layernorm), inside the
    # residuals: res(rmsnorm > attn > rmsnorm) > res(rmsnorm > mlp > rmsnorm)
    sandwich: bool = False
    # the config's yes/no field that says whether the blocks have those norms after (HyperCLOVAX's use_post_norm,
    # its post_norm1 and post_norm2: an RMSNorm, or an Identity without parameters)
    sandwich_field: str | None = None
    # the norm of the blocks and the last one: RMSNorm (a weight), or LayerNorm with weight and bias (PhiMoE's)
    norm: str = "rmsnorm"
    # the form of q_norm and k_norm: an RMSNorm of the head width shared by the heads (Qwen3's, `rms`), or one
    # over the whole query projection and one over the whole key projection (OLMoE's, `rms_full`)
    qk_norm: str = "rms"
    # the experts a position goes through whatever num_experts_per_tok says (PhiMoE's sparsemixer: 2)
    top_k: int | None = None


_LLAMAS = {
    "llama": _Layout(("LlamaModel", "LlamaForCausalLM")),
    "mistral": _Layout(("MistralModel", "MistralForCausalLM")),
    # Ministral 3: Mistral's layout; its queries scaled by position (llama_4_scaling_beta): no parameters, no MACs
    # of a matrix product
    "ministral3": _Layout(("Ministral3Model", "Ministral3ForCausalLM")),
    "mixtral": _Layout(("MixtralModel", "MixtralForCausalLM")),
    # Llama's layout with biases on q, k and v (qkv_bias)
    "qwen2": _Layout(("Qwen2Model", "Qwen2ForCausalLM"), layer_types=True),
    # Qwen2's attention, routed experts beside a shared expert behind a per-token sigmoid gate
    "qwen2_moe": _Layout(("Qwen2MoeModel", "Qwen2MoeForCausalLM"), layer_types=True),
    # Llama's layout with an RMSNorm of the head width on every query and key head (qk_norm=rms)
    "qwen3": _Layout(("Qwen3Model", "Qwen3ForCausalLM"), layer_types=True),
    # Qwen3's attention and routed experts (no shared expert; norm_topk_prob learns nothing)
    "qwen3_moe": _Layout(("Qwen3MoeModel", "Qwen3MoeForCausalLM")),
    # OLMoE: Mixtral's experts (norm_topk_prob learns nothing), q_norm and k_norm over the whole projections, q, k
    # and v clamped to +-clip_qkv (no parameters)
    "olmoe": _Layout(("OlmoeModel", "OlmoeForCausalLM"), qk_norm="rms_full"),
    # Granite's multipliers (numbers, no parameters) around Mixtral's experts, kept in block_sparse_moe
    "granitemoe": _Layout(("GraniteMoeModel", "GraniteMoeForCausalLM")),
    # PhiMoE: Mixtral's layout with LayerNorms (weight and bias), biases on the attention (attention_bias) and the
    # head (lm_head_bias); its router (sparsemixer) sends every position through 2 experts
    "phimoe": _Layout(("PhimoeModel", "PhimoeForCausalLM"), norm="ln", top_k=2),
    # GLM-4.5's MoE: DeepSeek-V3's experts (first_k_dense_replace dense layers, shared experts, a score bias per
    # expert) behind a grouped-query attention with qkv_bias, optional per-head qk norms and partial rotary
    "glm4_moe": _Layout(("Glm4MoeModel", "Glm4MoeForCausalLM")),
    # ERNIE 4.5's MoE: ERNIE 4.5's layers (use_bias) with experts every moe_layer_interval layers from
    # moe_layer_start_index, shared experts added as they are; its routers keep their score bias as a parameter
    # (moe_statics), which the language's moe does not: refused wherever a layer has experts
    "ernie4_5_moe": _Layout(("Ernie4_5_MoeModel", "Ernie4_5_MoeForCausalLM")),
    # Solar Open: GLM-4.5-MoE's experts (shared experts, a score bias) in every layer behind Llama's attention
    "solar_open": _Layout(("SolarOpenModel", "SolarOpenForCausalLM")),
    # Llama's layout with q, k, v fused in one Linear, gate and up in one
    "phi3": _Layout(("Phi3Model", "Phi3ForCausalLM")),
    # Llama's layout and counts; its embedding_multiplier, residual_multiplier, attention_multiplier (the attention's
    # scale) and logits_scaling are numbers that scale values: no parameters, no MACs of a matrix product
    "granite": _Layout(("GraniteModel", "GraniteForCausalLM")),
    # HyperCLOVAX: Granite's layout and multipliers (its logits_scaling multiplies) with an RMSNorm after the
    # attention and after the MLP inside the residuals (Peri-LN) when use_post_norm is set
    "hyperclovax": _Layout(("HyperCLOVAXModel", "HyperCLOVAXForCausalLM"), sandwich_field="use_post_norm"),
    # Llama's layout (its rotary embedding turns interleaved pairs of channels: the same counts); with
    # attention_bias, biases on q, k and v only (qkv_bias)
    "helium": _Layout(("HeliumModel", "HeliumForCausalLM")),
    # Llama's layout: Seed-OSS with its attention's biases (attention_bias, attention_out_bias) read from the
    # projections, ERNIE 4.5 with biases on every projection and the MLP (use_bias), CWM with its sliding layers
    "seed_oss": _Layout(("SeedOssModel", "SeedOssForCausalLM")),
    "ernie4_5": _Layout(("Ernie4_5Model", "Ernie4_5ForCausalLM")),
    "cwm": _Layout(("CwmModel", "CwmForCausalLM"), layer_types=True),
    # Llama's layout with layers without rotary positions (NoPE: no_rope_layers, read from each attention's
    # use_rope) and sliding layers by layer_types
    "smollm3": _Layout(("SmolLM3Model", "SmolLM3ForCausalLM"), layer_types=True),
    # Llama's layout with biases on q, k and v (qkv_bias), gate and up in one Linear, rotary positions on the first
    # partial_rotary_factor of each head (interleaved pairs: the same counts); GLM-4 adds Glm4's two norms
    "glm": _Layout(("GlmModel", "GlmForCausalLM")),
    "glm4": _Layout(("Glm4Model", "Glm4ForCausalLM"), sandwich=True),
    # Llama's layout with an MLP up_proj > act > down_proj (no gate): Arcee's relu2 (squared ReLU); Apertus with
    # qk_norm=rms (its xIELU activation learns two numbers a layer, which no activation of the language has)
    "arcee": _Layout(("ArceeModel", "ArceeForCausalLM")),
    "apertus": _Layout(("ApertusModel", "ApertusForCausalLM")),
    # Jais 2: Arcee's MLP (up_proj > relu2 > down_proj) and LayerNorms with weight and bias; biases on the attention
    # and the MLP by default (attention_bias, mlp_bias)
    "jais2": _Layout(("Jais2Model", "Jais2ForCausalLM"), norm="ln"),
}


def _own_class_family(model) -> str | None:
    """The family of Llama's layout whose own class the model is, under another model_type: transformers 5.23 builds
    InternLM3's and IQuest-Coder's configs (model_type internlm3, iquestcoder) as LlamaModel and LlamaForCausalLM,
    from transformers.models.llama itself, so they are Llama's code and read as Llama."""
    for family, layout in _LLAMAS.items():
        if (
            type(model).__name__ in layout.classes
            and type(model).__module__ == f"transformers.models.{family}.modeling_{family}"
        ):
            return family
    return None


# the families whose attention turns only the first channels of each head that its rotary tables cover (their
# apply_rotary_pos_emb cuts q and k at the tables' width, cos.shape[-1]); the others turn whole heads
_PARTIAL_ROTARY = {"phi3", "gpt_neox", "glm", "glm4", "glm4_moe"}


def _rope(model, rotary_emb, head_dim: int, sliced: bool) -> str:
    """`rope` or `rope=F`: the channels of each head that the model turns, read from its rotary embedding's
    inverse frequencies (its cos and sin tables have 2·len(inv_freq) channels: int(e·partial_rotary_factor)
    rounded up to even, for the families that read partial_rotary_factor). A family that turns whole heads with
    tables of another width would fail in its forward pass: refused."""
    from ..kinds.attention import fraction_text

    inverse = getattr(rotary_emb, "inv_freq", None)
    factor = (getattr(model.config, "rope_parameters", None) or {}).get("partial_rotary_factor", 1.0)
    if inverse is None:
        raise ImportRefused(f"{type(model).__name__}: its rotary embedding has no inv_freq to read its width from")
    turned = 2 * inverse.numel()
    if turned == head_dim:
        return "rope"
    if not sliced or not 0 < turned < head_dim:
        raise ImportRefused(
            f"{type(model).__name__} with partial_rotary_factor={factor}: its rotary tables have {turned} channels "
            f"for heads of {head_dim}, which its attention "
            + ("turns whole (its forward pass would fail)" if not sliced else "cannot turn")
        )
    return f"rope={fraction_text(turned, head_dim)}"


def _attention_biases(model, base) -> list[str]:
    """The biases of a Llama-layout attention, read from its first layer's projections (the import checks the
    others by their count): on all four (`bias`), on q, k and v only (`qkv_bias`, Qwen2's) or none."""
    attention = base.layers[0].self_attn
    where = f"{type(model).__name__}.model.layers.0.self_attn"
    if hasattr(attention, "qkv_proj"):  # Phi-3's fused q, k, v
        inputs = [attention.qkv_proj.bias is not None]
    else:
        inputs = [getattr(attention, f"{x}_proj").bias is not None for x in "qkv"]
    output = attention.o_proj.bias is not None
    if len(set(inputs)) != 1 or (output and not inputs[0]):
        raise ImportRefused(
            f"{where}: biases on {'some' if len(set(inputs)) != 1 else 'none'} of the query, key and value "
            f"projections{' and on the output' if output else ''} have no counterpart (paramsym reads biases on all "
            f"four, on q, k and v only (qkv_bias), or none)"
        )
    return ["bias"] if output else ["qkv_bias"] if inputs[0] else []


def _qk_norms(model, base, head_dim: int, form: str = "rms", heads: int = 1, kv: int = 1) -> list[str]:
    """Qwen3's q_norm and k_norm, an RMSNorm (a weight) of the head width on every query and key head, shared by
    the heads: `qk_norm=rms` (2·head_dim parameters a layer); OLMoE's, an RMSNorm over the whole query projection
    (heads·head_dim) and one over the whole key projection (kv·head_dim): `qk_norm=rms_full`; none: []. Every layer
    is read."""
    widths = [head_dim, head_dim] if form == "rms" else [heads * head_dim, kv * head_dim]
    found = []
    for i, layer in enumerate(base.layers):
        attention = layer.self_attn
        norms = [getattr(attention, name, None) for name in ("q_norm", "k_norm")]
        if norms == [None, None]:
            found.append(False)
            continue
        if not all(
            n is not None
            and type(n).__name__.endswith("RMSNorm")
            and [tuple(p.shape) for p in n.parameters()] == [(w,)]
            for n, w in zip(norms, widths)
        ):
            what = (
                f"an RMSNorm with a weight of the head width {head_dim} on both"
                if form == "rms"
                else f"an RMSNorm with a weight of {widths[0]} on the queries, of {widths[1]} on the keys"
            )
            raise ImportRefused(
                f"{type(model).__name__}.model.layers.{i}.self_attn normalises its queries and keys with "
                f"{', '.join(type(n).__name__ for n in norms)}: the language's attn has qk_norm={form} ({what})"
            )
        found.append(True)
    if len(set(found)) > 1:
        raise ImportRefused(f"{type(model).__name__}: some layers normalise their queries and keys, others not")
    return [f"qk_norm={form}"] if found and found[0] else []


def _window(model) -> int | None:
    """A sliding window (Mistral-7B v0.1's; transformers 5.23 builds a sliding cache from any config that sets
    one, a Llama's too): each position attends to itself and the `sliding_window` - 1 positions before it, and
    the cache keeps sliding_window - 1 of them (transformers' DynamicSlidingWindowLayer), which
    `attn(..., window=W, causal)` counts: a KV cache of min(T, W - 1) positions a layer, the parameters and MACs
    of causal attention."""
    # a use_sliding_window flag (Qwen2's) is not read: transformers 5.23 builds the sliding-window cache from
    # sliding_window alone (MistralConfig(use_sliding_window=False) still slides), and Qwen's configs set
    # sliding_window to None (Qwen2-MoE's to 0) themselves when their flag is off
    window = getattr(model.config, "sliding_window", None)
    if window is None:
        return None
    if not (isinstance(window, int) and window >= 1):
        raise ImportRefused(f"{type(model).__name__} has sliding_window={window!r}: not a positive whole number")
    return window


def _uniform_window(model) -> int | None:
    """The sliding window of a family whose layers all slide (sliding_window set) or none. transformers 5.23's cache
    follows config.layer_types where the config has one (cache_utils.get_layer_types_and_kwargs): a list that is not
    every layer of that one kind (all full_attention beside a sliding_window: a cache of every position, the window
    counting fewer) disagrees with the attention, and is refused."""
    window = _window(model)
    types = getattr(model.config, "layer_types", None)
    expected = "full_attention" if window is None else "sliding_attention"
    if types is not None and any(t != expected for t in types):
        raise ImportRefused(
            f"{type(model).__name__} with layer_types={list(types)}: its attention slides on every layer or "
            f"none (sliding_window={window!r}), but transformers' cache follows layer_types; the two disagree"
        )
    return window


def _cache_windows(model, windowed: bool) -> None:
    """What transformers 5.23's cache keeps, as its attention attends: chunked attention (attention_chunk_size, a
    cache of chunks) has no counterpart; in a family whose layout has no window (`windowed` False), a sliding_window
    or sliding layer_types in its config would make transformers' cache keep the last positions only while the
    attention attends to every one (cache_utils.get_layer_types_and_kwargs reads any config's sliding_window)."""
    c, name = model.config, type(model).__name__
    chunk = getattr(c, "attention_chunk_size", None)
    if chunk is not None:
        raise ImportRefused(
            f"{name} with attention_chunk_size={chunk!r}: transformers' cache keeps each layer's keys and values by "
            f"chunks of positions (chunked attention), which the language's attn does not count"
        )
    if windowed:
        return
    window = getattr(c, "sliding_window", None)
    types = getattr(c, "layer_types", None)
    if window is not None or (types is not None and any(t != "full_attention" for t in types)):
        raise ImportRefused(
            f"{name} with sliding_window={window!r}"
            + (f" and layer_types={list(types)}" if types is not None else "")
            + ": transformers' cache would keep only the last positions of a sliding layer, but the family's "
            "attention attends to every position before it (its layout has no window); the two disagree"
        )


def _windows(model, layout: _Layout, layers) -> list[int | None]:
    """The sliding window of every layer (None: it attends to every position before it), as transformers 5.23
    builds the attention's mask and the cache (cache_utils.get_layer_types_and_kwargs: config.layer_types when
    the config has it, else sliding_window on every layer)."""
    c = model.config
    types = getattr(c, "layer_types", None)
    if not layout.layer_types:
        return [_uniform_window(model)] * len(layers)
    if types is None or len(types) != len(layers):
        raise ImportRefused(
            f"{type(model).__name__}: config.layer_types does not name each of its {len(layers)} layers"
        )
    windows: list[int | None] = []
    for i, (kind, layer) in enumerate(zip(types, layers)):
        if kind == "full_attention":
            window = None
        elif kind == "sliding_attention":
            window = _window(model)
            if window is None:
                raise ImportRefused(f"{type(model).__name__}: layer {i} is a sliding layer with no sliding_window")
        else:
            raise ImportRefused(
                f"{type(model).__name__}: layer {i} is of the type {kind!r} (paramsym reads full_attention and "
                f"sliding_attention)"
            )
        own = getattr(layer.self_attn, "sliding_window", None)
        if not getattr(layer.self_attn, "is_sliding", True):
            own = None  # EXAONE 4's attention keeps the config's window on every layer and slides where is_sliding
        if own != window:
            raise ImportRefused(
                f"{type(model).__name__}.model.layers.{i}.self_attn slides over "
                f"{own} positions, but config.layer_types[{i}] is {kind!r}"
            )
        windows.append(window)
    return windows


def _gated_mlp_width(mlp, where: str) -> int:
    """The width of a gated MLP (gate_proj and up_proj, or Phi-3's fused gate_up_proj, then down_proj)."""
    if hasattr(mlp, "gate_proj") and hasattr(mlp, "up_proj") and hasattr(mlp, "down_proj"):
        return mlp.gate_proj.out_features
    if hasattr(mlp, "gate_up_proj") and hasattr(mlp, "down_proj"):
        return mlp.gate_up_proj.out_features // 2
    raise ImportRefused(f"{where} ({type(mlp).__name__}) is not a gated MLP (gate_proj, up_proj, down_proj)")


def _ffn_module(layer):
    """A layer's MLP or experts: `mlp`, or GraniteMoE's `block_sparse_moe`."""
    mlp = getattr(layer, "mlp", None)
    return mlp if mlp is not None else getattr(layer, "block_sparse_moe", None)


def _feed_forward(model, mlp, where: str, top_k: int | None = None) -> tuple:
    """What a layer's MLP is, read from its modules: ("mlp", width), or ("moe", experts, top, expert width,
    shared expert width or None, how the shared expert is gated, its biases, score bias) for routed experts (a
    router without a bias, `gate` or `router`, whose weight is E x d; the experts' gated MLPs without biases as
    3-D tensors), with Qwen2-MoE's shared expert (a gated MLP) behind a per-token gate,
    sigmoid(shared_expert_gate(x)), a Linear d -> 1 ("gate", or "gate_bias" with its bias), or GLM-4.5-MoE's
    shared experts added as they are (`shared_experts`, one gated MLP: "none"); a router that keeps a score bias
    buffer per expert to choose them (e_score_correction_bias) is `score_bias`. `top_k`: the experts a position
    goes through whatever num_experts_per_tok says (PhiMoE's sparsemixer takes 2). ("plain", width) without a
    gate."""
    if mlp is None:
        raise ImportRefused(f"{where}: a layer without an MLP (mlp) or experts (block_sparse_moe)")
    experts = getattr(mlp, "experts", None)
    if experts is None and not any(hasattr(mlp, n) for n in ("gate_proj", "gate_up_proj")) and hasattr(mlp, "up_proj"):
        return ("plain", mlp.up_proj.out_features)  # up_proj > act > down_proj (Arcee's, Apertus's)
    if experts is None:
        return ("mlp", _gated_mlp_width(mlp, where))
    count = getattr(experts, "num_experts", None)
    gate_up = getattr(experts, "gate_up_proj", None)
    if not isinstance(count, int) or gate_up is None or gate_up.dim() != 3 or gate_up.shape[0] != count:
        raise ImportRefused(
            f"{where}.experts ({type(experts).__name__}): routed experts other than a gated MLP each, stored as "
            f"3-D tensors (gate_up_proj, down_proj), have no counterpart"
        )
    d, width = model.config.hidden_size, gate_up.shape[1] // 2
    tensors = {n: tuple(p.shape) for n, p in experts.named_parameters()}
    if tensors != {"gate_up_proj": (count, 2 * width, d), "down_proj": (count, d, width)}:
        extra = sorted(set(tensors) - {"gate_up_proj", "down_proj"})
        raise ImportRefused(
            f"{where}.experts ({type(experts).__name__}) holds "
            + (f"{', '.join(extra)} beside its weights" if extra else f"tensors of shapes {tensors}")
            + ": the language's moe has experts of E gated MLPs without biases (gate_up_proj "
            f"{(count, 2 * width, d)}, down_proj {(count, d, width)})"
        )
    router = getattr(mlp, "gate", None)
    router = router if router is not None else getattr(mlp, "router", None)
    kept = [(n, p) for n, p in (router.named_parameters() if router is not None else []) if "score_correction" in n]
    if kept:  # ERNIE 4.5 MoE's moe_statics
        frozen = " that learns nothing (requires_grad=False)" if not kept[0][1].requires_grad else ""
        raise ImportRefused(
            f"{where}.{'gate' if router is getattr(mlp, 'gate', None) else 'router'} keeps its score bias per expert "
            f"({kept[0][0]}) as a parameter{frozen}: parameters() counts it, but the "
            f"language's moe keeps a score bias as state (moe(..., score_bias), DeepSeek-V3's buffer), not as a "
            f"parameter"
        )
    if router is None or {n: tuple(p.shape) for n, p in router.named_parameters()} != {"weight": (count, d)}:
        held = {} if router is None else {n: tuple(p.shape) for n, p in router.named_parameters()}
        raise ImportRefused(
            f"{where}: a router other than a weight of {count} x {d} without a bias "
            f"({'none found' if router is None else f'it holds {held}'}): the language's moe has a router "
            f"dense(d->E) without bias"
        )
    persistent = set(router.state_dict())
    buffers = {n: tuple(b.shape) for n, b in router.named_buffers() if n in persistent}
    if buffers not in ({}, {"e_score_correction_bias": (count,)}):
        raise ImportRefused(
            f"{where}: its router keeps buffers {buffers} that the language does not count (moe's score_bias is "
            f"one bias per expert, e_score_correction_bias of ({count},))"
        )
    top = top_k if top_k is not None else getattr(model.config, "num_experts_per_tok", None)
    if not isinstance(top, int) or not 1 <= top <= count:
        taken = f"its router takes {top}" if top_k is not None else f"num_experts_per_tok={top!r}"
        raise ImportRefused(f"{where}: {count} experts, of which {taken} a token: not 1 to {count}")
    shared = getattr(mlp, "shared_expert", None)
    gate = getattr(mlp, "shared_expert_gate", None)
    if (shared is None) != (gate is None):
        raise ImportRefused(f"{where}: a shared expert without its gate (or a gate without it) has no counterpart")
    if gate is not None and (type(gate).__name__ != "Linear" or gate.out_features != 1):
        raise ImportRefused(f"{where}.shared_expert_gate ({type(gate).__name__}) is not a Linear to one value")
    form = None if gate is None else "gate_bias" if gate.bias is not None else "gate"
    name = "shared_expert"
    if getattr(mlp, "shared_experts", None) is not None:  # added ungated (GLM-4.5-MoE's, DeepSeek's)
        if shared is not None:
            raise ImportRefused(f"{where}: both a shared_expert and shared_experts have no counterpart")
        shared, form, name = mlp.shared_experts, "none", "shared_experts"
    shared_width, shared_bias = (None, False) if shared is None else _gated_mlp(shared, f"{where}.{name}", "")
    if shared_width == 0 and not shared_bias:  # GLM-4.5-MoE's n_shared_experts=0: Linears of no width, adding 0
        shared_width, form = None, None
    return ("moe", count, top, width, shared_width, form, shared_bias, bool(buffers))


def _sequence(names: list[str]) -> str:
    """The layers as a program writes them: `(block) * L` for one kind, a repeated pattern as `(a > b) * n` (its
    runs as `((a) * 3 > b) * n`, a last repeat that stops short after it: `((a) * 3 > b) * 7 > (a) * 2`), else runs
    of each block in order."""
    n = len(names)
    period = next(p for p in range(1, n + 1) if all(names[i] == names[i % p] for i in range(n)))
    if period == 1:
        return f"({names[0]}) * L"
    if n // period < 2:
        return _runs(names)
    return f"({_runs(names[:period])}) * {n // period}" + (f" > {_runs(names[: n % period])}" if n % period else "")


def _runs(names: list[str]) -> str:
    """`a > (b) * 3 > a`: each run of one block as a repeat."""
    runs: list[list] = []
    for name in names:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    return " > ".join(name if count == 1 else f"({name}) * {count}" for name, count in runs)


def _mlp_bias(model, layers) -> bool:
    """Whether the MLPs have biases, read from the first dense MLP's down_proj (config.mlp_bias in Llama's family,
    use_bias in ERNIE 4.5's); a model of experts only: config.mlp_bias (the import checks the others by their count)."""
    for layer in layers:
        mlp = _ffn_module(layer)
        down = getattr(mlp, "down_proj", None)
        if getattr(mlp, "experts", None) is None and down is not None:
            return down.bias is not None
    return bool(getattr(model.config, "mlp_bias", False))


def _llama(model, length: int | None, shape: tuple | None = None) -> str:
    c = model.config
    layout = _LLAMAS.get(c.model_type) or _LLAMAS[_own_class_family(model) or ""]
    _classes(model, *layout.classes)
    length = _length(model, length, shape, None, "")  # rotary positions: any length (no table to look up)
    base = getattr(model, "model", model)
    head = getattr(model, "lm_head", None)
    act = _hf_activation(model, "hidden_act")
    heads, kv = c.num_attention_heads, getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    attention = (
        ["heads=h"]
        + (["kv_heads=g"] if kv != heads else [])
        + ([f"head_dim={head_dim}"] if head_dim * heads != c.hidden_size else [])
        + _attention_biases(model, base)
        + _qk_norms(model, base, head_dim, layout.qk_norm, heads, kv)
    )
    rope = _rope(model, base.rotary_emb, head_dim, sliced=c.model_type in _PARTIAL_ROTARY)
    layers = list(base.layers)
    # the layers that turn their queries and keys: SmolLM3's attention skips rotary positions where its use_rope
    # (config.no_rope_layers) is 0 (NoPE); rope has no parameters and no MACs of a matrix product
    ropes = [bool(getattr(layer.self_attn, "use_rope", True)) for layer in layers]
    bias = ", bias" if _mlp_bias(model, layers) else ""
    norm = layout.norm
    windows = _windows(model, layout, layers)
    where = f"{type(model).__name__}.model.layers"
    forwards = [
        _feed_forward(model, _ffn_module(layer), f"{where}.{i}.mlp", layout.top_k) for i, layer in enumerate(layers)
    ]
    T = length or c.max_position_embeddings
    lets = [
        f"let V = {c.vocab_size}; let T = {T}; let d = {c.hidden_size}; "
        f"let L = {c.num_hidden_layers}; let h = {heads}" + (f"; let g = {kv}" if kv != heads else ""),
    ]
    # the widths, named by what they are: F the dense MLP's (the experts' when no layer is dense), M the routed
    # experts', S the shared expert's (each only when it differs from the ones before)
    widths: dict[int, str] = {}

    def width(value: int, name: str) -> str:
        if value not in widths:
            widths[value] = name if name not in widths.values() else f"{name}{len(widths)}"
            lets.append(f"let {widths[value]} = {value}")
        return widths[value]

    def mlp(value: int, gated: bool = True) -> str:
        w = width(value, "F")
        if not gated:
            return f"dense(->{w}{bias}) > {act} > dense(->d{bias})"
        return f"mul(dense(->{w}{bias}) > {act} | dense(->{w}{bias})) > dense(->d{bias})"

    defs: list[str] = []
    for form in [f for f in dict.fromkeys(forwards) if f[0] in ("mlp", "plain")]:
        width(form[1], "F")
    moes = [f for f in dict.fromkeys(forwards) if f[0] == "moe"]
    if len(moes) > 1:
        raise ImportRefused(f"{type(model).__name__}: its layers' experts differ (count, width or shared expert)")
    ffn: dict[tuple, str] = {}
    for form in dict.fromkeys(forwards):
        if form[0] in ("mlp", "plain"):
            ffn[form] = mlp(form[1], gated=form[0] == "mlp")
            continue
        _, count, top, expert, shared, gated, shared_bias, score_bias = form
        lets.append(f"let E = {count}; let k = {top}")
        w = width(expert, "F" if "F" not in widths.values() else "M")
        defs.append(f"def expert = mul(dense(->{w}) > {act} | dense(->{w})) > dense(->d)")
        text = f"moe(expert, experts=E, top=k{', score_bias' if score_bias else ''})"
        if shared is not None:
            s, b = width(shared, "S"), ", bias" if shared_bias else ""
            defs.append(f"def shared_expert = mul(dense(->{s}{b}) > {act} | dense(->{s}{b})) > dense(->d{b})")
            if gated == "none":
                text = f"add({text} | shared_expert)"
            else:
                text = (
                    f"add({text} | mul(shared_expert | dense(->1{', bias' if gated == 'gate_bias' else ''}) > sigmoid))"
                )
        ffn[form] = text

    sandwich = layout.sandwich or bool(layout.sandwich_field and getattr(c, layout.sandwich_field))
    after = " > rmsnorm" if sandwich else ""

    def block(window: int | None, form: tuple, rotary: bool) -> str:
        options = attention + ([f"window={window}"] if window is not None else []) + [rope] * rotary + ["causal"]
        return f"res({norm} > attn({', '.join(options)}){after}) > res({norm} > {ffn[form]}{after})"

    kinds = list(dict.fromkeys(zip(windows, forwards, ropes)))
    names: dict[tuple, str] = {}
    for window, form, rotary in kinds:
        parts = []
        if len(set(windows)) > 1:
            parts.append("sliding" if window is not None else "full")
        if len({f[0] == "moe" for f in forwards}) > 1:
            parts.append("sparse" if form[0] == "moe" else "dense")
        if len(set(ropes)) > 1:
            parts.append("rope" if rotary else "nope")
        name = "_".join([*parts, "block"])  # never a layer's name (dense, moe)
        names[(window, form, rotary)] = name if name not in names.values() else f"{name}{len(names) + 1}"
        defs.append(f"def {names[(window, form, rotary)]} = {block(window, form, rotary)}")
    tied = head is not None and _shared(head, base.embed_tokens)
    order = _sequence([names[k] for k in zip(windows, forwards, ropes)])
    network = f"input(T) > embed(V->d){' as wte' if tied else ''} > {order} > {norm}"
    if head is not None:
        hb = ", bias" if getattr(head, "bias", None) is not None else ""  # PhiMoE's lm_head_bias
        network += f" > dense(->V{hb}, tie=wte)" if tied else f" > dense(->V{hb})"
    notes = []
    if layout.top_k is not None and getattr(c, "num_experts_per_tok", None) != layout.top_k:
        notes.append(
            f"# its router sends every position through {layout.top_k} experts "
            f"(num_experts_per_tok={c.num_experts_per_tok} is not read by it)"
        )
    if getattr(c, "clip_qkv", None) is not None:
        notes.append(f"# q, k and v clamped to +-{c.clip_qkv} (clip_qkv): no parameters, no MACs")
    title = f"# {type(model).__name__} read by paramsym from its config"
    return "\n".join([title, *notes, *lets, *defs, network]) + "\n"


def layer_pattern(kinds: list[str], count: str | None = None) -> str:
    """The layers of a stack, one def block's name a layer in order (from a config's `layer_types`), as repeats:
    the shortest period the list repeats (its last repeat may stop short), each run of one name in it written
    `(name) * n`. `count`, the symbol of the number of layers (`L`), says the repeats where the period divides it.
    Gemma-2 (local, global alternating) is `(local > global) * (L/2)`; Gemma-3-1B (26 layers, five local to one
    global) `((local) * 5 > global) * 4 > (local) * 2`; one kind throughout `(block) * L`."""
    if not kinds:
        raise ValueError("a stack of no layers")
    n = len(kinds)
    period = next(p for p in range(1, n + 1) if all(kinds[i] == kinds[i % p] for i in range(n)))

    def runs(names: list[str]) -> str:
        parts, i = [], 0
        while i < len(names):
            j = i
            while j < len(names) and names[j] == names[i]:
                j += 1
            parts.append(names[i] if j - i == 1 else f"({names[i]}) * {j - i}")
            i = j
        return " > ".join(parts)

    if n // period == 1:  # no repeat: the runs of the whole list
        return runs(kinds)
    repeats = n // period
    if count is not None and n % period == 0:
        times = count if period == 1 else f"({count}/{period})"
    else:
        times = str(repeats)
    body = runs(kinds[:period])
    text = f"({body}) * {times}"
    if n % period:
        text += " > " + runs(kinds[: n % period])
    return text


def _number(value: float) -> str:
    """A config's float as the program writes it: 50.0 as 50, 30.5 as 30.5."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# the attention of each entry of a config's layer_types, as the def block that writes it
_LAYER_TYPES = {"full_attention": "global", "sliding_attention": "local"}

# model_type -> (the classes read, the config's field of the MLP's activation, whether its forward soft-caps by
# attn_logit_softcapping and final_logit_softcapping). Gemma's layout is Llama's with GeGLU, a head of 256
# channels, an embedding scaled by √d (no parameter) and RMSNorms that scale by (1 + w) (the same d parameters);
# what the later ones add is read from the module tree and the config: Gemma-2's norms after the attention and
# the MLP too, soft-capped scores and logits, local (sliding) and global layers by layer_types; Gemma-3's RMSNorm
# on every query and key head (q_norm, k_norm) and two rotary bases (no parameters)
_GEMMAS = {
    "gemma": (("GemmaModel", "GemmaForCausalLM"), "hidden_act", False),
    "gemma2": (("Gemma2Model", "Gemma2ForCausalLM"), "hidden_activation", True),
    "gemma3_text": (("Gemma3TextModel", "Gemma3ForCausalLM"), "hidden_activation", True),
    # Gemma-2's layout with a norm before the attention and one before the MLP only (input_layernorm,
    # pre_feedforward_layernorm): no norms after them
    "vaultgemma": (("VaultGemmaModel", "VaultGemmaForCausalLM"), "hidden_activation", True),
}


def _rope_fractions(config) -> set:
    """The partial_rotary_factor of every rotary setting of a config (Gemma-3 has one per layer type)."""
    rope = getattr(config, "rope_parameters", None) or {}
    settings = [v for v in rope.values() if isinstance(v, dict)] or [rope]
    return {setting.get("partial_rotary_factor", 1.0) for setting in settings}


def _layer_types(model, base) -> list[str]:
    """The def block of each layer (`global`, `local`) from config.layer_types (none: every layer global, or local
    with a sliding_window set), checked against each attention's own sliding_window where it keeps one."""
    c, name = model.config, type(model).__name__
    window = _window(model)
    types = getattr(c, "layer_types", None)
    if types is None:
        types = ["sliding_attention" if window is not None else "full_attention"] * c.num_hidden_layers
    unknown = sorted({t for t in types if t not in _LAYER_TYPES})
    if unknown:
        raise ImportRefused(
            f"{name} has layers of type {', '.join(unknown)} (config.layer_types): paramsym reads "
            f"{', '.join(_LAYER_TYPES)}"
        )
    if len(types) != len(base.layers):
        raise ImportRefused(f"{name}: config.layer_types names {len(types)} layers, the model has {len(base.layers)}")
    if "sliding_attention" in types and window is None:
        raise ImportRefused(f"{name} has sliding_attention layers but no sliding_window")
    for i, (kind, layer) in enumerate(zip(types, base.layers)):
        own = getattr(layer.self_attn, "sliding_window", "unset")
        expected = window if kind == "sliding_attention" else None
        if own != "unset" and own != expected:
            raise ImportRefused(
                f"{name}.model.layers.{i}.self_attn has sliding_window={own!r}, its layer type {kind} says {expected!r}"
            )
    return [_LAYER_TYPES[t] for t in types]


def _gemma_norm(module, width: int, where: str) -> None:
    if not type(module).__name__.endswith("RMSNorm") or tuple(module.weight.shape) != (width,):
        raise ImportRefused(
            f"{where}: {type(module).__name__} where the layout has an RMSNorm of {width} with a weight"
        )


def _gemma(model, length: int | None, shape: tuple | None = None) -> str:
    """Gemma, Gemma-2, Gemma-3 (text) and VaultGemma by their config and module tree (_GEMMAS)."""
    c = model.config
    classes, act_field, caps = _GEMMAS[c.model_type]
    _classes(model, *classes)
    name = type(model).__name__
    length = _length(model, length, shape, None, "")  # rotary positions: any length
    if getattr(c, "use_bidirectional_attention", False):
        raise ImportRefused(
            f"{name} with use_bidirectional_attention=True: its attention sees later positions (and its sliding "
            f"window both ways), which the layout does not write"
        )
    if _rope_fractions(c) != {1.0}:
        raise ImportRefused(
            f"{name} with partial_rotary_factor={sorted(_rope_fractions(c))}: rotary positions on part of each head "
            f"have no counterpart (paramsym's rope turns the whole head)"
        )
    base = getattr(model, "model", model)
    head = getattr(model, "lm_head", None)
    act = _hf_activation(model, act_field)
    d, heads = c.hidden_size, c.num_attention_heads
    kv = getattr(c, "num_key_value_heads", None) or heads
    head_dim = getattr(c, "head_dim", None) or d // heads
    first = base.layers[0]
    where = f"{name}.model.layers.0"
    shapes = [tuple(p.shape) for p in first.parameters()]
    for i, layer in enumerate(base.layers):
        if [tuple(p.shape) for p in layer.parameters()] != shapes:
            raise ImportRefused(f"{name}.model.layers.{i} holds other parameters than layer 0: one layout is read")
    # the norms of a layer: Gemma's two (post_attention_layernorm is the one before the MLP), Gemma-2's and Gemma-3's
    # four (a norm after the attention and after the MLP too: `sandwich`), VaultGemma's two
    names = ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm")
    norms = [n for n in names if hasattr(first, n)]
    if norms not in (list(names[:2]), list(names), [names[0], names[2]]):
        raise ImportRefused(f"{where} has the norms {', '.join(norms)}: not a layout of Gemma's family")
    sandwich = len(norms) == 4
    for norm in norms:
        _gemma_norm(getattr(first, norm), d, f"{where}.{norm}")
    _gemma_norm(base.norm, d, f"{name}.model.norm")
    attention = (
        ["heads=h"]
        + (["kv_heads=g"] if kv != heads else [])
        + ([f"head_dim={head_dim}"] if head_dim * heads != d else [])
        + _attention_biases(model, base)
    )
    q_norm, k_norm = getattr(first.self_attn, "q_norm", None), getattr(first.self_attn, "k_norm", None)
    if q_norm is not None or k_norm is not None:
        _gemma_norm(q_norm, head_dim, f"{where}.self_attn.q_norm")
        _gemma_norm(k_norm, head_dim, f"{where}.self_attn.k_norm")
        attention.append("qk_norm=rms")  # one RMSNorm of the head width on every query head, one on every key head
    cap = getattr(c, "attn_logit_softcapping", None) if caps else None  # Gemma's forward reads no cap
    if cap is not None:
        attention.append(f"softcap={_number(cap)}")
    kinds = _layer_types(model, base)
    window = _window(model)
    T = length or c.max_position_embeddings
    lets = [
        f"let V = {c.vocab_size}; let T = {T}; let d = {d}; let L = {c.num_hidden_layers}; let h = {heads}"
        + (f"; let g = {kv}" if kv != heads else ""),
        f"let F = {c.intermediate_size}" + (f"; let W = {window}" if "local" in kinds else ""),
    ]
    mlp = f"mul(dense(->F) > {act} | dense(->F)) > dense(->d)"
    after = " > rmsnorm" if sandwich else ""
    lines = [f"def ffn = res(rmsnorm > {mlp}{after})"]
    for kind in ("local", "global"):
        if kind in kinds:
            options = attention + (["window=W"] if kind == "local" else []) + ["rope", "causal"]
            lines.append(f"def {kind} = res(rmsnorm > attn({', '.join(options)}){after}) > ffn")
    tied = head is not None and _shared(head, base.embed_tokens)
    network = f"input(T) > embed(V->d){' as wte' if tied else ''} > {layer_pattern(kinds, 'L')} > rmsnorm"
    if head is not None:
        network += " > dense(->V, tie=wte)" if tied else " > dense(->V)"
        final = getattr(c, "final_logit_softcapping", None) if caps else None
        if final is not None:
            network += f" > softcap({_number(final)})"
    return "\n".join([f"# {name} read by paramsym from its config", *lets, *lines, network]) + "\n"


@dataclass(frozen=True)
class _Encoder:
    """One post-norm encoder family of transformers (BERT's layout): where its modules are and which config
    fields size them. Every family's layer is x = ln(x + attn(x)), x = ln(x + mlp(x)) with biases everywhere;
    the embeddings are the token's, the position's and (where the family has them) the token type's, summed,
    then a LayerNorm (and ELECTRA's projection where its embeddings are narrower than its layers)."""

    base: str  # the attribute holding the base model in a model with a head
    models: tuple[str, ...]  # the base model classes
    masked: tuple[str, ...]  # the classes with a language-model head (masked, or causal with is_decoder)
    discriminator: tuple[str, ...] = ()  # ELECTRA's replaced-token detection: dense > act > dense(->1)
    fields: tuple[str, ...] = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
    ffn: str = "intermediate_size"
    act: str = "hidden_act"
    token_types: bool = True  # a token-type table (type_vocab_size rows)
    padded: bool = False  # positions start after padding_idx (RoBERTa's): the first padding_idx + 1 rows unused
    decoder: bool = True  # config.is_decoder makes the self-attention causal and add_cross_attention adds one
    # pre-norm layers (RoBERTa-PreLayerNorm's): x = x + attn(ln(x)), x = x + mlp(ln(x)), and a LayerNorm after the
    # last layer at this path of the base model
    final_norm: str | None = None
    embed_norm: bool = True  # a LayerNorm after the embeddings' sum (XLM-RoBERTa-XL has none)
    task_types: bool = False  # ERNIE's task-type table (task_type_vocab_size rows) with use_task_id
    # the language-model head: (dense, its activation field or None for a fixed GELU, LayerNorm, decoder,
    # the head's own bias (tied to the decoder's) or None)
    head: tuple[str, str | None, str, str, str | None] = (
        "cls.predictions.transform.dense",
        "hidden_act",
        "cls.predictions.transform.LayerNorm",
        "cls.predictions.decoder",
        "cls.predictions.bias",
    )


_ROBERTA_HEAD = ("lm_head.dense", None, "lm_head.layer_norm", "lm_head.decoder", "lm_head.bias")


def _roberta_code(base: str, prefix: str) -> _Encoder:
    """A family of RoBERTa's code (under its own class names or others): PREFIXModel, PREFIXForMaskedLM,
    PREFIXForCausalLM."""
    return _Encoder(
        base, (f"{prefix}Model",), (f"{prefix}ForMaskedLM", f"{prefix}ForCausalLM"), padded=True, head=_ROBERTA_HEAD
    )


_ENCODERS = {
    "bert": _Encoder("bert", ("BertModel",), ("BertForMaskedLM", "BertLMHeadModel")),
    "roberta": _roberta_code("roberta", "Roberta"),
    "xlm-roberta": _roberta_code("roberta", "XLMRoberta"),
    "camembert": _roberta_code("roberta", "Camembert"),  # RoBERTa's code under CamemBERT's names
    "data2vec-text": _roberta_code("data2vec_text", "Data2VecText"),  # RoBERTa's code under data2vec's names
    "roberta-prelayernorm": _Encoder(  # RoBERTa's with pre-norm layers and a LayerNorm after the last
        "roberta_prelayernorm",
        ("RobertaPreLayerNormModel",),
        ("RobertaPreLayerNormForMaskedLM", "RobertaPreLayerNormForCausalLM"),
        padded=True,
        head=_ROBERTA_HEAD,
        final_norm="LayerNorm",
    ),
    "xlm-roberta-xl": _Encoder(  # RoBERTa's with pre-norm layers, no LayerNorm after the embeddings, one after the last
        "roberta",
        ("XLMRobertaXLModel",),
        ("XLMRobertaXLForMaskedLM", "XLMRobertaXLForCausalLM"),
        padded=True,
        head=_ROBERTA_HEAD,
        final_norm="encoder.LayerNorm",
        embed_norm=False,
    ),
    "ernie": _Encoder(  # BERT's with a task-type table (use_task_id) summed into the embeddings
        "ernie", ("ErnieModel",), ("ErnieForMaskedLM", "ErnieForCausalLM"), task_types=True
    ),
    "distilbert": _Encoder(
        "distilbert",
        ("DistilBertModel",),
        ("DistilBertForMaskedLM",),
        fields=("vocab_size", "dim", "n_layers", "n_heads"),
        ffn="hidden_dim",
        act="activation",
        token_types=False,
        decoder=False,  # DistilBERT's attention is never causal (it does not read is_decoder)
        head=("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector", None),
    ),
    "electra": _Encoder(
        "electra",
        ("ElectraModel",),
        ("ElectraForMaskedLM", "ElectraForCausalLM"),
        discriminator=("ElectraForPreTraining",),
        head=(
            "generator_predictions.dense",
            None,
            "generator_predictions.LayerNorm",
            "generator_lm_head",
            None,
        ),
    ),
}


def first_position(config) -> int:
    """The row of the position table where a family's positions start: padding_idx + 1 for RoBERTa's (whose
    longest sequence is max_position_embeddings less that), 0 for every other."""
    spec = _ENCODERS.get(getattr(config, "model_type", None) or "")
    pad = getattr(config, "pad_token_id", None)
    return pad + 1 if spec is not None and spec.padded and isinstance(pad, int) and pad >= 0 else 0


def _module(model, path: str):
    for part in path.split("."):
        model = getattr(model, part, None)
    return model


def _encoder(model, length: int | None, shape: tuple | None = None) -> str:
    """BERT, RoBERTa, XLM-RoBERTa, CamemBERT, data2vec-text, RoBERTa-PreLayerNorm, XLM-RoBERTa-XL, ERNIE, DistilBERT
    and ELECTRA (`_ENCODERS`): the base model (with BERT's and RoBERTa's pooler, first > dense > tanh, where
    add_pooling_layer built it), its language-model head (dense > act > ln > the decoder, tied to the token embedding
    with a bias of its own) or ELECTRA's discriminator head."""
    c = model.config
    spec = _ENCODERS[c.model_type]
    name = type(model).__name__
    _classes(model, *spec.models, *spec.masked, *spec.discriminator)
    base = model if name in spec.models else getattr(model, spec.base)
    V, d, L, h = (getattr(c, field) for field in spec.fields)
    F = getattr(c, spec.ffn)
    n = c.max_position_embeddings
    first = 0
    if spec.padded:  # RoBERTa: position ids padding_idx + 1, padding_idx + 2, ... (padding tokens keep padding_idx)
        pad = base.embeddings.padding_idx
        if not isinstance(pad, int) or pad < 0:
            raise ImportRefused(f"{name} with pad_token_id={pad!r}: its positions start after padding_idx")
        first = pad + 1
    length = _length(model, length, shape, n, "max_position_embeddings", first)
    act = _hf_activation(model, spec.act)
    if spec.decoder and getattr(c, "add_cross_attention", False):
        raise ImportRefused(
            f"{name} with add_cross_attention=True: its layers attend to an encoder's "
            f"output too (a second attention in every layer), which the layout does not write"
        )
    causal = ", causal" if spec.decoder and getattr(c, "is_decoder", False) else ""  # is_decoder masks the future
    words = base.embeddings.word_embeddings
    e = words.embedding_dim  # ELECTRA's embedding_size, projected to d where it differs
    project = getattr(base, "embeddings_project", None)
    if (project is None) != (e == d):
        raise ImportRefused(f"{name}: embeddings of {e} values and layers of {d} without a projection between them")
    attention, mlp = f"attn(heads=h, bias{causal})", f"dense(->{_width(F, d)}, bias) > {act} > dense(->d, bias)"
    pre = spec.final_norm is not None
    if spec.final_norm is not None and type(_module(base, spec.final_norm)).__name__ != "LayerNorm":
        raise ImportRefused(f"{name}: no LayerNorm after its pre-norm layers ({spec.final_norm})")
    block = f"res(ln > {attention}) > res(ln > {mlp})" if pre else f"res({attention}) > ln > res({mlp}) > ln"
    lines = [
        f"# {name} read by paramsym from its config",
        f"let V = {V}; let n = {n}; let d = {d}; let L = {L}; let h = {h}",
        f"def block = {block}",
    ]
    if first:
        lines.insert(1, f"# positions {first}..{n - 1} of the table: they start after padding_idx={first - 1}")
    if getattr(c, "sinusoidal_pos_embds", False):
        lines.insert(1, "# the position table starts as sinusoids (sinusoidal_pos_embds) and is a parameter")
    width = "d" if e == d else str(e)
    network = f"input({length or ('n' if not first else n - first)}) > embed(V->{width})"
    tied = False
    if name in spec.masked:
        paths = spec.head
        field = paths[1]
        dense, out = _module(model, paths[0]), _module(model, paths[3])
        bias = _module(model, paths[4]) if paths[4] is not None else None
        tied = _shared(out, words)
        if out.bias is None:
            raise ImportRefused(f"{name}: a decoder ({paths[3]}) without a bias has no counterpart in the layout")
        if bias is not None and out.bias is not bias:
            raise ImportRefused(
                f"{name}: its decoder's bias is not the head's own `bias` (tie_word_embeddings=False leaves "
                f"{paths[4]} unused by forward, which parameters() counts), which the layout does not write"
            )
    network += (" as wte" if tied else "") + " > posembed(n)"
    if spec.token_types:
        network += f" > posembed({c.type_vocab_size})"
    if spec.task_types and getattr(base.embeddings, "use_task_id", False):
        network += f" > posembed({c.task_type_vocab_size})"
    network += (" > ln" if spec.embed_norm else "") + (" > dense(->d, bias)" if project is not None else "")
    network += " > (block) * L" + (" > ln" if pre else "")
    if name in spec.masked:
        head_act = _hf_activation(model, field) if field is not None else "gelu"
        inner = "d" if dense.out_features == d else dense.out_features
        network += f" > dense(->{inner}, bias) > {head_act} > ln > dense(->V, bias{', tie=wte' if tied else ''})"
    elif name in spec.discriminator:
        network += f" > dense(->d, bias) > {act} > dense(->1, bias) > flatten"
    elif getattr(base, "pooler", None) is not None:
        network += " > first > dense(->d, bias) > tanh"
    return "\n".join(lines + [network]) + "\n"


# OLMo, OLMo-2, OLMo-3, EXAONE 4, Cohere (Command-R), Cohere2 and StarCoder2 are Llama's decoder (rotary positions,
# grouped-query attention, a residual around the attention and the MLP) with one row of differences each, which
# `_DECODERS` states: the norm, where it stands (before each sublayer, after it inside the residual, or one norm
# before the attention and the MLP side by side), the MLP (gated or not), the form of the query and key norms, and
# which layers slide and turn by rotary positions. `_decoder` writes the program from that row, the config and the
# layers' modules; OPT (learned positions, pre- or post-norm, project_in and
# project_out) has a reader of its own, `_opt`. As every import, the program is checked against the model.


@dataclass(frozen=True)
class DecoderLayout:
    """How a family differs from Llama's decoder layer."""

    classes: tuple[str, ...]  # the classes read (another head is refused)
    norm: str  # the program's norm: every norm of the family is this one
    block: str  # "pre": res(norm > attn) > res(norm > mlp); "post": res(attn > norm) > res(mlp > norm) (OLMo-2);
    # "parallel": res(norm > add(attn | mlp)) (Cohere: the attention and the MLP read one norm's output)
    mlp: str  # "gated": mul(dense(->F) > act | dense(->F)) > dense(->d); "plain": dense(->F) > act > dense(->d)
    qk_norm: str | None = None  # the qk_norm= form of the attention's q_norm and k_norm, where it has them
    act: str = "hidden_act"  # the config field of the MLP's activation
    note: str = ""  # what the model computes that counts nothing (a comment of the program)
    # the layers config.layer_types names "sliding_attention" slide (as in _Layout); else all or none
    layer_types: bool = False
    # the layers that turn their queries and keys by rotary positions: "all"; "sliding" (Cohere2: the sliding ones,
    # the global ones have none); "sliding_or_all" (EXAONE 4: the sliding ones when sliding_window is set, else all)
    rope: str = "all"


_DECODERS = {
    # OlmoLayerNorm: F.layer_norm without weight or bias; clip_qkv clamps q, k and v (no parameters)
    "olmo": DecoderLayout(("OlmoModel", "OlmoForCausalLM"), "ln(noaffine)", "pre", "gated", note="clip_qkv"),
    # q_norm and k_norm: RMSNorm over the whole projection (h·e and g·e channels); norms after each sublayer
    "olmo2": DecoderLayout(("Olmo2Model", "Olmo2ForCausalLM"), "rmsnorm", "post", "gated", qk_norm="rms_full"),
    # CohereLayerNorm: a LayerNorm with a weight and no bias; q_norm and k_norm (use_qk_norm) of the head width with
    # a weight for every head; the logits multiplied by logit_scale (no parameters)
    "cohere": DecoderLayout(
        ("CohereModel", "CohereForCausalLM"), "ln(nobias)", "parallel", "gated", "ln_per_head", note="logit_scale"
    ),
    # nn.LayerNorm with weight and bias; c_fc > act > c_proj, biases on everything with use_bias
    "starcoder2": DecoderLayout(("Starcoder2Model", "Starcoder2ForCausalLM"), "ln", "pre", "plain"),
    # OLMo-2's layout with sliding and global layers (layer_types; two rotary bases, no parameters)
    "olmo3": DecoderLayout(
        ("Olmo3Model", "Olmo3ForCausalLM"), "rmsnorm", "post", "gated", qk_norm="rms_full", layer_types=True
    ),
    # OLMo-2's norms after each sublayer, an RMSNorm of the head width on every query and key head (qk_norm=rms),
    # sliding layers with rotary positions and global layers without (NoPE)
    "exaone4": DecoderLayout(
        ("Exaone4Model", "Exaone4ForCausalLM"),
        "rmsnorm",
        "post",
        "gated",
        "rms",
        layer_types=True,
        rope="sliding_or_all",
    ),
    # Cohere's parallel block without query and key norms, sliding layers with rotary positions, global ones without
    "cohere2": DecoderLayout(
        ("Cohere2Model", "Cohere2ForCausalLM"),
        "ln(nobias)",
        "parallel",
        "gated",
        note="logit_scale",
        layer_types=True,
        rope="sliding",
    ),
}


def _rotary_whole(model) -> None:
    fractions = _rope_fractions(model.config)  # OLMo-3 has a rotary setting for each layer type
    if fractions != {1.0}:
        rotary = next(iter(fractions)) if len(fractions) == 1 else sorted(fractions)
        raise ImportRefused(
            f"{type(model).__name__} with partial_rotary_factor={rotary}: rotary positions on part of each head "
            f"have no counterpart (paramsym's rope turns the whole head)"
        )


def _decoder_mlp(model, layout: DecoderLayout, layer) -> str:
    """The MLP of a layer, its biases read from its first Linear (the import checks the others by their count)."""
    act = _hf_activation(model, layout.act)
    mlp = layer.mlp
    if layout.mlp == "plain":
        bias = ", bias" if mlp.c_fc.bias is not None else ""
        return f"dense(->F{bias}) > {act} > dense(->d{bias})"
    bias = ", bias" if mlp.gate_proj.bias is not None else ""
    return f"mul(dense(->F{bias}) > {act} | dense(->F{bias})) > dense(->d{bias})"


def _decoder_qk_norm(model, layout: DecoderLayout, attention, heads: int, kv: int, head_dim: int) -> list[str]:
    """The attention's q_norm and k_norm as the family's qk_norm= form, their weights of the form's shape: the whole
    projection's channels (rms_full), heads x head_dim (ln_per_head) or head_dim shared by the heads (rms)."""
    q_norm, k_norm = getattr(attention, "q_norm", None), getattr(attention, "k_norm", None)
    if q_norm is None and k_norm is None:
        return []
    shapes = {
        "rms_full": [(heads * head_dim,), (kv * head_dim,)],
        "ln_per_head": [(heads, head_dim), (kv, head_dim)],
        "rms": [(head_dim,), (head_dim,)],  # EXAONE 4's: one weight of the head width shared by the heads
    }
    found = [tuple(getattr(getattr(n, "weight", None), "shape", ())) for n in (q_norm, k_norm)]
    if layout.qk_norm is None or found != shapes.get(layout.qk_norm) or getattr(q_norm, "bias", None) is not None:
        raise ImportRefused(
            f"{type(model).__name__}.model.layers.0.self_attn: norms of the queries and keys with weights of "
            f"{found[0]} and {found[1]}, which the family's layout does not have"
            + (f" (it reads qk_norm={layout.qk_norm}: {shapes[layout.qk_norm]})" if layout.qk_norm else "")
        )
    return [f"qk_norm={layout.qk_norm}"]


def _decoder(model, length: int | None, shape: tuple | None = None) -> str:
    """OLMo, OLMo-2, OLMo-3, EXAONE 4, Cohere, Cohere2, StarCoder2: Llama's decoder with the differences of the
    family's `_DECODERS` row; one block for each kind of layer (sliding or not, rotary positions or not)."""
    c = model.config
    layout = _DECODERS[c.model_type]
    _classes(model, *layout.classes)
    length = _length(model, length, shape, None, "")  # rotary positions: any length (no table to look up)
    _rotary_whole(model)
    base = getattr(model, "model", model)
    head = getattr(model, "lm_head", None)
    layer = base.layers[0]
    heads, kv = c.num_attention_heads, getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    attention = (
        ["heads=h"]
        + (["kv_heads=g"] if kv != heads else [])
        + ([f"head_dim={head_dim}"] if head_dim * heads != c.hidden_size else [])
        + _attention_biases(model, base)
        + _decoder_qk_norm(model, layout, layer.self_attn, heads, kv, head_dim)
    )
    layers = list(base.layers)
    windows = _windows(model, _Layout((), layer_types=layout.layer_types), layers)
    ropes = [_decoder_rotates(layout, layer.self_attn) for layer in layers]
    mlp, norm = _decoder_mlp(model, layout, layer), layout.norm
    kinds = list(dict.fromkeys(zip(windows, ropes)))
    names: dict[tuple, str] = {}
    blocks = [f"def mlp = {mlp}"] if layout.block == "parallel" else []
    for window, rotary in kinds:
        options = attention + ([f"window={window}"] if window is not None else []) + ["rope"] * rotary + ["causal"]
        attn = f"attn({', '.join(options)})"
        parts = ["sliding" if window is not None else "full"] * (len(set(windows)) > 1)
        parts += ["rope" if rotary else "nope"] * (len(set(ropes)) > 1 and len(kinds) > len(set(windows)))
        names[(window, rotary)] = "_".join([*parts, "block"])
        blocks.append(
            f"def {names[(window, rotary)]} = "
            + {
                "pre": f"res({norm} > {attn}) > res({norm} > {mlp})",
                "post": f"res({attn} > {norm}) > res({mlp} > {norm})",
                "parallel": f"res({norm} > add({attn} | mlp))",
            }[layout.block]
        )
    notes = []
    if layout.note == "clip_qkv" and getattr(c, "clip_qkv", None) is not None:
        notes.append(f"# q, k and v clamped to +-{c.clip_qkv} (clip_qkv): no parameters, no MACs")
    if layout.note == "logit_scale" and head is not None:
        notes.append(f"# the logits multiplied by logit_scale={c.logit_scale}: no parameters, no MACs")
    T = length or c.max_position_embeddings
    lets = [
        f"let V = {c.vocab_size}; let T = {T}; let d = {c.hidden_size}; "
        f"let L = {c.num_hidden_layers}; let h = {heads}" + (f"; let g = {kv}" if kv != heads else ""),
        f"let F = {c.intermediate_size}",
    ]
    tied = head is not None and _shared(head, base.embed_tokens)
    order = _sequence([names[k] for k in zip(windows, ropes)])
    network = f"input(T) > embed(V->d){' as wte' if tied else ''} > {order} > {norm}"
    if head is not None:
        network += " > dense(->V, tie=wte)" if tied else " > dense(->V)"
    title = f"# {type(model).__name__} read by paramsym from its config"
    return "\n".join([title, *notes, *lets, *blocks, network]) + "\n"


def _decoder_rotates(layout: DecoderLayout, attention) -> bool:
    """Whether a layer's attention turns its queries and keys, by the attributes its forward pass reads: Cohere2's
    where its sliding_window is set; EXAONE 4's where its sliding_window is unset or it is a sliding layer
    (is_sliding); the others always."""
    if layout.rope == "sliding":
        return attention.sliding_window is not None
    if layout.rope == "sliding_or_all":
        return attention.sliding_window is None or bool(attention.is_sliding)
    return True


_DEEPSEEKS = {
    "deepseek_v2": ("DeepseekV2Model", "DeepseekV2ForCausalLM"),
    "deepseek_v3": ("DeepseekV3Model", "DeepseekV3ForCausalLM"),
    # MiniCPM3: DeepSeek-V2's attention (MLA) with a gated MLP in every layer; its embedding scaled by scale_emb, its
    # residual branches by scale_depth/√L and its logits by dim_model_base/d (numbers: no parameters)
    "minicpm3": ("MiniCPM3Model", "MiniCPM3ForCausalLM"),
    # Youtu-LLM: DeepSeek-V3's attention (MLA) with a gated MLP in every layer
    "youtu": ("YoutuModel", "YoutuForCausalLM"),
}


def _gated_mlp(mlp, where: str, act: str) -> tuple[int, bool]:
    """(width, biases) of a Llama-style gated MLP module (gate_proj, up_proj, down_proj), or refused."""
    parts: list[Any] = [getattr(mlp, f"{x}_proj", None) for x in ("gate", "up", "down")]
    gate, up, down = parts
    if any(type(m).__name__ != "Linear" for m in (gate, up, down)) or not (
        gate.out_features == up.out_features == down.in_features
        and (gate.bias is None) == (up.bias is None) == (down.bias is None)
    ):
        raise ImportRefused(f"{where}: an MLP other than gate_proj, up_proj and down_proj of one width")
    return gate.out_features, gate.bias is not None


def _deepseek(model, length: int | None, shape: tuple | None = None) -> str:
    """DeepSeek-V2 and V3: multi-head latent attention (`mla`), RMSNorm, a gated MLP in the first
    first_k_dense_replace layers and in the others a mixture of routed experts (num_experts_per_tok of
    n_routed_experts) added to the shared experts (one gated MLP of moe_intermediate_size·n_shared_experts, ungated),
    V3's router keeping a bias per expert to choose them (`score_bias`). Every layer's modules are read."""
    from ..kinds.latent_attention import latent_attention_text

    c = model.config
    _classes(model, *_DEEPSEEKS[c.model_type])
    length = _length(model, length, shape, None, "")  # rotary positions: any length
    base = getattr(model, "model", model)
    head = getattr(model, "lm_head", None)
    act = _hf_activation(model, "hidden_act")
    name = type(model).__name__
    attentions, dense, moes, kinds = set(), set(), set(), []
    for i, layer in enumerate(base.layers):
        where = f"{name}.model.layers.{i}"
        attentions.add(latent_attention_text(layer.self_attn, f"{where}.self_attn"))
        mlp = layer.mlp
        if hasattr(mlp, "experts"):
            experts, router, shared = mlp.experts, mlp.gate, getattr(mlp, "shared_experts", None)
            gate_up, down = getattr(experts, "gate_up_proj", None), getattr(experts, "down_proj", None)
            if gate_up is None or down is None or gate_up.dim() != 3 or down.dim() != 3 or shared is None:
                raise ImportRefused(
                    f"{where}.mlp: experts other than gate_up_proj and down_proj tensors beside shared experts"
                )
            count, width = gate_up.shape[0], gate_up.shape[1] // 2
            if (
                tuple(gate_up.shape) != (count, 2 * width, c.hidden_size)
                or tuple(down.shape) != (count, c.hidden_size, width)
                or tuple(router.weight.shape) != (count, c.hidden_size)
                or sum(p.numel() for p in experts.parameters()) != gate_up.numel() + down.numel()
                or sum(p.numel() for p in router.parameters()) != router.weight.numel()
            ):
                raise ImportRefused(
                    f"{where}.mlp: routed experts and a router other than E gated MLPs without biases and a "
                    f"Linear(d, E) without bias"
                )
            buffers = {n for n, _ in router.named_buffers()}
            if buffers - {"e_score_correction_bias"}:
                raise ImportRefused(
                    f"{where}.mlp.gate keeps buffers {sorted(buffers)} that the language does not count"
                )
            top = getattr(router, "top_k", None) or c.num_experts_per_tok
            shared_width, shared_bias = _gated_mlp(shared, f"{where}.mlp.shared_experts", act)
            moes.add((count, top, width, shared_width, shared_bias, bool(buffers)))
            kinds.append("moe")
        else:
            dense.add(_gated_mlp(mlp, f"{where}.mlp", act))
            kinds.append("dense")
    first = kinds.count("dense")
    if (
        kinds != ["dense"] * first + ["moe"] * (len(kinds) - first)
        or len(attentions) > 1
        or len(dense) > 1
        or len(moes) > 1
    ):
        raise ImportRefused(
            f"{name}: its layers are not {first} alike with a dense MLP, then layers alike with experts (the "
            f"layout of first_k_dense_replace)"
        )
    (attention,) = attentions
    T = length or c.max_position_embeddings
    lets = [
        f"let V = {c.vocab_size}; let T = {T}; let d = {c.hidden_size}; let L = {len(kinds)}",
    ]
    lines = [f"def attention = {attention}"]
    blocks = []
    if dense:
        ((width, bias),) = dense
        b = ", bias" if bias else ""
        lets.append(f"let F = {width}; let K = {first}  # K layers with a dense MLP")
        lines.append(f"def mlp = mul(dense(->F{b}) > {act} | dense(->F{b})) > dense(->d{b})")
        lines.append("def dense_block = res(rmsnorm > attention) > res(rmsnorm > mlp)")
        blocks.append("(dense_block) * K" if first > 1 else "dense_block")
    if moes:
        ((count, top, width, shared_width, shared_bias, score_bias),) = moes
        b = ", bias" if shared_bias else ""
        lets.append(f"let E = {count}; let k = {top}; let M = {width}; let S = {shared_width}")
        lines += [
            f"def expert = mul(dense(->M) > {act} | dense(->M)) > dense(->d)",
            f"def shared = mul(dense(->S{b}) > {act} | dense(->S{b})) > dense(->d{b})",
            "def moe_block = res(rmsnorm > attention) "
            f"> res(rmsnorm > add(moe(expert, experts=E, top=k{', score_bias' if score_bias else ''}) | shared))",
        ]
        rest = len(kinds) - first
        blocks.append(("(moe_block) * (L - K)" if dense else "(moe_block) * L") if rest > 1 else "moe_block")
    tied = head is not None and _shared(head, base.embed_tokens)
    network = f"input(T) > embed(V->d){' as wte' if tied else ''} > {' > '.join(blocks)} > rmsnorm"
    if head is not None:
        network += " > dense(->V, tie=wte)" if tied else " > dense(->V)"
    return "\n".join([f"# {name} read by paramsym from its config", *lets, *lines, network]) + "\n"


# the blocks of the GPT-NeoX, GPT-J, Falcon and BLOOM layouts, from what their forward passes compute (x the block's
# input, a the attention, m the MLP)
_BLOCKS = {
    "sequential": "res(ln > {attn}) > res(ln > {mlp})",  # y = x + a(ln x), then y + m(ln y)
    "parallel": "res(ln > add({attn} | {mlp}))",  # x + a(ln x) + m(ln x): one norm (GPT-J, Falcon-7B)
    "parallel2": "add(id | ln > {attn} | ln > {mlp})",  # x + a(ln₁ x) + m(ln₂ x) (GPT-NeoX, Falcon-40B)
    "post": "ln > res({attn}) > ln > res({mlp})",  # the residuals from the norms' outputs (BLOOM's option)
}


def _ln_decoder(
    model,
    embedding,
    length: int | None,
    *,
    sizes: tuple[int, int, int, int, int, int],
    attention: list[str],
    mlp_bias: bool,
    act: str,
    block: str,
    embed_norm: bool = False,
    gated: bool = False,
) -> str:
    """The program of a decoder of LayerNorms with biases (GPT-NeoX, GPT-J, Falcon, BLOOM): the embedding (then a
    LayerNorm with `embed_norm`, BLOOM's), L blocks of `block` (_BLOCKS) around causal attention with `attention`'s
    options and an MLP dense(->F) > act > dense(->d) (with `gated`, StableLM's: mul(dense(->F) > act | dense(->F))
    > dense(->d)), a final LayerNorm, and the head where the model has one (tied to the embedding or not, with a
    bias or not). sizes: (V, d, L, h, g, F)."""
    V, d, L, heads, kv, F = sizes
    head = getattr(model, "lm_head", None)
    tied = head is not None and _shared(head, embedding)
    T = length or getattr(model.config, "max_position_embeddings", None)
    if T is None:
        raise ImportRefused(
            f"{type(model).__name__}: its config gives no context length (it has no position table): give the "
            f"sequence length as the input"
        )
    options = ["heads=h"] + (["kv_heads=g"] if kv != heads else []) + attention + ["causal"]
    bias = ", bias" if mlp_bias else ""
    mlp = f"dense(->F{bias}) > {act} > dense(->d{bias})"
    if gated:
        mlp = f"mul(dense(->F{bias}) > {act} | dense(->F{bias})) > dense(->d{bias})"
    text = _BLOCKS[block].format(attn=f"attn({', '.join(options)})", mlp=mlp)
    lines = [
        f"# {type(model).__name__} read by paramsym from its config",
        f"let V = {V}; let T = {T}; let d = {d}; let L = {L}; let h = {heads}"
        + (f"; let g = {kv}" if kv != heads else ""),
        f"let F = {F}",
        f"def block = {text}",
    ]
    network = f"input(T) > embed(V->d){' as wte' if tied else ''}{' > ln' if embed_norm else ''} > (block) * L > ln"
    if head is not None:
        network += " > dense(->V" + (", tie=wte" if tied else "") + (", bias" if head.bias is not None else "") + ")"
    return "\n".join([*lines, network]) + "\n"


def _gpt_neox(model, length: int | None, shape: tuple | None = None) -> str:
    """GPT-NeoX (Pythia): a fused query_key_value and dense, with biases or not (attention_bias), rotary positions
    on rotary_pct of each head, x + a(ln₁ x) + m(ln₂ x) with use_parallel_residual, else one after the other."""
    c = model.config
    _classes(model, "GPTNeoXModel", "GPTNeoXForCausalLM")
    length = _length(model, length, shape, None, "")  # rotary positions: any length
    base = getattr(model, "gpt_neox", model)
    attention = base.layers[0].attention
    if (attention.query_key_value.bias is None) != (attention.dense.bias is None):
        raise ImportRefused(
            f"{type(model).__name__}: a bias on one of query_key_value and dense only has no counterpart (paramsym "
            f"reads biases on both, or none)"
        )
    heads = c.num_attention_heads
    head_dim = c.hidden_size // heads
    options = ["bias"] * (attention.dense.bias is not None) + [_rope(model, base.rotary_emb, head_dim, sliced=True)]
    sizes = (c.vocab_size, c.hidden_size, c.num_hidden_layers, heads, heads, c.intermediate_size)
    block = "parallel2" if c.use_parallel_residual else "sequential"
    act = _hf_activation(model, "hidden_act")
    return _ln_decoder(
        model, base.embed_in, length, sizes=sizes, attention=options, mlp_bias=True, act=act, block=block
    )


# GPT-J's layout, and CodeGen's (GPT-J's, its fused qkv_proj cut in mp_num=4 groups of heads: the same counts)
_GPTJS = {"gptj": ("GPTJModel", "GPTJForCausalLM"), "codegen": ("CodeGenModel", "CodeGenForCausalLM")}


def _gptj(model, length: int | None, shape: tuple | None = None) -> str:
    """GPT-J, CodeGen: attention without biases beside the MLP, both from one LayerNorm (x + a(ln x) + m(ln x)),
    rotary positions on the first rotary_dim channels of each head (interleaved pairs: the same counts), a head with a
    bias. Its sines and cosines are a table of n_positions rows: no longer sequence."""
    from ..kinds.attention import fraction_text

    c = model.config
    _classes(model, *_GPTJS[c.model_type])
    if c.model_type == "codegen" and c.n_head % 4:
        raise ImportRefused(
            f"{type(model).__name__} with n_head={c.n_head}: CodeGenAttention cuts its heads into mp_num=4 groups, "
            f"which {c.n_head} heads are not (its forward pass fails)"
        )
    length = _length(model, length, shape, c.n_positions, "n_positions", table="keeps a table of sines and cosines")
    base = getattr(model, "transformer", model)
    head_dim = c.n_embd // c.n_head
    rotary = c.rotary_dim
    if rotary is not None and not (0 < rotary <= head_dim and rotary % 2 == 0):
        raise ImportRefused(
            f"{type(model).__name__} with rotary_dim={rotary}: rotary positions on {rotary} of the {head_dim} "
            f"channels of each head, which its forward pass cannot turn (an even number, at most the head width)"
        )
    rope = "rope" if rotary is None or rotary == head_dim else f"rope={fraction_text(rotary, head_dim)}"
    sizes = (c.vocab_size, c.n_embd, c.n_layer, c.n_head, c.n_head, c.n_inner or 4 * c.n_embd)
    act = _hf_activation(model, "activation_function")
    return _ln_decoder(model, base.wte, length, sizes=sizes, attention=[rope], mlp_bias=True, act=act, block="parallel")


def _falcon(model, length: int | None, shape: tuple | None = None) -> str:
    """Falcon, every layout transformers builds that runs: the new decoder architecture (Falcon-40B, 180B: num_kv_heads
    key/value heads, parallel attention and MLP with a LayerNorm each (ln_attn, ln_mlp) or one
    (num_ln_in_parallel_attn=1)) or the old one (Falcon-7B: multi_query, one key/value head, or as many as the
    queries; the attention and MLP in parallel from one input_layernorm, or one after the other with
    post_attention_layernorm); biases everywhere or nowhere (bias); ALiBi (alibi=True) or rotary positions."""
    c = model.config
    name = type(model).__name__
    _classes(model, "FalconModel", "FalconForCausalLM")
    length = _length(model, length, shape, None, "")  # rotary positions or ALiBi: any length
    base = getattr(model, "transformer", model)
    heads, d = c.num_attention_heads, c.hidden_size
    head_dim = d // heads
    norms = c.num_ln_in_parallel_attn  # the layers set it to 2 for the new architecture when it is None
    if c.new_decoder_architecture:
        kv = c.num_kv_heads
        if heads % kv:
            raise ImportRefused(f"{name}: num_kv_heads={kv} does not divide num_attention_heads={heads}")
        if not c.parallel_attn or norms not in (1, 2):
            raise ImportRefused(
                f"{name} with new_decoder_architecture, parallel_attn={c.parallel_attn} and "
                f"num_ln_in_parallel_attn={norms}: FalconDecoderLayer's forward pass reads layer norms that it does "
                f"not build (it runs with parallel_attn=True and num_ln_in_parallel_attn 1 or 2)"
            )
        block = "parallel2" if norms == 2 else "parallel"
    else:
        kv = 1 if c.multi_query else c.num_kv_heads
        if kv != heads and not c.multi_query:
            raise ImportRefused(
                f"{name} with multi_query=False and num_kv_heads={kv} (not {heads}): the old architecture projects "
                f"keys and values for every head and its forward pass cannot make {kv} heads of them"
            )
        if c.parallel_attn and norms == 2:
            raise ImportRefused(
                f"{name} with parallel_attn=True and num_ln_in_parallel_attn=2 without new_decoder_architecture: "
                f"FalconDecoderLayer builds ln_attn and ln_mlp but its forward pass reads input_layernorm"
            )
        block = "parallel" if c.parallel_attn else "sequential"
    positions = "alibi" if c.alibi else _rope(model, base.rotary_emb, head_dim, sliced=False)
    options = ["bias"] * bool(c.bias) + [positions]
    sizes = (c.vocab_size, d, c.num_hidden_layers, heads, kv, c.ffn_hidden_size)
    act = _hf_activation(model, "activation")
    return _ln_decoder(
        model, base.word_embeddings, length, sizes=sizes, attention=options, mlp_bias=bool(c.bias), act=act, block=block
    )


def _bloom(model, length: int | None, shape: tuple | None = None) -> str:
    """BLOOM: a LayerNorm after the embedding (word_embeddings_layernorm), a fused query_key_value with biases, ALiBi,
    an MLP of 4·d with biases and BLOOM's tanh GELU, the head tied to the embedding. With
    apply_residual_connection_post_layernorm the residuals start from the norms' outputs."""
    c = model.config
    _classes(model, "BloomModel", "BloomForCausalLM")
    length = _length(model, length, shape, None, "")  # ALiBi: any length
    base = getattr(model, "transformer", model)
    d, heads = c.hidden_size, c.n_head
    sizes = (c.vocab_size, d, c.n_layer, heads, heads, 4 * d)
    block = "post" if c.apply_residual_connection_post_layernorm else "sequential"
    return _ln_decoder(
        model,
        base.word_embeddings,
        length,
        sizes=sizes,
        attention=["bias", "alibi"],
        mlp_bias=True,
        act="gelu",
        block=block,
        embed_norm=True,
    )


def _opt(model, length: int | None, shape: tuple | None = None) -> str:
    """OPT: learned positions (a table of max_position_embeddings + 2 rows, looked up at position + 2), pre-norm
    (do_layer_norm_before, with a final LayerNorm) or post-norm (OPT-350m), biases with enable_bias, an MLP fc1 >
    activation > fc2, and project_in / project_out where word_embed_proj_dim differs from hidden_size."""
    c = model.config
    _classes(model, "OPTModel", "OPTForCausalLM")
    length = _length(model, length, shape, c.max_position_embeddings, "max_position_embeddings")
    decoder = model.model.decoder if hasattr(model, "model") else model.decoder
    head = getattr(model, "lm_head", None)
    act = _hf_activation(model, "activation_function")
    norm = "ln" if c.layer_norm_elementwise_affine else "ln(noaffine)"
    bias = ", bias" if c.enable_bias else ""
    attn = f"attn(heads=h{bias}, causal)"
    mlp = f"dense(->F{bias}) > {act} > dense(->d{bias})"
    if c.do_layer_norm_before:
        block = f"res({norm} > {attn}) > res({norm} > {mlp})"
    else:  # OPT-350m: the norm after each residual sum
        block = f"res({attn}) > {norm} > res({mlp}) > {norm}"
    p, offset = c.word_embed_proj_dim, decoder.embed_positions.offset
    lets = [
        f"let V = {c.vocab_size}; let n = {c.max_position_embeddings}; let d = {c.hidden_size}; "
        f"let L = {c.num_hidden_layers}; let h = {c.num_attention_heads}"
        + (f"; let p = {p}" if p != c.hidden_size else ""),
        f"let F = {c.ffn_dim}",
    ]
    tied = head is not None and _shared(head, decoder.embed_tokens)
    width = "p" if p != c.hidden_size else "d"
    stages = [f"input({length or 'n'})", f"embed(V->{width}){' as wte' if tied else ''}"]
    stages += ["dense(->d)"] * (decoder.project_in is not None)
    stages += [f"posembed(n + {offset})", "(block) * L"]
    stages += [norm] * (decoder.final_layer_norm is not None)
    stages += ["dense(->p)"] * (decoder.project_out is not None)
    if head is not None:
        stages.append("dense(->V, tie=wte)" if tied else "dense(->V)")
    title = f"# {type(model).__name__} read by paramsym from its config"
    return "\n".join([title, *lets, f"def block = {block}", " > ".join(stages)]) + "\n"


def _sliced_rope(model, rotary_emb, head_dim: int, turned: int) -> str:
    """`rope` or `rope=F` for an attention that turns the first `turned` channels of each head
    (int(head_dim·partial_rotary_factor): Phi's and StableLM's rotary_ndims) with its rotary tables: tables of
    another width (an odd `turned`, whose tables round up to even) make its forward pass fail."""
    text = _rope(model, rotary_emb, head_dim, sliced=True)
    tables = 2 * rotary_emb.inv_freq.numel()
    if tables != turned:
        what = (
            f"its forward pass broadcasts them over the one channel and makes each query and key head {head_dim + 1} "
            f"channels wide, which the language's attn does not count"
            if turned == 1
            else "its forward pass fails (the tables must be as wide as the channels turned, an even number)"
        )
        raise ImportRefused(
            f"{type(model).__name__}: its attention turns {turned} of the {head_dim} channels of each head "
            f"(rotary_ndims, int(head_dim·partial_rotary_factor)) with rotary tables of {tables} channels: {what}"
        )
    return text


def _phi(model, length: int | None, shape: tuple | None = None) -> str:
    """Phi (Phi-1, Phi-1.5, Phi-2): GPT-J's parallel block (x + a(ln x) + m(ln x), one LayerNorm), biases on q, k, v,
    dense and the MLP, num_key_value_heads key/value heads, rotary positions on the first
    int(head_dim·partial_rotary_factor) channels of each head, with qk_layernorm a LayerNorm of the head width (a
    weight and a bias shared by the heads) on the queries and the keys, a head with a bias."""
    c = model.config
    _classes(model, "PhiModel", "PhiForCausalLM")
    length = _length(model, length, shape, None, "")  # rotary positions: any length
    base = getattr(model, "model", model)
    attention = base.layers[0].self_attn
    heads, kv, head_dim = c.num_attention_heads, c.num_key_value_heads, attention.head_dim
    options = [f"head_dim={head_dim}"] * (head_dim * heads != c.hidden_size) + ["bias"]
    options += ["qk_norm=ln"] * bool(c.qk_layernorm)
    options.append(_sliced_rope(model, base.rotary_emb, head_dim, attention.rotary_ndims))
    sizes = (c.vocab_size, c.hidden_size, c.num_hidden_layers, heads, kv, c.intermediate_size)
    act = _hf_activation(model, "hidden_act")
    return _ln_decoder(
        model, base.embed_tokens, length, sizes=sizes, attention=options, mlp_bias=True, act=act, block="parallel"
    )


def _stablelm(model, length: int | None, shape: tuple | None = None) -> str:
    """StableLM (StableLM-3B-4E1T, StableLM-2): LayerNorms with biases around Llama's attention and gated MLP
    without biases, biases on q, k and v with use_qkv_bias (qkv_bias), rotary positions on the first
    int(head_dim·partial_rotary_factor) channels of each head, with qk_layernorm a LayerNorm without bias of the head
    width for every head (qk_norm=ln_per_head), the attention and the MLP side by side from one LayerNorm with
    use_parallel_residual, else one after the other."""
    c = model.config
    _classes(model, "StableLmModel", "StableLmForCausalLM")
    length = _length(model, length, shape, None, "")  # rotary positions: any length
    base = getattr(model, "model", model)
    layer = base.layers[0]
    attention = layer.self_attn
    heads, kv, head_dim = c.num_attention_heads, c.num_key_value_heads, attention.head_dim
    options = _attention_biases(model, base) + ["qk_norm=ln_per_head"] * bool(c.qk_layernorm)
    options.append(_sliced_rope(model, base.rotary_emb, head_dim, attention.rotary_ndims))
    sizes = (c.vocab_size, c.hidden_size, c.num_hidden_layers, heads, kv, c.intermediate_size)
    act = _hf_activation(model, "hidden_act")
    block = "parallel" if c.use_parallel_residual else "sequential"
    mlp_bias = layer.mlp.down_proj.bias is not None
    return _ln_decoder(
        model,
        base.embed_tokens,
        length,
        sizes=sizes,
        attention=options,
        mlp_bias=mlp_bias,
        act=act,
        block=block,
        gated=True,
    )


def _gpt_neo(model, length: int | None, shape: tuple | None = None) -> str:
    """GPT-Neo: GPT-2's layout (learned positions, pre-norm blocks) with q, k and v without biases (projbias: a bias
    on out_proj only) and config.attention_layers naming each layer global (causal attention) or local (each
    position attends to itself and the window_size - 1 before it: window=W). transformers' GPTNeoSelfAttention
    masks the scores of every pair (the MACs of causal attention) and caches every position; a local layer needs
    the last W - 1 (the program's KV cache, as the language counts a window; see cache_is_the_architectures)."""
    c = model.config
    _classes(model, "GPTNeoModel", "GPTNeoForCausalLM")
    length = _length(model, length, shape, c.max_position_embeddings, "max_position_embeddings")
    base = getattr(model, "transformer", model)
    head = getattr(model, "lm_head", None)
    act = _hf_activation(model, "activation_function")
    kinds = []
    for i, block in enumerate(base.h):
        kind = block.attn.attention_type
        if kind not in ("global", "local"):
            raise ImportRefused(
                f"{type(model).__name__}.transformer.h.{i}.attn is of the type {kind!r} (paramsym reads global "
                f"and local)"
            )
        kinds.append(kind)
    W = c.window_size
    if "local" in kinds and not (isinstance(W, int) and W >= 1):
        raise ImportRefused(f"{type(model).__name__} has window_size={W!r}: not a positive whole number")
    inner = c.intermediate_size or 4 * c.hidden_size
    mlp = f"dense(->{_width(inner, c.hidden_size)}, bias) > {act} > dense(->d, bias)"
    lines = [
        f"# {type(model).__name__} read by paramsym from its config",
        f"let V = {c.vocab_size}; let n = {c.max_position_embeddings}; let d = {c.hidden_size}; "
        f"let L = {c.num_layers}; let h = {c.num_heads}" + ("; let W = " + str(W) if "local" in kinds else ""),
    ]
    for kind in ("global", "local"):
        if kind in kinds:
            window = ", window=W" if kind == "local" else ""
            lines.append(f"def {kind}_block = res(ln > attn(heads=h, projbias{window}, causal)) > res(ln > {mlp})")
    tied = head is not None and _shared(head, base.wte)
    network = (
        f"input({length or 'n'}) > embed(V->d){' as wte' if tied else ''} > posembed(n) > "
        f"{_sequence([f'{kind}_block' for kind in kinds])} > ln"
    )
    if head is not None:
        network += " > dense(->V, tie=wte)" if tied else " > dense(->V)"
    return "\n".join(lines + [network]) + "\n"


def _persimmon(model, length: int | None, shape: tuple | None = None) -> str:
    """Persimmon: GPT-NeoX's sequential block (x + a(ln₁ x), then y + m(ln₂ y)), a fused query_key_value and dense
    with biases, with qk_layernorm a LayerNorm of the head width (a weight and a bias shared by the heads) on the
    queries and the keys, rotary positions on the first int(head_dim·partial_rotary_factor) channels of each head,
    an MLP dense_h_to_4h > act > dense_4h_to_h with biases (relu2: the squared ReLU), a head without bias."""
    c = model.config
    _classes(model, "PersimmonModel", "PersimmonForCausalLM")
    length = _length(model, length, shape, None, "")  # rotary positions: any length
    base = getattr(model, "model", model)
    attention = base.layers[0].self_attn
    heads, head_dim = c.num_attention_heads, attention.head_dim
    options = ["bias"] + ["qk_norm=ln"] * bool(c.qk_layernorm)
    options.append(_sliced_rope(model, base.rotary_emb, head_dim, attention.rotary_ndims))
    sizes = (c.vocab_size, c.hidden_size, c.num_hidden_layers, heads, heads, c.intermediate_size)
    act = _hf_activation(model, "hidden_act")
    return _ln_decoder(
        model, base.embed_tokens, length, sizes=sizes, attention=options, mlp_bias=True, act=act, block="sequential"
    )


def _xglm(model, length: int | None, shape: tuple | None = None) -> str:
    """XGLM: pre-norm blocks of LayerNorms, attention and an MLP fc1 > act > fc2 with biases, sinusoidal positions
    (a table of no parameters that grows with the sequence: any length), the embedding scaled by sqrt(d_model) with
    scale_embedding (no parameters, no MACs), a final LayerNorm and a head without bias."""
    c = model.config
    _classes(model, "XGLMModel", "XGLMForCausalLM")
    length = _length(model, length, shape, None, "")  # sinusoidal positions: any length
    if c.add_cross_attention:
        raise ImportRefused(
            f"{type(model).__name__} with add_cross_attention=True: its blocks attend to an encoder's output too (a "
            f"second attention and layer norm in every block), which the layout does not write"
        )
    base = getattr(model, "model", model)
    sizes = (c.vocab_size, c.d_model, c.num_layers, c.attention_heads, c.attention_heads, c.ffn_dim)
    act = _hf_activation(model, "activation_function")
    return _ln_decoder(
        model, base.embed_tokens, length, sizes=sizes, attention=["bias"], mlp_bias=True, act=act, block="sequential"
    )


def _biogpt(model, length: int | None, shape: tuple | None = None) -> str:
    """BioGPT: OPT's pre-norm layout (learned positions, a table of max_position_embeddings + 2 rows looked up at
    position + 2), biases everywhere, an MLP fc1 > act > fc2, a final LayerNorm, the embedding scaled by
    sqrt(hidden_size) with scale_embedding (no parameters, no MACs), the head output_projection without bias."""
    c = model.config
    _classes(model, "BioGptModel", "BioGptForCausalLM")
    length = _length(model, length, shape, c.max_position_embeddings, "max_position_embeddings")
    base = getattr(model, "biogpt", model)
    head = getattr(model, "output_projection", None)
    act = _hf_activation(model, "hidden_act")
    lines = [
        f"# {type(model).__name__} read by paramsym from its config",
        f"let V = {c.vocab_size}; let n = {c.max_position_embeddings}; let d = {c.hidden_size}; "
        f"let L = {c.num_hidden_layers}; let h = {c.num_attention_heads}",
        f"let F = {c.intermediate_size}",
        f"def block = res(ln > attn(heads=h, bias, causal)) > res(ln > dense(->F, bias) > {act} > dense(->d, bias))",
    ]
    tied = head is not None and _shared(head, base.embed_tokens)
    network = (
        f"input({length or 'n'}) > embed(V->d){' as wte' if tied else ''} > "
        f"posembed(n + {base.embed_positions.offset}) > (block) * L > ln"
    )
    if head is not None:
        network += " > dense(->V, tie=wte)" if tied else " > dense(->V)"
    return "\n".join(lines + [network]) + "\n"


def _mpt(model, length: int | None, shape: tuple | None = None) -> str:
    """MPT, as transformers 5.23 builds it: LayerNorms without biases, a fused Wqkv and out_proj without biases,
    ALiBi (a table of max_seq_len columns: no longer sequence), an MLP of 4·d without biases and exact GELU, the
    head tied to the embedding. Its MptModel does not read the config fields that would build another model
    (attn_config.alibi=False, no_bias=False, expansion_ratio, qk_ln, multi-query attention): such a config is
    refused. clip_qkv clamps q, k and v (no parameters, no MACs)."""
    c = model.config
    name = type(model).__name__
    _classes(model, "MptModel", "MptForCausalLM")
    a = c.attn_config
    ignored = [
        (
            "attn_config.alibi",
            a.alibi,
            True,
            "it adds ALiBi biases whatever the config says, and has no position table",
        ),
        ("no_bias", c.no_bias, True, "its Linears and LayerNorms have no biases whatever the config says"),
        ("expansion_ratio", c.expansion_ratio, 4, "its MLP is 4·d wide whatever the config says"),
        ("attn_config.qk_ln", a.qk_ln, False, "it has no norms of the queries and keys"),
        ("attn_config.attn_type", a.attn_type, "multihead_attention", "it projects keys and values for every head"),
        ("attn_config.prefix_lm", a.prefix_lm, False, "its attention is causal on every position"),
    ]
    for field, value, built, why in ignored:
        if value != built:
            raise ImportRefused(
                f"{name} with {field}={value!r}: transformers' MptModel does not read it ({why}), so the model it "
                f"builds is not the one the config describes"
            )
    length = _length(model, length, shape, c.max_seq_len, "max_seq_len", table="keeps a table of ALiBi biases")
    base = getattr(model, "transformer", model)
    head = getattr(model, "lm_head", None)
    lines = [f"# {name} read by paramsym from its config"]
    if a.clip_qkv:
        lines.append(f"# q, k and v clamped to +-{a.clip_qkv} (clip_qkv): no parameters, no MACs")
    lines += [
        f"let V = {c.vocab_size}; let T = {length or c.max_seq_len}; let d = {c.d_model}; let L = {c.n_layers}; "
        f"let h = {c.n_heads}",
        "def block = res(ln(nobias) > attn(heads=h, alibi, causal)) "
        "> res(ln(nobias) > dense(->4d) > gelu > dense(->d))",
    ]
    tied = head is not None and _shared(head, base.wte)
    network = f"input(T) > embed(V->d){' as wte' if tied else ''} > (block) * L > ln(nobias)"
    if head is not None:
        network += " > dense(->V, tie=wte)" if tied else " > dense(->V)"
    return "\n".join(lines + [network]) + "\n"


def _encoder_decoder_lengths(model, length: int | None, shape: tuple | None, limit: int | None, field: str) -> str:
    """The `let`s of an encoder-decoder's two lengths: S, the encoder's input, and T, the decoder's: both the
    one length asked for (`--input 512`), or each its own (`--input 512x128`: S x T)."""
    if shape is not None and len(shape) == 2:
        source = _length(model, shape[0], None, limit, field)
        target = _length(model, shape[1], None, limit, field)
        return f"let S = {source}; let T = {target}"
    n = _length(model, length, shape, limit, field) or limit or 512
    return f"let S = {n}; let T = {n}"


def _t5_block_parts(model, c) -> tuple[str, list[str]]:
    """(the MLP, the attention's options) of T5's layers, read from the config and checked on the first block:
    DenseReluDense (wi > act > wo) or, gated (T5 v1.1, Flan-T5: feed_forward_proj="gated-gelu"), wi_0 > act times
    wi_1, then wo; no biases anywhere; the heads of d_kv channels (head_dim= when h·d_kv is not d_model)."""
    act = _hf_activation(model, "dense_act_fn")
    ff = model.encoder.block[0].layer[-1].DenseReluDense
    if any(m.bias is not None for m in ff.modules() if type(m).__name__ == "Linear"):
        raise ImportRefused(
            f"{type(model).__name__}: a feed-forward Linear with a bias has no counterpart in T5's layout"
        )
    mlp = f"mul(dense(->F) > {act} | dense(->F)) > dense(->d)" if c.is_gated_act else f"dense(->F) > {act} > dense(->d)"
    attention = ["heads=h"] + ([f"head_dim={c.d_kv}"] if c.d_kv * c.num_heads != c.d_model else [])
    return mlp, attention


def _t5(model, length: int | None, shape: tuple | None = None) -> str:
    """T5 (T5ForConditionalGeneration, T5Model, T5EncoderModel): a shared embedding; an encoder of pre-norm blocks
    (rmsnorm: T5LayerNorm) whose first attention holds the relative-position buckets (relative_attention_bias,
    Embedding(buckets, h): `relbuckets=B`) that the others use again (`tie=`); a final rmsnorm, named `memory`;
    a decoder from its own input whose blocks add cross-attention to memory (`source=@memory`); the head tied
    to the embedding or not. No attention bias, no 1/sqrt(d) scaling (neither has parameters)."""
    c = model.config
    name = type(model).__name__
    _classes(model, "T5ForConditionalGeneration", "T5Model", "T5EncoderModel")
    mlp, attention = _t5_block_parts(model, c)
    options = ", ".join(attention)
    buckets = c.relative_attention_num_buckets
    decoder = getattr(model, "decoder", None)
    layers = [f"let V = {c.vocab_size}; let d = {c.d_model}; let h = {c.num_heads}; let F = {c.d_ff}"]
    lines = [f"def ff = {mlp}"]

    def stack(L: str, count: int, first: str, block: str, last_name: str) -> str:
        more = f" > ({block}) * ({L} - 1)" if count > 1 else ""
        return f"{first}{more} > rmsnorm{last_name}"

    layers.append(f"let L = {c.num_layers}")
    lines.append(f"def enc = res(rmsnorm > attn({options}, tie=encpos)) > res(rmsnorm > ff)")
    first_enc = f"res(rmsnorm > attn({options}, relbuckets={buckets}) as encpos) > res(rmsnorm > ff)"
    if decoder is None:
        layers.insert(0, f"let S = {_length(model, length, shape, None, '') or 512}")
        network = f"input(S) > embed(V->d) > {stack('L', c.num_layers, first_enc, 'enc', '')}"
        return "\n".join([f"# {name} read by paramsym from its config", *layers, *lines, network]) + "\n"
    layers.insert(0, _encoder_decoder_lengths(model, length, shape, None, ""))
    layers.append(f"let Ld = {c.num_decoder_layers}")
    lines.append(
        f"def dec = res(rmsnorm > attn({options}, causal, tie=decpos)) "
        f"> res(rmsnorm > attn({options}, source=@memory)) > res(rmsnorm > ff)"
    )
    first_dec = (
        f"res(rmsnorm > attn({options}, causal, relbuckets={buckets}) as decpos) "
        f"> res(rmsnorm > attn({options}, source=@memory)) > res(rmsnorm > ff)"
    )
    head = getattr(model, "lm_head", None)
    network = (
        f"input(S) > embed(V->d) as shared > {stack('L', c.num_layers, first_enc, 'enc', ' as memory')} "
        f"> input(T) > embed(V->d, tie=shared) > {stack('Ld', c.num_decoder_layers, first_dec, 'dec', '')}"
    )
    if head is not None:
        network += " > dense(->V, tie=shared)" if _shared(head, model.shared) else " > dense(->V)"
    return "\n".join([f"# {name} read by paramsym from its config", *layers, *lines, network]) + "\n"


def _bart(model, length: int | None, shape: tuple | None = None) -> str:
    """BART (BartForConditionalGeneration, BartModel): a shared embedding (scale_embedding multiplies by sqrt(d):
    no parameters); encoder and decoder each with learned positions, a table of max_position_embeddings + 2 rows
    (BartLearnedPositionalEmbedding looks positions up with an offset of 2) and layernorm_embedding; post-norm
    layers (x = LN(x + attn(x)), x = LN(x + ffn(x))) with biases everywhere; the decoder's layers add
    cross-attention to the encoder's output (`source=@memory`). final_logits_bias is a buffer, not a parameter:
    it learns nothing and counts nowhere."""
    c = model.config
    name = type(model).__name__
    _classes(model, "BartForConditionalGeneration", "BartModel")
    base = getattr(model, "model", model)
    n = c.max_position_embeddings
    rows = base.encoder.embed_positions.num_embeddings
    if rows != n + 2 or base.decoder.embed_positions.num_embeddings != n + 2:
        raise ImportRefused(f"{name}: learned positions of {rows} rows, not max_position_embeddings + 2 = {n + 2}")
    for part in (base.encoder, base.decoder):
        if getattr(part, "layer_norm", None) is not None:
            raise ImportRefused(f"{name}: a final layer norm after the layers (mBART's) is not in BART's layout")
    act = _hf_activation(model, "activation_function")
    lines = [
        f"# {name} read by paramsym from its config",
        _encoder_decoder_lengths(model, length, shape, n, "max_position_embeddings"),
        f"let V = {c.vocab_size}; let n = {n}; let d = {c.d_model}; let L = {c.encoder_layers}; "
        f"let Ld = {c.decoder_layers}",
        f"let h = {c.encoder_attention_heads}; let hd = {c.decoder_attention_heads}; "
        f"let F = {c.encoder_ffn_dim}; let Fd = {c.decoder_ffn_dim}",
        f"def enc = res(attn(heads=h, bias)) > ln > res(dense(->F, bias) > {act} > dense(->d, bias)) > ln",
        f"def dec = res(attn(heads=hd, bias, causal)) > ln > res(attn(heads=hd, bias, source=@memory)) > ln "
        f"> res(dense(->Fd, bias) > {act} > dense(->d, bias)) > ln",
    ]
    network = (
        "input(S) > embed(V->d) as shared > posembed(n + 2) > ln > ((enc) * L) as memory "
        "> input(T) > embed(V->d, tie=shared) > posembed(n + 2) > ln > (dec) * Ld"
    )
    head = getattr(model, "lm_head", None)
    if head is not None:
        network += " > dense(->V, tie=shared)" if _shared(head, base.shared) else " > dense(->V)"
    return "\n".join([*lines, network]) + "\n"


def _activation(module, where: str) -> str:
    """The kind of a torch activation module (ViT's and Swin's MLPs take any `activation_layer`)."""
    from .. import kinds
    from ..kinds.activations import Activation

    kind = kinds.for_torch_module(module)
    if (
        not isinstance(kind, Activation)
        or kind.identity
        or kind.key in ("dropout", "softmax")
        or any(True for _ in module.parameters())
    ):
        raise ImportRefused(
            f"{where}: the activation {type(module).__name__} has no counterpart in the layout "
            f"(an element-wise activation without parameters, such as GELU or ReLU)"
        )
    return kind.from_torch(module, None)


def _mlp(mlp, where: str) -> tuple:
    """(hidden width, activation, biases) of torchvision's MLP: Linear > activation > Dropout > Linear > Dropout
    (dropout counts nowhere)."""
    parts = [m for m in mlp.children() if type(m).__name__ not in ("Dropout", "Identity")]
    names = [type(m).__name__ for m in parts]
    if len(parts) != 3 or names[0] != "Linear" or names[2] != "Linear":
        raise ImportRefused(f"{where}: an MLP of {', '.join(names)} is not Linear > activation > Linear")
    first, act, last = parts
    if (first.bias is None) != (last.bias is None):
        raise ImportRefused(f"{where}: an MLP with a bias in one Linear only has no counterpart in the layout")
    return first.out_features, _activation(act, where), first.bias is not None, last.out_features


def _image(model, size: tuple | None, default: tuple) -> tuple:
    """The requested HxWxC of an image model (default: the size it was built for)."""
    if size is None:
        return default
    size = tuple(size)
    if len(size) != 3:
        raise ImportRefused(
            f"{type(model).__name__} takes an image: give its size as HxWxC (--input "
            f"{'x'.join(str(v) for v in default)}), not {'x'.join(str(v) for v in size)}"
        )
    return size


def _vit(model, size: tuple | None) -> str:
    """torchvision.models.VisionTransformer. It takes images of its `image_size` only (its forward asserts it),
    with as many channels as its patch convolution takes."""
    if getattr(model, "conv_proj", None) is None or type(model.conv_proj).__name__ != "Conv2d":
        raise ImportRefused(
            "a ViT with a convolutional stem other than one patch convolution (conv_stem_configs) has no counterpart"
        )
    conv = model.conv_proj
    full, patch, width = model.image_size, model.patch_size, model.hidden_dim
    size = _image(model, size, (full, full, conv.in_channels))
    for axis, n in zip(("height", "width"), size[:2]):
        if n != full:
            raise ImportRefused(
                f"{type(model).__name__} built for {full}x{full} images does not take a "
                f"{'x'.join(str(v) for v in size)} input (torchvision: Wrong image {axis}! Expected "
                f"{full} but got {n}!)"
            )
    if size[2] != conv.in_channels:
        raise ImportRefused(
            f"{type(model).__name__} takes images of {conv.in_channels} channels (its conv_proj), not {size[2]}"
        )
    if (
        list(conv.kernel_size) != [patch, patch]
        or list(conv.stride) != [patch, patch]
        or list(conv.padding) != [0, 0]
        or conv.bias is None
        or conv.groups != 1
        or list(conv.dilation) != [1, 1]
    ):
        raise ImportRefused(
            f"{type(model).__name__}: a patch convolution other than {patch}x{patch} with stride "
            f"{patch} and a bias has no counterpart in the layout"
        )
    head_text = ""
    for layer in model.heads.children():
        name = type(layer).__name__
        if name == "Linear":
            head_text += f" > dense(->{layer.out_features}{', bias' if layer.bias is not None else ''})"
        elif name == "Tanh":
            head_text += " > tanh"
        else:
            raise ImportRefused(f"heads ({name}) of the ViT has no counterpart")
    # every block is read, not only the first: a block whose parts differ is refused, not counted as the first
    blocks = list(model.encoder.layers)
    read = set()
    for i, block in enumerate(blocks):
        where = f"{type(model).__name__} encoder block {i}"
        attention = block.self_attention
        if type(block).__name__ != "EncoderBlock" or type(attention).__name__ != "MultiheadAttention":
            raise ImportRefused(
                f"{where} ({type(block).__name__}) is not torchvision's EncoderBlock with nn.MultiheadAttention"
            )
        if (
            attention.bias_k is not None
            or not attention._qkv_same_embed_dim
            or (attention.in_proj_bias is None) != (attention.out_proj.bias is None)
        ):
            raise ImportRefused(
                f"{where}: nn.MultiheadAttention with add_bias_kv, kdim/vdim or a bias on one "
                f"projection only has no counterpart"
            )
        norms = [block.ln_1, block.ln_2]
        if any(type(n).__name__ != "LayerNorm" or n.weight is None or n.bias is None for n in norms):
            raise ImportRefused(f"{where}: a norm other than nn.LayerNorm with a weight and a bias")
        hidden, act, bias, out = _mlp(block.mlp, where)
        if out != width or attention.embed_dim != width:
            raise ImportRefused(f"{where} does not keep the width {width}")
        read.add((attention.num_heads, attention.in_proj_bias is not None, hidden, act, bias))
    if len(read) != 1:
        raise ImportRefused(
            f"{type(model).__name__}: its encoder blocks differ (heads, biases, MLP width or "
            f"activation); the layout repeats one block"
        )
    heads, attention_bias, hidden, act, bias = read.pop()
    final = model.encoder.ln
    if (
        type(final).__name__ != "LayerNorm"
        or final.weight is None
        or final.bias is None
        or tuple(model.class_token.shape) != (1, 1, width)
        or tuple(model.encoder.pos_embedding.shape) != (1, model.seq_length, width)
    ):
        raise ImportRefused(
            f"{type(model).__name__}: a class token, position table or final norm other than "
            f"torchvision's (1 x 1 x d, 1 x {model.seq_length} x d, nn.LayerNorm)"
        )
    b = ", bias" if bias else ""
    return (
        "\n".join(
            [
                f"# {type(model).__name__} read by paramsym",
                f"let d = {width}; let L = {len(blocks)}; let h = {heads}",
                f"def block = res(ln > attn(heads=h{', bias' if attention_bias else ''})) "
                f"> res(ln > dense(->{hidden}{b}) > {act} > dense(->d{b}))",
                f"input({'x'.join(str(v) for v in size)}) "
                f"> conv{patch}x{patch}(->d, stride={patch}, bias) > tokens > cls "
                f"> posembed({model.seq_length}) > (block) * L > ln > first{head_text}",
            ]
        )
        + "\n"
    )


def _swin_blocks(model, stages, window: int) -> tuple:
    """(the MLP width as a multiple of d, the activation) of every Swin block, which must agree: each block is read
    (norms, attention biases, the shift of every other block, the MLP), not only the first."""
    read = set()
    for s, stage in enumerate(stages):
        if type(stage).__name__ != "Sequential":
            if type(stage.norm).__name__ != "LayerNorm" or stage.norm.weight is None or stage.norm.bias is None:
                raise ImportRefused(
                    f"{type(model).__name__} stage {s + 1}: patch merging with a norm other than "
                    f"nn.LayerNorm with a weight and a bias"
                )
            continue
        for i, block in enumerate(stage):
            where = f"{type(model).__name__} stage {s + 1} block {i}"
            attn = block.attn
            d = attn.proj.out_features
            if (d, attn.num_heads) != (stage[0].attn.proj.out_features, stage[0].attn.num_heads):
                raise ImportRefused(f"{where}: its width or heads differ from the first block of its stage")
            if any(
                type(n).__name__ != "LayerNorm" or n.weight is None or n.bias is None
                for n in (block.norm1, block.norm2)
            ):
                raise ImportRefused(f"{where}: a norm other than nn.LayerNorm with a weight and a bias")
            if attn.qkv.bias is None or attn.proj.bias is None:
                raise ImportRefused(
                    f"{where}: window attention without its qkv and proj biases has no counterpart in the layout"
                )
            # torchvision shifts every other block by half a window (window=w, shift)
            if list(attn.shift_size) != [window // 2 * (i % 2)] * 2:
                raise ImportRefused(
                    f"{where}: a shift of {list(attn.shift_size)}; the layout shifts every other "
                    f"block by half the window ({window // 2})"
                )
            hidden, act, bias, out = _mlp(block.mlp, where)
            if not bias or out != d:
                raise ImportRefused(f"{where}: an MLP without biases or that does not keep the width {d}")
            read.add((Fraction(hidden, d), act))
    if len(read) != 1:
        raise ImportRefused(
            f"{type(model).__name__}: its blocks' MLPs differ (width ratio or activation); the layout writes one"
        )
    ratio, act = read.pop()
    return (f"{ratio.numerator}*d" if ratio.denominator == 1 else f"{ratio.numerator}*d/{ratio.denominator}"), act


def _swin(model, size: tuple | None) -> str:
    """torchvision.models.SwinTransformer, V1 and V2: a patch convolution, stages of window-attention blocks
    (alternately shifted) joined by patch merging, then ln > gap > the head. V1's blocks are pre-norm with a
    relative-position table (`res(ln > attn(..., window=w))`), V2's post-norm with a continuous position bias
    (`res(attn(..., window=w, cpb=m) > ln)`) and its patch merging normalises after the reduction."""
    stem, *stages = model.features
    blocks = [b for stage in stages if type(stage).__name__ == "Sequential" for b in stage]
    kinds = {type(b).__name__ for b in blocks}
    if not blocks or len(kinds) != 1 or kinds - {"SwinTransformerBlock", "SwinTransformerBlockV2"}:
        raise ImportRefused(
            f"{type(model).__name__} with blocks {', '.join(sorted(kinds))}: paramsym reads "
            f"torchvision's SwinTransformerBlock (V1) or SwinTransformerBlockV2, one kind per model"
        )
    v2 = kinds == {"SwinTransformerBlockV2"}
    conv, first = stem[0], blocks[0]
    if (
        [type(m).__name__ for m in stem] != ["Conv2d", "Permute", "LayerNorm"]
        or stem[2].bias is None
        or stem[2].weight is None
    ):
        raise ImportRefused(f"{type(model).__name__}: a stem other than torchvision's patch convolution > nn.LayerNorm")
    window = first.attn.window_size[0]
    if any(list(b.attn.window_size) != [window, window] for b in blocks):
        raise ImportRefused(
            f"{type(model).__name__} with windows other than one square window in every block has "
            f"no counterpart (attn's window=w is square)"
        )
    size = _image(model, size, (224, 224, conv.in_channels))
    if size[2] != conv.in_channels:
        raise ImportRefused(
            f"{type(model).__name__} takes images of {conv.in_channels} channels (its patch convolution), not {size[2]}"
        )
    patch = conv.stride[0]
    if (
        list(conv.stride) != [patch, patch]
        or conv.kernel_size[0] != conv.kernel_size[1]
        or list(conv.padding) != [0, 0]
        or conv.bias is None
        or conv.groups != 1
        or list(conv.dilation) != [1, 1]
    ):
        raise ImportRefused(
            f"{type(model).__name__}: a patch convolution other than a square one with a square "
            f"stride, no padding and a bias has no counterpart in the layout"
        )
    ratio, act = _swin_blocks(model, stages, window)
    maps = []
    side = [n // patch for n in size[:2]]
    for stage in stages:
        if type(stage).__name__ == "Sequential":
            maps += side
        else:
            side = [(n + 1) // 2 for n in side]
    pad = ", pad" if any(n % window for n in maps) else ""  # torchvision pads the maps to a multiple of the window
    if v2:
        cpb = f", cpb={first.attn.cpb_mlp[0].out_features}"
        body = [
            f"res(attn(heads=h, bias, window={window}{cpb}{pad}{{shift}}) > ln) "
            f"> res(dense(->{ratio}, bias) > {act} > dense(->d, bias) > ln)"
        ]
    else:
        body = [
            f"res(ln > attn(heads=h, bias, window={window}{pad}{{shift}})) "
            f"> res(ln > dense(->{ratio}, bias) > {act} > dense(->d, bias))"
        ]
    lines = [
        f"# {type(model).__name__} read by paramsym",
        f"def block(d, h) = {body[0].format(shift='')}",
        f"def shifted(d, h) = {body[0].format(shift=', shift')}",
    ]
    network = [
        f"input({'x'.join(str(v) for v in size)}) > conv{conv.kernel_size[0]}x{conv.kernel_size[1]}"
        f"(->{conv.out_channels}, stride={conv.stride[0]}, bias) > ln"
    ]
    for stage in stages:
        if type(stage).__name__ in ("PatchMerging", "PatchMergingV2"):
            reduce = f"dense(->{stage.reduction.out_features})"
            network.append(
                f"space2depth(2) > {reduce} > ln"
                if type(stage).__name__ == "PatchMergingV2"
                else f"space2depth(2) > ln > {reduce}"
            )
            continue
        d, h = stage[0].attn.proj.out_features, stage[0].attn.num_heads
        pairs, odd = divmod(len(stage), 2)
        parts = ([f"(block({d}, {h}) > shifted({d}, {h})) * {pairs}"] if pairs else []) + (
            [f"block({d}, {h})"] if odd else []
        )
        network.append(" > ".join(parts))
    if type(model.head).__name__ != "Linear" or model.head.bias is None or type(model.norm).__name__ != "LayerNorm":
        raise ImportRefused(f"{type(model).__name__}: a head other than LayerNorm > pooling > Linear with a bias")
    network.append(f"ln > gap > dense(->{model.head.out_features}, bias)")
    return "\n".join(lines + ["\n  > ".join(network)]) + "\n"


# ---- MaxViT ---------------------------------------------------------------------------------------


def _times(ratio: Fraction, symbol: str) -> str:
    """ratio·symbol as the language writes it: `c`, `4c`, `c/4`, `3c/2`."""
    top = "" if ratio.numerator == 1 else str(ratio.numerator)
    return f"{top}{symbol}" + ("" if ratio.denominator == 1 else f"/{ratio.denominator}")


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _conv(conv, where: str, width: str | None = None, stride: str | None = None) -> str:
    """A Conv2d as the language writes it: square kernel, square stride and padding, zero padding; `width` and
    `stride` replace the numbers by a block's parameters (the caller has checked that they are equal)."""
    k, s, pad, dilation = (_pair(v) for v in (conv.kernel_size, conv.stride, conv.padding, conv.dilation))
    if (
        type(conv).__name__ != "Conv2d"
        or len({*k}) != 1
        or len({*s}) != 1
        or not isinstance(pad[0], int)
        or len({*pad}) != 1
        or dilation != (1, 1)
        or conv.padding_mode != "zeros"
    ):
        raise ImportRefused(
            f"{where}: {type(conv).__name__} other than a square Conv2d with a square stride, zero padding "
            f"and no dilation has no counterpart in the layout"
        )
    parts = [f"->{width or conv.out_channels}"]
    if s[0] != 1 or stride is not None:
        parts.append(f"stride={stride or s[0]}")
    if pad[0]:
        parts.append(f"pad={pad[0]}")
    if conv.groups != 1:
        if conv.groups != conv.in_channels or conv.groups != conv.out_channels:
            raise ImportRefused(
                f"{where}: a grouped Conv2d other than a depthwise one has no counterpart in the layout"
            )
        parts.append(f"groups={width or conv.groups}")
    if conv.bias is not None:
        parts.append("bias")
    return f"conv{k[0]}x{k[1]}({', '.join(parts)})"


def _bn(norm, where: str) -> str:
    if type(norm).__name__ != "BatchNorm2d" or not norm.affine or not norm.track_running_stats:
        raise ImportRefused(
            f"{where}: {type(norm).__name__} other than BatchNorm2d with its affine parameters and running "
            f"statistics has no counterpart in the layout"
        )
    return "bn"


def _ln(norm, where: str, width: int) -> str:
    if (
        type(norm).__name__ != "LayerNorm"
        or tuple(norm.normalized_shape) != (width,)
        or norm.weight is None
        or norm.bias is None
    ):
        raise ImportRefused(
            f"{where}: {type(norm).__name__} other than nn.LayerNorm({width}) with a weight and a bias has no "
            f"counterpart in the layout"
        )
    return "ln"


def _conv_norm_act(block, where: str) -> list:
    """torchvision's Conv2dNormActivation: Conv2d, then BatchNorm2d and an activation, each optional."""
    parts = list(block.children())
    if not parts or type(parts[0]).__name__ != "Conv2d":
        raise ImportRefused(f"{where}: a Conv2dNormActivation that does not start with its Conv2d")
    text = [_conv(parts[0], where)]
    for part in parts[1:]:
        text.append(_bn(part, where) if "Norm" in type(part).__name__ else _activation(part, where))
    return text


def _maxvit_mbconv(mbconv, where: str, c: int) -> tuple:
    """(stride, mid/c, sqz/c, activation, SE activation, whether the shortcut projects) of torchvision's MBConv:
    proj(x) + [pre_norm > conv_a (1x1) > conv_b (depthwise 3x3, the stride) > squeeze_excitation > conv_c (1x1,
    bias)](x), the shortcut `proj` an identity or AvgPool2d(3, stride 2, padding 1) > Conv2d 1x1 with a bias."""
    if type(mbconv).__name__ != "MBConv":
        raise ImportRefused(f"{where}: {type(mbconv).__name__} where MaxViT has its MBConv")
    layers = dict(mbconv.layers.named_children())
    if list(layers) != ["pre_norm", "conv_a", "conv_b", "squeeze_excitation", "conv_c"]:
        raise ImportRefused(f"{where}: an MBConv of {', '.join(layers)}; the layout reads torchvision's")
    _bn(layers["pre_norm"], where)
    a, b, se, last = layers["conv_a"], layers["conv_b"], layers["squeeze_excitation"], layers["conv_c"]
    first, depthwise = list(a.children()), list(b.children())
    if (
        [type(m).__name__ for m in first][:2] != ["Conv2d", "BatchNorm2d"]
        or len(first) != 3
        or [type(m).__name__ for m in depthwise][:2] != ["Conv2d", "BatchNorm2d"]
        or len(depthwise) != 3
    ):
        raise ImportRefused(f"{where}: conv_a and conv_b other than Conv2d > BatchNorm2d > activation")
    mid = first[0].out_channels
    act = _activation(first[2], where)
    stride = _pair(depthwise[0].stride)[0]
    expected = (
        _conv(first[0], where),
        _conv(depthwise[0], where),
        _conv(last, where),
    )
    wanted = (
        f"conv1x1(->{mid})",
        f"conv3x3(->{mid}{f', stride={stride}' if stride != 1 else ''}, pad=1, groups={mid})",
        f"conv1x1(->{c}, bias)",
    )
    if expected != wanted or _activation(depthwise[2], where) != act:
        raise ImportRefused(
            f"{where}: an MBConv of {' > '.join(expected)} with its activations; the layout reads "
            f"{' > '.join(wanted)} (torchvision's MaxViT)"
        )
    for part in (first[1], depthwise[1]):
        _bn(part, where)
    if (
        type(se).__name__ != "SqueezeExcitation"
        or type(se.avgpool).__name__ != "AdaptiveAvgPool2d"
        or _pair(se.avgpool.output_size) != (1, 1)
        or (_conv(se.fc1, where), _conv(se.fc2, where))
        != (f"conv1x1(->{se.fc1.out_channels}, bias)", f"conv1x1(->{mid}, bias)")
        or type(se.scale_activation).__name__ != "Sigmoid"
    ):
        raise ImportRefused(
            f"{where}: a squeeze-excitation other than torchvision's (global average > 1x1 conv with bias > "
            f"activation > 1x1 conv with bias > sigmoid)"
        )
    se_act = _activation(se.activation, where)
    proj = [m for m in mbconv.proj.modules() if type(m).__name__ not in ("Sequential", "Identity")]
    projects = bool(proj)
    if projects and (
        [type(m).__name__ for m in proj] != ["AvgPool2d", "Conv2d"]
        or (_pair(proj[0].kernel_size), _pair(proj[0].stride), _pair(proj[0].padding)) != ((3, 3), (2, 2), (1, 1))
        or proj[0].ceil_mode
        or _conv(proj[1], where) != f"conv1x1(->{c}, bias)"
        or stride != 2
    ):
        raise ImportRefused(
            f"{where}: an MBConv shortcut of {', '.join(type(m).__name__ for m in proj)}; the layout reads "
            f"AvgPool2d(3, stride=2, padding=1) > Conv2d 1x1 with a bias, on a block of stride 2"
        )
    if not projects and stride != 1:
        raise ImportRefused(f"{where}: an MBConv of stride {stride} without a shortcut projection")
    return stride, Fraction(mid, c), Fraction(se.fc1.out_channels, c), act, se_act, projects


def _maxvit_attention(layer, where: str, c: int, kind: str, side: tuple) -> tuple:
    """(heads, partition size, MLP width / c, activation) of a PartitionAttentionLayer of `kind` ("window" or
    "grid") on a map of `side`, read by the attention kind (kinds.attention.partition_attention)."""
    from ..kinds.attention import partition_attention

    if type(layer).__name__ != "PartitionAttentionLayer" or getattr(layer, "partition_type", None) != kind:
        raise ImportRefused(f"{where}: {type(layer).__name__} where MaxViT has its {kind} attention")
    _, heads, size, hidden, act = partition_attention(layer, where, side)
    if layer.attn_layer[0].normalized_shape[0] != c:
        raise ImportRefused(f"{where}: an attention of {layer.attn_layer[0].normalized_shape[0]} channels after {c}")
    return heads, size, Fraction(hidden, c), act


def _conv_out(side: tuple, k: int, s: int, p: int) -> tuple:
    return tuple((n + 2 * p - k) // s + 1 for n in side)


def _maxvit(model, size: tuple | None) -> str:
    """torchvision.models.MaxVit: a stem of two 3x3 convolutions, blocks of MaxViT layers (an MBConv with
    squeeze-excitation, then block attention inside p x p windows and grid attention across a p x p grid,
    each followed by an MLP), then gap > ln > dense > tanh > dense. Every layer is read and must agree with the
    one layout; any other variant is refused."""
    name = type(model).__name__
    stem = list(model.stem.children())
    convs = [m for m in model.stem.modules() if type(m).__name__ == "Conv2d"]
    if not convs or not len(model.blocks):
        raise ImportRefused(f"{name}: a stem without a Conv2d or no blocks has no counterpart in the layout")
    channels = convs[0].in_channels
    first_side = model.blocks[0].layers[0].layers.window_attention.grid_size
    size = _image(model, size, (4 * first_side[0], 4 * first_side[1], channels))
    if size[2] != channels:
        raise ImportRefused(f"{name} takes images of {channels} channels (its stem), not {size[2]}")
    stem_text = []
    side = tuple(size[:2])
    for i, block in enumerate(stem):
        where = f"{name} stem.{i}"
        stem_text += _conv_norm_act(block, where)
        conv = next(block.children())
        side = _conv_out(side, _pair(conv.kernel_size)[0], _pair(conv.stride)[0], _pair(conv.padding)[0])
    read, stages = set(), []
    c = channels
    for b, block in enumerate(model.blocks):
        layers = list(block.layers)
        if not layers:
            raise ImportRefused(f"{name} blocks.{b} has no layers")
        c = None
        heads: set[int] = set()
        for i, layer in enumerate(layers):
            where = f"{name} blocks.{b}.layers.{i}"
            parts = dict(layer.layers.named_children())
            if type(layer).__name__ != "MaxVitLayer" or list(parts) != ["MBconv", "window_attention", "grid_attention"]:
                raise ImportRefused(f"{where}: a layer other than torchvision's MaxVitLayer (MBConv, window, grid)")
            c = parts["MBconv"].layers.conv_c.out_channels
            stride, mid, sqz, act, se_act, projects = _maxvit_mbconv(parts["MBconv"], f"{where}.MBconv", c)
            if (i == 0) != projects or (i == 0) != (stride == 2):
                raise ImportRefused(
                    f"{where}: the layout strides (and projects the shortcut) in the first layer of each block only"
                )
            side = tuple((n - 1) // stride + 1 for n in side)  # the depthwise 3x3 with padding 1
            found = [
                _maxvit_attention(parts[kind + "_attention"], f"{where}.{kind}_attention", c, kind, side)
                for kind in ("window", "grid")
            ]
            heads.update(h for h, *_ in found)
            for _, partition, ratio, mlp_act in found:
                read.add((mid, sqz, act, se_act, partition, ratio, mlp_act))
        if len(heads) != 1:
            raise ImportRefused(f"{name} blocks.{b}: its attentions have different numbers of heads")
        stages.append((c, heads.pop(), len(layers)))
    if len(read) != 1:
        raise ImportRefused(
            f"{name}: its layers differ (MBConv or MLP width ratios, activations or partition size); the "
            f"layout writes one layer"
        )
    mid, sqz, act, se_act, p, ratio, mlp_act = read.pop()
    head = [m for m in model.classifier.children() if type(m).__name__ not in ("Flatten", "Dropout")]
    head_text = []
    for i, part in enumerate(head):
        kind = type(part).__name__
        where = f"{name} classifier.{i}"
        if kind == "AdaptiveAvgPool2d" and _pair(part.output_size) == (1, 1) and i == 0:
            head_text.append("gap")
        elif kind == "LayerNorm" and i > 0:
            head_text.append(_ln(part, where, c))
        elif kind == "Linear" and i > 0:
            c = part.out_features
            head_text.append(f"dense(->{c}{', bias' if part.bias is not None else ''})")
        elif i > 0 and kind in ("Tanh", "GELU", "ReLU", "SiLU"):
            head_text.append(_activation(part, where))
        else:
            raise ImportRefused(
                f"{where}: {kind} has no counterpart in MaxViT's head (gap > ln > dense > tanh > dense)"
            )
    m = _times(mid, "c")
    lines = [
        f"# {name} read by paramsym",
        f"let p = {p}",
        f"def mbconv(c, s) = bn > conv1x1(->{m}) > bn > {act}",
        f"                   > conv3x3(->{m}, stride=s, pad=1, groups={m}) > bn > {act}",
        f"                   > mul(id | gap > dense(->{_times(sqz, 'c')}, bias) > {se_act}",
        f"                              > dense(->{m}, bias) > sigmoid)",
        "                   > conv1x1(->c, bias)",
        f"def mlp(c) = res(ln > dense(->{_times(ratio, 'c')}, bias) > {mlp_act} > dense(->c, bias))",
        "def attend(c, h) = res(ln > attn(heads=h, bias, window=p)) > mlp(c)",
        "                   > res(ln > attn(heads=h, bias, grid=p)) > mlp(c)",
        "def down(c, h) = res(mbconv(c, 2)",
        "                     | avgpool3x3(stride=2, pad=1) > conv1x1(->c, bias))",
        "                 > attend(c, h)",
        "def layer(c, h) = res(mbconv(c, 1)) > attend(c, h)",
    ]
    network = [f"input({'x'.join(str(v) for v in size)})", " > ".join(stem_text)]
    for c, h, n in stages:
        rest = [] if n == 1 else [f"layer({c}, {h})"] if n == 2 else [f"(layer({c}, {h})) * {n - 1}"]
        network.append(" > ".join([f"down({c}, {h})", *rest]))
    network.append(" > ".join(head_text))
    return "\n".join(lines + ["\n  > ".join(network)]) + "\n"


def _fold(line: str, width: int = 79) -> list[str]:
    """A stage line (`  > ...`) folded into lines of at most `width` columns where it can be: after a `, ` or
    before a ` | ` inside parentheses (where new lines are ignored), or before a ` > ` (inside parentheses, or
    outside them, where a line that starts with `>` continues the one before)."""
    points, depth = [], 0
    for i, char in enumerate(line):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth > 0 and line.startswith(", ", i):
            points.append((i + 2, depth))
        elif line.startswith((" | ", " > "), i) and i > 3 and (depth > 0 or line[i + 1] == ">"):
            points.append((i + 1, depth))
    lines, start, last, indent = [], 0, None, ""
    for point, depth in points:
        if len(indent) + point - start > width and last is not None:
            lines.append(indent + line[start : last[0]].rstrip())
            start, indent = last[0], "  " if last[1] == 0 else "      "
        last = (point, depth)
    if len(indent) + len(line) - start > width and last is not None and last[0] > start:
        lines.append(indent + line[start : last[0]].rstrip())
        start, indent = last[0], "  " if last[1] == 0 else "      "
    lines.append(indent + line[start:])
    return lines


def _sides(values) -> str:
    return "x".join(str(int(v)) for v in values)


def _mvit_pool(pool, where: str, what: str, e: int) -> tuple:
    """(kernel, stride) of one of MultiscaleAttention's poolings: torchvision's Pool of a depthwise Conv3d on
    the head's e channels without bias, padding kernel // 2, then a LayerNorm(e) (after the pooling)."""
    conv: Any = getattr(pool, "pool", None)
    norms = list(pool.norm_act) if getattr(pool, "norm_act", None) is not None else []
    if (
        type(pool).__name__ != "Pool"
        or type(conv).__name__ != "Conv3d"
        or (conv.in_channels, conv.out_channels, conv.groups) != (e, e, e)
        or conv.bias is not None
        or tuple(conv.padding) != tuple(k // 2 for k in conv.kernel_size)
        or tuple(conv.dilation) != (1, 1, 1)
        or conv.padding_mode != "zeros"
        or pool.norm_before_pool
        or len(norms) != 1
    ):
        raise ImportRefused(
            f"{where}: its {what} pooling is not MViT's (a depthwise Conv3d on the head's {e} channels, without "
            f"bias, padded by kernel // 2, then a LayerNorm of {e})"
        )
    _ln(norms[0], f"{where} ({what} pooling)", e)
    return tuple(conv.kernel_size), tuple(conv.stride)


def _mvit_block(block, where: str, thw: tuple) -> tuple:
    """(text, the volume after the block) of torchvision's MultiscaleBlock. MViT v1: x + attn(ln(x)) with the
    shortcut max pooled where the queries are, then mlp(ln(x)) added to x, or to a projection of ln(x) where the
    width changes. MViT v2 (proj_after_attn, relative positions, residual pooling): the attention widens, and its
    shortcut is a projection of ln(x) there; then x + mlp(ln(x))."""
    attn = block.attn
    d = block.norm1.normalized_shape[0]
    v2 = bool(block.proj_after_attn)
    if (
        type(block).__name__ != "MultiscaleBlock"
        or type(attn).__name__ != "MultiscaleAttention"
        or block.needs_transposal
    ):
        raise ImportRefused(
            f"{where}: a block other than torchvision's MultiscaleBlock with LayerNorms has no counterpart in the "
            f"layout"
        )
    _ln(block.norm1, where, d)
    heads, e, D = attn.num_heads, attn.head_dim, attn.output_dim
    project = [m for m in attn.project if type(m).__name__ != "Dropout"]
    if (
        heads * e != D
        or (d != D and not v2)
        or attn.qkv.in_features != d
        or attn.qkv.out_features != 3 * D
        or attn.qkv.bias is None
        or len(project) != 1
        or type(project[0]).__name__ != "Linear"
        or (project[0].in_features, project[0].out_features) != (D, D)
        or project[0].bias is None
    ):
        raise ImportRefused(
            f"{where}: an attention other than qkv Linear({d} -> {3 * D}) and a Linear({D} -> {D}), with biases, "
            f"{heads} heads of {e}, has no counterpart in the layout"
        )
    options = [f"heads={heads}"] + [f"out={D}"] * (d != D) + ["bias", f"volume={_sides(thw)}", "cls"]
    q = None
    if attn.pool_q is not None:
        q = _mvit_pool(attn.pool_q, where, "query", e)
        options += [f"q={_sides(q[0])}", f"q_stride={_sides(q[1])}"]
    if (attn.pool_k is None) != (attn.pool_v is None):
        raise ImportRefused(f"{where}: its keys and values are not pooled alike")
    keys = thw
    if attn.pool_k is not None:
        k, v = _mvit_pool(attn.pool_k, where, "key", e), _mvit_pool(attn.pool_v, where, "value", e)
        if k != v:
            raise ImportRefused(f"{where}: its keys and values are pooled differently ({k} and {v})")
        options += [f"kv={_sides(k[0])}", f"kv_stride={_sides(k[1])}"]
        keys = tuple((n + 2 * (kk // 2) - kk) // s + 1 for n, kk, s in zip(thw, *k))
    after = thw if q is None else tuple((n + 2 * (k // 2) - k) // s + 1 for n, k, s in zip(thw, *q))
    if attn.rel_pos_h is not None:
        rows = tuple(2 * max(a, b) - 1 for a, b in zip(after, keys))
        tables = tuple(tuple(t.shape) for t in (attn.rel_pos_t, attn.rel_pos_h, attn.rel_pos_w))
        if tables != tuple((n, e) for n in rows):
            raise ImportRefused(
                f"{where}: relative-position tables of {tables}, built for another input than {_sides(thw)} tokens "
                f"(torchvision sizes them when it builds the model; it would interpolate them)"
            )
        options.append("relpos")
    # torchvision's v2 leaves the class token out of the residual pooling (residual_with_cls_embed=False): the same
    # counts as `residual`, which adds the pooled queries to every position
    options += ["residual"] * bool(attn.residual_pool)
    shortcut = []
    if v2 and block.project is not None:
        p = block.project
        if type(p).__name__ != "Linear" or (p.in_features, p.out_features) != (d, D) or p.bias is None:
            raise ImportRefused(f"{where}: a projection other than Linear({d} -> {D}) with a bias")
        shortcut.append(f"dense(->{D}, bias)")
    elif v2 and d != D:
        raise ImportRefused(f"{where}: its attention widens {d} -> {D} without a projection")
    skip = block.pool_skip
    if skip is not None:
        pool = skip.pool
        if type(pool).__name__ != "MaxPool3d" or skip.norm_act is not None or pool.ceil_mode or pool.dilation != 1:
            raise ImportRefused(f"{where}: a shortcut pooling other than nn.MaxPool3d has no counterpart in the layout")
        kernel, stride, pad = (
            tuple(v) if isinstance(v, (list, tuple)) else (v,) * 3
            for v in (pool.kernel_size, pool.stride, pool.padding)
        )
        pooled = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(thw, kernel, stride, pad))
        if pooled != after:
            raise ImportRefused(f"{where}: its shortcut is pooled to {pooled}, its queries to {after}")
        shortcut.append(
            f"tokenpool(volume={_sides(thw)}, kernel={_sides(kernel)}, stride={_sides(stride)}, pad={_sides(pad)}, cls)"
        )
    elif after != thw:
        raise ImportRefused(f"{where}: its queries are pooled to {after} but its shortcut is not")
    attention = f"attn({', '.join(options)})"
    if v2 and block.project is not None:
        text = f"ln > add({attention} | {' > '.join(shortcut)})"
    else:
        text = f"res(ln > {attention}{' | ' + shortcut[0] if shortcut else ''})"
    hidden, act, bias, out = _mlp(block.mlp, where)
    _ln(block.norm2, where, D)
    if not bias or act != "gelu":
        raise ImportRefused(f"{where}: an MLP other than Linear > GELU > Linear with biases")
    mlp = f"dense(->{hidden}, bias) > {act} > dense(->{out}, bias)"
    if v2 or block.project is None:
        if out != D:
            raise ImportRefused(f"{where}: its MLP changes the width {D} -> {out} without a projection")
        text += f"\n > res(ln > {mlp})"
    else:
        p = block.project
        if type(p).__name__ != "Linear" or (p.in_features, p.out_features) != (d, out) or p.bias is None:
            raise ImportRefused(f"{where}: a projection other than Linear({d} -> {out}) with a bias")
        text += f"\n > ln > add(dense(->{out}, bias) | {mlp})"
    return text, after


def _mvit(model, size: tuple | None) -> str:
    """torchvision.models.video.MViT, v1 (mvit_v1_b): a patch Conv3d, its T' x H' x W' volume made a sequence
    after a class token with MViT's separable learned positions (`tokens > cls > posembed(T' x H'W', cls)`),
    MultiscaleBlocks of pooling attention, then ln > first > the head. The model takes the input size it was built
    for (its position tables): another is refused, as its forward would fail."""
    name = type(model).__name__
    conv, pos = model.conv_proj, model.pos_encoding
    if type(conv).__name__ != "Conv3d" or conv.groups != 1 or tuple(conv.dilation) != (1, 1, 1) or conv.bias is None:
        raise ImportRefused(f"{name}: a patch convolution other than a Conv3d with a bias has no counterpart")
    k, s, p = tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.padding)
    volume = (pos.temporal_size, *pos.spatial_size)
    # the input the model was built for: each axis n with (n + 2p - k) // s + 1 = its volume's (the smallest)
    default = tuple(v * st for v, st in zip(volume, s))  # the size it was built for (16x224x224: 8x56x56)
    if tuple((n + 2 * pp - kk) // st + 1 for n, kk, st, pp in zip(default, k, s, p)) != volume:
        default = tuple((v - 1) * st + kk - 2 * pp for v, kk, st, pp in zip(volume, k, s, p))
    size = (*default, conv.in_channels) if size is None else tuple(size)
    if len(size) != 4 or size[3] != conv.in_channels:
        raise ImportRefused(
            f"{name} takes a video T x H x W x {conv.in_channels} (--input {_sides((*default, conv.in_channels))})"
        )
    got = tuple((n + 2 * pp - kk) // st + 1 for n, kk, st, pp in zip(size[:3], k, s, p))
    if got != volume:
        raise ImportRefused(
            f"{name} built for volumes of {_sides(volume)} tokens (its position tables) does not take a "
            f"{_sides(size)} input, which gives {_sides(got)}"
        )
    absolute = pos.spatial_pos is not None and pos.temporal_pos is not None and pos.class_pos is not None
    if not absolute and any(t is not None for t in (pos.spatial_pos, pos.temporal_pos, pos.class_pos)):
        raise ImportRefused(f"{name}: some of its position tables but not all have no counterpart in the layout")
    d = conv.out_channels
    lines = [f"# {name} read by paramsym", f"input({_sides(size)})"]
    stem = f"conv{_sides(k)}(->{d}, stride={_sides(s)}"
    stem += f", pad={_sides(p)}" if any(p) else ""
    positions = f" > posembed({volume[0]}x{volume[1] * volume[2]}, cls)" if absolute else ""  # v2: relative ones
    lines.append(f"  > {stem}, bias) > tokens > cls{positions}")
    thw = volume
    for i, block in enumerate(model.blocks):
        text, thw = _mvit_block(block, f"{name} blocks.{i}", thw)
        lines += [folded for part in text.split("\n > ") for folded in _fold(f"  > {part}")]
    last = model.norm.normalized_shape[0]
    head = [m for m in model.head if type(m).__name__ != "Dropout"]
    if len(head) != 1 or type(head[0]).__name__ != "Linear" or head[0].in_features != last:
        raise ImportRefused(f"{name}: a head other than Dropout > Linear has no counterpart")
    bias = ", bias" if head[0].bias is not None else ""
    lines.append(f"  > {_ln(model.norm, name, last)} > first > dense(->{head[0].out_features}{bias})")
    return "\n".join(lines) + "\n"


def _pooled(size: tuple, conv) -> tuple:
    return tuple((n + 2 * p - k) // st + 1 for n, k, st, p in zip(size, conv.kernel_size, conv.stride, conv.padding))


def _mvitv2_attention(attn, where: str, d: int, size: tuple) -> tuple:
    """(text, the queries' size) of timm's MultiScaleAttention (mvitv2, mode "conv"): qkv Linear(d -> 3·D), the
    queries and/or the keys and values pooled by a depthwise Conv2d on the head's channels (no bias, padding
    kernel // 2) then a LayerNorm of the head width, relative positions ("spatial") or none, the pooled queries
    added back (residual pooling) or not, and proj Linear(D -> D) with a bias."""
    heads, e, D = attn.num_heads, attn.head_dim, attn.dim_out
    if (
        type(attn).__name__ != "MultiScaleAttention"
        or attn.mode != "conv"
        or attn.rel_pos_type not in ("spatial", "")
        or heads * e != D
        or (attn.qkv.in_features, attn.qkv.out_features) != (d, 3 * D)
        or (attn.proj.in_features, attn.proj.out_features) != (D, D)
        or attn.proj.bias is None
        or attn.qkv.bias is None
    ):
        raise ImportRefused(
            f"{where}: an attention other than timm's MultiScaleAttention in mode 'conv' with qkv Linear({d} -> "
            f"{3 * D}) and proj Linear({D} -> {D}), both with biases, has no counterpart in the layout"
        )
    options = [f"heads={heads}"] + [f"out={D}"] * (d != D) + ["bias", f"volume={_sides(size)}"]
    options += ["cls"] * bool(attn.has_cls_token)
    sizes = {}
    for side, pool, norm in (("q", attn.pool_q, attn.norm_q), ("kv", attn.pool_k, attn.norm_k)):
        sizes[side] = size
        if pool is None:
            if norm is not None:
                raise ImportRefused(f"{where}: a norm of the {side} without a pooling")
            continue
        conv: Any = pool
        if (
            type(conv).__name__ != "Conv2d"
            or (conv.in_channels, conv.out_channels, conv.groups) != (e, e, e)
            or conv.bias is not None
            or tuple(conv.padding) != tuple(k // 2 for k in conv.kernel_size)
            or tuple(conv.dilation) != (1, 1)
            or conv.padding_mode != "zeros"
            or norm is None
        ):
            raise ImportRefused(
                f"{where}: its {side} pooling is not mvitv2's (a depthwise Conv2d on the head's {e} channels, "
                f"without bias, padded by kernel // 2, then a LayerNorm of {e})"
            )
        _ln(norm, f"{where} ({side} pooling)", e)
        sizes[side] = _pooled(size, conv)
        options += [f"{side}={_sides(conv.kernel_size)}", f"{side}_stride={_sides(conv.stride)}"]
    if attn.pool_k is not None:
        k, v = attn.pool_k, attn.pool_v
        if (
            v is None
            or attn.norm_v is None
            or (v.kernel_size, v.stride, v.padding, v.in_channels, v.groups, v.bias is None)
            != (k.kernel_size, k.stride, k.padding, k.in_channels, k.groups, True)
        ):
            raise ImportRefused(f"{where}: its keys and values are not pooled alike")
        _ln(attn.norm_v, f"{where} (value pooling)", e)
    elif attn.pool_v is not None:
        raise ImportRefused(f"{where}: its values are pooled but not its keys")
    if attn.rel_pos_type == "spatial":
        rows = tuple(2 * max(a, b) - 1 for a, b in zip(sizes["q"], sizes["kv"]))
        if tuple(attn.rel_pos_h.shape) != (rows[0], e) or tuple(attn.rel_pos_w.shape) != (rows[1], e):
            raise ImportRefused(
                f"{where}: relative-position tables of {tuple(attn.rel_pos_h.shape)} and "
                f"{tuple(attn.rel_pos_w.shape)}, built for another input size than {_sides(size)} (timm sizes them "
                f"when it builds the model: give the input size it was built for)"
            )
        options.append("relpos")
    options += ["residual"] * bool(attn.residual_pooling)
    return f"attn({', '.join(options)})", sizes["q"]


def _mvitv2_block(block, where: str, size: tuple) -> tuple:
    """(text, the size after the block) of timm's MultiScaleBlock: x + attn(ln(x)) (the shortcut a projection of
    ln(x) where the attention widens, max pooled where the queries are), then x + mlp(ln(x)) (the shortcut a
    projection of ln(x) where the MLP widens)."""
    d = block.dim
    _ln(block.norm1, where, d)
    attention, after = _mvitv2_attention(block.attn, where, d, size)
    D = block.attn.dim_out
    shortcut = []
    if block.shortcut_proj_attn is not None:
        p = block.shortcut_proj_attn
        if (p.in_features, p.out_features) != (d, D) or p.bias is None:
            raise ImportRefused(f"{where}: a shortcut projection other than Linear({d} -> {D}) with a bias")
        shortcut.append(f"dense(->{D}, bias)")
    elif d != D:
        raise ImportRefused(f"{where}: its attention widens {d} -> {D} without a shortcut projection")
    pool = block.shortcut_pool_attn
    if pool is not None:
        if type(pool).__name__ != "MaxPool2d" or pool.ceil_mode or pool.dilation != 1:
            raise ImportRefused(f"{where}: a shortcut pooling other than nn.MaxPool2d")
        kernel, stride, pad = (
            tuple(v) if isinstance(v, (list, tuple)) else (v,) * 2
            for v in (pool.kernel_size, pool.stride, pool.padding)
        )
        pooled = tuple((n + 2 * p - k) // st + 1 for n, k, st, p in zip(size, kernel, stride, pad))
        if pooled != after:
            raise ImportRefused(f"{where}: its shortcut is pooled to {pooled}, its queries to {after}")
        cls = ", cls" if block.has_cls_token else ""
        shortcut.append(
            f"tokenpool(volume={_sides(size)}, kernel={_sides(kernel)}, stride={_sides(stride)}, "
            f"pad={_sides(pad)}{cls})"
        )
    elif after != size:
        raise ImportRefused(f"{where}: its queries are pooled but its shortcut is not")
    if block.shortcut_proj_attn is not None:
        text = f"ln > add({attention} | {' > '.join(shortcut)})"
    else:
        text = f"res(ln > {attention}{' | ' + ' > '.join(shortcut) if shortcut else ''})"
    mlp = block.mlp
    if (
        type(mlp).__name__ != "Mlp"
        or type(mlp.act).__name__ != "GELU"
        or type(getattr(mlp, "norm", None)).__name__ != "Identity"
        or mlp.fc1.bias is None
        or mlp.fc2.bias is None
        or mlp.fc1.in_features != D
    ):
        raise ImportRefused(f"{where}: an MLP other than timm's Mlp (Linear > GELU > Linear, with biases)")
    _ln(block.norm2, where, D)
    out = mlp.fc2.out_features
    body = f"dense(->{mlp.fc1.out_features}, bias) > {_activation(mlp.act, where)} > dense(->{out}, bias)"
    if block.shortcut_proj_mlp is not None:
        p = block.shortcut_proj_mlp
        if (p.in_features, p.out_features) != (D, out) or p.bias is None:
            raise ImportRefused(f"{where}: a shortcut projection other than Linear({D} -> {out}) with a bias")
        text += f"\n > ln > add({body} | dense(->{out}, bias))"
    elif out != D:
        raise ImportRefused(f"{where}: its MLP widens {D} -> {out} without a shortcut projection")
    else:
        text += f"\n > res(ln > {body})"
    return text, after


def _mvitv2(model, size: tuple | None) -> str:
    """timm's MultiScaleVit (mvitv2_*): a patch Conv2d made a sequence (after a class token and learned positions
    where the model has them), MultiScaleBlocks of pooling attention, then ln > the average of the tokens (gap) or
    the class token (first) > the head."""
    name = type(model).__name__
    conv = model.patch_embed.proj
    if type(conv).__name__ != "Conv2d" or conv.groups != 1 or tuple(conv.dilation) != (1, 1) or conv.bias is None:
        raise ImportRefused(f"{name}: a patch convolution other than a Conv2d with a bias has no counterpart")
    default = tuple(model.pretrained_cfg.get("input_size", (conv.in_channels, 224, 224)))
    size = _image(model, size, (*default[1:], default[0]))
    if size[2] != conv.in_channels:
        raise ImportRefused(f"{name} takes images of {conv.in_channels} channels, not {size[2]}")
    side = _pooled(size[:2], conv)
    d = conv.out_channels
    k, st, p = (_sides(v) for v in (conv.kernel_size, conv.stride, conv.padding))
    stem = [f"conv{k}(->{d}, stride={st}" + (f", pad={p}" if any(conv.padding) else "") + ", bias)", "tokens"]
    if model.cls_token is not None:
        stem.append("cls")
    if model.pos_embed is not None:
        stem.append(f"posembed({model.pos_embed.shape[1]})")
    lines = [f"# {name} read by paramsym", f"input({_sides(size)})", f"  > {' > '.join(stem)}"]
    for s_, stage in enumerate(model.stages):
        for i, block in enumerate(stage.blocks):
            where = f"{name} stages.{s_}.blocks.{i}"
            if type(block).__name__ != "MultiScaleBlock":
                raise ImportRefused(f"{where}: {type(block).__name__} where mvitv2 has its MultiScaleBlock")
            if bool(block.has_cls_token) != (model.cls_token is not None):
                raise ImportRefused(f"{where}: its class token disagrees with the model's")
            text, side = _mvitv2_block(block, where, side)
            lines += [folded for part in text.split("\n > ") for folded in _fold(f"  > {part}")]
    last = model.norm.normalized_shape[0]
    head = [m for m in model.head.children() if type(m).__name__ not in ("Dropout", "Identity")]
    if model.global_pool == "avg" and model.cls_token is None:
        pool = "gap"
    elif model.global_pool == "token" and model.cls_token is not None:
        pool = "first"
    else:
        raise ImportRefused(
            f"{name} with global_pool={model.global_pool!r}: the layout reads the average of the tokens without a "
            f"class token, or the class token"
        )
    if len(head) != 1 or type(head[0]).__name__ != "Linear" or head[0].in_features != last:
        raise ImportRefused(f"{name}: a head other than Dropout > Linear has no counterpart")
    bias = ", bias" if head[0].bias is not None else ""
    lines.append(f"  > {_ln(model.norm, name, last)} > {pool} > dense(->{head[0].out_features}{bias})")
    return "\n".join(lines) + "\n"


_FAMILIES = {
    "gpt2": _gpt2,
    "gpt_bigcode": _gpt2,
    "gpt_neo": _gpt_neo,
    "llama": _llama,
    "mistral": _llama,
    "ministral3": _llama,
    "mixtral": _llama,
    "qwen2": _llama,
    "qwen2_moe": _llama,
    "qwen3": _llama,
    "qwen3_moe": _llama,
    "olmoe": _llama,
    "granitemoe": _llama,
    "phimoe": _llama,
    "glm4_moe": _llama,
    "ernie4_5_moe": _llama,
    "solar_open": _llama,
    "phi3": _llama,
    "granite": _llama,
    "hyperclovax": _llama,
    "helium": _llama,
    "seed_oss": _llama,
    "ernie4_5": _llama,
    "cwm": _llama,
    "smollm3": _llama,
    "glm": _llama,
    "glm4": _llama,
    "arcee": _llama,
    "apertus": _llama,
    "jais2": _llama,
    "gemma": _gemma,
    "gemma2": _gemma,
    "gemma3_text": _gemma,
    "vaultgemma": _gemma,
    "olmo": _decoder,
    "olmo2": _decoder,
    "olmo3": _decoder,
    "exaone4": _decoder,
    "cohere": _decoder,
    "cohere2": _decoder,
    "starcoder2": _decoder,
    "opt": _opt,
    "xglm": _xglm,
    "biogpt": _biogpt,
    "bert": _encoder,
    "roberta": _encoder,
    "xlm-roberta": _encoder,
    "camembert": _encoder,
    "data2vec-text": _encoder,
    "roberta-prelayernorm": _encoder,
    "xlm-roberta-xl": _encoder,
    "ernie": _encoder,
    "distilbert": _encoder,
    "electra": _encoder,
    "gpt_neox": _gpt_neox,
    "gptj": _gptj,
    "codegen": _gptj,
    "phi": _phi,
    "stablelm": _stablelm,
    "falcon": _falcon,
    "bloom": _bloom,
    "mpt": _mpt,
    "persimmon": _persimmon,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "minicpm3": _deepseek,
    "youtu": _deepseek,
    "t5": _t5,
    "bart": _bart,
}


# mixture-of-experts families whose models compute what the language has no counterpart for: refused, saying what
_NOT_READ = {
    "gpt_oss": "its attention adds a learned logit per head to each softmax (self_attn.sinks, attention sinks), its "
    "router has a bias (mlp.router.bias), its experts have biases (gate_up_proj_bias, down_proj_bias) and a clamped "
    "SwiGLU (limit, alpha): the language's attn has no sinks, its moe no router or expert biases",
    "llama4_text": "transformers' Llama4TextMoe runs every one of its experts on every token (the input scaled by "
    "a score of 0 for the experts not chosen): its MACs are those of all the experts, not of the "
    "num_experts_per_tok that the language's moe counts; and with attention_chunk_size (8192 by default) its "
    "layers attend and cache by chunks of positions, which the language's attn does not count",
    "jetmoe": "its attention is a mixture of experts (JetMoeMoA: the query and output projections are experts a "
    "router chooses for each token) and its experts add a bias after the mixture (mlp.bias): the language's attn "
    "has no routed projections, its moe no bias",
    "xmod": "every layer holds an adapter for each of config.languages (output.adapter_modules) and each token goes "
    "through the one its lang_ids name: parameters() counts every language's adapter, a token's MACs one, and the "
    "language has no per-language branch",
    "megatron-bert": "its forward reads values of its inputs (the padding warning's pad_token_id in input_ids, and "
    "whether the mask of ones it makes is all ones), which paramsym's check of the program (a run on the meta "
    "device, shapes without values) cannot run",
    # Llama's layout otherwise (norms without a weight, a norm before the layers too, up > relu² > down, soft-capped
    # logits: each has a counterpart)
    "nanochat": "its attention divides each query and key head by its root mean square without a weight (q_norm, "
    "k_norm: NanoChatRMSNorm, after the rotary turn), which no qk_norm of the language has (qk_norm=rms learns a "
    "weight of the head width)",
    # Llama's layout otherwise; its MLP's ffn_sub_norm (an RMSNorm before down_proj) has a counterpart
    "bitnet": "its attention normalizes the heads' output by an RMSNorm (self_attn.attn_sub_norm, a weight of the "
    "q channels) before the output projection, which the language's attn has only as a LayerNorm with weight and "
    "bias (subln)",
}


def recognises(model) -> bool:
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "model_type", None) is not None:
        return True
    if type(model).__name__ == "SwinTransformer" and hasattr(model, "features"):
        return True
    if type(model).__name__ == "MaxVit" and hasattr(model, "blocks"):
        return True
    if type(model).__name__ == "MViT" and hasattr(model, "pos_encoding"):
        return True
    if type(model).__name__ == "MultiScaleVit" and hasattr(model, "stages"):  # timm's mvitv2
        return True
    return type(model).__name__ == "VisionTransformer" and hasattr(model, "class_token")


def cache_is_the_architectures(model) -> bool:
    """Whether what transformers' cache holds after a forward is the KV cache the architecture keeps (and the program
    counts), so that the import can check one against the other. Not for Falcon's new decoder architecture, whose
    attention caches its keys and values broadcast to every query head (FalconAttention repeats them before
    caching): transformers keeps heads/kv_heads times what the architecture needs. Nor for GPT-Neo with local layers,
    whose attention caches every position (a DynamicCache without sliding layers: its config names window_size, not
    sliding_window) where a local layer attends to the last window_size positions only (itself and W - 1 cached)."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) == "gpt_neo" and "local" in (
        getattr(config, "attention_layers", None) or []
    ):
        return False
    return not (getattr(config, "model_type", None) == "falcon" and getattr(config, "new_decoder_architecture", False))


def from_layout(model, length: int | None = None, size: tuple | None = None) -> str:
    """The program of a Hugging Face model (GPT-2, BERT, Llama, Mistral, Mixtral) or a torchvision ViT, Swin or MaxViT;
    `length` is the sequence length of a language model's input (default: the model's context), `size` the
    whole input shape asked for (a language model takes one axis, an image model HxWxC; default: the size the
    model was built for). Qwen2, Qwen2-MoE, Qwen3, Qwen3-MoE, Phi-3, Granite, Helium, Seed-OSS, ERNIE 4.5, CWM,
    SmolLM3 (NoPE layers), GLM, GLM-4, Arcee, Apertus, Ministral 3, HyperCLOVAX (norms after the attention and the
    MLP) and Jais 2 (LayerNorms) are read in Llama's layout (_LLAMAS), and so are the
    mixtures of experts OLMoE, GraniteMoE, PhiMoE (LayerNorms) and GLM-4.5-MoE (shared experts, a score bias, dense
    first layers), and Solar Open (GLM-4.5-MoE's experts in every layer);
    OLMo, OLMo-2, OLMo-3, EXAONE 4, Cohere, Cohere2 and StarCoder2 in `_decoder`'s (_DECODERS);
    Gemma, Gemma-2, Gemma-3 and VaultGemma in `_gemma`'s; GPT-NeoX, GPT-J, Falcon, BLOOM, Phi, StableLM, CodeGen,
    Persimmon and XGLM in the layout of `_ln_decoder` (LayerNorms with biases, parallel or sequential blocks);
    GPT-BigCode in GPT-2's (multi-query), GPT-Neo in GPT-2's with local layers (`window=W`), BioGPT in OPT's, MPT
    with ALiBi; MiniCPM3 and Youtu-LLM in DeepSeek-V2's (`mla`, no experts); T5 and BART, encoder-decoders, with two
    inputs of that length (`let S`, `let T`). The encoders in `_encoder`'s layout (_ENCODERS): BERT, RoBERTa,
    XLM-RoBERTa, CamemBERT, data2vec-text, RoBERTa-PreLayerNorm and XLM-RoBERTa-XL (pre-norm), ERNIE (task types),
    DistilBERT, ELECTRA."""
    if size is None and length is not None:
        size = (length,)
    if type(model).__name__ == "VisionTransformer":
        text = _vit(model, size)
    elif type(model).__name__ == "SwinTransformer":
        text = _swin(model, size)
    elif type(model).__name__ == "MaxVit":
        text = _maxvit(model, size)
    elif type(model).__name__ == "MViT":
        text = _mvit(model, size)
    elif type(model).__name__ == "MultiScaleVit":
        text = _mvitv2(model, size)
    else:
        family = _FAMILIES.get(model.config.model_type) or (_llama if _own_class_family(model) else None)
        if family is None and model.config.model_type in _NOT_READ:
            raise ImportRefused(f"{type(model).__name__}: {_NOT_READ[model.config.model_type]}")
        if family is None:
            raise ImportRefused(
                f"{type(model).__name__}: the Hugging Face family {model.config.model_type!r} is "
                f"not one paramsym reads (it reads {', '.join(sorted(_FAMILIES))})"
            )
        _cache_windows(model, family in (_llama, _gemma, _decoder))  # the layouts that read sliding windows
        text = family(
            model, size[0] if size is not None and len(size) == 1 else None, None if size is None else tuple(size)
        )
    return _fit(text)  # checked against the model by importer._verified, with every other import


WIDTH = 79  # as paramsym.frameworks.factor: the lines of an 80-column terminal


def _fit(text: str) -> str:
    """The program with each line longer than WIDTH broken at the `>` between its stages, outside parentheses
    first (a line that starts with `>` continues the one before, docs/language.md), then inside a stage's
    parentheses (where new lines are ignored): it says the same. Comments and `let`s stay as they are."""
    out: list[str] = []
    for line in text.splitlines():
        if len(line) <= WIDTH or line.lstrip().startswith(("#", "let ")):
            out.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())] + ("> " if line.lstrip().startswith("> ") else "")
        if line.startswith("def "):
            lead = line[: line.index(" = ") + 3]  # `def NAME(PARAMS) = `
        for packed in _pack(_stages(line[len(lead) :]), lead, 2):
            out += _break_arguments(packed)
    return "\n".join(out) + "\n"


def _break_arguments(line: str) -> list[str]:
    """A line still longer than WIDTH broken inside parentheses (where new lines are ignored): before a ` | `
    between branches or after a `, ` between arguments, the outermost such point that fits (the last of those),
    the next line aligned just inside the parenthesis that holds it."""
    lines = []
    while len(line) > WIDTH:
        opens: list[int] = []
        candidates = []  # (depth, point, column)
        for i, char in enumerate(line[:WIDTH]):
            if char == "(":
                opens.append(i)
            elif char == ")" and opens:
                opens.pop()
            elif opens and line.startswith(", ", i) and i + 1 < WIDTH:
                candidates.append((len(opens), i + 2, opens[-1] + 1))
            elif opens and line.startswith(" | ", i):
                candidates.append((len(opens), i + 1, opens[-1] + 1))
        if not candidates:
            break
        depth = min(c[0] for c in candidates)
        _, point, column = [c for c in candidates if c[0] == depth][-1]
        if not line[point:].strip() or not line[:point].strip():
            break
        lines.append(line[:point].rstrip())
        line = " " * column + line[point:]
    return lines + [line]


def _pack(pieces: list[str], first: str, cont: int, start: int = 0, closing: int = 0) -> list[str]:
    """The stages joined by ` > ` after `first` (written from column `start` on, and followed by `closing`
    characters), a new line (`> ` at column `cont`) where one does not fit; a stage too long for a line of
    its own is broken inside its parentheses."""
    lines = [first]
    for i, piece in enumerate(pieces):
        joint = "" if i == 0 else " > "
        col = len(lines[-1]) + (start if len(lines) == 1 else 0)
        after = closing if i == len(pieces) - 1 else 0
        if i > 0 and col + 3 + len(piece) + after > WIDTH:
            lines.append(" " * cont + "> ")
            joint, col = "", cont + 2
        col += len(joint)
        name, _, inner = piece.partition("(")
        inside = _stages(inner[:-1]) if inner.endswith(")") else [piece]
        if col + len(piece) + after > WIDTH and len(inside) > 1:
            broken = _pack(inside, name + "(", col + len(name) + 1, col, after + 1)
            broken[0] = lines[-1] + joint + broken[0]
            broken[-1] += ")"
            lines[-1:] = broken
        else:
            lines[-1] += joint + piece
    return lines


def _stages(line: str) -> list[str]:
    """`a > res(b > c) > d` as its stages outside parentheses: `a`, `res(b > c)`, `d`."""
    pieces, depth, last = [], 0, 0
    for i, char in enumerate(line):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == ">" and depth == 0 and line[i - 1] != "-" and line[i - 1 : i + 2] == " > ":
            pieces.append(line[last : i - 1])
            last = i + 2
    return pieces + [line[last:]]
