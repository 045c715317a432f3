// The Diagram tab: the network's blocks as boxes from top to bottom, drawn from paramsym's own structure
// (playground.py sends network.structure: layers, blocks of a def's call, merges with their branches, symbolic
// repeats), never from the program's text. A residual connection is the arc beside its block (res), branches
// stand side by side and meet at their merge (+ add, ‖ concat, × mul), copies of a block are one box "×n", a
// symbolic repeat one frame "×L". Each box: its name and parameters; click: its line in the editor.
import { esc, grouped } from "./svg.js";

const BOX = 24;      // a layer box's height
const GAP = 12;      // between boxes of a sequence
const CHAR = 6.6;    // the width of a character of the boxes' text (11px)
const PADDING = 10;  // inside a frame
const HEAD = 20;     // a frame's title
const MERGE = 18;    // a merge's circle
const SYMBOLS = { res: "+", add: "+", concat: "‖", mul: "×" };

const textWidth = (text) => text.length * CHAR + 16;

// what a box says and where it points (data attributes the tests read)
function attrs(node, label, params) {
  const tip = `${node.path || label}` + (params && params.value != null ? `: ${grouped(params.value)} params` : "") +
    (node.line ? ` — line ${node.line}` : "");
  return `data-label="${esc(label)}" data-params="${esc(params?.value ?? "")}" data-line="${node.line ?? ""}" ` +
    `data-column="${node.column ?? ""}"><title>${esc(tip)}</title>`;
}

const paramsText = (params) => (params && params.value != null && params.value !== "0" ? params.text : "");

function layerBox(node) {
  const label = node.label || node.name;
  const text = paramsText(node.params) ? `${label} · ${paramsText(node.params)}` : label;
  const w = Math.max(60, textWidth(text));
  return {
    w, h: BOX, top: w / 2, bottom: w / 2,
    draw: (x, y) => `<g class="ps-dg-box ps-dg-layer" ${attrs(node, label, node.params)}` +
      `<rect x="${x}" y="${y}" width="${w}" height="${BOX}" rx="4"/>` +
      `<text x="${x + w / 2}" y="${y + 16}" text-anchor="middle">${esc(text)}</text></g>`,
  };
}

// a whole block as one box (the folded diagram): its name, "×n", its parameters, and its residual arc
function blockBox(node) {
  const label = node.label || node.name || node.keyword;
  const times = node.type === "repeat" ? ` ×${node.count}` : "";
  const text = `${label}${times}` + (paramsText(node.params) ? ` · ${paramsText(node.params)}` : "");
  const res = hasRes(node);
  const w = Math.max(60, textWidth(text)) + (res ? 22 : 0);
  const body = w - (res ? 22 : 0);
  return {
    w, h: BOX + 8, top: body / 2, bottom: body / 2,
    draw: (x, y) => `<g class="ps-dg-box ps-dg-block" ${attrs(node, label + times, node.params)}` +
      `<rect x="${x}" y="${y}" width="${body}" height="${BOX + 8}" rx="5"/>` +
      `<text x="${x + body / 2}" y="${y + 20}" text-anchor="middle">${esc(text)}</text></g>` +
      // the residual connection: around the box's right side, from its top to its bottom
      (res ? `<path class="ps-dg-res" data-kind="res" d="M${x + body - 12},${y} C${x + body + 18},${y} ${x + body + 18},${y + BOX + 8} ${x + body - 12},${y + BOX + 8}"/>` : ""),
  };
}

// whether a residual connection is inside (a folded box shows its arc)
function hasRes(node) {
  return (node.type === "merge" && node.kind === "res") || (node.children || node.branches || []).some(hasRes);
}

