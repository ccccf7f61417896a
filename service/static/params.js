// @ts-check
// Number settings built from the API's per-task JSON schema (GET /v1/tasks), so defaults and
// ranges on the page are always the server's. Fields with their own controls elsewhere on the
// page (prompts, seed, steps, offset, points, scale) are left out here.

/** @typedef {import("./types.js").SchemaProp} SchemaProp */
/** @typedef {import("./types.js").ParamsSchema} ParamsSchema */
/** @typedef {{min?: number, max?: number, step?: number, integer?: boolean, default?: unknown}} Range */

const OWN_CONTROLS = new Set(["task", "prompt", "reference_prompt", "seed", "steps", "offset", "points", "scale"]);

// Shown outside the "advanced" fold; everything else numeric goes inside it.
const MAIN = new Set(["guidance_strength"]);

const LABELS = /** @type {Record<string, [string, string]>} */ ({
  guidance_strength: ["Guidance strength", "How hard the edit is pushed; 0 turns guidance off."],
  sde_strength: ["Noise strength (SDE)", "Randomness inside the edited region; more changes texture."],
  cfg_scale: ["Prompt guidance (CFG)", "How closely the prompt is followed."],
  ip_scale: ["Image-prompt weight", "Weight of the image prompt; 0 turns it off."],
  max_resolution: ["Working resolution", "The image is processed at about this size (pixels per side)."],
  w_edit: ["Edit weight", "Pull towards the target (moved object, points, reference)."],
  w_content: ["Content weight", "Keep the rest of the image unchanged."],
  w_contrast: ["Contrast weight", "Keep the moved object distinct from where it was."],
  w_inpaint: ["Fill weight", "Fill the uncovered area like its surroundings."],
});

/** @param {string} name */
export function labelFor(name) {
  return (LABELS[name] || [titleCase(name)])[0];
}

/** @param {string} name */
function titleCase(name) {
  const s = name.replace(/_/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// {min, max, step, integer, default} from a JSON-schema property (anyOf with null allowed).
/** @param {SchemaProp | undefined} prop @returns {Range} */
export function rangeOf(prop) {
  if (!prop) return {};
  const p = prop.anyOf ? prop.anyOf.find((x) => x.type !== "null") || {} : prop;
  const integer = p.type === "integer";
  const min = p.minimum ?? (p.exclusiveMinimum !== undefined ? p.exclusiveMinimum + (integer ? 1 : 0.01) : undefined);
  const max = p.maximum ?? (p.exclusiveMaximum !== undefined ? p.exclusiveMaximum - (integer ? 1 : 0.01) : undefined);
  let step = integer ? 1 : 0.05;
  if (!integer && max !== undefined && max > 20) step = 0.1;
  return { min, max, step, integer, default: prop.default };
}

/** @param {SchemaProp} prop */
function isNumeric(prop) {
  const p = prop.anyOf ? prop.anyOf.find((x) => x.type !== "null") || {} : prop;
  return p.type === "number" || p.type === "integer";
}

// Build the number fields of `schema` into the two containers. `keep` maps names to values the
// person typed before switching task; those survive, the rest take this task's defaults.
/**
 * @param {ParamsSchema | undefined} schema
 * @param {HTMLElement} mainBox
 * @param {HTMLElement} advancedBox
 * @param {Record<string, string>} [keep]
 */
export function buildParamFields(schema, mainBox, advancedBox, keep = {}) {
  mainBox.replaceChildren();
  advancedBox.replaceChildren();
  const props = (schema && schema.properties) || {};
  for (const [name, prop] of Object.entries(props)) {
    if (OWN_CONTROLS.has(name) || !isNumeric(prop)) continue;
    const r = rangeOf(prop);
    const wrap = document.createElement("div");
    wrap.className = "field";
    wrap.dataset.field = name;
    const id = `param-${name}`;
    const [label, hint] = LABELS[name] || [titleCase(name), prop.description || ""];
    const lab = document.createElement("label");
    lab.htmlFor = id;
    lab.textContent = label;
    const input = document.createElement("input");
    input.type = "number";
    input.id = id;
    input.dataset.param = name;
    input.dataset.default = r.default === undefined || r.default === null ? "" : String(r.default);
    if (r.min !== undefined) input.min = String(r.min);
    if (r.max !== undefined) input.max = String(r.max);
    input.step = String(r.step);
    input.inputMode = r.integer ? "numeric" : "decimal";
    input.value = name in keep ? keep[name] : input.dataset.default;
    // No default in the schema: left empty, the server picks (e.g. the workers' working size).
    if (r.default === null || r.default === undefined) input.placeholder = "server default";
    if (name in keep) input.dataset.dirty = "1";
    input.addEventListener("input", () => {
      input.dataset.dirty = "1";
    });
    const hintEl = document.createElement("p");
    hintEl.className = "hint";
    hintEl.id = `${id}-hint`;
    const rangeText = r.min !== undefined && r.max !== undefined ? ` (${r.min}–${r.max})` : "";
    hintEl.textContent = `${hint}${rangeText}`;
    const err = document.createElement("p");
    err.className = "field-error";
    err.id = `${name}-error`;
    err.dataset.errorFor = name;
    err.setAttribute("aria-live", "polite");
    input.setAttribute("aria-describedby", `${hintEl.id} ${err.id}`);
    wrap.append(lab, input, hintEl, err);
    (MAIN.has(name) ? mainBox : advancedBox).append(wrap);
  }
}

// The values the person changed, to carry over when the task changes.
/** @param {HTMLElement[]} boxes @returns {Record<string, string>} */
export function dirtyValues(...boxes) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const box of boxes) {
    for (const input of Array.from(box.querySelectorAll("input[data-param][data-dirty]"))) {
      const el = /** @type {HTMLInputElement} */ (input);
      out[el.dataset.param || ""] = el.value;
    }
  }
  return out;
}

// Numbers to send: every generated field with a value (empty means "server default").
/** @param {HTMLElement[]} boxes @returns {Record<string, number>} */
export function collectParamValues(...boxes) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const box of boxes) {
    for (const input of Array.from(box.querySelectorAll("input[data-param]"))) {
      const el = /** @type {HTMLInputElement} */ (input);
      if (el.value.trim() === "") continue;
      out[el.dataset.param || ""] = Number(el.value);
    }
  }
  return out;
}
