"""Request checks that need only the images (before any model work), each naming its field."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

import engine
from diffeditor.tasks import AppearanceParams, DragParams, MoveParams, PasteParams, parse_params
from engine.preprocess import resize_mask
from tests.engine.images import box_mask, exif_rotated, scene


def test_missing_reference_is_named() -> None:
    with pytest.raises(engine.InvalidInput) as exc:
        engine.request_from_files(AppearanceParams(), {"image": scene(), "mask": box_mask()})
    assert exc.value.field == "reference"


def test_file_not_taken_by_the_task_is_named() -> None:
    with pytest.raises(engine.InvalidInput) as exc:
        engine.request_from_files(
            MoveParams(offset=[1, 1]), {"image": scene(), "mask": box_mask(), "reference": scene()}
        )
    assert exc.value.field == "reference"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (engine.MoveRequest(scene(), box_mask(80, 60), MoveParams(offset=[1, 1])), "mask"),
        (engine.MoveRequest(scene(), Image.new("L", (160, 120)), MoveParams(offset=[1, 1])), "mask"),
        (engine.MoveRequest(scene(), box_mask(), MoveParams(offset=[1, 1]), region_mask=Image.new("1", (160, 120))), "region_mask"),
        (engine.MoveRequest(scene(), box_mask(), MoveParams(offset=[-160, 0])), "offset"),
        (engine.AppearanceRequest(scene(), box_mask(), scene(200, 100), box_mask(), AppearanceParams()), "reference_mask"),
        (engine.PasteRequest(scene(), scene(), Image.new("L", (160, 120)), PasteParams()), "reference_mask"),
        (engine.PasteRequest(scene(), scene(), box_mask(), PasteParams(offset=[0, 200])), "offset"),
    ],
)  # fmt: skip
def test_image_rules(request_: object, field: str) -> None:
    with pytest.raises(engine.InvalidInput) as exc:
        request_.validate()  # type: ignore[attr-defined]
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"task": "paste", "scale": 0}, "scale"),
        ({"task": "paste", "scale": 1.6}, "scale"),
        ({"task": "move", "offset": [1, 1], "scale": -1}, "scale"),
        ({"task": "drag", "points": []}, "points"),
        ({"task": "drag", "points": [[1, 2, 3]]}, "points"),
        ({"task": "move", "offset": [1, 1], "steps": 0}, "steps"),
        ({"task": "move", "offset": [1, 1], "bogus": 1}, "bogus"),
        ({"task": "landmark", "points": [[1, 1, 2, 2]], "w_content": 1}, "w_content"),
        ({"task": "rotate"}, "task"),
    ],
)
def test_parameter_rules(params: dict, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_params(params)
    assert field in str(exc.value)


def test_an_exif_rotated_photo_is_read_as_shown() -> None:
    # A portrait photo stored lying down (128x96) with EXIF orientation 6, the mask drawn on it as
    # shown (96x128) and a point low in the shown frame: the API accepted it, the engine refused
    # "mask: size 96x128 does not match image size 128x96".
    shown = scene(96, 128, box=(20, 70, 60, 110))
    photo = Image.open(io.BytesIO(exif_rotated(shown)))
    assert photo.size == (128, 96)
    params = DragParams(points=[[40, 100, 40, 120]])
    request = engine.request_from_files(params, {"image": photo, "mask": box_mask(96, 128, (20, 70, 60, 110))})
    request.validate()
    assert request.image.size == (96, 128)
    box = np.asarray(request.image, np.float64)[75:105, 25:55]  # inside the red box as shown
    assert np.abs(box.mean(axis=(0, 1)) - (220, 40, 40)).max() < 10


def test_a_palette_mask_is_read_by_its_colours() -> None:
    # The inside drawn with palette index 0 = white, the outside with index 1 = black: the engine
    # read indices (inside ↔ outside swapped), the API colours.
    mask = Image.new("P", (160, 120), 1)
    mask.putpalette([255, 255, 255, 0, 0, 0])
    mask.paste(0, (40, 30, 90, 80))
    request = engine.MoveRequest(scene(), mask, MoveParams(offset=[1, 1]))
    request.validate()
    assert (resize_mask(request.mask, (160, 120)) == (np.asarray(box_mask()) > 0)).all()


def test_a_16_bit_image_is_scaled_by_its_maximum_as_the_api_does() -> None:
    # Pillow's own conversion clips 16-bit values to 255: every pixel of this one would be white.
    arr = (np.arange(160 * 120, dtype=np.uint16).reshape(120, 160) % 4096) * 8
    image = Image.frombytes("I;16", (160, 120), arr.tobytes())
    request = engine.LandmarkRequest(image, parse_params({"task": "landmark", "points": [[1, 1, 2, 2]]}))  # type: ignore[arg-type]
    assert request.image.mode == "RGB"
    grey = np.asarray(request.image)[..., 0]
    assert grey.min() == 0 and grey.max() == 255 and 100 < grey.mean() < 155
