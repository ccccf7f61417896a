"""The edit endpoints' answers are their OpenAPI models: each response in every state (queued,
running with progress, succeeded with stats, failed, canceled, expired, replayed) validates against the
schema /openapi.json publishes, and carries exactly the fields of the model behind it. (The
fuzzing in test_schemathesis.py rarely gets a valid submission through, so it seldom sees these.)"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from redis import Redis
from rq.job import Job

from service.jobs.context import SERIALIZER
from service.schemas import JobOut
from tests.service.helpers import finish, submit


@pytest.fixture
def schema(client: TestClient) -> Any:
    return schemathesis.openapi.from_dict(client.get("/openapi.json").json())


def check(schema: Any, path: str, method: str, response: Any) -> dict:
    """Validate one response against its operation in the published schema; its JSON body."""
    schema[path][method].validate_response(response)
    body = response.json()
    published = schema.raw_schema["components"]["schemas"]["JobOut"]["properties"]
    assert set(body) == set(published) == set(JobOut.model_fields)
    return body


def test_edit_responses_match_the_published_models(client: TestClient, redis: Redis, schema: Any) -> None:
    created = submit(client, headers={"Idempotency-Key": "once"})
    assert created.status_code == 202, created.text
    job_id = check(schema, "/v1/edits", "POST", created)["id"]
    replay = submit(client, headers={"Idempotency-Key": "once"})
    assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
    assert check(schema, "/v1/edits", "POST", replay)["id"] == job_id

    assert check(schema, "/v1/edits/{job_id}", "GET", client.get(f"/v1/edits/{job_id}"))["status"] == "queued"
    job = Job.fetch(job_id, connection=redis, serializer=SERIALIZER)
    job.meta["progress"] = {"stage": "sampling", "step": 2, "total": 4, "eta_s": 1.5}
    job.save_meta()
    redis.hset(Job.key_for(job_id), "status", "started")
    running = check(schema, "/v1/edits/{job_id}", "GET", client.get(f"/v1/edits/{job_id}"))
    assert running["status"] == "running" and running["progress"]["eta_s"] == 1.5

    job.meta["stats"] = {"working_size": [64, 48], "seconds": {"sampling": 0.5}}
    job.save_meta()
    finish(redis, client, job_id)
    done = check(schema, "/v1/edits/{job_id}", "GET", client.get(f"/v1/edits/{job_id}"))
    assert done["status"] == "succeeded" and done["stats"]["working_size"] == [64, 48]

    failing = submit(client).json()["id"]
    job = Job.fetch(failing, connection=redis, serializer=SERIALIZER)
    job.meta["error"] = {"code": "timeout", "message": "too long", "field": None}
    job.save_meta()
    redis.hset(Job.key_for(failing), "status", "failed")
    failed = check(schema, "/v1/edits/{job_id}", "GET", client.get(f"/v1/edits/{failing}"))
    assert failed["status"] == "failed" and failed["error"]["code"] == "timeout"

    queued = submit(client).json()["id"]
    canceled = check(schema, "/v1/edits/{job_id}", "DELETE", client.delete(f"/v1/edits/{queued}"))
    assert canceled["status"] == "canceled" and canceled["error"]["code"] == "canceled"

    timed = submit(client, {"task": "move", "offset": [8, 0], "steps": 4, "deadline_s": 0.05}).json()
    assert timed["deadline_at"] and "deadline_s" not in timed["params"]  # a job option, not an edit parameter
    time.sleep(0.1)
    expired = check(schema, "/v1/edits/{job_id}", "GET", client.get(f"/v1/edits/{timed['id']}"))
    assert expired["status"] == "expired" and expired["error"]["code"] == "expired"


def test_error_answers_match_the_published_error_model(client: TestClient, schema: Any) -> None:
    job_id = submit(client).json()["id"]
    for method, url, status in [
        ("GET", f"/v1/edits/{'0' * 32}", 404),
        ("GET", f"/v1/edits/{job_id}/result", 409),
        ("DELETE", "/v1/edits/nope", 404),
    ]:
        response = client.request(method, url)
        assert response.status_code == status, response.text
        path = "/v1/edits/{job_id}/result" if url.endswith("/result") else "/v1/edits/{job_id}"
        schema[path][method].validate_response(response)
        assert set(response.json()) == {"error"}
