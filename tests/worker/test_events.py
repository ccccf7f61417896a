"""Each job's event log and its SSE stream, and deadlines: through real Redis, an in-process RQ
worker with a fake editor, and the API served by uvicorn on loopback (the stream read by httpx
over real HTTP)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from redis import Redis

from service.app import create_app
from service.jobs import deadlines, events, lifecycle, outcomes
from service.jobs.context import JobContext
from service.jobs.status import JobStatus
from service.settings import Settings
from service.store import LocalStore
from tests.processes import free_port
from tests.worker.conftest import FakeEditor, move_inputs, submit

KEY_A, KEY_B = "key-a-events", "key-b-events"
OWNER_A = hashlib.sha256(KEY_A.encode()).hexdigest()


def kinds(evs: list[events.Event]) -> list[str]:
    return [e.type for e in evs]


def test_a_succeeded_job_logs_queued_start_progress_completed_in_order(
    ctx: JobContext, redis: Redis, settings: Settings, store: LocalStore, run_burst: Callable[..., None]
) -> None:
    job_id = submit(redis, settings, store)
    run_burst(FakeEditor(steps=3))
    log = events.read(ctx, job_id)
    assert kinds(log) == ["queued", "start", "progress", "progress", "progress", "preview", "completed"]
    assert log[0].data == {"status": "queued", "position": 0}
    assert [e.data["step"] for e in log if e.type == "progress"] == [1, 2, 3]  # one per step, not per report
    assert log[-1].data == {"status": "succeeded", "error": None}
    ids = [tuple(map(int, e.id.split("-"))) for e in log]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert events.read(ctx, job_id, after=log[3].id) == log[4:]  # resumable after any id
    assert redis.ttl(ctx.keys.events(job_id)) > 0


def test_completed_is_published_once_the_job_reads_finished(
    ctx: JobContext,
    redis: Redis,
    settings: Settings,
    store: LocalStore,
    run_burst: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader woken by `completed` (the SSE stream, a webhook) reads the job: it must be finished."""
    seen: dict[str, str] = {}
    publish = events.publish

    def spy(ctx_: JobContext, job_id: str, type: str, data: dict, *args: Any, **kw: Any) -> Any:
        if type == "completed":
            seen[job_id] = lifecycle.get_job(ctx_, job_id).status.value
        return publish(ctx_, job_id, type, data, *args, **kw)

    monkeypatch.setattr(events, "publish", spy)
    ok = submit(redis, settings, store)
    failing = submit(redis, settings, store, {"task": "move", "offset": [500, 0]})
    run_burst(FakeEditor())
    assert seen == {ok: "succeeded", failing: "failed"}


def test_failed_and_canceled_jobs_log_their_final_status(
    ctx: JobContext, redis: Redis, settings: Settings, store: LocalStore, run_burst: Callable[..., None]
) -> None:
    failing = submit(redis, settings, store, {"task": "move", "offset": [500, 0]})  # moves the object off the image
    queued = submit(redis, settings, store)
    lifecycle.cancel(ctx, queued)
    run_burst(FakeEditor())
    done = events.read(ctx, failing)[-1]
    assert done.type == "completed" and done.data["status"] == "failed"
    assert done.data["error"]["code"] == "invalid_input"
    assert kinds(events.read(ctx, queued)) == ["queued", "completed"]
    assert events.read(ctx, queued)[-1].data["status"] == "canceled"


def _enqueue(ctx: JobContext, store: LocalStore, options: dict, owner: str = "anon") -> str:
    from service.jobs.ids import new_job_id

    job_id = new_job_id()
    store.put_inputs(job_id, move_inputs())
    lifecycle.enqueue(ctx, job_id=job_id, owner=owner, params={"task": "move", "offset": [8, 0]}, options=options)
    return job_id


def test_a_queued_job_past_its_deadline_expires_on_read_without_running(
    ctx: JobContext, store: LocalStore, run_burst: Callable[..., None]
) -> None:
    job_id = _enqueue(ctx, store, {"deadline_s": 0.2})
    assert lifecycle.get_job(ctx, job_id).status is JobStatus.queued
    time.sleep(0.3)
    view = lifecycle.get_job(ctx, job_id)
    assert view.status is JobStatus.expired and view.ended_at and view.started_at is None
    assert view.error["code"] == "expired" and "before it started" in view.error["message"]
    assert view.position is None and lifecycle.queue_depth(ctx) == 0
    editor = FakeEditor()
    run_burst(editor)
    assert editor.calls == []  # never ran
    assert outcomes.job_metrics(ctx)["jobs"][("move", "expired")] == 1
    assert kinds(events.read(ctx, job_id)) == ["queued", "completed"]
    assert events.read(ctx, job_id)[-1].data["status"] == "expired"
    assert ctx.redis.zscore(ctx.keys.deadlines, job_id) is None


