// @ts-check
// The edits the page follows: one record per job (state.jobs), updated by every status the page
// reads (submit, poll, stream event, cancel, Open). The job panel, the Run button and the recent
// list all render from that record, so they never disagree. The edit on show is followed on its
// event stream (progress as it happens, step previews); when the stream fails, by polling.

import { api } from "./api.js";
import { $, buttonEl, imgEl, setText, whenChanged } from "./dom.js";
import { friendlyMessage, showApiError } from "./errors.js";
import { readEvents } from "./events.js";
import { clearRecent, thumbnail, upsertRecent } from "./recent.js";
import { state, update } from "./state.js";

/** @typedef {import("./types.js").Job} Job */
/** @typedef {import("./types.js").JobEntry} JobEntry */
/** @typedef {import("./recent.js").RecentItem} RecentItem */
/** @typedef {import("./events.js").StreamEvent} StreamEvent */

export const TERMINAL = new Set(["succeeded", "failed", "canceled", "expired"]);
const PREVIEW_URL = /^data:image\/jpeg;base64,[A-Za-z0-9+/=]+$/;
const POLL_MS = 400;
const BACKGROUND_POLL_MS = 2000; // an edit no longer on show, still followed for the recent list

/** Write `entry` into the stored recent list; its view re-renders. @param {RecentItem} entry */
export function noteRecent(entry) {
  upsertRecent(entry);
  update({ recentVersion: state.recentVersion + 1 });
}

export function clearRecentList() {
  clearRecent();
  update({ recentVersion: state.recentVersion + 1 });
}

/** The seed the server used, or null. @param {Job} job */
function seedOf(job) {
  const seed = job.params?.seed;
  return typeof seed === "number" ? seed : null;
}

/** @param {string} id */
function shown(id) {
  return Boolean(state.job && state.job.id === id);
}

/** @param {string} id @param {boolean} on */
function setFollowing(id, on) {
  const following = new Set(state.following);
  if (on) following.add(id);
  else {
    following.delete(id);
    streams.get(id)?.abort();
  }
  update({ following });
}

/**
 * The one way a job's status enters the page.
 * @param {Job} job
 */
export function setJob(job, { expired = false } = {}) {
  const prev = state.jobs.get(job.id);
  const eta = job.progress && typeof job.progress.eta_s === "number" ? job.progress.eta_s : null;
  // The ETA counts down locally from when it arrived, so it moves between statuses too.
  const jobs = new Map(state.jobs).set(job.id, { job, expired, etaAt: eta === null ? null : Date.now() + eta * 1000 });
  if (TERMINAL.has(job.status) || expired) setFollowing(job.id, false);
  if (!prev || prev.job.status !== job.status || prev.expired !== expired) {
    noteRecent({ id: job.id, status: expired ? "expired" : job.status, seed: seedOf(job) ?? undefined });
  }
  /** @type {Partial<import("./types.js").State>} */
  const patch = { jobs };
  if (shown(job.id)) {
    // A status came through: a "Retrying…" note from a failed poll goes; a failure says why.
    const e = job.error;
    patch.jobError = job.status !== "failed" ? "" : e && e.message ? friendlyMessage(e) : "The edit failed.";
  }
  update(patch);
  const onShow = state.job;
  if (onShow && onShow.id === job.id && job.status === "succeeded" && !onShow.resultShown) {
    update({ job: { ...onShow, resultShown: true } });
    showResult(job);
  }
}

/** The server has forgotten `id`: its record and its row say so. @param {string} id */
export function markExpired(id) {
  const entry = state.jobs.get(id);
  if (entry) {
    setJob(entry.job, { expired: true }); // which stops following it and notes its row
    return;
  }
  setFollowing(id, false);
  noteRecent({ id, status: "expired" });
}

/**
 * Follow an edit until it ends: quickly while it is the one on show, slowly in the background
 * (an edit left by a task switch still ends in the recent list).
 * @param {string} id
 */
export function follow(id) {
  if (state.following.has(id)) {
    // Polled in the background until now, and on show again: on its stream from here.
    if (shown(id) && !streams.has(id) && typeof ReadableStream !== "undefined") stream(id);
    return;
  }
  setFollowing(id, true);
  if (shown(id) && typeof ReadableStream !== "undefined") stream(id);
  else schedulePoll(id);
}

