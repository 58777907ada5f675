"""Zero-downtime model swaps: load a new version of a served model, warm and check it, then serve it.

The new backend is built in a worker thread (loading weights blocks for seconds) while the old
version keeps answering. Warm-up streams a short generation; the check then asks for a few tokens
of a fixed prompt and needs a non-empty answer that finished. Only then does the model's slot
switch (see `rag_common.model_slots`): requests in flight finish on the old version, which is
closed after them.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from rag_common.contracts import ChatMessage
from rag_common.model_slots import ModelCheckFailed, ModelSlotInfo, VersionLabel, version_id

from .backends import BackendFactory
from .ports import ChatBackend, SamplingParams
from .routing import ModelRouter
from .settings import BackendConfig, ModelSpec, Settings

PROBE = [ChatMessage(role="user", content="Say hello.")]
PROBE_PARAMS = SamplingParams(max_tokens=4, temperature=0.0, seed=0)
FINISHED = frozenset({"stop", "length"})


class LoadModelRequest(BaseModel):
    version: VersionLabel | None = Field(
        default=None,
        description="A label for the new version; default: `<name>@<hash of config>`.",
    )
    config: BackendConfig = Field(description="How to run the new version: an LLM_MODELS entry without name.")
    warm_up: bool = Field(default=True, description="Stream a short generation before the check.")


async def load_version(
    name: str, request: LoadModelRequest, *, router: ModelRouter, settings: Settings, factory: BackendFactory
) -> ModelSlotInfo:
    slot = router.entry(name).slot
    spec = ModelSpec.model_validate(request.config.model_dump() | {"name": name})
    version = version_id(name, spec.fingerprint(), request.version)

    async def load() -> ChatBackend:
        return await asyncio.to_thread(factory, spec, settings)

    async def check(backend: ChatBackend) -> None:
        if request.warm_up:
            await _warm_up(backend)
        await _check(backend, name=name, version=version)

    await slot.swap(version, load=load, check=check)
    return slot.describe()


async def _warm_up(backend: ChatBackend) -> None:
    """The streaming path once, so the first streamed request does not pay for first-use setup."""
    async for _ in backend.stream(PROBE, PROBE_PARAMS):
        pass


async def _check(backend: ChatBackend, *, name: str, version: str) -> None:
    completion = await backend.complete(PROBE, PROBE_PARAMS)
    if not completion.text.strip():
        raise ModelCheckFailed(name, version, "it answered a fixed prompt with no text.")
    if completion.finish_reason not in FINISHED:
        raise ModelCheckFailed(name, version, f"its generation ended with '{completion.finish_reason}'.")