def test_the_sweep_expires_a_queued_job_nobody_reads_once(ctx: JobContext, store: LocalStore) -> None:
    job_id = _enqueue(ctx, store, {"deadline_s": 60})
    kept = _enqueue(ctx, store, {"deadline_s": 600})
    later = time.time() + 61
    assert deadlines.sweep(ctx, now=later) == 1
    assert deadlines.sweep(ctx, now=later) == 0  # already expired: not counted twice
    assert lifecycle.get_job(ctx, kept).status is JobStatus.queued
    assert lifecycle.get_job(ctx, job_id).status is JobStatus.expired
    assert outcomes.job_metrics(ctx)["jobs"][("move", "expired")] == 1


def test_a_job_the_watchdog_requeues_is_swept_at_its_deadline_again(ctx: JobContext, store: LocalStore) -> None:
    from service.jobs import watchdog
    from tests.worker.test_jobs import _start_and_abandon

    job_id = _enqueue(ctx, store, {"deadline_s": 60})
    _start_and_abandon(ctx, job_id)
    later = time.time() + 61
    assert deadlines.sweep(ctx, now=later) == 0  # running past its deadline: not the sweep's, forgotten
    assert ctx.redis.zscore(ctx.keys.deadlines, job_id) is None
    assert watchdog.sweep_abandoned(ctx) == 1  # its worker died before stopping it: requeued, indexed again
    assert ctx.redis.zscore(ctx.keys.deadlines, job_id) is not None
    assert deadlines.sweep(ctx, now=later) == 1
    assert lifecycle.get_job(ctx, job_id).status is JobStatus.expired


def test_two_readers_expiring_one_job_at_once_count_it_once(ctx: JobContext, store: LocalStore) -> None:
    from rq.job import Job
    from rq.job import JobStatus as JobStatus_rq

    from service.jobs.context import SERIALIZER

    job_id = _enqueue(ctx, store, {"deadline_s": 0.05})
    time.sleep(0.1)
    first, second = (Job.fetch(job_id, connection=ctx.redis, serializer=SERIALIZER) for _ in range(2))
    second.get_status = lambda *args, **kw: JobStatus_rq.QUEUED  # it read "queued" before the first expired it
    assert deadlines.expire_queued(ctx, first) is True
    assert deadlines.expire_queued(ctx, second) is False  # it read queued too, but the queue no longer holds it
    assert outcomes.job_metrics(ctx)["jobs"][("move", "expired")] == 1
    assert kinds(events.read(ctx, job_id)) == ["queued", "completed"]