/** @type {Map<string, AbortController>} the event streams open, by job id */
const streams = new Map();

/**
 * Follow `id` on its event stream until its `completed` event; a stream that fails or ends
 * before it hands the job to polling, which has its own retries and words for errors.
 * @param {string} id
 */
async function stream(id) {
  const ctrl = new AbortController();
  streams.set(id, ctrl);
  let ended = false;
  try {
    const resp = await api.events(id, ctrl.signal);
    for await (const event of readEvents(resp)) {
      if (!state.following.has(id)) break;
      if (onEvent(id, event)) {
        ended = true;
        break;
      }
    }
  } catch {
    // Refused, cut or aborted: polling takes over below, if the job is still followed.
  } finally {
    streams.delete(id);
    ctrl.abort();
  }
  if (!ended && state.following.has(id)) schedulePoll(id, 0);
}

/**
 * One event of the job's stream into its record; true at its end (`completed`).
 * @param {string} id
 * @param {StreamEvent} event
 */
function onEvent(id, { type, data }) {
  const entry = state.jobs.get(id);
  if (!entry || !data || typeof data !== "object") return false;
  const job = entry.job;
  const startedAt = job.started_at || new Date(Date.now() + api.clockSkewMs).toISOString();
  if (type === "queued") {
    setJob({ ...job, status: "queued", position: typeof data.position === "number" ? data.position : null });
  } else if (type === "start") {
    setJob({ ...job, status: "running", position: null, started_at: startedAt });
  } else if (type === "progress") {
    const { stage, step, total, eta_s } = data;
    setJob({ ...job, status: "running", position: null, started_at: startedAt, progress: { stage, step, total, eta_s } });
  } else if (type === "preview") {
    if (shown(id) && typeof data.image === "string" && PREVIEW_URL.test(data.image)) {
      update({ livePreview: { jobId: id, url: data.image, step: Number(data.step), total: Number(data.total) } });
    }
  } else if (type === "completed") {
    // The job's final status (the whole record; only {status, error} if it has expired since).
    setJob({ ...job, ...data, id });
    return true;
  }
  return false;
}

/** @param {string} id @param {number | null} [delay] */
function schedulePoll(id, delay = null) {
  setTimeout(() => poll(id), delay ?? (shown(id) ? POLL_MS : BACKGROUND_POLL_MS));
}

/** @param {string} id */
async function poll(id) {
  if (!state.following.has(id) || streams.has(id)) return; // the stream has it; it hands back if it fails
  try {
    const job = await api.status(id);
    if (!state.following.has(id)) return;
    setJob(job);
    if (state.following.has(id)) schedulePoll(id);
  } catch (err) {
    if (!state.following.has(id)) return;
    const status = /** @type {{status?: number}} */ (err).status;
    if (status === 404) {
      markExpired(id);
      return;
    }
    if (status === 401 || status === 403) {
      setFollowing(id, false);
      if (shown(id)) showApiError(err, { inJobPanel: true });
      return;
    }
    if (shown(id)) update({ jobError: `${/** @type {Error} */ (err).message} Retrying…` });
    schedulePoll(id, 2000);
  }
}

/**
 * Show `job` in the panel (a new submit, or an edit opened from the recent list).
 * @param {Job} job
 */
export function startJob(job, { originalUrl = /** @type {string | null} */ (null) } = {}) {
  const originals = new Map(state.originals);
  if (originalUrl) originals.set(job.id, originalUrl);
  const task = job.task || state.task;
  dropResult();
  update({ originals, job: { id: job.id, task, resultShown: false }, jobError: "", livePreview: null });
  closeHiddenStreams();
  noteRecent({ id: job.id, task, created: Date.parse(job.created_at) || Date.now() });
  if (!TERMINAL.has(job.status)) follow(job.id);
  setJob(job);
}

/**
 * What belongs to the edit on show leaves the screen (a task switch): its panel and its result.
 * An edit still under way goes on, and ends in the recent list.
 */
export function clearJobView() {
  dropResult();
  update({ job: null, jobError: "", livePreview: null });
  closeHiddenStreams();
}

