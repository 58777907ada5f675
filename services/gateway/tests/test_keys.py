"""API keys: the admin API and the CLI over one real Redis; scopes, expiry, rotation, revocation."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from pydantic import ValidationError

from rag_devstack.redis_server import RedisServer
from rag_gateway.adapters.redis_store import KEY_PREFIX, hash_key
from rag_gateway.settings import Settings

from .conftest import ADMIN_KEY, GatewayFactory, bearer

ADMIN = bearer(ADMIN_KEY)
QUESTION = {"question": "hi", "collection": "docs"}
DOCS = {"collection": "docs", "documents": [{"text": "x"}]}


async def create(client: httpx.AsyncClient, **spec: object) -> dict[str, object]:
    response = await client.post("/v1/admin/keys", json={"tenant": "acme", "name": "k"} | spec, headers=ADMIN)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_created_key_is_shown_once_and_stored_only_as_a_hash(
    gateway: GatewayFactory, redis_sync: redis.Redis
) -> None:
    async with gateway() as client:
        issued = await create(client, scopes=["query"])
        secret = str(issued["key"])
        listed = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["keys"]
        answer = await client.post("/v1/rag/query", json=QUESTION, headers=bearer(secret))
    assert answer.status_code == 200
    mine = next(k for k in listed if k["id"] == issued["id"])
    assert "key" not in mine
    assert mine["tenant"] == "acme"
    assert mine["scopes"] == ["query"]
    dump = b"".join(redis_sync.dump(k) or b"" for k in redis_sync.keys("*"))
    assert secret.encode() not in dump
    assert redis_sync.exists(KEY_PREFIX + hash_key(secret))


async def test_revocation_holds_at_once_on_another_replica(gateway: GatewayFactory) -> None:
    async with gateway() as replica_a, gateway() as replica_b:
        issued = await create(replica_a)
        key = bearer(str(issued["key"]))
        assert (await replica_b.post("/v1/rag/query", json=QUESTION, headers=key)).status_code == 200
        revoked = await replica_a.delete(f"/v1/admin/keys/{issued['id']}", headers=ADMIN)
        assert revoked.status_code == 204
        after = await replica_b.post("/v1/rag/query", json=QUESTION, headers=key)
        again = await replica_a.delete(f"/v1/admin/keys/{issued['id']}", headers=ADMIN)
    assert after.status_code == 401
    assert again.status_code == 404


async def test_rotation_issues_a_new_secret_and_revokes_the_old(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        issued = await create(client, scopes=["query", "ingest"], requests_per_minute=7)
        rotated = await client.post(f"/v1/admin/keys/{issued['id']}/rotate", headers=ADMIN)
        assert rotated.status_code == 200
        new = rotated.json()
        old_answer = await client.post("/v1/rag/query", json=QUESTION, headers=bearer(str(issued["key"])))
        new_answer = await client.post("/v1/rag/query", json=QUESTION, headers=bearer(new["key"]))
    assert new["id"] == issued["id"]
    assert new["key"] != issued["key"]
    assert (new["scopes"], new["requests_per_minute"]) == (["query", "ingest"], 7)
    assert old_answer.status_code == 401
    assert new_answer.status_code == 200
    assert new_answer.headers["ratelimit-policy"].startswith('"per-key";q=7;')


async def test_wrong_scope_is_403_problem(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        query_only = bearer(str((await create(client, scopes=["query"]))["key"]))
        ingest_only = bearer(str((await create(client, scopes=["ingest"]))["key"]))
        cannot_ingest = await client.post("/v1/documents", json=DOCS, headers=query_only)
        cannot_chat = await client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers=ingest_only,
        )
        can_ingest = await client.post("/v1/documents", json=DOCS, headers=ingest_only)
        not_admin = await client.get("/v1/admin/keys", headers=query_only)
    assert cannot_ingest.status_code == 403
    assert cannot_ingest.headers["content-type"] == "application/problem+json"
    assert cannot_ingest.json()["required_scope"] == "ingest"
    assert cannot_chat.status_code == 403
    assert can_ingest.status_code == 200
    assert not_admin.status_code == 403


async def test_expired_key_is_401_saying_so(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        past = datetime.now(UTC) - timedelta(minutes=1)
        issued = await create(client, expires_at=past.isoformat())
        response = await client.post("/v1/rag/query", json=QUESTION, headers=bearer(str(issued["key"])))
        listed = (await client.get(f"/v1/admin/keys/{issued['id']}", headers=ADMIN)).json()
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert response.json()["type"].endswith("/key-expired")
    assert listed["expired"] is True


@pytest.mark.parametrize("headers", [{}, bearer("not-the-admin-key"), bearer(ADMIN_KEY + "x")])
async def test_admin_api_needs_the_admin_key(gateway: GatewayFactory, headers: dict[str, str]) -> None:
    async with gateway() as client:
        response = await client.post("/v1/admin/keys", json={"tenant": "t", "name": "n"}, headers=headers)
    assert response.status_code == 401


async def test_a_tenant_admin_key_manages_only_its_own_tenant(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        tenant_admin = bearer(str((await create(client, tenant="acme", scopes=["admin"]))["key"]))
        other = await create(client, tenant="globex")
        own = await client.post("/v1/admin/keys", json={"tenant": "acme", "name": "x"}, headers=tenant_admin)
        foreign = await client.post(
            "/v1/admin/keys", json={"tenant": "globex", "name": "x"}, headers=tenant_admin
        )
        listed = (await client.get("/v1/admin/keys", headers=tenant_admin)).json()["keys"]
        revoke_other = await client.delete(f"/v1/admin/keys/{other['id']}", headers=tenant_admin)
    assert own.status_code == 201
    assert foreign.status_code == 403
    assert {k["tenant"] for k in listed} == {"acme"}
    assert revoke_other.status_code == 404


async def test_invalid_tenant_names_are_refused(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        response = await client.post("/v1/admin/keys", json={"tenant": "a-b", "name": "n"}, headers=ADMIN)
    assert response.status_code == 422


async def test_dev_key_has_every_scope_and_tenant_dev(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        listed = (await client.get("/v1/admin/keys", headers=ADMIN)).json()["keys"]
    dev = next(k for k in listed if k["id"] == "dev")
    assert (dev["tenant"], dev["scopes"]) == ("dev", ["query", "ingest", "admin"])


def test_default_admin_key_is_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="GATEWAY_ADMIN_API_KEY"):
        Settings(environment="production", dev_api_key=None)
    assert Settings(environment="production", dev_api_key=None, admin_api_key="s3cret-admin").admin_api_key
    assert Settings(environment="development").admin_api_key


def cli(redis_server: RedisServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rag_gateway.keys", "--redis-url", redis_server.url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_creates_lists_rotates_and_revokes_keys_the_gateway_honours(
    gateway: GatewayFactory, redis_server: RedisServer
) -> None:
    made = cli(redis_server, "create", "--tenant", "cli", "--name", "ci", "--scope", "query",
               "--expires-in-days", "1", "--tokens-per-minute", "5000")  # fmt: skip
    assert made.returncode == 0, made.stderr
    issued = json.loads(made.stdout)
    listing = cli(redis_server, "list", "--tenant", "cli")
    assert [k["id"] for k in json.loads(listing.stdout)["keys"]] == [issued["id"]]
    assert issued["key"] not in listing.stdout
    async with gateway() as client:
        first = await client.post("/v1/rag/query", json=QUESTION, headers=bearer(issued["key"]))
        rotated = json.loads(cli(redis_server, "rotate", issued["id"]).stdout)
        old = await client.post("/v1/rag/query", json=QUESTION, headers=bearer(issued["key"]))
        new = await client.post("/v1/rag/query", json=QUESTION, headers=bearer(rotated["key"]))
        assert cli(redis_server, "revoke", issued["id"]).returncode == 0
        gone = await client.post("/v1/rag/query", json=QUESTION, headers=bearer(rotated["key"]))
    assert first.status_code == 200
    assert 'tokens-per-key";q=5000' in first.headers["ratelimit-policy"]
    assert (old.status_code, new.status_code, gone.status_code) == (401, 200, 401)
    missing = cli(redis_server, "revoke", issued["id"])
    assert missing.returncode == 1
    assert "No API key" in missing.stderr


async def test_concurrent_rotations_leave_exactly_one_working_secret(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        issued = await create(client)
        rotations = await asyncio.gather(
            *(client.post(f"/v1/admin/keys/{issued['id']}/rotate", headers=ADMIN) for _ in range(6))
        )
        secrets = [r.json()["key"] for r in rotations if r.status_code == 200]
        working = [
            s
            for s in [str(issued["key"]), *secrets]
            if (await client.post("/v1/rag/query", json=QUESTION, headers=bearer(s))).status_code == 200
        ]
    assert {r.status_code for r in rotations} <= {200, 409}
    assert secrets
    assert len(working) == 1


async def test_a_cached_key_record_rewritten_in_redis_is_read_again(
    gateway: GatewayFactory, redis_sync: redis.Redis
) -> None:
    async with gateway() as client:
        issued = await create(client, scopes=["query"])
        key, stored = bearer(str(issued["key"])), KEY_PREFIX + hash_key(str(issued["key"]))
        first = await client.post("/v1/rag/query", json=QUESTION, headers=key)
        record = json.loads(redis_sync.get(stored) or b"{}")
        redis_sync.set(stored, json.dumps(record | {"tenant": "globex"}))
        moved = await client.post("/v1/rag/query", json=QUESTION, headers=key)
        redis_sync.set(stored, json.dumps(record | {"scopes": ["ingest"]}))
        narrowed = await client.post("/v1/rag/query", json=QUESTION, headers=key)
    assert first.json()["tenant"] == "acme"
    assert moved.json()["tenant"] == "globex", "the cached record was confirmed, found changed, read again"
    assert narrowed.status_code == 403
