"""Synthetic inputs for the engine tests: a gradient scene with a coloured box, and its mask."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def scene(w: int = 160, h: int = 120, box: tuple[int, int, int, int] = (40, 30, 90, 80), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 / w, y * 255 / h, np.full_like(x, 128)], -1).astype(np.float64)
    img += rng.normal(0, 8, img.shape)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = (220, 40, 40)
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def box_mask(w: int = 160, h: int = 120, box: tuple[int, int, int, int] = (40, 30, 90, 80)) -> Image.Image:
    m = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = 255
    return Image.fromarray(m)


def exif_rotated(shown: Image.Image, fmt: str = "JPEG") -> bytes:
    """`shown` stored rotated a quarter turn with EXIF orientation 6 (as a phone writes a portrait
    photo): a viewer that applies the tag shows `shown`; one that ignores it shows it lying down."""
    exif = Image.Exif()
    exif[0x0112] = 6  # the stored rows are the shown columns: rotate 90° clockwise to show
    buf = io.BytesIO()
    shown.transpose(Image.Transpose.ROTATE_90).save(buf, format=fmt, exif=exif.tobytes(), quality=95)
    return buf.getvalue()
