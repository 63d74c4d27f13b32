// Small DOM helpers. Every text goes through textContent: nothing from the API is parsed as HTML.

/**
 * Build an element. `attrs` keys: `class`, `text`, `on<event>` handlers, `dataset`,
 * booleans (`disabled`, `checked`, `hidden`, `selected`) as properties, the rest as attributes.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (["disabled", "checked", "hidden", "selected", "value"].includes(key)) {
      el[key] = value;
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace every child of `el`. */
export function fill(el, ...children) {
  const frag = document.createDocumentFragment();
  append(frag, children);
  el.replaceChildren(frag);
  return el;
}

export function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined || Number.isNaN(bytes)) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(bytes);
  let i = 0;
  while (Math.abs(value) >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${value.toFixed(i === 0 ? 0 : value < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function fmtNumber(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
  const n = Number(value);
  return Number.isInteger(n) ? String(n) : n.toFixed(digits);
}

export function fmtPercent(ratio) {
  if (ratio === null || ratio === undefined || Number.isNaN(Number(ratio))) return "–";
  return `${(Number(ratio) * 100).toFixed(ratio >= 0.9995 || ratio === 0 ? 0 : 1)}%`;
}

/** Say something to screen readers through the page's polite live region. */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  requestAnimationFrame(() => {
    region.textContent = message;
  });
}

/** A labelled form field: returns the wrapper; the control is `wrapper.control`. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  const wrapper = h("div", { class: "field" }, h("label", { for: id, text: label }), control);
  if (hint) {
    const hintEl = h("div", { class: "hint", id: `${id}-hint` }, hint);
    control.setAttribute("aria-describedby", hintEl.id);
    wrapper.append(hintEl);
  }
  wrapper.control = control;
  return wrapper;
}

/** Status word to a CSS class. */
export function statusClass(status) {
  const s = String(status || "unknown").toLowerCase();
  if (["ready", "running", "active", "ok", "healthy"].includes(s)) return "st-ok";
  if (["starting", "stopping", "loading", "scanning", "restarting"].includes(s)) return "st-busy";
  if (["error", "failed", "crashed", "unhealthy"].includes(s)) return "st-bad";
  return "st-idle";
}
