"""The result's media type from the client's Accept header, and the PNG re-encoded to it."""

from __future__ import annotations

import io

from PIL import Image

# Result media types we can produce, in order of preference when the client does not care.
RESULT_MEDIA = {"image/png": "PNG", "image/webp": "WEBP", "image/jpeg": "JPEG"}


def choose_media(accept: str | None) -> str | None:
    """The result media type for an Accept header (PNG when absent or indifferent); None: none acceptable."""
    if not accept or not accept.strip():
        return "image/png"
    best: dict[str, tuple[int, float]] = {}  # offered type → (specificity of the matching range, q)
    for part in accept.split(","):
        media, *params = part.strip().split(";")
        media = media.strip().lower()
        q = 1.0
        for p in params:
            k, _, v = p.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v.strip())
                except ValueError:
                    q = 0.0
        if media in RESULT_MEDIA:
            matches, spec = [media], 2
        elif media == "image/*":
            matches, spec = list(RESULT_MEDIA), 1
        elif media == "*/*":
            matches, spec = list(RESULT_MEDIA), 0
        else:
            continue
        for m in matches:
            if m not in best or spec > best[m][0]:
                best[m] = (spec, q)
    ranked = [(q, -i, m) for i, m in enumerate(RESULT_MEDIA) if m in best and (q := best[m][1]) > 0]
    return max(ranked)[2] if ranked else None


def file_extension(media: str) -> str:
    return RESULT_MEDIA[media].lower().replace("jpeg", "jpg")


def encode(png: bytes, media: str) -> bytes:
    """The stored PNG in `media` (one of RESULT_MEDIA): PNG as is, JPEG and WebP at quality 92."""
    if media == "image/png":
        return png
    img = Image.open(io.BytesIO(png))
    buf = io.BytesIO()
    if media == "image/jpeg":
        img.convert("RGB").save(buf, format="JPEG", quality=92)
    else:
        img.save(buf, format="WEBP", quality=92)
    return buf.getvalue()
