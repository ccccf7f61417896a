"""One module per task (§8): masks on the guidance and latent grids, the initial latent, the energy
and the regional masks, gathered into a `TaskPlan` the editor runs.

Feature tensors handed to `TaskPlan.energy` are per level (B, C, Hg, Wg): the current features
(batch 1, with gradient) and the reference features computed from the inverted latents (batch 1,
or 2 = [base, reference] for the cross-image tasks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

Levels = list[torch.Tensor]
Energy = Callable[[Levels, Levels], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass(frozen=True)
class TaskContext:
    """The working geometry: working size (W, H), input size, and the device."""

    size: tuple[int, int]
    input_size: tuple[int, int]
    device: torch.device

    @property
    def scale(self) -> tuple[float, float]:
        """(s_x, s_y): working / input pixels (the release's s_in, per axis)."""
        return self.size[0] / self.input_size[0], self.size[1] / self.input_size[1]

    @property
    def grid(self) -> tuple[int, int]:
        """Guidance grid G = (H/4, W/4), as (rows, cols)."""
        return self.size[1] // 4, self.size[0] // 4

    @property
    def latent(self) -> tuple[int, int]:
        return self.size[1] // 8, self.size[0] // 8


@dataclass
class TaskPlan:
    task: str
    images: list[Image.Image]  # working-size images to invert: [base] or [base, reference]
    inversion_prompts: list[str]
    prompt: str  # c_T for sampling and the guidance features (§5.1)
    prompt_images: list[Image.Image]  # default image-prompt sources (§2.3)
    energy: Energy
    lam: float  # gradient multiplier λ (§5.3)
    eta_in: float
    eta_out: float
    guidance_mask: torch.Tensor | None  # (1, 1, h, w) float; None: global (landmark)
    sde_mask: torch.Tensor | None  # (1, 1, h, w) float; None: everywhere
    init_latent: Callable[[torch.Tensor], torch.Tensor]  # z_T batch → starting latent (1, 4, h, w)
    composite_masks: tuple[torch.Tensor, torch.Tensor] | None = None  # (base object, reference object) at H×W


def flat(levels: Levels, row: int = 0) -> list[torch.Tensor]:
    """(B, C, Hg, Wg) levels → one (C, P) tensor per level for batch row `row`, in float32."""
    return [f[row].flatten(1).float() for f in levels]


def indices(mask: torch.Tensor) -> torch.Tensor:
    """Raster-order flat indices of a bool (Hg, Wg) mask."""
    return mask.flatten().nonzero().flatten()


def prepare(request: object, ctx: TaskContext) -> TaskPlan:
    from engine.tasks import appearance, drag, landmark, move, paste

    modules = {"move": move, "drag": drag, "landmark": landmark, "appearance": appearance, "paste": paste}
    return modules[request.params.task].prepare(request, ctx)  # type: ignore[attr-defined]
