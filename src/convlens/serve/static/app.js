// convlens explorer: the page's state, its requests to the local server, and the drawing.
// Plain JavaScript, no build step, no external requests. The server computes every number
// (with the convlens library); this file only keeps the state, sends it, and draws the
// uint8 maps it gets back onto canvases with the figures' colour tables.
"use strict";

const DEBOUNCE_MS = 25;           // typing is coalesced this long before a request goes out
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;
const CHANNELS = ["R", "G", "B"];

const state = {
  image: "sample-chelsea", imageName: "chelsea.png", mode: "gray", maxSide: 1024,
  kernels: [],                    // [{name, preset, planes: [[[text]]]}]: 1 shared or 3 (R, G, B) grids
  layer: {},
};
let meta = null;
let luts = {};                    // name -> Uint32Array(256) of RGBA pixels
let rows = [];                    // one entry per kernel row: its elements
let header = null;                // header of the stages drawn now
let drawnBody = null;             // the request body the drawn stages came from
let inputHeader = null;
let probe = null;                 // {k, stage, row, col}
const seqs = {client: Math.random().toString(36).slice(2), next: 0};
const flight = {busy: false, dirty: false, timer: null, editAt: null};
const explainFlight = {busy: false, pending: null};

// exposed for tests and the benchmark
window.convlens = {timings: [], renders: 0, state, explained: 0};

const $ = (selector, root = document) => root.querySelector(selector);

// The server refuses any POST without the token it wrote into this page's HTML, so no other web
// site can drive it (it can neither read this page nor send the header without the server's
// consent). Every state-changing request goes through post().
const TOKEN = $('meta[name="convlens-token"]')?.content || "";

function post(url, options = {}) {
  return fetch(url, {...options, method: "POST",
    headers: {...(options.headers || {}), "X-Convlens-Token": TOKEN}});
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// ------------------------------------------------------------------ messages and status

function showMessage(text) {
  $("#message-text").textContent = text;
  $("#message").hidden = false;
}

function clearMessage() {
  $("#message").hidden = true;
  $("#message-text").textContent = "";
}

function setStatus(text, busy = false) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("busy", busy);
}

async function errorText(response) {
  try {
    const data = await response.json();
    return data.error || JSON.stringify(data);
  } catch (err) {
    return `the server answered ${response.status} ${response.statusText}`;
  }
}

// ------------------------------------------------------------------ numbers and cells

function parseCell(text) {
  const value = String(text).trim();
  if (value === "") return {error: "is empty"};
  if (NUMBER.test(value)) return {value: Number(value)};
  const parts = value.split("/");
  if (parts.length === 2 && NUMBER.test(parts[0].trim()) && NUMBER.test(parts[1].trim())) {
    const bottom = Number(parts[1]);
    if (bottom === 0) return {error: "divides by zero"};
    return {value: Number(parts[0]) / bottom};
  }
  return {error: `'${value}' is not a number (write e.g. 2, -0.5 or 1/16)`};
}

function short(value) {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value - Math.round(value)) < 1e-9) return String(Math.round(value));
  return Number(value.toPrecision(3)).toString();
}

function lutOf(table) {
  const lut = new Uint32Array(256);
  table.forEach(([r, g, b], i) => { lut[i] = ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0; });
  return lut;
}

function cssColour(lut, index) {
  const v = lut[Math.max(0, Math.min(255, Math.round(index)))];
  return `rgb(${v & 255},${(v >>> 8) & 255},${(v >>> 16) & 255})`;
}

// ------------------------------------------------------------------ binary messages

function unpack(buffer) {
  const view = new DataView(buffer);
  const length = view.getUint32(0, true);
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  const base = 4 + length + ((8 - ((4 + length) % 8)) % 8);
  const arrays = {};
  for (const entry of head.arrays) {
    const count = entry.shape.reduce((a, b) => a * b, 1);
    arrays[entry.name] = {shape: entry.shape, data: new Uint8Array(buffer, base + entry.offset, count)};
  }
  return {head, arrays};
}

function drawMap(canvas, array, lut) {
  const [height, width] = array.shape;
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  const pixels = new Uint32Array(image.data.buffer);
  const source = array.data;
  for (let i = 0; i < source.length; i++) pixels[i] = lut[source[i]];
  context.putImageData(image, 0, 0);
}

