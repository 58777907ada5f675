"""SIGTERM during a chat stream: the llm service stops listening, the stream still completes, the process exits 0.

Only the llm service runs (a real `python -m rag_common.serve` process, as devstack starts it); the
whole stack is not needed to show that a stream survives the drain.
"""

from __future__ import annotations

import json
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rag_common.middleware import INTERNAL_TOKEN_HEADER
from rag_devstack.processes import ServiceProcess, free_port, start_service, wait_ready
from rag_devstack.topology import INTERNAL_TOKEN_ENV, SERVICES, new_internal_token, service_env

pytestmark = pytest.mark.e2e

READY_TIMEOUT_S = 300.0
MAX_TOKENS = 400


@dataclass
class Llm:
    service: ServiceProcess
    internal_token: str


@pytest.fixture
def llm() -> Iterator[Llm]:
    run_dir = Path(tempfile.mkdtemp(prefix="rag-e2e-drain-"))
    port = free_port()
    wiring = service_env(
        {spec.name: port for spec in SERVICES},
        host="127.0.0.1",
        data_dir=run_dir / "data",
        redis_url="redis://127.0.0.1:1/0",
        api_key="unused",
        internal_token=new_internal_token(),
    )["llm"]
    env = wiring | {
        "HF_HUB_OFFLINE": "1",
        "LLM_DEFAULT_MAX_TOKENS": str(MAX_TOKENS),
        "LLM_DRAIN_DELAY_S": "0",
        "LLM_DRAIN_TIMEOUT_S": "120",
    }
    factory = next(spec.factory for spec in SERVICES if spec.name == "llm")
    service = start_service(
        "llm", factory, host="127.0.0.1", port=port, env=env, log_path=run_dir / "logs" / "llm.log"
    )
    try:
        wait_ready(service, READY_TIMEOUT_S)
        yield Llm(service, wiring[INTERNAL_TOKEN_ENV])
    finally:
        if service.process.poll() is None:
            service.stop()


def refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.ConnectError:
        return True
    return False


def wait_until_refused(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not refused(url):
        assert time.monotonic() < deadline, f"{url} still accepted connections after {timeout_s} s"
        time.sleep(0.05)


def test_sigterm_mid_stream_lets_the_chat_stream_finish_then_exits_cleanly(llm: Llm) -> None:
    body = {
        "messages": [{"role": "user", "content": "Count from 1 to 300, separated by commas."}],
        "temperature": 0,
        "stream": True,
    }
    service, headers = llm.service, {INTERNAL_TOKEN_HEADER: llm.internal_token}
    events: list[str] = []
    after_sigterm = 0
    with (
        httpx.Client(base_url=service.url, timeout=120, headers=headers) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            events.append(line.removeprefix("data: "))
            if len(events) == 1:
                service.process.send_signal(signal.SIGTERM)
                wait_until_refused(f"{service.url}/healthz", timeout_s=10)
            else:
                after_sigterm += 1

    assert events[-1] == "[DONE]", f"the stream was cut:\n{service.log_tail()}"
    last_chunk = json.loads(events[-2])
    assert last_chunk["choices"][0]["finish_reason"] in {"stop", "length"}
    assert after_sigterm > 2, "the stream ended before the shutdown began; the test proves nothing"
    assert service.process.wait(timeout=30) == 0, service.log_tail()
