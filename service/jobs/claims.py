"""Who ends a queued job without running it (a cancel, an expiry): the one process whose LREM takes
its id off the queue list. LREM is atomic against a worker's pop and against another reader doing
the same at the same moment, so a job is ended there once, counted once and its `completed` event
published once; a job a worker popped first is the worker's to end (between two steps)."""

from __future__ import annotations

from datetime import datetime, timezone

from rq.exceptions import InvalidJobOperation
from rq.job import Job
from rq.utils import utcformat

from service.jobs import events
from service.jobs.context import JobContext
from service.jobs.outcomes import record_outcome


def take_from_queue(ctx: JobContext, job_id: str) -> bool:
    """Take the job off its queue: True for the one caller that did, False when it was not there."""
    return bool(ctx.redis.lrem(ctx.queue().key, 1, job_id) == 1)


def end_queued(ctx: JobContext, job: Job, error: dict) -> bool:
    """Take a queued job off its queue and end it there with `error` (its code, `canceled` or
    `expired`, is the outcome): RQ's canceled registry, ended_at, out of the deadline index,
    counted, `completed` published. False when it was not on the queue (popped or ended already)."""
    if not take_from_queue(ctx, job.id):
        return False
    job.meta["error"] = error  # before RQ's canceled status, so no reader sees an expiry as a cancel
    job.save_meta()
    try:
        job.cancel()  # RQ's: into the canceled registry (it is off the queue already)
    except InvalidJobOperation:
        pass
    job.ended_at = datetime.now(timezone.utc)
    with ctx.redis.pipeline() as pipe:
        pipe.hset(job.key, "ended_at", utcformat(job.ended_at))
        pipe.expire(job.key, ctx.settings.job_ttl_s)
        pipe.zrem(ctx.keys.deadlines, job.id)
        pipe.execute()
    options = job.meta.get("options")
    record_outcome(ctx, task=job.meta.get("task", "unknown"), outcome=error["code"])
    events.publish(ctx, job.id, "completed", {"status": error["code"], "error": error}, options=options)
    return True
