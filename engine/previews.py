"""Step previews: a cheap picture of the sampler's x̂0 while an edit runs (no VAE decode).

A latent is 4 channels on a grid 8× smaller than the image. Across images, each latent channel is
close to an affine function of the pixel colours under it (the observation behind the well-known
SD latent-to-RGB preview matrices). Rather than ship one matrix per model, the map is fitted per
edit: a least-squares affine map 4 → 3 from the input image's own latent z0 (the inversion's first
latent) to that image area-averaged onto the latent grid. It is exact in spirit for any VAE (the
demo model's and SD1.5's alike), costs one small solve per edit, and each preview is then one
(3×4) matrix product on the latent grid and an upscale. It changes nothing in the edit: it reads
x̂0, never writes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

# The callback the editor calls: (step, total, image), step counted from 1 like progress reports.
PreviewCallback = Callable[[int, int, Image.Image], None]

MAX_SIDE = 256  # a preview's longer side, at most (pixels)
UPSCALE = 2  # a preview is the latent grid this many times larger (then capped at MAX_SIDE)
RIDGE = 1e-4  # keeps the solve well posed on a flat image (one colour: a rank-deficient fit)
BUDGET = 0.03  # previews (fit, projections, the caller's handling) take at most this share of sampling


def preview_size(latent_hw: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of a preview for a latent grid (h, w): UPSCALE× the grid, longer side ≤ MAX_SIDE."""
    h, w = latent_hw
    k = min(UPSCALE, MAX_SIDE / max(h, w))
    return max(1, round(w * k)), max(1, round(h * k))


def due(step: int, total: int, every: int) -> bool:
    """Whether sampling step `step` (1-based) of `total` gets a preview: every `every`-th, and the last."""
    return every > 0 and (step % every == 0 or step == total)


class Budget:
    """The bound on what previews cost: a due preview is made only while the previews' seconds so
    far are within `share` of the sampling's seconds so far, so a slow consumer (a slow Redis, a
    slow JPEG encode, a fast GPU's short steps) costs skipped previews, never more of the edit."""

    def __init__(self, share: float = BUDGET, clock: Callable[[], float] = time.perf_counter) -> None:
        self.share, self.clock = share, clock
        self.started = clock()
        self.spent = 0.0
        self.skipped = 0

    def allows(self) -> bool:
        if self.spent <= self.share * (self.clock() - self.started):
            return True
        self.skipped += 1
        return False

    def spend(self, seconds: float) -> None:
        self.spent += seconds


class LatentProjection:
    """An affine latent → RGB map fitted on (latent, image) pairs; applied to x̂0 it gives a preview."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight  # (5, 3) float32: 4 channel weights and a bias row → RGB in [0, 1]

    @classmethod
    def fit(cls, latents: torch.Tensor, images: list[Image.Image]) -> LatentProjection:
        """Least squares from `latents` (B, 4, h, w) to `images` (B, at the working size h·8 × w·8),
        each image area-averaged onto its latent grid."""
        xs, ys = [], []
        for z, image in zip(latents.detach().float().cpu(), images, strict=True):
            _, h, w = z.shape
            small = image.convert("RGB").resize((w, h), Image.BOX)  # the area average under each latent cell
            ys.append(torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0).reshape(-1, 3))
            xs.append(z.reshape(z.shape[0], -1).T)
        x = torch.cat(xs).double()
        x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)  # the bias column
        y = torch.cat(ys).double()
        gram = x.T @ x + RIDGE * len(x) * torch.eye(x.shape[1], dtype=x.dtype)
        weight = torch.linalg.solve(gram, x.T @ y)
        return cls(weight.float())

    @torch.no_grad()
    def __call__(self, x0: torch.Tensor) -> Image.Image:
        """The first latent of `x0` (B, 4, h, w) as an RGB picture of preview_size((h, w))."""
        z = torch.nan_to_num(x0[0].detach().float())  # a diverging step must not make a preview fail
        c, h, w = z.shape
        weight = self.weight.to(z.device)
        rgb = (z.reshape(c, -1).T @ weight[:c] + weight[c]).clamp(0, 1)  # (h·w, 3)
        arr = (rgb.reshape(h, w, 3).cpu().numpy() * 255).round().astype(np.uint8)
        return Image.fromarray(arr).resize(preview_size((h, w)), Image.BILINEAR)
