// The server-sent event stream (`GET /api/events`), read with fetch so the admin key can ride in
// the Authorization header (EventSource cannot send headers). Reconnects with backoff.

/**
 * Parse an SSE byte stream. Calls `onEvent({type, data, id})` per event; `data` is parsed as
 * JSON when it is JSON. Resolves when the stream ends; rejects on a network error.
 */
export async function readEventStream(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { type: "message", data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
      if (line === "") {
        if (event.data.length) onEvent(finish(event));
        event = { type: "message", data: [], id: null };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      const raw = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "event") event.type = raw;
      else if (name === "data") event.data.push(raw);
      else if (name === "id") event.id = raw;
    }
  }
}

function finish(event) {
  const text = event.data.join("\n");
  let data = text;
  try {
    data = JSON.parse(text);
  } catch {
    // a plain-text event: keep the text
  }
  let type = event.type;
  if (type === "message" && data && typeof data === "object") {
    type = data.type || data.event || data.kind || type;
  }
  return { type, data, id: event.id };
}

/** Keeps one connection to /api/events open; tells `onState` "live" | "reconnecting". */
export class EventFeed {
  constructor(api, { onEvent, onState }) {
    this.api = api;
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastId = null;
    this.stopped = false;
    this.controller = null;
  }

  start() {
    this.loop();
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
  }

  async loop() {
    let delay = 500;
    while (!this.stopped) {
      this.controller = new AbortController();
      try {
        const headers = { Accept: "text/event-stream" };
        if (this.lastId) headers["Last-Event-ID"] = this.lastId;
        const response = await this.api.raw("/api/events", {
          headers,
          signal: this.controller.signal,
        });
        if (!response.ok) throw new Error(`the event stream answered ${response.status}`);
        this.onState("live");
        delay = 500;
        await readEventStream(response.body, (event) => {
          if (event.id) this.lastId = event.id;
          this.onEvent(event);
        });
        this.onState("reconnecting", "the event stream closed");
      } catch (err) {
        if (this.stopped) return;
        this.onState("reconnecting", err.message);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }
}
