"""Tenants: each tenant's collections live under their own physical names in the retrieval service.

The gateway sends the caller's tenant in `X-Tenant-ID` (it drops any the client sent); a request
without it is a direct internal call and belongs to tenant `default`. A logical collection `docs` of
tenant `acme` is stored as `t-acme--docs`, so one tenant can never name another's collection: it
simply does not exist for them (404, never 403).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from rag_common.contracts import ChatCompletionRequest, IngestRequest, IngestResponse, JobStatus, RagQuery
from rag_common.errors import BadRequest, ServiceError, UnprocessableContent

TENANT_HEADER = "X-Tenant-ID"
_current: ContextVar[str | None] = ContextVar("tenant", default=None)
DEFAULT_TENANT = "default"
# No hyphens in tenants: the first `--` after `t-` always ends the tenant, so the mapping is one to one.
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,31}$")
COLLECTION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
MAX_COLLECTION_CHARS = 64


def tenant_from(header: str | None) -> str:
    if header is None or header == "":
        return DEFAULT_TENANT
    if not TENANT_PATTERN.fullmatch(header):
        raise BadRequest(
            f"{TENANT_HEADER} must match {TENANT_PATTERN.pattern}.", extra={"tenant": header[:64]}
        )
    return header


def set_current(tenant: str) -> None:
    """The request's tenant, for calls that pick a per-tenant policy (the safety service's)."""
    _current.set(tenant)


def current() -> str | None:
    return _current.get()


def _prefix(tenant: str) -> str:
    return f"t-{tenant}--"


def physical(tenant: str, collection: str) -> str:
    """The retrieval service's name for a tenant's collection; 422 when it would not fit."""
    name = _prefix(tenant) + collection
    if len(name) > MAX_COLLECTION_CHARS or not COLLECTION_PATTERN.fullmatch(name):
        room = MAX_COLLECTION_CHARS - len(_prefix(tenant))
        raise UnprocessableContent(
            f"collection: at most {room} characters for this tenant, matching {COLLECTION_PATTERN.pattern}."
        )
    return name


def owns(tenant: str, name: str) -> bool:
    return name.startswith(_prefix(tenant))


def logical(tenant: str, name: str) -> str:
    return name.removeprefix(_prefix(tenant))


def scoped_query(query: RagQuery, tenant: str) -> RagQuery:
    return query.model_copy(update={"collection": physical(tenant, query.collection)})


def scoped_ingest(request: IngestRequest, tenant: str) -> IngestRequest:
    return request.model_copy(update={"collection": physical(tenant, request.collection)})


def scoped_chat(request: ChatCompletionRequest, tenant: str) -> ChatCompletionRequest:
    """A grounded chat names its collection in the extra `collection` field."""
    extra = request.model_extra or {}
    collection = extra.get("collection")
    if not isinstance(collection, str) or not COLLECTION_PATTERN.fullmatch(collection):
        return request  # plain chat, or a malformed name the chat service rejects with 422
    scoped = request.model_copy(deep=True)
    assert scoped.model_extra is not None
    scoped.model_extra["collection"] = physical(tenant, collection)
    return scoped


def unscoped_job(job: JobStatus, tenant: str) -> JobStatus:
    return job.model_copy(update={"collection": logical(tenant, job.collection)})


def unscoped_ingest(response: IngestResponse, tenant: str) -> IngestResponse:
    return response.model_copy(update={"collection": logical(tenant, response.collection)})


@contextmanager
def tenant_errors(tenant: str) -> Iterator[None]:
    """Errors that name a physical collection (e.g. retrieval's 404) name the caller's own instead."""
    try:
        yield
    except ServiceError as exc:
        exc.detail = exc.detail.replace(_prefix(tenant), "")
        name = exc.extra.get("collection")
        if isinstance(name, str):
            exc.extra["collection"] = logical(tenant, name)
        raise
