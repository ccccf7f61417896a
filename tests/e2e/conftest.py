"""End-to-end fixtures: the suite's own Redis (tests/processes.py), database 2 (flushed per module; the
worker and end-to-end suites own it), real `diffeditor worker` subprocesses on the demo model,
and the API app under TestClient. Edits are tiny (64x64, 4 steps, guidance off unless a test needs
a slower job) because these tests are about the service, not the algorithm."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from redis import Redis

from service.app import create_app
from service.jobs import workers
from service.jobs.context import JobContext
from service.settings import Settings
from tests.processes import stop_process, suite_redis_url

REDIS_URL = suite_redis_url(2)
REPO = Path(__file__).resolve().parents[2]
WORKER_START_TIMEOUT_S = 240  # model load + warm-up on a busy 2-core machine
TERMINAL = {"succeeded", "failed", "canceled", "expired"}


def png(size: tuple[int, int] = (64, 64), mode: str = "RGB", box: tuple[int, int, int, int] | None = None) -> bytes:
    img = Image.new(mode, size, 0 if mode == "L" else (90, 120, 200))
    draw = ImageDraw.Draw(img)
    if mode == "RGB":
        draw.ellipse((8, 30, 40, 60), fill=(40, 160, 60))
    if box is not None:
        draw.rectangle(box, fill=255 if mode == "L" else (250, 200, 40))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


FAST = {"steps": 4, "max_resolution": 64, "guidance_strength": 0.0}

# One valid tiny edit per task: (params, files).
EDITS: dict[str, tuple[dict, dict[str, bytes]]] = {
    "move": (
        {"task": "move", "offset": [8, 0], **FAST},
        {"image": png(box=(16, 16, 32, 32)), "mask": png(mode="L", box=(16, 16, 32, 32))},
    ),
    "drag": (
        {"task": "drag", "points": [[20, 20, 28, 22]], **FAST},
        {"image": png(box=(16, 16, 32, 32)), "mask": png(mode="L", box=(8, 8, 48, 48))},
    ),
    "landmark": (
        {"task": "landmark", "points": [[20, 30, 22, 30], [44, 30, 42, 30]], **FAST},
        {"image": png(box=(16, 16, 48, 48))},
    ),
    "appearance": (
        {"task": "appearance", **FAST},
        {
            "image": png(box=(16, 16, 32, 32)),
            "mask": png(mode="L", box=(16, 16, 32, 32)),
            "reference": png(box=(30, 30, 50, 50)),
            "reference_mask": png(mode="L", box=(30, 30, 50, 50)),
        },
    ),
    "paste": (
        {"task": "paste", "offset": [4, 4], "scale": 0.8, **FAST},
        {"image": png(), "reference": png(box=(20, 20, 40, 40)), "reference_mask": png(mode="L", box=(20, 20, 40, 40))},
    ),
}


def multipart(params: dict, files: dict[str, bytes]) -> dict[str, Any]:
    return {
        "data": {"params": json.dumps(params)},
        "files": {name: (f"{name}.png", body, "image/png") for name, body in files.items()},
    }


def slow_move(steps: int = 40) -> tuple[dict, dict[str, bytes]]:
    """A move edit that runs for a while (many steps at 96x96), for cancel/kill/progress tests."""
    params, files = EDITS["move"]
    return {**params, "steps": steps, "max_resolution": 96}, files


def make_settings(tmp_path: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "REDIS_URL": REDIS_URL,
        "data_dir": tmp_path / "data",
        "queue_name": "e2e",
        "heartbeat_s": 1,
        "watchdog_s": 2,
        "job_timeout_s": 300,
    }
    values.update(kw)
    return Settings(**values)


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFEDITOR_")}
    env.update(
        REDIS_URL=settings.redis_url or "",
        DIFFEDITOR_DATA_DIR=str(settings.data_dir),
        DIFFEDITOR_QUEUE_NAME=settings.queue_name,
        DIFFEDITOR_HEARTBEAT_S=str(settings.heartbeat_s),
        DIFFEDITOR_WATCHDOG_S=str(settings.watchdog_s),
        DIFFEDITOR_JOB_TIMEOUT_S=str(settings.job_timeout_s),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS="1",  # two workers on two shared cores: do not oversubscribe
        PYTHONUNBUFFERED="1",
    )
    return env


class WorkerProcess:
    """A real `diffeditor worker` subprocess; its log goes to a file shown on failure."""

    def __init__(self, settings: Settings, name: str, log_dir: Path) -> None:
        self.name, self.settings = name, settings
        self.log_path = log_dir / f"worker-{name}.log"
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "diffeditor", "worker", "--name", name],
            cwd=REPO,
            env=worker_env(settings),
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, redis: Redis, timeout: float = WORKER_START_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for info in workers.ready_workers(JobContext(redis, self.settings)):
                if info["name"] == self.name:
                    return info
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.5)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        stop_process(self.proc, timeout=60)
        self.log_file.close()


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    client.flushdb()  # database 2 belongs to the worker and end-to-end tests
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def start_worker(redis: Redis, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(settings: Settings, name: str, wait: bool = True) -> WorkerProcess:
        worker = WorkerProcess(settings, name, tmp_path)
        started.append(worker)
        if wait:
            worker.wait_ready(redis)
        return worker

    yield start
    for worker in started:
        worker.stop()


def client_for(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), raise_server_exceptions=False)


def poll(
    client: TestClient, job_id: str, until: Callable[[dict], bool], timeout: float = 180, interval: float = 0.1
) -> list[dict]:
    """GET the job until `until(body)`; returns every body seen (the last one satisfies it)."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/v1/edits/{job_id}")
        assert response.status_code == 200, response.text
        seen.append(response.json())
        if until(seen[-1]):
            return seen
        time.sleep(interval)
    raise AssertionError(f"job {job_id} did not get there in {timeout}s; last: {seen[-1] if seen else None}")


def finished(body: dict) -> bool:
    return body["status"] in TERMINAL


def running_past_step(step: int) -> Callable[[dict], bool]:
    def check(body: dict) -> bool:
        p = body.get("progress") or {}
        return body["status"] in TERMINAL or (
            body["status"] == "running" and p.get("stage") == "sampling" and p.get("step", 0) >= step
        )

    return check
