// The playground page: starts paramsym in a Web Worker (worker.js: Pyodide, the compiled bundle and
// playground.py) and runs it on every edit; the page itself only draws. Nothing is fetched from anywhere but
// this site.
//
// The panels (panels/*.js, listed in panels/index.js) each draw one part of the result: a panel adds what it
// needs to the request, gets the whole result back, and keeps its own settings in the address (see PANELS).
import katex from "./vendor/katex/katex.mjs";
import { PANELS } from "./panels/index.js";

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
  tab: "table", panels: Object.fromEntries(PANELS.map((p) => [p.id, { ...(p.defaults || {}) }])) };
let worker = null;        // the Web Worker running Python, once it is ready
let nextId = 0;           // the id of the last request posted to the worker
let lastRun = 0;          // the id of the last run's request (ctx.ask posts requests too)
const waiting = new Map();  // id -> resolve of the request's promise
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
  for (const panel of PANELS) {
    state.panels[panel.id] = { ...(panel.defaults || {}) };
    for (const [key, value] of params) {
      if (key.startsWith(panel.id + ".")) state.panels[panel.id][key.slice(panel.id.length + 1)] = value;
    }
  }
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
  for (const panel of PANELS) {  // a panel's settings, where they differ from its defaults: id.key=value
    for (const [key, value] of Object.entries(state.panels[panel.id])) {
      if (value !== "" && value != null && String(value) !== String((panel.defaults || {})[key] ?? "")) {
        params.set(panel.id + "." + key, value);
      }
    }
  }
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

// the "on" menu: what a budget can limit for this network as it is run (playground.py's budget_options: words and
// units, only the quantities that apply); a choice that no longer applies stays, and the solve says why
function renderBudgets(list) {
  const options = [...list];
  if (!options.some((q) => q.name === state.solve.on)) options.push({ name: state.solve.on, label: `${state.solve.on} (does not apply)` });
  const names = options.map((q) => q.name).join(",");
  if (els.solveOn.dataset.filled === names) return;
  els.solveOn.innerHTML = options.map((q) => `<option value="${escapeHtml(q.name)}">${escapeHtml(q.label)}</option>`).join("");
  els.solveOn.value = state.solve.on;
  els.solveOn.dataset.filled = names;
}

function tex(target, source) {
  katex.render(source, target, { displayMode: true, throwOnError: false, output: "htmlAndMathml" });
}

function renderTotals(result) {
  const big = (label, q, cls) => {
    const text = q.value != null ? q.value.toLocaleString("en-US") : q.expr == null ? "?" : q.expr.replace(/\*\*/g, "^");
    const short = (result.short || {})[cls] ? `<div class="ps-total-short" data-short="${cls}">${escapeHtml(result.short[cls])}</div>` : "";
    return `<div class="ps-total ${cls}"><div class="ps-total-label">${label}</div><div class="ps-total-value" data-q="${cls}">${escapeHtml(text)}</div>${short}</div>`;
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
  renderBudgets(result.budget_options);
  renderTotals(result);
  for (const panel of PANELS) panel.render(result, ctx);
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
    const answer = (solved.readable || []).join(", ") || String(solved.value);
    const value = solved.mode === "exact" ? (solved.values || [])[0] : solved.value;
    els.solveAnswer.innerHTML = `<span class="ps-answer" id="ps-answer">${escapeHtml(solved.symbol)} = ${escapeHtml(answer)}</span>` +
      (value != null ? ` <button type="button" id="ps-use-value" title="put ${escapeHtml(String(value))} in the box of ${escapeHtml(solved.symbol)}, and count it">use this value</button>` : "");
    const use = $("ps-use-value");
    if (use) use.addEventListener("click", () => {  // the solved value into its box: the results show the solved network
      state.solve.budget = els.solveBudget.value = "";
      ctx.setValue(solved.symbol, value);
    });
    els.solveResult.textContent = solved.text;
    els.solveResult.hidden = false;
  }
  els.timing.textContent = `${result.layers} layers · ${result.ms.toFixed(0)} ms in Python` +
    (timings.firstResultText ? ` · ${timings.firstResultText}` : "");
}

// The request for the current inputs: the page's own parts and each panel's.
function request() {
  const parts = ["equation", ...(state.tab === "latex" || state.tab === "explain" ? [state.tab] : [])];
  const made = { program: state.program, convention: state.convention, values: state.values, solve: state.solve, parts };
  for (const panel of PANELS) {
    const extra = panel.request ? panel.request(state.panels[panel.id], state) : null;
    if (extra) { parts.push(panel.id); made[panel.id] = extra; }
  }
  return made;
}

// Post a request to the worker; the promise resolves with its result.
function call(made) {
  const id = ++nextId;
  worker.postMessage({ type: "run", id, request: made });
  return new Promise((resolve) => waiting.set(id, resolve));
}

