// The per-layer table (the Layers tab): `paramsym count`'s rows.
const table = {
  id: "table",
  defaults: {},
  request: () => null,
  render(result, ctx) {
    const element = document.getElementById("ps-table");
    if (!result.ok) return;
    const rows = result.rows;
    const esc = ctx.escapeHtml;
    const withFormula = rows.some((r) => r.formula);
    const withState = rows.some((r) => r.state !== "0");
    const withRf = rows.some((r) => r.rf);
    const head = ["#", "layer", "output", "params", ...(withFormula ? ["formula"] : []), ...(withState ? ["state"] : []),
      "fan-in", "MACs", ...(withRf ? ["RF"] : [])];
    let html = "<thead><tr>" + head.map((h) => `<th>${h}</th>`).join("") + "</tr></thead><tbody>";
    for (const r of rows) {
      html += `<tr data-line="${r.line}" data-column="${r.column}"><td class="n">${r.index}</td><td title="${esc(r.path)} (line ${r.line}, column ${r.column})"><code>${esc(r.name)}</code></td>` +
        `<td>${esc(r.output)}</td><td class="n">${esc(r.params)}</td>` +
        (withFormula ? `<td class="f">${esc(r.formula)}</td>` : "") +
        (withState ? `<td class="n">${esc(r.state)}</td>` : "") +
        `<td class="n">${esc(r.fan_in)}</td><td class="n">${esc(r.macs)}</td>` +
        (withRf ? `<td class="n">${esc(String(r.rf))}</td>` : "") + "</tr>";
    }
    if (result.layers > rows.length) html += `<tr><td colspan="${head.length}">… ${result.layers - rows.length} more layers (the totals count them all)</td></tr>`;
    element.innerHTML = html + "</tbody>";
  },
};

export default table;
