// The panels of the playground page, in the order they draw. Each is a module whose default export is
//   { id, defaults, mount(element, settings, ctx), request(settings, state), render(result, ctx) }
// - id: its name: the container `[data-panel=id]` in docs/playground.md, the part of the request and of the
//   result that playground.py fills for it (PARTS there), and the prefix of its settings in the address
//   (`id.key=value`);
// - defaults: its settings when the address has none (settings are strings: they round-trip the address);
// - mount: draws its controls once, when the page opens (ctx.changed() after a setting changed);
// - request: what playground.py needs for it (null: nothing, the part is not asked for);
// - render: draws the result (result.ok false: the program has an error; clear or dim what is shown).
// ctx (app.js) gives escapeHtml, tex (KaTeX into an element), jumpTo(line, column), setValue(name, value),
// ask(part, options) (one more part from the worker, e.g. an export), changed().
import table from "./table.js";
import exports_ from "./exports.js";
import cost from "./cost.js";

import chart from "./chart.js";
import sweep from "./sweep.js";
import diagram from "./diagram.js";

export const PANELS = [table, cost, exports_, chart, sweep, diagram];
