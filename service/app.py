"""The FastAPI application: `create_app(settings, redis)` wires settings, Redis, the store, the
routers, error handlers, limits and metrics. Run it with `diffeditor serve` (or any ASGI server:
`uvicorn --factory service.app:create_app`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from redis import Redis
from starlette.concurrency import run_in_threadpool

from service.auth import warn_if_open
from service.errors import install_error_handlers
from service.jobs import watchdog
from service.jobs.context import connect
from service.limits import BodySizeLimit
from service.metrics import ApiMetrics, MetricsMiddleware
from service.routers import edits, events, health, meta, previews, samples
from service.routers.deps import app_job_context, current_settings
from service.settings import Settings
from service.store import make_store
from service.validation import configure_pillow
from service.webhooks.deliverer import Deliverer

log = logging.getLogger("diffeditor.api")

STATIC_DIR = Path(__file__).parent / "static"
# Swagger UI's and ReDoc's JS and CSS, served from the fastapi-offline wheel's copies (MIT; Swagger UI
# is Apache-2.0, ReDoc MIT) rather than FastAPI's default CDN, so /docs and /redoc work offline.
DOCS_ASSETS_URL = "/docs/assets"
# The docs pages may load nothing from other sites: ReDoc's sidebar logo (cdn.redoc.ly) is refused
# and hides itself. FastAPI's two pages start the UI from an inline script and the UIs set inline
# styles, hence 'unsafe-inline' on these two pages only (they show nothing but our own schema).
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
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
        docs_url=None,  # both pages come from _mount_docs, with local assets
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    settings = current_settings(app)
    if redis is None:
        redis = connect(settings, socket_timeout=API_SOCKET_TIMEOUT_S)
    app.state.redis = redis
    app.state.store = make_store(settings)
    configure_pillow(settings)
    warn_if_open(settings)

    install_error_handlers(app)
    app.state.metrics = ApiMetrics(lambda: app_job_context(app))
    # Added last = outermost: metrics also see the 413s the body limit answers itself.
    app.add_middleware(BodySizeLimit, limit_getter=lambda: current_settings(app).max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)

    app.include_router(edits.router)
    app.include_router(events.router)
    app.include_router(previews.router)
    app.include_router(meta.router)
    app.include_router(samples.router)
    app.include_router(health.router)
    _mount_docs(app)
    _mount_static(app)
    return app


async def sweep_once(app: FastAPI) -> int:
    """One watchdog pass (see service.jobs.watchdog); never raises: it runs unattended."""
    try:
        return await run_in_threadpool(watchdog.sweep_abandoned, app_job_context(app))
    except Exception as exc:
        log.warning("watchdog sweep failed: %s", exc)
        return 0


async def _watchdog(app: FastAPI) -> None:
    # Workers sweep too; the API does as well so that a job whose worker died is not left
    # `running` when no worker is left alive to notice.
    while True:
        await asyncio.sleep(current_settings(app).watchdog_s)
        await sweep_once(app)


def start_deliverer(app: FastAPI) -> Deliverer | None:
    """The webhook deliverer thread of this API process (service/webhooks), when the settings
    want one (webhook_deliverer) and webhooks are on (a webhook_secret); else None."""
    settings = current_settings(app)
    if not (settings.webhook_deliverer and settings.webhook_secret):
        return None
    deliverer = Deliverer(lambda: app_job_context(app), store=app.state.store)
    deliverer.start()
    return deliverer


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(_watchdog(app))
    deliverer = start_deliverer(app)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if deliverer is not None:
            await run_in_threadpool(deliverer.stop)


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc, their assets under DOCS_ASSETS_URL."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")

    def urls(request: Request) -> tuple[str, str]:
        root = request.scope.get("root_path", "")  # behind a proxy that strips a prefix
        return f"{root}{app.openapi_url}", f"{root}{DOCS_ASSETS_URL}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        openapi, assets = urls(request)
        page = get_swagger_ui_html(
            openapi_url=openapi,
            title=f"{app.title} API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            oauth2_redirect_url=None,  # API keys are bearer tokens: no OAuth2 flow to come back from
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        openapi, assets = urls(request)
        page = get_redoc_html(
            openapi_url=openapi,
            title=f"{app.title} API",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page


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
