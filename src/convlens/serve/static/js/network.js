// The network view: the open model's layers as columns of channel thumbnails (POST
// /api/network, serve/network.py), loaded as they scroll into view; a large network's blocks
// are collapsed, each one column, and open (and close) into their layers. A click on a cell's
// pixel asks POST /api/network/explain and shows, in the explanation panel, the library's
// parts for every step from the nearest conv to that number (conv, batch norm, activation,
// pool); the conv's kernel slides into place on its input (netslide.js), then the cells the
// number reads in the layer before and its receptive field in the input are outlined, with
// lines from the cell to both.
import {errorText, postJSON, unpack} from "./api.js";
import {showField} from "./boxes.js";
import {$, el, showMessage} from "./dom.js";
import {drawMap} from "./draw.js";
import {partNode} from "./explain.js";
import {slideBoxes, slideWanted, sliding, stopSlide} from "./netslide.js";
import {short} from "./numbers.js";
import {exposed, state, view} from "./state.js";

const net = {seq: 0, key: "", layers: [], loaded: new Set(), observer: null, selected: null,
  clicks: 0, open: new Set()};
const CELL_SIDE = 56;             // css px of one thumbnail

function base() {
  return {image: state.image, max_side: state.maxSide, scale: $("#network-scale").value};
}

// The whole view again (another image, model or scale): the column list first, then the
// thumbnails of the columns in view.
export async function refreshNetwork() {
  const card = $("#network-card");
  if (!card) return;
  // the model panel asks on every change of its own; only a new image, model or scale
  // changes the view
  const key = JSON.stringify(base());
  if (key === net.key && net.model === view.modelInfo) return;
  if (net.model !== view.modelInfo) net.open = new Set();    // another model: its blocks shut
  net.model = view.modelInfo;
  const seq = ++net.seq;
  const body = {...base(), columns: [], open: [...net.open]};
  let response;
  try {
    response = await postJSON("/api/network", body);
  } catch (err) {
    showMessage(`the server cannot be reached (${err.message})`);
    return;
  }
  if (seq !== net.seq) return;
  if (!response.ok) { card.hidden = true; net.key = ""; return; }   // no model open: no view
  const {head} = unpack(await response.arrayBuffer());
  if (seq !== net.seq) return;
  card.hidden = false;
  net.key = key;
  net.layers = head.layers;
  net.loaded = new Set();
  net.selected = null;
  $("#network-scale-words").textContent = `${head.scale_words}; ${head.top_words}` +
    (head.collapsed_words ? `; ${head.collapsed_words}` : "");
  buildColumns(head.layers);
}

// Open a collapsed block into its layers, or close it again: the column list is asked for
// again, and the new columns' thumbnails load as they scroll into view.
async function toggleBlock(name) {
  if (net.open.has(name)) {         // closed, with every block open inside it
    for (const block of [...net.open]) {
      if (block === name || block.startsWith(`${name}.`)) net.open.delete(block);
    }
  } else {
    net.open.add(name);
  }
  const seq = ++net.seq;
  let response;
  try {
    response = await postJSON("/api/network", {...base(), columns: [], open: [...net.open]});
  } catch (err) {
    showMessage(`the server cannot be reached (${err.message})`);
    return;
  }
  if (seq !== net.seq) return;
  if (!response.ok) { showMessage(await errorText(response)); return; }
  const {head} = unpack(await response.arrayBuffer());
  if (seq !== net.seq) return;
  const strip = $("#network-columns");
  const scrolled = strip.scrollLeft;
  net.layers = head.layers;
  net.loaded = new Set();
  buildColumns(head.layers);
  strip.scrollLeft = scrolled;
  document.body.dataset.networkOpen = [...net.open].join(",");
  const first = strip.querySelector(`.net-col[data-block="${CSS.escape(name)}"], ` +
    `.net-col[data-layer="${CSS.escape(name)}"]`);
  if (first) first.scrollIntoView({block: "nearest", inline: "nearest"});
}

