"""Behavioural tests on the trained demo model: each edit does what it claims, against the shapes
world's rendered ground truth (diffeditor.cases). The figures of bench/quality.py, reduced to a
few robust claims per task at test settings (the sample scenes, fewer steps)."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from diffeditor import world
from diffeditor.cases import Case, sample
from diffeditor.tasks import parse_params

# Claims the shipped model (v1, 2000 UNet steps on 2 CPU cores) does not meet yet, measured on the
# sample scenes at 50 steps, are strict xfails: an engine or model change that makes one pass says so.
STEPS = 50  # the schedule the demo model is scored at (bench/quality.py)
SEED = 0


@pytest.fixture(scope="module")
def shapes_editor() -> engine.Editor:
    return engine.Editor(engine.load_models("demo", device="cpu"))


def _edit(editor: engine.Editor, case: Case, **overrides: object) -> np.ndarray:
    params = parse_params({**case.params, "steps": STEPS, "seed": SEED, "max_resolution": case.size, **overrides})
    result = editor.edit(engine.request_from_files(params, dict(case.images)))
    assert result.image.size == (case.size, case.size)
    return np.asarray(result.image.convert("RGB"))


def _colour_centroid(image: np.ndarray, case: Case) -> tuple[float, float]:
    assert case.colour is not None
    c = world.centroid(world.colour_mask(image, case.colour, 60))
    assert c is not None, "the object's colour is gone from the output"
    return c


def _progress(start: tuple[float, float], end: tuple[float, float], target: tuple[float, float]) -> float:
    """How far along start→target the object got (1 = all the way), by projection."""
    want = np.subtract(target, start)
    return float(np.dot(np.subtract(end, start), want) / np.dot(want, want))


def _background_psnr(out: np.ndarray, case: Case) -> float:
    return world.psnr(out, case.images["image"], case.keep_mask)


def test_move_carries_the_object_and_clears_where_it_was(shapes_editor: engine.Editor) -> None:
    case = sample("move")
    out = _edit(shapes_editor, case)
    start = _colour_centroid(np.asarray(case.images["image"]), case)
    assert case.target is not None
    assert _progress(start, _colour_centroid(out, case), case.target) > 0.6
    assert case.source_mask is not None and case.truth_mask is not None
    vacated = case.source_mask & ~case.truth_mask
    assert world.colour_mask(out, case.colour, 60)[vacated].mean() < 0.5  # type: ignore[arg-type]
    assert _background_psnr(out, case) > 20


@pytest.mark.xfail(
    strict=True, reason="demo model v1: the resized object loses its colour (becomes dark) (docs/benchmarks.md)"
)
def test_resize_changes_the_objects_area_the_right_way(shapes_editor: engine.Editor) -> None:
    case = sample("resize")
    out = _edit(shapes_editor, case)
    assert case.colour is not None
    before = world.colour_mask(np.asarray(case.images["image"]), case.colour, 60).sum()
    after = world.colour_mask(out, case.colour, 60).sum()
    r = case.extra["scale"]
    achieved = float(np.sqrt(after / before))
    assert (achieved - 1) * (r - 1) > 0 and abs(achieved - r) < abs(1 - r)  # grew (or shrank), and nearer r than 1


@pytest.mark.xfail(strict=True, reason="demo model v1: the dragged shape drifts off its colour (docs/benchmarks.md)")
def test_drag_stretches_the_edge_towards_the_target(shapes_editor: engine.Editor) -> None:
    case = sample("drag")
    out = _edit(shapes_editor, case)
    axis = 0 if case.extra["axis"] == "x" else 1
    assert case.target is not None and case.colour is not None
    mask = world.colour_mask(out, case.colour, 60)
    coords = np.nonzero(mask)[1 - axis]  # x for a horizontal drag, y for a vertical one
    start, target = case.extra["edge_from"], case.target[axis]
    reach = np.percentile(coords, 98)
    assert reach - start > 0.4 * (target - start)
    assert _background_psnr(out, case) > 20


@pytest.mark.xfail(strict=True, reason="demo model v1: the eye stays put and blurs (docs/benchmarks.md)")
def test_landmark_moves_the_eye(shapes_editor: engine.Editor) -> None:
    case = sample("landmark")
    out = _edit(shapes_editor, case)
    dark = world.colour_mask(out, world.EYE, 60)
    tx, ty = case.target  # type: ignore[misc]
    fx, fy = case.extra["eye_from"]
    r = case.extra["eye_radius"]
    ys, xs = np.nonzero(dark)
    near_target = (np.hypot(xs - tx, ys - ty) < 1.5 * r).sum()
    near_source = (np.hypot(xs - fx, ys - fy) < 1.5 * r).sum()
    assert near_target > near_source


def test_appearance_takes_the_reference_colour_and_keeps_the_shape(shapes_editor: engine.Editor) -> None:
    case = sample("appearance")
    out = _edit(shapes_editor, case)
    assert case.source_mask is not None and case.colour is not None
    mean = out[case.source_mask].reshape(-1, 3).mean(axis=0)
    new, old = np.asarray(case.colour, float), np.asarray(case.extra["old_colour"], float)
    assert np.linalg.norm(mean - new) < np.linalg.norm(mean - old)
    assert _background_psnr(out, case) > 20


@pytest.mark.xfail(
    strict=True, reason="demo model v1: nothing is pasted: the base scene comes back (docs/benchmarks.md)"
)
def test_paste_puts_the_reference_object_where_asked(shapes_editor: engine.Editor) -> None:
    case = sample("paste")
    out = _edit(shapes_editor, case)
    assert case.target is not None and case.truth_mask is not None and case.colour is not None
    inside = world.colour_mask(out, case.colour, 60)[case.truth_mask].mean()
    assert inside > 0.5
    assert np.hypot(*np.subtract(_colour_centroid(out, case), case.target)) < 8