/** Only the edit on show is streamed: the others go back to background polling (each open
 * stream holds one of the browser's few HTTP/1.1 connections to the server). */
function closeHiddenStreams() {
  for (const [id, ctrl] of streams) if (!shown(id)) ctrl.abort();
}

function dropResult() {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  update({ resultJobId: null, resultBlob: null, resultUrl: null, resultSeed: null });
}

/** Run is off while the edit on show is queued or running, so a second click queues no duplicate. */
export function jobUnderWay() {
  return Boolean(state.job && state.following.has(state.job.id));
}

export async function cancelShownJob() {
  if (!state.job) return;
  buttonEl("job-cancel").disabled = true;
  try {
    const job = await api.cancel(state.job.id);
    if (job && job.status) setJob(job);
  } catch (err) {
    buttonEl("job-cancel").disabled = false;
    showApiError(err, { inJobPanel: true });
  }
}

/** @param {Job} job */
async function showResult(job) {
  let blob;
  try {
    blob = await api.result(job.id);
  } catch (err) {
    if (shown(job.id)) showApiError(err, { inJobPanel: true });
    return;
  }
  const thumb = thumbnail(blob);
  if (shown(job.id)) {
    const seed = seedOf(job);
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    update({ resultJobId: job.id, resultBlob: blob, resultUrl: URL.createObjectURL(blob), resultSeed: seed });
    $("result").scrollIntoView({ behavior: "smooth", block: "nearest" });
  }
  // (Also when the page moved on while the image came: the row gets its thumbnail.)
  noteRecent({ id: job.id, thumb: (await thumb) || undefined });
}

