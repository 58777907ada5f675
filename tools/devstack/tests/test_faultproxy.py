"""The fault proxy between a real HTTP server and a real client: pass, latency, refuse, blackhole."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from rag_devstack.faultproxy import FaultProxy


class Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture
def proxy(upstream_port: int) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", upstream_port) as running:
        yield running


def test_passes_requests_through(proxy: FaultProxy) -> None:
    response = httpx.get(f"{proxy.url}/", timeout=5)
    assert response.text == "hello"
    assert proxy.connections_seen == 1


def test_latency_delays_the_answer(proxy: FaultProxy) -> None:
    proxy.set_latency(0.3)
    started = time.perf_counter()
    assert httpx.get(f"{proxy.url}/", timeout=5).text == "hello"
    assert time.perf_counter() - started >= 0.3


def test_refuse_cuts_new_and_live_connections_then_pass_recovers(proxy: FaultProxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        assert client.get("/").status_code == 200
        proxy.set_mode("refuse")
        with pytest.raises(httpx.TransportError):
            client.get("/")
        proxy.set_mode("pass")
        assert client.get("/").text == "hello"


def test_blackhole_accepts_and_never_answers(proxy: FaultProxy) -> None:
    proxy.set_mode("blackhole")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{proxy.url}/", timeout=httpx.Timeout(0.5, connect=2))
    assert proxy.connections_seen == 1
