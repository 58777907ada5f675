"""Requests and tokens per minute, per key and per tenant, on a real Redis; the Redis failure modes."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from asgi_lifespan import LifespanManager

from rag_common.contracts import ChatCompletionRequest, RagQuery
from rag_common.http import ServiceClient
from rag_common.redis_pipelined import PipelinedRedis
from rag_devstack.processes import free_port
from rag_devstack.redis_server import RedisServer, start_redis
from rag_gateway import proxy
from rag_gateway.adapters.redis_limits import RedisRateLimiter
from rag_gateway.limits import estimate_tokens
from rag_gateway.main import create_app
from rag_gateway.ports import Demand, Policy
from rag_gateway.settings import Settings
from rag_gateway.usage import StreamUsage

from .conftest import ADMIN_KEY, DEV_KEY, GatewayFactory, bearer

ADMIN = bearer(ADMIN_KEY)


async def new_key(client: httpx.AsyncClient, tenant: str = "acme", **limits: int) -> dict[str, str]:
    spec = {"tenant": tenant, "name": "k", "scopes": ["query", "ingest"]} | limits
    response = await client.post("/v1/admin/keys", json=spec, headers=ADMIN)
    assert response.status_code == 201, response.text
    return bearer(response.json()["key"])


def window_total(r: redis.Redis, policy: str, subject: str) -> int:
    """Tokens in a weighted window: the running total beside the costs."""
    return int(r.hget(f"rag:win:{policy}:{subject}:cost", "__total") or 0)


def window_count(r: redis.Redis, policy: str, subject: str) -> int:
    """Requests in a counting window: its sorted set's size."""
    return int(r.zcard(f"rag:win:{policy}:{subject}"))


async def settled_total(r: redis.Redis, policy: str, subject: str, expected: int) -> int:
    """The window's total once it reaches `expected` (a settlement waits up to 50 ms for a
    reservation to carry it), or after a second."""
    for _ in range(100):
        total = window_total(r, policy, subject)
        if total == expected:
            break
        await asyncio.sleep(0.01)
    return total


def test_token_estimate_is_prompt_chars_over_4_plus_passages_plus_max_tokens() -> None:
    settings = Settings(passage_tokens=200, default_max_tokens=256)
    assert estimate_tokens(RagQuery(question="x" * 40, top_k=3, max_tokens=50), settings) == 10 + 600 + 50
    chat = ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "x" * 8}]})
    assert estimate_tokens(chat, settings) == 2 + 256
    grounded = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "x" * 8}], "collection": "c", "top_k": 2}
    )
    assert estimate_tokens(grounded, settings) == 2 + 400 + 256


async def test_tenant_request_limit_spans_all_its_keys(gateway: GatewayFactory) -> None:
    async with gateway(tenant_rate_limit_per_minute=3, rate_limit_per_minute=10) as client:
        first, second = await new_key(client), await new_key(client)
        outsider = await new_key(client, tenant="globex")
        statuses = [
            (await client.post("/v1/rag/query", json={"question": "q"}, headers=key)).status_code
            for key in (first, second, first)
        ]
        refused = await client.post("/v1/rag/query", json={"question": "q"}, headers=second)
        other_tenant = await client.post("/v1/rag/query", json={"question": "q"}, headers=outsider)
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["policy"] == "per-tenant"
    assert refused.headers["ratelimit-policy"] == '"per-tenant";q=3;w=60'
    assert refused.headers["ratelimit"].startswith('"per-tenant";r=0;t=')
    assert int(refused.headers["retry-after"]) >= 1
    assert other_tenant.status_code == 200


