"""A worker SIGKILLed mid-job: its job is requeued once and taken by another worker; killed again,
it is marked failed (worker_lost). Either way it leaves `running` within the watchdog bound."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from rq.job import Job

from service.jobs import workers
from service.jobs.context import SERIALIZER, JobContext
from tests.e2e.conftest import WorkerProcess, client_for, make_settings, multipart, poll, running_past_step, slow_move

WATCHDOG_BOUND_S = 60  # the bound; with these settings the design bound is lease 4 s + sweep 2 s


def _worker_name(redis: Redis, job_id: str) -> str | None:
    return Job.fetch(job_id, connection=redis, serializer=SERIALIZER).worker_name


def test_kill_9_mid_job(redis: Redis, tmp_path: Path, start_worker: Callable[..., WorkerProcess]) -> None:
    settings = make_settings(tmp_path, queue_name="e2e-kill")
    first = start_worker(settings, "e2e-kill-a", wait=False)
    second = start_worker(settings, "e2e-kill-b", wait=False)  # the spare: its heartbeat runs the sweep
    first.wait_ready(redis)
    second.wait_ready(redis)

    with client_for(settings) as client:
        params, files = slow_move(steps=60)
        job_id = client.post("/v1/edits", **multipart(params, files)).json()["id"]
        poll(client, job_id, running_past_step(2))
        victim, spare = (first, second) if _worker_name(redis, job_id) == "e2e-kill-a" else (second, first)

        victim.kill()
        killed_at = time.monotonic()
        # The spare's watchdog requeues it (the one retry) and then runs it itself.
        poll(client, job_id, lambda b: _worker_name(redis, job_id) == spare.name, timeout=WATCHDOG_BOUND_S)
        assert time.monotonic() - killed_at <= WATCHDOG_BOUND_S
        body = poll(client, job_id, running_past_step(2))[-1]
        assert body["status"] == "running"

        spare.kill()  # killed again: no retry left; with no worker alive, the API's own sweep fails it
        killed_at = time.monotonic()
        body = poll(client, job_id, lambda b: b["status"] != "running", timeout=WATCHDOG_BOUND_S)[-1]
        assert body["status"] == "failed", body
        assert body["error"]["code"] == "worker_lost"
        assert time.monotonic() - killed_at <= WATCHDOG_BOUND_S
        # Both registrations expire with their heartbeats: within one lease of the kill.
        deadline = time.monotonic() + JobContext(redis, settings).lease_s + 2
        while workers.ready_workers(JobContext(redis, settings)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert workers.ready_workers(JobContext(redis, settings)) == []
