// The stages of every kernel: the state goes to POST /api/stages (latest edit wins), the
// uint8 maps that come back are drawn, and the size chain is written out. A new image, colour
// mode or working size asks for the input picture in the same request, and the model panel
// follows only once the maps are on screen.
import {errorText, postJSON, unpack} from "./api.js";
import {stateBody} from "./body.js";
import {$, clearMessage, el, setStatus, showMessage, wxh} from "./dom.js";
import {drawMap} from "./draw.js";
import {markStale} from "./explain.js";
import {inputDisplaySide, showInput} from "./input.js";
import {runModel} from "./model.js";
import {short} from "./numbers.js";
import {reprobe} from "./probe.js";
import {exposed, state, view} from "./state.js";

const seqs = {client: Math.random().toString(36).slice(2), next: 0, drawn: 0};
const flight = {busy: false, dirty: false, queued: false, editAt: null, slow: null};
const BUSY_AFTER_MS = 150;        // an answer later than this shows "computing…"
export const STAGES = ["conv", "activated", "pooled"];

// The inputs changed: the stages are asked for again (and the explanation marked stale). The
// request goes out at once, after the current event's other changes (one request for them
// all); while one is on its way, the latest state follows when it is answered, so typing never
// piles up requests and no keystroke waits for a timer.
export function scheduleStages() {
  markStale();
  if (flight.editAt === null) flight.editAt = performance.now();
  if (flight.busy) { flight.dirty = true; return; }
  if (flight.queued) return;
  flight.queued = true;
  queueMicrotask(() => {
    flight.queued = false;
    if (flight.busy) flight.dirty = true;
    else sendStages();
  });
}

// What the input picture drawn now depends on.
const inputKey = (body) => JSON.stringify([body.image, body.mode, body.max_side]);

// The stages cannot be drawn (a bad cell or setting): the picture of a new image, mode or
// working size is shown all the same (GET /api/input), so the page shows what was chosen.
async function showInputAlone() {
  const body = {image: state.image, mode: state.mode, max_side: state.maxSide};
  const key = inputKey(body);
  if (key === view.inputKey) return;
  const params = new URLSearchParams({image: body.image, mode: body.mode,
    display: String(inputDisplaySide())});
  if (body.max_side !== null) params.set("max_side", String(body.max_side));
  const response = await fetch(`/api/input?${params}`);
  if (!response.ok || inputKey({image: state.image, mode: state.mode, max_side: state.maxSide}) !== key) return;
  const {head, arrays} = unpack(await response.arrayBuffer());
  showInput(head, arrays.input, head.factor);
  view.inputKey = key;
  runModel();
}

function displaySide() {
  const limits = view.meta.limits.display;
  const wrap = $(".krow .stage .map-wrap") || $("#rows");
  const width = wrap.getBoundingClientRect().width || 300;
  const wanted = Math.ceil((width * (window.devicePixelRatio || 1)) / 64) * 64;
  return Math.max(limits[0], Math.min(limits[1], wanted));
}

