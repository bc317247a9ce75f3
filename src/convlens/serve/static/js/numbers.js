// Cell text <-> numbers, short display of numbers, and colour tables.

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

export function parseCell(text) {
  const value = String(text).trim();
  if (value === "") return {error: "is empty"};
  if (NUMBER.test(value)) return {value: Number(value)};
  const parts = value.split("/");
  if (parts.length === 2 && NUMBER.test(parts[0].trim()) && NUMBER.test(parts[1].trim())) {
    const bottom = Number(parts[1]);
    if (bottom === 0) return {error: "divides by zero"};
    return {value: Number(parts[0]) / bottom};
  }
  return {error: `'${value}' is not a number (write e.g. 2, -0.5 or 1/16)`};
}

// The exact text of a cell's value divided by n ("2" -> "2/3", "1/16" -> "1/48").
export function dividedCell(text, n) {
  const parsed = parseCell(text);
  if (parsed.error) return text;
  if (parsed.value === 0) return "0";
  const parts = String(text).trim().split("/");
  return parts.length === 2 ? `${parts[0].trim()}/${Number(parts[1]) * n}` : `${parts[0]}/${n}`;
}

export function short(value) {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value - Math.round(value)) < 1e-9) return String(Math.round(value));
  return Number(value.toPrecision(3)).toString();
}

export function lutOf(table) {
  const lut = new Uint32Array(256);
  table.forEach(([r, g, b], i) => { lut[i] = ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0; });
  return lut;
}

export function cssColour(lut, index) {
  const v = lut[Math.max(0, Math.min(255, Math.round(index)))];
  return `rgb(${v & 255},${(v >>> 8) & 255},${(v >>> 16) & 255})`;
}
