// Thin client for the public /v1 API. Every failure becomes an ApiError carrying the server's
// {code, message, field} so the page can put the message next to the control it names.

const KEY_STORAGE = "diffeditor.apiKey";

export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function storeKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // Private mode or storage disabled: the key then lives only for this page view.
  }
}

// Words for the statuses a proxy may answer with before the API gets to speak.
const STATUS_WORDS = {
  401: "This server needs an API key. Enter it above.",
  403: "The API key was refused.",
  404: "Not found (the edit may have expired).",
  413: "The upload is too large for this server.",
  429: "Too many requests; wait a moment and try again.",
  502: "The server could not be reached.",
  503: "The server is busy or unavailable; try again shortly.",
  504: "The server took too long to answer.",
};

export class Api {
  constructor(base = "") {
    this.base = base;
    this.key = storedKey();
    this.clockSkewMs = 0; // server clock minus this browser's, from the Date header
  }

  headers(extra = {}) {
    const h = { ...extra };
    if (this.key) h.Authorization = `Bearer ${this.key}`;
    return h;
  }

  async request(method, path, { body = undefined, accept = "application/json" } = {}) {
    let resp;
    try {
      resp = await fetch(this.base + path, { method, body, headers: this.headers({ Accept: accept }) });
    } catch {
      throw new ApiError(0, "network", "The server could not be reached. Check that it is running.");
    }
    this.noteClock(resp);
    if (!resp.ok) throw await errorFrom(resp);
    return resp;
  }

  // Job times are the server's: a browser whose clock is off would show a wrong elapsed time.
  // Date has whole seconds, so only a skew beyond that is taken.
  noteClock(resp) {
    const server = Date.parse(resp.headers.get("Date") || "");
    if (!Number.isFinite(server)) return;
    const skew = server + 500 - Date.now();
    this.clockSkewMs = Math.abs(skew) > 2000 ? skew : 0;
  }

  async json(method, path, opts) {
    const resp = await this.request(method, path, opts);
    try {
      return await resp.json();
    } catch {
      throw new ApiError(resp.status, "bad_response", "The server sent an answer the page cannot read.");
    }
  }

  info() {
    return this.json("GET", "/v1/info");
  }

  tasks() {
    return this.json("GET", "/v1/tasks");
  }

  samples() {
    return this.json("GET", "/v1/samples");
  }

  // A sample's file by the URL /v1/samples lists (a path on this server).
  async sampleFile(path) {
    const resp = await this.request("GET", path, { accept: "image/png" });
    return resp.blob();
  }

  submit(formData) {
    return this.json("POST", "/v1/edits", { body: formData });
  }

  status(id) {
    return this.json("GET", `/v1/edits/${encodeURIComponent(id)}`);
  }

  cancel(id) {
    return this.json("DELETE", `/v1/edits/${encodeURIComponent(id)}`);
  }

  async result(id) {
    const resp = await this.request("GET", `/v1/edits/${encodeURIComponent(id)}/result`, { accept: "image/png" });
    return resp.blob();
  }
}

async function errorFrom(resp) {
  let data = null;
  try {
    data = await resp.json();
  } catch {
    // Not JSON (e.g. a proxy's HTML page): fall back to words for the status.
  }
  const err = data && typeof data === "object" ? data.error || data : null;
  if (err && typeof err.message === "string") {
    return new ApiError(resp.status, err.code || `http_${resp.status}`, err.message, err.field ?? null);
  }
  const words = STATUS_WORDS[resp.status] || `The server answered ${resp.status} ${resp.statusText}.`;
  return new ApiError(resp.status, `http_${resp.status}`, words);
}