async function sendStages() {
  const body = stateBody();
  const editAt = flight.editAt ?? performance.now();
  flight.editAt = null;
  flight.dirty = false;
  if (!body) { showInputAlone(); return; }          // a bad cell: the new picture still shows
  const wantsInput = inputKey(body) !== view.inputKey;
  const request = {...body, display: displaySide(), client: seqs.client, seq: ++seqs.next,
    have: view.rows.map((row) => row.drawn || null),
    input: wantsInput ? inputDisplaySide() : null};
  flight.busy = true;
  // "computing…" only for an answer slow enough to notice: a status line changed for every
  // edit costs two frames of layout and paint
  flight.slow = setTimeout(() => setStatus("computing…", true), BUSY_AFTER_MS);
  const sentAt = performance.now();
  let response;
  try {
    response = await postJSON("/api/stages", request);
  } catch (err) {
    finishFlight();
    showMessage(`the server cannot be reached (${err.message}); is convlens serve still running?`);
    setStatus("offline");
    return;
  }
  if (response.status === 409) { finishFlight(); return; }
  if (!response.ok) {
    const text = await errorText(response);
    finishFlight();
    showMessage(text);
    setStatus("not updated: see the message");
    if (wantsInput) showInputAlone();
    return;
  }
  const buffer = await response.arrayBuffer();
  const receivedAt = performance.now();
  finishFlight();                                    // a newer edit goes out before we draw
  if (request.seq < seqs.drawn) return;
  seqs.drawn = request.seq;
  const {head, arrays} = unpack(buffer);
  clearMessage();
  if (arrays.input) {
    showInput(head.image, arrays.input, head.input_factor);
    view.inputKey = inputKey(body);
  }
  drawStages(head, arrays, body);
  const drawnAt = performance.now();
  requestAnimationFrame(() => {
    const shownAt = performance.now();
    if (arrays.input) {
      const load = view.loadStart;
      if (load && load.image === body.image) {
        exposed.loads.push({total_ms: shownAt - load.at, image: body.image,
          width: head.image.shape[2], height: head.image.shape[1], upload_ms: exposed.uploadMs,
          request_ms: receivedAt - sentAt, server_ms: head.timing.server_ms});
        view.loadStart = null;
      }
      setTimeout(runModel, 0);                   // after the maps are on screen
    }
    const timing = {
      seq: request.seq, total_ms: shownAt - editAt, debounce_ms: sentAt - editAt,
      request_ms: receivedAt - sentAt, draw_ms: drawnAt - receivedAt, paint_ms: shownAt - drawnAt,
      server_ms: head.timing.server_ms, compute_ms: head.timing.compute_ms,
      recomputed: head.timing.recomputed, bytes: buffer.byteLength, kernels: head.maps.length,
      height: head.image.shape[1], width: head.image.shape[2],
    };
    exposed.timings.push(timing);
    exposed.renders += 1;
    document.body.dataset.renders = String(exposed.renders);
    const count = head.maps.length;
    setStatus(`${count} kernel${count > 1 ? "s" : ""} on ${wxh([timing.width, timing.height])} px`);
    $("#timing-text").textContent = `shown ${Math.round(timing.total_ms)} ms after the edit: ` +
      `server ${Math.round(timing.server_ms)} ms, ${timing.recomputed} of ${count} kernels ` +
      `recomputed, ${(timing.bytes / 1024).toFixed(0)} KiB sent`;
  });
}

function finishFlight() {
  clearTimeout(flight.slow);
  flight.busy = false;
  if (flight.dirty) sendStages();
}

function drawStages(head, arrays, body) {
  view.header = head;
  view.drawnBody = body;
  head.maps.forEach((map, k) => {
    const row = view.rows[k];
    if (!row) return;
    row.el.classList.toggle("no-pool", !head.pooling);
    if (!map.sent && row.drawn !== map.key) return;      // rebuilt meanwhile: the next update draws it
    for (const stage of STAGES) {
      const parts = row.stages[stage];
      const stats = map[stage];
      if (!stats) {
        parts.figure.classList.add("off");
        parts.caption.innerHTML = "<b>pooled</b>: no pooling, the activated map is the output";
        parts.stats = null;
        continue;
      }
      parts.figure.classList.remove("off");
      if (map.sent) {
        parts.array = arrays[`${stage}${k}`];
        parts.display = parts.array.shape;
        parts.painted = null;
      }
      parts.stats = stats;
      parts.name = map.name;
      // true size against the input: a pooled or stride-2 map is drawn a quarter as large
      parts.wrap.style.width = `${Math.min(100, (100 * stats.shape[1]) / head.image.shape[2])}%`;
    }
    row.drawn = map.key;
  });
  paintMaps();
  renderSizes(head);
  reprobe();
}

// ---- colours: one scale per stage (kernels compared, as overview.png draws them) or each
// map its own. The server sends each map on its own scale (serve/wire.py); a shared scale
// only re-maps its 256 colours.

const sharedScale = () => $("#scale").value === "stage";

