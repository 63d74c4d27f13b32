// Instances, grouped by model: add and remove, start and stop, live figures, and an editor for
// each instance's persona (display name, system prompt, web search, on-demand, idle TTL).

import { seg } from "../api.js";
import { announce, field, fill, fmtBytes, fmtDuration, fmtNumber, h, statusClass } from "../dom.js";
import { inst } from "../state.js";
import { modelName } from "./models.js";

export const PROMPT_MAX = 4096;

export class InstancesView {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.api = ctx.api;
    this.store = ctx.store;
    this.error = ctx.error;
    this.frame = 0;
    this.busy = new Set();
    this.list = h("div", { id: "instance-groups", class: "groups" });
    this.showAll = h("input", { type: "checkbox", id: "instances-all-models", onchange: () => this.schedule() });
    root.append(
      h("h2", { text: "Instances" }),
      h(
        "div",
        { class: "toolbar" },
        h("label", { class: "check" }, this.showAll, " show models that are not enabled"),
      ),
      this.list,
    );
    this.editor = new InstanceEditor(ctx);
    document.body.append(this.editor.dialog);
    this.store.subscribe(["models", "instances", "servers", "stats"], () => this.schedule());
    setInterval(() => this.tick(), 1000);
  }

  show() {
    this.schedule();
  }

  isDirty() {
    return this.editor.isDirty();
  }

  discard() {
    this.editor.close(true);
  }

  schedule() {
    if (this.root.hidden || this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  render() {
    const models = this.store.models();
    const byModel = new Map();
    for (const i of this.store.instances()) {
      const key = inst.model(i);
      if (!byModel.has(key)) byModel.set(key, []);
      byModel.get(key).push(i);
    }
    const shown = models.filter((m) => m.enabled || byModel.has(m.id) || this.showAll.checked);
    for (const id of byModel.keys()) {
      if (!models.some((m) => m.id === id)) shown.push({ id, name: id, missing: true });
    }
    const focusKey = document.activeElement?.dataset?.fk;
    if (!shown.length) {
      fill(
        this.list,
        h("p", {
          class: "empty",
          text: this.store.get("models")
            ? "No enabled model. Enable one in Models, then add instances here."
            : "Loading…",
        }),
      );
      return;
    }
    fill(this.list, shown.map((m) => this.group(m, sortInstances(byModel.get(m.id) ?? []))));
    if (focusKey) this.list.querySelector(`[data-fk="${CSS.escape(focusKey)}"]`)?.focus();
  }

  group(model, instances) {
    const name = modelName(model);
    const headingId = `group-${model.id}`;
    return h(
      "section",
      { class: "group", "aria-labelledby": headingId, dataset: { model: model.id } },
      h(
        "div",
        { class: "group-head" },
        h("h3", { id: headingId }, name, " ", h("span", { class: "count", "aria-label": `${instances.length} instances`, text: String(instances.length) })),
        model.missing ? h("span", { class: "model-error", text: "not in the catalog" }) : null,
        h("div", { class: "grow" }),
        h("button", {
          type: "button",
          class: "small",
          text: "−",
          "aria-label": `Remove one instance of ${name}`,
          disabled: !instances.length,
          dataset: { fk: `${model.id}|remove` },
          onclick: () => this.removeOne(model, instances),
        }),
        h("button", {
          type: "button",
          class: "small",
          text: "+",
          "aria-label": `Add an instance of ${name}`,
          dataset: { fk: `${model.id}|add` },
          onclick: () => this.addOne(model),
        }),
      ),
      instances.length
        ? h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "instances", "aria-label": `Instances of ${name}` },
              h(
                "thead",
                {},
                h("tr", {}, ["Instance", "Status", "Port", "Uptime", "Memory", "Requests", "Tokens/s", "Actions"].map((c) => h("th", { scope: "col", text: c }))),
              ),
              h("tbody", {}, instances.map((i) => this.row(i))),
            ),
          )
        : h("p", { class: "muted", text: "No instance yet." }),
    );
  }

  row(i) {
    const server = this.store.server(i.id) ?? {};
    const stats = this.store.statsFor("instances", i.id);
    const status = inst.status(i);
    const running = inst.running(i);
    const uptime = Number(server.uptime_s ?? server.uptime ?? i.uptime_s ?? i.uptime ?? NaN);
    const since = Number.isFinite(uptime) && running ? Date.now() - uptime * 1000 : null;
    const memory = server.memory_measured_bytes ?? server.memory_estimate_bytes ?? inst.memory(i);
    const reason = i.error ?? i.reason ?? i.last_error;
    const busy = this.busy.has(i.id);
    return h(
      "tr",
      { dataset: { id: i.id } },
      h(
        "th",
        { scope: "row" },
        h("span", { class: "inst-name", text: inst.name(i) }),
        h("span", { class: "model-id muted", text: i.id }),
        i.system_prompt ? h("span", { class: "badge b-persona", title: i.system_prompt, text: "PERSONA" }) : null,
        i.web_search ?? i.web_search_enabled ? h("span", { class: "badge", text: "WEB" }) : null,
        i.on_demand ? h("span", { class: "badge", text: "ON-DEMAND" }) : null,
      ),
      h(
        "td",
        {},
        h("span", { class: `status ${statusClass(status)}`, dataset: { status: status.toLowerCase() }, text: status }),
        reason && status.toLowerCase() === "error" ? h("div", { class: "model-error", text: reason }) : null,
      ),
      h("td", { class: "num", text: i.port ?? server.port ?? "–" }),
      h("td", { class: "num", dataset: since ? { since: String(since) } : {}, text: since ? fmtDuration(uptime) : "–" }),
      h("td", { class: "num", text: memory ? fmtBytes(Number(memory)) : "–" }),
      h("td", { class: "num", text: stats ? String(stats.requests) : "0" }),
      h("td", { class: "num", text: stats?.tps ? fmtNumber(stats.tps) : "–" }),
      h(
        "td",
        { class: "row-actions" },
        running
          ? h("button", { type: "button", class: "small", text: "Stop", disabled: busy, "aria-label": `Stop ${i.id}`, dataset: { fk: `${i.id}|power` }, onclick: () => this.power(i, "stop") })
          : h("button", { type: "button", class: "small primary", text: "Start", disabled: busy, "aria-label": `Start ${i.id}`, dataset: { fk: `${i.id}|power` }, onclick: () => this.power(i, "start") }),
        h("button", { type: "button", class: "small", text: "Edit", "aria-label": `Edit ${i.id}`, dataset: { fk: `${i.id}|edit` }, onclick: () => this.editor.open(i) }),
        h("button", {
          type: "button",
          class: "small",
          text: "Logs",
          "aria-label": `Logs of ${i.id}`,
          onclick: () => {
            this.ctx.app.views.logs.follow(i.id);
            this.ctx.app.select("logs");
          },
        }),
      ),
    );
  }

  tick() {
    if (this.root.hidden) return;
    for (const cell of this.list.querySelectorAll("[data-since]")) {
      cell.textContent = fmtDuration((Date.now() - Number(cell.dataset.since)) / 1000);
    }
  }

  async addOne(model) {
    try {
      const created = await this.api.post("/api/instances", { model: model.id });
      announce(`Added ${created?.id ?? "an instance"} of ${modelName(model)}`);
    } catch (err) {
      this.error(err.message);
    } finally {
      await Promise.all([this.store.refresh("instances"), this.store.refresh("servers")]);
    }
  }

  async removeOne(model, instances) {
    const stopped = instances.filter((i) => !inst.running(i));
    const victim = (stopped.length ? stopped : instances).at(-1);
    if (!victim) return;
    if (inst.running(victim) && !window.confirm(`${victim.id} is running. Stop and remove it?`)) return;
    try {
      await this.api.delete(`/api/instances/${seg(victim.id)}`);
      announce(`Removed ${victim.id}`);
    } catch (err) {
      this.error(err.message);
    } finally {
      await Promise.all([this.store.refresh("instances"), this.store.refresh("servers")]);
    }
  }

  async power(i, action) {
    this.busy.add(i.id);
    this.schedule();
    try {
      await this.api.post(`/api/instances/${seg(i.id)}/${action}`, {});
      announce(`${i.id}: ${action} requested`);
    } catch (err) {
      this.error(err.message);
    } finally {
      this.busy.delete(i.id);
      await Promise.all([this.store.refresh("instances"), this.store.refresh("servers")]);
    }
  }
}

