"""Training memory per device (core/training.py): weights, gradients and optimizer states, checked against
torch.optim's states after a step on real models, against DeepSpeed's estimator formulas, and through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsym import parse
from paramsym.algebra.solve import solve
from paramsym.cli import main
from paramsym.core import quantities, training
from paramsym.core.quantities import Quantity, register
from paramsym.core.setup import Setup, format_named
from paramsym.errors import ParamsymUsageError
from paramsym.frameworks.export import to_torch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LLAMA2_7B = (EXAMPLES / "llama2_7b.psym").read_text()
LLAMA2_7B_PARAMS = 6_738_415_616  # Hugging Face LlamaForCausalLM (Llama-2-7b)


def trained(text: str, **setup) -> object:
    gpus = setup.pop("gpus", 1)
    gpus = sympy.Integer(gpus) if isinstance(gpus, int) else sympy.Symbol(gpus, positive=True, integer=True)
    return parse(text).with_options(setup=Setup(train=True, gpus=gpus, **setup))


# ---- the rules: bytes per parameter (precision x optimizer), Llama-2-7B ----------------------------------
# (weights, gradients, optimizer states incl. fp32 master weights) per parameter
RULES = [
    ("fp32", "adamw", (4, 4, 8)),
    ("fp32", "adam", (4, 4, 8)),
    ("fp32", "sgd", (4, 4, 0)),
    ("fp32", "sgd-momentum", (4, 4, 4)),
    ("mixed-bf16", "adamw", (2, 2, 12)),  # DeepSpeed / ZeRO paper: K = 12, 16 bytes a parameter in all
    ("mixed-fp16", "adam", (2, 2, 12)),
    ("mixed-bf16", "sgd", (2, 2, 4)),
    ("mixed-bf16", "sgd-momentum", (2, 2, 8)),
    ("bf16", "adamw", (2, 2, 4)),
    ("bf16", "sgd-momentum", (2, 2, 2)),
]


@pytest.mark.parametrize(("precision", "optimizer", "per_param"), RULES)
def test_llama2_7b_bytes_per_parameter(precision, optimizer, per_param):
    net = trained(LLAMA2_7B, precision=precision, optimizer=optimizer)
    got = tuple(net.value(net.quantity(n)) for n in ("weight_bytes", "grad_bytes", "optimizer_bytes"))
    assert got == tuple(b * LLAMA2_7B_PARAMS for b in per_param)
    assert net.value(net.model_state_bytes) == sum(per_param) * LLAMA2_7B_PARAMS


def test_llama2_7b_mixed_adamw_is_16_bytes_a_parameter():
    net = trained(LLAMA2_7B, precision="mixed-bf16", optimizer="adamw")
    assert net.value(net.model_state_bytes) == 107_814_649_856 == 16 * LLAMA2_7B_PARAMS
    zero3 = trained(LLAMA2_7B, precision="mixed-bf16", optimizer="adamw", zero=3, gpus=8)
    assert zero3.value(zero3.model_state_bytes) == 107_814_649_856 // 8 == 13_476_831_232


# ---- ZeRO: the ZeRO paper's model states (Rajbhandari et al. 2020, fig. 1; K = 12), and DeepSpeed's estimators
PSI = LLAMA2_7B_PARAMS


@pytest.mark.parametrize("gpus", [1, 2, 8, 64])
@pytest.mark.parametrize(
    ("zero", "paper"),
    [
        (0, lambda n: (2 + 2 + 12) * PSI),
        (1, lambda n: 2 * PSI + 2 * PSI + 12 * PSI // n),
        (2, lambda n: 2 * PSI + (2 + 12) * PSI // n),
        (3, lambda n: (2 + 2 + 12) * PSI // n),
    ],
)
def test_zero_stages_follow_the_zero_paper(zero, paper, gpus):
    net = trained(LLAMA2_7B, precision="mixed-bf16", optimizer="adamw", zero=zero, gpus=gpus)
    assert PSI % 64 == 0  # the partitions are whole: no padding at these degrees
    assert net.value(net.model_state_bytes) == paper(gpus)


def estimate_zero2_gpu_mem(total_params: int, total_gpus: int) -> int:
    """DeepSpeed, deepspeed/runtime/zero/stage_1_and_2.py, estimate_zero2_model_states_mem_needs,
    cpu_offload=False: gpu_mem = 4 * total_params + int(16 * total_params / total_gpus)."""
    return 4 * total_params + int(16 * total_params / total_gpus)


def estimate_zero3_gpu_mem(total_params: int, largest_layer_params: int, total_gpus: int) -> int:
    """DeepSpeed, deepspeed/runtime/zero/stage3.py, estimate_zero3_model_states_mem_needs, cpu_offload=False:
    largest_layer_memory = 4 * largest_layer_params; gpu_mem = largest_layer_memory + int(18 * total_params /
    total_gpus)."""
    return 4 * largest_layer_params + int(18 * total_params / total_gpus)


@pytest.mark.parametrize("gpus", [1, 4, 8, 16])
def test_deepspeed_estimators_add_working_buffers_to_the_model_states(gpus):
    """DeepSpeed's estimators budget more than the model states: ZeRO-2 a full 16-bit gradient buffer (2 Psi)
    and fp32 gradient partitions (2 Psi / N more than 16-bit ones); ZeRO-3 the largest layer gathered in
    fp32-sized buffers (4 x its parameters) and the same fp32 gradient partitions. The model states are the
    rest, exactly."""
    largest = 32000 * 4096  # the largest module: the embedding (and the output layer)
    z2 = trained(LLAMA2_7B, precision="mixed-fp16", optimizer="adam", zero=2, gpus=gpus)
    z3 = trained(LLAMA2_7B, precision="mixed-fp16", optimizer="adam", zero=3, gpus=gpus)
    assert z2.value(z2.model_state_bytes) == estimate_zero2_gpu_mem(PSI, gpus) - 2 * PSI - 2 * PSI // gpus
    assert z3.value(z3.model_state_bytes) == estimate_zero3_gpu_mem(PSI, largest, gpus) - 4 * largest - 2 * PSI // gpus


def test_zero_partitions_round_up():
    net = trained("input(7) > dense(->3)", precision="fp32", optimizer="adam", zero=3, gpus=5)  # 24 params
    assert net.value(net.weight_bytes) == 4 * 5  # ceil(24 / 5) = 5 elements
    assert net.value(net.optimizer_bytes) == 8 * 5


def test_batchnorm_statistics_are_kept_whole():
    net = trained("input(8x8x3) > conv3x3(->4) > bn > relu", precision="fp32", optimizer="sgd", zero=3, gpus=2)
    params = 3 * 9 * 4 + 2 * 4  # conv without bias, bn weight and bias
    assert net.value(net.weight_bytes) == 4 * (params // 2) + 4 * 8  # running mean and variance: 8 values


# ---- the real thing: torch.optim's states after one step, p.grad after backward ---------------------------

SMALL_PROGRAMS = [
    "input(20) > dense(->33) > relu > ln > dense(->7)",
    "input(12x12x3) > conv3x3(->8) > bn > relu > conv3x3(->5, groups=1) > gap > dense(->4)",
    "input(16) > embed(50->24) > res(rmsnorm > attn(heads=4, causal)) > res(rmsnorm > dense(->40) > gelu > "
    "dense(->24)) > rmsnorm > dense(->50)",
]


def _optimizer(name: str, params):
    if name == "adam":
        return torch.optim.Adam(params)
    if name == "adamw":
        return torch.optim.AdamW(params)
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.1)
    if name == "sgd-momentum":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9)
    return torch.optim.Adafactor(params)


def _step(module, net, dtype):
    module = module.to(dtype)
    shape = net.input_shape
    if net.layers[0].layer.kind.key == "embed":
        x = torch.randint(0, 50, (2, 16))
    else:
        dims = [int(d) for d in shape.dims()]
        x = torch.randn(2, *(dims[-1:] + dims[:-1]) if len(dims) > 1 else dims, dtype=dtype)
    module(x).float().square().mean().backward()


def _state_bytes(optimizer) -> int:
    """The bytes of the optimizer's state tensors, without the 0-d `step` counters (on the CPU on a GPU)."""
    return sum(
        value.numel() * value.element_size()
        for state in optimizer.state.values()
        for key, value in state.items()
        if torch.is_tensor(value) and key != "step"
    )


