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
// The run loop: an edit waits DEBOUNCE_MS for the next one, then becomes a request; the worker has at most one
// request in flight and the latest one waiting (a newer one replaces it); a result that is no longer the
// latest is dropped. Python cannot be interrupted, so a run is cancelled by terminating its worker: when a
// newer request has waited STALE_MS behind it and a warm spare worker is ready to take over at once, or after
// TIME_LIMIT_MS in any case (with a message); a new spare then starts in the background.
const DEBOUNCE_MS = 100;
const STALE_MS = 1500;
// (playground.html?limit=SECONDS sets another limit: the tests and the benchmark stop a run sooner, whatever the
// speed of the machine)
const TIME_LIMIT_MS = 1000 * (Number(new URLSearchParams(location.search).get("limit")) || 10);
let current = null;       // the worker that runs the requests: {worker, ready, born}
let spare = null;         // a second worker, started after the first result, that takes over on a restart
let manifest = null;      // the zoo's programs and the bundle's names, from the first worker that is ready
let nextId = 0;           // the id of the last request (run or ask)
let latestRun = 0;        // the id of the newest run of the page's inputs, and of the last one answered
let answeredRun = 0;
const jobs = [];          // requests waiting for the worker: {id, made, run, resolve}
let busy = null;          // the request in flight, with the time it was posted
let debounce = null;      // the timer of the edit waiting for the next one
let lastTokens = [];      // the tokens of the last text that was run, and that text
let lastText = "";
let editStarted = null;   // performance.now() of the input that the next run answers
const timings = window.playgroundTimings = { edits: [], workers: [], restarts: [] };
window.playgroundPending = () => debounce != null || answeredRun !== latestRun;
window.playgroundSpareReady = () => Boolean(spare && spare.ready);

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
    // the same object, refilled: the panels keep the one mount gave them
    const settings = state.panels[panel.id];
    for (const key of Object.keys(settings)) delete settings[key];
    Object.assign(settings, panel.defaults || {});
    for (const [key, value] of params) {
      if (key.startsWith(panel.id + ".")) settings[key.slice(panel.id.length + 1)] = value;
    }
  }
  return true;
}

let written = "";         // the address as the page last wrote or read it
let pushNext = false;     // the next change of the address is a new history entry (an example was chosen)

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
  const hash = "#" + params.toString().replace(/\+/g, "%20");
  if (pushNext) history.pushState(null, "", hash);
  else if (hash !== location.hash) history.replaceState(null, "", hash);
  pushNext = false;
  written = location.hash;
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

// LaTeX that the worker has already typeset (worker.js: KaTeX's HTML of our own printer's LaTeX, no user HTML)
function html(target, { equation, html }) {
  if (html == null) { tex(target, equation); target.drawn = null; }
  else if (target.drawn !== html || !target.querySelector(".katex")) { target.innerHTML = html; target.drawn = html; }
}
let lastLatexText = null;

// The LaTeX derivation, typeset by the worker in blocks of rows: a block whose HTML has not changed is left as it
// is (an edit changes few), a changed one is redrawn in a task of its own (so that a key pressed meanwhile is
// answered first); a newer result stops the drawing of an older one.
let derivationDrawn = 0;
let drawnBlocks = [];     // the HTML of each block shown, in order
function drawDerivation(latex) {
  const drawing = ++derivationDrawn;
  const blocks = latex.blocks_html || [];
  if (!blocks.length) {
    if (latex.derivation) tex(els.derivation, latex.derivation); else els.derivation.textContent = "";
    drawnBlocks = [];
    els.derivation.dataset.complete = "true";
    return;
  }
  if (els.derivation.children.length !== drawnBlocks.length) { els.derivation.textContent = ""; drawnBlocks = []; }
  while (drawnBlocks.length > blocks.length) { els.derivation.lastElementChild.remove(); drawnBlocks.pop(); }
  let next = 0;
  const more = () => {
    if (drawing !== derivationDrawn) return;
    while (next < blocks.length && drawnBlocks[next] === blocks[next]) next++;
    els.derivation.dataset.complete = String(next >= blocks.length);
    if (next >= blocks.length) return;
    let block = els.derivation.children[next];
    if (!block) { block = document.createElement("div"); els.derivation.appendChild(block); }
    block.innerHTML = blocks[next];
    drawnBlocks[next] = blocks[next];
    next++;
    requestAnimationFrame(() => setTimeout(more, 0));
  };
  els.derivation.dataset.complete = "false";
  more();
}

