// The per-layer table (the Layers tab): `paramsym count`'s rows as a tree. playground.py (_table) sends one row
// per top-level stage (a layer, a block, a repeat) with its sums, its copies and its layers under it, and the
// total row; every number in it is paramsym's (this file only draws and folds).
// - fold: "auto" (stages folded beyond 300 layers, as `paramsym count`), "blocks" (every stage folded), "layers"
//   (every layer, no block rows, as `paramsym count --all`); a stage's button unfolds or folds it.
// - a click on a row puts the editor's cursor on the row's source (ctx.jumpTo) and marks the row.
const FOLDS = [["auto", "auto"], ["blocks", "blocks"], ["layers", "every layer"]];

const table = {
  id: "table",
  defaults: { fold: "auto" },
  open: new Map(),   // a stage's key -> unfolded or not, as the user left it (until the fold setting changes)
  current: null,     // the key of the row last clicked
  last: null,        // the last result, to draw again when a row is folded
  settings: null,

  mount(element, settings, ctx) {
    this.settings = settings;
    this.ctx = ctx;
    const bar = document.createElement("div");
    bar.className = "ps-table-bar";
    bar.innerHTML = '<label>fold <select id="ps-table-fold">' +
      FOLDS.map(([value, label]) => `<option value="${value}">${label}</option>`).join("") + "</select></label>" +
      '<span class="ps-muted" id="ps-table-note"></span>';
    element.prepend(bar);
    const select = bar.querySelector("select");
    select.value = FOLDS.some(([v]) => v === settings.fold) ? settings.fold : "auto";
    select.addEventListener("change", () => {
      this.settings.fold = select.value;
      this.open.clear();
      if (this.last) this.render(this.last, ctx);
      ctx.changed();  // the address keeps it (table.fold=...)
    });
    const body = document.getElementById("ps-table");
    body.addEventListener("click", (event) => {
      const button = event.target.closest("button.ps-fold");
      const row = event.target.closest("tr[data-key]");
      if (!row) return;
      if (button) {
        this.open.set(row.dataset.key, button.getAttribute("aria-expanded") !== "true");
        this.render(this.last, ctx);
        const again = body.querySelector(`tr[data-key="${CSS.escape(row.dataset.key)}"] button.ps-fold`);
        if (again) again.focus();
        return;
      }
      this.current = row.dataset.key;
      for (const other of body.querySelectorAll("tr.ps-current")) { other.classList.remove("ps-current"); other.removeAttribute("aria-current"); }
      row.classList.add("ps-current");
      row.setAttribute("aria-current", "true");
      ctx.jumpTo(Number(row.dataset.line), Number(row.dataset.column));
    });
  },

  request(settings) {
    // the settings object is new when the address changed (readHash): follow it, and show it in the menu
    this.settings = settings;
    const select = document.getElementById("ps-table-fold");
    if (select && select.value !== settings.fold) {
      select.value = FOLDS.some(([v]) => v === settings.fold) ? settings.fold : "auto";
      this.open.clear();
    }
    return { fold: settings.fold };
  },

  render(result, ctx) {
    const element = document.getElementById("ps-table");
    if (!result.ok) return;
    const data = result.table;
    if (!data) {
      element.innerHTML = result.table_error ? `<tbody><tr><td>${ctx.escapeHtml(result.table_error.text)}</td></tr></tbody>` : "";
      return;
    }
    this.last = result;
    const esc = (s) => ctx.escapeHtml(String(s)).replace(/"/g, "&quot;");  // also inside attributes
    const mode = this.settings ? this.settings.fold : "auto";
    const folded = mode === "blocks" || (mode === "auto" && data.fold);
    const head = ["#", "layer", "output", ...data.columns.map((c) => c.title), ...(data.rf ? ["RF"] : [])];
    const numbers = (cells) => data.columns.map((c) => cell(cells[c.key] || { text: "" }, c.key, esc)).join("");
    const rows = [];
    const walk = (node, depth, parents) => {
      const group = node.children !== null || node.layers > 1;
      if (mode === "layers" && group && node.children) {
        for (const child of node.children) walk(child, depth, parents);
        return;
      }
      const open = group && node.children !== null && (this.open.get(node.key) ?? !folded);
      rows.push(line(node, depth, group, open, parents, numbers, data.rf, esc, this.current));
      if (open) for (const child of node.children) walk(child, depth + 1, [...parents, node]);
    };
    for (const node of data.rows) walk(node, 0, []);
    const total = data.total;
    element.innerHTML = "<thead><tr>" + head.map((h, i) => `<th scope="col"${i < 3 ? ' class="l"' : ""}>${h}</th>`).join("") + "</tr></thead>" +
      "<tbody>" + rows.join("") + "</tbody>" +
      `<tfoot><tr class="ps-total-row"><td></td><th scope="row" class="l">total</th><td>${esc(total.output)}</td>` +
      numbers(total.cells) + (data.rf ? "<td></td>" : "") + "</tr></tfoot>";
    const note = document.getElementById("ps-table-note");
    if (note) {
      note.textContent = (data.fold && mode === "auto" ? `${data.layers.toLocaleString("en-US")} layers: folded by stage (as paramsym count). ` : "") +
        // layers beyond playground.MAX_ROWS have no row of their own: the rows around them and the totals count them
        (data.unlisted ? `${data.unlisted.toLocaleString("en-US")} layers are not listed (the rows and totals count them).` : "");
    }
  },
};

// A row: a layer, or a stage / repeat / copy with its sums and a button that folds it.
function line(node, depth, group, open, parents, numbers, rf, esc, current) {
  const times = node.times ? ` <span class="ps-times" title="repeated ${esc(node.times)} times">×${esc(node.times)}</span>` : "";
  let name;
  if (group) {
    const toggle = node.children === null
      ? '<span class="ps-fold-none" title="too many layers to list them here">·</span>'
      : `<button type="button" class="ps-fold" aria-expanded="${open}" aria-label="${open ? "fold" : "unfold"} ${esc(node.label)}"></button>`;
    name = `${toggle}<code>${esc(node.label)}</code>${times}<span class="ps-muted"> ${node.layers.toLocaleString("en-US")} layers</span>` +
      (node.differ ? '<span class="ps-muted" title="the copies count differently (the first takes another input): unfold to see each"> (copies differ)</span>' : "");
  } else {
    // where it is: the blocks around it, then the layer (`block[1..L] › attn`)
    const where = node.where.slice(0, -1).map((part) => `${esc(part)} › `).join("");
    name = (where ? `<span class="ps-where">${where}</span>` : "") + `<code>${esc(node.label)}</code>${times}`;
  }
  const classes = ["ps-row", group ? "ps-group" : "ps-layer", ...(node.key === current ? ["ps-current"] : [])];
  return `<tr class="${classes.join(" ")}" data-key="${esc(node.key)}" data-line="${node.line}" data-column="${node.column}" data-depth="${depth}"` +
    (node.key === current ? ' aria-current="true"' : "") + `>` +
    `<td class="n">${esc(node.index)}</td>` +
    `<td class="ps-name" style="padding-left: ${0.7 + 1.2 * depth}em" title="${esc(node.path)}${group ? `: ${node.layers} layers` : ""} (line ${node.line}, column ${node.column})">${name}</td>` +
    `<td>${esc(node.output)}</td>` + numbers(node.cells) + (rf ? `<td class="n">${esc(node.rf)}</td>` : "") + "</tr>";
}

// A number cell: the number as people read it (`6.48 B`) over the exact one, and for a repeat `32 × 202,383,360`.
function cell(c, key, esc) {
  if (key === "formula") return `<td class="f">${esc(c.text)}</td>`;
  if (!c.text) return '<td class="n"></td>';
  const value = c.value != null ? ` data-value="${esc(c.value)}"` : "";
  let html = c.short ? `<span class="ps-big">${esc(c.short)}</span><small class="ps-exact">${esc(c.text)}</small>` : esc(c.text);
  let title = c.text;
  if (c.per) {
    const per = `${bracket(c.times)} × ${bracket(c.per)}`;  // `L × (4*d^2 + 2*d)`
    html += `<small class="ps-per">${esc(per)}</small>`;
    title += ` = ${per}`;
  }
  return `<td class="n" title="${esc(title)}"${value}>${html}</td>`;
}

// a formula with more than one term in brackets, for a product
const bracket = (text) => (/[ +\-/]/.test(text) ? `(${text})` : text);

export default table;
