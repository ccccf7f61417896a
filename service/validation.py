"""Validation of an edit submission before anything is queued: params, uploads, their geometry.

Every rule raises `ApiError` naming the field. The input rules (images sniffed from their bytes,
PNG, JPEG, WebP only, their pixel count checked from the header before the pixels are decoded,
EXIF orientation applied, masks made binary, points and offsets checked) are `diffeditor.inputs`',
the same the CLI and the engine apply; this module adds the params part, the server's limits and
the HTTP statuses. Everything is re-encoded as PNG so the worker never decodes an untrusted
format. No torch here: this runs in the slim API process.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from pydantic import ValidationError

from diffeditor.inputs import (
    INPUT_NAMES,
    MASK_NAMES,
    InputError,
    check_edit,
    check_file_names,
    check_known_names,
    open_image,
    to_rgb,
)
from diffeditor.job_options import JobOptions, split_options
from diffeditor.tasks import CommonParams, field_suggestion, parse_params
from service.errors import ApiError, validation_error_to_api
from service.oversized_params import MAX_PARAMS_BYTES, oversized_params
from service.settings import Settings
from service.webhooks import destinations

FILE_NAMES = INPUT_NAMES  # the file parts this API takes (routers/edits.py reads the multipart by them)

# Pillow warns (rather than raises) between MAX_IMAGE_PIXELS and twice that; we want an error we
# can answer with 413. The worker only ever opens PNGs this module wrote, so this is harmless there.
warnings.simplefilter("error", Image.DecompressionBombWarning)


def configure_pillow(settings: Settings) -> None:
    """Keep Pillow's own decompression-bomb check (a second line of defence, raised in Image.open)
    from refusing what our limit allows. Never lowered: it is process-wide, and our own check,
    made from the header before any decode, is the one that enforces settings.max_pixels."""
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < settings.max_pixels:
        Image.MAX_IMAGE_PIXELS = settings.max_pixels


@dataclass(frozen=True)
class ValidatedEdit:
    params: CommonParams
    options: JobOptions
    files: dict[str, bytes]  # name → PNG bytes, re-encoded
    sizes: dict[str, tuple[int, int]]


class _NonFinite(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


def _reject_constant(text: str) -> Any:
    raise _NonFinite(text)


def _params_error(errors: list[Any], data: dict) -> ApiError:
    """An unknown field is reported before anything else: a misspelt required field ("ofset") is
    otherwise reported only as the real one missing. With the closest known name when one is near."""
    unknown = [e for e in errors if e.get("type") == "extra_forbidden"]
    if not unknown:
        return validation_error_to_api(errors, prefix="params")
    name = str(unknown[0]["loc"][-1])
    task = str(data.get("task"))
    hint = field_suggestion(task, name)
    message = f"{name}: unknown parameter for {task} (its parameters: GET /v1/tasks)"
    if hint:
        message = f"{name}: unknown parameter for {task}; did you mean {hint!r}?"
    return ApiError(422, "unknown_field", message, name)


def parse_params_text(text: str | None, settings: Settings) -> CommonParams:
    """The `params` part's edit parameters (see parse_submission)."""
    return parse_submission(text, settings)[0]


def parse_submission(text: str | None, settings: Settings) -> tuple[CommonParams, JobOptions]:
    """The `params` part: a JSON object of the edit parameters, validated by the task's model with
    the server's step cap, and the job options (diffeditor.job_options) beside them."""
    if text is None:
        raise ApiError(422, "missing_field", "params: the JSON `params` part is required", "params")
    if len(text.encode("utf-8")) > MAX_PARAMS_BYTES:
        raise oversized_params(text)
    try:
        data = json.loads(text, parse_float=_finite_float, parse_constant=_reject_constant)
    except _NonFinite as exc:
        raise ApiError(422, "invalid_value", f"params: non-finite number {exc} is not allowed", "params") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError; so is an int too long
        raise ApiError(400, "invalid_json", f"params: not valid JSON ({exc})", "params") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_value", "params: must be a JSON object", "params")
    data, option_data = split_options(data)
    try:
        params = parse_params(data)
    except ValidationError as exc:
        raise _params_error(list(exc.errors()), data) from None
    options = parse_options(option_data, settings)
    if params.max_resolution is None and settings.default_resolution is not None:
        params = params.model_copy(update={"max_resolution": settings.default_resolution})
    if params.steps > settings.max_steps:
        raise ApiError(
            422, "invalid_value", f"steps: at most {settings.max_steps} on this server (got {params.steps})", "steps"
        )
    return params, options


