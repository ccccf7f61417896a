"""The input rules, one copy for every entry point: the CLI (`engine/cli.py`), the engine's
requests (`engine/requests.py`) and the API (`service/validation.py`), so that the same bytes are
the same pixels, and accepted or refused alike, whichever way they come in.

- the input names: every file a task takes (from `FILES_BY_TASK` in `diffeditor.tasks`), which
  image each mask belongs to;
- decoding: PNG, JPEG or WebP judged by content, the pixel count read from the header before any
  pixel is decoded, EXIF orientation applied (a mask drawn on the image *as shown* must match it,
  and points are in the pixels as shown);
- pixels: an image becomes RGB, 16-bit and float greyscale scaled by their maximum;
- masks: any nonzero channel is inside, fully transparent pixels are outside, palette images are
  read by colour;
- geometry: points inside the image; the object's box of a move or a paste, followed through the
  engine's transform (`engine/tasks/move.py`, `paste.py`), keeps some of it inside the frame.

Every rule raises `InputError` naming the field (the API's part or parameter name; the CLI's
option in snake_case) with a stable code: the API answers it in its error shape, the engine
raises it as `InvalidInput`. numpy and PIL only, no torch: the slim API process imports this.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from diffeditor.tasks import FILES_BY_TASK, MASK_OWNER, CommonParams

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
# Every input name any task takes (the API's file parts, the store's file names), in a fixed order.
INPUT_NAMES: tuple[str, ...] = tuple(
    dict.fromkeys(name for required, optional in FILES_BY_TASK.values() for name in (*required, *optional))
)
MASK_NAMES: tuple[str, ...] = tuple(MASK_OWNER)
ORIENTATION_TAG = 0x0112  # EXIF Orientation; 1 is "as stored"

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 (exclusive), in pixels


class InputError(ValueError):
    """An input breaks a rule: `field` names it, `code` is the API's stable error code, `message`
    states the rule (without the field, which `str()` puts in front)."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code
        self.message = message


# ------------------------------------------------------------------------------ file names


def check_known_names(names: Iterable[str]) -> None:
    """Every name is an input of some task (checked before the params are read, so an API client
    learns of a misnamed part first)."""
    for name in names:
        if name not in INPUT_NAMES:
            raise InputError(name, "unknown_field", "not an input any task takes")


def check_file_names(task: str, names: Iterable[str]) -> None:
    """The inputs given (`names`, those not None) are the task's: none it does not take, none missing."""
    required, optional = FILES_BY_TASK[task]
    given = list(names)
    check_known_names(given)
    for name in given:
        if name not in required and name not in optional:
            raise InputError(name, "unexpected_file", f"task {task!r} does not take this input")
    for name in required:
        if name not in given:
            raise InputError(name, "missing_file", f"task {task!r} requires this input")


# -------------------------------------------------------------------------------- decoding


def oriented(img: Image.Image) -> Image.Image:
    """The image as shown: its EXIF orientation applied (the tag is then dropped, so twice is once)."""
    if img.getexif().get(ORIENTATION_TAG, 1) in (2, 3, 4, 5, 6, 7, 8):
        return ImageOps.exif_transpose(img)
    return img


def _too_many_pixels(name: str, size: tuple[int, int] | None, limit: int | None) -> InputError:
    shown = f"{size[0]}x{size[1]}" if size else "the image"
    return InputError(name, "image_too_large", f"{shown} exceeds the limit of {limit or Image.MAX_IMAGE_PIXELS} pixels")


