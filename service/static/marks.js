// @ts-check
// Step 3, marking the edit: tools, masks, handle → target points and the move/paste offset and
// scale. Event handlers change the state; renderMarks paints it.

import { $, all, buttonEl, inputEl, selectEl, setText, whenChanged } from "./dom.js";
import { clearFieldError, showFieldError } from "./errors.js";
import { mainStage, MASK_FIELD, refStage } from "./stages.js";
import { state, update } from "./state.js";
import { takes, toolsFor } from "./tasks.js";

/** @typedef {import("./types.js").Tool} Tool */
/** @typedef {import("./types.js").PointPair} PointPair */
/** @typedef {import("./stage.js").Stage} Stage */

const POINT_FIELDS = /** @type {[string, number][]} */ ([
  ["Handle x", 0],
  ["Handle y", 1],
  ["Target x", 2],
  ["Target y", 3],
]);

/** Offset by dragging or typing, rounded to whole pixels as the fields show it. @param {number} dx @param {number} dy */
export function setOffset(dx, dy) {
  clearFieldError("offset");
  update({ offset: [Math.round(dx), Math.round(dy)] });
}

/** The scale field holds the factor that is sent; the slider shows its logarithm. @param {unknown} v */
export function writeScale(v) {
  const n = Number(v);
  inputEl("scale").value = String(n);
  inputEl("scale-range").value = String(n > 0 ? Math.log10(n) : inputEl("scale-range").min);
  writeScaleWords(n);
}

/** @param {number} n */
function writeScaleWords(n) {
  setText($("scale-out"), n.toFixed(2));
  inputEl("scale-range").setAttribute("aria-valuetext", `${n.toFixed(2)}×`);
}

/** The scale the preview shows: the field's factor, 1 while it is empty or not a number. */
export function scaleFactor() {
  return Number(inputEl("scale").value) || 1;
}

/**
 * Brush sizes are in image pixels, so a sensible start depends on the image's size.
 * @param {Stage} stage
 * @param {string} rangeId
 * @param {string} outId
 */
export function fitBrush(stage, rangeId, outId) {
  const side = Math.max(stage.width, stage.height);
  const range = inputEl(rangeId);
  range.max = String(Math.max(8, Math.round(side / 3)));
  range.value = String(Math.max(2, Math.round(side / 16)));
  stage.brushSize = Number(range.value);
  $(outId).textContent = range.value;
}

