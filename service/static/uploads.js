// @ts-check
// Step 1 and the reference: the image to edit, the reference image, and mask files, chosen or
// dropped. A new image replaces what was marked on it.

import { $, inputEl, setText } from "./dom.js";
import { clearFieldError, clearFieldErrors, showFieldError } from "./errors.js";
import { fitBrush } from "./marks.js";
import { mainStage, MASK_FIELD, refStage } from "./stages.js";
import { state, update } from "./state.js";

/** @typedef {import("./stage.js").Stage} Stage */
/** @typedef {import("./stage.js").MaskLayer} MaskLayer */

const NOT_AN_IMAGE = "This file cannot be opened as an image. Use a PNG, JPEG or WebP file.";

// Errors about what an image change replaces: the image itself and what was marked on it.
const IMAGE_FIELDS = ["image", "mask", "region_mask", "points", "offset"];
const REFERENCE_FIELDS = ["reference", "reference_mask"];

/** @param {Blob} blob @returns {Promise<{img: HTMLImageElement, url: string}>} */
function loadImage(blob) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(blob);
    const img = new Image();
    img.onload = () => resolve({ img, url });
    img.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error("not an image"));
    };
    img.src = url;
  });
}

/**
 * The blob as an image, or null after saying at `key` that it is not one.
 * @param {Blob} blob @param {string} key
 */
async function openImage(blob, key) {
  try {
    return await loadImage(blob);
  } catch {
    showFieldError(key, NOT_AN_IMAGE);
    return null;
  }
}

/** The image to edit; false when it cannot be opened. @param {Blob} blob @param {string} [name] */
export async function setMainImage(blob, name) {
  clearFieldError("image");
  const loaded = await openImage(blob, "image");
  if (!loaded) return false;
  // An image some edit was made from stays: it is that edit's "before" picture.
  if (state.imageUrl && ![...state.originals.values()].includes(state.imageUrl)) URL.revokeObjectURL(state.imageUrl);
  mainStage.setImage(loaded.img);
  fitBrush(mainStage, "brush-size", "brush-size-out");
  clearFieldErrors(IMAGE_FIELDS);
  update({ image: blob, imageName: name || "image.png", imageUrl: loaded.url, points: [], pending: null, offset: [0, 0] });
  return true;
}

/** The reference image; false when it cannot be opened. @param {Blob} blob @param {string} [name] */
export async function setReference(blob, name) {
  clearFieldError("reference");
  const loaded = await openImage(blob, "reference");
  if (!loaded) return false;
  refStage.setImage(loaded.img);
  URL.revokeObjectURL(loaded.url);
  fitBrush(refStage, "ref-brush-size", "ref-brush-size-out");
  clearFieldErrors(REFERENCE_FIELDS);
  update({ reference: blob, referenceName: name || "reference.png" });
  return true;
}

/**
 * A mask image (an uploaded file or a sample's mask) becomes `layer`'s painted mask. It must
 * have its image's size, as the API requires: the page says so rather than stretching it.
 * @param {Stage} stage
 * @param {MaskLayer} layer
 * @param {Blob} blob
 * @param {string} key the API part it is sent as, for the error slot
 */
export async function setMaskImage(stage, layer, blob, key) {
  clearFieldError(key);
  const owner = key === "reference_mask" ? "reference image" : "image";
  if (!stage.hasImage) {
    showFieldError(key, `Load the ${owner} first, then its mask.`);
    return false;
  }
  const loaded = await openImage(blob, key);
  if (!loaded) return false;
  const { img, url } = loaded;
  const w = img.naturalWidth;
  const h = img.naturalHeight;
  if (w !== stage.width || h !== stage.height) {
    URL.revokeObjectURL(url);
    const sizes = `This mask is ${w}×${h} but the ${owner} is ${stage.width}×${stage.height}`;
    showFieldError(key, `${sizes}: use a mask of the same size.`);
    return false;
  }
  layer.load(img);
  URL.revokeObjectURL(url);
  return true;
}

/** @param {HTMLElement} el @param {(file: File, name: string) => unknown} onFile */
function dropTarget(el, onFile) {
  el.addEventListener("dragover", (e) => {
    e.preventDefault();
    el.classList.add("is-over");
  });
  el.addEventListener("dragleave", () => el.classList.remove("is-over"));
  el.addEventListener("drop", (e) => {
    e.preventDefault();
    e.stopPropagation();
    el.classList.remove("is-over");
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) onFile(f, f.name);
  });
}

/**
 * The file chosen in `input`, which is then emptied: the same file chosen again loads again.
 * @param {HTMLInputElement} input
 */
function takeFile(input) {
  const f = input.files && input.files[0];
  input.value = "";
  return f || null;
}

export function wireUploads() {
  inputEl("image-file").addEventListener("change", () => {
    const f = inputEl("image-file").files?.[0];
    if (f) setMainImage(f, f.name);
  });
  inputEl("reference-file").addEventListener("change", () => {
    const f = inputEl("reference-file").files?.[0];
    if (f) setReference(f, f.name);
  });
  inputEl("mask-file").addEventListener("change", () => {
    const f = takeFile(inputEl("mask-file"));
    if (!f) return;
    const layer = mainStage.activeMask || mainStage.masks.object;
    const name = layer === mainStage.masks.region ? "region" : "object";
    setMaskImage(mainStage, layer, f, MASK_FIELD[name]);
  });
  inputEl("ref-mask-file").addEventListener("change", () => {
    const f = takeFile(inputEl("ref-mask-file"));
    if (f) setMaskImage(refStage, refStage.masks.reference, f, "reference_mask");
  });
  dropTarget($("image-drop"), setMainImage);
  dropTarget($("main-stage"), setMainImage);
  dropTarget($("reference-drop"), setReference);
  dropTarget($("reference-stage"), setReference);
  // A file dropped elsewhere must not navigate away from the page (and lose the work).
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}

export function renderUploads() {
  $("stage-placeholder").hidden = mainStage.hasImage;
  setText($("image-name"), state.image ? `${state.imageName} · ${mainStage.width}×${mainStage.height}` : "");
  $("reference-placeholder").hidden = refStage.hasImage;
  setText($("reference-name"), state.reference ? `${state.referenceName} · ${refStage.width}×${refStage.height}` : "");
}
