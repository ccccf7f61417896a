"""The `demo` model: a small SD1.5-family model trained on the shapes world, shipped in the package.

Its weights live in `engine/weights/shapes/` (fp16 safetensors, a model-set folder in the same
layout as real weights, with a model card `README.md`) and load through the same loaders.
`diffeditor train-demo OUT` (engine.train_demo) reproduces them; `diffeditor demo-model DIR`
copies them out.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from engine.errors import ModelLoadError
from engine.model_sets import read_marker

DEMO_SPEC = "demo"
SHAPES_DIR = Path(__file__).parent / "weights" / "shapes"
MARKER_NAME = "diffeditor-shapes"


def shapes_model_dir() -> Path:
    """The shipped shapes-world model folder (checked: a broken install names the fix)."""
    if read_marker(SHAPES_DIR) is None:
        raise ModelLoadError(
            f"the shipped demo model is missing from {SHAPES_DIR} (an incomplete install or checkout); "
            "reinstall the package, or rebuild it with `diffeditor train-demo OUT` and pass OUT/model"
        )
    return SHAPES_DIR


def write_shapes_model(path: str | os.PathLike[str]) -> Path:
    """Copy the shipped demo model set into `path` (created) and return it."""
    path = Path(path)
    shutil.copytree(shapes_model_dir(), path, dirs_exist_ok=True)
    return path
