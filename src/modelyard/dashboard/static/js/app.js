// Boots the dashboard: the API client, the store, the event feed, the tabs and their views.

import { Api } from "./api.js";
import { h, announce } from "./dom.js";
import { EventFeed } from "./events.js";
import { Store } from "./state.js";
import { InstancesView } from "./views/instances.js";
import { LogsView } from "./views/logs.js";
import { ModelsView } from "./views/models.js";
import { PlaygroundView } from "./views/playground.js";
import { ProfilesView } from "./views/profiles.js";
import { StatusView } from "./views/status.js";
import { UsageView } from "./views/usage.js";

const TABS = ["status", "models", "instances", "profiles", "usage", "logs", "playground"];
const STATS_INTERVAL_MS = 5000;

class Dashboard {
  constructor() {
    this.api = new Api({ askKey: (reason) => this.askKey(reason) });
    this.store = new Store(this.api, { onError: (message) => this.showError(message) });
    const ctx = { api: this.api, store: this.store, error: (m) => this.showError(m), app: this };
    this.views = {
      status: new StatusView(panel("status"), ctx),
      models: new ModelsView(panel("models"), ctx),
      instances: new InstancesView(panel("instances"), ctx),
      profiles: new ProfilesView(panel("profiles"), ctx),
      usage: new UsageView(panel("usage"), ctx),
      logs: new LogsView(panel("logs"), ctx),
      playground: new PlaygroundView(panel("playground"), ctx),
    };
    this.current = null;
    this.eventTimers = new Map();
  }

