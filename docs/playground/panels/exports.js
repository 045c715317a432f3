// The export bar: copy or download what the command line prints for the page's program, values and convention
// (JSON, CSV, Markdown, LaTeX, PyTorch and Keras source). The text comes whole from paramsym in the worker
// (PARTS["export"] in playground.py calls the CLI's own functions) and only when a button is clicked, so an edit
// costs nothing more; this module never builds or changes the text it is given.
const FORMATS = [
  // [value, label, the command it is the output of, the file name's ending]
  ["json", "JSON", "paramsym count --format json", ".json"],
  ["csv", "CSV", "paramsym count --format csv", ".csv"],
  ["markdown", "Markdown", "paramsym count --format markdown", ".md"],
  ["latex", "LaTeX", "paramsym latex --group-digits", ".tex"],
  ["latex-document", "LaTeX document", "paramsym latex --group-digits --standalone", ".tex"],
  ["torch", "PyTorch", "paramsym export --to torch", ".py"],
  ["keras", "Keras", "paramsym export --to keras", "_keras.py"],
];
const MIME = { json: "application/json", csv: "text/csv", markdown: "text/markdown", latex: "application/x-tex",
  "latex-document": "application/x-tex", torch: "text/x-python", keras: "text/x-python" };

let ui = null;         // the bar's elements, once mounted
let settings = null;   // { format }, the page's state for this panel (kept in the address on the next run)
let feedback = 0;      // the timer that clears "Copied"

// The file's name: the zoo example's name when one was picked (resnet18.json), else network.json.
function fileName(format) {
  const picked = document.getElementById("ps-examples");
  const value = picked ? picked.value : "";
  const stem = value.startsWith("zoo:") ? value.slice(4).replace(/[^A-Za-z0-9_.-]/g, "_") || "network" : "network";
  return stem + FORMATS.find((f) => f[0] === format)[3];
}

function say(text, bad) {
  clearTimeout(feedback);
  ui.status.textContent = text;
  ui.status.classList.toggle("ps-bad", Boolean(bad));
  if (!bad && text) feedback = setTimeout(() => { ui.status.textContent = ""; }, 2500);
}

// The export's text from the worker, or null after showing why there is none (the CLI's own message).
async function fetchText(ctx) {
  ui.error.hidden = true;
  say("Working…");
  for (const button of ui.buttons) button.disabled = true;
  try {
    let result;
    try {
      result = await ctx.ask("export", { format: settings.format });
    } catch {  // Python is not ready yet (the worker starts after the page)
      say("Python is still loading: try again in a moment.", true);
      return null;
    }
    const error = !result.ok ? result.error : result.export ? null : result.export_error;
    if (error) {
      say("Cannot export: see the message below.", true);
      ui.error.textContent = error.text;
      ui.error.hidden = false;
      return null;
    }
    return result.export.text;
  } finally {
    for (const button of ui.buttons) button.disabled = false;
  }
}

// The fallback where the clipboard cannot be written (no permission, not a secure context): the text, selected.
function selectForCopy(text) {
  ui.fallback.value = text;
  ui.fallback.hidden = false;
  ui.fallback.focus();
  ui.fallback.select();
  let copied = false;
  try { copied = document.execCommand("copy"); } catch { copied = false; }
  return copied;
}

async function copy(ctx) {
  const text = await fetchText(ctx);
  if (text == null) return;
  ui.fallback.hidden = true;
  try {
    await navigator.clipboard.writeText(text);
    say(`Copied (${text.length.toLocaleString("en-US")} characters)`);
  } catch {
    say(selectForCopy(text) ? "Copied" : "Selected below: press Ctrl+C (⌘C) to copy", false);
  }
}

async function download(ctx) {
  const text = await fetchText(ctx);
  if (text == null) return;
  ui.fallback.hidden = true;
  const name = fileName(settings.format);
  const url = URL.createObjectURL(new Blob([text], { type: `${MIME[settings.format]};charset=utf-8` }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  say(`Downloaded ${name}`);
}

function showCommand() {
  const format = FORMATS.find((f) => f[0] === settings.format);
  ui.command.textContent = format[2];
  ui.select.title = `What ${format[2]} prints for this program, its values and convention`;
}

const exports_ = {
  id: "export",
  defaults: { format: "json" },
  mount(element, panelSettings, ctx) {
    settings = panelSettings;
    if (!FORMATS.some((f) => f[0] === settings.format)) settings.format = "json";
    element.innerHTML = `<div class="ps-export-bar">
        <label>Export <select class="ps-export-format" aria-label="export format">${FORMATS.map(([value, label]) =>
          `<option value="${value}">${label}</option>`).join("")}</select></label>
        <button type="button" class="ps-export-copy">Copy</button>
        <button type="button" class="ps-export-download">Download</button>
        <code class="ps-export-command"></code>
        <span class="ps-export-status" role="status" aria-live="polite"></span>
      </div>
      <pre class="ps-export-error" hidden></pre>
      <textarea class="ps-export-fallback" readonly hidden aria-label="the export, to copy"></textarea>`;
    const $ = (selector) => element.querySelector(selector);
    ui = { select: $(".ps-export-format"), copy: $(".ps-export-copy"), download: $(".ps-export-download"),
      command: $(".ps-export-command"), status: $(".ps-export-status"), error: $(".ps-export-error"),
      fallback: $(".ps-export-fallback") };
    ui.buttons = [ui.copy, ui.download];
    ui.select.value = settings.format;
    showCommand();
    ui.select.addEventListener("change", () => {
      settings.format = ui.select.value;  // written into the address with the next run; no run needed for it
      ui.error.hidden = true;
      ui.fallback.hidden = true;
      say("");
      showCommand();
    });
    ui.copy.addEventListener("click", () => copy(ctx));
    ui.download.addEventListener("click", () => download(ctx));
  },
  // nothing on an edit: the worker is asked only when a button is clicked (the settings are the page's current
  // ones: a link opened in place replaces them)
  request(panelSettings) {
    settings = panelSettings;
    if (ui && ui.select.value !== settings.format && FORMATS.some((f) => f[0] === settings.format)) {
      ui.select.value = settings.format;
      showCommand();
    }
    return null;
  },
  render(result) {
    if (!ui) return;
    // an export error belongs to the text it was made from: a new result makes it stale
    ui.error.hidden = true;
    ui.fallback.hidden = true;
    if (ui.status.classList.contains("ps-bad")) say("");
  },
};

export default exports_;
