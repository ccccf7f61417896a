// @ts-check
// The page's one state and the one way to change it: `update(patch)` merges the patch and renders
// the whole page from the result (render.js). Nothing else repaints.

/** @typedef {import("./types.js").State} State */

/** @type {State} */
export const state = {
  info: null,
  serverStatus: "Connecting to the server…",
  serverError: false,
  tasks: {},
  task: "move",
  settingsVersion: 0,
  image: null,
  imageName: "image.png",
  imageUrl: null,
  reference: null,
  referenceName: "reference.png",
  points: [],
  pending: null,
  offset: [0, 0],
  offsetAtDragStart: null,
  tool: "none",
  maskLayer: "object",
  maskVersion: 0,
  layoutVersion: 0,
  errors: {},
  formError: { text: "", about: "" },
  jobError: "",
  auth: { shown: false, open: false, message: "", hint: "" },
  job: null,
  jobs: new Map(),
  following: new Set(),
  livePreview: null,
  originals: new Map(),
  sending: false,
  resultJobId: null,
  resultBlob: null,
  resultUrl: null,
  resultSeed: null,
  recentVersion: 0,
  samples: [],
  sampleGen: 0,
  samplesStatus: "",
};

/** @type {() => void} */
let renderer = () => {};
let rendering = false;
let again = false;

/** @param {() => void} render the page's one render function */
export function setRenderer(render) {
  renderer = render;
}

/**
 * Merge `patch` into the state and render. An update made while rendering (a control's event
 * fired by the render itself) renders once more afterwards instead of nesting.
 * @param {Partial<State>} [patch]
 */
export function update(patch = {}) {
  Object.assign(state, patch);
  if (rendering) {
    again = true;
    return;
  }
  rendering = true;
  try {
    do {
      again = false;
      renderer();
    } while (again);
  } finally {
    rendering = false;
  }
}
