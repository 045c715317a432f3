"""Hugging Face `transformers` models and torchvision's ViT to programs.

These models do not trace with torch.fx (their forward passes branch on
Python values), but each family has one layout, which its config and a few
modules describe. The program is written in that layout with `def` blocks and
a repeat, so it reads like the paper's table; then it is counted and compared
with the model's own `parameters()`. A model whose count differs (a variant
the layout does not cover) is refused, never imported inexactly.
"""
from __future__ import annotations

from .errors import ImportRefused


def _numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _shared(a, b) -> bool:
    return a is not None and b is not None and a.weight is b.weight


def _gpt2(model, length: int | None) -> str:
    c = model.config
    base = getattr(model, "transformer", model)
    head = getattr(model, "lm_head", None)
    if c.activation_function not in ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        raise ImportRefused(f"GPT-2 with the activation {c.activation_function!r} has no counterpart")
    inner = c.n_inner or 4 * c.n_embd
    lines = [f"# {type(model).__name__} read by paramsym from its config",
             f"let V = {c.vocab_size}; let n = {c.n_positions}; let d = {c.n_embd}; let L = {c.n_layer}; "
             f"let h = {c.n_head}",
             f"def block = res(ln > attn(heads=h, bias, causal)) > res(ln > dense(->{_width(inner, c.n_embd)}, bias) "
             f"> gelu > dense(->d, bias))"]
    network = f"input({length or 'n'}) > embed(V->d){' as wte' if head is not None else ''} > posembed(n) " \
              f"> (block) * L > ln"
    if head is not None:
        network += " > dense(->V, tie=wte)" if _shared(head, base.wte) else " > dense(->V)"
    return "\n".join(lines + [network]) + "\n"


def _width(value: int, d: int) -> str:
    return f"{value // d}d" if value % d == 0 else str(value)


def _llama(model, length: int | None) -> str:
    c = model.config
    base = getattr(model, "model", model)
    head = getattr(model, "lm_head", None)
    if getattr(c, "hidden_act", "silu") != "silu":
        raise ImportRefused(f"{type(model).__name__} with the activation {c.hidden_act!r} has no counterpart")
    heads, kv = c.num_attention_heads, getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    attention = ["heads=h"] + (["kv_heads=g"] if kv != heads else []) + \
        ([f"head_dim={head_dim}"] if head_dim * heads != c.hidden_size else []) + \
        (["bias"] if getattr(c, "attention_bias", False) else []) + ["rope", "causal"]
    bias = ", bias" if getattr(c, "mlp_bias", False) else ""
    experts = getattr(c, "num_local_experts", None)
    lets = [f"let V = {c.vocab_size}; let T = {length or c.max_position_embeddings}; let d = {c.hidden_size}; "
            f"let L = {c.num_hidden_layers}; let h = {heads}" + (f"; let g = {kv}" if kv != heads else ""),
            f"let F = {c.intermediate_size}"]
    mlp = f"mul(dense(->F{bias}) > silu | dense(->F{bias})) > dense(->d{bias})"
    if experts:
        lets.append(f"let E = {experts}; let k = {c.num_experts_per_tok}")
        lines = [f"def expert = {mlp}",
                 f"def block = res(rmsnorm > attn({', '.join(attention)})) > res(rmsnorm > moe(expert, experts=E, top=k))"]
    else:
        lines = [f"def block = res(rmsnorm > attn({', '.join(attention)})) > res(rmsnorm > {mlp})"]
    tied = head is not None and _shared(head, base.embed_tokens)
    network = f"input(T) > embed(V->d){' as wte' if tied else ''} > (block) * L > rmsnorm"
    if head is not None:
        network += " > dense(->V, tie=wte)" if tied else " > dense(->V)"
    return "\n".join([f"# {type(model).__name__} read by paramsym from its config", *lets, *lines, network]) + "\n"


