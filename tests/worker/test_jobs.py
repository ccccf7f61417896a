"""service.jobs, the API/worker contract on RQ: views, status mapping, queue positions, owner
counts, cancellation of queued jobs, the ready-worker registry, metrics and the watchdog sweep."""

from __future__ import annotations

import pytest
from redis import Redis
from rq import SimpleWorker
from rq.job import Job
from rq.job import JobStatus as RQStatus
from rq.registry import StartedJobRegistry

from service.jobs import lifecycle, outcomes, quotas, watchdog, workers
from service.jobs.context import SERIALIZER, JobContext
from service.jobs.ids import new_job_id
from service.jobs.status import JobStatus, map_status
from service.settings import Settings
from service.store import LocalStore
from tests.worker.conftest import submit


@pytest.mark.parametrize(
    ("rq_status", "status"),
    [
        (RQStatus.CREATED, "queued"),
        (RQStatus.QUEUED, "queued"),
        (RQStatus.DEFERRED, "queued"),
        (RQStatus.SCHEDULED, "queued"),
        (RQStatus.STARTED, "running"),
        (RQStatus.FINISHED, "succeeded"),
        (RQStatus.FAILED, "failed"),
        (RQStatus.STOPPED, "failed"),
        (RQStatus.CANCELED, "canceled"),
    ],
)
def test_status_mapping(rq_status: RQStatus, status: str) -> None:
    assert map_status(rq_status) is JobStatus(status)
    assert map_status(rq_status.value) is JobStatus(status)


def test_every_rq_status_is_mapped() -> None:
    for rq_status in RQStatus:
        assert map_status(rq_status) in set(JobStatus)


def test_enqueue_and_view(redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore) -> None:
    params = {"task": "drag", "points": [[1, 2, 3, 4]], "seed": None}
    first = submit(redis, settings, store, params, owner="alice")
    second = submit(redis, settings, store, params, owner="alice")
    view = lifecycle.get_job(ctx, second)
    assert view.id == second and view.status is JobStatus.queued
    assert view.owner == "alice" and view.task == "drag" and view.params == params
    assert view.position == 1 and lifecycle.get_job(ctx, first).position == 0
    assert view.created_at.endswith("Z") and view.started_at is None and view.ended_at is None
    assert view.progress is None and view.error is None and view.stats is None
    assert lifecycle.queue_depth(ctx) == 2
    assert quotas.queued_count_for_owner(ctx, "alice") == 2
    assert quotas.queued_count_for_owner(ctx, "bob") == 0


def test_everything_has_a_ttl(redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore) -> None:
    job_id = submit(redis, settings, store, owner="alice")
    assert 0 < redis.ttl(Job.key_for(job_id)) <= settings.job_ttl_s
    assert 0 < redis.ttl(ctx.keys.owner("alice")) <= settings.job_ttl_s
    lifecycle.cancel(ctx, job_id)
    assert 0 < redis.ttl(ctx.keys.cancel(job_id)) <= settings.job_ttl_s
    assert 0 < redis.ttl(Job.key_for(job_id)) <= settings.job_ttl_s


@pytest.mark.parametrize("job_id", ["", "abc", "../../etc/passwd", "A" * 32, "g" * 32, "0" * 33, "0" * 31 + "\n"])
def test_malformed_ids_are_unknown(redis: Redis, settings: Settings, ctx: JobContext, job_id: str) -> None:
    assert lifecycle.get_job(ctx, job_id) is None
    assert lifecycle.cancel(ctx, job_id) is None
    with pytest.raises(ValueError):
        lifecycle.enqueue(ctx, job_id=job_id, owner="anon", params={"task": "move", "offset": [1, 1]})


def test_unknown_job_is_none(redis: Redis, settings: Settings, ctx: JobContext) -> None:
    assert lifecycle.get_job(ctx, new_job_id()) is None
    assert lifecycle.cancel(ctx, new_job_id()) is None


def test_cancel_queued_job(redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore) -> None:
    first = submit(redis, settings, store, owner="alice")
    second = submit(redis, settings, store, owner="alice")
    view = lifecycle.cancel(ctx, first)
    assert view.status is JobStatus.canceled and view.position is None
    assert view.ended_at is not None and view.error["code"] == "canceled"
    assert lifecycle.queue_depth(ctx) == 1
    assert lifecycle.get_job(ctx, second).position == 0
    assert quotas.queued_count_for_owner(ctx, "alice") == 1
    again = lifecycle.cancel(ctx, first)  # idempotent
    assert again.status is JobStatus.canceled
    assert outcomes.job_metrics(ctx)["jobs"] == {("move", "canceled"): 1}


