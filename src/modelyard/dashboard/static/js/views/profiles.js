// Profiles: choose the active one, create one from the current state, delete one.

import { seg } from "../api.js";
import { announce, field, fill, h } from "../dom.js";
import { inst } from "../state.js";

export class ProfilesView {
  constructor(root, { api, store, error }) {
    this.root = root;
    this.api = api;
    this.store = store;
    this.error = error;
    this.list = h("div", { id: "profile-list", class: "profiles" });
    this.result = h("div", { id: "profile-result", class: "result", role: "status", "aria-live": "polite" });
    this.nameInput = h("input", { type: "text", id: "profile-name", required: true, pattern: "[a-z0-9][a-z0-9._\\-]*", maxlength: "64", title: "lower-case letters, digits, dot, dash, underscore" });
    this.descInput = h("input", { type: "text", id: "profile-description", maxlength: "200" });
    root.append(
      h("h2", { text: "Profiles" }),
      this.result,
      this.list,
      h(
        "form",
        { class: "card-form", id: "profile-create", "aria-labelledby": "profile-create-title", onsubmit: (e) => this.create(e) },
        h("h3", { id: "profile-create-title", text: "Create a profile from the current state" }),
        h("p", { class: "muted", text: "Saves the enabled models and the instances (count, names, system prompts, settings) as they are now." }),
        field("Name", this.nameInput),
        field("Description", this.descInput),
        h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: "Create profile" })),
      ),
    );
    store.subscribe("profiles", () => this.render());
  }

  show() {
    this.store.refresh("profiles");
    this.render();
  }

  render() {
    const data = this.store.get("profiles");
    if (!data) {
      fill(this.list, h("p", { class: "muted", text: this.store.errors.profiles ?? "Loading…" }));
      return;
    }
    if (!data.list.length) {
      fill(this.list, h("p", { class: "muted", text: "No profile yet." }));
      return;
    }
    const focusKey = document.activeElement?.dataset?.fk;
    fill(
      this.list,
      h(
        "ul",
        { class: "plain" },
        data.list.map((p) => {
          const active = p.name === data.active || p.active;
          const models = p.enabled_models?.length;
          const instances = Array.isArray(p.instances)
            ? p.instances.reduce((n, x) => n + Number(x.count ?? 1), 0)
            : undefined;
          return h(
            "li",
            { class: `profile ${active ? "active" : ""}`, dataset: { name: p.name } },
            h(
              "div",
              { class: "profile-text" },
              h("strong", { text: p.name }),
              active ? h("span", { class: "badge b-active", text: "ACTIVE" }) : null,
              p.description ? h("div", { class: "muted", text: p.description }) : null,
              models !== undefined || instances !== undefined
                ? h("div", { class: "muted small", text: [models !== undefined ? `${models} models` : null, instances !== undefined ? `${instances} instances` : null].filter(Boolean).join(", ") })
                : null,
            ),
            h(
              "div",
              { class: "actions" },
              h("button", {
                type: "button",
                class: "small primary",
                text: active ? "Active" : "Activate",
                disabled: active,
                "aria-label": `Activate profile ${p.name}`,
                dataset: { fk: `${p.name}|activate` },
                onclick: () => this.activate(p.name),
              }),
              h("button", {
                type: "button",
                class: "small danger",
                text: "Delete",
                disabled: active,
                "aria-label": `Delete profile ${p.name}`,
                dataset: { fk: `${p.name}|delete` },
                onclick: () => this.remove(p.name),
              }),
            ),
          );
        }),
      ),
    );
    if (focusKey) this.list.querySelector(`[data-fk="${CSS.escape(focusKey)}"]`)?.focus();
  }

  async activate(name) {
    this.result.textContent = `Switching to ${name}…`;
    try {
      const result = await this.api.post(`/api/models/profiles/${seg(name)}/activate`, {});
      this.result.textContent = describeSwitch(name, result);
      announce(this.result.textContent);
    } catch (err) {
      this.result.textContent = "";
      this.error(err.message);
    } finally {
      ["profiles", "models", "instances", "servers"].forEach((r) => this.store.refresh(r));
    }
  }

  async remove(name) {
    if (!window.confirm(`Delete the profile ${name}?`)) return;
    try {
      await this.api.delete(`/api/models/profiles/${seg(name)}`);
      announce(`Profile ${name} deleted`);
    } catch (err) {
      this.error(err.message);
    } finally {
      this.store.refresh("profiles");
    }
  }

  /** The current state as a profile body. */
  current(name, description) {
    const enabled = this.store.models().filter((m) => m.enabled).map((m) => m.id);
    const instances = this.store.instances().map((i) => ({
      model: inst.model(i),
      count: 1,
      display_name: i.display_name ?? null,
      system_prompt: i.system_prompt ?? null,
      web_search: Boolean(i.web_search ?? i.web_search_enabled),
      on_demand: Boolean(i.on_demand),
      idle_ttl: i.idle_ttl ?? null,
    }));
    return { name, description: description || null, enabled_models: enabled, instances };
  }

  async create(event) {
    event.preventDefault();
    const name = this.nameInput.value.trim();
    if (!name) return;
    try {
      await this.api.post("/api/models/profiles", this.current(name, this.descInput.value.trim()));
      this.result.textContent = `Profile ${name} created.`;
      announce(this.result.textContent);
      this.nameInput.value = "";
      this.descInput.value = "";
    } catch (err) {
      this.error(err.message);
    } finally {
      this.store.refresh("profiles");
    }
  }
}

function describeSwitch(name, result) {
  if (!result || typeof result !== "object") return `Profile ${name} is active.`;
  const parts = [];
  const words = { enable: "enabled", disable: "disabled", created: "created", start: "started", stop: "stopped" };
  for (const [key, word] of Object.entries(words)) {
    const value = result[key];
    if (Array.isArray(value) && value.length) parts.push(`${word}: ${value.join(", ")}`);
  }
  for (const failure of result.failed ?? []) parts.push(`failed: ${failure.target} (${failure.error})`);
  return `Profile ${name} is active.${parts.length ? ` ${parts.join("; ")}.` : " Nothing had to change."}`;
}