async def test_a_key_can_carry_its_own_request_limit(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        key = await new_key(client, requests_per_minute=2)
        statuses = [
            (await client.post("/v1/rag/query", json={"question": "q"}, headers=key)).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 429]


async def test_tokens_are_reserved_then_settled_with_the_real_usage(
    gateway: GatewayFactory, redis_sync: redis.Redis
) -> None:
    async with gateway(tokens_per_minute=100, passage_tokens=0) as client:
        key = await new_key(client)
        subject = next(k["id"] for k in (await client.get("/v1/admin/keys", headers=ADMIN)).json()["keys"]
                       if k["tenant"] == "acme")  # fmt: skip
        ask = {"question": "usage=30", "max_tokens": 60}  # estimate: 2 + 60 = 62
        first = await client.post("/v1/rag/query", json=ask, headers=key)
        after_first = await settled_total(redis_sync, "tokens-per-key", f"key:{subject}", 30)
        second = await client.post("/v1/rag/query", json=ask, headers=key)
        third = await client.post("/v1/rag/query", json=ask, headers=key)
    assert (first.status_code, second.status_code) == (200, 200)
    assert after_first == 30, "the estimate of 62 was settled to the 30 really used, soon after"
    assert window_total(redis_sync, "tokens-per-key", f"key:{subject}") == 60
    assert window_total(redis_sync, "tokens-per-tenant", "tenant:acme") == 60
    assert third.status_code == 429
    assert third.json()["policy"] == "tokens-per-key"
    assert third.headers["ratelimit"].startswith('"tokens-per-key";r=40;')
    assert '"tokens-per-key";q=100;w=60' in first.headers["ratelimit-policy"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/rag/query", {"question": "usage=33", "stream": True, "max_tokens": 50}),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "usage=33"}], "stream": True, "max_tokens": 50},
        ),
    ],
)
async def test_streams_are_settled_from_the_usage_in_their_last_event(
    gateway: GatewayFactory, redis_sync: redis.Redis, path: str, body: dict[str, object]
) -> None:
    async with gateway(passage_tokens=0) as client:
        async with client.stream("POST", path, json=body, headers=bearer(DEV_KEY)) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert b"usage" in raw
    assert window_total(redis_sync, "tokens-per-key", "key:dev") == 33


async def test_concurrent_requests_in_flight_cannot_overshoot_the_token_limit(
    gateway: GatewayFactory, redis_sync: redis.Redis
) -> None:
    async with gateway(tokens_per_minute=500, passage_tokens=0) as client:
        key = await new_key(client)
        ask = {"question": "sleep=0.3 usage=100", "max_tokens": 100}  # estimate 5 + 100 = 105
        responses = await asyncio.gather(
            *(client.post("/v1/rag/query", json=ask, headers=key) for _ in range(10))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 4 + [429] * 6
    assert window_total(redis_sync, "tokens-per-tenant", "tenant:acme") == 400


async def test_upstream_failure_releases_the_reservation(
    gateway: GatewayFactory, redis_sync: redis.Redis
) -> None:
    async with gateway(orchestrator_url=f"http://127.0.0.1:{free_port()}", upstream_retries=0) as client:
        response = await client.post("/v1/rag/query", json={"question": "q"}, headers=bearer(DEV_KEY))
    assert response.status_code == 503
    assert window_total(redis_sync, "tokens-per-key", "key:dev") == 0


def limited_user_url(server: RedisServer, r: redis.Redis) -> str:
    """A Redis user that may read and write keys but not run scripts: the limiter fails, auth works."""
    user, password = f"nolua{secrets.token_hex(4)}", secrets.token_hex(8)
    r.acl_setuser(
        user, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all", "-@scripting"]
    )
    parts = urlsplit(server.url)
    return f"redis://{user}:{password}@{parts.hostname}:{parts.port}/0"


async def test_closed_mode_answers_503_when_the_limiter_fails(
    gateway: GatewayFactory, redis_server: RedisServer, redis_sync: redis.Redis
) -> None:
    async with gateway(redis_url=limited_user_url(redis_server, redis_sync)) as client:
        response = await client.post("/v1/rag/query", json={"question": "q"}, headers=bearer(DEV_KEY))
    assert response.status_code == 503
    assert response.json()["service"] == "redis"


async def test_open_mode_skips_rate_limits_when_redis_fails_after_auth(
    gateway: GatewayFactory, redis_server: RedisServer, redis_sync: redis.Redis
) -> None:
    url = limited_user_url(redis_server, redis_sync)
    async with gateway(redis_url=url, redis_failure_mode="open", rate_limit_per_minute=1) as client:
        answers = [
            await client.post("/v1/rag/query", json={"question": "q"}, headers=bearer(DEV_KEY))
            for _ in range(3)
        ]
        unknown = await client.post("/v1/rag/query", json={"question": "q"}, headers=bearer("nope"))
    assert [a.status_code for a in answers] == [200, 200, 200], "limits skipped, not enforced"
    assert "ratelimit" not in answers[0].headers
    assert unknown.status_code == 401, "authentication still reads Redis"


async def test_open_mode_still_needs_redis_to_authenticate(tmp_path: Path, stand_in_url: str) -> None:
    own = start_redis(free_port(), tmp_path / "redis", tmp_path / "redis.log")
    settings = Settings(
        redis_url=own.url, orchestrator_url=stand_in_url, dev_api_key=DEV_KEY,
        redis_failure_mode="open", redis_timeout_s=0.5,
    )  # fmt: skip
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://gw") as client,
    ):
        own.stop()
        response = await client.post("/v1/rag/query", json={"question": "q"}, headers=bearer(DEV_KEY))
    assert response.status_code == 503
    assert response.json()["service"] == "redis"


