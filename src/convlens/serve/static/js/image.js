// The input image: a sample, an upload (file, drop or paste), its sizes (the file's and the
// working size it is shrunk to), and its drawing beside the explanation.
import {errorText, post, unpack} from "./api.js";
import {$, clearMessage, el, setStatus, showMessage, wxh} from "./dom.js";
import {drawInput} from "./draw.js";
import {runModel} from "./model.js";
import {clearProbe} from "./probe.js";
import {scheduleStages} from "./stages.js";
import {state, view} from "./state.js";

function inputDisplaySide() {
  const limits = view.meta.limits.display;
  const width = $("#input-wrap").getBoundingClientRect().width || 360;
  const wanted = Math.ceil((width * (window.devicePixelRatio || 1)) / 64) * 64;
  return Math.min(limits[1], Math.max(limits[0], wanted));
}

// "big.jpg: 6000×4000 → 1024×683 px (width×height)" when the page shrank it.
function sizeText(head) {
  const sizes = head.shrunk ? `${wxh(head.original)} → ${wxh(head.working)}` : wxh(head.working);
  return `${sizes} px (width×height)`;
}

export async function loadInput() {
  const params = new URLSearchParams({image: state.image, mode: state.mode,
    max_side: String(state.maxSide), display: String(inputDisplaySide())});
  const response = await fetch(`/api/input?${params}`);
  if (!response.ok) { showMessage(await errorText(response)); return false; }
  const {head, arrays} = unpack(await response.arrayBuffer());
  view.inputHeader = head;
  drawInput($("#input-canvas"), arrays.input);
  const [c, h, w] = head.shape;
  const colour = c === 1 ? "gray" : "rgb";
  $("#input-caption").replaceChildren(el("b", {text: "input"}),
    ` ${head.name}: ${colour}, ${wxh([w, h])} px` + (head.factor > 1 ? ` (drawn at 1/${head.factor})` : ""));
  const info = $("#image-info");
  info.textContent = `${head.name}: ${sizeText(head)}, ${c === 1 ? "1 channel (gray)" : "3 channels (rgb)"}`;
  info.classList.toggle("shrunk", Boolean(head.shrunk));
  if (head.shrunk) {
    info.title = `shrunk to ${state.maxSide} px on its longer side before computing; ` +
      "pick another Longest side to change it";
  } else {
    info.removeAttribute("title");
  }
  $("#input-canvas").setAttribute("aria-label", `the input image ${head.name}, ${w} wide and ${h} high`);
  runModel();
  return true;
}

// Another image (or working size) is chosen: the probe goes, the image and stages follow.
export async function changeImage() {
  clearProbe();
  if (await loadInput()) scheduleStages();
}

async function uploadFile(file) {
  if (!file) return;
  const limit = view.meta.limits.upload_bytes;
  if (file.size > limit) {
    showMessage(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB, over the ` +
      `${Math.round(limit / 2 ** 20)} MiB limit; use a smaller image`);
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
  let option = select.querySelector("option[data-upload]");
  if (!option) {
    option = el("option", {"data-upload": true});
    select.prepend(option);
  }
  option.value = info.id;
  option.textContent = `${info.name} (yours)`;
  select.value = info.id;
  clearMessage();
  await changeImage();
}

export function setupImageInputs() {
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
  const meta = view.meta;
  const mib = Math.round(meta.limits.upload_bytes / 2 ** 20);
  $("#limits-note").textContent = `JPEG, PNG, WebP, BMP, TIFF or GIF; up to ${mib} MiB and ` +
    `${Math.round(meta.limits.pixels / 1e6)} Mpx`;
}