// After a program error: the value boxes of symbols that no longer occur in the text go away (its symbols are
// not known until it parses, so a box stays while its name is still written somewhere in the program).
function dropValueBoxes(tokens) {
  const names = new Set(tokens.filter(([, , cls]) => cls === "name" || cls === "key").map(([s, e]) => state.program.slice(s, e)));
  for (const input of [...els.values.querySelectorAll("input")]) {
    if (!names.has(input.dataset.name)) input.closest("label").remove();
  }
  if (!els.values.querySelector("input")) els.values.innerHTML = '<span class="ps-muted">The program has no symbols.</span>';
}

// A run stopped by the time limit: the message, and what is shown below marked as the last program's.
function showStopped(seconds) {
  app.classList.add("ps-has-error", "ps-stale");
  els.error.textContent = `stopped after ${seconds} s: paramsym was still working on this program. Its formulas ` +
    "grow too large to expand (a sum of symbols raised to a high power, many symbolic layers multiplied " +
    "together...): simplify the program, or give its symbols values. What is shown below is the last program's.";
  els.error.hidden = false;
  els.error.dataset.where = "limit";
  els.caret.hidden = true;
  els.timing.textContent = `stopped after ${seconds} s`;
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
  app.classList.add("ps-highlighted");  // the textarea's own text gives way to the highlighted copy
  app.classList.toggle("ps-has-error", !result.ok);
  app.classList.toggle("ps-stale", !result.ok);  // what is shown below is the last program's: dimmed, labelled
  if (result.error) {
    els.error.textContent = result.error.text;
    els.error.hidden = false;
    els.error.dataset.where = result.error.where;
    showCaret(result.error);
    if (result.error.where === "program") dropValueBoxes(result.tokens);
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
  if (result.equation) html(els.formula, result.equation);
  else els.formula.textContent = result.equation_error ? result.equation_error.text : "";
  if (result.latex) {
    const shown = result.latex.shown ?? result.latex.text;
    if (shown !== lastLatexText) els.latexText.textContent = lastLatexText = shown;
    drawDerivation(result.latex);
  } else if (result.latex_error) {
    els.latexText.textContent = result.latex_error.text;
    lastLatexText = null;
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

// A request for the worker; the promise resolves with {result, ms, id}, or null when a newer run replaced it
// (`run`: the page's own inputs, coalesced; otherwise an ask, e.g. an export or a test, kept in order).
function enqueue(made, run) {
  const id = ++nextId;
  if (run) {
    latestRun = id;
    for (const job of jobs.filter((j) => j.run)) { jobs.splice(jobs.indexOf(job), 1); job.resolve(null); }
  }
  const promise = new Promise((resolve) => jobs.push({ id, made, run, resolve }));
  pump();
  return { id, promise };
}

function pump() {
  if (busy || !current || !current.ready || !jobs.length) return;
  busy = jobs.shift();
  busy.posted = performance.now();
  current.worker.postMessage({ type: "run", id: busy.id, request: busy.made });
}

function finish(slot, message) {
  if (slot !== current || !busy || busy.id !== message.id) return;  // a spare's warm-up
  const job = busy;
  busy = null;
  job.resolve(message);
  pump();
}

// The watchdog: a run that a newer one has waited behind for too long, or any run past the time limit, is
// cancelled with its worker.
function watch() {
  if (!busy) return;
  const elapsed = performance.now() - busy.posted;
  if (elapsed > TIME_LIMIT_MS) {
    const job = busy;
    restart("limit");
    job.resolve({ id: job.id, ms: elapsed, stopped: TIME_LIMIT_MS / 1000, result: { ok: false, tokens: [], ms: elapsed,
      error: { where: "limit", kind: "time limit", message: `stopped after ${TIME_LIMIT_MS / 1000} s`, text: "" } } });
  } else if (busy.run && busy.id !== latestRun && elapsed > STALE_MS && spare && spare.ready) {
    // (without a warm spare, a new worker would take longer to start than the stale run to end)
    const job = busy;
    restart("stale");
    job.resolve(null);
  }
}
setInterval(watch, 100);

function restart(why) {
  const stopped = current;
  stopped.worker.terminate();
  busy = null;
  current = spare && spare.ready ? spare : startWorker();
  if (current === spare) spare = null;
  timings.restarts.push({ why, at: performance.now(), spareReady: current.ready });
  startSpare();
  pump();
}

// A second worker waits, warm, for a restart; started after the first result or restart (never during the first
// load: it would slow it down).
function startSpare() {
  setTimeout(() => {
    if (spare || !manifest) return;
    spare = startWorker();
  }, 500);
}

function startWorker() {
  const slot = { worker: new Worker(new URL("worker.js", BASE), { type: "module" }), ready: false, born: performance.now() };
  slot.worker.onmessage = (event) => {
    const message = event.data;
    if (message.type === "status") { if (!timings.firstResult) els.status.textContent = message.text; }
    else if (message.type === "failed") { if (slot === current) fail(message.text); }
    else if (message.type === "ready") ready(slot, message);
    else if (message.type === "result") finish(slot, message);
  };
  slot.worker.onerror = (event) => { if (slot === current) fail(event.message || "the worker stopped"); };
  return slot;
}

function ready(slot, message) {
  slot.ready = true;
  timings.workers.push({ ms: performance.now() - slot.born, spare: slot === spare });
  if (!manifest) {
    // the worker's clock began when it started: its times, moved onto the page's clock
    const shift = message.timings.origin - performance.timeOrigin;
    for (const key of ["pyodideLoaded", "fetched", "unpacked", "imported"]) timings[key] = message.timings[key] + shift;
    timings.pyodide = message.timings.pyodide;
    timings.python = message.timings.python;
    manifest = message.manifest;
    fillExamples();
  }
  // a spare runs one small program, so that its first real run finds paramsym's caches warm
  if (slot === spare) slot.worker.postMessage({ type: "run", id: 0, request: { program: SEED, parts: ["equation"] } });
  if (slot === current) pump();
}

async function run() {
  debounce = null;
  const started = editStarted ?? performance.now();
  editStarted = null;
  writeHash();  // (also while Python loads: the address keeps what is typed)
  const called = performance.now();
  const made = request();
  const { id, promise } = enqueue(made, true);
  const answer = await promise;
  if (!answer || id !== latestRun) return;  // a newer request is on its way: this result is already stale
  answeredRun = id;
  const { result, ms } = answer;
  const answered = performance.now();
  if (answer.stopped) showStopped(answer.stopped); else render(result);
  writeHash();
  const done = performance.now();
  if (answer.stopped) {
    // nothing more
  } else if (timings.firstResult == null) {
    timings.firstResult = done;
    els.status.textContent = `Ready: paramsym runs in your browser (Pyodide ${timings.pyodide}, Python ${timings.python}), ` +
      "with nothing sent anywhere. Edit the program: everything below follows.";
    timings.firstResultText = `first result ${(done / 1000).toFixed(1)} s after the page began to load`;
    startSpare();
  } else {
    timings.edits.push({ ms: done - started, python: result.ms, call: answered - called, render: done - answered,
      waited: called - started, worker: ms, katex: answer.katex ?? 0, layers: result.layers ?? null });
  }
  // (program: what the shown result counted, for the tests that wait for the result of what they typed)
  timings.last = { ms: done - started, python: result.ms, ok: result.ok, program: made.program };
  app.dataset.runs = String((Number(app.dataset.runs) || 0) + 1);
}

// An input changed: the address and the count follow after a short pause (the next key restarts it).
function schedule(now) {
  if (editStarted == null) editStarted = performance.now();
  clearTimeout(debounce);
  debounce = setTimeout(run, now === true ? 0 : DEBOUNCE_MS);
}

// Replace the whole program as an edit of the editor (select all, insert), so that Ctrl+Z brings the old text back.
function replaceProgram(text) {
  els.program.focus();
  els.program.select();
  if (!document.execCommand("insertText", false, text) || els.program.value !== text) {
    els.program.value = text;  // where the editor cannot insert (no undo then)
    edited();
  }
}

function edited() {
  state.program = els.program.value;
  els.caret.hidden = true;
  paintShifted(state.program);
  showExample();  // the menu names the example only while the text is that example's
  schedule();
}

// The examples menu: the short examples at once, the zoo when the first worker has read the manifest.
function fillExamples() {
  if (manifest) {
    const zoo = document.createElement("optgroup");
    zoo.label = "the zoo (examples/)";
    for (const ex of manifest.examples) zoo.appendChild(new Option(ex.name + ".psym", "zoo:" + ex.name));
    els.examples.appendChild(zoo);
  } else {
    for (const [label] of SHORT_EXAMPLES) els.examples.add(new Option(label, "short:" + label));
  }
  showExample();
}

function showExample() {
  const known = SHORT_EXAMPLES.find((e) => e[1] === state.program);
  const zoo = manifest && manifest.examples.find((e) => e.text.replace(/\n+$/, "") === state.program);
  els.examples.value = known ? "short:" + known[0] : zoo ? "zoo:" + zoo.name : "";
}

// Everything but the zoo works from the first paint: what is typed or chosen while Python loads is kept, put in
// the address, and counted when the worker is ready.
function wire() {
  fillExamples();
  els.examples.addEventListener("change", () => {
    const [kind, name] = [els.examples.value.split(":")[0], els.examples.value.slice(els.examples.value.indexOf(":") + 1)];
    const text = kind === "short" ? SHORT_EXAMPLES.find((e) => e[0] === name)[1] : manifest.examples.find((e) => e.name === name).text;
    state.values = {};
    for (const input of els.values.querySelectorAll("input")) input.value = "";
    pushNext = true;  // a new history entry: Back returns to the program before
    replaceProgram(text.replace(/\n+$/, ""));
  });
  els.program.addEventListener("input", edited);
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
  // Back, Forward, or an address typed: the page shows what the address holds
  const restore = () => {
    if (location.hash === written || !readHash()) return;
    written = location.hash;
    fillInputs();
    showExample();
    schedule(true);
  };
  window.addEventListener("popstate", restore);
  window.addEventListener("hashchange", restore);
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
    return (await enqueue(made, false).promise).result;
  },
};

// the same function the page calls on every edit, for the tests that compare it with the command line: a
// promise of the result (it waits for the worker if Python is still loading)
window.playgroundRun = async (made) => (await enqueue(made, false).promise).result;

async function main() {
  if (location.protocol === "file:") return;  // opened from disk: the page's inline script says how to serve it
  readHash();
  if (els.program.value && els.program.value !== state.program) state.program = els.program.value;  // typed already
  fillInputs();
  paint(state.program, []);
  for (const panel of PANELS) if (panel.mount) panel.mount(document.querySelector(`[data-panel="${panel.id}"]`), state.panels[panel.id], ctx);
  written = location.hash;
  wire();
  current = startWorker();
  schedule(true);  // the first request waits for the worker, with whatever the inputs hold by then
}

function fail(text) {
  els.status.textContent = "The playground could not start: " + text;
  els.status.classList.add("ps-bad");
}

main().catch((error) => { fail(String(error)); console.error(error); });
