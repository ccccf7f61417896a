// @ts-check
// The API key panel: asked for when the server requires keys or answers 401/403.

import { api, storeKey } from "./api.js";
import { $, buttonEl, inputEl, setText } from "./dom.js";
import { state, update } from "./state.js";

/** Open the panel with `message` under the key field. */
export function showAuth(message = "") {
  inputEl("api-key").value = api.key;
  update({ auth: { ...state.auth, shown: true, open: true, message } });
}

/** @param {() => Promise<void>} onKey what to retry once a key is saved */
export function wireAuth(onKey) {
  $("auth-toggle").addEventListener("click", () => {
    const open = !state.auth.open;
    update({ auth: { ...state.auth, open } });
    if (open) inputEl("api-key").focus();
  });
  buttonEl("api-key-save").addEventListener("click", async () => {
    api.key = inputEl("api-key").value.trim();
    storeKey(api.key);
    if (!api.key) {
      update({ auth: { ...state.auth, message: "Enter a key first." } });
      return;
    }
    update({
      auth: { ...state.auth, message: "", hint: "Key saved in this browser." },
      errors: {},
      formError: { text: "", about: "" },
    });
    await onKey();
  });
  buttonEl("api-key-forget").addEventListener("click", () => {
    api.key = "";
    storeKey("");
    inputEl("api-key").value = "";
    update({ auth: { ...state.auth, hint: "Key removed from this browser." } });
  });
}

export function renderAuth() {
  const { auth, info } = state;
  $("auth").hidden = !auth.open;
  const toggle = $("auth-toggle");
  toggle.hidden = !(auth.shown || info?.auth_required);
  toggle.setAttribute("aria-expanded", String(auth.open));
  setText($("api-key-error"), auth.message);
  if (auth.hint) setText($("api-key-hint"), auth.hint);
}