/** PUT the changes (issue 5's path); servers that only offer PATCH get PATCH. */
async function updateInstance(api, id, body) {
  try {
    return await api.put(`/api/instances/${seg(id)}`, body);
  } catch (err) {
    if (err.status !== 405) throw err;
    return api.patch(`/api/instances/${seg(id)}`, body);
  }
}

function sortInstances(list) {
  return [...list].sort((a, b) => String(a.id).localeCompare(String(b.id), undefined, { numeric: true }));
}

/** The modal editor for one instance. Tracks unsaved changes and asks before dropping them. */
class InstanceEditor {
  constructor({ api, store, error }) {
    this.api = api;
    this.store = store;
    this.error = error;
    this.instance = null;
    this.original = null;
    this.name = h("input", { type: "text", maxlength: "64", id: "edit-name" });
    this.prompt = h("textarea", { id: "edit-prompt", rows: "8", maxlength: String(PROMPT_MAX) });
    this.counter = h("div", { id: "edit-prompt-count", class: "counter", "aria-live": "polite" });
    this.preset = h("select", { id: "edit-preset" });
    this.webSearch = h("input", { type: "checkbox", id: "edit-web-search" });
    this.onDemand = h("input", { type: "checkbox", id: "edit-on-demand" });
    this.ttl = h("input", { type: "number", id: "edit-ttl", min: "0", step: "1", inputmode: "numeric" });
    this.dirtyFlag = h("span", { id: "edit-dirty", class: "dirty", role: "status", hidden: true, text: "Unsaved changes" });
    this.title = h("h2", { id: "edit-title", text: "Edit instance" });
    this.save = h("button", { type: "submit", class: "primary", text: "Save" });
    this.formError = h("p", { class: "form-error", role: "alert" });
    const form = h(
      "form",
      { id: "instance-form", onsubmit: (e) => this.submit(e), oninput: () => this.update() },
      this.title,
      field("Display name", this.name),
      field("Start from a preset", this.preset, "Choosing a preset replaces the system prompt below."),
      field("System prompt", this.prompt),
      this.counter,
      h("label", { class: "check" }, this.webSearch, " Web search"),
      h("label", { class: "check" }, this.onDemand, " Start on demand (when a request arrives)"),
      field("Idle TTL (seconds, 0 = never unload)", this.ttl),
      this.formError,
      h(
        "div",
        { class: "actions" },
        this.dirtyFlag,
        h("div", { class: "grow" }),
        h("button", { type: "button", text: "Close", onclick: () => this.close() }),
        this.save,
      ),
    );
    this.preset.addEventListener("change", () => this.applyPreset());
    this.dialog = h("dialog", { id: "instance-editor", "aria-labelledby": "edit-title" }, form);
    this.dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      this.close();
    });
    this.store.subscribe("presets", () => this.fillPresets());
  }

  fillPresets() {
    const presets = this.store.get("presets")?.list ?? [];
    fill(
      this.preset,
      h("option", { value: "", text: "— choose a preset —" }),
      presets.map((p) => h("option", { value: p.name ?? p.id, text: p.title ? `${p.title} (${p.name})` : (p.name ?? p.id) })),
    );
  }

  values() {
    const ttl = this.ttl.value === "" || Number(this.ttl.value) <= 0 ? null : Number(this.ttl.value);
    return {
      display_name: this.name.value.trim(),
      system_prompt: this.prompt.value,
      web_search: this.webSearch.checked,
      on_demand: this.onDemand.checked,
      idle_ttl: ttl,
    };
  }

  isDirty() {
    return Boolean(this.dialog.open && this.original && JSON.stringify(this.values()) !== JSON.stringify(this.original));
  }

  open(i) {
    if (this.dialog.open && !this.close()) return;
    if (!this.store.get("presets")) this.store.refresh("presets");
    this.fillPresets();
    this.instance = i;
    this.title.textContent = `Edit ${i.id}`;
    this.name.value = i.display_name ?? "";
    this.prompt.value = i.system_prompt ?? "";
    this.webSearch.checked = Boolean(i.web_search ?? i.web_search_enabled);
    this.onDemand.checked = Boolean(i.on_demand);
    const ttl = i.idle_ttl;
    this.ttl.value = ttl === null || ttl === undefined ? "" : String(ttl);
    this.preset.value = "";
    this.formError.textContent = "";
    this.original = this.values();
    this.update();
    this.dialog.showModal();
    this.name.focus();
  }

  update() {
    const length = this.prompt.value.length;
    this.counter.textContent = `${length} / ${PROMPT_MAX}`;
    this.counter.classList.toggle("over", length > PROMPT_MAX);
    this.dirtyFlag.hidden = !this.isDirty();
    this.save.disabled = length > PROMPT_MAX;
  }

  applyPreset() {
    const id = this.preset.value;
    const preset = (this.store.get("presets")?.list ?? []).find((p) => (p.name ?? p.id) === id);
    if (!preset) return;
    this.prompt.value = preset.prompt ?? preset.system_prompt ?? preset.text ?? "";
    this.update();
    announce(`System prompt set from the ${preset.title ?? preset.name ?? id} preset`);
  }

  /** Close; with unsaved changes, asks first unless `force`. Returns whether it closed. */
  close(force = false) {
    if (!force && this.isDirty() && !window.confirm("Discard the unsaved changes to this instance?")) {
      return false;
    }
    this.original = null;
    this.dialog.close();
    return true;
  }

  async submit(event) {
    event.preventDefault();
    const values = this.values();
    const body = {};
    for (const [key, value] of Object.entries(values)) {
      if (JSON.stringify(value) !== JSON.stringify(this.original[key])) body[key] = value;
    }
    try {
      if (Object.keys(body).length) await updateInstance(this.api, this.instance.id, body);
      this.original = values;
      announce(`${this.instance.id} saved`);
      this.close(true);
    } catch (err) {
      this.formError.textContent = err.message;
      this.error(err.message);
    } finally {
      this.store.refresh("instances");
    }
  }
}
