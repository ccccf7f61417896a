"""Who ends a queued job without running it (a cancel, an expiry): the one process whose LREM takes
its id off the queue list. LREM is atomic against a worker's pop and against another reader doing
the same at the same moment, so a job is ended there once, counted once and its `completed` event
published once; a job a worker popped first is the worker's to end (between two steps)."""

from __future__ import annotations

from service.jobs.context import JobContext


def take_from_queue(ctx: JobContext, job_id: str) -> bool:
    """Take the job off its queue: True for the one caller that did, False when it was not there."""
    return bool(ctx.redis.lrem(ctx.queue().key, 1, job_id) == 1)
