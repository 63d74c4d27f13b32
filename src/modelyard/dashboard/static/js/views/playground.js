// Playground: a chat through the gateway (`/v1/chat/completions`, streamed) to a model, an
// instance, a tier or a role; shows which instance answered and why. Answers are rendered as
// Markdown (markdown.js: DOM nodes only, never HTML); a thinking model's reasoning, sent as
// `reasoning_content` or inside `<think>...</think>`, goes in a collapsed <details> apart from
// the answer and is not sent back with the conversation. A failed request is told in the
// playground itself (in the answer's bubble and the route line), not in the page's banner.

import { describeError } from "../api.js";
import { announce, field, fill, h } from "../dom.js";
import { readEventStream } from "../events.js";
import { renderMarkdown, splitThinking } from "../markdown.js";
import { inst } from "../state.js";
import { modelName } from "./models.js";

const INFERENCE_KEY = "modelyard.inferenceKey";

export class PlaygroundView {
  constructor(root, { api, store }) {
    this.root = root;
    this.api = api;
    this.store = store;
    this.messages = [];
    this.controller = null;
    this.target = h("select", { id: "play-target" });
    this.system = h("input", { type: "text", id: "play-system", placeholder: "optional" });
    this.input = h("textarea", { id: "play-input", rows: "3", placeholder: "Ask something… (Ctrl+Enter sends)" });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) this.form.requestSubmit();
    });
    this.maxTokens = h("input", { type: "number", id: "play-max-tokens", min: "1", value: "256" });
    this.send = h("button", { type: "submit", class: "primary", id: "play-send", text: "Send" });
    this.stop = h("button", { type: "button", id: "play-stop", text: "Stop", disabled: true, onclick: () => this.controller?.abort() });
    this.clear = h("button", { type: "button", id: "play-clear", text: "Clear", onclick: () => this.reset() });
    this.log = h("div", { id: "play-log", class: "chat", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
    this.route = h("p", { id: "play-route", class: "route", role: "status" });
    this.form = h(
      "form",
      { id: "play-form", onsubmit: (e) => this.submit(e) },
      h("div", { class: "row" }, field("Send to", this.target), field("Max tokens", this.maxTokens)),
      field("System message", this.system),
      field("Message", this.input),
      h("div", { class: "actions" }, this.clear, h("div", { class: "grow" }), this.stop, this.send),
    );
    root.append(h("h2", { text: "Playground" }), this.log, this.route, this.form);
    store.subscribe(["models", "instances"], () => this.fillTargets());
  }

  show() {
    this.fillTargets();
  }

  fillTargets() {
    const keep = this.target.value;
    const models = this.store.models().filter((m) => m.enabled);
    const instances = this.store.instances();
    const roles = [...new Set(models.flatMap((m) => Object.keys(m.roles ?? {})))].sort();
    fill(
      this.target,
      h("option", { value: "auto", text: "auto (the configured default)" }),
      h("optgroup", { label: "Models" }, models.map((m) => h("option", { value: m.id, text: modelName(m) }))),
      h("optgroup", { label: "Instances" }, instances.map((i) => h("option", { value: i.id, text: `${inst.name(i)} [${i.id}]` }))),
      h("optgroup", { label: "Tiers" }, ["fast", "balanced", "powerful"].map((t) => h("option", { value: `tier:${t}`, text: `tier: ${t}` }))),
      roles.length ? h("optgroup", { label: "Roles" }, roles.map((r) => h("option", { value: `role:${r}`, text: `role: ${r}` }))) : null,
    );
    const values = [...this.target.options].map((o) => o.value);
    if (values.includes(keep)) this.target.value = keep;
    else if (models.length) this.target.value = models[0].id;
  }

  reset() {
    this.controller?.abort();
    this.messages = [];
    fill(this.log);
    this.route.textContent = "";
  }

  bubble(role, text) {
    const body = h("div", { class: "text", text });
    const el = h("div", { class: `msg ${role}` }, h("div", { class: "who", text: role === "user" ? "You" : "Model" }), body);
    this.log.append(el);
    el.scrollIntoView({ block: "end" });
    return body;
  }

  /** The model's bubble: a collapsed reasoning (hidden until there is some) and the answer. */
  answerBubble() {
    const summary = h("summary", { text: "Reasoning" });
    const thoughts = h("div", { class: "reasoning-text md" });
    const details = h("details", { class: "reasoning", hidden: true }, summary, thoughts);
    const text = h("div", { class: "text md" });
    const el = h("div", { class: "msg assistant" }, h("div", { class: "who", text: "Model" }), details, text);
    this.log.append(el);
    el.scrollIntoView({ block: "end" });
    let pending = 0;
    let shown = { reasoning: null, answer: null, thinking: null };
    const render = (state) => {
      if (state.reasoning !== shown.reasoning) {
        details.hidden = !state.reasoning.trim() && !state.thinking;
        thoughts.replaceChildren(renderMarkdown(state.reasoning));
      }
      if (state.thinking !== shown.thinking) summary.textContent = state.thinking ? "Thinking…" : "Reasoning";
      if (state.answer !== shown.answer) text.replaceChildren(renderMarkdown(state.answer));
      shown = state;
    };
    return {
      el,
      text,
      /** Show `state` ({reasoning, answer, thinking}) at the next frame, or now with `now`. */
      show(state, now = false) {
        if (pending) cancelAnimationFrame(pending);
        pending = 0;
        if (now) render(state);
        else pending = requestAnimationFrame(() => render(state));
      },
    };
  }

  async submit(event) {
    event.preventDefault();
    const text = this.input.value.trim();
    if (!text || this.controller) return;
    this.input.value = "";
    this.messages.push({ role: "user", content: text });
    this.bubble("user", text);
    const out = this.answerBubble();
    out.el.setAttribute("aria-busy", "true");
    const model = this.target.value;
    const messages = this.system.value.trim()
      ? [{ role: "system", content: this.system.value.trim() }, ...this.messages]
      : [...this.messages];
    const body = { model, messages, stream: true, max_tokens: Number(this.maxTokens.value) || undefined };
    this.controller = new AbortController();
    this.send.disabled = true;
    this.stop.disabled = false;
    this.route.textContent = `Sending to ${model}…`;
    let content = "";
    let reasoning = "";
    const state = () => {
      const split = splitThinking(content);
      const thoughts = [reasoning, split.reasoning].filter((t) => t.trim()).join("\n\n");
      return { reasoning: thoughts, answer: split.answer, thinking: split.thinking || (Boolean(reasoning) && !content) };
    };
    let response = null;
    try {
      response = await this.post(body);
      this.showRoute(response);
      if (!response.ok) {
        const text = await response.text();
        let parsed = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: show the text
        }
        throw new Error(`the gateway answered ${response.status}: ${describeError(response.status, parsed)}`);
      }
      await readEventStream(response.body, (event) => {
        if (event.data === "[DONE]") return;
        if (event.data?.error) throw new Error(describeError(0, event.data));
        const delta = event.data?.choices?.[0]?.delta ?? {};
        const said = typeof delta.content === "string" ? delta.content : "";
        const thought = typeof delta.reasoning_content === "string" ? delta.reasoning_content : "";
        if (said || thought) {
          content += said;
          reasoning += thought;
          out.show(state());
        }
      });
      const done = { ...state(), thinking: false };
      out.show(done, true);
      this.messages.push({ role: "assistant", content: done.answer });
      announce("Answer complete");
    } catch (err) {
      const done = { ...state(), thinking: false };
      out.show(done, true);
      if (err.name === "AbortError") {
        out.text.append(h("em", { class: "muted", text: " (stopped)" }));
      } else {
        // Told here, where it happened: the page's banner is for the dashboard's own API.
        out.text.append(h("div", { class: "form-error play-error", role: "alert", text: err.message }));
        if (!response) this.route.textContent = "The request did not reach the gateway.";
      }
      if (done.answer) this.messages.push({ role: "assistant", content: done.answer });
    } finally {
      out.el.removeAttribute("aria-busy");
      this.controller = null;
      this.send.disabled = false;
      this.stop.disabled = true;
    }
  }

  /** POST to the gateway. The gateway's keys are not the admin keys: on 401 ask for one. */
  async post(body, retry = true) {
    const key = sessionStorage.getItem(INFERENCE_KEY) ?? this.api.key;
    const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    if (key) headers.Authorization = `Bearer ${key}`;
    let response;
    try {
      response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        signal: this.controller.signal,
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new Error(`cannot reach the gateway (${err.message})`);
    }
    if (response.status === 401 && retry) {
      const typed = window.prompt("The gateway needs an API key (an inference key):");
      if (typed) {
        sessionStorage.setItem(INFERENCE_KEY, typed.trim());
        return this.post(body, false);
      }
    }
    return response;
  }

  showRoute(response) {
    const instance = response.headers.get("x-modelyard-instance");
    const route = response.headers.get("x-modelyard-route");
    const model = response.headers.get("x-modelyard-model");
    fill(
      this.route,
      instance || model || route
        ? [
            response.ok ? "Answered by " : "Tried ",
            h("strong", { id: "play-instance", text: instance ?? model ?? "?" }),
            model && instance ? ` (model ${model})` : "",
            route ? [" — ", h("span", { id: "play-why", text: route })] : "",
          ]
        : `The gateway answered ${response.status} without routing headers.`,
    );
  }
}
