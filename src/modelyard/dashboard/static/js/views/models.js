// Models: the catalog table. Enable, tier and thinking overrides, rescan with live progress,
// filter and sort. Rows are keyed by model id and rebuilt only when their record changed.

import { seg } from "../api.js";
import { announce, field, fill, fmtBytes, h, statusClass } from "../dom.js";
import { inst } from "../state.js";

const TIERS = ["fast", "balanced", "powerful"];
const BADGES = [
  ["coder", "CODER"],
  ["instruct", "INSTRUCT"],
  ["vision", "VISION"],
  ["thinking", "THINKING"],
  ["embedding", "EMBEDDING"],
];
const SOURCES = { hf: "HF", ollama: "Ollama", folder: "folder", curated: "curated", default: "bundled" };
const COLUMNS = [
  ["enabled", "Enabled"],
  ["name", "Name"],
  ["size", "Size"],
  ["quantization", "Quant"],
  ["tier", "Tier"],
  ["thinking", "Thinking"],
  ["roles", "Roles"],
  ["source", "Source"],
  ["status", "Status"],
];

export function modelName(m) {
  return m.display_name || m.name || m.id;
}

export class ModelsView {
  constructor(root, { api, store, error }) {
    this.root = root;
    this.api = api;
    this.store = store;
    this.error = error;
    this.rows = new Map();
    this.sort = { key: "name", dir: 1 };
    this.filter = "";
    this.enabledOnly = false;
    this.frame = 0;
    this.firstRender = true;
    this.build();
    store.subscribe(["models", "instances"], () => this.schedule());
    store.subscribe("scan", () => this.renderScan());
  }