export function wireMarks() {
  for (const radio of all(document, 'input[name="main-tool"]')) {
    const r = /** @type {HTMLInputElement} */ (radio);
    r.addEventListener("change", () => update({ tool: /** @type {Tool} */ (r.value) }));
  }
  for (const radio of all(document, 'input[name="ref-tool"]')) {
    const r = /** @type {HTMLInputElement} */ (radio);
    r.addEventListener("change", () => refStage.setTool(/** @type {Tool} */ (r.value)));
  }
  selectEl("mask-layer").addEventListener("change", () => {
    update({ maskLayer: selectEl("mask-layer").value === "region" ? "region" : "object" });
  });
  bindBrushSize("brush-size", "brush-size-out", mainStage);
  bindBrushSize("ref-brush-size", "ref-brush-size-out", refStage);
  bindMaskButtons("mask", () => mainStage.activeMask);
  bindMaskButtons("ref-mask", () => refStage.masks.reference);
  // A mask changed (painted, uploaded, undone, reset with a new image): its error is out of date.
  for (const stage of [mainStage, refStage]) {
    for (const [name, layer] of Object.entries(stage.masks)) {
      layer.onchange = () => {
        clearFieldError(MASK_FIELD[name]);
        update({ maskVersion: state.maskVersion + 1 });
      };
    }
  }

  // Points: a click sets a handle, the next click its target.
  mainStage.addEventListener("point", (e) => {
    const d = /** @type {CustomEvent<{x: number, y: number}>} */ (e).detail;
    const p = { x: Math.round(d.x), y: Math.round(d.y) };
    clearFieldError("points");
    if (state.pending) {
      update({ points: [...state.points, [state.pending.x, state.pending.y, p.x, p.y]], pending: null });
    } else {
      update({ pending: p });
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.pending) update({ pending: null });
  });
  buttonEl("points-add").addEventListener("click", () => {
    if (!mainStage.hasImage) {
      showFieldError("points", "Upload an image first.");
      return;
    }
    const w = mainStage.width;
    const h = mainStage.height;
    const cx = Math.round(w / 2);
    const cy = Math.round(h / 2);
    update({ points: [...state.points, [cx, cy, Math.min(w - 1, cx + Math.round(w / 8)), cy]] });
    inputEl(`point-${state.points.length - 1}-0`).focus();
  });
  buttonEl("points-clear").addEventListener("click", () => update({ points: [], pending: null }));

  // Offset by dragging: the drag adds to the offset the object already has.
  mainStage.addEventListener("vectorstart", () => update({ offsetAtDragStart: state.offset }));
  for (const type of ["vector", "vectorend"]) {
    mainStage.addEventListener(type, (e) => {
      const d = /** @type {CustomEvent<{dx: number, dy: number}>} */ (e).detail;
      const [bx, by] = state.offsetAtDragStart || [0, 0];
      setOffset(bx + d.dx, by + d.dy);
    });
  }
  for (const id of ["offset-dx", "offset-dy"]) {
    inputEl(id).addEventListener("input", () => {
      update({ offset: [Number(inputEl("offset-dx").value) || 0, Number(inputEl("offset-dy").value) || 0] });
    });
  }
  buttonEl("offset-reset").addEventListener("click", () => setOffset(0, 0));

  inputEl("scale-range").addEventListener("input", () => {
    inputEl("scale").dataset.dirty = "1";
    // Two decimals, as shown: 10^0.3 is sent as 2, not 1.9953. The slider itself is left where it
    // is (setting it back from the rounded factor would pin it at the ends of the track).
    const n = Math.round(10 ** Number(inputEl("scale-range").value) * 100) / 100;
    inputEl("scale").value = String(n);
    writeScaleWords(n);
    update();
  });
  inputEl("scale").addEventListener("input", () => {
    if (inputEl("scale").value.trim() === "") return;
    const n = Number(inputEl("scale").value);
    if (n > 0) inputEl("scale-range").value = String(Math.log10(n));
    writeScaleWords(n);
    update();
  });
  mainStage.addEventListener("resize", () => update({ layoutVersion: state.layoutVersion + 1 }));
}

/** @param {string} rangeId @param {string} outId @param {Stage} stage */
function bindBrushSize(rangeId, outId, stage) {
  inputEl(rangeId).addEventListener("input", () => {
    stage.brushSize = Number(inputEl(rangeId).value);
    $(outId).textContent = inputEl(rangeId).value;
  });
}

/** @param {string} prefix @param {() => import("./stage.js").MaskLayer | null} getLayer */
function bindMaskButtons(prefix, getLayer) {
  buttonEl(`${prefix}-undo`).addEventListener("click", () => getLayer()?.undo());
  buttonEl(`${prefix}-clear`).addEventListener("click", () => getLayer()?.clear());
  buttonEl(`${prefix}-fill`).addEventListener("click", () => getLayer()?.fill());
  buttonEl(`${prefix}-invert`).addEventListener("click", () => getLayer()?.invert());
}

/** @param {{x: number, y: number} | null} pending */
function stageHint(pending) {
  const words = /** @type {Record<Tool, string>} */ ({
    brush: "Brush: paint the mask by dragging on the image.",
    eraser: "Eraser: drag to remove parts of the mask.",
    move: state.task === "paste" ? "Drag on the image to place the pasted object." : "Drag the object to its new place.",
    points: pending
      ? `Handle set at (${Math.round(pending.x)}, ${Math.round(pending.y)}): now click its target. Esc cancels.`
      : "Points: click a handle, then its target.",
    none: "",
  });
  return mainStage.hasImage ? words[mainStage.tool] || "" : "";
}

