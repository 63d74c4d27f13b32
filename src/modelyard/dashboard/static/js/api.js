// The management API client. Every failure becomes an ApiError whose message is readable words.

const KEY_STORAGE = "modelyard.adminKey";

export class ApiError extends Error {
  constructor(message, status, path) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.path = path;
  }
}

/** Pull a readable message out of an error body: FastAPI `detail`, OpenAI `error`, or text. */
export function describeError(status, body, fallback) {
  if (body && typeof body === "object") {
    const detail = body.detail ?? body.error ?? body.message;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail
        .map((d) => {
          const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
          return where ? `${where}: ${d.msg}` : d.msg || JSON.stringify(d);
        })
        .join("; ");
    }
    if (detail && typeof detail === "object") {
      return detail.message || detail.detail || JSON.stringify(detail);
    }
  }
  if (typeof body === "string" && body.trim()) return body.trim().slice(0, 300);
  return fallback || `the server answered ${status}`;
}

export class Api {
  /** `askKey(reason)` resolves to a key the user typed, or null if they gave up. */
  constructor({ askKey }) {
    this.askKey = askKey;
    this.keyPrompt = null;
  }

  get key() {
    return sessionStorage.getItem(KEY_STORAGE);
  }

  set key(value) {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  }

  headers(extra = {}) {
    const headers = { Accept: "application/json", ...extra };
    if (this.key) headers.Authorization = `Bearer ${this.key}`;
    return headers;
  }

  /**
   * Ask the user for an admin key once, however many requests are waiting on it.
   * Resolves true when a key was given.
   */
  async requestKey(reason) {
    if (!this.keyPrompt) {
      this.keyPrompt = this.askKey(reason).then((key) => {
        this.keyPrompt = null;
        if (key) this.key = key;
        return Boolean(key);
      });
    }
    return this.keyPrompt;
  }

  /** fetch with the admin key; on 401/403 asks for a key and tries again. Returns a Response. */
  async raw(path, init = {}, retry = true) {
    let response;
    try {
      response = await fetch(path, { ...init, headers: this.headers(init.headers) });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(`cannot reach the modelyard server (${err.message})`, 0, path);
    }
    if ((response.status === 401 || response.status === 403) && retry) {
      const body = await readBody(response);
      const why = describeError(response.status, body, "an admin key is needed");
      if (await this.requestKey(why)) return this.raw(path, init, false);
      throw new ApiError(`${why} (no admin key given)`, response.status, path);
    }
    return response;
  }

  /** JSON request. Resolves to the parsed body (null when empty); throws ApiError otherwise. */
  async request(method, path, body, init = {}) {
    const options = { method, ...init };
    if (body !== undefined) {
      options.body = JSON.stringify(body);
      options.headers = { "Content-Type": "application/json" };
    }
    const response = await this.raw(path, options);
    const parsed = await readBody(response);
    if (!response.ok) {
      const message = describeError(response.status, parsed);
      throw new ApiError(`${method} ${path}: ${message} (${response.status})`, response.status, path);
    }
    return parsed;
  }

  get(path, init) {
    return this.request("GET", path, undefined, init);
  }

  post(path, body) {
    return this.request("POST", path, body === undefined ? {} : body);
  }

  put(path, body) {
    return this.request("PUT", path, body);
  }

  patch(path, body) {
    return this.request("PATCH", path, body);
  }

  delete(path) {
    return this.request("DELETE", path);
  }
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Encode a model or instance id for a path segment (ids carry `:` and `/`). */
export function seg(id) {
  return encodeURIComponent(id);
}
