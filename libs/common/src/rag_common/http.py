"""The one service-to-service HTTP client: timeouts, bounded retries, a circuit breaker, tracing,
the internal token and error mapping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_sse import EventSource, ServerSentEvent
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Tracer
from pydantic import BaseModel, SecretStr

from rag_common.breaker import CircuitBreaker
from rag_common.context import REQUEST_ID_HEADER, current_request_id
from rag_common.errors import ServiceError, UpstreamError, UpstreamUnavailable
from rag_common.middleware import INTERNAL_TOKEN_HEADER
from rag_common.settings import ServiceSettings
from rag_common.telemetry import instrument_client, sdk_disabled

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")

POOL_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)
# Idle connections go before uvicorn's 5 s keep-alive closes them: aiohttp does not retry a POST
# sent on a connection the server closed a moment before.
AIOHTTP_LIMITS = httpx.Limits(max_connections=200, keepalive_expiry=4.0)
RETRYABLE_STATUS = frozenset({502, 503, 504})
DEFAULT_BACKOFF_S: Sequence[float] = (0.05, 0.2, 0.5, 1.0)


class CircuitOpen(UpstreamUnavailable):
    """The upstream's breaker is open: refused without a network call until the cooldown ends."""

    type_slug = "circuit-open"

    def __init__(self, service: str, retry_after_s: int) -> None:
        super().__init__(
            service,
            f"The {service} service is failing repeatedly; circuit open, retrying in {retry_after_s} s.",
        )
        self.headers["Retry-After"] = str(retry_after_s)


class UpstreamAiohttpTransport(AiohttpTransport):
    """httpx-aiohttp with honest connect errors.

    httpx-aiohttp maps every `aiohttp.ClientConnectionError` to `httpx.ConnectTimeout`, which
    ServiceClient reads as "never reached the server" and retries even for a POST. A server that
    hangs up after the request was sent (`ServerDisconnectedError`, a reset) may have acted on it,
    so only a failure to connect keeps that meaning; the rest become `httpx.ReadError`.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if not isinstance(cause, aiohttp.ClientError) or isinstance(
                cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError
            ):
                raise
            raise httpx.ReadError(str(exc) or type(cause).__name__, request=request) from cause

    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session behind this transport, shared with `ServiceClient.stream_raw`."""
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        return self.client


@dataclass(frozen=True, slots=True)
class _RawCall:
    session: aiohttp.ClientSession
    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A streamed answer's status and headers (names case-insensitive)."""

    status_code: int
    headers: Mapping[str, str]


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()


