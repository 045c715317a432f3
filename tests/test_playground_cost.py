"""The playground's memory-and-cost panel (docs/playground/panels/cost.js, PARTS["cost"] in playground.py) and the
solve box's units, readable menu and "use this value": every number is compared with the command line
(`paramsym count ... --format json`, `paramsym solve ... --format json`), first under CPython (the module), then in
headless Chromium (the page), at 390, 1024 and 1920 px."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from functools import cache
from urllib.parse import quote

import pytest

from helpers.doc_examples import ROOT
from helpers.playground_browser import open_playground, runs, wait_for_run

LLAMA = (ROOT / "examples" / "llama2_7b.psym").read_text()
CNN = "input(32x32x3) > conv3x3(->16, pad=1) > relu > conv3x3(->C, pad=1) > gap > dense(->10, bias)"
ENCODERS = ("bert_base", "vit_b_16", "swin_t")
KV_BUDGETS = {"kv_cache", "kv_cache_bytes"}


def cli(*args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "paramsym", *args], capture_output=True, text=True, env=env, timeout=300
    )
    return done.returncode, done.stdout, done.stderr.strip()


@cache
def cli_json(*args: str) -> dict:
    code, out, err = cli(*args)
    assert code == 0, err
    return json.loads(out)


def count_json(program: str, *options: str) -> dict:
    return cli_json("count", program, *options, "--format", "json")


def options_of(settings: dict) -> list[str]:
    """The command line's options for the panel's settings (what a person would type)."""
    words = ["--train"] if settings.get("mode") == "train" else []
    for name, value in settings.items():
        if name != "mode":
            words += [f"--{name}", value]
    return words


# (panel settings, the quantities the bar adds up, in its order, and the total)
SERVE = ("param_bytes", "serve_memory_bytes")
TRAIN = ("weight_bytes", "grad_bytes", "optimizer_bytes", "train_memory_bytes")
CASES = [
    ({"dtype": "bf16"}, SERVE),
    ({"dtype": "fp32"}, SERVE),
    ({"weights": "int4", "kv": "bf16", "activations": "bf16", "batch": "4"}, SERVE),
    ({"dtype": "bf16", "weights": "nf4", "kv": "fp8"}, SERVE),
    ({"mode": "train", "dtype": "bf16"}, TRAIN),
    ({"mode": "train", "precision": "mixed-bf16", "activations": "bf16", "attention": "fused"}, TRAIN),
    (
        {"mode": "train", "precision": "mixed-bf16", "activations": "bf16", "recompute": "full", "batch": "8"}
        | {"gpus": "8", "zero": "3", "optimizer": "sgd-momentum"},
        TRAIN,
    ),
    ({"mode": "train", "precision": "mixed-bf16", "activations": "bf16", "tp": "8", "gpus": "8"}, TRAIN),
]


@pytest.fixture(scope="module")
def playground():
    sys.path.insert(0, str(ROOT / "docs" / "playground"))
    try:
        import playground
    finally:
        sys.path.pop(0)
    return playground


def run(playground, program: str, cost: dict, **request) -> dict:
    made = {"program": program, "parts": ["cost"], "cost": cost, **request}
    return json.loads(playground.run(json.dumps(made)))


def expected_parts(data: dict, names: tuple[str, ...]) -> tuple[list[int], int]:
    """The bar's parts from the CLI's JSON: serving = weights + KV cache (the rest of the memory to serve);
    training = weights + gradients + optimizer states + the activations (the rest of the memory a device holds)."""
    values = [data[name]["value"] for name in names]
    if names == SERVE:
        return [values[0], values[1] - values[0]], values[1]
    states = data["model_state_bytes"]["value"]
    assert states == sum(values[:3])
    return [*values[:3], values[3] - states], values[3]


@pytest.mark.parametrize(("settings", "names"), CASES)
def test_module_cost_equals_cli(playground, settings, names):
    result = run(playground, LLAMA, settings)
    cost = result["cost"]
    data = count_json("examples/llama2_7b.psym", *options_of(settings))
    parts, total = expected_parts(data, names)
    assert [p["value"] for p in cost["parts"]] == parts
    assert (cost["total"]["name"], cost["total"]["value"], cost["total"]["exact"]) == (names[-1], total, f"{total:,}")
    for row in cost["rows"]:
        assert row["value"] == data[row["name"]]["value"], row["name"]
        # exactly, however large (the whole run's FLOPs), with the unit where the readable one changed it
        unit = {"decode_ns_per_token": " ns", "train_seconds": " s", "decode_bytes": " bytes"}.get(row["name"], "")
        assert row["exact"] == f"{data[row['name']]['value']:,}{unit}"
    # the lines `paramsym count` prints for the same options, and the summary (which holds them) as well
    _, out, _ = cli("count", "examples/llama2_7b.psym", *options_of(settings))
    for line in cost["lines"]:
        assert line in out.splitlines()
    # the command the panel shows gives the same numbers
    shown = count_json("examples/llama2_7b.psym", *" ".join(cost["options"]).split())
    assert shown[names[-1]]["value"] == total


def test_module_text_units(playground):
    cost = run(playground, LLAMA, {"dtype": "bf16", "device": "h100"})["cost"]
    assert [p["text"] for p in cost["parts"]] == ["13.5 GB", "2.15 GB, 2 GiB"]  # bytes_text, as the CLI
    assert cost["total"]["text"] == "15.6 GB"
    rows = {r["name"]: r["text"] for r in cost["rows"]}
    assert rows["flops"] == "62.9 TFLOP" and rows["decode_ns_per_token"] == "4.59 ms"
    assert (
        cost["lines"][0] == "memory = weights 13.5 GB (bf16) + KV cache 2.15 GB (bf16, one sequence) = 15.6 GB to serve"
    )
    assert cost["context"] == {"symbol": "T", "value": 4096}


# (settings, device, verdict, devices, the memory that must fit): the verdicts are worked out here from the CLI's
# numbers and the devices' memory (core/devices.py: decimal GB)
FITS = [
    ({"dtype": "bf16"}, "h100", "fits", 1, "serve_memory_bytes"),
    ({"dtype": "bf16"}, "t4", "fits", 1, "serve_memory_bytes"),
    ({"dtype": "fp32"}, "t4", "needs", 2, "serve_memory_bytes"),
    ({"dtype": "fp32", "batch": "32"}, "a100-40gb", "needs", 5, "serve_memory_bytes"),
    ({"weights": "int4", "kv": "bf16"}, "l4", "fits", 1, "serve_memory_bytes"),
    ({"mode": "train", "precision": "mixed-bf16", "activations": "bf16"}, "h100", "no", None, "train_memory_bytes"),
    (
        {"mode": "train", "precision": "mixed-bf16", "activations": "bf16", "recompute": "full"}
        | {"gpus": "8", "zero": "3"},
        "h100",
        "fits",
        None,
        "train_memory_bytes",
    ),
]


@pytest.mark.parametrize(("settings", "device", "verdict", "count", "name"), FITS)
def test_module_fits_on(playground, settings, device, verdict, count, name):
    cost = run(playground, LLAMA, {**settings, "device": device})["cost"]
    need = count_json("examples/llama2_7b.psym", *options_of(settings))[name]["value"]
    memory = {"h100": 80e9, "t4": 16e9, "a100-40gb": 40e9, "l4": 24e9}[device]
    fits = cost["fits"]
    assert fits["verdict"] == verdict and fits["count"] == count
    if count:
        assert count == math.ceil(need / memory)
        assert fits["used"] == pytest.approx(need / (count * memory))
        assert f"{count}× {device}" in fits["text"] and f"{round(100 * need / (count * memory))} %" in fits["text"]
    else:
        assert fits["used"] == pytest.approx(need / memory)
    # without a device: a verdict for every device of the CLI's list
    every = {f["device"]: f for f in run(playground, LLAMA, settings)["cost"]["fits_all"]}
    assert every[device]["verdict"] == verdict


@pytest.mark.parametrize("name", ENCODERS)
def test_module_encoders_have_no_kv_cache(playground, name):
    result = run(playground, (ROOT / "examples" / f"{name}.psym").read_text(), {"dtype": "bf16"})
    cost = result["cost"]
    assert not cost["decoder"] and [p["key"] for p in cost["parts"]] == ["weights"]
    data = count_json(f"examples/{name}.psym", "--dtype", "bf16")
    assert cost["parts"][0]["value"] == data["param_bytes"]["value"] and "serve_memory_bytes" not in data
    assert not KV_BUDGETS & {o["name"] for o in result["budget_options"]}
    trained = run(playground, (ROOT / "examples" / f"{name}.psym").read_text(), {"mode": "train", "dtype": "bf16"})
    assert [p["key"] for p in trained["cost"]["parts"]] == ["weights", "grads", "optimizer", "activations"]


def test_module_cnn(playground):
    result = run(playground, CNN, {"mode": "train"}, values={"C": "32"})
    names = {o["name"] for o in result["budget_options"]}
    assert not KV_BUDGETS & names and "train_memory_bytes" in names
    assert [p["key"] for p in result["cost"]["parts"]] == ["weights", "grads", "optimizer", "activations"]
    served = run(playground, CNN, {})
    assert [p["key"] for p in served["cost"]["parts"]] == ["weights"]
    assert "train_memory_bytes" not in {o["name"] for o in served["budget_options"]}  # applies to training alone
    labels = {o["name"]: o["label"] for o in run(playground, LLAMA, {})["budget_options"]}
    assert labels["params"] == "parameters" and labels["kv_cache_bytes"] == "KV cache (bytes)"
    assert labels["serve_memory_bytes"] == "memory to serve (bytes)"


@pytest.mark.parametrize(
    ("cost", "option"),
    [
        ({"dtype": "bf17"}, ["--dtype", "bf17"]),
        ({"weights": "int4:g0"}, ["--weights", "int4:g0"]),
        ({"kv": "fp16:g64"}, ["--kv", "fp16:g64"]),
        ({"batch": "2B"}, ["--batch", "2B"]),
        ({"mode": "train", "tp": "3", "gpus": "8"}, ["--train", "--tp", "3", "--gpus", "8"]),
        ({"mode": "train", "mfu": "2"}, ["--train", "--mfu", "2"]),
        # (found while counting: the optimizer's states cannot be cut by ZeRO)
        (
            {"mode": "train", "optimizer": "adamw-8bit", "zero": "3", "gpus": "8"},
            ["--train", "--optimizer", "adamw-8bit", "--zero", "3", "--gpus", "8"],
        ),
    ],
)
def test_module_errors_are_the_cli_s(playground, cost, option):
    result = run(playground, LLAMA, cost)
    code, _, err = cli("count", "examples/llama2_7b.psym", *option)
    assert code == 2 and result["cost"] is None
    assert result["cost_error"]["text"] == err
    assert result["ok"]  # the rest of the page is counted (the CLI's defaults)


# (program, the solve box, the panel's settings, the CLI's solve)
SOLVES = [
    ({"symbol": "L", "budget": "7B", "on": "params"}, {}, ["--for", "L", "--budget", "7B", "--on", "params"]),
    (
        {"symbol": "L", "budget": "16GB", "on": "serve_memory_bytes"},
        {"dtype": "bf16"},
        ["--for", "L", "--budget", "16GB", "--on", "serve_memory_bytes", "--dtype", "bf16"],
    ),
    (
        {"symbol": "L", "budget": "16GB", "on": "serve_memory_bytes"},
        {"dtype": "fp32"},
        ["--for", "L", "--budget", "16GB", "--on", "serve_memory_bytes", "--dtype", "fp32"],
    ),
    (
        {"symbol": "B", "budget": "80GiB", "on": "train_memory_bytes"},
        {"mode": "train", "batch": "B", "precision": "mixed-bf16", "activations": "bf16", "attention": "fused"}
        | {"zero": "3", "gpus": "8"},
        ["--for", "B", "--budget", "80GiB", "--on", "train_memory_bytes", "--batch", "B", "--train"]
        + ["--precision", "mixed-bf16", "--activations", "bf16", "--attention", "fused", "--zero", "3", "--gpus", "8"],
    ),
]


@pytest.mark.parametrize(("solve", "cost", "args"), SOLVES)
def test_module_budgets_with_units(playground, solve, cost, args):
    result = run(playground, LLAMA, cost, solve=solve)
    expected = cli_json("solve", "examples/llama2_7b.psym", *args, "--format", "json")
    assert result["solve"]["value"] == expected["value"] and result["solve"]["budget"] == expected["budget"]


def test_module_solve_follows_the_format(playground):
    """A memory budget under bf16 is another answer than under fp32."""
    solve = {"symbol": "L", "budget": "16GB", "on": "serve_memory_bytes"}
    assert run(playground, LLAMA, {"dtype": "bf16"}, solve=solve)["solve"]["value"] == 32
    assert run(playground, LLAMA, {"dtype": "fp32"}, solve=solve)["solve"]["value"] == 15


def test_module_wrong_unit_is_the_cli_message(playground):
    result = run(playground, LLAMA, {}, solve={"symbol": "L", "budget": "16GB", "on": "params"})
    _, _, err = cli("solve", "examples/llama2_7b.psym", "--for", "L", "--budget", "16GB", "--on", "params")
    assert result["solve"]["error"]["text"] == err
    big = run(playground, CNN, {}, solve={"symbol": "C", "budget": "5M", "on": "params"})["solve"]
    assert big["readable"] == [f"{big['value']:,}"]  # under a million: the number alone
    huge = run(playground, "dense(1000->C)", {}, solve={"symbol": "C", "budget": "7B", "on": "params"})["solve"]
    assert huge["readable"] == ["7,000,000 (7 M)"]


# ---- in the browser --------------------------------------------------------------------------------------------


def open_link(page, base: str, program: str, **settings) -> None:
    fragment = "#program=" + quote(program) + "".join(f"&{k}={quote(v)}" for k, v in settings.items())
    open_playground(page, base, fragment)
    page.wait_for_selector("[data-panel=cost] .ps-cost-total b")


def shown_parts(page) -> dict[str, int]:
    return {
        s.get_attribute("data-key"): int(s.get_attribute("data-value"))
        for s in page.locator("[data-panel=cost] .ps-cost-seg").all()
    }


def change(page, selector: str, value: str, select: bool = False) -> None:
    before = runs(page)
    if select:
        page.select_option(selector, value)
    else:
        page.fill(selector, value)
    wait_for_run(page, before)


@pytest.fixture(scope="module")
def llama(browser):
    page = browser.page(1440, 1000)
    open_link(page, browser.base, LLAMA, **{"cost.dtype": "bf16", "cost.device": "h100"})
    return page


def test_panel_serving_equals_cli(llama):
    data = count_json("examples/llama2_7b.psym", "--dtype", "bf16")
    parts, total = expected_parts(data, SERVE)
    assert shown_parts(llama) == {"weights": parts[0], "kv": parts[1]}
    assert llama.get_attribute("[data-panel=cost] .ps-cost-total b", "data-value") == str(total)
    assert llama.inner_text("[data-panel=cost] .ps-cost-verdict") == "fits on 1× h100 (20 % used)"
    legend = llama.inner_text("[data-panel=cost] .ps-cost-legend")
    assert "weights 13.5 GB" in legend and "KV cache 2.15 GB, 2 GiB" in legend
    assert "--dtype bf16 --device h100" in llama.inner_text("[data-panel=cost] .ps-cost-command")
    _, out, _ = cli("count", "examples/llama2_7b.psym", "--dtype", "bf16", "--device", "h100")
    for line in llama.inner_text("[data-panel=cost] .ps-cost-lines").splitlines():
        assert line in out.splitlines()


def test_panel_bar_widths_are_proportional(llama):
    widths = {
        s.get_attribute("data-key"): s.bounding_box()["width"]
        for s in llama.locator("[data-panel=cost] .ps-cost-seg").all()
    }
    bar = llama.locator("[data-panel=cost] .ps-cost-bar").bounding_box()
    cap = llama.locator("[data-panel=cost] .ps-cost-cap").bounding_box()
    parts = shown_parts(llama)
    scale = max(sum(parts.values()), 80 * 10**9)  # the device's memory: the bar's end
    for key, value in parts.items():
        assert widths[key] == pytest.approx(bar["width"] * value / scale, abs=1.5)
    assert cap["x"] - bar["x"] == pytest.approx(bar["width"], abs=3)  # 80 GB: the larger, the end of the bar


def test_panel_controls_training(llama):
    llama.check("input[name=ps-cost-mode][value=train]")
    llama.wait_for_selector("[data-panel=cost] .ps-cost-seg[data-key=grads]")
    change(llama, "[data-panel=cost] [data-key=precision]", "mixed-bf16", select=True)
    change(llama, "[data-panel=cost] [data-key=optimizer]", "sgd-momentum", select=True)
    change(llama, "[data-panel=cost] [data-key=recompute]", "full", select=True)
    change(llama, "[data-panel=cost] [data-key=gpus]", "8")
    change(llama, "[data-panel=cost] [data-key=zero]", "3", select=True)
    change(llama, "[data-panel=cost] [data-key=batch]", "4")
    change(llama, "[data-panel=cost] [data-key=tokens]", "1T")
    change(llama, "[data-panel=cost] [data-key=mfu]", "0.4")
    options = ["--train", "--dtype", "bf16", "--precision", "mixed-bf16", "--optimizer", "sgd-momentum"]
    options += ["--recompute", "full", "--gpus", "8", "--zero", "3", "--batch", "4", "--tokens", "1T", "--mfu", "0.4"]
    data = count_json("examples/llama2_7b.psym", *options, "--device", "h100")
    parts, total = expected_parts(data, TRAIN)
    assert shown_parts(llama) == dict(zip(["weights", "grads", "optimizer", "activations"], parts, strict=True))
    assert llama.get_attribute("[data-panel=cost] .ps-cost-total b", "data-value") == str(total)
    assert llama.inner_text("[data-panel=cost] .ps-cost-verdict").startswith("fits on 8× h100 (")
    flops = llama.locator("[data-panel=cost] .ps-cost-rows tr[data-name=train_flops_total] td").nth(1).inner_text()
    assert flops == f"{data['train_flops_total']['value']:,}"  # 10^23: exactly, not as a float
    rows = llama.locator("[data-panel=cost] .ps-cost-rows tr[data-name=train_seconds] td").first.inner_text()
    _, out, _ = cli("count", "examples/llama2_7b.psym", *options, "--device", "h100")
    assert f"{rows} on 8 h100" in out
    change(llama, "[data-panel=cost] [data-key=tp]", "2")
    change(llama, "[data-panel=cost] [data-key=pp]", "1")
    data = count_json("examples/llama2_7b.psym", *options, "--tp", "2", "--device", "h100")
    assert llama.get_attribute("[data-panel=cost] .ps-cost-total b", "data-value") == str(
        data["train_memory_bytes"]["value"]
    )
    # a device that is too small
    change(llama, "[data-panel=cost] [data-key=device]", "t4", select=True)
    change(llama, "[data-panel=cost] [data-key=tp]", "1")
    change(llama, "[data-panel=cost] [data-key=zero]", "0", select=True)
    change(llama, "[data-panel=cost] [data-key=gpus]", "1")
    assert llama.inner_text("[data-panel=cost] .ps-cost-verdict").startswith("does not fit on 1× t4")


def test_panel_error_is_the_cli_s(llama):
    change(llama, "[data-panel=cost] [data-key=dtype]", "bf17")
    _, _, err = cli("count", "examples/llama2_7b.psym", "--dtype", "bf17")
    assert llama.inner_text("[data-panel=cost] .ps-cost-error") == err
    assert "ps-cost-stale" in llama.get_attribute("[data-panel=cost] .ps-cost-out", "class")
    change(llama, "[data-panel=cost] [data-key=dtype]", "bf16")
    assert llama.is_hidden("[data-panel=cost] .ps-cost-error")


def test_panel_settings_survive_a_link(llama, browser):
    change(llama, "[data-panel=cost] [data-key=weights]", "int4")
    link = llama.evaluate("location.href")
    assert "cost.mode=train" in link and "cost.weights=int4" in link and "cost.precision=mixed-bf16" in link
    total = llama.get_attribute("[data-panel=cost] .ps-cost-total b", "data-value")
    other = browser.page(1024, 900)
    other.goto(link)
    other.wait_for_function("window.playgroundTimings && window.playgroundTimings.firstResult", timeout=60_000)
    other.wait_for_selector("[data-panel=cost] .ps-cost-total b")
    assert other.is_checked("input[name=ps-cost-mode][value=train]")
    for key, value in [
        ("weights", "int4"),
        ("precision", "mixed-bf16"),
        ("optimizer", "sgd-momentum"),
        ("device", "t4"),
    ]:
        assert other.input_value(f"[data-panel=cost] [data-key={key}]") == value
    assert other.get_attribute("[data-panel=cost] .ps-cost-total b", "data-value") == total
    other.context.close()


@pytest.mark.parametrize("name", ENCODERS)
def test_panel_encoders_show_no_kv_cache(browser, name):
    page = browser.page(1024, 900)
    open_link(page, browser.base, (ROOT / "examples" / f"{name}.psym").read_text(), **{"cost.dtype": "bf16"})
    assert list(shown_parts(page)) == ["weights"]
    assert page.is_hidden("[data-panel=cost] [data-for=kv]")
    assert "KV cache" not in page.inner_text("[data-panel=cost] .ps-cost-out")
    on = page.locator("#ps-solve-on option").evaluate_all("os => os.map(o => o.value)")
    assert not KV_BUDGETS & set(on) and "params" in on
    page.context.close()


def test_panel_cnn_offers_no_kv_budget(browser):
    page = browser.page(1024, 900)
    open_link(page, browser.base, CNN, **{"cost.mode": "train", "set.C": "32"})
    on = page.locator("#ps-solve-on option").evaluate_all("os => os.map(o => [o.value, o.textContent])")
    names = {value for value, _ in on}
    assert not KV_BUDGETS & names and "train_memory_bytes" in names
    assert dict(on)["params"] == "parameters" and dict(on)["macs"] == "MACs"
    assert list(shown_parts(page)) == ["weights", "grads", "optimizer", "activations"]
    page.context.close()


@pytest.mark.parametrize(("solve", "cost", "args"), SOLVES)
def test_page_budgets_with_units(browser, solve, cost, args):
    page = browser.page(1024, 900)
    open_link(page, browser.base, LLAMA, **{f"cost.{k}": v for k, v in cost.items()})
    page.select_option("#ps-solve-symbol", solve["symbol"])
    page.select_option("#ps-solve-on", solve["on"])
    before = runs(page)
    page.fill("#ps-solve-budget", solve["budget"])
    wait_for_run(page, before)
    page.wait_for_selector("#ps-answer")
    expected = cli_json("solve", "examples/llama2_7b.psym", *args, "--format", "json")
    assert page.inner_text("#ps-answer") == f"{solve['symbol']} = {expected['value']:,}"
    page.context.close()


def test_page_wrong_unit_and_use_this_value(browser):
    page = browser.page(1920, 1080)
    open_link(page, browser.base, LLAMA, **{"cost.dtype": "bf16"})
    page.select_option("#ps-solve-symbol", "L")
    labels = page.locator("#ps-solve-on option").evaluate_all(
        "os => Object.fromEntries(os.map(o => [o.value, o.textContent]))"
    )
    assert labels["serve_memory_bytes"] == "memory to serve (bytes)" and labels["kv_cache_bytes"] == "KV cache (bytes)"
    before = runs(page)
    page.fill("#ps-solve-budget", "16GB")
    wait_for_run(page, before)
    _, _, err = cli("solve", "examples/llama2_7b.psym", "--for", "L", "--budget", "16GB", "--on", "params")
    assert page.inner_text("#ps-solve-result") == err
    change(page, "#ps-solve-on", "serve_memory_bytes", select=True)
    assert page.inner_text("#ps-answer") == "L = 32"
    page.screenshot(path="/tmp/pg-cost-solve-1920.png", full_page=True)
    before = runs(page)
    page.click("#ps-use-value")
    wait_for_run(page, before)
    assert page.input_value("#ps-values input[data-name=L]") == "32" and page.input_value("#ps-solve-budget") == ""
    data = count_json("examples/llama2_7b.psym", "--set", "L=32", "--dtype", "bf16")
    assert page.inner_text("#ps-totals [data-q=params]") == f"{data['params']['value']:,}"
    assert page.get_attribute("[data-panel=cost] .ps-cost-total b", "data-value") == str(
        data["serve_memory_bytes"]["value"]
    )
    # a larger budget, the answer used: the totals follow
    change(page, "#ps-solve-budget", "20GB")
    assert page.inner_text("#ps-answer") == "L = 41"
    before = runs(page)
    page.click("#ps-use-value")
    wait_for_run(page, before)
    data = count_json("examples/llama2_7b.psym", "--set", "L=41", "--dtype", "bf16")
    assert page.inner_text("#ps-totals [data-q=params]") == f"{data['params']['value']:,}"
    page.context.close()


def test_context_box_sets_the_symbol(llama):
    change(llama, "[data-panel=cost] [data-key=dtype]", "bf16")
    llama.check("input[name=ps-cost-mode][value=serve]")
    llama.wait_for_selector("[data-panel=cost] .ps-cost-seg[data-key=kv]")
    change(llama, "[data-panel=cost] [data-key=batch]", "2")
    change(llama, "[data-panel=cost] [data-for=context] input", "8192")
    assert llama.input_value("#ps-values input[data-name=T]") == "8192"
    data = count_json(
        "examples/llama2_7b.psym", "--set", "T=8192", "--dtype", "bf16", "--weights", "int4", "--batch", "2"
    )
    assert shown_parts(llama)["kv"] == data["serve_memory_bytes"]["value"] - data["param_bytes"]["value"]


@pytest.mark.parametrize("width", [390, 1024, 1920])
def test_screenshots(browser, width):
    page = browser.page(width, 1000)
    settings = {"cost.dtype": "bf16", "cost.device": "h100", "cost.batch": "8"}
    open_link(page, browser.base, LLAMA, **settings)
    panel = page.locator("[data-panel=cost]")
    box = panel.bounding_box()
    assert box["x"] + box["width"] <= width  # within the screen, and nothing of it wider than itself
    assert panel.evaluate(
        "e => [...e.querySelectorAll('*')].every(c => c.getBoundingClientRect().right <= "
        "e.getBoundingClientRect().right + 1 || c.closest('pre'))"
    )
    panel.screenshot(path=f"/tmp/pg-cost-{width}.png")
    page.screenshot(path=f"/tmp/pg-cost-page-{width}.png", full_page=True)
    page.context.close()
