"""Object moving and resizing (§8.1)."""

from __future__ import annotations

import torch

from diffeditor.inputs import offset_outside
from engine.energies import MoveRegions, move_energy
from engine.errors import InvalidInput
from engine.preprocess import (
    crop_or_pad,
    down,
    mask_tensor,
    resize_image,
    resize_mask,
    resize_nearest,
    resize_shift_crop,
    scaled_size,
    shift,
    transform_index,
)
from engine.requests import MoveRequest, as_invalid_input
from engine.tasks.plan import Levels, TaskContext, TaskPlan, flat, indices, user_region

LAMBDA = 0.08  # §5.3: move's multiplier differs from the other tasks'


def prepare(req: MoveRequest, ctx: TaskContext) -> TaskPlan:
    p = req.params
    image = resize_image(req.image, ctx.size)
    obj = mask_tensor(resize_mask(req.mask, ctx.size), ctx.device)
    grid, lat, r = ctx.grid, ctx.latent, p.scale
    sx, sy = ctx.scale
    dxw, dyw = p.offset[0] * sx, p.offset[1] * sy  # working pixels: s_in applied to every shift (§14.7 fixed)

    # Masks on G (§8.1): the shift is ⌊d·s_in/4⌋·r on the r-scaled canvas, then crop/pad back.
    gdy, gdx = int(int(dyw / 4) * r), int(int(dxw / 4) * r)
    canvas = scaled_size(grid, r)
    m_org = down(obj, grid)
    m_tar = down(obj, canvas)
    # The edit term is a mean over the object's pixels on the r-scaled G, so they must exist; the
    # vacated, background and inpainting terms are left out when empty.
    if not m_tar.any():
        user_region("mask", obj, ctx, req.image.size)  # a mask too thin for G is named …
        raise InvalidInput("scale", f"{r:g} shrinks the object below one pixel of the guidance grid")  # … else r
    m_cur = crop_or_pad(shift(m_tar, gdy, gdx), grid)
    if not m_cur.any():
        raise as_invalid_input(offset_outside("move", p.offset, req.image.size))
    pair_map = transform_index(canvas, gdy, gdx, grid).to(ctx.device)
    dst = indices(m_cur)
    src = pair_map.flatten()[dst] - 1
    other = ~(m_cur | m_org)
    region = (
        user_region("region_mask", mask_tensor(resize_mask(req.region_mask, ctx.size), ctx.device), ctx, req.image.size)
        if req.region_mask is not None
        else other
    )
    regions = MoveRegions(
        dst=dst, src=src, other=indices(other), vacated=indices(m_org & ~m_cur), inpaint_ref=indices(region)
    )

    def energy(cur: Levels, ref: Levels) -> tuple[torch.Tensor, torch.Tensor]:
        ref_scaled = [resize_nearest(f, canvas) for f in ref]
        return move_energy(
            flat(cur), flat(ref), flat(ref_scaled), regions, p.w_edit, p.w_content, p.w_contrast, p.w_inpaint
        )

    # Initial latent (§8.1): paste the r-scaled, shifted z_T object into z_T. A new tensor: the
    # cached z_T is never written (§14.9 fixed).
    ldy, ldx = int(dyw / 8 * r), int(dxw / 8 * r)
    m_lat = crop_or_pad(shift(down(obj, scaled_size(lat, r)), ldy, ldx), lat)[None, None].float()

    def init_latent(z_t: torch.Tensor) -> torch.Tensor:
        z = z_t[:1]
        return z * (1 - m_lat) + resize_shift_crop(z, r, ldy, ldx) * m_lat

    return TaskPlan(
        task="move",
        images=[image],
        prompt=p.prompt,
        energy=energy,
        lam=LAMBDA,
        eta_in=p.sde_strength,
        guidance_mask=down(m_cur, lat)[None, None].float(),
        sde_mask=down(m_cur | m_org, lat)[None, None].float(),
        init_latent=init_latent,
    )
