"""Each job's event log: a capped Redis stream under `keys.events(job_id)`, written by the API
(queued, and the end of a job it stops itself) and by the worker (start, progress, preview,
completed); read by the SSE route, which replays it from a `Last-Event-ID`, and by webhooks.

An event is {id, type, data}: `id` is the stream's entry id ("<ms>-<seq>", increasing), so a client
that reconnects with the last id it saw misses nothing and sees nothing twice. Types, in a job's
order:

    queued     {"status": "queued", "position"}                      at submit and at a requeue
    start      {"status": "running", "worker"}                       a worker picked it up
    progress   {"status": "running", "stage", "step", "total", "eta_s"}    as the job's `progress`
    preview    {"step", "total", "width", "height", "image"}         `image`: a data: URL (JPEG)
    completed  {"status", "error"}                                   the final status, any of them

Publishing is best effort for its callers' sake (a Redis blip costs an event, never the job's own
result), which is why the worker wraps it; the job's hash stays the truth the status route reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from redis.client import Pipeline

from service.jobs.context import JobContext
from service.webhooks import deliveries

EventType = Literal["queued", "start", "progress", "preview", "completed"]
EVENT_TYPES: tuple[str, ...] = ("queued", "start", "progress", "preview", "completed")
# A 50-step edit writes about 150 events (two stages of steps, previews, the rest); the cap keeps a
# 200-step one whole, and bounds what a runaway writer can cost.
MAX_EVENTS = 1000
EVENT_ID_RE = re.compile(r"\d{1,20}-\d{1,20}")


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    data: dict[str, Any]


def publish(
    ctx: JobContext,
    job_id: str,
    type: EventType,
    data: dict[str, Any],
    pipe: Pipeline | None = None,
    options: dict[str, Any] | None = None,
) -> str | None:
    """Append one event; its id, or None when it went into `pipe` (executed by the caller).

    `options` are the job's (meta["options"]): the webhook it asked for hears the event when it
    asked for its type, scheduled in the same pipeline (service/webhooks/deliveries.py)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    key = ctx.keys.events(job_id)
    fields = {"type": type, "data": json.dumps(data, separators=(",", ":"))}
    target = pipe if pipe is not None else ctx.redis.pipeline(transaction=False)
    target.xadd(key, fields, maxlen=MAX_EVENTS, approximate=True)
    target.expire(key, ctx.settings.job_ttl_s)
    deliveries.schedule(ctx, job_id, type, data, options, pipe=target)
    if pipe is not None:
        return None
    event_id = target.execute()[0]
    return event_id.decode() if isinstance(event_id, bytes) else str(event_id)


def read(ctx: JobContext, job_id: str, after: str = "0-0", count: int = 200) -> list[Event]:
    """The events after `after` (exclusive), oldest first, at most `count`."""
    if not valid_event_id(after):
        raise ValueError(f"not an event id: {after!r}")
    answer = ctx.redis.xread({ctx.keys.events(job_id): after}, count=count)
    events = []
    for _stream, entries in answer or ():
        for entry_id, fields in entries:
            get = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
            raw_type, raw_data = get.get("type", b""), get.get("data", b"{}")
            events.append(
                Event(
                    id=entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id),
                    type=raw_type.decode() if isinstance(raw_type, bytes) else str(raw_type),
                    data=json.loads(raw_data),
                )
            )
    return events


MAX_ID_PART = 2**64 - 1  # Redis refuses a larger stream id part


def valid_event_id(text: str) -> bool:
    return EVENT_ID_RE.fullmatch(text) is not None and all(int(p) <= MAX_ID_PART for p in text.split("-"))
