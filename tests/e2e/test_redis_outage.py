"""Redis stops while a client polls: the API answers 503 with Retry-After (never a 500), and serves
again once Redis is back. Uses its own throwaway redis-server (the suite's stays up)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import EDITS, client_for, make_settings, multipart
from tests.processes import RedisServer, free_port


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.kill()


def test_503_while_redis_is_down_then_recovery(own_redis: RedisServer, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, REDIS_URL=f"redis://127.0.0.1:{own_redis.port}/0", queue_name="e2e-outage")
    with client_for(settings) as client:
        job_id = client.post("/v1/edits", **multipart(*EDITS["move"])).json()["id"]
        assert client.get(f"/v1/edits/{job_id}").status_code == 200

        own_redis.kill()
        response = client.get(f"/v1/edits/{job_id}")
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) > 0
        assert response.json()["error"]["code"]
        submit = client.post("/v1/edits", **multipart(*EDITS["move"]))
        assert submit.status_code == 503 and "Retry-After" in submit.headers
        assert client.get("/readyz").json()["redis"] is False
        assert client.get("/healthz").status_code == 200  # liveness does not depend on Redis

        own_redis.start()  # an empty Redis (no persistence): the old job is gone, the service is not
        assert client.get("/readyz").json()["redis"] is True
        assert client.get(f"/v1/edits/{job_id}").status_code == 404
        again = client.post("/v1/edits", **multipart(*EDITS["move"]))
        assert again.status_code == 202, again.text
        assert client.get(f"/v1/edits/{again.json()['id']}").json()["status"] == "queued"
