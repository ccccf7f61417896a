"""A job's life as the API drives it: enqueue, view, cancel; and the cancel flag the worker reads.

Cancel: a queued job is canceled at once; a running one gets the flag `keys.cancel(job_id)`,
which its worker checks between denoising steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from rq import Retry
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.job import JobStatus as RQStatus

from service.jobs import deadlines, events, quotas
from service.jobs.claims import end_queued
from service.jobs.context import JOB_FUNC, SERIALIZER, JobContext
from service.jobs.ids import valid_job_id
from service.jobs.status import STOPPED_CODES, JobStatus, map_status, worker_lost_error
from service.timestamps import iso_utc


@dataclass
class JobView:
    id: str
    status: JobStatus
    owner: str
    task: str
    params: dict  # effective params; seed filled in once the worker picks it
    position: int | None  # 0-based queue position while queued
    progress: dict | None  # {"stage", "step", "total", "eta_s"}
    created_at: str
    started_at: str | None
    ended_at: str | None
    error: dict | None  # {"code", "message", "field"}
    stats: dict | None  # engine stats once succeeded
    # {"webhook", "webhook_events", "deadline_s", "deadline_at", "links_base"} as submitted (job_options;
    # links_base, the URL the API was reached at, with a webhook only: its bodies' absolute links)
    options: dict


def fetch(ctx: JobContext, job_id: str) -> Job | None:
    """The RQ job, or None when the id is malformed or the job unknown."""
    if not valid_job_id(job_id):
        return None
    try:
        return Job.fetch(job_id, connection=ctx.redis, serializer=SERIALIZER)
    except NoSuchJobError:
        return None


def enqueue(ctx: JobContext, *, job_id: str, owner: str, params: dict, options: dict | None = None) -> JobView:
    """Queue an edit whose inputs are already in the store. `params` is the validated params dict,
    `options` the job options (diffeditor.job_options, validated; `deadline_s` capped)."""
    if not valid_job_id(job_id):
        raise ValueError(f"invalid job id {job_id!r}")
    task = str(params["task"])
    options = {k: v for k, v in (options or {}).items() if v is not None}
    if options.get("deadline_s") is not None:
        options["deadline_at"] = round(time.time() + float(options["deadline_s"]), 3)
    meta = {
        "owner": owner,
        "task": task,
        "params": params,
        "options": options,
        "progress": None,
        "error": None,
        "stats": None,
    }
    ttl = ctx.settings.job_ttl_s
    q = ctx.queue()
    position = q.count  # where it lands, unless another submit races it (then one off)
    with ctx.redis.pipeline() as pipe:
        job = q.enqueue_call(
            JOB_FUNC,
            args=(job_id,),
            job_id=job_id,
            timeout=ctx.settings.job_timeout_s,
            ttl=ttl,
            result_ttl=ttl,
            failure_ttl=ttl,
            retry=Retry(max=1),
            meta=meta,
            description=f"{task} edit",
            pipeline=pipe,
        )
        quotas.track(ctx, pipe, owner, job_id)
        deadlines.track(ctx, job_id, options, pipe)
        # In the same transaction: `queued` is in the log before a worker can pop the job and log `start`.
        events.publish(ctx, job_id, "queued", {"status": "queued", "position": position}, pipe=pipe, options=options)
        pipe.execute()
    return _view(job, position=position)


def get_job(ctx: JobContext, job_id: str) -> JobView | None:
    """The job's view, or None when the id is malformed, unknown or gone (past its TTL).

    A queued job found past its deadline is expired here and then (deadlines.py)."""
    job = fetch(ctx, job_id)
    if job is None:
        return None
    try:
        if deadlines.passed(job) and deadlines.expire_queued(ctx, job):
            job.refresh()
        return _view(job)
    except InvalidJobOperation:  # expired between the fetch and the status read
        return None


def cancel(ctx: JobContext, job_id: str) -> JobView | None:
    """Queued -> canceled at once; running -> a flag the worker checks between steps (the view still
    says running until it stops); finished jobs are returned unchanged."""
    job = fetch(ctx, job_id)
    if job is None:
        return None
    ttl = ctx.settings.job_ttl_s
    # The flag goes first: a job a worker dequeues while we cancel it sees it on its first check.
    ctx.redis.set(ctx.keys.cancel(job_id), b"1", ex=ttl)
    status = map_status(job.get_status())
    # Ended here when we take it off the queue (claims.py), else left to the worker that popped
    # it, which sees the flag.
    if status is JobStatus.queued:
        end_queued(ctx, job, canceled_error())
    return get_job(ctx, job_id)


def cancel_requested(ctx: JobContext, job_id: str) -> bool:
    """One EXISTS: cheap enough to ask between every two denoising steps."""
    return bool(ctx.redis.exists(ctx.keys.cancel(job_id)))


def clear_cancel(ctx: JobContext, job_id: str) -> None:
    ctx.redis.delete(ctx.keys.cancel(job_id))


def queue_depth(ctx: JobContext) -> int:
    return ctx.queue().count


def _iso(dt: datetime | None) -> str | None:
    return iso_utc(dt) if dt is not None else None


def _view(job: Job, position: int | None = None) -> JobView:
    meta = job.meta or {}
    status = map_status(job.get_status(refresh=False) or RQStatus.QUEUED)
    error = meta.get("error")
    stopped = STOPPED_CODES.get((error or {}).get("code", ""))
    if status in (JobStatus.failed, JobStatus.canceled) and stopped is not None:
        # Stopped between steps (or expired): the error says which; RQ catches up a moment later.
        status = stopped
    if status is JobStatus.failed and not error:
        # Failed by a path that did not annotate it (e.g. RQ's own registry maintenance).
        latest = job.latest_result()
        exc = (latest.exc_string or "") if latest else ""
        error = (
            worker_lost_error()
            if "AbandonedJobError" in exc
            else {"code": "internal_error", "message": "the worker failed unexpectedly", "field": None}
        )
    if status is JobStatus.canceled:
        error = canceled_error()
    if status is JobStatus.queued and position is None:
        position = job.get_position()
    return JobView(
        id=job.id,
        status=status,
        owner=meta.get("owner", ""),
        task=meta.get("task", ""),
        params=meta.get("params") or {},
        position=position if status is JobStatus.queued else None,
        progress=meta.get("progress"),
        created_at=_iso(job.created_at) or "",
        started_at=_iso(job.started_at) if status is not JobStatus.queued else None,
        ended_at=_iso(job.ended_at) if status not in (JobStatus.queued, JobStatus.running) else None,
        error=error if status in (JobStatus.failed, JobStatus.canceled, JobStatus.expired) else None,
        stats=meta.get("stats") if status is JobStatus.succeeded else None,
        options=meta.get("options") or {},
    )


def canceled_error() -> dict:
    return {"code": "canceled", "message": "canceled on request", "field": None}
