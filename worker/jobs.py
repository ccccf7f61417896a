"""The RQ job function `run_edit(job_id)` and the runner behind it.

RQ calls `run_edit` by name (service.jobs.context.JOB_FUNC) inside the worker process; the models and
the store it needs live in the process-wide `Runtime` that the worker sets up once with
`configure()` (the way Cog's `setup()` precedes `predict()`). `EditRunner` does the work and
takes its editor as an argument, so tests can inject a fake one.

What a job leaves behind:
- success: result PNG + JSON record in the store (job_id, task, seed, params, stats, image_size,
  worker, timings {queued_s, engine_s, total_s}, finished_at); meta.params (seed filled),
  meta.progress, meta.stats (with the same timings); RQ status finished.
- failure: meta.error {"code", "message", "field"} and RQ status failed. Codes: invalid_input
  (with field), out_of_memory, timeout, the engine error's own code (engine_error,
  model_load_error, ...), input_missing, internal_error.
- step previews (settings.preview_every > 0): every k-th sampling step the latest x̂0 picture as a
  JPEG under keys.preview (service/jobs/previews.py) and a `preview` event; best effort, like
  progress: a Redis blip costs a preview, never the edit.
- cancellation (flag set by the API, checked between steps): meta.error code canceled; the worker
  then moves the job to RQ's canceled registry (worker.runtime.EditWorker). Logged at INFO: a
  cancellation is what the client asked for, not an error.
The job's one RQ retry is kept only for a worker that dies mid-job; every error above zeroes it.
"""

from __future__ import annotations

import gc
import io
import logging
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from PIL import Image
from pydantic import ValidationError
from redis import Redis
from redis.exceptions import RedisError
from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException

from diffeditor.tasks import parse_params
from engine.errors import Canceled, EngineError, InvalidInput
from engine.requests import request_from_files
from service.jobs import deadlines, events, lifecycle, outcomes, previews
from service.jobs.context import JobContext
from service.jobs.status import STOPPED_CODES
from service.settings import Settings
from service.store import Store
from worker.progress import ProgressReporter, StepTimes

log = logging.getLogger("diffeditor.worker")


PREVIEW_JPEG_QUALITY = 75


class Editor(Protocol):
    def edit(
        self,
        request: Any,
        progress: Callable[[str, int, int], None],
        should_cancel: Callable[[], bool],
        preview: Callable[[int, int, Image.Image], None] | None = None,
        preview_every: int = 5,
    ) -> Any: ...


@dataclass
class Runtime:
    """What a worker process holds for its whole life."""

    settings: Settings
    redis: Redis
    store: Store
    editor: Editor
    worker_name: str
    model: dict = field(default_factory=dict)  # {"model", "is_demo", "device", "default_resolution"}
    step_times: StepTimes = field(default_factory=StepTimes)  # for ETAs: learnt across this worker's edits

    @property
    def job_context(self) -> JobContext:
        return JobContext(self.redis, self.settings)


_runtime: Runtime | None = None


def configure(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def run_edit(job_id: str) -> dict:
    """RQ entry point (JOB_FUNC). Returns a small summary; the real output is in the store."""
    if _runtime is None:
        raise RuntimeError("worker.jobs.configure() was not called: run jobs with `diffeditor worker`")
    job = get_current_job()
    if job is None or job.id != job_id:
        raise RuntimeError(f"run_edit({job_id}) called outside its RQ job")
    return EditRunner(_runtime).run(job)


class JobFailed(Exception):
    """Raised to RQ after the job's meta.error is written; the message is for the worker log."""


@dataclass
class EditFailure:
    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "field": self.field}


