// Status: counts, memory per device with each instance's share, the active profile.

import { fill, fmtBytes, h } from "../dom.js";
import { asList, inst } from "../state.js";

const SHARE_COLOURS = 8;

export class StatusView {
  constructor(root, { store }) {
    this.root = root;
    this.store = store;
    this.frame = 0;
    root.append(h("h2", { text: "Status" }));
    this.cards = h("div", { class: "cards", id: "status-cards" });
    this.memory = h("div", { class: "memory", id: "status-memory" });
    root.append(this.cards, h("h3", { text: "Memory" }), this.memory);
    store.subscribe(["models", "instances", "servers", "profiles"], () => this.schedule());
  }

  show() {
    this.schedule();
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
    const instances = this.store.instances();
    const servers = this.store.get("servers")?.meta ?? {};
    const enabled = models.filter((m) => m.enabled).length;
    const running = instances.filter(inst.running).length;
    const ready = instances.filter((i) => inst.status(i).toLowerCase() === "ready").length;
    const profile = this.store.get("profiles")?.active ?? "none";
    fill(
      this.cards,
      card("Models discovered", models.length, "count-discovered"),
      card("Models enabled", enabled, "count-enabled"),
      card("Instances running", `${running} / ${instances.length}`, "count-running"),
      card("Instances ready", servers.ready ?? ready, "count-ready"),
      card("Active profile", profile, "count-profile"),
    );
    this.renderMemory(servers, instances);
  }

  renderMemory(servers, instances) {
    const devices = asList(servers.devices ?? servers.memory?.devices ?? servers.memory ?? []);
    const shares = instances
      .map((i) => {
        const server = this.store.server(i.id) ?? {};
        const bytes = Number(server.memory_measured_bytes ?? server.memory_estimate_bytes ?? inst.memory(i) ?? 0);
        return { id: i.id, name: inst.name(i), bytes, device: server.memory_device ?? null };
      })
      .filter((s) => s.bytes > 0 && inst.running(instances.find((i) => i.id === s.id)));
    if (!devices.length) {
      const used = shares.reduce((sum, s) => sum + s.bytes, 0);
      fill(
        this.memory,
        h("p", { class: "muted", text: "The server reports no device inventory; memory held by running instances:" }),
        bar({ name: "instances", used_bytes: used, total_bytes: used || 1 }, shares, true),
      );
      return;
    }
    fill(
      this.memory,
      devices.map((device) => {
        const name = device.name ?? device.id ?? "device";
        const mine = shares.filter((s) => s.device === (device.index ?? null));
        return bar(device, devices.length === 1 ? shares : mine);
      }),
    );
  }
}

function card(label, value, id) {
  return h(
    "div",
    { class: "card", id },
    h("div", { class: "card-label", text: label }),
    h("div", { class: "card-value", text: String(value) }),
  );
}

function bar(device, shares, instancesOnly = false) {
  const total = Number(device.total_bytes ?? device.total ?? 0);
  const sharesUsed = shares.reduce((sum, s) => sum + s.bytes, 0);
  const used = Number(device.used_bytes ?? device.used ?? sharesUsed);
  const free = Number(device.free_bytes ?? device.free ?? Math.max(0, total - used));
  const name = device.name ?? device.id ?? "device";
  const pct = (bytes) => (total > 0 ? `${Math.min(100, (bytes / total) * 100).toFixed(2)}%` : "0%");
  const other = Math.max(0, used - sharesUsed);
  const label = instancesOnly
    ? `${fmtBytes(sharesUsed)} held by instances`
    : `${fmtBytes(used)} used, ${fmtBytes(free)} free of ${fmtBytes(total)}`;
  return h(
    "figure",
    { class: "device" },
    h("figcaption", {}, h("strong", { text: name }), " ", h("span", { class: "muted", text: label })),
    h(
      "div",
      {
        class: "bar",
        role: "img",
        "aria-label": `${name}: ${label}; ${shares.map((s) => `${s.name} ${fmtBytes(s.bytes)}`).join(", ") || "no instance"}`,
      },
      shares.map((s, n) =>
        h("span", {
          class: `seg c${n % SHARE_COLOURS}`,
          style: `width:${pct(s.bytes)}`,
          title: `${s.name}: ${fmtBytes(s.bytes)}`,
        }),
      ),
      other > 0 ? h("span", { class: "seg other", style: `width:${pct(other)}`, title: `other: ${fmtBytes(other)}` }) : null,
    ),
    shares.length
      ? h(
          "ul",
          { class: "legend" },
          shares.map((s, n) =>
            h("li", {}, h("span", { class: `swatch c${n % SHARE_COLOURS}`, "aria-hidden": "true" }), `${s.name} ${fmtBytes(s.bytes)}`),
          ),
        )
      : null,
  );
}
