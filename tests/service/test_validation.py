"""Property test of the upload validation: whatever the geometry and numbers, a submission is
either accepted (inputs re-encoded as PNG, masks binary) or refused with a 4xx ApiError."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from diffeditor.tasks import FILES_BY_TASK, TASKS
from service.errors import ApiError
from service.settings import Settings
from service.validation import parse_params_text, validate_edit
from tests.service.helpers import REDIS_URL, mask_png, png

SETTINGS = Settings(redis_url=REDIS_URL, min_side=16)

sizes = st.tuples(st.integers(16, 40), st.integers(16, 40))
coords = st.floats(-20, 50, allow_nan=False)


@st.composite
def submissions(draw: st.DrawFn) -> tuple[str, dict[str, bytes]]:
    task = draw(st.sampled_from(TASKS))
    size = draw(sizes)
    ref_size = draw(sizes)
    params: dict = {"task": task, "steps": draw(st.integers(4, 104))}
    if task in ("move", "paste"):
        params["offset"] = [draw(coords), draw(coords)]
        params["scale"] = draw(st.floats(0.01, 1.5))
    if task in ("drag", "landmark"):
        params["points"] = draw(st.lists(st.lists(coords, min_size=4, max_size=4), min_size=1, max_size=3))

    def box(s: tuple[int, int]) -> tuple[int, int, int, int] | None:
        if draw(st.booleans()) and draw(st.booleans()):
            return None  # an empty mask now and then
        x0, y0 = draw(st.integers(0, s[0] - 1)), draw(st.integers(0, s[1] - 1))
        return x0, y0, draw(st.integers(x0, s[0] - 1)), draw(st.integers(y0, s[1] - 1))

    required, optional = FILES_BY_TASK[task]
    files: dict[str, bytes] = {}
    for name in (*required, *draw(st.lists(st.sampled_from(optional), unique=True))):
        if name in ("image", "image_prompt"):
            files[name] = png(size if name == "image" else ref_size)
        elif name == "reference":
            files[name] = png(ref_size)
        else:
            owner = ref_size if name == "reference_mask" else size
            if draw(st.integers(0, 19)) == 19:
                owner = (owner[0] + 1, owner[1])  # a size mismatch now and then
            files[name] = mask_png(owner, box(owner))
    return json.dumps(params), files


@settings(max_examples=120, deadline=None)
@given(submissions())
def test_accepted_or_a_4xx(submission: tuple[str, dict[str, bytes]]) -> None:
    params_text, files = submission
    try:
        edit = validate_edit(params_text, files, SETTINGS)
    except ApiError as exc:
        assert 400 <= exc.status < 500 and exc.code and exc.message
        return
    assert set(edit.files) == set(files)
    for name, data in edit.files.items():
        img = Image.open(io.BytesIO(data))
        assert img.format == "PNG"
        if "mask" in name:
            assert set(np.unique(np.asarray(img)).tolist()) <= {0, 255}
            assert np.asarray(img).any()


def test_the_servers_default_resolution_fills_an_omitted_max_resolution_only() -> None:
    fixed = Settings(redis_url=REDIS_URL, default_resolution=320)
    move = {"task": "move", "offset": [1, 0]}
    assert parse_params_text(json.dumps(move), fixed).max_resolution == 320
    assert parse_params_text(json.dumps({**move, "max_resolution": 512}), fixed).max_resolution == 512
    assert parse_params_text(json.dumps(move), SETTINGS).max_resolution is None  # the worker decides


def test_job_options_are_taken_out_of_params_and_checked() -> None:
    from service.validation import parse_submission

    move = {"task": "move", "offset": [8, 0]}
    params, options = parse_submission(
        json.dumps({**move, "deadline_s": 30, "webhook_events": ["progress", "start"]}), SETTINGS
    )
    assert params.task == "move" and options.deadline_s == 30
    assert options.webhook_events == ["start", "progress"]  # in the events' order, once each
    capped = SETTINGS.model_copy(update={"max_deadline_s": 60.0})
    assert parse_submission(json.dumps(move), capped)[1].deadline_s == 60  # the cap is the default
    for bad, field in (
        ({"deadline_s": 61}, "deadline_s"),
        ({"deadline_s": 0}, "deadline_s"),
        ({"deadline_s": 1e300}, "deadline_s"),  # would not be a date: every read of the job would fail
        ({"webhook_events": ["done"]}, "webhook_events.0"),
        ({"webhook": "ftp://example.com/hook"}, "webhook"),
    ):
        with pytest.raises(ApiError) as err:
            parse_submission(json.dumps({**move, **bad}), capped)
        assert err.value.status == 422 and err.value.field == field, (bad, err.value.message)