def parse_options(data: dict[str, Any], settings: Settings) -> JobOptions:
    """The job options with the server's rules: the deadline cap (a job that sends none gets the cap
    as its deadline) and the webhook's destination."""
    try:
        options = JobOptions.model_validate(data)
    except ValidationError as exc:
        raise validation_error_to_api(list(exc.errors())) from None
    cap = settings.max_deadline_s
    if cap is not None:
        if options.deadline_s is not None and options.deadline_s > cap:
            raise ApiError(
                422,
                "invalid_value",
                f"deadline_s: at most {cap:g} on this server (got {options.deadline_s:g})",
                "deadline_s",
            )
        if options.deadline_s is None:
            options = options.model_copy(update={"deadline_s": cap})
    if options.webhook is not None:
        check_webhook(options.webhook, settings)
    return options


def check_webhook(url: str, settings: Settings) -> None:
    """A webhook URL this server will deliver to: webhooks enabled (a signing secret set), an
    http(s) URL whose host resolves to addresses the SSRF rule allows (service.webhooks.destinations)."""
    if not settings.webhook_secret:
        raise ApiError(
            422, "webhooks_disabled", "webhook: this server sends no webhooks (it has no signing secret)", "webhook"
        )
    try:
        destinations.check(url, settings.webhook_allow_private)
    except destinations.Refused as exc:
        raise ApiError(422, exc.code, f"webhook: {exc.message}", "webhook") from None


# The HTTP status of each input rule's code (diffeditor.inputs); any other code is a 422.
_STATUS_BY_CODE = {
    "payload_too_large": 413,
    "image_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_image": 400,
}


def _api_error(exc: InputError) -> ApiError:
    return ApiError(_STATUS_BY_CODE.get(exc.code, 422), exc.code, str(exc), exc.field)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # speed over size: these are short-lived
    return buf.getvalue()


def validate_edit(params_text: str | None, uploads: dict[str, bytes], settings: Settings) -> ValidatedEdit:
    """Check a whole submission; returns the params and the inputs re-encoded as PNG."""
    try:
        check_known_names(uploads)
        params, options = parse_submission(params_text, settings)
        check_file_names(params.task, uploads)  # type: ignore[attr-defined]
    except InputError as exc:
        raise _api_error(exc) from None
    total = sum(len(b) for b in uploads.values())
    if total > settings.max_request_bytes:
        raise ApiError(413, "payload_too_large", f"uploads total {total} bytes, over {settings.max_request_bytes}")
    try:
        decoded: dict[str, Image.Image] = {}
        # Images first: an image that cannot be decoded is reported before its mask.
        for name in sorted(uploads, key=lambda n: n in MASK_NAMES):
            data = uploads[name]
            img = open_image(
                name,
                data,
                max_bytes=settings.max_upload_bytes,
                max_pixels=settings.max_pixels,
                min_side=settings.min_side,
            )
            decoded[name] = img if name in MASK_NAMES else to_rgb(name, img)
        masks = check_edit(params, decoded)
    except InputError as exc:
        raise _api_error(exc) from None
    images = {name: img for name, img in decoded.items() if name not in MASK_NAMES}
    files = {name: _png(img) for name, img in images.items()}
    files.update({name: _png(Image.fromarray(bits.astype(np.uint8) * 255, "L")) for name, bits in masks.items()})
    sizes = {name: img.size for name, img in images.items()}
    return ValidatedEdit(params=params, options=options, files=files, sizes=sizes)