async function run() {
  pending = false;
  if (!worker) return;
  const started = editStarted ?? performance.now();
  editStarted = null;
  const called = performance.now();
  const answer = call(request());
  const id = lastRun = nextId;
  const { result, ms } = await answer;
  if (id !== lastRun) return;  // a newer run is on its way: this result is already stale (an ask is not a run)
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
      waited: called - started, worker: ms, layers: result.layers ?? null });
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
  const tabs = [...document.querySelectorAll(".ps-tabs button")];
  for (const button of tabs) {
    button.addEventListener("click", () => { state.tab = button.dataset.tab; showTab(); schedule(); });
    // the tabs' keys (WAI-ARIA tabs pattern): arrows, Home and End move to a tab and show it
    button.addEventListener("keydown", (event) => {
      const at = tabs.indexOf(button);
      const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      const next = tabs[(to + tabs.length) % tabs.length];
      next.focus();
      next.click();
    });
  }
  window.addEventListener("hashchange", () => {
    if (new URLSearchParams(location.hash.slice(1)).get("program") === state.program) return;
    readHash(); fillInputs(); schedule();
  });
}

function showTab() {
  for (const button of document.querySelectorAll(".ps-tabs button")) {
    // the ARIA tabs pattern for every tab (a tab added to playground.md gets it too)
    const panel = $("ps-tab-" + button.dataset.tab);
    button.id ||= "ps-tab-button-" + button.dataset.tab;
    button.setAttribute("role", "tab");
    button.setAttribute("aria-controls", panel.id);
    panel.setAttribute("role", "tabpanel");
    panel.setAttribute("aria-labelledby", button.id);
    button.classList.toggle("ps-tab-active", button.dataset.tab === state.tab);
    button.setAttribute("aria-selected", String(button.dataset.tab === state.tab));
    button.tabIndex = button.dataset.tab === state.tab ? 0 : -1;
    $("ps-tab-" + button.dataset.tab).hidden = button.dataset.tab !== state.tab;
  }
}

function fillInputs() {
  els.program.value = state.program;
  els.convention.value = state.convention;
  els.solveBudget.value = state.solve.budget;
  els.solveMode.value = state.solve.mode;
  if (els.solveOn.dataset.filled) { els.solveOn.dataset.filled = ""; els.solveOn.value = state.solve.on; }
  for (const input of els.values.querySelectorAll("input")) input.value = state.values[input.dataset.name] || "";
  showTab();
}

// What the panels may use of the page.
const ctx = {
  escapeHtml, tex, schedule, katex, base: BASE,
  // a panel's settings changed: remember them (the address) and count again
  changed: () => schedule(),
  // put the text cursor on a line and column of the program (1-based), as a click on a table row does
  jumpTo(line, column) {
    const lines = state.program.split("\n");
    let offset = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
    offset += Math.max(0, (column || 1) - 1);
    els.program.focus();
    els.program.setSelectionRange(offset, offset);
    const lineHeight = parseFloat(getComputedStyle(els.highlight).lineHeight);
    els.program.closest(".ps-editor").scrollTop = Math.max(0, (line - 3) * lineHeight);
  },
  // set a symbol's value box (a solved value carried into the results)
  setValue(name, value) {
    state.values[name] = String(value);
    const input = els.values.querySelector(`input[data-name="${CSS.escape(name)}"]`);
    if (input) input.value = String(value);
    schedule();
  },
  // ask the worker for one more part of the result for the current inputs (exports), without drawing it
  async ask(part, options) {
    const made = request();
    made.parts = [part];
    made[part] = options ?? true;
    return (await call(made)).result;
  },
};

async function main() {
  readHash();
  fillInputs();
  paint(state.program, []);
  for (const panel of PANELS) if (panel.mount) panel.mount(document.querySelector(`[data-panel="${panel.id}"]`), state.panels[panel.id], ctx);
  const started = new Worker(new URL("worker.js", BASE), { type: "module" });
  started.onmessage = (event) => {
    const message = event.data;
    if (message.type === "status") els.status.textContent = message.text;
    else if (message.type === "failed") fail(message.text);
    else if (message.type === "ready") {
      // the worker's clock began when it started: its times, moved onto the page's clock
      const shift = message.timings.origin - performance.timeOrigin;
      for (const key of ["pyodideLoaded", "fetched", "unpacked", "imported"]) timings[key] = message.timings[key] + shift;
      timings.pyodide = message.timings.pyodide;
      timings.python = message.timings.python;
      worker = started;
      // the same function the page calls on every edit, for the tests that compare it with the command line
      window.playgroundRun = async (made) => (await call(made)).result;
      wire(message.manifest);
      schedule();
    } else if (message.type === "result") {
      const resolve = waiting.get(message.id);
      waiting.delete(message.id);
      if (resolve) resolve(message);
    }
  };
  started.onerror = (event) => fail(event.message || "the worker stopped");
}

function fail(text) {
  els.status.textContent = "The playground could not start: " + text;
  els.status.classList.add("ps-bad");
}

main().catch((error) => { fail(String(error)); console.error(error); });
