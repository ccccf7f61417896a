// @ts-check
// The drawing surface: an image with mask layers, a preview ("ghost") layer and an SVG overlay,
// all sized in the image's natural pixels. The element may be displayed at any size; pointer
// positions are mapped back to image pixels, so masks, points and offsets sent to the API are
// always in the image's own coordinates.

const SVG_NS = "http://www.w3.org/2000/svg";
const UNDO_DEPTH = 15;

/** @typedef {{x: number, y: number}} Pt */
/** @typedef {import("./types.js").Tool} Tool */

export class MaskLayer {
  /** @param {HTMLCanvasElement} canvas @param {string} color */
  constructor(canvas, color) {
    this.canvas = canvas;
    this.ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d", { willReadFrequently: true }));
    this.color = color;
    /** @type {ImageData[]} */
    this.undoStack = [];
    /** @type {((layer: MaskLayer) => void) | null} */
    this.onchange = null;
  }

  get width() {
    return this.canvas.width;
  }

  get height() {
    return this.canvas.height;
  }

  /** @param {number} width @param {number} height */
  reset(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.undoStack = [];
    this.changed();
  }

  snapshot() {
    if (!this.width) return;
    this.undoStack.push(this.ctx.getImageData(0, 0, this.width, this.height));
    if (this.undoStack.length > UNDO_DEPTH) this.undoStack.shift();
  }

  canUndo() {
    return this.undoStack.length > 0;
  }

  undo() {
    const prev = this.undoStack.pop();
    if (prev) this.ctx.putImageData(prev, 0, 0);
    this.changed();
  }

  clear() {
    this.snapshot();
    this.ctx.clearRect(0, 0, this.width, this.height);
    this.changed();
  }

  fill() {
    this.snapshot();
    this.ctx.globalCompositeOperation = "source-over";
    this.ctx.fillStyle = this.color;
    this.ctx.fillRect(0, 0, this.width, this.height);
    this.changed();
  }

  invert() {
    this.snapshot();
    const data = this.ctx.getImageData(0, 0, this.width, this.height);
    const [r, g, b] = parseColor(this.color);
    const px = data.data;
    for (let i = 0; i < px.length; i += 4) {
      const on = px[i + 3] >= 128;
      px[i] = r;
      px[i + 1] = g;
      px[i + 2] = b;
      px[i + 3] = on ? 0 : 255;
    }
    this.ctx.putImageData(data, 0, 0);
    this.changed();
  }

  // One brush segment; `erase` punches through instead of painting.
  /** @param {Pt} from @param {Pt} to @param {number} size @param {boolean} erase */
  line(from, to, size, erase) {
    const c = this.ctx;
    c.globalCompositeOperation = erase ? "destination-out" : "source-over";
    c.strokeStyle = this.color;
    c.fillStyle = this.color;
    c.lineWidth = size;
    c.lineCap = "round";
    c.lineJoin = "round";
    c.beginPath();
    if (from.x === to.x && from.y === to.y) {
      c.arc(to.x, to.y, size / 2, 0, Math.PI * 2);
      c.fill();
    } else {
      c.moveTo(from.x, from.y);
      c.lineTo(to.x, to.y);
      c.stroke();
    }
    c.globalCompositeOperation = "source-over";
  }

  // Replace the mask with a mask image (an uploaded file, a sample's mask) of the layer's size,
  // read as the API reads masks: any nonzero channel is inside, fully transparent is outside.
  // It becomes painted pixels like any brush stroke: undo, eraser and invert work on it.
  /** @param {CanvasImageSource} img */
  load(img) {
    this.snapshot();
    const tmp = document.createElement("canvas");
    tmp.width = this.width;
    tmp.height = this.height;
    const tctx = /** @type {CanvasRenderingContext2D} */ (tmp.getContext("2d", { willReadFrequently: true }));
    tctx.drawImage(img, 0, 0, this.width, this.height);
    const src = tctx.getImageData(0, 0, this.width, this.height).data;
    const out = this.ctx.createImageData(this.width, this.height);
    const [r, g, b] = parseColor(this.color);
    for (let i = 0; i < src.length; i += 4) {
      const on = src[i + 3] > 0 && Math.max(src[i], src[i + 1], src[i + 2]) > 0;
      out.data[i] = r;
      out.data[i + 1] = g;
      out.data[i + 2] = b;
      out.data[i + 3] = on ? 255 : 0;
    }
    this.ctx.putImageData(out, 0, 0);
    this.changed();
  }

