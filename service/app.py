"""The FastAPI application: `create_app(settings, redis)` wires settings, Redis, the store, the
routers, error handlers, limits and metrics. Run it with `diffeditor serve` (or any ASGI server:
`uvicorn --factory service.app:create_app`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from redis import Redis
from starlette.concurrency import run_in_threadpool

from service import jobs
from service.auth import warn_if_open
from service.errors import install_error_handlers
from service.limits import BodySizeLimit
from service.metrics import ApiMetrics, MetricsMiddleware
from service.routers import edits, health, meta, samples
from service.routers.deps import current_settings
from service.settings import Settings
from service.store import make_store
from service.validation import configure_pillow

log = logging.getLogger("diffeditor.api")

STATIC_DIR = Path(__file__).parent / "static"
API_SOCKET_TIMEOUT_S = 5.0  # a hung Redis answers 503 after this, not never

DESCRIPTION = """Fine-grained image editing with DiffEditor on Stable Diffusion 1.5: move, drag,
landmark, appearance and paste edits, run asynchronously by GPU workers.

Submit with `POST /v1/edits` (multipart: a `params` JSON part and image parts), poll
`GET /v1/edits/{id}`, fetch `GET /v1/edits/{id}/result`. Parameter schemas per task:
`GET /v1/tasks`; sample scenes ready to submit: `GET /v1/samples`. Every error is
`{"error": {"code", "message", "field"}}`."""


def create_app(settings: Settings | None = None, redis: Redis | None = None) -> FastAPI:
    """Build the API. `settings` default to the environment's; `redis` to a client for
    settings.redis_url (embedded mode passes an in-process one)."""
    app = FastAPI(
        lifespan=_lifespan,
        title="diffeditor",
        version=meta.version(),
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    settings = current_settings(app)
    if redis is None:
        redis = jobs.connect(settings, socket_timeout=API_SOCKET_TIMEOUT_S)
    app.state.redis = redis
    app.state.store = make_store(settings)
    configure_pillow(settings)
    warn_if_open(settings)

    install_error_handlers(app)
    app.state.metrics = ApiMetrics(lambda: (app.state.redis, current_settings(app)))
    # Added last = outermost: metrics also see the 413s the body limit answers itself.
    app.add_middleware(BodySizeLimit, limit_getter=lambda: current_settings(app).max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)

    app.include_router(edits.router)
    app.include_router(meta.router)
    app.include_router(samples.router)
    app.include_router(health.router)
    _mount_static(app)
    return app


async def sweep_once(app: FastAPI) -> int:
    """One watchdog pass (see service.jobs.sweep_abandoned); never raises: it runs unattended."""
    try:
        return await run_in_threadpool(jobs.sweep_abandoned, app.state.redis, current_settings(app))
    except Exception as exc:
        log.warning("watchdog sweep failed: %s", exc)
        return 0


async def _watchdog(app: FastAPI) -> None:
    # Workers sweep too; the API does as well so that a job whose worker died is not left
    # `running` when no worker is left alive to notice.
    while True:
        await asyncio.sleep(current_settings(app).watchdog_s)
        await sweep_once(app)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(_watchdog(app))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _mount_static(app: FastAPI) -> None:
    """The web editor, when its files are present: `/` is its page, `/static/...` the rest."""
    index = STATIC_DIR / "index.html"
    if not STATIC_DIR.is_dir():
        return
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if index.is_file():

        @app.get("/", include_in_schema=False)
        async def editor_page() -> FileResponse:
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
