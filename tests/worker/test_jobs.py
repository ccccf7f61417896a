"""service.jobs, the API/worker contract on RQ: views, status mapping, queue positions, owner
counts, cancellation of queued jobs, the ready-worker registry, metrics and the watchdog sweep."""

from __future__ import annotations

import pytest
from redis import Redis
from rq import SimpleWorker
from rq.job import Job
from rq.job import JobStatus as RQStatus
from rq.registry import StartedJobRegistry

from service import jobs
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
    assert jobs.map_status(rq_status) is jobs.JobStatus(status)
    assert jobs.map_status(rq_status.value) is jobs.JobStatus(status)


def test_every_rq_status_is_mapped() -> None:
    for rq_status in RQStatus:
        assert jobs.map_status(rq_status) in set(jobs.JobStatus)


def test_enqueue_and_view(redis: Redis, settings: Settings, store: LocalStore) -> None:
    params = {"task": "drag", "points": [[1, 2, 3, 4]], "seed": None}
    first = submit(redis, settings, store, params, owner="alice")
    second = submit(redis, settings, store, params, owner="alice")
    view = jobs.get_job(redis, settings, second)
    assert view.id == second and view.status is jobs.JobStatus.queued
    assert view.owner == "alice" and view.task == "drag" and view.params == params
    assert view.position == 1 and jobs.get_job(redis, settings, first).position == 0
    assert view.created_at.endswith("Z") and view.started_at is None and view.ended_at is None
    assert view.progress is None and view.error is None and view.stats is None
    assert jobs.queue_depth(redis, settings) == 2
    assert jobs.queued_count_for_owner(redis, settings, "alice") == 2
    assert jobs.queued_count_for_owner(redis, settings, "bob") == 0


def test_everything_has_a_ttl(redis: Redis, settings: Settings, store: LocalStore) -> None:
    job_id = submit(redis, settings, store, owner="alice")
    assert 0 < redis.ttl(Job.key_for(job_id)) <= settings.job_ttl_s
    assert 0 < redis.ttl(jobs.owner_key(settings, "alice")) <= settings.job_ttl_s
    jobs.cancel(redis, settings, job_id)
    assert 0 < redis.ttl(jobs.cancel_key(settings, job_id)) <= settings.job_ttl_s
    assert 0 < redis.ttl(Job.key_for(job_id)) <= settings.job_ttl_s


@pytest.mark.parametrize("job_id", ["", "abc", "../../etc/passwd", "A" * 32, "g" * 32, "0" * 33, "0" * 31 + "\n"])
def test_malformed_ids_are_unknown(redis: Redis, settings: Settings, job_id: str) -> None:
    assert jobs.get_job(redis, settings, job_id) is None
    assert jobs.cancel(redis, settings, job_id) is None
    with pytest.raises(ValueError):
        jobs.enqueue(redis, settings, job_id=job_id, owner="anon", params={"task": "move", "offset": [1, 1]})


def test_unknown_job_is_none(redis: Redis, settings: Settings) -> None:
    assert jobs.get_job(redis, settings, jobs.new_job_id()) is None
    assert jobs.cancel(redis, settings, jobs.new_job_id()) is None


def test_cancel_queued_job(redis: Redis, settings: Settings, store: LocalStore) -> None:
    first = submit(redis, settings, store, owner="alice")
    second = submit(redis, settings, store, owner="alice")
    view = jobs.cancel(redis, settings, first)
    assert view.status is jobs.JobStatus.canceled and view.position is None
    assert view.ended_at is not None and view.error["code"] == "canceled"
    assert jobs.queue_depth(redis, settings) == 1
    assert jobs.get_job(redis, settings, second).position == 0
    assert jobs.queued_count_for_owner(redis, settings, "alice") == 1
    again = jobs.cancel(redis, settings, first)  # idempotent
    assert again.status is jobs.JobStatus.canceled
    assert jobs.job_metrics(redis, settings)["jobs"] == {("move", "canceled"): 1}


def test_ready_workers_drop_expired_entries(redis: Redis, settings: Settings) -> None:
    info = {"name": "w1", "device": "cuda:0", "model": "sd15", "is_demo": False, "gpu_memory_bytes": 123}
    jobs.register_worker(redis, settings, info)
    jobs.register_worker(redis, settings, {**info, "name": "w2"})
    ready = {w["name"]: w for w in jobs.ready_workers(redis, settings)}
    assert set(ready) == {"w1", "w2"} and ready["w1"]["gpu_memory_bytes"] == 123
    assert 0 < redis.ttl(jobs.worker_key(settings, "w1")) <= jobs.lease_s(settings)
    redis.delete(jobs.worker_key(settings, "w2"))  # what its TTL does once its heartbeat stops
    assert [w["name"] for w in jobs.ready_workers(redis, settings)] == ["w1"]
    jobs.unregister_worker(redis, settings, "w1")
    assert jobs.ready_workers(redis, settings) == []
    assert redis.zcard(jobs.workers_key(settings)) == 0


