// What the picture panels (chart.js, sweep.js, diagram.js) share: axis ticks, numbers on axes with units, and
// escaping for SVG text and attributes. Not a panel (panels/index.js does not list it). Every number a picture
// labels exactly comes from playground.py (paramsym); these only place ticks and shorten tick labels.

const PREFIXES = { count: ["", " k", " M", " B", " T", " P"], bytes: [" B", " kB", " MB", " GB", " TB", " PB"] };

// `1.5 M`, `250 k`, `16 GB`: a tick's label, in the units paramsym's own short numbers use (count_text)
export function short(n, unit = "count") {
  const names = PREFIXES[unit === "bytes" ? "bytes" : "count"];
  if (n === 0) return "0" + (unit === "bytes" ? " B" : "");
  let i = 0, v = Math.abs(n);
  while (v >= 1000 && i < names.length - 1) { v /= 1000; i++; }
  const text = v >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return (n < 0 ? "-" : "") + text.replace(/\.0+$/, "").replace(/(\.\d*?)0+$/, "$1") + names[i];
}

// ticks 0..max on a 1-2-5 grid, about `count` of them
export function linearTicks(max, count = 5) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count, power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let t = 0; t < max + step / 2; t += step) ticks.push(t);
  if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

// powers of ten around [min, max] (min > 0)
export function logTicks(min, max) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) ticks.push(10 ** e);
  return ticks.length > 1 ? ticks : [ticks[0], ticks[0] * 10];
}

// text and attribute values of SVG (program text is untrusted: names, paths)
export const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

// `1,234,567`: an exact number (a string, as playground.py sends it: beyond 2^53 it stays exact)
export const grouped = (value) => (value == null ? "?" : BigInt(value).toLocaleString("en-US"));

// the width of the element a picture is drawn in (the tab may be hidden while it draws: then the page's)
export function widthOf(element) {
  return Math.max(300, element.clientWidth || element.closest(".ps-results")?.clientWidth || 600);
}

// a <select>'s options, kept when they did not change (the selection stays)
export function fillSelect(select, options, value) {
  const key = options.map(([v]) => v).join(",");
  if (select.dataset.options !== key) {
    select.innerHTML = options.map(([v, label]) => `<option value="${esc(v)}">${esc(label)}</option>`).join("");
    select.dataset.options = key;
  }
  if (options.some(([v]) => v === value)) select.value = value;
}
