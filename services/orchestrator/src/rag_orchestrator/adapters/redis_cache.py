"""The orchestrator's caches in Redis. Every Redis failure is a miss (or a skipped write): the cache
can slow nothing down and fail no request, it is bypassed while Redis is away.

The semantic cache's scopes are also mirrored in process, because fetching a whole scope (about
850 KB at 1,000 entries) on every lookup cost milliseconds. Redis stays the truth, shared by every
replica: each lookup asks it, in one small round trip, for what changed since the mirror's state.
"""

from __future__ import annotations

import logging
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rag_common.errors import UpstreamUnavailable
from rag_common.redis_pipelined import Commands
from rag_common.redis_pool import connect as connect

from ..semantic_cache import SemanticEntries

logger = logging.getLogger(__name__)

PREFIX = "rag:cache:"
ENTRY_SEPARATOR = b"\x00"
EMPTY = SemanticEntries()
# Scopes mirrored in process, least recently used dropped first: about 26 full scopes of 1,000
# 384-dimension entries.
MIRROR_BUDGET_BYTES = 64 * 2**20

# Versions this process has seen are confirmed here while the cached value is read: one round trip.
# Returns {the current version} when it is not ARGV[1], else {it, the value}.
VERSIONED_GET_SCRIPT = """
local current = redis.call('GET', KEYS[1]) or '0'
if current ~= ARGV[1] then return {current} end
return {current, redis.call('GET', KEYS[2])}
"""
KNOWN_VERSIONS = 10_000

# Each scope has a sync record next to its list, living as long: `epoch` names the list's lifetime
# (a new one once it expired or was deleted), `count` counts additions, `moved` is the count of the
# latest addition that moved an entry already listed back to the head.
ADD_SCRIPT = """
local removed = redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('HSETNX', KEYS[2], 'epoch', ARGV[4])
local count = redis.call('HINCRBY', KEYS[2], 'count', 1)
if removed > 0 then
  redis.call('HSET', KEYS[2], 'moved', count)
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
"""

# A scope's changes since a mirror's (epoch, count): the `count - seen` entries at the head, or
# everything when the list is of another lifetime than the mirror. The length tells
# what was trimmed; `moved` whether the head may hold entries the mirror already has.
SYNC_SCRIPT = """
local state = redis.call('HMGET', KEYS[2], 'epoch', 'count', 'moved')
local epoch = state[1] or ''
local count = tonumber(state[2] or '0')
local seen = tonumber(ARGV[2])
local moved = 0
if tonumber(state[3] or '0') > seen then
  moved = 1
end
local length = redis.call('LLEN', KEYS[1])
local whole = 0
local wanted = count - seen
if epoch ~= ARGV[1] or wanted < 0 then
  whole = 1
  wanted = length
end
wanted = math.min(wanted, length)
local fresh = {}
if wanted > 0 then
  fresh = redis.call('LRANGE', KEYS[1], 0, wanted - 1)
end
return {epoch, count, length, whole, moved, fresh}
"""


