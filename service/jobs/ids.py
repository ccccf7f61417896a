"""The job-id rule, in one place: ids are 32 lowercase hex characters (a UUID4's hex).

The API answers 404 for anything else, the store refuses it as a path component, and RQ never
sees it: an id that passes here is safe in a Redis key, a file path and an S3 key alike.
"""

from __future__ import annotations

import re
import uuid

JOB_ID_RE = re.compile(r"[0-9a-f]{32}")


def new_job_id() -> str:
    return uuid.uuid4().hex


def valid_job_id(job_id: object) -> bool:
    return isinstance(job_id, str) and JOB_ID_RE.fullmatch(job_id) is not None