def test_job_metrics_layout(redis: Redis, settings: Settings) -> None:
    jobs.record_outcome(redis, settings, task="move", outcome="succeeded", durations={"sampling": 0.3, "total": 7.0})
    jobs.record_outcome(redis, settings, task="move", outcome="succeeded", durations={"sampling": 0.05})
    jobs.record_outcome(redis, settings, task="drag", outcome="failed", code="timeout")
    m = jobs.job_metrics(redis, settings)
    assert m["jobs"] == {("move", "succeeded"): 2, ("drag", "failed"): 1}
    assert m["errors"] == {("drag", "timeout"): 1}
    sampling = m["durations"][("move", "sampling")]
    assert sampling["count"] == 2 and sampling["sum"] == pytest.approx(0.35)
    buckets = dict(sampling["buckets"])
    assert buckets["0.05"] == 1 and buckets["0.25"] == 1 and buckets["0.5"] == 2 and buckets["+Inf"] == 2
    assert [le for le, _ in sampling["buckets"]][-1] == "+Inf"
    counts = [c for _, c in m["durations"][("move", "total")]["buckets"]]
    assert counts == sorted(counts) and counts[-1] == 1  # cumulative


def _start_and_abandon(redis: Redis, settings: Settings, job_id: str) -> None:
    """What a worker does up to the moment it is SIGKILLed mid-job, then its lease running out."""
    q = jobs.queue(redis, settings)
    job = Job.fetch(job_id, connection=redis, serializer=jobs.SERIALIZER)
    worker = SimpleWorker([q], connection=redis, serializer=jobs.SERIALIZER, name=f"doomed-{job_id[:6]}")
    q.remove(job)
    execution = worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    assert jobs.get_job(redis, settings, job_id).status is jobs.JobStatus.running
    started = StartedJobRegistry(queue=q)
    redis.zadd(started.key, {execution.composite_key: 1})  # the lease expired long ago


def test_watchdog_requeues_an_abandoned_job_once_then_fails_it(
    redis: Redis, settings: Settings, store: LocalStore
) -> None:
    job_id = submit(redis, settings, store)
    assert jobs.sweep_abandoned(redis, settings) == 0

    _start_and_abandon(redis, settings, job_id)
    assert jobs.sweep_abandoned(redis, settings) == 1
    view = jobs.get_job(redis, settings, job_id)
    assert view.status is jobs.JobStatus.queued and view.position == 0  # the one retry
    assert 0 < redis.ttl(Job.key_for(job_id)) <= settings.job_ttl_s

    _start_and_abandon(redis, settings, job_id)
    assert jobs.sweep_abandoned(redis, settings) == 1
    view = jobs.get_job(redis, settings, job_id)
    assert view.status is jobs.JobStatus.failed and view.error["code"] == "worker_lost"
    assert 0 < redis.ttl(Job.key_for(job_id)) <= settings.job_ttl_s
    assert jobs.job_metrics(redis, settings)["errors"] == {("move", "worker_lost"): 1}


def test_watchdog_leaves_live_jobs_alone(redis: Redis, settings: Settings, store: LocalStore) -> None:
    job_id = submit(redis, settings, store)
    q = jobs.queue(redis, settings)
    job = Job.fetch(job_id, connection=redis, serializer=jobs.SERIALIZER)
    worker = SimpleWorker([q], connection=redis, serializer=jobs.SERIALIZER, name="alive")
    q.remove(job)
    worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    assert jobs.sweep_abandoned(redis, settings) == 0
    assert jobs.get_job(redis, settings, job_id).status is jobs.JobStatus.running


def test_one_sweeper_at_a_time(redis: Redis, settings: Settings, store: LocalStore) -> None:
    job_id = submit(redis, settings, store)
    _start_and_abandon(redis, settings, job_id)
    lock = f"{jobs.prefix(settings)}:sweep-lock"
    redis.set(lock, b"another-process", ex=30)  # another API replica or worker is sweeping
    assert jobs.sweep_abandoned(redis, settings) == 0
    assert jobs.get_job(redis, settings, job_id).status is jobs.JobStatus.running
    redis.delete(lock)
    assert jobs.sweep_abandoned(redis, settings) == 1
    assert jobs.queue_depth(redis, settings) == 1  # requeued exactly once
    assert not redis.exists(lock)  # released after the sweep
