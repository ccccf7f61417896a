"""Each energy (§5.2, §8) against values computed by hand on tiny feature maps.

Feature vectors are 2-D so cosines are obvious: (1,0)·(1,0) → 1, (1,0)·(0,1) → 0,
(1,0)·(1,1) → 1/√2.
"""

from __future__ import annotations

import math

import pytest
import torch

from engine.energies import (
    MoveRegions,
    PairRegions,
    PointRegions,
    appearance_energy,
    drag_energy,
    move_energy,
    paste_energy,
    phi,
    shat,
)

R2 = 1 / math.sqrt(2)


def feats(*vectors: tuple[float, float]) -> torch.Tensor:
    """(C=2, P) from per-pixel vectors, with gradient so energies stay differentiable."""
    return torch.tensor(vectors, dtype=torch.float64).T.contiguous().requires_grad_(True)


def ix(*i: int) -> torch.Tensor:
    return torch.tensor(i, dtype=torch.long)


def test_primitives() -> None:
    assert phi(4.0, torch.tensor(1.0)).item() == pytest.approx(4 / 5)
    assert shat(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(0.5)
    assert shat(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0])).item() == pytest.approx(0.0)


def test_move_energy() -> None:
    cur = feats((1, 0), (0, 1), (1, 0), (1, 1))
    ref = feats((1, 0), (1, 0), (0, 1), (1, 1))
    regions = MoveRegions(dst=ix(0), src=ix(0), other=ix(1, 3), vacated=ix(2), inpaint_ref=ix(3))
    e_edit, e_cont = move_energy([cur], [ref], [ref], regions, w_edit=4, w_content=6, w_contrast=0.2, w_inpaint=0.8)
    # edit: raw cos(cur0, ref0) = 1 → 0.5·4/(1+4)
    assert e_edit.item() == pytest.approx(0.5 * 4 / 5)
    # content: raw cos over {1, 3} = (0 + 1)/2 → 0.5·6/(1+2); contrast: ŝ(cur2, ref2) = 0.5 → 0.5·0.2·0.5;
    # inpaint (no 0.5): ŝ(cur2, ref3) = (1/√2 + 1)/2 → 0.8/(1 + 4·that)
    inpaint = 0.8 / (1 + 4 * (R2 + 1) / 2)
    assert e_cont.item() == pytest.approx(0.5 * 6 / 3 + 0.5 * 0.2 * 0.5 + inpaint)
    # two levels add up
    e2, c2 = move_energy([cur, cur], [ref, ref], [ref, ref], regions, 4, 6, 0.2, 0.8)
    assert e2.item() == pytest.approx(2 * e_edit.item()) and c2.item() == pytest.approx(2 * e_cont.item())


def test_move_energy_uses_the_scaled_reference_for_the_edit_term() -> None:
    cur = feats((1, 0), (0, 1))
    ref = feats((1, 0), (0, 1))
    scaled = feats((-1, 0), (0, 1))  # cos(cur0, scaled0) = −1 → 0.5·4/(1−4)
    regions = MoveRegions(dst=ix(0), src=ix(0), other=ix(1), vacated=ix(), inpaint_ref=ix())
    e_edit, _ = move_energy([cur], [ref], [scaled], regions, 4, 6, 0.2, 0.8)
    assert e_edit.item() == pytest.approx(0.5 * 4 / (1 - 4))


def test_drag_energy() -> None:
    cur = feats((1, 0), (0, 1), (1, 0), (1, 1), (0, 1))
    ref = feats((0, 1), (0, 1), (1, 0), (1, 0), (0, 1))
    regions = PointRegions(targets=[ix(0, 1)], handles=[ix(2, 3)], handle_only=[ix(2, 3)], other=ix(4))
    e_edit, e_cont = drag_energy([cur], [ref], regions, w_edit=4, w_content=6, w_inpaint=0.2)
    # pairs (cur0, ref2): ŝ = 1; (cur1, ref3): ŝ = 0.5 → mean 0.75 → 4/(1+3) = 1
    # handle-only: ŝ(cur2, ref2) = 1, ŝ(cur3, ref3) = (1/√2+1)/2 → 0.2·mean; all ÷ (2·K), K = 1
    handle = 0.2 * (1 + (R2 + 1) / 2) / 2
    assert e_edit.item() == pytest.approx((1 + handle) / 2)
    # content: ŝ(ref4, cur4) = 1 → 0.5·6/5
    assert e_cont.item() == pytest.approx(0.5 * 6 / 5)


def test_landmark_energy_has_no_content_or_inpaint_term() -> None:
    cur = feats((1, 0), (0, 1), (1, 0), (1, 1))
    ref = feats((0, 1), (0, 1), (1, 0), (1, 0))
    regions = PointRegions(targets=[ix(0), ix(1)], handles=[ix(2), ix(3)], handle_only=[ix(2), ix(3)], other=ix())
    e_edit, e_cont = drag_energy([cur], [ref], regions, w_edit=12, w_content=0, w_inpaint=0, content=False)
    # point 1: ŝ(cur0, ref2) = 1 → 12/5; point 2: ŝ(cur1, ref3) = 0.5 → 12/3; ÷ (2·2)
    assert e_edit.item() == pytest.approx((12 / 5 + 12 / 3) / 4)
    assert e_cont is None


def test_appearance_energy_matches_mean_features() -> None:
    cur = feats((1, 0), (0, 1), (1, 1))
    base = feats((1, 0), (1, 0), (0, 0.5))
    refimg = feats((0, 1), (0, 3), (5, 5))
    regions = PairRegions(background=ix(0), obj=ix(1, 2), ref_obj=ix(0, 1))
    e_edit, e_cont = appearance_energy([cur], [base], [refimg], regions, w_edit=3.5, w_content=5)
    assert e_cont.item() == pytest.approx(5 / 5)  # ŝ(cur0, base0) = 1
    # mean(cur1, cur2) = (0.5, 1); mean(ref0, ref1) = (0, 2) → cos = 1/√1.25
    s = (1 / math.sqrt(1.25) + 1) / 2
    assert e_edit.item() == pytest.approx(3.5 / (1 + 4 * s))


def test_paste_energy_is_pixel_wise() -> None:
    cur = feats((1, 0), (0, 1), (1, 1))
    base = feats((0, 1), (1, 0), (0, 1))
    refimg = feats((0, 1), (1, 1), (1, 0))
    regions = PairRegions(background=ix(0), obj=ix(1, 2), ref_obj=ix(0, 1))
    e_edit, e_cont = paste_energy([cur], [base], [refimg], regions, w_edit=4, w_content=6)
    assert e_cont.item() == pytest.approx(6 / 3)  # ŝ(cur0, base0) = 0.5
    # pairs (cur1, ref0): ŝ = 1; (cur2, ref1): ŝ = 1 → mean 1
    assert e_edit.item() == pytest.approx(4 / 5)


def test_energies_are_differentiable() -> None:
    cur = feats((1, 0), (0, 1), (1, 1))
    ref = feats((0, 1), (1, 1), (1, 0)).detach()
    regions = PairRegions(background=ix(0), obj=ix(1, 2), ref_obj=ix(0, 1))
    e_edit, _ = paste_energy([cur], [ref], [ref], regions, 4, 6)
    (g,) = torch.autograd.grad(e_edit, cur)
    assert g[:, 0].abs().sum() == 0 and g[:, 1:].abs().sum() > 0  # only the pasted pixels move
