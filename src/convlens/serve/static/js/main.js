// convlens explorer: the page's entry point. Plain JavaScript modules, no build step, no
// external requests. The server computes every number (with the convlens library) and says
// what the controls may offer (GET /api/meta); these modules keep the state, send it, and draw
// what comes back:
//   state.js (the one state)      api.js (requests, binary messages)   dom.js, numbers.js, draw.js
//   body.js (state -> request)    stages.js (maps, sizes)              kernels.js (the editor)
//   probe.js, boxes.js (pixels)   explain.js (the explanation panel)   image.js (the input)
//   input.js (its picture, sizes)  settings.js (layer, downloads)     magnifier.js (the patch)
//   model.js (the model panel)
//   slide.js (a click slides the kernel to the pixel)  network.js (the network view)
import {$, clearMessage, isPhone, showMessage} from "./dom.js";
import {restoreExplain, requestExplain} from "./explain.js";
import {setupImageInputs} from "./image.js";
import {addKernel, buildRows, kernelFromPreset, randomizeKernel, rebuild} from "./kernels.js";
import {refreshModels, setupModel} from "./model.js";
import {setupNetwork} from "./network.js";
import {lutOf} from "./numbers.js";
import {clearProbe} from "./probe.js";
import {defaultLayer, setupDownloads, setupSettings, showLayer} from "./settings.js";
import {paintMaps, scheduleStages} from "./stages.js";
import {state, view} from "./state.js";

function resetAll() {
  state.kernels = view.meta.default_kernels.map(kernelFromPreset);
  state.layer = defaultLayer();
  showLayer();
  clearProbe();
  rebuild();
}

async function start() {
  const response = await fetch("/api/meta");
  const meta = await response.json();
  view.meta = meta;
  view.luts = {signed: lutOf(meta.colours.signed), unsigned: lutOf(meta.colours.unsigned),
    heat: lutOf(meta.colours.heat)};
  const sample = meta.samples.find((s) => s.id === state.image);
  state.maxSide = sample ? sample.fit_side : meta.default_working_side;
  state.kernels = meta.default_kernels.map(kernelFromPreset);
  state.layer = defaultLayer();
  setupSettings();
  showLayer();
  setupImageInputs();
  setupDownloads();
  $("#message-close").addEventListener("click", clearMessage);
  $("#flip").addEventListener("change", () => { if (view.probe) requestExplain(view.probe); });
  if (isPhone()) {
    for (const fold of document.querySelectorAll("details[data-fold]")) fold.open = false;
  }
  $("#add-kernel").addEventListener("click", addKernel);
  $("#randomize-all").addEventListener("click", () => {
    state.kernels.forEach((_, k) => randomizeKernel(k));
    rebuild();
  });
  $("#reset").addEventListener("click", resetAll);
  $("#scale").addEventListener("change", paintMaps);
  $("#larger").addEventListener("click", (event) => {
    const large = $("#rows").classList.toggle("large");
    event.target.setAttribute("aria-pressed", String(large));
    event.target.textContent = large ? "smaller maps" : "larger maps";
    scheduleStages();                                   // maps sent again at the new size
  });
  window.addEventListener("resize", restoreExplain);
  setupModel();
  setupNetwork();
  buildRows();
  document.body.dataset.ready = "1";
  view.modelInfo = meta.model;
  scheduleStages();                                     // the maps first, then the model
  refreshModels();
}

start().catch((err) => {
  showMessage(`the page could not start (${err.message}); reload it`);
});
