"""Zero-downtime model swaps: load beside, check, switch; in-flight requests finish on the old version."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncGenerator, Callable, Sequence

from prometheus_client import REGISTRY
from pydantic import SecretStr

from rag_common.contracts import ChatMessage
from rag_llm.backends import build_backend
from rag_llm.backends.llamacpp import LlamaCppBackend
from rag_llm.main import create_app
from rag_llm.ports import ChatBackend, SamplingParams, StreamEvent
from rag_llm.settings import ModelSpec, Settings

from .fakes import ScriptedBackend
from .harness import MODEL, serve

BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
VERSION = "X-Model-Version"


class HeldBackend(ScriptedBackend):
    """Streams its first piece, then waits for `release` before the rest: a long generation."""

    def __init__(self, name: str, pieces: Sequence[str] = ("old ", "answer")) -> None:
        super().__init__(pieces)
        self.model_name = name
        self.streaming = asyncio.Event()
        self.release = asyncio.Event()
        self.closed = asyncio.Event()

    async def stream(
        self, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> AsyncGenerator[StreamEvent, None]:
        events = super().stream(messages, params)
        yield await anext(events)
        self.streaming.set()
        await self.release.wait()
        async for event in events:
            yield event

    async def aclose(self) -> None:
        self.closed.set()


def builds(backend: ChatBackend) -> Callable[[ModelSpec, Settings], ChatBackend]:
    def factory(spec: ModelSpec, settings: Settings) -> ChatBackend:
        return backend

    return factory


def new_version(label: str, **config: object) -> dict[str, object]:
    return {"version": label, "config": {"backend": "llamacpp"} | config, "warm_up": False}


def model_info(version: str) -> float | None:
    return REGISTRY.get_sample_value("rag_model_info", {"service": "llm", "model": MODEL, "version": version})


async def test_a_stream_started_before_a_swap_finishes_on_the_old_version(settings: Settings) -> None:
    old = HeldBackend(MODEL)
    new = HeldBackend(MODEL, pieces=["new"])
    new.release.set()
    async with serve(create_app(settings, backend=old, factory=builds(new))) as client:
        old_version = (await client.get("/v1/admin/models")).json()["models"][0]["current"]
        stream = asyncio.create_task(client.post("/v1/chat/completions", json=BODY | {"stream": True}))
        await asyncio.wait_for(old.streaming.wait(), 10)

        swapped = await client.post(f"/v1/admin/models/{MODEL}/load", json=new_version("v2"))
        after = await client.post("/v1/chat/completions", json=BODY)
        listed = (await client.get("/v1/admin/models")).json()["models"][0]
        old.release.set()
        streamed = await stream

    assert swapped.status_code == 200, swapped.text
    assert swapped.json()["current"] == "v2"
    assert after.headers[VERSION] == "v2"
    assert after.json()["model"] == MODEL
    assert after.json()["model_version"] == "v2"
    assert after.json()["choices"][0]["message"]["content"] == "new"
    assert {v["version"]: (v["state"], v["in_flight"]) for v in listed["versions"]} == {
        "v2": ("serving", 0),
        old_version: ("draining", 1),
    }
    assert streamed.headers[VERSION] == old_version
    chunks = [json.loads(line.removeprefix("data: ")) for line in streamed.text.split("\n\n")[:-2]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "old answer"
    assert {c["model_version"] for c in chunks} == {old_version}
    assert streamed.text.endswith("data: [DONE]\n\n")
    assert not old.closed.is_set(), "a backend the caller gave is theirs to close"
    assert new.closed.is_set(), "the version the service loaded is closed at shutdown"


async def test_the_old_backend_is_closed_once_its_last_stream_ends(settings: Settings) -> None:
    built: list[HeldBackend] = []

    def factory(spec: ModelSpec, settings: Settings) -> ChatBackend:
        built.append(HeldBackend(spec.name))
        return built[-1]

    one = settings.model_copy(update={"models": [ModelSpec(name=MODEL)]})
    async with serve(create_app(one, factory=factory)) as client:
        first = built[0]
        stream = asyncio.create_task(client.post("/v1/chat/completions", json=BODY | {"stream": True}))
        await asyncio.wait_for(first.streaming.wait(), 10)
        swapped = await client.post(f"/v1/admin/models/{MODEL}/load", json=new_version("v2"))
        assert swapped.status_code == 200, swapped.text
        assert model_info("v2") == 1
        assert not first.closed.is_set(), "a stream still runs on it"
        first.release.set()
        assert (await stream).status_code == 200
        await asyncio.wait_for(first.closed.wait(), 10)
        assert [
            v["version"] for v in (await client.get("/v1/admin/models")).json()["models"][0]["versions"]
        ] == ["v2"]


async def test_requests_are_served_while_a_slow_load_runs(settings: Settings) -> None:
    loading, finish = threading.Event(), threading.Event()

    def slow(spec: ModelSpec, settings: Settings) -> ChatBackend:
        loading.set()
        finish.wait(30)  # blocks its worker thread the way loading weights does
        return ScriptedBackend(["new"])

    old = ScriptedBackend(["old"])
    async with serve(create_app(settings, backend=old, factory=slow)) as client:
        swap = asyncio.create_task(client.post("/v1/admin/models/scripted/load", json=new_version("v2")))
        await asyncio.wait_for(asyncio.to_thread(loading.wait, 10), 15)
        during = [await client.post("/v1/chat/completions", json=BODY) for _ in range(3)]
        listed = (await client.get("/v1/admin/models")).json()["models"][0]
        finish.set()
        assert (await swap).status_code == 200
        after = await client.post("/v1/chat/completions", json=BODY)

    assert [r.json()["choices"][0]["message"]["content"] for r in during] == ["old"] * 3
    assert {r.headers[VERSION] for r in during} == {listed["current"]}
    assert ("v2", "loading") in {(v["version"], v["state"]) for v in listed["versions"]}
    assert after.headers[VERSION] == "v2"


async def test_a_second_swap_of_the_same_model_while_one_loads_is_409(settings: Settings) -> None:
    loading, finish = threading.Event(), threading.Event()

    def slow(spec: ModelSpec, settings: Settings) -> ChatBackend:
        loading.set()
        finish.wait(30)
        return ScriptedBackend(["new"])

    async with serve(create_app(settings, backend=ScriptedBackend(["old"]), factory=slow)) as client:
        first = asyncio.create_task(client.post("/v1/admin/models/scripted/load", json=new_version("v2")))
        await asyncio.wait_for(asyncio.to_thread(loading.wait, 10), 15)
        second = await client.post("/v1/admin/models/scripted/load", json=new_version("v3"))
        finish.set()
        assert (await first).status_code == 200
        again = await client.post("/v1/admin/models/scripted/load", json=new_version("v2"))

    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["type"].endswith("/model-swap-in-progress")
    assert again.status_code == 409, "a version that already serves is not loaded twice"


async def test_a_failed_load_is_a_422_and_the_old_version_keeps_serving(
    settings: Settings, llama_backend: LlamaCppBackend
) -> None:
    async with serve(create_app(settings, backend=llama_backend)) as client:
        before = await client.post("/v1/chat/completions", json=BODY)
        failed = await client.post(
            f"/v1/admin/models/{MODEL}/load", json=new_version("v2", model_path="/nowhere/model.gguf")
        )
        after = await client.post("/v1/chat/completions", json=BODY)
        listed = (await client.get("/v1/admin/models")).json()["models"][0]

    assert failed.status_code == 422
    assert failed.headers["content-type"] == "application/problem+json"
    problem = failed.json()
    assert problem["type"].endswith("/model-load-failed")
    assert problem["stage"] == "load"
    assert "/nowhere/model.gguf" in problem["detail"]
    assert after.status_code == 200
    assert after.headers[VERSION] == before.headers[VERSION] == listed["current"]
    assert [v["state"] for v in listed["versions"]] == ["serving"]


async def test_a_model_that_fails_its_check_never_serves_and_is_closed(settings: Settings) -> None:
    silent = HeldBackend("scripted", pieces=[])
    async with serve(
        create_app(settings, backend=ScriptedBackend(["old"]), factory=builds(silent))
    ) as client:
        failed = await client.post("/v1/admin/models/scripted/load", json=new_version("v2"))
        after = await client.post("/v1/chat/completions", json=BODY)

    assert failed.status_code == 422
    assert failed.json()["type"].endswith("/model-check-failed")
    assert "no text" in failed.json()["detail"]
    assert silent.closed.is_set()
    assert after.json()["choices"][0]["message"]["content"] == "old"


async def test_an_unknown_model_cannot_be_swapped(settings: Settings) -> None:
    async with serve(create_app(settings, backend=ScriptedBackend(["old"]))) as client:
        response = await client.post("/v1/admin/models/nope/load", json=new_version("v2"))
    assert response.status_code == 404
    assert response.json()["type"].endswith("/model-not-found")


async def test_admin_endpoints_refuse_without_the_internal_token(settings: Settings) -> None:
    guarded = settings.model_copy(update={"internal_token": SecretStr("s3cret")})
    async with serve(create_app(guarded, backend=ScriptedBackend(["old"]))) as client:
        listed = await client.get("/v1/admin/models")
        load = await client.post("/v1/admin/models/scripted/load", json=new_version("v2"))
        allowed = await client.get("/v1/admin/models", headers={"X-Internal-Token": "s3cret"})

    assert listed.status_code == load.status_code == 401
    assert listed.headers["content-type"] == "application/problem+json"
    assert allowed.status_code == 200


async def test_a_real_model_swap_serves_the_new_version_and_unloads_the_old(settings: Settings) -> None:
    built: list[ChatBackend] = []

    def factory(spec: ModelSpec, settings: Settings) -> ChatBackend:
        built.append(build_backend(spec, settings))
        return built[-1]

    spec = ModelSpec(name=MODEL, backend="llamacpp", context_window=1024)
    one = settings.model_copy(update={"models": [spec], "n_threads": 1})
    async with serve(create_app(one, factory=factory)) as client:
        before = await client.post("/v1/chat/completions", json=BODY)
        swap = {"config": {"backend": "llamacpp", "context_window": 512}, "warm_up": True}
        swapped = await client.post(f"/v1/admin/models/{MODEL}/load", json=swap)
        after = await client.post("/v1/chat/completions", json=BODY | {"stream": True})
        old = built[0]
        assert isinstance(old, LlamaCppBackend)
        await until_closed(old)

    assert swapped.status_code == 200, swapped.text
    new_id = swapped.json()["current"]
    assert new_id.startswith(f"{MODEL}@")
    assert new_id != before.headers[VERSION]
    assert after.headers[VERSION] == new_id
    assert f'"model_version":"{new_id}"' in after.text
    assert model_info(before.headers[VERSION]) is None
    assert model_info(new_id) is None, "unloaded at shutdown too"


async def until_closed(backend: LlamaCppBackend) -> None:
    async with asyncio.timeout(10):
        while backend._llama._model.model is not None:
            await asyncio.sleep(0.01)


async def test_a_version_label_must_be_safe_in_a_header(settings: Settings) -> None:
    async with serve(create_app(settings, backend=ScriptedBackend(["old"]))) as client:
        response = await client.post("/v1/admin/models/scripted/load", json=new_version("v2\r\nX-Evil: 1"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("version:")
