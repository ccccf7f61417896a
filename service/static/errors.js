// @ts-check
// Errors next to the controls they are about. What is shown is chosen by the API's error `code`
// and `field` (docs/api.md), never by reading its English message; the message itself is shown
// when the page has no better words for that code.

import { ApiError } from "./api.js";
import { showAuth } from "./auth.js";
import { $, all, inputEl, setText } from "./dom.js";
import { labelFor } from "./params.js";
import { state, update } from "./state.js";

/** @typedef {import("./types.js").ErrorDetail} ErrorDetail */

/** Which control shows as invalid for each API field name (a schema number: `param-<name>`). */
const CONTROL_FOR = /** @type {Record<string, string>} */ ({
  image: "image-drop",
  mask: "main-stage",
  region_mask: "main-stage",
  reference: "reference-drop",
  reference_mask: "reference-stage",
  image_prompt: "image-prompt-file",
  points: "points-list",
  offset: "offset-dx",
  scale: "scale",
  seed: "seed",
  steps: "steps",
  prompt: "prompt",
  reference_prompt: "reference_prompt",
  task: "task-picker",
});

const FIELD_WORDS = /** @type {Record<string, string>} */ ({
  image: "Image",
  mask: "Mask",
  region_mask: "Fill hint mask",
  reference: "Reference image",
  reference_mask: "Reference mask",
  image_prompt: "Image prompt",
  points: "Points",
  offset: "Offset",
  scale: "Scale",
  seed: "Seed",
  steps: "Steps",
  prompt: "Prompt",
  reference_prompt: "Reference prompt",
  task: "Task",
});

/** The API's codes for an input that was not sent (a part or a parameter). */
const MISSING_CODES = new Set(["missing_field", "missing_file"]);

/**
 * The page's own words for the mistakes people make most: control key -> kind -> words, where
 * the kind is an error code or "missing" (any of MISSING_CODES).
 */
const WORDS = /** @type {Record<string, Record<string, string>>} */ ({
  image: { missing: "Choose an image to edit first." },
  reference: { missing: "Upload a reference image." },
  points: { missing: "Place at least one handle → target pair: pick Points and click the image twice." },
  offset: { missing: "Set where the object goes: drag it on the image or type an offset." },
  mask: {
    missing: "Paint a mask on the image first.",
    empty_mask: "The mask is empty: paint over the part of the image to edit.",
  },
  reference_mask: {
    missing: "Paint the object on the reference image.",
    empty_mask: "The reference mask is empty: paint the object on the reference image.",
  },
});

/** The control key of an API field: "params.points.2.1" -> "points". @param {string | null | undefined} field */
export function fieldKey(field) {
  if (!field) return null;
  return String(field)
    .replace(/^params\./, "")
    .split(".")[0];
}

/**
 * Words for an error from its code and field; the server's message (without the "field: " it
 * starts with) when the page has none of its own.
 * @param {ErrorDetail} err
 * @returns {string}
 */
export function friendlyMessage(err) {
  const key = fieldKey(err.field);
  const words = key ? WORDS[key] : undefined;
  const own = words && (words[err.code] || (MISSING_CODES.has(err.code) ? words.missing : undefined));
  if (own) return own;
  let text = err.message || "";
  if (err.field && text.startsWith(`${err.field}: `)) text = text.slice(err.field.length + 2);
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : "Something went wrong.";
}

/** @param {string} key */
function wordsFor(key) {
  return FIELD_WORDS[key] || labelFor(key);
}

/** The error slot of `key` when it is on show (its task's controls), else null. @param {string | null} key */
function errorSlot(key) {
  if (!key) return null;
  const slot = document.querySelector(`[data-error-for="${CSS.escape(key)}"]`);
  return slot && !slot.closest("[hidden]") ? slot : null;
}

/**
 * The line beside Run repeats the latest error; `about` is the key it is about, so that it goes
 * when that input changes (a good image after a bad one), not only at the next Run.
 */
export function setFormError(text = "", about = "") {
  update({ formError: { text, about } });
}

