"""Every import checks itself before it returns (paramsym.frameworks.importer._verified): the program's parameters,
state (BatchNorm running statistics) and output shape equal the module's own parameters(), running_mean
and running_var buffers and a run of it, and every module that holds parameters is used by forward.
A difference is a refusal naming the module or the model, never a program.

Checked here against PyTorch, torchvision, transformers and timm themselves."""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import paramsym
from helpers.import_coverage import on_meta


def torch_counts(model, input_shape):
    """parameters(), the running statistics, the output shape channels last and the MACs (FLOPs / 2)."""
    params = sum(p.numel() for p in model.parameters())
    state = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    device = next(model.parameters()).device
    *spatial, channels = input_shape
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = model.eval()(torch.zeros(1, channels, *spatial, device=device))
    dims = list(out.shape[1:])
    return params, state, dims[1:] + dims[:1] if len(dims) > 1 else dims, counter.get_total_flops()


def paramsym_counts(text):
    network = paramsym.parse(text)
    values = network.evaluate()
    return values["params"], values["state"], [network.value(d) for d in network.output_shape.dims()], values["macs"]


# ---- parameters that forward never uses ------------------------------------------------------------------


class WithUnusedLayer(nn.Module):
    """584 parameters that forward uses and a Linear(100, 100) (10,100) that it never calls."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3),
            nn.BatchNorm2d(8),
            nn.ReLU(),  # 224 + 16
            nn.Conv2d(8, 4, 3),
            nn.BatchNorm2d(4),
            nn.ReLU(),
        )  # 292 + 8
        self.head = nn.Linear(4, 11, bias=False)  # 44
        self.unused = nn.Linear(100, 100)  # 10,100

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


class Used(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)
        self.bn = nn.BatchNorm2d(16)

    def forward(self, x):
        return self.bn(self.conv(x))


class WithUnusedParameter(Used):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(16))  # held by the model itself, never read

    def forward(self, x):
        return self.bn(self.conv(x))


def test_a_layer_that_forward_never_uses_is_refused_by_name():
    """It imported as 584 parameters where PyTorch counts 10,684."""
    model = WithUnusedLayer()
    assert sum(p.numel() for p in model.parameters()) == 10_684
    with pytest.raises(paramsym.ParamsymError) as refused:
        paramsym.from_torch(model, (32, 32, 3))
    message = str(refused.value)
    assert "module 'unused' (Linear) holds 10,100 parameters that the model's forward never uses" in message
    assert "\n" not in message.strip() and "Traceback" not in message


def test_a_parameter_the_model_holds_and_never_reads_is_refused():
    with pytest.raises(paramsym.ParamsymError, match=r"the model \(WithUnusedParameter\) holds 16 parameters"):
        paramsym.from_torch(WithUnusedParameter(), (8, 8, 3))


def test_without_the_unused_layer_it_imports():
    model = Used()
    text = paramsym.from_torch(model, (8, 8, 3))
    params, state, shape, _ = torch_counts(model, (8, 8, 3))
    assert paramsym_counts(text)[:3] == (params, state, shape) == (448 + 32, 32, [6, 6, 16])


def test_batchnorm_without_running_statistics_is_refused():
    """bn keeps 2C values of state; a BatchNorm that tracks none has none (`bn` would count 32 too many)."""
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16, track_running_stats=False))
    with pytest.raises(paramsym.ParamsymError, match=r"module '1' \(BatchNorm2d\) keeps no running statistics"):
        paramsym.from_torch(model, (8, 8, 3))


def test_state_is_the_running_statistics_and_nothing_else():
    """num_batches_tracked (an integer), a constant table and a non-persistent buffer are not state."""
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    model.register_buffer("table", torch.zeros(7, 2))
    model.register_buffer("mask", torch.zeros(5), persistent=False)
    assert paramsym_counts(paramsym.from_torch(model, (8, 8, 3)))[1] == 8


# ---- models that import exactly, through either path -----------------------------------------------------


def gpt2():
    import transformers

    with torch.device("meta"):
        return transformers.GPT2LMHeadModel(
            transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=128, vocab_size=500)
        )


def torchvision_model(name):
    with on_meta(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torchvision.models.get_model(name, weights=None)


EXACT = [
    ("resnet18", lambda: torchvision_model("resnet18"), (224, 224, 3)),
    ("densenet121", lambda: torchvision_model("densenet121"), (224, 224, 3)),  # nested concats
    ("googlenet", lambda: torchvision_model("googlenet"), (224, 224, 3)),  # side heads
    ("squeezenet1_1", lambda: torchvision_model("squeezenet1_1"), (224, 224, 3)),
    ("vit_b_16 (layout)", lambda: torchvision_model("vit_b_16"), (224, 224, 3)),
    ("swin_t (layout)", lambda: torchvision_model("swin_t"), (224, 224, 3)),
    ("maxvit_t (layout)", lambda: torchvision_model("maxvit_t"), (224, 224, 3)),
]


@pytest.mark.parametrize("name, build, size", EXACT, ids=[e[0] for e in EXACT])
def test_models_still_import_exactly(name, build, size):
    model = build()
    params, state, shape, _ = torch_counts(model, size)
    assert paramsym_counts(paramsym.from_torch(model, size))[:3] == (params, state, shape)


def test_a_hugging_face_model_still_imports_exactly():
    model = gpt2()
    text = paramsym.from_torch(model, 128)
    assert paramsym_counts(text)[:3] == (sum(p.numel() for p in model.parameters()), 0, [128, 500])


def test_a_vit_asked_at_another_size_than_it_runs_at_is_refused():
    """torchvision's ViT built for 224 raises at 384; the import returned the 224 program."""
    with pytest.raises(paramsym.ParamsymError, match="VisionTransformer"):
        paramsym.from_torch(torchvision_model("vit_b_16"), (384, 384, 3))