/** "sampling" -> "Sampling". @param {string | undefined} stage */
export function stageWords(stage) {
  if (!stage) return "Working";
  const s = String(stage).replace(/[_-]+/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** The status line of the panel, from the one record of the job. @param {JobEntry} entry */
function statusLine(entry) {
  const job = entry.job;
  if (entry.expired) return "This edit is no longer on the server (expired).";
  if (job.status === "queued") {
    const pos = job.position;
    if (pos === null || pos === undefined) return "Queued.";
    return pos === 0 ? "Queued: next in line." : `Queued: ${pos} edit${pos === 1 ? "" : "s"} ahead of yours.`;
  }
  if (job.status === "running") {
    const p = job.progress;
    return p && p.total ? `${stageWords(p.stage)}: step ${p.step} of ${p.total}` : "Running: starting…";
  }
  if (job.status === "succeeded") return `Done${durationWords(job)}.`;
  if (job.status === "failed") return "Failed.";
  if (job.status === "canceled") return "Canceled.";
  if (job.status === "expired") return `Expired: ${job.error?.message || "its deadline passed"}.`;
  return job.status;
}

/** The recent list's short form of the same record. @param {JobEntry | undefined} entry @param {string} [stored] */
export function recentWords(entry, stored) {
  if (!entry) return stored || "";
  if (entry.expired) return "expired";
  const p = entry.job.progress;
  if (entry.job.status === "running" && p && p.total) return `running · step ${p.step} of ${p.total}`;
  if (entry.job.status === "queued" && typeof entry.job.position === "number") {
    return `queued · ${entry.job.position} ahead`;
  }
  return entry.job.status;
}

/** @type {ReturnType<typeof setInterval> | null} */
let ticker = null; // the 1 s timer of the elapsed time: a render with no state change

export function renderJob() {
  const btn = buttonEl("submit");
  const busy = jobUnderWay();
  btn.disabled = state.sending || busy;
  setText(btn, state.sending ? "Sending…" : "Run edit");
  setText($("submit-hint"), busy ? "An edit is under way: wait for it to end, or cancel it, to run another." : "");

  $("job").hidden = !state.job;
  setText($("job-error"), state.jobError);
  renderJobTime();
  renderResult();
  renderLivePreview();
  const entry = state.job && state.jobs.get(state.job.id);
  if (!state.job || !entry) return;
  setText($("job-id"), state.job.id.slice(0, 8));
  $("job-id").title = state.job.id;
  const job = entry.job;
  const bar = /** @type {HTMLProgressElement} */ ($("job-progress"));
  $("job").dataset.status = entry.expired ? "expired" : job.status;
  setText($("job-status"), statusLine(entry));
  if (job.status === "queued") {
    bar.removeAttribute("value");
  } else if (job.status === "running") {
    const p = job.progress;
    if (p && p.total) {
      bar.max = p.total;
      bar.value = p.step;
    } else {
      bar.removeAttribute("value");
    }
  } else {
    bar.max = 1;
    bar.value = job.status === "succeeded" ? 1 : 0;
  }
  buttonEl("job-cancel").disabled = entry.expired || TERMINAL.has(job.status);
}

// Elapsed time (and the ETA when the worker gives one) ticks every second while the edit is under
// way, even between statuses: a slow step never looks like a hung page.
function renderJobTime() {
  const entry = state.job && state.jobs.get(state.job.id);
  const live = Boolean(entry && !entry.expired && !TERMINAL.has(entry.job.status) && state.following.has(entry.job.id));
  if (live && !ticker) ticker = setInterval(renderJobTime, 1000); // the clock alone, not the page
  if (!live && ticker) {
    clearInterval(ticker);
    ticker = null;
  }
  const out = $("job-time");
  if (!live || !entry) {
    setText(out, "");
    return;
  }
  const job = entry.job;
  const now = Date.now() + api.clockSkewMs; // the server's clock, which wrote the timestamps
  if (job.status === "queued") {
    const since = Date.parse(job.created_at);
    setText(out, Number.isFinite(since) ? `Waiting ${elapsedWords(now - since)}` : "");
    return;
  }
  const since = Date.parse(job.started_at || "");
  let text = Number.isFinite(since) ? `${elapsedWords(now - since)} elapsed` : "";
  if (entry.etaAt !== null) {
    const left = entry.etaAt - Date.now();
    const eta = left > 500 ? `about ${etaWords(left)} left` : "almost done";
    text = text ? `${text} · ${eta}` : eta;
  }
  setText(out, text);
}

// The edit taking shape: the latest step preview of the edit on show, while it runs.
function renderLivePreview() {
  const entry = state.job && state.jobs.get(state.job.id);
  const p = state.livePreview;
  const live = p && entry && p.jobId === entry.job.id && !entry.expired && !TERMINAL.has(entry.job.status) ? p : null;
  $("job-preview").hidden = !live;
  whenChanged("job-preview", [live?.url], () => {
    if (live) imgEl("job-preview-image").src = live.url;
  });
  setText($("job-preview-caption"), live ? `Step ${live.step} of ${live.total}` : "");
}

function renderResult() {
  const id = state.resultJobId;
  $("result").hidden = !(id && shown(id));
  whenChanged("result", [state.resultUrl], () => {
    if (!id || !state.resultUrl) return;
    const job = state.jobs.get(id)?.job;
    const originalUrl = state.originals.get(id) || null;
    imgEl("result-image").src = state.resultUrl;
    imgEl("compare-after").src = state.resultUrl;
    const dl = /** @type {HTMLAnchorElement} */ ($("result-download"));
    dl.href = state.resultUrl;
    dl.download = `diffeditor-${job?.task || "edit"}-${id.slice(0, 8)}.png`;
    $("result-original-fig").hidden = !originalUrl;
    $("compare-block").hidden = !originalUrl;
    if (originalUrl) {
      imgEl("result-original").src = originalUrl;
      imgEl("compare-before").src = originalUrl;
    }
    setText($("result-meta"), state.resultSeed !== null ? `(seed ${state.resultSeed})` : "");
    buttonEl("result-seed").disabled = state.resultSeed === null;
    $("result").dataset.jobId = id;
  });
}

/** @param {number} ms */
function elapsedWords(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

/** @param {number} ms */
function etaWords(ms) {
  const s = Math.ceil(ms / 1000);
  return s < 90 ? `${s} s` : `${Math.round(s / 60)} min`;
}

/** @param {Job} job */
function durationWords(job) {
  if (!job.started_at || !job.ended_at) return "";
  const s = (Date.parse(job.ended_at) - Date.parse(job.started_at)) / 1000;
  return Number.isFinite(s) && s >= 0 ? ` in ${s.toFixed(1)} s` : "";
}
