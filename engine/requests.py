"""Typed edit requests (one per task) and the edit result.

Images arrive as PIL images in the caller's pixels; masks as PIL images (any mode; nonzero means
inside) of the same size as the image they belong to. The parameter models come from
`diffeditor.tasks` and are already range-checked; `validate()` checks what depends on the images
(mask sizes, empty masks, points inside the image) and raises `InvalidInput` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
from PIL import Image

from diffeditor.tasks import (
    AppearanceParams,
    CommonParams,
    DragParams,
    LandmarkParams,
    MoveParams,
    PasteParams,
)
from engine.errors import InvalidInput


def mask_array(mask: Image.Image) -> np.ndarray:
    """Binary (bool) array of a mask image: any nonzero channel value is inside (§8.6)."""
    arr = np.asarray(mask)
    if arr.ndim == 3:
        if arr.shape[2] in (2, 4):  # alpha present: transparent pixels are outside
            arr = arr[..., :-1].max(axis=2) * (arr[..., -1] > 0)
        else:
            arr = arr.max(axis=2)
    return arr > 0


def _check_mask(name: str, mask: Image.Image | None, owner_name: str, owner: Image.Image) -> None:
    if mask is None:
        raise InvalidInput(name, "is required for this task")
    if mask.size != owner.size:
        raise InvalidInput(
            name, f"size {mask.size[0]}x{mask.size[1]} does not match {owner_name} size {owner.size[0]}x{owner.size[1]}"
        )
    if not mask_array(mask).any():
        raise InvalidInput(name, "is empty (no nonzero pixel)")


def _check_points(name: str, points: list[list[float]], image: Image.Image) -> None:
    w, h = image.size
    for k, (x1, y1, x2, y2) in enumerate(points):
        for x, y in ((x1, y1), (x2, y2)):
            if not (0 <= x < w and 0 <= y < h):
                raise InvalidInput(name, f"point pair {k} has ({x:g}, {y:g}) outside the {w}x{h} image")


@dataclass(frozen=True)
class MoveRequest:
    image: Image.Image
    mask: Image.Image
    params: MoveParams
    region_mask: Image.Image | None = None
    image_prompt: Image.Image | None = None

    def validate(self) -> None:
        _check_mask("mask", self.mask, "image", self.image)
        if self.region_mask is not None:
            _check_mask("region_mask", self.region_mask, "image", self.image)
        dx, dy = self.params.offset
        w, h = self.image.size
        if abs(dx) >= w or abs(dy) >= h:
            raise InvalidInput("offset", f"({dx:g}, {dy:g}) moves the object wholly outside the {w}x{h} image")


@dataclass(frozen=True)
class DragRequest:
    image: Image.Image
    mask: Image.Image
    params: DragParams
    image_prompt: Image.Image | None = None

    def validate(self) -> None:
        _check_mask("mask", self.mask, "image", self.image)
        _check_points("points", self.params.points, self.image)


@dataclass(frozen=True)
class LandmarkRequest:
    image: Image.Image
    params: LandmarkParams
    image_prompt: Image.Image | None = None

    def validate(self) -> None:
        _check_points("points", self.params.points, self.image)


@dataclass(frozen=True)
class AppearanceRequest:
    image: Image.Image
    mask: Image.Image
    reference: Image.Image
    reference_mask: Image.Image
    params: AppearanceParams
    image_prompt: Image.Image | None = None

    def validate(self) -> None:
        if self.reference is None:
            raise InvalidInput("reference", "is required for this task")
        _check_mask("mask", self.mask, "image", self.image)
        _check_mask("reference_mask", self.reference_mask, "reference", self.reference)


@dataclass(frozen=True)
class PasteRequest:
    image: Image.Image
    reference: Image.Image
    reference_mask: Image.Image
    params: PasteParams
    image_prompt: Image.Image | None = None

    def validate(self) -> None:
        if self.reference is None:
            raise InvalidInput("reference", "is required for this task")
        _check_mask("reference_mask", self.reference_mask, "reference", self.reference)
        # The object's box through the paste transform (reference → base frame, scaled by r about
        # the centre, shifted); engine.tasks.paste checks again on the working grid.
        ys, xs = np.nonzero(mask_array(self.reference_mask))
        rw, rh = self.reference.size
        bw, bh = self.image.size
        r, (dx, dy) = self.params.scale, self.params.offset
        x0, x1 = ((v / rw * bw - bw / 2) * r + bw / 2 + dx for v in (xs.min(), xs.max() + 1))
        y0, y1 = ((v / rh * bh - bh / 2) * r + bh / 2 + dy for v in (ys.min(), ys.max() + 1))
        if x1 <= 0 or y1 <= 0 or x0 >= bw or y0 >= bh:
            raise InvalidInput("offset", f"({dx:g}, {dy:g}) puts the pasted object wholly outside the {bw}x{bh} image")


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

    Unknown file names are an error; missing required ones raise InvalidInput naming them.
    """
    from diffeditor.tasks import FILES_BY_TASK

    task = params.task  # type: ignore[attr-defined]
    required, optional = FILES_BY_TASK[task]
    for name in files:
        if name not in required and name not in optional:
            raise InvalidInput(name, f"is not an input of task {task!r}")
    for name in required:
        if files.get(name) is None:
            raise InvalidInput(name, "is required for this task")
    kwargs: dict[str, Any] = {name: files.get(name) for name in (*required, *optional)}
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
