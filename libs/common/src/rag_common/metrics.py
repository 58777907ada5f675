"""Prometheus metrics: HTTP RED metrics for every service and a small API for domain metrics.

`create_service_app` adds `PrometheusMiddleware`, which serves `GET /metrics` itself (before request
ids, body limits and routing; tracing excludes the path) and records, for every other request, its
count and duration labelled by method, route template (`/v1/collections/{name}`, never the raw path)
and status. It is pure ASGI: a streamed response passes through message by message and its duration
ends with the last body chunk.

Domain metrics live on the process-wide default registry. `counter`, `histogram` and `gauge` are
get-or-create, so a module, a `create_app` called many times in tests, or two services in one
process can ask for the same metric without a "Duplicated timeseries" error. The ready-made objects
below cover what several services measure the same way; see libs/common/README.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Literal, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "unmatched"

# Seconds; a RAG answer with CPU generation can take minutes, a health probe a millisecond.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
INTER_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

_Metric = TypeVar("_Metric", Counter, Gauge, Histogram)
_created: dict[tuple[int, str], tuple[Counter | Gauge | Histogram, tuple[str, ...]]] = {}


def _get_or_create(
    kind: type[_Metric],
    name: str,
    documentation: str,
    labels: Sequence[str],
    registry: CollectorRegistry,
    **options: object,
) -> _Metric:
    key = (id(registry), name)
    existing = _created.get(key)
    if existing is None:
        metric = kind(name, documentation, labelnames=tuple(labels), registry=registry, **options)  # type: ignore[arg-type]
        _created[key] = (metric, tuple(labels))
        return metric
    metric_found, labels_found = existing
    if not isinstance(metric_found, kind) or labels_found != tuple(labels):
        raise ValueError(
            f"metric {name!r} already exists as {type(metric_found).__name__}{labels_found}, "
            f"not {kind.__name__}{tuple(labels)}"
        )
    return metric_found


def counter(
    name: str, documentation: str, labels: Sequence[str] = (), *, registry: CollectorRegistry = REGISTRY
) -> Counter:
    """A counter (give the name without `_total`; Prometheus adds it)."""
    return _get_or_create(Counter, name, documentation, labels, registry)


def gauge(
    name: str, documentation: str, labels: Sequence[str] = (), *, registry: CollectorRegistry = REGISTRY
) -> Gauge:
    return _get_or_create(Gauge, name, documentation, labels, registry)


def histogram(
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    *,
    buckets: Iterable[float] = LATENCY_BUCKETS,
    registry: CollectorRegistry = REGISTRY,
) -> Histogram:
    """A histogram; `buckets` are upper bounds (seconds for latencies), `+Inf` is added."""
    return _get_or_create(Histogram, name, documentation, labels, registry, buckets=tuple(buckets))


# HTTP: recorded by PrometheusMiddleware for every request but /metrics.
HTTP_REQUESTS = counter(
    "http_requests", "HTTP requests answered, by route template and status.", ("method", "route", "status")
)
HTTP_REQUEST_DURATION = histogram(
    "http_request_duration_seconds",
    "From the request's arrival to the last byte of its response (a whole stream for streams).",
    ("method", "route", "status"),
)
HTTP_REQUESTS_IN_PROGRESS = gauge("http_requests_in_progress", "Requests being answered now.", ("method",))
SERVICE_INFO = gauge(
    "rag_service_info", "Always 1; labels say which service and version runs.", ("service", "version")
)
MODEL_INFO = gauge(
    "rag_model_info",
    "1 for the model version serving new requests, 0 for one draining; removed once unloaded.",
    ("service", "model", "version"),
)

# Generation: the llm service (per model) and the orchestrator/gateway (end to end, model "rag").
TIME_TO_FIRST_TOKEN = histogram(
    "rag_time_to_first_token_seconds",
    "From the generation request to its first streamed token.",
    ("model",),
    buckets=TTFT_BUCKETS,
)
INTER_TOKEN_LATENCY = histogram(
    "rag_inter_token_latency_seconds",
    "Gap between consecutive streamed tokens.",
    ("model",),
    buckets=INTER_TOKEN_BUCKETS,
)
TOKENS = counter(
    "rag_tokens",
    "Tokens processed; direction is 'in' (prompt) or 'out' (completion).",
    ("model", "direction"),
)

# Caches, limits, queues, breakers.
CACHE_LOOKUPS = counter("rag_cache_lookups", "Cache lookups; result is 'hit' or 'miss'.", ("cache", "result"))
RATE_LIMIT_REJECTIONS = counter(
    "rag_rate_limit_rejections", "Requests refused with 429, by the limit that refused them.", ("limit",)
)
QUEUE_DEPTH = gauge("rag_queue_depth", "Requests waiting in a queue now.", ("queue",))
CIRCUIT_BREAKER_STATE = gauge("rag_circuit_breaker_state", "0 closed, 1 half-open, 2 open.", ("breaker",))

BreakerState = Literal["closed", "half_open", "open"]
_BREAKER_VALUES: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}


def record_cache_lookup(cache: str, *, hit: bool) -> None:
    CACHE_LOOKUPS.labels(cache=cache, result="hit" if hit else "miss").inc()


def record_tokens(model: str, *, prompt: int = 0, completion: int = 0) -> None:
    if prompt:
        TOKENS.labels(model=model, direction="in").inc(prompt)
    if completion:
        TOKENS.labels(model=model, direction="out").inc(completion)


def set_breaker_state(breaker: str, state: BreakerState) -> None:
    CIRCUIT_BREAKER_STATE.labels(breaker=breaker).set(_BREAKER_VALUES[state])


def route_template(scope: Scope) -> str:
    """The matched route's path template (Starlette puts the route in the scope), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class PrometheusMiddleware:
    """Serves `GET /metrics` and records every other HTTP request; pure ASGI, so streams stream."""

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry = REGISTRY) -> None:
        self.app = app
        self.registry = registry
        self._series: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == METRICS_PATH and scope["method"] in {"GET", "HEAD"}:
            await self._expose(scope, send)
            return
        method = scope["method"]
        status = 500  # what the client gets if the app raises before starting a response
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_progress = HTTP_REQUESTS_IN_PROGRESS.labels(method=method)
        in_progress.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            in_progress.dec()
            requests, duration = self._series_of(method, route_template(scope), status)
            requests.inc()
            duration.observe(time.perf_counter() - started)

    def _series_of(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        """The request counter and duration histogram of one label set; `labels()` locks and
        builds its key on every call. Routes are templates, so the label sets are few."""
        key = (method, route, str(status))
        series = self._series.get(key)
        if series is None:
            labels = {"method": method, "route": route, "status": str(status)}
            series = self._series[key] = (
                HTTP_REQUESTS.labels(**labels),
                HTTP_REQUEST_DURATION.labels(**labels),
            )
        return series

    async def _expose(self, scope: Scope, send: Send) -> None:
        accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
        encoder, content_type = choose_encoder(accept)
        body = encoder(self.registry)
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
