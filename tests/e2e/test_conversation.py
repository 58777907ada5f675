"""A conversation through the gateway: a follow-up is answered with its session's memory, and the
orchestrator's stage timings reach the client after the gateway's own."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from .conftest import API_KEY, Stack

pytestmark = pytest.mark.e2e

COLLECTION = "e2e-conversation"
SESSION = "e2e-session-1"
ETNA = (
    "Mount Etna is an active stratovolcano on the east coast of Sicily, Italy. "
    "It is the tallest active volcano in Europe outside the Caucasus, about 3,357 metres high."
)


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=stack.gateway_url, timeout=120.0, headers=headers) as http:
        ingested = http.post(
            "/v1/documents", json={"collection": COLLECTION, "documents": [{"id": "etna", "text": ETNA}]}
        )
        assert ingested.status_code == 200, ingested.text
        yield http


def ask(client: httpx.Client, question: str) -> httpx.Response:
    body = {"question": question, "collection": COLLECTION, "top_k": 1, "session_id": SESSION}
    return client.post("/v1/rag/query", json=body)


def stages(response: httpx.Response) -> list[str]:
    return [part.strip().split(";")[0] for part in response.headers["Server-Timing"].split(",")]


def test_a_follow_up_is_answered_with_its_conversation(client: httpx.Client, stack: Stack) -> None:
    first = ask(client, "Where is Mount Etna?")
    assert first.status_code == 200, first.text
    assert first.json()["memory"] == "on"
    assert first.json()["citations"][0]["document_id"] == "etna"

    follow_up = ask(client, "How high is it?")
    assert follow_up.status_code == 200, follow_up.text
    answer = follow_up.json()
    assert answer["memory"] == "on"
    assert answer["citations"][0]["document_id"] == "etna"
    timed = stages(follow_up)
    assert timed[0] == "gateway", "the gateway's own time first, then the orchestrator's stages"
    assert {"memory", "condense", "embed", "retrieve", "generate", "total"} <= set(timed)

    with redis.Redis.from_url(stack.redis.url) as r:
        kept = [key.decode() for key in r.scan_iter(f"rag:memory:*:{SESSION}")]
        assert len(kept) == 1
        assert r.llen(kept[0]) == 2
