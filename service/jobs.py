"""The job contract between the API and the workers, on RQ.

RQ holds the job state (queue, started/finished/failed/canceled registries, retries, timeouts);
this module adds only what RQ lacks, each under one key prefix `diffeditor:<queue_name>:`:

    cancel:<job_id>      flag (string, TTL job_ttl_s) that a running job's worker checks between steps
    workers              sorted set: worker name -> last heartbeat (unix seconds)
    worker:<name>        JSON {name, device, model, is_demo, gpu_memory_bytes, last_seen}, TTL = lease
    owner:<owner>        sorted set of the owner's job ids (score: enqueue time), TTL job_ttl_s
    metrics:jobs         hash "task|outcome" -> count          (outcome: succeeded, failed, canceled)
    metrics:errors       hash "task|code" -> count             (failure codes)
    metrics:durations    hash "task|stage|le" -> cumulative count, "task|stage|sum", "task|stage|count"

The job's own RQ hash carries `meta` = {"owner", "task", "params", "progress", "error", "stats"}.
Every RQ job is enqueued with explicit TTLs (settings.job_ttl_s for queued, finished and failed
jobs), a per-job timeout (settings.job_timeout_s) and Retry(max=1): the one retry is for a job
whose worker died (the watchdog requeues it); the worker zeroes it for every error it reports
itself, so engine errors are never retried.

Watchdog: a running job's RQ execution has a short lease (LEASE = 4 heartbeats) that the worker's
heartbeat thread renews; `sweep_abandoned` (run every settings.watchdog_s by each worker and by
the API process) hands expired leases to RQ's StartedJobRegistry.cleanup, which requeues the
job once or fails it. A job is thus never `running` for longer than lease + watchdog_s after
its worker died (35 s with the defaults).

The Redis client must be created with decode_responses=False (RQ stores bytes); `connect()`
does that. Nothing here imports torch.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.job import JobStatus as RQStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.utils import utcformat

from service.settings import Settings

log = logging.getLogger("diffeditor.jobs")

JOB_FUNC = "worker.jobs.run_edit"
JOB_ID_RE = re.compile(r"^[0-9a-f]{32}$")
SERIALIZER = JSONSerializer  # job data and meta are plain JSON: readable, and no unpickling from Redis

# Histogram bucket upper bounds (seconds) for job durations; "+Inf" is implicit.
DURATION_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 150.0, 300.0, 600.0)


class JobStatus(str, Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"


_STATUS_MAP: dict[str, JobStatus] = {
    RQStatus.CREATED.value: JobStatus.queued,
    RQStatus.QUEUED.value: JobStatus.queued,
    RQStatus.DEFERRED.value: JobStatus.queued,
    RQStatus.SCHEDULED.value: JobStatus.queued,
    RQStatus.READY_TO_ENQUEUE.value: JobStatus.queued,
    RQStatus.RATE_LIMITED.value: JobStatus.queued,
    RQStatus.STARTED.value: JobStatus.running,
    RQStatus.FINISHED.value: JobStatus.succeeded,
    RQStatus.FAILED.value: JobStatus.failed,
    RQStatus.STOPPED.value: JobStatus.failed,
    RQStatus.CANCELED.value: JobStatus.canceled,
}


def map_status(rq_status: str) -> JobStatus:
    """RQ's status name -> the API's five states."""
    return _STATUS_MAP[str(getattr(rq_status, "value", rq_status))]


@dataclass
class JobView:
    id: str
    status: JobStatus
    owner: str
    task: str
    params: dict  # effective params; seed filled in once the worker picks it
    position: int | None  # 0-based queue position while queued
    progress: dict | None  # {"stage", "step", "total"}
    created_at: str
    started_at: str | None
    ended_at: str | None
    error: dict | None  # {"code", "message", "field"}
    stats: dict | None  # engine stats once succeeded


# ---------------------------------------------------------------------------------------- keys


def prefix(settings: Settings) -> str:
    return f"diffeditor:{settings.queue_name}"


def cancel_key(settings: Settings, job_id: str) -> str:
    return f"{prefix(settings)}:cancel:{job_id}"


def worker_key(settings: Settings, name: str) -> str:
    return f"{prefix(settings)}:worker:{name}"


def workers_key(settings: Settings) -> str:
    return f"{prefix(settings)}:workers"


def owner_key(settings: Settings, owner: str) -> str:
    return f"{prefix(settings)}:owner:{owner}"


def metrics_key(settings: Settings, kind: str) -> str:
    return f"{prefix(settings)}:metrics:{kind}"


def lease_s(settings: Settings) -> int:
    """How long a worker's heartbeat (and a running job's RQ execution) stays valid unrenewed."""
    return 4 * settings.heartbeat_s


# -------------------------------------------------------------------------------------- basics


def connect(settings: Settings, socket_timeout: float | None = 10.0) -> Redis:
    """A Redis client for settings.redis_url, as RQ needs it (bytes responses).

    Workers pass socket_timeout=None: their blocking dequeue waits longer than any read timeout.
    """
    if not settings.redis_url:
        raise ValueError("REDIS_URL is not set (embedded mode builds its own in-process Redis)")
    return Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=3,
        socket_timeout=socket_timeout,
        health_check_interval=30,
    )


def valid_job_id(job_id: str) -> bool:
    return isinstance(job_id, str) and JOB_ID_RE.fullmatch(job_id) is not None


def new_job_id() -> str:
    return uuid.uuid4().hex


def queue(redis: Redis, settings: Settings) -> Queue:
    return Queue(settings.queue_name, connection=redis, serializer=SERIALIZER)


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _fetch(redis: Redis, job_id: str) -> Job | None:
    if not valid_job_id(job_id):
        return None
    try:
        return Job.fetch(job_id, connection=redis, serializer=SERIALIZER)
    except NoSuchJobError:
        return None


# --------------------------------------------------------------------------------- API-facing


def enqueue(redis: Redis, settings: Settings, *, job_id: str, owner: str, params: dict) -> JobView:
    """Queue an edit whose inputs are already in the store. `params` is the validated params dict."""
    if not valid_job_id(job_id):
        raise ValueError(f"invalid job id {job_id!r}")
    task = str(params["task"])
    meta = {"owner": owner, "task": task, "params": params, "progress": None, "error": None, "stats": None}
    ttl = settings.job_ttl_s
    q = queue(redis, settings)
    with redis.pipeline() as pipe:
        job = q.enqueue_call(
            JOB_FUNC,
            args=(job_id,),
            job_id=job_id,
            timeout=settings.job_timeout_s,
            ttl=ttl,
            result_ttl=ttl,
            failure_ttl=ttl,
            retry=Retry(max=1),
            meta=meta,
            description=f"{task} edit",
            pipeline=pipe,
        )
        okey = owner_key(settings, owner)
        pipe.zadd(okey, {job_id: time.time()})
        pipe.expire(okey, ttl)
        pipe.execute()
    return _view(job, position=q.get_job_position(job_id))


def get_job(redis: Redis, settings: Settings, job_id: str) -> JobView | None:
    """The job's view, or None when the id is malformed, unknown or expired."""
    job = _fetch(redis, job_id)
    if job is None:
        return None
    try:
        return _view(job)
    except InvalidJobOperation:  # expired between the fetch and the status read
        return None


