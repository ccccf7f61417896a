// The editor page: wires the controls, the drawing stages and the /v1 API together.
// Everything sent to the API is in the uploaded image's own pixels (see stage.js).

import { Api, ApiError, storeKey } from "./api.js";
import { buildParamFields, collectParamValues, dirtyValues, labelFor, rangeOf } from "./params.js";
import { clearRecent, loadRecent, thumbnail, upsertRecent } from "./recent.js";
import { Stage } from "./stage.js";

const $ = (id) => document.getElementById(id);
const api = new Api();

// Used only until GET /v1/tasks answers (or if it cannot): the same table as diffeditor/tasks.py.
const FALLBACK_FILES = {
  move: { required: ["image", "mask"], optional: ["region_mask", "image_prompt"] },
  drag: { required: ["image", "mask"], optional: ["image_prompt"] },
  landmark: { required: ["image"], optional: ["image_prompt"] },
  appearance: { required: ["image", "mask", "reference", "reference_mask"], optional: ["image_prompt"] },
  paste: { required: ["image", "reference", "reference_mask"], optional: ["image_prompt"] },
};

const TASK_HINTS = {
  move: "Paint over the object with the Brush, then pick “Drag object” and drag it to its new place. The scale slider resizes it.",
  drag: "Paint the area that may change, then pick Points: click a handle, then where it should go. Add as many pairs as you like.",
  landmark: "Pick Points: click a face landmark (an eye corner, the chin…), then where it should move.",
  appearance: "Paint the area to restyle on the image, then upload a reference and paint the part whose look to copy.",
  paste: "Upload a reference and paint the object to paste on it, then drag on the image to place it. The scale slider resizes it.",
};

const DEFAULT_TOOL = { move: "brush", drag: "brush", landmark: "points", appearance: "brush", paste: "move" };
// A loaded sample has its masks already: start on the tool that adjusts what is left to mark.
const SAMPLE_TOOL = { move: "move", drag: "points", landmark: "points", appearance: "brush", paste: "move" };
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const POLL_MS = 400;
const BACKGROUND_POLL_MS = 2000; // an edit no longer on show, still followed for the recent list

const state = {
  info: null,
  tasks: {}, // name -> {description, files, schema}
  task: "move",
  image: null, // Blob sent as `image`
  imageName: "image.png",
  imageUrl: null,
  reference: null,
  referenceName: "reference.png",
  points: [], // [[x1, y1, x2, y2]] in image pixels
  pending: null, // a handle waiting for its target
  offsetAtDragStart: null,
  objectCut: null, // cached masked object / reference for the move & paste previews
  job: null, // the edit on show in the job panel: {id, task, resultShown}
  jobs: new Map(), // id -> {job (its latest status), expired, etaAt}: what the panel and the recent list show
  following: new Set(), // ids being polled until they end
  originals: new Map(), // id -> object URL of the image the edit was made from
  ticker: null, // the 1 s timer of the elapsed time
  sending: false,
  resultBlob: null,
  resultUrl: null,
  resultSeed: null,
  samples: [], // GET /v1/samples
  sampleGen: 0, // the latest sample click; an older one still loading gives way
};

const mainStage = new Stage($("main-stage"), { object: "rgb(255, 45, 85)", region: "rgb(30, 190, 110)" });
const refStage = new Stage($("reference-stage"), { reference: "rgb(255, 45, 85)" });
refStage.setTool("brush");

// ---------------------------------------------------------------- server info, key, tasks

async function connect() {
  const status = $("server-status");
  status.classList.remove("is-error");
  try {
    state.info = await api.info();
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      status.textContent = "An API key is needed.";
      showAuth(err.message);
      return;
    }
    status.textContent = err.status === 0 ? "Cannot reach the server." : `Server error: ${err.message}`;
    status.classList.add("is-error");
    return;
  }
  const info = state.info;
  $("demo-notice").hidden = !info.demo_model;
  $("auth-toggle").hidden = !info.auth_required;
  if (info.auth_required && !api.key) showAuth("This server requires an API key.");
  status.textContent = `Connected${info.version ? ` · v${info.version}` : ""}${info.demo_model ? " · demo model" : ""}`;
  await loadTasks();
  await loadSamples();
}

// The working size starts at what the ready workers use when an edit sends none
// (GET /v1/info `default_resolution`: the demo model's 128, real weights' 768 on a GPU…), so the
// page never guesses the model; without it, the schema's own default (empty: the server decides).
function serverDefaults(schema) {
  const prop = schema?.properties?.max_resolution;
  const res = state.info?.default_resolution;
  if (!prop || res === null || res === undefined) return schema;
  return { ...schema, properties: { ...schema.properties, max_resolution: { ...prop, default: res } } };
}

async function loadTasks() {
  let failure = null;
  try {
    const data = await api.tasks();
    const list = Array.isArray(data) ? data : data.tasks || [];
    for (const t of list) {
      state.tasks[t.name] = { description: t.description || "", files: t.files, schema: serverDefaults(t.params_schema) };
    }
  } catch (err) {
    failure = err;
  }
  setTask(state.task, { force: true }); // (clears errors: the failure is shown after it)
  if (failure) showApiError(failure);
}

function showAuth(message = "") {
  $("auth").hidden = false;
  $("auth-toggle").hidden = false;
  $("auth-toggle").setAttribute("aria-expanded", "true");
  $("api-key").value = api.key;
  $("api-key-error").textContent = message;
}

$("auth-toggle").addEventListener("click", () => {
  const open = $("auth").hidden;
  $("auth").hidden = !open;
  $("auth-toggle").setAttribute("aria-expanded", String(open));
  if (open) $("api-key").focus();
});

$("api-key-save").addEventListener("click", async () => {
  api.key = $("api-key").value.trim();
  storeKey(api.key);
  $("api-key-error").textContent = api.key ? "" : "Enter a key first.";
  if (!api.key) return;
  $("api-key-hint").textContent = "Key saved in this browser.";
  clearErrors();
  if (!state.info) await connect();
  else if (!Object.keys(state.tasks).length) await loadTasks();
});

$("api-key-forget").addEventListener("click", () => {
  api.key = "";
  storeKey("");
  $("api-key").value = "";
  $("api-key-hint").textContent = "Key removed from this browser.";
});

// ---------------------------------------------------------------- task switching

function filesFor(task) {
  return (state.tasks[task] && state.tasks[task].files) || FALLBACK_FILES[task];
}

