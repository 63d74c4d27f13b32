// A small SVG line chart: a few series over time, an axis with its range, a legend.

import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 600;
const HEIGHT = 180;
const PAD = { left: 44, right: 10, top: 10, bottom: 22 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) if (child) el.append(child);
  return el;
}

/**
 * `series`: [{name, points: [[t_ms, value|null], ...]}]. Returns a <figure> with the chart, a
 * legend and an aria-label that says the latest value of each series.
 */
export function lineChart({ title, unit, series, id }) {
  const points = series.flatMap((s) => s.points.filter(([, v]) => v !== null && Number.isFinite(v)));
  const summary = series
    .map((s) => {
      const last = [...s.points].reverse().find(([, v]) => v !== null && Number.isFinite(v));
      return `${s.name}: ${last ? `${format(last[1])} ${unit}` : "no data"}`;
    })
    .join("; ");
  const figure = h("figure", { class: "chart", id });
  figure.append(h("figcaption", { text: `${title} (${unit})` }));
  if (!points.length) {
    figure.append(h("p", { class: "muted", text: "No data yet: send a request through the gateway." }));
    return figure;
  }
  const t0 = Math.min(...points.map(([t]) => t));
  const t1 = Math.max(...points.map(([t]) => t), t0 + 1000);
  const vmax = niceMax(Math.max(...points.map(([, v]) => v)));
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (WIDTH - PAD.left - PAD.right);
  const y = (v) => HEIGHT - PAD.bottom - (v / vmax) * (HEIGHT - PAD.top - PAD.bottom);
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": `${title}. ${summary}` },
    svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0), class: "axis" }),
    svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(vmax), y2: y(vmax), class: "grid" }),
    svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(vmax / 2), y2: y(vmax / 2), class: "grid" }),
    label(PAD.left - 4, y(vmax) + 4, format(vmax), "end"),
    label(PAD.left - 4, y(vmax / 2) + 4, format(vmax / 2), "end"),
    label(PAD.left - 4, y(0) + 4, "0", "end"),
    label(PAD.left, HEIGHT - 4, clock(t0), "start"),
    label(WIDTH - PAD.right, HEIGHT - 4, clock(t1), "end"),
  );
  series.forEach((s, n) => {
    const valid = s.points.filter(([, v]) => v !== null && Number.isFinite(v));
    if (!valid.length) return;
    const d = valid.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
    chart.append(svg("path", { d, class: `line c${n % 8}` }));
    const [lt, lv] = valid.at(-1);
    chart.append(svg("circle", { cx: x(lt).toFixed(1), cy: y(lv).toFixed(1), r: 3, class: `dot c${n % 8}` }));
  });
  figure.append(
    chart,
    h(
      "ul",
      { class: "legend" },
      series.map((s, n) => h("li", {}, h("span", { class: `swatch c${n % 8}`, "aria-hidden": "true" }), s.name)),
    ),
  );
  return figure;
}

function label(xPos, yPos, text, anchor) {
  const el = svg("text", { x: xPos, y: yPos, "text-anchor": anchor, class: "tick" });
  el.textContent = text;
  return el;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function format(v) {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2).replace(/\.?0+$/, "") || "0";
}

function clock(t) {
  return new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