function drawInput(canvas, array) {
  const [channels, height, width] = array.shape;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  const out = image.data;
  const src = array.data;
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    const r = src[i];
    out[4 * i] = r;
    out[4 * i + 1] = channels === 3 ? src[plane + i] : r;
    out[4 * i + 2] = channels === 3 ? src[2 * plane + i] : r;
    out[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

// ------------------------------------------------------------------ the request body

// (kh, kw) numbers for a shared kernel, (3, kh, kw) for one with its own R, G and B grids
function kernelWeights(kernel, index, report) {
  const planes = kernel.planes.map((cells, p) => cells.map((line, r) => line.map((text, c) => {
    const parsed = parseCell(text);
    if (parsed.error && report) {
      const where = kernel.planes.length === 3 ? `${CHANNELS[p]} ` : "";
      report.push(`kernel ${index + 1} (${kernel.name}), ${where}row ${r + 1}, col ${c + 1}: ${parsed.error}`);
    }
    return parsed.error ? null : parsed.value;
  })));
  return planes.length === 1 ? planes[0] : planes;
}

function layerBody() {
  const layer = state.layer;
  const padding = layer.padding === "same" ? "same" : Number(layer.padding);
  return {
    stride: layer.stride, padding, padding_mode: layer.padding_mode, dilation: layer.dilation,
    activation: layer.activation, pool: layer.pool === "none" ? null : Number(layer.pool),
    pool_type: layer.pool_type,
    pool_stride: layer.pool_stride === "auto" ? null : Number(layer.pool_stride),
  };
}

function stateBody() {
  const problems = [];
  const kernels = state.kernels.map((kernel, index) => (
    {name: kernel.name, weights: kernelWeights(kernel, index, problems)}));
  for (const key of ["stride", "dilation"]) {
    const value = state.layer[key];
    if (!Number.isInteger(value) || value < 1 || value > 16) {
      problems.push(`${key} must be a whole number from 1 to 16`);
    }
  }
  if (problems.length) {
    showMessage(problems[0] + (problems.length > 1 ? ` (and ${problems.length - 1} more)` : ""));
    return null;
  }
  return {image: state.image, mode: state.mode, max_side: state.maxSide, kernels, layer: layerBody()};
}

function displaySide() {
  const wrap = $(".krow .stage .map-wrap") || $("#rows");
  const width = wrap.getBoundingClientRect().width || 300;
  const wanted = Math.ceil((width * (window.devicePixelRatio || 1)) / 64) * 64;
  return Math.max(meta.limits.display[0], Math.min(meta.limits.display[1], wanted));
}

// ------------------------------------------------------------------ stages: latest edit wins

function scheduleStages() {
  if (flight.editAt === null) flight.editAt = performance.now();
  clearTimeout(flight.timer);
  flight.timer = setTimeout(() => {
    if (flight.busy) flight.dirty = true;
    else sendStages();
  }, DEBOUNCE_MS);
}

async function sendStages() {
  const body = stateBody();
  const editAt = flight.editAt ?? performance.now();
  flight.editAt = null;
  flight.dirty = false;
  if (!body) return;
  const request = {...body, display: displaySide(), client: seqs.client, seq: ++seqs.next,
    have: rows.map((row) => row.drawn || null)};
  flight.busy = true;
  setStatus("computing…", true);
  const sentAt = performance.now();
  let response;
  try {
    response = await post("/api/stages", {
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(request),
    });
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
    return;
  }
  const buffer = await response.arrayBuffer();
  const receivedAt = performance.now();
  finishFlight();                                    // a newer edit goes out before we draw
  if (request.seq < seqs.drawn) return;
  seqs.drawn = request.seq;
  const {head, arrays} = unpack(buffer);
  clearMessage();
  drawStages(head, arrays, body);
  const drawnAt = performance.now();
  requestAnimationFrame(() => {
    const shownAt = performance.now();
    const timing = {
      seq: request.seq, total_ms: shownAt - editAt, debounce_ms: sentAt - editAt,
      request_ms: receivedAt - sentAt, draw_ms: drawnAt - receivedAt, paint_ms: shownAt - drawnAt,
      server_ms: head.timing.server_ms, compute_ms: head.timing.compute_ms,
      recomputed: head.timing.recomputed, bytes: buffer.byteLength, kernels: head.maps.length,
      height: head.image.shape[1], width: head.image.shape[2],
    };
    window.convlens.timings.push(timing);
    window.convlens.renders += 1;
    document.body.dataset.renders = String(window.convlens.renders);
    const shape = head.image.shape;
    setStatus(`${head.maps.length} kernel${head.maps.length > 1 ? "s" : ""} on ${shape[1]}×${shape[2]}: ` +
      `shown ${Math.round(timing.total_ms)} ms after the edit (server ${Math.round(timing.server_ms)} ms, ` +
      `${timing.recomputed} recomputed)`);
  });
}

function finishFlight() {
  flight.busy = false;
  if (flight.dirty) sendStages();
}

function drawStages(head, arrays, body) {
  header = head;
  drawnBody = body;
  const pooling = head.pooling;
  head.maps.forEach((map, k) => {
    const row = rows[k];
    if (!row) return;
    row.el.classList.toggle("no-pool", !pooling);
    if (!map.sent && row.drawn !== map.key) return;      // rebuilt meanwhile: the next update draws it
    for (const stage of ["conv", "activated", "pooled"]) {
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
        drawMap(parts.canvas, arrays[`${stage}${k}`], luts[stats.cmap]);
        parts.display = arrays[`${stage}${k}`].shape;
      }
      parts.stats = stats;
      const [h, w] = stats.shape;
      parts.caption.innerHTML = `<b>${stage}</b> ${h}×${w} · [${short(stats.min)}, ${short(stats.max)}]` +
        (stats.factor > 1 ? ` <span title="drawn at 1/${stats.factor} size">(1/${stats.factor})</span>` : "");
      parts.wrap.setAttribute("aria-label",
        `${stage} map of ${map.name}, ${h} by ${w}, values ${short(stats.min)} to ${short(stats.max)}. ` +
        "Arrow keys move the probe; the explanation follows.");
    }
    row.drawn = map.key;
  });
  renderSizes(head);
  if (probe) {
    if (!placeProbe(probe)) clearProbe();
    else requestExplain(probe);
  }
}

// ------------------------------------------------------------------ sizes

function renderSizes(head) {
  const box = $("#formula");
  box.replaceChildren();
  const chain = head.chain;
  chain.layers.forEach((layer) => {
    const sameAxes = layer.rows.formula === layer.cols.formula;
    const item = el("div", {class: "layer"},
      el("div", {}, el("b", {text: layer.kind === "conv" ? "conv" : "pool"}), ` ${layer.layer}: ` +
        `${layer.input.join("×")} → ${layer.output.join("×")}`),
      el("code", {text: sameAxes ? `H, W: ${layer.rows.formula}` :
        `H: ${layer.rows.formula}\nW: ${layer.cols.formula}`}));
    if (layer.kind === "conv" && layer.same_padding) {
      item.append(el("div", {class: "muted small", text: `padding that keeps the size at stride 1: ${layer.same_padding}`}));
    }
    box.append(item);
  });
  const field = chain.receptive_field;
  box.append(el("div", {class: "muted small",
    text: `one ${head.pooling ? "pooled" : "conv"} pixel sees ${field[0]}×${field[1]} input pixels`}));
  for (const warning of chain.warnings) box.append(el("div", {class: "warn small", text: warning}));
}

// ------------------------------------------------------------------ the input image

async function loadInput() {
  const params = new URLSearchParams({image: state.image, mode: state.mode,
    max_side: String(state.maxSide), display: String(inputDisplaySide())});
  const response = await fetch(`/api/input?${params}`);
  if (!response.ok) { showMessage(await errorText(response)); return false; }
  const {head, arrays} = unpack(await response.arrayBuffer());
  inputHeader = head;
  drawInput($("#input-canvas"), arrays.input);
  const [c, h, w] = head.shape;
  $("#input-caption").innerHTML = `<b>input</b> ${head.name}: ${c === 1 ? "gray" : "rgb"} ${h}×${w}` +
    (head.factor > 1 ? ` (drawn at 1/${head.factor})` : "");
  $("#image-info").textContent = `${head.name}: ${w}×${h} px, ${c === 1 ? "1 channel (gray)" : "3 channels (rgb)"}`;
  $("#input-canvas").setAttribute("aria-label", `the input image ${head.name}, ${h} by ${w}`);
  runModel();
  return true;
}

function inputDisplaySide() {
  const width = $("#input-wrap").getBoundingClientRect().width || 360;
  return Math.min(1024, Math.max(64, Math.ceil((width * (window.devicePixelRatio || 1)) / 64) * 64));
}

async function uploadFile(file) {
  if (!file) return;
  if (file.size > meta.limits.upload_bytes) {
    showMessage(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB, over the ` +
      `${Math.round(meta.limits.upload_bytes / 2 ** 20)} MiB limit; use a smaller image`);
    return;
  }
  setStatus(`loading ${file.name || "the image"}…`, true);
  const params = new URLSearchParams({name: file.name || "pasted.png", mode: state.mode,
    max_side: String(state.maxSide)});
  let response;
  try {
    response = await post(`/api/image?${params}`, {
      headers: {"Content-Type": "application/octet-stream"}, body: file,
    });
  } catch (err) {
    showMessage(`the upload failed (${err.message})`);
    return;
  }
  if (!response.ok) {
    showMessage(await errorText(response));
    setStatus("the image was not loaded: see the message");
    return;
  }
  const info = await response.json();
  state.image = info.id;
  state.imageName = info.name;
  const select = $("#sample");
  let option = select.querySelector('option[data-upload]');
  if (!option) {
    option = el("option", {"data-upload": true});
    select.prepend(option);
  }
  option.value = info.id;
  option.textContent = `${info.name} (yours)`;
  select.value = info.id;
  clearMessage();
  if (await loadInput()) { clearProbe(); scheduleStages(); }
}

// ------------------------------------------------------------------ kernel rows

function presetByName(name) {
  return meta.presets.find((p) => p.name === name);
}

function kernelFromPreset(name) {
  const preset = presetByName(name);
  return {name: preset.name, preset: preset.name, planes: [preset.cells.map((row) => row.slice())]};
}

// The exact text of a cell's value divided by n ("2" -> "2/3", "1/16" -> "1/48").
function dividedCell(text, n) {
  const parsed = parseCell(text);
  if (parsed.error) return text;
  if (parsed.value === 0) return "0";
  const parts = String(text).trim().split("/");
  return parts.length === 2 ? `${parts[0].trim()}/${Number(parts[1]) * n}` : `${parts[0]}/${n}`;
}

// A shared kernel sees the mean of R, G and B: each channel gets a third of its weights,
// so splitting it keeps every map as it was.
function splitChannels(kernel) {
  return {name: kernel.name, preset: "",
    planes: CHANNELS.map(() => kernel.planes[0].map((line) => line.map((t) => dividedCell(t, 3))))};
}

// The shared kernel that answers a gray image (R = G = B) as the three grids do: their sum.
function mergeChannels(kernel) {
  const cells = kernel.planes[0].map((line, r) => line.map((_, c) => {
    const values = kernel.planes.map((plane) => parseCell(plane[r][c]));
    const bad = values.findIndex((v) => v.error);
    if (bad >= 0) return kernel.planes[bad][r][c];
    return String(Number(values.reduce((sum, v) => sum + v.value, 0).toPrecision(12)));
  }));
  return {name: kernel.name, preset: "", planes: [cells]};
}

function buildRows() {
  const container = $("#rows");
  container.replaceChildren();
  rows = state.kernels.map((kernel, k) => buildRow(kernel, k));
  rows.forEach((row) => container.append(row.el));
  $("#add-kernel").disabled = state.kernels.length >= meta.limits.kernels;
}

function buildRow(kernel, k) {
  const node = $("#row-template").content.firstElementChild.cloneNode(true);
  const row = {el: node, k, stages: {}, inputs: []};
  node.setAttribute("aria-label", `kernel ${k + 1}: ${kernel.name}`);
  const preset = $(".preset", node);
  preset.setAttribute("aria-label", `kernel ${k + 1} preset`);
  preset.append(el("option", {value: "", text: "custom"}));
  for (const item of meta.presets) {
    preset.append(el("option", {value: item.name, text: item.name, title: item.description}));
  }
  preset.value = kernel.preset || "";
  preset.title = presetByName(kernel.preset)?.description || "your own numbers";
  preset.addEventListener("change", () => {
    if (!preset.value) return;
    state.kernels[k] = kernelFromPreset(preset.value);
    rebuild();
  });
  const size = $(".size", node);
  size.setAttribute("aria-label", `kernel ${k + 1} size`);
  for (let n = 1; n <= meta.limits.kernel_side; n++) size.append(el("option", {value: n, text: `${n}×${n}`}));
  const n = kernel.planes[0].length;
  size.value = String(n);
  size.addEventListener("change", () => { resizeKernel(k, Number(size.value)); rebuild(); });

  const apart = kernel.planes.length === 3;
  const grids = $(".grids", node);
  row.inputs = kernel.planes.map((cells, p) => {
    const channel = apart ? `${CHANNELS[p]} ` : "";
    const grid = el("div", {class: "grid", role: "grid",
      "aria-label": `kernel ${k + 1} ${channel}weights, ${n} by ${cells[0].length}`});
    grid.style.gridTemplateColumns = `repeat(${cells[0].length}, auto)`;
    grid.classList.toggle("wide", n >= 6);
    grids.append(apart ? el("div", {class: `plane plane-${CHANNELS[p]}`},
      el("span", {class: "plane-label", text: CHANNELS[p], "aria-hidden": "true"}), grid) : grid);
    return cells.map((line, r) => line.map((text, c) => {
      const input = el("input", {type: "text", inputmode: "decimal", value: text, autocomplete: "off",
        spellcheck: "false", "aria-label": `kernel ${k + 1} ${channel}row ${r + 1} column ${c + 1}`,
        "data-r": r, "data-c": c});
      input.addEventListener("input", () => editCell(k, p, r, c, input.value));
      input.addEventListener("keydown", (event) => moveInGrid(event, row.inputs[p], r, c));
      grid.append(input);
      return input;
    }));
  });
  colourCells(row, kernel);
  const split = $(".split", node);
  split.hidden = state.mode !== "rgb";
  split.textContent = apart ? "one grid for RGB" : "R, G, B apart";
  split.setAttribute("aria-pressed", String(apart));
  split.setAttribute("aria-label", `kernel ${k + 1}: ${apart ? "one grid shared by R, G and B" : "a grid per colour channel"}`);
  split.title = apart ? "merge the grids into one kernel shared by every channel (their sum)"
    : "give each colour channel its own weights (a shared kernel gives each a third)";
  split.addEventListener("click", () => {
    state.kernels[k] = apart ? mergeChannels(kernel) : splitChannels(kernel);
    rebuild();
    rows[k].inputs[0][0][0].focus();
  });
  $(".randomize", node).setAttribute("aria-label", `randomize kernel ${k + 1}`);
  $(".randomize", node).addEventListener("click", () => { randomizeKernel(k); rebuild(); });
  const remove = $(".remove", node);
  remove.setAttribute("aria-label", `remove kernel ${k + 1}`);
  remove.disabled = state.kernels.length <= 1;
  remove.addEventListener("click", () => {
    state.kernels.splice(k, 1);
    if (probe && probe.k >= state.kernels.length) clearProbe();
    rebuild();
  });

  for (const figure of node.querySelectorAll(".stage")) {
    const stage = figure.dataset.stage;
    const wrap = $(".map-wrap", figure);
    const parts = {figure, wrap, canvas: $("canvas", wrap), caption: $(".caption", figure),
      probeBox: $(".probe", wrap), windowBox: null, stats: null, display: null};
    if (stage !== "pooled") {
      parts.windowBox = el("div", {class: "box window", hidden: true});
      wrap.append(parts.windowBox);
    }
    wrap.setAttribute("role", "group");
    wrap.setAttribute("aria-label", `${stage} map of kernel ${k + 1}`);
    wrap.addEventListener("pointermove", (event) => pointAt(event, k, stage));
    wrap.addEventListener("pointerdown", (event) => pointAt(event, k, stage, true));
    wrap.addEventListener("focus", () => {
      if (!probe || probe.k !== k || probe.stage !== stage) {
        const stats = parts.stats;
        if (stats) setProbe({k, stage, row: Math.floor(stats.shape[0] / 2), col: Math.floor(stats.shape[1] / 2)});
      }
    });
    wrap.addEventListener("keydown", (event) => keyProbe(event, k, stage));
    row.stages[stage] = parts;
  }
  return row;
}

function rebuild() {
  buildRows();
  scheduleStages();
}

function colourCells(row, kernel) {
  const values = kernel.planes.map((cells) => cells.map((line) => line.map((t) => parseCell(t))));
  let limit = 0;
  for (const v of values.flat(2)) if (!v.error) limit = Math.max(limit, Math.abs(v.value));
  values.forEach((plane, p) => plane.forEach((line, r) => line.forEach((v, c) => {
    const input = row.inputs[p][r][c];
    if (v.error) {
      input.setAttribute("aria-invalid", "true");
      input.title = v.error;
      input.style.background = "";
      input.style.color = "";
      return;
    }
    input.removeAttribute("aria-invalid");
    input.title = "";
    const share = limit ? v.value / limit : 0;
    input.style.background = cssColour(luts.signed, 127.5 + share * 100);
    input.style.color = Math.abs(share) > 0.75 ? "#fff" : "";
  })));
}

function editCell(k, p, r, c, text) {
  const kernel = state.kernels[k];
  kernel.planes[p][r][c] = text;
  if (kernel.preset) {
    kernel.preset = "";
    kernel.name = "custom";
    const select = $(".preset", rows[k].el);
    select.value = "";
    select.title = "your own numbers";
  }
  colourCells(rows[k], kernel);
  scheduleStages();
}

function moveInGrid(event, inputs, r, c) {
  const input = event.target;
  const atStart = input.selectionStart === 0 && input.selectionEnd === 0;
  const atEnd = input.selectionStart === input.value.length;
  const all = input.selectionStart === 0 && input.selectionEnd === input.value.length;
  let target = null;
  if (event.key === "ArrowUp") target = [r - 1, c];
  else if (event.key === "ArrowDown" || event.key === "Enter") target = [r + 1, c];
  else if (event.key === "ArrowLeft" && (atStart || all)) target = [r, c - 1];
  else if (event.key === "ArrowRight" && (atEnd || all)) target = [r, c + 1];
  if (!target) return;
  const next = inputs[target[0]]?.[target[1]];
  if (next) {
    event.preventDefault();
    next.focus();
    next.select();
  }
}

// Grow or shrink every grid of kernel k to n x n about its centre; new cells are 0.
function resizeKernel(k, n) {
  const kernel = state.kernels[k];
  const old = kernel.planes[0].length;
  const shift = Math.floor((old - n) / 2);
  const planes = kernel.planes.map((cells) => Array.from({length: n}, (_, r) => Array.from({length: n}, (__, c) => {
    const [rr, cc] = [r + shift, c + shift];
    return rr >= 0 && rr < old && cc >= 0 && cc < old ? cells[rr][cc] : "0";
  })));
  state.kernels[k] = {name: "custom", preset: "", planes};
}

function randomizeKernel(k) {
  const kernel = state.kernels[k];
  const n = kernel.planes[0].length;
  let planes;
  do {
    planes = kernel.planes.map(() => Array.from({length: n}, () => Array.from({length: n}, () => String(Math.floor(Math.random() * 5) - 2))));
  } while (planes.flat(2).every((t) => t === "0"));
  state.kernels[k] = {name: "random", preset: "", planes};
}

function addKernel() {
  if (state.kernels.length >= meta.limits.kernels) return;
  const used = new Set(state.kernels.map((k) => k.preset));
  const size = state.kernels[0]?.planes[0].length ?? 3;
  const choice = meta.presets.find((p) => !used.has(p.name) && p.cells.length % 2 === size % 2)
    || meta.presets.find((p) => p.name === "identity");
  state.kernels.push(kernelFromPreset(choice.name));
  rebuild();
  rows[rows.length - 1].inputs[0][0][0].focus();
}

// ------------------------------------------------------------------ probing pixels

function pointAt(event, k, stage, tapped = false) {
  const parts = rows[k]?.stages[stage];
  if (!parts || !parts.stats) return;
  const rect = parts.canvas.getBoundingClientRect();
  const [dh, dw] = parts.display;
  const factor = parts.stats.factor;
  const [h, w] = parts.stats.shape;
  const y = (event.clientY - rect.top) / rect.height;
  const x = (event.clientX - rect.left) / rect.width;
  if (x < 0 || y < 0 || x >= 1 || y >= 1) return;
  const row = Math.min(h - 1, Math.floor(y * dh * factor));
  const col = Math.min(w - 1, Math.floor(x * dw * factor));
  if (probe && probe.k === k && probe.stage === stage && probe.row === row && probe.col === col) return;
  setProbe({k, stage, row, col});
  if (tapped && event.pointerType === "touch") placeExplainNear(rows[k].el);
}

function keyProbe(event, k, stage) {
  const steps = {ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1]};
  if (event.key === "Escape") { clearProbe(); return; }
  const step = steps[event.key];
  const parts = rows[k]?.stages[stage];
  if (!step || !parts?.stats) return;
  event.preventDefault();
  const size = event.shiftKey ? 10 : 1;
  const [h, w] = parts.stats.shape;
  const base = probe && probe.k === k && probe.stage === stage ? probe :
    {row: Math.floor(h / 2), col: Math.floor(w / 2)};
  setProbe({k, stage, row: Math.max(0, Math.min(h - 1, base.row + step[0] * size)),
    col: Math.max(0, Math.min(w - 1, base.col + step[1] * size))});
}

function setProbe(next) {
  probe = next;
  placeProbe(next);
  requestExplain(next);
}

function hideBoxes() {
  for (const row of rows) {
    for (const parts of Object.values(row.stages)) {
      parts.probeBox.hidden = true;
      if (parts.windowBox) parts.windowBox.hidden = true;
    }
  }
  $("#field-box").hidden = true;
}

function placeBox(box, parts, top, left, height, width) {
  const [dh, dw] = parts.display;
  const scaleH = dh * parts.stats.factor;
  const scaleW = dw * parts.stats.factor;
  box.style.top = `${(100 * top) / scaleH}%`;
  box.style.left = `${(100 * left) / scaleW}%`;
  box.style.height = `${(100 * height) / scaleH}%`;
  box.style.width = `${(100 * width) / scaleW}%`;
  box.hidden = false;
}

function placeProbe(p) {
  hideBoxes();
  const row = rows[p.k];
  const parts = row?.stages[p.stage];
  if (!parts?.stats) return false;
  const [h, w] = parts.stats.shape;
  if (p.row >= h || p.col >= w) return false;
  if (p.stage === "pooled") {
    placeBox(parts.probeBox, parts, p.row, p.col, 1, 1);
  } else {
    for (const stage of ["conv", "activated"]) {
      const other = row.stages[stage];
      if (other.stats) placeBox(other.probeBox, other, p.row, p.col, 1, 1);
    }
  }
  return true;
}

function clearProbe() {
  probe = null;
  hideBoxes();
}

function requestExplain(p) {
  explainFlight.pending = p;
  if (!explainFlight.busy) pumpExplain();
}

async function pumpExplain() {
  explainFlight.busy = true;
  while (explainFlight.pending) {
    const p = explainFlight.pending;
    explainFlight.pending = null;
    if (!drawnBody) continue;
    const body = {...drawnBody, stage: p.stage, kernel: p.k, row: p.row, col: p.col,
      flip: $("#flip").checked};
    let response;
    try {
      response = await post("/api/explain", {
        headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    } catch (err) {
      showMessage(`the server cannot be reached (${err.message})`);
      continue;
    }
    if (explainFlight.pending) continue;                 // a newer probe is waiting: skip this one
    if (!response.ok) { showMessage(await errorText(response)); continue; }
    const data = await response.json();
    if (probe !== p) continue;
    renderExplanation(p, data);
  }
  explainFlight.busy = false;
}

// ------------------------------------------------------------------ the explanation panel

function matrix(cells, caption, options = {}) {
  const {numbers = null, padded = null, win = null, signed = false} = options;
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

function fieldText(field) {
  return `rows ${field.top}..${field.bottom}, cols ${field.left}..${field.right}`;
}

function renderExplanation(p, data) {
  window.convlens.explained += 1;
  const body = $("#explain-body");
  body.replaceChildren();
  body.dataset.kind = data.kind;
  body.dataset.at = `${p.k},${p.stage},${data.at[0]},${data.at[1]}`;
  const map = header?.maps[p.k];
  showField(data.receptive_field);
  if (data.kind === "pooled") {
    renderPooled(body, data, map);
    return;
  }
  const text = data.text;
  const [ch] = data.image_shape;
  const stageName = p.stage === "activated" ? "activated" : "conv";
  body.append(el("p", {},
    el("strong", {text: `${stageName} pixel (${data.at[0]}, ${data.at[1]}) of ${data.kernel_name}`}),
    ` in the ${data.conv_shape[0]}×${data.conv_shape[1]} map. The kernel covers input ` +
    `${fieldText(data.receptive_field)}${data.padded.flat().some(Boolean) ? " (dashed cells lie in the padding)" : ""}.`));
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
  const convLine = el("p", {class: "result"}, "conv value = sum / 255",
    data.bias ? ` + bias ${text.bias}` : "", " = ", conv);
  body.append(convLine);
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
  body.append(el("p", {class: "note", text: "Cross-correlation, as PyTorch's Conv2d computes it: " +
    "each weight multiplies the pixel under it, the kernel is not turned round."}));
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

function renderPooled(body, data, map) {
  const text = data.text;
  const window_ = data.window;
  const winner = data.winner ? [window_.rows.indexOf(data.winner.row), window_.cols.indexOf(data.winner.col)] : null;
  const size = window_.rows.length;
  body.append(el("p", {},
    el("strong", {text: `pooled cell (${data.at[0]}, ${data.at[1]}) of ${data.kernel_name}`}),
    ` in the ${data.pooled_shape[0]}×${data.pooled_shape[1]} map: a ${size}×${size} ${data.pool_type} pool ` +
    `over conv rows ${window_.top}..${window_.bottom}, cols ${window_.left}..${window_.right} ` +
    `(input ${fieldText(data.receptive_field)}).`));
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
  const row = rows[data.kernel_index];
  for (const stage of ["conv", "activated"]) {
    const parts = row?.stages[stage];
    if (parts?.stats && parts.windowBox) {
      placeBox(parts.windowBox, parts, window_.top, window_.left, size, size);
    }
  }
}

function showField(field) {
  const box = $("#field-box");
  if (!field || !inputHeader) { box.hidden = true; return; }
  const [, h, w] = inputHeader.shape;
  const canvas = $("#input-canvas");
  const scaleH = canvas.height * inputHeader.factor;
  const scaleW = canvas.width * inputHeader.factor;
  const top = Math.max(0, field.top);
  const left = Math.max(0, field.left);
  const bottom = Math.min(h - 1, field.bottom);
  const right = Math.min(w - 1, field.right);
  box.classList.toggle("padded", field.top < 0 || field.left < 0 || field.bottom >= h || field.right >= w);
  box.style.top = `${(100 * top) / scaleH}%`;
  box.style.left = `${(100 * left) / scaleW}%`;
  box.style.height = `${(100 * (bottom - top + 1)) / scaleH}%`;
  box.style.width = `${(100 * (right - left + 1)) / scaleW}%`;
  box.hidden = false;
}

function placeExplainNear(rowEl) {
  const panel = $("#explain");
  if (window.matchMedia("(max-width: 799px)").matches) {
    if (panel.previousElementSibling !== rowEl) rowEl.after(panel);
  }
}

function restoreExplain() {
  const panel = $("#explain");
  if (!window.matchMedia("(max-width: 799px)").matches && panel.parentElement !== $(".layout")) {
    $(".layout").append(panel);
  }
}

// ------------------------------------------------------------------ the model panel

const NOT_MAPS = new Set(["Linear", "LazyLinear", "Flatten", "Dropout", "Softmax", "LogSoftmax"]);
const modelFlight = {seq: 0};
let modelInfo = null;

async function refreshModels() {
  const response = await fetch("/api/model");
  if (!response.ok) return;
  const data = await response.json();
  modelInfo = data.model;
  const options = [["", modelInfo ? `${modelInfo.source} (open)` : "none open"]];
  for (const path of data.found) {
    if (!modelInfo || path !== modelInfo.source) options.push([path, path]);
  }
  fillSelect($("#model-select"), options, "");
  $("#model-select").disabled = options.length === 1;
  showModel();
}

function showModel() {
  if (!modelInfo) { $("#model-body").hidden = true; return; }
  $("#model-describe").textContent = modelInfo.describe +
    (modelInfo.notes.length ? `. ${modelInfo.notes.join(" ")}` : "");
  const layers = modelInfo.layers.filter((layer) => !NOT_MAPS.has(layer.type));
  fillSelect($("#model-layer"), layers.map((l) => [l.name, `${l.name} (${l.type})`]),
    modelInfo.default_layer || layers[0]?.name || "");
  const convs = modelInfo.layers.filter((layer) => layer.conv);
  fillSelect($("#cam-layer"), [["", "the last conv layer"], ...convs.map((l) => [l.name, l.name])], "");
  fillSelect($("#cam-target"), [["", "the top prediction"],
    ...modelInfo.classes.map((name, i) => [String(i), `${i}: ${name}`])], "");
  $("#model-body").hidden = false;
  runModel();
}

async function runModel() {
  if (!modelInfo || !inputHeader) return;
  const seq = ++modelFlight.seq;
  const body = {image: state.image, max_side: state.maxSide, layer: $("#model-layer").value || null,
    cam_layer: $("#cam-layer").value || null, target: $("#cam-target").value || null,
    top: 16, display: 96};
  let response;
  try {
    response = await post("/api/model/run", {
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  } catch (err) {
    showMessage(`the server cannot be reached (${err.message})`);
    return;
  }
  if (seq !== modelFlight.seq) return;                   // a newer choice is on its way
  if (!response.ok) { showMessage(await errorText(response)); return; }
  const {head, arrays} = unpack(await response.arrayBuffer());
  if (seq !== modelFlight.seq) return;
  drawModel(head, arrays);
  window.convlens.modelRuns = (window.convlens.modelRuns || 0) + 1;
  document.body.dataset.modelRuns = String(window.convlens.modelRuns);
}

function drawModel(head, arrays) {
  const list = $("#predictions");
  list.replaceChildren(...head.predictions.map((p) => el("li", {"data-index": p.index},
    el("span", {class: "label", text: p.label, title: p.label}),
    el("span", {class: "bar", role: "presentation"}, el("i", {style: `width: ${(100 * p.probability).toFixed(1)}%`})),
    el("span", {class: "pct", text: `${(100 * p.probability).toFixed(1)}%`}))));
  if (!head.predictions.length) list.replaceChildren(el("li", {class: "muted", text: "the output is not one row of class scores"}));
  const cam = head.gradcam;
  if (cam) {
    drawCam($("#cam-canvas"), arrays.seen, arrays.cam);
    $("#cam-caption").innerHTML = "";
    $("#cam-caption").append(el("b", {text: "Grad-CAM"}),
      ` of "${cam.label}" (${(100 * cam.probability).toFixed(1)}%) at ${cam.layer}, on the ` +
      `${arrays.seen.shape[2]}×${arrays.seen.shape[1]} input the model sees; red = strongest evidence` +
      (cam.note ? `. ${cam.note}` : ""));
  }
  const layer = head.layer;
  $("#layer-caption").textContent = `${layer.name} (${layer.type}): ${layer.shape.join("×")} ` +
    `(channels × height × width)${layer.factor > 1 ? `, drawn at 1/${layer.factor}` : ""}; ` +
    `${head.channels.length} of ${layer.shape[0]} channels shown, each on its own scale`;
  const grid = $("#feature-grid");
  grid.replaceChildren();
  head.channels.forEach((channel, i) => {
    const canvas = el("canvas", {"aria-label": `channel ${channel.channel}`});
    const [, h, w] = arrays.maps.shape;
    drawMap(canvas, {shape: [h, w], data: arrays.maps.data.subarray(i * h * w, (i + 1) * h * w)},
      luts[channel.cmap]);
    grid.append(el("figure", {}, canvas, el("figcaption", {},
      `ch ${channel.channel} · mean ${short(channel.mean)}`, el("br"),
      `[${short(channel.min)}, ${short(channel.max)}]`)));
  });
  const filters = $("#filter-grid");
  filters.replaceChildren();
  const info = head.filters;
  $("#filters-title").hidden = !info;
  $("#filters-caption").textContent = info ?
    `${info.shape.join("×")} (filters × input channels × height × width): ${info.scale}; ` +
    "≈ names the nearest built-in kernel (cosine similarity)" :
    `${layer.name} is not a conv layer: it has no filters to show`;
  if (info) {
    const [count, channels, kh, kw] = arrays.filters.shape;
    for (let k = 0; k < count; k++) {
      const canvas = el("canvas", {"aria-label": `filter ${k}`});
      const tile = arrays.filters.data.subarray(k * channels * kh * kw, (k + 1) * channels * kh * kw);
      if (channels === 3) drawInput(canvas, {shape: [3, kh, kw], data: tile});
      else drawMap(canvas, {shape: [kh, kw], data: tile}, luts.signed);
      const match = info.matches[k];
      filters.append(el("figure", {}, canvas, el("figcaption", {},
        `filter ${k}`, el("br"), match ? `≈ ${match.name} ${match.cosine.toFixed(2)}` : "")));
    }
  }
}

function drawCam(canvas, seen, heat) {
  const [, h, w] = seen.shape;
  const scale = Math.max(1, Math.ceil(256 / Math.max(h, w)));
  const base = document.createElement("canvas");
  drawInput(base, seen);
  const overlay = document.createElement("canvas");
  overlay.width = w;
  overlay.height = h;
  const context = overlay.getContext("2d");
  const image = context.createImageData(w, h);
  for (let i = 0; i < heat.data.length; i++) {
    const colour = luts.heat[heat.data[i]];
    image.data[4 * i] = colour & 255;
    image.data[4 * i + 1] = (colour >>> 8) & 255;
    image.data[4 * i + 2] = (colour >>> 16) & 255;
    image.data[4 * i + 3] = Math.round(heat.data[i] * 0.5);
  }
  context.putImageData(image, 0, 0);
  canvas.width = w * scale;
  canvas.height = h * scale;
  const out = canvas.getContext("2d");
  out.imageSmoothingEnabled = false;
  out.drawImage(base, 0, 0, w * scale, h * scale);
  out.imageSmoothingEnabled = true;
  out.drawImage(overlay, 0, 0, w * scale, h * scale);
}

async function openModel(request) {
  setStatus("opening the model…", true);
  let response;
  try {
    response = await post(request.url, request.options);
  } catch (err) {
    showMessage(`the model could not be sent (${err.message})`);
    return;
  }
  if (!response.ok) { showMessage(await errorText(response)); setStatus("the model was not opened"); return; }
  clearMessage();
  setStatus("model open");
  await refreshModels();
}

function setupModel() {
  $("#model-select").addEventListener("change", (event) => {
    if (!event.target.value) return;
    openModel({url: "/api/model/open", options: {
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({path: event.target.value})}});
  });
  $("#model-open").addEventListener("click", () => $("#model-file").click());
  $("#model-file").addEventListener("change", (event) => {
    const files = [...event.target.files];
    event.target.value = "";
    const single = files.length === 1 && /\.(pt|pth|pt2)$/i.test(files[0].name) ? files[0] : null;
    const weights = files.find((f) => f.name.endsWith(".safetensors"));
    const info = files.find((f) => f.name.endsWith(".json"));
    const form = new FormData();
    if (single) {
      form.append("model", single, single.name);
    } else if (weights && info) {
      form.append("weights", weights, weights.name);
      form.append("info", info, info.name);
    } else {
      showMessage("choose a checkpoint's two files together (model.safetensors and model.json), " +
        "or one TorchScript .pt or torch.export .pt2 file");
      return;
    }
    openModel({url: "/api/model/upload", options: {body: form}});
  });
  for (const id of ["#model-layer", "#cam-layer", "#cam-target"]) {
    $(id).addEventListener("change", runModel);
  }
}

// ------------------------------------------------------------------ downloads

async function download(kind, button) {
  const body = stateBody();
  if (!body) return;
  const label = button.textContent;
  button.disabled = true;
  button.textContent = "preparing…";
  try {
    const response = await post(`/api/download/${kind}`, {
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    if (!response.ok) { showMessage(await errorText(response)); return; }
    const blob = await response.blob();
    const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const link = el("a", {href: URL.createObjectURL(blob), download: match ? match[1] : kind});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (err) {
    showMessage(`the download failed (${err.message})`);
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

// ------------------------------------------------------------------ settings

function fillSelect(select, options, value) {
  select.replaceChildren(...options.map(([v, text]) => el("option", {value: v, text})));
  select.value = String(value);
}

function defaultLayer() {
  const d = meta.layer;
  return {stride: d.stride, padding: String(d.padding), padding_mode: d.padding_mode,
    dilation: d.dilation, activation: d.activation, pool: d.pool === null ? "none" : String(d.pool),
    pool_type: d.pool_type, pool_stride: d.pool_stride === null ? "auto" : String(d.pool_stride)};
}

function showLayer() {
  const layer = state.layer;
  $("#stride").value = layer.stride;
  $("#dilation").value = layer.dilation;
  for (const key of ["padding", "padding_mode", "activation", "pool", "pool_type", "pool_stride"]) {
    $(`#${key}`).value = layer[key];
  }
  $("#pool_type").disabled = layer.pool === "none";
  $("#pool_stride").disabled = layer.pool === "none";
}

function setupSettings() {
  const range = (n) => Array.from({length: n}, (_, i) => i);
  fillSelect($("#padding"), [...range(7).map((i) => [String(i), i === 0 ? "0 (valid)" : String(i)]),
    ["same", "same"]], "0");
  fillSelect($("#padding_mode"), meta.choices.padding_mode.map((v) => [v, v]), "zeros");
  fillSelect($("#activation"), meta.choices.activation.map((v) => [v, v]), "relu");
  fillSelect($("#pool"), [["none", "none"], ...[2, 3, 4, 5, 6, 8].map((i) => [String(i), `${i}×${i}`])], "2");
  fillSelect($("#pool_type"), meta.choices.pool_type.map((v) => [v, v]), "max");
  fillSelect($("#pool_stride"), [["auto", "= window"], ...[1, 2, 3, 4, 5, 6, 8].map((i) => [String(i), String(i)])], "auto");
  fillSelect($("#max-side"), meta.choices.working_sides.map((v) => [String(v), `${v} px`]),
    String(meta.default_working_side));
  fillSelect($("#sample"), meta.samples.map((s) => [s.id, s.name]), state.image);
  for (const key of ["stride", "dilation"]) {
    $(`#${key}`).addEventListener("input", (event) => {
      state.layer[key] = Number(event.target.value);
      scheduleStages();
    });
  }
  for (const key of ["padding", "padding_mode", "activation", "pool", "pool_type", "pool_stride"]) {
    $(`#${key}`).addEventListener("change", (event) => {
      state.layer[key] = event.target.value;
      showLayer();
      scheduleStages();
    });
  }
  $("#mode").addEventListener("change", async (event) => {
    state.mode = event.target.value;
    if (state.mode === "gray" && state.kernels.some((kernel) => kernel.planes.length === 3)) {
      state.kernels = state.kernels.map((kernel) => (kernel.planes.length === 3 ? mergeChannels(kernel) : kernel));
    }
    buildRows();
    if (await loadInput()) scheduleStages();
  });
  $("#max-side").addEventListener("change", async (event) => {
    state.maxSide = Number(event.target.value);
    clearProbe();
    if (await loadInput()) scheduleStages();
  });
  $("#sample").addEventListener("change", async (event) => {
    state.image = event.target.value;
    clearProbe();
    if (await loadInput()) scheduleStages();
  });
  const mib = Math.round(meta.limits.upload_bytes / 2 ** 20);
  $("#limits-note").textContent = `JPEG, PNG, WebP, BMP, TIFF or GIF; up to ${mib} MiB and ` +
    `${Math.round(meta.limits.pixels / 1e6)} Mpx`;
}

function setupImageInputs() {
  const drop = $("#drop");
  const file = $("#file");
  drop.addEventListener("click", () => file.click());
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); file.click(); }
  });
  file.addEventListener("change", () => { uploadFile(file.files[0]); file.value = ""; });
  let depth = 0;
  window.addEventListener("dragenter", (event) => { event.preventDefault(); depth++; document.body.classList.add("dragging"); });
  window.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; document.body.classList.remove("dragging"); } });
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    const item = event.dataTransfer?.files?.[0];
    if (item) uploadFile(item);
  });
  window.addEventListener("paste", (event) => {
    const item = [...(event.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
    if (item) { event.preventDefault(); uploadFile(item.getAsFile()); }
  });
}

function resetAll() {
  state.kernels = meta.default_kernels.map(kernelFromPreset);
  state.layer = defaultLayer();
  showLayer();
  clearProbe();
  rebuild();
}

async function start() {
  const response = await fetch("/api/meta");
  meta = await response.json();
  luts = {signed: lutOf(meta.colours.signed), unsigned: lutOf(meta.colours.unsigned),
    heat: lutOf(meta.colours.heat)};
  state.maxSide = meta.default_working_side;
  state.kernels = meta.default_kernels.map(kernelFromPreset);
  state.layer = defaultLayer();
  setupSettings();
  showLayer();
  setupImageInputs();
  $("#message-close").addEventListener("click", clearMessage);
  $("#flip").addEventListener("change", () => { if (probe) requestExplain(probe); });
  if (window.matchMedia("(max-width: 799px)").matches) {
    for (const fold of document.querySelectorAll("details[data-fold]")) fold.open = false;
  }
  $("#add-kernel").addEventListener("click", addKernel);
  $("#randomize-all").addEventListener("click", () => {
    state.kernels.forEach((_, k) => randomizeKernel(k));
    rebuild();
  });
  $("#reset").addEventListener("click", resetAll);
  for (const button of document.querySelectorAll("[data-download]")) {
    button.addEventListener("click", () => download(button.dataset.download, button));
  }
  window.addEventListener("resize", restoreExplain);
  setupModel();
  buildRows();
  document.body.dataset.ready = "1";
  modelInfo = meta.model;
  if (await loadInput()) scheduleStages();
  refreshModels();
}

start().catch((err) => {
  showMessage(`the page could not start (${err.message}); reload it`);
});
