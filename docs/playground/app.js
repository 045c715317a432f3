// The playground page: loads Pyodide's core, the wheels served beside the page and playground.py,
// then runs paramsym on every edit. Nothing is fetched from anywhere but this site.
import katex from "./vendor/katex/katex.mjs";

const app = document.getElementById("ps-app");
const BASE = new URL(app.dataset.base, document.baseURI);
const $ = (id) => document.getElementById(id);
const els = {
  status: $("ps-status"), program: $("ps-program"), highlight: $("ps-highlight"), caret: $("ps-caret"),
  error: $("ps-error"), values: $("ps-values"), examples: $("ps-examples"), convention: $("ps-convention"),
  share: $("ps-share"), solveSymbol: $("ps-solve-symbol"), solveBudget: $("ps-solve-budget"),
  solveOn: $("ps-solve-on"), solveMode: $("ps-solve-mode"), solveAnswer: $("ps-solve-answer"),
  solveResult: $("ps-solve-result"), totals: $("ps-totals"), formula: $("ps-formula"), table: $("ps-table"),
  explain: $("ps-explain"), derivation: $("ps-derivation"), latexText: $("ps-latex-text"), timing: $("ps-timing"),
};

const SEED = "conv3x3(32->64, bias) > pool > conv5x5(->40)";
const SHORT_EXAMPLES = [
  ["seed: conv3x3 > pool > conv5x5", SEED],
  ["symbolic: conv2d(C_in->C_out, k=k, bias)", "conv2d(C_in->C_out, k=k, bias)"],
  ["budget: the widest net within 500,000 params",
    "conv3x3(3->C, bias) > conv3x3(->2C, bias) > conv3x3(->4C, bias) > gap > dense(->10, bias)"],
  ["CIFAR CNN with a width C", "let C = 32\ninput(32x32x3)\n  > conv3x3(->C, pad=1) > bn > relu > maxpool2x2\n" +
    "  > conv3x3(->2C, pad=1) > bn > relu > maxpool2x2\n  > gap > dense(->10, bias)"],
];

// The state: what the inputs hold; it is mirrored in the address (#program=...&set.C=...).
const state = { program: SEED, convention: "torch", values: {}, solve: { symbol: "", budget: "", on: "params", mode: "at-most" },
  tab: "table" };
let py = null;            // playground.run
let lastTokens = [];      // the tokens of the last text that was run, and that text
let lastText = "";
let pending = false;
let editStarted = null;   // performance.now() of the input that the next run answers
const timings = window.playgroundTimings = { edits: [] };
window.playgroundPending = () => pending;

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.has("program")) return false;
  state.program = params.get("program");
  state.convention = params.get("convention") || "torch";
  state.values = {};
  for (const [key, value] of params) if (key.startsWith("set.")) state.values[key.slice(4)] = value;
  state.solve = { symbol: params.get("for") || "", budget: params.get("budget") || "",
    on: params.get("on") || "params", mode: params.get("mode") || "at-most" };
  state.tab = params.get("tab") || "table";
  return true;
}

function writeHash() {
  const params = new URLSearchParams();
  params.set("program", state.program);
  if (state.convention !== "torch") params.set("convention", state.convention);
  for (const [name, value] of Object.entries(state.values)) if (value) params.set("set." + name, value);
  if (state.solve.budget) {
    params.set("for", state.solve.symbol); params.set("budget", state.solve.budget);
    if (state.solve.on !== "params") params.set("on", state.solve.on);
    if (state.solve.mode !== "at-most") params.set("mode", state.solve.mode);
  }
  if (state.tab !== "table") params.set("tab", state.tab);
  history.replaceState(null, "", "#" + params.toString().replace(/\+/g, "%20"));
}

const escapeHtml = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

// The highlighted copy of the text under the (transparent) textarea; `marks` are [start, end, class].
function paint(text, marks) {
  let html = "", at = 0;
  for (const [start, end, cls] of marks) {
    if (start < at || end > text.length) continue;
    html += escapeHtml(text.slice(at, start)) + `<span class="tok-${cls}">${escapeHtml(text.slice(start, end))}</span>`;
    at = end;
  }
  els.highlight.innerHTML = html + escapeHtml(text.slice(at)) + "\n ";
}

