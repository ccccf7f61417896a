// @ts-check
// The shapes the page works with, as JSDoc types for `tsc --checkJs`: what the /v1 API answers
// (service/schemas.py is their source) and the page's one state object (state.js).

/**
 * The API's one error shape, `{"error": {code, message, field}}` (docs/api.md, service/errors.py).
 * @typedef {object} ErrorDetail
 * @property {string} code stable machine-readable code, e.g. `empty_mask`
 * @property {string} message words a person can act on
 * @property {string | null} [field] the request part or parameter at fault, dotted (`points.2`)
 */

/**
 * One property of a task's JSON schema, as pydantic writes it (nullable ones as `anyOf`).
 * @typedef {object} SchemaProp
 * @property {string} [type]
 * @property {SchemaProp[]} [anyOf]
 * @property {number} [minimum]
 * @property {number} [maximum]
 * @property {number} [exclusiveMinimum]
 * @property {number} [exclusiveMaximum]
 * @property {unknown} [default]
 * @property {string} [description]
 */

/**
 * @typedef {object} ParamsSchema
 * @property {Record<string, SchemaProp>} properties
 * @property {string[]} [required]
 */

/**
 * One entry of GET /v1/tasks.
 * @typedef {object} TaskOut
 * @property {string} name
 * @property {string} description
 * @property {TaskFiles} files
 * @property {ParamsSchema} params_schema
 */

/**
 * @typedef {object} TaskFiles
 * @property {string[]} required
 * @property {string[]} optional
 */

/**
 * What the page keeps of a task: its words, its file parts and its parameter schema.
 * @typedef {object} TaskDef
 * @property {string} description
 * @property {TaskFiles} files
 * @property {ParamsSchema} schema
 */

/**
 * GET /v1/info.
 * @typedef {object} Info
 * @property {string} [version]
 * @property {boolean} demo_model
 * @property {boolean} auth_required
 * @property {number | null} [default_resolution]
 * @property {{max_steps?: number, min_side?: number, max_pixels?: number}} [limits]
 */

/**
 * @typedef {object} Progress
 * @property {string} stage
 * @property {number} step
 * @property {number} total
 * @property {number | null} [eta_s]
 */

/**
 * A job's status (GET /v1/edits/{id}, POST /v1/edits, DELETE /v1/edits/{id}).
 * @typedef {object} Job
 * @property {string} id
 * @property {"queued" | "running" | "succeeded" | "failed" | "canceled" | "expired"} status `expired`: its deadline passed
 * @property {string} [task]
 * @property {Record<string, unknown>} [params]
 * @property {number | null} [position]
 * @property {Progress | null} [progress]
 * @property {string} created_at
 * @property {string | null} [started_at]
 * @property {string | null} [ended_at]
 * @property {ErrorDetail | null} [error]
 */

/**
 * The latest step preview of the edit on show, from its event stream's `preview` events.
 * @typedef {object} LivePreview
 * @property {string} jobId
 * @property {string} url a data: URL of a small JPEG
 * @property {number} step
 * @property {number} total
 */

/**
 * One entry of GET /v1/samples.
 * @typedef {object} Sample
 * @property {string} name
 * @property {string} task
 * @property {string} [title]
 * @property {number} [size]
 * @property {Record<string, string>} files field name -> URL of its PNG on this server
 * @property {Record<string, unknown>} params
 */

/**
 * The page's record of one job: its latest status, whether the server has forgotten it, and
 * when its ETA (counted down locally) runs out.
 * @typedef {object} JobEntry
 * @property {Job} job
 * @property {boolean} expired
 * @property {number | null} etaAt
 */

/**
 * An error shown next to a control: `key` is the control's (the API field's first part).
 * @typedef {object} FieldError
 * @property {string} message
 * @property {string} field the API's field in full (`points.0.2` marks pair 0's row)
 */

/**
 * @typedef {"brush" | "eraser" | "move" | "points" | "none"} Tool
 * @typedef {"object" | "region"} MaskLayerName
 * @typedef {[number, number, number, number]} PointPair handle x, y → target x, y (image pixels)
 */

/**
 * The one state of the page. Changes go through `update()` (state.js), which renders.
 * Settings fields (prompts, seed, steps, scale, the schema's numbers) are form controls that
 * hold their own values; they are read at submit.
 * @typedef {object} State
 * @property {Info | null} info
 * @property {string} serverStatus
 * @property {boolean} serverError
 * @property {Record<string, TaskDef>} tasks from GET /v1/tasks
 * @property {string} task
 * @property {number} settingsVersion bumped to rebuild the settings at the task's defaults
 * @property {Blob | null} image the `image` part
 * @property {string} imageName
 * @property {string | null} imageUrl
 * @property {Blob | null} reference the `reference` part
 * @property {string} referenceName
 * @property {PointPair[]} points
 * @property {{x: number, y: number} | null} pending a handle waiting for its target
 * @property {[number, number]} offset move/paste offset [dx, dy], image pixels
 * @property {[number, number] | null} offsetAtDragStart
 * @property {Tool} tool the main stage's tool
 * @property {MaskLayerName} maskLayer the main stage's mask being painted
 * @property {number} maskVersion bumped whenever a mask layer changes
 * @property {number} layoutVersion bumped when the stage is resized
 * @property {Record<string, FieldError>} errors by control key
 * @property {{text: string, about: string}} formError the line beside Run; `about` is the key it repeats
 * @property {string} jobError the job panel's error line
 * @property {{shown: boolean, open: boolean, message: string, hint: string}} auth the API key panel
 * @property {{id: string, task: string, resultShown: boolean} | null} job the edit on show in the job panel
 * @property {Map<string, JobEntry>} jobs what the panel and the recent list show
 * @property {Set<string>} following ids being followed (polled, or streamed) until they end
 * @property {LivePreview | null} livePreview the edit on show taking shape, while it runs
 * @property {Map<string, string>} originals id -> object URL of the image the edit was made from
 * @property {boolean} sending
 * @property {string | null} resultJobId the edit whose result is on show
 * @property {Blob | null} resultBlob
 * @property {string | null} resultUrl
 * @property {number | null} resultSeed
 * @property {number} recentVersion bumped whenever the stored recent list changes
 * @property {Sample[]} samples GET /v1/samples
 * @property {number} sampleGen the latest sample click; an older one still loading gives way
 * @property {string} samplesStatus
 */

export {};
