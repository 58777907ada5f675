"""The safety policy a request runs under, and whether it may go on while the safety service is down.

The gateway sends the caller's key's policy name in `X-Safety-Policy` (it drops any the client sent);
the safety service resolves it (else the tenant's policy, else its default) and refuses an unknown
name with 422. The orchestrator cannot ask a safety service that is down which policy fails open, so
that decision is local: `ORCHESTRATOR_SAFETY_FAIL_OPEN` for everyone, plus the policies and tenants
listed in `ORCHESTRATOR_SAFETY_FAIL_OPEN_POLICIES` / `_TENANTS`.
"""

from __future__ import annotations

import re
from contextvars import ContextVar

from rag_common.errors import BadRequest

from .settings import Settings

POLICY_HEADER = "X-Safety-Policy"
POLICY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_current: ContextVar[str | None] = ContextVar("safety_policy", default=None)


def policy_from(header: str | None) -> str | None:
    if header is None or header == "":
        return None
    if not POLICY_PATTERN.fullmatch(header):
        raise BadRequest(f"{POLICY_HEADER} must match {POLICY_PATTERN.pattern}.")
    return header


def set_current(policy: str | None) -> None:
    """The request's named policy (its API key's), for every safety call the request makes."""
    _current.set(policy)


def current() -> str | None:
    return _current.get()


def fails_open(settings: Settings, *, policy: str | None, tenant: str | None) -> bool:
    """A key's policy decides when it names one (as it does in the safety service), else the tenant."""
    if settings.safety_fail_open:
        return True
    if policy is not None:
        return policy in settings.safety_fail_open_policies
    return tenant is not None and tenant in settings.safety_fail_open_tenants
