// The Chart tab: one bar per layer (or per top-level stage, as `paramsym count --fold` folds) of a quantity of
// the layer table: parameters, MACs, activations, ... in network order. The numbers are the table's rows from
// playground.py (paramsym's own), exact in each bar's data-value; the bars' lengths are the only thing drawn
// from them here. Hover: the name and the exact number; click: the layer's line in the editor.
import { esc, fillSelect, linearTicks, logTicks, short, widthOf } from "./svg.js";

const ROW = 18;      // the height of a bar's row
const AXIS = 26;     // the axis above the bars
const RIGHT = 64;    // room right of the longest bar for its label

const chart = {
  id: "chart",
  defaults: { of: "params", by: "auto", scale: "linear" },
  mount(element, settings, ctx) {
    this.settings = settings;
    element.innerHTML = `<div class="ps-chart-bar">
        <label>of <select class="ps-chart-of" aria-label="the quantity the bars show"></select></label>
        <label>per <select class="ps-chart-by" aria-label="a bar per layer or per stage">
          <option value="auto">auto</option><option value="layer">layer</option><option value="stage">stage</option>
        </select></label>
        <label class="ps-chart-log-label"><input type="checkbox" class="ps-chart-log"> log scale</label>
      </div>
      <div class="ps-chart-readout" aria-live="polite"></div>
      <div class="ps-picture ps-chart-wrap"></div>`;
    this.element = element;
    this.of = element.querySelector(".ps-chart-of");
    this.by = element.querySelector(".ps-chart-by");
    this.log = element.querySelector(".ps-chart-log");
    this.readout = element.querySelector(".ps-chart-readout");
    this.wrap = element.querySelector(".ps-chart-wrap");
    this.by.value = settings.by;
    this.log.checked = settings.scale === "log";
    this.of.addEventListener("change", () => { settings.of = this.of.value; ctx.changed(); });
    this.by.addEventListener("change", () => { settings.by = this.by.value; ctx.changed(); });
    // redrawn at once; the run after it only keeps the setting in the address
    this.log.addEventListener("change", () => {
      settings.scale = this.log.checked ? "log" : "linear"; this.draw(ctx); ctx.changed();
    });
    this.wrap.addEventListener("click", (event) => {
      const bar = event.target.closest(".ps-bar");
      if (bar && bar.dataset.line) ctx.jumpTo(Number(bar.dataset.line), Number(bar.dataset.column));
    });
    this.wrap.addEventListener("mouseover", (event) => {
      const bar = event.target.closest(".ps-bar");
      if (bar) this.readout.textContent = bar.dataset.tip;
    });
  },
  // asked for only while the tab is shown
  request: (settings, state) => (state.tab === "chart" ? { of: settings.of, by: settings.by } : null),
  render(result, ctx) {
    if (!result.ok) return;
    if (result.chart_error) {
      this.data = null;
      this.wrap.innerHTML = `<p class="ps-bad">${esc(result.chart_error.text)}</p>`;
      return;
    }
    if (!result.chart) return;
    this.data = result.chart;
    fillSelect(this.of, this.data.quantities.map((q) => [q.name, q.title]), this.data.of);
    this.draw(ctx);
  },
  draw(ctx) {
    const data = this.data;
    if (!data) return;
    const title = (data.quantities.find((q) => q.name === data.of) || { title: data.of }).title;
    const numbers = data.bars.map((b) => (b.value == null ? null : Number(b.value)));
    const known = numbers.filter((n) => n != null);
    const positive = known.filter((n) => n > 0);
    const max = Math.max(0, ...known);
    // a log scale where the values span decades
    const spans = positive.length > 1 && Math.max(...positive) / Math.min(...positive) >= 100;
    this.log.disabled = !spans;
    this.element.querySelector(".ps-chart-log-label").classList.toggle("ps-muted", !spans);
    const log = spans && this.settings.scale === "log";
    const width = widthOf(this.wrap) - 4;
    const longest = Math.max(...data.bars.map((b) => b.label.length), 4);
    const labelWidth = Math.min(Math.round(width * 0.42), longest * 6.4 + 8);
    const left = labelWidth + 6, right = width - RIGHT;
    let ticks, x;
    if (log) {
      ticks = logTicks(Math.min(...positive), Math.max(...positive));
      const lo = Math.log10(ticks[0]), hi = Math.log10(ticks[ticks.length - 1]);
      x = (n) => left + (n > 0 ? ((Math.log10(n) - lo) / (hi - lo)) * (right - left) : 0);
    } else {
      ticks = linearTicks(max, Math.max(2, Math.floor((right - left) / 70)));
      x = (n) => left + (n / ticks[ticks.length - 1]) * (right - left);
    }
    const height = AXIS + data.bars.length * ROW + 6;
    let svg = `<svg class="ps-chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `role="img" aria-label="${esc(title)} per ${data.by}" data-of="${esc(data.of)}" data-by="${data.by}" ` +
      `data-scale="${log ? "log" : "linear"}">`;
    for (const t of ticks) {
      svg += `<line class="ps-grid" x1="${x(t)}" x2="${x(t)}" y1="${AXIS - 4}" y2="${height - 4}"/>` +
        `<text class="ps-tick" x="${x(t)}" y="${AXIS - 8}" text-anchor="middle">${esc(short(t))}</text>`;
    }
    data.bars.forEach((bar, i) => {
      const y = AXIS + i * ROW, n = numbers[i];
      const end = n == null ? left : Math.max(left, x(n));
      const tip = `${bar.label}: ${bar.text} ${title}` + (bar.expr && bar.expr !== bar.value ? ` (${bar.expr})` : "") +
        (bar.line ? ` — line ${bar.line}` : "");
      // too long: the end of the path, which names the layer
      const label = bar.label.length * 6.4 > labelWidth ? "…" + bar.label.slice(-(Math.floor(labelWidth / 6.4) - 1)) : bar.label;
      svg += `<g class="ps-bar" data-index="${esc(bar.index)}" data-label="${esc(bar.label)}" data-value="${esc(bar.value ?? "")}" ` +
        `data-line="${bar.line ?? ""}" data-column="${bar.column ?? ""}" data-tip="${esc(tip)}"><title>${esc(tip)}</title>` +
        `<rect class="ps-bar-hit" x="0" y="${y}" width="${width}" height="${ROW}"/>` +
        `<text class="ps-bar-label" x="${labelWidth}" y="${y + ROW / 2 + 4}" text-anchor="end">${esc(label)}</text>` +
        (n == null ? "" : `<rect class="ps-bar-fill" x="${left}" y="${y + 3}" width="${end - left}" height="${ROW - 6}" rx="2"/>`) +
        `<text class="ps-bar-value" x="${end + 4}" y="${y + ROW / 2 + 4}">${esc(bar.short)}</text></g>`;
    });
    this.wrap.innerHTML = svg + "</svg>";
    const unknown = numbers.filter((n) => n == null).length;
    this.readout.textContent = `${data.bars.length} ${data.by === "stage" ? "stages" : "layers"}` +
      (data.by === "stage" ? ` (${data.layers} layers folded as paramsym count --fold)` : "") +
      (unknown ? ` · ${unknown} without a number (? : give the input shape or the symbols' values)` : "") +
      " · hover a bar for its number, click it for its line";
  },
};

export default chart;