  start() {
    this.setupTabs();
    this.setupKeyDialog();
    this.store.subscribe("profiles", () => {
      document.getElementById("active-profile").textContent =
        this.store.get("profiles")?.active ?? "none";
    });
    window.addEventListener("beforeunload", (event) => {
      if (this.dirtyView()) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
    window.addEventListener("hashchange", () => this.select(tabFromHash(), { fromHash: true }));
    this.select(tabFromHash(), { focus: false });
    this.store.refreshAll();
    this.feed = new EventFeed(this.api, {
      onEvent: (event) => this.onEvent(event),
      onState: (state, why) => this.setLive(state, why),
    });
    this.feed.start();
    // Figures change with every request, which the event stream does not carry one by one.
    setInterval(() => {
      if (!document.hidden) this.store.refresh("stats");
    }, STATS_INTERVAL_MS);
  }

  setupTabs() {
    const list = document.getElementById("tabs");
    list.addEventListener("click", (event) => {
      const tab = event.target.closest("[role=tab]");
      if (tab) this.select(tab.dataset.tab);
    });
    list.addEventListener("keydown", (event) => {
      const index = TABS.indexOf(document.activeElement?.dataset?.tab);
      if (index < 0) return;
      const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
      let next = null;
      if (event.key in moves) next = (index + moves[event.key] + TABS.length) % TABS.length;
      else if (event.key === "Home") next = 0;
      else if (event.key === "End") next = TABS.length - 1;
      if (next === null) return;
      event.preventDefault();
      this.select(TABS[next], { focusTab: true });
    });
  }

  dirtyView() {
    return Object.values(this.views).find((view) => view.isDirty?.());
  }

  /** Show a tab. Refuses (after asking) to leave a view with unsaved changes. */
  select(name, { focus = true, focusTab = false, fromHash = false } = {}) {
    if (!TABS.includes(name)) name = "status";
    if (name === this.current) return;
    const dirty = this.current && this.views[this.current].isDirty?.();
    if (dirty && !window.confirm("You have unsaved changes. Leave them?")) {
      if (fromHash) history.replaceState(null, "", `#${this.current}`);
      return;
    }
    if (dirty) this.views[this.current].discard?.();
    if (this.current) this.views[this.current].hide?.();
    this.current = name;
    for (const tab of TABS) {
      const button = document.getElementById(`tab-${tab}`);
      const selected = tab === name;
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
      document.getElementById(`panel-${tab}`).hidden = !selected;
    }
    if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
    this.views[name].show?.();
    if (focusTab) document.getElementById(`tab-${name}`).focus();
    else if (focus && !fromHash) document.getElementById(`panel-${name}`).focus({ preventScroll: true });
  }

  onEvent(event) {
    const type = String(event.type).toLowerCase();
    const data = event.data && typeof event.data === "object" ? event.data : {};
    for (const view of Object.values(this.views)) view.onEvent?.(type, data);
    if (type.includes("scan")) {
      this.store.scan = { type, ...data };
      this.store.emit("scan");
      if (/(done|finish|complete|result|end|error|fail)/.test(type) || data.done || data.finished) {
        this.soon("models");
      }
      return;
    }
    if (type.includes("instance") || type.includes("server") || type.includes("fleet")) {
      const id = data.instance_id ?? data.id;
      if (id && data.state && !["created", "deleted", "removed"].includes(data.change)) {
        this.store.patchInstance({ id, state: data.state, error: data.error ?? null });
      }
      this.soon("instances");
      this.soon("servers");
      return;
    }
    if (type.includes("profile")) {
      ["profiles", "models", "instances", "servers"].forEach((name) => this.soon(name));
      return;
    }
    if (type.includes("model") || type.includes("catalog") || type.includes("override")) {
      this.soon("models");
      return;
    }
    if (type.includes("preset")) return this.soon("presets");
    if (type.includes("request") || type.includes("stat") || type.includes("usage")) {
      return this.soon("stats", 500);
    }
    if (type === "ping" || type === "hello" || type === "heartbeat") return;
    if (type === "dropped") return this.store.refreshAll();
    this.soon("models");
    this.soon("instances");
  }

  /** Refresh a resource, coalescing a burst of events into one fetch. */
  soon(name, delay = 0) {
    if (this.eventTimers.has(name)) return;
    this.eventTimers.set(
      name,
      setTimeout(() => {
        this.eventTimers.delete(name);
        this.store.refresh(name);
      }, delay),
    );
  }

  setLive(state, why) {
    const el = document.getElementById("live");
    const wasDown = el.dataset.state && el.dataset.state !== "live";
    el.dataset.state = state;
    el.className = `live ${state === "live" ? "st-ok" : "st-busy"}`;
    el.textContent = state === "live" ? "live" : `reconnecting (${why || "no connection"})`;
    el.title = el.textContent;
    if (state === "live" && wasDown) this.store.refreshAll();
  }

  showError(message) {
    const box = document.getElementById("errors");
    const existing = [...box.children].find((el) => el.dataset.message === message);
    if (existing) return;
    const item = h(
      "div",
      { class: "error", dataset: { message } },
      h("span", { text: message }),
      h("button", {
        type: "button",
        class: "small",
        "aria-label": "Dismiss this error",
        text: "Dismiss",
        onclick: () => item.remove(),
      }),
    );
    box.append(item);
    while (box.children.length > 5) box.firstElementChild.remove();
  }

  setupKeyDialog() {
    const dialog = document.getElementById("key-dialog");
    document.getElementById("key-cancel").addEventListener("click", () => dialog.close(""));
  }

  /** Ask for an admin key in a modal dialog. Resolves to the key, or null if cancelled. */
  askKey(reason) {
    const dialog = document.getElementById("key-dialog");
    const input = document.getElementById("key-input");
    document.getElementById("key-reason").textContent =
      `${reason}. Enter an admin key to continue.`;
    input.value = "";
    return new Promise((resolve) => {
      dialog.addEventListener(
        "close",
        () => {
          const key = dialog.returnValue === "ok" ? input.value.trim() : "";
          if (key) announce("Admin key saved for this browser session");
          resolve(key || null);
        },
        { once: true },
      );
      dialog.returnValue = "";
      dialog.showModal();
      input.focus();
    });
  }
}

function panel(name) {
  return document.getElementById(`panel-${name}`);
}

function tabFromHash() {
  return location.hash.replace(/^#/, "").split("/")[0] || "status";
}

const dashboard = new Dashboard();
window.modelyard = dashboard;
dashboard.start();
