"""Response models: the single source of the API's OpenAPI response schemas."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(..., description="Stable machine-readable code, e.g. `mask_size_mismatch`.")
    message: str = Field(..., description="What went wrong, in words a person can act on.")
    field: str | None = Field(None, description="The request field or part at fault (dotted for nested values).")


class ErrorOut(BaseModel):
    error: ErrorDetail


class Links(BaseModel):
    self: str = Field(..., description="This job (GET; DELETE cancels).")
    result: str = Field(..., description="The result image once `succeeded`.")
    cancel: str = Field(..., description="DELETE here to cancel.")
    events: str = Field(..., description="The job's Server-Sent Events stream.")
    preview: str = Field(..., description="The latest step preview (JPEG) while it runs.")


class Progress(BaseModel):
    stage: str = Field(..., description="`loading`, `preprocess`, `image_prompt`, `inversion`, `sampling`, `saving`.")
    step: int
    total: int
    eta_s: float | None = Field(
        None, description="Estimated seconds until the edit ends, from the per-step times so far (None: not yet known)."
    )


JobStatusName = Literal["queued", "running", "succeeded", "failed", "canceled", "expired"]


class WebhookDelivery(BaseModel):
    event: str = Field(..., description="`start`, `progress` or `completed`.")
    webhook_id: str = Field(..., description="The `webhook-id` header: the same on every attempt of one event.")
    attempt: int = Field(..., description="1 for the first try.")
    at: str = Field(..., description="When the attempt was made (ISO 8601, UTC).")
    status_code: int | None = Field(None, description="The receiver's HTTP status (None: no answer).")
    error: str | None = Field(None, description="Why the attempt failed (timeout, refused, a 5xx, ...), if it did.")
    next_attempt_at: str | None = Field(None, description="When it is tried again (None: delivered or given up).")


class WebhookOut(BaseModel):
    url: str
    events: list[str]
    deliveries: list[WebhookDelivery] = Field(
        default_factory=list, description="The latest delivery attempts, oldest first (at most 50)."
    )


class JobOut(BaseModel):
    id: str = Field(..., description="32 lowercase hex characters.")
    status: JobStatusName
    task: str
    params: dict[str, Any] = Field(
        ..., description="Effective parameters; `seed` is filled in once a worker picks the job."
    )
    position: int | None = Field(None, description="0-based position in the queue while `queued`.")
    progress: Progress | None = Field(None, description="Stage and step while `running` (kept afterwards).")
    created_at: str
    started_at: str | None = None
    ended_at: str | None = None
    error: ErrorDetail | None = Field(
        None, description="Why the job did not succeed (status `failed`, `canceled` or `expired`)."
    )
    stats: dict[str, Any] | None = Field(None, description="Engine statistics (seconds per stage) once `succeeded`.")
    deadline_at: str | None = Field(
        None, description="When the job expires unless done (ISO 8601, UTC): submission + `deadline_s`."
    )
    webhook: WebhookOut | None = Field(None, description="The job's webhook and its delivery log, if it has one.")
    links: Links
    result_url: str | None = Field(None, description="A presigned URL of the result, when the server uses them.")


class TaskFiles(BaseModel):
    required: list[str]
    optional: list[str]


class TaskOut(BaseModel):
    name: str
    description: str
    files: TaskFiles
    params_schema: dict[str, Any] = Field(..., description="JSON schema of the task's `params` (defaults and ranges).")


class TasksOut(BaseModel):
    tasks: list[TaskOut]


class SampleOut(BaseModel):
    name: str = Field(..., description="The sample's name (its shapes-world task), as in its file URLs.")
    task: str = Field(..., description="The API task to submit it as: `resize` is a `move` with a `scale`.")
    title: str = Field(..., description="A short title for people.")
    size: int = Field(..., description="Width and height of the sample's images, in pixels.")
    params: dict[str, Any] = Field(
        ..., description="The `params` part to submit, `task` included; valid for that task's schema (/v1/tasks)."
    )
    files: dict[str, str] = Field(
        ..., description="URL of each file part's PNG (`GET /v1/samples/{name}/{field}.png`), by part name."
    )


class LimitsOut(BaseModel):
    max_upload_bytes: int
    max_request_bytes: int
    max_pixels: int
    min_side: int
    max_steps: int
    rate_limit_per_min: int
    max_queued_per_key: int
    max_queue_depth: int
    job_ttl_s: int


class InfoOut(BaseModel):
    version: str
    demo_model: bool = Field(
        ...,
        description="True when workers run a demo model (the shapes-world model or the tiny random one), not real weights.",
    )
    auth_required: bool
    default_resolution: int | None = Field(
        None,
        description="The working size (`max_resolution`) an edit gets when it sends none: the ready workers' "
        "default for their model and device (the demo model: its training size, 128; real weights: 768 on a "
        "GPU, 512 on a CPU), or `DIFFEDITOR_DEFAULT_RESOLUTION`. None until a worker is ready.",
    )
    limits: LimitsOut


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    ready: bool
    redis: bool
    workers: int
    demo_model: bool | None = Field(None, description="Whether the warm workers run the demo model (None: unknown).")
    missing: list[str] = Field(default_factory=list, description="What keeps the service from being ready.")
    notice: str | None = Field(None, description="Said when the workers run the demo model.")
    error: ErrorDetail | None = Field(None, description="When not ready: the reason, in the common error shape.")
