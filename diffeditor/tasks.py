"""The edit parameters: one pydantic model per task, the single source of names, defaults and
ranges for the engine, the CLI, the REST API and the web page.

This module is torch-free on purpose: the API process imports it, the engine imports it, and the
OpenAPI schema (and so the web page's prefilled defaults) is generated from it.

Defaults are the authors' UI defaults (algorithm document §8, §11.3). Coordinates (offsets,
points) are in the *input image's* pixels; the engine scales them to the working size.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

TASKS = ("move", "drag", "landmark", "appearance", "paste")

MAX_PROMPT_CHARS = 1000
MAX_POINTS = 68  # the face task drags all 68 landmarks (§8.3)

# Point pair: handle (x1, y1) → target (x2, y2), input-image pixels.
PointPair = Annotated[list[float], Field(min_length=4, max_length=4)]
Offset = Annotated[list[float], Field(min_length=2, max_length=2)]


class CommonParams(BaseModel):
    """Knobs every task has. Names mirror the CLI options in snake_case."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field("", max_length=MAX_PROMPT_CHARS, description="Text prompt describing the image.")
    seed: int | None = Field(
        None, ge=0, le=2**32 - 1, description="Random seed; omitted means a random one, reported back."
    )
    steps: int = Field(50, ge=4, le=200, description="DDIM steps (inversion and sampling). §4 is defined for 50.")
    max_resolution: int | None = Field(
        None,
        ge=64,
        le=1024,
        description="Working size: area about max_resolution², sides multiples of 64. Omitted: the worker's "
        "default for its model and device (GET /v1/info `default_resolution`; the demo model 128, real "
        "weights 768 on a GPU, 512 on a CPU).",
    )
    guidance_strength: float = Field(
        1.0,
        ge=0,
        le=20,
        description="Energy guidance scale s_E (the UI's ×1e3 value); 0 disables guidance and time travel.",
    )
    sde_strength: float = Field(0.4, ge=0, le=1, description="Regional SDE η inside the edit region (steps 11–19).")
    cfg_scale: float = Field(4.0, ge=0, le=30, description="Classifier-free guidance scale w.")
    ip_scale: float = Field(
        0.1, ge=0, le=2, description="Image-prompt scale λ_ip (sampling steps 10–19); 0 turns it off."
    )

    @field_validator("prompt")
    @classmethod
    def _no_control_chars(cls, v: str) -> str:
        if any(ord(c) < 32 and c not in "\t\n" for c in v):
            raise ValueError("prompt must not contain control characters")
        return v


class MoveParams(CommonParams):
    """Object moving and resizing (§8.1). Needs `image`, `mask`; optional `region_mask`."""

    task: Literal["move"] = "move"
    offset: Offset = Field(..., description="Move vector [dx, dy] in input pixels.")
    scale: float = Field(1.0, gt=0, le=10, description="Resize factor r of the moved object.")
    guidance_strength: float = Field(0.5, ge=0, le=20)
    w_edit: float = Field(4.0, ge=0, le=100)
    w_content: float = Field(6.0, ge=0, le=100)
    w_contrast: float = Field(0.2, ge=0, le=100)
    w_inpaint: float = Field(0.8, ge=0, le=100)


class DragParams(CommonParams):
    """Content dragging with point pairs (§8.2). Needs `image`, `mask` (editable region)."""

    task: Literal["drag"] = "drag"
    points: list[PointPair] = Field(..., min_length=1, max_length=MAX_POINTS, description="[[x1, y1, x2, y2], ...]")
    guidance_strength: float = Field(2.0, ge=0, le=20)
    w_edit: float = Field(4.0, ge=0, le=100)
    w_content: float = Field(6.0, ge=0, le=100)
    w_inpaint: float = Field(0.2, ge=0, le=100)


class LandmarkParams(CommonParams):
    """Face landmark dragging (§8.3): caller-supplied landmark pairs, global SDE. Needs `image`."""

    task: Literal["landmark"] = "landmark"
    prompt: str = Field("a photo of a human face", max_length=MAX_PROMPT_CHARS)
    points: list[PointPair] = Field(..., min_length=1, max_length=MAX_POINTS, description="[[x1, y1, x2, y2], ...]")
    guidance_strength: float = Field(3.0, ge=0, le=20)
    sde_strength: float = Field(0.2, ge=0, le=1)
    ip_scale: float = Field(0.05, ge=0, le=2)
    w_edit: float = Field(12.0, ge=0, le=100)


class AppearanceParams(CommonParams):
    """Appearance replacing (§8.4). Needs `image`, `mask`, `reference`, `reference_mask`."""

    task: Literal["appearance"] = "appearance"
    reference_prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    guidance_strength: float = Field(2.0, ge=0, le=20)
    cfg_scale: float = Field(5.0, ge=0, le=30)
    w_edit: float = Field(3.5, ge=0, le=100)
    w_content: float = Field(5.0, ge=0, le=100)


class PasteParams(CommonParams):
    """Object pasting (§8.5). Needs `image`, `reference`, `reference_mask` (drawn on the reference)."""

    task: Literal["paste"] = "paste"
    reference_prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    offset: Offset = Field([0.0, 0.0], description="Paste offset [dx, dy] in input pixels.")
    scale: float = Field(1.0, gt=0, le=1.5, description="Resize factor of the pasted object (0 < r ≤ 1.5).")
    guidance_strength: float = Field(1.5, ge=0, le=20)
    w_edit: float = Field(4.0, ge=0, le=100)
    w_content: float = Field(6.0, ge=0, le=100)


EditParams = Annotated[
    Union[MoveParams, DragParams, LandmarkParams, AppearanceParams, PasteParams],
    Field(discriminator="task"),
]
PARAMS_BY_TASK: dict[str, type[CommonParams]] = {
    "move": MoveParams,
    "drag": DragParams,
    "landmark": LandmarkParams,
    "appearance": AppearanceParams,
    "paste": PasteParams,
}

# Which file inputs each task takes: (required, optional). Names are the API's multipart parts
# and the CLI's options (with dashes).
FILES_BY_TASK: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "move": (("image", "mask"), ("region_mask", "image_prompt")),
    "drag": (("image", "mask"), ("image_prompt",)),
    "landmark": (("image",), ("image_prompt",)),
    "appearance": (("image", "mask", "reference", "reference_mask"), ("image_prompt",)),
    "paste": (("image", "reference", "reference_mask"), ("image_prompt",)),
}

# Which image each mask must match in size.
MASK_OWNER = {"mask": "image", "region_mask": "image", "reference_mask": "reference"}

edit_params_adapter: TypeAdapter[EditParams] = TypeAdapter(EditParams)


def field_suggestion(task: str, name: str) -> str | None:
    """The task's parameter closest to a misspelt `name` ("ofset" -> "offset"), if one is close."""
    model = PARAMS_BY_TASK.get(task)
    if model is None:
        return None
    close = difflib.get_close_matches(name, list(model.model_fields), n=1, cutoff=0.7)
    return close[0] if close else None


def parse_params(data: dict) -> CommonParams:
    """Validate a params dict (with its `task`) into the task's model; raises pydantic.ValidationError."""
    return edit_params_adapter.validate_python(data)
