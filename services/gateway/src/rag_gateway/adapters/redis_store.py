"""API keys and rate limits in Redis, shared by every gateway replica."""

from __future__ import annotations

import hashlib
import json
import math

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from rag_common.errors import ServiceUnavailable

from ..ports import ApiKeyRecord, RateDecision

KEY_PREFIX = "rag:apikey:"
RATE_PREFIX = "rag:rate:"

# GCRA (generic cell rate algorithm): one timestamp per subject, updated atomically.
# KEYS[1] subject; ARGV[1] emission interval in ms; ARGV[2] burst. Returns {allowed, remaining, retry_ms, reset_ms}.
GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now))
local remaining = math.floor((tolerance - (new_tat - now)) / interval)
return {1, remaining, 0, new_tat - now}
"""


def hash_key(api_key: str) -> str:
    """Keys are stored only as SHA-256 digests; a lookup by digest leaks no timing about the key."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def connect(url: str, timeout_s: float) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=100,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    return Redis(connection_pool=pool)


def unavailable(exc: RedisError) -> ServiceUnavailable:
    return ServiceUnavailable(
        "The gateway cannot reach Redis, which holds API keys and rate limits; try again shortly.",
        headers={"Retry-After": "1"},
        extra={"service": "redis"},
    )


class RedisKeyStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def lookup(self, api_key: str) -> ApiKeyRecord | None:
        try:
            raw = await self._redis.get(KEY_PREFIX + hash_key(api_key))
        except RedisError as exc:
            raise unavailable(exc) from exc
        if raw is None:
            return None
        data = json.loads(raw)
        return ApiKeyRecord(tenant=data["tenant"], name=data["name"])

    async def register(self, api_key: str, record: ApiKeyRecord) -> None:
        value = json.dumps({"tenant": record.tenant, "name": record.name})
        try:
            await self._redis.set(KEY_PREFIX + hash_key(api_key), value)
        except RedisError as exc:
            raise unavailable(exc) from exc


class RedisRateLimiter:
    def __init__(self, redis: Redis, *, per_minute: int, burst: int) -> None:
        self._script = redis.register_script(GCRA_SCRIPT)
        self._interval_ms = 60_000 / per_minute
        self._burst = burst
        self._limit = per_minute

    async def hit(self, subject: str) -> RateDecision:
        try:
            allowed, remaining, retry_ms, reset_ms = await self._script(
                keys=[RATE_PREFIX + subject], args=[self._interval_ms, self._burst]
            )
        except RedisError as exc:
            raise unavailable(exc) from exc
        return RateDecision(
            allowed=bool(allowed),
            limit=self._limit,
            remaining=int(remaining),
            retry_after_s=max(1, math.ceil(float(retry_ms) / 1000)) if not allowed else 0,
            reset_s=math.ceil(float(reset_ms) / 1000),
        )
