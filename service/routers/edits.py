"""`/v1/edits`: submit an edit, poll it, fetch its result, cancel it."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from diffeditor.tasks import TASKS
from service import idempotency, limits, result_media
from service.auth import require_owner
from service.errors import ApiError
from service.job_out import job_out
from service.jobs import lifecycle
from service.jobs.context import JobContext
from service.jobs.ids import new_job_id
from service.jobs.lifecycle import JobView
from service.jobs.status import FINISHED, JobStatus
from service.oversized_params import MAX_PARAMS_PART_BYTES, params_too_large
from service.routers.deps import error_responses, get_store, job_context, not_found, owned_job
from service.schemas import JobOut
from service.settings import Settings
from service.store import Store
from service.validation import FILE_NAMES, validate_edit
from service.webhooks import deliveries

log = logging.getLogger("diffeditor.api")

router = APIRouter(prefix="/v1/edits", tags=["edits"])


_FILE_DOCS = {
    "image": "The image to edit (every task).",
    "mask": "Object or editable-region mask on `image` (move, drag, appearance); nonzero pixels are inside.",
    "region_mask": "Optional reference-region mask on `image` (move).",
    "reference": "Reference image (appearance, paste).",
    "reference_mask": "Object mask on `reference` (appearance, paste).",
    "image_prompt": "Optional image prompt (any task).",
}

# The multipart body, described by hand: FastAPI cannot derive it from a body we parse ourselves
# (we do, to reject parts a task does not take and to stream-count bytes).
SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["params", "image"],
                    "properties": {
                        "params": {
                            "type": "string",
                            "description": (
                                "JSON object of edit parameters with its `task` ("
                                + ", ".join(TASKS)
                                + "). Schemas, defaults and ranges per task: GET /v1/tasks."
                            ),
                            "example": '{"task": "move", "offset": [40, 0], "prompt": "a cup on a table"}',
                        },
                        **{
                            name: {"type": "string", "format": "binary", "description": doc + " PNG, JPEG or WebP."}
                            for name, doc in _FILE_DOCS.items()
                        },
                    },
                },
                "encoding": {"params": {"contentType": "application/json"}},
            }
        },
    }
}


def _job_out(request: Request, view: JobView, store: Store | None = None, ctx: JobContext | None = None) -> JobOut:
    """The job's view as JSON; with `ctx`, its webhook's delivery log read too (not from async code)."""
    log = deliveries.log_for(ctx, view) if ctx is not None else None
    return job_out(view, request.scope.get("root_path", ""), store, webhook_log=log)


async def _read_parts(request: Request, settings: Settings) -> tuple[str | None, dict[str, bytes]]:
    """The multipart parts: the params text and the file parts' bytes, by name."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send multipart/form-data (a `params` JSON part and file parts), not {ctype.split(';')[0] or 'no content type'}",
        )
    try:
        form = await request.form(
            max_files=len(FILE_NAMES) + 1, max_fields=len(FILE_NAMES) + 1, max_part_size=MAX_PARAMS_PART_BYTES
        )
    except StarletteHTTPException as exc:  # malformed multipart, too many parts, an oversized text part
        if str(exc.detail).startswith("Part exceeded maximum size"):  # only text parts have a limit: params
            raise params_too_large() from None
        raise ApiError(400, "invalid_multipart", f"cannot read the multipart body: {exc.detail}") from None
    params_text: str | None = None
    uploads: dict[str, bytes] = {}
    seen: set[str] = set()
    try:
        for name, value in form.multi_items():
            if name in seen:
                raise ApiError(422, "duplicate_field", f"{name}: sent more than once", name)
            seen.add(name)
            if name == "params":
                if isinstance(value, UploadFile):  # a client may send the JSON as a file part
                    raw = await value.read(MAX_PARAMS_PART_BYTES + 1)
                    try:
                        value = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ApiError(400, "invalid_json", "params: not UTF-8 text", "params") from None
                params_text = value
            elif isinstance(value, UploadFile):
                if name not in FILE_NAMES:
                    raise ApiError(422, "unknown_field", f"{name}: not a part this API takes", name)
                if value.size is not None and value.size > settings.max_upload_bytes:
                    raise ApiError(
                        413,
                        "payload_too_large",
                        f"{name}: larger than {settings.max_upload_bytes} bytes per upload",
                        name,
                    )
                uploads[name] = await value.read()
            elif name in FILE_NAMES:
                raise ApiError(
                    422, "invalid_value", f"{name}: must be a file part (with a filename), not a text field", name
                )
            else:
                raise ApiError(422, "unknown_field", f"{name}: not a part this API takes", name)
    finally:
        await form.close()  # spooled temp files go now, whatever happened
    return params_text, uploads


def _submit(
    ctx: JobContext,
    store: Store,
    owner: str,
    idempotency_key: str | None,
    params_text: str | None,
    uploads: dict[str, bytes],
    links_base: str,
) -> tuple[JobView, bool]:
    """Validate, store the inputs and enqueue: the new job's view, or an earlier one's for a replayed
    Idempotency-Key (then True). `links_base`: the URL the client reached the API at, kept with a
    job that has a webhook so that its bodies' links are absolute."""
    fingerprint = ""  # a hash of every upload byte: only a keyed request needs one
    if idempotency_key is not None:
        idempotency.check_key(idempotency_key)
        fingerprint = idempotency.fingerprint(params_text or "", uploads)
        earlier = idempotency.earlier_job(ctx, owner, idempotency_key, fingerprint)
        if earlier is not None:
            return earlier, True

    edit = validate_edit(params_text, uploads, ctx.settings)
    limits.check_queue_caps(ctx, owner)
    job_id = new_job_id()
    if idempotency_key is not None:
        record = idempotency.IdempotencyRecord(fingerprint, job_id, time.time())
        if not idempotency.claim(ctx, owner, idempotency_key, record):
            # A concurrent request with the same key got there first.
            earlier = idempotency.earlier_job(ctx, owner, idempotency_key, fingerprint)
            if earlier is not None:
                return earlier, True
            raise ApiError(
                409,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed",
                "Idempotency-Key",
            )
    options = edit.options.model_dump(mode="json")
    if options.get("webhook"):
        options["links_base"] = links_base
    try:
        store.put_inputs(job_id, edit.files)
        view = lifecycle.enqueue(
            ctx,
            job_id=job_id,
            owner=owner,
            params=edit.params.model_dump(mode="json"),
            options=options,
        )
    except BaseException:
        if idempotency_key is not None:
            _quietly(idempotency.release, ctx, owner, idempotency_key)
        _quietly(store.delete, job_id)
        raise
    return view, False