// While Python works on an edit, keep the colours of the unchanged text before and after it.
function paintShifted(text) {
  let prefix = 0;
  const n = Math.min(text.length, lastText.length);
  while (prefix < n && text[prefix] === lastText[prefix]) prefix++;
  let suffix = 0;
  while (suffix < n - prefix && text[text.length - 1 - suffix] === lastText[lastText.length - 1 - suffix]) suffix++;
  const delta = text.length - lastText.length, cut = lastText.length - suffix;
  const marks = [];
  for (const [s, e, c] of lastTokens) {
    if (e <= prefix) marks.push([s, e, c]);
    else if (s >= cut) marks.push([s + delta, e + delta, c]);
  }
  paint(text, marks);
}

function showCaret(error) {
  if (!error || !error.line || error.where !== "program") { els.caret.hidden = true; return; }
  // find the character in the highlighted copy: offset of line/column in the text
  const lines = state.program.split("\n");
  let offset = 0;
  for (let i = 0; i < error.line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  offset += error.column - 1;
  const marks = lastTokens.filter(([s, e]) => e <= offset || s > offset);
  marks.push([offset, Math.min(offset + 1, state.program.length), "at-error"]);
  marks.sort((a, b) => a[0] - b[0]);
  paint(state.program, marks);
  const spot = els.highlight.querySelector(".tok-at-error");
  const style = getComputedStyle(els.highlight);
  const charWidth = measureChar();
  const left = parseFloat(style.paddingLeft) + (error.column - 0.5) * charWidth;  // the middle of the character
  const lineHeight = parseFloat(style.lineHeight);
  els.caret.style.left = `${left}px`;
  els.caret.style.top = `${parseFloat(style.paddingTop) + error.line * lineHeight + 3}px`;
  els.caret.dataset.line = error.line;
  els.caret.dataset.column = error.column;
  els.caret.title = error.message;
  els.caret.hidden = false;
  if (spot) spot.title = error.message;
}

let charWidthCache = 0;
function measureChar() {
  if (charWidthCache) return charWidthCache;
  const probe = document.createElement("span");
  probe.textContent = "x".repeat(100);
  els.highlight.appendChild(probe);
  charWidthCache = probe.getBoundingClientRect().width / 100;
  probe.remove();
  return charWidthCache;
}

function renderValues(symbols) {
  const names = Object.keys(symbols);
  const shown = [...els.values.querySelectorAll("input")].map((i) => i.dataset.name).join(",");
  if (shown !== names.join(",")) {
    if (!names.length) {
      els.values.innerHTML = '<span class="ps-muted">The program has no symbols.</span>';
    } else {
      els.values.innerHTML = names.map((name) => `<label><code>${escapeHtml(name)}</code> = <input data-name="${escapeHtml(name)}" size="8"></label>`).join("");
      for (const input of els.values.querySelectorAll("input")) {
        input.value = state.values[input.dataset.name] || "";
        input.addEventListener("input", () => { state.values[input.dataset.name] = input.value; schedule(); });
      }
    }
  }
  const current = els.solveSymbol.value || state.solve.symbol;
  const options = names.map((n) => `<option>${escapeHtml(n)}</option>`).join("");
  if (els.solveSymbol.dataset.names !== names.join(",")) {
    els.solveSymbol.innerHTML = options;
    els.solveSymbol.dataset.names = names.join(",");
  }
  if (names.includes(current)) els.solveSymbol.value = current;
  state.solve.symbol = els.solveSymbol.value;
  const unknown = state.solve.budget ? els.solveSymbol.value || state.solve.symbol : "";
  for (const input of els.values.querySelectorAll("input")) {
    const fallback = symbols[input.dataset.name];
    const solved = input.dataset.name === unknown;
    input.disabled = solved;
    input.placeholder = solved ? "solved for" : fallback == null ? "free" : `${fallback} (let)`;
  }
}

function renderBudgets(list) {
  if (els.solveOn.dataset.filled) return;
  els.solveOn.innerHTML = list.map((q) => `<option>${q}</option>`).join("");
  els.solveOn.value = state.solve.on;
  els.solveOn.dataset.filled = "1";
}

function renderTable(result) {
  const rows = result.rows;
  const withFormula = rows.some((r) => r.formula);
  const withState = rows.some((r) => r.state !== "0");
  const withRf = rows.some((r) => r.rf);
  const head = ["#", "layer", "output", "params", ...(withFormula ? ["formula"] : []), ...(withState ? ["state"] : []),
    "fan-in", "MACs", ...(withRf ? ["RF"] : [])];
  let html = "<thead><tr>" + head.map((h) => `<th>${h}</th>`).join("") + "</tr></thead><tbody>";
  for (const r of rows) {
    html += `<tr data-line="${r.line}" data-column="${r.column}"><td class="n">${r.index}</td><td title="${escapeHtml(r.path)} (line ${r.line}, column ${r.column})"><code>${escapeHtml(r.name)}</code></td>` +
      `<td>${escapeHtml(r.output)}</td><td class="n">${escapeHtml(r.params)}</td>` +
      (withFormula ? `<td class="f">${escapeHtml(r.formula)}</td>` : "") +
      (withState ? `<td class="n">${escapeHtml(r.state)}</td>` : "") +
      `<td class="n">${escapeHtml(r.fan_in)}</td><td class="n">${escapeHtml(r.macs)}</td>` +
      (withRf ? `<td class="n">${escapeHtml(String(r.rf))}</td>` : "") + "</tr>";
  }
  if (result.layers > rows.length) html += `<tr><td colspan="${head.length}">… ${result.layers - rows.length} more layers (the totals count them all)</td></tr>`;
  els.table.innerHTML = html + "</tbody>";
}

function tex(target, source) {
  katex.render(source, target, { displayMode: true, throwOnError: false, output: "htmlAndMathml" });
}

function renderTotals(result) {
  const big = (label, q, cls) => {
    const text = q.value != null ? q.value.toLocaleString("en-US") : q.expr == null ? "?" : q.expr.replace(/\*\*/g, "^");
    return `<div class="ps-total ${cls}"><div class="ps-total-label">${label}</div><div class="ps-total-value" data-q="${cls}">${escapeHtml(text)}</div></div>`;
  };
  els.totals.innerHTML = big("parameters", result.params, "params") +
    (result.state.value !== 0 ? big("state", result.state, "state") : "") +
    (state.convention === "keras" ? big("total", result.total, "total") : "") + big("MACs", result.macs, "macs") +
    `<pre class="ps-summary">${escapeHtml(result.summary.join("\n"))}</pre>`;
}

function render(result) {
  lastTokens = result.tokens;
  lastText = state.program;
  paint(state.program, result.tokens);
  app.classList.toggle("ps-has-error", !result.ok);
  if (result.error) {
    els.error.textContent = result.error.text;
    els.error.hidden = false;
    els.error.dataset.where = result.error.where;
    showCaret(result.error);
    els.timing.textContent = `${result.ms.toFixed(0)} ms in Python`;
    return;
  }
  els.error.hidden = true;
  els.caret.hidden = true;
  renderValues(result.symbols);
  for (const input of [els.solveSymbol, els.solveBudget, els.solveOn, els.solveMode]) {
    input.disabled = !Object.keys(result.symbols).length;
  }
  renderBudgets(result.budgets);
  renderTotals(result);
  renderTable(result);
  if (result.equation) tex(els.formula, result.equation.equation);
  else els.formula.textContent = result.equation_error ? result.equation_error.text : "";
  if (result.latex) {
    els.latexText.textContent = result.latex.text;
    if (result.latex.derivation) tex(els.derivation, result.latex.derivation); else els.derivation.textContent = "";
  } else if (result.latex_error) {
    els.latexText.textContent = result.latex_error.text;
  }
  if (result.explain != null) els.explain.textContent = result.explain;
  else if (result.explain_error) els.explain.textContent = result.explain_error.text;
  const solved = result.solve;
  if (!solved) {
    els.solveAnswer.textContent = state.solve.budget ? "" : "Give a budget to solve for a symbol.";
    els.solveResult.hidden = true;
  } else if (solved.error) {
    els.solveAnswer.innerHTML = `<span class="ps-bad">${escapeHtml(solved.error.message)}</span>`;
    els.solveResult.textContent = solved.error.text;
    els.solveResult.hidden = false;
  } else {
    const answer = solved.mode === "exact" ? (solved.values || []).join(", ") : solved.value;
    els.solveAnswer.innerHTML = `<span class="ps-answer" id="ps-answer">${escapeHtml(solved.symbol)} = ${escapeHtml(String(answer))}</span>`;
    els.solveResult.textContent = solved.text;
    els.solveResult.hidden = false;
  }
  els.timing.textContent = `${result.layers} layers · ${result.ms.toFixed(0)} ms in Python` +
    (timings.firstResultText ? ` · ${timings.firstResultText}` : "");
}

function run() {
  pending = false;
  if (!py) return;
  const started = editStarted ?? performance.now();
  editStarted = null;
  const request = { program: state.program, convention: state.convention, values: state.values, solve: state.solve,
    parts: ["equation", ...(state.tab === "latex" || state.tab === "explain" ? [state.tab] : [])] };
  const called = performance.now();
  const result = JSON.parse(py(JSON.stringify(request)));
  const answered = performance.now();
  render(result);
  writeHash();
  const done = performance.now();
  if (timings.firstResult == null) {
    timings.firstResult = done;
    els.status.textContent = `Ready: paramsym runs in your browser (Pyodide ${timings.pyodide}, Python ${timings.python}), ` +
      "with nothing sent anywhere. Edit the program: everything below follows.";
    timings.firstResultText = `first result ${(done / 1000).toFixed(1)} s after the page began to load`;
  } else {
    timings.edits.push({ ms: done - started, python: result.ms, call: answered - called, render: done - answered,
      waited: called - started, layers: result.layers ?? null });
  }
  timings.last = { ms: done - started, python: result.ms, ok: result.ok };
  app.dataset.runs = String((Number(app.dataset.runs) || 0) + 1);
}

function schedule() {
  if (editStarted == null) editStarted = performance.now();
  if (pending) return;
  pending = true;
  setTimeout(run, 0);
}

function setProgram(text) {
  state.program = text;
  els.program.value = text;
  schedule();
}

function wire(manifest) {
  for (const [label, text] of SHORT_EXAMPLES) els.examples.add(new Option(label, "short:" + label));
  const zoo = document.createElement("optgroup");
  zoo.label = "the zoo (examples/)";
  for (const ex of manifest.examples) zoo.appendChild(new Option(ex.name + ".psym", "zoo:" + ex.name));
  els.examples.appendChild(zoo);
  const known = SHORT_EXAMPLES.find((e) => e[1] === state.program);
  if (known) els.examples.value = "short:" + known[0];
  els.examples.addEventListener("change", () => {
    const [kind, name] = [els.examples.value.split(":")[0], els.examples.value.slice(els.examples.value.indexOf(":") + 1)];
    const text = kind === "short" ? SHORT_EXAMPLES.find((e) => e[0] === name)[1] : manifest.examples.find((e) => e.name === name).text;
    state.values = {};
    for (const input of els.values.querySelectorAll("input")) input.value = "";
    setProgram(text.replace(/\n+$/, ""));
  });
  els.program.addEventListener("input", () => {
    state.program = els.program.value;
    els.caret.hidden = true;
    paintShifted(state.program);
    schedule();
  });
  els.program.addEventListener("keydown", (event) => {  // Tab indents instead of leaving the editor
    if (event.key === "Tab" && !event.shiftKey) {
      event.preventDefault();
      document.execCommand("insertText", false, "  ");
    }
  });
  els.convention.addEventListener("change", () => { state.convention = els.convention.value; schedule(); });
  els.solveSymbol.addEventListener("change", () => { state.solve.symbol = els.solveSymbol.value; schedule(); });
  els.solveBudget.addEventListener("input", () => { state.solve.budget = els.solveBudget.value.trim(); schedule(); });
  els.solveOn.addEventListener("change", () => { state.solve.on = els.solveOn.value; schedule(); });
  els.solveMode.addEventListener("change", () => { state.solve.mode = els.solveMode.value; schedule(); });
  els.share.addEventListener("click", async () => {
    writeHash();
    try { await navigator.clipboard.writeText(location.href); els.share.textContent = "Link copied"; }
    catch { els.share.textContent = "Link in the address bar"; }
    setTimeout(() => { els.share.textContent = "Copy link"; }, 2000);
  });
  for (const button of document.querySelectorAll(".ps-tabs button")) {
    button.addEventListener("click", () => { state.tab = button.dataset.tab; showTab(); schedule(); });
  }
  window.addEventListener("hashchange", () => {
    if (new URLSearchParams(location.hash.slice(1)).get("program") === state.program) return;
    readHash(); fillInputs(); schedule();
  });
}

function showTab() {
  for (const button of document.querySelectorAll(".ps-tabs button")) {
    button.classList.toggle("ps-tab-active", button.dataset.tab === state.tab);
    $("ps-tab-" + button.dataset.tab).hidden = button.dataset.tab !== state.tab;
  }
}

function fillInputs() {
  els.program.value = state.program;
  els.convention.value = state.convention;
  els.solveBudget.value = state.solve.budget;
  els.solveMode.value = state.solve.mode;
  if (els.solveOn.dataset.filled) els.solveOn.value = state.solve.on;
  for (const input of els.values.querySelectorAll("input")) input.value = state.values[input.dataset.name] || "";
  showTab();
}

async function main() {
  readHash();
  fillInputs();
  paint(state.program, []);
  const manifestPromise = fetch(new URL("manifest.json", BASE)).then((r) => r.json());
  const { loadPyodide } = await import(new URL("vendor/pyodide/pyodide.mjs", BASE).href);
  const manifest = await manifestPromise;
  // the bundle, fetched while Python starts
  const bundle = manifest.bundle && fetch(new URL(manifest.bundle, BASE)).then((r) => r.arrayBuffer());
  const pyodide = await loadPyodide({ indexURL: new URL("vendor/pyodide/", BASE).href, packages: [],
    ...(manifest.stdlib ? { stdLibURL: new URL(manifest.stdlib, BASE).href } : {}) });
  timings.pyodideLoaded = performance.now();
  timings.pyodide = pyodide.version;
  timings.python = manifest.python || pyodide.runPython("import sys; '%d.%d.%d' % sys.version_info[:3]");
  els.status.textContent = "Loading paramsym, SymPy, mpmath and Lark…";
  if (manifest.bundle) {
    // the wheels below, compiled to bytecode for this Python when the site was built (compile.mjs)
    // imported from the zip itself (zipimport): writing one file is much faster than unpacking a thousand
    const buffer = await bundle;
    timings.fetched = performance.now();
    pyodide.FS.writeFile("/lib/playground.zip", new Uint8Array(buffer));
    pyodide.runPython(`
import sys, sysconfig, zipfile
sys.path.insert(0, "/lib/playground.zip/" + sysconfig.get_paths()["purelib"].lstrip("/"))
with zipfile.ZipFile("/lib/playground.zip") as bundle:  # paramsym's saved parser tables
    bundle.extractall("/", [name for name in bundle.namelist() if name.startswith("home/")])
`);
  } else {
    const site = pyodide.runPython("import sysconfig; sysconfig.get_paths()['purelib']");
    const buffers = await Promise.all(manifest.wheels.map((name) =>
      fetch(new URL("wheels/" + name, BASE)).then((r) => r.arrayBuffer())));
    timings.fetched = performance.now();
    manifest.wheels.forEach((name, i) => pyodide.unpackArchive(buffers[i], "wheel", { extractDir: site }));
    const source = await (await fetch(new URL("playground.py", BASE))).text();
    pyodide.FS.writeFile(site + "/playground.py", source);
  }
  timings.unpacked = performance.now();
  py = pyodide.pyimport("playground").run;
  // the same function the page calls on every edit, for the tests that compare it with the command line
  window.playgroundRun = (request) => JSON.parse(py(JSON.stringify(request)));
  timings.imported = performance.now();
  wire(manifest);
  schedule();
}

main().catch((error) => {
  els.status.textContent = "The playground could not start: " + error;
  els.status.classList.add("ps-bad");
  console.error(error);
});
