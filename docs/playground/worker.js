// The playground's Python, off the page's thread: this module worker loads Pyodide's core, the compiled bundle
// (python.zip, see compile.mjs) and playground.py, then answers one request at a time. The page never waits
// on it: it posts {type: "run", id, request} and draws the {type: "result", id, result} when it comes.
// KaTeX runs here too (renderToString needs no DOM): the equation and the LaTeX derivation come back as HTML
// (result.equation.html, result.latex.blocks_html), so the page only sets innerHTML.
//
// A run cannot be interrupted from inside (Python holds the thread): the page cancels a stale or too long run
// by terminating this worker and using a fresh one (app.js, the watchdog).
//
// Messages to the page: {type: "status", text}, {type: "ready", timings}, {type: "result", id, result, ms},
// {type: "failed", text} when Python could not start.
import katex from "./vendor/katex/katex.mjs";

const BASE = new URL("./", import.meta.url);
const timings = { started: performance.now(), origin: performance.timeOrigin };
let run = null;

async function start() {
  const manifestPromise = fetch(new URL("manifest.json", BASE)).then((r) => r.json());
  const { loadPyodide } = await import(new URL("vendor/pyodide/pyodide.mjs", BASE).href);
  const manifest = await manifestPromise;
  // the bundle, fetched while Python starts
  const bundle = fetch(new URL(manifest.bundle, BASE)).then((r) => r.arrayBuffer());
  const pyodide = await loadPyodide({ indexURL: new URL("vendor/pyodide/", BASE).href, packages: [],
    stdLibURL: new URL(manifest.stdlib, BASE).href });
  timings.pyodideLoaded = performance.now();
  timings.pyodide = pyodide.version;
  timings.python = manifest.python;
  postMessage({ type: "status", text: "Loading paramsym, SymPy, mpmath and Lark…" });
  // the wheels, compiled to bytecode for this Python when the site was built (compile.mjs), imported from the
  // zip itself (zipimport): writing one file is much faster than unpacking a thousand
  pyodide.FS.writeFile("/lib/playground.zip", new Uint8Array(await bundle));
  timings.fetched = performance.now();
  pyodide.runPython(`
import sys, sysconfig, zipfile
sys.path.insert(0, "/lib/playground.zip/" + sysconfig.get_paths()["purelib"].lstrip("/"))
with zipfile.ZipFile("/lib/playground.zip") as bundle:  # paramsym's saved parser tables
    bundle.extractall("/", [name for name in bundle.namelist() if name.startswith("home/")])
`);
  timings.unpacked = performance.now();
  run = pyodide.pyimport("playground").run;
  timings.imported = performance.now();
  postMessage({ type: "ready", timings, manifest });
}

// LaTeX to HTML as the page used to draw it (display mode; an error is drawn in red, never thrown); the
// derivation's blocks without MathML (half the HTML to lay out; its LaTeX source is printed under it)
const html = (source, output = "htmlAndMathml") => katex.renderToString(source, { displayMode: true, throwOnError: false, output });

onmessage = (event) => {
  const message = event.data;
  if (message.type !== "run" || !run) return;
  const started = performance.now();
  const result = JSON.parse(run(JSON.stringify(message.request)));
  const python = performance.now() - started;
  if (result.equation && result.equation.equation) result.equation.html = html(result.equation.equation);
  if (result.latex && result.latex.blocks) result.latex.blocks_html = result.latex.blocks.map((block) => html(block, "html"));
  const ms = performance.now() - started;
  postMessage({ type: "result", id: message.id, result, ms, katex: ms - python });
};

start().catch((error) => postMessage({ type: "failed", text: String(error && error.message || error) }));
