// The panel that works out one hovered pixel: it asks POST /api/explain for the drawn state
// and styles the JSON's parts (headings, sentences, grids, the written sum, notes: worded
// once by convlens.explain_parts, the same words `convlens explain` prints), adding the
// `convlens explain` command that prints the same numbers. Whenever its inputs change the
// panel is recomputed (the probe survives) or cleared (it does not): it never shows numbers
// of an image or a kernel that is no longer on screen.
import {errorText, postJSON} from "./api.js";
import {placeBox, showField} from "./boxes.js";
import {bodyKey} from "./body.js";
import {$, el, isPhone, showMessage} from "./dom.js";
import {hideMagnifier, showMagnifier} from "./magnifier.js";
import {cssColour} from "./numbers.js";
import {maybeSlide} from "./slide.js";
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

// ---- the parts of the JSON (convlens.explain_parts), styled: the words are the library's

// A grid of numbers, coloured by its scale: raw pixels (0-255), signed (around 0), plain.
function table(part) {
  const luts = view.luts;
  const values = part.values.flat();
  const limit = part.scale === "raw" ? 255 : Math.max(0, ...values.map(Math.abs));
  const node = el("table", {class: "mat", "data-key": part.key}, el("caption", {text: part.caption}));
  part.cells.forEach((line, r) => {
    const tr = el("tr");
    line.forEach((text, c) => {
      const td = el("td", {text});
      if (limit) {
        const share = part.values[r][c] / limit;
        const signed = part.scale === "signed";
        const index = signed ? 127.5 + share * 110 : 40 + share * 215;
        td.style.background = cssColour(signed ? luts.signed : luts.unsigned, index);
        td.style.color = (signed ? Math.abs(share) > 0.7 : index < 140) ? "#fff" : "#111";
      }
      const mark = part.marks?.[r]?.[c];
      if (mark === "padding") { td.classList.add("padded"); td.title = "padding"; }
      if (mark === "winner") { td.classList.add("win"); td.title = "the winner"; }
      tr.append(td);
    });
    node.append(tr);
  });
  return node;
}

function spanNode(span) {
  if (!span.style && !span.key) return span.text;
  const tag = span.style === "strong" ? "b" : "span";
  const attrs = {class: span.style ? `span-${span.style}` : null};
  if (span.key && span.value !== null) {
    attrs["data-key"] = span.key;
    attrs["data-value"] = String(span.value);
    if (span.style === "strong") attrs["data-testid"] = `${span.key}-value`;
  }
  return el(tag, {...attrs, text: span.text});
}

export function partNode(part) {
  switch (part.kind) {
    case "heading":
      return el("p", {class: `heading level-${part.level}`},
        el("strong", {text: part.text}));
    case "sentence":
      return el("p", {class: `sentence ${part.key === "conv" || part.key === "activation" ||
        part.key === "max" || part.key === "mean" ? "result" : ""}`, "data-key": part.key},
      ...part.spans.map(spanNode));
    case "note":
      return el("p", {class: "note", "data-testid": part.key === "cross_correlation" ? "note" : null,
        text: part.text});
    case "sum":
      return el("p", {class: "sum", "data-testid": part.key === "sum" ? "sum-written" : part.key,
        title: part.unit || null, text: `${part.label} = ${part.lines.join(" = ")}`});
    case "grids": {
      const row = el("div", {class: "eq", "data-key": part.key});
      part.tables.forEach((item, i) => {
        if (item.detail) return;                          // the long renderers' tables only
        if (part.operators[i]) row.append(el("span", {class: "op", text: part.operators[i]}));
        row.append(table(item));
      });
      return row;
    }
    default:
      return null;
  }
}

function render(p, data, drawn) {
  exposed.explained += 1;
  const body = panel();
  body.replaceChildren();
  delete body.dataset.stale;
  body.dataset.kind = data.kind;
  body.dataset.at = `${p.k},${p.stage},${data.at[0]},${data.at[1]}`;
  body.dataset.image = drawn.image;
  if (!maybeSlide(p, data)) {
    showField(data.receptive_field);
    showMagnifier(p, data);
  }
  for (const part of data.parts) {
    body.append(partNode(part));
    if (part.kind === "sentence" && part.key === "where") body.append(commandBlock(data.command));
  }
  if (data.kind === "pooled") {
    const size = data.window.rows.length;
    const row = view.rows[data.kernel_index];
    for (const stage of ["conv", "activated"]) {
      const parts = row?.stages[stage];
      if (parts?.stats && parts.windowBox) {
        placeBox(parts.windowBox, parts, data.window.top, data.window.left, size, data.window.cols.length);
      }
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
