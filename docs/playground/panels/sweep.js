// The Sweep tab: one quantity (parameters, MACs, memory, ...) at every value of one symbol, as a line: what
// `paramsym sweep PROGRAM --grid NAME=VALUES --format json` gives for the same grid. Every point comes from
// playground.py (each exactly, as paramsym solve evaluates it); a value that gives no valid network is a gap.
// With a budget in the solve box on the same quantity, the budget is a dashed line.
import { esc, fillSelect, grouped, linearTicks, short, widthOf } from "./svg.js";

const HEIGHT = 260;
const PAD = { left: 62, right: 16, top: 22, bottom: 40 };

const sweep = {
  id: "sweep",
  defaults: { symbol: "", grid: "", of: "params" },
  mount(element, settings, ctx) {
    this.settings = settings;
    element.innerHTML = `<div class="ps-chart-bar">
        <label>symbol <select class="ps-sweep-symbol" aria-label="the symbol to sweep"></select></label>
        <label>values <input class="ps-sweep-grid" size="14" spellcheck="false"
          aria-label="the values: start:stop:step or a list such as 3,5,7"></label>
        <label>of <select class="ps-sweep-of" aria-label="the quantity to draw"></select></label>
      </div>
      <div class="ps-chart-readout ps-sweep-readout" aria-live="polite"></div>
      <div class="ps-picture ps-sweep-wrap"></div>`;
    this.symbol = element.querySelector(".ps-sweep-symbol");
    this.grid = element.querySelector(".ps-sweep-grid");
    this.of = element.querySelector(".ps-sweep-of");
    this.readout = element.querySelector(".ps-sweep-readout");
    this.wrap = element.querySelector(".ps-sweep-wrap");
    this.grid.value = settings.grid;
    // another symbol: its own default range
    this.symbol.addEventListener("change", () => {
      settings.symbol = this.symbol.value; settings.grid = ""; this.grid.value = ""; ctx.changed();
    });
    this.grid.addEventListener("input", () => { settings.grid = this.grid.value.trim(); ctx.changed(); });
    this.of.addEventListener("change", () => { settings.of = this.of.value; ctx.changed(); });
    this.wrap.addEventListener("mouseover", (event) => {
      const point = event.target.closest(".ps-point");
      if (point) this.readout.textContent = point.dataset.tip;
    });
  },
  request: (settings, state) => (state.tab === "sweep" ? { symbol: settings.symbol, grid: settings.grid, of: settings.of } : null),
  render(result) {
    if (!result.ok) return;
    if (result.sweep_error) {
      this.wrap.innerHTML = "";
      this.readout.innerHTML = `<span class="ps-bad">${esc(result.sweep_error.text)}</span>`;
      return;
    }
    const data = result.sweep;
    if (!data) return;
    if (!data.symbols.length) {
      fillSelect(this.symbol, [], "");
      this.wrap.innerHTML = "";
      this.readout.textContent = data.message;
      return;
    }
    fillSelect(this.symbol, data.symbols.map((s) => [s, s]), data.symbol);
    fillSelect(this.of, data.quantities.map((q) => [q, data.titles[q] || q]), data.of);
    this.grid.placeholder = data.default;
    this.draw(data);
  },
  draw(data) {
    const width = Math.max(320, Math.min(widthOf(this.wrap) - 4, 900));
    const points = data.points;
    const valid = points.filter((p) => p.valid);
    const budget = data.budget ? Number(data.budget.value) : null;
    const top = Math.max(0, ...valid.map((p) => Number(p.value)), budget ?? 0);
    const yTicks = linearTicks(top, 5);
    const xs = points.map((p) => p.x);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const xTicks = x1 === x0 ? [x0] : linearTicks(x1, Math.max(2, Math.floor((width - PAD.left) / 60))).filter((t) => t >= x0 && t <= x1);
    const x = (v) => PAD.left + (x1 === x0 ? 0.5 : (v - x0) / (x1 - x0)) * (width - PAD.left - PAD.right);
    const y = (v) => PAD.top + (1 - v / yTicks[yTicks.length - 1]) * (HEIGHT - PAD.top - PAD.bottom);
    // the first value as a tick too, unless a tick is close by
    if (!xTicks.length || x(xTicks[0]) - x(x0) > 40) xTicks.unshift(x0);
    let svg = `<svg class="ps-sweep" width="${width}" height="${HEIGHT}" viewBox="0 0 ${width} ${HEIGHT}" role="img" ` +
      `aria-label="${esc(data.of)} against ${esc(data.symbol)}" data-symbol="${esc(data.symbol)}" data-of="${esc(data.of)}">`;
    for (const t of yTicks) {
      svg += `<line class="ps-grid" x1="${PAD.left}" x2="${width - PAD.right}" y1="${y(t)}" y2="${y(t)}"/>` +
        `<text class="ps-tick" x="${PAD.left - 6}" y="${y(t) + 4}" text-anchor="end">${esc(short(t, data.unit))}</text>`;
    }
    for (const t of xTicks) {
      svg += `<text class="ps-tick" x="${x(t)}" y="${HEIGHT - PAD.bottom + 16}" text-anchor="middle">${esc(short(t))}</text>`;
    }
    svg += `<text class="ps-axis-title" x="${PAD.left + 6}" y="${PAD.top - 2}">${esc(data.of)}</text>`;
    svg += `<line class="ps-axis" x1="${PAD.left}" x2="${width - PAD.right}" y1="${y(0)}" y2="${y(0)}"/>` +
      `<text class="ps-axis-title" x="${(PAD.left + width - PAD.right) / 2}" y="${HEIGHT - 6}" text-anchor="middle">${esc(data.symbol)}</text>`;
    // the line through the valid points, broken where a point gives no valid network
    let path = "", pen = "M";
    for (const p of points) {
      if (!p.valid) { pen = "M"; continue; }
      path += `${pen}${x(p.x).toFixed(1)},${y(Number(p.value)).toFixed(1)}`;
      pen = "L";
    }
    svg += `<path class="ps-line" d="${path}"/>`;
    if (budget != null) {
      svg += `<g class="ps-budget" data-value="${esc(data.budget.value)}"><line x1="${PAD.left}" x2="${width - PAD.right}" y1="${y(budget)}" y2="${y(budget)}"/>` +
        `<text x="${width - PAD.right}" y="${y(budget) - 5}" text-anchor="end">budget ${esc(data.budget.text)}</text></g>`;
    }
    for (const p of points) {
      const tip = `${data.symbol} = ${grouped(p.x)}: ${data.of} ` + (p.valid ? p.text : `${p.exact ?? "?"} (no valid network here)`);
      const cy = p.valid ? y(Number(p.value)) : y(0);
      svg += `<g class="ps-point${p.valid ? "" : " ps-invalid"}" data-x="${p.x}" data-value="${esc(p.value ?? "")}" ` +
        `data-valid="${p.valid}" data-tip="${esc(tip)}"><title>${esc(tip)}</title>` +
        `<circle cx="${x(p.x)}" cy="${cy}" r="${points.length > 60 ? 2.5 : 3.5}"/></g>`;
    }
    this.wrap.innerHTML = svg + "</svg>";
    const invalid = points.length - valid.length;
    this.readout.textContent = `${points.length} points of ${data.symbol} (${data.grid}) · ${data.of} = ${data.formula}` +
      (invalid ? ` · ${invalid} give no valid network (hollow, on the axis)` : "") + " · hover a point for its number";
  },
};

export default sweep;
