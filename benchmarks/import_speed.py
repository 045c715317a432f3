"""How long `paramsym.from_torch` takes, with the model already built (its build is not timed), and the CLI's
`paramsym import` end to end (start-up, build, import, output). Run by hand or `make bench-import`:

    python benchmarks/import_speed.py             # every case, best and median of --rounds
    python benchmarks/import_speed.py --rounds 9 --only resnet50

Models are built once per case (torchvision, timm, Hugging Face transformers from a config on the meta device:
no weights, no downloads); each round imports the same built model again. benchmarks/README.md records the
figures.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # helpers.lm_configs: the published configs the tests build too

from helpers.lm_configs import LLAMA2_7B  # noqa: E402


def _torchvision(name: str, device: str):
    import torch
    import torchvision

    def build():
        with torch.device(device):
            return getattr(torchvision.models, name)()

    return build


def _timm(name: str):
    import timm
    import torch

    def build():
        with torch.device("meta"):
            return timm.create_model(name, pretrained=False)

    return build


def _transformers(config_name: str, **config):
    import torch
    import transformers

    def build():
        with torch.device("meta"):
            return transformers.AutoModelForCausalLM.from_config(getattr(transformers, config_name)(**config))

    return build


LLAMA_3_70B = dict(
    vocab_size=128256,
    hidden_size=8192,
    intermediate_size=28672,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    max_position_embeddings=8192,
)

# (name, builder, input as from_torch takes it)
CASES = [
    ("resnet50", _torchvision("resnet50", "cpu"), "224x224x3"),
    ("resnet50 (meta)", _torchvision("resnet50", "meta"), "224x224x3"),
    ("efficientnet_b0 (meta)", _torchvision("efficientnet_b0", "meta"), "224x224x3"),
    ("timm vit_base_patch16_224 (meta)", _timm("vit_base_patch16_224"), "224x224x3"),
    ("timm convnext_tiny (meta)", _timm("convnext_tiny"), "224x224x3"),
    ("GPT-2 (meta)", _transformers("GPT2Config"), "1024"),
    ("Llama-2-7B (meta)", _transformers("LlamaConfig", **LLAMA2_7B), "4096"),
    ("Llama-3-70B (meta)", _transformers("LlamaConfig", **LLAMA_3_70B), "8192"),
]


def time_import(build, shape: str, rounds: int) -> tuple[float, float]:
    import paramsym

    model = build()
    paramsym.from_torch(model, shape)  # the first import loads what paramsym needs (torch.fx, the grammar)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        paramsym.from_torch(model, shape)
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


CLI_CASES = [
    ("paramsym import resnet50 (CLI, end to end)", ["torchvision.models:resnet50", "--input", "224x224x3"]),
    # transformers builds Llama-3-8B from the bundled config.json on meta, and the program is checked against it
    ("paramsym import llama3_8b config.json (CLI)", ["examples/configs/llama3_8b/config.json"]),
]


def time_cli(arguments: list[str], rounds: int) -> tuple[float, float]:
    """`paramsym import ARGUMENTS`, a fresh process each round, output included."""
    command = [sys.executable, "-m", "paramsym", "import", *arguments]
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="cases whose name contains one of these")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    print(f"{'case':36} {'best s':>8} {'median s':>9}")
    for name, build, shape in CASES:
        if args.only and not any(word in name for word in args.only):
            continue
        best, median = time_import(build, shape, args.rounds)
        print(f"{name:36} {best:8.3f} {median:9.3f}", flush=True)
    if not args.only or any("cli" in word for word in args.only):
        for name, arguments in CLI_CASES:
            best, median = time_cli(arguments, max(1, args.rounds // 2))
            print(f"{name:36} {best:8.3f} {median:9.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
