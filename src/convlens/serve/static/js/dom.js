// Small DOM helpers shared by every module: query, build an element, fill a <select>,
// the message bar and the status line.

export const $ = (selector, root = document) => root.querySelector(selector);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

export function fillSelect(select, options, value) {
  select.replaceChildren(...options.map(([v, text]) => el("option", {value: v, text})));
  select.value = String(value);
}

export function showMessage(text) {
  $("#message-text").textContent = text;
  $("#message").hidden = false;
}

export function clearMessage() {
  $("#message").hidden = true;
  $("#message-text").textContent = "";
}

export function setStatus(text, busy = false) {
  const status = $("#status");
  if (status.textContent !== text) status.textContent = text;   // no relayout for the same words
  status.classList.toggle("busy", busy);
}

export const isPhone = () => window.matchMedia("(max-width: 799px)").matches;

// A width×height size as the page writes it (the label says the order).
export const wxh = ([width, height]) => `${width}×${height}`;
