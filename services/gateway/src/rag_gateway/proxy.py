"""Forwarding to the orchestrator: whole JSON bodies, or SSE streamed through unbuffered."""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import StreamingResponse

from rag_common.http import ServiceClient

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def forward(client: ServiceClient, path: str, body: bytes, headers: dict[str, str]) -> Response:
    response, chunks = await client.stream_raw(
        "POST", path, body=body, headers={"Content-Type": "application/json"}
    )
    content_type = response.headers.get("content-type", "application/json")
    if content_type.startswith("text/event-stream"):
        return StreamingResponse(
            chunks,
            status_code=response.status_code,
            media_type="text/event-stream",
            headers=SSE_HEADERS | headers,
        )
    content = b"".join([chunk async for chunk in chunks])
    return Response(content, status_code=response.status_code, media_type=content_type, headers=headers)
