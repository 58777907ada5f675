"""Several named backends: choice by model name, retries, fallback and the circuit breaker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rag_llm.main import create_app
from rag_llm.settings import ModelSpec, Settings

from .harness import MODEL, serve
from .processes import free_port

REMOTE = "gpt-4o-mini"
QUESTION = {"messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 4}


class HangUpServer:
    """Accepts TCP connections and closes them at once, counting them: a backend that is down.

    With `silent`, it keeps each connection open and never answers: a backend that hangs.
    """

    def __init__(self, *, silent: bool = False) -> None:
        self.connections = 0
        self._silent = silent
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._hang_up, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def _hang_up(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._silent:
            while await reader.read(4096):  # until the client gives up and closes
                pass
        writer.close()
        await writer.wait_closed()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def hang_up() -> AsyncIterator[HangUpServer]:
    server = HangUpServer()
    yield server
    await server.stop()


def settings_with(remote_url: str, *, remote_timeout_s: float = 5.0, **overrides: Any) -> Settings:
    """A local SmolLM2 (the default) and a remote OpenAI-compatible model at `remote_url`."""
    models = [
        ModelSpec(name=MODEL, backend="llamacpp", context_window=1024),
        ModelSpec(
            name=REMOTE,
            backend="openai",
            base_url=remote_url,
            model="gpt-4o-mini",
            timeout_s=remote_timeout_s,
        ),
    ]
    fields: dict[str, Any] = {
        "environment": "test",
        "models": models,
        "fallbacks": {REMOTE: [MODEL]},
        "n_threads": 1,
        "default_temperature": 0.0,
        "retry_backoff_s": 0.01,
    }
    return Settings(**(fields | overrides))


@pytest.fixture
async def refused_client() -> AsyncIterator[httpx.AsyncClient]:
    """The remote model's port is closed: every connection is refused."""
    async with serve(create_app(settings_with(f"http://127.0.0.1:{free_port()}/v1"))) as client:
        yield client


async def test_both_models_are_listed_and_the_first_is_the_default(refused_client: httpx.AsyncClient) -> None:
    listed = (await refused_client.get("/v1/models")).json()
    response = await refused_client.post("/v1/chat/completions", json=QUESTION)

    assert [m["id"] for m in listed["data"]] == [MODEL, REMOTE]
    assert response.status_code == 200
    assert response.json()["model"] == MODEL
    assert "x-model-fallback" not in response.headers
    assert "fallback_from" not in response.json()


async def test_a_refused_connection_falls_back_to_the_local_model(refused_client: httpx.AsyncClient) -> None:
    response = await refused_client.post("/v1/chat/completions", json=QUESTION | {"model": REMOTE})

    assert response.status_code == 200
    assert response.json()["model"] == MODEL, "the answer names the model that actually answered"
    assert response.headers["x-model-fallback"] == f"{REMOTE}->{MODEL}"
    assert response.json()["fallback_from"] == REMOTE, "the body says so too, for callers that cache"
    assert response.json()["choices"][0]["message"]["content"]


async def test_a_stream_falls_back_before_its_first_token(refused_client: httpx.AsyncClient) -> None:
    body = QUESTION | {"model": REMOTE, "stream": True}
    response = await refused_client.post("/v1/chat/completions", json=body)

    assert response.status_code == 200
    assert response.headers["x-model-fallback"] == f"{REMOTE}->{MODEL}"
    assert f'"model":"{MODEL}"' in response.text
    assert f'"fallback_from":"{REMOTE}"' in response.text.split("\n\n")[0], "the first chunk names it"
    assert response.text.endswith("data: [DONE]\n\n")


async def test_the_grounded_endpoint_falls_back_too(refused_client: httpx.AsyncClient) -> None:
    body = {"question": "Sky?", "contexts": [{"index": 1, "text": "The sky is green."}], "model": REMOTE}
    response = await refused_client.post("/v1/grounded/completions", json=body | {"max_tokens": 4})

    assert response.status_code == 200
    assert response.headers["x-model-fallback"] == f"{REMOTE}->{MODEL}"
    assert response.json()["prompt_version"] == "rag_v1"


@pytest.mark.parametrize("stream", [False, True])
async def test_retries_then_an_open_breaker_skips_the_dead_backend(
    hang_up: HangUpServer, stream: bool
) -> None:
    settings = settings_with(await hang_up.start(), upstream_retries=2, breaker_failures=3)
    body = QUESTION | {"model": REMOTE, "stream": stream}
    async with serve(create_app(settings)) as client:
        first = await client.post("/v1/chat/completions", json=body)
        tried = hang_up.connections
        second = await client.post("/v1/chat/completions", json=body)

    assert tried == 3, "one call and two retries"
    assert hang_up.connections == tried, "with the breaker open the dead backend is not even tried"
    for response in (first, second):
        assert response.status_code == 200
        assert response.headers["x-model-fallback"] == f"{REMOTE}->{MODEL}"


async def test_a_backend_that_does_not_answer_within_its_timeout_falls_back() -> None:
    silent = HangUpServer(silent=True)
    settings = settings_with(await silent.start(), remote_timeout_s=0.3, upstream_retries=0)
    try:
        async with serve(create_app(settings)) as client:
            response = await asyncio.wait_for(
                client.post("/v1/chat/completions", json=QUESTION | {"model": REMOTE}), 20
            )
    finally:
        await silent.stop()

    assert silent.connections == 1
    assert response.status_code == 200
    assert response.headers["x-model-fallback"] == f"{REMOTE}->{MODEL}"


async def test_without_a_fallback_an_open_breaker_answers_503_at_once(hang_up: HangUpServer) -> None:
    settings = settings_with(await hang_up.start(), upstream_retries=0, breaker_failures=1, fallbacks={})
    async with serve(create_app(settings)) as client:
        first = await client.post("/v1/chat/completions", json=QUESTION | {"model": REMOTE})
        second = await client.post("/v1/chat/completions", json=QUESTION | {"model": REMOTE, "stream": True})

    assert hang_up.connections == 1
    assert [first.status_code, second.status_code] == [503, 503]
    assert first.json()["type"].endswith("/upstream-unavailable")
    assert second.json()["type"].endswith("/circuit-open")
    assert second.json()["service"] == "llm-backend"
    assert second.headers["retry-after"]


def test_fallbacks_must_name_served_models() -> None:
    with pytest.raises(ValueError, match="not served"):
        Settings(fallbacks={"gpt-4o-mini": [MODEL]})


def test_models_come_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_MODELS", f'[{{"name": "{MODEL}"}}, {{"name": "b", "backend": "openai"}}]')
    monkeypatch.setenv("LLM_FALLBACKS", f'{{"b": ["{MODEL}"]}}')

    settings = Settings()

    assert [(s.name, s.backend, s.local) for s in settings.model_specs()] == [
        (MODEL, "llamacpp", True),
        ("b", "openai", False),
    ]
    assert settings.fallbacks == {"b": [MODEL]}
