"""The shapes world's fixed sample scenes, one per case task, as users get them: from the API
(`/v1/samples`, the web editor's one-click examples) and on disk (`diffeditor samples DIR`, the
README's command-line examples). Torch-free: the API process renders them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from diffeditor.cases import CASE_TASKS, sample

SAMPLE_SIZE = 128  # pixels per side: the demo model is trained at 128 px
SAMPLE_RESOLUTION = 128  # the samples' max_resolution, for the same reason

# Short titles for people. They do not name the object: which object a sample holds is the
# shapes world's choice (its seed), not this module's.
_TITLES = {
    "move": "Move an object",
    "resize": "Resize an object",
    "drag": "Stretch a shape by its edge",
    "landmark": "Move an eye of a face",
    "appearance": "Recolour from a reference",
    "paste": "Paste from a reference",
}


@dataclass(frozen=True)
class Sample:
    name: str
    task: str  # the API task (resize is a move with a scale)
    title: str
    params: dict[str, Any]  # JSON-ready, `task` included
    images: dict[str, Image.Image]  # by multipart field name


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python numbers, tuples to lists, all the way down."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _title(name: str, params: dict[str, Any]) -> str:
    title = _TITLES.get(name, name.capitalize())
    scale = params.get("scale")
    if name == "resize" and isinstance(scale, (int, float)) and scale != 1:
        title += f" ({scale:g}×)"
    return title


@lru_cache(maxsize=len(CASE_TASKS))
def get_sample(name: str) -> Sample:
    """The rendered sample `name` (one of CASE_TASKS; raises KeyError otherwise)."""
    if name not in CASE_TASKS:
        raise KeyError(name)
    case = sample(name, size=SAMPLE_SIZE)  # type: ignore[arg-type]
    params = _plain({**case.params, "max_resolution": SAMPLE_RESOLUTION})
    return Sample(name=name, task=case.engine_task, title=_title(name, params), params=params, images=case.images)


def write_samples(folder: Path) -> list[Path]:
    """FOLDER/<name>/<field>.png and params.json for every sample; returns the folders written."""
    written = []
    for name in CASE_TASKS:
        s = get_sample(name)
        out = Path(folder) / name
        out.mkdir(parents=True, exist_ok=True)
        for field, img in s.images.items():
            img.save(out / f"{field}.png")
        (out / "params.json").write_text(json.dumps(s.params, indent=2) + "\n")
        written.append(out)
    return written


def main(argv: list[str]) -> int:
    """`diffeditor samples DIR`."""
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: diffeditor samples DIR   (writes DIR/<sample>/<file>.png and params.json)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    for out in write_samples(Path(argv[0])):
        s = get_sample(out.name)
        print(f"{out}: {s.title} ({s.task}): {', '.join(sorted(s.images))}, params.json")
    return 0
