"""A typed Python client of the HTTP API (docs/api.md), sync (`Client`) and async (`AsyncClient`),
on httpx. Torch-free: it needs only the package's task models and the API's response schemas.

    with Client("http://localhost:8000") as client:
        job = client.submit(MoveParams(offset=[2, 22]), {"image": "in.png", "mask": "obj.png"})
        job = client.wait(job.id, progress=print)
        client.result(job.id).save("out.png")

Both clients share everything but the I/O: the requests are built, the answers parsed, the retry
delays decided and the event stream decoded by the same code (`_Core`, `_Retry`, `_SSEDecoder`,
`_EventStream`, `_Poller`); each client only sends and sleeps its own way.

Retries: a 429 or 503 answer is retried after its `Retry-After` (seconds or an HTTP date; without
one, after an exponential backoff), at most `max_retries` times and `max_retry_wait_s` seconds of
waiting in all; a connection that could not be opened is retried likewise. Every submit carries an
`Idempotency-Key` (the caller's, or one generated for it), so a retried submit can never queue the
same edit twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import inspect
import io
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any, Literal, Union

import httpx
from PIL import Image
from pydantic import BaseModel, ConfigDict, ValidationError

from diffeditor.job_options import JobOptions, split_options
from diffeditor.tasks import CommonParams, parse_params
from service.schemas import JobOut

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ClientError",
    "CompletedEvent",
    "Event",
    "FileInput",
    "Job",
    "JobFailed",
    "PreviewEvent",
    "ProgressEvent",
    "QueuedEvent",
    "StartEvent",
    "StreamUnavailable",
    "WaitTimeout",
]

FINISHED = frozenset({"succeeded", "failed", "canceled", "expired"})
RETRY_STATUSES = frozenset({429, 503})
# Opening the event stream answered one of these: this server has no stream; `wait` polls instead.
NO_STREAM_STATUSES = frozenset({404, 405, 406, 501})
# The clients sleep through these (tests replace them).
_sleep: Callable[[float], None] = time.sleep
_asleep: Callable[[float], Awaitable[None]] = asyncio.sleep
RESULT_MEDIA = {".png": "image/png", ".webp": "image/webp", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

FileInput = Union[str, "os.PathLike[str]", bytes, Image.Image]
ParamsInput = Union[CommonParams, Mapping[str, Any]]


# --- results and errors ---------------------------------------------------------------------------


class Job(JobOut):
    """A job's view (`GET /v1/edits/{id}`), as the API's `JobOut`, with a few conveniences."""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def edit_params(self) -> CommonParams:
        """The effective parameters as the task's model (seed filled in once a worker picked the job)."""
        return parse_params(self.params)


class ClientError(Exception):
    """Any error this client raises itself (transport errors stay httpx's)."""


class ApiError(ClientError):
    """The API answered an error: `{"error": {"code", "message", "field"}}` with an HTTP status."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, retry_after: float | None = None
    ) -> None:
        self.status, self.code, self.message, self.field, self.retry_after = status, code, message, field, retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.status} {self.code}{where}: {self.message}"


class JobFailed(ClientError):
    """A job ended without a result (`failed`, `canceled` or `expired`); `job.error` says why."""

    def __init__(self, job: Job) -> None:
        self.job = job
        error = job.error
        self.code = error.code if error else job.status
        self.message = error.message if error else f"the job is {job.status}"
        self.field = error.field if error else None
        where = f" (field {self.field})" if self.field else ""
        super().__init__(f"job {job.id} {job.status}: {self.code}{where}: {self.message}")


class WaitTimeout(ClientError, TimeoutError):
    """`wait` ran out of its `timeout` before the job finished."""


# --- events ---------------------------------------------------------------------------------------


class Event(BaseModel):
    """One event of a job's stream (`GET /v1/edits/{id}/events`). `id` is the stream position to
    resume after (None for the queue-position updates, which carry none); `data` the raw JSON."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str | None = None
    type: str
    data: dict[str, Any] = {}


class QueuedEvent(Event):
    type: Literal["queued"] = "queued"
    position: int | None = None


class StartEvent(Event):
    type: Literal["start"] = "start"
    worker: str | None = None


class ProgressEvent(Event):
    type: Literal["progress"] = "progress"
    stage: str
    step: int
    total: int
    eta_s: float | None = None