def test_stream_usage_is_read_across_chunk_boundaries() -> None:
    stream = (
        b'event: delta\r\ndata: {"content":"a"}\r\n\r\n'
        b'event: done\ndata: {"model":"m","usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}\n\n'
        b"data: [DONE]\n\n"
    )
    for size in (1, 3, 7, len(stream)):
        usage = StreamUsage()
        for start in range(0, len(stream), size):
            usage.feed(stream[start : start + size])
        assert usage.total == 12


async def test_a_request_estimated_above_the_token_limit_says_so(gateway: GatewayFactory) -> None:
    async with gateway(tokens_per_minute=50, passage_tokens=0) as client:
        key = await new_key(client)
        response = await client.post("/v1/rag/query", json={"question": "q", "max_tokens": 100}, headers=key)
    assert response.status_code == 429
    assert "estimate (101)" in response.json()["detail"]


# What the gateway sends itself; commandstats also counts the commands its scripts run inside Redis.
ROUND_TRIP_COMMANDS = {"get", "mget", "set", "evalsha", "eval", "script|load", "multi", "exec"}


def command_calls(r: redis.Redis) -> dict[str, int]:
    stats = r.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


async def test_a_query_with_a_cached_key_costs_one_admission_step_then_the_settlement(
    gateway: GatewayFactory, redis_sync: redis.Redis
) -> None:
    async with gateway() as client:
        await client.post("/v1/rag/query", json={"question": "warm up"}, headers=bearer(DEV_KEY))
        redis_sync.config_resetstat()
        response = await client.post("/v1/rag/query", json={"question": "usage=7"}, headers=bearer(DEV_KEY))
    sent = {name: n for name, n in command_calls(redis_sync).items() if name in ROUND_TRIP_COMMANDS}
    assert response.status_code == 200
    # The one `get` is the guard's, inside the admission script: the key record itself came from the cache.
    assert sent == {"get": 1, "evalsha": 2}, "the request with its token estimate, then the real usage"
    assert window_total(redis_sync, "tokens-per-key", "key:dev") == 10 + 7
    assert window_count(redis_sync, "per-key", "key:dev") == 2


async def test_the_usage_is_settled_once_the_answer_has_been_sent(stand_in_url: str) -> None:
    events: list[object] = []

    async def on_usage(used: int | None) -> None:
        events.append(("settled", used))

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        events.append(message["type"])

    client = ServiceClient("orchestrator", stand_in_url)
    try:
        response = await proxy.forward(
            client, "/v1/rag/query", b'{"question": "usage=7"}', tenant="acme", headers={}, on_usage=on_usage
        )
        assert events == [], "nothing settled while the answer is still to be sent"
        await response(
            {"type": "http", "method": "POST", "path": "/v1/rag/query", "headers": []}, receive, send
        )
    finally:
        await client.aclose()
    assert events == ["http.response.start", "http.response.body", ("settled", 7)]


