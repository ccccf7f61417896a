"""Helpers for tests (and benchmarks) that run servers and workers as real processes, and the
suite's own throwaway Redis: the tests never touch a Redis they did not start (on a developer's
machine, the one on 6379 holds someone's data)."""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from redis import Redis
from redis.exceptions import RedisError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM (a worker finishes its job, a server drains), then SIGKILL after `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen, log: Path, status: int = 200) -> httpx.Response:
    """Poll `url` until it answers `status`; fail with the process's log if it exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == status:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer {status} in {timeout}s:\n{log.read_text()[-4000:]}")


class RedisServer:
    """A redis-server on 127.0.0.1:`port`, no persistence, run from `workdir`."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("the tests need redis-server on PATH (Debian: apt-get install redis-server)")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis(port=self.port, socket_connect_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                return
            except RedisError:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_suite_redis: RedisServer | None = None


def suite_redis_url(db: int) -> str:
    """URL of database `db` on the suite's Redis, started on a free port at first use and killed at
    exit. Databases: 1 the API tests, 2 the worker and end-to-end tests, 3 the deployment tests."""
    global _suite_redis
    if _suite_redis is None:
        server = RedisServer(free_port(), Path(tempfile.mkdtemp(prefix="diffeditor-test-redis-")))
        server.start()
        atexit.register(server.kill)
        _suite_redis = server
    return f"redis://127.0.0.1:{_suite_redis.port}/{db}"