def test_two_cancels_at_once_end_a_queued_job_once_and_a_popped_one_is_left_to_its_worker(
    ctx: JobContext, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rq.job import JobStatus as JobStatus_rq

    real = lifecycle.fetch

    def fetch_reading_queued(c: JobContext, job_id: str):  # type: ignore[no-untyped-def]
        job = real(c, job_id)
        if job is not None:  # it read "queued" before the other cancel ended it
            job.get_status = lambda *args, **kw: JobStatus_rq.QUEUED  # type: ignore[method-assign]
        return job

    job_id = _enqueue(ctx, store, {})
    lifecycle.cancel(ctx, job_id)
    with monkeypatch.context() as m:
        m.setattr(lifecycle, "fetch", fetch_reading_queued)
        lifecycle.cancel(ctx, job_id)
    assert outcomes.job_metrics(ctx)["jobs"][("move", "canceled")] == 1
    assert kinds(events.read(ctx, job_id)) == ["queued", "completed"]

    popped = _enqueue(ctx, store, {})
    ctx.redis.lrem(ctx.queue().key, 1, popped)  # a worker's pop, before it marks the job started
    view = lifecycle.cancel(ctx, popped)
    assert view is not None and view.status is JobStatus.queued  # not ended here: the worker will
    assert lifecycle.cancel_requested(ctx, popped) and kinds(events.read(ctx, popped)) == ["queued"]


def test_a_worker_does_not_run_a_job_dequeued_past_its_deadline(
    ctx: JobContext, store: LocalStore, run_burst: Callable[..., None]
) -> None:
    job_id = _enqueue(ctx, store, {"deadline_s": 0.1})
    ctx.redis.zrem(ctx.keys.deadlines, job_id)  # as if no sweep got to it: the worker is the first to see it
    time.sleep(0.2)
    editor = FakeEditor()
    run_burst(editor)
    assert editor.calls == []
    view = lifecycle.get_job(ctx, job_id)
    assert view.status is JobStatus.expired and "before it started" in view.error["message"]


def test_a_running_job_past_its_deadline_stops_between_steps(
    ctx: JobContext, store: LocalStore, run_burst: Callable[..., None]
) -> None:
    job_id = _enqueue(ctx, store, {"deadline_s": 1.0})
    steps: list[int] = []
    run_burst(FakeEditor(steps=100, on_step=lambda i: (steps.append(i), time.sleep(0.05))))
    view = lifecycle.get_job(ctx, job_id)
    assert view.status is JobStatus.expired, view
    assert "while it ran" in view.error["message"] and view.started_at and view.ended_at
    assert 0 < len(steps) < 100
    assert events.read(ctx, job_id)[-1].data["status"] == "expired"
    assert outcomes.job_metrics(ctx)["jobs"][("move", "expired")] == 1


# -- the SSE stream over real HTTP -------------------------------------------------------------


@pytest.fixture
def api(settings: Settings) -> Iterator[str]:
    """The API under uvicorn on a free loopback port, with two API keys."""
    hashes = ",".join(hashlib.sha256(k.encode()).hexdigest() for k in (KEY_A, KEY_B))
    app = create_app(settings.model_copy(update={"api_key_hashes": hashes}))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def read_stream(url: str, key: str, headers: dict[str, str] | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """The stream's events as {"id", "event", "data"} (comments and the retry line skipped)."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {key}", **(headers or {})}, timeout=30) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if not line:
                if "event" in current:
                    out.append(current)
                current = {}
                if len(out) >= limit:
                    break
                continue
            name, _, value = line.partition(": ")
            if name == "data":
                current["data"] = json.loads(value)
            elif name in ("id", "event"):
                current[name] = value
    return out


def test_the_stream_follows_a_job_to_its_end_and_resumes_from_last_event_id(
    api: str, ctx: JobContext, store: LocalStore, run_burst: Callable[..., None]
) -> None:
    ahead = _enqueue(ctx, store, {}, owner=OWNER_A)
    job_id = _enqueue(ctx, store, {}, owner=OWNER_A)
    url = f"{api}/v1/edits/{job_id}/events"
    seen: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: seen.extend(read_stream(url, KEY_A)))
    reader.start()
    time.sleep(1.5)  # the stream is open while the job waits behind another
    lifecycle.cancel(ctx, ahead)  # its position changes: 1 -> 0
    time.sleep(1.5)
    run_burst(FakeEditor(steps=3))
    reader.join(timeout=30)
    assert not reader.is_alive(), "the stream did not end after completed"
    names = [e["event"] for e in seen]
    assert names[:2] == ["queued", "queued"] and seen[0]["data"]["position"] == 1 and seen[1]["data"]["position"] == 0
    assert "id" not in seen[1]  # a position update is not in the log: a reconnect must not skip past it
    assert names[2:] == ["start", "progress", "progress", "progress", "preview", "completed"]
    preview = seen[-2]["data"]  # the fake editor's last-step preview, through the stream as a data: URL
    assert preview["step"] == preview["total"] == 3 and preview["image"].startswith("data:image/jpeg;base64,")
    final = seen[-1]["data"]
    assert final["status"] == "succeeded" and final["id"] == job_id and final["links"]["result"].endswith("/result")
    # Resume after the second progress event: exactly the rest, and the stream ends again.
    resumed = read_stream(url, KEY_A, {"Last-Event-ID": seen[4]["id"]})
    assert [e["event"] for e in resumed] == names[5:]
    assert [e["id"] for e in resumed] == [e["id"] for e in seen[5:]]


def test_the_stream_keeps_the_status_routes_owner_rules(api: str, ctx: JobContext, store: LocalStore) -> None:
    job_id = _enqueue(ctx, store, {}, owner=OWNER_A)
    url = f"{api}/v1/edits/{job_id}/events"
    other = httpx.get(url, headers={"Authorization": f"Bearer {KEY_B}"})
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert httpx.get(url).status_code == 401
    bad = httpx.get(url, headers={"Authorization": f"Bearer {KEY_A}", "Last-Event-ID": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "Last-Event-ID"
    huge = httpx.get(url, headers={"Authorization": f"Bearer {KEY_A}", "Last-Event-ID": "99999999999999999999-0"})
    assert huge.status_code == 422  # past Redis's 64-bit ids: refused before the stream starts
    lifecycle.cancel(ctx, job_id)
    done = read_stream(url, KEY_A)  # a finished job: the log replayed, then the end
    assert [e["event"] for e in done] == ["queued", "completed"] and done[-1]["data"]["status"] == "canceled"


def test_a_stream_on_a_job_that_expires_in_the_queue_ends_expired(api: str, ctx: JobContext, store: LocalStore) -> None:
    job_id = _enqueue(ctx, store, {"deadline_s": 1.0}, owner=OWNER_A)
    seen = read_stream(f"{api}/v1/edits/{job_id}/events", KEY_A)
    assert [e["event"] for e in seen] == ["queued", "completed"]
    assert seen[-1]["data"]["status"] == "expired" and seen[-1]["data"]["error"]["code"] == "expired"
