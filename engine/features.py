"""The guidance feature extractor ("estimator", §5.1): the same UNet weights with plain attention,
stopped right after `up_blocks[2]` (no second UNet copy, §14.14). Forward hooks capture the outputs
of up_blocks[1] and up_blocks[2] (after their upsamplers); the hook on up_blocks[2] ends the
forward pass by raising, so up_blocks[3] and conv_out are never computed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_BLOCKS = (1, 2)  # up_ft_index = [1, 2]


class _Stop(Exception):
    pass


def decoder_features(unet: nn.Module, z: torch.Tensor, t: int, context: torch.Tensor) -> list[torch.Tensor]:
    """Features of up_blocks[1] and [2] for latents z at timestep t, at the resolution the UNet
    produced them (H/16 and H/8 for SD1.5). Gradients flow to z when the caller enables them.
    The cache keeps these native maps (16× smaller than on the grid at SD1.5's widths)."""
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
        captured.append(output)
        if len(captured) == len(FEATURE_BLOCKS):
            raise _Stop

    handles = [unet.up_blocks[i].register_forward_hook(hook) for i in FEATURE_BLOCKS]
    try:
        unet(z, t, encoder_hidden_states=context)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return captured


def on_grid(features: list[torch.Tensor], grid: tuple[int, int]) -> list[torch.Tensor]:
    """The feature maps nearest-resized to the guidance grid G (H/4 × W/4), where the energies
    compare them (§5.1). Nearest resize copies values, so resizing at use is exact."""
    return [F.interpolate(f, size=grid, mode="nearest") for f in features]
