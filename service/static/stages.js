// @ts-check
// The page's two drawing surfaces: the image to edit (object and fill-hint masks) and the
// reference (its object's mask). Their pixels live in their canvases; every change to a mask
// bumps `maskVersion`, so the render knows to re-read them.

import { $ } from "./dom.js";
import { Stage } from "./stage.js";

export const mainStage = new Stage($("main-stage"), { object: "rgb(255, 45, 85)", region: "rgb(30, 190, 110)" });
export const refStage = new Stage($("reference-stage"), { reference: "rgb(255, 45, 85)" });
refStage.setTool("brush");

/** The API part each mask layer is sent as. */
export const MASK_FIELD = /** @type {Record<string, string>} */ ({
  object: "mask",
  region: "region_mask",
  reference: "reference_mask",
});
