// The panel that works out one hovered pixel: it asks POST /api/explain for the drawn state
// and renders the JSON (the numbers as the library formats them, its note, and the
// `convlens explain` command that prints the same numbers). Whenever its inputs change the
// panel is recomputed (the probe survives) or cleared (it does not): it never shows numbers
// of an image or a kernel that is no longer on screen.
import {errorText, postJSON} from "./api.js";
import {placeBox, showField} from "./boxes.js";
import {bodyKey} from "./body.js";
import {$, el, isPhone, showMessage, wxh} from "./dom.js";
import {hideMagnifier, showMagnifier} from "./magnifier.js";
import {cssColour} from "./numbers.js";
import {exposed, view} from "./state.js";

const flight = {busy: false, pending: null};
const panel = () => $("#explain-body");
const EMPTY = panel().innerHTML;        // the panel's first words, shown again when it clears

// The panel back to its first words: no pixel is explained.
export function resetExplain() {
  flight.pending = null;
  const body = panel();
  body.replaceChildren();
  body.innerHTML = EMPTY;
  delete body.dataset.at;
  delete body.dataset.kind;
  delete body.dataset.image;
  delete body.dataset.stale;
  showField(null);
  hideMagnifier();
}

// The inputs changed: the numbers shown are marked out of date until they are recomputed.
export function markStale() {
  const body = panel();
  if (body.dataset.at) body.dataset.stale = "1";
}

export function requestExplain(probe) {
  flight.pending = probe;
  if (!flight.busy) pump();
}

async function pump() {
  flight.busy = true;
  while (flight.pending) {
    const p = flight.pending;
    flight.pending = null;
    const drawn = view.drawnBody;
    if (!drawn) continue;
    const body = {...drawn, stage: p.stage, kernel: p.k, row: p.row, col: p.col,
      flip: $("#flip").checked};
    let response;
    try {
      response = await postJSON("/api/explain", body);
    } catch (err) {
      showMessage(`the server cannot be reached (${err.message})`);
      continue;
    }
    if (flight.pending) continue;                      // a newer probe is waiting: skip this one
    if (!response.ok) { showMessage(await errorText(response)); continue; }
    const data = await response.json();
    // drawn meanwhile from other inputs, or another pixel probed: this answer is out of date
    if (view.probe !== p || bodyKey(view.drawnBody) !== bodyKey(drawn)) continue;
    render(p, data, drawn);
  }
  flight.busy = false;
}

function matrix(cells, caption, options = {}) {
  const {numbers = null, padded = null, win = null, signed = false} = options;
  const luts = view.luts;
  let limit = 0;
  if (numbers) for (const line of numbers) for (const v of line) limit = Math.max(limit, Math.abs(v));
  const table = el("table", {class: "mat"}, el("caption", {text: caption}));
  cells.forEach((line, r) => {
    const tr = el("tr");
    line.forEach((text, c) => {
      const td = el("td", {text});
      if (numbers && limit) {
        const share = numbers[r][c] / limit;
        const index = signed ? 127.5 + share * 110 : 40 + share * 215;
        td.style.background = cssColour(signed ? luts.signed : luts.unsigned, index);
        const dark = signed ? Math.abs(share) > 0.7 : index < 140;
        td.style.color = dark ? "#fff" : "#111";
      }
      if (padded && padded[r][c]) { td.classList.add("padded"); td.title = "padding"; }
      if (win && win[0] === r && win[1] === c) { td.classList.add("win"); td.title = "the winner"; }
      tr.append(td);
    });
    table.append(tr);
  });
  return table;
}

const fieldText = (field) => `rows ${field.top}..${field.bottom}, cols ${field.left}..${field.right}`;
const shapeText = ([h, w]) => wxh([w, h]);

// The command that prints the same numbers, and a button that copies it.
function commandBlock(command) {
  if (!command) return null;
  const code = el("code", {"data-testid": "command", text: command.text});
  const copy = el("button", {type: "button", class: "small", "data-testid": "copy-command",
    "aria-label": "copy the command", text: "copy"});
  copy.addEventListener("click", () => copyText(command.text, code, copy));
  return el("div", {class: "command"},
    el("p", {class: "muted small"}, "Same numbers on the command line" +
      (command.where ? ` (run it ${command.where})` : "") + ":"),
    el("div", {class: "command-line"}, code, copy));
}

async function copyText(text, code, button) {
  let done = false;
  try {
    await navigator.clipboard.writeText(text);
    done = true;
  } catch (err) {                       // no clipboard API (a page served over plain http)
    const range = document.createRange();
    range.selectNodeContents(code);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    done = document.execCommand("copy");
  }
  button.textContent = done ? "copied" : "select and copy";
  setTimeout(() => { button.textContent = "copy"; }, 1500);
}

