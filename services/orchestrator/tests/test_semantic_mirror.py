"""The semantic cache's in-process mirror of each scope against a real Redis server shared by two
replicas (two `RedisCache` instances): it follows every change another replica makes, resets when
the list expires or is deleted, respects the cap and the memory budget, and never answers alone."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import redis
from redis.asyncio import Redis

from rag_common.contracts import RagAnswer
from rag_devstack.processes import free_port
from rag_devstack.redis_server import RedisServer, start_redis
from rag_orchestrator import semantic_cache
from rag_orchestrator.adapters import redis_cache
from rag_orchestrator.adapters.redis_cache import RedisCache

SCOPE = "semantic:s"
ANSWER = RagAnswer(answer="Camellia sinensis leaves.", citations=[], model="m").model_dump_json().encode()


@pytest.fixture
async def connection(redis_server: RedisServer) -> AsyncIterator[Redis]:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushdb()
    connection = redis_cache.connect(redis_server.url, 0.5)
    yield connection
    await connection.aclose()


def replicas(connection: Redis, count: int = 2) -> list[RedisCache]:
    """Orchestrator replicas: each its own mirrors, all of them the same Redis."""
    return [RedisCache(connection, ttl_s=60) for _ in range(count)]


def vector(seed: int, dimension: int = 8) -> bytes:
    return semantic_cache.encode(np.random.default_rng(seed).standard_normal(dimension).tolist())


def in_redis(redis_server: RedisServer, scope: str = SCOPE) -> list[tuple[str, bytes]]:
    with redis.Redis.from_url(redis_server.url) as r:
        raws = r.lrange(redis_cache.PREFIX + scope, 0, -1)
    return [redis_cache._split_entry(raw) for raw in raws]


def sent_bytes(redis_server: RedisServer) -> int:
    with redis.Redis.from_url(redis_server.url) as r:
        return int(r.info("stats")["total_net_output_bytes"])


async def test_entries_another_replica_adds_become_visible_in_the_same_order_as_in_redis(
    connection: Redis, redis_server: RedisServer
) -> None:
    ours, theirs = replicas(connection)
    shuffled = random.Random(3)
    for step in range(300):
        writer = ours if shuffled.random() < 0.3 else theirs
        # Repeats (moved to the head in Redis) and a cap that trims.
        key = shuffled.randrange(60)
        await writer.add_semantic_entry(SCOPE, f"answer:{key}", vector(key), max_entries=25)
        if shuffled.random() < 0.5:
            assert list(await ours.semantic_entries(SCOPE)) == in_redis(redis_server), step
    assert list(await ours.semantic_entries(SCOPE)) == in_redis(redis_server)
    assert len(in_redis(redis_server)) == 25


async def test_a_lookup_after_another_replica_added_fetches_only_the_new_entry(
    connection: Redis, redis_server: RedisServer
) -> None:
    ours, theirs = replicas(connection)
    for i in range(300):
        await theirs.add_semantic_entry(SCOPE, f"answer:{i}", vector(i, 384), max_entries=1000)

    async def sent_by_lookup() -> int:
        """Bytes Redis sent for one lookup and one INFO (the INFO reply is the same size each time)."""
        before = sent_bytes(redis_server)
        await ours.semantic_entries(SCOPE)
        return sent_bytes(redis_server) - before

    whole = await sent_by_lookup()
    unchanged = await sent_by_lookup()
    await theirs.add_semantic_entry(SCOPE, "answer:new", vector(1_000, 384), max_entries=1000)
    incremental = await sent_by_lookup()
    assert whole - unchanged > 300 * 768
    assert incremental - unchanged < 2 * 768, "one entry, not the scope"
    entries = await ours.semantic_entries(SCOPE)
    assert entries[0] == ("answer:new", vector(1_000, 384))
    assert len(entries) == 301
    assert await ours.semantic_entries(SCOPE) is entries, "nothing changed, nothing rebuilt"


async def test_a_similar_question_added_by_another_replica_is_found(connection: Redis) -> None:
    ours, theirs = replicas(connection)
    await theirs.add_semantic_entry(SCOPE, "answer:a", semantic_cache.encode([1.0, 0.0, 0.0]), max_entries=9)
    assert await semantic_cache.find(ours, SCOPE, [0.0, 1.0, 0.0], threshold=0.9) is None
    await theirs.set("answer:b", ANSWER)
    await theirs.add_semantic_entry(SCOPE, "answer:b", semantic_cache.encode([0.0, 1.0, 0.1]), max_entries=9)
    found = await semantic_cache.find(ours, SCOPE, [0.0, 1.0, 0.0], threshold=0.9)
    assert found is not None
    assert (found.answer, found.cache) == ("Camellia sinensis leaves.", "semantic")


async def test_a_matched_answer_that_expired_is_not_served(connection: Redis) -> None:
    ours, theirs = replicas(connection)
    await theirs.add_semantic_entry(SCOPE, "answer:gone", semantic_cache.encode([1.0, 0.0]), max_entries=9)
    assert await semantic_cache.find(ours, SCOPE, [1.0, 0.0], threshold=0.9) is None


@pytest.mark.parametrize("deleted", [["list", "sync"], ["list"]])
async def test_the_mirror_starts_again_when_the_list_expires_or_is_deleted(
    connection: Redis, redis_server: RedisServer, deleted: list[str]
) -> None:
    ours, theirs = replicas(connection)
    for i in range(3):
        await theirs.add_semantic_entry(SCOPE, f"answer:old{i}", vector(i), max_entries=9)
    assert len(await ours.semantic_entries(SCOPE)) == 3
    keys = {"list": redis_cache.PREFIX + SCOPE, "sync": redis_cache.PREFIX + "sync:" + SCOPE}
    with redis.Redis.from_url(redis_server.url) as r:
        r.delete(*(keys[name] for name in deleted))
    assert list(await ours.semantic_entries(SCOPE)) == []
    # More additions to the new list than the mirror had seen of the old one.
    for i in range(4):
        await theirs.add_semantic_entry(SCOPE, f"answer:new{i}", vector(10 + i), max_entries=9)
    assert [key for key, _ in await ours.semantic_entries(SCOPE)] == [f"answer:new{i}" for i in (3, 2, 1, 0)]


async def test_a_list_that_expired_and_was_refilled_before_the_next_lookup_replaces_the_mirror(
    connection: Redis, redis_server: RedisServer
) -> None:
    ours, theirs = replicas(connection)
    for i in range(2):
        await theirs.add_semantic_entry(SCOPE, f"answer:old{i}", vector(i), max_entries=9)
    await ours.semantic_entries(SCOPE)
    with redis.Redis.from_url(redis_server.url) as r:
        r.delete(redis_cache.PREFIX + SCOPE, redis_cache.PREFIX + "sync:" + SCOPE)
    for i in range(3):
        await theirs.add_semantic_entry(SCOPE, f"answer:new{i}", vector(10 + i), max_entries=9)
    assert list(await ours.semantic_entries(SCOPE)) == in_redis(redis_server)


async def test_entries_of_another_dimension_are_skipped_as_they_arrive(connection: Redis) -> None:
    ours, theirs = replicas(connection)
    await theirs.set("answer:3d", ANSWER)
    await theirs.add_semantic_entry(SCOPE, "answer:3d", semantic_cache.encode([0.0, 1.0, 0.0]), max_entries=9)
    assert await semantic_cache.find(ours, SCOPE, [0.0, 1.0, 0.0], threshold=0.9) is not None
    await theirs.add_semantic_entry(SCOPE, "answer:2d", semantic_cache.encode([0.0, 1.0]), max_entries=9)
    match = semantic_cache.best_match(await ours.semantic_entries(SCOPE), [0.0, 1.0, 0.0])
    assert match is not None
    assert match.key == "answer:3d"
    assert semantic_cache.best_match(await ours.semantic_entries(SCOPE), [1.0, 0.0, 0.0, 0.0]) is None


async def test_the_mirror_keeps_no_more_than_the_cap_redis_keeps(
    connection: Redis, redis_server: RedisServer
) -> None:
    ours, theirs = replicas(connection)
    for i in range(5):
        await theirs.add_semantic_entry(SCOPE, f"answer:{i}", vector(i), max_entries=5)
    assert len(await ours.semantic_entries(SCOPE)) == 5
    await theirs.add_semantic_entry(SCOPE, "answer:5", vector(5), max_entries=3)
    entries = await ours.semantic_entries(SCOPE)
    assert [key for key, _ in entries] == ["answer:5", "answer:4", "answer:3"]
    match = semantic_cache.best_match(entries, np.frombuffer(vector(0), dtype=np.float16).tolist())
    assert match is not None
    assert match.key != "answer:0", "a trimmed question is not offered"


async def test_the_least_recently_used_scopes_leave_the_mirror_past_its_budget(connection: Redis) -> None:
    writer = RedisCache(connection, ttl_s=60)
    for scope in ("semantic:a", "semantic:b", "semantic:c"):
        for i in range(10):
            await writer.add_semantic_entry(scope, f"answer:{i}", vector(i, 64), max_entries=10)
    one_scope = semantic_cache.SemanticEntries(
        [(f"answer:{i}", vector(i, 64)) for i in range(10)]
    ).estimated_bytes()
    ours = RedisCache(connection, ttl_s=60, mirror_budget_bytes=2 * one_scope)
    for scope in ("semantic:a", "semantic:b", "semantic:a", "semantic:c"):
        assert len(await ours.semantic_entries(scope)) == 10
    assert ours.mirrored_scopes == ["semantic:a", "semantic:c"]
    tiny = RedisCache(connection, ttl_s=60, mirror_budget_bytes=one_scope // 2)
    assert len(await tiny.semantic_entries("semantic:a")) == 10, "too big to keep, still served whole"
    assert tiny.mirrored_scopes == []


async def test_a_warm_mirror_is_never_served_while_redis_is_down(tmp_path: Path) -> None:
    server = start_redis(free_port(), tmp_path / "redis", tmp_path / "redis.log")
    connection = redis_cache.connect(server.url, 0.2)
    ours, theirs = replicas(connection)
    await theirs.set("answer:k", ANSWER)
    await theirs.add_semantic_entry(SCOPE, "answer:k", semantic_cache.encode([1.0, 0.0]), max_entries=9)
    assert await semantic_cache.find(ours, SCOPE, [1.0, 0.0], threshold=0.9) is not None
    server.stop()
    try:
        assert list(await ours.semantic_entries(SCOPE)) == []
        assert await semantic_cache.find(ours, SCOPE, [1.0, 0.0], threshold=0.9) is None
    finally:
        await connection.aclose()


def test_a_merge_moves_a_repeated_entry_to_the_head_and_trims_the_tail() -> None:
    entries = semantic_cache.SemanticEntries([(f"answer:{i}", vector(i)) for i in range(4)])
    dimension = 8
    assert entries.matrix(dimension).keys == ("answer:0", "answer:1", "answer:2", "answer:3")
    merged = entries.merged([("answer:9", vector(9)), ("answer:2", vector(2))], length=4)
    assert [key for key, _ in merged] == ["answer:9", "answer:2", "answer:0", "answer:1"]
    matrix = merged.matrix(dimension)
    assert matrix.keys == ("answer:9", "answer:2", "answer:0", "answer:1")
    rebuilt = semantic_cache.SemanticEntries(list(merged)).matrix(dimension)
    assert np.array_equal(matrix.rows, rebuilt.rows)
