"""Forwarding to the orchestrator: whole JSON bodies, or SSE streamed through unbuffered.

Only the headers built here reach the orchestrator: the body's content type, `X-Tenant-ID`, the
caller's tenant from its key, `X-Safety-Policy`, the key's safety policy when it names one, and
`X-Caller-ID`, the caller's key id (or a hash of a JWT's subject), which keeps A/B variants sticky
(a client's own copies of these never pass). Back come the routing headers (`X-Model`,
`X-Experiment`, `X-Variant`) besides the body.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from fastapi import Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from rag_common.http import ServiceClient

from . import timing
from .usage import StreamUsage, from_json

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
TENANT_HEADER = "X-Tenant-ID"
SAFETY_POLICY_HEADER = "X-Safety-Policy"
CALLER_HEADER = "X-Caller-ID"
ROUTING_HEADERS = ("X-Model", "X-Experiment", "X-Variant")
UsageSink = Callable[[int | None], Awaitable[None]]


async def forward(
    client: ServiceClient,
    path: str,
    body: bytes | None,
    *,
    tenant: str,
    headers: dict[str, str],
    on_usage: UsageSink | None = None,
    method: str = "POST",
    content_type: str = "application/json",
    safety_policy: str | None = None,
    caller_id: str | None = None,
) -> Response:
    """`on_usage` gets the answer's total tokens (None when it carried none) once the answer is sent."""
    started = time.perf_counter()
    upstream_headers = {TENANT_HEADER: tenant} | ({"Content-Type": content_type} if body is not None else {})
    if safety_policy is not None:
        upstream_headers[SAFETY_POLICY_HEADER] = safety_policy
    if caller_id is not None:
        upstream_headers[CALLER_HEADER] = caller_id
    response, chunks = await client.stream_raw(method, path, body=body, headers=upstream_headers)
    headers = headers | {name: response.headers[name] for name in ROUTING_HEADERS if name in response.headers}
    upstream_timing = response.headers.get("server-timing")
    content_type = response.headers.get("content-type", "application/json")
    if content_type.startswith("text/event-stream"):
        timing.record_upstream(time.perf_counter() - started, upstream_timing)
        return StreamingResponse(
            _metered(chunks, on_usage),
            status_code=response.status_code,
            media_type="text/event-stream",
            headers=SSE_HEADERS | headers,
        )
    content = b"".join([chunk async for chunk in chunks])
    timing.record_upstream(time.perf_counter() - started, upstream_timing)
    # Settled once the answer has gone out: the caller does not wait for reading the usage or Redis.
    settle = None if on_usage is None else BackgroundTask(_settle_from_body, on_usage, content)
    return Response(
        content, status_code=response.status_code, media_type=content_type, headers=headers, background=settle
    )


async def _settle_from_body(on_usage: UsageSink, content: bytes) -> None:
    await on_usage(from_json(content))


async def _metered(chunks: AsyncIterator[bytes], on_usage: UsageSink | None) -> AsyncIterator[bytes]:
    usage = StreamUsage()
    try:
        async for chunk in chunks:
            usage.feed(chunk)
            yield chunk
    finally:
        if on_usage is not None:
            # Shielded: a client that hangs up cancels the stream, but the usage must still be settled.
            with anyio.CancelScope(shield=True):
                await on_usage(usage.total)
