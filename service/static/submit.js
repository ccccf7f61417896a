// @ts-check
// Run edit: the task's params and file parts from the page, sent as one multipart POST. The page
// leaves out what is missing and lets the API judge the rest, so every input rule lives there.

import { api } from "./api.js";
import { $, inputEl, textareaEl } from "./dom.js";
import { clearErrors, showApiError, showFieldError } from "./errors.js";
import { jobUnderWay, startJob } from "./jobs.js";
import { collectParamValues } from "./params.js";
import { mainStage, refStage } from "./stages.js";
import { state, update } from "./state.js";
import { takes, takesFile, taskDef } from "./tasks.js";

/** @returns {{params: Record<string, unknown>} | {error: [string, string]}} */
function buildParams() {
  const task = state.task;
  /** @type {Record<string, unknown>} */
  const params = { task, ...collectParamValues($("main-params"), $("advanced-params")) };
  params.prompt = textareaEl("prompt").value;
  if (takes(task, "reference_prompt")) params.reference_prompt = textareaEl("reference_prompt").value;
  if (inputEl("steps").value.trim() !== "") params.steps = Number(inputEl("steps").value);
  if (!inputEl("seed-random").checked) {
    if (inputEl("seed").value.trim() === "") return { error: ["seed", "Enter a seed or tick “Random”."] };
    params.seed = Number(inputEl("seed").value);
  }
  if (takes(task, "offset")) params.offset = [...state.offset];
  if (takes(task, "scale") && inputEl("scale").value.trim() !== "") params.scale = Number(inputEl("scale").value);
  // No pairs yet: `points` is left out, and the API's missing_field names it.
  if (takes(task, "points") && state.points.length) params.points = state.points.map((p) => p.map(Number));
  return { params };
}

/** @param {Record<string, unknown>} params */
async function buildForm(params) {
  const task = state.task;
  const fd = new FormData();
  fd.append("params", JSON.stringify(params));
  // Missing inputs are left out on purpose: the API names what is missing and the page shows it.
  if (state.image) fd.append("image", state.image, state.imageName);
  if (takesFile(task, "mask") && mainStage.hasImage) {
    fd.append("mask", await mainStage.masks.object.toPngBlob(), "mask.png");
  }
  if (takesFile(task, "region_mask") && mainStage.hasImage && mainStage.masks.region.coverage() > 0) {
    fd.append("region_mask", await mainStage.masks.region.toPngBlob(), "region_mask.png");
  }
  if (takesFile(task, "reference") && state.reference) fd.append("reference", state.reference, state.referenceName);
  if (takesFile(task, "reference_mask") && refStage.hasImage) {
    fd.append("reference_mask", await refStage.masks.reference.toPngBlob(), "reference_mask.png");
  }
  const ip = inputEl("image-prompt-file").files?.[0];
  if (ip && takesFile(task, "image_prompt")) fd.append("image_prompt", ip, ip.name);
  return fd;
}

/** @param {() => Promise<void>} loadTasks to try again when /v1/tasks has not answered yet */
export async function submit(loadTasks) {
  if (jobUnderWay()) return; // Run is disabled then; a stray Enter must not queue a duplicate either
  clearErrors();
  // What the task takes comes from /v1/tasks: without it there is nothing to build (its
  // failure is shown by loadTasks).
  if (!taskDef(state.task)) {
    await loadTasks();
    if (!taskDef(state.task)) return;
  }
  const built = buildParams();
  if ("error" in built) {
    showFieldError(...built.error);
    return;
  }
  update({ sending: true });
  try {
    const fd = await buildForm(built.params);
    const job = await api.submit(fd);
    startJob(job, { originalUrl: state.imageUrl });
    $("job").scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (err) {
    showApiError(err);
  } finally {
    update({ sending: false });
  }
}
