"""A running job's latest step preview: a small JPEG of the sampler's x̂0 (engine/previews.py), kept
under `keys.preview(job_id)` as a hash {image, step, total} (TTL job_ttl_s), written by the worker
every `preview_every` sampling steps (beside a `preview` event, service/jobs/events.py) and read
by `GET /v1/edits/{id}/preview`. Each write replaces the last: only the latest is kept.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from service.jobs.context import JobContext

MEDIA_TYPE = "image/jpeg"


@dataclass(frozen=True)
class Preview:
    jpeg: bytes
    step: int
    total: int


def put(ctx: JobContext, job_id: str, preview: Preview) -> None:
    """Replace the job's latest preview (one transaction: never an image with another step's number)."""
    key = ctx.keys.preview(job_id)
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.hset(key, mapping={"image": preview.jpeg, "step": preview.step, "total": preview.total})
    pipe.expire(key, ctx.settings.job_ttl_s)
    pipe.execute()


def latest(ctx: JobContext, job_id: str) -> Preview | None:
    """The job's latest preview, or None when it has none (not started, previews off, or expired)."""
    fields = ctx.redis.hgetall(ctx.keys.preview(job_id))
    get = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
    if "image" not in get:
        return None
    return Preview(jpeg=bytes(get["image"]), step=int(get.get("step", 0)), total=int(get.get("total", 0)))


def data_url(jpeg: bytes) -> str:
    """The JPEG as a data: URL, the `image` of a `preview` event."""
    return f"data:{MEDIA_TYPE};base64," + base64.b64encode(jpeg).decode("ascii")
