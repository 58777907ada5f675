"""Load on the gateway's RAG endpoint: `cache` asks one question over and over (answer-cache hits),
`full` asks a new question every time (embedding, retrieval, safety and the small model each time).

Pick with `--tags cache` or `--tags full`. A 429 is the rate limit doing its job and counts as a
success; anything else that is not a cited 200 is a failure.
Environment: RAG_API_KEY, RAG_COLLECTION, RAG_MAX_TOKENS.
"""

from __future__ import annotations

import os
import uuid

from locust import FastHttpUser, constant, tag, task

HEADERS = {"Authorization": f"Bearer {os.environ.get('RAG_API_KEY', 'dev-key')}"}
COLLECTION = os.environ.get("RAG_COLLECTION", "load")
MAX_TOKENS = int(os.environ.get("RAG_MAX_TOKENS", "8"))


class RagUser(FastHttpUser):
    wait_time = constant(0)

    def ask(self, question: str, name: str) -> None:
        body = {"collection": COLLECTION, "question": question, "max_tokens": MAX_TOKENS}
        with self.client.post(
            "/v1/rag/query", json=body, headers=HEADERS, name=name, catch_response=True
        ) as response:
            if response.status_code == 429:
                response.success()
            elif response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
            elif not response.json().get("citations"):
                response.failure("an answer without citations")

    @tag("cache")
    @task
    def cached_answer(self) -> None:
        self.ask("Where is Mount Etna?", "cache hit")

    @tag("full")
    @task
    def full_path(self) -> None:
        self.ask(f"Where is Mount Etna? ({uuid.uuid4().hex[:8]})", "full path")
