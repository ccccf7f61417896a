"""Every Redis key the service writes, RQ's own aside, starts with the one prefix
`diffeditor:<queue_name>:` (service.jobs.keys): a submit / replay / poll / cancel / rate-limit flow
through the API, plus what the workers write (registry, outcome counters, cancel flag, watchdog)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from service.jobs import outcomes, watchdog, workers
from service.jobs.context import JobContext
from service.jobs.keys import Keys
from service.settings import Settings
from tests.service.helpers import submit

RQ_PREFIX = "rq:"  # RQ names its own keys (jobs, queues, registries, workers)


def test_every_key_the_service_writes_has_the_one_prefix(
    make_client: Callable[..., TestClient],
    make_settings: Callable[..., Settings],
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_client(rate_limit_per_min=3)
    settings = make_settings(rate_limit_per_min=3)
    ctx = JobContext(redis, settings)
    prefix = Keys(settings.queue_name).prefix
    assert prefix == f"diffeditor:{settings.queue_name}:"

    first = submit(client, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == 202, first.text
    assert submit(client, headers={"Idempotency-Key": "order-1"}).status_code == 200  # replayed
    job_id = first.json()["id"]
    assert client.get(f"/v1/edits/{job_id}").status_code == 200
    assert client.delete(f"/v1/edits/{job_id}").status_code == 200
    assert submit(client).status_code == 202
    assert submit(client).status_code == 429  # the fourth submission this minute
    # What the workers and the watchdog write.
    workers.register_worker(ctx, {"name": "w1", "device": "cpu", "model": "demo", "is_demo": True})
    outcomes.record_outcome(ctx, task="move", outcome="failed", code="timeout", durations={"total": 1.0})
    seen: set[str] = set()
    real_get = redis.get

    def look_while_locked(key: str) -> bytes | None:  # the sweep lock lives only during a sweep
        seen.update(k.decode() for k in redis.scan_iter())
        return real_get(key)

    monkeypatch.setattr(redis, "get", look_while_locked)
    assert watchdog.sweep_abandoned(ctx) == 0
    monkeypatch.undo()
    seen.update(k.decode() for k in redis.scan_iter())

    ours = {k for k in seen if not k.startswith(RQ_PREFIX)}
    assert sorted(k for k in ours if not k.startswith(prefix)) == []
    kinds = {k[len(prefix) :].split(":", 1)[0] for k in ours}
    assert kinds >= {"rate", "idem", "owner", "cancel", "workers", "worker", "metrics", "sweep-lock"}