def test_ready_workers_drop_expired_entries(redis: Redis, settings: Settings, ctx: JobContext) -> None:
    info = {"name": "w1", "device": "cuda:0", "model": "sd15", "is_demo": False, "gpu_memory_bytes": 123}
    workers.register_worker(ctx, info)
    workers.register_worker(ctx, {**info, "name": "w2"})
    ready = {w["name"]: w for w in workers.ready_workers(ctx)}
    assert set(ready) == {"w1", "w2"} and ready["w1"]["gpu_memory_bytes"] == 123
    assert 0 < redis.ttl(ctx.keys.worker("w1")) <= ctx.lease_s
    redis.delete(ctx.keys.worker("w2"))  # what its TTL does once its heartbeat stops
    assert [w["name"] for w in workers.ready_workers(ctx)] == ["w1"]
    workers.unregister_worker(ctx, "w1")
    assert workers.ready_workers(ctx) == []
    assert redis.zcard(ctx.keys.workers) == 0


def test_job_metrics_layout(redis: Redis, settings: Settings, ctx: JobContext) -> None:
    outcomes.record_outcome(ctx, task="move", outcome="succeeded", durations={"sampling": 0.3, "total": 7.0})
    outcomes.record_outcome(ctx, task="move", outcome="succeeded", durations={"sampling": 0.05})
    outcomes.record_outcome(ctx, task="drag", outcome="failed", code="timeout")
    m = outcomes.job_metrics(ctx)
    assert m["jobs"] == {("move", "succeeded"): 2, ("drag", "failed"): 1}
    assert m["errors"] == {("drag", "timeout"): 1}
    sampling = m["durations"][("move", "sampling")]
    assert sampling["count"] == 2 and sampling["sum"] == pytest.approx(0.35)
    buckets = dict(sampling["buckets"])
    assert buckets["0.05"] == 1 and buckets["0.25"] == 1 and buckets["0.5"] == 2 and buckets["+Inf"] == 2
    assert [le for le, _ in sampling["buckets"]][-1] == "+Inf"
    counts = [c for _, c in m["durations"][("move", "total")]["buckets"]]
    assert counts == sorted(counts) and counts[-1] == 1  # cumulative


def _start_and_abandon(ctx: JobContext, job_id: str) -> None:
    """What a worker does up to the moment it is SIGKILLed mid-job, then its lease running out."""
    q = ctx.queue()
    job = Job.fetch(job_id, connection=ctx.redis, serializer=SERIALIZER)
    worker = SimpleWorker([q], connection=ctx.redis, serializer=SERIALIZER, name=f"doomed-{job_id[:6]}")
    q.remove(job)
    execution = worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    assert lifecycle.get_job(ctx, job_id).status is JobStatus.running
    started = StartedJobRegistry(queue=q)
    ctx.redis.zadd(started.key, {execution.composite_key: 1})  # the lease expired long ago


def test_watchdog_requeues_an_abandoned_job_once_then_fails_it(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore
) -> None:
    job_id = submit(redis, settings, store)
    assert watchdog.sweep_abandoned(ctx) == 0

    _start_and_abandon(ctx, job_id)
    assert watchdog.sweep_abandoned(ctx) == 1
    view = lifecycle.get_job(ctx, job_id)
    assert view.status is JobStatus.queued and view.position == 0  # the one retry
    assert 0 < redis.ttl(Job.key_for(job_id)) <= settings.job_ttl_s

    _start_and_abandon(ctx, job_id)
    assert watchdog.sweep_abandoned(ctx) == 1
    view = lifecycle.get_job(ctx, job_id)
    assert view.status is JobStatus.failed and view.error["code"] == "worker_lost"
    assert 0 < redis.ttl(Job.key_for(job_id)) <= settings.job_ttl_s
    assert outcomes.job_metrics(ctx)["errors"] == {("move", "worker_lost"): 1}


def test_watchdog_leaves_live_jobs_alone(redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore) -> None:
    job_id = submit(redis, settings, store)
    q = ctx.queue()
    job = Job.fetch(job_id, connection=redis, serializer=SERIALIZER)
    worker = SimpleWorker([q], connection=redis, serializer=SERIALIZER, name="alive")
    q.remove(job)
    worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    assert watchdog.sweep_abandoned(ctx) == 0
    assert lifecycle.get_job(ctx, job_id).status is JobStatus.running


def test_one_sweeper_at_a_time(redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore) -> None:
    job_id = submit(redis, settings, store)
    _start_and_abandon(ctx, job_id)
    lock = ctx.keys.sweep_lock
    redis.set(lock, b"another-process", ex=30)  # another API replica or worker is sweeping
    assert watchdog.sweep_abandoned(ctx) == 0
    assert lifecycle.get_job(ctx, job_id).status is JobStatus.running
    redis.delete(lock)
    assert watchdog.sweep_abandoned(ctx) == 1
    assert lifecycle.queue_depth(ctx) == 1  # requeued exactly once
    assert not redis.exists(lock)  # released after the sweep
