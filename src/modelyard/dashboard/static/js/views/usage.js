// Usage: per model and per instance, requests, success rate, time to first token, tokens/s;
// the figures as tables and, over time, as charts.

import { lineChart } from "../chart.js";
import { fill, fmtNumber, fmtPercent, h } from "../dom.js";
import { figures } from "../state.js";

const MAX_SERIES = 6;
const BUCKET_S = 60;
const HISTORY_EVERY_MS = 10_000;

export class UsageView {
  constructor(root, { store }) {
    this.root = root;
    this.store = store;
    this.kind = "models";
    this.api = store.api;
    this.stored = new Map(); // model id -> buckets from /api/models/statistics/history
    this.storedAt = 0;
    this.picker = h(
      "select",
      { id: "usage-kind", onchange: (e) => { this.kind = e.target.value; this.render(); } },
      h("option", { value: "models", text: "per model" }),
      h("option", { value: "instances", text: "per instance" }),
    );
    this.tables = h("div", { id: "usage-tables" });
    this.charts = h("div", { id: "usage-charts", class: "charts" });
    root.append(
      h("h2", { text: "Usage" }),
      h("div", { class: "toolbar" }, h("label", { for: "usage-kind", text: "Figures" }), this.picker),
      this.tables,
      this.charts,
    );
    store.subscribe("stats", () => this.render());
  }

  show() {
    this.store.refresh("stats");
    this.render();
    this.loadHistory(true);
  }

  /** The stored per-minute figures of the busiest models (they outlive a page reload). */
  async loadHistory(force = false) {
    if (!force && Date.now() - this.storedAt < HISTORY_EVERY_MS) return;
    this.storedAt = Date.now();
    const top = this.rows("models").sort((a, b) => b.requests - a.requests).slice(0, MAX_SERIES);
    try {
      const found = await Promise.all(
        top.map((r) =>
          this.api.get(
            `/api/models/statistics/history?bucket_s=${BUCKET_S}&model_id=${encodeURIComponent(r.id)}`,
          ),
        ),
      );
      this.stored = new Map(top.map((r, n) => [r.id, found[n].buckets ?? []]));
      this.render();
    } catch (err) {
      this.store.onError(`usage history: ${err.message}`);
    }
  }

  rows(kind) {
    return (this.store.get("stats")?.[kind] ?? []).map((raw) => ({
      id: raw.id ?? raw.model ?? raw.instance ?? "?",
      ...figures(raw),
    }));
  }

  render() {
    if (this.root.hidden) return;
    const stats = this.store.get("stats");
    if (!stats) {
      fill(this.tables, h("p", { class: "muted", text: this.store.errors.stats ?? "Loading…" }));
      fill(this.charts);
      return;
    }
    const rows = this.rows(this.kind).sort((a, b) => b.requests - a.requests);
    const label = this.kind === "models" ? "Model" : "Instance";
    fill(
      this.tables,
      rows.length
        ? h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { id: "usage-table", "aria-label": `Figures ${this.picker.selectedOptions[0].text}` },
              h("thead", {}, h("tr", {}, [label, "Requests", "Success", "TTFT p50 (ms)", "TTFT p95 (ms)", "Tokens/s"].map((c) => h("th", { scope: "col", text: c })))),
              h(
                "tbody",
                {},
                rows.map((r) =>
                  h(
                    "tr",
                    { dataset: { id: r.id } },
                    h("th", { scope: "row", text: r.id }),
                    h("td", { class: "num requests", text: String(r.requests) }),
                    h("td", { class: "num", text: fmtPercent(r.success) }),
                    h("td", { class: "num", text: fmtNumber(r.ttft, 0) }),
                    h("td", { class: "num", text: fmtNumber(r.ttft95, 0) }),
                    h("td", { class: "num", text: fmtNumber(r.tps) }),
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "muted", text: "No request has gone through the gateway yet." }),
    );
    const top = rows.slice(0, MAX_SERIES).map((r) => r.id);
    const stored = this.kind === "models" && top.some((id) => this.stored.get(id)?.length);
    if (stored) {
      this.loadHistory();
      const series = (pick) =>
        top.map((id) => ({
          name: id,
          points: (this.stored.get(id) ?? []).map((b) => [b.start * 1000, pick(b)]),
        }));
      fill(
        this.charts,
        lineChart({ id: "chart-requests", title: "Requests", unit: "per minute", series: series((b) => b.requests) }),
        lineChart({ id: "chart-success", title: "Success rate", unit: "%", series: series((b) => (b.success_rate === null ? null : b.success_rate * 100)) }),
        lineChart({ id: "chart-ttft", title: "Time to first token (p50)", unit: "ms", series: series((b) => (b.ttft_p50_s === null ? null : b.ttft_p50_s * 1000)) }),
        lineChart({ id: "chart-tps", title: "Generation speed", unit: "tokens/s", series: series((b) => b.tokens_per_s) }),
      );
      return;
    }
    const series = (metric) =>
      top.map((id) => ({
        name: id,
        points: this.store.history.map((s) => [s.t, s[this.kind][id]?.[metric] ?? null]),
      }));
    fill(
      this.charts,
      lineChart({ id: "chart-requests", title: "Requests", unit: "total", series: series("requests") }),
      lineChart({ id: "chart-ttft", title: "Time to first token", unit: "ms", series: series("ttft") }),
      lineChart({ id: "chart-tps", title: "Generation speed", unit: "tokens/s", series: series("tps") }),
    );
  }
}
