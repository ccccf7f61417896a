"""Webhooks end to end on loopback: real HTTP receivers (ThreadingHTTPServer threads), jobs run by
an in-process worker with a fake editor, the deliverer driven by the test (or the API's own
thread). Short timeouts and backoff from the settings keep it fast."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from redis import Redis
from redis.exceptions import RedisError

from service.jobs.context import JobContext
from service.settings import Settings
from service.webhooks import deliveries, destinations, signing
from service.webhooks.deliverer import Deliverer
from tests.service.helpers import submit

SECRET = "whsec_" + base64.b64encode(b"a test secret of 32 bytes, long!").decode()
FAST = {
    "webhook_secret": SECRET,
    "webhook_allow_private": True,
    "webhook_timeout_s": 0.5,
    "webhook_backoff_s": 0.05,
    "webhook_retry_s": 10.0,
    "webhook_progress_interval_s": 0.0,
}


# -- receivers ------------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A loopback HTTP server; `answer(index, headers, body)` gives each request's status."""

    answer: Callable[[int, dict[str, str], bytes], int]
    tls: ssl.SSLContext | None = None  # https, with this server context
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)  # wakes a receiver that hangs
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                index = len(receiver.requests)
                receiver.requests.append((headers, body))
                status = receiver.answer(index, headers, body)
                if status == 0:  # never answer
                    receiver.release.wait(10)
                    return
                if status < 0:  # answer, a byte of a header every 0.1 s (each read within any timeout)
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nx-slow: ")
                    self.wfile.flush()
                    while not receiver.release.wait(0.1):
                        try:
                            self.wfile.write(b"a")
                            self.wfile.flush()
                        except OSError:  # the deliverer hung up
                            return
                    return
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def make(answer: Callable[[int, dict[str, str], bytes], int], tls: ssl.SSLContext | None = None) -> Receiver:
        started.append(Receiver(answer, tls).start())
        return started[-1]

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Host name -> the addresses getaddrinfo answers for it (an empty list: it does not resolve);
    any other name resolves as usual."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list:
        if host in answers:
            if not answers[host]:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [
                (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port or 0)))
                for ip in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


# -- helpers --------------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not true after {timeout} s")


def run_jobs(client: TestClient, redis: Redis, steps: int = 4) -> None:
    """Play a worker: an in-process RQ worker with a fake editor until the queue is empty."""
    from tests.worker.conftest import FakeEditor  # torch: only the tests that run a job pay for it
    from worker.runtime import build_runtime, run_worker

    settings: Settings = client.app.state.settings
    runtime = build_runtime(
        settings, redis, f"wh-{time.monotonic_ns()}", editor=FakeEditor(steps=steps), store=client.app.state.store
    )
    run_worker(runtime, burst=True, in_main_thread=False)


def submit_with_webhook(client: TestClient, url: str, events: list[str] | None = None) -> Any:
    params: dict[str, Any] = {"task": "move", "offset": [8, 0], "steps": 4, "webhook": url}
    if events is not None:
        params["webhook_events"] = events
    return submit(client, params)


def submit_ending_at_once(client: TestClient, url: str) -> str:
    """A job with a webhook whose `completed` event is published at once: canceled while queued."""
    job_id = str(submit_with_webhook(client, url).json()["id"])
    assert client.delete(f"/v1/edits/{job_id}").json()["status"] == "canceled"
    return job_id


def deliveries_of(client: TestClient, job_id: str) -> list[dict]:
    body = client.get(f"/v1/edits/{job_id}").json()
    return body["webhook"]["deliveries"]


def nothing_due(redis: Redis, settings: Settings) -> bool:
    return redis.zcard(JobContext(redis, settings).keys.webhooks_due) == 0


@pytest.fixture
def deliverer(redis: Redis) -> Iterator[Callable[[TestClient], Deliverer]]:
    started: list[Deliverer] = []

    def start(client: TestClient) -> Deliverer:
        d = Deliverer(JobContext(redis, client.app.state.settings), store=client.app.state.store, poll_s=0.02)
        d.start()
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


# -- signing --------------------------------------------------------------------------------------


