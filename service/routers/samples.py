"""`/v1/samples`: the shapes world's fixed sample scenes (`diffeditor.cases.sample`), one per case
task, with parameters ready to submit and their images and masks as PNGs. The web editor loads
them with one click; the README's REST example submits one.

Each scene is rendered once per process, on first use. Like `/v1/tasks`, these need no API key:
they are the same for everyone and reveal nothing.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from diffeditor.cases import CASE_TASKS
from diffeditor.samples import SAMPLE_SIZE, Sample, get_sample
from service.errors import ApiError
from service.schemas import ErrorOut, SampleOut

router = APIRouter(prefix="/v1/samples", tags=["samples"])

MAX_NAME_SHOWN = 64


@lru_cache(maxsize=len(CASE_TASKS))
def _pngs(name: str) -> dict[str, bytes]:
    buf: dict[str, bytes] = {}
    for field, img in get_sample(name).images.items():
        out = io.BytesIO()
        img.save(out, format="PNG")
        buf[field] = out.getvalue()
    return buf


def _known(name: str) -> Sample:
    if name not in CASE_TASKS:
        raise ApiError(
            404,
            "not_found",
            f"no sample {name[:MAX_NAME_SHOWN]!r}: the samples are {', '.join(CASE_TASKS)}",
            "name",
        )
    return get_sample(name)


def _file_url(request: Request, name: str, field: str) -> str:
    return f"{request.scope.get('root_path', '')}/v1/samples/{name}/{field}.png"


def _out(request: Request, s: Sample) -> dict[str, Any]:
    return {
        "name": s.name,
        "task": s.task,
        "title": s.title,
        "size": SAMPLE_SIZE,
        "params": s.params,
        "files": {field: _file_url(request, s.name, field) for field in s.images},
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
    png = _pngs(s.name).get(field)
    if png is None:
        raise ApiError(
            404,
            "not_found",
            f"sample {name!r} has no file {field[:MAX_NAME_SHOWN]!r}: it has {', '.join(s.images)}",
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
