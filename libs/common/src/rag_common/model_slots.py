"""Zero-downtime model swaps: one slot per served model name, holding the version that serves it.

A request takes the slot's current version with `acquire()` and keeps it until it is done (a
stream until its last event), whatever happens to the slot meanwhile. `swap()` loads a new
version beside the current one, checks it, then replaces the current version in one reference
assignment: requests that arrive afterwards get the new version, those in flight finish on the
old one, which is closed once its last request has finished, or at the drain deadline (logged).
A load or check that fails leaves the old version serving and raises why; a second swap of the
same slot while one runs is refused with 409.

Every version is published as `rag_model_info{service, model, version} 1` while it serves and 0
while it drains; its series is removed once it is closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, StringConstraints

from rag_common import metrics
from rag_common.errors import Conflict, ServiceError, UnprocessableContent

logger = logging.getLogger(__name__)

M = TypeVar("M")
VersionState = Literal["serving", "loading", "draining"]
MODEL_VERSION_HEADER = "X-Model-Version"
MODEL_VERSION_ATTRIBUTE = "rag.model.version"
_DETAIL_LIMIT = 300

VersionLabel = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@+/-]*$")
]
"""A caller-given version label: it travels in the X-Model-Version header and as a metric label."""


def version_id(name: str, config: Mapping[str, Any], label: str | None = None) -> str:
    """`label` when the caller gives one, else `<name>@<8 hex of the config's sha256>`: the same
    configuration always gets the same id, across restarts and replicas."""
    if label:
        return label
    canonical = json.dumps(config, sort_keys=True, default=str)
    return f"{name}@{hashlib.sha256(canonical.encode()).hexdigest()[:8]}"


class ModelVersionInfo(BaseModel):
    version: str
    state: VersionState
    in_flight: int = Field(description="Requests using this version now.")


class ModelSlotInfo(BaseModel):
    name: str
    current: str = Field(description="The version new requests get.")
    versions: list[ModelVersionInfo]


class ModelSlotList(BaseModel):
    models: list[ModelSlotInfo]


class SwapInProgress(Conflict):
    type_slug = "model-swap-in-progress"

    def __init__(self, name: str, loading: str) -> None:
        super().__init__(
            f"Model '{name}' is already loading version '{loading}'; retry when that swap has finished.",
            extra={"model": name, "loading": loading},
        )


class VersionAlreadyServing(Conflict):
    type_slug = "model-version-serving"

    def __init__(self, name: str, version: str) -> None:
        super().__init__(
            f"Model '{name}' already serves version '{version}'; give the new version another label.",
            extra={"model": name, "version": version},
        )


class ModelLoadFailed(UnprocessableContent):
    """The new version could not be loaded or failed its check; the old one still serves."""

    type_slug = "model-load-failed"

    def __init__(self, name: str, version: str, stage: str, reason: str) -> None:
        super().__init__(
            f"Version '{version}' of model '{name}' failed to {stage}: {reason} "
            "The current version keeps serving.",
            extra={"model": name, "version": version, "stage": stage},
        )


class ModelCheckFailed(UnprocessableContent):
    """The new version loaded but is not fit to serve; the old one still serves."""

    type_slug = "model-check-failed"

    def __init__(self, name: str, version: str, reason: str) -> None:
        super().__init__(
            f"Version '{version}' of model '{name}' failed its check: {reason} The current version keeps serving.",
            extra={"model": name, "version": version, "stage": "check"},
        )


@dataclass(eq=False)
class ModelVersion(Generic[M]):
    """A loaded model and its version id; `owned` versions are closed by the slot when retired."""

    model: M
    version: str
    owned: bool = True
    in_flight: int = 0
    state: VersionState = "serving"
    closed: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event, repr=False)


class ModelSlot(Generic[M]):
    def __init__(
        self,
        *,
        service: str,
        name: str,
        first: ModelVersion[M],
        close: Callable[[M], Awaitable[None]],
        drain_timeout_s: float,
    ) -> None:
        self.service = service
        self.name = name
        self._current = first
        self._close = close
        self._drain_timeout_s = drain_timeout_s
        self._loading: str | None = None
        self._draining: dict[ModelVersion[M], asyncio.Task[None]] = {}
        self._publish(first)

    @property
    def current(self) -> ModelVersion[M]:
        return self._current

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[ModelVersion[M]]:
        """The current version, held until the block exits; a swap meanwhile does not touch it."""
        version = self._current
        version.in_flight += 1
        version.idle.clear()
        try:
            yield version
        finally:
            version.in_flight -= 1
            if version.in_flight == 0:
                version.idle.set()

    async def swap(
        self,
        version: str,
        *,
        load: Callable[[], Awaitable[M]],
        check: Callable[[M], Awaitable[None]],
    ) -> ModelVersion[M]:
        """Load and check `version`, then serve it; the old version drains in the background.

        `load` must keep the event loop free (run blocking work in a thread); `check` raises when
        the loaded model is not fit to serve. A `ServiceError` from either reaches the caller as it
        is; anything else becomes a 422 naming the stage and the exception.
        """
        if self._loading is not None:
            raise SwapInProgress(self.name, self._loading)
        if version == self._current.version:
            raise VersionAlreadyServing(self.name, version)
        self._loading = version
        try:
            model = await self._stage("load", version, load)
            await self._checked(version, model, check)
            new = ModelVersion(model=model, version=version)
            old, self._current = self._current, new
        finally:
            self._loading = None
        self._publish(new)
        self._retire(old)
        logger.info("model %s now serves %s; %s drains", self.name, version, old.version)
        return new

    def describe(self) -> ModelSlotInfo:
        versions = [self._current, *self._draining]
        infos = [ModelVersionInfo(version=v.version, state=v.state, in_flight=v.in_flight) for v in versions]
        if self._loading is not None:
            infos.append(ModelVersionInfo(version=self._loading, state="loading", in_flight=0))
        return ModelSlotInfo(name=self.name, current=self._current.version, versions=infos)

    async def aclose(self) -> None:
        """At shutdown: stop waiting for drains and close every version still held."""
        draining = list(self._draining)
        for task in self._draining.values():
            task.cancel()
        await asyncio.gather(*self._draining.values(), return_exceptions=True)
        for version in [*draining, self._current]:
            await self._unload(version)

    async def _stage(self, stage: str, version: str, run: Callable[[], Awaitable[M]]) -> M:
        try:
            return await run()
        except ServiceError:
            raise
        except Exception as exc:  # a model file can fail in any library's own way; report, keep serving
            logger.warning("loading %s of %s failed", version, self.name, exc_info=exc)
            raise ModelLoadFailed(self.name, version, stage, _reason(exc)) from exc

    async def _checked(self, version: str, model: M, check: Callable[[M], Awaitable[None]]) -> None:
        """Run the check; a model that fails it is closed before the error goes on."""
        try:
            try:
                await check(model)
            except ServiceError:
                raise
            except Exception as exc:  # as in _stage: the check runs the model itself
                logger.warning("checking %s of %s failed", version, self.name, exc_info=exc)
                raise ModelLoadFailed(self.name, version, "pass its check", _reason(exc)) from exc
        except BaseException:
            await self._close(model)
            raise

    def _retire(self, old: ModelVersion[M]) -> None:
        old.state = "draining"
        self._publish(old)
        task = asyncio.create_task(self._drain(old), name=f"drain-{old.version}")
        self._draining[old] = task

    async def _drain(self, old: ModelVersion[M]) -> None:
        try:
            if old.in_flight:
                await asyncio.wait_for(old.idle.wait(), self._drain_timeout_s)
        except TimeoutError:
            logger.warning(
                "closing %s of %s with %d requests still in flight after %.0f s",
                old.version,
                self.name,
                old.in_flight,
                self._drain_timeout_s,
            )
        await self._unload(old)
        self._draining.pop(old, None)

    async def _unload(self, version: ModelVersion[M]) -> None:
        if version.closed:
            return
        version.closed = True
        metrics.MODEL_INFO.remove(self.service, self.name, version.version)
        if version.owned:
            await self._close(version.model)
        logger.info("model %s version %s unloaded", self.name, version.version)

    def _publish(self, version: ModelVersion[M]) -> None:
        serving = 1 if version.state == "serving" else 0
        metrics.MODEL_INFO.labels(service=self.service, model=self.name, version=version.version).set(serving)


def _reason(exc: BaseException) -> str:
    """The exception's type and message, shortened: admin endpoints are internal, and the operator
    who asked for the swap needs to know why it failed (a missing file, a bad format)."""
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"