class EditRunner:
    def __init__(self, runtime: Runtime, progress_interval_s: float = 0.5) -> None:
        self.rt = runtime
        self.progress_interval_s = progress_interval_s

    # -- helpers bound to one job --------------------------------------------------------------

    def _save_meta(self, job: Job, **changes: Any) -> None:
        job.meta.update(changes)
        job.save_meta()

    def _report_progress(self, job: Job, progress: dict) -> None:
        try:
            self._save_meta(job, progress=progress)
        except RedisError as exc:  # a Redis blip costs a progress update, not the edit
            log.warning("job %s: progress not saved: %s", job.id, exc)
        self._publish(job, "progress", {"status": "running", **progress})

    def _publish(self, job: Job, type: events.EventType, data: dict) -> None:
        try:
            events.publish(self.rt.job_context, job.id, type, data, options=job.meta.get("options"))
        except RedisError as exc:  # an event is worth less than the edit: log it and go on
            log.warning("job %s: %s event not published: %s", job.id, type, exc)

    def _report_preview(self, job: Job, step: int, total: int, image: Image.Image) -> None:
        """A preview is worth less than the edit: whatever goes wrong here is logged, never raised."""
        try:
            buf = io.BytesIO()
            image.convert("RGB").save(buf, format="JPEG", quality=PREVIEW_JPEG_QUALITY)
            jpeg = buf.getvalue()
            width, height = image.size
            data = {"step": step, "total": total, "width": width, "height": height, "image": previews.data_url(jpeg)}
            previews.put(self.rt.job_context, job.id, previews.Preview(jpeg, step, total))
            events.publish(self.rt.job_context, job.id, "preview", data, options=job.meta.get("options"))
        except Exception:  # noqa: BLE001 - a Redis blip, an encoder error: the edit goes on
            log.warning("job %s: preview of step %d dropped", job.id, step, exc_info=True)

    def _should_cancel(self, job: Job) -> Callable[[], bool]:
        ctx = self.rt.job_context
        job_id = job.id
        deadline = deadlines.deadline_at(job)

        def should_cancel() -> bool:
            if deadline is not None and time.time() >= deadline:
                return True  # _classify tells it from a cancel by the deadline
            try:
                return lifecycle.cancel_requested(ctx, job_id)
            except RedisError as exc:  # cannot ask: keep going, ask again at the next step
                log.warning("job %s: cancel flag unreadable: %s", job_id, exc)
                return False

        return should_cancel

    def _load_inputs(self, job_id: str) -> dict[str, Image.Image]:
        images = {}
        for name in self.rt.store.input_names(job_id):
            data = self.rt.store.get_input(job_id, name)
            if data is None:
                continue
            image = Image.open(io.BytesIO(data))
            image.load()  # the API validated and re-encoded it; decode now, not mid-edit
            images[name] = image
        if "image" not in images:
            raise _Missing("the job's input images are gone from the store (expired or deleted)")
        return images

    # -- the job ---------------------------------------------------------------------------------

    def run(self, job: Job) -> dict:
        t0 = time.monotonic()
        ctx = self.rt.job_context
        task = job.meta.get("task", "unknown")
        params = dict(job.meta.get("params") or {})
        if params.get("seed") is None:
            # Picked here, before any work, so a failed or canceled job still reports it.
            params["seed"] = secrets.randbelow(2**32)
        if params.get("max_resolution") is None and getattr(self.rt.editor, "default_resolution", None):
            params["max_resolution"] = int(self.rt.editor.default_resolution)  # this worker's default
        self._save_meta(job, params=params, progress={"stage": "loading", "step": 0, "total": 0}, error=None)
        queued_s = _seconds_between(job.enqueued_at, job.started_at)
        try:
            if deadlines.passed(job):
                raise _Expired()
            self._publish(job, "start", {"status": "running", "worker": self.rt.worker_name})
            should_cancel = self._should_cancel(job)
            if should_cancel():
                raise Canceled("canceled before it started")
            request = request_from_files(parse_params(params), self._load_inputs(job.id))
            every = self.rt.settings.preview_every
            t_engine = time.monotonic()
            result = self.rt.editor.edit(
                request,
                progress=ProgressReporter(
                    lambda p: self._report_progress(job, p), self.progress_interval_s, self.rt.step_times
                ),
                should_cancel=should_cancel,
                preview=(lambda i, n, im: self._report_preview(job, i, n, im)) if every > 0 else None,
                preview_every=every,
            )
            engine_s = time.monotonic() - t_engine
            effective = result.params.model_dump(mode="json")
            effective["seed"] = int(result.seed)
            stats = result.stats.to_dict()
            buf = io.BytesIO()
            result.image.save(buf, format="PNG")
            total_s = time.monotonic() - t0
            record = {
                "job_id": job.id,
                "task": task,
                "seed": int(result.seed),
                "params": effective,
                "stats": stats,
                "image_size": list(result.image.size),
                "worker": {"name": self.rt.worker_name, **self.rt.model},
                # total_s is measured before the write: a record cannot time its own write, and
                # one measured after it would never reach the file.
                "timings": {"queued_s": queued_s, "engine_s": round(engine_s, 4), "total_s": round(total_s, 4)},
                "finished_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            }
            self.rt.store.put_result(job.id, buf.getvalue(), record)
            last = job.meta.get("progress") or {}
            self._save_meta(job, params=effective, stats={**stats, "timings": record["timings"]}, progress=last)
        except BaseException as exc:  # noqa: BLE001 - every way out is reported, then re-raised
            failure = self._classify(exc, job)
            if failure is None:
                raise  # KeyboardInterrupt, SystemExit: the process is going away; the watchdog handles the job
            self._fail(job, task, failure, time.monotonic() - t0, queued_s)
            raise JobFailed(f"{failure.code}: {failure.message}") from exc
        durations = {"queued": queued_s, "total": total_s, **stats.get("seconds", {})}
        outcomes.record_outcome(ctx, task=task, outcome="succeeded", durations=durations)
        lifecycle.clear_cancel(ctx, job.id)
        log.info("job %s (%s) succeeded in %.2fs (engine %.2fs)", job.id, task, total_s, engine_s)
        return {"seed": int(result.seed), "image_size": list(result.image.size)}

    def _classify(self, exc: BaseException, job: Job) -> EditFailure | None:
        timeout = self.rt.settings.job_timeout_s
        if isinstance(exc, _Expired) or (isinstance(exc, Canceled) and deadlines.passed(job)):
            started = not isinstance(exc, _Expired)
            error = deadlines.expired_error(started, (job.meta.get("options") or {}).get("deadline_s"))
            return EditFailure(**error)
        if isinstance(exc, Canceled):
            return EditFailure("canceled", "canceled on request")
        if isinstance(exc, InvalidInput):
            return EditFailure("invalid_input", exc.message, exc.field)
        if isinstance(exc, ValidationError):  # the API validated the params; a stale job may still differ
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"][1:] or first["loc"]) or None
            return EditFailure("invalid_input", first["msg"], field)
        if isinstance(exc, JobTimeoutException):
            return EditFailure("timeout", f"the edit ran longer than the {timeout} s per-job limit")
        if _is_out_of_memory(exc):
            free_memory(self.rt.editor)
            return EditFailure(
                "out_of_memory", "the GPU ran out of memory; try a smaller max_resolution or fewer points"
            )
        if isinstance(exc, _Missing):
            return EditFailure("input_missing", str(exc))
        if isinstance(exc, EngineError):
            return EditFailure(exc.code, str(exc))
        if isinstance(exc, Exception):
            log.exception("job failed with an unexpected error")
            return EditFailure("internal_error", "the worker failed unexpectedly; the error is in its log")
        return None

    def _fail(self, job: Job, task: str, failure: EditFailure, elapsed_s: float, queued_s: float) -> None:
        job.retries_left = 0  # errors the worker reports itself are final; the retry is for lost workers
        self._save_meta(job, error=failure.as_dict())
        outcome = failure.code if failure.code in STOPPED_CODES else "failed"
        ctx = self.rt.job_context
        outcomes.record_outcome(
            ctx,
            task=task,
            outcome=outcome,
            code=None if outcome != "failed" else failure.code,
            durations={"queued": queued_s, "total": elapsed_s},
        )
        lifecycle.clear_cancel(ctx, job.id)
        # A cancellation or an expiry is what the client asked for: INFO; a failure is the service's: WARNING.
        level = logging.INFO if outcome != "failed" else logging.WARNING
        log.log(level, "job %s (%s) %s: %s", job.id, task, outcome, failure.message)


class _Missing(Exception):
    pass


class _Expired(Exception):
    """The job's deadline passed before it started: it ends expired without running."""


def _seconds_between(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None:
        return 0.0
    return round(max(0.0, (end - start).total_seconds()), 4)


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")  # the worker has it loaded; never import it just to check
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    return oom is not None and isinstance(exc, oom)


def free_memory(editor: object | None = None) -> None:
    """After an out-of-memory error: drop the failed edit's tensors and return cached blocks."""
    clear = getattr(editor, "clear_cache", None)
    if callable(clear):
        clear()
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
