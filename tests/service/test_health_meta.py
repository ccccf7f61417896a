"""Probes, metrics, /v1/tasks, /v1/info, OpenAPI and the web page mount."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from diffeditor.tasks import FILES_BY_TASK, TASKS
from service.jobs import outcomes, workers
from service.jobs.context import JobContext
from service.settings import Settings
from tests.service.helpers import submit

WORKER = {"name": "w1", "device": "cuda:0", "model": None, "is_demo": True, "gpu_memory_bytes": 123456789}


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readyz_without_a_worker_is_503(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["ready"] is False and body["redis"] is True and body["workers"] == 0
    assert body["missing"] == ["worker"] and body["error"]["code"] == "not_ready"
    assert "worker" in body["error"]["message"]


def test_readyz_with_a_warm_worker(client: TestClient, redis: Redis, settings: Settings) -> None:
    workers.register_worker(JobContext(redis, settings), dict(WORKER))
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ready"] is True and body["workers"] == 1 and body["missing"] == []
    assert body["demo_model"] is True and "demo model" in body["notice"]
    assert client.get("/v1/info").json()["demo_model"] is True
    workers.register_worker(JobContext(redis, settings), {**WORKER, "is_demo": False})
    assert client.get("/v1/info").json()["demo_model"] is False


def test_info_demo_flag_from_settings_without_workers(make_client: Callable[..., TestClient]) -> None:
    assert make_client().get("/v1/info").json()["demo_model"] is True
    assert make_client(model="/models/sd15").get("/v1/info").json()["demo_model"] is False


def test_default_resolution_comes_from_the_workers_or_the_setting(
    make_client: Callable[..., TestClient], redis: Redis, settings: Settings
) -> None:
    client = make_client()

    def defaults() -> tuple[int | None, set]:
        tasks = client.get("/v1/tasks").json()["tasks"]
        schema_defaults = {t["params_schema"]["properties"]["max_resolution"].get("default") for t in tasks}
        return client.get("/v1/info").json()["default_resolution"], schema_defaults

    assert defaults() == (None, {None})  # no worker yet: the worker will decide
    workers.register_worker(JobContext(redis, settings), {**WORKER, "name": "gpu", "default_resolution": 768})
    assert defaults() == (768, {768})
    workers.register_worker(JobContext(redis, settings), {**WORKER, "name": "cpu", "default_resolution": 128})
    assert defaults() == (128, {128})  # any worker may take the job: the smallest
    fixed = make_client(default_resolution=320)
    assert fixed.get("/v1/info").json()["default_resolution"] == 320


def test_info_shape(make_client: Callable[..., TestClient]) -> None:
    body = make_client(max_steps=30, api_key_hashes="ab" * 32).get("/v1/info").json()
    assert set(body) == {"version", "demo_model", "auth_required", "default_resolution", "limits"}
    assert body["auth_required"] is True and body["limits"]["max_steps"] == 30
    assert {"max_upload_bytes", "max_pixels", "min_side", "rate_limit_per_min"} <= set(body["limits"])


def test_tasks_shape(client: TestClient) -> None:
    body = client.get("/v1/tasks").json()
    assert [t["name"] for t in body["tasks"]] == list(TASKS)
    for t in body["tasks"]:
        required, optional = FILES_BY_TASK[t["name"]]
        assert t["files"] == {"required": list(required), "optional": list(optional)}
        schema = t["params_schema"]
        assert schema["additionalProperties"] is False
        assert (
            schema["properties"]["task"]["const"] == t["name"] or schema["properties"]["task"]["default"] == t["name"]
        )
        steps = schema["properties"]["steps"]
        assert steps["default"] == 50 and steps["minimum"] == 4
    by_name = {t["name"]: t for t in body["tasks"]}
    assert by_name["drag"]["params_schema"]["properties"]["guidance_strength"]["default"] == 2.0
    assert "offset" in by_name["move"]["params_schema"]["required"]


def _families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_families(client: TestClient, redis: Redis, settings: Settings) -> None:
    workers.register_worker(JobContext(redis, settings), dict(WORKER))
    outcomes.record_outcome(
        JobContext(redis, settings), task="move", outcome="succeeded", durations={"sampling": 1.5, "total": 2.0}
    )
    outcomes.record_outcome(JobContext(redis, settings), task="drag", outcome="failed", code="out_of_memory")
    job_id = submit(client).json()["id"]
    client.get(f"/v1/edits/{job_id}")
    client.get("/v1/edits/" + "f" * 32)
    text = client.get("/metrics").text
    fams = _families(text)
    for name in (
        "diffeditor_http_requests",
        "diffeditor_http_request_duration_seconds",
        "diffeditor_queue_depth",
        "diffeditor_workers_alive",
        "diffeditor_worker_gpu_memory_bytes",
        "diffeditor_jobs",
        "diffeditor_job_errors",
        "diffeditor_job_duration_seconds",
        "diffeditor_redis_up",
    ):
        assert name in fams, name
    assert 'diffeditor_http_requests_total{method="GET",route="/v1/edits/{job_id}",status="200"} 1.0' in text
    assert 'diffeditor_http_requests_total{method="GET",route="/v1/edits/{job_id}",status="404"} 1.0' in text
    assert 'diffeditor_http_requests_total{method="POST",route="/v1/edits",status="202"} 1.0' in text
    assert "diffeditor_queue_depth 1.0" in text and "diffeditor_workers_alive 1.0" in text
    assert 'diffeditor_worker_gpu_memory_bytes{device="cuda:0",worker="w1"} 1.23456789e+08' in text
    assert 'diffeditor_jobs_total{outcome="succeeded",task="move"} 1.0' in text
    assert 'diffeditor_job_errors_total{code="out_of_memory",task="drag"} 1.0' in text
    assert 'diffeditor_job_duration_seconds_bucket{le="2.5",stage="sampling",task="move"} 1.0' in text
    assert 'diffeditor_job_duration_seconds_sum{stage="sampling",task="move"} 1.5' in text


def test_openapi_describes_the_multipart_submit(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/edits"]["post"]
    schema = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["params", "image"]
    assert set(schema["properties"]) == {
        "params",
        "image",
        "mask",
        "region_mask",
        "reference",
        "reference_mask",
        "image_prompt",
    }
    assert {"202", "413", "415", "422", "429", "503"} <= set(post["responses"])
    assert "/v1/edits/{job_id}/result" in spec["paths"] and "/v1/tasks" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_web_page_is_served_when_present(client: TestClient) -> None:
    from service.app import STATIC_DIR

    r = client.get("/")
    if (STATIC_DIR / "index.html").is_file():
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    else:
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_lifespan_runs_and_stops_the_watchdog(make_client: Callable[..., TestClient]) -> None:
    client = make_client(watchdog_s=1)
    with client:  # entering runs the lifespan (watchdog task started), leaving cancels it
        assert client.get("/healthz").status_code == 200


def test_watchdog_sweep_survives_redis_down(make_client: Callable[..., TestClient]) -> None:
    import asyncio

    from service.app import sweep_once

    app = make_client(redis_url="redis://127.0.0.1:6390/0").app
    assert asyncio.run(sweep_once(app)) == 0


def test_command_line_settings_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from service.settings import add_cli_options, settings_from_args

    monkeypatch.setenv("DIFFEDITOR_MODEL", "/env/model")
    monkeypatch.setenv("DIFFEDITOR_DEFAULT_RESOLUTION", "256")
    parser = argparse.ArgumentParser()
    add_cli_options(parser)
    settings = settings_from_args(parser.parse_args(["--model", "demo", "--data-dir", "out"]), "serve")
    assert (settings.model, str(settings.data_dir), settings.default_resolution) == ("demo", "out", 256)
    with pytest.raises(SystemExit) as exc:
        settings_from_args(parser.parse_args(["--cpu-threads", "0"]), "serve")
    assert exc.value.code == 2
