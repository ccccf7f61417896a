"""The worker's job runner with a fake editor: results, progress, seeds, failure codes, timeouts,
cancellation and the ready registration, through a real in-process RQ worker on real Redis."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image
from redis import Redis
from rq.job import Job
from rq.registry import CanceledJobRegistry

from engine.errors import EngineError, InvalidInput, ModelLoadError, NonFiniteLatent
from service.jobs import lifecycle, outcomes, workers
from service.jobs.context import SERIALIZER, JobContext
from service.jobs.ids import new_job_id
from service.jobs.status import JobStatus
from service.settings import Settings
from service.store import LocalStore
from tests.processes import free_port
from tests.worker.conftest import FakeEditor, submit
from worker.jobs import EditRunner, Runtime
from worker.progress import ProgressReporter, StepTimes


def test_success_writes_result_record_and_effective_params(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst
) -> None:
    job_id = submit(redis, settings, store, {"task": "move", "offset": [8, 0], "seed": None, "steps": 4})
    editor = FakeEditor(steps=4)
    run_burst(editor)

    view = lifecycle.get_job(ctx, job_id)
    assert view is not None and view.status is JobStatus.succeeded
    seed = view.params["seed"]
    assert isinstance(seed, int)
    assert editor.calls[0].params.seed == seed  # the worker picked the seed before the engine ran
    assert view.progress == {"stage": "sampling", "step": 4, "total": 4, "eta_s": 0.0}
    assert view.stats["working_size"] == [64, 64] and view.stats["seconds"]["sampling"] == 0.02
    assert view.error is None and view.started_at and view.ended_at

    record = store.get_record(job_id)
    assert record["seed"] == seed and record["params"]["seed"] == seed
    assert record["params"]["offset"] == [8.0, 0.0] and record["task"] == "move"
    assert record["stats"]["working_size"] == [64, 64]
    assert record["image_size"] == [64, 64]
    image = Image.open(io.BytesIO(store.get_result(job_id)))
    assert image.format == "PNG" and image.size == (64, 64)

    metrics = outcomes.job_metrics(ctx)
    assert metrics["jobs"][("move", "succeeded")] == 1
    assert metrics["durations"][("move", "sampling")]["count"] == 1
    assert set(metrics["durations"]) >= {("move", "queued"), ("move", "total"), ("move", "inversion")}


def test_a_given_seed_is_kept(redis: Redis, settings: Settings, store: LocalStore, run_burst) -> None:
    job_id = submit(redis, settings, store, {"task": "move", "offset": [8, 0], "seed": 1234})
    run_burst(FakeEditor())
    assert store.get_record(job_id)["seed"] == 1234


def test_progress_is_written_once_per_step(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst
) -> None:
    seen: list[dict] = []
    job_id = submit(redis, settings, store)

    def look(i: int) -> None:  # what a poller sees at each step, before that step's report
        seen.append(lifecycle.get_job(ctx, job_id).progress)

    run_burst(FakeEditor(steps=5, on_step=look))
    steps = [p["step"] for p in seen[1:]]
    assert steps == [1, 2, 3, 4]  # rose by one each step
    assert seen[0] == {"stage": "loading", "step": 0, "total": 0}


def test_progress_reporter_throttles_repeats_but_never_skips_a_step() -> None:
    writes: list[dict] = []
    report = ProgressReporter(writes.append, min_interval_s=3600)
    for step in range(1, 4):
        for _ in range(5):
            report("sampling", step, 3)
    report("decode", 0, 1)
    assert [{k: w[k] for k in ("stage", "step", "total")} for w in writes] == [
        {"stage": "sampling", "step": 1, "total": 3},
        {"stage": "sampling", "step": 2, "total": 3},
        {"stage": "sampling", "step": 3, "total": 3},
        {"stage": "decode", "step": 0, "total": 1},
    ]
    # Within one step, a changed report is written once the interval has passed.
    fast = ProgressReporter(writes.append, min_interval_s=0.0)
    fast("guidance", 1, 3)
    fast("guidance", 1, 4)
    assert [(w["step"], w["total"]) for w in writes[-2:]] == [(1, 3), (1, 4)]


def test_progress_eta_counts_the_steps_left_at_this_edits_own_pace() -> None:
    now = [0.0]
    writes: list[dict] = []
    history = StepTimes(sampling_per_inversion=3.0)
    report = ProgressReporter(writes.append, min_interval_s=0.0, history=history, clock=lambda: now[0])
    report("preprocess", 0, 1)
    assert writes[-1]["eta_s"] is None  # nothing timed yet
    now[0] = 1.0
    report("inversion", 1, 10)  # 1 s per inversion step
    # 9 inversion steps left, then 10 sampling steps at 3x an inversion step.
    assert writes[-1]["eta_s"] == 9 * 1.0 + 10 * 3.0
    now[0] = 10.0
    report("inversion", 10, 10)
    assert writes[-1]["eta_s"] == 30.0
    now[0] = 12.0
    report("sampling", 1, 10)  # 2 s per sampling step: 9 left
    assert writes[-1]["eta_s"] == 18.0
    now[0] = 30.0
    report("sampling", 10, 10)
    assert writes[-1]["eta_s"] == 0.0
    assert history.sampling_per_inversion == 2.0  # learnt for the next edit's inversion-time ETA


def _raiser(exc: BaseException, at: int = 1) -> Callable[[int], None]:
    """Raise `exc` at step `at` of the first edit only."""
    raised: list[bool] = []

    def on_step(i: int) -> None:
        if i == at and not raised:
            raised.append(True)
            raise exc

    return on_step


@pytest.mark.parametrize(
    ("exc", "code", "field"),
    [
        (InvalidInput("points", "point pair 0 is outside the image"), "invalid_input", "points"),
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "out_of_memory", None),
        (ModelLoadError("unet weights missing"), "model_load_error", None),
        (EngineError("the sampler diverged"), "engine_error", None),
        (NonFiniteLatent("the sampled latent has NaN values, so no image was decoded"), "non_finite_latent", None),
        (RuntimeError("boom: secret internals"), "internal_error", None),
    ],
)
def test_failures_get_a_code_and_are_not_retried(
    redis: Redis,
    settings: Settings,
    ctx: JobContext,
    store: LocalStore,
    run_burst,
    exc: BaseException,
    code: str,
    field: str | None,
) -> None:
    failing = submit(redis, settings, store)
    after = submit(redis, settings, store)
    run_burst(FakeEditor(on_step=_raiser(exc)))

    view = lifecycle.get_job(ctx, failing)
    assert view.status is JobStatus.failed
    assert view.error["code"] == code and view.error["field"] == field
    assert "Traceback" not in view.error["message"] and "secret internals" not in view.error["message"]
    assert view.params["seed"] is not None  # picked before the failure, reported anyway
    assert Job.fetch(failing, connection=redis, serializer=SERIALIZER).retries_left == 0
    assert store.get_result(failing) is None
    # The worker kept serving: the next job ran on the same editor.
    assert lifecycle.get_job(ctx, after).status is JobStatus.succeeded
    metrics = outcomes.job_metrics(ctx)
    assert metrics["jobs"][("move", "failed")] == 1 and metrics["errors"][("move", code)] == 1


def test_invalid_input_from_request_validation_names_the_field(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst
) -> None:
    job_id = submit(redis, settings, store, {"task": "drag", "points": [[10, 10, 500, 10]]})
    run_burst(FakeEditor())
    view = lifecycle.get_job(ctx, job_id)
    assert view.status is JobStatus.failed
    # The engine names the pair as the API does (diffeditor.inputs.check_points), not just "points".
    assert view.error["code"] == "invalid_input" and view.error["field"] == "points.0"


def test_params_that_no_longer_validate_name_the_field(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst
) -> None:
    job_id = submit(redis, settings, store, {"task": "move", "offset": [8, 0], "steps": 2})  # bypasses the API
    run_burst(FakeEditor())
    view = lifecycle.get_job(ctx, job_id)
    assert view.status is JobStatus.failed
    assert view.error["code"] == "invalid_input" and view.error["field"] == "steps"


def test_per_job_timeout(redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst) -> None:
    short = settings.model_copy(update={"job_timeout_s": 1})  # RQ takes the timeout from the job
    job_id = submit(redis, short, store)
    run_burst(FakeEditor(steps=3, on_step=lambda i: time.sleep(1.5)), job_timeout_s=1)
    view = lifecycle.get_job(ctx, job_id)
    assert view.status is JobStatus.failed and view.error["code"] == "timeout"


def test_missing_inputs_fail_clearly(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst
) -> None:
    job_id = submit(redis, settings, store)
    store.delete(job_id)
    run_burst(FakeEditor())
    view = lifecycle.get_job(ctx, job_id)
    assert view.status is JobStatus.failed and view.error["code"] == "input_missing"


def test_cancel_a_running_job_between_steps(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst
) -> None:
    job_id = submit(redis, settings, store)
    seen: list[JobStatus] = []

    def cancel_at_step(i: int) -> None:
        if i == 1:
            seen.append(lifecycle.cancel(ctx, job_id).status)  # what the API answers at once

    editor = FakeEditor(steps=4, on_step=cancel_at_step)
    run_burst(editor)
    assert seen == [JobStatus.running]
    view = lifecycle.get_job(ctx, job_id)
    assert view.status is JobStatus.canceled
    assert view.progress["step"] == 2  # canceled during step 2, stopped before step 3
    assert view.ended_at is not None and view.error["code"] == "canceled"
    assert job_id in CanceledJobRegistry(queue=ctx.queue())
    assert store.get_result(job_id) is None
    assert not redis.exists(ctx.keys.cancel(job_id))  # the flag is cleaned up
    assert outcomes.job_metrics(ctx)["jobs"][("move", "canceled")] == 1


def test_record_read_back_from_the_store_holds_every_documented_field(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst
) -> None:
    job_id = submit(redis, settings, store, {"task": "move", "offset": [8, 0], "seed": 5})
    run_burst(FakeEditor())
    record = store.get_record(job_id)
    assert set(record) == {
        "job_id", "task", "seed", "params", "stats", "image_size", "worker", "timings", "finished_at"
    }  # fmt: skip
    assert record["job_id"] == job_id and record["seed"] == 5 and record["finished_at"].endswith("Z")
    timings = record["timings"]
    assert set(timings) == {"queued_s", "engine_s", "total_s"}  # total_s was added after the write
    assert timings["total_s"] >= timings["engine_s"] >= 0
    assert lifecycle.get_job(ctx, job_id).stats["timings"] == timings  # the job's view says the same


def test_a_canceled_job_is_logged_at_info_without_a_traceback(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = submit(redis, settings, store)

    def cancel_at_step(i: int) -> None:
        if i == 1:
            lifecycle.cancel(ctx, job_id)

    with caplog.at_level(logging.INFO):
        run_burst(FakeEditor(steps=4, on_step=cancel_at_step))
    assert lifecycle.get_job(ctx, job_id).status is JobStatus.canceled
    about_it = [r for r in caplog.records if job_id in r.getMessage()]
    assert any("canceled" in r.getMessage() for r in about_it)
    assert [r.levelname for r in about_it if r.levelno > logging.INFO] == []
    assert not any(r.exc_info or "Traceback" in r.getMessage() for r in about_it)


def test_cancel_a_queued_job_never_runs_it(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst
) -> None:
    first = submit(redis, settings, store)
    second = submit(redis, settings, store)
    assert lifecycle.get_job(ctx, second).position == 1
    view = lifecycle.cancel(ctx, second)
    assert view.status is JobStatus.canceled and view.ended_at is not None
    assert lifecycle.queue_depth(ctx) == 1
    editor = FakeEditor()
    run_burst(editor)
    assert len(editor.calls) == 1
    assert lifecycle.get_job(ctx, first).status is JobStatus.succeeded
    assert lifecycle.get_job(ctx, second).status is JobStatus.canceled


def test_worker_registers_ready_while_running_and_unregisters_on_exit(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst
) -> None:
    submit(redis, settings, store)
    during: list[list[dict]] = []
    run_burst(FakeEditor(on_step=lambda i: during.append(workers.ready_workers(ctx))), name="reg")
    assert during and len(during[0]) == 1
    info = during[0][0]
    assert info["name"].startswith("reg-") and info["is_demo"] is False
    assert set(info) == {"name", "device", "model", "is_demo", "default_resolution", "gpu_memory_bytes", "last_seen"}
    assert workers.ready_workers(ctx) == []


def test_redis_blips_cost_a_progress_update_not_the_edit(settings: Settings, store: LocalStore) -> None:
    dead = Redis(port=free_port(), socket_connect_timeout=0.5)  # nothing listens there
    runner = EditRunner(Runtime(settings=settings, redis=dead, store=store, editor=FakeEditor(), worker_name="w"))
    job = Job(new_job_id(), connection=dead)
    job.meta = {}
    assert runner._should_cancel(job)() is False  # cannot ask: keep going
    runner._report_progress(job, {"stage": "sampling", "step": 1, "total": 4})  # logged, not raised
    assert job.meta["progress"]["step"] == 1


def test_cpu_threads_follow_the_setting_then_omp_then_the_allowed_cores(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from worker import runtime

    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # 1.5 CPUs: rounded up to 2
    assert runtime._cgroup_cpu_quota(cpu_max) == 2
    cpu_max.write_text("max 100000\n")
    assert runtime._cgroup_cpu_quota(cpu_max) is None
    assert runtime._cgroup_cpu_quota(tmp_path / "absent") is None
    assert runtime.cpu_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert runtime.cpu_threads() == 5
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(runtime, "_cgroup_cpu_quota", lambda: 2)
    assert runtime.cpu_threads() == 2  # a container's quota caps the affinity


def test_a_stopping_worker_does_not_wait_out_a_minute_of_rq_command_polling(redis: Redis, ctx: JobContext) -> None:
    """RQ unsubscribes, then stops its command thread (redis-py 8 joins it); a thread that read the
    unsubscribe first waits a whole poll for a subscription: RQ's 60 s, ours PUBSUB_POLL_S."""
    from worker.runtime import PUBSUB_POLL_S, EditWorker

    worker = EditWorker([ctx.queue()], connection=redis, name=f"stopping-{new_job_id()[:8]}", job_context=ctx)
    worker.subscribe()
    time.sleep(0.3)  # subscribed, the thread polling
    worker.pubsub.unsubscribe()
    time.sleep(0.3)  # the thread read the unsubscribe and now waits for a subscription
    started = time.monotonic()
    worker.unsubscribe()  # RQ's teardown
    assert PUBSUB_POLL_S <= 1.0 and time.monotonic() - started < 5.0  # not RQ's 60 s
