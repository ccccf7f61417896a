// @ts-check
// Sample scenes (GET /v1/samples): one click loads a scene's task, images, masks and settings, as
// if the person had chosen, painted and typed them. A server without samples hides the row.

import { api } from "./api.js";
import { $, inputEl, setText, whenChanged } from "./dom.js";
import { writeScale, setOffset } from "./marks.js";
import { resetSettings } from "./settings.js";
import { mainStage, refStage } from "./stages.js";
import { state, update } from "./state.js";
import { knownTask, pickTool } from "./tasks.js";
import { setMainImage, setMaskImage, setReference } from "./uploads.js";

/** @typedef {import("./types.js").Sample} Sample */
/** @typedef {import("./types.js").PointPair} PointPair */

export async function loadSamples() {
  /** @type {Sample[]} */
  let list;
  try {
    list = await api.samples();
  } catch {
    list = [];
  }
  const samples = Array.isArray(list) ? list.filter((s) => s && s.name && s.files && s.params) : [];
  update({ samples });
}

/** @param {string} message */
function sampleError(message) {
  update({ samplesStatus: "", errors: { ...state.errors, samples: { message, field: "samples" } } });
}

/** @param {Sample} sample */
async function loadSample(sample) {
  const gen = state.sampleGen + 1;
  const title = sample.title || sample.name;
  const errors = { ...state.errors };
  delete errors.samples;
  update({ sampleGen: gen, errors, samplesStatus: `Loading “${title}”…` });
  /** @type {Record<string, Blob>} */
  let files;
  try {
    const entries = Object.entries(sample.files);
    const blobs = await Promise.all(entries.map(([, path]) => api.sampleFile(path)));
    files = Object.fromEntries(entries.map(([field], i) => [field, blobs[i]]));
  } catch (err) {
    if (gen !== state.sampleGen) return;
    sampleError(`The sample could not be loaded: ${/** @type {Error} */ (err).message}`);
    return;
  }
  if (gen !== state.sampleGen) return;
  const params = sample.params;
  const task = typeof params.task === "string" && knownTask(params.task) ? params.task : sample.task;
  resetSettings(task);
  inputEl("image-prompt-file").value = "";

  const ok =
    (await setMainImage(files.image, `sample-${sample.name}.png`)) &&
    (!files.mask || (await setMaskImage(mainStage, mainStage.masks.object, files.mask, "mask"))) &&
    (!files.region_mask || (await setMaskImage(mainStage, mainStage.masks.region, files.region_mask, "region_mask"))) &&
    (!files.reference || (await setReference(files.reference, `sample-${sample.name}-reference.png`))) &&
    (!files.reference_mask ||
      (await setMaskImage(refStage, refStage.masks.reference, files.reference_mask, "reference_mask")));
  if (gen !== state.sampleGen) return;
  if (!ok) {
    sampleError(`The sample “${title}” could not be loaded completely.`);
    return;
  }
  applySampleParams(params);
  // Its masks are there already: start on the tool that adjusts what is left to mark.
  update({
    maskLayer: "object",
    tool: pickTool(task, ["move", "points", "brush"]),
    samplesStatus: `Loaded “${title}”: press Run edit, or change anything first.`,
  });
}

/**
 * The sample's values into the page's fields, marked as typed so a task switch keeps them.
 * @param {Record<string, unknown>} params
 */
function applySampleParams(params) {
  const typed = (/** @type {HTMLInputElement | HTMLTextAreaElement} */ input, /** @type {unknown} */ value) => {
    input.value = String(value);
    input.dataset.dirty = "1";
  };
  for (const [name, value] of Object.entries(params)) {
    if (name === "task" || value === null || value === undefined) continue;
    if (name === "offset") {
      const [dx, dy] = /** @type {unknown[]} */ (value);
      setOffset(Number(dx) || 0, Number(dy) || 0);
    } else if (name === "points") {
      const points = /** @type {unknown[][]} */ (value).map((p) => /** @type {PointPair} */ (p.map(Number)));
      update({ points, pending: null });
    } else if (name === "scale") {
      writeScale(value);
      inputEl("scale").dataset.dirty = "1";
    } else if (name === "seed") {
      inputEl("seed-random").checked = false;
      inputEl("seed").disabled = false;
      typed(inputEl("seed"), value);
    } else if (name === "prompt" || name === "reference_prompt" || name === "steps") {
      typed(/** @type {HTMLInputElement} */ ($(name)), value);
    } else if ($(`param-${name}`)) {
      typed(inputEl(`param-${name}`), value);
    }
  }
  if (params.seed === undefined || params.seed === null) {
    inputEl("seed-random").checked = true;
    inputEl("seed").disabled = true;
  }
  update();
}

export function renderSamples() {
  whenChanged("samples", [state.samples], () => {
    const ul = $("sample-list");
    ul.replaceChildren();
    for (const sample of state.samples) {
      const li = document.createElement("li");
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "sample-button";
      btn.dataset.sample = sample.name;
      if (sample.files.image) {
        const img = document.createElement("img");
        img.src = api.base + sample.files.image;
        img.alt = "";
        img.width = 40;
        img.height = 40;
        btn.append(img);
      }
      const text = document.createElement("span");
      text.textContent = sample.title || sample.name;
      btn.append(text);
      btn.addEventListener("click", () => loadSample(sample));
      li.append(btn);
      ul.append(li);
    }
    $("samples").hidden = state.samples.length === 0;
  });
  setText($("samples-status"), state.samplesStatus);
}
