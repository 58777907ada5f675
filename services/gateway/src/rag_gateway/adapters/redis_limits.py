"""Sliding-window limits in Redis: atomic multi-policy reservations, settled later with real usage.

Each policy keeps a sorted set of reservation ids (scored by Redis `TIME` in ms); a weighted one
(tokens) also a hash of their costs plus a running `__total`, while a request count is the set's size. A reservation is admitted on every policy or on none, inside one Lua
script, so replicas and concurrent requests can never admit past a limit together. With a guard, the
same script first checks that the caller's key record is still the one stored (`ports.Guard`).

Settlements wait in the process for the next reservation, which applies them first in its own
script call: under load no request pays a round trip of its own for its settlement. Those not taken
within `SETTLE_DELAY_S` go on their own. Until then a reservation keeps its estimate, which can only
refuse early, never admit past a limit.

The gateway runs these scripts over `rag_common.redis_pipelined` (one connection, no pool): a quarter
of redis-py's CPU per call, and one round trip less latency for a lone caller.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence

from redis.exceptions import RedisError

from rag_common.redis_pipelined import Commands

from ..ports import Demand, Guard, Policy, RateDecision, WindowState
from .redis_store import unavailable

WINDOW_PREFIX = "rag:win:"
SETTLE_DELAY_S = 0.05
logger = logging.getLogger(__name__)

# Applies settlements. KEYS from `first`: each settlement's policy hashes in turn. ARGV from `at`: per
# settlement how many of those keys are its, its reservation id, its real cost.
SETTLE_LUA = """
local function settle(first, at)
  local k = first
  for i = at, #ARGV, 3 do
    local id, cost, n = ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i])
    for j = k, k + n - 1 do
      local old = redis.call('HGET', KEYS[j], id)
      if old then
        redis.call('HSET', KEYS[j], id, cost)
        redis.call('HINCRBY', KEYS[j], '__total', cost - tonumber(old))
      end
    end
    k = k + n
  end
end
"""

# KEYS: per policy a sorted set and a hash, the guard's key when ARGV[2] (its SHA-1) is not empty, then
# the settlements' hashes. ARGV[1] reservation id, ARGV[2] guard SHA-1 or '', ARGV[3] the number of
# policies, then per policy: limit, window ms, cost, 1 when weighted (its costs kept in the hash) else
# 0 (every reservation costs 1: the set's size is the count, the hash is unused); then the
# settlements (`SETTLE_LUA`).
# Returns {-1} when the guard failed, else {refused policy index (0: admitted), retry ms, then per
# policy: used, ms until the oldest leaves}.
RESERVE_SCRIPT = (
    SETTLE_LUA
    + """
local n = tonumber(ARGV[3])
local guarded = ARGV[2] ~= ''
local settlements = 2 * n + 1
if guarded then settlements = settlements + 1 end
settle(settlements, 4 + 4 * n)
if guarded then
  local stored = redis.call('GET', KEYS[2 * n + 1])
  if not stored or redis.sha1hex(stored) ~= ARGV[2] then return {-1} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[1]
local used, reset = {}, {}
local refused, retry = 0, 0
for i = 1, n do
  local z, h = KEYS[2 * i - 1], KEYS[2 * i]
  local at = 4 * i
  local limit, window, cost = tonumber(ARGV[at]), tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local weighted = ARGV[at + 3] == '1'
  local total
  if weighted then
    total = tonumber(redis.call('HGET', h, '__total') or '0')
    local old = redis.call('ZRANGEBYSCORE', z, '-inf', now - window)
    for _, m in ipairs(old) do
      total = total - tonumber(redis.call('HGET', h, m) or '0')
      redis.call('HDEL', h, m)
    end
    if #old > 0 then
      redis.call('ZREMRANGEBYSCORE', z, '-inf', now - window)
      redis.call('HSET', h, '__total', total)
    end
  else
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now - window)
    total = redis.call('ZCARD', z)
  end
  used[i] = total
  local oldest = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  reset[i] = 0
  if #oldest > 0 then reset[i] = tonumber(oldest[2]) + window - now end
  if total + cost > limit then
    local wait = window
    if cost <= limit then
      local need = total + cost - limit
      if weighted then
        local freed = 0
        local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
        for j = 1, #entries, 2 do
          freed = freed + tonumber(redis.call('HGET', h, entries[j]) or '0')
          if freed >= need then
            wait = tonumber(entries[j + 1]) + window - now
            break
          end
        end
      else
        local leaving = redis.call('ZRANGE', z, need - 1, need - 1, 'WITHSCORES')
        if #leaving > 0 then wait = tonumber(leaving[2]) + window - now end
      end
    end
    if wait < 1 then wait = 1 end
    if wait > retry then
      retry = wait
      refused = i
    end
  end
