"""Typed edit requests (one per task) and the edit result.

Images arrive as PIL images in the caller's pixels, masks as PIL images (any mode; nonzero means
inside) of the size of the image they belong to. A request holds its images as shown (EXIF
orientation applied) and in RGB, by `diffeditor.inputs`' rules, the same as the API's and the
CLI's. The parameter models come from `diffeditor.tasks` and are already range-checked;
`validate()` checks what depends on the images (mask sizes, empty masks, points inside the image,
an offset that keeps the object in the frame) and raises `InvalidInput` naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, Union

from PIL import Image

from diffeditor.inputs import MASK_NAMES, InputError, check_edit, check_file_names, oriented, to_rgb
from diffeditor.tasks import (
    FILES_BY_TASK,
    AppearanceParams,
    CommonParams,
    DragParams,
    LandmarkParams,
    MoveParams,
    PasteParams,
)
from engine.errors import InvalidInput


def as_invalid_input(exc: InputError) -> InvalidInput:
    """An input rule broken (`diffeditor.inputs.InputError`) as the engine's error."""
    return InvalidInput(exc.field, exc.message)


@contextmanager
def invalid_input() -> Iterator[None]:
    try:
        yield
    except InputError as exc:
        raise as_invalid_input(exc) from None


class _Request:
    """What every task's request shares: its images normalised once, and the input rules. (No
    dataclass fields here: each request lists its own, in its positional order.)"""

    params: CommonParams  # a plain annotation: each subclass's dataclass field

    def __post_init__(self) -> None:
        with invalid_input():
            for name, img in self.files().items():
                img = oriented(img)
                # object.__setattr__: the dataclass is frozen; this is its construction.
                object.__setattr__(self, name, img if name in MASK_NAMES else to_rgb(name, img))

    def files(self) -> dict[str, Image.Image]:
        """The inputs given, by their API/CLI name."""
        return {f.name: v for f in fields(self) if isinstance(v := getattr(self, f.name), Image.Image)}

    def validate(self) -> None:
        files = self.files()
        with invalid_input():
            check_file_names(self.params.task, files)  # type: ignore[attr-defined]
            check_edit(self.params, files)


@dataclass(frozen=True)
class MoveRequest(_Request):
    image: Image.Image
    mask: Image.Image
    params: MoveParams
    region_mask: Image.Image | None = None
    image_prompt: Image.Image | None = None


@dataclass(frozen=True)
class DragRequest(_Request):
    image: Image.Image
    mask: Image.Image
    params: DragParams
    image_prompt: Image.Image | None = None


@dataclass(frozen=True)
class LandmarkRequest(_Request):
    image: Image.Image
    params: LandmarkParams
    image_prompt: Image.Image | None = None


@dataclass(frozen=True)
class AppearanceRequest(_Request):
    image: Image.Image
    mask: Image.Image
    reference: Image.Image
    reference_mask: Image.Image
    params: AppearanceParams
    image_prompt: Image.Image | None = None


@dataclass(frozen=True)
class PasteRequest(_Request):
    image: Image.Image
    reference: Image.Image
    reference_mask: Image.Image
    params: PasteParams
    image_prompt: Image.Image | None = None


EditRequest = Union[MoveRequest, DragRequest, LandmarkRequest, AppearanceRequest, PasteRequest]

_REQUEST_BY_TASK: dict[str, type] = {
    "move": MoveRequest,
    "drag": DragRequest,
    "landmark": LandmarkRequest,
    "appearance": AppearanceRequest,
    "paste": PasteRequest,
}


def request_from_files(params: CommonParams, files: dict[str, Image.Image]) -> EditRequest:
    """Build the task's request from its params and named images (the API's part names).

    A file the task does not take, or a missing required one, raises InvalidInput naming it.
    """
    task = params.task  # type: ignore[attr-defined]
    given = {name: img for name, img in files.items() if img is not None}
    with invalid_input():
        check_file_names(task, given)
    required, optional = FILES_BY_TASK[task]
    kwargs: dict[str, Any] = {name: given.get(name) for name in (*required, *optional)}
    return _REQUEST_BY_TASK[task](params=params, **kwargs)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


@dataclass
class EditStats:
    """Per-stage wall seconds and network evaluations of one edit (the CLI's `--stats` JSON)."""

    working_size: tuple[int, int] = (0, 0)
    seconds: dict[str, float] = field(default_factory=dict)
    evaluations: dict[str, int] = field(
        default_factory=lambda: {
            "inversion": 0,
            "sampling": 0,
            "guidance_forward": 0,
            "guidance_backward": 0,
            "rollback": 0,
        }
    )
    inversion_cached: bool = False
    cache_bytes: int = 0  # what the edit's inversion cache entry really holds (latents, K/V, F_ref)
    # The edit's cost in full UNet forwards at batch 1 at its working size, and the release's loop
    # for the same schedule at the same per-call costs (engine/cost.py); None before a first edit.
    unet_equivalents: float | None = None
    release_unet_equivalents: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "working_size": list(self.working_size),
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "evaluations": dict(self.evaluations),
            "inversion_cached": self.inversion_cached,
            "cache_bytes": self.cache_bytes,
            "unet_equivalents": _round(self.unet_equivalents),
            "release_unet_equivalents": _round(self.release_unet_equivalents),
        }


@dataclass
class EditResult:
    """The edited image at the input image's size (the edit runs at `stats.working_size` and is resized
    back, docs/deviations.md), the seed used and per-stage statistics."""

    image: Image.Image
    seed: int
    params: CommonParams
    stats: EditStats
