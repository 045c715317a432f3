"""A sweep of the Hugging Face import over every model_type that transformers knows (`transformers.CONFIG_MAPPING`):
no import may return a wrong program, and nothing may crash. Run by hand (not a test):

    python benchmarks/hf_sweep.py                        # every model_type, one worker, 120 s a model
    python benchmarks/hf_sweep.py --timeout 60 --out sweep.md
    python benchmarks/hf_sweep.py --only llama gpt2:base qwen3_moe:default llama:set:mlp_bias=true
    python benchmarks/hf_sweep.py --flags --out benchmarks/hf_sweep.md   # and one field changed at a time

Each model_type is read as `paramsym import config.json --input T` reads a config (paramsym.frameworks.hf_config):
its config class with its defaults, made SMALL where it has the usual fields (2 layers, width 64, 4 heads of 16,
2 key-value heads, 4 experts of which 2 active, ...; a config transformers refuses in that form is taken with its
defaults), built on the meta device by `hf_config.model_from_config` (the class `architectures` names, else
AutoModelForSeq2SeqLM for an encoder-decoder, AutoModelForCausalLM, AutoModelForMaskedLM, AutoModel), then
imported with `paramsym.from_torch(model, T)` in a worker process (killed and restarted after --timeout seconds).
For the families paramsym reads, two more variants: `:base` (AutoModel, the model without its head, from the small
config) and `:default` (the config's own defaults, full size, on meta); with --flags, `:set:FIELD=VALUE` too, the
small config with one field changed (each yes/no field flipped, OTHERS and CACHE_PROBES below). Each outcome is
classified:
  exact    from_torch returned a program; it is then re-checked here, independently of paramsym's own
           verification (tests/helpers/import_check.py): parameters (sum of numel over model.parameters(), each
           shared tensor once), state (BatchNorm running statistics, a router's e_score_correction_bias), the
           output shape of a forward of T token ids on meta (logits, else the pooled output, else the last
           hidden states), MACs against FlopCounterMode (FLOPs / 2), active parameters (the experts a token skips
           left out) and a decoder's KV cache against the values transformers' cache holds after that forward. A
           params/state/shape difference is WRONG (the worst defect); a MAC, active or KV cache difference is
           listed apart (transformers' cache may keep keys broadcast to every head).
  refused  paramsym.errors.ImportRefused / ParamsymError: the first line of the reason is recorded.
  crashed  any other exception escaping from_torch: its type, message and the traceback's last frame.
  timeout  no answer within --timeout seconds.
  unbuilt  transformers could not build a model from the config alone (a multimodal, vision or audio model that
           needs a sub-model's config, or a family without a model for AutoModel*): not a text model here.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # helpers: the independent re-check

from sweep_worker import run_all  # noqa: E402

from helpers.import_check import first_line, hf_check, reason_group  # noqa: E402

T = 16  # tokens: --input T

# the usual fields of a config and their small values (only those the config has are set)
LAYERS = ("num_hidden_layers", "n_layer", "n_layers", "num_layers", "encoder_layers", "decoder_layers")
SMALL = {
    "num_decoder_layers": 2,
    "hidden_size": 64,
    "n_embd": 64,
    "d_model": 64,
    "dim": 64,
    "num_attention_heads": 4,
    "n_head": 4,
    "n_heads": 4,
    "num_heads": 4,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "head_dim": 16,
    "d_kv": 16,
    "intermediate_size": 128,
    "n_inner": 128,
    "d_ff": 128,
    "ffn_dim": 128,
    "hidden_dim": 128,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
    "moe_intermediate_size": 32,
    "shared_expert_intermediate_size": 64,
    "num_experts": 4,
    "num_local_experts": 4,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "kv_lora_rank": 32,
    "q_lora_rank": 32,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 16,
    "v_head_dim": 16,
    "sliding_window": 8,
    "n_group": 2,
    "topk_group": 1,
}


def model_types() -> list[str]:
    from transformers import CONFIG_MAPPING

    return sorted(CONFIG_MAPPING.keys())


def read_families() -> set[str]:
    from paramsym.frameworks.hf_import import _FAMILIES

    return set(_FAMILIES)


def small_config(model_type: str) -> dict:
    """The config.json of a small model of `model_type`: its config class's defaults with the usual fields made
    small where it has them (and set, not None)."""
    from transformers import CONFIG_MAPPING

    data = CONFIG_MAPPING[model_type]().to_dict()
    original = dict(data)
    layers = 2
    for field in LAYERS:
        if isinstance(data.get(field), int):
            data[field] = min(data[field], layers)
    for field, value in SMALL.items():
        if isinstance(data.get(field), int) and not isinstance(data.get(field), bool):
            data[field] = min(data[field], value) if field in ("sliding_window",) else value
    kv, heads = original.get("num_key_value_heads"), original.get("num_attention_heads")
    if isinstance(kv, int) and isinstance(heads, int) and isinstance(data.get("num_attention_heads"), int):
        # grouped-query attention stays grouped (multi-query stays multi-query), multi-head stays multi-head
        data["num_key_value_heads"] = 1 if kv == 1 else 2 if kv < heads else data["num_attention_heads"]
    if isinstance(data.get("rotary_dim"), int):
        data["rotary_dim"] = 8  # of heads of 16
    if "num_experts_per_tok" in data and data["num_experts_per_tok"] is None and data.get("n_routed_experts"):
        data["num_experts_per_tok"] = 2  # DeepSeek-V2's default (None) does not run
    if isinstance(data.get("qk_rope_head_dim"), int) and isinstance(data.get("head_dim"), int):
        data["head_dim"] = data["qk_rope_head_dim"]  # MLA: the rotary part of a head
    if isinstance(data.get("layer_types"), list):
        data["layer_types"] = data["layer_types"][:layers]
    if isinstance(data.get("first_k_dense_replace"), int):
        data["first_k_dense_replace"] = min(data["first_k_dense_replace"], 1)
    if isinstance(data.get("mlp_only_layers"), list):
        data["mlp_only_layers"] = [i for i in data["mlp_only_layers"] if i < layers]
    if isinstance(data.get("attention_types"), list) and data["attention_types"]:
        # GPT-Neo's [[pattern, repeats], ...] (and attention_layers, its expansion) name every layer: its first
        # pattern over the layers kept
        kinds = (list(data["attention_types"][0][0]) * layers)[:layers]
        data["attention_types"] = [[kinds, 1]]
        if "attention_layers" in data:
            data["attention_layers"] = kinds
    data["model_type"] = model_type
    data.pop("architectures", None)
    return data


def flipped(model_type: str) -> list[str]:
    """`set:FIELD=VALUE` variants: each yes/no field of the small config, the other way."""
    skip = ("return_dict", "output_", "torchscript", "use_cache", "is_encoder_decoder", "tie_encoder_decoder")
    data = small_config(model_type)
    flips = [
        f"set:{key}={json.dumps(not value)}"
        for key, value in data.items()
        if isinstance(value, bool) and not key.startswith(skip)
    ]
    others = [f"set:{key}={json.dumps(value)}" for key, value in OTHERS if key in data and data[key] != value]
    # what transformers' KV cache reads from any config (cache_utils.get_layer_types_and_kwargs): a window where the
    # family has none, chunks, and layer_types of full layers beside a window
    layers = next((data[f] for f in LAYERS if isinstance(data.get(f), int)), 2)
    probes = [f"set:{key}={json.dumps(value)}" for key, value in CACHE_PROBES if key not in data]
    if isinstance(data.get("sliding_window"), int):
        probes.append(f"set:layer_types={json.dumps(['full_attention'] * layers)}")
    return flips + others + probes


CACHE_PROBES = (("sliding_window", 4), ("attention_chunk_size", 4))


# and a few other values of the fields that change a layout: heads wider than d / h, one key-value head, another
# activation, a window shorter than T, a position table shorter than T
OTHERS = (
    ("head_dim", 32),
    ("num_key_value_heads", 1),
    ("hidden_act", "gelu_pytorch_tanh"),
    ("hidden_act", "relu"),
    ("activation_function", "relu"),
    ("sliding_window", 4),
    ("max_position_embeddings", 8),
    ("n_positions", 8),
    ("partial_rotary_factor", 0.5),
    ("rotary_pct", 0.5),
)


def default_config(model_type: str) -> dict:
    from transformers import CONFIG_MAPPING

    data = CONFIG_MAPPING[model_type]().to_dict()
    data["model_type"] = model_type
    data.pop("architectures", None)
    return data


# ---- one model, in the worker ----------------------------------------------------------------------------


def build(model_type: str, variant: str):
    """The model `paramsym import config.json` builds (`:base`: AutoModel's), and the config it came from."""
    import torch
    import transformers

    from paramsym.frameworks.hf_config import model_from_config

    transformers.logging.set_verbosity_error()
    try:
        data = default_config(model_type) if variant == "default" else small_config(model_type)
        note = "default" if variant == "default" else "small"
        if variant.startswith("set:"):  # MODEL:set:FIELD=JSON, the small config with one field changed
            field, value = variant[4:].split("=", 1)
            data[field] = json.loads(value)
            note = f"small, {field}={value}"
    except Exception as error:
        raise Build(f"config: {type(error).__name__}: {first_line(error)}") from None
    attempts = [(data, note)]
    if note == "small":  # a small config that transformers refuses: its defaults
        attempts.append((default_config(model_type), "default"))
    failure = ""
    for config, note in attempts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if variant == "base":
                    fields = {k: v for k, v in config.items() if k != "model_type"}
                    made = transformers.CONFIG_MAPPING[model_type].from_dict(fields)
                    with torch.device("meta"):
                        model = transformers.AutoModel.from_config(made)
                else:
                    model = model_from_config(config, f"{model_type} config")
            return model.eval(), note
        except Exception as error:
            failure = failure or f"{type(error).__name__}: {first_line(error)}"
    raise Build(failure)


class Build(Exception):
    pass


def one(model_type: str, variant: str) -> dict:
    import paramsym
    from paramsym.errors import ParamsymError

    result = {"name": model_type + (f":{variant}" if variant != "small" else ""), "input": str(T)}
    try:
        model, note = build(model_type, variant)
    except Build as error:
        result.update(outcome="unbuilt", detail=str(error).removeprefix("usage error: "), config="")
        return result
    result["config"] = note
    result["class"] = type(model).__name__
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = paramsym.from_torch(model, T)
    except ParamsymError as error:
        result.update(outcome="refused", detail=first_line(error).removeprefix("usage error: "))
        return result
    except Exception as error:  # the defect this sweep looks for
        frame = traceback.extract_tb(error.__traceback__)[-1]
        result.update(
            outcome="crashed",
            detail=f"{type(error).__name__}: {first_line(error)} "
            f"[{Path(frame.filename).name}:{frame.lineno} in {frame.name}]",
        )
        return result
    try:
        result.update(hf_check(model, T, text))
    except Exception as error:  # the re-check itself failed
        result.update(outcome="exact?", detail=f"re-check failed: {type(error).__name__}: {first_line(error)}")
        return result
    result["outcome"] = "WRONG" if result["wrong"] else "exact"
    result["detail"] = result["wrong"]
    return result


def label(job: tuple) -> dict:
    """What names a model in a result: its model_type, and the variant of its config unless the small one."""
    return {"name": job[0] + (f":{job[1]}" if job[1] != "small" else "")}


# ---- the summary -----------------------------------------------------------------------------------------

OUTCOMES = ("exact", "WRONG", "refused", "crashed", "timeout", "unbuilt", "exact?")


def summary(results: list[dict], seconds: float) -> str:
    import torch
    import transformers

    import paramsym

    types = [r for r in results if ":" not in r["name"]]
    counts = collections.Counter(r["outcome"] for r in types)
    variants = [r for r in results if ":" in r["name"]]
    vcounts = collections.Counter(r["outcome"] for r in variants)
    lines = [
        f"# paramsym Hugging Face sweep, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"paramsym {getattr(paramsym, '__version__', '?')}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}; {len(types)} model types (small configs, T = {T}) and "
        f"{len(variants)} variants of the families paramsym reads (`:base`, `:default`, `:set:FIELD=VALUE`) in "
        f"{seconds / 60:.1f} min",
        "",
        "| outcome | model types | variants |",
        "|---|---:|---:|",
    ]
    for outcome in OUTCOMES:
        if counts[outcome] or vcounts[outcome]:
            lines.append(f"| {outcome} | {counts[outcome]} | {vcounts[outcome]} |")
    bad = [r for r in results if r["outcome"] in ("WRONG", "crashed", "timeout", "exact?")]
    if bad:
        lines += ["", "## Wrong, crashed, timed out", "", "| model | outcome | detail |", "|---|---|---|"]
        lines += [f"| {r['name']} | {r['outcome']} | {r['detail'].replace('|', '/')} |" for r in bad]
    exact = [r for r in results if r["outcome"] == "exact"]
    macs = [r for r in exact if r.get("macs") is not None and r["macs"] != r["torch_macs"]]
    lines += [
        "",
        f"## MACs differing from FlopCounterMode ({len(macs)} of {len(exact)} exact imports; FlopCounterMode "
        "counts only matrix products and convolutions, so these are not necessarily wrong)",
        "",
        "| model | paramsym | FlopCounterMode / 2 | ratio |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['name']} | {r['macs']:,} | {r['torch_macs']:,.0f} | "
        f"{r['macs'] / r['torch_macs'] if r['torch_macs'] else float('inf'):.3f} |"
        for r in macs
    ]
    actives = [r for r in exact if r.get("active") != r.get("torch_active")]
    lines += [
        "",
        f"## Active parameters differing from the model's ({len(actives)} of {len(exact)} exact imports; the model's: "
        "its parameters less the experts a token does not go through, num_experts_per_tok of each `...Experts` module)",
        "",
        "| model | paramsym | the model's |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r['name']} | {r.get('active')} | {r.get('torch_active')} |" for r in actives]
    caches = [r for r in exact if r.get("torch_cache") is not None and r.get("kv_cache") != r["torch_cache"]]
    measured = sum(r.get("torch_cache") is not None for r in exact)
    lines += [
        "",
        f"## KV caches differing from transformers' cache ({len(caches)} of {measured} exact imports of a decoder "
        "with a cache; transformers may keep more than the architecture needs, e.g. keys broadcast to every head)",
        "",
        "| model | paramsym | transformers' cache after the forward |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r['name']} | {r.get('kv_cache')} | {r['torch_cache']:,} |" for r in caches]
    groups = collections.Counter(
        reason_group(r["detail"].replace(r.get("class") or "\0", "MODEL")) for r in results if r["outcome"] == "refused"
    )
    lines += ["", "## Refusal reasons", "", "| models | reason |", "|---:|---|"]
    lines += [f"| {n} | {reason.replace('|', '/')} |" for reason, n in groups.most_common()]
    unbuilt = collections.Counter(reason_group(r["detail"]) for r in results if r["outcome"] == "unbuilt")
    lines += ["", "## Not built from a config alone", "", "| models | transformers' reason |", "|---:|---|"]
    lines += [f"| {n} | {reason.replace('|', '/')} |" for reason, n in unbuilt.most_common()]
    lines += [
        "",
        "## Every model type",
        "",
        "| model_type | config | class | outcome | s | detail |",
        "|---|---|---|---|---:|---|",
    ]
    lines += [
        f"| {r['name']} | {r.get('config', '')} | {r.get('class', '')} | {r['outcome']} | "
        f"{r['seconds']} | {r.get('detail', '').replace('|', '/')[:200]} |"
        for r in results
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--limit", type=int, help="at most this many model types (in alphabetical order)")
    parser.add_argument("--only", nargs="*", help="model types, as MODEL_TYPE or MODEL_TYPE:base / :default")
    parser.add_argument(
        "--flags",
        action="store_true",
        help="also each yes/no field of the small config of each family paramsym reads, flipped (MODEL:set:F=V)",
    )
    parser.add_argument("--out", type=Path, help="also write the summary here")
    args = parser.parse_args()
    if args.only:
        jobs = [tuple(m.split(":", 1)) if ":" in m else (m, "small") for m in args.only]
    else:
        names = model_types()[: args.limit]
        read = read_families()
        jobs = [(n, "small") for n in names]
        jobs += [(n, v) for n in names if n in read for v in ("base", "default")]
        if args.flags:
            jobs += [(n, v) for n in names if n in read for v in flipped(n)]
    start = time.monotonic()
    results = run_all(jobs, one, label, args.timeout)
    text = summary(results, time.monotonic() - start)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
