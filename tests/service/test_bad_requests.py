"""A table of bad submissions: each gets its 4xx, its error code and (where one is at fault) the
field, in the common error shape, and nothing is queued."""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from redis import Redis

from service.jobs import lifecycle
from service.jobs.context import JobContext
from tests.service.helpers import mask_png, multipart, png

# Pillow's bomb warning is an error in the service (service.validation); pytest resets warning
# filters per test, so restate it here.
pytestmark = pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")

MOVE = {"task": "move", "offset": [8, 0], "steps": 4}
DRAG = {"task": "drag", "points": [[10, 10, 20, 12]], "steps": 4}
PASTE = {"task": "paste", "offset": [0, 0], "steps": 4}


def huge_png_header(width: int = 10_000, height: int = 10_000) -> bytes:
    """A PNG whose header claims width×height pixels (100 MP by default) in a few dozen bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(buf, format="GIF")
    return buf.getvalue()


def with_params(params: dict | str | None, **files: bytes) -> dict[str, Any]:
    base = {"image": png(), "mask": mask_png()} if not files.pop("no_defaults", b"") else {}
    base.update(files)
    return multipart(params, {k: v for k, v in base.items() if v})


def params_file(params: dict, **files: bytes) -> dict[str, Any]:
    """The params JSON sent as a file part (with a filename), as some clients do."""
    kw = multipart(None, {"image": png(), **files})
    kw["files"]["params"] = ("params.json", json.dumps(params).encode(), "application/json")
    return kw


def drop(name: str, params: dict) -> dict[str, Any]:
    kw = with_params(params)
    del kw["files"][name]
    return kw


@dataclass
class Case:
    id: str
    request: Callable[[], dict[str, Any]]
    status: int
    code: str
    field: str | None = None
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


CASES = [
    # --- the request itself
    Case("json body instead of multipart", lambda: {"json": MOVE}, 415, "unsupported_media_type"),
    Case("no body at all", lambda: {}, 415, "unsupported_media_type"),
    Case(
        "broken multipart framing",
        lambda: {"content": b"--xyz\r\nnot a part", "headers": {"content-type": "multipart/form-data; boundary=abc"}},
        400,
        "invalid_multipart",
    ),
    Case("missing params part", lambda: with_params(None), 422, "missing_field", "params"),
    Case("params not JSON", lambda: with_params("{task: move"), 400, "invalid_json", "params"),
    Case("params a JSON list", lambda: with_params("[1, 2]"), 422, "invalid_value", "params"),
    Case("NaN literal", lambda: with_params('{"task": "move", "offset": [NaN, 0]}'), 422, "invalid_value", "params"),
    Case(
        "Infinity literal",
        lambda: with_params('{"task": "move", "offset": [Infinity, 0]}'),
        422,
        "invalid_value",
        "params",
    ),
    Case(
        "overflowing float",
        lambda: with_params('{"task": "move", "offset": [1e999, 0]}'),
        422,
        "invalid_value",
        "params",
    ),
    Case(
        "params part twice",
        lambda: {**with_params(MOVE), "data": {"params": [json.dumps(MOVE)] * 2}},
        422,
        "duplicate_field",
        "params",
    ),
    Case("unknown multipart part", lambda: with_params(MOVE, extra=png()), 422, "unknown_field", "extra"),
    Case(
        "image sent as a text field",
        lambda: {"data": {"params": json.dumps(MOVE), "image": "not a file"}, "files": {"mask": ("m.png", mask_png())}},
        422,
        "invalid_value",
        "image",
    ),
    Case(
        "bad Idempotency-Key",
        lambda: with_params(MOVE),
        400,
        "invalid_idempotency_key",
        "Idempotency-Key",
        headers={"Idempotency-Key": "k" * 300},
    ),
    # --- params
    Case("missing task", lambda: with_params({"offset": [1, 1]}), 422, "missing_field", "task"),
    Case("unknown task", lambda: with_params({"task": "teleport"}), 422, "unknown_task", "task"),
    Case("unknown field", lambda: with_params({**MOVE, "strength": 3}), 422, "unknown_field", "strength"),
    Case(
        "misspelt required field",
        lambda: with_params({"task": "move", "ofset": [8, 0]}),
        422,
        "unknown_field",
        "ofset",
    ),
    Case("missing required param", lambda: with_params({"task": "move"}), 422, "missing_field", "offset"),
    Case("steps of the wrong type", lambda: with_params({**MOVE, "steps": "many"}), 422, "invalid_value", "steps"),
    Case("negative steps", lambda: with_params({**MOVE, "steps": -5}), 422, "invalid_value", "steps"),
    Case("steps above the model's range", lambda: with_params({**MOVE, "steps": 500}), 422, "invalid_value", "steps"),
    Case(
        "steps above the server cap",
        lambda: with_params({**MOVE, "steps": 30}),
        422,
        "invalid_value",
        "steps",
        settings={"max_steps": 20},
    ),
    Case("negative seed", lambda: with_params({**MOVE, "seed": -1}), 422, "invalid_value", "seed"),
    Case("scale zero", lambda: with_params({**MOVE, "scale": 0}), 422, "invalid_value", "scale"),
    Case(
        "max_resolution too large",
        lambda: with_params({**MOVE, "max_resolution": 4096}),
        422,
        "invalid_value",
        "max_resolution",
    ),
    Case(
        "offset of the wrong type",
        lambda: with_params({"task": "move", "offset": "left"}),
        422,
        "invalid_value",
        "offset",
    ),
    Case(
        "offset with three numbers",
        lambda: with_params({"task": "move", "offset": [1, 2, 3]}),
        422,
        "invalid_value",
        "offset",
    ),
    Case("huge prompt", lambda: with_params({**MOVE, "prompt": "a" * 5000}), 422, "invalid_value", "prompt"),
    # Past the params part's 256 KiB a prompt is still named (it was a 400 invalid_multipart, no field).
    Case(
        "prompt past the params part's size limit",
        lambda: with_params({**MOVE, "prompt": "a" * 300_000}),
        422,
        "invalid_value",
        "prompt",
    ),
    Case(
        "reference prompt past the limit, params sent as a file part",
        lambda: params_file({**PASTE, "reference_prompt": "é" * 200_000}, reference=png(), reference_mask=mask_png()),
        422,
        "invalid_value",
        "reference_prompt",
    ),
    Case(
        "params part past the limit in a list",
        lambda: with_params({**DRAG, "points": [[10, 10, 20, 12]] * 20_000}),
        413,
        "payload_too_large",
        "points",
    ),
    Case(
        "params part padded past the limit",
        lambda: with_params(json.dumps(MOVE) + " " * 300_000),
        413,
        "payload_too_large",
        "params",
    ),
    Case(
        "params part past what is read of it",
        lambda: with_params({**MOVE, "prompt": "a" * 1_100_000}),
        413,
        "payload_too_large",
        "params",
    ),
    Case(
        "control characters in prompt",
        lambda: with_params({**MOVE, "prompt": "a\x00b"}),
        422,
        "invalid_value",
        "prompt",
    ),
    Case(
        "point pair of three numbers",
        lambda: with_params({**DRAG, "points": [[1, 2, 3]]}),
        422,
        "invalid_value",
        "points.0",
    ),
    Case("no points", lambda: with_params({**DRAG, "points": []}), 422, "invalid_value", "points"),
    # --- files against the task
    Case("missing image", lambda: drop("image", MOVE), 422, "missing_file", "image"),
    Case("missing mask", lambda: drop("mask", MOVE), 422, "missing_file", "mask"),
    Case(
        "paste without reference",
        lambda: with_params(PASTE, no_defaults=b"1", image=png(), reference_mask=mask_png()),
        422,
        "missing_file",
        "reference",
    ),
    Case(
        "file part the task does not take",
        lambda: with_params({"task": "landmark", "points": [[5, 5, 9, 9]]}),
        422,
        "unexpected_file",
        "mask",
    ),
    # --- image content
    Case(
        "text file named .png",
        lambda: with_params(MOVE, image=b"hello, I am text\n" * 10),
        415,
        "unsupported_media_type",
        "image",
    ),
    Case("GIF image", lambda: with_params(MOVE, image=gif()), 415, "unsupported_media_type", "image"),
    Case("corrupt (truncated) PNG", lambda: with_params(MOVE, image=png()[:-60]), 400, "invalid_image", "image"),
    Case(
        "empty file",
        lambda: {**with_params(MOVE), "files": {"image": ("a.png", b""), "mask": ("m.png", mask_png())}},
        400,
        "invalid_image",
        "image",
    ),
    Case(
        "1x1 image",
        lambda: with_params(MOVE, image=png((1, 1)), mask=mask_png((1, 1), (0, 0, 0, 0))),
        422,
        "image_too_small",
        "image",
    ),
    Case("100-megapixel header", lambda: with_params(MOVE, image=huge_png_header()), 413, "image_too_large", "image"),
    Case(
        "over the configured pixel limit",
        lambda: with_params(MOVE, image=png((80, 80)), mask=mask_png((80, 80))),
        413,
        "image_too_large",
        "image",
        settings={"max_pixels": 70 * 70},
    ),
    Case(
        "oversized upload",
        lambda: with_params(MOVE, image=bytes(range(256)) * 40),
        413,
        "payload_too_large",
        "image",
        settings={"max_upload_bytes": 4096},
    ),
    Case(
        "oversized request",
        lambda: with_params(MOVE, image_prompt=b"\0" * 700_000),
        413,
        "payload_too_large",
        settings={"max_request_bytes": 100_000, "max_upload_bytes": 100_000},
    ),
    # --- masks and geometry
    Case("mask size mismatch", lambda: with_params(MOVE, mask=mask_png((48, 64))), 422, "mask_size_mismatch", "mask"),
    Case("empty mask", lambda: with_params(MOVE, mask=mask_png(box=None)), 422, "empty_mask", "mask"),
    Case(
        "region mask size mismatch",
        lambda: with_params(MOVE, region_mask=mask_png((32, 32))),
        422,
        "mask_size_mismatch",
        "region_mask",
    ),
    Case(
        "reference mask not matching the reference",
        lambda: with_params(
            {"task": "appearance", "steps": 4}, reference=png((40, 40)), reference_mask=mask_png((64, 48))
        ),
        422,
        "mask_size_mismatch",
        "reference_mask",
    ),
    Case(
        "drag point outside",
        lambda: with_params({**DRAG, "points": [[10, 10, 64, 12]]}),
        422,
        "point_outside",
        "points.0",
    ),
    Case(
        "landmark point negative",
        lambda: with_params(
            {"task": "landmark", "points": [[5, 5, 9, 9], [-1, 5, 9, 9]]}, no_defaults=b"1", image=png()
        ),
        422,
        "point_outside",
        "points.1",
    ),
    Case(
        "move offset wholly outside", lambda: with_params({**MOVE, "offset": [58, 0]}), 422, "offset_outside", "offset"
    ),
    Case(
        "move resize pushes the object out",
        lambda: with_params({**MOVE, "offset": [40, 0], "scale": 3}),
        422,
        "offset_outside",
        "offset",
    ),
    Case(
        "paste offset wholly outside",
        lambda: with_params(
            {**PASTE, "offset": [0, -45]}, no_defaults=b"1", image=png(), reference=png(), reference_mask=mask_png()
        ),
        422,
        "offset_outside",
        "offset",
    ),
]


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request(case: Case, make_client: Callable[..., TestClient], redis: Redis, settings: Any) -> None:
    client = make_client(**case.settings)
    kwargs = case.request()
    kwargs["headers"] = {**kwargs.get("headers", {}), **case.headers}
    r = client.post("/v1/edits", **kwargs)
    assert r.status_code == case.status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == case.code, body
    assert body["error"]["field"] == case.field, body
    assert body["error"]["message"]
    assert lifecycle.queue_depth(JobContext(redis, settings)) == 0  # nothing was queued


def test_a_misspelt_field_is_named_with_the_closest_known_one(client: TestClient) -> None:
    # A misspelt required field is reported as what it is, not as the real one missing.
    body = client.post("/v1/edits", **with_params({"task": "move", "ofset": [8, 0]})).json()
    assert body["error"]["message"] == "ofset: unknown parameter for move; did you mean 'offset'?"
    far = client.post("/v1/edits", **with_params({**MOVE, "zzz": 1})).json()
    assert far["error"]["message"] == "zzz: unknown parameter for move (its parameters: GET /v1/tasks)"