class RedisCache:
    """`hot`, when given, serves the per-request answer read (`versioned_get`), e.g. a
    `rag_common.redis_pipelined.PipelinedRedis`; everything else goes through `redis`."""

    def __init__(
        self,
        redis: Redis,
        *,
        ttl_s: int,
        mirror_budget_bytes: int = MIRROR_BUDGET_BYTES,
        hot: Commands | None = None,
    ) -> None:
        self._redis = redis
        self._hot: Commands = hot or redis
        self._ttl_s = ttl_s
        self._add = redis.register_script(ADD_SCRIPT)
        self._sync = redis.register_script(SYNC_SCRIPT)
        self._mirrors: OrderedDict[str, _Mirror] = OrderedDict()
        self._mirrored_bytes = 0
        self._mirror_budget = mirror_budget_bytes
        self._versioned_get = self._hot.register_script(VERSIONED_GET_SCRIPT)
        self._known_versions: dict[str, int] = {}

    async def versioned_get(
        self, collection: str, key_for: Callable[[int], str]
    ) -> tuple[int | None, bytes | None]:
        """One round trip once this process has seen the collection's version: the script reads the
        value only while that version is still current (else the current one and a second read)."""
        known = self._known_versions.get(collection)
        try:
            if known is None:
                version = int(await self._hot.execute_command("GET", _version_key(collection)) or 0)
            else:
                reply = await self._versioned_get(
                    keys=[_version_key(collection), PREFIX + key_for(known)], args=[known]
                )
                if len(reply) == 2:
                    return known, reply[1]
                version = int(reply[0])
            if len(self._known_versions) >= KNOWN_VERSIONS:
                self._known_versions.clear()
            self._known_versions[collection] = version
            raw: bytes | None = await self._hot.execute_command("GET", PREFIX + key_for(version))
        except RedisError as exc:
            logger.warning("cache bypassed, Redis unreachable: %s", exc)
            return None, None
        return version, raw

    async def bump(self, collection: str) -> None:
        """A new version makes every answer and search cached for the collection unreachable.

        This one cannot degrade: a change the cache does not hear of could be contradicted by cached
        answers once Redis is back, so the change is refused instead.
        """
        try:
            await self._redis.incr(_version_key(collection))
        except RedisError as exc:
            raise UpstreamUnavailable(
                "redis", "Redis is unreachable, so the answer cache cannot be invalidated; try again shortly."
            ) from exc

    async def get(self, key: str) -> bytes | None:
        try:
            raw: bytes | None = await self._redis.get(PREFIX + key)
        except RedisError as exc:
            logger.warning("cache bypassed, Redis unreachable: %s", exc)
            return None
        return raw

    async def set(self, key: str, value: bytes) -> None:
        try:
            await self._redis.set(PREFIX + key, value, ex=self._ttl_s)
        except RedisError as exc:
            logger.warning("cache write skipped, Redis unreachable: %s", exc)

    async def get_vectors(self, keys: Sequence[str]) -> list[list[float] | None]:
        try:
            raws = await self._redis.mget([PREFIX + key for key in keys])
        except RedisError as exc:
            logger.warning("cache bypassed, Redis unreachable: %s", exc)
            return [None] * len(keys)
        return [array("f", raw).tolist() if raw else None for raw in raws]

    async def set_vectors(self, items: dict[str, list[float]]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, vector in items.items():
                    pipe.set(PREFIX + key, array("f", vector).tobytes(), ex=self._ttl_s)
                await pipe.execute()
        except RedisError as exc:
            logger.warning("cache write skipped, Redis unreachable: %s", exc)

    async def semantic_entries(self, scope: str) -> SemanticEntries:
        """The scope's entries, newest first: the in-process mirror, brought up to date in one round trip.

        Empty while Redis is away (the mirror is kept for when it is back, but never served alone).
        """
        mirror = self._mirrors.get(scope)
        try:
            synced = await (self._whole_scope(scope) if mirror is None else self._synced(scope, mirror))
        except RedisError as exc:
            logger.warning("cache bypassed, Redis unreachable: %s", exc)
            return EMPTY
        self._keep_mirror(scope, synced)
        return synced.entries

    async def _synced(self, scope: str, mirror: _Mirror) -> _Mirror:
        """The mirror brought up to date with what changed in Redis since it was taken."""
        reply = await self._sync(keys=[PREFIX + scope, _sync_key(scope)], args=[mirror.epoch, mirror.seen])
        epoch, count, length, whole, moved, raws = cast(
            "tuple[bytes, int, int, int, int, list[bytes]]", reply
        )
        fresh = [_split_entry(raw) for raw in raws]
        if whole:
            return _Mirror(epoch, count, SemanticEntries(fresh))
        return _Mirror(epoch, count, mirror.entries.merged(fresh, length, moved=bool(moved)))

    async def _whole_scope(self, scope: str) -> _Mirror:
        """A cold mirror's fetch: the sync record and the whole list in one transaction.

        A plain LRANGE of ~850 KB costs half of what the sync script's copy through Lua does.
        """
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(_sync_key(scope), ["epoch", "count"])
            pipe.lrange(PREFIX + scope, 0, -1)
            (epoch, count), raws = await pipe.execute()
        return _Mirror(epoch or b"", int(count or 0), SemanticEntries([_split_entry(raw) for raw in raws]))

    async def add_semantic_entry(self, scope: str, key: str, vector: bytes, *, max_entries: int) -> None:
        """Newest first; the oldest entries beyond `max_entries` are dropped, the list lives the TTL.

        An entry already listed moves to the head; the scope's sync record (`ADD_SCRIPT`) tells the
        mirrors what changed.
        """
        entry = key.encode() + ENTRY_SEPARATOR + vector
        try:
            await self._add(
                keys=[PREFIX + scope, _sync_key(scope)],
                args=[entry, max_entries, self._ttl_s, uuid.uuid4().hex],
            )
        except RedisError as exc:
            logger.warning("cache write skipped, Redis unreachable: %s", exc)

    @property
    def mirrored_scopes(self) -> list[str]:
        """The scopes held in process, least recently used first."""
        return list(self._mirrors)

    def _keep_mirror(self, scope: str, mirror: _Mirror) -> None:
        """Least recently used scopes go first past the budget; a scope alone over it is not kept."""
        current = self._mirrors.get(scope)
        if current is not None and current.epoch == mirror.epoch and current.seen > mirror.seen:
            mirror = current  # a concurrent lookup already stored a later state
        if current is not None:
            self._mirrored_bytes -= current.size
        self._mirrors[scope] = mirror
        self._mirrors.move_to_end(scope)
        self._mirrored_bytes += mirror.size
        while self._mirrored_bytes > self._mirror_budget:
            _, evicted = self._mirrors.popitem(last=False)
            self._mirrored_bytes -= evicted.size


@dataclass(frozen=True, slots=True)
class _Mirror:
    epoch: bytes
    seen: int
    entries: SemanticEntries
    size: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", self.entries.estimated_bytes())


def _version_key(collection: str) -> str:
    return f"{PREFIX}version:{collection}"


def _sync_key(scope: str) -> str:
    return f"{PREFIX}sync:{scope}"


def _split_entry(raw: bytes) -> tuple[str, bytes]:
    """Answer keys are ASCII, so the first separator ends the key whatever bytes the vector holds."""
    key, vector = raw.split(ENTRY_SEPARATOR, 1)
    return key.decode(), vector
