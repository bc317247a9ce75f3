// Requests to the local server: the token every POST carries, one-line errors, and the binary
// messages (a JSON header, then uint8 arrays) that serve/wire.py packs.
import {$} from "./dom.js";

// The server refuses any POST without the token it wrote into this page's HTML, so no other web
// site can drive it (it can neither read this page nor send the header without the server's
// consent). Every state-changing request goes through post().
const TOKEN = $('meta[name="convlens-token"]')?.content || "";

export function post(url, options = {}) {
  return fetch(url, {...options, method: "POST",
    headers: {...(options.headers || {}), "X-Convlens-Token": TOKEN}});
}

export function postJSON(url, body) {
  return post(url, {headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
}

export async function errorText(response) {
  try {
    const data = await response.json();
    return data.error || JSON.stringify(data);
  } catch (err) {
    return `the server answered ${response.status} ${response.statusText}`;
  }
}

export function unpack(buffer) {
  const view = new DataView(buffer);
  const length = view.getUint32(0, true);
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  const base = 4 + length + ((8 - ((4 + length) % 8)) % 8);
  const arrays = {};
  for (const entry of head.arrays) {
    const count = entry.shape.reduce((a, b) => a * b, 1);
    arrays[entry.name] = {shape: entry.shape, data: new Uint8Array(buffer, base + entry.offset, count)};
  }
  return {head, arrays};
}
