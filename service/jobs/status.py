"""The API's six job states, RQ's statuses mapped onto them, and the error of a job whose worker
was lost (the one failure no worker is left to write)."""

from __future__ import annotations

from enum import Enum

from rq.job import JobStatus as RQStatus


class JobStatus(str, Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"
    expired = "expired"  # its deadline passed: before it started (it never ran) or between two steps


FINISHED = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.canceled, JobStatus.expired})

# The error codes that end a job in RQ's canceled registry rather than its failed one: the job was
# stopped, not broken. Each maps onto its own status.
STOPPED_CODES: dict[str, JobStatus] = {"canceled": JobStatus.canceled, "expired": JobStatus.expired}

_STATUS_MAP: dict[str, JobStatus] = {
    RQStatus.CREATED.value: JobStatus.queued,
    RQStatus.QUEUED.value: JobStatus.queued,
    RQStatus.DEFERRED.value: JobStatus.queued,
    RQStatus.SCHEDULED.value: JobStatus.queued,
    RQStatus.READY_TO_ENQUEUE.value: JobStatus.queued,
    RQStatus.RATE_LIMITED.value: JobStatus.queued,
    RQStatus.STARTED.value: JobStatus.running,
    RQStatus.FINISHED.value: JobStatus.succeeded,
    RQStatus.FAILED.value: JobStatus.failed,
    RQStatus.STOPPED.value: JobStatus.failed,
    RQStatus.CANCELED.value: JobStatus.canceled,
}


def map_status(rq_status: object) -> JobStatus:
    """RQ's status name -> the API's states (expired is a canceled RQ job whose error says so)."""
    return _STATUS_MAP[str(getattr(rq_status, "value", rq_status))]


def worker_lost_error() -> dict:
    return {
        "code": "worker_lost",
        "message": "the worker running this job stopped unexpectedly (and the one retry was used); submit it again",
        "field": None,
    }
