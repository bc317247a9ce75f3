// Probing pixels: the pointer, a tap or the arrow keys pick one pixel of a map; its outline
// is drawn and the explanation panel follows.
import {hideBoxes, placeBox} from "./boxes.js";
import {placeExplainNear, requestExplain, resetExplain} from "./explain.js";
import {slideOnExplain, sliding, stopSlide} from "./slide.js";
import {view} from "./state.js";

export function pointAt(event, k, stage, tapped = false) {
  const parts = view.rows[k]?.stages[stage];
  if (!parts || !parts.stats || (sliding() && !tapped)) return;
  const rect = parts.canvas.getBoundingClientRect();
  const [dh, dw] = parts.display;
  const factor = parts.stats.factor;
  const [h, w] = parts.stats.shape;
  const y = (event.clientY - rect.top) / rect.height;
  const x = (event.clientX - rect.left) / rect.width;
  if (x < 0 || y < 0 || x >= 1 || y >= 1) return;
  const row = Math.min(h - 1, Math.floor(y * dh * factor));
  const col = Math.min(w - 1, Math.floor(x * dw * factor));
  const probe = view.probe;
  const same = probe && probe.k === k && probe.stage === stage && probe.row === row && probe.col === col;
  if (tapped && event.pointerType === "mouse") {      // a click: the kernel slides to the pixel
    stopSlide();
    slideOnExplain({k, stage, row, col});
    setProbe(same ? probe : {k, stage, row, col}, true);
    return;
  }
  if (same) return;
  setProbe({k, stage, row, col});
  if (tapped && event.pointerType === "touch") placeExplainNear(view.rows[k].el);
}

export function keyProbe(event, k, stage) {
  const steps = {ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1]};
  if (event.key === "Escape") { clearProbe(); return; }
  const step = steps[event.key];
  const parts = view.rows[k]?.stages[stage];
  if (!step || !parts?.stats) return;
  event.preventDefault();
  const size = event.shiftKey ? 10 : 1;
  const [h, w] = parts.stats.shape;
  const probe = view.probe;
  const base = probe && probe.k === k && probe.stage === stage ? probe :
    {row: Math.floor(h / 2), col: Math.floor(w / 2)};
  setProbe({k, stage, row: Math.max(0, Math.min(h - 1, base.row + step[0] * size)),
    col: Math.max(0, Math.min(w - 1, base.col + step[1] * size))});
}

// A focused map probes its centre pixel unless it holds the probe already.
export function focusProbe(k, stage) {
  const probe = view.probe;
  const stats = view.rows[k]?.stages[stage]?.stats;
  if (stats && (!probe || probe.k !== k || probe.stage !== stage)) {
    setProbe({k, stage, row: Math.floor(stats.shape[0] / 2), col: Math.floor(stats.shape[1] / 2)});
  }
}

// Probe pixel `next`; a slide under way (or waiting for its explanation) stops, unless this is
// the click that asked for it.
export function setProbe(next, clicked = false) {
  if (!clicked) stopSlide();
  view.probe = next;
  placeProbe(next);
  requestExplain(next);
}

// Outline the probed pixel (on the conv and activated maps alike); false if it is not on the
// maps drawn now.
export function placeProbe(p) {
  hideBoxes();
  const row = view.rows[p.k];
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

// No pixel is probed: the outlines go and the panel clears.
export function clearProbe() {
  stopSlide();
  view.probe = null;
  hideBoxes();
  resetExplain();
}

// The stages were drawn anew: the probed pixel is explained again from the new inputs, or the
// probe goes if that pixel is no longer on the maps.
export function reprobe() {
  if (!view.probe) { resetExplain(); return; }
  if (placeProbe(view.probe)) requestExplain(view.probe);
  else clearProbe();
}
