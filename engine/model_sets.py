"""What every model-set folder the project builds shares (beside SD1.5's architecture, in
`engine.sd15`): the `model_index.json` diffusers reads, and the marker file that says which
project-built model a folder holds (the trained shapes-world demo model or the tiny random test
model)."""

from __future__ import annotations

import json
from pathlib import Path

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
