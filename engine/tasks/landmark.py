"""Face landmark dragging (§8.3) with caller-supplied landmark pairs: no face detector or
alignment, no content energy, no mask; the SDE is global (η_in = η_out)."""

from __future__ import annotations

import torch

from engine.energies import drag_energy
from engine.preprocess import resize_image
from engine.requests import LandmarkRequest
from engine.tasks.drag import grid_points, point_regions
from engine.tasks.plan import Levels, TaskContext, TaskPlan, flat

LAMBDA = 0.04


def prepare(req: LandmarkRequest, ctx: TaskContext) -> TaskPlan:
    p = req.params
    image = resize_image(req.image, ctx.size)
    pts = grid_points(p.points, ctx)
    regions = point_regions(pts, ctx, torch.zeros(ctx.grid, dtype=torch.bool, device=ctx.device))

    def energy(cur: Levels, ref: Levels) -> tuple[torch.Tensor, torch.Tensor | None]:
        # The drag edit term without its inpaint part, divided by 2K (§8.3; w_inpaint unused).
        return drag_energy(flat(cur), flat(ref), regions, p.w_edit, 0.0, 0.0, content=False)

    return TaskPlan(
        task="landmark",
        images=[image],
        prompt=p.prompt,
        energy=energy,
        lam=LAMBDA,
        eta_in=p.sde_strength,
        eta_out=p.sde_strength,  # global SDE
        guidance_mask=None,
        sde_mask=None,
    )
