"""Differential test of the input rules: for the same bytes, the API's validation
(`service.validation.validate_edit`) and the engine's request builder (`engine.request_from_files`
on the images as PIL opens them, then `validate()`) accept the same submissions, name the same
field when they refuse one, and, when they accept, see the same pixels and the same mask bits.

The server's own limits (bytes, pixel count, minimum side, step cap) are the API's alone and are
kept out of reach here: what is compared is the rules both sides apply."""

from __future__ import annotations

import io
import json

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

import engine
from diffeditor.inputs import mask_bits
from diffeditor.tasks import FILES_BY_TASK, MASK_OWNER, TASKS, parse_params
from service.errors import ApiError
from service.settings import Settings
from service.validation import validate_edit

SETTINGS = Settings(redis_url="redis://127.0.0.1:1/0", min_side=16)  # never connected to

IMAGE_MODES = ("RGB", "RGBA", "L", "LA", "P", "I;16", "1")
MASK_MODES = ("L", "1", "P", "RGBA", "LA")
QUARTER_TURNS = (5, 6, 7, 8)  # EXIF orientations that swap width and height

sides = st.integers(16, 40)
coords = st.floats(-8, 48, allow_nan=False)
Size = tuple[int, int]


def _encode(img: Image.Image, orientation: int, fmt: str) -> bytes:
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format=fmt, exif=exif.tobytes())
    return buf.getvalue()


def _stored_size(shown: Size, orientation: int) -> Size:
    return (shown[1], shown[0]) if orientation in QUARTER_TURNS else shown


@st.composite
def images(draw: st.DrawFn, shown: Size) -> bytes:
    """An image that shows at `shown`: some mode, PNG or (RGB, L) JPEG, some EXIF orientation."""
    mode = draw(st.sampled_from(IMAGE_MODES))
    orientation = draw(st.integers(1, 8))
    size = _stored_size(shown, orientation)
    if mode == "I;16":
        img = Image.new("I;16", size, draw(st.integers(0, 65535)))
        img.paste(draw(st.integers(0, 65535)), (2, 2, size[0] // 2, size[1] // 2))
    else:
        img = Image.new(mode, size)
        colour = draw(st.integers(0, 255))
        ImageDraw.Draw(img).rectangle((2, 2, size[0] // 2, size[1] // 2), fill=colour)
    fmt = draw(st.sampled_from(("PNG", "JPEG"))) if mode in ("RGB", "L") else "PNG"
    return _encode(img, orientation, fmt)


@st.composite
def masks(draw: st.DrawFn, shown: Size) -> bytes:
    """A mask drawn as shown at `shown` (now and then a pixel off, or empty) in one of the modes a
    browser or an editor writes, with some EXIF orientation."""
    if draw(st.integers(0, 9)) == 0:
        shown = (shown[0] + 1, shown[1])
    orientation = draw(st.integers(1, 8))
    w, h = _stored_size(shown, orientation)
    mode = draw(st.sampled_from(MASK_MODES))
    on: int | tuple[int, ...]
    off: int | tuple[int, ...]
    if mode == "P":  # which index is white: the rules read colours, not indices
        on, off = (1, 0) if draw(st.booleans()) else (0, 1)
    elif mode == "RGBA":  # a transparent but coloured pixel is outside
        on, off = (255, 0, 0, 255), draw(st.sampled_from([(0, 0, 0, 0), (255, 255, 255, 0)]))
    elif mode == "LA":
        on, off = (255, 255), draw(st.sampled_from([(0, 0), (200, 0)]))
    else:
        on, off = 255, 0
    img = Image.new(mode, (w, h), off)
    if mode == "P":
        img.putpalette([0, 0, 0, 255, 255, 255] if on == 1 else [255, 255, 255, 0, 0, 0])
    if not (draw(st.booleans()) and draw(st.booleans())):  # an empty mask now and then
        x0, y0 = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))
        box = (x0, y0, draw(st.integers(x0, w - 1)), draw(st.integers(y0, h - 1)))
        ImageDraw.Draw(img).rectangle(box, fill=on)
    return _encode(img, orientation, "PNG")


@st.composite
def submissions(draw: st.DrawFn) -> tuple[str, dict[str, bytes]]:
    task = draw(st.sampled_from(TASKS))
    shown = {"image": (draw(sides), draw(sides)), "reference": (draw(sides), draw(sides))}
    params: dict = {"task": task, "steps": 4}
    if task in ("move", "paste"):
        params["offset"] = [draw(coords), draw(coords)]
        params["scale"] = draw(st.floats(0.05, 1.5))
    if task in ("drag", "landmark"):
        params["points"] = draw(st.lists(st.lists(coords, min_size=4, max_size=4), min_size=1, max_size=3))
    required, optional = FILES_BY_TASK[task]
    files: dict[str, bytes] = {}
    for name in (*required, *draw(st.lists(st.sampled_from(optional), unique=True))):
        if name in MASK_OWNER:
            files[name] = draw(masks(shown[MASK_OWNER[name]]))
        else:
            files[name] = draw(images(shown.get(name, shown["reference"])))
    return json.dumps(params), files


def _api(params_text: str, files: dict[str, bytes]) -> tuple[str | None, dict[str, np.ndarray]]:
    try:
        edit = validate_edit(params_text, files, SETTINGS)
    except ApiError as exc:
        assert 400 <= exc.status < 500
        return exc.field, {}
    return None, {name: np.asarray(Image.open(io.BytesIO(png))) for name, png in edit.files.items()}


def _engine(params_text: str, files: dict[str, bytes]) -> tuple[str | None, dict[str, np.ndarray]]:
    params = parse_params(json.loads(params_text))
    try:
        request = engine.request_from_files(params, {n: Image.open(io.BytesIO(b)) for n, b in files.items()})
        request.validate()
    except engine.InvalidInput as exc:
        return exc.field, {}
    seen = request.files()
    return None, {
        name: (mask_bits(img).astype(np.uint8) * 255 if name in MASK_OWNER else np.asarray(img))
        for name, img in seen.items()
    }


@settings(max_examples=80, deadline=None)
@given(submissions())
def test_the_api_and_the_engine_agree(submission: tuple[str, dict[str, bytes]]) -> None:
    params_text, files = submission
    api_field, api_pixels = _api(params_text, files)
    engine_field, engine_pixels = _engine(params_text, files)
    event(f"refused: {api_field.split('.')[0]}" if api_field else "accepted")
    assert api_field == engine_field
    assert api_pixels.keys() == engine_pixels.keys()
    for name, pixels in api_pixels.items():
        assert pixels.shape == engine_pixels[name].shape and (pixels == engine_pixels[name]).all(), name
