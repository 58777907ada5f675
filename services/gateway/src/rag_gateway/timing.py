"""`Server-Timing: gateway;dur=<ms>`: the gateway's own time, upstream time excluded.

A pure ASGI middleware (streams stay unbuffered) starts a clock per request; the proxy adds the time
it waited for the orchestrator and hands on the orchestrator's own Server-Timing, which follows ours.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class RequestTiming:
    started: float = field(default_factory=time.perf_counter)
    upstream_s: float = 0.0
    upstream_header: str = ""


_current: ContextVar[RequestTiming | None] = ContextVar("gateway_timing", default=None)


def record_upstream(seconds: float, server_timing: str | None) -> None:
    timing = _current.get()
    if timing is not None:
        timing.upstream_s += seconds
        if server_timing:
            timing.upstream_header = server_timing


class ServerTimingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timing = RequestTiming()
        token = _current.set(timing)

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                own_ms = max(0.0, time.perf_counter() - timing.started - timing.upstream_s) * 1000
                value = f"gateway;dur={own_ms:.2f}"
                if timing.upstream_header:
                    value += f", {timing.upstream_header}"
                MutableHeaders(scope=message)["Server-Timing"] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_timing)
        finally:
            _current.reset(token)