def cancel(redis: Redis, settings: Settings, job_id: str) -> JobView | None:
    """Queued -> canceled at once; running -> a flag the worker checks between steps (the view still
    says running until it stops); finished jobs are returned unchanged."""
    job = _fetch(redis, job_id)
    if job is None:
        return None
    # The flag goes first: a job a worker dequeues while we cancel it sees it on its first check.
    redis.set(cancel_key(settings, job_id), b"1", ex=settings.job_ttl_s)
    status = map_status(job.get_status())
    if status is JobStatus.queued:
        try:
            job.cancel()
        except InvalidJobOperation:
            pass  # canceled concurrently
        else:
            job.ended_at = datetime.now(timezone.utc)
            with redis.pipeline() as pipe:
                pipe.hset(job.key, "ended_at", utcformat(job.ended_at))
                pipe.expire(job.key, settings.job_ttl_s)
                pipe.execute()
            record_outcome(redis, settings, task=job.meta.get("task", "unknown"), outcome="canceled")
    return get_job(redis, settings, job_id)


def queue_depth(redis: Redis, settings: Settings) -> int:
    return queue(redis, settings).count


def queued_count_for_owner(redis: Redis, settings: Settings, owner: str) -> int:
    """How many of the owner's jobs are still queued (bounded by the per-key cap, so cheap)."""
    okey = owner_key(settings, owner)
    job_ids = [i.decode() for i in redis.zrange(okey, 0, -1)]
    if not job_ids:
        return 0
    with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(Job.key_for(job_id), "status")
        statuses = pipe.execute()
    done = [
        j for j, s in zip(job_ids, statuses, strict=True) if s is None or map_status(s.decode()) is not JobStatus.queued
    ]
    if done:
        redis.zrem(okey, *done)
    return len(job_ids) - len(done)


