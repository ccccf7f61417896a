"""Stable Diffusion 1.5's numbers that the engine's hooks and defaults depend on (§1, §5.1, §11.3).
A leaf: it imports nothing of the engine, so that every module can use it."""

from __future__ import annotations

from pathlib import Path

# SD1.5's architecture configs, shipped with the package (a single checkpoint file carries none).
SD15_CONFIG_DIR = Path(__file__).parent / "configs" / "sd15"
# SD1.5's UNet block layout, which every project-built UNet keeps so that the engine's hooks apply:
# three cross-attention down blocks and a plain one, mirrored up (§5.1: up_blocks[1], [2] guide).
SD15_DOWN_BLOCKS = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
SD15_UP_BLOCKS = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")
# The text width the image-prompt weights are trained for: SD2.x (1024) and SDXL (2048) differ.
SD15_CROSS_ATTENTION_DIM = 768

GPU_DEFAULT_RESOLUTION = 768  # the authors' UI default (§11.3)
CPU_DEFAULT_RESOLUTION = 512  # SD1.5's native size: 768 takes minutes per edit on a CPU
