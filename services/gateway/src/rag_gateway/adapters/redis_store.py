"""API key records in Redis, shared by every gateway replica and the `rag_gateway.keys` CLI.

Layout: `rag:apikey:<sha256 of the secret>` -> the record as JSON (never the secret);
`rag:keyid:<id>` -> that digest, so keys can be listed, rotated and revoked by id; `rag:keyids` -> the
set of ids.

A record is never changed in place: rotation moves it to a new digest and revocation deletes it. So
requests may read a record from the process's cache (`lookup_cached`, bounded, least recently used
out first) with a guard, the SHA-1 of the stored JSON, that the rate-limit script checks against
Redis in the same atomic step as the reservation: a revocation still holds at once on every replica.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from datetime import datetime
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from rag_common.errors import Conflict, ServiceUnavailable
from rag_common.redis_pool import connect as connect

from ..ports import LEGACY_SCOPES, ApiKeyRecord, CachedKey, Guard, Scope

KEY_PREFIX = "rag:apikey:"
ID_PREFIX = "rag:keyid:"
ID_SET = "rag:keyids"
DEFAULT_CACHED_KEYS = 10_000


def hash_key(api_key: str) -> str:
    """Keys are stored only as SHA-256 digests; a lookup by digest leaks no timing about the key."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def unavailable(exc: RedisError) -> ServiceUnavailable:
    return ServiceUnavailable(
        "The gateway cannot reach Redis, which holds API keys and rate limits; try again shortly.",
        headers={"Retry-After": "1"},
        extra={"service": "redis"},
    )


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def encode(record: ApiKeyRecord) -> str:
    return json.dumps(
        {
            "id": record.key_id,
            "tenant": record.tenant,
            "name": record.name,
            "scopes": list(record.scopes),
            "expires_at": record.expires_at.isoformat() if record.expires_at else None,
            "requests_per_minute": record.requests_per_minute,
            "tokens_per_minute": record.tokens_per_minute,
            "created_at": record.created_at.isoformat() if record.created_at else None,
            "safety_policy": record.safety_policy,
        }
    )


def decode(raw: bytes | str) -> ApiKeyRecord:
    data: dict[str, Any] = json.loads(raw)
    scopes = data.get("scopes")
    return ApiKeyRecord(
        tenant=str(data["tenant"]),
        name=str(data.get("name", "")),
        key_id=str(data.get("id") or ""),
        scopes=tuple(cast("list[Scope]", scopes)) if isinstance(scopes, list) else LEGACY_SCOPES,
        expires_at=_time(data.get("expires_at")),
        requests_per_minute=data.get("requests_per_minute"),
        tokens_per_minute=data.get("tokens_per_minute"),
        created_at=_time(data.get("created_at")),
        safety_policy=data.get("safety_policy"),
    )


class RedisKeyStore:
    def __init__(self, redis: Redis, *, cached_keys: int = DEFAULT_CACHED_KEYS) -> None:
        self._redis = redis
        self._cached_keys = cached_keys
        self._cache: OrderedDict[str, CachedKey] = OrderedDict()

    async def _read(self, digest: str) -> bytes | None:
        try:
            raw: bytes | None = await self._redis.get(KEY_PREFIX + digest)
        except RedisError as exc:
            raise unavailable(exc) from exc
        return raw

    async def lookup(self, api_key: str) -> ApiKeyRecord | None:
        raw = await self._read(hash_key(api_key))
        return None if raw is None else decode(raw)

    async def lookup_cached(self, api_key: str) -> CachedKey | None:
        digest = hash_key(api_key)
        cached = self._cache.get(digest)
        if cached is not None:
            self._cache.move_to_end(digest)
            return cached
        raw = await self._read(digest)
        if raw is None:  # unknown keys are not cached: a key created a moment ago works at once
            return None
        cached = CachedKey(decode(raw), Guard(KEY_PREFIX + digest, hashlib.sha1(raw).hexdigest()))
        self._cache[digest] = cached
        if len(self._cache) > self._cached_keys:
            self._cache.popitem(last=False)
        return cached

    def forget(self, api_key: str) -> None:
        self._cache.pop(hash_key(api_key), None)

    async def register(self, api_key: str, record: ApiKeyRecord) -> None:
        """Store a record under the secret's digest; with an id, also index it (replacing nothing else)."""
        digest = hash_key(api_key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(KEY_PREFIX + digest, encode(record))
                if record.key_id:
                    pipe.set(ID_PREFIX + record.key_id, digest)
                    pipe.sadd(ID_SET, record.key_id)
                await pipe.execute()
        except RedisError as exc:
            raise unavailable(exc) from exc

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        """Two reads; a rotation between them moves the record, so read again from the id."""
        try:
            for _ in range(5):
                digest = await self._redis.get(ID_PREFIX + key_id)
                if digest is None:
                    return None
                raw = await self._redis.get(KEY_PREFIX + digest.decode())
                if raw is not None:
                    return decode(raw)
        except RedisError as exc:
            raise unavailable(exc) from exc
        return None

    async def list(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        try:
            ids = sorted(member.decode() for member in await self._redis.smembers(ID_SET))
            digests = await self._redis.mget([ID_PREFIX + i for i in ids]) if ids else []
            live = [d.decode() for d in digests if d]
            raws = await self._redis.mget([KEY_PREFIX + d for d in live]) if live else []
        except RedisError as exc:
            raise unavailable(exc) from exc
        records = [decode(raw) for raw in raws if raw]
        return [r for r in records if tenant is None or r.tenant == tenant]

    async def replace_secret(self, key_id: str, new_api_key: str) -> ApiKeyRecord | None:
        """Move the record to a new secret's digest and delete the old one, atomically.

        The id's entry is WATCHed: a concurrent rotation or revocation aborts this one with 409.
        """
        new_digest = hash_key(new_api_key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.watch(ID_PREFIX + key_id)
                old_digest = await pipe.get(ID_PREFIX + key_id)
                if old_digest is None:
                    return None
                raw = await pipe.get(KEY_PREFIX + old_digest.decode())
                if raw is None:  # moved by a concurrent rotation between the two reads
                    raise WatchError(key_id)
                pipe.multi()
                pipe.delete(KEY_PREFIX + old_digest.decode())
                pipe.set(KEY_PREFIX + new_digest, raw)
                pipe.set(ID_PREFIX + key_id, new_digest)
                await pipe.execute()
        except WatchError as exc:
            raise Conflict(
                "The key was rotated or revoked at the same time; look it up and try again.",
                extra={"key_id": key_id},
            ) from exc
        except RedisError as exc:
            raise unavailable(exc) from exc
        return decode(raw)

    async def revoke(self, key_id: str) -> bool:
        try:
            digest = await self._redis.get(ID_PREFIX + key_id)
            if digest is None:
                return False
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(KEY_PREFIX + digest.decode(), ID_PREFIX + key_id)
                pipe.srem(ID_SET, key_id)
                await pipe.execute()
        except RedisError as exc:
            raise unavailable(exc) from exc
        return True
