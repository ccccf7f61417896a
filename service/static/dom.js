// @ts-check
// Typed look-ups of the page's elements by id (index.html holds them all).

/** @param {string} id */
export function $(id) {
  return /** @type {HTMLElement} */ (document.getElementById(id));
}

/** @param {string} id */
export function inputEl(id) {
  return /** @type {HTMLInputElement} */ (document.getElementById(id));
}

/** @param {string} id */
export function buttonEl(id) {
  return /** @type {HTMLButtonElement} */ (document.getElementById(id));
}

/** @param {string} id */
export function textareaEl(id) {
  return /** @type {HTMLTextAreaElement} */ (document.getElementById(id));
}

/** @param {string} id */
export function selectEl(id) {
  return /** @type {HTMLSelectElement} */ (document.getElementById(id));
}

/** @param {string} id */
export function imgEl(id) {
  return /** @type {HTMLImageElement} */ (document.getElementById(id));
}

/**
 * Set `el`'s text only when it differs: a live region (role=status, aria-live) is read out again
 * when its text node is replaced, even by the same words, and the page renders every second
 * while an edit runs.
 * @param {Element} el
 * @param {string} text
 */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * @template {Element} T
 * @param {Element | Document} root
 * @param {string} selector
 * @returns {T[]}
 */
export function all(root, selector) {
  return /** @type {T[]} */ (Array.from(root.querySelectorAll(selector)));
}

/**
 * Run `fn` only when `deps` differ from the last call's under the same `name`: the render's parts
 * that rebuild elements (lists, fields) or read whole canvases do so only when their input changed.
 */
const lastDeps = new Map();
/**
 * @param {string} name
 * @param {unknown[]} deps
 * @param {() => void} fn
 */
export function whenChanged(name, deps, fn) {
  const prev = lastDeps.get(name);
  if (prev && prev.length === deps.length && deps.every((d, i) => Object.is(d, prev[i]))) return;
  lastDeps.set(name, deps);
  fn();
}