// a sequence: its items one under the other, joined by arrows; `top` / `bottom` are where lines meet it
function sequence(items) {
  if (!items.length) return { w: 20, h: 0, top: 10, bottom: 10, draw: () => "" };
  const axis = Math.max(...items.map((i) => i.top), ...items.map((i) => i.bottom));
  const w = Math.max(...items.map((i) => axis - i.top + i.w));
  const h = items.reduce((sum, i) => sum + i.h, 0) + GAP * (items.length - 1);
  return {
    w, h, top: axis, bottom: axis,
    draw(x, y) {
      let svg = "", at = y;
      items.forEach((item, i) => {
        if (i) svg += `<line class="ps-dg-edge" x1="${x + axis}" y1="${at - GAP}" x2="${x + axis}" y2="${at}"/>`;
        svg += item.draw(x + axis - item.top, at);
        at += item.h + GAP;
      });
      return svg;
    },
  };
}

// a merge: the branches side by side from one split to one circle; res without a shortcut: the main branch
// with the residual arc beside it
function merge(node, branches) {
  const symbol = SYMBOLS[node.kind] || "∘";
  const keyword = node.keyword || node.kind;
  const title = node.label ? `${node.label}${paramsText(node.params) ? " · " + paramsText(node.params) : ""}` : "";
  const head = title ? HEAD : 0;
  const identity = node.kind === "res" && branches.length === 1;
  const arc = identity ? 28 : 0;
  const gap = 16;
  const inner = branches.reduce((s, b) => s + b.w, 0) + gap * (branches.length - 1);
  const w = Math.max(inner + arc, title ? textWidth(title) : 0);
  const body = Math.max(...branches.map((b) => b.h));
  const h = head + 10 + body + 14 + MERGE;
  const center = identity ? branches[0].top : inner / 2;
  return {
    w, h, top: center, bottom: center,
    draw(x, y) {
      const split = y + head + 4;
      const circleY = y + head + 10 + body + 14 + MERGE / 2;
      let svg = `<g class="ps-dg-merge" data-kind="${esc(node.kind)}" data-branches="${branches.length}" ` +
        `${attrs(node, node.label || keyword, node.params)}`;
      if (title) svg += `<text class="ps-dg-title" x="${x}" y="${y + 13}">${esc(title)}</text>`;
      let bx = x;
      branches.forEach((b, i) => {
        const top = y + head + 10, mid = bx + b.top, end = bx + b.bottom;
        const shortcut = node.kind === "res" && i === 1;
        const cls = shortcut ? "ps-dg-edge ps-dg-res" : "ps-dg-edge";
        svg += `<path class="${cls}"${shortcut ? ' data-kind="res"' : ""} d="M${x + center},${split} L${mid},${split + 3} L${mid},${top}"/>`;
        svg += b.draw(bx, top);
        svg += `<path class="${cls}" d="M${end},${top + b.h} L${end},${circleY - MERGE / 2 - 3} L${x + center},${circleY - MERGE / 2}"/>`;
        bx += b.w + gap;
      });
      if (identity) {  // the identity: from the split around the branch to the circle
        const side = x + inner + arc - 6;
        svg += `<path class="ps-dg-res" data-kind="res" d="M${x + center},${split} L${side},${split} L${side},${circleY} L${x + center + MERGE / 2},${circleY}"/>`;
      }
      svg += `<circle class="ps-dg-split" cx="${x + center}" cy="${split}" r="2.5"/>` +
        `<circle class="ps-dg-op" cx="${x + center}" cy="${circleY}" r="${MERGE / 2}"/>` +
        `<text class="ps-dg-op-text" x="${x + center}" y="${circleY + 4}" text-anchor="middle">${esc(symbol)}</text>` +
        `<text class="ps-dg-kw" x="${x + center - MERGE / 2 - 4}" y="${circleY + 4}" text-anchor="end">${esc(keyword)}</text></g>`;
      return svg;
    },
  };
}

// a frame around its body: a block (a def's call, "×n" for copies) or a symbolic repeat ("×L")
function frame(node, body, cls, title, label) {
  const w = Math.max(body.w + 2 * PADDING, textWidth(title));
  const h = body.h + HEAD + 2 * PADDING - 4;
  const offset = (w - body.w) / 2;
  return {
    w, h, top: offset + body.top, bottom: offset + body.bottom,
    draw: (x, y) => `<g class="ps-dg-box ${cls}" ${attrs(node, label, node.params)}` +
      `<rect class="ps-dg-frame" x="${x}" y="${y}" width="${w}" height="${h}" rx="6"/>` +
      `<text class="ps-dg-title" x="${x + 8}" y="${y + 14}">${esc(title)}</text></g>` +
      body.draw(x + offset, y + HEAD + PADDING - 4),
  };
}

