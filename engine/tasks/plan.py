"""The task package's shared types: the working geometry (`TaskContext`), what a task hands the
editor (`TaskPlan`), and the small helpers every task uses on the guidance grid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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


def base_latent(z_t: torch.Tensor) -> torch.Tensor:
    """The base image's z_T unchanged: no latent initialisation trick."""
    return z_t[:1]


@dataclass
class TaskPlan:
    task: str
    images: list[Image.Image]  # working-size images to invert: [base] or [base, reference]
    prompt: str  # c_T for sampling and the guidance features (§5.1)
    energy: Energy
    lam: float  # gradient multiplier λ (§5.3)
    eta_in: float  # SDE η inside sde_mask
    guidance_mask: torch.Tensor | None  # (1, 1, h, w) float; None: global (landmark)
    sde_mask: torch.Tensor | None  # (1, 1, h, w) float; None: everywhere
    eta_out: float = 0.0  # SDE η outside sde_mask
    init_latent: Callable[[torch.Tensor], torch.Tensor] = base_latent  # z_T batch → starting latent (1, 4, h, w)
    inversion_prompts: list[str] = field(default_factory=list)  # default: [prompt]
    prompt_images: list[Image.Image] = field(default_factory=list)  # image-prompt sources (§2.3); default: images
    composite_masks: tuple[torch.Tensor, torch.Tensor] | None = None  # (base object, reference object) at H×W

    def __post_init__(self) -> None:
        self.inversion_prompts = self.inversion_prompts or [self.prompt]
        self.prompt_images = self.prompt_images or list(self.images)


def flat(levels: Levels, row: int = 0) -> list[torch.Tensor]:
    """(B, C, Hg, Wg) levels → one (C, P) tensor per level for batch row `row`, in float32."""
    return [f[row].flatten(1).float() for f in levels]


def indices(mask: torch.Tensor) -> torch.Tensor:
    """Raster-order flat indices of a bool (Hg, Wg) mask."""
    return mask.flatten().nonzero().flatten()