def _bert(model, length: int | None) -> str:
    c = model.config
    if c.hidden_act not in ("gelu", "gelu_new"):
        raise ImportRefused(f"BERT with the activation {c.hidden_act!r} has no counterpart")
    if getattr(model, "embeddings", None) is None or type(model).__name__ != "BertModel":
        raise ImportRefused(f"{type(model).__name__}: of the BERT family only BertModel is read (with or without "
                            f"its pooler)")
    lines = [f"# {type(model).__name__} read by paramsym from its config",
             f"let V = {c.vocab_size}; let n = {c.max_position_embeddings}; let d = {c.hidden_size}; "
             f"let L = {c.num_hidden_layers}; let h = {c.num_attention_heads}",
             f"def block = res(attn(heads=h, bias)) > ln > res(dense(->{_width(c.intermediate_size, c.hidden_size)}, "
             f"bias) > gelu > dense(->d, bias)) > ln"]
    network = f"input({length or 'n'}) > embed(V->d) > posembed(n) > posembed({c.type_vocab_size}) > ln > (block) * L"
    if model.pooler is not None:
        network += " > first > dense(->d, bias) > tanh"
    return "\n".join(lines + [network]) + "\n"


def _vit(model, length: int | None) -> str:
    """torchvision.models.VisionTransformer."""
    heads_module = model.heads
    layers = list(heads_module.children())
    first = model.encoder.layers[0]
    head_text = ""
    for layer in layers:
        name = type(layer).__name__
        if name == "Linear":
            head_text += f" > dense(->{layer.out_features}{', bias' if layer.bias is not None else ''})"
        elif name == "Tanh":
            head_text += " > tanh"
        else:
            raise ImportRefused(f"heads ({name}) of the ViT has no counterpart")
    mlp = first.mlp
    size, patch, width = model.image_size, model.patch_size, model.hidden_dim
    if getattr(model, "conv_proj", None) is None or type(model.conv_proj).__name__ != "Conv2d":
        raise ImportRefused("a ViT with a convolutional stem other than one patch convolution has no counterpart")
    return "\n".join([
        f"# {type(model).__name__} read by paramsym",
        f"let d = {width}; let L = {len(model.encoder.layers)}; let h = {first.self_attention.num_heads}",
        f"def block = res(ln > attn(heads=h, bias)) > res(ln > dense(->{mlp[0].out_features}, bias) > gelu "
        f"> dense(->d, bias))",
        f"input({size}x{size}x3) > conv{patch}x{patch}(->d, stride={patch}, bias) > tokens > cls "
        f"> posembed({model.seq_length}) > (block) * L > ln > first{head_text}"]) + "\n"