# ---- values that feed a concatenation and later layers (timm 1.0.31) ----------------------------------


class OneShotAggregation(nn.Module):
    """VoVNet's OSA block and HGNet's block: cat([x, f1(x), f2(f1(x)), f3(f2(f1(x)))]) > conv1x1."""

    def __init__(self, c=8):
        super().__init__()
        self.layers = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for _ in range(3))
        self.aggregate = nn.Conv2d(4 * c, c, 1)

    def forward(self, x):
        out = [x]
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return self.aggregate(torch.cat(out, 1))


class Res2NetSplit(nn.Module):
    """Res2Net's hierarchical split: y1 = f1(x1), y2 = f2(y1 + x2), cat([y1, y2, x3])."""

    def __init__(self, w=4):
        super().__init__()
        self.w = w
        self.f1 = nn.Conv2d(w, w, 3, padding=1)
        self.f2 = nn.Conv2d(w, w, 3, padding=1)

    def forward(self, x):
        x1, x2, x3 = torch.split(x, self.w, 1)
        y1 = self.f1(x1)
        y2 = self.f2(y1 + x2)
        return torch.cat([y1, y2, x3], 1)


def test_a_chain_that_feeds_one_concat_nests_and_counts_once():
    model = OneShotAggregation()
    text = paramsym.from_torch(model, (8, 8, 8), flat=True)
    assert text.count("concat(id |") == 3, text
    params, state, shape, flops = torch_counts(model, (8, 8, 8))
    assert paramsym_counts(text) == (params, state, shape, flops // 2)
    assert (params, flops // 2) == (3 * 584 + 264, 3 * 36_864 + 16_384)


TIMM = [
    # name, torch params, running statistics; paramsym wrote 29,757,928 / 25,447,144 / 26,471,064 / 31,320,952 /
    # 7,595,176 parameters before (each shared layer counted again)
    ("res2net50_26w_4s", 25_699_120, 59_492),
    ("res2next50", 24_671_464, 64_448),
    ("dla34", 15_742_104, 15_488),
    ("hgnet_tiny", 14_735_864, 15_040),
    ("ese_vovnet19b_dw", 6_543_080, 11_136),
]


@pytest.mark.parametrize("name, params, state", TIMM, ids=[t[0] for t in TIMM])
def test_timm_models_with_reused_values_import_exactly(name, params, state):
    """Built on the meta device (shapes, no values): parameters, running statistics, output shape and MACs
    against timm's own model and FlopCounterMode."""
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    torch_params, torch_state, shape, flops = torch_counts(model, (224, 224, 3))
    assert (torch_params, torch_state, shape) == (params, state, [1000])
    assert flops % 2 == 0
    assert paramsym_counts(paramsym.from_torch(model, (224, 224, 3))) == (params, state, shape, flops // 2)


def test_a_value_shared_across_a_split_is_carried_as_channels():
    """Res2Net: y1 feeds the concat and y2 = f2(y1 + x2); no branch structure writes y1 once, so the values
    still needed travel as the channels of one value and are read back with slice(a, b)."""
    model = Res2NetSplit()
    text = paramsym.from_torch(model, (8, 8, 12), flat=True)
    assert "slice(" in text
    params, state, shape, flops = torch_counts(model, (8, 8, 12))
    assert paramsym_counts(text) == (params, state, shape, flops // 2) == (2 * 148, 0, [8, 8, 12], 2 * 9216)


# ---- the last check: whatever the importer wrote, a program that counts differently is never returned ----


@pytest.mark.parametrize(
    "appended, message",
    [
        ("\n  > conv1x1(->7)", r"Sequential has 480 parameters, but the program paramsym wrote for it has 592"),
        ("\n  > bn(noaffine)", r"Sequential has 32 values of state .* has 64"),
        ("\n  > maxpool2x2", r"Sequential gives an output of shape 6x6x16 .* gives 3x3x16"),
    ],
)
def test_a_program_that_counts_differently_is_refused(monkeypatch, appended, message):
    """The importer's last step compares the program it wrote with the model, whatever wrote it."""
    import paramsym.frameworks.importer as importer

    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16))
    written = importer.readable
    monkeypatch.setattr(importer, "readable", lambda *args: written(*args).rstrip("\n") + appended + "\n")
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.from_torch(model, (8, 8, 3))


def test_cli_refuses_the_unused_layer_with_one_message(tmp_path, monkeypatch):
    from helpers.cli_helpers import run

    (tmp_path / "unused_layer_model.py").write_text(
        "from torch import nn\n"
        "class M(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 8, 3)\n"
        "        self.unused = nn.Linear(100, 100)\n"
        "    def forward(self, x):\n"
        "        return self.conv(x)\n"
        "def build():\n"
        "    return M()\n"
    )
    import os

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    result = run("import", "unused_layer_model:build", "--input", "16x16x3")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("usage error: module 'unused' (Linear) holds 10,100 parameters"), result.stderr
    assert result.stdout == ""


# ---- a decoder's KV cache: the program's equals what transformers' own cache holds after the forward -----------


def mistral(**changes):
    import transformers

    config = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
    with torch.device("meta"):
        return transformers.MistralForCausalLM(
            transformers.MistralConfig(**config, num_key_value_heads=2, vocab_size=100, **changes)
        )


@pytest.mark.parametrize(
    "build, length, cache",
    [
        # 2 layers x (keys + values) x T positions x the width of the kv heads: transformers' DynamicCache
        (gpt2, 16, 2 * 2 * 16 * 64),
        (lambda: mistral(), 16, 2 * 2 * 16 * 32),
        # a sliding window of 8 keeps 7 positions a layer (transformers' DynamicSlidingWindowLayer)
        (lambda: mistral(sliding_window=8), 16, 2 * 2 * 7 * 32),
    ],
)
def test_the_kv_cache_of_a_decoder_is_checked_against_its_cache(build, length, cache):
    import paramsym.frameworks.importer as importer

    model = build()
    assert importer._layout_run(model, (length,)).cache == cache  # read from transformers' cache, not ours
    assert paramsym.parse(paramsym.from_torch(model, length)).evaluate()["kv_cache"] == cache


@pytest.mark.parametrize(
    "change, message",
    [
        # a window the model does not have: 7 positions counted where the cache keeps all 16
        (lambda text: text.replace("causal", "causal, window=8"), r"cache holds 4,096 values .* KV cache of 1,792"),
        # a window that covers the whole sequence counts every position: the same KV cache, imported
        (lambda text: text.replace("causal", "causal, window=17"), None),
    ],
)
def test_a_program_whose_kv_cache_differs_from_the_cache_is_refused(monkeypatch, change, message):
    """The last step compares the KV cache too: a program with the model's parameters, MACs and output shape but
    another KV cache (the kind of wrong number the Hugging Face sweep found in sliding-window configs) is refused."""
    import paramsym.frameworks.importer as importer

    written = importer.from_layout
    monkeypatch.setattr(importer, "from_layout", lambda *args: change(written(*args)))
    if message is None:
        assert "window=17" in paramsym.from_torch(gpt2(), 16)
        return
    with pytest.raises(paramsym.ParamsymError, match=message):
        paramsym.from_torch(gpt2(), 16)