  // Share of the image covered, 0..1 (the API rejects empty masks; the page says so earlier).
  coverage() {
    if (!this.width) return 0;
    const px = this.ctx.getImageData(0, 0, this.width, this.height).data;
    let on = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] >= 128) on++;
    return on / (this.width * this.height);
  }

  // Binary mask, white = selected, at the image's natural size.
  /** @returns {Promise<Blob>} */
  toPngBlob() {
    const out = document.createElement("canvas");
    out.width = this.width;
    out.height = this.height;
    const octx = /** @type {CanvasRenderingContext2D} */ (out.getContext("2d"));
    const src = this.ctx.getImageData(0, 0, this.width, this.height);
    const dst = octx.createImageData(this.width, this.height);
    for (let i = 0; i < src.data.length; i += 4) {
      const v = src.data[i + 3] >= 128 ? 255 : 0;
      dst.data[i] = v;
      dst.data[i + 1] = v;
      dst.data[i + 2] = v;
      dst.data[i + 3] = 255;
    }
    octx.putImageData(dst, 0, 0);
    return new Promise((resolve) => out.toBlob((b) => resolve(/** @type {Blob} */ (b)), "image/png"));
  }

  changed() {
    if (this.onchange) this.onchange(this);
  }
}

/** @param {string} css @returns {[number, number, number]} */
function parseColor(css) {
  const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(css);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [255, 255, 255];
}

export class Stage extends EventTarget {
  /**
   * @param {HTMLElement} root an element to fill
   * @param {Record<string, string>} maskColors css colour of each mask layer, by name
   */
  constructor(root, maskColors) {
    super();
    this.root = root;
    this.width = 0;
    this.height = 0;
    /** @type {HTMLImageElement | ImageBitmap | null} */
    this.image = null;
    /** @type {Tool} */
    this.tool = "none";
    this.brushSize = 16;
    this.frame = el("div", "stage-frame");
    this.base = /** @type {HTMLCanvasElement} */ (el("canvas", "stage-base"));
    this.ghost = /** @type {HTMLCanvasElement} */ (el("canvas", "stage-ghost"));
    /** @type {Record<string, MaskLayer>} */
    this.masks = {};
    this.frame.append(this.base, this.ghost);
    for (const [name, color] of Object.entries(maskColors)) {
      const c = /** @type {HTMLCanvasElement} */ (el("canvas", `stage-mask stage-mask-${name}`));
      c.dataset.mask = name;
      this.frame.append(c);
      this.masks[name] = new MaskLayer(c, color);
    }
    /** @type {MaskLayer | null} */
    this.activeMask = Object.values(this.masks)[0] || null;
    this.overlay = document.createElementNS(SVG_NS, "svg");
    this.overlay.classList.add("stage-overlay");
    this.overlay.setAttribute("aria-hidden", "true");
    this.cursor = document.createElementNS(SVG_NS, "circle");
    this.cursor.classList.add("brush-cursor");
    this.marks = document.createElementNS(SVG_NS, "g");
    this.overlay.append(this.marks, this.cursor);
    this.frame.append(this.overlay);
    this.frame.hidden = true;
    root.append(this.frame);
    /** @type {{start: Pt, last: Pt} | null} */
    this.drag = null;
    this.bindPointer();
    this.resizeObserver = new ResizeObserver(() => this.dispatchEvent(new Event("resize")));
    this.resizeObserver.observe(this.frame);
  }

  get hasImage() {
    return this.width > 0;
  }

