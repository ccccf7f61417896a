"""What every model-set folder the project builds shares: SD1.5's architecture configs, the
`model_index.json` diffusers reads, and the marker file that says which project-built model a
folder holds (the trained shapes-world demo model or the tiny random test model)."""

from __future__ import annotations

import json
from pathlib import Path

SD15_CONFIG_DIR = Path(__file__).parent / "configs" / "sd15"
# SD1.5's UNet block layout, which every project-built UNet keeps so that the engine's hooks apply:
# three cross-attention down blocks and a plain one, mirrored up (§5.1: up_blocks[1], [2] guide).
SD15_DOWN_BLOCKS = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
SD15_UP_BLOCKS = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")
MARKER = "demo_model.json"  # {"name", "version", "seed", "random_weights", "resolution"?}; absent in real weights


def model_index() -> dict:
    import diffusers

    return {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def read_marker(path: Path) -> dict | None:
    """The marker of a model-set folder, or None for real weights."""
    marker = Path(path) / MARKER
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
