"""Memory an edit will need, estimated before it starts, so that a working size the device cannot
hold is refused with a clear error instead of failing mid-edit (issue 13).

    need = new cache entry (exact, from the UNet's layout)  + guided-pass activations (measured)
    have = the device's free memory + what the inversion cache could evict

The cache entry (latents, decoder self-attention K/V at the injected steps, native F_ref at the
guided steps) is computed from the UNet's blocks and equals `Inversion.nbytes()` of the entry the
edit then builds (tested). The activations of the one guided pass (the autograd graph from z to
up_blocks[2], the largest transient of an edit) grow linearly with the latent's pixels: the editor
measures the bytes autograd saves at two small sizes once (saved-tensor hooks, weights left out)
and extrapolates; the grid-resolution features the energies compare (one map per image plus the
current one, and about as much again for the energies' own intermediates) are added from the
layout. A margin covers the allocator's fragmentation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from engine.features import FEATURE_BLOCKS, decoder_features
from engine.tasks.plan import TaskContext

MARGIN = 1.25  # the caching allocator's fragmentation and the estimate's own error
ENERGY_COPIES = 2  # the energies' intermediates at the grid, per compared map (cosines, masks)


def _grids(size: tuple[int, int]) -> TaskContext:
    """The latent and guidance grids of a working size, by the tasks' own rule."""
    return TaskContext(size=size, input_size=size, device=torch.device("cpu"))


def _up_block_layout(unet: nn.Module, latent: tuple[int, int]) -> list[tuple[tuple[int, int], int, list[int]]]:
    """Per up block: the (h, w) it runs at, its output channels after its upsampler's resolution
    change, and the inner widths of its banked self-attention layers (attn1)."""
    h, w = latent
    for block in unet.down_blocks:
        if getattr(block, "downsamplers", None):
            h, w = math.ceil(h / 2), math.ceil(w / 2)
    layout = []
    for block in unet.up_blocks:
        widths = []
        for attention in getattr(block, "attentions", None) or []:
            widths += [tb.attn1.to_k.out_features for tb in attention.transformer_blocks]
        out_hw = (h * 2, w * 2) if getattr(block, "upsamplers", None) else (h, w)
        layout.append(((h, w), block.resnets[-1].out_channels, widths))
        h, w = out_hw
    return layout


def entry_bytes(
    unet: nn.Module,
    size: tuple[int, int],
    images: int,
    steps: int,
    kv_steps: int,
    guided_steps: int,
    dtype: torch.dtype,
) -> int:
    """Bytes of the inversion cache entry an edit builds: Z_inv[0..N] in fp32, K and V of every
    banked layer at `kv_steps` steps, and the native F_ref levels at `guided_steps` steps."""
    item = torch.empty((), dtype=dtype).element_size()
    lh, lw = _grids(size).latent
    latents = (steps + 1) * images * unet.config.in_channels * lh * lw * 4
    layout = _up_block_layout(unet, (lh, lw))
    # Banked: every up block's attn1 (up_blocks.1–3 in SD1.5, §3.3), K and V of (B, h·w, width).
    kv = sum(2 * images * h * w * width * item for (h, w), _, widths in layout for width in widths)
    features = 0
    for index in FEATURE_BLOCKS:
        (h, w), channels, _ = layout[index]
        scale = 2 if getattr(unet.up_blocks[index], "upsamplers", None) else 1
        features += images * channels * h * scale * w * scale * item
    return latents + kv * kv_steps + features * guided_steps


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _recorder(saved: dict[int, int], params: set[int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """A pack hook noting each saved storage's bytes (weights excepted) and saving it unchanged."""

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            saved[st.data_ptr()] = st.nbytes()
        return t

    return pack


class ActivationModel:
    """Bytes autograd saves in one guided pass, a + b·(latent pixels), measured on the model."""

    def __init__(self, unet: nn.Module, context: torch.Tensor) -> None:
        params = {p.untyped_storage().data_ptr() for p in unet.parameters()}
        dtype = next(unet.parameters()).dtype
        points = []
        for side in (8, 16):
            saved: dict[int, int] = {}
            z = torch.zeros(1, unet.config.in_channels, side, side, device=context.device, dtype=dtype)
            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(_recorder(saved, params), _same):
                decoder_features(unet, z.requires_grad_(True), 500, context)
            points.append((side * side, sum(saved.values())))
        (x0, y0), (x1, y1) = points
        self.per_pixel = max(0.0, (y1 - y0) / (x1 - x0))
        self.fixed = max(0.0, y0 - self.per_pixel * x0)

    def __call__(self, size: tuple[int, int]) -> int:
        lh, lw = _grids(size).latent
        return int(self.fixed + self.per_pixel * lh * lw)


def grid_feature_bytes(unet: nn.Module, size: tuple[int, int], images: int, dtype: torch.dtype) -> int:
    """The feature maps at the guidance grid one guided pass holds: F_ref per image and F_cur,
    with the energies' intermediates."""
    item = torch.empty((), dtype=dtype).element_size()
    grids = _grids(size)
    layout = _up_block_layout(unet, grids.latent)
    channels = sum(layout[i][1] for i in FEATURE_BLOCKS)
    gh, gw = grids.grid
    return (images + 1) * (1 + ENERGY_COPIES) * channels * gh * gw * item


def free_bytes(device: torch.device) -> int | None:
    """What the device can still give: CUDA's free memory plus what torch's allocator holds unused;
    on the CPU the kernel's MemAvailable. None where unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None
