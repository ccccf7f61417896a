"""Appearance replacing (§8.4): the base object takes the reference object's appearance."""

from __future__ import annotations

import torch
from PIL import Image

from engine.energies import PairRegions, appearance_energy
from engine.preprocess import down, mask_tensor, resize_image, resize_mask
from engine.requests import AppearanceRequest
from engine.tasks.plan import Levels, TaskContext, TaskPlan, flat, indices, user_region

LAMBDA = 0.04


def prepare(req: AppearanceRequest, ctx: TaskContext) -> TaskPlan:
    p = req.params
    base = resize_image(req.image, ctx.size)
    # The reference goes straight to the base working size, bicubic, aspect not kept (§3.1).
    reference = resize_image(req.reference, ctx.size, Image.BICUBIC)
    m_b = mask_tensor(resize_mask(req.mask, ctx.size), ctx.device)
    m_r = mask_tensor(resize_mask(req.reference_mask, ctx.size), ctx.device)
    # Both object terms are means over the masks on G: each must cover a grid pixel. The background
    # (empty when the object covers everything) is left out when empty (energies._background_energy).
    obj_g = user_region("mask", m_b, ctx, req.image.size)
    ref_g = user_region("reference_mask", m_r, ctx, req.reference.size)
    regions = PairRegions(background=indices(~obj_g), obj=indices(obj_g), ref_obj=indices(ref_g))

    def energy(cur: Levels, ref: Levels) -> tuple[torch.Tensor, torch.Tensor]:
        return appearance_energy(flat(cur), flat(ref, 0), flat(ref, 1), regions, p.w_edit, p.w_content)

    m = down(m_b, ctx.latent)[None, None].float()
    return TaskPlan(
        task="appearance",
        images=[base, reference],
        inversion_prompts=[p.prompt, p.reference_prompt],
        prompt=p.prompt,
        # §2.1.1: the reference's image prompt comes from the original upload.
        prompt_images=[base, req.reference],
        energy=energy,
        lam=LAMBDA,
        eta_in=p.sde_strength,
        guidance_mask=m,
        sde_mask=m,
        composite_masks=(m_b, m_r),
    )