def ready_workers(redis: Redis, settings: Settings) -> list[dict]:
    """Workers registered warm whose heartbeat is still live."""
    names = [n.decode() for n in redis.zrange(workers_key(settings), 0, -1)]
    if not names:
        return []
    values = redis.mget([worker_key(settings, n) for n in names])
    alive, dead = [], []
    for name, raw in zip(names, values, strict=True):
        if raw is None:
            dead.append(name)
        else:
            alive.append(json.loads(raw))
    if dead:
        redis.zrem(workers_key(settings), *dead)
    return alive


def job_metrics(redis: Redis, settings: Settings) -> dict:
    """Worker-side aggregates for /metrics:

        {"jobs":      {(task, outcome): count},          outcome in succeeded | failed | canceled
         "errors":    {(task, code): count},             failure codes (invalid_input, timeout, ...)
         "durations": {(task, stage): {"buckets": [(le, cumulative_count), ..., ("+Inf", n)],
                                       "sum": seconds, "count": n}}}

    `le` are strings ("0.05", ..., "+Inf") as prometheus_client's HistogramMetricFamily takes them.
    Stages: "queued" (enqueue to start), "total" (worker wall time of the job), and each engine
    stage from the edit's stats (e.g. "inversion", "sampling", ...). Counters have no TTL on purpose
    (they are cumulative like any Prometheus counter).
    """
    with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(metrics_key(settings, "jobs"))
        pipe.hgetall(metrics_key(settings, "errors"))
        pipe.hgetall(metrics_key(settings, "durations"))
        jobs_raw, errors_raw, dur_raw = pipe.execute()

    def pairs(raw: dict) -> dict[tuple[str, str], int]:
        out = {}
        for k, v in raw.items():
            a, b = k.decode().split("|", 1)
            out[(a, b)] = int(v)
        return out

    durations: dict[tuple[str, str], dict[str, Any]] = {}
    for k, v in dur_raw.items():
        task, stage, field = k.decode().split("|", 2)
        d = durations.setdefault((task, stage), {"buckets": {}, "sum": 0.0, "count": 0})
        if field == "sum":
            d["sum"] = float(v)
        elif field == "count":
            d["count"] = int(v)
        else:
            d["buckets"][field] = int(v)
    for d in durations.values():
        got = d["buckets"]
        d["buckets"] = [(_le(b), got.get(_le(b), 0)) for b in (*DURATION_BUCKETS, math.inf)]
    return {"jobs": pairs(jobs_raw), "errors": pairs(errors_raw), "durations": durations}


# ----------------------------------------------------------------------------- worker-facing


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


def record_outcome(
    redis: Redis,
    settings: Settings,
    *,
    task: str,
    outcome: str,
    code: str | None = None,
    durations: dict[str, float] | None = None,
) -> None:
    """Count one finished job and observe its stage durations (see job_metrics for the layout)."""
    with redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(metrics_key(settings, "jobs"), f"{task}|{outcome}", 1)
        if code:
            pipe.hincrby(metrics_key(settings, "errors"), f"{task}|{code}", 1)
        dkey = metrics_key(settings, "durations")
        for stage, seconds in (durations or {}).items():
            base = f"{task}|{stage.replace('|', '_')}"
            for bound in (*DURATION_BUCKETS, math.inf):
                if seconds <= bound:
                    pipe.hincrby(dkey, f"{base}|{_le(bound)}", 1)
            pipe.hincrbyfloat(dkey, f"{base}|sum", float(seconds))
            pipe.hincrby(dkey, f"{base}|count", 1)
        pipe.execute()


