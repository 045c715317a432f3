// The memory-and-cost panel: how the network is run (serving or training, number formats, batch, GPUs, a device)
// and what that takes: a stacked bar of the memory against the device's capacity, whether it fits, the FLOPs and
// times, and the lines `paramsym count` prints for the same options. The settings are the command line's run
// options (--dtype, --train, --batch, ...): playground.py builds the Setup with the CLI's own rules
// (core/setup.py, build_setup), so a bad format gets the CLI's message, and the solve box uses the same setup.
const FORMATS = ["fp32", "bf16", "fp16", "fp8", "int8", "int4", "nf4"];
// the chart colours of style.css, which follow the light and dark schemes
const SEGMENTS = { weights: "var(--ps-chart-1)", grads: "var(--ps-chart-5)", optimizer: "var(--ps-chart-2)",
  activations: "var(--ps-chart-3)", kv: "var(--ps-chart-4)" };
const TRAIN_ONLY = ["optimizer", "precision", "recompute", "gpus", "zero", "tp", "pp", "tokens", "mfu"];

// every setting is a string (it round-trips the address as cost.key=value); the defaults are the CLI's
const defaults = {
  mode: "serve", dtype: "fp32", weights: "", kv: "", activations: "", batch: "1", device: "", attention: "math",
  optimizer: "adamw", precision: "fp32", recompute: "none", gpus: "1", zero: "0", tp: "1", pp: "1", tokens: "", mfu: "",
};

let root = null;
let current = null;  // the settings (the page's state.panels.cost)

function select(key, options, label, title) {
  const opts = options.map(([value, text]) => `<option value="${value}">${text}</option>`).join("");
  return `<label data-for="${key}" title="${title}">${label} <select data-key="${key}">${opts}</select></label>`;
}

function text(key, label, title, size = 6, list = "") {
  return `<label data-for="${key}" title="${title}">${label} <input data-key="${key}" size="${size}"` +
    `${list ? ` list="${list}"` : ""} spellcheck="false" autocomplete="off"></label>`;
}

const pairs = (names) => names.map((n) => [n, n]);