// A block's buttons: "open" on its collapsed column; "close" on the first column of each
// open block it is in.
function blockButtons(layer, before) {
  const buttons = [];
  if (layer.inner) {
    buttons.push(el("button", {type: "button", class: "small net-block",
      "data-testid": "open-block", "aria-expanded": "false",
      title: `show what ${layer.name} holds, ${layer.inner} columns`,
      text: `open ▸ ${layer.inner}`, onclick: () => toggleBlock(layer.name)}));
  }
  for (const block of layer.blocks) {
    if (before?.blocks.includes(block)) continue;
    buttons.push(el("button", {type: "button", class: "small net-block",
      "data-testid": "close-block", "data-block": block, "aria-expanded": "true",
      title: `show ${block} as one column again`, text: `◂ close ${block}`,
      onclick: () => toggleBlock(block)}));
  }
  return buttons;
}

function buildColumns(layers) {
  const strip = $("#network-columns");
  strip.replaceChildren();
  if (net.observer) net.observer.disconnect();
  net.observer = new IntersectionObserver((entries) => {
    const names = entries.filter((e) => e.isIntersecting).map((e) => e.target.dataset.layer)
      .filter((name) => !net.loaded.has(name));
    if (names.length) loadColumns(names);
  }, {root: strip, rootMargin: "0px 400px"});
  layers.forEach((layer, i) => {
    const shape = layer.shape.join("×");
    const column = el("div", {class: `net-col${layer.block ? " in-block" : ""}`,
      "data-layer": layer.name, "data-block": layer.block},
      el("p", {class: "net-title", title: `${layer.name} (${layer.kind}) ${shape}`},
        el("b", {text: layer.name}), el("br"), `${layer.kind} ${shape}`,
        el("br"), layer.shown < layer.channels ? `${layer.shown} of ${layer.channels} channels` :
          `${layer.channels} channel${layer.channels === 1 ? "" : "s"}`),
      blockButtons(layer, layers[i - 1]),
      el("div", {class: "net-cells"}));
    strip.append(column);
    net.observer.observe(column);
  });
}

async function loadColumns(names) {
  for (const name of names) net.loaded.add(name);
  const key = net.key;
  let response;
  try {
    response = await postJSON("/api/network", {...base(), columns: names});
  } catch (err) {
    showMessage(`the server cannot be reached (${err.message})`);
    return;
  }
  if (key !== JSON.stringify(base()) || key !== net.key) return;
  if (!response.ok) { showMessage(await errorText(response)); return; }
  const {head, arrays} = unpack(await response.arrayBuffer());
  for (const name of names) drawColumn(name, head.columns[name], arrays[`maps:${name}`]);
  exposed.networkColumns = (exposed.networkColumns || 0) + names.length;
  document.body.dataset.networkColumns = String(exposed.networkColumns);
}

function drawColumn(name, info, maps) {
  const column = document.querySelector(`.net-col[data-layer="${CSS.escape(name)}"]`);
  const layer = net.layers.find((l) => l.name === name);
  if (!column || !info || !layer) return;
  const cells = column.querySelector(".net-cells");
  cells.replaceChildren();
  const [, h, w] = maps.shape;
  const luts = view.luts;
  info.channels.forEach((channel, i) => {
    const canvas = el("canvas", {"aria-label": `${name} channel ${channel.channel}`});
    drawMap(canvas, {shape: [h, w], data: maps.data.subarray(i * h * w, (i + 1) * h * w)},
      luts[channel.cmap]);
    const [mh, mw] = layer.shape.length === 3 ? layer.shape.slice(1) : [1, 1];
    const side = Math.max(mh, mw);
    canvas.style.width = `${(CELL_SIDE * mw) / side}px`;
    canvas.style.height = `${(CELL_SIDE * mh) / side}px`;
    const wrap = el("div", {class: "net-cell map-wrap", "data-channel": String(channel.channel),
      title: `${name} channel ${channel.channel}: [${short(channel.min)}, ${short(channel.max)}]`},
    canvas, el("div", {class: "box window", hidden: ""}), el("div", {class: "box probe", hidden: ""}),
    el("div", {class: "box field", hidden: ""}));
    if (layer.explainable) {
      canvas.addEventListener("click", (event) => clickCell(layer, channel.channel, canvas, event));
    }
    cells.append(el("figure", {}, wrap, el("figcaption", {text: `ch ${channel.channel}`})));
  });
  if (net.selected) {               // a column loaded later: its outlines, not a new slide
    placeOutlines(net.selected);
    if (!sliding()) linesOf(net.selected);
  }
}

