"""`/v1/tasks` and `/v1/info`: what a client (the web page) needs before it submits anything."""

from __future__ import annotations

import copy
import inspect
import logging
from functools import lru_cache
from importlib import metadata

from fastapi import APIRouter, Depends
from redis.exceptions import RedisError

from diffeditor.tasks import FILES_BY_TASK, PARAMS_BY_TASK, TASKS
from service.jobs import workers as worker_registry
from service.jobs.context import JobContext
from service.routers.deps import job_context
from service.schemas import InfoOut, LimitsOut, TasksOut
from service.settings import Settings

log = logging.getLogger("diffeditor.api")

router = APIRouter(prefix="/v1", tags=["meta"])


def version() -> str:
    try:
        return metadata.version("diffeditor")
    except metadata.PackageNotFoundError:
        return "0.0.0"


@lru_cache
def _tasks() -> dict:
    # Schemas come straight from diffeditor.tasks: one source of names, defaults and ranges.
    return {
        "tasks": [
            {
                "name": name,
                "description": inspect.cleandoc(PARAMS_BY_TASK[name].__doc__ or ""),
                "files": {"required": list(FILES_BY_TASK[name][0]), "optional": list(FILES_BY_TASK[name][1])},
                "params_schema": PARAMS_BY_TASK[name].model_json_schema(),
            }
            for name in TASKS
        ]
    }


def _with_default_resolution(tasks: dict, resolution: int | None) -> dict:
    if resolution is None:
        return tasks
    out = copy.deepcopy(tasks)
    for task in out["tasks"]:
        task["params_schema"]["properties"]["max_resolution"]["default"] = resolution
    return out


def _ready_workers(ctx: JobContext) -> list[dict]:
    try:
        return worker_registry.ready_workers(ctx)
    except RedisError as exc:  # static facts stay useful while Redis is away
        log.warning("info: cannot read workers: %s", exc)
        return []


def default_resolution(settings: Settings, workers: list[dict]) -> int | None:
    """The working size an edit without `max_resolution` gets: the server's setting (filled in at
    submit), else the smallest default of the ready workers (any of them may take the job)."""
    if settings.default_resolution is not None:
        return settings.default_resolution
    values = [int(w["default_resolution"]) for w in workers if w.get("default_resolution")]
    return min(values) if values else None


@router.get("/tasks", response_model=TasksOut, summary="Each task's parameter schema and file inputs")
def list_tasks(ctx: JobContext = Depends(job_context)) -> dict:
    """For each task: the JSON schema of its `params` (defaults, ranges, descriptions) and which
    file parts it requires or accepts. The default of `max_resolution` is this server's (as in
    /v1/info) once a worker is ready. The server may cap `steps` lower: see /v1/info."""
    return _with_default_resolution(_tasks(), default_resolution(ctx.settings, _ready_workers(ctx)))


@router.get("/info", response_model=InfoOut, summary="Server facts a client adapts to")
def info(ctx: JobContext = Depends(job_context)) -> dict:
    settings = ctx.settings
    workers = _ready_workers(ctx)
    demo = any(bool(w.get("is_demo")) for w in workers) if workers else settings.model is None
    return {
        "version": version(),
        "demo_model": demo,
        "auth_required": bool(settings.key_hashes()),
        "default_resolution": default_resolution(settings, workers),
        "limits": LimitsOut(
            max_upload_bytes=settings.max_upload_bytes,
            max_request_bytes=settings.max_request_bytes,
            max_pixels=settings.max_pixels,
            min_side=settings.min_side,
            max_steps=settings.max_steps,
            rate_limit_per_min=settings.rate_limit_per_min,
            max_queued_per_key=settings.max_queued_per_key,
            max_queue_depth=settings.max_queue_depth,
            job_ttl_s=settings.job_ttl_s,
        ).model_dump(),
    }
