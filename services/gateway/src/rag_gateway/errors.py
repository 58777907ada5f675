"""Gateway-specific errors, rendered as problem+json by the shared handlers."""

from __future__ import annotations

from rag_common.errors import ServiceError, Unauthorized


class Forbidden(ServiceError):
    """The key is valid but lacks the scope this endpoint needs."""

    status_code = 403
    title = "Forbidden"
    type_slug = "forbidden"


class KeyExpired(Unauthorized):
    type_slug = "key-expired"