def test_signatures_are_standard_webhooks_hmacs_and_verify_checks_them() -> None:
    body = b'{"type":"edit.completed"}'
    headers = signing.headers(SECRET, "msg_1", body, timestamp=1_700_000_000)
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, b"msg_1.1700000000." + body, hashlib.sha256).digest()
    assert headers == {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    plain = signing.headers("plain text", "msg_1", body, timestamp=1)["webhook-signature"]
    assert plain == "v1," + base64.b64encode(hmac.new(b"plain text", b"msg_1.1." + body, "sha256").digest()).decode()

    signing.verify(SECRET, {k.upper(): v for k, v in headers.items()}, body, now=1_700_000_100)
    rotated = {**headers, "webhook-signature": "v1,bm90IGl0 " + headers["webhook-signature"]}
    signing.verify(SECRET, rotated, body, now=1_700_000_000)
    for bad_headers, bad_body, now in (
        (headers, body + b" ", 1_700_000_000),  # another body
        (headers, body, 1_700_000_000 + 301),  # too old
        ({**headers, "webhook-id": "msg_2"}, body, 1_700_000_000),
        ({k: v for k, v in headers.items() if k != "webhook-signature"}, body, 1_700_000_000),
    ):
        with pytest.raises(signing.InvalidSignature):
            signing.verify(SECRET, bad_headers, bad_body, now=now)
    with pytest.raises(signing.InvalidSignature):
        signing.verify("whsec_" + base64.b64encode(b"other").decode(), headers, body, now=1_700_000_000)


# -- the SSRF rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://100.64.0.1/hook",
        "http://internal.test/hook",  # a name that resolves to a private address
        "http://split.test/hook",  # one public address and one private: refused
    ],
)
def test_private_destinations_are_refused_at_submit(
    make_client: Callable[..., TestClient], fake_dns: dict[str, list[str]], url: str
) -> None:
    fake_dns["internal.test"] = ["192.168.1.5"]
    fake_dns["split.test"] = ["93.184.216.34", "10.0.0.8"]
    client = make_client(webhook_secret=SECRET)
    response = submit_with_webhook(client, url)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "webhook" and error["code"] == "webhook_refused", error
    assert "public addresses only" in error["message"]
    # The same URL is fine where private destinations are allowed.
    assert submit_with_webhook(make_client(webhook_secret=SECRET, webhook_allow_private=True), url).status_code == 202


