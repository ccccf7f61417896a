"""Probes and metrics: `/healthz` (process alive), `/readyz` (Redis and a warm worker), `/metrics`."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from service.jobs import workers as worker_registry
from service.jobs.context import JobContext
from service.routers.deps import job_context
from service.schemas import HealthOut, ReadyOut

log = logging.getLogger("diffeditor.api")

router = APIRouter(tags=["health"])

NOT_READY_RETRY_AFTER_S = 5


@router.get("/healthz", response_model=HealthOut, summary="The process is alive")
async def healthz() -> dict:
    return {"status": "ok"}  # no I/O: liveness must not depend on Redis


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Ready to take edits: Redis reachable and at least one warm worker",
    responses={503: {"model": ReadyOut, "description": "Not ready; `missing` says what is lacking."}},
)
def readyz(ctx: JobContext = Depends(job_context)) -> Response:
    redis_ok, workers = False, []
    try:
        ctx.redis.ping()
        redis_ok = True
        workers = worker_registry.ready_workers(ctx)
    except RedisError as exc:
        log.warning("readyz: redis unavailable: %s", exc)
    missing = ([] if redis_ok else ["redis"]) + ([] if workers else ["worker"])
    demo = any(bool(w.get("is_demo")) for w in workers) if workers else None
    body: dict = {
        "ready": not missing,
        "redis": redis_ok,
        "workers": len(workers),
        "demo_model": demo,
        "missing": missing,
    }
    if demo:
        body["notice"] = (
            "workers run the demo model: a small model trained on a shapes world (flat-coloured shapes and "
            "cartoon faces); load SD1.5 for photographs"
        )
    if missing:
        reasons = {"redis": "Redis is unreachable", "worker": "no warm worker is registered"}
        # Also in the common error shape, for clients that only read that.
        body["error"] = {"code": "not_ready", "message": "; ".join(reasons[m] for m in missing), "field": None}
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(NOT_READY_RETRY_AFTER_S)})
    return JSONResponse(body)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
