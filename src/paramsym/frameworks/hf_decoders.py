"""Hugging Face decoder families in Llama's mould, and OPT, to programs (hf_import's `_FAMILIES` reads them).

OLMo, OLMo-2, Cohere (Command-R) and StarCoder2 are Llama's decoder (rotary positions, grouped-query attention, a
residual around the attention and the MLP) with one row of differences each, which `LAYOUTS` states: the norm, where
it stands (before each sublayer, after it inside the residual, or one norm before the attention and the MLP side by
side), the MLP (gated or not) and the form of the query and key norms. `read` writes the program from that row, the
config and the first layer's modules; OPT (learned positions, pre- or post-norm, project_in and project_out) has a
reader of its own, `read_opt`. As every import, the program is checked against the model (parameters, buffers,
output shape) by importer._verified: a variant the row does not describe is refused, never read inexactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ImportRefused


@dataclass(frozen=True)
class Layout:
    """How a family differs from Llama's decoder layer."""

    classes: tuple[str, ...]  # the classes read (another head is refused)
    norm: str  # the program's norm: every norm of the family is this one
    block: str  # "pre": res(norm > attn) > res(norm > mlp); "post": res(attn > norm) > res(mlp > norm) (OLMo-2);
    # "parallel": res(norm > add(attn | mlp)) (Cohere: the attention and the MLP read one norm's output)
    mlp: str  # "gated": mul(dense(->F) > act | dense(->F)) > dense(->d); "plain": dense(->F) > act > dense(->d)
    qk_norm: str | None = None  # the qk_norm= form of the attention's q_norm and k_norm, where it has them
    act: str = "hidden_act"  # the config field of the MLP's activation
    note: str = ""  # what the model computes that counts nothing (a comment of the program)


LAYOUTS = {
    # OlmoLayerNorm: F.layer_norm without weight or bias; clip_qkv clamps q, k and v (no parameters)
    "olmo": Layout(("OlmoModel", "OlmoForCausalLM"), "ln(noaffine)", "pre", "gated", note="clip_qkv"),
    # q_norm and k_norm: RMSNorm over the whole projection (h·e and g·e channels); norms after each sublayer
    "olmo2": Layout(("Olmo2Model", "Olmo2ForCausalLM"), "rmsnorm", "post", "gated", qk_norm="rms_full"),
    # CohereLayerNorm: a LayerNorm with a weight and no bias; q_norm and k_norm (use_qk_norm) of the head width with
    # a weight for every head; the logits multiplied by logit_scale (no parameters)
    "cohere": Layout(
        ("CohereModel", "CohereForCausalLM"), "ln(nobias)", "parallel", "gated", "ln_per_head", note="logit_scale"
    ),
    # nn.LayerNorm with weight and bias; c_fc > act > c_proj, biases on everything with use_bias
    "starcoder2": Layout(("Starcoder2Model", "Starcoder2ForCausalLM"), "ln", "pre", "plain"),
}


def _rotary_whole(model) -> None:
    rotary = (getattr(model.config, "rope_parameters", None) or {}).get("partial_rotary_factor", 1.0)
    if rotary != 1.0:
        raise ImportRefused(
            f"{type(model).__name__} with partial_rotary_factor={rotary}: rotary positions on part of each head "
            f"have no counterpart (paramsym's rope turns the whole head)"
        )


def _mlp(model, layout: Layout, layer) -> str:
    """The MLP of a layer, its biases read from its first Linear (the import checks the others by their count)."""
    from .hf_import import _hf_activation

    act = _hf_activation(model, layout.act)
    mlp = layer.mlp
    if layout.mlp == "plain":
        bias = ", bias" if mlp.c_fc.bias is not None else ""
        return f"dense(->F{bias}) > {act} > dense(->d{bias})"
    bias = ", bias" if mlp.gate_proj.bias is not None else ""
    return f"mul(dense(->F{bias}) > {act} | dense(->F{bias})) > dense(->d{bias})"


def _qk_norm(model, layout: Layout, attention) -> list[str]:
    q_norm = getattr(attention, "q_norm", None)
    if q_norm is None:
        return []
    if layout.qk_norm is None:
        raise ImportRefused(f"{type(model).__name__}: norms of the queries and keys the family's layout does not have")
    return [f"qk_norm={layout.qk_norm}"]


def read(model, length: int | None, shape: tuple | None = None) -> str:
    """OLMo, OLMo-2, Cohere, StarCoder2: Llama's decoder with the differences of the family's `LAYOUTS` row."""
    from .hf_import import _attention_biases, _classes, _length, _shared, _window

    c = model.config
    layout = LAYOUTS[c.model_type]
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
        + _qk_norm(model, layout, layer.self_attn)
        + ([f"window={window}"] if (window := _window(model)) is not None else [])
        + ["rope", "causal"]
    )
    attn, mlp, norm = f"attn({', '.join(attention)})", _mlp(model, layout, layer), layout.norm
    blocks = {
        "pre": [f"def block = res({norm} > {attn}) > res({norm} > {mlp})"],
        "post": [f"def block = res({attn} > {norm}) > res({mlp} > {norm})"],
        "parallel": [f"def mlp = {mlp}", f"def block = res({norm} > add({attn} | mlp))"],
    }[layout.block]
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
    network = f"input(T) > embed(V->d){' as wte' if tied else ''} > (block) * L > {norm}"
    if head is not None:
        network += " > dense(->V, tie=wte)" if tied else " > dense(->V)"
    title = f"# {type(model).__name__} read by paramsym from its config"
    return "\n".join([title, *notes, *lets, *blocks, network]) + "\n"


def read_opt(model, length: int | None, shape: tuple | None = None) -> str:
    """OPT: learned positions (a table of max_position_embeddings + 2 rows, looked up at position + 2), pre-norm
    (do_layer_norm_before, with a final LayerNorm) or post-norm (OPT-350m), biases with enable_bias, an MLP fc1 >
    activation > fc2, and project_in / project_out where word_embed_proj_dim differs from hidden_size."""
    from .hf_import import _classes, _hf_activation, _length, _shared

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
