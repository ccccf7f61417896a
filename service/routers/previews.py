"""`GET /v1/edits/{id}/preview`: the running edit's latest step preview (service/jobs/previews.py).

A small JPEG of the sampler's x̂0 at the step named by `X-Preview-Step` ("15/50"), replaced every
`preview_every` sampling steps; the same images come as `preview` events on the job's event
stream. Owner rules as the status route; a job with no preview yet (queued, early, previews off,
or one that never ran) answers 404 `no_preview`. After the edit ends the last preview stays until
the job expires.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from service.auth import require_owner
from service.errors import ApiError
from service.jobs import previews
from service.jobs.context import JobContext
from service.routers.deps import error_responses, job_context, owned_job

router = APIRouter(prefix="/v1/edits", tags=["edits"])

STEP_HEADER = "X-Preview-Step"


@router.get(
    "/{job_id}/preview",
    summary="The running edit's latest step preview",
    response_class=Response,
    responses={
        200: {
            "content": {previews.MEDIA_TYPE: {}},
            "description": f"A small JPEG of the edit at the step in `{STEP_HEADER}` (`step/total`).",
            "headers": {STEP_HEADER: {"description": "The sampling step of this preview, as `step/total`."}},
        },
        **error_responses(401, 404, 503),
    },
)
async def get_preview(
    job_id: str,
    owner: str = Depends(require_owner),
    ctx: JobContext = Depends(job_context),
) -> Response:
    def read() -> Response:
        owned_job(ctx, job_id, owner)
        preview = previews.latest(ctx, job_id)
        if preview is None:
            raise ApiError(404, "no_preview", "the edit has no step preview yet; previews come while it samples")
        return Response(
            preview.jpeg,
            media_type=previews.MEDIA_TYPE,
            headers={"Cache-Control": "no-store", STEP_HEADER: f"{preview.step}/{preview.total}"},
        )

    return await run_in_threadpool(read)
