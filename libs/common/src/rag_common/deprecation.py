"""`Deprecation`, `Sunset` and successor `Link` headers on the responses of deprecated routes.

When a `/v2` route replaces a `/v1` one, the old route keeps answering for the period
docs/api-versioning.md states, and every response of it says so (RFC 9745, RFC 8594, RFC 5829):

    Deprecation: @1798761600
    Sunset: Wed, 01 Dec 2027 00:00:00 GMT
    Link: </v2/rag/query>; rel="successor-version", <https://…/api-versioning>; rel="deprecation"

The table of deprecated routes is data (a setting), so a deprecation ships without code changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC
from email.utils import format_datetime
from typing import Any, Self

from fastapi import FastAPI
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class DeprecatedRoute(BaseModel):
    """One deprecated path (and every path under it), e.g. from `..._DEPRECATED_ROUTES` as JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(pattern=r"^/", description="The path, and every path below it, e.g. `/v1/rag/query`.")
    deprecated_at: AwareDatetime = Field(description="When it was deprecated: the `Deprecation` header.")
    sunset: AwareDatetime = Field(description="After this it may stop answering: the `Sunset` header.")
    successor: str | None = Field(default=None, description="Its replacement: a `successor-version` link.")
    policy: str | None = Field(default=None, description="The versioning policy: a `deprecation` link.")

    @model_validator(mode="after")
    def _sunset_after_deprecation(self) -> Self:
        if self.sunset <= self.deprecated_at:
            raise ValueError("sunset must come after deprecated_at")
        return self

    def matches(self, path: str) -> bool:
        prefix = self.path.rstrip("/")
        return path == prefix or path.startswith(prefix + "/")

    def headers(self) -> list[tuple[str, str]]:
        links = [f'<{self.successor}>; rel="successor-version"'] if self.successor else []
        links += [f'<{self.policy}>; rel="deprecation"'] if self.policy else []
        found = [
            ("Deprecation", f"@{int(self.deprecated_at.timestamp())}"),
            ("Sunset", format_datetime(self.sunset.astimezone(UTC), usegmt=True)),
        ]
        return found + ([("Link", ", ".join(links))] if links else [])


class DeprecationMiddleware:
    """Adds the headers of the first matching `DeprecatedRoute` to every response (pure ASGI)."""

    def __init__(self, app: ASGIApp, routes: Sequence[DeprecatedRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = next((r for r in self.routes if r.matches(scope.get("path", ""))), None)
        if scope["type"] != "http" or route is None:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in route.headers():
                    headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def deprecate(app: FastAPI, routes: Sequence[DeprecatedRoute]) -> None:
    """Installs the middleware and marks the matching operations `deprecated` in the OpenAPI document."""
    if not routes:
        return
    app.add_middleware(DeprecationMiddleware, routes=routes)
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        for path, item in document.get("paths", {}).items():
            if any(route.matches(path) for route in routes):
                for operation in item.values():
                    if isinstance(operation, dict):
                        operation["deprecated"] = True
        return document

    app.openapi = openapi  # type: ignore[method-assign]
