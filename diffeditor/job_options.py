"""What a submit may ask of the job itself, beside the edit: a webhook and a deadline.

Sent in the same `params` JSON object as the edit parameters (one object for the client to
build), taken out of it before the task's model sees it (`split_options`). Torch-free: the API
validates with it and the Python client builds requests from it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

WebhookEvent = Literal["start", "progress", "completed"]
WEBHOOK_EVENTS: tuple[str, ...] = ("start", "progress", "completed")
MAX_WEBHOOK_URL_CHARS = 2048
MAX_DEADLINE_S = 30 * 24 * 3600.0  # past any job's TTL: a bound that keeps deadline_at a real date


class JobOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: str | None = Field(
        None,
        max_length=MAX_WEBHOOK_URL_CHARS,
        description="An http(s) URL that gets a signed POST for each of `webhook_events` (docs/api.md, Webhooks).",
    )
    webhook_events: list[WebhookEvent] = Field(
        default_factory=lambda: ["completed"],
        min_length=1,
        description="Which events to send: `start`, `progress` (at most one per 500 ms), `completed` "
        "(the job's final status, whatever it is).",
    )
    deadline_s: float | None = Field(
        None,
        gt=0,
        le=MAX_DEADLINE_S,
        allow_inf_nan=False,
        description="Seconds from submission: a job not started by then ends `expired` without running; a "
        "running one is stopped between steps and ends `expired`. Capped by the server's `max_deadline_s`.",
    )

    @field_validator("webhook_events")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return sorted(set(v), key=WEBHOOK_EVENTS.index)


OPTION_NAMES: tuple[str, ...] = tuple(JobOptions.model_fields)


def split_options(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(edit params, job options) of one submitted params object."""
    params = {k: v for k, v in data.items() if k not in OPTION_NAMES}
    options = {k: v for k, v in data.items() if k in OPTION_NAMES}
    return params, options
