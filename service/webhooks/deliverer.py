"""The deliverer: claims due webhook deliveries from Redis and posts them from a small thread pool.

A delivery is claimed by moving its entry in `keys.webhooks_due` from a due time to a lease (due
again in `lease_s`) in one optimistic transaction (WATCH, then the score checked, then MULTI/EXEC:
one process wins, and the entry is never absent, so a deliverer that dies mid-claim loses
nothing). Several deliverers (every API replica, `diffeditor webhooks` processes) thus share the
queue, and an attempt whose deliverer died is made again after the lease. The attempt then
either ends the delivery (delivered, given up, refused: the record goes) or schedules its retry
(the lease's entry moved to the retry time).

Each attempt: the destination is checked again (destinations.py; a host whose DNS answer turned
private is refused then, and logged), the request goes to the checked address with the URL's
`Host` (and for https its TLS server name), no redirect is followed, no connection is reused, and
the POST is cut off after `attempt_limit_s` in all (a timer shuts its socket), however slowly the
receiver trickles its answer, so the lease always outlasts it. The
body is built at the first attempt and stored: every retry sends the same bytes with the same
`webhook-id`, a new `webhook-timestamp` and signature. Retried with exponential backoff
(webhook_backoff_s, doubled, capped at MAX_BACKOFF_S) on timeouts, connection errors, 429 and
5xx until webhook_retry_s after the first attempt; any other answer ends it. Every attempt goes
to the job's delivery log and the counters (deliveries.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from typing import Any

import httpcore
import httpx
from redis.exceptions import WatchError

from service.job_out import job_out
from service.jobs import lifecycle
from service.jobs.context import JobContext
from service.jobs.status import FINISHED, JobStatus
from service.store import Store
from service.timestamps import iso_utc
from service.webhooks import deliveries, destinations, signing, tls

log = logging.getLogger("diffeditor.webhooks")

POLL_S = 0.2  # how often the queue is looked at when nothing was due
ERROR_WAIT_S = 2.0  # after a failed read of the queue
MAX_BACKOFF_S = 300.0
# A `completed` event is published once RQ has marked the job finished (worker/runtime.py); should a
# view still lag (another path, a replica's stale read), its body waits for the finished view this
# long (rechecked every DEFER_S), then says the event's status itself.
COMPLETION_GRACE_S = 5.0
DEFER_S = 0.1
CLAIM_TRIES = 5  # a claim's transaction is retried this often when another write to the queue interleaves


def _user_agent() -> str:
    try:
        return f"diffeditor-webhooks/{metadata.version('diffeditor')}"
    except metadata.PackageNotFoundError:
        return "diffeditor-webhooks"


@dataclasses.dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str | None
    retryable: bool


class _Gone(Exception):
    """The job of a delivery expired before its first attempt."""


class _Attempt:
    """The sockets one attempt opened, for its timer to shut when the attempt runs out of time."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.cut = False
        self.lock = threading.Lock()

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self.lock:
            self.sockets.append(sock)
            if self.cut:  # connected just as time ran out
                _shut(sock)

    def shut(self) -> None:
        with self.lock:
            self.cut = True
            for sock in self.sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the attempt's blocked read with an error
    except OSError:
        pass


class _TrackingBackend(httpcore.SyncBackend):
    """httpcore's sockets, each handed to the calling thread's attempt: httpx's timeouts bound each
    read, not the whole exchange, so a receiver trickling its answer a byte at a time would hold a
    thread (and outlive the lease) without the attempt's own timer."""

    def __init__(self) -> None:
        self.current = threading.local()

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        stream = super().connect_tcp(*args, **kwargs)
        attempt: _Attempt | None = getattr(self.current, "attempt", None)
        if attempt is not None:
            attempt.add(stream.get_extra_info("socket"))
        return stream


