// @ts-check
// Steps 2 and 4: the task and its settings. Switching task keeps what the person typed and gives
// every other setting the new task's default from its schema (GET /v1/tasks).

import { $, all, inputEl, setText, textareaEl, whenChanged } from "./dom.js";
import { clearJobView } from "./jobs.js";
import { writeScale } from "./marks.js";
import { buildParamFields, dirtyValues, rangeOf } from "./params.js";
import { state, update } from "./state.js";
import { knownTask, pickTool, plainDescription, schemaProps, takes, takesFile, TASK_HINTS, taskDef } from "./tasks.js";

/** @typedef {import("./types.js").SchemaProp} SchemaProp */
/** @typedef {import("./types.js").State} State */

const TASK_STORAGE = "diffeditor.task";

/**
 * Show `task`: its controls, its default tool, its settings; errors go with the old inputs.
 * @param {string} task
 * @param {{force?: boolean, patch?: Partial<State>}} [opts] force: also when it is the task on show
 */
export function setTask(task, { force = false, patch = {} } = {}) {
  if (!knownTask(task)) task = "move";
  if (task === state.task && !force) return;
  // The last edit's panel and result were the old task's: a new task starts without them.
  if (task !== state.task) clearJobView();
  try {
    localStorage.setItem(TASK_STORAGE, task);
  } catch {
    // No storage: the task is not remembered, nothing else changes.
  }
  update({
    task,
    tool: pickTool(task, []),
    maskLayer: takesFile(task, "region_mask") ? state.maskLayer : "object",
    errors: {},
    formError: { text: "", about: "" },
    ...patch,
  });
}

/** The task a previous visit left, else move. */
export function storedTask() {
  try {
    return localStorage.getItem(TASK_STORAGE) || "move";
  } catch {
    return "move";
  }
}

/** Every setting back to `task`'s defaults (what the person typed is forgotten). */
export function resetSettings(task = state.task) {
  for (const input of all(document, "[data-dirty]")) delete /** @type {HTMLElement} */ (input).dataset.dirty;
  $("main-params").replaceChildren();
  $("advanced-params").replaceChildren();
  setTask(task, { force: true, patch: { settingsVersion: state.settingsVersion + 1 } });
}

export function wireSettings() {
  for (const radio of all(document, 'input[name="task"]')) {
    const r = /** @type {HTMLInputElement} */ (radio);
    r.addEventListener("change", () => setTask(r.value));
  }
  for (const id of ["prompt", "reference_prompt", "steps", "seed", "scale"]) {
    const input = /** @type {HTMLInputElement} */ ($(id));
    input.addEventListener("input", () => {
      input.dataset.dirty = "1";
    });
  }
  $("reset-settings").addEventListener("click", () => resetSettings());
  inputEl("seed-random").addEventListener("change", () => {
    inputEl("seed").disabled = inputEl("seed-random").checked;
    if (!inputEl("seed-random").checked) inputEl("seed").focus();
  });
}

export function renderTask() {
  const { task } = state;
  for (const radio of all(document, 'input[name="task"]')) {
    const r = /** @type {HTMLInputElement} */ (radio);
    r.checked = r.value === task;
  }
  // A control is on show when the task takes the input it edits (GET /v1/tasks).
  for (const el of all(document, "[data-needs]")) {
    const h = /** @type {HTMLElement} */ (el);
    h.hidden = !(h.dataset.needs || "").split(" ").some((name) => takes(task, name));
  }
  setText($("task-description"), plainDescription(taskDef(task)?.description || ""));
  setText($("marks-hint"), TASK_HINTS[task] || "");
  whenChanged("settings", [task, state.tasks, state.settingsVersion], renderSettings);
}

/** The settings at the task's defaults, keeping the values the person typed. */
function renderSettings() {
  const { task } = state;
  const keep = dirtyValues($("main-params"), $("advanced-params"));
  const props = schemaProps(task);
  applyDefault(textareaEl("prompt"), props.prompt);
  applyDefault(textareaEl("reference_prompt"), props.reference_prompt);
  applyRange(inputEl("steps"), props.steps, state.info?.limits?.max_steps);
  applyRange(inputEl("seed"), props.seed);
  const scale = rangeOf(props.scale);
  const field = inputEl("scale");
  if (scale.min !== undefined) field.min = String(scale.min);
  if (scale.max !== undefined) field.max = String(scale.max);
  // The slider moves log10(scale) and is symmetric about 0, so 1× sits in the middle of its track
  // and halving is as far as doubling: 1/max … max (0.1× … 10× for the schema's `le=10`).
  const top = Math.log10(scale.max ?? 10);
  inputEl("scale-range").max = String(top);
  const bottom = Math.max(-top, Math.log10(scale.min ?? 0.1));
  inputEl("scale-range").min = String(bottom);
  const x = (/** @type {number} */ e) => Number((10 ** e).toPrecision(2));
  setText($("scale-hint"), `1× (unchanged) in the middle; left shrinks to ${x(bottom)}×, right grows to ${x(top)}×.`);
  if (!field.dataset.dirty || Number(field.value) > Number(field.max)) writeScale(scale.default ?? 1);
  buildParamFields(taskDef(task)?.schema, $("main-params"), $("advanced-params"), keep);
}

/** @param {HTMLInputElement | HTMLTextAreaElement} input @param {SchemaProp | undefined} prop */
function applyDefault(input, prop) {
  if (!prop || input.dataset.dirty) return;
  input.value = prop.default === undefined || prop.default === null ? "" : String(prop.default);
}

/** @param {HTMLInputElement} input @param {SchemaProp | undefined} prop @param {number} [cap] */
function applyRange(input, prop, cap) {
  if (!prop) return;
  const r = rangeOf(prop);
  if (r.min !== undefined) input.min = String(r.min);
  const max = cap !== undefined && r.max !== undefined ? Math.min(cap, r.max) : (r.max ?? cap);
  if (max !== undefined) input.max = String(max);
  if (!input.dataset.dirty && r.default !== undefined && r.default !== null) input.value = String(r.default);
}
