"""Each task end to end on the tiny random model with the full 50-step schedule (§4, §11), at a 128²
working size: output size, determinism, the cache hit on a repeat edit (no inversion, cached
tensors untouched), the evaluation counts of §12.1, and that guidance changes the output."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import engine
from diffeditor.tasks import AppearanceParams, DragParams, LandmarkParams, MoveParams, PasteParams
from engine.inversion import Inversion
from engine.schedule import build_schedule, count_evaluations
from tests.engine.images import box_mask, scene

RES = 128  # working size 128×128 from 160×120 inputs (non-square, resized back)


@pytest.fixture(scope="module")
def editor(random_models: engine.Models) -> engine.Editor:
    return engine.Editor(random_models)


def digest(inv: Inversion) -> str:
    h = hashlib.sha256()
    tensors = list(inv.latents)
    for layer in sorted(inv.bank):
        for step in sorted(inv.bank[layer]):
            tensors.extend(inv.bank[layer][step])
    for step in sorted(inv.features):
        tensors.extend(inv.features[step])
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def requests() -> dict[str, object]:
    img, mask = scene(), box_mask()
    ref = scene(seed=1, box=(60, 40, 120, 100))
    ref_mask = box_mask(box=(60, 40, 120, 100))
    return {
        "move": engine.MoveRequest(img, mask, MoveParams(offset=[30, 10], seed=7, max_resolution=RES)),
        "drag": engine.DragRequest(
            img, mask, DragParams(points=[[50, 40, 70, 50], [80, 70, 84, 60]], seed=7, max_resolution=RES)
        ),
        "landmark": engine.LandmarkRequest(
            img,
            LandmarkParams(points=[[50, 40, 56, 44], [80, 70, 76, 66], [60, 50, 62, 58]], seed=7, max_resolution=RES),
        ),
        "appearance": engine.AppearanceRequest(
            img,
            mask,
            ref,
            ref_mask,
            AppearanceParams(prompt="a box", reference_prompt="a red box", seed=7, max_resolution=RES),
        ),
        "paste": engine.PasteRequest(
            img, ref, ref_mask, PasteParams(offset=[-20, -10], scale=0.8, seed=7, max_resolution=RES)
        ),
    }


@pytest.mark.parametrize("task", ["move", "drag", "landmark", "appearance", "paste"])
def test_task_end_to_end(editor: engine.Editor, task: str) -> None:
    request = requests()[task]
    editor.cache.clear()  # tasks on the same image share one inversion; start cold
    first = editor.edit(request)
    assert first.image.size == request.image.size and first.image.mode == "RGB"
    assert first.stats.working_size == (RES, RES)
    assert not first.stats.inversion_cached
    energies = 1 if task == "landmark" else 2
    assert first.stats.evaluations == count_evaluations(build_schedule(task, 50, True), energies)
    assert first.seed == 7 and first.params.seed == 7
    assert set(first.stats.seconds) == {"preprocess", "image_prompt", "inversion", "sampling", "decode", "total"}

    entries = editor.cache.entries()
    before = {id(e): digest(e) for e in entries}

    second = editor.edit(request)
    assert second.stats.inversion_cached
    assert second.stats.evaluations["inversion"] == 0
    assert second.stats.evaluations["guidance_forward"] == 28  # reference features came from the cache
    assert np.array_equal(np.asarray(first.image), np.asarray(second.image)), "same inputs and seed, same image"
    assert {id(e): digest(e) for e in editor.cache.entries() if id(e) in before} == before, "cache was modified"

    unguided = editor.edit(
        type(request)(**{**request.__dict__, "params": request.params.model_copy(update={"guidance_strength": 0})})
    )
    ev = unguided.stats.evaluations
    assert ev["guidance_forward"] == ev["guidance_backward"] == ev["rollback"] == 0 and ev["sampling"] == 50
    diff = np.abs(np.asarray(unguided.image, dtype=np.int16) - np.asarray(first.image, dtype=np.int16))
    assert diff.max() > 0, "guidance must change the output"


def test_other_seed_changes_the_sde_noise(editor: engine.Editor) -> None:
    request = requests()["drag"]
    a = editor.edit(request)
    b = editor.edit(type(request)(**{**request.__dict__, "params": request.params.model_copy(update={"seed": 8})}))
    assert not np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_random_seed_is_reported(editor: engine.Editor) -> None:
    req = requests()["landmark"]
    p = req.params.model_copy(update={"seed": None, "steps": 4})
    result = editor.edit(engine.LandmarkRequest(req.image, p))
    assert result.seed is not None and result.params.seed == result.seed


def test_an_omitted_working_size_is_the_editors_default_and_reported(random_models: engine.Models) -> None:
    req = requests()["landmark"]
    p = req.params.model_copy(update={"max_resolution": None, "steps": 4})
    result = engine.Editor(random_models, default_resolution=RES).edit(engine.LandmarkRequest(req.image, p))
    assert result.params.max_resolution == RES and result.stats.working_size == (RES, RES)


def test_default_resolution_rule() -> None:
    from types import SimpleNamespace

    def rule(trained: int | None, device: str) -> int:
        return engine.Models.default_resolution(
            SimpleNamespace(trained_resolution=trained, device=torch.device(device))  # type: ignore[arg-type]
        )

    assert (rule(None, "cuda"), rule(None, "cpu"), rule(128, "cuda"), rule(128, "cpu")) == (768, 512, 128, 128)


def test_progress_and_cancellation(editor: engine.Editor) -> None:
    req = requests()["move"]
    p = req.params.model_copy(update={"steps": 8, "max_resolution": 64})
    seen: list[tuple[str, int, int]] = []
    editor.edit(engine.MoveRequest(req.image, req.mask, p), progress=lambda s, i, n: seen.append((s, i, n)))
    stages = [s for s, _, _ in seen]
    assert stages[0] == "preprocess" and stages[-1] == "decode"
    assert [i for s, i, _ in seen if s == "sampling"] == list(range(1, 9))
    calls = {"n": 0}

    def cancel_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(engine.Canceled):
        editor.edit(
            engine.MoveRequest(req.image, req.mask, p.model_copy(update={"seed": 99})), should_cancel=cancel_after_three
        )


def test_cache_is_bounded(random_models: engine.Models) -> None:
    small = engine.Editor(random_models, cache_bytes=1)
    req = requests()["landmark"]
    small.edit(engine.LandmarkRequest(req.image, req.params.model_copy(update={"steps": 4, "max_resolution": 64})))
    assert len(small.cache) == 0 and small.cache.nbytes() == 0


def test_unguided_edit_caches_its_inversion(editor: engine.Editor) -> None:
    editor.cache.clear()
    req = requests()["landmark"]
    p = req.params.model_copy(update={"steps": 4, "max_resolution": 64, "guidance_strength": 0})
    first = editor.edit(engine.LandmarkRequest(req.image, p))
    second = editor.edit(engine.LandmarkRequest(req.image, p))
    assert not first.stats.inversion_cached and second.stats.inversion_cached
    assert editor.cache.nbytes() == sum(e.nbytes() for e in editor.cache.entries()) > 0
