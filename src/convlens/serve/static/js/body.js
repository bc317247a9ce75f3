// The request body: the page's state as the server's schemas (serve/schemas.py) take it.
import {showMessage} from "./dom.js";
import {parseCell} from "./numbers.js";
import {state, view} from "./state.js";

export const CHANNELS = ["R", "G", "B"];

// (kh, kw) numbers for a shared kernel, (3, kh, kw) for one with its own R, G and B grids
function kernelWeights(kernel, index, report) {
  const planes = kernel.planes.map((cells, p) => cells.map((line, r) => line.map((text, c) => {
    const parsed = parseCell(text);
    if (parsed.error && report) {
      const where = kernel.planes.length === 3 ? `${CHANNELS[p]} ` : "";
      report.push(`kernel ${index + 1} (${kernel.name}), ${where}row ${r + 1}, col ${c + 1}: ${parsed.error}`);
    }
    return parsed.error ? null : parsed.value;
  })));
  return planes.length === 1 ? planes[0] : planes;
}

function layerBody() {
  const layer = state.layer;
  const padding = layer.padding === "same" ? "same" : Number(layer.padding);
  return {
    stride: layer.stride, padding, padding_mode: layer.padding_mode, dilation: layer.dilation,
    activation: layer.activation, pool: layer.pool === "none" ? null : Number(layer.pool),
    pool_type: layer.pool_type,
    pool_stride: layer.pool_stride === "auto" ? null : Number(layer.pool_stride),
  };
}

// The state as a request body, or null (and a message naming the first problem) if a cell or
// a setting is not one the server takes.
export function stateBody() {
  const problems = [];
  const kernels = state.kernels.map((kernel, index) => (
    {name: kernel.name, weights: kernelWeights(kernel, index, problems)}));
  const limits = {stride: view.meta.limits.layer_number, dilation: view.meta.limits.dilation};
  for (const [key, most] of Object.entries(limits)) {
    const value = state.layer[key];
    if (!Number.isInteger(value) || value < 1 || value > most) {
      problems.push(`${key} must be a whole number from 1 to ${most}`);
    }
  }
  if (problems.length) {
    showMessage(problems[0] + (problems.length > 1 ? ` (and ${problems.length - 1} more)` : ""));
    return null;
  }
  return {image: state.image, mode: state.mode, max_side: state.maxSide, kernels, layer: layerBody()};
}

// The same body as a string, to tell whether the inputs changed.
export const bodyKey = (body) => (body ? JSON.stringify(body) : "");
