"""Back-pressure, kept in Redis so that several API replicas agree, and the request body cap.

- per-key rate limit on submissions: a fixed one-minute window (INCR + EXPIRE, one round trip,
  key `keys.rate`);
- per-key cap on queued jobs and a global queue-depth cap (counts from `service.jobs`);
- `BodySizeLimit`, the ASGI middleware that caps a request body's bytes.
(Idempotency records are `service.idempotency`.)
"""

from __future__ import annotations

import time
from typing import Any

from service.errors import ApiError, error_response
from service.jobs import lifecycle, quotas
from service.jobs.context import JobContext

RATE_WINDOW_S = 60
QUEUED_CAP_RETRY_AFTER_S = 10
QUEUE_FULL_RETRY_AFTER_S = 15

clock = time.time  # module-level so that tests can pin the rate window


def check_rate(ctx: JobContext, owner: str, now: float | None = None) -> None:
    """Count one submission for `owner`; 429 with Retry-After once the window's budget is spent."""
    now = clock() if now is None else now
    window = int(now // RATE_WINDOW_S)
    key = ctx.keys.rate(owner, window)
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, RATE_WINDOW_S + 5)
    count = int(pipe.execute()[0])
    limit = ctx.settings.rate_limit_per_min
    if count > limit:
        retry = max(1, int((window + 1) * RATE_WINDOW_S - now + 0.999))
        raise ApiError(
            429,
            "rate_limited",
            f"more than {limit} submissions a minute for this key; retry in {retry} s",
            None,
            {"Retry-After": str(retry)},
        )


def check_queue_caps(ctx: JobContext, owner: str) -> None:
    """503 when the global queue is full (everyone should back off); 429 when this key has too many queued."""
    settings = ctx.settings
    depth = lifecycle.queue_depth(ctx)
    if depth >= settings.max_queue_depth:
        raise ApiError(
            503,
            "queue_full",
            f"the queue is full ({depth} jobs waiting); retry later",
            None,
            {"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)},
        )
    queued = quotas.queued_count_for_owner(ctx, owner)
    if queued >= settings.max_queued_per_key:
        raise ApiError(
            429,
            "too_many_queued",
            f"this key already has {queued} queued jobs (limit {settings.max_queued_per_key}); "
            "wait for some to start or cancel them",
            None,
            {"Retry-After": str(QUEUED_CAP_RETRY_AFTER_S)},
        )


class BodySizeLimit:
    """Caps a request body: refuses a too-large Content-Length up front and counts the bytes
    actually received (a client can lie or stream chunked), so nothing huge is ever spooled."""

    # Multipart framing and the params part ride on top of the uploads themselves.
    SLACK_BYTES = 512 * 1024

    def __init__(self, app: Any, limit_getter: Any) -> None:
        self.app = app
        self.limit_getter = limit_getter  # → max request bytes (read per request: tests override settings)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = int(self.limit_getter()) + self.SLACK_BYTES
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    response = error_response(
                        413,
                        "payload_too_large",
                        f"request body of {declared} bytes is over the limit of {limit - self.SLACK_BYTES}",
                    )
                    await response(scope, receive, send)
                    return
        seen = 0

        async def counting_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise ApiError(
                        413, "payload_too_large", f"request body is over the limit of {limit - self.SLACK_BYTES} bytes"
                    )
            return message

        await self.app(scope, counting_receive, send)
