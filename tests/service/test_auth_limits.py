"""Auth, per-key isolation, rate limit, queue caps, idempotency and Redis outages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from service import limits
from service.jobs import lifecycle
from service.jobs.context import JobContext
from service.jobs.keys import Keys
from service.settings import Settings
from tests.service.helpers import mask_png, multipart, png, submit

KEY_A, KEY_B = "key-a-secret", "key-b-secret"
HASHES = ",".join(hashlib.sha256(k.encode()).hexdigest() for k in (KEY_A, KEY_B))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_open_mode_needs_no_key(client: TestClient) -> None:
    assert submit(client).status_code == 202
    assert client.get("/v1/info").json()["auth_required"] is False


def test_open_mode_warns_in_the_log(make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture) -> None:
    make_client()
    assert any("no API keys configured" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong"),
        {"Authorization": "Basic a2V5LWE6"},
        {"Authorization": "Bearer"},
        bearer(HASHES.split(",")[0]),
    ],
    ids=["none", "wrong key", "basic scheme", "empty bearer", "the hash itself"],
)
def test_keys_required(make_client: Callable[..., TestClient], headers: dict[str, str]) -> None:
    client = make_client(api_key_hashes=HASHES)
    r = submit(client, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.get(f"/v1/edits/{'a' * 32}", headers=headers).status_code == 401


def test_jobs_are_visible_only_to_their_key(
    make_client: Callable[..., TestClient], redis: Redis, settings: Settings
) -> None:
    client = make_client(api_key_hashes=HASHES)
    assert client.get("/v1/info").json()["auth_required"] is True
    r = submit(client, headers=bearer(KEY_A))
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert lifecycle.get_job(JobContext(redis, settings), job_id).owner == hashlib.sha256(KEY_A.encode()).hexdigest()
    assert client.get(f"/v1/edits/{job_id}", headers=bearer(KEY_A)).status_code == 200
    for method, path in (("GET", ""), ("GET", "/result"), ("DELETE", "")):
        other = client.request(method, f"/v1/edits/{job_id}{path}", headers=bearer(KEY_B))
        assert other.status_code == 404 and other.json()["error"]["code"] == "not_found", (method, path)
    assert client.get(f"/v1/edits/{job_id}", headers=bearer(KEY_A)).json()["status"] == "queued"


@pytest.fixture
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mid-window, so a minute boundary cannot reset the count during the test."""
    monkeypatch.setattr(limits, "clock", lambda: 60.0 * 16_667 + 20)  # 20 s into a window


def test_rate_limit_is_per_key_with_retry_after(make_client: Callable[..., TestClient], pinned_clock: None) -> None:
    client = make_client(api_key_hashes=HASHES, rate_limit_per_min=3)
    for _ in range(3):
        assert submit(client, headers=bearer(KEY_A)).status_code == 202
    r = submit(client, headers=bearer(KEY_A))
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) == 40  # to the end of the one-minute window
    assert submit(client, headers=bearer(KEY_B)).status_code == 202  # another key has its own budget


def test_rate_limit_is_shared_by_replicas(make_client: Callable[..., TestClient], pinned_clock: None) -> None:
    one, two = make_client(rate_limit_per_min=2), make_client(rate_limit_per_min=2)
    assert submit(one).status_code == 202
    assert submit(two).status_code == 202
    assert submit(one).status_code == 429


def test_queued_cap_per_key(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_key_hashes=HASHES, max_queued_per_key=2)
    ids = [submit(client, headers=bearer(KEY_A)).json()["id"] for _ in range(2)]
    r = submit(client, headers=bearer(KEY_A))
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_queued"
    assert int(r.headers["retry-after"]) > 0
    assert submit(client, headers=bearer(KEY_B)).status_code == 202
    # Canceling frees a slot.
    assert client.delete(f"/v1/edits/{ids[0]}", headers=bearer(KEY_A)).status_code == 200
    assert submit(client, headers=bearer(KEY_A)).status_code == 202


def test_global_queue_cap_is_503(make_client: Callable[..., TestClient], redis: Redis, settings: Settings) -> None:
    client = make_client(max_queue_depth=2)
    assert submit(client).status_code == 202
    assert submit(client).status_code == 202
    r = submit(client)
    assert r.status_code == 503 and r.json()["error"]["code"] == "queue_full"
    assert int(r.headers["retry-after"]) > 0
    assert lifecycle.queue_depth(JobContext(redis, settings)) == 2


def test_idempotent_resubmission(client: TestClient, redis: Redis, settings: Settings) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = submit(client, headers=headers)
    assert first.status_code == 202
    again = submit(client, headers=headers)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert lifecycle.queue_depth(JobContext(redis, settings)) == 1
    other = submit(client, {"task": "move", "offset": [9, 0], "steps": 4}, headers=headers)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    assert other.json()["error"]["field"] == "Idempotency-Key"
    other_file = submit(client, files={"image": png(color=(1, 1, 1)), "mask": mask_png()}, headers=headers)
    assert other_file.status_code == 409
    # A new key is a new job.
    assert submit(client, headers={"Idempotency-Key": "order-43"}).json()["id"] != first.json()["id"]


def test_idempotency_keys_are_per_owner(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_key_hashes=HASHES)
    a = submit(client, headers={**bearer(KEY_A), "Idempotency-Key": "same"})
    b = submit(client, headers={**bearer(KEY_B), "Idempotency-Key": "same"})
    assert a.status_code == b.status_code == 202 and a.json()["id"] != b.json()["id"]


def test_idempotency_after_the_job_expired_starts_afresh(client: TestClient, redis: Redis, settings: Settings) -> None:
    first = submit(client, headers={"Idempotency-Key": "k1"}).json()["id"]
    redis.delete(f"rq:job:{first}")
    for key in redis.scan_iter(match=f"{Keys(settings.queue_name).prefix}idem:*"):  # age the record past "in progress"
        record = json.loads(redis.get(key))
        record["created"] -= 3600
        redis.set(key, json.dumps(record))
    again = submit(client, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 202 and again.json()["id"] != first


def test_invalid_submission_does_not_claim_the_key(client: TestClient) -> None:
    bad = client.post(
        "/v1/edits",
        headers={"Idempotency-Key": "k2"},
        **multipart({"task": "move"}, {"image": png(), "mask": mask_png()}),
    )
    assert bad.status_code == 422
    good = submit(client, headers={"Idempotency-Key": "k2"})
    assert good.status_code == 202


@pytest.mark.parametrize(
    ("method", "path", "needs_body"),
    [
        ("POST", "/v1/edits", True),
        ("GET", "/v1/edits/" + "a" * 32, False),
        ("GET", "/v1/edits/" + "a" * 32 + "/result", False),
        ("DELETE", "/v1/edits/" + "a" * 32, False),
    ],
)
def test_redis_down_is_503_not_500(
    make_client: Callable[..., TestClient], method: str, path: str, needs_body: bool
) -> None:
    client = make_client(redis_url="redis://127.0.0.1:6390/0")
    kwargs = multipart({"task": "move", "offset": [8, 0]}, {"image": png(), "mask": mask_png()}) if needs_body else {}
    r = client.request(method, path, **kwargs)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "redis_unavailable"
    assert int(r.headers["retry-after"]) > 0


def test_probes_with_redis_down(make_client: Callable[..., TestClient]) -> None:
    client = make_client(redis_url="redis://127.0.0.1:6390/0")
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["missing"] == ["redis", "worker"]
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "diffeditor_redis_up 0.0" in metrics.text
    info = client.get("/v1/info")
    assert info.status_code == 200 and info.json()["demo_model"] is True
