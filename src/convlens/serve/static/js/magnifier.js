// The magnifier: beside the probed pixel, the patch under the kernel drawn large with its
// numbers (raw 0-255 values; dashed cells lie in the padding) and the value it makes, as
// setosa's image-kernels page shows it. For a pooled cell it shows the window and its winner.
import {el, wxh} from "./dom.js";
import {view} from "./state.js";

const MAX_SIDE = 7;                 // larger patches are shown only in the panel
const box = el("div", {class: "magnifier", "data-testid": "magnifier", "aria-hidden": "true", hidden: true});

export function hideMagnifier() {
  box.hidden = true;
}

function grey(value) {
  const v = Math.max(0, Math.min(255, Math.round(value)));
  return [`rgb(${v},${v},${v})`, v < 128 ? "#fff" : "#111"];
}

function cell(values, texts, padded) {
  const td = el("td", {}, ...texts.flatMap((text, i) => (i ? [el("br"), text] : [text])));
  if (values.length === 3) {
    const [r, g, b] = values.map((v) => Math.max(0, Math.min(255, Math.round(v))));
    td.style.background = `rgb(${r},${g},${b})`;
    td.style.color = (r + g + b) / 3 < 128 ? "#fff" : "#111";
  } else {
    [td.style.background, td.style.color] = grey(values[0]);
  }
  if (padded) td.classList.add("padded");
  return td;
}

// The JSON's parts (convlens.explain_parts) the magnifier draws from.
const tablesOf = (data, gridsKey, tableKey) => data.parts
  .filter((part) => part.kind === "grids" && part.key === gridsKey)
  .map((part) => part.tables.find((table) => table.key === tableKey));
const numberOf = (data, key) => data.parts.flatMap((part) => part.spans || [])
  .find((span) => span.key === key && span.style === "strong")?.text;

// Show the magnifier for probe `p` beside its pixel on the map, from the panel's JSON.
export function showMagnifier(p, data) {
  const parts = view.rows[p.k]?.stages[p.stage];
  if (!parts?.stats || !parts.display) { hideMagnifier(); return; }
  const table = el("table");
  let caption;
  if (data.kind === "pooled") {
    const [values] = tablesOf(data, "window", "values");
    if (!values || values.cells.length > MAX_SIDE || values.cells[0].length > MAX_SIDE) {
      hideMagnifier();
      return;
    }
    const limit = Math.max(...values.values.flat().map(Math.abs), 1e-12);
    values.cells.forEach((line, r) => table.append(el("tr", {}, line.map((text, c) => {
      const td = cell([255 * Math.abs(values.values[r][c]) / limit], [text], false);
      if (values.marks?.[r]?.[c] === "winner") td.classList.add("win");
      return td;
    }))));
    caption = `${data.pool_type} = ${numberOf(data, "pooled")}`;
  } else {
    const patches = tablesOf(data, "products", "patch");      // one per colour channel
    const [kh, kw] = [patches[0]?.cells.length ?? 0, patches[0]?.cells[0].length ?? 0];
    if (!kh || kh > MAX_SIDE || kw > MAX_SIDE) { hideMagnifier(); return; }
    for (let r = 0; r < kh; r++) {
      table.append(el("tr", {}, Array.from({length: kw}, (_, c) => cell(
        patches.map((patch) => patch.values[r][c]), patches.map((patch) => patch.cells[r][c]),
        patches[0].marks?.[r]?.[c] === "padding"))));
    }
    const value = p.stage === "activated" ? `${data.activation} = ${numberOf(data, "activated")}` :
      `conv = ${numberOf(data, "conv")}`;
    caption = `input ${wxh([kw, kh])} → ${value}`;
  }
  box.replaceChildren(table, el("div", {class: "magnifier-caption", text: caption}));
  // beside the pixel, on the side with more room
  const [dh, dw] = parts.display;
  const [h, w] = [dh * parts.stats.factor, dw * parts.stats.factor];
  const right = (p.col + 0.5) / w < 0.5;
  const below = (p.row + 0.5) / h < 0.5;
  box.style.left = right ? `calc(${(100 * (p.col + 1)) / w}% + 8px)` : "";
  box.style.right = right ? "" : `calc(${100 - (100 * p.col) / w}% + 8px)`;
  box.style.top = below ? `${(100 * p.row) / h}%` : "";
  box.style.bottom = below ? "" : `${100 - (100 * (p.row + 1)) / h}%`;
  if (box.parentElement !== parts.wrap) parts.wrap.append(box);
  box.hidden = false;
}