const cost = {
  id: "cost",
  defaults,
  mount(element, settings, ctx) {
    root = element;
    current = settings;
    if (!element) return;
    const formats = `<datalist id="ps-cost-formats">${FORMATS.map((f) => `<option value="${f}">`).join("")}` +
      '<option value="int4:g64:bf16"></datalist>';
    element.innerHTML = `<h3>Memory and cost <small>(<code>--dtype</code>, <code>--train</code>, … as on the command line)</small></h3>
      ${formats}
      <div class="ps-cost-controls">
        <div class="ps-cost-mode" role="radiogroup" aria-label="serving or training">
          <label><input type="radio" name="ps-cost-mode" value="serve"> serve</label>
          <label><input type="radio" name="ps-cost-mode" value="train"> train</label>
        </div>
        ${text("dtype", "all", "--dtype: one format for the weights, the KV cache and the activations", 6, "ps-cost-formats")}
        ${text("weights", "weights", "--weights: the weights' format (empty: as all)", 6, "ps-cost-formats")}
        ${text("kv", "KV cache", "--kv: the KV cache's format (empty: as all)", 6, "ps-cost-formats")}
        ${text("activations", "activations", "--activations: the activations' format (empty: as all)", 6, "ps-cost-formats")}
        ${text("batch", "batch", "--batch: sequences (or images) at once: a number or a symbol such as B", 4)}
        <label data-for="context" hidden>context <code class="ps-cost-context-name"></code>
          <input data-context size="6" spellcheck="false" autocomplete="off"></label>
        ${select("attention", pairs(["math", "fused"]), "attention", "--attention: math (every query-key pair) or fused (a fused causal kernel)")}
        <label data-for="device" title="--device: the device the memory must fit on, and its roofline times">device
          <select data-key="device"><option value="">— none</option></select></label>
      </div>
      <div class="ps-cost-controls ps-cost-train">
        ${select("optimizer", pairs(["adamw", "adam", "sgd", "sgd-momentum", "adafactor", "adamw-8bit"]), "optimizer", "--optimizer")}
        ${select("precision", pairs(["fp32", "mixed-bf16", "mixed-fp16", "bf16"]), "precision", "--precision: where the weights, gradients and optimizer states are kept")}
        ${select("recompute", pairs(["none", "selective", "full"]), "recompute", "--recompute: activation recomputation (checkpointing)")}
        ${text("gpus", "GPUs", "--gpus: devices the training is spread over", 4)}
        ${select("zero", [["0", "0"], ["1", "1"], ["2", "2"], ["3", "3"]], "ZeRO", "--zero: DeepSpeed's ZeRO stage")}
        ${text("tp", "tp", "--tp: tensor-parallel degree", 3)}
        ${text("pp", "pp", "--pp: pipeline-parallel degree", 3)}
        ${text("tokens", "tokens", "--tokens: training tokens, for the FLOPs and time of the whole run (1T)", 5)}
        ${text("mfu", "MFU", "--mfu: the fraction of the device's peak reached (0.4)", 4)}
      </div>
      <pre class="ps-cost-error" hidden></pre>
      <div class="ps-cost-out">
        <div class="ps-cost-verdict"></div>
        <div class="ps-cost-total"></div>
        <div class="ps-cost-bar" role="img"></div>
        <ul class="ps-cost-legend"></ul>
        <div class="ps-cost-devices"></div>
        <table class="ps-cost-rows"></table>
        <div class="ps-cost-cli">the same on the command line:
          <pre class="ps-small ps-cost-command"></pre><pre class="ps-small ps-cost-lines"></pre></div>
      </div>`;
    for (const radio of element.querySelectorAll('input[name="ps-cost-mode"]')) {
      radio.addEventListener("change", () => { current.mode = radio.value; showMode(); ctx.changed(); });
    }
    for (const input of element.querySelectorAll("[data-key]")) {
      const event = input.tagName === "SELECT" ? "change" : "input";
      input.addEventListener(event, () => { current[input.dataset.key] = input.value.trim(); ctx.changed(); });
    }
    element.querySelector("[data-context]").addEventListener("input", (event) => {
      const name = element.querySelector(".ps-cost-context-name").textContent;
      if (name && event.target.value.trim()) ctx.setValue(name, event.target.value.trim());
    });
    fill();
  },
  // the run options for playground.py (its cost_setup leaves out what applies to training alone when serving)
  request(settings) {
    if (root && settings !== current) { current = settings; fill(); }  // new settings: a link was opened
    return { ...settings };
  },
  render(result, ctx) {
    if (!root) return;
    const esc = ctx.escapeHtml;
    const out = root.querySelector(".ps-cost-out"), error = root.querySelector(".ps-cost-error");
    if (!result.ok) { out.classList.add("ps-cost-stale"); return; }
    if (result.cost_error) {
      error.textContent = result.cost_error.text;
      error.hidden = false;
      out.classList.add("ps-cost-stale");
      return;
    }
    error.hidden = true;
    out.classList.remove("ps-cost-stale");
    const c = result.cost;
    if (!c) return;
    fillDevices(c.devices);
    // only what applies: no KV cache for a network that does not decode
    root.querySelector('[data-for="kv"]').hidden = !c.decoder;
    const context = root.querySelector('[data-for="context"]');
    context.hidden = !c.context;
    if (c.context) {
      root.querySelector(".ps-cost-context-name").textContent = c.context.symbol;
      const input = context.querySelector("input");
      if (document.activeElement !== input) input.value = c.context.value ?? "";
    }
    const verdict = root.querySelector(".ps-cost-verdict");
    verdict.className = "ps-cost-verdict" + (c.fits ? ` ps-cost-${c.fits.verdict}` : "");
    verdict.textContent = c.fits ? c.fits.text : "";
    verdict.hidden = !c.fits;
    const what = c.mode === "train" ? "training memory a device" : c.decoder ? "memory to serve" : "memory of the weights";
    root.querySelector(".ps-cost-total").innerHTML = `${what}: <b data-value="${c.total.value ?? ""}">${esc(c.total.text)}</b>` +
      (c.total.value != null ? ` <span class="ps-muted">(${esc(c.total.exact)} bytes)</span>` : "");
    drawBar(c, esc);
    root.querySelector(".ps-cost-devices").innerHTML = c.device ? "" : "fits on: " + c.fits_all.map((f) =>
      `<span class="ps-cost-chip ps-cost-${f.verdict}" data-device="${esc(f.device)}" title="${esc(f.text)}">${esc(f.short)}</span>`).join(" ");
    root.querySelector(".ps-cost-rows").innerHTML = c.rows.map((r) =>
      `<tr data-name="${r.name}"><th>${esc(r.label)}</th><td>${esc(r.text)}</td>` +
      `<td class="ps-muted">${esc(r.exact)}</td></tr>`).join("");
    root.querySelector(".ps-cost-command").textContent = "paramsym count PROGRAM " + c.options.join(" ");
    root.querySelector(".ps-cost-lines").textContent = c.lines.join("\n");
  },
};

