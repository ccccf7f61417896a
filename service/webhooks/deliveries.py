"""Webhook deliveries in Redis: scheduling one when a job publishes an event, its record, the
queue of due deliveries, each job's delivery log and the delivery counters.

    keys.webhook(webhook_id)   the record: JSON {webhook_id, job_id, url, event, data, scheduled_at,
                               first_at, attempt, body}; `body` and `first_at` are set at the first
                               attempt, so every retry sends the same body (TTL job_ttl_s)
    keys.webhooks_due          sorted set webhook_id -> unix seconds its next attempt is due: the
                               delivery queue the deliverers claim from (deliverer.py)
    keys.webhook_log(job_id)   the job's attempts, oldest first, the latest MAX_LOG (WebhookDelivery's fields)
    keys.webhook_throttle(job_id)  a progress webhook was scheduled within webhook_progress_interval_s
    keys.metrics("webhooks")   hash "event|outcome" -> attempts (delivered, retrying, failed, refused)

Scheduling is one pipeline (the event's own, when `events.publish` passes it) and never raises a
Redis error of its own into its caller: the worker's edit must not be lost to a webhook.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from redis.client import Pipeline
from redis.exceptions import RedisError

from diffeditor.job_options import WEBHOOK_EVENTS
from service.jobs.context import JobContext

if TYPE_CHECKING:  # lifecycle imports events, which imports this module
    from service.jobs.lifecycle import JobView

log = logging.getLogger("diffeditor.webhooks")

MAX_LOG = 50
OUTCOMES: tuple[str, ...] = ("delivered", "retrying", "failed", "refused")


def new_webhook_id() -> str:
    return "msg_" + secrets.token_hex(12)


def wanted(event_type: str, options: dict[str, Any] | None) -> bool:
    """Whether the job's options ask for a webhook of this event type."""
    if not options or not options.get("webhook") or event_type not in WEBHOOK_EVENTS:
        return False
    return event_type in (options.get("webhook_events") or ["completed"])


def schedule(
    ctx: JobContext,
    job_id: str,
    event_type: str,
    data: dict[str, Any],
    options: dict[str, Any] | None,
    pipe: Pipeline | None = None,
) -> str | None:
    """Queue the delivery of one event to the job's webhook, when its options ask for this type
    (progress: at most one per webhook_progress_interval_s). Into `pipe` when given (the caller
    executes it), else in a pipeline of its own. Its webhook id, or None when none was scheduled."""
    if not wanted(event_type, options):
        return None
    assert options is not None
    settings = ctx.settings
    try:
        interval_ms = int(settings.webhook_progress_interval_s * 1000)
        if event_type == "progress" and interval_ms > 0:
            if not ctx.redis.set(ctx.keys.webhook_throttle(job_id), b"1", nx=True, px=interval_ms):
                return None  # one was scheduled within the interval
        webhook_id = new_webhook_id()
        record = {
            "webhook_id": webhook_id,
            "job_id": job_id,
            "url": options["webhook"],
            "event": event_type,
            "data": data,
            "scheduled_at": time.time(),
            "first_at": None,
            "attempt": 0,
            "body": None,
        }
        target = pipe if pipe is not None else ctx.redis.pipeline(transaction=False)
        save(ctx, record, target)
        target.zadd(ctx.keys.webhooks_due, {webhook_id: record["scheduled_at"]})
        if pipe is None:
            target.execute()
        return webhook_id
    except RedisError as exc:
        log.warning("job %s: %s webhook not scheduled: %s", job_id, event_type, exc)
        return None


def save(ctx: JobContext, record: dict[str, Any], pipe: Pipeline) -> None:
    pipe.set(
        ctx.keys.webhook(record["webhook_id"]), json.dumps(record, separators=(",", ":")), ex=ctx.settings.job_ttl_s
    )


def load(ctx: JobContext, webhook_id: str) -> dict[str, Any] | None:
    raw = ctx.redis.get(ctx.keys.webhook(webhook_id))
    return json.loads(raw) if raw else None


def append_log(ctx: JobContext, job_id: str, entry: dict[str, Any], pipe: Pipeline) -> None:
    """One attempt into the job's delivery log (WebhookDelivery's fields)."""
    key = ctx.keys.webhook_log(job_id)
    pipe.rpush(key, json.dumps(entry, separators=(",", ":")))
    pipe.ltrim(key, -MAX_LOG, -1)
    pipe.expire(key, ctx.settings.job_ttl_s)


def count(ctx: JobContext, event: str, outcome: str, pipe: Pipeline) -> None:
    pipe.hincrby(ctx.keys.metrics("webhooks"), f"{event}|{outcome}", 1)


def read_log(ctx: JobContext, job_id: str) -> list[dict[str, Any]]:
    """The job's delivery attempts, oldest first."""
    return [json.loads(raw) for raw in ctx.redis.lrange(ctx.keys.webhook_log(job_id), 0, -1)]


def log_for(ctx: JobContext, view: JobView | None) -> list[dict[str, Any]] | None:
    """What `job_out(webhook_log=)` takes for this job: its delivery log when it has a webhook
    (one Redis read), else None (no read)."""
    if view is None or not view.options.get("webhook"):
        return None
    return read_log(ctx, view.id)


def delivery_metrics(ctx: JobContext) -> dict[tuple[str, str], int]:
    """{(event, outcome): attempts} for /metrics (no TTL: cumulative, like any counter)."""
    out: dict[tuple[str, str], int] = {}
    for key, value in ctx.redis.hgetall(ctx.keys.metrics("webhooks")).items():
        event, outcome = (key.decode() if isinstance(key, bytes) else str(key)).split("|", 1)
        out[(event, outcome)] = int(value)
    return out
