"""HTTP submit -> a real `diffeditor worker` subprocess on the demo model -> poll -> result, for
every task; progress, cancellation of queued and running jobs, readiness and metrics."""

from __future__ import annotations

import io
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from redis import Redis

from service.settings import Settings
from service.store import make_store
from tests.e2e.conftest import (
    EDITS,
    WorkerProcess,
    client_for,
    finished,
    make_settings,
    multipart,
    poll,
    running_past_step,
    slow_move,
)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("e2e-edits"))


@pytest.fixture(scope="module")
def worker(redis: Redis, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, "e2e-edits", tmp_path_factory.mktemp("logs"))
    try:
        process.wait_ready(redis)
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def client(settings: Settings, worker: WorkerProcess) -> Iterator[TestClient]:
    with client_for(settings) as c:
        yield c


def test_readyz_is_false_without_a_worker(redis: Redis, tmp_path: Path) -> None:
    with client_for(make_settings(tmp_path, queue_name="e2e-nobody")) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False and body["redis"] is True and body["missing"] == ["worker"]


def test_readyz_reports_the_warm_demo_worker(client: TestClient, worker: WorkerProcess) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ready"] is True and body["workers"] == 1 and body["demo_model"] is True
    assert "DEMO MODEL" in worker.log()  # said loudly in the worker's log too


def test_every_task_end_to_end(client: TestClient, settings: Settings) -> None:
    submitted = {}
    for task, (params, files) in EDITS.items():
        response = client.post("/v1/edits", **multipart(params, files))
        assert response.status_code == 202, response.text
        submitted[task] = response.json()["id"]

    store = make_store(settings)
    for task, job_id in submitted.items():
        body = poll(client, job_id, finished)[-1]
        assert body["status"] == "succeeded", (task, body)
        seed = body["params"]["seed"]
        assert isinstance(seed, int) and body["stats"]["working_size"] == [64, 64]

        result = client.get(f"/v1/edits/{job_id}/result")
        assert result.status_code == 200 and result.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(result.content))
        image.load()
        assert image.format == "PNG" and image.size == (64, 64)

        record = store.get_record(job_id)
        assert record["seed"] == seed and record["params"]["seed"] == seed and record["task"] == task
        assert record["worker"]["is_demo"] is True
        assert record["stats"]["evaluations"]["sampling"] > 0


def test_progress_rises_while_running(client: TestClient) -> None:
    params, files = slow_move(steps=12)
    job_id = client.post("/v1/edits", **multipart(params, files)).json()["id"]
    seen = poll(client, job_id, finished, interval=0.05)
    assert seen[-1]["status"] == "succeeded"
    sampling = [
        b["progress"]["step"]
        for b in seen
        if b["status"] == "running" and (b["progress"] or {}).get("stage") == "sampling"
    ]
    assert len(set(sampling)) >= 2, sampling  # observed at two or more different steps
    assert sampling == sorted(sampling)  # and only ever rising
    assert seen[-1]["progress"]["stage"] == "decode"


def test_cancel_queued_and_running_jobs(client: TestClient) -> None:
    params, files = slow_move(steps=40)
    running = client.post("/v1/edits", **multipart(params, files)).json()["id"]
    queued = client.post("/v1/edits", **multipart(*EDITS["move"])).json()["id"]
    poll(client, running, running_past_step(1))

    response = client.delete(f"/v1/edits/{queued}")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "canceled"  # at once

    response = client.delete(f"/v1/edits/{running}")
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("running", "canceled")  # stops between two steps
    body = poll(client, running, finished)[-1]
    assert body["status"] == "canceled"
    assert body["progress"]["step"] < 40
    assert client.get(f"/v1/edits/{running}/result").status_code in (404, 409)
    assert client.get(f"/v1/edits/{queued}").json()["status"] == "canceled"  # never ran
    assert client.delete(f"/v1/edits/{running}").status_code == 409  # already finished


def test_metrics_count_worker_outcomes(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert 'task="move"' in text and "succeeded" in text and "canceled" in text


def test_sigterm_finishes_the_current_job_then_exits(client: TestClient, worker: WorkerProcess, redis: Redis) -> None:
    """Last in this module: it stops the module's worker."""
    params, files = slow_move(steps=16)
    job_id = client.post("/v1/edits", **multipart(params, files)).json()["id"]
    poll(client, job_id, running_past_step(1))
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=180) == 0
    body = client.get(f"/v1/edits/{job_id}").json()
    assert body["status"] == "succeeded" and body["progress"]["stage"] == "decode"
    assert client.get("/readyz").status_code == 503  # it unregistered on the way out
