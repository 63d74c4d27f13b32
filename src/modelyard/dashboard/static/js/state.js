// What the page knows, fetched from the management API and refreshed when events say so.
// One Store instance owns it all; views subscribe to the parts they draw.

/** A list out of whatever envelope the API used: a list, `{key: list}`, or `{id: record}`. */
export function asList(body, keys = []) {
  if (Array.isArray(body)) return body;
  if (!body || typeof body !== "object") return [];
  for (const key of keys) {
    if (key in body) return asList(body[key]);
  }
  return Object.entries(body)
    .filter(([, value]) => value && typeof value === "object" && !Array.isArray(value))
    .map(([id, value]) => ({ id, ...value }));
}

const HISTORY_MAX = 180;

/** An instance record with its settings (`config`) lifted to the top level. */
export function flatInstance(record) {
  const config = record && typeof record.config === "object" && record.config ? record.config : {};
  return { ...config, ...record };
}

export const inst = {
  model: (i) => i.model_id ?? i.model ?? String(i.id).replace(/:\d+$/, ""),
  status: (i) => String(i.status ?? i.state ?? (i.ready ? "ready" : i.running ? "running" : "stopped")),
  name: (i) => i.display_name ?? i.name ?? i.id,
  running: (i) => ["ready", "running", "starting", "active"].includes(inst.status(i).toLowerCase()),
  memory: (i) => i.memory_measured ?? i.memory_bytes ?? i.memory_estimate ?? i.memory_estimate_bytes ?? null,
};

const RESOURCES = {
  models: {
    path: "/api/models/registry",
    parse: (body) => ({ list: asList(body, ["models"]), meta: body }),
  },
  instances: {
    path: "/api/instances",
    parse: (body) => ({ list: asList(body, ["instances"]).map(flatInstance), meta: body }),
  },
  servers: {
    path: "/api/models/servers",
    parse: (body) => ({ list: asList(body, ["servers", "instances"]), meta: body || {} }),
  },
  profiles: {
    path: "/api/models/profiles",
    parse: (body) => {
      const list = asList(body, ["profiles"]).map((p) => (typeof p === "string" ? { name: p } : p));
      const active =
        (body && !Array.isArray(body) && (body.active ?? body.active_profile)) ||
        list.find((p) => p.active)?.name ||
        null;
      return { list, active, meta: body };
    },
  },
  presets: {
    path: "/api/instances/presets",
    parse: (body) => ({ list: asList(body, ["presets"]), meta: body }),
  },
  stats: {
    path: "/api/models/statistics",
    parse: (body) => {
      const models = asList(body, ["models", "per_model"]);
      const nested = models.flatMap((m) =>
        asList(m.instances ?? []).map((i) => ({ model_id: m.id, ...i })),
      );
      const instances = body?.instances ? asList(body.instances) : nested;
      return { models, instances, meta: body || {} };
    },
  },
};

export class Store {
  constructor(api, { onError }) {
    this.api = api;
    this.onError = onError;
    this.data = {};
    this.errors = {};
    this.listeners = new Map();
    this.inflight = new Map();
    this.again = new Set();
    this.history = [];
    this.scan = null;
  }

  get(name) {
    return this.data[name];
  }

  /** Call `fn()` after every change of any of `names`. Returns an unsubscribe function. */
  subscribe(names, fn) {
    for (const name of [].concat(names)) {
      if (!this.listeners.has(name)) this.listeners.set(name, new Set());
      this.listeners.get(name).add(fn);
    }
    return () => [].concat(names).forEach((name) => this.listeners.get(name)?.delete(fn));
  }

  emit(name) {
    for (const fn of this.listeners.get(name) ?? []) {
      try {
        fn(name);
      } catch (err) {
        console.error(err);
        this.onError(`the page failed to draw ${name}: ${err.message}`);
      }
    }
  }

  set(name, value) {
    this.data[name] = value;
    this.emit(name);
  }

  /**
   * Fetch one resource again. Concurrent calls share one request; a call made while one is in
   * flight causes exactly one more fetch after it, so the last state always lands.
   */
  refresh(name) {
    if (this.inflight.has(name)) {
      this.again.add(name);
      return this.inflight.get(name);
    }
    const spec = RESOURCES[name];
    const task = this.api
      .get(spec.path)
      .then((body) => {
        delete this.errors[name];
        const parsed = spec.parse(body);
        if (name === "stats") this.record(parsed);
        this.set(name, parsed);
      })
      .catch((err) => {
        this.errors[name] = err.message;
        this.emit(name);
        if (err.status !== 404) this.onError(err.message);
      })
      .finally(() => {
        this.inflight.delete(name);
        if (this.again.delete(name)) this.refresh(name);
      });
    this.inflight.set(name, task);
    return task;
  }

  refreshAll() {
    return Promise.all(Object.keys(RESOURCES).map((name) => this.refresh(name)));
  }

  /** Keep a time series of the figures, for the usage charts. */
  record(stats) {
    const sample = { t: Date.now(), models: {}, instances: {} };
    for (const m of stats.models) sample.models[m.id ?? m.model] = figures(m);
    for (const i of stats.instances) sample.instances[i.id ?? i.instance] = figures(i);
    const server = stats.meta?.history ?? stats.meta?.series;
    if (Array.isArray(server) && server.length) this.serverHistory = server;
    this.history.push(sample);
    if (this.history.length > HISTORY_MAX) this.history.shift();
  }

  /** Apply an instance record carried by an event at once, before the refetch lands. */
  patchInstance(record) {
    const current = this.data.instances;
    if (!current || !record || !record.id) return;
    const list = current.list.map((i) => (i.id === record.id ? flatInstance({ ...i, ...record }) : i));
    this.set("instances", { ...current, list });
  }

  models() {
    return this.data.models?.list ?? [];
  }

  instances() {
    return this.data.instances?.list ?? [];
  }

  /** The servers record for an instance id (runtime figures: pid, uptime, memory). */
  server(id) {
    return (this.data.servers?.list ?? []).find((s) => (s.id ?? s.instance_id) === id);
  }

  statsFor(kind, id) {
    const list = this.data.stats?.[kind] ?? [];
    const found = list.find((s) => (s.id ?? s.model ?? s.instance) === id);
    return found ? figures(found) : null;
  }
}

/** The figures the page shows, whatever the API named them. */
export function figures(raw) {
  const pick = (...keys) => {
    for (const key of keys) {
      const parts = key.split(".");
      let value = raw;
      for (const part of parts) value = value?.[part];
      if (value !== undefined && value !== null) return Number(value);
    }
    return null;
  };
  const seconds = (key) => {
    const value = pick(key);
    return value === null ? null : value * 1000;
  };
  const requests = pick("requests", "count", "total", "requests_total");
  const ok = pick("successes", "ok", "succeeded");
  const failed = pick("failures", "errors", "failed");
  let success = pick("success_rate");
  if (success === null && requests) {
    if (ok !== null) success = ok / requests;
    else if (failed !== null) success = (requests - failed) / requests;
  }
  return {
    requests: requests ?? 0,
    success,
    ttft: seconds("ttft_p50_s") ?? pick("ttft_ms.p50", "ttft_p50_ms", "ttft_ms"),
    ttft95: seconds("ttft_p95_s") ?? pick("ttft_ms.p95", "ttft_p95_ms"),
    tps: pick("tokens_per_s.p50", "tokens_per_s", "tokens_per_second", "tps.p50", "tps", "tokens_per_s_avg"),
    tokensOut: pick("tokens_out", "completion_tokens", "output_tokens"),
    inFlight: pick("in_flight", "inflight", "active"),
  };
}
