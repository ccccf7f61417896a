"""One module per task (§8): masks on the guidance and latent grids, the initial latent, the energy
and the regional masks, gathered into a `TaskPlan` the editor runs.

Feature tensors handed to `TaskPlan.energy` are per level (B, C, Hg, Wg): the current features
(batch 1, with gradient) and the reference features computed from the inverted latents (batch 1,
or 2 = [base, reference] for the cross-image tasks).
"""

from __future__ import annotations

from engine.tasks import appearance, drag, landmark, move, paste
from engine.tasks.plan import Energy, Levels, TaskContext, TaskPlan, base_latent, flat, indices

__all__ = ["Energy", "Levels", "TaskContext", "TaskPlan", "base_latent", "flat", "indices", "prepare"]


def prepare(request: object, ctx: TaskContext) -> TaskPlan:
    modules = {"move": move, "drag": drag, "landmark": landmark, "appearance": appearance, "paste": paste}
    return modules[request.params.task].prepare(request, ctx)  # type: ignore[attr-defined]
