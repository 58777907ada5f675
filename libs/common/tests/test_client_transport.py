"""Both upstream transports speak to a real server through the same ServiceClient API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import BaseModel

from rag_common.errors import UpstreamUnavailable
from rag_common.http import ServiceClient
from rag_common.settings import ServiceSettings


class Echo(BaseModel):
    path: str
    token: str


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = Echo(path=self.path, token=self.headers.get("X-Internal-Token", "")).model_dump_json().encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_each_transport_calls_with_the_token_and_parses_the_answer(
    server_url: str, transport: str
) -> None:
    settings = ServiceSettings(upstream_transport=transport, internal_token="tok")
    client = ServiceClient.from_settings("echo", server_url, settings)
    try:
        answer = await client.call("POST", "/v1/echo", Echo, body={"x": 1})
    finally:
        await client.aclose()
    assert answer == Echo(path="/v1/echo", token="tok")


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_each_transport_maps_a_refused_connection_to_a_503_naming_the_service(transport: str) -> None:
    settings = ServiceSettings(upstream_transport=transport, upstream_retries=0)
    client = ServiceClient.from_settings("nowhere", "http://127.0.0.1:9", settings)
    try:
        with pytest.raises(UpstreamUnavailable) as raised:
            await client.call("POST", "/v1/echo", Echo, body={})
    finally:
        await client.aclose()
    assert raised.value.service == "nowhere"


class HangUp(BaseHTTPRequestHandler):
    """Reads the whole request, then closes the connection without answering."""

    protocol_version = "HTTP/1.1"
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received += 1
        self.close_connection = True

    def log_message(self, *_: object) -> None:
        pass


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_a_server_hanging_up_after_the_request_is_not_retried_for_a_post(transport: str) -> None:
    """httpx-aiohttp reports that hang-up as a connect timeout, "never reached the server"; a
    retried POST could then run twice upstream."""
    HangUp.received = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), HangUp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = ServiceSettings(upstream_transport=transport, upstream_retries=2)
    client = ServiceClient.from_settings("hangup", f"http://127.0.0.1:{server.server_address[1]}", settings)
    try:
        with pytest.raises(UpstreamUnavailable) as raised:
            await client.call("POST", "/v1/echo", Echo, body={"x": 1})
    finally:
        await client.aclose()
        server.shutdown()
    assert raised.value.service == "hangup"
    assert HangUp.received == 1, "sent once, never retried"
