"""Hostile header values: CR/LF, control characters, non-ASCII and huge values in X-Request-ID,
X-Tenant-ID, Authorization and X-API-Key.

httpx refuses to send CR/LF itself, so two levels are tested: ASGI scope headers holding any bytes
(what a lenient server could pass on), and raw bytes on a socket to the gateway served by uvicorn
with httptools, whose parser refuses bare CR or LF, folded lines, NUL and control bytes with 400.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rag_devstack.redis_server import RedisServer
from rag_gateway.main import create_app
from rag_gateway.settings import Settings

from .conftest import ADMIN_KEY, DEV_KEY, GatewayFactory, serve_in_thread

MINTED = re.compile(r"[0-9a-f]{32}")
QUERY = {"question": "q"}
AUTH = {"Authorization": f"Bearer {DEV_KEY}"}
HOSTILE_REQUEST_IDS = {
    "crlf": b"abc\r\nX-Evil: 1",
    "nul": b"abc\x00def",
    "ansi-escape": b"abc\x1b[31mred",
    "tab": b"abc\tdef",
    "huge": b"a" * 10_000,
}


@pytest.mark.parametrize("value", HOSTILE_REQUEST_IDS.values(), ids=HOSTILE_REQUEST_IDS.keys())
async def test_a_hostile_request_id_is_replaced_in_headers_body_and_logs(
    gateway: GatewayFactory, capsys: pytest.CaptureFixture[str], value: bytes
) -> None:
    async with gateway() as client:
        capsys.readouterr()
        response = await client.post("/v1/rag/query", json=QUERY, headers={"X-Request-ID": value})
        # The ASGI app ran in this task: a record logged now carries the request's context, as every
        # log line of the request would.
        logging.getLogger("rag_gateway").warning("after the request")
    logged = capsys.readouterr().out
    assert response.status_code == 401
    assert MINTED.fullmatch(response.headers["X-Request-ID"])
    assert response.json()["request_id"] == response.headers["X-Request-ID"]
    assert "x-evil" not in response.headers
    assert response.headers["X-Request-ID"] in logged
    raw = value.decode("latin-1")
    assert raw not in logged
    assert json.dumps(raw)[1:-1] not in logged  # nor JSON-escaped, as the JSON log lines would hold it


async def test_a_sane_request_id_is_echoed(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        response = await client.post(
            "/v1/rag/query", json=QUERY, headers=AUTH | {"X-Request-ID": "req-42.a_b"}
        )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-42.a_b"


async def test_a_non_ascii_request_id_is_replaced_and_the_call_still_answers(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        response = await client.post(
            "/v1/rag/query", json=QUERY, headers=AUTH | {"X-Request-ID": "été".encode()}
        )
    assert response.status_code == 200, response.text
    assert MINTED.fullmatch(response.headers["X-Request-ID"])


@pytest.mark.parametrize(
    "tenant",
    [b"globex", b"globex\r\nX-Evil: 1", "glôbex".encode(), b"globex\x00", b"dev, globex"],
    ids=["plain", "crlf", "non-ascii", "nul", "list"],
)
async def test_a_client_tenant_header_never_overrides_the_callers_tenant(
    gateway: GatewayFactory, tenant: bytes
) -> None:
    async with gateway() as client:
        query = await client.post("/v1/rag/query", json=QUERY, headers=AUTH | {"X-Tenant-ID": tenant})
        docs = {"documents": [{"text": "t"}]}
        ingest = await client.post("/v1/documents", json=docs, headers=AUTH | {"X-Tenant-ID": tenant})
    assert (query.status_code, ingest.status_code) == (200, 200)
    assert query.json()["tenant"] == "dev"
    assert ingest.json()["tenant"] == "dev"
    assert "x-evil" not in query.headers


CREDENTIALS = {
    "bearer-crlf": {"Authorization": f"Bearer {DEV_KEY}\r\nX-Evil: 1".encode()},
    "bearer-non-ascii": {"Authorization": f"Bearer {DEV_KEY}é".encode()},
    "bearer-nul": {"Authorization": f"Bearer {DEV_KEY}\x00".encode()},
    "bearer-huge": {"Authorization": b"Bearer " + b"k" * 20_000},
    "api-key-crlf": {"X-API-Key": f"{DEV_KEY}\r\n".encode()},
    "api-key-non-ascii": {"X-API-Key": "clé".encode("latin-1")},
    "api-key-utf8": {"X-API-Key": "ключ".encode()},
}


@pytest.mark.parametrize("headers", CREDENTIALS.values(), ids=CREDENTIALS.keys())
async def test_mangled_credentials_are_401_problems_that_echo_nothing(
    gateway: GatewayFactory, headers: dict[str, bytes]
) -> None:
    async with gateway() as client:
        response = await client.post("/v1/rag/query", json=QUERY, headers=headers)
        admin = await client.get("/v1/admin/keys", headers=headers)
    for answer in (response, admin):
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert DEV_KEY not in answer.text
        assert "x-evil" not in answer.headers


@pytest.mark.parametrize(
    "credential",
    [b"a.b.c", b"e30.e30.", b"W10.e30.sig", b"eyJhbGciOiJFUzI1NiJ9.e30.sig\r\nX-Evil: 1", "é.é.é".encode()],
    ids=["garbage", "empty-objects", "header-not-object", "crlf", "non-ascii"],
)
async def test_jwt_shaped_garbage_is_401_with_jwt_auth_on(gateway: GatewayFactory, credential: bytes) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    settings = {"jwt_public_key": pem, "jwt_issuer": "https://idp/", "jwt_audience": "rag"}
    async with gateway(**settings) as client:
        response = await client.post(
            "/v1/rag/query", json=QUERY, headers={"Authorization": b"Bearer " + credential}
        )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "x-evil" not in response.headers


# Raw bytes on the wire, to the gateway served by uvicorn (h11).


@pytest.fixture
def live_gateway(
    redis_server: RedisServer, stand_in_url: str, redis_sync: redis.Redis
) -> Iterator[tuple[str, int]]:
    settings = Settings(
        redis_url=redis_server.url,
        orchestrator_url=stand_in_url,
        dev_api_key=DEV_KEY,
        admin_api_key=ADMIN_KEY,
        environment="test",
    )
    url, stop = serve_in_thread(create_app(settings))
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    yield parts.hostname, parts.port
    stop()


def raw_post(address: tuple[str, int], extra_headers: bytes) -> tuple[int, list[bytes], bytes]:
    """One request with hand-written header bytes; the status, header lines and body of the answer."""
    body = b'{"question": "q"}'
    head = b"POST /v1/rag/query HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n"
    head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(head + extra_headers + b"\r\n" + body)
        received = b""
        deadline = time.monotonic() + 10
        while (chunk := sock.recv(65536)) and time.monotonic() < deadline:
            received += chunk
    header_block, _, answer = received.partition(b"\r\n\r\n")
    status_line, *lines = header_block.split(b"\r\n")
    return int(status_line.split()[1]), lines, answer


def header_names(lines: list[bytes]) -> set[bytes]:
    return {line.split(b":", 1)[0].strip().lower() for line in lines}


def header(lines: list[bytes], name: bytes) -> bytes:
    return next(line.split(b":", 1)[1].strip() for line in lines if line.lower().startswith(name + b":"))


AUTH_LINE = b"Authorization: Bearer " + DEV_KEY.encode() + b"\r\n"


@pytest.mark.parametrize(
    "extra",
    [
        AUTH_LINE + b"X-Request-ID: abc\rX-Evil: 1\r\n",
        AUTH_LINE + b"X-Tenant-ID: globex\rX-Evil: 1\r\n",
        b"Authorization: Bearer " + DEV_KEY.encode() + b"\rX-Evil: 1\r\n",
        b"X-API-Key: " + DEV_KEY.encode() + b"\x00\r\n",
        AUTH_LINE + b"X-Tenant-ID: globex\nX-Tenant-ID: evil\r\n",
        AUTH_LINE + b"X-Request-ID: abc\nX-Evil: 1\r\n",
        AUTH_LINE + b"X-Request-ID: abc\r\n X-Evil: folded\r\n",
        AUTH_LINE + b"X-Request-ID: abc\x1b[2J\r\n",
    ],
    ids=["request-id-cr", "tenant-cr", "authorization-cr", "api-key-nul", "tenant-bare-lf", "request-id-bare-lf",
         "obs-fold", "ansi-escape"],
)  # fmt: skip
def test_bare_cr_lf_nul_folds_and_control_bytes_on_the_wire_are_refused_before_the_app(
    live_gateway: tuple[str, int], extra: bytes
) -> None:
    status, lines, _ = raw_post(live_gateway, extra)
    assert status == 400
    assert b"x-evil" not in header_names(lines)


@pytest.mark.parametrize(
    "request_id",
    [b"abc X-Evil: 1", b"a" * 8_000],
    ids=["spaces", "huge"],
)
def test_the_response_never_carries_an_injected_header(
    live_gateway: tuple[str, int], request_id: bytes
) -> None:
    status, lines, answer = raw_post(live_gateway, AUTH_LINE + b"X-Request-ID: " + request_id + b"\r\n")
    assert status == 200
    assert b"x-evil" not in header_names(lines)
    echoed = header(lines, b"x-request-id")
    assert echoed.isascii()
    assert len(echoed) <= 128
    assert b"\x1b" not in echoed
    assert b"\x1b" not in answer
