"""`GET /v1/edits/{id}/preview`: the latest preview as a JPEG with its step, 404 `no_preview` before
the first, and another key's job a plain 404, like the status route."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

from fastapi.testclient import TestClient
from PIL import Image
from redis import Redis

from service.jobs import previews
from service.jobs.context import JobContext
from service.settings import Settings
from tests.service.helpers import submit

KEY_A, KEY_B = "key-a-secret", "key-b-secret"
HASHES = ",".join(hashlib.sha256(k.encode()).hexdigest() for k in (KEY_A, KEY_B))


def _jpeg(size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buf, format="JPEG", quality=75)
    return buf.getvalue()


def test_the_latest_preview_with_its_step(client: TestClient, redis: Redis, settings: Settings) -> None:
    job_id = submit(client).json()["id"]
    ctx = JobContext(redis, settings)

    none_yet = client.get(f"/v1/edits/{job_id}/preview")
    assert none_yet.status_code == 404
    assert none_yet.json()["error"]["code"] == "no_preview"

    previews.put(ctx, job_id, previews.Preview(_jpeg((8, 8)), 5, 50))
    previews.put(ctx, job_id, previews.Preview(_jpeg(), 15, 50))  # replaces the first
    resp = client.get(f"/v1/edits/{job_id}/preview")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/jpeg"
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["x-preview-step"] == "15/50"
    assert Image.open(io.BytesIO(resp.content)).size == (32, 24)
    assert client.get(f"/v1/edits/{job_id}").json()["links"]["preview"] == f"/v1/edits/{job_id}/preview"


def test_another_keys_job_and_unknown_ids_are_404(
    make_client: Callable[..., TestClient], make_settings: Callable[..., Settings], redis: Redis
) -> None:
    client = make_client(api_key_hashes=HASHES)
    job_id = submit(client, headers={"Authorization": f"Bearer {KEY_A}"}).json()["id"]
    previews.put(JobContext(redis, make_settings(api_key_hashes=HASHES)), job_id, previews.Preview(_jpeg(), 5, 10))

    assert client.get(f"/v1/edits/{job_id}/preview", headers={"Authorization": f"Bearer {KEY_A}"}).status_code == 200
    other = client.get(f"/v1/edits/{job_id}/preview", headers={"Authorization": f"Bearer {KEY_B}"})
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert client.get(f"/v1/edits/{job_id}/preview").status_code == 401
    unknown = client.get(f"/v1/edits/{'0' * 32}/preview", headers={"Authorization": f"Bearer {KEY_A}"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
