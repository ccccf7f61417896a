"""Request-scoped dependencies: settings, the app's Redis client and result store.

They are `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool, and
a poll should cost one thread hop (for its Redis round trips), not one per dependency.
"""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from redis import Redis

from service.errors import ApiError
from service.settings import Settings, get_settings
from service.store import Store

JOB_ID_RE = re.compile(r"[0-9a-f]{32}")


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


async def get_redis(request: Request) -> Redis:
    return request.app.state.redis


async def get_store(request: Request) -> Store:
    return request.app.state.store


def not_found(job_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no job {job_id[:64]!r}: unknown, expired, or made with another key", "id")


def check_job_id(job_id: str) -> str:
    """Ids are 32 lowercase hex characters; anything else cannot name a job (404, like any unknown id)."""
    if not JOB_ID_RE.fullmatch(job_id):
        raise not_found(job_id)
    return job_id
