"""Property-based fuzzing of the API from its own OpenAPI schema: no input yields a 5xx, and every
answer matches the documented status codes, media types and response schemas."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from redis import Redis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.jobs import workers
from service.jobs.context import JobContext
from service.settings import Settings
from tests.service.helpers import REDIS_URL

# Schemathesis parametrizes at collection time, so the app exists at import; it connects to
# Redis (database 1, these tests' own) only when a request comes.
DATA_DIR = Path(tempfile.mkdtemp(prefix="diffeditor-apifuzz-"))
SETTINGS = Settings(redis_url=REDIS_URL, data_dir=DATA_DIR, queue_name="apifuzz", heartbeat_s=600)
app = create_app(SETTINGS)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def _clean_state() -> Iterator[None]:
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    # A registered warm worker, so that /readyz answers 200 (its 503 is tested elsewhere).
    workers.register_worker(
        JobContext(redis, SETTINGS), {"name": "fuzz", "device": "cpu", "model": None, "is_demo": True}
    )
    yield
    redis.flushdb()
    shutil.rmtree(DATA_DIR, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
    )
