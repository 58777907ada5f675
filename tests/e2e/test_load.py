"""A bounded load test with locust on a stack of its own: the answer-cache path and the full RAG path
with the small model. No errors but the intended 429s, and no service's memory grows after warm-up.

Short on purpose; `bench/load/run.py` runs the same load longer and writes the percentiles to the docs.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rag_devstack.loadtest import collect_sampling_rss, rss_growth_mb, start_locust

from .conftest import API_KEY, Stack, running_stack

pytestmark = pytest.mark.e2e

COLLECTION = "load"
# The full path warms longer: the safety service's classifier and NLP pipeline keep allocating for
# the first few dozen new question shapes (83 MB in 15 s after a 6 s warm-up, once in CI; 85 MB of
# settled growth after a 25 s warm-up once in CI, while a local 100 s soak plateaued after 10 s).
WARM_UP_S = {"cache": 6, "full": 40}
MEASURED_S = 15
# Lazily built caches: the measured run's settled memory (median of its last third of samples) this
# far above the warm-up's peak (`rss_growth_mb`) is treated as a leak.
MAX_GROWTH_MB = 40.0
PHASES = {"cache": 16, "full": 4}  # concurrent users per path
CACHED_QUESTION = "Where is Mount Etna?"  # the question bench/load/locustfile.py repeats


@pytest.fixture(scope="module")
def loaded() -> Iterator[Stack]:
    def generous_limits(_: dict[str, int], envs: dict[str, dict[str, str]]) -> None:
        envs["gateway"] |= {
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "1000000",
            "GATEWAY_TENANT_RATE_LIMIT_PER_MINUTE": "1000000",
            "GATEWAY_TOKENS_PER_MINUTE": "1000000000",
            "GATEWAY_TENANT_TOKENS_PER_MINUTE": "1000000000",
        }

    with running_stack(generous_limits) as stack:
        response = httpx.post(
            f"{stack.gateway_url}/v1/documents",
            json={
                "collection": COLLECTION,
                "documents": [
                    {
                        "id": "etna",
                        "text": "Mount Etna is an active stratovolcano on the east coast of Sicily.",
                    },
                    {"id": "bread", "text": "Sourdough bread is leavened by a starter of wild yeast."},
                ],
            },
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        first = httpx.post(  # fills the answer cache before sixteen users ask the same question at once
            f"{stack.gateway_url}/v1/rag/query",
            json={"collection": COLLECTION, "question": CACHED_QUESTION, "max_tokens": 4},
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=120,
        )
        assert first.status_code == 200, first.text
        yield stack


@pytest.mark.parametrize("path", list(PHASES))
def test_load_has_no_errors_and_no_service_grows_after_warm_up(loaded: Stack, path: str) -> None:
    env = {"RAG_API_KEY": API_KEY, "RAG_COLLECTION": COLLECTION, "RAG_MAX_TOKENS": "4"}
    users = PHASES[path]
    pids = {name: service.process.pid for name, service in loaded.services.items()}
    warm_up = start_locust(loaded.gateway_url, tag=path, users=users, seconds=WARM_UP_S[path], env=env)
    warm, before = collect_sampling_rss(*warm_up, timeout_s=WARM_UP_S[path] + 60, pids=pids)
    assert warm.failures == 0, warm.failure_messages

    measured, after = collect_sampling_rss(
        *start_locust(loaded.gateway_url, tag=path, users=users, seconds=MEASURED_S, env=env),
        timeout_s=MEASURED_S + 60,
        pids=pids,
    )

    assert measured.requests > 0
    assert measured.failures == 0, measured.failure_messages
    growth = {name: round(rss_growth_mb(before[name], after[name]), 1) for name in pids}
    assert max(growth.values()) <= MAX_GROWTH_MB, f"memory grew after warm-up (MB): {growth}"