function render(p, data, drawn) {
  exposed.explained += 1;
  const body = panel();
  body.replaceChildren();
  delete body.dataset.stale;
  body.dataset.kind = data.kind;
  body.dataset.at = `${p.k},${p.stage},${data.at[0]},${data.at[1]}`;
  body.dataset.image = drawn.image;
  showField(data.receptive_field);
  showMagnifier(p, data);
  if (data.kind === "pooled") {
    renderPooled(body, data);
    return;
  }
  const text = data.text;
  const [ch] = data.image_shape;
  const stageName = p.stage === "activated" ? "activated" : "conv";
  body.append(el("p", {},
    el("strong", {text: `${stageName} pixel (${data.at[0]}, ${data.at[1]}) of ${data.kernel_name}`}),
    ` in the ${shapeText(data.conv_shape)} map. The kernel covers input ` +
    `${fieldText(data.receptive_field)}${data.padded.flat().some(Boolean) ? " (dashed cells lie in the padding)" : ""}.`));
  body.append(commandBlock(data.command));
  const labels = ch === 3 ? ["R", "G", "B"] : [null];
  labels.forEach((label, c) => {
    const suffix = label ? ` [${label}]` : "";
    body.append(el("div", {class: "eq"},
      matrix(text.patch_raw[c], `patch (0-255)${suffix}`, {numbers: data.patch_raw[c], padded: data.padded}),
      el("span", {class: "op", text: "×"}),
      matrix(text.kernel[c], `kernel${suffix}`, {numbers: data.kernel[c], signed: true}),
      el("span", {class: "op", text: "="}),
      matrix(text.products_raw[c], `products${suffix}`,
        {numbers: data.products[c], padded: data.padded, signed: true})));
  });
  body.append(el("p", {class: "sum", "data-testid": "sum-written",
    text: `sum of products = ${text.sum_lines.join(" = ")}`}));
  const conv = el("b", {"data-testid": "conv-value", "data-value": String(data.conv), text: text.conv});
  body.append(el("p", {class: "result"}, "conv value = sum / 255",
    data.bias ? ` + bias ${text.bias}` : "", " = ", conv));
  body.append(el("p", {class: "result"}, `${data.activation}(${text.conv}) = `,
    el("b", {"data-testid": "activated-value", "data-value": String(data.activated), text: text.activated})));
  body.append(el("p", {}, pooledNote(data)));
  if (data.convolution) {
    const flipped = data.convolution;
    body.append(el("p", {class: "muted small", text: "True convolution turns the kernel 180° first:"}));
    labels.forEach((label, c) => {
      const suffix = label ? ` [${label}]` : "";
      body.append(el("div", {class: "eq"},
        matrix(text.patch_raw[c], `patch (0-255)${suffix}`, {numbers: data.patch_raw[c], padded: data.padded}),
        el("span", {class: "op", text: "×"}),
        matrix(text.flipped_kernel[c], `kernel turned 180°${suffix}`, {numbers: flipped.kernel[c], signed: true})));
    });
    body.append(el("p", {class: "sum", text: `convolution sum = ${flipped.sum_written}`}));
    body.append(el("p", {class: "result"}, "convolution value = ",
      el("b", {"data-testid": "convolution-value", "data-value": String(flipped.conv), text: text.convolution})));
  }
  if (data.note) body.append(el("p", {class: "note", "data-testid": "note", text: data.note}));
}

function pooledNote(data) {
  if (!data.pooled_shape) return "No pool stage: the activated value is the layer's output.";
  if (!data.text.pooled.length) return "This pixel lies in no pooling window (the windows skip it), so pooling drops it.";
  return data.text.pooled.map((cell) => {
    let line = `Feeds pooled cell (${cell.cell[0]}, ${cell.cell[1]}) = ${cell.value_text}`;
    if (cell.wins === true) line += ": this pixel is the maximum, it wins.";
    else if (cell.wins === false) line += `: the maximum is at (${cell.winner[0]}, ${cell.winner[1]}), this pixel is dropped.`;
    else line += ": the mean of its window.";
    return line;
  }).join(" ");
}

function renderPooled(body, data) {
  const text = data.text;
  const window_ = data.window;
  const winner = data.winner ? [window_.rows.indexOf(data.winner.row), window_.cols.indexOf(data.winner.col)] : null;
  const size = window_.rows.length;
  body.append(el("p", {},
    el("strong", {text: `pooled cell (${data.at[0]}, ${data.at[1]}) of ${data.kernel_name}`}),
    ` in the ${shapeText(data.pooled_shape)} map: a ${size}×${size} ${data.pool_type} pool ` +
    `over conv rows ${window_.top}..${window_.bottom}, cols ${window_.left}..${window_.right} ` +
    `(input ${fieldText(data.receptive_field)}).`));
  body.append(commandBlock(data.command));
  body.append(el("div", {class: "eq"},
    matrix(text.conv_values, "conv", {numbers: data.conv_values, signed: true}),
    el("span", {class: "op", text: "→"}),
    matrix(text.values, data.layer.activation, {numbers: data.values, win: winner}),
    el("span", {class: "op", text: "→"}),
    matrix([[text.value]], "pooled")));
  const value = el("b", {"data-testid": "pooled-value", "data-value": String(data.value), text: text.value});
  if (data.winner) {
    body.append(el("p", {class: "result"}, "max = ", value,
      `, won by conv pixel (${data.winner.row}, ${data.winner.col}); the other ${size * size - 1} values are dropped.`));
  } else {
    body.append(el("p", {class: "result"}, `mean of ${size * size} values = `, value));
  }
  const row = view.rows[data.kernel_index];
  for (const stage of ["conv", "activated"]) {
    const parts = row?.stages[stage];
    if (parts?.stats && parts.windowBox) {
      placeBox(parts.windowBox, parts, window_.top, window_.left, size, size);
    }
  }
}

// On a phone the panel moves under the tapped row, so the explanation is where the finger is.
export function placeExplainNear(rowEl) {
  const aside = $("#explain");
  if (isPhone() && aside.previousElementSibling !== rowEl) rowEl.after(aside);
}

export function restoreExplain() {
  const aside = $("#explain");
  if (!isPhone() && aside.parentElement !== $(".layout")) $(".layout").append(aside);
}