// the stacked bar: one segment a part of the memory, as wide as its share of the larger of the total and the
// device's memory; a line at the device's memory
function drawBar(c, esc) {
  const bar = root.querySelector(".ps-cost-bar"), legend = root.querySelector(".ps-cost-legend");
  const known = c.parts.every((p) => p.value != null);
  const capacity = c.device && c.device.memory;
  const scale = Math.max(known ? c.parts.reduce((s, p) => s + p.value, 0) : 0, capacity || 0);
  let html = "";
  if (known && scale > 0) {
    for (const p of c.parts) {
      const width = (100 * p.value) / scale;
      html += `<div class="ps-cost-seg" data-key="${p.key}" data-value="${p.value}" style="width:${width}%;background:${SEGMENTS[p.key]}"` +
        ` title="${esc(p.label)}: ${esc(p.text)}"></div>`;
    }
    if (capacity) {
      html += `<div class="ps-cost-cap" style="left:${Math.min(100, (100 * capacity) / scale)}%" title="${esc(c.device.name)}: ${esc(c.device.text)}">` +
        `<span>${esc(c.device.name)} ${esc(c.device.text)}</span></div>`;
    }
  }
  bar.innerHTML = html;
  bar.hidden = !html;
  bar.setAttribute("aria-label", c.parts.map((p) => `${p.label} ${p.text}`).join(", "));
  legend.innerHTML = c.parts.map((p) => `<li data-key="${p.key}"><span class="ps-cost-swatch" style="background:${SEGMENTS[p.key]}"></span>` +
    `${esc(p.label)} <b>${esc(p.text)}</b></li>`).join("");
}

let devicesFilled = false;
function fillDevices(devices) {
  if (devicesFilled || !devices) return;
  const menu = root.querySelector('select[data-key="device"]');
  for (const option of [...menu.options]) if (option.value) option.remove();
  for (const [name, label] of devices) menu.add(new Option(label, name));
  menu.value = current.device || "";
  devicesFilled = true;
}

function showMode() {
  root.querySelector(".ps-cost-train").hidden = current.mode !== "train";
  for (const key of TRAIN_ONLY) root.querySelector(`[data-for="${key}"]`).hidden = current.mode !== "train";
}

// the controls show the settings (from the address, or the defaults)
function fill() {
  for (const radio of root.querySelectorAll('input[name="ps-cost-mode"]')) radio.checked = radio.value === (current.mode || "serve");
  for (const input of root.querySelectorAll("[data-key]")) {
    const value = current[input.dataset.key] ?? "";
    if (input.tagName === "SELECT" && input.dataset.key === "device" && value && !input.querySelector(`option[value="${CSS.escape(value)}"]`)) {
      input.add(new Option(value, value));  // from the address, before the menu is filled
    }
    input.value = value;
  }
  for (const name of ["weights", "kv", "activations"]) root.querySelector(`[data-key="${name}"]`).placeholder = "as all";
  showMode();
}

export default cost;
