// Logs: the last lines of one instance's log, following live while the tab is open.

import { seg } from "../api.js";
import { fill, h } from "../dom.js";
import { asList, inst } from "../state.js";

const FOLLOW_MS = 1000;
const LINES = 200;

export class LogsView {
  constructor(root, { api, store, error }) {
    this.root = root;
    this.api = api;
    this.store = store;
    this.error = error;
    this.selected = null;
    this.timer = null;
    this.loading = false;
    this.picker = h("select", { id: "logs-instance", onchange: (e) => this.follow(e.target.value) });
    this.followBox = h("input", { type: "checkbox", id: "logs-follow", checked: true, onchange: () => this.plan() });
    this.output = h("pre", { id: "logs-output", class: "logs", tabindex: "0", "aria-label": "Log lines", "aria-live": "off" });
    this.info = h("p", { id: "logs-info", class: "muted", role: "status" });
    root.append(
      h("h2", { text: "Logs" }),
      h(
        "div",
        { class: "toolbar" },
        h("label", { for: "logs-instance", text: "Instance" }),
        this.picker,
        h("label", { class: "check" }, this.followBox, " follow"),
      ),
      this.info,
      this.output,
    );
    store.subscribe("instances", () => this.fillPicker());
  }

  fillPicker() {
    const list = this.store.instances();
    if (!this.selected && list.length) this.selected = list[0].id;
    fill(
      this.picker,
      list.length ? null : h("option", { value: "", text: "no instance" }),
      list.map((i) => h("option", { value: i.id, text: `${i.id} (${inst.status(i)})`, selected: i.id === this.selected })),
    );
  }

  /** Show one instance's log. */
  follow(id) {
    this.selected = id || null;
    this.fillPicker();
    fill(this.output);
    this.load();
  }

  show() {
    this.fillPicker();
    this.load();
    this.plan();
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
  }

  plan() {
    clearInterval(this.timer);
    this.timer = this.followBox.checked ? setInterval(() => this.load(), FOLLOW_MS) : null;
  }

  async load() {
    if (!this.selected || this.loading || this.root.hidden) return;
    this.loading = true;
    const id = this.selected;
    try {
      const body = await this.api.get(`/api/instances/${seg(id)}/logs?lines=${LINES}`);
      if (id !== this.selected) return;
      const lines = typeof body === "string" ? body.split("\n") : asList(body, ["lines", "log", "logs"]).map(lineText);
      const atBottom = this.output.scrollTop + this.output.clientHeight >= this.output.scrollHeight - 4;
      const text = lines.join("\n");
      if (this.output.textContent !== text) {
        this.output.textContent = text;
        if (atBottom || this.followBox.checked) this.output.scrollTop = this.output.scrollHeight;
      }
      this.info.textContent = `${lines.length} lines of ${id}${this.followBox.checked ? ", following" : ""}`;
    } catch (err) {
      this.info.textContent = `Cannot read the log of ${id}: ${err.message}`;
    } finally {
      this.loading = false;
    }
  }
}

function lineText(line) {
  if (typeof line === "string") return line;
  return String(line?.line ?? line?.text ?? line?.message ?? JSON.stringify(line));
}