export function renderMarks() {
  const { task } = state;
  // The tool: the state's if this task offers it, else the task's first.
  const tools = toolsFor(task);
  const tool = tools.includes(state.tool) ? state.tool : tools[0] || "none";
  for (const radio of all(document, 'input[name="main-tool"]')) {
    const r = /** @type {HTMLInputElement} */ (radio);
    r.checked = r.value === tool;
  }
  if (mainStage.tool !== tool) mainStage.setTool(tool);
  setText($("stage-hint"), stageHint(state.pending));
  setText($("tool-move-label"), task === "paste" ? "Place object" : "Drag object");

  const layer = takes(task, "region_mask") ? state.maskLayer : "object";
  selectEl("mask-layer").value = layer;
  mainStage.activeMask = mainStage.masks[layer];
  whenChanged("mask-buttons", [state.maskVersion, layer, mainStage.width, refStage.width], renderMaskButtons);

  whenChanged("points-rows", [state.points.length], renderPointRows);
  // Values typed into a row stay as typed; the rest show the state's.
  state.points.forEach((pair, i) => {
    for (const [, k] of POINT_FIELDS) {
      const input = inputEl(`point-${i}-${k}`);
      if (input && input !== document.activeElement && Number(input.value) !== pair[k]) input.value = String(pair[k]);
    }
  });
  buttonEl("points-clear").disabled = state.points.length === 0;

  state.offset.forEach((v, i) => {
    const input = inputEl(i === 0 ? "offset-dx" : "offset-dy");
    if (input !== document.activeElement && (Number(input.value) || 0) !== v) input.value = String(v);
  });
}

function renderMaskButtons() {
  const layer = mainStage.activeMask;
  buttonEl("mask-undo").disabled = !layer || !layer.canUndo();
  for (const id of ["mask-clear", "mask-fill", "mask-invert"]) buttonEl(id).disabled = !mainStage.hasImage;
  const ref = refStage.masks.reference;
  buttonEl("ref-mask-undo").disabled = !ref.canUndo();
  for (const id of ["ref-mask-clear", "ref-mask-fill", "ref-mask-invert"]) buttonEl(id).disabled = !refStage.hasImage;
  if (mainStage.hasImage && layer) {
    const pct = layer.coverage() * 100;
    const shown = pct < 1 ? "<1" : Math.round(pct);
    setText($("mask-coverage"), pct > 0 ? `Mask covers ${shown}% of the image.` : "Mask is empty.");
  } else {
    setText($("mask-coverage"), "");
  }
}

/** One row of four number fields per pair, rebuilt when pairs come or go. */
function renderPointRows() {
  const list = $("points-list");
  list.replaceChildren();
  state.points.forEach((pair, i) => {
    const li = document.createElement("li");
    li.dataset.index = String(i);
    const no = document.createElement("span");
    no.className = "pair-no";
    no.textContent = `${i + 1}`;
    no.setAttribute("aria-hidden", "true");
    li.append(no);
    for (const [label, k] of POINT_FIELDS) {
      const id = `point-${i}-${k}`;
      const wrap = document.createElement("div");
      const lab = document.createElement("label");
      lab.htmlFor = id;
      lab.innerHTML = `${label}<span class="sr-only"> of pair ${i + 1}</span>`;
      const input = document.createElement("input");
      input.type = "number";
      input.id = id;
      input.step = "1";
      input.min = "0";
      input.inputMode = "numeric";
      input.value = String(pair[k]);
      input.addEventListener("input", () => {
        if (input.value.trim() === "") return;
        const points = state.points.map((p) => /** @type {PointPair} */ ([...p]));
        points[i][k] = Number(input.value);
        update({ points });
      });
      wrap.append(lab, input);
      li.append(wrap);
    }
    const rm = document.createElement("button");
    rm.type = "button";
    rm.className = "pair-remove";
    rm.textContent = "Remove";
    rm.setAttribute("aria-label", `Remove pair ${i + 1}`);
    rm.addEventListener("click", () => {
      update({ points: state.points.filter((_, j) => j !== i) });
      const next = /** @type {HTMLElement | null} */ ($("points-list").querySelector("button")) || buttonEl("points-add");
      next.focus();
    });
    li.append(rm);
    list.append(li);
  });
}
