"""Working size, image/mask conversion, grid transforms and the VAE (§1, §8.6).

Grids: the working image is H×W; the latent grid h×w = H/8 × W/8; the guidance grid
G = H/4 × W/4 (§1). Masks are bool tensors; "↓" resizes are nearest-neighbour.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from diffeditor.inputs import mask_bits

VAE_SCALE = 0.18215  # SD1.5's; a VAE's own config.scaling_factor takes precedence (the shapes model's differs)


def working_size(size: tuple[int, int], max_resolution: int) -> tuple[int, int]:
    """(W, H) with area ≈ max_resolution², aspect kept, sides multiples of 64 (at least 64)."""
    w, h = size
    k = math.sqrt(max_resolution**2 / (w * h))
    return max(64, round(w * k / 64) * 64), max(64, round(h * k / 64) * 64)


def resize_image(image: Image.Image, size: tuple[int, int], resample: int = Image.LANCZOS) -> Image.Image:
    image = image.convert("RGB")
    return image if image.size == size else image.resize(size, resample)


def resize_mask(mask: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """A user mask at the working size: bilinear resize then midpoint threshold (§8.6; one rule for
    every mask, see docs/deviations.md)."""
    m = Image.fromarray(mask_bits(mask).astype(np.uint8) * 255)
    if m.size != size:
        m = m.resize(size, Image.BILINEAR)
    return np.asarray(m) > 127


def to_tensor(image: Image.Image, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """RGB PIL → (1, 3, H, W) in [−1, 1]."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1
    return torch.from_numpy(arr).permute(2, 0, 1)[None].to(device=device, dtype=dtype)


def to_image(x: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) in [0, 1] → RGB PIL."""
    arr = (x[0].permute(1, 2, 0).float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(arr)


def mask_tensor(mask: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mask)).to(device)


def down(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-resize a bool (H, W) mask to (h, w) (the release's "↓" with a > 0 threshold)."""
    return resize_nearest(mask, size)


def resize_nearest(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-resize the last two dims of a (…, H, W) tensor (bool or float)."""
    if tuple(x.shape[-2:]) == size:
        return x
    lead = x.shape[:-2]
    y = F.interpolate(x.reshape(1, -1, *x.shape[-2:]).float(), size=size, mode="nearest")
    y = y.reshape(*lead, *size)
    return y > 0 if x.dtype == torch.bool else y.to(x.dtype)


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Translate the last two dims by (dy, dx) with zero fill: what leaves the frame is gone.
    The release uses a cyclic roll, which wraps objects around the border (§14.8, fixed)."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    if abs(dy) < h and abs(dx) < w:
        out[..., yd, xd] = x[..., ys, xs]
    return out


def crop_or_pad(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Center-crop (larger) or zero-pad centered (smaller) the last two dims back to `size`."""
    h, w = x.shape[-2:]
    th, tw = size
    out = x.new_zeros((*x.shape[:-2], th, tw))
    # offsets of the source window and the destination window
    sy, dy = max((h - th) // 2, 0), max((th - h) // 2, 0)
    sx, dx = max((w - tw) // 2, 0), max((tw - w) // 2, 0)
    ch, cw = min(h, th), min(w, tw)
    out[..., dy : dy + ch, dx : dx + cw] = x[..., sy : sy + ch, sx : sx + cw]
    return out


def transform_index(canvas: tuple[int, int], dy: int, dx: int, grid: tuple[int, int]) -> torch.Tensor:
    """For every pixel of `grid`, 1 + the flat index of the `canvas` pixel that the shift-and-crop
    transform puts there (0 where nothing lands). Pairing by this map equals the release's
    raster-order pairing of a translated copy (§5.2) and stays correct when part of the object
    leaves the frame (§14.8)."""
    idx = torch.arange(1, canvas[0] * canvas[1] + 1, dtype=torch.float64).reshape(canvas)
    return crop_or_pad(shift(idx, dy, dx), grid).long()


def scaled_size(size: tuple[int, int], r: float) -> tuple[int, int]:
    return max(1, int(size[0] * r)), max(1, int(size[1] * r))


def resize_shift_crop(x: torch.Tensor, r: float, dy: int, dx: int) -> torch.Tensor:
    """The move/paste transform (§8.1, §8.5): nearest-resize by r, translate, crop/pad back."""
    size = tuple(x.shape[-2:])
    return crop_or_pad(shift(resize_nearest(x, scaled_size(size, r)), dy, dx), size)


def vae_scale(vae: torch.nn.Module) -> float:
    """The latent scaling factor: the VAE config's (SD1.5 ships 0.18215), else SD1.5's."""
    config = getattr(vae, "config", None)
    return float(getattr(config, "scaling_factor", None) or VAE_SCALE)


@torch.no_grad()
def vae_encode(vae: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """z_0 = scaling factor · posterior mean (§1; 0.18215 for SD1.5)."""
    return vae.encode(x.to(vae.dtype)).latent_dist.mean * vae_scale(vae)


@torch.no_grad()
def vae_decode(vae: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Decode to [0, 1] (§1)."""
    return (vae.decode(z.to(vae.dtype) / vae_scale(vae)).sample / 2 + 0.5).clamp(0, 1)
