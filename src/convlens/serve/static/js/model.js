// The model panel: the open model's predictions, Grad-CAM, feature maps and learned filters
// for the image on the page (GET /api/model, POST /api/model/{open,upload,run}).
import {errorText, post, postJSON, unpack} from "./api.js";
import {$, clearMessage, el, fillSelect, setStatus, showMessage} from "./dom.js";
import {drawInput, drawMap} from "./draw.js";
import {refreshNetwork} from "./network.js";
import {short} from "./numbers.js";
import {exposed, state, view} from "./state.js";

const flight = {seq: 0};

// Whether the panel offers a layer's output as feature maps: the server says, per layer or
// by layer type (GET /api/meta's layer_kinds).
function hasMaps(layer) {
  if (typeof layer.maps === "boolean") return layer.maps;
  return !view.meta.layer_kinds.without_maps.includes(layer.type);
}

export async function refreshModels() {
  const response = await fetch("/api/model");
  if (!response.ok) return;
  const data = await response.json();
  view.modelInfo = data.model;
  const info = view.modelInfo;
  const options = [["", info ? `${info.source} (open)` : "none open"]];
  for (const path of data.found) {
    if (!info || path !== info.source) options.push([path, path]);
  }
  fillSelect($("#model-select"), options, "");
  $("#model-select").disabled = options.length === 1;
  showModel();
}

function showModel() {
  const info = view.modelInfo;
  if (!info) { $("#model-body").hidden = true; return; }
  $("#model-describe").textContent = info.describe +
    (info.notes.length ? `. ${info.notes.join(" ")}` : "");
  const layers = info.layers.filter(hasMaps);
  fillSelect($("#model-layer"), layers.map((l) => [l.name, `${l.name} (${l.type})`]),
    info.default_layer || layers[0]?.name || "");
  const convs = info.layers.filter((layer) => layer.conv);
  fillSelect($("#cam-layer"), [["", "the last conv layer"], ...convs.map((l) => [l.name, l.name])], "");
  fillSelect($("#cam-target"), [["", "the top prediction"],
    ...info.classes.map((name, i) => [String(i), `${i}: ${name}`])], "");
  $("#model-body").hidden = false;
  runModel();
}

export async function runModel() {
  if (!view.modelInfo || !view.inputHeader) return;
  refreshNetwork();
  const seq = ++flight.seq;
  // how many channels and how large: the server's defaults (serve/schemas.py ModelRunIn)
  const body = {image: state.image, max_side: state.maxSide, layer: $("#model-layer").value || null,
    cam_layer: $("#cam-layer").value || null, target: $("#cam-target").value || null};
  let response;
  try {
    response = await postJSON("/api/model/run", body);
  } catch (err) {
    showMessage(`the server cannot be reached (${err.message})`);
    return;
  }
  if (seq !== flight.seq) return;                        // a newer choice is on its way
  if (!response.ok) { showMessage(await errorText(response)); return; }
  const {head, arrays} = unpack(await response.arrayBuffer());
  if (seq !== flight.seq) return;
  drawModel(head, arrays);
  exposed.modelRuns = (exposed.modelRuns || 0) + 1;
  document.body.dataset.modelRuns = String(exposed.modelRuns);
}

function drawModel(head, arrays) {
  const luts = view.luts;
  const list = $("#predictions");
  list.replaceChildren(...head.predictions.map((p) => el("li", {"data-index": p.index},
    el("span", {class: "label", text: p.label, title: p.label}),
    el("span", {class: "bar", role: "presentation"}, el("i", {style: `width: ${(100 * p.probability).toFixed(1)}%`})),
    el("span", {class: "pct", text: `${(100 * p.probability).toFixed(1)}%`}))));
  if (!head.predictions.length) list.replaceChildren(el("li", {class: "muted", text: "the output is not one row of class scores"}));
  const cam = head.gradcam;
  if (cam) {
    drawCam($("#cam-canvas"), arrays.seen, arrays.cam);
    $("#cam-caption").replaceChildren(el("b", {text: "Grad-CAM"}),
      ` of "${cam.label}" (${(100 * cam.probability).toFixed(1)}%) at ${cam.layer}, on the ` +
      `${arrays.seen.shape[2]}×${arrays.seen.shape[1]} px (width×height) input the model sees; ` +
      "red = strongest evidence" + (cam.note ? `. ${cam.note}` : ""));
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
    const colour = view.luts.heat[heat.data[i]];
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

export function setupModel() {
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
