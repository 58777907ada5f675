"""Model slots: atomic swaps, in-flight requests finishing on their version, failed swaps changing nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import REGISTRY

from rag_common.errors import UnprocessableContent
from rag_common.model_slots import (
    ModelLoadFailed,
    ModelSlot,
    ModelVersion,
    SwapInProgress,
    VersionAlreadyServing,
    version_id,
)


class Model:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.closed = asyncio.Event()


async def close(model: Model) -> None:
    model.closed.set()


async def passes(_: Model) -> None:
    """A check every model passes."""


def slot_with(first: Model, *, name: str = "m", drain_timeout_s: float = 30.0) -> ModelSlot[Model]:
    return ModelSlot(
        service="test",
        name=name,
        first=ModelVersion(model=first, version="v1"),
        close=close,
        drain_timeout_s=drain_timeout_s,
    )


def loader(model: Model) -> Callable[[], Awaitable[Model]]:
    async def load() -> Model:
        return model

    return load


def info(name: str, version: str) -> float | None:
    return REGISTRY.get_sample_value("rag_model_info", {"service": "test", "model": name, "version": version})


def test_a_version_id_is_the_label_or_a_stable_hash_of_the_config() -> None:
    config = {"backend": "onnx", "path": "/m.onnx"}
    assert version_id("m", config, "v7") == "v7"
    assert version_id("m", config) == version_id("m", dict(reversed(config.items())))
    assert version_id("m", config).startswith("m@")
    assert version_id("m", config) != version_id("m", config | {"path": "/n.onnx"})


async def test_a_request_in_flight_finishes_on_the_old_version_which_closes_after_it() -> None:
    old, new = Model("old"), Model("new")
    slot = slot_with(old, name="drain")
    async with slot.acquire() as held:
        await slot.swap("v2", load=loader(new), check=passes)
        async with slot.acquire() as later:
            assert later.model is new
        assert held.model is old
        assert not old.closed.is_set()
        assert [v.state for v in slot.describe().versions] == ["serving", "draining"]
        assert info("drain", "v1") == 0
    await asyncio.wait_for(old.closed.wait(), 5)
    assert slot.describe().current == "v2"
    assert [v.version for v in slot.describe().versions] == ["v2"]
    assert info("drain", "v1") is None
    assert info("drain", "v2") == 1


async def test_a_failed_load_leaves_the_old_version_serving() -> None:
    old = Model("old")
    slot = slot_with(old)

    async def broken() -> Model:
        raise FileNotFoundError("no such file: /models/x.gguf")

    with pytest.raises(ModelLoadFailed) as failed:
        await slot.swap("v2", load=broken, check=passes)
    assert "FileNotFoundError: no such file: /models/x.gguf" in failed.value.detail
    assert failed.value.extra["stage"] == "load"
    assert slot.current.model is old
    assert not old.closed.is_set()


async def test_a_model_failing_its_check_is_closed_and_never_serves() -> None:
    old, bad = Model("old"), Model("bad")
    slot = slot_with(old)

    async def refuses(_: Model) -> None:
        raise UnprocessableContent("the probe gave an empty answer")

    with pytest.raises(UnprocessableContent, match="empty answer"):
        await slot.swap("v2", load=loader(bad), check=refuses)
    assert slot.current.model is old
    assert bad.closed.is_set()
    assert [v.state for v in slot.describe().versions] == ["serving"]


async def test_a_second_swap_while_one_loads_is_a_conflict() -> None:
    slot = slot_with(Model("old"))
    release = asyncio.Event()

    async def slow() -> Model:
        await release.wait()
        return Model("new")

    first = asyncio.create_task(slot.swap("v2", load=slow, check=passes))
    await asyncio.sleep(0)
    assert [v.state for v in slot.describe().versions] == ["serving", "loading"]
    with pytest.raises(SwapInProgress):
        await slot.swap("v3", load=loader(Model("other")), check=passes)
    release.set()
    assert (await first).version == "v2"
    with pytest.raises(VersionAlreadyServing):
        await slot.swap("v2", load=loader(Model("again")), check=passes)


async def test_a_stuck_request_does_not_keep_the_old_version_past_the_drain_deadline() -> None:
    old = Model("old")
    slot = slot_with(old, drain_timeout_s=0.05)
    async with slot.acquire():
        await slot.swap("v2", load=loader(Model("new")), check=passes)
        await asyncio.wait_for(old.closed.wait(), 5)


async def test_closing_the_slot_closes_draining_and_current_versions_but_not_borrowed_ones() -> None:
    borrowed, new = Model("borrowed"), Model("new")
    slot = ModelSlot(
        service="test",
        name="m",
        first=ModelVersion(model=borrowed, version="v1", owned=False),
        close=close,
        drain_timeout_s=30.0,
    )
    async with slot.acquire():
        await slot.swap("v2", load=loader(new), check=passes)
        await slot.aclose()
    assert new.closed.is_set()
    assert not borrowed.closed.is_set()