def test_other_webhook_errors_at_submit(make_client: Callable[..., TestClient], fake_dns: dict[str, list[str]]) -> None:
    fake_dns["nowhere.test"] = []
    fake_dns["public.test"] = ["93.184.216.34"]
    client = make_client(webhook_secret=SECRET)
    cases = {
        "http://nowhere.test/hook": "webhook_unresolvable",
        "ftp://public.test/hook": "invalid_value",
        "http:///hook": "invalid_value",
        "http://user:pw@public.test/hook": "invalid_value",
        "http://public.test:99999/hook": "invalid_value",
        "http://" + "ü" * 70 + ".test/hook": "invalid_value",  # no IDNA form (a label over 63)
    }
    for url, code in cases.items():
        response = submit_with_webhook(client, url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["code"] == code and response.json()["error"]["field"] == "webhook", url
    accepted = submit_with_webhook(client, "https://public.test/hook", ["start", "completed"])
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["webhook"] == {
        "url": "https://public.test/hook",
        "events": ["start", "completed"],
        "deliveries": [],
    }
    disabled = submit_with_webhook(make_client(), "https://public.test/hook")  # no webhook_secret
    assert disabled.status_code == 422
    assert disabled.json()["error"]["code"] == "webhooks_disabled"
    assert disabled.json()["error"]["field"] == "webhook"


def test_a_dns_answer_turned_private_after_submit_is_refused_at_delivery(
    make_client: Callable[..., TestClient],
    redis: Redis,
    fake_dns: dict[str, list[str]],
    deliverer: Callable[[TestClient], Deliverer],
) -> None:
    fake_dns["rebind.test"] = ["93.184.216.34"]
    client = make_client(**{**FAST, "webhook_allow_private": False})
    job_id = submit_with_webhook(client, "http://rebind.test/hook").json()["id"]
    fake_dns["rebind.test"] = ["10.0.0.7"]  # the DNS answer changes
    assert client.delete(f"/v1/edits/{job_id}").json()["status"] == "canceled"  # publishes `completed`
    deliverer(client)
    log = wait_for(lambda: deliveries_of(client, job_id))
    assert len(log) == 1
    assert log[0]["event"] == "completed" and log[0]["status_code"] is None and log[0]["next_attempt_at"] is None
    assert log[0]["error"].startswith("refused: rebind.test resolves to a private address (10.0.0.7)")
    assert wait_for(lambda: nothing_due(redis, client.app.state.settings))
    assert 'diffeditor_webhook_deliveries_total{event="completed",outcome="refused"} 1.0' in client.get("/metrics").text


def test_an_address_that_cannot_be_connected_to_gives_way_to_the_hosts_next_one_and_idn_hosts_go_as_idna(
    make_client: Callable[..., TestClient],
    redis: Redis,
    receiver: Callable[..., Receiver],
    fake_dns: dict[str, list[str]],
    deliverer: Callable[[TestClient], Deliverer],
) -> None:
    hook = receiver(lambda i, headers, body: 204)  # on 127.0.0.1 only
    port = hook.url.split(":")[2].split("/")[0]
    # A dual-stack host, the IPv6 address first; an internationalized name, resolved and sent as IDNA.
    fake_dns["xn--dual-stck-12a.test"] = ["::1", "127.0.0.1"]
    client = make_client(**FAST)
    job_id = submit_ending_at_once(client, f"http://dual-stäck.test:{port}/hook")
    deliverer(client)
    log = wait_for(lambda: deliveries_of(client, job_id))
    assert [(d["status_code"], d["error"]) for d in log] == [(204, None)]  # one attempt, on the second address
    assert [headers["host"] for headers, _ in hook.requests] == [f"xn--dual-stck-12a.test:{port}"]


def test_https_goes_to_the_checked_address_with_the_urls_name_for_sni_and_the_certificate_check(
    make_client: Callable[..., TestClient],
    receiver: Callable[..., Receiver],
    fake_dns: dict[str, list[str]],
    deliverer: Callable[[TestClient], Deliverer],
    tmp_path: Path,
) -> None:
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.example.test").configure_cert(server_tls)
    names: list[str | None] = []
    server_tls.sni_callback = lambda sock, name, context: names.append(name)  # type: ignore[assignment,misc,func-returns-value]
    hook = receiver(lambda i, headers, body: 204, tls=server_tls)
    fake_dns["hooks.example.test"] = fake_dns["elsewhere.example.test"] = ["127.0.0.1"]
    client = make_client(**{**FAST, "webhook_ca_file": tmp_path / "ca.pem", "webhook_retry_s": 0.0})
    jobs = {}
    for host in ("hooks.example.test", "elsewhere.example.test"):  # the certificate is for the first only
        jobs[host] = submit_ending_at_once(client, f"https://{host}:{hook.port}/hook")
    deliverer(client)
    delivered = wait_for(lambda: deliveries_of(client, jobs["hooks.example.test"]))
    refused = wait_for(lambda: deliveries_of(client, jobs["elsewhere.example.test"]))
    assert [d["status_code"] for d in delivered] == [204]
    assert refused[0]["status_code"] is None and "certificate" in refused[0]["error"].lower(), refused
    assert [headers["host"] for headers, _ in hook.requests] == [f"hooks.example.test:{hook.port}"]
    assert "hooks.example.test" in names and "127.0.0.1" not in names  # SNI: the URL's name, not the address


# -- deliveries -----------------------------------------------------------------------------------


def test_a_receiver_answering_500_twice_gets_the_same_delivery_three_times(
    make_client: Callable[..., TestClient],
    redis: Redis,
    receiver: Callable[..., Receiver],
    deliverer: Callable[[TestClient], Deliverer],
) -> None:
    hook = receiver(lambda i, headers, body: 500 if i < 2 else 200)
    client = make_client(**FAST)
    job_id = submit_with_webhook(client, hook.url).json()["id"]
    run_jobs(client, redis)
    deliverer(client)
    log = wait_for(lambda: (d := deliveries_of(client, job_id)) and len(d) == 3 and d)
    assert [d["status_code"] for d in log] == [500, 500, 200]
    assert [d["attempt"] for d in log] == [1, 2, 3]
    assert [d["error"] for d in log] == ["HTTP 500", "HTTP 500", None]
    assert [d["next_attempt_at"] is not None for d in log] == [True, True, False]
    assert len({d["webhook_id"] for d in log}) == 1 and all(d["event"] == "completed" for d in log)

    assert len(hook.requests) == 3
    ids = {headers["webhook-id"] for headers, _ in hook.requests}
    assert ids == {log[0]["webhook_id"]}
    bodies = {body for _, body in hook.requests}
    assert len(bodies) == 1  # the same body every time, built at the first attempt
    for headers, body in hook.requests:
        signing.verify(SECRET, headers, body)
        assert headers["content-type"] == "application/json"
    payload = json.loads(bodies.pop())
    assert payload["type"] == "edit.completed" and payload["timestamp"].endswith("Z")
    assert payload["data"]["id"] == job_id and payload["data"]["status"] == "succeeded"
    assert payload["data"]["webhook"]["url"] == hook.url
    metrics = client.get("/metrics").text
    assert 'diffeditor_webhook_deliveries_total{event="completed",outcome="retrying"} 2.0' in metrics
    assert 'diffeditor_webhook_deliveries_total{event="completed",outcome="delivered"} 1.0' in metrics
    assert wait_for(lambda: nothing_due(redis, client.app.state.settings))
    assert redis.get(JobContext(redis, client.app.state.settings).keys.webhook(log[0]["webhook_id"])) is None


def test_a_receiver_that_never_answers_changes_nothing_but_the_delivery_log(
    make_client: Callable[..., TestClient],
    redis: Redis,
    receiver: Callable[..., Receiver],
    deliverer: Callable[[TestClient], Deliverer],
) -> None:
    dead = receiver(lambda i, headers, body: 0)
    alive = receiver(lambda i, headers, body: 204)
    # Each event: an attempt hangs 1 s, its retry 0.1 s later hangs 1 s, the next would be past 1.3 s.
    client = make_client(**{**FAST, "webhook_timeout_s": 1.0, "webhook_retry_s": 1.3, "webhook_backoff_s": 0.1})
    dead_job = submit_with_webhook(client, dead.url, ["start", "progress", "completed"]).json()["id"]
    t0 = time.monotonic()
    run_jobs(client, redis)
    worker_s = time.monotonic() - t0
    assert worker_s < 10  # the worker only scheduled: it never waited for a receiver
    assert client.get(f"/v1/edits/{dead_job}").json()["status"] == "succeeded"
    assert client.get(f"/v1/edits/{dead_job}/result").status_code == 200

    deliverer(client)
    time.sleep(0.1)  # the dead receiver's first attempts are hanging now
    alive_job = submit_ending_at_once(client, alive.url)  # a `completed` event for the live receiver
    started = time.monotonic()
    wait_for(lambda: alive.requests)
    assert time.monotonic() - started < 0.8  # not behind the hanging attempts (webhook_timeout_s 1)

    assert wait_for(lambda: nothing_due(redis, client.app.state.settings), timeout=15)
    log = deliveries_of(client, dead_job)
    assert {d["event"] for d in log} >= {"start", "progress", "completed"}
    assert all(d["status_code"] is None and d["error"].startswith("timeout") for d in log), log
    finals = [d for d in log if d["next_attempt_at"] is None]
    assert len(finals) == len({d["webhook_id"] for d in log})  # each event given up once
    assert max(d["attempt"] for d in log) >= 2  # retried within webhook_retry_s
    assert deliveries_of(client, alive_job)[0]["status_code"] == 204
    assert client.get(f"/v1/edits/{dead_job}").json()["status"] == "succeeded"  # still


def test_a_receiver_trickling_its_answer_is_cut_off_at_the_attempt_limit(
    make_client: Callable[..., TestClient],
    redis: Redis,
    receiver: Callable[..., Receiver],
    deliverer: Callable[[TestClient], Deliverer],
) -> None:
    slow = receiver(lambda i, headers, body: -1)
    client = make_client(**{**FAST, "webhook_timeout_s": 0.5, "webhook_retry_s": 0.0})
    job = submit_ending_at_once(client, slow.url)
    started = time.monotonic()
    d = deliverer(client)
    assert d.attempt_limit_s(JobContext(redis, client.app.state.settings)) == 1.0
    log = wait_for(lambda: deliveries_of(client, job), timeout=15)
    took = time.monotonic() - started
    assert 1.0 <= took < 4.0, took  # every read came within 0.5 s: only the attempt's own limit ends it
    assert log[0]["status_code"] is None and log[0]["error"].startswith("timeout (the attempt took over 1 s)"), log


def test_an_attempt_failing_on_our_side_is_logged_and_retried_within_the_window_not_forever(
    make_client: Callable[..., TestClient],
    redis: Redis,
    receiver: Callable[..., Receiver],
    deliverer: Callable[[TestClient], Deliverer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = receiver(lambda i, headers, body: 204)

    def broken(*args: Any) -> dict[str, str]:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(signing, "headers", broken)
    client = make_client(**{**FAST, "webhook_retry_s": 0.3})
    job = submit_ending_at_once(client, hook.url)
    deliverer(client)
    log = wait_for(lambda: (d := deliveries_of(client, job)) and d[-1]["next_attempt_at"] is None and d)
    assert all(d["error"] == "error on the server's side: RuntimeError" for d in log) and len(log) >= 2
    assert wait_for(lambda: nothing_due(redis, client.app.state.settings))
    assert hook.requests == []


def test_claims_lease_a_due_delivery_once_and_retry_when_the_queue_changes_under_them(redis: Redis) -> None:
    settings = Settings(**FAST)
    ctx = JobContext(redis, settings)
    key = ctx.keys.webhooks_due
    redis.zadd(key, {"msg_a": 100.0, "msg_b": 100.0})
    d = Deliverer(ctx)
    try:
        lease = d.lease_s(ctx)
        real_lease_s = d.lease_s
        interleaved: list[str] = []

        def lease_s_with_a_write_between(c: JobContext) -> float:  # runs inside the claim's transaction
            if not interleaved:
                interleaved.append("x")
                Redis(connection_pool=redis.connection_pool).zadd(key, {"msg_other": 500.0})
            return real_lease_s(c)

        d.lease_s = lease_s_with_a_write_between  # type: ignore[method-assign]
        assert d._claim(ctx, "msg_a", now=200.0)  # its first try lost to the write, the second won
        assert interleaved and redis.zscore(key, "msg_a") == 200.0 + lease
        assert not d._claim(ctx, "msg_a", now=200.0)  # leased: not due again until the lease ends
        assert not d._claim(ctx, "msg_gone", now=200.0)  # ended (not in the queue): nothing re-added
        assert redis.zscore(key, "msg_gone") is None
        assert d._claim(ctx, "msg_b", now=200.0)
    finally:
        d.stop()
        redis.delete(key)


def test_a_receiver_verifies_every_signature_with_its_own_hmac(
    make_client: Callable[..., TestClient],
    redis: Redis,
    receiver: Callable[..., Receiver],
    fake_dns: dict[str, list[str]],
) -> None:
    key = base64.b64decode(SECRET.removeprefix("whsec_"))

    def check(index: int, headers: dict[str, str], body: bytes) -> int:
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        fresh = abs(time.time() - int(headers["webhook-timestamp"])) < 60
        return 200 if fresh and hmac.compare_digest(expected, headers["webhook-signature"]) else 401

    hook = receiver(check)
    port = hook.url.split(":")[2].split("/")[0]
    fake_dns["hooks.example.test"] = ["127.0.0.1"]
    client = make_client(**{**FAST, "webhook_progress_interval_s": 30.0})
    url = f"http://hooks.example.test:{port}/hook"
    job_id = submit_with_webhook(client, url, ["start", "progress", "completed"]).json()["id"]
    run_jobs(client, redis, steps=6)
    with client:  # the API's lifespan: its own deliverer thread
        log = wait_for(lambda: (d := deliveries_of(client, job_id)) and len(d) >= 3 and d)
    assert [d["status_code"] for d in log] == [200, 200, 200]
    # Progress: one per 30 s. Deliveries due together go out in parallel, in no promised order.
    assert sorted(d["event"] for d in log) == ["completed", "progress", "start"]
    assert len({d["webhook_id"] for d in log}) == 3
    # The request went to the address checked, with the URL's own host name.
    assert {headers["host"] for headers, _ in hook.requests} == {f"hooks.example.test:{port}"}
    types = sorted(json.loads(body)["type"] for _, body in hook.requests)
    assert types == ["edit.completed", "edit.progress", "edit.start"]
    # Links absolute, on the URL the job was submitted at (TestClient's http://testserver).
    links = [json.loads(body)["data"]["links"] for _, body in hook.requests]
    assert {link["result"] for link in links} == {f"http://testserver/v1/edits/{job_id}/result"}


def test_scheduling_never_raises_into_its_caller(
    redis: Redis, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = JobContext(redis, make_settings(**{**FAST, "webhook_progress_interval_s": 0.5}))
    options = {"webhook": "http://127.0.0.1:9/", "webhook_events": ["progress", "completed"]}
    assert deliveries.schedule(ctx, "a" * 32, "queued", {}, options) is None  # never a queued webhook
    assert deliveries.schedule(ctx, "a" * 32, "completed", {}, {"webhook_events": ["completed"]}) is None
    assert deliveries.schedule(ctx, "a" * 32, "start", {}, options) is None  # not asked for
    assert deliveries.schedule(ctx, "a" * 32, "progress", {}, options) is not None
    assert deliveries.schedule(ctx, "a" * 32, "progress", {}, options) is None  # throttled
    assert redis.zcard(ctx.keys.webhooks_due) == 1

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RedisError("down")

    monkeypatch.setattr(redis, "set", broken)
    assert deliveries.schedule(ctx, "b" * 32, "progress", {}, options) is None  # logged, not raised


def test_forbidden_reasons() -> None:
    import ipaddress

    expected = {
        "8.8.8.8": None,
        "2606:4700::1111": None,
        "::ffff:10.0.0.1": "private",
        "fc00::1": "private",
        "::": "unspecified",
        "ff02::1": "multicast",
        "fec0::1": "site-local",
        # IPv6 addresses that carry an IPv4 one are judged by it too
        "2002:7f00:1::": "loopback",  # 6to4 of 127.0.0.1
        "2002:a00:1::1": "private",  # 6to4 of 10.0.0.1
        "2002:808:808::1": None,  # 6to4 of 8.8.8.8
        "64:ff9b::a9fe:a9fe": "link-local",  # NAT64 of 169.254.169.254, the cloud metadata address
        "64:ff9b::808:808": None,  # NAT64 of 8.8.8.8 (what DNS64 answers on an IPv6-only network)
        "::7f00:1": "reserved",  # IPv4-compatible (deprecated)
        "2001:0:4136:e378:8000:63bf:3fff:fdd2": "private",  # Teredo
        "100.64.0.1": "non-global",  # shared address space
    }
    assert {ip: destinations.forbidden_reason(ipaddress.ip_address(ip)) for ip in expected} == expected


def test_the_receiver_in_the_api_docs_accepts_real_deliveries_and_refuses_forgeries(
    make_client: Callable[..., TestClient],
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
    deliverer: Callable[[TestClient], Deliverer],
) -> None:
    from tests.doc_snippets import REPO, fenced_blocks, section

    (snippet,) = fenced_blocks(section((REPO / "docs" / "api.md").read_text(), "Webhooks"), "python")
    monkeypatch.setenv("DIFFEDITOR_WEBHOOK_SECRET", SECRET)
    namespace: dict[str, Any] = {"__name__": "docs_receiver"}
    exec(compile(snippet, "docs/api.md", "exec"), namespace)  # as written, but not its __main__

    body = b'{"type":"edit.start","data":{}}'
    headers = signing.headers(SECRET, "msg_doc", body)
    assert namespace["verify"](SECRET, headers, body) == {"type": "edit.start", "data": {}}
    with pytest.raises(ValueError):
        namespace["verify"](SECRET, headers, body + b" ")

    server = ThreadingHTTPServer(("127.0.0.1", 0), namespace["Receiver"])
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        client = make_client(**FAST)
        job_id = submit_with_webhook(client, url).json()["id"]
        client.delete(f"/v1/edits/{job_id}")
        deliverer(client)
        log = wait_for(lambda: deliveries_of(client, job_id))
        assert log[0]["status_code"] == 204, log
        forged = signing.headers("another secret", "msg_forged", body)
        assert httpx.post(url, content=body, headers=forged, trust_env=False).status_code == 401
        assert httpx.post(url, content=body, trust_env=False).status_code == 401  # unsigned
    finally:
        server.shutdown()
        server.server_close()