async def test_generation_requests_with_an_invalid_body_still_count_against_the_request_limit(
    gateway: GatewayFactory,
) -> None:
    invalid = {"question": ""}
    async with gateway(rate_limit_per_minute=2) as client:
        refused = [
            await client.post("/v1/rag/query", json=invalid, headers=bearer(DEV_KEY)) for _ in range(2)
        ]
        over_rag = await client.post("/v1/rag/query", json=invalid, headers=bearer(DEV_KEY))
        over_chat = await client.post("/v1/chat/completions", json={"messages": []}, headers=bearer(DEV_KEY))
        valid = await client.post("/v1/rag/query", json={"question": "q"}, headers=bearer(DEV_KEY))
    assert [r.status_code for r in refused] == [422, 422]
    assert '"per-key";r=0' in refused[1].headers["ratelimit"]
    assert (over_rag.status_code, over_chat.status_code, valid.status_code) == (429, 429, 429)
    assert over_rag.json()["policy"] == "per-key"


TOKEN_POLICIES_OF_A = (("tokens-per-key", "key:a"), ("tokens-per-tenant", "tenant:t"))
TOKEN_POLICIES_OF_B = (("tokens-per-key", "key:b"), ("tokens-per-tenant", "tenant:t"))


async def test_a_settlement_rides_on_the_next_reservation_or_goes_alone_when_none_comes(
    redis_server: RedisServer, redis_sync: redis.Redis
) -> None:
    connection = PipelinedRedis(redis_server.url, 1.0)
    limiter = RedisRateLimiter(connection, settle_delay_s=0.2)
    first = tuple(Policy(name, subject, 1000, weighted=True) for name, subject in TOKEN_POLICIES_OF_A)
    second = tuple(Policy(name, subject, 1000, weighted=True) for name, subject in TOKEN_POLICIES_OF_B)
    try:
        await limiter.reserve([Demand(p, 100) for p in first], "r1")
        redis_sync.config_resetstat()
        await limiter.settle(first, "r1", 7)
        assert window_total(redis_sync, "tokens-per-key", "key:a") == 100, "the estimate counts until then"
        await limiter.reserve([Demand(p, 100) for p in second], "r2")
        carried = command_calls(redis_sync).get("evalsha")
        totals = [
            window_total(redis_sync, "tokens-per-key", "key:a"),
            window_total(redis_sync, "tokens-per-tenant", "tenant:t"),
        ]
        await limiter.settle(second, "r2", 9)
        alone = await settled_total(redis_sync, "tokens-per-key", "key:b", 9)
    finally:
        await limiter.aclose()
        await connection.aclose()
    assert carried == 1, "the next reservation carried the settlement: no call of its own"
    assert totals == [7, 7 + 100]
    assert alone == 9, "with no reservation coming, the settlement went on its own"
    assert window_total(redis_sync, "tokens-per-tenant", "tenant:t") == 7 + 9


async def test_a_request_count_refuses_until_its_oldest_request_leaves_the_window(
    redis_server: RedisServer,
) -> None:
    connection = PipelinedRedis(redis_server.url, 1.0)
    limiter = RedisRateLimiter(connection)
    policy = Policy("per-key", f"key:{secrets.token_hex(4)}", 2, window_s=2)
    try:
        first = await limiter.reserve([Demand(policy, 1)], "a")
        await asyncio.sleep(0.6)
        second = await limiter.reserve([Demand(policy, 1)], "b")
        refused = await limiter.reserve([Demand(policy, 1)], "c")
        await asyncio.sleep(1.5)  # the first has left the window, the second not yet
        again = await limiter.reserve([Demand(policy, 1)], "d")
        with pytest.raises(ValueError, match="each costs 1"):
            await limiter.reserve([Demand(policy, 5)], "e")
    finally:
        await connection.aclose()
    assert [first.states[0].remaining, second.states[0].remaining] == [1, 0]
    assert not refused.allowed
    assert refused.refused == policy
    assert refused.retry_after_s == 2, "about 1.4 s until the first request leaves, rounded up"
    assert again.allowed
    assert again.states[0].remaining == 0
