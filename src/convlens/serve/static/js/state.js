// The page's one state, in two parts: `state`, what the stages depend on (sent whole with every
// request), and `view`, what is drawn now and what the server told the page at start (`meta`:
// presets, limits, choices, layer kinds, colour tables, from GET /api/meta).

export const state = {
  image: "sample-chelsea", imageName: "chelsea.png", mode: "gray",
  maxSide: null,                  // working size: longest side in px, null for full size
  kernels: [],                    // [{name, preset, planes: [[[text]]]}]: 1 shared or 3 (R, G, B) grids
  layer: {},
};

export const view = {
  meta: null,
  luts: {},                       // name -> Uint32Array(256) of RGBA pixels
  rows: [],                       // one entry per kernel row: its elements
  header: null,                   // header of the stages drawn now
  drawnBody: null,                // the request body the drawn stages came from
  inputHeader: null,              // the input image drawn now: name, shape, sizes, note, factor
  inputKey: null,                 // [image, mode, max_side] it was drawn for
  loadStart: null,                // {at, image}: when a new image was asked for
  probe: null,                    // {k, stage, row, col}
  modelInfo: null,
};

// exposed for tests and the benchmark
export const exposed = {timings: [], loads: [], renders: 0, state, explained: 0};
window.convlens = exposed;
