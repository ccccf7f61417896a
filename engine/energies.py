"""Energies of the regional score-based guidance (§5.2, §8). Lower energy means more similar.

Features arrive per level as (C, P) tensors: channels × flattened guidance-grid pixels (raster
order). Regions are index tensors into P, precomputed by the tasks; a "paired" set is two index
tensors of equal length matched element by element (§5.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

Levels = list[torch.Tensor]  # one (C, P) tensor per feature level


def phi(w: float, s: torch.Tensor) -> torch.Tensor:
    """The energy shape φ_w(s) = w / (1 + 4s) (§5.2)."""
    return w / (1 + 4 * s)


def cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity along channels (dim 0)."""
    return F.cosine_similarity(a, b, dim=0)


def shat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ŝ = (cos + 1) / 2 ∈ [0, 1]."""
    return (cos(a, b) + 1) / 2


@dataclass(frozen=True)
class MoveRegions:
    dst: torch.Tensor  # paired: pixels of M_cur on G …
    src: torch.Tensor  # … and their source pixels in the resized reference canvas (M_tar)
    other: torch.Tensor  # background: not (M_cur ∪ M_org)
    vacated: torch.Tensor  # M_org \ M_cur
    inpaint_ref: torch.Tensor  # Q: the reference region, or the background


def move_energy(
    cur: Levels, ref: Levels, ref_scaled: Levels, r: MoveRegions, w_edit: float, w_content: float,
    w_contrast: float, w_inpaint: float,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """§8.1: raw cosine in the edit and content terms, ŝ in contrast and inpaint; level weight 0.5
    except on the inpaint term (reproduced, §14.4)."""
    e_edit = cur[0].new_zeros(())
    e_cont = cur[0].new_zeros(())
    for c, f, fs in zip(cur, ref, ref_scaled):
        e_edit = e_edit + 0.5 * phi(w_edit, cos(c[:, r.dst], fs[:, r.src]).mean())
        if r.other.numel():
            e_cont = e_cont + 0.5 * phi(w_content, cos(f[:, r.other], c[:, r.other]).mean())
        if r.vacated.numel():
            e_cont = e_cont + 0.5 * w_contrast * shat(c[:, r.vacated], f[:, r.vacated]).mean()
            if r.inpaint_ref.numel():
                mean_vac = c[:, r.vacated].mean(1)
                mean_ref = f[:, r.inpaint_ref].mean(1)
                e_cont = e_cont + phi(w_inpaint, shat(mean_vac, mean_ref))
    return e_edit, e_cont


@dataclass(frozen=True)
class PointRegions:
    targets: list[torch.Tensor]  # per point pair: the 3×3 patch around the target …
    handles: list[torch.Tensor]  # … paired with the 3×3 patch around the handle
    handle_only: list[torch.Tensor]  # handle patch pixels not in the target patch
    other: torch.Tensor  # outside the editable region (drag only)


def drag_energy(
    cur: Levels, ref: Levels, r: PointRegions, w_edit: float, w_content: float, w_inpaint: float,
    content: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
    """§8.2 (and §8.3 with `content=False, w_inpaint=0`): ŝ throughout, the edit term divided by
    2K; the content term at half weight per level."""
    e_edit = cur[0].new_zeros(())
    for c, f in zip(cur, ref):
        for tgt, src, only in zip(r.targets, r.handles, r.handle_only):
            e_edit = e_edit + phi(w_edit, shat(c[:, tgt], f[:, src]).mean())
            if w_inpaint and only.numel():
                e_edit = e_edit + w_inpaint * shat(c[:, only], f[:, only]).mean()
    e_edit = e_edit / (2 * len(r.targets))
    if not content:
        return e_edit, None
    e_cont = cur[0].new_zeros(())
    if r.other.numel():
        for c, f in zip(cur, ref):
            e_cont = e_cont + 0.5 * phi(w_content, shat(f[:, r.other], c[:, r.other]).mean())
    return e_edit, e_cont


@dataclass(frozen=True)
class PairRegions:
    background: torch.Tensor  # base pixels outside the edited object
    obj: torch.Tensor  # the base object (appearance) / pasted location (paste) …
    ref_obj: torch.Tensor  # … and the reference object (paired with obj for paste)


def _background_energy(cur: Levels, base: Levels, background: torch.Tensor, w_content: float) -> torch.Tensor:
    """The cross-image content term: the base background keeps its features (§8.4, §8.5). An object
    that covers the whole grid leaves no background: the term is left out (a constant zero)."""
    if not background.numel():
        return cur[0].new_zeros(())
    return sum(phi(w_content, shat(c[:, background], fb[:, background]).mean()) for c, fb in zip(cur, base))


def appearance_energy(
    cur: Levels, base: Levels, refimg: Levels, r: PairRegions, w_edit: float, w_content: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """§8.4: mean-feature appearance match inside the object; no level weight, no normalisation."""
    e_edit = sum(phi(w_edit, shat(c[:, r.obj].mean(1), fr[:, r.ref_obj].mean(1))) for c, fr in zip(cur, refimg))
    return e_edit, _background_energy(cur, base, r.background, w_content)


def paste_energy(
    cur: Levels, base: Levels, refimg: Levels, r: PairRegions, w_edit: float, w_content: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """§8.5: pixel-wise match of the pasted location to the reference object."""
    e_edit = sum(phi(w_edit, shat(c[:, r.obj], fr[:, r.ref_obj]).mean()) for c, fr in zip(cur, refimg))
    return e_edit, _background_energy(cur, base, r.background, w_content)
