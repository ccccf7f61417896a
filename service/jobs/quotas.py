"""Each owner's set of job ids (score: enqueue time), for the per-key cap on queued jobs."""

from __future__ import annotations

import time

from redis.client import Pipeline
from rq.job import Job

from service.jobs.context import JobContext
from service.jobs.status import JobStatus, map_status


def track(ctx: JobContext, pipe: Pipeline, owner: str, job_id: str) -> None:
    """Add a job being enqueued to its owner's set, in the enqueue's own pipeline."""
    okey = ctx.keys.owner(owner)
    pipe.zadd(okey, {job_id: time.time()})
    pipe.expire(okey, ctx.settings.job_ttl_s)


def queued_count_for_owner(ctx: JobContext, owner: str) -> int:
    """How many of the owner's jobs are still queued (bounded by the per-key cap, so cheap); the
    ones no longer queued leave the set here."""
    okey = ctx.keys.owner(owner)
    job_ids = [i.decode() for i in ctx.redis.zrange(okey, 0, -1)]
    if not job_ids:
        return 0
    with ctx.redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(Job.key_for(job_id), "status")
        statuses = pipe.execute()
    done = [
        j for j, s in zip(job_ids, statuses, strict=True) if s is None or map_status(s.decode()) is not JobStatus.queued
    ]
    if done:
        ctx.redis.zrem(okey, *done)
    return len(job_ids) - len(done)
