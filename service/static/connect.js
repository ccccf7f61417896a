// @ts-check
// Starting up: the server's facts (GET /v1/info), its tasks (GET /v1/tasks) and its samples.

import { api } from "./api.js";
import { showAuth } from "./auth.js";
import { showApiError } from "./errors.js";
import { loadSamples } from "./samples.js";
import { setTask } from "./settings.js";
import { state, update } from "./state.js";
import { tasksFrom } from "./tasks.js";

export async function connect() {
  update({ serverError: false });
  let info;
  try {
    info = await api.info();
  } catch (err) {
    const e = /** @type {import("./api.js").ApiError} */ (err);
    if (e.status === 401 || e.status === 403) {
      update({ serverStatus: "An API key is needed." });
      showAuth(e.message);
      return;
    }
    update({ serverStatus: e.status === 0 ? "Cannot reach the server." : `Server error: ${e.message}`, serverError: true });
    return;
  }
  update({ info });
  if (info.auth_required && !api.key) showAuth("This server requires an API key.");
  await loadTasks();
  update({ serverStatus: `Connected${info.version ? ` · v${info.version}` : ""}${info.demo_model ? " · demo model" : ""}` });
  await loadSamples();
}

export async function loadTasks() {
  let failure = null;
  try {
    update({ tasks: tasksFrom(await api.tasks(), state.info?.default_resolution) });
  } catch (err) {
    failure = err;
  }
  setTask(state.task, { force: true }); // (clears errors: the failure is shown after it)
  if (failure) showApiError(failure);
}

/** A key was saved: retry what it was needed for. */
export async function retryWithKey() {
  if (!state.info) await connect();
  else if (!Object.keys(state.tasks).length) await loadTasks();
}
