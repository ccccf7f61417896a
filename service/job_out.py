"""`JobOut`, the one shape a job takes outside: the status route, the SSE stream's final event and
the webhooks' bodies are all built here from a `JobView`."""

from __future__ import annotations

from service.jobs.lifecycle import JobView
from service.jobs.status import JobStatus
from service.schemas import JobOut, Links, WebhookOut
from service.store import Store
from service.timestamps import iso_utc


def links(root_path: str, job_id: str) -> Links:
    base = f"{root_path}/v1/edits/{job_id}"
    return Links(self=base, result=f"{base}/result", cancel=base, events=f"{base}/events", preview=f"{base}/preview")


def job_out(
    view: JobView, root_path: str = "", store: Store | None = None, webhook_log: list[dict] | None = None
) -> JobOut:
    """The job as clients see it. `store`: for a presigned result URL; `webhook_log`: the delivery
    attempts to show (service/webhooks), when the job has a webhook."""
    result_url = None
    if store is not None and view.status == JobStatus.succeeded:
        result_url = store.result_url(view.id)
    options = view.options
    webhook = None
    if options.get("webhook"):
        webhook = WebhookOut(
            url=options["webhook"], events=list(options.get("webhook_events") or []), deliveries=webhook_log or []
        )
    deadline_at = options.get("deadline_at")
    return JobOut(
        id=view.id,
        status=JobStatus(view.status).value,
        task=view.task,
        params=view.params,
        position=view.position,
        progress=view.progress,
        created_at=view.created_at,
        started_at=view.started_at,
        ended_at=view.ended_at,
        error=view.error,
        stats=view.stats,
        deadline_at=iso_utc(deadline_at) if deadline_at is not None else None,
        webhook=webhook,
        links=links(root_path, view.id),
        result_url=result_url,
    )