/** Show `message` at `key`'s control (and beside Run). @param {string} key @param {string} message */
export function showFieldError(key, message, field = key) {
  const slot = errorSlot(key);
  if (!slot) {
    setFormError(message, key);
    return;
  }
  const details = slot.closest("details");
  if (details) details.open = true;
  update({
    errors: { ...state.errors, [key]: { message, field } },
    formError: { text: `Check “${wordsFor(key)}”: ${message}`, about: key },
  });
}

/** `key`'s input changed: its error is out of date. @param {string} key */
export function clearFieldError(key) {
  clearFieldErrors([key]);
}

/** @param {string[]} keys */
export function clearFieldErrors(keys) {
  // called on every drag move and keystroke: no error to clear, no render
  if (!keys.some((key) => key in state.errors) && !keys.includes(state.formError.about)) return;
  const errors = { ...state.errors };
  for (const key of keys) delete errors[key];
  const formError = keys.includes(state.formError.about) ? { text: "", about: "" } : state.formError;
  update({ errors, formError });
}

export function clearErrors() {
  update({ errors: {}, formError: { text: "", about: "" } });
}

/**
 * An API failure (or any thrown error) where it belongs: a key request at the key panel, a
 * field's error at that field, the rest beside Run (or in the job panel with `inJobPanel`).
 * @param {unknown} thrown
 */
export function showApiError(thrown, { inJobPanel = false } = {}) {
  const err =
    thrown instanceof ApiError
      ? thrown
      : new ApiError(0, "client", String(thrown instanceof Error ? thrown.message : thrown));
  if (err.status === 401 || err.status === 403) {
    showAuth(err.status === 401 ? "This server needs an API key: enter it here." : `The key was refused: ${err.message}`);
    setFormError("An API key is needed: enter it at the top of the page.", "auth");
    inputEl("api-key").focus();
    return;
  }
  const key = fieldKey(err.field);
  const message = friendlyMessage(err);
  if (key && errorSlot(key)) {
    showFieldError(key, message, err.field || key);
    return;
  }
  const text = key ? `${wordsFor(key)}: ${message}` : message;
  if (inJobPanel) update({ jobError: text });
  else setFormError(text, key || "");
}

/** Typing in a field (or choosing its file) makes its error out of date. @param {Event} e */
function clearErrorOfInput(e) {
  const t = e.target;
  // Tools and brush sizes sit inside the mask's area but do not change the mask.
  if (!(t instanceof HTMLElement) || (t instanceof HTMLInputElement && t.type === "radio")) return;
  if (/brush-size$|mask-file$|^mask-layer$/.test(t.id)) return;
  const owner = /** @type {HTMLElement | null} */ (t.closest("[data-field]"));
  if (owner && owner.dataset.field) clearFieldError(owner.dataset.field);
}

export function wireErrors() {
  document.addEventListener("input", clearErrorOfInput);
  document.addEventListener("change", clearErrorOfInput);
}

export function renderErrors() {
  for (const slot of all(document, "[data-error-for]")) {
    const key = /** @type {HTMLElement} */ (slot).dataset.errorFor || "";
    if (key !== "auth") setText(slot, state.errors[key]?.message || "");
  }
  const invalid = new Set(Object.keys(state.errors).map((key) => $(CONTROL_FOR[key] || `param-${key}`)));
  for (const el of all(document, ".is-invalid, [aria-invalid]")) {
    if (!invalid.has(/** @type {HTMLElement} */ (el))) {
      el.classList.remove("is-invalid");
      el.removeAttribute("aria-invalid");
    }
  }
  for (const control of invalid) {
    if (!control) continue;
    control.classList.add("is-invalid");
    if (control.matches("input, select, textarea")) control.setAttribute("aria-invalid", "true");
  }
  // A point's error names its pair ("points.2.1"): that pair's row is marked too.
  const idx = (state.errors.points?.field || "").split(".")[1];
  if (idx !== undefined) $("points-list").querySelector(`li[data-index="${CSS.escape(idx)}"]`)?.classList.add("is-invalid");
  setText($("form-error"), state.formError.text);
}