end
if refused == 0 then
  for i = 1, n do
    local z, h = KEYS[2 * i - 1], KEYS[2 * i]
    local window, cost = tonumber(ARGV[4 * i + 1]), tonumber(ARGV[4 * i + 2])
    redis.call('ZADD', z, now, id)
    redis.call('PEXPIRE', z, window * 2)
    if ARGV[4 * i + 3] == '1' then
      redis.call('HSET', h, id, cost)
      redis.call('HINCRBY', h, '__total', cost)
      redis.call('PEXPIRE', h, window * 2)
    end
    used[i] = used[i] + cost
    if reset[i] == 0 then reset[i] = window end
  end
end
local out = {refused, retry}
for i = 1, n do
  out[#out + 1] = used[i]
  out[#out + 1] = reset[i]
end
return out
"""
)

SETTLE_SCRIPT = (
    SETTLE_LUA
    + """
settle(1, 1)
return 1
"""
)


def _keys(policies: Sequence[Policy]) -> list[str]:
    keys: list[str] = []
    for policy in policies:
        base = f"{WINDOW_PREFIX}{policy.name}:{policy.subject}"
        keys += [base, base + ":cost"]
    return keys


class RedisRateLimiter:
    def __init__(self, redis: Commands, *, settle_delay_s: float = SETTLE_DELAY_S) -> None:
        self._reserve = redis.register_script(RESERVE_SCRIPT)
        self._settle = redis.register_script(SETTLE_SCRIPT)
        self._settle_delay_s = settle_delay_s
        self._pending = _Settlements()
        self._flusher: asyncio.Task[None] | None = None

    async def reserve(
        self, demands: Sequence[Demand], reservation: str, guard: Guard | None = None
    ) -> RateDecision:
        if not demands and guard is None:
            return RateDecision(allowed=True, reservation=reservation)
        policies = [d.policy for d in demands]
        keys = _keys(policies) + ([guard.key] if guard else [])
        args: list[str | int] = [reservation, guard.sha1 if guard else "", len(policies)]
        for demand in demands:
            weighted = demand.policy.weighted
            if not weighted and demand.cost != 1:
                raise ValueError(f"'{demand.policy.name}' counts requests: each costs 1, not {demand.cost}")
            args += [demand.policy.limit, demand.policy.window_s * 1000, demand.cost, int(weighted)]
        carried, self._pending = self._pending, _Settlements()
        try:
            refused, *outcome = await self._reserve(keys=keys + carried.keys, args=args + carried.args)
        except RedisError as exc:
            self._pending.take_back(carried)
            raise unavailable(exc) from exc
        if int(refused) == -1:
            return RateDecision(allowed=False, reservation=reservation, stale=True)
        retry_ms, *rest = outcome
        states = tuple(
            WindowState(
                policy=policy,
                remaining=max(0, policy.limit - int(rest[2 * i])),
                reset_s=math.ceil(int(rest[2 * i + 1]) / 1000),
            )
            for i, policy in enumerate(policies)
        )
        return RateDecision(
            allowed=int(refused) == 0,
            states=states,
            refused=policies[int(refused) - 1] if int(refused) else None,
            retry_after_s=max(1, math.ceil(int(retry_ms) / 1000)) if int(refused) else 0,
            reservation=reservation,
        )

    async def settle(self, policies: Sequence[Policy], reservation: str, actual: int) -> None:
        """Queued for the next reservation, or sent on its own after `settle_delay_s`."""
        if not policies:
            return
        self._pending.add(policies, reservation, max(0, actual))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._settle_delay_s)
        await self.flush()

    async def flush(self) -> None:
        """Send the settlements no reservation has taken; a Redis failure leaves their estimates."""
        carried, self._pending = self._pending, _Settlements()
        if not carried.args:
            return
        try:
            await self._settle(keys=carried.keys, args=carried.args)
        except RedisError as exc:
            logger.warning("%d token settlements lost, their estimates stay counted: %s", carried.count, exc)

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        await self.flush()


class _Settlements:
    """Settlements in `SETTLE_LUA`'s layout: each one's policy hashes, and (key count, id, cost)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.args: list[str | int] = []

    @property
    def count(self) -> int:
        return len(self.args) // 3

    def add(self, policies: Sequence[Policy], reservation: str, actual: int) -> None:
        self.keys += _keys(policies)[1::2]  # only the hashes hold costs
        self.args += [len(policies), reservation, actual]

    def take_back(self, other: _Settlements) -> None:
        self.keys = other.keys + self.keys
        self.args = other.args + self.args
