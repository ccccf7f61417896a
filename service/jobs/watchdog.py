"""The watchdog: jobs whose worker died are requeued once or failed.

A running job's RQ execution has a short lease (`JobContext.lease_s`, 4 heartbeats) that the
worker's heartbeat thread renews; `sweep_abandoned` (run every settings.watchdog_s by each worker
and by the API process) hands expired leases to RQ's StartedJobRegistry.cleanup, which requeues
the job once or fails it. A job is thus never `running` for longer than lease + watchdog_s after
its worker died (35 s with the defaults).
"""

from __future__ import annotations

import logging
import uuid

from rq.job import JobStatus as RQStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

from service.jobs import deadlines, events
from service.jobs.context import JobContext
from service.jobs.lifecycle import clear_cancel, fetch
from service.jobs.outcomes import record_outcome
from service.jobs.status import JobStatus, map_status, worker_lost_error

log = logging.getLogger("diffeditor.jobs")


def sweep_abandoned(ctx: JobContext) -> int:
    """Requeue once or fail the jobs whose worker stopped renewing their lease; expire the queued
    jobs whose deadline passed (deadlines.sweep).

    Any number of processes may call it: a short lock lets one sweep at a time, so an abandoned
    job is requeued once, not once per sweeper. Also prunes expired entries of the finished,
    failed and canceled registries. Returns how many abandoned jobs it handled (0 when another
    process holds the lock).
    """
    lock, token = ctx.keys.sweep_lock, uuid.uuid4().hex
    if not ctx.redis.set(lock, token, nx=True, ex=max(10, 2 * ctx.settings.watchdog_s)):
        return 0
    try:
        return _sweep(ctx)
    finally:
        if ctx.redis.get(lock) == token.encode():  # not a Lua compare-and-delete: fakeredis has no Lua
            ctx.redis.delete(lock)


def _sweep(ctx: JobContext) -> int:
    q = ctx.queue()
    started = StartedJobRegistry(queue=q)
    abandoned = sorted(set(started.get_expired_job_ids()))
    started.cleanup()
    for registry in (FinishedJobRegistry(queue=q), FailedJobRegistry(queue=q), CanceledJobRegistry(queue=q)):
        registry.cleanup()
    for job_id in abandoned:
        job = fetch(ctx, job_id)
        if job is None:
            continue
        status = job.get_status()
        task = job.meta.get("task", "unknown")
        if status == RQStatus.FAILED and not job.meta.get("error"):
            job.meta["error"] = worker_lost_error()
            job.save_meta()
            ctx.redis.expire(job.key, ctx.settings.job_ttl_s)
            clear_cancel(ctx, job_id)
            record_outcome(ctx, task=task, outcome="failed", code="worker_lost")
            events.publish(
                ctx,
                job_id,
                "completed",
                {"status": "failed", "error": job.meta["error"]},
                options=job.meta.get("options"),
            )
            log.warning("job %s: its worker stopped mid-job; marked failed", job_id)
        elif map_status(status) is JobStatus.queued:
            deadlines.track(ctx, job_id, job.meta.get("options"))
            events.publish(
                ctx,
                job_id,
                "queued",
                {"status": "queued", "position": job.get_position()},
                options=job.meta.get("options"),
            )
            log.warning("job %s: its worker stopped mid-job; requeued once", job_id)
    deadlines.sweep(ctx)
    return len(abandoned)
