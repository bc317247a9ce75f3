// The network view's kernel slide: a clicked number's conv window steps over the conv's input
// map, from the top left corner down the first column and along the row into place, as CNN
// Explainer does. The windows come from the server (serve/network.py's slide_boxes); this
// only draws them, one per step. Switched off (the page's checkbox) or under
// prefers-reduced-motion the window is put in place at once.
import {$} from "./dom.js";
import {exposed} from "./state.js";

const DURATION_MS = 700;
let running = null;

// Whether a slide runs now.
export const sliding = () => running !== null;

// Whether a slide is to be shown: the switch is on and the user's system allows motion.
export function slideWanted() {
  const reduced = window.matchMedia?.("(prefers-reduced-motion: reduce)").matches;
  return $("#network-slide").checked && !reduced;
}

// Step `boxes` (elements over maps of `shape` [h, w]) through the windows `steps`
// ([[top, bottom, left, right], ...]), calling `place(box, shape, top, bottom, left, right)`,
// then `done()`. At once when `animate` is false. A newer slide stops this one.
export function slideBoxes(boxes, shape, steps, place, animate, done) {
  const token = {};
  running = token;
  exposed.networkSlidePath = [];
  const show = (index) => {
    const [top, bottom, left, right] = steps[index];
    for (const box of boxes) place(box, shape, top, bottom, left, right);
    exposed.networkSlidePath.push(steps[index]);
  };
  if (!animate || steps.length < 2) {
    show(steps.length - 1);
    done();
    return;
  }
  document.body.dataset.networkSliding = "1";
  show(0);                          // the corner first, whenever the first frame comes
  const started = performance.now();
  let shown = 0;
  const frame = (now) => {
    if (running !== token) return;                  // another cell was clicked meanwhile
    // a frame's time may precede `started` (it is when the frame began)
    const index = Math.max(0, Math.min(steps.length - 1,
      Math.floor(((now - started) / DURATION_MS) * steps.length)));
    if (index !== shown) { show(index); shown = index; }
    if (index < steps.length - 1) { requestAnimationFrame(frame); return; }
    running = null;
    delete document.body.dataset.networkSliding;
    exposed.networkSlides = (exposed.networkSlides || 0) + 1;
    done();
  };
  requestAnimationFrame(frame);
}

// A click elsewhere: any slide stops where it is.
export function stopSlide() {
  running = null;
  delete document.body.dataset.networkSliding;
}
