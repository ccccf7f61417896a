"""Deadlines (`deadline_s`): a job not started by its deadline ends `expired` without running.

The deadline is kept in the job's meta (`options.deadline_at`, unix seconds) and, while the job is
queued, in the sorted set `keys.deadlines`. Three places end a job that ran out of time, so none
waits on another:
- a read of the job (`lifecycle.get_job`) that finds it queued past its deadline expires it then,
  so a client never sees `queued` after the deadline;
- the watchdog's sweep (every settings.watchdog_s, in the API and every worker) expires the ones
  nobody read, so webhooks and metrics hear of it within that bound;
- a worker that dequeues one past its deadline expires it instead of running it, and a running
  job whose deadline passes is stopped between two steps (worker/jobs.py) and ends `expired` too.
"""

from __future__ import annotations

import logging
import time

from redis.client import Pipeline
from rq.exceptions import NoSuchJobError
from rq.job import Job

from service.jobs.claims import end_queued
from service.jobs.context import SERIALIZER, JobContext
from service.jobs.status import JobStatus, map_status

log = logging.getLogger("diffeditor.jobs")


def deadline_at(job: Job) -> float | None:
    value = ((job.meta or {}).get("options") or {}).get("deadline_at")
    return float(value) if value is not None else None


def passed(job: Job, now: float | None = None) -> bool:
    at = deadline_at(job)
    return at is not None and (time.time() if now is None else now) >= at


def expired_error(started: bool, deadline_s: float | None) -> dict:
    limit = f"its deadline ({deadline_s:g} s after submission)" if deadline_s is not None else "its deadline"
    message = f"{limit} passed " + ("while it ran; stopped between two steps" if started else "before it started")
    return {"code": "expired", "message": message, "field": None}


def track(ctx: JobContext, job_id: str, options: dict | None, pipe: Pipeline | None = None) -> None:
    """Put a queued job with a deadline in the sweep's index (at submit, and again when the
    watchdog requeues it: the sweep forgets a job once it started)."""
    at = (options or {}).get("deadline_at")
    if at is not None:
        (pipe if pipe is not None else ctx.redis).zadd(ctx.keys.deadlines, {job_id: float(at)})


def expire_queued(ctx: JobContext, job: Job) -> bool:
    """End a queued job as expired: out of the queue, its error said, counted, its event published.
    False when it was no longer queued (started, canceled or expired by another process)."""
    if map_status(job.get_status()) is not JobStatus.queued:
        return False
    options = job.meta.get("options") or {}
    if not end_queued(ctx, job, expired_error(False, options.get("deadline_s"))):
        return False  # a worker, or another reader, has it
    log.info("job %s expired in the queue", job.id)
    return True


def sweep(ctx: JobContext, now: float | None = None) -> int:
    """Expire the queued jobs whose deadline passed; forget the ones that are no longer queued.
    Returns how many it expired."""
    now = time.time() if now is None else now
    due = ctx.redis.zrangebyscore(ctx.keys.deadlines, "-inf", now)
    expired = 0
    for raw in due:
        job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        try:
            job = Job.fetch(job_id, connection=ctx.redis, serializer=SERIALIZER)
        except NoSuchJobError:
            job = None
        if job is not None and expire_queued(ctx, job):
            expired += 1
        else:
            ctx.redis.zrem(ctx.keys.deadlines, job_id)
    return expired
