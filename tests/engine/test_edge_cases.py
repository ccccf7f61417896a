"""Inputs that are valid at upload size but reach the maths empty: a mask that vanishes on the
guidance grid is refused on its field before any work (its energy term would be a mean over
nothing, NaN, and the NaN gradient would blacken the whole image); a derived region that is
empty (no background) leaves its term out; and no edit decodes a non-finite latent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import engine
from diffeditor.tasks import AppearanceParams, DragParams, MoveParams, PasteParams
from engine import editor as editor_module
from engine.energies import PairRegions, appearance_energy, paste_energy

SIZE = 256  # inputs and working size: the guidance grid is 64×64, one cell per 4 px
COMMON = {"steps": 4, "seed": 1, "max_resolution": SIZE}


@pytest.fixture(scope="module")
def editor(random_models: engine.Models) -> engine.Editor:
    return engine.Editor(random_models)


def _image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8))


def _mask(x0: int, y0: int, x1: int, y1: int) -> Image.Image:
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[y0:y1, x0:x1] = 255
    return Image.fromarray(m)


BOX = (80, 80, 160, 160)
THIN = (101, 40, 102, 200)  # 1 px wide, on no sampled column of the 64-wide grid


def _requests() -> dict[str, tuple[object, str]]:
    img, box, thin = _image(), _mask(*BOX), _mask(*THIN)
    return {
        "appearance reference_mask": (
            engine.AppearanceRequest(img, box, img, thin, AppearanceParams(**COMMON)),
            "reference_mask",
        ),
        "appearance mask": (engine.AppearanceRequest(img, thin, img, box, AppearanceParams(**COMMON)), "mask"),
        "move mask": (engine.MoveRequest(img, thin, MoveParams(offset=[20, 0], **COMMON)), "mask"),
        "move region_mask": (
            engine.MoveRequest(img, box, MoveParams(offset=[20, 0], **COMMON), region_mask=thin),
            "region_mask",
        ),
        "move scale": (
            engine.MoveRequest(img, _mask(100, 100, 104, 104), MoveParams(offset=[0, 0], scale=0.1, **COMMON)),
            "scale",
        ),
        "drag mask": (engine.DragRequest(img, thin, DragParams(points=[[100, 100, 110, 100]], **COMMON)), "mask"),
        "paste reference_mask": (
            engine.PasteRequest(img, img, thin, PasteParams(offset=[10, 0], **COMMON)),
            "reference_mask",
        ),
    }


@pytest.mark.parametrize("case", list(_requests()))
def test_a_mask_that_vanishes_on_the_guidance_grid_is_refused_on_its_field(editor: engine.Editor, case: str) -> None:
    request, field = _requests()[case]
    editor.cache.clear()
    with pytest.raises(engine.InvalidInput) as err:
        editor.edit(request)
    assert err.value.field == field
    assert "guidance grid" in err.value.message
    assert len(editor.cache) == 0, "refused before the inversion"


def test_the_thin_mask_message_says_how_wide_to_draw_it(editor: engine.Editor) -> None:
    request, _ = _requests()["appearance reference_mask"]
    with pytest.raises(engine.InvalidInput, match=r"at least 4 px wide"):
        editor.edit(request)


def test_an_object_covering_the_whole_image_leaves_the_background_term_out(editor: engine.Editor) -> None:
    img = _image()
    whole = _mask(0, 0, SIZE, SIZE)
    params = AppearanceParams(**{**COMMON, "max_resolution": 64})
    result = editor.edit(engine.AppearanceRequest(img, whole, img, _mask(*BOX), params))
    assert np.asarray(result.image).max() > 0, "a NaN latent decodes to black"


@pytest.mark.parametrize("energy", [appearance_energy, paste_energy])
def test_the_cross_image_content_term_of_an_empty_background_is_a_zero_constant(energy) -> None:
    cur = [torch.randn(8, 16, requires_grad=True)]
    ref = [torch.randn(8, 16)]
    everything = torch.arange(16)
    regions = PairRegions(background=everything[:0], obj=everything, ref_obj=everything)
    e_edit, e_cont = energy(cur, ref, ref, regions, 1.0, 1.0)
    assert torch.isfinite(e_edit) and e_cont.item() == 0 and not e_cont.requires_grad
    (grad,) = torch.autograd.grad(e_edit, cur)
    assert torch.isfinite(grad).all()


def test_a_non_finite_latent_is_never_decoded(editor: engine.Editor, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = editor_module.sample
    decoded: list[torch.Tensor] = []
    monkeypatch.setattr(editor_module, "sample", lambda z, *a, **k: sample(z, *a, **k) * float("nan"))
    monkeypatch.setattr(editor_module, "vae_decode", lambda vae, z: decoded.append(z))
    img = _image()
    request = engine.MoveRequest(img, _mask(*BOX), MoveParams(offset=[20, 0], **{**COMMON, "max_resolution": 64}))
    with pytest.raises(engine.NonFiniteLatent) as err:
        editor.edit(request)
    assert err.value.code == "non_finite_latent" and "NaN" in str(err.value)
    assert decoded == []
