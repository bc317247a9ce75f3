// A click on a conv or activated pixel slides the kernel to it, as CNN Explainer does: the
// window runs down the first column to the pixel's row, then along that row to the pixel, on
// the map and on the input at once; then the explanation's outlines come back. Drawing only:
// each step's window on the input is the clicked pixel's receptive field (from the server)
// moved by the layer's stride.
import {placeBox, showField} from "./boxes.js";
import {hideMagnifier, showMagnifier} from "./magnifier.js";
import {exposed, view} from "./state.js";

const DURATION_MS = 900;
const FRAMES = 36;
let pending = null;                 // the pixel clicked, slid to once it is explained
let running = null;

export const sliding = () => running !== null;

export function slideOnExplain(probe) {
  if (probe.stage === "pooled") return;
  // the system asks for less motion: the explanation's outlines come at once
  if (window.matchMedia?.("(prefers-reduced-motion: reduce)").matches) return;
  pending = {k: probe.k, stage: probe.stage, row: probe.row, col: probe.col};
}

// The path: (0, 0) down to (row, 0), then along to (row, col), FRAMES positions at most.
function path(row, col) {
  const legs = [];
  const total = row + col;
  const count = Math.min(FRAMES, total + 1);
  for (let i = 0; i < count; i++) {
    const step = count === 1 ? total : Math.round((i * total) / (count - 1));
    legs.push(step <= row ? [step, 0] : [row, step - row]);
  }
  return legs;
}

// Called when pixel `p` is explained (`data`, the JSON): slide to it if it was clicked.
export function maybeSlide(p, data) {
  if (!pending || pending.k !== p.k || pending.stage !== p.stage || pending.row !== p.row ||
      pending.col !== p.col) return false;
  pending = null;
  const row = view.rows[p.k];
  const parts = row?.stages[p.stage];
  if (!parts?.stats) return false;
  const stride = view.drawnBody.layer.stride;
  const field = data.receptive_field;
  const steps = path(p.row, p.col);
  const started = performance.now();
  const token = {};
  running = token;
  hideMagnifier();
  document.body.dataset.sliding = "1";
  exposed.slidePath = [];
  const frame = (now) => {
    if (running !== token) return;
    const index = Math.min(steps.length - 1, Math.floor(((now - started) / DURATION_MS) * steps.length));
    const [r, c] = steps[index];
    if (exposed.slidePath.at(-1)?.join() !== `${r},${c}`) exposed.slidePath.push([r, c]);
    for (const stage of ["conv", "activated"]) {
      const other = row.stages[stage];
      if (other.stats) placeBox(other.probeBox, other, r, c, 1, 1);
    }
    const dy = (r - p.row) * stride;
    const dx = (c - p.col) * stride;
    showField({top: field.top + dy, bottom: field.bottom + dy, left: field.left + dx,
      right: field.right + dx});
    if (index < steps.length - 1) {
      requestAnimationFrame(frame);
      return;
    }
    running = null;
    delete document.body.dataset.sliding;
    exposed.slides = (exposed.slides || 0) + 1;
    showField(field);
    showMagnifier(p, data);
  };
  requestAnimationFrame(frame);
  return true;
}

// A new probe or new inputs stop a slide where it is.
export function stopSlide() {
  pending = null;
  if (running) {
    running = null;
    delete document.body.dataset.sliding;
  }
}
