"""Errors as RFC 9457 problem details, rendered the same way by every service."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_common.context import current_request_id, current_trace_id

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A failure with a meaning for the client; subclasses fix the status."""

    status_code: int = 500
    title: str = "Internal Server Error"
    type_slug: str = "internal"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(ServiceError):
    status_code = 400
    title = "Bad Request"
    type_slug = "bad-request"


class Unauthorized(ServiceError):
    status_code = 401
    title = "Unauthorized"
    type_slug = "unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class NotFound(ServiceError):
    status_code = 404
    title = "Not Found"
    type_slug = "not-found"


class Conflict(ServiceError):
    status_code = 409
    title = "Conflict"
    type_slug = "conflict"


class PayloadTooLarge(ServiceError):
    status_code = 413
    title = "Payload Too Large"
    type_slug = "payload-too-large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    title = "Unsupported Media Type"
    type_slug = "unsupported-media-type"


class UnprocessableContent(ServiceError):
    status_code = 422
    title = "Unprocessable Content"
    type_slug = "validation"


class RateLimited(ServiceError):
    status_code = 429
    title = "Too Many Requests"
    type_slug = "rate-limited"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class SafetyBlocked(ServiceError):
    """A safety check refused the text; the reasons say which check and why."""

    status_code = 400
    title = "Blocked by Safety Check"
    type_slug = "safety-blocked"

    def __init__(self, reasons: list[str], direction: str) -> None:
        super().__init__(
            f"The {direction} was blocked by the safety service: "
            + "; ".join(reasons or ["policy violation"]),
            extra={"reasons": reasons, "direction": direction},
        )


class ServiceUnavailable(ServiceError):
    status_code = 503
    title = "Service Unavailable"
    type_slug = "unavailable"


class UpstreamUnavailable(ServiceUnavailable):
    """A downstream service could not be reached or failed; names the service."""

    type_slug = "upstream-unavailable"

    def __init__(self, service: str, detail: str | None = None) -> None:
        super().__init__(
            detail or f"The {service} service is unavailable; try again shortly.",
            headers={"Retry-After": "1"},
            extra={"service": service},
        )
        self.service = service


class UpstreamError(ServiceError):
    """A downstream client error passed through with its own status and detail."""

    def __init__(self, status_code: int, title: str, detail: str, extra: dict[str, Any]) -> None:
        super().__init__(detail, extra=extra)
        self.status_code = status_code
        self.title = title
        self.type_slug = str(extra.pop("type_slug", "upstream"))


# Extra problem members may not reuse these names: the standard members win.
PROBLEM_RESPONSE_ARGUMENTS = frozenset({"request", "status", "title", "detail", "type_slug", "headers"})


def problem_body(
    *, status: int, title: str, detail: str, type_slug: str, instance: str, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://rag-platform.dev/problems/{type_slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": current_request_id(),
        "trace_id": current_trace_id(),
    }
    body.update({key: value for key, value in extra.items() if key not in body})
    return body


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    detail: str,
    type_slug: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(
        status=status,
        title=title,
        detail=detail,
        type_slug=type_slug,
        instance=request.url.path,
        **extra,
    )
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def service_error_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.status_code >= 500:
        logger.warning("request failed: %s", exc.detail, extra={"status": exc.status_code})
    return problem_response(
        request,
        status=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        type_slug=exc.type_slug,
        headers=exc.headers,
        **{key: value for key, value in exc.extra.items() if key not in PROBLEM_RESPONSE_ARGUMENTS},
    )


def _describe_validation_error(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(p for p in first["loc"] if p != "body") or "body"
    return f"{where}: {first['msg']}", errors


async def validation_error_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail, errors = _describe_validation_error(exc)
    return problem_response(
        request,
        status=422,
        title="Unprocessable Content",
        detail=detail,
        type_slug="validation",
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = (
        HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else "Error"
    )
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    return problem_response(
        request,
        status=exc.status_code,
        title=phrase,
        detail=detail,
        type_slug=phrase.lower().replace(" ", "-"),
        headers=dict(exc.headers or {}),
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(
        request,
        status=500,
        title="Internal Server Error",
        detail="An unexpected error occurred; it has been logged with this request id.",
        type_slug="internal",
    )


def add_exception_handlers(app: FastAPI) -> None:
    """Render every error, expected or not, as problem+json with the request id."""
    app.add_exception_handler(ServiceError, service_error_response)
    app.add_exception_handler(RequestValidationError, validation_error_response)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
