"""A Hugging Face model from the `config.json` that comes with it: built by `transformers` on the meta device (no
weights, nothing downloaded), then read as any imported model (`importer.from_torch`, which verifies it).

The file is untrusted input: it is read as JSON only, its `model_type` must be one transformers itself knows (no
model ships its own code here: `trust_remote_code` is never set), and its `architectures` entry names a class only
if transformers has a model class of that name.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from typing import Any

from ..errors import ParamsymUsageError

HINT = "pip install 'paramsym[hf]' (transformers and PyTorch)"
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a config.json is a few kB; larger is not one


def is_config_path(model: str) -> bool:
    """`paramsym import` takes a config.json (or the folder that holds one) as well as MODULE:CALLABLE."""
    return model.endswith(".json") or os.path.isdir(model)


def read_config(path: str) -> dict:
    """The JSON object of a config file, or of `config.json` in a folder."""
    if os.path.isdir(path):
        inside = os.path.join(path, "config.json")
        if not os.path.isfile(inside):
            raise ParamsymUsageError(f"{path} is a folder without a config.json")
        path = inside
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ParamsymUsageError(f"cannot read {path}: {error.strerror or error}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ParamsymUsageError(f"{path} is larger than {MAX_CONFIG_BYTES // 1024 // 1024} MB: not a model's config")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        where = f" (line {error.lineno}, column {error.colno})" if isinstance(error, json.JSONDecodeError) else ""
        raise ParamsymUsageError(f"{path} is not JSON{where}: {error}") from None
    if not isinstance(data, dict):
        raise ParamsymUsageError(f"{path} holds a JSON {type(data).__name__}, not a model's config (an object)")
    if not isinstance(data.get("model_type"), str):
        raise ParamsymUsageError(
            f"{path} has no model_type: it is not a Hugging Face model's config.json",
            hint='a config.json says which model it describes, e.g. "model_type": "llama"',
        )
    return data


def _transformers():
    try:
        return importlib.import_module("transformers")
    except ImportError:
        raise ParamsymUsageError("reading a config.json needs Hugging Face transformers", hint=HINT) from None


def model_from_config(data: dict, source: str = "config.json") -> Any:
    """The model a config describes, built on the meta device: the class its `architectures` names when
    transformers has it, else the family's causal-LM, sequence-to-sequence or masked-LM model."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        raise ParamsymUsageError("reading a config.json needs PyTorch", hint=HINT) from None
    transformers = _transformers()
    logging.getLogger("transformers").setLevel(logging.ERROR)  # its notes on unused keys are not the user's errors
    model_type = data["model_type"]
    mapping = transformers.CONFIG_MAPPING
    if model_type not in mapping:
        raise ParamsymUsageError(
            f"{source}: transformers {transformers.__version__} has no model_type {model_type!r} "
            f"(a model that ships its own code is not run)"
        )
    fields = {key: value for key, value in data.items() if key != "model_type"}
    try:
        config = mapping[model_type].from_dict(fields)
    except Exception as error:  # transformers' checks of the values, with its own words
        raise ParamsymUsageError(f"{source}: transformers refuses this config: {error}") from None
    refusal = ""  # the first class that refused this config with a ValueError of its own
    with torch.device("meta"):
        for model_class in _classes(transformers, data, config):
            name = getattr(model_class, "__name__", model_class)
            try:
                return model_class(config) if isinstance(model_class, type) else model_class.from_config(config)
            except ValueError as error:
                # an Auto class without a mapping for this family: try the next; a model's own check of the config
                # (BERT's cross-attention without is_decoder): kept, and said if no class builds
                if not str(error).startswith("Unrecognized configuration class"):
                    refusal = refusal or f"{name} from it: ValueError: {_said(error)}"
                continue
            except Exception as error:
                raise ParamsymUsageError(
                    f"{source}: transformers cannot build {name} from it: {type(error).__name__}: {_said(error)}"
                ) from None
    if refusal:
        raise ParamsymUsageError(f"{source}: transformers cannot build {refusal}")
    raise ParamsymUsageError(f"{source}: transformers has no language model for the model_type {model_type!r}")


def _said(error: Exception) -> str:
    """An error of transformers in one line: a message that prints a module (its repr over many lines, as BERT's
    `BertLayer(...) should be used as a decoder model if cross attention is added`) without the module's body."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else type(error).__name__
    return f"{lines[0]} … {lines[-1]}"


def _classes(transformers, data: dict, config) -> list:
    """Model classes to try, in order."""
    named = []
    for name in data.get("architectures") or []:
        if isinstance(name, str) and name.isidentifier():
            candidate = getattr(transformers, name, None)
            if isinstance(candidate, type) and issubclass(candidate, transformers.PreTrainedModel):
                named.append(candidate)
    autos = ["AutoModelForCausalLM", "AutoModelForMaskedLM", "AutoModel"]
    if getattr(config, "is_encoder_decoder", False):
        autos.insert(0, "AutoModelForSeq2SeqLM")
    return named + [_Auto(getattr(transformers, name)) for name in autos]


class _Auto:
    """An Auto class, built with `from_config` (a ValueError: it has no model of this family)."""

    def __init__(self, auto) -> None:
        self.auto = auto
        self.__name__ = auto.__name__

    def from_config(self, config):
        return self.auto.from_config(config)


def from_config(path: str, length: int | str | tuple | None = None) -> str:
    """The program of the model that `path` (a config.json, or a folder that holds one) describes, read and verified
    by `importer.from_torch`; `length` is the input's length T (default: the model's context)."""
    from .importer import from_torch

    model = model_from_config(read_config(path), path)
    return from_torch(model, context(model.config) if length is None else length)


# max_seq_len: MPT's (its ALiBi biases are a table of that many columns)
CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length", "max_seq_len")


def context(config) -> int:
    """The length a model is built for, from the first of its config's fields that gives one (RoBERTa's positions
    start after its padding_idx: 514 rows take 512 positions)."""
    from .hf_import import first_position

    for field in CONTEXT_FIELDS:
        value = getattr(config, field, None)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            offset = first_position(config) if field == "max_position_embeddings" else 0
            return value - offset if value > offset else value
    raise ParamsymUsageError(
        f"{type(config).__name__} gives no context length ({', '.join(CONTEXT_FIELDS)})",
        hint="give the sequence length: --input 4096",
    )
