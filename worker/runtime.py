"""A worker process's lifetime: load the models once, warm up, register ready, then run RQ jobs
one at a time in this process (no fork: CUDA state and the weights stay put), with a heartbeat
thread that keeps the worker registered, renews the running job's lease and runs the watchdog.

Signals (RQ's warm shutdown): SIGTERM or SIGINT lets the current job finish, then the worker
unregisters and exits; a second one exits at once (the job is then left to the watchdog).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue
from rq.timeouts import TimerDeathPenalty

from service.jobs import events, lifecycle, watchdog, workers
from service.jobs.context import SERIALIZER, JobContext
from service.jobs.status import FINISHED, STOPPED_CODES, JobStatus
from service.settings import Settings
from service.store import Store, make_store
from worker.jobs import EditRunner, Runtime, configure

log = logging.getLogger("diffeditor.worker")

STORE_CLEANUP_INTERVAL_S = 600
# How often the thread reading RQ's worker commands (its pubsub) wakes; RQ's 60 s made a stopping
# worker wait up to a minute (EditWorker.subscribe).
PUBSUB_POLL_S = 1.0


class EditWorker(SimpleWorker):
    """RQ's in-process worker with a short job lease (renewed by `Heartbeat`) and canceled jobs
    moved to RQ's canceled registry instead of the failed one, logged at INFO without the
    traceback RQ logs at ERROR for a failed job (a cancellation is no error)."""

    def __init__(self, *args: Any, job_context: JobContext, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job_context = job_context

    def subscribe(self) -> None:
        """RQ's, with the command thread polling every PUBSUB_POLL_S instead of 60 s: at teardown
        RQ unsubscribes and then stops that thread, whose redis-py 8 `stop()` joins it, and a thread
        that reads the unsubscribe first waits its whole poll for a subscription (seen: a burst
        worker ending 60 s late under load, and so would a worker told to stop)."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_POLL_S, daemon=True, exception_handler=self._pubsub_exception_handler
        )

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # RQ's default lease is the job timeout + 60 s; ours is a few heartbeats, so a dead
        # worker's job is found by the watchdog in seconds, not after the whole timeout.
        return self.job_context.lease_s

    @staticmethod
    def _canceled(job: Job) -> bool:
        """Stopped on request or by its deadline (STOPPED_CODES): RQ's canceled registry, not failed."""
        return ((job.meta or {}).get("error") or {}).get("code") in STOPPED_CODES

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: Any = None,
        exc_string: str = "",
        execution: Any = None,
    ) -> None:
        if not self._canceled(job):
            super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)
            return
        with self.connection.pipeline() as pipe:
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            pipe.execute()
        job.cancel()
        with self.connection.pipeline() as pipe:
            if job.ended_at is not None:
                pipe.hset(job.key, "ended_at", job.ended_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            pipe.expire(job.key, self.job_context.settings.job_ttl_s)
            pipe.execute()
        self.log.info("Worker %s: job %s canceled", self.name, job.id)

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        if not self._canceled(job):  # RQ's: the traceback at ERROR
            super().handle_exception(job, *exc_info)

    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        try:
            return super().perform_job(job, queue, execution)
        finally:
            self._publish_end(job)

    def _publish_end(self, job: Job) -> None:
        """The job's `completed` event, published once RQ has recorded its end, so that whoever reads
        the job on hearing it (the SSE stream, a webhook) finds it finished; `queued` if RQ requeued it."""
        ctx = self.job_context
        try:
            view = lifecycle.get_job(ctx, job.id)
            if view is None:
                return
            if view.status in FINISHED:
                data = {"status": JobStatus(view.status).value, "error": view.error}
                events.publish(ctx, job.id, "completed", data, options=view.options)
            elif view.status is JobStatus.queued:
                events.publish(
                    ctx, job.id, "queued", {"status": "queued", "position": view.position}, options=view.options
                )
        except Exception as exc:  # noqa: BLE001 - the status route still tells the end; the stream sees it there
            log.warning("job %s: completed event not published: %s", job.id, exc)

    def execute_job(self, job: Job, queue: Queue) -> None:
        self.current_job = job
        try:
            super().execute_job(job, queue)
        finally:
            self.current_job = None

    current_job: Job | None = None


class Heartbeat(threading.Thread):
    """Every settings.heartbeat_s: refresh the ready registration and the running job's lease;
    every settings.watchdog_s: sweep abandoned jobs; every 10 minutes: delete expired files."""

    def __init__(self, worker: EditWorker, runtime: Runtime, info: Callable[[], dict]) -> None:
        super().__init__(name="diffeditor-heartbeat", daemon=True)
        self.worker, self.rt, self.info = worker, runtime, info
        self.stop_event = threading.Event()

    def beat(self) -> None:
        workers.register_worker(self.rt.job_context, self.info())
        job, execution = self.worker.current_job, self.worker.execution
        if job is not None and execution is not None:
            self.worker.maintain_heartbeats(job, execution)

    def run(self) -> None:
        settings = self.rt.settings
        next_sweep = next_cleanup = time.monotonic()
        while not self.stop_event.is_set():
            now = time.monotonic()
            try:
                self.beat()
                if now >= next_sweep:
                    next_sweep = now + settings.watchdog_s
                    watchdog.sweep_abandoned(self.rt.job_context)
                if now >= next_cleanup:
                    next_cleanup = now + STORE_CLEANUP_INTERVAL_S
                    removed = self.rt.store.cleanup_expired()
                    if removed:
                        log.info("deleted the files of %d expired jobs", removed)
            except RedisError as exc:  # Redis blips must not kill the heartbeat; the next beat retries
                log.warning("heartbeat: Redis unavailable: %s", exc)
            except Exception:
                log.exception("heartbeat failed")
            self.stop_event.wait(settings.heartbeat_s)

    def stop(self) -> None:
        self.stop_event.set()


def worker_info(name: str, model: dict) -> dict:
    return {
        "name": name,
        "device": model.get("device", "cpu"),
        "model": model.get("model", ""),
        "is_demo": bool(model.get("is_demo", False)),
        "default_resolution": model.get("default_resolution"),
        "gpu_memory_bytes": gpu_memory_bytes(),
    }


def gpu_memory_bytes() -> int:
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return 0
    return int(torch.cuda.memory_reserved())


def run_worker(
    runtime: Runtime,
    *,
    burst: bool = False,
    in_main_thread: bool = True,
    ready: threading.Event | None = None,
) -> int:
    """Register ready and take jobs until told to stop (or, with burst, until the queue is empty).

    `in_main_thread=False` (embedded mode may run the worker beside the server) uses a
    timer-based job timeout and leaves signals to the host process.
    """
    ctx = runtime.job_context
    configure(runtime)
    worker = EditWorker(
        [ctx.queue()],
        connection=ctx.redis,
        name=runtime.worker_name,
        serializer=SERIALIZER,
        job_context=ctx,
        worker_ttl=max(30, ctx.lease_s),  # RQ's own worker key; also bounds the idle BLMOVE
        job_monitoring_interval=ctx.settings.heartbeat_s,
    )
    if not in_main_thread:
        worker.death_penalty_class = TimerDeathPenalty  # SIGALRM reaches only the main thread
        worker._install_signal_handlers = lambda: None  # type: ignore[method-assign]
    heartbeat = Heartbeat(worker, runtime, lambda: worker_info(runtime.worker_name, runtime.model))
    heartbeat.beat()  # registered ready before the first dequeue
    heartbeat.start()
    if ready is not None:
        ready.set()
    try:
        worker.work(burst=burst, logging_level=None, with_scheduler=False)
    finally:
        heartbeat.stop()
        workers.unregister_worker(ctx, runtime.worker_name)
        log.info("worker %s stopped", runtime.worker_name)
    return 0


def build_runtime(
    settings: Settings, redis: Redis, name: str, editor: Any | None = None, store: Store | None = None
) -> Runtime:
    """Load the models once and warm up (unless an editor is given, as tests do)."""
    model: dict = {"model": "injected", "is_demo": False, "device": "cpu"}
    if editor is None:
        editor, model = load_editor(settings)
    model["default_resolution"] = getattr(editor, "default_resolution", None)
    return Runtime(
        settings=settings,
        redis=redis,
        store=store or make_store(settings),
        editor=editor,
        worker_name=name,
        model=model,
    )


def load_editor(settings: Settings) -> tuple[Any, dict]:
    import torch

    import engine  # torch comes in here, and only in worker processes

    spec = settings.model or "demo"
    t0 = time.monotonic()
    models = engine.load_models(spec, device=settings.device, dtype=settings.dtype)
    if models.device.type == "cpu":
        threads = cpu_threads(settings.cpu_threads)
        torch.set_num_threads(threads)
        log.info("CPU: %d intra-op threads (DIFFEDITOR_CPU_THREADS to change)", threads)
    model = {"model": str(models.model_id), "is_demo": bool(models.is_demo), "device": str(models.device)}
    if models.random_weights:
        log.warning(
            "!!! TINY RANDOM MODEL (%s): random weights. Outputs are noise-like and prove only the machinery. "
            "Set DIFFEDITOR_MODEL to real SD1.5 weights for real edits. !!!",
            spec,
        )
    elif models.is_demo:
        log.warning(
            "DEMO MODEL (%s): a small model trained on a shapes world (flat-coloured shapes and cartoon faces). "
            "Set DIFFEDITOR_MODEL to SD1.5 weights for photographs.",
            spec,
        )
    editor = engine.Editor(
        models,
        cache_bytes=settings.inversion_cache_mb * 2**20,
        default_resolution=settings.default_resolution,
        batched_backward=settings.batched_backward,
        kv_offload=settings.kv_offload,
        compile=settings.compile,
        channels_last=settings.channels_last,
    )
    log.info("loaded model %s on %s in %.1fs", model["model"], model["device"], time.monotonic() - t0)
    t1 = time.monotonic()
    warm_up(editor)
    log.info("warm-up edit done in %.1fs", time.monotonic() - t1)
    return editor, model


def cpu_threads(configured: int | None = None) -> int:
    """Intra-op threads for one worker process on a CPU: the setting, else OMP_NUM_THREADS, else
    the cores this process may use (its CPU affinity, capped by a cgroup CPU quota). torch's own
    default counts the host's cores, which oversubscribes a container limited to fewer: OpenMP
    threads then spin against each other (10x slower edits measured on 2 cores)."""
    if configured:
        return configured
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, quota) if quota else cores)


def _cgroup_cpu_quota(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """Whole CPUs allowed by a cgroup v2 quota ("max 100000" means none), rounded up."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def warm_up(editor: Any) -> None:
    """A tiny edit through the pipeline, so the first real job does not pay for lazy setup (CUDA
    context, kernels, allocator pools). On a GPU it includes the guidance backward pass; on a CPU
    it skips it (nothing to warm there, and it costs seconds on the demo model)."""
    from PIL import Image, ImageDraw

    import engine
    from diffeditor.tasks import MoveParams

    image = Image.new("RGB", (64, 64), (120, 140, 160))
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((20, 20, 40, 40), fill=255)
    on_gpu = getattr(getattr(editor, "device", None), "type", "cpu") == "cuda"
    params = MoveParams(offset=[8, 0], steps=4, max_resolution=64, seed=0, guidance_strength=0.5 if on_gpu else 0.0)
    editor.edit(engine.MoveRequest(image=image, mask=mask, params=params), progress=lambda *a: None)


__all__ = ["EditRunner", "EditWorker", "Heartbeat", "build_runtime", "run_worker", "warm_up"]
