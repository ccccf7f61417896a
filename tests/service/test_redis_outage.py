"""Redis going away mid-service and coming back: polls answer 503 (never 500), then recover.

A small TCP proxy in front of the shared Redis stands in for the outage, so no test stops the
Redis that other suites use."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tests.service.helpers import REDIS_URL, submit


class TcpProxy:
    """Forwards 127.0.0.1:<port> to Redis; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int] | None = None) -> None:
        self.target = target or ("127.0.0.1", int(REDIS_URL.rsplit(":", 1)[1].split("/")[0]))
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.conns: list[socket.socket] = []
        self.server: socket.socket | None = None

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self.server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self.server is not None:
            try:  # wakes the thread blocked in accept(); close() alone would not on Linux
                self.server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.server.close()
            self.server = None
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.conns.clear()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    p = TcpProxy()
    p.start()
    yield p
    p.cut()


def test_poll_during_an_outage_is_503_then_recovers(proxy: TcpProxy, make_client: Callable[..., TestClient]) -> None:
    client = make_client(redis_url=f"redis://127.0.0.1:{proxy.port}/1")
    job_id = submit(client).json()["id"]
    assert client.get(f"/v1/edits/{job_id}").status_code == 200

    proxy.cut()
    down = client.get(f"/v1/edits/{job_id}")
    assert down.status_code == 503, down.text
    assert down.json()["error"]["code"] == "redis_unavailable" and "retry-after" in down.headers
    assert submit(client).status_code == 503
    assert client.get("/readyz").json()["missing"][0] == "redis"

    proxy.start()
    back = client.get(f"/v1/edits/{job_id}")
    assert back.status_code == 200 and back.json()["status"] == "queued"
    assert submit(client).status_code == 202
