// The kernel editor: one row per kernel (preset, size, a grid of cells or one per colour
// channel, tools) beside its stage maps.
import {CHANNELS} from "./body.js";
import {$, el} from "./dom.js";
import {cssColour, dividedCell, parseCell} from "./numbers.js";
import {clearProbe, focusProbe, keyProbe, pointAt} from "./probe.js";
import {scheduleStages, STAGES} from "./stages.js";
import {state, view} from "./state.js";

const presetByName = (name) => view.meta.presets.find((p) => p.name === name);

export function kernelFromPreset(name) {
  const preset = presetByName(name);
  return {name: preset.name, preset: preset.name, planes: [preset.cells.map((row) => row.slice())]};
}

// A shared kernel sees the mean of R, G and B: each channel gets a third of its weights,
// so splitting it keeps every map as it was.
function splitChannels(kernel) {
  return {name: kernel.name, preset: "",
    planes: CHANNELS.map(() => kernel.planes[0].map((line) => line.map((t) => dividedCell(t, 3))))};
}

// The shared kernel that answers a gray image (R = G = B) as the three grids do: their sum.
export function mergeChannels(kernel) {
  const cells = kernel.planes[0].map((line, r) => line.map((_, c) => {
    const values = kernel.planes.map((plane) => parseCell(plane[r][c]));
    const bad = values.findIndex((v) => v.error);
    if (bad >= 0) return kernel.planes[bad][r][c];
    return String(Number(values.reduce((sum, v) => sum + v.value, 0).toPrecision(12)));
  }));
  return {name: kernel.name, preset: "", planes: [cells]};
}

export function buildRows() {
  const container = $("#rows");
  container.replaceChildren();
  view.rows = state.kernels.map((kernel, k) => buildRow(kernel, k));
  view.rows.forEach((row) => container.append(row.el));
  $("#add-kernel").disabled = state.kernels.length >= view.meta.limits.kernels;
}

export function rebuild() {
  buildRows();
  scheduleStages();
}

function buildRow(kernel, k) {
  const meta = view.meta;
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
    view.rows[k].inputs[0][0][0].focus();
  });
  $(".randomize", node).setAttribute("aria-label", `randomize kernel ${k + 1}`);
  $(".randomize", node).addEventListener("click", () => { randomizeKernel(k); rebuild(); });
  const remove = $(".remove", node);
  remove.setAttribute("aria-label", `remove kernel ${k + 1}`);
  remove.disabled = state.kernels.length <= 1;
  remove.addEventListener("click", () => {
    state.kernels.splice(k, 1);
    if (view.probe && view.probe.k >= state.kernels.length) clearProbe();
    rebuild();
  });

  for (const figure of node.querySelectorAll(".stage")) {
    const stage = figure.dataset.stage;
    const wrap = $(".map-wrap", figure);
    const parts = {figure, wrap, canvas: $("canvas", wrap), caption: $(".caption", figure),
      probeBox: $(".probe", wrap), windowBox: null, stats: null, display: null};
    if (stage !== STAGES[2]) {
      parts.windowBox = el("div", {class: "box window", hidden: true});
      wrap.append(parts.windowBox);
    }
    wrap.setAttribute("role", "group");
    wrap.setAttribute("aria-label", `${stage} map of kernel ${k + 1}`);
    wrap.addEventListener("pointermove", (event) => pointAt(event, k, stage));
    wrap.addEventListener("pointerdown", (event) => pointAt(event, k, stage, true));
    wrap.addEventListener("focus", () => focusProbe(k, stage));
    wrap.addEventListener("keydown", (event) => keyProbe(event, k, stage));
    row.stages[stage] = parts;
  }
  return row;
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
    input.style.background = cssColour(view.luts.signed, 127.5 + share * 100);
    input.style.color = Math.abs(share) > 0.75 ? "#fff" : "";
  })));
}

function editCell(k, p, r, c, text) {
  const kernel = state.kernels[k];
  kernel.planes[p][r][c] = text;
  if (kernel.preset) {
    kernel.preset = "";
    kernel.name = "custom";
    const select = $(".preset", view.rows[k].el);
    select.value = "";
    select.title = "your own numbers";
  }
  colourCells(view.rows[k], kernel);
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

export function randomizeKernel(k) {
  const kernel = state.kernels[k];
  const n = kernel.planes[0].length;
  let planes;
  do {
    planes = kernel.planes.map(() => Array.from({length: n}, () => Array.from({length: n}, () => String(Math.floor(Math.random() * 5) - 2))));
  } while (planes.flat(2).every((t) => t === "0"));
  state.kernels[k] = {name: "random", preset: "", planes};
}

export function addKernel() {
  const meta = view.meta;
  if (state.kernels.length >= meta.limits.kernels) return;
  const used = new Set(state.kernels.map((k) => k.preset));
  const size = state.kernels[0]?.planes[0].length ?? 3;
  const choice = meta.presets.find((p) => !used.has(p.name) && p.cells.length % 2 === size % 2)
    || meta.presets.find((p) => p.name === "identity");
  state.kernels.push(kernelFromPreset(choice.name));
  rebuild();
  view.rows[view.rows.length - 1].inputs[0][0][0].focus();
}
