"""Per-request context: the request id and the current trace id, readable anywhere."""

from __future__ import annotations

import random
import re
from contextvars import ContextVar

from opentelemetry import trace

REQUEST_ID_HEADER = "X-Request-ID"
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


# Visible ASCII only: the id is copied into upstream request headers, which must be ASCII.
SANE_REQUEST_ID = re.compile(r"[!-~]{1,128}")


def set_request_id(value: str | None) -> str:
    """Use the caller's id when it looks sane, else mint one; returns the id in force."""
    request_id = value if value and SANE_REQUEST_ID.fullmatch(value) else _new_id()
    _request_id.set(request_id)
    return request_id


def _new_id() -> str:
    """128 random bits as 32 hex digits, like `uuid4().hex` at a fifth of its cost: an id, not a secret."""
    return f"{random.getrandbits(128):032x}"


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def current_span_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.span_id, "016x") if span_context.is_valid else None
