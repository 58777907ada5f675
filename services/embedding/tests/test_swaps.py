"""Zero-downtime model swaps: load beside, check, switch; requests in flight finish on the old version."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY
from pydantic import SecretStr

from rag_embedding.main import build_embedder, create_app
from rag_embedding.ports import Embedder
from rag_embedding.settings import EmbeddingBackendConfig, Settings

from .fakes import CountingEmbedder

NAME = "counting"
VERSION = "X-Model-Version"
ONNX = {"backend": "onnx"}


class HeldEmbedder(CountingEmbedder):
    """Holds every model call until `release` is set: a long request in flight."""

    def __init__(self, model_name: str = NAME) -> None:
        super().__init__(model_name)
        self.started = threading.Event()
        self.release = threading.Event()

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.started.set()
        self.release.wait(30)
        return super().embed(texts)


class WideEmbedder(CountingEmbedder):
    """Three dimensions instead of two: vectors no existing collection can hold."""

    dimension = 3

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [[*vector, 0.0] for vector in super().embed(texts)]


def builds(embedder: Embedder) -> Callable[[EmbeddingBackendConfig, Settings], Embedder]:
    def factory(config: EmbeddingBackendConfig, settings: Settings) -> Embedder:
        return embedder

    return factory


@asynccontextmanager
async def serve(
    embedder: Embedder | None = None,
    factory: Callable[[EmbeddingBackendConfig, Settings], Embedder] = build_embedder,
    **settings: object,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(environment="test", **settings), embedder, factory=factory)  # type: ignore[arg-type]
    async with LifespanManager(app, startup_timeout=120) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedding") as client:
            yield client


def load(label: str | None, config: dict[str, object], **options: object) -> dict[str, object]:
    return {"version": label, "config": config, "warm_up": False} | options


async def versions(client: httpx.AsyncClient) -> dict[str, tuple[str, int]]:
    (model,) = (await client.get("/v1/admin/models")).json()["models"]
    return {v["version"]: (v["state"], v["in_flight"]) for v in model["versions"]}


async def until(condition: Callable[[], object], *, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


def model_info(model: str, version: str) -> float | None:
    labels = {"service": "embedding", "model": model, "version": version}
    return REGISTRY.get_sample_value("rag_model_info", labels)


async def test_a_request_in_flight_finishes_on_the_old_version_and_the_new_one_serves_after() -> None:
    old, new = HeldEmbedder(), CountingEmbedder(NAME, scale=2.0)
    async with serve(old, builds(new)) as client:
        old_version = (await client.get("/v1/admin/models")).json()["models"][0]["current"]
        slow = asyncio.create_task(client.post("/v1/embeddings", json={"input": "before"}))
        await until(old.started.is_set)

        swapped = await client.post(f"/v1/admin/models/{NAME}/load", json=load("v2", ONNX))
        after = await client.post("/v1/embeddings", json={"input": "after"})
        during = await versions(client)
        old.release.set()
        finished = await slow
        await until(lambda: model_info(NAME, old_version) is None)
        drained = await versions(client)

    assert swapped.status_code == 200, swapped.text
    assert after.headers[VERSION] == after.json()["model_version"] == "v2"
    assert after.json()["model"] == NAME
    assert after.json()["data"][0]["embedding"] == [5.0, 2.0]
    assert during == {"v2": ("serving", 0), old_version: ("draining", 1)}
    assert finished.headers[VERSION] == finished.json()["model_version"] == old_version
    assert finished.json()["data"][0]["embedding"] == [6.0, 1.0]
    assert drained == {"v2": ("serving", 0)}
    assert old.embedded == ["before"], "the old model saw only what arrived before the swap"


async def test_requests_are_served_while_a_slow_load_runs() -> None:
    loading, finish = threading.Event(), threading.Event()

    def slow(config: EmbeddingBackendConfig, settings: Settings) -> Embedder:
        loading.set()
        finish.wait(30)  # blocks its worker thread the way loading weights does
        return CountingEmbedder(NAME, scale=2.0)

    async with serve(CountingEmbedder(NAME), slow) as client:
        swap = asyncio.create_task(client.post(f"/v1/admin/models/{NAME}/load", json=load("v2", ONNX)))
        await asyncio.wait_for(asyncio.to_thread(loading.wait, 10), 15)
        during = [await client.post("/v1/embeddings", json={"input": "x"}) for _ in range(3)]
        listed = await versions(client)
        second = await client.post(f"/v1/admin/models/{NAME}/load", json=load("v3", ONNX))
        finish.set()
        assert (await swap).status_code == 200

    assert [r.json()["data"][0]["embedding"] for r in during] == [[1.0, 1.0]] * 3
    assert listed["v2"] == ("loading", 0)
    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["type"].endswith("/model-swap-in-progress")


async def test_a_failed_load_is_a_422_and_the_old_version_keeps_serving() -> None:
    async with serve(CountingEmbedder(NAME)) as client:
        before = await client.post("/v1/embeddings", json={"input": "x"})
        failed = await client.post(
            f"/v1/admin/models/{NAME}/load",
            json=load(None, {"backend": "onnx", "onnx_path": "/nowhere/m.onnx"}),
        )
        after = await client.post("/v1/embeddings", json={"input": "x"})
        listed = await versions(client)

    assert failed.status_code == 422
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["type"].endswith("/model-load-failed")
    assert "/nowhere/m.onnx" in failed.json()["detail"]
    assert after.status_code == 200
    assert after.headers[VERSION] == before.headers[VERSION]
    assert list(listed.values()) == [("serving", 0)]


async def test_a_model_of_another_dimension_needs_allow_dimension_change() -> None:
    async with serve(CountingEmbedder(NAME), builds(WideEmbedder(NAME))) as client:
        refused = await client.post(f"/v1/admin/models/{NAME}/load", json=load("wide", ONNX))
        still = await client.post("/v1/embeddings", json={"input": "x"})
        allowed = await client.post(
            f"/v1/admin/models/{NAME}/load", json=load("wide", ONNX, allow_dimension_change=True)
        )
        after = await client.post("/v1/embeddings", json={"input": "x"})

    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/model-check-failed")
    assert "3 dimensions" in refused.json()["detail"]
    assert len(still.json()["data"][0]["embedding"]) == 2
    assert allowed.status_code == 200, allowed.text
    assert after.headers[VERSION] == "wide"
    assert len(after.json()["data"][0]["embedding"]) == 3


async def test_only_the_served_model_can_be_swapped() -> None:
    async with serve(CountingEmbedder(NAME)) as client:
        response = await client.post("/v1/admin/models/other/load", json=load("v2", ONNX))
    assert response.status_code == 404


async def test_admin_endpoints_refuse_without_the_internal_token() -> None:
    async with serve(CountingEmbedder(NAME), internal_token=SecretStr("s3cret")) as client:
        listed = await client.get("/v1/admin/models")
        swap = await client.post(f"/v1/admin/models/{NAME}/load", json=load("v2", ONNX))
        allowed = await client.get("/v1/admin/models", headers={"X-Internal-Token": "s3cret"})
    assert listed.status_code == swap.status_code == 401
    assert swap.headers["content-type"] == "application/problem+json"
    assert allowed.status_code == 200


async def test_a_real_swap_from_torch_to_onnx_keeps_the_name_and_changes_the_version() -> None:
    texts = ["The cat sleeps on the sofa.", "Interest rates rose in May."]
    async with serve(model_name="all-MiniLM-L6-v2", backend="torch") as client:
        before = await client.post("/v1/embeddings", json={"input": texts})
        swapped = await client.post(
            "/v1/admin/models/all-MiniLM-L6-v2/load", json=load("minilm-onnx-int8", ONNX, warm_up=True)
        )
        after = await client.post("/v1/embeddings", json={"input": texts})
        await until(lambda: model_info("all-MiniLM-L6-v2", before.headers[VERSION]) is None)

    assert swapped.status_code == 200, swapped.text
    assert before.headers[VERSION].startswith("all-MiniLM-L6-v2@")
    assert after.headers[VERSION] == "minilm-onnx-int8"
    assert after.json()["model"] == before.json()["model"] == "all-MiniLM-L6-v2"
    assert model_info("all-MiniLM-L6-v2", "minilm-onnx-int8") is None, "unloaded at shutdown"
    for old, new in zip(before.json()["data"], after.json()["data"], strict=True):
        assert len(new["embedding"]) == 384
        assert sum(a * b for a, b in zip(old["embedding"], new["embedding"], strict=True)) > 0.99
