"""Content dragging with point pairs (§8.2); `point_regions` and `copy_patches` serve landmark too."""

from __future__ import annotations

import torch

from engine.energies import PointRegions, drag_energy
from engine.preprocess import down, mask_tensor, resize_image, resize_mask
from engine.requests import DragRequest
from engine.tasks.plan import Levels, TaskContext, TaskPlan, flat, indices, user_region

LAMBDA = 0.04


def grid_points(points: list[list[float]], ctx: TaskContext) -> list[tuple[int, int, int, int]]:
    """Input-pixel pairs → guidance-grid (y1, x1, y2, x2): ⌊coord·s_in/4⌋ clipped to [1, dim−2],
    x with the width bound (the release clips x with the height bound, §14.9 fixed)."""
    sx, sy = ctx.scale
    gh, gw = ctx.grid

    def g(v: float, s: float, dim: int) -> int:
        return min(max(int(v * s / 4), 1), dim - 2)

    return [(g(y1, sy, gh), g(x1, sx, gw), g(y2, sy, gh), g(x2, sx, gw)) for x1, y1, x2, y2 in points]


def _patch(y: int, x: int, grid: tuple[int, int]) -> torch.Tensor:
    m = torch.zeros(grid, dtype=torch.bool)
    m[y - 1 : y + 2, x - 1 : x + 2] = True
    return m


def point_regions(pts: list[tuple[int, int, int, int]], ctx: TaskContext, other: torch.Tensor) -> PointRegions:
    """3×3 patches around handles and targets on G (§8.2)."""
    targets, handles, only = [], [], []
    for y1, x1, y2, x2 in pts:
        src, tgt = _patch(y1, x1, ctx.grid), _patch(y2, x2, ctx.grid)
        targets.append(indices(tgt).to(ctx.device))
        handles.append(indices(src).to(ctx.device))
        only.append(indices(src & ~tgt).to(ctx.device))
    return PointRegions(targets=targets, handles=handles, handle_only=only, other=indices(other))


def copy_patches(z: torch.Tensor, pts: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """Copy each 3×3 latent patch at handle//2 to target//2, in order, on a copy of z (the release
    writes into the cached z_T, §14.9 fixed; the sequential order is kept)."""
    z = z.clone()
    h, w = z.shape[-2:]
    for y1, x1, y2, x2 in pts:
        hy, hx = min(max(y1 // 2, 1), h - 2), min(max(x1 // 2, 1), w - 2)
        ty, tx = min(max(y2 // 2, 1), h - 2), min(max(x2 // 2, 1), w - 2)
        z[..., ty - 1 : ty + 2, tx - 1 : tx + 2] = z[..., hy - 1 : hy + 2, hx - 1 : hx + 2].clone()
    return z


def prepare(req: DragRequest, ctx: TaskContext) -> TaskPlan:
    p = req.params
    image = resize_image(req.image, ctx.size)
    region = mask_tensor(resize_mask(req.mask, ctx.size), ctx.device)
    pts = grid_points(p.points, ctx)
    # The editable region must reach G, or nothing is editable; its complement (the content term)
    # may be empty and is then left out.
    regions = point_regions(pts, ctx, ~user_region("mask", region, ctx, req.image.size))

    def energy(cur: Levels, ref: Levels) -> tuple[torch.Tensor, torch.Tensor | None]:
        return drag_energy(flat(cur), flat(ref), regions, p.w_edit, p.w_content, p.w_inpaint)

    m = down(region, ctx.latent)[None, None].float()
    return TaskPlan(
        task="drag",
        images=[image],
        prompt=p.prompt,
        energy=energy,
        lam=LAMBDA,
        eta_in=p.sde_strength,
        guidance_mask=m,
        sde_mask=m,
        init_latent=lambda z_t: copy_patches(z_t[:1], pts),
    )