def open_image(
    name: str, data: bytes, *, max_bytes: int | None = None, max_pixels: int | None = None, min_side: int = 1
) -> Image.Image:
    """Decode an upload or a file: format by content, limits from the header before decoding, then
    the pixels with their EXIF orientation applied. Limits left None are not checked here (Pillow's
    own decompression-bomb check still is)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise InputError(name, "payload_too_large", f"larger than {max_bytes} bytes per upload")
    if not data:
        raise InputError(name, "invalid_image", "empty file")
    try:
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)  # reads the header only
    except UnidentifiedImageError:
        raise InputError(
            name, "unsupported_media_type", "not a PNG, JPEG or WebP image (judged by its content)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(name, None, max_pixels) from None
    except Exception as exc:  # a header Pillow recognises but cannot parse
        raise InputError(name, "invalid_image", f"cannot read the image header ({exc})") from None
    w, h = img.size
    if max_pixels is not None and w * h > max_pixels:  # before decoding a single pixel
        raise _too_many_pixels(name, (w, h), max_pixels)
    if min(w, h) < min_side:
        raise InputError(name, "image_too_small", f"{w}x{h} is smaller than {min_side} pixels on a side")
    try:
        img.load()
        return oriented(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(name, (w, h), max_pixels) from None
    except Exception as exc:  # truncated or corrupt data
        raise InputError(name, "invalid_image", f"the image data is corrupt ({exc})") from None


def to_rgb(name: str, img: Image.Image) -> Image.Image:
    """An image's pixels as RGB. 16-bit and float greyscale are scaled by their maximum (Pillow's
    own conversion clips them to 0..255, which turns most 16-bit images white)."""
    if img.mode == "RGB":
        return img
    try:
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(img, dtype=np.float64)
            top = float(arr.max()) or 1.0
            img = Image.fromarray((arr * (255.0 / top)).astype(np.uint8), "L")
        return img.convert("RGB")
    except Exception as exc:
        raise InputError(name, "invalid_image", f"unsupported pixel format {img.mode} ({exc})") from None


# ----------------------------------------------------------------------------------- masks


def mask_bits(img: Image.Image) -> np.ndarray:
    """A mask image as a bool (H, W) array: any nonzero channel is inside; fully transparent
    pixels are outside; a palette image is read by its colours, not its indices (§8.6)."""
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    arr = np.asarray(img)
    if arr.ndim == 3:
        if arr.shape[2] in (2, 4):  # alpha present
            arr = arr[..., :-1].max(axis=2) * (arr[..., -1] > 0)
        else:
            arr = arr.max(axis=2)
    return arr > 0


def read_mask(name: str, mask: Image.Image, owner: Image.Image) -> np.ndarray:
    """The mask's bits, after checking it has its image's size and is not empty."""
    owner_name = MASK_OWNER[name]
    if mask.size != owner.size:
        raise InputError(
            name,
            "mask_size_mismatch",
            f"{mask.size[0]}x{mask.size[1]} does not match {owner_name} {owner.size[0]}x{owner.size[1]} "
            "(after EXIF orientation)",
        )
    bits = mask_bits(mask)
    if not bits.any():
        raise InputError(name, "empty_mask", "the mask is empty (no nonzero pixel)")
    return bits


# -------------------------------------------------------------------------------- geometry


def bbox(bits: np.ndarray) -> Box:
    """The bounding box of a non-empty bool mask, exclusive on the right and the bottom."""
    ys, xs = np.nonzero(bits)
    return float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1


def _clip(box: Box, w: int, h: int) -> Box:
    x0, y0, x1, y1 = box
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def _shifted(box: Box, dx: float, dy: float) -> Box:
    x0, y0, x1, y1 = box
    return x0 + dx, y0 + dy, x1 + dx, y1 + dy


def _scaled(box: Box, r: float, w: int, h: int) -> Box:
    """The box scaled by r about the image centre (the move/paste resize, §8.1, §8.5)."""
    x0, y0, x1, y1 = box
    cx, cy = w / 2, h / 2
    return cx + (x0 - cx) * r, cy + (y0 - cy) * r, cx + (x1 - cx) * r, cy + (y1 - cy) * r


def _inside(box: Box) -> bool:
    """Some of a box clipped to the frame remains."""
    x0, y0, x1, y1 = box
    return x1 > x0 and y1 > y0


def check_points(points: Sequence[Sequence[float]], size: tuple[int, int]) -> None:
    """Every handle and target inside the image (pixel coordinates, 0 ≤ x < W, 0 ≤ y < H)."""
    w, h = size
    for k, (x1, y1, x2, y2) in enumerate(points):
        for x, y in ((x1, y1), (x2, y2)):
            if not (0 <= x < w and 0 <= y < h):
                raise InputError(f"points.{k}", "point_outside", f"({x:g}, {y:g}) is outside the {w}x{h} image")


def moved_box(obj: Box, offset: Sequence[float], r: float, size: tuple[int, int]) -> Box:
    """The object's box through move's transform (engine.tasks.move): shifted by the offset (what
    leaves the frame is gone), then scaled by r about the centre and cropped back to the frame."""
    w, h = size
    return _clip(_scaled(_clip(_shifted(obj, offset[0], offset[1]), w, h), r, w, h), w, h)


def pasted_box(obj: Box, offset: Sequence[float], r: float, ref_size: tuple[int, int], size: tuple[int, int]) -> Box:
    """The reference object's box through paste's transform (engine.tasks.paste): the reference
    resized to the base image's size, scaled by r about the centre and cropped back to the frame,
    then shifted by the offset."""
    w, h = size
    sx, sy = w / ref_size[0], h / ref_size[1]
    resized = (obj[0] * sx, obj[1] * sy, obj[2] * sx, obj[3] * sy)
    return _clip(_shifted(_clip(_scaled(resized, r, w, h), w, h), offset[0], offset[1]), w, h)


def offset_outside(task: str, offset: Sequence[float], size: tuple[int, int]) -> InputError:
    """The error of a move or paste offset that leaves none of the object in the frame (also
    raised by the engine's tasks when the object vanishes on the working grid)."""
    what = "moves the object" if task == "move" else "puts the pasted object"
    return InputError(
        "offset",
        "offset_outside",
        f"({offset[0]:g}, {offset[1]:g}) {what} wholly outside the {size[0]}x{size[1]} image",
    )


def check_move(offset: Sequence[float], r: float, mask: np.ndarray, size: tuple[int, int]) -> None:
    if not _inside(moved_box(bbox(mask), offset, r, size)):
        raise offset_outside("move", offset, size)


def check_paste(
    offset: Sequence[float], r: float, ref_mask: np.ndarray, ref_size: tuple[int, int], size: tuple[int, int]
) -> None:
    if not _inside(pasted_box(bbox(ref_mask), offset, r, ref_size, size)):
        raise offset_outside("paste", offset, size)


# ------------------------------------------------------------------------------ the whole edit


def check_edit(params: CommonParams, images: dict[str, Image.Image]) -> dict[str, np.ndarray]:
    """The rules that need the decoded inputs (`images`: name → image or mask, as shown, the task's
    names already checked): each mask of its image's size and not empty, in `MASK_NAMES` order,
    then the task's geometry. Returns the masks' bits."""
    masks = {name: read_mask(name, images[name], images[MASK_OWNER[name]]) for name in MASK_NAMES if name in images}
    size = images["image"].size
    task: str = params.task  # type: ignore[attr-defined]
    if task in ("drag", "landmark"):
        check_points(params.points, size)  # type: ignore[attr-defined]
    elif task == "move":
        check_move(params.offset, params.scale, masks["mask"], size)  # type: ignore[attr-defined]
    elif task == "paste":
        check_paste(params.offset, params.scale, masks["reference_mask"], images["reference"].size, size)  # type: ignore[attr-defined]
    return masks
