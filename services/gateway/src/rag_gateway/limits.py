"""Rate limits per key and per tenant: requests per minute, and LLM tokens per minute.

Tokens are reserved before the call with an estimate and settled afterwards with the real usage, so
requests in flight at the same time can never admit more than the limit between them (only a wrong
estimate can make real usage exceed it, and the next requests then wait longer).

The request count and the token reservation are one atomic Redis step (`admit`), which also checks
that a key record served from the process's cache is still the stored one.

Estimate (documented in the README): ceil(prompt characters / 4) + top_k x `passage_tokens` for
grounded requests + `max_tokens` (or `default_max_tokens`).
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass
from typing import Literal

from rag_common import metrics
from rag_common.contracts import ChatCompletionRequest, RagQuery
from rag_common.errors import RateLimited, ServiceUnavailable, Unauthorized

from . import access as access_service
from .access import Caller
from .ports import Demand, Guard, KeyStore, Policy, RateDecision, RateLimiter, Scope
from .settings import Settings

logger = logging.getLogger(__name__)
FailureMode = Literal["closed", "open"]
DEFAULT_TOP_K = 4
MAX_TOP_K = 50


@dataclass(frozen=True, slots=True)
class TokenReservation:
    policies: tuple[Policy, ...]
    reservation: str
    estimate: int
    decision: RateDecision | None


@dataclass(frozen=True, slots=True)
class Admission:
    caller: Caller  # its `rate` is the decision over every policy
    tokens: TokenReservation | None


def request_policies(caller: Caller, settings: Settings) -> list[Demand]:
    per_key = caller.key.requests_per_minute or settings.rate_limit_per_minute
    return [
        Demand(Policy("per-key", f"key:{caller.subject}", per_key), 1),
        Demand(Policy("per-tenant", f"tenant:{caller.tenant}", settings.tenant_rate_limit_per_minute), 1),
    ]


def token_policies(caller: Caller, settings: Settings) -> tuple[Policy, ...]:
    per_key = caller.key.tokens_per_minute or settings.tokens_per_minute
    return (
        Policy("tokens-per-key", f"key:{caller.subject}", per_key, weighted=True),
        Policy(
            "tokens-per-tenant", f"tenant:{caller.tenant}", settings.tenant_tokens_per_minute, weighted=True
        ),
    )


def estimate_tokens(body: RagQuery | ChatCompletionRequest, settings: Settings) -> int:
    if isinstance(body, RagQuery):
        prompt_chars, top_k = len(body.question), body.top_k
    else:
        prompt_chars = sum(len(m.content) for m in body.messages)
        extra = body.model_extra or {}
        asked = extra.get("top_k", DEFAULT_TOP_K)
        top_k = min(max(asked, 0), MAX_TOP_K) if isinstance(asked, int) else DEFAULT_TOP_K
        top_k = top_k if "collection" in extra else 0
    completion = body.max_tokens or settings.default_max_tokens
    return math.ceil(prompt_chars / 4) + top_k * settings.passage_tokens + completion


def headers(*decisions: RateDecision | None) -> dict[str, str]:
    """IETF draft-ietf-httpapi-ratelimit-headers fields; a refusal names only the policy that refused."""
    states = [s for d in decisions if d is not None for s in d.states if d.refused in (None, s.policy)]
    if not states:
        return {}
    result = {
        "RateLimit-Policy": ", ".join(
            f'"{s.policy.name}";q={s.policy.limit};w={s.policy.window_s}' for s in states
        ),
        "RateLimit": ", ".join(f'"{s.policy.name}";r={s.remaining};t={s.reset_s}' for s in states),
    }
    refused = [d for d in decisions if d is not None and not d.allowed]
    if refused:
        result["Retry-After"] = str(refused[0].retry_after_s)
    return result


def _refusal(decision: RateDecision, cost: int) -> RateLimited:
    policy = decision.refused
    assert policy is not None
    metrics.RATE_LIMIT_REJECTIONS.labels(limit=policy.name).inc()
    unit = "tokens" if policy.weighted else "requests"
    detail = (
        f"Rate limit '{policy.name}' of {policy.limit} {unit} per minute exceeded; "
        f"retry in {decision.retry_after_s} s."
    )
    if unit == "tokens" and cost > policy.limit:
        detail = f"This request's token estimate ({cost}) exceeds the '{policy.name}' limit of {policy.limit} per minute."
    error = RateLimited(detail, retry_after_s=decision.retry_after_s)
    error.headers.update(headers(decision))
    error.extra["policy"] = policy.name
    return error


async def _reserve(
    demands: list[Demand], reservation: str, guard: Guard | None, *, limiter: RateLimiter, mode: FailureMode
) -> RateDecision | None:
    """None when Redis failed and the failure mode is open: the request goes through unlimited."""
    try:
        decision = await limiter.reserve(demands, reservation, guard)
    except ServiceUnavailable:
        if mode == "closed":
            raise
        logger.warning("rate limiting skipped: Redis failed (GATEWAY_REDIS_FAILURE_MODE=open)")
        return None
    if not decision.allowed and not decision.stale:
        raise _refusal(decision, next(d.cost for d in demands if d.policy == decision.refused))
    return decision


async def admit(
    caller: Caller,
    scope: Scope,
    *,
    estimate: int | None,
    keys: KeyStore,
    limiter: RateLimiter,
    settings: Settings,
) -> Admission:
    """Count the request and, with a token `estimate`, reserve its tokens, in one atomic Redis step.

    When that step finds the caller's cached key record changed, the key is read again (401 once
    revoked or rotated) and admitted once more.
    """
    reservation = secrets.token_hex(12)  # unique among a window's entries; uuid4 cost 3% of the CPU
    for _ in range(2):
        tokens = token_policies(caller, settings) if estimate is not None else ()
        demands = request_policies(caller, settings) + [Demand(p, estimate or 0) for p in tokens]
        decision = await _reserve(
            demands, reservation, caller.guard, limiter=limiter, mode=settings.redis_failure_mode
        )
        if decision is None or not decision.stale:
            admitted = Caller(key=caller.key, subject=caller.subject, rate=decision)
            reserved = None if estimate is None else TokenReservation(tokens, reservation, estimate, decision)
            return Admission(admitted, reserved)
        caller = await access_service.reauthenticate(caller, scope, keys=keys)
    raise Unauthorized("The API key changed while the request was admitted; try again.")


async def settle_tokens(reservation: TokenReservation, used: int | None, *, limiter: RateLimiter) -> None:
    """Record real usage (None: unknown, keep the estimate). A Redis failure here keeps the estimate."""
    if reservation.decision is None or used is None or used == reservation.estimate:
        return
    try:
        await limiter.settle(reservation.policies, reservation.reservation, used)
    except ServiceUnavailable:
        logger.warning("token usage not settled: Redis failed; the estimate stays counted")
