"""The edit endpoints answered by the test instead of the server (Playwright routes), for states the
demo worker does not hold still long enough to look at: step 12 of 50, an ETA, a slow step.

`FakeJobs(page)` answers POST /v1/edits with a new queued job, GET /v1/edits/{id} with that job's
record as the test last set it (`set`), DELETE with `canceled`, and /result with a PNG. `hold()`
leaves the following status polls unanswered (a worker between two progress writes); `release()`
answers them. /events answers the Server-Sent Events in `stream` (all at once, then the stream
ends), or 404 while `stream` is None, which sends the page back to polling. Everything else still
goes to the real server.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

from playwright.sync_api import Page, Route

from tests.web.editor_page import make_png

EDITS = re.compile(r"^https?://[^/]+/v1/edits(/[0-9a-f]{32})?(/result|/events)?(\?.*)?$")


def iso(seconds_ago: float = 0.0) -> str:
    t = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    return t.isoformat().replace("+00:00", "Z")


def job_record(job_id: str, status: str, **fields: Any) -> dict[str, Any]:
    """A JobOut (service/schemas.py) with the given fields."""
    base = f"/v1/edits/{job_id}"
    record: dict[str, Any] = {
        "id": job_id,
        "status": status,
        "task": "move",
        "params": {"task": "move", "seed": 7},
        "position": None,
        "progress": None,
        "created_at": iso(),
        "started_at": None,
        "ended_at": None,
        "error": None,
        "stats": None,
        "links": {"self": base, "result": f"{base}/result", "cancel": base},
        "result_url": None,
    }
    record.update(fields)
    return record


class FakeJobs:
    def __init__(self, page: Page) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.submitted: list[str] = []
        self.polls = 0
        self.holding = False
        self.held: list[Route] = []
        self.stream: list[tuple[str, dict[str, Any]]] | None = None  # (event type, data)
        self.streams_opened = 0
        page.route(EDITS, self._handle)

    @property
    def last_id(self) -> str:
        return self.submitted[-1]

    def set(self, job_id: str, status: str, **fields: Any) -> None:
        """What the next status polls of `job_id` answer (created_at is kept)."""
        created = self.jobs[job_id]["created_at"]
        self.jobs[job_id] = job_record(job_id, status, created_at=created, **fields)

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False
        for route in self.held:
            self._answer_status(route)
        self.held.clear()

    def _handle(self, route: Route) -> None:
        req = route.request
        path = urlparse(req.url).path
        if req.method == "POST" and path == "/v1/edits":
            job_id = f"{len(self.submitted) + 1:032x}"
            self.submitted.append(job_id)
            self.jobs[job_id] = job_record(job_id, "queued", position=0)
            self._json(route, self.jobs[job_id], status=202)
        elif path.endswith("/events"):
            self._answer_events(route)
        elif path.endswith("/result"):
            route.fulfill(status=200, content_type="image/png", body=make_png(64, 64, hue=120))
        elif req.method == "DELETE":
            job_id = path.rsplit("/", 1)[1]
            self.set(job_id, "canceled", started_at=self.jobs[job_id]["started_at"], ended_at=iso())
            self._json(route, self.jobs[job_id])
        elif self.holding:
            self.held.append(route)  # answered by release(), or never
        else:
            self._answer_status(route)

    def _answer_events(self, route: Route) -> None:
        if self.stream is None:
            err = {"error": {"code": "not_found", "message": "no such job", "field": None}}
            route.fulfill(status=404, content_type="application/json", body=json.dumps(err))
            return
        self.streams_opened += 1
        body = "retry: 1000\n\n" + "".join(
            f"id: {1000 + n}-0\nevent: {kind}\ndata: {json.dumps(data)}\n\n"
            for n, (kind, data) in enumerate(self.stream)
        )
        route.fulfill(status=200, content_type="text/event-stream", body=body)

    def _answer_status(self, route: Route) -> None:
        self.polls += 1
        job_id = urlparse(route.request.url).path.rsplit("/", 1)[1]
        if job_id not in self.jobs:
            err = {"error": {"code": "not_found", "message": "no such job", "field": None}}
            route.fulfill(status=404, content_type="application/json", body=json.dumps(err))
            return
        self._json(route, self.jobs[job_id])

    @staticmethod
    def _json(route: Route, body: dict[str, Any], status: int = 200) -> None:
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))
