// @ts-check
// Server-Sent Events read from a fetch() response: EventSource cannot send the Authorization
// header the page's API key needs, so the page reads the stream itself (GET /v1/edits/{id}/events,
// docs/api.md). One event per blank-line-separated block of `id:`, `event:`, `data:` lines.

/**
 * @typedef {object} StreamEvent
 * @property {string} type the `event:` field ("message" when absent)
 * @property {string | null} id
 * @property {any} data the `data:` lines joined, parsed as JSON
 */

/**
 * The events of `resp`'s body, in order, until the stream ends (or its reader is cancelled).
 * Comments (`: keepalive`), `retry:` lines and blocks without data are skipped.
 * @param {Response} resp
 * @returns {AsyncGenerator<StreamEvent>}
 */
export async function* readEvents(resp) {
  if (!resp.body) return;
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let pendingCR = false; // a read that ends on the \r of a \r\n: the \n comes with the next one
  try {
    for (;;) {
      const { value, done } = await reader.read();
      let text = done ? decoder.decode() : decoder.decode(value, { stream: true });
      if (pendingCR) text = "\r" + text;
      pendingCR = !done && text.endsWith("\r");
      if (pendingCR) text = text.slice(0, -1);
      buffer += text.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = parseBlock(block);
        if (event) yield event;
      }
      if (done) return;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** @param {string} block @returns {StreamEvent | null} */
function parseBlock(block) {
  let type = "message";
  /** @type {string | null} */
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") type = value;
    else if (field === "id") id = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  try {
    return { type, id, data: JSON.parse(data.join("\n")) };
  } catch {
    return null; // not this API's JSON: skipped
  }
}
