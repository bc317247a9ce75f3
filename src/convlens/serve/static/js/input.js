// The input picture beside the explanation, and the image's sizes under the image menu: both
// sizes when the working size is not the file's, and why (the server's words).
import {$, el, wxh} from "./dom.js";
import {drawInput} from "./draw.js";
import {view} from "./state.js";

export function inputDisplaySide() {
  const limits = view.meta.limits.display;
  const width = $("#input-wrap").getBoundingClientRect().width || 360;
  const wanted = Math.ceil((width * (window.devicePixelRatio || 1)) / 64) * 64;
  return Math.min(limits[1], Math.max(limits[0], wanted));
}

// "big.jpg: 6000×4000 → 2048×1365 px (width×height)" when the working size is not the file's.
function sizeText(image) {
  const sizes = image.shrunk ? `${wxh(image.original)} → ${wxh(image.working)}` : wxh(image.working);
  return `${sizes} px (width×height)`;
}

// The input picture and its sizes, as the stages' answer sent them (`image` its header part).
export function showInput(image, array, factor) {
  view.inputHeader = {...image, factor};  // the outlines on it (boxes.js) scale by the factor
  drawInput($("#input-canvas"), array);
  const [c, h, w] = image.shape;
  const colour = c === 1 ? "gray" : "rgb";
  $("#input-caption").replaceChildren(el("b", {text: "input"}),
    ` ${image.name}: ${colour}, ${wxh([w, h])} px` + (factor > 1 ? ` (drawn at 1/${factor})` : ""));
  const info = $("#image-info");
  info.replaceChildren(`${image.name}: ${sizeText(image)}, ` +
    (c === 1 ? "1 channel (gray)" : "3 channels (rgb)"),
  image.note ? el("span", {class: "why", "data-testid": "size-note", text: `: ${image.note}`}) : "");
  info.classList.toggle("shrunk", Boolean(image.shrunk));
  $("#input-canvas").setAttribute("aria-label", `the input image ${image.name}, ${w} wide and ${h} high`);
}