def cancel_requested(redis: Redis, settings: Settings, job_id: str) -> bool:
    """One EXISTS: cheap enough to ask between every two denoising steps."""
    return bool(redis.exists(cancel_key(settings, job_id)))


def clear_cancel(redis: Redis, settings: Settings, job_id: str) -> None:
    redis.delete(cancel_key(settings, job_id))


def register_worker(redis: Redis, settings: Settings, info: dict) -> None:
    """Mark a worker ready (or refresh it): called once warm, then on every heartbeat."""
    info = {**info, "last_seen": time.time()}
    with redis.pipeline() as pipe:
        pipe.set(worker_key(settings, info["name"]), json.dumps(info), ex=lease_s(settings))
        pipe.zadd(workers_key(settings), {info["name"]: info["last_seen"]})
        pipe.execute()


def unregister_worker(redis: Redis, settings: Settings, name: str) -> None:
    with redis.pipeline() as pipe:
        pipe.delete(worker_key(settings, name))
        pipe.zrem(workers_key(settings), name)
        pipe.execute()


def sweep_abandoned(redis: Redis, settings: Settings) -> int:
    """The watchdog: jobs whose worker stopped renewing their lease are requeued once or failed.

    Any number of processes may call it: a short lock lets one sweep at a time, so an abandoned
    job is requeued once, not once per sweeper. Also prunes expired entries of the finished,
    failed and canceled registries. Returns how many abandoned jobs it handled (0 when another
    process holds the lock).
    """
    lock, token = f"{prefix(settings)}:sweep-lock", uuid.uuid4().hex
    if not redis.set(lock, token, nx=True, ex=max(10, 2 * settings.watchdog_s)):
        return 0
    try:
        return _sweep(redis, settings)
    finally:
        if redis.get(lock) == token.encode():  # not a Lua compare-and-delete: fakeredis has no Lua
            redis.delete(lock)


def _sweep(redis: Redis, settings: Settings) -> int:
    q = queue(redis, settings)
    started = StartedJobRegistry(queue=q)
    abandoned = sorted(set(started.get_expired_job_ids()))
    started.cleanup()
    for registry in (FinishedJobRegistry(queue=q), FailedJobRegistry(queue=q), CanceledJobRegistry(queue=q)):
        registry.cleanup()
    for job_id in abandoned:
        job = _fetch(redis, job_id)
        if job is None:
            continue
        status = job.get_status()
        task = job.meta.get("task", "unknown")
        if status == RQStatus.FAILED and not job.meta.get("error"):
            job.meta["error"] = _worker_lost_error()
            job.save_meta()
            redis.expire(job.key, settings.job_ttl_s)
            clear_cancel(redis, settings, job_id)
            record_outcome(redis, settings, task=task, outcome="failed", code="worker_lost")
            log.warning("job %s: its worker stopped mid-job; marked failed", job_id)
        elif map_status(status) is JobStatus.queued:
            log.warning("job %s: its worker stopped mid-job; requeued once", job_id)
    return len(abandoned)


def _worker_lost_error() -> dict:
    return {
        "code": "worker_lost",
        "message": "the worker running this job stopped unexpectedly (and the one retry was used); submit it again",
        "field": None,
    }


# ------------------------------------------------------------------------------------ views


def _view(job: Job, position: int | None = None) -> JobView:
    meta = job.meta or {}
    status = map_status(job.get_status(refresh=False) or RQStatus.QUEUED)
    error = meta.get("error")
    if status is JobStatus.failed and error and error.get("code") == "canceled":
        status = JobStatus.canceled  # the worker stopped it between steps; RQ catches up a moment later
    if status is JobStatus.failed and not error:
        # Failed by a path that did not annotate it (e.g. RQ's own registry maintenance).
        latest = job.latest_result()
        exc = (latest.exc_string or "") if latest else ""
        error = (
            _worker_lost_error()
            if "AbandonedJobError" in exc
            else {"code": "internal_error", "message": "the worker failed unexpectedly", "field": None}
        )
    if status is JobStatus.canceled:
        error = {"code": "canceled", "message": "canceled on request", "field": None}
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
        error=error if status in (JobStatus.failed, JobStatus.canceled) else None,
        stats=meta.get("stats") if status is JobStatus.succeeded else None,
    )