function layout(node, folded, depth = 0) {
  if (node.type === "layer") return layerBox(node);
  if (folded && depth === 1) return blockBox(node);
  if (node.type === "seq") return sequence(node.children.map((c) => layout(c, folded, depth + 1)));
  if (node.type === "block") {
    const title = `${node.label}` + (paramsText(node.params) ? ` · ${paramsText(node.params)}` : "") +
      (node.each ? ` (${node.each.text} each)` : "");
    return frame(node, sequence(node.children.map((c) => layout(c, folded, depth + 1))), "ps-dg-block", title, node.label);
  }
  if (node.type === "repeat") {
    const count = node.count_value && node.count_value !== node.count ? `${node.count} = ${node.count_value}` : node.count;
    // `block[1..L]` (the layers' paths) is the block ×L
    const label = `${(node.label || "repeat").replace(/\[1\.\.[^\]]*\]$/, "")} ×${count}`;
    const title = label + (paramsText(node.params) ? ` · ${paramsText(node.params)} in all` : "");
    const body = sequence(node.branches.map((c) => layout(c, folded, depth + 1)));
    return frame(node, body, "ps-dg-repeat", title, label);
  }
  return merge(node, node.branches.map((c) => layout(c, folded, depth + 1)));
}

const diagram = {
  id: "diagram",
  defaults: { detail: "auto" },
  mount(element, settings, ctx) {
    element.innerHTML = `<div class="ps-chart-bar">
        <label>show <select class="ps-diagram-detail" aria-label="every layer, or one box per block">
          <option value="auto">auto</option><option value="layers">every layer</option><option value="blocks">one box per block</option>
        </select></label>
      </div>
      <div class="ps-chart-readout ps-diagram-readout" aria-live="polite"></div>
      <div class="ps-picture ps-diagram-wrap"></div>`;
    this.detail = element.querySelector(".ps-diagram-detail");
    this.readout = element.querySelector(".ps-diagram-readout");
    this.wrap = element.querySelector(".ps-diagram-wrap");
    this.detail.value = settings.detail;
    this.detail.addEventListener("change", () => { settings.detail = this.detail.value; ctx.changed(); });
    this.wrap.addEventListener("click", (event) => {
      const box = event.target.closest("[data-line]");
      if (box && box.dataset.line) ctx.jumpTo(Number(box.dataset.line), Number(box.dataset.column));
    });
    this.wrap.addEventListener("mouseover", (event) => {
      const box = event.target.closest("[data-line]");
      if (box) this.readout.textContent = box.querySelector("title")?.textContent || "";
    });
  },
  request: (settings, state) => (state.tab === "diagram" ? { detail: settings.detail } : null),
  render(result) {
    if (!result.ok) return;
    if (result.diagram_error) {
      this.wrap.innerHTML = `<p class="ps-bad">${esc(result.diagram_error.text)}</p>`;
      return;
    }
    const data = result.diagram;
    if (!data) return;
    const started = performance.now();
    const root = layout(data.tree, data.boxes_only);
    const margin = 8;
    const w = Math.ceil(root.w + 2 * margin + 30), h = Math.ceil(root.h + 2 * margin);
    this.wrap.innerHTML = `<svg class="ps-diagram" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" ` +
      `aria-label="the network's blocks" data-layers="${data.layers}" data-folded="${data.boxes_only}">` +
      root.draw(margin, margin) + "</svg>";
    this.ms = performance.now() - started;
    this.readout.textContent = `${data.layers} layers` + (data.boxes_only ? ", one box per block" : "") +
      ` · ${data.params.text} params · hover a box for its numbers, click it for its line`;
  },
};

export default diagram;
