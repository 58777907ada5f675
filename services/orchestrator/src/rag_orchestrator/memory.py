"""Conversation memory: the last turns of each session, kept by a store behind a small protocol."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel


class Turn(BaseModel):
    question: str
    answer: str


class ConversationStore(Protocol):
    """Turns by conversation key, oldest first; `None` and `False` mean the store is unavailable."""

    async def turns(self, key: str) -> list[Turn] | None: ...

    async def append(self, key: str, turn: Turn) -> bool: ...


class NoMemory:
    """Memory off (no Redis, or `ORCHESTRATOR_MEMORY_TURNS=0`): every question stands alone."""

    async def turns(self, key: str) -> list[Turn] | None:
        return None

    async def append(self, key: str, turn: Turn) -> bool:
        return False


def session_key(tenant: str, session_id: str) -> str:
    """Tenants have no `:`, so one tenant's session can never be another's."""
    return f"{tenant}:{session_id}"
