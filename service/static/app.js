// @ts-check
// The editor page's entry point: wires the controls to the state and starts. Everything sent to
// the API is in the uploaded image's own pixels (see stage.js).

import { api } from "./api.js";
import { wireAuth } from "./auth.js";
import { connect, loadTasks, retryWithKey } from "./connect.js";
import { $, buttonEl, inputEl } from "./dom.js";
import { wireErrors } from "./errors.js";
import { cancelShownJob, follow } from "./jobs.js";
import { wireMarks } from "./marks.js";
import { loadRecent } from "./recent.js";
import { wireRecent } from "./recent-list.js";
import { render } from "./render.js";
import { setTask, storedTask, wireSettings } from "./settings.js";
import { mainStage, refStage } from "./stages.js";
import { setRenderer, state, update } from "./state.js";
import { submit } from "./submit.js";
import { setMainImage, wireUploads } from "./uploads.js";

setRenderer(render);
wireErrors();
wireAuth(retryWithKey);
wireSettings();
wireMarks();
wireUploads();
wireRecent();

buttonEl("submit").addEventListener("click", () => submit(loadTasks));
buttonEl("job-cancel").addEventListener("click", cancelShownJob);

inputEl("compare-range").addEventListener("input", () => {
  $("compare").style.setProperty("--split", `${inputEl("compare-range").value}%`);
});
buttonEl("result-edit").addEventListener("click", async () => {
  if (!state.resultBlob) return;
  const ok = await setMainImage(state.resultBlob, "result.png");
  if (ok) {
    $("image-title").scrollIntoView({ behavior: "smooth", block: "start" });
    update({ serverStatus: "The result is now the image to edit." });
  }
});
buttonEl("result-seed").addEventListener("click", () => {
  if (state.resultSeed === null) return;
  inputEl("seed-random").checked = false;
  const seed = inputEl("seed");
  seed.disabled = false;
  seed.value = String(state.resultSeed);
  seed.dataset.dirty = "1";
  seed.focus();
});

setTask(storedTask(), { force: true });
// Edits a previous visit left under way: their rows follow them to the end.
for (const item of loadRecent()) if (item.status === "queued" || item.status === "running") follow(item.id);
connect();

// For the browser tests and for debugging from the console.
Object.assign(window, { diffeditor: { state, mainStage, refStage, api } });