class PreviewEvent(Event):
    """A small preview of the image as it forms; `image` is a `data:` URL (JPEG)."""

    type: Literal["preview"] = "preview"
    step: int
    total: int
    width: int | None = None
    height: int | None = None
    image: str

    def to_image(self) -> Image.Image:
        _, _, payload = self.image.partition(",")
        image = Image.open(io.BytesIO(base64.b64decode(payload)))
        image.load()
        return image


class CompletedEvent(Event):
    """The last event: the job's final status and, normally, its whole final view (`job`; None
    when the job has expired from the server since). `wait` reads the status route instead when
    `job` is not finished yet: a worker writes the event just before the queue records the end."""

    type: Literal["completed"] = "completed"
    status: str
    job: Job | None = None


_EVENT_MODELS: dict[str, type[Event]] = {
    "queued": QueuedEvent,
    "start": StartEvent,
    "progress": ProgressEvent,
    "preview": PreviewEvent,
}


def parse_event(event_type: str, data_text: str, event_id: str | None) -> Event:
    """A typed event from one SSE message; an unknown type (a newer server's) stays an `Event`."""
    try:
        data = json.loads(data_text) if data_text else {}
    except json.JSONDecodeError:
        data = {"text": data_text}
    if not isinstance(data, dict):
        data = {"value": data}
    if event_type == "completed":
        try:
            job: Job | None = Job.model_validate(data)
        except ValidationError:  # the job expired from the server: only {"status", "error"} is left
            job = None
        return CompletedEvent(id=event_id, data=data, status=str(data.get("status", "")), job=job)
    model = _EVENT_MODELS.get(event_type)
    if model is not None:
        try:
            return model.model_validate({**data, "id": event_id, "type": event_type, "data": data})
        except ValidationError:
            pass
    return Event(id=event_id, type=event_type, data=data)


@dataclass
class _SSEMessage:
    type: str
    data: str
    id: str | None


class _SSEDecoder:
    """Server-Sent Events, line by line (the WHATWG parsing rules): yields a message at each blank
    line; remembers the server's `retry:` delay."""

    def __init__(self) -> None:
        self.retry_s: float | None = None
        self._type: str = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> _SSEMessage | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self._data and not self._type:
                self._id = None
                return None
            message = _SSEMessage(self._type or "message", "\n".join(self._data), self._id)
            self._type, self._data, self._id = "", [], None
            return message
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_s = int(value) / 1000
        return None


# --- shared logic ---------------------------------------------------------------------------------


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date (None: absent or unreadable)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def api_error(response: httpx.Response) -> ApiError:
    """The ApiError of an error answer (its body read), whatever its shape."""
    retry_after = retry_after_seconds(response.headers.get("retry-after"))
    try:
        detail = response.json()["error"]
        return ApiError(
            response.status_code, str(detail["code"]), str(detail["message"]), detail.get("field"), retry_after
        )
    except (ValueError, KeyError, TypeError):
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else response.reason_phrase
        return ApiError(response.status_code, f"http_{response.status_code}", text, None, retry_after)


@dataclass
class _Retry:
    """The retry decisions of one request: how long to sleep before the next attempt, or None
    (give up: the caller raises)."""

    max_retries: int
    max_wait_s: float
    attempt: int = 0
    waited_s: float = 0.0

    def _next(self, wanted: float | None) -> float | None:
        if self.attempt >= self.max_retries:
            return None
        delay = wanted if wanted is not None else min(8.0, 0.5 * 2**self.attempt)
        if self.waited_s + delay > self.max_wait_s:
            return None
        self.attempt += 1
        self.waited_s += delay
        return delay

    def after_response(self, response: httpx.Response) -> float | None:
        if response.status_code not in RETRY_STATUSES:
            return None
        return self._next(retry_after_seconds(response.headers.get("retry-after")))

    def after_transport_error(self, exc: httpx.TransportError, safe: bool) -> float | None:
        # Nothing reached the server when the connection could not be made: always safe to retry.
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)) or (
            safe and isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError))
        ):
            return self._next(None)
        return None


