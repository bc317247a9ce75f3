// The input image: a sample, an upload (file, drop or paste), and its working size (the
// photo's own size unless it is over the page's working budget, or the one picked). Its
// picture and sizes come with the stages (POST /api/stages with `input`, drawn by input.js),
// so a new photo's first drawing takes one request.
import {errorText, post} from "./api.js";
import {$, clearMessage, el, setStatus, showMessage} from "./dom.js";
import {clearProbe} from "./probe.js";
import {scheduleStages} from "./stages.js";
import {exposed, state, view} from "./state.js";

// A working size as the menu's value: "full" for the photo's own size (null in the requests).
export const sideValue = (side) => (side === null ? "full" : String(side));
const sideOf = (value) => (value === "full" ? null : Number(value));

// The working-size menu shows the state's size.
export function showWorkingSide() {
  $("#max-side").value = sideValue(state.maxSide);
}

// Another image or working size: the probe goes, and the stages with the new picture are
// asked for. `since` is when the user asked (for the timings).
export function changeImage(since = performance.now()) {
  clearProbe();
  showWorkingSide();
  view.loadStart = {at: since, image: state.image};
  scheduleStages();
}

// A new image starts at its own working size: full size unless over the budget.
export function useImage(id, fitSide, since) {
  state.image = id;
  state.maxSide = fitSide;
  changeImage(since);
}

// The working size a sample or upload of the #sample menu starts at.
export function fitOf(option) {
  if (option?.dataset.fit) return sideOf(option.dataset.fit);
  const sample = view.meta.samples.find((s) => s.id === option?.value);
  return sample ? sample.fit_side : null;
}

export function pickWorkingSide(value) {
  state.maxSide = sideOf(value);
  changeImage();
}

async function uploadFile(file) {
  if (!file) return;
  const since = performance.now();
  const limit = view.meta.limits.upload_bytes;
  if (file.size > limit) {
    showMessage(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB, over the ` +
      `${Math.round(limit / 2 ** 20)} MiB limit; use a smaller image`);
    return;
  }
  setStatus(`loading ${file.name || "the image"}…`, true);
  // no max_side: the server loads it at the working size the page starts it at (fit_side)
  const params = new URLSearchParams({name: file.name || "pasted.png", mode: state.mode});
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
  exposed.uploadMs = performance.now() - since;
  state.imageName = info.name;
  const select = $("#sample");
  let option = select.querySelector("option[data-upload]");
  if (!option) {
    option = el("option", {"data-upload": true});
    select.prepend(option);
  }
  option.value = info.id;
  option.dataset.fit = sideValue(info.fit_side);        // its working size when picked again
  option.textContent = `${info.name} (yours)`;
  select.value = info.id;
  clearMessage();
  useImage(info.id, info.fit_side, since);
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