class _CookielessClient(httpx.AsyncClient):
    """Services exchange no cookies: this skips httpx's cookie parsing of every response, a few
    percent of a proxying service's CPU."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, value: object) -> None:
        return None


class ServiceClient:
    """A typed client for one upstream service.

    Connection failures are retried for every call (the request never reached the
    server); 502/503/504 are retried only for idempotent calls. Transport errors become
    `UpstreamUnavailable(service)`; upstream problem+json 4xx pass through unchanged.

    With a `breaker`, a call that still fails after its retries (transport error, timeout,
    5xx) counts against it, and while it is open calls fail fast with `CircuitOpen`. A 4xx,
    or a 503 naming another service (the upstream is alive; its own upstream is down), counts
    as a success. `internal_token` goes out as `X-Internal-Token` on every request.
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
        internal_token: str | SecretStr | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.service = service
        self.breaker = breaker
        self._retries = retries
        self._backoff_s = backoff_s
        self._timeout_s = timeout_s
        token = internal_token.get_secret_value() if isinstance(internal_token, SecretStr) else internal_token
        self._base_headers = {**(headers or {}), **({INTERNAL_TOKEN_HEADER: token} if token else {})}
        self._client = _CookielessClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            transport=transport,
            headers=self._base_headers,
            limits=POOL_LIMITS,
        )
        if tracer_provider is not None:
            instrument_client(self._client, tracer_provider)
        # Raw streams on the aiohttp transport skip httpx's request and response models: for the
        # gateway, which proxies every call, that layer was an eighth of its CPU.
        self._aiohttp = transport if isinstance(transport, UpstreamAiohttpTransport) else None
        self._url = base_url.rstrip("/")
        self._aiohttp_timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout_s, sock_read=timeout_s)
        self._tracer: Tracer | None = None
        if tracer_provider is not None and not sdk_disabled():
            self._tracer = tracer_provider.get_tracer(__name__)

    @classmethod
    def from_settings(
        cls,
        service: str,
        base_url: str,
        settings: ServiceSettings,
        *,
        timeout_s: float | None = None,
        tracer_provider: TracerProvider | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> ServiceClient:
        """A client with the shared upstream settings: timeouts, retries, breaker, internal token."""
        breaker = None
        if settings.upstream_breaker_failures and settings.upstream_breaker_cooldown_s:
            breaker = CircuitBreaker(
                failure_threshold=settings.upstream_breaker_failures,
                cooldown_s=settings.upstream_breaker_cooldown_s,
                name=service,
            )
        if transport is None and settings.upstream_transport == "aiohttp":
            transport = UpstreamAiohttpTransport(limits=AIOHTTP_LIMITS)
        return cls(
            service,
            base_url,
            timeout_s=timeout_s or settings.upstream_timeout_s,
            connect_timeout_s=settings.upstream_connect_timeout_s,
            retries=settings.upstream_retries,
            tracer_provider=tracer_provider,
            transport=transport,
            internal_token=settings.internal_token,
            breaker=breaker,
        )

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
    ) -> tuple[RawResponse, AsyncIterator[bytes]]:
        """Open a streamed response; errors before the first byte raise, later ones end the stream."""
        if self._aiohttp is not None:
            call = _RawCall(
                self._aiohttp.session(),
                method,
                self._url + path,
                body,
                self._base_headers | self._headers(headers),
            )
            opened = await self._guarded(lambda: self._traced_open(call))
            return RawResponse(opened.status, opened.headers), self._iterate_aiohttp(opened)
        request = self._client.build_request(method, path, content=body, headers=self._headers(headers))
        response = await self._send(request, idempotent=False, stream=True)
        return RawResponse(response.status_code, response.headers), self._iterate_bytes(response)

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
        return await self._guarded(lambda: self._attempts(request, idempotent=idempotent, stream=stream))

    async def _guarded(self, attempts: Callable[[], Awaitable[T]]) -> T:
        """`attempts` under the circuit breaker, if there is one."""
        breaker = self.breaker
        if breaker is None:
            return await attempts()
        if not breaker.allow():
            raise CircuitOpen(self.service, breaker.retry_after_s())
        try:
            response = await attempts()
        except UpstreamUnavailable as exc:
            if exc.service == self.service:
                breaker.record_failure()
            else:
                breaker.record_success()
            raise
        except ServiceError:
            breaker.record_success()
            raise
        except BaseException:
            breaker.release()  # cancelled: no verdict on the upstream
            raise
        breaker.record_success()
        return response

    async def _attempts(self, request: httpx.Request, *, idempotent: bool, stream: bool) -> httpx.Response:
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

    async def _traced_open(self, call: _RawCall) -> aiohttp.ClientResponse:
        """A client span and `traceparent`, as the httpx instrumentation gives the other calls."""
        if self._tracer is None:
            return await self._aiohttp_attempts(call)
        attributes = {"http.request.method": call.method, "url.full": call.url}
        with self._tracer.start_as_current_span(
            call.method, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            propagate.inject(call.headers)
            response = await self._aiohttp_attempts(call)
            span.set_attribute("http.response.status_code", response.status)
            return response

    async def _aiohttp_attempts(self, call: _RawCall) -> aiohttp.ClientResponse:
        """`_attempts` on aiohttp itself: the same retries (a POST only when it never connected),
        timeouts and error mapping."""
        attempt = 0
        while True:
            try:
                response = await call.session.request(
                    call.method,
                    call.url,
                    data=call.body,
                    headers=call.headers,
                    timeout=self._aiohttp_timeout,
                    allow_redirects=False,
                    auto_decompress=False,
                )
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                if attempt < self._retries:
                    attempt = await self._backoff(attempt)
                    continue
                raise UpstreamUnavailable(self.service) from exc
            except TimeoutError as exc:
                raise UpstreamUnavailable(
                    self.service, f"The {self.service} service did not answer in time."
                ) from exc
            except aiohttp.ClientError as exc:
                raise UpstreamUnavailable(self.service) from exc
            if response.status < 400:
                return response
            try:
                content = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise UpstreamUnavailable(self.service) from exc
            finally:
                response.release()
            raise self._error_from(
                httpx.Response(response.status, headers=response.raw_headers, content=content)
            )

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
                return _cascaded(named, detail, problem, response)
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

    async def _iterate_aiohttp(self, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailable(
                self.service, f"The {self.service} service broke off the stream."
            ) from exc
        finally:
            response.release()  # closes the connection instead when the body was not read to its end

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


def _cascaded(
    service: str, detail: str, problem: dict[str, Any], response: httpx.Response
) -> UpstreamUnavailable:
    """An upstream's 503 about its own upstream, passed on with its type and `Retry-After`."""
    error = UpstreamUnavailable(service, detail or None)
    slug = str(problem.get("type", "")).rsplit("/", 1)[-1]
    if slug:
        error.type_slug = slug
    retry_after = response.headers.get("Retry-After", "")
    if retry_after.isdigit():
        error.headers["Retry-After"] = retry_after
    return error
