// The outlines drawn over maps: the probed pixel, a pooling window, and the patch the kernel
// covers on the input image.
import {$} from "./dom.js";
import {view} from "./state.js";

export function hideBoxes() {
  for (const row of view.rows) {
    for (const parts of Object.values(row.stages)) {
      parts.probeBox.hidden = true;
      if (parts.windowBox) parts.windowBox.hidden = true;
    }
  }
  $("#field-box").hidden = true;
}

// An outline over map `parts` at map rows top..top+height-1, cols left..left+width-1.
export function placeBox(box, parts, top, left, height, width) {
  const [dh, dw] = parts.display;
  const scaleH = dh * parts.stats.factor;
  const scaleW = dw * parts.stats.factor;
  box.style.top = `${(100 * top) / scaleH}%`;
  box.style.left = `${(100 * left) / scaleW}%`;
  box.style.height = `${(100 * height) / scaleH}%`;
  box.style.width = `${(100 * width) / scaleW}%`;
  box.hidden = false;
}

// The receptive field on the input image (dashed where it runs into the padding).
export function showField(field) {
  const box = $("#field-box");
  const input = view.inputHeader;
  if (!field || !input) { box.hidden = true; return; }
  const [, h, w] = input.shape;
  const canvas = $("#input-canvas");
  const scaleH = canvas.height * input.factor;
  const scaleW = canvas.width * input.factor;
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
