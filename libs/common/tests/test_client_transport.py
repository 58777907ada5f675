"""Both upstream transports speak to a real server through the same ServiceClient API."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import BaseModel

from rag_common.errors import UpstreamError, UpstreamUnavailable
from rag_common.http import ServiceClient
from rag_common.settings import ServiceSettings


class Echo(BaseModel):
    path: str
    token: str


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/v1/missing":
            self._answer(
                404,
                b'{"title":"Not Found","detail":"No such thing.","thing":"x"}',
                "application/problem+json",
            )
            return
        if self.path == "/v1/broken":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"only a part")
            self.close_connection = True
            return
        body = Echo(path=self.path, token=self.headers.get("X-Internal-Token", "")).model_dump_json().encode()
        self._answer(200, body, "application/json")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Model", "m1")
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


@asynccontextmanager
async def client_for(service: str, url: str, **settings: object) -> AsyncIterator[ServiceClient]:
    client = ServiceClient.from_settings(service, url, ServiceSettings.model_validate(settings))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.mark.parametrize("raw", [False, True], ids=["call", "stream_raw"])
@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_a_server_hanging_up_after_the_request_is_not_retried_for_a_post(
    transport: str, raw: bool
) -> None:
    """httpx-aiohttp reports that hang-up as a connect timeout, "never reached the server"; a
    retried POST could then run twice upstream."""
    HangUp.received = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), HangUp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        async with client_for("hangup", url, upstream_transport=transport, upstream_retries=2) as client:
            send = (
                client.stream_raw("POST", "/v1/echo", body=b"{}")
                if raw
                else client.call("POST", "/v1/echo", Echo, body={"x": 1})
            )
            with pytest.raises(UpstreamUnavailable) as raised:
                await send
    finally:
        server.shutdown()
    assert raised.value.service == "hangup"
    assert HangUp.received == 1, "sent once, never retried"


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_each_transport_streams_a_raw_answer_with_its_status_and_headers(
    server_url: str, transport: str
) -> None:
    async with client_for("echo", server_url, upstream_transport=transport, internal_token="tok") as client:
        response, chunks = await client.stream_raw(
            "POST", "/v1/raw", body=b"{}", headers={"X-Tenant-ID": "t"}
        )
        body = b"".join([chunk async for chunk in chunks])
    assert response.status_code == 200
    assert response.headers["x-model"] == "m1"
    assert response.headers.get("Content-Type") == "application/json"
    assert Echo.model_validate_json(body) == Echo(path="/v1/raw", token="tok")


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_each_transport_passes_a_raw_streams_problem_through(server_url: str, transport: str) -> None:
    async with client_for("echo", server_url, upstream_transport=transport) as client:
        with pytest.raises(UpstreamError) as raised:
            await client.stream_raw("POST", "/v1/missing", body=b"{}")
    assert (raised.value.status_code, raised.value.detail) == (404, "No such thing.")
    assert raised.value.extra["thing"] == "x"


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_each_transport_ends_a_raw_stream_cut_short_with_a_503(server_url: str, transport: str) -> None:
    async with client_for("echo", server_url, upstream_transport=transport) as client:
        response, chunks = await client.stream_raw("POST", "/v1/broken", body=b"{}")
        with pytest.raises(UpstreamUnavailable, match="broke off the stream"):
            _ = [chunk async for chunk in chunks]
    assert response.status_code == 200


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_each_transport_maps_a_refused_raw_stream_to_a_503_naming_the_service(transport: str) -> None:
    async with client_for(
        "nowhere", "http://127.0.0.1:9", upstream_transport=transport, upstream_retries=1
    ) as client:
        with pytest.raises(UpstreamUnavailable) as raised:
            await client.stream_raw("POST", "/v1/raw", body=b"{}")
    assert raised.value.service == "nowhere"