  // Show `img` (a loaded HTMLImageElement or ImageBitmap) and reset the masks to its size.
  /** @param {HTMLImageElement | ImageBitmap} img */
  setImage(img) {
    const w = ("naturalWidth" in img && img.naturalWidth) || img.width;
    const h = ("naturalHeight" in img && img.naturalHeight) || img.height;
    this.image = img;
    this.width = w;
    this.height = h;
    for (const c of [this.base, this.ghost]) {
      c.width = w;
      c.height = h;
    }
    /** @type {CanvasRenderingContext2D} */ (this.base.getContext("2d")).drawImage(img, 0, 0, w, h);
    for (const m of Object.values(this.masks)) m.reset(w, h);
    this.overlay.setAttribute("viewBox", `0 0 ${w} ${h}`);
    this.frame.style.setProperty("--aspect", `${w} / ${h}`);
    this.frame.style.setProperty("--ratio", String(w / h));
    this.frame.hidden = false;
    this.clearGhost();
    this.marks.replaceChildren();
  }

  /** @param {Tool} tool */
  setTool(tool) {
    this.tool = tool;
    this.frame.dataset.tool = tool;
    this.cursor.style.display = "none";
  }

  // Image pixels per CSS pixel, for drawing marks that look the same size at any zoom.
  get unit() {
    const rect = this.frame.getBoundingClientRect();
    return rect.width ? this.width / rect.width : 1;
  }

  /** @param {PointerEvent} evt @returns {Pt} */
  toImage(evt) {
    const rect = this.frame.getBoundingClientRect();
    const x = ((evt.clientX - rect.left) * this.width) / rect.width;
    const y = ((evt.clientY - rect.top) * this.height) / rect.height;
    return { x: clamp(x, 0, this.width - 1), y: clamp(y, 0, this.height - 1) };
  }

  bindPointer() {
    const f = this.frame;
    f.addEventListener("pointerdown", (e) => {
      if (!this.hasImage || this.tool === "none" || e.button !== 0) return;
      e.preventDefault();
      f.setPointerCapture(e.pointerId);
      const p = this.toImage(e);
      this.drag = { start: p, last: p };
      const layer = this.paintLayer();
      if (layer) {
        layer.snapshot();
        layer.line(p, p, this.brushSize, this.tool === "eraser");
      } else if (this.tool === "move") {
        this.emit("vectorstart", { x: p.x, y: p.y });
      }
    });
    f.addEventListener("pointermove", (e) => {
      if (!this.hasImage) return;
      const p = this.toImage(e);
      this.showCursor(p);
      if (!this.drag) return;
      const layer = this.paintLayer();
      if (layer) {
        layer.line(this.drag.last, p, this.brushSize, this.tool === "eraser");
      } else if (this.tool === "move") {
        this.emit("vector", { dx: p.x - this.drag.start.x, dy: p.y - this.drag.start.y });
      }
      this.drag.last = p;
    });
    const end = (/** @type {PointerEvent} */ e) => {
      if (!this.drag) return;
      const p = this.toImage(e);
      const start = this.drag.start;
      this.drag = null;
      const layer = this.paintLayer();
      if (layer) {
        layer.changed();
      } else if (this.tool === "move") {
        this.emit("vectorend", { dx: p.x - start.x, dy: p.y - start.y });
      } else if (this.tool === "points") {
        this.emit("point", { x: p.x, y: p.y });
      }
    };
    f.addEventListener("pointerup", end);
    f.addEventListener("pointercancel", () => {
      this.drag = null;
    });
    f.addEventListener("pointerleave", () => {
      this.cursor.style.display = "none";
    });
  }

  /** The mask the brush or eraser paints on, or null with another tool. */
  paintLayer() {
    return this.tool === "brush" || this.tool === "eraser" ? this.activeMask : null;
  }

