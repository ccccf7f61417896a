// @ts-check
// This browser's recent edits, in local storage: id, task, time, last known status and a small
// thumbnail of the result. The server keeps jobs only for a while; opening an expired one says so.

/**
 * One stored row.
 * @typedef {object} RecentItem
 * @property {string} id
 * @property {string} [task]
 * @property {number} [created] ms since the epoch
 * @property {string} [status] last known status, or "expired"
 * @property {number} [seed]
 * @property {string} [thumb] JPEG data URL of the result
 */

const STORAGE = "diffeditor.recent";
const MAX_ITEMS = 20;

/** @returns {RecentItem[]} */
export function loadRecent() {
  try {
    const items = JSON.parse(localStorage.getItem(STORAGE) || "[]");
    return Array.isArray(items) ? items.filter((x) => x && typeof x.id === "string") : [];
  } catch {
    return [];
  }
}

/** @param {RecentItem[]} items */
function save(items) {
  try {
    localStorage.setItem(STORAGE, JSON.stringify(items.slice(0, MAX_ITEMS)));
  } catch {
    // Quota exceeded: drop thumbnails rather than the list.
    try {
      localStorage.setItem(STORAGE, JSON.stringify(items.slice(0, MAX_ITEMS).map(({ thumb, ...rest }) => rest)));
    } catch {
      // Storage unavailable: the list lives for this page view only.
    }
  }
}

/** @param {RecentItem} entry */
export function upsertRecent(entry) {
  const items = loadRecent();
  const i = items.findIndex((x) => x.id === entry.id);
  if (i >= 0) items[i] = { ...items[i], ...entry };
  else items.unshift(entry);
  save(items);
  return items;
}

export function clearRecent() {
  save([]);
}

// A small JPEG data URL of an image, for the list.
/** @param {Blob} blob @returns {Promise<string | null>} */
export async function thumbnail(blob, size = 96) {
  try {
    const bmp = await createImageBitmap(blob);
    const k = size / Math.max(bmp.width, bmp.height);
    const c = document.createElement("canvas");
    c.width = Math.max(1, Math.round(bmp.width * k));
    c.height = Math.max(1, Math.round(bmp.height * k));
    /** @type {CanvasRenderingContext2D} */ (c.getContext("2d")).drawImage(bmp, 0, 0, c.width, c.height);
    return c.toDataURL("image/jpeg", 0.7);
  } catch {
    return null;
  }
}
