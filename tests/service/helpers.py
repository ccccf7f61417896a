"""Helpers for the API tests: images made in memory, multipart submissions, a finished job."""

from __future__ import annotations

import io
import json
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from redis import Redis
from rq.job import Job

from tests.processes import suite_redis_url

REDIS_URL = suite_redis_url(1)


def png(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (90, 120, 200), fmt: str = "PNG") -> bytes:
    img = Image.new("RGB", size, color)
    if min(size) >= 8:
        ImageDraw.Draw(img).rectangle((4, 4, size[0] // 2, size[1] // 2), fill=(250, 200, 40))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def mask_png(size: tuple[int, int] = (64, 48), box: tuple[int, int, int, int] | None = (10, 10, 30, 30)) -> bytes:
    img = Image.new("L", size, 0)
    if box is not None:
        ImageDraw.Draw(img).rectangle(box, fill=255)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def move_files() -> dict[str, bytes]:
    return {"image": png(), "mask": mask_png()}


def multipart(params: dict | str | None, files: dict[str, bytes]) -> dict[str, Any]:
    """Keyword arguments for TestClient.post: the params part (as JSON text) and the file parts."""
    data = {} if params is None else {"params": params if isinstance(params, str) else json.dumps(params)}
    return {"data": data, "files": {name: (f"{name}.png", body, "image/png") for name, body in files.items()}}


def submit(client: TestClient, params: dict | None = None, files: dict[str, bytes] | None = None, **kw: Any) -> Any:
    params = {"task": "move", "offset": [8, 0], "steps": 4} if params is None else params
    return client.post("/v1/edits", **multipart(params, move_files() if files is None else files), **kw)


def finish(redis: Redis, client: TestClient, job_id: str, size: tuple[int, int] = (40, 30)) -> bytes:
    """Play the worker's part: a result in the store and the job marked finished."""
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format="PNG")
    client.app.state.store.put_result(job_id, buf.getvalue(), {"seed": 7})
    redis.hset(Job.key_for(job_id), "status", "finished")
    return buf.getvalue()
