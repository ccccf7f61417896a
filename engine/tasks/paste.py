"""Object pasting (§8.5): the reference object, resized by r, pasted into the base at an offset."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from diffeditor.inputs import offset_outside
from engine.energies import PairRegions, paste_energy
from engine.errors import InvalidInput
from engine.preprocess import (
    down,
    mask_tensor,
    resize_image,
    resize_mask,
    resize_shift_crop,
    shift,
    transform_index,
)
from engine.requests import PasteRequest, as_invalid_input
from engine.tasks.plan import Levels, TaskContext, TaskPlan, flat, indices, user_region

LAMBDA = 0.04


def scale_reference(image: Image.Image, mask: torch.Tensor, r: float) -> tuple[Image.Image, torch.Tensor]:
    """Nearest-resize the reference pixels and mask by r, then center-crop or zero-pad back; zero
    in [−1, 1] is mid-grey (§8.5.2–3)."""
    if r == 1:
        return image, mask
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
    x = resize_shift_crop(x, r, 0, 0)
    arr = ((x.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(arr), resize_shift_crop(mask, r, 0, 0)


def prepare(req: PasteRequest, ctx: TaskContext) -> TaskPlan:
    p = req.params
    base = resize_image(req.image, ctx.size)
    reference = resize_image(req.reference, ctx.size, Image.BICUBIC)
    m_r = mask_tensor(resize_mask(req.reference_mask, ctx.size), ctx.device)
    unscaled = m_r
    reference, m_r = scale_reference(reference, m_r, p.scale)
    # The edit term is a mean over the pasted object's pixels on G, so they must exist; the
    # background term is left out when empty.
    if not down(m_r, ctx.grid).any():
        user_region("reference_mask", unscaled, ctx, req.reference.size)  # a mask too thin for G is named …
        raise InvalidInput("scale", f"{p.scale:g} shrinks the object below one pixel of the guidance grid")  # … else r
    sx, sy = ctx.scale
    dxw, dyw = p.offset[0] * sx, p.offset[1] * sy  # s_in applied to every shift (§14.7 fixed)
    m_b = shift(m_r, int(dyw), int(dxw))  # the pasted location, no wrap-around (§14.8 fixed)
    m_bg = down(m_b, ctx.grid)
    gdy, gdx = int(dyw / 4), int(dxw / 4)
    # Pairing (§8.5.5): pixel p of the pasted location ↔ p − shift on the reference.
    back = transform_index(ctx.grid, gdy, gdx, ctx.grid).to(ctx.device)
    dst = indices(m_bg & (back > 0))
    if not dst.numel():  # no pasted pixel on G, or none with a source on it: nothing to pair
        raise as_invalid_input(offset_outside("paste", p.offset, req.image.size))
    regions = PairRegions(background=indices(~m_bg), obj=dst, ref_obj=back.flatten()[dst] - 1)

    def energy(cur: Levels, ref: Levels) -> tuple[torch.Tensor, torch.Tensor]:
        return paste_energy(flat(cur), flat(ref, 0), flat(ref, 1), regions, p.w_edit, p.w_content)

    m = down(m_bg, ctx.latent)[None, None].float()
    ldy, ldx = int(dyw / 8), int(dxw / 8)

    def init_latent(z_t: torch.Tensor) -> torch.Tensor:
        return z_t[:1] * (1 - m) + shift(z_t[1:2], ldy, ldx) * m

    return TaskPlan(
        task="paste",
        images=[base, reference],
        inversion_prompts=[p.prompt, p.reference_prompt],
        prompt=p.prompt,
        prompt_images=[base, req.reference],
        energy=energy,
        lam=LAMBDA,
        eta_in=p.sde_strength,
        guidance_mask=m,
        sde_mask=m,
        init_latent=init_latent,
        composite_masks=(m_b, m_r),
    )