// The colour scale of each (stage, colour map): the widest of its maps' scales.
function stageScales() {
  const scales = {};
  for (const row of view.rows) {
    for (const stage of STAGES) {
      const stats = row.stages[stage]?.stats;
      if (!stats || !row.stages[stage].array) continue;
      const key = `${stage}:${stats.cmap}`;
      const scale = scales[key] || {vmin: 0, vmax: 0};
      scales[key] = {vmin: Math.min(scale.vmin, stats.vmin), vmax: Math.max(scale.vmax, stats.vmax)};
    }
  }
  return scales;
}

// The colour table that draws a map sent on its own scale `stats` on the scale `scale`.
function remapped(lut, stats, scale) {
  if (scale.vmin === stats.vmin && scale.vmax === stats.vmax) return lut;
  const out = new Uint32Array(256);
  const span = (scale.vmax - scale.vmin) || 1;
  for (let i = 0; i < 256; i++) {
    const value = stats.signed ? ((i - 127.5) / 127.5) * stats.vmax :
      stats.vmin + (i / 255) * (stats.vmax - stats.vmin);
    const index = stats.signed ? 127.5 + (value / (scale.vmax || 1)) * 127.5 :
      ((value - scale.vmin) / span) * 255;
    out[i] = lut[Math.max(0, Math.min(255, Math.round(index)))];
  }
  return out;
}

// Draw every map on its scale and write its caption: size, true range, and whether the
// colours are cut (values past the scale get the end colours).
export function paintMaps() {
  const shared = sharedScale();
  const scales = stageScales();
  for (const row of view.rows) {
    for (const stage of STAGES) {
      const parts = row.stages[stage];
      const stats = parts?.stats;
      if (!stats || !parts.array) continue;
      const scale = shared ? scales[`${stage}:${stats.cmap}`] : stats;
      const key = `${scale.vmin},${scale.vmax}`;
      if (parts.painted !== key) {
        drawMap(parts.canvas, parts.array, remapped(view.luts[stats.cmap], stats, scale));
        parts.painted = key;
      }
      const [h, w] = stats.shape;
      const cut = stats.min < scale.vmin || stats.max > scale.vmax;
      const top = stats.signed ? `±${short(scale.vmax)}` : `[${short(scale.vmin)}, ${short(scale.vmax)}]`;
      parts.caption.replaceChildren(el("b", {text: stage}),
        ` ${wxh([w, h])} · [${short(stats.min)}, ${short(stats.max)}]`,
        stats.factor > 1 ? el("span", {title: `drawn at 1/${stats.factor} size`,
          text: ` (shown at 1/${stats.factor})`}) : "",
        cut ? el("span", {class: "cut", "data-testid": "cut", text: ` · colours cut at ${top}`}) : "");
      parts.wrap.setAttribute("aria-label",
        `${stage} map of ${parts.name}, ${w} wide and ${h} high, values ${short(stats.min)} to ${short(stats.max)}. ` +
        "Arrow keys move the probe; the explanation follows.");
    }
  }
}

function renderSizes(head) {
  const box = $("#formula");
  box.replaceChildren();
  const chain = head.chain;
  const size = ([h, w]) => wxh([w, h]);
  chain.layers.forEach((layer) => {
    const sameAxes = layer.rows.formula === layer.cols.formula;
    const item = el("div", {class: "layer"},
      el("div", {}, el("b", {text: layer.kind === "conv" ? "conv" : "pool"}), ` ${layer.layer}: ` +
        `${size(layer.input)} → ${size(layer.output)}`),
      el("code", {text: sameAxes ? `W, H: ${layer.rows.formula}` :
        `W: ${layer.cols.formula}\nH: ${layer.rows.formula}`}));
    if (layer.kind === "conv" && layer.same_padding) {
      item.append(el("div", {class: "muted small", text: `padding that keeps the size at stride 1: ${layer.same_padding}`}));
    }
    box.append(item);
  });
  const field = chain.receptive_field;
  box.append(el("div", {class: "muted small",
    text: `one ${head.pooling ? "pooled" : "conv"} pixel sees ${size(field)} input pixels`}));
  for (const warning of chain.warnings) box.append(el("div", {class: "warn small", text: warning}));
}
