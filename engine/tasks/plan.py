"""The task package's shared types: the working geometry (`TaskContext`), what a task hands the
editor (`TaskPlan`), and the small helpers every task uses on the guidance grid."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from PIL import Image

from engine.errors import InvalidInput
from engine.preprocess import down

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


def user_region(field: str, mask: torch.Tensor, ctx: TaskContext, owner_size: tuple[int, int]) -> torch.Tensor:
    """A user's working-size mask ↓ to the guidance grid, refused on `field` when it covers no grid
    pixel there (a mask 1 px wide in a 256-px image, say): every energy term over it would be a
    mean over nothing, NaN, whose gradient turns the whole latent to NaN. `owner_size` is the
    size of the image the mask was drawn on, so that the message gives a width in its pixels."""
    g = down(mask, ctx.grid)
    if not g.any():
        (w, h), (gh, gw) = ctx.size, ctx.grid
        px = math.ceil(4 * max(owner_size[0] / w, owner_size[1] / h))
        raise InvalidInput(
            field,
            f"covers no pixel of the {gw}x{gh} guidance grid of the {w}x{h} working size (too thin or too "
            f"small); draw it at least {px} px wide, or raise max_resolution",
        )
    return g
