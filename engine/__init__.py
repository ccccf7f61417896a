"""diffeditor engine: DiffEditor (Mou et al., CVPR 2024) on Stable Diffusion 1.5, as a plain library.

Public API (imported lazily so that `engine.errors` and friends stay cheap to import):

    models = load_models("demo")                  # or a folder, a hub id, a .safetensors file
    editor = Editor(models)
    result = editor.edit(MoveRequest(image, mask, MoveParams(offset=[40, 0])), progress=cb)
    result.image, result.seed, result.stats

Parameter models (names, defaults, ranges) live in `diffeditor.tasks`, shared with the API.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Editor": "engine.editor",
    "EditResult": "engine.requests",
    "EditStats": "engine.requests",
    "MoveRequest": "engine.requests",
    "DragRequest": "engine.requests",
    "LandmarkRequest": "engine.requests",
    "AppearanceRequest": "engine.requests",
    "PasteRequest": "engine.requests",
    "request_from_files": "engine.requests",
    "Models": "engine.components",
    "load_models": "engine.models",
    "EngineError": "engine.errors",
    "InvalidInput": "engine.errors",
    "ModelLoadError": "engine.errors",
    "Canceled": "engine.errors",
    "NonFiniteLatent": "engine.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
