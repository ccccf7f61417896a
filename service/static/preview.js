// @ts-check
// What the main stage shows on top of the image: the point pairs, and for move and paste a faint
// copy of the object where the edit will put it, with its offset arrow.

import { whenChanged } from "./dom.js";
import { scaleFactor } from "./marks.js";
import { mainStage, refStage } from "./stages.js";
import { state } from "./state.js";
import { takes } from "./tasks.js";

/** @typedef {import("./stage.js").MaskLayer} MaskLayer */
/** @typedef {{canvas: HTMLCanvasElement, cx: number, cy: number}} Cut */

/** @type {Cut | null} */
let cut = null;
/** @type {unknown[]} */
let cutDeps = [];

/**
 * The masked object (move) or the masked reference stretched to the image (paste), kept until
 * the task, an image or a mask changes.
 * @returns {Cut | null}
 */
function objectCut() {
  const deps = [state.task, state.maskVersion, state.image, state.reference];
  if (deps.every((d, i) => Object.is(d, cutDeps[i]))) return cut;
  cutDeps = deps;
  cut = makeCut();
  return cut;
}

function makeCut() {
  const w = mainStage.width;
  const h = mainStage.height;
  let source;
  let mask;
  if (state.task === "move") {
    source = mainStage.base;
    mask = mainStage.masks.object;
  } else if (state.task === "paste" && refStage.hasImage) {
    source = refStage.base;
    mask = refStage.masks.reference;
  } else {
    return null;
  }
  const box = maskBox(mask);
  if (!box) return null;
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext("2d"));
  ctx.drawImage(source, 0, 0, w, h);
  ctx.globalCompositeOperation = "destination-in";
  ctx.drawImage(mask.canvas, 0, 0, w, h);
  return { canvas: c, cx: (box.cx * w) / mask.width, cy: (box.cy * h) / mask.height };
}

/** The centre of the mask's bounding box, or null for an empty mask. @param {MaskLayer} layer */
function maskBox(layer) {
  if (!layer.width) return null;
  const px = layer.ctx.getImageData(0, 0, layer.width, layer.height).data;
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < layer.height; y++) {
    for (let x = 0; x < layer.width; x++) {
      if (px[(y * layer.width + x) * 4 + 3] >= 128) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  return x1 < 0 ? null : { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2 };
}

export function renderPreview() {
  const deps = [state.task, state.tasks, state.points, state.pending, state.offset[0], state.offset[1], scaleFactor()];
  whenChanged("preview", [...deps, state.maskVersion, state.layoutVersion, state.image, state.reference], drawPreview);
}

function drawPreview() {
  if (!mainStage.hasImage) return;
  const task = state.task;
  mainStage.clearGhost();
  if (takes(task, "points")) {
    mainStage.drawPoints(state.points, state.pending);
    return;
  }
  if (!takes(task, "offset")) {
    mainStage.drawPoints([], null);
    return;
  }
  const [dx, dy] = state.offset;
  const r = scaleFactor();
  const c = objectCut();
  if (!c) {
    mainStage.drawVector(0, 0, 0, 0);
    return;
  }
  const C = { x: mainStage.width / 2, y: mainStage.height / 2 };
  const ctx = /** @type {CanvasRenderingContext2D} */ (mainStage.ghost.getContext("2d"));
  ctx.save();
  // Where the engine puts the object: move shifts then scales about the centre; paste scales
  // about the centre then shifts (algorithm §8.1, §8.5).
  if (task === "move") {
    ctx.translate(C.x, C.y);
    ctx.scale(r, r);
    ctx.translate(-C.x + dx, -C.y + dy);
  } else {
    ctx.translate(C.x + dx, C.y + dy);
    ctx.scale(r, r);
    ctx.translate(-C.x, -C.y);
  }
  if (task === "paste" || dx !== 0 || dy !== 0 || r !== 1) ctx.drawImage(c.canvas, 0, 0);
  ctx.restore();
  if (task === "move") {
    const tx = C.x + r * (c.cx + dx - C.x);
    const ty = C.y + r * (c.cy + dy - C.y);
    mainStage.drawVector(c.cx, c.cy, tx - c.cx, ty - c.cy);
  } else {
    const sx = C.x + r * (c.cx - C.x);
    const sy = C.y + r * (c.cy - C.y);
    mainStage.drawVector(sx, sy, dx, dy);
  }
}
