"""Scale-out, as deployed: one API process (`diffeditor serve` with REDIS_URL: API only) and two
`diffeditor worker` processes on the demo model share one Redis (the real one, database 3) and
one result store. Twenty jobs submitted over HTTP are spread over both workers, every one
finishes, and SIGKILL of one worker in the middle of a job loses nothing: the watchdog hands the
abandoned job back to the queue once and the surviving worker completes it."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from PIL import Image, ImageDraw
from redis import Redis

from service.settings import Settings
from service.store import Store, make_store
from tests.deploy.tools import ROOT
from tests.processes import free_port, stop_process, suite_redis_url

REDIS_URL = suite_redis_url(3)
N_JOBS = 20
WORKERS = ("scale-a", "scale-b")
VICTIM = WORKERS[0]
T = TypeVar("T")

pytestmark = pytest.mark.slow


@dataclass
class Stack:
    api: httpx.Client
    redis: Redis
    workers: dict[str, subprocess.Popen[bytes]]
    store: Store
    logs: Path

    def tail_logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log")))


def wait_for(what: str, check: Callable[[], T | None], timeout_s: float, stack: Stack | None = None) -> T:
    """Poll `check` until it returns a truthy value; a bound, not a speed assertion."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what} after {timeout_s:.0f} s\n{stack.tail_logs() if stack else ''}")


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "diffeditor", *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()  # database 3 belongs to the deployment tests
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "DIFFEDITOR_DATA_DIR": str(tmp_path / "data"),
        "DIFFEDITOR_MODEL": "demo",
        "DIFFEDITOR_DEVICE": "cpu",
        "DIFFEDITOR_API_KEY_HASHES": "",
        "DIFFEDITOR_RATE_LIMIT_PER_MIN": "1000",
        "DIFFEDITOR_MAX_QUEUED_PER_KEY": "100",
        # A shorter lease and sweep than production keeps the test short; the mechanism is the same.
        "DIFFEDITOR_HEARTBEAT_S": "3",
        "DIFFEDITOR_WATCHDOG_S": "3",
        "HF_HUB_OFFLINE": "1",
        # Two workers on a small machine: one thread each instead of fighting over every core.
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    port = free_port()
    procs = {"api": start(["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "api.log")}
    for name in WORKERS:
        procs[name] = start(["worker", "--name", name], env, tmp_path / f"{name}.log")
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    store = make_store(Settings(redis_url=REDIS_URL, data_dir=tmp_path / "data"))
    s = Stack(api=client, redis=redis, workers={n: procs[n] for n in WORKERS}, store=store, logs=tmp_path)
    try:
        yield s
    finally:
        client.close()
        for proc in procs.values():
            stop_process(proc, timeout=20)
        redis.flushdb()
        redis.close()


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def submit(api: httpx.Client, seed: int) -> str:
    image = Image.new("RGB", (64, 64), (80, 120, 200))
    ImageDraw.Draw(image).ellipse((16, 16, 40, 40), fill=(240, 200, 40))
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((8, 8, 48, 48), fill=255)
    params = {"task": "drag", "points": [[28, 28, 36, 32]], "steps": 4, "max_resolution": 64, "seed": seed}
    files = {"image": ("image.png", png(image), "image/png"), "mask": ("mask.png", png(mask), "image/png")}
    response = api.post("/v1/edits", data={"params": json.dumps(params)}, files=files)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def statuses(api: httpx.Client, ids: list[str]) -> dict[str, dict]:
    out = {}
    for job_id in ids:
        response = api.get(f"/v1/edits/{job_id}")
        assert response.status_code == 200, response.text
        out[job_id] = response.json()
    return out


def ran_on(stack: Stack, job_id: str) -> str | None:
    """The worker that finished the job, from its result record in the shared store."""
    record = stack.store.get_record(job_id)
    return record["worker"]["name"] if record else None


def rq_state(stack: Stack, job_id: str) -> tuple[str, str]:
    """(status, worker name) from RQ's own job hash."""
    status, name = stack.redis.hmget(f"rq:job:{job_id}", "status", "worker_name")
    return (status or b"").decode(), (name or b"").decode()


def running_on(stack: Stack, worker: str, ids: list[str]) -> list[str]:
    """Jobs RQ has started on `worker` and not finished."""
    return [j for j in ids if rq_state(stack, j) == ("started", worker)]


def kill_mid_job(stack: Stack, ids: list[str]) -> str:
    """SIGKILL the victim worker while it runs a job, once both workers have finished one.

    The victim is frozen (SIGSTOP) while its state is read, so "it is running job X" is still
    true at the moment of the kill; if it is between jobs it is resumed and tried again."""
    victim = stack.workers[VICTIM]

    def attempt() -> str | None:
        # Finished in RQ, not merely recorded: the record is written just before the job ends.
        finished_by = {ran_on(stack, j) for j in ids if rq_state(stack, j)[0] == "finished"}
        if not set(WORKERS) <= finished_by:
            return None
        victim.send_signal(signal.SIGSTOP)
        orphans = running_on(stack, VICTIM, ids)
        if len(orphans) == 1:
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            return orphans[0]
        victim.send_signal(signal.SIGCONT)
        return None

    return wait_for(f"{VICTIM} running a job after both workers finished one", attempt, 240, stack)


def test_two_workers_share_the_queue_and_a_killed_worker_loses_no_job(stack: Stack) -> None:
    ready = wait_for(
        "the API and both workers ready",
        lambda: (r := _readyz(stack.api)) and r.get("workers") == len(WORKERS) and r,
        240,
        stack,
    )
    assert ready["demo_model"] is True
    ids = [submit(stack.api, seed) for seed in range(N_JOBS)]
    assert len(set(ids)) == N_JOBS

    orphan = kill_mid_job(stack, ids)

    def all_finished() -> dict[str, dict] | None:
        views = statuses(stack.api, ids)
        done = all(v["status"] in ("succeeded", "failed", "canceled") for v in views.values())
        return views if done else None

    views = wait_for("every job to finish", all_finished, 300, stack)
    outcome = {job_id: (v["status"], v.get("error")) for job_id, v in views.items()}
    assert all(status == "succeeded" for status, _ in outcome.values()), outcome

    # The killed worker's job was handed back and completed by the survivor.
    assert ran_on(stack, orphan) == WORKERS[1], stack.tail_logs()
    by_worker = {w: sum(ran_on(stack, j) == w for j in ids) for w in WORKERS}
    assert all(n >= 1 for n in by_worker.values()), by_worker
    assert sum(by_worker.values()) == N_JOBS
    for job_id in ids:
        result = stack.api.get(f"/v1/edits/{job_id}/result")
        assert result.status_code == 200 and result.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(result.content)).size == (64, 64)
    assert stack.workers[WORKERS[1]].poll() is None, "the surviving worker must keep serving"


def _readyz(api: httpx.Client) -> dict | None:
    try:
        return api.get("/readyz").json()
    except (httpx.TransportError, ValueError):
        return None