function needsFile(task, name) {
  const f = filesFor(task);
  return f.required.includes(name) || f.optional.includes(name);
}

function schemaProps(task) {
  const t = state.tasks[task];
  return (t && t.schema && t.schema.properties) || {};
}

function setTask(task, { force = false } = {}) {
  if (!FALLBACK_FILES[task]) task = "move";
  if (task === state.task && !force) return;
  const keep = dirtyValues($("main-params"), $("advanced-params"));
  // The last edit's panel and result were the old task's: a new task starts without them.
  if (task !== state.task) clearJobView();
  state.task = task;
  try {
    localStorage.setItem("diffeditor.task", task);
  } catch {
    // No storage: the task is not remembered, nothing else changes.
  }
  const radio = document.querySelector(`input[name="task"][value="${task}"]`);
  if (radio) radio.checked = true;
  for (const el of document.querySelectorAll("[data-tasks]")) {
    el.hidden = !el.dataset.tasks.split(" ").includes(task);
  }
  $("task-description").textContent = (state.tasks[task] && plainDescription(state.tasks[task].description)) || "";
  $("marks-hint").textContent = TASK_HINTS[task];
  document.querySelector(".tool-move-label").textContent = task === "paste" ? "Place object" : "Drag object";
  if (task !== "move") setMaskLayer("object");

  const props = schemaProps(task);
  applyDefault($("prompt"), props.prompt);
  applyDefault($("reference_prompt"), props.reference_prompt);
  applyRange($("steps"), props.steps, state.info && state.info.limits && state.info.limits.max_steps);
  applyRange($("seed"), props.seed);
  const scale = rangeOf(props.scale);
  if (scale.min !== undefined) $("scale").min = scale.min;
  if (scale.max !== undefined) $("scale").max = scale.max;
  // The slider moves log10(scale) and is symmetric about 0, so 1× sits in the middle of its track
  // and halving is as far as doubling: 1/max … max (0.1× … 10× for the schema's `le=10`).
  const top = Math.log10(scale.max ?? 10);
  $("scale-range").max = String(top);
  const bottom = Math.max(-top, Math.log10(scale.min ?? 0.1));
  $("scale-range").min = String(bottom);
  const x = (e) => Number((10 ** e).toPrecision(2));
  $("scale-hint").textContent = `1× (unchanged) in the middle; left shrinks to ${x(bottom)}×, right grows to ${x(top)}×.`;
  if (!$("scale").dataset.dirty || Number($("scale").value) > Number($("scale").max)) {
    setScale(scale.default ?? 1);
  }
  buildParamFields(state.tasks[task] && state.tasks[task].schema, $("main-params"), $("advanced-params"), keep);
  selectTool(DEFAULT_TOOL[task]);
  clearErrors();
  invalidateCut();
  renderOverlay();
}