@pytest.mark.parametrize("program", SMALL_PROGRAMS)
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "sgd-momentum", "adafactor"])
@pytest.mark.parametrize(("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_states_equal_torch_optim_after_a_step(program, optimizer, precision, dtype):
    torch.manual_seed(0)
    net = trained(program, precision=precision, optimizer=optimizer)
    module = to_torch(net).to(dtype)
    _step(module, net, dtype)
    opt = _optimizer(optimizer, module.parameters())
    opt.step()
    params = list(module.parameters())
    assert net.value(net.grad_bytes) == sum(p.grad.numel() * p.grad.element_size() for p in params)
    assert net.value(net.optimizer_bytes) == _state_bytes(opt)
    buffers = sum(b.numel() * b.element_size() for n, b in module.named_buffers() if "num_batches" not in n)
    assert net.value(net.weight_bytes) == sum(p.numel() * p.element_size() for p in params) + buffers


@pytest.mark.parametrize("optimizer", ["adamw", "sgd-momentum", "adafactor"])
def test_mixed_precision_is_fp32_master_weights_and_states(optimizer):
    """Mixed precision: the optimizer steps the fp32 master copy (its states as in fp32 training, plus the
    master weights), the model and its gradients are 16-bit."""
    torch.manual_seed(0)
    program = SMALL_PROGRAMS[0]
    net = trained(program, precision="mixed-bf16", optimizer=optimizer)
    master = to_torch(net)
    _step(master, net, torch.float32)
    opt = _optimizer(optimizer, master.parameters())
    opt.step()
    master_bytes = sum(p.numel() * p.element_size() for p in master.parameters())
    assert net.value(net.optimizer_bytes) == _state_bytes(opt) + master_bytes
    model = to_torch(net).to(torch.bfloat16)
    _step(model, net, torch.bfloat16)
    assert net.value(net.weight_bytes) == sum(p.numel() * p.element_size() for p in model.parameters())
    assert net.value(net.grad_bytes) == sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())


@pytest.mark.parametrize("optimizer", ["adamw", "adafactor", "sgd-momentum"])
def test_states_equal_torch_optim_on_a_hugging_face_llama(optimizer):
    """A small LlamaForCausalLM of transformers (its own modules, not our export) against the Llama program."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=172,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model(torch.randint(0, 96, (1, 8))).logits.float().square().mean().backward()
    opt = _optimizer(optimizer, model.parameters())
    opt.step()
    net = parse(LLAMA2_7B, V=96, d=64, F=172, L=2, h=4, T=8).with_options(setup=Setup(train=True, optimizer=optimizer))
    assert net.value(net.params) == sum(p.numel() for p in model.parameters())
    assert net.value(net.optimizer_bytes) == _state_bytes(opt)
    assert net.value(net.grad_bytes) == sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())


def test_adamw_8bit_follows_bitsandbytes_rules():
    """bitsandbytes is not installable here: its rules (bitsandbytes/optim/optimizer.py, Optimizer2State.init_state,
    min_8bit_size=4096, block_wise=True) written out: dense(20->300) has a 6,000-element weight (8-bit: 2 bytes an
    element, absmax1 and absmax2 of ceil(6000/256) = 24 fp32 each) and a 300-element bias (fp32 state1 and state2);
    the quantization maps, 2 x 256 fp32, once."""
    net = trained("input(20) > dense(->300, bias)", precision="fp32", optimizer="adamw-8bit")
    assert net.value(net.optimizer_bytes) == (2 * 6000 + 2 * 4 * 24) + 8 * 300 + 2 * 256 * 4
    mixed = trained("input(20) > dense(->300, bias)", precision="mixed-bf16", optimizer="adamw-8bit")
    assert mixed.value(mixed.optimizer_bytes) == net.value(net.optimizer_bytes) + 4 * 6300


def test_adafactor_needs_numbers():
    net = parse("input(C) > dense(->3)").with_options(setup=Setup(train=True, optimizer="adafactor"))
    with pytest.raises(ParamsymUsageError, match="each parameter tensor"):
        net.optimizer_bytes  # noqa: B018


# ---- tensor parallelism (Megatron) ----------------------------------------------------------------------


def test_tensor_parallel_llama():
    net = trained(LLAMA2_7B, precision="mixed-bf16", optimizer="adamw", tp=2, gpus=2)
    norms = 4096 * (2 * 32 + 1)  # replicated on both ranks
    per_rank = (PSI - norms) // 2 + norms
    assert net.value(net.model_state_bytes) == 16 * per_rank


@pytest.mark.parametrize(
    ("program", "tp", "message"),
    [
        ("input(16) > embed(50->24) > dense(->10)", 4, "vocabulary"),
        ("input(16x24) > attn(heads=3)", 2, "heads"),
        ("input(16x24) > dense(->10, bias)", 2, "bias"),
        ("input(8x8x3) > conv3x3(->4)", 2, "no tensor-parallel rule"),
        (LLAMA2_7B, 3, r"the vocabulary of embed \(32000\) is not a multiple of 3"),  # let values are checked
        ("input(16x24) > dense(->9) > dense(->7)", 2, r"the width of dense \(7\) is not a multiple of 2"),
        ("input(16 x 32) > attn(heads=h)", 2, "must be a number to check that 2 divides it"),
    ],
)
def test_tensor_parallel_refusals(program, tp, message):
    net = trained(program, tp=tp, gpus=tp)
    with pytest.raises(ParamsymUsageError, match=message):
        net.weight_bytes  # noqa: B018


# ---- pipeline parallelism: the first stage holds the embedding and L/p blocks ------------------------------

BLOCK = 4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096  # attention, the gated MLP and two RMSNorms of Llama-2-7B
EMBED = 32000 * 4096


@pytest.mark.parametrize(
    ("tp", "pp", "gpus", "zero", "expected"),
    [
        (1, 2, 2, 0, 16 * (EMBED + 16 * BLOCK)),
        (1, 4, 8, 1, 4 * (EMBED + 8 * BLOCK) + 12 * ((EMBED + 8 * BLOCK) // 2)),  # dp = 2
        (1, 4, 16, 1, 4 * (EMBED + 8 * BLOCK) + 12 * ((EMBED + 8 * BLOCK) // 4)),  # dp = 4
        # tp 2: the matrices halved, the two norms of a block whole; dp = 1
        (2, 4, 8, 0, 16 * (EMBED // 2 + 8 * ((BLOCK - 2 * 4096) // 2 + 2 * 4096))),
    ],
)
def test_pipeline_first_stage(tp, pp, gpus, zero, expected):
    net = trained(LLAMA2_7B, precision="mixed-bf16", optimizer="adamw", tp=tp, pp=pp, gpus=gpus, zero=zero)
    assert net.value(net.model_state_bytes) == expected
    assert net.train_memory_bytes is None  # a stage's activations are not counted


def test_pipeline_stages_sum_to_the_model():
    """Two stages: the first holds the embedding and 16 blocks, the last the other 16, the norm and the output."""
    first = trained(LLAMA2_7B, precision="fp32", optimizer="sgd", pp=2, gpus=2)
    last = EMBED + 16 * BLOCK + 4096  # the layers after the blocks: rmsnorm and the output layer (V x d)
    assert first.value(first.weight_bytes) // 4 + last == LLAMA2_7B_PARAMS


@pytest.mark.parametrize(
    ("program", "pp", "message"),
    [
        (LLAMA2_7B, 3, "the L = 32 blocks do not split into 3 stages"),
        ("input(16) > dense(->8) > dense(->8)", 2, "one symbolic repeat"),
        ("input(16x8) > (dense(->8)) * L", 2, "must be a number to check that 2 divides it"),
    ],
)
def test_pipeline_refusals(program, pp, message):
    """The blocks split evenly over the stages, and must be counted by a number."""
    net = trained(program, pp=pp, gpus=pp)
    with pytest.raises(ParamsymUsageError, match=message):
        net.weight_bytes  # noqa: B018


# ---- no --train: the quantities do not apply ------------------------------------------------------------


def test_without_train_the_quantities_are_left_out():
    net = parse(LLAMA2_7B)
    assert net.weight_bytes is None
    assert "weight_bytes" not in net.to_dict()
    assert "weight_bytes" in trained(LLAMA2_7B).to_dict()


def test_train_memory_needs_the_saved_activations():
    net = trained(LLAMA2_7B)
    if training.ACTIVATIONS in quantities.BY_NAME:
        pytest.skip("the saved activations are counted in this build")
    assert net.train_memory_bytes is None


@pytest.fixture
def saved_activations():
    """A stand-in for saved_activation_bytes (core/saved.py, another module): 2 bytes per activation value
    per sequence of the batch, to test the sums and solve questions."""
    added = training.ACTIVATIONS not in quantities.BY_NAME
    if added:
        register(
            Quantity(
                training.ACTIVATIONS,
                "saved activation bytes",
                network=lambda net: 2 * net.setup.batch * net.activations,
                budget=True,
            )
        )
    yield
    if added:
        quantities.QUANTITIES.remove(quantities.BY_NAME.pop(training.ACTIVATIONS))
        for view in (quantities.layer_quantities, quantities.budgets, quantities.viewable, quantities.per_layer_names):
            view.cache_clear()


def test_train_memory_sums_the_parts(saved_activations):
    net = trained(LLAMA2_7B, precision="mixed-bf16", zero=3, gpus=8)
    assert net.value(net.train_memory_bytes) == net.value(net.model_state_bytes) + net.value(
        net.quantity(training.ACTIVATIONS)
    )
    tp = trained(LLAMA2_7B, precision="mixed-bf16", tp=2, gpus=2)
    saved = tp.value(tp.quantity(training.ACTIVATIONS))
    assert tp.value(tp.train_memory_bytes) == tp.value(tp.model_state_bytes) + -(-saved // 2)


# bf16 activations, a fused attention kernel and full recomputation: what lets Llama-2-7B train at T = 4096
LEAN = dict(precision="mixed-bf16", zero=3, gpus=sympy.Integer(8), attention="fused", recompute="full")


def _at_batch(b: int):
    net = parse(LLAMA2_7B).with_options(
        setup=Setup(train=True, batch=sympy.Integer(b), activations=format_named("bf16"), **LEAN)
    )
    return net.value(net.train_memory_bytes), net


def test_largest_batch_in_80_gib_with_zero3_on_8_gpus(saved_activations):
    b = sympy.Symbol("B", positive=True, integer=True)
    net = parse(LLAMA2_7B).with_options(setup=Setup(train=True, batch=b, activations=format_named("bf16"), **LEAN))
    budget = 80 * 2**30
    answer = solve(net, "B", budget, on="train_memory_bytes")
    at, fixed = _at_batch(answer.value)
    after, _ = _at_batch(answer.value + 1)
    assert answer.total_at_value == at <= budget < after == answer.total_at_next
    saved = fixed.value(fixed.quantity(training.ACTIVATIONS))
    assert at == 16 * PSI // 8 + saved  # the model states and the saved activations, nothing else


# ---- solve: the fewest GPUs (a total that falls), the widest model -------------------------------------


@pytest.mark.parametrize(("tp", "budget"), [(1, 20 * 10**9), (1, 14 * 10**9), (4, 20 * 10**9), (2, 4 * 10**9)])
def test_fewest_gpus(tp, budget):
    n = sympy.Symbol("N", positive=True, integer=True)
    net = parse(LLAMA2_7B).with_options(setup=Setup(train=True, precision="mixed-bf16", zero=3, gpus=n, tp=tp))
    answer = solve(net, "N", budget, on="model_state_bytes")
    per_rank = PSI if tp == 1 else (PSI - 4096 * 65) // tp + 4096 * 65

    def states(gpus: int) -> int:
        return 16 * -(-per_rank // (gpus // tp))

    expected = next(g for g in range(tp, 10_000, tp) if states(g) <= budget)
    assert answer.value == expected and answer.decreasing
    assert answer.total_at_value == states(expected) <= budget
    assert expected == tp or states(expected - tp) > budget


def test_widest_model_within_a_budget():
    net = parse((EXAMPLES / "llama_symbolic.psym").read_text()).with_options(
        setup=Setup(train=True, precision="mixed-bf16", optimizer="adamw")
    )
    budget = 80 * 2**30
    answer = solve(net, "d", budget, on="model_state_bytes")
    d = answer.value
    assert d % 384 == 0  # heads d/128 and the MLP's 8d/3
    assert answer.total_at_value <= budget
    assert net.value(net.model_state_bytes, d=d + 384) > budget


# ---- the CLI ---------------------------------------------------------------------------------------------


def test_cli_json(capsys):
    assert (
        main(["count", str(EXAMPLES / "llama2_7b.psym"), "--train", "--precision", "mixed-bf16", "--format", "json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["weight_bytes"]["value"] == 2 * PSI
    assert data["optimizer_bytes"]["value"] == 12 * PSI
    assert data["model_state_bytes"]["value"] == 16 * PSI


def test_cli_explain(capsys):
    program = str(EXAMPLES / "llama2_7b.psym")
    assert main(["explain", program, "--train", "--precision", "mixed-bf16", "--zero", "3", "--gpus", "8"]) == 0
    out = capsys.readouterr().out
    assert "Model states: 13,476,831,232 bytes per device" in out
    assert "Optimizer states: 10,107,623,424 bytes" in out


def test_cli_fewest_gpus(capsys):
    program = str(EXAMPLES / "llama2_7b.psym")
    argv = ["solve", program, "--train", "--precision", "mixed-bf16", "--zero", "3", "--gpus", "N", "--for", "N"]
    assert main([*argv, "--on", "model_state_bytes", "--budget", "20000000000"]) == 0
    out = capsys.readouterr().out
    assert "smallest N with model_state_bytes <= 20,000,000,000" in out
    assert "N = 6" in out and "at N = 5: 21,562,929,984" in out and "over the budget" in out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--zero", "4", "--train"], "'--zero': 4 is not in the range"),
        (["--tp", "0", "--train"], "'--tp': 0 is not in the range"),
        (["--gpus", "6", "--tp", "4", "--train"], "--gpus 6: not a multiple of --tp 4 x --pp 1 = 4"),
        (["--optimizer", "sgd"], "--optimizer applies to training: add --train"),
        (["--precision", "bf16"], "--precision applies to training: add --train"),
        (["--zero", "2"], "--zero applies to training: add --train"),
        (["--pp", "2", "--gpus", "2", "--train"], "--pp 2: the pipeline stages split the blocks"),
        (["--pp", "2", "--gpus", "3", "--train"], "--gpus 3: not a multiple of --tp 1 x --pp 2 = 2"),
        (["--pp", "2", "--gpus", "4", "--zero", "2", "--train"], "--zero 2 with --pp 2: DeepSpeed's ZeRO-2 and ZeRO-3"),
    ],
)
def test_cli_errors(options, message, capsys):
    assert main(["count", "input(16) > dense(->8)", *options]) == 2
    assert message in capsys.readouterr().err


def test_cli_gpus_symbol_checked_with_its_value(capsys):
    argv = [
        "count",
        "input(16) > dense(->8)",
        "--train",
        "--gpus",
        "N",
        "--tp",
        "4",
        "--set",
        "N=6",
        "--format",
        "json",
    ]
    assert main(argv) == 2
    assert "--gpus N = 6: not a multiple of --tp 4 x --pp 1 = 4" in capsys.readouterr().err


def test_cli_tensor_parallel_error_is_located(capsys):
    assert main(["count", "input(16x24) > attn(heads=3)", "--train", "--tp", "2", "--gpus", "2"]) == 2
    err = capsys.readouterr().err
    assert "--tp 2: the heads of attn (3) is not a multiple of 2" in err and "line 1, column 16" in err


def test_cli_solve_train_memory_without_activations(capsys):
    if training.ACTIVATIONS in quantities.BY_NAME:
        pytest.skip("the saved activations are counted in this build")
    argv = ["solve", "input(C) > dense(->8)", "--train", "--for", "C", "--on", "train_memory_bytes", "--budget", "1M"]
    assert main(argv) == 2
    assert "needs the saved activations" in capsys.readouterr().err


def test_cli_solve_on_needs_train(capsys):
    argv = ["solve", "input(C) > dense(->8)", "--for", "C", "--on", "weight_bytes", "--budget", "1M"]
    assert main(argv) == 2
    assert "--on weight_bytes needs --train" in capsys.readouterr().err


# ---- a general rule: any stack of dense layers, any optimizer, against torch.optim -------------------------


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 80), min_size=2, max_size=4),
    biases=st.lists(st.booleans(), min_size=3, max_size=3),
    optimizer=st.sampled_from(["adam", "adamw", "sgd", "sgd-momentum", "adafactor"]),
    bf16=st.booleans(),
)
def test_any_dense_stack_matches_torch_optim(widths, biases, optimizer, bf16):
    layers = " > ".join(f"dense(->{w}{', bias' if b else ''})" for w, b in zip(widths[1:], biases))
    program = f"input({widths[0]}) > {layers}"
    dtype = torch.bfloat16 if bf16 else torch.float32
    net = trained(program, precision="bf16" if bf16 else "fp32", optimizer=optimizer)
    module = to_torch(net).to(dtype)
    module(torch.randn(2, widths[0], dtype=dtype)).float().square().mean().backward()
    opt = _optimizer(optimizer, module.parameters())
    opt.step()
    assert net.value(net.optimizer_bytes) == _state_bytes(opt)
    assert net.value(net.grad_bytes) == sum(p.grad.numel() * p.grad.element_size() for p in module.parameters())


def test_cli_largest_batch(saved_activations, capsys):
    """The brief's question through the CLI."""
    program = str(EXAMPLES / "llama2_7b.psym")
    argv = ["solve", program, "--for", "B", "--batch", "B", "--train", "--precision", "mixed-bf16", "--zero", "3"]
    lean = ["--activations", "bf16", "--attention", "fused", "--recompute", "full", "--gpus", "8"]
    assert main([*argv, *lean, "--on", "train_memory_bytes", "--budget", "85899345920", "--format", "json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["total_at_value"] == _at_batch(answer["value"])[0] <= 85899345920
    assert answer["total_at_next"] == _at_batch(answer["value"] + 1)[0] > 85899345920
