"""One error shape for every failure: `{"error": {"code", "message", "field"}}`.

Handlers here turn our own `ApiError`, FastAPI's request validation errors, Starlette's HTTP
errors (404 route, 405 method), Redis outages and anything unexpected into that shape, so a
client never sees a traceback or a framework-specific body.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("diffeditor.api")

REDIS_RETRY_AFTER_S = 5

# Codes for framework-raised HTTP errors, by status.
_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    """An answer to the client: HTTP status, stable code, a message a person can act on, the field."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, field), status_code=status, headers=headers)


def loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """Pydantic error location to a dotted field name ("points.2.1"); request-part prefixes dropped.

    A discriminated union adds the task name as a location step ("move", "offset"): drop it too.
    """
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    from diffeditor.tasks import TASKS

    if parts and parts[0] in TASKS:
        parts = parts[1:]
    return ".".join(parts) or None


def validation_error_to_api(errors: list[Any], prefix: str | None = None) -> ApiError:
    """The first pydantic error, as a 422 naming its field (prefixed for params sent as one part)."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid input", "type": "value_error"}
    field = loc_to_field(first.get("loc", ()))
    if prefix and field is None:
        field = prefix
    kind = first.get("type", "")
    msg = str(first.get("msg", "invalid value"))
    code = "unknown_field" if kind == "extra_forbidden" else "invalid_value"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        code, field = "unknown_task" if kind == "union_tag_invalid" else "missing_field", "task"
    elif kind == "missing":
        code = "missing_field"
    message = f"{field}: {msg}" if field else msg
    return ApiError(422, code, message, field)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


async def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    err = validation_error_to_api(list(exc.errors()))
    return error_response(err.status, err.code, err.message, err.field)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_BY_STATUS.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = "no such resource"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed here"
    return error_response(exc.status_code, code, message, None, dict(exc.headers or {}))


async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("redis unavailable: %s", exc)
    return error_response(
        503,
        "redis_unavailable",
        "the job queue is unavailable; retry shortly",
        None,
        {"Retry-After": str(REDIS_RETRY_AFTER_S)},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RedisConnectionError, _redis_down)
    app.add_exception_handler(RedisTimeoutError, _redis_down)
    app.add_exception_handler(Exception, _unexpected)
