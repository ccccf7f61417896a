// @ts-check
// The recent-edits list: the stored rows (recent.js), with each row's status from the page's
// record of that job when it has one.

import { api } from "./api.js";
import { $, buttonEl, setText, whenChanged } from "./dom.js";
import { setFormError, showApiError } from "./errors.js";
import { clearRecentList, markExpired, recentWords, stageWords, startJob } from "./jobs.js";
import { loadRecent } from "./recent.js";
import { state } from "./state.js";

/** @param {string} id */
async function openRecent(id) {
  let job;
  try {
    job = await api.status(id);
  } catch (err) {
    if (/** @type {{status?: number}} */ (err).status === 404) {
      markExpired(id);
      setFormError("That edit has expired on the server.");
      return;
    }
    showApiError(err);
    return;
  }
  startJob(job);
  $("job").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

export function wireRecent() {
  buttonEl("recent-clear").addEventListener("click", clearRecentList);
}

export function renderRecent() {
  // Rows (and their thumbnails) are rebuilt only when the stored list changed; each render
  // refreshes the statuses in place, so a running edit's row counts its steps.
  whenChanged("recent", [state.recentVersion], renderRows);
  for (const li of Array.from($("recent-list").querySelectorAll("li[data-job-id]"))) {
    const st = li.querySelector(".recent-status");
    const id = /** @type {HTMLElement} */ (li).dataset.jobId || "";
    if (st) setText(st, recentWords(state.jobs.get(id), /** @type {HTMLElement} */ (li).dataset.stored || ""));
  }
}

function renderRows() {
  const items = loadRecent();
  const list = $("recent-list");
  list.replaceChildren();
  $("recent-empty").hidden = items.length > 0;
  $("recent-clear").hidden = items.length === 0;
  for (const item of items) {
    const li = document.createElement("li");
    li.dataset.jobId = item.id;
    li.dataset.stored = item.status || "";
    if (item.thumb) {
      const img = document.createElement("img");
      img.src = item.thumb;
      img.alt = "";
      li.append(img);
    } else {
      const ph = document.createElement("span");
      ph.className = "thumb-empty";
      li.append(ph);
    }
    const text = document.createElement("span");
    text.className = "recent-text";
    const when = item.created ? new Date(item.created).toLocaleString() : "";
    text.textContent = `${stageWords(item.task || "edit")} · ${when}`;
    const st = document.createElement("span");
    st.className = "recent-status";
    text.append(st);
    const open = document.createElement("button");
    open.type = "button";
    open.textContent = "Open";
    open.setAttribute("aria-label", `Open ${item.task || "edit"} edit from ${when}`);
    open.addEventListener("click", () => openRecent(item.id));
    li.append(text, open);
    list.append(li);
  }
}
