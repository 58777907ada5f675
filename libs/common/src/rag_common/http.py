"""The one service-to-service HTTP client: timeouts, bounded retries, tracing, error mapping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource, ServerSentEvent
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel

from rag_common.context import REQUEST_ID_HEADER, current_request_id
from rag_common.errors import ServiceError, UpstreamError, UpstreamUnavailable
from rag_common.telemetry import instrument_client

ModelT = TypeVar("ModelT", bound=BaseModel)

RETRYABLE_STATUS = frozenset({502, 503, 504})
DEFAULT_BACKOFF_S: Sequence[float] = (0.05, 0.2, 0.5, 1.0)


class ServiceClient:
    """A typed client for one upstream service.

    Connection failures are retried for every call (the request never reached the
    server); 502/503/504 are retried only for idempotent calls. Transport errors become
    `UpstreamUnavailable(service)`; upstream problem+json 4xx pass through unchanged.
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 2.0,
        retries: int = 2,
        backoff_s: Sequence[float] = DEFAULT_BACKOFF_S,
        tracer_provider: TracerProvider | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.service = service
        self._retries = retries
        self._backoff_s = backoff_s
        self._timeout_s = timeout_s
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            transport=transport,
            headers=headers,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        if tracer_provider is not None:
            instrument_client(self._client, tracer_provider)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        response_model: type[ModelT],
        *,
        body: BaseModel | dict[str, Any] | None = None,
        idempotent: bool = False,
        timeout_s: float | None = None,
    ) -> ModelT:
        """Send a JSON request and parse the JSON answer into `response_model`."""
        response = await self._send(self._build(method, path, body, timeout_s), idempotent=idempotent)
        return response_model.model_validate_json(response.content)

    async def call_raw(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        """Forward raw bytes and return the whole response, errors mapped like `call`."""
        request = self._client.build_request(
            method, path, content=body, headers=self._headers(headers), params=params
        )
        return await self._send(request, idempotent=idempotent)

    async def stream_raw(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[httpx.Response, AsyncIterator[bytes]]:
        """Open a streamed response; errors before the first byte raise, later ones end the stream."""
        request = self._client.build_request(method, path, content=body, headers=self._headers(headers))
        response = await self._send(request, idempotent=False, stream=True)
        return response, self._iterate_bytes(response)

    async def stream_events(
        self, method: str, path: str, *, body: BaseModel | dict[str, Any]
    ) -> AsyncIterator[ServerSentEvent]:
        """Open an SSE stream and yield its events as they arrive."""
        request = self._build(method, path, body, None)
        request.headers["Accept"] = "text/event-stream"
        response = await self._send(request, idempotent=False, stream=True)
        return self._iterate_events(response)

    def _build(
        self, method: str, path: str, body: BaseModel | dict[str, Any] | None, timeout_s: float | None
    ) -> httpx.Request:
        content = None
        if isinstance(body, BaseModel):
            content = body.model_dump_json(exclude_none=True).encode()
        elif body is not None:
            content = json.dumps(body).encode()
        headers = self._headers({"Content-Type": "application/json"} if content is not None else None)
        timeout = (
            httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)) if timeout_s else httpx.USE_CLIENT_DEFAULT
        )
        return self._client.build_request(method, path, content=content, headers=headers, timeout=timeout)

    @staticmethod
    def _headers(extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        request_id = current_request_id()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        return headers

    async def _send(
        self, request: httpx.Request, *, idempotent: bool, stream: bool = False
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._client.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt < self._retries:
                    attempt = await self._backoff(attempt)
                    continue
                raise UpstreamUnavailable(self.service) from exc
            except httpx.TimeoutException as exc:
                raise UpstreamUnavailable(
                    self.service, f"The {self.service} service did not answer in time."
                ) from exc
            except httpx.HTTPError as exc:
                raise UpstreamUnavailable(self.service) from exc
            if response.status_code < 400:
                return response
            if stream:
                await response.aread()
                await response.aclose()
            if idempotent and response.status_code in RETRYABLE_STATUS and attempt < self._retries:
                attempt = await self._backoff(attempt)
                continue
            raise self._error_from(response)

    async def _backoff(self, attempt: int) -> int:
        await asyncio.sleep(self._backoff_s[min(attempt, len(self._backoff_s) - 1)])
        return attempt + 1

    def _error_from(self, response: httpx.Response) -> ServiceError:
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        detail = str(problem.get("detail") or "")
        if response.status_code >= 500:
            named = problem.get("service")
            if response.status_code == 503 and isinstance(named, str):
                return UpstreamUnavailable(named, detail or None)
            return UpstreamUnavailable(self.service)
        extra = {
            k: v
            for k, v in problem.items()
            if k not in {"type", "title", "status", "detail", "instance", "request_id", "trace_id"}
        }
        problem_type = str(problem.get("type", ""))
        extra["type_slug"] = problem_type.rsplit("/", 1)[-1] or "upstream"
        title = str(problem.get("title") or response.reason_phrase)
        return UpstreamError(
            response.status_code, title, detail or f"The {self.service} service refused the request.", extra
        )

    async def _iterate_bytes(self, response: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(
                self.service, f"The {self.service} service broke off the stream."
            ) from exc
        finally:
            await response.aclose()

    async def _iterate_events(self, response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in EventSource(response).aiter_sse():
                yield event
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(
                self.service, f"The {self.service} service broke off the stream."
            ) from exc
        finally:
            await response.aclose()
