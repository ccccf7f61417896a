"""`diffeditor.client` against `httpx.MockTransport`: the multipart it builds, the errors it maps,
its retries on 429/503 after `Retry-After`, and the event stream it decodes (with a reconnect
after `Last-Event-ID`); the sync and the async client alike."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import ValidationError

from diffeditor import client as client_module
from diffeditor.client import (
    ApiError,
    AsyncClient,
    Client,
    CompletedEvent,
    Event,
    JobFailed,
    PreviewEvent,
    ProgressEvent,
    QueuedEvent,
    StartEvent,
    StreamUnavailable,
    WaitTimeout,
    retry_after_seconds,
)
from diffeditor.tasks import MoveParams

BASE = "http://api.test"
JOB_ID = "ab" * 16


def job_body(status: str = "queued", **extra: Any) -> dict[str, Any]:
    links = {k: f"/v1/edits/{JOB_ID}{s}" for k, s in [("self", ""), ("result", "/result"), ("cancel", "")]}
    links.update(events=f"/v1/edits/{JOB_ID}/events", preview=f"/v1/edits/{JOB_ID}/preview")
    body = {
        "id": JOB_ID,
        "status": status,
        "task": "move",
        "params": {"task": "move", "offset": [2.0, 22.0]},
        "created_at": "2026-01-01T00:00:00Z",
        "links": links,
    }
    return {**body, **extra}


def png(size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def error(status: int, code: str, message: str, field: str | None = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, "field": field}}, headers=headers)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The clients' sleeps, recorded instead of slept."""
    delays: list[float] = []

    async def asleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(client_module, "_sleep", delays.append)
    monkeypatch.setattr(client_module, "_asleep", asleep)
    return delays


Handler = Callable[[httpx.Request], httpx.Response]


def both(handler: Handler, call: Callable[[Any], Any], **kw: Any) -> list[Any]:
    """Run `call(client)` with the sync and the async client on the same handler: both answers."""
    with Client(BASE, transport=httpx.MockTransport(handler), **kw) as sync:
        first = call(sync)

    async def run() -> Any:
        async with AsyncClient(BASE, transport=httpx.MockTransport(handler), **kw) as aclient:
            answer = call(aclient)
            return await answer if asyncio.iscoroutine(answer) else answer

    return [first, asyncio.run(run())]


def both_raise(handler: Handler, call: Callable[[Any], Any], **kw: Any) -> list[ApiError]:
    """The ApiError each client raises for `call(client)`."""

    def caught(c: Any) -> Any:
        if isinstance(c, Client):
            with pytest.raises(ApiError) as info:
                call(c)
            return info.value

        async def run() -> ApiError:
            with pytest.raises(ApiError) as info:
                await call(c)
            return info.value

        return run()

    return both(handler, caught, **kw)


# --- submit ---------------------------------------------------------------------------------------


