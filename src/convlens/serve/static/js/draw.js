// Drawing uint8 arrays on canvases: one map through a colour table, or an image (gray or RGB).

export function drawMap(canvas, array, lut) {
  const [height, width] = array.shape;
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  const pixels = new Uint32Array(image.data.buffer);
  const source = array.data;
  for (let i = 0; i < source.length; i++) pixels[i] = lut[source[i]];
  context.putImageData(image, 0, 0);
}

export function drawInput(canvas, array) {
  const [channels, height, width] = array.shape;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  const out = image.data;
  const src = array.data;
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    const r = src[i];
    out[4 * i] = r;
    out[4 * i + 1] = channels === 3 ? src[plane + i] : r;
    out[4 * i + 2] = channels === 3 ? src[2 * plane + i] : r;
    out[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}