def _swin(model, size: tuple | None) -> str:
    """torchvision.models.SwinTransformer, V1 and V2: a patch convolution, stages of window-attention blocks
    (alternately shifted) joined by patch merging, then ln > gap > the head. V1's blocks are pre-norm with a
    relative-position table (`res(ln > attn(..., window=w))`), V2's post-norm with a continuous position bias
    (`res(attn(..., window=w, cpb=m) > ln)`) and its patch merging normalises after the reduction."""
    stem, *stages = model.features
    blocks = [b for stage in stages if type(stage).__name__ == "Sequential" for b in stage]
    kinds = {type(b).__name__ for b in blocks}
    if not blocks or len(kinds) != 1 or kinds - {"SwinTransformerBlock", "SwinTransformerBlockV2"}:
        raise ImportRefused(f"{type(model).__name__} with blocks {', '.join(sorted(kinds))}: paramsym reads "
                            f"torchvision's SwinTransformerBlock (V1) or SwinTransformerBlockV2, one kind per model")
    v2 = kinds == {"SwinTransformerBlockV2"}
    conv, first = stem[0], blocks[0]
    window = first.attn.window_size[0]
    if any(list(b.attn.window_size) != [window, window] for b in blocks):
        raise ImportRefused(f"{type(model).__name__} with windows other than one square window in every block has "
                            f"no counterpart (attn's window=w is square)")
    size = tuple(size or (224, 224, 3))
    maps, patch = [], conv.stride[0]
    side = [n // patch for n in size[:2]]
    for stage in stages:
        if type(stage).__name__ == "Sequential":
            maps += side
        else:
            side = [(n + 1) // 2 for n in side]
    pad = ", pad" if any(n % window for n in maps) else ""  # torchvision pads the maps to a multiple of the window
    ratio = first.mlp[0].out_features // first.mlp[3].out_features
    if v2:
        cpb = f", cpb={first.attn.cpb_mlp[0].out_features}"
        body = [f"res(attn(heads=h, bias, window={window}{cpb}{pad}{{shift}}) > ln) "
                f"> res(dense(->{ratio}*d, bias) > gelu > dense(->d, bias) > ln)"]
    else:
        body = [f"res(ln > attn(heads=h, bias, window={window}{pad}{{shift}})) "
                f"> res(ln > dense(->{ratio}*d, bias) > gelu > dense(->d, bias))"]
    lines = [f"# {type(model).__name__} read by paramsym",
             f"def block(d, h) = {body[0].format(shift='')}",
             f"def shifted(d, h) = {body[0].format(shift=', shift')}"]
    network = [f"input({'x'.join(str(v) for v in size)}) > conv{conv.kernel_size[0]}x{conv.kernel_size[1]}"
               f"(->{conv.out_channels}, stride={conv.stride[0]}, bias) > ln"]
    for stage in stages:
        if type(stage).__name__ in ("PatchMerging", "PatchMergingV2"):
            reduce = f"dense(->{stage.reduction.out_features})"
            network.append(f"space2depth(2) > {reduce} > ln" if type(stage).__name__ == "PatchMergingV2"
                           else f"space2depth(2) > ln > {reduce}")
            continue
        d, h = stage[0].attn.proj.out_features, stage[0].attn.num_heads
        pairs, odd = divmod(len(stage), 2)
        parts = ([f"(block({d}, {h}) > shifted({d}, {h})) * {pairs}"] if pairs else []) + \
            ([f"block({d}, {h})"] if odd else [])
        network.append(" > ".join(parts))
    network.append(f"ln > gap > dense(->{model.head.out_features}, bias)")
    return "\n".join(lines + ["\n  > ".join(network)]) + "\n"


_FAMILIES = {"gpt2": _gpt2, "llama": _llama, "mistral": _llama, "mixtral": _llama, "bert": _bert}


def recognises(model) -> bool:
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "model_type", None) is not None:
        return True
    if type(model).__name__ == "SwinTransformer" and hasattr(model, "features"):
        return True
    if type(model).__name__ == "MaxVit" and hasattr(model, "blocks"):
        return True  # to refuse it by name: tracing would stop at an anonymous getattr
    return type(model).__name__ == "VisionTransformer" and hasattr(model, "class_token")


def from_layout(model, length: int | None = None, size: tuple | None = None) -> str:
    """The program of a Hugging Face model (GPT-2, BERT, Llama, Mistral, Mixtral) or a torchvision ViT;
    `length` is the sequence length of the input (default: the model's context)."""
    from .network import parse  # an earlier stage: the program is counted to compare with the model

    if type(model).__name__ == "MaxVit":
        raise ImportRefused("MaxVit: its block and grid attention (attention inside windows and across a grid "
                            "of strided positions, each with a relative-position bias) has no counterpart in the "
                            "language; window attention (Swin's) is the nearest")
    if type(model).__name__ == "VisionTransformer":
        text = _vit(model, length)
    elif type(model).__name__ == "SwinTransformer":
        text = _swin(model, size)
    else:
        family = _FAMILIES.get(model.config.model_type)
        if family is None:
            raise ImportRefused(f"{type(model).__name__}: the Hugging Face family {model.config.model_type!r} is "
                                f"not one paramsym reads (it reads {', '.join(sorted(_FAMILIES))})")
        text = family(model, length)
    counted = parse(text).evaluate()["params"]
    if counted != _numel(model):
        raise ImportRefused(f"{type(model).__name__} has {_numel(model):,} parameters, but its layout as paramsym "
                            f"reads it has {counted:,}: a variant that paramsym does not read exactly")
    return text
