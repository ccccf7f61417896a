"""Back-pressure and idempotency, kept in Redis so that several API replicas agree.

- per-key rate limit on submissions: a fixed one-minute window (INCR + EXPIRE, one round trip);
- per-key cap on queued jobs and a global queue-depth cap (counts from `service.jobs`);
- idempotency records: (owner, Idempotency-Key) → (fingerprint of the request body, job id).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis

from service import jobs
from service.errors import ApiError, error_response
from service.settings import Settings

RATE_WINDOW_S = 60
QUEUED_CAP_RETRY_AFTER_S = 10
QUEUE_FULL_RETRY_AFTER_S = 15
MAX_IDEMPOTENCY_KEY_CHARS = 255
IDEMPOTENCY_IN_PROGRESS_S = 30

clock = time.time  # module-level so that tests can pin the rate window


def _key(settings: Settings, *parts: str) -> str:
    return ":".join((settings.queue_name, "api", *parts))


def check_rate(redis: Redis, settings: Settings, owner: str, now: float | None = None) -> None:
    """Count one submission for `owner`; 429 with Retry-After once the window's budget is spent."""
    now = clock() if now is None else now
    window = int(now // RATE_WINDOW_S)
    key = _key(settings, "rate", owner, str(window))
    pipe = redis.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, RATE_WINDOW_S + 5)
    count = int(pipe.execute()[0])
    if count > settings.rate_limit_per_min:
        retry = max(1, int((window + 1) * RATE_WINDOW_S - now + 0.999))
        raise ApiError(
            429,
            "rate_limited",
            f"more than {settings.rate_limit_per_min} submissions a minute for this key; retry in {retry} s",
            None,
            {"Retry-After": str(retry)},
        )


def check_queue_caps(redis: Redis, settings: Settings, owner: str) -> None:
    """503 when the global queue is full (everyone should back off); 429 when this key has too many queued."""
    depth = jobs.queue_depth(redis, settings)
    if depth >= settings.max_queue_depth:
        raise ApiError(
            503,
            "queue_full",
            f"the queue is full ({depth} jobs waiting); retry later",
            None,
            {"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)},
        )
    queued = jobs.queued_count_for_owner(redis, settings, owner)
    if queued >= settings.max_queued_per_key:
        raise ApiError(
            429,
            "too_many_queued",
            f"this key already has {queued} queued jobs (limit {settings.max_queued_per_key}); "
            "wait for some to start or cancel them",
            None,
            {"Retry-After": str(QUEUED_CAP_RETRY_AFTER_S)},
        )


def fingerprint(params_text: str, files: dict[str, bytes]) -> str:
    """A digest of what was submitted: the params part as sent and each file part's bytes, by name."""
    h = hashlib.sha256()
    h.update(params_text.encode("utf-8"))
    for name in sorted(files):
        h.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


@dataclass(frozen=True)
class IdempotencyRecord:
    fingerprint: str
    job_id: str
    created: float  # epoch seconds; a record without its job yet is "in progress" for a short while

    def in_progress(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) - self.created < IDEMPOTENCY_IN_PROGRESS_S


def check_idempotency_key(key: str) -> None:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS or not key.isprintable():
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable characters",
            "Idempotency-Key",
        )


def _idem_key(settings: Settings, owner: str, key: str) -> str:
    # Hash the client's key: bounded Redis key length whatever it sent.
    return _key(settings, "idem", owner, hashlib.sha256(key.encode("utf-8")).hexdigest())


def get_idempotency(redis: Redis, settings: Settings, owner: str, key: str) -> IdempotencyRecord | None:
    raw = redis.get(_idem_key(settings, owner, key))
    if raw is None:
        return None
    data = json.loads(raw)
    return IdempotencyRecord(data["fingerprint"], data["job_id"], float(data["created"]))


def claim_idempotency(redis: Redis, settings: Settings, owner: str, key: str, record: IdempotencyRecord) -> bool:
    """Store the record unless one exists (SET NX); True when this request won the key."""
    value = json.dumps({"fingerprint": record.fingerprint, "job_id": record.job_id, "created": record.created})
    return bool(redis.set(_idem_key(settings, owner, key), value, nx=True, ex=settings.job_ttl_s))


def release_idempotency(redis: Redis, settings: Settings, owner: str, key: str) -> None:
    redis.delete(_idem_key(settings, owner, key))


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