class Deliverer:
    """Claims and makes deliveries: `start()`/`stop()` a background thread, or `run_once()` by hand.
    `context`: the job context to use now (a callable, since the API's settings may be swapped)."""

    def __init__(
        self, context: JobContext | Callable[[], JobContext], store: Store | None = None, poll_s: float = POLL_S
    ) -> None:
        self._context = context if callable(context) else (lambda: context)
        self.store = store
        self.poll_s = poll_s
        self.concurrency = self._context().settings.webhook_concurrency
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="diffeditor-webhook")
        self._backend = _TrackingBackend()
        transport = httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
        # httpx's transport with httpcore's pool on the tracking backend (httpx takes no backend
        # of its own; tests/service/test_webhooks.py's trickling receiver fails if this stops working).
        transport._pool = httpcore.ConnectionPool(
            ssl_context=tls.tls_context(self._context().settings.webhook_ca_file),
            max_keepalive_connections=0,  # a connection is never reused for another host
            network_backend=self._backend,
        )
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: the request goes to the checked address
            headers={"user-agent": _user_agent()},
        )
        self._lock = threading.Lock()
        self._in_flight = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the loop ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, args=(self._stop,), name="diffeditor-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; attempts in flight are left to finish (or, when the process goes, to be
        made again after their lease)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self, stop: threading.Event) -> None:
        log.info("webhook deliverer started (%d at once)", self.concurrency)
        while not stop.is_set():
            try:
                claimed = self.run_once()
            except Exception as exc:  # Redis away: try again shortly, never die
                log.warning("webhooks: cannot read the delivery queue: %s", exc)
                stop.wait(ERROR_WAIT_S)
                continue
            if not claimed:
                stop.wait(self.poll_s)

    def run_once(self) -> int:
        """Claim the deliveries due now (as many as there are free threads) and start them; how many."""
        with self._lock:
            free = self.concurrency - self._in_flight
        if free <= 0:
            return 0
        ctx = self._context()
        now = time.time()
        due = ctx.redis.zrangebyscore(ctx.keys.webhooks_due, "-inf", now, start=0, num=free)
        claimed = 0
        for raw in due:
            webhook_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            if not self._claim(ctx, webhook_id, now):
                continue  # another deliverer has it
            claimed += 1
            with self._lock:
                self._in_flight += 1
            self._pool.submit(self._attempt_guarded, webhook_id)
        return claimed

    def attempt_limit_s(self, ctx: JobContext) -> float:
        """The most one POST may take, connect to status line (webhook_timeout_s each)."""
        return 2 * ctx.settings.webhook_timeout_s

    def lease_s(self, ctx: JobContext) -> float:
        """How long a claimed attempt may take before another deliverer makes it again: the POST's
        limit and room for the DNS check and Redis."""
        return self.attempt_limit_s(ctx) + ctx.settings.webhook_timeout_s + 30.0

    def _claim(self, ctx: JobContext, webhook_id: str, now: float) -> bool:
        """Lease the delivery if it is still due; False when another deliverer has it or it ended.
        Not a Lua script: embedded mode's fakeredis has no Lua."""
        key = ctx.keys.webhooks_due
        for _ in range(CLAIM_TRIES):
            with ctx.redis.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    score = pipe.zscore(key, webhook_id)
                    if score is None or score > now:
                        return False
                    pipe.multi()
                    pipe.zadd(key, {webhook_id: now + self.lease_s(ctx)})
                    pipe.execute()
                    return True
                except WatchError:  # the queue changed meanwhile (any entry): look again
                    continue
        return False  # still due: the next round claims it

    def _attempt_guarded(self, webhook_id: str) -> None:
        try:
            self.attempt(webhook_id)
        except Exception as exc:
            log.warning("webhook %s: attempt failed on our side: %s", webhook_id, exc)
            self._failed_on_our_side(webhook_id, exc)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _failed_on_our_side(self, webhook_id: str, exc: Exception) -> None:
        """An attempt that raised is logged and retried like a connection error, so within
        webhook_retry_s, not forever; when even that fails (Redis away), its lease brings it back."""
        try:
            ctx = self._context()
            record = deliveries.load(ctx, webhook_id)
            if record is None:
                return
            now = time.time()
            record["first_at"] = record["first_at"] or now  # the retry window starts here at the latest
            self._end(ctx, record, now, Answer(None, f"error on the server's side: {type(exc).__name__}", True))
        except Exception as again:  # noqa: BLE001
            log.warning("webhook %s: not rescheduled (%s); its lease brings it back", webhook_id, again)

    # -- one attempt -------------------------------------------------------------------------------

    def attempt(self, webhook_id: str) -> str | None:
        """Make one attempt of a claimed delivery; its outcome (delivered, retrying, failed,
        refused), or None when there was nothing to do yet (deferred) or any more (gone)."""
        ctx = self._context()
        record = deliveries.load(ctx, webhook_id)
        if record is None:  # expired with its job
            ctx.redis.zrem(ctx.keys.webhooks_due, webhook_id)
            return None
        now = time.time()
        try:
            destination = destinations.check(record["url"], ctx.settings.webhook_allow_private)
        except destinations.Refused as exc:
            if exc.code == "webhook_unresolvable":  # a DNS failure may pass: retried like a connection error
                return self._end(ctx, record, now, Answer(None, f"connection error: {exc.message}", True))
            log.warning("webhook %s of job %s refused: %s", webhook_id, record["job_id"], exc.message)
            return self._end(ctx, record, now, Answer(None, f"refused: {exc.message}", False), outcome="refused")
        if record["body"] is None:
            try:
                body = self._body(ctx, record, now)
            except _Gone:
                return self._end(ctx, record, now, Answer(None, "the job is gone (expired)", False))
            if body is None:
                ctx.redis.zadd(ctx.keys.webhooks_due, {webhook_id: now + DEFER_S})
                return None
            record["body"], record["first_at"] = body, record["first_at"] or now
        answer = self._post(ctx, destination, record)
        return self._end(ctx, record, time.time(), answer, attempt_at=now)

    def _body(self, ctx: JobContext, record: dict[str, Any], now: float) -> str | None:
        """The delivery's JSON body from the job's view now; None: wait for the view to catch up."""
        view = lifecycle.get_job(ctx, record["job_id"])
        if view is None:
            raise _Gone()
        if record["event"] == "completed" and view.status not in FINISHED:
            if now - float(record["scheduled_at"]) < COMPLETION_GRACE_S:
                return None
            data = record.get("data") or {}
            view = dataclasses.replace(view, status=JobStatus(data.get("status", "failed")), error=data.get("error"))
        # Absolute links, from the URL the job was submitted at: a receiver has no base to resolve them on.
        out = job_out(view, str(view.options.get("links_base") or ""), self.store).model_dump(mode="json")
        return json.dumps(
            {"type": f"edit.{record['event']}", "timestamp": iso_utc(now), "data": out}, separators=(",", ":")
        )

    def _post(self, ctx: JobContext, destination: destinations.Destination, record: dict[str, Any]) -> Answer:
        body = str(record["body"]).encode("utf-8")
        headers = {
            "content-type": "application/json",
            "host": destination.netloc,
            **signing.headers(ctx.settings.webhook_secret, record["webhook_id"], body),
        }
        extensions = {"sni_hostname": destination.host} if destination.scheme == "https" else {}
        limit_s = ctx.settings.webhook_timeout_s
        attempt = _Attempt()
        timer = threading.Timer(self.attempt_limit_s(ctx), attempt.shut)
        timer.daemon = True
        self._backend.current.attempt = attempt
        timer.start()
        try:
            for index, address in enumerate(destination.addresses):
                try:
                    with self._client.stream(
                        "POST",
                        destination.pinned_url(address),
                        content=body,
                        headers=headers,
                        extensions=extensions,
                        timeout=limit_s,
                    ) as response:
                        code = response.status_code  # the body is never read
                    break
                except (httpx.ConnectError, httpx.ConnectTimeout):  # nothing was sent: the next address
                    if attempt.cut or index == len(destination.addresses) - 1:
                        raise
        except httpx.TimeoutException:
            return Answer(None, f"timeout (no answer within {limit_s:g} s)", True)
        except httpx.HTTPError as exc:
            if attempt.cut:
                return Answer(None, f"timeout (the attempt took over {self.attempt_limit_s(ctx):g} s)", True)
            return Answer(None, f"connection error: {exc or type(exc).__name__}", True)
        finally:
            timer.cancel()
            self._backend.current.attempt = None
        if 200 <= code < 300:
            return Answer(code, None, False)
        if code == 429 or code >= 500:
            return Answer(code, f"HTTP {code}", True)
        if 300 <= code < 400:
            return Answer(code, f"HTTP {code}: redirects are not followed", False)
        return Answer(code, f"HTTP {code}", False)

    def _end(
        self,
        ctx: JobContext,
        record: dict[str, Any],
        now: float,
        answer: Answer,
        outcome: str | None = None,
        attempt_at: float | None = None,
    ) -> str:
        """Log the attempt, count it, then retry the delivery or end it."""
        settings = ctx.settings
        attempt = int(record["attempt"]) + 1
        next_at: float | None = None
        if outcome is None:
            if answer.error is None:
                outcome = "delivered"
            elif answer.retryable:
                delay = min(settings.webhook_backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
                first = float(record["first_at"] or now)
                if now + delay <= first + settings.webhook_retry_s:
                    outcome, next_at = "retrying", now + delay
                else:
                    outcome = "failed"
            else:
                outcome = "failed"
        entry = {
            "event": record["event"],
            "webhook_id": record["webhook_id"],
            "attempt": attempt,
            "at": iso_utc(attempt_at if attempt_at is not None else now),
            "status_code": answer.status_code,
            "error": answer.error,
            "next_attempt_at": iso_utc(next_at) if next_at is not None else None,
        }
        webhook_id = record["webhook_id"]
        pipe = ctx.redis.pipeline(transaction=False)
        deliveries.append_log(ctx, record["job_id"], entry, pipe)
        deliveries.count(ctx, record["event"], outcome, pipe)
        if next_at is not None:
            record["attempt"] = attempt
            deliveries.save(ctx, record, pipe)
            pipe.zadd(ctx.keys.webhooks_due, {webhook_id: next_at})
        else:
            pipe.zrem(ctx.keys.webhooks_due, webhook_id)
            pipe.delete(ctx.keys.webhook(webhook_id))
        pipe.execute()
        if outcome == "failed":
            log.warning(
                "webhook %s of job %s: gave up after %d attempts (%s)",
                webhook_id,
                record["job_id"],
                attempt,
                answer.error,
            )
        return outcome
