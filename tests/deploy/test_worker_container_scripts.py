"""The worker image's two scripts, run for real: the entrypoint refuses to start without weights
unless the demo model is asked for, and the readiness probe is true exactly when this worker is
registered warm in Redis (the real Redis, database 3)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from service.jobs import workers
from service.jobs.context import JobContext
from service.settings import Settings
from tests.deploy.tools import ROOT
from tests.processes import suite_redis_url

ENTRYPOINT = ROOT / "deploy" / "docker" / "worker-entrypoint.sh"
READY = ROOT / "deploy" / "docker" / "worker_ready.py"
REDIS_URL = suite_redis_url(3)
EX_CONFIG = 78


def entrypoint(model: str | None, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    if model is not None:
        base["DIFFEDITOR_MODEL"] = model
    return subprocess.run(
        ["sh", str(ENTRYPOINT), "echo", "started"], capture_output=True, text=True, env={**base, **env}, timeout=30
    )


def test_entrypoint_refuses_to_guess_a_model(tmp_path: Path) -> None:
    result = entrypoint(None, tmp_path)
    assert result.returncode == EX_CONFIG and "started" not in result.stdout
    assert "DIFFEDITOR_MODEL is not set" in result.stderr and "DIFFEDITOR_MODEL=demo" in result.stderr


def test_entrypoint_runs_the_demo_model_only_when_asked_and_says_so(tmp_path: Path) -> None:
    result = entrypoint("demo", tmp_path)
    assert result.returncode == 0 and result.stdout == "started\n"
    assert "DEMO model" in result.stderr


def test_entrypoint_checks_the_mounted_weights(tmp_path: Path) -> None:
    missing = entrypoint(str(tmp_path / "models"), tmp_path)
    assert missing.returncode == EX_CONFIG and "does not exist" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    unfilled = entrypoint(str(empty), tmp_path)
    assert unfilled.returncode == EX_CONFIG and "model_index.json missing" in unfilled.stderr
    (empty / "model_index.json").write_text("{}")
    assert entrypoint(str(empty), tmp_path).stdout == "started\n"
    checkpoint = tmp_path / "sd15.safetensors"
    checkpoint.write_bytes(b"x")
    assert entrypoint(str(checkpoint), tmp_path).returncode == 0


def test_entrypoint_wants_hub_ids_in_the_offline_cache(tmp_path: Path) -> None:
    result = entrypoint("org/model", tmp_path)
    assert result.returncode == EX_CONFIG and "not in the Hugging Face cache" in result.stderr
    (tmp_path / "hf" / "hub" / "models--org--model").mkdir(parents=True)
    assert entrypoint("org/model", tmp_path).returncode == 0


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    client.flushdb()  # database 3 belongs to the deployment tests
    yield client
    client.flushdb()
    client.close()


def probe(redis_url: str, name: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    if name is not None:
        env["DIFFEDITOR_WORKER_NAME"] = name
    return subprocess.run([sys.executable, str(READY)], capture_output=True, text=True, env=env, timeout=60)


def test_readiness_probe_follows_the_worker_registration(redis: Redis) -> None:
    settings = Settings(redis_url=REDIS_URL)
    assert probe(REDIS_URL, "pod-a").returncode == 1  # still loading: not registered
    info = {"name": "pod-a", "device": "cpu", "model": "demo", "is_demo": True, "gpu_memory_bytes": None}
    workers.register_worker(JobContext(redis, settings), info)
    ready = probe(REDIS_URL, "pod-a")
    assert ready.returncode == 0, ready.stderr
    assert "ready: pod-a" in ready.stdout
    other = probe(REDIS_URL, "pod-b")  # another pod's registration does not make this one ready
    assert other.returncode == 1 and "pod-b is not registered" in other.stderr
    workers.unregister_worker(JobContext(redis, settings), "pod-a")  # SIGTERM: the worker leaves the registry
    assert probe(REDIS_URL, "pod-a").returncode == 1
    # Without DIFFEDITOR_WORKER_NAME (compose): the worker's default name, <hostname>-<pid>.
    assert probe(REDIS_URL, None).returncode == 1
    workers.register_worker(JobContext(redis, settings), {**info, "name": f"{socket.gethostname()}-4242"})
    assert probe(REDIS_URL, None).returncode == 0


def test_readiness_probe_fails_cleanly_without_redis() -> None:
    result = probe("redis://127.0.0.1:1/0", "pod-a")
    assert result.returncode == 1 and "cannot read the worker registry" in result.stderr
    assert "Traceback" not in result.stderr
