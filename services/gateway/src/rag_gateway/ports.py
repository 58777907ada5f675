from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    tenant: str
    name: str


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: float
    reset_s: float


class KeyStore(Protocol):
    async def lookup(self, api_key: str) -> ApiKeyRecord | None: ...

    async def register(self, api_key: str, record: ApiKeyRecord) -> None: ...


class RateLimiter(Protocol):
    async def hit(self, subject: str) -> RateDecision: ...
