"""Pure ASGI middleware shared by every service (pure, so streams are never buffered)."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Collection

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag_common.context import REQUEST_ID_HEADER, set_request_id
from rag_common.errors import PROBLEM_JSON, problem_body

_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode()
INTERNAL_TOKEN_HEADER = "X-Internal-Token"
_INTERNAL_TOKEN_KEY = INTERNAL_TOKEN_HEADER.lower().encode()
# Probes and Prometheus scrapes come from the platform, not from a service that holds the token.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestIdMiddleware:
    """Adopts or mints `X-Request-ID` for the request and echoes it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(_REQUEST_ID_KEY, b"").decode("latin-1")
        request_id = set_request_id(incoming)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class CancelOnDisconnectMiddleware:
    """Cancels a request's handler when its caller hangs up before the response starts.

    Work nobody will read piles up otherwise: a caller that fans out and gives up (the orchestrator
    drops its input check the moment the embedding call fails) can send checks faster than a model
    answers them, and the next real request then waits behind the abandoned ones. Work already
    running in a worker thread finishes, but nothing queued behind it starts. The caller is watched
    once the handler has read the whole body; a response already started is left to finish.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_read = asyncio.Event()
        responding = False

        async def receive_body() -> Message:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read.set()
            return message

        async def send_marking(message: Message) -> None:
            nonlocal responding
            responding = True
            await send(message)

        async def hang_up() -> None:
            await body_read.wait()
            while (await receive())["type"] != "http.disconnect":
                pass

        handler = asyncio.ensure_future(self.app(scope, receive_body, send_marking))
        watcher = asyncio.ensure_future(hang_up())
        try:
            await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not handler.done() and not responding:
                handler.cancel()
                await asyncio.gather(handler, return_exceptions=True)
                return
            await handler
        finally:
            watcher.cancel()
            handler.cancel()


class BodySizeLimitMiddleware:
    """Refuses bodies over the limit with 413, by Content-Length or while streaming in.

    Multipart bodies (file uploads) get `max_upload_bytes` instead of `max_bytes`.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes or max_bytes

    def _limit(self, scope: Scope) -> int:
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        return self.max_upload_bytes if content_type.startswith(b"multipart/form-data") else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, send, limit)
            return
        received = 0
        rejected = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not started:
                    rejected = True
                    await self._reject(scope, send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if not rejected:
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            # The app failed on the disconnect we staged after answering 413; nothing more to send.
            if not rejected:
                raise

    async def _reject(self, scope: Scope, send: Send, limit: int) -> None:
        body = problem_body(
            status=413,
            title="Payload Too Large",
            detail=f"The request body exceeds the limit of {limit} bytes.",
            type_slug="payload-too-large",
            instance=scope.get("path", ""),
        )
        # Closing the connection keeps the unread body from being read as the next request.
        await _send_problem(send, body, [(b"connection", b"close")])


class InternalTokenMiddleware:
    """Refuses with 401 every request whose `X-Internal-Token` is not the shared internal token.

    Installed on internal services only, so that only the gateway is reachable from outside;
    `open_paths` (probes, `/metrics`) stay open. The comparison is constant-time.
    """

    def __init__(self, app: ASGIApp, token: str, open_paths: Collection[str] = OPEN_PATHS) -> None:
        if not token:
            raise ValueError("the internal token must not be empty")
        self.app = app
        self._token = token.encode()
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or self._holds_token(scope):
            await self.app(scope, receive, send)
            return
        body = problem_body(
            status=401,
            title="Unauthorized",
            detail=f"This service is internal: call it through the gateway, or send {INTERNAL_TOKEN_HEADER}.",
            type_slug="internal-token",
            instance=scope.get("path", ""),
        )
        await _send_problem(send, body, [(b"www-authenticate", b'Internal-Token realm="rag-internal"')])

    def _holds_token(self, scope: Scope) -> bool:
        given = dict(scope["headers"]).get(_INTERNAL_TOKEN_KEY, b"")
        return hmac.compare_digest(given, self._token)


async def _send_problem(send: Send, body: dict[str, object], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": body["status"],
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
