// @ts-check
// The page's one render: every part of the page painted from the state. `update()` (state.js)
// calls it after each change; parts that rebuild elements or read whole canvases do so only
// when their inputs changed (`whenChanged`), the rest are set each time.

import { renderAuth } from "./auth.js";
import { $, setText } from "./dom.js";
import { renderErrors } from "./errors.js";
import { renderJob } from "./jobs.js";
import { renderMarks } from "./marks.js";
import { renderPreview } from "./preview.js";
import { renderRecent } from "./recent-list.js";
import { renderSamples } from "./samples.js";
import { renderTask } from "./settings.js";
import { state } from "./state.js";
import { renderUploads } from "./uploads.js";

export function render() {
  const status = $("server-status");
  setText(status, state.serverStatus);
  status.classList.toggle("is-error", state.serverError);
  $("demo-notice").hidden = !state.info?.demo_model;
  renderAuth();
  // The task first: it decides which controls are on show, and so which error slots are.
  renderTask();
  renderUploads();
  renderMarks();
  renderPreview();
  renderSamples();
  renderErrors();
  renderJob();
  renderRecent();
}