def test_submit_builds_one_multipart_with_params_and_files(slept: list[float]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(202, json=job_body())

    image = Image.new("RGB", (8, 8))
    jobs = both(
        handler,
        lambda c: c.submit(
            MoveParams(offset=[2, 22], seed=3),
            {"image": image, "mask": png()},
            deadline_s=30,
            webhook="https://hooks.test/x",
        ),
        api_key="k1",
    )
    assert all(job.id == JOB_ID and job.status == "queued" and not job.finished for job in jobs)
    for request in seen:
        assert request.method == "POST" and request.url.path == "/v1/edits"
        assert request.headers["authorization"] == "Bearer k1"
        assert request.headers["idempotency-key"].startswith("client-")  # generated: a retry stays safe
        parts = multipart_parts(request)
        # Only what was given (and the task), beside the job options, in one JSON object.
        assert json.loads(parts["params"][1]) == {
            "task": "move",
            "offset": [2.0, 22.0],
            "seed": 3,
            "webhook": "https://hooks.test/x",
            "deadline_s": 30,
        }
        assert parts["image"][0] == "image.png" and Image.open(io.BytesIO(parts["image"][1])).size == (8, 8)
        assert parts["mask"] == ("mask", png())
    assert seen[0].headers["idempotency-key"] != seen[1].headers["idempotency-key"]


def multipart_parts(request: httpx.Request) -> dict[str, tuple[str | None, bytes]]:
    """name → (filename, body) of a multipart request (read back with the email parser)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[name] = (part.get_filename(), part.get_payload(decode=True))
    return parts


def test_a_dict_is_validated_before_anything_is_sent(tmp_path: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    with Client(BASE, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ValidationError, match="ofset"):
            client.submit({"task": "move", "ofset": [1, 2]}, {"image": png()})
        with pytest.raises(ValidationError, match="webhook_events"):
            client.submit({"task": "move", "offset": [1, 2]}, {"image": png()}, webhook_events=["finished"])
        with pytest.raises(TypeError, match="image: expected a path"):
            client.submit({"task": "move", "offset": [1, 2]}, {"image": 3})  # type: ignore[dict-item]


def test_a_dict_with_job_options_and_a_path(tmp_path: Any) -> None:
    path = tmp_path / "in.png"
    path.write_bytes(png())
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(202, json=job_body())

    with Client(BASE, transport=httpx.MockTransport(handler)) as client:
        client.submit(
            {"task": "move", "offset": [1, 2], "deadline_s": 5},
            {"image": path, "mask": str(path)},
            idempotency_key="k-9",
        )
    parts = multipart_parts(seen[0])
    assert json.loads(parts["params"][1]) == {"task": "move", "offset": [1.0, 2.0], "deadline_s": 5}
    assert parts["image"] == ("in.png", png()) and parts["mask"] == ("in.png", png())
    assert seen[0].headers["idempotency-key"] == "k-9"


# --- errors and retries ---------------------------------------------------------------------------


def test_an_error_answer_is_an_api_error_with_its_field(slept: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(422, "mask_size_mismatch", "mask: 48x64 does not match image 64x48", "mask")

    for exc in both_raise(handler, lambda c: c.submit(MoveParams(offset=[1, 1]), {"image": png()})):
        assert (exc.status, exc.code, exc.field) == (422, "mask_size_mismatch", "mask")
        assert str(exc) == "422 mask_size_mismatch (field mask): mask: 48x64 does not match image 64x48"
    assert slept == []  # a 422 is not retried


def test_a_non_json_error_is_still_an_api_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    with Client(BASE, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ApiError) as info:
            client.get(JOB_ID)
    assert (info.value.status, info.value.code, info.value.message) == (502, "http_502", "<html>Bad Gateway</html>")


def test_429_and_503_are_retried_after_retry_after(slept: list[float]) -> None:
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    answers: list[httpx.Response] = []
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["idempotency-key"])
        if not answers:
            answers.extend(
                [
                    error(429, "rate_limited", "slow down", **{"Retry-After": "2"}),
                    error(503, "queue_full", "full", **{"Retry-After": later}),
                    error(503, "redis_unavailable", "down"),  # no Retry-After: a backoff
                    httpx.Response(202, json=job_body()),
                ]
            )
        return answers.pop(0)

    jobs = both(handler, lambda c: c.submit(MoveParams(offset=[1, 1]), {"image": png()}), max_retries=3)
    assert [job.id for job in jobs] == [JOB_ID, JOB_ID]
    for first, date, backoff in (slept[:3], slept[3:]):  # the sync client's, the async one's
        assert first == 2 and 28 <= date <= 30 and backoff == 2.0  # 0.5 s × 2² after two retries
    assert len(set(keys[:4])) == 1 and len(set(keys[4:])) == 1  # every retry of a submit: the same key


def test_retries_are_bounded_in_count_and_in_wait(slept: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(503, "queue_full", "the queue is full", **{"Retry-After": "5"})

    with Client(BASE, transport=httpx.MockTransport(handler), max_retries=2) as client:
        with pytest.raises(ApiError) as info:
            client.get(JOB_ID)
    assert info.value.code == "queue_full" and info.value.retry_after == 5 and slept == [5, 5]
    slept.clear()
    with Client(BASE, transport=httpx.MockTransport(handler), max_retries=10, max_retry_wait_s=12) as client:
        with pytest.raises(ApiError):
            client.get(JOB_ID)
    assert slept == [5, 5]  # a third wait would pass 12 s in all


def test_a_connection_that_never_opened_is_retried(slept: list[float]) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=job_body("canceled"))

    with Client(BASE, transport=httpx.MockTransport(handler)) as client:
        assert client.cancel(JOB_ID).status == "canceled"
    assert len(calls) == 2 and slept == [0.5]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-1", 0.0), (None, None), ("soon", None), ("Thu, 01 Jan 1970 00:00:10 GMT", 0.0)],
)
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0


# --- results --------------------------------------------------------------------------------------


def test_result_is_a_pil_image_and_follows_a_presigned_redirect() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.test":
            return httpx.Response(307, headers={"Location": "http://s3.test/bucket/result.png?sig=1"})
        return httpx.Response(200, content=png((5, 7)), headers={"Content-Type": "image/png"})

    for image in both(handler, lambda c: c.result(JOB_ID), api_key="k"):
        assert isinstance(image, Image.Image) and image.size == (5, 7)
    assert seen[0].headers["accept"] == "image/png" and seen[0].headers["authorization"] == "Bearer k"
    assert "authorization" not in seen[1].headers  # not sent on to the object store


def test_edit_raises_job_failed_for_a_job_without_a_result(slept: list[float]) -> None:
    failed = job_body("failed", error={"code": "invalid_input", "message": "offset: outside", "field": "offset"})

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json=job_body())
        if request.url.path.endswith("/events"):
            return sse_response([("completed", failed, "1-0")])
        raise AssertionError(request.url)

    with Client(BASE, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(JobFailed, match=r"failed: invalid_input \(field offset\): offset: outside") as info:
            client.edit(MoveParams(offset=[1, 1]), {"image": png()})
    assert info.value.field == "offset" and info.value.job.status == "failed"


# --- events ---------------------------------------------------------------------------------------

PREVIEW = "data:image/png;base64," + __import__("base64").b64encode(png((4, 4))).decode()
EVENTS: list[tuple[str, dict[str, Any], str | None]] = [
    ("queued", {"status": "queued", "position": 1}, "1-0"),
    ("queued", {"status": "queued", "position": 0}, None),
    ("start", {"status": "running", "worker": "w1"}, "2-0"),
    ("progress", {"status": "running", "stage": "inversion", "step": 1, "total": 4, "eta_s": None}, "3-0"),
    ("preview", {"step": 2, "total": 4, "width": 4, "height": 4, "image": PREVIEW}, "4-0"),
    ("progress", {"status": "running", "stage": "sampling", "step": 4, "total": 4, "eta_s": 0.5}, "5-0"),
    ("completed", job_body("succeeded"), "6-0"),
]


def sse_text(events: list[tuple[str, dict[str, Any], str | None]]) -> str:
    out = "retry: 250\n\n: keepalive\n\n"
    for kind, data, event_id in events:
        out += (f"id: {event_id}\n" if event_id else "") + f"event: {kind}\ndata: {json.dumps(data)}\n\n"
    return out


def sse_response(events: list[tuple[str, dict[str, Any], str | None]], drop: bool = False) -> httpx.Response:
    """An SSE answer; with `drop`, the connection breaks after the events (no clean end)."""
    body = sse_text(events).encode()
    headers = {"Content-Type": "text/event-stream"}
    if not drop:
        return httpx.Response(200, content=body, headers=headers)

    class Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield body
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield body
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    return httpx.Response(200, stream=Broken(), headers=headers)


def reconnecting_handler(seen: list[str | None]) -> Handler:
    """Events 1–3 on a connection that drops, then the rest after the Last-Event-ID it sent."""

    def handler(request: httpx.Request) -> httpx.Response:
        last = request.headers.get("last-event-id")
        seen.append(last)
        if last is None:
            return sse_response(EVENTS[:3], drop=True)
        assert last == "2-0"
        return sse_response(EVENTS[3:])

    return handler


def test_events_are_typed_and_resume_after_the_last_id(slept: list[float]) -> None:
    seen: list[str | None] = []

    def collect(c: Any) -> Any:
        if isinstance(c, Client):
            return list(c.events(JOB_ID))

        async def run() -> list[Event]:
            return [event async for event in c.events(JOB_ID)]

        return run()

    for events in both(reconnecting_handler(seen), collect):
        assert [e.type for e in events] == [e[0] for e in EVENTS]
        assert [e.id for e in events] == [e[2] for e in EVENTS]
        queued, _, start, progress, preview, _, completed = events
        assert isinstance(queued, QueuedEvent) and queued.position == 1
        assert isinstance(start, StartEvent) and start.worker == "w1"
        assert isinstance(progress, ProgressEvent) and (progress.stage, progress.step, progress.total) == (
            "inversion",
            1,
            4,
        )
        assert isinstance(preview, PreviewEvent) and preview.to_image().size == (4, 4)
        assert isinstance(completed, CompletedEvent) and completed.job is not None
        assert completed.job.succeeded and completed.status == "succeeded"
    assert seen == [None, "2-0"] * 2
    assert slept == [0.25, 0.25]  # the server's `retry:` delay before reconnecting


def test_an_unknown_event_type_stays_a_plain_event() -> None:
    events = [("hint", {"text": "new"}, "1-0"), ("completed", job_body("canceled"), "2-0")]

    def handler(request: httpx.Request) -> httpx.Response:
        return sse_response(events)

    with Client(BASE, transport=httpx.MockTransport(handler)) as client:
        hint, done = list(client.events(JOB_ID, last_event_id="0-5"))
    assert type(hint) is Event and hint.data == {"text": "new"} and isinstance(done, CompletedEvent)


def test_wait_reports_progress_and_returns_the_final_job(slept: list[float]) -> None:
    seen: list[str | None] = []
    reported: list[list[str]] = []

    def call(c: Any) -> Any:
        got: list[str] = []
        reported.append(got)
        if isinstance(c, Client):
            return c.wait(JOB_ID, progress=lambda e: got.append(e.type))

        async def progress(event: Event) -> None:  # the async client takes a coroutine function too
            got.append(event.type)

        return c.wait(JOB_ID, progress=progress)

    for job in both(reconnecting_handler(seen), call):
        assert job.status == "succeeded"
    assert reported == [[e[0] for e in EVENTS[:-1]]] * 2


def test_wait_polls_when_the_server_has_no_stream(slept: list[float]) -> None:
    states = [
        job_body("queued", position=2),
        job_body("queued", position=2),
        job_body("running", progress={"stage": "sampling", "step": 1, "total": 4}),
        job_body("succeeded"),
    ]
    answers: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return error(404, "not_found", "no such path")
        if not answers:
            answers.extend(states)
        return httpx.Response(200, json=answers.pop(0))

    reported: list[Event] = []
    for job in both(handler, lambda c: c.wait(JOB_ID, progress=reported.append, poll_interval_s=0.1)):
        assert job.status == "succeeded"
    assert [(e.type, getattr(e, "position", None)) for e in reported] == [("queued", 2), ("progress", None)] * 2
    assert slept == [0.1] * 6


def test_events_of_an_unknown_job_is_the_404() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(404, "not_found", f"no job {JOB_ID}")

    with Client(BASE, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ApiError, match="404 not_found"):
            list(client.events(JOB_ID))
        with pytest.raises(ApiError, match="404 not_found"):
            client.wait(JOB_ID)  # the stream's 404 makes it poll; the status route's 404 is the answer
        with pytest.raises(ValueError, match="not a job id"):
            client.get("../info")


def test_a_stream_that_is_not_sse_makes_wait_poll(slept: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, text="buffered by a proxy", headers={"Content-Type": "text/plain"})
        return httpx.Response(200, json=job_body("succeeded"))

    with Client(BASE, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(StreamUnavailable):
            list(client.events(JOB_ID))
        assert client.wait(JOB_ID).status == "succeeded"


def test_wait_times_out() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return error(404, "not_found", "no such path")
        return httpx.Response(200, json=job_body("running"))

    with Client(BASE, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(WaitTimeout):
            client.wait(JOB_ID, timeout=0.3, poll_interval_s=0.05)


def test_wait_reads_the_status_when_the_completed_view_lags(slept: list[float]) -> None:
    # The worker writes `completed` just before the queue records the job's end: the stream's
    # final view may still say running; the status route has the outcome a moment later.
    answers = [job_body("running"), job_body("canceled")]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return sse_response([("completed", job_body("running"), "9-0")])
        return httpx.Response(200, json=answers.pop(0))

    with Client(BASE, transport=httpx.MockTransport(handler)) as client:
        assert client.wait(JOB_ID, poll_interval_s=0.1).status == "canceled"
    assert slept == [0.1]
