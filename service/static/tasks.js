// @ts-check
// The tasks as GET /v1/tasks defines them: which file parts and parameters each takes. The page
// shows a control only for a task that takes its input (`data-needs` in index.html), so which
// task takes what is read from the server, never restated here.

import { state } from "./state.js";

/** @typedef {import("./types.js").TaskDef} TaskDef */
/** @typedef {import("./types.js").TaskOut} TaskOut */
/** @typedef {import("./types.js").ParamsSchema} ParamsSchema */
/** @typedef {import("./types.js").Tool} Tool */

/** Words for people; what each task takes comes from /v1/tasks. */
export const TASK_HINTS = /** @type {Record<string, string>} */ ({
  move: "Paint over the object with the Brush, then pick “Drag object” and drag it to its new place. The scale slider resizes it.",
  drag: "Paint the area that may change, then pick Points: click a handle, then where it should go. Add as many pairs as you like.",
  landmark: "Pick Points: click a face landmark (an eye corner, the chin…), then where it should move.",
  appearance: "Paint the area to restyle on the image, then upload a reference and paint the part whose look to copy.",
  paste: "Upload a reference and paint the object to paste on it, then drag on the image to place it. The scale slider resizes it.",
});

/** The input each main-stage tool edits: a tool is offered when the task takes that input. */
export const TOOL_INPUT = /** @type {Record<Exclude<Tool, "none">, string>} */ ({
  brush: "mask",
  eraser: "mask",
  move: "offset",
  points: "points",
});

/** The task names the page offers (its radio buttons). */
export function knownTask(/** @type {string} */ name) {
  return Boolean(document.querySelector(`input[name="task"][value="${CSS.escape(name)}"]`));
}

/** @param {string} task */
export function taskDef(task) {
  return state.tasks[task] || null;
}

/** @param {string} task @returns {Record<string, import("./types.js").SchemaProp>} */
export function schemaProps(task) {
  return taskDef(task)?.schema?.properties || {};
}

/** Whether `task` takes the file part `name`. @param {string} task @param {string} name */
export function takesFile(task, name) {
  const f = taskDef(task)?.files;
  return Boolean(f && (f.required.includes(name) || f.optional.includes(name)));
}

/** Whether `task` takes `name`, as a file part or as a parameter. @param {string} task @param {string} name */
export function takes(task, name) {
  return takesFile(task, name) || name in schemaProps(task);
}

/** The main-stage tools `task` offers, in the toolbar's order. @param {string} task @returns {Tool[]} */
export function toolsFor(task) {
  const tools = /** @type {Exclude<Tool, "none">[]} */ (Object.keys(TOOL_INPUT));
  return tools.filter((t) => takes(task, TOOL_INPUT[t]));
}

/**
 * The first of `preferred` that `task` offers, else its first tool.
 * @param {string} task
 * @param {Tool[]} preferred
 * @returns {Tool}
 */
export function pickTool(task, preferred) {
  const tools = toolsFor(task);
  return preferred.find((t) => tools.includes(t)) || tools[0] || "none";
}

/**
 * GET /v1/tasks into the page's table. The working size's default becomes what the ready workers
 * use when an edit sends none (GET /v1/info `default_resolution`), so the page never guesses the
 * model; without it, the schema's own default (empty: the server decides).
 * @param {{tasks?: TaskOut[]} | TaskOut[]} data
 * @param {number | null | undefined} resolution
 * @returns {Record<string, TaskDef>}
 */
export function tasksFrom(data, resolution) {
  const list = Array.isArray(data) ? data : data.tasks || [];
  /** @type {Record<string, TaskDef>} */
  const out = {};
  for (const t of list) {
    const schema = withDefaultResolution(t.params_schema, resolution);
    out[t.name] = { description: t.description || "", files: t.files, schema };
  }
  return out;
}

/** @param {ParamsSchema} schema @param {number | null | undefined} res @returns {ParamsSchema} */
function withDefaultResolution(schema, res) {
  const prop = schema?.properties?.max_resolution;
  if (!prop || res === null || res === undefined) return schema;
  return { ...schema, properties: { ...schema.properties, max_resolution: { ...prop, default: res } } };
}

/** Schema descriptions cite the algorithm document ("§8.1"); people need only the first sentence. */
export function plainDescription(/** @type {string} */ text) {
  const first = text.split(/(?<=\.)\s/)[0];
  return first.replace(/\s*\(§[^)]*\)/g, "").replace(/`/g, "");
}
