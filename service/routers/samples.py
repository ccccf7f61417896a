"""`/v1/samples`: the shapes world's fixed sample scenes (`diffeditor.cases.sample`), one per case
task, with parameters ready to submit and their images and masks as PNGs. The web editor loads
them with one click; the README's REST example submits one.

Each scene is rendered once per process, on first use. Like `/v1/tasks`, these need no API key:
they are the same for everyone and reveal nothing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from diffeditor.cases import CASE_TASKS, sample
from service.errors import ApiError
from service.schemas import ErrorOut, SampleOut

router = APIRouter(prefix="/v1/samples", tags=["samples"])

SAMPLE_SIZE = 128  # pixels per side: the demo model is trained at 128 px
SAMPLE_RESOLUTION = 128  # the samples' max_resolution, for the same reason
MAX_NAME_SHOWN = 64

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
class _Sample:
    name: str
    task: str  # the API task (resize is a move with a scale)
    title: str
    params: dict[str, Any]
    pngs: dict[str, bytes]  # by multipart field name


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python numbers, tuples to lists, all the way down."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _png(img: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _title(name: str, params: dict[str, Any]) -> str:
    title = _TITLES.get(name, name.capitalize())
    scale = params.get("scale")
    if name == "resize" and isinstance(scale, (int, float)) and scale != 1:
        title += f" ({scale:g}×)"
    return title


@lru_cache(maxsize=len(CASE_TASKS))
def _sample(name: str) -> _Sample:
    """The rendered sample `name` (one of CASE_TASKS: callers check, so the cache stays small)."""
    case = sample(name, size=SAMPLE_SIZE)  # type: ignore[arg-type]
    params = _plain({**case.params, "max_resolution": SAMPLE_RESOLUTION})
    return _Sample(
        name=name,
        task=case.engine_task,
        title=_title(name, params),
        params=params,
        pngs={field: _png(img) for field, img in case.images.items()},
    )


def _known(name: str) -> _Sample:
    if name not in CASE_TASKS:
        raise ApiError(
            404,
            "not_found",
            f"no sample {name[:MAX_NAME_SHOWN]!r}: the samples are {', '.join(CASE_TASKS)}",
            "name",
        )
    return _sample(name)


def _file_url(request: Request, name: str, field: str) -> str:
    return f"{request.scope.get('root_path', '')}/v1/samples/{name}/{field}.png"


def _out(request: Request, s: _Sample) -> dict[str, Any]:
    return {
        "name": s.name,
        "task": s.task,
        "title": s.title,
        "size": SAMPLE_SIZE,
        "params": s.params,
        "files": {field: _file_url(request, s.name, field) for field in s.pngs},
    }


@router.get("", response_model=list[SampleOut], summary="Sample scenes, one per task, ready to submit")
def list_samples(request: Request) -> list[dict[str, Any]]:
    """The shapes world's fixed scenes: for each, the API task, parameters to send as the `params`
    part (with `max_resolution` 128, the size the demo model is trained at) and the URL of each
    file part's PNG. Submitting a sample's files with its params is a complete, valid edit."""
    return [_out(request, _known(name)) for name in CASE_TASKS]


@router.get(
    "/{name}/{field}.png",
    summary="One image or mask of a sample scene",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The PNG, at the sample's size."},
        404: {"model": ErrorOut, "description": "No such sample, or the sample has no such file."},
    },
)
def sample_file(
    name: Annotated[str, Path(description="The sample: " + ", ".join(CASE_TASKS) + ".")],
    field: Annotated[str, Path(description="A file part the sample has (its `files`): image, mask, reference, ...")],
) -> Response:
    s = _known(name)
    png = s.pngs.get(field)
    if png is None:
        raise ApiError(
            404,
            "not_found",
            f"sample {name!r} has no file {field[:MAX_NAME_SHOWN]!r}: it has {', '.join(s.pngs)}",
            "field",
        )
    return Response(
        png,
        media_type="image/png",
        headers={
            "Cache-Control": "public, max-age=3600",
            "Content-Disposition": f'inline; filename="sample-{name}-{field}.png"',
        },
    )
