"""What the gateway needs from storage: API key records and atomic rate-limit windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

Scope = Literal["query", "ingest", "admin"]
ALL_SCOPES: tuple[Scope, ...] = ("query", "ingest", "admin")
# Records written before scopes existed (only tenant and name) keep the access they had.
LEGACY_SCOPES: tuple[Scope, ...] = ("query", "ingest")


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A key as stored: never the secret, only what the gateway needs to admit a caller."""

    tenant: str
    name: str
    key_id: str = ""
    scopes: tuple[Scope, ...] = LEGACY_SCOPES
    expires_at: datetime | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    created_at: datetime | None = None
    safety_policy: str | None = None


@dataclass(frozen=True, slots=True)
class Guard:
    """Redis `key` still holds the value whose SHA-1 is `sha1`.

    Checked in the same atomic step as a rate-limit reservation, so a key record served from the
    process's cache can never outlive its revocation or rotation.
    """

    key: str
    sha1: str


@dataclass(frozen=True, slots=True)
class CachedKey:
    record: ApiKeyRecord
    guard: Guard


@dataclass(frozen=True, slots=True)
class Policy:
    """One sliding-window limit: at most `limit` units per `window_s` seconds for `subject`.

    `name` is what the RateLimit headers call it (`per-key`, `tokens-per-tenant`, ...). A `weighted`
    policy (tokens) takes a cost per reservation that can be settled later; any other counts
    requests, each costing 1.
    """

    name: str
    subject: str
    limit: int
    window_s: int = 60
    weighted: bool = False


@dataclass(frozen=True, slots=True)
class Demand:
    """What one request asks of one policy: 1 for a request count, an estimate for tokens."""

    policy: Policy
    cost: int


@dataclass(frozen=True, slots=True)
class WindowState:
    policy: Policy
    remaining: int
    reset_s: int


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome over every policy checked together; `refused` names the one that said no."""

    allowed: bool
    states: tuple[WindowState, ...] = ()
    refused: Policy | None = None
    retry_after_s: int = 0
    reservation: str = ""
    stale: bool = False  # the guard failed: nothing was reserved


class KeyStore(Protocol):
    async def lookup(self, api_key: str) -> ApiKeyRecord | None:
        """Read from Redis every time."""
        ...

    async def lookup_cached(self, api_key: str) -> CachedKey | None:
        """Read from Redis once, then from the process's cache; confirm it with the guard."""
        ...

    def forget(self, api_key: str) -> None:
        """Drop a cached record whose guard failed."""
        ...

    async def register(self, api_key: str, record: ApiKeyRecord) -> None: ...

    async def get(self, key_id: str) -> ApiKeyRecord | None: ...

    async def list(self, tenant: str | None = None) -> list[ApiKeyRecord]: ...

    async def replace_secret(self, key_id: str, new_api_key: str) -> ApiKeyRecord | None: ...

    async def revoke(self, key_id: str) -> bool: ...


class RateLimiter(Protocol):
    async def reserve(
        self, demands: Sequence[Demand], reservation: str, guard: Guard | None = None
    ) -> RateDecision:
        """Admit every demand at once, or none of them, and only while `guard` holds (one atomic step)."""
        ...

    async def settle(self, policies: Sequence[Policy], reservation: str, actual: int) -> None:
        """Replace a reservation's cost with what was really used (soon: it may wait for the next
        reservation to carry it; until then the estimate counts)."""
        ...