def _quietly(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:  # cleanup after a failure must not mask the original error
        log.warning("cleanup %s failed: %s", getattr(fn, "__name__", fn), exc)


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    summary="Submit an edit",
    openapi_extra=SUBMIT_BODY,
    responses={
        200: {"model": JobOut, "description": "Replay of an earlier submission with the same Idempotency-Key."},
        **error_responses(400, 401, 409, 413, 415, 422, 429, 503),
    },
)
async def submit_edit(
    request: Request,
    response: Response,
    owner: str = Depends(require_owner),
    ctx: JobContext = Depends(job_context),
    store: Store = Depends(get_store),
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        description="Same key and same body: the same job again. Same key, other body: 409.",
    ),
) -> JobOut:
    """Validates everything (params, images, masks, geometry), stores the inputs as PNG, queues
    the job and answers 202 with its id and links. Nothing is queued when any check fails."""
    await run_in_threadpool(limits.check_rate, ctx, owner)
    params_text, uploads = await _read_parts(request, ctx.settings)
    links_base = str(request.base_url).rstrip("/")  # scheme, host and root_path, as the client sent them
    view, replayed = await run_in_threadpool(
        _submit, ctx, store, owner, idempotency_key, params_text, uploads, links_base
    )
    body = _job_out(request, view)
    response.headers["Location"] = body.links.self
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return body


@router.get(
    "/{job_id}",
    response_model=JobOut,
    summary="Status, progress and parameters of an edit",
    responses=error_responses(401, 404, 503),
)
async def get_edit(
    job_id: str,
    request: Request,
    owner: str = Depends(require_owner),
    ctx: JobContext = Depends(job_context),
    store: Store = Depends(get_store),
) -> JobOut:
    # The hot path of every client: one thread hop, two Redis round trips (job hash, position).
    def read() -> JobOut:
        return _job_out(request, owned_job(ctx, job_id, owner), store, ctx)

    return await run_in_threadpool(read)


@router.delete(
    "/{job_id}",
    response_model=JobOut,
    summary="Cancel an edit",
    responses=error_responses(401, 404, 409, 503),
)
async def cancel_edit(
    job_id: str,
    request: Request,
    owner: str = Depends(require_owner),
    ctx: JobContext = Depends(job_context),
) -> JobOut:
    """A queued job is canceled at once; a running one stops between two steps (poll to see it)."""
    return await run_in_threadpool(_cancel, request, ctx, job_id, owner)


def _cancel(request: Request, ctx: JobContext, job_id: str, owner: str) -> JobOut:
    view = owned_job(ctx, job_id, owner)
    if view.status in FINISHED:
        ended = {
            "succeeded": "has already succeeded",
            "failed": "has already failed",
            "canceled": "was already canceled",
            "expired": "has already expired",
        }
        raise ApiError(409, "already_finished", f"the job {ended[JobStatus(view.status).value]}; nothing to cancel")
    canceled = lifecycle.cancel(ctx, job_id)
    if canceled is None:
        raise not_found(job_id)
    return _job_out(request, canceled, ctx=ctx)


@router.get(
    "/{job_id}/result",
    summary="The edited image",
    response_class=Response,
    responses={
        200: {
            "content": {media: {} for media in result_media.RESULT_MEDIA},
            "description": "The result image in the media type chosen by Accept (PNG by default).",
        },
        307: {"description": "Redirect to a presigned URL of the PNG, when the server uses them."},
        **error_responses(401, 404, 406, 409, 503),
    },
)
async def get_result(
    job_id: str,
    request: Request,
    owner: str = Depends(require_owner),
    ctx: JobContext = Depends(job_context),
    store: Store = Depends(get_store),
) -> Response:
    return await run_in_threadpool(_result, request, ctx, store, job_id, owner)


def _result(request: Request, ctx: JobContext, store: Store, job_id: str, owner: str) -> Response:
    view = owned_job(ctx, job_id, owner)
    status = JobStatus(view.status)
    if status != JobStatus.succeeded:
        code = "not_finished" if status not in FINISHED else f"job_{status.value}"
        raise ApiError(409, code, f"the job is {status.value}; the result exists once it has succeeded")
    media = result_media.choose_media(request.headers.get("accept"))
    if media is None:
        raise ApiError(
            406, "not_acceptable", "the result is available as image/png, image/webp or image/jpeg", "Accept"
        )
    if media == "image/png":
        url = store.result_url(job_id)
        if url:
            return RedirectResponse(url, status_code=307)
    png = store.get_result(job_id)
    if png is None:  # expired between the status read and now
        raise not_found(job_id)
    return Response(
        result_media.encode(png, media),
        media_type=media,
        headers={
            "Vary": "Accept, Authorization",
            "Cache-Control": "private, max-age=3600",
            "Content-Disposition": f'inline; filename="{job_id}.{result_media.file_extension(media)}"',
        },
    )
