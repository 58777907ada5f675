"""The safety service with a deadline per call (`ORCHESTRATOR_SAFETY_TIMEOUT_S`).

The deadline sits on the adapter, not on the workflow's stage, so that a late safety service fails
the way an unreachable one does: inside `guard`, where the fail-open policy decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from rag_common.contracts import Grounding, SafetyVerdict
from rag_common.errors import UpstreamUnavailable

from ..ports import SafetyChecker

T = TypeVar("T")


class DeadlineSafety:
    def __init__(self, inner: SafetyChecker, *, timeout_s: float) -> None:
        self._inner = inner
        self._timeout_s = timeout_s

    async def check(self, text: str, direction: str, tenant: str | None = None) -> SafetyVerdict:
        return await self._within(self._inner.check(text, direction, tenant))

    async def screen(self, passages: list[str], tenant: str | None = None) -> list[int]:
        return await self._within(self._inner.screen(passages, tenant))

    async def grounding(self, answer: str, passages: list[str]) -> Grounding:
        return await self._within(self._inner.grounding(answer, passages))

    async def _within(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await call
        except TimeoutError as exc:
            raise UpstreamUnavailable(
                "safety", f"The safety service did not answer within {self._timeout_s:g} s."
            ) from exc