// The map cell under a click: the canvas is drawn at (or below) the map's size, stretched to
// its css box, so the fraction across it picks the cell of the full map.
function cellAt(layer, canvas, event) {
  if (layer.shape.length !== 3) return [null, null];
  const [, h, w] = layer.shape;
  const box = canvas.getBoundingClientRect();
  const y = Math.min(h - 1, Math.floor(((event.clientY - box.top) / box.height) * h));
  const x = Math.min(w - 1, Math.floor(((event.clientX - box.left) / box.width) * w));
  return [Math.max(0, y), Math.max(0, x)];
}

async function clickCell(layer, channel, canvas, event) {
  const [y, x] = cellAt(layer, canvas, event);
  const click = ++net.clicks;
  const started = performance.now();
  let response;
  try {
    response = await postJSON("/api/network/explain",
      {image: state.image, max_side: state.maxSide, layer: layer.name, channel, y, x});
  } catch (err) {
    showMessage(`the server cannot be reached (${err.message})`);
    return;
  }
  if (click !== net.clicks) return;                       // a newer click is on its way
  if (!response.ok) { showMessage(await errorText(response)); return; }
  const data = await response.json();
  if (click !== net.clicks) return;
  const answered = performance.now();
  showExplanation(data);
  net.selected = data;
  outline(data, true);
  showField(data.photo_field);                            // and on the page's photo
  exposed.networkExplained = (exposed.networkExplained || 0) + 1;
  // for the benchmark (bench/bench_network.py): click to the frame that shows the numbers
  requestAnimationFrame(() => {
    const painted = performance.now();
    exposed.networkTimings = [...(exposed.networkTimings || []).slice(-199), {
      total_ms: painted - started, request_ms: answered - started, draw_ms: painted - answered}];
  });
}

// The library's parts in the explanation panel (the renderer the stages use): the chain's
// words, then each step from the nearest conv to the clicked number, one section each. The
// clicked number's total is the panel's total; the steps before it have their own.
function showExplanation(data) {
  const body = $("#explain-body");
  body.replaceChildren();
  delete body.dataset.stale;
  body.dataset.kind = `network:${data.kind}`;
  body.dataset.at = `network,${data.column},${data.channel},${data.y ?? ""},${data.x ?? ""}`;
  body.dataset.image = state.image;
  const chain = data.chain;
  for (const part of chain.intro) {
    const node = partNode(part);
    if (node) body.append(node);
  }
  chain.steps.forEach((step, i) => {
    const last = i === chain.steps.length - 1;
    const section = el("section", {class: `chain-step${last ? " clicked" : ""}`,
      "data-step": String(i), "data-layer": step.layer, "data-what": step.what,
      "data-position": step.y === null ? `${step.channel}` : `${step.channel},${step.y},${step.x}`});
    for (const part of step.parts) {
      const node = partNode(part);
      if (node) section.append(node);
    }
    if (!last) {
      for (const node of section.querySelectorAll("[data-testid=total-value]")) {
        node.setAttribute("data-testid", "step-total-value");
      }
    }
    body.append(section);
  });
  body.scrollIntoView({block: "nearest"});
}

function place(box, shape, top, bottom, left, right) {
  const [h, w] = shape;
  box.style.top = `${(100 * top) / h}%`;
  box.style.left = `${(100 * left) / w}%`;
  box.style.height = `${(100 * (bottom - top + 1)) / h}%`;
  box.style.width = `${(100 * (right - left + 1)) / w}%`;
  box.hidden = false;
}

const boxesOf = (name, kind) => {
  const column = document.querySelector(`.net-col[data-layer="${CSS.escape(name)}"]`);
  return column ? [...column.querySelectorAll(`.net-cell .box.${kind}`)] : [];
};

const mapOf = (name) => {
  const layer = net.layers.find((l) => l.name === name);
  return layer && layer.shape.length === 3 ? layer.shape.slice(1) : null;
};

const cellOf = (data) => document.querySelector(
  `.net-col[data-layer="${CSS.escape(data.column)}"] .net-cell[data-channel="${data.channel}"] .box.probe`);

