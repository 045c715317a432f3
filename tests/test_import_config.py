"""`paramsym import config.json`: the config file that comes with a Hugging Face model is enough. Every bundled
config (examples/configs/*/config.json, published configs of real models) is imported through the real entry
point and its count compared with the model transformers builds from the same file; bad files, unknown
families and a missing transformers are one message each, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import paramsym
from helpers.cli_helpers import run

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from paramsym.frameworks.hf_config import model_from_config, read_config  # noqa: E402

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "examples" / "configs").glob("*/config.json"))
LLAMA3_8B = next(path for path in CONFIGS if path.parent.name == "llama3_8b")


def refused(result: subprocess.CompletedProcess, words: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert words in result.stderr, result.stderr


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_bundled_configs_are_there():
    assert {path.parent.name for path in CONFIGS} >= {
        "llama3_8b",
        "qwen1_5_moe_a2_7b",
        "gemma2_9b",
        "t5_base",
        "phi_2",
        "olmoe_1b_7b",
    }


# (config folder, params, active): the counts the model cards publish, rounded there (Phi-2 2.7B; OLMoE-1B-7B 6.9B
# of which 1.3B active), exact here as transformers builds the models
PUBLISHED = [("phi_2", 2_779_683_840, 2_779_683_840), ("olmoe_1b_7b", 6_919_161_856, 1_282_017_280)]


@pytest.mark.parametrize("name, params, active", PUBLISHED, ids=[row[0] for row in PUBLISHED])
def test_a_newer_family_imports_from_its_published_config(name, params, active):
    config = next(path for path in CONFIGS if path.parent.name == name)
    result = run("import", str(config.parent), "--input", "16", timeout=300)
    assert result.returncode == 0, result.stderr
    values = paramsym.parse(result.stdout).evaluate()
    assert (values["params"], values["active"]) == (params, active)
    assert values["params"] == numel(model_from_config(read_config(str(config))))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.parent.name)
def test_a_config_imports_as_transformers_builds_it(config):
    result = run("import", str(config), "--input", "128", timeout=300)
    assert result.returncode == 0, result.stderr
    values = paramsym.parse(result.stdout).evaluate()
    model = model_from_config(read_config(str(config)))
    assert values["params"] == numel(model)
    data = json.loads(config.read_text())
    assert type(model).__name__ in data.get("architectures", []) or data["model_type"] == "t5"


def test_llama3_8b_from_its_config_folder_at_its_context():
    """The folder is enough, and T is the model's context (max_position_embeddings) unless --input says."""
    result = run("import", str(LLAMA3_8B.parent), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "let T = 8192" in result.stdout
    values = paramsym.parse(result.stdout).evaluate()
    assert values["params"] == 8_030_261_248
    assert values["kv_cache"] == 2 * 32 * 8 * 128 * 8192


def test_the_output_file(tmp_path):
    out = tmp_path / "llama.psym"
    result = run("import", str(LLAMA3_8B), "--input", "16", "-o", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    assert paramsym.parse(out.read_text()).evaluate()["params"] == 8_030_261_248


@pytest.mark.parametrize(
    "content,words",
    [
        ("{not json", "is not JSON (line 1, column 2)"),
        ("[1, 2]", "holds a JSON list, not a model's config"),
        ('{"hidden_size": 64}', "has no model_type"),
        ('{"model_type": "no_such_family"}', "has no model_type 'no_such_family'"),
        ('{"model_type": "llama", "num_attention_heads": 0}', "transformers"),
        ('{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 3}', "transformers"),
        # a model's own refusal of its config (a ValueError) is said, with the module's repr left out, not taken
        # for a family without a language model (benchmarks/hf_sweep.py, bert with add_cross_attention)
        (
            '{"model_type": "bert", "add_cross_attention": true, "num_hidden_layers": 1}',
            "transformers cannot build AutoModelForCausalLM from it: ValueError: BertLayer( … ) should be used as a "
            "decoder model if cross attention is added",
        ),
        ('{"model_type": "clipseg_text_model"}', "transformers has no language model for the model_type"),
    ],
)
def test_bad_config_files_are_one_message(tmp_path, content, words):
    path = tmp_path / "config.json"
    path.write_text(content)
    refused(run("import", str(path), timeout=300), words)


def test_a_folder_without_a_config_and_a_missing_file(tmp_path):
    refused(run("import", str(tmp_path)), "is a folder without a config.json")
    refused(run("import", str(tmp_path / "nope.json")), "cannot read")


def test_a_module_needs_its_input_a_config_does_not():
    refused(run("import", "torchvision.models:resnet18"), "give the model's input shape: --input 224x224x3")


def test_without_transformers_it_says_what_to_install():
    code = "import sys; sys.modules['transformers'] = None\nfrom paramsym.cli import main\nsys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, "import", str(LLAMA3_8B)], capture_output=True, text=True, timeout=120
    )
    refused(result, "reading a config.json needs Hugging Face transformers")
    assert "pip install 'paramsym[hf]'" in result.stderr


def test_the_architecture_named_is_built_only_if_transformers_has_it(tmp_path):
    """`architectures` names a class of transformers or is passed over (T5-base's file says T5WithLMHeadModel, a
    class of older versions): never a name that is not a model class."""
    data = json.loads(LLAMA3_8B.read_text()) | {
        "architectures": ["os.system", "PreTrainedModel.__init__", "GPT2Config", "NoSuchModel"],
        "num_hidden_layers": 1,
    }
    model = model_from_config(data)
    assert type(model).__name__ == "LlamaForCausalLM"  # AutoModelForCausalLM's choice