  /** @param {Pt} p */
  showCursor(p) {
    if (!this.paintLayer()) return;
    this.cursor.style.display = "";
    this.cursor.setAttribute("cx", String(p.x));
    this.cursor.setAttribute("cy", String(p.y));
    this.cursor.setAttribute("r", String(this.brushSize / 2));
    this.cursor.setAttribute("stroke-width", String(1.5 * this.unit));
  }

  /** @param {string} type @param {object} detail */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  clearGhost() {
    /** @type {CanvasRenderingContext2D} */ (this.ghost.getContext("2d")).clearRect(0, 0, this.ghost.width, this.ghost.height);
  }

  // Draw handle → target arrows. pairs: [[x1, y1, x2, y2]]; pending: a handle awaiting its target.
  /** @param {number[][]} pairs @param {Pt | null} pending */
  drawPoints(pairs, pending) {
    const u = this.unit;
    this.marks.replaceChildren();
    pairs.forEach((p, i) => {
      this.marks.append(arrow(p[0], p[1], p[2], p[3], u, "arrow"));
      this.marks.append(dot(p[0], p[1], 5 * u, "handle"), dot(p[2], p[3], 5 * u, "target"));
      this.marks.append(label(p[0] + 7 * u, p[1] - 7 * u, String(i + 1), u));
    });
    if (pending) this.marks.append(dot(pending.x, pending.y, 5 * u, "handle pending"));
  }

  // One vector arrow from (x, y) by (dx, dy), used for the move and paste offsets.
  /** @param {number} x @param {number} y @param {number} dx @param {number} dy */
  drawVector(x, y, dx, dy) {
    this.marks.replaceChildren();
    if (dx === 0 && dy === 0) return;
    this.marks.append(arrow(x, y, x + dx, y + dy, this.unit, "arrow vector"));
  }
}

/** @param {string} tag @param {string} cls @returns {HTMLElement} */
function el(tag, cls) {
  const e = document.createElement(tag);
  e.className = cls;
  return e;
}

/** @param {number} v @param {number} lo @param {number} hi */
function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}

/** @param {number} x @param {number} y @param {number} r @param {string} cls */
function dot(x, y, r, cls) {
  const c = document.createElementNS(SVG_NS, "circle");
  c.setAttribute("cx", String(x));
  c.setAttribute("cy", String(y));
  c.setAttribute("r", String(r));
  c.setAttribute("class", cls);
  return c;
}

/** @param {number} x @param {number} y @param {string} text @param {number} u image pixels per CSS pixel */
function label(x, y, text, u) {
  const t = document.createElementNS(SVG_NS, "text");
  t.setAttribute("x", String(x));
  t.setAttribute("y", String(y));
  t.setAttribute("font-size", String(13 * u));
  t.setAttribute("class", "point-label");
  t.textContent = text;
  return t;
}

/**
 * @param {number} x1 @param {number} y1 @param {number} x2 @param {number} y2
 * @param {number} u image pixels per CSS pixel
 * @param {string} cls
 */
function arrow(x1, y1, x2, y2, u, cls) {
  const g = document.createElementNS(SVG_NS, "g");
  g.setAttribute("class", cls);
  const len = Math.hypot(x2 - x1, y2 - y1);
  const line = document.createElementNS(SVG_NS, "line");
  line.setAttribute("x1", String(x1));
  line.setAttribute("y1", String(y1));
  line.setAttribute("x2", String(x2));
  line.setAttribute("y2", String(y2));
  line.setAttribute("stroke-width", String(2.5 * u));
  g.append(line);
  if (len > 0) {
    // Arrow head: a small triangle at the target, pointing along the line.
    const ux = (x2 - x1) / len;
    const uy = (y2 - y1) / len;
    const h = Math.min(12 * u, len);
    const w = 6 * u;
    const bx = x2 - ux * h;
    const by = y2 - uy * h;
    const head = document.createElementNS(SVG_NS, "polygon");
    head.setAttribute("points", `${x2},${y2} ${bx - uy * w},${by + ux * w} ${bx + uy * w},${by - ux * w}`);
    g.append(head);
  }
  return g;
}