// The outlines that stay: the clicked cell, the cells the number reads in the layer before
// and its receptive field in the input (also on a column that loads later); the kernel's
// window at rest where no slide runs.
function placeOutlines(data) {
  for (const box of document.querySelectorAll("#network-columns .box.probe, #network-columns .box.field")) {
    box.hidden = true;
  }
  const cell = cellOf(data);
  if (cell && data.y !== null) place(cell, data.shape.slice(1), data.y, data.y, data.x, data.x);
  else if (cell) place(cell, [1, 1], 0, 0, 0, 0);
  const field = data.receptive_field;
  if (field) {
    for (const box of boxesOf("input", "field")) {
      place(box, data.image_shape.slice(1), field.top, field.bottom, field.left, field.right);
    }
  }
  const previous = data.previous;
  const previousMap = previous ? mapOf(previous.layer) : null;
  if (previousMap) {          // where the kernel (or the pool's window) comes to rest
    for (const box of boxesOf(previous.layer, "probe")) {
      place(box, previousMap, previous.top, previous.bottom, previous.left, previous.right);
    }
  }
  const slide = data.slide;
  const slideMap = slide ? mapOf(slide.layer) : null;
  if (slideMap && !sliding()) {   // at rest: on its own layer, or under the outline
    const [top, bottom, left, right] = slide.boxes.at(-1);
    for (const box of boxesOf(slide.layer, "window")) {
      if (previousMap && slide.layer === previous.layer) box.hidden = true;
      else place(box, slideMap, top, bottom, left, right);
    }
  }
}

// Lines from the clicked cell to the cells it reads and to its receptive field.
function linesOf(data) {
  const previous = data.previous;
  drawLines(cellOf(data), previous && mapOf(previous.layer) ? boxesOf(previous.layer, "probe") : [],
    data.receptive_field ? boxesOf("input", "field") : []);
}

// A new click: its outlines; the conv's kernel sliding into place on its input (when the
// chain reaches a conv), step by step when `animate` and the page allows it; then the lines.
function outline(data, animate) {
  stopSlide();
  for (const box of document.querySelectorAll("#network-columns .box.window")) box.hidden = true;
  placeOutlines(data);
  drawLines(null, [], []);
  const finish = () => {
    if (net.selected !== data) return;                  // another cell was clicked meanwhile
    placeOutlines(data);                                // columns loaded meanwhile too
    linesOf(data);
  };
  const slide = data.slide;
  const slideMap = slide ? mapOf(slide.layer) : null;
  if (slideMap && boxesOf(slide.layer, "window").length) {
    slideBoxes(boxesOf(slide.layer, "window"), slideMap, slide.boxes, place,
      animate && slideWanted(), finish);
  } else {
    finish();
  }
  $("#network-selected").textContent = data.selected;      // worded by serve/network.py
}

// Lines from the clicked cell back to the cells it reads in the layer before (straight), and
// to its receptive field in the input (curved, dashed): an SVG laid over the columns, in their
// scrolled coordinates, so the lines scroll with them.
function drawLines(cell, targets, fields) {
  const strip = $("#network-columns");
  let svg = strip.querySelector("svg.net-lines");
  if (!svg) {                       // parsed as HTML: the parser gives it the SVG namespace
    strip.insertAdjacentHTML("beforeend", '<svg class="net-lines" aria-hidden="true"></svg>');
    svg = strip.querySelector("svg.net-lines");
  }
  svg.replaceChildren();
  if (!cell || cell.hidden) return;
  const origin = strip.getBoundingClientRect();
  svg.setAttribute("width", String(strip.scrollWidth));
  svg.setAttribute("height", String(strip.scrollHeight));
  const at = (box, side) => {
    const r = box.getBoundingClientRect();
    return [(side === "left" ? r.left : r.right) - origin.left + strip.scrollLeft,
      r.top + r.height / 2 - origin.top + strip.scrollTop];
  };
  const [x1, y1] = at(cell, "left");
  for (const target of targets.filter((box) => !box.hidden)) {
    const [x2, y2] = at(target, "right");
    const line = document.createElementNS(svg.namespaceURI, "line");
    for (const [name, value] of Object.entries({x1, y1, x2, y2})) line.setAttribute(name, String(value));
    svg.append(line);
  }
  for (const target of fields.filter((box) => !box.hidden)) {
    const [x2, y2] = at(target, "right");
    const path = document.createElementNS(svg.namespaceURI, "path");
    const lift = Math.min(y1, y2) - 24;                 // over the columns between them
    path.setAttribute("d", `M ${x1} ${y1} C ${x1 - 40} ${lift}, ${x2 + 40} ${lift}, ${x2} ${y2}`);
    path.setAttribute("class", "to-field");
    svg.append(path);
  }
}

export function setupNetwork() {
  $("#network-scale").addEventListener("change", () => { net.key = ""; refreshNetwork(); });
}
