"""Fixtures for the worker, job-contract and store tests: the suite's own Redis (tests/processes.py),
database 2 (flushed per test; it belongs to the worker and end-to-end suites), a local store in a
temp dir, a fake editor injected into the worker (no torch), and an S3 server (moto) on loopback."""

from __future__ import annotations

import io
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from redis import Redis

from engine.requests import EditResult, EditStats
from service.jobs import lifecycle
from service.jobs.context import JobContext
from service.jobs.ids import new_job_id
from service.settings import Settings
from service.store import LocalStore
from tests.processes import suite_redis_url
from worker.runtime import build_runtime, run_worker

REDIS_URL = suite_redis_url(2)


def png(size: tuple[int, int] = (64, 64), mode: str = "RGB", box: tuple[int, int, int, int] | None = None) -> bytes:
    img = Image.new(mode, size, 0 if mode == "L" else (90, 120, 200))
    if box is not None:
        ImageDraw.Draw(img).rectangle(box, fill=255 if mode == "L" else (250, 200, 40))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def move_inputs() -> dict[str, bytes]:
    return {"image": png(box=(10, 10, 30, 30)), "mask": png(mode="L", box=(10, 10, 30, 30))}


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    client.flushdb()  # database 2 belongs to the worker and end-to-end tests
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        REDIS_URL=REDIS_URL,
        data_dir=tmp_path / "data",
        queue_name="workertest",
        heartbeat_s=1,
        watchdog_s=2,
        job_timeout_s=30,
    )


@pytest.fixture
def ctx(redis: Redis, settings: Settings) -> JobContext:
    return JobContext(redis, settings)


@pytest.fixture
def store(settings: Settings) -> LocalStore:
    return LocalStore(settings)


@dataclass
class FakeEditor:
    """Stands in for engine.Editor: steps through `steps` progress reports, checking cancellation
    between them like the engine does, and runs `on_step(i)` (to raise, sleep or cancel) at each;
    given a `preview` callback, it sends a picture of the step's number every `preview_every` steps
    and at the last, as the engine does."""

    steps: int = 4
    on_step: Callable[[int], None] = lambda i: None
    calls: list[Any] = field(default_factory=list)
    preview_calls: list[tuple[int, int]] = field(default_factory=list)

    def edit(
        self,
        request: Any,
        progress: Callable[..., None],
        should_cancel: Callable[[], bool],
        preview: Callable[[int, int, Image.Image], None] | None = None,
        preview_every: int = 5,
    ) -> EditResult:
        from engine.errors import Canceled

        self.calls.append(request)
        request.validate()
        for i in range(self.steps):
            if should_cancel():
                raise Canceled("canceled between steps")
            self.on_step(i)
            progress("sampling", i + 1, self.steps)
            progress("sampling", i + 1, self.steps)  # a duplicate report: must not cost a write
            if preview is not None and preview_every > 0 and ((i + 1) % preview_every == 0 or i + 1 == self.steps):
                self.preview_calls.append((i + 1, self.steps))
                preview(i + 1, self.steps, Image.new("RGB", (16, 12), (20 * i % 256, 90, 200)))
        stats = EditStats(working_size=(64, 64), seconds={"inversion": 0.01, "sampling": 0.02})
        return EditResult(image=request.image.copy(), seed=request.params.seed, params=request.params, stats=stats)


def submit(redis: Redis, settings: Settings, store: LocalStore, params: dict | None = None, owner: str = "anon") -> str:
    job_id = new_job_id()
    store.put_inputs(job_id, move_inputs())
    lifecycle.enqueue(
        JobContext(redis, settings), job_id=job_id, owner=owner, params=params or {"task": "move", "offset": [8, 0]}
    )
    return job_id


@pytest.fixture
def run_burst(redis: Redis, settings: Settings, store: LocalStore) -> Iterator[Callable[..., None]]:
    """Run an in-process worker with the given fake editor until the queue is empty."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def run(editor: FakeEditor, name: str = "fake-worker", **overrides: Any) -> None:
        cfg = settings.model_copy(update=overrides) if overrides else settings
        runtime = build_runtime(cfg, redis, f"{name}-{time.monotonic_ns()}", editor=editor, store=store)
        run_worker(runtime, burst=True)

    yield run
    for sig, handler in saved.items():  # RQ installs its warm-shutdown handlers; give pytest its own back
        signal.signal(sig, handler)