@dataclass
class _Request:
    """What to send, rebuilt for every attempt (a multipart body is consumed by sending it)."""

    method: str
    path: str
    safe: bool  # may be sent again after a lost answer
    headers: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    timeout: httpx.Timeout | None = None
    follow_redirects: bool = False

    def build(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        kwargs: dict[str, Any] = {"headers": self.headers, "data": self.data, "files": self.files}
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return http.build_request(self.method, self.path, **kwargs)


def file_bytes(name: str, value: FileInput) -> bytes:
    """A file part's bytes: a path's content, bytes as they are, a PIL image as PNG."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, Image.Image):
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        return buf.getvalue()
    if isinstance(value, (str, os.PathLike)):
        with open(value, "rb") as f:
            return f.read()
    raise TypeError(f"{name}: expected a path, bytes or a PIL image, not {type(value).__name__}")


def file_name(name: str, value: FileInput) -> str:
    """The file name a part is sent with: a path's own, else the part's name (the server judges
    the format by content, never by name)."""
    if isinstance(value, (str, os.PathLike)):
        return os.path.basename(os.fspath(value)) or name
    return f"{name}.png" if isinstance(value, Image.Image) else name


def params_json(
    params: ParamsInput,
    webhook: str | None = None,
    webhook_events: Sequence[str] | None = None,
    deadline_s: float | None = None,
) -> str:
    """The `params` part: the task's parameters (validated by the task's model, so a bad value
    fails here, before anything is sent) and the job options, as one JSON object."""
    if isinstance(params, CommonParams):
        model, options = params, {}
    else:
        edit, options = split_options(dict(params))
        model = parse_params(edit)
    given = {"webhook": webhook, "webhook_events": list(webhook_events) if webhook_events else None}
    options.update({k: v for k, v in {**given, "deadline_s": deadline_s}.items() if v is not None})
    JobOptions.model_validate(options)  # the same rules as the server's (bar its own caps)
    body = {"task": model.task, **model.model_dump(mode="json", exclude_unset=True), **options}  # type: ignore[attr-defined]
    return json.dumps(body, separators=(",", ":"))


class _Core:
    """The requests and their answers, shared by both clients (no I/O here)."""

    def __init__(self, api_key: str | None, timeout: float, max_retries: int, max_retry_wait_s: float) -> None:
        self.api_key, self.max_retries, self.max_retry_wait_s = api_key, max_retries, max_retry_wait_s
        self.stream_read_timeout_s = max(timeout, 30.0)  # the server sends a keep-alive every 15 s

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def retry(self) -> _Retry:
        return _Retry(self.max_retries, self.max_retry_wait_s)

    def stream(self, job_id: str, last_event_id: str | None) -> _EventStream:
        return _EventStream(job_id, last_event_id, self.stream_read_timeout_s)

    def wait_stream(self, job_id: str, deadline: float | None) -> _EventStream:
        """`wait`'s stream: bounded by its deadline, and StreamUnavailable (it polls) when there is none."""
        return _EventStream(job_id, None, self.stream_read_timeout_s, deadline, fallback=True)

    def submit(
        self,
        params: ParamsInput,
        files: Mapping[str, FileInput],
        webhook: str | None,
        webhook_events: Sequence[str] | None,
        deadline_s: float | None,
        idempotency_key: str | None,
    ) -> _Request:
        text = params_json(params, webhook, webhook_events, deadline_s)
        parts = [
            (name, (file_name(name, value), file_bytes(name, value), "application/octet-stream"))
            for name, value in files.items()
        ]
        headers = {**self.headers(), "Idempotency-Key": idempotency_key or f"client-{uuid.uuid4().hex}"}
        return _Request("POST", "/v1/edits", True, headers, data={"params": text}, files=parts)

    def get(self, job_id: str) -> _Request:
        return _Request("GET", f"/v1/edits/{_job_path(job_id)}", True, self.headers())

    def cancel(self, job_id: str) -> _Request:
        return _Request("DELETE", f"/v1/edits/{_job_path(job_id)}", False, self.headers())

    def result(self, job_id: str, media_type: str) -> _Request:
        # A presigned-URL server answers 307 to the object store; httpx drops Authorization there.
        headers = {**self.headers(), "Accept": media_type}
        return _Request("GET", f"/v1/edits/{_job_path(job_id)}/result", True, headers, follow_redirects=True)

    def events(self, job_id: str, last_event_id: str | None, read_timeout_s: float | None) -> _Request:
        headers = {**self.headers(), "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(30.0, read=read_timeout_s) if read_timeout_s is not None else None
        return _Request("GET", f"/v1/edits/{_job_path(job_id)}/events", True, headers, timeout=timeout)

    @staticmethod
    def job(response: httpx.Response) -> Job:
        return Job.model_validate(response.json())

    @staticmethod
    def image(response: httpx.Response) -> Image.Image:
        image = Image.open(io.BytesIO(response.content))
        image.load()
        return image


def _job_path(job_id: str) -> str:
    if not job_id or not job_id.isalnum():
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id


class StreamUnavailable(ClientError):
    """The server offers no event stream for this job (an older server, or a proxy in the way that
    refuses or buffers it), or the stream kept breaking; `wait` polls instead."""


class _EventStream:
    """The state of following one job's events across reconnects: the last id seen, the decoder,
    and how long to wait before the next connection (the server's `retry:`, else 1 s)."""

    MAX_DROPS = 5  # reconnects in a row that brought no new event

    def __init__(
        self,
        job_id: str,
        last_event_id: str | None,
        read_timeout_s: float,
        deadline: float | None = None,
        fallback: bool = False,
    ) -> None:
        self.job_id, self.last_id, self.read_timeout_s = job_id, last_event_id, read_timeout_s
        self.deadline = deadline
        self.fallback = fallback  # for `wait`: StreamUnavailable rather than the error, so it polls
        self.decoder = _SSEDecoder()
        self.drops = 0
        self.done = False

    def request(self, core: _Core) -> _Request:
        retry_s, self.decoder = self.decoder.retry_s, _SSEDecoder()  # a fresh stream; `retry:` still holds
        self.decoder.retry_s = retry_s
        self.check_deadline()
        return core.events(self.job_id, self.last_id, self._read_timeout())

    def _read_timeout(self) -> float:
        if self.deadline is None:
            return self.read_timeout_s
        return max(0.05, min(self.read_timeout_s, self.deadline - time.monotonic() + 0.05))

    def opened(self, response: httpx.Response) -> None:
        """Check an opened stream's answer (error answers were raised already)."""
        kind = response.headers.get("content-type", "")
        if not kind.startswith("text/event-stream"):
            raise StreamUnavailable(
                f"{response.request.url}: answered {kind or 'no content type'}, not an event stream"
            )

    def refused(self, exc: ApiError) -> Exception:
        """What to raise when opening the stream answered an error."""
        if self.fallback and exc.status in NO_STREAM_STATUSES:
            return StreamUnavailable(str(exc))  # `wait` polls: an unknown job is then the status route's 404
        return exc

    def feed(self, line: str) -> Event | None:
        message = self.decoder.feed(line)
        if message is None:
            return None
        event = parse_event(message.type, message.data, message.id)
        if message.id:
            self.last_id = message.id
            self.drops = 0
        if isinstance(event, CompletedEvent):
            self.done = True
        return event

    def dropped(self, exc: Exception | None) -> float:
        """The stream ended before `completed`: the delay before reconnecting, or raise."""
        self.check_deadline()
        self.drops += 1
        if self.drops > self.MAX_DROPS:
            if exc is not None and not self.fallback:
                raise exc
            raise StreamUnavailable(f"the stream kept ending before the job's completed event ({exc or 'closed'})")
        delay = self.decoder.retry_s if self.decoder.retry_s is not None else 1.0
        if self.deadline is not None:
            delay = min(delay, max(0.0, self.deadline - time.monotonic()))
        return delay

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise WaitTimeout(f"job {self.job_id} not finished in time")


class _Poller:
    """`wait` without a stream: polls the job and turns each change into the event the stream
    would have sent (queued position, progress), for the same progress callback."""

    def __init__(self, job_id: str, deadline: float | None, interval_s: float) -> None:
        self.job_id, self.deadline, self.interval_s = job_id, deadline, interval_s
        self.last: tuple[Any, ...] | None = None

    def events(self, job: Job) -> list[Event]:
        if job.status == "queued":
            key: tuple[Any, ...] = ("queued", job.position)
            event: Event = QueuedEvent(position=job.position, data={"status": "queued", "position": job.position})
        elif job.status == "running" and job.progress is not None:
            p = job.progress
            key = ("progress", p.stage, p.step, p.total)
            event = ProgressEvent(stage=p.stage, step=p.step, total=p.total, eta_s=p.eta_s, data=p.model_dump())
        else:
            return []
        if key == self.last:
            return []
        self.last = key
        return [event]

    def sleep_s(self) -> float:
        if self.deadline is None:
            return self.interval_s
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"job {self.job_id} not finished in time")
        return min(self.interval_s, left)


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def media_type_for(path: str | os.PathLike[str]) -> str:
    """The result media type for an output file name (.png, .webp, .jpg/.jpeg)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in RESULT_MEDIA:
        raise ValueError(f"{os.fspath(path)}: must end in .png, .webp or .jpg")
    return RESULT_MEDIA[suffix]


# --- the clients ----------------------------------------------------------------------------------

ProgressCallback = Callable[[Event], Any]


class Client:
    """The API's synchronous client. `progress` callbacks get every event before `completed`:
    `QueuedEvent`, `StartEvent`, `ProgressEvent` (stage, step, total, eta_s), `PreviewEvent`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._core = _Core(api_key, timeout, max_retries, max_retry_wait_s)
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, request: _Request, stream: bool = False) -> httpx.Response:
        retry = self._core.retry()
        while True:
            try:
                response = self._http.send(
                    request.build(self._http), stream=True, follow_redirects=request.follow_redirects
                )
            except httpx.TransportError as exc:
                delay = retry.after_transport_error(exc, request.safe)
                if delay is None:
                    raise
                _sleep(delay)
                continue
            delay = retry.after_response(response)
            if delay is not None:
                response.close()
                _sleep(delay)
                continue
            if response.is_error or not stream:
                try:
                    response.read()
                finally:
                    response.close()
            if response.is_error:
                raise api_error(response)
            return response

    def submit(
        self,
        params: ParamsInput,
        files: Mapping[str, FileInput],
        *,
        webhook: str | None = None,
        webhook_events: Sequence[str] | None = None,
        deadline_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Queue an edit: `params` a task model (`MoveParams(offset=[40, 0])`) or a dict with its
        `task`; `files` part name → path, bytes or PIL image."""
        request = self._core.submit(params, files, webhook, webhook_events, deadline_s, idempotency_key)
        return self._core.job(self._send(request))

    def get(self, job_id: str) -> Job:
        return self._core.job(self._send(self._core.get(job_id)))

    def cancel(self, job_id: str) -> Job:
        """Cancel: a queued job at once; a running one stops between two steps (still `running` here)."""
        return self._core.job(self._send(self._core.cancel(job_id)))

    def result_bytes(self, job_id: str, media_type: str = "image/png") -> bytes:
        return self._send(self._core.result(job_id, media_type)).content

    def result(self, job_id: str) -> Image.Image:
        return self._core.image(self._send(self._core.result(job_id, "image/png")))

    def events(self, job_id: str, last_event_id: str | None = None) -> Iterator[Event]:
        """The job's events until `completed` (included), reconnecting after `last_event_id`
        whenever the connection drops."""
        return self._follow(self._core.stream(job_id, last_event_id))

    def _follow(self, stream: _EventStream) -> Iterator[Event]:
        while True:
            error: Exception | None = None
            try:
                response = self._send(stream.request(self._core), stream=True)
                try:
                    stream.opened(response)
                    for line in response.iter_lines():
                        event = stream.feed(line)
                        if event is not None:
                            yield event
                            if stream.done:
                                return
                        stream.check_deadline()
                finally:
                    response.close()
            except httpx.TransportError as exc:
                error = exc
            except ApiError as exc:
                raise stream.refused(exc) from None
            _sleep(stream.dropped(error))

    def wait(
        self,
        job_id: str,
        progress: ProgressCallback | None = None,
        timeout: float | None = None,
        poll_interval_s: float = 0.5,
    ) -> Job:
        """Block until the job has finished, whatever its outcome; its final view. Follows the event
        stream (polls when the server has none); WaitTimeout after `timeout` seconds."""
        deadline = _deadline(timeout)
        try:
            # Closed on return: the stream's connection goes back at once when `completed` ends the wait.
            with contextlib.closing(self._follow(self._core.wait_stream(job_id, deadline))) as events:
                for event in events:
                    if isinstance(event, CompletedEvent):
                        if event.job is not None and event.job.finished:
                            return event.job
                        break  # the final view is not there (yet): the status route has it
                    if progress is not None:
                        progress(event)
        except StreamUnavailable:
            pass
        poller = _Poller(job_id, deadline, poll_interval_s)
        while True:
            job = self.get(job_id)
            if job.finished:
                return job
            for event in poller.events(job):
                if progress is not None:
                    progress(event)
            _sleep(poller.sleep_s())

    def edit(
        self,
        params: ParamsInput,
        files: Mapping[str, FileInput],
        *,
        progress: ProgressCallback | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> Image.Image:
        """submit + wait + result: the edited image; JobFailed when the job ends without one.
        `options` are submit's (webhook, webhook_events, deadline_s, idempotency_key)."""
        job = self.wait(self.submit(params, files, **options).id, progress=progress, timeout=timeout)
        if not job.succeeded:
            raise JobFailed(job)
        return self.result(job.id)


class AsyncClient:
    """The API's asyncio client: `Client`'s methods as coroutines (`events` an async iterator).
    A progress callback may be a plain function or a coroutine function."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._core = _Core(api_key, timeout, max_retries, max_retry_wait_s)
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, request: _Request, stream: bool = False) -> httpx.Response:
        retry = self._core.retry()
        while True:
            try:
                response = await self._http.send(
                    request.build(self._http), stream=True, follow_redirects=request.follow_redirects
                )
            except httpx.TransportError as exc:
                delay = retry.after_transport_error(exc, request.safe)
                if delay is None:
                    raise
                await _asleep(delay)
                continue
            delay = retry.after_response(response)
            if delay is not None:
                await response.aclose()
                await _asleep(delay)
                continue
            if response.is_error or not stream:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
            if response.is_error:
                raise api_error(response)
            return response

    async def submit(
        self,
        params: ParamsInput,
        files: Mapping[str, FileInput],
        *,
        webhook: str | None = None,
        webhook_events: Sequence[str] | None = None,
        deadline_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        request = self._core.submit(params, files, webhook, webhook_events, deadline_s, idempotency_key)
        return self._core.job(await self._send(request))

    async def get(self, job_id: str) -> Job:
        return self._core.job(await self._send(self._core.get(job_id)))

    async def cancel(self, job_id: str) -> Job:
        return self._core.job(await self._send(self._core.cancel(job_id)))

    async def result_bytes(self, job_id: str, media_type: str = "image/png") -> bytes:
        return (await self._send(self._core.result(job_id, media_type))).content

    async def result(self, job_id: str) -> Image.Image:
        return self._core.image(await self._send(self._core.result(job_id, "image/png")))

    def events(self, job_id: str, last_event_id: str | None = None) -> AsyncIterator[Event]:
        return self._follow(self._core.stream(job_id, last_event_id))

    async def _follow(self, stream: _EventStream) -> AsyncIterator[Event]:
        while True:
            error: Exception | None = None
            try:
                response = await self._send(stream.request(self._core), stream=True)
                try:
                    stream.opened(response)
                    async for line in response.aiter_lines():
                        event = stream.feed(line)
                        if event is not None:
                            yield event
                            if stream.done:
                                return
                        stream.check_deadline()
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                error = exc
            except ApiError as exc:
                raise stream.refused(exc) from None
            await _asleep(stream.dropped(error))

    async def wait(
        self,
        job_id: str,
        progress: ProgressCallback | Callable[[Event], Awaitable[Any]] | None = None,
        timeout: float | None = None,
        poll_interval_s: float = 0.5,
    ) -> Job:
        deadline = _deadline(timeout)
        try:
            async with contextlib.aclosing(self._follow(self._core.wait_stream(job_id, deadline))) as events:
                async for event in events:
                    if isinstance(event, CompletedEvent):
                        if event.job is not None and event.job.finished:
                            return event.job
                        break  # the final view is not there (yet): the status route has it
                    await _call(progress, event)
        except StreamUnavailable:
            pass
        poller = _Poller(job_id, deadline, poll_interval_s)
        while True:
            job = await self.get(job_id)
            if job.finished:
                return job
            for event in poller.events(job):
                await _call(progress, event)
            await _asleep(poller.sleep_s())

    async def edit(
        self,
        params: ParamsInput,
        files: Mapping[str, FileInput],
        *,
        progress: ProgressCallback | Callable[[Event], Awaitable[Any]] | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> Image.Image:
        job = await self.wait((await self.submit(params, files, **options)).id, progress=progress, timeout=timeout)
        if not job.succeeded:
            raise JobFailed(job)
        return await self.result(job.id)


async def _call(callback: Callable[[Event], Any] | None, event: Event) -> None:
    if callback is not None:
        answer = callback(event)
        if inspect.isawaitable(answer):
            await answer