  build() {
    this.filterInput = h("input", {
      type: "search",
      id: "model-filter",
      placeholder: "name, family, quant, role…",
      oninput: (e) => {
        this.filter = e.target.value.trim().toLowerCase();
        this.schedule();
      },
    });
    this.enabledBox = h("input", {
      type: "checkbox",
      id: "model-enabled-only",
      onchange: (e) => {
        this.enabledOnly = e.target.checked;
        this.schedule();
      },
    });
    this.rescanButton = h("button", {
      type: "button",
      id: "rescan",
      class: "primary",
      text: "Rescan",
      onclick: () => this.rescan(),
    });
    this.progress = h("progress", { id: "rescan-progress", max: "100", hidden: true, "aria-label": "Rescan progress" });
    this.scanText = h("span", { id: "rescan-status", class: "muted", role: "status", "aria-live": "polite" });
    this.count = h("span", { id: "model-count", class: "muted" });
    this.tbody = h("tbody", { id: "models-body" });
    this.headRow = h("tr");
    this.root.append(
      h("h2", { text: "Models" }),
      h(
        "div",
        { class: "toolbar" },
        field("Filter models", this.filterInput),
        h("label", { class: "check" }, this.enabledBox, " enabled only"),
        h("div", { class: "grow" }),
        this.count,
        this.rescanButton,
      ),
      h("div", { class: "scan" }, this.progress, this.scanText),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "models", id: "models-table", "aria-label": "Model catalog" },
          h("thead", {}, this.headRow),
          this.tbody,
        ),
      ),
    );
    this.renderHead();
  }

  renderHead() {
    fill(
      this.headRow,
      COLUMNS.map(([key, label]) => {
        const sorted = this.sort.key === key;
        return h(
          "th",
          { scope: "col", "aria-sort": sorted ? (this.sort.dir > 0 ? "ascending" : "descending") : "none" },
          h(
            "button",
            {
              type: "button",
              class: "sort",
              "aria-label": `Sort by ${label}`,
              onclick: () => {
                this.sort = { key, dir: sorted ? -this.sort.dir : 1 };
                this.renderHead();
                this.schedule();
              },
            },
            label,
            h("span", { "aria-hidden": "true", text: sorted ? (this.sort.dir > 0 ? " ▲" : " ▼") : "" }),
          ),
        );
      }),
    );
  }

  show() {
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  statusOf(model, counts) {
    if (model.error) return "error";
    const c = counts.get(model.id);
    if (c?.ready) return `ready ×${c.ready}`;
    if (c?.running) return `starting ×${c.running}`;
    if (c?.total) return `stopped ×${c.total}`;
    return model.enabled ? "enabled" : "disabled";
  }

  render() {
    const models = this.store.models();
    const counts = new Map();
    for (const i of this.store.instances()) {
      const c = counts.get(inst.model(i)) ?? { total: 0, ready: 0, running: 0 };
      const status = inst.status(i).toLowerCase();
      c.total += 1;
      if (status === "ready") c.ready += 1;
      else if (inst.running(i)) c.running += 1;
      counts.set(inst.model(i), c);
    }
    const rows = models
      .filter((m) => (!this.enabledOnly || m.enabled) && this.matches(m))
      .map((m) => ({ m, status: this.statusOf(m, counts) }))
      .sort((a, b) => this.compare(a, b));
    const focusKey = document.activeElement?.dataset?.fk;
    const seen = new Set();
    const ordered = rows.map(({ m, status }) => {
      seen.add(m.id);
      const key = JSON.stringify([m, status]);
      const cached = this.rows.get(m.id);
      if (cached && cached.key === key) return cached.row;
      const row = this.row(m, status);
      this.rows.set(m.id, { key, row });
      return row;
    });
    for (const id of this.rows.keys()) if (!seen.has(id)) this.rows.delete(id);
    const current = this.tbody.children;
    const same = current.length === ordered.length && ordered.every((row, n) => current[n] === row);
    if (!same) this.tbody.replaceChildren(...ordered);
    if (!ordered.length) {
      const text = this.store.errors.models
        ? `The catalog could not be read: ${this.store.errors.models}`
        : models.length
          ? "No model matches the filter."
          : this.store.get("models")
            ? "No models found yet. Rescan, or add model folders to the configuration."
            : "Loading the catalog…";
      this.tbody.replaceChildren(h("tr", {}, h("td", { colspan: COLUMNS.length, class: "empty", text })));
    }
    if (focusKey && !document.activeElement?.isConnected) {
      this.tbody.querySelector(`[data-fk="${CSS.escape(focusKey)}"]`)?.focus();
    } else if (focusKey && document.activeElement === document.body) {
      this.tbody.querySelector(`[data-fk="${CSS.escape(focusKey)}"]`)?.focus();
    }
    this.count.textContent = `${rows.length} of ${models.length} models`;
    if (this.firstRender && models.length) {
      this.firstRender = false;
      performance.mark("modelyard:models-rendered");
      document.body.dataset.modelsRenderedAt = String(performance.now());
    }
    document.body.dataset.modelsRenderCount = String(Number(document.body.dataset.modelsRenderCount || 0) + 1);
  }

  matches(m) {
    if (!this.filter) return true;
    const hay = [
      m.id,
      m.name,
      m.display_name,
      m.family,
      m.architecture,
      m.quantization,
      m.source,
      m.tier,
      ...Object.keys(m.roles ?? {}),
      ...BADGES.filter(([k]) => m[k]).map(([, label]) => label),
    ]
      .filter(Boolean)
      .join(" ")
      .toLowerCase();
    return this.filter.split(/\s+/).every((word) => hay.includes(word));
  }

  compare(a, b) {
    const key = this.sort.key;
    const value = ({ m, status }) => {
      switch (key) {
        case "enabled":
          return m.enabled ? 0 : 1;
        case "size":
          return Number(m.parameters_b ?? 0) * 1e12 + Number(m.size_bytes ?? 0);
        case "tier":
          return TIERS.indexOf(m.tier);
        case "thinking":
          return m.thinking ? 0 : 1;
        case "roles":
          return Object.keys(m.roles ?? {}).join(",");
        case "status":
          return status;
        case "name":
          return modelName(m).toLowerCase();
        default:
          return String(m[key] ?? "").toLowerCase();
      }
    };
    const x = value(a);
    const y = value(b);
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return (order || modelName(a.m).localeCompare(modelName(b.m))) * this.sort.dir;
  }

  row(m, status) {
    const name = modelName(m);
    const tierSelect = h(
      "select",
      {
        "aria-label": `Tier of ${name}`,
        dataset: { fk: `${m.id}|tier` },
        onchange: (e) => this.setTier(m, e.target.value),
      },
      h("option", { value: "", text: "auto", selected: !m.tier_overridden && !m.tier }),
      TIERS.map((t) => h("option", { value: t, text: t, selected: m.tier === t })),
    );
    const params = m.parameters_b ? `${formatParams(m.parameters_b)}` : "";
    return h(
      "tr",
      { dataset: { id: m.id }, class: m.enabled ? "" : "disabled" },
      h(
        "td",
        { class: "c" },
        h("input", {
          type: "checkbox",
          checked: Boolean(m.enabled),
          "aria-label": `Enable ${name}`,
          dataset: { fk: `${m.id}|enabled` },
          onchange: (e) => this.setEnabled(m, e.target.checked, e.target),
        }),
      ),
      h(
        "th",
        { scope: "row", class: "name" },
        h("span", { class: "model-name", text: name }),
        name !== m.id ? h("span", { class: "model-id muted", text: m.id }) : null,
        h(
          "span",
          { class: "badges" },
          BADGES.filter(([k]) => m[k]).map(([k, label]) => h("span", { class: `badge b-${k}`, text: label })),
        ),
        m.error ? h("span", { class: "model-error", text: m.error }) : null,
      ),
      h("td", { class: "num", "data-label": "Size", title: fmtBytes(m.size_bytes) }, params, params ? h("br") : null, h("span", { class: "muted", text: fmtBytes(m.size_bytes) })),
      h("td", { "data-label": "Quantization", text: m.quantization ?? "–" }),
      h(
        "td",
        { class: "nowrap", "data-label": "Tier" },
        tierSelect,
        m.tier_overridden ? h("span", { class: "marker", title: "set by you", "aria-label": "overridden", text: "*" }) : null,
      ),
      h(
        "td",
        { class: "nowrap", "data-label": "Thinking" },
        h(
          "label",
          { class: "toggle" },
          h("input", {
            type: "checkbox",
            role: "switch",
            checked: Boolean(m.thinking),
            "aria-label": `Thinking for ${name}`,
            dataset: { fk: `${m.id}|thinking` },
            onchange: (e) => this.setThinking(m, e.target.checked, e.target),
          }),
          h("span", { "aria-hidden": "true", text: m.thinking ? "on" : "off" }),
        ),
        // In words: "on * auto" read as a value, not as "set by you; click to go back".
        h("span", { class: "muted small thinking-source", text: m.thinking_overridden ? " (set by you) " : " (detected)" }),
        m.thinking_overridden
          ? h("button", {
              type: "button",
              class: "link reset-thinking",
              text: "use detected",
              title: "Back to what the model file says",
              "aria-label": `Thinking for ${name}: back to detected`,
              onclick: () => this.clearOverride(m, "thinking"),
            })
          : null,
      ),
      h(
        "td",
        { class: "roles", "data-label": "Roles" },
        Object.entries(m.roles ?? {}).map(([role, prio]) => h("span", { class: "role", text: `${role} ${prio}` })),
      ),
      h("td", { "data-label": "Source", text: SOURCES[m.source] ?? m.source ?? "–" }),
      h("td", { "data-label": "Status" }, h("span", { class: `status ${statusClass(status.split(" ")[0])}`, text: status })),
    );
  }

  async change(m, what, body, control) {
    try {
      const updated = await this.api.put(`/api/models/${seg(m.id)}/${what}`, body);
      if (updated && typeof updated === "object" && updated.id === m.id) this.replace(updated);
      announce(`${modelName(m)}: ${what} saved`);
    } catch (err) {
      this.error(err.message);
      if (control) control.checked = !control.checked;
    } finally {
      this.store.refresh("models");
    }
  }

  async clearOverride(m, field) {
    try {
      const updated = await this.api.delete(`/api/models/${seg(m.id)}/overrides/${field}`);
      if (updated && typeof updated === "object" && updated.id === m.id) this.replace(updated);
      announce(`${modelName(m)}: ${field} back to detected`);
    } catch (err) {
      this.error(err.message);
    } finally {
      this.store.refresh("models");
    }
  }

  replace(model) {
    const current = this.store.get("models");
    if (!current) return;
    const list = current.list.map((x) => (x.id === model.id ? { ...x, ...model } : x));
    this.store.set("models", { ...current, list });
  }

  setEnabled(m, enabled, control) {
    return this.change(m, "enabled", { enabled }, control);
  }

  setThinking(m, thinking, control) {
    return this.change(m, "thinking", { thinking }, control);
  }

  setTier(m, tier) {
    return this.change(m, "tier", { tier: tier || null });
  }

  async rescan() {
    this.rescanButton.disabled = true;
    this.store.scan = { type: "rescan.started" };
    this.renderScan();
    try {
      const result = await this.api.post("/api/models/rescan", {});
      this.store.scan = { type: "rescan.done", ...(result && typeof result === "object" ? result : {}) };
      this.renderScan();
      await this.store.refresh("models");
    } catch (err) {
      this.store.scan = { type: "rescan.error", error: err.message };
      this.renderScan();
      this.error(err.message);
    } finally {
      this.rescanButton.disabled = false;
    }
  }

  renderScan() {
    const scan = this.store.scan;
    if (!scan) return;
    const type = scan.type ?? "";
    const done = /(done|finish|complete|result|error|fail|end)/.test(type) || scan.done || scan.finished;
    const total = Number(scan.headers_to_read ?? scan.total ?? 0);
    const seen = Number(scan.headers_read ?? scan.scanned ?? 0);
    const found = Number(scan.files_found ?? scan.files ?? 0);
    this.progress.hidden = done;
    if (!done && total > 0) this.progress.value = Math.min(100, (seen / total) * 100);
    else if (!done) this.progress.removeAttribute("value");
    if (scan.error) {
      this.scanText.textContent = `Rescan failed: ${scan.error}`;
    } else if (done) {
      const models = scan.models ?? scan.found ?? scan.total_models;
      const count = Array.isArray(models) ? models.length : models;
      const added = Array.isArray(scan.added) ? scan.added.length : scan.added;
      const warnings = scan.warnings?.length ?? 0;
      const errors = Number(scan.errors ?? 0);
      this.scanText.textContent = [
        "Rescan done",
        count !== undefined ? `${count} models` : null,
        added !== undefined ? `${added} new` : null,
        warnings ? `${warnings} warnings` : null,
        errors ? `${errors} unreadable files` : null,
      ]
        .filter(Boolean)
        .join(", ");
      this.rescanButton.disabled = false;
    } else {
      const parts = [found ? `${found} files found` : null, total ? `${seen} / ${total} headers read` : null];
      this.scanText.textContent = `Scanning… ${parts.filter(Boolean).join(", ")}`;
    }
  }
}

function formatParams(b) {
  const n = Number(b);
  if (n < 1) return `${Math.round(n * 1000)}M`;
  return `${n % 1 === 0 ? n : n.toFixed(1)}B`;
}
