"""Who is calling, and may they call now: API keys and per-key rate limits."""

from __future__ import annotations

from dataclasses import dataclass

from rag_common.errors import RateLimited, Unauthorized

from .adapters.redis_store import hash_key
from .ports import ApiKeyRecord, KeyStore, RateDecision, RateLimiter


@dataclass(frozen=True, slots=True)
class Caller:
    key: ApiKeyRecord
    rate: RateDecision


def rate_limit_headers(decision: RateDecision) -> dict[str, str]:
    """IETF draft-ietf-httpapi-ratelimit-headers fields, plus Retry-After when refused."""
    headers = {
        "RateLimit-Policy": f'"per-key";q={decision.limit};w=60',
        "RateLimit": f'"per-key";r={decision.remaining};t={decision.reset_s}',
    }
    if not decision.allowed:
        headers["Retry-After"] = str(int(decision.retry_after_s))
    return headers


async def admit(api_key: str | None, *, keys: KeyStore, limiter: RateLimiter) -> Caller:
    if not api_key:
        raise Unauthorized(
            "An API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
        )
    record = await keys.lookup(api_key)
    if record is None:
        raise Unauthorized("The API key is not valid.")
    decision = await limiter.hit(hash_key(api_key))
    if not decision.allowed:
        error = RateLimited(
            f"Rate limit of {decision.limit} requests per minute exceeded; retry in {int(decision.retry_after_s)} s.",
            retry_after_s=int(decision.retry_after_s),
        )
        error.headers.update(rate_limit_headers(decision))
        raise error
    return Caller(key=record, rate=decision)
