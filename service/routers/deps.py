"""Request-scoped dependencies: settings, the job context (the app's Redis client with them), the result store.

They are `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool, and
a poll should cost one thread hop (for its Redis round trips), not one per dependency.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from service.errors import ApiError
from service.jobs import lifecycle
from service.jobs.context import JobContext
from service.jobs.ids import valid_job_id
from service.jobs.lifecycle import JobView
from service.schemas import ErrorOut
from service.settings import Settings, get_settings
from service.store import Store


def current_settings(app: FastAPI) -> Settings:
    """The app's settings: a test's `dependency_overrides[get_settings]` if set, else those given to
    `create_app`, else `get_settings()`. (Not kept in dependency_overrides ourselves: a non-empty
    overrides dict makes FastAPI rebuild every dependency's signature on every request.)"""
    override = app.dependency_overrides.get(get_settings)
    if override is not None:
        return override()
    fixed = getattr(app.state, "settings", None)
    return fixed if fixed is not None else get_settings()


async def app_settings(request: Request) -> Settings:
    return current_settings(request.app)


def app_job_context(app: FastAPI) -> JobContext:
    return JobContext(app.state.redis, current_settings(app))


async def job_context(request: Request) -> JobContext:
    return app_job_context(request.app)


async def get_store(request: Request) -> Store:
    return request.app.state.store


def not_found(job_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no job {job_id[:64]!r}: unknown, expired, or made with another key", "id")


def check_job_id(job_id: str) -> str:
    """An id that breaks the job-id rule cannot name a job (404, like any unknown id)."""
    if not valid_job_id(job_id):
        raise not_found(job_id)
    return job_id


def owned_job(ctx: JobContext, job_id: str, owner: str) -> JobView:
    """The caller's job; anything else (malformed, unknown, expired, another key's) is a 404."""
    check_job_id(job_id)
    view = lifecycle.get_job(ctx, job_id)
    if view is None or view.owner != owner:  # someone else's job is indistinguishable from none
        raise not_found(job_id)
    return view


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries in the common error shape."""
    return {s: {"model": ErrorOut} for s in statuses}
