"""`GET /v1/edits/{id}/events`: the job's events as Server-Sent Events (service/jobs/events.py).

The stream replays the job's event log from the start, or after `Last-Event-ID` (the header a
browser's EventSource sends when it reconnects, or the `last_event_id` query parameter), then
follows it live until the job's `completed` event, whose data is the job's final `JobOut`.
While the job waits, a `queued` event (without an id, so a reconnect does not skip anything)
tells each change of its queue position. A comment line every 15 s keeps proxies from closing
an idle stream. Owner rules as the status route: someone else's job is a 404.

Redis is polled (one XREAD per 0.25 s, one status read per second, per open stream) rather than
blocked on: the API's Redis client is synchronous, and a blocking read would hold a thread-pool
thread per open stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from service.auth import require_owner
from service.errors import ApiError
from service.job_out import job_out
from service.jobs import events, lifecycle
from service.jobs.context import JobContext
from service.jobs.lifecycle import JobView
from service.jobs.status import FINISHED, JobStatus
from service.routers.deps import error_responses, get_store, job_context, owned_job
from service.store import Store
from service.webhooks import deliveries

router = APIRouter(prefix="/v1/edits", tags=["edits"])

POLL_S = 0.25  # how often the log is read for new events
STATUS_EVERY_S = 1.0  # how often the job itself is read (queue position, an end the log missed)
KEEPALIVE_S = 15.0
RETRY_MS = 1000  # the reconnect delay a browser's EventSource is told


def sse(event: str, data: dict[str, Any], event_id: str | None = None) -> str:
    """One Server-Sent Event: data is one line of JSON."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.get(
    "/{job_id}/events",
    summary="The edit's events as a Server-Sent Events stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Events `queued`, `start`, `progress`, `preview`, `completed` (docs/api.md, Events); "
            "the stream ends after `completed`.",
        },
        **error_responses(401, 404, 422, 503),
    },
)
async def edit_events(
    job_id: str,
    request: Request,
    owner: str = Depends(require_owner),
    ctx: JobContext = Depends(job_context),
    store: Store = Depends(get_store),
    last_event_id_header: str | None = Header(
        None, alias="Last-Event-ID", description="Resume after this event id (what EventSource sends)."
    ),
    last_event_id: str | None = Query(None, description="Resume after this event id (for clients without headers)."),
) -> StreamingResponse:
    after = last_event_id_header or last_event_id or "0-0"
    if not events.valid_event_id(after):
        field = "Last-Event-ID" if last_event_id_header else "last_event_id"
        raise ApiError(422, "invalid_value", f"{field}: not an event id of this stream (like 1764000000000-0)", field)
    await run_in_threadpool(owned_job, ctx, job_id, owner)  # a 404 before any byte of a stream
    root_path = request.scope.get("root_path", "")
    return StreamingResponse(
        _follow(request, ctx, store, job_id, after, root_path),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},  # no proxy buffering (nginx)
    )


async def _follow(
    request: Request, ctx: JobContext, store: Store, job_id: str, after: str, root_path: str
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    position: int | None = None
    last_status = last_sent = 0.0
    while not await request.is_disconnected():
        batch = await run_in_threadpool(events.read, ctx, job_id, after)
        for event in batch:
            after = event.id
            if event.type == "completed":
                final = await run_in_threadpool(_final, ctx, store, job_id, root_path, event.data)
                yield sse("completed", final, event.id)
                return
            if event.type == "queued":
                position = event.data.get("position")
            yield sse(event.type, event.data, event.id)
            last_sent = time.monotonic()
        if batch:
            continue  # there may be more behind a full batch
        now = time.monotonic()
        if now - last_status >= STATUS_EVERY_S:
            last_status = now
            view = await run_in_threadpool(lifecycle.get_job, ctx, job_id)
            if view is None:  # gone past its TTL while we followed it
                return
            if view.status in FINISHED:
                # Its completed event may have been written since our read; if it is not there,
                # the log lost it (trimmed, or a Redis blip when it was published): say the end anyway.
                if not await run_in_threadpool(events.read, ctx, job_id, after):
                    final = await run_in_threadpool(_final_of, ctx, store, view, root_path)
                    yield sse("completed", final)
                    return
                continue
            if view.status is JobStatus.queued and view.position != position:
                position = view.position
                yield sse("queued", {"status": "queued", "position": position})
                last_sent = now
        if now - last_sent >= KEEPALIVE_S:
            yield ": keepalive\n\n"
            last_sent = now
        await asyncio.sleep(POLL_S)


def _final(ctx: JobContext, store: Store, job_id: str, root_path: str, data: dict[str, Any]) -> dict[str, Any]:
    """A completed event's data for the stream: the job's whole final view (the log's own data
    when the job has expired from Redis since)."""
    view = lifecycle.get_job(ctx, job_id)
    return _final_of(ctx, store, view, root_path) if view is not None else data


def _final_of(ctx: JobContext, store: Store, view: JobView, root_path: str) -> dict[str, Any]:
    """The job's final `JobOut`, its webhook's delivery log included."""
    return job_out(view, root_path, store, webhook_log=deliveries.log_for(ctx, view)).model_dump(mode="json")
