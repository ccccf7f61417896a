"""Validation of an edit submission before anything is queued: params, uploads, their geometry.

Every rule raises `ApiError` naming the field. Images are sniffed from their bytes (PNG, JPEG,
WebP only), their pixel count is checked from the header before the pixels are decoded, EXIF
orientation is applied, masks become binary, and everything is re-encoded as PNG so the worker
never decodes an untrusted format. No torch here: this runs in the slim API process.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import ValidationError

from diffeditor.tasks import FILES_BY_TASK, MASK_OWNER, CommonParams, field_suggestion, parse_params
from service.errors import ApiError, validation_error_to_api
from service.settings import Settings

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
FILE_NAMES = ("image", "mask", "region_mask", "reference", "reference_mask", "image_prompt")
MASK_NAMES = tuple(MASK_OWNER)
MAX_PARAMS_BYTES = 256 * 1024

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
    """The `params` part: a JSON object validated by the task's model, plus the server's step cap."""
    if text is None:
        raise ApiError(422, "missing_field", "params: the JSON `params` part is required", "params")
    if len(text.encode("utf-8")) > MAX_PARAMS_BYTES:
        raise ApiError(413, "payload_too_large", f"params: larger than {MAX_PARAMS_BYTES} bytes", "params")
    try:
        data = json.loads(text, parse_float=_finite_float, parse_constant=_reject_constant)
    except _NonFinite as exc:
        raise ApiError(422, "invalid_value", f"params: non-finite number {exc} is not allowed", "params") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError; so is an int too long
        raise ApiError(400, "invalid_json", f"params: not valid JSON ({exc})", "params") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_value", "params: must be a JSON object", "params")
    try:
        params = parse_params(data)
    except ValidationError as exc:
        raise _params_error(list(exc.errors()), data) from None
    if params.max_resolution is None and settings.default_resolution is not None:
        params = params.model_copy(update={"max_resolution": settings.default_resolution})
    if params.steps > settings.max_steps:
        raise ApiError(
            422, "invalid_value", f"steps: at most {settings.max_steps} on this server (got {params.steps})", "steps"
        )
    return params


def _open_image(name: str, data: bytes, settings: Settings) -> Image.Image:
    if len(data) > settings.max_upload_bytes:
        raise ApiError(
            413, "payload_too_large", f"{name}: larger than {settings.max_upload_bytes} bytes per upload", name
        )
    if not data:
        raise ApiError(400, "invalid_image", f"{name}: empty file", name)
    try:
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)  # reads the header only
    except UnidentifiedImageError:
        raise ApiError(
            415, "unsupported_media_type", f"{name}: not a PNG, JPEG or WebP image (judged by its content)", name
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(name, None, settings) from None
    except Exception as exc:  # a header Pillow recognises but cannot parse
        raise ApiError(400, "invalid_image", f"{name}: cannot read the image header ({exc})", name) from None
    w, h = img.size
    if w * h > settings.max_pixels:  # before decoding a single pixel
        raise _too_many_pixels(name, (w, h), settings)
    if min(w, h) < settings.min_side:
        raise ApiError(
            422, "image_too_small", f"{name}: {w}x{h} is smaller than {settings.min_side} pixels on a side", name
        )
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(name, (w, h), settings) from None
    except Exception as exc:  # truncated or corrupt data
        raise ApiError(400, "invalid_image", f"{name}: the image data is corrupt ({exc})", name) from None
    return img


def _too_many_pixels(name: str, size: tuple[int, int] | None, settings: Settings) -> ApiError:
    shown = f"{size[0]}x{size[1]}" if size else "the image"
    return ApiError(413, "image_too_large", f"{name}: {shown} exceeds the limit of {settings.max_pixels} pixels", name)


def mask_bits(img: Image.Image) -> np.ndarray:
    """Binary mask: any nonzero channel is inside; fully transparent pixels are outside (as the engine reads it)."""
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    arr = np.asarray(img)
    if arr.ndim == 3:
        if arr.shape[2] in (2, 4):
            arr = arr[..., :-1].max(axis=2) * (arr[..., -1] > 0)
        else:
            arr = arr.max(axis=2)
    return arr > 0


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # speed over size: these are short-lived
    return buf.getvalue()


def _to_rgb(name: str, img: Image.Image) -> Image.Image:
    try:
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(img, dtype=np.float64)
            top = float(arr.max()) or 1.0
            img = Image.fromarray((arr * (255.0 / top)).astype(np.uint8), "L")
        return img.convert("RGB")
    except Exception as exc:
        raise ApiError(400, "invalid_image", f"{name}: unsupported pixel format {img.mode} ({exc})", name) from None


def _bbox(bits: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(bits)
    return float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1


def _outside(box: tuple[float, float, float, float], w: int, h: int) -> bool:
    x0, y0, x1, y1 = box
    return x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h


def _check_points(params: CommonParams, size: tuple[int, int]) -> None:
    w, h = size
    for k, (x1, y1, x2, y2) in enumerate(params.points):  # type: ignore[attr-defined]
        for x, y in ((x1, y1), (x2, y2)):
            if not (0 <= x < w and 0 <= y < h):
                raise ApiError(
                    422,
                    "point_outside",
                    f"points.{k}: ({x:g}, {y:g}) is outside the {w}x{h} image",
                    f"points.{k}",
                )


def _check_move(params: CommonParams, mask: np.ndarray, size: tuple[int, int]) -> None:
    # Follow the object's box through the engine's transform (engine.tasks.move): shift by the
    # offset (what leaves the frame is gone), then scale by r about the image centre and
    # crop/pad back to the frame.
    w, h = size
    dx, dy = params.offset  # type: ignore[attr-defined]
    r = params.scale  # type: ignore[attr-defined]
    x0, y0, x1, y1 = _bbox(mask)
    sx0, sy0, sx1, sy1 = max(x0 + dx, 0), max(y0 + dy, 0), min(x1 + dx, w), min(y1 + dy, h)
    box = (w / 2 + (sx0 - w / 2) * r, h / 2 + (sy0 - h / 2) * r, w / 2 + (sx1 - w / 2) * r, h / 2 + (sy1 - h / 2) * r)
    if sx1 <= sx0 or sy1 <= sy0 or _outside(box, w, h):
        raise ApiError(
            422,
            "offset_outside",
            f"offset: ({dx:g}, {dy:g}) moves the object wholly outside the {w}x{h} image",
            "offset",
        )


def _check_paste(params: CommonParams, ref_mask: np.ndarray, ref_size: tuple[int, int], size: tuple[int, int]) -> None:
    # The engine resizes the reference to the base image's size, scales it by r about the centre
    # (crop or pad), then shifts it by the offset: follow the object's box through those steps.
    w, h = size
    rw, rh = ref_size
    dx, dy = params.offset  # type: ignore[attr-defined]
    r = params.scale  # type: ignore[attr-defined]
    x0, y0, x1, y1 = _bbox(ref_mask)
    sx, sy = w / rw, h / rh
    box = tuple(
        (v * s - c) * r + c + d
        for v, s, c, d in ((x0, sx, w / 2, dx), (y0, sy, h / 2, dy), (x1, sx, w / 2, dx), (y1, sy, h / 2, dy))
    )
    if abs(dx) >= w or abs(dy) >= h or _outside(box, w, h):  # type: ignore[arg-type]
        raise ApiError(
            422,
            "offset_outside",
            f"offset: ({dx:g}, {dy:g}) puts the pasted object wholly outside the {w}x{h} image",
            "offset",
        )


def validate_edit(params_text: str | None, uploads: dict[str, bytes], settings: Settings) -> ValidatedEdit:
    """Check a whole submission; returns the params and the inputs re-encoded as PNG."""
    for name in uploads:
        if name not in FILE_NAMES:
            raise ApiError(422, "unknown_field", f"{name}: not a part this API takes", name)
    params = parse_params_text(params_text, settings)
    task: str = params.task  # type: ignore[attr-defined]
    required, optional = FILES_BY_TASK[task]
    for name in uploads:
        if name not in required and name not in optional:
            raise ApiError(422, "unexpected_file", f"{name}: task {task!r} does not take this input", name)
    for name in required:
        if name not in uploads:
            raise ApiError(422, "missing_file", f"{name}: task {task!r} requires this file part", name)
    total = sum(len(b) for b in uploads.values())
    if total > settings.max_request_bytes:
        raise ApiError(413, "payload_too_large", f"uploads total {total} bytes, over {settings.max_request_bytes}")

    images: dict[str, Image.Image] = {}
    masks: dict[str, np.ndarray] = {}
    # Images before masks, so that a mask is compared with its image after both are decoded.
    for name in sorted(uploads, key=lambda n: n in MASK_NAMES):
        img = _open_image(name, uploads[name], settings)
        if name in MASK_NAMES:
            owner = images[MASK_OWNER[name]]
            if img.size != owner.size:
                raise ApiError(
                    422,
                    "mask_size_mismatch",
                    f"{name}: {img.size[0]}x{img.size[1]} does not match {MASK_OWNER[name]} "
                    f"{owner.size[0]}x{owner.size[1]} (after EXIF orientation)",
                    name,
                )
            bits = mask_bits(img)
            if not bits.any():
                raise ApiError(422, "empty_mask", f"{name}: the mask is empty (no nonzero pixel)", name)
            masks[name] = bits
        else:
            images[name] = _to_rgb(name, img)

    size = images["image"].size
    if task in ("drag", "landmark"):
        _check_points(params, size)
    elif task == "move":
        _check_move(params, masks["mask"], size)
    elif task == "paste":
        _check_paste(params, masks["reference_mask"], images["reference"].size, size)

    files = {name: _png(img) for name, img in images.items()}
    files.update({name: _png(Image.fromarray(bits.astype(np.uint8) * 255, "L")) for name, bits in masks.items()})
    sizes = {name: img.size for name, img in images.items()}
    return ValidatedEdit(params=params, files=files, sizes=sizes)
