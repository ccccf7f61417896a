"""Idempotent submissions: (owner, Idempotency-Key) → (fingerprint of the request body, job id),
kept in Redis (key `keys.idempotency`, TTL job_ttl_s) so that every API replica agrees.

Same key and same body: the earlier job again; same key, other body: 409; a key claimed by a
request that has not enqueued its job yet: 409 for a short while, then the key is free again.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from service.errors import ApiError
from service.jobs import lifecycle
from service.jobs.context import JobContext
from service.jobs.lifecycle import JobView

MAX_KEY_CHARS = 255
IN_PROGRESS_S = 30


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable characters",
            "Idempotency-Key",
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
        return (time.time() if now is None else now) - self.created < IN_PROGRESS_S


def get_record(ctx: JobContext, owner: str, key: str) -> IdempotencyRecord | None:
    raw = ctx.redis.get(ctx.keys.idempotency(owner, key))
    if raw is None:
        return None
    data = json.loads(raw)
    return IdempotencyRecord(data["fingerprint"], data["job_id"], float(data["created"]))


def claim(ctx: JobContext, owner: str, key: str, record: IdempotencyRecord) -> bool:
    """Store the record unless one exists (SET NX); True when this request won the key."""
    value = json.dumps({"fingerprint": record.fingerprint, "job_id": record.job_id, "created": record.created})
    return bool(ctx.redis.set(ctx.keys.idempotency(owner, key), value, nx=True, ex=ctx.settings.job_ttl_s))


def release(ctx: JobContext, owner: str, key: str) -> None:
    ctx.redis.delete(ctx.keys.idempotency(owner, key))


def earlier_job(ctx: JobContext, owner: str, key: str, fingerprint: str) -> JobView | None:
    """The job submitted earlier with this key, or None when there is none (an expired job's record
    is released here). 409 when the body differs, or while the claiming request has not enqueued."""
    record = get_record(ctx, owner, key)
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise ApiError(
            409,
            "idempotency_conflict",
            "this Idempotency-Key was used with a different request body; use a new key for a new edit",
            "Idempotency-Key",
        )
    view = lifecycle.get_job(ctx, record.job_id)
    if view is None:
        if record.in_progress():  # claimed by a request that has not enqueued its job yet
            raise ApiError(
                409,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
                "Idempotency-Key",
            )
        release(ctx, owner, key)  # its job expired: start afresh
        return None
    return view