// Schema descriptions cite the algorithm document ("§8.1"); people need only the first sentence.
function plainDescription(text) {
  const first = text.split(/(?<=\.)\s/)[0];
  return first.replace(/\s*\(§[^)]*\)/g, "").replace(/`/g, "");
}

function applyDefault(input, prop) {
  if (!prop || input.dataset.dirty) return;
  input.value = prop.default ?? "";
}

function applyRange(input, prop, cap) {
  if (!prop) return;
  const r = rangeOf(prop);
  if (r.min !== undefined) input.min = r.min;
  const max = cap !== undefined && r.max !== undefined ? Math.min(cap, r.max) : (r.max ?? cap);
  if (max !== undefined) input.max = max;
  if (!input.dataset.dirty && r.default !== undefined && r.default !== null) input.value = r.default;
}

for (const input of [$("prompt"), $("reference_prompt"), $("steps"), $("seed"), $("scale")]) {
  input.addEventListener("input", () => {
    input.dataset.dirty = "1";
  });
}

// Typing in a field (or choosing its file) makes its error out of date: the error goes with it.
// Tools and brush sizes sit inside the mask's area but do not change the mask.
function clearErrorOfInput(e) {
  const t = e.target;
  if (!(t instanceof HTMLElement) || t.type === "radio" || /brush-size$|mask-file$|^mask-layer$/.test(t.id)) return;
  const owner = t.closest("[data-field]");
  if (owner) clearFieldError(owner.dataset.field);
}
document.addEventListener("input", clearErrorOfInput);
document.addEventListener("change", clearErrorOfInput);

for (const radio of document.querySelectorAll('input[name="task"]')) {
  radio.addEventListener("change", () => setTask(radio.value));
}

// Every setting back to `task`'s defaults (what the person typed is forgotten).
function resetSettings(task = state.task) {
  for (const input of document.querySelectorAll("[data-dirty]")) delete input.dataset.dirty;
  $("main-params").replaceChildren();
  $("advanced-params").replaceChildren();
  setTask(task, { force: true });
}

$("reset-settings").addEventListener("click", () => resetSettings());

// ---------------------------------------------------------------- tools, masks, points, offset

function selectTool(tool) {
  let radio = document.querySelector(`input[name="main-tool"][value="${tool}"]`);
  if (!radio || radio.closest("[hidden]")) {
    radio = [...document.querySelectorAll('input[name="main-tool"]')].find((r) => !r.closest("[hidden]"));
  }
  if (!radio) {
    mainStage.setTool("none");
    return;
  }
  radio.checked = true;
  mainStage.setTool(radio.value);
  updateStageHint();
}

for (const radio of document.querySelectorAll('input[name="main-tool"]')) {
  radio.addEventListener("change", () => {
    mainStage.setTool(radio.value);
    updateStageHint();
  });
}

function updateStageHint() {
  const words = {
    brush: "Brush: paint the mask by dragging on the image.",
    eraser: "Eraser: drag to remove parts of the mask.",
    move: state.task === "paste" ? "Drag on the image to place the pasted object." : "Drag the object to its new place.",
    points: state.pending
      ? `Handle set at (${Math.round(state.pending.x)}, ${Math.round(state.pending.y)}): now click its target. Esc cancels.`
      : "Points: click a handle, then its target.",
    none: "",
  };
  $("stage-hint").textContent = mainStage.hasImage ? words[mainStage.tool] || "" : "";
}

function setMaskLayer(name) {
  $("mask-layer").value = name;
  mainStage.activeMask = mainStage.masks[name];
  updateMaskButtons();
}

$("mask-layer").addEventListener("change", () => setMaskLayer($("mask-layer").value));

function bindBrushSize(rangeId, outId, stage) {
  $(rangeId).addEventListener("input", () => {
    stage.brushSize = Number($(rangeId).value);
    $(outId).textContent = $(rangeId).value;
  });
}
bindBrushSize("brush-size", "brush-size-out", mainStage);
bindBrushSize("ref-brush-size", "ref-brush-size-out", refStage);

// Brush sizes in image pixels, so a sensible start depends on the image's size.
function fitBrush(stage, rangeId, outId) {
  const side = Math.max(stage.width, stage.height);
  const range = $(rangeId);
  range.max = Math.max(8, Math.round(side / 3));
  range.value = Math.max(2, Math.round(side / 16));
  stage.brushSize = Number(range.value);
  $(outId).textContent = range.value;
}

function bindMaskButtons(prefix, getLayer) {
  $(`${prefix}-undo`).addEventListener("click", () => getLayer().undo());
  $(`${prefix}-clear`).addEventListener("click", () => getLayer().clear());
  $(`${prefix}-fill`).addEventListener("click", () => getLayer().fill());
  $(`${prefix}-invert`).addEventListener("click", () => getLayer().invert());
}
bindMaskButtons("mask", () => mainStage.activeMask);
bindMaskButtons("ref-mask", () => refStage.masks.reference);

function updateMaskButtons() {
  const layer = mainStage.activeMask;
  $("mask-undo").disabled = !layer || !layer.canUndo();
  for (const id of ["mask-clear", "mask-fill", "mask-invert"]) $(id).disabled = !mainStage.hasImage;
  const ref = refStage.masks.reference;
  $("ref-mask-undo").disabled = !ref.canUndo();
  for (const id of ["ref-mask-clear", "ref-mask-fill", "ref-mask-invert"]) $(id).disabled = !refStage.hasImage;
  if (mainStage.hasImage && layer) {
    const pct = layer.coverage() * 100;
    $("mask-coverage").textContent = pct > 0 ? `Mask covers ${pct < 1 ? "<1" : Math.round(pct)}% of the image.` : "Mask is empty.";
  } else {
    $("mask-coverage").textContent = "";
  }
}

// A mask changed (painted, uploaded, undone): an error about that mask is out of date.
for (const [name, layer] of Object.entries(mainStage.masks)) {
  layer.onchange = () => {
    clearFieldError(name === "region" ? "region_mask" : "mask");
    updateMaskButtons();
    invalidateCut();
    renderOverlay();
  };
}
refStage.masks.reference.onchange = () => {
  clearFieldError("reference_mask");
  updateMaskButtons();
  invalidateCut();
  renderOverlay();
};

for (const radio of document.querySelectorAll('input[name="ref-tool"]')) {
  radio.addEventListener("change", () => refStage.setTool(radio.value));
}

// Points: a click sets a handle, the next click its target.
mainStage.addEventListener("point", (e) => {
  const p = { x: Math.round(e.detail.x), y: Math.round(e.detail.y) };
  if (state.pending) {
    state.points.push([state.pending.x, state.pending.y, p.x, p.y]);
    state.pending = null;
    renderPointsList();
  } else {
    state.pending = p;
  }
  clearFieldError("points");
  renderOverlay();
  updateStageHint();
});

document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && state.pending) {
    state.pending = null;
    renderOverlay();
    updateStageHint();
  }
});

function renderPointsList() {
  const list = $("points-list");
  list.replaceChildren();
  const names = [
    ["Handle x", 0],
    ["Handle y", 1],
    ["Target x", 2],
    ["Target y", 3],
  ];
  state.points.forEach((pair, i) => {
    const li = document.createElement("li");
    li.dataset.index = String(i);
    const no = document.createElement("span");
    no.className = "pair-no";
    no.textContent = `${i + 1}`;
    no.setAttribute("aria-hidden", "true");
    li.append(no);
    for (const [label, k] of names) {
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
        state.points[i][k] = Number(input.value);
        renderOverlay();
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
      state.points.splice(i, 1);
      renderPointsList();
      renderOverlay();
      const next = $("points-list").querySelector("button") || $("points-add");
      next.focus();
    });
    li.append(rm);
    list.append(li);
  });
  $("points-clear").disabled = state.points.length === 0;
}

$("points-add").addEventListener("click", () => {
  if (!mainStage.hasImage) {
    showFieldError("points", "Upload an image first.");
    return;
  }
  const w = mainStage.width;
  const h = mainStage.height;
  const cx = Math.round(w / 2);
  const cy = Math.round(h / 2);
  state.points.push([cx, cy, Math.min(w - 1, cx + Math.round(w / 8)), cy]);
  renderPointsList();
  renderOverlay();
  $(`point-${state.points.length - 1}-0`).focus();
});

$("points-clear").addEventListener("click", () => {
  state.points = [];
  state.pending = null;
  renderPointsList();
  renderOverlay();
  updateStageHint();
});

// Offset by dragging: the drag adds to the offset the object already has.
function getOffset() {
  return [Number($("offset-dx").value) || 0, Number($("offset-dy").value) || 0];
}

function setOffset(dx, dy) {
  $("offset-dx").value = String(Math.round(dx));
  $("offset-dy").value = String(Math.round(dy));
  clearFieldError("offset");
  renderOverlay();
}

mainStage.addEventListener("vectorstart", () => {
  state.offsetAtDragStart = getOffset();
});
for (const type of ["vector", "vectorend"]) {
  mainStage.addEventListener(type, (e) => {
    const [bx, by] = state.offsetAtDragStart || [0, 0];
    setOffset(bx + e.detail.dx, by + e.detail.dy);
  });
}
for (const id of ["offset-dx", "offset-dy"]) $(id).addEventListener("input", renderOverlay);
$("offset-reset").addEventListener("click", () => setOffset(0, 0));

// The scale field holds the factor that is sent; the slider shows its logarithm.
function setScale(v) {
  const n = Number(v);
  $("scale").value = String(n);
  $("scale-range").value = String(n > 0 ? Math.log10(n) : $("scale-range").min);
  showScale(n);
}

function showScale(n) {
  $("scale-out").textContent = n.toFixed(2);
  $("scale-range").setAttribute("aria-valuetext", `${n.toFixed(2)}×`);
  renderOverlay();
}

$("scale-range").addEventListener("input", () => {
  $("scale").dataset.dirty = "1";
  // Two decimals, as shown: 10^0.3 is sent as 2, not 1.9953. The slider itself is left where it
  // is (setting it back from the rounded factor would pin it at the ends of the track).
  const n = Math.round(10 ** Number($("scale-range").value) * 100) / 100;
  $("scale").value = String(n);
  showScale(n);
});
$("scale").addEventListener("input", () => {
  if ($("scale").value.trim() === "") return;
  const n = Number($("scale").value);
  if (n > 0) $("scale-range").value = String(Math.log10(n));
  showScale(n);
});

mainStage.addEventListener("resize", renderOverlay);

// ---------------------------------------------------------------- previews on the stage

function invalidateCut() {
  state.objectCut = null;
}

// The masked object (move) or the masked reference stretched to the image (paste), cached.
function objectCut() {
  if (state.objectCut) return state.objectCut;
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
  const ctx = c.getContext("2d");
  ctx.drawImage(source, 0, 0, w, h);
  ctx.globalCompositeOperation = "destination-in";
  ctx.drawImage(mask.canvas, 0, 0, w, h);
  const kx = w / mask.width;
  const ky = h / mask.height;
  state.objectCut = { canvas: c, cx: box.cx * kx, cy: box.cy * ky };
  return state.objectCut;
}

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

function renderOverlay() {
  if (!mainStage.hasImage) return;
  const task = state.task;
  mainStage.clearGhost();
  if (task === "drag" || task === "landmark") {
    mainStage.drawPoints(state.points, state.pending);
    return;
  }
  if (task !== "move" && task !== "paste") {
    mainStage.drawPoints([], null);
    return;
  }
  const [dx, dy] = getOffset();
  const r = Number($("scale").value) || 1;
  const cut = objectCut();
  if (!cut) {
    mainStage.drawVector(0, 0, 0, 0);
    return;
  }
  const C = { x: mainStage.width / 2, y: mainStage.height / 2 };
  const ctx = mainStage.ghost.getContext("2d");
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
  if (task === "paste" || dx !== 0 || dy !== 0 || r !== 1) ctx.drawImage(cut.canvas, 0, 0);
  ctx.restore();
  if (task === "move") {
    const tx = C.x + r * (cut.cx + dx - C.x);
    const ty = C.y + r * (cut.cy + dy - C.y);
    mainStage.drawVector(cut.cx, cut.cy, tx - cut.cx, ty - cut.cy);
  } else {
    const sx = C.x + r * (cut.cx - C.x);
    const sy = C.y + r * (cut.cy - C.y);
    mainStage.drawVector(sx, sy, dx, dy);
  }
}

// ---------------------------------------------------------------- uploads

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

const NOT_AN_IMAGE = "This file cannot be opened as an image. Use a PNG, JPEG or WebP file.";

async function setMainImage(blob, name) {
  clearFieldError("image");
  let loaded;
  try {
    loaded = await loadImage(blob);
  } catch {
    showFieldError("image", NOT_AN_IMAGE);
    return false;
  }
  // An image some edit was made from stays: it is that edit's "before" picture.
  if (state.imageUrl && ![...state.originals.values()].includes(state.imageUrl)) URL.revokeObjectURL(state.imageUrl);
  for (const key of IMAGE_FIELDS) clearFieldError(key);
  state.image = blob;
  state.imageName = name || "image.png";
  state.imageUrl = loaded.url;
  mainStage.setImage(loaded.img);
  $("stage-placeholder").hidden = true;
  $("image-name").textContent = `${state.imageName} · ${mainStage.width}×${mainStage.height}`;
  state.points = [];
  state.pending = null;
  $("offset-dx").value = "0";
  $("offset-dy").value = "0";
  fitBrush(mainStage, "brush-size", "brush-size-out");
  renderPointsList();
  invalidateCut();
  updateMaskButtons();
  renderOverlay();
  updateStageHint();
  return true;
}

async function setReference(blob, name) {
  clearFieldError("reference");
  let loaded;
  try {
    loaded = await loadImage(blob);
  } catch {
    showFieldError("reference", NOT_AN_IMAGE);
    return;
  }
  for (const key of REFERENCE_FIELDS) clearFieldError(key);
  state.reference = blob;
  state.referenceName = name || "reference.png";
  refStage.setImage(loaded.img);
  $("reference-placeholder").hidden = true;
  URL.revokeObjectURL(loaded.url);
  $("reference-name").textContent = `${state.referenceName} · ${refStage.width}×${refStage.height}`;
  fitBrush(refStage, "ref-brush-size", "ref-brush-size-out");
  invalidateCut();
  updateMaskButtons();
  renderOverlay();
  return true;
}

// A mask image (an uploaded file or a sample's mask) becomes `layer`'s painted mask. `key` is the
// API field it will be sent as, for the error slot. It must have its image's size, as the API
// requires: the page says so rather than stretching it.
async function setMaskImage(stage, layer, blob, key) {
  clearFieldError(key);
  const owner = key === "reference_mask" ? "reference image" : "image";
  if (!stage.hasImage) {
    showFieldError(key, `Load the ${owner} first, then its mask.`);
    return false;
  }
  let loaded;
  try {
    loaded = await loadImage(blob);
  } catch {
    showFieldError(key, NOT_AN_IMAGE);
    return false;
  }
  const { img, url } = loaded;
  const w = img.naturalWidth;
  const h = img.naturalHeight;
  if (w !== stage.width || h !== stage.height) {
    URL.revokeObjectURL(url);
    showFieldError(key, `This mask is ${w}×${h} but the ${owner} is ${stage.width}×${stage.height}: use a mask of the same size.`);
    return false;
  }
  layer.load(img);
  URL.revokeObjectURL(url);
  return true;
}

$("image-file").addEventListener("change", () => {
  const f = $("image-file").files[0];
  if (f) setMainImage(f, f.name);
});
$("reference-file").addEventListener("change", () => {
  const f = $("reference-file").files[0];
  if (f) setReference(f, f.name);
});
$("mask-file").addEventListener("change", () => {
  const input = $("mask-file");
  const f = input.files[0];
  input.value = ""; // the same file chosen again (after painting over it) loads again
  if (!f) return;
  const key = mainStage.activeMask === mainStage.masks.region ? "region_mask" : "mask";
  setMaskImage(mainStage, mainStage.activeMask, f, key);
});
$("ref-mask-file").addEventListener("change", () => {
  const input = $("ref-mask-file");
  const f = input.files[0];
  input.value = "";
  if (f) setMaskImage(refStage, refStage.masks.reference, f, "reference_mask");
});

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
dropTarget($("image-drop"), setMainImage);
dropTarget($("main-stage"), setMainImage);
dropTarget($("reference-drop"), setReference);
dropTarget($("reference-stage"), setReference);
// A file dropped elsewhere must not navigate away from the page (and lose the work).
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());

// ---------------------------------------------------------------- sample scenes

// GET /v1/samples: shapes-world scenes with their params. A server without them hides the row.
async function loadSamples() {
  let list;
  try {
    list = await api.samples();
  } catch {
    list = [];
  }
  state.samples = Array.isArray(list) ? list.filter((s) => s && s.name && s.files && s.params) : [];
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
}

// One click: the sample's task, images, masks and settings, as if the person had chosen, painted
// and typed them; everything else back to the task's defaults. Run edit can follow at once.
async function loadSample(sample) {
  const gen = ++state.sampleGen;
  const title = sample.title || sample.name;
  $("samples-error").textContent = "";
  $("samples-status").textContent = `Loading “${title}”…`;
  let files;
  try {
    const entries = Object.entries(sample.files);
    const blobs = await Promise.all(entries.map(([, path]) => api.sampleFile(path)));
    files = Object.fromEntries(entries.map(([field], i) => [field, blobs[i]]));
  } catch (err) {
    if (gen !== state.sampleGen) return;
    $("samples-status").textContent = "";
    $("samples-error").textContent = `The sample could not be loaded: ${err.message}`;
    return;
  }
  if (gen !== state.sampleGen) return;
  const params = sample.params;
  const task = FALLBACK_FILES[params.task] ? params.task : sample.task;
  resetSettings(task);
  $("image-prompt-file").value = "";

  const ok =
    (await setMainImage(files.image, `sample-${sample.name}.png`)) &&
    (!files.mask || (await setMaskImage(mainStage, mainStage.masks.object, files.mask, "mask"))) &&
    (!files.region_mask || (await setMaskImage(mainStage, mainStage.masks.region, files.region_mask, "region_mask"))) &&
    (!files.reference || (await setReference(files.reference, `sample-${sample.name}-reference.png`))) &&
    (!files.reference_mask ||
      (await setMaskImage(refStage, refStage.masks.reference, files.reference_mask, "reference_mask")));
  if (gen !== state.sampleGen) return;
  if (!ok) {
    $("samples-status").textContent = "";
    $("samples-error").textContent = `The sample “${title}” could not be loaded completely.`;
    return;
  }
  applySampleParams(params);
  setMaskLayer("object");
  selectTool(SAMPLE_TOOL[task]);
  renderOverlay();
  updateStageHint();
  $("samples-status").textContent = `Loaded “${title}”: press Run edit, or change anything first.`;
}

// The sample's values into the page's fields, marked as typed so a task switch keeps them.
function applySampleParams(params) {
  const typed = (input, value) => {
    input.value = String(value);
    input.dataset.dirty = "1";
  };
  for (const [name, value] of Object.entries(params)) {
    if (name === "task" || value === null || value === undefined) continue;
    if (name === "offset") {
      setOffset(Number(value[0]) || 0, Number(value[1]) || 0);
    } else if (name === "points") {
      state.points = value.map((p) => p.map(Number));
      state.pending = null;
      renderPointsList();
    } else if (name === "scale") {
      setScale(value);
      $("scale").dataset.dirty = "1";
    } else if (name === "seed") {
      $("seed-random").checked = false;
      $("seed").disabled = false;
      typed($("seed"), value);
    } else if (name === "prompt" || name === "reference_prompt" || name === "steps") {
      typed($(name), value);
    } else if ($(`param-${name}`)) {
      typed($(`param-${name}`), value);
    }
  }
  if (params.seed === undefined || params.seed === null) {
    $("seed-random").checked = true;
    $("seed").disabled = true;
  }
}

// ---------------------------------------------------------------- errors next to fields

// Which control shows as invalid for each API field name.
const CONTROL_FOR = {
  image: "image-drop",
  mask: "main-stage",
  region_mask: "main-stage",
  reference: "reference-drop",
  reference_mask: "reference-stage",
  image_prompt: "image-prompt-file",
  points: "points-list",
  offset: "offset-dx",
  scale: "scale",
  seed: "seed",
  steps: "steps",
  prompt: "prompt",
  reference_prompt: "reference_prompt",
  task: "task-picker",
};

const FIELD_WORDS = {
  image: "Image",
  mask: "Mask",
  region_mask: "Fill hint mask",
  reference: "Reference image",
  reference_mask: "Reference mask",
  image_prompt: "Image prompt",
  points: "Points",
  offset: "Offset",
  scale: "Scale",
  seed: "Seed",
  steps: "Steps",
  prompt: "Prompt",
  reference_prompt: "Reference prompt",
  task: "Task",
};

function fieldKey(field) {
  if (!field) return null;
  return String(field)
    .replace(/^params\./, "")
    .split(".")[0];
}

// The server's words, made friendlier for the mistakes people make most.
function friendlyMessage(err, key) {
  const msg = err.message || "";
  const missing = err.code === "missing_field" || err.code === "missing_file" || /required|missing/i.test(msg);
  const empty = /empty/i.test(err.code || "") || /empty/i.test(msg);
  if (key === "image" && missing) return "Choose an image to edit first.";
  if (key === "reference" && missing) return "Upload a reference image.";
  if (key === "points" && (missing || /at least 1/i.test(msg))) {
    return "Place at least one handle → target pair: pick Points and click the image twice.";
  }
  if (key === "offset" && missing) return "Set where the object goes: drag it on the image or type an offset.";
  if (key === "mask" && empty) return "The mask is empty: paint over the part of the image to edit.";
  if (key === "mask" && missing) return "Paint a mask on the image first.";
  if (key === "reference_mask" && empty) return "The reference mask is empty: paint the object on the reference image.";
  if (key === "reference_mask" && missing) return "Paint the object on the reference image.";
  let text = msg;
  if (err.field && text.startsWith(`${err.field}: `)) text = text.slice(err.field.length + 2);
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : "Something went wrong.";
}

function errorSlot(key) {
  if (!key) return null;
  const slot = document.querySelector(`[data-error-for="${CSS.escape(key)}"]`);
  return slot && !slot.closest("[hidden]") ? slot : null;
}

// The line beside Run repeats the latest error; `about` is the field it is about, so that the line
// goes when that field's input changes (a good image after a bad one), not only at the next Run.
function setFormError(text, about = "") {
  $("form-error").textContent = text;
  $("form-error").dataset.about = about;
}

function showFieldError(key, message, field = key) {
  const slot = errorSlot(key);
  if (!slot) {
    setFormError(message, key);
    return;
  }
  const details = slot.closest("details");
  if (details) details.open = true;
  slot.textContent = message;
  const control = $(CONTROL_FOR[key] || `param-${key}`);
  if (control) {
    control.classList.add("is-invalid");
    if (control.matches("input, select, textarea")) control.setAttribute("aria-invalid", "true");
  }
  if (key === "points") {
    const idx = String(field).split(".")[1];
    const row = idx !== undefined && $("points-list").querySelector(`li[data-index="${CSS.escape(idx)}"]`);
    if (row) row.classList.add("is-invalid");
  }
  const words = FIELD_WORDS[key] || labelFor(key);
  setFormError(`Check “${words}”: ${message}`, key);
}

function clearFieldError(key) {
  const slot = document.querySelector(`[data-error-for="${CSS.escape(key)}"]`);
  if (slot) slot.textContent = "";
  const control = $(CONTROL_FOR[key] || `param-${key}`);
  if (control) {
    control.classList.remove("is-invalid");
    control.removeAttribute("aria-invalid");
  }
  if (key === "points") for (const row of $("points-list").querySelectorAll(".is-invalid")) row.classList.remove("is-invalid");
  if ($("form-error").dataset.about === key) setFormError("");
}

// Errors about what an image change replaces: the image itself and what was marked on it.
const IMAGE_FIELDS = ["image", "mask", "region_mask", "points", "offset"];
const REFERENCE_FIELDS = ["reference", "reference_mask"];

function clearErrors() {
  setFormError("");
  for (const slot of document.querySelectorAll("[data-error-for]")) {
    if (slot.dataset.errorFor !== "auth") slot.textContent = "";
  }
  for (const el of document.querySelectorAll(".is-invalid")) el.classList.remove("is-invalid");
  for (const el of document.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function showApiError(err, where = null) {
  if (!(err instanceof ApiError)) err = new ApiError(0, "client", String(err && err.message ? err.message : err));
  if (err.status === 401 || err.status === 403) {
    showAuth(err.status === 401 ? "This server needs an API key: enter it here." : `The key was refused: ${err.message}`);
    setFormError("An API key is needed: enter it at the top of the page.", "auth");
    $("api-key").focus();
    return;
  }
  const key = fieldKey(err.field);
  const message = friendlyMessage(err, key);
  if (key && errorSlot(key)) {
    showFieldError(key, message, err.field);
    return;
  }
  const text = key ? `${FIELD_WORDS[key] || labelFor(key)}: ${message}` : message;
  if (where) where.textContent = text;
  else setFormError(text, key || "");
}

// ---------------------------------------------------------------- submit

function buildParams() {
  const task = state.task;
  const params = { task, ...collectParamValues($("main-params"), $("advanced-params")) };
  params.prompt = $("prompt").value;
  if (needsField(task, "reference_prompt")) params.reference_prompt = $("reference_prompt").value;
  if ($("steps").value.trim() !== "") params.steps = Number($("steps").value);
  if (!$("seed-random").checked) {
    if ($("seed").value.trim() === "") return { error: ["seed", "Enter a seed or tick “Random”."] };
    params.seed = Number($("seed").value);
  }
  if (task === "move" || task === "paste") {
    params.offset = getOffset();
    if ($("scale").value.trim() !== "") params.scale = Number($("scale").value);
  }
  if (task === "drag" || task === "landmark") params.points = state.points.map((p) => p.map(Number));
  return { params };
}

function needsField(task, name) {
  const props = schemaProps(task);
  if (Object.keys(props).length) return name in props;
  return name === "reference_prompt" ? task === "appearance" || task === "paste" : true;
}

async function buildForm(params) {
  const task = state.task;
  const fd = new FormData();
  fd.append("params", JSON.stringify(params));
  // Missing inputs are left out on purpose: the API names what is missing and the page shows it.
  if (state.image) fd.append("image", state.image, state.imageName);
  if (needsFile(task, "mask") && mainStage.hasImage) {
    fd.append("mask", await mainStage.masks.object.toPngBlob(), "mask.png");
  }
  if (needsFile(task, "region_mask") && mainStage.hasImage && mainStage.masks.region.coverage() > 0) {
    fd.append("region_mask", await mainStage.masks.region.toPngBlob(), "region_mask.png");
  }
  if (needsFile(task, "reference") && state.reference) fd.append("reference", state.reference, state.referenceName);
  if (needsFile(task, "reference_mask") && refStage.hasImage) {
    fd.append("reference_mask", await refStage.masks.reference.toPngBlob(), "reference_mask.png");
  }
  const ip = $("image-prompt-file").files[0];
  if (ip && needsFile(task, "image_prompt")) fd.append("image_prompt", ip, ip.name);
  return fd;
}

$("submit").addEventListener("click", submit);

async function submit() {
  if (jobUnderWay()) return; // Run is disabled then; a stray Enter must not queue a duplicate either
  clearErrors();
  const built = buildParams();
  if (built.error) {
    showFieldError(...built.error);
    return;
  }
  state.sending = true;
  renderSubmit();
  try {
    const fd = await buildForm(built.params);
    const job = await api.submit(fd);
    startJob(job, { originalUrl: state.imageUrl });
    $("job").scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (err) {
    showApiError(err);
  } finally {
    state.sending = false;
    renderSubmit();
  }
}

// Run is off while the edit on show is queued or running, so that a second click does not queue
// a duplicate; it comes back when that edit ends (or the page can no longer follow it).
function jobUnderWay() {
  return Boolean(state.job && state.following.has(state.job.id));
}

function renderSubmit() {
  const btn = $("submit");
  const busy = jobUnderWay();
  btn.disabled = state.sending || busy;
  btn.textContent = state.sending ? "Sending…" : "Run edit";
  $("submit-hint").textContent = busy ? "An edit is under way: wait for it to end, or cancel it, to run another." : "";
}

// ---------------------------------------------------------------- job state and progress

// Every status the page learns about an edit (submit, poll, cancel, Open) goes through setJob into
// state.jobs; the job panel and the recent list both render from there, so they never disagree.
function setJob(job, { expired = false } = {}) {
  const prev = state.jobs.get(job.id);
  const eta = job.progress && typeof job.progress.eta_s === "number" ? job.progress.eta_s : null;
  // The ETA counts down locally from when it arrived, so it moves between statuses too.
  state.jobs.set(job.id, { job, expired, etaAt: eta === null ? null : Date.now() + eta * 1000 });
  if (!prev || prev.job.status !== job.status || prev.expired !== expired) {
    const seed = job.params && job.params.seed !== undefined ? job.params.seed : undefined;
    upsertRecent({ id: job.id, status: expired ? "expired" : job.status, seed });
    renderRecent();
  } else {
    renderRecentStatus(job.id);
  }
  if (state.job && state.job.id === job.id) renderJob();
}

// Follow an edit until it ends: quickly while it is the one on show, slowly in the background
// (an edit left by a task switch still ends in the recent list).
function follow(id) {
  if (state.following.has(id)) return;
  state.following.add(id);
  schedulePoll(id);
}

function stopFollowing(id) {
  state.following.delete(id);
  if (state.job && state.job.id === id) renderJob();
}

function schedulePoll(id, delay = null) {
  const shown = state.job && state.job.id === id;
  setTimeout(() => poll(id), delay ?? (shown ? POLL_MS : BACKGROUND_POLL_MS));
}

async function poll(id) {
  if (!state.following.has(id)) return;
  const shown = () => state.job && state.job.id === id;
  try {
    const job = await api.status(id);
    if (!state.following.has(id)) return;
    if (TERMINAL.has(job.status)) state.following.delete(id);
    setJob(job);
    if (state.following.has(id)) schedulePoll(id);
  } catch (err) {
    if (!state.following.has(id)) return;
    if (err.status === 404) {
      state.following.delete(id);
      const entry = state.jobs.get(id);
      if (entry) setJob(entry.job, { expired: true });
      upsertRecent({ id, status: "expired" });
      renderRecent();
      return;
    }
    if (err.status === 401 || err.status === 403) {
      stopFollowing(id);
      if (shown()) showApiError(err, $("job-error"));
      return;
    }
    if (shown()) $("job-error").textContent = `${err.message} Retrying…`;
    schedulePoll(id, 2000);
  }
}

// Show `job` in the panel (a new submit, or an edit opened from the recent list).
function startJob(job, { originalUrl = null } = {}) {
  if (originalUrl) state.originals.set(job.id, originalUrl);
  state.job = { id: job.id, task: job.task || state.task, resultShown: false };
  upsertRecent({ id: job.id, task: state.job.task, created: Date.parse(job.created_at) || Date.now() });
  $("job").hidden = false;
  $("job-id").textContent = job.id.slice(0, 8);
  $("job-id").title = job.id;
  $("job-error").textContent = "";
  $("result").hidden = true;
  if (!TERMINAL.has(job.status)) follow(job.id);
  setJob(job);
  renderRecent();
}

// What belongs to the edit on show leaves the screen (a task switch): its panel and its result.
// An edit still under way goes on, and ends in the recent list.
function clearJobView() {
  state.job = null;
  $("job").hidden = true;
  $("result").hidden = true;
  $("job-error").textContent = "";
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultBlob = null;
  state.resultUrl = null;
  state.resultSeed = null;
  renderJob();
}

function stageWords(stage) {
  if (!stage) return "Working";
  const s = String(stage).replace(/[_-]+/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// The status line of the panel, from the one record of the job.
function statusLine(entry) {
  const job = entry.job;
  if (entry.expired) return "This edit is no longer on the server (expired).";
  if (job.status === "queued") {
    const pos = job.position;
    if (pos === null || pos === undefined) return "Queued.";
    return pos === 0 ? "Queued: next in line." : `Queued: ${pos} edit${pos === 1 ? "" : "s"} ahead of yours.`;
  }
  if (job.status === "running") {
    const p = job.progress;
    return p && p.total ? `${stageWords(p.stage)}: step ${p.step} of ${p.total}` : "Running: starting…";
  }
  if (job.status === "succeeded") return `Done${durationWords(job)}.`;
  if (job.status === "failed") return "Failed.";
  if (job.status === "canceled") return "Canceled.";
  return job.status;
}

// The recent list's short form of the same record.
function recentWords(entry, stored) {
  if (!entry) return stored || "";
  if (entry.expired) return "expired";
  const p = entry.job.progress;
  if (entry.job.status === "running" && p && p.total) return `running · step ${p.step} of ${p.total}`;
  if (entry.job.status === "queued" && typeof entry.job.position === "number") {
    return `queued · ${entry.job.position} ahead`;
  }
  return entry.job.status;
}

function renderJob() {
  const entry = state.job && state.jobs.get(state.job.id);
  renderSubmit();
  renderJobTime();
  if (!entry) return;
  const job = entry.job;
  const bar = $("job-progress");
  $("job").dataset.status = entry.expired ? "expired" : job.status;
  $("job-status").textContent = statusLine(entry);
  if (job.status === "queued") {
    bar.removeAttribute("value");
  } else if (job.status === "running") {
    const p = job.progress;
    if (p && p.total) {
      bar.max = p.total;
      bar.value = p.step;
    } else {
      bar.removeAttribute("value");
    }
  } else {
    bar.max = 1;
    bar.value = job.status === "succeeded" ? 1 : 0;
  }
  // A status came through: a "Retrying…" note from a failed poll goes; a failure says why.
  const e = job.error || {};
  $("job-error").textContent =
    job.status !== "failed"
      ? ""
      : e.message
        ? friendlyMessage(new ApiError(0, e.code, e.message, e.field), fieldKey(e.field))
        : "The edit failed.";
  $("job-cancel").disabled = entry.expired || TERMINAL.has(job.status);
  if (job.status === "succeeded" && !state.job.resultShown) {
    state.job.resultShown = true;
    showResult(job);
  }
}

// Elapsed time (and the ETA when the worker gives one) ticks every second while the edit is under
// way, even between statuses: a slow step never looks like a hung page.
function renderJobTime() {
  const entry = state.job && state.jobs.get(state.job.id);
  const live = Boolean(entry && !entry.expired && !TERMINAL.has(entry.job.status) && state.following.has(entry.job.id));
  if (live && !state.ticker) state.ticker = setInterval(renderJobTime, 1000);
  if (!live && state.ticker) {
    clearInterval(state.ticker);
    state.ticker = null;
  }
  const out = $("job-time");
  if (!live) {
    out.textContent = "";
    return;
  }
  const job = entry.job;
  const now = Date.now() + api.clockSkewMs; // the server's clock, which wrote the timestamps
  if (job.status === "queued") {
    const since = Date.parse(job.created_at);
    out.textContent = Number.isFinite(since) ? `Waiting ${elapsedWords(now - since)}` : "";
    return;
  }
  const since = Date.parse(job.started_at);
  let text = Number.isFinite(since) ? `${elapsedWords(now - since)} elapsed` : "";
  if (entry.etaAt !== null) {
    const left = entry.etaAt - Date.now();
    const eta = left > 500 ? `about ${etaWords(left)} left` : "almost done";
    text = text ? `${text} · ${eta}` : eta;
  }
  out.textContent = text;
}

function elapsedWords(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

function etaWords(ms) {
  const s = Math.ceil(ms / 1000);
  return s < 90 ? `${s} s` : `${Math.round(s / 60)} min`;
}

function durationWords(job) {
  if (!job.started_at || !job.ended_at) return "";
  const s = (Date.parse(job.ended_at) - Date.parse(job.started_at)) / 1000;
  return Number.isFinite(s) && s >= 0 ? ` in ${s.toFixed(1)} s` : "";
}

$("job-cancel").addEventListener("click", async () => {
  if (!state.job) return;
  $("job-cancel").disabled = true;
  try {
    const job = await api.cancel(state.job.id);
    if (job && job.status) {
      if (TERMINAL.has(job.status)) state.following.delete(job.id);
      setJob(job);
    }
  } catch (err) {
    $("job-cancel").disabled = false;
    showApiError(err, $("job-error"));
  }
});

// ---------------------------------------------------------------- result

async function showResult(job) {
  const originalUrl = state.originals.get(job.id) || null;
  let blob;
  try {
    blob = await api.result(job.id);
  } catch (err) {
    if (state.job && state.job.id === job.id) showApiError(err, $("job-error"));
    return;
  }
  const thumb = thumbnail(blob);
  if (!state.job || state.job.id !== job.id) {
    // The page moved on (a task switch, another edit opened) while the image came.
    upsertRecent({ id: job.id, thumb: await thumb });
    renderRecent();
    return;
  }
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultBlob = blob;
  state.resultUrl = URL.createObjectURL(blob);
  state.resultSeed = job.params && job.params.seed !== undefined ? job.params.seed : null;
  $("result-image").src = state.resultUrl;
  $("compare-after").src = state.resultUrl;
  const dl = $("result-download");
  dl.href = state.resultUrl;
  dl.download = `diffeditor-${job.task || "edit"}-${job.id.slice(0, 8)}.png`;
  $("result-original-fig").hidden = !originalUrl;
  $("compare-block").hidden = !originalUrl;
  if (originalUrl) {
    $("result-original").src = originalUrl;
    $("compare-before").src = originalUrl;
  }
  $("result-meta").textContent = state.resultSeed !== null ? `(seed ${state.resultSeed})` : "";
  $("result-seed").disabled = state.resultSeed === null;
  $("result").hidden = false;
  $("result").dataset.jobId = job.id;
  $("result").scrollIntoView({ behavior: "smooth", block: "nearest" });
  upsertRecent({ id: job.id, thumb: await thumb });
  renderRecent();
}

$("compare-range").addEventListener("input", () => {
  $("compare").style.setProperty("--split", `${$("compare-range").value}%`);
});

$("result-edit").addEventListener("click", async () => {
  if (!state.resultBlob) return;
  const ok = await setMainImage(state.resultBlob, "result.png");
  if (ok) {
    $("image-title").scrollIntoView({ behavior: "smooth", block: "start" });
    $("server-status").textContent = "The result is now the image to edit.";
  }
});

$("result-seed").addEventListener("click", () => {
  if (state.resultSeed === null) return;
  $("seed-random").checked = false;
  $("seed").disabled = false;
  $("seed").value = String(state.resultSeed);
  $("seed").dataset.dirty = "1";
  $("seed").focus();
});

$("seed-random").addEventListener("change", () => {
  $("seed").disabled = $("seed-random").checked;
  if (!$("seed-random").checked) $("seed").focus();
});

// ---------------------------------------------------------------- recent edits

function renderRecent() {
  const items = loadRecent();
  const list = $("recent-list");
  list.replaceChildren();
  $("recent-empty").hidden = items.length > 0;
  $("recent-clear").hidden = items.length === 0;
  for (const item of items) {
    const li = document.createElement("li");
    li.dataset.jobId = item.id;
    if (item.thumb) {
      const img = document.createElement("img");
      img.src = item.thumb;
      img.alt = "";
      li.append(img);
    } else {
      const ph = document.createElement("span");
      ph.className = "thumb-empty";
      li.append(ph);
    }
    const text = document.createElement("span");
    text.className = "recent-text";
    const when = item.created ? new Date(item.created).toLocaleString() : "";
    text.textContent = `${stageWords(item.task || "edit")} · ${when}`;
    const st = document.createElement("span");
    st.className = "recent-status";
    st.textContent = recentWords(state.jobs.get(item.id), item.status);
    text.append(st);
    const open = document.createElement("button");
    open.type = "button";
    open.textContent = "Open";
    open.setAttribute("aria-label", `Open ${item.task || "edit"} edit from ${when}`);
    open.addEventListener("click", () => openRecent(item.id));
    li.append(text, open);
    list.append(li);
  }
}

// One row's status, refreshed in place at each progress step (the thumbnails stay put).
function renderRecentStatus(id) {
  const st = $("recent-list").querySelector(`li[data-job-id="${CSS.escape(id)}"] .recent-status`);
  if (st) st.textContent = recentWords(state.jobs.get(id), "");
}

async function openRecent(id) {
  let job;
  try {
    job = await api.status(id);
  } catch (err) {
    if (err.status === 404) {
      const entry = state.jobs.get(id);
      if (entry) setJob(entry.job, { expired: true });
      upsertRecent({ id, status: "expired" });
      renderRecent();
      setFormError("That edit has expired on the server.");
      return;
    }
    showApiError(err);
    return;
  }
  startJob(job);
  $("job").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

$("recent-clear").addEventListener("click", () => {
  clearRecent();
  renderRecent();
});

// ---------------------------------------------------------------- start

(function start() {
  let task = "move";
  try {
    task = localStorage.getItem("diffeditor.task") || "move";
  } catch {
    // Storage disabled: start on "move".
  }
  state.task = task;
  setTask(task, { force: true });
  renderPointsList();
  updateMaskButtons();
  renderRecent();
  // Edits a previous visit left under way: their rows follow them to the end.
  for (const item of loadRecent()) if (item.status === "queued" || item.status === "running") follow(item.id);
  connect();
})();

// For the browser tests and for debugging from the console.
window.diffeditor = { state, mainStage, refStage, api };
