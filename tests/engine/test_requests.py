"""Request checks that need only the images (before any model work), each naming its field."""

from __future__ import annotations

import pytest
from PIL import Image
from pydantic import ValidationError

import engine
from diffeditor.tasks import AppearanceParams, MoveParams, PasteParams, parse_params
from tests.engine.images import box_mask, scene


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
