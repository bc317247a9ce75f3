// The layer settings, the image's colour mode and working size, and the downloads. Every
// choice a menu offers comes from GET /api/meta (the library's enums and limits).
import {errorText, postJSON} from "./api.js";
import {stateBody} from "./body.js";
import {$, el, fillSelect, showMessage} from "./dom.js";
import {fitOf, pickWorkingSide, sideValue, useImage} from "./image.js";
import {buildRows, mergeChannels} from "./kernels.js";
import {scheduleStages} from "./stages.js";
import {state, view} from "./state.js";

const SELECTS = ["padding", "padding_mode", "activation", "pool", "pool_type", "pool_stride"];
const NUMBERS = ["stride", "dilation"];

export function defaultLayer() {
  const d = view.meta.layer;
  return {stride: d.stride, padding: String(d.padding), padding_mode: d.padding_mode,
    dilation: d.dilation, activation: d.activation, pool: d.pool === null ? "none" : String(d.pool),
    pool_type: d.pool_type, pool_stride: d.pool_stride === null ? "auto" : String(d.pool_stride)};
}

export function showLayer() {
  const layer = state.layer;
  for (const key of NUMBERS) $(`#${key}`).value = layer[key];
  for (const key of SELECTS) $(`#${key}`).value = layer[key];
  $("#pool_type").disabled = layer.pool === "none";
  $("#pool_stride").disabled = layer.pool === "none";
}

export function setupSettings() {
  const {choices, limits} = view.meta;
  const layer = defaultLayer();
  const same = (values) => values.map((v) => [String(v), String(v)]);
  fillSelect($("#padding"), choices.padding.map((v) => [String(v), v === 0 ? "0 (valid)" : String(v)]),
    layer.padding);
  fillSelect($("#padding_mode"), same(choices.padding_mode), layer.padding_mode);
  fillSelect($("#activation"), same(choices.activation), layer.activation);
  fillSelect($("#pool"), [["none", "none"], ...choices.pool.map((i) => [String(i), `${i}×${i}`])], layer.pool);
  fillSelect($("#pool_type"), same(choices.pool_type), layer.pool_type);
  fillSelect($("#pool_stride"), [["auto", "= window"], ...same(choices.pool_stride)], layer.pool_stride);
  fillSelect($("#mode"), same(choices.mode), state.mode);
  fillSelect($("#max-side"), choices.working_sides.map((v) => [sideValue(v),
    v === null ? "full size" : `${v} px`]), sideValue(state.maxSide));
  fillSelect($("#sample"), view.meta.samples.map((s) => [s.id, s.name]), state.image);
  $("#stride").max = String(limits.layer_number);
  $("#dilation").max = String(limits.dilation);
  for (const key of NUMBERS) {
    $(`#${key}`).addEventListener("input", (event) => {
      state.layer[key] = Number(event.target.value);
      scheduleStages();
    });
  }
  for (const key of SELECTS) {
    $(`#${key}`).addEventListener("change", (event) => {
      state.layer[key] = event.target.value;
      showLayer();
      scheduleStages();
    });
  }
  $("#mode").addEventListener("change", (event) => {
    state.mode = event.target.value;
    if (state.mode === "gray" && state.kernels.some((kernel) => kernel.planes.length === 3)) {
      state.kernels = state.kernels.map((kernel) => (kernel.planes.length === 3 ? mergeChannels(kernel) : kernel));
    }
    buildRows();
    scheduleStages();
  });
  $("#max-side").addEventListener("change", (event) => pickWorkingSide(event.target.value));
  $("#sample").addEventListener("change", (event) => {
    const select = event.target;
    useImage(select.value, fitOf(select.selectedOptions[0]), performance.now());
  });
}

async function download(kind, button) {
  const body = stateBody();
  if (!body) return;
  const label = button.textContent;
  button.disabled = true;
  button.textContent = "preparing…";
  try {
    const response = await postJSON(`/api/download/${kind}`, body);
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

export function setupDownloads() {
  for (const button of document.querySelectorAll("[data-download]")) {
    button.addEventListener("click", () => download(button.dataset.download, button));
  }
}
