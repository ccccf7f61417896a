// @ts-check
// Thin client for the public /v1 API. Every failure becomes an ApiError carrying the server's
// {code, message, field} so the page can put the message next to the control it names.

const KEY_STORAGE = "diffeditor.apiKey";

/** @typedef {import("./types.js").ErrorDetail} ErrorDetail */
/** @typedef {import("./types.js").Info} Info */
/** @typedef {import("./types.js").Job} Job */
/** @typedef {import("./types.js").Sample} Sample */
/** @typedef {import("./types.js").TaskOut} TaskOut */

/** An API failure: the HTTP status (0: no answer) and the error shape's code, message and field. */
export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message @param {string | null} [field] */
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

/** @param {string} key */
export function storeKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // Private mode or storage disabled: the key then lives only for this page view.
  }
}

// Words for the statuses a proxy may answer with before the API gets to speak.
const STATUS_WORDS = /** @type {Record<number, string>} */ ({
  401: "This server needs an API key. Enter it above.",
  403: "The API key was refused.",
  404: "Not found (the edit may have expired).",
  413: "The upload is too large for this server.",
  429: "Too many requests; wait a moment and try again.",
  502: "The server could not be reached.",
  503: "The server is busy or unavailable; try again shortly.",
  504: "The server took too long to answer.",
});

export class Api {
  /** @param {string} [base] */
  constructor(base = "") {
    this.base = base;
    this.key = storedKey();
    this.clockSkewMs = 0; // server clock minus this browser's, from the Date header
  }

  /** @param {Record<string, string>} extra */
  headers(extra = {}) {
    /** @type {Record<string, string>} */
    const h = { ...extra };
    if (this.key) h.Authorization = `Bearer ${this.key}`;
    return h;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {{body?: BodyInit, accept?: string}} [opts]
   * @returns {Promise<Response>}
   */
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
  /** @param {Response} resp */
  noteClock(resp) {
    const server = Date.parse(resp.headers.get("Date") || "");
    if (!Number.isFinite(server)) return;
    const skew = server + 500 - Date.now();
    this.clockSkewMs = Math.abs(skew) > 2000 ? skew : 0;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {{body?: BodyInit, accept?: string}} [opts]
   * @returns {Promise<any>}
   */
  async json(method, path, opts) {
    const resp = await this.request(method, path, opts);
    try {
      return await resp.json();
    } catch {
      throw new ApiError(resp.status, "bad_response", "The server sent an answer the page cannot read.");
    }
  }

  /** @returns {Promise<Info>} */
  info() {
    return this.json("GET", "/v1/info");
  }

  /** @returns {Promise<{tasks: TaskOut[]}>} */
  tasks() {
    return this.json("GET", "/v1/tasks");
  }

  /** @returns {Promise<Sample[]>} */
  samples() {
    return this.json("GET", "/v1/samples");
  }

  // A sample's file by the URL /v1/samples lists (a path on this server).
  /** @param {string} path @returns {Promise<Blob>} */
  async sampleFile(path) {
    const resp = await this.request("GET", path, { accept: "image/png" });
    return resp.blob();
  }

  /** @param {FormData} formData @returns {Promise<Job>} */
  submit(formData) {
    return this.json("POST", "/v1/edits", { body: formData });
  }

  /** @param {string} id @returns {Promise<Job>} */
  status(id) {
    return this.json("GET", `/v1/edits/${encodeURIComponent(id)}`);
  }

  /** @param {string} id @returns {Promise<Job>} */
  cancel(id) {
    return this.json("DELETE", `/v1/edits/${encodeURIComponent(id)}`);
  }

  /**
   * The edit's event stream (text/event-stream), to be read with events.js `readEvents`.
   * @param {string} id
   * @param {AbortSignal} signal aborts the stream
   * @returns {Promise<Response>}
   */
  async events(id, signal) {
    let resp;
    try {
      const path = `/v1/edits/${encodeURIComponent(id)}/events`;
      resp = await fetch(this.base + path, { headers: this.headers({ Accept: "text/event-stream" }), signal });
    } catch {
      throw new ApiError(0, "network", "The server could not be reached. Check that it is running.");
    }
    this.noteClock(resp);
    if (!resp.ok) throw await errorFrom(resp);
    return resp;
  }

  /** @param {string} id @returns {Promise<Blob>} */
  async result(id) {
    const resp = await this.request("GET", `/v1/edits/${encodeURIComponent(id)}/result`, { accept: "image/png" });
    return resp.blob();
  }
}

/**
 * The error shape of a failed answer, or words for its status when it has none (a proxy's page).
 * @param {Response} resp
 * @returns {Promise<ApiError>}
 */
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

/** The page's one client (the browser tests replace its methods). */
export const api = new Api();
